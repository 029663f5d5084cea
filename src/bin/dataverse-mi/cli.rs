//! The command line: every verb and its arguments (clap's derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "dataverse-mi", version, about = "Power Platform managed identity for Dataverse plug-ins")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub(crate) enum Output {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the subject identifier for a certificate in an environment.
    Subject(SubjectArgs),
    /// Print the federated identity credential body for Graph or ARM.
    Fic(FicArgs),
    /// Print what the platform derives from a certificate (`cert FILE`), or make one for development (`cert new`).
    Cert(CertArgs),
    /// Sign a plug-in assembly (Authenticode) with a PFX, in place or into --out.
    Sign(SignArgs),
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
pub(crate) struct SubjectInputs {
    /// The tenant id (GUID).
    #[arg(long)]
    pub(crate) tenant: String,
    /// The Power Platform environment id (a GUID, or Default-{tenant GUID} for the Default environment; not the
    /// organization id).
    #[arg(long)]
    pub(crate) environment: String,
    /// The signing certificate: DER (.cer/.crt), PEM, PFX, a signed assembly (.dll) or a signed package (.nupkg).
    #[arg(long, conflicts_with_all = ["sha256", "issuer_dn", "subject_dn"])]
    pub(crate) cert: Option<PathBuf>,
    /// The name of an environment variable holding the PFX password (never the password itself).
    #[arg(long, value_name = "VAR", requires = "cert")]
    pub(crate) password_env: Option<String>,
    /// The certificate's SHA-256, as certutil or nuget sign print it (any case; spaces or colons allowed).
    #[arg(long, conflicts_with_all = ["issuer_dn", "subject_dn"])]
    pub(crate) sha256: Option<String>,
    /// The issuer name exactly as .NET's X509Certificate2.Issuer prints it (trusted certificates).
    #[arg(long, requires = "subject_dn")]
    pub(crate) issuer_dn: Option<String>,
    /// The subject name exactly as .NET's X509Certificate2.Subject prints it (trusted certificates).
    #[arg(long, requires = "issuer_dn")]
    pub(crate) subject_dn: Option<String>,
    /// The cloud: public, gcc, usgov, gcchigh, dod, china, mooncake, usnat, ussec.
    #[arg(long, default_value = "public")]
    pub(crate) cloud: String,
    /// The subject format version (2 for new setups).
    #[arg(long, default_value = "2")]
    pub(crate) format_version: String,
    /// Which subject form: auto (self-signed gets /h/, others /i/../s/..), self-signed, trusted.
    #[arg(long, default_value = "auto")]
    pub(crate) kind: String,
}

#[derive(Debug, Args)]
pub(crate) struct SubjectArgs {
    #[command(flatten)]
    pub(crate) inputs: SubjectInputs,
    /// Text or JSON output.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) output: Output,
}

#[derive(Debug, Args)]
pub(crate) struct SpecArgs {
    /// The provisioning spec (TOML, or JSON when it ends in .json).
    #[arg(short = 'f', long = "file")]
    pub(crate) file: Option<PathBuf>,
    /// Override the spec's cloud.
    #[arg(long)]
    pub(crate) cloud: Option<String>,
    /// Text or JSON output.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) output: Output,
    /// Send every request on its own instead of in batches (Dataverse $batch, Graph JSON batching).
    #[arg(long)]
    pub(crate) no_batch: bool,
    /// Reach the services where this file says (what `dataverse-mi fake` writes, or a proxy's addresses).
    #[arg(long, value_name = "FILE")]
    pub(crate) endpoints: Option<PathBuf>,
    /// Rebind the spec's components that are bound to another row (another application's or tenant's, or one the
    /// spec did not make); without it they are left as they are and the plan names the row.
    #[arg(long)]
    pub(crate) take_over: bool,
    /// Adopt the row a solution import brought (the components are bound to it, with the source environment's
    /// application and tenant): update it in place instead of making a second one.
    #[arg(long)]
    pub(crate) adopt: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// A spec: its environments (listed, or discovered with `environments = { discover = true, ... }`).
    #[arg(short = 'f', long = "file", conflicts_with_all = ["urls", "discover"])]
    pub(crate) file: Option<PathBuf>,
    /// An environment URL to audit; repeat it for more.
    #[arg(long = "url", value_name = "URL")]
    pub(crate) urls: Vec<String>,
    /// Every enabled environment the Global Discovery Service lists for the signed-in identity.
    #[arg(long, conflicts_with = "urls")]
    pub(crate) discover: bool,
    /// The cloud (the spec's, or public).
    #[arg(long)]
    pub(crate) cloud: Option<String>,
    /// A table for the terminal, JSON for programs, or Markdown for a ticket.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) output: ReportFormat,
    /// Write the specs that fix what can be fixed into this folder, one per identity.
    #[arg(long, value_name = "DIR")]
    pub(crate) fix: Option<PathBuf>,
    /// Report certificates that end within this many days.
    #[arg(long, default_value_t = 60)]
    pub(crate) expiry_days: u64,
    /// Environments read at once.
    #[arg(long, default_value_t = 8)]
    pub(crate) concurrency: usize,
    /// Reach the services where this file says (what `dataverse-mi fake` writes, or a proxy's addresses).
    #[arg(long, value_name = "FILE")]
    pub(crate) endpoints: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub(crate) enum ReportFormat {
    #[default]
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub(crate) struct DiagnoseArgs {
    /// A provisioning spec to take the app id, certificate, version and cloud from.
    #[arg(short = 'f', long = "file")]
    pub(crate) file: Option<PathBuf>,
    /// The error as pasted: the whole message, the JSON error body, the error_description, or a trace log row's
    /// exception.
    #[arg(long)]
    pub(crate) error: String,
    /// The tenant id.
    #[arg(long)]
    pub(crate) tenant: Option<String>,
    /// The environment id (a GUID, or Default-{tenant GUID} for the Default environment).
    #[arg(long)]
    pub(crate) environment: Option<String>,
    /// The organization id (to recognise it where the environment id belongs).
    #[arg(long)]
    pub(crate) organization_id: Option<String>,
    /// Your app registration's or UAMI's client id (to recognise it in the /a/ segment).
    #[arg(long)]
    pub(crate) app_id: Option<String>,
    /// The signing certificate (any form `cert` reads).
    #[arg(long)]
    pub(crate) cert: Option<PathBuf>,
    /// The name of an environment variable holding the PFX password.
    #[arg(long, value_name = "VAR", requires = "cert")]
    pub(crate) password_env: Option<String>,
    /// The cloud.
    #[arg(long)]
    pub(crate) cloud: Option<String>,
    /// The managed identity row's version (1 or 2).
    #[arg(long)]
    pub(crate) format_version: Option<String>,
    /// A subject configured on the identity's FICs (repeatable).
    #[arg(long = "configured", value_name = "SUBJECT")]
    pub(crate) configured: Vec<String>,
    /// The FICs were created in the last few minutes.
    #[arg(long)]
    pub(crate) recently_created: bool,
    /// Text or JSON output.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) output: Output,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub(crate) enum Target {
    /// Microsoft Graph (app registration).
    #[default]
    Graph,
    /// Azure Resource Manager (user-assigned managed identity).
    Arm,
}

#[derive(Debug, Args)]
pub(crate) struct FicArgs {
    #[command(flatten)]
    pub(crate) inputs: SubjectInputs,
    /// The FIC name (default: derived from the environment and the subject).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Which service's body to print.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) target: Target,
}

/// `cert FILE` reads a certificate; `cert new` makes one.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct CertArgs {
    #[command(subcommand)]
    pub(crate) new: Option<CertCommand>,
    /// The certificate: DER (.cer/.crt), PEM, PFX, a signed assembly (.dll) or a signed package (.nupkg).
    #[arg(required = true)]
    pub(crate) file: Option<PathBuf>,
    /// The name of an environment variable holding the PFX password.
    #[arg(long, value_name = "VAR")]
    pub(crate) password_env: Option<String>,
    /// Text or JSON output.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) output: Output,
}

/// What `cert` can make.
#[derive(Subcommand, Debug)]
pub(crate) enum CertCommand {
    /// Make a self-signed code-signing certificate for development, as `New-SelfSignedCertificate -Type
    /// CodeSigningCert` does: a .pfx (with its key) and a .cer.
    New(CertNewArgs),
}

/// `cert new`.
#[derive(Args, Debug)]
pub(crate) struct CertNewArgs {
    /// The subject, as .NET prints it: most specific first, ", " between attributes, e.g.
    /// "CN=Contoso Plug-ins, O=Contoso, C=US". What .NET would print otherwise is refused.
    #[arg(long)]
    pub(crate) subject: String,
    /// Where to write the PFX (certificate and private key).
    #[arg(long, value_name = "FILE")]
    pub(crate) pfx: PathBuf,
    /// Where to write the certificate alone (DER); default: the PFX's path with .cer.
    #[arg(long, value_name = "FILE")]
    pub(crate) cer: Option<PathBuf>,
    /// The name of an environment variable holding the PFX's password (never an argument: arguments show in
    /// process lists and shell histories).
    #[arg(long, value_name = "VAR")]
    pub(crate) password_env: String,
    /// Valid for this many days from now.
    #[arg(long, default_value_t = 365)]
    pub(crate) days: u64,
    /// The key: rsa3072 (default), rsa2048, rsa4096, or ecdsa-p256 (see docs/platform.md before using ECDSA).
    #[arg(long, default_value = "rsa3072")]
    pub(crate) key: String,
    /// Replace files that exist.
    #[arg(long)]
    pub(crate) force: bool,
    /// With --environment: print the whole subject the platform will present for a plug-in signed with it.
    #[arg(long)]
    pub(crate) tenant: Option<String>,
    /// The Power Platform environment id, with --tenant.
    #[arg(long, requires = "tenant")]
    pub(crate) environment: Option<String>,
    /// The cloud, for the whole subject.
    #[arg(long, default_value = "public")]
    pub(crate) cloud: String,
    /// Text or JSON output.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) output: Output,
}

/// `sign`.
#[derive(Args, Debug)]
pub(crate) struct SignArgs {
    /// The plug-in assembly (.dll) to sign.
    pub(crate) file: PathBuf,
    /// The PFX with the signing certificate and its private key (e.g. from `cert new`).
    #[arg(long, value_name = "FILE")]
    pub(crate) pfx: PathBuf,
    /// The name of an environment variable holding the PFX's password.
    #[arg(long, value_name = "VAR")]
    pub(crate) password_env: String,
    /// Sign a file that is signed already, in place of its signature.
    #[arg(long)]
    pub(crate) replace: bool,
    /// Write the signed file here instead of replacing FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Text or JSON output.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) output: Output,
}
