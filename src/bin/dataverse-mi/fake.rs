//! `fake`: the testkit's fake served on loopback, for trying the tool with no Azure account.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::support::*;

/// Serves the fake on loopback until Ctrl-C, with its endpoints file written (and removed when it stops).
#[cfg(feature = "testkit")]
pub(crate) fn fake_command(
    scenario: String,
    seed: Option<PathBuf>,
    endpoints_out: PathBuf,
) -> Result<ExitCode, Failure> {
    use dataverse_mi::testkit::{FakeOptions, SCENARIOS, Seed};
    let (built, spec) = match &seed {
        Some(path) => (Seed::from_file(path)?, None),
        None => (Seed::scenario(&scenario)?, SCENARIOS.iter().find(|(n, _)| *n == scenario).map(|(_, s)| *s)),
    };
    let fake = built.build(FakeOptions::default())?;
    let rt = runtime()?;
    rt.block_on(async {
        let server = fake.start().await;
        let file = server.endpoints_file();
        std::fs::write(&endpoints_out, serde_json::to_vec_pretty(&file)?)
            .map_err(|e| format!("cannot write {}: {e}", endpoints_out.display()))?;
        let out = endpoints_out.display();
        println!("fake platform listening on {}", server.uri());
        println!("endpoints written to {out}");
        match spec {
            // The estate's spec lists environments to audit, not to provision.
            Some(spec) if scenario == "estate" && seed.is_none() => {
                println!(
                    "try: dataverse-mi audit -f {spec} --endpoints {out}   (then --fix DIR, and apply what it writes)"
                )
            }
            Some(spec) => {
                println!("try: dataverse-mi plan -f {spec} --endpoints {out}   (then apply --yes, verify, watch)")
            }
            None => {}
        }
        println!("Ctrl-C stops it");
        let stopped = tokio::signal::ctrl_c().await;
        let _ = std::fs::remove_file(&endpoints_out);
        stopped?;
        eprintln!("stopped; {} request(s) served", fake.requests().len());
        Ok::<(), Failure>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
