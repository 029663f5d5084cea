//! Subject identifiers: the `subject` of the FIC, computed exactly as the platform presents it.
//!
//! ```text
//! {prefix}/t/{tenant}/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/{environment}/h/{sha256}                  self-signed
//! {prefix}/t/{tenant}/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/{environment}/i/{issuerHash}/s/{subjectHash}  trusted CA, version 2
//! {prefix}/t/{tenant}/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/{environment}/i/{issuerCN}/s/{subjectCN}  trusted CA, version 1 (legacy)
//! ```
//! `{tenant}` is the tenant GUID encoded by [`encode_guid`](crate::guid::encode_guid), `{environment}` the
//! Power Platform environment id (lowercase, hyphenated; not the organization id), `{sha256}` the
//! certificate's [`CertificateHash`](crate::cert::CertificateHash) (lowercase hex) and the name hashes [`NameHash`](crate::cert::NameHash)es of the .NET-formatted
//! issuer and subject names. Version 1 carries the two names' CN values themselves (see [`v1_simple_name`](crate::cert::v1_simple_name)), not
//! the whole names.
//!
//! ```
//! use dataverse_mi::cert::Certificate;
//! use dataverse_mi::cloud::{Cloud, CloudProfile};
//! use dataverse_mi::subject::{CertificateBinding, CertificateKind, SubjectFormatVersion, SubjectIdentifier};
//! use dataverse_mi::guid::parse_guid;
//!
//! let der = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/contoso-plugins.cer"))?;
//! let cert = Certificate::from_der(&der)?;
//! let binding = CertificateBinding::for_certificate(&cert, SubjectFormatVersion::V2, CertificateKind::Auto)?;
//! let subject = SubjectIdentifier::new(
//!     &CloudProfile::from(Cloud::Public),
//!     parse_guid("72f988bf-86f1-41af-91ab-2d7cd011db47")?,
//!     parse_guid("7efcc31a-c410-e20e-9b3c-3ea55e7f9c56")?,
//!     binding,
//! )?;
//! let text = subject.to_string();
//! assert!(text.starts_with("/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/7efcc31a-c410-e20e-9b3c-3ea55e7f9c56/h/"));
//! // Parsing gives the same value back.
//! assert_eq!(text.parse::<SubjectIdentifier>()?, subject);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A facade over files of one concern, lowest first: `version`, `error`, `v1` (version 1's rules), `binding`,
//! `identifier`, `cause`, `problem`, `segments`, `explain` (reading any subject text), `parse`, and `legacy`
//! (version 0). They import the core below them: `guid`, `cloud`, `environment`, `cert`.
//!
//! Its files import `guid`, `cloud`, `environment` and `cert`: the floors below it (`tests/architecture.rs` checks that no import runs up a
//! floor and that no files import each other in a circle).

mod binding;
mod cause;
mod error;
mod explain;
mod identifier;
mod legacy;
mod parse;
mod problem;
mod segments;
mod v1;
mod version;

pub use binding::CertificateBinding;
pub use cause::{Cause, Severity};
pub use error::SubjectError;
pub(crate) use explain::read_binding;
pub use explain::{SubjectExplanation, SubjectParts, explain_subject};
pub use identifier::SubjectIdentifier;
pub use legacy::LegacyV0;
pub use parse::SubjectParseError;
pub use problem::SubjectProblem;
pub use segments::{Segment, SubjectSegments};
pub(crate) use v1::v1_whole_name_cn;
pub use version::{CertificateKind, SubjectFormatVersion};
