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

/// A callback receiving progress events.
pub type ProgressFn = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;

/// How the engine runs.
#[derive(Clone)]
pub struct ProvisionOptions {
    /// Environments worked on at once (the clients' own limits bound requests per service).
    pub environment_concurrency: usize,
    /// Where progress events go.
    pub progress: Option<ProgressFn>,
    /// The clients' request counters, to report requests and retries per apply. [`Provisioner::for_spec`] sets
    /// them to its platform's ([`Platform::stats`](crate::clients::Platform::stats)), the counters its clients add
    /// to; set them yourself only for an engine made with [`Provisioner::new`].
    pub stats: Option<Arc<RequestStats>>,
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
            .field("stats", &self.stats)
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
            stats: None,
            principal_retry: PrincipalRetry::default(),
            batch: true,
            platform_subjects: true,
        }
    }
}

mod apply;
mod destroy;
mod plan;
mod reports;
mod users;
mod verify;

pub use destroy::{DestroyOptions, DestroyPlan, DestroyReport, DestroyStep, Kept};
pub use reports::*;

/// The engine: plan, apply, verify against any implementation of the service traits.
#[derive(Debug, Clone)]
pub struct Provisioner {
    identity: Arc<dyn IdentityApi>,
    connector: Arc<dyn DataverseConnector>,
    access: Option<Arc<dyn AccessApi>>,
    discovery: Option<Arc<dyn super::api::DiscoveryApi>>,
    options: ProvisionOptions,
    /// The identity and cloud the engine was built for (by [`Provisioner::for_spec`]): a spec or plan naming
    /// another is refused before any request. `None` for an engine made from parts ([`Provisioner::new`]).
    bound: Option<(super::spec::IdentitySpec, crate::cloud::Cloud)>,
}

impl Provisioner {
    /// An engine over an identity and a way to reach each environment.
    pub fn new(
        identity: Arc<dyn IdentityApi>,
        connector: Arc<dyn DataverseConnector>,
        options: ProvisionOptions,
    ) -> Self {
        Provisioner { identity, connector, access: None, discovery: None, options, bound: None }
    }

    /// The same engine, bound to `spec`'s identity and cloud: plan, verify, destroy and apply then refuse a spec
    /// or plan that names another, before any request. [`Provisioner::for_spec`] binds the engines it makes.
    pub fn bound_to(mut self, spec: &ProvisionSpec) -> Self {
        self.bound = Some((spec.identity.clone(), spec.cloud));
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
        let discovery = self.discovery.as_deref().ok_or_else(|| ProvisionError::Input {
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
            p(&event);
        }
    }
}
