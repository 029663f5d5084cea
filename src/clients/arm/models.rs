//! Azure Resource Manager's user-assigned identities, role definitions and assignments, and FICs, as the client
//! reads and writes them (with their wire shapes).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::super::ApiError;
use crate::fic::FederatedIdentityCredential;

/// The api-version used for `Microsoft.ManagedIdentity` unless told otherwise.
pub const DEFAULT_MANAGED_IDENTITY_API_VERSION: &str = "2023-01-31";

/// The api-version used for `Microsoft.Authorization` (role definitions and assignments).
pub const AUTHORIZATION_API_VERSION: &str = "2022-04-01";

/// The deterministic name of a role assignment: UUID v5 over `"{scope}|{role definition id}|{principal id}"`
/// (scope and role definition id lowercase) in the namespace `uuid5(URL, "https://dataverse-mi/roleassignment")`. The same grant always has the same name, so creating it twice is a
/// conflict, never a second assignment.
pub fn role_assignment_name(scope: &str, role_definition_id: &str, principal_id: Uuid) -> Uuid {
    let key = format!(
        "{}|{}|{}",
        scope.trim_end_matches('/').to_ascii_lowercase(),
        role_definition_id.to_ascii_lowercase(),
        principal_id.hyphenated()
    );
    Uuid::new_v5(&role_assignment_namespace(), key.as_bytes())
}

pub(super) fn role_assignment_namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"https://dataverse-mi/roleassignment")
}

/// A role definition, as found by name at a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleDefinition {
    /// Its ARM id (`/subscriptions/.../providers/Microsoft.Authorization/roleDefinitions/{guid}`).
    pub id: String,
    /// Its GUID name.
    pub name: String,
    /// Its display name, e.g. `Key Vault Secrets User`.
    pub role_name: String,
}

#[derive(Deserialize)]
pub(super) struct RoleDefinitionWire {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) properties: RoleDefinitionProperties,
}

#[derive(Deserialize)]
pub(super) struct RoleDefinitionProperties {
    #[serde(rename = "roleName")]
    pub(super) role_name: String,
}

/// A role assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleAssignment {
    /// Its ARM id.
    pub id: String,
    /// Its GUID name.
    pub name: String,
    /// The role definition's ARM id.
    pub role_definition_id: String,
    /// The principal (a service principal's object id).
    pub principal_id: Uuid,
    /// The scope.
    pub scope: String,
}

#[derive(Deserialize)]
pub(super) struct RoleAssignmentWire {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) properties: RoleAssignmentProperties,
}

#[derive(Deserialize)]
pub(super) struct RoleAssignmentProperties {
    #[serde(rename = "roleDefinitionId")]
    pub(super) role_definition_id: String,
    #[serde(rename = "principalId")]
    pub(super) principal_id: Uuid,
    #[serde(default)]
    pub(super) scope: String,
}

impl From<RoleAssignmentWire> for RoleAssignment {
    fn from(w: RoleAssignmentWire) -> Self {
        RoleAssignment {
            id: w.id,
            name: w.name,
            role_definition_id: w.properties.role_definition_id,
            principal_id: w.properties.principal_id,
            scope: w.properties.scope,
        }
    }
}

impl RoleAssignment {
    /// Whether this assignment gives `role_definition_id` exactly at `scope` (ids compared as ARM does,
    /// ignoring case and a trailing slash).
    pub fn grants(&self, scope: &str, role_definition_id: &str) -> bool {
        let norm = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
        norm(&self.scope) == norm(scope)
            && role_definition_guid(&self.role_definition_id) == role_definition_guid(role_definition_id)
    }
}

/// The GUID at the end of a role definition id: the same role is named under several scopes
/// (`/subscriptions/{s}/providers/...` or `/providers/...`).
pub(super) fn role_definition_guid(id: &str) -> String {
    id.trim_end_matches('/').rsplit('/').next().unwrap_or(id).to_ascii_lowercase()
}

pub(super) fn check_scope(scope: &str) -> Result<&str, ApiError> {
    let s = scope.trim_end_matches('/');
    let ok =
        s.starts_with('/') && !s.contains("//") && !s.contains("..") && !s.contains(['?', '#', ' ']) && s.len() <= 1024;
    if ok {
        Ok(s.trim_start_matches('/'))
    } else {
        Err(ApiError::invalid("scope", format!("'{scope}' is not an ARM resource id")))
    }
}

/// Which user-assigned managed identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserAssignedIdentityRef {
    /// The subscription id.
    pub subscription_id: String,
    /// The resource group.
    pub resource_group: String,
    /// The identity's name.
    pub name: String,
}

impl UserAssignedIdentityRef {
    pub(in crate::clients) fn path(&self) -> Result<String, ApiError> {
        for (what, value) in [
            ("subscription id", &self.subscription_id),
            ("resource group", &self.resource_group),
            ("identity name", &self.name),
        ] {
            let ok = !value.is_empty()
                && value.len() <= 128
                && value.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'));
            if !ok {
                return Err(ApiError::invalid("user-assigned identity", format!("the {what} '{value}' is not valid")));
            }
        }
        Ok(format!(
            "subscriptions/{}/resourceGroups/{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{}",
            self.subscription_id, self.resource_group, self.name
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct IdentityProperties {
    #[serde(rename = "clientId")]
    pub(super) client_id: Uuid,
    #[serde(rename = "principalId")]
    pub(super) principal_id: Uuid,
    #[serde(rename = "tenantId")]
    pub(super) tenant_id: Uuid,
}

/// A user-assigned managed identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "IdentityWire", into = "IdentityWire")]
pub struct UserAssignedIdentity {
    /// The ARM resource id.
    pub id: String,
    /// The name.
    pub name: String,
    /// The region.
    pub location: String,
    /// The client (application) id: what the `managedidentity` row's `applicationid` takes.
    pub client_id: Uuid,
    /// The service principal's object id: what role assignments take.
    pub principal_id: Uuid,
    /// The tenant.
    pub tenant_id: Uuid,
    /// Its tags; `created-by = dataverse-mi` ([`crate::clients::CREATED_TAG`]) marks one this crate created.
    pub tags: std::collections::BTreeMap<String, String>,
}

impl UserAssignedIdentity {
    /// Whether this crate created it (its `created-by` tag).
    pub fn created_by_this_tool(&self) -> bool {
        self.tags.get(CREATED_BY_TAG).is_some_and(|v| v == crate::clients::graph::CREATED_TAG)
    }
}

/// The name of the ARM tag this crate sets on a user-assigned identity it creates.
pub const CREATED_BY_TAG: &str = "created-by";

#[derive(Serialize, Deserialize)]
pub(super) struct IdentityWire {
    pub(super) id: String,
    pub(super) name: String,
    #[serde(default)]
    pub(super) location: String,
    #[serde(default)]
    pub(super) tags: std::collections::BTreeMap<String, String>,
    pub(super) properties: IdentityProperties,
}

impl From<IdentityWire> for UserAssignedIdentity {
    fn from(w: IdentityWire) -> Self {
        UserAssignedIdentity {
            id: w.id,
            name: w.name,
            location: w.location,
            client_id: w.properties.client_id,
            principal_id: w.properties.principal_id,
            tenant_id: w.properties.tenant_id,
            tags: w.tags,
        }
    }
}

impl From<UserAssignedIdentity> for IdentityWire {
    fn from(u: UserAssignedIdentity) -> Self {
        IdentityWire {
            id: u.id,
            name: u.name,
            location: u.location,
            tags: u.tags,
            properties: IdentityProperties {
                client_id: u.client_id,
                principal_id: u.principal_id,
                tenant_id: u.tenant_id,
            },
        }
    }
}

/// A FIC as ARM stores it on a user-assigned managed identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "FicWire", into = "FicWire")]
pub struct ArmFederatedIdentityCredential {
    /// The ARM resource id.
    pub id: String,
    /// The credential (ARM has no description).
    pub credential: FederatedIdentityCredential,
    /// When it was created (`systemData.createdAt`), when ARM says.
    pub created_at: Option<std::time::SystemTime>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct FicWire {
    #[serde(default)]
    pub(super) id: String,
    pub(super) name: String,
    pub(super) properties: FicProperties,
    #[serde(rename = "systemData", default, skip_serializing_if = "Option::is_none")]
    pub(super) system_data: Option<SystemData>,
}

/// ARM's `systemData` (common types): who made a resource and when.
#[derive(Serialize, Deserialize)]
pub(super) struct SystemData {
    #[serde(rename = "createdAt", default, skip_serializing_if = "Option::is_none")]
    pub(super) created_at: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct FicProperties {
    pub(super) issuer: String,
    pub(super) subject: String,
    pub(super) audiences: Vec<String>,
}

impl From<FicWire> for ArmFederatedIdentityCredential {
    fn from(w: FicWire) -> Self {
        ArmFederatedIdentityCredential {
            id: w.id,
            credential: FederatedIdentityCredential {
                name: w.name,
                issuer: w.properties.issuer,
                subject: w.properties.subject,
                audiences: w.properties.audiences,
                description: None,
            },
            created_at: w
                .system_data
                .and_then(|d| d.created_at)
                .and_then(|t| humantime::parse_rfc3339_weak(t.trim()).ok()),
        }
    }
}

impl From<ArmFederatedIdentityCredential> for FicWire {
    fn from(a: ArmFederatedIdentityCredential) -> Self {
        FicWire {
            id: a.id,
            name: a.credential.name,
            properties: FicProperties {
                issuer: a.credential.issuer,
                subject: a.credential.subject,
                audiences: a.credential.audiences,
            },
            system_data: a
                .created_at
                .map(|t| SystemData { created_at: Some(humantime::format_rfc3339_millis(t).to_string()) }),
        }
    }
}
