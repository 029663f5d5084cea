//! What the engine needs from the services, as traits, implemented by the clients.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::clients::{
    ApiError, AppRef, ArmClient, ComponentKind, ComponentManagedIdentityFic, DataverseClient, GraphClient,
    ManagedIdentityUpdate, UserAssignedIdentityRef,
};
use crate::entities::{
    ManagedIdentity, NewManagedIdentity, OrganizationDetail, PluginAssembly, PluginPackage, PluginTraceLog,
    PluginTraceLogSetting,
};
use crate::fic::FederatedIdentityCredential;

/// The identity's FICs, on Graph (app registration) or ARM (user-assigned identity).
#[async_trait]
pub trait IdentityApi: Send + Sync + fmt::Debug {
    /// The client id that goes in the `managedidentity` row's `applicationid`.
    async fn application_id(&self) -> Result<Uuid, ApiError>;
    /// Every FIC on the identity.
    async fn list_fics(&self) -> Result<Vec<FederatedIdentityCredential>, ApiError>;
    /// Creates a FIC.
    async fn create_fic(&self, fic: &FederatedIdentityCredential) -> Result<(), ApiError>;
    /// Deletes a FIC by name.
    async fn delete_fic(&self, name: &str) -> Result<(), ApiError>;
    /// A short description for reports, e.g. `app registration 0b5a...`.
    fn describe(&self) -> String;
}

/// An app registration through Graph.
#[derive(Debug, Clone)]
pub struct GraphIdentity {
    /// The client.
    pub client: GraphClient,
    /// The application (client) id.
    pub app_id: Uuid,
}

#[async_trait]
impl IdentityApi for GraphIdentity {
    async fn application_id(&self) -> Result<Uuid, ApiError> {
        Ok(self.app_id)
    }
    async fn list_fics(&self) -> Result<Vec<FederatedIdentityCredential>, ApiError> {
        Ok(self.client.list_fics(AppRef::AppId(self.app_id)).await?.into_iter().map(|f| f.credential).collect())
    }
    async fn create_fic(&self, fic: &FederatedIdentityCredential) -> Result<(), ApiError> {
        self.client.create_fic(AppRef::AppId(self.app_id), fic).await.map(drop)
    }
    async fn delete_fic(&self, name: &str) -> Result<(), ApiError> {
        self.client.delete_fic(AppRef::AppId(self.app_id), name).await
    }
    fn describe(&self) -> String {
        format!("app registration {}", self.app_id)
    }
}

/// A user-assigned managed identity through ARM. Writes are serialized: ARM refuses concurrent FIC writes
/// to one identity (409).
#[derive(Debug, Clone)]
pub struct ArmIdentity {
    /// The client.
    pub client: ArmClient,
    /// The identity.
    pub identity: UserAssignedIdentityRef,
    writes: Arc<Mutex<()>>,
}

impl ArmIdentity {
    /// Wraps a client and an identity.
    pub fn new(client: ArmClient, identity: UserAssignedIdentityRef) -> Self {
        ArmIdentity { client, identity, writes: Arc::new(Mutex::new(())) }
    }
}

#[async_trait]
impl IdentityApi for ArmIdentity {
    async fn application_id(&self) -> Result<Uuid, ApiError> {
        Ok(self.client.get_user_assigned_identity(&self.identity).await?.client_id)
    }
    async fn list_fics(&self) -> Result<Vec<FederatedIdentityCredential>, ApiError> {
        Ok(self.client.list_fics(&self.identity).await?.into_iter().map(|f| f.credential).collect())
    }
    async fn create_fic(&self, fic: &FederatedIdentityCredential) -> Result<(), ApiError> {
        let _one_at_a_time = self.writes.lock().await;
        self.client.create_or_update_fic(&self.identity, fic).await.map(drop)
    }
    async fn delete_fic(&self, name: &str) -> Result<(), ApiError> {
        let _one_at_a_time = self.writes.lock().await;
        self.client.delete_fic(&self.identity, name).await
    }
    fn describe(&self) -> String {
        format!("user-assigned identity {}/{}", self.identity.resource_group, self.identity.name)
    }
}

/// The Dataverse calls the engine makes.
#[async_trait]
pub trait DataverseApi: Send + Sync + fmt::Debug {
    /// `RetrieveCurrentOrganization`.
    async fn retrieve_current_organization(&self) -> Result<OrganizationDetail, ApiError>;
    /// Managed identity rows matching a filter.
    async fn list_managed_identities(&self, filter: &str) -> Result<Vec<ManagedIdentity>, ApiError>;
    /// Reads one row.
    async fn get_managed_identity(&self, id: Uuid) -> Result<ManagedIdentity, ApiError>;
    /// Creates a row.
    async fn create_managed_identity(&self, row: &NewManagedIdentity) -> Result<(), ApiError>;
    /// Updates a row.
    async fn update_managed_identity(&self, id: Uuid, update: &ManagedIdentityUpdate) -> Result<(), ApiError>;
    /// Plug-in assemblies by name.
    async fn find_plugin_assemblies(&self, names: &[&str]) -> Result<Vec<PluginAssembly>, ApiError>;
    /// Plug-in packages by unique name.
    async fn find_plugin_packages(&self, names: &[&str]) -> Result<Vec<PluginPackage>, ApiError>;
    /// One plug-in assembly.
    async fn get_plugin_assembly(&self, id: Uuid) -> Result<PluginAssembly, ApiError>;
    /// One plug-in package.
    async fn get_plugin_package(&self, id: Uuid) -> Result<PluginPackage, ApiError>;
    /// Binds a component.
    async fn bind(&self, kind: ComponentKind, component: Uuid, managed_identity: Uuid) -> Result<(), ApiError>;
    /// The platform's subject for a component.
    async fn component_fic(
        &self,
        kind: ComponentKind,
        component: Uuid,
    ) -> Result<ComponentManagedIdentityFic, ApiError>;
    /// Plug-in trace log rows created after `since` (ISO 8601).
    async fn plugin_trace_logs(&self, since: &str) -> Result<Vec<PluginTraceLog>, ApiError>;
    /// The organization's plug-in trace log setting and the organization row's id.
    async fn plugin_trace_log_setting(&self) -> Result<(Uuid, PluginTraceLogSetting), ApiError>;
    /// Changes the plug-in trace log setting.
    async fn set_plugin_trace_log_setting(
        &self,
        organization: Uuid,
        setting: PluginTraceLogSetting,
    ) -> Result<(), ApiError>;
}

#[async_trait]
impl DataverseApi for DataverseClient {
    async fn retrieve_current_organization(&self) -> Result<OrganizationDetail, ApiError> {
        DataverseClient::retrieve_current_organization(self).await
    }
    async fn list_managed_identities(&self, filter: &str) -> Result<Vec<ManagedIdentity>, ApiError> {
        DataverseClient::list_managed_identities(self, Some(filter)).await
    }
    async fn get_managed_identity(&self, id: Uuid) -> Result<ManagedIdentity, ApiError> {
        DataverseClient::get_managed_identity(self, id).await
    }
    async fn create_managed_identity(&self, row: &NewManagedIdentity) -> Result<(), ApiError> {
        DataverseClient::create_managed_identity(self, row).await.map(drop)
    }
    async fn update_managed_identity(&self, id: Uuid, update: &ManagedIdentityUpdate) -> Result<(), ApiError> {
        DataverseClient::update_managed_identity(self, id, update).await
    }
    async fn find_plugin_assemblies(&self, names: &[&str]) -> Result<Vec<PluginAssembly>, ApiError> {
        self.find_plugin_assemblies_by_name(names).await
    }
    async fn find_plugin_packages(&self, names: &[&str]) -> Result<Vec<PluginPackage>, ApiError> {
        self.find_plugin_packages_by_name(names).await
    }
    async fn get_plugin_assembly(&self, id: Uuid) -> Result<PluginAssembly, ApiError> {
        DataverseClient::get_plugin_assembly(self, id).await
    }
    async fn get_plugin_package(&self, id: Uuid) -> Result<PluginPackage, ApiError> {
        DataverseClient::get_plugin_package(self, id).await
    }
    async fn bind(&self, kind: ComponentKind, component: Uuid, managed_identity: Uuid) -> Result<(), ApiError> {
        DataverseClient::bind(self, kind, component, managed_identity).await
    }
    async fn component_fic(
        &self,
        kind: ComponentKind,
        component: Uuid,
    ) -> Result<ComponentManagedIdentityFic, ApiError> {
        self.get_component_managed_identity_fic(kind, component).await
    }
    async fn plugin_trace_logs(&self, since: &str) -> Result<Vec<PluginTraceLog>, ApiError> {
        self.list_plugin_trace_logs(since, None).await
    }
    async fn plugin_trace_log_setting(&self) -> Result<(Uuid, PluginTraceLogSetting), ApiError> {
        DataverseClient::plugin_trace_log_setting(self).await
    }
    async fn set_plugin_trace_log_setting(
        &self,
        organization: Uuid,
        setting: PluginTraceLogSetting,
    ) -> Result<(), ApiError> {
        DataverseClient::set_plugin_trace_log_setting(self, organization, setting).await
    }
}

/// Makes a Dataverse client for an organization URL.
pub trait DataverseConnector: Send + Sync + fmt::Debug {
    /// The client for `org_url`.
    fn connect(&self, org_url: &str) -> Result<Arc<dyn DataverseApi>, ApiError>;
}

/// The connector the front ends use: a [`DataverseClient`] per organization URL, all sharing one token cache
/// and the options given (e.g. a shared concurrency limit and request counters). Clients are made on demand and
/// not kept: with the shared token cache they cost a few allocations, and keeping one per environment would
/// make memory grow with the number of environments.
#[derive(Debug)]
pub struct ClientConnector {
    credential: Arc<dyn crate::auth::TokenSource>,
    options: crate::clients::ClientOptions,
    route_prefix: Option<String>,
}

impl ClientConnector {
    /// Real environments: organization URLs must be Dataverse hosts.
    pub fn new(credential: Arc<dyn crate::auth::TokenSource>, options: crate::clients::ClientOptions) -> Self {
        let credential: Arc<dyn crate::auth::TokenSource> = Arc::new(crate::auth::TokenCache::new(credential));
        ClientConnector { credential, options, route_prefix: None }
    }

    /// A fake served over loopback HTTP whose environments live under `{prefix}/dv/{host}/` (the testkit's layout).
    pub fn with_route_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.route_prefix = Some(prefix.into());
        self
    }
}

impl DataverseConnector for ClientConnector {
    fn connect(&self, org_url: &str) -> Result<Arc<dyn DataverseApi>, ApiError> {
        let mut options = self.options.clone();
        let org = match &self.route_prefix {
            Some(prefix) => {
                let org = crate::clients::OrgUrl::any_host(org_url)?;
                let base = format!("{prefix}/dv/{}/api/data/v9.2/", org.host());
                options.base_url = Some(base.parse().map_err(|_| ApiError::invalid("URL", base))?);
                org
            }
            None if options.transport.is_some() => crate::clients::OrgUrl::any_host(org_url)?,
            None => crate::clients::OrgUrl::parse(org_url)?,
        };
        Ok(Arc::new(DataverseClient::new(org, self.credential.clone(), options)?))
    }
}

/// The identity API a spec names: Graph for an app registration, ARM for a user-assigned identity.
pub fn identity_api(
    spec: &super::IdentitySpec,
    cloud: &crate::cloud::CloudProfile,
    credential: Arc<dyn crate::auth::TokenSource>,
    graph_options: crate::clients::ClientOptions,
    arm_options: crate::clients::ClientOptions,
) -> Result<Arc<dyn IdentityApi>, ApiError> {
    Ok(match spec {
        super::IdentitySpec::AppRegistration { app_id } => {
            Arc::new(GraphIdentity { client: GraphClient::new(cloud, credential, graph_options)?, app_id: *app_id })
        }
        super::IdentitySpec::UserAssigned { subscription_id, resource_group, name } => Arc::new(ArmIdentity::new(
            ArmClient::new(cloud, credential, arm_options)?,
            UserAssignedIdentityRef {
                subscription_id: subscription_id.clone(),
                resource_group: resource_group.clone(),
                name: name.clone(),
            },
        )),
    })
}
