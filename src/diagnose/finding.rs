//! A diagnosis and its findings: each a cause, the evidence it was recognised in, and the fix.

use std::fmt;

use serde::Serialize;

use super::{Cause, EntraError, Segment};

/// One cause found, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Finding {
    /// The cause.
    pub cause: Cause,
    /// The segment of the subject (or the FIC's issuer or audience) it is in, when it is in one.
    pub segment: Option<Segment>,
    /// What the FIC has there; for a failure after the token, the line of the text it was recognised in (the
    /// evidence, quoted).
    pub found: Option<String>,
    /// What it should have there.
    pub expected: Option<String>,
    /// What is wrong, in the user's terms.
    pub message: String,
    /// What to do.
    pub fix: String,
}

impl Finding {
    fn general(cause: Cause, message: String, fix: String) -> Self {
        Finding { cause, segment: None, found: None, expected: None, message, fix }
    }
}

/// The findings for one error, most likely cause first.
///
/// Serializes as the CLI's `diagnose --output json` documents it: `{"code", "message", "presented": {subject,
/// issuer, audience, trace_id, correlation_id, timestamp}, "findings": [{cause, segment, found, expected, message,
/// fix}], "corrected_subject"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Diagnosis {
    /// The error.
    pub error: EntraError,
    /// What was found; never empty (an unexplained error gives one `unknown` finding).
    pub findings: Vec<Finding>,
    /// The subject the FIC must have, once every finding is applied: the one the platform presents (or the one
    /// computed from the inputs), when a finding concerns the subject.
    pub corrected_subject: Option<String>,
}

impl Serialize for Diagnosis {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Presented<'a> {
            subject: &'a Option<String>,
            issuer: &'a Option<String>,
            audience: &'a Option<String>,
            trace_id: &'a Option<String>,
            correlation_id: &'a Option<String>,
            timestamp: &'a Option<String>,
        }
        #[derive(Serialize)]
        struct Shape<'a> {
            code: &'a Option<String>,
            message: &'a str,
            presented: Presented<'a>,
            findings: &'a [Finding],
            corrected_subject: &'a Option<String>,
        }
        let e = &self.error;
        Shape {
            code: &e.code,
            message: &e.message,
            presented: Presented {
                subject: &e.presented_subject,
                issuer: &e.presented_issuer,
                audience: &e.presented_audience,
                trace_id: &e.trace_id,
                correlation_id: &e.correlation_id,
                timestamp: &e.timestamp,
            },
            findings: &self.findings,
            corrected_subject: &self.corrected_subject,
        }
        .serialize(s)
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error.code {
            Some(code) if !self.error.message.starts_with(code.as_str()) => {
                writeln!(f, "{code}: {}", self.error.message)?
            }
            _ => writeln!(f, "{}", self.error.message)?,
        }
        if let Some(s) = &self.error.presented_subject {
            writeln!(f, "presented subject: {s}")?;
        }
        for (i, finding) in self.findings.iter().enumerate() {
            let segment = finding.segment.map(|s| format!(" ({s})")).unwrap_or_default();
            writeln!(f, "\n{}. [{}]{segment} {}", i + 1, finding.cause.id(), finding.message)?;
            write!(f, "   fix: {}", finding.fix)?;
        }
        if let Some(subject) = &self.corrected_subject {
            write!(f, "\n\nthe FIC's subject, corrected: {subject}")?;
        }
        Ok(())
    }
}

/// Findings without repeats, in the order found.
pub(super) struct Findings(pub(super) Vec<Finding>);

impl Findings {
    pub(super) fn add(&mut self, cause: Cause, message: String, fix: String) {
        self.push(Finding::general(cause, message, fix));
    }

    /// Adds a finding unless the same one is there: the same message, or the same cause for the same value in
    /// the same segment (the audience is looked at for the error and for each FIC).
    pub(super) fn push(&mut self, finding: Finding) {
        let same = |f: &Finding| {
            f.cause == finding.cause
                && (f.message == finding.message
                    || (f.segment.is_some() && f.segment == finding.segment && f.found == finding.found))
        };
        if !self.0.iter().any(same) {
            self.0.push(finding);
        }
    }
}
