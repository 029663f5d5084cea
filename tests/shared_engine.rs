//! One engine shared by a service's concurrent tasks (issue 21): built for an identity without a template spec,
//! each call counting its own requests and naming itself in its progress events.
#![cfg(feature = "testkit")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dataverse_mi::cert::Certificate;
use dataverse_mi::cloud::Cloud;
use dataverse_mi::http::RetryOptions;
use dataverse_mi::provision::{
    Action, CallId, CertificateSpec, EnvironmentSpec, GrantSpec, IdentitySpec, Progress, ProgressEvent, ProvisionError,
    ProvisionOptions, ProvisionSpec, Provisioner,
};
use dataverse_mi::testkit::{FakeOptions, FakePlatform, Fault};
use uuid::Uuid;

const TENANT: Uuid = Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47);
const APP: Uuid = Uuid::from_u128(0x0b5a7d2c_6f4e_4d3a_9c1b_2a8e7f6d5c4b);
const KEY_VAULT: &str = "/subscriptions/sub-1/resourceGroups/rg-secrets/providers/Microsoft.KeyVault/vaults/contoso-kv";

fn retry() -> RetryOptions {
    RetryOptions { max_attempts: 5, ..RetryOptions::default() }
}

/// A fake with the app registration and `n` environments `team{i}.crm.dynamics.com`, one signed assembly each;
/// one spec per environment (one team each), all naming the same identity.
fn teams(n: usize) -> (FakePlatform, Vec<ProvisionSpec>) {
    teams_signed_with(n, &format!("{}/examples/contoso-plugins.cer", env!("CARGO_MANIFEST_DIR")))
}

/// [`teams`], the assemblies signed with the certificate at `path`.
fn teams_signed_with(n: usize, path: &str) -> (FakePlatform, Vec<ProvisionSpec>) {
    let cert = || Certificate::from_file(path).unwrap().certificate;
    let cert_spec = || CertificateSpec::File { path: path.into(), password_env: None };
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_application(APP, "Contoso plug-ins");
    let specs = (0..n)
        .map(|i| {
            let host = format!("team{i}.crm.dynamics.com");
            fake.add_environment(&host, TENANT);
            fake.add_plugin_assembly(&host, "Contoso.Plugins", Some(cert()));
            ProvisionSpec::new(
                IdentitySpec::app_registration(APP),
                vec![
                    EnvironmentSpec::new(format!("https://{host}"))
                        .with_assemblies(["Contoso.Plugins"])
                        .with_certificate(cert_spec()),
                ],
            )
        })
        .collect();
    (fake, specs)
}

/// The engine a service builds once: for the identity, no spec.
fn shared_engine(fake: &FakePlatform, progress: Option<dataverse_mi::provision::ProgressFn>) -> Provisioner {
    let platform = fake.client_platform(8, retry()).unwrap();
    let options = ProvisionOptions { progress, ..ProvisionOptions::default() };
    Provisioner::for_identity(&IdentitySpec::app_registration(APP), Cloud::Public, &platform, options).unwrap()
}

/// Three concurrent applies on one engine each reported the retries only one of them made (their counts were
/// deltas of the engine's counters), and their progress events could not be told apart (issue 21, finding 3).
/// Now each call counts its own requests, and every event names its call.
#[tokio::test(start_paused = true)]
async fn concurrent_calls_on_one_engine_each_report_their_own_requests_and_progress() {
    let (fake, specs) = teams(3);
    let events: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let sink = events.clone();
    let engine = shared_engine(&fake, Some(Arc::new(move |p: &Progress| sink.lock().unwrap().push(p.clone()))));
    // Round trips the fake answered (a batch is one).
    let round_trips = || fake.round_trips().values().sum::<usize>();
    // Every team plans; then team 1's environment throttles its next two writes.
    let mut plans = Vec::new();
    for spec in &specs {
        plans.push(engine.plan(spec).await.unwrap());
    }
    assert!(plans.iter().all(|p| p.counts.requests > 0 && p.counts.retries == 0), "each plan read");
    let planned: u64 = plans.iter().map(|p| p.counts.requests).sum();
    assert_eq!(planned as usize, round_trips(), "the plans' own counts add up to what was sent");
    fake.clear_log();
    fake.inject(
        Fault::status("POST dataverse $batch".parse().unwrap(), 429)
            .on_host("team1.crm.dynamics.com")
            .retry_after(Duration::from_secs(2))
            .times(2),
    );
    events.lock().unwrap().clear();

    // The three applies at once, each on its own task, as a service runs them.
    let tasks: Vec<_> = plans
        .into_iter()
        .map(|plan| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.apply(&plan).await })
        })
        .collect();
    let mut reports = Vec::new();
    for t in tasks {
        reports.push(t.await.unwrap());
    }
    assert!(reports.iter().all(|r| r.is_success()), "{reports:#?}");
    let retries: Vec<u64> = reports.iter().map(|r| r.counts.retries).collect();
    assert_eq!(retries, [0, 2, 0], "only team 1's apply was retried, and only it says so");
    let sent: u64 = reports.iter().map(|r| r.counts.requests).sum();
    assert_eq!(sent as usize, round_trips(), "no request counted twice or lost");
    assert!(reports[1].counts.requests > reports[0].counts.requests, "the retries are team 1's requests");

    // Each call's events carry its id, and account for exactly its actions.
    let calls: Vec<CallId> = reports.iter().map(|r| r.counts.call).collect();
    assert!(calls[0] != calls[1] && calls[1] != calls[2] && calls[0] != calls[2], "{calls:?}");
    let events = events.lock().unwrap();
    assert!(events.iter().all(|e| e.call != CallId::default()), "every event names its call");
    for r in &reports {
        let done =
            events.iter().filter(|e| e.call == r.counts.call && matches!(e.event, ProgressEvent::Done { .. })).count();
        assert_eq!(done, r.actions.len(), "call {}: one Done per action", r.counts.call);
    }
    // As JSON, an event is flat: the call beside the event's own fields.
    let json = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(json["call"], serde_json::json!(events[0].call.get()));
    assert!(json["event"].is_string(), "{json}");
}

/// A shared engine had to be built from a made-up "template" spec, and one made from a template without grants
/// could not plan a spec with grants (issue 21, finding 5). `for_identity` takes the identity and cloud alone, and
/// plans any spec of that identity, with grants or without.
#[tokio::test(start_paused = true)]
async fn an_engine_built_for_an_identity_plans_any_of_its_specs_with_grants_or_without() {
    let (fake, specs) = teams(2);
    let engine = shared_engine(&fake, None);
    let plain = engine.plan(&specs[0]).await.unwrap();
    assert!(!plain.actions.iter().any(|a| matches!(a, Action::AssignRole { .. })), "{plain}");
    let mut granted = specs[1].clone();
    granted.grants = vec![GrantSpec { role: "Key Vault Secrets User".into(), scope: KEY_VAULT.into() }];
    let plan = engine.plan(&granted).await.unwrap();
    assert!(plan.actions.iter().any(|a| matches!(a, Action::AssignRole { .. })), "{plan}");
    let report = engine.apply(&plan).await;
    assert!(report.is_success(), "{report}");
    assert!(engine.verify(&granted).await.unwrap().is_ok());
    // Another identity is still refused, before any request.
    fake.clear_log();
    let mut other = specs[0].clone();
    other.identity = IdentitySpec::app_registration(Uuid::from_u128(0xdef));
    assert!(matches!(engine.plan(&other).await, Err(ProvisionError::OtherIdentity { .. })));
    assert!(fake.requests().is_empty());
}

/// The staged flows a downstream CLI runs, from the library: the upgrade (switch, verify, finish) with each plan
/// approved by a callback, a declined plan that changes nothing, and a teardown approved the same way.
#[tokio::test(start_paused = true)]
async fn the_upgrade_and_teardown_flows_run_from_the_library_with_an_approval_callback() {
    use dataverse_mi::provision::{DestroyOptions, UpgradeOptions};
    use dataverse_mi::subject::SubjectFormatVersion;
    // Issued by a CA: its version 1 subject (CN values) and version 2 subject (name hashes) differ.
    let (fake, specs) = teams_signed_with(1, &format!("{}/tests/fixtures/leaf.cer", env!("CARGO_MANIFEST_DIR")));
    let engine = shared_engine(&fake, None);
    let mut v1 = specs[0].clone();
    v1.version = SubjectFormatVersion::V1;
    assert!(engine.apply(&engine.plan(&v1).await.unwrap()).await.is_success());
    assert_eq!(fake.graph_fics(APP).len(), 1);

    // Declined: nothing is written, and the outcome says so.
    fake.clear_log();
    let declined = engine.upgrade(&v1, UpgradeOptions::default(), |_| false).await.unwrap();
    assert!(declined.switch.declined() && !declined.is_success());
    assert_eq!(declined.problem().as_deref(), Some("nothing changed: the switch was not approved"));
    assert_eq!(fake.writes(), 0);

    // Approved, with the finish: version 2 FICs added, rows switched, verified, version 1 FICs removed.
    let mut seen = Vec::new();
    let outcome = engine
        .upgrade(&v1, UpgradeOptions::default().finishing(true), |plan| {
            seen.push(plan.to_string());
            true
        })
        .await
        .unwrap();
    assert!(outcome.is_success(), "{:?}", outcome.problem());
    assert_eq!(outcome.target, SubjectFormatVersion::V2);
    assert!(outcome.verify.as_ref().is_some_and(|v| v.is_ok()));
    assert_eq!(seen.len(), 2, "the switch and the removal were each approved: {seen:#?}");
    assert!(outcome.spec_is_behind(&v1), "the spec still says version 1");
    let fics = fake.graph_fics(APP);
    assert_eq!(fics.len(), 1);
    assert!(!fics[0].subject.contains("/i/Contoso"), "only the version 2 FIC stays: {fics:?}");
    // As JSON: one object with each stage.
    let json = serde_json::to_value(&outcome).unwrap();
    assert!(json["switch"]["report"].is_object() && json["finish"]["report"].is_object(), "{json}");

    // The teardown, approved: the row and the FIC go.
    let mut v2 = specs[0].clone();
    v2.version = SubjectFormatVersion::V2;
    let gone = engine.destroy_approved(&v2, DestroyOptions::default(), |plan| !plan.steps.is_empty()).await.unwrap();
    assert!(gone.is_success() && !gone.declined(), "{gone}");
    assert!(fake.graph_fics(APP).is_empty());
    assert!(fake.managed_identities("team0.crm.dynamics.com").is_empty());
}

/// Findings 1, 2 and 4 of issue 21 the way a service meets them: one engine, requests on concurrent tasks. A
/// request naming another identity is refused before any request; a plug-in bound by hand to another team's row
/// is left and named; a stored plan edited after approval is refused; the honest request beside them succeeds.
#[tokio::test(start_paused = true)]
async fn a_shared_engine_refuses_what_is_not_its_own_while_serving_concurrent_requests() {
    use dataverse_mi::provision::{Plan, PlanNote};
    let (fake, specs) = teams(3);
    let engine = shared_engine(&fake, None);
    // Team 1's plug-in was bound by hand to another team's row.
    let theirs = Uuid::from_u128(0xdead);
    let row = serde_json::from_value(serde_json::json!({
        "managedidentityid": theirs, "name": "Fabrikam", "applicationid": Uuid::from_u128(0xdef), "tenantid": TENANT,
    }))
    .unwrap();
    fake.seed_managed_identity("team1.crm.dynamics.com", row);
    let component = engine.plan(&specs[1]).await.unwrap().environments[0].components[0].id;
    fake.seed_binding("team1.crm.dynamics.com", component, Some(theirs));
    // Team 2's approved plan, then edited (its FIC's subject replaced) before it is applied.
    let approved = engine.plan(&specs[2]).await.unwrap();
    let mut edited: Plan = approved.clone();
    for a in &mut edited.actions {
        if let Action::CreateFic { fic, .. } = a {
            fic.subject = fic.subject.replace("/h/", "/h/00").chars().take(fic.subject.len()).collect();
        }
    }
    let mut stranger = specs[0].clone();
    stranger.identity = IdentitySpec::app_registration(Uuid::from_u128(0xdef));

    let honest = tokio::spawn({
        let (engine, spec) = (engine.clone(), specs[0].clone());
        async move { Ok::<_, ProvisionError>(engine.apply(&engine.plan(&spec).await?).await) }
    });
    let other_identity = tokio::spawn({
        let engine = engine.clone();
        async move { engine.plan(&stranger).await }
    });
    let bound_elsewhere = tokio::spawn({
        let (engine, spec) = (engine.clone(), specs[1].clone());
        async move {
            let plan = engine.plan(&spec).await?;
            let report = engine.apply(&plan).await;
            Ok::<_, ProvisionError>((plan, report))
        }
    });
    let tampered = tokio::spawn({
        let engine = engine.clone();
        async move { engine.apply_if_current(&edited).await }
    });

    let honest = honest.await.unwrap().unwrap();
    assert!(honest.is_success(), "{honest}");
    assert!(matches!(other_identity.await.unwrap(), Err(ProvisionError::OtherIdentity { .. })));
    let (plan, report) = bound_elsewhere.await.unwrap().unwrap();
    assert!(report.is_success(), "{report}");
    assert!(!plan.actions.iter().any(|a| matches!(a, Action::Bind { .. })), "{plan}");
    assert!(plan.notes.iter().any(
        |n| matches!(n, PlanNote::BoundElsewhere { row, name: Some(name), .. } if *row == theirs && name == "Fabrikam")
    ));
    assert_eq!(fake.binding("team1.crm.dynamics.com", component), Some(theirs), "the other team's binding stays");
    assert!(matches!(tampered.await.unwrap(), Err(ProvisionError::UnexplainedSubjects { .. })));
    // Nothing of team 2's was written; its plan as approved still applies (the FICs the other teams' applies
    // added on the shared identity are for other environments: they do not make it stale).
    assert!(fake.managed_identities("team2.crm.dynamics.com").is_empty());
    assert!(engine.apply_if_current(&approved).await.unwrap().is_success());
}

/// The pure planning step from outside the crate: a snapshot made by hand (an identity with a principal, one
/// environment, one unbound assembly, a role not assigned yet) plans the FIC, the row, the bind and the role
/// assignment, with no engine and no request.
#[test]
fn a_snapshot_made_by_hand_plans_without_any_request() {
    use dataverse_mi::clients::ComponentKind;
    use dataverse_mi::provision::api::IdentityInfo;
    use dataverse_mi::provision::{ComponentState, EnvironmentSnapshot, GrantPlan, Snapshot, decide_at};
    let spec = {
        let (_, specs) = teams(1);
        let mut spec = specs[0].clone();
        spec.grants = vec![GrantSpec { role: "Key Vault Secrets User".into(), scope: KEY_VAULT.into() }];
        spec
    };
    let component = ComponentState {
        kind: ComponentKind::PluginAssembly,
        id: Uuid::from_u128(0xc1),
        name: "Contoso.Plugins".into(),
        bound_to: None,
        named_assemblies: Vec::new(),
        registered: None,
    };
    let environment_id = dataverse_mi::environment::EnvironmentId::from(Uuid::from_u128(0xe1));
    let env =
        EnvironmentSnapshot::new("https://team0.crm.dynamics.com", environment_id, TENANT, Vec::new(), vec![component]);
    let found = IdentityInfo { client_id: APP, principal_id: Some(Uuid::from_u128(0x9)), tenant_id: None };
    let mut snapshot = Snapshot::new("app registration", Some(found), Vec::new(), vec![env]);
    snapshot.grants =
        vec![GrantPlan::new("Key Vault Secrets User", KEY_VAULT, "4633458b-17de-408a-b874-0445c86b69e6", None)];
    let plan = decide_at(&spec, &snapshot, std::time::SystemTime::now()).unwrap();
    let kinds: Vec<&str> = plan
        .actions
        .iter()
        .map(|a| match a {
            Action::AssignRole { .. } => "grant",
            Action::CreateFic { .. } => "fic",
            Action::CreateManagedIdentity { .. } => "row",
            Action::Bind { .. } => "bind",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["grant", "fic", "row", "bind"], "{plan}");
}

/// A discovery client given with `with_discovery` is the one asked, also on an engine built on a platform (which
/// would otherwise make one at the spec's discovery service): here one that finds nothing, where the fake's own
/// service would find the team's environment.
#[tokio::test(start_paused = true)]
async fn a_discovery_client_given_to_the_engine_is_the_one_asked() {
    use dataverse_mi::provision::DiscoverSpec;
    use dataverse_mi::provision::api::DiscoveryApi;
    #[derive(Debug)]
    struct Nothing;
    #[dataverse_mi::reexports::async_trait]
    impl DiscoveryApi for Nothing {
        async fn environments(
            &self,
        ) -> Result<Vec<dataverse_mi::clients::DiscoveredEnvironment>, dataverse_mi::clients::ApiError> {
            Ok(Vec::new())
        }
    }
    let (fake, specs) = teams(1);
    let mut spec = specs[0].clone();
    let mut discover = DiscoverSpec::new("team*").with_assemblies(["Contoso.Plugins"]);
    discover.certificate = spec.environments[0].certificate.clone();
    spec.discover = Some(discover);
    spec.environments.clear();
    let on_platform = shared_engine(&fake, None);
    assert_eq!(on_platform.resolve(&spec).await.unwrap().environments.len(), 1, "the fake's discovery finds it");
    let given = shared_engine(&fake, None).with_discovery(Arc::new(Nothing));
    let err = given.resolve(&spec).await.unwrap_err();
    assert!(err.to_string().contains("discovery found no environment"), "{err}");
}
