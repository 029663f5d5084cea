//! Observe, then decide, then act: the snapshot of what the platform holds, and the pure function from a spec and
//! a snapshot to the plan. The engine observes ([`Provisioner::observe`]), decides ([`decide`]) and applies; a test
//! or a dry-run tool can decide over a snapshot it made itself.

use super::*;
use crate::entities::ManagedIdentity;
use crate::provision::spec::EnvironmentSpec;
use crate::subject::CertificateBinding;

/// What the platform holds for one environment of a spec: the organization's ids, this identity's rows, the spec's
/// components (with the signature of their registered bytes, where it was read), the other rows they are bound
/// to, the platform's own subjects for the components bound to the row the plan keeps, and, where a FIC could be
/// deleted, who presents which subject.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct EnvironmentSnapshot {
    /// The organization URL, as the spec gives it.
    pub org_url: String,
    /// The environment id the organization reports.
    pub environment_id: EnvironmentId,
    /// The tenant id it reports.
    pub tenant_id: Uuid,
    /// This identity's rows (by application id); empty while the identity does not exist.
    pub rows: Vec<ManagedIdentity>,
    /// The spec's components as found.
    pub components: Vec<ComponentState>,
    /// The rows other than this identity's that the components are bound to, as far as they could be read.
    pub other_rows: Vec<ManagedIdentity>,
    /// The subject the platform presents (`GetComponentManagedIdentityFIC`), by component id, for the components
    /// it was asked about and answered for.
    pub platform_subjects: BTreeMap<Uuid, String>,
    /// Every plug-in bound to a row of the application here, with the subject it presents: read only when a FIC
    /// of this environment could be deleted ([`Snapshot::needs_users`]).
    pub users: Option<Vec<SubjectUser>>,
}

impl EnvironmentSnapshot {
    /// An environment as read: its ids, this identity's rows and the spec's components; nothing else yet.
    pub fn new(
        org_url: impl Into<String>,
        environment_id: EnvironmentId,
        tenant_id: Uuid,
        rows: Vec<ManagedIdentity>,
        components: Vec<ComponentState>,
    ) -> Self {
        EnvironmentSnapshot {
            org_url: org_url.into(),
            environment_id,
            tenant_id,
            rows,
            components,
            other_rows: Vec::new(),
            platform_subjects: BTreeMap::new(),
            users: None,
        }
    }
}

/// What the platform holds for a spec: the identity, its FICs and role assignments, and each environment.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// The identity, described.
    pub identity: String,
    /// The identity as found; `None` when it does not exist (and the spec may create it).
    pub found: Option<IdentityInfo>,
    /// Its FICs.
    pub fics: Vec<FederatedIdentityCredential>,
    /// The spec's role assignments, as found.
    pub grants: Vec<GrantPlan>,
    /// The spec's application users, as found.
    #[serde(default)]
    pub application_users: Vec<AppUserPlan>,
    /// The spec's API permissions, as found.
    #[serde(default)]
    pub api_permissions: Vec<ApiPermissionPlan>,
    /// The spec's environments, in its order.
    pub environments: Vec<EnvironmentSnapshot>,
    /// Discovered organization URLs left out because none of the spec's components is there.
    pub skipped: Vec<String>,
}

impl Snapshot {
    /// A snapshot of an identity and its environments.
    pub fn new(
        identity: impl Into<String>,
        found: Option<IdentityInfo>,
        fics: Vec<FederatedIdentityCredential>,
        environments: Vec<EnvironmentSnapshot>,
    ) -> Self {
        Snapshot {
            identity: identity.into(),
            found,
            fics,
            grants: Vec::new(),
            application_users: Vec::new(),
            api_permissions: Vec::new(),
            environments,
            skipped: Vec::new(),
        }
    }

    /// The environments (by index) where the plan could delete a FIC and who presents its subject is not read
    /// yet: [`decide`] needs their `users`.
    pub fn needs_users(&self, spec: &ProvisionSpec) -> Result<Vec<usize>, ProvisionError> {
        let environments = decide_environments(spec, self, &spec_bindings(spec)?)?;
        Ok(needs_users_of(spec, self, &environments))
    }
}

/// [`Snapshot::needs_users`], the environments already planned.
pub(super) fn needs_users_of(
    spec: &ProvisionSpec,
    snapshot: &Snapshot,
    environments: &[EnvironmentPlan],
) -> Vec<usize> {
    deletion_candidates(spec, environments, &snapshot.fics)
        .into_iter()
        .map(|(i, ..)| i)
        .filter(|i| snapshot.environments.get(*i).is_some_and(|e| e.users.is_none()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The row the plan keeps in an environment: this identity's (the deterministic id, else one of this tenant),
/// or with `adopt` the one row other than its own that the components are bound to, unless that row was made
/// here for another application. Returns the row, its id (the deterministic one when there is none yet) and
/// whether it is adopted.
pub(super) fn kept_row(
    adopt: bool,
    application_id: Option<Uuid>,
    snapshot: &EnvironmentSnapshot,
) -> (Option<ManagedIdentity>, Option<Uuid>, bool) {
    let (tenant_id, environment_id) = (snapshot.tenant_id, snapshot.environment_id);
    let deterministic = application_id.map(|a| managed_identity_row_id(a, tenant_id, environment_id));
    let rows = &snapshot.rows;
    let own = rows
        .iter()
        .find(|r| Some(r.id) == deterministic)
        .or_else(|| rows.iter().find(|r| r.tenant_id == Some(tenant_id)))
        .cloned();
    let id = own.as_ref().map(|r| r.id).or(deterministic);
    if own.is_some() || !adopt || application_id.is_none() {
        return (own, id, false);
    }
    let bound: std::collections::BTreeSet<Uuid> =
        snapshot.components.iter().filter_map(|c| c.bound_to).filter(|b| Some(*b) != id).collect();
    let only = if bound.len() == 1 { bound.first().copied() } else { None };
    let candidate = only.and_then(|b| snapshot.other_rows.iter().find(|r| r.id == b));
    match candidate {
        Some(row)
            if row
                .application_id
                .zip(row.tenant_id)
                .is_none_or(|(a, t)| managed_identity_row_id(a, t, environment_id) != row.id) =>
        {
            (Some(row.clone()), Some(row.id), true)
        }
        _ => (own, id, false),
    }
}

/// Whether plan can use the platform's answer for a component: bound to the row the plan keeps, and that row at
/// the spec's version and tenant (the only answers the plan does not change).
pub(super) fn platform_can_answer(
    spec: &ProvisionSpec,
    kept: &Option<ManagedIdentity>,
    row_id: Option<Uuid>,
    tenant_id: Uuid,
    component: &ComponentState,
) -> bool {
    let settled =
        kept.as_ref().is_some_and(|r| r.version == Some(spec.version.number()) && r.tenant_id == Some(tenant_id));
    settled && row_id.is_some() && component.bound_to == row_id
}

/// The spec's own certificates of one environment (all but `registered`), read and bound at a version: each with
/// its position in the environment's certificates, and the certificate's validity when it was read from a file.
pub(super) type EnvironmentBindings = Vec<(usize, CertificateBinding, Option<SigningCertificate>)>;

/// [`EnvironmentBindings`] of one environment of `spec`: the one place the spec's certificate files are read and
/// bound (plan reads them once, before any request; apply checks a stored plan's FICs against them).
pub(super) fn environment_bindings(
    spec: &ProvisionSpec,
    env_spec: &EnvironmentSpec,
    version: SubjectFormatVersion,
) -> Result<EnvironmentBindings, ProvisionError> {
    let org = env_spec.org_url.as_str();
    let mut out = Vec::new();
    for (index, c) in env_spec.certificate_specs().iter().enumerate().filter(|(_, c)| !c.is_registered()) {
        let certificate = c.certificate(&spec.base_dir).map_err(|e| e.in_environment(org))?;
        let binding = c.binding_of(certificate.as_ref(), version).map_err(|e| e.in_environment(org))?;
        out.push((index, binding, certificate.as_ref().and_then(SigningCertificate::of)));
    }
    Ok(out)
}

/// [`EnvironmentBindings`] of every environment of `spec`, in its order, at its version.
pub(super) fn spec_bindings(spec: &ProvisionSpec) -> Result<Vec<EnvironmentBindings>, ProvisionError> {
    spec.environments.iter().map(|e| environment_bindings(spec, e, spec.version)).collect()
}

/// Refuses an environment whose organization reports another id than the spec gives.
pub(super) fn check_environment_id(env_spec: &EnvironmentSpec, reported: EnvironmentId) -> Result<(), ProvisionError> {
    match env_spec.environment_id.filter(|e| *e != reported) {
        Some(expected) => {
            Err(ProvisionError::EnvironmentMismatch { org_url: env_spec.org_url.clone(), expected, reported })
        }
        None => Ok(()),
    }
}

/// Every environment planned from its snapshot, with the spec's certificates already read ([`spec_bindings`]): the
/// missing and unsigned components of all environments in one error.
pub(super) fn decide_environments(
    spec: &ProvisionSpec,
    snapshot: &Snapshot,
    bindings: &[EnvironmentBindings],
) -> Result<Vec<EnvironmentPlan>, ProvisionError> {
    if spec.environments.len() != snapshot.environments.len() {
        return Err(ProvisionError::Input {
            message: format!(
                "the snapshot has {} environments and the spec {}",
                snapshot.environments.len(),
                spec.environments.len()
            ),
        });
    }
    let cloud = CloudProfile::from(spec.cloud);
    let application_id = snapshot.found.map(|f| f.client_id);
    let mut environments = Vec::new();
    let mut missing = Vec::new();
    let mut unsigned = Vec::new();
    for ((env_spec, env), bindings) in spec.environments.iter().zip(&snapshot.environments).zip(bindings) {
        match decide_environment(spec, env_spec, env, bindings, &cloud, application_id) {
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
}

/// One environment planned from its snapshot: the subjects, the FICs it needs, the row the plan keeps.
fn decide_environment(
    spec: &ProvisionSpec,
    env_spec: &EnvironmentSpec,
    snapshot: &EnvironmentSnapshot,
    bindings: &EnvironmentBindings,
    cloud: &CloudProfile,
    application_id: Option<Uuid>,
) -> Result<EnvironmentPlan, ProvisionError> {
    let org = env_spec.org_url.as_str();
    let (environment_id, tenant_id) = (snapshot.environment_id, snapshot.tenant_id);
    check_environment_id(env_spec, environment_id)?;
    let components = &snapshot.components;
    let (existing_row, managed_identity_id, adopted) = kept_row(spec.adopt, application_id, snapshot);
    let other_rows: Vec<ManagedIdentity> =
        snapshot.other_rows.iter().filter(|r| !adopted || Some(r.id) != managed_identity_id).cloned().collect();
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
        for component in components {
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
    let mut platform_subjects = Vec::new();
    // Platform subjects that are a component's own registered signature's, for a certificate the spec does not
    // name: not a platform quirk to follow, but a component still signed with another certificate (during a
    // rotation, the old one). No FIC is made for them; prune refuses to delete theirs.
    let mut other_certificate = Vec::new();
    let answered = components.iter().filter_map(|c| {
        let answer = snapshot.platform_subjects.get(&c.id)?;
        platform_can_answer(spec, &existing_row, managed_identity_id, tenant_id, c).then_some((c, answer))
    });
    for (c, answer) in answered {
        // Compared with the component's own registered subject when known, else the first computed.
        let registered = c.registered.as_ref().and_then(RegisteredSignature::subject);
        let ours = registered.unwrap_or(&first);
        let known = subjects.iter().any(|s| s.subject == *answer);
        if !known && registered == Some(answer.as_str()) {
            other_certificate.push(PlatformSubject {
                component: c.id,
                name: c.name.clone(),
                subject: answer.clone(),
                difference: None,
            });
            continue;
        }
        platform_subjects.push(PlatformSubject {
            component: c.id,
            name: c.name.clone(),
            difference: (!known).then(|| difference(answer, ours)),
            subject: answer.clone(),
        })
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
        components: components.clone(),
        other_rows,
        adopted,
    })
}

/// The FICs a plan could delete, by environment index, with the reason: with prune, every FIC this spec provably
/// made for one of its environments (named `dataverse-{environment id}-{suffix of its own subject}`) that it no
/// longer wants; always, the version 1 FICs an earlier dataverse-mi made with whole names (no plug-in can present
/// those), replaced by the CN form this plan creates. Whether they go depends on who presents their subjects.
fn deletion_candidates(
    spec: &ProvisionSpec,
    environments: &[EnvironmentPlan],
    existing_fics: &[FederatedIdentityCredential],
) -> Vec<(usize, FederatedIdentityCredential, String)> {
    let wanted: HashSet<(&str, &str)> =
        environments.iter().flat_map(|e| &e.fics).map(|f| (f.issuer.as_str(), f.subject.as_str())).collect();
    let mut candidates = Vec::new();
    for f in existing_fics {
        if wanted.contains(&(f.issuer.as_str(), f.subject.as_str())) {
            continue;
        }
        let Some(i) = environments.iter().position(|e| crate::fic::is_managed(e.environment_id, f)) else {
            continue;
        };
        let e = &environments[i];
        let explained = crate::subject::explain_subject(&f.subject);
        let whole_names = explained.problems.iter().any(|p| p.cause() == crate::subject::Cause::V1WholeName);
        let replacement =
            explained.corrected_subject.filter(|c| whole_names && wanted.contains(&(f.issuer.as_str(), c.as_str())));
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
        candidates.push((i, f.clone(), reason));
    }
    candidates
}

/// The plan for `spec` over `snapshot`, judging certificates' expiry now: [`decide_at`] with the current time.
pub fn decide(spec: &ProvisionSpec, snapshot: &Snapshot) -> Result<Plan, ProvisionError> {
    decide_at(spec, snapshot, std::time::SystemTime::now())
}

/// The plan for `spec` over `snapshot`, as of `now` (for the "certificate expired" notes): a pure function (it reads
/// the spec's certificate files, nothing else). Observing and applying are the engine's; this is the decision
/// between them, the same for a snapshot the engine read ([`Provisioner::observe`]) and one a test made. It refuses
/// what plan refuses (more than 20 FICs, a missing or unsigned component, a FIC with the deterministic name and
/// another subject, an environment in another tenant than the identity's), and needs the `users` of every
/// environment [`Snapshot::needs_users`] names.
pub fn decide_at(
    spec: &ProvisionSpec,
    snapshot: &Snapshot,
    now: std::time::SystemTime,
) -> Result<Plan, ProvisionError> {
    spec.validate()?;
    let environments = decide_environments(spec, snapshot, &spec_bindings(spec)?)?;
    decide_with(spec, snapshot, environments, now)
}

/// [`decide_at`], the environments already planned.
pub(super) fn decide_with(
    spec: &ProvisionSpec,
    snapshot: &Snapshot,
    environments: Vec<EnvironmentPlan>,
    now: std::time::SystemTime,
) -> Result<Plan, ProvisionError> {
    let found = snapshot.found;
    let existing_fics = &snapshot.fics;
    let application_id = found.map(|f| f.client_id);
    // A user-assigned identity says its tenant: every environment must be in it.
    if let Some(identity_tenant) = found.and_then(|f| f.tenant_id) {
        let elsewhere: Vec<(String, Uuid)> = environments
            .iter()
            .filter(|e| e.tenant_id != identity_tenant)
            .map(|e| (e.org_url.clone(), e.tenant_id))
            .collect();
        if !elsewhere.is_empty() {
            return Err(ProvisionError::IdentityInOtherTenant {
                identity: snapshot.identity.clone(),
                identity_tenant,
                environments: elsewhere,
            });
        }
    }
    let principal_needed = spec.needs_principal();
    let mut actions = Vec::new();
    if found.is_none_or(|f| principal_needed && f.principal_id.is_none()) {
        let identity = match found {
            None => snapshot.identity.clone(),
            Some(_) => format!("the service principal of {}", snapshot.identity),
        };
        actions.push(Action::CreateIdentity { identity });
    }
    for g in snapshot.grants.iter().filter(|g| g.existing.is_none()) {
        actions.push(Action::AssignRole {
            role: g.role.clone(),
            scope: g.scope.clone(),
            role_definition_id: g.role_definition_id.clone(),
        });
    }
    for u in snapshot.application_users.iter().filter(|u| !u.is_complete()) {
        actions.push(Action::GrantDataverseAccess {
            org_url: u.org_url.clone(),
            user: u.user,
            business_unit: u.business_unit,
            roles: u.missing_roles().into_iter().map(|r| (r.name.clone(), r.role_id)).collect(),
        });
    }
    for p in snapshot.api_permissions.iter().filter(|p| p.existing.is_none()) {
        actions.push(Action::GrantApiPermission {
            api: p.api,
            api_name: p.api_label(),
            resource_id: p.resource_id,
            permission: p.permission.clone(),
            app_role_id: p.app_role_id,
        });
    }
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
    // Before anything is deleted, everyone who presents its subject is found (every plug-in of the environment
    // bound to a row of the application, named by the spec or not): a FIC one of them presents is kept, and the
    // plan says who uses it.
    let mut kept = Vec::new();
    for (i, f, reason) in deletion_candidates(spec, &environments, existing_fics) {
        let e = &environments[i];
        let users = match snapshot.environments.get(i).and_then(|s| s.users.as_deref()) {
            Some(users) => users,
            // Not read: nobody is known not to present it. With no identity yet, there is nobody.
            None if application_id.is_none() => &[],
            None => {
                return Err(ProvisionError::Input {
                    message: format!(
                        "{}: the snapshot does not say who presents the subjects there (Snapshot::needs_users)",
                        e.org_url
                    ),
                });
            }
        };
        let using = super::evidence::presenting(users, &f.subject);
        if using.is_empty() {
            actions.push(Action::DeleteFic { name: f.name.clone(), subject: f.subject.clone(), reason });
        } else {
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
                    ..NewManagedIdentity::for_plugins(application_id, env.tenant_id, env.environment_id, spec.version)
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
                    version: (row.version != Some(spec.version.number()) && ahead.is_none()).then_some(spec.version),
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
        .flat_map(|e| plan_notes(e, now))
        .chain(kept)
        .chain(snapshot.skipped.iter().map(|org_url| PlanNote::NothingToBind { org_url: org_url.clone() }))
        .collect();
    Ok(Plan {
        spec: spec.storable()?,
        spec_dir: spec.base_dir.clone(),
        identity: snapshot.identity.clone(),
        found,
        version: spec.version,
        environments,
        existing_fics: existing_fics.clone(),
        grants: snapshot.grants.clone(),
        application_users: snapshot.application_users.clone(),
        api_permissions: snapshot.api_permissions.clone(),
        actions,
        notes,
        counts: CallCounts::default(),
    })
}

/// The notes an environment's plan carries.
fn plan_notes(e: &EnvironmentPlan, now: std::time::SystemTime) -> Vec<PlanNote> {
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
