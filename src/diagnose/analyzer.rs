//! The segment analyzer: a configured subject against the one that counts (the subject the platform presents,
//! or the one computed from what the user knows), segment by segment. Each differing segment is explained on its
//! own, so several mistakes in one FIC are all named; a segment is explained from the two values themselves
//! where possible, and the user's other inputs (their app id, the organization id, the certificate, its file,
//! its chain) only make the explanation more specific.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use uuid::Uuid;

use super::{Cause, DiagnosisInputs, Finding};
use crate::cert::{Certificate, CertificateHash, NameHash};
use crate::cloud::Cloud;
use crate::environment::EnvironmentId;
use crate::guid::{
    AppSegmentOwner, POWER_PLATFORM_MI_APP_ID, decode_guid, decode_guid_big_endian, encode_guid_big_endian, parse_guid,
};
use crate::subject::{CertificateBinding, Segment, Severity, SubjectSegments, explain_subject, read_binding};

/// Every finding for one configured subject against `expected`, in segment order; empty when they are equal.
///
/// ```
/// use dataverse_mi::diagnose::{DiagnosisInputs, analyze};
/// use dataverse_mi::subject::Segment;
///
/// let expected = "/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/7efcc31a-c410-e20e-9b3c-3ea55e7f9c56/h/a9f605f46541a0aa9a71a0be9c69960abc6cfa3ff1cffaa02321581ff218ac91";
/// // Two mistakes at once: the tenant encoded big-endian and the hash in upper case.
/// let configured = "/eid1/c/pub/t/cvmIv4bxQa-Rqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/7efcc31a-c410-e20e-9b3c-3ea55e7f9c56/h/A9F605F46541A0AA9A71A0BE9C69960ABC6CFA3FF1CFFAA02321581FF218AC91";
/// let findings = analyze(expected, configured, &DiagnosisInputs::default());
/// let found: Vec<_> = findings.iter().map(|f| (f.segment, f.cause.id())).collect();
/// assert_eq!(found, [(Some(Segment::Tenant), "tenant_big_endian"), (Some(Segment::Binding), "hash_uppercase")]);
/// assert!(analyze(expected, expected, &DiagnosisInputs::default()).is_empty());
/// ```
pub fn analyze(expected: &str, configured: &str, inputs: &DiagnosisInputs) -> Vec<Finding> {
    let mut out = compare(expected, configured, inputs);
    // A subject that differs in letter case only: Entra matches case-sensitively (AADSTS7002138). The segments say
    // where; a difference no segment rule names is named for what it is rather than as another value.
    if configured.trim() != expected && configured.trim().to_lowercase() == expected.to_lowercase() {
        let case_rule = |c: Cause| {
            matches!(c, Cause::HashUppercase | Cause::TenantCase | Cause::EnvironmentNotCanonical | Cause::SubjectCase)
        };
        for f in out.iter_mut().filter(|f| !case_rule(f.cause) && f.cause != Cause::SurroundingWhitespace) {
            f.cause = Cause::SubjectCase;
            f.message = format!(
                "the FIC's {} differs from the presented one in upper/lower case only; Entra matches subjects case-sensitively (AADSTS7002138)",
                f.segment.map(|s| format!("{s} segment")).unwrap_or_else(|| "subject".into())
            );
        }
        if !out.iter().any(|f| case_rule(f.cause)) {
            out.push(Finding {
                cause: Cause::SubjectCase,
                segment: None,
                found: Some(configured.to_owned()),
                expected: Some(expected.to_owned()),
                message: "the FIC's subject differs from the presented one in upper/lower case only; Entra matches subjects case-sensitively (AADSTS7002138)".into(),
                fix: format!("set the FIC's subject to exactly {expected}"),
            });
        }
    }
    // Whatever `explain-subject` finds wrong in the configured subject on its own is named here too, unless the
    // comparison already named that segment (more precisely): the two never disagree about a subject.
    for problem in explain_subject(configured).problems.into_iter().filter(|p| p.severity() == Severity::Error) {
        let segment = problem.segment();
        let named = out.iter().any(|f| f.cause == problem.cause() || (segment.is_some() && f.segment == segment));
        if !named {
            out.push(Finding {
                cause: problem.cause(),
                segment,
                found: Some(configured.to_owned()),
                expected: Some(expected.to_owned()),
                message: format!("the FIC's subject: {problem}"),
                fix: format!("use {expected}"),
            });
        }
    }
    out
}

fn compare(expected: &str, configured: &str, inputs: &DiagnosisInputs) -> Vec<Finding> {
    let (e, c) = (SubjectSegments::split(expected), SubjectSegments::split(configured));
    let mut out = intrinsic(configured);
    if c.tenant.is_none() && c.app.is_none() && c.environment.is_none() {
        out.push(Finding {
            cause: Cause::NotASubject,
            segment: None,
            found: Some(configured.to_owned()),
            expected: Some(expected.to_owned()),
            message: format!("the FIC's subject '{}' is not a subject identifier of the form /eid1/c/{{cloud}}/t/../a/../n/plugin/e/../..", crate::guid::clip(configured)),
            fix: format!("use {expected}"),
        });
        return out;
    }
    if e.prefix != c.prefix {
        out.push(prefix(&e.prefix, &c.prefix));
    }
    for (segment, explain) in [
        (Segment::Tenant, tenant as fn(&str, &str, &DiagnosisInputs) -> Finding),
        (Segment::App, app),
        (Segment::Component, component),
        (Segment::Environment, environment),
    ] {
        match (e.get(segment), c.get(segment)) {
            (Some(want), Some(got)) if want != got => out.push(explain(want, got, inputs)),
            (Some(want), None) => out.push(missing(segment, want)),
            _ => {}
        }
    }
    match (e.binding.as_deref(), c.binding.as_deref()) {
        (Some(want), Some(got)) if want != got => out.extend(binding(want, got, inputs)),
        (Some(want), None) => out.push(missing(Segment::Binding, want)),
        _ => {}
    }
    out
}

fn finding(segment: Segment, cause: Cause, found: &str, expected: &str, message: String, fix: String) -> Finding {
    Finding {
        cause,
        segment: Some(segment),
        found: Some(found.to_owned()),
        expected: Some(expected.to_owned()),
        message,
        fix,
    }
}

fn missing(segment: Segment, want: &str) -> Finding {
    Finding {
        cause: Cause::MissingSegment,
        segment: Some(segment),
        found: None,
        expected: Some(want.to_owned()),
        message: format!("the FIC's subject has no {segment} segment where the platform's has '{want}'"),
        fix: format!("put the {segment} segment '{want}' in its place"),
    }
}

fn prefix(want: &str, got: &str) -> Finding {
    let other_cloud = got.strip_prefix("/eid1/c/").and_then(Cloud::from_subject_code);
    let (cause, why) = match other_cloud {
        Some(cloud) => (Cause::WrongCloud, format!("is the {cloud} cloud's")),
        None if !got.starts_with("/eid1/") && got.ends_with(want.trim_start_matches("/eid1")) => {
            (Cause::PrefixMismatch, "lacks /eid1".to_owned())
        }
        None => (Cause::PrefixMismatch, "is not a cloud's prefix (a typo?)".to_owned()),
    };
    let want_cloud =
        want.strip_prefix("/eid1/c/").and_then(Cloud::from_subject_code).map(|c| c.name()).unwrap_or("public");
    finding(
        Segment::Prefix,
        cause,
        got,
        want,
        format!("the FIC's subject prefix '{got}' {why}; the platform presents '{want}'"),
        format!("use the prefix {want} (`--cloud {want_cloud}`)"),
    )
}

fn percent_decoded(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

fn tenant(want: &str, got: &str, inputs: &DiagnosisInputs) -> Finding {
    let tenant = decode_guid(want).ok();
    let fix = |t: Option<Uuid>| match t {
        Some(t) => format!(
            "use /t/{want}: the tenant {t} in .NET's Guid.ToByteArray() order, Base64URL without padding (`dataverse-mi encode-guid {t}`)"
        ),
        None => format!("use /t/{want}"),
    };
    let (cause, message) = if tenant.is_some() && decode_guid_big_endian(got).ok() == tenant {
        (Cause::TenantBigEndian, format!("the FIC encodes the tenant in big-endian (RFC 4122) byte order: '{got}'"))
    } else if got.eq_ignore_ascii_case(want) {
        (
            Cause::TenantCase,
            format!("the FIC's tenant segment '{got}' differs in upper/lower case; Base64URL is case-sensitive"),
        )
    } else if let Ok(text) = parse_guid(&percent_decoded(got)) {
        if Some(text) == tenant {
            (
                Cause::TenantNotEncoded,
                format!("the FIC writes the tenant as text ('{got}') instead of encoding its bytes"),
            )
        } else {
            (Cause::TenantMismatch, format!("the FIC names another tenant, {text}, written as text"))
        }
    } else if tenant.is_some_and(|t| {
        [STANDARD.encode(t.to_bytes_le()), STANDARD_NO_PAD.encode(t.to_bytes_le())].contains(&got.to_owned())
    }) {
        (
            Cause::TenantNotEncoded,
            format!(
                "the FIC encodes the tenant in standard Base64 ('{got}'); the platform writes Base64URL without padding"
            ),
        )
    } else if let Ok(other) = decode_guid(got) {
        let mine = inputs.tenant_id.filter(|t| *t == other).map(|_| " (the tenant id you gave)").unwrap_or_default();
        (
            Cause::TenantMismatch,
            format!(
                "the FIC names another tenant, {other}{mine}; the platform presents {}",
                tenant.map(|t| t.to_string()).unwrap_or_else(|| want.to_owned())
            ),
        )
    } else {
        (Cause::TenantNotEncoded, format!("the FIC's tenant segment '{got}' is not an encoded GUID"))
    };
    finding(Segment::Tenant, cause, got, want, message, fix(tenant))
}

fn app(want: &str, got: &str, inputs: &DiagnosisInputs) -> Finding {
    let decoded = decode_guid(got).ok().or_else(|| parse_guid(got).ok());
    let as_big_endian = decode_guid_big_endian(got).ok();
    let mut fix = format!("use /a/{want}: the Power Platform Managed Identity app, whatever your own app is");
    let user_app = inputs.application_id.filter(|a| decoded == Some(*a) || as_big_endian == Some(*a));
    if user_app.is_none() && AppSegmentOwner::of(got) != AppSegmentOwner::Other {
        fix = format!("use /a/{want}, the Power Platform Managed Identity app of the customer clusters");
    }
    let (cause, message) = if let Some(a) = user_app {
        (Cause::UserAppIdInAppSegment, format!("the FIC has your own app id {a} in the /a/ segment"))
    } else {
        match AppSegmentOwner::of(got) {
            owner @ (AppSegmentOwner::MicrosoftPreProduction | AppSegmentOwner::MicrosoftTest) => (
                Cause::AppSegmentNotPlatform,
                format!(
                    "the FIC's /a/ segment '{got}' is {} (from Microsoft's own scripts), not the one your environment presents",
                    owner.describe()
                ),
            ),
            _ if got == encode_guid_big_endian(POWER_PLATFORM_MI_APP_ID) => (
                Cause::AppSegmentNotPlatform,
                "the FIC's /a/ segment is the Power Platform app id encoded in big-endian byte order".to_owned(),
            ),
            _ if decoded == Some(POWER_PLATFORM_MI_APP_ID) => (
                Cause::AppSegmentNotPlatform,
                format!("the FIC writes the Power Platform app id as text ('{got}') instead of encoding it"),
            ),
            _ => match decoded {
                Some(id) => (
                    Cause::AppSegmentNotPlatform,
                    format!(
                        "the FIC's /a/ segment is the app id {id}, not the platform's: most likely your own app's client id (give --app-id to confirm)"
                    ),
                ),
                None => {
                    (Cause::AppSegmentNotPlatform, format!("the FIC's /a/ segment '{got}' is not the platform's app"))
                }
            },
        }
    };
    finding(Segment::App, cause, got, want, message, fix)
}

fn component(want: &str, got: &str, _: &DiagnosisInputs) -> Finding {
    finding(
        Segment::Component,
        Cause::ComponentMismatch,
        got,
        want,
        format!("the FIC's component segment is '/n/{got}'; plug-ins present /n/{want}"),
        format!("use /n/{want}"),
    )
}

fn environment(want: &str, got: &str, inputs: &DiagnosisInputs) -> Finding {
    let wanted = want.parse::<EnvironmentId>().ok();
    let given = got.parse::<EnvironmentId>().ok();
    let fix = format!("use /e/{want}: the environment id as RetrieveCurrentOrganization's EnvironmentId gives it");
    // The Default environment written the other way round: `Default-{tenant}` against the bare tenant GUID (what
    // the platform writes in `/e/` for it is not documented), or as its API host writes it.
    let default_other_way = match (wanted, given) {
        (Some(EnvironmentId::Default { tenant }), _) => {
            given == Some(EnvironmentId::Guid(tenant))
                || got.eq_ignore_ascii_case(&format!("default{}", tenant.simple()))
        }
        (Some(EnvironmentId::Guid(guid)), Some(EnvironmentId::Default { tenant })) => guid == tenant,
        _ => false,
    };
    let (cause, message) = if inputs.organization_id.is_some()
        && given == inputs.organization_id.map(EnvironmentId::Guid)
    {
        (
            Cause::OrganizationIdAsEnvironment,
            format!("the FIC has the organization id {got} where the environment id belongs"),
        )
    } else if given.is_some() && given == wanted {
        (
            Cause::EnvironmentNotCanonical,
            format!(
                "the FIC writes the environment id as '{got}'; the platform writes it lowercase, hyphenated, without braces: '{want}' (matching is case-sensitive)"
            ),
        )
    } else if default_other_way {
        (
            Cause::EnvironmentNotCanonical,
            format!("the FIC writes the Default environment as '{got}'; the platform presents '{want}'"),
        )
    } else if let Some(other) = given {
        let yours = if inputs.environment_id == Some(other) { " (the environment id you gave)" } else { "" };
        (
            Cause::EnvironmentMismatch,
            format!("the FIC names another environment, {other}{yours}; the plug-in runs in {want}"),
        )
    } else {
        (Cause::EnvironmentMismatch, format!("the FIC's environment segment '{got}' is not an environment id"))
    };
    finding(Segment::Environment, cause, got, want, message, fix)
}

/// The certificate part: the form (`h/` against `i/../s/..`), the version, then the hash, or each name on its
/// own.
fn binding(want: &str, got: &str, inputs: &DiagnosisInputs) -> Vec<Finding> {
    let expected = read_binding(want, &mut Vec::new());
    let configured_hashed =
        got.strip_prefix("i/").and_then(|n| n.split_once("/s/")).is_some_and(|(i, s)| i.len() == 43 && s.len() == 43);
    let one = |cause, message: String, fix: String| vec![finding(Segment::Binding, cause, got, want, message, fix)];
    match expected {
        Some(CertificateBinding::SelfSigned { sha256 }) => match got.strip_prefix("h/") {
            Some(hash) => hash_findings(&sha256, hash, inputs)
                .into_iter()
                .map(|(cause, message, fix)| finding(Segment::Binding, cause, got, want, message, fix))
                .collect(),
            None => one(
                Cause::BindingKindMismatch,
                "the FIC has the CA-issued form /i/{issuer}/s/{subject}, but the certificate is self-signed: the platform presents /h/{sha256}".into(),
                format!("use {want}"),
            ),
        },
        Some(CertificateBinding::TrustedV2 { issuer_hash, subject_hash }) => {
            if got.starts_with("h/") {
                return one(
                    Cause::BindingKindMismatch,
                    "the FIC has the self-signed form /h/{sha256}, but the certificate is CA-issued: the platform presents /i/{issuer hash}/s/{subject hash}".into(),
                    format!("use {want}"),
                );
            }
            let Some((i, s)) = got.strip_prefix("i/").and_then(|n| n.split_once("/s/")) else {
                return one(Cause::BindingMalformed, format!("the FIC's certificate part '{got}' is neither h/.. nor i/../s/.."), format!("use {want}"));
            };
            if !(configured_hashed || looks_like_hash(i) || looks_like_hash(s)) {
                return one(
                    Cause::VersionMismatch,
                    "the FIC has the version 1 form (the names themselves); the platform presents version 2 (their hashes), as the row's `version` says".into(),
                    format!("configure {want}, or set the row's `version` to 1"),
                );
            }
            let cert = inputs.certificate.as_ref();
            let mut out = Vec::new();
            for (which, found, hash, name) in [
                ("issuer", i, issuer_hash, cert.and_then(|c| c.issuer().ok())),
                ("subject", s, subject_hash, cert.and_then(|c| c.subject().ok())),
            ] {
                if found != hash.to_string() {
                    let (cause, message) = name_hash_finding(which, found, &hash, name, inputs);
                    let expected = hash.to_string();
                    out.push(finding(Segment::Binding, cause, found, &expected, message, format!("use /{}/{hash}: Base64URL(SHA-256(the {which} name exactly as .NET prints it))", &which[..1])));
                }
            }
            out
        }
        Some(CertificateBinding::TrustedV1 { issuer, subject }) => {
            if got.starts_with("h/") {
                return one(
                    Cause::BindingKindMismatch,
                    "the FIC has the self-signed form /h/{sha256}, but the certificate is CA-issued: the platform presents /i/{issuer}/s/{subject}".into(),
                    format!("use {want}"),
                );
            }
            if configured_hashed {
                return one(
                    Cause::VersionMismatch,
                    "the FIC has the version 2 form (name hashes); the platform presents version 1 (the names themselves), as the row's `version` says".into(),
                    format!("configure {want}, or set the row's `version` to 2 (recommended)"),
                );
            }
            let Some((i, s)) = got.strip_prefix("i/").and_then(|n| n.split_once("/s/")) else {
                return one(Cause::BindingMalformed, format!("the FIC's certificate part '{got}' is neither h/.. nor i/../s/.."), format!("use {want}"));
            };
            let mut out = Vec::new();
            for (which, found, name) in [("issuer", i, issuer.as_str()), ("subject", s, subject.as_str())] {
                if found == name {
                    continue;
                }
                let whole_of_expected = crate::subject::v1_whole_name_cn(found).is_some_and(|cn| cn == name);
                let expected_is_whole = crate::subject::v1_whole_name_cn(name).is_some_and(|cn| cn == found);
                let (cause, message, fix) = if whole_of_expected {
                    (
                        Cause::V1WholeName,
                        format!("version 1: the FIC has the whole {which} name '{found}' where the platform writes its CN alone, '{name}' (as Microsoft's migration scripts write it, and earlier versions of dataverse-mi)"),
                        format!("use the {which}'s CN value alone: '{name}'"),
                    )
                } else if expected_is_whole {
                    (
                        Cause::V1WholeName,
                        format!("version 1: the platform presents the whole {which} name '{name}' where the FIC has its CN alone, '{found}'"),
                        format!("use the {which} name as the platform presents it: '{name}'"),
                    )
                } else if found.eq_ignore_ascii_case(name) {
                    (
                        Cause::SubjectCase,
                        format!("version 1: the FIC's {which} CN '{found}' differs from '{name}' in upper/lower case only; matching is case-sensitive"),
                        format!("use exactly '{name}'"),
                    )
                } else {
                    (
                        Cause::DifferentValue,
                        format!("the FIC names another {which}: '{found}'"),
                        format!("use the {which}'s CN value exactly as the platform writes it: '{name}'"),
                    )
                };
                out.push(finding(Segment::Binding, cause, found, name, message, fix));
            }
            out
        }
        None => one(Cause::DifferentValue, format!("the FIC's certificate part '{got}' differs"), format!("use {want}")),
    }
}

fn looks_like_hash(s: &str) -> bool {
    s.len() >= 40 && !s.contains('=') && !s.contains(' ') && !s.contains(',')
}

/// What a `/h/` value is, against the certificate's SHA-256: each mistake on its own (a hash can be in upper case
/// and of the wrong file at once).
fn hash_findings(sha256: &CertificateHash, got: &str, inputs: &DiagnosisInputs) -> Vec<(Cause, String, String)> {
    let hex = sha256.to_string();
    let fix =
        format!("use /h/{hex}: the SHA-256 of the certificate's DER bytes, lowercase hex (`dataverse-mi cert FILE`)");
    let is_hex = !got.is_empty() && got.bytes().all(|b| b.is_ascii_hexdigit());
    let lower = got.to_ascii_lowercase();
    let mut out = Vec::new();
    // Case matters only for a SHA-256 in hex (a thumbprint's case is beside the point: it is the wrong hash).
    if is_hex && lower.len() == 64 && lower != got {
        out.push((Cause::HashUppercase, "the FIC's certificate hash has upper-case letters; the platform presents it lowercase and matching is case-sensitive".to_owned(), fix.clone()));
    }
    if lower == hex {
        return out;
    }
    let digest = sha256.0;
    let encodings = [
        URL_SAFE_NO_PAD.encode(digest),
        STANDARD.encode(digest),
        STANDARD_NO_PAD.encode(digest),
        base64::engine::general_purpose::URL_SAFE.encode(digest),
    ];
    let of = |c: &Certificate| c.sha256().to_string();
    let chain_match = inputs.chain.iter().find(|c| of(c) == lower);
    if encodings.contains(&got.to_owned()) {
        out.push((
            Cause::HashNotHex,
            format!("the FIC writes the certificate's SHA-256 in Base64 ('{got}'); the platform writes lowercase hex"),
            fix,
        ));
    } else if is_hex && lower.len() == 40 {
        let whose = match &inputs.certificate {
            Some(c) if c.sha1_thumbprint().to_string().eq_ignore_ascii_case(got) => {
                "your certificate's SHA-1 thumbprint"
            }
            _ => "a SHA-1 thumbprint (40 hex digits)",
        };
        out.push((
            Cause::HashIsSha1Thumbprint,
            format!("the FIC's /h/ value is {whose}; the platform uses the SHA-256 of the certificate (64 hex digits)"),
            fix,
        ));
    } else if inputs.pfx_sha256.is_some_and(|h| h.to_string() == lower) {
        out.push((
            Cause::HashOfContainerFile,
            "the FIC's hash is the SHA-256 of the .pfx or .pem file, not of the certificate's DER bytes".to_owned(),
            fix,
        ));
    } else if let Some(other) = chain_match {
        out.push((
            Cause::HashOfOtherCertificate,
            format!(
                "the FIC's hash is of another certificate of the chain, '{}', not of the signing certificate",
                other.subject().unwrap_or("(a name that cannot be read)")
            ),
            fix,
        ));
    } else if is_hex && lower.len() == 64 {
        let yours = inputs.certificate.as_ref().is_some_and(|c| of(c) == lower);
        let message = if yours {
            "the FIC has your certificate's hash, but the platform presents another: the registered plug-in is signed with another certificate".to_owned()
        } else {
            "the FIC's hash is of another certificate".to_owned()
        };
        out.push((Cause::DifferentValue, message, fix));
    } else {
        out.push((Cause::HashNotHex, format!("the FIC's /h/ value '{got}' is not a SHA-256 in hex"), fix));
    }
    out
}

/// What a version 2 `/i/` or `/s/` value is, against the hash of the name as .NET prints it.
fn name_hash_finding(
    which: &str,
    got: &str,
    want: &NameHash,
    name: Option<&str>,
    inputs: &DiagnosisInputs,
) -> (Cause, String) {
    let digest = want.0;
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    if [STANDARD.encode(digest), STANDARD_NO_PAD.encode(digest)].contains(&got.to_owned())
        || got.eq_ignore_ascii_case(&hex)
    {
        return (
            Cause::NameHashEncoding,
            format!(
                "the FIC's {which} name hash is the right digest in the wrong encoding ('{got}'); the platform writes Base64URL without padding"
            ),
        );
    }
    if let Some(name) = name {
        for (form, label) in super::names::non_dotnet_dn_forms(name) {
            if NameHash::of_name(&form).to_string() == got {
                return (
                    Cause::DnNotDotnetFormat,
                    format!(
                        "the FIC's {which} name hash is of the name written the {label} way ('{form}'), not as .NET prints it ('{name}')"
                    ),
                );
            }
        }
    }
    let cert = inputs.certificate.as_ref();
    let swapped = match which {
        "issuer" => cert.and_then(|c| c.subject_hash().ok()),
        _ => cert.and_then(|c| c.issuer_hash().ok()),
    };
    if swapped.is_some_and(|h| h.to_string() == got) {
        return (
            Cause::NamesSwapped,
            format!("the FIC's {which} name hash is of the other name: issuer and subject are swapped"),
        );
    }
    if got.eq_ignore_ascii_case(&want.to_string()) {
        return (
            Cause::SubjectCase,
            format!("the FIC's {which} name hash differs in upper/lower case only; Base64URL is case-sensitive"),
        );
    }
    if inputs
        .chain
        .iter()
        .any(|c| [c.subject_hash(), c.issuer_hash()].iter().any(|h| h.as_ref().is_ok_and(|h| h.to_string() == got)))
    {
        return (
            Cause::HashOfOtherCertificate,
            format!("the FIC's {which} name hash is of a name of another certificate of the chain"),
        );
    }
    (Cause::DifferentValue, format!("the FIC's {which} name hash is of another name"))
}

/// The problems `explain_subject` finds in the configured subject outside every segment compared (white space
/// around it), so that `explain-subject` and `diagnose` never disagree about a subject.
pub(super) fn intrinsic(configured: &str) -> Vec<Finding> {
    explain_subject(configured)
        .problems
        .into_iter()
        .filter(|p| p.id() == "surrounding_whitespace")
        .map(|p| Finding {
            cause: Cause::SurroundingWhitespace,
            segment: None,
            found: Some(configured.to_owned()),
            expected: Some(configured.trim().to_owned()),
            message: format!("the FIC's subject: {p}"),
            fix: "remove the white space around the subject".into(),
        })
        .collect()
}
