//! What the engine needs from the services, as traits, implemented by the clients.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::clients::{
    Answers, ApiError, AppRef, AppRoleAssignment, ArmClient, Batch, ComponentKind, ComponentManagedIdentityFic,
    DataverseClient, GraphClient, ManagedIdentityUpdate, ResourceServicePrincipal, RoleAssignment,
    UserAssignedIdentityRef,
};
use crate::entities::{
    ManagedIdentity, NewManagedIdentity, OrganizationDetail, PluginAssembly, PluginPackage, PluginTraceLog,
    PluginTraceLogSetting,
};
use crate::fic::FederatedIdentityCredential;

/// An identity as found or created: what the rows and the role assignments name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdentityInfo {
    /// The client (application) id: the `managedidentity` row's `applicationid`.
    pub client_id: Uuid,
    /// The service principal's object id (what role assignments name); `None` for an app registration that
    /// has no service principal in the tenant yet, or whose service principal was not read.
    pub principal_id: Option<Uuid>,
    /// The tenant, where the service says it (a user-assigned identity does; Graph's application does not).
    pub tenant_id: Option<Uuid>,
}

/// The identity and its FICs, on Graph (app registration) or ARM (user-assigned identity).
#[async_trait]
pub trait IdentityApi: Send + Sync + fmt::Debug {
    /// Finds the identity; `None` when it does not exist. Without `principal_needed`, an implementation may skip
    /// reading what it already knows (an app registration given by id: no request, and `principal_id` left
    /// `None`); the FIC list then tells whether the identity exists.
    async fn lookup(&self, principal_needed: bool) -> Result<Option<IdentityInfo>, ApiError>;
    /// Whether the spec allows creating what [`lookup`](Self::lookup) did not find.
    fn may_create(&self) -> bool;
    /// Creates what is missing (the identity; an app registration's service principal) and returns the
    /// identity. Safe to call again: it finds what an earlier call made.
    async fn create(&self) -> Result<IdentityInfo, ApiError>;
    /// Every FIC on the identity.
    async fn list_fics(&self) -> Result<Vec<FederatedIdentityCredential>, ApiError>;
    /// Every FIC on the identity, with when it was created where the service says (ARM does, in `systemData`;
    /// Microsoft Graph does not, and the default says `None`).
    async fn list_fics_created(
        &self,
    ) -> Result<Vec<(FederatedIdentityCredential, Option<std::time::SystemTime>)>, ApiError> {
        Ok(self.list_fics().await?.into_iter().map(|f| (f, None)).collect())
    }
    /// Creates a FIC.
    async fn create_fic(&self, fic: &FederatedIdentityCredential) -> Result<(), ApiError>;
    /// Creates several FICs, in as few requests as the service allows: each one's outcome, in order. The default
    /// creates them one at a time (ARM refuses concurrent FIC writes to one identity).
    async fn create_fics(&self, fics: &[FederatedIdentityCredential]) -> Vec<Result<(), ApiError>> {
        let mut out = Vec::with_capacity(fics.len());
        for f in fics {
            out.push(self.create_fic(f).await);
        }
        out
    }
    /// Deletes a FIC by name.
    async fn delete_fic(&self, name: &str) -> Result<(), ApiError>;
    /// Deletes the identity itself (teardown, only when asked): the application and its service principal, or
    /// the user-assigned identity. A missing identity is success.
    async fn delete(&self) -> Result<(), ApiError>;
    /// Whether this crate created the identity, as recorded where the platform keeps it (the application's
    /// [`CREATED_TAG`](crate::clients::CREATED_TAG), the identity's `created-by` ARM tag). The default says no: an
    /// identity whose maker cannot be told is never deleted.
    async fn created_by_this_tool(&self) -> Result<bool, ApiError> {
        Ok(false)
    }
    /// The scope under which the identity's other role assignments are looked for before it is deleted (a
    /// user-assigned identity's subscription); `None` when there is none to look in.
    fn home_scope(&self) -> Option<String> {
        None
    }
    /// A short description for reports, e.g. `app registration 0b5a...`.
    fn describe(&self) -> String;
}

/// An app registration through Graph, by application id or display name.
#[derive(Debug, Clone)]
pub struct GraphIdentity {
    client: GraphClient,
    /// Whether the application id was given (rather than found by name).
    given: bool,
    display_name: Option<String>,
    create: bool,
    /// The application id, once known (given, found or created).
    app_id: Arc<std::sync::Mutex<Option<Uuid>>>,
}

impl GraphIdentity {
    /// An existing application, by application (client) id.
    pub fn new(client: GraphClient, app_id: Uuid) -> Self {
        GraphIdentity {
            client,
            given: true,
            display_name: None,
            create: false,
            app_id: Arc::new(std::sync::Mutex::new(Some(app_id))),
        }
    }

    /// An application found by display name; with `create`, created (with its service principal) when none
    /// has the name.
    pub fn by_display_name(client: GraphClient, display_name: impl Into<String>, create: bool) -> Self {
        GraphIdentity {
            client,
            given: false,
            display_name: Some(display_name.into()),
            create,
            app_id: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    fn known_app_id(&self) -> Option<Uuid> {
        *self.app_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn remember(&self, app_id: Uuid) {
        *self.app_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(app_id);
    }

    fn app(&self) -> Result<AppRef, ApiError> {
        self.known_app_id().map(AppRef::AppId).ok_or_else(|| {
            ApiError::invalid("application", "not found yet: look it up (plan) or create it (apply) first")
        })
    }

    async fn find_application(&self) -> Result<Option<Uuid>, ApiError> {
        if let Some(app_id) = self.known_app_id() {
            return match self.client.get_application(AppRef::AppId(app_id)).await {
                Ok(app) => Ok(Some(app.app_id)),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e),
            };
        }
        let Some(name) = &self.display_name else { return Ok(None) };
        let found = self.client.find_applications_by_display_name(name).await?;
        match found.as_slice() {
            [] => Ok(None),
            [one] => {
                self.remember(one.app_id);
                Ok(Some(one.app_id))
            }
            many => Err(ApiError::invalid(
                "display name",
                format!(
                    "{} applications are named '{name}' ({}); put the app_id of the one to use in the spec",
                    many.len(),
                    many.iter().map(|a| a.app_id.to_string()).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }

    async fn service_principal(&self, app_id: Uuid) -> Result<Option<Uuid>, ApiError> {
        match self.client.get_service_principal(app_id).await {
            Ok(sp) => Ok(Some(sp.id)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl IdentityApi for GraphIdentity {
    async fn lookup(&self, principal_needed: bool) -> Result<Option<IdentityInfo>, ApiError> {
        if let (true, Some(app_id), false) = (self.given, self.known_app_id(), principal_needed) {
            return Ok(Some(IdentityInfo { client_id: app_id, principal_id: None, tenant_id: None }));
        }
        if let Some(app_id) = self.known_app_id() {
            // Both reads at once: the service principal's read says "not found" too when the application is gone.
            let (app, principal_id) = futures_util::join!(self.find_application(), self.service_principal(app_id));
            return match app? {
                Some(app_id) => {
                    Ok(Some(IdentityInfo { client_id: app_id, principal_id: principal_id?, tenant_id: None }))
                }
                None => Ok(None),
            };
        }
        let Some(app_id) = self.find_application().await? else { return Ok(None) };
        let principal_id = self.service_principal(app_id).await?;
        Ok(Some(IdentityInfo { client_id: app_id, principal_id, tenant_id: None }))
    }
    fn may_create(&self) -> bool {
        self.create
    }
    async fn create(&self) -> Result<IdentityInfo, ApiError> {
        let app_id = match self.find_application().await? {
            Some(app_id) => app_id,
            None => {
                let (true, Some(name)) = (self.create, &self.display_name) else {
                    return Err(ApiError::invalid("application", "not found, and the spec does not ask to create it"));
                };
                let app = self.client.create_application(name).await?;
                self.remember(app.app_id);
                app.app_id
            }
        };
        let principal_id = match self.service_principal(app_id).await? {
            Some(id) => id,
            None => match self.client.create_service_principal(app_id).await {
                Ok(sp) => sp.id,
                // Made by a concurrent run, or by a retried request whose first answer was lost.
                Err(e) if e.is_conflict() => self.client.get_service_principal(app_id).await?.id,
                Err(e) => return Err(e),
            },
        };
        Ok(IdentityInfo { client_id: app_id, principal_id: Some(principal_id), tenant_id: None })
    }
    async fn list_fics(&self) -> Result<Vec<FederatedIdentityCredential>, ApiError> {
        Ok(self.client.list_fics(self.app()?).await?.into_iter().map(|f| f.credential).collect())
    }
    async fn create_fic(&self, fic: &FederatedIdentityCredential) -> Result<(), ApiError> {
        self.client.create_fic(self.app()?, fic).await.map(drop)
    }
    async fn delete_fic(&self, name: &str) -> Result<(), ApiError> {
        self.client.delete_fic(self.app()?, name).await
    }
    async fn delete(&self) -> Result<(), ApiError> {
        self.client.delete_application(self.app()?).await
    }
    async fn created_by_this_tool(&self) -> Result<bool, ApiError> {
        match self.client.get_application(self.app()?).await {
            Ok(app) => Ok(app.tags.iter().any(|t| t == crate::clients::CREATED_TAG)),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
    async fn create_fics(&self, fics: &[FederatedIdentityCredential]) -> Vec<Result<(), ApiError>> {
        let app = match self.app() {
            Ok(app) => app,
            Err(e) => return fics.iter().map(|_| Err(ApiError::invalid("application", e.to_string()))).collect(),
        };
        self.client.create_fics_batch(app, fics).await.into_iter().map(|r| r.map(drop)).collect()
    }
    fn describe(&self) -> String {
        match (self.known_app_id(), &self.display_name) {
            (Some(id), _) => format!("app registration {id}"),
            (None, Some(name)) => format!("app registration '{name}'"),
            (None, None) => "app registration".to_owned(),
        }
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
    create: Option<super::CreateIdentitySpec>,
    writes: Arc<Mutex<()>>,
}

impl ArmIdentity {
    /// Wraps a client and an existing identity.
    pub fn new(client: ArmClient, identity: UserAssignedIdentityRef) -> Self {
        ArmIdentity { client, identity, create: None, writes: Arc::new(Mutex::new(())) }
    }

    /// The same identity, created with this location and these tags when it does not exist.
    pub fn creating(mut self, create: super::CreateIdentitySpec) -> Self {
        self.create = Some(create);
        self
    }
}

#[async_trait]
impl IdentityApi for ArmIdentity {
    async fn lookup(&self, _principal_needed: bool) -> Result<Option<IdentityInfo>, ApiError> {
        match self.client.get_user_assigned_identity(&self.identity).await {
            Ok(u) => Ok(Some(IdentityInfo {
                client_id: u.client_id,
                principal_id: Some(u.principal_id),
                tenant_id: Some(u.tenant_id),
            })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn may_create(&self) -> bool {
        self.create.is_some()
    }
    async fn create(&self) -> Result<IdentityInfo, ApiError> {
        let Some(create) = &self.create else {
            return Err(ApiError::invalid("identity", "not found, and the spec does not ask to create it"));
        };
        // Tagged as made here, so that a teardown can tell it from an identity made by hand.
        let mut tags = create.tags.clone();
        tags.insert(crate::clients::CREATED_BY_TAG.to_owned(), crate::clients::CREATED_TAG.to_owned());
        let u = self.client.create_or_update_user_assigned_identity(&self.identity, &create.location, &tags).await?;
        Ok(IdentityInfo { client_id: u.client_id, principal_id: Some(u.principal_id), tenant_id: Some(u.tenant_id) })
    }
    async fn list_fics(&self) -> Result<Vec<FederatedIdentityCredential>, ApiError> {
        Ok(self.client.list_fics(&self.identity).await?.into_iter().map(|f| f.credential).collect())
    }
    async fn list_fics_created(
        &self,
    ) -> Result<Vec<(FederatedIdentityCredential, Option<std::time::SystemTime>)>, ApiError> {
        Ok(self.client.list_fics(&self.identity).await?.into_iter().map(|f| (f.credential, f.created_at)).collect())
    }
    async fn create_fic(&self, fic: &FederatedIdentityCredential) -> Result<(), ApiError> {
        let _one_at_a_time = self.writes.lock().await;
        self.client.create_or_update_fic(&self.identity, fic).await.map(drop)
    }
    async fn delete_fic(&self, name: &str) -> Result<(), ApiError> {
        let _one_at_a_time = self.writes.lock().await;
        self.client.delete_fic(&self.identity, name).await
    }
    async fn delete(&self) -> Result<(), ApiError> {
        self.client.delete_user_assigned_identity(&self.identity).await
    }
    async fn created_by_this_tool(&self) -> Result<bool, ApiError> {
        match self.client.get_user_assigned_identity(&self.identity).await {
            Ok(u) => Ok(u.created_by_this_tool()),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
    fn describe(&self) -> String {
        format!("user-assigned identity {}/{}", self.identity.resource_group, self.identity.name)
    }
    fn home_scope(&self) -> Option<String> {
        Some(format!("/subscriptions/{}", self.identity.subscription_id))
    }
}

/// Application permissions (app role assignments), through Microsoft Graph: for a spec's `api_permissions`.
#[async_trait]
pub trait DirectoryApi: Send + Sync + fmt::Debug {
    /// An API's service principal with the roles and delegated permissions it defines; `None` when the tenant has
    /// none for that application id.
    async fn resource_service_principal(&self, api: Uuid) -> Result<Option<ResourceServicePrincipal>, ApiError>;
    /// The app roles given to a service principal.
    async fn app_role_assignments(&self, principal_id: Uuid) -> Result<Vec<AppRoleAssignment>, ApiError>;
    /// Gives a service principal an app role of an API.
    async fn assign_app_role(&self, principal_id: Uuid, resource_id: Uuid, app_role_id: Uuid) -> Result<(), ApiError>;
    /// Takes an app role assignment away (a missing one is success).
    async fn remove_app_role_assignment(&self, principal_id: Uuid, assignment_id: &str) -> Result<(), ApiError>;
}

#[async_trait]
impl DirectoryApi for GraphClient {
    async fn resource_service_principal(&self, api: Uuid) -> Result<Option<ResourceServicePrincipal>, ApiError> {
        match self.send(crate::clients::graph::requests::resource_service_principal(api)).await {
            Ok(sp) => Ok(Some(sp)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
    async fn app_role_assignments(&self, principal_id: Uuid) -> Result<Vec<AppRoleAssignment>, ApiError> {
        self.send(crate::clients::graph::requests::app_role_assignments(principal_id)).await
    }
    async fn assign_app_role(&self, principal_id: Uuid, resource_id: Uuid, app_role_id: Uuid) -> Result<(), ApiError> {
        self.send(crate::clients::graph::requests::assign_app_role(principal_id, resource_id, app_role_id))
            .await
            .map(drop)
    }
    async fn remove_app_role_assignment(&self, principal_id: Uuid, assignment_id: &str) -> Result<(), ApiError> {
        match self.send(crate::clients::graph::requests::remove_app_role_assignment(principal_id, assignment_id)).await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }
}

/// The directory API (Microsoft Graph) for a spec's API permissions, for
/// [`Provisioner::with_directory`](super::Provisioner::with_directory).
pub fn directory_api(
    cloud: &crate::cloud::CloudProfile,
    platform: &crate::clients::Platform,
) -> Result<Arc<dyn DirectoryApi>, ApiError> {
    Ok(Arc::new(platform.graph(cloud)?))
}

/// Role assignments (step 5 of the walkthrough), through ARM.
#[async_trait]
pub trait AccessApi: Send + Sync + fmt::Debug {
    /// The id of the role definition named `role_name` at `scope`, if any.
    async fn role_definition_id(&self, scope: &str, role_name: &str) -> Result<Option<String>, ApiError>;
    /// The principal's role assignments at, above or below `scope`.
    async fn role_assignments(&self, scope: &str, principal_id: Uuid) -> Result<Vec<RoleAssignment>, ApiError>;
    /// Creates a role assignment under `name`.
    async fn create_role_assignment(
        &self,
        scope: &str,
        name: Uuid,
        role_definition_id: &str,
        principal_id: Uuid,
    ) -> Result<(), ApiError>;
    /// Deletes a role assignment by its id (a missing one is success).
    async fn delete_role_assignment(&self, id: &str) -> Result<(), ApiError>;
}

#[async_trait]
impl AccessApi for ArmClient {
    async fn role_definition_id(&self, scope: &str, role_name: &str) -> Result<Option<String>, ApiError> {
        Ok(self.find_role_definition(scope, role_name).await?.map(|d| d.id))
    }
    async fn role_assignments(&self, scope: &str, principal_id: Uuid) -> Result<Vec<RoleAssignment>, ApiError> {
        self.list_role_assignments(scope, principal_id).await
    }
    async fn create_role_assignment(
        &self,
        scope: &str,
        name: Uuid,
        role_definition_id: &str,
        principal_id: Uuid,
    ) -> Result<(), ApiError> {
        ArmClient::create_role_assignment(self, scope, name, role_definition_id, principal_id).await.map(drop)
    }
    async fn delete_role_assignment(&self, id: &str) -> Result<(), ApiError> {
        ArmClient::delete_role_assignment(self, id).await
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
    /// Removes a component's binding.
    async fn unbind(&self, kind: ComponentKind, component: Uuid) -> Result<(), ApiError>;
    /// Deletes a managed identity row.
    async fn delete_managed_identity(&self, id: Uuid) -> Result<(), ApiError>;
    /// Every plug-in assembly of the environment (to match name patterns).
    async fn list_plugin_assemblies(&self) -> Result<Vec<PluginAssembly>, ApiError>;
    /// Every plug-in package of the environment (to match name patterns).
    async fn list_plugin_packages(&self) -> Result<Vec<PluginPackage>, ApiError>;
    /// The bytes registered for a component (`None` when none are), whose signature the platform checks.
    async fn registered_content(&self, kind: ComponentKind, component: Uuid) -> Result<Option<Vec<u8>>, ApiError>;
    /// Requests ([`clients::dataverse::requests`](crate::clients::dataverse::requests)) in `$batch` round trips:
    /// each answer, or its error (see [`DataverseClient::send_batch`]).
    async fn send_batch(&self, batch: &Batch) -> Answers;
    /// The same requests, each on its own (see [`DataverseClient::send_each`]).
    async fn send_each(&self, batch: &Batch) -> Answers;
    /// Requests that succeed or fail together: one change set (see [`DataverseClient::send_change_set`]).
    async fn send_change_set(&self, batch: &Batch) -> Result<Answers, ApiError>;
    /// The platform's subject for a component.
    async fn component_fic(
        &self,
        kind: ComponentKind,
        component: Uuid,
    ) -> Result<ComponentManagedIdentityFic, ApiError>;
    /// Plug-in trace log rows created after `since` (ISO 8601), optionally only of plug-in types whose name
    /// starts with `type_prefix`.
    async fn plugin_trace_logs(&self, since: &str, type_prefix: Option<&str>) -> Result<Vec<PluginTraceLog>, ApiError>;
    /// The same rows page by page, so that a reader holds one page at a time. The default reads them all as one
    /// page (for implementations that do not page).
    fn plugin_trace_log_pages<'a>(
        &'a self,
        since: &'a str,
        type_prefix: Option<&'a str>,
    ) -> futures_util::stream::BoxStream<'a, Result<Vec<PluginTraceLog>, ApiError>> {
        Box::pin(futures_util::stream::once(self.plugin_trace_logs(since, type_prefix)))
    }
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
    async fn unbind(&self, kind: ComponentKind, component: Uuid) -> Result<(), ApiError> {
        DataverseClient::unbind(self, kind, component).await
    }
    async fn delete_managed_identity(&self, id: Uuid) -> Result<(), ApiError> {
        DataverseClient::delete_managed_identity(self, id).await
    }
    async fn list_plugin_assemblies(&self) -> Result<Vec<PluginAssembly>, ApiError> {
        DataverseClient::list_plugin_assemblies(self).await
    }
    async fn list_plugin_packages(&self) -> Result<Vec<PluginPackage>, ApiError> {
        DataverseClient::list_plugin_packages(self).await
    }
    async fn registered_content(&self, kind: ComponentKind, component: Uuid) -> Result<Option<Vec<u8>>, ApiError> {
        DataverseClient::registered_content(self, kind, component).await
    }
    async fn send_batch(&self, batch: &Batch) -> Answers {
        DataverseClient::send_batch(self, batch).await
    }
    async fn send_each(&self, batch: &Batch) -> Answers {
        DataverseClient::send_each(self, batch).await
    }
    async fn send_change_set(&self, batch: &Batch) -> Result<Answers, ApiError> {
        DataverseClient::send_change_set(self, batch).await
    }
    async fn component_fic(
        &self,
        kind: ComponentKind,
        component: Uuid,
    ) -> Result<ComponentManagedIdentityFic, ApiError> {
        self.get_component_managed_identity_fic(kind, component).await
    }
    async fn plugin_trace_logs(&self, since: &str, type_prefix: Option<&str>) -> Result<Vec<PluginTraceLog>, ApiError> {
        self.list_plugin_trace_logs(since, type_prefix).await
    }
    fn plugin_trace_log_pages<'a>(
        &'a self,
        since: &'a str,
        type_prefix: Option<&'a str>,
    ) -> futures_util::stream::BoxStream<'a, Result<Vec<PluginTraceLog>, ApiError>> {
        DataverseClient::plugin_trace_log_pages(self, since, type_prefix)
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

/// The environments the signed-in identity can reach (the Global Discovery Service), for specs that select
/// environments instead of listing them.
#[async_trait]
pub trait DiscoveryApi: Send + Sync + fmt::Debug {
    /// Every environment, as discovered.
    async fn environments(&self) -> Result<Vec<crate::clients::DiscoveredEnvironment>, ApiError>;
}

#[async_trait]
impl DiscoveryApi for crate::clients::GlobalDiscoveryClient {
    async fn environments(&self) -> Result<Vec<crate::clients::DiscoveredEnvironment>, ApiError> {
        self.instances().await
    }
}

/// Makes a Dataverse client for an organization URL.
pub trait DataverseConnector: Send + Sync + fmt::Debug {
    /// The client for `org_url`.
    fn connect(&self, org_url: &str) -> Result<Arc<dyn DataverseApi>, ApiError>;
}

/// Each organization's Web API base URL (moved to [`clients`](crate::clients)).
pub use crate::clients::DataverseBaseUrl;

/// Sends reads (request values) in one `$batch` round trip (`batch`), or each on its own. A batch that fails as a
/// whole for another reason than throttling (a proxy that refuses `$batch`, an answer that is not multipart) is
/// sent again one by one, and says so at warn level; a throttled one is not (more requests would make it worse):
/// its error is every read's. The engine's reads and the audit's go through it.
pub(crate) async fn send_reads(dv: &dyn DataverseApi, reads: &Batch, batch: bool) -> Answers {
    if !batch {
        return dv.send_each(reads).await;
    }
    let answers = dv.send_batch(reads).await;
    match answers.failed_as_a_whole() {
        Some(e) if !e.is_throttled() => {
            tracing::warn!(error = %e, reads = reads.len(), "the read batch failed as a whole; reading one by one");
            dv.send_each(reads).await
        }
        _ => answers,
    }
}

/// The production connector: each organization's [`DataverseClient`] is a view of the one [`Platform`](
/// crate::clients::Platform) (its transport, token cache, counters and Dataverse concurrency limit), made on demand.
impl DataverseConnector for crate::clients::Platform {
    fn connect(&self, org_url: &str) -> Result<Arc<dyn DataverseApi>, ApiError> {
        Ok(Arc::new(self.dataverse(org_url)?))
    }
}

/// The identity API a spec names: Graph for an app registration, ARM for a user-assigned identity.
pub fn identity_api(
    spec: &super::IdentitySpec,
    cloud: &crate::cloud::CloudProfile,
    platform: &crate::clients::Platform,
) -> Result<Arc<dyn IdentityApi>, ApiError> {
    Ok(match spec {
        super::IdentitySpec::AppRegistration { app_id: Some(app_id), .. } => {
            Arc::new(GraphIdentity::new(platform.graph(cloud)?, *app_id))
        }
        super::IdentitySpec::AppRegistration { app_id: None, display_name, create, .. } => Arc::new(
            GraphIdentity::by_display_name(platform.graph(cloud)?, display_name.clone().unwrap_or_default(), *create),
        ),
        super::IdentitySpec::UserAssigned { subscription_id, resource_group, name, create } => {
            let mut api = ArmIdentity::new(
                platform.arm(cloud)?,
                UserAssignedIdentityRef {
                    subscription_id: subscription_id.clone(),
                    resource_group: resource_group.clone(),
                    name: name.clone(),
                },
            );
            if let Some(create) = create {
                api = api.creating(create.clone());
            }
            Arc::new(api)
        }
    })
}

/// The role assignment API (ARM) for a spec's grants, for [`Provisioner::with_access`](super::Provisioner::with_access).
pub fn access_api(
    cloud: &crate::cloud::CloudProfile,
    platform: &crate::clients::Platform,
) -> Result<Arc<dyn AccessApi>, ApiError> {
    Ok(Arc::new(platform.arm(cloud)?))
}
