//! A code-signing certificate for development, made the way `New-SelfSignedCertificate -Type CodeSigningCert`
//! makes one: a new key (RSA 3072 by default), SHA-256, key usage digitalSignature, extended key usage codeSigning
//! (1.3.6.1.5.5.7.3.3), the subject the user gives, written as a PFX (with its key) and a `.cer`.
//!
//! The subject is parsed strictly: what .NET would render differently than the user typed is refused, naming
//! why, since the version 2 subject hashes the name exactly as .NET renders it. A self-signed certificate is for
//! development only: Learn labels the self-signed subject "development only", the trusted issuer's "production".
//!
//! ```
//! use dataverse_mi::cert::{DevCertificateOptions, KeyAlgorithm, new_code_signing_certificate};
//! use dataverse_mi::secret::Secret;
//!
//! let options = DevCertificateOptions::new("CN=Contoso Plug-ins, O=Contoso, C=US").with_key(KeyAlgorithm::EcdsaP256);
//! let made = new_code_signing_certificate(&options)?;
//! assert_eq!(made.certificate().subject()?, "CN=Contoso Plug-ins, O=Contoso, C=US");
//! assert!(made.certificate().is_self_signed());
//! let pfx = made.to_pfx(&Secret::new("dev password"))?;
//! let back = dataverse_mi::cert::Certificate::from_pkcs12(&pfx, &Secret::new("dev password"))?;
//! assert_eq!(back.certificate, *made.certificate());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! It imports `cert`'s own files and `secret`: the core floor (no I/O).

use std::fmt;
use std::time::{Duration, SystemTime};

use super::{Certificate, NameAttribute, parse_dotnet_name};
use crate::secret::Secret;

/// The key of a new certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// RSA, 2048 bits (what `New-SelfSignedCertificate` makes by default).
    Rsa2048,
    /// RSA, 3072 bits: the default here (NIST's size for use beyond 2030).
    #[default]
    Rsa3072,
    /// RSA, 4096 bits.
    Rsa4096,
    /// ECDSA on P-256 with SHA-256. Authenticode and NuGet signatures with ECDSA keys are accepted by current
    /// Windows and NuGet, but the platform's own acceptance of them for plug-ins is not documented: prefer RSA.
    EcdsaP256,
}

impl KeyAlgorithm {
    /// The names the command line takes.
    pub const NAMES: &'static [&'static str] = &["rsa2048", "rsa3072", "rsa4096", "ecdsa-p256"];

    /// The algorithm for a command-line name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "rsa2048" => KeyAlgorithm::Rsa2048,
            "rsa3072" | "rsa" => KeyAlgorithm::Rsa3072,
            "rsa4096" => KeyAlgorithm::Rsa4096,
            "ecdsa-p256" | "ecdsa" | "p256" => KeyAlgorithm::EcdsaP256,
            _ => return None,
        })
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyAlgorithm::Rsa2048 => "RSA 2048",
            KeyAlgorithm::Rsa3072 => "RSA 3072",
            KeyAlgorithm::Rsa4096 => "RSA 4096",
            KeyAlgorithm::EcdsaP256 => "ECDSA P-256",
        })
    }
}

/// What to make: the subject, the key, the validity.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DevCertificateOptions {
    /// The subject as .NET prints it (`CN=Contoso Plug-ins, O=Contoso, C=US`): most specific first, `", "`
    /// between attributes, values with `,+="<>#;` or surrounding spaces in `"..."`.
    pub subject: String,
    /// The key.
    pub key: KeyAlgorithm,
    /// Valid from this instant (default: now).
    pub not_before: Option<SystemTime>,
    /// For this long (default: one year, as `New-SelfSignedCertificate`).
    pub valid_for: Duration,
}

impl DevCertificateOptions {
    /// A certificate for `subject`, RSA 3072, valid for a year from now.
    pub fn new(subject: impl Into<String>) -> Self {
        DevCertificateOptions {
            subject: subject.into(),
            key: KeyAlgorithm::default(),
            not_before: None,
            valid_for: Duration::from_secs(365 * 24 * 3600),
        }
    }

    /// With this key.
    pub fn with_key(mut self, key: KeyAlgorithm) -> Self {
        self.key = key;
        self
    }

    /// Valid from `at`.
    pub fn with_not_before(mut self, at: SystemTime) -> Self {
        self.not_before = Some(at);
        self
    }

    /// Valid for `duration` from its start.
    pub fn with_valid_for(mut self, duration: Duration) -> Self {
        self.valid_for = duration;
        self
    }
}

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The subject is not one this crate can write so that .NET renders it as typed.
    #[error("the subject '{subject}' is refused: {reason}")]
    Subject {
        /// The subject as given.
        subject: String,
        /// Why, and what to type instead where that is known.
        reason: String,
    },
    /// The validity cannot be written (before 1950, after 9999, or not after its start).
    #[error("the validity cannot be written: {detail}")]
    Validity {
        /// What is wrong.
        detail: String,
    },
    /// The key could not be made, or the certificate signed.
    #[error("the certificate could not be made: {detail}")]
    Crypto {
        /// What the crypto library said.
        detail: String,
    },
    /// The PFX could not be written.
    #[error("the PFX could not be written: {detail}")]
    Pfx {
        /// What the PKCS#12 writer said.
        detail: String,
    },
}

/// A new certificate with its private key. The key never shows in `Debug`.
pub struct DevCertificate {
    certificate: Certificate,
    /// The private key, PKCS#8 DER: only ever written into the PFX.
    key_pkcs8: Vec<u8>,
    key: KeyAlgorithm,
}

impl fmt::Debug for DevCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevCertificate")
            .field("certificate", &self.certificate)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl DevCertificate {
    /// The certificate (what the `.cer` holds).
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The key's algorithm.
    pub fn key_algorithm(&self) -> KeyAlgorithm {
        self.key
    }

    /// The certificate and its key as a PKCS#12 file (AES-256 and PBKDF2, SHA-256 MAC, as current Windows and
    /// OpenSSL write), opened with `password`.
    pub fn to_pfx(&self, password: &Secret) -> Result<Vec<u8>, GenerateError> {
        let pfx = |e: p12_keystore::error::Error| GenerateError::Pfx { detail: e.to_string() };
        let key = p12_keystore::PrivateKey::from_der(&self.key_pkcs8).map_err(pfx)?;
        let cert = p12_keystore::Certificate::from_der(self.certificate.der()).map_err(pfx)?;
        let local_key_id = sha2_id(self.certificate.der());
        let chain = p12_keystore::PrivateKeyChain::new(local_key_id, key, [cert]);
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry("dataverse-mi", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
        store.writer(password.expose()).write().map_err(pfx)
    }
}

fn sha2_id(der: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(der)[..20].to_vec()
}

/// The attribute types a new certificate's subject may hold, with their OIDs.
const ATTRIBUTES: &[(&str, &[u64])] = &[
    ("CN", &[2, 5, 4, 3]),
    ("O", &[2, 5, 4, 10]),
    ("OU", &[2, 5, 4, 11]),
    ("L", &[2, 5, 4, 7]),
    ("S", &[2, 5, 4, 8]),
    ("C", &[2, 5, 4, 6]),
    ("E", &[1, 2, 840, 113549, 1, 9, 1]),
    ("DC", &[0, 9, 2342, 19200300, 100, 1, 25]),
];

/// The subject's attributes, most specific first, as the user typed them, or why they are refused.
fn strict_subject(subject: &str) -> Result<Vec<NameAttribute>, GenerateError> {
    let refuse = |reason: String| GenerateError::Subject { subject: subject.to_owned(), reason };
    if subject.trim().is_empty() {
        return Err(refuse("it is empty; give at least a CN, e.g. --subject \"CN=Contoso Plug-ins\"".into()));
    }
    let attributes = parse_dotnet_name(subject);
    if attributes.is_empty() {
        return Err(refuse("it is not a distinguished name (`CN=..., O=...`)".into()));
    }
    if !attributes.iter().any(|a| a.key == "CN") {
        return Err(refuse("it has no CN: the version 1 subject and most tools name a certificate by its CN".into()));
    }
    let mut seen: Vec<&str> = Vec::new();
    for a in &attributes {
        if !ATTRIBUTES.iter().any(|(k, _)| *k == a.key) {
            let known: Vec<&str> = ATTRIBUTES.iter().map(|(k, _)| *k).collect();
            return Err(refuse(format!(
                "'{}' is not an attribute this tool writes (it writes {})",
                a.key,
                known.join(", ")
            )));
        }
        if seen.contains(&a.key.as_str()) {
            return Err(refuse(format!(
                "{} appears twice; a development certificate's name holds each attribute once",
                a.key
            )));
        }
        if a.value.is_empty() {
            return Err(refuse(format!("{} is empty", a.key)));
        }
        if a.key == "C" && !(a.value.len() == 2 && a.value.chars().all(|c| c.is_ascii_uppercase())) {
            return Err(refuse(format!("C is a two-letter country code in capitals (ISO 3166), not '{}'", a.value)));
        }
        seen.push(&a.key);
    }
    Ok(attributes)
}

/// Makes a self-signed code-signing certificate for development.
pub fn new_code_signing_certificate(options: &DevCertificateOptions) -> Result<DevCertificate, GenerateError> {
    let attributes = strict_subject(&options.subject)?;
    let crypto = |e: rcgen::Error| GenerateError::Crypto { detail: e.to_string() };
    let key_pair = match options.key {
        KeyAlgorithm::Rsa2048 => rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048),
        KeyAlgorithm::Rsa3072 => rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072),
        KeyAlgorithm::Rsa4096 => rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_4096),
        KeyAlgorithm::EcdsaP256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
    }
    .map_err(crypto)?;

    let mut params = rcgen::CertificateParams::default();
    let mut name = rcgen::DistinguishedName::new();
    // DER holds the least specific attribute first; .NET prints them reversed.
    for a in attributes.iter().rev() {
        let oid = ATTRIBUTES.iter().find(|(k, _)| *k == a.key).map(|(_, oid)| *oid).unwrap_or(&[2, 5, 4, 3]);
        let value = match a.key.as_str() {
            "E" | "DC" => rcgen::DnValue::Ia5String(a.value.clone().try_into().map_err(|_| {
                GenerateError::Subject { subject: options.subject.clone(), reason: format!("{} must be ASCII", a.key) }
            })?),
            "C" => rcgen::DnValue::PrintableString(a.value.clone().try_into().map_err(|_| GenerateError::Subject {
                subject: options.subject.clone(),
                reason: "C must be two capital letters".into(),
            })?),
            _ => rcgen::DnValue::Utf8String(a.value.clone()),
        };
        name.push(rcgen::DnType::from_oid(oid), value);
    }
    params.distinguished_name = name;
    let not_before = options.not_before.unwrap_or_else(SystemTime::now);
    let not_after = not_before
        .checked_add(options.valid_for)
        .ok_or_else(|| GenerateError::Validity { detail: "the end is past what a time can hold".into() })?;
    if options.valid_for.is_zero() {
        return Err(GenerateError::Validity { detail: "it must be valid for some time (--days 1 or more)".into() });
    }
    params.not_before = offset(not_before)?;
    params.not_after = offset(not_after)?;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    let mut serial = [0u8; 16];
    serial.copy_from_slice(&sha2_id(key_pair.public_key_raw())[..16]);
    // Positive and 16 bytes long whatever the hash: the top bit clear (a negative serial is refused by .NET), the
    // next one set (no leading zero byte, which DER would not write).
    serial[0] = (serial[0] & 0x7f) | 0x40;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let made = params.self_signed(&key_pair).map_err(crypto)?;
    let certificate = Certificate::from_der(made.der()).map_err(|e| GenerateError::Crypto { detail: e.to_string() })?;
    // What .NET prints for the name written must be what the user typed, byte for byte: the version 2 subject
    // hashes that text, and the user will compare it with what they typed.
    let rendered = certificate
        .subject()
        .map_err(|e| GenerateError::Subject { subject: options.subject.clone(), reason: e.to_string() })?;
    if rendered != options.subject {
        return Err(GenerateError::Subject {
            subject: options.subject.clone(),
            reason: format!(
                ".NET would print it as '{rendered}' (attributes joined by \", \", values in quotes only where .NET quotes them); type that, so that the name you see is the one the subject hashes"
            ),
        });
    }
    let key_pkcs8 = key_pair.serialize_der();
    Ok(DevCertificate { certificate, key_pkcs8, key: options.key })
}

fn offset(t: SystemTime) -> Result<time::OffsetDateTime, GenerateError> {
    let out = time::OffsetDateTime::from(t);
    if !(1950..=9999).contains(&out.year()) {
        return Err(GenerateError::Validity { detail: format!("{} is outside 1950 to 9999", out.year()) });
    }
    Ok(out)
}
