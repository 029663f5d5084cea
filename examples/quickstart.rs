//! Quickstart, no Azure account needed: the whole flow from nothing against a fake platform on loopback.
//!
//! `cargo run --example quickstart --features testkit`
//!
//! The fake starts with two environments (one of them the tenant's Default environment, whose id is
//! `Default-{tenant}`) and three plug-ins (one a plug-in package with an assembly inside it, which the spec names
//! by the assembly: the package is what gets bound), and no identity, no FIC, no row. One spec then
//! takes it, in the walkthrough's order, to a verified setup: (1) the app registration and its service principal
//! are created, (2-4) a FIC, a managed identity row and the bindings per environment, (5) one role assignment on
//! a key vault. The plug-ins run and get tokens. Then someone replaces a FIC with a hand-made one (the tenant
//! GUID encoded in the wrong byte order, the classic mistake), a plug-in fails, and (6) `watch` finds the failure
//! in the plug-in trace log and explains it; a second apply mends it.
//!
//! Against real services the same calls are made by `dataverse-mi plan|apply|verify|watch -f spec.toml`.

use dataverse_mi::cloud::Cloud;
use dataverse_mi::guid::{encode_guid, encode_guid_big_endian};
use dataverse_mi::provision::{
    CertificateSpec, EnvironmentSpec, GrantSpec, IdentitySpec, ProvisionOptions, ProvisionSpec, WatchOptions,
};
use dataverse_mi::subject::SubjectFormatVersion;
use dataverse_mi::testkit::{FakeOptions, FakePlatform};
use uuid::Uuid;

/// The tenant's Default environment: many plug-ins live there.
const DEV: &str = "contoso.crm.dynamics.com";
const TEST: &str = "contoso-test.crm.dynamics.com";
const KEY_VAULT: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-secrets/providers/Microsoft.KeyVault/vaults/contoso-kv";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tenant = Uuid::parse_str("72f988bf-86f1-41af-91ab-2d7cd011db47")?;
    let cert_path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/contoso-plugins.cer");
    let cert = dataverse_mi::cert::Certificate::from_file(cert_path)?.certificate;

    // The platform before anything: two environments, three plug-ins signed with the example certificate.
    let fake = FakePlatform::new(FakeOptions::default());
    let default_environment = fake.add_default_environment(DEV, tenant);
    fake.add_environment(TEST, tenant);
    let dev_plugins = fake.add_plugin_assembly(DEV, "Contoso.Plugins", Some(cert.clone()));
    let integrations = fake.add_plugin_package(DEV, "contoso_Integrations", Some(cert.clone()));
    let packaged = fake.add_packaged_assembly(DEV, integrations, "Contoso.Integrations");
    println!("the Default environment's id: {default_environment}");
    let test_plugins = fake.add_plugin_assembly(TEST, "Contoso.Plugins", Some(cert.clone()));
    let server = fake.start().await;
    println!("fake platform listening on {}\n", server.uri());

    let mut spec = ProvisionSpec::new(
        IdentitySpec::app_registration_named("Contoso plug-ins", true),
        vec![
            EnvironmentSpec::new(format!("https://{DEV}"))
                // Optional: a check that the URL is the environment meant (plan refuses another).
                .with_environment_id(default_environment)
                // Contoso.Integrations is inside the contoso_Integrations package: plan binds the package.
                .with_assemblies(["Contoso.Plugins", "Contoso.Integrations"])
                .with_certificate(CertificateSpec::File { path: cert_path.into(), password_env: None }),
            EnvironmentSpec::new(format!("https://{TEST}"))
                .with_assemblies(["Contoso.Plugins"])
                .with_certificate(CertificateSpec::File { path: cert_path.into(), password_env: None }),
        ],
    );
    spec.cloud = Cloud::Public;
    spec.version = SubjectFormatVersion::V2;
    spec.grants.push(GrantSpec { role: "Key Vault Secrets User".into(), scope: KEY_VAULT.into() });
    let engine = server.provisioner(&spec, ProvisionOptions::default())?.provisioner;

    let plan = engine.plan(&spec).await?;
    println!("== plan (from nothing)\n{plan}\n");
    for e in &plan.environments {
        println!("{}: subject {}", e.org_url, e.subject);
    }
    let report = engine.apply(&plan).await;
    println!("\n== apply\n{report}\n");
    let verify = engine.verify(&spec).await?;
    println!("== verify\n{verify}\n");
    let rerun = engine.plan(&spec).await?;
    println!("== re-run plan\n{rerun}\n");

    let app_id = fake.applications_named("Contoso plug-ins").first().copied().ok_or("no application was created")?;
    let role = fake.role_assignments().into_iter().next().ok_or("no role assignment was made")?;
    let principal = fake.service_principal(app_id).ok_or("the application has no service principal")?;
    println!("created: application {app_id}, service principal {principal}");
    println!("granted: {} at {}\n", role.role_definition_id, role.scope);
    let all_run = fake.run_plugin(DEV, dev_plugins, "Contoso.Plugins.ReadSecret")
        && fake.run_plugin(DEV, packaged, "Contoso.Integrations.Sync")
        && fake.run_plugin(TEST, test_plugins, "Contoso.Plugins.ReadSecret");
    println!("== the plug-ins run: {}\n", if all_run { "all got a token" } else { "a token request FAILED" });

    // Someone "fixes" the test environment's FIC by hand, encoding the tenant GUID in the wrong byte order.
    let test_fic = &plan.environments[1].fic;
    fake.remove_graph_fic(app_id, &test_fic.name);
    let mut hand_made = test_fic.clone();
    hand_made.name = "hand-made".into();
    hand_made.subject = hand_made.subject.replace(&encode_guid(tenant), &encode_guid_big_endian(tenant));
    fake.seed_graph_fic(app_id, hand_made);
    fake.set_trace_setting(TEST, 1);
    let broken_run = fake.run_plugin(TEST, test_plugins, "Contoso.Plugins.ReadSecret");

    let watch = engine.watch(&spec, &WatchOptions::since_text("2000-01-01T00:00:00Z")?).await?;
    println!("== watch (the plug-in trace log, step 6)");
    for e in &watch.environments {
        println!("{}: tracing {}, {} row(s)", e.org_url, e.setting, e.rows);
    }
    for f in &watch.failures {
        println!("\n{} {}:\n{}", f.org_url, f.log.type_name.as_deref().unwrap_or("?"), f.diagnosis);
    }
    let mend = engine.plan(&spec).await?;
    println!("\n== plan after the hand edit\n{mend}\n");
    let mended = engine.apply(&mend).await;
    let mended_run = fake.run_plugin(TEST, test_plugins, "Contoso.Plugins.ReadSecret");
    println!(
        "== apply\n{mended}\n\nthe test plug-in runs again: {}\n",
        if mended_run { "token acquired" } else { "FAILED" }
    );

    println!("== requests the fake received, by route");
    for (route, count) in fake.counts() {
        println!("{count:>4}  {route}");
    }
    // The production path: plan and verify read in `$batch` round trips, and no batch fell back to single reads. The
    // rows, the component queries and the platform's subjects are read alone only by that fallback (watch reads
    // the organization and the trace logs alone, by design).
    let requests = fake.requests();
    let batch_only = [
        "GET dataverse managedidentities",
        "GET dataverse pluginassemblies",
        "GET dataverse GetComponentManagedIdentityFIC",
    ];
    let fell_back = requests.iter().filter(|r| !r.in_batch && batch_only.contains(&r.route.as_str())).count();
    let batched_path = requests.iter().any(|r| r.route == "POST dataverse $batch") && fell_back == 0;
    println!(
        "\nthe engine's reads went in $batch round trips: {}",
        if batched_path {
            "yes, none fell back to single requests".to_owned()
        } else {
            format!("NO ({fell_back} read alone)")
        }
    );
    let diagnosed = watch.failures.iter().any(|f| {
        f.diagnosis.error.code.as_deref() == Some("AADSTS700213")
            && f.diagnosis.findings.iter().any(|x| x.cause.id() == "tenant_big_endian")
    });
    let default_subject = plan.environments[0].subject.contains(&format!("/e/{default_environment}/"));
    let package_bound = plan.to_string().contains("is in package contoso_Integrations: binding the package");
    let converged =
        report.is_success() && verify.is_ok() && rerun.is_empty() && all_run && default_subject && package_bound;
    if !(converged && !broken_run && diagnosed && mended.is_success() && mended_run && batched_path) {
        return Err("the quickstart did not go as expected".into());
    }
    Ok(())
}
