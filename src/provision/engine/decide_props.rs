//! Property tests of the pure planning step ([`decide`]): for any spec and any state of the platform, applying the
//! plan and planning again leaves nothing to do (except the FICs a version switch keeps until it is applied, which
//! the plan says), and the plan never touches what the spec does not own.

use proptest::prelude::*;

use super::decide::{EnvironmentSnapshot, Snapshot, decide_at, kept_row};
use super::*;
use crate::cert::Certificate;
use crate::entities::ManagedIdentity;
use crate::provision::spec::{CertificateSpec, EnvironmentSpec, IdentitySpec};
use crate::subject::{CertificateBinding, CertificateKind};

const TENANT: Uuid = Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47);
const APP: Uuid = Uuid::from_u128(0x0b5a7d2c_6f4e_4d3a_9c1b_2a8e7f6d5c4b);
/// Another team's application, with rows it made in the environments.
const OTHER_APP: Uuid = Uuid::from_u128(0xdef);
/// The application of a row a solution import brought, from a source environment in another tenant.
const SOURCE_APP: Uuid = Uuid::from_u128(0xabc);
const SOURCE_TENANT: Uuid = Uuid::from_u128(0x5);

/// A fixed "now" (1 January 2027), so that no run depends on the clock.
fn now() -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_798_761_600)
}

fn cert() -> Certificate {
    static CERT: std::sync::OnceLock<Certificate> = std::sync::OnceLock::new();
    CERT.get_or_init(|| {
        Certificate::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/contoso-plugins.cer"))
            .map(|l| l.certificate)
            .unwrap_or_else(|e| panic!("the example certificate: {e}"))
    })
    .clone()
}

/// The platform as a test holds it: per environment every row (any application's) and the spec's components.
#[derive(Debug, Clone)]
struct Model {
    fics: Vec<FederatedIdentityCredential>,
    environments: Vec<EnvModel>,
}

#[derive(Debug, Clone)]
struct EnvModel {
    org_url: String,
    environment_id: EnvironmentId,
    rows: Vec<ManagedIdentity>,
    components: Vec<ComponentState>,
}

fn row(id: Uuid, application: Uuid, tenant: Option<Uuid>, version: Option<i32>) -> ManagedIdentity {
    let mut r: ManagedIdentity =
        serde_json::from_value(serde_json::json!({ "managedidentityid": id })).unwrap_or_else(|e| panic!("a row: {e}"));
    r.application_id = Some(application);
    r.tenant_id = tenant;
    r.version = version;
    r
}

fn subject_at(environment_id: EnvironmentId, version: SubjectFormatVersion) -> String {
    let binding = CertificateBinding::for_certificate(&cert(), version, CertificateKind::Auto)
        .unwrap_or_else(|e| panic!("binding: {e}"));
    SubjectIdentifier::new(&CloudProfile::from(crate::cloud::Cloud::Public), TENANT, environment_id, binding)
        .unwrap_or_else(|e| panic!("subject: {e}"))
        .to_string()
}

impl Model {
    /// What observe would read: this identity's rows, the components, the other rows they are bound to, and who
    /// presents which subject (every component bound to a row of the application: its row's version's subject).
    fn snapshot(&self, spec: &ProvisionSpec) -> Snapshot {
        let found = Some(IdentityInfo { client_id: APP, principal_id: Some(Uuid::from_u128(0x9)), tenant_id: None });
        let environments = self
            .environments
            .iter()
            .map(|e| {
                let ours: Vec<ManagedIdentity> =
                    e.rows.iter().filter(|r| r.application_id == Some(APP)).cloned().collect();
                let mut s = EnvironmentSnapshot::new(&e.org_url, e.environment_id, TENANT, ours, e.components.clone());
                let (_, own, _) = kept_row(false, Some(APP), &s);
                for b in e.components.iter().filter_map(|c| c.bound_to).filter(|b| Some(*b) != own) {
                    if let Some(r) = e.rows.iter().find(|r| r.id == b)
                        && !s.other_rows.contains(r)
                    {
                        s.other_rows.push(r.clone());
                    }
                }
                let (_, kept, _) = kept_row(spec.adopt, Some(APP), &s);
                let users = e
                    .components
                    .iter()
                    .filter_map(|c| {
                        let r = e.rows.iter().find(|r| Some(r.id) == c.bound_to)?;
                        if r.application_id != Some(APP) || r.tenant_id.is_some_and(|t| t != TENANT) {
                            return None;
                        }
                        let version = r.version.and_then(SubjectFormatVersion::from_number);
                        Some(SubjectUser {
                            org_url: e.org_url.clone(),
                            kind: c.kind,
                            id: c.id,
                            name: c.name.clone(),
                            row: r.id,
                            spec_row: Some(r.id) == kept,
                            subject: version.map(|v| subject_at(e.environment_id, v)),
                            evidence: UserEvidence::Platform,
                        })
                    })
                    .collect();
                s.users = Some(users);
                s
            })
            .collect();
        Snapshot::new("the app registration", found, self.fics.clone(), environments)
    }

    /// The platform after the plan's actions.
    fn apply(&mut self, plan: &Plan) {
        for action in &plan.actions {
            match action {
                Action::CreateFic { fic, .. } => self.fics.push(fic.clone()),
                Action::DeleteFic { name, .. } => self.fics.retain(|f| f.name != *name),
                Action::CreateManagedIdentity { environment, row: Some(new) } => {
                    let version = Some(new.version.number());
                    self.environments[*environment].rows.push(row(
                        new.id,
                        new.application_id,
                        Some(new.tenant_id),
                        version,
                    ));
                }
                Action::UpdateManagedIdentity { environment, id, update } => {
                    let env = &mut self.environments[*environment];
                    if let Some(r) = env.rows.iter_mut().find(|r| r.id == *id) {
                        if let Some(v) = update.version {
                            r.version = Some(v.number());
                        }
                        if let Some(a) = update.application_id {
                            r.application_id = Some(a);
                        }
                        if let Some(t) = update.tenant_id {
                            r.tenant_id = Some(t);
                        }
                    }
                }
                Action::Bind { environment, component, managed_identity } => {
                    let env = &mut self.environments[*environment];
                    if let Some(c) = env.components.iter_mut().find(|c| c.id == component.id) {
                        c.bound_to = *managed_identity;
                    }
                }
                other => panic!("not generated here: {other:?}"),
            }
        }
    }
}

/// Where a component is bound, as generated.
#[derive(Debug, Clone, Copy)]
enum Binding {
    Nothing,
    Ours,
    OtherTeam,
    Imported,
}

#[derive(Debug, Clone)]
struct EnvCase {
    /// Our row: none, or at this version (0 = none given) in this tenant (or none given).
    our_row: Option<(i32, bool)>,
    other_team_row: bool,
    imported_row: bool,
    components: Vec<Binding>,
    /// FICs on the identity for this environment: version 1's, version 2's, a stale one this spec made.
    fic_v1: bool,
    fic_v2: bool,
    fic_stale: bool,
}

fn env_case() -> impl Strategy<Value = EnvCase> {
    let binding =
        prop_oneof![Just(Binding::Nothing), Just(Binding::Ours), Just(Binding::OtherTeam), Just(Binding::Imported)];
    (
        proptest::option::of((0..=2i32, any::<bool>())),
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(binding, 1..4),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(our_row, other_team_row, imported_row, components, fic_v1, fic_v2, fic_stale)| EnvCase {
            our_row,
            other_team_row,
            imported_row,
            components,
            fic_v1,
            fic_v2,
            fic_stale,
        })
}

#[derive(Debug, Clone)]
struct Case {
    version: SubjectFormatVersion,
    take_over: bool,
    adopt: bool,
    prune: bool,
    downgrade: bool,
    foreign_fic: bool,
    environments: Vec<EnvCase>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![Just(SubjectFormatVersion::V1), Just(SubjectFormatVersion::V2)],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(env_case(), 1..4),
    )
        .prop_map(|(version, take_over, adopt, prune, downgrade, foreign_fic, environments)| Case {
            version,
            take_over,
            adopt,
            prune,
            downgrade,
            foreign_fic,
            environments,
        })
}

/// The spec and the platform a case describes.
fn build(case: &Case) -> (ProvisionSpec, Model) {
    let cloud = CloudProfile::from(crate::cloud::Cloud::Public);
    let mut specs = Vec::new();
    let mut fics = Vec::new();
    let mut environments = Vec::new();
    for (e, c) in case.environments.iter().enumerate() {
        let environment_id = EnvironmentId::from(Uuid::from_u128(0xe000 + e as u128));
        let org_url = format!("https://env{e}.crm.dynamics.com");
        let mut rows = Vec::new();
        let ours = managed_identity_row_id(APP, TENANT, environment_id);
        if let Some((version, tenant)) = c.our_row {
            rows.push(row(ours, APP, tenant.then_some(TENANT), (version > 0).then_some(version)));
        }
        let theirs = managed_identity_row_id(OTHER_APP, TENANT, environment_id);
        if c.other_team_row {
            rows.push(row(theirs, OTHER_APP, Some(TENANT), Some(2)));
        }
        let imported = Uuid::from_u128(0x1000 + e as u128);
        if c.imported_row {
            rows.push(row(imported, SOURCE_APP, Some(SOURCE_TENANT), Some(1)));
        }
        let components: Vec<ComponentState> = c
            .components
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let target = match b {
                    Binding::Nothing => None,
                    Binding::Ours => c.our_row.map(|_| ours),
                    Binding::OtherTeam => c.other_team_row.then_some(theirs),
                    Binding::Imported => c.imported_row.then_some(imported),
                };
                ComponentState {
                    kind: ComponentKind::PluginAssembly,
                    id: Uuid::from_u128(0xc000 + (e * 16 + i) as u128),
                    name: format!("Contoso.Plugins{i}"),
                    bound_to: target,
                    named_assemblies: Vec::new(),
                    registered: None,
                }
            })
            .collect();
        let managed = |subject: &str| FederatedIdentityCredential::managed(&cloud, TENANT, environment_id, subject);
        if c.fic_v1 {
            fics.push(managed(&subject_at(environment_id, SubjectFormatVersion::V1)));
        }
        if c.fic_v2 {
            fics.push(managed(&subject_at(environment_id, SubjectFormatVersion::V2)));
        }
        if c.fic_stale {
            let stale = subject_at(environment_id, SubjectFormatVersion::V2).replace("/h/", "/h/0");
            fics.push(managed(&stale[..stale.len() - 1]));
        }
        specs.push(
            EnvironmentSpec::new(&org_url)
                .with_assemblies(components.iter().map(|c| c.name.clone()))
                .with_certificate(CertificateSpec::Loaded { certificate: cert() }),
        );
        environments.push(EnvModel { org_url, environment_id, rows, components });
    }
    if case.foreign_fic {
        fics.push(FederatedIdentityCredential {
            name: "github-actions".into(),
            issuer: "https://token.actions.githubusercontent.com".into(),
            subject: "repo:contoso/plugins:ref:refs/heads/main".into(),
            audiences: vec!["api://AzureADTokenExchange".into()],
            description: None,
        });
    }
    let mut spec = ProvisionSpec::new(IdentitySpec::app_registration(APP), specs);
    spec.version = case.version;
    spec.take_over = case.take_over;
    spec.adopt = case.adopt;
    spec.prune = case.prune;
    spec.allow_version_downgrade = case.downgrade;
    (spec, Model { fics, environments })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Applying the plan and planning again leaves nothing to do, but the deletions of FICs the first plan kept
    /// because the version switch it makes was not applied yet (`FicKept { row_switching: true }`); a third plan
    /// has nothing.
    #[test]
    fn planning_again_after_applying_the_plan_gives_no_action(case in case()) {
        let (spec, mut model) = build(&case);
        let plan = match decide_at(&spec, &model.snapshot(&spec), now()) {
            Ok(plan) => plan,
            Err(ProvisionError::TooManyFics { .. }) => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        };
        model.apply(&plan);
        let again = decide_at(&spec, &model.snapshot(&spec), now()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let switching: Vec<&str> = plan
            .notes
            .iter()
            .filter_map(|n| match n {
                PlanNote::FicKept { name, row_switching: true, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        for a in &again.actions {
            let allowed = matches!(a, Action::DeleteFic { name, .. } if switching.contains(&name.as_str()));
            prop_assert!(allowed, "a second plan has {a:?}\nfirst plan:\n{plan}\nsecond:\n{again}");
        }
        model.apply(&again);
        let third = decide_at(&spec, &model.snapshot(&spec), now()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(third.is_empty(), "a third plan:\n{third}");
    }

    /// The plan touches only what the spec owns: it binds only the spec's components, takes one from another row
    /// only with `take_over`; it updates only the identity's own row, or with `adopt` an imported one, never a
    /// row made in the environment for another application; it deletes only FICs it made for one of the spec's
    /// environments, and none whose subject a plug-in presents.
    #[test]
    fn the_plan_never_touches_what_the_spec_does_not_own(case in case()) {
        let (spec, model) = build(&case);
        let snapshot = model.snapshot(&spec);
        let Ok(plan) = decide_at(&spec, &snapshot, now()) else { return Ok(()) };
        for a in &plan.actions {
            match a {
                Action::Bind { environment, component, managed_identity } => {
                    let e = &model.environments[*environment];
                    prop_assert!(e.components.iter().any(|c| c.id == component.id));
                    let current = e.components.iter().find(|c| c.id == component.id).and_then(|c| c.bound_to);
                    if let Some(current) = current.filter(|c| Some(*c) != *managed_identity) {
                        prop_assert!(spec.take_over, "took {} from {current} without take_over", component.name);
                    }
                }
                Action::UpdateManagedIdentity { environment, id, .. } => {
                    let e = &model.environments[*environment];
                    let Some(r) = e.rows.iter().find(|r| r.id == *id) else {
                        return Err(TestCaseError::fail(format!("updated {id}, which is not a row of the environment")));
                    };
                    if r.application_id != Some(APP) {
                        prop_assert!(spec.adopt, "updated another application's row {id} without adopt");
                        prop_assert!(r.application_id == Some(SOURCE_APP), "adopted another team's row {id}");
                    }
                }
                Action::DeleteFic { name, subject, .. } => {
                    // A FIC made for one of the spec's environments; its subject names that environment, so only
                    // that environment's plug-ins can present it.
                    let f = model.fics.iter().find(|f| f.name == *name);
                    let at = f.and_then(|f| model.environments.iter().position(|e| crate::fic::is_managed(e.environment_id, f)));
                    prop_assert!(at.is_some(), "deleted {name}, which no environment of the spec owns");
                    let users = at.and_then(|i| snapshot.environments[i].users.as_deref()).unwrap_or_default();
                    let presented = users.iter().any(|u| u.subject.as_deref().is_none_or(|s| s == subject));
                    prop_assert!(!presented, "deleted {name}, whose subject a plug-in presents");
                }
                Action::CreateFic { .. } | Action::CreateManagedIdentity { .. } => {}
                other => prop_assert!(false, "not expected here: {other:?}"),
            }
        }
    }
}
