//! `audit`: every row, binding and FIC of an estate, checked.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::*;
use crate::support::*;
use dataverse_mi::audit::{AuditOptions, Auditor, Severity};
use dataverse_mi::cloud::{Cloud, CloudProfile};
use dataverse_mi::provision::{ProvisionOptions, ProvisionSpec, Provisioner};

/// Audits the environments a spec names, the URLs given, or every environment discovery lists.
pub(crate) fn audit_command(args: AuditArgs) -> Result<ExitCode, Failure> {
    let spec = args.file.as_ref().map(ProvisionSpec::from_file).transpose()?;
    let cloud: Cloud = match (&args.cloud, &spec) {
        (Some(c), _) => c.parse()?,
        (None, Some(s)) => s.cloud,
        (None, None) => Cloud::Public,
    };
    let platform = platform_for(args.endpoints.as_deref())?;
    let rt = runtime()?;
    let urls: Vec<String> = if let Some(spec) = spec {
        let engine = Provisioner::for_spec(&spec, &platform, ProvisionOptions::default())?;
        rt.block_on(engine.resolve(&spec))?.environments.into_iter().map(|e| e.org_url).collect()
    } else if args.discover {
        let url = cloud
            .global_discovery_url()
            .ok_or_else(|| format!("the {cloud} cloud has no documented discovery service"))?;
        let found = rt.block_on(platform.discovery(url)?.instances())?;
        found.into_iter().filter(|e| e.state.unwrap_or(0) == 0).map(|e| e.url).collect()
    } else if !args.urls.is_empty() {
        args.urls.clone()
    } else {
        return Err("give the environments: -f spec.toml, --url URL (repeated), or --discover".into());
    };
    let auditor = Auditor::on_platform(&platform, &CloudProfile::from(cloud))?;
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(urls.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} environments read")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let progress = bar.clone();
    let options = AuditOptions::default()
        .expiry_window(Duration::from_secs(args.expiry_days.saturating_mul(86_400)))
        .concurrency(args.concurrency)
        .progress(move |read, _| progress.set_position(read as u64));
    let report = rt.block_on(auditor.audit(&urls, &options));
    bar.finish_and_clear();
    match args.output {
        ReportFormat::Text => println!("{report}"),
        ReportFormat::Json => print_json(&report)?,
        ReportFormat::Markdown => print!("{}", report.to_markdown()),
    }
    if let Some(dir) = &args.fix {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
        let specs = report.fix_specs();
        for (name, spec) in &specs {
            let path = dir.join(name);
            std::fs::write(&path, spec.to_toml()?).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            eprintln!(
                "wrote {} ({} environment(s)): `dataverse-mi plan -f {}`, then apply",
                path.display(),
                spec.environments.len(),
                path.display()
            );
        }
        if specs.is_empty() {
            eprintln!("nothing the audit found can be fixed by a spec");
        }
    }
    Ok(match report.worst() {
        Some(Severity::Error) => ExitCode::from(2),
        Some(Severity::Warning) => ExitCode::from(3),
        _ => ExitCode::SUCCESS,
    })
}
