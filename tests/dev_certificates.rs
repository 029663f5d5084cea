//! `cert new`'s library call: a self-signed code-signing certificate for development, read back by this crate's
//! own reader and by `x509-cert`, its PFX opened again, and subjects .NET would render otherwise refused.
#![cfg(feature = "signing")]

use std::time::{Duration, UNIX_EPOCH};

use dataverse_mi::cert::{
    Certificate, DevCertificateOptions, GenerateError, KeyAlgorithm, new_code_signing_certificate,
};
use dataverse_mi::secret::Secret;
use dataverse_mi::subject::{CertificateBinding, CertificateKind, SubjectFormatVersion};
use der::{Decode as _, Encode as _};

const SUBJECT: &str = "CN=Contoso Plug-ins, O=\"Contoso, Ltd\", C=US";

fn made(key: KeyAlgorithm) -> dataverse_mi::cert::DevCertificate {
    let options = DevCertificateOptions::new(SUBJECT)
        .with_key(key)
        .with_not_before(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    new_code_signing_certificate(&options).unwrap()
}

/// The bit length of an RSAPublicKey's modulus, read by hand (SEQUENCE { INTEGER n, INTEGER e }).
fn modulus_bits(der: &[u8]) -> usize {
    fn header(b: &[u8], tag: u8) -> (usize, usize) {
        assert_eq!(b[0], tag);
        match b[1] {
            l if l < 0x80 => (2, l as usize),
            0x81 => (3, b[2] as usize),
            0x82 => (4, (b[2] as usize) << 8 | b[3] as usize),
            other => panic!("length form {other:#x}"),
        }
    }
    let (seq_head, _) = header(der, 0x30);
    let int = &der[seq_head..];
    let (int_head, len) = header(int, 0x02);
    let n = &int[int_head..int_head + len];
    let n = if n[0] == 0 { &n[1..] } else { n };
    n.len() * 8 - n[0].leading_zeros() as usize
}

/// The extension with `oid` (dotted), DER value bytes.
fn extension(cert: &x509_cert::Certificate, oid: &str) -> Option<(bool, Vec<u8>)> {
    cert.tbs_certificate()
        .extensions()
        .into_iter()
        .flatten()
        .find(|e| e.extn_id.to_string() == oid)
        .map(|e| (e.critical, e.extn_value.as_bytes().to_vec()))
}

#[test]
fn rsa_3072_code_signing_as_new_self_signed_certificate_makes_it() {
    let made = made(KeyAlgorithm::default());
    let cert = made.certificate();
    assert_eq!(made.key_algorithm(), KeyAlgorithm::Rsa3072);
    assert_eq!(cert.subject().unwrap(), SUBJECT, "the name as typed, as .NET prints it");
    assert_eq!(cert.issuer().unwrap(), SUBJECT);
    assert!(cert.is_self_signed());
    let validity = cert.validity().unwrap();
    assert_eq!(validity.not_before, UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    assert_eq!(validity.not_after.duration_since(validity.not_before).unwrap(), Duration::from_secs(365 * 86_400));

    let x509 = cert.x509().unwrap();
    // sha256WithRSAEncryption
    assert_eq!(x509.signature_algorithm().oid.to_string(), "1.2.840.113549.1.1.11");
    let spki = &x509.tbs_certificate().subject_public_key_info();
    assert_eq!(spki.algorithm.oid.to_string(), "1.2.840.113549.1.1.1", "an RSA key");
    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }: a 3072-bit modulus is 384 bytes
    // (385 with the leading zero of a positive INTEGER).
    let key = spki.subject_public_key.raw_bytes();
    assert_eq!(modulus_bits(key), 3072, "a 3072-bit modulus");

    // Key usage digitalSignature (bit 0), critical; extended key usage codeSigning (1.3.6.1.5.5.7.3.3).
    let (critical, ku) = extension(&x509, "2.5.29.15").expect("key usage");
    assert!(critical, "key usage is critical");
    let bits = der::asn1::BitString::from_der(&ku).unwrap();
    assert_eq!(bits.raw_bytes()[0] & 0x80, 0x80, "digitalSignature");
    assert_eq!(bits.raw_bytes()[0] & 0x7f, 0, "nothing else");
    let (_, eku) = extension(&x509, "2.5.29.37").expect("extended key usage");
    let purposes = x509_cert::ext::pkix::ExtendedKeyUsage::from_der(&eku).unwrap();
    let purposes: Vec<String> = purposes.0.iter().map(|o| o.to_string()).collect();
    assert_eq!(purposes, vec!["1.3.6.1.5.5.7.3.3".to_owned()]);
    // Not a CA.
    let (_, bc) = extension(&x509, "2.5.29.19").expect("basic constraints");
    assert!(!x509_cert::ext::pkix::BasicConstraints::from_der(&bc).unwrap().ca);
    let _ = x509.to_der().unwrap();
}

#[test]
fn the_pfx_opens_with_its_password_and_holds_the_key() {
    let made = made(KeyAlgorithm::EcdsaP256);
    let password = Secret::new("correct horse");
    let pfx = made.to_pfx(&password).unwrap();
    let back = Certificate::from_pkcs12(&pfx, &password).unwrap();
    assert_eq!(back.certificate, *made.certificate());
    assert!(Certificate::from_pkcs12(&pfx, &Secret::new("wrong")).is_err(), "a wrong password is refused");
    let store =
        p12_keystore::KeyStore::from_pkcs12(&pfx, "correct horse", p12_keystore::Pkcs12ImportPolicy::Strict).unwrap();
    let (_, chain) = store.private_key_chain().expect("the private key is in the PFX");
    assert_eq!(chain.certs()[0].as_der(), made.certificate().der());
}

#[test]
fn its_subject_is_the_self_signed_hash_in_both_versions() {
    let made = made(KeyAlgorithm::EcdsaP256);
    for version in [SubjectFormatVersion::V1, SubjectFormatVersion::V2] {
        let binding = CertificateBinding::for_certificate(made.certificate(), version, CertificateKind::Auto).unwrap();
        assert_eq!(binding.to_string(), format!("h/{}", made.certificate().sha256()), "{version}");
    }
}

#[test]
fn the_key_never_shows_in_debug() {
    let made = made(KeyAlgorithm::EcdsaP256);
    let text = format!("{made:?}");
    assert!(text.contains("DevCertificate") && text.contains("EcdsaP256"), "{text}");
    assert!(text.len() < 600, "no key bytes: {text}");
    assert!(!text.contains("key_pkcs8"), "{text}");
}

#[test]
fn subjects_dotnet_would_render_otherwise_are_refused_naming_why() {
    let cases = [
        ("CN=Contoso,O=Contoso", "CN=Contoso, O=Contoso"),
        ("", "empty"),
        ("O=Contoso, C=US", "no CN"),
        ("CN=a, OU=x, OU=y", "OU appears twice"),
        ("CN=a, FOO=bar", "'FOO' is not an attribute"),
        ("CN=a, C=usa", "two-letter country code"),
        ("CN=Contoso, Ltd", "not an attribute"),
        ("CN=Dev, DC=contoso, DC=com", "DC appears twice"),
    ];
    for (subject, needle) in cases {
        let options = DevCertificateOptions::new(subject).with_key(KeyAlgorithm::EcdsaP256);
        let err = new_code_signing_certificate(&options).unwrap_err();
        assert!(matches!(err, GenerateError::Subject { .. }), "{subject}: {err:?}");
        assert!(err.to_string().contains(needle), "{subject}: {err}");
    }
    let zero = DevCertificateOptions::new("CN=a").with_key(KeyAlgorithm::EcdsaP256).with_valid_for(Duration::ZERO);
    assert!(matches!(new_code_signing_certificate(&zero), Err(GenerateError::Validity { .. })));
}

#[test]
fn names_with_every_attribute_it_writes_round_trip() {
    for subject in [
        "CN=Plug-ins",
        "CN=Contoso Plug-ins, OU=Engineering, O=Contoso, L=Redmond, S=Washington, C=US",
        "E=dev@contoso.com, CN=Dev, DC=contoso",
        "CN=Zoë Ünïcode, O=Contoso",
        "CN=\"  padded  \", O=Contoso",
    ] {
        let options = DevCertificateOptions::new(subject).with_key(KeyAlgorithm::EcdsaP256);
        let made = new_code_signing_certificate(&options).unwrap_or_else(|e| panic!("{subject}: {e}"));
        assert_eq!(made.certificate().subject().unwrap(), subject);
    }
}
