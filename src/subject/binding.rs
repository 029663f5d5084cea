//! The certificate part of a subject: the self-signed hash, or the issuer and subject (hashed in version 2, CN
//! values in version 1).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::v1::{check_v1_value, v1_segment};
use super::{CertificateKind, SubjectError, SubjectFormatVersion};
use crate::cert::{Certificate, CertificateHash, NameHash};

/// The certificate part of a subject: what follows `/e/{environment}/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CertificateBinding {
    /// `/h/{sha256}`: a self-signed certificate, by the SHA-256 of its DER bytes.
    SelfSigned {
        /// SHA-256 over the certificate's DER bytes.
        sha256: CertificateHash,
    },
    /// `/i/{issuerHash}/s/{subjectHash}`: a CA-issued certificate, version 2.
    TrustedV2 {
        /// Hash of the .NET-formatted issuer name.
        issuer_hash: NameHash,
        /// Hash of the .NET-formatted subject name.
        subject_hash: NameHash,
    },
    /// `/i/{issuer CN}/s/{subject CN}`: a CA-issued certificate, version 1 (legacy; read and migrate only).
    ///
    /// The platform writes the CN values of the two names (Microsoft: version 1 "builds the FIC subject identifier
    /// from the certificate Common Name (CN)"), e.g. `i/Microsoft Code Signing PCA 2011/s/Microsoft Corporation`.
    /// A binding read from a subject holds whatever text the subject has there.
    TrustedV1 {
        /// The `/i/` text: the issuer's CN value.
        issuer: String,
        /// The `/s/` text: the subject's CN value.
        subject: String,
    },
}

impl CertificateBinding {
    /// The binding for a certificate, in the given format version.
    pub fn for_certificate(
        cert: &Certificate,
        version: SubjectFormatVersion,
        kind: CertificateKind,
    ) -> Result<Self, SubjectError> {
        let self_signed = match kind {
            CertificateKind::Auto => cert.is_self_signed(),
            CertificateKind::SelfSigned => true,
            CertificateKind::Trusted => false,
        };
        if self_signed {
            return Ok(CertificateBinding::SelfSigned { sha256: cert.sha256() });
        }
        fn name<'a>(
            which: &'static str,
            r: Result<&'a str, crate::cert::CertificateError>,
        ) -> Result<&'a str, SubjectError> {
            r.map_err(|e| SubjectError::NameUnreadable { which, reason: e.to_string() })
        }
        CertificateBinding::from_names(name("issuer", cert.issuer())?, name("subject", cert.subject())?, version)
    }

    /// The trusted-CA binding for .NET-formatted names (as `X509Certificate2.Issuer` / `.Subject` print them): their
    /// hashes in version 2, their CN values ([`v1_simple_name`](crate::cert::v1_simple_name)) in version 1.
    ///
    /// ```
    /// use dataverse_mi::subject::{CertificateBinding, SubjectFormatVersion};
    /// let v1 = CertificateBinding::from_names(
    ///     "CN=Microsoft Code Signing PCA 2011, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
    ///     "CN=Microsoft Corporation, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
    ///     SubjectFormatVersion::V1,
    /// )?;
    /// assert_eq!(v1.to_string(), "i/Microsoft Code Signing PCA 2011/s/Microsoft Corporation");
    /// # Ok::<(), dataverse_mi::subject::SubjectError>(())
    /// ```
    pub fn from_names(issuer: &str, subject: &str, version: SubjectFormatVersion) -> Result<Self, SubjectError> {
        match version {
            SubjectFormatVersion::V2 => Ok(CertificateBinding::TrustedV2 {
                issuer_hash: NameHash::of_name(issuer),
                subject_hash: NameHash::of_name(subject),
            }),
            SubjectFormatVersion::V1 => Ok(CertificateBinding::TrustedV1 {
                issuer: v1_segment("issuer", issuer)?,
                subject: v1_segment("subject", subject)?,
            }),
        }
    }

    /// The version 1 binding for two CN values as they are (no name parsing): what the platform writes in `/i/`
    /// and `/s/`. Refuses what version 1 cannot carry, as [`CertificateBinding::from_names`] does.
    pub fn v1_from_common_names(issuer_cn: &str, subject_cn: &str) -> Result<Self, SubjectError> {
        check_v1_value("issuer", issuer_cn, issuer_cn)?;
        check_v1_value("subject", subject_cn, subject_cn)?;
        Ok(CertificateBinding::TrustedV1 { issuer: issuer_cn.to_owned(), subject: subject_cn.to_owned() })
    }

    /// The version 1 binding as Microsoft's own migration scripts (and earlier versions of this crate) wrote it: the
    /// whole .NET names in `/i/` and `/s/`. The platform never presents it; it is computed only to recognise FICs
    /// made that way and replace them.
    pub fn v1_whole_names(issuer: &str, subject: &str) -> Self {
        CertificateBinding::TrustedV1 { issuer: issuer.to_owned(), subject: subject.to_owned() }
    }

    /// The format version this binding implies (`None` for self-signed, which is the same in both).
    pub fn version(&self) -> Option<SubjectFormatVersion> {
        match self {
            CertificateBinding::SelfSigned { .. } => None,
            CertificateBinding::TrustedV2 { .. } => Some(SubjectFormatVersion::V2),
            CertificateBinding::TrustedV1 { .. } => Some(SubjectFormatVersion::V1),
        }
    }
}

impl fmt::Display for CertificateBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertificateBinding::SelfSigned { sha256 } => write!(f, "h/{sha256}"),
            CertificateBinding::TrustedV2 { issuer_hash, subject_hash } => {
                write!(f, "i/{issuer_hash}/s/{subject_hash}")
            }
            CertificateBinding::TrustedV1 { issuer, subject } => {
                write!(f, "i/{issuer}/s/{subject}")
            }
        }
    }
}
