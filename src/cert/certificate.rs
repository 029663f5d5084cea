//! The certificate itself: its DER bytes, read once, and everything the platform derives from them (names as .NET
//! renders them, hashes, validity, whether it is self-signed). Reading other forms is `load`'s.

use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;
use std::time::SystemTime;

use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::error::tlv_detail;
use super::tlv::{self, Reader, Tlv, tag};
use super::{CertificateError, CertificateHash, NameError, NameHash, Thumbprint, dn};

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
}

impl Certificate {
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

    /// Whether the issuer name differs from the subject name byte for byte (false for every self-signed
    /// certificate), so that a message about a name that cannot be rendered is said once.
    pub(super) fn issuer_differs(&self) -> bool {
        self.issuer.is_some()
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
