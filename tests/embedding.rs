//! What a service that embeds the engine hands it: a certificate from memory, a PFX password as a secret, the
//! production constructor.
#![cfg(feature = "testkit")]

use dataverse_mi::auth::Secret;
use dataverse_mi::cert::Certificate;
use dataverse_mi::clients::ClientOptions;
use dataverse_mi::provision::{
    CertificateSpec, EnvironmentSpec, IdentitySpec, ProvisionOptions, ProvisionSpec, Provisioner,
};
use dataverse_mi::testkit::{FakeOptions, FakePlatform, test_token};
use std::sync::Arc;
use uuid::Uuid;

const TENANT: Uuid = Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47);
const APP: Uuid = Uuid::from_u128(0x0b5a7d2c_6f4e_4d3a_9c1b_2a8e7f6d5c4b);
const HOST: &str = "contoso.crm.dynamics.com";

fn spec_with(certificate: CertificateSpec) -> ProvisionSpec {
    ProvisionSpec::new(
        IdentitySpec::app_registration(APP),
        vec![
            EnvironmentSpec::new(format!("https://{HOST}"))
                .with_assemblies(["Contoso.Plugins"])
                .with_certificate(certificate),
        ],
    )
}

fn fake_with(cert: &Certificate) -> FakePlatform {
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_application(APP, "Contoso plug-ins");
    fake.add_environment(HOST, TENANT);
    fake.add_plugin_assembly(HOST, "Contoso.Plugins", Some(cert.clone()));
    fake
}

#[tokio::test]
async fn a_certificate_held_in_memory() {
    let der = std::fs::read(format!("{}/examples/contoso-plugins.cer", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let cert = Certificate::from_der(&der).unwrap();
    let fake = fake_with(&cert);
    let spec = spec_with(cert.clone().into());
    let server = fake.start().await;
    let platform = server.client_platform(ClientOptions::default()).unwrap();
    let engine = Provisioner::for_spec(&spec, &platform, ProvisionOptions::default()).unwrap();
    let plan = engine.plan(&spec).await.unwrap();
    assert!(plan.environments[0].subject.ends_with(&format!("/h/{}", cert.sha256())));
    assert!(engine.apply(&plan).await.is_success());
    assert!(engine.verify(&spec).await.unwrap().is_ok());
    // It serializes as the certificate itself (Base64 DER), and reads back the same: a plan holding it can be stored.
    let json = serde_json::to_value(&spec).unwrap();
    assert!(json["environments"][0]["certificate"]["der"].as_str().is_some_and(|d| d.starts_with("MII")), "{json}");
    assert_eq!(serde_json::from_value::<ProvisionSpec>(json).unwrap(), spec);
    let stored: dataverse_mi::provision::Plan = serde_json::from_str(&serde_json::to_string(&plan).unwrap()).unwrap();
    assert_eq!(stored, plan);
}

#[tokio::test]
async fn a_pfx_password_as_a_secret_never_printed() {
    let pfx = format!("{}/tests/fixtures/leaf.pfx", env!("CARGO_MANIFEST_DIR"));
    let password = Secret::new("fixture");
    let cert = Certificate::from_file_with_password(&pfx, Some(&password)).unwrap().certificate;
    let fake = fake_with(&cert);
    let spec = spec_with(CertificateSpec::Pkcs12 { path: pfx.clone().into(), password });
    // The password ("fixture") stays out of Debug (the path, tests/fixtures/..., is taken out before looking).
    let shown = format!("{spec:?}").replace(&pfx, "");
    assert!(shown.contains("password: Secret") && !shown.contains("fixture"), "{shown}");
    let engine = fake.provisioner(&spec, 4, Default::default(), ProvisionOptions::default()).unwrap().provisioner;
    let plan = engine.plan(&spec).await.unwrap();
    // The plan stores the certificate read from the PFX, never the password.
    let stored = serde_json::to_string(&plan).unwrap().replace(&pfx, "");
    assert!(!stored.contains("fixture"), "{stored}");
    assert!(matches!(plan.spec.environments[0].certificate, CertificateSpec::Loaded { .. }));
    assert!(engine.apply(&plan).await.is_success());
    assert!(engine.verify(&spec).await.unwrap().is_ok());
    // A wrong password is an error that names the PFX, not the password.
    let wrong = spec_with(CertificateSpec::Pkcs12 {
        path: format!("{}/tests/fixtures/leaf.pfx", env!("CARGO_MANIFEST_DIR")).into(),
        password: Secret::new("not-the-password"),
    });
    let err = engine.plan(&wrong).await.unwrap_err().to_string();
    assert!(!err.contains("not-the-password"), "{err}");
}

#[tokio::test]
async fn verify_reports_every_problem_of_a_component_and_plan_every_missing_component() {
    use dataverse_mi::provision::{ComponentStatus, ProvisionError};
    let der = std::fs::read(format!("{}/examples/contoso-plugins.cer", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let cert = Certificate::from_der(&der).unwrap();
    let fake = fake_with(&cert);
    let spec = spec_with(cert.clone().into());
    let engine = fake.provisioner(&spec, 4, Default::default(), ProvisionOptions::default()).unwrap().provisioner;
    // Nothing is set up yet: not bound, no row, no FIC. All three, most important first.
    let verify = engine.verify(&spec).await.unwrap();
    let c = &verify.components[0];
    assert_eq!(c.status, ComponentStatus::NotBound);
    assert!(
        matches!(
            &c.problems[..],
            [ComponentStatus::NotBound, ComponentStatus::MissingRow, ComponentStatus::MissingFic { .. }]
        ),
        "{:?}",
        c.problems
    );
    let text = verify.to_string();
    assert!(text.contains("not bound; no managed identity row in the environment; missing FIC for"), "{text}");
    assert!(engine.apply(&engine.plan(&spec).await.unwrap()).await.is_success());
    let verify = engine.verify(&spec).await.unwrap();
    assert!(verify.is_ok() && verify.components[0].problems.is_empty(), "{verify}");

    // Two environments, three components missing between them: one error names all three, before any write.
    fake.add_environment("fabrikam.crm.dynamics.com", TENANT);
    let mut wide = spec_with(cert.into());
    wide.environments[0].plugin_assemblies = vec!["Contoso.Plugins".into(), "Missing.One".into(), "Missing.Two".into()];
    let mut second = wide.environments[0].clone();
    second.org_url = "https://fabrikam.crm.dynamics.com".into();
    second.plugin_assemblies = vec![];
    second.plugin_packages = vec!["missing_package".into()];
    wide.environments.push(second);
    fake.clear_log();
    let err = engine.plan(&wide).await.unwrap_err();
    let ProvisionError::ComponentsNotFound { missing } = &err else { panic!("{err}") };
    let names: Vec<&str> = missing.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["Missing.One", "Missing.Two", "missing_package"]);
    let text = err.to_string();
    assert!(text.contains("https://fabrikam.crm.dynamics.com: no pluginpackage named 'missing_package'"), "{text}");
    assert_eq!(fake.writes(), 0);
}

#[tokio::test]
async fn a_plan_made_before_the_identity_exists_has_no_nil_sentinels() {
    use dataverse_mi::provision::Action;
    let der = std::fs::read(format!("{}/examples/contoso-plugins.cer", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let cert = Certificate::from_der(&der).unwrap();
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_environment(HOST, TENANT);
    fake.add_plugin_assembly(HOST, "Contoso.Plugins", Some(cert.clone()));
    let mut spec = spec_with(cert.into());
    spec.identity = IdentitySpec::app_registration_named("Contoso plug-ins", true);
    let engine = fake.provisioner(&spec, 4, Default::default(), ProvisionOptions::default()).unwrap().provisioner;
    let plan = engine.plan(&spec).await.unwrap();
    assert_eq!(plan.environments[0].managed_identity_id, None);
    assert!(plan.actions.iter().any(|a| matches!(a, Action::CreateManagedIdentity { row: None, .. })));
    assert!(plan.actions.iter().any(|a| matches!(a, Action::Bind { managed_identity: None, .. })));
    let json = serde_json::to_string(&plan).unwrap();
    assert!(!json.contains("00000000-0000-0000-0000-000000000000"), "{json}");
    let report = engine.apply(&plan).await;
    assert!(report.is_success(), "{report}");
    assert!(engine.verify(&spec).await.unwrap().is_ok());
}

#[tokio::test]
async fn a_stored_plan_is_applied_as_it_is_or_refused_when_stale() {
    use dataverse_mi::provision::{Action, Plan, PlanChange, ProvisionError};
    let der = std::fs::read(format!("{}/examples/contoso-plugins.cer", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let cert = Certificate::from_der(&der).unwrap();
    let fake = fake_with(&cert);
    let spec = spec_with(CertificateSpec::File {
        path: format!("{}/examples/contoso-plugins.cer", env!("CARGO_MANIFEST_DIR")).into(),
        password_env: None,
    });
    let engine = fake.provisioner(&spec, 4, Default::default(), ProvisionOptions::default()).unwrap().provisioner;

    // Plan, store, read back: the same plan, spec included; the stored form says its format and digest.
    let plan = engine.plan(&spec).await.unwrap();
    let stored = plan.to_stored().unwrap();
    let document: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(document["format"], serde_json::json!(dataverse_mi::provision::PLAN_FORMAT));
    assert!(document["digest"].as_str().unwrap().starts_with("sha256:"), "{document}");
    let read = Plan::from_stored(&stored).unwrap();
    assert_eq!(read, plan);
    assert_eq!(read.spec(), spec);
    // A stored plan edited by hand (its subject replaced in the file) does not read back.
    let subject = &plan.environments[0].subject;
    let tampered =
        String::from_utf8(stored.clone()).unwrap().replace(subject.as_str(), &subject.replace("/h/", "/h/0"));
    assert_ne!(tampered.as_bytes(), stored.as_slice());
    let err = Plan::from_stored(tampered.as_bytes()).unwrap_err();
    assert!(matches!(err, dataverse_mi::provision::StoredPlanError::Digest { .. }), "{err}");
    let err = engine.apply_stored(tampered.as_bytes()).await.unwrap_err();
    assert!(matches!(err, ProvisionError::StoredPlan(_)), "{err}");

    // Someone binds the assembly elsewhere meanwhile: the stored plan is stale, refused before any write, naming
    // the component, its old and new binding.
    let other_row = Uuid::from_u128(0xdead);
    let assembly = plan.environments[0].components[0].id;
    fake.seed_managed_identity(
        HOST,
        serde_json::from_value(serde_json::json!({"managedidentityid": other_row})).unwrap(),
    );
    fake.seed_binding(HOST, assembly, Some(other_row));
    fake.clear_log();
    let err = engine.apply_stored(&stored).await.unwrap_err();
    let ProvisionError::StalePlan { changes } = &err else { panic!("{err}") };
    assert_eq!(
        changes,
        &[PlanChange::Binding {
            org_url: format!("https://{HOST}"),
            component: "Contoso.Plugins".into(),
            before: None,
            now: Some(other_row),
        }]
    );
    assert!(
        err.to_string().contains(&format!("Contoso.Plugins was bound to none and is now bound to {other_row}")),
        "{err}"
    );
    assert_eq!(fake.writes(), 0);

    // Put back as it was. A plan edited after approval (issue 21, finding 4) is refused: one whose FIC subject was
    // replaced, because no certificate of the spec gives that subject (by apply_if_current and by apply alike)...
    fake.seed_binding(HOST, assembly, None);
    let mut edited = read.clone();
    for action in &mut edited.actions {
        if let Action::CreateFic { fic, .. } = action {
            fic.subject = fic.subject.replace("/h/", "/h/0").chars().take(fic.subject.len()).collect();
        }
    }
    assert_ne!(edited, read);
    let err = engine.apply_if_current(&edited).await.unwrap_err();
    let ProvisionError::UnexplainedSubjects { actions } = &err else { panic!("{err}") };
    assert!(actions[0].contains("is not one the spec's certificates give"), "{actions:?}");
    let report = engine.apply(&edited).await;
    assert!(!report.is_success() && report.to_string().contains("does not account for"), "{report}");
    assert_eq!(fake.writes(), 0);
    // ... and one with an action taken out (the bind), because a fresh plan of its spec has it.
    let mut edited = read.clone();
    edited.actions.retain(|a| !matches!(a, Action::Bind { .. }));
    let err = engine.apply_if_current(&edited).await.unwrap_err();
    let ProvisionError::StalePlan { changes } = &err else { panic!("{err}") };
    assert!(
        matches!(&changes[..], [PlanChange::ActionMissing { action }] if action.starts_with("bind")),
        "{changes:?}"
    );
    assert_eq!(fake.writes(), 0);
    // The stored plan as approved applies, exactly as planned.
    let report = engine.apply_stored(&stored).await.unwrap();
    assert!(report.is_success(), "{report}");
    assert_eq!(report.actions.len(), plan.actions.len());
    // Applied twice (a job run again): it says so, and does nothing.
    fake.clear_log();
    let err = engine.apply_stored(&stored).await.unwrap_err();
    assert!(matches!(err, ProvisionError::AlreadyApplied), "{err}");
    assert_eq!(fake.writes(), 0);
    assert!(engine.verify(&spec).await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn watch_as_a_stream_reports_each_failure_once() {
    use dataverse_mi::provision::WatchOptions;
    use futures_util::StreamExt as _;
    use std::time::{Duration, SystemTime};
    let der = std::fs::read(format!("{}/examples/contoso-plugins.cer", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let cert = Certificate::from_der(&der).unwrap();
    let fake = fake_with(&cert);
    let spec = spec_with(cert.into());
    let engine = fake.provisioner(&spec, 4, Default::default(), ProvisionOptions::default()).unwrap().provisioner;
    let plan = engine.plan(&spec).await.unwrap();
    assert!(engine.apply(&plan).await.is_success());
    let assembly = plan.environments[0].components[0].id;
    // Tracing is switched on by the first pass, which finds nothing.
    let options = WatchOptions::since(SystemTime::UNIX_EPOCH).enable_tracing(true);
    let passes = engine.watch_stream(spec.clone(), options, Duration::from_secs(30));
    tokio::pin!(passes);
    let first = passes.next().await.unwrap().unwrap();
    assert!(first.failures.is_empty());
    // The FIC goes away: the plug-in's token request fails with AADSTS700213.
    assert!(fake.remove_graph_fic(APP, &plan.environments[0].fic.name));
    assert!(!fake.run_plugin(HOST, assembly, "Contoso.Plugins.Reader"));
    let second = passes.next().await.unwrap().unwrap();
    assert_eq!(second.failures.len(), 1, "the failure, once");
    let third = passes.next().await.unwrap().unwrap();
    assert!(third.failures.is_empty(), "not again: the next pass starts after the newest row");
}

#[test]
fn since_is_a_duration_back_or_a_time() {
    use dataverse_mi::provision::parse_since;
    use std::time::{Duration, SystemTime};
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    assert_eq!(parse_since("1h", now).unwrap(), now - Duration::from_secs(3600));
    assert_eq!(parse_since("1h 30m", now).unwrap(), now - Duration::from_secs(5400));
    assert_eq!(parse_since("2d", now).unwrap(), now - Duration::from_secs(2 * 86_400));
    assert_eq!(
        parse_since("2026-11-22T10:00:00Z", now).unwrap(),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_341_600)
    );
    for bad in ["", "yesterday", "1x", "2026-13-40T00:00:00Z", "99999999999999999999d"] {
        let err = parse_since(bad, now).unwrap_err();
        assert!(err.to_string().contains("RFC 3339"), "{bad}: {err}");
    }
}

/// Two teams, each with its app registration, on one environment and one plug-in, served over loopback.
struct TwoTeams {
    fake: FakePlatform,
    server: dataverse_mi::testkit::FakeServer,
    other_app: Uuid,
    ours: ProvisionSpec,
    theirs: ProvisionSpec,
}

/// An engine for `spec` by the production constructor, at the fake served by `server`.
fn engine_at(server: &dataverse_mi::testkit::FakeServer, spec: &ProvisionSpec) -> Provisioner {
    let platform = server.client_platform(ClientOptions::default()).unwrap();
    Provisioner::for_spec(spec, &platform, ProvisionOptions::default()).unwrap()
}

async fn two_teams() -> TwoTeams {
    let der = std::fs::read(format!("{}/examples/contoso-plugins.cer", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let cert = Certificate::from_der(&der).unwrap();
    let fake = fake_with(&cert);
    let other_app = Uuid::from_u128(0xdef);
    fake.add_application(other_app, "Fabrikam plug-ins");
    let ours = spec_with(cert.into());
    let mut theirs = ours.clone();
    theirs.identity = IdentitySpec::app_registration(other_app);
    let server = fake.start().await;
    TwoTeams { fake, server, other_app, ours, theirs }
}

/// A shared engine built for one identity was handed another team's spec and provisioned it with its own identity
/// (issue 21, finding 1). Now the spec, or a stored plan made for another identity, is refused before any request.
#[tokio::test]
async fn an_engine_refuses_a_spec_or_plan_of_another_identity_before_any_request() {
    let TwoTeams { fake, server, other_app, ours, theirs } = two_teams().await;
    let connect = |spec: &ProvisionSpec| engine_at(&server, spec);
    let engine = connect(&ours);
    fake.clear_log();
    let err = engine.plan(&theirs).await.unwrap_err();
    assert!(matches!(err, dataverse_mi::provision::ProvisionError::OtherIdentity { .. }), "{err:?}");
    assert!(err.to_string().contains(&other_app.to_string()) && err.to_string().contains(&APP.to_string()), "{err}");
    assert!(engine.verify(&theirs).await.is_err());
    assert!(engine.plan_destroy(&theirs, Default::default()).await.is_err());
    // Another cloud is another engine too.
    let mut elsewhere = ours.clone();
    elsewhere.cloud = dataverse_mi::cloud::Cloud::UsGov;
    assert!(engine.plan(&elsewhere).await.is_err());
    assert!(fake.requests().is_empty(), "nothing was sent: {:?}", fake.requests());

    // A plan made by the other team's engine, handed to ours: nothing is carried out.
    let their_plan = connect(&theirs).plan(&theirs).await.unwrap();
    fake.clear_log();
    let report = engine.apply(&their_plan).await;
    assert!(!report.is_success(), "{report}");
    assert!(report.to_string().contains("this engine provisions"), "{report}");
    assert_eq!(fake.writes(), 0);
    assert!(fake.graph_fics(APP).is_empty() && fake.graph_fics(other_app).is_empty());
}

/// A plug-in bound by hand to another team's row was rebound by plan without a word, and the other team's plug-in
/// then got this identity's tokens (issue 21, finding 2). Now it is left as it is, and the plan names the row, its
/// application and name; `take_over` rebinds it.
#[tokio::test]
async fn a_component_bound_to_another_teams_row_is_not_taken_over_silently() {
    let TwoTeams { fake: _fake, server, other_app, ours, theirs } = two_teams().await;
    let connect = |spec: &ProvisionSpec| engine_at(&server, spec);
    // The other team provisioned the plug-in for its own identity first.
    let their_engine = connect(&theirs);
    assert!(their_engine.apply(&their_engine.plan(&theirs).await.unwrap()).await.is_success());
    let engine = connect(&ours);
    let plan = engine.plan(&ours).await.unwrap();
    assert!(!plan.actions.iter().any(|a| matches!(a, dataverse_mi::provision::Action::Bind { .. })), "{plan}");
    let text = plan.to_string();
    assert!(text.contains("is bound to another row"), "{text}");
    assert!(text.contains(&other_app.to_string()), "names the row's application: {text}");
    assert!(engine.apply(&plan).await.is_success());
    assert!(their_engine.verify(&theirs).await.unwrap().is_ok(), "the other team's setup is untouched");

    // Asked explicitly, it is taken over.
    let mut taking = ours.clone();
    taking.take_over = true;
    let plan = engine.plan(&taking).await.unwrap();
    assert!(plan.actions.iter().any(|a| matches!(a, dataverse_mi::provision::Action::Bind { .. })), "{plan}");
    // The plan says from what: the row, its application, in the note and in the bind itself.
    let e = &plan.environments[0];
    let their_row = dataverse_mi::entities::managed_identity_row_id(other_app, e.tenant_id, e.environment_id);
    let text = plan.to_string();
    assert!(text.contains(&format!("taken over from row {their_row}")), "{text}");
    assert!(text.contains(&format!("taking it over from row {their_row}")), "{text}");
    assert!(text.contains(&other_app.to_string()), "{text}");
    assert!(engine.apply(&plan).await.is_success());
    assert!(engine.verify(&ours).await.unwrap().is_ok());
}

/// A solution import brings the source environment's row (its application and tenant) with the components bound
/// to it (DOMAIN.md). Without `adopt` the plan leaves it and makes a second row; with it, the imported row is
/// updated in place. A row made here for another application is never adopted: it is another team's.
#[tokio::test]
async fn a_row_a_solution_import_brought_is_adopted_in_place_when_asked() {
    use dataverse_mi::entities::{ManagedIdentity, managed_identity_row_id};
    use dataverse_mi::provision::{Action, PlanNote};
    let TwoTeams { fake, server, other_app, ours, .. } = two_teams().await;
    let engine = engine_at(&server, &ours);
    let plan = engine.plan(&ours).await.unwrap();
    let component = plan.environments[0].components[0].id;
    // The source environment's row, as the import brought it: another tenant, the source's application.
    let source_tenant = Uuid::from_u128(0x5);
    let imported = Uuid::from_u128(0x1111);
    let row: ManagedIdentity = serde_json::from_value(serde_json::json!({
        "managedidentityid": imported,
        "name": "Contoso plug-ins (from dev)",
        "applicationid": other_app,
        "tenantid": source_tenant,
        "version": 1,
    }))
    .unwrap();
    fake.seed_managed_identity(HOST, row);
    fake.seed_binding(HOST, component, Some(imported));

    // Not asked: left as it is, and the plan says adopt would update it.
    let plan = engine.plan(&ours).await.unwrap();
    assert!(plan.actions.iter().any(|a| matches!(a, Action::CreateManagedIdentity { .. })), "{plan}");
    assert!(!plan.actions.iter().any(|a| matches!(a, Action::Bind { .. })), "{plan}");
    assert!(plan.to_string().contains("--adopt"), "{plan}");

    // Asked: the imported row is updated in place, nothing else is made, and the plan text says so.
    let mut adopting = ours.clone();
    adopting.adopt = true;
    let plan = engine.plan(&adopting).await.unwrap();
    assert!(
        !plan.actions.iter().any(|a| matches!(a, Action::CreateManagedIdentity { .. } | Action::Bind { .. })),
        "{plan}"
    );
    assert!(
        plan.actions.iter().any(|a| matches!(a, Action::UpdateManagedIdentity { id, update, .. }
            if *id == imported && update.application_id == Some(APP) && update.tenant_id == Some(TENANT))),
        "{plan}"
    );
    assert!(plan.notes.iter().any(
        |n| matches!(n, PlanNote::Adopted { row, tenant_id: Some(t), .. } if *row == imported && *t == source_tenant)
    ));
    assert!(plan.to_string().contains(&format!("adopting row {imported}")), "{plan}");
    assert!(engine.apply(&plan).await.is_success());
    assert_eq!(fake.managed_identities(HOST).len(), 1, "no second row");
    assert!(engine.verify(&ours).await.unwrap().is_ok(), "the adopted row is this identity's now");
    assert!(engine.plan(&ours).await.unwrap().is_empty(), "and stays so without adopt");

    // A row made in this environment for another application is another team's: never adopted.
    let fake2 = fake_with(
        &Certificate::from_der(
            &std::fs::read(format!("{}/examples/contoso-plugins.cer", env!("CARGO_MANIFEST_DIR"))).unwrap(),
        )
        .unwrap(),
    );
    let server2 = fake2.start().await;
    let engine2 = engine_at(&server2, &ours);
    let plan = engine2.plan(&ours).await.unwrap();
    let (environment_id2, component2) = (plan.environments[0].environment_id, plan.environments[0].components[0].id);
    let theirs = managed_identity_row_id(other_app, TENANT, environment_id2);
    let row: ManagedIdentity = serde_json::from_value(serde_json::json!({
        "managedidentityid": theirs, "applicationid": other_app, "tenantid": TENANT, "version": 1,
    }))
    .unwrap();
    fake2.seed_managed_identity(HOST, row);
    fake2.seed_binding(HOST, component2, Some(theirs));
    let plan = engine2.plan(&adopting).await.unwrap();
    assert!(!plan.notes.iter().any(|n| matches!(n, PlanNote::Adopted { .. })), "{plan}");
    assert!(plan.notes.iter().any(|n| matches!(n, PlanNote::BoundElsewhere { row, .. } if *row == theirs)), "{plan}");
}

/// A credential that counts what it is asked, per scope.
#[derive(Debug, Default)]
struct CountingCredential(std::sync::Mutex<std::collections::BTreeMap<String, usize>>);

#[dataverse_mi::reexports::async_trait]
impl dataverse_mi::auth::TokenSource for CountingCredential {
    async fn token(&self, scopes: &[&str]) -> Result<dataverse_mi::auth::AccessToken, dataverse_mi::auth::AuthError> {
        *self.0.lock().unwrap().entry(scopes.join(" ")).or_default() += 1;
        test_token().token(scopes).await
    }
}

/// A service builds one client stack and shares it across concurrent requests: eight teams provisioned at once, on
/// eight spawned tasks, each with its own engine, fetch one token per scope (Graph, and each environment), not one
/// per engine or per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_provisionings_on_one_platform_fetch_one_token_per_scope() {
    let der = std::fs::read(format!("{}/examples/contoso-plugins.cer", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let cert = Certificate::from_der(&der).unwrap();
    let fake = FakePlatform::new(FakeOptions::default());
    let teams: Vec<(Uuid, String)> =
        (0..8u128).map(|i| (Uuid::from_u128(0xa0 + i), format!("team{i}.crm.dynamics.com"))).collect();
    for (app, host) in &teams {
        fake.add_application(*app, &format!("plug-ins of {host}"));
        fake.add_environment(host, TENANT);
        fake.add_plugin_assembly(host, "Contoso.Plugins", Some(cert.clone()));
    }
    let credential = Arc::new(CountingCredential::default());
    let options = ClientOptions { transport: Some(fake.transport()), ..ClientOptions::default() };
    let platform = dataverse_mi::clients::Platform::new(credential.clone(), options).unwrap();
    let mut tasks = Vec::new();
    for (app, host) in teams.clone() {
        let (platform, cert) = (platform.clone(), cert.clone());
        tasks.push(tokio::spawn(async move {
            let spec = ProvisionSpec::new(
                IdentitySpec::app_registration(app),
                vec![
                    EnvironmentSpec::new(format!("https://{host}"))
                        .with_assemblies(["Contoso.Plugins"])
                        .with_certificate(CertificateSpec::from(cert)),
                ],
            );
            let engine = Provisioner::for_spec(&spec, &platform, ProvisionOptions::default()).unwrap();
            let plan = engine.plan(&spec).await.unwrap();
            engine.apply(&plan).await.is_success()
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap());
    }
    let fetched = credential.0.lock().unwrap().clone();
    assert_eq!(fetched.len(), 1 + teams.len(), "Graph and each environment: {fetched:?}");
    assert!(fetched.contains_key("https://graph.microsoft.com/.default"), "{fetched:?}");
    assert!(fetched.values().all(|n| *n == 1), "one fetch per scope: {fetched:?}");
    assert!(platform.stats().requests() > 0, "the engines counted with the platform's counters");
}

/// The fake over loopback HTTP answers a `$batch` as Dataverse does (`multipart/mixed` with its boundary), so a client
/// reads the batch itself: before, wiremock's body type turned it into `application/json`, every batch failed as a
/// whole, and the engine quietly read one by one.
#[tokio::test]
async fn the_http_fake_answers_a_batch_a_client_can_read() {
    use dataverse_mi::clients::{Batch, dataverse::requests};
    let der = std::fs::read(format!("{}/examples/contoso-plugins.cer", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let server = fake_with(&Certificate::from_der(&der).unwrap()).start().await;
    let client = server.client_platform(ClientOptions::default()).unwrap().dataverse(HOST).unwrap();
    let mut batch = Batch::new();
    let organization = batch.add(requests::current_organization());
    let assemblies = batch.add(requests::plugin_assemblies_named(&["Contoso.Plugins"]));
    let mut answers = client.send_batch(&batch).await;
    assert!(answers.failed_as_a_whole().is_none(), "{:?}", answers.failed_as_a_whole());
    assert!(answers.take(organization).unwrap().tenant_id.is_some());
    assert_eq!(answers.take(assemblies).unwrap().len(), 1);
    assert!(server.platform().requests().iter().any(|r| r.route == "POST dataverse $batch"));
}

/// `docs/embedding.md` said shipped features did not exist (issue 21, finding 6). It now describes what is there:
/// the shared engine, per-call counts, stored plans, adoption, observe and decide; and no "not there yet" list of
/// what has shipped. (Its code examples compile as doctests.)
#[test]
fn the_embedding_guide_describes_what_exists() {
    let guide = std::fs::read_to_string(format!("{}/docs/embedding.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    for shipped in [
        "Provisioner::for_identity",
        "CallCounts",
        "apply_stored",
        "StoredPlanError::Digest",
        "PlanChange",
        "AlreadyApplied",
        "adopt",
        "take_over",
        "provision::decide",
        "engine.upgrade",
    ] {
        assert!(guide.contains(shipped), "the guide does not mention {shipped}");
    }
    assert!(!guide.contains("Not there yet"), "a 'not there yet' list in the guide");
    assert!(!guide.contains("do not exist"), "the guide says something does not exist");
}
