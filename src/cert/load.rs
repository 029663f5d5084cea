//! Reading a certificate from whatever a user has: DER, PEM, a PKCS#12 file, a signed assembly or package, or a
//! file of any of these. The entry points sniff the form and hand the bytes to the reader for it.

use std::path::Path;

use base64::Engine as _;

use super::tlv::{Reader, tag};
use super::{Certificate, CertificateError, CertificateFormat, LoadWarning, LoadedCertificate};
use crate::secret::Secret;

impl Certificate {
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
        return super::signed::from_pkcs12(bytes, password);
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
        return super::signed::from_signed_assembly(bytes);
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
        return super::signed::from_signed_package(bytes);
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
        let path = path.as_ref();
        // A message about the file (unsigned, say) names the user's file, not an example one.
        Self::read_file(path, password).map_err(|e| e.in_file(path))
    }

    fn read_file(path: &Path, password: Option<&Secret>) -> Result<LoadedCertificate, CertificateError> {
        use std::io::{Read as _, Seek as _};
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
            return super::signed::from_signed_package_reader(std::io::BufReader::new(file));
            #[cfg(not(feature = "signed-files"))]
            return Err(CertificateError::FeatureDisabled { feature: "signed-files", what: "signed plug-in packages" });
        }
        let mut bytes = magic[..n].to_vec();
        file.take(limit).read_to_end(&mut bytes).map_err(io)?;
        Certificate::from_bytes_with_password(&bytes, password)
    }
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
