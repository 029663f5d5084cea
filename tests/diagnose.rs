//! Diagnostics: Entra error texts parsed, and each known mistake found by recomputing it.

use dataverse_mi::cert::{Certificate, CertificateHash, NameHash};
use dataverse_mi::cloud::{Cloud, CloudProfile};
use dataverse_mi::diagnose::{
    Cause, ConfiguredFic, DiagnoseError, DiagnosisInputs, EntraErrorKind, explain, parse_error,
};
use dataverse_mi::guid::{encode_guid, encode_guid_big_endian};
use dataverse_mi::subject::{CertificateBinding, CertificateKind, SubjectFormatVersion, SubjectIdentifier};
use sha2::Digest as _;
use uuid::Uuid;

const TENANT: Uuid = Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47);
const ENV: Uuid = Uuid::from_u128(0x7efcc31a_c410_e20e_9b3c_3ea55e7f9c56);
const ORG: Uuid = Uuid::from_u128(0x0b1d2a3c_0000_0000_0000_000000000001);
const APP: Uuid = Uuid::from_u128(0x0b5a7d2c_6f4e_4d3a_9c1b_2a8e7f6d5c4b);

fn signed(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/signed/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn fixture(name: &str) -> Certificate {
    Certificate::from_file(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap().certificate
}

fn subject(cert: &Certificate, version: SubjectFormatVersion) -> String {
    let binding = CertificateBinding::for_certificate(cert, version, CertificateKind::Auto).unwrap();
    SubjectIdentifier::new(&Cloud::Public.into(), TENANT, ENV, binding).unwrap().to_string()
}

fn aadsts700213(presented: &str) -> String {
    format!(
        "A configuration issue is preventing authentication - check the error message from the server for details. \
         You can modify the configuration in the application registration portal. See https://aka.ms/msal-net-invalid-client for details.  \
         Original exception: AADSTS700213: No matching federated identity record found for presented assertion subject '{presented}'. \
         Check your federated identity credential Subject, Audience and Issuer against the presented assertion. \
         https://learn.microsoft.com/entra/workload-id/workload-identity-federation Trace ID: 0b1c2d3e-0000-4000-8000-000000000001 \
         Correlation ID: 5d6e7f80-0000-4000-8000-000000000002 Timestamp: 2026-11-22 10:00:00Z"
    )
}

fn causes(text: &str, inputs: &DiagnosisInputs) -> Vec<&'static str> {
    explain(&parse_error(text).unwrap(), inputs).findings.iter().map(|f| f.cause.id()).collect()
}

fn with(configured: &[&str]) -> DiagnosisInputs {
    DiagnosisInputs { configured: configured.iter().map(|s| ConfiguredFic::from(*s)).collect(), ..Default::default() }
}

#[test]
fn parses_the_whole_pasted_message() {
    let presented = subject(&fixture("ca.cer"), SubjectFormatVersion::V2);
    let e = parse_error(&aadsts700213(&presented)).unwrap();
    assert_eq!(e.code.as_deref(), Some("AADSTS700213"));
    assert_eq!(e.kind, Some(EntraErrorKind::NoMatchingSubject));
    assert_eq!(e.presented_subject.as_deref(), Some(presented.as_str()));
    assert_eq!(e.trace_id.as_deref(), Some("0b1c2d3e-0000-4000-8000-000000000001"));
    assert_eq!(e.correlation_id.as_deref(), Some("5d6e7f80-0000-4000-8000-000000000002"));
    assert_eq!(e.timestamp.as_deref(), Some("2026-11-22 10:00:00Z"));
    assert!(e.message.starts_with("AADSTS700213: No matching"), "{}", e.message);
}

#[test]
fn parses_json_bodies_and_descriptions() {
    let body = serde_json::json!({
        "error": "invalid_client",
        "error_description": "AADSTS700211: No matching federated identity record found for presented assertion issuer 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0'. Trace ID: abc",
        "error_codes": [700211],
        "timestamp": "2026-11-22 10:00:00Z",
        "trace_id": "11111111-0000-0000-0000-000000000000",
        "correlation_id": "22222222-0000-0000-0000-000000000000"
    });
    let e = parse_error(&format!("HTTP 400: {body}")).unwrap();
    assert_eq!(e.kind, Some(EntraErrorKind::IssuerMismatch));
    assert_eq!(
        e.presented_issuer.as_deref(),
        Some("https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0")
    );
    assert_eq!(e.trace_id.as_deref(), Some("11111111-0000-0000-0000-000000000000"));
    let aud = parse_error("AADSTS700212: No matching federated identity record found for presented assertion audience 'api://AzureADTokenExchange'.").unwrap();
    assert_eq!(aud.presented_audience.as_deref(), Some("api://AzureADTokenExchange"));
    let other = parse_error("AADSTS50011: The redirect URI does not match.").unwrap();
    assert_eq!((other.code.as_deref(), other.kind), (Some("AADSTS50011"), Some(EntraErrorKind::Other)));
    assert_eq!(parse_error("something went wrong"), Err(DiagnoseError::NoCode));
    assert_eq!(parse_error(""), Err(DiagnoseError::NoCode));
    for (code, kind) in [
        (7002138, EntraErrorKind::SubjectCaseMismatch),
        (70021, EntraErrorKind::NoMatch),
        (70025, EntraErrorKind::NoFederatedCredentials),
        (70050, EntraErrorKind::SubjectMalformed),
    ] {
        assert_eq!(parse_error(&format!("AADSTS{code}: x")).unwrap().kind, Some(kind));
    }
}

#[test]
fn tenant_big_endian() {
    let presented = subject(&fixture("ca.cer"), SubjectFormatVersion::V2);
    let configured = presented.replace(&encode_guid(TENANT), &encode_guid_big_endian(TENANT));
    assert_eq!(causes(&aadsts700213(&presented), &with(&[&configured])), ["tenant_big_endian"]);
}

#[test]
fn hash_uppercase_and_case_only_difference() {
    let presented = subject(&fixture("ca.cer"), SubjectFormatVersion::V2);
    let hash = fixture("ca.cer").sha256().to_string();
    let configured = presented.replace(&hash, &hash.to_uppercase());
    assert_eq!(causes(&aadsts700213(&presented), &with(&[&configured])), ["hash_uppercase"]);
    let text = format!(
        "AADSTS7002138: The subject of the presented assertion '{presented}' matches a record only when case is ignored."
    );
    assert_eq!(causes(&text, &with(&[&configured])), ["hash_uppercase"]);
}

#[test]
fn hash_of_the_pfx_file() {
    let leaf = Certificate::from_pkcs12(&signed("modern.pfx"), &dataverse_mi::secret::Secret::new("fixture"))
        .unwrap()
        .certificate;
    // The author certificate is CA-issued; only /h/ subjects carry a hash, so force that form.
    let binding =
        CertificateBinding::for_certificate(&leaf, SubjectFormatVersion::V2, CertificateKind::SelfSigned).unwrap();
    let presented_h = SubjectIdentifier::new(&Cloud::Public.into(), TENANT, ENV, binding).unwrap().to_string();
    let pfx_hash = CertificateHash(sha2::Sha256::digest(signed("modern.pfx")).into());
    let configured = presented_h.replace(&leaf.sha256().to_string(), &pfx_hash.to_string());
    let inputs = DiagnosisInputs { pfx_sha256: Some(pfx_hash), ..with(&[&configured]) };
    // The id was `hash_of_pfx`; it covers `.pem` files too now.
    assert_eq!(causes(&aadsts700213(&presented_h), &inputs), ["hash_of_container_file"]);
}

#[test]
fn organization_id_as_environment() {
    let presented = subject(&fixture("ca.cer"), SubjectFormatVersion::V2);
    let configured = presented.replace(&ENV.to_string(), &ORG.to_string());
    let inputs = DiagnosisInputs { organization_id: Some(ORG), ..with(&[&configured]) };
    assert_eq!(causes(&aadsts700213(&presented), &inputs), ["organization_id_as_environment"]);
    // And when the user gives the organization id as the environment.
    let given = DiagnosisInputs { organization_id: Some(ORG), environment_id: Some(ORG.into()), ..Default::default() };
    assert_eq!(causes(&aadsts700213(&presented), &given), ["organization_id_as_environment"]);
}

#[test]
fn user_app_id_in_the_app_segment() {
    let presented = subject(&fixture("ca.cer"), SubjectFormatVersion::V2);
    let configured = presented.replace("qzXoWDkuqUa3l6zM5mM0Rw", &encode_guid(APP));
    let inputs = DiagnosisInputs { application_id: Some(APP), ..with(&[&configured]) };
    assert_eq!(causes(&aadsts700213(&presented), &inputs), ["user_app_id_in_app_segment"]);
}

#[test]
fn version_mismatch_both_ways() {
    // The row says 2 (the platform presents v2) but the FIC has the v1 subject. (A certificate whose names
    // have no comma: version 1 cannot carry one.)
    let ss = fixture("self-issued.cer");
    let v2 = subject(&ss, SubjectFormatVersion::V2);
    let v1 = subject(&ss, SubjectFormatVersion::V1);
    assert_ne!(v1, v2);
    let inputs = DiagnosisInputs { certificate: Some(ss.clone()), ..with(&[&v1]) };
    assert_eq!(causes(&aadsts700213(&v2), &inputs), ["version_mismatch"]);
    // The platform presents v1 (row version 1) while the user means 2.
    let inputs = DiagnosisInputs { version: Some(SubjectFormatVersion::V2), ..with(&[&v2]) };
    assert!(causes(&aadsts700213(&v1), &inputs).contains(&"version_mismatch"));
    // AADSTS70050: a v1 subject with non-ASCII names.
    assert_eq!(
        causes("AADSTS70050: The assertion subject is not properly formatted.", &DiagnosisInputs::default()),
        ["version_mismatch"]
    );
}

#[test]
fn dn_formatted_the_openssl_way() {
    let leaf = fixture("leaf.cer");
    let presented = subject(&leaf, SubjectFormatVersion::V2);
    let rfc4514 = NameHash::of_name("CN=Contoso Plug-in Signing,OU=Dataverse,O=Contoso,C=US").to_string();
    let configured = presented.replace(&leaf.subject_hash().unwrap().to_string(), &rfc4514);
    let inputs = DiagnosisInputs { certificate: Some(leaf.clone()), ..with(&[&configured]) };
    let d = explain(&parse_error(&aadsts700213(&presented)).unwrap(), &inputs);
    assert_eq!(d.findings[0].cause, Cause::DnNotDotnetFormat);
    assert!(d.findings[0].message.contains("RFC 4514"), "{}", d.findings[0].message);
    let openssl = NameHash::of_name("/C=US/O=Contoso/CN=Contoso Root CA").to_string();
    let configured = presented.replace(&leaf.issuer_hash().unwrap().to_string(), &openssl);
    let inputs = DiagnosisInputs { certificate: Some(leaf), ..with(&[&configured]) };
    assert_eq!(causes(&aadsts700213(&presented), &inputs), ["dn_not_dotnet_format"]);
}

#[test]
fn wrong_cloud() {
    let presented = subject(&fixture("ca.cer"), SubjectFormatVersion::V2);
    let configured = presented.replace("/eid1/c/pub/", "/eid1/c/usg/");
    assert_eq!(causes(&aadsts700213(&presented), &with(&[&configured])), ["wrong_cloud"]);
    let aud = "AADSTS700212: No matching federated identity record found for presented assertion audience 'api://AzureADTokenExchangeUSGov'.";
    let inputs = DiagnosisInputs {
        configured: vec![ConfiguredFic {
            subject: presented.clone(),
            audience: Some("api://AzureADTokenExchange".into()),
            issuer: None,
            created: None,
        }],
        cloud: Some(CloudProfile::from(Cloud::UsGov)),
        ..Default::default()
    };
    let d = explain(&parse_error(aud).unwrap(), &inputs);
    assert_eq!(d.findings[0].cause, Cause::WrongCloud);
    assert!(d.findings[0].fix.contains("api://AzureADTokenExchangeUSGov"));
}

#[test]
fn issuer_mismatch_says_what_is_wrong() {
    let text = "AADSTS700211: No matching federated identity record found for presented assertion issuer 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0'.";
    for (issuer, why) in [
        ("https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47", "has no /v2.0"),
        ("https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/", "sts.windows.net"),
        ("https://login.microsoftonline.com/5f8a1a9f-2e1a-415f-b10c-84c3736a21b9/v2.0", "another tenant"),
    ] {
        let inputs = DiagnosisInputs {
            tenant_id: Some(TENANT),
            configured: vec![ConfiguredFic {
                subject: "x".into(),
                issuer: Some(issuer.into()),
                audience: None,
                created: None,
            }],
            ..Default::default()
        };
        let d = explain(&parse_error(text).unwrap(), &inputs);
        assert_eq!(d.findings[0].cause, Cause::IssuerMismatch, "{issuer}");
        assert!(d.findings[0].message.contains(why), "{issuer}: {}", d.findings[0].message);
    }
}

#[test]
fn propagation_no_fic_and_unknown() {
    let presented = subject(&fixture("ca.cer"), SubjectFormatVersion::V2);
    let inputs = DiagnosisInputs { recently_created: true, ..with(&[&presented]) };
    assert_eq!(causes(&aadsts700213(&presented), &inputs), ["propagation_delay"]);
    assert_eq!(
        causes(
            "AADSTS70021: No matching federated identity record found for presented assertion.",
            &DiagnosisInputs::default()
        ),
        ["propagation_delay"]
    );
    assert_eq!(
        causes(
            "AADSTS70025: The client has no configured federated identity credentials.",
            &DiagnosisInputs::default()
        ),
        ["no_fic"]
    );
    let known_empty = DiagnosisInputs { fics_known: true, ..Default::default() };
    assert_eq!(causes(&aadsts700213(&presented), &known_empty), ["no_fic"]);
    assert_eq!(causes(&aadsts700213(&presented), &DiagnosisInputs::default()), ["unknown"]);
    let d = explain(&parse_error(&aadsts700213(&presented)).unwrap(), &DiagnosisInputs::default());
    assert!(d.findings[0].message.contains(&presented));
    // A CA-issued certificate's form where the platform presents a self-signed one's.
    let other = subject(&fixture("leaf.cer"), SubjectFormatVersion::V2);
    assert_eq!(causes(&aadsts700213(&presented), &with(&[&other])), ["binding_kind_mismatch"]);
    // Another self-signed certificate altogether: nothing known explains that, and the finding says so.
    let other = subject(&fixture("quotes.cer"), SubjectFormatVersion::V2);
    assert_eq!(causes(&aadsts700213(&presented), &with(&[&other])), ["different_value"]);
}

#[test]
fn the_human_rendering_lists_fixes() {
    let presented = subject(&fixture("ca.cer"), SubjectFormatVersion::V2);
    let configured = presented.replace(&encode_guid(TENANT), &encode_guid_big_endian(TENANT));
    let d = explain(&parse_error(&aadsts700213(&presented)).unwrap(), &with(&[&configured]));
    let text = d.to_string();
    assert!(text.starts_with("AADSTS700213: No matching"), "{text}");
    assert!(text.contains("1. [tenant_big_endian]") && text.contains("fix: use /t/v4j5cvGGr0GRqy180BHbRw"), "{text}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_parses_or_says_why(s in ".{0,400}") {
            let _ = parse_error(&s);
            let _ = parse_error(&format!("AADSTS700213: presented assertion subject '{s}'"));
            if let Ok(e) = parse_error(&format!("AADSTS700213: No matching ... assertion subject '{s}'. Trace ID: x")) {
                let _ = explain(&e, &with(&[&s, "/eid1/c/pub/t/x"]));
            }
        }
    }
}

#[test]
fn fuzz_regressions_parse_and_explain_without_panicking() {
    // Inputs the fuzzers found (tests/fixtures/fuzz); each must go through parsing and explaining.
    let dir = format!("{}/tests/fixtures/fuzz", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(e) = parse_error(&text) {
            let mid = (0..=text.len() / 2).rev().find(|i| text.is_char_boundary(*i)).unwrap();
            let (a, b) = text.split_at(mid);
            let _ = explain(&e, &with(&[a, b])).to_string();
        }
    }
}

#[test]
fn another_environments_fic_is_not_the_cause_when_a_specific_one_is_found() {
    let presented = subject(&fixture("ca.cer"), SubjectFormatVersion::V2);
    let other_env = presented.replace(&ENV.to_string(), "11111111-2222-4333-8444-555555555555");
    let hash = fixture("ca.cer").sha256().to_string();
    let broken = presented.replace(&hash, &hash.to_uppercase());
    assert_eq!(causes(&aadsts700213(&presented), &with(&[&other_env, &broken])), ["hash_uppercase"]);
    // Alone, a FIC for another environment is still reported: it is all there is.
    assert_eq!(causes(&aadsts700213(&presented), &with(&[&other_env])), ["environment_mismatch"]);
}

#[test]
fn another_clusters_app_segment_is_named_as_such() {
    use dataverse_mi::guid::{POWER_PLATFORM_MI_APP_SEGMENT, PREPROD_APP_SEGMENT, TEST_APP_SEGMENT};
    let presented = subject(&fixture("self-signed-comma.cer"), SubjectFormatVersion::V2);
    for (segment, words) in [(PREPROD_APP_SEGMENT, "pre-production"), (TEST_APP_SEGMENT, "test cluster")] {
        // Copied from Microsoft's own migration scripts, which carry the internal clusters' values.
        let configured = presented.replace(POWER_PLATFORM_MI_APP_SEGMENT, segment);
        let d = explain(&parse_error(&aadsts700213(&presented)).unwrap(), &with(&[&configured]));
        assert_eq!(d.findings.iter().map(|f| f.cause.id()).collect::<Vec<_>>(), ["app_segment_not_platform"], "{d}");
        assert!(d.findings[0].message.contains(words), "{d}");
        assert!(d.findings[0].fix.contains(POWER_PLATFORM_MI_APP_SEGMENT), "{d}");
        assert!(!d.to_string().contains("your own app"), "{d}");
    }
}

#[test]
fn the_default_environment_is_diagnosed_like_any_other() {
    use dataverse_mi::environment::EnvironmentId;
    let default = EnvironmentId::Default { tenant: TENANT };
    let cert = fixture("self-signed-comma.cer");
    let binding = CertificateBinding::for_certificate(&cert, SubjectFormatVersion::V2, CertificateKind::Auto).unwrap();
    let presented = SubjectIdentifier::new(&Cloud::Public.into(), TENANT, default, binding).unwrap().to_string();
    let big_endian = presented.replace(&encode_guid(TENANT), &encode_guid_big_endian(TENANT));
    assert_eq!(causes(&aadsts700213(&presented), &with(&[&big_endian])), ["tenant_big_endian"]);
    // The user gives the Default environment's id: no finding says it is the wrong environment.
    let inputs = DiagnosisInputs { environment_id: Some(default), ..with(&[&big_endian]) };
    assert_eq!(causes(&aadsts700213(&presented), &inputs), ["tenant_big_endian"]);
}

#[test]
fn version_mismatch_with_an_ordinary_ca_certificate_both_ways() {
    // An ordinary CA-issued certificate: its version 1 subject carries the two CN values, and a FIC of the other
    // version is recognised as such.
    let leaf = fixture("leaf.cer");
    let v1 = subject(&leaf, SubjectFormatVersion::V1);
    let v2 = subject(&leaf, SubjectFormatVersion::V2);
    assert!(v1.ends_with("/i/Contoso Root CA/s/Contoso Plug-in Signing"), "{v1}");
    let inputs = |configured: &str| DiagnosisInputs { certificate: Some(leaf.clone()), ..with(&[configured]) };
    assert_eq!(causes(&aadsts700213(&v2), &inputs(&v1)), ["version_mismatch"]);
    assert_eq!(causes(&aadsts700213(&v1), &inputs(&v2)), ["version_mismatch"]);
}

#[test]
fn case_only_differences_are_named_with_the_subject_to_set() {
    let presented = subject(&fixture("ca.cer"), SubjectFormatVersion::V2);
    // Entra's own error for it, with no FIC given: the subject to set is the presented one.
    let text = format!(
        "AADSTS7002138: The subject of the presented assertion '{presented}' matches a record only when case is ignored."
    );
    let d = explain(&parse_error(&text).unwrap(), &DiagnosisInputs::default());
    assert_eq!(d.findings.iter().map(|f| f.cause.id()).collect::<Vec<_>>(), ["subject_case"], "{d}");
    assert!(d.findings[0].fix.contains(&presented), "{d}");
    // A FIC whose component segment differs in case only: not "another component".
    let configured = presented.replace("/n/plugin/", "/n/Plugin/");
    assert_eq!(causes(&aadsts700213(&presented), &with(&[&configured])), ["subject_case"]);
}

#[test]
fn a_presented_subject_of_another_certificate_is_said_first() {
    // The user gives the certificate they signed with; the platform presents the subject of another one (the
    // registered plug-in was signed with something else). Nothing configured for the user's can match.
    let mine = fixture("ca.cer");
    let registered = fixture("self-signed-comma.cer");
    let presented = subject(&registered, SubjectFormatVersion::V2);
    let configured = subject(&mine, SubjectFormatVersion::V2);
    let inputs = DiagnosisInputs { certificate: Some(mine.clone()), ..with(&[&configured]) };
    let d = explain(&parse_error(&aadsts700213(&presented)).unwrap(), &inputs);
    assert_eq!(d.findings[0].cause.id(), "presented_other_certificate", "{d}");
    assert!(d.findings[0].message.contains("signed with another one"), "{d}");
    // With the right certificate, no such finding.
    let inputs = DiagnosisInputs { certificate: Some(registered), ..with(&[&configured]) };
    let d = explain(&parse_error(&aadsts700213(&presented)).unwrap(), &inputs);
    assert!(d.findings.iter().all(|f| f.cause.id() != "presented_other_certificate"), "{d}");
    // Version 1 and version 2 trusted forms are compared by their own rules.
    let leaf = fixture("leaf.cer");
    for version in [SubjectFormatVersion::V1, SubjectFormatVersion::V2] {
        let presented = subject(&leaf, version);
        let d = explain(
            &parse_error(&aadsts700213(&presented)).unwrap(),
            &DiagnosisInputs { certificate: Some(leaf.clone()), ..with(&[&configured]) },
        );
        assert!(d.findings.iter().all(|f| f.cause.id() != "presented_other_certificate"), "{version}: {d}");
        let d = explain(
            &parse_error(&aadsts700213(&presented)).unwrap(),
            &DiagnosisInputs { certificate: Some(mine.clone()), ..with(&[&configured]) },
        );
        assert_eq!(d.findings[0].cause.id(), "presented_other_certificate", "{version}: {d}");
    }
}
