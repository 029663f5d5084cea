//! `watch`: the trace log, each token failure diagnosed.

use std::process::ExitCode;
use std::time::Duration;

use crate::cli::*;
use crate::support::*;
use dataverse_mi::provision::WatchOptions;
use futures_util::StreamExt as _;

/// Reads the trace logs and explains the token failures, once or until Ctrl-C.
pub(crate) fn watch_command(
    args: SpecArgs,
    since: String,
    follow: bool,
    interval: u64,
    enable_tracing: bool,
    type_prefix: Option<String>,
) -> Result<ExitCode, Failure> {
    let (spec, engine) = engine_for(&args)?;
    let rt = runtime()?;
    let mut options =
        WatchOptions::since_text(&since).map_err(|e| format!("--since: {e}"))?.enable_tracing(enable_tracing);
    if let Some(prefix) = type_prefix {
        options = options.type_prefix(prefix);
    }
    let interval = Duration::from_secs(interval.clamp(5, 300));
    rt.block_on(async {
        let passes = engine.watch_stream(spec, options, interval);
        tokio::pin!(passes);
        // Listening for Ctrl-C from the first pass on: it stops a pass in flight as well as the wait.
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let mut first = true;
        loop {
            let report = tokio::select! {
                biased;
                _ = &mut ctrl_c => break,
                report = passes.next() => match report {
                    Some(report) => report?,
                    None => break,
                },
            };
            print_watch(&report, args.output)?;
            if !follow {
                break;
            }
            if first {
                eprintln!(
                    "watching {} environment(s) every {} s; Ctrl-C stops",
                    report.environments.len(),
                    interval.as_secs()
                );
                first = false;
            }
        }
        Ok::<(), Failure>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
