//! `dataverse-mi`: the command-line front end. Argument parsing and printing only; every command is a call
//! into the `dataverse_mi` library.
//!
//! One module per verb (or group of verbs), each parsing its arguments and printing the library's answer:
//! `cli` (the arguments), `support` (what they share), `compute`, `diagnose`, `provision`, `audit`, `services`,
//! `watch`, `fake`.

mod audit;
mod cli;
mod compute;
mod diagnose;
#[cfg(feature = "testkit")]
mod fake;
mod provision;
mod services;
mod support;
mod watch;

use std::process::ExitCode;

use clap::Parser as _;

use audit::*;
use cli::*;
use compute::*;
use diagnose::*;
#[cfg(feature = "testkit")]
use fake::*;
use provision::*;
use services::*;
use support::*;
use watch::*;

fn main() -> ExitCode {
    // Output piped into `head` ends quietly when the reader goes away, as other command-line tools do (Rust
    // ignores SIGPIPE, and printing would then fail with "Broken pipe").
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let json = json_output_asked();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let hint = sign_in_hint(e.as_ref());
            if json {
                let error = serde_json::json!({ "error": { "message": e.to_string(), "hint": hint } });
                println!("{}", serde_json::to_string_pretty(&error).unwrap_or_else(|_| e.to_string()));
            } else {
                eprintln!("error: {e}");
                if let Some(hint) = hint {
                    eprintln!("{hint}");
                }
            }
            ExitCode::from(1)
        }
    }
}

/// One small function per verb: parsing is clap's, the work is the library's, printing is each function's.
fn run(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::Subject(args) => subject_command(args),
        Command::Fic(args) => fic_command(args),
        Command::Cert(CertArgs { new: Some(CertCommand::New(args)), .. }) => cert_new_command(args),
        Command::Cert(CertArgs { file: Some(file), password_env, output, .. }) => {
            cert_command(file, password_env, output)
        }
        Command::Cert(CertArgs { file: None, .. }) => Err("cert: give a certificate file, or `cert new`".into()),
        Command::Sign(args) => sign_command(args),
        Command::EncodeGuid { guid, output } => encode_guid_command(guid, output),
        Command::DecodeGuid { encoded, output } => decode_guid_command(encoded, output),
        Command::Diagnose(args) => diagnose_command(args),
        Command::Audit(args) => audit_command(args),
        Command::Plan { spec: args, out } => plan_command(args, out),
        Command::Apply { plan: stored, spec: args, yes } => apply_command(stored, args, yes),
        Command::Verify { spec: args, expiry_days } => verify_command(args, expiry_days),
        Command::Rotate { spec: args, add, finish, environments, yes } => {
            rotate_command(args, add, finish, environments, yes)
        }
        Command::Upgrade { spec: args, finish, revert, yes, write_spec } => {
            upgrade_command(args, finish, revert, yes, write_spec)
        }
        Command::Destroy { spec: args, role_assignments, access, identity, yes } => {
            destroy_command(args, role_assignments, access, identity, yes)
        }
        Command::Environments { spec: args, discovery_url } => environments_command(args, discovery_url),
        Command::Watch { spec: args, since, follow, interval, enable_tracing, type_prefix } => {
            watch_command(args, since, follow, interval, enable_tracing, type_prefix)
        }
        Command::Status { org, endpoints, output } => status_command(org, endpoints, output),
        #[cfg(feature = "testkit")]
        Command::Fake { scenario, seed, endpoints_out } => fake_command(scenario, seed, endpoints_out),
        Command::ExplainSubject { subject, output } => explain_subject_command(subject, output),
    }
}
