//! A service that provisions on request, as a platform team's portal or a queue worker embeds the crate.
//!
//! `cargo run --example service --features testkit`
//!
//! Requests arrive on a channel (an HTTP handler or a queue consumer would send them); a worker spawns a task per
//! request, so plans and applies for different teams run at once on a multi-threaded runtime. Each request names a
//! spec; the engine for its identity is built once (`Provisioner::for_identity`) and shared by every request naming
//! that identity, on the one client stack (`Platform`) the service built at start-up (here pointed at the crate's
//! built-in fake with `Platform::with_endpoints`, so that the example runs without an Azure account). Each report
//! counts its own call's requests, whatever else runs at the same time.

use std::sync::Arc;

use dataverse_mi::auth::TokenSource;
use dataverse_mi::clients::{ClientOptions, Endpoints, Platform};
use dataverse_mi::provision::{
    ApplyReport, CertificateSpec, EnvironmentSpec, IdentitySpec, Plan, ProvisionError, ProvisionOptions, ProvisionSpec,
    Provisioner,
};
use dataverse_mi::testkit::{FakeOptions, FakePlatform, test_token};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// What the service is asked.
enum Request {
    /// Plan a spec (nothing is written).
    Plan { spec: ProvisionSpec, reply: oneshot::Sender<Result<Plan, ProvisionError>> },
    /// Plan and apply a spec.
    Apply { spec: ProvisionSpec, reply: oneshot::Sender<Result<ApplyReport, ProvisionError>> },
}

/// How the service makes an engine for a spec. In production: the real services of the spec's cloud, signed in
/// with the service's own credential (e.g. `dataverse_mi::auth::AzureIdentity` over workload identity).
///
/// The client stack (`Platform`) is built once, at start-up, and every engine borrows it: one HTTP transport (its
/// connections and TLS sessions), one token cache (a token per service and scope, refreshed when it nears its end
/// or a service refuses it), one set of counters, one Dataverse concurrency limit for the service's user.
#[derive(Clone)]
struct Engines {
    platform: Platform,
    /// One engine per identity and cloud, shared by every request naming them.
    engines: Arc<std::sync::Mutex<Vec<(IdentitySpec, dataverse_mi::cloud::Cloud, Provisioner)>>>,
}

impl Engines {
    fn new(credential: Arc<dyn TokenSource>, endpoints: Option<Endpoints>) -> Result<Self, Box<dyn std::error::Error>> {
        let mut platform = Platform::new(credential, ClientOptions::default())?;
        if let Some(endpoints) = endpoints {
            platform = platform.with_endpoints(endpoints);
        }
        Ok(Engines { platform, engines: Arc::default() })
    }

    /// The engine of the spec's identity: made the first time it is asked for, then shared (a clone is cheap).
    fn engine(&self, spec: &ProvisionSpec) -> Result<Provisioner, ProvisionError> {
        let mut engines = self.engines.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((.., engine)) = engines.iter().find(|(i, c, _)| *i == spec.identity && *c == spec.cloud) {
            return Ok(engine.clone());
        }
        let engine =
            Provisioner::for_identity(&spec.identity, spec.cloud, &self.platform, ProvisionOptions::default())?;
        engines.push((spec.identity.clone(), spec.cloud, engine.clone()));
        Ok(engine)
    }
}

/// The worker: one spawned task per request (the engine's futures are `Send + 'static` with owned inputs).
async fn serve(engines: Engines, mut requests: mpsc::Receiver<Request>) {
    while let Some(request) = requests.recv().await {
        let engines = engines.clone();
        tokio::spawn(async move {
            match request {
                Request::Plan { spec, reply } => {
                    let planned = async { engines.engine(&spec)?.plan(&spec).await }.await;
                    let _ = reply.send(planned);
                }
                Request::Apply { spec, reply } => {
                    let applied = async {
                        let engine = engines.engine(&spec)?;
                        let plan = engine.plan(&spec).await?;
                        Ok(engine.apply(&plan).await)
                    }
                    .await;
                    let _ = reply.send(applied);
                }
            }
        });
    }
}

fn team_spec(app_id: Uuid, host: &str, cert_path: &str) -> ProvisionSpec {
    ProvisionSpec::new(
        IdentitySpec::app_registration(app_id),
        vec![
            EnvironmentSpec::new(format!("https://{host}"))
                .with_assemblies(["Contoso.Plugins"])
                .with_certificate(CertificateSpec::File { path: cert_path.into(), password_env: None }),
        ],
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The built-in fake: two teams, each with its app registration and environment.
    let tenant = Uuid::parse_str("72f988bf-86f1-41af-91ab-2d7cd011db47")?;
    let cert_path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/contoso-plugins.cer");
    let cert = dataverse_mi::cert::Certificate::from_file(cert_path)?.certificate;
    let fake = FakePlatform::new(FakeOptions::default());
    let teams =
        [(Uuid::from_u128(0xa1), "contoso.crm.dynamics.com"), (Uuid::from_u128(0xb2), "fabrikam.crm.dynamics.com")];
    fake.add_default_environment(teams[0].1, tenant);
    fake.add_environment(teams[1].1, tenant);
    for (app, host) in teams {
        fake.add_application(app, &format!("plug-ins of {host}"));
        fake.add_plugin_assembly(host, "Contoso.Plugins", Some(cert.clone()));
    }
    let server = fake.start().await;

    let (send, receive) = mpsc::channel(16);
    let tokens = Arc::new(Counting { inner: test_token(), fetched: Default::default() });
    let worker = tokio::spawn(serve(Engines::new(tokens.clone(), Some(server.endpoints()))?, receive));

    // Two teams ask at once: a plan first (nothing written), then an apply each.
    let mut asked = Vec::new();
    for (app, host) in teams {
        let (reply, answer) = oneshot::channel();
        send.send(Request::Plan { spec: team_spec(app, host, cert_path), reply }).await?;
        asked.push((host, answer));
    }
    for (host, answer) in asked {
        let plan = answer.await??;
        println!("== plan for {host}\n{plan}\n");
    }
    let writes_after_plans = fake.writes();
    let mut applies = Vec::new();
    for (app, host) in teams {
        let (reply, answer) = oneshot::channel();
        send.send(Request::Apply { spec: team_spec(app, host, cert_path), reply }).await?;
        applies.push((host, answer));
    }
    let mut all_ok = true;
    for (host, answer) in applies {
        let report = answer.await??;
        println!(
            "== apply for {host} ({}: {} requests of its own)\n{report}\n",
            report.counts.call, report.counts.requests
        );
        all_ok &= report.is_success();
    }
    drop(send);
    worker.await?;
    let fetched = tokens.fetched.lock().map(|f| f.clone()).unwrap_or_default();
    println!("requests served by the fake: {}; tokens fetched per scope: {}", fake.requests().len(), listed(&fetched));
    // Over loopback HTTP, the production path: reads and writes in batches, never one by one after a failed batch.
    let log = fake.requests();
    let single_reads = log.iter().filter(|r| r.route == "GET dataverse RetrieveCurrentOrganization" && !r.in_batch);
    println!("round trips by service: {}", listed(&fake.round_trips()));
    println!("requests carried inside batches: {}", listed(&fake.batched_requests()));
    let batched_path = log.iter().any(|r| r.is_batch()) && single_reads.count() == 0;
    println!("path: {}", if batched_path { "batched" } else { "FELL BACK to single requests" });
    if !batched_path {
        return Err("the service's requests did not go in batches".into());
    }
    if writes_after_plans != 0 || !all_ok {
        return Err("the service did not provision as expected".into());
    }
    // One token per scope for the whole service, however many requests and engines (here the fake serves every
    // service on one origin, so one scope): a stack made per request fetches one per request.
    if fetched.is_empty() || fetched.values().any(|n| *n != 1) {
        return Err(format!("tokens fetched per scope: {fetched:?}; the engines do not share one stack").into());
    }
    Ok(())
}

/// The service's credential, counting what it is asked.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn TokenSource>,
    fetched: std::sync::Mutex<std::collections::BTreeMap<String, usize>>,
}

#[dataverse_mi::reexports::async_trait]
impl TokenSource for Counting {
    async fn token(&self, scopes: &[&str]) -> Result<dataverse_mi::auth::AccessToken, dataverse_mi::auth::AuthError> {
        if let Ok(mut fetched) = self.fetched.lock() {
            *fetched.entry(scopes.join(" ")).or_default() += 1;
        }
        self.inner.token(scopes).await
    }
}

/// `a: 1, b: 2`, for a count per name.
fn listed<K: std::fmt::Display, V: std::fmt::Display>(counts: &std::collections::BTreeMap<K, V>) -> String {
    counts.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
}
