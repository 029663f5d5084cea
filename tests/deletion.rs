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
    fake.inject(
        dataverse_mi::testkit::Fault::status("GET dataverse GetComponentManagedIdentityFIC".parse().unwrap(), 500)
            .times(1000),
    );
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

const SUB: &str = "00000000-0000-0000-0000-0000000000aa";
const RG: &str = "rg-plugins";
const VAULT: &str =
    "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/rg-app/providers/Microsoft.KeyVault/vaults/kv";

/// A spec on a user-assigned identity, with `create` (create when missing) and one grant.
fn uami_spec(host: &str, name: &str) -> ProvisionSpec {
    ProvisionSpec::from_toml(&format!(
        r#"
        [identity]
        kind = "user-assigned"
        subscription_id = "{SUB}"
        resource_group = "{RG}"
        name = "{name}"
        create = {{ location = "westeurope" }}
        [[environments]]
        org_url = "https://{host}"
        plugin_assemblies = ["Contoso.Plugins"]
        [[grants]]
        role = "Key Vault Secrets User"
        scope = "{VAULT}"
        "#
    ))
    .unwrap()
}

fn uami_engine(fake: &FakePlatform, spec: &ProvisionSpec) -> Provisioner {
    let retry = RetryOptions { jitter: 0.0, ..RetryOptions::default() };
    fake.provisioner(spec, 4, retry, ProvisionOptions::default()).unwrap().provisioner
}

fn all() -> DestroyOptions {
    DestroyOptions::default().with_role_assignments(true).with_identity(true)
}

fn kept_text(plan: &dataverse_mi::provision::DestroyPlan) -> String {
    plan.kept.iter().map(|k| format!("{}: {}", k.what, k.why)).collect::<Vec<_>>().join("\n")
}

/// Finding 7: `destroy --identity` deleted a user-assigned identity made by hand (`create` means "create when
/// missing"). Only one this tool created, as its own tag records, goes, and only when nothing else uses it.
#[tokio::test(start_paused = true)]
async fn destroy_deletes_only_an_identity_this_tool_created_and_nothing_else_uses() {
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_environment_with_id(HOST, TENANT, ENV.into());
    let plugin = fake.add_registered_assembly(HOST, "Contoso.Plugins", &signed("signed.dll"));
    // Made by hand (`az identity create`), used by other workloads.
    fake.add_user_assigned_identity(SUB, RG, "by-hand", TENANT);
    let spec = uami_spec(HOST, "by-hand");
    let engine = uami_engine(&fake, &spec);
    assert!(engine.apply(&engine.plan(&spec).await.unwrap()).await.is_success());
    assert!(fake.run_plugin(HOST, plugin, "Contoso.Plugins.Account"));
    let plan = engine.plan_destroy(&spec, all()).await.unwrap();
    assert!(!plan.steps.iter().any(|s| matches!(s, DestroyStep::DeleteIdentity { .. })), "{plan}");
    assert!(kept_text(&plan).contains("creation tag"), "{}", kept_text(&plan));
    assert!(engine.destroy(&plan).await.is_success());
    assert!(fake.user_assigned_identity(SUB, RG, "by-hand").is_some(), "made by hand: it stays");

    // Created by apply: tagged, and deleted by destroy when nothing else uses it.
    let spec = uami_spec(HOST, "made-here");
    let engine = uami_engine(&fake, &spec);
    fake.seed_binding(HOST, plugin, None);
    assert!(engine.apply(&engine.plan(&spec).await.unwrap()).await.is_success());
    assert!(fake.run_plugin(HOST, plugin, "Contoso.Plugins.Account"));
    let (_, principal) = fake.user_assigned_identity(SUB, RG, "made-here").unwrap();
    // ... but not while another workload's role assignment (made by hand) names it.
    fake.seed_role_assignment(&format!("/subscriptions/{SUB}/resourceGroups/rg-app"), "Reader", principal).unwrap();
    let plan = engine.plan_destroy(&spec, all()).await.unwrap();
    assert!(!plan.steps.iter().any(|s| matches!(s, DestroyStep::DeleteIdentity { .. })), "{plan}");
    assert!(kept_text(&plan).contains("role assignments this spec did not make"), "{}", kept_text(&plan));
}

#[tokio::test(start_paused = true)]
async fn destroy_deletes_an_identity_it_created_when_nothing_else_uses_it() {
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_environment_with_id(HOST, TENANT, ENV.into());
    let plugin = fake.add_registered_assembly(HOST, "Contoso.Plugins", &signed("signed.dll"));
    let spec = uami_spec(HOST, "made-here");
    let engine = uami_engine(&fake, &spec);
    assert!(engine.apply(&engine.plan(&spec).await.unwrap()).await.is_success());
    assert!(fake.run_plugin(HOST, plugin, "Contoso.Plugins.Account"));
    let plan = engine.plan_destroy(&spec, all()).await.unwrap();
    assert!(plan.steps.iter().any(|s| matches!(s, DestroyStep::DeleteIdentity { .. })), "{plan}");
    assert!(engine.destroy(&plan).await.is_success());
    assert!(fake.user_assigned_identity(SUB, RG, "made-here").is_none());
    assert!(fake.role_assignments().is_empty());
}

/// Finding 8: `destroy --role-assignments` deleted an assignment made by hand before the spec (adopted by plan),
/// and one a second spec sharing the identity relies on.
#[tokio::test(start_paused = true)]
async fn destroy_deletes_only_role_assignments_this_spec_made_and_no_one_else_relies_on() {
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_environment_with_id(HOST, TENANT, ENV.into());
    let other_host = "fabrikam.crm.dynamics.com";
    fake.add_environment(other_host, TENANT);
    fake.add_registered_assembly(HOST, "Contoso.Plugins", &signed("signed.dll"));
    let theirs = fake.add_registered_assembly(other_host, "Contoso.Plugins", &signed("signed.dll"));
    let (_, principal) = fake.add_user_assigned_identity(SUB, RG, "shared", TENANT);
    // Made by hand before any spec: plan finds it in place and adopts it.
    fake.seed_role_assignment(VAULT, "Key Vault Secrets User", principal).unwrap();
    let a = uami_spec(HOST, "shared");
    let b = uami_spec(other_host, "shared");
    let engine_a = uami_engine(&fake, &a);
    let engine_b = uami_engine(&fake, &b);
    let plan = engine_a.plan(&a).await.unwrap();
    assert!(!plan.actions.iter().any(|x| matches!(x, Action::AssignRole { .. })), "adopted: {plan}");
    assert!(engine_a.apply(&plan).await.is_success());
    assert!(engine_b.apply(&engine_b.plan(&b).await.unwrap()).await.is_success());
    let plan = engine_a.plan_destroy(&a, all()).await.unwrap();
    assert!(!plan.steps.iter().any(|s| matches!(s, DestroyStep::DeleteRoleAssignment { .. })), "{plan}");
    assert!(kept_text(&plan).contains("this spec did not make it"), "{}", kept_text(&plan));
    assert!(engine_a.destroy(&plan).await.is_success());
    assert_eq!(fake.role_assignments().len(), 1);
    assert!(fake.run_plugin(other_host, theirs, "Contoso.Plugins.Account"));
    assert!(engine_b.verify(&b).await.unwrap().is_ok(), "the second spec's grant is still there");

    // Now a grant this spec made itself, on an identity a second spec still uses: kept too.
    for r in fake.role_assignments() {
        assert!(fake.remove_role_assignment(&r.id));
    }
    assert!(engine_a.apply(&engine_a.plan(&a).await.unwrap()).await.is_success());
    assert_eq!(fake.role_assignments().len(), 1, "made by spec A under its own name");
    let plan = engine_a.plan_destroy(&a, all()).await.unwrap();
    assert!(!plan.steps.iter().any(|s| matches!(s, DestroyStep::DeleteRoleAssignment { .. })), "{plan}");
    assert!(kept_text(&plan).contains("whoever uses them may rely on it"), "{}", kept_text(&plan));
    assert!(engine_a.destroy(&plan).await.is_success());
    assert!(engine_b.verify(&b).await.unwrap().is_ok(), "the second spec's grant is still there");
}

/// Finding 9: a user-assigned identity in another tenant than the environments' passed plan, apply and verify.
#[tokio::test(start_paused = true)]
async fn an_identity_of_another_tenant_is_refused_before_any_write() {
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_environment_with_id(HOST, TENANT, ENV.into());
    fake.add_registered_assembly(HOST, "Contoso.Plugins", &signed("signed.dll"));
    fake.add_user_assigned_identity(SUB, RG, "elsewhere", Uuid::from_u128(0x77));
    let spec = uami_spec(HOST, "elsewhere");
    let engine = uami_engine(&fake, &spec);
    fake.clear_log();
    let err = engine.plan(&spec).await.unwrap_err();
    assert!(matches!(err, dataverse_mi::provision::ProvisionError::IdentityInOtherTenant { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("https://{HOST}")), "{err}");
    assert_eq!(fake.writes(), 0);
    assert!(engine.verify(&spec).await.is_err());
}

/// Finding 10: ARM's concurrent-write 409 was retried on FIC creates only. Two runs on one identity (two engines,
/// as two processes would be) write at once: the fake refuses the overlap as ARM does, and both runs succeed, deletes
/// included.
#[tokio::test(start_paused = true)]
async fn concurrent_fic_writes_to_one_identity_are_retried_creates_and_deletes_alike() {
    let fake =
        FakePlatform::new(FakeOptions { latency: std::time::Duration::from_millis(20), ..FakeOptions::default() });
    let hosts = ["a.crm.dynamics.com", "b.crm.dynamics.com", "c.crm.dynamics.com", "d.crm.dynamics.com"];
    for host in hosts {
        fake.add_environment(host, TENANT);
        fake.add_registered_assembly(host, "Contoso.Plugins", &signed("signed.dll"));
    }
    fake.add_user_assigned_identity(SUB, RG, "shared", TENANT);
    let specs: Vec<ProvisionSpec> = hosts.iter().map(|h| uami_spec(h, "shared")).collect();
    let engines: Vec<Provisioner> = specs.iter().map(|s| uami_engine(&fake, s)).collect();
    let applies = specs.iter().zip(&engines).map(|(s, e)| async move { e.apply(&e.plan(s).await.unwrap()).await });
    for report in futures_util::future::join_all(applies).await {
        assert!(report.is_success(), "{report}");
    }
    let conflicts = |method: &str| {
        fake.requests().iter().filter(|r| r.route == format!("{method} arm fic") && r.status == 409 && !r.fault).count()
    };
    assert!(conflicts("PUT") > 0, "the overlap happened and was refused");
    assert_eq!(fake.uami_fics(SUB, RG, "shared").len(), 4);
    let destroys = specs.iter().zip(&engines).map(|(s, e)| async move {
        let plan = e.plan_destroy(s, DestroyOptions::default()).await.unwrap();
        e.destroy(&plan).await
    });
    for report in futures_util::future::join_all(destroys).await {
        assert!(report.is_success(), "{report}");
    }
    assert!(conflicts("DELETE") > 0, "deletes overlapped too");
    assert!(fake.uami_fics(SUB, RG, "shared").is_empty());
}
