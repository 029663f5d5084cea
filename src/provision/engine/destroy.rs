//! Teardown: undoing what a spec set up, and nothing else.

use super::*;

/// What [`Provisioner::plan_destroy`] may delete beyond bindings, rows and FICs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DestroyOptions {
    /// Also delete the spec's role assignments (`[[grants]]`).
    pub role_assignments: bool,
    /// Also take away the access the spec gives in Dataverse and through APIs: the security roles it names from
    /// the identity's application users (`[[application_users]]`; the user row stays, Dataverse does not delete
    /// users) and its API permissions (`[[api_permissions]]`).
    pub access: bool,
    /// Also delete the identity, when the spec created it (`create`) and no FIC but this spec's is left on it.
    pub identity: bool,
}

impl DestroyOptions {
    /// Also delete the spec's role assignments.
    pub fn with_role_assignments(mut self, yes: bool) -> Self {
        self.role_assignments = yes;
        self
    }

    /// Also take away the application users' roles and the API permissions the spec gives.
    pub fn with_access(mut self, yes: bool) -> Self {
        self.access = yes;
        self
    }

    /// Also delete a created identity.
    pub fn with_identity(mut self, yes: bool) -> Self {
        self.identity = yes;
        self
    }
}

/// One deletion a teardown makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DestroyStep {
    /// Remove a component's binding to this spec's row.
    Unbind {
        /// The environment.
        org_url: String,
        /// Assembly or package.
        kind: ComponentKind,
        /// The component.
        component: Uuid,
        /// Its name.
        name: String,
    },
    /// Delete this spec's `managedidentity` row (nothing else is bound to it).
    DeleteRow {
        /// The environment.
        org_url: String,
        /// The row.
        id: Uuid,
    },
    /// Delete a FIC this spec made for one of its environments.
    DeleteFic {
        /// Its name.
        name: String,
        /// Its subject.
        subject: String,
    },
    /// Delete a role assignment the spec asks for.
    DeleteRoleAssignment {
        /// The assignment's id.
        id: String,
        /// The role.
        role: String,
        /// The scope.
        scope: String,
    },
    /// Take a security role the spec names from the identity's application user.
    RemoveSecurityRole {
        /// The environment.
        org_url: String,
        /// The application user.
        user: Uuid,
        /// The role's name.
        role: String,
        /// The role's id.
        role_id: Uuid,
    },
    /// Take an API permission the spec names from the identity's service principal.
    RemoveApiPermission {
        /// The service principal.
        principal: Uuid,
        /// The assignment's id.
        assignment: String,
        /// The API, for people.
        api: String,
        /// The permission.
        permission: String,
    },
    /// Delete the identity the spec created.
    DeleteIdentity {
        /// The identity, described.
        identity: String,
    },
}

impl fmt::Display for DestroyStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DestroyStep::Unbind { org_url, name, .. } => write!(f, "{org_url}: unbind {name}"),
            DestroyStep::DeleteRow { org_url, id } => write!(f, "{org_url}: delete managed identity row {id}"),
            DestroyStep::DeleteFic { name, subject } => write!(f, "delete FIC {name} ({subject})"),
            DestroyStep::DeleteRoleAssignment { role, scope, .. } => {
                write!(f, "delete role assignment '{role}' at {scope}")
            }
            DestroyStep::RemoveSecurityRole { org_url, role, .. } => {
                write!(f, "{org_url}: take role '{role}' from the application user")
            }
            DestroyStep::RemoveApiPermission { api, permission, .. } => {
                write!(f, "take the application permission {api} {permission}")
            }
            DestroyStep::DeleteIdentity { identity } => write!(f, "delete {identity}"),
        }
    }
}

/// Something a teardown leaves in place, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Kept {
    /// What is kept.
    pub what: String,
    /// Why.
    pub why: String,
}

impl fmt::Display for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "keep {}: {}", self.what, self.why)
    }
}

/// What a teardown will delete, in the order it deletes (bindings, rows, FICs, role assignments, identity), and
/// what it keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct DestroyPlan {
    /// The identity, described.
    pub identity: String,
    /// The deletions.
    pub steps: Vec<DestroyStep>,
    /// What stays, with the reason.
    pub kept: Vec<Kept>,
    /// What planning the teardown sent.
    #[serde(default)]
    pub counts: CallCounts,
}

impl fmt::Display for DestroyPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.steps.is_empty() {
            write!(f, "nothing to delete")?;
        }
        for (i, s) in self.steps.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{:>3}. {s}", i + 1)?;
        }
        for k in &self.kept {
            write!(f, "\n     {k}")?;
        }
        Ok(())
    }
}

/// What a teardown did, step by step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DestroyReport {
    /// Each step, with its outcome.
    pub steps: Vec<ActionResult>,
    /// What the teardown sent.
    pub counts: CallCounts,
}

impl DestroyReport {
    /// Whether every step succeeded.
    pub fn is_success(&self) -> bool {
        self.steps.iter().all(|a| matches!(a.status, ActionStatus::Done | ActionStatus::AlreadyDone))
    }
}

impl fmt::Display for DestroyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.steps.is_empty() {
            write!(f, "nothing to delete")?;
        }
        for (i, a) in self.steps.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let status = match &a.status {
                ActionStatus::Done => "done".to_owned(),
                ActionStatus::AlreadyDone => "already done".to_owned(),
                ActionStatus::Failed { error } => format!("FAILED: {error}"),
                ActionStatus::Skipped { reason } => format!("skipped: {reason}"),
            };
            write!(f, "{:>3}. {} ... {status}", i + 1, a.description)?;
        }
        Ok(())
    }
}

impl Provisioner {
    /// Plans the teardown of what `spec` set up: unbind its components from its row, delete the row when
    /// nothing else is bound to it, delete the FICs it provably made for its environments (named
    /// `dataverse-{environment id}-{suffix of the subject it holds}`, the same ownership rule as prune), and, only
    /// when `options` say so, its role assignments and the identity it created. Never a row it did not create (its
    /// id is not the deterministic one), never a component bound elsewhere, never a FIC whose subject a plug-in
    /// still presents (any plug-in of the environment bound to a row of the application, named by the spec or
    /// not), never an identity that still carries someone else's FIC. Reads only.
    pub async fn plan_destroy(
        &self,
        spec: &ProvisionSpec,
        options: DestroyOptions,
    ) -> Result<DestroyPlan, ProvisionError> {
        self.counted(self.plan_destroy_in_call(spec, options)).await
    }

    async fn plan_destroy_in_call(
        &self,
        spec: &ProvisionSpec,
        options: DestroyOptions,
    ) -> Result<DestroyPlan, ProvisionError> {
        spec.validate()?;
        self.check_identity(spec)?;
        let resolved = self.resolve(spec).await?;
        let spec = &resolved;
        let principal_needed = (options.role_assignments && !spec.grants.is_empty())
            || (options.access && !spec.api_permissions.is_empty());
        let (found, fics) = match self.read_identity(principal_needed).await {
            Ok(read) => read,
            // Nothing to tear down on an identity that is gone.
            Err(ProvisionError::IdentityNotFound { .. }) => (None, Vec::new()),
            Err(e) => return Err(e),
        };
        let identity = self.identity.describe();
        let Some(found) = found else {
            return Ok(DestroyPlan {
                identity: identity.clone(),
                steps: Vec::new(),
                kept: vec![Kept { what: identity, why: "it does not exist: nothing of it to delete".into() }],
                counts: CallCounts::default(),
            });
        };
        let cloud = crate::cloud::CloudProfile::from(spec.cloud);
        let mut steps = Vec::new();
        let mut kept = Vec::new();
        let mut fic_steps = Vec::new();
        let mut remaining_fics: Vec<&FederatedIdentityCredential> = fics.iter().collect();
        for env_spec in &spec.environments {
            let org = env_spec.org_url.as_str();
            // The same observe step as plan: the organization, the identity's rows, the spec's components.
            let snapshot = self
                .observe_environment(spec, env_spec, &cloud, Some(found.client_id), super::plan::Observe::Rows)
                .await?;
            let (environment_id, tenant_id) = (snapshot.environment_id, snapshot.tenant_id);
            let components = snapshot.components;
            let row_id = managed_identity_row_id(found.client_id, tenant_id, environment_id);
            let row = snapshot.rows.into_iter().find(|r| r.id == row_id);
            let dv = self.connector.connect(org).map_err(|e| ProvisionError::api(org, e))?;
            let (assemblies, packages) = futures_util::try_join!(
                async { dv.list_plugin_assemblies().await.map_err(|e| ProvisionError::api(org, e)) },
                async { dv.list_plugin_packages().await.map_err(|e| ProvisionError::api(org, e)) },
            )?;
            let mine: HashSet<Uuid> = components
                .iter()
                .map(|c| c.id)
                .chain(components.iter().flat_map(|c| c.named_assemblies.iter().map(|a| a.id)))
                .collect();
            let mut unbinds = Vec::new();
            for c in &components {
                let parts = std::iter::once((c.kind, c.id, c.name.clone(), c.bound_to)).chain(
                    c.named_assemblies
                        .iter()
                        .map(|a| (ComponentKind::PluginAssembly, a.id, a.name.clone(), a.bound_to)),
                );
                for (kind, id, name, bound_to) in parts {
                    match bound_to {
                        Some(b) if b == row_id => {
                            unbinds.push(DestroyStep::Unbind { org_url: org.to_owned(), kind, component: id, name })
                        }
                        Some(other) => kept.push(Kept {
                            what: format!("{org}: the binding of {name}"),
                            why: format!("it is bound to another row ({other}), not this spec's"),
                        }),
                        None => {}
                    }
                }
            }
            // Components the spec does not name, bound to its row: the row and the environment's FICs stay.
            let others: Vec<String> = assemblies
                .iter()
                .filter(|a| a.managed_identity_id == Some(row_id) && !mine.contains(&a.id))
                .map(|a| a.name.clone().unwrap_or_else(|| a.id.to_string()))
                .chain(
                    packages
                        .iter()
                        .filter(|p| p.managed_identity_id == Some(row_id) && !mine.contains(&p.id))
                        .map(|p| p.unique_name.clone().or(p.name.clone()).unwrap_or_else(|| p.id.to_string())),
                )
                .collect();
            steps.extend(unbinds);
            match (&row, others.is_empty()) {
                (Some(_), false) => kept.push(Kept {
                    what: format!("{org}: managed identity row {row_id}"),
                    why: format!("other components are bound to it: {}", others.join(", ")),
                }),
                (Some(_), true) => steps.push(DestroyStep::DeleteRow { org_url: org.to_owned(), id: row_id }),
                (None, _) => {}
            }
            // The FICs this spec provably made for the environment, unless a plug-in still presents their
            // subject: any component bound to a row of the application there, named by the spec or not, except
            // the spec's own ones that this teardown unbinds from its row.
            let at = super::users::UsersIn {
                org_url: org,
                application_id: found.client_id,
                tenant_id,
                environment_id,
                spec_row: Some(row_id),
            };
            let own: Vec<&FederatedIdentityCredential> =
                fics.iter().filter(|f| crate::fic::is_managed(environment_id, f)).collect();
            // Asked only when there is a FIC of this spec's here to delete.
            let users: Vec<SubjectUser> = if own.is_empty() {
                Vec::new()
            } else {
                self.subject_users(dv.as_ref(), &at, &cloud)
                    .await?
                    .into_iter()
                    .filter(|u| !(u.spec_row && mine.contains(&u.id)))
                    .collect()
            };
            for f in own {
                let using = super::evidence::presenting(&users, &f.subject);
                if using.is_empty() {
                    remaining_fics.retain(|r| r.name != f.name);
                    fic_steps.push(DestroyStep::DeleteFic { name: f.name.clone(), subject: f.subject.clone() });
                } else {
                    kept.push(Kept {
                        what: format!("{org}: the FIC {} ({})", f.name, f.subject),
                        why: format!("still used by {}", super::reports::describe_users(&using)),
                    });
                }
            }
        }
        steps.extend(fic_steps);
        // Whoever still has a FIC on the identity (another spec, a plug-in still presenting a kept FIC, a FIC made
        // by hand) may rely on its grants and on the identity itself.
        let others: Vec<&str> = remaining_fics.iter().map(|f| f.name.as_str()).collect();
        let mut grants_left = Vec::new();
        if options.role_assignments {
            for g in self.plan_grants(spec, Some(found)).await? {
                let Some(id) = g.existing else { continue };
                // Made by this spec: the deterministic name it gives the assignment. One found in place under
                // another name (made by hand, or by another tool) was adopted, not made.
                let made_here = found.principal_id.is_some_and(|p| {
                    let name = crate::clients::role_assignment_name(&g.scope, &g.role_definition_id, p).to_string();
                    id.rsplit('/').next().is_some_and(|last| last.eq_ignore_ascii_case(&name))
                });
                let what = format!("the role assignment {} at {}", g.role, g.scope);
                if !made_here {
                    kept.push(Kept {
                        what,
                        why: "this spec did not make it (it was there before, under another name): it stays".into(),
                    });
                    grants_left.push(id);
                } else if !others.is_empty() {
                    kept.push(Kept {
                        what,
                        why: format!("the identity still carries FICs this teardown does not delete ({}): whoever uses them may rely on it", others.join(", ")),
                    });
                    grants_left.push(id);
                } else {
                    steps.push(DestroyStep::DeleteRoleAssignment { id, role: g.role, scope: g.scope });
                }
            }
        } else if !spec.grants.is_empty() {
            kept.push(Kept {
                what: "the role assignments".into(),
                why: "not asked to delete them (--role-assignments)".into(),
            });
        }
        let gives_access = !spec.application_users.is_empty() || !spec.api_permissions.is_empty();
        if options.access && !others.is_empty() {
            // As for role assignments: whoever still has a FIC on the identity may rely on its access.
            kept.push(Kept {
                what: "the application users' roles and the API permissions".into(),
                why: format!(
                    "the identity still carries FICs this teardown does not delete ({}): whoever uses them may rely on them",
                    others.join(", ")
                ),
            });
        } else if options.access {
            for u in self.observe_application_users(spec, Some(found.client_id)).await? {
                let Some(user) = u.user else { continue };
                for r in u.roles.into_iter().filter(|r| r.given) {
                    steps.push(DestroyStep::RemoveSecurityRole {
                        org_url: u.org_url.clone(),
                        user,
                        role: r.name,
                        role_id: r.role_id,
                    });
                }
            }
            if let Some(principal) = found.principal_id {
                for p in self.observe_api_permissions(spec, Some(principal)).await? {
                    let api = p.api_label();
                    let Some(assignment) = p.existing else { continue };
                    steps.push(DestroyStep::RemoveApiPermission {
                        principal,
                        assignment,
                        api,
                        permission: p.permission,
                    });
                }
            }
        } else if gives_access {
            kept.push(Kept {
                what: "the application users' roles and the API permissions".into(),
                why: "not asked to take them away (--access)".into(),
            });
        }
        if options.identity {
            // Only an identity this tool created (recorded on the identity itself), and only when nothing else
            // uses it: no FIC but the ones deleted here, no role assignment but the ones deleted here.
            let why = if !self.identity.may_create() {
                Some("the spec does not create it (no `create`): it was there before, and stays".to_owned())
            } else if !self.identity.created_by_this_tool().await.map_err(ProvisionError::identity)? {
                Some("it does not carry dataverse-mi's creation tag: it was made by hand or by another tool (a spec's `create` means \"create when missing\"), and stays".to_owned())
            } else if !others.is_empty() {
                Some(format!("it carries FICs this teardown does not delete: {}", others.join(", ")))
            } else if !spec.grants.is_empty() && !options.role_assignments {
                Some("its role assignments stay (not asked to delete them), so it stays too".to_owned())
            } else if !grants_left.is_empty() {
                Some("it keeps role assignments this spec did not make".to_owned())
            } else if gives_access && (!options.access || !others.is_empty()) {
                Some("its application users' roles and API permissions stay (not asked to take them away), so it stays too".to_owned())
            } else {
                self.foreign_assignments(found, &steps).await?.map(|others| {
                    format!("it has role assignments this spec did not make ({others}): other workloads may use it")
                })
            };
            match why {
                None => steps.push(DestroyStep::DeleteIdentity { identity: identity.clone() }),
                Some(why) => kept.push(Kept { what: identity.clone(), why }),
            }
        }
        self.emit(ProgressEvent::Planned { actions: steps.len() });
        Ok(DestroyPlan { identity, steps, kept, counts: CallCounts::default() })
    }

    /// The identity's role assignments under its home scope that this teardown does not delete, in words.
    async fn foreign_assignments(
        &self,
        found: IdentityInfo,
        steps: &[DestroyStep],
    ) -> Result<Option<String>, ProvisionError> {
        let (Some(access), Some(scope), Some(principal)) =
            (self.access.as_deref(), self.identity.home_scope(), found.principal_id)
        else {
            return Ok(None);
        };
        let deleted: HashSet<String> = steps
            .iter()
            .filter_map(|s| match s {
                DestroyStep::DeleteRoleAssignment { id, .. } => Some(id.to_ascii_lowercase()),
                _ => None,
            })
            .collect();
        let others: Vec<String> = access
            .role_assignments(&scope, principal)
            .await
            .map_err(ProvisionError::identity)?
            .into_iter()
            .filter(|a| !deleted.contains(&a.id.to_ascii_lowercase()))
            .map(|a| a.scope)
            .collect();
        Ok((!others.is_empty()).then(|| others.join(", ")))
    }

    /// Carries out a teardown plan in its order; a step whose target is already gone is success. After a failed
    /// step, the identity is not deleted.
    pub async fn destroy(&self, plan: &DestroyPlan) -> DestroyReport {
        self.counted(async { DestroyReport { steps: self.destroy_in_call(plan).await, counts: CallCounts::default() } })
            .await
    }

    async fn destroy_in_call(&self, plan: &DestroyPlan) -> Vec<ActionResult> {
        let mut results = Vec::with_capacity(plan.steps.len());
        let mut failed = false;
        for (i, step) in plan.steps.iter().enumerate() {
            let description = step.to_string();
            if failed && matches!(step, DestroyStep::DeleteIdentity { .. }) {
                results.push(ActionResult {
                    description,
                    status: ActionStatus::Skipped { reason: "an earlier step failed; the identity stays".into() },
                });
                continue;
            }
            self.emit(ProgressEvent::Started { action: i, description: description.clone() });
            let outcome = match step {
                DestroyStep::Unbind { org_url, kind, component, .. } => match self.connector.connect(org_url) {
                    Ok(dv) => dv.unbind(*kind, *component).await,
                    Err(e) => Err(e),
                },
                DestroyStep::DeleteRow { org_url, id } => match self.connector.connect(org_url) {
                    Ok(dv) => match dv.delete_managed_identity(*id).await {
                        Err(e) if e.is_not_found() => Ok(()),
                        other => other,
                    },
                    Err(e) => Err(e),
                },
                DestroyStep::DeleteFic { name, .. } => match self.identity.delete_fic(name).await {
                    Err(e) if e.is_not_found() => Ok(()),
                    other => other,
                },
                DestroyStep::DeleteRoleAssignment { id, .. } => match self.access.as_deref() {
                    Some(access) => access.delete_role_assignment(id).await,
                    None => Err(ApiError::invalid("grant", "no ARM client (Provisioner::with_access)")),
                },
                DestroyStep::RemoveSecurityRole { org_url, user, role_id, .. } => {
                    match self.connector.connect(org_url) {
                        Ok(dv) => {
                            let mut batch = crate::clients::Batch::new();
                            let slot =
                                batch.add(crate::clients::dataverse::requests::remove_security_role(*user, *role_id));
                            match dv.send_each(&batch).await.take(slot) {
                                Err(e) if e.is_not_found() => Ok(()),
                                other => other,
                            }
                        }
                        Err(e) => Err(e),
                    }
                }
                DestroyStep::RemoveApiPermission { principal, assignment, .. } => match self.directory.as_deref() {
                    Some(directory) => directory.remove_app_role_assignment(*principal, assignment).await,
                    None => Err(ApiError::invalid(
                        "API permission",
                        "no Microsoft Graph client (Provisioner::with_directory)",
                    )),
                },
                DestroyStep::DeleteIdentity { .. } => self.identity.delete().await,
            };
            failed |= outcome.is_err();
            results.push(ActionResult { description, status: self.finish(i, outcome.map(|()| ActionStatus::Done)) });
        }
        results
    }
}
