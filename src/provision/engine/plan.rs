//! Reading the state and planning the changes.

use super::*;

impl Provisioner {
    /// Reads the current state with as few requests as possible and plans the changes. Refuses, before any
    /// write, a plan that needs more than 20 FICs, names a component that does not exist, meets a FIC with the
    /// same name and another subject, names an identity that does not exist (unless the spec asks to create it)
    /// or that two applications share the display name of, or a role with no definition at its scope.
    pub async fn plan(&self, spec: &ProvisionSpec) -> Result<Plan, ProvisionError> {
        let (plan, counts) = self.in_call(self.plan_reading(spec, spec.prune)).await;
        plan.map(|plan| Plan { counts, ..plan })
    }

    /// [`plan`](Self::plan), reading every component's registered signature when `read_registered` (verify and
    /// prune need it; `certificate = "registered"` reads it anyway).
    pub(super) async fn plan_reading(
        &self,
        spec: &ProvisionSpec,
        read_registered: bool,
    ) -> Result<Plan, ProvisionError> {
        spec.validate()?;
        self.check_identity(spec)?;
        let (resolved, skipped) = self.resolve_with_skipped(spec).await?;
        let spec = &resolved;
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
            .map(|env_spec| self.plan_environment(spec, env_spec, &cloud, application_id, read_registered))
            .collect();
        let envs = async {
            let results = stream::iter(planned)
                .buffered(self.options.environment_concurrency.max(1))
                .collect::<Vec<Result<EnvironmentPlan, ProvisionError>>>()
                .await;
            // Every environment's missing and unsigned components in one error; any other error as it is.
            let mut environments = Vec::new();
            let mut missing = Vec::new();
            let mut unsigned = Vec::new();
            for result in results {
                match result {
                    Ok(e) => environments.push(e),
                    Err(ProvisionError::ComponentsNotFound { missing: m }) => missing.extend(m),
                    Err(ProvisionError::UnsignedComponents { components }) => unsigned.extend(components),
                    Err(e) => return Err(e),
                }
            }
            if !missing.is_empty() {
                Err(ProvisionError::ComponentsNotFound { missing })
            } else if !unsigned.is_empty() {
                Err(ProvisionError::UnsignedComponents { components: unsigned })
            } else {
                Ok(environments)
            }
        };
        let (environments, grants) = futures_util::try_join!(envs, self.plan_grants(spec, found))?;
        // A user-assigned identity says its tenant: every environment must be in it.
        if let Some(identity_tenant) = found.and_then(|f| f.tenant_id) {
            let elsewhere: Vec<(String, Uuid)> = environments
                .iter()
                .filter(|e| e.tenant_id != identity_tenant)
                .map(|e| (e.org_url.clone(), e.tenant_id))
                .collect();
            if !elsewhere.is_empty() {
                return Err(ProvisionError::IdentityInOtherTenant {
                    identity: self.identity.describe(),
                    identity_tenant,
                    environments: elsewhere,
                });
            }
        }

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
        // What this plan would delete: with prune, every FIC this spec provably made for one of its environments
        // (named `dataverse-{environment id}-{suffix of its own subject}`) that it no longer wants; always, the
        // version 1 FICs an earlier dataverse-mi made with whole names (no plug-in can present those), replaced
        // by the CN form this plan creates.
        let mut candidates: Vec<(usize, &FederatedIdentityCredential, String)> = Vec::new();
        for f in &existing_fics {
            if wanted.contains(&(f.issuer.as_str(), f.subject.as_str())) {
                continue;
            }
            let Some(i) = environments.iter().position(|e| crate::fic::is_managed(e.environment_id, f)) else {
                continue;
            };
            let e = &environments[i];
            let explained = crate::subject::explain_subject(&f.subject);
            let whole_names = explained.problems.iter().any(|p| p.cause() == crate::subject::Cause::V1WholeName);
            let replacement = explained
                .corrected_subject
                .filter(|c| whole_names && wanted.contains(&(f.issuer.as_str(), c.as_str())));
            let reason = match replacement {
                Some(corrected) => format!(
                    "a version 1 FIC made by an earlier dataverse-mi with whole names, which the platform never presents; replaced by {corrected}"
                ),
                None if spec.prune => format!(
                    "made by this spec for {} ({}), and no plug-in there presents its subject any more",
                    e.org_url, e.environment_id
                ),
                None => continue,
            };
            candidates.push((i, f, reason));
        }
        // Before anything is deleted, everyone who presents its subject is found (every plug-in of the
        // environment bound to a row of the application, named by the spec or not): a FIC one of them presents
        // is kept, and the plan says who uses it.
        let mut kept = Vec::new();
        let users = self.users_of(&environments, candidates.iter().map(|(i, ..)| *i), application_id, &cloud).await?;
        for (i, f, reason) in candidates {
            let using = super::users::presenting(&users[i], &f.subject);
            if using.is_empty() {
                actions.push(Action::DeleteFic { name: f.name.clone(), subject: f.subject.clone(), reason });
            } else {
                let e = &environments[i];
                // The plan switches the row's version (up, or down when the spec allows it): its plug-ins present
                // the other version's subject once that is applied.
                let n = spec.version.number();
                let switching = e.existing_row.as_ref().is_some_and(|r| {
                    r.version != Some(n) && (r.version.is_none_or(|v| v < n) || spec.allow_version_downgrade)
                });
                kept.push(PlanNote::FicKept {
                    org_url: e.org_url.clone(),
                    name: f.name.clone(),
                    subject: f.subject.clone(),
                    row_switching: switching && using.iter().all(|u| u.spec_row),
                    users: using,
                });
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
                    // An upgraded row is not switched back unless the spec says so.
                    let ahead = row.version.filter(|v| *v > spec.version.number() && !spec.allow_version_downgrade);
                    if let Some(row_version) = ahead {
                        kept.push(PlanNote::RowVersionAhead {
                            org_url: env.org_url.clone(),
                            row_version,
                            spec_version: spec.version.number(),
                        });
                    }
                    let update = ManagedIdentityUpdate {
                        version: (row.version != Some(spec.version.number()) && ahead.is_none())
                            .then_some(spec.version),
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
                // Bound to a row that is not the spec's own: not taken over unless the spec says so.
                if let Some(other) = c.bound_to.filter(|b| Some(*b) != env.managed_identity_id) {
                    let row = env.other_rows.iter().find(|r| r.id == other);
                    let (org_url, component) = (env.org_url.clone(), c.name.clone());
                    let (application_id, name) = (row.and_then(|r| r.application_id), row.and_then(|r| r.name.clone()));
                    if !spec.take_over {
                        kept.push(PlanNote::BoundElsewhere { org_url, component, row: other, application_id, name });
                        continue;
                    }
                    kept.push(PlanNote::TakenOver { org_url, component, row: other, application_id, name });
                }
                if env.managed_identity_id.is_none() || c.bound_to != env.managed_identity_id {
                    actions.push(Action::Bind {
                        environment: i,
                        component: c.clone(),
                        managed_identity: env.managed_identity_id,
                    });
                }
            }
        }
        let notes = environments
            .iter()
            .flat_map(plan_notes)
            .chain(kept)
            .chain(skipped.into_iter().map(|org_url| PlanNote::NothingToBind { org_url }))
            .collect();
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
            counts: CallCounts::default(),
        };
        self.emit(ProgressEvent::Planned { actions: plan.actions.len() });
        Ok(plan)
    }

    /// The users of every subject in the environments at `indexes` (each read once), by environment index; the
    /// other environments' lists stay empty. Nothing is read when there is nothing to delete.
    async fn users_of(
        &self,
        environments: &[EnvironmentPlan],
        indexes: impl Iterator<Item = usize>,
        application_id: Option<Uuid>,
        cloud: &CloudProfile,
    ) -> Result<Vec<Vec<crate::provision::SubjectUser>>, ProvisionError> {
        let mut users = vec![Vec::new(); environments.len()];
        let Some(application_id) = application_id else { return Ok(users) };
        let mut seen = HashSet::new();
        for i in indexes.filter(|i| seen.insert(*i)) {
            let e = &environments[i];
            let dv = self.connector.connect(&e.org_url).map_err(|err| ProvisionError::api(&e.org_url, err))?;
            let at = super::users::UsersIn {
                org_url: &e.org_url,
                application_id,
                tenant_id: e.tenant_id,
                environment_id: e.environment_id,
                spec_row: e.managed_identity_id,
            };
            users[i] = self.subject_users(dv.as_ref(), &at, cloud).await?;
        }
        Ok(users)
    }

    /// The identity and its FICs, read at once where the identity's id is known beforehand.
    pub(super) async fn read_identity(
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
    pub(super) async fn plan_grants(
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
        read_registered: bool,
    ) -> Result<EnvironmentPlan, ProvisionError> {
        let org = env_spec.org_url.as_str();
        let dv = self.connector.connect(org).map_err(|e| ProvisionError::api(org, e))?;
        // The spec's own certificates are read before any request: a wrong path fails at once.
        let mut bindings = Vec::new();
        for (index, c) in env_spec.certificate_specs().iter().enumerate() {
            if c.is_registered() {
                continue;
            }
            let certificate = c.certificate(&spec.base_dir).map_err(|e| e.in_environment(org))?;
            let binding = c.binding_of(certificate.as_ref(), spec.version).map_err(|e| e.in_environment(org))?;
            bindings.push((index, binding, certificate.as_ref().and_then(SigningCertificate::of)));
        }
        // The environment's reads, asked for as a list: the organization, the rows, the components (one round trip
        // when batching).
        let mut reads = Batch::new();
        let organization = reads.add(requests::current_organization());
        let rows =
            application_id.map(|a| reads.add(requests::managed_identities(Some(&format!("applicationid eq {a}")))));
        let component_reads = Self::component_reads(&mut reads, env_spec);
        let mut answers = self.send_reads(dv.as_ref(), &reads).await;
        let detail = answers.take(organization).map_err(|e| ProvisionError::api(org, e))?;
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
        // An identity still to be created has no rows yet, and its rows' id is known once it exists.
        let deterministic = application_id.map(|a| managed_identity_row_id(a, tenant_id, environment_id));
        let rows = match rows {
            Some(slot) => answers.take(slot).map_err(|e| ProvisionError::api(org, e))?,
            None => Vec::new(),
        };
        let mut components = self.components_from(dv.as_ref(), &mut answers, component_reads, env_spec).await?;
        let mut existing_row = rows
            .iter()
            .find(|r| Some(r.id) == deterministic)
            .or_else(|| rows.iter().find(|r| r.tenant_id == Some(tenant_id)))
            .cloned();
        let mut managed_identity_id = existing_row.as_ref().map(|r| r.id).or(deterministic);
        // The rows other than ours that the spec's components are bound to, read to name them (only when there
        // are such components: the common path reads nothing more).
        let mut other_rows: Vec<crate::entities::ManagedIdentity> = Vec::new();
        for other in components.iter().filter_map(|c| c.bound_to).filter(|b| Some(*b) != managed_identity_id) {
            if other_rows.iter().any(|r| r.id == other) {
                continue;
            }
            match rows.iter().find(|r| r.id == other) {
                Some(r) => other_rows.push(r.clone()),
                None => match dv.get_managed_identity(other).await {
                    Ok(r) => other_rows.push(r),
                    // Named by its id alone then.
                    Err(e) => tracing::debug!(org, row = %other, error = %e, "the other row could not be read"),
                },
            }
        }
        // The row a solution import brought, adopted when the spec says so ([`ProvisionSpec::adopt`]): this identity
        // has no row here, and the spec's components are bound to one other row, which was not made here for
        // another application (its id is not that application's deterministic one: that is another team's row).
        let mut adopted = false;
        if spec.adopt && existing_row.is_none() && application_id.is_some() {
            let bound: std::collections::BTreeSet<Uuid> =
                components.iter().filter_map(|c| c.bound_to).filter(|b| Some(*b) != managed_identity_id).collect();
            let only = if bound.len() == 1 { bound.first().copied() } else { None };
            let candidate = only.and_then(|id| other_rows.iter().position(|r| r.id == id));
            if let Some(i) = candidate {
                let row = &other_rows[i];
                let made_here = row
                    .application_id
                    .zip(row.tenant_id)
                    .is_some_and(|(a, t)| managed_identity_row_id(a, t, environment_id) == row.id);
                if !made_here {
                    let row = other_rows.remove(i);
                    managed_identity_id = Some(row.id);
                    existing_row = Some(row);
                    adopted = true;
                }
            }
        }
        // The platform's own answer, where it can give one that this plan does not change: the component bound to
        // the row the plan keeps, and the row at the spec's version and tenant.
        let row_settled = existing_row
            .as_ref()
            .is_some_and(|r| r.version == Some(spec.version.number()) && r.tenant_id == Some(tenant_id));
        // Verify and prune always ask; a plan asks unless told not to (`ProvisionOptions::platform_subjects`).
        let asking = self.options.platform_subjects || read_registered;
        let ask_platform = |c: &ComponentState| {
            asking && row_settled && managed_identity_id.is_some() && c.bound_to == managed_identity_id
        };
        let read_content = read_registered || env_spec.uses_registered();
        // The platform's subjects and the registered bytes, asked for as a list (one round trip when batching).
        let mut second = Batch::new();
        let asks: Vec<_> = components
            .iter()
            .map(|c| ask_platform(c).then(|| second.add(requests::component_fic(c.kind, c.id))))
            .collect();
        let contents: Vec<_> = components
            .iter()
            .map(|c| read_content.then(|| second.add(requests::registered_content(c.kind, c.id))))
            .collect();
        let mut second =
            if second.is_empty() { Answers::default() } else { self.send_reads(dv.as_ref(), &second).await };
        if read_content {
            let subject_of = |certificate: &crate::cert::Certificate| -> Result<String, String> {
                let binding = crate::subject::CertificateBinding::for_certificate(
                    certificate,
                    spec.version,
                    crate::subject::CertificateKind::Auto,
                )
                .map_err(|e| e.to_string())?;
                SubjectIdentifier::new(cloud, tenant_id, environment_id, binding)
                    .map(|s| s.to_string())
                    .map_err(|e| e.to_string())
            };
            for (c, slot) in components.iter_mut().zip(&contents) {
                let Some(slot) = slot else { continue };
                let content = second.take(*slot).map_err(|e| ProvisionError::api(org, e))?;
                c.registered = content.map(|bytes| registered_signature(c.kind, &bytes, &subject_of));
            }
        }
        let mut subjects: Vec<PlannedSubject> = Vec::new();
        let mut unsigned = Vec::new();
        for (index, c) in env_spec.certificate_specs().iter().enumerate() {
            if !c.is_registered() {
                let Some((_, binding, certificate)) = bindings.iter().find(|(i, ..)| *i == index) else { continue };
                let subject = SubjectIdentifier::new(cloud, tenant_id, environment_id, binding.clone())?.to_string();
                if !subjects.iter().any(|s| s.subject == subject) {
                    subjects.push(PlannedSubject {
                        subject,
                        source: SubjectSource::Spec { index },
                        certificate: certificate.clone(),
                    });
                }
                continue;
            }
            for component in &components {
                match &component.registered {
                    Some(RegisteredSignature::Signed { certificate, subject }) => {
                        match subjects.iter_mut().find(|s| s.subject == *subject) {
                            Some(PlannedSubject { source: SubjectSource::Registered { components }, .. }) => {
                                components.push(component.name.clone());
                            }
                            Some(_) => {}
                            None => subjects.push(PlannedSubject {
                                subject: subject.clone(),
                                source: SubjectSource::Registered { components: vec![component.name.clone()] },
                                certificate: Some(certificate.clone()),
                            }),
                        }
                    }
                    other => {
                        let reason = match other {
                            Some(RegisteredSignature::Unsigned { reason }) => reason.clone(),
                            _ => "the platform has no bytes registered for it (its content is empty)".to_owned(),
                        };
                        if !unsigned.iter().any(|u: &crate::provision::UnsignedComponent| u.name == component.name) {
                            unsigned.push(crate::provision::UnsignedComponent {
                                org_url: org.to_owned(),
                                kind: component.kind,
                                name: component.name.clone(),
                                reason,
                            });
                        }
                    }
                }
            }
        }
        if !unsigned.is_empty() {
            return Err(ProvisionError::UnsignedComponents { components: unsigned });
        }
        let Some(first) = subjects.first().map(|s| s.subject.clone()) else {
            return Err(ProvisionError::Input {
                message: format!(
                    "{org}: the certificate is read from the registered components, and the spec names none there; name a component, or give the certificate"
                ),
            });
        };
        let fic_for = |subject: &str| FederatedIdentityCredential::managed(cloud, tenant_id, environment_id, subject);
        let fic = fic_for(&first);
        let answered: Vec<_> =
            components.iter().zip(asks).filter_map(|(c, slot)| Some((c, second.take(slot?)))).collect();
        let mut platform_subjects = Vec::new();
        // Platform subjects that are a component's own registered signature's, for a certificate the spec does not
        // name: not a platform quirk to follow, but a component still signed with another certificate (during a
        // rotation, the old one). No FIC is made for them; prune refuses to delete theirs.
        let mut other_certificate = Vec::new();
        for (c, answer) in answered {
            match answer {
                Ok(a) => {
                    // Compared with the component's own registered subject when known, else the first computed.
                    let registered = c.registered.as_ref().and_then(RegisteredSignature::subject);
                    let ours = registered.unwrap_or(&first);
                    let known = subjects.iter().any(|s| s.subject == a.fic_subject);
                    if !known && registered == Some(a.fic_subject.as_str()) {
                        other_certificate.push(PlatformSubject {
                            component: c.id,
                            name: c.name.clone(),
                            subject: a.fic_subject,
                            difference: None,
                        });
                        continue;
                    }
                    platform_subjects.push(PlatformSubject {
                        component: c.id,
                        name: c.name.clone(),
                        difference: (!known).then(|| difference(&a.fic_subject, ours)),
                        subject: a.fic_subject,
                    })
                }
                // Not an answer to plan with: the computed subject stands for this component.
                Err(e) => tracing::debug!(org, component = %c.id, error = %e, "GetComponentManagedIdentityFIC failed"),
            }
        }
        // The computed subjects' FICs, unless the platform answered otherwise for every component.
        let differing = platform_subjects.iter().filter(|p| p.difference.is_some()).count();
        let mut fics = Vec::new();
        if components.is_empty() || differing < components.len() {
            fics.extend(subjects.iter().map(|s| fic_for(&s.subject)));
        }
        for p in platform_subjects.iter().filter(|p| p.difference.is_some()) {
            if !fics.iter().any(|f| f.subject == p.subject) {
                fics.push(fic_for(&p.subject));
            }
        }
        platform_subjects.extend(other_certificate);
        Ok(EnvironmentPlan {
            org_url: env_spec.org_url.clone(),
            environment_id,
            tenant_id,
            subject: first,
            fic,
            subjects,
            platform_subjects,
            fics,
            managed_identity_id,
            existing_row,
            components,
            other_rows,
            adopted,
        })
    }

    /// Sends reads (request values) the way the options say: one `$batch` round trip, or each on its own. A batch
    /// that fails as a whole for another reason than throttling (a proxy that refuses `$batch`, an answer that is
    /// not multipart) is sent again one by one, and says so at warn level; a throttled one is not (more requests
    /// would make it worse): its error is every read's.
    pub(super) async fn send_reads(&self, dv: &dyn DataverseApi, reads: &Batch) -> Answers {
        if !self.options.batch {
            return dv.send_each(reads).await;
        }
        let answers = dv.send_batch(reads).await;
        match answers.failed_as_a_whole() {
            Some(e) if !e.is_throttled() => {
                tracing::warn!(error = %e, reads = reads.len(), "the read batch failed as a whole; reading one by one");
                dv.send_each(reads).await
            }
            _ => answers,
        }
    }

    /// Adds to `reads` the requests that find the spec's components of an environment: names by `$filter`
    /// (`NAMES_PER_QUERY` a query), ids one by one, every component of a kind when a name is a pattern.
    pub(super) fn component_reads(
        reads: &mut Batch,
        env_spec: &crate::provision::spec::EnvironmentSpec,
    ) -> ComponentReads {
        let mut slots = ComponentReads::default();
        for (kind, wanted) in [
            (ComponentKind::PluginAssembly, &env_spec.plugin_assemblies),
            (ComponentKind::PluginPackage, &env_spec.plugin_packages),
        ] {
            let names: Vec<&str> =
                wanted.iter().map(String::as_str).filter(|w| is_guid(w).is_none() && !is_pattern(w)).collect();
            for chunk in names.chunks(NAMES_PER_QUERY) {
                match kind {
                    ComponentKind::PluginPackage => {
                        slots.packages_named.push(reads.add(requests::plugin_packages_named(chunk)))
                    }
                    _ => slots.assemblies_named.push(reads.add(requests::plugin_assemblies_named(chunk))),
                }
            }
            for id in wanted.iter().filter_map(|w| is_guid(w)) {
                match kind {
                    ComponentKind::PluginPackage => {
                        slots.packages_by_id.push((id, reads.add(requests::plugin_package(id))))
                    }
                    _ => slots.assemblies_by_id.push((id, reads.add(requests::plugin_assembly(id)))),
                }
            }
            if wanted.iter().any(|w| is_pattern(w)) {
                match kind {
                    ComponentKind::PluginPackage => slots.all_packages = Some(reads.add(requests::plugin_packages())),
                    _ => slots.all_assemblies = Some(reads.add(requests::plugin_assemblies())),
                }
            }
        }
        slots
    }

    /// Reads the spec's components of an environment (one round trip when batching).
    pub(super) async fn read_components(
        &self,
        dv: &dyn DataverseApi,
        env_spec: &crate::provision::spec::EnvironmentSpec,
    ) -> Result<Vec<ComponentState>, ProvisionError> {
        let mut reads = Batch::new();
        let slots = Self::component_reads(&mut reads, env_spec);
        let mut answers = self.send_reads(dv, &reads).await;
        self.components_from(dv, &mut answers, slots, env_spec).await
    }

    /// The spec's components of an environment, from the answers to [`component_reads`](Self::component_reads).
    pub(super) async fn components_from(
        &self,
        dv: &dyn DataverseApi,
        answers: &mut Answers,
        slots: ComponentReads,
        env_spec: &crate::provision::spec::EnvironmentSpec,
    ) -> Result<Vec<ComponentState>, ProvisionError> {
        let org = env_spec.org_url.as_str();
        let failed = |e| ProvisionError::api(org, e);
        let assembly = |a: crate::entities::PluginAssembly| -> Found {
            let package = a.package_id;
            (ComponentState::assembly(a), package)
        };
        let package = |p: crate::entities::PluginPackage| -> Found { (ComponentState::package(p), None) };
        // A component read by id: `None` when it does not exist.
        fn by_id<T>(read: Result<T, ApiError>, found: impl Fn(T) -> Found) -> Result<Option<Found>, ApiError> {
            match read {
                Ok(c) => Ok(Some(found(c))),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e),
            }
        }
        let mut out = Vec::new();
        // Assemblies that belong to a plug-in package, by package: the package is what gets bound.
        let mut packaged: BTreeMap<Uuid, Vec<AssemblyInPackage>> = BTreeMap::new();
        // Every component the environment lacks, reported together.
        let mut missing = Vec::new();
        for (kind, wanted) in [
            (ComponentKind::PluginAssembly, &env_spec.plugin_assemblies),
            (ComponentKind::PluginPackage, &env_spec.plugin_packages),
        ] {
            let patterns: Vec<&str> = wanted.iter().map(String::as_str).filter(|w| is_pattern(w)).collect();
            let mut found: BTreeMap<String, Found> = BTreeMap::new();
            let mut by_ids: BTreeMap<Uuid, Option<Found>> = BTreeMap::new();
            let mut all: Vec<Found> = Vec::new();
            match kind {
                ComponentKind::PluginPackage => {
                    for slot in &slots.packages_named {
                        for p in answers.take(*slot).map_err(failed)? {
                            let c = package(p);
                            found.insert(c.0.name.clone(), c);
                        }
                    }
                    for (id, slot) in &slots.packages_by_id {
                        by_ids.insert(*id, by_id(answers.take(*slot), package).map_err(failed)?);
                    }
                    if let Some(slot) = slots.all_packages {
                        all = answers.take(slot).map_err(failed)?.into_iter().map(package).collect();
                    }
                }
                _ => {
                    for slot in &slots.assemblies_named {
                        for a in answers.take(*slot).map_err(failed)? {
                            let c = assembly(a);
                            found.insert(c.0.name.clone(), c);
                        }
                    }
                    for (id, slot) in &slots.assemblies_by_id {
                        by_ids.insert(*id, by_id(answers.take(*slot), assembly).map_err(failed)?);
                    }
                    if let Some(slot) = slots.all_assemblies {
                        all = answers.take(slot).map_err(failed)?.into_iter().map(assembly).collect();
                    }
                }
            }
            // Names with `*` or `?`: every component of the kind, matched here (a pattern may match nothing).
            let mut reads: Vec<(String, Option<Found>)> = all
                .into_iter()
                .filter(|(c, _)| patterns.iter().any(|p| name_matches(p, &c.name)))
                .map(|c| (c.0.name.clone(), Some(c)))
                .collect();
            for w in wanted.iter().filter(|w| !is_pattern(w)) {
                let read = match is_guid(w) {
                    Some(id) => by_ids.get(&id).cloned().flatten(),
                    None => found.get(w).cloned(),
                };
                reads.push((w.clone(), read));
            }
            for (w, read) in reads {
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
                    None => missing.push(crate::provision::MissingComponent { org_url: org.to_owned(), kind, name: w }),
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

/// Where the answers of [`Provisioner::component_reads`] are.
#[derive(Debug, Default)]
pub(super) struct ComponentReads {
    assemblies_named: Vec<Slot<Vec<crate::entities::PluginAssembly>>>,
    packages_named: Vec<Slot<Vec<crate::entities::PluginPackage>>>,
    assemblies_by_id: Vec<(Uuid, Slot<crate::entities::PluginAssembly>)>,
    packages_by_id: Vec<(Uuid, Slot<crate::entities::PluginPackage>)>,
    all_assemblies: Option<Slot<Vec<crate::entities::PluginAssembly>>>,
    all_packages: Option<Slot<Vec<crate::entities::PluginPackage>>>,
}

/// The signer of a component's registered bytes, and its subject.
pub(super) fn registered_signature(
    kind: ComponentKind,
    bytes: &[u8],
    subject_of: &dyn Fn(&crate::cert::Certificate) -> Result<String, String>,
) -> RegisteredSignature {
    let loaded = match kind {
        ComponentKind::PluginPackage => crate::cert::Certificate::from_signed_package(bytes),
        _ => crate::cert::Certificate::from_signed_assembly(bytes),
    };
    let certificate = match loaded {
        Ok(l) => l.certificate,
        Err(e) => return RegisteredSignature::Unsigned { reason: e.to_string() },
    };
    match (SigningCertificate::of(&certificate), subject_of(&certificate)) {
        (Some(c), Ok(subject)) => RegisteredSignature::Signed { certificate: c, subject },
        (None, _) => {
            RegisteredSignature::Unsigned { reason: "the signing certificate's validity cannot be read".into() }
        }
        (_, Err(reason)) => RegisteredSignature::Unsigned { reason },
    }
}

use crate::clients::dataverse::requests;
use crate::clients::{Answers, Batch, Slot};
use crate::provision::spec::{is_pattern, name_matches};

/// A component as read, with the package it belongs to (for an assembly inside one).
type Found = (ComponentState, Option<Uuid>);

fn is_guid(s: &str) -> Option<Uuid> {
    crate::guid::parse_guid(s).ok()
}

/// The notes an environment's plan carries.
fn plan_notes(e: &EnvironmentPlan) -> Vec<PlanNote> {
    let adopted = e.existing_row.as_ref().filter(|_| e.adopted).map(|r| PlanNote::Adopted {
        org_url: e.org_url.clone(),
        row: r.id,
        name: r.name.clone(),
        application_id: r.application_id,
        tenant_id: r.tenant_id,
    });
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
    let others = e
        .platform_subjects
        .iter()
        .filter(|p| p.difference.is_none() && !e.subjects.iter().any(|s| s.subject == p.subject))
        .map(|p| PlanNote::SignedWithOtherCertificate {
            org_url: e.org_url.clone(),
            component: p.name.clone(),
            subject: p.subject.clone(),
        });
    // A signing certificate past its end: the platform refuses the plug-in's signature whatever the FIC says.
    let now = std::time::SystemTime::now();
    let expired =
        e.subjects.iter().filter_map(|s| s.certificate.as_ref()).filter(|c| c.seconds_left(now) <= 0).map(|c| {
            PlanNote::CertificateExpired {
                org_url: e.org_url.clone(),
                certificate: c.subject.clone(),
                not_after: c.not_after.clone(),
            }
        });
    adopted.into_iter().chain(packages).chain(subjects).chain(others).chain(expired).collect()
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
