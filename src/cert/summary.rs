//! What the platform derives from a certificate, in one serializable value (what `dataverse-mi cert` prints).

use std::fmt;

use serde::Serialize;

use super::dn::v1_simple_name;
use super::{Certificate, CertificateError, NameHash};

/// What the platform derives from a certificate, in one serializable value: what `dataverse-mi cert --output
/// json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CertificateSummary {
    /// The issuer name as .NET prints it (`None` when it cannot be rendered: see `name_errors`).
    pub issuer: Option<String>,
    /// The subject name as .NET prints it (`None` when it cannot be rendered: see `name_errors`).
    pub subject: Option<String>,
    /// The issuer's simple name (its CN): the version 1 `/i/` value.
    pub issuer_cn: Option<String>,
    /// The subject's simple name (its CN): the version 1 `/s/` value.
    pub subject_cn: Option<String>,
    /// SHA-256 of the DER bytes, lowercase hex (the `/h/` value).
    pub sha256: String,
    /// SHA-1 thumbprint, upper-case hex (version 0 only).
    pub sha1: String,
    /// The version 2 issuer name hash (`/i/`).
    pub issuer_hash: Option<String>,
    /// The version 2 subject name hash (`/s/`).
    pub subject_hash: Option<String>,
    /// Whether it is self-signed (so `/h/` by default).
    pub self_signed: bool,
    /// Why a name could not be rendered, when one could not (the rest of the certificate stays usable: its
    /// SHA-256 needs no name).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub name_errors: Vec<String>,
    /// When it is valid (`{not before} to {not after}`, RFC 3339), when that can be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid: Option<String>,
}

impl fmt::Display for CertificateSummary {
    /// One line per value, as `dataverse-mi cert` prints it; a name that cannot be rendered leaves the rest usable
    /// (its line says so, and a note says why).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(cannot be read)".to_owned());
        writeln!(f, "issuer:       {}", show(&self.issuer))?;
        writeln!(f, "subject:      {}", show(&self.subject))?;
        writeln!(f, "sha256:       {}", self.sha256)?;
        writeln!(f, "sha1:         {}", self.sha1)?;
        writeln!(f, "issuer_hash:  {}", show(&self.issuer_hash))?;
        writeln!(f, "subject_hash: {}", show(&self.subject_hash))?;
        writeln!(f, "issuer_cn:    {}", show(&self.issuer_cn))?;
        writeln!(f, "subject_cn:   {}", show(&self.subject_cn))?;
        write!(f, "self_signed:  {}", self.self_signed)?;
        for e in &self.name_errors {
            write!(f, "\nnote:         {e}")?;
        }
        if let Some(valid) = &self.valid {
            write!(f, "\nvalid:        {valid}")?;
        }
        Ok(())
    }
}

impl Certificate {
    /// What the platform derives from the certificate, in one serializable value.
    pub fn summary(&self) -> CertificateSummary {
        let mut name_errors = Vec::new();
        let mut keep = |r: Result<&str, CertificateError>, say: bool| match r {
            Ok(name) => Some(name.to_owned()),
            Err(e) => {
                if say {
                    name_errors.push(e.to_string());
                }
                None
            }
        };
        // An issuer that is byte for byte the subject fails as the subject does: said once.
        let subject = keep(self.subject(), true);
        let issuer = keep(self.issuer(), self.issuer_differs());
        let cn = |n: &Option<String>| n.as_deref().and_then(v1_simple_name);
        CertificateSummary {
            issuer_cn: cn(&issuer),
            subject_cn: cn(&subject),
            issuer_hash: issuer.as_deref().map(|n| NameHash::of_name(n).to_string()),
            subject_hash: subject.as_deref().map(|n| NameHash::of_name(n).to_string()),
            issuer,
            subject,
            sha256: self.sha256().to_string(),
            sha1: self.sha1_thumbprint().to_string(),
            self_signed: self.is_self_signed(),
            name_errors,
            valid: self.validity().ok().map(|v| v.to_string()),
        }
    }
}
