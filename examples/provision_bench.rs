//! Provisioning at scale against the fake with a fixed latency per request.
//!
//! `cargo run --release --example provision_bench --features testkit -- --environments 50 --components 5 --latency-ms 20 --concurrency 8`
//!
//! Runs twice, batched (the default: Dataverse `$batch`, Graph JSON batches) and one request at a time (what
//! `--no-batch` does), and prints for each the requests by service and method of a first provisioning, its round
//! trips, its wall time and the lower bound `latency x max(longest dependency chain in round trips, max over
//! services of ceil(round trips x permits / concurrency))`, then what a re-run costs; then the two wall times'
//! ratio and the peak memory. `--no-batch` runs only the unbatched one; `--permits-per-request` makes a batch
//! hold one concurrency permit per inner request; `--no-platform-check` plans without asking the platform for its
//! subjects (`ProvisionOptions::platform_subjects`). The last line is one JSON object for scripts.
//!
//! An identity holds at most 20 FICs, so the environments are spread over `ceil(E / 20)` app registrations,
//! one spec each, provisioned four at a time through clients that share each service's concurrency limit.
//!
//! Requests and time are measured with the fake in this process (in-process transport). Memory
//! (`peak_rss_kb`) is measured in a child process that runs only the engine, against the same fake served over
//! loopback HTTP: the fake's own state (every environment's rows, the request log) grows with E and is not
//! the engine's.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use std::sync::Arc;

use dataverse_mi::clients::{ClientOptions, ConcurrencyLimit, Platform};
use dataverse_mi::http::{ReqwestOptions, ReqwestTransport, RetryOptions, Transport};
use dataverse_mi::provision::{
    CertificateSpec, EnvironmentSpec, IdentitySpec, ProvisionOptions, ProvisionSpec, Provisioner,
};
use dataverse_mi::testkit::test_token;
use dataverse_mi::testkit::{FakeOptions, FakePlatform};
use futures_util::StreamExt as _;
use uuid::Uuid;

fn arg(name: &str, default: u64) -> Result<u64, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} takes a number")),
        None => Ok(default),
    }
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn peak_rss_kb() -> u64 {
    status_kb("VmHWM:")
}

/// Specs in flight at once: enough environments to keep every request slot busy, and a bound on what is held.
const SPECS_AT_ONCE: usize = 4;

/// The benchmark's specs: `envs` environments of `components` assemblies, spread over app registrations of at
/// most 20 environments each. With `fake`, the platform is seeded to match.
fn specs(
    envs: usize,
    components: usize,
    fake: Option<&FakePlatform>,
) -> Result<Vec<ProvisionSpec>, Box<dyn std::error::Error>> {
    let tenant = Uuid::parse_str("72f988bf-86f1-41af-91ab-2d7cd011db47")?;
    let app_id = Uuid::parse_str("0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b")?;
    let sha256 = dataverse_mi::cert::Certificate::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/contoso-plugins.cer"
    ))?
    .certificate
    .sha256();
    let per_identity = dataverse_mi::fic::MAX_FICS_PER_IDENTITY;
    let mut specs = Vec::new();
    for (i, chunk) in (0..envs).collect::<Vec<_>>().chunks(per_identity).enumerate() {
        let app_id = Uuid::from_u128(app_id.as_u128() + i as u128);
        if let Some(fake) = fake {
            fake.add_application(app_id, "bench");
        }
        let mut environments = Vec::with_capacity(chunk.len());
        for e in chunk {
            let host = format!("env{e}.crm.dynamics.com");
            let names: Vec<String> = (0..components).map(|c| format!("Bench.Plugins{c}")).collect();
            if let Some(fake) = fake {
                fake.add_environment(&host, tenant);
                for n in &names {
                    fake.add_plugin_assembly(&host, n, None);
                }
            }
            environments.push(
                EnvironmentSpec::new(format!("https://{host}"))
                    .with_assemblies(names)
                    .with_certificate(CertificateSpec::Sha256 { sha256 }),
            );
        }
        specs.push(ProvisionSpec::new(IdentitySpec::app_registration(app_id), environments));
    }
    Ok(specs)
}

/// One engine per spec, all on one client stack: one limit per service, shared by every client of that service, as
/// the platform's per-user limits are. `base` carries the transport (in-process, or HTTP to the fake).
fn engines(
    specs: &[ProvisionSpec],
    concurrency: usize,
    base: ClientOptions,
    endpoints: Option<dataverse_mi::clients::Endpoints>,
    batch: bool,
) -> Result<Vec<Provisioner>, Box<dyn std::error::Error>> {
    let options =
        ClientOptions { max_concurrency: concurrency, shared_limit: Some(ConcurrencyLimit::new(concurrency)), ..base };
    let mut platform = Platform::new(test_token(), options)?;
    if let Some(endpoints) = endpoints {
        platform = platform.with_endpoints(endpoints);
    }
    // Enough environments in flight to keep every slot busy, shared out between the specs in flight: more
    // would only queue on the services' limits and hold memory.
    let per_engine = (concurrency * 4).div_ceil(specs.len().min(SPECS_AT_ONCE)).max(1);
    let platform_subjects = !std::env::args().any(|a| a == "--no-platform-check");
    let options = ProvisionOptions {
        environment_concurrency: per_engine,
        batch,
        platform_subjects,
        ..ProvisionOptions::default()
    };
    let mut out = Vec::new();
    for spec in specs {
        out.push(Provisioner::for_spec(spec, &platform, options.clone())?);
    }
    Ok(out)
}

/// Plans and applies every spec, `SPECS_AT_ONCE` at a time, keeping of each plan and report only what the
/// benchmark reports: the longest dependency chain. Fails on the first unsuccessful apply.
async fn provision_all(engines: &[Provisioner], specs: &[ProvisionSpec], batch: bool) -> Result<usize, String> {
    let mut runs = futures_util::stream::iter(engines.iter().zip(specs))
        .map(|(engine, spec)| async move {
            let plan = engine.plan(spec).await.map_err(|e| e.to_string())?;
            let report = engine.apply(&plan).await;
            if !report.is_success() {
                return Err(format!("provisioning failed:\n{report}"));
            }
            // Reads before writes in each environment (organization, then rows and components; one batch when
            // batching), then the writes the plan chains.
            Ok(if batch { 1 } else { 2 } + plan.apply_chain_length_with(batch))
        })
        .buffer_unordered(SPECS_AT_ONCE);
    let mut chain = 0;
    while let Some(run) = runs.next().await {
        chain = chain.max(run?);
    }
    Ok(chain)
}

/// The engine alone in this process, against the fake at `url` over loopback HTTP: prints its peak RSS.
fn engine_process(
    url: &str,
    envs: usize,
    components: usize,
    concurrency: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let specs = specs(envs, components, None)?;
    // One HTTP client (one connection pool) for every engine and environment, as one process should have.
    let transport: Arc<dyn Transport> = Arc::new(ReqwestTransport::new(ReqwestOptions::default())?);
    let base = ClientOptions { retry: RetryOptions::default(), transport: Some(transport), ..ClientOptions::default() };
    let batch = !std::env::args().any(|a| a == "--no-batch");
    let engines = engines(&specs, concurrency, base, Some(dataverse_mi::testkit::endpoints_at(url)?), batch)?;
    let rss_start = status_kb("VmRSS:");
    rt.block_on(provision_all(&engines, &specs, batch))?;
    println!("{}", serde_json::json!({"peak_rss_kb": peak_rss_kb(), "rss_start_kb": rss_start}));
    Ok(())
}

/// Runs [`engine_process`] in a child process against a fresh, seeded fake served over loopback HTTP.
fn engine_peak_rss(
    rt: &tokio::runtime::Runtime,
    envs: usize,
    components: usize,
    latency: Duration,
    concurrency: usize,
    batch: bool,
) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    let fake = FakePlatform::new(FakeOptions { latency, page_size: 500, ..FakeOptions::default() });
    specs(envs, components, Some(&fake))?;
    let server = rt.block_on(fake.start());
    let output = std::process::Command::new(std::env::current_exe()?)
        .args(["--engine-at", &server.uri()])
        .args(["--environments", &envs.to_string(), "--components", &components.to_string()])
        .args(["--concurrency", &concurrency.to_string()])
        .args(if batch { &[][..] } else { &["--no-batch"][..] })
        .output()?;
    if !output.status.success() {
        return Err(format!("the engine process failed: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))?;
    let field = |name: &str| last[name].as_u64().ok_or_else(|| format!("the engine process did not report {name}"));
    Ok((field("peak_rss_kb")?, field("rss_start_kb")?))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let envs = arg("--environments", 50)? as usize;
    let components = arg("--components", 5)? as usize;
    let latency = Duration::from_millis(arg("--latency-ms", 20)?);
    let concurrency = arg("--concurrency", 8)? as usize;
    let args: Vec<String> = std::env::args().collect();
    if let Some(url) = args.iter().position(|a| a == "--engine-at").and_then(|i| args.get(i + 1)) {
        return engine_process(url, envs, components, concurrency);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;

    let permits_per_request = args.iter().any(|a| a == "--permits-per-request");
    let modes: &[bool] = if args.iter().any(|a| a == "--no-batch") { &[false] } else { &[true, false] };
    let mut runs = Vec::new();
    for &batch in modes {
        let run = measure(&rt, envs, components, latency, concurrency, batch, permits_per_request)?;
        run.print(components, latency, concurrency);
        runs.push(run);
    }
    let first = &runs[0];
    let speedup =
        runs.get(1).map(|unbatched| first.wall.as_secs_f64() / unbatched.wall.as_secs_f64().max(f64::MIN_POSITIVE));
    if let Some(speedup) = speedup {
        println!(
            "batched wall {} ms / one request at a time {} ms = {speedup:.2} (target <= 0.3)",
            first.wall.as_millis(),
            runs[1].wall.as_millis()
        );
    }
    // Memory: the engine alone in a child process (the fake, whose state grows with E, stays in this one).
    let (engine_peak, engine_start) = engine_peak_rss(&rt, envs, components, latency, concurrency, first.batch)?;
    println!(
        "engine process: peak RSS {engine_peak} kB, {engine_start} kB with the specs loaded, so provisioning added {} kB (the fake runs in another process)",
        engine_peak.saturating_sub(engine_start)
    );
    println!("this process (engine and fake, in-process run): peak RSS {} kB", peak_rss_kb());
    println!(
        "{}",
        serde_json::json!({
            "environments": envs,
            "components": components,
            "batch": first.batch,
            "requests_first": first.requests_by_service,
            "round_trips_first": first.round_trips_by_service,
            "writes_rerun": first.writes_rerun,
            "reads_rerun_per_env": first.reads_rerun_per_env,
            "round_trips_rerun_per_env": first.round_trips_rerun_per_env,
            "wall_ms": first.wall.as_millis() as u64,
            "lower_bound_ms": first.lower_bound.as_millis() as u64,
            "ratio": (first.ratio * 100.0).round() / 100.0,
            "wall_ms_no_batch": runs.get(1).map(|r| r.wall.as_millis() as u64),
            "batched_over_unbatched": speedup.map(|s| (s * 100.0).round() / 100.0),
            "peak_rss_kb": engine_peak,
            "rss_start_kb": engine_start,
        })
    );
    Ok(())
}

/// What one run measured.
struct Run {
    batch: bool,
    envs: usize,
    identities: usize,
    wall: Duration,
    lower_bound: Duration,
    rounds: usize,
    ratio: f64,
    by_route: BTreeMap<String, usize>,
    requests_by_service: BTreeMap<String, usize>,
    round_trips_by_service: BTreeMap<String, usize>,
    writes_rerun: usize,
    reads_rerun_per_env: f64,
    round_trips_rerun_per_env: f64,
    identity_round_trips_rerun: usize,
}

/// A first provisioning and a re-run against a fresh fake in this process (in-process transport).
fn measure(
    rt: &tokio::runtime::Runtime,
    envs: usize,
    components: usize,
    latency: Duration,
    concurrency: usize,
    batch: bool,
    permits_per_request: bool,
) -> Result<Run, Box<dyn std::error::Error>> {
    let fake = FakePlatform::new(FakeOptions { latency, page_size: 500, ..FakeOptions::default() });
    let specs = specs(envs, components, Some(&fake))?;
    let permits = if permits_per_request {
        dataverse_mi::clients::BatchPermits::PerRequest
    } else {
        dataverse_mi::clients::BatchPermits::PerRoundTrip
    };
    let base = ClientOptions {
        transport: Some(fake.transport()),
        retry: RetryOptions::default(),
        batch_permits: permits,
        ..ClientOptions::default()
    };
    let engines = engines(&specs, concurrency, base, None, batch)?;
    let started = Instant::now();
    let chain = rt.block_on(provision_all(&engines, &specs, batch))?;
    let wall = started.elapsed();
    let mut by_route: BTreeMap<String, usize> = BTreeMap::new();
    let mut requests_by_service: BTreeMap<String, usize> = BTreeMap::new();
    // The concurrency permits each service's round trips held: one each, or one per inner request.
    let mut permit_trips: BTreeMap<String, usize> = BTreeMap::new();
    for r in fake.requests() {
        if r.is_batch() {
            if !permits_per_request {
                *permit_trips.entry(r.service().to_owned()).or_default() += 1;
            }
            continue;
        }
        if !r.in_batch || permits_per_request {
            *permit_trips.entry(r.service().to_owned()).or_default() += 1;
        }
        let mut words = r.route.split(' ');
        let (method, service) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        *by_route.entry(format!("{service} {method}")).or_default() += 1;
        *requests_by_service.entry(service.to_owned()).or_default() += 1;
    }
    let round_trips_by_service = fake.round_trips();
    let rounds = permit_trips.values().map(|n| n.div_ceil(concurrency)).max().unwrap_or(0).max(chain);
    let lower_bound = latency * rounds as u32;
    let ratio = wall.as_secs_f64() / lower_bound.as_secs_f64().max(f64::MIN_POSITIVE);

    fake.clear_log();
    for result in
        rt.block_on(futures_util::future::join_all(engines.iter().zip(&specs).map(|(engine, spec)| async move {
            let again = engine.plan(spec).await?;
            Ok::<_, dataverse_mi::provision::ProvisionError>(engine.apply(&again).await.is_success())
        })))
    {
        if !result? {
            return Err("the re-run's apply failed".into());
        }
    }
    let writes_rerun = fake.writes();
    let rerun_log = fake.requests();
    let dataverse_reads =
        rerun_log.iter().filter(|r| !r.is_write() && !r.is_batch() && r.service() == "dataverse").count();
    let trips = fake.round_trips();
    let identity_round_trips_rerun = trips.iter().filter(|(s, _)| *s != "dataverse").map(|(_, n)| n).sum();
    Ok(Run {
        batch,
        envs,
        identities: specs.len(),
        wall,
        lower_bound,
        rounds,
        ratio,
        by_route,
        requests_by_service,
        round_trips_by_service,
        writes_rerun,
        reads_rerun_per_env: dataverse_reads as f64 / envs.max(1) as f64,
        round_trips_rerun_per_env: trips.get("dataverse").copied().unwrap_or(0) as f64 / envs.max(1) as f64,
        identity_round_trips_rerun,
    })
}

impl Run {
    fn print(&self, components: usize, latency: Duration, concurrency: usize) {
        let envs = self.envs;
        println!(
            "== {}: {envs} environments x {components} components over {} identities, latency {} ms, concurrency {concurrency}",
            if self.batch { "batched" } else { "one request at a time (--no-batch)" },
            self.identities,
            latency.as_millis()
        );
        println!("first provisioning: requests by service and method (inside batches or not)");
        for (route, n) in &self.by_route {
            println!("  {n:>6}  {route}");
        }
        let per_env =
            |m: &BTreeMap<String, usize>| m.get("dataverse").copied().unwrap_or(0) as f64 / envs.max(1) as f64;
        println!("  dataverse requests per environment: {:.1}", per_env(&self.requests_by_service));
        println!(
            "  round trips: {} ({:.1} Dataverse per environment; targets with batching: <= 3 per environment, and per application ceil(FICs / 20) Graph round trips plus its FIC list)",
            self.round_trips_by_service.iter().map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(", "),
            per_env(&self.round_trips_by_service)
        );
        println!(
            "wall {} ms, lower bound {} ms ({} round trips), ratio {:.2} (target <= 1.3)",
            self.wall.as_millis(),
            self.lower_bound.as_millis(),
            self.rounds,
            self.ratio
        );
        println!(
            "re-run: {} writes, {:.2} Dataverse reads and {:.2} Dataverse round trips per environment, {} identity round trip(s) (one FIC list per identity)",
            self.writes_rerun,
            self.reads_rerun_per_env,
            self.round_trips_rerun_per_env,
            self.identity_round_trips_rerun
        );
    }
}
