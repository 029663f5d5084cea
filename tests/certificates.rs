//! Certificates generated with openssl and Python's cryptography (tests/fixtures/make-certs.sh): names rendered as
//! .NET renders them, hashes as `openssl x509 -fingerprint` prints them, and every kind of bad input refused.

use dataverse_mi::cert::{Certificate, CertificateError, CertificateFormat, LoadWarning};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn load(name: &str) -> Certificate {
    Certificate::from_der(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// (file, .NET Subject, .NET Issuer (None = same), self-signed, SHA-256 and SHA-1 of the DER file as sha256sum/sha1sum print them)
type Case = (&'static str, &'static str, Option<&'static str>, bool, &'static str, &'static str);

const CASES: &[Case] = &[
    (
        "self-signed-comma.cer",
        r#"CN=Contoso Plug-ins, O="Contoso, Ltd", C=US"#,
        None,
        true,
        "a9f605f46541a0aa9a71a0be9c69960abc6cfa3ff1cffaa02321581ff218ac91",
        "A1D6CB1AC6FFE59274165AFFEB0D9B86C92E2BF3",
    ),
    (
        "ca.cer",
        "CN=Contoso Root CA, O=Contoso, C=US",
        None,
        true,
        "791cd43145b627793136564dd9ac84932b0b655490275c95cbfeffaf9910cdf7",
        "54777B8730F79CA610E4DE5C04ECADF606D3B435",
    ),
    (
        "leaf.cer",
        "CN=Contoso Plug-in Signing, OU=Dataverse, O=Contoso, C=US",
        Some("CN=Contoso Root CA, O=Contoso, C=US"),
        false,
        "5bd65d09ae9e6dc7412e5ce9a2283bfdd60f0fb14b59d3402c4fdee2822e3850",
        "63C0D8404B5B1C47657ADA36C98BF41A2EBAABC2",
    ),
    (
        "self-issued.cer",
        "CN=Same Name",
        None,
        false,
        "9d8c51514d6c19f5098836df0ecf26aac861bef965c283218938491b881f35c0",
        "4199E0C0DDC33B79113154F5BD66254D3981E500",
    ),
    (
        "quotes.cer",
        r#"CN=plain, O="Say ""hi""""#,
        None,
        true,
        "5f24e9a1ea526f340bd4ac693dd7fa18c42fcaf006571219101298e9dc774ba5",
        "BDB012C1B04E14A613B7A10C56B445F488B3DF12",
    ),
    (
        "specials.cer",
        r#"O="x+y", CN="a=b;c<d>e#f""#,
        None,
        true,
        "fd4d829adbc16dbcc4b95e9eb6d1a09765b3904f56574457e1ec044e927b0f24",
        "1500F30B2C8ABC94A4089DC384B0D8DDC5415ADB",
    ),
    (
        "spaces.cer",
        r#"O=inner  spaces, CN=" padded ""#,
        None,
        true,
        "775c26af77e66982d1f697f485607c1aed97830108c9edd1cae8a85afacfe62c",
        "73F61FBF387703CC32480EBB819BD624B7463C1B",
    ),
    (
        "multi-rdn.cer",
        "CN=Alice + OU=Plug-ins + OU=Engineering, O=Contoso, C=US",
        None,
        true,
        "4b9f7157a92f96eba2537840f4d7a56458c5f6462d98d91ece264282a8965dad",
        "7778CC3DA59AB4BC0DDFBA26E926A0BF53DBB9DB",
    ),
    (
        "utf8.cer",
        "CN=日本語 Plug-in, O=Zoë Łódź, C=PL",
        None,
        true,
        "63750f4ff5325042b8f20c4f95ceebf3c3f73a0514763e0f9523b89c8f4748a2",
        "D965B4EA1FF413F9E4449ADD893705308FC78205",
    ),
    (
        "oids.cer",
        "CN=Everything, I=AL, SN=Lee, G=Ann, T=Signer, L=Redmond, S=Washington, PostalCode=98052, \
         STREET=1 Main St, E=ops@contoso.com, SERIALNUMBER=12345, OID.2.5.4.15=Private Organization, \
         DC=contoso, DC=com",
        None,
        true,
        "3f62c69730986775fa4d73bbf67ed23bb0abff32df9ff4c9dcdb42b2d9dc6f40",
        "AC62E61DAA602E2D5E054E0A896F89F9CE93A3A6",
    ),
    (
        // openssl cannot load this one (VisibleString in a name); Python's cryptography made it.
        "string-types.cer",
        r#"CN="Strings, All", E=pki@example.de, SERIALNUMBER=0123 4567, OU=Visible Unit, O=Grüße GmbH, L=München, S=Bayern, OID.1.2.3.4=custom value, C=DE"#,
        None,
        true,
        "61e9b6c061760fc22ef7a721dcb28d4764aae886af21373595b3eb7cdff18825",
        "BFC942F88ABF6E1FC72C47CB3D7FB9CC2BB43BBF",
    ),
];

#[test]
fn names_hashes_and_self_signed_flags() {
    for (file, subject, issuer, self_signed, sha256, sha1) in CASES {
        let cert = load(file);
        assert_eq!(cert.subject().unwrap(), *subject, "{file} subject");
        assert_eq!(cert.issuer().unwrap(), issuer.unwrap_or(subject), "{file} issuer");
        assert_eq!(cert.is_self_signed(), *self_signed, "{file} self-signed");
        assert_eq!(cert.sha256().to_string(), *sha256, "{file} sha256");
        assert_eq!(cert.sha1_thumbprint().to_string(), *sha1, "{file} sha1");
        assert_eq!(cert.der(), fixture(file).as_slice());
    }
}

#[test]
fn name_hashes_are_base64url_sha256_of_the_dotnet_string() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let cert = load("leaf.cer");
    let expect = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(s.as_bytes()));
    assert_eq!(cert.issuer_hash().unwrap().to_string(), expect("CN=Contoso Root CA, O=Contoso, C=US"));
    assert_eq!(
        cert.subject_hash().unwrap().to_string(),
        expect("CN=Contoso Plug-in Signing, OU=Dataverse, O=Contoso, C=US")
    );
    // The OpenSSL / RFC 4514 spellings hash differently: the reason the format matters.
    assert_ne!(
        cert.subject_hash().unwrap().to_string(),
        expect("CN=Contoso Plug-in Signing,OU=Dataverse,O=Contoso,C=US")
    );
    assert_ne!(
        cert.subject_hash().unwrap().to_string(),
        expect("/C=US/O=Contoso/OU=Dataverse/CN=Contoso Plug-in Signing")
    );
}

#[test]
fn pem_takes_the_first_certificate_and_says_so() {
    let loaded = Certificate::from_bytes(&fixture("chain-with-key.pem")).unwrap();
    assert_eq!(loaded.format, CertificateFormat::Pem);
    assert_eq!(loaded.certificate, load("leaf.cer"));
    assert_eq!(
        loaded.warnings,
        vec![
            LoadWarning::ExtraCertificates { total: 2 },
            LoadWarning::SkippedPemBlocks { labels: vec!["PRIVATE KEY".into()] },
        ]
    );
    assert!(loaded.warnings[0].to_string().contains("first one was taken"));
    // PEM with CRLF line ends and text around the block, as Windows tools write it.
    let crlf = String::from_utf8(fixture("chain-with-key.pem")).unwrap().replace('\n', "\r\n");
    let with_text = format!("Bag Attributes\r\n    friendlyName: x\r\n{crlf}");
    assert_eq!(Certificate::from_pem(&with_text).unwrap().certificate, load("leaf.cer"));
}

#[test]
fn der_from_file_and_bytes_agree() {
    let path = format!("{}/tests/fixtures/ca.cer", env!("CARGO_MANIFEST_DIR"));
    let a = Certificate::from_file(&path).unwrap();
    assert_eq!(a.format, CertificateFormat::Der);
    assert!(a.warnings.is_empty());
    assert_eq!(a.certificate, load("ca.cer"));
}

#[test]
fn bad_inputs_get_typed_errors_that_say_what_to_do() {
    let err = |bytes: &[u8]| Certificate::from_bytes(bytes).unwrap_err();

    assert!(matches!(err(b""), CertificateError::Empty));
    // A PFX needs its password (this one's is "fixture"); the error says how to give it.
    let pfx = err(&fixture("leaf.pfx"));
    assert!(matches!(pfx, CertificateError::Pkcs12Password), "{pfx:?}");
    assert!(pfx.to_string().contains("--password-env"), "{pfx}");
    let key = err(&fixture("key-only.pem"));
    assert!(matches!(key, CertificateError::PemWithoutCertificate { ref found } if found == "PRIVATE KEY"), "{key:?}");
    assert!(matches!(
        err(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
        CertificateError::PemBase64 { index: 1 }
    ));
    assert!(matches!(err(b"MZ\x90\x00\x03\x00\x00\x00"), CertificateError::NotPe { .. }));
    assert!(matches!(err(b"PK\x03\x04\x14\x00"), CertificateError::Zip { .. }));
    assert!(matches!(err(b"hello, world"), CertificateError::NotACertificate { .. }));

    let der = fixture("leaf.cer");
    for cut in [1, 2, 10, der.len() / 2, der.len() - 1] {
        let e = err(&der[..cut]);
        assert!(matches!(e, CertificateError::NotACertificate { .. }), "cut at {cut}: {e:?}");
    }
    let mut trailing = der.clone();
    trailing.push(0);
    let e = err(&trailing);
    assert!(e.to_string().contains("trailing"), "{e}");
    let io = Certificate::from_file("/nonexistent/cert.cer").unwrap_err();
    assert!(matches!(io, CertificateError::Io { .. }));
    assert!(io.to_string().contains("/nonexistent/cert.cer"));
}

#[test]
fn validity_and_full_structure_from_x509_cert() {
    use std::time::{Duration, UNIX_EPOCH};
    // Python's cryptography made this one with fixed dates: 2026-01-01 plus 36500 days.
    let cert = load("string-types.cer");
    let v = cert.validity().unwrap();
    assert_eq!(v.not_before, UNIX_EPOCH + Duration::from_secs(1_767_225_600));
    assert_eq!(v.not_after, UNIX_EPOCH + Duration::from_secs(1_767_225_600 + 36_500 * 86_400));
    assert_eq!(v.to_string(), "2026-01-01T00:00:00Z to 2125-12-08T00:00:00Z");
    assert!(v.contains(UNIX_EPOCH + Duration::from_secs(1_800_000_000)));
    assert!(!v.contains(UNIX_EPOCH));
    // x509-cert is stricter (no UniversalString in names), which is why names are read by our own walker.
    assert!(cert.x509().is_err());
    let leaf = load("leaf.cer").x509().unwrap();
    assert_eq!(leaf.tbs_certificate().subject().to_string(), "CN=Contoso Plug-in Signing,OU=Dataverse,O=Contoso,C=US");
}

#[test]
fn debug_shows_what_identifies_the_certificate() {
    let dbg = format!("{:?}", load("leaf.cer"));
    assert!(dbg.contains("Contoso Plug-in Signing") && dbg.contains("5bd65d09"), "{dbg}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = Certificate::from_bytes(&bytes);
            let _ = Certificate::from_der(&bytes);
        }

        #[test]
        fn mutated_certificates_never_panic(pos in 0usize..2048, byte in any::<u8>(), cut in 0usize..700) {
            let mut der = fixture("leaf.cer");
            let p = pos % der.len();
            der[p] = byte;
            der.truncate(cut.max(1));
            let _ = Certificate::from_der(&der);
        }

        #[test]
        fn random_text_never_panics_as_pem(text in ".{0,400}") {
            let _ = Certificate::from_pem(&format!("-----BEGIN CERTIFICATE-----\n{text}\n-----END CERTIFICATE-----"));
            let _ = Certificate::from_pem(&text);
        }
    }
}

#[test]
fn a_name_that_cannot_be_rendered_leaves_the_rest_of_the_certificate_usable() {
    use dataverse_mi::subject::{CertificateBinding, CertificateKind, SubjectError, SubjectFormatVersion};
    // utf8.cer's subject CN is a UTF8String "日本語 Plug-in"; one byte of it made invalid UTF-8 gives a name .NET
    // cannot render. The certificate is still read: its SHA-256 needs no name.
    let mut der = std::fs::read(format!("{}/tests/fixtures/utf8.cer", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let needle = "日本語".as_bytes();
    // In the issuer and the subject alike (it is self-signed, and stays so).
    let places: Vec<usize> = (0..der.len() - needle.len()).filter(|&i| &der[i..i + needle.len()] == needle).collect();
    assert_eq!(places.len(), 2);
    for at in places {
        der[at] = 0xff;
    }
    let cert = Certificate::from_der(&der).unwrap();
    let err = cert.subject().unwrap_err();
    assert!(matches!(&err, CertificateError::Name { which: "subject", .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("CN") && text.contains("UTF8String"), "names the attribute and why: {text}");
    assert!(cert.subject_hash().is_err());
    assert_eq!(cert.sha256().to_string().len(), 64);
    // The self-signed form needs no name; the trusted forms say which name and why.
    let h = CertificateBinding::for_certificate(&cert, SubjectFormatVersion::V2, CertificateKind::SelfSigned).unwrap();
    assert!(matches!(h, CertificateBinding::SelfSigned { .. }));
    for version in [SubjectFormatVersion::V1, SubjectFormatVersion::V2] {
        let err = CertificateBinding::for_certificate(&cert, version, CertificateKind::Trusted).unwrap_err();
        assert!(matches!(&err, SubjectError::NameUnreadable { .. }), "{err:?}");
        assert!(err.to_string().contains("UTF8String"), "{err}");
    }
    let summary = cert.summary();
    assert_eq!(summary.subject, None);
    assert_eq!(summary.name_errors.len(), 1, "{:?}", summary.name_errors);
    assert!(cert.is_self_signed());
    assert!(format!("{cert:?}").contains("Certificate"));
}
