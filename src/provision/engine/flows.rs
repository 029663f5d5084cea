//! The staged changes a front end runs, with a person (or a policy) approving each plan: plan then apply, an
//! upgrade of the subject format version (switch, verify, finish), a teardown. The CLI is one front end over
//! these; a service or another CLI is another.

use super::*;

impl ApplyOutcome {
    /// Whether there was nothing to do, or the plan was applied and every action succeeded.
    pub fn is_success(&self) -> bool {
        match &self.report {
            Some(report) => report.is_success(),
            None => self.plan.is_empty(),
        }
    }

    /// Whether there was something to do and it was not approved (nothing was applied).
    pub fn declined(&self) -> bool {
        self.report.is_none() && !self.plan.is_empty()
    }
}

impl fmt::Display for ApplyOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.report {
            Some(report) => write!(f, "{report}"),
            None if self.plan.is_empty() => write!(f, "nothing to do"),
            None => write!(f, "nothing changed: the plan was not approved"),
        }
    }
}

/// What an upgrade of the subject format version does ([`Provisioner::upgrade`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpgradeOptions {
    /// After the switch, verify, and when every component checks out remove the old version's FICs (prune).
    pub finish: bool,
    /// Switch back to version 1 instead (never finishes: the version 2 FICs stay until pruned).
    pub revert: bool,
}

impl UpgradeOptions {
    /// With the finish (verify, then remove the old version's FICs).
    pub fn finishing(mut self, yes: bool) -> Self {
        self.finish = yes;
        self
    }

    /// Back to version 1.
    pub fn reverting(mut self, yes: bool) -> Self {
        self.revert = yes;
        self
    }

    /// The version the rows are put at.
    pub fn target(&self) -> SubjectFormatVersion {
        if self.revert { SubjectFormatVersion::V1 } else { SubjectFormatVersion::V2 }
    }
}

/// What an upgrade did, stage by stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct UpgradeOutcome {
    /// The version the rows were put at.
    pub target: SubjectFormatVersion,
    /// The switch: the target version's FICs added, the rows updated (the old FICs stay).
    pub switch: ApplyOutcome,
    /// With `finish`, after a successful switch: the check of every component at the target version.
    pub verify: Option<VerifyReport>,
    /// With `finish`, when verify found nothing wrong: the removal of the old version's FICs.
    pub finish: Option<ApplyOutcome>,
}

impl UpgradeOutcome {
    /// Whether every stage that ran succeeded: the switch, and with a finish, verify and the removal, with no FIC
    /// left that plug-ins still present.
    pub fn is_success(&self) -> bool {
        self.switch.is_success()
            && self.verify.as_ref().is_none_or(VerifyReport::is_ok)
            && self.finish.as_ref().is_none_or(|f| f.is_success() && f.plan.kept_fics().is_empty())
    }

    /// Whether the spec still names another version than the rows now have (write the target into it:
    /// [`ProvisionSpec::with_version_written`]).
    pub fn spec_is_behind(&self, spec: &ProvisionSpec) -> bool {
        self.switch.is_success() && spec.version != self.target
    }

    /// What stops it, in words; `None` when it succeeded.
    pub fn problem(&self) -> Option<String> {
        if self.switch.declined() {
            return Some("nothing changed: the switch was not approved".into());
        }
        if !self.switch.is_success() {
            return Some("the switch failed".into());
        }
        if self.verify.as_ref().is_some_and(|v| !v.is_ok()) {
            let old = if self.target == SubjectFormatVersion::V2 { 1 } else { 2 };
            return Some(format!("verify found problems: the version {old} FICs stay"));
        }
        match &self.finish {
            Some(f) if f.declined() => Some("not finished: the removal was not approved".into()),
            Some(f) if !f.is_success() => Some("the removal failed".into()),
            Some(f) if !f.plan.kept_fics().is_empty() => {
                Some(f.plan.kept_fics().iter().map(|n| format!("not finished: {n}")).collect::<Vec<_>>().join("\n"))
            }
            _ => None,
        }
    }
}

/// A teardown's plan and what carrying it out did (`None` when there was nothing to delete or it was not
/// approved): what `dataverse-mi destroy --output json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DestroyOutcome {
    /// The plan.
    pub plan: DestroyPlan,
    /// The report.
    pub report: Option<DestroyReport>,
}

impl DestroyOutcome {
    /// Whether there was nothing to delete, or every step succeeded.
    pub fn is_success(&self) -> bool {
        match &self.report {
            Some(report) => report.is_success(),
            None => self.plan.steps.is_empty(),
        }
    }

    /// Whether there was something to delete and it was not approved.
    pub fn declined(&self) -> bool {
        self.report.is_none() && !self.plan.steps.is_empty()
    }
}

impl fmt::Display for DestroyOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.report {
            Some(report) => write!(f, "{report}"),
            None if self.plan.steps.is_empty() => write!(f, "nothing to delete"),
            None => write!(f, "nothing deleted: the teardown was not approved"),
        }
    }
}

impl Provisioner {
    /// Plans `spec` and, when there is something to do and `approve` says yes to the plan, applies it.
    /// `approve` is where a front end shows the plan and asks; it is not called when there is nothing to do.
    pub async fn plan_and_apply(
        &self,
        spec: &ProvisionSpec,
        approve: impl FnOnce(&Plan) -> bool + Send,
    ) -> Result<ApplyOutcome, ProvisionError> {
        let plan = self.plan(spec).await?;
        if plan.is_empty() || !approve(&plan) {
            return Ok(ApplyOutcome::new(plan, None));
        }
        let report = self.apply(&plan).await;
        Ok(ApplyOutcome::new(plan, Some(report)))
    }

    /// Upgrades the spec's rows to subject format version 2 (or back to 1, `options.revert`), in the order that
    /// keeps every plug-in working: the version 2 FICs are added and the rows switched (the version 1 FICs stay);
    /// with `options.finish`, every component is verified at version 2 and, only when all check out, the version
    /// 1 FICs are removed (those a plug-in still presents are kept, and the outcome says so). `approve` sees each
    /// plan before it is applied (the switch, then the removal).
    ///
    /// ```no_run
    /// # use dataverse_mi::provision::{ProvisionSpec, Provisioner, UpgradeOptions};
    /// # async fn f(engine: Provisioner, spec: ProvisionSpec) -> Result<(), dataverse_mi::provision::ProvisionError> {
    /// let outcome = engine.upgrade(&spec, UpgradeOptions::default().finishing(true), |plan| {
    ///     println!("{plan}");
    ///     true // approved
    /// })
    /// .await?;
    /// if let Some(problem) = outcome.problem() {
    ///     eprintln!("{problem}");
    /// }
    /// if outcome.spec_is_behind(&spec) {
    ///     eprintln!("set `version = {}` in the spec", outcome.target);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn upgrade(
        &self,
        spec: &ProvisionSpec,
        options: UpgradeOptions,
        mut approve: impl FnMut(&Plan) -> bool + Send,
    ) -> Result<UpgradeOutcome, ProvisionError> {
        let target = options.target();
        let step = spec.at_version(target);
        let switch = self.plan_and_apply(&step, &mut approve).await?;
        let mut outcome = UpgradeOutcome { target, switch, verify: None, finish: None };
        if !options.finish || options.revert || !outcome.switch.is_success() {
            return Ok(outcome);
        }
        let report = self.verify(&step).await?;
        let verified = report.is_ok();
        outcome.verify = Some(report);
        if !verified {
            return Ok(outcome);
        }
        let done = ProvisionSpec { prune: true, ..step };
        outcome.finish = Some(self.plan_and_apply(&done, &mut approve).await?);
        Ok(outcome)
    }

    /// Plans the teardown of `spec` and, when there is something to delete and `approve` says yes to the plan,
    /// carries it out ([`plan_destroy`](Self::plan_destroy), [`destroy`](Self::destroy)).
    pub async fn destroy_approved(
        &self,
        spec: &ProvisionSpec,
        options: DestroyOptions,
        approve: impl FnOnce(&DestroyPlan) -> bool + Send,
    ) -> Result<DestroyOutcome, ProvisionError> {
        let plan = self.plan_destroy(spec, options).await?;
        if plan.steps.is_empty() || !approve(&plan) {
            return Ok(DestroyOutcome { plan, report: None });
        }
        let report = self.destroy(&plan).await;
        Ok(DestroyOutcome { plan, report: Some(report) })
    }
}
