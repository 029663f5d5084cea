//! Entra's token errors (`AADSTS...`) read from whatever text holds one: a JSON body, a trace log, an exception.

use serde::{Deserialize, Serialize};

/// The Entra error codes this module knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EntraErrorKind {
    /// AADSTS700213: no FIC matches the presented subject.
    NoMatchingSubject,
    /// AADSTS7002138: a FIC matches the subject only case-insensitively.
    SubjectCaseMismatch,
    /// AADSTS700212: no FIC matches the presented audience.
    AudienceMismatch,
    /// AADSTS700211: no FIC matches the presented issuer.
    IssuerMismatch,
    /// AADSTS70021: no FIC matches (often a FIC that was just created).
    NoMatch,
    /// AADSTS70025: the application has no FIC at all.
    NoFederatedCredentials,
    /// AADSTS70050: the subject is not properly formatted (a version 1 subject with non-ASCII names).
    SubjectMalformed,
    /// AADSTS1002012: the scope has no `/.default` (client credential flows need it).
    ScopeWithoutDefault,
    /// AADSTS500011: the resource principal is not in the tenant (a mistyped application ID URI).
    ResourceNotFound,
    /// Another code, kept in [`EntraError::code`].
    Other,
}

impl EntraErrorKind {
    /// The kind of a numeric AADSTS code.
    pub fn of_code(code: u32) -> Self {
        match code {
            700213 => EntraErrorKind::NoMatchingSubject,
            7002138 => EntraErrorKind::SubjectCaseMismatch,
            700212 => EntraErrorKind::AudienceMismatch,
            700211 => EntraErrorKind::IssuerMismatch,
            70021 => EntraErrorKind::NoMatch,
            70025 => EntraErrorKind::NoFederatedCredentials,
            70050 => EntraErrorKind::SubjectMalformed,
            1002012 => EntraErrorKind::ScopeWithoutDefault,
            500011 => EntraErrorKind::ResourceNotFound,
            _ => EntraErrorKind::Other,
        }
    }
}

/// An Entra error, as far as the text tells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EntraError {
    /// The code, e.g. `AADSTS700213`, verbatim.
    pub code: Option<String>,
    /// Its number.
    pub number: Option<u32>,
    /// What it means.
    pub kind: Option<EntraErrorKind>,
    /// The description (the `error_description`, or the text from the code on).
    pub message: String,
    /// The subject the platform presented, quoted in the error.
    pub presented_subject: Option<String>,
    /// The issuer the platform presented.
    pub presented_issuer: Option<String>,
    /// The audience the platform presented.
    pub presented_audience: Option<String>,
    /// The trace id.
    pub trace_id: Option<String>,
    /// The correlation id.
    pub correlation_id: Option<String>,
    /// The timestamp.
    pub timestamp: Option<String>,
}

/// Why an error text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiagnoseError {
    /// The text holds no `AADSTS` code, and no other failure [`diagnose`](super::diagnose) knows.
    #[error(
        "no AADSTS error code and no other known failure in the text; paste the whole error message (or the JSON error body, or the trace log row's exception)"
    )]
    NoCode,
}

#[derive(Deserialize)]
struct OAuthErrorBody {
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u32>,
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default)]
    correlation_id: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
}

/// Reads an Entra error from what users paste: the whole message (with `Trace ID:`, `Correlation ID:`,
/// `Timestamp:`), a JSON error body (`error_description`, `error_codes`, `trace_id`, ...), the description
/// alone, or an exception text with the message inside it.
pub fn parse_error(text: &str) -> Result<EntraError, DiagnoseError> {
    let trimmed = text.trim();
    let mut out = EntraError::default();
    let mut description = trimmed.to_owned();
    let mut json_number = None;
    if let Some(start) = trimmed.find('{')
        && let Ok(body) = serde_json::from_str::<OAuthErrorBody>(&trimmed[start..])
    {
        if let Some(d) = body.error_description {
            description = d;
        }
        json_number = body.error_codes.first().copied();
        out.trace_id = body.trace_id;
        out.correlation_id = body.correlation_id;
        out.timestamp = body.timestamp;
    }
    let found = find_code(&description).or_else(|| json_number.map(|n| (n, description.len())));
    let Some((number, at)) = found else { return Err(DiagnoseError::NoCode) };
    out.number = Some(number);
    out.code = Some(format!("AADSTS{number}"));
    out.kind = Some(EntraErrorKind::of_code(number));
    let from_code = description.get(at.saturating_sub(6 + number.to_string().len())..).unwrap_or(&description);
    out.message = from_code.lines().next().unwrap_or(from_code).trim().to_owned();
    out.presented_subject =
        quoted_after(&description, "assertion subject").or_else(|| quoted_subject_anywhere(&description));
    out.presented_issuer = quoted_after(&description, "assertion issuer");
    out.presented_audience = quoted_after(&description, "assertion audience");
    out.trace_id = out.trace_id.or_else(|| word_after(&description, "Trace ID:"));
    out.correlation_id = out.correlation_id.or_else(|| word_after(&description, "Correlation ID:"));
    out.timestamp = out.timestamp.or_else(|| {
        let i = description.find("Timestamp:")?;
        let rest = description[i + "Timestamp:".len()..].trim_start();
        let end = rest.find(['\n', '"', '\'']).unwrap_or(rest.len());
        Some(rest[..end].trim().to_owned()).filter(|s| !s.is_empty())
    });
    Ok(out)
}

/// The first `AADSTS{digits}` and the byte position after it.
fn find_code(text: &str) -> Option<(u32, usize)> {
    let mut from = 0;
    while let Some(i) = text[from..].find("AADSTS") {
        let start = from + i + "AADSTS".len();
        let digits: String = text[start..].chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse::<u32>() {
            return Some((n, start + digits.len()));
        }
        from = start;
    }
    None
}

pub(super) fn quoted_after(text: &str, marker: &str) -> Option<String> {
    let i = text.find(marker)?;
    let rest = &text[i + marker.len()..];
    let open = rest.find(['\'', '"'])?;
    if rest[..open].trim().len() > 2 {
        return None;
    }
    let quote = rest[open..].chars().next()?;
    let inner = &rest[open + 1..];
    let close = inner.find(quote)?;
    Some(inner[..close].to_owned())
}

/// The first quoted string that looks like a subject identifier, for messages worded differently.
fn quoted_subject_anywhere(text: &str) -> Option<String> {
    for quote in ['\'', '"'] {
        let mut rest = text;
        while let Some(open) = rest.find(quote) {
            let inner = &rest[open + 1..];
            let close = inner.find(quote)?;
            let candidate = &inner[..close];
            if candidate.starts_with("/eid1/") || candidate.starts_with("component:pluginassembly") {
                return Some(candidate.to_owned());
            }
            rest = &inner[close + 1..];
        }
    }
    None
}

fn word_after(text: &str, marker: &str) -> Option<String> {
    let i = text.find(marker)?;
    let word: String =
        text[i + marker.len()..].trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    Some(word).filter(|w| !w.is_empty())
}

/// The token failure a plug-in trace log row records, if any: an `AADSTS` error in its exception or trace.
pub fn token_failure(log: &crate::entities::PluginTraceLog) -> Option<EntraError> {
    parse_error(&log.text()).ok()
}
