//! Federated identity credentials (FICs): the payload that tells Entra to trust the platform's assertion.
//!
//! One [`FederatedIdentityCredential`] serializes to both shapes the services take:
//! - Microsoft Graph (app registrations): `{"name","issuer","subject","audiences":[..],"description"}`;
//! - Azure Resource Manager (user-assigned managed identities): `{"properties":{"issuer","subject","audiences":[..]}}`,
//!   the name going in the URL.
//!
//! ```
//! use dataverse_mi::cloud::{Cloud, CloudProfile};
//! use dataverse_mi::fic::FederatedIdentityCredential;
//! use dataverse_mi::subject::{CertificateBinding, SubjectIdentifier};
//! use uuid::Uuid;
//!
//! let cloud = CloudProfile::from(Cloud::Public);
//! let subject = SubjectIdentifier::new(
//!     &cloud,
//!     Uuid::parse_str("72f988bf-86f1-41af-91ab-2d7cd011db47")?,
//!     Uuid::parse_str("7efcc31a-c410-e20e-9b3c-3ea55e7f9c56")?,
//!     CertificateBinding::SelfSigned { sha256: "ab".repeat(32).parse()? },
//! )?;
//! let fic = FederatedIdentityCredential::for_subject(&cloud, &subject);
//! fic.validate()?;
//! let graph = fic.graph_body()?;
//! assert_eq!(graph["issuer"], "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0");
//! assert_eq!(graph["audiences"][0], "api://AzureADTokenExchange");
//! let arm = fic.arm_body()?;
//! assert_eq!(arm["properties"]["subject"], subject.to_string());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Its files import `guid`, `cloud`, `environment` and `subject`: the floors below it (`tests/architecture.rs` checks that no import runs up a
//! floor and that no files import each other in a circle).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cloud::CloudProfile;
use crate::environment::EnvironmentId;
use crate::subject::SubjectIdentifier;

/// Longest FIC name Entra accepts.
pub const MAX_NAME_LEN: usize = 120;
/// Longest issuer, subject or description Entra accepts.
pub const MAX_VALUE_LEN: usize = 600;
/// Most FICs one app registration or user-assigned managed identity can hold.
pub const MAX_FICS_PER_IDENTITY: usize = 20;

/// Why a FIC would be refused by Graph or ARM.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FicError {
    /// The name is shorter than 3 or longer than 120 characters.
    #[error("the FIC name '{name}' has {len} characters; Entra requires 3 to 120")]
    NameLength {
        /// The name (cut).
        name: String,
        /// Its length.
        len: usize,
    },
    /// The name has a character other than letters, digits, `-` and `_`, or does not start with a letter or digit.
    #[error(
        "the FIC name '{name}' has '{character}' at position {position}; names are letters, digits, '-' and '_', starting with a letter or digit"
    )]
    NameCharacter {
        /// The name (cut).
        name: String,
        /// The offending character.
        character: char,
        /// Its 0-based position in characters.
        position: usize,
    },
    /// Not exactly one audience.
    #[error("a FIC has exactly one audience; this one has {count}")]
    AudienceCount {
        /// How many there are.
        count: usize,
    },
    /// A field is empty.
    #[error("the FIC's {field} is empty")]
    Empty {
        /// `issuer`, `subject` or `audience`.
        field: &'static str,
    },
    /// A field is longer than 600 characters.
    #[error("the FIC's {field} has {len} characters; Entra allows at most 600")]
    TooLong {
        /// `issuer`, `subject` or `description`.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// A field has leading or trailing white space, which makes the case-sensitive match fail.
    #[error("the FIC's {field} has leading or trailing white space; remove it (matching is exact)")]
    Whitespace {
        /// `name`, `issuer`, `subject` or `audience`.
        field: &'static str,
    },
    /// The issuer is not an absolute `https://` URL.
    #[error("the FIC issuer '{issuer}' is not an https:// URL")]
    IssuerNotHttps {
        /// The issuer (cut).
        issuer: String,
    },
}

/// Checks a FIC name: 3 to 120 characters, `^[a-zA-Z0-9][a-zA-Z0-9_-]{2,119}$`.
pub fn validate_name(name: &str) -> Result<(), FicError> {
    if name.trim() != name {
        return Err(FicError::Whitespace { field: "name" });
    }
    for (position, character) in name.chars().enumerate() {
        let ok = character.is_ascii_alphanumeric() || (position > 0 && (character == '-' || character == '_'));
        if !ok {
            return Err(FicError::NameCharacter { name: crate::guid::clip(name), character, position });
        }
    }
    let len = name.chars().count();
    if !(3..=MAX_NAME_LEN).contains(&len) {
        return Err(FicError::NameLength { name: crate::guid::clip(name), len });
    }
    Ok(())
}

/// A federated identity credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederatedIdentityCredential {
    /// The name: unique per identity, immutable once created.
    pub name: String,
    /// The issuer, `{login host}/{tenant}/v2.0`.
    pub issuer: String,
    /// The subject identifier.
    pub subject: String,
    /// The audiences: exactly one.
    pub audiences: Vec<String>,
    /// A free-text description (Graph only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A subject with the issuer and audience its FIC needs: what `dataverse-mi subject --output json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SubjectSummary {
    /// The subject identifier.
    pub subject: String,
    /// The FIC issuer for its tenant and cloud.
    pub issuer: String,
    /// The FIC audience of its cloud.
    pub audience: String,
    /// The certificate part, read.
    pub binding: crate::subject::CertificateBinding,
}

impl SubjectSummary {
    /// The summary of `subject` in `cloud`.
    pub fn new(cloud: &CloudProfile, subject: &SubjectIdentifier) -> Self {
        SubjectSummary {
            subject: subject.to_string(),
            issuer: cloud.fic_issuer(subject.tenant_id()),
            audience: cloud.audience.clone(),
            binding: subject.binding().clone(),
        }
    }
}

/// Whether `s` is an absolute `https://` URL with a host (letters, digits, `-`, `.`, or a bracketed IPv6 address,
/// with an optional port), and no whitespace or control character anywhere: what Entra takes as an issuer.
fn is_https_url(s: &str) -> bool {
    let Some(rest) = s.get(..8).filter(|scheme| scheme.eq_ignore_ascii_case("https://")).and_then(|_| s.get(8..))
    else {
        return false;
    };
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let bracketed = authority.starts_with('[');
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((inside, after)) if after.is_empty() || after.starts_with(':') => (inside, after.strip_prefix(':')),
            _ => return false,
        },
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let host_ok = if bracketed {
        !host.is_empty() && host.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
    } else {
        !host.is_empty()
            && host
                .split('.')
                .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
    host_ok && port_ok
}

impl FederatedIdentityCredential {
    /// The FIC for a subject in a cloud, to add by hand (what `dataverse-mi fic` prints): named [`manual_name`]
    /// and described as added by hand, so that no `prune`, rotation or `destroy` ever takes it for its own.
    pub fn for_subject(cloud: &CloudProfile, subject: &SubjectIdentifier) -> Self {
        let text = subject.to_string();
        FederatedIdentityCredential {
            name: manual_name(subject.environment_id(), &text),
            issuer: cloud.fic_issuer(subject.tenant_id()),
            subject: text,
            audiences: vec![cloud.audience.clone()],
            description: Some(format!(
                "Dataverse plug-ins in Power Platform environment {} (added by hand, computed by dataverse-mi)",
                subject.environment_id()
            )),
        }
    }

    /// The FIC the engine makes for a subject: named [`default_name`] (so [`is_managed`] knows it as its own) and
    /// described as managed by dataverse-mi.
    pub fn managed(cloud: &CloudProfile, tenant_id: uuid::Uuid, environment_id: EnvironmentId, subject: &str) -> Self {
        FederatedIdentityCredential {
            name: default_name(environment_id, subject),
            issuer: cloud.fic_issuer(tenant_id),
            subject: subject.to_owned(),
            audiences: vec![cloud.audience.clone()],
            description: Some(format!(
                "Dataverse plug-ins in Power Platform environment {environment_id} (managed by dataverse-mi)"
            )),
        }
    }

    /// Checks everything Graph and ARM check, so that a bad FIC is refused before any request.
    pub fn validate(&self) -> Result<(), FicError> {
        validate_name(&self.name)?;
        if self.audiences.len() != 1 {
            return Err(FicError::AudienceCount { count: self.audiences.len() });
        }
        for (field, value) in
            [("issuer", self.issuer.as_str()), ("subject", self.subject.as_str()), ("audience", &self.audiences[0])]
        {
            if value.is_empty() {
                return Err(FicError::Empty { field });
            }
            if value.trim() != value {
                return Err(FicError::Whitespace { field });
            }
        }
        for (field, value) in [
            ("issuer", self.issuer.as_str()),
            ("subject", self.subject.as_str()),
            ("description", self.description.as_deref().unwrap_or("")),
        ] {
            let len = value.chars().count();
            if len > MAX_VALUE_LEN {
                return Err(FicError::TooLong { field, len });
            }
        }
        if is_https_url(&self.issuer) {
            Ok(())
        } else {
            Err(FicError::IssuerNotHttps { issuer: crate::guid::clip(&self.issuer) })
        }
    }

    /// The Microsoft Graph request body, after [`validate`](Self::validate).
    pub fn graph_body(&self) -> Result<serde_json::Value, FicError> {
        self.validate()?;
        let mut body = serde_json::json!({
            "name": self.name,
            "issuer": self.issuer,
            "subject": self.subject,
            "audiences": self.audiences,
        });
        if let Some(d) = &self.description {
            body["description"] = serde_json::Value::String(d.clone());
        }
        Ok(body)
    }

    /// The Azure Resource Manager request body (the name goes in the URL), after [`validate`](Self::validate).
    pub fn arm_body(&self) -> Result<serde_json::Value, FicError> {
        self.validate()?;
        Ok(serde_json::json!({
            "properties": {
                "issuer": self.issuer,
                "subject": self.subject,
                "audiences": self.audiences,
            }
        }))
    }
}

/// The deterministic FIC name for a subject: `dataverse-{environment id}-{12 hex digits of SHA-256(subject)}`.
///
/// The same environment and subject always give the same name (so a re-run finds the FIC it made), different
/// certificates, versions or tenants give different names, and the name is always valid (59 characters; 67 for
/// a Default environment, whose id `Default-{tenant}` is written as it is: letters, digits and `-` only).
///
/// ```
/// # use dataverse_mi::fic::{default_name, validate_name};
/// # use dataverse_mi::environment::EnvironmentId;
/// # use uuid::Uuid;
/// let env = Uuid::parse_str("7efcc31a-c410-e20e-9b3c-3ea55e7f9c56").unwrap();
/// let name = default_name(env, "/eid1/c/pub/t/x");
/// assert!(name.starts_with("dataverse-7efcc31a-c410-e20e-9b3c-3ea55e7f9c56-"));
/// assert!(validate_name(&name).is_ok());
///
/// let default: EnvironmentId = "Default-72f988bf-86f1-41af-91ab-2d7cd011db47".parse().unwrap();
/// let name = default_name(default, "/eid1/c/pub/t/x");
/// assert!(name.starts_with("dataverse-Default-72f988bf-86f1-41af-91ab-2d7cd011db47-"));
/// assert!(validate_name(&name).is_ok());
/// ```
pub fn default_name(environment_id: impl Into<EnvironmentId>, subject: &str) -> String {
    let environment_id = environment_id.into();
    let digest = Sha256::digest(subject.as_bytes());
    let mut tag = String::with_capacity(12);
    for b in &digest[..6] {
        tag.push_str(&format!("{b:02x}"));
    }
    format!("dataverse-{environment_id}-{tag}")
}

/// Whether `fic` provably is one the engine made for `environment_id`: its name is [`default_name`] of that
/// environment and of the very subject it holds. A FIC made by hand, or one whose name looks alike but holds another
/// subject, is not; FICs from [`FederatedIdentityCredential::for_subject`] (what `dataverse-mi fic` prints for
/// adding by hand) are named [`manual_name`] and are not either.
pub fn is_managed(environment_id: impl Into<EnvironmentId>, fic: &FederatedIdentityCredential) -> bool {
    fic.name == default_name(environment_id, &fic.subject)
}

/// The FIC name [`FederatedIdentityCredential::for_subject`] gives, for a FIC added by hand:
/// `manual-{environment id}-{12 hex digits of SHA-256(subject)}`. Never taken for one the engine made.
pub fn manual_name(environment_id: impl Into<EnvironmentId>, subject: &str) -> String {
    let managed = default_name(environment_id, subject);
    format!("manual-{}", managed.trim_start_matches("dataverse-"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn fic() -> FederatedIdentityCredential {
        FederatedIdentityCredential {
            name: "dataverse-fic".into(),
            issuer: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0".into(),
            subject: "/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/x/h/y".into(),
            audiences: vec!["api://AzureADTokenExchange".into()],
            description: None,
        }
    }

    #[test]
    fn names() {
        for ok in ["abc", "a-b", "A_1", "0ab", &"a".repeat(120)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        assert!(matches!(validate_name("ab"), Err(FicError::NameLength { len: 2, .. })));
        assert!(matches!(validate_name(&"a".repeat(121)), Err(FicError::NameLength { len: 121, .. })));
        assert!(matches!(validate_name("-ab"), Err(FicError::NameCharacter { character: '-', position: 0, .. })));
        assert!(matches!(validate_name("_ab"), Err(FicError::NameCharacter { position: 0, .. })));
        assert!(matches!(validate_name("a b"), Err(FicError::NameCharacter { character: ' ', .. })));
        assert!(matches!(validate_name("a.b"), Err(FicError::NameCharacter { character: '.', .. })));
        assert!(matches!(validate_name("abé"), Err(FicError::NameCharacter { character: 'é', .. })));
        assert!(matches!(validate_name("ab'c"), Err(FicError::NameCharacter { character: '\'', .. })));
        assert!(matches!(validate_name(" abc"), Err(FicError::Whitespace { .. })));
        assert!(matches!(validate_name(""), Err(FicError::NameLength { len: 0, .. })));
    }

    #[test]
    fn validation() {
        assert!(fic().validate().is_ok());
        let mut two = fic();
        two.audiences.push("api://AzureADTokenExchangeUSGov".into());
        assert_eq!(two.validate(), Err(FicError::AudienceCount { count: 2 }));
        let mut none = fic();
        none.audiences.clear();
        assert_eq!(none.validate(), Err(FicError::AudienceCount { count: 0 }));
        let mut long = fic();
        long.subject = "s".repeat(601);
        assert_eq!(long.validate(), Err(FicError::TooLong { field: "subject", len: 601 }));
        let mut at_limit = fic();
        at_limit.description = Some("d".repeat(600));
        assert!(at_limit.validate().is_ok());
        at_limit.description = Some("d".repeat(601));
        assert_eq!(at_limit.validate(), Err(FicError::TooLong { field: "description", len: 601 }));
        let mut ws = fic();
        ws.subject.push(' ');
        assert_eq!(ws.validate(), Err(FicError::Whitespace { field: "subject" }));
        let mut http = fic();
        http.issuer = "http://login.microsoftonline.com/x/v2.0".into();
        assert!(matches!(http.validate(), Err(FicError::IssuerNotHttps { .. })));
        for ok in [
            "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
            "https://login.microsoftonline.us/x/v2.0",
            "HTTPS://sts.windows.net/x/",
            "https://localhost:8443/issuer",
            "https://[::1]:8443/x",
            "https://token.actions.githubusercontent.com",
        ] {
            assert!(is_https_url(ok), "{ok}");
        }
        for bad in [
            "http://login.microsoftonline.com/x",
            "https://",
            "https:///x",
            "https://user@host/x",
            "https://host name/x",
            "https://host:/x",
            "https://host:123456/x",
            "https://ho_st/x",
            "https://host..com/x",
            "https://[::1/x",
            "https://[zz]/x",
            "ftp://host/x",
            "login.microsoftonline.com",
            "",
            "https://é.com/x",
        ] {
            assert!(!is_https_url(bad), "{bad}");
        }
        let mut empty = fic();
        empty.audiences[0].clear();
        assert_eq!(empty.validate(), Err(FicError::Empty { field: "audience" }));
    }

    #[test]
    fn bodies_have_exact_shapes() {
        let mut f = fic();
        f.description = Some("why".into());
        assert_eq!(
            serde_json::to_string(&f.graph_body().unwrap()).unwrap(),
            r#"{"audiences":["api://AzureADTokenExchange"],"description":"why","issuer":"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0","name":"dataverse-fic","subject":"/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/x/h/y"}"#
        );
        assert_eq!(
            serde_json::to_string(&f.arm_body().unwrap()).unwrap(),
            r#"{"properties":{"audiences":["api://AzureADTokenExchange"],"issuer":"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0","subject":"/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/x/h/y"}}"#
        );
        let mut bad = fic();
        bad.name = "x".into();
        assert!(bad.graph_body().is_err());
        assert!(bad.arm_body().is_err());
    }

    #[test]
    fn default_name_is_stable_and_distinct() {
        let env = Uuid::from_u128(1);
        let a = default_name(env, "subject-a");
        assert_eq!(a, default_name(env, "subject-a"));
        assert_ne!(a, default_name(env, "subject-b"));
        assert_ne!(a, default_name(Uuid::from_u128(2), "subject-a"));
        assert_eq!(a.len(), 59);
        // SHA-256("subject-a") starts with these 6 bytes.
        let digest = Sha256::digest(b"subject-a");
        let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(a, format!("dataverse-00000000-0000-0000-0000-000000000001-{hex}"));
        assert!(validate_name(&a).is_ok());
    }
}
