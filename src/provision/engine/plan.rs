//! Reading the state and planning the changes.

use super::*;

impl Provisioner {
    /// Reads the current state with as few requests as possible and plans the changes. Refuses, before any
    /// write, a plan that needs more than 20 FICs, names a component that does not exist, meets a FIC with the
    /// same name and another subject, names an identity that does not exist (unless the spec asks to create it)
    /// or that two applications share the display name of, or a role with no definition at its scope.
    pub async fn plan(&self, spec: &ProvisionSpec) -> Result<Plan, ProvisionError> {
        self.counted(self.plan_reading(spec, spec.prune)).await
    }

    /// [`plan`](Self::plan), reading every component's registered signature when `read_registered` (verify and
    /// prune need it; `certificate = "registered"` reads it anyway): observe, then decide.
    pub(super) async fn plan_reading(
        &self,
        spec: &ProvisionSpec,
        read_registered: bool,
    ) -> Result<Plan, ProvisionError> {
        let (spec, snapshot, environments) = self.observe_planned(spec, read_registered).await?;
        let plan = super::decide::decide_with(&spec, &snapshot, environments, std::time::SystemTime::now())?;
        self.emit(ProgressEvent::Planned { actions: plan.actions.len() });
        Ok(plan)
    }

    /// What the platform holds for `spec` (its environments resolved when it discovers them), read in as few round
    /// trips as the client stack allows: per environment one read batch (the organization, this identity's rows,
    /// the spec's components), the other rows its components are bound to where there are some, and one more
    /// batch for the platform's own subjects and the registered bytes where they are wanted; then, where a FIC
    /// could be deleted, who presents which subject. Reads only. Returns the resolved spec with the snapshot: plan
    /// is [`decide`](super::decide)`(&spec, &snapshot)`.
    pub async fn observe(&self, spec: &ProvisionSpec) -> Result<(ProvisionSpec, Snapshot), ProvisionError> {
        let (spec, snapshot, _) = self.observe_planned(spec, spec.prune).await?;
        Ok((spec, snapshot))
    }

    /// [`observe`](Self::observe), with the environments already planned from the snapshot (to find where users
    /// are needed; handed on so that they are not planned twice).
    async fn observe_planned(
        &self,
        spec: &ProvisionSpec,
        read_registered: bool,
    ) -> Result<(ProvisionSpec, Snapshot, Vec<EnvironmentPlan>), ProvisionError> {
        spec.validate()?;
        self.check_identity(spec)?;
        let (resolved, skipped) = self.resolve_with_skipped(spec).await?;
        let spec = resolved;
        spec.validate()?;
        if !spec.grants.is_empty() && self.access.is_none() {
            return Err(ProvisionError::Input {
                message: "the spec has grants, and this engine has no ARM client for them (Provisioner::with_access)"
                    .into(),
            });
        }
        // The spec's own certificates are read once, before any request: a wrong path fails at once.
        let bindings = super::decide::spec_bindings(&spec)?;
        let cloud = CloudProfile::from(spec.cloud);
        if !spec.api_permissions.is_empty() && self.directory.is_none() {
            return Err(ProvisionError::NoDirectoryClient);
        }
        let principal_needed = spec.needs_principal();
        let (found, fics) = self.read_identity(principal_needed).await?;
        let application_id = found.map(|f| f.client_id);
        // The futures are made before they are streamed: a stream over a borrowing closure makes the whole plan
        // future not `Send` (rustc's higher-ranked lifetime limitation), and services spawn it.
        let observed: Vec<_> = spec
            .environments
            .iter()
            .map(|env_spec| {
                let what = if read_registered { Observe::Everything } else { Observe::ForPlan };
                self.observe_environment(&spec, env_spec, &cloud, application_id, what)
            })
            .collect();
        let envs = async {
            let results = stream::iter(observed)
                .buffered(self.options.environment_concurrency.max(1))
                .collect::<Vec<Result<EnvironmentSnapshot, ProvisionError>>>()
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
        let (environments, grants, application_users, api_permissions) = futures_util::try_join!(
            envs,
            self.plan_grants(&spec, found),
            self.observe_application_users(&spec, application_id),
            self.observe_api_permissions(&spec, found.and_then(|f| f.principal_id)),
        )?;
        let mut snapshot = Snapshot {
            identity: self.identity.describe(),
            found,
            fics,
            grants,
            application_users,
            api_permissions,
            environments,
            skipped,
        };
        let planned = super::decide::decide_environments(&spec, &snapshot, &bindings)?;
        // Who presents which subject, where a FIC could go (nothing is read when nothing could).
        let needed = super::decide::needs_users_of(&spec, &snapshot, &planned);
        if let Some(application_id) = application_id {
            for i in needed {
                let e = &planned[i];
                let dv = self.connector.connect(&e.org_url).map_err(|err| ProvisionError::api(&e.org_url, err))?;
                let at = super::users::UsersIn {
                    org_url: &e.org_url,
                    application_id,
                    tenant_id: e.tenant_id,
                    environment_id: e.environment_id,
                    spec_row: e.managed_identity_id,
                };
                snapshot.environments[i].users = Some(self.subject_users(dv.as_ref(), &at, &cloud).await?);
            }
        }
        Ok((spec, snapshot, planned))
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

    /// One environment as the platform holds it for the spec ([`observe`](Self::observe)).
    pub(super) async fn observe_environment(
        &self,
        spec: &ProvisionSpec,
        env_spec: &crate::provision::spec::EnvironmentSpec,
        cloud: &CloudProfile,
        application_id: Option<Uuid>,
        what: Observe,
    ) -> Result<EnvironmentSnapshot, ProvisionError> {
        let read_registered = what == Observe::Everything;
        let org = env_spec.org_url.as_str();
        let dv = self.connector.connect(org).map_err(|e| ProvisionError::api(org, e))?;
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
        // Checked here too, before anything else of a wrong environment is read.
        super::decide::check_environment_id(env_spec, environment_id)?;
        let rows = match rows {
            Some(slot) => answers.take(slot).map_err(|e| ProvisionError::api(org, e))?,
            None => Vec::new(),
        };
        let components = self.components_from(dv.as_ref(), &mut answers, component_reads, env_spec).await?;
        let mut snapshot = EnvironmentSnapshot::new(org, environment_id, tenant_id, rows, components);
        // The rows other than ours that the spec's components are bound to, read to name them (only when there
        // are such components: the common path reads nothing more).
        let (_, own_id, _) = super::decide::kept_row(false, application_id, &snapshot);
        let others: Vec<Uuid> =
            snapshot.components.iter().filter_map(|c| c.bound_to).filter(|b| Some(*b) != own_id).collect();
        for other in others {
            if snapshot.other_rows.iter().any(|r| r.id == other) {
                continue;
            }
            match snapshot.rows.iter().find(|r| r.id == other) {
                Some(r) => snapshot.other_rows.push(r.clone()),
                None => match dv.get_managed_identity(other).await {
                    Ok(r) => snapshot.other_rows.push(r),
                    // Named by its id alone then.
                    Err(e) => tracing::debug!(org, row = %other, error = %e, "the other row could not be read"),
                },
            }
        }
        // The platform's own answer, where it can give one that this plan does not change (verify and prune always
        // ask; a plan asks unless told not to, `ProvisionOptions::platform_subjects`), and the registered bytes,
        // asked for as a list (one round trip when batching).
        let (kept, row_id, _) = super::decide::kept_row(spec.adopt, application_id, &snapshot);
        let asking = (self.options.platform_subjects || read_registered) && what != Observe::Rows;
        let read_content = (read_registered || env_spec.uses_registered()) && what != Observe::Rows;
        let mut second = Batch::new();
        let asks: Vec<_> = snapshot
            .components
            .iter()
            .map(|c| {
                (asking && super::decide::platform_can_answer(spec, &kept, row_id, tenant_id, c))
                    .then(|| second.add(requests::component_fic(c.kind, c.id)))
            })
            .collect();
        let contents: Vec<_> = snapshot
            .components
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
            for (c, slot) in snapshot.components.iter_mut().zip(&contents) {
                let Some(slot) = slot else { continue };
                let content = second.take(*slot).map_err(|e| ProvisionError::api(org, e))?;
                c.registered = content.map(|bytes| registered_signature(c.kind, &bytes, &subject_of));
            }
        }
        for (c, slot) in snapshot.components.iter().zip(asks) {
            let Some(slot) = slot else { continue };
            match second.take(slot) {
                Ok(a) => {
                    snapshot.platform_subjects.insert(c.id, a.fic_subject);
                }
                // Not an answer to plan with: the computed subject stands for this component.
                Err(e) => tracing::debug!(org, component = %c.id, error = %e, "GetComponentManagedIdentityFIC failed"),
            }
        }
        Ok(snapshot)
    }

    /// Sends reads the way the options say ([`send_reads`](crate::provision::api::send_reads)).
    pub(super) async fn send_reads(&self, dv: &dyn DataverseApi, reads: &Batch) -> Answers {
        crate::provision::api::send_reads(dv, reads, self.options.batch).await
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

use super::evidence::registered_signature;
use crate::clients::dataverse::requests;
use crate::clients::{Answers, Batch, Slot};
use crate::provision::spec::{is_pattern, name_matches};

/// A component as read, with the package it belongs to (for an assembly inside one).
type Found = (ComponentState, Option<Uuid>);

fn is_guid(s: &str) -> Option<Uuid> {
    crate::guid::parse_guid(s).ok()
}

/// How much of an environment [`Provisioner::observe_environment`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Observe {
    /// The organization, the identity's rows, the components and the other rows they are bound to (destroy).
    Rows,
    /// And the platform's subjects (unless the options say not to) and the registered bytes where the spec uses
    /// them (plan).
    ForPlan,
    /// And always the platform's subjects and every component's registered bytes (verify, prune).
    Everything,
}
