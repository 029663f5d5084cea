#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub, rust_2018_idioms)]
#![forbid(unsafe_code)]

#[cfg(feature = "client")]
pub mod audit;
#[cfg(feature = "client")]
pub mod auth;
pub mod cert;
#[cfg(feature = "client")]
pub mod clients;
pub mod cloud;
pub mod diagnose;
pub mod entities;
pub mod environment;
pub mod fic;
pub mod files;
pub mod guid;
#[cfg(feature = "client")]
pub mod http;
#[cfg(feature = "client")]
pub mod provision;
pub mod secret;
pub mod subject;
#[cfg(feature = "testkit")]
pub mod testkit;

/// `docs/embedding.md`'s examples, compiled as doctests so that the guide names only what exists.
#[cfg(all(doctest, feature = "client"))]
#[doc = include_str!("../docs/embedding.md")]
mod embedding_guide {}

/// `docs/signing.md`'s example, compiled as a doctest.
#[cfg(all(doctest, feature = "signing"))]
#[doc = include_str!("../docs/signing.md")]
mod signing_guide {}

/// The crates the public traits' signatures use ([`http::Transport`] speaks `http` and `bytes`, every trait is an
/// `async_trait`), re-exported so that implementing them needs no guessing of names or versions.
#[cfg(feature = "client")]
pub mod reexports {
    pub use ::async_trait::async_trait;
    /// azure_core, for an azure_identity credential's options (e.g. its `ClientOptions::transport`, with
    /// [`TransportHttpClient`](crate::auth::TransportHttpClient)).
    #[cfg(feature = "azure-identity")]
    pub use ::azure_core;
    /// azure_identity, whose credentials [`AzureIdentity`](crate::auth::AzureIdentity) wraps.
    #[cfg(feature = "azure-identity")]
    pub use ::azure_identity;
    pub use ::bytes;
    pub use ::http;
    /// The `reqwest` this crate's default transport is built on: configure a `reqwest::Client` (a proxy, extra root
    /// certificates) and give it to [`ReqwestTransport::from_client`](crate::http::ReqwestTransport::from_client)
    /// without depending on a `reqwest` of your own that might not be the same version.
    #[cfg(feature = "reqwest")]
    pub use ::reqwest;
}

pub use cert::{Certificate, CertificateError, CertificateHash, NameHash};
pub use cloud::{Cloud, CloudProfile};
pub use entities::{ManagedIdentity, NewManagedIdentity, PluginAssembly, PluginPackage};
pub use environment::EnvironmentId;
pub use fic::FederatedIdentityCredential;
pub use subject::{CertificateBinding, CertificateKind, SubjectFormatVersion, SubjectIdentifier};

/// Any error of this crate, for callers that do not need to tell the modules apart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A GUID or encoded GUID was refused.
    #[error(transparent)]
    Guid(#[from] guid::GuidError),
    /// An environment id was refused.
    #[error(transparent)]
    EnvironmentId(#[from] environment::EnvironmentIdError),
    /// A cloud name was not recognised.
    #[error(transparent)]
    Cloud(#[from] cloud::UnknownCloud),
    /// A certificate could not be read.
    #[error(transparent)]
    Certificate(#[from] cert::CertificateError),
    /// A hash given as text was refused.
    #[error(transparent)]
    Hash(#[from] cert::HashParseError),
    /// A subject could not be built.
    #[error(transparent)]
    Subject(#[from] subject::SubjectError),
    /// A subject could not be parsed.
    #[error(transparent)]
    SubjectParse(#[from] subject::SubjectParseError),
    /// A FIC would be refused.
    #[error(transparent)]
    Fic(#[from] fic::FicError),
    /// A Dataverse row could not be built.
    #[error(transparent)]
    Row(#[from] entities::RowError),
    #[cfg(feature = "client")]
    /// A call to Dataverse, Graph or ARM failed.
    #[error(transparent)]
    Api(#[from] clients::ApiError),
    #[cfg(feature = "client")]
    /// A token could not be had.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[cfg(feature = "client")]
    /// The transport failed (no HTTP response).
    #[error(transparent)]
    Transport(#[from] http::TransportError),
    /// A distinguished name could not be read.
    #[error(transparent)]
    Name(#[from] cert::NameError),
    #[cfg(feature = "client")]
    /// A provisioning spec was refused.
    #[error(transparent)]
    Spec(#[from] provision::SpecError),
    #[cfg(feature = "client")]
    /// Provisioning failed.
    #[error(transparent)]
    Provision(#[from] provision::ProvisionError),
    /// An error text could not be read.
    #[error(transparent)]
    Diagnose(#[from] diagnose::DiagnoseError),
    #[cfg(feature = "signing")]
    /// A development certificate could not be made.
    #[error(transparent)]
    Generate(#[from] cert::GenerateError),
}

#[cfg(test)]
mod tests {
    /// Every error type of the crate converts into [`crate::Error`] with `?`, and keeps its source.
    #[test]
    fn every_error_converts_and_keeps_its_message() {
        fn into(e: impl Into<crate::Error> + std::fmt::Display) -> (String, crate::Error) {
            (e.to_string(), e.into())
        }
        let mut samples = vec![
            into("x".parse::<crate::environment::EnvironmentId>().unwrap_err()),
            into(crate::guid::parse_guid("x").unwrap_err()),
            into(crate::diagnose::parse_error("no code here").unwrap_err()),
            into(crate::cert::Certificate::from_der(b"").unwrap_err()),
        ];
        #[cfg(feature = "client")]
        samples.push(into(crate::provision::SpecError::NoEnvironment));
        for (text, error) in samples {
            assert_eq!(error.to_string(), text, "transparent: the same message");
        }
    }
}
