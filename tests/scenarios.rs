//! The built-in scenarios `dataverse-mi fake` serves work with the example specs made for them, over loopback HTTP
//! as the shell uses them.
#![cfg(all(feature = "testkit", feature = "spec-toml"))]

use dataverse_mi::provision::{ProvisionOptions, ProvisionSpec, Provisioner};
use dataverse_mi::testkit::{FakeOptions, SCENARIOS, Seed};

/// The scenario `name` served over loopback HTTP, the example spec at `spec` (relative to the crate), and an engine
/// for it by the production constructor.
async fn over_http(
    name: &str,
    spec: &str,
) -> (dataverse_mi::testkit::FakePlatform, dataverse_mi::testkit::FakeServer, ProvisionSpec, Provisioner) {
    let fake = Seed::scenario(name).unwrap().build(FakeOptions::default()).unwrap();
    let server = fake.start().await;
    let spec = ProvisionSpec::from_file(format!("{}/{spec}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let engine = server.provisioner(&spec, ProvisionOptions::default()).unwrap().provisioner;
    (fake, server, spec, engine)
}

#[tokio::test]
async fn every_scenario_provisions_and_verifies_with_its_example_spec() {
    // The estate's spec lists environments to audit (`tests/audit.rs`, `tests/cli.rs`), not to provision.
    for (name, spec) in SCENARIOS.iter().filter(|(name, _)| *name != "estate") {
        let (fake, _server, spec, engine) = over_http(name, spec).await;
        let plan = engine.plan(&spec).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!plan.is_empty(), "{name}");
        let report = engine.apply(&plan).await;
        assert!(report.is_success(), "{name}: {report}");
        let verify = engine.verify(&spec).await.unwrap();
        assert!(verify.is_ok(), "{name}: {verify}");
        assert!(engine.plan(&spec).await.unwrap().is_empty(), "{name}: a re-run has nothing to do");
        // The production path: reads went in batches.
        assert!(fake.requests().iter().any(|r| r.is_batch()), "{name}: no batch was sent");
    }
}

/// The fake over loopback HTTP answers as it does in process (content types, batch envelopes, headers): the
/// quickstart's scenario provisioned both ways sends the same round trips and the same writes, in batches, with no
/// write answered 412 (a row made twice) and no single read where a batch should carry it.
#[tokio::test]
async fn the_quickstart_scenario_costs_the_same_over_http_as_in_process() {
    use dataverse_mi::http::RetryOptions;
    let spec =
        ProvisionSpec::from_file(format!("{}/examples/specs/quickstart.toml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let run = |over_http: bool| {
        let spec = spec.clone();
        async move {
            let fake = Seed::scenario("quickstart").unwrap().build(FakeOptions::default()).unwrap();
            let server = fake.start().await;
            let engine = if over_http {
                server.provisioner(&spec, ProvisionOptions::default()).unwrap().provisioner
            } else {
                fake.provisioner(&spec, 8, RetryOptions::default(), ProvisionOptions::default()).unwrap().provisioner
            };
            let report = engine.apply(&engine.plan(&spec).await.unwrap()).await;
            assert!(report.is_success(), "over HTTP {over_http}: {report}");
            assert!(engine.plan(&spec).await.unwrap().is_empty());
            let log = fake.requests();
            let statuses: Vec<u16> = log.iter().map(|r| r.status).collect();
            assert!(!statuses.contains(&412), "over HTTP {over_http}: a write answered 412: {log:#?}");
            let single_reads =
                log.iter().filter(|r| r.route == "GET dataverse RetrieveCurrentOrganization" && !r.in_batch).count();
            assert_eq!(single_reads, 0, "over HTTP {over_http}: the organization read outside a batch");
            (fake.round_trips(), fake.writes(), fake.batched_requests())
        }
    };
    let in_process = run(false).await;
    let over_http = run(true).await;
    assert_eq!(over_http, in_process, "(round trips, writes, batched requests) over HTTP and in process");
    assert!(in_process.0.get("dataverse").copied().unwrap_or_default() > 0);
}

/// The request log is honest about batches: a fault injected inside one is logged as a fault with its
/// `Retry-After` (and the batch answer carries the header), and the writes of a change set that a later request of
/// the set failed are logged as rolled back and not counted as writes.
#[tokio::test(start_paused = true)]
async fn faults_inside_batches_and_rolled_back_writes_are_logged_as_such() {
    use dataverse_mi::clients::{Batch, ComponentKind, dataverse::requests};
    use dataverse_mi::entities::NewManagedIdentity;
    use dataverse_mi::subject::SubjectFormatVersion;
    use dataverse_mi::testkit::Fault;
    use std::time::Duration;
    use uuid::Uuid;
    let fake = Seed::scenario("contoso").unwrap().build(FakeOptions::default()).unwrap();
    let host = "contoso-dev.crm.dynamics.com";
    let platform = fake.client_platform(4, Default::default()).unwrap();
    let dv = platform.dataverse(&format!("https://{host}")).unwrap();
    let assembly = fake.requests().len(); // nothing yet
    assert_eq!(assembly, 0);

    // A read inside a batch throttled once, with Retry-After: 3.
    fake.inject(
        Fault::status("GET dataverse managedidentities".parse().unwrap(), 429)
            .on_host(host)
            .retry_after(Duration::from_secs(3)),
    );
    let mut reads = Batch::new();
    let rows = reads.add(requests::managed_identities(None));
    let started = tokio::time::Instant::now();
    let mut answers = dv.send_batch(&reads).await;
    assert!(answers.take(rows).unwrap().is_empty());
    assert_eq!(started.elapsed(), Duration::from_secs(3), "the client honoured the item's own Retry-After");
    let faulted: Vec<_> = fake.requests().into_iter().filter(|r| r.in_batch && r.fault).collect();
    assert_eq!(faulted.len(), 1, "{faulted:#?}");
    assert_eq!(faulted[0].status, 429);
    assert_eq!(faulted[0].fault_headers, [("retry-after".to_owned(), "3".to_owned())]);

    // A change set whose second request fails: the row its first request made is undone, and logged so.
    fake.clear_log();
    let component = Uuid::from_u128(0xabc); // no such assembly: the bind fails with 404
    let row = NewManagedIdentity::for_plugins(
        Uuid::from_u128(1),
        Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47),
        Uuid::from_u128(3),
        SubjectFormatVersion::V2,
    );
    let mut writes = Batch::new();
    writes.add(requests::create_managed_identity(&row));
    writes.add(requests::bind(ComponentKind::PluginAssembly, component, row.id));
    assert!(dv.send_change_set(&writes).await.is_err());
    assert!(fake.managed_identities(host).is_empty(), "the change set was all or nothing");
    let log = fake.requests();
    let create = log.iter().find(|r| r.route == "POST dataverse managedidentities").unwrap();
    assert!(create.rolled_back && (200..300).contains(&create.status), "{create:?}");
    let bind = log.iter().find(|r| r.route == "PATCH dataverse pluginassemblies(id)").unwrap();
    assert!(!bind.rolled_back && bind.status >= 400, "{bind:?}");
    assert_eq!(fake.writes(), 1, "the failed bind was a write request; the undone create is not counted");
}

/// The route table is the one place routes are spelled: everything the fake logs while provisioning, verifying,
/// watching and tearing down both scenarios is in it, and `docs/testkit.md` lists every one of them.
#[tokio::test]
async fn every_logged_route_is_in_the_table_and_the_table_is_in_the_docs() {
    use dataverse_mi::provision::{DestroyOptions, WatchOptions};
    use dataverse_mi::testkit::Route;
    for (name, spec) in SCENARIOS.iter().filter(|(name, _)| *name != "estate") {
        let (fake, _server, spec, engine) = over_http(name, spec).await;
        assert!(engine.apply(&engine.plan(&spec).await.unwrap()).await.is_success());
        assert!(engine.verify(&spec).await.unwrap().is_ok());
        engine.watch(&spec, &WatchOptions::since_text("1h").unwrap().enable_tracing(true)).await.unwrap();
        let options = DestroyOptions::default().with_role_assignments(true).with_identity(true);
        assert!(engine.destroy(&engine.plan_destroy(&spec, options).await.unwrap()).await.is_success());
        for r in fake.requests() {
            assert!(r.route.parse::<Route>().is_ok(), "{name}: '{}' is logged and not in the route table", r.route);
        }
    }
    // The estate, audited: what an audit reads is in the table too.
    let fake = Seed::scenario("estate").unwrap().build(FakeOptions::default()).unwrap();
    let server = fake.start().await;
    let platform = server.client_platform(Default::default()).unwrap();
    let auditor = dataverse_mi::audit::Auditor::on_platform(&platform, &Default::default()).unwrap();
    let urls: Vec<String> = Seed::estate(9).environments.iter().map(|e| format!("https://{}", e.host)).collect();
    let report = auditor.audit(&urls, &Default::default()).await;
    assert!(report.environments.iter().all(|e| e.error.is_none()), "{report}");
    for r in fake.requests() {
        assert!(r.route.parse::<Route>().is_ok(), "estate: '{}' is logged and not in the route table", r.route);
    }
    let docs = std::fs::read_to_string(format!("{}/docs/testkit.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    for route in Route::all() {
        let service = route.service();
        let name = route.as_str().splitn(3, ' ').nth(2).unwrap();
        let row = docs.lines().find(|l| l.starts_with(&format!("| `{service}` |"))).unwrap_or_default();
        assert!(row.contains(&format!("`{name}`")), "docs/testkit.md does not list {route} in its `{service}` row");
    }
}
