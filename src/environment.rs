//! Power Platform environment ids: a GUID, or `Default-{tenant guid}` for a tenant's Default environment.
//!
//! `RetrieveCurrentOrganization` types `EnvironmentId` as a string (`Edm.String`), and for the Default
//! environment it answers `Default-` followed by the tenant id (a comment in Microsoft's PowerApps-Samples,
//! `OrganizationDetail.cs`; Power Platform names the Default environment the same way). Every other environment
//! id is a GUID, of any version (real ids such as `7efcc31a-c410-e20e-...` are not version 4).
//!
//! [`EnvironmentId`] holds either form. Parsing is lenient about what people paste (upper case, braces, a GUID
//! without hyphens, `default-` in lower case) and strict about everything else; `Display` always gives the
//! canonical form: the GUID lowercase and hyphenated, after `Default-` for a Default environment. That canonical
//! text is what the crate writes in subjects (`/e/`), FIC names and row ids.
//!
//! What the platform writes in a subject's `/e/` segment for a Default environment is not documented: the crate
//! writes the id as `RetrieveCurrentOrganization` returns it, and `verify` compares it with the platform's own
//! answer (`GetComponentManagedIdentityFIC`), which wins where they differ.
//!
//! ```
//! use dataverse_mi::environment::EnvironmentId;
//!
//! let plain: EnvironmentId = "7EFCC31A-C410-E20E-9B3C-3EA55E7F9C56".parse()?;
//! assert_eq!(plain.to_string(), "7efcc31a-c410-e20e-9b3c-3ea55e7f9c56");
//! assert!(!plain.is_default());
//!
//! let default: EnvironmentId = "Default-72f988bf-86f1-41af-91ab-2d7cd011db47".parse()?;
//! assert!(default.is_default());
//! assert_eq!(default.guid().to_string(), "72f988bf-86f1-41af-91ab-2d7cd011db47");
//! assert_eq!(default.to_string(), "Default-72f988bf-86f1-41af-91ab-2d7cd011db47");
//!
//! assert!("Default".parse::<EnvironmentId>().is_err());
//! # Ok::<(), dataverse_mi::environment::EnvironmentIdError>(())
//! ```
//!
//! Its files import `guid`: the floors below it (`tests/architecture.rs` checks that no import runs up a
//! floor and that no files import each other in a circle).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::guid::{clip, parse_guid};

/// The prefix of a Default environment's id, as the platform writes it.
pub const DEFAULT_ENVIRONMENT_PREFIX: &str = "Default-";

/// A Power Platform environment id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EnvironmentId {
    /// An environment whose id is a GUID (every environment but a tenant's Default one).
    Guid(Uuid),
    /// A tenant's Default environment: `Default-{tenant id}`.
    Default {
        /// The tenant id in the environment id.
        tenant: Uuid,
    },
}

/// Why a text is not an environment id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvironmentIdError {
    /// Neither a GUID nor `Default-` followed by a GUID.
    #[error(
        "'{input}' is not a Power Platform environment id: expected a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) or, for a tenant's Default environment, Default-{{tenant GUID}}"
    )]
    Malformed {
        /// What was given (cut to 80 characters).
        input: String,
    },
}

impl EnvironmentId {
    /// The GUID in the id: the environment's own, or the tenant's for a Default environment.
    pub fn guid(&self) -> Uuid {
        match *self {
            EnvironmentId::Guid(g) => g,
            EnvironmentId::Default { tenant } => tenant,
        }
    }

    /// Whether this is a tenant's Default environment (`Default-{tenant}`).
    pub fn is_default(&self) -> bool {
        matches!(self, EnvironmentId::Default { .. })
    }

    /// The id without hyphens, lowercase: `7efcc31ac410e20e9b3c3ea55e7f9c56`, or `default72f988bf...` for a Default
    /// environment (the form Power Platform's environment API host names use).
    pub fn compact(&self) -> String {
        match self {
            EnvironmentId::Guid(g) => g.simple().to_string(),
            EnvironmentId::Default { tenant } => format!("default{}", tenant.simple()),
        }
    }
}

impl From<Uuid> for EnvironmentId {
    fn from(guid: Uuid) -> Self {
        EnvironmentId::Guid(guid)
    }
}

impl fmt::Display for EnvironmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Uuid::encode_buffer();
        match self {
            EnvironmentId::Guid(g) => f.write_str(g.hyphenated().encode_lower(&mut buf)),
            EnvironmentId::Default { tenant } => {
                f.write_str(DEFAULT_ENVIRONMENT_PREFIX)?;
                f.write_str(tenant.hyphenated().encode_lower(&mut buf))
            }
        }
    }
}

impl FromStr for EnvironmentId {
    type Err = EnvironmentIdError;

    /// Parses a GUID (any case, optionally in braces or without hyphens) or `Default-` (any case) followed by
    /// one. Surrounding white space is ignored; anything else is refused.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let malformed = || EnvironmentIdError::Malformed { input: clip(input) };
        let trimmed = input.trim();
        let prefix_len = DEFAULT_ENVIRONMENT_PREFIX.len();
        let is_default = trimmed.get(..prefix_len).is_some_and(|p| p.eq_ignore_ascii_case(DEFAULT_ENVIRONMENT_PREFIX));
        if is_default {
            let rest = &trimmed[prefix_len..];
            // The GUID follows directly: no space, no second prefix.
            if rest.starts_with(char::is_whitespace) {
                return Err(malformed());
            }
            return parse_guid(rest).map(|tenant| EnvironmentId::Default { tenant }).map_err(|_| malformed());
        }
        parse_guid(trimmed).map(EnvironmentId::Guid).map_err(|_| malformed())
    }
}

impl Serialize for EnvironmentId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EnvironmentId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: Uuid = Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47);

    #[test]
    fn forms_accepted_and_their_canonical_text() {
        for (input, canonical) in [
            ("7efcc31a-c410-e20e-9b3c-3ea55e7f9c56", "7efcc31a-c410-e20e-9b3c-3ea55e7f9c56"),
            ("7EFCC31A-C410-E20E-9B3C-3EA55E7F9C56", "7efcc31a-c410-e20e-9b3c-3ea55e7f9c56"),
            ("{7efcc31a-c410-e20e-9b3c-3ea55e7f9c56}", "7efcc31a-c410-e20e-9b3c-3ea55e7f9c56"),
            (" 7efcc31ac410e20e9b3c3ea55e7f9c56\n", "7efcc31a-c410-e20e-9b3c-3ea55e7f9c56"),
            ("Default-72f988bf-86f1-41af-91ab-2d7cd011db47", "Default-72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("default-72F988BF-86F1-41AF-91AB-2D7CD011DB47", "Default-72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("DEFAULT-{72f988bf-86f1-41af-91ab-2d7cd011db47}", "Default-72f988bf-86f1-41af-91ab-2d7cd011db47"),
        ] {
            let id: EnvironmentId = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(id.to_string(), canonical, "{input}");
            assert_eq!(id.to_string().parse::<EnvironmentId>().unwrap(), id);
        }
        let d: EnvironmentId = "Default-72f988bf-86f1-41af-91ab-2d7cd011db47".parse().unwrap();
        assert_eq!(d, EnvironmentId::Default { tenant: TENANT });
        assert_eq!(d.compact(), "default72f988bf86f141af91ab2d7cd011db47");
    }

    #[test]
    fn everything_else_refused() {
        for bad in [
            "",
            "Default",
            "Default-",
            "Default- 72f988bf-86f1-41af-91ab-2d7cd011db47",
            "Default_72f988bf-86f1-41af-91ab-2d7cd011db47",
            "Default72f988bf-86f1-41af-91ab-2d7cd011db47",
            "Default-Default-72f988bf-86f1-41af-91ab-2d7cd011db47",
            "Default-72f988bf-86f1-41af-91ab-2d7cd011db4",
            "Sandbox-72f988bf-86f1-41af-91ab-2d7cd011db47",
            "72f988bf-86f1-41af-91ab-2d7cd011db47-Default",
            "contoso",
            "Défault-72f988bf-86f1-41af-91ab-2d7cd011db47",
        ] {
            let err = bad.parse::<EnvironmentId>().unwrap_err();
            assert!(err.to_string().contains("Default-{tenant GUID}"), "{bad}: {err}");
        }
    }

    #[test]
    fn serde_is_the_canonical_string() {
        let d = EnvironmentId::Default { tenant: TENANT };
        assert_eq!(serde_json::to_value(d).unwrap(), "Default-72f988bf-86f1-41af-91ab-2d7cd011db47");
        let back: EnvironmentId =
            serde_json::from_value(serde_json::json!("Default-72f988bf-86f1-41af-91ab-2d7cd011db47")).unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_value::<EnvironmentId>(serde_json::json!("nope")).is_err());
    }
}
