//! The provisioning engine: from a spec ("this identity, these environments, these plug-ins, this
//! certificate") to every plug-in able to get a token, idempotently and verifiably.
//!
//! - [`Provisioner::plan`] reads the state with as few requests as possible (one FIC list per identity; per
//!   environment one organization lookup, one `managedidentities` query, one component query per kind) and
//!   lists the changes: create FIC, create or update the row, bind components, and (with `prune`) delete FICs
//!   this tool made that are no longer needed. It refuses before any write what cannot work.
//! - [`Provisioner::apply`] makes the changes, in dependency order per environment, environments in parallel.
//!   The row id and FIC names are deterministic, so a re-run, a run that stopped half-way, or two runs at once
//!   converge on the same state.
//! - [`Provisioner::verify`] checks every component against the platform's own subject and the identity's FICs.
//! - [`Provisioner::watch`] reads the plug-in trace log and explains the token failures it records.
//!
//! The engine depends only on the traits in [`api`]; the clients implement them, and so can a test double.
//! `docs/provisioning.md` describes the model; the `testkit` feature has a fake platform to run it against.
//!
//! Its files import `clients`, `diagnose` and the core, never `audit`, `testkit` or the CLI: the floors below it (`tests/architecture.rs` checks that no import runs up a
//! floor and that no files import each other in a circle).

pub mod api;
mod engine;
mod listing;
mod spec;
mod watch;
mod wiring;

pub use crate::clients::{DEFAULT_DATAVERSE_CONCURRENCY, Endpoints};
pub use engine::{
    Action, ActionError, ActionResult, ActionStatus, ApiPermissionPlan, AppUserPlan, ApplyOutcome, ApplyReport,
    AssemblyInPackage, CallCounts, CallId, ComponentReport, ComponentState, ComponentStatus, ComponentWarning,
    DestroyOptions, DestroyOutcome, DestroyPlan, DestroyReport, DestroyStep, EnvironmentPlan, EnvironmentSnapshot,
    GrantPlan, GrantReport, Kept, PLAN_FORMAT, Plan, PlanChange, PlanNote, PlannedSubject, PlatformSubject,
    PrincipalRetry, Progress, ProgressEvent, ProgressFn, ProvisionOptions, Provisioner, RegisteredSignature, RoleGrant,
    SigningCertificate, Snapshot, StoredPlanError, SubjectSource, SubjectUser, UpgradeOptions, UpgradeOutcome,
    UserEvidence, VerifyOptions, VerifyReport, application_user_id, decide, decide_at,
};
pub use listing::{EnvironmentListing, ListedEnvironment};
pub use spec::{
    ApiPermissionSpec, ApplicationUserSpec, CertificateSpec, CreateIdentitySpec, DiscoverSpec, EnvironmentSpec,
    GrantSpec, IdentitySpec, ProvisionSpec, RefusedCredential, SpecError,
};
pub use watch::{EnvironmentWatch, SinceError, TokenFailure, WatchOptions, WatchReport, parse_since};

use crate::cert::CertificateError;
use crate::clients::{ApiError, ComponentKind};
use crate::subject::SubjectError;

/// A component named in the spec that the environment does not have.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct MissingComponent {
    /// The environment.
    pub org_url: String,
    /// Assembly or package.
    pub kind: ComponentKind,
    /// The name or id given.
    pub name: String,
}

impl std::fmt::Display for MissingComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: no {} named '{}'", self.org_url, self.kind.logical_name(), self.name)
    }
}

/// A component whose registered bytes carry no signature the platform can use: its certificate cannot be
/// read from the platform.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct UnsignedComponent {
    /// The environment.
    pub org_url: String,
    /// Assembly or package.
    pub kind: ComponentKind,
    /// Its name.
    pub name: String,
    /// Why, in words (not signed, no bytes registered, a signature that cannot be read).
    pub reason: String,
}

impl std::fmt::Display for UnsignedComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: the registered {} '{}': {}", self.org_url, self.kind.logical_name(), self.name, self.reason)
    }
}

/// Why provisioning cannot proceed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// The spec cannot be read.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A call to a service failed.
    #[error("{}{source}", .org_url.as_deref().map(|o| format!("{o}: ")).unwrap_or_default())]
    Api {
        /// The environment, when the call was to one.
        org_url: Option<String>,
        /// The error.
        #[source]
        source: ApiError,
    },
    /// The identity would need more than 20 FICs.
    #[error(
        "the identity has {existing} FICs and the plan adds {new}: more than the 20 an app registration or user-assigned identity can hold. Split the environments over several identities, or prune FICs that are no longer needed; during a rotation (two FICs per environment), rotate a few environments at a time (`rotate --add NEW --environment URL ...`, `ProvisionSpec::adding_certificate_in`)"
    )]
    TooManyFics {
        /// FICs now.
        existing: usize,
        /// FICs the plan creates.
        new: usize,
        /// FICs the plan deletes (after the creates).
        removed: usize,
    },
    /// The organization reports another environment id than the spec says it has (a wrong URL, or a copied
    /// environment).
    #[error(
        "{org_url} is the environment {reported}, not {expected} as the spec says; check the org URL (a copied environment has a new id)"
    )]
    EnvironmentMismatch {
        /// The environment.
        org_url: String,
        /// The id the spec gives.
        expected: crate::environment::EnvironmentId,
        /// The id `RetrieveCurrentOrganization` reports.
        reported: crate::environment::EnvironmentId,
    },
    /// Components named in the spec do not exist: every one of them, in every environment.
    #[error(
        "{}; register them first, or fix the names in the spec",
        .missing.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    ComponentsNotFound {
        /// Each missing component.
        missing: Vec<MissingComponent>,
    },
    /// `certificate = "registered"` and a component whose registered bytes are not signed.
    #[error(
        "{}; sign it (`dataverse-mi sign` for an assembly, `nuget sign` for a package), register it again, then plan again",
        .components.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    UnsignedComponents {
        /// Each unsigned component.
        components: Vec<UnsignedComponent>,
    },
    /// The spec (or stored plan) names another identity or cloud than the one the engine was built for
    /// ([`Provisioner::for_identity`]): refused before any request. Use (or build) the engine of that identity.
    #[error(
        "this engine provisions {engine}, and the spec names {spec}: use the engine of that identity (Provisioner::for_identity)"
    )]
    OtherIdentity {
        /// The engine's identity and cloud.
        engine: String,
        /// The spec's.
        spec: String,
    },
    /// The identity lives in another tenant than the environments: the platform signs its assertion for the
    /// environment's tenant, so every token request would fail. Refused before any write.
    #[error(
        "{identity} is in tenant {identity_tenant}, but {} {} in tenant{} {}: the platform asks for tokens in the environment's tenant, so every token request would fail; use an identity of that tenant",
        .environments.iter().map(|(o, _)| o.as_str()).collect::<Vec<_>>().join(", "),
        if .environments.len() == 1 { "is" } else { "are" },
        if .environments.len() == 1 { "" } else { "s" },
        .environments.iter().map(|(_, t)| t.to_string()).collect::<Vec<_>>().join(", ")
    )]
    IdentityInOtherTenant {
        /// The identity.
        identity: String,
        /// Its tenant.
        identity_tenant: uuid::Uuid,
        /// Each environment of another tenant, with its tenant.
        environments: Vec<(String, uuid::Uuid)>,
    },
    /// A stored plan that a fresh plan of its spec does not match: the state it read changed since it was made,
    /// or the plan was edited. Plan again.
    #[error("the plan is stale, plan again: {}", .changes.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("; "))]
    StalePlan {
        /// Each change.
        changes: Vec<PlanChange>,
    },
    /// A stored plan that was applied already: a fresh plan of its spec has nothing left to do.
    #[error("the plan was already applied: nothing is left to do")]
    AlreadyApplied,
    /// A stored plan that cannot be read back.
    #[error(transparent)]
    StoredPlan(#[from] StoredPlanError),
    /// A plan creates FICs whose subjects neither the spec's certificates, nor a component's registered signature,
    /// nor the platform give (an edited plan): nothing is applied.
    #[error("the plan creates FICs the spec does not account for: {}", .actions.join("; "))]
    UnexplainedSubjects {
        /// Each such action, and its subject.
        actions: Vec<String>,
    },
    /// A FIC with the deterministic name exists with another subject.
    #[error("the FIC '{name}' exists with the subject {existing_subject}, not {wanted_subject}; delete or rename it")]
    FicConflict {
        /// The name.
        name: String,
        /// Its subject now.
        existing_subject: String,
        /// The subject wanted.
        wanted_subject: String,
    },
    /// The identity does not exist and the spec does not ask to create it.
    #[error(
        "{identity} does not exist; fix the spec, or let dataverse-mi create it (create = true for an app registration, create = {{ location = \"...\" }} for a user-assigned identity)"
    )]
    IdentityNotFound {
        /// The identity, described.
        identity: String,
    },
    /// A grant names a role that has no definition at its scope.
    #[error("no role named '{role}' at {scope}; check the role's name (e.g. \"Key Vault Secrets User\") and the scope")]
    RoleNotFound {
        /// The role's name.
        role: String,
        /// The scope.
        scope: String,
    },
    /// An application user's role has no row of that name in the environment's root business unit.
    #[error(
        "{org_url} has no security role named '{role}' in its root business unit; check the role's name (e.g. \"Basic User\")"
    )]
    SecurityRoleNotFound {
        /// The environment.
        org_url: String,
        /// The role's name.
        role: String,
    },
    /// The root business unit of an environment cannot be found (where an application user is made).
    #[error("{org_url} has no root business unit the signed-in identity can read")]
    NoRootBusinessUnit {
        /// The environment.
        org_url: String,
    },
    /// An API permission names an API whose service principal the tenant does not have.
    #[error("the tenant has no service principal for the API {api}; check its application id")]
    ApiNotFound {
        /// The API's application id.
        api: uuid::Uuid,
    },
    /// An API permission is not one of the API's application permissions.
    #[error("{api} has no application permission named '{permission}'{}", if *.delegated_only { format!(": '{permission}' is a delegated permission, which acts for a signed-in user; a plug-in's identity signs in as itself and can only be given application permissions") } else if .known.is_empty() { String::new() } else { format!(" (its application permissions include {})", .known.join(", ")) })]
    PermissionNotFound {
        /// The API, for people.
        api: String,
        /// The permission's name.
        permission: String,
        /// Whether the API has a delegated permission of that name (refused: not for an application).
        delegated_only: bool,
        /// Some of the API's application permissions, closest first.
        known: Vec<String>,
    },
    /// The spec has API permissions, and this engine has no Microsoft Graph client for them.
    #[error(
        "the spec has api_permissions, and this engine has no Microsoft Graph client for them (Provisioner::with_directory)"
    )]
    NoDirectoryClient,
    /// A certificate cannot be read.
    #[error("{}{source}", .org_url.as_deref().map(|o| format!("{o}: ")).unwrap_or_default())]
    Certificate {
        /// The environment.
        org_url: Option<String>,
        /// The error.
        #[source]
        source: CertificateError,
    },
    /// A subject cannot be built.
    #[error(transparent)]
    Subject(#[from] SubjectError),
    /// Another input problem.
    #[error("{message}")]
    Input {
        /// What is wrong.
        message: String,
    },
}

impl From<CertificateError> for ProvisionError {
    fn from(source: CertificateError) -> Self {
        ProvisionError::Certificate { org_url: None, source }
    }
}

impl ProvisionError {
    fn api(org_url: &str, source: ApiError) -> Self {
        ProvisionError::Api { org_url: Some(org_url.to_owned()), source }
    }

    pub(crate) fn identity(source: ApiError) -> Self {
        ProvisionError::Api { org_url: None, source }
    }

    fn in_environment(self, org_url: &str) -> Self {
        match self {
            ProvisionError::Certificate { org_url: None, source } => {
                ProvisionError::Certificate { org_url: Some(org_url.to_owned()), source }
            }
            other => other,
        }
    }
}
