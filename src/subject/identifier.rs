//! The subject identifier: built from its parts, written as the platform presents it.

use std::borrow::Cow;
use std::fmt;

use serde::{Serialize, Serializer};
use uuid::Uuid;

use super::v1::check_v1_value;
use super::{CertificateBinding, SubjectError};
use crate::cloud::{Cloud, CloudProfile};
use crate::environment::EnvironmentId;
use crate::guid::{POWER_PLATFORM_MI_APP_SEGMENT, decode_guid};

/// A subject identifier of the current formats (version 1 or 2), as its parts.
///
/// `Display` gives the exact string for the FIC; `FromStr` parses one back and refuses, with every problem
/// found, anything the platform would never present (see [`explain_subject`](super::explain_subject) for the lenient reading).
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

    pub(super) fn assemble(
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

pub(super) fn app_segment(segment: &str) -> Cow<'static, str> {
    if segment == POWER_PLATFORM_MI_APP_SEGMENT {
        Cow::Borrowed(POWER_PLATFORM_MI_APP_SEGMENT)
    } else {
        Cow::Owned(segment.to_owned())
    }
}
