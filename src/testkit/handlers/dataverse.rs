//! Dataverse's Web API as the fake serves it: the organization, `managedidentities`, plug-in assemblies and
//! packages, the platform's subject (`GetComponentManagedIdentityFIC`) and the trace log.

use http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Answer, Incoming, error, page};
use crate::cloud::CloudProfile;
use crate::entities::{ManagedIdentity, NewManagedIdentity};
use crate::testkit::{Component, Environment, State};

type Handled = Result<Answer, Answer>;

/// The environment a request is for.
fn environment<'s>(s: &'s mut State, i: &Incoming<'_>) -> Result<&'s mut Environment, Answer> {
    s.environments.get_mut(i.host).ok_or_else(|| error(404, "", &format!("no environment at {}", i.host)))
}

/// `RetrieveCurrentOrganization`, shaped as Learn's `RetrieveCurrentOrganizationResponse`.
pub(in crate::testkit) fn current_organization(s: &mut State, i: &Incoming<'_>) -> Handled {
    let host = i.host;
    let env = environment(s, i)?;
    Ok((
        StatusCode::OK,
        json!({"Detail": {
            "OrganizationId": env.organization_id, "EnvironmentId": env.environment_id.to_string(), "TenantId": env.tenant_id.to_string(),
            "UniqueName": format!("unq{}", env.organization_id.simple()), "FriendlyName": host, "UrlName": host.split('.').next(), "Geo": "NA",
            "Endpoints": {"Count": 1, "IsReadOnly": false, "Keys": ["WebApplication"], "Values": [format!("https://{host}/")]}
        }}),
    ))
}

/// `WhoAmI`.
pub(in crate::testkit) fn who_am_i(s: &mut State, i: &Incoming<'_>) -> Handled {
    let env = environment(s, i)?;
    Ok((
        StatusCode::OK,
        json!({"UserId": Uuid::nil(), "BusinessUnitId": Uuid::nil(), "OrganizationId": env.organization_id}),
    ))
}

/// `GetComponentManagedIdentityFIC(ComponentId=…,ComponentName='pluginassembly'|'pluginpackage')`: the subject
/// the platform presents for the component ([`super::super::model::platform_subject`]).
pub(in crate::testkit) fn component_fic(s: &mut State, i: &Incoming<'_>) -> Handled {
    let cloud = CloudProfile::from(s.options.cloud);
    let env = environment(s, i)?;
    let args = i.key(0);
    let kind = if args.contains("ComponentName='pluginpackage'") { "pluginpackage" } else { "pluginassembly" };
    let id = args
        .split("ComponentId=")
        .nth(1)
        .and_then(|r| Uuid::parse_str(r.split(',').next().unwrap_or_default().trim()).ok());
    let table = if kind == "pluginpackage" { &env.packages } else { &env.assemblies };
    let c = id.and_then(|id| table.get(&id)).ok_or_else(|| error(404, "0x80040217", "component not found"))?;
    match crate::testkit::model::platform_subject(env, c, &cloud) {
        Ok((subject, _, _)) => Ok((
            StatusCode::OK,
            json!({
                "@odata.context": "https://fake.crm.dynamics.com/api/data/v9.2/$metadata#Microsoft.Dynamics.CRM.GetComponentManagedIdentityFICResponse",
                "FICSubject": subject
            }),
        )),
        Err(why) => Err(error(400, "0x80040265", &why)),
    }
}

/// `GET managedidentities`, with a `$filter` on `applicationid`, `managedidentityid` or `tenantid`.
pub(in crate::testkit) fn rows(s: &mut State, i: &Incoming<'_>) -> Handled {
    let page_size = s.options.page_size;
    let filter = i.filter("0x80060888")?;
    let env = environment(s, i)?;
    let rows: Vec<Value> = env
        .managed_identities
        .values()
        .filter(|row| {
            filter.as_ref().is_none_or(|terms| {
                terms.iter().any(|(field, value)| {
                    let value = value.to_ascii_lowercase();
                    match field.as_str() {
                        "applicationid" => row.application_id.map(|a| a.to_string()) == Some(value),
                        "managedidentityid" => row.id.to_string() == value,
                        "tenantid" => row.tenant_id.map(|a| a.to_string()) == Some(value),
                        "credentialsource" => {
                            row.credential_source.and_then(|c| serde_json::to_value(c).ok()).map(|v| v.to_string())
                                == Some(value)
                        }
                        _ => false,
                    }
                })
            })
        })
        .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
        .collect();
    Ok((StatusCode::OK, page(i.request, rows, page_size)))
}

/// `POST managedidentities`: 412 for an id that exists.
pub(in crate::testkit) fn create_row(s: &mut State, i: &Incoming<'_>) -> Handled {
    let env = environment(s, i)?;
    let new = serde_json::from_value::<NewManagedIdentity>(i.body.clone())
        .map_err(|_| error(400, "0x80048d19", "Error identified in Payload provided by the user"))?;
    if env.managed_identities.contains_key(&new.id) {
        return Err(error(412, "0x80040237", "A record with matching key values already exists."));
    }
    let row = ManagedIdentity {
        id: new.id,
        name: Some(new.name),
        application_id: Some(new.application_id),
        tenant_id: Some(new.tenant_id),
        credential_source: Some(new.credential_source),
        subject_scope: Some(new.subject_scope),
        version: Some(new.version.number()),
        identity_type: None,
        state_code: Some(0),
        component_state: Some(0),
        is_managed: Some(false),
        extra: serde_json::Map::new(),
    };
    let v = serde_json::to_value(&row).unwrap_or(Value::Null);
    env.managed_identities.insert(row.id, row);
    Ok((StatusCode::CREATED, v))
}

/// The row the path's key names.
fn row_of<'e>(env: &'e mut Environment, i: &Incoming<'_>) -> Result<&'e mut ManagedIdentity, Answer> {
    i.key_id(0)
        .and_then(|id| env.managed_identities.get_mut(&id))
        .ok_or_else(|| error(404, "0x80040217", &format!("managedidentity With Ids = {} Do Not Exist", i.key(0))))
}

/// `GET managedidentities(id)`.
pub(in crate::testkit) fn row(s: &mut State, i: &Incoming<'_>) -> Handled {
    let row = row_of(environment(s, i)?, i)?;
    Ok((StatusCode::OK, serde_json::to_value(&*row).unwrap_or(Value::Null)))
}

/// `PATCH managedidentities(id)`: version, application, tenant and name.
pub(in crate::testkit) fn update_row(s: &mut State, i: &Incoming<'_>) -> Handled {
    let row = row_of(environment(s, i)?, i)?;
    let body = i.body;
    if let Some(v) = body.get("version").and_then(Value::as_i64) {
        row.version = Some(v as i32);
    }
    if let Some(a) = body.get("applicationid").and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok()) {
        row.application_id = Some(a);
    }
    if let Some(t) = body.get("tenantid").and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok()) {
        row.tenant_id = Some(t);
    }
    if let Some(n) = body.get("name").and_then(Value::as_str) {
        row.name = Some(n.to_owned());
    }
    Ok((StatusCode::NO_CONTENT, Value::Null))
}

/// `DELETE managedidentities(id)`: the components bound to it are unbound.
pub(in crate::testkit) fn delete_row(s: &mut State, i: &Incoming<'_>) -> Handled {
    let env = environment(s, i)?;
    let id = row_of(env, i)?.id;
    env.managed_identities.remove(&id);
    for c in env.assemblies.values_mut().chain(env.packages.values_mut()) {
        if c.binding == Some(id) {
            c.binding = None;
        }
    }
    Ok((StatusCode::NO_CONTENT, Value::Null))
}

/// Plug-in assemblies and plug-in packages: the two kinds of component, served alike.
#[derive(Clone, Copy)]
enum Kind {
    Assembly,
    Package,
}

impl Kind {
    fn set(self) -> &'static str {
        match self {
            Kind::Assembly => "pluginassemblies",
            Kind::Package => "pluginpackages",
        }
    }

    /// The column a `$filter` finds a component by its name in.
    fn name_field(self) -> &'static str {
        match self {
            Kind::Assembly => "name",
            Kind::Package => "uniquename",
        }
    }

    fn table(self, env: &mut Environment) -> &mut std::collections::BTreeMap<Uuid, Component> {
        match self {
            Kind::Assembly => &mut env.assemblies,
            Kind::Package => &mut env.packages,
        }
    }

    fn json(self, id: Uuid, c: &Component) -> Value {
        match self {
            Kind::Assembly => {
                json!({"pluginassemblyid": id, "name": c.name, "version": "1.0.0.0", "culture": "neutral",
                "isolationmode": 2, "sourcetype": 0, "_packageid_value": c.package, "_managedidentityid_value": c.binding})
            }
            Kind::Package => json!({"pluginpackageid": id, "name": c.name, "uniquename": c.name, "version": "1.0.0",
                "_managedidentityid_value": c.binding}),
        }
    }
}

fn list(s: &mut State, i: &Incoming<'_>, kind: Kind) -> Handled {
    let page_size = s.options.page_size;
    let filter = i.filter("0x80060888")?;
    let env = environment(s, i)?;
    let rows: Vec<Value> = kind
        .table(env)
        .iter()
        .filter(|(_, c)| {
            filter
                .as_ref()
                .is_none_or(|terms| terms.iter().any(|(f, v)| (f == kind.name_field() || f == "name") && *v == c.name))
        })
        .map(|(id, c)| kind.json(*id, c))
        .collect();
    Ok((StatusCode::OK, page(i.request, rows, page_size)))
}

fn component<'e>(env: &'e mut Environment, i: &Incoming<'_>, kind: Kind) -> Result<(Uuid, &'e mut Component), Answer> {
    let missing = || error(404, "0x80040217", &format!("{} With Ids = {} Do Not Exist", kind.set(), i.key(0)));
    let id = i.key_id(0).ok_or_else(missing)?;
    let c = kind.table(env).get_mut(&id).ok_or_else(missing)?;
    Ok((id, c))
}

fn get(s: &mut State, i: &Incoming<'_>, kind: Kind) -> Handled {
    let env = environment(s, i)?;
    let (id, c) = component(env, i, kind)?;
    match i.param("rest") {
        "" => {}
        // The fake keeps a package's bytes in `content`; its file column is empty.
        "fileid/$value" => {
            return Err(error(404, "0x80040217", &format!("no file attachment found for {}({id}).fileid", kind.set())));
        }
        other => return Err(error(404, "0x80060888", &format!("Resource not found for the segment '{other}'"))),
    }
    let select = i.query("$select").unwrap_or_default();
    if select.split(',').any(|f| f.trim() == "content") {
        use base64::Engine as _;
        let content = c.content.as_ref().map(|b| base64::engine::general_purpose::STANDARD.encode(b));
        let key = match kind {
            Kind::Assembly => "pluginassemblyid",
            Kind::Package => "pluginpackageid",
        };
        return Ok((StatusCode::OK, json!({ key: id, "content": content })));
    }
    Ok((StatusCode::OK, kind.json(id, c)))
}

/// Binds (`managedidentityid@odata.bind`) or unbinds (`null`) a component; other fields are taken and dropped.
fn bind(s: &mut State, i: &Incoming<'_>, kind: Kind) -> Handled {
    let env = environment(s, i)?;
    let target = match i.body.get("managedidentityid@odata.bind") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(target)) => {
            let id = target
                .trim_start_matches('/')
                .strip_prefix("managedidentities(")
                .and_then(|r| r.strip_suffix(')'))
                .and_then(|id| Uuid::parse_str(id).ok())
                .filter(|id| env.managed_identities.contains_key(id))
                .ok_or_else(|| error(404, "0x80040217", &format!("managedidentity {target} does not exist")))?;
            Some(Some(id))
        }
        Some(_) => return Err(error(400, "0x80048d19", "Error identified in Payload provided by the user")),
    };
    let (_, c) = component(env, i, kind)?;
    if let Some(binding) = target {
        c.binding = binding;
    }
    Ok((StatusCode::NO_CONTENT, Value::Null))
}

/// `GET pluginassemblies`.
pub(in crate::testkit) fn assemblies(s: &mut State, i: &Incoming<'_>) -> Handled {
    list(s, i, Kind::Assembly)
}

/// `GET pluginpackages`.
pub(in crate::testkit) fn packages(s: &mut State, i: &Incoming<'_>) -> Handled {
    list(s, i, Kind::Package)
}

/// `GET pluginassemblies(id)`, its `content` with `$select`.
pub(in crate::testkit) fn assembly(s: &mut State, i: &Incoming<'_>) -> Handled {
    get(s, i, Kind::Assembly)
}

/// `GET pluginpackages(id)`, its `content` with `$select`, its file column.
pub(in crate::testkit) fn package(s: &mut State, i: &Incoming<'_>) -> Handled {
    get(s, i, Kind::Package)
}

/// `PATCH pluginassemblies(id)`.
pub(in crate::testkit) fn bind_assembly(s: &mut State, i: &Incoming<'_>) -> Handled {
    bind(s, i, Kind::Assembly)
}

/// `PATCH pluginpackages(id)`.
pub(in crate::testkit) fn bind_package(s: &mut State, i: &Incoming<'_>) -> Handled {
    bind(s, i, Kind::Package)
}

/// `GET plugintracelogs`, with the `createdon gt` and `startswith(typename,…)` filters `watch` sends.
pub(in crate::testkit) fn trace_logs(s: &mut State, i: &Incoming<'_>) -> Handled {
    let page_size = s.options.page_size;
    let env = environment(s, i)?;
    let filter = i.query("$filter").unwrap_or_default();
    let since =
        filter.split("createdon gt ").nth(1).map(|r| r.split(' ').next().unwrap_or("").to_owned()).unwrap_or_default();
    let prefix =
        filter.split("startswith(typename,'").nth(1).and_then(|r| r.split("')").next()).map(|p| p.replace("''", "'"));
    // Compared as instants, as Dataverse compares DateTimeOffset values (not as text: `10:00:00Z` and
    // `10:00:00.000Z` are the same time).
    let time = |t: &str| humantime::parse_rfc3339_weak(t).ok();
    let since = time(&since);
    let rows = env
        .trace_logs
        .iter()
        .filter(|l| match (l.created_on.as_deref().and_then(time), since) {
            (Some(created), Some(since)) => created > since,
            (_, None) => true,
            (None, Some(_)) => false,
        })
        .filter(|l| prefix.as_deref().is_none_or(|p| l.type_name.as_deref().unwrap_or("").starts_with(p)))
        .map(|l| serde_json::to_value(l).unwrap_or(Value::Null))
        .collect();
    Ok((StatusCode::OK, page(i.request, rows, page_size)))
}

/// `GET organizations`: the one organization, with its trace-log setting.
pub(in crate::testkit) fn organizations(s: &mut State, i: &Incoming<'_>) -> Handled {
    let page_size = s.options.page_size;
    let env = environment(s, i)?;
    let rows = vec![json!({"organizationid": env.organization_id, "plugintracelogsetting": env.trace_setting})];
    Ok((StatusCode::OK, page(i.request, rows, page_size)))
}

/// `PATCH organizations(id)`: the trace-log setting.
pub(in crate::testkit) fn update_organization(s: &mut State, i: &Incoming<'_>) -> Handled {
    let env = environment(s, i)?;
    if i.key_id(0) != Some(env.organization_id) {
        return Err(error(404, "0x80040217", &format!("organization With Ids = {} Do Not Exist", i.key(0))));
    }
    if let Some(v) = i.body.get("plugintracelogsetting").and_then(Value::as_i64) {
        env.trace_setting = v as i32;
    }
    Ok((StatusCode::NO_CONTENT, Value::Null))
}

/// `GET businessunits`: with `_parentbusinessunitid_value eq null`, the root one.
pub(in crate::testkit) fn business_units(s: &mut State, i: &Incoming<'_>) -> Handled {
    let page_size = s.options.page_size;
    let filter = i.filter("0x80060888")?;
    let env = environment(s, i)?;
    let security = &env.security;
    let units =
        [(security.root_business_unit, None), (security.child_business_unit, Some(security.root_business_unit))];
    let rows = units
        .iter()
        .filter(|(_, parent)| {
            filter.as_ref().is_none_or(|terms| {
                terms.iter().any(|(f, v)| {
                    f == "_parentbusinessunitid_value"
                        && match parent {
                            None => v == "null",
                            Some(p) => p.to_string() == v.to_ascii_lowercase(),
                        }
                })
            })
        })
        .map(|(id, parent)| json!({"businessunitid": id, "_parentbusinessunitid_value": parent}))
        .collect();
    Ok((StatusCode::OK, page(i.request, rows, page_size)))
}

fn role_json(id: Uuid, name: &str, business_unit: Uuid) -> Value {
    json!({"roleid": id, "name": name, "_businessunitid_value": business_unit})
}

/// `GET roles`, found by `name` (every business unit's copy).
pub(in crate::testkit) fn roles(s: &mut State, i: &Incoming<'_>) -> Handled {
    let page_size = s.options.page_size;
    let filter = i.filter("0x80060888")?;
    let env = environment(s, i)?;
    let rows = env
        .security
        .roles
        .iter()
        .filter(|(_, (name, _))| {
            filter.as_ref().is_none_or(|terms| terms.iter().any(|(f, v)| f == "name" && v.eq_ignore_ascii_case(name)))
        })
        .map(|(id, (name, bu))| role_json(*id, name, *bu))
        .collect();
    Ok((StatusCode::OK, page(i.request, rows, page_size)))
}

/// `GET systemusers`, found by `applicationid`, each with its roles (`$expand=systemuserroles_association`).
pub(in crate::testkit) fn system_users(s: &mut State, i: &Incoming<'_>) -> Handled {
    let page_size = s.options.page_size;
    let filter = i.filter("0x80060888")?;
    let expand = i.query("$expand").is_some_and(|e| e.contains("systemuserroles_association"));
    let env = environment(s, i)?;
    let security = &env.security;
    let rows = security
        .users
        .iter()
        .filter(|(_, u)| {
            filter.as_ref().is_none_or(|terms| {
                terms.iter().any(|(f, v)| {
                    f == "applicationid" && u.application_id.map(|a| a.to_string()) == Some(v.to_ascii_lowercase())
                })
            })
        })
        .map(|(id, u)| {
            let mut row = json!({"systemuserid": id, "applicationid": u.application_id, "isdisabled": false,
                                 "_businessunitid_value": u.business_unit});
            if expand {
                let roles: Vec<Value> = u
                    .roles
                    .iter()
                    .filter_map(|r| security.roles.get(r).map(|(name, bu)| role_json(*r, name, *bu)))
                    .collect();
                row["systemuserroles_association"] = json!(roles);
            }
            row
        })
        .collect();
    Ok((StatusCode::OK, page(i.request, rows, page_size)))
}

/// `POST systemusers`: an application user (`applicationid`, `businessunitid@odata.bind`), under the id the
/// client gives; one per application, a second is refused as a duplicate.
pub(in crate::testkit) fn create_system_user(s: &mut State, i: &Incoming<'_>) -> Handled {
    let env = environment(s, i)?;
    let bad = || error(400, "0x80048d19", "Error identified in Payload provided by the user");
    let uuid = |field: &str| i.body.get(field).and_then(Value::as_str).and_then(|v| Uuid::parse_str(v).ok());
    let application_id = uuid("applicationid").ok_or_else(bad)?;
    let id = uuid("systemuserid").unwrap_or_else(|| Uuid::new_v5(&env.organization_id, application_id.as_bytes()));
    let business_unit = i
        .body
        .get("businessunitid@odata.bind")
        .and_then(Value::as_str)
        .and_then(|b| b.trim_start_matches('/').strip_prefix("businessunits(")?.strip_suffix(')').map(str::to_owned))
        .and_then(|b| Uuid::parse_str(&b).ok())
        .ok_or_else(bad)?;
    let security = &mut env.security;
    if ![security.root_business_unit, security.child_business_unit].contains(&business_unit) {
        return Err(error(404, "0x80040217", &format!("businessunit With Ids = {business_unit} Do Not Exist")));
    }
    if security.users.contains_key(&id) || security.application_user(application_id).is_some() {
        return Err(error(412, "0x80040237", "A record with matching key values already exists."));
    }
    security.users.insert(
        id,
        crate::testkit::access::SystemUser {
            application_id: Some(application_id),
            business_unit,
            roles: Default::default(),
        },
    );
    Ok((StatusCode::NO_CONTENT, Value::Null))
}

/// `POST systemusers(id)/systemuserroles_association/$ref`: gives the user a role of its own business unit.
pub(in crate::testkit) fn add_user_role(s: &mut State, i: &Incoming<'_>) -> Handled {
    let env = environment(s, i)?;
    let role = i
        .body
        .get("@odata.id")
        .and_then(Value::as_str)
        .and_then(|url| url.rsplit("roles(").next()?.strip_suffix(')').map(str::to_owned))
        .and_then(|id| Uuid::parse_str(&id).ok())
        .ok_or_else(|| error(400, "0x80048d19", "Error identified in Payload provided by the user"))?;
    let security = &mut env.security;
    let (_, role_unit) = security
        .roles
        .get(&role)
        .cloned()
        .ok_or_else(|| error(404, "0x80040217", &format!("role With Ids = {role} Do Not Exist")))?;
    let user_id = i.key_id(0);
    let user = user_id
        .and_then(|u| security.users.get_mut(&u))
        .ok_or_else(|| error(404, "0x80040217", &format!("systemuser With Ids = {} Do Not Exist", i.key(0))))?;
    if role_unit != user.business_unit {
        return Err(error(400, "", "The role is not from the same business unit as the user."));
    }
    if !user.roles.insert(role) {
        return Err(error(400, "0x80040237", "Cannot insert duplicate key."));
    }
    Ok((StatusCode::NO_CONTENT, Value::Null))
}

/// `DELETE systemusers(id)/systemuserroles_association(id)/$ref`: takes the role away.
pub(in crate::testkit) fn remove_user_role(s: &mut State, i: &Incoming<'_>) -> Handled {
    let env = environment(s, i)?;
    let user = i
        .key_id(0)
        .and_then(|u| env.security.users.get_mut(&u))
        .ok_or_else(|| error(404, "0x80040217", &format!("systemuser With Ids = {} Do Not Exist", i.key(0))))?;
    match i.key_id(1) {
        Some(role) if user.roles.remove(&role) => Ok((StatusCode::NO_CONTENT, Value::Null)),
        _ => Err(error(404, "0x80040217", "The association does not exist.")),
    }
}
