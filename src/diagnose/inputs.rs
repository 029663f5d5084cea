//! What a diagnosis compares the failure with: the identity's FICs, the certificate, the environment, the tenant.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cert::{Certificate, CertificateHash};
use crate::cloud::CloudProfile;
use crate::environment::EnvironmentId;
use crate::subject::SubjectFormatVersion;

/// A FIC configured on the identity, as far as the user knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfiguredFic {
    /// The subject.
    pub subject: String,
    /// The issuer, if known.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The audience, if known.
    #[serde(default)]
    pub audience: Option<String>,
    /// When it was created, where the identity's API says (ARM's `systemData.createdAt` for a user-assigned
    /// identity; Microsoft Graph does not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<std::time::SystemTime>,
}

impl From<String> for ConfiguredFic {
    fn from(subject: String) -> Self {
        ConfiguredFic { subject, ..Default::default() }
    }
}

impl From<&str> for ConfiguredFic {
    fn from(subject: &str) -> Self {
        subject.to_owned().into()
    }
}

/// What the user knows of their setup; every field is optional, and each one lets more causes be checked.
#[derive(Debug, Clone, Default)]
pub struct DiagnosisInputs {
    /// The tenant id.
    pub tenant_id: Option<Uuid>,
    /// The environment id (a GUID, or `Default-{tenant}` for a Default environment).
    pub environment_id: Option<EnvironmentId>,
    /// The organization id (to recognise it where the environment id belongs).
    pub organization_id: Option<Uuid>,
    /// The user's own app registration or UAMI client id (to recognise it in the `/a/` segment).
    pub application_id: Option<Uuid>,
    /// The signing certificate.
    pub certificate: Option<Certificate>,
    /// The other certificates the user has with it (the CA, intermediates: from a PEM or PFX file, or the signed
    /// file's bag), to recognise a hash of one of them.
    pub chain: Vec<Certificate>,
    /// The SHA-256 of the `.pfx` or `.pem` file the certificate came from, when it came from one (to recognise a
    /// hash of the file instead of the certificate).
    pub pfx_sha256: Option<CertificateHash>,
    /// The cloud.
    pub cloud: Option<CloudProfile>,
    /// The `version` of the managed identity row.
    pub version: Option<SubjectFormatVersion>,
    /// The FICs on the identity. An empty list means "none configured" only when `fics_known` is true.
    pub configured: Vec<ConfiguredFic>,
    /// Whether `configured` is the complete list (read from the service) rather than what the user pasted.
    pub fics_known: bool,
    /// Whether a FIC was created in the last few minutes.
    pub recently_created: bool,
    /// When the failure happened (a trace log row's `createdon`); the error's own timestamp, or now, otherwise.
    pub failed_at: Option<std::time::SystemTime>,
}

/// How long after its creation a FIC is given to propagate before a failure is no longer put down to it: Entra
/// says a new FIC can take "a few minutes"; this crate allows ten.
pub const FIC_PROPAGATION: std::time::Duration = std::time::Duration::from_secs(600);

impl DiagnosisInputs {
    /// Takes everything a certificate file gives: the certificate (a `.cer`, `.pem`, `.pfx`, signed assembly or
    /// signed package, as [`Certificate::from_bytes_with_password`] reads them), the other certificates with it
    /// (the chain), and for a `.pfx` or `.pem` file the SHA-256 of the file itself, so that a FIC made from any of
    /// them is recognised. Returns what the user should know about how the certificate was picked.
    ///
    /// ```
    /// use dataverse_mi::diagnose::DiagnosisInputs;
    /// let pem = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/chain-with-key.pem"))?;
    /// let mut inputs = DiagnosisInputs::default();
    /// inputs.set_certificate_file(&pem, None)?;
    /// assert!(inputs.certificate.is_some() && inputs.pfx_sha256.is_some());
    /// assert_eq!(inputs.chain.len(), 1); // the CA after the leaf
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_certificate_file(
        &mut self,
        bytes: &[u8],
        password: Option<&crate::secret::Secret>,
    ) -> Result<Vec<crate::cert::LoadWarning>, crate::cert::CertificateError> {
        use crate::cert::CertificateFormat;
        let loaded = Certificate::from_bytes_with_password(bytes, password)?;
        self.pfx_sha256 = matches!(loaded.format, CertificateFormat::Pkcs12 | CertificateFormat::Pem)
            .then(|| CertificateHash(<sha2::Sha256 as sha2::Digest>::digest(bytes).into()));
        self.certificate = Some(loaded.certificate);
        self.chain = loaded.chain;
        Ok(loaded.warnings)
    }
}
