//! Certificates from PFX files, Authenticode-signed assemblies and signed NuGet packages, made by
//! tests/fixtures/make-signed.sh with openssl, osslsigncode and Python's cryptography.

use dataverse_mi::cert::{Certificate, CertificateError, CertificateFormat};
use dataverse_mi::secret::Secret;

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/signed/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn cert(name: &str) -> Certificate {
    Certificate::from_der(&bytes(name)).unwrap()
}

fn password() -> Secret {
    Secret::new("fixture")
}

#[test]
fn pfx_in_every_encryption_gives_the_leaf() {
    let author = cert("author.cer");
    for file in ["modern.pfx", "legacy-rc2.pfx", "legacy-3des.pfx"] {
        let loaded = Certificate::from_pkcs12(&bytes(file), &password()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(loaded.certificate, author, "{file}");
        assert_eq!(loaded.format, CertificateFormat::Pkcs12);
    }
    // With the CA in the file, the leaf is still the one with the key, and the CA is reported as chain.
    let modern = Certificate::from_pkcs12(&bytes("modern.pfx"), &password()).unwrap();
    assert_eq!(modern.chain, vec![cert("ca.cer")]);
    // No key at all: the leaf is the certificate that issued no other.
    let no_key = Certificate::from_pkcs12(&bytes("certs-only.pfx"), &password()).unwrap();
    assert_eq!(no_key.certificate, author);
    // An empty password is a password too; from_bytes tries it when none is given.
    assert_eq!(Certificate::from_bytes(&bytes("empty-password.pfx")).unwrap().certificate, author);
    // Sniffed from a file, with the password.
    let path = format!("{}/tests/fixtures/signed/legacy-rc2.pfx", env!("CARGO_MANIFEST_DIR"));
    assert_eq!(Certificate::from_file_with_password(&path, Some(&password())).unwrap().certificate, author);
}

#[test]
fn wrong_or_missing_pfx_password_is_a_typed_error() {
    for file in ["modern.pfx", "legacy-rc2.pfx", "legacy-3des.pfx"] {
        let err = Certificate::from_pkcs12(&bytes(file), &Secret::new("Tr0ub4dor&3")).unwrap_err();
        assert!(matches!(err, CertificateError::Pkcs12Password), "{file}: {err:?}");
        assert!(!format!("{err} {err:?}").contains("Tr0ub4dor"), "the password never appears: {err}");
        assert!(matches!(Certificate::from_bytes(&bytes(file)), Err(CertificateError::Pkcs12Password)));
    }
    let mut truncated = bytes("modern.pfx");
    truncated.truncate(truncated.len() / 2);
    assert!(Certificate::from_pkcs12(&truncated, &password()).is_err());
}

#[test]
fn signed_assembly_gives_the_signer_and_chain() {
    let loaded = Certificate::from_bytes(&bytes("signed.dll")).unwrap();
    assert_eq!(loaded.format, CertificateFormat::SignedAssembly);
    assert_eq!(loaded.certificate, cert("author.cer"));
    assert_eq!(loaded.certificate.subject().unwrap(), "CN=Contoso Plug-in Publisher, O=Contoso, C=US");
    assert_eq!(loaded.chain, vec![cert("ca.cer")]);
    let big = Certificate::from_signed_assembly(&bytes("big-signed.dll")).unwrap();
    assert_eq!(big.certificate, cert("author.cer"));
}

#[test]
fn unsigned_or_broken_assemblies() {
    let err = Certificate::from_bytes(&bytes("unsigned.dll")).unwrap_err();
    assert!(matches!(err, CertificateError::AssemblyNotSigned { file: None }));
    assert!(err.to_string().contains("dataverse-mi sign"), "{err}");
    assert!(!err.to_string().contains("Contoso.Plugins"), "no example file name for bytes without a file: {err}");
    let mut cut = bytes("signed.dll");
    cut.truncate(cut.len() - 100);
    let err = Certificate::from_signed_assembly(&cut).unwrap_err();
    assert!(matches!(err, CertificateError::SignatureMalformed { .. }), "{err:?}");
}

#[test]
fn a_signature_without_its_signer_certificate() {
    let err = Certificate::from_bytes(&bytes("no-signer-certificate.nupkg")).unwrap_err();
    assert!(matches!(err, CertificateError::SignerNotFound { unreadable_certificates: false }), "{err:?}");
}

#[test]
fn signed_package_gives_the_author_not_the_repository() {
    // The bag lists the repository certificate first; the signer is found by issuer and serial.
    let loaded = Certificate::from_bytes(&bytes("signed.nupkg")).unwrap();
    assert_eq!(loaded.format, CertificateFormat::SignedPackage);
    assert_eq!(loaded.certificate, cert("author.cer"));
    assert_eq!(loaded.chain, vec![cert("repository.cer"), cert("ca.cer")]);
    // Signed by `openssl cms -keyid`: the signer is found by subject key identifier.
    let keyid = Certificate::from_signed_package(&bytes("keyid.nupkg")).unwrap();
    assert_eq!(keyid.certificate, cert("author.cer"));
    // From files: a large package is read by its directory only, a small one whole; same answer.
    for file in ["big-signed.nupkg", "keyid.nupkg"] {
        let path = format!("{}/tests/fixtures/signed/{file}", env!("CARGO_MANIFEST_DIR"));
        assert_eq!(Certificate::from_file(&path).unwrap().certificate, cert("author.cer"), "{file}");
    }
}

#[test]
fn unsigned_and_repository_only_packages() {
    let err = Certificate::from_bytes(&bytes("unsigned.nupkg")).unwrap_err();
    assert!(matches!(err, CertificateError::PackageNotSigned { file: None }));
    assert!(err.to_string().contains("nuget sign"), "{err}");
    assert!(!err.to_string().contains("Contoso.Plugins"), "no example file name for bytes without a file: {err}");
    let err = Certificate::from_bytes(&bytes("repository-only.nupkg")).unwrap_err();
    assert!(
        matches!(err, CertificateError::RepositorySignatureOnly { ref repository } if repository.contains("NuGet Repository Signing")),
        "{err:?}"
    );
    // A signature entry stored compressed: NuGet's NU3005, said in words (not "compression method not supported").
    let err = Certificate::from_bytes(&bytes("compressed-signature.nupkg")).unwrap_err();
    assert!(matches!(err, CertificateError::PackageSignatureCompressed { .. }), "{err:?}");
    assert!(err.to_string().contains("NU3005") && err.to_string().contains("stored without compression"), "{err}");
    assert!(
        err.to_string().contains("(Deflated)") && !err.to_string().contains("Unsupported"),
        "the method by its name: {err}"
    );
    let mut cut = bytes("signed.nupkg");
    cut.truncate(100);
    assert!(matches!(Certificate::from_bytes(&cut), Err(CertificateError::Zip { .. })));
}

/// Read from a file, an unsigned assembly or package is named in the message, in the command that signs it: the
/// user's file, not an example name.
#[test]
fn an_unsigned_file_is_named_in_the_fix() {
    let dir = std::env::temp_dir().join(format!("dvmi-unsigned-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (fixture, name, tool) in [
        ("unsigned.dll", "My Plugins.dll", "dataverse-mi sign"),
        ("unsigned.nupkg", "My.Plugins.2.0.0.nupkg", "nuget sign"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes(fixture)).unwrap();
        let err = Certificate::from_file(&path).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(tool), "{text}");
        assert!(text.contains(&path.display().to_string()), "the user's file: {text}");
        assert!(!text.contains("Contoso.Plugins"), "no example file name: {text}");
        if name.contains(' ') {
            assert!(
                text.contains(&format!("\"{}\"", path.display())),
                "a name with a space is quoted in the command: {text}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_password_type_redacts_itself() {
    assert_eq!(format!("{:?}", password()), "Secret");
}
