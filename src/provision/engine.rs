//! Plan, apply, verify.

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
    /// The clients' request counters, to report requests and retries per apply.
    pub stats: Option<Arc<RequestStats>>,
    /// Retrying role assignments for a principal that has not replicated yet.
    pub principal_retry: PrincipalRetry,
}

impl fmt::Debug for ProvisionOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvisionOptions")
            .field("environment_concurrency", &self.environment_concurrency)
            .field("progress", &self.progress.is_some())
            .field("stats", &self.stats)
            .field("principal_retry", &self.principal_retry)
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
        }
    }
}

/// A component and its current binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ComponentState {
    /// Assembly or package.
    pub kind: ComponentKind,
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// The managed identity it is bound to now.
    pub bound_to: Option<Uuid>,
    /// For a plug-in package: the assemblies the spec named that belong to it. The platform takes an assembly's
    /// identity (and signature) from its package, so the package is what gets bound.
    pub named_assemblies: Vec<AssemblyInPackage>,
}

/// An assembly the spec named that belongs to a plug-in package (its `_packageid_value` is set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct AssemblyInPackage {
    /// The assembly's id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// The managed identity the assembly itself is bound to (binding only the assembly fails at token time).
    pub bound_to: Option<Uuid>,
}

impl ComponentState {
    fn assembly(a: crate::entities::PluginAssembly) -> Self {
        ComponentState {
            kind: ComponentKind::PluginAssembly,
            id: a.id,
            name: a.name.unwrap_or_else(|| a.id.to_string()),
            bound_to: a.managed_identity_id,
            named_assemblies: Vec::new(),
        }
    }

    fn package(p: crate::entities::PluginPackage) -> Self {
        ComponentState {
            kind: ComponentKind::PluginPackage,
            id: p.id,
            name: p.unique_name.or(p.name).unwrap_or_else(|| p.id.to_string()),
            bound_to: p.managed_identity_id,
            named_assemblies: Vec::new(),
        }
    }
}

/// The subject the platform itself presents for a component (`GetComponentManagedIdentityFIC`). Where it differs
/// from the one computed here, the platform's wins: plan proposes a FIC for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct PlatformSubject {
    /// The component's id.
    pub component: Uuid,
    /// Its name.
    pub name: String,
    /// The platform's subject.
    pub subject: String,
    /// What differs from the computed subject, segment by segment; `None` when they are the same.
    pub difference: Option<String>,
}

/// Something plan decided that a person should know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "note", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PlanNote {
    /// Assemblies the spec named belong to a plug-in package: the package is bound instead.
    AssemblyInPackage {
        /// The environment.
        org_url: String,
        /// The assemblies.
        assemblies: Vec<String>,
        /// The package.
        package: String,
    },
    /// The platform presents another subject than the computed one: its FIC is the one created.
    PlatformSubjectDiffers {
        /// The environment.
        org_url: String,
        /// The component.
        component: String,
        /// The platform's subject.
        platform: String,
        /// The computed subject.
        computed: String,
        /// What differs.
        difference: String,
    },
}

impl fmt::Display for PlanNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanNote::AssemblyInPackage { org_url, assemblies, package } => {
                write!(f, "{org_url}: assembly {} is in package {package}: binding the package", assemblies.join(", "))
            }
            PlanNote::PlatformSubjectDiffers { org_url, component, platform, computed, difference } => write!(
                f,
                "{org_url}: the platform presents another subject for {component} than the computed one ({difference}); using the platform's\n      platform: {platform}\n      computed: {computed}"
            ),
        }
    }
}

/// One environment as planned.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct EnvironmentPlan {
    /// The organization URL.
    pub org_url: String,
    /// The environment id (from `RetrieveCurrentOrganization`; `Default-{tenant}` for a Default environment).
    pub environment_id: EnvironmentId,
    /// The tenant id.
    pub tenant_id: Uuid,
    /// The subject computed here for its components (from the environment id, the tenant, the certificate and
    /// the version).
    pub subject: String,
    /// The FIC for the computed subject.
    pub fic: FederatedIdentityCredential,
    /// The subjects the platform itself presents (`GetComponentManagedIdentityFIC`), asked for the components
    /// already bound to this environment's row at the spec's version and tenant (the only ones whose answer this
    /// plan does not change).
    pub platform_subjects: Vec<PlatformSubject>,
    /// The FICs the environment needs: one per platform subject that differs, and the computed one unless the
    /// platform answered for every component.
    pub fics: Vec<FederatedIdentityCredential>,
    /// The managed identity row the components are bound to; `None` while the identity is still to be created
    /// (the row id derives from the identity's client id, which apply learns when it creates it).
    pub managed_identity_id: Option<Uuid>,
    /// The row as it is now, if it exists.
    pub existing_row: Option<ManagedIdentity>,
    /// The components.
    pub components: Vec<ComponentState>,
}

/// One change the plan makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Create the identity (a user-assigned identity, or an app registration and its service principal), or the
    /// service principal an existing app registration lacks. Runs before everything else.
    CreateIdentity {
        /// What is created.
        identity: String,
    },
    /// Assign a role to the identity's principal at a scope (after the identity exists).
    AssignRole {
        /// The role's name.
        role: String,
        /// The scope.
        scope: String,
        /// The role definition's id at the scope.
        role_definition_id: String,
    },
    /// Create a FIC on the identity.
    CreateFic {
        /// The environment it is for (index into the plan's environments).
        environment: usize,
        /// The FIC.
        fic: FederatedIdentityCredential,
    },
    /// Delete a FIC this tool made that the spec no longer needs (only with `prune`).
    DeleteFic {
        /// Its name.
        name: String,
        /// Its subject.
        subject: String,
    },
    /// Create the managed identity row.
    CreateManagedIdentity {
        /// The environment.
        environment: usize,
        /// The row; `None` while the identity is still to be created: apply makes it from the created identity
        /// (its client id, and the row id derived from it) and the plan's environment and version.
        row: Option<NewManagedIdentity>,
    },
    /// Update the row's version, application or tenant.
    UpdateManagedIdentity {
        /// The environment.
        environment: usize,
        /// The row.
        id: Uuid,
        /// The new values.
        update: ManagedIdentityUpdate,
    },
    /// Bind a component to the row.
    Bind {
        /// The environment.
        environment: usize,
        /// The component.
        component: ComponentState,
        /// The row; `None` while the identity is still to be created (apply binds to the row it derives).
        managed_identity: Option<Uuid>,
    },
}

impl Action {
    /// The environment the action belongs to, if any.
    pub fn environment(&self) -> Option<usize> {
        match self {
            Action::CreateFic { environment, .. }
            | Action::CreateManagedIdentity { environment, .. }
            | Action::UpdateManagedIdentity { environment, .. }
            | Action::Bind { environment, .. } => Some(*environment),
            Action::DeleteFic { .. } | Action::CreateIdentity { .. } | Action::AssignRole { .. } => None,
        }
    }

    /// Whether the action writes to Microsoft Graph or Azure Resource Manager (the identity, its FICs, its role
    /// assignments) rather than to Dataverse.
    pub fn is_identity_write(&self) -> bool {
        !matches!(
            self,
            Action::CreateManagedIdentity { .. } | Action::UpdateManagedIdentity { .. } | Action::Bind { .. }
        )
    }

    fn describe(&self, plan: &Plan) -> String {
        let env = |i: &usize| plan.environments.get(*i).map(|e| e.org_url.as_str()).unwrap_or("?");
        match self {
            Action::CreateIdentity { identity } => format!("create {identity}"),
            Action::AssignRole { role, scope, .. } => format!("assign '{role}' at {scope}"),
            Action::CreateFic { environment, fic } => format!("create FIC {} for {}", fic.name, env(environment)),
            Action::DeleteFic { name, .. } => format!("delete FIC {name}"),
            Action::CreateManagedIdentity { environment, row: None } => {
                format!("create managed identity (id from the new identity) in {}", env(environment))
            }
            Action::CreateManagedIdentity { environment, row: Some(row) } => {
                format!("create managed identity {} in {}", row.id, env(environment))
            }
            Action::UpdateManagedIdentity { environment, id, update } => {
                let mut changes = Vec::new();
                if let Some(v) = update.version {
                    changes.push(format!("version {v}"));
                }
                if let Some(a) = update.application_id {
                    changes.push(format!("application {a}"));
                }
                if let Some(t) = update.tenant_id {
                    changes.push(format!("tenant {t}"));
                }
                if let Some(n) = &update.name {
                    changes.push(format!("name '{n}'"));
                }
                format!("update managed identity {id} in {}: {}", env(environment), changes.join(", "))
            }
            Action::Bind { environment, component, .. } => {
                format!("bind {} {} in {}", component.kind.logical_name(), component.name, env(environment))
            }
        }
    }
}

/// What provisioning will do.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Plan {
    /// The identity, described.
    pub identity: String,
    /// The identity as found; `None` when it does not exist yet and the plan creates it.
    pub found: Option<IdentityInfo>,
    /// The subject format version.
    pub version: SubjectFormatVersion,
    /// The environments.
    pub environments: Vec<EnvironmentPlan>,
    /// The FICs on the identity now.
    pub existing_fics: Vec<FederatedIdentityCredential>,
    /// The role assignments the spec asks for, as found.
    pub grants: Vec<GrantPlan>,
    /// The changes, in no particular order (apply orders them by dependency).
    pub actions: Vec<Action>,
    /// What plan decided that a person should know (a package bound for its assemblies, the platform's subject
    /// used where it differs from the computed one).
    pub notes: Vec<PlanNote>,
    /// The spec the plan was made from, so that a stored plan can be checked and applied on its own
    /// ([`Provisioner::apply_if_current`]).
    pub spec: ProvisionSpec,
    /// Where the spec's relative certificate paths start (its `base_dir`, which the file format leaves out).
    pub spec_dir: std::path::PathBuf,
}

/// A role assignment as planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct GrantPlan {
    /// The role's name.
    pub role: String,
    /// The scope.
    pub scope: String,
    /// The role definition's id at the scope.
    pub role_definition_id: String,
    /// The id of an assignment that already gives the role at the scope (whatever its name).
    pub existing: Option<String>,
}

impl Plan {
    /// The spec the plan was made from, with its `base_dir` back.
    pub fn spec(&self) -> ProvisionSpec {
        ProvisionSpec { base_dir: self.spec_dir.clone(), ..self.spec.clone() }
    }

    /// What differs between the state this plan read and the state `later` read (a plan of the same spec made
    /// since), in words; empty when nothing this plan depends on changed.
    pub fn changes_since(&self, later: &Plan) -> Vec<String> {
        let mut out = Vec::new();
        if self.found != later.found {
            out.push(format!("the identity {} is not as it was", self.identity));
        }
        let fics = |p: &Plan| -> std::collections::BTreeSet<(String, String, String)> {
            p.existing_fics.iter().map(|f| (f.name.clone(), f.issuer.clone(), f.subject.clone())).collect()
        };
        let (before, after) = (fics(self), fics(later));
        for (name, _, _) in before.difference(&after) {
            out.push(format!("the FIC {name} was changed or removed"));
        }
        for (name, _, _) in after.difference(&before) {
            out.push(format!("the FIC {name} was added or changed"));
        }
        for g in &self.grants {
            let now = later.grants.iter().find(|n| n.role == g.role && n.scope == g.scope);
            if now.map(|n| n.existing.is_some()) != Some(g.existing.is_some()) {
                out.push(format!("the role assignment '{}' at {} changed", g.role, g.scope));
            }
        }
        for e in &self.environments {
            let Some(now) = later.environments.iter().find(|n| n.org_url == e.org_url) else {
                out.push(format!("{} is no longer planned", e.org_url));
                continue;
            };
            if (e.environment_id, e.tenant_id) != (now.environment_id, now.tenant_id) {
                out.push(format!("{} now reports another environment or tenant", e.org_url));
            }
            if e.existing_row != now.existing_row || e.managed_identity_id != now.managed_identity_id {
                out.push(format!("{}: the managed identity row changed", e.org_url));
            }
            let bindings = |p: &EnvironmentPlan| -> Vec<(Uuid, Option<Uuid>)> {
                p.components.iter().map(|c| (c.id, c.bound_to)).collect()
            };
            if bindings(e) != bindings(now) {
                out.push(format!("{}: the components or their bindings changed", e.org_url));
            }
            if e.platform_subjects != now.platform_subjects {
                out.push(format!("{}: the platform's subjects changed", e.org_url));
            }
        }
        out
    }

    /// The identity's client id (the rows' `applicationid`), when it exists.
    pub fn application_id(&self) -> Option<Uuid> {
        self.found.map(|f| f.client_id)
    }

    /// Whether nothing needs to change.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// How many FICs the identity will hold afterwards.
    pub fn fics_after(&self) -> usize {
        let created = self.actions.iter().filter(|a| matches!(a, Action::CreateFic { .. })).count();
        let deleted = self.actions.iter().filter(|a| matches!(a, Action::DeleteFic { .. })).count();
        (self.existing_fics.len() + created).saturating_sub(deleted)
    }

    /// The number of request round trips on the longest dependency chain of applying this plan (for the
    /// benchmark's lower bound): reads, then FIC and row writes, then binds.
    pub fn apply_chain_length(&self) -> usize {
        let identity = usize::from(self.actions.iter().any(|a| matches!(a, Action::CreateIdentity { .. })));
        let writes =
            usize::from(self.actions.iter().any(|a| !matches!(a, Action::Bind { .. } | Action::CreateIdentity { .. })));
        let binds = usize::from(self.actions.iter().any(|a| matches!(a, Action::Bind { .. })));
        identity + writes + binds
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.found {
            Some(found) => writeln!(
                f,
                "identity: {} (application id {}), subject version {}",
                self.identity, found.client_id, self.version
            )?,
            None => writeln!(f, "identity: {} (to be created), subject version {}", self.identity, self.version)?,
        }
        writeln!(
            f,
            "FICs: {} now, {} after (limit {MAX_FICS_PER_IDENTITY})",
            self.existing_fics.len(),
            self.fics_after()
        )?;
        writeln!(f, "{:<44} {:<44} {:>10} {:>7}", "environment", "environment id", "components", "changes")?;
        for (i, e) in self.environments.iter().enumerate() {
            let changes = self.actions.iter().filter(|a| a.environment() == Some(i)).count();
            writeln!(f, "{:<44} {:<44} {:>10} {:>7}", e.org_url, e.environment_id, e.components.len(), changes)?;
        }
        for g in &self.grants {
            let state = if g.existing.is_some() { "assigned" } else { "to assign" };
            writeln!(f, "grant '{}' at {}: {state}", g.role, g.scope)?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        if self.actions.is_empty() {
            write!(f, "nothing to do")
        } else {
            write!(f, "{} action(s):", self.actions.len())?;
            for a in &self.actions {
                write!(f, "\n  - {}", a.describe(self))?;
            }
            Ok(())
        }
    }
}

/// Why an action failed, as a program acts on it: the service and its answer (HTTP status, the service's error
/// code, whether it was throttled, the request id to quote to support), and the message for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ActionError {
    /// The message, as the error prints itself.
    pub message: String,
    /// The service the call was for (`dataverse`, `graph`, `arm`), when it reached for one.
    pub service: Option<String>,
    /// The HTTP status the service answered, when it answered.
    pub status: Option<u16>,
    /// The service's own error code (e.g. `0x80040237`, `PrincipalNotFound`).
    pub code: Option<String>,
    /// Whether the service throttled the call (429).
    pub throttled: bool,
    /// The request id the service gave (`x-ms-request-id`, `x-ms-service-request-id`, `request-id`).
    pub request_id: Option<String>,
}

impl From<&ApiError> for ActionError {
    fn from(e: &ApiError) -> Self {
        ActionError {
            message: e.to_string(),
            service: e.service().and_then(|s| serde_json::to_value(s).ok()).and_then(|v| v.as_str().map(str::to_owned)),
            status: e.status().map(|s| s.as_u16()),
            code: e.service_code().map(str::to_owned),
            throttled: e.is_throttled(),
            request_id: e.request_id().map(str::to_owned),
        }
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The outcome of one action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActionStatus {
    /// Done now.
    Done,
    /// Found already done (e.g. by a concurrent run, or a retried request whose first answer was lost).
    AlreadyDone,
    /// Failed.
    Failed {
        /// Why, typed.
        error: ActionError,
    },
    /// Not attempted because something it depends on failed.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// One action and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ActionResult {
    /// What it did.
    pub description: String,
    /// The outcome.
    pub status: ActionStatus,
}

/// What apply did. Check it: [`ApplyReport::is_success`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[must_use = "an apply can fail action by action: check is_success() or the actions"]
#[non_exhaustive]
pub struct ApplyReport {
    /// Each action.
    pub actions: Vec<ActionResult>,
    /// Requests sent while applying (when the options carry counters).
    pub requests: Option<u64>,
    /// Of which retries.
    pub retries: Option<u64>,
    /// Role assignments sent again because the new principal had not replicated yet (`PrincipalNotFound`).
    pub principal_retries: u32,
    /// The identity the rows and grants name, as found or created (its client id and principal id are what a
    /// person would otherwise copy from the portal); `None` when it could not be created.
    pub identity: Option<IdentityInfo>,
}

impl ApplyReport {
    /// Whether every action succeeded.
    pub fn is_success(&self) -> bool {
        self.actions.iter().all(|a| matches!(a.status, ActionStatus::Done | ActionStatus::AlreadyDone))
    }
}

impl fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.actions.is_empty() {
            write!(f, "nothing to do")?;
        }
        for (i, a) in self.actions.iter().enumerate() {
            let status = match &a.status {
                ActionStatus::Done => "done".to_owned(),
                ActionStatus::AlreadyDone => "already done".to_owned(),
                ActionStatus::Failed { error } => format!("FAILED: {error}"),
                ActionStatus::Skipped { reason } => format!("skipped: {reason}"),
            };
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{:<70} {status}", a.description)?;
        }
        if let (Some(requests), Some(retries)) = (self.requests, self.retries) {
            write!(f, "\n{requests} request(s), {retries} of them retries")?;
        }
        if self.principal_retries > 0 {
            write!(f, "\n{} role assignment(s) retried while the new principal replicated", self.principal_retries)?;
        }
        if let Some(identity) = &self.identity {
            write!(f, "\nidentity: client id {}", identity.client_id)?;
            if let Some(principal) = identity.principal_id {
                write!(f, ", principal id {principal}")?;
            }
            if let Some(tenant) = identity.tenant_id {
                write!(f, ", tenant {tenant}")?;
            }
        }
        Ok(())
    }
}

/// A plan and what applying it did (`None` when there was nothing to do, or it was not applied): what
/// `dataverse-mi apply --output json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ApplyOutcome {
    /// The plan.
    pub plan: Plan,
    /// The report.
    pub report: Option<ApplyReport>,
}

impl ApplyOutcome {
    /// A plan and its report.
    pub fn new(plan: Plan, report: Option<ApplyReport>) -> Self {
        ApplyOutcome { plan, report }
    }
}

/// The state of one component after verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ComponentStatus {
    /// Bound, the row's version right, and a FIC matches the subject the platform presents.
    Ok,
    /// No FIC on the identity has the subject.
    MissingFic {
        /// The subject that needs a FIC.
        subject: String,
    },
    /// The platform's subject differs from the one computed here, and no FIC has the platform's (apply creates it).
    SubjectMismatch {
        /// The platform's.
        server: String,
        /// Ours.
        local: String,
        /// What differs.
        difference: String,
    },
    /// An assembly inside a plug-in package is bound, and its package is not: the platform takes the identity from
    /// the package, so the token request fails. Fix: bind the package (apply does).
    AssemblyBoundNotPackage {
        /// The assembly.
        assembly: String,
        /// Its package.
        package: String,
    },
    /// The row's version is not the spec's.
    WrongVersion {
        /// The row's.
        found: Option<i32>,
        /// The spec's.
        expected: i32,
    },
    /// The component is not bound.
    NotBound,
    /// The environment has no managed identity row for the identity (apply creates it).
    MissingRow,
    /// The component is bound to another managed identity row.
    BoundToOther {
        /// That row.
        managed_identity: Uuid,
    },
}

/// One component's verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ComponentReport {
    /// The environment.
    pub org_url: String,
    /// The component.
    pub component: ComponentState,
    /// Whether the platform's own subject (`GetComponentManagedIdentityFIC`) could be compared.
    pub server_checked: bool,
    /// The subject computed here.
    pub computed_subject: String,
    /// The platform's subject, when it differs from the computed one (the platform's is the one that counts).
    pub platform_subject: Option<String>,
    /// The result: `Ok`, or the most important of `problems`.
    pub status: ComponentStatus,
    /// Every problem found, most important first (the binding, the row, the FIC); empty when all is well.
    pub problems: Vec<ComponentStatus>,
}

/// One role assignment's verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GrantReport {
    /// The role's name.
    pub role: String,
    /// The scope.
    pub scope: String,
    /// Whether an assignment gives the identity's principal the role at the scope.
    pub assigned: bool,
}

/// What verify found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The identity, described.
    pub identity: String,
    /// Whether it exists (with a service principal, for an app registration).
    pub identity_exists: bool,
    /// Each component.
    pub components: Vec<ComponentReport>,
    /// Each role assignment the spec asks for.
    pub grants: Vec<GrantReport>,
}

impl VerifyReport {
    /// Whether the identity exists and every component and grant is ok.
    pub fn is_ok(&self) -> bool {
        self.identity_exists
            && self.components.iter().all(|c| c.status == ComponentStatus::Ok)
            && self.grants.iter().all(|g| g.assigned)
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "identity: {} {}", self.identity, if self.identity_exists { "exists" } else { "DOES NOT EXIST" })?;
        for g in &self.grants {
            writeln!(f, "grant '{}' at {}: {}", g.role, g.scope, if g.assigned { "ok" } else { "MISSING" })?;
        }
        write!(f, "{:<40} {:<32} status", "environment", "component")?;
        for c in &self.components {
            let status = if c.problems.is_empty() {
                describe_status(&c.status)
            } else {
                c.problems.iter().map(describe_status).collect::<Vec<_>>().join("; ")
            };
            write!(f, "\n{:<40} {:<32} {status}", c.org_url, c.component.name)?;
            if let Some(platform) = &c.platform_subject {
                write!(f, "\n    platform's subject: {platform}\n    computed subject:   {}", c.computed_subject)?;
            }
        }
        Ok(())
    }
}

/// The engine: plan, apply, verify against any implementation of the service traits.
#[derive(Debug, Clone)]
pub struct Provisioner {
    identity: Arc<dyn IdentityApi>,
    connector: Arc<dyn DataverseConnector>,
    access: Option<Arc<dyn AccessApi>>,
    options: ProvisionOptions,
}

fn is_guid(s: &str) -> Option<Uuid> {
    crate::guid::parse_guid(s).ok()
}

impl Provisioner {
    /// An engine over an identity and a way to reach each environment.
    pub fn new(
        identity: Arc<dyn IdentityApi>,
        connector: Arc<dyn DataverseConnector>,
        options: ProvisionOptions,
    ) -> Self {
        Provisioner { identity, connector, access: None, options }
    }

    /// The same engine, able to plan, make and check the spec's role assignments (`grants`) through `access`
    /// (an [`ArmClient`](crate::clients::ArmClient)). Without it, a spec with grants is refused.
    pub fn with_access(mut self, access: Arc<dyn AccessApi>) -> Self {
        self.access = Some(access);
        self
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

    /// Reads the current state with as few requests as possible and plans the changes. Refuses, before any
    /// write, a plan that needs more than 20 FICs, names a component that does not exist, meets a FIC with the
    /// same name and another subject, names an identity that does not exist (unless the spec asks to create it)
    /// or that two applications share the display name of, or a role with no definition at its scope.
    pub async fn plan(&self, spec: &ProvisionSpec) -> Result<Plan, ProvisionError> {
        spec.validate()?;
        if !spec.grants.is_empty() && self.access.is_none() {
            return Err(ProvisionError::Input {
                message: "the spec has grants, and this engine has no ARM client for them (Provisioner::with_access)"
                    .into(),
            });
        }
        let cloud = CloudProfile::from(spec.cloud);
        let principal_needed = !spec.grants.is_empty();
        let (found, existing_fics) = self.read_identity(principal_needed).await?;
        let application_id = found.map(|f| f.client_id);
        // The futures are made before they are streamed: a stream over a borrowing closure makes the whole plan
        // future not `Send` (rustc's higher-ranked lifetime limitation), and services spawn it.
        let planned: Vec<_> = spec
            .environments
            .iter()
            .map(|env_spec| self.plan_environment(spec, env_spec, &cloud, application_id))
            .collect();
        let envs = async {
            let results = stream::iter(planned)
                .buffered(self.options.environment_concurrency.max(1))
                .collect::<Vec<Result<EnvironmentPlan, ProvisionError>>>()
                .await;
            // Every environment's missing components in one error; any other error as it is.
            let mut environments = Vec::new();
            let mut missing = Vec::new();
            for result in results {
                match result {
                    Ok(e) => environments.push(e),
                    Err(ProvisionError::ComponentsNotFound { missing: m }) => missing.extend(m),
                    Err(e) => return Err(e),
                }
            }
            if missing.is_empty() { Ok(environments) } else { Err(ProvisionError::ComponentsNotFound { missing }) }
        };
        let (environments, grants) = futures_util::try_join!(envs, self.plan_grants(spec, found))?;

        let mut actions = Vec::new();
        if found.is_none_or(|f| principal_needed && f.principal_id.is_none()) {
            let identity = match found {
                None => self.identity.describe(),
                Some(_) => format!("the service principal of {}", self.identity.describe()),
            };
            actions.push(Action::CreateIdentity { identity });
        }
        for g in grants.iter().filter(|g| g.existing.is_none()) {
            actions.push(Action::AssignRole {
                role: g.role.clone(),
                scope: g.scope.clone(),
                role_definition_id: g.role_definition_id.clone(),
            });
        }
        let wanted: HashSet<(&str, &str)> =
            environments.iter().flat_map(|e| &e.fics).map(|f| (f.issuer.as_str(), f.subject.as_str())).collect();
        for (i, env) in environments.iter().enumerate() {
            for fic in &env.fics {
                let matching = existing_fics
                    .iter()
                    .any(|f| f.issuer == fic.issuer && f.subject == fic.subject && f.audiences == fic.audiences);
                if matching {
                    continue;
                }
                if let Some(clash) = existing_fics.iter().find(|f| f.name == fic.name) {
                    return Err(ProvisionError::FicConflict {
                        name: clash.name.clone(),
                        existing_subject: clash.subject.clone(),
                        wanted_subject: fic.subject.clone(),
                    });
                }
                actions.push(Action::CreateFic { environment: i, fic: fic.clone() });
            }
        }
        if spec.prune {
            for f in &existing_fics {
                if f.name.starts_with("dataverse-") && !wanted.contains(&(f.issuer.as_str(), f.subject.as_str())) {
                    actions.push(Action::DeleteFic { name: f.name.clone(), subject: f.subject.clone() });
                }
            }
        }
        let creates = actions.iter().filter(|a| matches!(a, Action::CreateFic { .. })).count();
        let deletes = actions.iter().filter(|a| matches!(a, Action::DeleteFic { .. })).count();
        // Deletes run last, so the peak is existing + creates.
        if existing_fics.len() + creates > MAX_FICS_PER_IDENTITY {
            return Err(ProvisionError::TooManyFics { existing: existing_fics.len(), new: creates, removed: deletes });
        }
        for (i, env) in environments.iter().enumerate() {
            match &env.existing_row {
                None => actions.push(Action::CreateManagedIdentity {
                    environment: i,
                    row: application_id.zip(env.managed_identity_id).map(|(application_id, id)| NewManagedIdentity {
                        id,
                        ..NewManagedIdentity::for_plugins(
                            application_id,
                            env.tenant_id,
                            env.environment_id,
                            spec.version,
                        )
                    }),
                }),
                Some(row) => {
                    let update = ManagedIdentityUpdate {
                        version: (row.version != Some(spec.version.number())).then_some(spec.version),
                        tenant_id: (row.tenant_id != Some(env.tenant_id)).then_some(env.tenant_id),
                        application_id: application_id.filter(|a| row.application_id != Some(*a)),
                        name: None,
                    };
                    if update != ManagedIdentityUpdate::default() {
                        actions.push(Action::UpdateManagedIdentity { environment: i, id: row.id, update });
                    }
                }
            }
            for c in &env.components {
                if env.managed_identity_id.is_none() || c.bound_to != env.managed_identity_id {
                    actions.push(Action::Bind {
                        environment: i,
                        component: c.clone(),
                        managed_identity: env.managed_identity_id,
                    });
                }
            }
        }
        let notes = environments.iter().flat_map(plan_notes).collect();
        let plan = Plan {
            spec: spec.storable()?,
            spec_dir: spec.base_dir.clone(),
            identity: self.identity.describe(),
            found,
            version: spec.version,
            environments,
            existing_fics,
            grants,
            actions,
            notes,
        };
        self.emit(ProgressEvent::Planned { actions: plan.actions.len() });
        Ok(plan)
    }

    /// The identity and its FICs, read at once where the identity's id is known beforehand.
    async fn read_identity(
        &self,
        principal_needed: bool,
    ) -> Result<(Option<IdentityInfo>, Vec<FederatedIdentityCredential>), ProvisionError> {
        let (found, fics) = futures_util::join!(self.identity.lookup(principal_needed), self.identity.list_fics());
        let missing = || {
            if self.identity.may_create() {
                Ok((None, Vec::new()))
            } else {
                Err(ProvisionError::IdentityNotFound { identity: self.identity.describe() })
            }
        };
        let Some(found) = found.map_err(ProvisionError::identity)? else { return missing() };
        let fics = match fics {
            Ok(fics) => fics,
            // A lookup that read nothing (an app registration given by id) learns here that it is gone.
            Err(e) if e.is_not_found() => return missing(),
            // The identity's id was learned by the lookup (an app registration found by name): read again.
            Err(ApiError::InvalidInput { .. }) => self.identity.list_fics().await.map_err(ProvisionError::identity)?,
            Err(e) => return Err(ProvisionError::identity(e)),
        };
        Ok((Some(found), fics))
    }

    /// Each grant's role definition, and whether the identity's principal has it at the scope already.
    async fn plan_grants(
        &self,
        spec: &ProvisionSpec,
        found: Option<IdentityInfo>,
    ) -> Result<Vec<GrantPlan>, ProvisionError> {
        let Some(access) = self.access.as_deref() else { return Ok(Vec::new()) };
        let principal = found.and_then(|f| f.principal_id);
        let plans = spec.grants.iter().map(|g| async move {
            let (definition, assignments) = futures_util::join!(access.role_definition_id(&g.scope, &g.role), async {
                match principal {
                    Some(p) => access.role_assignments(&g.scope, p).await,
                    None => Ok(Vec::new()),
                }
            });
            let role_definition_id = definition
                .map_err(ProvisionError::identity)?
                .ok_or_else(|| ProvisionError::RoleNotFound { role: g.role.clone(), scope: g.scope.clone() })?;
            let existing = assignments
                .map_err(ProvisionError::identity)?
                .into_iter()
                .find(|a| a.grants(&g.scope, &role_definition_id))
                .map(|a| a.id);
            Ok(GrantPlan { role: g.role.clone(), scope: g.scope.clone(), role_definition_id, existing })
        });
        futures_util::future::try_join_all(plans).await
    }

    async fn plan_environment(
        &self,
        spec: &ProvisionSpec,
        env_spec: &super::spec::EnvironmentSpec,
        cloud: &CloudProfile,
        application_id: Option<Uuid>,
    ) -> Result<EnvironmentPlan, ProvisionError> {
        let org = env_spec.org_url.as_str();
        let dv = self.connector.connect(org).map_err(|e| ProvisionError::api(org, e))?;
        let binding = env_spec.certificate.binding(spec.version, &spec.base_dir).map_err(|e| e.in_environment(org))?;
        let detail = dv.retrieve_current_organization().await.map_err(|e| ProvisionError::api(org, e))?;
        let (Some(environment_id), Some(tenant_id)) = (detail.environment_id, detail.tenant_id) else {
            return Err(ProvisionError::Input {
                message: format!("{org} did not report its environment and tenant ids"),
            });
        };
        if let Some(expected) = env_spec.environment_id.filter(|e| *e != environment_id) {
            return Err(ProvisionError::EnvironmentMismatch {
                org_url: org.to_owned(),
                expected,
                reported: environment_id,
            });
        }
        let subject = SubjectIdentifier::new(cloud, tenant_id, environment_id, binding)?;
        let fic = FederatedIdentityCredential::for_subject(cloud, &subject);
        // An identity still to be created has no rows yet, and its rows' id is known once it exists.
        let deterministic = application_id.map(|a| managed_identity_row_id(a, tenant_id, environment_id));
        let rows = async {
            match application_id {
                Some(a) => dv
                    .list_managed_identities(&format!("applicationid eq {a}"))
                    .await
                    .map_err(|e| ProvisionError::api(org, e)),
                None => Ok(Vec::new()),
            }
        };
        let (rows, components) = futures_util::try_join!(rows, self.read_components(dv.as_ref(), env_spec))?;
        let existing_row = rows
            .iter()
            .find(|r| Some(r.id) == deterministic)
            .or_else(|| rows.iter().find(|r| r.tenant_id == Some(tenant_id)))
            .cloned();
        let managed_identity_id = existing_row.as_ref().map(|r| r.id).or(deterministic);
        // The platform's own answer, where it can give one that this plan does not change: the component bound to
        // the row the plan keeps, and the row at the spec's version and tenant.
        let row_settled = existing_row
            .as_ref()
            .is_some_and(|r| r.version == Some(spec.version.number()) && r.tenant_id == Some(tenant_id));
        let subject_text = subject.to_string();
        let asks: Vec<_> = components
            .iter()
            .filter(|c| row_settled && managed_identity_id.is_some() && c.bound_to == managed_identity_id)
            .map(|c| {
                let dv = dv.clone();
                async move { (c, dv.component_fic(c.kind, c.id).await) }
            })
            .collect();
        let answered = stream::iter(asks).buffered(8).collect::<Vec<_>>().await;
        let mut platform_subjects = Vec::new();
        for (c, answer) in answered {
            match answer {
                Ok(a) => platform_subjects.push(PlatformSubject {
                    component: c.id,
                    name: c.name.clone(),
                    difference: (a.fic_subject != subject_text).then(|| difference(&a.fic_subject, &subject_text)),
                    subject: a.fic_subject,
                }),
                // Not an answer to plan with: the computed subject stands for this component.
                Err(e) => tracing::debug!(org, component = %c.id, error = %e, "GetComponentManagedIdentityFIC failed"),
            }
        }
        // The computed subject's FIC, unless the platform answered otherwise for every component.
        let differing = platform_subjects.iter().filter(|p| p.difference.is_some()).count();
        let mut fics = Vec::new();
        if components.is_empty() || differing < components.len() {
            fics.push(fic.clone());
        }
        for p in platform_subjects.iter().filter(|p| p.difference.is_some()) {
            if !fics.iter().any(|f| f.subject == p.subject) {
                fics.push(FederatedIdentityCredential {
                    name: crate::fic::default_name(environment_id, &p.subject),
                    subject: p.subject.clone(),
                    ..fic.clone()
                });
            }
        }
        Ok(EnvironmentPlan {
            org_url: env_spec.org_url.clone(),
            environment_id,
            tenant_id,
            subject: subject_text,
            fic,
            platform_subjects,
            fics,
            managed_identity_id,
            existing_row,
            components,
        })
    }

    async fn read_components(
        &self,
        dv: &dyn DataverseApi,
        env_spec: &super::spec::EnvironmentSpec,
    ) -> Result<Vec<ComponentState>, ProvisionError> {
        let org = env_spec.org_url.as_str();
        let mut out = Vec::new();
        // Assemblies that belong to a plug-in package, by package: the package is what gets bound.
        let mut packaged: BTreeMap<Uuid, Vec<AssemblyInPackage>> = BTreeMap::new();
        // Every component the environment lacks, reported together.
        let mut missing = Vec::new();
        for (kind, wanted) in [
            (ComponentKind::PluginAssembly, &env_spec.plugin_assemblies),
            (ComponentKind::PluginPackage, &env_spec.plugin_packages),
        ] {
            let names: Vec<&str> = wanted.iter().map(String::as_str).filter(|w| is_guid(w).is_none()).collect();
            let mut found: BTreeMap<String, (ComponentState, Option<Uuid>)> = BTreeMap::new();
            for chunk in names.chunks(NAMES_PER_QUERY) {
                match kind {
                    ComponentKind::PluginPackage => {
                        for p in dv.find_plugin_packages(chunk).await.map_err(|e| ProvisionError::api(org, e))? {
                            let c = ComponentState::package(p);
                            found.insert(c.name.clone(), (c, None));
                        }
                    }
                    _ => {
                        for a in dv.find_plugin_assemblies(chunk).await.map_err(|e| ProvisionError::api(org, e))? {
                            let package = a.package_id;
                            let c = ComponentState::assembly(a);
                            found.insert(c.name.clone(), (c, package));
                        }
                    }
                }
            }
            for w in wanted {
                let read = match is_guid(w) {
                    Some(id) => {
                        let read = match kind {
                            ComponentKind::PluginPackage => {
                                dv.get_plugin_package(id).await.map(|p| (ComponentState::package(p), None))
                            }
                            _ => dv.get_plugin_assembly(id).await.map(|a| {
                                let package = a.package_id;
                                (ComponentState::assembly(a), package)
                            }),
                        };
                        match read {
                            Ok(c) => Some(c),
                            Err(e) if e.is_not_found() => None,
                            Err(e) => return Err(ProvisionError::api(org, e)),
                        }
                    }
                    None => found.get(w).cloned(),
                };
                match read {
                    Some((c, Some(package))) => packaged.entry(package).or_default().push(AssemblyInPackage {
                        id: c.id,
                        name: c.name,
                        bound_to: c.bound_to,
                    }),
                    Some((c, None)) => {
                        if !out.iter().any(|o: &ComponentState| o.id == c.id) {
                            out.push(c);
                        }
                    }
                    None => missing.push(super::MissingComponent { org_url: org.to_owned(), kind, name: w.clone() }),
                }
            }
        }
        if !missing.is_empty() {
            return Err(ProvisionError::ComponentsNotFound { missing });
        }
        for (package, assemblies) in packaged {
            let index = match out.iter().position(|c| c.id == package) {
                Some(i) => i,
                None => {
                    let p = dv.get_plugin_package(package).await.map_err(|e| ProvisionError::api(org, e))?;
                    out.push(ComponentState::package(p));
                    out.len() - 1
                }
            };
            out[index].named_assemblies.extend(assemblies);
        }
        Ok(out)
    }

    /// Applies a plan made earlier (stored, approved, read back) exactly as it is, after checking that the state
    /// it read is still so: it plans its spec again and refuses, before any write, with
    /// [`ProvisionError::StalePlan`] naming each change, when anything the plan depends on changed.
    pub async fn apply_if_current(&self, plan: &Plan) -> Result<ApplyReport, ProvisionError> {
        let now = self.plan(&plan.spec()).await?;
        let changes = plan.changes_since(&now);
        if !changes.is_empty() {
            return Err(ProvisionError::StalePlan { changes });
        }
        Ok(self.apply(plan).await)
    }

    /// Applies a plan: per environment the FIC and the row first, then the binds; environments in parallel;
    /// FIC deletions (prune) last. Idempotent: "already exists" is success after checking it matches.
    pub async fn apply(&self, plan: &Plan) -> ApplyReport {
        let before = self.options.stats.as_ref().map(|s| (s.requests(), s.retries()));
        let mut results: Vec<Option<ActionResult>> = vec![None; plan.actions.len()];
        // The identity first: everything else names it.
        let mut identity = plan.found;
        let mut identity_error = None;
        for (i, action) in plan.actions.iter().enumerate() {
            if matches!(action, Action::CreateIdentity { .. }) {
                let description = action.describe(plan);
                self.emit(ProgressEvent::Started { action: i, description: description.clone() });
                let outcome = self.identity.create().await;
                match &outcome {
                    Ok(created) => identity = Some(*created),
                    Err(e) => identity_error = Some(e.to_string()),
                }
                results[i] =
                    Some(ActionResult { description, status: self.finish(i, outcome.map(|_| ActionStatus::Done)) });
            }
        }
        let identity = match (identity, identity_error) {
            (Some(identity), None) => identity,
            (_, error) => {
                let reason = format!("the identity is not there: {}", error.unwrap_or_else(|| "not created".into()));
                skip_the_rest(plan, &mut results, &reason);
                return self.report(results, before, 0, None);
            }
        };
        // Each environment's actions, found once (not by scanning every action per environment).
        let mut by_env: Vec<Vec<usize>> = vec![Vec::new(); plan.environments.len()];
        for (i, a) in plan.actions.iter().enumerate() {
            if let Some(env) = a.environment().and_then(|e| by_env.get_mut(e)) {
                env.push(i);
            }
        }
        let by_env = &by_env;
        let principal_retries = std::sync::atomic::AtomicU32::new(0);
        let grants = plan.actions.iter().enumerate().filter(|(_, a)| matches!(a, Action::AssignRole { .. }));
        let grants = futures_util::future::join_all(grants.map(|(i, action)| {
            let retries = &principal_retries;
            async move {
                self.emit(ProgressEvent::Started { action: i, description: action.describe(plan) });
                let outcome = self.assign_role(action, identity, retries).await;
                (i, ActionResult { description: action.describe(plan), status: self.finish(i, outcome) })
            }
        }));
        let environments = async {
            let mut per_env = stream::iter(0..plan.environments.len())
                .map(|env| async move { (env, self.apply_environment(plan, env, &by_env[env], identity).await) })
                .buffer_unordered(self.options.environment_concurrency.max(1));
            let mut done = Vec::new();
            while let Some((env, env_results)) = per_env.next().await {
                done.extend(by_env[env].iter().copied().zip(env_results));
            }
            done
        };
        let (grants, environments) = futures_util::join!(grants, environments);
        for (i, r) in grants.into_iter().chain(environments) {
            results[i] = Some(r);
        }
        let all_ok =
            results.iter().flatten().all(|r| matches!(r.status, ActionStatus::Done | ActionStatus::AlreadyDone));
        for (i, action) in plan.actions.iter().enumerate() {
            if let Action::DeleteFic { name, .. } = action {
                let description = action.describe(plan);
                let status = if all_ok {
                    self.emit(ProgressEvent::Started { action: i, description: description.clone() });
                    self.finish(i, self.identity.delete_fic(name).await.map(|_| ActionStatus::Done))
                } else {
                    ActionStatus::Skipped { reason: "other actions failed; nothing is deleted then".into() }
                };
                results[i] = Some(ActionResult { description, status });
            }
        }
        // An action naming an environment the plan does not have (a plan edited by hand) is reported, not lost.
        skip_the_rest(plan, &mut results, "it names an environment the plan does not have");
        self.report(results, before, principal_retries.into_inner(), Some(identity))
    }

    fn report(
        &self,
        results: Vec<Option<ActionResult>>,
        before: Option<(u64, u64)>,
        principal_retries: u32,
        identity: Option<IdentityInfo>,
    ) -> ApplyReport {
        let after = self.options.stats.as_ref().map(|s| (s.requests(), s.retries()));
        let (requests, retries) = match (before, after) {
            (Some(b), Some(a)) => (Some(a.0.saturating_sub(b.0)), Some(a.1.saturating_sub(b.1))),
            _ => (None, None),
        };
        ApplyReport { actions: results.into_iter().flatten().collect(), requests, retries, principal_retries, identity }
    }

    /// Assigns a role under its deterministic name. `PrincipalNotFound` (a principal created moments ago that has
    /// not replicated yet) is retried with a doubling wait, within [`ProvisionOptions::principal_retry`]; a
    /// conflict is success once an assignment giving the role at the scope is found.
    async fn assign_role(
        &self,
        action: &Action,
        identity: IdentityInfo,
        principal_retries: &std::sync::atomic::AtomicU32,
    ) -> Result<ActionStatus, ApiError> {
        let Action::AssignRole { scope, role_definition_id, .. } = action else {
            return Ok(ActionStatus::Skipped { reason: "not a role assignment".into() });
        };
        let (Some(access), Some(principal)) = (self.access.as_deref(), identity.principal_id) else {
            return Err(ApiError::invalid("grant", "no ARM client, or no principal to assign the role to"));
        };
        let name = role_assignment_name(scope, role_definition_id, principal);
        let policy = self.options.principal_retry;
        let mut delay = policy.first_delay;
        let mut attempt = 1;
        loop {
            match access.create_role_assignment(scope, name, role_definition_id, principal).await {
                Ok(()) => return Ok(ActionStatus::Done),
                Err(e) if e.service_code() == Some("PrincipalNotFound") && attempt < policy.attempts.max(1) => {
                    principal_retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(
                        scope,
                        attempt,
                        ?delay,
                        "principal not replicated yet; retrying the role assignment"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(policy.max_delay);
                    attempt += 1;
                }
                Err(e) if e.is_conflict() => {
                    // RoleAssignmentExists: the same grant under another name (e.g. made in the portal), or ours
                    // from a concurrent run or a retried request. Success only if it really gives this role here.
                    let now = access.role_assignments(scope, principal).await?;
                    return if now.iter().any(|a| a.grants(scope, role_definition_id)) {
                        Ok(ActionStatus::AlreadyDone)
                    } else {
                        Err(e)
                    };
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn finish(&self, index: usize, outcome: Result<ActionStatus, ApiError>) -> ActionStatus {
        match outcome {
            Ok(status) => {
                self.emit(ProgressEvent::Done { action: index });
                status
            }
            Err(e) => {
                self.emit(ProgressEvent::Failed { action: index, error: e.to_string() });
                ActionStatus::Failed { error: ActionError::from(&e) }
            }
        }
    }

    async fn apply_environment(
        &self,
        plan: &Plan,
        env: usize,
        indexes: &[usize],
        identity: IdentityInfo,
    ) -> Vec<ActionResult> {
        let e = &plan.environments[env];
        // A plan made before the identity existed leaves the row id to now.
        let row_id = e
            .managed_identity_id
            .unwrap_or_else(|| managed_identity_row_id(identity.client_id, e.tenant_id, e.environment_id));
        let dv = match self.connector.connect(&e.org_url) {
            Ok(dv) => dv,
            Err(err) => {
                return indexes
                    .iter()
                    .map(|i| ActionResult {
                        description: plan.actions[*i].describe(plan),
                        status: ActionStatus::Failed { error: ActionError::from(&err) },
                    })
                    .collect();
            }
        };
        let run = |i: usize| {
            let dv = dv.clone();
            async move {
                let action = &plan.actions[i];
                self.emit(ProgressEvent::Started { action: i, description: action.describe(plan) });
                let outcome = match action {
                    Action::CreateFic { fic, .. } => self.create_fic(fic).await,
                    Action::CreateManagedIdentity { row: Some(row), .. } => create_row(dv.as_ref(), row).await,
                    Action::CreateManagedIdentity { row: None, .. } => {
                        let row = NewManagedIdentity {
                            id: row_id,
                            ..NewManagedIdentity::for_plugins(
                                identity.client_id,
                                e.tenant_id,
                                e.environment_id,
                                plan.version,
                            )
                        };
                        create_row(dv.as_ref(), &row).await
                    }
                    Action::UpdateManagedIdentity { id, update, .. } => {
                        dv.update_managed_identity(*id, update).await.map(|_| ActionStatus::Done)
                    }
                    Action::Bind { component, managed_identity, .. } => {
                        let target = managed_identity.unwrap_or(row_id);
                        dv.bind(component.kind, component.id, target).await.map(|_| ActionStatus::Done)
                    }
                    Action::DeleteFic { .. } | Action::CreateIdentity { .. } | Action::AssignRole { .. } => {
                        Ok(ActionStatus::Skipped { reason: "not an environment's action".into() })
                    }
                };
                ActionResult { description: action.describe(plan), status: self.finish(i, outcome) }
            }
        };
        let (first, binds): (Vec<usize>, Vec<usize>) =
            indexes.iter().partition(|i| !matches!(plan.actions[**i], Action::Bind { .. }));
        let mut out: BTreeMap<usize, ActionResult> = BTreeMap::new();
        for (i, r) in first.iter().copied().zip(futures_util::future::join_all(first.iter().map(|i| run(*i))).await) {
            out.insert(i, r);
        }
        let prerequisites_ok = out.values().all(|r| matches!(r.status, ActionStatus::Done | ActionStatus::AlreadyDone));
        if prerequisites_ok {
            for (i, r) in binds.iter().copied().zip(futures_util::future::join_all(binds.iter().map(|i| run(*i))).await)
            {
                out.insert(i, r);
            }
        } else {
            for i in binds {
                out.insert(
                    i,
                    ActionResult {
                        description: plan.actions[i].describe(plan),
                        status: ActionStatus::Skipped { reason: "the environment's FIC or row failed".into() },
                    },
                );
            }
        }
        out.into_values().collect()
    }

    async fn create_fic(&self, fic: &FederatedIdentityCredential) -> Result<ActionStatus, ApiError> {
        match self.identity.create_fic(fic).await {
            Ok(()) => Ok(ActionStatus::Done),
            Err(e) => {
                // A concurrent run, or a retry whose first attempt went through: read back and compare.
                let now = self.identity.list_fics().await?;
                if now.iter().any(|f| f.name == fic.name && f.subject == fic.subject && f.issuer == fic.issuer) {
                    Ok(ActionStatus::AlreadyDone)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Checks that the identity exists, that every grant is assigned, and every component: bound to the row,
    /// the row's version, and a FIC matching the subject the platform presents (`GetComponentManagedIdentityFIC`,
    /// where the platform offers it) and the one computed here.
    pub async fn verify(&self, spec: &ProvisionSpec) -> Result<VerifyReport, ProvisionError> {
        let plan = self.plan(spec).await?;
        let fics = &plan.existing_fics;
        let mut components = Vec::new();
        for e in &plan.environments {
            let has_fic = |subject: &str| {
                fics.iter().any(|f| f.subject == subject && f.issuer == e.fic.issuer && f.audiences == e.fic.audiences)
            };
            for c in &e.components {
                // The platform's answer was read by plan, for exactly the components it can answer for.
                let platform = e.platform_subjects.iter().find(|p| p.component == c.id);
                let bound_assembly = c.named_assemblies.iter().find(|a| a.bound_to.is_some());
                // Every problem, most important first: the binding, the row, the FIC.
                let mut problems = Vec::new();
                match c.bound_to {
                    None => problems.push(match bound_assembly {
                        Some(a) => ComponentStatus::AssemblyBoundNotPackage {
                            assembly: a.name.clone(),
                            package: c.name.clone(),
                        },
                        None => ComponentStatus::NotBound,
                    }),
                    Some(other) if Some(other) != e.managed_identity_id => {
                        problems.push(ComponentStatus::BoundToOther { managed_identity: other })
                    }
                    Some(_) => {}
                }
                match &e.existing_row {
                    None => problems.push(ComponentStatus::MissingRow),
                    Some(row) if row.version != Some(spec.version.number()) => problems
                        .push(ComponentStatus::WrongVersion { found: row.version, expected: spec.version.number() }),
                    Some(_) => {}
                }
                match platform.and_then(|p| Some((&p.subject, p.difference.as_ref()?))) {
                    Some((server, difference)) if !has_fic(server) => problems.push(ComponentStatus::SubjectMismatch {
                        server: server.clone(),
                        local: e.subject.clone(),
                        difference: difference.clone(),
                    }),
                    Some(_) => {}
                    None if !has_fic(&e.subject) => {
                        problems.push(ComponentStatus::MissingFic { subject: e.subject.clone() })
                    }
                    None => {}
                }
                let status = problems.first().cloned().unwrap_or(ComponentStatus::Ok);
                components.push(ComponentReport {
                    org_url: e.org_url.clone(),
                    component: c.clone(),
                    server_checked: platform.is_some(),
                    computed_subject: e.subject.clone(),
                    platform_subject: platform.filter(|p| p.difference.is_some()).map(|p| p.subject.clone()),
                    status,
                    problems,
                });
            }
        }
        Ok(VerifyReport {
            identity: plan.identity.clone(),
            identity_exists: plan.found.is_some_and(|f| spec.grants.is_empty() || f.principal_id.is_some()),
            components,
            grants: plan
                .grants
                .iter()
                .map(|g| GrantReport { role: g.role.clone(), scope: g.scope.clone(), assigned: g.existing.is_some() })
                .collect(),
        })
    }
}

/// A component's status in words.
fn describe_status(status: &ComponentStatus) -> String {
    match status {
        ComponentStatus::Ok => "ok".to_owned(),
        ComponentStatus::MissingFic { subject } => format!("missing FIC for {subject}"),
        ComponentStatus::SubjectMismatch { difference, .. } => {
            format!("subject mismatch ({difference}): no FIC has the platform's subject; apply creates it")
        }
        ComponentStatus::AssemblyBoundNotPackage { assembly, package } => format!(
            "assembly {assembly} is bound but its package {package} is not: the platform uses the package's identity; bind the package (apply does)"
        ),
        ComponentStatus::WrongVersion { found, expected } => match found {
            Some(found) => format!("row version {found}, expected {expected}"),
            None => format!("the row has no version (version 0, the deprecated preview), expected {expected}"),
        },
        ComponentStatus::NotBound => "not bound".to_owned(),
        ComponentStatus::MissingRow => "no managed identity row in the environment".to_owned(),
        ComponentStatus::BoundToOther { managed_identity } => format!("bound to another identity {managed_identity}"),
    }
}

/// The notes an environment's plan carries.
fn plan_notes(e: &EnvironmentPlan) -> Vec<PlanNote> {
    let packages =
        e.components.iter().filter(|c| !c.named_assemblies.is_empty()).map(|c| PlanNote::AssemblyInPackage {
            org_url: e.org_url.clone(),
            assemblies: c.named_assemblies.iter().map(|a| a.name.clone()).collect(),
            package: c.name.clone(),
        });
    let subjects = e.platform_subjects.iter().filter_map(|p| {
        Some(PlanNote::PlatformSubjectDiffers {
            org_url: e.org_url.clone(),
            component: p.name.clone(),
            platform: p.subject.clone(),
            computed: e.subject.clone(),
            difference: p.difference.clone()?,
        })
    });
    packages.chain(subjects).collect()
}

/// Marks every action that has no result yet as skipped, for `reason`.
fn skip_the_rest(plan: &Plan, results: &mut [Option<ActionResult>], reason: &str) {
    for (action, result) in plan.actions.iter().zip(results.iter_mut()) {
        if result.is_none() {
            *result = Some(ActionResult {
                description: action.describe(plan),
                status: ActionStatus::Skipped { reason: reason.to_owned() },
            });
        }
    }
}

/// Which segments of two subjects differ, each with both values and what the diagnosis analyzer makes of it:
/// `environment: platform 'x', computed 'y' (environment_not_canonical)`.
fn difference(server: &str, local: &str) -> String {
    let findings = crate::diagnose::analyze(server, local, &crate::diagnose::DiagnosisInputs::default());
    let show = |v: &Option<String>| v.as_deref().map(|s| format!("'{s}'")).unwrap_or_else(|| "nothing".into());
    let parts: Vec<String> = findings
        .iter()
        .map(|f| {
            let segment = f.segment.map(|s| s.name()).unwrap_or("subject");
            format!("{segment}: platform {}, computed {} ({})", show(&f.expected), show(&f.found), f.cause.id())
        })
        .collect();
    if parts.is_empty() { "formatting".to_owned() } else { parts.join("; ") }
}

async fn create_row(dv: &dyn DataverseApi, row: &NewManagedIdentity) -> Result<ActionStatus, ApiError> {
    match dv.create_managed_identity(row).await {
        Ok(()) => Ok(ActionStatus::Done),
        Err(e) if e.is_conflict() => {
            // Created by a concurrent run or by an earlier attempt of this one: check that it is ours.
            let existing = dv.get_managed_identity(row.id).await?;
            if existing.application_id == Some(row.application_id)
                && existing.tenant_id == Some(row.tenant_id)
                && existing.version == Some(row.version.number())
            {
                Ok(ActionStatus::AlreadyDone)
            } else {
                let update = ManagedIdentityUpdate {
                    version: Some(row.version),
                    application_id: Some(row.application_id),
                    tenant_id: Some(row.tenant_id),
                    name: None,
                };
                dv.update_managed_identity(row.id, &update).await.map(|_| ActionStatus::Done)
            }
        }
        Err(e) => Err(e),
    }
}
