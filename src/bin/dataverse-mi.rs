//! `dataverse-mi`: the command-line front end. Argument parsing and printing only; every command is a call
//! into the `dataverse_mi` library.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand, ValueEnum};
use dataverse_mi::audit::{AuditOptions, Auditor, Severity};
use dataverse_mi::auth::{StaticToken, TokenSource};
use dataverse_mi::cert::{Certificate, CertificateHash};
use dataverse_mi::clients::EndpointsFile;
use dataverse_mi::clients::{ClientOptions, Platform};
use dataverse_mi::cloud::{Cloud, CloudProfile};
use dataverse_mi::diagnose::{ConfiguredFic, DiagnosisInputs, diagnose};
use dataverse_mi::entities::PluginTraceLogSetting;
use dataverse_mi::environment::EnvironmentId;
use dataverse_mi::fic::FederatedIdentityCredential;
use dataverse_mi::guid::{decode_guid, encode_guid, parse_guid};
use dataverse_mi::provision::{
    ApplyOutcome, CallId, CertificateSpec, DestroyOptions, EnvironmentListing, Progress, ProgressEvent, ProgressFn,
    ProvisionOptions, ProvisionSpec, Provisioner, UpgradeOptions, VerifyOptions, WatchOptions, WatchReport,
};
use dataverse_mi::secret::Secret;
use dataverse_mi::subject::{
    CertificateBinding, CertificateKind, SubjectFormatVersion, SubjectIdentifier, explain_subject,
};
use futures_util::StreamExt as _;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(name = "dataverse-mi", version, about = "Power Platform managed identity for Dataverse plug-ins")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
enum Output {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the subject identifier for a certificate in an environment.
    Subject(SubjectArgs),
    /// Print the federated identity credential body for Graph or ARM.
    Fic(FicArgs),
    /// Print what the platform derives from a certificate.
    Cert {
        /// The certificate: DER (.cer/.crt), PEM, PFX, a signed assembly (.dll) or a signed package (.nupkg).
        file: PathBuf,
        /// The name of an environment variable holding the PFX password.
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
        /// Text or JSON output.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Encode a GUID as the platform does in subjects (.NET byte order, Base64URL, no padding).
    EncodeGuid {
        /// The GUID.
        guid: String,
        /// Text or JSON output.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Decode a 22-character encoded GUID.
    DecodeGuid {
        /// The encoded GUID.
        encoded: String,
        /// Text or JSON output.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Explain a failure on the way to a working call: a token request (an AADSTS error) against what you know of
    /// the setup, or what came after it (a package not bound, an unsigned assembly, Dataverse or Graph refusing the
    /// token, the Azure SDK bundled).
    Diagnose(DiagnoseArgs),
    /// Read the current state and print what provisioning would change.
    Plan {
        #[command(flatten)]
        spec: SpecArgs,
        /// Also write the plan (with its spec) to this JSON file, to apply it later with `apply FILE`.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Plan, then make the changes (asks first on a terminal, unless --yes).
    Apply {
        /// A plan written by `plan --out`: applied exactly as it is, refused if the state it read has changed.
        plan: Option<PathBuf>,
        #[command(flatten)]
        spec: SpecArgs,
        /// Apply without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Check every component: its registered signature, the platform's subject and the identity's FICs, and its
    /// signing certificate's expiry (exit 2 on problems; warnings do not fail).
    Verify {
        #[command(flatten)]
        spec: SpecArgs,
        /// Warn when a signing certificate expires within this many days.
        #[arg(long, default_value_t = 30)]
        expiry_days: u64,
    },
    /// Rotate the signing certificate without downtime: --add NEW.cer adds its FICs beside the current ones;
    /// after the plug-ins are re-signed and registered again, --finish NEW.cer removes the others.
    Rotate {
        #[command(flatten)]
        spec: SpecArgs,
        /// The new certificate (any form `cert` reads): add its FICs.
        #[arg(long, value_name = "NEW", conflicts_with = "finish")]
        add: Option<PathBuf>,
        /// The new certificate again: keep only its FICs and delete this spec's others; refused while a
        /// registered component still carries one of them.
        #[arg(long, value_name = "NEW")]
        finish: Option<PathBuf>,
        /// Only these environments (org URLs; repeat it): an identity holds 20 FICs, two per environment while
        /// rotating, so more than 10 environments rotate a few at a time.
        #[arg(long = "environment", value_name = "URL")]
        environments: Vec<String>,
        /// Apply without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Upgrade the subject format from version 1 to 2: add the version 2 FICs and switch the rows, verify, then
    /// (with --finish) remove the version 1 FICs. --revert switches the rows back to version 1.
    Upgrade {
        #[command(flatten)]
        spec: SpecArgs,
        /// After a clean verify, delete the version 1 FICs this spec made.
        #[arg(long, conflicts_with = "revert")]
        finish: bool,
        /// Back to version 1 (its FICs are made again if they were removed).
        #[arg(long)]
        revert: bool,
        /// Write the new version into the spec file (`version = 2`, or 1 with --revert), keeping the rest of it.
        #[arg(long)]
        write_spec: bool,
        /// Apply without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Undo what the spec set up: unbind its components, delete its rows and FICs (plan first; --yes to apply).
    Destroy {
        #[command(flatten)]
        spec: SpecArgs,
        /// Also delete the spec's role assignments.
        #[arg(long)]
        role_assignments: bool,
        /// Also take away the security roles of the spec's application users and its API permissions.
        #[arg(long)]
        access: bool,
        /// Also delete the identity, when the spec created it and nothing else uses it.
        #[arg(long)]
        identity: bool,
        /// Delete without asking.
        #[arg(long)]
        yes: bool,
    },
    /// List the environments the signed-in identity can reach (Global Discovery Service); with -f, which of them
    /// the spec's `discover` selects.
    Environments {
        #[command(flatten)]
        spec: SpecArgs,
        /// The discovery service, when not the cloud's (e.g. https://globaldisco.crm9.dynamics.com for GCC).
        #[arg(long)]
        discovery_url: Option<String>,
    },
    /// Read the plug-in trace logs and explain the token failures in them (--follow keeps polling).
    Watch {
        #[command(flatten)]
        spec: SpecArgs,
        /// From when: a duration back (30m, 1h, 2d) or an ISO 8601 time.
        #[arg(long, default_value = "1h")]
        since: String,
        /// Keep polling for new rows until Ctrl-C.
        #[arg(long)]
        follow: bool,
        /// Seconds between polls with --follow (5 to 300).
        #[arg(long, default_value_t = 30)]
        interval: u64,
        /// Switch environments whose trace log setting is Off to Exception.
        #[arg(long)]
        enable_tracing: bool,
        /// Only plug-in types whose full name starts with this (a type, or an assembly's namespace).
        #[arg(long = "type", value_name = "PREFIX")]
        type_prefix: Option<String>,
    },
    /// List the managed identity rows and plug-in bindings of one environment.
    Status {
        /// The organization URL.
        #[arg(long)]
        org: String,
        /// Reach the services where this file says (what `dataverse-mi fake` writes).
        #[arg(long, value_name = "FILE")]
        endpoints: Option<PathBuf>,
        /// Text or JSON output.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Audit an estate: every plug-in managed identity row, its bound plug-ins and its identity's FICs, in the
    /// spec's environments, the URLs given, or every environment discovery lists; what is wrong with each, and its
    /// fix. Writes nothing (--fix writes specs that `plan`/`apply` carry out). Exit 0: nothing, or information
    /// only; 3: warnings; 2: errors.
    Audit(AuditArgs),
    /// Serve the built-in fake platform on loopback, no Azure account needed: a named scenario or a seed file.
    /// Writes an endpoints file the other commands read with `--endpoints`; Ctrl-C stops it.
    #[cfg(feature = "testkit")]
    Fake {
        /// A built-in scenario: `contoso` (for examples/specs/contoso.toml), `quickstart` (for
        /// examples/specs/quickstart.toml) or `estate` (every kind of audit finding; examples/specs/estate.toml).
        #[arg(long, default_value = "contoso", conflicts_with = "seed")]
        scenario: String,
        /// A seed file instead (TOML, or JSON when it ends in .json): the tenant, applications, identities,
        /// environments and their plug-ins (docs/testkit.md).
        #[arg(long, value_name = "FILE")]
        seed: Option<PathBuf>,
        /// Where to write the endpoints file.
        #[arg(long, value_name = "FILE", default_value = "dataverse-mi-endpoints.json")]
        endpoints_out: PathBuf,
    },
    /// Decode a subject identifier and list every problem in it (exit 2 when there is one).
    ExplainSubject {
        /// The subject identifier.
        subject: String,
        /// Text or JSON output.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

#[derive(Debug, Args)]
struct SubjectInputs {
    /// The tenant id (GUID).
    #[arg(long)]
    tenant: String,
    /// The Power Platform environment id (a GUID, or Default-{tenant GUID} for the Default environment; not the
    /// organization id).
    #[arg(long)]
    environment: String,
    /// The signing certificate: DER (.cer/.crt), PEM, PFX, a signed assembly (.dll) or a signed package (.nupkg).
    #[arg(long, conflicts_with_all = ["sha256", "issuer_dn", "subject_dn"])]
    cert: Option<PathBuf>,
    /// The name of an environment variable holding the PFX password (never the password itself).
    #[arg(long, value_name = "VAR", requires = "cert")]
    password_env: Option<String>,
    /// The certificate's SHA-256, as certutil or nuget sign print it (any case; spaces or colons allowed).
    #[arg(long, conflicts_with_all = ["issuer_dn", "subject_dn"])]
    sha256: Option<String>,
    /// The issuer name exactly as .NET's X509Certificate2.Issuer prints it (trusted certificates).
    #[arg(long, requires = "subject_dn")]
    issuer_dn: Option<String>,
    /// The subject name exactly as .NET's X509Certificate2.Subject prints it (trusted certificates).
    #[arg(long, requires = "issuer_dn")]
    subject_dn: Option<String>,
    /// The cloud: public, gcc, usgov, gcchigh, dod, china, mooncake, usnat, ussec.
    #[arg(long, default_value = "public")]
    cloud: String,
    /// The subject format version (2 for new setups).
    #[arg(long, default_value = "2")]
    format_version: String,
    /// Which subject form: auto (self-signed gets /h/, others /i/../s/..), self-signed, trusted.
    #[arg(long, default_value = "auto")]
    kind: String,
}

#[derive(Debug, Args)]
struct SubjectArgs {
    #[command(flatten)]
    inputs: SubjectInputs,
    /// Text or JSON output.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, Args)]
struct SpecArgs {
    /// The provisioning spec (TOML, or JSON when it ends in .json).
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// Override the spec's cloud.
    #[arg(long)]
    cloud: Option<String>,
    /// Text or JSON output.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
    /// Send every request on its own instead of in batches (Dataverse $batch, Graph JSON batching).
    #[arg(long)]
    no_batch: bool,
    /// Reach the services where this file says (what `dataverse-mi fake` writes, or a proxy's addresses).
    #[arg(long, value_name = "FILE")]
    endpoints: Option<PathBuf>,
    /// Rebind the spec's components that are bound to another row (another application's or tenant's, or one the
    /// spec did not make); without it they are left as they are and the plan names the row.
    #[arg(long)]
    take_over: bool,
    /// Adopt the row a solution import brought (the components are bound to it, with the source environment's
    /// application and tenant): update it in place instead of making a second one.
    #[arg(long)]
    adopt: bool,
}

#[derive(Debug, Args)]
struct AuditArgs {
    /// A spec: its environments (listed, or discovered with `environments = { discover = true, ... }`).
    #[arg(short = 'f', long = "file", conflicts_with_all = ["urls", "discover"])]
    file: Option<PathBuf>,
    /// An environment URL to audit; repeat it for more.
    #[arg(long = "url", value_name = "URL")]
    urls: Vec<String>,
    /// Every enabled environment the Global Discovery Service lists for the signed-in identity.
    #[arg(long, conflicts_with = "urls")]
    discover: bool,
    /// The cloud (the spec's, or public).
    #[arg(long)]
    cloud: Option<String>,
    /// A table for the terminal, JSON for programs, or Markdown for a ticket.
    #[arg(long, value_enum, default_value_t)]
    output: ReportFormat,
    /// Write the specs that fix what can be fixed into this folder, one per identity.
    #[arg(long, value_name = "DIR")]
    fix: Option<PathBuf>,
    /// Report certificates that end within this many days.
    #[arg(long, default_value_t = 60)]
    expiry_days: u64,
    /// Environments read at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Reach the services where this file says (what `dataverse-mi fake` writes, or a proxy's addresses).
    #[arg(long, value_name = "FILE")]
    endpoints: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
enum ReportFormat {
    #[default]
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
struct DiagnoseArgs {
    /// A provisioning spec to take the app id, certificate, version and cloud from.
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// The error as pasted: the whole message, the JSON error body, the error_description, or a trace log row's
    /// exception.
    #[arg(long)]
    error: String,
    /// The tenant id.
    #[arg(long)]
    tenant: Option<String>,
    /// The environment id (a GUID, or Default-{tenant GUID} for the Default environment).
    #[arg(long)]
    environment: Option<String>,
    /// The organization id (to recognise it where the environment id belongs).
    #[arg(long)]
    organization_id: Option<String>,
    /// Your app registration's or UAMI's client id (to recognise it in the /a/ segment).
    #[arg(long)]
    app_id: Option<String>,
    /// The signing certificate (any form `cert` reads).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// The name of an environment variable holding the PFX password.
    #[arg(long, value_name = "VAR", requires = "cert")]
    password_env: Option<String>,
    /// The cloud.
    #[arg(long)]
    cloud: Option<String>,
    /// The managed identity row's version (1 or 2).
    #[arg(long)]
    format_version: Option<String>,
    /// A subject configured on the identity's FICs (repeatable).
    #[arg(long = "configured", value_name = "SUBJECT")]
    configured: Vec<String>,
    /// The FICs were created in the last few minutes.
    #[arg(long)]
    recently_created: bool,
    /// Text or JSON output.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
enum Target {
    /// Microsoft Graph (app registration).
    #[default]
    Graph,
    /// Azure Resource Manager (user-assigned managed identity).
    Arm,
}

#[derive(Debug, Args)]
struct FicArgs {
    #[command(flatten)]
    inputs: SubjectInputs,
    /// The FIC name (default: derived from the environment and the subject).
    #[arg(long)]
    name: Option<String>,
    /// Which service's body to print.
    #[arg(long, value_enum, default_value_t)]
    target: Target,
}

type Failure = Box<dyn std::error::Error>;

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

/// Whether the command line asks for JSON output (`--output json` or `--output=json`): errors are JSON then too.
fn json_output_asked() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2).any(|w| w[0] == "--output" && w[1] == "json") || args.iter().any(|a| a == "--output=json")
}

/// The ways to sign in, when the error is a failed sign-in.
fn sign_in_hint(e: &(dyn std::error::Error + 'static)) -> Option<String> {
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

fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

fn password(var: Option<&str>) -> Result<Option<Secret>, Failure> {
    match var {
        None => Ok(None),
        Some(name) => match std::env::var(name) {
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(_) => Err(format!("--password-env: the environment variable {name} is not set").into()),
        },
    }
}

/// Prints a report: its text rendering, or its JSON.
fn show<T: std::fmt::Display + serde::Serialize>(output: Output, value: &T) -> Result<(), Failure> {
    match output {
        Output::Text => println!("{value}"),
        Output::Json => print_json(&serde_json::to_value(value)?)?,
    }
    Ok(())
}

fn load_certificate(path: &PathBuf, password_env: Option<&str>) -> Result<Certificate, Failure> {
    let loaded = Certificate::from_file_with_password(path, password(password_env)?.as_ref())?;
    for w in &loaded.warnings {
        eprintln!("note: {w}");
    }
    Ok(loaded.certificate)
}

/// Reads a certificate file into the diagnosis inputs (certificate, chain, the file's own hash), printing the
/// loader's notes.
fn certificate_for_diagnosis(
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

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn credential() -> Result<Arc<dyn TokenSource>, Failure> {
    Ok(dataverse_mi::auth::default_credential()?)
}

/// The client stack for the real services: one transport, which the credential's token requests use too.
fn platform() -> Result<Platform, Failure> {
    let transport: Arc<dyn dataverse_mi::http::Transport> =
        Arc::new(dataverse_mi::http::ReqwestTransport::new(Default::default())?);
    let credential = dataverse_mi::auth::default_credential_over(Some(transport.clone()))?;
    Ok(Platform::new(credential, ClientOptions { transport: Some(transport), ..ClientOptions::default() })?)
}

/// The client stack: at the real services, or where an endpoints file says (a fake's file asks for no sign-in).
fn platform_for(endpoints: Option<&std::path::Path>) -> Result<Platform, Failure> {
    let Some(path) = endpoints else { return platform() };
    let file = EndpointsFile::read(path)?;
    let credential: Arc<dyn TokenSource> = if file.fake {
        Arc::new(StaticToken::new(Secret::new("testkit"), SystemTime::now() + Duration::from_secs(3600)))
    } else {
        credential()?
    };
    Ok(Platform::new(credential, ClientOptions::default())?.with_endpoints(file.endpoints()?))
}

fn engine_for(args: &SpecArgs) -> Result<(ProvisionSpec, Provisioner), Failure> {
    let Some(file) = &args.file else { return Err("give the spec: -f spec.toml".into()) };
    engine_for_spec(args, ProvisionSpec::from_file(file)?)
}

fn engine_for_spec(args: &SpecArgs, mut spec: ProvisionSpec) -> Result<(ProvisionSpec, Provisioner), Failure> {
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
fn confirm(yes: bool, question: &str) -> Result<bool, Failure> {
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
struct Approval {
    output: Output,
    yes: bool,
    failure: std::sync::Mutex<Option<String>>,
}

impl Approval {
    fn new(output: Output, yes: bool) -> Self {
        Approval { output, yes, failure: std::sync::Mutex::new(None) }
    }

    /// Shows `plan` and asks `question`.
    fn ask(&self, plan: &impl std::fmt::Display, question: &str) -> bool {
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

    fn result(self) -> Result<(), Failure> {
        match self.failure.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

/// Prints what a plan and apply did; the exit code says how it went.
fn print_outcome(outcome: &ApplyOutcome, output: Output) -> Result<ExitCode, Failure> {
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
enum Step {
    Apply,
    Finish,
}

/// Plans `spec`, shows the plan, asks, applies and prints the report; the exit code says how it went.
fn plan_and_apply(
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
fn certificate_arg(path: &std::path::Path) -> Result<CertificateSpec, Failure> {
    let absolute = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // Read once now, so that a wrong path or file fails before any request.
    load_certificate(&absolute, None)?;
    Ok(CertificateSpec::File { path: absolute, password_env: None })
}

/// Prints a watch pass: a note for each environment that records no traces, then each failure (text, or one
/// JSON object per line).
fn print_watch(report: &WatchReport, output: Output) -> Result<(), Failure> {
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
fn progress_reporter() -> ProgressFn {
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

fn build_subject(i: &SubjectInputs) -> Result<(CloudProfile, SubjectIdentifier), Failure> {
    let tenant: Uuid = parse_guid(&i.tenant).map_err(|e| format!("--tenant: {e}"))?;
    let environment: EnvironmentId = i.environment.parse().map_err(|e| format!("--environment: {e}"))?;
    let cloud = CloudProfile::from(i.cloud.parse::<Cloud>()?);
    let version: SubjectFormatVersion = i.format_version.parse()?;
    let kind: CertificateKind = i.kind.parse()?;
    let binding = match (&i.cert, &i.sha256, &i.issuer_dn, &i.subject_dn) {
        (Some(path), _, _, _) => {
            CertificateBinding::for_certificate(&load_certificate(path, i.password_env.as_deref())?, version, kind)?
        }
        (None, Some(hash), _, _) => {
            if kind == CertificateKind::Trusted {
                return Err(
                    "--sha256 gives a self-signed subject; for --kind trusted give --issuer-dn and --subject-dn".into(),
                );
            }
            let sha256: CertificateHash = hash.parse().map_err(|e| format!("--sha256: {e}"))?;
            CertificateBinding::SelfSigned { sha256 }
        }
        (None, None, Some(issuer), Some(subject)) => {
            if kind == CertificateKind::SelfSigned {
                return Err("--issuer-dn/--subject-dn give a trusted-CA subject; for --kind self-signed give --sha256 or --cert".into());
            }
            CertificateBinding::from_names(issuer, subject, version)?
        }
        _ => return Err("give the certificate: --cert FILE, --sha256 HEX, or --issuer-dn DN --subject-dn DN".into()),
    };
    let subject = SubjectIdentifier::new(&cloud, tenant, environment, binding)?;
    Ok((cloud, subject))
}

/// Paste a token error (or a failure after the token), get its cause.
fn diagnose_command(args: DiagnoseArgs) -> Result<ExitCode, Failure> {
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

/// Plans the spec, and stores the plan with `--out`.
fn plan_command(args: SpecArgs, out: Option<PathBuf>) -> Result<ExitCode, Failure> {
    let (spec, engine) = engine_for(&args)?;
    let plan = runtime()?.block_on(engine.plan(&spec))?;
    if let Some(out) = &out {
        std::fs::write(out, plan.to_stored()?).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        eprintln!("plan written to {}; apply it with `dataverse-mi apply {}`", out.display(), out.display());
    }
    show(args.output, &plan)?;
    Ok(ExitCode::SUCCESS)
}

/// Plans and applies the spec, or applies a stored plan once a fresh plan of its spec does the same.
fn apply_command(stored: Option<PathBuf>, args: SpecArgs, yes: bool) -> Result<ExitCode, Failure> {
    let stored: Option<dataverse_mi::provision::Plan> = match &stored {
        Some(_) if args.file.is_some() => {
            return Err("give either a plan file or -f spec.toml, not both".into());
        }
        Some(path) => {
            let text = dataverse_mi::files::read_bounded(path, dataverse_mi::files::MAX_PLAN_FILE, "plan")?;
            Some(dataverse_mi::provision::Plan::from_stored(&text).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        None => None,
    };
    let (spec, engine) = match &stored {
        Some(plan) => engine_for_spec(&args, plan.spec())?,
        None => engine_for(&args)?,
    };
    let rt = runtime()?;
    let Some(plan) = stored else {
        return plan_and_apply(&engine, &spec, args.output, yes, &rt, Step::Apply);
    };
    // A stored plan is applied exactly as it is, once a fresh plan of its spec is checked to do the same.
    let approval = Approval::new(args.output, yes);
    let outcome = if plan.is_empty() {
        ApplyOutcome::new(plan, None)
    } else if approval.ask(&plan, &format!("apply {} change(s)?", plan.actions.len())) {
        let report = rt.block_on(engine.apply_if_current(&plan))?;
        ApplyOutcome::new(plan, Some(report))
    } else {
        ApplyOutcome::new(plan, None)
    };
    approval.result()?;
    print_outcome(&outcome, args.output)
}

/// Checks every component against the platform and the FICs.
fn verify_command(args: SpecArgs, expiry_days: u64) -> Result<ExitCode, Failure> {
    let (spec, engine) = engine_for(&args)?;
    let options = VerifyOptions::default().warn_within(Duration::from_secs(expiry_days.saturating_mul(86_400)));
    let report = runtime()?.block_on(engine.verify_with(&spec, options))?;
    show(args.output, &report)?;
    if !report.is_ok() {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// A certificate rotation: add the new certificate, then finish (remove the old one's FICs).
fn rotate_command(
    args: SpecArgs,
    add: Option<PathBuf>,
    finish: Option<PathBuf>,
    environments: Vec<String>,
    yes: bool,
) -> Result<ExitCode, Failure> {
    let (spec, engine) = engine_for(&args)?;
    let rt = runtime()?;
    let chosen: Vec<&str> = environments.iter().map(String::as_str).collect();
    if let Some(unknown) = chosen.iter().find(|u| !spec.environments.iter().any(|e| e.is_at(u))) {
        return Err(format!("--environment {unknown} is not one of the spec's environments").into());
    }
    let rotating = match (&add, &finish) {
        (Some(new), _) => spec.adding_certificate_in(certificate_arg(new)?, &chosen),
        (None, Some(new)) => spec.finishing_rotation_in(certificate_arg(new)?, &chosen),
        (None, None) => {
            return Err("say what to do: rotate --add NEW.cer, then rotate --finish NEW.cer".into());
        }
    };
    let code = plan_and_apply(
        &engine,
        &rotating,
        args.output,
        yes,
        &rt,
        if finish.is_some() { Step::Finish } else { Step::Apply },
    )?;
    if add.is_some() && code == ExitCode::SUCCESS && matches!(args.output, Output::Text) {
        eprintln!(
            "next: sign the plug-ins with the new certificate and register them again; `dataverse-mi verify` shows which are; then `dataverse-mi rotate --finish` with the same certificate"
        );
    }
    Ok(code)
}

/// The subject format upgrade ([`Provisioner::upgrade`]), and the spec file told its new version.
fn upgrade_command(
    args: SpecArgs,
    finish: bool,
    revert: bool,
    yes: bool,
    write_spec: bool,
) -> Result<ExitCode, Failure> {
    let (spec, engine) = engine_for(&args)?;
    let options = UpgradeOptions::default().finishing(finish).reverting(revert);
    let approval = Approval::new(args.output, yes);
    let outcome = runtime()?.block_on(
        engine.upgrade(&spec, options, |plan| approval.ask(plan, &format!("apply {} change(s)?", plan.actions.len()))),
    )?;
    approval.result()?;
    match args.output {
        Output::Json => print_json(&outcome)?,
        Output::Text => {
            let stages = [Some(&outcome.switch), outcome.finish.as_ref()];
            for stage in stages.into_iter().flatten().filter(|s| !s.declined()) {
                println!("{}", stage.report.as_ref().map(|r| r.to_string()).unwrap_or_else(|| stage.plan.to_string()));
            }
            if let Some(report) = outcome.verify.as_ref().filter(|v| !v.is_ok()) {
                println!("{report}");
            }
        }
    }
    // The spec must say the version the rows now have, or the next `verify` fails and the next `apply`
    // leaves the rows alone with a note.
    let target = outcome.target;
    if outcome.spec_is_behind(&spec) {
        let path = args.file.as_deref().unwrap_or(std::path::Path::new("spec"));
        if write_spec {
            let text = dataverse_mi::files::read_bounded_text(path, dataverse_mi::files::MAX_SPEC_FILE, "spec")?;
            let json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
            let written = ProvisionSpec::with_version_written(&text, target, json);
            std::fs::write(path, written).map_err(|e| format!("{}: {e}", path.display()))?;
            eprintln!("wrote `version = {target}` into {}", path.display());
        } else {
            eprintln!(
                "the rows are at version {target} now: set `version = {target}` in {} (or run again with --write-spec)",
                path.display()
            );
        }
    }
    if let Some(problem) = outcome.problem() {
        eprintln!("{problem}");
        let verify_failed = outcome.verify.as_ref().is_some_and(|v| !v.is_ok());
        return Ok(ExitCode::from(if verify_failed { 2 } else { 1 }));
    }
    if !finish && !revert && matches!(args.output, Output::Text) {
        eprintln!(
            "next: check the plug-ins (`dataverse-mi verify`), then `dataverse-mi upgrade --finish` removes the version 1 FICs"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The teardown ([`Provisioner::destroy_approved`]).
fn destroy_command(
    args: SpecArgs,
    role_assignments: bool,
    access: bool,
    identity: bool,
    yes: bool,
) -> Result<ExitCode, Failure> {
    let (spec, engine) = engine_for(&args)?;
    let options =
        DestroyOptions::default().with_role_assignments(role_assignments).with_access(access).with_identity(identity);
    let approval = Approval::new(args.output, yes);
    let outcome = runtime()?.block_on(engine.destroy_approved(&spec, options, |plan| {
        // Asked for JSON and not told to go ahead: the plan, for a script to read, and nothing deleted.
        if !yes && matches!(args.output, Output::Json) {
            return false;
        }
        approval.ask(plan, &format!("delete {} thing(s)?", plan.steps.len()))
    }))?;
    approval.result()?;
    match (args.output, &outcome.report) {
        (Output::Json, None) if outcome.declined() && !yes => {
            print_json(&outcome.plan)?;
            eprintln!("nothing deleted (--yes to delete)");
        }
        (Output::Json, None) if outcome.declined() => eprintln!("nothing deleted"),
        (Output::Json, None) => print_json(&outcome.plan)?,
        (Output::Json, Some(_)) => print_json(&outcome)?,
        (Output::Text, Some(report)) => println!("{report}"),
        (Output::Text, None) if outcome.declined() => eprintln!("nothing deleted"),
        (Output::Text, None) => println!("{}", outcome.plan),
    }
    if !outcome.is_success() || outcome.declined() {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Audits the environments a spec names, the URLs given, or every environment discovery lists.
fn audit_command(args: AuditArgs) -> Result<ExitCode, Failure> {
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

/// The environments a discovery service lists, and whether the spec selects each.
fn environments_command(args: SpecArgs, discovery_url: Option<String>) -> Result<ExitCode, Failure> {
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

/// Reads the trace logs and explains the token failures, once or until Ctrl-C.
fn watch_command(
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

/// The FIC subject for a tenant, an environment and a certificate.
fn subject_command(args: SubjectArgs) -> Result<ExitCode, Failure> {
    let (cloud, subject) = build_subject(&args.inputs)?;
    match args.output {
        Output::Text => println!("{subject}"),
        Output::Json => print_json(&dataverse_mi::fic::SubjectSummary::new(&cloud, &subject))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The FIC body for Microsoft Graph or Azure Resource Manager.
fn fic_command(args: FicArgs) -> Result<ExitCode, Failure> {
    let (cloud, subject) = build_subject(&args.inputs)?;
    let mut fic = FederatedIdentityCredential::for_subject(&cloud, &subject);
    if let Some(name) = args.name {
        fic.name = name;
    }
    let body = match args.target {
        Target::Graph => fic.graph_body()?,
        Target::Arm => fic.arm_body()?,
    };
    if matches!(args.target, Target::Arm) {
        eprintln!("note: ARM takes the name in the URL: .../federatedIdentityCredentials/{}", fic.name);
    }
    print_json(&body)?;
    Ok(ExitCode::SUCCESS)
}

/// What the platform derives from a certificate.
fn cert_command(file: PathBuf, password_env: Option<String>, output: Output) -> Result<ExitCode, Failure> {
    let cert = load_certificate(&file, password_env.as_deref())?;
    show(output, &cert.summary())?;
    Ok(ExitCode::SUCCESS)
}

/// A GUID as the platform encodes it in a subject.
fn encode_guid_command(guid: String, output: Output) -> Result<ExitCode, Failure> {
    let id = parse_guid(&guid)?;
    let encoded = encode_guid(id);
    match output {
        Output::Text => println!("{encoded}"),
        Output::Json => print_json(&dataverse_mi::guid::EncodedGuid::from(id))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// An encoded GUID back.
fn decode_guid_command(encoded: String, output: Output) -> Result<ExitCode, Failure> {
    let id = decode_guid(encoded.trim())?;
    match output {
        Output::Text => println!("{id}"),
        Output::Json => print_json(&dataverse_mi::guid::EncodedGuid::from(id))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// An environment's rows and plug-ins, and their bindings.
fn status_command(org: String, endpoints: Option<PathBuf>, output: Output) -> Result<ExitCode, Failure> {
    let client = platform_for(endpoints.as_deref())?.dataverse(&org)?;
    let rt = runtime()?;
    let status = rt.block_on(client.environment_status())?;
    show(output, &status)?;
    Ok(ExitCode::SUCCESS)
}

/// Serves the fake on loopback until Ctrl-C, with its endpoints file written (and removed when it stops).
#[cfg(feature = "testkit")]
fn fake_command(scenario: String, seed: Option<PathBuf>, endpoints_out: PathBuf) -> Result<ExitCode, Failure> {
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

/// What is wrong with a subject, segment by segment.
fn explain_subject_command(subject: String, output: Output) -> Result<ExitCode, Failure> {
    let explanation = explain_subject(&subject);
    match output {
        Output::Text => println!("{explanation}"),
        Output::Json => print_json(&explanation)?,
    }
    if !explanation.is_ok() {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// One small function per verb: parsing is clap's, the work is the library's, printing is each function's.
fn run(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::Subject(args) => subject_command(args),
        Command::Fic(args) => fic_command(args),
        Command::Cert { file, password_env, output } => cert_command(file, password_env, output),
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
