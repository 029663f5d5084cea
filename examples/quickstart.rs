//! Quickstart, no Azure account needed: a fake platform on loopback with two environments and three plug-ins,
//! provisioned with the shipped example certificate, then verified.
//!
//! `cargo run --example quickstart --features testkit`
//!
//! Prints the plan, the apply report, the verification and the requests each service received. Against real
//! services the same calls are made by `dataverse-mi plan|apply|verify -f spec.toml`.

use dataverse_mi::cloud::Cloud;
use dataverse_mi::provision::{CertificateSpec, EnvironmentSpec, IdentitySpec, ProvisionOptions, ProvisionSpec};
use dataverse_mi::subject::SubjectFormatVersion;
use dataverse_mi::testkit::{FakeOptions, FakePlatform};
use uuid::Uuid;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tenant = Uuid::parse_str("72f988bf-86f1-41af-91ab-2d7cd011db47")?;
    let app_id = Uuid::parse_str("0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b")?;
    let cert_path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/contoso-plugins.cer");
    let cert = dataverse_mi::cert::Certificate::from_file(cert_path)?.certificate;

    // The platform as it is before provisioning: an app registration, two environments, three plug-ins.
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_application(app_id, "Contoso plug-ins");
    fake.add_environment("contoso-dev.crm.dynamics.com", tenant);
    fake.add_environment("contoso-test.crm.dynamics.com", tenant);
    fake.add_plugin_assembly("contoso-dev.crm.dynamics.com", "Contoso.Plugins", Some(cert.clone()));
    fake.add_plugin_package("contoso-dev.crm.dynamics.com", "contoso_Integrations", Some(cert.clone()));
    fake.add_plugin_assembly("contoso-test.crm.dynamics.com", "Contoso.Plugins", Some(cert.clone()));
    let server = fake.start().await;
    println!("fake platform listening on {}\n", server.uri());

    let spec = ProvisionSpec {
        identity: IdentitySpec::app_registration(app_id),
        cloud: Cloud::Public,
        version: SubjectFormatVersion::V2,
        prune: false,
        environments: vec![
            EnvironmentSpec {
                org_url: "https://contoso-dev.crm.dynamics.com".into(),
                plugin_assemblies: vec!["Contoso.Plugins".into()],
                plugin_packages: vec!["contoso_Integrations".into()],
                certificate: CertificateSpec::File { path: cert_path.into(), password_env: None },
            },
            EnvironmentSpec {
                org_url: "https://contoso-test.crm.dynamics.com".into(),
                plugin_assemblies: vec!["Contoso.Plugins".into()],
                plugin_packages: vec![],
                certificate: CertificateSpec::File { path: cert_path.into(), password_env: None },
            },
        ],
        grants: vec![],
        base_dir: Default::default(),
    };
    let engine = server.provisioner(&spec, ProvisionOptions::default())?.provisioner;

    let plan = engine.plan(&spec).await?;
    println!("== plan\n{plan}\n");
    for e in &plan.environments {
        println!("{}: subject {}", e.org_url, e.subject);
    }
    let report = engine.apply(&plan).await;
    println!("\n== apply\n{report}\n");
    let verify = engine.verify(&spec).await?;
    println!("== verify\n{verify}\n");
    let rerun = engine.plan(&spec).await?;
    println!("== re-run plan\n{rerun}\n");

    println!("== requests the fake received, by route");
    for (route, count) in fake.counts() {
        println!("{count:>4}  {route}");
    }
    if !(report.is_success() && verify.is_ok() && rerun.is_empty()) {
        return Err("the quickstart did not converge".into());
    }
    Ok(())
}
