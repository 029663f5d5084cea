//! Reading any subject text: its parts, every problem with each (errors and suspicions), and the corrected
//! subject where the mistake is known.

use std::fmt;

use serde::{Serialize, Serializer};
use uuid::Uuid;

use super::identifier::app_segment;
use super::v1::v1_whole_name_cn;
use super::{CertificateBinding, LegacyV0, Severity, SubjectIdentifier, SubjectProblem};
use crate::cert::NameHash;
use crate::cloud::Cloud;
use crate::environment::EnvironmentId;
use crate::guid::{
    AppSegmentOwner, POWER_PLATFORM_MI_APP_ID, decode_guid, decode_guid_big_endian, encode_guid, parse_guid,
};

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
