//! `watch` against the fake for each failure after the FIC is right: the plug-in's trace log row is read, the cause
//! named with its id, the line quoted and the fix given. The platform's own failures (a package not bound, an
//! unsigned assembly, a FIC still propagating) come from running the plug-in on the fake; the plug-in's own (a
//! call refused by Dataverse or Graph, a scope without `/.default`, the Azure SDK bundled) are written to its trace
//! log as a plug-in's exception would be.
#![cfg(feature = "testkit")]

use std::time::Duration;

use dataverse_mi::cert::Certificate;
use dataverse_mi::http::RetryOptions;
use dataverse_mi::provision::{
    CertificateSpec, CreateIdentitySpec, EnvironmentSpec, IdentitySpec, ProvisionOptions, ProvisionSpec, Provisioner,
    WatchOptions, WatchReport,
};
use dataverse_mi::testkit::{FakeOptions, FakePlatform};
use uuid::Uuid;

const TENANT: Uuid = Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47);
const APP: Uuid = Uuid::from_u128(0x0b5a7d2c_6f4e_4d3a_9c1b_2a8e7f6d5c4b);
const HOST: &str = "contoso.crm.dynamics.com";

fn cert_path() -> String {
    format!("{}/examples/contoso-plugins.cer", env!("CARGO_MANIFEST_DIR"))
}

fn cert() -> Certificate {
    Certificate::from_file(cert_path()).unwrap().certificate
}

fn spec(identity: IdentitySpec, assemblies: &[&str], packages: &[&str]) -> ProvisionSpec {
    ProvisionSpec::new(
        identity,
        vec![
            EnvironmentSpec::new(format!("https://{HOST}"))
                .with_assemblies(assemblies.iter().copied())
                .with_packages(packages.iter().copied())
                .with_certificate(CertificateSpec::File { path: cert_path().into(), password_env: None }),
        ],
    )
}

fn fake() -> FakePlatform {
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_environment(HOST, TENANT);
    fake.set_trace_setting(HOST, 1);
    fake
}

fn engine(fake: &FakePlatform, spec: &ProvisionSpec) -> Provisioner {
    let retry = RetryOptions { jitter: 0.0, ..RetryOptions::default() };
    fake.provisioner(spec, 4, retry, ProvisionOptions::default()).unwrap().provisioner
}

async fn watch(engine: &Provisioner, spec: &ProvisionSpec) -> WatchReport {
    engine.watch(spec, &WatchOptions::since_text("2000-01-01T00:00:00Z").unwrap()).await.unwrap()
}

/// The one failure the watch found: its cause id, its quoted evidence and its fix.
fn only(report: &WatchReport) -> (&'static str, String, String) {
    assert_eq!(report.failures.len(), 1, "{report:?}");
    let f = &report.failures[0].diagnosis.findings[0];
    (f.cause.id(), f.found.clone().unwrap_or_default(), f.fix.clone())
}

#[tokio::test(start_paused = true)]
async fn a_plugin_in_an_unbound_package_is_package_not_bound() {
    let fake = fake();
    fake.add_application(APP, "Contoso plug-ins");
    let package = fake.add_plugin_package(HOST, "contoso_Plugins", Some(cert()));
    let assembly = fake.add_packaged_assembly(HOST, package, "Contoso.Plugins");
    assert!(!fake.run_plugin(HOST, assembly, "Contoso.Plugins.KeyVaultReader"));
    let spec = spec(IdentitySpec::app_registration(APP), &[], &["contoso_Plugins"]);
    let engine = engine(&fake, &spec);
    let (cause, evidence, fix) = only(&watch(&engine, &spec).await);
    assert_eq!(cause, "package_not_bound");
    assert!(
        evidence.contains(&format!("PluginPackage {package} is not associated to a Managed identity")),
        "{evidence}"
    );
    assert!(fix.contains("plugin_packages"), "{fix}");
    // The fix carried out: apply binds the package, and the plug-in gets its token.
    assert!(engine.apply(&engine.plan(&spec).await.unwrap()).await.is_success());
    assert!(fake.run_plugin(HOST, assembly, "Contoso.Plugins.KeyVaultReader"));
}

#[tokio::test(start_paused = true)]
async fn a_plugin_whose_assembly_is_bound_to_nothing_is_component_not_bound() {
    let fake = fake();
    fake.add_application(APP, "Contoso plug-ins");
    let assembly = fake.add_plugin_assembly(HOST, "Contoso.Plugins", Some(cert()));
    assert!(!fake.run_plugin(HOST, assembly, "Contoso.Plugins.KeyVaultReader"));
    let spec = spec(IdentitySpec::app_registration(APP), &["Contoso.Plugins"], &[]);
    let (cause, evidence, fix) = only(&watch(&engine(&fake, &spec), &spec).await);
    assert_eq!(cause, "component_not_bound");
    assert!(evidence.contains("is not associated with a managed identity"), "{evidence}");
    assert!(fix.contains("plugin_assemblies"), "{fix}");
}

#[tokio::test(start_paused = true)]
async fn an_unsigned_assembly_bound_by_hand_is_assembly_not_signed() {
    let fake = fake();
    fake.add_application(APP, "Contoso plug-ins");
    fake.add_plugin_assembly(HOST, "Contoso.Plugins", Some(cert()));
    let unsigned = fake.add_plugin_assembly(HOST, "Contoso.Unsigned", None);
    let spec = spec(IdentitySpec::app_registration(APP), &["Contoso.Plugins"], &[]);
    let engine = engine(&fake, &spec);
    assert!(engine.apply(&engine.plan(&spec).await.unwrap()).await.is_success());
    let row = fake.managed_identities(HOST)[0].id;
    fake.seed_binding(HOST, unsigned, Some(row));
    assert!(!fake.run_plugin(HOST, unsigned, "Contoso.Unsigned.Step"));
    let (cause, evidence, fix) = only(&watch(&engine, &spec).await);
    assert_eq!(cause, "assembly_not_signed");
    assert!(evidence.contains("must be signed with a valid certificate to use Managed Identity"), "{evidence}");
    assert!(fix.contains("dataverse-mi sign"), "{fix}");
}

#[tokio::test(start_paused = true)]
async fn a_token_request_right_after_apply_is_propagation_with_the_time_to_try_again() {
    let fake = fake();
    fake.set_fic_propagation(Duration::from_secs(300));
    let assembly = fake.add_plugin_assembly(HOST, "Contoso.Plugins", Some(cert()));
    let identity = IdentitySpec::UserAssigned {
        subscription_id: "sub-1".into(),
        resource_group: "rg".into(),
        name: "contoso-plugins".into(),
        create: Some(CreateIdentitySpec { location: "westeurope".into(), tags: Default::default() }),
    };
    let spec = spec(identity, &["Contoso.Plugins"], &[]);
    let engine = engine(&fake, &spec);
    assert!(engine.apply(&engine.plan(&spec).await.unwrap()).await.is_success());
    assert!(!fake.run_plugin(HOST, assembly, "Contoso.Plugins.KeyVaultReader"));
    let report = watch(&engine, &spec).await;
    assert_eq!(report.failures.len(), 1);
    let diagnosis = &report.failures[0].diagnosis;
    assert_eq!(diagnosis.error.code.as_deref(), Some("AADSTS70021"));
    let f = &diagnosis.findings[0];
    assert_eq!(f.cause.id(), "propagation_delay", "{diagnosis}");
    // The time comes from ARM's systemData.createdAt of the FIC.
    assert!(f.message.contains("was created at ") && f.message.contains("0 minute(s) before"), "{}", f.message);
    assert!(f.fix.starts_with("try again after "), "{}", f.fix);
    // Once it has propagated, the same plug-in gets its token: nothing was wrong.
    fake.set_fic_propagation(Duration::ZERO);
    assert!(fake.run_plugin(HOST, assembly, "Contoso.Plugins.KeyVaultReader"));
}

#[tokio::test(start_paused = true)]
async fn calls_refused_after_the_token_each_name_their_cause() {
    let cases = [
        (
            "System.Net.Http.HttpRequestException: GET https://contoso-data.crm.dynamics.com/api/data/v9.2/accounts answered 403 (Forbidden): {\"error\":{\"code\":\"0x80072560\",\"message\":\"The user is not a member of the organization.\"}}",
            "no_application_user",
            "[[application_users]]",
        ),
        (
            "Microsoft.Xrm.Sdk.InvalidPluginExecutionException: 403 from https://contoso-data.crm.dynamics.com/api/data/v9.2/accounts: Principal user (Id=e7dd9bc6-d239-ea11-a813-000d3a35bad0, type=8, roleCount=1, privilegeCount=94, accessMode=4), is missing prvReadAccount privilege (Id=886b280c-6396-4d56-a0a3-2c1b0a50ceb0) on OTC=1 for entity 'account'.",
            "dataverse_privilege_missing",
            "prvReadAccount",
        ),
        (
            "Calling https://graph.microsoft.com/v1.0/users failed with 403 Forbidden: {\"error\":{\"code\":\"Authorization_RequestDenied\",\"message\":\"Insufficient privileges to complete the operation.\"}}",
            "graph_permission_missing",
            "[[api_permissions]]",
        ),
        (
            "Microsoft.Identity.Client.MsalServiceException: AADSTS1002012: The provided value for scope https://graph.microsoft.com is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
            "scope_without_default",
            "https://graph.microsoft.com/.default",
        ),
        (
            "AADSTS500011: The resource principal named https://vault.azure.nett was not found in the tenant named Contoso.",
            "resource_not_found",
            "https://vault.azure.net/.default",
        ),
        (
            "System.TypeLoadException: Could not load type 'Azure.Core.TokenCredential' from assembly 'Azure.Core, Version=1.38.0.0, Culture=neutral, PublicKeyToken=92742159e12e44c8'.",
            "azure_sdk_bundled",
            "do not bundle Azure.Core",
        ),
    ];
    for (text, id, fix) in cases {
        let fake = fake();
        fake.add_application(APP, "Contoso plug-ins");
        fake.add_plugin_assembly(HOST, "Contoso.Plugins", Some(cert()));
        fake.add_trace_log(HOST, "Contoso.Plugins.Caller", text);
        let spec = spec(IdentitySpec::app_registration(APP), &["Contoso.Plugins"], &[]);
        let (cause, _, given) = only(&watch(&engine(&fake, &spec), &spec).await);
        assert_eq!(cause, id, "{text}");
        assert!(given.contains(fix), "{id}: {given}");
    }
}
