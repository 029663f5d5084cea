//! What the engine reads and reports: plans, actions, outcomes, verification.
//!
//! One file per report, lowest first: `component` (a component as read), `notes`, `plan_report`,
//! `apply_report`, `verify_report`. They import the engine's shared imports and each other in that order.

mod apply_report;
mod component;
mod notes;
mod plan_report;
mod verify_report;

pub use apply_report::*;
pub use component::*;
pub use notes::*;
pub use plan_report::*;
pub use verify_report::*;
