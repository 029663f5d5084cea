//! The diagnosis corpus for what goes wrong after the FIC is right: each case is a failure's text as a trace log
//! row or an exception holds it, with where its words come from, and the cause `diagnose` must name with the line
//! it quotes. Sources:
//! - [F] field reports and Q&A threads, 2025-2026, as gathered in DOMAIN.md ("Other failures users meet after the
//!   FIC is right"): the platform's own words, quoted there; the exception wrapper around them is the shape
//!   plug-in trace logs give (`Microsoft.Xrm.Sdk.InvalidPluginExecutionException: ...`).
//! - [E] Entra's error texts as Microsoft Entra's AADSTS error reference and Q&A threads quote them.
//! - [G] Microsoft Graph's error responses (Graph v1.0 "Microsoft Graph error responses and resource types":
//!   `Authorization_RequestDenied`, "Insufficient privileges to complete the operation.").
//! - [D] Dataverse Web API errors as Q&A threads quote them (`0x80072560` "The user is not a member of the
//!   organization."; "Principal user (Id=..., type=8, ...) is missing prvReadAccount privilege").
//! - [N] .NET's loader exceptions (`TypeLoadException`, `FileLoadException`) for `Azure.Core` / `Azure.Identity`.

use std::time::{Duration, SystemTime};

use dataverse_mi::diagnose::{Cause, ConfiguredFic, DiagnoseError, DiagnosisInputs, FIC_PROPAGATION, diagnose};
use proptest::prelude::*;

struct Case {
    name: &'static str,
    text: String,
    cause: Cause,
    /// What the quoted evidence (or, for an Entra error, the finding's value) holds.
    evidence: &'static str,
    /// What the fix says.
    fix: &'static str,
}

fn corpus() -> Vec<Case> {
    let case = |name, text: &str, cause, evidence, fix| Case { name, text: text.to_owned(), cause, evidence, fix };
    vec![
        // [F]
        case(
            "package not bound",
            "Microsoft.Xrm.Sdk.InvalidPluginExecutionException: PluginPackage 7f3c2a1e-5b4d-4c6e-8f90-a1b2c3d4e5f6 is not associated to a Managed identity\n   at Microsoft.Crm.Sandbox.SandboxPlugin.Execute(...)",
            Cause::PackageNotBound,
            "PluginPackage 7f3c2a1e-5b4d-4c6e-8f90-a1b2c3d4e5f6 is not associated to a Managed identity",
            "plugin_packages",
        ),
        case(
            "assembly not bound (the fake's words)",
            "Microsoft.Xrm.Sdk.InvalidPluginExecutionException: The plug-in assembly is not associated with a managed identity.",
            Cause::ComponentNotBound,
            "is not associated with a managed identity",
            "plugin_assemblies",
        ),
        // [F]
        case(
            "unsigned or strong-named only",
            "Requesting token...\nSystem.ServiceModel.FaultException`1[Microsoft.Xrm.Sdk.OrganizationServiceFault]: Plugin assembly must be signed with a valid certificate to use Managed Identity (Fault Detail is equal to Exception details: ErrorCode: 0x80040265)",
            Cause::AssemblyNotSigned,
            "must be signed with a valid certificate to use Managed Identity",
            "dataverse-mi sign",
        ),
        // [D]
        case(
            "Dataverse: no application user",
            "System.Net.Http.HttpRequestException: GET https://contoso-data.crm.dynamics.com/api/data/v9.2/accounts answered 403 (Forbidden): {\"error\":{\"code\":\"0x80072560\",\"message\":\"The user is not a member of the organization.\"}}",
            Cause::NoApplicationUser,
            "The user is not a member of the organization.",
            "environment = \"https://contoso-data.crm.dynamics.com\"",
        ),
        // [D]
        case(
            "Dataverse: a role without the privilege",
            "Microsoft.Xrm.Sdk.InvalidPluginExecutionException: 403 from https://contoso-data.crm.dynamics.com/api/data/v9.2/accounts: Principal user (Id=e7dd9bc6-d239-ea11-a813-000d3a35bad0, type=8, roleCount=1, privilegeCount=94, accessMode=4), is missing prvReadAccount privilege (Id=886b280c-6396-4d56-a0a3-2c1b0a50ceb0) on OTC=1 for entity 'account'.",
            Cause::DataversePrivilegeMissing,
            "is missing prvReadAccount privilege",
            "prvReadAccount",
        ),
        // [G]
        case(
            "Graph: 403 Authorization_RequestDenied",
            "Calling https://graph.microsoft.com/v1.0/users failed with 403 Forbidden: {\"error\":{\"code\":\"Authorization_RequestDenied\",\"message\":\"Insufficient privileges to complete the operation.\",\"innerError\":{\"date\":\"2026-11-22T10:00:00\",\"request-id\":\"1f1e4b0c-0000-0000-0000-000000000000\"}}}",
            Cause::GraphPermissionMissing,
            "Authorization_RequestDenied",
            "[[api_permissions]]",
        ),
        // [G]
        case(
            "Graph: a token with no role at all",
            "Microsoft Graph answered 401: {\"error\":{\"code\":\"InvalidAuthenticationToken\",\"message\":\"Either scp or roles claim need to be present in the token.\"}}",
            Cause::GraphPermissionMissing,
            "Either scp or roles claim need to be present in the token.",
            "[[api_permissions]]",
        ),
        // [E]
        case(
            "a scope without /.default",
            "Microsoft.Identity.Client.MsalServiceException: AADSTS1002012: The provided value for scope https://vault.azure.net is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI). Trace ID: 0b1c2d3e-0000-4000-8000-000000000001 Correlation ID: 5d6e7f80-0000-4000-8000-000000000002 Timestamp: 2026-11-22 10:00:00Z",
            Cause::ScopeWithoutDefault,
            "https://vault.azure.net",
            "https://vault.azure.net/.default",
        ),
        // [E]
        case(
            "a mistyped resource",
            "AADSTS500011: The resource principal named https://vault.azure.nett was not found in the tenant named Contoso. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant. Trace ID: 0b1c2d3e-0000-4000-8000-000000000001 Correlation ID: 5d6e7f80-0000-4000-8000-000000000002 Timestamp: 2026-11-22 10:00:00Z",
            Cause::ResourceNotFound,
            "https://vault.azure.nett",
            "https://vault.azure.net/.default",
        ),
        // [N]
        case(
            "Azure.Core bundled: TypeLoadException",
            "System.TypeLoadException: Could not load type 'Azure.Core.TokenCredential' from assembly 'Azure.Core, Version=1.38.0.0, Culture=neutral, PublicKeyToken=92742159e12e44c8'.\n   at Contoso.Plugins.KeyVaultReader.Execute(IServiceProvider serviceProvider)",
            Cause::AzureSdkBundled,
            "Could not load type 'Azure.Core.TokenCredential'",
            "IManagedIdentityService.AcquireToken",
        ),
        // [N]
        case(
            "Azure.Identity bundled: FileLoadException",
            "System.IO.FileLoadException: Could not load file or assembly 'Azure.Identity, Version=1.11.4.0, Culture=neutral, PublicKeyToken=92742159e12e44c8' or one of its dependencies. The located assembly's manifest definition does not match the assembly reference. (Exception from HRESULT: 0x80131040)",
            Cause::AzureSdkBundled,
            "Azure.Identity, Version=1.11.4.0",
            "do not bundle Azure.Identity",
        ),
    ]
}

#[test]
fn every_case_names_its_cause_quotes_its_evidence_and_gives_its_fix() {
    for c in corpus() {
        let diagnosis = diagnose(&c.text, &DiagnosisInputs::default()).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let first = &diagnosis.findings[0];
        assert_eq!(first.cause, c.cause, "{}: {diagnosis}", c.name);
        assert!(first.found.as_deref().is_some_and(|f| f.contains(c.evidence)), "{}: {:?}", c.name, first.found);
        assert!(first.fix.contains(c.fix), "{}: {}", c.name, first.fix);
        // The text rendering shows the stable id; the JSON carries it too.
        assert!(diagnosis.to_string().contains(&format!("[{}]", c.cause.id())), "{}", c.name);
        let json = serde_json::to_value(&diagnosis).unwrap();
        assert_eq!(json["findings"][0]["cause"], c.cause.id(), "{}", c.name);
        // As `watch` sees it, with the identity's FICs read (none yet): the same cause comes first, not "no FIC"
        // (a request refused for its scope never reached a FIC).
        let read = DiagnosisInputs { fics_known: true, ..DiagnosisInputs::default() };
        assert_eq!(diagnose(&c.text, &read).unwrap().findings[0].cause, c.cause, "{}", c.name);
    }
}

#[test]
fn the_troubleshooting_page_lists_every_cause() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/troubleshooting.md")).unwrap();
    let ids: std::collections::BTreeSet<&str> = Cause::ALL.iter().map(|c| c.id()).collect();
    assert_eq!(ids.len(), Cause::ALL.len(), "each cause once, each id its own");
    for id in ids {
        assert!(page.contains(&format!("`{id}`")), "docs/troubleshooting.md does not name `{id}`");
    }
}

#[test]
fn a_text_with_no_known_failure_is_an_error_not_a_guess() {
    for text in [
        "",
        "Token acquired for https://vault.azure.net/.default",
        "System.NullReferenceException: Object reference not set",
    ] {
        assert_eq!(diagnose(text, &DiagnosisInputs::default()).unwrap_err(), DiagnoseError::NoCode, "{text}");
    }
    // Forbidden from somewhere else than Graph is not Graph's.
    assert!(diagnose("https://vault.azure.net/secrets/x answered 403 Forbidden", &DiagnosisInputs::default()).is_err());
    // Azure.Core named without a load failure is not one.
    assert!(diagnose("using Azure.Core 1.38 from the sandbox", &DiagnosisInputs::default()).is_err());
}

const PRESENTED: &str = "/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/7efcc31a-c410-e20e-9b3c-3ea55e7f9c56/h/a9f605f46541a0aa9a71a0be9c69960abc6cfa3ff1cffaa02321581ff218ac91";

/// [E] AADSTS70021 as Entra words it for a workload identity federation (the assertion's issuer, subject and
/// audience named).
fn aadsts70021(at: &str) -> String {
    format!(
        "AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0'. Assertion Subject: '{PRESENTED}'. Assertion Audience: 'api://AzureADTokenExchange'. Trace ID: 0b1c2d3e-0000-4000-8000-000000000001 Correlation ID: 5d6e7f80-0000-4000-8000-000000000002 Timestamp: {at}"
    )
}

fn fic_created(created: Option<SystemTime>) -> DiagnosisInputs {
    DiagnosisInputs {
        configured: vec![ConfiguredFic {
            subject: PRESENTED.into(),
            issuer: Some("https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0".into()),
            audience: Some("api://AzureADTokenExchange".into()),
            created,
        }],
        fics_known: true,
        ..DiagnosisInputs::default()
    }
}

#[test]
fn a_fic_minutes_old_is_propagating_and_the_diagnosis_says_when_to_try_again() {
    let failed = humantime::parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let text = aadsts70021("2026-11-22 10:00:00Z");
    let young = diagnose(&text, &fic_created(Some(failed - Duration::from_secs(180)))).unwrap();
    let f = young.findings.iter().find(|f| f.cause == Cause::PropagationDelay).expect("propagation");
    assert!(f.message.contains("created at 2026-11-22T09:57:00Z, 3 minute(s) before"), "{}", f.message);
    assert_eq!(
        f.fix,
        format!(
            "try again after {} (no change is needed)",
            humantime::format_rfc3339_seconds(failed - Duration::from_secs(180) + FIC_PROPAGATION)
        )
    );
    // An hour old: propagation does not explain it, and the diagnosis says so.
    let old = diagnose(&text, &fic_created(Some(failed - Duration::from_secs(3600)))).unwrap();
    let f = old.findings.iter().find(|f| f.cause == Cause::PropagationDelay).unwrap();
    assert!(f.message.contains("propagation does not explain it"), "{}", f.message);
    // Microsoft Graph does not say when: said so.
    let unknown = diagnose(&text, &fic_created(None)).unwrap();
    assert!(unknown.findings[0].message.contains("Microsoft Graph does not say"), "{unknown}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Each failure is recognised wherever it sits in a longer text (other lines before and after, a prefix on its
    /// line), and its evidence is the line it is on.
    #[test]
    fn a_failure_is_found_inside_any_trace(case in 0usize..11, before in "[a-zA-Z0-9 .:]{0,40}", after in "[a-zA-Z0-9 .:]{0,40}", lines in 0usize..4) {
        let c = &corpus()[case];
        let noise: Vec<String> = (0..lines).map(|i| format!("   at Contoso.Plugins.Step{i}.Run() {after}")).collect();
        let text = format!("{}\n{before} {}\n{}", noise.join("\n"), c.text, noise.join("\n"));
        let diagnosis = diagnose(&text, &DiagnosisInputs::default()).unwrap();
        prop_assert_eq!(diagnosis.findings[0].cause, c.cause);
        prop_assert!(diagnosis.findings[0].found.as_deref().is_some_and(|f| f.contains(c.evidence)));
    }

    /// Whatever the text, diagnose answers (a diagnosis or `NoCode`) and never panics; an evidence line is never
    /// longer than 400 characters and the ellipsis.
    #[test]
    fn diagnose_never_panics(text in "\\PC{0,600}") {
        if let Ok(d) = diagnose(&text, &DiagnosisInputs::default()) {
            prop_assert!(!d.findings.is_empty());
            for f in &d.findings {
                prop_assert!(f.found.as_deref().is_none_or(|e| e.chars().count() <= 401));
            }
        }
    }
}
