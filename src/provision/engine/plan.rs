//! Reading the state and planning the changes.

use super::*;

impl Provisioner {
    /// Reads the current state with as few requests as possible and plans the changes. Refuses, before any
    /// write, a plan that needs more than 20 FICs, names a component that does not exist, meets a FIC with the
    /// same name and another subject, names an identity that does not exist (unless the spec asks to create it)
    /// or that two applications share the display name of, or a role with no definition at its scope.
    pub async fn plan(&self, spec: &ProvisionSpec) -> Result<Plan, ProvisionError> {
        spec.validate()?;
        if !spec.grants.is_empty() && self.access.is_none() {
            return Err(ProvisionError::Input {
                message: "the spec has grants, and this engine has no ARM client for them (Provisioner::with_access)"
                    .into(),
            });
        }
        let cloud = CloudProfile::from(spec.cloud);
        let principal_needed = !spec.grants.is_empty();
        let (found, existing_fics) = self.read_identity(principal_needed).await?;
        let application_id = found.map(|f| f.client_id);
        // The futures are made before they are streamed: a stream over a borrowing closure makes the whole plan
        // future not `Send` (rustc's higher-ranked lifetime limitation), and services spawn it.
        let planned: Vec<_> = spec
            .environments
            .iter()
            .map(|env_spec| self.plan_environment(spec, env_spec, &cloud, application_id))
            .collect();
        let envs = async {
            let results = stream::iter(planned)
                .buffered(self.options.environment_concurrency.max(1))
                .collect::<Vec<Result<EnvironmentPlan, ProvisionError>>>()
                .await;
            // Every environment's missing components in one error; any other error as it is.
            let mut environments = Vec::new();
            let mut missing = Vec::new();
            for result in results {
                match result {
                    Ok(e) => environments.push(e),
                    Err(ProvisionError::ComponentsNotFound { missing: m }) => missing.extend(m),
                    Err(e) => return Err(e),
                }
            }
            if missing.is_empty() { Ok(environments) } else { Err(ProvisionError::ComponentsNotFound { missing }) }
        };
        let (environments, grants) = futures_util::try_join!(envs, self.plan_grants(spec, found))?;

        let mut actions = Vec::new();
        if found.is_none_or(|f| principal_needed && f.principal_id.is_none()) {
            let identity = match found {
                None => self.identity.describe(),
                Some(_) => format!("the service principal of {}", self.identity.describe()),
            };
            actions.push(Action::CreateIdentity { identity });
        }
        for g in grants.iter().filter(|g| g.existing.is_none()) {
            actions.push(Action::AssignRole {
                role: g.role.clone(),
                scope: g.scope.clone(),
                role_definition_id: g.role_definition_id.clone(),
            });
        }
        let wanted: HashSet<(&str, &str)> =
            environments.iter().flat_map(|e| &e.fics).map(|f| (f.issuer.as_str(), f.subject.as_str())).collect();
        for (i, env) in environments.iter().enumerate() {
            for fic in &env.fics {
                let matching = existing_fics
                    .iter()
                    .any(|f| f.issuer == fic.issuer && f.subject == fic.subject && f.audiences == fic.audiences);
                if matching {
                    continue;
                }
                if let Some(clash) = existing_fics.iter().find(|f| f.name == fic.name) {
                    return Err(ProvisionError::FicConflict {
                        name: clash.name.clone(),
                        existing_subject: clash.subject.clone(),
                        wanted_subject: fic.subject.clone(),
                    });
                }
                actions.push(Action::CreateFic { environment: i, fic: fic.clone() });
            }
        }
        if spec.prune {
            // Prune owns only its own: a FIC whose name this spec makes for one of its own environments
            // (`dataverse-{environment id}-...`), and whose issuer and subject it no longer wants. Another spec's
            // FICs on a shared identity, and FICs made by hand, are never touched.
            for f in &existing_fics {
                let mine =
                    environments.iter().find(|e| f.name.starts_with(&format!("dataverse-{}-", e.environment_id)));
                if let Some(e) = mine
                    && !wanted.contains(&(f.issuer.as_str(), f.subject.as_str()))
                {
                    actions.push(Action::DeleteFic {
                        name: f.name.clone(),
                        subject: f.subject.clone(),
                        reason: format!(
                            "made by this spec for {} ({}), and no component there presents its subject any more",
                            e.org_url, e.environment_id
                        ),
                    });
                }
            }
        }
        let creates = actions.iter().filter(|a| matches!(a, Action::CreateFic { .. })).count();
        let deletes = actions.iter().filter(|a| matches!(a, Action::DeleteFic { .. })).count();
        // Deletes run last, so the peak is existing + creates.
        if existing_fics.len() + creates > MAX_FICS_PER_IDENTITY {
            return Err(ProvisionError::TooManyFics { existing: existing_fics.len(), new: creates, removed: deletes });
        }
        for (i, env) in environments.iter().enumerate() {
            match &env.existing_row {
                None => actions.push(Action::CreateManagedIdentity {
                    environment: i,
                    row: application_id.zip(env.managed_identity_id).map(|(application_id, id)| NewManagedIdentity {
                        id,
                        ..NewManagedIdentity::for_plugins(
                            application_id,
                            env.tenant_id,
                            env.environment_id,
                            spec.version,
                        )
                    }),
                }),
                Some(row) => {
                    let update = ManagedIdentityUpdate {
                        version: (row.version != Some(spec.version.number())).then_some(spec.version),
                        tenant_id: (row.tenant_id != Some(env.tenant_id)).then_some(env.tenant_id),
                        application_id: application_id.filter(|a| row.application_id != Some(*a)),
                        name: None,
                    };
                    if update != ManagedIdentityUpdate::default() {
                        actions.push(Action::UpdateManagedIdentity { environment: i, id: row.id, update });
                    }
                }
            }
            for c in &env.components {
                if env.managed_identity_id.is_none() || c.bound_to != env.managed_identity_id {
                    actions.push(Action::Bind {
                        environment: i,
                        component: c.clone(),
                        managed_identity: env.managed_identity_id,
                    });
                }
            }
        }
        let notes = environments.iter().flat_map(plan_notes).collect();
        let plan = Plan {
            spec: spec.storable()?,
            spec_dir: spec.base_dir.clone(),
            identity: self.identity.describe(),
            found,
            version: spec.version,
            environments,
            existing_fics,
            grants,
            actions,
            notes,
        };
        self.emit(ProgressEvent::Planned { actions: plan.actions.len() });
        Ok(plan)
    }

    /// The identity and its FICs, read at once where the identity's id is known beforehand.
    async fn read_identity(
        &self,
        principal_needed: bool,
    ) -> Result<(Option<IdentityInfo>, Vec<FederatedIdentityCredential>), ProvisionError> {
        let (found, fics) = futures_util::join!(self.identity.lookup(principal_needed), self.identity.list_fics());
        let missing = || {
            if self.identity.may_create() {
                Ok((None, Vec::new()))
            } else {
                Err(ProvisionError::IdentityNotFound { identity: self.identity.describe() })
            }
        };
        let Some(found) = found.map_err(ProvisionError::identity)? else { return missing() };
        let fics = match fics {
            Ok(fics) => fics,
            // A lookup that read nothing (an app registration given by id) learns here that it is gone.
            Err(e) if e.is_not_found() => return missing(),
            // The identity's id was learned by the lookup (an app registration found by name): read again.
            Err(ApiError::InvalidInput { .. }) => self.identity.list_fics().await.map_err(ProvisionError::identity)?,
            Err(e) => return Err(ProvisionError::identity(e)),
        };
        Ok((Some(found), fics))
    }

    /// Each grant's role definition, and whether the identity's principal has it at the scope already.
    async fn plan_grants(
        &self,
        spec: &ProvisionSpec,
        found: Option<IdentityInfo>,
    ) -> Result<Vec<GrantPlan>, ProvisionError> {
        let Some(access) = self.access.as_deref() else { return Ok(Vec::new()) };
        let principal = found.and_then(|f| f.principal_id);
        let plans = spec.grants.iter().map(|g| async move {
            let (definition, assignments) = futures_util::join!(access.role_definition_id(&g.scope, &g.role), async {
                match principal {
                    Some(p) => access.role_assignments(&g.scope, p).await,
                    None => Ok(Vec::new()),
                }
            });
            let role_definition_id = definition
                .map_err(ProvisionError::identity)?
                .ok_or_else(|| ProvisionError::RoleNotFound { role: g.role.clone(), scope: g.scope.clone() })?;
            let existing = assignments
                .map_err(ProvisionError::identity)?
                .into_iter()
                .find(|a| a.grants(&g.scope, &role_definition_id))
                .map(|a| a.id);
            Ok(GrantPlan { role: g.role.clone(), scope: g.scope.clone(), role_definition_id, existing })
        });
        futures_util::future::try_join_all(plans).await
    }

    async fn plan_environment(
        &self,
        spec: &ProvisionSpec,
        env_spec: &crate::provision::spec::EnvironmentSpec,
        cloud: &CloudProfile,
        application_id: Option<Uuid>,
    ) -> Result<EnvironmentPlan, ProvisionError> {
        let org = env_spec.org_url.as_str();
        let dv = self.connector.connect(org).map_err(|e| ProvisionError::api(org, e))?;
        let binding = env_spec.certificate.binding(spec.version, &spec.base_dir).map_err(|e| e.in_environment(org))?;
        let detail = dv.retrieve_current_organization().await.map_err(|e| ProvisionError::api(org, e))?;
        let (Some(environment_id), Some(tenant_id)) = (detail.environment_id, detail.tenant_id) else {
            return Err(ProvisionError::Input {
                message: format!("{org} did not report its environment and tenant ids"),
            });
        };
        if let Some(expected) = env_spec.environment_id.filter(|e| *e != environment_id) {
            return Err(ProvisionError::EnvironmentMismatch {
                org_url: org.to_owned(),
                expected,
                reported: environment_id,
            });
        }
        let subject = SubjectIdentifier::new(cloud, tenant_id, environment_id, binding)?;
        let fic = FederatedIdentityCredential::for_subject(cloud, &subject);
        // An identity still to be created has no rows yet, and its rows' id is known once it exists.
        let deterministic = application_id.map(|a| managed_identity_row_id(a, tenant_id, environment_id));
        let rows = async {
            match application_id {
                Some(a) => dv
                    .list_managed_identities(&format!("applicationid eq {a}"))
                    .await
                    .map_err(|e| ProvisionError::api(org, e)),
                None => Ok(Vec::new()),
            }
        };
        let (rows, components) = futures_util::try_join!(rows, self.read_components(dv.as_ref(), env_spec))?;
        let existing_row = rows
            .iter()
            .find(|r| Some(r.id) == deterministic)
            .or_else(|| rows.iter().find(|r| r.tenant_id == Some(tenant_id)))
            .cloned();
        let managed_identity_id = existing_row.as_ref().map(|r| r.id).or(deterministic);
        // The platform's own answer, where it can give one that this plan does not change: the component bound to
        // the row the plan keeps, and the row at the spec's version and tenant.
        let row_settled = existing_row
            .as_ref()
            .is_some_and(|r| r.version == Some(spec.version.number()) && r.tenant_id == Some(tenant_id));
        let subject_text = subject.to_string();
        let asks: Vec<_> = components
            .iter()
            .filter(|c| row_settled && managed_identity_id.is_some() && c.bound_to == managed_identity_id)
            .map(|c| {
                let dv = dv.clone();
                async move { (c, dv.component_fic(c.kind, c.id).await) }
            })
            .collect();
        let answered = stream::iter(asks).buffered(8).collect::<Vec<_>>().await;
        let mut platform_subjects = Vec::new();
        for (c, answer) in answered {
            match answer {
                Ok(a) => platform_subjects.push(PlatformSubject {
                    component: c.id,
                    name: c.name.clone(),
                    difference: (a.fic_subject != subject_text).then(|| difference(&a.fic_subject, &subject_text)),
                    subject: a.fic_subject,
                }),
                // Not an answer to plan with: the computed subject stands for this component.
                Err(e) => tracing::debug!(org, component = %c.id, error = %e, "GetComponentManagedIdentityFIC failed"),
            }
        }
        // The computed subject's FIC, unless the platform answered otherwise for every component.
        let differing = platform_subjects.iter().filter(|p| p.difference.is_some()).count();
        let mut fics = Vec::new();
        if components.is_empty() || differing < components.len() {
            fics.push(fic.clone());
        }
        for p in platform_subjects.iter().filter(|p| p.difference.is_some()) {
            if !fics.iter().any(|f| f.subject == p.subject) {
                fics.push(FederatedIdentityCredential {
                    name: crate::fic::default_name(environment_id, &p.subject),
                    subject: p.subject.clone(),
                    ..fic.clone()
                });
            }
        }
        Ok(EnvironmentPlan {
            org_url: env_spec.org_url.clone(),
            environment_id,
            tenant_id,
            subject: subject_text,
            fic,
            platform_subjects,
            fics,
            managed_identity_id,
            existing_row,
            components,
        })
    }

    async fn read_components(
        &self,
        dv: &dyn DataverseApi,
        env_spec: &crate::provision::spec::EnvironmentSpec,
    ) -> Result<Vec<ComponentState>, ProvisionError> {
        let org = env_spec.org_url.as_str();
        let mut out = Vec::new();
        // Assemblies that belong to a plug-in package, by package: the package is what gets bound.
        let mut packaged: BTreeMap<Uuid, Vec<AssemblyInPackage>> = BTreeMap::new();
        // Every component the environment lacks, reported together.
        let mut missing = Vec::new();
        for (kind, wanted) in [
            (ComponentKind::PluginAssembly, &env_spec.plugin_assemblies),
            (ComponentKind::PluginPackage, &env_spec.plugin_packages),
        ] {
            let names: Vec<&str> = wanted.iter().map(String::as_str).filter(|w| is_guid(w).is_none()).collect();
            let mut found: BTreeMap<String, (ComponentState, Option<Uuid>)> = BTreeMap::new();
            for chunk in names.chunks(NAMES_PER_QUERY) {
                match kind {
                    ComponentKind::PluginPackage => {
                        for p in dv.find_plugin_packages(chunk).await.map_err(|e| ProvisionError::api(org, e))? {
                            let c = ComponentState::package(p);
                            found.insert(c.name.clone(), (c, None));
                        }
                    }
                    _ => {
                        for a in dv.find_plugin_assemblies(chunk).await.map_err(|e| ProvisionError::api(org, e))? {
                            let package = a.package_id;
                            let c = ComponentState::assembly(a);
                            found.insert(c.name.clone(), (c, package));
                        }
                    }
                }
            }
            for w in wanted {
                let read = match is_guid(w) {
                    Some(id) => {
                        let read = match kind {
                            ComponentKind::PluginPackage => {
                                dv.get_plugin_package(id).await.map(|p| (ComponentState::package(p), None))
                            }
                            _ => dv.get_plugin_assembly(id).await.map(|a| {
                                let package = a.package_id;
                                (ComponentState::assembly(a), package)
                            }),
                        };
                        match read {
                            Ok(c) => Some(c),
                            Err(e) if e.is_not_found() => None,
                            Err(e) => return Err(ProvisionError::api(org, e)),
                        }
                    }
                    None => found.get(w).cloned(),
                };
                match read {
                    Some((c, Some(package))) => packaged.entry(package).or_default().push(AssemblyInPackage {
                        id: c.id,
                        name: c.name,
                        bound_to: c.bound_to,
                    }),
                    Some((c, None)) => {
                        if !out.iter().any(|o: &ComponentState| o.id == c.id) {
                            out.push(c);
                        }
                    }
                    None => missing.push(crate::provision::MissingComponent {
                        org_url: org.to_owned(),
                        kind,
                        name: w.clone(),
                    }),
                }
            }
        }
        if !missing.is_empty() {
            return Err(ProvisionError::ComponentsNotFound { missing });
        }
        for (package, assemblies) in packaged {
            let index = match out.iter().position(|c| c.id == package) {
                Some(i) => i,
                None => {
                    let p = dv.get_plugin_package(package).await.map_err(|e| ProvisionError::api(org, e))?;
                    out.push(ComponentState::package(p));
                    out.len() - 1
                }
            };
            out[index].named_assemblies.extend(assemblies);
        }
        Ok(out)
    }
}

fn is_guid(s: &str) -> Option<Uuid> {
    crate::guid::parse_guid(s).ok()
}

/// The notes an environment's plan carries.
fn plan_notes(e: &EnvironmentPlan) -> Vec<PlanNote> {
    let packages =
        e.components.iter().filter(|c| !c.named_assemblies.is_empty()).map(|c| PlanNote::AssemblyInPackage {
            org_url: e.org_url.clone(),
            assemblies: c.named_assemblies.iter().map(|a| a.name.clone()).collect(),
            package: c.name.clone(),
        });
    let subjects = e.platform_subjects.iter().filter_map(|p| {
        Some(PlanNote::PlatformSubjectDiffers {
            org_url: e.org_url.clone(),
            component: p.name.clone(),
            platform: p.subject.clone(),
            computed: e.subject.clone(),
            difference: p.difference.clone()?,
        })
    });
    packages.chain(subjects).collect()
}

/// Which segments of two subjects differ, each with both values and what the diagnosis analyzer makes of it:
/// `environment: platform 'x', computed 'y' (environment_not_canonical)`.
fn difference(server: &str, local: &str) -> String {
    let findings = crate::diagnose::analyze(server, local, &crate::diagnose::DiagnosisInputs::default());
    let show = |v: &Option<String>| v.as_deref().map(|s| format!("'{s}'")).unwrap_or_else(|| "nothing".into());
    let parts: Vec<String> = findings
        .iter()
        .map(|f| {
            let segment = f.segment.map(|s| s.name()).unwrap_or("subject");
            format!("{segment}: platform {}, computed {} ({})", show(&f.expected), show(&f.found), f.cause.id())
        })
        .collect();
    if parts.is_empty() { "formatting".to_owned() } else { parts.join("; ") }
}
