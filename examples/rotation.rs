//! Day two against the built-in fake: a certificate read from the platform, then rotated without downtime.
//!
//! `cargo run --example rotation --features testkit`
//!
//! 1. The spec names no certificate: plan reads the registered assembly and takes its signer.
//! 2. The certificate is renewed: `adding_certificate` puts the new one's FIC beside the old one.
//! 3. The plug-in is re-signed and registered again; it keeps working (the new FIC is there).
//! 4. `finishing_rotation` removes the old FIC once nothing carries it (it refuses before).
//! 5. Verify shows the new certificate's expiry, and warns as it comes close.
//!
//! A plug-in runs against the fake after every step, as the platform would run it.

use std::time::{Duration, UNIX_EPOCH};

use dataverse_mi::provision::{
    CertificateSpec, EnvironmentSpec, IdentitySpec, ProvisionOptions, ProvisionSpec, VerifyOptions,
};
use dataverse_mi::testkit::{FakeOptions, FakePlatform};
use uuid::Uuid;

const TENANT: Uuid = Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47);
const APP: Uuid = Uuid::from_u128(0x0b5a7d2c_6f4e_4d3a_9c1b_2a8e7f6d5c4b);
const HOST: &str = "contoso-dev.crm.dynamics.com";

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/signed").join(name)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_application(APP, "Contoso plug-ins");
    fake.add_environment(HOST, TENANT);
    // Registered signed with the current certificate (tests/fixtures/make-signed.sh).
    let assembly = fake.add_registered_assembly(HOST, "Contoso.Plugins", &std::fs::read(fixture("signed.dll"))?);
    let server = fake.start().await;

    let spec = ProvisionSpec::new(
        IdentitySpec::app_registration(APP),
        vec![EnvironmentSpec::new(format!("https://{HOST}")).with_assemblies(["Contoso.Plugins"])],
    );
    let engine = server.provisioner(&spec, ProvisionOptions::default())?.provisioner;
    let plugin_runs = || fake.run_plugin(HOST, assembly, "Contoso.Plugins.Account");

    println!("== 1. set up from the registered signature (no certificate in the spec)");
    let plan = engine.plan(&spec).await?;
    for s in &plan.environments[0].subjects {
        let signer = s.certificate.as_ref().map(|c| c.subject.as_str()).unwrap_or("?");
        println!("   subject {} (signed by {signer})", s.subject);
    }
    let report = engine.apply(&plan).await;
    println!("{report}");
    println!("   plug-in gets a token: {}\n", plugin_runs());

    println!("== 2. renewed certificate: add its FIC beside the old one");
    let new = CertificateSpec::File { path: fixture("renewed.cer"), password_env: None };
    let rotating = spec.adding_certificate(new.clone());
    let report = engine.apply(&engine.plan(&rotating).await?).await;
    println!("{report}");
    println!("   plug-in gets a token (still the old signature): {}", plugin_runs());
    // Finishing now would delete the FIC the plug-in still presents: the plan keeps it and says who uses it.
    let early = engine.plan(&spec.finishing_rotation(new.clone())).await?;
    let kept = early.kept_fics();
    if kept.is_empty() || early.actions.iter().any(|a| matches!(a, dataverse_mi::provision::Action::DeleteFic { .. })) {
        return Err("finishing before re-registration must keep the old FIC".into());
    }
    for note in kept {
        println!("   finishing now deletes nothing: {note}\n");
    }

    println!("== 3. re-signed and registered again");
    fake.register_content(HOST, assembly, &std::fs::read(fixture("renewed.dll"))?);
    println!("   plug-in gets a token (the new signature): {}\n", plugin_runs());

    println!("== 4. finish: the old FIC goes");
    let finish = spec.finishing_rotation(new);
    let plan = engine.plan(&finish).await?;
    println!("{plan}");
    let report = engine.apply(&plan).await;
    println!("{report}");
    println!("   plug-in gets a token: {}", plugin_runs());
    println!("   FICs left: {}\n", fake.graph_fics(APP).len());

    println!("== 5. verify, two weeks before the new certificate expires (2027-01-15)");
    let two_weeks_before = UNIX_EPOCH + Duration::from_secs(1_799_971_200 - 14 * 86_400);
    let verify = engine.verify_with(&finish, VerifyOptions::default().at(two_weeks_before)).await?;
    println!("{verify}");
    let ok = report.is_success() && verify.is_ok() && plugin_runs() && fake.graph_fics(APP).len() == 1;
    if !ok {
        return Err("the rotation did not end as expected".into());
    }
    println!("\nrotated with no failed token request");
    Ok(())
}
