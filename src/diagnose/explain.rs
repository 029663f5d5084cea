//! The diagnosis itself: an Entra error and the inputs, explained by every rule of the module (the subject
//! compared segment by segment, the issuer and audience, propagation, the path after the token).

use super::finding::Findings;
use super::path;
use super::{
    Cause, ConfiguredFic, DiagnoseError, Diagnosis, DiagnosisInputs, EntraError, EntraErrorKind, FIC_PROPAGATION,
    Finding, Segment, analyze, parse_error,
};
use crate::cert::Certificate;
use crate::cloud::{Cloud, CloudProfile};
use crate::environment::EnvironmentId;
use crate::subject::{CertificateBinding, LegacyV0, SubjectIdentifier, SubjectSegments, explain_subject};

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
            let cn = |n: &str| crate::cert::v1_simple_name(n).unwrap_or_default();
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
