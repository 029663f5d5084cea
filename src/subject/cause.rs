//! The causes a subject problem or a diagnosis names, with their severities: one vocabulary for both.

use serde::{Deserialize, Serialize};

/// A mistake in a subject or a FIC, or another cause of a failed token request: the one vocabulary that
/// [`explain_subject`](super::explain_subject) ([`SubjectProblem::cause`](super::SubjectProblem::cause)) and `diagnose` share, so the same subject is named the same way
/// by both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cause {
    /// The tenant GUID was encoded in big-endian byte order.
    TenantBigEndian,
    /// The certificate hash is in upper case.
    HashUppercase,
    /// The hash is of the `.pfx` or `.pem` file, not of the certificate's DER bytes (formerly `hash_of_pfx`).
    HashOfContainerFile,
    /// The hash is of another certificate of the chain (the CA, an intermediate), or a name hash of another
    /// certificate's name.
    HashOfOtherCertificate,
    /// The `/h/` value is not lowercase hex: Base64 or Base64URL of the digest, or not a hash at all.
    HashNotHex,
    /// The `/h/` value is a SHA-1 thumbprint (40 hex digits) instead of the SHA-256.
    HashIsSha1Thumbprint,
    /// A version 2 name hash in another encoding than Base64URL without padding (hex, standard Base64).
    NameHashEncoding,
    /// The version 2 issuer and subject name hashes are swapped.
    NamesSwapped,
    /// A version 1 segment holding the whole name where the platform writes the CN value alone (what Microsoft's
    /// own migration scripts, and earlier versions of this crate, wrote), or the reverse where the platform's own subject
    /// says so.
    V1WholeName,
    /// A version 1 CN with a comma: Microsoft documents that it fails with AADSTS700213.
    V1NameHasComma,
    /// A version 1 CN with non-ASCII characters: Microsoft documents that it fails with AADSTS70050.
    V1NameNotAscii,
    /// The certificate part is neither `h/{sha256}` nor `i/{issuer}/s/{subject}`.
    BindingMalformed,
    /// A segment of the subject is missing or out of order.
    MissingSegment,
    /// The environment is the Default environment of another tenant than the subject's `/t/`.
    DefaultEnvironmentOtherTenant,
    /// The subject the platform presents is not the given certificate's: the registered plug-in is signed with
    /// another certificate.
    PresentedOtherCertificate,
    /// The self-signed form `/h/` for a CA-issued certificate, or the reverse.
    BindingKindMismatch,
    /// The tenant segment names another tenant.
    TenantMismatch,
    /// The tenant segment is not an encoded GUID (the GUID as text, standard Base64, ...).
    TenantNotEncoded,
    /// The tenant segment differs only in upper/lower case (Base64URL is case-sensitive).
    TenantCase,
    /// The environment segment names another environment (or is not an environment id).
    EnvironmentMismatch,
    /// The right environment written another way: upper case, no hyphens, braces, a Default environment's other
    /// spellings.
    EnvironmentNotCanonical,
    /// The component segment is not `plugin`.
    ComponentMismatch,
    /// The subject prefix is not a cloud's (a typo, a missing `/eid1`).
    PrefixMismatch,
    /// The audience differs from the cloud's in something else than the cloud (its case, a typo).
    AudienceMismatch,
    /// White space around the subject.
    SurroundingWhitespace,
    /// The FIC's subject is not a subject identifier at all.
    NotASubject,
    /// The organization id was used where the environment id belongs.
    OrganizationIdAsEnvironment,
    /// The user's own app id is in the `/a/` segment.
    UserAppIdInAppSegment,
    /// The `/a/` segment is not the platform's: e.g. the app of one of Microsoft's internal clusters
    /// (pre-production, test), copied from Microsoft's own scripts.
    AppSegmentNotPlatform,
    /// The subject's format version differs from the row's.
    VersionMismatch,
    /// A distinguished name was formatted the RFC 4514 / OpenSSL way instead of .NET's.
    DnNotDotnetFormat,
    /// The cloud (subject prefix or audience) is wrong.
    WrongCloud,
    /// The FIC's issuer is wrong (no `/v2.0`, another tenant, the v1 `sts.windows.net` form).
    IssuerMismatch,
    /// The FIC matches but was just created: Entra needs a short while.
    PropagationDelay,
    /// There is no FIC at all.
    NoFic,
    /// A FIC differs from the presented subject in upper/lower case only (Entra matches case-sensitively;
    /// AADSTS7002138 is its error for this).
    SubjectCase,
    /// A different certificate, environment or tenant than the one the platform presented.
    DifferentValue,
    /// A deprecated version 0 FIC.
    LegacyV0,
    /// The plug-in runs from a plug-in package that is not bound to a managed identity (the assembly inside it
    /// may be: the package's binding is the one that counts).
    PackageNotBound,
    /// The plug-in's assembly is bound to no managed identity.
    ComponentNotBound,
    /// The assembly (or package) is not signed with a certificate, or only strong-named (`.snk`).
    AssemblyNotSigned,
    /// A call to Dataverse with the identity's token answered 403 "... is not a member of the organization": the
    /// identity is no application user of that environment.
    NoApplicationUser,
    /// A call to Dataverse answered that the identity's application user lacks a privilege (`prv...`): it has no
    /// security role that gives it.
    DataversePrivilegeMissing,
    /// A call to Microsoft Graph answered 403: the identity lacks the application permission.
    GraphPermissionMissing,
    /// The token was asked for a scope without `/.default` (AADSTS1002012).
    ScopeWithoutDefault,
    /// The token was asked for a resource the tenant does not know (a mistyped application ID URI; AADSTS500011).
    ResourceNotFound,
    /// `Azure.Core` or `Azure.Identity` failed to load: the plug-in bundles another version than the sandbox's.
    AzureSdkBundled,
    /// Nothing known explains the error.
    Unknown,
}

impl Cause {
    /// Every cause, in the order of the enum (for documentation and tests that list them all).
    pub const ALL: &'static [Cause] = &[
        Cause::TenantBigEndian,
        Cause::HashUppercase,
        Cause::HashOfContainerFile,
        Cause::HashOfOtherCertificate,
        Cause::HashNotHex,
        Cause::HashIsSha1Thumbprint,
        Cause::NameHashEncoding,
        Cause::NamesSwapped,
        Cause::V1WholeName,
        Cause::V1NameHasComma,
        Cause::V1NameNotAscii,
        Cause::BindingMalformed,
        Cause::MissingSegment,
        Cause::DefaultEnvironmentOtherTenant,
        Cause::PresentedOtherCertificate,
        Cause::BindingKindMismatch,
        Cause::TenantMismatch,
        Cause::TenantNotEncoded,
        Cause::TenantCase,
        Cause::EnvironmentMismatch,
        Cause::EnvironmentNotCanonical,
        Cause::ComponentMismatch,
        Cause::PrefixMismatch,
        Cause::AudienceMismatch,
        Cause::SurroundingWhitespace,
        Cause::NotASubject,
        Cause::OrganizationIdAsEnvironment,
        Cause::UserAppIdInAppSegment,
        Cause::AppSegmentNotPlatform,
        Cause::VersionMismatch,
        Cause::DnNotDotnetFormat,
        Cause::WrongCloud,
        Cause::IssuerMismatch,
        Cause::PropagationDelay,
        Cause::NoFic,
        Cause::SubjectCase,
        Cause::DifferentValue,
        Cause::LegacyV0,
        Cause::PackageNotBound,
        Cause::ComponentNotBound,
        Cause::AssemblyNotSigned,
        Cause::NoApplicationUser,
        Cause::DataversePrivilegeMissing,
        Cause::GraphPermissionMissing,
        Cause::ScopeWithoutDefault,
        Cause::ResourceNotFound,
        Cause::AzureSdkBundled,
        Cause::Unknown,
    ];

    /// The stable identifier scripts match on, e.g. `tenant_big_endian`.
    pub fn id(self) -> &'static str {
        match self {
            Cause::TenantBigEndian => "tenant_big_endian",
            Cause::HashUppercase => "hash_uppercase",
            Cause::HashOfContainerFile => "hash_of_container_file",
            Cause::HashOfOtherCertificate => "hash_of_other_certificate",
            Cause::HashNotHex => "hash_not_hex",
            Cause::HashIsSha1Thumbprint => "hash_is_sha1_thumbprint",
            Cause::NameHashEncoding => "name_hash_encoding",
            Cause::NamesSwapped => "names_swapped",
            Cause::V1WholeName => "v1_whole_name",
            Cause::V1NameHasComma => "v1_name_has_comma",
            Cause::V1NameNotAscii => "v1_name_not_ascii",
            Cause::BindingMalformed => "binding_malformed",
            Cause::MissingSegment => "missing_segment",
            Cause::DefaultEnvironmentOtherTenant => "default_environment_other_tenant",
            Cause::PresentedOtherCertificate => "presented_other_certificate",
            Cause::BindingKindMismatch => "binding_kind_mismatch",
            Cause::TenantMismatch => "tenant_mismatch",
            Cause::TenantNotEncoded => "tenant_not_encoded",
            Cause::TenantCase => "tenant_case",
            Cause::EnvironmentMismatch => "environment_mismatch",
            Cause::EnvironmentNotCanonical => "environment_not_canonical",
            Cause::ComponentMismatch => "component_mismatch",
            Cause::PrefixMismatch => "prefix_mismatch",
            Cause::AudienceMismatch => "audience_mismatch",
            Cause::SurroundingWhitespace => "surrounding_whitespace",
            Cause::NotASubject => "not_a_subject",
            Cause::OrganizationIdAsEnvironment => "organization_id_as_environment",
            Cause::UserAppIdInAppSegment => "user_app_id_in_app_segment",
            Cause::AppSegmentNotPlatform => "app_segment_not_platform",
            Cause::VersionMismatch => "version_mismatch",
            Cause::DnNotDotnetFormat => "dn_not_dotnet_format",
            Cause::WrongCloud => "wrong_cloud",
            Cause::IssuerMismatch => "issuer_mismatch",
            Cause::PropagationDelay => "propagation_delay",
            Cause::NoFic => "no_fic",
            Cause::SubjectCase => "subject_case",
            Cause::DifferentValue => "different_value",
            Cause::LegacyV0 => "legacy_v0",
            Cause::PackageNotBound => "package_not_bound",
            Cause::ComponentNotBound => "component_not_bound",
            Cause::AssemblyNotSigned => "assembly_not_signed",
            Cause::NoApplicationUser => "no_application_user",
            Cause::DataversePrivilegeMissing => "dataverse_privilege_missing",
            Cause::GraphPermissionMissing => "graph_permission_missing",
            Cause::ScopeWithoutDefault => "scope_without_default",
            Cause::ResourceNotFound => "resource_not_found",
            Cause::AzureSdkBundled => "azure_sdk_bundled",
            Cause::Unknown => "unknown",
        }
    }
}

/// How sure a [`SubjectProblem`](super::SubjectProblem) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The platform never presents such a subject: the FIC cannot match.
    Error,
    /// The subject is well-formed but most likely built from a wrong value (e.g. a tenant id that is only a
    /// plausible GUID when read in the wrong byte order).
    Suspicion,
}
