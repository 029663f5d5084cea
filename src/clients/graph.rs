//! The Microsoft Graph client: applications and their federated identity credentials.

use std::sync::Arc;

use uuid::Uuid;

use super::{ApiError, ClientOptions, Pipeline, Service};
use crate::auth::TokenSource;
use crate::cloud::CloudProfile;
use crate::fic::FederatedIdentityCredential;

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

mod models;
pub mod requests;

pub use models::*;
