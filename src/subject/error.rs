//! Why a subject identifier cannot be built.

/// Why a subject identifier cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubjectError {
    /// A version 1 name whose CN contains a comma: Microsoft documents that such subjects fail with AADSTS700213.
    #[error(
        "the CN '{cn}' of the certificate's {which} name '{name}' contains a comma, which the version 1 format cannot carry (the token request fails with AADSTS700213); use version 2"
    )]
    V1NameHasComma {
        /// `issuer` or `subject`.
        which: &'static str,
        /// The whole name.
        name: String,
        /// The CN value with the comma.
        cn: String,
    },
    /// A version 1 name whose CN has non-ASCII characters: Microsoft documents that such subjects fail with
    /// AADSTS70050.
    #[error(
        "the CN '{cn}' of the certificate's {which} name '{name}' has non-ASCII characters, which the version 1 format cannot carry (the token request fails with AADSTS70050); use version 2"
    )]
    V1NameNotAscii {
        /// `issuer` or `subject`.
        which: &'static str,
        /// The whole name.
        name: String,
        /// The CN value with the non-ASCII characters.
        cn: String,
    },
    /// A version 1 name whose simple name (CN) is empty, has surrounding white space, or contains `/s/` (which
    /// would make the subject ambiguous), or a name with no attribute at all.
    #[error("the certificate's {which} name '{name}' cannot be written in a version 1 subject; use version 2")]
    V1NameUnusable {
        /// `issuer` or `subject`.
        which: &'static str,
        /// The name.
        name: String,
    },
    /// A version 1 segment holding a whole name (`CN=..., O=...`) where the platform writes the CN value alone.
    #[error("the version 1 {which} segment '{name}' is a whole name; the platform writes the CN value alone: '{cn}'")]
    V1WholeName {
        /// `issuer` or `subject`.
        which: &'static str,
        /// The segment given.
        name: String,
        /// The CN value it should be.
        cn: String,
    },
    /// The certificate's name cannot be rendered as .NET renders it, so no trusted-CA subject can be built from
    /// it (a self-signed subject, which needs no name, still can).
    #[error("the certificate's {which} name cannot be read: {reason}")]
    NameUnreadable {
        /// `issuer` or `subject`.
        which: &'static str,
        /// Why (the attribute and the reason).
        reason: String,
    },
    /// The cloud profile's subject prefix is not `/eid1/c/{code}`.
    #[error("the subject prefix '{prefix}' is not of the form /eid1/c/{{code}}")]
    BadPrefix {
        /// The prefix given.
        prefix: String,
    },
    /// A format version other than 1 or 2.
    #[error("unknown subject format version '{given}'; use 1 or 2 (2 for new setups)")]
    UnknownVersion {
        /// What was given.
        given: String,
    },
    /// The cloud profile's `/a/` segment is not an encoded GUID.
    #[error("the app segment '{segment}' of the cloud profile is not an encoded GUID: {reason}")]
    BadAppSegment {
        /// The segment given.
        segment: String,
        /// Why it is not an encoded GUID.
        reason: crate::guid::GuidError,
    },
    /// A certificate kind other than auto, self-signed, trusted.
    #[error("unknown certificate kind '{given}'; use auto, self-signed or trusted")]
    UnknownKind {
        /// What was given.
        given: String,
    },
}
