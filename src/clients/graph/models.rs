//! Microsoft Graph's applications, service principals, app roles and FICs, as the client reads and writes them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::fic::FederatedIdentityCredential;

/// Which application: by object id or by application (client) id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppRef {
    /// The application object's id.
    ObjectId(Uuid),
    /// The application (client) id, as users know it.
    AppId(Uuid),
}

impl AppRef {
    pub(in crate::clients) fn path(self) -> String {
        match self {
            AppRef::ObjectId(id) => format!("applications/{id}"),
            AppRef::AppId(id) => format!("applications(appId='{id}')"),
        }
    }
}

/// An application registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// The object id.
    pub id: Uuid,
    /// The application (client) id.
    #[serde(rename = "appId")]
    pub app_id: Uuid,
    /// The display name.
    #[serde(rename = "displayName", default)]
    pub display_name: Option<String>,
    /// Its tags (a collection of strings); [`CREATED_TAG`] marks an application this crate created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// The tag this crate puts on an application it creates (Graph `application.tags`), and on a user-assigned identity
/// it creates (an ARM tag named `created-by` with this value): what lets a teardown prove it made the identity.
pub const CREATED_TAG: &str = "dataverse-mi";

/// A FIC as Graph stores it: the credential and its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphFederatedIdentityCredential {
    /// Graph's id of the FIC.
    pub id: String,
    /// The credential.
    #[serde(flatten)]
    pub credential: FederatedIdentityCredential,
}

/// A service principal (the application's identity in the tenant: what role assignments name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePrincipal {
    /// The service principal's object id.
    pub id: Uuid,
    /// The application (client) id.
    #[serde(rename = "appId")]
    pub app_id: Uuid,
}

/// Microsoft Graph's application id (its service principal holds the application permissions, e.g. `Mail.Send`).
pub const MICROSOFT_GRAPH_APP_ID: Uuid = Uuid::from_u128(0x00000003_0000_0000_c000_000000000000);

/// A role an API defines (`appRoles`): an application permission when `allowedMemberTypes` holds `Application`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AppRole {
    /// The role's id (what an assignment names).
    pub id: Uuid,
    /// Its value, the permission's name (e.g. `Mail.Send`).
    #[serde(default)]
    pub value: Option<String>,
    /// Who may be given it: `Application`, `User`.
    #[serde(default)]
    pub allowed_member_types: Vec<String>,
    /// Whether it is enabled.
    #[serde(default = "yes")]
    pub is_enabled: bool,
}

pub(super) fn yes() -> bool {
    true
}

impl AppRole {
    /// Whether an application (a service principal) may be given it.
    pub fn is_application_permission(&self) -> bool {
        self.is_enabled && self.allowed_member_types.iter().any(|t| t == "Application")
    }
}

/// A delegated permission an API defines (`oauth2PermissionScopes`): acts for a signed-in user, never given to an
/// application on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PermissionScope {
    /// The scope's id.
    pub id: Uuid,
    /// Its value (e.g. `User.Read`).
    #[serde(default)]
    pub value: Option<String>,
}

/// An API's service principal with the permissions it defines: what an application permission is looked up in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ResourceServicePrincipal {
    /// The service principal's object id (an assignment's `resourceId`).
    pub id: Uuid,
    /// The API's application id.
    pub app_id: Uuid,
    /// Its display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The roles it defines.
    #[serde(default)]
    pub app_roles: Vec<AppRole>,
    /// The delegated permissions it defines.
    #[serde(default)]
    pub oauth2_permission_scopes: Vec<PermissionScope>,
}

/// An app role given to a principal (`appRoleAssignment`): an application permission granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AppRoleAssignment {
    /// The assignment's id.
    pub id: String,
    /// The role given.
    pub app_role_id: Uuid,
    /// Who is given it (the identity's service principal).
    pub principal_id: Uuid,
    /// The API's service principal.
    pub resource_id: Uuid,
    /// The API's name.
    #[serde(default)]
    pub resource_display_name: Option<String>,
}

/// A service principal as the directory describes it: an application's (`servicePrincipalType` `Application`) or a
/// managed identity's (`ManagedIdentity`, its ARM resource id among `alternativeNames`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DirectoryPrincipal {
    /// The service principal's object id.
    pub id: Uuid,
    /// The application (client) id.
    pub app_id: Uuid,
    /// `Application`, `ManagedIdentity`, ...
    #[serde(default)]
    pub service_principal_type: Option<String>,
    /// Other names: for a managed identity, `isExplicit=True` and its ARM resource id.
    #[serde(default)]
    pub alternative_names: Vec<String>,
}

impl DirectoryPrincipal {
    /// The ARM resource id of a user-assigned managed identity, when this is one.
    pub fn user_assigned_resource_id(&self) -> Option<&str> {
        if self.service_principal_type.as_deref() != Some("ManagedIdentity") {
            return None;
        }
        self.alternative_names
            .iter()
            .map(String::as_str)
            .find(|n| n.to_ascii_lowercase().contains("/providers/microsoft.managedidentity/userassignedidentities/"))
    }
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UpsertOutcome {
    /// The FIC did not exist and was created.
    Created,
    /// The FIC existed and was updated.
    Updated,
}

#[derive(Serialize)]
pub(super) struct FicUpdate<'a> {
    pub(super) issuer: &'a str,
    pub(super) subject: &'a str,
    pub(super) audiences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) description: Option<&'a str>,
}
