//! The Power Platform Global Discovery Service: which environments the signed-in identity can reach.

use std::sync::Arc;

use http::Method;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ApiError, ClientOptions, Pipeline, Service};
use crate::auth::TokenSource;
use crate::environment::EnvironmentId;

/// An environment as the Global Discovery Service lists it (`GET /api/discovery/v2.0/Instances`; field names as
/// Learn's "Discover user organizations" shows them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DiscoveredEnvironment {
    /// `Id`: the organization id.
    #[serde(rename = "Id")]
    pub id: Uuid,
    /// `UniqueName`.
    #[serde(rename = "UniqueName", default)]
    pub unique_name: Option<String>,
    /// `UrlName`: the first label of the host (`contoso-dev`).
    #[serde(rename = "UrlName", default)]
    pub url_name: Option<String>,
    /// `FriendlyName`: the display name.
    #[serde(rename = "FriendlyName", default)]
    pub friendly_name: Option<String>,
    /// `State`: 0 enabled, 1 disabled.
    #[serde(rename = "State", default)]
    pub state: Option<i32>,
    /// `Version`.
    #[serde(rename = "Version", default)]
    pub version: Option<String>,
    /// `Url`: the organization URL (`https://contoso-dev.crm.dynamics.com`).
    #[serde(rename = "Url")]
    pub url: String,
    /// `ApiUrl`: the Web API host.
    #[serde(rename = "ApiUrl", default)]
    pub api_url: Option<String>,
    /// `TenantId`.
    #[serde(rename = "TenantId", default)]
    pub tenant_id: Option<Uuid>,
    /// `EnvironmentId` (a GUID, or `Default-{tenant}`); `None` when absent or not an environment id.
    #[serde(rename = "EnvironmentId", default, deserialize_with = "lenient_environment_id")]
    pub environment_id: Option<EnvironmentId>,
    /// `Region`, e.g. `NA`, `EMEA`.
    #[serde(rename = "Region", default)]
    pub region: Option<String>,
    /// `Purpose`.
    #[serde(rename = "Purpose", default)]
    pub purpose: Option<String>,
    /// `IsUserSysAdmin`: whether the caller is a System Administrator there.
    #[serde(rename = "IsUserSysAdmin", default)]
    pub is_user_sys_admin: Option<bool>,
    /// Every other field, as it came.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn lenient_environment_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<EnvironmentId>, D::Error> {
    let text = Option::<String>::deserialize(d)?;
    Ok(text.and_then(|t| t.parse().ok()))
}

impl DiscoveredEnvironment {
    /// Whether the environment is enabled (`State` 0, or not given).
    pub fn is_enabled(&self) -> bool {
        self.state.is_none_or(|s| s == 0)
    }

    /// The names a pattern is matched against: `UrlName`, `UniqueName`, `FriendlyName`, and the URL's host.
    pub fn names(&self) -> Vec<&str> {
        let host = self.url.trim_start_matches("https://").trim_end_matches('/');
        [self.url_name.as_deref(), self.unique_name.as_deref(), self.friendly_name.as_deref(), Some(host)]
            .into_iter()
            .flatten()
            .collect()
    }
}

/// A client for a cloud's Global Discovery Service.
#[derive(Debug, Clone)]
pub struct GlobalDiscoveryClient {
    pipeline: Pipeline,
}

impl GlobalDiscoveryClient {
    /// A client for the discovery service at `url` (e.g. `https://globaldisco.crm.dynamics.com`, see
    /// [`Cloud::global_discovery_url`](crate::cloud::Cloud::global_discovery_url)), or `options.base_url`. Tokens
    /// are asked for the discovery host's `/.default`.
    pub fn new(url: &str, credential: Arc<dyn TokenSource>, options: ClientOptions) -> Result<Self, ApiError> {
        let base = super::base_url(&options, url, "api/discovery/v2.0/", "discovery URL")?;
        Ok(GlobalDiscoveryClient { pipeline: Pipeline::new(Service::GlobalDiscovery, base, credential, options)? })
    }

    /// The scope tokens are requested for.
    pub fn scope(&self) -> &str {
        self.pipeline.scope()
    }

    /// Every environment the signed-in identity can reach, every page.
    pub async fn instances(&self) -> Result<Vec<DiscoveredEnvironment>, ApiError> {
        self.pipeline.execute(instances()).await
    }
}

/// The Global Discovery Service's one call this crate makes, as a request value: every environment the signed-in
/// identity can reach (`Instances`), every page.
pub fn instances() -> super::Request<Vec<DiscoveredEnvironment>> {
    super::Request::new("list environments", Method::GET, "Instances", super::request::pages(Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_learns_instance_shape() {
        // The shape of Learn's example answer ("Discover user organizations"), values made up.
        let e: DiscoveredEnvironment = serde_json::from_value(serde_json::json!({
            "Id": "11111111-1111-1111-1111-111111111111",
            "UniqueName": "unq11111111111111111111111111111",
            "UrlName": "contoso-dev",
            "FriendlyName": "Contoso Dev",
            "State": 0,
            "Version": "9.2.25113.00185",
            "Url": "https://contoso-dev.crm.dynamics.com",
            "ApiUrl": "https://contoso-dev.api.crm.dynamics.com",
            "LastUpdated": "2026-11-01T10:00:00Z",
            "SchemaType": "Standard",
            "TenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "EnvironmentId": "Default-72f988bf-86f1-41af-91ab-2d7cd011db47",
            "Region": "NA",
            "Purpose": "",
            "IsUserSysAdmin": true,
            "OrganizationType": 0,
            "TrialExpirationDate": null
        }))
        .unwrap();
        assert!(e.is_enabled());
        assert_eq!(
            e.environment_id.map(|id| id.to_string()).as_deref(),
            Some("Default-72f988bf-86f1-41af-91ab-2d7cd011db47")
        );
        assert_eq!(
            e.names(),
            vec!["contoso-dev", "unq11111111111111111111111111111", "Contoso Dev", "contoso-dev.crm.dynamics.com"]
        );
        assert_eq!(e.extra.len(), 4, "LastUpdated, SchemaType, OrganizationType, TrialExpirationDate");
        // An environment id that is not one is absent, not an error: the organization says it again anyway.
        let odd: DiscoveredEnvironment = serde_json::from_value(
            serde_json::json!({"Id": "11111111-1111-1111-1111-111111111111", "Url": "https://x.crm.dynamics.com", "EnvironmentId": "nope", "State": 1}),
        )
        .unwrap();
        assert_eq!(odd.environment_id, None);
        assert!(!odd.is_enabled());
    }
}
