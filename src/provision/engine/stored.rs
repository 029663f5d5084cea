//! Stored plans: written with a format version and a digest, read back checked, and applied only when a fresh
//! plan of their spec against the state now would do exactly what they say.

use sha2::Digest as _;

use super::*;

/// The version of the stored plan format [`Plan::to_stored`] writes and [`Plan::from_stored`] reads.
pub const PLAN_FORMAT: u32 = 1;

/// A stored plan: its format, a digest of the plan, the plan.
#[derive(Serialize, serde::Deserialize)]
struct Stored<P> {
    format: u32,
    digest: String,
    plan: P,
}

/// Why a stored plan cannot be read back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoredPlanError {
    /// Not JSON, or not a stored plan's shape.
    #[error("not a stored plan: {0}")]
    Json(#[from] serde_json::Error),
    /// Written by a version of dataverse-mi with another plan format.
    #[error("the plan is in format {found}, and this dataverse-mi reads format {supported}: plan again")]
    Format {
        /// The plan's format.
        found: u32,
        /// The format read here ([`PLAN_FORMAT`]).
        supported: u32,
    },
    /// The plan is not what was written: its content no longer matches the digest written with it (edited by hand,
    /// or by a tool that does not know the format).
    #[error("the plan was changed after it was written (its digest is {stored}, its content's {computed}): plan again")]
    Digest {
        /// The digest written with the plan.
        stored: String,
        /// The digest of the content read.
        computed: String,
    },
}

/// The digest of a plan: SHA-256 over its JSON with sorted keys, as `sha256:` and lowercase hex.
fn digest_of(plan: &serde_json::Value) -> Result<String, serde_json::Error> {
    let bytes = serde_json::to_vec(plan)?;
    let hash = sha2::Sha256::digest(&bytes);
    Ok(format!("sha256:{}", hash.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

impl Plan {
    /// The plan as a stored document (JSON): `{"format": 1, "digest": "sha256:...", "plan": {...}}`. The digest is
    /// a checksum of the plan's content, not a signature: [`Plan::from_stored`] refuses a plan changed after it was
    /// written, and [`Provisioner::apply_if_current`] is what guarantees that only what its spec plans now is done.
    pub fn to_stored(&self) -> Result<Vec<u8>, StoredPlanError> {
        let plan = serde_json::to_value(self)?;
        let digest = digest_of(&plan)?;
        Ok(serde_json::to_vec_pretty(&Stored { format: PLAN_FORMAT, digest, plan })?)
    }

    /// A plan written by [`to_stored`](Self::to_stored), checked: its format is this version's and its content
    /// is what was written.
    ///
    /// ```
    /// use dataverse_mi::provision::{Plan, StoredPlanError};
    ///
    /// let err = Plan::from_stored(br#"{"format": 9, "digest": "sha256:00", "plan": {}}"#).unwrap_err();
    /// assert!(matches!(err, StoredPlanError::Format { found: 9, .. }));
    /// ```
    pub fn from_stored(bytes: &[u8]) -> Result<Plan, StoredPlanError> {
        #[derive(serde::Deserialize)]
        struct Head {
            format: u32,
        }
        let head: Head = serde_json::from_slice(bytes)?;
        if head.format != PLAN_FORMAT {
            return Err(StoredPlanError::Format { found: head.format, supported: PLAN_FORMAT });
        }
        let stored: Stored<serde_json::Value> = serde_json::from_slice(bytes)?;
        let computed = digest_of(&stored.plan)?;
        if computed != stored.digest {
            return Err(StoredPlanError::Digest { stored: stored.digest, computed });
        }
        Ok(serde_json::from_value(stored.plan)?)
    }

    /// The subjects of the FICs this plan creates that nothing in it accounts for: for each, the action's
    /// description and why. A FIC's subject must be one the spec's certificates give for its environment, one a
    /// component's registered signature gives, or the one the platform presents for a component.
    pub(super) fn unexplained_subjects(&self) -> Vec<String> {
        let spec = self.spec();
        let cloud = CloudProfile::from(spec.cloud);
        let mut out = Vec::new();
        for action in &self.actions {
            let Action::CreateFic { environment, fic } = action else { continue };
            let Some(e) = self.environments.get(*environment) else { continue };
            let Some(env_spec) = spec.environments.iter().find(|s| s.org_url == e.org_url) else {
                out.push(format!("{}: the spec has no environment {}", action.describe(self), e.org_url));
                continue;
            };
            // The subjects the spec's certificates give here, read and bound as plan reads them.
            let from_spec = super::decide::environment_bindings(&spec, env_spec, self.version).and_then(|bindings| {
                bindings
                    .into_iter()
                    .map(|(_, binding, _)| {
                        Ok(SubjectIdentifier::new(&cloud, e.tenant_id, e.environment_id, binding)?.to_string())
                    })
                    .collect::<Result<Vec<String>, ProvisionError>>()
            });
            let from_spec = match from_spec {
                Ok(subjects) => subjects,
                // Said as what it is, not as a subject the spec does not give.
                Err(err) => {
                    out.push(format!("{}: a certificate of the spec cannot be read: {err}", action.describe(self)));
                    Vec::new()
                }
            };
            let registered =
                e.components.iter().filter_map(|c| c.registered.as_ref().and_then(RegisteredSignature::subject));
            let uses_registered = env_spec.uses_registered();
            let explained = from_spec.contains(&fic.subject)
                || (uses_registered && registered.clone().any(|r| r == fic.subject))
                || e.platform_subjects.iter().any(|p| p.subject == fic.subject);
            if !explained {
                out.push(format!(
                    "{}: its subject {} is not one the spec's certificates give for {}",
                    action.describe(self),
                    fic.subject,
                    e.org_url
                ));
            }
        }
        out
    }
}

/// One way the state a stored plan read, or the plan itself, differs from a fresh plan of its spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PlanChange {
    /// The identity was created, deleted or changed.
    Identity {
        /// The identity, described.
        identity: String,
    },
    /// A FIC the plan read is gone or changed.
    FicRemoved {
        /// Its name.
        name: String,
        /// Its subject as read.
        subject: String,
    },
    /// A FIC the plan did not read is there now (or one changed).
    FicAdded {
        /// Its name.
        name: String,
        /// Its subject now.
        subject: String,
    },
    /// A role assignment appeared or disappeared.
    Grant {
        /// The role.
        role: String,
        /// The scope.
        scope: String,
        /// Whether it is assigned now.
        assigned: bool,
    },
    /// An environment of the plan is not planned any more (discovery no longer finds it).
    EnvironmentGone {
        /// The environment.
        org_url: String,
    },
    /// The organization reports another environment or tenant id.
    EnvironmentIds {
        /// The environment.
        org_url: String,
    },
    /// The managed identity row changed (created, deleted, or its values).
    Row {
        /// The environment.
        org_url: String,
        /// The row as read by the plan.
        before: Option<Uuid>,
        /// The row now.
        now: Option<Uuid>,
    },
    /// A component's binding changed.
    Binding {
        /// The environment.
        org_url: String,
        /// The component.
        component: String,
        /// The row it was bound to.
        before: Option<Uuid>,
        /// The row it is bound to now.
        now: Option<Uuid>,
    },
    /// A component appeared or disappeared.
    Component {
        /// The environment.
        org_url: String,
        /// The component.
        component: String,
        /// Whether it is there now.
        present: bool,
    },
    /// The platform presents another subject for a component.
    PlatformSubject {
        /// The environment.
        org_url: String,
        /// The component.
        component: String,
    },
    /// The plan has an action a fresh plan of its spec does not have (it was edited, or the state changed).
    ActionNotPlanned {
        /// The action, described.
        action: String,
    },
    /// A fresh plan of its spec has an action the plan does not have.
    ActionMissing {
        /// The action, described.
        action: String,
    },
}

impl fmt::Display for PlanChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row = |r: &Option<Uuid>| r.map(|r| r.to_string()).unwrap_or_else(|| "none".into());
        match self {
            PlanChange::Identity { identity } => write!(f, "the identity {identity} is not as it was"),
            PlanChange::FicRemoved { name, subject } => write!(f, "the FIC {name} ({subject}) was changed or removed"),
            PlanChange::FicAdded { name, subject } => write!(f, "the FIC {name} ({subject}) was added or changed"),
            PlanChange::Grant { role, scope, assigned: true } => {
                write!(f, "the role '{role}' at {scope} has been assigned since")
            }
            PlanChange::Grant { role, scope, assigned: false } => {
                write!(f, "the role assignment '{role}' at {scope} is gone")
            }
            PlanChange::EnvironmentGone { org_url } => write!(f, "{org_url} is no longer planned"),
            PlanChange::EnvironmentIds { org_url } => write!(f, "{org_url} now reports another environment or tenant"),
            PlanChange::Row { org_url, before, now } => {
                write!(f, "{org_url}: the managed identity row changed (was {}, now {})", row(before), row(now))
            }
            PlanChange::Binding { org_url, component, before, now } => {
                write!(f, "{org_url}: {component} was bound to {} and is now bound to {}", row(before), row(now))
            }
            PlanChange::Component { org_url, component, present: true } => {
                write!(f, "{org_url}: {component} is there now")
            }
            PlanChange::Component { org_url, component, present: false } => {
                write!(f, "{org_url}: {component} is gone")
            }
            PlanChange::PlatformSubject { org_url, component } => {
                write!(f, "{org_url}: the platform presents another subject for {component}")
            }
            PlanChange::ActionNotPlanned { action } => {
                write!(f, "the plan has an action a fresh plan of its spec does not: {action}")
            }
            PlanChange::ActionMissing { action } => {
                write!(f, "a fresh plan of its spec has an action the plan does not: {action}")
            }
        }
    }
}

impl Plan {
    /// What differs between the state this plan read and the state `later` read (a plan of the same spec made
    /// since), and, when the state is the same, between their actions; empty when the plan still does exactly
    /// what its spec plans now.
    pub fn changes_since(&self, later: &Plan) -> Vec<PlanChange> {
        let mut out = Vec::new();
        if self.found != later.found {
            out.push(PlanChange::Identity { identity: self.identity.clone() });
        }
        // The FICs this plan depends on: those of its environments, and any it names. On an identity several specs
        // share, another team's FICs for other environments come and go without making this plan stale (the
        // limit of 20 is checked again by the fresh plan).
        let relevant = |f: &FederatedIdentityCredential| {
            self.environments.iter().any(|e| crate::fic::is_managed(e.environment_id, f))
                || self.actions.iter().any(|a| match a {
                    Action::CreateFic { fic, .. } => fic.name == f.name,
                    Action::DeleteFic { name, .. } => *name == f.name,
                    _ => false,
                })
        };
        let fics = |p: &Plan| -> std::collections::BTreeSet<(String, String, String)> {
            p.existing_fics
                .iter()
                .filter(|f| relevant(f))
                .map(|f| (f.name.clone(), f.subject.clone(), f.issuer.clone()))
                .collect()
        };
        let (before, after) = (fics(self), fics(later));
        for (name, subject, _) in before.difference(&after) {
            out.push(PlanChange::FicRemoved { name: name.clone(), subject: subject.clone() });
        }
        for (name, subject, _) in after.difference(&before) {
            out.push(PlanChange::FicAdded { name: name.clone(), subject: subject.clone() });
        }
        for g in &self.grants {
            let now = later.grants.iter().find(|n| n.role == g.role && n.scope == g.scope);
            let assigned = now.is_some_and(|n| n.existing.is_some());
            if assigned != g.existing.is_some() {
                out.push(PlanChange::Grant { role: g.role.clone(), scope: g.scope.clone(), assigned });
            }
        }
        for e in &self.environments {
            let org_url = || e.org_url.clone();
            let Some(now) = later.environments.iter().find(|n| n.org_url == e.org_url) else {
                out.push(PlanChange::EnvironmentGone { org_url: org_url() });
                continue;
            };
            if (e.environment_id, e.tenant_id) != (now.environment_id, now.tenant_id) {
                out.push(PlanChange::EnvironmentIds { org_url: org_url() });
            }
            if e.existing_row != now.existing_row || e.managed_identity_id != now.managed_identity_id {
                out.push(PlanChange::Row {
                    org_url: org_url(),
                    before: e.existing_row.as_ref().map(|r| r.id),
                    now: now.existing_row.as_ref().map(|r| r.id),
                });
            }
            for c in &e.components {
                match now.components.iter().find(|n| n.id == c.id) {
                    None => out.push(PlanChange::Component {
                        org_url: org_url(),
                        component: c.name.clone(),
                        present: false,
                    }),
                    Some(n) if n.bound_to != c.bound_to => out.push(PlanChange::Binding {
                        org_url: org_url(),
                        component: c.name.clone(),
                        before: c.bound_to,
                        now: n.bound_to,
                    }),
                    Some(_) => {}
                }
            }
            for n in now.components.iter().filter(|n| !e.components.iter().any(|c| c.id == n.id)) {
                out.push(PlanChange::Component { org_url: org_url(), component: n.name.clone(), present: true });
            }
            for p in &e.platform_subjects {
                if !now.platform_subjects.contains(p) {
                    out.push(PlanChange::PlatformSubject { org_url: org_url(), component: p.name.clone() });
                }
            }
            for p in
                now.platform_subjects.iter().filter(|p| !e.platform_subjects.iter().any(|o| o.component == p.component))
            {
                out.push(PlanChange::PlatformSubject { org_url: org_url(), component: p.name.clone() });
            }
        }
        // The actions themselves: a stored plan is carried out as written, so what it would do must be what the
        // spec plans now against the same state (a plan edited after approval, say a FIC's subject replaced, is
        // refused, naming what differs).
        if out.is_empty() {
            for a in self.actions.iter().filter(|a| !later.actions.contains(a)) {
                out.push(PlanChange::ActionNotPlanned { action: a.describe(self) });
            }
            for a in later.actions.iter().filter(|a| !self.actions.contains(a)) {
                out.push(PlanChange::ActionMissing { action: a.describe(later) });
            }
        }
        out
    }
}

impl Provisioner {
    /// Applies a stored plan ([`Plan::to_stored`]) after checking it: its format and digest
    /// ([`Plan::from_stored`]), then [`apply_if_current`](Self::apply_if_current). What `dataverse-mi apply
    /// plan.json` does.
    pub async fn apply_stored(&self, stored: &[u8]) -> Result<ApplyReport, ProvisionError> {
        let plan = Plan::from_stored(stored)?;
        self.apply_if_current(&plan).await
    }
}
