//! The Dataverse Web API client.

use std::fmt;
use std::sync::Arc;

use http::Method;
use http::header::HeaderName;
use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;

use super::batch::{BatchPart, BatchRequest, BatchResponse};
use super::{ApiError, Call, ClientOptions, Created, Pipeline, Service, any_of, check_base};
use crate::auth::TokenSource;
use crate::entities::{
    ManagedIdentity, ManagedIdentityBinding, NewManagedIdentity, OrganizationDetail, PluginAssembly, PluginPackage,
    PluginTraceLog, PluginTraceLogSetting, RetrieveCurrentOrganizationResponse,
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
const PAGE_SIZE: (HeaderName, &str) = (HeaderName::from_static("prefer"), "odata.maxpagesize=500");
static PAGE_HEADERS: [(HeaderName, &str); 1] = [PAGE_SIZE];

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

fn ms_header(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
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

    fn call(&self, operation: &'static str, method: Method, path: &str) -> Result<Call, ApiError> {
        Ok(Call::new(operation, method, self.pipeline.url(path)?)
            .header(ms_header("odata-maxversion"), "4.0")
            .header(ms_header("odata-version"), "4.0"))
    }

    fn query(&self, operation: &'static str, set: &str, select: &str, filter: Option<&str>) -> Result<Call, ApiError> {
        let mut call = self.call(operation, Method::GET, set)?;
        {
            let mut q = call.url.query_pairs_mut();
            q.append_pair("$select", select);
            if let Some(f) = filter {
                q.append_pair("$filter", f);
            }
        }
        call = call.header(PAGE_SIZE.0.clone(), PAGE_SIZE.1);
        Ok(call)
    }

    /// `RetrieveCurrentOrganization`: the environment id, tenant id, organization id and names.
    pub async fn retrieve_current_organization(&self) -> Result<OrganizationDetail, ApiError> {
        let call = self.call(
            "retrieve current organization",
            Method::GET,
            "RetrieveCurrentOrganization(AccessType=Microsoft.Dynamics.CRM.EndpointAccessType'Default')",
        )?;
        let r: RetrieveCurrentOrganizationResponse = self.pipeline.json(call).await?;
        Ok(r.detail)
    }

    /// `WhoAmI`.
    pub async fn who_am_i(&self) -> Result<WhoAmI, ApiError> {
        self.pipeline.json(self.call("who am i", Method::GET, "WhoAmI")?).await
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
        let call = self
            .call("create managed identity", Method::POST, "managedidentities")?
            .header(ms_header("prefer"), "return=representation")
            .json(row)?
            .retry_safe(true);
        self.pipeline.created(call).await
    }

    /// Reads a managed identity row.
    pub async fn get_managed_identity(&self, id: Uuid) -> Result<ManagedIdentity, ApiError> {
        let mut call = self.call("get managed identity", Method::GET, &format!("managedidentities({id})"))?;
        call.url.query_pairs_mut().append_pair("$select", MI_SELECT);
        self.pipeline.json(call).await
    }

    /// Lists managed identity rows, optionally filtered (an OData `$filter` expression), every page.
    pub async fn list_managed_identities(&self, filter: Option<&str>) -> Result<Vec<ManagedIdentity>, ApiError> {
        let call = self.query("list managed identities", "managedidentities", MI_SELECT, filter)?;
        self.pipeline.all_pages(call, &[PAGE_SIZE]).await
    }

    /// Updates columns of an existing row (`If-Match: *`: never creates one). Safe to retry: it sets values.
    pub async fn update_managed_identity(&self, id: Uuid, update: &ManagedIdentityUpdate) -> Result<(), ApiError> {
        let call = self
            .call("update managed identity", Method::PATCH, &format!("managedidentities({id})"))?
            .header(http::header::IF_MATCH, "*")
            .json(update)?
            .retry_safe(true);
        self.pipeline.empty(call).await.map(drop)
    }

    /// Deletes a managed identity row (which also clears the components' links to it).
    pub async fn delete_managed_identity(&self, id: Uuid) -> Result<(), ApiError> {
        let call = self.call("delete managed identity", Method::DELETE, &format!("managedidentities({id})"))?;
        self.pipeline.empty(call).await.map(drop)
    }

    /// Reads a plug-in assembly.
    pub async fn get_plugin_assembly(&self, id: Uuid) -> Result<PluginAssembly, ApiError> {
        let mut call = self.call("get plug-in assembly", Method::GET, &format!("pluginassemblies({id})"))?;
        call.url.query_pairs_mut().append_pair("$select", ASSEMBLY_SELECT);
        self.pipeline.json(call).await
    }

    /// Finds plug-in assemblies by name, many names in one `$filter` (names are escaped).
    pub async fn find_plugin_assemblies_by_name(&self, names: &[&str]) -> Result<Vec<PluginAssembly>, ApiError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let filter = any_of("name", names);
        let call = self.query("find plug-in assemblies", "pluginassemblies", ASSEMBLY_SELECT, Some(&filter))?;
        self.pipeline.all_pages(call, &[PAGE_SIZE]).await
    }

    /// Lists every plug-in assembly.
    pub async fn list_plugin_assemblies(&self) -> Result<Vec<PluginAssembly>, ApiError> {
        let call = self.query("list plug-in assemblies", "pluginassemblies", ASSEMBLY_SELECT, None)?;
        self.pipeline.all_pages(call, &[PAGE_SIZE]).await
    }

    /// Reads a plug-in package.
    pub async fn get_plugin_package(&self, id: Uuid) -> Result<PluginPackage, ApiError> {
        let mut call = self.call("get plug-in package", Method::GET, &format!("pluginpackages({id})"))?;
        call.url.query_pairs_mut().append_pair("$select", PACKAGE_SELECT);
        self.pipeline.json(call).await
    }

    /// Finds plug-in packages by unique name, many in one `$filter` (names are escaped).
    pub async fn find_plugin_packages_by_name(&self, unique_names: &[&str]) -> Result<Vec<PluginPackage>, ApiError> {
        if unique_names.is_empty() {
            return Ok(Vec::new());
        }
        let filter = any_of("uniquename", unique_names);
        let call = self.query("find plug-in packages", "pluginpackages", PACKAGE_SELECT, Some(&filter))?;
        self.pipeline.all_pages(call, &[PAGE_SIZE]).await
    }

    /// Lists every plug-in package.
    pub async fn list_plugin_packages(&self) -> Result<Vec<PluginPackage>, ApiError> {
        let call = self.query("list plug-in packages", "pluginpackages", PACKAGE_SELECT, None)?;
        self.pipeline.all_pages(call, &[PAGE_SIZE]).await
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
        self.set_binding(kind, component, &ManagedIdentityBinding::bind(managed_identity), "bind component").await
    }

    /// Removes a component's binding. Safe to retry.
    pub async fn unbind(&self, kind: ComponentKind, component: Uuid) -> Result<(), ApiError> {
        self.set_binding(kind, component, &ManagedIdentityBinding::unbind(), "unbind component").await
    }

    async fn set_binding(
        &self,
        kind: ComponentKind,
        component: Uuid,
        body: &ManagedIdentityBinding,
        operation: &'static str,
    ) -> Result<(), ApiError> {
        let call = self
            .call(operation, Method::PATCH, &format!("{}({component})", kind.entity_set()))?
            .header(http::header::IF_MATCH, "*")
            .json(body)?
            .retry_safe(true);
        self.pipeline.empty(call).await.map(drop)
    }

    /// The managed identity a component is bound to, if any.
    pub async fn binding(&self, kind: ComponentKind, component: Uuid) -> Result<Option<Uuid>, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            #[serde(rename = "_managedidentityid_value", default)]
            managed_identity: Option<Uuid>,
        }
        let mut call = self.call("read binding", Method::GET, &format!("{}({component})", kind.entity_set()))?;
        call.url.query_pairs_mut().append_pair("$select", "_managedidentityid_value");
        let row: Row = self.pipeline.json(call).await?;
        Ok(row.managed_identity)
    }

    /// Plug-in trace log rows created after `since` (ISO 8601, e.g. `2026-11-22T10:00:00Z`), oldest first, every
    /// page; optionally only those of plug-in types whose name starts with `type_prefix` (escaped).
    pub async fn list_plugin_trace_logs(
        &self,
        since: &str,
        type_prefix: Option<&str>,
    ) -> Result<Vec<PluginTraceLog>, ApiError> {
        self.pipeline.all_pages(self.trace_log_call(since, type_prefix)?, &PAGE_HEADERS).await
    }

    /// [`list_plugin_trace_logs`](Self::list_plugin_trace_logs) page by page, as the pages come: a reader keeps one
    /// page (at most 500 rows) in memory at a time, however long the time window.
    pub fn plugin_trace_log_pages(
        &self,
        since: &str,
        type_prefix: Option<&str>,
    ) -> futures_util::stream::BoxStream<'_, Result<Vec<PluginTraceLog>, ApiError>> {
        match self.trace_log_call(since, type_prefix) {
            Ok(call) => Box::pin(self.pipeline.pages(call, &PAGE_HEADERS)),
            Err(e) => Box::pin(futures_util::stream::once(async move { Err(e) })),
        }
    }

    fn trace_log_call(&self, since: &str, type_prefix: Option<&str>) -> Result<super::Call, ApiError> {
        let valid =
            !since.is_empty() && since.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '+'));
        if !valid {
            return Err(ApiError::invalid("time", format!("'{since}' is not an ISO 8601 time")));
        }
        let mut filter = format!("createdon gt {since}");
        if let Some(prefix) = type_prefix {
            filter.push_str(&format!(" and startswith(typename,{})", super::odata_string(prefix)));
        }
        let mut call = self.query(
            "list plug-in trace logs",
            "plugintracelogs",
            "plugintracelogid,typename,messageblock,exceptiondetails,createdon,correlationid",
            Some(&filter),
        )?;
        call.url.query_pairs_mut().append_pair("$orderby", "createdon asc");
        Ok(call)
    }

    /// The organization's plug-in trace log setting, and the organization row's id (to change it).
    pub async fn plugin_trace_log_setting(&self) -> Result<(Uuid, PluginTraceLogSetting), ApiError> {
        #[derive(Deserialize)]
        struct Org {
            #[serde(rename = "organizationid")]
            id: Uuid,
            #[serde(rename = "plugintracelogsetting", default)]
            setting: Option<PluginTraceLogSetting>,
        }
        let call =
            self.query("read trace log setting", "organizations", "organizationid,plugintracelogsetting", None)?;
        let rows: Vec<Org> = self.pipeline.all_pages(call, &[PAGE_SIZE]).await?;
        let org = rows
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::invalid("organization", "the environment has no organization row"))?;
        Ok((org.id, org.setting.unwrap_or(PluginTraceLogSetting::Off)))
    }

    /// Changes the organization's plug-in trace log setting. Safe to retry.
    pub async fn set_plugin_trace_log_setting(
        &self,
        organization: Uuid,
        setting: PluginTraceLogSetting,
    ) -> Result<(), ApiError> {
        let call = self
            .call("set trace log setting", Method::PATCH, &format!("organizations({organization})"))?
            .header(http::header::IF_MATCH, "*")
            .json(&serde_json::json!({ "plugintracelogsetting": setting }))?
            .retry_safe(true);
        self.pipeline.empty(call).await.map(drop)
    }

    /// The bytes the platform keeps for a registered component, whose signature is the one the platform checks:
    /// an assembly's `content` (Base64 of the `.dll`), a package's `content`, or, where that column is empty, the
    /// package's file column (`pluginpackages({id})/fileid/$value`). `None` when nothing is registered. Only that
    /// column is selected: the bytes can be megabytes, and nothing else is read with them.
    pub async fn registered_content(&self, kind: ComponentKind, component: Uuid) -> Result<Option<Vec<u8>>, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            #[serde(default)]
            content: Option<String>,
        }
        let set = kind.entity_set();
        let mut call = self.call("read registered content", Method::GET, &format!("{set}({component})"))?;
        call.url.query_pairs_mut().append_pair("$select", "content");
        let row: Row = self.pipeline.json(call).await?;
        if let Some(text) = row.content.filter(|t| !t.trim().is_empty()) {
            use base64::Engine as _;
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            return base64::engine::general_purpose::STANDARD.decode(compact).map(Some).map_err(|e| ApiError::Decode {
                service: Service::Dataverse,
                operation: "read registered content",
                path: "content".into(),
                message: format!("not Base64: {e}"),
            });
        }
        if kind != ComponentKind::PluginPackage {
            return Ok(None);
        }
        let call = self.call("read package file", Method::GET, &format!("{set}({component})/fileid/$value"))?;
        match self.pipeline.send(call).await {
            Ok(response) if response.body().is_empty() => Ok(None),
            Ok(response) => Ok(Some(response.into_body().to_vec())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GetComponentManagedIdentityFIC`: the subject the platform computes for a component, the authoritative
    /// value to check a locally computed subject against.
    pub async fn get_component_managed_identity_fic(
        &self,
        kind: ComponentKind,
        component: Uuid,
    ) -> Result<ComponentManagedIdentityFic, ApiError> {
        let path =
            format!("GetComponentManagedIdentityFIC(ComponentName='{}',ComponentId={component})", kind.logical_name());
        self.pipeline.json(self.call("get component FIC", Method::GET, &path)?).await
    }
}

/// A read [`DataverseClient::read_batch`] can put in a `$batch`, each the same request as its single method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataverseRead {
    /// `RetrieveCurrentOrganization`.
    Organization,
    /// `managedidentities` with a `$filter`.
    ManagedIdentities(String),
    /// Plug-in assemblies by name.
    AssembliesByName(Vec<String>),
    /// Plug-in packages by unique name.
    PackagesByName(Vec<String>),
    /// Every plug-in assembly.
    AllAssemblies,
    /// Every plug-in package.
    AllPackages,
    /// One plug-in assembly.
    Assembly(Uuid),
    /// One plug-in package.
    Package(Uuid),
    /// `GetComponentManagedIdentityFIC` for a component.
    ComponentFic(ComponentKind, Uuid),
    /// A component's registered bytes.
    RegisteredContent(ComponentKind, Uuid),
}

/// The answer to a [`DataverseRead`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DataverseAnswer {
    /// `RetrieveCurrentOrganization`.
    Organization(OrganizationDetail),
    /// Managed identity rows.
    ManagedIdentities(Vec<ManagedIdentity>),
    /// Plug-in assemblies.
    Assemblies(Vec<PluginAssembly>),
    /// Plug-in packages.
    Packages(Vec<PluginPackage>),
    /// One plug-in assembly.
    Assembly(PluginAssembly),
    /// One plug-in package.
    Package(PluginPackage),
    /// The platform's subject for a component.
    ComponentFic(ComponentManagedIdentityFic),
    /// Registered bytes (`None`: none).
    RegisteredContent(Option<Vec<u8>>),
}

/// A write [`DataverseClient::write_change_set`] puts in one change set.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DataverseWrite {
    /// Create a managed identity row (with its client-chosen id).
    CreateRow(NewManagedIdentity),
    /// Update a row.
    UpdateRow(Uuid, ManagedIdentityUpdate),
    /// Bind a component to a row.
    Bind(ComponentKind, Uuid, Uuid),
}

impl DataverseClient {
    /// The single request for a read, as its own method sends it.
    fn read_call(&self, read: &DataverseRead) -> Result<Call, ApiError> {
        let by_name = |operation, set, field, select, names: &[String]| {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            self.query(operation, set, select, Some(&any_of(field, &names)))
        };
        Ok(match read {
            DataverseRead::Organization => self.call(
                "retrieve current organization",
                Method::GET,
                "RetrieveCurrentOrganization(AccessType=Microsoft.Dynamics.CRM.EndpointAccessType'Default')",
            )?,
            DataverseRead::ManagedIdentities(filter) => {
                self.query("list managed identities", "managedidentities", MI_SELECT, Some(filter))?
            }
            DataverseRead::AssembliesByName(names) => {
                by_name("find plug-in assemblies", "pluginassemblies", "name", ASSEMBLY_SELECT, names)?
            }
            DataverseRead::PackagesByName(names) => {
                by_name("find plug-in packages", "pluginpackages", "uniquename", PACKAGE_SELECT, names)?
            }
            DataverseRead::AllAssemblies => {
                self.query("list plug-in assemblies", "pluginassemblies", ASSEMBLY_SELECT, None)?
            }
            DataverseRead::AllPackages => {
                self.query("list plug-in packages", "pluginpackages", PACKAGE_SELECT, None)?
            }
            DataverseRead::Assembly(id) => {
                let mut call = self.call("get plug-in assembly", Method::GET, &format!("pluginassemblies({id})"))?;
                call.url.query_pairs_mut().append_pair("$select", ASSEMBLY_SELECT);
                call
            }
            DataverseRead::Package(id) => {
                let mut call = self.call("get plug-in package", Method::GET, &format!("pluginpackages({id})"))?;
                call.url.query_pairs_mut().append_pair("$select", PACKAGE_SELECT);
                call
            }
            DataverseRead::ComponentFic(kind, id) => self.call(
                "get component FIC",
                Method::GET,
                &format!("GetComponentManagedIdentityFIC(ComponentName='{}',ComponentId={id})", kind.logical_name()),
            )?,
            DataverseRead::RegisteredContent(kind, id) => {
                let mut call =
                    self.call("read registered content", Method::GET, &format!("{}({id})", kind.entity_set()))?;
                call.url.query_pairs_mut().append_pair("$select", "content");
                call
            }
        })
    }

    /// The same read as a single request (its own method, every page).
    async fn read_one(&self, read: &DataverseRead) -> Result<DataverseAnswer, ApiError> {
        fn names(n: &[String]) -> Vec<&str> {
            n.iter().map(String::as_str).collect()
        }
        Ok(match read {
            DataverseRead::Organization => DataverseAnswer::Organization(self.retrieve_current_organization().await?),
            DataverseRead::ManagedIdentities(f) => {
                DataverseAnswer::ManagedIdentities(self.list_managed_identities(Some(f)).await?)
            }
            DataverseRead::AssembliesByName(n) => {
                DataverseAnswer::Assemblies(self.find_plugin_assemblies_by_name(&names(n)).await?)
            }
            DataverseRead::PackagesByName(n) => {
                DataverseAnswer::Packages(self.find_plugin_packages_by_name(&names(n)).await?)
            }
            DataverseRead::AllAssemblies => DataverseAnswer::Assemblies(self.list_plugin_assemblies().await?),
            DataverseRead::AllPackages => DataverseAnswer::Packages(self.list_plugin_packages().await?),
            DataverseRead::Assembly(id) => DataverseAnswer::Assembly(self.get_plugin_assembly(*id).await?),
            DataverseRead::Package(id) => DataverseAnswer::Package(self.get_plugin_package(*id).await?),
            DataverseRead::ComponentFic(kind, id) => {
                DataverseAnswer::ComponentFic(self.get_component_managed_identity_fic(*kind, *id).await?)
            }
            DataverseRead::RegisteredContent(kind, id) => {
                DataverseAnswer::RegisteredContent(self.registered_content(*kind, *id).await?)
            }
        })
    }

    /// Several reads in one `$batch` round trip (with `Prefer: odata.continue-on-error`, so one failing read does
    /// not stop the others): each answer, or its typed error, as its single method would give it. A collection
    /// with more than one page, and a package whose bytes are in its file column, are completed with single
    /// requests. When the batch itself fails (not sent, not answered, not readable), every read is sent on its own.
    pub async fn read_batch(&self, reads: &[DataverseRead]) -> Vec<Result<DataverseAnswer, ApiError>> {
        if reads.is_empty() {
            return Vec::new();
        }
        let calls: Result<Vec<Call>, ApiError> = reads.iter().map(|r| self.read_call(r)).collect();
        let responses = match calls {
            Ok(calls) => {
                let parts: Vec<BatchPart> = calls.iter().map(|c| BatchPart::Request(batch_request(c, None))).collect();
                self.pipeline.batch("read in a batch", &parts, true).await
            }
            Err(e) => Err(e),
        };
        let responses = match responses {
            Ok(r) if r.len() == reads.len() => r,
            outcome => {
                if let Err(e) = &outcome {
                    tracing::debug!(error = %e, "the read batch failed; reading one by one");
                }
                let mut out = Vec::with_capacity(reads.len());
                for r in reads {
                    out.push(self.read_one(r).await);
                }
                return out;
            }
        };
        let mut out = Vec::with_capacity(reads.len());
        for (read, response) in reads.iter().zip(responses) {
            out.push(self.answer(read, response).await);
        }
        out
    }

    async fn answer(&self, read: &DataverseRead, response: BatchResponse) -> Result<DataverseAnswer, ApiError> {
        let operation = "read in a batch";
        let response = self.pipeline.inner_result(operation, response)?;
        let body = response.body();
        // The rows of a collection that fits in one page; `None` when it has more (read whole, alone).
        fn page<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<Vec<T>>, ApiError> {
            let p: super::Page<T> = super::decode(Service::Dataverse, "read in a batch", body)?;
            Ok(p.next_link.is_none().then_some(p.value))
        }
        Ok(match read {
            DataverseRead::Organization => {
                let r: RetrieveCurrentOrganizationResponse = super::decode(Service::Dataverse, operation, body)?;
                DataverseAnswer::Organization(r.detail)
            }
            DataverseRead::ManagedIdentities(_) => match page(body)? {
                Some(v) => DataverseAnswer::ManagedIdentities(v),
                None => self.read_one(read).await?,
            },
            DataverseRead::AssembliesByName(_) | DataverseRead::AllAssemblies => match page(body)? {
                Some(v) => DataverseAnswer::Assemblies(v),
                None => self.read_one(read).await?,
            },
            DataverseRead::PackagesByName(_) | DataverseRead::AllPackages => match page(body)? {
                Some(v) => DataverseAnswer::Packages(v),
                None => self.read_one(read).await?,
            },
            DataverseRead::Assembly(_) => {
                DataverseAnswer::Assembly(super::decode(Service::Dataverse, operation, body)?)
            }
            DataverseRead::Package(_) => DataverseAnswer::Package(super::decode(Service::Dataverse, operation, body)?),
            DataverseRead::ComponentFic(..) => {
                DataverseAnswer::ComponentFic(super::decode(Service::Dataverse, operation, body)?)
            }
            DataverseRead::RegisteredContent(kind, id) => {
                #[derive(Deserialize)]
                struct Row {
                    #[serde(default)]
                    content: Option<String>,
                }
                let row: Row = super::decode(Service::Dataverse, operation, body)?;
                match row.content.filter(|t| !t.trim().is_empty()) {
                    Some(text) => DataverseAnswer::RegisteredContent(Some(decode_content(&text)?)),
                    None if *kind == ComponentKind::PluginPackage => {
                        DataverseAnswer::RegisteredContent(self.registered_content(*kind, *id).await?)
                    }
                    None => DataverseAnswer::RegisteredContent(None),
                }
            }
        })
    }

    /// Writes in one change set: they succeed or fail together (a row created here is referred to as `$1` by
    /// the binds that follow). The error is the failing request's, typed as its single request's would be.
    pub async fn write_change_set(&self, writes: &[DataverseWrite]) -> Result<(), ApiError> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut created: Option<Uuid> = None;
        let mut requests = Vec::with_capacity(writes.len());
        for (i, w) in writes.iter().enumerate() {
            let content_id = Some(u32::try_from(i + 1).unwrap_or(u32::MAX));
            let mut r = match w {
                DataverseWrite::CreateRow(row) => {
                    created = Some(row.id);
                    let call = self.call("create managed identity", Method::POST, "managedidentities")?.json(row)?;
                    batch_request(&call, content_id)
                }
                DataverseWrite::UpdateRow(id, update) => {
                    let call = self
                        .call("update managed identity", Method::PATCH, &format!("managedidentities({id})"))?
                        .header(http::header::IF_MATCH, "*")
                        .json(update)?;
                    batch_request(&call, content_id)
                }
                DataverseWrite::Bind(kind, component, target) => {
                    let body = if created == Some(*target) && i > 0 {
                        // The row created earlier in this change set, by its Content-ID.
                        serde_json::json!({ "managedidentityid@odata.bind": "$1" })
                    } else {
                        serde_json::to_value(ManagedIdentityBinding::bind(*target))
                            .map_err(|e| ApiError::invalid("request body", e.to_string()))?
                    };
                    let call = self
                        .call("bind component", Method::PATCH, &format!("{}({component})", kind.entity_set()))?
                        .header(http::header::IF_MATCH, "*")
                        .json(&body)?;
                    batch_request(&call, content_id)
                }
            };
            r.content_id = content_id;
            requests.push(r);
        }
        let responses = self.pipeline.batch("write a change set", &[BatchPart::ChangeSet(requests)], true).await?;
        for response in responses {
            self.pipeline.inner_result("write a change set", response)?;
        }
        Ok(())
    }
}

fn decode_content(text: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine as _;
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact).map_err(|e| ApiError::Decode {
        service: Service::Dataverse,
        operation: "read registered content",
        path: "content".into(),
        message: format!("not Base64: {e}"),
    })
}

/// A call as a request inside a batch (its absolute URL, its headers, its body).
fn batch_request(call: &Call, content_id: Option<u32>) -> BatchRequest {
    BatchRequest {
        method: call.method.clone(),
        url: call.url.to_string(),
        headers: call
            .headers
            .iter()
            .filter(|(n, _)| *n != http::header::CONTENT_TYPE)
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: call.body.as_ref().map(|b| b.to_vec()),
        content_id,
    }
}
