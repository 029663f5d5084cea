//! Authenticode signing of a PE file (a plug-in assembly), per Microsoft's "Windows Authenticode Portable
//! Executable Signature Format": the image hash (SHA-256 over the file without its checksum, its certificate table
//! entry and the table itself), an `SpcIndirectDataContent` with `SpcPeImageData`, the signed attributes signing
//! tools write (content type, message digest, `SpcSpOpusInfo`, statement type individual), a CMS `SignedData`
//! (RustCrypto's `cms` types) with the signer's chain, in a `WIN_CERTIFICATE` (revision 2.0, `PKCS_SIGNED_DATA`,
//! 8-byte aligned), and the PE checksum recomputed.
//!
//! It imports `cert`'s own files: the core floor (no I/O).

use der::asn1::{ObjectIdentifier, OctetString, SetOfVec};
use der::{Any, Decode as _};
use sha2::{Digest as _, Sha256};

use super::tlv::Reader;
use super::{SignError, SigningIdentity};

const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const OID_SPC_INDIRECT_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.4");
const OID_SPC_STATEMENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.11");
const OID_SPC_SP_OPUS_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.12");
const OID_SPC_PE_IMAGE_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.15");
const OID_SPC_INDIVIDUAL_SP_KEY_PURPOSE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.21");

/// Where the parts the image hash leaves out are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeLayout {
    /// The optional header's `CheckSum` field (4 bytes).
    pub(crate) checksum: usize,
    /// The certificate table's data directory entry (8 bytes: offset, size).
    pub(crate) security_directory: usize,
    /// The certificate table, when the file has one: its offset and size.
    pub(crate) certificate_table: Option<(usize, usize)>,
}

fn not_pe(detail: impl Into<String>) -> SignError {
    SignError::NotPe { detail: detail.into() }
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, SignError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| not_pe(format!("it ends at byte {}", b.len())))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, SignError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| not_pe(format!("it ends at byte {}", b.len())))
}

/// Reads the headers the image hash needs.
pub(crate) fn layout(pe: &[u8]) -> Result<PeLayout, SignError> {
    if !pe.starts_with(b"MZ") {
        return Err(not_pe("it does not start with MZ"));
    }
    let nt = u32_at(pe, 0x3c)? as usize;
    if pe.get(nt..nt + 4) != Some(b"PE\0\0".as_slice()) {
        return Err(not_pe("no PE signature where the DOS header points"));
    }
    let optional = nt + 24;
    let size_of_optional = u16_at(pe, nt + 20)? as usize;
    let (directories, count_at) = match u16_at(pe, optional)? {
        0x10b => (optional + 96, optional + 92),
        0x20b => (optional + 112, optional + 108),
        other => return Err(not_pe(format!("unknown optional header magic 0x{other:x}"))),
    };
    let count = u32_at(pe, count_at)? as usize;
    let security_directory = directories + 4 * 8;
    if count <= 4 || security_directory + 8 > optional + size_of_optional {
        return Err(not_pe("the optional header has no certificate table entry"));
    }
    // Every section's bytes must be in the file: a truncated assembly is refused, not signed.
    let sections = u16_at(pe, nt + 6)? as usize;
    let table = optional + size_of_optional;
    for i in 0..sections {
        let header = table + i * 40;
        let (size, at) = (u32_at(pe, header + 16)? as usize, u32_at(pe, header + 20)? as usize);
        if size > 0 && at.checked_add(size).is_none_or(|end| end > pe.len()) {
            return Err(not_pe(format!(
                "it is truncated: section {} ends at byte {}, the file at byte {}",
                i + 1,
                at.saturating_add(size),
                pe.len()
            )));
        }
    }
    let (offset, size) = (u32_at(pe, security_directory)? as usize, u32_at(pe, security_directory + 4)? as usize);
    let certificate_table = match (offset, size) {
        (0, _) | (_, 0) => None,
        (o, s) if o.checked_add(s).is_some_and(|end| end <= pe.len()) && o >= security_directory + 8 => Some((o, s)),
        _ => return Err(not_pe("its certificate table entry points past the end of the file")),
    };
    Ok(PeLayout { checksum: optional + 64, security_directory, certificate_table })
}

/// The Authenticode image hash (SHA-256) of a PE file: everything but the checksum, the certificate table entry
/// and the certificate table.
pub fn pe_image_digest(pe: &[u8]) -> Result<[u8; 32], SignError> {
    Ok(image_digest(pe, &layout(pe)?))
}

/// [`pe_image_digest`] with the headers read already.
fn image_digest(pe: &[u8], l: &PeLayout) -> [u8; 32] {
    let end = l.certificate_table.map_or(pe.len(), |(offset, _)| offset);
    let mut hash = Sha256::new();
    hash.update(&pe[..l.checksum]);
    hash.update(&pe[l.checksum + 4..l.security_directory]);
    hash.update(&pe[l.security_directory + 8..end]);
    // What follows the certificate table (nothing, in a well-formed file) is hashed too, as signtool does.
    if let Some((offset, size)) = l.certificate_table {
        hash.update(&pe[offset + size..]);
    }
    hash.finalize().into()
}

/// The PE checksum (the optional header's `CheckSum`) of `pe`, its own field counted as zero: the 16-bit
/// little-endian words summed with end-around carry, plus the file's length.
pub(crate) fn pe_checksum(pe: &[u8], checksum_at: usize) -> u32 {
    // The words are summed as plain integers (a u64 cannot overflow below 2^48 words) and folded once at the end,
    // which is the same as folding after each word; the field's own two words are taken out of the sum.
    let mut sum: u64 = 0;
    let mut words = pe.chunks_exact(8);
    for chunk in &mut words {
        let v = u64::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7]]);
        sum += (v & 0xffff) + ((v >> 16) & 0xffff) + ((v >> 32) & 0xffff) + (v >> 48);
    }
    for pair in words.remainder().chunks(2) {
        sum += u16::from_le_bytes([pair[0], *pair.get(1).unwrap_or(&0)]) as u64;
    }
    // Each byte counted is its value shifted by its place in its word (little-endian: the odd byte is high).
    let field = pe.get(checksum_at..(checksum_at + 4).min(pe.len())).unwrap_or_default();
    for (i, byte) in field.iter().enumerate() {
        sum -= (*byte as u64) << (8 * ((checksum_at + i) % 2));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    (sum as u32).wrapping_add(pe.len() as u32)
}

/// A DER TLV with a one-byte tag.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - first) as u8);
        out.extend_from_slice(&bytes[first..]);
    }
    out.extend_from_slice(content);
    out
}

fn der_of<T: der::Encode>(value: &T) -> Result<Vec<u8>, SignError> {
    value.to_der().map_err(|e| SignError::Encoding { detail: e.to_string() })
}

/// `SpcIndirectDataContent` for a PE image with SHA-256 digest `digest`.
fn spc_indirect_data(digest: &[u8; 32]) -> Result<Vec<u8>, SignError> {
    // SpcPeImageData ::= SEQUENCE { flags SpcPeImageFlags DEFAULT {includeResources}, file [0] EXPLICIT SpcLink }
    // written as signtool writes it: flags an empty BIT STRING, the link the "<<<Obsolete>>>" file name as a
    // BMPString ([2] file: SpcString, [0] unicode).
    let obsolete: Vec<u8> = "<<<Obsolete>>>".encode_utf16().flat_map(u16::to_be_bytes).collect();
    let link = tlv(0xa0, &tlv(0xa2, &tlv(0x80, &obsolete)));
    let pe_image_data = tlv(0x30, &[tlv(0x03, &[0x00]), link].concat());
    let attribute = tlv(0x30, &[der_of(&OID_SPC_PE_IMAGE_DATA)?, pe_image_data].concat());
    let algorithm = tlv(0x30, &[der_of(&OID_SHA256)?, vec![0x05, 0x00]].concat());
    let digest_info = tlv(0x30, &[algorithm, der_of(&OctetString::new(digest.to_vec()).map_err(enc)?)?].concat());
    Ok(tlv(0x30, &[attribute, digest_info].concat()))
}

fn enc(e: der::Error) -> SignError {
    SignError::Encoding { detail: e.to_string() }
}

fn attribute(oid: ObjectIdentifier, value_der: &[u8]) -> Result<x509_cert::attr::Attribute, SignError> {
    let mut values = SetOfVec::new();
    values.insert(Any::from_der(value_der).map_err(enc)?).map_err(enc)?;
    Ok(x509_cert::attr::Attribute { oid, values })
}

/// The CMS `SignedData` (in its `ContentInfo`) over `content` (DER of the encapsulated content, of type
/// `content_type`), with the signed attributes content type, message digest (SHA-256 of `digested`) and `extra`.
pub(crate) fn signed_data(
    identity: &SigningIdentity,
    content_type: ObjectIdentifier,
    content: &[u8],
    digested: &[u8],
    extra: Vec<x509_cert::attr::Attribute>,
) -> Result<Vec<u8>, SignError> {
    let digest = Sha256::digest(digested);
    let mut attrs = SetOfVec::new();
    attrs.insert(attribute(OID_CONTENT_TYPE, &der_of(&content_type)?)?).map_err(enc)?;
    attrs
        .insert(attribute(OID_MESSAGE_DIGEST, &der_of(&OctetString::new(digest.to_vec()).map_err(enc)?)?)?)
        .map_err(enc)?;
    for a in extra {
        attrs.insert(a).map_err(enc)?;
    }
    // The signature covers the attributes' DER as a SET (tag 0x31), as CMS says.
    let signature = identity.sign(&der_of(&attrs)?)?;
    let leaf = identity.certificate.x509().map_err(|e| SignError::Certificate { detail: e.to_string() })?;
    let sid = cms::signed_data::SignerIdentifier::IssuerAndSerialNumber(cms::cert::IssuerAndSerialNumber {
        issuer: leaf.tbs_certificate().issuer().clone(),
        serial_number: leaf.tbs_certificate().serial_number().clone(),
    });
    let sha256 = spki::AlgorithmIdentifierOwned { oid: OID_SHA256, parameters: Some(Any::null()) };
    let signer = cms::signed_data::SignerInfo {
        version: cms::content_info::CmsVersion::V1,
        sid,
        digest_alg: sha256.clone(),
        signed_attrs: Some(attrs),
        signature_algorithm: identity.signature_algorithm(),
        signature: OctetString::new(signature).map_err(enc)?,
        unsigned_attrs: None,
    };
    let mut certificates = SetOfVec::new();
    for c in std::iter::once(&identity.certificate).chain(&identity.chain) {
        let x509 = c.x509().map_err(|e| SignError::Certificate { detail: e.to_string() })?;
        certificates.insert(cms::cert::CertificateChoices::Certificate(x509)).map_err(enc)?;
    }
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms.insert(sha256).map_err(enc)?;
    let mut signer_infos = SetOfVec::new();
    signer_infos.insert(signer).map_err(enc)?;
    let signed = cms::signed_data::SignedData {
        version: cms::content_info::CmsVersion::V1,
        digest_algorithms,
        encap_content_info: cms::signed_data::EncapsulatedContentInfo {
            econtent_type: content_type,
            econtent: Some(Any::from_der(content).map_err(enc)?),
        },
        certificates: Some(cms::signed_data::CertificateSet(certificates)),
        crls: None,
        signer_infos: cms::signed_data::SignerInfos(signer_infos),
    };
    let info = cms::content_info::ContentInfo {
        content_type: OID_SIGNED_DATA,
        content: Any::from_der(&der_of(&signed)?).map_err(enc)?,
    };
    der_of(&info)
}

/// The bytes of `pe` signed with `identity`: the Authenticode signature in a new certificate table at the end
/// (8-byte aligned), the data directory pointing at it, the checksum recomputed. A file already signed is
/// refused unless `replace`, when its old certificate table is dropped first.
pub fn sign_pe(pe: &[u8], identity: &SigningIdentity, replace: bool) -> Result<Vec<u8>, SignError> {
    let l = layout(pe)?;
    let image = match l.certificate_table {
        Some(_) if !replace => return Err(SignError::AlreadySigned),
        Some((offset, size)) => {
            if offset + size != pe.len() {
                return Err(not_pe("its certificate table is not at the end of the file"));
            }
            &pe[..offset]
        }
        None => pe,
    };
    // Room for the image, its padding and a signature of a few kilobytes: one allocation, one copy.
    let mut out = Vec::with_capacity(image.len() + 8 + 16 * 1024);
    out.extend_from_slice(image);
    // The table starts 8-byte aligned; the padding is part of the signed image.
    out.resize(out.len().div_ceil(8) * 8, 0);
    out[l.security_directory..l.security_directory + 8].fill(0);
    // The headers are the original's; the old table (if any) is gone and its entry zeroed.
    let digest = image_digest(&out, &PeLayout { certificate_table: None, ..l });
    let content = spc_indirect_data(&digest)?;
    // Authenticode's message digest covers the content's value, without its SEQUENCE header.
    let sequence = Reader::new(&content).read_any().map_err(|e| SignError::Encoding { detail: e.to_string() })?;
    let value = &content[sequence.value];
    let extra = vec![
        attribute(OID_SPC_SP_OPUS_INFO, &[0x30, 0x00])?,
        attribute(OID_SPC_STATEMENT_TYPE, &tlv(0x30, &der_of(&OID_SPC_INDIVIDUAL_SP_KEY_PURPOSE)?))?,
    ];
    let pkcs7 = signed_data(identity, OID_SPC_INDIRECT_DATA, &content, value, extra)?;
    // WIN_CERTIFICATE { dwLength, wRevision 0x0200, wCertificateType WIN_CERT_TYPE_PKCS_SIGNED_DATA, bCertificate },
    // padded to 8 bytes.
    let mut entry = Vec::with_capacity(pkcs7.len() + 16);
    let length = ((8 + pkcs7.len()).div_ceil(8) * 8) as u32;
    entry.extend_from_slice(&length.to_le_bytes());
    entry.extend_from_slice(&0x0200u16.to_le_bytes());
    entry.extend_from_slice(&0x0002u16.to_le_bytes());
    entry.extend_from_slice(&pkcs7);
    entry.resize(length as usize, 0);
    let table_at = out.len() as u32;
    out.extend_from_slice(&entry);
    out[l.security_directory..l.security_directory + 4].copy_from_slice(&table_at.to_le_bytes());
    out[l.security_directory + 4..l.security_directory + 8].copy_from_slice(&length.to_le_bytes());
    let checksum = pe_checksum(&out, l.checksum);
    out[l.checksum..l.checksum + 4].copy_from_slice(&checksum.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/fixtures/signed/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    /// osslsigncode wrote these files' checksums: the same algorithm gives the same value.
    #[test]
    fn the_checksum_is_the_one_osslsigncode_wrote() {
        for name in ["signed.dll", "renewed.dll", "big-signed.dll"] {
            let pe = fixture(name);
            let l = layout(&pe).unwrap();
            let written = u32_at(&pe, l.checksum).unwrap();
            assert_ne!(written, 0, "{name} carries a checksum");
            assert_eq!(pe_checksum(&pe, l.checksum), written, "{name}");
        }
    }

    #[test]
    fn the_layout_finds_the_certificate_table() {
        let signed = layout(&fixture("signed.dll")).unwrap();
        let (offset, size) = signed.certificate_table.unwrap();
        assert_eq!(offset % 8, 0);
        assert_eq!(offset + size, fixture("signed.dll").len());
        assert_eq!(layout(&fixture("unsigned.dll")).unwrap().certificate_table, None);
    }

    #[test]
    fn lengths_are_written_in_der_form() {
        assert_eq!(tlv(0x04, &[1; 3])[..2], [0x04, 3]);
        assert_eq!(tlv(0x04, &[1; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(0x04, &[1; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
        let long = tlv(0x30, &[7; 70_000]);
        assert_eq!(Reader::new(&long).read_any().unwrap().value.len(), 70_000, "read back by the crate's reader");
    }
}
