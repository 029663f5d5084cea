//! The fake's state: environments and their rows, applications, user-assigned identities, role assignments, the
//! request log and the faults still to inject. Plain data, shared by the handlers and the platform's methods.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use uuid::Uuid;

use crate::cert::Certificate;
use crate::entities::ManagedIdentity;
use crate::environment::EnvironmentId;
use crate::fic::FederatedIdentityCredential;

use super::access;
use super::{FakeOptions, Fault};

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
    /// is all or nothing), whatever status it was answered first. Not counted by [`FakePlatform::writes`](super::FakePlatform::writes).
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

pub(crate) fn ids(rng: &mut fastrand::Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.u128(..).to_le_bytes()).into_uuid()
}
