//! Authenticode signing of a plug-in assembly: the image hash against an independent tool's, the signed file read
//! back by this crate's reader with the expected signer, the checksum, the alignment, and bad input refused.
#![cfg(all(feature = "signing", feature = "signed-files"))]

use dataverse_mi::cert::{
    Certificate, DevCertificateOptions, KeyAlgorithm, SignError, SigningIdentity, new_code_signing_certificate,
    pe_image_digest, sign_pe,
};
use dataverse_mi::secret::Secret;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/signed/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn identity(key: KeyAlgorithm) -> SigningIdentity {
    let made =
        new_code_signing_certificate(&DevCertificateOptions::new("CN=Contoso Plug-ins, O=Contoso, C=US").with_key(key))
            .unwrap();
    let pfx = made.to_pfx(&Secret::new("pw")).unwrap();
    SigningIdentity::from_pkcs12(&pfx, &Secret::new("pw")).unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `osslsigncode verify` prints the image hash it computes ("Calculated message digest"); these are its values for
/// the fixtures (osslsigncode 2.x, run while writing this test), an independent reading of the Authenticode
/// specification's rules.
#[test]
fn the_image_hash_is_the_one_osslsigncode_computes() {
    for (name, expected) in
        [("signed.dll", SIGNED_DLL), ("renewed.dll", SIGNED_DLL), ("big-signed.dll", BIG_SIGNED_DLL)]
    {
        assert_eq!(hex(&pe_image_digest(&fixture(name)).unwrap()), expected, "{name}");
    }
}

/// `signed.dll` and `renewed.dll` are the same image signed by two certificates: one image hash.
const SIGNED_DLL: &str = "8900fe3fe1881cd5f716cb469deb5870a912393e4e7526da78a78dea8e4a35ed";
const BIG_SIGNED_DLL: &str = "972dbc569139ef6f5af21bb53c90b37643822f55de756219a0bf5f36d0f8c57a";

#[test]
fn a_signed_assembly_reads_back_with_its_signer() {
    for key in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcdsaP256] {
        let signer = identity(key);
        let unsigned = fixture("unsigned.dll");
        let signed = sign_pe(&unsigned, &signer, false).unwrap();
        let back = Certificate::from_signed_assembly(&signed).unwrap();
        assert_eq!(back.certificate, signer.certificate, "{key}");
        // The image hash is unchanged by the signature (it leaves the table and its entry out), up to the padding.
        let mut padded = unsigned.clone();
        padded.resize(unsigned.len().div_ceil(8) * 8, 0);
        assert_eq!(pe_image_digest(&signed).unwrap(), pe_image_digest(&padded).unwrap());
        assert_eq!(signed.len() % 8, 0, "the certificate table is 8-byte aligned and padded");
    }
}

#[test]
fn signing_twice_needs_replace() {
    let signer = identity(KeyAlgorithm::EcdsaP256);
    let once = sign_pe(&fixture("unsigned.dll"), &signer, false).unwrap();
    assert!(matches!(sign_pe(&once, &signer, false), Err(SignError::AlreadySigned)));
    let other = identity(KeyAlgorithm::EcdsaP256);
    let twice = sign_pe(&once, &other, true).unwrap();
    assert_eq!(Certificate::from_signed_assembly(&twice).unwrap().certificate, other.certificate);
    assert!(twice.len() <= once.len() + 8, "the old signature replaced, not kept beside the new one");
}

#[test]
fn what_is_not_a_pe_is_refused() {
    let signer = identity(KeyAlgorithm::EcdsaP256);
    let mut truncated = fixture("unsigned.dll");
    truncated.truncate(200);
    let mut cut_short = fixture("unsigned.dll");
    cut_short.truncate(cut_short.len() - 1);
    for bytes in [Vec::new(), b"not a pe".to_vec(), truncated, b"MZ".to_vec(), cut_short] {
        assert!(matches!(sign_pe(&bytes, &signer, false), Err(SignError::NotPe { .. })), "{} bytes", bytes.len());
    }
}

/// Writes a signed assembly and its signer's certificate where `DVMI_SIGNED_OUT` says, for checking with an
/// independent verifier by hand (`osslsigncode verify -CAfile cert.pem -in signed.dll`); does nothing otherwise.
#[test]
fn write_a_signed_assembly_for_an_independent_verifier() {
    let Some(dir) = std::env::var_os("DVMI_SIGNED_OUT") else { return };
    let dir = std::path::PathBuf::from(dir);
    for (key, name) in [(KeyAlgorithm::Rsa3072, "rsa"), (KeyAlgorithm::EcdsaP256, "ecdsa")] {
        let signer = identity(key);
        let signed = sign_pe(&fixture("unsigned.dll"), &signer, false).unwrap();
        std::fs::write(dir.join(format!("signed-{name}.dll")), signed).unwrap();
        // With 5 bytes after the image: the padding to 8 bytes is signed.
        let mut odd = fixture("unsigned.dll");
        odd.extend_from_slice(b"12345");
        std::fs::write(dir.join(format!("signed-odd-{name}.dll")), sign_pe(&odd, &signer, false).unwrap()).unwrap();
        std::fs::write(dir.join(format!("signer-{name}.cer")), signer.certificate.der()).unwrap();
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Whatever trails the image (any length, aligned or not), the signed file reads back with its signer, its
    /// image hash is the one of the image padded to 8 bytes, its table is aligned, and signing it again with
    /// `replace` gives the same image hash.
    #[test]
    fn any_overlay_signs_and_reads_back(overlay in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
        let signer = shared_identity();
        let mut pe = fixture("unsigned.dll");
        pe.extend_from_slice(&overlay);
        let signed = sign_pe(&pe, signer, false).unwrap();
        proptest::prop_assert_eq!(&Certificate::from_signed_assembly(&signed).unwrap().certificate, &signer.certificate);
        let mut padded = pe.clone();
        padded.resize(pe.len().div_ceil(8) * 8, 0);
        proptest::prop_assert_eq!(pe_image_digest(&signed).unwrap(), pe_image_digest(&padded).unwrap());
        proptest::prop_assert_eq!(signed.len() % 8, 0);
        let again = sign_pe(&signed, signer, true).unwrap();
        proptest::prop_assert_eq!(pe_image_digest(&again).unwrap(), pe_image_digest(&signed).unwrap());
    }
}

fn shared_identity() -> &'static SigningIdentity {
    static IDENTITY: std::sync::OnceLock<SigningIdentity> = std::sync::OnceLock::new();
    IDENTITY.get_or_init(|| identity(KeyAlgorithm::EcdsaP256))
}

/// A signer's private key never shows in `Debug`: the certificate and the chain's length do.
#[test]
fn the_signers_key_never_shows_in_debug() {
    let signer = shared_identity();
    let text = format!("{signer:?}");
    assert!(text.contains("SigningIdentity") && text.contains("Contoso Plug-ins"), "{text}");
    assert!(!text.to_ascii_lowercase().contains("key"), "no key field: {text}");
    assert!(text.len() < 600, "{text}");
}
