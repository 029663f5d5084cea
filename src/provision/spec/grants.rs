//! Access a spec grants beyond Azure RBAC: Dataverse application users and Graph API permissions.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Access to grant the identity on an Azure resource (step 5 of the walkthrough): an ARM role assignment.
///
/// ```toml
/// [[grants]]
/// role = "Key Vault Secrets User"
/// scope = "/subscriptions/.../resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso-kv"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantSpec {
    /// The role's name, resolved to its definition at the scope (e.g. `Key Vault Secrets User`).
    pub role: String,
    /// The resource id the role applies to.
    pub scope: String,
}

/// The identity as an application user of a Dataverse environment, with security roles: for plug-ins that call
/// Dataverse with the identity's token (another environment, or their own with the identity's permissions). The
/// roles are the root business unit's, by name.
///
/// ```toml
/// [[application_users]]
/// environment = "https://contoso-data.crm.dynamics.com"  # leave out: every environment of the spec
/// roles = ["Basic User", "Contoso Reader"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ApplicationUserSpec {
    /// The environment's URL; `None` for every environment of the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The security roles, by name (the root business unit's).
    pub roles: Vec<String>,
}

impl ApplicationUserSpec {
    /// An application user with `roles` in `environment` (`None`: every environment of the spec).
    pub fn new(environment: Option<String>, roles: impl IntoIterator<Item = impl Into<String>>) -> Self {
        ApplicationUserSpec { environment, roles: roles.into_iter().map(Into::into).collect() }
    }
}

/// Application permissions of an API for the identity (app role assignments on its service principal): Microsoft
/// Graph's by default. Delegated permissions (which act for a signed-in user) cannot be given to a plug-in's
/// identity and are refused with the reason.
///
/// ```toml
/// [[api_permissions]]
/// permissions = ["Mail.Send", "User.Read.All"]
/// # api = "00000003-0000-0000-c000-000000000000"  # another API's application id; Microsoft Graph by default
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ApiPermissionSpec {
    /// The API's application id; `None` for Microsoft Graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<Uuid>,
    /// The permissions, by name (the app role's value, e.g. `Mail.Send`).
    pub permissions: Vec<String>,
}

impl ApiPermissionSpec {
    /// Microsoft Graph application permissions.
    pub fn graph(permissions: impl IntoIterator<Item = impl Into<String>>) -> Self {
        ApiPermissionSpec { api: None, permissions: permissions.into_iter().map(Into::into).collect() }
    }

    /// Application permissions of the API whose application id is `api`.
    pub fn of_api(api: Uuid, permissions: impl IntoIterator<Item = impl Into<String>>) -> Self {
        ApiPermissionSpec { api: Some(api), permissions: permissions.into_iter().map(Into::into).collect() }
    }

    /// The API's application id (Microsoft Graph's when none is given).
    pub fn api_app_id(&self) -> Uuid {
        self.api.unwrap_or(crate::clients::MICROSOFT_GRAPH_APP_ID)
    }
}
