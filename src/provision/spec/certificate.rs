//! How a spec names a plug-in's signing certificate (a file, the registered bytes, inline DER) and reading it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cert::{Certificate, CertificateHash};
use crate::secret::Secret;
use crate::subject::{CertificateBinding, CertificateKind, SubjectFormatVersion};

/// The signing certificate of an environment's components.
///
/// In a file: `certificate = "registered"` (the default when an environment names no certificate), a path
/// (`{ path = "signing.cer" }`, `{ path = "signing.pfx", password_env = "PFX_PASSWORD" }`), a hash
/// (`{ sha256 = "..." }`), names (`{ issuer_dn = "...", subject_dn = "..." }`) or the certificate itself
/// (`{ der = "<base64>" }`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CertificateSpec {
    /// The certificate that signed each component as the platform registered it: plan reads each component's
    /// registered bytes (`pluginassembly.content`, the plug-in package's content or file) and takes the signer
    /// from its signature, so a component signed with another certificate than the one at hand cannot be missed.
    /// Components signed with different certificates get one FIC per certificate; an unsigned component is
    /// refused. The default when a spec names no certificate.
    #[default]
    Registered,
    /// A file of any form [`Certificate::from_file`] reads (relative paths are relative to the spec file).
    File {
        /// The path.
        path: PathBuf,
        /// The name of an environment variable holding a PFX password.
        password_env: Option<String>,
    },
    /// The SHA-256 of a self-signed certificate.
    Sha256 {
        /// The hash (any case, colons allowed).
        sha256: CertificateHash,
    },
    /// The .NET-formatted names of a CA-issued certificate.
    Names {
        /// `X509Certificate2.Issuer`.
        issuer_dn: String,
        /// `X509Certificate2.Subject`.
        subject_dn: String,
    },
    /// A certificate itself (read from a vault, a database, a request; in a file, `{ der = "<base64 DER>" }`).
    Loaded {
        /// The certificate (its DER bytes in Base64 in a file).
        certificate: Certificate,
    },
    /// A PFX file and its password, given in memory as a [`Secret`] (never printed) instead of through an
    /// environment variable. Not part of the file format (a plan stores the certificate read from it instead:
    /// [`ProvisionSpec::storable`](super::ProvisionSpec::storable)); serializing it is an error.
    Pkcs12 {
        /// The path (relative paths are relative to the spec's `base_dir`).
        path: PathBuf,
        /// The password.
        password: Secret,
    },
}

impl CertificateSpec {
    /// Whether this is [`CertificateSpec::Registered`].
    pub fn is_registered(&self) -> bool {
        matches!(self, CertificateSpec::Registered)
    }
}

/// The file form of [`CertificateSpec`].
#[derive(Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum CertificateRepr {
    Keyword(CertificateKeyword),
    File {
        path: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password_env: Option<String>,
    },
    Sha256 {
        sha256: CertificateHash,
    },
    Names {
        issuer_dn: String,
        subject_dn: String,
    },
    Loaded {
        #[serde(rename = "der", with = "der_base64")]
        certificate: Certificate,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum CertificateKeyword {
    Registered,
}

impl Serialize for CertificateSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let repr = match self.clone() {
            CertificateSpec::Registered => CertificateRepr::Keyword(CertificateKeyword::Registered),
            CertificateSpec::File { path, password_env } => CertificateRepr::File { path, password_env },
            CertificateSpec::Sha256 { sha256 } => CertificateRepr::Sha256 { sha256 },
            CertificateSpec::Names { issuer_dn, subject_dn } => CertificateRepr::Names { issuer_dn, subject_dn },
            CertificateSpec::Loaded { certificate } => CertificateRepr::Loaded { certificate },
            CertificateSpec::Pkcs12 { .. } => {
                return Err(serde::ser::Error::custom(
                    "a PFX given with its password in memory is not written out (ProvisionSpec::storable stores the certificate read from it)",
                ));
            }
        };
        repr.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CertificateSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match CertificateRepr::deserialize(deserializer)? {
            CertificateRepr::Keyword(CertificateKeyword::Registered) => CertificateSpec::Registered,
            CertificateRepr::File { path, password_env } => CertificateSpec::File { path, password_env },
            CertificateRepr::Sha256 { sha256 } => CertificateSpec::Sha256 { sha256 },
            CertificateRepr::Names { issuer_dn, subject_dn } => CertificateSpec::Names { issuer_dn, subject_dn },
            CertificateRepr::Loaded { certificate } => CertificateSpec::Loaded { certificate },
        })
    }
}

impl From<Certificate> for CertificateSpec {
    fn from(certificate: Certificate) -> Self {
        CertificateSpec::Loaded { certificate }
    }
}

/// A certificate as Base64 of its DER bytes.
mod der_base64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::cert::Certificate;

    pub(super) fn serialize<S: Serializer>(certificate: &Certificate, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(certificate.der()))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Certificate, D::Error> {
        let text = String::deserialize(d)?;
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let der = STANDARD.decode(compact).map_err(|e| serde::de::Error::custom(format!("der: not Base64: {e}")))?;
        Certificate::from_der(&der).map_err(serde::de::Error::custom)
    }
}

impl CertificateSpec {
    /// The certificate itself, when the spec names a file (relative paths start at `base_dir`); `None` for a
    /// hash, names, or the registered certificate (which plan reads per component).
    pub fn certificate(&self, base_dir: &Path) -> Result<Option<Certificate>, crate::provision::ProvisionError> {
        let (path, password) = match self {
            CertificateSpec::Loaded { certificate } => return Ok(Some(certificate.clone())),
            CertificateSpec::Pkcs12 { path, password } => (path, Some(password.clone())),
            CertificateSpec::File { path, password_env: Some(var) } => {
                let password = std::env::var(var).map_err(|_| crate::provision::ProvisionError::Input {
                    message: format!("the environment variable {var} (the PFX password) is not set"),
                })?;
                (path, Some(Secret::new(password)))
            }
            CertificateSpec::File { path, password_env: None } => (path, None),
            CertificateSpec::Sha256 { .. } | CertificateSpec::Names { .. } | CertificateSpec::Registered => {
                return Ok(None);
            }
        };
        // `join` keeps an absolute path as it is.
        Ok(Some(Certificate::from_file_with_password(base_dir.join(path), password.as_ref())?.certificate))
    }

    /// The certificate part of the subject for this spec's certificate.
    pub fn binding(
        &self,
        version: SubjectFormatVersion,
        base_dir: &Path,
    ) -> Result<CertificateBinding, crate::provision::ProvisionError> {
        self.binding_of(self.certificate(base_dir)?.as_ref(), version)
    }

    /// [`binding`](Self::binding) with the certificate already read by [`certificate`](Self::certificate), so
    /// that a caller that needs both reads the file once.
    pub(crate) fn binding_of(
        &self,
        certificate: Option<&Certificate>,
        version: SubjectFormatVersion,
    ) -> Result<CertificateBinding, crate::provision::ProvisionError> {
        match (self, certificate) {
            (_, Some(cert)) => Ok(CertificateBinding::for_certificate(cert, version, CertificateKind::Auto)?),
            (CertificateSpec::Sha256 { sha256 }, None) => Ok(CertificateBinding::SelfSigned { sha256: *sha256 }),
            (CertificateSpec::Names { issuer_dn, subject_dn }, None) => {
                Ok(CertificateBinding::from_names(issuer_dn, subject_dn, version)?)
            }
            (CertificateSpec::File { .. } | CertificateSpec::Pkcs12 { .. } | CertificateSpec::Loaded { .. }, None) => {
                Err(crate::provision::ProvisionError::Input {
                    message: "the certificate file gave no certificate".into(),
                })
            }
            (CertificateSpec::Registered, None) => Err(crate::provision::ProvisionError::Input {
                message: "the registered certificate is read per component from the platform (plan reads it)".into(),
            }),
        }
    }
}
