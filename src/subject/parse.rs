//! Parsing a subject: the explanation, refused where it has an error.

use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use super::identifier::app_segment;
use super::{Severity, SubjectIdentifier, SubjectProblem, explain_subject};

impl<'de> Deserialize<'de> for SubjectIdentifier {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
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
