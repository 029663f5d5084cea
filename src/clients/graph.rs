//! The Microsoft Graph client: applications and their federated identity credentials.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ApiError, ClientOptions, Pipeline, Service};
use crate::auth::TokenSource;
use crate::cloud::CloudProfile;
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
    fn path(self) -> String {
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

fn yes() -> bool {
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

/// A Microsoft Graph client (`{graph endpoint}/v1.0/`).
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use dataverse_mi::auth::AzureIdentity;
/// use dataverse_mi::clients::{AppRef, ClientOptions, GraphClient};
/// use dataverse_mi::cloud::{Cloud, CloudProfile};
///
/// let credential = Arc::new(AzureIdentity::new(azure_identity::AzureCliCredential::new(None)?));
/// let graph = GraphClient::new(&CloudProfile::from(Cloud::Public), credential, ClientOptions::default())?;
/// let app = AppRef::AppId("0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b".parse()?);
/// for fic in graph.list_fics(app).await? {
///     println!("{}: {}", fic.credential.name, fic.credential.subject);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GraphClient {
    pipeline: Pipeline,
}

#[derive(Serialize)]
struct FicUpdate<'a> {
    issuer: &'a str,
    subject: &'a str,
    audiences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
}

impl GraphClient {
    /// A client for the cloud's Graph endpoint (or `options.base_url`).
    pub fn new(
        cloud: &CloudProfile,
        credential: Arc<dyn TokenSource>,
        options: ClientOptions,
    ) -> Result<Self, ApiError> {
        let base = super::base_url(&options, &cloud.graph_endpoint, "v1.0/", "Graph endpoint")?;
        Ok(GraphClient { pipeline: Pipeline::new(Service::Graph, base, credential, options)? })
    }

    /// The scope tokens are requested for.
    pub fn scope(&self) -> &str {
        self.pipeline.scope()
    }

    /// Reads an application (object id, app id, display name).
    pub async fn get_application(&self, app: AppRef) -> Result<Application, ApiError> {
        self.send(requests::application(app)).await
    }

    /// Deletes an application registration (Entra deletes its service principal with it, and keeps both in its
    /// deleted items for 30 days). Safe to retry: a second sending finds nothing, which is success.
    pub async fn delete_application(&self, app: AppRef) -> Result<(), ApiError> {
        self.send(requests::delete_application(app)).await
    }

    /// Finds applications by display name (escaped), every page.
    pub async fn find_applications_by_display_name(&self, display_name: &str) -> Result<Vec<Application>, ApiError> {
        self.send(requests::applications_named(display_name)).await
    }

    /// Creates an application registration with no credentials at all (this crate never adds a password or a
    /// key), tagged [`CREATED_TAG`] so that a teardown can tell it made it. Not retried: a second sending would
    /// create a second application; find it by name instead.
    pub async fn create_application(&self, display_name: &str) -> Result<Application, ApiError> {
        self.send(requests::create_application(display_name)).await
    }

    /// Creates the application's service principal. Safe to retry: a tenant holds one per application, so a
    /// second sending fails as a conflict.
    pub async fn create_service_principal(&self, app_id: Uuid) -> Result<ServicePrincipal, ApiError> {
        self.send(requests::create_service_principal(app_id)).await
    }

    /// Reads the service principal of an application (`servicePrincipals(appId='...')`); not found when the
    /// application has none in this tenant yet.
    pub async fn get_service_principal(&self, app_id: Uuid) -> Result<ServicePrincipal, ApiError> {
        self.send(requests::service_principal(app_id)).await
    }

    /// Lists the application's FICs (every page).
    pub async fn list_fics(&self, app: AppRef) -> Result<Vec<GraphFederatedIdentityCredential>, ApiError> {
        self.send(requests::fics(app)).await
    }

    /// Reads one FIC by id or name.
    pub async fn get_fic(&self, app: AppRef, id_or_name: &str) -> Result<GraphFederatedIdentityCredential, ApiError> {
        self.send(requests::fic(app, id_or_name)).await
    }

    /// Sends one request (from [`requests`]) and reads its answer with its decoder.
    pub async fn send<T: Send + 'static>(&self, request: super::Request<T>) -> Result<T, ApiError> {
        self.pipeline.execute(request).await
    }

    /// Sends a batch of requests as Graph JSON batches (at most [`GRAPH_BATCH_LIMIT`](super::GRAPH_BATCH_LIMIT) a
    /// round trip; Graph answers in any order, matched by id): each answer read by its own request's decoder. A
    /// request answered 429 is sent again after its own `Retry-After`, never at once; a batch that fails as a whole
    /// is every request's error, of its kind (`is_throttled`, ...).
    pub async fn send_batch(&self, batch: &super::Batch) -> super::Answers {
        self.pipeline.send_graph_batch(batch).await
    }

    /// Creates a FIC (validated first).
    ///
    /// Retried on transient failures: FIC names are unique per application, so a second sending after a lost
    /// answer fails as a conflict instead of creating a twin.
    pub async fn create_fic(
        &self,
        app: AppRef,
        fic: &FederatedIdentityCredential,
    ) -> Result<GraphFederatedIdentityCredential, ApiError> {
        self.send(requests::create_fic(app, fic)).await
    }

    /// Creates FICs on one application in Graph JSON batches ([`send_batch`](Self::send_batch)): each one's outcome,
    /// typed as [`create_fic`](Self::create_fic)'s would be.
    pub async fn create_fics_batch(
        &self,
        app: AppRef,
        fics: &[FederatedIdentityCredential],
    ) -> Vec<Result<GraphFederatedIdentityCredential, ApiError>> {
        let mut batch = super::Batch::new();
        let slots: Vec<_> = fics.iter().map(|fic| batch.add(requests::create_fic(app, fic))).collect();
        let mut answers = self.send_batch(&batch).await;
        slots.into_iter().map(|slot| answers.take(slot)).collect()
    }

    /// Updates a FIC's issuer, subject, audiences and description (the name cannot change). Safe to retry.
    pub async fn update_fic(
        &self,
        app: AppRef,
        id_or_name: &str,
        fic: &FederatedIdentityCredential,
    ) -> Result<(), ApiError> {
        self.send(requests::update_fic(app, id_or_name, fic)).await
    }

    /// Deletes a FIC by id or name.
    pub async fn delete_fic(&self, app: AppRef, id_or_name: &str) -> Result<(), ApiError> {
        self.send(requests::delete_fic(app, id_or_name)).await
    }

    /// Creates or updates a FIC by name (`PATCH .../federatedIdentityCredentials(name='{name}')`). Safe to retry.
    ///
    /// Sends `Prefer: create-if-missing`, which Graph requires for the upsert behaviour: without it the request is
    /// treated as an update and a missing FIC answers 404 (Graph docs, "Upsert federatedIdentityCredential").
    pub async fn upsert_fic(&self, app: AppRef, fic: &FederatedIdentityCredential) -> Result<UpsertOutcome, ApiError> {
        self.send(requests::upsert_fic(app, fic)).await
    }
}

/// Every Microsoft Graph call this crate makes, each written once as a [`Request`](super::Request) value with its
/// decoder: sent by [`GraphClient::send`] or in a [`Batch`](super::Batch) by [`GraphClient::send_batch`].
pub mod requests {
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
        Request::new("create application", Method::POST, "applications", request::json()).json_body(
            &serde_json::json!({
                "displayName": display_name,
                "signInAudience": "AzureADMyOrg",
                "tags": [CREATED_TAG],
            }),
        )
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
        let request = Request::new("update FIC", Method::PATCH, fics_path(app, Some(id_or_name)), request::empty())
            .retry_safe(true);
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
}
