//! What a plan says besides its actions: the notes a user should read before approving it.

use super::super::*;

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
