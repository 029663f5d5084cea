//! What the engine reads and reports: plans, actions, outcomes, verification.

use super::*;

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
    /// The signature of its registered bytes, when plan read them (`certificate = "registered"`, pruning, and
    /// always in verify) and the platform has bytes for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered: Option<RegisteredSignature>,
}

/// What a component's registered bytes say about its signer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RegisteredSignature {
    /// Signed: the signer's certificate and the subject it gives at the spec's version.
    Signed {
        /// The signing certificate.
        certificate: SigningCertificate,
        /// The subject computed from it.
        subject: String,
    },
    /// Bytes registered, and no signature the platform can use in them (not signed, or unreadable).
    Unsigned {
        /// Why, in words.
        reason: String,
    },
}

impl RegisteredSignature {
    /// The subject, when signed.
    pub fn subject(&self) -> Option<&str> {
        match self {
            RegisteredSignature::Signed { subject, .. } => Some(subject),
            RegisteredSignature::Unsigned { .. } => None,
        }
    }

    /// The signing certificate, when signed.
    pub fn certificate(&self) -> Option<&SigningCertificate> {
        match self {
            RegisteredSignature::Signed { certificate, .. } => Some(certificate),
            RegisteredSignature::Unsigned { .. } => None,
        }
    }
}

/// Seconds since the Unix epoch (negative before it), saturating.
fn unix_seconds(t: std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map(|s| -s).unwrap_or(i64::MIN),
    }
}

/// A signing certificate as reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct SigningCertificate {
    /// The subject name as .NET prints it.
    pub subject: String,
    /// The issuer name as .NET prints it.
    pub issuer: String,
    /// SHA-256 of the DER bytes, lowercase hex.
    pub sha256: String,
    /// The end of its validity, RFC 3339 (`2027-01-15T00:00:00Z`).
    pub not_after: String,
    /// The same instant in seconds since the Unix epoch (negative before 1970).
    pub not_after_unix: i64,
}

impl SigningCertificate {
    /// The report form of a certificate; `None` when its validity cannot be read.
    pub fn of(certificate: &crate::cert::Certificate) -> Option<Self> {
        let not_after = certificate.validity().ok()?.not_after;
        let unix = unix_seconds(not_after);
        Some(SigningCertificate {
            subject: certificate.subject_text(),
            issuer: certificate.issuer_text(),
            sha256: certificate.sha256().to_string().to_ascii_lowercase(),
            not_after: der::DateTime::from_system_time(not_after).map(|d| d.to_string()).unwrap_or_default(),
            not_after_unix: unix,
        })
    }

    /// Days from `now` until it expires, a part of a day counted as a day (0 or negative once expired).
    pub fn days_left(&self, now: std::time::SystemTime) -> i64 {
        // Rounded up while it is valid: 29.5 days left is 30, not a day too few; 0 only once it has expired.
        let seconds = self.seconds_left(now);
        if seconds > 0 { seconds.saturating_add(86_399) / 86_400 } else { seconds.div_euclid(86_400) }
    }

    /// Seconds from `now` until it expires (negative once expired).
    pub fn seconds_left(&self, now: std::time::SystemTime) -> i64 {
        self.not_after_unix.saturating_sub(unix_seconds(now))
    }
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
    pub(super) fn assembly(a: crate::entities::PluginAssembly) -> Self {
        ComponentState {
            kind: ComponentKind::PluginAssembly,
            id: a.id,
            name: a.name.unwrap_or_else(|| a.id.to_string()),
            bound_to: a.managed_identity_id,
            named_assemblies: Vec::new(),
            registered: None,
        }
    }

    pub(super) fn package(p: crate::entities::PluginPackage) -> Self {
        ComponentState {
            kind: ComponentKind::PluginPackage,
            id: p.id,
            name: p.unique_name.or(p.name).unwrap_or_else(|| p.id.to_string()),
            bound_to: p.managed_identity_id,
            named_assemblies: Vec::new(),
            registered: None,
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

/// A plug-in component that presents a subject: what keeps a FIC from being deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct SubjectUser {
    /// The environment.
    pub org_url: String,
    /// A plug-in assembly or package.
    pub kind: crate::clients::ComponentKind,
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// The `managedidentity` row it is bound to.
    pub row: Uuid,
    /// Whether that row is the spec's own.
    pub spec_row: bool,
    /// The subject it presents; `None` when that cannot be told (then it counts as using every subject of its
    /// environment: in doubt, nothing is deleted).
    pub subject: Option<String>,
    /// How that is known.
    pub evidence: UserEvidence,
}

/// How the subject a component presents is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum UserEvidence {
    /// The platform's own answer (`GetComponentManagedIdentityFIC`).
    Platform,
    /// The subject of its registered signature, at its row's version.
    RegisteredSignature {
        /// The signing certificate's subject name.
        certificate: String,
    },
    /// Neither the platform nor its registered bytes tell.
    Unknown {
        /// Why, in words.
        reason: String,
    },
}

impl fmt::Display for SubjectUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            crate::clients::ComponentKind::PluginPackage => "plug-in package",
            _ => "plug-in assembly",
        };
        let row = if self.spec_row { "this spec's row".to_owned() } else { format!("another row ({})", self.row) };
        write!(f, "{} ({kind}, bound to {row}, ", self.name)?;
        match &self.evidence {
            UserEvidence::Platform => write!(f, "the platform presents it)"),
            UserEvidence::RegisteredSignature { certificate } => write!(f, "still signed with {certificate})"),
            UserEvidence::Unknown { reason } => write!(f, "what it presents cannot be told: {reason})"),
        }
    }
}

/// The users, in words: `A (...), B (...)`.
pub(crate) fn describe_users(users: &[SubjectUser]) -> String {
    users.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
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
    /// A discovered environment has none of the components the spec names: it is left out.
    NothingToBind {
        /// The environment.
        org_url: String,
    },
    /// A component is registered signed with a certificate the spec does not name (during a rotation, the old
    /// one): no FIC is made for it, and prune keeps the one it has.
    SignedWithOtherCertificate {
        /// The environment.
        org_url: String,
        /// The component.
        component: String,
        /// The subject its registered signature gives.
        subject: String,
    },
    /// A FIC this spec made and no longer wants is kept: plug-ins still present its subject (a rotation or an
    /// upgrade cannot finish until they are re-signed and registered again, or bound elsewhere).
    FicKept {
        /// The environment.
        org_url: String,
        /// The FIC's name.
        name: String,
        /// Its subject.
        subject: String,
        /// Who presents it.
        users: Vec<SubjectUser>,
        /// Whether this plan switches the version of the row they are bound to (they present the other version's
        /// subject once it is applied: plan again then).
        #[serde(default)]
        row_switching: bool,
    },
    /// A component of the spec is bound to another row than the spec's own (another application's, another
    /// tenant's, or one this spec did not make): left as it is, since rebinding would give that row's plug-in this
    /// identity's tokens (or none). Set `take_over = true` in the spec (CLI `--take-over`) to rebind it.
    BoundElsewhere {
        /// The environment.
        org_url: String,
        /// The component.
        component: String,
        /// The row it is bound to.
        row: Uuid,
        /// That row's application id, when it could be read.
        application_id: Option<Uuid>,
        /// That row's name, when it could be read.
        name: Option<String>,
    },
    /// A component of the spec bound to another row is rebound to the spec's, as the spec asks (`take_over`).
    TakenOver {
        /// The environment.
        org_url: String,
        /// The component.
        component: String,
        /// The row it is taken from.
        row: Uuid,
        /// That row's application id, when it could be read.
        application_id: Option<Uuid>,
        /// That row's name, when it could be read.
        name: Option<String>,
    },
    /// The row a solution import brought (the components bound to it, the source environment's application and
    /// tenant) is adopted, as the spec asks (`adopt`): updated in place rather than a second row made.
    Adopted {
        /// The environment.
        org_url: String,
        /// The row.
        row: Uuid,
        /// Its name.
        name: Option<String>,
        /// Its application id before adoption.
        application_id: Option<Uuid>,
        /// Its tenant id before adoption.
        tenant_id: Option<Uuid>,
    },
    /// The row is at a newer subject format version than the spec (it was upgraded and the spec still says the
    /// old one): left as it is, rather than switched back. Set `version` in the spec, or allow the downgrade
    /// (`ProvisionSpec::allow_version_downgrade`, what `upgrade --revert` does).
    RowVersionAhead {
        /// The environment.
        org_url: String,
        /// The row's version.
        row_version: i32,
        /// The spec's version.
        spec_version: i32,
    },
    /// A signing certificate the plan uses has expired: the platform refuses the plug-in's signature, whatever the
    /// FIC says.
    CertificateExpired {
        /// The environment.
        org_url: String,
        /// The certificate's subject name.
        certificate: String,
        /// When it expired (RFC 3339).
        not_after: String,
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
            PlanNote::BoundElsewhere { org_url, component, row, application_id, name } => write!(
                f,
                "{org_url}: {component} is bound to another row, {row} ('{}', application {}): left as it is; rebinding it would give that plug-in this identity's tokens. `take_over = true` in the spec (--take-over) rebinds it; `adopt = true` (--adopt) updates that row in place if a solution import brought it",
                name.as_deref().unwrap_or("-"),
                application_id.map(|a| a.to_string()).unwrap_or_else(|| "unknown".into())
            ),
            PlanNote::TakenOver { org_url, component, row, application_id, name } => write!(
                f,
                "{org_url}: {component} is taken over from row {row} ('{}', application {}), as the spec asks (take_over): that row's plug-in gets this identity's tokens from now on",
                name.as_deref().unwrap_or("-"),
                application_id.map(|a| a.to_string()).unwrap_or_else(|| "unknown".into())
            ),
            PlanNote::Adopted { org_url, row, name, application_id, tenant_id } => write!(
                f,
                "{org_url}: adopting row {row} ('{}', application {}, tenant {}), which the components are bound to (a solution import brings its source's row): updated in place, as the spec asks (adopt)",
                name.as_deref().unwrap_or("-"),
                application_id.map(|a| a.to_string()).unwrap_or_else(|| "unknown".into()),
                tenant_id.map(|t| t.to_string()).unwrap_or_else(|| "unknown".into())
            ),
            PlanNote::RowVersionAhead { org_url, row_version, spec_version } => write!(
                f,
                "{org_url}: the row is at version {row_version} (upgraded) and the spec says {spec_version}: left at {row_version}; set `version = {row_version}` in the spec, or `dataverse-mi upgrade --revert` to go back"
            ),
            PlanNote::CertificateExpired { org_url, certificate, not_after } => write!(
                f,
                "{org_url}: warning: the signing certificate {certificate} expired on {not_after}; the platform refuses a plug-in signed with it: rotate it (`dataverse-mi rotate --add NEW`)"
            ),
            PlanNote::NothingToBind { org_url } => {
                write!(f, "{org_url}: discovered, and none of the spec's components is there: left out")
            }
            PlanNote::SignedWithOtherCertificate { org_url, component, subject } => write!(
                f,
                "{org_url}: {component} is registered signed with a certificate the spec does not name (its subject {subject}); no FIC is made for it here, and prune keeps its FIC until it is re-signed and registered again"
            ),
            PlanNote::AssemblyInPackage { org_url, assemblies, package } => {
                write!(f, "{org_url}: assembly {} is in package {package}: binding the package", assemblies.join(", "))
            }
            PlanNote::FicKept { org_url, name, subject, users, row_switching: true } => write!(
                f,
                "{org_url}: kept the FIC '{name}' ({subject}) for now: {} present{} it until this plan's switch of the row's version is applied; plan again afterwards to remove it",
                describe_users(users),
                if users.len() == 1 { "s" } else { "" },
            ),
            PlanNote::FicKept { org_url, name, subject, users, row_switching: false } => write!(
                f,
                "{org_url}: kept the FIC '{name}' ({subject}): still used by {}; re-sign and register {} with the spec's certificate (or bind {} elsewhere), then plan again",
                describe_users(users),
                if users.len() == 1 { "it" } else { "them" },
                if users.len() == 1 { "it" } else { "them" },
            ),
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

    pub(super) fn describe(&self, plan: &Plan) -> String {
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
    /// What this apply sent (its own requests and retries, whatever else runs at the same time).
    pub counts: CallCounts,
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
        write!(
            f,
            "\n{} request(s), {} of them retries ({})",
            self.counts.requests, self.counts.retries, self.counts.call
        )?;
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
    /// The registered bytes carry no usable signature: the platform has no certificate to present a subject for.
    Unsigned {
        /// Why.
        reason: String,
    },
    /// The certificate that signed the registered bytes has expired: re-sign with a valid one and register again
    /// (`dataverse-mi rotate`).
    CertificateExpired {
        /// Its subject name.
        certificate: String,
        /// When it expired (RFC 3339).
        not_after: String,
    },
}

/// Something verify noticed that works today and will not for long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "warning", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ComponentWarning {
    /// The signing certificate expires within the window ([`VerifyOptions::expiry_warning`]).
    CertificateExpiresSoon {
        /// Its subject name.
        certificate: String,
        /// When it expires (RFC 3339).
        not_after: String,
        /// Whole days left.
        days_left: i64,
    },
}

impl fmt::Display for ComponentWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentWarning::CertificateExpiresSoon { certificate, not_after, days_left } => write!(
                f,
                "the signing certificate {certificate} expires in {days_left} days ({not_after}): rotate it (dataverse-mi rotate --add NEW.cer)"
            ),
        }
    }
}

/// How verify judges what it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// The instant certificates are judged at (now, unless a test or a "will it still work next week" check
    /// says otherwise).
    pub now: std::time::SystemTime,
    /// A signing certificate expiring within this long is a warning (30 days by default); an expired one is a
    /// problem.
    pub expiry_warning: std::time::Duration,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions { now: std::time::SystemTime::now(), expiry_warning: std::time::Duration::from_secs(30 * 86_400) }
    }
}

impl VerifyOptions {
    /// Judged at `now`.
    pub fn at(mut self, now: std::time::SystemTime) -> Self {
        self.now = now;
        self
    }

    /// Warning this long before expiry.
    pub fn warn_within(mut self, window: std::time::Duration) -> Self {
        self.expiry_warning = window;
        self
    }
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
    /// The subject computed from the component's registered signature (what the platform signs with), when it
    /// is signed.
    pub registered_subject: Option<String>,
    /// The certificate that signed the registered bytes, with its `not_after`.
    pub certificate: Option<SigningCertificate>,
    /// Whole days until that certificate expires (negative once expired), at [`VerifyOptions::now`].
    pub days_left: Option<i64>,
    /// What works now and soon will not (a certificate about to expire).
    pub warnings: Vec<ComponentWarning>,
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
    /// Each application user the spec asks for, with its roles as found.
    pub application_users: Vec<AppUserPlan>,
    /// Each API permission the spec asks for, as found.
    pub api_permissions: Vec<ApiPermissionPlan>,
    /// What this verify sent.
    pub counts: CallCounts,
}

impl VerifyReport {
    /// Whether the identity exists and every component and grant is ok.
    pub fn is_ok(&self) -> bool {
        self.identity_exists
            && self.components.iter().all(|c| c.status == ComponentStatus::Ok)
            && self.grants.iter().all(|g| g.assigned)
            && self.application_users.iter().all(AppUserPlan::is_complete)
            && self.api_permissions.iter().all(|p| p.existing.is_some())
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "identity: {} {}", self.identity, if self.identity_exists { "exists" } else { "DOES NOT EXIST" })?;
        for g in &self.grants {
            writeln!(f, "grant '{}' at {}: {}", g.role, g.scope, if g.assigned { "ok" } else { "MISSING" })?;
        }
        for u in &self.application_users {
            if u.user.is_none() {
                writeln!(f, "application user in {}: MISSING (no application user for the identity)", u.org_url)?;
            }
            for r in &u.roles {
                let state = if u.user.is_some() && r.given { "ok" } else { "MISSING" };
                writeln!(f, "application user in {}: role '{}': {state}", u.org_url, r.name)?;
            }
        }
        for p in &self.api_permissions {
            let state = if p.existing.is_some() { "ok" } else { "MISSING" };
            writeln!(f, "API permission {} {}: {state}", p.api_label(), p.permission)?;
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
            if let Some(registered) = c.registered_subject.as_ref().filter(|r| **r != c.computed_subject) {
                write!(f, "\n    registered signature's subject: {registered}")?;
            }
            for w in &c.warnings {
                write!(f, "\n    warning: {w}")?;
            }
        }
        Ok(())
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
            Some(found) if *found > *expected => format!(
                "row version {found}, expected {expected}: the row was upgraded (`dataverse-mi upgrade`); set `version = {found}` in the spec, or go back with `upgrade --revert`"
            ),
            Some(found) => format!("row version {found}, expected {expected}"),
            None => format!("the row has no version (version 0, the deprecated preview), expected {expected}"),
        },
        ComponentStatus::NotBound => "not bound".to_owned(),
        ComponentStatus::MissingRow => "no managed identity row in the environment".to_owned(),
        ComponentStatus::BoundToOther { managed_identity } => format!("bound to another identity {managed_identity}"),
        ComponentStatus::Unsigned { reason } => format!("the registered bytes are not usable: {reason}"),
        ComponentStatus::CertificateExpired { certificate, not_after } => {
            format!(
                "the signing certificate {certificate} expired {not_after}: re-sign with a valid one and register again"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SigningCertificate;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn days_left_count_a_part_of_a_day_as_a_day() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let expiring = |seconds: i64| SigningCertificate {
            subject: "CN=x".into(),
            issuer: "CN=x".into(),
            sha256: String::new(),
            not_after: String::new(),
            not_after_unix: 1_800_000_000 + seconds,
        };
        let day = 86_400;
        assert_eq!(expiring(29 * day + day / 2).days_left(now), 30, "29.5 days left is not 29");
        assert_eq!(expiring(30 * day).days_left(now), 30);
        assert_eq!(expiring(1).days_left(now), 1);
        assert_eq!(expiring(0).days_left(now), 0);
        assert_eq!(expiring(-1).days_left(now), -1);
        assert_eq!(expiring(-day).days_left(now), -1);
        assert_eq!(expiring(i64::MAX - 1_800_000_000).days_left(now), (i64::MAX - 1_800_000_000) / day + 1);
    }
}
