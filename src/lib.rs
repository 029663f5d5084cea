#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub, rust_2018_idioms)]
#![forbid(unsafe_code)]

pub mod auth;
pub mod cert;
pub mod clients;
pub mod cloud;
pub mod diagnose;
pub mod entities;
pub mod environment;
pub mod fic;
pub mod guid;
pub mod http;
pub mod provision;
pub mod secret;
pub mod subject;
#[cfg(feature = "testkit")]
pub mod testkit;

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
    /// A call to Dataverse, Graph or ARM failed.
    #[error(transparent)]
    Api(#[from] clients::ApiError),
}
