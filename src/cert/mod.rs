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
//!
//! The module is a facade: each file below holds one concern and imports only the files listed before it
//! (`tlv`, then `dn` and `hash`, `error`, `certificate`, `loaded`, `signed`, then `load` and `summary`), and the
//! crate's `secret` and `files`.
//!
//! Its files import `guid`, `secret` and `files`: the floors below it (`tests/architecture.rs` checks that no import runs up a
//! floor and that no files import each other in a circle).

#[cfg(feature = "signing")]
mod authenticode;
mod certificate;
pub(crate) mod dn;
mod error;
#[cfg(feature = "signing")]
mod generate;
mod hash;
mod load;
mod loaded;
mod signed;
#[cfg(feature = "signing")]
mod signing;
mod summary;
pub(crate) mod tlv;

#[cfg(feature = "signing")]
pub use authenticode::{pe_image_digest, sign_pe};
pub use certificate::{Certificate, Validity};
pub use dn::{NameAttribute, NameError, attribute_short_name, parse_dotnet_name, render_dotnet_name, v1_simple_name};
pub use error::CertificateError;
#[cfg(feature = "signing")]
pub use generate::{DevCertificate, DevCertificateOptions, GenerateError, KeyAlgorithm, new_code_signing_certificate};
pub use hash::{CertificateHash, HashParseError, NameHash, Thumbprint};
pub use loaded::{CertificateFormat, LoadWarning, LoadedCertificate};
#[cfg(feature = "signing")]
pub use signing::{SignError, SigningIdentity};
pub use summary::CertificateSummary;

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
