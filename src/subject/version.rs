//! The subject format version (the row's `version` column) and the kind of certificate binding to compute.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::SubjectError;

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
    /// Self-signed certificates get `/h/`, others `/i/../s/..` (see [`Certificate::is_self_signed`](crate::cert::Certificate::is_self_signed)).
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
