//! Nothing a plug-in still uses is ever deleted (issue 25): rotation, prune and destroy look at every plug-in that
//! presents a subject (named by the spec or not, bound to the spec's row or to another row of the same application),
//! and delete only what they can prove they made. Each test runs the plug-ins in the fake before and after, the way
//! a user meets the case.
#![cfg(feature = "testkit")]

use dataverse_mi::entities::{ManagedIdentity, managed_identity_row_id};
use dataverse_mi::fic::FederatedIdentityCredential;
use dataverse_mi::http::RetryOptions;
use dataverse_mi::provision::{
    Action, CertificateSpec, DestroyOptions, DestroyStep, EnvironmentSpec, IdentitySpec, PlanNote, ProvisionOptions,
    ProvisionSpec, Provisioner,
};
use dataverse_mi::testkit::{FakeOptions, FakePlatform};
use uuid::Uuid;

const TENANT: Uuid = Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47);
const APP: Uuid = Uuid::from_u128(0x0b5a7d2c_6f4e_4d3a_9c1b_2a8e7f6d5c4b);
const ENV: Uuid = Uuid::from_u128(0x218a3746_69f7_4ed0_b284_4eccd9cc5882);
const HOST: &str = "contoso.crm.dynamics.com";

fn signed(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/signed/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn file(name: &str) -> CertificateSpec {
    CertificateSpec::File {
        path: format!("{}/tests/fixtures/signed/{name}", env!("CARGO_MANIFEST_DIR")).into(),
        password_env: None,
    }
}

fn fake() -> FakePlatform {
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_application(APP, "Contoso plug-ins");
    fake.add_environment_with_id(HOST, TENANT, ENV.into());
    fake
}

fn spec(assemblies: &[&str]) -> ProvisionSpec {
    ProvisionSpec::new(
        IdentitySpec::app_registration(APP),
        vec![EnvironmentSpec::new(format!("https://{HOST}")).with_assemblies(assemblies.iter().copied())],
    )
}

fn engine(fake: &FakePlatform, spec: &ProvisionSpec) -> Provisioner {
    let retry = RetryOptions { jitter: 0.0, ..RetryOptions::default() };
    fake.provisioner(spec, 4, retry, ProvisionOptions::default()).unwrap().provisioner
}

fn fic_names(fake: &FakePlatform) -> Vec<String> {
    let mut names: Vec<String> = fake.graph_fics(APP).into_iter().map(|f| f.name).collect();
    names.sort();
    names
}

/// Finding 1: `rotate --finish` deleted the old FIC that a plug-in outside the spec, bound by hand to the spec's
/// row and still signed with the old certificate, presents.
#[tokio::test(start_paused = true)]
async fn finishing_a_rotation_keeps_the_fic_a_plugin_outside_the_spec_still_presents() {
    let fake = fake();
    let ours = fake.add_registered_assembly(HOST, "Contoso.Plugins", &signed("signed.dll"));
    let legacy = fake.add_registered_assembly(HOST, "Legacy.Plugins", &signed("signed.dll"));
    let base = spec(&["Contoso.Plugins"]);
    let engine = engine(&fake, &base);
    assert!(engine.apply(&engine.plan(&base).await.unwrap()).await.is_success());
    // Bound by hand to the spec's own row: it presents the same subject (the row is not part of it).
    fake.seed_binding(HOST, legacy, Some(managed_identity_row_id(APP, TENANT, ENV)));
    assert!(fake.run_plugin(HOST, ours, "Contoso.Plugins.Account"));
    assert!(fake.run_plugin(HOST, legacy, "Legacy.Plugins.Sync"), "before");

    // Rotate: add the new certificate, re-sign and register the spec's plug-in, finish.
    assert!(
        engine.apply(&engine.plan(&base.adding_certificate(file("renewed.cer"))).await.unwrap()).await.is_success()
    );
    fake.register_content(HOST, ours, &signed("renewed.dll"));
    let before = fic_names(&fake);
    let finish = engine.plan(&base.finishing_rotation(file("renewed.cer"))).await.unwrap();
    assert!(!finish.actions.iter().any(|a| matches!(a, Action::DeleteFic { .. })), "{finish}");
    let text = finish.to_string();
    assert!(text.contains("kept the FIC"), "{text}");
    assert!(text.contains("Legacy.Plugins (plug-in assembly, bound to this spec's row"), "{text}");
    assert!(engine.apply(&finish).await.is_success());
    assert_eq!(fic_names(&fake), before, "nothing deleted");
    assert!(fake.run_plugin(HOST, legacy, "Legacy.Plugins.Sync"), "after: the legacy plug-in still gets tokens");
    assert!(fake.run_plugin(HOST, ours, "Contoso.Plugins.Account"), "after: ours too");

    // Once the legacy plug-in is re-signed too, the finish completes.
    fake.register_content(HOST, legacy, &signed("renewed.dll"));
    let finish = engine.plan(&base.finishing_rotation(file("renewed.cer"))).await.unwrap();
    assert!(finish.kept_fics().is_empty(), "{finish}");
    assert_eq!(finish.actions.iter().filter(|a| matches!(a, Action::DeleteFic { .. })).count(), 1, "{finish}");
    assert!(engine.apply(&finish).await.is_success());
    assert!(fake.run_plugin(HOST, legacy, "Legacy.Plugins.Sync"));
    assert!(fake.run_plugin(HOST, ours, "Contoso.Plugins.Account"));
}

/// Finding 2: `destroy` deleted the only FIC that a plug-in bound to another row of the same application presents.
#[tokio::test(start_paused = true)]
async fn destroy_keeps_the_fic_a_plugin_bound_to_another_row_of_the_application_presents() {
    let fake = fake();
    let ours = fake.add_registered_assembly(HOST, "Contoso.Plugins", &signed("signed.dll"));
    let integrations = fake.add_registered_package(HOST, "contoso_Integrations", &signed("signed.nupkg"));
    let base = spec(&["Contoso.Plugins"]);
    let engine = engine(&fake, &base);
    assert!(engine.apply(&engine.plan(&base).await.unwrap()).await.is_success());
    // A second row of the same application (imported with a solution, or made by hand), with a package signed by
    // the same certificate bound to it.
    let other_row = Uuid::from_u128(0x51);
    let row: ManagedIdentity = serde_json::from_value(serde_json::json!({
        "managedidentityid": other_row,
        "name": "Integrations",
        "applicationid": APP,
        "tenantid": TENANT,
        "credentialsource": 2,
        "subjectscope": 1,
        "version": 2,
    }))
    .unwrap();
    fake.seed_managed_identity(HOST, row);
    fake.seed_binding(HOST, integrations, Some(other_row));
    assert!(fake.run_plugin(HOST, integrations, "Contoso.Integrations.Sync"), "before");

    let plan = engine.plan_destroy(&base, DestroyOptions::default()).await.unwrap();
    assert!(!plan.steps.iter().any(|s| matches!(s, DestroyStep::DeleteFic { .. })), "{plan}");
    let text = plan.to_string();
    assert!(
        text.contains(&format!("contoso_Integrations (plug-in package, bound to another row ({other_row})")),
        "{text}"
    );
    let report = engine.destroy(&plan).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(fake.binding(HOST, ours), None, "ours is unbound");
    assert_eq!(fake.graph_fics(APP).len(), 1, "the FIC stays");
    assert!(fake.run_plugin(HOST, integrations, "Contoso.Integrations.Sync"), "after: it still gets tokens");
}

/// Finding 3: ownership was a name prefix, so `destroy` deleted a FIC made by hand named like ours whose subject no
/// certificate of the spec produces; and `dataverse-mi fic` named its FICs as apply does.
#[tokio::test(start_paused = true)]
async fn only_provably_own_fics_are_deleted() {
    let fake = fake();
    let ours = fake.add_registered_assembly(HOST, "Contoso.Plugins", &signed("signed.dll"));
    let base = spec(&["Contoso.Plugins"]);
    let engine = engine(&fake, &base);
    assert!(engine.apply(&engine.plan(&base).await.unwrap()).await.is_success());
    let made = fake.graph_fics(APP).remove(0);
    // A look-alike made by hand, and one added by hand from `dataverse-mi fic`'s output.
    let hand = FederatedIdentityCredential {
        name: format!("dataverse-{ENV}-handmade0001"),
        subject: made.subject.replace("/e/", "/e/x"),
        ..made.clone()
    };
    fake.seed_graph_fic(APP, hand.clone());
    let manual_subject = made.subject.replace(&ENV.to_string(), "11111111-2222-4333-8444-555555555555");
    let manual = FederatedIdentityCredential {
        name: dataverse_mi::fic::manual_name(ENV, &manual_subject),
        subject: manual_subject,
        ..made.clone()
    };
    fake.seed_graph_fic(APP, manual.clone());
    assert!(fake.run_plugin(HOST, ours, "Contoso.Plugins.Account"));

    let plan = engine.plan_destroy(&base, DestroyOptions::default()).await.unwrap();
    let deleted: Vec<&str> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            DestroyStep::DeleteFic { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deleted, [made.name.as_str()], "{plan}");
    assert!(engine.destroy(&plan).await.is_success());
    let mut left = fic_names(&fake);
    left.sort();
    let mut expected = vec![hand.name.clone(), manual.name.clone()];
    expected.sort();
    assert_eq!(left, expected);
    // The spec's own plug-in is unbound and its row gone: it no longer gets tokens, by the user's choice.
    assert!(!fake.run_plugin(HOST, ours, "Contoso.Plugins.Account"));
}

/// In doubt, nothing is deleted: a plug-in bound to the application's row whose subject neither the platform nor
/// its registered bytes tell keeps every FIC of its environment, and the plan says why.
#[tokio::test(start_paused = true)]
async fn a_plugin_whose_subject_cannot_be_told_keeps_the_fics() {
    let fake = fake();
    let ours = fake.add_registered_assembly(HOST, "Contoso.Plugins", &signed("signed.dll"));
    let base = spec(&["Contoso.Plugins"]);
    let engine = engine(&fake, &base);
    assert!(engine.apply(&engine.plan(&base).await.unwrap()).await.is_success());
    // Registered without bytes the platform can read back, and the platform does not answer for it.
    let mystery = fake.add_plugin_assembly(HOST, "Mystery.Plugins", None);
    fake.seed_binding(HOST, mystery, Some(managed_identity_row_id(APP, TENANT, ENV)));
    fake.inject(dataverse_mi::testkit::Fault::status("GET dataverse GetComponentManagedIdentityFIC", 500).times(1000));
    let mut pruning = base.adding_certificate(file("renewed.cer"));
    pruning.prune = true;
    assert!(engine.apply(&engine.plan(&pruning).await.unwrap()).await.is_success());
    fake.register_content(HOST, ours, &signed("renewed.dll"));
    let plan = engine.plan(&base.finishing_rotation(file("renewed.cer"))).await.unwrap();
    assert!(!plan.actions.iter().any(|a| matches!(a, Action::DeleteFic { .. })), "{plan}");
    assert!(
        matches!(&plan.kept_fics()[..], [PlanNote::FicKept { users, .. }] if users.iter().any(|u| u.name == "Mystery.Plugins")),
        "{plan}"
    );
}
