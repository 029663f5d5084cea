//! The Dataverse Web API client.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;

use super::{Answers, ApiError, Batch, ClientOptions, Created, Pipeline, Request, Service, check_base};
use crate::auth::TokenSource;
use crate::entities::{
    ManagedIdentity, NewManagedIdentity, OrganizationDetail, PluginAssembly, PluginPackage, PluginTraceLog,
    PluginTraceLogSetting,
};
use crate::subject::SubjectFormatVersion;

/// The host suffixes of Dataverse environments in the public and sovereign clouds.
pub const DATAVERSE_HOST_SUFFIXES: &[&str] = &[
    ".dynamics.com",
    ".dynamics.us",
    ".microsoftdynamics.us",
    ".appsplatform.us",
    ".dynamics.cn",
    ".microsoftdynamics.de",
    ".dynamics.eaglex.ic.gov",
    ".microsoftdynamics.scloud",
];

/// An environment's organization URL, e.g. `https://contoso.crm.dynamics.com`: checked, without path or query.
#[derive(Clone, PartialEq, Eq)]
pub struct OrgUrl(Url);

impl fmt::Debug for OrgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgUrl({})", self.0)
    }
}

impl fmt::Display for OrgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str().trim_end_matches('/'))
    }
}

impl OrgUrl {
    /// Parses an organization URL: `https://`, a Dataverse host (`*.dynamics.com` and the sovereign clouds'
    /// suffixes, see [`DATAVERSE_HOST_SUFFIXES`]), no path beyond `/`, no query or fragment. A bare host
    /// (`contoso.crm.dynamics.com`) is accepted as `https://`.
    ///
    /// ```
    /// # use dataverse_mi::clients::OrgUrl;
    /// assert_eq!(OrgUrl::parse("contoso.crm.dynamics.com")?.to_string(), "https://contoso.crm.dynamics.com");
    /// assert!(OrgUrl::parse("http://contoso.crm.dynamics.com").is_err());
    /// assert!(OrgUrl::parse("https://contoso.crm.dynamics.com/api/data/v9.2").is_err());
    /// assert!(OrgUrl::parse("https://example.com").is_err());
    /// # Ok::<(), dataverse_mi::clients::ApiError>(())
    /// ```
    pub fn parse(input: &str) -> Result<Self, ApiError> {
        let url = Self::parse_shape(input)?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if !DATAVERSE_HOST_SUFFIXES.iter().any(|s| host.ends_with(s)) {
            return Err(ApiError::invalid(
                "organization URL",
                format!(
                    "'{host}' is not a Dataverse host (expected e.g. contoso.crm.dynamics.com, or the host of another Dataverse cloud such as crm.microsoftdynamics.us or crm.dynamics.cn)"
                ),
            ));
        }
        Ok(OrgUrl(url))
    }

    /// Like [`parse`](Self::parse) but accepts any `https://` host (a cloud this crate does not list).
    pub fn any_host(input: &str) -> Result<Self, ApiError> {
        Self::parse_shape(input).map(OrgUrl)
    }

    /// For tests: a loopback URL (`http://127.0.0.1:PORT`), where plain HTTP is allowed. Anything that is not
    /// loopback is refused.
    pub fn loopback_for_testing(input: &str) -> Result<Self, ApiError> {
        let url = Url::parse(input).map_err(|e| ApiError::invalid("organization URL", format!("'{input}': {e}")))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        if !loopback {
            return Err(ApiError::invalid("organization URL", format!("'{input}' is not a loopback URL")));
        }
        check_base(&url, "organization URL")?;
        Self::no_path(url, input).map(OrgUrl)
    }

    fn parse_shape(input: &str) -> Result<Url, ApiError> {
        let trimmed = input.trim();
        let with_scheme = if trimmed.contains("://") { trimmed.to_owned() } else { format!("https://{trimmed}") };
        let url =
            Url::parse(&with_scheme).map_err(|e| ApiError::invalid("organization URL", format!("'{input}': {e}")))?;
        if url.scheme() != "https" {
            return Err(ApiError::invalid("organization URL", format!("'{input}' must be https://")));
        }
        if url.port().is_some() {
            return Err(ApiError::invalid("organization URL", format!("'{input}' has a port; Dataverse has none")));
        }
        Self::no_path(url, input)
    }

    fn no_path(url: Url, input: &str) -> Result<Url, ApiError> {
        if url.path() != "/" && !url.path().is_empty() {
            return Err(ApiError::invalid(
                "organization URL",
                format!(
                    "'{input}' has the path '{}'; give the organization URL alone, e.g. https://contoso.crm.dynamics.com",
                    url.path()
                ),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ApiError::invalid("organization URL", format!("'{input}' has a query or fragment")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ApiError::invalid("organization URL", "credentials do not go in the URL"));
        }
        Ok(url)
    }

    /// The host, e.g. `contoso.crm.dynamics.com`.
    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }

    /// The URL, ending in `/`.
    pub fn as_url(&self) -> &Url {
        &self.0
    }
}

/// A security role, as the `roles` entity set answers (`roleid`, `name`, its business unit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SecurityRole {
    /// `roleid`.
    #[serde(rename = "roleid")]
    pub id: Uuid,
    /// `name`, e.g. `Basic User`.
    pub name: String,
    /// The role's business unit (`_businessunitid_value`): each business unit has its own copy of a role.
    #[serde(rename = "_businessunitid_value", default)]
    pub business_unit: Option<Uuid>,
}

/// A business unit, as `businessunits` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BusinessUnit {
    /// `businessunitid`.
    #[serde(rename = "businessunitid")]
    pub id: Uuid,
}

/// An application user: the `systemuser` row whose `applicationid` is an Entra application's (or a user-assigned
/// identity's) client id, with its security roles (`systemuserroles_association`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApplicationUser {
    /// `systemuserid`.
    #[serde(rename = "systemuserid")]
    pub id: Uuid,
    /// `applicationid`.
    #[serde(rename = "applicationid", default)]
    pub application_id: Option<Uuid>,
    /// `isdisabled`.
    #[serde(rename = "isdisabled", default)]
    pub disabled: Option<bool>,
    /// Its business unit (`_businessunitid_value`).
    #[serde(rename = "_businessunitid_value", default)]
    pub business_unit: Option<Uuid>,
    /// Its security roles, as expanded.
    #[serde(rename = "systemuserroles_association", default)]
    pub roles: Vec<SecurityRole>,
}

/// The answer of `WhoAmI`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The calling user (or application user).
    #[serde(rename = "UserId")]
    pub user_id: Uuid,
    /// Their business unit.
    #[serde(rename = "BusinessUnitId")]
    pub business_unit_id: Uuid,
    /// The organization.
    #[serde(rename = "OrganizationId")]
    pub organization_id: Uuid,
}

/// The kind of a plug-in component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ComponentKind {
    /// A plug-in assembly (`pluginassembly`).
    PluginAssembly,
    /// A plug-in package (`pluginpackage`).
    PluginPackage,
}

impl ComponentKind {
    /// The signer of a component of this kind from the bytes the platform keeps for it: an assembly's Authenticode
    /// signature, a package's NuGet author signature.
    pub fn signer(self, bytes: &[u8]) -> Result<crate::cert::LoadedCertificate, crate::cert::CertificateError> {
        match self {
            ComponentKind::PluginPackage => crate::cert::Certificate::from_signed_package(bytes),
            ComponentKind::PluginAssembly => crate::cert::Certificate::from_signed_assembly(bytes),
        }
    }

    /// The table's logical name.
    pub fn logical_name(self) -> &'static str {
        match self {
            ComponentKind::PluginAssembly => "pluginassembly",
            ComponentKind::PluginPackage => "pluginpackage",
        }
    }

    fn entity_set(self) -> &'static str {
        match self {
            ComponentKind::PluginAssembly => "pluginassemblies",
            ComponentKind::PluginPackage => "pluginpackages",
        }
    }
}

/// The answer of `GetComponentManagedIdentityFIC`: the subject the platform itself computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentManagedIdentityFic {
    /// The subject identifier the platform will present.
    #[serde(rename = "FICSubject")]
    pub fic_subject: String,
    /// Every other property, as it came.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// An environment's managed identity rows and plug-ins, as [`DataverseClient::environment_status`] reads them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct EnvironmentStatus {
    /// The `managedidentity` rows.
    pub managed_identities: Vec<ManagedIdentity>,
    /// The plug-in assemblies.
    pub plugin_assemblies: Vec<PluginAssembly>,
    /// The plug-in packages.
    pub plugin_packages: Vec<PluginPackage>,
}

impl std::fmt::Display for EnvironmentStatus {
    /// The rows (application, tenant, version) and each plug-in with the row it is bound to, as
    /// `dataverse-mi status` prints them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
        let bound = |m: Option<Uuid>| m.map(|m| m.to_string()).unwrap_or_else(|| "not bound".into());
        write!(f, "managed identities:")?;
        for r in &self.managed_identities {
            write!(
                f,
                "\n  {} app {} tenant {} version {}",
                r.id,
                show(r.application_id.map(|a| a.to_string())),
                show(r.tenant_id.map(|t| t.to_string())),
                show(r.version.map(|v| v.to_string()))
            )?;
        }
        write!(f, "\nplug-in assemblies:")?;
        for a in &self.plugin_assemblies {
            write!(f, "\n  {:<50} {}", a.name.as_deref().unwrap_or("-"), bound(a.managed_identity_id))?;
        }
        write!(f, "\nplug-in packages:")?;
        for p in &self.plugin_packages {
            write!(f, "\n  {:<50} {}", p.unique_name.as_deref().unwrap_or("-"), bound(p.managed_identity_id))?;
        }
        Ok(())
    }
}

/// The columns of a managed identity row that may change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ManagedIdentityUpdate {
    /// `version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<SubjectFormatVersion>,
    /// `applicationid`.
    #[serde(rename = "applicationid", skip_serializing_if = "Option::is_none")]
    pub application_id: Option<Uuid>,
    /// `tenantid`.
    #[serde(rename = "tenantid", skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    /// `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

const MI_SELECT: &str =
    "managedidentityid,name,applicationid,tenantid,credentialsource,subjectscope,version,identitytype,statecode";
const ASSEMBLY_SELECT: &str = "pluginassemblyid,name,version,culture,publickeytoken,isolationmode,sourcetype,_packageid_value,_managedidentityid_value";
const PACKAGE_SELECT: &str = "pluginpackageid,name,uniquename,version,_managedidentityid_value";

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

/// Every Dataverse Web API call this crate makes, each written once as a [`Request`] value with its decoder: sent
/// by [`DataverseClient::send`], or in a [`Batch`] by [`DataverseClient::send_batch`] (one `$batch` round trip),
/// [`DataverseClient::send_change_set`] (together or not at all) and [`DataverseClient::send_each`].
pub mod requests {
    use std::sync::Arc;

    use http::Method;
    use http::header::HeaderName;
    use serde::Deserialize;
    use uuid::Uuid;

    use super::{
        ASSEMBLY_SELECT, ApplicationUser, BusinessUnit, ComponentKind, ComponentManagedIdentityFic, MI_SELECT,
        ManagedIdentityUpdate, PACKAGE_SELECT, SecurityRole, WhoAmI,
    };
    use crate::clients::request::{self, Request, Step};
    use crate::clients::{ApiError, Created, Service, any_of, odata_string, with_query};
    use crate::entities::{
        ManagedIdentity, ManagedIdentityBinding, NewManagedIdentity, OrganizationDetail, PluginAssembly, PluginPackage,
        PluginTraceLog, PluginTraceLogSetting, RetrieveCurrentOrganizationResponse,
    };

    static PAGE_HEADERS: [(HeaderName, &str); 1] = [(HeaderName::from_static("prefer"), "odata.maxpagesize=500")];

    /// A Dataverse request: the OData version headers every call sends.
    fn dv<T>(
        operation: &'static str,
        method: Method,
        path: impl Into<String>,
        decode: request::Decoder<T>,
    ) -> Request<T> {
        Request::new(operation, method, path, decode)
            .header(HeaderName::from_static("odata-maxversion"), "4.0")
            .header(HeaderName::from_static("odata-version"), "4.0")
    }

    /// A query of a collection: `$select`, an optional `$filter`, 500 rows a page, every page.
    fn query<U: serde::de::DeserializeOwned + Send + 'static>(
        operation: &'static str,
        set: &str,
        select: &str,
        filter: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Request<Vec<U>> {
        let mut pairs = vec![("$select", select)];
        if let Some(f) = filter {
            pairs.push(("$filter", f));
        }
        pairs.extend_from_slice(extra);
        let path = with_query(set.to_owned(), &pairs);
        let headers = PAGE_HEADERS.iter().map(|(n, v)| (n.clone(), http::HeaderValue::from_static(v))).collect();
        dv(operation, Method::GET, path, request::pages::<U>(headers))
            .header(PAGE_HEADERS[0].0.clone(), PAGE_HEADERS[0].1)
    }

    /// One row by id, its `$select`ed columns.
    fn row<T: serde::de::DeserializeOwned + 'static>(
        operation: &'static str,
        path: String,
        select: &str,
    ) -> Request<T> {
        let path = with_query(path, &[("$select", select)]);
        dv(operation, Method::GET, path, request::json())
    }

    /// `RetrieveCurrentOrganization`: the environment id, tenant id, organization id and names.
    pub fn current_organization() -> Request<OrganizationDetail> {
        dv(
            "retrieve current organization",
            Method::GET,
            "RetrieveCurrentOrganization(AccessType=Microsoft.Dynamics.CRM.EndpointAccessType'Default')",
            request::json_map(|r: RetrieveCurrentOrganizationResponse| r.detail),
        )
    }

    /// `WhoAmI`.
    pub fn who_am_i() -> Request<WhoAmI> {
        dv("who am i", Method::GET, "WhoAmI", request::json())
    }

    /// `RetrieveVersion`: the environment's Dataverse version, e.g. `9.2.24044.196`.
    pub fn version() -> Request<String> {
        #[derive(Deserialize)]
        struct RetrieveVersionResponse {
            #[serde(rename = "Version")]
            version: String,
        }
        dv(
            "retrieve version",
            Method::GET,
            "RetrieveVersion()",
            request::json_map(|r: RetrieveVersionResponse| r.version),
        )
    }

    /// Creates a managed identity row with its client-chosen id (`Prefer: return=representation`): the row as
    /// stored, or its id from `OData-EntityId` when the service answers `204`. Safe to retry (a second sending is a
    /// duplicate key). In a change set, later requests naming the row refer to it by `Content-ID`.
    pub fn create_managed_identity(row: &NewManagedIdentity) -> Request<Created<ManagedIdentity>> {
        let decode: request::Decoder<Created<ManagedIdentity>> = Arc::new(|service, operation, response| {
            crate::clients::created(service, operation, &response).map(Step::Done)
        });
        dv("create managed identity", Method::POST, "managedidentities", decode)
            .header(HeaderName::from_static("prefer"), "return=representation")
            .json_body(row)
            .retry_safe(true)
            .creating(format!("/managedidentities({})", row.id.hyphenated()))
    }

    /// One managed identity row.
    pub fn managed_identity(id: Uuid) -> Request<ManagedIdentity> {
        row("get managed identity", format!("managedidentities({id})"), MI_SELECT)
    }

    /// Managed identity rows, optionally filtered (an OData `$filter` expression), every page.
    pub fn managed_identities(filter: Option<&str>) -> Request<Vec<ManagedIdentity>> {
        query("list managed identities", "managedidentities", MI_SELECT, filter, &[])
    }

    /// Updates columns of an existing row (`If-Match: *`: never creates one). Safe to retry: it sets values.
    pub fn update_managed_identity(id: Uuid, update: &ManagedIdentityUpdate) -> Request<()> {
        dv("update managed identity", Method::PATCH, format!("managedidentities({id})"), request::empty())
            .header(http::header::IF_MATCH, "*")
            .json_body(update)
            .retry_safe(true)
    }

    /// Deletes a managed identity row (which also clears the components' links to it).
    pub fn delete_managed_identity(id: Uuid) -> Request<()> {
        dv("delete managed identity", Method::DELETE, format!("managedidentities({id})"), request::empty())
    }

    /// One plug-in assembly.
    pub fn plugin_assembly(id: Uuid) -> Request<PluginAssembly> {
        row("get plug-in assembly", format!("pluginassemblies({id})"), ASSEMBLY_SELECT)
    }

    /// Plug-in assemblies by name, many in one `$filter` (escaped). No names is an invalid request.
    pub fn plugin_assemblies_named(names: &[&str]) -> Request<Vec<PluginAssembly>> {
        let request =
            query("find plug-in assemblies", "pluginassemblies", ASSEMBLY_SELECT, Some(&any_of("name", names)), &[]);
        if names.is_empty() { request.refused(ApiError::invalid("names", "no names to find")) } else { request }
    }

    /// Every plug-in assembly.
    pub fn plugin_assemblies() -> Request<Vec<PluginAssembly>> {
        query("list plug-in assemblies", "pluginassemblies", ASSEMBLY_SELECT, None, &[])
    }

    /// One plug-in package.
    pub fn plugin_package(id: Uuid) -> Request<PluginPackage> {
        row("get plug-in package", format!("pluginpackages({id})"), PACKAGE_SELECT)
    }

    /// Plug-in packages by unique name, many in one `$filter` (escaped). No names is an invalid request.
    pub fn plugin_packages_named(unique_names: &[&str]) -> Request<Vec<PluginPackage>> {
        let filter = any_of("uniquename", unique_names);
        let request = query("find plug-in packages", "pluginpackages", PACKAGE_SELECT, Some(&filter), &[]);
        if unique_names.is_empty() { request.refused(ApiError::invalid("names", "no names to find")) } else { request }
    }

    /// Every plug-in package.
    pub fn plugin_packages() -> Request<Vec<PluginPackage>> {
        query("list plug-in packages", "pluginpackages", PACKAGE_SELECT, None, &[])
    }

    fn set_binding(
        operation: &'static str,
        kind: ComponentKind,
        component: Uuid,
        body: &ManagedIdentityBinding,
    ) -> Request<()> {
        dv(operation, Method::PATCH, format!("{}({component})", kind.entity_set()), request::empty())
            .header(http::header::IF_MATCH, "*")
            .json_body(body)
            .retry_safe(true)
    }

    /// Binds a component to a managed identity row (`If-Match: *`: the component must exist). Safe to retry.
    pub fn bind(kind: ComponentKind, component: Uuid, managed_identity: Uuid) -> Request<()> {
        set_binding("bind component", kind, component, &ManagedIdentityBinding::bind(managed_identity))
    }

    /// Removes a component's binding. Safe to retry.
    pub fn unbind(kind: ComponentKind, component: Uuid) -> Request<()> {
        set_binding("unbind component", kind, component, &ManagedIdentityBinding::unbind())
    }

    /// The managed identity a component is bound to, if any.
    pub fn binding(kind: ComponentKind, component: Uuid) -> Request<Option<Uuid>> {
        #[derive(Deserialize)]
        struct Row {
            #[serde(rename = "_managedidentityid_value", default)]
            managed_identity: Option<Uuid>,
        }
        let path =
            with_query(format!("{}({component})", kind.entity_set()), &[("$select", "_managedidentityid_value")]);
        dv("read binding", Method::GET, path, request::json_map(|r: Row| r.managed_identity))
    }

    /// The root business unit (the one without a parent): where an application user is made and whose roles it
    /// is given.
    pub fn root_business_units() -> Request<Vec<BusinessUnit>> {
        query(
            "find the root business unit",
            "businessunits",
            "businessunitid",
            Some("_parentbusinessunitid_value eq null"),
            &[],
        )
    }

    /// Security roles by name, in every business unit (each has its own copy of a role; pick the root's). No names
    /// is an invalid request.
    pub fn security_roles_named(names: &[&str]) -> Request<Vec<SecurityRole>> {
        let request = query(
            "find security roles",
            "roles",
            "roleid,name,_businessunitid_value",
            Some(&any_of("name", names)),
            &[],
        );
        if names.is_empty() { request.refused(ApiError::invalid("roles", "no role names to find")) } else { request }
    }

    /// The application user of an application (client) id, with its roles: none, or one.
    pub fn application_users(application_id: Uuid) -> Request<Vec<ApplicationUser>> {
        let filter = format!("applicationid eq {application_id}");
        query(
            "find application user",
            "systemusers",
            "systemuserid,applicationid,isdisabled,_businessunitid_value",
            Some(&filter),
            &[("$expand", "systemuserroles_association($select=roleid,name,_businessunitid_value)")],
        )
    }

    /// Creates the application user of `application_id` in `business_unit`, under the client-chosen id `id`
    /// (Dataverse fills its names from Entra). Safe to retry: a second sending is a duplicate key.
    pub fn create_application_user(id: Uuid, application_id: Uuid, business_unit: Uuid) -> Request<()> {
        let body = serde_json::json!({
            "systemuserid": id,
            "applicationid": application_id,
            "businessunitid@odata.bind": format!("/businessunits({business_unit})"),
        });
        dv("create application user", Method::POST, "systemusers", request::empty())
            .json_body(&body)
            .retry_safe(true)
            .creating(format!("/systemusers({})", id.hyphenated()))
    }

    /// Gives a user a security role: associates the role with the user (`systemuserroles_association/$ref`, the
    /// role named by its URL under `service_root`, e.g. `https://contoso.crm.dynamics.com`). Safe to retry: the
    /// association exists once.
    pub fn add_security_role(service_root: &str, user: Uuid, role: Uuid) -> Request<()> {
        let root = service_root.trim_end_matches('/');
        let body = serde_json::json!({ "@odata.id": format!("{root}/api/data/v9.2/roles({role})") });
        dv(
            "add security role",
            Method::POST,
            format!("systemusers({user})/systemuserroles_association/$ref"),
            request::empty(),
        )
        .json_body(&body)
        .retry_safe(true)
    }

    /// Takes a security role from a user (disassociates it). Safe to retry.
    pub fn remove_security_role(user: Uuid, role: Uuid) -> Request<()> {
        dv(
            "remove security role",
            Method::DELETE,
            format!("systemusers({user})/systemuserroles_association({role})/$ref"),
            request::empty(),
        )
        .retry_safe(true)
    }

    /// Plug-in trace log rows created after `since` (ISO 8601, e.g. `2026-11-22T10:00:00Z`), oldest first, every
    /// page; optionally only those of plug-in types whose name starts with `type_prefix` (escaped). A `since` that
    /// is not an ISO 8601 time is an invalid request.
    pub fn plugin_trace_logs(since: &str, type_prefix: Option<&str>) -> Request<Vec<PluginTraceLog>> {
        let valid =
            !since.is_empty() && since.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '+'));
        let mut filter = format!("createdon gt {since}");
        if let Some(prefix) = type_prefix {
            filter.push_str(&format!(" and startswith(typename,{})", odata_string(prefix)));
        }
        let request = query(
            "list plug-in trace logs",
            "plugintracelogs",
            "plugintracelogid,typename,messageblock,exceptiondetails,createdon,correlationid",
            Some(&filter),
            &[("$orderby", "createdon asc")],
        );
        if valid {
            request
        } else {
            request.refused(ApiError::invalid("time", format!("'{since}' is not an ISO 8601 time")))
        }
    }

    /// The organization's plug-in trace log setting, and the organization row's id (to change it).
    pub fn plugin_trace_log_setting() -> Request<(Uuid, PluginTraceLogSetting)> {
        #[derive(Deserialize)]
        struct Org {
            #[serde(rename = "organizationid")]
            id: Uuid,
            #[serde(rename = "plugintracelogsetting", default)]
            setting: Option<PluginTraceLogSetting>,
        }
        let decode: request::Decoder<(Uuid, PluginTraceLogSetting)> = Arc::new(|service, operation, response| {
            let page: crate::clients::Page<Org> = crate::clients::decode(service, operation, response.body())?;
            let org = page
                .value
                .into_iter()
                .next()
                .ok_or_else(|| ApiError::invalid("organization", "the environment has no organization row"))?;
            Ok(Step::Done((org.id, org.setting.unwrap_or(PluginTraceLogSetting::Off))))
        });
        let path = with_query("organizations".into(), &[("$select", "organizationid,plugintracelogsetting")]);
        dv("read trace log setting", Method::GET, path, decode)
    }

    /// Changes the organization's plug-in trace log setting. Safe to retry.
    pub fn set_plugin_trace_log_setting(organization: Uuid, setting: PluginTraceLogSetting) -> Request<()> {
        dv("set trace log setting", Method::PATCH, format!("organizations({organization})"), request::empty())
            .header(http::header::IF_MATCH, "*")
            .json_body(&serde_json::json!({ "plugintracelogsetting": setting }))
            .retry_safe(true)
    }

    /// The bytes the platform keeps for a registered component, whose signature is the one the platform checks:
    /// an assembly's `content` (Base64 of the `.dll`), a package's `content`, or, where that column is empty, the
    /// package's file column (`pluginpackages({id})/fileid/$value`, read after). `None` when nothing is registered.
    pub fn registered_content(kind: ComponentKind, component: Uuid) -> Request<Option<Vec<u8>>> {
        #[derive(Deserialize)]
        struct Row {
            #[serde(default)]
            content: Option<String>,
        }
        let set = kind.entity_set();
        let decode: request::Decoder<Option<Vec<u8>>> = Arc::new(move |service, operation, response| {
            let row: Row = crate::clients::decode(service, operation, response.body())?;
            if let Some(text) = row.content.filter(|t| !t.trim().is_empty()) {
                return decode_content(&text).map(|bytes| Step::Done(Some(bytes)));
            }
            if kind != ComponentKind::PluginPackage {
                return Ok(Step::Done(None));
            }
            let file: request::Decoder<Option<Vec<u8>>> = Arc::new(|_, _, response| {
                let found = response.status().is_success() && !response.body().is_empty();
                Ok(Step::Done(found.then(|| response.into_body().to_vec())))
            });
            let next =
                dv("read package file", Method::GET, format!("{set}({component})/fileid/$value"), file).absent_ok();
            Ok(Step::Then(None, Box::new(next), |_, file| file))
        });
        let path = with_query(format!("{set}({component})"), &[("$select", "content")]);
        dv("read registered content", Method::GET, path, decode)
    }

    /// `GetComponentManagedIdentityFIC`: the subject the platform computes for a component.
    pub fn component_fic(kind: ComponentKind, component: Uuid) -> Request<ComponentManagedIdentityFic> {
        let path =
            format!("GetComponentManagedIdentityFIC(ComponentName='{}',ComponentId={component})", kind.logical_name());
        dv("get component FIC", Method::GET, path, request::json())
    }

    fn decode_content(text: &str) -> Result<Vec<u8>, ApiError> {
        use base64::Engine as _;
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD.decode(compact).map_err(|e| ApiError::Decode {
            service: Service::Dataverse,
            operation: "read registered content",
            path: "content".into(),
            message: format!("not Base64: {e}"),
            source: None,
        })
    }
}
