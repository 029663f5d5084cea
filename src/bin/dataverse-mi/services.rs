//! The verbs that read the services: environments, status.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::*;
use crate::support::*;
use dataverse_mi::cloud::Cloud;
use dataverse_mi::provision::{EnvironmentListing, ProvisionSpec};

/// The environments a discovery service lists, and whether the spec selects each.
pub(crate) fn environments_command(args: SpecArgs, discovery_url: Option<String>) -> Result<ExitCode, Failure> {
    let spec = match &args.file {
        Some(file) => Some(ProvisionSpec::from_file(file)?),
        None => None,
    };
    let cloud: Cloud = match (&args.cloud, &spec) {
        (Some(c), _) => c.parse()?,
        (None, Some(s)) => s.cloud,
        (None, None) => Cloud::Public,
    };
    let selector = spec.as_ref().and_then(|s| s.discover.clone());
    let url = discovery_url
        .or_else(|| selector.as_ref().map_or(cloud.global_discovery_url(), |d| d.service_url(cloud)).map(str::to_owned))
        .ok_or_else(|| format!("the {cloud} cloud has no documented discovery service: give --discovery-url"))?;
    let client = platform_for(args.endpoints.as_deref())?.discovery(&url)?;
    let found = runtime()?.block_on(client.instances())?;
    show(args.output, &EnvironmentListing::new(found, selector.as_ref()))?;
    Ok(ExitCode::SUCCESS)
}

/// An environment's rows and plug-ins, and their bindings.
pub(crate) fn status_command(org: String, endpoints: Option<PathBuf>, output: Output) -> Result<ExitCode, Failure> {
    let client = platform_for(endpoints.as_deref())?.dataverse(&org)?;
    let rt = runtime()?;
    let status = rt.block_on(client.environment_status())?;
    show(output, &status)?;
    Ok(ExitCode::SUCCESS)
}
