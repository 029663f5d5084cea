//! The provisioning engine end to end against the testkit fake (in-process transport, tokio's paused clock).
#![cfg(feature = "testkit")]

use std::collections::BTreeSet;
use std::time::Duration;

use dataverse_mi::cert::Certificate;
use dataverse_mi::clients::role_assignment_name;
use dataverse_mi::cloud::Cloud;
use dataverse_mi::entities::managed_identity_row_id;
use dataverse_mi::fic::FederatedIdentityCredential;
use dataverse_mi::http::RetryOptions;
use dataverse_mi::provision::{
    Action, ActionResult, ActionStatus, CertificateSpec, CreateIdentitySpec, EnvironmentSpec, GrantSpec, IdentitySpec,
    Plan, PrincipalRetry, ProvisionError, ProvisionOptions, ProvisionSpec, SpecError, WatchOptions,
};
use dataverse_mi::subject::SubjectFormatVersion;
use dataverse_mi::testkit::{FakeOptions, FakePlatform, FaultOptions};
use uuid::Uuid;

const TENANT: Uuid = Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47);
const APP: Uuid = Uuid::from_u128(0x0b5a7d2c_6f4e_4d3a_9c1b_2a8e7f6d5c4b);

fn cert() -> Certificate {
    Certificate::from_file(format!("{}/examples/contoso-plugins.cer", env!("CARGO_MANIFEST_DIR"))).unwrap().certificate
}

fn cert_spec() -> CertificateSpec {
    CertificateSpec::File {
        path: format!("{}/examples/contoso-plugins.cer", env!("CARGO_MANIFEST_DIR")).into(),
        password_env: None,
    }
}

/// A fake with an app registration and `envs` environments of `components` assemblies each, and the matching
/// spec.
fn setup(envs: usize, components: usize, options: FakeOptions) -> (FakePlatform, ProvisionSpec) {
    let fake = FakePlatform::new(options);
    fake.add_application(APP, "Contoso plug-ins");
    let environments = seed_environments(&fake, envs, components);
    let spec = ProvisionSpec::new(IdentitySpec::app_registration(APP), environments);
    (fake, spec)
}

/// Adds `envs` environments of `components` signed assemblies each to `fake`; returns their specs.
fn seed_environments(fake: &FakePlatform, envs: usize, components: usize) -> Vec<EnvironmentSpec> {
    let mut environments = Vec::new();
    for e in 0..envs {
        let host = format!("env{e}.crm.dynamics.com");
        fake.add_environment(&host, TENANT);
        let mut names = Vec::new();
        for c in 0..components {
            let name = if c == 0 { format!("O'Brien.Plugins{e}") } else { format!("Contoso.Plugins{c}") };
            fake.add_plugin_assembly(&host, &name, Some(cert()));
            names.push(name);
        }
        environments
            .push(EnvironmentSpec::new(format!("https://{host}")).with_assemblies(names).with_certificate(cert_spec()));
    }
    environments
}

/// The engine's options with batching on (the default) or off.
fn batching(on: bool) -> ProvisionOptions {
    ProvisionOptions { batch: on, ..ProvisionOptions::default() }
}

fn retry() -> RetryOptions {
    RetryOptions { jitter: 0.0, max_attempts: 6, ..RetryOptions::default() }
}

/// Everything that matters of the fake's state, comparable across runs.
fn snapshot(fake: &FakePlatform, spec: &ProvisionSpec) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in fake.graph_fics(APP) {
        out.insert(format!("fic {} {}", f.name, f.subject));
    }
    for e in &spec.environments {
        let host = e.org_url.trim_start_matches("https://");
        for r in fake.managed_identities(host) {
            out.insert(format!("row {host} {} {:?} {:?} {:?}", r.id, r.application_id, r.version, r.credential_source));
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn fresh_provisioning_then_a_rerun_with_zero_writes() {
    for batch in [true, false] {
        fresh_provisioning_then_a_rerun(batch).await;
    }
}

async fn fresh_provisioning_then_a_rerun(batch: bool) {
    let (fake, spec) = setup(2, 3, FakeOptions::default());
    let engine = fake.provisioner(&spec, 8, retry(), batching(batch)).unwrap().provisioner;
    let plan = engine.plan(&spec).await.unwrap();
    let kinds: Vec<&str> = plan
        .actions
        .iter()
        .map(|a| match a {
            Action::CreateFic { .. } => "fic",
            Action::CreateManagedIdentity { .. } => "row",
            Action::Bind { .. } => "bind",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "fic").count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == "row").count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == "bind").count(), 6);
    assert_eq!(fake.writes(), 0, "planning writes nothing");
    // Reads: one FIC list (an application given by id, with no grant, needs no other read: the list finds it),
    // and per environment the organization, the rows, the assemblies: in one $batch round trip when batching.
    let trips = fake.round_trips();
    if batch {
        assert_eq!(trips["graph"], 1);
        assert_eq!(trips["dataverse"], 2, "one round trip per environment");
        assert_eq!(fake.batched_requests()["dataverse"], 2 * 3);
        assert_eq!(fake.count("POST dataverse $batch".parse().unwrap()), 2);
    } else {
        assert_eq!(fake.requests().len(), 1 + 2 * 3);
        assert!(fake.batched_requests().is_empty());
    }
    assert_eq!(fake.count("GET graph application".parse().unwrap()), 0);
    assert_eq!(fake.count("GET graph service principal".parse().unwrap()), 0);

    fake.clear_log();
    let report = engine.apply(&plan).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(fake.writes(), 2 + 2 + 6);
    if batch {
        // Both FICs in one Graph batch; per environment, the row and its three binds in one change set.
        assert_eq!(fake.round_trips(), [("dataverse".to_owned(), 2), ("graph".to_owned(), 1)].into_iter().collect());
        assert_eq!(fake.count("POST graph $batch".parse().unwrap()), 1);
        assert_eq!(fake.count("POST graph fics".parse().unwrap()), 2, "inside the batch");
    }
    for e in &plan.environments {
        let host = e.org_url.trim_start_matches("https://");
        let rows = fake.managed_identities(host);
        assert_eq!(rows.len(), 1);
        assert_eq!(Some(rows[0].id), e.managed_identity_id);
        assert_eq!(rows[0].version, Some(2));
        for c in &e.components {
            assert_eq!(fake.binding(host, c.id), e.managed_identity_id);
        }
    }
    let verify = engine.verify(&spec).await.unwrap();
    assert!(verify.is_ok(), "{verify}");
    assert!(verify.components.iter().all(|c| c.server_checked));

    fake.clear_log();
    let again = engine.plan(&spec).await.unwrap();
    assert!(again.is_empty(), "{again}");
    let report = engine.apply(&again).await;
    assert!(report.actions.is_empty());
    assert_eq!(fake.writes(), 0);
    // Per environment: the organization, the rows, the assemblies, and the platform's own subject for each of the
    // 3 bound components (GetComponentManagedIdentityFIC: where it differs from ours, it wins); plus one FIC list.
    assert_eq!(fake.count("GET dataverse GetComponentManagedIdentityFIC".parse().unwrap()), 2 * 3);
    if batch {
        // Per environment: one round trip for the state, one for the platform's subjects.
        assert_eq!(fake.round_trips()["dataverse"], 2 * 2);
        assert_eq!(fake.batched_requests()["dataverse"], 2 * (3 + 3));
        return;
    }
    assert_eq!(
        fake.requests().len(),
        1 + 2 * (3 + 3),
        "3 reads and one platform subject per component, per environment"
    );
}

#[tokio::test(start_paused = true)]
async fn a_run_stopped_half_way_converges_on_the_next() {
    // Batched: stopped after the FICs' batch, before the change sets; one by one: after a few writes.
    for (batch, stop_after) in [(true, 10), (false, 50)] {
        stopped_half_way(batch, Duration::from_millis(stop_after)).await;
    }
}

async fn stopped_half_way(batch: bool, stop_after: Duration) {
    let (fake, spec) = setup(3, 4, FakeOptions { latency: Duration::from_millis(20), ..FakeOptions::default() });
    let engine = fake.provisioner(&spec, 4, retry(), batching(batch)).unwrap().provisioner;
    let plan = engine.plan(&spec).await.unwrap();
    let before = fake.writes();
    // Stop the apply early: some writes done, most not.
    let stopped = tokio::time::timeout(stop_after, engine.apply(&plan)).await;
    assert!(stopped.is_err());
    let partial = fake.writes() - before;
    assert!(partial > 0 && partial < plan.actions.len(), "{partial} of {}", plan.actions.len());
    let rerun = engine.plan(&spec).await.unwrap();
    assert!(rerun.actions.len() < plan.actions.len());
    assert!(engine.apply(&rerun).await.is_success());
    assert!(engine.verify(&spec).await.unwrap().is_ok());
    assert!(engine.plan(&spec).await.unwrap().is_empty());

    let (clean, _) = setup(3, 4, FakeOptions::default());
    let clean_engine = clean.provisioner(&spec, 4, retry(), batching(batch)).unwrap().provisioner;
    assert!(clean_engine.apply(&clean_engine.plan(&spec).await.unwrap()).await.is_success());
    assert_eq!(snapshot(&fake, &spec), snapshot(&clean, &spec));
}

#[tokio::test(start_paused = true)]
async fn two_concurrent_applies_leave_no_duplicates() {
    let (fake, spec) = setup(3, 2, FakeOptions { latency: Duration::from_millis(5), ..FakeOptions::default() });
    let a = fake.provisioner(&spec, 4, retry(), ProvisionOptions::default()).unwrap().provisioner;
    let b = fake.provisioner(&spec, 4, retry(), ProvisionOptions::default()).unwrap().provisioner;
    let (plan_a, plan_b) = (a.plan(&spec).await.unwrap(), b.plan(&spec).await.unwrap());
    let (ra, rb) = tokio::join!(a.apply(&plan_a), b.apply(&plan_b));
    assert!(ra.is_success(), "{ra}");
    assert!(rb.is_success(), "{rb}");
    let already = ra.actions.iter().chain(&rb.actions).filter(|r| r.status == ActionStatus::AlreadyDone).count();
    assert!(already > 0, "one of the two runs found the other's rows and FICs");
    assert_eq!(fake.graph_fics(APP).len(), 3);
    for e in &spec.environments {
        assert_eq!(fake.managed_identities(e.org_url.trim_start_matches("https://")).len(), 1);
    }
    assert!(a.verify(&spec).await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn more_than_twenty_fics_is_refused_before_any_write() {
    let (fake, spec) = setup(3, 1, FakeOptions::default());
    for i in 0..18 {
        fake.seed_graph_fic(
            APP,
            FederatedIdentityCredential {
                name: format!("other-{i}"),
                issuer: format!("https://token.actions.githubusercontent.com/{i}"),
                subject: format!("repo:contoso/app{i}:ref:refs/heads/main"),
                audiences: vec!["api://AzureADTokenExchange".into()],
                description: None,
            },
        );
    }
    let engine = fake.provisioner(&spec, 4, retry(), ProvisionOptions::default()).unwrap().provisioner;
    let err = engine.plan(&spec).await.unwrap_err();
    assert!(matches!(err, ProvisionError::TooManyFics { existing: 18, new: 3, .. }), "{err:?}");
    assert!(err.to_string().contains("20"), "{err}");
    assert_eq!(fake.writes(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_missing_component_is_refused_with_its_name() {
    let (fake, mut spec) = setup(1, 1, FakeOptions::default());
    spec.environments[0].plugin_assemblies.push("Not'There".into());
    let engine = fake.provisioner(&spec, 4, retry(), ProvisionOptions::default()).unwrap().provisioner;
    let err = engine.plan(&spec).await.unwrap_err();
    assert!(err.to_string().contains("Not'There"), "{err}");
    assert_eq!(fake.writes(), 0);
}

#[tokio::test(start_paused = true)]
async fn user_assigned_identity_target() {
    let (fake, mut spec) = setup(2, 2, FakeOptions::default());
    let (client_id, _) = fake.add_user_assigned_identity("sub-1", "rg-plugins", "dataverse-plugin-mi", TENANT);
    spec.identity = IdentitySpec::user_assigned("sub-1", "rg-plugins", "dataverse-plugin-mi");
    let engine = fake.provisioner(&spec, 4, retry(), ProvisionOptions::default()).unwrap().provisioner;
    let plan = engine.plan(&spec).await.unwrap();
    assert_eq!(plan.application_id(), Some(client_id));
    assert!(engine.apply(&plan).await.is_success());
    assert_eq!(fake.uami_fics("sub-1", "rg-plugins", "dataverse-plugin-mi").len(), 2);
    assert_eq!(fake.managed_identities("env0.crm.dynamics.com")[0].application_id, Some(client_id));
    assert!(engine.verify(&spec).await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn sovereign_cloud() {
    let (fake, mut spec) = setup(1, 2, FakeOptions { cloud: Cloud::UsGov, ..FakeOptions::default() });
    spec.cloud = Cloud::UsGov;
    // A GCC High environment: the spec's cloud and its environments' hosts agree (validate refuses otherwise).
    let host = "contoso.crm.microsoftdynamics.us";
    fake.add_environment(host, TENANT);
    for name in &spec.environments[0].plugin_assemblies {
        fake.add_plugin_assembly(host, name, Some(cert()));
    }
    spec.environments[0].org_url = format!("https://{host}");
    let engine = fake.provisioner(&spec, 4, retry(), ProvisionOptions::default()).unwrap().provisioner;
    assert!(engine.apply(&engine.plan(&spec).await.unwrap()).await.is_success());
    let fics = fake.graph_fics(APP);
    assert!(fics[0].subject.starts_with("/eid1/c/usg/"));
    assert_eq!(fics[0].audiences, ["api://AzureADTokenExchangeUSGov"]);
    assert!(fics[0].issuer.starts_with("https://login.microsoftonline.us/"));
    assert!(engine.verify(&spec).await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn version_1_to_2_migration_keeps_the_old_fic_until_pruned() {
    let leaf = Certificate::from_file(format!("{}/tests/fixtures/self-issued.cer", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .certificate;
    let (fake, mut spec) = setup(1, 0, FakeOptions::default());
    fake.add_plugin_assembly("env0.crm.dynamics.com", "Legacy.Plugins", Some(leaf.clone()));
    spec.environments[0].plugin_assemblies = vec!["Legacy.Plugins".into()];
    spec.environments[0].certificate =
        CertificateSpec::Names { issuer_dn: leaf.issuer().unwrap().into(), subject_dn: leaf.subject().unwrap().into() };
    spec.version = SubjectFormatVersion::V1;
    let engine = fake.provisioner(&spec, 4, retry(), ProvisionOptions::default()).unwrap().provisioner;
    assert!(engine.apply(&engine.plan(&spec).await.unwrap()).await.is_success());
    let v1 = fake.graph_fics(APP);
    // Version 1: the CN values (self-issued.cer is issued by and to "CN=Same Name").
    assert!(v1[0].subject.ends_with("/i/Same Name/s/Same Name"), "{}", v1[0].subject);
    assert!(engine.verify(&spec).await.unwrap().is_ok());

    spec.version = SubjectFormatVersion::V2;
    let plan = engine.plan(&spec).await.unwrap();
    assert!(plan.actions.iter().any(|a| matches!(a, Action::UpdateManagedIdentity { update, .. } if update.version == Some(SubjectFormatVersion::V2))));
    assert!(plan.actions.iter().any(|a| matches!(a, Action::CreateFic { .. })));
    assert!(!plan.actions.iter().any(|a| matches!(a, Action::DeleteFic { .. })));
    assert!(engine.apply(&plan).await.is_success());
    assert_eq!(fake.graph_fics(APP).len(), 2, "the version 1 FIC stays until pruned");
    assert!(engine.verify(&spec).await.unwrap().is_ok());

    spec.prune = true;
    let plan = engine.plan(&spec).await.unwrap();
    assert_eq!(plan.actions.len(), 1);
    assert!(
        matches!(&plan.actions[0], Action::DeleteFic { subject, .. } if subject.ends_with("/i/Same Name/s/Same Name"))
    );
    assert!(engine.apply(&plan).await.is_success());
    assert_eq!(fake.graph_fics(APP).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn chaos_runs_converge_to_the_clean_state() {
    let (clean, spec) = setup(2, 2, FakeOptions::default());
    let engine = clean.provisioner(&spec, 4, retry(), ProvisionOptions::default()).unwrap().provisioner;
    assert!(engine.apply(&engine.plan(&spec).await.unwrap()).await.is_success());
    let want = snapshot(&clean, &spec);

    let mut total_retries = 0;
    // Batched (the default) and one request at a time: both converge on the clean state.
    for (seed, batch) in (0..200u64).flat_map(|seed| [(seed, true), (seed, false)]) {
        // Same seeding as the clean run (ids come from the seeded generator), then 20% faults.
        let (fake, _) = setup(2, 2, FakeOptions::default());
        fake.set_faults(FaultOptions::chaos(seed, 0.2));
        let clients = fake.provisioner(&spec, 4, retry(), batching(batch)).unwrap();
        let mut converged = false;
        for _attempt in 0..4 {
            let Ok(plan) = clients.provisioner.plan(&spec).await else { continue };
            if plan.is_empty() {
                converged = true;
                break;
            }
            let report = clients.provisioner.apply(&plan).await;
            total_retries += report.counts.retries;
        }
        assert!(converged, "seed {seed} (batch {batch}) did not converge");
        assert_eq!(snapshot(&fake, &spec), want, "seed {seed} (batch {batch})");
        assert_eq!(fake.graph_fics(APP).len(), 2, "seed {seed} (batch {batch}): no duplicate FICs");
    }
    assert!(total_retries > 100, "faults were injected and retried: {total_retries}");
}

#[tokio::test(start_paused = true)]
async fn watch_finds_and_explains_a_token_failure_in_the_trace_log() {
    use dataverse_mi::clients::{AppRef, ClientOptions, GraphClient};
    use dataverse_mi::entities::PluginTraceLogSetting;
    use dataverse_mi::guid::{encode_guid, encode_guid_big_endian};
    let (fake, spec) = setup(1, 1, FakeOptions::default());
    let host = "env0.crm.dynamics.com";
    let engine = fake.provisioner(&spec, 4, retry(), ProvisionOptions::default()).unwrap().provisioner;
    assert!(engine.apply(&engine.plan(&spec).await.unwrap()).await.is_success());
    let component = engine.plan(&spec).await.unwrap().environments[0].components[0].id;

    // Tracing is off: nothing is recorded, and watch says so; with enable_tracing it is switched on.
    let window = WatchOptions::since_text("2000-01-01T00:00:00Z").unwrap();
    let quiet = engine.watch(&spec, &window).await.unwrap();
    assert_eq!(quiet.environments[0].setting, PluginTraceLogSetting::Off);
    let on = engine.watch(&spec, &window.clone().enable_tracing(true)).await.unwrap();
    assert_eq!(on.environments[0].setting, PluginTraceLogSetting::Exception);
    assert!(on.failures.is_empty());
    assert!(fake.run_plugin(host, component, "Contoso.Plugins.KeyVaultReader"));
    assert!(fake.trace_logs(host).is_empty(), "Exception level records only failures");

    // Someone replaces the FIC with a hand-made one: the tenant encoded big-endian.
    let graph = GraphClient::new(
        &Cloud::Public.into(),
        dataverse_mi::testkit::test_token(),
        ClientOptions { transport: Some(fake.transport()), ..ClientOptions::default() },
    )
    .unwrap();
    let mut fic = fake.graph_fics(APP).remove(0);
    graph.delete_fic(AppRef::AppId(APP), &fic.name).await.unwrap();
    fic.subject = fic.subject.replace(&encode_guid(TENANT), &encode_guid_big_endian(TENANT));
    fic.name = "hand-made".into();
    fake.seed_graph_fic(APP, fic);

    assert!(!fake.run_plugin(host, component, "Contoso.Plugins.KeyVaultReader"));
    let report = engine.watch(&spec, &window).await.unwrap();
    assert_eq!(report.environments[0].rows, 1);
    assert_eq!(report.failures.len(), 1);
    let failure = &report.failures[0];
    assert_eq!(failure.diagnosis.error.code.as_deref(), Some("AADSTS700213"));
    assert_eq!(failure.diagnosis.findings[0].cause.id(), "tenant_big_endian");
    // Reading from the newest row on finds nothing new.
    let newest = report.environments[0].newest.unwrap();
    assert!(engine.watch(&spec, &WatchOptions::since(newest)).await.unwrap().failures.is_empty());
    // Only the plug-in types asked for: another assembly's namespace finds nothing, this one's the failure.
    let other = window.clone().type_prefix("Fabrikam.");
    assert!(engine.watch(&spec, &other).await.unwrap().failures.is_empty());
    let ours = window.type_prefix("Contoso.Plugins.");
    assert_eq!(engine.watch(&spec, &ours).await.unwrap().failures.len(), 1);
}

// ---- The whole flow from nothing (issue 6): create the identity, grant it access, provision, watch. ----

const KEY_VAULT: &str = "/subscriptions/sub-1/resourceGroups/rg-secrets/providers/Microsoft.KeyVault/vaults/contoso-kv";
const KEY_VAULT_SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";

/// A fake with environments and plug-ins but no identity at all, and a spec that creates one.
fn from_nothing(envs: usize, identity: IdentitySpec) -> (FakePlatform, ProvisionSpec) {
    let fake = FakePlatform::new(FakeOptions::default());
    let mut spec = ProvisionSpec::new(identity, seed_environments(&fake, envs, 2));
    spec.grants = vec![key_vault_grant()];
    (fake, spec)
}

fn key_vault_grant() -> GrantSpec {
    GrantSpec { role: "Key Vault Secrets User".into(), scope: KEY_VAULT.into() }
}

fn created_identity() -> IdentitySpec {
    IdentitySpec::app_registration_named("Contoso plug-ins (created)", true)
}

fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.actions
        .iter()
        .map(|a| match a {
            Action::CreateIdentity { .. } => "identity",
            Action::AssignRole { .. } => "grant",
            Action::CreateFic { .. } => "fic",
            Action::CreateManagedIdentity { .. } => "row",
            Action::Bind { .. } => "bind",
            _ => "other",
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn from_nothing_an_app_registration_is_created_granted_and_provisioned() {
    let (fake, spec) = from_nothing(2, created_identity());
    let engine = fake.provisioner(&spec, 8, retry(), ProvisionOptions::default()).unwrap().provisioner;
    let plan = engine.plan(&spec).await.unwrap();
    assert_eq!(plan.found, None);
    let mut k = kinds(&plan);
    k.sort_unstable();
    assert_eq!(k, ["bind", "bind", "bind", "bind", "fic", "fic", "grant", "identity", "row", "row"]);
    assert_eq!(plan.actions.iter().filter(|a| a.is_identity_write()).count(), 4, "identity, grant, two FICs");
    assert_eq!(fake.writes(), 0, "planning writes nothing");
    assert_eq!(
        fake.count("GET dataverse managedidentities".parse().unwrap()),
        0,
        "no rows can name an identity that does not exist"
    );

    let report = engine.apply(&plan).await;
    assert!(report.is_success(), "{report}");
    let apps = fake.applications_named("Contoso plug-ins (created)");
    assert_eq!(apps.len(), 1);
    let app_id = apps[0];
    let principal = fake.service_principal(app_id).expect("the service principal was created");
    let assignments = fake.role_assignments();
    assert_eq!(assignments.len(), 1);
    assert_eq!(assignments[0].principal_id, principal);
    assert!(assignments[0].role_definition_id.ends_with(KEY_VAULT_SECRETS_USER));
    let definition = &assignments[0].role_definition_id;
    assert_eq!(assignments[0].name, role_assignment_name(KEY_VAULT, definition, principal).to_string());
    for e in &plan.environments {
        let host = e.org_url.trim_start_matches("https://");
        let rows = fake.managed_identities(host);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].application_id, Some(app_id));
        assert_eq!(rows[0].id, managed_identity_row_id(app_id, e.tenant_id, e.environment_id));
        for c in &e.components {
            assert_eq!(fake.binding(host, c.id), Some(rows[0].id));
            assert!(fake.run_plugin(host, c.id, "Contoso.Plugins.ReadSecret"), "the plug-in gets a token");
        }
    }
    let verify = engine.verify(&spec).await.unwrap();
    assert!(verify.is_ok(), "{verify}");
    assert!(verify.identity_exists);
    assert_eq!(verify.grants.len(), 1);

    fake.clear_log();
    let again = engine.plan(&spec).await.unwrap();
    assert!(again.is_empty(), "{again}");
    assert!(engine.apply(&again).await.actions.is_empty());
    assert_eq!(fake.writes(), 0, "a re-run writes nothing");
}

#[tokio::test(start_paused = true)]
async fn from_nothing_a_user_assigned_identity_is_created_with_location_and_tags() {
    let identity = IdentitySpec::UserAssigned {
        subscription_id: "sub-1".into(),
        resource_group: "rg-plugins".into(),
        name: "contoso-plugins".into(),
        create: Some(CreateIdentitySpec {
            location: "westeurope".into(),
            tags: [("owner".to_owned(), "platform".to_owned())].into(),
        }),
    };
    let (fake, spec) = from_nothing(2, identity);
    let engine = fake.provisioner(&spec, 8, retry(), ProvisionOptions::default()).unwrap().provisioner;
    let plan = engine.plan(&spec).await.unwrap();
    assert!(kinds(&plan).contains(&"identity"));
    let report = engine.apply(&plan).await;
    assert!(report.is_success(), "{report}");
    let (client_id, principal_id) = fake.user_assigned_identity("sub-1", "rg-plugins", "contoso-plugins").unwrap();
    let created = report.identity.expect("the report names the identity");
    assert_eq!(
        (created.client_id, created.principal_id, created.tenant_id),
        (client_id, Some(principal_id), Some(TENANT))
    );
    assert!(report.to_string().contains(&format!("identity: client id {client_id}, principal id {principal_id}")));
    assert_eq!(fake.uami_fics("sub-1", "rg-plugins", "contoso-plugins").len(), 2);
    assert_eq!(fake.managed_identities("env0.crm.dynamics.com")[0].application_id, Some(client_id));
    assert_eq!(fake.role_assignments()[0].principal_id, principal_id);
    let put = fake.requests().into_iter().filter(|r| r.route == "PUT arm identity").count();
    assert_eq!(put, 1);
    assert!(engine.verify(&spec).await.unwrap().is_ok());
    fake.clear_log();
    assert!(engine.plan(&spec).await.unwrap().is_empty());
    assert_eq!(fake.writes(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_existing_app_without_a_service_principal_gets_one_when_a_grant_needs_it() {
    let (fake, spec) = from_nothing(1, IdentitySpec::app_registration(APP));
    fake.add_application_without_service_principal(APP, "Made through Graph");
    let engine = fake.provisioner(&spec, 8, retry(), ProvisionOptions::default()).unwrap().provisioner;
    let plan = engine.plan(&spec).await.unwrap();
    assert_eq!(plan.application_id(), Some(APP));
    assert!(plan.to_string().contains("create the service principal of app registration"), "{plan}");
    assert!(engine.apply(&plan).await.is_success());
    let principal = fake.service_principal(APP).expect("created");
    assert_eq!(fake.role_assignments()[0].principal_id, principal);
    assert_eq!(fake.applications_named("Made through Graph"), [APP], "no second application");
}

#[tokio::test(start_paused = true)]
async fn a_new_principal_is_retried_until_it_replicates() {
    let (fake, spec) = from_nothing(1, created_identity());
    fake.set_principal_replication_lag(3);
    let engine = fake.provisioner(&spec, 8, retry(), ProvisionOptions::default()).unwrap().provisioner;
    let plan = engine.plan(&spec).await.unwrap();
    let started = tokio::time::Instant::now();
    let report = engine.apply(&plan).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(report.principal_retries, 3);
    // 5 s, 10 s, 20 s of waiting on tokio's paused clock, and no more.
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(35) && waited < Duration::from_secs(36), "{waited:?}");
    assert_eq!(fake.role_assignments().len(), 1);
    assert!(report.to_string().contains("3 role assignment(s) retried"), "{report}");
}

#[tokio::test(start_paused = true)]
async fn the_principal_retry_is_bounded() {
    let (fake, spec) = from_nothing(1, created_identity());
    fake.set_principal_replication_lag(100);
    let options = ProvisionOptions {
        principal_retry: PrincipalRetry {
            attempts: 4,
            first_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(15),
        },
        ..ProvisionOptions::default()
    };
    let engine = fake.provisioner(&spec, 8, retry(), options).unwrap().provisioner;
    let plan = engine.plan(&spec).await.unwrap();
    let started = tokio::time::Instant::now();
    let report = engine.apply(&plan).await;
    let waited = started.elapsed();
    assert!(!report.is_success());
    assert_eq!(report.principal_retries, 3);
    assert!(waited >= Duration::from_secs(5 + 10 + 15) && waited < Duration::from_secs(31), "{waited:?}");
    let failed: Vec<&ActionResult> =
        report.actions.iter().filter(|a| matches!(a.status, ActionStatus::Failed { .. })).collect();
    assert_eq!(failed.len(), 1, "{report}");
    assert!(failed[0].description.starts_with("assign 'Key Vault Secrets User'"));
    // The failure is typed: the service, its status and its code, not only a message.
    let ActionStatus::Failed { error } = &failed[0].status else { panic!("{report}") };
    assert_eq!(error.code.as_deref(), Some("PrincipalNotFound"));
    assert_eq!(error.service.as_deref(), Some("arm"));
    assert_eq!(error.status, Some(400));
    assert!(!error.throttled);
    assert!(error.message.contains("PrincipalNotFound"));
    assert!(fake.role_assignments().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_grant_made_elsewhere_is_found_and_not_made_twice() {
    let (fake, mut spec) = setup(1, 1, FakeOptions::default());
    spec.grants = vec![key_vault_grant()];
    let principal = fake.service_principal(APP).unwrap();
    let engine = fake.provisioner(&spec, 8, retry(), ProvisionOptions::default()).unwrap().provisioner;
    // Planned before the grant exists; a person assigns it in the portal (another name) before apply.
    let plan = engine.plan(&spec).await.unwrap();
    assert!(kinds(&plan).contains(&"grant"));
    fake.seed_role_assignment(KEY_VAULT, "Key Vault Secrets User", principal).unwrap();
    let report = engine.apply(&plan).await;
    assert!(report.is_success(), "{report}");
    let grant = report.actions.iter().find(|a| a.description.starts_with("assign")).unwrap();
    assert_eq!(grant.status, ActionStatus::AlreadyDone, "RoleAssignmentExists, checked, is success");
    assert_eq!(fake.role_assignments().len(), 1, "no second assignment");
    // And a later plan finds it, whatever its name: nothing to do.
    assert!(!kinds(&engine.plan(&spec).await.unwrap()).contains(&"grant"));
}

#[tokio::test(start_paused = true)]
async fn a_conflict_that_is_not_the_grant_fails() {
    let (fake, mut spec) = setup(1, 1, FakeOptions::default());
    spec.grants = vec![key_vault_grant()];
    let principal = fake.service_principal(APP).unwrap();
    let engine = fake.provisioner(&spec, 8, retry(), ProvisionOptions::default()).unwrap().provisioner;
    let plan = engine.plan(&spec).await.unwrap();
    // Someone else holds the deterministic name with another role: the 409 must not pass for success.
    let Some(Action::AssignRole { role_definition_id, .. }) =
        plan.actions.iter().find(|a| matches!(a, Action::AssignRole { .. }))
    else {
        panic!("no grant planned: {plan}")
    };
    let name = role_assignment_name(KEY_VAULT, role_definition_id, principal);
    let client = dataverse_mi::clients::ArmClient::new(
        &dataverse_mi::cloud::CloudProfile::from(Cloud::Public),
        dataverse_mi::testkit::test_token(),
        dataverse_mi::clients::ClientOptions { transport: Some(fake.transport()), ..Default::default() },
    )
    .unwrap();
    let reader =
        "/subscriptions/sub-1/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7";
    client.create_role_assignment(KEY_VAULT, name, reader, principal).await.unwrap();
    let report = engine.apply(&plan).await;
    assert!(!report.is_success(), "{report}");
    let grant = report.actions.iter().find(|a| a.description.starts_with("assign")).unwrap();
    assert!(
        matches!(&grant.status, ActionStatus::Failed { error } if error.code.as_deref() == Some("RoleAssignmentExists") && error.status == Some(409)),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn what_cannot_work_is_refused_before_any_write() {
    // An application given by id that does not exist: the FIC list finds out.
    let (fake, mut spec) = from_nothing(1, IdentitySpec::app_registration(APP));
    spec.grants.clear();
    let engine = fake.provisioner(&spec, 8, retry(), ProvisionOptions::default()).unwrap().provisioner;
    let err = engine.plan(&spec).await.unwrap_err();
    assert!(matches!(err, ProvisionError::IdentityNotFound { .. }), "{err}");

    // The identity does not exist and the spec does not ask to create it.
    let (fake, spec) = from_nothing(1, IdentitySpec::app_registration_named("Nobody", false));
    let engine = fake.provisioner(&spec, 8, retry(), ProvisionOptions::default()).unwrap().provisioner;
    let err = engine.plan(&spec).await.unwrap_err();
    assert!(matches!(err, ProvisionError::IdentityNotFound { .. }), "{err}");
    assert!(err.to_string().contains("create = true"), "{err}");

    // A role with no definition at the scope.
    let (fake, mut spec) = from_nothing(1, created_identity());
    spec.grants[0].role = "Key Vault Secret User".into();
    let engine = fake.provisioner(&spec, 8, retry(), ProvisionOptions::default()).unwrap().provisioner;
    let err = engine.plan(&spec).await.unwrap_err();
    assert!(matches!(&err, ProvisionError::RoleNotFound { role, .. } if role == "Key Vault Secret User"), "{err}");

    // Two applications with the display name: which one is meant is not guessed.
    let (fake, spec) = from_nothing(1, created_identity());
    fake.add_application(Uuid::from_u128(1), "Contoso plug-ins (created)");
    fake.add_application(Uuid::from_u128(2), "Contoso plug-ins (created)");
    let engine = fake.provisioner(&spec, 8, retry(), ProvisionOptions::default()).unwrap().provisioner;
    let err = engine.plan(&spec).await.unwrap_err().to_string();
    assert!(err.contains("2 applications are named") && err.contains("app_id"), "{err}");

    // Grants with no ARM client to make them.
    let (fake, spec) = from_nothing(1, created_identity());
    let platform = fake.client_platform(8, retry()).unwrap();
    let identity = dataverse_mi::provision::api::identity_api(
        &spec.identity,
        &dataverse_mi::cloud::CloudProfile::from(Cloud::Public),
        &platform,
    )
    .unwrap();
    let bare =
        dataverse_mi::provision::Provisioner::new(identity, std::sync::Arc::new(platform), ProvisionOptions::default());
    assert!(bare.plan(&spec).await.unwrap_err().to_string().contains("with_access"));
    assert_eq!(fake.writes(), 0);
}

#[test]
fn a_spec_asking_for_a_secret_is_refused_and_says_why() {
    for field in ["password_credentials = [{}]", "client_secret = \"hunter2\"", "key_credentials = []"] {
        let text = format!(
            "[identity]\nkind = \"app-registration\"\ndisplay_name = \"x\"\ncreate = true\n{field}\n\
             [[environments]]\norg_url = \"https://a.crm.dynamics.com\"\ncertificate = {{ sha256 = \"{}\" }}\n",
            "ab".repeat(32)
        );
        let err = ProvisionSpec::from_toml(&text).unwrap_err();
        assert!(matches!(err, SpecError::CredentialRequested { .. }), "{field}: {err}");
        let message = err.to_string();
        assert!(message.contains("refused") && message.contains("no secret"), "{message}");
        assert!(!message.contains("hunter2"), "the value is never repeated");
    }
    let creates_without_a_name = "[identity]\nkind = \"app-registration\"\napp_id = \"0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b\"\ncreate = true\n[[environments]]\norg_url = \"https://a.crm.dynamics.com\"\ncertificate = { sha256 = \"".to_owned() + &"ab".repeat(32) + "\" }\n";
    assert!(matches!(ProvisionSpec::from_toml(&creates_without_a_name), Err(SpecError::Invalid { .. })));
}

#[test]
fn the_example_spec_with_create_and_grants_reads() {
    let spec =
        ProvisionSpec::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/specs/from-nothing.toml")).unwrap();
    assert!(matches!(spec.identity, IdentitySpec::UserAssigned { create: Some(_), .. }));
    assert_eq!(spec.grants.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_run_stopped_after_creating_the_application_finds_it_again() {
    let (fake, spec) = from_nothing(2, created_identity());
    // Every request takes 20 ms, so the apply can be stopped between two of them.
    fake.set_faults(FaultOptions { delayed: 1.0, delay: Duration::from_millis(20), ..FaultOptions::default() });
    let engine = fake.provisioner(&spec, 8, retry(), ProvisionOptions::default()).unwrap().provisioner;
    let plan = engine.plan(&spec).await.unwrap();
    // Stopped once the application exists and before its service principal does.
    let fake_for_stop = fake.clone();
    let stop = async move {
        while fake_for_stop.applications_named("Contoso plug-ins (created)").is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::select! {
        _ = engine.apply(&plan) => panic!("the apply should have been stopped"),
        _ = stop => {}
    }
    let app_id = fake.applications_named("Contoso plug-ins (created)")[0];
    assert_eq!(fake.service_principal(app_id), None);
    let rerun = engine.plan(&spec).await.unwrap();
    assert_eq!(rerun.application_id(), Some(app_id), "found by its display name");
    assert!(rerun.to_string().contains("create the service principal"), "{rerun}");
    assert!(engine.apply(&rerun).await.is_success());
    assert_eq!(fake.applications_named("Contoso plug-ins (created)"), [app_id], "never a second application");
    assert!(engine.verify(&spec).await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn an_edited_plan_naming_no_environment_is_reported_not_lost() {
    let (fake, spec) = setup(1, 1, FakeOptions::default());
    let engine = fake.provisioner(&spec, 4, retry(), ProvisionOptions::default()).unwrap().provisioner;
    let mut plan = engine.plan(&spec).await.unwrap();
    let component = plan.environments[0].components[0].clone();
    plan.actions.push(Action::Bind { environment: 99, component, managed_identity: Some(Uuid::from_u128(7)) });
    let report = engine.apply(&plan).await;
    assert_eq!(report.actions.len(), plan.actions.len());
    assert!(!report.is_success());
    let last = report.actions.last().unwrap();
    assert!(matches!(&last.status, ActionStatus::Skipped { reason } if reason.contains("environment")), "{report}");
}

#[tokio::test(start_paused = true)]
async fn when_the_identity_cannot_be_created_nothing_else_is_attempted() {
    let (fake, spec) = from_nothing(2, created_identity());
    let engine = fake.provisioner(&spec, 8, retry(), ProvisionOptions::default()).unwrap().provisioner;
    let plan = engine.plan(&spec).await.unwrap();
    fake.set_faults(FaultOptions { unavailable: 1.0, ..FaultOptions::default() });
    fake.clear_log();
    let report = engine.apply(&plan).await;
    assert_eq!(report.actions.len(), plan.actions.len());
    assert!(matches!(report.actions[0].status, ActionStatus::Failed { .. }), "{report}");
    assert!(report.actions[1..].iter().all(
        |a| matches!(&a.status, ActionStatus::Skipped { reason } if reason.starts_with("the identity is not there"))
    ));
    assert_eq!(report.identity, None);
    assert!(fake.requests().iter().all(|r| r.route.contains(" graph ")), "nothing sent to Dataverse or ARM");
}

/// Two teams' specs share one app registration: pruning one spec never deletes the other's FICs, nor a FIC made
/// by hand; it deletes only the FICs it made for its own environments that nothing wants any more, and says why.
#[tokio::test(start_paused = true)]
async fn prune_owns_only_its_own_fics() {
    let (fake, spec) = setup(2, 1, FakeOptions::default());
    let team = |i: usize| {
        let mut s = spec.clone();
        s.environments = vec![spec.environments[i].clone()];
        s.prune = true;
        s
    };
    let (a, b) = (team(0), team(1));
    let engine = fake.provisioner(&a, 4, retry(), ProvisionOptions::default()).unwrap().provisioner;
    for s in [&a, &b] {
        let plan = engine.plan(s).await.unwrap();
        assert!(engine.apply(&plan).await.is_success());
    }
    let b_fics: Vec<String> =
        engine.plan(&b).await.unwrap().environments[0].fics.iter().map(|f| f.name.clone()).collect();
    // A hand-made FIC, a look-alike named like ours whose suffix is not of its subject (made by hand with our
    // naming), and a stale one team A made earlier for its own environment (another certificate).
    let a_env = engine.plan(&a).await.unwrap().environments[0].environment_id;
    let mut stale = fake.graph_fics(APP)[0].clone();
    stale.subject = stale.subject.replace(&stale.subject[stale.subject.len() - 8..], "00000000");
    stale.name = dataverse_mi::fic::default_name(a_env, &stale.subject);
    fake.seed_graph_fic(APP, stale.clone());
    let mut look_alike = fake.graph_fics(APP)[0].clone();
    look_alike.subject = look_alike.subject.replace(&look_alike.subject[look_alike.subject.len() - 8..], "11111111");
    look_alike.name = format!("dataverse-{a_env}-handmade0001");
    fake.seed_graph_fic(APP, look_alike);
    let mut hand_made = fake.graph_fics(APP)[0].clone();
    hand_made.name = "made-by-hand".into();
    hand_made.subject.push_str("-elsewhere");
    fake.seed_graph_fic(APP, hand_made);

    let plan = engine.plan(&a).await.unwrap();
    let deletes: Vec<(&str, &str)> = plan
        .actions
        .iter()
        .filter_map(|x| match x {
            Action::DeleteFic { name, reason, .. } => Some((name.as_str(), reason.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(deletes.len(), 1, "{plan}");
    assert_eq!(deletes[0].0, stale.name);
    assert!(deletes[0].1.contains("made by this spec for https://env0.crm.dynamics.com"), "{}", deletes[0].1);
    assert!(engine.apply(&plan).await.is_success());
    let left: Vec<String> = fake.graph_fics(APP).into_iter().map(|f| f.name).collect();
    let handmade = format!("dataverse-{a_env}-handmade0001");
    for name in b_fics.iter().map(String::as_str).chain(["made-by-hand", handmade.as_str()]) {
        assert!(left.iter().any(|l| l == name), "{name} must stay: {left:?}");
    }
    assert!(!left.contains(&stale.name));
}

/// A bad spec is refused before any request (before a token is even asked for), naming the field and the reason.
#[tokio::test(start_paused = true)]
async fn bad_specs_are_refused_before_any_request() {
    let (fake, spec) = setup(1, 1, FakeOptions::default());
    let engine = fake.provisioner(&spec, 4, retry(), ProvisionOptions::default()).unwrap().provisioner;
    let with_url = |url: &str| {
        let mut s = spec.clone();
        s.environments[0].org_url = url.into();
        s
    };
    let long = format!("https://{}.crm.dynamics.com", "a".repeat(400));
    let mut cases: Vec<(ProvisionSpec, &str, &str)> = vec![
        (with_url("http://env0.crm.dynamics.com"), "environments.org_url", "https"),
        (with_url("https://user:pw@env0.crm.dynamics.com"), "environments.org_url", "credentials"),
        (with_url("https://env0.crm.dynamics.com/main.aspx"), "environments.org_url", "path"),
        (with_url("https://env0.crm.dynamics.com/?x=1"), "environments.org_url", "query"),
        (with_url("https://evil.example.com"), "environments.org_url", "not a Dataverse host"),
        (with_url("https://env0.crm.microsoftdynamics.us"), "environments.org_url", "of the public cloud"),
        (with_url(&long), "environments.org_url", "characters long"),
    ];
    let mut empty = spec.clone();
    empty.environments[0].plugin_assemblies.push("  ".into());
    cases.push((empty, "environments.plugin_assemblies", "empty component"));
    // Ten thousand copies of one environment: refused at once, not as "too many FICs" after thousands of requests.
    let mut duplicates = spec.clone();
    duplicates.environments = vec![spec.environments[0].clone(); 10_000];
    cases.push((duplicates, "environments", "at most 20"));
    let mut twice = spec.clone();
    twice.environments.push(spec.environments[0].clone());
    twice.environments[1].org_url = "https://ENV0.crm.dynamics.com/".into();
    cases.push((twice, "environments.org_url", "environments 1 and 2 are the same environment"));
    let mut many = spec.clone();
    many.environments = (0..21)
        .map(|i| {
            let mut e = spec.environments[0].clone();
            e.org_url = format!("https://e{i}.crm.dynamics.com");
            e
        })
        .collect();
    cases.push((many, "environments", "21 environments need at least 21 FICs"));
    for (bad, field, words) in cases {
        let err = engine.plan(&bad).await.unwrap_err();
        let ProvisionError::Spec(SpecError::Invalid { field: f, .. }) = &err else { panic!("{field}: {err:?}") };
        assert_eq!(*f, field, "{err}");
        assert!(err.to_string().contains(words), "{field}: {err}");
    }
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

/// Faults aimed at particular requests (by route, host and count), as a user of the testkit tests their own code.
#[tokio::test(start_paused = true)]
async fn targeted_faults_and_the_request_log() {
    use dataverse_mi::testkit::Fault;
    let (fake, spec) = setup(2, 1, FakeOptions::default());
    // One request at a time, so that faults aim at each route (batched faults: `faults_inside_batches`).
    let engine = fake.provisioner(&spec, 4, retry(), batching(false)).unwrap().provisioner;
    // The next two FIC creates answer 503 (then go through on retry); one environment's row create is slow.
    fake.inject(Fault::status("POST graph fics".parse().unwrap(), 503).times(2));
    fake.inject(
        Fault::slow("POST dataverse managedidentities".parse().unwrap(), Duration::from_secs(30))
            .on_host("env1.crm.dynamics.com"),
    );
    let started = tokio::time::Instant::now();
    let report = engine.apply(&engine.plan(&spec).await.unwrap()).await;
    assert!(report.is_success(), "{report}");
    assert!(started.elapsed() >= Duration::from_secs(30), "the slow answer was waited for");
    let log = fake.requests();
    let faults: Vec<_> = log.iter().filter(|r| r.fault).collect();
    assert_eq!(faults.len(), 2, "{faults:?}");
    assert!(faults.iter().all(|r| r.route == "POST graph fics" && r.status == 503));
    let create = log.iter().find(|r| r.route == "POST graph fics" && !r.fault).unwrap();
    assert_eq!(create.method, "POST");
    assert_eq!(create.host.as_deref(), Some("graph.microsoft.com"));
    assert!(create.bearer, "a token was sent");
    assert!(create.body.contains("\"audiences\""), "{}", create.body);
    assert!(!format!("{log:?}").contains("fake-token"), "never the token's value");
    let query = log.iter().find(|r| r.route == "GET dataverse managedidentities").unwrap();
    assert!(query.path_and_query.contains("%24filter=applicationid+eq+"), "as sent: {}", query.path_and_query);

    // A 409 aimed at one route, then a truncated answer: typed failures, not panics.
    fake.clear_log();
    let (fake2, spec2) = setup(1, 1, FakeOptions::default());
    let engine2 = fake2.provisioner(&spec2, 4, retry(), batching(false)).unwrap().provisioner;
    fake2.inject(Fault::truncated("GET graph fics".parse().unwrap()));
    let err = engine2.plan(&spec2).await.unwrap_err();
    assert!(err.to_string().contains("list FICs") || err.to_string().contains("EOF"), "{err}");
    fake2.inject(Fault::status("PATCH dataverse pluginassemblies(id)".parse().unwrap(), 409));
    let report = engine2.apply(&engine2.plan(&spec2).await.unwrap()).await;
    let failed: Vec<_> = report.actions.iter().filter(|a| matches!(a.status, ActionStatus::Failed { .. })).collect();
    assert_eq!(failed.len(), 1, "{report}");
    assert!(matches!(&failed[0].status, ActionStatus::Failed { error } if error.status == Some(409)));
}

/// Trace logs are read page by page: the client's stream yields each page as it comes, and watch keeps only the
/// failures, not the window's rows.
#[tokio::test(start_paused = true)]
async fn trace_logs_page_by_page() {
    use futures_util::StreamExt as _;
    let (fake, spec) = setup(1, 1, FakeOptions { page_size: 2, ..FakeOptions::default() });
    let host = "env0.crm.dynamics.com";
    let engine = fake.provisioner(&spec, 4, retry(), ProvisionOptions::default()).unwrap().provisioner;
    let plan = engine.plan(&spec).await.unwrap();
    assert!(engine.apply(&plan).await.is_success());
    let component = plan.environments[0].components[0].id;
    fake.set_trace_setting(host, 2);
    // Two good runs, then the FIC goes and three runs fail.
    for _ in 0..2 {
        assert!(fake.run_plugin(host, component, "Contoso.Plugins.Reader"));
    }
    assert!(fake.remove_graph_fic(APP, &plan.environments[0].fic.name));
    for _ in 0..3 {
        assert!(!fake.run_plugin(host, component, "Contoso.Plugins.Reader"));
    }
    let client = dataverse_mi::clients::DataverseClient::new(
        dataverse_mi::clients::OrgUrl::parse(&format!("https://{host}")).unwrap(),
        dataverse_mi::testkit::test_token(),
        dataverse_mi::clients::ClientOptions { transport: Some(fake.transport()), ..Default::default() },
    )
    .unwrap();
    let sizes: Vec<usize> =
        client.plugin_trace_log_pages("2000-01-01T00:00:00Z", None).map(|page| page.unwrap().len()).collect().await;
    assert_eq!(sizes, [2, 2, 1], "one page at a time");
    let report = engine.watch(&spec, &WatchOptions::since_text("2000-01-01T00:00:00Z").unwrap()).await.unwrap();
    assert_eq!(report.environments[0].rows, 5);
    assert_eq!(report.failures.len(), 3, "the failures of every page");
}

/// Batches under faults: a failed round trip is retried; a change set that fails is rolled back by the service
/// and done again one request at a time, where an inner failure comes back typed as a single request's would;
/// a Graph batch that fails, or one FIC in it, falls back to single creates.
#[tokio::test(start_paused = true)]
async fn faults_inside_batches() {
    use dataverse_mi::testkit::Fault;
    // A 503 on the read batch: retried like any request.
    let (fake, spec) = setup(2, 2, FakeOptions::default());
    let engine = fake.provisioner(&spec, 4, retry(), batching(true)).unwrap().provisioner;
    fake.inject(Fault::status("POST dataverse $batch".parse().unwrap(), 503).on_host("env0.crm.dynamics.com"));
    let plan = engine.plan(&spec).await.unwrap();
    assert_eq!(fake.requests().iter().filter(|r| r.fault).count(), 1);
    assert_eq!(plan.environments.len(), 2);

    // One FIC of the Graph batch answers 503: it is created again alone.
    fake.clear_log();
    fake.inject(Fault::status("POST graph fics".parse().unwrap(), 503));
    // The bind of env1's first component fails twice: inside the change set (which rolls back the row), and
    // again when sent alone.
    fake.inject(
        Fault::status("PATCH dataverse pluginassemblies(id)".parse().unwrap(), 409)
            .on_host("env1.crm.dynamics.com")
            .times(2),
    );
    let report = engine.apply(&plan).await;
    let failed: Vec<&ActionResult> =
        report.actions.iter().filter(|a| matches!(a.status, ActionStatus::Failed { .. })).collect();
    assert_eq!(failed.len(), 1, "{report}");
    assert!(
        matches!(&failed[0].status, ActionStatus::Failed { error } if error.status == Some(409) && error.code.as_deref() == Some("0x80040216")),
        "the inner failure, typed: {report}"
    );
    let log = fake.requests();
    // The FIC whose inner create failed was sent again alone, and both FICs exist once.
    assert!(log.iter().any(|r| r.route == "POST graph fics" && r.in_batch && r.status == 503));
    assert!(log.iter().any(|r| r.route == "POST graph fics" && !r.in_batch && r.status == 201));
    assert_eq!(fake.graph_fics(APP).len(), 2);
    // env1's change set was rolled back: its row was created again, alone, without a conflict.
    let creates: Vec<_> = log
        .iter()
        .filter(|r| r.route == "POST dataverse managedidentities" && r.host.as_deref() == Some("env1.crm.dynamics.com"))
        .collect();
    assert_eq!(creates.len(), 2, "{creates:?}");
    assert!(creates[0].in_batch && !creates[1].in_batch && creates[1].status < 300, "{creates:?}");
    // env0's change set went through whole.
    assert!(
        log.iter().any(|r| r.route == "POST dataverse $batch" && r.host.as_deref() == Some("env0.crm.dynamics.com"))
    );
    assert_eq!(fake.managed_identities("env0.crm.dynamics.com").len(), 1);

    // The next run mends the bind.
    let rerun = engine.plan(&spec).await.unwrap();
    assert_eq!(rerun.actions.len(), 1, "{:?}", rerun.actions);
    assert!(engine.apply(&rerun).await.is_success());
    assert!(engine.verify(&spec).await.unwrap().is_ok());

    // A Graph batch that fails whole: every FIC is created alone.
    let (fake, spec) = setup(3, 1, FakeOptions::default());
    let engine = fake.provisioner(&spec, 4, retry(), batching(true)).unwrap().provisioner;
    let plan = engine.plan(&spec).await.unwrap();
    fake.clear_log();
    fake.inject(Fault::status("POST graph $batch".parse().unwrap(), 400));
    let report = engine.apply(&plan).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(fake.count("POST graph fics".parse().unwrap()), 3, "each FIC alone after the failed batch");
    assert_eq!(fake.graph_fics(APP).len(), 3);
}

/// One environment, one FIC: the FIC alone, then the row and binds in one change set.
#[tokio::test(start_paused = true)]
async fn a_single_environment_still_gets_its_change_set() {
    let (fake, spec) = setup(1, 2, FakeOptions::default());
    let engine = fake.provisioner(&spec, 4, retry(), batching(true)).unwrap().provisioner;
    let plan = engine.plan(&spec).await.unwrap();
    fake.clear_log();
    assert!(engine.apply(&plan).await.is_success());
    assert_eq!(fake.count("POST graph $batch".parse().unwrap()), 0, "one FIC needs no batch");
    assert_eq!(fake.count("POST graph fics".parse().unwrap()), 1);
    assert_eq!(fake.count("POST dataverse $batch".parse().unwrap()), 1, "the row and both binds together");
    assert_eq!(fake.round_trips()["dataverse"], 1);
    assert_eq!(fake.writes(), 1 + 1 + 2);
}
