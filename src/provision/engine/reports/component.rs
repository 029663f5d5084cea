//! A component as read (its binding, its registered signature, the subject the platform presents) and who
//! presents a subject.

use super::super::*;

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
    pub(in crate::provision::engine) fn assembly(a: crate::entities::PluginAssembly) -> Self {
        ComponentState {
            kind: ComponentKind::PluginAssembly,
            id: a.id,
            name: a.name.unwrap_or_else(|| a.id.to_string()),
            bound_to: a.managed_identity_id,
            named_assemblies: Vec::new(),
            registered: None,
        }
    }

    pub(in crate::provision::engine) fn package(p: crate::entities::PluginPackage) -> Self {
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
