//! Signing certificates: loading, hashing, and the issuer and subject names exactly as .NET renders them.
//!
//! Everything the platform derives from a plug-in's signing certificate comes from here:
//! - [`Certificate::sha256`]: SHA-256 over the certificate's DER bytes (the `.cer`, never a `.pfx` file or a
//!   PEM file's text), written as lowercase hex in the self-signed `/h/` subject.
//! - [`Certificate::issuer`] / [`Certificate::subject`]: the names as .NET's `X509Certificate2.Issuer` /
//!   `.Subject` (see [`render_dotnet_name`] for the rules), hashed for the version 2 `/i/` and `/s/` segments.
//! - [`Certificate::sha1_thumbprint`]: the upper-case SHA-1 thumbprint of the deprecated version 0 format.
//!
//! ```
//! use dataverse_mi::cert::Certificate;
//!
//! let der = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/contoso-plugins.cer"))?;
//! let cert = Certificate::from_der(&der)?;
//! assert_eq!(cert.subject()?, "CN=Contoso Plug-ins, O=\"Contoso, Ltd\", C=US");
//! assert!(cert.is_self_signed());
//! assert_eq!(cert.sha256().to_string().len(), 64);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub(crate) mod dn;
mod hash;
mod signed;
pub(crate) mod tlv;

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;
use std::time::SystemTime;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::secret::Secret;

pub use dn::{NameAttribute, NameError, attribute_short_name, parse_dotnet_name, render_dotnet_name};
pub use hash::{CertificateHash, HashParseError, NameHash, Thumbprint};

use tlv::{Reader, Tlv, TlvError, tag};

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
    #[error(
        "the assembly is not signed; sign it first, e.g. `signtool sign /fd SHA256 /f signing.pfx /p PASSWORD Contoso.Plugins.dll` (or osslsigncode on Linux), then register it again"
    )]
    AssemblyNotSigned,
    /// A file that starts like a PE file but is not one.
    #[error("this looks like a .dll but is not a valid PE file: {detail}")]
    NotPe {
        /// What went wrong.
        detail: String,
    },
    /// A zip file (NuGet package) without `.signature.p7s`.
    #[error(
        "the package is not signed (no .signature.p7s); sign it with `nuget sign Contoso.Plugins.1.0.0.nupkg -CertificatePath signing.pfx -CertificatePassword PASSWORD -Timestamper http://timestamp.digicert.com`"
    )]
    PackageNotSigned,
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

impl CertificateError {
    fn der(detail: impl Into<String>) -> Self {
        CertificateError::NotACertificate { detail: detail.into() }
    }
}

fn tlv_detail(e: TlvError, at: &str) -> CertificateError {
    CertificateError::der(format!("{e} in {at}"))
}

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

/// An X.509 certificate, with everything the platform derives from it computed at most once.
///
/// The names are rendered when the certificate is read. A name that cannot be rendered does not make the
/// certificate unreadable: its SHA-256 (the self-signed `/h/` form) needs no name, and only what needs the name
/// ([`Certificate::issuer`], [`Certificate::subject`], the name hashes) answers with the error, naming the attribute
/// and why. The SHA-256 is computed on first use, since a trusted-CA subject never needs it.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    issuer_raw: Range<usize>,
    subject_raw: Range<usize>,
    validity: Range<usize>,
    serial: Range<usize>,
    ski: Option<Range<usize>>,
    /// `None` when the issuer name is byte-for-byte the subject name (every self-signed certificate).
    issuer: Option<Result<String, Box<NameError>>>,
    subject: Result<String, Box<NameError>>,
    sha256: OnceLock<CertificateHash>,
    self_signed: bool,
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        // Everything else is derived from the DER bytes.
        self.der == other.der
    }
}

impl Eq for Certificate {}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject_text())
            .field("issuer", &self.issuer_text())
            .field("sha256", &self.sha256())
            .field("self_signed", &self.self_signed)
            .finish_non_exhaustive()
    }
}

const OID_SKI: &[u8] = &[0x55, 0x1d, 0x0e];
const OID_AKI: &[u8] = &[0x55, 0x1d, 0x23];

impl Certificate {
    /// Reads a certificate from its DER bytes (the whole input must be one certificate).
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        if der.is_empty() {
            return Err(CertificateError::Empty);
        }
        let mut outer = Reader::new(der);
        let cert = outer.read(tag::SEQUENCE).map_err(|e| tlv_detail(e, "Certificate"))?;
        outer.finish().map_err(|e| tlv_detail(e, "the file (after the certificate)"))?;
        let mut c = outer.inside(&cert);
        let tbs = c.read(tag::SEQUENCE).map_err(|e| tlv_detail(e, "tbsCertificate"))?;
        c.read(tag::SEQUENCE).map_err(|e| tlv_detail(e, "signatureAlgorithm"))?;
        c.read(tag::BIT_STRING).map_err(|e| tlv_detail(e, "signatureValue"))?;
        c.finish().map_err(|e| tlv_detail(e, "Certificate"))?;

        let mut t = c.inside(&tbs);
        if let Some(v) = t.read_optional(0xa0).map_err(|e| tlv_detail(e, "version"))? {
            let mut vr = t.inside(&v);
            vr.read(tag::INTEGER).map_err(|e| tlv_detail(e, "version"))?;
            vr.finish().map_err(|e| tlv_detail(e, "version"))?;
        }
        let serial = t.read(tag::INTEGER).map_err(|e| tlv_detail(e, "serialNumber"))?;
        t.read(tag::SEQUENCE).map_err(|e| tlv_detail(e, "signature"))?;
        let issuer = t.read(tag::SEQUENCE).map_err(|e| tlv_detail(e, "issuer"))?;
        let validity = t.read(tag::SEQUENCE).map_err(|e| tlv_detail(e, "validity"))?;
        let subject = t.read(tag::SEQUENCE).map_err(|e| tlv_detail(e, "subject"))?;
        t.read(tag::SEQUENCE).map_err(|e| tlv_detail(e, "subjectPublicKeyInfo"))?;
        t.read_optional(0x81).map_err(|e| tlv_detail(e, "issuerUniqueID"))?;
        t.read_optional(0x82).map_err(|e| tlv_detail(e, "subjectUniqueID"))?;
        let extensions = t.read_optional(0xa3).map_err(|e| tlv_detail(e, "extensions"))?;
        t.finish().map_err(|e| tlv_detail(e, "tbsCertificate"))?;

        let (ski, aki) = match &extensions {
            Some(ext) => key_identifiers(&t, ext)?,
            None => (None, None),
        };
        let names_equal = der[issuer.whole.clone()] == der[subject.whole.clone()];
        let subject_text = dn::render_name_value(&t, &subject).map_err(Box::new);
        let issuer_text = if names_equal { None } else { Some(dn::render_name_value(&t, &issuer).map_err(Box::new)) };
        // Self-signed: issued to itself by name, and, when both key identifiers are present, by key too
        // (a CA can issue a certificate with its own name but another key; that one is not self-signed).
        let keys_agree = match (&ski, &aki) {
            (Some(s), Some(a)) => der[s.clone()] == der[a.clone()],
            _ => true,
        };
        Ok(Certificate {
            sha256: OnceLock::new(),
            der: der.to_vec(),
            issuer_raw: issuer.whole,
            subject_raw: subject.whole,
            validity: validity.value,
            serial: serial.value,
            ski: ski.clone(),
            issuer: issuer_text,
            subject: subject_text,
            self_signed: names_equal && keys_agree,
        })
    }

    /// Reads the first certificate of PEM text, noting any others (readable ones go to
    /// [`LoadedCertificate::chain`]) and any skipped blocks.
    pub fn from_pem(text: &str) -> Result<LoadedCertificate, CertificateError> {
        let mut first: Option<Vec<u8>> = None;
        let mut chain = Vec::new();
        let mut total = 0usize;
        let mut skipped = Vec::new();
        for (index, block) in pem_blocks(text).enumerate() {
            if block.label == "CERTIFICATE" || block.label == "X509 CERTIFICATE" {
                total += 1;
                let compact: String = block.body.chars().filter(|c| !c.is_whitespace()).collect();
                let der = base64::engine::general_purpose::STANDARD.decode(compact.as_bytes());
                if first.is_none() {
                    first = Some(der.map_err(|_| CertificateError::PemBase64 { index: index + 1 })?);
                } else if let Some(other) = der.ok().and_then(|d| Certificate::from_der(&d).ok()) {
                    // The chain is a help (e.g. to recognise a CA's hash); an unreadable extra block is not an error.
                    chain.push(other);
                }
            } else {
                skipped.push(block.label.to_owned());
            }
        }
        let Some(der) = first else {
            return Err(CertificateError::PemWithoutCertificate {
                found: if skipped.is_empty() { "nothing".to_owned() } else { skipped.join(", ") },
            });
        };
        let certificate = Certificate::from_der(&der)?;
        let mut warnings = Vec::new();
        if total > 1 {
            warnings.push(LoadWarning::ExtraCertificates { total });
        }
        if !skipped.is_empty() {
            warnings.push(LoadWarning::SkippedPemBlocks { labels: skipped });
        }
        Ok(LoadedCertificate { certificate, format: CertificateFormat::Pem, warnings, chain })
    }

    /// Reads a certificate from a file's bytes, whatever the form: DER, PEM, PKCS#12 (with an empty password),
    /// a signed assembly or a signed NuGet package. See [`from_bytes_with_password`](Self::from_bytes_with_password).
    pub fn from_bytes(bytes: &[u8]) -> Result<LoadedCertificate, CertificateError> {
        Self::from_bytes_with_password(bytes, None)
    }

    /// Reads a certificate from a file's bytes, sniffing the form; `password` opens a PKCS#12 file.
    pub fn from_bytes_with_password(
        bytes: &[u8],
        password: Option<&Secret>,
    ) -> Result<LoadedCertificate, CertificateError> {
        if bytes.is_empty() {
            return Err(CertificateError::Empty);
        }
        if bytes.starts_with(b"MZ") {
            return Certificate::from_signed_assembly(bytes);
        }
        if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
            return Certificate::from_signed_package(bytes);
        }
        if looks_like_pkcs12(bytes) {
            return Certificate::from_pkcs12(bytes, password.unwrap_or(&Secret::new("")));
        }
        let text_start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(0);
        if bytes[text_start..].starts_with(b"-----BEGIN") || contains(bytes, b"-----BEGIN ") {
            let text = String::from_utf8_lossy(bytes);
            return Certificate::from_pem(&text);
        }
        Ok(LoadedCertificate {
            certificate: Certificate::from_der(bytes)?,
            format: CertificateFormat::Der,
            warnings: Vec::new(),
            chain: Vec::new(),
        })
    }

    /// Reads the leaf certificate of a PKCS#12 (`.pfx`/`.p12`) file: the one with a private key, else the one
    /// that issued no other certificate in the file. Legacy (RC2, 3DES) and modern (AES, PBKDF2) encryptions.
    ///
    /// Needs the `pkcs12` feature (default); without it, [`CertificateError::FeatureDisabled`].
    pub fn from_pkcs12(bytes: &[u8], password: &Secret) -> Result<LoadedCertificate, CertificateError> {
        #[cfg(feature = "pkcs12")]
        return signed::from_pkcs12(bytes, password);
        #[cfg(not(feature = "pkcs12"))]
        {
            let _ = (bytes, password);
            Err(CertificateError::FeatureDisabled { feature: "pkcs12", what: "PKCS#12 / PFX files" })
        }
    }

    /// Reads the signer's certificate from an Authenticode-signed plug-in assembly (`.dll`), matched by the
    /// signature's issuer and serial number (or key identifier), with the other certificates of the signature.
    ///
    /// Needs the `signed-files` feature (default); without it, [`CertificateError::FeatureDisabled`].
    pub fn from_signed_assembly(bytes: &[u8]) -> Result<LoadedCertificate, CertificateError> {
        #[cfg(feature = "signed-files")]
        return signed::from_signed_assembly(bytes);
        #[cfg(not(feature = "signed-files"))]
        {
            let _ = bytes;
            Err(CertificateError::FeatureDisabled { feature: "signed-files", what: "signed plug-in assemblies" })
        }
    }

    /// Reads the author signer's certificate from a signed plug-in package (`.nupkg`); a repository
    /// countersignature is ignored.
    ///
    /// Needs the `signed-files` feature (default); without it, [`CertificateError::FeatureDisabled`].
    pub fn from_signed_package(bytes: &[u8]) -> Result<LoadedCertificate, CertificateError> {
        #[cfg(feature = "signed-files")]
        return signed::from_signed_package(bytes);
        #[cfg(not(feature = "signed-files"))]
        {
            let _ = bytes;
            Err(CertificateError::FeatureDisabled { feature: "signed-files", what: "signed plug-in packages" })
        }
    }

    /// Reads a certificate file of any supported form. The only functions of this module that do I/O are this
    /// one and [`from_file_with_password`](Self::from_file_with_password).
    pub fn from_file(path: impl AsRef<Path>) -> Result<LoadedCertificate, CertificateError> {
        Self::from_file_with_password(path, None)
    }

    /// Reads a certificate file of any supported form; `password` opens a PKCS#12 file.
    pub fn from_file_with_password(
        path: impl AsRef<Path>,
        password: Option<&Secret>,
    ) -> Result<LoadedCertificate, CertificateError> {
        use std::io::{Read as _, Seek as _};
        let path = path.as_ref();
        let io = |source| CertificateError::Io { path: path.display().to_string(), source };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let metadata = file.metadata().map_err(io)?;
        let limit = crate::files::MAX_CERTIFICATE_FILE;
        if !metadata.is_file() || metadata.len() > limit {
            // A device, a pipe, or a file too large to be what it should: read up to the bound, refused past it.
            let bytes = crate::files::read_bounded(path, limit, "certificate file")?;
            return Certificate::from_bytes_with_password(&bytes, password);
        }
        let mut magic = [0u8; 4];
        let n = file.read(&mut magic).map_err(io)?;
        let large = metadata.len() > 256 * 1024;
        if large && n == 4 && (magic == *b"PK\x03\x04" || magic == *b"PK\x05\x06") {
            // A large package: read its directory and signature only, not the assemblies inside.
            file.rewind().map_err(io)?;
            #[cfg(feature = "signed-files")]
            return signed::from_signed_package_reader(std::io::BufReader::new(file));
            #[cfg(not(feature = "signed-files"))]
            return Err(CertificateError::FeatureDisabled { feature: "signed-files", what: "signed plug-in packages" });
        }
        let mut bytes = magic[..n].to_vec();
        file.take(limit).read_to_end(&mut bytes).map_err(io)?;
        Certificate::from_bytes_with_password(&bytes, password)
    }

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
        let issuer = keep(self.issuer(), self.issuer.is_some());
        let cn = |n: &Option<String>| n.as_deref().and_then(crate::subject::v1_simple_name);
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

    /// The certificate's DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The issuer name exactly as .NET's `X509Certificate2.Issuer`, or why it cannot be rendered.
    pub fn issuer(&self) -> Result<&str, CertificateError> {
        self.issuer_name().as_deref().map_err(|e| CertificateError::Name { which: "issuer", source: (**e).clone() })
    }

    /// The subject name exactly as .NET's `X509Certificate2.Subject`, or why it cannot be rendered.
    pub fn subject(&self) -> Result<&str, CertificateError> {
        self.subject.as_deref().map_err(|e| CertificateError::Name { which: "subject", source: (**e).clone() })
    }

    /// The subject name for a message: the name, or why it cannot be read, in parentheses.
    pub fn subject_text(&self) -> String {
        self.subject().map(str::to_owned).unwrap_or_else(|e| format!("({e})"))
    }

    /// The issuer name for a message: the name, or why it cannot be read, in parentheses.
    pub fn issuer_text(&self) -> String {
        self.issuer().map(str::to_owned).unwrap_or_else(|e| format!("({e})"))
    }

    fn issuer_name(&self) -> &Result<String, Box<NameError>> {
        self.issuer.as_ref().unwrap_or(&self.subject)
    }

    /// The serial number's content bytes (big-endian two's complement, as encoded).
    pub fn serial_bytes(&self) -> &[u8] {
        &self.der[self.serial.clone()]
    }

    /// The subject key identifier extension's value, if present.
    pub fn subject_key_id(&self) -> Option<&[u8]> {
        self.ski.as_ref().map(|r| &self.der[r.clone()])
    }

    /// The DER encoding of the issuer name.
    pub fn issuer_der(&self) -> &[u8] {
        &self.der[self.issuer_raw.clone()]
    }

    /// The DER encoding of the subject name.
    pub fn subject_der(&self) -> &[u8] {
        &self.der[self.subject_raw.clone()]
    }

    /// SHA-256 over the DER bytes: the `/h/` value of a self-signed subject.
    pub fn sha256(&self) -> CertificateHash {
        *self.sha256.get_or_init(|| CertificateHash(Sha256::digest(&self.der).into()))
    }

    /// The SHA-1 thumbprint (upper-case hex when displayed), used only by the deprecated version 0 format.
    pub fn sha1_thumbprint(&self) -> Thumbprint {
        Thumbprint(Sha1::digest(&self.der).into())
    }

    /// `Base64URL(SHA-256(UTF-8(issuer)))`: the version 2 `/i/` segment.
    pub fn issuer_hash(&self) -> Result<NameHash, CertificateError> {
        self.issuer().map(NameHash::of_name)
    }

    /// `Base64URL(SHA-256(UTF-8(subject)))`: the version 2 `/s/` segment.
    pub fn subject_hash(&self) -> Result<NameHash, CertificateError> {
        self.subject().map(NameHash::of_name)
    }

    /// The full X.509 structure, decoded by the `x509-cert` crate, for fields this crate does not interpret
    /// (extensions, the public key). Stricter than [`Certificate::from_der`]: a certificate Windows accepts may
    /// still fail here (e.g. a negative serial number).
    pub fn x509(&self) -> Result<x509_cert::Certificate, CertificateError> {
        use der::Decode as _;
        x509_cert::Certificate::from_der(&self.der).map_err(|e| CertificateError::der(format!("x509-cert: {e}")))
    }

    /// The validity period. Signing certificates expire; the platform then refuses the plug-in's signature,
    /// whatever the FIC says.
    pub fn validity(&self) -> Result<Validity, CertificateError> {
        let seq = Tlv { tag: tag::SEQUENCE, whole: self.validity.clone(), value: self.validity.clone() };
        let mut times = Reader::new(&self.der).inside(&seq);
        let not_before = times.read_any().map_err(|e| tlv_detail(e, "validity"))?;
        let not_after = times.read_any().map_err(|e| tlv_detail(e, "validity"))?;
        times.finish().map_err(|e| tlv_detail(e, "validity"))?;
        Ok(Validity { not_before: self.time(&not_before)?, not_after: self.time(&not_after)? })
    }

    fn time(&self, t: &Tlv) -> Result<SystemTime, CertificateError> {
        use der::Decode as _;
        use der::asn1::{GeneralizedTime, UtcTime};
        let bytes = &self.der[t.whole.clone()];
        let decoded = match t.tag {
            0x17 => UtcTime::from_der(bytes).map(|t| t.to_system_time()),
            0x18 => GeneralizedTime::from_der(bytes).map(|t| t.to_system_time()),
            other => return Err(CertificateError::der(format!("validity: unexpected tag 0x{other:02x}"))),
        };
        decoded.map_err(|e| CertificateError::der(format!("validity: {e}")))
    }

    /// Whether the certificate is self-signed.
    ///
    /// True when the issuer and subject names are byte-for-byte equal and, if the certificate carries both
    /// a subject key identifier and an authority key identifier, the two are equal. The signature itself
    /// is not verified: that needs every signature algorithm's code, and the answer only picks the default
    /// subject kind (`/h/` or `/i/../s/..`), which callers can always choose explicitly.
    pub fn is_self_signed(&self) -> bool {
        self.self_signed
    }
}

/// A certificate's validity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Not valid before this instant.
    pub not_before: SystemTime,
    /// Not valid after this instant.
    pub not_after: SystemTime,
}

impl Validity {
    /// Whether `at` falls within the period.
    pub fn contains(&self, at: SystemTime) -> bool {
        self.not_before <= at && at <= self.not_after
    }
}

impl fmt::Display for Validity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |t: SystemTime| match der::DateTime::from_system_time(t) {
            Ok(d) => d.to_string(),
            Err(_) => "(out of range)".to_owned(),
        };
        write!(f, "{} to {}", show(self.not_before), show(self.not_after))
    }
}

type KeyIds = (Option<Range<usize>>, Option<Range<usize>>);

/// Finds the subject key identifier and the authority key identifier's keyIdentifier, as byte ranges.
fn key_identifiers(parent: &Reader<'_>, extensions: &tlv::Tlv) -> Result<KeyIds, CertificateError> {
    let bad = |e| tlv_detail(e, "extensions");
    let mut wrapper = parent.inside(extensions);
    let list = wrapper.read(tag::SEQUENCE).map_err(bad)?;
    wrapper.finish().map_err(bad)?;
    let mut exts = wrapper.inside(&list);
    let buf = exts.buf();
    let (mut ski, mut aki) = (None, None);
    while !exts.is_empty() {
        let ext = exts.read(tag::SEQUENCE).map_err(bad)?;
        let mut e = exts.inside(&ext);
        let oid = e.read(tag::OID).map_err(bad)?;
        e.read_optional(tag::BOOLEAN).map_err(bad)?;
        let value = e.read(tag::OCTET_STRING).map_err(bad)?;
        e.finish().map_err(bad)?;
        let oid = &buf[oid.value.clone()];
        let mut v = e.inside(&value);
        // A malformed key identifier extension only means we cannot use it; it does not make the
        // certificate unreadable (Windows loads such certificates too).
        if oid == OID_SKI {
            if let Ok(id) = v.read(tag::OCTET_STRING) {
                ski = Some(id.value);
            }
        } else if oid == OID_AKI
            && let Ok(seq) = v.read(tag::SEQUENCE)
            && let Ok(Some(id)) = v.inside(&seq).read_optional(0x80)
        {
            aki = Some(id.value);
        }
    }
    Ok((ski, aki))
}

/// PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, macData OPTIONAL }
fn looks_like_pkcs12(bytes: &[u8]) -> bool {
    let mut r = Reader::new(bytes);
    let Ok(seq) = r.read_any() else { return false };
    if seq.tag != tag::SEQUENCE {
        return false;
    }
    let mut inner = r.inside(&seq);
    match inner.read(tag::INTEGER) {
        Ok(v) => bytes[v.value.clone()] == [3] && inner.peek_tag() == Some(tag::SEQUENCE),
        Err(_) => false,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

struct PemBlock<'a> {
    label: &'a str,
    body: &'a str,
}

/// The `-----BEGIN X-----` ... `-----END X-----` blocks of a text, in order; anything between blocks is ignored.
fn pem_blocks(text: &str) -> impl Iterator<Item = PemBlock<'_>> {
    let mut rest = text;
    std::iter::from_fn(move || {
        loop {
            let start = rest.find("-----BEGIN ")?;
            let after = &rest[start + "-----BEGIN ".len()..];
            let Some(label_end) = after.find("-----") else {
                rest = "";
                return None;
            };
            let label = after[..label_end].trim();
            let body_start = &after[label_end + 5..];
            let end_marker = format!("-----END {label}-----");
            match body_start.find(&end_marker) {
                Some(end) => {
                    rest = &body_start[end + end_marker.len()..];
                    return Some(PemBlock { label, body: &body_start[..end] });
                }
                None => {
                    // A block without its END line is skipped; look for the next BEGIN.
                    rest = body_start;
                    continue;
                }
            }
        }
    })
}

#[cfg(test)]
mod feature_tests {
    /// Built without a reader's feature, the entry point stays and says which feature it needs.
    #[test]
    #[cfg(not(feature = "pkcs12"))]
    fn pkcs12_without_its_feature_says_so() {
        let err = super::Certificate::from_pkcs12(b"not read", &crate::secret::Secret::new("x")).unwrap_err();
        assert!(err.to_string().contains("`pkcs12` feature"), "{err}");
    }

    #[test]
    #[cfg(not(feature = "signed-files"))]
    fn signed_files_without_their_feature_say_so() {
        for err in [
            super::Certificate::from_signed_assembly(b"MZ").unwrap_err(),
            super::Certificate::from_signed_package(b"PK").unwrap_err(),
        ] {
            assert!(err.to_string().contains("`signed-files` feature"), "{err}");
        }
    }

    #[test]
    #[cfg(all(feature = "client", not(feature = "spec-toml")))]
    fn toml_specs_without_their_feature_say_so() {
        let err = crate::provision::ProvisionSpec::from_toml("").unwrap_err();
        assert!(err.to_string().contains("`spec-toml` feature"), "{err}");
    }
}
