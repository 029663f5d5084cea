//! What an apply did: each action's status and error.

use super::super::*;

/// Why an action failed, as a program acts on it: the service and its answer (HTTP status, the service's error
/// code, whether it was throttled, the request id to quote to support), and the message for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ActionError {
    /// The message, as the error prints itself.
    pub message: String,
    /// The service the call was for (`dataverse`, `graph`, `arm`), when it reached for one.
    pub service: Option<String>,
    /// The HTTP status the service answered, when it answered.
    pub status: Option<u16>,
    /// The service's own error code (e.g. `0x80040237`, `PrincipalNotFound`).
    pub code: Option<String>,
    /// Whether the service throttled the call (429).
    pub throttled: bool,
    /// The request id the service gave (`x-ms-request-id`, `x-ms-service-request-id`, `request-id`).
    pub request_id: Option<String>,
}

impl From<&ApiError> for ActionError {
    fn from(e: &ApiError) -> Self {
        ActionError {
            message: e.to_string(),
            service: e.service().and_then(|s| serde_json::to_value(s).ok()).and_then(|v| v.as_str().map(str::to_owned)),
            status: e.status().map(|s| s.as_u16()),
            code: e.service_code().map(str::to_owned),
            throttled: e.is_throttled(),
            request_id: e.request_id().map(str::to_owned),
        }
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The outcome of one action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActionStatus {
    /// Done now.
    Done,
    /// Found already done (e.g. by a concurrent run, or a retried request whose first answer was lost).
    AlreadyDone,
    /// Failed.
    Failed {
        /// Why, typed.
        error: ActionError,
    },
    /// Not attempted because something it depends on failed.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// One action and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ActionResult {
    /// What it did.
    pub description: String,
    /// The outcome.
    pub status: ActionStatus,
}

/// What apply did. Check it: [`ApplyReport::is_success`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[must_use = "an apply can fail action by action: check is_success() or the actions"]
#[non_exhaustive]
pub struct ApplyReport {
    /// Each action.
    pub actions: Vec<ActionResult>,
    /// What this apply sent (its own requests and retries, whatever else runs at the same time).
    pub counts: CallCounts,
    /// Role assignments sent again because the new principal had not replicated yet (`PrincipalNotFound`).
    pub principal_retries: u32,
    /// The identity the rows and grants name, as found or created (its client id and principal id are what a
    /// person would otherwise copy from the portal); `None` when it could not be created.
    pub identity: Option<IdentityInfo>,
}

impl ApplyReport {
    /// Whether every action succeeded.
    pub fn is_success(&self) -> bool {
        self.actions.iter().all(|a| matches!(a.status, ActionStatus::Done | ActionStatus::AlreadyDone))
    }
}

impl fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.actions.is_empty() {
            write!(f, "nothing to do")?;
        }
        for (i, a) in self.actions.iter().enumerate() {
            let status = match &a.status {
                ActionStatus::Done => "done".to_owned(),
                ActionStatus::AlreadyDone => "already done".to_owned(),
                ActionStatus::Failed { error } => format!("FAILED: {error}"),
                ActionStatus::Skipped { reason } => format!("skipped: {reason}"),
            };
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{:<70} {status}", a.description)?;
        }
        write!(
            f,
            "\n{} request(s), {} of them retries ({})",
            self.counts.requests, self.counts.retries, self.counts.call
        )?;
        if self.principal_retries > 0 {
            write!(f, "\n{} role assignment(s) retried while the new principal replicated", self.principal_retries)?;
        }
        if let Some(identity) = &self.identity {
            write!(f, "\nidentity: client id {}", identity.client_id)?;
            if let Some(principal) = identity.principal_id {
                write!(f, ", principal id {principal}")?;
            }
            if let Some(tenant) = identity.tenant_id {
                write!(f, ", tenant {tenant}")?;
            }
        }
        Ok(())
    }
}

/// A plan and what applying it did (`None` when there was nothing to do, or it was not applied): what
/// `dataverse-mi apply --output json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ApplyOutcome {
    /// The plan.
    pub plan: Plan,
    /// The report.
    pub report: Option<ApplyReport>,
}

impl ApplyOutcome {
    /// A plan and its report.
    pub fn new(plan: Plan, report: Option<ApplyReport>) -> Self {
        ApplyOutcome { plan, report }
    }
}
