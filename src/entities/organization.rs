//! `RetrieveCurrentOrganization`: how a tool learns the environment id and tenant id from an org URL.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::guid_string;

/// The response of `RetrieveCurrentOrganization(AccessType=Microsoft.Dynamics.CRM.EndpointAccessType'Default')`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrieveCurrentOrganizationResponse {
    /// The organization detail.
    #[serde(rename = "Detail")]
    pub detail: OrganizationDetail,
    /// Every other property (e.g. `@odata.context`), as it came.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// An organization's detail. `EnvironmentId` and `TenantId` arrive as strings (possibly empty) and are parsed here.
///
/// ```
/// # use dataverse_mi::entities::RetrieveCurrentOrganizationResponse;
/// let r: RetrieveCurrentOrganizationResponse = serde_json::from_str(r#"{
///   "Detail": {
///     "OrganizationId": "0b1d2a3c-0000-0000-0000-000000000001",
///     "EnvironmentId": "7efcc31a-c410-e20e-9b3c-3ea55e7f9c56",
///     "TenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
///     "UniqueName": "unq1234", "FriendlyName": "Contoso", "Geo": "NA",
///     "Endpoints": {"Count": 1, "IsReadOnly": false, "Keys": ["WebApplication"], "Values": ["https://contoso.crm.dynamics.com/"]}
///   }
/// }"#).unwrap();
/// assert_eq!(r.detail.environment_id.unwrap().to_string(), "7efcc31a-c410-e20e-9b3c-3ea55e7f9c56");
/// assert_eq!(r.detail.endpoints.unwrap().get("WebApplication"), Some("https://contoso.crm.dynamics.com/"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrganizationDetail {
    /// `OrganizationId`: the organization's id (not the environment id).
    #[serde(rename = "OrganizationId")]
    pub organization_id: Uuid,
    /// `EnvironmentId`: the Power Platform environment id, which the subject uses.
    #[serde(rename = "EnvironmentId", default, with = "guid_string")]
    pub environment_id: Option<Uuid>,
    /// `TenantId`.
    #[serde(rename = "TenantId", default, with = "guid_string")]
    pub tenant_id: Option<Uuid>,
    /// `UniqueName`.
    #[serde(rename = "UniqueName", default)]
    pub unique_name: Option<String>,
    /// `FriendlyName`.
    #[serde(rename = "FriendlyName", default)]
    pub friendly_name: Option<String>,
    /// `UrlName`.
    #[serde(rename = "UrlName", default)]
    pub url_name: Option<String>,
    /// `Geo`.
    #[serde(rename = "Geo", default)]
    pub geo: Option<String>,
    /// `Endpoints`.
    #[serde(rename = "Endpoints", default)]
    pub endpoints: Option<Endpoints>,
    /// Every other property, as it came.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The `Endpoints` collection: parallel `Keys` and `Values`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// Endpoint kinds, e.g. `WebApplication`.
    #[serde(rename = "Keys", default)]
    pub keys: Vec<String>,
    /// Their URLs, in the same order.
    #[serde(rename = "Values", default)]
    pub values: Vec<String>,
}

impl Endpoints {
    /// The URL of an endpoint kind.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.keys.iter().position(|k| k == key).and_then(|i| self.values.get(i)).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_bad_ids() {
        let ok: OrganizationDetail = serde_json::from_value(serde_json::json!({
            "OrganizationId": "0b1d2a3c-0000-0000-0000-000000000001",
            "EnvironmentId": "",
            "TenantId": "{72F988BF-86F1-41AF-91AB-2D7CD011DB47}"
        }))
        .unwrap();
        assert_eq!(ok.environment_id, None);
        assert_eq!(ok.tenant_id.unwrap().to_string(), "72f988bf-86f1-41af-91ab-2d7cd011db47");
        let err = serde_json::from_value::<OrganizationDetail>(serde_json::json!({
            "OrganizationId": "0b1d2a3c-0000-0000-0000-000000000001",
            "EnvironmentId": "not-a-guid"
        }))
        .unwrap_err();
        assert!(err.to_string().contains("not-a-guid"), "{err}");
        let back = serde_json::to_value(&ok).unwrap();
        assert_eq!(back["TenantId"], "72f988bf-86f1-41af-91ab-2d7cd011db47");
    }
}
