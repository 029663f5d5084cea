//! Why a plug-in's token request failed: Entra's `AADSTS...` errors parsed, and the likely causes found by
//! recomputing the values people get wrong and comparing them with what the platform presented and what the
//! identity's FICs hold.
//!
//! ```
//! use dataverse_mi::diagnose::{parse_error, explain, Cause, DiagnosisInputs};
//! use dataverse_mi::guid::{encode_guid, encode_guid_big_endian};
//! use uuid::Uuid;
//!
//! let tenant = Uuid::parse_str("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap();
//! let presented = format!(
//!     "/eid1/c/pub/t/{}/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/7efcc31a-c410-e20e-9b3c-3ea55e7f9c56/h/{}",
//!     encode_guid(tenant), "ab".repeat(32));
//! let error = parse_error(&format!(
//!     "AADSTS700213: No matching federated identity record found for presented assertion subject '{presented}'. \
//!      Trace ID: 1f1e4b0c-0000-0000-0000-000000000000 Correlation ID: 2a2b3c4d-0000-0000-0000-000000000000 Timestamp: 2026-11-22 10:00:00Z"))?;
//! // What the user configured: the tenant encoded the wrong way.
//! let configured = presented.replace(&encode_guid(tenant), &encode_guid_big_endian(tenant));
//! let inputs = DiagnosisInputs { configured: vec![configured.into()], ..Default::default() };
//! let diagnosis = explain(&error, &inputs);
//! assert_eq!(diagnosis.findings[0].cause, Cause::TenantBigEndian);
//! # Ok::<(), dataverse_mi::diagnose::DiagnoseError>(())
//! ```

mod analyzer;
mod path;

use std::fmt;

pub use crate::subject::{Cause, Segment};
pub use analyzer::analyze;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cert::{Certificate, CertificateHash};
use crate::cloud::{Cloud, CloudProfile};
use crate::environment::EnvironmentId;
use crate::subject::{
    CertificateBinding, LegacyV0, SubjectFormatVersion, SubjectIdentifier, SubjectSegments, explain_subject,
};

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
    /// The text holds no `AADSTS` code, and no other failure [`diagnose`] knows.
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

fn quoted_after(text: &str, marker: &str) -> Option<String> {
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

/// A FIC configured on the identity, as far as the user knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfiguredFic {
    /// The subject.
    pub subject: String,
    /// The issuer, if known.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The audience, if known.
    #[serde(default)]
    pub audience: Option<String>,
    /// When it was created, where the identity's API says (ARM's `systemData.createdAt` for a user-assigned
    /// identity; Microsoft Graph does not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<std::time::SystemTime>,
}

impl From<String> for ConfiguredFic {
    fn from(subject: String) -> Self {
        ConfiguredFic { subject, ..Default::default() }
    }
}

impl From<&str> for ConfiguredFic {
    fn from(subject: &str) -> Self {
        subject.to_owned().into()
    }
}

/// What the user knows of their setup; every field is optional, and each one lets more causes be checked.
#[derive(Debug, Clone, Default)]
pub struct DiagnosisInputs {
    /// The tenant id.
    pub tenant_id: Option<Uuid>,
    /// The environment id (a GUID, or `Default-{tenant}` for a Default environment).
    pub environment_id: Option<EnvironmentId>,
    /// The organization id (to recognise it where the environment id belongs).
    pub organization_id: Option<Uuid>,
    /// The user's own app registration or UAMI client id (to recognise it in the `/a/` segment).
    pub application_id: Option<Uuid>,
    /// The signing certificate.
    pub certificate: Option<Certificate>,
    /// The other certificates the user has with it (the CA, intermediates: from a PEM or PFX file, or the signed
    /// file's bag), to recognise a hash of one of them.
    pub chain: Vec<Certificate>,
    /// The SHA-256 of the `.pfx` or `.pem` file the certificate came from, when it came from one (to recognise a
    /// hash of the file instead of the certificate).
    pub pfx_sha256: Option<CertificateHash>,
    /// The cloud.
    pub cloud: Option<CloudProfile>,
    /// The `version` of the managed identity row.
    pub version: Option<SubjectFormatVersion>,
    /// The FICs on the identity. An empty list means "none configured" only when `fics_known` is true.
    pub configured: Vec<ConfiguredFic>,
    /// Whether `configured` is the complete list (read from the service) rather than what the user pasted.
    pub fics_known: bool,
    /// Whether a FIC was created in the last few minutes.
    pub recently_created: bool,
    /// When the failure happened (a trace log row's `createdon`); the error's own timestamp, or now, otherwise.
    pub failed_at: Option<std::time::SystemTime>,
}

/// How long after its creation a FIC is given to propagate before a failure is no longer put down to it: Entra
/// says a new FIC can take "a few minutes"; this crate allows ten.
pub const FIC_PROPAGATION: std::time::Duration = std::time::Duration::from_secs(600);

/// Diagnoses a failure from its text (a pasted error, a trace log row's exception): an Entra token error
/// (`AADSTS...`, [`parse_error`] then [`explain`]), or one of the failures after the token (a plug-in package not
/// bound, an unsigned assembly, a call to Dataverse or Microsoft Graph refused for lack of access, the Azure SDK
/// bundled into the plug-in), each with a stable cause id, the line it was recognised in and the fix.
///
/// ```
/// use dataverse_mi::diagnose::{diagnose, Cause, DiagnosisInputs};
/// let text = "System.ServiceModel.FaultException: Plugin assembly must be signed with a valid certificate to use Managed Identity";
/// let diagnosis = diagnose(text, &DiagnosisInputs::default())?;
/// assert_eq!(diagnosis.findings[0].cause, Cause::AssemblyNotSigned);
/// assert_eq!(diagnosis.findings[0].found.as_deref(), Some(text)); // the evidence, quoted
/// # Ok::<(), dataverse_mi::diagnose::DiagnoseError>(())
/// ```
pub fn diagnose(text: &str, inputs: &DiagnosisInputs) -> Result<Diagnosis, DiagnoseError> {
    diagnose_failed_at(text, inputs, inputs.failed_at)
}

/// [`diagnose`], the failure's time given apart from the inputs (which `watch` shares across every row it reads).
fn diagnose_failed_at(
    text: &str,
    inputs: &DiagnosisInputs,
    failed_at: Option<std::time::SystemTime>,
) -> Result<Diagnosis, DiagnoseError> {
    match parse_error(text) {
        Ok(error) => Ok(explain_failed_at(&error, inputs, failed_at)),
        Err(no_code) => {
            let findings = path::findings(text, inputs);
            let Some(first) = findings.first() else { return Err(no_code) };
            let error = EntraError { message: first.found.clone().unwrap_or_default(), ..EntraError::default() };
            Ok(Diagnosis { error, findings, corrected_subject: None })
        }
    }
}

/// The failure a plug-in trace log row records, diagnosed ([`diagnose`]), with the row's time as the failure's.
pub fn trace_log_failure(log: &crate::entities::PluginTraceLog, inputs: &DiagnosisInputs) -> Option<Diagnosis> {
    diagnose_failed_at(&log.text(), inputs, inputs.failed_at.or_else(|| log.created_at())).ok()
}

impl DiagnosisInputs {
    /// Takes everything a certificate file gives: the certificate (a `.cer`, `.pem`, `.pfx`, signed assembly or
    /// signed package, as [`Certificate::from_bytes_with_password`] reads them), the other certificates with it
    /// (the chain), and for a `.pfx` or `.pem` file the SHA-256 of the file itself, so that a FIC made from any of
    /// them is recognised. Returns what the user should know about how the certificate was picked.
    ///
    /// ```
    /// use dataverse_mi::diagnose::DiagnosisInputs;
    /// let pem = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/chain-with-key.pem"))?;
    /// let mut inputs = DiagnosisInputs::default();
    /// inputs.set_certificate_file(&pem, None)?;
    /// assert!(inputs.certificate.is_some() && inputs.pfx_sha256.is_some());
    /// assert_eq!(inputs.chain.len(), 1); // the CA after the leaf
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_certificate_file(
        &mut self,
        bytes: &[u8],
        password: Option<&crate::secret::Secret>,
    ) -> Result<Vec<crate::cert::LoadWarning>, crate::cert::CertificateError> {
        use crate::cert::CertificateFormat;
        let loaded = Certificate::from_bytes_with_password(bytes, password)?;
        self.pfx_sha256 = matches!(loaded.format, CertificateFormat::Pkcs12 | CertificateFormat::Pem)
            .then(|| CertificateHash(<sha2::Sha256 as sha2::Digest>::digest(bytes).into()));
        self.certificate = Some(loaded.certificate);
        self.chain = loaded.chain;
        Ok(loaded.warnings)
    }
}

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

struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, cause: Cause, message: String, fix: String) {
        self.push(Finding::general(cause, message, fix));
    }

    /// Adds a finding unless the same one is there: the same message, or the same cause for the same value in
    /// the same segment (the audience is looked at for the error and for each FIC).
    fn push(&mut self, finding: Finding) {
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

/// The ways people write a distinguished name other than .NET's, each with where it comes from: RFC 4514 (most
/// specific first, `,` without a space, `ST` for the state, `\,` escapes), .NET's text without the spaces, the
/// forward order (least specific first), OpenSSL's one-line `/C=../O=../CN=..` and its default `C = US, O = ..`,
/// `ST=` where .NET writes `S=`, long attribute names (`commonName=..., organizationName=...`), and a community
/// tool's `commonName=X/organizationName=Y`.
pub(crate) fn non_dotnet_dn_forms(dotnet: &str) -> Vec<(String, String)> {
    let attrs = crate::cert::parse_dotnet_name(dotnet);
    let st = |k: &str| if k == "S" { "ST".to_owned() } else { k.to_owned() };
    let long = |k: &str| {
        match k {
            "CN" => "commonName",
            "O" => "organizationName",
            "OU" => "organizationalUnitName",
            "C" => "countryName",
            "S" => "stateOrProvinceName",
            "L" => "localityName",
            "E" => "emailAddress",
            "STREET" => "streetAddress",
            "SERIALNUMBER" => "serialNumber",
            "DC" => "domainComponent",
            other => other,
        }
        .to_owned()
    };
    let rfc_escape = |v: &str| {
        let mut out = String::new();
        for (i, c) in v.chars().enumerate() {
            if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') || (i == 0 && matches!(c, '#' | ' ')) {
                out.push('\\');
            }
            out.push(c);
        }
        out
    };
    let dotnet_value = |v: &str| crate::cert::dn::quote_value(v);
    let render = |order: &mut dyn Iterator<Item = &crate::cert::NameAttribute>,
                  key: &dyn Fn(&str) -> String,
                  value: &dyn Fn(&str) -> String,
                  eq: &str,
                  sep: &str| {
        order.map(|a| format!("{}{eq}{}", key(&a.key), value(&a.value))).collect::<Vec<_>>().join(sep)
    };
    let same = |k: &str| k.to_owned();
    let raw = |v: &str| v.to_owned();
    let mut forms = vec![
        (
            render(&mut attrs.iter(), &st, &rfc_escape, "=", ","),
            "RFC 4514 (`openssl x509 -nameopt RFC2253`, Python, Go, Java)".to_owned(),
        ),
        (render(&mut attrs.iter(), &same, &dotnet_value, "=", ","), "commas without spaces".to_owned()),
        (
            render(&mut attrs.iter().rev(), &same, &dotnet_value, "=", ", "),
            "forward order (least specific first, as the DER encodes it)".to_owned(),
        ),
        (
            format!("/{}", render(&mut attrs.iter().rev(), &st, &raw, "=", "/")),
            "OpenSSL's one-line /C=../CN=.. form".to_owned(),
        ),
        (render(&mut attrs.iter().rev(), &st, &raw, " = ", ", "), "OpenSSL's default `C = US, O = ..` form".to_owned()),
        (render(&mut attrs.iter(), &st, &dotnet_value, "=", ", "), "`ST=` where .NET writes `S=`".to_owned()),
        (render(&mut attrs.iter(), &long, &dotnet_value, "=", ", "), "long attribute names (`commonName=`)".to_owned()),
        (
            render(&mut attrs.iter(), &long, &raw, "=", "/"),
            "a community tool's `commonName=X/organizationName=Y` form".to_owned(),
        ),
        (
            render(&mut attrs.iter().rev(), &st, &raw, "=", "\n"),
            "Node's `X509Certificate.subject` (one per line, forward order)".to_owned(),
        ),
    ];
    // Then every combination of order, separator, state name and quoting that people write, so a name hashed in
    // any of them is named (the labels above win where a form is both).
    for (reversed, order) in [(false, "most specific first"), (true, "least specific first (DER order)")] {
        for (sep, sep_label) in [(", ", "\", \""), (",", "\",\""), ("; ", "\"; \""), (" ", "spaces")] {
            for (key, key_label) in [(&same as &dyn Fn(&str) -> String, "S="), (&st as &dyn Fn(&str) -> String, "ST=")]
            {
                for (value, value_label) in [
                    (&dotnet_value as &dyn Fn(&str) -> String, ".NET quoting"),
                    (&raw as &dyn Fn(&str) -> String, "no quoting"),
                    (&rfc_escape as &dyn Fn(&str) -> String, "RFC 4514 escapes"),
                ] {
                    let text = if reversed {
                        render(&mut attrs.iter().rev(), key, value, "=", sep)
                    } else {
                        render(&mut attrs.iter(), key, value, "=", sep)
                    };
                    forms.push((text, format!("{order}, separated by {sep_label}, {key_label}, {value_label}")));
                }
            }
        }
    }
    // A form that happens to be .NET's own (a one-attribute name written the same way) explains nothing.
    forms.retain(|(form, _)| form != dotnet);
    let mut seen = std::collections::HashSet::new();
    forms.retain(|(form, _)| seen.insert(form.clone()));
    forms
}

/// Explains an error: recomputes the known wrong values and compares them with the presented subject, the
/// configured FICs and the inputs. Most likely cause first.
pub fn explain(error: &EntraError, inputs: &DiagnosisInputs) -> Diagnosis {
    explain_failed_at(error, inputs, inputs.failed_at)
}

fn explain_failed_at(
    error: &EntraError,
    inputs: &DiagnosisInputs,
    failed_at: Option<std::time::SystemTime>,
) -> Diagnosis {
    // A request refused for what it asked (its scope or resource) never reached the FIC: the FICs are not looked at.
    if let Some(findings) = request_findings(error) {
        return Diagnosis { error: error.clone(), findings, corrected_subject: None };
    }
    let mut out = Findings(Vec::new());
    let cloud = inputs.cloud.clone().unwrap_or_default();
    let presented = error.presented_subject.as_deref().map(explain_subject);

    // What the subject should be, from the inputs, when they are complete enough.
    let expected_from_inputs: Option<SubjectIdentifier> = (|| {
        let cert = inputs.certificate.as_ref()?;
        let version = inputs.version.unwrap_or_default();
        let binding = CertificateBinding::for_certificate(cert, version, crate::subject::CertificateKind::Auto).ok()?;
        SubjectIdentifier::new(&cloud, inputs.tenant_id?, inputs.environment_id?, binding).ok()
    })();
    let expected: Option<String> =
        error.presented_subject.clone().or_else(|| expected_from_inputs.as_ref().map(|s| s.to_string()));

    // The certificate the user gave against the one the platform presents: when they differ, nothing configured
    // for the given certificate can match, whatever else is right.
    if let (Some(cert), Some(binding)) =
        (inputs.certificate.as_ref(), presented.as_ref().and_then(|p| p.parts.binding.as_ref()))
        && !presents_certificate(binding, cert)
    {
        out.add(
            Cause::PresentedOtherCertificate,
            format!(
                "the presented subject is not this certificate's ({}): the registered plug-in is signed with another one",
                cert.subject().unwrap_or("a certificate whose name cannot be read")
            ),
            "sign the plug-in with this certificate and register it again, or configure the FIC for the certificate it is signed with (`dataverse-mi verify` reads the registered signature)".into(),
        );
    }

    if inputs.fics_known && inputs.configured.is_empty() || error.kind == Some(EntraErrorKind::NoFederatedCredentials) {
        out.add(
            Cause::NoFic,
            "the identity has no federated identity credential".into(),
            format!(
                "add one with the subject {} (`dataverse-mi fic ...` prints the body)",
                expected.as_deref().unwrap_or("the platform presents")
            ),
        );
    }

    if let (Some(expected), Some(parts)) = (&expected, expected.as_deref().map(explain_subject)) {
        let _ = &parts;
        compare_fics(&mut out, expected, inputs, &cloud);
        // The platform presents the version the row asks for: a mismatch with the user's intent shows here.
        if let (Some(presented), Some(want)) = (&presented, inputs.version) {
            let got = presented.parts.binding.as_ref().and_then(CertificateBinding::version);
            if let Some(got) = got.filter(|g| *g != want) {
                out.add(
                    Cause::VersionMismatch,
                    format!("the platform presents a version {got} subject, but the setup is meant to be version {want}"),
                    format!("set the managedidentity row's `version` to {want}, or configure the version {got} subject shown above"),
                );
            }
        }
        // The environment id the user works with against the one the platform presents.
        if let Some(presented_env) = presented.as_ref().and_then(|e| e.parts.environment_id)
            && let Some(given) = inputs.environment_id
            && given != presented_env
        {
            if inputs.organization_id.map(EnvironmentId::Guid) == Some(given) {
                out.add(
                    Cause::OrganizationIdAsEnvironment,
                    format!("{given} is the organization id, not the environment id {presented_env}"),
                    format!("use the environment id {presented_env} (RetrieveCurrentOrganization's EnvironmentId)"),
                );
            } else {
                out.add(
                    Cause::EnvironmentMismatch,
                    format!("the platform presents environment {presented_env}, not {given}"),
                    "build the subject for the environment the plug-in runs in".into(),
                );
            }
        }
    }

    match error.kind {
        Some(EntraErrorKind::IssuerMismatch) => issuer_findings(&mut out, error, inputs, &cloud),
        Some(EntraErrorKind::AudienceMismatch) => {
            let presented = error.presented_audience.clone().unwrap_or_else(|| cloud.audience.clone());
            let configured: Vec<&str> = inputs.configured.iter().filter_map(|c| c.audience.as_deref()).collect();
            if configured.is_empty() {
                out.add(
                    Cause::WrongCloud,
                    format!("the FIC's audience does not match the presented audience '{presented}'"),
                    format!("set the FIC's audience to exactly '{presented}' (case-sensitive)"),
                );
            }
            for aud in configured.into_iter().filter(|a| *a != presented) {
                let cause = match Cloud::from_audience(aud) {
                    Some(_) if !aud.eq_ignore_ascii_case(&presented) => Cause::WrongCloud,
                    _ => Cause::AudienceMismatch,
                };
                let cloud_of = Cloud::from_audience(aud).filter(|_| cause == Cause::WrongCloud);
                out.push(Finding {
                    cause,
                    segment: Some(Segment::Audience),
                    found: Some(aud.to_owned()),
                    expected: Some(presented.clone()),
                    message: format!(
                        "the FIC's audience '{aud}'{} does not match the presented audience '{presented}' (matching is case-sensitive)",
                        cloud_of.map(|c| format!(" ({c} cloud's)")).unwrap_or_default()
                    ),
                    fix: format!("set the FIC's audience to exactly '{presented}'"),
                });
            }
        }
        Some(EntraErrorKind::SubjectMalformed) => {
            out.add(
                Cause::VersionMismatch,
                "the subject is not properly formatted: a version 1 subject with non-ASCII characters in a certificate name".into(),
                "move to version 2 (hashed names): set the row's `version` to 2 and configure the version 2 subject".into(),
            );
        }
        Some(EntraErrorKind::NoMatch)
        | Some(EntraErrorKind::NoMatchingSubject)
        | Some(EntraErrorKind::SubjectCaseMismatch) => {
            if let Some(expected) = &expected
                && let Some(fic) = inputs.configured.iter().find(|c| c.subject == *expected)
            {
                propagation(&mut out, error, inputs, fic, failed_at);
            }
        }
        _ => {}
    }
    // Entra's own word that only letter case differs: named as such, unless a finding already says where.
    let case_named = out.0.iter().any(|f| {
        matches!(
            f.cause,
            Cause::SubjectCase | Cause::HashUppercase | Cause::TenantCase | Cause::EnvironmentNotCanonical
        )
    });
    if error.kind == Some(EntraErrorKind::SubjectCaseMismatch) && !case_named {
        out.add(
            Cause::SubjectCase,
            "a FIC matches the presented subject only when upper/lower case is ignored; Entra matches case-sensitively"
                .into(),
            match &expected {
                Some(e) => format!("set the FIC's subject to exactly {e}"),
                None => "set the FIC's subject to exactly the presented subject, letter for letter".into(),
            },
        );
    }
    if error.kind == Some(EntraErrorKind::NoMatch) && out.0.is_empty() {
        out.add(
            Cause::PropagationDelay,
            "no FIC matched; Entra reports this while a new FIC is still propagating".into(),
            "if the FIC was created in the last few minutes, wait and try again; otherwise compare it with the presented values".into(),
        );
    }
    if out.0.is_empty() {
        out.add(
            Cause::Unknown,
            match &expected {
                Some(e) => format!("no known mistake explains the error; the FIC's subject must be exactly {e}"),
                None => "no known mistake explains the error".into(),
            },
            "compare the FIC's issuer, subject and audience with the presented values character by character (matching is case-sensitive)".into(),
        );
    }
    // Most likely first: another certificate than the user's first (nothing else matters until it is settled), then
    // the findings that name a known mistake, in segment order, before the unexplained ones.
    out.0.sort_by_key(|f| match f.cause {
        Cause::PresentedOtherCertificate => 0,
        Cause::DifferentValue | Cause::Unknown => 2,
        _ => 1,
    });
    let corrected_subject = expected.filter(|_| out.0.iter().any(|f| f.segment.is_some_and(|s| s < Segment::Issuer)));
    Diagnosis { error: error.clone(), findings: out.0, corrected_subject }
}

/// The findings for a token request refused for what it asked (a scope without `/.default`, a resource the tenant
/// does not know), which Entra refuses before any FIC is looked at; `None` for the other errors.
fn request_findings(error: &EntraError) -> Option<Vec<Finding>> {
    let mut out = Findings(Vec::new());
    match error.kind {
        Some(EntraErrorKind::ScopeWithoutDefault) => {
            let scope = path::word_after(&error.message, "value for scope").unwrap_or_else(|| "the resource".into());
            let right = format!("{}/.default", scope.trim_end_matches('/'));
            out.push(Finding {
                cause: Cause::ScopeWithoutDefault,
                segment: None,
                found: Some(scope.clone()),
                expected: Some(right.clone()),
                message: format!("the token was asked for the scope '{scope}': a plug-in's identity signs in as itself (client credentials), which needs the resource followed by /.default"),
                fix: format!("ask IManagedIdentityService.AcquireToken for [\"{right}\"]"),
            });
        }
        Some(EntraErrorKind::ResourceNotFound) => {
            let resource =
                path::word_after(&error.message, "resource principal named").unwrap_or_else(|| "the resource".into());
            let closest = path::closest_resource(&resource);
            out.push(Finding {
                cause: Cause::ResourceNotFound,
                segment: None,
                found: Some(resource.clone()),
                expected: closest.map(|c| format!("{c}/.default")),
                message: match closest {
                    Some(c) => format!("the token was asked for '{resource}', which the tenant does not know: a typo of {c}?"),
                    None => format!("the token was asked for '{resource}', which the tenant does not know (no service principal has that application ID URI)"),
                },
                fix: match closest {
                    Some(c) => format!("ask for [\"{c}/.default\"]"),
                    None => "check the API's application ID URI (its app registration, Expose an API) and ask for \"{uri}/.default\"".into(),
                },
            });
        }
        _ => return None,
    }
    Some(out.0)
}

/// A FIC with exactly the presented subject exists: when it was created (where the identity's API says) against
/// when the token request failed tells whether Entra may still be propagating it, and when to try again.
fn propagation(
    out: &mut Findings,
    error: &EntraError,
    inputs: &DiagnosisInputs,
    fic: &ConfiguredFic,
    failed_at: Option<std::time::SystemTime>,
) {
    let failed = failed_at
        .or_else(|| error.timestamp.as_deref().and_then(|t| humantime::parse_rfc3339_weak(t.trim()).ok()))
        .unwrap_or_else(std::time::SystemTime::now);
    let at = |t: std::time::SystemTime| humantime::format_rfc3339_seconds(t).to_string();
    let (message, fix) = match fic.created {
        Some(created) if failed.duration_since(created).map_or(true, |age| age < FIC_PROPAGATION) => {
            let minutes = failed.duration_since(created).map(|d| d.as_secs() / 60).unwrap_or(0);
            (
                format!(
                    "a FIC with exactly the presented subject was created at {}, {minutes} minute(s) before the token request: Entra needs a few minutes to propagate a new FIC",
                    at(created)
                ),
                format!("try again after {} (no change is needed)", at(created + FIC_PROPAGATION)),
            )
        }
        Some(created) => (
            format!(
                "a FIC with exactly the presented subject exists, created at {}: long enough before the failure that propagation does not explain it",
                at(created)
            ),
            "compare its issuer and audience with the presented ones, character by character".into(),
        ),
        None if inputs.recently_created => (
            "a FIC with exactly the presented subject exists, and it was just created".into(),
            "wait a few minutes and try again".into(),
        ),
        None => (
            "a FIC with exactly the presented subject exists (Microsoft Graph does not say when a FIC was created)"
                .into(),
            "if it was created in the last minutes, wait and try again; otherwise check its issuer and audience too"
                .into(),
        ),
    };
    out.add(Cause::PropagationDelay, message, fix);
}

/// Whether a presented certificate part is this certificate's, in whichever form it was presented: its SHA-256 for
/// `/h/`, its name hashes for version 2, its CN values (or, for the whole-name form, its names) for version 1.
fn presents_certificate(binding: &CertificateBinding, cert: &Certificate) -> bool {
    match binding {
        CertificateBinding::SelfSigned { sha256 } => *sha256 == cert.sha256(),
        CertificateBinding::TrustedV2 { issuer_hash, subject_hash } => {
            cert.issuer_hash().is_ok_and(|h| h == *issuer_hash) && cert.subject_hash().is_ok_and(|h| h == *subject_hash)
        }
        CertificateBinding::TrustedV1 { issuer, subject } => {
            let (Ok(i), Ok(s)) = (cert.issuer(), cert.subject()) else { return true };
            let cn = |n: &str| crate::subject::v1_simple_name(n).unwrap_or_default();
            (cn(i) == *issuer || i == issuer) && (cn(s) == *subject || s == subject)
        }
    }
}

/// Compares the configured FICs with the expected subject: a version 0 FIC is named as such; the others go
/// through the segment analyzer. When some FICs are for the environment the platform presents, only those are
/// compared (the identity's FICs for other environments are theirs, not mistakes).
fn compare_fics(out: &mut Findings, expected: &str, inputs: &DiagnosisInputs, cloud: &CloudProfile) {
    let environment = |s: &str| SubjectSegments::split(s).environment.and_then(|e| e.parse::<EnvironmentId>().ok());
    let here = environment(expected);
    let same_environment: Vec<&ConfiguredFic> =
        inputs.configured.iter().filter(|c| here.is_some() && environment(&c.subject) == here).collect();
    let candidates: Vec<&ConfiguredFic> =
        if same_environment.is_empty() { inputs.configured.iter().collect() } else { same_environment };
    for configured in candidates {
        let c = configured.subject.as_str();
        if c == expected {
            continue;
        }
        if LegacyV0::parse_subject(c.trim()).is_some() {
            out.add(
                Cause::LegacyV0,
                format!("the FIC '{c}' is a deprecated version 0 subject"),
                format!("replace it with the current subject {expected}"),
            );
            continue;
        }
        for finding in analyze(expected, c, inputs) {
            out.push(finding);
        }
        if let Some(aud) = &configured.audience
            && *aud != cloud.audience
        {
            let cause = if aud.eq_ignore_ascii_case(&cloud.audience) || Cloud::from_audience(aud).is_none() {
                Cause::AudienceMismatch
            } else {
                Cause::WrongCloud
            };
            out.push(Finding {
                cause,
                segment: Some(Segment::Audience),
                found: Some(aud.clone()),
                expected: Some(cloud.audience.clone()),
                message: format!("the FIC's audience '{aud}' is not '{}' (matching is case-sensitive)", cloud.audience),
                fix: format!("set the audience to exactly '{}'", cloud.audience),
            });
        }
    }
}

fn issuer_findings(out: &mut Findings, error: &EntraError, inputs: &DiagnosisInputs, cloud: &CloudProfile) {
    let Some(tenant) = inputs
        .tenant_id
        .or_else(|| error.presented_subject.as_deref().and_then(|s| explain_subject(s).parts.tenant_id))
    else {
        out.add(
            Cause::IssuerMismatch,
            "the FIC's issuer does not match the presented issuer".into(),
            "use https://login.microsoftonline.com/{tenant}/v2.0 (or your cloud's login host)".into(),
        );
        return;
    };
    let right = cloud.fic_issuer(tenant);
    for issuer in inputs.configured.iter().filter_map(|c| c.issuer.as_deref()) {
        let why = if issuer == right {
            continue;
        } else if issuer == format!("{right}/") {
            "ends with a slash".to_owned()
        } else if issuer.trim_end_matches('/') == right.trim_end_matches("/v2.0") {
            "has no /v2.0".to_owned()
        } else if issuer.contains("sts.windows.net") {
            "is the v1 form https://sts.windows.net/{tenant}/".to_owned()
        } else if !issuer.contains(&tenant.to_string()) {
            "names another tenant".to_owned()
        } else {
            "differs".to_owned()
        };
        out.push(Finding {
            cause: Cause::IssuerMismatch,
            segment: Some(Segment::Issuer),
            found: Some(issuer.to_owned()),
            expected: Some(right.clone()),
            message: format!("the FIC's issuer '{issuer}' {why}"),
            fix: format!("use exactly {right}"),
        });
    }
    if let Some(presented) = &error.presented_issuer
        && *presented != right
    {
        out.add(
            Cause::IssuerMismatch,
            format!("the presented issuer is '{presented}'"),
            format!("the FIC's issuer must be exactly '{presented}'"),
        );
    }
    if out.0.is_empty() {
        out.add(
            Cause::IssuerMismatch,
            "the FIC's issuer does not match the presented issuer".into(),
            format!("use exactly {right}"),
        );
    }
}
