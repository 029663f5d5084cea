//! The provisioning spec: what a user wants, as a TOML or JSON file.
//!
//! A facade over files of one concern, lowest first: `error`, `identity`, `grants`, `certificate`, `environment`,
//! `document` (the spec type), then `file` (reading and writing), `validate` and `changes` (specs derived from a
//! spec). They import the core (cert, cloud, subject, secret) and the diagnosis' inputs, nothing of the engine.

mod certificate;
mod changes;
mod document;
mod environment;
mod error;
mod file;
mod grants;
mod identity;
mod validate;

pub use certificate::CertificateSpec;
pub use document::ProvisionSpec;
pub use environment::{DiscoverSpec, EnvironmentSpec};
pub(crate) use environment::{is_pattern, name_matches};
pub use error::SpecError;
pub use grants::{ApiPermissionSpec, ApplicationUserSpec, GrantSpec};
pub use identity::{CreateIdentitySpec, IdentitySpec, RefusedCredential};
pub(crate) use identity::{describe_identity, same_identity};
