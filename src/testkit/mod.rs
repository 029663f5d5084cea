//! A stateful, in-process fake of the platform: the Dataverse Web API (the routes the clients use), Microsoft
//! Graph and Azure Resource Manager FIC endpoints, and a token endpoint. For this crate's tests, and for yours.
//!
//! Seed it with environments, plug-in assemblies and packages, app registrations and user-assigned identities;
//! point clients at it over loopback HTTP ([`FakePlatform::start`], on wiremock) or in-process
//! ([`FakePlatform::transport`], no sockets, where even dropped connections can be injected); then inspect the
//! rows, FICs, bindings and the request log. Faults (429 with `Retry-After`, 503, dropped connections, delays)
//! are injected at a seeded rate, so a chaos run is reproducible.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use dataverse_mi::testkit::{FakeOptions, FakePlatform};
//! use uuid::Uuid;
//!
//! let fake = FakePlatform::new(FakeOptions::default());
//! let tenant = Uuid::parse_str("72f988bf-86f1-41af-91ab-2d7cd011db47")?;
//! let env = fake.add_environment("contoso.crm.dynamics.com", tenant);
//! // A tenant's Default environment answers `Default-{tenant}`, as the platform does.
//! let default = fake.add_default_environment("org0.crm.dynamics.com", tenant);
//! assert_eq!(default.to_string(), "Default-72f988bf-86f1-41af-91ab-2d7cd011db47");
//! let server = fake.start().await;
//! let client = server.dataverse_client("contoso.crm.dynamics.com")?;
//! let org = client.retrieve_current_organization().await?;
//! assert_eq!(org.environment_id, Some(env));
//! assert_eq!(fake.count("GET dataverse RetrieveCurrentOrganization".parse()?), 1);
//! # Ok(()) }
//! ```

mod access;
pub mod batch;
mod handlers;
mod replay;
mod router;
mod routes;
mod seed;

pub use replay::{CapturedRequest, ReplayEvent, ReplayMismatch, ReplayTransport, response as replay_response};
pub use routes::{Route, UnknownRoute};
pub use seed::{
    SCENARIOS, Seed, SeedApplication, SeedAssembly, SeedEnvironment, SeedError, SeedPackage, SeedUserAssignedIdentity,
};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;
use uuid::Uuid;

use crate::auth::{Secret, StaticToken, TokenSource};
use crate::cert::Certificate;
use crate::clients::{ApiError, ArmClient, ClientOptions, DataverseClient, GraphClient, OrgUrl};
use crate::cloud::{Cloud, CloudProfile};
use crate::entities::ManagedIdentity;
use crate::environment::EnvironmentId;
use crate::fic::FederatedIdentityCredential;
use crate::http::{Transport, TransportError, TransportErrorKind};

/// Injected faults, decided per request by a seeded generator.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultOptions {
    /// The seed: the same seed and requests give the same faults.
    pub seed: u64,
    /// Share of requests answered 429 with `Retry-After: 1`.
    pub throttle: f64,
    /// Share of requests answered 503.
    pub unavailable: f64,
    /// Share of requests whose connection is dropped (in-process transport only; half of them after the request
    /// was processed, so a retry meets its own earlier effect).
    pub dropped: f64,
    /// Share of requests delayed by [`FaultOptions::delay`].
    pub delayed: f64,
    /// The delay of a delayed request.
    pub delay: Duration,
}

impl Default for FaultOptions {
    fn default() -> Self {
        FaultOptions {
            seed: 0,
            throttle: 0.0,
            unavailable: 0.0,
            dropped: 0.0,
            delayed: 0.0,
            delay: Duration::from_secs(2),
        }
    }
}

impl FaultOptions {
    /// `share` of all requests faulted, spread evenly over the four kinds.
    pub fn chaos(seed: u64, share: f64) -> Self {
        let each = share / 4.0;
        FaultOptions {
            seed,
            throttle: each,
            unavailable: each,
            dropped: each,
            delayed: each,
            delay: Duration::from_secs(2),
        }
    }
}

/// A fault aimed at particular requests: the next `count` requests on a [`Route`] (as [`LoggedRequest::route`]
/// names it, e.g. `POST graph fics`), optionally on one host, get this answer instead of the platform's. The route
/// is checked when it is named: a typo is an [`UnknownRoute`] there, not a fault that never fires.
///
/// ```
/// use std::time::Duration;
/// use dataverse_mi::testkit::Fault;
/// // The next two FIC creates answer 503; then one throttled read of the rows of one environment.
/// let unavailable = Fault::status("POST graph fics".parse()?, 503).times(2);
/// let throttled = Fault::status("GET dataverse managedidentities".parse()?, 429)
///     .on_host("contoso.crm.dynamics.com")
///     .retry_after(Duration::from_secs(3));
/// # Ok::<(), dataverse_mi::testkit::UnknownRoute>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Fault {
    /// The route.
    pub route: Route,
    /// Only requests for this host (lowercase), when set.
    pub host: Option<String>,
    /// How many matching requests it answers (1 by default).
    pub count: u32,
    /// The answer.
    pub kind: FaultKind,
}

/// What a [`Fault`] answers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FaultKind {
    /// This status, with an error body in the service's shape and, when set, `Retry-After`.
    Status {
        /// The status (403, 404, 409, 412, 429, 5xx, ...).
        status: u16,
        /// `Retry-After`, in whole seconds.
        retry_after: Option<Duration>,
    },
    /// The connection dropped before the request was processed (in-process transport only; over HTTP, a 503).
    Dropped,
    /// The platform's answer after this delay (on tokio's clock in-process).
    Slow(Duration),
    /// The platform's answer with its body cut in half (truncated JSON).
    Truncated,
}

impl Fault {
    /// The next request on `route` answers `status`.
    pub fn status(route: Route, status: u16) -> Self {
        Fault { route, host: None, count: 1, kind: FaultKind::Status { status, retry_after: None } }
    }

    /// The next request on `route` has its connection dropped.
    pub fn dropped(route: Route) -> Self {
        Fault { route, host: None, count: 1, kind: FaultKind::Dropped }
    }

    /// The next request on `route` is answered after `delay`.
    pub fn slow(route: Route, delay: Duration) -> Self {
        Fault { route, host: None, count: 1, kind: FaultKind::Slow(delay) }
    }

    /// The next request on `route` gets its answer with the body cut in half.
    pub fn truncated(route: Route) -> Self {
        Fault { route, host: None, count: 1, kind: FaultKind::Truncated }
    }

    /// Only for requests to `host`.
    pub fn on_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into().to_ascii_lowercase());
        self
    }

    /// For the next `count` matching requests.
    pub fn times(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    /// With `Retry-After` (a status fault).
    pub fn retry_after(mut self, wait: Duration) -> Self {
        if let FaultKind::Status { retry_after, .. } = &mut self.kind {
            *retry_after = Some(wait);
        }
        self
    }
}

/// How the fake behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeOptions {
    /// Faults to inject.
    pub faults: FaultOptions,
    /// A latency added to every request (on tokio's clock in the in-process transport).
    pub latency: Duration,
    /// Rows per page of Dataverse and Graph collections.
    pub page_size: usize,
    /// The cloud whose subject format `GetComponentManagedIdentityFIC` answers in.
    pub cloud: Cloud,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions { faults: FaultOptions::default(), latency: Duration::ZERO, page_size: 50, cloud: Cloud::Public }
    }
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LoggedRequest {
    /// `METHOD service route`, e.g. `POST dataverse managedidentities` (the route names are listed in
    /// `docs/testkit.md`).
    pub route: String,
    /// The host the request was for (the environment's, `graph.microsoft.com`, ...; the loopback server's when
    /// served over HTTP and the path does not name one).
    pub host: Option<String>,
    /// The method.
    pub method: String,
    /// The path and query.
    pub path_and_query: String,
    /// Whether a bearer token was sent (never its value).
    pub bearer: bool,
    /// The body, as text (empty when there was none).
    pub body: String,
    /// The status answered (0 for a dropped connection).
    pub status: u16,
    /// Whether the answer was an injected fault (inside a batch too).
    pub fault: bool,
    /// The headers an injected fault answered with (`Retry-After`), inside a batch as on its own.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fault_headers: Vec<(String, String)>,
    /// A write inside a change set that a later request of the set failed: the platform undid it (the change set
    /// is all or nothing), whatever status it was answered first. Not counted by [`FakePlatform::writes`].
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rolled_back: bool,
    /// Whether the request came inside a batch (a Dataverse `$batch` or Graph JSON batch, logged as a round trip
    /// of its own with the route `POST dataverse $batch` / `POST graph $batch`).
    pub in_batch: bool,
}

impl LoggedRequest {
    /// Whether the request changes state (any method but GET; a batch envelope is not one, its inner requests
    /// are), counted only when it was not a fault.
    pub fn is_write(&self) -> bool {
        !self.route.starts_with("GET ") && !self.is_batch()
    }

    /// Whether this is a batch envelope (a round trip carrying other requests).
    pub fn is_batch(&self) -> bool {
        self.route.ends_with(" $batch")
    }

    /// The service (`dataverse`, `graph`, `arm`, `discovery`, `login`), from the route.
    pub fn service(&self) -> &str {
        self.route.split(' ').nth(1).unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Component {
    pub(crate) name: String,
    pub(crate) binding: Option<Uuid>,
    pub(crate) certificate: Option<Certificate>,
    /// For an assembly: the plug-in package it belongs to.
    pub(crate) package: Option<Uuid>,
    /// What the platform presents for it, when a test says so (instead of computing it).
    pub(crate) presented: Option<String>,
    /// The registered bytes (`content`), when the test registered real ones.
    pub(crate) content: Option<Vec<u8>>,
}

/// How the fake's platform writes the subjects it presents, where the documentation leaves room. The default is
/// the crate's own computation; a test sets these to make the fake disagree with it, so that `verify` and `plan`
/// meet a platform that does not compute what we compute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Presentation {
    /// The text of the `/e/` segment (default: the environment id as `RetrieveCurrentOrganization` returns it).
    pub environment_segment: Option<String>,
}

impl Presentation {
    /// The platform writes `segment` in `/e/` (e.g. the tenant GUID alone for a Default environment).
    pub fn with_environment_segment(mut self, segment: impl Into<String>) -> Self {
        self.environment_segment = Some(segment.into());
        self
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Environment {
    pub(crate) trace_setting: i32,
    pub(crate) trace_logs: Vec<crate::entities::PluginTraceLog>,
    pub(crate) organization_id: Uuid,
    pub(crate) environment_id: EnvironmentId,
    pub(crate) tenant_id: Uuid,
    pub(crate) presentation: Presentation,
    pub(crate) managed_identities: BTreeMap<Uuid, ManagedIdentity>,
    pub(crate) assemblies: BTreeMap<Uuid, Component>,
    pub(crate) packages: BTreeMap<Uuid, Component>,
    /// The display name discovery lists (the URL name when `None`).
    pub(crate) friendly_name: Option<String>,
    /// Whether discovery lists it as disabled (`State` 1).
    pub(crate) disabled: bool,
    /// Business units, security roles and users.
    pub(crate) security: access::Security,
}

#[derive(Debug, Clone)]
pub(crate) struct App {
    pub(crate) object_id: Uuid,
    pub(crate) display_name: String,
    pub(crate) tags: Vec<String>,
    pub(crate) fics: Vec<(String, FederatedIdentityCredential)>,
}

#[derive(Debug, Clone)]
pub(crate) struct Uami {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) location: String,
    pub(crate) tags: serde_json::Value,
    pub(crate) client_id: Uuid,
    pub(crate) principal_id: Uuid,
    pub(crate) tenant_id: Uuid,
    pub(crate) fics: Vec<FederatedIdentityCredential>,
    /// Until when a FIC write to it is under way (it takes the fake's latency, on tokio's clock): another FIC
    /// write before then answers ARM's 409 for concurrent writes, as ARM does.
    pub(crate) fic_write_until: Option<tokio::time::Instant>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) environments: BTreeMap<String, Environment>,
    pub(crate) apps: BTreeMap<Uuid, App>,
    pub(crate) uamis: BTreeMap<String, Uami>,
    /// Service principals: application id to object id.
    pub(crate) service_principals: BTreeMap<Uuid, Uuid>,
    pub(crate) role_assignments: Vec<crate::clients::RoleAssignment>,
    /// APIs' service principals (Microsoft Graph's), by application id.
    pub(crate) resource_apis: BTreeMap<Uuid, access::ResourceApi>,
    /// App roles given to principals (application permissions).
    pub(crate) app_role_grants: Vec<access::AppRoleGrant>,
    /// When each FIC was made through the fake, by the identity's client id and the FIC's name (seeded FICs are
    /// old): ARM answers it as `systemData.createdAt`, and token requests fail with AADSTS70021 while it is younger
    /// than `fic_propagation`.
    pub(crate) fic_created: BTreeMap<(Uuid, String), SystemTime>,
    pub(crate) fic_propagation: Duration,
    /// Principals not replicated yet: how many more role assignments naming them answer `PrincipalNotFound`.
    pub(crate) unreplicated: BTreeMap<Uuid, u32>,
    pub(crate) replication_lag: u32,
    pub(crate) log: Vec<LoggedRequest>,
    pub(crate) faults: Vec<Fault>,
    pub(crate) rng: fastrand::Rng,
    pub(crate) options: FakeOptions,
}

/// The fake platform. Cheap to clone: clones share the state.
#[derive(Debug, Clone)]
pub struct FakePlatform {
    pub(crate) state: Arc<Mutex<State>>,
    /// How many requests have been received, for waiting on it ([`FakePlatform::requests_reached`]).
    received: Arc<tokio::sync::watch::Sender<usize>>,
}

pub(crate) fn ids(rng: &mut fastrand::Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.u128(..).to_le_bytes()).into_uuid()
}

impl FakePlatform {
    /// An empty platform.
    pub fn new(options: FakeOptions) -> Self {
        let rng = fastrand::Rng::with_seed(options.faults.seed ^ 0x5eed);
        FakePlatform {
            state: Arc::new(Mutex::new(State {
                environments: BTreeMap::new(),
                apps: BTreeMap::new(),
                uamis: BTreeMap::new(),
                service_principals: BTreeMap::new(),
                role_assignments: Vec::new(),
                resource_apis: BTreeMap::from([(crate::clients::MICROSOFT_GRAPH_APP_ID, access::microsoft_graph())]),
                app_role_grants: Vec::new(),
                fic_created: BTreeMap::new(),
                fic_propagation: Duration::ZERO,
                unreplicated: BTreeMap::new(),
                replication_lag: 0,
                log: Vec::new(),
                faults: Vec::new(),
                rng,
                options,
            })),
            received: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    /// Waits until the fake has received `n` requests in all (since the last [`clear_log`](Self::clear_log)):
    /// an event to act on, e.g. to stop a client half-way, without polling.
    pub async fn requests_reached(&self, n: usize) {
        let mut received = self.received.subscribe();
        // The sender lives as long as this platform, so the wait ends only when the count is reached.
        let _ = received.wait_for(|count| *count >= n).await;
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock (a test assertion) must not hide the state from the next look.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Aims a fault at particular requests (see [`Fault`]); faults are matched in the order given.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Changes the faults from now on (e.g. to seed cleanly and then turn chaos on).
    pub fn set_faults(&self, faults: FaultOptions) {
        let mut s = self.lock();
        s.rng = fastrand::Rng::with_seed(faults.seed ^ 0x5eed);
        s.options.faults = faults;
    }

    /// Adds an environment at `host` (e.g. `contoso.crm.dynamics.com`) in `tenant`; returns its environment id
    /// (a random GUID).
    pub fn add_environment(&self, host: &str, tenant: Uuid) -> EnvironmentId {
        let id = {
            let mut s = self.lock();
            EnvironmentId::Guid(ids(&mut s.rng))
        };
        self.add_environment_with_id(host, tenant, id)
    }

    /// Adds `tenant`'s Default environment at `host`: its `RetrieveCurrentOrganization` answers
    /// `"EnvironmentId": "Default-{tenant}"`, as the platform does.
    pub fn add_default_environment(&self, host: &str, tenant: Uuid) -> EnvironmentId {
        self.add_environment_with_id(host, tenant, EnvironmentId::Default { tenant })
    }

    /// Adds an environment with the given id.
    pub fn add_environment_with_id(&self, host: &str, tenant: Uuid, environment_id: EnvironmentId) -> EnvironmentId {
        let mut s = self.lock();
        let organization_id = ids(&mut s.rng);
        s.environments.insert(
            host.to_ascii_lowercase(),
            Environment {
                trace_setting: 0,
                trace_logs: Vec::new(),
                organization_id,
                environment_id,
                tenant_id: tenant,
                presentation: Presentation::default(),
                managed_identities: BTreeMap::new(),
                assemblies: BTreeMap::new(),
                packages: BTreeMap::new(),
                friendly_name: None,
                disabled: false,
                security: access::Security::for_organization(organization_id),
            },
        );
        environment_id
    }

    /// Runs a plug-in of `component` as the platform would: it asks for a token with the component's managed
    /// identity, and the fake answers as Entra would (the subject the platform presents against the identity's
    /// FICs). Writes a `plugintracelog` row as the environment's trace setting says (Off: none, Exception: only
    /// failures, All: every run). Returns whether the token request succeeded.
    pub fn run_plugin(&self, host: &str, component: Uuid, type_name: &str) -> bool {
        let mut s = self.lock();
        let cloud = CloudProfile::from(s.options.cloud);
        let presented = router::presented_subject(&s, &host.to_ascii_lowercase(), component, &cloud);
        let (ok, text) = match presented {
            Err(why) => (false, format!("Microsoft.Xrm.Sdk.InvalidPluginExecutionException: {why}")),
            Ok((subject, application_id, tenant)) => {
                let issuer = cloud.fic_issuer(tenant);
                let fics: Vec<FederatedIdentityCredential> = s
                    .apps
                    .get(&application_id)
                    .map(|a| a.fics.iter().map(|(_, f)| f.clone()).collect())
                    .or_else(|| s.uamis.values().find(|u| u.client_id == application_id).map(|u| u.fics.clone()))
                    .unwrap_or_default();
                let matched = fics
                    .iter()
                    .find(|f| f.subject == subject && f.issuer == issuer && f.audiences == [cloud.audience.clone()]);
                // A FIC younger than the propagation time is not known to every Entra instance yet.
                let propagating =
                    matched.and_then(|f| s.fic_created.get(&(application_id, f.name.clone()))).is_some_and(|made| {
                        SystemTime::now().duration_since(*made).unwrap_or_default() < s.fic_propagation
                    });
                if propagating {
                    let trace = ids(&mut s.rng);
                    let at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string().replace('T', " ");
                    (
                        false,
                        format!(
                            "Microsoft.Identity.Client.MsalServiceException: AADSTS70021: No matching federated identity record found for presented assertion. \
                             Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: '{}'. \
                             Trace ID: {trace} Correlation ID: {trace} Timestamp: {at}",
                            cloud.audience
                        ),
                    )
                } else if matched.is_some() {
                    (true, "Token acquired for https://vault.azure.net/.default".to_owned())
                } else {
                    let trace = ids(&mut s.rng);
                    (
                        false,
                        format!(
                            "Microsoft.Identity.Client.MsalServiceException: A configuration issue is preventing authentication - check the error message from the server for details. \
                         Original exception: AADSTS700213: No matching federated identity record found for presented assertion subject '{subject}'. \
                         Check your federated identity credential Subject, Audience and Issuer against the presented assertion. \
                         Trace ID: {trace} Correlation ID: {trace} Timestamp: 2026-11-22 10:00:00Z"
                        ),
                    )
                }
            }
        };
        let id = ids(&mut s.rng);
        let now = der::DateTime::from_system_time(SystemTime::now()).map(|d| d.to_string()).unwrap_or_default();
        if let Some(env) = s.environments.get_mut(&host.to_ascii_lowercase()) {
            let write = env.trace_setting == 2 || (env.trace_setting == 1 && !ok);
            if write {
                let (message, exception) =
                    if ok { (Some(text), None) } else { (Some("Requesting token...".to_owned()), Some(text)) };
                env.trace_logs.push(crate::entities::PluginTraceLog {
                    id,
                    type_name: Some(type_name.to_owned()),
                    message_block: message,
                    exception_details: exception,
                    created_on: Some(now),
                    correlation_id: Some(id),
                    extra: serde_json::Map::new(),
                });
            }
        }
        ok
    }

    /// How the Global Discovery Service lists an environment: its display name, and whether it is disabled.
    pub fn set_discovery(&self, host: &str, friendly_name: &str, disabled: bool) {
        if let Some(env) = self.lock().environments.get_mut(&host.to_ascii_lowercase()) {
            env.friendly_name = Some(friendly_name.to_owned());
            env.disabled = disabled;
        }
    }

    /// Sets an environment's plug-in trace log setting (0 Off, 1 Exception, 2 All).
    pub fn set_trace_setting(&self, host: &str, setting: i32) {
        if let Some(env) = self.lock().environments.get_mut(&host.to_ascii_lowercase()) {
            env.trace_setting = setting;
        }
    }

    /// The plug-in trace log rows of an environment.
    pub fn trace_logs(&self, host: &str) -> Vec<crate::entities::PluginTraceLog> {
        self.lock().environments.get(&host.to_ascii_lowercase()).map(|e| e.trace_logs.clone()).unwrap_or_default()
    }

    /// The organization id of an environment (a different GUID from its environment id).
    pub fn organization_id(&self, host: &str) -> Option<Uuid> {
        self.lock().environments.get(&host.to_ascii_lowercase()).map(|e| e.organization_id)
    }

    /// The environment id of the environment at `host`.
    pub fn environment_id(&self, host: &str) -> Option<EnvironmentId> {
        self.lock().environments.get(&host.to_ascii_lowercase()).map(|e| e.environment_id)
    }

    fn add_component(
        &self,
        host: &str,
        name: &str,
        certificate: Option<Certificate>,
        package: bool,
        in_package: Option<Uuid>,
    ) -> Uuid {
        let mut s = self.lock();
        let id = ids(&mut s.rng);
        if let Some(env) = s.environments.get_mut(&host.to_ascii_lowercase()) {
            let c = Component {
                name: name.to_owned(),
                binding: None,
                certificate,
                package: in_package,
                presented: None,
                content: None,
            };
            if package {
                env.packages.insert(id, c)
            } else {
                env.assemblies.insert(id, c)
            };
        }
        id
    }

    /// Adds a plug-in assembly that belongs to the plug-in package `package` (its `_packageid_value`). As on the
    /// platform, its token requests use the package's binding and the package's signature.
    pub fn add_packaged_assembly(&self, host: &str, package: Uuid, name: &str) -> Uuid {
        self.add_component(host, name, None, false, Some(package))
    }

    /// Makes the platform present exactly `subject` for a component (its `GetComponentManagedIdentityFIC` and its
    /// token requests), whatever the crate would compute; `None` goes back to computing it.
    pub fn set_presented_subject(&self, host: &str, component: Uuid, subject: Option<&str>) {
        if let Some(env) = self.lock().environments.get_mut(&host.to_ascii_lowercase()) {
            for c in [env.assemblies.get_mut(&component), env.packages.get_mut(&component)].into_iter().flatten() {
                c.presented = subject.map(str::to_owned);
            }
        }
    }

    /// Changes how the platform writes the subjects of an environment's components (see [`Presentation`]).
    pub fn set_presentation(&self, host: &str, presentation: Presentation) {
        if let Some(env) = self.lock().environments.get_mut(&host.to_ascii_lowercase()) {
            env.presentation = presentation;
        }
    }

    /// Adds a plug-in assembly signed with `certificate` (used to answer `GetComponentManagedIdentityFIC`).
    pub fn add_plugin_assembly(&self, host: &str, name: &str, certificate: Option<Certificate>) -> Uuid {
        self.add_component(host, name, certificate, false, None)
    }

    /// Adds a plug-in assembly registered with these bytes (a `.dll`), as the Plug-in Registration Tool or `pac
    /// plugin push` would: the platform keeps them (`content`) and takes the signer from their Authenticode
    /// signature (none when unsigned).
    pub fn add_registered_assembly(&self, host: &str, name: &str, dll: &[u8]) -> Uuid {
        let id = self.add_component(host, name, None, false, None);
        self.register_content(host, id, dll);
        id
    }

    /// Adds a plug-in package registered with these bytes (a `.nupkg`); the signer is its NuGet author signature.
    pub fn add_registered_package(&self, host: &str, unique_name: &str, nupkg: &[u8]) -> Uuid {
        let id = self.add_component(host, unique_name, None, true, None);
        self.register_content(host, id, nupkg);
        id
    }

    /// Registers new bytes for a component (after re-signing it): from now on the platform presents the subject
    /// of their signer, and `content` answers them.
    pub fn register_content(&self, host: &str, component: Uuid, bytes: &[u8]) {
        if let Some(env) = self.lock().environments.get_mut(&host.to_ascii_lowercase()) {
            let found = match env.assemblies.get_mut(&component) {
                Some(c) => Some((crate::clients::ComponentKind::PluginAssembly, c)),
                None => env.packages.get_mut(&component).map(|c| (crate::clients::ComponentKind::PluginPackage, c)),
            };
            if let Some((kind, c)) = found {
                c.certificate = kind.signer(bytes).ok().map(|l| l.certificate);
                c.content = Some(bytes.to_vec());
            }
        }
    }

    /// Adds a plug-in package (matched by unique name) signed with `certificate`.
    pub fn add_plugin_package(&self, host: &str, unique_name: &str, certificate: Option<Certificate>) -> Uuid {
        self.add_component(host, unique_name, certificate, true, None)
    }

    /// Adds an app registration and its service principal (as registering an app in the portal does); returns
    /// the application's object id.
    pub fn add_application(&self, app_id: Uuid, display_name: &str) -> Uuid {
        let object_id = self.add_application_without_service_principal(app_id, display_name);
        let mut s = self.lock();
        let principal = ids(&mut s.rng);
        s.service_principals.insert(app_id, principal);
        object_id
    }

    /// Adds an app registration with no service principal in the tenant (as creating it through Graph does);
    /// returns its object id.
    pub fn add_application_without_service_principal(&self, app_id: Uuid, display_name: &str) -> Uuid {
        let mut s = self.lock();
        let object_id = ids(&mut s.rng);
        s.apps.insert(
            app_id,
            App { object_id, display_name: display_name.to_owned(), tags: Vec::new(), fics: Vec::new() },
        );
        object_id
    }

    /// The application ids of the app registrations named `display_name`.
    pub fn applications_named(&self, display_name: &str) -> Vec<Uuid> {
        self.lock().apps.iter().filter(|(_, a)| a.display_name == display_name).map(|(id, _)| *id).collect()
    }

    /// The object id of an application's service principal.
    pub fn service_principal(&self, app_id: Uuid) -> Option<Uuid> {
        self.lock().service_principals.get(&app_id).copied()
    }

    /// A user-assigned identity's client id and principal id, if it exists.
    pub fn user_assigned_identity(&self, subscription: &str, resource_group: &str, name: &str) -> Option<(Uuid, Uuid)> {
        let key = router::uami_key(subscription, resource_group, name);
        self.lock().uamis.get(&key).map(|u| (u.client_id, u.principal_id))
    }

    /// Principals created from now on (service principals, user-assigned identities) answer
    /// `PrincipalNotFound` to their first `attempts` role assignments, as ARM does until Entra has replicated
    /// a new principal.
    pub fn set_principal_replication_lag(&self, attempts: u32) {
        self.lock().replication_lag = attempts;
    }

    /// Every role assignment.
    pub fn role_assignments(&self) -> Vec<crate::clients::RoleAssignment> {
        self.lock().role_assignments.clone()
    }

    /// Removes a role assignment by its ARM id (as the portal would); whether there was one.
    pub fn remove_role_assignment(&self, id: &str) -> bool {
        let mut s = self.lock();
        let before = s.role_assignments.len();
        s.role_assignments.retain(|a| !a.id.eq_ignore_ascii_case(id));
        s.role_assignments.len() != before
    }

    /// Adds a role assignment under a random name (as the portal makes them); returns its name, or `None`
    /// when the fake knows no role of that name.
    pub fn seed_role_assignment(&self, scope: &str, role_name: &str, principal_id: Uuid) -> Option<Uuid> {
        let definition = router::role_definition_id(scope, role_name)?;
        let mut s = self.lock();
        let name = ids(&mut s.rng);
        let scope = scope.trim_end_matches('/').to_owned();
        s.role_assignments.push(crate::clients::RoleAssignment {
            id: format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
            name: name.to_string(),
            role_definition_id: definition,
            principal_id,
            scope,
        });
        Some(name)
    }

    /// Adds a user-assigned managed identity; returns its client id and principal id.
    pub fn add_user_assigned_identity(
        &self,
        subscription: &str,
        resource_group: &str,
        name: &str,
        tenant: Uuid,
    ) -> (Uuid, Uuid) {
        let mut s = self.lock();
        let (client_id, principal_id) = (ids(&mut s.rng), ids(&mut s.rng));
        let id = format!(
            "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
        );
        s.uamis.insert(
            id.to_ascii_lowercase(),
            Uami {
                id,
                name: name.to_owned(),
                location: "westeurope".to_owned(),
                tags: serde_json::json!({}),
                client_id,
                principal_id,
                tenant_id: tenant,
                fics: Vec::new(),
                fic_write_until: None,
            },
        );
        (client_id, principal_id)
    }

    /// Puts a FIC on a user-assigned identity of the fake, as if it had been there before (no creation time).
    pub fn seed_uami_fic(
        &self,
        subscription: &str,
        resource_group: &str,
        name: &str,
        fic: FederatedIdentityCredential,
    ) {
        let key = router::uami_key(subscription, resource_group, name);
        if let Some(u) = self.lock().uamis.get_mut(&key) {
            u.fics.push(fic);
        }
    }

    /// The id of the plug-in assembly or package named `name` (a package's unique name) in the environment at
    /// `host`.
    pub fn component_named(&self, host: &str, name: &str) -> Option<Uuid> {
        let s = self.lock();
        let env = s.environments.get(&host.to_ascii_lowercase())?;
        env.assemblies.iter().chain(env.packages.iter()).find(|(_, c)| c.name == name).map(|(id, _)| *id)
    }

    /// The subject the platform presents for a component (what `GetComponentManagedIdentityFIC` answers), or why
    /// it presents none.
    pub fn presented_subject(&self, host: &str, component: Uuid) -> Result<String, String> {
        let s = self.lock();
        let cloud = CloudProfile::from(s.options.cloud);
        router::presented_subject(&s, &host.to_ascii_lowercase(), component, &cloud).map(|(subject, ..)| subject)
    }

    /// Adds a FIC directly (seeding an existing setup).
    pub fn seed_graph_fic(&self, app_id: Uuid, fic: FederatedIdentityCredential) {
        let mut s = self.lock();
        let id = ids(&mut s.rng).to_string();
        if let Some(app) = s.apps.get_mut(&app_id) {
            app.fics.push((id, fic));
        }
    }

    /// Removes an app registration's FIC by name (breaking a setup on purpose); returns whether it existed.
    pub fn remove_graph_fic(&self, app_id: Uuid, name: &str) -> bool {
        let mut s = self.lock();
        let Some(app) = s.apps.get_mut(&app_id) else { return false };
        let before = app.fics.len();
        app.fics.retain(|(_, f)| f.name != name);
        app.fics.len() != before
    }

    /// Adds a managed identity row directly (seeding an existing setup).
    pub fn seed_managed_identity(&self, host: &str, row: ManagedIdentity) {
        if let Some(env) = self.lock().environments.get_mut(&host.to_ascii_lowercase()) {
            env.managed_identities.insert(row.id, row);
        }
    }

    /// Binds a component directly (seeding an existing setup).
    pub fn seed_binding(&self, host: &str, component: Uuid, managed_identity: Option<Uuid>) {
        if let Some(env) = self.lock().environments.get_mut(&host.to_ascii_lowercase()) {
            for c in [env.assemblies.get_mut(&component), env.packages.get_mut(&component)].into_iter().flatten() {
                c.binding = managed_identity;
            }
        }
    }

    /// The managed identity rows of an environment.
    pub fn managed_identities(&self, host: &str) -> Vec<ManagedIdentity> {
        self.lock()
            .environments
            .get(&host.to_ascii_lowercase())
            .map(|e| e.managed_identities.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The managed identity a component is bound to.
    pub fn binding(&self, host: &str, component: Uuid) -> Option<Uuid> {
        let s = self.lock();
        let env = s.environments.get(&host.to_ascii_lowercase())?;
        env.assemblies.get(&component).or_else(|| env.packages.get(&component)).and_then(|c| c.binding)
    }

    /// The FICs of an app registration.
    pub fn graph_fics(&self, app_id: Uuid) -> Vec<FederatedIdentityCredential> {
        self.lock().apps.get(&app_id).map(|a| a.fics.iter().map(|(_, f)| f.clone()).collect()).unwrap_or_default()
    }

    /// The FICs of a user-assigned identity.
    pub fn uami_fics(&self, subscription: &str, resource_group: &str, name: &str) -> Vec<FederatedIdentityCredential> {
        let id = format!(
            "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
        );
        self.lock().uamis.get(&id.to_ascii_lowercase()).map(|u| u.fics.clone()).unwrap_or_default()
    }

    /// How long a FIC made through the fake takes to propagate: until then, a plug-in's token request with it
    /// fails with AADSTS70021 as Entra's does (by the system clock: FIC creation times are wall-clock times).
    pub fn set_fic_propagation(&self, propagation: Duration) {
        self.lock().fic_propagation = propagation;
    }

    /// Writes a trace log row in the environment at `host` whatever its trace setting: a plug-in of `type_name`
    /// that failed with `exception` (what a plug-in's own failure looks like, e.g. a call it made being refused).
    pub fn add_trace_log(&self, host: &str, type_name: &str, exception: &str) {
        let mut s = self.lock();
        let id = ids(&mut s.rng);
        let now = der::DateTime::from_system_time(SystemTime::now()).map(|d| d.to_string()).unwrap_or_default();
        if let Some(env) = s.environments.get_mut(&host.to_ascii_lowercase()) {
            env.trace_logs.push(crate::entities::PluginTraceLog {
                id,
                type_name: Some(type_name.to_owned()),
                message_block: None,
                exception_details: Some(exception.to_owned()),
                created_on: Some(now),
                correlation_id: Some(id),
                extra: serde_json::Map::new(),
            });
        }
    }

    /// The application user of `application_id` in the environment at `host`: its id and the names of its
    /// security roles (sorted).
    pub fn application_user(&self, host: &str, application_id: Uuid) -> Option<(Uuid, Vec<String>)> {
        let s = self.lock();
        let security = &s.environments.get(&host.to_ascii_lowercase())?.security;
        let (id, user) = security.application_user(application_id)?;
        let mut roles: Vec<String> =
            user.roles.iter().filter_map(|r| security.roles.get(r).map(|(name, _)| name.clone())).collect();
        roles.sort();
        Some((id, roles))
    }

    /// Makes `application_id` an application user of the environment at `host` in its root business unit with
    /// the root's roles named (as an administrator would in the admin center); returns the user's id.
    pub fn seed_application_user(&self, host: &str, application_id: Uuid, roles: &[&str]) -> Option<Uuid> {
        let mut s = self.lock();
        let env = s.environments.get_mut(&host.to_ascii_lowercase())?;
        let security = &mut env.security;
        let root = security.root_business_unit;
        let ids = security
            .roles
            .iter()
            .filter(|(_, (name, bu))| *bu == root && roles.iter().any(|r| r.eq_ignore_ascii_case(name)))
            .map(|(id, _)| *id)
            .collect();
        let id = Uuid::new_v5(&env.organization_id, application_id.as_bytes());
        security
            .users
            .insert(id, access::SystemUser { application_id: Some(application_id), business_unit: root, roles: ids });
        Some(id)
    }

    /// The names of the Microsoft Graph (or other API) application permissions given to `principal`, sorted.
    pub fn api_permissions(&self, principal: Uuid) -> Vec<String> {
        let s = self.lock();
        let mut out: Vec<String> = s
            .app_role_grants
            .iter()
            .filter(|g| g.principal == principal)
            .filter_map(|g| {
                let api = s.resource_apis.values().find(|r| r.object_id == g.resource)?;
                api.app_roles.iter().find(|(id, _)| *id == g.app_role).map(|(_, v)| (*v).to_owned())
            })
            .collect();
        out.sort();
        out
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.lock().log.clone()
    }

    /// Requests per route (`METHOD service route`).
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in &self.lock().log {
            *out.entry(r.route.clone()).or_default() += 1;
        }
        out
    }

    /// Requests on one route.
    pub fn count(&self, route: Route) -> usize {
        self.lock().log.iter().filter(|r| r.route == route.as_str()).count()
    }

    /// Round trips (HTTP requests on the wire: a batch counts once, its inner requests not at all), by service.
    pub fn round_trips(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in self.lock().log.iter().filter(|r| !r.in_batch) {
            *out.entry(r.service().to_owned()).or_default() += 1;
        }
        out
    }

    /// Requests that came inside batches, by service.
    pub fn batched_requests(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in self.lock().log.iter().filter(|r| r.in_batch) {
            *out.entry(r.service().to_owned()).or_default() += 1;
        }
        out
    }

    /// Writes that took effect (not faults).
    pub fn writes(&self) -> usize {
        self.lock().log.iter().filter(|r| r.is_write() && !r.fault && !r.rolled_back).count()
    }

    /// Forgets the request log.
    pub fn clear_log(&self) {
        self.lock().log.clear();
        self.received.send_replace(0);
    }

    /// An in-process transport to the fake: give it to clients in [`ClientOptions::transport`]. URLs are routed
    /// by host (`*.dynamics.com` and friends to the environment of that host, `graph.microsoft.com` to Graph,
    /// `management.azure.com` to ARM, `login.microsoftonline.com` to the token endpoint).
    pub fn transport(&self) -> Arc<dyn Transport> {
        Arc::new(FakeTransport { platform: self.clone() })
    }

    /// Serves the fake over loopback HTTP (wiremock). Dataverse environments are under `/dv/{host}/`, Graph
    /// under `/graph/`, ARM under `/arm/`, the token endpoint under `/login/`.
    pub async fn start(&self) -> FakeServer {
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::any())
            .respond_with(WiremockResponder { platform: self.clone() })
            .mount(&server)
            .await;
        FakeServer { server, platform: self.clone() }
    }

    /// Handles one request: the core both front ends share.
    pub(crate) fn handle(&self, request: &http::Request<Bytes>, host_hint: Option<&str>, path: &str) -> Handled {
        let handled = router::handle(self, request, host_hint, path);
        let count = self.lock().log.len();
        self.received.send_replace(count);
        handled
    }
}

/// The result of routing one request.
#[derive(Debug)]
pub(crate) enum Handled {
    Answer(http::Response<Bytes>, Duration),
    Drop { delay: Duration },
}

#[derive(Debug)]
struct FakeTransport {
    platform: FakePlatform,
}

#[async_trait::async_trait]
impl Transport for FakeTransport {
    async fn send(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
        let path = request.uri().path().to_owned();
        let host = request.uri().host().map(str::to_owned);
        match self.platform.handle(&request, host.as_deref(), &path) {
            Handled::Answer(response, delay) => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(response)
            }
            Handled::Drop { delay, .. } => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Err(TransportError::new(TransportErrorKind::Connection, "connection reset by peer (injected)"))
            }
        }
    }
}

struct WiremockResponder {
    platform: FakePlatform,
}

impl wiremock::Respond for WiremockResponder {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let mut builder = http::Request::builder().method(request.method.as_str()).uri(request.url.as_str());
        for (name, value) in request.headers.iter() {
            builder = builder.header(name.as_str(), value.as_bytes());
        }
        let Ok(req) = builder.body(Bytes::from(request.body.clone())) else {
            return wiremock::ResponseTemplate::new(400);
        };
        match self.platform.handle(&req, None, request.url.path()) {
            Handled::Answer(response, delay) => {
                // The answer's own media type: a `$batch` answer is `multipart/mixed` with its boundary (wiremock's
                // body type would otherwise win over a content-type header, and a client could not read the batch).
                let content_type = response
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/json");
                let mut t = wiremock::ResponseTemplate::new(response.status().as_u16())
                    .set_body_raw(response.body().to_vec(), content_type)
                    .set_delay(delay);
                for (name, value) in response.headers() {
                    if name == http::header::CONTENT_TYPE {
                        continue;
                    }
                    if let Ok(v) = value.to_str() {
                        t = t.insert_header(name.as_str(), v);
                    }
                }
                t
            }
            // wiremock cannot drop a connection: answer 503 instead (drops need the in-process transport).
            Handled::Drop { delay, .. } => wiremock::ResponseTemplate::new(503).set_delay(delay),
        }
    }
}

/// The fake served over loopback HTTP.
#[derive(Debug)]
pub struct FakeServer {
    server: wiremock::MockServer,
    platform: FakePlatform,
}

/// Everything the provisioning engine needs to run against the fake.
#[derive(Debug, Clone)]
pub struct FakeClients {
    /// The engine, ready to plan, apply and verify.
    pub provisioner: crate::provision::Provisioner,
    /// Requests and retries made by the engine's clients.
    pub stats: Arc<crate::clients::RequestStats>,
}

impl FakePlatform {
    /// An engine wired to this fake through the in-process transport: `concurrency` requests at most in flight
    /// per service (Dataverse shared by every environment, as the per-user limit is), with the given retry
    /// policy.
    pub fn provisioner(
        &self,
        spec: &crate::provision::ProvisionSpec,
        concurrency: usize,
        retry: crate::http::RetryOptions,
        options: crate::provision::ProvisionOptions,
    ) -> Result<FakeClients, crate::provision::ProvisionError> {
        let platform = self.client_platform(concurrency, retry).map_err(crate::provision::ProvisionError::identity)?;
        // The production constructor, with the fake's in-process transport (it routes by the real host names).
        let provisioner = crate::provision::Provisioner::for_spec(spec, &platform, options)?;
        Ok(FakeClients { provisioner, stats: platform.stats().clone() })
    }

    /// The client stack ([`Platform`](crate::clients::Platform)) on this fake's in-process transport, with a test
    /// token: `concurrency` requests at most in flight per service (Dataverse shared by every environment), with the
    /// given retry policy. The real host names are used: the transport routes by them.
    pub fn client_platform(
        &self,
        concurrency: usize,
        retry: crate::http::RetryOptions,
    ) -> Result<crate::clients::Platform, ApiError> {
        let client = ClientOptions {
            retry,
            max_concurrency: concurrency,
            transport: Some(self.transport()),
            shared_limit: Some(crate::clients::ConcurrencyLimit::new(concurrency)),
            ..ClientOptions::default()
        };
        crate::clients::Platform::new(test_token(), client)
    }
}

/// The fake's services served at `uri` (e.g. `http://127.0.0.1:PORT`, from [`FakeServer::uri`]): Graph under
/// `/graph/v1.0/`, ARM under `/arm/`, each environment under `/dv/{host}/` (the layout
/// [`EndpointsFile::fake_at`](crate::clients::EndpointsFile::fake_at) writes). For a process that knows only the
/// fake's address; a `uri` that is not a URL is an error, never the real services.
pub fn endpoints_at(uri: &str) -> Result<crate::provision::Endpoints, crate::clients::EndpointsFileError> {
    crate::clients::EndpointsFile::fake_at(uri).endpoints()
}

/// A token for tests: any value works against the fake.
pub fn test_token() -> Arc<dyn TokenSource> {
    Arc::new(StaticToken::new(Secret::new("fake-token"), SystemTime::now() + Duration::from_secs(24 * 3600)))
}

impl FakeServer {
    /// The server's base URI, e.g. `http://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The wiremock server underneath, for ad-hoc mocks: mount them `.with_priority(1)` so that they answer before
    /// the fake (which answers every request at wiremock's default priority).
    pub fn mock_server(&self) -> &wiremock::MockServer {
        &self.server
    }

    /// The platform behind it.
    pub fn platform(&self) -> &FakePlatform {
        &self.platform
    }

    /// Where this fake's services are, as the file `dataverse-mi fake` writes ([`EndpointsFile::fake_at`]
    /// this server's URI: the one place the loopback layout is written).
    ///
    /// [`EndpointsFile::fake_at`]: crate::clients::EndpointsFile::fake_at
    pub fn endpoints_file(&self) -> crate::clients::EndpointsFile {
        crate::clients::EndpointsFile::fake_at(&self.uri())
    }

    /// Client options pointing at this fake for an environment at `host`.
    pub fn dataverse_options(&self, host: &str) -> Result<ClientOptions, ApiError> {
        let template = self.endpoints_file().dataverse.unwrap_or_default();
        let base = template.replace("{host}", &host.to_ascii_lowercase());
        Ok(ClientOptions {
            base_url: Some(base.parse().map_err(|_| ApiError::invalid("host", host.to_owned()))?),
            ..ClientOptions::default()
        })
    }

    /// A Dataverse client for the environment at `host`, with a test token.
    pub fn dataverse_client(&self, host: &str) -> Result<DataverseClient, ApiError> {
        DataverseClient::new(OrgUrl::any_host(host)?, test_token(), self.dataverse_options(host)?)
    }

    /// Client options pointing at this fake's Graph.
    pub fn graph_options(&self) -> ClientOptions {
        let base = self.endpoints_file().graph.and_then(|g| g.parse().ok());
        ClientOptions { base_url: base, ..ClientOptions::default() }
    }

    /// A Graph client with a test token.
    pub fn graph_client(&self) -> Result<GraphClient, ApiError> {
        GraphClient::new(&CloudProfile::from(Cloud::Public), test_token(), self.graph_options())
    }

    /// Client options pointing at this fake's ARM.
    pub fn arm_options(&self) -> ClientOptions {
        let base = self.endpoints_file().arm.and_then(|a| a.parse().ok());
        ClientOptions { base_url: base, ..ClientOptions::default() }
    }

    /// An ARM client with a test token.
    pub fn arm_client(&self) -> Result<ArmClient, ApiError> {
        ArmClient::new(&CloudProfile::from(Cloud::Public), test_token(), self.arm_options())
    }

    /// Where the fake's services are ([`endpoints_at`] this server's URI), for
    /// [`Platform::with_endpoints`](crate::clients::Platform::with_endpoints).
    pub fn endpoints(&self) -> crate::provision::Endpoints {
        // The server's address is `http://IP:PORT`: its URLs are well formed by construction.
        endpoints_at(&self.uri()).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the fake's own address is not a URL");
            crate::provision::Endpoints::default()
        })
    }

    /// The client stack ([`Platform`](crate::clients::Platform)) reaching this fake over loopback HTTP, with a test
    /// token and the given options: the default transport, at [`FakeServer::endpoints`].
    pub fn client_platform(&self, options: ClientOptions) -> Result<crate::clients::Platform, ApiError> {
        Ok(crate::clients::Platform::new(test_token(), options)?.with_endpoints(self.endpoints()))
    }

    /// An engine wired to this fake over loopback HTTP, by the production constructor
    /// ([`Provisioner::for_spec`](crate::provision::Provisioner::for_spec)) on [`client_platform`](
    /// Self::client_platform) with the default options.
    pub fn provisioner(
        &self,
        spec: &crate::provision::ProvisionSpec,
        options: crate::provision::ProvisionOptions,
    ) -> Result<FakeClients, crate::provision::ProvisionError> {
        let platform =
            self.client_platform(ClientOptions::default()).map_err(crate::provision::ProvisionError::identity)?;
        let provisioner = crate::provision::Provisioner::for_spec(spec, &platform, options)?;
        Ok(FakeClients { provisioner, stats: platform.stats().clone() })
    }
}
