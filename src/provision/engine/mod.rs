//! Plan, apply, verify: the engine. The types it reads and reports are in `reports`; what it does, in `plan`,
//! `apply` and `verify`.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use futures_util::{StreamExt as _, stream};
use serde::Serialize;
use uuid::Uuid;

use super::ProvisionError;
use super::api::{AccessApi, DataverseApi, DataverseConnector, IdentityApi, IdentityInfo};
use super::spec::ProvisionSpec;
use crate::clients::{ApiError, ComponentKind, ManagedIdentityUpdate, RequestStats, role_assignment_name};
use crate::cloud::CloudProfile;
use crate::entities::{ManagedIdentity, NewManagedIdentity, managed_identity_row_id};
use crate::environment::EnvironmentId;
use crate::fic::{FederatedIdentityCredential, MAX_FICS_PER_IDENTITY};
use crate::subject::{SubjectFormatVersion, SubjectIdentifier};

/// Names in one `$filter`: short enough to stay far below URL length limits.
const NAMES_PER_QUERY: usize = 25;

/// A progress event, for front ends that draw progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProgressEvent {
    /// The plan is ready.
    Planned {
        /// How many actions it has.
        actions: usize,
    },
    /// An action started.
    Started {
        /// Its index in the plan.
        action: usize,
        /// What it does.
        description: String,
    },
    /// An action finished.
    Done {
        /// Its index.
        action: usize,
    },
    /// An action failed.
    Failed {
        /// Its index.
        action: usize,
        /// Why.
        error: String,
    },
}

/// How long to keep retrying a role assignment whose principal was created moments ago: Entra replicates a new
/// service principal to ARM within minutes, and until then ARM answers `PrincipalNotFound`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrincipalRetry {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// The wait after the first `PrincipalNotFound`; doubled after each further one.
    pub first_delay: std::time::Duration,
    /// The longest single wait.
    pub max_delay: std::time::Duration,
}

impl Default for PrincipalRetry {
    /// 8 attempts, waiting 5 s, 10 s, 20 s, 40 s, then 60 s: at most about 4 minutes and 15 seconds.
    fn default() -> Self {
        PrincipalRetry {
            attempts: 8,
            first_delay: std::time::Duration::from_secs(5),
            max_delay: std::time::Duration::from_secs(60),
        }
    }
}

/// One call of the engine (a plan, an apply, a verify, a destroy...): named in each of its progress events and
/// in its report, so that the events and reports of calls running at once on a shared engine can be told apart.
/// Unique within the process; `CallId::default()` (0) is no call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CallId(u64);

impl CallId {
    fn next() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        CallId(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call {}", self.0)
    }
}

/// What one call of the engine sent, counted for that call alone: calls running at the same time on one engine
/// (or one platform) do not count each other's requests. The platform's own counters
/// ([`Platform::stats`](crate::clients::Platform::stats)) keep the totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct CallCounts {
    /// The call.
    pub call: CallId,
    /// Requests sent (each attempt, each batch once).
    pub requests: u64,
    /// Of which retries (an attempt sent again, or a batch's throttled items sent again).
    pub retries: u64,
    /// Requests sent inside batches.
    pub batched: u64,
}

/// A progress event, and the call it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Progress {
    /// The call.
    pub call: CallId,
    /// What happened.
    #[serde(flatten)]
    pub event: ProgressEvent,
}

/// A callback receiving progress events.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

tokio::task_local! {
    /// The engine call running on this task.
    static CALL: CallId;
}

/// How the engine runs.
#[derive(Clone)]
pub struct ProvisionOptions {
    /// Environments worked on at once (the clients' own limits bound requests per service).
    pub environment_concurrency: usize,
    /// Where progress events go (every event names its call). A shared engine's clone with another callback
    /// (`engine.clone().with_progress(f)`, cheap: the clients are shared) routes one caller's calls elsewhere.
    pub progress: Option<ProgressFn>,
    /// Retrying role assignments for a principal that has not replicated yet.
    pub principal_retry: PrincipalRetry,
    /// Batch requests (default `true`): per environment, plan's reads in one Dataverse `$batch` (and the
    /// platform's subjects and registered bytes in a second one when they are asked for), apply's row and binds
    /// in one change set (together or not at all), and the FIC creates on an app registration in Graph JSON
    /// batches of 20. A batch that fails as a whole falls back to single requests. `false` sends every request on
    /// its own (CLI: `--no-batch`).
    pub batch: bool,
    /// Plan asks the platform for the subject it presents for each component already bound to the row
    /// (`GetComponentManagedIdentityFIC`), and makes a FIC for it where it differs from ours (default `true`).
    /// It costs one more round trip per environment on a re-run; `false` saves it, and then only verify (which
    /// always asks) shows a platform that disagrees.
    pub platform_subjects: bool,
}

impl fmt::Debug for ProvisionOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvisionOptions")
            .field("environment_concurrency", &self.environment_concurrency)
            .field("progress", &self.progress.is_some())
            .field("principal_retry", &self.principal_retry)
            .field("batch", &self.batch)
            .field("platform_subjects", &self.platform_subjects)
            .finish()
    }
}

impl Default for ProvisionOptions {
    fn default() -> Self {
        ProvisionOptions {
            environment_concurrency: 32,
            progress: None,
            principal_retry: PrincipalRetry::default(),
            batch: true,
            platform_subjects: true,
        }
    }
}

mod access;
mod apply;
mod decide;
#[cfg(test)]
mod decide_props;
mod destroy;
mod evidence;
mod flows;
mod plan;
mod reports;
mod stored;
mod users;
mod verify;

pub use access::application_user_id;
pub use decide::{EnvironmentSnapshot, Snapshot, decide, decide_at};
pub use destroy::{DestroyOptions, DestroyPlan, DestroyReport, DestroyStep, Kept};
pub use flows::{DestroyOutcome, UpgradeOptions, UpgradeOutcome};
pub use reports::*;
pub use stored::{PLAN_FORMAT, PlanChange, StoredPlanError};

/// The engine: plan, apply, verify against any implementation of the service traits.
#[derive(Debug, Clone)]
pub struct Provisioner {
    identity: Arc<dyn IdentityApi>,
    connector: Arc<dyn DataverseConnector>,
    access: Option<Arc<dyn AccessApi>>,
    directory: Option<Arc<dyn super::api::DirectoryApi>>,
    discovery: Option<Arc<dyn super::api::DiscoveryApi>>,
    options: ProvisionOptions,
    /// The identity and cloud the engine was built for (by [`Provisioner::for_identity`]): a spec or plan naming
    /// another is refused before any request. `None` for an engine made from parts ([`Provisioner::new`]).
    bound: Option<(super::spec::IdentitySpec, crate::cloud::Cloud)>,
    /// The client stack, when the engine was built on one: clients a spec asks for (its discovery service) are
    /// made from it per call.
    platform: Option<Arc<crate::clients::Platform>>,
}

impl Provisioner {
    /// An engine over an identity and a way to reach each environment.
    pub fn new(
        identity: Arc<dyn IdentityApi>,
        connector: Arc<dyn DataverseConnector>,
        options: ProvisionOptions,
    ) -> Self {
        Provisioner {
            identity,
            connector,
            access: None,
            directory: None,
            discovery: None,
            options,
            bound: None,
            platform: None,
        }
    }

    /// The same engine, bound to `spec`'s identity and cloud (the only fields read): plan, verify, destroy and
    /// apply then refuse a spec or plan that names another, before any request.
    pub fn bound_to(self, spec: &ProvisionSpec) -> Self {
        self.bound_to_identity(&spec.identity, spec.cloud)
    }

    /// The same engine, bound to `identity` in `cloud`: a spec or plan naming another is refused before any
    /// request ([`ProvisionError::OtherIdentity`]). [`Provisioner::for_identity`] binds the engines it makes.
    pub fn bound_to_identity(mut self, identity: &super::spec::IdentitySpec, cloud: crate::cloud::Cloud) -> Self {
        self.bound = Some((identity.clone(), cloud));
        self
    }

    pub(crate) fn with_platform(mut self, platform: Arc<crate::clients::Platform>) -> Self {
        self.platform = Some(platform);
        self
    }

    /// Refuses a spec whose identity or cloud is not the one this engine was built for.
    fn check_identity(&self, spec: &ProvisionSpec) -> Result<(), ProvisionError> {
        let Some((identity, cloud)) = &self.bound else { return Ok(()) };
        if super::spec::same_identity(identity, &spec.identity) && *cloud == spec.cloud {
            return Ok(());
        }
        Err(ProvisionError::OtherIdentity {
            engine: format!("{} in the {cloud} cloud", super::spec::describe_identity(identity)),
            spec: format!("{} in the {} cloud", super::spec::describe_identity(&spec.identity), spec.cloud),
        })
    }

    /// The same engine, able to plan, make and check the spec's role assignments (`grants`) through `access`
    /// (an [`ArmClient`](crate::clients::ArmClient)). Without it, a spec with grants is refused.
    pub fn with_access(mut self, access: Arc<dyn AccessApi>) -> Self {
        self.access = Some(access);
        self
    }

    /// The same engine, able to give the spec's API permissions (`api_permissions`) through `directory` (a
    /// [`GraphClient`](crate::clients::GraphClient)).
    pub fn with_directory(mut self, directory: Arc<dyn super::api::DirectoryApi>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// The same engine, able to resolve a spec that discovers its environments (`discover`) through
    /// `discovery` (a [`GlobalDiscoveryClient`](crate::clients::GlobalDiscoveryClient)).
    pub fn with_discovery(mut self, discovery: Arc<dyn super::api::DiscoveryApi>) -> Self {
        self.discovery = Some(discovery);
        self
    }

    /// The environments a spec's `discover` selects, each checked for its components: the spec with
    /// `environments` filled (sorted by URL), and the organization URLs left out because none of the components it
    /// names is there. A spec that lists its environments comes back as it is.
    pub async fn resolve_with_skipped(
        &self,
        spec: &ProvisionSpec,
    ) -> Result<(ProvisionSpec, Vec<String>), ProvisionError> {
        let Some(selector) = spec.discover.as_ref().filter(|_| spec.environments.is_empty()) else {
            return Ok((spec.clone(), Vec::new()));
        };
        // The client the engine was given (`with_discovery`); else the discovery service the spec names (by default
        // its cloud's), on the engine's platform.
        let own: Option<Arc<dyn super::api::DiscoveryApi>> = match (&self.discovery, &self.platform) {
            (None, Some(platform)) => {
                let url = selector.service_url(spec.cloud).ok_or_else(|| ProvisionError::Input {
                    message: format!(
                        "the {} cloud has no documented discovery service: give discovery_url",
                        spec.cloud
                    ),
                })?;
                Some(Arc::new(platform.discovery(url).map_err(ProvisionError::identity)?))
            }
            _ => None,
        };
        let discovery = self.discovery.as_deref().or(own.as_deref()).ok_or_else(|| ProvisionError::Input {
            message: "the spec discovers its environments, and this engine has no discovery client (Provisioner::with_discovery)".into(),
        })?;
        let mut found: Vec<_> = discovery
            .environments()
            .await
            .map_err(ProvisionError::identity)?
            .into_iter()
            .filter(|e| selector.selects(e))
            .map(|e| selector.environment(&e))
            .collect();
        found.sort_by(|a, b| a.org_url.cmp(&b.org_url));
        found.dedup_by(|a, b| a.org_url.eq_ignore_ascii_case(&b.org_url));
        let checks: Vec<_> = found
            .iter()
            .map(|e| async move {
                let dv = self.connector.connect(&e.org_url).map_err(|err| ProvisionError::api(&e.org_url, err))?;
                match self.read_components(dv.as_ref(), e).await {
                    Ok(c) => Ok(!c.is_empty()),
                    Err(ProvisionError::ComponentsNotFound { .. }) => Ok(false),
                    Err(err) => Err(err),
                }
            })
            .collect();
        let has = stream::iter(checks)
            .buffered(self.options.environment_concurrency.max(1))
            .collect::<Vec<Result<bool, ProvisionError>>>()
            .await;
        let mut resolved = spec.clone();
        let mut skipped = Vec::new();
        for (e, has) in found.into_iter().zip(has) {
            if has? {
                resolved.environments.push(e);
            } else {
                skipped.push(e.org_url);
            }
        }
        if resolved.environments.is_empty() {
            return Err(ProvisionError::Input {
                message: format!(
                    "discovery found no environment matching {} that has the components the spec names{}",
                    selector.name.as_deref().unwrap_or("*"),
                    if skipped.is_empty() { String::new() } else { format!(" (looked in {})", skipped.join(", ")) }
                ),
            });
        }
        Ok((resolved, skipped))
    }

    /// [`resolve_with_skipped`](Self::resolve_with_skipped), the spec alone.
    pub async fn resolve(&self, spec: &ProvisionSpec) -> Result<ProvisionSpec, ProvisionError> {
        Ok(self.resolve_with_skipped(spec).await?.0)
    }

    pub(crate) fn identity(&self) -> &dyn IdentityApi {
        self.identity.as_ref()
    }

    pub(crate) fn connector(&self) -> &dyn DataverseConnector {
        self.connector.as_ref()
    }

    /// The same engine, reporting progress to `progress`.
    pub fn with_progress(mut self, progress: ProgressFn) -> Self {
        self.options.progress = Some(progress);
        self
    }

    fn emit(&self, event: ProgressEvent) {
        if let Some(p) = &self.options.progress {
            p(&Progress { call: CALL.try_with(|c| *c).unwrap_or_default(), event });
        }
    }

    /// Runs `work` as one call ([`in_call`](Self::in_call)) and writes the call's counts into its report: the one
    /// shape of every public entry point (plan, apply, verify, plan_destroy, destroy).
    async fn counted<T: Counted>(&self, work: impl std::future::Future<Output = T>) -> T {
        let (mut out, counts) = self.in_call(work).await;
        out.set_counts(counts);
        out
    }

    /// Runs `work` as one call: a new [`CallId`] for its progress events, and its own request counters (what the
    /// clients send while it runs, and nothing else).
    async fn in_call<T>(&self, work: impl std::future::Future<Output = T>) -> (T, CallCounts) {
        let call = CallId::next();
        let counters = Arc::new(RequestStats::default());
        let out = CALL.scope(call, RequestStats::counting(&counters, work)).await;
        let counts = CallCounts {
            call,
            requests: counters.requests(),
            retries: counters.retries(),
            batched: counters.batched(),
        };
        (out, counts)
    }
}

/// A report that carries what its call sent ([`CallCounts`]).
trait Counted {
    fn set_counts(&mut self, counts: CallCounts);
}

impl<T: Counted, E> Counted for Result<T, E> {
    fn set_counts(&mut self, counts: CallCounts) {
        if let Ok(report) = self {
            report.set_counts(counts);
        }
    }
}

macro_rules! counted {
    ($($report:ty),*) => {$(
        impl Counted for $report {
            fn set_counts(&mut self, counts: CallCounts) {
                self.counts = counts;
            }
        }
    )*};
}
counted!(Plan, ApplyReport, VerifyReport, DestroyPlan, DestroyReport);
