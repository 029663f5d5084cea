//! Every Dataverse Web API call this crate makes, each written once as a [`Request`] value with its decoder: sent
//! by [`DataverseClient::send`](super::DataverseClient::send), or in a [`Batch`](super::Batch) by [`DataverseClient::send_batch`](super::DataverseClient::send_batch) (one `$batch` round trip),
//! [`DataverseClient::send_change_set`](super::DataverseClient::send_change_set) (together or not at all) and [`DataverseClient::send_each`](super::DataverseClient::send_each).

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
fn dv<T>(operation: &'static str, method: Method, path: impl Into<String>, decode: request::Decoder<T>) -> Request<T> {
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
    dv(operation, Method::GET, path, request::pages::<U>(headers)).header(PAGE_HEADERS[0].0.clone(), PAGE_HEADERS[0].1)
}

/// One row by id, its `$select`ed columns.
fn row<T: serde::de::DeserializeOwned + 'static>(operation: &'static str, path: String, select: &str) -> Request<T> {
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
    dv("retrieve version", Method::GET, "RetrieveVersion()", request::json_map(|r: RetrieveVersionResponse| r.version))
}

/// Creates a managed identity row with its client-chosen id (`Prefer: return=representation`): the row as
/// stored, or its id from `OData-EntityId` when the service answers `204`. Safe to retry (a second sending is a
/// duplicate key). In a change set, later requests naming the row refer to it by `Content-ID`.
pub fn create_managed_identity(row: &NewManagedIdentity) -> Request<Created<ManagedIdentity>> {
    let decode: request::Decoder<Created<ManagedIdentity>> =
        Arc::new(|service, operation, response| crate::clients::created(service, operation, &response).map(Step::Done));
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
    let path = with_query(format!("{}({component})", kind.entity_set()), &[("$select", "_managedidentityid_value")]);
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
    let request =
        query("find security roles", "roles", "roleid,name,_businessunitid_value", Some(&any_of("name", names)), &[]);
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
        let next = dv("read package file", Method::GET, format!("{set}({component})/fileid/$value"), file).absent_ok();
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
