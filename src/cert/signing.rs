//! A signer: a certificate with its private key (from a PFX), and why signing failed. The signatures themselves
//! are `authenticode`'s (assemblies).
//!
//! It imports `cert`'s own files and `secret`: the core floor (no I/O).

use std::fmt;

use super::Certificate;
use crate::secret::Secret;

/// Why a file could not be signed. The file is never touched when signing fails.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The PFX could not be opened (a wrong password, or not a PFX).
    #[error("the PFX cannot be opened: {detail}")]
    Pfx {
        /// What the PKCS#12 reader said.
        detail: String,
    },
    /// The PFX holds certificates but no private key.
    #[error(
        "the PFX holds no private key: export it with its key (Export-PfxCertificate, or openssl pkcs12 -export -inkey)"
    )]
    NoPrivateKey,
    /// The key is of a kind this crate does not sign with.
    #[error("the PFX's key cannot sign here: {detail} (RSA and ECDSA P-256 keys can)")]
    UnsupportedKey {
        /// What the crypto library said.
        detail: String,
    },
    /// The signing certificate cannot be read.
    #[error("the signing certificate cannot be read: {detail}")]
    Certificate {
        /// Why.
        detail: String,
    },
    /// The file is not a PE file (an assembly) that can be signed.
    #[error("this is not a PE file (.dll) that can be signed: {detail}")]
    NotPe {
        /// What is wrong.
        detail: String,
    },
    /// The file is signed already.
    #[error(
        "the file is signed already; sign it again with replace (--replace) to put the new signature in place of that one"
    )]
    AlreadySigned,
    /// A signature part could not be encoded.
    #[error("the signature could not be encoded: {detail}")]
    Encoding {
        /// What the DER encoder said.
        detail: String,
    },
    /// The signing itself failed.
    #[error("the signature could not be made: {detail}")]
    Signature {
        /// What the crypto library said.
        detail: String,
    },
}

/// A certificate with its private key: what signs. The key never shows in `Debug`.
pub struct SigningIdentity {
    /// The signing certificate.
    pub certificate: Certificate,
    /// The other certificates to include (its issuers), in the PFX's order.
    pub chain: Vec<Certificate>,
    key: rcgen::KeyPair,
}

impl fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("certificate", &self.certificate)
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl SigningIdentity {
    /// The certificate with the private key of a PFX, and the PFX's other certificates.
    pub fn from_pkcs12(pfx: &[u8], password: &Secret) -> Result<Self, SignError> {
        let store =
            p12_keystore::KeyStore::from_pkcs12(pfx, password.expose(), p12_keystore::Pkcs12ImportPolicy::Relaxed)
                .map_err(|e| SignError::Pfx { detail: e.to_string() })?;
        let (_, key_chain) = store.private_key_chain().ok_or(SignError::NoPrivateKey)?;
        let mut certificates = key_chain.certs().iter().map(|c| Certificate::from_der(c.as_der()));
        let certificate = certificates
            .next()
            .ok_or(SignError::NoPrivateKey)?
            .map_err(|e| SignError::Certificate { detail: e.to_string() })?;
        let chain = certificates.filter_map(Result::ok).collect();
        Self::from_pkcs8(certificate, chain, key_chain.key().as_der())
    }

    /// A certificate with its private key, PKCS#8 DER.
    pub fn from_pkcs8(certificate: Certificate, chain: Vec<Certificate>, pkcs8: &[u8]) -> Result<Self, SignError> {
        let key = rcgen::KeyPair::try_from(pkcs8).map_err(|e| SignError::UnsupportedKey { detail: e.to_string() })?;
        Ok(SigningIdentity { certificate, chain, key })
    }

    /// Signs `message` (SHA-256 with the key: RSA PKCS#1 v1.5 or ECDSA).
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        use rcgen::SigningKey as _;
        self.key.sign(message).map_err(|e| SignError::Signature { detail: e.to_string() })
    }

    /// The `SignerInfo` signature algorithm: rsaEncryption (as signtool writes it) or ecdsa-with-SHA256.
    pub(crate) fn signature_algorithm(&self) -> spki::AlgorithmIdentifierOwned {
        if self.key.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256 {
            spki::AlgorithmIdentifierOwned {
                oid: der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2"),
                parameters: None,
            }
        } else {
            spki::AlgorithmIdentifierOwned {
                oid: der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1"),
                parameters: Some(der::Any::null()),
            }
        }
    }
}
