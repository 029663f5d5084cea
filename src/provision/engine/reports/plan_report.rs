//! The plan: per environment what is there and what will be done, the actions, and the grants.

use super::super::*;

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
    /// The first subject computed here for its components (from the environment id, the tenant, the first
    /// certificate and the version); every one is in `subjects`.
    pub subject: String,
    /// The FIC for the first computed subject.
    pub fic: FederatedIdentityCredential,
    /// Every subject computed for the environment, one per distinct certificate (the spec's certificates, and
    /// with `"registered"`, each certificate that signed a component), with where it comes from.
    #[serde(default)]
    pub subjects: Vec<PlannedSubject>,
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
    /// The rows other than this environment's own that components of the spec are bound to (another
    /// application's, another tenant's, or one this spec did not make), as read: plan does not take those
    /// components over unless the spec says so (`take_over`).
    #[serde(default)]
    pub other_rows: Vec<ManagedIdentity>,
    /// Whether `existing_row` is a row this plan adopts (`adopt`: the row a solution import brought, which the
    /// components are bound to) rather than this identity's own.
    #[serde(default)]
    pub adopted: bool,
}

/// A subject an environment's FICs are made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct PlannedSubject {
    /// The subject.
    pub subject: String,
    /// Where it comes from.
    pub source: SubjectSource,
    /// The certificate it was computed from, when known (a file, or a registered signature).
    pub certificate: Option<SigningCertificate>,
}

/// Where a planned subject comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SubjectSource {
    /// The spec's certificate at this position of `certificates` (0 for `certificate`).
    Spec {
        /// The position.
        index: usize,
    },
    /// The registered signature of these components.
    Registered {
        /// The components' names.
        components: Vec<String>,
    },
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
    /// Make the identity an application user of an environment (when it is not one) and give it the security
    /// roles it lacks (after the identity exists).
    GrantDataverseAccess {
        /// The environment.
        org_url: String,
        /// The application user; `None` when it is made (its id derived from the identity's client id and the
        /// environment, so that a retry finds it).
        user: Option<Uuid>,
        /// The root business unit, where a new user is made.
        business_unit: Uuid,
        /// The roles to give: name and id.
        roles: Vec<(String, Uuid)>,
    },
    /// Give the identity's service principal an application permission of an API (after the identity exists).
    GrantApiPermission {
        /// The API's application id.
        api: Uuid,
        /// The API, for people.
        api_name: String,
        /// The API's service principal.
        resource_id: Uuid,
        /// The permission's name.
        permission: String,
        /// The app role's id.
        app_role_id: Uuid,
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
        /// Why it goes: which of this spec's environments it was made for, and that nothing wants it any more.
        reason: String,
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
            Action::DeleteFic { .. }
            | Action::CreateIdentity { .. }
            | Action::AssignRole { .. }
            | Action::GrantDataverseAccess { .. }
            | Action::GrantApiPermission { .. } => None,
        }
    }

    /// Whether the action gives the identity access (a role assignment, an application user's roles, an API
    /// permission): these run once the identity exists, beside the environments' actions.
    pub fn is_grant(&self) -> bool {
        matches!(
            self,
            Action::AssignRole { .. } | Action::GrantDataverseAccess { .. } | Action::GrantApiPermission { .. }
        )
    }

    /// Whether the action writes to Microsoft Graph or Azure Resource Manager (the identity, its FICs, its role
    /// assignments) rather than to Dataverse.
    pub fn is_identity_write(&self) -> bool {
        !matches!(
            self,
            Action::CreateManagedIdentity { .. }
                | Action::UpdateManagedIdentity { .. }
                | Action::Bind { .. }
                | Action::GrantDataverseAccess { .. }
        )
    }

    pub(in crate::provision::engine) fn describe(&self, plan: &Plan) -> String {
        let env = |i: &usize| plan.environments.get(*i).map(|e| e.org_url.as_str()).unwrap_or("?");
        match self {
            Action::CreateIdentity { identity } => format!("create {identity}"),
            Action::AssignRole { role, scope, .. } => format!("assign '{role}' at {scope}"),
            Action::GrantDataverseAccess { org_url, user, roles, .. } => {
                let roles = roles.iter().map(|(name, _)| format!("'{name}'")).collect::<Vec<_>>().join(", ");
                match user {
                    None => format!("add the identity as an application user of {org_url} with role(s) {roles}"),
                    Some(_) => format!("give the application user in {org_url} role(s) {roles}"),
                }
            }
            Action::GrantApiPermission { api_name, permission, .. } => {
                format!("give the application permission {api_name} {permission}")
            }
            Action::CreateFic { environment, fic } => format!("create FIC {} for {}", fic.name, env(environment)),
            Action::DeleteFic { name, reason, .. } => format!("delete FIC {name}: {reason}"),
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
            Action::Bind { environment, component, managed_identity } => {
                let from = match component.bound_to.filter(|b| Some(*b) != *managed_identity) {
                    Some(row) => format!(" (taking it over from row {row})"),
                    None => String::new(),
                };
                format!("bind {} {} in {}{from}", component.kind.logical_name(), component.name, env(environment))
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
    /// The application users the spec asks for, as found.
    #[serde(default)]
    pub application_users: Vec<AppUserPlan>,
    /// The API permissions the spec asks for, as found.
    #[serde(default)]
    pub api_permissions: Vec<ApiPermissionPlan>,
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
    /// What planning sent (the reads of this plan alone).
    #[serde(default)]
    pub counts: CallCounts,
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

/// A security role of an application user, as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct RoleGrant {
    /// The role's name.
    pub name: String,
    /// The root business unit's role of that name.
    pub role_id: Uuid,
    /// Whether the user has it.
    pub given: bool,
}

/// The identity as an application user of one environment, as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct AppUserPlan {
    /// The environment.
    pub org_url: String,
    /// The application user, when there is one.
    pub user: Option<Uuid>,
    /// The root business unit (where a new application user is made).
    pub business_unit: Uuid,
    /// The roles the spec names.
    pub roles: Vec<RoleGrant>,
}

impl AppUserPlan {
    /// Whether the user exists with every role the spec names.
    pub fn is_complete(&self) -> bool {
        self.user.is_some() && self.roles.iter().all(|r| r.given)
    }

    /// The roles the user lacks.
    pub fn missing_roles(&self) -> Vec<&RoleGrant> {
        self.roles.iter().filter(|r| !r.given).collect()
    }
}

/// An application permission of an API, as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ApiPermissionPlan {
    /// The API's application id.
    pub api: Uuid,
    /// The API's name (its service principal's display name).
    pub api_name: Option<String>,
    /// The API's service principal (the assignment's `resourceId`).
    pub resource_id: Uuid,
    /// The permission's name (the app role's value).
    pub permission: String,
    /// The app role's id.
    pub app_role_id: Uuid,
    /// The assignment that gives it to the identity already, when there is one.
    pub existing: Option<String>,
}

impl ApiPermissionPlan {
    /// The API, for people: its name, or its application id.
    pub fn api_label(&self) -> String {
        self.api_name.clone().unwrap_or_else(|| self.api.to_string())
    }
}

impl GrantPlan {
    /// A role assignment as found: `existing` is the id of an assignment that gives the role at the scope already.
    pub fn new(
        role: impl Into<String>,
        scope: impl Into<String>,
        role_definition_id: impl Into<String>,
        existing: Option<String>,
    ) -> Self {
        GrantPlan { role: role.into(), scope: scope.into(), role_definition_id: role_definition_id.into(), existing }
    }
}

impl Plan {
    /// The FICs this plan would have deleted and keeps, because plug-ins still present their subjects: while there
    /// is one, a rotation or an upgrade has not finished.
    pub fn kept_fics(&self) -> Vec<&PlanNote> {
        self.notes.iter().filter(|n| matches!(n, PlanNote::FicKept { .. })).collect()
    }

    /// The spec the plan was made from, with its `base_dir` back.
    pub fn spec(&self) -> ProvisionSpec {
        ProvisionSpec { base_dir: self.spec_dir.clone(), ..self.spec.clone() }
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
        self.apply_chain_length_with(false)
    }

    /// [`apply_chain_length`](Self::apply_chain_length) when apply batches
    /// ([`ProvisionOptions::batch`]): the identity, then every FIC in Graph batches, then each environment's
    /// row and binds in one change set.
    pub fn apply_chain_length_with(&self, batch: bool) -> usize {
        if batch {
            let identity = usize::from(self.actions.iter().any(|a| matches!(a, Action::CreateIdentity { .. })));
            let fics = usize::from(self.actions.iter().any(|a| matches!(a, Action::CreateFic { .. })));
            let writes = usize::from(self.actions.iter().any(|a| {
                matches!(
                    a,
                    Action::CreateManagedIdentity { .. } | Action::UpdateManagedIdentity { .. } | Action::Bind { .. }
                )
            }));
            return identity + fics + writes;
        }
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
            // Where the certificates come from, when it is not the spec's one file: the registered signatures, or
            // several certificates (a rotation).
            let plain = e.subjects.len() == 1 && matches!(e.subjects[0].source, SubjectSource::Spec { .. });
            if !plain {
                for s in &e.subjects {
                    let signer = s.certificate.as_ref().map(|c| format!("{}, until {}", c.subject, c.not_after));
                    let from = match &s.source {
                        SubjectSource::Spec { index } => format!("certificate {} of the spec", index + 1),
                        SubjectSource::Registered { components } => format!("registered: {}", components.join(", ")),
                    };
                    writeln!(f, "    {from} ({}): {}", signer.as_deref().unwrap_or("names or hash"), s.subject)?;
                }
            }
        }
        for g in &self.grants {
            let state = if g.existing.is_some() { "assigned" } else { "to assign" };
            writeln!(f, "grant '{}' at {}: {state}", g.role, g.scope)?;
        }
        for u in &self.application_users {
            for r in &u.roles {
                let state = if u.user.is_some() && r.given { "given" } else { "to give" };
                writeln!(f, "application user in {}: role '{}': {state}", u.org_url, r.name)?;
            }
        }
        for p in &self.api_permissions {
            let state = if p.existing.is_some() { "granted" } else { "to grant" };
            writeln!(f, "API permission {} {}: {state}", p.api_label(), p.permission)?;
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
