//! What the audit reads, as read: the rows, their components with their registered signatures and the
//! platform's subjects, the environments and the identities with their FICs.

use serde::Serialize;
use uuid::Uuid;

use crate::clients::{ComponentKind, UserAssignedIdentityRef};
use crate::fic::FederatedIdentityCredential;
use crate::provision::SigningCertificate;

/// An identity as the directory knows it: an app registration or a user-assigned managed identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum EstateIdentity {
    /// An app registration's service principal.
    AppRegistration {
        /// The application (client) id.
        app_id: Uuid,
    },
    /// A user-assigned managed identity.
    UserAssigned {
        /// Its client id.
        client_id: Uuid,
        /// Its ARM resource id.
        resource_id: String,
    },
}

impl EstateIdentity {
    /// The identity as a spec names it.
    pub fn spec(&self) -> Option<crate::provision::IdentitySpec> {
        match self {
            EstateIdentity::AppRegistration { app_id } => {
                Some(crate::provision::IdentitySpec::app_registration(*app_id))
            }
            EstateIdentity::UserAssigned { resource_id, .. } => {
                let r = uami_ref(resource_id)?;
                Some(crate::provision::IdentitySpec::user_assigned(r.subscription_id, r.resource_group, r.name))
            }
        }
    }
}

/// `/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{n}`, read.
pub(super) fn uami_ref(resource_id: &str) -> Option<UserAssignedIdentityRef> {
    let parts: Vec<&str> = resource_id.trim_matches('/').split('/').collect();
    let at = |key: &str| {
        parts.iter().position(|p| p.eq_ignore_ascii_case(key)).and_then(|i| parts.get(i + 1)).map(|s| (*s).to_owned())
    };
    Some(UserAssignedIdentityRef {
        subscription_id: at("subscriptions")?,
        resource_group: at("resourceGroups")?,
        name: at("userAssignedIdentities")?,
    })
}

/// A `managedidentity` row, as audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AuditedRow {
    /// The row's id.
    pub id: Uuid,
    /// Its name.
    pub name: Option<String>,
    /// Its `applicationid`.
    pub application_id: Option<Uuid>,
    /// Its `tenantid`.
    pub tenant_id: Option<Uuid>,
    /// Its subject format `version` (`None`/0: deprecated).
    pub version: Option<i32>,
}

/// A plug-in assembly or package bound to a row, as audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AuditedComponent {
    /// Assembly or package.
    pub kind: ComponentKind,
    /// Its id.
    pub id: Uuid,
    /// Its name (a package's unique name).
    pub name: String,
    /// The row it is bound to.
    pub row: Uuid,
    /// For an assembly: the package it belongs to.
    pub package: Option<Uuid>,
    /// Its registered signature, when the platform keeps its bytes.
    pub signature: Option<Signature>,
    /// The subject the platform presents for it (`GetComponentManagedIdentityFIC`), or why it presents none.
    pub platform_subject: Result<String, String>,
}

/// One environment, as audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct EnvironmentAudit {
    /// The environment.
    pub org_url: String,
    /// Its environment id, once read.
    pub environment_id: Option<String>,
    /// Its tenant, once read.
    pub tenant_id: Option<Uuid>,
    /// Its plug-in managed identity rows.
    pub rows: Vec<AuditedRow>,
    /// The components bound to them.
    pub components: Vec<AuditedComponent>,
    /// Why it could not be read, when it could not.
    pub error: Option<String>,
    /// Round trips its reads took.
    pub round_trips: usize,
}

/// One identity the rows name, as audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct IdentityAudit {
    /// Its client id (the rows' `applicationid`).
    pub client_id: Uuid,
    /// What the directory says it is; `None` when the tenant does not know it.
    pub identity: Option<EstateIdentity>,
    /// Its FICs, when they could be read.
    pub fics: Option<Vec<FederatedIdentityCredential>>,
    /// Why they could not, when they could not.
    pub error: Option<String>,
}

/// A registered component's signature, as read from the bytes the platform keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "signature", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Signature {
    /// Signed with this certificate.
    Signed {
        /// The signing certificate.
        certificate: SigningCertificate,
    },
    /// No signature the platform can use (not signed, only strong-named, unreadable).
    Unsigned {
        /// Why, in words.
        reason: String,
    },
}

/// A component's registered signature: its signing certificate, or why it has none.
pub(super) fn registered_signature(kind: ComponentKind, bytes: &[u8]) -> Signature {
    match kind.signer(bytes).map(|l| SigningCertificate::of(&l.certificate)) {
        Ok(Some(certificate)) => Signature::Signed { certificate },
        Ok(None) => Signature::Unsigned { reason: "the signing certificate's validity cannot be read".into() },
        Err(e) => Signature::Unsigned { reason: e.to_string() },
    }
}
