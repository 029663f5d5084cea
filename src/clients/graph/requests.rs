//! Every Microsoft Graph call this crate makes, each written once as a [`Request`] value with its
//! decoder: sent by [`GraphClient::send`](super::GraphClient::send) or in a [`Batch`](super::super::Batch) by [`GraphClient::send_batch`](super::GraphClient::send_batch).

use std::sync::Arc;

use http::{Method, StatusCode};
use uuid::Uuid;

use super::{
    AppRef, AppRoleAssignment, Application, CREATED_TAG, DirectoryPrincipal, FicUpdate,
    GraphFederatedIdentityCredential, ResourceServicePrincipal, ServicePrincipal, UpsertOutcome,
};
use crate::clients::request::{self, Request, Step};
use crate::clients::{ApiError, odata_string, path_segment, with_query};
use crate::fic::{FederatedIdentityCredential, validate_name};

fn fics_path(app: AppRef, tail: Option<&str>) -> String {
    match tail {
        Some(segment) => format!("{}/federatedIdentityCredentials/{}", app.path(), path_segment(segment)),
        None => format!("{}/federatedIdentityCredentials", app.path()),
    }
}

/// An application (object id, app id, display name, tags).
pub fn application(app: AppRef) -> Request<Application> {
    let path = with_query(app.path(), &[("$select", "id,appId,displayName,tags")]);
    Request::new("get application", Method::GET, path, request::json())
}

/// Deletes an application registration (with its service principal). Safe to retry: one already gone is
/// success.
pub fn delete_application(app: AppRef) -> Request<()> {
    Request::new("delete application", Method::DELETE, app.path(), request::empty()).retry_safe(true).absent_ok()
}

/// Applications by display name (escaped), every page.
pub fn applications_named(display_name: &str) -> Request<Vec<Application>> {
    let filter = format!("displayName eq {}", odata_string(display_name));
    let path = with_query("applications".into(), &[("$filter", &filter), ("$select", "id,appId,displayName")]);
    Request::new("find applications", Method::GET, path, request::pages(Vec::new()))
}

/// Creates an application registration with no credentials, tagged [`CREATED_TAG`]. Not safe to retry.
pub fn create_application(display_name: &str) -> Request<Application> {
    Request::new("create application", Method::POST, "applications", request::json()).json_body(&serde_json::json!({
        "displayName": display_name,
        "signInAudience": "AzureADMyOrg",
        "tags": [CREATED_TAG],
    }))
}

/// Creates an application's service principal. Safe to retry (one per application: a conflict the second time).
pub fn create_service_principal(app_id: Uuid) -> Request<ServicePrincipal> {
    Request::new("create service principal", Method::POST, "servicePrincipals", request::json())
        .json_body(&serde_json::json!({ "appId": app_id }))
        .retry_safe(true)
}

/// The service principal of an application.
pub fn service_principal(app_id: Uuid) -> Request<ServicePrincipal> {
    let path = with_query(format!("servicePrincipals(appId='{app_id}')"), &[("$select", "id,appId")]);
    Request::new("get service principal", Method::GET, path, request::json())
}

/// An API's service principal with the roles and delegated permissions it defines (Microsoft Graph's:
/// [`MICROSOFT_GRAPH_APP_ID`](super::MICROSOFT_GRAPH_APP_ID)).
pub fn resource_service_principal(app_id: Uuid) -> Request<ResourceServicePrincipal> {
    let path = with_query(
        format!("servicePrincipals(appId='{app_id}')"),
        &[("$select", "id,appId,displayName,appRoles,oauth2PermissionScopes")],
    );
    Request::new("get API service principal", Method::GET, path, request::json())
}

/// The service principal of a client id, with its type and alternative names (to tell an app registration's
/// from a managed identity's, and find a user-assigned identity's resource id).
pub fn directory_principal(app_id: Uuid) -> Request<DirectoryPrincipal> {
    let path = with_query(
        format!("servicePrincipals(appId='{app_id}')"),
        &[("$select", "id,appId,servicePrincipalType,alternativeNames")],
    );
    Request::new("get directory principal", Method::GET, path, request::json())
}

/// The app roles given to a service principal (its application permissions), every page.
pub fn app_role_assignments(principal_id: Uuid) -> Request<Vec<AppRoleAssignment>> {
    let path = format!("servicePrincipals/{principal_id}/appRoleAssignments");
    Request::new("list app role assignments", Method::GET, path, request::pages(Vec::new()))
}

/// Gives a service principal an app role of an API (an application permission). Not safe to retry blindly: a
/// second sending is refused as a duplicate, so a caller reads the assignments again after a lost answer.
pub fn assign_app_role(principal_id: Uuid, resource_id: Uuid, app_role_id: Uuid) -> Request<AppRoleAssignment> {
    let path = format!("servicePrincipals/{principal_id}/appRoleAssignments");
    Request::new("assign app role", Method::POST, path, request::json()).json_body(&serde_json::json!({
        "principalId": principal_id,
        "resourceId": resource_id,
        "appRoleId": app_role_id,
    }))
}

/// Takes an app role assignment away. Safe to retry.
pub fn remove_app_role_assignment(principal_id: Uuid, assignment_id: &str) -> Request<()> {
    let path = format!("servicePrincipals/{principal_id}/appRoleAssignments/{assignment_id}");
    Request::new("remove app role assignment", Method::DELETE, path, request::empty()).retry_safe(true)
}

/// An application's FICs, every page.
pub fn fics(app: AppRef) -> Request<Vec<GraphFederatedIdentityCredential>> {
    Request::new("list FICs", Method::GET, fics_path(app, None), request::pages(Vec::new()))
}

/// One FIC by id or name.
pub fn fic(app: AppRef, id_or_name: &str) -> Request<GraphFederatedIdentityCredential> {
    Request::new("get FIC", Method::GET, fics_path(app, Some(id_or_name)), request::json())
}

/// Creates a FIC on an application (validated first: an invalid FIC is an invalid request). Safe to retry: FIC
/// names are unique per application, so a second sending after a lost answer fails as a conflict.
pub fn create_fic(app: AppRef, fic: &FederatedIdentityCredential) -> Request<GraphFederatedIdentityCredential> {
    let request = Request::new("create FIC", Method::POST, fics_path(app, None), request::json()).retry_safe(true);
    match fic.graph_body() {
        Ok(body) => request.json_body(&body),
        Err(e) => request.refused(ApiError::invalid("FIC", e.to_string())),
    }
}

/// Updates a FIC's issuer, subject, audiences and description (validated first). Safe to retry.
pub fn update_fic(app: AppRef, id_or_name: &str, fic: &FederatedIdentityCredential) -> Request<()> {
    let request =
        Request::new("update FIC", Method::PATCH, fics_path(app, Some(id_or_name)), request::empty()).retry_safe(true);
    match fic.validate() {
        Ok(()) => request.json_body(&FicUpdate {
            issuer: &fic.issuer,
            subject: &fic.subject,
            audiences: &fic.audiences,
            description: fic.description.as_deref(),
        }),
        Err(e) => request.refused(ApiError::invalid("FIC", e.to_string())),
    }
}

/// Deletes a FIC by id or name.
pub fn delete_fic(app: AppRef, id_or_name: &str) -> Request<()> {
    Request::new("delete FIC", Method::DELETE, fics_path(app, Some(id_or_name)), request::empty())
}

/// Creates or updates a FIC by name (`Prefer: create-if-missing`, which Graph requires for the upsert). Safe to
/// retry.
pub fn upsert_fic(app: AppRef, fic: &FederatedIdentityCredential) -> Request<UpsertOutcome> {
    let decode: request::Decoder<UpsertOutcome> = Arc::new(|_, _, response| {
        Ok(Step::Done(if response.status() == StatusCode::CREATED {
            UpsertOutcome::Created
        } else {
            UpsertOutcome::Updated
        }))
    });
    // validate_name allows only letters, digits, '-' and '_': nothing to escape in the key.
    let path = format!("{}/federatedIdentityCredentials(name='{}')", app.path(), fic.name);
    let request = Request::new("upsert FIC", Method::PATCH, path, decode)
        .header(http::header::HeaderName::from_static("prefer"), "create-if-missing")
        .retry_safe(true);
    match fic.graph_body().and_then(|body| validate_name(&fic.name).map(|()| body)) {
        Ok(body) => request.json_body(&body),
        Err(e) => request.refused(ApiError::invalid("FIC", e.to_string())),
    }
}
