//! The Dataverse Web API client.

use std::sync::Arc;

use uuid::Uuid;

use super::{Answers, ApiError, Batch, ClientOptions, Created, Pipeline, Request, Service};
use crate::auth::TokenSource;
use crate::entities::{
    ManagedIdentity, NewManagedIdentity, OrganizationDetail, PluginAssembly, PluginPackage, PluginTraceLog,
    PluginTraceLogSetting,
};

/// A client of one environment's Dataverse Web API (`https://{org}/api/data/v9.2/`).
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use dataverse_mi::auth::AzureIdentity;
/// use dataverse_mi::clients::{ClientOptions, DataverseClient, OrgUrl};
///
/// let credential = std::sync::Arc::new(AzureIdentity::new(azure_identity::AzureCliCredential::new(None)?));
/// let client = DataverseClient::new(OrgUrl::parse("https://contoso.crm.dynamics.com")?, credential, ClientOptions::default())?;
/// let org = client.retrieve_current_organization().await?;
/// println!("environment {:?}, tenant {:?}", org.environment_id, org.tenant_id);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DataverseClient {
    pipeline: Pipeline,
    org: OrgUrl,
}

impl DataverseClient {
    /// A client for the environment at `org`. The token is requested for `https://{org host}/.default`.
    pub fn new(org: OrgUrl, credential: Arc<dyn TokenSource>, options: ClientOptions) -> Result<Self, ApiError> {
        let base = match &options.base_url {
            Some(b) => b.clone(),
            None => {
                org.as_url().join("api/data/v9.2/").map_err(|e| ApiError::invalid("organization URL", e.to_string()))?
            }
        };
        Ok(DataverseClient { pipeline: Pipeline::new(Service::Dataverse, base, credential, options)?, org })
    }

    /// The organization URL.
    pub fn org_url(&self) -> &OrgUrl {
        &self.org
    }

    /// The scope tokens are requested for.
    pub fn scope(&self) -> &str {
        self.pipeline.scope()
    }

    /// Sends one request (from [`requests`]) and reads its answer with its decoder: every page of a collection.
    ///
    /// ```no_run
    /// # async fn f(client: dataverse_mi::clients::DataverseClient) -> Result<(), dataverse_mi::clients::ApiError> {
    /// use dataverse_mi::clients::dataverse::requests;
    /// let rows = client.send(requests::managed_identities(Some("statecode eq 0"))).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send<T: Send + 'static>(&self, request: Request<T>) -> Result<T, ApiError> {
        self.pipeline.execute(request).await
    }

    /// Sends a batch of requests in `$batch` round trips (one for up to 1,000 requests; `Prefer:
    /// odata.continue-on-error`, so one failing request does not stop the others): each answer read by its own
    /// request's decoder, a collection's further pages read alone. Requests answered 429 are sent again in a new
    /// batch after the wait they ask for. A batch that fails as a whole (not sent, not answered, not readable) is
    /// every request's error, of its kind (`is_throttled`, `status`, ...); nothing is sent again one by one behind
    /// the caller's back: [`send_each`](Self::send_each) does that when asked.
    pub async fn send_batch(&self, batch: &Batch) -> Answers {
        self.pipeline.send_dataverse_batch(batch).await
    }

    /// Sends each request of a batch on its own (concurrently, within the client's concurrency limit).
    pub async fn send_each(&self, batch: &Batch) -> Answers {
        self.pipeline.send_each(batch).await
    }

    /// Sends a batch as one change set: its requests succeed or fail together, in order. A request naming the row an
    /// earlier one creates ([`requests::create_managed_identity`]) refers to it by `Content-ID`. The error is the
    /// failing request's, typed as its single request's would be; a change set answered 429 is sent again after the
    /// wait it asks for.
    pub async fn send_change_set(&self, batch: &Batch) -> Result<Answers, ApiError> {
        self.pipeline.send_change_set(batch).await
    }

    /// `RetrieveCurrentOrganization`: the environment id, tenant id, organization id and names.
    pub async fn retrieve_current_organization(&self) -> Result<OrganizationDetail, ApiError> {
        self.send(requests::current_organization()).await
    }

    /// `WhoAmI`.
    pub async fn who_am_i(&self) -> Result<WhoAmI, ApiError> {
        self.send(requests::who_am_i()).await
    }

    /// Creates a managed identity row with its client-chosen id and returns it as stored, or, when the service
    /// answers `204 No Content` with only an `OData-EntityId` header (it may, although the representation was
    /// asked for), the id from that header.
    ///
    /// Retried on transient failures: the id is chosen by the client, so a second sending after a lost answer
    /// fails with a duplicate key ([`ApiError::is_conflict`]) instead of creating a second row.
    pub async fn create_managed_identity(
        &self,
        row: &NewManagedIdentity,
    ) -> Result<Created<ManagedIdentity>, ApiError> {
        self.send(requests::create_managed_identity(row)).await
    }

    /// Reads a managed identity row.
    pub async fn get_managed_identity(&self, id: Uuid) -> Result<ManagedIdentity, ApiError> {
        self.send(requests::managed_identity(id)).await
    }

    /// Lists managed identity rows, optionally filtered (an OData `$filter` expression), every page.
    pub async fn list_managed_identities(&self, filter: Option<&str>) -> Result<Vec<ManagedIdentity>, ApiError> {
        self.send(requests::managed_identities(filter)).await
    }

    /// Updates columns of an existing row (`If-Match: *`: never creates one). Safe to retry: it sets values.
    pub async fn update_managed_identity(&self, id: Uuid, update: &ManagedIdentityUpdate) -> Result<(), ApiError> {
        self.send(requests::update_managed_identity(id, update)).await
    }

    /// Deletes a managed identity row (which also clears the components' links to it).
    pub async fn delete_managed_identity(&self, id: Uuid) -> Result<(), ApiError> {
        self.send(requests::delete_managed_identity(id)).await
    }

    /// Reads a plug-in assembly.
    pub async fn get_plugin_assembly(&self, id: Uuid) -> Result<PluginAssembly, ApiError> {
        self.send(requests::plugin_assembly(id)).await
    }

    /// Finds plug-in assemblies by name, many names in one `$filter` (names are escaped).
    pub async fn find_plugin_assemblies_by_name(&self, names: &[&str]) -> Result<Vec<PluginAssembly>, ApiError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        self.send(requests::plugin_assemblies_named(names)).await
    }

    /// Lists every plug-in assembly.
    pub async fn list_plugin_assemblies(&self) -> Result<Vec<PluginAssembly>, ApiError> {
        self.send(requests::plugin_assemblies()).await
    }

    /// Reads a plug-in package.
    pub async fn get_plugin_package(&self, id: Uuid) -> Result<PluginPackage, ApiError> {
        self.send(requests::plugin_package(id)).await
    }

    /// Finds plug-in packages by unique name, many in one `$filter` (names are escaped).
    pub async fn find_plugin_packages_by_name(&self, unique_names: &[&str]) -> Result<Vec<PluginPackage>, ApiError> {
        if unique_names.is_empty() {
            return Ok(Vec::new());
        }
        self.send(requests::plugin_packages_named(unique_names)).await
    }

    /// Lists every plug-in package.
    pub async fn list_plugin_packages(&self) -> Result<Vec<PluginPackage>, ApiError> {
        self.send(requests::plugin_packages()).await
    }

    /// The managed identity rows, plug-in assemblies and plug-in packages of the environment, read at once: what
    /// `dataverse-mi status` shows.
    pub async fn environment_status(&self) -> Result<EnvironmentStatus, ApiError> {
        let (managed_identities, plugin_assemblies, plugin_packages) = futures_util::try_join!(
            self.list_managed_identities(None),
            self.list_plugin_assemblies(),
            self.list_plugin_packages()
        )?;
        Ok(EnvironmentStatus { managed_identities, plugin_assemblies, plugin_packages })
    }

    /// Binds a component to a managed identity row (`If-Match: *`: the component must exist). Safe to retry.
    pub async fn bind(&self, kind: ComponentKind, component: Uuid, managed_identity: Uuid) -> Result<(), ApiError> {
        self.send(requests::bind(kind, component, managed_identity)).await
    }

    /// Removes a component's binding. Safe to retry.
    pub async fn unbind(&self, kind: ComponentKind, component: Uuid) -> Result<(), ApiError> {
        self.send(requests::unbind(kind, component)).await
    }

    /// The managed identity a component is bound to, if any.
    pub async fn binding(&self, kind: ComponentKind, component: Uuid) -> Result<Option<Uuid>, ApiError> {
        self.send(requests::binding(kind, component)).await
    }

    /// Plug-in trace log rows created after `since` (ISO 8601, e.g. `2026-11-22T10:00:00Z`), oldest first, every
    /// page; optionally only those of plug-in types whose name starts with `type_prefix` (escaped).
    pub async fn list_plugin_trace_logs(
        &self,
        since: &str,
        type_prefix: Option<&str>,
    ) -> Result<Vec<PluginTraceLog>, ApiError> {
        self.send(requests::plugin_trace_logs(since, type_prefix)).await
    }

    /// [`list_plugin_trace_logs`](Self::list_plugin_trace_logs) page by page, as the pages come: a reader keeps one
    /// page (at most 500 rows) in memory at a time, however long the time window.
    pub fn plugin_trace_log_pages(
        &self,
        since: &str,
        type_prefix: Option<&str>,
    ) -> futures_util::stream::BoxStream<'_, Result<Vec<PluginTraceLog>, ApiError>> {
        Box::pin(self.pipeline.pages(requests::plugin_trace_logs(since, type_prefix)))
    }

    /// The organization's plug-in trace log setting, and the organization row's id (to change it).
    pub async fn plugin_trace_log_setting(&self) -> Result<(Uuid, PluginTraceLogSetting), ApiError> {
        self.send(requests::plugin_trace_log_setting()).await
    }

    /// Changes the organization's plug-in trace log setting. Safe to retry.
    pub async fn set_plugin_trace_log_setting(
        &self,
        organization: Uuid,
        setting: PluginTraceLogSetting,
    ) -> Result<(), ApiError> {
        self.send(requests::set_plugin_trace_log_setting(organization, setting)).await
    }

    /// The bytes the platform keeps for a registered component, whose signature is the one the platform checks:
    /// an assembly's `content` (Base64 of the `.dll`), a package's `content`, or, where that column is empty, the
    /// package's file column (`pluginpackages({id})/fileid/$value`). `None` when nothing is registered. Only that
    /// column is selected: the bytes can be megabytes, and nothing else is read with them.
    pub async fn registered_content(&self, kind: ComponentKind, component: Uuid) -> Result<Option<Vec<u8>>, ApiError> {
        self.send(requests::registered_content(kind, component)).await
    }

    /// `GetComponentManagedIdentityFIC`: the subject the platform computes for a component, the authoritative
    /// value to check a locally computed subject against.
    pub async fn get_component_managed_identity_fic(
        &self,
        kind: ComponentKind,
        component: Uuid,
    ) -> Result<ComponentManagedIdentityFic, ApiError> {
        self.send(requests::component_fic(kind, component)).await
    }
}

mod models;
pub mod requests;

pub use models::*;
