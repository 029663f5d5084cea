//! The plug-in trace log: where a plug-in's failed token requests show up.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::choice;

choice! {
    /// `organization.plugintracelogsetting`: which plug-in runs write a trace log row.
    #[non_exhaustive]
    PluginTraceLogSetting {
        /// 0: none.
        Off = 0 => "Off",
        /// 1: only runs that throw.
        Exception = 1 => "Exception",
        /// 2: every run.
        All = 2 => "All",
    }
}

/// A `plugintracelog` row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginTraceLog {
    /// `plugintracelogid`.
    #[serde(rename = "plugintracelogid")]
    pub id: Uuid,
    /// `typename`: the plug-in type that ran.
    #[serde(rename = "typename", default)]
    pub type_name: Option<String>,
    /// `messageblock`: what the plug-in traced.
    #[serde(rename = "messageblock", default)]
    pub message_block: Option<String>,
    /// `exceptiondetails`: the exception, when the run failed.
    #[serde(rename = "exceptiondetails", default)]
    pub exception_details: Option<String>,
    /// `createdon`, as the service wrote it (ISO 8601, UTC).
    #[serde(rename = "createdon", default)]
    pub created_on: Option<String>,
    /// `correlationid`.
    #[serde(rename = "correlationid", default)]
    pub correlation_id: Option<Uuid>,
    /// Every other column and annotation, as it came.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl PluginTraceLog {
    /// `createdon` as a time (`None` when absent or not an RFC 3339 time); the wire text stays in `created_on`.
    ///
    /// ```
    /// # use dataverse_mi::entities::PluginTraceLog;
    /// let log: PluginTraceLog = serde_json::from_value(serde_json::json!({
    ///     "plugintracelogid": "5d6e7f80-0000-4000-8000-000000000002", "createdon": "2026-11-22T10:00:00Z"
    /// })).unwrap();
    /// assert_eq!(log.created_at(), Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_341_600)));
    /// ```
    pub fn created_at(&self) -> Option<std::time::SystemTime> {
        humantime::parse_rfc3339_weak(self.created_on.as_deref()?).ok()
    }

    /// The text to look for token failures in: the exception, then the trace.
    pub fn text(&self) -> String {
        [self.exception_details.as_deref(), self.message_block.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n")
    }
}
