//! A certificate with how it was found: the form it was read from, the chain beside it, and what the user should
//! know about the choice made.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Certificate;

/// The form the certificate was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CertificateFormat {
    /// Binary DER (`.cer`, `.crt`, `.der`).
    Der,
    /// PEM text.
    Pem,
    /// A PKCS#12 / PFX file: its leaf certificate.
    Pkcs12,
    /// An Authenticode-signed PE file (plug-in assembly): the signer's certificate.
    SignedAssembly,
    /// A signed NuGet package (plug-in package): the author signer's certificate.
    SignedPackage,
}

/// Something worth telling the user about how a certificate was picked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LoadWarning {
    /// The PEM text held several certificates; the first one was taken.
    ExtraCertificates {
        /// How many certificates the file held in all.
        total: usize,
    },
    /// PEM blocks other than certificates (keys, CSRs) were skipped.
    SkippedPemBlocks {
        /// Their labels, e.g. `PRIVATE KEY`.
        labels: Vec<String>,
    },
}

impl fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadWarning::ExtraCertificates { total } => write!(
                f,
                "the file holds {total} certificates; the first one was taken (put the signing certificate first if that is not it)"
            ),
            LoadWarning::SkippedPemBlocks { labels } => {
                write!(f, "skipped PEM blocks that are not certificates: {}", labels.join(", "))
            }
        }
    }
}

/// A certificate with how it was found.
#[derive(Debug, Clone)]
pub struct LoadedCertificate {
    /// The certificate.
    pub certificate: Certificate,
    /// The form it was read from.
    pub format: CertificateFormat,
    /// What the user should know about the choice made.
    pub warnings: Vec<LoadWarning>,
    /// The other certificates found with it (the chain in a signature or a PFX), in file order.
    pub chain: Vec<Certificate>,
}
