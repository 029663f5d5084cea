//! The Azure Resource Manager client: user-assigned managed identities and their FICs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ApiError, ClientOptions, Pipeline, Service};
use crate::auth::TokenSource;
use crate::cloud::CloudProfile;
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

fn role_assignment_namespace() -> Uuid {
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
struct RoleDefinitionWire {
    id: String,
    name: String,
    properties: RoleDefinitionProperties,
}

#[derive(Deserialize)]
struct RoleDefinitionProperties {
    #[serde(rename = "roleName")]
    role_name: String,
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
struct RoleAssignmentWire {
    id: String,
    name: String,
    properties: RoleAssignmentProperties,
}

#[derive(Deserialize)]
struct RoleAssignmentProperties {
    #[serde(rename = "roleDefinitionId")]
    role_definition_id: String,
    #[serde(rename = "principalId")]
    principal_id: Uuid,
    #[serde(default)]
    scope: String,
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
fn role_definition_guid(id: &str) -> String {
    id.trim_end_matches('/').rsplit('/').next().unwrap_or(id).to_ascii_lowercase()
}

fn check_scope(scope: &str) -> Result<&str, ApiError> {
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
    fn path(&self) -> Result<String, ApiError> {
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
struct IdentityProperties {
    #[serde(rename = "clientId")]
    client_id: Uuid,
    #[serde(rename = "principalId")]
    principal_id: Uuid,
    #[serde(rename = "tenantId")]
    tenant_id: Uuid,
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
        self.tags.get(CREATED_BY_TAG).is_some_and(|v| v == super::graph::CREATED_TAG)
    }
}

/// The name of the ARM tag this crate sets on a user-assigned identity it creates.
pub const CREATED_BY_TAG: &str = "created-by";

#[derive(Serialize, Deserialize)]
struct IdentityWire {
    id: String,
    name: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
    properties: IdentityProperties,
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
struct FicWire {
    #[serde(default)]
    id: String,
    name: String,
    properties: FicProperties,
    #[serde(rename = "systemData", default, skip_serializing_if = "Option::is_none")]
    system_data: Option<SystemData>,
}

/// ARM's `systemData` (common types): who made a resource and when.
#[derive(Serialize, Deserialize)]
struct SystemData {
    #[serde(rename = "createdAt", default, skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct FicProperties {
    issuer: String,
    subject: String,
    audiences: Vec<String>,
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

/// An Azure Resource Manager client (`{arm endpoint}/`).
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use dataverse_mi::auth::AzureIdentity;
/// use dataverse_mi::clients::{ArmClient, ClientOptions, UserAssignedIdentityRef};
/// use dataverse_mi::cloud::{Cloud, CloudProfile};
///
/// let credential = Arc::new(AzureIdentity::new(azure_identity::AzureCliCredential::new(None)?));
/// let arm = ArmClient::new(&CloudProfile::from(Cloud::Public), credential, ClientOptions::default())?;
/// let uami = UserAssignedIdentityRef {
///     subscription_id: "00000000-0000-0000-0000-0000000000aa".into(),
///     resource_group: "rg-plugins".into(),
///     name: "dataverse-plugin-mi".into(),
/// };
/// let identity = arm.get_user_assigned_identity(&uami).await?;
/// println!("client id {}, principal id {}", identity.client_id, identity.principal_id);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ArmClient {
    pipeline: Pipeline,
    api_version: String,
}

impl ArmClient {
    /// A client for the cloud's ARM endpoint (or `options.base_url`), with api-version `2023-01-31`.
    pub fn new(
        cloud: &CloudProfile,
        credential: Arc<dyn TokenSource>,
        options: ClientOptions,
    ) -> Result<Self, ApiError> {
        let base = super::base_url(&options, &cloud.arm_endpoint, "", "ARM endpoint")?;
        Ok(ArmClient {
            pipeline: Pipeline::new(Service::Arm, base, credential, options)?,
            api_version: DEFAULT_MANAGED_IDENTITY_API_VERSION.to_owned(),
        })
    }

    /// Uses another `Microsoft.ManagedIdentity` api-version.
    pub fn with_api_version(mut self, api_version: impl Into<String>) -> Self {
        self.api_version = api_version.into();
        self
    }

    /// The scope tokens are requested for.
    pub fn scope(&self) -> &str {
        self.pipeline.scope()
    }

    /// Sends one request (from [`requests`]) and reads its answer with its decoder.
    pub async fn send<T: Send + 'static>(&self, request: super::Request<T>) -> Result<T, ApiError> {
        self.pipeline.execute(request).await
    }

    /// Reads a user-assigned managed identity (client id, principal id, tenant id).
    pub async fn get_user_assigned_identity(
        &self,
        identity: &UserAssignedIdentityRef,
    ) -> Result<UserAssignedIdentity, ApiError> {
        self.send(requests::user_assigned_identity(identity, &self.api_version)).await
    }

    /// Lists the identity's FICs (every page).
    pub async fn list_fics(
        &self,
        identity: &UserAssignedIdentityRef,
    ) -> Result<Vec<ArmFederatedIdentityCredential>, ApiError> {
        self.send(requests::fics(identity, &self.api_version)).await
    }

    /// Reads one FIC by name.
    pub async fn get_fic(
        &self,
        identity: &UserAssignedIdentityRef,
        name: &str,
    ) -> Result<ArmFederatedIdentityCredential, ApiError> {
        self.send(requests::fic(identity, name, &self.api_version)).await
    }

    /// Creates or updates a FIC (`PUT`, idempotent). Returns the stored FIC and whether it was created.
    ///
    /// ARM refuses concurrent FIC writes to one identity with `409
    /// ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity` (another run writing to the same
    /// identity); the PUT is idempotent, and ARM's retry classifier ([`ServiceClassifier`](super::policy::ServiceClassifier))
    /// retries that answer with backoff like a 503.
    pub async fn create_or_update_fic(
        &self,
        identity: &UserAssignedIdentityRef,
        fic: &FederatedIdentityCredential,
    ) -> Result<(ArmFederatedIdentityCredential, bool), ApiError> {
        self.send(requests::put_fic(identity, fic, &self.api_version)).await
    }

    /// Deletes a FIC by name. ARM refuses concurrent FIC writes to one identity, deletes included: that 409 is
    /// retried like a 503 (the delete is idempotent).
    pub async fn delete_fic(&self, identity: &UserAssignedIdentityRef, name: &str) -> Result<(), ApiError> {
        self.send(requests::delete_fic(identity, name, &self.api_version)).await
    }

    /// Creates a user-assigned managed identity, or updates its tags (`PUT`, idempotent).
    pub async fn create_or_update_user_assigned_identity(
        &self,
        identity: &UserAssignedIdentityRef,
        location: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<UserAssignedIdentity, ApiError> {
        self.send(requests::put_user_assigned_identity(identity, location, tags, &self.api_version)).await
    }

    /// Deletes a user-assigned managed identity (its FICs go with it). A missing identity is success.
    pub async fn delete_user_assigned_identity(&self, identity: &UserAssignedIdentityRef) -> Result<(), ApiError> {
        self.send(requests::delete_user_assigned_identity(identity, &self.api_version)).await
    }

    /// Deletes a role assignment by its full id (`/subscriptions/.../roleAssignments/{name}`). A missing one is
    /// success.
    pub async fn delete_role_assignment(&self, id: &str) -> Result<(), ApiError> {
        self.send(requests::delete_role_assignment(id)).await
    }

    /// Finds a role definition by its display name (e.g. `Key Vault Secrets User`) at a scope.
    pub async fn find_role_definition(&self, scope: &str, role_name: &str) -> Result<Option<RoleDefinition>, ApiError> {
        Ok(self.send(requests::role_definitions_named(scope, role_name)).await?.into_iter().next())
    }

    /// The role assignments of a principal that apply at, above or below a scope (`$filter=principalId eq`),
    /// every page. Compare [`RoleAssignment::scope`] to tell them apart.
    pub async fn list_role_assignments(
        &self,
        scope: &str,
        principal_id: Uuid,
    ) -> Result<Vec<RoleAssignment>, ApiError> {
        self.send(requests::role_assignments(scope, principal_id)).await
    }

    /// Assigns a role to a principal at a scope under the given name (`PUT`): see [`role_assignment_name`].
    /// A principal created moments ago may not have replicated yet (`PrincipalNotFound`): the caller retries.
    pub async fn create_role_assignment(
        &self,
        scope: &str,
        name: Uuid,
        role_definition_id: &str,
        principal_id: Uuid,
    ) -> Result<RoleAssignment, ApiError> {
        self.send(requests::put_role_assignment(scope, name, role_definition_id, principal_id)).await
    }
}

/// Every Azure Resource Manager call this crate makes, each written once as a [`Request`](super::Request) value with
/// its decoder; the managed identity calls take the `Microsoft.ManagedIdentity` api-version
/// ([`DEFAULT_MANAGED_IDENTITY_API_VERSION`] unless the client was given another), the role calls use
/// [`AUTHORIZATION_API_VERSION`].
pub mod requests {
    use std::sync::Arc;

    use http::{Method, StatusCode};
    use uuid::Uuid;

    use super::{
        AUTHORIZATION_API_VERSION, ArmFederatedIdentityCredential, RoleAssignment, RoleAssignmentWire, RoleDefinition,
        RoleDefinitionWire, UserAssignedIdentity, UserAssignedIdentityRef, check_scope,
    };
    use crate::clients::request::{self, Request, Step};
    use crate::clients::{ApiError, odata_string, with_query};
    use crate::fic::{FederatedIdentityCredential, validate_name};

    /// An ARM request at `path` (a path error makes it an invalid request) with `api-version` and more query pairs.
    fn arm<T>(
        operation: &'static str,
        method: Method,
        path: Result<String, ApiError>,
        query: &[(&str, &str)],
        decode: request::Decoder<T>,
    ) -> Request<T> {
        match path {
            Ok(path) => Request::new(operation, method, with_query(path, query), decode),
            Err(e) => Request::new(operation, method, String::new(), decode).refused(e),
        }
    }

    fn fic_path(identity: &UserAssignedIdentityRef, name: Option<&str>) -> Result<String, ApiError> {
        let mut path = format!("{}/federatedIdentityCredentials", identity.path()?);
        if let Some(n) = name {
            validate_name(n).map_err(|e| ApiError::invalid("FIC name", e.to_string()))?;
            path.push('/');
            path.push_str(n);
        }
        Ok(path)
    }

    /// A user-assigned managed identity (client id, principal id, tenant id).
    pub fn user_assigned_identity(
        identity: &UserAssignedIdentityRef,
        api_version: &str,
    ) -> Request<UserAssignedIdentity> {
        arm(
            "get user-assigned identity",
            Method::GET,
            identity.path(),
            &[("api-version", api_version)],
            request::json(),
        )
    }

    /// An identity's FICs, every page.
    pub fn fics(identity: &UserAssignedIdentityRef, api_version: &str) -> Request<Vec<ArmFederatedIdentityCredential>> {
        let path = fic_path(identity, None);
        arm("list FICs", Method::GET, path, &[("api-version", api_version)], request::pages(Vec::new()))
    }

    /// One FIC by name.
    pub fn fic(
        identity: &UserAssignedIdentityRef,
        name: &str,
        api_version: &str,
    ) -> Request<ArmFederatedIdentityCredential> {
        let path = fic_path(identity, Some(name));
        arm("get FIC", Method::GET, path, &[("api-version", api_version)], request::json())
    }

    /// Creates or updates a FIC (`PUT`, idempotent): the stored FIC, and whether it was created (`201`).
    pub fn put_fic(
        identity: &UserAssignedIdentityRef,
        fic: &FederatedIdentityCredential,
        api_version: &str,
    ) -> Request<(ArmFederatedIdentityCredential, bool)> {
        let decode: request::Decoder<(ArmFederatedIdentityCredential, bool)> =
            Arc::new(|service, operation, response| {
                let stored = crate::clients::decode(service, operation, response.body())?;
                Ok(Step::Done((stored, response.status() == StatusCode::CREATED)))
            });
        let request = arm(
            "create or update FIC",
            Method::PUT,
            fic_path(identity, Some(&fic.name)),
            &[("api-version", api_version)],
            decode,
        );
        match fic.arm_body() {
            Ok(body) => request.json_body(&body),
            Err(e) => request.refused(ApiError::invalid("FIC", e.to_string())),
        }
    }

    /// Deletes a FIC by name.
    pub fn delete_fic(identity: &UserAssignedIdentityRef, name: &str, api_version: &str) -> Request<()> {
        let path = fic_path(identity, Some(name));
        arm("delete FIC", Method::DELETE, path, &[("api-version", api_version)], request::empty())
    }

    /// Creates a user-assigned managed identity, or updates its tags (`PUT`, idempotent).
    pub fn put_user_assigned_identity(
        identity: &UserAssignedIdentityRef,
        location: &str,
        tags: &std::collections::BTreeMap<String, String>,
        api_version: &str,
    ) -> Request<UserAssignedIdentity> {
        arm(
            "create or update user-assigned identity",
            Method::PUT,
            identity.path(),
            &[("api-version", api_version)],
            request::json(),
        )
        .json_body(&serde_json::json!({ "location": location, "tags": tags }))
    }

    /// Deletes a user-assigned managed identity (its FICs go with it). A missing identity is success.
    pub fn delete_user_assigned_identity(identity: &UserAssignedIdentityRef, api_version: &str) -> Request<()> {
        arm(
            "delete user-assigned identity",
            Method::DELETE,
            identity.path(),
            &[("api-version", api_version)],
            request::empty(),
        )
        .absent_ok()
    }

    /// Deletes a role assignment by its full id (`/subscriptions/.../roleAssignments/{name}`). A missing one is
    /// success; an id of another shape is an invalid request.
    pub fn delete_role_assignment(id: &str) -> Request<()> {
        let path = if id.starts_with('/') && id.contains("/providers/Microsoft.Authorization/roleAssignments/") {
            Ok(id.trim_start_matches('/').to_owned())
        } else {
            Err(ApiError::invalid("role assignment", format!("'{id}' is not a role assignment id")))
        };
        arm(
            "delete role assignment",
            Method::DELETE,
            path,
            &[("api-version", AUTHORIZATION_API_VERSION)],
            request::empty(),
        )
        .absent_ok()
    }

    /// Role definitions with a display name (e.g. `Key Vault Secrets User`) at a scope.
    pub fn role_definitions_named(scope: &str, role_name: &str) -> Request<Vec<RoleDefinition>> {
        let path = check_scope(scope).map(|s| format!("{s}/providers/Microsoft.Authorization/roleDefinitions"));
        let filter = format!("roleName eq {}", odata_string(role_name));
        arm(
            "find role definition",
            Method::GET,
            path,
            &[("api-version", AUTHORIZATION_API_VERSION), ("$filter", &filter)],
            request::pages_map(|w: RoleDefinitionWire| RoleDefinition {
                id: w.id,
                name: w.name,
                role_name: w.properties.role_name,
            }),
        )
    }

    /// The role assignments of a principal that apply at, above or below a scope, every page.
    pub fn role_assignments(scope: &str, principal_id: Uuid) -> Request<Vec<RoleAssignment>> {
        let path = check_scope(scope).map(|s| format!("{s}/providers/Microsoft.Authorization/roleAssignments"));
        let filter = format!("principalId eq '{principal_id}'");
        arm(
            "list role assignments",
            Method::GET,
            path,
            &[("api-version", AUTHORIZATION_API_VERSION), ("$filter", &filter)],
            request::pages_map(|w: RoleAssignmentWire| RoleAssignment::from(w)),
        )
    }

    /// Assigns a role to a principal at a scope under the given name (`PUT`).
    pub fn put_role_assignment(
        scope: &str,
        name: Uuid,
        role_definition_id: &str,
        principal_id: Uuid,
    ) -> Request<RoleAssignment> {
        let path = check_scope(scope).map(|s| format!("{s}/providers/Microsoft.Authorization/roleAssignments/{name}"));
        arm(
            "create role assignment",
            Method::PUT,
            path,
            &[("api-version", AUTHORIZATION_API_VERSION)],
            request::json_map(|w: RoleAssignmentWire| RoleAssignment::from(w)),
        )
        .json_body(&serde_json::json!({"properties": {
            "roleDefinitionId": role_definition_id,
            "principalId": principal_id,
            "principalType": "ServicePrincipal",
        }}))
    }
}
