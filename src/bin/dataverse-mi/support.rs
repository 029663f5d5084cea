//! What the verbs share: output, sign-in, the engine from a spec, approval, progress.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::cli::*;
use dataverse_mi::auth::{StaticToken, TokenSource};
use dataverse_mi::cert::Certificate;
use dataverse_mi::clients::EndpointsFile;
use dataverse_mi::clients::{ClientOptions, Platform};
use dataverse_mi::diagnose::DiagnosisInputs;
use dataverse_mi::entities::PluginTraceLogSetting;
use dataverse_mi::provision::{
    ApplyOutcome, CallId, CertificateSpec, Progress, ProgressEvent, ProgressFn, ProvisionOptions, ProvisionSpec,
    Provisioner, WatchReport,
};
use dataverse_mi::secret::Secret;

pub(crate) type Failure = Box<dyn std::error::Error>;

/// Whether the command line asks for JSON output (`--output json` or `--output=json`): errors are JSON then too.
pub(crate) fn json_output_asked() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2).any(|w| w[0] == "--output" && w[1] == "json") || args.iter().any(|a| a == "--output=json")
}

/// The ways to sign in, when the error is a failed sign-in.
pub(crate) fn sign_in_hint(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(e);
    while let Some(err) = next {
        let auth = err.downcast_ref::<dataverse_mi::auth::AuthError>().is_some()
            || matches!(
                err.downcast_ref::<dataverse_mi::clients::ApiError>(),
                Some(dataverse_mi::clients::ApiError::Auth(_))
            );
        if auth {
            return Some(
                "sign in with `az login`; or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (a client secret); or AZURE_FEDERATED_TOKEN_FILE with AZURE_TENANT_ID and AZURE_CLIENT_ID (workload identity)"
                    .into(),
            );
        }
        next = err.source();
    }
    None
}

pub(crate) fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

pub(crate) fn password(var: Option<&str>) -> Result<Option<Secret>, Failure> {
    match var {
        None => Ok(None),
        Some(name) => match std::env::var(name) {
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(_) => Err(format!("--password-env: the environment variable {name} is not set").into()),
        },
    }
}

/// Prints a report: its text rendering, or its JSON.
pub(crate) fn show<T: std::fmt::Display + serde::Serialize>(output: Output, value: &T) -> Result<(), Failure> {
    match output {
        Output::Text => println!("{value}"),
        Output::Json => print_json(&serde_json::to_value(value)?)?,
    }
    Ok(())
}

pub(crate) fn load_certificate(path: &PathBuf, password_env: Option<&str>) -> Result<Certificate, Failure> {
    let loaded = Certificate::from_file_with_password(path, password(password_env)?.as_ref())?;
    for w in &loaded.warnings {
        eprintln!("note: {w}");
    }
    Ok(loaded.certificate)
}

/// Reads a certificate file into the diagnosis inputs (certificate, chain, the file's own hash), printing the
/// loader's notes.
pub(crate) fn certificate_for_diagnosis(
    inputs: &mut DiagnosisInputs,
    path: &std::path::Path,
    password_env: Option<&str>,
) -> Result<(), Failure> {
    let bytes = dataverse_mi::files::read_bounded(path, dataverse_mi::files::MAX_CERTIFICATE_FILE, "certificate file")?;
    for w in inputs.set_certificate_file(&bytes, password(password_env)?.as_ref())? {
        eprintln!("note: {w}");
    }
    Ok(())
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

pub(crate) fn credential() -> Result<Arc<dyn TokenSource>, Failure> {
    Ok(dataverse_mi::auth::default_credential()?)
}

/// The client stack for the real services: one transport, which the credential's token requests use too.
pub(crate) fn platform() -> Result<Platform, Failure> {
    let transport: Arc<dyn dataverse_mi::http::Transport> =
        Arc::new(dataverse_mi::http::ReqwestTransport::new(Default::default())?);
    let credential = dataverse_mi::auth::default_credential_over(Some(transport.clone()))?;
    Ok(Platform::new(credential, ClientOptions { transport: Some(transport), ..ClientOptions::default() })?)
}

/// The client stack: at the real services, or where an endpoints file says (a fake's file asks for no sign-in).
pub(crate) fn platform_for(endpoints: Option<&std::path::Path>) -> Result<Platform, Failure> {
    let Some(path) = endpoints else { return platform() };
    let file = EndpointsFile::read(path)?;
    let credential: Arc<dyn TokenSource> = if file.fake {
        Arc::new(StaticToken::new(Secret::new("testkit"), SystemTime::now() + Duration::from_secs(3600)))
    } else {
        credential()?
    };
    Ok(Platform::new(credential, ClientOptions::default())?.with_endpoints(file.endpoints()?))
}

pub(crate) fn engine_for(args: &SpecArgs) -> Result<(ProvisionSpec, Provisioner), Failure> {
    let Some(file) = &args.file else { return Err("give the spec: -f spec.toml".into()) };
    engine_for_spec(args, ProvisionSpec::from_file(file)?)
}

pub(crate) fn engine_for_spec(
    args: &SpecArgs,
    mut spec: ProvisionSpec,
) -> Result<(ProvisionSpec, Provisioner), Failure> {
    if let Some(cloud) = &args.cloud {
        spec.cloud = cloud.parse()?;
    }
    spec.take_over |= args.take_over;
    spec.adopt |= args.adopt;
    let options =
        ProvisionOptions { batch: !args.no_batch, progress: Some(progress_reporter()), ..ProvisionOptions::default() };
    let engine = Provisioner::for_spec(&spec, &platform_for(args.endpoints.as_deref())?, options)?;
    Ok((spec, engine))
}

/// Asks before changing anything, unless `yes`; `false` when the answer is no.
pub(crate) fn confirm(yes: bool, question: &str) -> Result<bool, Failure> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err("not changing anything without --yes (standard input is not a terminal to ask on)".into());
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim().eq_ignore_ascii_case("y"))
}

/// The approval the library's flows ask for: the plan shown (text output), then a question unless `--yes`. A
/// prompt that fails is kept and returned afterwards ([`Approval::result`]).
pub(crate) struct Approval {
    pub(crate) output: Output,
    pub(crate) yes: bool,
    pub(crate) failure: std::sync::Mutex<Option<String>>,
}

impl Approval {
    pub(crate) fn new(output: Output, yes: bool) -> Self {
        Approval { output, yes, failure: std::sync::Mutex::new(None) }
    }

    /// Shows `plan` and asks `question`.
    pub(crate) fn ask(&self, plan: &impl std::fmt::Display, question: &str) -> bool {
        if matches!(self.output, Output::Text) {
            println!("{plan}");
        }
        match confirm(self.yes, question) {
            Ok(yes) => yes,
            Err(e) => {
                *self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e.to_string());
                false
            }
        }
    }

    pub(crate) fn result(self) -> Result<(), Failure> {
        match self.failure.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

/// Prints what a plan and apply did; the exit code says how it went.
pub(crate) fn print_outcome(outcome: &ApplyOutcome, output: Output) -> Result<ExitCode, Failure> {
    if outcome.declined() {
        eprintln!("nothing changed");
        return Ok(ExitCode::from(1));
    }
    match (output, &outcome.report) {
        (Output::Json, _) => print_json(outcome)?,
        (Output::Text, Some(report)) => println!("{report}"),
        // Nothing to do: the plan says so.
        (Output::Text, None) => println!("{}", outcome.plan),
    }
    Ok(if outcome.is_success() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// What a run of plan and apply is for: a finish (of a rotation) has not succeeded while the plan keeps a FIC
/// that plug-ins still present.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Apply,
    Finish,
}

/// Plans `spec`, shows the plan, asks, applies and prints the report; the exit code says how it went.
pub(crate) fn plan_and_apply(
    engine: &Provisioner,
    spec: &ProvisionSpec,
    output: Output,
    yes: bool,
    rt: &tokio::runtime::Runtime,
    step: Step,
) -> Result<ExitCode, Failure> {
    let approval = Approval::new(output, yes);
    let outcome = rt.block_on(
        engine.plan_and_apply(spec, |plan| approval.ask(plan, &format!("apply {} change(s)?", plan.actions.len()))),
    )?;
    approval.result()?;
    let code = print_outcome(&outcome, output)?;
    let kept = outcome.plan.kept_fics();
    if step == Step::Finish && !kept.is_empty() {
        for note in kept {
            eprintln!("not finished: {note}");
        }
        return Ok(ExitCode::from(1));
    }
    Ok(code)
}

/// A certificate file named on the command line, as a spec certificate (made absolute: a spec's relative paths
/// start at the spec's folder, the command line's at the current one).
pub(crate) fn certificate_arg(path: &std::path::Path) -> Result<CertificateSpec, Failure> {
    let absolute = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // Read once now, so that a wrong path or file fails before any request.
    load_certificate(&absolute, None)?;
    Ok(CertificateSpec::File { path: absolute, password_env: None })
}

/// Prints a watch pass: a note for each environment that records no traces, then each failure (text, or one
/// JSON object per line).
pub(crate) fn print_watch(report: &WatchReport, output: Output) -> Result<(), Failure> {
    for env in &report.environments {
        if env.setting == PluginTraceLogSetting::Off {
            eprintln!(
                "note: {} records no plug-in traces (setting Off); run with --enable-tracing, or set Plug-in trace log to Exception in the environment's settings",
                env.org_url
            );
        }
    }
    for failure in &report.failures {
        match output {
            Output::Json => println!("{}", serde_json::to_string(failure)?),
            Output::Text => println!(
                "{} {} {}\n{}\n",
                failure.log.created_on.as_deref().unwrap_or("-"),
                failure.org_url,
                failure.log.type_name.as_deref().unwrap_or("-"),
                failure.diagnosis
            ),
        }
    }
    Ok(())
}

/// A progress bar on a terminal (its length from each plan's `Planned` event), plain lines otherwise.
pub(crate) fn progress_reporter() -> ProgressFn {
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::hidden();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        // The length of each call's plan, shown when its first action starts (not while the plan is printed).
        let planned = std::sync::Mutex::new((CallId::default(), 0u64));
        Arc::new(move |progress: &Progress| {
            let mut planned = planned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match &progress.event {
                ProgressEvent::Planned { actions } => *planned = (CallId::default(), *actions as u64),
                ProgressEvent::Started { description, .. } => {
                    if planned.0 != progress.call {
                        planned.0 = progress.call;
                        bar.set_length(planned.1);
                        bar.set_position(0);
                        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    }
                    bar.set_message(description.clone());
                }
                ProgressEvent::Done { .. } | ProgressEvent::Failed { .. } => bar.inc(1),
                _ => {}
            }
        })
    } else {
        // Off a terminal, one line per action when it ends (done or failed), and each action once: a change set
        // that falls back to single requests starts its actions again.
        let started = std::sync::Mutex::new(std::collections::BTreeMap::<(CallId, usize), (String, bool)>::new());
        Arc::new(move |progress: &Progress| {
            let mut started = started.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let event = &progress.event;
            match event {
                ProgressEvent::Started { action, description } => {
                    started.entry((progress.call, *action)).or_insert_with(|| (description.clone(), false));
                }
                ProgressEvent::Done { action } | ProgressEvent::Failed { action, .. } => {
                    let Some((description, ended)) = started.get_mut(&(progress.call, *action)) else { return };
                    if std::mem::replace(ended, true) {
                        return;
                    }
                    match event {
                        ProgressEvent::Failed { error, .. } => eprintln!("failed: {description}: {error}"),
                        _ => eprintln!("done: {description}"),
                    }
                }
                _ => {}
            }
        })
    }
}
