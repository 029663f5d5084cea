//! `RetrieveCurrentOrganization`: how a tool learns the environment id and tenant id from an org URL.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::guid_string;
use crate::environment::EnvironmentId;

/// `EnvironmentId` arrives as a string, possibly empty.
mod environment_string {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::environment::EnvironmentId;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<EnvironmentId>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
        }
    }

    pub(super) fn serialize<S: Serializer>(v: &Option<EnvironmentId>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(id) => s.collect_str(id),
            None => s.serialize_none(),
        }
    }
}

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
/// `EnvironmentId` is a GUID, or `Default-{tenant}` for a tenant's Default environment (see
/// [`EnvironmentId`](crate::environment::EnvironmentId)).
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
    /// `EnvironmentId`: the Power Platform environment id, which the subject uses (`Edm.String`: a GUID, or
    /// `Default-{tenant}` for the Default environment).
    #[serde(rename = "EnvironmentId", default, with = "environment_string")]
    pub environment_id: Option<EnvironmentId>,
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

    /// The shape Learn documents for `OrganizationDetail` (every property, `EnvironmentId` as `Edm.String`), for
    /// a tenant's Default environment as PowerApps-Samples describes it.
    #[test]
    fn default_environment_as_documented() {
        let r: RetrieveCurrentOrganizationResponse = serde_json::from_value(serde_json::json!({
            "@odata.context": "https://contoso.crm.dynamics.com/api/data/v9.2/$metadata#Microsoft.Dynamics.CRM.RetrieveCurrentOrganizationResponse",
            "Detail": {
                "OrganizationId": "0b1d2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b",
                "FriendlyName": "Contoso (default)",
                "OrganizationVersion": "9.2.26113.00180",
                "EnvironmentId": "Default-72f988bf-86f1-41af-91ab-2d7cd011db47",
                "DatacenterId": "3d8e1c52-7a10-4c3b-9f0e-3c4b9a1f2e77",
                "Geo": "NA",
                "TenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "UrlName": "orgdefault",
                "UniqueName": "unqdefault",
                "Endpoints": {
                    "Count": 3,
                    "IsReadOnly": false,
                    "Keys": ["WebApplication", "OrganizationService", "OrganizationDataService"],
                    "Values": [
                        "https://orgdefault.crm.dynamics.com/",
                        "https://orgdefault.api.crm.dynamics.com/XRMServices/2011/Organization.svc",
                        "https://orgdefault.api.crm.dynamics.com/XRMServices/2011/OrganizationData.svc"
                    ]
                },
                "State": "Enabled",
                "SchemaType": "Standard",
                "OrganizationType": "Customer"
            }
        }))
        .unwrap();
        let env = r.detail.environment_id.unwrap();
        assert!(env.is_default());
        assert_eq!(env.guid(), r.detail.tenant_id.unwrap());
        assert_eq!(env.to_string(), "Default-72f988bf-86f1-41af-91ab-2d7cd011db47");
        // Nothing is lost: the properties the struct does not name stay in `extra`.
        assert_eq!(r.detail.extra["State"], "Enabled");
        assert_eq!(
            serde_json::to_value(&r.detail).unwrap()["EnvironmentId"],
            "Default-72f988bf-86f1-41af-91ab-2d7cd011db47"
        );
    }
}
