//! The Azure Resource Manager client: user-assigned managed identities and their FICs.

use std::sync::Arc;

use uuid::Uuid;

use super::{ApiError, ClientOptions, Pipeline, Service};
use crate::auth::TokenSource;
use crate::cloud::CloudProfile;
use crate::fic::FederatedIdentityCredential;

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

mod models;
pub mod requests;

pub use models::*;
