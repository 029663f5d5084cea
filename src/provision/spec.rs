//! The provisioning spec: what a user wants, as a TOML or JSON file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cert::{Certificate, CertificateHash};
use crate::cloud::Cloud;
use crate::secret::Secret;
use crate::subject::{CertificateBinding, CertificateKind, SubjectFormatVersion};

/// Which identity the plug-ins get tokens for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum IdentitySpec {
    /// An Entra app registration, by application (client) id; FICs go through Microsoft Graph.
    AppRegistration {
        /// The application (client) id.
        app_id: Uuid,
    },
    /// A user-assigned managed identity; FICs go through Azure Resource Manager.
    UserAssigned {
        /// The subscription id.
        subscription_id: String,
        /// The resource group.
        resource_group: String,
        /// The identity's name.
        name: String,
    },
}

/// The signing certificate of an environment's components.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum CertificateSpec {
    /// A file of any form [`Certificate::from_file`] reads (relative paths are relative to the spec file).
    File {
        /// The path.
        path: PathBuf,
        /// The name of an environment variable holding a PFX password.
        #[serde(default)]
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
}

/// One environment to provision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// The organization URL, e.g. `https://contoso.crm.dynamics.com`.
    pub org_url: String,
    /// Plug-in assemblies, by name or id.
    #[serde(default)]
    pub plugin_assemblies: Vec<String>,
    /// Plug-in packages, by unique name or id.
    #[serde(default)]
    pub plugin_packages: Vec<String>,
    /// The certificate that signed them.
    pub certificate: CertificateSpec,
}

/// Everything to provision.
///
/// ```
/// use dataverse_mi::provision::ProvisionSpec;
/// let spec = ProvisionSpec::from_toml(r#"
///     version = 2
///     [identity]
///     kind = "app-registration"
///     app_id = "0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b"
///     [[environments]]
///     org_url = "https://contoso.crm.dynamics.com"
///     plugin_assemblies = ["Contoso.Plugins"]
///     certificate = { sha256 = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89" }
/// "#)?;
/// assert_eq!(spec.environments.len(), 1);
/// # Ok::<(), dataverse_mi::provision::SpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionSpec {
    /// The identity.
    pub identity: IdentitySpec,
    /// The cloud (`public` by default).
    #[serde(default)]
    pub cloud: Cloud,
    /// The subject format version (2 by default; 1 for legacy setups).
    #[serde(default)]
    pub version: SubjectFormatVersion,
    /// Delete FICs this tool made that the spec no longer needs (e.g. the version 1 FIC after a migration).
    #[serde(default)]
    pub prune: bool,
    /// The environments.
    pub environments: Vec<EnvironmentSpec>,
    /// Where relative certificate paths start (the spec file's folder); not part of the file.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// Why a spec cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The file cannot be read.
    #[error("cannot read the spec {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TOML does not parse or does not fit the spec.
    #[error("the spec is not valid TOML for a provisioning spec: {0}")]
    Toml(String),
    /// The JSON does not parse or does not fit the spec.
    #[error("the spec is not valid JSON for a provisioning spec: {0}")]
    Json(String),
    /// The spec has no environment.
    #[error("the spec lists no environment")]
    NoEnvironment,
}

impl ProvisionSpec {
    /// Reads a TOML spec.
    pub fn from_toml(text: &str) -> Result<Self, SpecError> {
        let spec: ProvisionSpec = toml::from_str(text).map_err(|e| SpecError::Toml(e.to_string()))?;
        spec.checked()
    }

    /// Reads a JSON spec.
    pub fn from_json(text: &str) -> Result<Self, SpecError> {
        let spec: ProvisionSpec = serde_json::from_str(text).map_err(|e| SpecError::Json(e.to_string()))?;
        spec.checked()
    }

    /// Reads a spec file: JSON when it ends in `.json`, TOML otherwise.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SpecError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| SpecError::Io { path: path.display().to_string(), source })?;
        let mut spec = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
            Self::from_json(&text)?
        } else {
            Self::from_toml(&text)?
        };
        spec.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(spec)
    }

    fn checked(self) -> Result<Self, SpecError> {
        if self.environments.is_empty() {
            return Err(SpecError::NoEnvironment);
        }
        Ok(self)
    }
}

impl CertificateSpec {
    /// The certificate itself, when the spec names a file (relative paths start at `base_dir`); `None` for a
    /// hash or names.
    pub fn certificate(&self, base_dir: &Path) -> Result<Option<Certificate>, super::ProvisionError> {
        let CertificateSpec::File { path, password_env } = self else { return Ok(None) };
        let password = match password_env {
            Some(var) => Some(Secret::new(std::env::var(var).map_err(|_| super::ProvisionError::Input {
                message: format!("the environment variable {var} (the PFX password) is not set"),
            })?)),
            None => None,
        };
        // `join` keeps an absolute path as it is.
        Ok(Some(Certificate::from_file_with_password(base_dir.join(path), password.as_ref())?.certificate))
    }

    /// The certificate part of the subject for this spec's certificate.
    pub fn binding(
        &self,
        version: SubjectFormatVersion,
        base_dir: &Path,
    ) -> Result<CertificateBinding, super::ProvisionError> {
        match (self, self.certificate(base_dir)?) {
            (_, Some(cert)) => Ok(CertificateBinding::for_certificate(&cert, version, CertificateKind::Auto)?),
            (CertificateSpec::Sha256 { sha256 }, None) => Ok(CertificateBinding::SelfSigned { sha256: *sha256 }),
            (CertificateSpec::Names { issuer_dn, subject_dn }, None) => {
                Ok(CertificateBinding::from_names(issuer_dn, subject_dn, version)?)
            }
            (CertificateSpec::File { .. }, None) => {
                Err(super::ProvisionError::Input { message: "the certificate file gave no certificate".into() })
            }
        }
    }
}
