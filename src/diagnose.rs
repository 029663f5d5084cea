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

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cert::{Certificate, CertificateHash};
use crate::cloud::{Cloud, CloudProfile};
use crate::environment::EnvironmentId;
use crate::guid::{AppSegmentOwner, POWER_PLATFORM_MI_APP_SEGMENT, encode_guid, encode_guid_big_endian};
use crate::subject::{
    CertificateBinding, LegacyV0, SubjectFormatVersion, SubjectIdentifier, SubjectParts, explain_subject,
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
    /// The text holds no `AADSTS` code.
    #[error("no AADSTS error code in the text; paste the whole error message, or the JSON error body")]
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
    /// The SHA-256 of the PFX file, when the user has one (to recognise a hash of the PFX instead of the certificate).
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
}

/// A cause of a failed token request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cause {
    /// The tenant GUID was encoded in big-endian byte order.
    TenantBigEndian,
    /// The certificate hash is in upper case.
    HashUppercase,
    /// The hash is of the PFX file, not of the certificate.
    HashOfPfx,
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
    /// A FIC differs from the presented subject in upper/lower case only.
    SubjectCase,
    /// A different certificate, environment or tenant than the one the platform presented.
    DifferentValue,
    /// A deprecated version 0 FIC.
    LegacyV0,
    /// Nothing known explains the error.
    Unknown,
}

impl Cause {
    /// The stable identifier scripts match on, e.g. `tenant_big_endian`.
    pub fn id(self) -> &'static str {
        match self {
            Cause::TenantBigEndian => "tenant_big_endian",
            Cause::HashUppercase => "hash_uppercase",
            Cause::HashOfPfx => "hash_of_pfx",
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
            Cause::Unknown => "unknown",
        }
    }
}

/// One cause found, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The cause.
    pub cause: Cause,
    /// What is wrong, in the user's terms.
    pub message: String,
    /// What to do.
    pub fix: String,
}

/// The findings for one error, most likely cause first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// The error.
    pub error: EntraError,
    /// What was found; never empty (an unexplained error gives one `unknown` finding).
    pub findings: Vec<Finding>,
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
            writeln!(f, "\n{}. [{}] {}", i + 1, finding.cause.id(), finding.message)?;
            write!(f, "   fix: {}", finding.fix)?;
        }
        Ok(())
    }
}

struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, cause: Cause, message: String, fix: String) {
        if !self.0.iter().any(|f| f.cause == cause && f.message == message) {
            self.0.push(Finding { cause, message, fix });
        }
    }
}

fn b64_hash(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(s.as_bytes()))
}

/// The ways people write a distinguished name other than .NET's: RFC 4514 (most specific first, `,` without a
/// space, `ST` for the state), .NET's order reversed, OpenSSL's one-line `/C=../O=../CN=..`, and OpenSSL's
/// `-nameopt` default `C = US, O = ..`.
fn non_dotnet_dn_forms(dotnet: &str) -> Vec<(String, &'static str)> {
    let parts: Vec<&str> = dotnet.split(", ").collect();
    let rfc: Vec<String> = parts.iter().map(|p| p.replacen("S=", "ST=", usize::from(p.starts_with("S=")))).collect();
    let mut forward = parts.clone();
    forward.reverse();
    vec![
        (rfc.join(","), "RFC 4514 (`openssl x509 -nameopt RFC2253`, Python, Go, Java)"),
        (parts.join(","), "commas without spaces"),
        (forward.join(", "), "forward order (least specific first)"),
        (
            format!("/{}", forward.iter().map(|p| p.replacen("S=", "ST=", 1)).collect::<Vec<_>>().join("/")),
            "OpenSSL's one-line /C=../CN=.. form",
        ),
        (
            forward.iter().map(|p| p.replacen('=', " = ", 1)).collect::<Vec<_>>().join(", "),
            "OpenSSL's default `C = US, O = ..` form",
        ),
    ]
}

fn render(parts: &SubjectParts, tenant_segment: &str, app_segment: &str, env: &str, binding: &str) -> Option<String> {
    Some(format!("{}/t/{tenant_segment}/a/{app_segment}/n/plugin/e/{env}/{binding}", parts.prefix.as_deref()?))
}

/// Explains an error: recomputes the known wrong values and compares them with the presented subject, the
/// configured FICs and the inputs. Most likely cause first.
pub fn explain(error: &EntraError, inputs: &DiagnosisInputs) -> Diagnosis {
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
        let p = &parts.parts;
        for configured in &inputs.configured {
            compare(&mut out, expected, p, configured, inputs, &cloud);
        }
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
                    Cause::DifferentValue,
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
            let cloud_of = Cloud::from_audience(&presented);
            out.add(
                Cause::WrongCloud,
                format!(
                    "the FIC's audience{} does not match the presented audience '{presented}'{}",
                    if configured.is_empty() { String::new() } else { format!(" ('{}')", configured.join("', '")) },
                    cloud_of.map(|c| format!(" ({c} cloud)")).unwrap_or_default()
                ),
                format!("set the FIC's audience to exactly '{presented}' (case-sensitive)"),
            );
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
                && inputs.configured.iter().any(|c| c.subject == *expected)
            {
                out.add(
                    Cause::PropagationDelay,
                    "a FIC with exactly the presented subject exists".into(),
                    if inputs.recently_created {
                        "it was just created: wait a few minutes and try again".into()
                    } else {
                        "check its issuer and audience too; if it was created in the last minutes, wait and try again"
                            .into()
                    },
                );
            }
        }
        _ => {}
    }
    if error.kind == Some(EntraErrorKind::NoMatch) && out.0.is_empty() {
        out.add(
            Cause::PropagationDelay,
            "no FIC matched; Entra reports this while a new FIC is still propagating".into(),
            "if the FIC was created in the last few minutes, wait and try again; otherwise compare it with the presented values".into(),
        );
    }
    // A FIC that merely names another environment or certificate is usually another environment's own FIC:
    // only worth reporting when nothing more specific explains the error.
    if out.0.iter().any(|f| f.cause != Cause::DifferentValue) {
        out.0.retain(|f| f.cause != Cause::DifferentValue);
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
    Diagnosis { error: error.clone(), findings: out.0 }
}

/// Compares one configured FIC with the expected subject and names the known mistakes that produce it.
fn compare(
    out: &mut Findings,
    expected: &str,
    p: &SubjectParts,
    configured: &ConfiguredFic,
    inputs: &DiagnosisInputs,
    cloud: &CloudProfile,
) {
    let c = configured.subject.trim();
    if c == expected {
        return;
    }
    if LegacyV0::parse_subject(c).is_some() {
        out.add(
            Cause::LegacyV0,
            format!("the FIC '{c}' is a deprecated version 0 subject"),
            format!("replace it with the current subject {expected}"),
        );
        return;
    }
    let (Some(tenant), Some(env), Some(binding)) = (p.tenant_id, p.environment_segment.as_deref(), &p.binding) else {
        return;
    };
    let t = encode_guid(tenant);
    // The presented subject's own /a/ (the production app's for every customer).
    let app = p.app_segment.as_deref().unwrap_or(POWER_PLATFORM_MI_APP_SEGMENT);
    let b = binding.to_string();
    let variant = |tenant: &str, app: &str, env: &str, binding: &str| render(p, tenant, app, env, binding);
    let mut matched = false;
    let mut check = |out: &mut Findings, candidate: Option<String>, cause: Cause, message: String, fix: String| {
        if candidate.as_deref() == Some(c) {
            out.add(cause, message, fix);
            matched = true;
        }
    };
    check(
        out,
        variant(&encode_guid_big_endian(tenant), app, env, &b),
        Cause::TenantBigEndian,
        format!("the FIC encodes the tenant {tenant} in big-endian byte order ({})", encode_guid_big_endian(tenant)),
        format!("use /t/{t}: .NET's Guid.ToByteArray() order, Base64URL (`dataverse-mi encode-guid {tenant}`)"),
    );
    if let CertificateBinding::SelfSigned { sha256 } = binding {
        let hex = sha256.to_string();
        check(
            out,
            variant(&t, app, env, &format!("h/{}", hex.to_uppercase())),
            Cause::HashUppercase,
            "the FIC's certificate hash is in upper case; matching is case-sensitive".into(),
            format!("use the lowercase hash: /h/{hex}"),
        );
        if let Some(pfx) = inputs.pfx_sha256 {
            for h in [pfx.to_string(), pfx.to_string().to_uppercase()] {
                check(
                    out,
                    variant(&t, app, env, &format!("h/{h}")),
                    Cause::HashOfPfx,
                    "the FIC's hash is the SHA-256 of the .pfx file, not of the certificate".into(),
                    format!(
                        "hash the certificate's DER bytes (`dataverse-mi cert FILE.pfx --password-env VAR`): /h/{hex}"
                    ),
                );
            }
        }
    }
    if let Some(app_id) = inputs.application_id {
        check(
            out,
            variant(&t, &encode_guid(app_id), env, &b),
            Cause::UserAppIdInAppSegment,
            format!("the FIC has your own app id {app_id} in the /a/ segment"),
            format!(
                "the /a/ segment is always {POWER_PLATFORM_MI_APP_SEGMENT} (the Power Platform app), whatever your app is"
            ),
        );
    }
    if let Some(org) = inputs.organization_id {
        check(
            out,
            variant(&t, app, &org.hyphenated().to_string(), &b),
            Cause::OrganizationIdAsEnvironment,
            format!("the FIC has the organization id {org} where the environment id belongs"),
            format!("use the environment id: /e/{env}"),
        );
    }
    if let Some(cert) = &inputs.certificate {
        let other_version = match binding.version() {
            Some(SubjectFormatVersion::V2) => {
                CertificateBinding::from_names(cert.issuer(), cert.subject(), SubjectFormatVersion::V1).ok()
            }
            Some(SubjectFormatVersion::V1) => {
                CertificateBinding::from_names(cert.issuer(), cert.subject(), SubjectFormatVersion::V2).ok()
            }
            _ => None,
        };
        if let Some(other) = other_version {
            let v = other.version().map(|v| v.to_string()).unwrap_or_default();
            check(
                out,
                variant(&t, app, env, &other.to_string()),
                Cause::VersionMismatch,
                format!(
                    "the FIC has the version {v} subject, but the platform presents the other version (the row's `version`)"
                ),
                format!("configure {expected}, or set the row's `version` to {v}"),
            );
        }
        if let CertificateBinding::TrustedV2 { issuer_hash, subject_hash } = binding {
            for (which, dotnet, hash) in
                [("issuer", cert.issuer(), issuer_hash), ("subject", cert.subject(), subject_hash)]
            {
                for (form, label) in non_dotnet_dn_forms(dotnet) {
                    let wrong = b64_hash(&form);
                    let candidate = if which == "issuer" {
                        format!("i/{wrong}/s/{subject_hash}")
                    } else {
                        format!("i/{issuer_hash}/s/{wrong}")
                    };
                    check(
                        out,
                        variant(&t, app, env, &candidate),
                        Cause::DnNotDotnetFormat,
                        format!("the FIC hashes the certificate's {which} name written as '{form}' ({label})"),
                        format!("hash the name exactly as .NET prints it: '{dotnet}' (/{}/{hash})", &which[..1]),
                    );
                }
            }
        }
    }
    for other in Cloud::ALL {
        if Some(other) != p.cloud {
            let swapped = format!(
                "{}{}",
                other.subject_prefix(),
                expected.strip_prefix(p.prefix.as_deref().unwrap_or("")).unwrap_or("")
            );
            check(
                out,
                Some(swapped),
                Cause::WrongCloud,
                format!(
                    "the FIC's subject prefix is {} ({other} cloud), the platform's is {}",
                    other.subject_prefix(),
                    p.prefix.as_deref().unwrap_or("-")
                ),
                format!(
                    "use the prefix {} (`--cloud {}`)",
                    p.prefix.as_deref().unwrap_or("-"),
                    p.cloud.map(|c| c.name()).unwrap_or("public")
                ),
            );
        }
    }
    if let Some(aud) = &configured.audience
        && *aud != cloud.audience
    {
        out.add(
            Cause::WrongCloud,
            format!("the FIC's audience '{aud}' is not '{}'", cloud.audience),
            format!("set the audience to exactly '{}'", cloud.audience),
        );
        matched = true;
    }
    // Another cluster's app in /a/ (Microsoft's scripts carry PreProd and Test values): said as such, never as
    // "your own app id".
    if let Some(theirs) = explain_subject(c).parts.app_segment.filter(|a| a != app)
        && let owner @ (AppSegmentOwner::MicrosoftPreProduction | AppSegmentOwner::MicrosoftTest) =
            AppSegmentOwner::of(&theirs)
    {
        out.add(
            Cause::AppSegmentNotPlatform,
            format!("the FIC's /a/ segment {theirs} is {}, not the one your environment presents", owner.describe()),
            format!("use /a/{app}, the Power Platform Managed Identity app of the customer clusters"),
        );
        matched = true;
    }
    if !matched && c.eq_ignore_ascii_case(expected) {
        let hash_case = matches!(binding, CertificateBinding::SelfSigned { .. })
            && c.rsplit_once("/h/").map(|(_, h)| h) != expected.rsplit_once("/h/").map(|(_, h)| h);
        out.add(
            if hash_case { Cause::HashUppercase } else { Cause::SubjectCase },
            "the FIC's subject differs from the presented one only in upper/lower case".into(),
            format!("matching is case-sensitive: use exactly {expected}"),
        );
        matched = true;
    }
    if !matched {
        let theirs = explain_subject(c);
        let segments = [
            ("tenant", theirs.parts.tenant_segment.as_deref(), p.tenant_segment.as_deref()),
            ("environment", theirs.parts.environment_segment.as_deref(), p.environment_segment.as_deref()),
        ];
        let mut differing: Vec<String> = segments
            .iter()
            .filter(|(_, a, b)| a.is_some() && a != b)
            .map(|(name, a, b)| format!("{name} {} instead of {}", a.unwrap_or("-"), b.unwrap_or("-")))
            .collect();
        if theirs.parts.binding.as_ref() != Some(binding) {
            differing.push("another certificate".into());
        }
        if !differing.is_empty() && !theirs.problems.iter().any(|p| p.id() == "not_a_subject") {
            out.add(
                Cause::DifferentValue,
                format!("the FIC '{c}' names {}", differing.join(", ")),
                format!("the subject must be exactly {expected}"),
            );
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
        } else if issuer.trim_end_matches('/') == right.trim_end_matches("/v2.0") {
            "has no /v2.0".to_owned()
        } else if issuer.contains("sts.windows.net") {
            "is the v1 form https://sts.windows.net/{tenant}/".to_owned()
        } else if !issuer.contains(&tenant.to_string()) {
            "names another tenant".to_owned()
        } else {
            "differs".to_owned()
        };
        out.add(Cause::IssuerMismatch, format!("the FIC's issuer '{issuer}' {why}"), format!("use exactly {right}"));
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
