//! What verify found: each component's status, with its warnings, and the grants.

use super::super::*;

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
