//! Watching the plug-ins' token requests: the plug-in trace log read, token failures found and explained
//! against the spec (step 6 of the walkthrough).

use std::time::{Duration, SystemTime};

use futures_util::{Stream, StreamExt as _};
use serde::Serialize;

use super::ProvisionError;
use super::engine::Provisioner;
use super::spec::ProvisionSpec;
use crate::cloud::CloudProfile;
use crate::diagnose::{ConfiguredFic, Diagnosis, DiagnosisInputs, trace_log_failure};
use crate::entities::{PluginTraceLog, PluginTraceLogSetting};

/// What to read: the time window's start, which plug-ins, and whether to switch tracing on.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use dataverse_mi::provision::WatchOptions;
/// let options = WatchOptions::since(SystemTime::now() - Duration::from_secs(3600))
///     .type_prefix("Contoso.Plugins")
///     .enable_tracing(true);
/// assert_eq!(options.type_prefix.as_deref(), Some("Contoso.Plugins"));
/// // What people type: a duration back from now, or an RFC 3339 time.
/// let last_day = WatchOptions::since_text("1d")?;
/// let from = WatchOptions::since_text("2026-11-22T10:00:00Z")?;
/// # Ok::<(), dataverse_mi::provision::SinceError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchOptions {
    /// Rows created after this time.
    pub since: SystemTime,
    /// Only plug-in types whose full name starts with this (a type, or an assembly's namespace).
    pub type_prefix: Option<String>,
    /// Switch an environment whose trace log setting is Off to Exception first.
    pub enable_tracing: bool,
}

/// Why a `since` text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SinceError {
    /// Neither a duration nor a time.
    #[error(
        "'{given}' is neither a duration back from now (30m, 1h, 2d, 1h 30m) nor an RFC 3339 time (2026-11-22T10:00:00Z)"
    )]
    Unreadable {
        /// What was given.
        given: String,
    },
}

/// A time from what people type: a duration back from `now` (`30m`, `1h`, `2d`, `1h 30m`: humantime's syntax), or
/// an RFC 3339 time (`2026-11-22T10:00:00Z`; a space for the `T` and no zone are accepted, as UTC).
pub fn parse_since(text: &str, now: SystemTime) -> Result<SystemTime, SinceError> {
    let text = text.trim();
    if let Ok(back) = humantime::parse_duration(text) {
        return now.checked_sub(back).ok_or_else(|| SinceError::Unreadable { given: crate::guid::clip(text) });
    }
    humantime::parse_rfc3339_weak(text).map_err(|_| SinceError::Unreadable { given: crate::guid::clip(text) })
}

/// A time as an OData `DateTimeOffset` literal, to the millisecond: `2026-11-22T10:00:00.000Z`.
pub(crate) fn odata_time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

impl WatchOptions {
    /// Rows created after `since`, of every plug-in, tracing left as it is.
    pub fn since(since: SystemTime) -> Self {
        WatchOptions { since, type_prefix: None, enable_tracing: false }
    }

    /// [`WatchOptions::since`] the time `text` says ([`parse_since`], from now).
    pub fn since_text(text: &str) -> Result<Self, SinceError> {
        Ok(Self::since(parse_since(text, SystemTime::now())?))
    }

    /// Only plug-in types whose full name starts with `prefix`.
    pub fn type_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.type_prefix = Some(prefix.into());
        self
    }

    /// Whether to switch an environment's tracing from Off to Exception.
    pub fn enable_tracing(mut self, enable: bool) -> Self {
        self.enable_tracing = enable;
        self
    }
}

/// A failure found in a trace log on the way to a working call (a token request, or a call made with the token),
/// diagnosed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TokenFailure {
    /// The environment.
    pub org_url: String,
    /// The trace log row.
    pub log: PluginTraceLog,
    /// What went wrong and how to fix it.
    pub diagnosis: Diagnosis,
}

/// One environment's trace log, as read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct EnvironmentWatch {
    /// The environment.
    pub org_url: String,
    /// Its trace log setting (Off means nothing is recorded: turn it on to see failures).
    pub setting: PluginTraceLogSetting,
    /// Rows read.
    pub rows: usize,
    /// The newest row's `createdon`, to continue from.
    pub newest: Option<SystemTime>,
}

/// What a watch pass found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct WatchReport {
    /// Each environment.
    pub environments: Vec<EnvironmentWatch>,
    /// The token failures, oldest first per environment.
    pub failures: Vec<TokenFailure>,
}

impl Provisioner {
    /// Reads each environment's plug-in trace log over the window `options` gives (every page), finds the token
    /// failures and explains each against the identity's FICs and the spec. With `enable_tracing`, an
    /// environment whose setting is Off is switched to Exception first.
    pub async fn watch(&self, spec: &ProvisionSpec, options: &WatchOptions) -> Result<WatchReport, ProvisionError> {
        // The lookup first: an app registration named in the spec by display name is only known after it.
        let application_id =
            self.identity().lookup(false).await.map_err(ProvisionError::identity)?.map(|found| found.client_id);
        let fics = match application_id {
            Some(_) => self.identity().list_fics_created().await.map_err(ProvisionError::identity)?,
            None => Vec::new(),
        };
        let configured: Vec<ConfiguredFic> = fics
            .into_iter()
            .map(|(f, created)| ConfiguredFic {
                subject: f.subject,
                issuer: Some(f.issuer),
                audience: f.audiences.into_iter().next(),
                created,
            })
            .collect();
        let mut report = WatchReport { environments: Vec::new(), failures: Vec::new() };
        let resolved = self.resolve(spec).await?;
        for env in &resolved.environments {
            let org = env.org_url.as_str();
            let api = |source| ProvisionError::api(org, source);
            let dv = self.connector().connect(org).map_err(api)?;
            let (organization, mut setting) = dv.plugin_trace_log_setting().await.map_err(api)?;
            if options.enable_tracing && setting == PluginTraceLogSetting::Off {
                dv.set_plugin_trace_log_setting(organization, PluginTraceLogSetting::Exception).await.map_err(api)?;
                setting = PluginTraceLogSetting::Exception;
            }
            let detail = dv.retrieve_current_organization().await.map_err(api)?;
            // Only a help for the diagnosis: a certificate that cannot be read is left out, not an error.
            let certificate = env.certificate.certificate(&spec.base_dir).ok().flatten();
            let inputs = DiagnosisInputs {
                tenant_id: detail.tenant_id,
                environment_id: detail.environment_id,
                organization_id: Some(detail.organization_id),
                application_id,
                certificate,
                cloud: Some(CloudProfile::from(spec.cloud)),
                version: Some(spec.version),
                configured: configured.clone(),
                fics_known: true,
                ..DiagnosisInputs::default()
            };
            // Page by page: only the failures are kept, not the whole time window's rows.
            let since = odata_time(options.since);
            let mut pages = dv.plugin_trace_log_pages(&since, options.type_prefix.as_deref());
            let (mut rows, mut newest) = (0, None);
            while let Some(page) = pages.next().await {
                for log in page.map_err(api)? {
                    rows += 1;
                    newest = newest.max(log.created_at());
                    if let Some(diagnosis) = trace_log_failure(&log, &inputs) {
                        report.failures.push(TokenFailure { org_url: env.org_url.clone(), log, diagnosis });
                    }
                }
            }
            report.environments.push(EnvironmentWatch { org_url: env.org_url.clone(), setting, rows, newest });
        }
        Ok(report)
    }

    /// Watches without end: a pass now, then one every `interval`, each reading from the newest row the last one
    /// saw (so a failure is reported once), tracing switched on (with `enable_tracing`) on the first pass only.
    /// Yields each pass's report; ends after a pass that fails (yielding its error). The stream is `Send` and
    /// `'static`: spawn it, or poll it beside a shutdown signal (the CLI's `watch --follow` stops on Ctrl-C).
    pub fn watch_stream(
        &self,
        spec: ProvisionSpec,
        options: WatchOptions,
        interval: Duration,
    ) -> impl Stream<Item = Result<WatchReport, ProvisionError>> + Send + 'static {
        let state = Some((self.clone(), spec, options, true));
        futures_util::stream::unfold(state, move |state| async move {
            let (engine, spec, mut options, first) = state?;
            if !first {
                tokio::time::sleep(interval).await;
            }
            let result = engine.watch(&spec, &options).await;
            let next = match &result {
                Ok(report) => {
                    if let Some(newest) = report.newest() {
                        options.since = options.since.max(newest);
                    }
                    options.enable_tracing = false;
                    Some((engine, spec, options, false))
                }
                Err(_) => None,
            };
            Some((result, next))
        })
    }
}

impl WatchReport {
    /// The newest row any environment returned: where the next pass starts.
    pub fn newest(&self) -> Option<SystemTime> {
        self.environments.iter().filter_map(|e| e.newest).max()
    }
}
