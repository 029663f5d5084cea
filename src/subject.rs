//! Subject identifiers: the `subject` of the FIC, computed exactly as the platform presents it.
//!
//! ```text
//! {prefix}/t/{tenant}/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/{environment}/h/{sha256}                  self-signed
//! {prefix}/t/{tenant}/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/{environment}/i/{issuerHash}/s/{subjectHash}  trusted CA, version 2
//! {prefix}/t/{tenant}/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/{environment}/i/{issuerCN}/s/{subjectCN}  trusted CA, version 1 (legacy)
//! ```
//! `{tenant}` is the tenant GUID encoded by [`encode_guid`], `{environment}` the
//! Power Platform environment id (lowercase, hyphenated; not the organization id), `{sha256}` the
//! certificate's [`CertificateHash`] (lowercase hex) and the name hashes [`NameHash`]es of the .NET-formatted
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

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::cert::{Certificate, CertificateHash, NameHash, Thumbprint, v1_simple_name};
use crate::cloud::{Cloud, CloudProfile};
use crate::environment::EnvironmentId;
use crate::guid::{
    AppSegmentOwner, POWER_PLATFORM_MI_APP_ID, POWER_PLATFORM_MI_APP_SEGMENT, decode_guid, decode_guid_big_endian,
    encode_guid, parse_guid,
};

/// The subject format version, which is also the `version` column of the `managedidentity` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SubjectFormatVersion {
    /// Version 1: trusted-CA subjects carry the issuer's and the subject's CN values (legacy).
    V1,
    /// Version 2: trusted-CA subjects carry hashes of the names. The default for new setups.
    #[default]
    V2,
}

impl SubjectFormatVersion {
    /// The number written in the `version` column.
    pub fn number(self) -> i32 {
        match self {
            SubjectFormatVersion::V1 => 1,
            SubjectFormatVersion::V2 => 2,
        }
    }

    /// The version for a `version` column value (`None` and unknown numbers give `None`).
    pub fn from_number(n: i32) -> Option<Self> {
        match n {
            1 => Some(SubjectFormatVersion::V1),
            2 => Some(SubjectFormatVersion::V2),
            _ => None,
        }
    }
}

impl fmt::Display for SubjectFormatVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

impl FromStr for SubjectFormatVersion {
    type Err = SubjectError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().trim_start_matches(['v', 'V']) {
            "1" => Ok(SubjectFormatVersion::V1),
            "2" => Ok(SubjectFormatVersion::V2),
            _ => Err(SubjectError::UnknownVersion { given: crate::guid::clip(s) }),
        }
    }
}

impl Serialize for SubjectFormatVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(self.number())
    }
}

impl<'de> Deserialize<'de> for SubjectFormatVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i32::deserialize(d)?;
        SubjectFormatVersion::from_number(n)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown subject format version {n}; use 1 or 2")))
    }
}

/// Which subject form to build for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CertificateKind {
    /// Self-signed certificates get `/h/`, others `/i/../s/..` (see [`Certificate::is_self_signed`]).
    #[default]
    Auto,
    /// Always `/h/{sha256}`.
    SelfSigned,
    /// Always `/i/../s/..`.
    Trusted,
}

impl FromStr for CertificateKind {
    type Err = SubjectError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(CertificateKind::Auto),
            "self-signed" | "selfsigned" => Ok(CertificateKind::SelfSigned),
            "trusted" | "ca" => Ok(CertificateKind::Trusted),
            _ => Err(SubjectError::UnknownKind { given: crate::guid::clip(s) }),
        }
    }
}

/// The certificate part of a subject: what follows `/e/{environment}/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CertificateBinding {
    /// `/h/{sha256}`: a self-signed certificate, by the SHA-256 of its DER bytes.
    SelfSigned {
        /// SHA-256 over the certificate's DER bytes.
        sha256: CertificateHash,
    },
    /// `/i/{issuerHash}/s/{subjectHash}`: a CA-issued certificate, version 2.
    TrustedV2 {
        /// Hash of the .NET-formatted issuer name.
        issuer_hash: NameHash,
        /// Hash of the .NET-formatted subject name.
        subject_hash: NameHash,
    },
    /// `/i/{issuer CN}/s/{subject CN}`: a CA-issued certificate, version 1 (legacy; read and migrate only).
    ///
    /// The platform writes the CN values of the two names (Microsoft: version 1 "builds the FIC subject identifier
    /// from the certificate Common Name (CN)"), e.g. `i/Microsoft Code Signing PCA 2011/s/Microsoft Corporation`.
    /// A binding read from a subject holds whatever text the subject has there.
    TrustedV1 {
        /// The `/i/` text: the issuer's CN value.
        issuer: String,
        /// The `/s/` text: the subject's CN value.
        subject: String,
    },
}

impl CertificateBinding {
    /// The binding for a certificate, in the given format version.
    pub fn for_certificate(
        cert: &Certificate,
        version: SubjectFormatVersion,
        kind: CertificateKind,
    ) -> Result<Self, SubjectError> {
        let self_signed = match kind {
            CertificateKind::Auto => cert.is_self_signed(),
            CertificateKind::SelfSigned => true,
            CertificateKind::Trusted => false,
        };
        if self_signed {
            return Ok(CertificateBinding::SelfSigned { sha256: cert.sha256() });
        }
        fn name<'a>(
            which: &'static str,
            r: Result<&'a str, crate::cert::CertificateError>,
        ) -> Result<&'a str, SubjectError> {
            r.map_err(|e| SubjectError::NameUnreadable { which, reason: e.to_string() })
        }
        CertificateBinding::from_names(name("issuer", cert.issuer())?, name("subject", cert.subject())?, version)
    }

    /// The trusted-CA binding for .NET-formatted names (as `X509Certificate2.Issuer` / `.Subject` print them): their
    /// hashes in version 2, their CN values ([`v1_simple_name`](crate::cert::v1_simple_name)) in version 1.
    ///
    /// ```
    /// use dataverse_mi::subject::{CertificateBinding, SubjectFormatVersion};
    /// let v1 = CertificateBinding::from_names(
    ///     "CN=Microsoft Code Signing PCA 2011, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
    ///     "CN=Microsoft Corporation, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
    ///     SubjectFormatVersion::V1,
    /// )?;
    /// assert_eq!(v1.to_string(), "i/Microsoft Code Signing PCA 2011/s/Microsoft Corporation");
    /// # Ok::<(), dataverse_mi::subject::SubjectError>(())
    /// ```
    pub fn from_names(issuer: &str, subject: &str, version: SubjectFormatVersion) -> Result<Self, SubjectError> {
        match version {
            SubjectFormatVersion::V2 => Ok(CertificateBinding::TrustedV2 {
                issuer_hash: NameHash::of_name(issuer),
                subject_hash: NameHash::of_name(subject),
            }),
            SubjectFormatVersion::V1 => Ok(CertificateBinding::TrustedV1 {
                issuer: v1_segment("issuer", issuer)?,
                subject: v1_segment("subject", subject)?,
            }),
        }
    }

    /// The version 1 binding for two CN values as they are (no name parsing): what the platform writes in `/i/`
    /// and `/s/`. Refuses what version 1 cannot carry, as [`CertificateBinding::from_names`] does.
    pub fn v1_from_common_names(issuer_cn: &str, subject_cn: &str) -> Result<Self, SubjectError> {
        check_v1_value("issuer", issuer_cn, issuer_cn)?;
        check_v1_value("subject", subject_cn, subject_cn)?;
        Ok(CertificateBinding::TrustedV1 { issuer: issuer_cn.to_owned(), subject: subject_cn.to_owned() })
    }

    /// The version 1 binding as Microsoft's own migration scripts (and earlier versions of this crate) wrote it: the
    /// whole .NET names in `/i/` and `/s/`. The platform never presents it; it is computed only to recognise FICs
    /// made that way and replace them.
    pub fn v1_whole_names(issuer: &str, subject: &str) -> Self {
        CertificateBinding::TrustedV1 { issuer: issuer.to_owned(), subject: subject.to_owned() }
    }

    /// The format version this binding implies (`None` for self-signed, which is the same in both).
    pub fn version(&self) -> Option<SubjectFormatVersion> {
        match self {
            CertificateBinding::SelfSigned { .. } => None,
            CertificateBinding::TrustedV2 { .. } => Some(SubjectFormatVersion::V2),
            CertificateBinding::TrustedV1 { .. } => Some(SubjectFormatVersion::V1),
        }
    }
}

impl fmt::Display for CertificateBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertificateBinding::SelfSigned { sha256 } => write!(f, "h/{sha256}"),
            CertificateBinding::TrustedV2 { issuer_hash, subject_hash } => {
                write!(f, "i/{issuer_hash}/s/{subject_hash}")
            }
            CertificateBinding::TrustedV1 { issuer, subject } => {
                write!(f, "i/{issuer}/s/{subject}")
            }
        }
    }
}

/// The version 1 segment for a whole .NET name: its simple name, checked.
fn v1_segment(which: &'static str, name: &str) -> Result<String, SubjectError> {
    let cn = v1_simple_name(name).ok_or_else(|| SubjectError::V1NameUnusable { which, name: name.to_owned() })?;
    check_v1_value(which, name, &cn)?;
    Ok(cn)
}

/// What version 1 cannot carry in a segment: a comma (AADSTS700213) or a non-ASCII character (AADSTS70050) in the
/// CN, both documented by Microsoft (e.g. `CN=Contoso, Inc.`); an empty value, surrounding white space or `/s/`
/// (which would make the subject ambiguous or end in white space, which Entra refuses); a whole name where the CN
/// belongs.
fn check_v1_value(which: &'static str, name: &str, cn: &str) -> Result<(), SubjectError> {
    if let Some(cn_value) = v1_whole_name_cn(cn) {
        return Err(SubjectError::V1WholeName { which, name: cn.to_owned(), cn: cn_value });
    }
    if cn.contains(',') {
        return Err(SubjectError::V1NameHasComma { which, name: name.to_owned(), cn: cn.to_owned() });
    }
    if !cn.is_ascii() {
        return Err(SubjectError::V1NameNotAscii { which, name: name.to_owned(), cn: cn.to_owned() });
    }
    if cn.contains("/s/") || cn.is_empty() || cn.trim() != cn {
        return Err(SubjectError::V1NameUnusable { which, name: name.to_owned() });
    }
    Ok(())
}

/// The CN value when a version 1 segment holds a whole name (`CN=..., O=...` or `CN=...`) instead of the CN itself.
pub(crate) fn v1_whole_name_cn(segment: &str) -> Option<String> {
    let attrs = crate::cert::parse_dotnet_name(segment);
    attrs.iter().any(|a| a.key.eq_ignore_ascii_case("CN")).then(|| v1_simple_name(segment)).flatten()
}

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

/// A subject identifier of the current formats (version 1 or 2), as its parts.
///
/// `Display` gives the exact string for the FIC; `FromStr` parses one back and refuses, with every problem
/// found, anything the platform would never present (see [`explain_subject`] for the lenient reading).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubjectIdentifier {
    prefix: String,
    tenant_id: Uuid,
    /// Borrowed for the production app's segment (every customer subject): no allocation on the common path.
    app_segment: Cow<'static, str>,
    environment_id: EnvironmentId,
    binding: CertificateBinding,
    /// The rendered string, computed once: the value is immutable and displayed far more often than built.
    text: String,
}

impl SubjectIdentifier {
    /// Builds the subject for a component signed with `binding`'s certificate in an environment.
    ///
    /// `environment_id` is an [`EnvironmentId`] (a GUID converts into one, and so does a Default environment's
    /// `Default-{tenant}`). The `/a/` segment is the cloud profile's [`CloudProfile::app_segment`] (the Power
    /// Platform Managed Identity app's, unless overridden), checked to be an encoded GUID.
    pub fn new(
        cloud: &CloudProfile,
        tenant_id: Uuid,
        environment_id: impl Into<EnvironmentId>,
        binding: CertificateBinding,
    ) -> Result<Self, SubjectError> {
        let environment_id = environment_id.into();
        if cloud.app_segment != POWER_PLATFORM_MI_APP_SEGMENT
            && let Err(e) = decode_guid(&cloud.app_segment)
        {
            return Err(SubjectError::BadAppSegment { segment: crate::guid::clip(&cloud.app_segment), reason: e });
        }
        let prefix = cloud.subject_prefix.trim_end_matches('/');
        let well_formed = prefix
            .strip_prefix("/eid1/c/")
            .is_some_and(|code| !code.is_empty() && code.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !well_formed {
            return Err(SubjectError::BadPrefix { prefix: cloud.subject_prefix.clone() });
        }
        if let CertificateBinding::TrustedV1 { issuer, subject } = &binding {
            check_v1_value("issuer", issuer, issuer)?;
            check_v1_value("subject", subject, subject)?;
        }
        Ok(SubjectIdentifier::assemble(
            prefix.to_owned(),
            tenant_id,
            app_segment(&cloud.app_segment),
            environment_id,
            binding,
        ))
    }

    fn assemble(
        prefix: String,
        tenant_id: Uuid,
        app_segment: Cow<'static, str>,
        environment_id: EnvironmentId,
        binding: CertificateBinding,
    ) -> Self {
        let binding_len = match &binding {
            CertificateBinding::SelfSigned { .. } => 66,
            CertificateBinding::TrustedV2 { .. } => 91,
            CertificateBinding::TrustedV1 { issuer, subject } => issuer.len() + subject.len() + 5,
        };
        // Built piece by piece into one exact-size buffer: this is on the path of every subject computed.
        let mut text = String::with_capacity(prefix.len() + 107 + binding_len);
        text.push_str(&prefix);
        text.push_str("/t/");
        text.push_str(crate::guid::encode_guid_buf(tenant_id, &mut [0u8; crate::guid::ENCODED_GUID_LEN]));
        text.push_str("/a/");
        text.push_str(&app_segment);
        text.push_str("/n/plugin/e/");
        if environment_id.is_default() {
            text.push_str(crate::environment::DEFAULT_ENVIRONMENT_PREFIX);
        }
        text.push_str(environment_id.guid().hyphenated().encode_lower(&mut Uuid::encode_buffer()));
        text.push('/');
        match &binding {
            CertificateBinding::SelfSigned { sha256 } => {
                text.push_str("h/");
                text.push_str(sha256.hex_into(&mut [0u8; 64]));
            }
            CertificateBinding::TrustedV2 { issuer_hash, subject_hash } => {
                text.push_str("i/");
                text.push_str(issuer_hash.encode_into(&mut [0u8; 43]));
                text.push_str("/s/");
                text.push_str(subject_hash.encode_into(&mut [0u8; 43]));
            }
            CertificateBinding::TrustedV1 { issuer, subject } => {
                text.push_str("i/");
                text.push_str(issuer);
                text.push_str("/s/");
                text.push_str(subject);
            }
        }
        SubjectIdentifier { prefix, tenant_id, app_segment, environment_id, binding, text }
    }

    /// The subject as a string slice (the same text as its `Display`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The subject prefix, e.g. `/eid1/c/pub`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The cloud the prefix names, if it is one of the five.
    pub fn cloud(&self) -> Option<Cloud> {
        self.prefix.strip_prefix("/eid1/c/").and_then(Cloud::from_subject_code)
    }

    /// The tenant id.
    pub fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    /// The `/a/` segment: [`POWER_PLATFORM_MI_APP_SEGMENT`] unless the cloud profile overrode it.
    pub fn app_segment(&self) -> &str {
        &self.app_segment
    }

    /// The Power Platform environment id.
    pub fn environment_id(&self) -> EnvironmentId {
        self.environment_id
    }

    /// The certificate part.
    pub fn binding(&self) -> &CertificateBinding {
        &self.binding
    }
}

impl fmt::Display for SubjectIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for SubjectIdentifier {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SubjectIdentifier {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

fn app_segment(segment: &str) -> Cow<'static, str> {
    if segment == POWER_PLATFORM_MI_APP_SEGMENT {
        Cow::Borrowed(POWER_PLATFORM_MI_APP_SEGMENT)
    } else {
        Cow::Owned(segment.to_owned())
    }
}

/// A subject that [`SubjectIdentifier::from_str`] refused, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid subject identifier: {}", .problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
pub struct SubjectParseError {
    /// What is wrong, most important first; never empty.
    pub problems: Vec<SubjectProblem>,
}

impl FromStr for SubjectIdentifier {
    type Err = SubjectParseError;

    /// Parses a subject, refusing it when it has a problem of [`Severity::Error`]; suspicions (a tenant that
    /// looks big-endian encoded) do not stop a well-formed subject from parsing.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let explained = explain_subject(s);
        if explained.problems.iter().any(|p| p.severity() == Severity::Error) {
            return Err(SubjectParseError { problems: explained.problems });
        }
        match (
            explained.parts.prefix,
            explained.parts.tenant_id,
            explained.parts.app_segment,
            explained.parts.environment_id,
            explained.parts.binding,
        ) {
            (Some(prefix), Some(tenant_id), Some(app), Some(environment_id), Some(binding)) => {
                Ok(SubjectIdentifier::assemble(prefix, tenant_id, app_segment(&app), environment_id, binding))
            }
            _ => Err(SubjectParseError { problems: vec![SubjectProblem::NotASubject] }),
        }
    }
}

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

/// A mistake in a subject or a FIC, or another cause of a failed token request: the one vocabulary that
/// [`explain_subject`] ([`SubjectProblem::cause`]) and `diagnose` share, so the same subject is named the same way
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

/// How sure a [`SubjectProblem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The platform never presents such a subject: the FIC cannot match.
    Error,
    /// The subject is well-formed but most likely built from a wrong value (e.g. a tenant id that is only a
    /// plausible GUID when read in the wrong byte order).
    Suspicion,
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

/// A part of a subject identifier (and of the FIC around it), as the analyzers name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Segment {
    /// `/eid1/c/{cloud}`.
    Prefix,
    /// `/t/{tenant}`.
    Tenant,
    /// `/a/{app}`.
    App,
    /// `/n/plugin`.
    Component,
    /// `/e/{environment}`.
    Environment,
    /// What follows the environment: `h/{sha256}` or `i/{issuer}/s/{subject}`.
    Binding,
    /// The FIC's issuer URL (not part of the subject).
    Issuer,
    /// The FIC's audience (not part of the subject).
    Audience,
}

impl Segment {
    /// The segment's name, e.g. `tenant`.
    pub fn name(self) -> &'static str {
        match self {
            Segment::Prefix => "prefix",
            Segment::Tenant => "tenant",
            Segment::App => "app",
            Segment::Component => "component",
            Segment::Environment => "environment",
            Segment::Binding => "certificate",
            Segment::Issuer => "issuer",
            Segment::Audience => "audience",
        }
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A subject cut into its segments as written, without judging any of them: what the analyzers compare. Never
/// fails; a segment that is not there is `None`, and whatever stands before `/t/` is the prefix (even without
/// `/eid1`).
///
/// ```
/// use dataverse_mi::subject::SubjectSegments;
/// let s = SubjectSegments::split("/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/Default-72f988bf-86f1-41af-91ab-2d7cd011db47/i/Contoso Root CA/s/Plugins");
/// assert_eq!(s.prefix, "/eid1/c/pub");
/// assert_eq!(s.environment.as_deref(), Some("Default-72f988bf-86f1-41af-91ab-2d7cd011db47"));
/// assert_eq!(s.binding.as_deref(), Some("i/Contoso Root CA/s/Plugins"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubjectSegments {
    /// Everything before `/t/`.
    pub prefix: String,
    /// The `/t/` value.
    pub tenant: Option<String>,
    /// The `/a/` value.
    pub app: Option<String>,
    /// The `/n/` value.
    pub component: Option<String>,
    /// The `/e/` value.
    pub environment: Option<String>,
    /// Everything after the environment.
    pub binding: Option<String>,
}

impl SubjectSegments {
    /// Cuts `subject` (surrounding white space ignored) into its segments.
    pub fn split(subject: &str) -> Self {
        let s = subject.trim();
        let mut out = SubjectSegments::default();
        let Some(start) = s.find("/t/") else {
            out.prefix = s.to_owned();
            return out;
        };
        out.prefix = s[..start].to_owned();
        let mut rest = &s[start + 1..];
        for (key, slot) in
            [("t/", &mut out.tenant), ("a/", &mut out.app), ("n/", &mut out.component), ("e/", &mut out.environment)]
        {
            if let Some(r) = rest.strip_prefix(key) {
                let (value, after) = r.split_once('/').unwrap_or((r, ""));
                *slot = Some(value.to_owned());
                rest = after;
            }
        }
        if out.environment.is_some() && !rest.is_empty() {
            out.binding = Some(rest.to_owned());
        }
        out
    }

    /// The text of one segment of the subject (`None` for the FIC's issuer and audience).
    pub fn get(&self, segment: Segment) -> Option<&str> {
        match segment {
            Segment::Prefix => Some(&self.prefix),
            Segment::Tenant => self.tenant.as_deref(),
            Segment::App => self.app.as_deref(),
            Segment::Component => self.component.as_deref(),
            Segment::Environment => self.environment.as_deref(),
            Segment::Binding => self.binding.as_deref(),
            Segment::Issuer | Segment::Audience => None,
        }
    }
}

/// The parts of a subject as far as they could be read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubjectParts {
    /// The prefix, e.g. `/eid1/c/pub`.
    pub prefix: Option<String>,
    /// The cloud it names.
    pub cloud: Option<Cloud>,
    /// The tenant segment as written.
    pub tenant_segment: Option<String>,
    /// The tenant id it decodes to (in the platform's byte order).
    pub tenant_id: Option<Uuid>,
    /// The `/a/` segment as written.
    pub app_segment: Option<String>,
    /// The app id it decodes to.
    pub app_id: Option<Uuid>,
    /// Whose app the segment names.
    pub app_owner: Option<AppSegmentOwner>,
    /// The component segment (`plugin`).
    pub component: Option<String>,
    /// The environment segment as written.
    pub environment_segment: Option<String>,
    /// The environment id.
    pub environment_id: Option<EnvironmentId>,
    /// The certificate part.
    pub binding: Option<CertificateBinding>,
}

/// What [`explain_subject`] found: the parts, and every problem (errors and suspicions).
///
/// Serializes as the CLI's `explain-subject --output json` documents it: `{"ok", "parts", "problems": [{"id",
/// "message", "severity", "detail"}]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectExplanation {
    /// The parts that could be read.
    pub parts: SubjectParts,
    /// What is wrong, most important first; empty when the subject is well-formed.
    pub problems: Vec<SubjectProblem>,
    /// The subject with every error mended, when each of them has one right answer (white space, letter case,
    /// the tenant written as text, a version 1 whole name where the CN belongs); `None` otherwise.
    pub corrected_subject: Option<String>,
}

impl Serialize for SubjectExplanation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Problem<'a> {
            id: &'static str,
            message: String,
            severity: Severity,
            detail: &'a SubjectProblem,
        }
        #[derive(Serialize)]
        struct Shape<'a> {
            ok: bool,
            parts: &'a SubjectParts,
            problems: Vec<Problem<'a>>,
            corrected_subject: &'a Option<String>,
        }
        Shape {
            ok: self.is_ok(),
            parts: &self.parts,
            corrected_subject: &self.corrected_subject,
            problems: self
                .problems
                .iter()
                .map(|p| Problem { id: p.id(), message: p.to_string(), severity: p.severity(), detail: p })
                .collect(),
        }
        .serialize(s)
    }
}

impl SubjectExplanation {
    /// Whether the subject is well-formed.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for SubjectExplanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.parts;
        let show = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".to_owned());
        writeln!(f, "prefix:      {}", show(&p.prefix))?;
        writeln!(f, "cloud:       {}", p.cloud.map(|c| c.to_string()).unwrap_or_else(|| "-".into()))?;
        write!(f, "tenant:      {}", show(&p.tenant_segment))?;
        match p.tenant_id {
            Some(t) => writeln!(f, " = {t}")?,
            None => writeln!(f)?,
        }
        write!(f, "app:         {}", show(&p.app_segment))?;
        match (p.app_id, p.app_owner) {
            (Some(a), Some(AppSegmentOwner::Production)) => writeln!(f, " = {a} (Power Platform Managed Identity)")?,
            (Some(a), Some(owner @ (AppSegmentOwner::MicrosoftPreProduction | AppSegmentOwner::MicrosoftTest))) => {
                writeln!(f, " = {a} ({})", owner.describe())?
            }
            (Some(a), _) => writeln!(f, " = {a}")?,
            (None, _) => writeln!(f)?,
        }
        writeln!(f, "component:   {}", show(&p.component))?;
        writeln!(f, "environment: {}", show(&p.environment_segment))?;
        match &p.binding {
            Some(CertificateBinding::SelfSigned { sha256 }) => {
                writeln!(f, "certificate: self-signed, SHA-256 {sha256}")?
            }
            Some(CertificateBinding::TrustedV2 { issuer_hash, subject_hash }) => writeln!(
                f,
                "certificate: trusted CA, version 2, issuer hash {issuer_hash}, subject hash {subject_hash}"
            )?,
            Some(CertificateBinding::TrustedV1 { issuer, subject }) => {
                writeln!(f, "certificate: trusted CA, version 1, issuer '{issuer}', subject '{subject}'")?
            }
            None => writeln!(f, "certificate: -")?,
        }
        if self.problems.is_empty() {
            write!(f, "well-formed")
        } else {
            write!(f, "problems:")?;
            for problem in &self.problems {
                let tag = match problem.severity() {
                    Severity::Error => "",
                    Severity::Suspicion => " (likely)",
                };
                write!(f, "\n  - [{}]{tag} {problem}", problem.id())?;
            }
            if let Some(corrected) = &self.corrected_subject {
                write!(f, "\ncorrected:   {corrected}")?;
            }
            Ok(())
        }
    }
}

fn is_plausible_tenant(id: Uuid) -> bool {
    id.get_version_num() == 4 && id.get_variant() == uuid::Variant::RFC4122
}

/// Reads a subject leniently, returning every part that could be read and every problem found. Never fails.
///
/// ```
/// use dataverse_mi::subject::explain_subject;
///
/// // Tenant encoded big-endian, and an upper-case hash: two classic mistakes.
/// let e = explain_subject(
///     "/eid1/c/pub/t/cvmIv4bxQa-Rqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/00000000-0000-0000-0000-000000000001/h/ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
/// );
/// let ids: Vec<_> = e.problems.iter().map(|p| p.id()).collect();
/// assert_eq!(ids, ["tenant_big_endian", "hash_uppercase"]);
/// ```
pub fn explain_subject(input: &str) -> SubjectExplanation {
    let mut parts = SubjectParts::default();
    let mut problems = Vec::new();
    let s = input.trim();
    if s.len() != input.len() {
        problems.push(SubjectProblem::SurroundingWhitespace);
    }
    if let Some((environment, thumbprint)) = LegacyV0::parse_subject(s) {
        problems.push(SubjectProblem::LegacyV0 {
            environment: environment.to_string(),
            thumbprint: thumbprint.to_string(),
        });
        parts.environment_id = Some(environment);
        return SubjectExplanation { parts, problems, corrected_subject: None };
    }
    let mut rest = match s.strip_prefix("/eid1/c/") {
        Some(rest) => {
            let (code, rest) = rest.split_once('/').unwrap_or((rest, ""));
            parts.prefix = Some(format!("/eid1/c/{code}"));
            parts.cloud = Cloud::from_subject_code(code);
            if parts.cloud.is_none() {
                problems.push(SubjectProblem::UnknownCloud { code: crate::guid::clip(code) });
            }
            rest
        }
        // Segments after another prefix (`/c/pub`, a typo): the prefix is the mistake, the rest is read as usual.
        None => match s.find("/t/").filter(|at| s[at + 3..].contains("/a/")) {
            Some(at) => {
                problems.push(SubjectProblem::UnknownCloud { code: crate::guid::clip(&s[..at]) });
                &s[at + 1..]
            }
            None => {
                problems.push(SubjectProblem::NotASubject);
                return SubjectExplanation { parts, problems, corrected_subject: None };
            }
        },
    };

    // Each of t, a, n, e: "{key}/{value}/".
    let mut take = |key: &'static str, problems: &mut Vec<SubjectProblem>| -> Option<String> {
        match rest.strip_prefix(key).and_then(|r| r.strip_prefix('/')) {
            Some(r) => {
                let (value, after) = r.split_once('/').unwrap_or((r, ""));
                rest = after;
                Some(value.to_owned())
            }
            None => {
                problems.push(SubjectProblem::MissingSegment { expected: key, found: crate::guid::clip(rest) });
                None
            }
        }
    };
    let tenant = take("t", &mut problems);
    let app = tenant.as_ref().and_then(|_| take("a", &mut problems));
    let component = app.as_ref().and_then(|_| take("n", &mut problems));
    let environment = component.as_ref().and_then(|_| take("e", &mut problems));
    let binding_text = environment.as_ref().map(|_| rest.to_owned());

    if let Some(t) = tenant {
        read_tenant(&t, &mut parts, &mut problems);
        parts.tenant_segment = Some(t);
    }
    if let Some(a) = app {
        match AppSegmentOwner::of(&a) {
            AppSegmentOwner::Production => parts.app_id = Some(POWER_PLATFORM_MI_APP_ID),
            AppSegmentOwner::Other => {
                let decoded = decode_guid(&a).ok().or_else(|| parse_guid(&a).ok());
                problems.push(SubjectProblem::AppSegmentNotPowerPlatform { found: crate::guid::clip(&a), decoded });
                parts.app_id = decoded;
            }
            owner => {
                problems.push(SubjectProblem::AppSegmentOtherCluster { found: a.clone(), owner });
                parts.app_id = decode_guid(&a).ok();
            }
        }
        parts.app_owner = Some(AppSegmentOwner::of(&a));
        parts.app_segment = Some(a);
    }
    if let Some(n) = component {
        if n != "plugin" {
            problems.push(SubjectProblem::ComponentNotPlugin { found: crate::guid::clip(&n) });
        }
        parts.component = Some(n);
    }
    if let Some(e) = environment {
        match e.parse::<EnvironmentId>() {
            Ok(id) => {
                let canonical = id.to_string();
                if canonical != e {
                    problems.push(SubjectProblem::EnvironmentNotCanonical { found: e.clone(), expected: canonical });
                }
                if let (EnvironmentId::Default { tenant: environment_tenant }, Some(tenant)) = (id, parts.tenant_id)
                    && environment_tenant != tenant
                {
                    problems.push(SubjectProblem::DefaultEnvironmentOtherTenant { environment_tenant, tenant });
                }
                parts.environment_id = Some(id);
            }
            Err(_) => problems.push(SubjectProblem::EnvironmentNotGuid { found: crate::guid::clip(&e) }),
        }
        parts.environment_segment = Some(e);
    }
    if let Some(b) = binding_text {
        parts.binding = read_binding(&b, &mut problems);
    }
    let corrected_subject = corrected_subject(&parts, &problems);
    SubjectExplanation { parts, problems, corrected_subject }
}

/// The subject with each error mended, when every error has one right answer.
fn corrected_subject(parts: &SubjectParts, problems: &[SubjectProblem]) -> Option<String> {
    if !problems.iter().any(|p| p.severity() == Severity::Error) {
        return None;
    }
    let mut tenant = parts.tenant_id;
    let mut binding = parts.binding.clone()?;
    for problem in problems {
        match problem {
            // The parts already hold the canonical value of these.
            SubjectProblem::SurroundingWhitespace
            | SubjectProblem::HashUppercase { .. }
            | SubjectProblem::EnvironmentNotCanonical { .. } => {}
            SubjectProblem::TenantAsPlainGuid { tenant: t, .. } => tenant = Some(*t),
            SubjectProblem::V1WholeName { cn, .. } if cn.contains(',') || !cn.is_ascii() => return None,
            SubjectProblem::V1WholeName { which, cn, .. } => {
                if let CertificateBinding::TrustedV1 { issuer, subject } = &mut binding {
                    *(if *which == "issuer" { issuer } else { subject }) = cn.clone();
                }
            }
            p if p.severity() == Severity::Suspicion => {}
            _ => return None,
        }
    }
    let mended = SubjectIdentifier::assemble(
        parts.prefix.clone()?,
        tenant?,
        app_segment(parts.app_segment.as_deref()?),
        parts.environment_id?,
        binding,
    );
    Some(mended.to_string())
}

fn read_tenant(t: &str, parts: &mut SubjectParts, problems: &mut Vec<SubjectProblem>) {
    match decode_guid(t) {
        Ok(le) => {
            let be = decode_guid_big_endian(t).unwrap_or(le);
            if !is_plausible_tenant(le) && is_plausible_tenant(be) {
                problems.push(SubjectProblem::TenantBigEndian { tenant: be, expected: encode_guid(be) });
            }
            parts.tenant_id = Some(le);
        }
        Err(reason) => match parse_guid(t) {
            Ok(tenant) => problems.push(SubjectProblem::TenantAsPlainGuid { tenant, expected: encode_guid(tenant) }),
            Err(_) => problems
                .push(SubjectProblem::TenantNotEncoded { found: crate::guid::clip(t), reason: reason.to_string() }),
        },
    }
}

/// Reads the certificate part of a subject (`h/..` or `i/../s/..`), with the problems of it.
pub(crate) fn read_binding(b: &str, problems: &mut Vec<SubjectProblem>) -> Option<CertificateBinding> {
    if let Some(hash) = b.strip_prefix("h/") {
        let hex = hash.len() == 64 && hash.bytes().all(|c| c.is_ascii_hexdigit());
        if hex {
            let lower = hash.to_ascii_lowercase();
            if lower != hash {
                problems.push(SubjectProblem::HashUppercase { found: hash.to_owned(), expected: lower });
            }
            return hash.parse().ok().map(|sha256| CertificateBinding::SelfSigned { sha256 });
        }
        if hash.len() == 40 && hash.bytes().all(|c| c.is_ascii_hexdigit()) {
            problems.push(SubjectProblem::HashIsSha1 { found: hash.to_owned() });
        } else {
            problems.push(SubjectProblem::HashMalformed { found: crate::guid::clip(hash) });
        }
        return None;
    }
    if let Some(names) = b.strip_prefix("i/") {
        let Some((issuer, subject)) = names.split_once("/s/") else {
            problems.push(SubjectProblem::BindingMalformed { found: crate::guid::clip(b) });
            return None;
        };
        let looks_hashed = |v: &str| v.len() == 43 && !v.contains('=');
        if looks_hashed(issuer) || looks_hashed(subject) {
            let i = issuer.parse::<NameHash>();
            let s = subject.parse::<NameHash>();
            if i.is_err() {
                problems.push(SubjectProblem::NameHashMalformed { segment: "i", found: crate::guid::clip(issuer) });
            }
            if s.is_err() {
                problems.push(SubjectProblem::NameHashMalformed { segment: "s", found: crate::guid::clip(subject) });
            }
            return match (i, s) {
                (Ok(issuer_hash), Ok(subject_hash)) => {
                    Some(CertificateBinding::TrustedV2 { issuer_hash, subject_hash })
                }
                _ => None,
            };
        }
        for (which, value) in [("issuer", issuer), ("subject", subject)] {
            if let Some(cn) = v1_whole_name_cn(value) {
                // A whole name (what Microsoft's migration scripts write): its commas are the RDN separators.
                problems.push(SubjectProblem::V1WholeName { which, found: crate::guid::clip(value), cn });
            } else if value.contains(',') {
                problems.push(SubjectProblem::V1NameHasComma { which, cn: crate::guid::clip(value) });
            } else if !value.is_ascii() {
                problems.push(SubjectProblem::V1NameNotAscii { which, cn: crate::guid::clip(value) });
            }
        }
        return Some(CertificateBinding::TrustedV1 { issuer: issuer.to_owned(), subject: subject.to_owned() });
    }
    problems.push(SubjectProblem::BindingMalformed { found: crate::guid::clip(b) });
    None
}

/// The deprecated version 0 (preview) issuer, subject and audience. Computed for migration checks only:
/// never create a FIC with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LegacyV0 {
    /// `https://{env without hyphens, all but the last 2 characters}.{last 2}.environment.api.powerplatform.com/sts`
    pub issuer: String,
    /// `component:pluginassembly,thumbprint:{SHA-1 upper hex},environment:{environment id}`
    pub subject: String,
    /// `api://azureadtokenexchange` (lowercase, as the preview used it).
    pub audience: String,
}

impl LegacyV0 {
    /// The version 0 audience.
    pub const AUDIENCE: &'static str = "api://azureadtokenexchange";

    /// Computes the version 0 values for an environment and a certificate thumbprint. The issuer host is the
    /// environment id without hyphens, lowercase (`default{tenant}` for a Default environment, as Power Platform's
    /// environment API hosts write it), its last two characters split off.
    pub fn compute(environment_id: impl Into<EnvironmentId>, thumbprint: Thumbprint) -> LegacyV0 {
        let environment_id = environment_id.into();
        let env = environment_id.to_string();
        let simple = environment_id.compact();
        let (head, tail) = simple.split_at(simple.len() - 2);
        LegacyV0 {
            issuer: format!("https://{head}.{tail}.environment.api.powerplatform.com/sts"),
            subject: format!("component:pluginassembly,thumbprint:{thumbprint},environment:{env}"),
            audience: Self::AUDIENCE.to_owned(),
        }
    }

    /// Reads a version 0 subject: `Some((environment, thumbprint))` when `s` is one.
    pub fn parse_subject(s: &str) -> Option<(EnvironmentId, Thumbprint)> {
        let rest = s.strip_prefix("component:pluginassembly,thumbprint:")?;
        let (thumb, env) = rest.split_once(",environment:")?;
        Some((env.parse().ok()?, thumb.parse().ok()?))
    }

    /// Whether an issuer is a version 0 environment issuer.
    pub fn is_v0_issuer(issuer: &str) -> bool {
        issuer.starts_with("https://") && issuer.ends_with(".environment.api.powerplatform.com/sts")
    }
}
