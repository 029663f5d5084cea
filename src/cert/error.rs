//! Why bytes could not be read as a certificate.

use super::NameError;
use super::tlv::TlvError;
/// Why bytes could not be read as a certificate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// Reading this form needs a feature the crate was built without.
    #[error("reading {what} needs the crate's `{feature}` feature, which this build does not have")]
    FeatureDisabled {
        /// The feature.
        feature: &'static str,
        /// What it reads.
        what: &'static str,
    },
    /// The input is empty.
    #[error("the certificate file is empty")]
    Empty,
    /// The bytes are not a DER X.509 certificate.
    #[error(
        "not an X.509 certificate ({detail}); give the signing certificate as a .cer/.crt file (DER) or PEM (-----BEGIN CERTIFICATE-----)"
    )]
    NotACertificate {
        /// What was wrong, in a few words.
        detail: String,
    },
    /// A PEM file without a `CERTIFICATE` block.
    #[error(
        "the PEM text has no CERTIFICATE block (found: {found}); export the certificate itself, e.g. `openssl x509 -in key-and-cert.pem -out cert.pem`"
    )]
    PemWithoutCertificate {
        /// The labels of the blocks that were found, or `nothing`.
        found: String,
    },
    /// A PEM `CERTIFICATE` block whose Base64 does not decode.
    #[error("PEM block {index} (CERTIFICATE) is not valid Base64")]
    PemBase64 {
        /// The 1-based position of the block in the file.
        index: usize,
    },
    /// A PKCS#12 / PFX file whose password is wrong (or which needs one and got none).
    #[error(
        "the PFX password is wrong (or the file needs one): give it with --password-env VAR (the name of an environment variable holding it)"
    )]
    Pkcs12Password,
    /// A PKCS#12 / PFX file that cannot be read.
    #[error("the PFX file cannot be read: {detail}")]
    Pkcs12 {
        /// What went wrong.
        detail: String,
    },
    /// A PKCS#12 / PFX file without any certificate.
    #[error("the PFX file holds no certificate")]
    Pkcs12NoCertificate,
    /// A PE file (plug-in assembly) without an Authenticode signature.
    #[error("{}", not_signed("assembly", file.as_deref()))]
    AssemblyNotSigned {
        /// The file, when it was read from one.
        file: Option<String>,
    },
    /// A file that starts like a PE file but is not one.
    #[error("this looks like a .dll but is not a valid PE file: {detail}")]
    NotPe {
        /// What went wrong.
        detail: String,
    },
    /// A zip file (NuGet package) without `.signature.p7s`.
    #[error("{}", not_signed("package", file.as_deref()))]
    PackageNotSigned {
        /// The file, when it was read from one.
        file: Option<String>,
    },
    /// The package's `.signature.p7s` entry is compressed: NuGet requires it stored (NU3005), so this is not a
    /// valid signed package and the platform will not accept its signature.
    #[error(
        "the package's .signature.p7s entry is compressed ({method}); NuGet requires the signature stored without compression (NU3005: the package signature file entry is invalid), so this is not a valid signed package: sign it again with `nuget sign` instead of repacking it with a zip tool"
    )]
    PackageSignatureCompressed {
        /// The entry's compression method.
        method: String,
    },
    /// A package whose primary signature is a repository signature: the plug-in package must be author-signed.
    #[error(
        "the package carries only a repository signature ({repository}); plug-in packages are author-signed with `nuget sign`"
    )]
    RepositorySignatureOnly {
        /// The repository certificate's subject.
        repository: String,
    },
    /// A zip file that cannot be read.
    #[error("the package (zip) cannot be read: {detail}")]
    Zip {
        /// What went wrong.
        detail: String,
    },
    /// A signature (PKCS#7 / CMS SignedData) that cannot be read.
    #[error("the signature cannot be read: {detail}")]
    SignatureMalformed {
        /// What went wrong.
        detail: String,
    },
    /// No certificate in the signature matches its signer.
    #[error("the signature does not include its signer's certificate{}", if *.unreadable_certificates { " (some certificates in it could not be read)" } else { "" })]
    SignerNotFound {
        /// Whether some certificates of the signature could not be parsed.
        unreadable_certificates: bool,
    },
    /// The certificate's issuer or subject name cannot be rendered as .NET renders it.
    #[error("the certificate's {which} name cannot be rendered: {source}")]
    Name {
        /// `issuer` or `subject`.
        which: &'static str,
        /// The reason.
        #[source]
        source: NameError,
    },
    /// The file is too large to be a certificate or a signed plug-in, or could not be read at all.
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    /// The file could not be read.
    #[error("cannot read certificate file {path}: {source}")]
    Io {
        /// The path given.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// What to say of an unsigned assembly or package: the user's own file in the command that signs it.
fn not_signed(kind: &str, file: Option<&str>) -> String {
    let quoted = |f: &str| if f.contains(char::is_whitespace) { format!("\"{f}\"") } else { f.to_owned() };
    match (kind, file) {
        ("assembly", Some(f)) => format!(
            "{f} is not signed (no Authenticode signature); sign it on any OS with `dataverse-mi sign {} --pfx signing.pfx --password-env PFX_PASSWORD` (a development certificate: `dataverse-mi cert new`), then register it again",
            quoted(f)
        ),
        ("assembly", None) => "the assembly is not signed (no Authenticode signature); sign it with a code-signing certificate (`dataverse-mi sign ASSEMBLY.dll --pfx signing.pfx --password-env PFX_PASSWORD`), then register it again".to_owned(),
        (_, Some(f)) => format!(
            "{f} is not signed (no .signature.p7s); sign it, e.g. `nuget sign {} -CertificatePath signing.pfx -CertificatePassword PASSWORD -Timestamper http://timestamp.digicert.com`, then register it again",
            quoted(f)
        ),
        (_, None) => "the package is not signed (no .signature.p7s); sign it with `nuget sign` and a code-signing certificate, then register it again".to_owned(),
    }
}

impl CertificateError {
    /// The same error, naming `path` where the message is about the file itself (it is not signed).
    pub(super) fn in_file(self, path: &std::path::Path) -> Self {
        let file = Some(path.display().to_string());
        match self {
            CertificateError::AssemblyNotSigned { file: None } => CertificateError::AssemblyNotSigned { file },
            CertificateError::PackageNotSigned { file: None } => CertificateError::PackageNotSigned { file },
            other => other,
        }
    }

    pub(super) fn der(detail: impl Into<String>) -> Self {
        CertificateError::NotACertificate { detail: detail.into() }
    }
}

pub(super) fn tlv_detail(e: TlvError, at: &str) -> CertificateError {
    CertificateError::der(format!("{e} in {at}"))
}
