//! Auditing an estate at scale against the fake with a fixed latency per request.
//!
//! `cargo run --release --example audit_bench --features testkit -- --environments 500 --latency-ms 20 --concurrency 16`
//!
//! Seeds the estate scenario at the size asked (`Seed::estate`: every kind of finding in turn, app registrations
//! shared by eight environments each), audits it through the client stack over the fake's in-process transport,
//! and prints the wall time against the lower bound, the round trips, the findings by kind, and the process's peak
//! memory (the fake's state, every environment's rows and the request log, included). The lower bound is
//! `latency x (ceil(environment round trips / concurrency) + ceil(identities / concurrency) x 2)`: each environment
//! reads in one batch, and one more for its bound components, `concurrency` environments at a time (the Dataverse
//! limit is set to the same), then each identity is looked up and its FICs read. The last line is one JSON object
//! for scripts.

use std::time::{Duration, Instant};

use dataverse_mi::audit::{AuditOptions, Auditor};
use dataverse_mi::clients::{ClientOptions, ConcurrencyLimit, Platform};
use dataverse_mi::cloud::{Cloud, CloudProfile};
use dataverse_mi::http::RetryOptions;
use dataverse_mi::testkit::{FakeOptions, Seed, test_token};

fn arg(name: &str, default: u64) -> Result<u64, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} takes a number")),
        None => Ok(default),
    }
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let envs = arg("--environments", 500)? as usize;
    let latency = Duration::from_millis(arg("--latency-ms", 20)?);
    let concurrency = arg("--concurrency", 16)?.max(1) as usize;
    let seed = Seed::estate(envs);
    let urls: Vec<String> = seed.environments.iter().map(|e| format!("https://{}", e.host)).collect();
    let fake = seed.build(FakeOptions { latency, ..FakeOptions::default() })?;
    let options = ClientOptions {
        transport: Some(fake.transport()),
        max_concurrency: concurrency,
        shared_limit: Some(ConcurrencyLimit::new(concurrency)),
        retry: RetryOptions { jitter: 0.0, ..RetryOptions::default() },
        ..ClientOptions::default()
    };
    let platform = Platform::new(test_token(), options)?;
    let auditor = Auditor::on_platform(&platform, &CloudProfile::from(Cloud::Public))?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let started = Instant::now();
    let report = rt.block_on(auditor.audit(&urls, &AuditOptions::default().concurrency(concurrency)));
    let wall = started.elapsed();

    let unread = report.environments.iter().filter(|e| e.error.is_some()).count();
    let env_round_trips: usize = report.environments.iter().map(|e| e.round_trips).sum();
    let identities = report.identities.len();
    let bound = env_round_trips.div_ceil(concurrency) + identities.div_ceil(concurrency) * 2;
    let lower = latency * bound as u32;
    let batches = fake.requests().iter().filter(|r| r.is_batch() && !r.in_batch).count();
    println!("{envs} environments, {identities} identities, latency {latency:?}, concurrency {concurrency}");
    println!(
        "environment round trips: {env_round_trips} ({:.2} per environment; {batches} $batch requests), not read: {unread}",
        env_round_trips as f64 / envs.max(1) as f64
    );
    println!(
        "wall time {:.0} ms, lower bound {:.0} ms, ratio {:.2}",
        wall.as_secs_f64() * 1e3,
        lower.as_secs_f64() * 1e3,
        wall.as_secs_f64() / lower.as_secs_f64().max(f64::EPSILON)
    );
    for (kind, n) in report.counts() {
        println!("  {kind:<28} {n}");
    }
    let rss = peak_rss_kb();
    println!("peak RSS of this process (the fake's state included): {rss} kB");
    println!(
        "{}",
        serde_json::json!({
            "environments": envs, "identities": identities, "latency_ms": latency.as_millis() as u64,
            "concurrency": concurrency, "wall_ms": wall.as_millis() as u64, "lower_bound_ms": lower.as_millis() as u64,
            "environment_round_trips": env_round_trips, "findings": report.findings.len(), "not_read": unread,
            "peak_rss_kb": rss,
        })
    );
    if unread > 0 {
        return Err(format!("{unread} environment(s) could not be read").into());
    }
    Ok(())
}
