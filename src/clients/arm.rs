//! The Azure Resource Manager client: user-assigned managed identities and their FICs.

use std::sync::Arc;

use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;

use super::{ApiError, Call, ClientOptions, Pipeline, Service};
use crate::auth::TokenSource;
use crate::cloud::CloudProfile;
use crate::fic::{FederatedIdentityCredential, validate_name};

/// The code of ARM's 409 for concurrent FIC writes to one user-assigned identity (retried: the PUT is idempotent).
pub const CONCURRENT_FIC_WRITES: &str = "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity";

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
}

#[derive(Serialize, Deserialize)]
struct FicWire {
    #[serde(default)]
    id: String,
    name: String,
    properties: FicProperties,
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

    fn url(&self, path: &str) -> Result<Url, ApiError> {
        let mut url = self.pipeline.url(path)?;
        url.query_pairs_mut().append_pair("api-version", &self.api_version);
        Ok(url)
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

    /// Reads a user-assigned managed identity (client id, principal id, tenant id).
    pub async fn get_user_assigned_identity(
        &self,
        identity: &UserAssignedIdentityRef,
    ) -> Result<UserAssignedIdentity, ApiError> {
        let call = Call::new("get user-assigned identity", Method::GET, self.url(&identity.path()?)?);
        self.pipeline.json(call).await
    }

    /// Lists the identity's FICs (every page).
    pub async fn list_fics(
        &self,
        identity: &UserAssignedIdentityRef,
    ) -> Result<Vec<ArmFederatedIdentityCredential>, ApiError> {
        let call = Call::new("list FICs", Method::GET, self.url(&Self::fic_path(identity, None)?)?);
        self.pipeline.all_pages(call, &[]).await
    }

    /// Reads one FIC by name.
    pub async fn get_fic(
        &self,
        identity: &UserAssignedIdentityRef,
        name: &str,
    ) -> Result<ArmFederatedIdentityCredential, ApiError> {
        let call = Call::new("get FIC", Method::GET, self.url(&Self::fic_path(identity, Some(name))?)?);
        self.pipeline.json(call).await
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
        let body = fic.arm_body().map_err(|e| ApiError::invalid("FIC", e.to_string()))?;
        let url = self.url(&Self::fic_path(identity, Some(&fic.name))?)?;
        let call = Call::new("create or update FIC", Method::PUT, url).json(&body)?;
        let response = self.pipeline.send(call).await?;
        let created = response.status() == StatusCode::CREATED;
        let stored = super::decode(Service::Arm, "create or update FIC", response.body())?;
        Ok((stored, created))
    }

    /// Deletes a FIC by name. ARM refuses concurrent FIC writes to one identity, deletes included: that 409 is
    /// retried like a 503 (the delete is idempotent).
    pub async fn delete_fic(&self, identity: &UserAssignedIdentityRef, name: &str) -> Result<(), ApiError> {
        let call = Call::new("delete FIC", Method::DELETE, self.url(&Self::fic_path(identity, Some(name))?)?);
        self.pipeline.empty(call).await.map(drop)
    }

    /// Creates a user-assigned managed identity, or updates its tags (`PUT`, idempotent).
    pub async fn create_or_update_user_assigned_identity(
        &self,
        identity: &UserAssignedIdentityRef,
        location: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<UserAssignedIdentity, ApiError> {
        let call = Call::new("create or update user-assigned identity", Method::PUT, self.url(&identity.path()?)?)
            .json(&serde_json::json!({ "location": location, "tags": tags }))?;
        self.pipeline.json(call).await
    }

    /// Deletes a user-assigned managed identity (its FICs go with it). A missing identity is success.
    pub async fn delete_user_assigned_identity(&self, identity: &UserAssignedIdentityRef) -> Result<(), ApiError> {
        let call =
            Call::new("delete user-assigned identity", Method::DELETE, self.url(&identity.path()?)?).retry_safe(true);
        match self.pipeline.empty(call).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes a role assignment by its full id (`/subscriptions/.../roleAssignments/{name}`). A missing one is
    /// success.
    pub async fn delete_role_assignment(&self, id: &str) -> Result<(), ApiError> {
        if !id.starts_with('/') || !id.contains("/providers/Microsoft.Authorization/roleAssignments/") {
            return Err(ApiError::invalid("role assignment", format!("'{id}' is not a role assignment id")));
        }
        let call =
            Call::new("delete role assignment", Method::DELETE, self.authorization_url(id.trim_start_matches('/'))?)
                .retry_safe(true);
        match self.pipeline.empty(call).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn authorization_url(&self, path: &str) -> Result<Url, ApiError> {
        let mut url = self.pipeline.url(path)?;
        url.query_pairs_mut().append_pair("api-version", AUTHORIZATION_API_VERSION);
        Ok(url)
    }

    /// Finds a role definition by its display name (e.g. `Key Vault Secrets User`) at a scope.
    pub async fn find_role_definition(&self, scope: &str, role_name: &str) -> Result<Option<RoleDefinition>, ApiError> {
        let mut url = self
            .authorization_url(&format!("{}/providers/Microsoft.Authorization/roleDefinitions", check_scope(scope)?))?;
        url.query_pairs_mut().append_pair("$filter", &format!("roleName eq {}", super::odata_string(role_name)));
        let found: Vec<RoleDefinitionWire> =
            self.pipeline.all_pages(Call::new("find role definition", Method::GET, url), &[]).await?;
        Ok(found.into_iter().next().map(|w| RoleDefinition {
            id: w.id,
            name: w.name,
            role_name: w.properties.role_name,
        }))
    }

    /// The role assignments of a principal that apply at, above or below a scope (`$filter=principalId eq`),
    /// every page. Compare [`RoleAssignment::scope`] to tell them apart.
    pub async fn list_role_assignments(
        &self,
        scope: &str,
        principal_id: Uuid,
    ) -> Result<Vec<RoleAssignment>, ApiError> {
        let mut url = self
            .authorization_url(&format!("{}/providers/Microsoft.Authorization/roleAssignments", check_scope(scope)?))?;
        url.query_pairs_mut().append_pair("$filter", &format!("principalId eq '{principal_id}'"));
        let found: Vec<RoleAssignmentWire> =
            self.pipeline.all_pages(Call::new("list role assignments", Method::GET, url), &[]).await?;
        Ok(found.into_iter().map(RoleAssignment::from).collect())
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
        let url = self.authorization_url(&format!(
            "{}/providers/Microsoft.Authorization/roleAssignments/{name}",
            check_scope(scope)?
        ))?;
        let body = serde_json::json!({"properties": {
            "roleDefinitionId": role_definition_id,
            "principalId": principal_id,
            "principalType": "ServicePrincipal",
        }});
        let w: RoleAssignmentWire =
            self.pipeline.json(Call::new("create role assignment", Method::PUT, url).json(&body)?).await?;
        Ok(w.into())
    }
}
