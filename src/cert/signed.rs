//! Certificates where users have them: PKCS#12 files, Authenticode-signed assemblies, signed NuGet packages.
//!
//! Signed artifacts carry a CMS `SignedData`. It is read with the crate's own DER walker rather than a general
//! CMS library: the certificate's SHA-256 must be computed over its bytes *exactly as embedded*, and a library
//! that decodes and re-encodes certificates may change them (DER re-sorting of multi-valued names) or refuse
//! certificates that Windows accepts.

// The CMS reader serves the signed-file readers only.
#![cfg_attr(not(feature = "signed-files"), allow(dead_code))]

use std::ops::Range;

use super::tlv::{Reader, Tlv, TlvError, tag};
use super::{Certificate, CertificateError, CertificateFormat, LoadedCertificate};
#[cfg(feature = "pkcs12")]
use crate::secret::Secret;

const OID_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const OID_COMMITMENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x02, 0x10];
const OID_PROOF_OF_RECEIPT: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x06, 0x02];

/// WIN_CERTIFICATE type of a PKCS#7 SignedData.
const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 0x0002;

fn malformed(what: &str, e: TlvError) -> CertificateError {
    CertificateError::SignatureMalformed { detail: format!("{what}: {e}") }
}

/// What a `SignedData` says about its signer.
#[derive(Debug)]
pub(crate) struct SignedData {
    pub(crate) signer: Certificate,
    pub(crate) others: Vec<Certificate>,
    /// The primary signer's commitment type is proofOfReceipt: a repository signature.
    pub(crate) repository_signature: bool,
}

enum SignerId {
    IssuerSerial { issuer: Range<usize>, serial: Range<usize> },
    KeyId(Range<usize>),
}

/// Reads a DER `ContentInfo` holding a `SignedData` and finds the primary signer's certificate by the
/// SignerInfo's issuer and serial number, or subject key identifier.
pub(crate) fn parse_signed_data(der: &[u8]) -> Result<SignedData, CertificateError> {
    let mut r = Reader::new(der);
    let content_info = r.read(tag::SEQUENCE).map_err(|e| malformed("ContentInfo", e))?;
    let mut ci = r.inside(&content_info);
    let content_type = ci.read(tag::OID).map_err(|e| malformed("contentType", e))?;
    if der[content_type.value.clone()] != *OID_SIGNED_DATA {
        return Err(CertificateError::SignatureMalformed { detail: "the content is not a SignedData".into() });
    }
    let explicit = ci.read(0xa0).map_err(|e| malformed("content", e))?;
    let mut wrapper = ci.inside(&explicit);
    let sd = wrapper.read(tag::SEQUENCE).map_err(|e| malformed("SignedData", e))?;
    let mut s = wrapper.inside(&sd);
    s.read(tag::INTEGER).map_err(|e| malformed("version", e))?;
    s.read(tag::SET).map_err(|e| malformed("digestAlgorithms", e))?;
    s.read(tag::SEQUENCE).map_err(|e| malformed("encapContentInfo", e))?;
    let certs = s.read_optional(0xa0).map_err(|e| malformed("certificates", e))?;
    s.read_optional(0xa1).map_err(|e| malformed("crls", e))?;
    let signer_infos = s.read(tag::SET).map_err(|e| malformed("signerInfos", e))?;

    // The bag: certificates only (other CertificateChoices are skipped); ones we cannot read are skipped too,
    // unless one of them turns out to be the signer.
    let mut bag: Vec<(Tlv, Option<Certificate>)> = Vec::new();
    if let Some(certs) = &certs {
        let mut c = s.inside(certs);
        while !c.is_empty() {
            let item = c.read_any().map_err(|e| malformed("certificates", e))?;
            if item.tag == tag::SEQUENCE {
                let parsed = Certificate::from_der(&der[item.whole.clone()]).ok();
                bag.push((item, parsed));
            }
        }
    }

    let mut infos = s.inside(&signer_infos);
    let first = infos
        .read(tag::SEQUENCE)
        .map_err(|_| CertificateError::SignatureMalformed { detail: "the signature has no SignerInfo".into() })?;
    let mut si = infos.inside(&first);
    si.read(tag::INTEGER).map_err(|e| malformed("SignerInfo version", e))?;
    let sid = si.read_any().map_err(|e| malformed("SignerInfo sid", e))?;
    let signer_id = match sid.tag {
        tag::SEQUENCE => {
            let mut ias = si.inside(&sid);
            let issuer = ias.read(tag::SEQUENCE).map_err(|e| malformed("issuerAndSerialNumber", e))?;
            let serial = ias.read(tag::INTEGER).map_err(|e| malformed("issuerAndSerialNumber", e))?;
            SignerId::IssuerSerial { issuer: issuer.whole, serial: serial.value }
        }
        0x80 => SignerId::KeyId(sid.value),
        other => {
            return Err(CertificateError::SignatureMalformed {
                detail: format!("unknown SignerIdentifier tag 0x{other:02x}"),
            });
        }
    };
    si.read(tag::SEQUENCE).map_err(|e| malformed("digestAlgorithm", e))?;
    let signed_attrs = si.read_optional(0xa0).map_err(|e| malformed("signedAttrs", e))?;
    let repository_signature = match &signed_attrs {
        Some(attrs) => commitment_is_receipt(&si, attrs, der)?,
        None => false,
    };

    let position = bag.iter().position(|(_, cert)| match (cert, &signer_id) {
        (Some(c), SignerId::IssuerSerial { issuer, serial }) => {
            c.issuer_der() == &der[issuer.clone()] && c.serial_bytes() == &der[serial.clone()]
        }
        (Some(c), SignerId::KeyId(id)) => c.subject_key_id() == Some(&der[id.clone()]),
        (None, _) => false,
    });
    let Some(index) = position else {
        let unreadable = bag.iter().any(|(_, c)| c.is_none());
        return Err(CertificateError::SignerNotFound { unreadable_certificates: unreadable });
    };
    let mut signer = None;
    let mut others = Vec::new();
    for (i, (_, cert)) in bag.into_iter().enumerate() {
        match (i == index, cert) {
            (true, c) => signer = c,
            (false, Some(c)) => others.push(c),
            (false, None) => {}
        }
    }
    let signer = signer.ok_or(CertificateError::SignerNotFound { unreadable_certificates: true })?;
    Ok(SignedData { signer, others, repository_signature })
}

/// Whether the signed attributes carry a commitment-type-indication of proofOfReceipt (NuGet's repository
/// signature); proofOfOrigin is the author's.
fn commitment_is_receipt(parent: &Reader<'_>, attrs: &Tlv, der: &[u8]) -> Result<bool, CertificateError> {
    let mut a = parent.inside(attrs);
    while !a.is_empty() {
        let attr = a.read(tag::SEQUENCE).map_err(|e| malformed("signed attribute", e))?;
        let mut at = a.inside(&attr);
        let kind = at.read(tag::OID).map_err(|e| malformed("signed attribute", e))?;
        if der[kind.value.clone()] != *OID_COMMITMENT_TYPE {
            continue;
        }
        let values = at.read(tag::SET).map_err(|e| malformed("commitment type", e))?;
        let mut v = at.inside(&values);
        let indication = v.read(tag::SEQUENCE).map_err(|e| malformed("commitment type", e))?;
        let id = v.inside(&indication).read(tag::OID).map_err(|e| malformed("commitment type", e))?;
        return Ok(der[id.value] == *OID_PROOF_OF_RECEIPT);
    }
    Ok(false)
}

fn signed_result(sd: SignedData, format: CertificateFormat) -> LoadedCertificate {
    LoadedCertificate { certificate: sd.signer, format, warnings: Vec::new(), chain: sd.others }
}

/// Reads the signer's certificate from an Authenticode-signed PE file (a plug-in assembly).
#[cfg(feature = "signed-files")]
pub(crate) fn from_signed_assembly(data: &[u8]) -> Result<LoadedCertificate, CertificateError> {
    use object::read::pe::{PeFile32, PeFile64};
    let not_pe = |e: object::read::Error| CertificateError::NotPe { detail: e.to_string() };
    let dir = match object::FileKind::parse(data).map_err(not_pe)? {
        object::FileKind::Pe32 => {
            PeFile32::parse(data).map_err(not_pe)?.data_directory(object::pe::IMAGE_DIRECTORY_ENTRY_SECURITY).copied()
        }
        object::FileKind::Pe64 => {
            PeFile64::parse(data).map_err(not_pe)?.data_directory(object::pe::IMAGE_DIRECTORY_ENTRY_SECURITY).copied()
        }
        other => return Err(CertificateError::NotPe { detail: format!("a {other:?} file") }),
    };
    // The security directory's "virtual address" is a file offset.
    let (offset, size) = dir.map(|d| d.address_range()).unwrap_or((0, 0));
    if offset == 0 || size == 0 {
        return Err(CertificateError::AssemblyNotSigned { file: None });
    }
    let start = offset as usize;
    let table = start.checked_add(size as usize).and_then(|end| data.get(start..end)).ok_or_else(|| {
        CertificateError::SignatureMalformed { detail: "the security directory is past the end of the file".into() }
    })?;
    // WIN_CERTIFICATE entries: dwLength (u32), wRevision (u16), wCertificateType (u16), bCertificate; 8-byte aligned.
    let mut pos = 0usize;
    while pos + 8 <= table.len() {
        let len = u32::from_le_bytes([table[pos], table[pos + 1], table[pos + 2], table[pos + 3]]) as usize;
        let kind = u16::from_le_bytes([table[pos + 6], table[pos + 7]]);
        if len < 8 || pos + len > table.len() {
            return Err(CertificateError::SignatureMalformed {
                detail: "a WIN_CERTIFICATE entry has a bad length".into(),
            });
        }
        if kind == WIN_CERT_TYPE_PKCS_SIGNED_DATA {
            let blob = &table[pos + 8..pos + len];
            // Authenticode pads the blob to 8 bytes; the SignedData is the first TLV.
            let mut r = Reader::new(blob);
            let ci = r.read(tag::SEQUENCE).map_err(|e| malformed("the Authenticode signature", e))?;
            let sd = parse_signed_data(&blob[ci.whole])?;
            return Ok(signed_result(sd, CertificateFormat::SignedAssembly));
        }
        pos += (len + 7) & !7;
    }
    Err(CertificateError::AssemblyNotSigned { file: None })
}

/// Reads the author signer's certificate from a signed NuGet package (the zip's `.signature.p7s`).
#[cfg(feature = "signed-files")]
pub(crate) fn from_signed_package(data: &[u8]) -> Result<LoadedCertificate, CertificateError> {
    from_signed_package_reader(std::io::Cursor::new(data))
}

/// The same from any seekable reader: only the zip's directory and the signature entry are read, so a large
/// package costs no more than a small one.
#[cfg(feature = "signed-files")]
pub(crate) fn from_signed_package_reader<R: std::io::Read + std::io::Seek>(
    reader: R,
) -> Result<LoadedCertificate, CertificateError> {
    use std::io::Read as _;
    let zip_error = |e: zip::result::ZipError| CertificateError::Zip { detail: e.to_string() };
    let mut archive = zip::ZipArchive::new(reader).map_err(zip_error)?;
    let Some(index) = archive.index_for_name(".signature.p7s") else {
        return Err(CertificateError::PackageNotSigned { file: None });
    };
    // Read raw: NuGet requires the signature entry stored without compression (NU3005), and a compressed one
    // must be named as such, not as a zip library's "compression method not supported".
    let mut entry = archive.by_index_raw(index).map_err(zip_error)?;
    if entry.compression() != zip::CompressionMethod::Stored {
        // zip's Debug names a method it was built without `Unsupported(8)`; its Display names it (`Deflated`).
        return Err(CertificateError::PackageSignatureCompressed { method: entry.compression().to_string() });
    }
    // NuGet stores the signature uncompressed and small; refuse anything absurd rather than read it all.
    if entry.size() > 1 << 20 {
        return Err(CertificateError::SignatureMalformed { detail: ".signature.p7s is larger than 1 MiB".into() });
    }
    let mut p7s = Vec::with_capacity(entry.size() as usize);
    entry.read_to_end(&mut p7s).map_err(|e| CertificateError::Zip { detail: e.to_string() })?;
    let sd = parse_signed_data(&p7s)?;
    if sd.repository_signature {
        return Err(CertificateError::RepositorySignatureOnly { repository: sd.signer.subject_text() });
    }
    Ok(signed_result(sd, CertificateFormat::SignedPackage))
}

/// Reads the leaf certificate of a PKCS#12 file: the one with a private key, else the one that issued no other.
#[cfg(feature = "pkcs12")]
pub(crate) fn from_pkcs12(data: &[u8], password: &Secret) -> Result<LoadedCertificate, CertificateError> {
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(data, password.expose()).map_err(|e| match e {
        p12_keystore::error::Error::MacError(_) => CertificateError::Pkcs12Password,
        other => CertificateError::Pkcs12 { detail: other.to_string() },
    })?;
    let mut certs: Vec<(Certificate, bool)> = Vec::new();
    for bag in &archive.certs {
        let cert = Certificate::from_der(bag.cert.as_der())?;
        let has_key = bag.local_key_id.as_ref().is_some_and(|id| {
            archive.keys.iter().any(|k| k.local_key_id.as_ref().is_some_and(|kid| kid.0.as_slice() == id.as_slice()))
        });
        certs.push((cert, has_key));
    }
    if certs.is_empty() {
        return Err(CertificateError::Pkcs12NoCertificate);
    }
    let leaf = certs.iter().position(|(_, has_key)| *has_key).or_else(|| {
        certs.iter().position(|(c, _)| {
            !certs
                .iter()
                .any(|(other, _)| other != c && other.issuer_der() == c.subject_der() && !other.is_self_signed())
        })
    });
    let index = leaf.unwrap_or(0);
    let certificate = certs.remove(index).0;
    Ok(LoadedCertificate {
        certificate,
        format: CertificateFormat::Pkcs12,
        warnings: Vec::new(),
        chain: certs.into_iter().map(|(c, _)| c).collect(),
    })
}
