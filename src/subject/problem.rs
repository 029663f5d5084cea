//! What is wrong with a subject text, as a value with a message and a fix.

use std::fmt;

use serde::Serialize;
use uuid::Uuid;

use super::{Cause, Segment, Severity};
use crate::guid::{AppSegmentOwner, POWER_PLATFORM_MI_APP_SEGMENT};

/// One thing wrong with a subject identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "id", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SubjectProblem {
    /// Leading or trailing white space (the FIC would never match).
    SurroundingWhitespace,
    /// Not of the form `/eid1/c/...` at all.
    NotASubject,
    /// A deprecated version 0 subject (`component:pluginassembly,thumbprint:...,environment:...`).
    LegacyV0 {
        /// The environment id it names.
        environment: String,
        /// The SHA-1 thumbprint it names.
        thumbprint: String,
    },
    /// The cloud code after `/eid1/c/` is not one of the five, or the prefix is not `/eid1/c/{code}` at all.
    UnknownCloud {
        /// The code found (or the whole prefix, when it is not `/eid1/c/...`).
        code: String,
    },
    /// A segment is missing or out of order.
    MissingSegment {
        /// The segment expected, e.g. `t`.
        expected: &'static str,
        /// What was found instead (cut).
        found: String,
    },
    /// The tenant segment is not an encoded GUID.
    TenantNotEncoded {
        /// The segment.
        found: String,
        /// Why.
        reason: String,
    },
    /// The tenant GUID was written as text instead of encoded.
    TenantAsPlainGuid {
        /// The GUID found.
        tenant: Uuid,
        /// What the segment should be.
        expected: String,
    },
    /// The tenant segment reads as a plausible (version 4) GUID only in big-endian (RFC 4122) byte order: it
    /// was most likely encoded the wrong way. Entra tenant ids are version 4 GUIDs; this is a
    /// [`Severity::Suspicion`], since the subject itself is well-formed.
    TenantBigEndian {
        /// The tenant id as it was probably meant.
        tenant: Uuid,
        /// The correct segment for that tenant.
        expected: String,
    },
    /// The `/a/` segment is not the Power Platform app's: typically the user's own app (client) id.
    AppSegmentNotPowerPlatform {
        /// The segment found.
        found: String,
        /// The GUID it encodes, if any.
        decoded: Option<Uuid>,
    },
    /// The `/a/` segment is the app of one of Microsoft's internal clusters (pre-production or test), as
    /// Microsoft's own migration scripts write for those clusters. Customers' subjects carry the production app's
    /// segment; a [`Severity::Suspicion`], since a cloud profile may override the segment on purpose.
    AppSegmentOtherCluster {
        /// The segment found.
        found: String,
        /// Whose app it is.
        owner: AppSegmentOwner,
    },
    /// The environment is a Default environment of another tenant than the subject's `/t/` (a
    /// [`Severity::Suspicion`]: a Default environment's id carries its own tenant's id).
    DefaultEnvironmentOtherTenant {
        /// The tenant in the environment id.
        environment_tenant: Uuid,
        /// The tenant of the `/t/` segment.
        tenant: Uuid,
    },
    /// The component segment is not `plugin`.
    ComponentNotPlugin {
        /// What was found.
        found: String,
    },
    /// The environment segment is not a GUID.
    EnvironmentNotGuid {
        /// What was found.
        found: String,
    },
    /// The environment id is not lowercase and hyphenated without braces (matching is case-sensitive).
    EnvironmentNotCanonical {
        /// What was found.
        found: String,
        /// The canonical spelling.
        expected: String,
    },
    /// The `/h/` hash has upper-case letters; the platform presents lowercase and matching is case-sensitive.
    HashUppercase {
        /// The hash found.
        found: String,
        /// The lowercase hash.
        expected: String,
    },
    /// The `/h/` value is 40 hex digits: a SHA-1 thumbprint where the SHA-256 of the certificate belongs.
    HashIsSha1 {
        /// The value found.
        found: String,
    },
    /// The `/h/` value is not 64 hex digits.
    HashMalformed {
        /// The value found.
        found: String,
    },
    /// A version 2 `/i/` or `/s/` hash that is not 43 characters of Base64URL.
    NameHashMalformed {
        /// `i` or `s`.
        segment: &'static str,
        /// The value found.
        found: String,
    },
    /// A version 1 name whose CN contains a comma (fails with AADSTS700213).
    V1NameHasComma {
        /// `issuer` or `subject`.
        which: &'static str,
        /// The CN value.
        cn: String,
    },
    /// A version 1 name whose CN has non-ASCII characters (fails with AADSTS70050).
    V1NameNotAscii {
        /// `issuer` or `subject`.
        which: &'static str,
        /// The CN value.
        cn: String,
    },
    /// A version 1 segment holding the whole name (`CN=..., O=...`, as Microsoft's own migration scripts write
    /// it) where the platform writes the CN value alone.
    V1WholeName {
        /// `issuer` or `subject`.
        which: &'static str,
        /// The segment found.
        found: String,
        /// The CN value the platform writes there.
        cn: String,
    },
    /// The certificate part is neither `h/...` nor `i/.../s/...`.
    BindingMalformed {
        /// What was found (cut).
        found: String,
    },
}

impl SubjectProblem {
    /// Whether the problem is certain or a suspicion.
    pub fn severity(&self) -> Severity {
        match self {
            SubjectProblem::TenantBigEndian { .. }
            | SubjectProblem::AppSegmentOtherCluster { .. }
            | SubjectProblem::DefaultEnvironmentOtherTenant { .. } => Severity::Suspicion,
            _ => Severity::Error,
        }
    }

    /// The segment the problem is in, when it is in one.
    pub fn segment(&self) -> Option<Segment> {
        match self {
            SubjectProblem::SurroundingWhitespace | SubjectProblem::NotASubject | SubjectProblem::LegacyV0 { .. } => {
                None
            }
            SubjectProblem::MissingSegment { expected, .. } => match *expected {
                "t" => Some(Segment::Tenant),
                "a" => Some(Segment::App),
                "n" => Some(Segment::Component),
                _ => Some(Segment::Environment),
            },
            SubjectProblem::UnknownCloud { .. } => Some(Segment::Prefix),
            SubjectProblem::TenantNotEncoded { .. }
            | SubjectProblem::TenantAsPlainGuid { .. }
            | SubjectProblem::TenantBigEndian { .. } => Some(Segment::Tenant),
            SubjectProblem::AppSegmentNotPowerPlatform { .. } | SubjectProblem::AppSegmentOtherCluster { .. } => {
                Some(Segment::App)
            }
            SubjectProblem::ComponentNotPlugin { .. } => Some(Segment::Component),
            SubjectProblem::EnvironmentNotGuid { .. }
            | SubjectProblem::EnvironmentNotCanonical { .. }
            | SubjectProblem::DefaultEnvironmentOtherTenant { .. } => Some(Segment::Environment),
            SubjectProblem::HashUppercase { .. }
            | SubjectProblem::HashIsSha1 { .. }
            | SubjectProblem::HashMalformed { .. }
            | SubjectProblem::NameHashMalformed { .. }
            | SubjectProblem::V1NameHasComma { .. }
            | SubjectProblem::V1NameNotAscii { .. }
            | SubjectProblem::V1WholeName { .. }
            | SubjectProblem::BindingMalformed { .. } => Some(Segment::Binding),
        }
    }

    /// The mistake, in the one vocabulary `explain-subject` and `diagnose` share.
    pub fn cause(&self) -> Cause {
        match self {
            SubjectProblem::SurroundingWhitespace => Cause::SurroundingWhitespace,
            SubjectProblem::NotASubject => Cause::NotASubject,
            SubjectProblem::LegacyV0 { .. } => Cause::LegacyV0,
            SubjectProblem::UnknownCloud { .. } => Cause::PrefixMismatch,
            SubjectProblem::MissingSegment { .. } => Cause::MissingSegment,
            SubjectProblem::TenantNotEncoded { .. } | SubjectProblem::TenantAsPlainGuid { .. } => {
                Cause::TenantNotEncoded
            }
            SubjectProblem::TenantBigEndian { .. } => Cause::TenantBigEndian,
            SubjectProblem::AppSegmentNotPowerPlatform { .. } | SubjectProblem::AppSegmentOtherCluster { .. } => {
                Cause::AppSegmentNotPlatform
            }
            SubjectProblem::DefaultEnvironmentOtherTenant { .. } => Cause::DefaultEnvironmentOtherTenant,
            SubjectProblem::ComponentNotPlugin { .. } => Cause::ComponentMismatch,
            SubjectProblem::EnvironmentNotGuid { .. } => Cause::EnvironmentMismatch,
            SubjectProblem::EnvironmentNotCanonical { .. } => Cause::EnvironmentNotCanonical,
            SubjectProblem::HashUppercase { .. } => Cause::HashUppercase,
            SubjectProblem::HashIsSha1 { .. } => Cause::HashIsSha1Thumbprint,
            SubjectProblem::HashMalformed { .. } => Cause::HashNotHex,
            SubjectProblem::NameHashMalformed { .. } => Cause::NameHashEncoding,
            SubjectProblem::V1NameHasComma { .. } => Cause::V1NameHasComma,
            SubjectProblem::V1NameNotAscii { .. } => Cause::V1NameNotAscii,
            SubjectProblem::V1WholeName { .. } => Cause::V1WholeName,
            SubjectProblem::BindingMalformed { .. } => Cause::BindingMalformed,
        }
    }

    /// A stable identifier for scripts, e.g. `tenant_big_endian`: the [`Cause`]'s, so that `explain-subject` and
    /// `diagnose` name a mistake alike.
    pub fn id(&self) -> &'static str {
        self.cause().id()
    }
}

impl fmt::Display for SubjectProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectProblem::SurroundingWhitespace => {
                f.write_str("the subject has leading or trailing white space; remove it")
            }
            SubjectProblem::NotASubject => f.write_str(
                "this is not a subject identifier: it should start with /eid1/c/{cloud}/t/{tenant}/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/{environment}/",
            ),
            SubjectProblem::LegacyV0 { environment, thumbprint } => write!(
                f,
                "this is a deprecated version 0 subject (environment {environment}, SHA-1 {thumbprint}); create a version 2 subject and FIC instead"
            ),
            SubjectProblem::UnknownCloud { code } if code.starts_with('/') => write!(
                f,
                "the prefix '{code}' is not /eid1/c/{{cloud}}; the platform uses /eid1/c/pub, usg, chn, uss or usn"
            ),
            SubjectProblem::UnknownCloud { code } => write!(
                f,
                "unknown cloud code '{code}' after /eid1/c/; the platform uses pub, usg, chn, uss or usn"
            ),
            SubjectProblem::MissingSegment { expected, found } => {
                write!(f, "expected the /{expected}/ segment here, found '{found}'")
            }
            SubjectProblem::TenantNotEncoded { found, reason } => {
                write!(f, "the tenant segment '{found}' is not an encoded GUID: {reason}")
            }
            SubjectProblem::TenantAsPlainGuid { tenant, expected } => write!(
                f,
                "the tenant {tenant} is written as plain text; the platform writes it encoded: /t/{expected}"
            ),
            SubjectProblem::TenantBigEndian { tenant, expected } => write!(
                f,
                "the tenant segment was encoded in big-endian byte order (tenant {tenant}); the platform uses .NET's Guid.ToByteArray() order: /t/{expected}"
            ),
            SubjectProblem::AppSegmentNotPowerPlatform { found, decoded } => {
                write!(f, "the /a/ segment '{found}'")?;
                if let Some(id) = decoded {
                    write!(f, " (app id {id})")?;
                }
                write!(
                    f,
                    " is not the Power Platform app's; it is always {POWER_PLATFORM_MI_APP_SEGMENT} (your own app's id never goes there)"
                )
            }
            SubjectProblem::ComponentNotPlugin { found } => {
                write!(f, "the component segment is '/n/{found}'; plug-ins use /n/plugin")
            }
            SubjectProblem::AppSegmentOtherCluster { found, owner } => write!(
                f,
                "the /a/ segment '{found}' is {} (Microsoft's own scripts use it for that cluster); customer environments present /a/{POWER_PLATFORM_MI_APP_SEGMENT}",
                owner.describe()
            ),
            SubjectProblem::DefaultEnvironmentOtherTenant { environment_tenant, tenant } => write!(
                f,
                "the environment is the Default environment of tenant {environment_tenant}, but the subject's tenant is {tenant}"
            ),
            SubjectProblem::EnvironmentNotGuid { found } => write!(
                f,
                "the environment segment '{found}' is neither a GUID nor Default-{{tenant GUID}}; use the Power Platform environment id"
            ),
            SubjectProblem::EnvironmentNotCanonical { found, expected } => write!(
                f,
                "the environment id '{found}' must be written lowercase with hyphens and no braces: {expected}"
            ),
            SubjectProblem::HashUppercase { expected, .. } => write!(
                f,
                "the certificate hash has upper-case letters; the platform presents it lowercase and matching is case-sensitive: /h/{expected}"
            ),
            SubjectProblem::HashIsSha1 { found } => write!(
                f,
                "the /h/ value '{found}' is a SHA-1 thumbprint; the platform uses the SHA-256 of the certificate's DER bytes (64 hex digits)"
            ),
            SubjectProblem::HashMalformed { found } => write!(
                f,
                "the /h/ value '{found}' is not 64 hex digits (the SHA-256 of the certificate's DER bytes)"
            ),
            SubjectProblem::NameHashMalformed { segment, found } => write!(
                f,
                "the /{segment}/ value '{found}' is not a version 2 name hash (43 characters of Base64URL)"
            ),
            SubjectProblem::V1NameHasComma { which, cn } => write!(
                f,
                "the CN '{cn}' of the version 1 {which} name contains a comma, which fails with AADSTS700213; use version 2"
            ),
            SubjectProblem::V1NameNotAscii { which, cn } => write!(
                f,
                "the CN '{cn}' of the version 1 {which} name has non-ASCII characters, which fails with AADSTS70050; use version 2"
            ),
            SubjectProblem::V1WholeName { which, found, cn } => write!(
                f,
                "the version 1 /{}/ segment is the whole {which} name '{found}'; the platform writes its CN alone: '{cn}'",
                &which[..1]
            ),
            SubjectProblem::BindingMalformed { found } => write!(
                f,
                "after the environment, expected h/{{sha256}} or i/{{issuer}}/s/{{subject}}, found '{found}'"
            ),
        }
    }
}
