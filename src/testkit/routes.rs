//! The fake's routes, in one table: the names the request log gives, the names faults aim at and counts count,
//! and the list `docs/testkit.md` shows (a test checks the page against it).

use super::route_name::{Route, UnknownRoute};
use std::str::FromStr;

use super::State;
use super::handlers::{self, Answer, Incoming, arm, dataverse as dv, graph};

/// One route: its name (`METHOD service name`) and the paths it serves, as `matchit` patterns over the request's
/// normalised path (`/{service}/{path}`, the query left out, every OData key `(...)` written `(id)`, and an ARM
/// role scope written `scope`).
struct RouteDef {
    name: &'static str,
    paths: &'static [&'static str],
    serve: Serve,
}

const fn route(name: &'static str, paths: &'static [&'static str], handler: Handler) -> RouteDef {
    RouteDef { name, paths, serve: Serve::One(handler) }
}

const fn batch(name: &'static str, paths: &'static [&'static str], kind: BatchKind) -> RouteDef {
    RouteDef { name, paths, serve: Serve::Batch(kind) }
}

/// A route's handler: the answer (`Err` for an error answer, so that handlers can use `?`).
pub(super) type Handler = fn(&mut State, &Incoming<'_>) -> Result<Answer, Answer>;

/// Which service's batch a batch route is. The dispatcher serves it, since each request inside goes through this
/// table again: the table names the kind rather than a handler, so that it needs nothing from the dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BatchKind {
    /// Dataverse's `$batch` (multipart, change sets).
    Dataverse,
    /// Graph's JSON batch.
    Graph,
}

/// How a route is served: one request, or a batch of them (each dispatched through this table again).
#[derive(Clone, Copy)]
pub(super) enum Serve {
    One(Handler),
    Batch(BatchKind),
}

const UAMI: &str =
    "/arm/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{n}";
const UAMI_FICS: &str = "/arm/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{n}/federatedIdentityCredentials";
const UAMI_FIC: &str = "/arm/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{n}/federatedIdentityCredentials/{f}";

/// Every route the fake serves: the one place route names, their paths and their handlers are written.
const TABLE: &[RouteDef] = &[
    // Dataverse
    route(
        "GET dataverse RetrieveCurrentOrganization",
        &["/dataverse/RetrieveCurrentOrganization", "/dataverse/RetrieveCurrentOrganization(id)"],
        dv::current_organization,
    ),
    route("GET dataverse WhoAmI", &["/dataverse/WhoAmI", "/dataverse/WhoAmI(id)"], dv::who_am_i),
    route(
        "GET dataverse GetComponentManagedIdentityFIC",
        &["/dataverse/GetComponentManagedIdentityFIC", "/dataverse/GetComponentManagedIdentityFIC(id)"],
        dv::component_fic,
    ),
    route("GET dataverse managedidentities", &["/dataverse/managedidentities"], dv::rows),
    route("POST dataverse managedidentities", &["/dataverse/managedidentities"], dv::create_row),
    route("GET dataverse managedidentities(id)", &["/dataverse/managedidentities(id)"], dv::row),
    route("PATCH dataverse managedidentities(id)", &["/dataverse/managedidentities(id)"], dv::update_row),
    route("DELETE dataverse managedidentities(id)", &["/dataverse/managedidentities(id)"], dv::delete_row),
    route("GET dataverse pluginassemblies", &["/dataverse/pluginassemblies"], dv::assemblies),
    route(
        "GET dataverse pluginassemblies(id)",
        &["/dataverse/pluginassemblies(id)", "/dataverse/pluginassemblies(id)/{*rest}"],
        dv::assembly,
    ),
    route("PATCH dataverse pluginassemblies(id)", &["/dataverse/pluginassemblies(id)"], dv::bind_assembly),
    route("GET dataverse pluginpackages", &["/dataverse/pluginpackages"], dv::packages),
    route(
        "GET dataverse pluginpackages(id)",
        &["/dataverse/pluginpackages(id)", "/dataverse/pluginpackages(id)/{*rest}"],
        dv::package,
    ),
    route("PATCH dataverse pluginpackages(id)", &["/dataverse/pluginpackages(id)"], dv::bind_package),
    route("GET dataverse plugintracelogs", &["/dataverse/plugintracelogs"], dv::trace_logs),
    route("GET dataverse organizations", &["/dataverse/organizations"], dv::organizations),
    route("PATCH dataverse organizations(id)", &["/dataverse/organizations(id)"], dv::update_organization),
    route("GET dataverse businessunits", &["/dataverse/businessunits"], dv::business_units),
    route("GET dataverse roles", &["/dataverse/roles"], dv::roles),
    route("GET dataverse systemusers", &["/dataverse/systemusers"], dv::system_users),
    route("POST dataverse systemusers", &["/dataverse/systemusers"], dv::create_system_user),
    route(
        "POST dataverse systemuser roles",
        &["/dataverse/systemusers(id)/systemuserroles_association/$ref"],
        dv::add_user_role,
    ),
    route(
        "DELETE dataverse systemuser role",
        &["/dataverse/systemusers(id)/systemuserroles_association(id)/$ref"],
        dv::remove_user_role,
    ),
    batch("POST dataverse $batch", &["/dataverse/$batch"], BatchKind::Dataverse),
    // Microsoft Graph
    route("GET graph applications", &["/graph/applications"], graph::applications),
    route("POST graph applications", &["/graph/applications"], graph::create_application),
    route("GET graph application", &["/graph/applications(id)", "/graph/applications/{id}"], graph::application),
    route(
        "PATCH graph application",
        &["/graph/applications(id)", "/graph/applications/{id}"],
        graph::update_application,
    ),
    route(
        "DELETE graph application",
        &["/graph/applications(id)", "/graph/applications/{id}"],
        graph::delete_application,
    ),
    route(
        "GET graph service principal",
        &["/graph/servicePrincipals", "/graph/servicePrincipals(id)", "/graph/servicePrincipals/{id}"],
        graph::service_principal,
    ),
    route("POST graph service principal", &["/graph/servicePrincipals"], graph::create_service_principal),
    route(
        "GET graph app role assignments",
        &["/graph/servicePrincipals/{id}/appRoleAssignments"],
        graph::app_role_assignments,
    ),
    route(
        "POST graph app role assignments",
        &["/graph/servicePrincipals/{id}/appRoleAssignments"],
        graph::assign_app_role,
    ),
    route(
        "DELETE graph app role assignment",
        &["/graph/servicePrincipals/{id}/appRoleAssignments/{a}"],
        graph::remove_app_role_assignment,
    ),
    route(
        "GET graph fics",
        &[
            "/graph/applications(id)/federatedIdentityCredentials",
            "/graph/applications/{id}/federatedIdentityCredentials",
        ],
        graph::fics,
    ),
    route(
        "POST graph fics",
        &[
            "/graph/applications(id)/federatedIdentityCredentials",
            "/graph/applications/{id}/federatedIdentityCredentials",
        ],
        graph::create_fic,
    ),
    route(
        "GET graph fic",
        &[
            "/graph/applications(id)/federatedIdentityCredentials/{f}",
            "/graph/applications/{id}/federatedIdentityCredentials/{f}",
        ],
        graph::fic,
    ),
    route(
        "PATCH graph fic",
        &[
            "/graph/applications(id)/federatedIdentityCredentials/{f}",
            "/graph/applications/{id}/federatedIdentityCredentials/{f}",
        ],
        graph::update_fic,
    ),
    route(
        "DELETE graph fic",
        &[
            "/graph/applications(id)/federatedIdentityCredentials/{f}",
            "/graph/applications/{id}/federatedIdentityCredentials/{f}",
        ],
        graph::delete_fic,
    ),
    route(
        "DELETE graph fic upsert",
        &[
            "/graph/applications(id)/federatedIdentityCredentials(id)",
            "/graph/applications/{id}/federatedIdentityCredentials(id)",
        ],
        graph::delete_fic,
    ),
    route(
        "GET graph fic upsert",
        &[
            "/graph/applications(id)/federatedIdentityCredentials(id)",
            "/graph/applications/{id}/federatedIdentityCredentials(id)",
        ],
        graph::fic,
    ),
    route(
        "PATCH graph fic upsert",
        &[
            "/graph/applications(id)/federatedIdentityCredentials(id)",
            "/graph/applications/{id}/federatedIdentityCredentials(id)",
        ],
        graph::upsert_fic,
    ),
    batch("POST graph $batch", &["/graph/$batch"], BatchKind::Graph),
    // Azure Resource Manager
    route("GET arm identity", &[UAMI], arm::identity),
    route("PUT arm identity", &[UAMI], arm::put_identity),
    route("DELETE arm identity", &[UAMI], arm::delete_identity),
    route("GET arm fics", &[UAMI_FICS], arm::fics),
    route("GET arm fic", &[UAMI_FIC], arm::fic),
    route("PUT arm fic", &[UAMI_FIC], arm::put_fic),
    route("DELETE arm fic", &[UAMI_FIC], arm::delete_fic),
    route(
        "GET arm role definitions",
        &["/arm/scope/providers/Microsoft.Authorization/roleDefinitions"],
        arm::role_definitions,
    ),
    route(
        "GET arm role assignments",
        &["/arm/scope/providers/Microsoft.Authorization/roleAssignments"],
        arm::role_assignments,
    ),
    route(
        "PUT arm role assignment",
        &["/arm/scope/providers/Microsoft.Authorization/roleAssignments/{id}"],
        arm::put_role_assignment,
    ),
    route(
        "DELETE arm role assignment",
        &["/arm/scope/providers/Microsoft.Authorization/roleAssignments/{id}"],
        arm::delete_role_assignment,
    ),
    // The token endpoint and the Global Discovery Service
    route("POST login token", &["/login/{*rest}"], handlers::token),
    route("GET discovery instances", &["/discovery/Instances"], handlers::instances),
];

impl Route {
    /// Every route the fake serves.
    pub fn all() -> impl Iterator<Item = Route> {
        TABLE.iter().map(|r| Route(r.name))
    }

    /// The route of a request: its method, its service and its path below the service's base (percent-decoded,
    /// without the query); `None` for a request no route serves.
    #[cfg(test)]
    pub(crate) fn of(method: &http::Method, service: &str, path: &str) -> Option<Route> {
        resolve(method, service, path).ok().map(|m| m.route)
    }
}

impl FromStr for Route {
    type Err = UnknownRoute;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if let Some(r) = TABLE.iter().find(|r| r.name == name) {
            return Ok(Route(r.name));
        }
        // The same method and service, sharing the longest prefix of the name: a hint, not a guess that is used.
        let prefix = |r: &str| name.chars().zip(r.chars()).take_while(|(a, b)| a == b).count();
        let closest = TABLE
            .iter()
            .map(|r| r.name)
            .filter(|r| r.split(' ').take(2).eq(name.split(' ').take(2)))
            .max_by_key(|r| (prefix(r), std::cmp::Reverse(r.len().abs_diff(name.len()))))
            .map(str::to_owned);
        Err(UnknownRoute { name: name.to_owned(), closest })
    }
}

/// What the table says of a request: its route, how it is served, and what the path held.
pub(super) struct Matched {
    pub(super) route: Route,
    pub(super) serve: Serve,
    /// Each OData key `(...)` of the path, in order, as written (`3c8e…`, `appId='…'`, `name='…'`).
    pub(super) keys: Vec<String>,
    /// The pattern's named segments (`{id}`, `{s}`, `{*rest}`, …).
    pub(super) params: Vec<(String, String)>,
}

/// Why no route serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Miss {
    /// No route has this path.
    Path,
    /// Routes have this path, none with this method.
    Method,
}

/// The route serving a request: its method, its service and its path below the service's base (percent-decoded;
/// the query is left out).
pub(super) fn resolve(method: &http::Method, service: &str, path: &str) -> Result<Matched, Miss> {
    let router = ROUTER.get_or_init(build_router);
    let (normalised, keys) = normalise(service, path);
    let found = router.at(&normalised).map_err(|_| Miss::Path)?;
    let def = found.value.iter().find(|r| r.name.split(' ').next() == Some(method.as_str())).ok_or(Miss::Method)?;
    Ok(Matched {
        route: Route(def.name),
        serve: def.serve,
        keys,
        params: found.params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
    })
}

/// The paths of every route, each with the routes (one per method) that serve it.
static ROUTER: std::sync::OnceLock<matchit::Router<Vec<&'static RouteDef>>> = std::sync::OnceLock::new();

fn build_router() -> matchit::Router<Vec<&'static RouteDef>> {
    let mut by_path: std::collections::BTreeMap<&'static str, Vec<&'static RouteDef>> =
        std::collections::BTreeMap::new();
    for r in TABLE {
        for path in r.paths {
            by_path.entry(path).or_default().push(r);
        }
    }
    let mut router = matchit::Router::new();
    for (path, routes) in by_path {
        // The table is constant and tested to build (every_path_of_the_table_routes_to_its_route): a conflict
        // there is a bug in the table, logged, not a panic.
        if let Err(e) = router.insert(path, routes) {
            tracing::error!(path, error = %e, "the fake's route table has a conflict");
        }
    }
    router
}

/// A request's path as the route patterns are written: `/{service}/{path}`, each OData key `(...)` as `(id)`, and
/// for ARM's role definitions and assignments the scope (any depth) as `scope`; with the keys taken out, in order.
fn normalise(service: &str, path: &str) -> (String, Vec<String>) {
    let path = path.split('?').next().unwrap_or(path).trim_start_matches('/');
    let path = match path.find("/providers/Microsoft.Authorization/") {
        Some(i) if service == "arm" => format!("scope{}", &path[i..]),
        _ => path.to_owned(),
    };
    let mut out = String::with_capacity(path.len() + service.len() + 2);
    out.push('/');
    out.push_str(service);
    out.push('/');
    let mut keys = Vec::new();
    let mut depth = 0usize;
    let mut quoted = false;
    for c in path.chars() {
        match c {
            '\'' if depth > 0 => {
                quoted = !quoted;
                push_key(&mut keys, c);
            }
            '(' if !quoted => {
                if depth == 0 {
                    out.push_str("(id)");
                    keys.push(String::new());
                } else {
                    push_key(&mut keys, c);
                }
                depth += 1;
            }
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                if depth > 0 {
                    push_key(&mut keys, c);
                }
            }
            _ if depth > 0 => push_key(&mut keys, c),
            // matchit reads braces as parameters: a literal one cannot be in a route.
            '{' | '}' => out.push('_'),
            _ => out.push(c),
        }
    }
    (out, keys)
}

fn push_key(keys: &mut [String], c: char) {
    if let Some(key) = keys.last_mut() {
        key.push(c);
    }
}

impl TryFrom<&str> for Route {
    type Error = UnknownRoute;

    fn try_from(name: &str) -> Result<Self, Self::Error> {
        name.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_listed_once_and_parses_to_itself() {
        let mut seen = std::collections::BTreeSet::new();
        for r in Route::all() {
            assert!(seen.insert(r.as_str()), "{r} twice");
            assert_eq!(r.as_str().parse::<Route>(), Ok(r));
            assert!(["dataverse", "graph", "arm", "login", "discovery"].contains(&r.service()), "{r}");
        }
    }

    #[test]
    fn every_path_of_the_table_routes_to_its_route() {
        for def in TABLE {
            let method: http::Method = def.name.split(' ').next().unwrap().parse().unwrap();
            for path in def.paths {
                let (service, rest) = path.trim_start_matches('/').split_once('/').unwrap();
                let sample = rest.replace("{*rest}", "x/y").replace(['{', '}'], "");
                assert_eq!(Route::of(&method, service, &sample).map(Route::as_str), Some(def.name), "{path}");
            }
        }
    }

    #[test]
    fn requests_as_the_clients_send_them_get_their_routes() {
        let of = |m: &str, service: &str, path: &str| {
            Route::of(&m.parse().unwrap(), service, path).map(Route::as_str).unwrap_or("none")
        };
        let org = "RetrieveCurrentOrganization(AccessType=Microsoft.Dynamics.CRM.EndpointAccessType'Default')";
        assert_eq!(of("GET", "dataverse", org), "GET dataverse RetrieveCurrentOrganization");
        let fic = "GetComponentManagedIdentityFIC(ComponentId=3c8e7a2b-0000-0000-0000-000000000001,ComponentName='pluginassembly')";
        assert_eq!(of("GET", "dataverse", fic), "GET dataverse GetComponentManagedIdentityFIC");
        let row = "managedidentities(3c8e7a2b-0000-0000-0000-000000000001)";
        assert_eq!(of("PATCH", "dataverse", row), "PATCH dataverse managedidentities(id)");
        let bytes = "pluginpackages(3c8e7a2b-0000-0000-0000-000000000001)/fileid/$value";
        assert_eq!(of("GET", "dataverse", bytes), "GET dataverse pluginpackages(id)");
        assert_eq!(
            of("GET", "dataverse", "managedidentities?$filter=applicationid eq 1"),
            "GET dataverse managedidentities"
        );
        // A parenthesis inside a quoted key is part of the key.
        let upsert = "applications(appId='0b5a7d2c')/federatedIdentityCredentials(name='a(b)c')";
        assert_eq!(of("PATCH", "graph", upsert), "PATCH graph fic upsert");
        let by_id = "applications/11111111/federatedIdentityCredentials/22222222";
        assert_eq!(of("DELETE", "graph", by_id), "DELETE graph fic");
        let uami = "subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id/federatedIdentityCredentials/f";
        assert_eq!(of("PUT", "arm", uami), "PUT arm fic");
        let assignment = "subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv/providers/Microsoft.Authorization/roleAssignments/9f2c";
        assert_eq!(of("PUT", "arm", assignment), "PUT arm role assignment");
        // Served paths with a method no route has, and paths nothing serves.
        assert_eq!(of("DELETE", "dataverse", "WhoAmI"), "none");
        assert_eq!(of("GET", "dataverse", "solutions"), "none");
    }

    #[test]
    fn a_match_carries_the_keys_and_segments_its_handler_reads() {
        let get = http::Method::GET;
        let m =
            resolve(&get, "graph", "applications(appId='0b5a')/federatedIdentityCredentials(name='a(b)c')").unwrap();
        assert_eq!(m.route.as_str(), "GET graph fic upsert");
        assert_eq!(m.keys, ["appId='0b5a'", "name='a(b)c'"]);
        let m = resolve(&get, "graph", "applications/11111111/federatedIdentityCredentials/f1").unwrap();
        assert_eq!(m.keys, Vec::<String>::new());
        assert_eq!(m.params, [("id".to_owned(), "11111111".to_owned()), ("f".to_owned(), "f1".to_owned())]);
        let fic = "GetComponentManagedIdentityFIC(ComponentId=3c8e,ComponentName='pluginassembly')";
        assert_eq!(resolve(&get, "dataverse", fic).unwrap().keys, ["ComponentId=3c8e,ComponentName='pluginassembly'"]);
        let m = resolve(&get, "dataverse", "pluginpackages(3c8e)/fileid/$value").unwrap();
        assert_eq!(
            (m.keys.as_slice(), m.params.as_slice()),
            (&["3c8e".to_owned()][..], &[("rest".to_owned(), "fileid/$value".to_owned())][..])
        );
        // A served path with another method, and a path nothing serves, are told apart (405 and 404).
        assert_eq!(resolve(&http::Method::DELETE, "dataverse", "WhoAmI").err(), Some(Miss::Method));
        assert_eq!(resolve(&get, "dataverse", "solutions").err(), Some(Miss::Path));
    }

    #[test]
    fn a_typo_is_an_error_naming_the_closest_route() {
        let err = "POST graph fic".parse::<Route>().unwrap_err();
        assert_eq!(err.to_string(), "'POST graph fic' is not a route of the fake (did you mean 'POST graph fics'?)");
        let err = "GET dataverse managedidentity".parse::<Route>().unwrap_err();
        assert_eq!(err.closest.as_deref(), Some("GET dataverse managedidentities"));
        assert_eq!("FETCH nothing".parse::<Route>().unwrap_err().closest, None);
    }
}
