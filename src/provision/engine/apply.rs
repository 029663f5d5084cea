//! Making the planned changes.

use super::*;
use crate::clients::dataverse::requests;

impl Provisioner {
    /// Applies a plan made earlier (stored, approved, read back) exactly as it is, after checking it: it plans its
    /// spec again against the state now and refuses, before any write, a plan whose state changed or whose actions
    /// are not what the fresh plan's are (an edited plan): [`ProvisionError::StalePlan`] names each change
    /// ([`PlanChange`]). A plan already applied (the fresh plan has nothing to do) is
    /// [`ProvisionError::AlreadyApplied`]; one creating a FIC whose subject the spec does not account for,
    /// [`ProvisionError::UnexplainedSubjects`].
    pub async fn apply_if_current(&self, plan: &Plan) -> Result<ApplyReport, ProvisionError> {
        self.counted(async {
            self.check_identity(&plan.spec)?;
            let unexplained = plan.unexplained_subjects();
            if !unexplained.is_empty() {
                return Err(ProvisionError::UnexplainedSubjects { actions: unexplained });
            }
            let spec = plan.spec();
            let now = self.plan_reading(&spec, spec.prune).await?;
            if now.is_empty() && !plan.is_empty() {
                return Err(ProvisionError::AlreadyApplied);
            }
            let changes = plan.changes_since(&now);
            if !changes.is_empty() {
                return Err(ProvisionError::StalePlan { changes });
            }
            Ok(self.apply_in_call(plan).await)
        })
        .await
    }

    /// Applies a plan: per environment the FIC and the row first, then the binds; environments in parallel;
    /// FIC deletions (prune) last. Idempotent: "already exists" is success after checking it matches.
    pub async fn apply(&self, plan: &Plan) -> ApplyReport {
        self.counted(self.apply_in_call(plan)).await
    }

    async fn apply_in_call(&self, plan: &Plan) -> ApplyReport {
        let mut results: Vec<Option<ActionResult>> = vec![None; plan.actions.len()];
        // A plan made for another identity is not carried out with this one, nor one creating FICs its spec does
        // not account for: nothing is sent.
        if let Err(e) = self.check_identity(&plan.spec) {
            skip_the_rest(plan, &mut results, &e.to_string());
            return Self::report(results, 0, None);
        }
        let unexplained = plan.unexplained_subjects();
        if !unexplained.is_empty() {
            let e = ProvisionError::UnexplainedSubjects { actions: unexplained };
            skip_the_rest(plan, &mut results, &e.to_string());
            return Self::report(results, 0, None);
        }
        // The identity first: everything else names it.
        let mut identity = plan.found;
        let mut identity_error = None;
        for (i, action) in plan.actions.iter().enumerate() {
            if matches!(action, Action::CreateIdentity { .. }) {
                let description = action.describe(plan);
                self.emit(ProgressEvent::Started { action: i, description: description.clone() });
                let outcome = self.identity.create().await;
                match &outcome {
                    Ok(created) => identity = Some(*created),
                    Err(e) => identity_error = Some(e.to_string()),
                }
                results[i] =
                    Some(ActionResult { description, status: self.finish(i, outcome.map(|_| ActionStatus::Done)) });
            }
        }
        let identity = match (identity, identity_error) {
            (Some(identity), None) => identity,
            (_, error) => {
                let reason = format!("the identity is not there: {}", error.unwrap_or_else(|| "not created".into()));
                skip_the_rest(plan, &mut results, &reason);
                return Self::report(results, 0, None);
            }
        };
        // Each environment's actions, found once (not by scanning every action per environment).
        let mut by_env: Vec<Vec<usize>> = vec![Vec::new(); plan.environments.len()];
        for (i, a) in plan.actions.iter().enumerate() {
            if let Some(env) = a.environment().and_then(|e| by_env.get_mut(e)) {
                env.push(i);
            }
        }
        let by_env = &by_env;
        let principal_retries = std::sync::atomic::AtomicU32::new(0);
        let grants = plan.actions.iter().enumerate().filter(|(_, a)| a.is_grant());
        let grants = futures_util::future::join_all(grants.map(|(i, action)| {
            let retries = &principal_retries;
            async move {
                self.emit(ProgressEvent::Started { action: i, description: action.describe(plan) });
                let outcome = match action {
                    Action::GrantDataverseAccess { .. } => self.grant_dataverse_access(action, identity).await,
                    Action::GrantApiPermission { .. } => self.grant_api_permission(action, identity, retries).await,
                    _ => self.assign_role(action, identity, retries).await,
                };
                (i, ActionResult { description: action.describe(plan), status: self.finish(i, outcome) })
            }
        }));
        let environments = async {
            // With batching, every FIC first, in as few requests as the identity allows (Graph: 20 per batch).
            let made = if self.options.batch { self.create_fics_ahead(plan).await } else { BTreeMap::new() };
            let made = &made;
            let mut per_env = stream::iter(0..plan.environments.len())
                .map(|env| async move { (env, self.apply_environment(plan, env, &by_env[env], identity, made).await) })
                .buffer_unordered(self.options.environment_concurrency.max(1));
            let mut done = Vec::new();
            while let Some((env, env_results)) = per_env.next().await {
                done.extend(by_env[env].iter().copied().zip(env_results));
            }
            done
        };
        let (grants, environments) = futures_util::join!(grants, environments);
        for (i, r) in grants.into_iter().chain(environments) {
            results[i] = Some(r);
        }
        let all_ok =
            results.iter().flatten().all(|r| matches!(r.status, ActionStatus::Done | ActionStatus::AlreadyDone));
        for (i, action) in plan.actions.iter().enumerate() {
            if let Action::DeleteFic { name, .. } = action {
                let description = action.describe(plan);
                let status = if all_ok {
                    self.emit(ProgressEvent::Started { action: i, description: description.clone() });
                    self.finish(i, self.identity.delete_fic(name).await.map(|_| ActionStatus::Done))
                } else {
                    ActionStatus::Skipped { reason: "other actions failed; nothing is deleted then".into() }
                };
                results[i] = Some(ActionResult { description, status });
            }
        }
        // An action naming an environment the plan does not have (a plan edited by hand) is reported, not lost.
        skip_the_rest(plan, &mut results, "it names an environment the plan does not have");
        Self::report(results, principal_retries.into_inner(), Some(identity))
    }

    fn report(
        results: Vec<Option<ActionResult>>,
        principal_retries: u32,
        identity: Option<IdentityInfo>,
    ) -> ApplyReport {
        ApplyReport {
            actions: results.into_iter().flatten().collect(),
            counts: CallCounts::default(),
            principal_retries,
            identity,
        }
    }

    /// Assigns a role under its deterministic name. `PrincipalNotFound` (a principal created moments ago that has
    /// not replicated yet) is retried with a doubling wait, within [`ProvisionOptions::principal_retry`]; a
    /// conflict is success once an assignment giving the role at the scope is found.
    async fn assign_role(
        &self,
        action: &Action,
        identity: IdentityInfo,
        principal_retries: &std::sync::atomic::AtomicU32,
    ) -> Result<ActionStatus, ApiError> {
        let Action::AssignRole { scope, role_definition_id, .. } = action else {
            return Ok(ActionStatus::Skipped { reason: "not a role assignment".into() });
        };
        let (Some(access), Some(principal)) = (self.access.as_deref(), identity.principal_id) else {
            return Err(ApiError::invalid("grant", "no ARM client, or no principal to assign the role to"));
        };
        let name = role_assignment_name(scope, role_definition_id, principal);
        let not_replicated = |e: &ApiError| e.service_code() == Some("PrincipalNotFound");
        let create = || access.create_role_assignment(scope, name, role_definition_id, principal);
        match self.while_replicating(scope, principal_retries, not_replicated, create).await {
            Ok(()) => Ok(ActionStatus::Done),
            Err(e) if e.is_conflict() => {
                // RoleAssignmentExists: the same grant under another name (e.g. made in the portal), or ours
                // from a concurrent run or a retried request. Success only if it really gives this role here.
                let now = access.role_assignments(scope, principal).await?;
                if now.iter().any(|a| a.grants(scope, role_definition_id)) {
                    Ok(ActionStatus::AlreadyDone)
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Sends a write naming a principal the apply may have made moments ago, again while the service answers that
    /// the principal is not there yet (`not_replicated`): a doubling wait, within
    /// [`ProvisionOptions::principal_retry`], each retry counted in `principal_retries`. The last answer otherwise.
    pub(super) async fn while_replicating<F, Fut>(
        &self,
        what: &str,
        principal_retries: &std::sync::atomic::AtomicU32,
        not_replicated: impl Fn(&ApiError) -> bool,
        mut send: F,
    ) -> Result<(), ApiError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), ApiError>>,
    {
        let policy = self.options.principal_retry;
        let mut delay = policy.first_delay;
        let mut attempt = 1;
        loop {
            match send().await {
                Err(e) if not_replicated(&e) && attempt < policy.attempts.max(1) => {
                    principal_retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(what, attempt, ?delay, "principal not replicated yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2).min(policy.max_delay);
                    attempt += 1;
                }
                answer => return answer,
            }
        }
    }

    pub(super) fn finish(&self, index: usize, outcome: Result<ActionStatus, ApiError>) -> ActionStatus {
        match outcome {
            Ok(status) => {
                self.emit(ProgressEvent::Done { action: index });
                status
            }
            Err(e) => {
                self.emit(ProgressEvent::Failed { action: index, error: e.to_string() });
                ActionStatus::Failed { error: ActionError::from(&e) }
            }
        }
    }

    async fn apply_environment(
        &self,
        plan: &Plan,
        env: usize,
        indexes: &[usize],
        identity: IdentityInfo,
        made: &BTreeMap<usize, ActionResult>,
    ) -> Vec<ActionResult> {
        let e = &plan.environments[env];
        // A plan made before the identity existed leaves the row id to now.
        let row_id = e
            .managed_identity_id
            .unwrap_or_else(|| managed_identity_row_id(identity.client_id, e.tenant_id, e.environment_id));
        let dv = match self.connector.connect(&e.org_url) {
            Ok(dv) => dv,
            Err(err) => {
                return indexes
                    .iter()
                    .map(|i| ActionResult {
                        description: plan.actions[*i].describe(plan),
                        status: ActionStatus::Failed { error: ActionError::from(&err) },
                    })
                    .collect();
            }
        };
        // The row a plan made before the identity existed could not spell out.
        let new_row = || NewManagedIdentity {
            id: row_id,
            ..NewManagedIdentity::for_plugins(identity.client_id, e.tenant_id, e.environment_id, plan.version)
        };
        let run = |i: usize| {
            let dv = dv.clone();
            async move {
                let action = &plan.actions[i];
                self.emit(ProgressEvent::Started { action: i, description: action.describe(plan) });
                let outcome = match action {
                    Action::CreateFic { fic, .. } => self.create_fic(fic).await,
                    Action::CreateManagedIdentity { row: Some(row), .. } => create_row(dv.as_ref(), row).await,
                    Action::CreateManagedIdentity { row: None, .. } => create_row(dv.as_ref(), &new_row()).await,
                    Action::UpdateManagedIdentity { id, update, .. } => {
                        dv.update_managed_identity(*id, update).await.map(|_| ActionStatus::Done)
                    }
                    Action::Bind { component, managed_identity, .. } => {
                        let target = managed_identity.unwrap_or(row_id);
                        dv.bind(component.kind, component.id, target).await.map(|_| ActionStatus::Done)
                    }
                    Action::DeleteFic { .. }
                    | Action::CreateIdentity { .. }
                    | Action::AssignRole { .. }
                    | Action::GrantDataverseAccess { .. }
                    | Action::GrantApiPermission { .. } => {
                        Ok(ActionStatus::Skipped { reason: "not an environment's action".into() })
                    }
                };
                ActionResult { description: action.describe(plan), status: self.finish(i, outcome) }
            }
        };
        let mut out: BTreeMap<usize, ActionResult> = BTreeMap::new();
        // FICs made ahead (in Graph batches) are done already.
        let indexes: Vec<usize> = indexes
            .iter()
            .copied()
            .filter(|i| match made.get(i) {
                Some(r) => {
                    out.insert(*i, r.clone());
                    false
                }
                None => true,
            })
            .collect();
        let (fics, writes): (Vec<usize>, Vec<usize>) =
            indexes.iter().partition(|i| matches!(plan.actions[**i], Action::CreateFic { .. }));
        let fics_ok = out.values().all(|r| matches!(r.status, ActionStatus::Done | ActionStatus::AlreadyDone));
        if self.options.batch && fics.is_empty() && fics_ok && !writes.is_empty() {
            // The row and every bind in one change set: together or not at all. A change set that fails (a row
            // made by an earlier run, a throttled batch) is done again one request at a time, with the usual
            // idempotence rules.
            let mut ordered = writes.clone();
            ordered.sort_by_key(|i| matches!(plan.actions[*i], Action::Bind { .. }));
            // The same request values the single writes send, in one change set.
            let mut change_set = crate::clients::Batch::new();
            for i in &ordered {
                match &plan.actions[*i] {
                    Action::CreateManagedIdentity { row, .. } => {
                        change_set.add(requests::create_managed_identity(&row.clone().unwrap_or_else(new_row)));
                    }
                    Action::UpdateManagedIdentity { id, update, .. } => {
                        change_set.add(requests::update_managed_identity(*id, update));
                    }
                    Action::Bind { component, managed_identity, .. } => {
                        change_set.add(requests::bind(
                            component.kind,
                            component.id,
                            managed_identity.unwrap_or(row_id),
                        ));
                    }
                    _ => {}
                }
            }
            if change_set.len() == ordered.len() {
                for i in &ordered {
                    self.emit(ProgressEvent::Started { action: *i, description: plan.actions[*i].describe(plan) });
                }
                match dv.send_change_set(&change_set).await {
                    Ok(_) => {
                        for i in ordered {
                            let status = self.finish(i, Ok(ActionStatus::Done));
                            out.insert(i, ActionResult { description: plan.actions[i].describe(plan), status });
                        }
                        return out.into_values().collect();
                    }
                    Err(err) => {
                        tracing::debug!(org = %e.org_url, error = %err, "the change set failed; writing one by one");
                    }
                }
            }
        }
        let (first, binds): (Vec<usize>, Vec<usize>) =
            indexes.iter().partition(|i| !matches!(plan.actions[**i], Action::Bind { .. }));
        for (i, r) in first.iter().copied().zip(futures_util::future::join_all(first.iter().map(|i| run(*i))).await) {
            out.insert(i, r);
        }
        let prerequisites_ok = out.values().all(|r| matches!(r.status, ActionStatus::Done | ActionStatus::AlreadyDone));
        if prerequisites_ok {
            for (i, r) in binds.iter().copied().zip(futures_util::future::join_all(binds.iter().map(|i| run(*i))).await)
            {
                out.insert(i, r);
            }
        } else {
            for i in binds {
                out.insert(
                    i,
                    ActionResult {
                        description: plan.actions[i].describe(plan),
                        status: ActionStatus::Skipped { reason: "the environment's FIC or row failed".into() },
                    },
                );
            }
        }
        out.into_values().collect()
    }

    /// Every `CreateFic` of the plan, before any environment's change set: through [`IdentityApi::create_fics`]
    /// (Graph JSON batches) when there are several; a FIC whose batched create failed otherwise than by throttling
    /// gets the single request's treatment (sent again alone, then read back and compared).
    async fn create_fics_ahead(&self, plan: &Plan) -> BTreeMap<usize, ActionResult> {
        let wanted: Vec<(usize, &FederatedIdentityCredential)> = plan
            .actions
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                Action::CreateFic { fic, .. } => Some((i, fic)),
                _ => None,
            })
            .collect();
        let mut out = BTreeMap::new();
        for (i, _) in &wanted {
            self.emit(ProgressEvent::Started { action: *i, description: plan.actions[*i].describe(plan) });
        }
        // One FIC is one request either way: no batch for it.
        let results = match wanted.as_slice() {
            [] => return out,
            [(i, fic)] => {
                let outcome = self.create_fic(fic).await;
                out.insert(
                    *i,
                    ActionResult { description: plan.actions[*i].describe(plan), status: self.finish(*i, outcome) },
                );
                return out;
            }
            _ => {
                let fics: Vec<FederatedIdentityCredential> = wanted.iter().map(|(_, f)| (*f).clone()).collect();
                self.identity.create_fics(&fics).await
            }
        };
        for ((i, fic), result) in wanted.into_iter().zip(results) {
            let outcome = match result {
                Ok(()) => Ok(ActionStatus::Done),
                // Throttled after the batch's own waits (each item's `Retry-After`): sending it again at once would
                // only add to the load; it fails, and the next run creates it.
                Err(e) if e.is_throttled() => Err(e),
                Err(_) => self.create_fic(fic).await,
            };
            out.insert(
                i,
                ActionResult { description: plan.actions[i].describe(plan), status: self.finish(i, outcome) },
            );
        }
        out
    }

    async fn create_fic(&self, fic: &FederatedIdentityCredential) -> Result<ActionStatus, ApiError> {
        match self.identity.create_fic(fic).await {
            Ok(()) => Ok(ActionStatus::Done),
            Err(e) => {
                // A concurrent run, or a retry whose first attempt went through: read back and compare.
                let now = self.identity.list_fics().await?;
                if now.iter().any(|f| f.name == fic.name && f.subject == fic.subject && f.issuer == fic.issuer) {
                    Ok(ActionStatus::AlreadyDone)
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// Marks every action that has no result yet as skipped, for `reason`.
fn skip_the_rest(plan: &Plan, results: &mut [Option<ActionResult>], reason: &str) {
    for (action, result) in plan.actions.iter().zip(results.iter_mut()) {
        if result.is_none() {
            *result = Some(ActionResult {
                description: action.describe(plan),
                status: ActionStatus::Skipped { reason: reason.to_owned() },
            });
        }
    }
}

async fn create_row(dv: &dyn DataverseApi, row: &NewManagedIdentity) -> Result<ActionStatus, ApiError> {
    match dv.create_managed_identity(row).await {
        Ok(()) => Ok(ActionStatus::Done),
        Err(e) if e.is_conflict() => {
            // Created by a concurrent run or by an earlier attempt of this one: check that it is ours.
            let existing = dv.get_managed_identity(row.id).await?;
            if existing.application_id == Some(row.application_id)
                && existing.tenant_id == Some(row.tenant_id)
                && existing.version == Some(row.version.number())
            {
                Ok(ActionStatus::AlreadyDone)
            } else {
                let update = ManagedIdentityUpdate {
                    version: Some(row.version),
                    application_id: Some(row.application_id),
                    tenant_id: Some(row.tenant_id),
                    name: None,
                };
                dv.update_managed_identity(row.id, &update).await.map(|_| ActionStatus::Done)
            }
        }
        Err(e) => Err(e),
    }
}
