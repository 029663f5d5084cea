//! Why a plug-in's token request failed: Entra's `AADSTS...` errors parsed, and the likely causes found by
//! recomputing the values people get wrong and comparing them with what the platform presented and what the
//! identity's FICs hold.
//!
//! ```
//! use dataverse_mi::diagnose::{parse_error, explain, Cause, DiagnosisInputs};
//! use dataverse_mi::guid::{encode_guid, encode_guid_big_endian};
//! use uuid::Uuid;
//!
//! let tenant = Uuid::parse_str("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap();
//! let presented = format!(
//!     "/eid1/c/pub/t/{}/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/7efcc31a-c410-e20e-9b3c-3ea55e7f9c56/h/{}",
//!     encode_guid(tenant), "ab".repeat(32));
//! let error = parse_error(&format!(
//!     "AADSTS700213: No matching federated identity record found for presented assertion subject '{presented}'. \
//!      Trace ID: 1f1e4b0c-0000-0000-0000-000000000000 Correlation ID: 2a2b3c4d-0000-0000-0000-000000000000 Timestamp: 2026-11-22 10:00:00Z"))?;
//! // What the user configured: the tenant encoded the wrong way.
//! let configured = presented.replace(&encode_guid(tenant), &encode_guid_big_endian(tenant));
//! let inputs = DiagnosisInputs { configured: vec![configured.into()], ..Default::default() };
//! let diagnosis = explain(&error, &inputs);
//! assert_eq!(diagnosis.findings[0].cause, Cause::TenantBigEndian);
//! # Ok::<(), dataverse_mi::diagnose::DiagnoseError>(())
//! ```
//!
//! Its files import the core (`guid` to `entities`) and `secret`: the floors below it (`tests/architecture.rs` checks that no import runs up a
//! floor and that no files import each other in a circle).

//!
//! A facade over files of one concern each, lowest first: `error` (reading Entra's errors), `inputs`, `finding`
//! and `names`, then `analyzer` (one subject against another) and `path` (the failures after the token), then
//! `explain`, which uses them all. They import the crate's core (cert, cloud, environment, guid, subject) and
//! `entities`, nothing above.

mod analyzer;
mod error;
mod explain;
mod finding;
mod inputs;
mod names;
mod path;

pub use crate::subject::{Cause, Segment};
pub use analyzer::analyze;
pub use error::{DiagnoseError, EntraError, EntraErrorKind, parse_error, token_failure};
pub use explain::{diagnose, explain, trace_log_failure};
pub use finding::{Diagnosis, Finding};
pub use inputs::{ConfiguredFic, DiagnosisInputs, FIC_PROPAGATION};
