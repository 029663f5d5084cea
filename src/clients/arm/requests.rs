//! Every Azure Resource Manager call this crate makes, each written once as a [`Request`] value with
//! its decoder; the managed identity calls take the `Microsoft.ManagedIdentity` api-version
//! ([`DEFAULT_MANAGED_IDENTITY_API_VERSION`](super::DEFAULT_MANAGED_IDENTITY_API_VERSION) unless the client was given another), the role calls use
//! [`AUTHORIZATION_API_VERSION`].

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
pub fn user_assigned_identity(identity: &UserAssignedIdentityRef, api_version: &str) -> Request<UserAssignedIdentity> {
    arm("get user-assigned identity", Method::GET, identity.path(), &[("api-version", api_version)], request::json())
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
    let decode: request::Decoder<(ArmFederatedIdentityCredential, bool)> = Arc::new(|service, operation, response| {
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
    arm("delete role assignment", Method::DELETE, path, &[("api-version", AUTHORIZATION_API_VERSION)], request::empty())
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
