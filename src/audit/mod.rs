//! Auditing an estate: every plug-in managed identity row (`credentialsource` 2), every plug-in assembly and
//! package bound to one (with its registered signature and the subject the platform presents for it), and, where
//! the signed-in identity can read them, the FICs of each row's application or user-assigned identity, across any
//! number of environments; what is wrong with each, with a stable id, a severity, the evidence and the fix; and the
//! specs that fix what can be fixed, which `plan`/`apply` carry out. The audit itself writes nothing.
//!
//! ```no_run
//! # async fn run(platform: dataverse_mi::clients::Platform) -> Result<(), Box<dyn std::error::Error>> {
//! use dataverse_mi::audit::{AuditOptions, Auditor};
//! use dataverse_mi::cloud::{Cloud, CloudProfile};
//!
//! let auditor = Auditor::on_platform(&platform, &CloudProfile::from(Cloud::Public))?;
//! let urls = vec!["https://contoso-dev.crm.dynamics.com".to_owned()];
//! let report = auditor.audit(&urls, &AuditOptions::default()).await;
//! println!("{report}");
//! for (file, spec) in report.fix_specs() {
//!     println!("{file}: {} environment(s) to fix", spec.environments.len());
//! }
//! # Ok(()) }
//! ```
//!
//! Its files import `provision`, `clients` and the core: the floors below it (`tests/architecture.rs` checks that no import runs up a
//! floor and that no files import each other in a circle).

//!
//! A facade over files of one concern, lowest first: `model` (what is read), `findings` (what is wrong with it),
//! `report` (the report and its renderings, the fix specs), `directory` (where identities are looked up), and
//! `auditor` (the reads and the run). They import the clients, the core and `provision`'s spec and signature types.

mod auditor;
mod directory;
mod findings;
mod model;
mod report;

pub use auditor::{AuditOptions, Auditor};
pub use directory::{EstateDirectory, PlatformDirectory};
pub use findings::{AuditFinding, FindingKind, Severity};
pub use model::{AuditedComponent, AuditedRow, EnvironmentAudit, EstateIdentity, IdentityAudit, Signature};
pub use report::AuditReport;
