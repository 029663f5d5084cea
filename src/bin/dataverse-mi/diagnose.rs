//! `diagnose`: an Entra error explained.

use std::process::ExitCode;

use crate::cli::*;
use crate::support::*;
use dataverse_mi::cloud::{Cloud, CloudProfile};
use dataverse_mi::diagnose::{ConfiguredFic, DiagnosisInputs, diagnose};
use dataverse_mi::environment::EnvironmentId;
use dataverse_mi::guid::parse_guid;
use dataverse_mi::provision::ProvisionSpec;
use uuid::Uuid;

/// Paste a token error (or a failure after the token), get its cause.
pub(crate) fn diagnose_command(args: DiagnoseArgs) -> Result<ExitCode, Failure> {
    let guid = |v: &Option<String>, flag: &str| -> Result<Option<Uuid>, Failure> {
        v.as_deref().map(|s| parse_guid(s).map_err(|e| format!("{flag}: {e}").into())).transpose()
    };
    let mut inputs = DiagnosisInputs {
        tenant_id: guid(&args.tenant, "--tenant")?,
        environment_id: args
            .environment
            .as_deref()
            .map(|s| s.parse::<EnvironmentId>().map_err(|e| format!("--environment: {e}")))
            .transpose()?,
        organization_id: guid(&args.organization_id, "--organization-id")?,
        application_id: guid(&args.app_id, "--app-id")?,
        cloud: args.cloud.as_deref().map(|c| c.parse::<Cloud>().map(CloudProfile::from)).transpose()?,
        version: args.format_version.as_deref().map(str::parse).transpose()?,
        configured: args.configured.iter().map(|s| ConfiguredFic::from(s.as_str())).collect(),
        recently_created: args.recently_created,
        ..DiagnosisInputs::default()
    };
    // The certificate given on the command line first; the spec fills what is still unknown.
    if let Some(path) = &args.cert {
        certificate_for_diagnosis(&mut inputs, path, args.password_env.as_deref())?;
    }
    if let Some(file) = &args.file {
        for w in ProvisionSpec::from_file(file)?.fill_diagnosis_inputs(&mut inputs)? {
            eprintln!("note: {w}");
        }
    }
    let diagnosis = diagnose(&args.error, &inputs)?;
    match args.output {
        Output::Text => println!("{diagnosis}"),
        Output::Json => print_json(&diagnosis)?,
    }
    Ok(ExitCode::SUCCESS)
}
