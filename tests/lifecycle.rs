//! Day two: certificates read from the platform's registered bytes, a rotation walked from the old certificate to
//! the new one with a plug-in run before, during and after, expiry warnings, the version 1 to 2 upgrade and its
//! revert. The signed artifacts are tests/fixtures/make-signed.sh's (author) and make-renewed.sh's (renewed).
#![cfg(feature = "testkit")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dataverse_mi::cert::Certificate;
use dataverse_mi::http::RetryOptions;
use dataverse_mi::provision::{
    Action, CertificateSpec, ComponentStatus, ComponentWarning, EnvironmentSpec, IdentitySpec, PlanNote,
    ProvisionError, ProvisionOptions, ProvisionSpec, Provisioner, RegisteredSignature, SubjectSource, VerifyOptions,
};
use dataverse_mi::subject::SubjectFormatVersion;
use dataverse_mi::testkit::{FakeOptions, FakePlatform};
use uuid::Uuid;

const TENANT: Uuid = Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47);
const APP: Uuid = Uuid::from_u128(0x0b5a7d2c_6f4e_4d3a_9c1b_2a8e7f6d5c4b);
const HOST: &str = "contoso.crm.dynamics.com";

fn signed(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/signed/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn signed_path(name: &str) -> String {
    format!("{}/tests/fixtures/signed/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn cert(name: &str) -> Certificate {
    Certificate::from_der(&signed(name)).unwrap()
}

fn file(name: &str) -> CertificateSpec {
    CertificateSpec::File { path: signed_path(name).into(), password_env: None }
}

fn spec(env: EnvironmentSpec) -> ProvisionSpec {
    ProvisionSpec::new(IdentitySpec::app_registration(APP), vec![env])
}

fn engine(fake: &FakePlatform, spec: &ProvisionSpec) -> Provisioner {
    let retry = RetryOptions { jitter: 0.0, ..RetryOptions::default() };
    fake.provisioner(spec, 4, retry, ProvisionOptions::default()).unwrap().provisioner
}

fn fake() -> FakePlatform {
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_application(APP, "Contoso plug-ins");
    fake.add_environment_with_id(HOST, TENANT, ENV.into());
    fake
}

const ENV: Uuid = Uuid::from_u128(0x218a3746_69f7_4ed0_b284_4eccd9cc5882);

fn at(y: i32, m: u8, d: u8) -> SystemTime {
    let dt = der::DateTime::new(y as u16, m, d, 0, 0, 0).unwrap();
    UNIX_EPOCH + dt.unix_duration()
}

/// The subject the platform computes for a component from its signer: the one a FIC must carry.
fn subject_for(_fake: &FakePlatform, certificate: &Certificate) -> String {
    let env: dataverse_mi::environment::EnvironmentId = ENV.into();
    let cloud = dataverse_mi::cloud::CloudProfile::from(dataverse_mi::cloud::Cloud::Public);
    let binding = dataverse_mi::subject::CertificateBinding::for_certificate(
        certificate,
        SubjectFormatVersion::V2,
        dataverse_mi::subject::CertificateKind::Auto,
    )
    .unwrap();
    dataverse_mi::subject::SubjectIdentifier::new(&cloud, TENANT, env, binding).unwrap().to_string()
}

#[tokio::test(start_paused = true)]
async fn the_registered_signature_is_the_default_certificate() {
    let fake = fake();
    let assembly = fake.add_registered_assembly(HOST, "Contoso.Plugins", &signed("signed.dll"));
    let package = fake.add_registered_package(HOST, "contoso_Integrations", &signed("renewed.nupkg"));
    // No certificate in the spec: the registered signatures decide.
    let spec = ProvisionSpec::from_toml(&format!(
        r#"
        [identity]
        kind = "app-registration"
        app_id = "{APP}"
        [[environments]]
        org_url = "https://{HOST}"
        plugin_assemblies = ["Contoso.Plugins"]
        plugin_packages = ["contoso_Integrations"]
        "#
    ))
    .unwrap();
    assert!(spec.environments[0].certificate.is_registered());
    let engine = engine(&fake, &spec);
    fake.clear_log();
    let plan = engine.plan(&spec).await.unwrap();
    // One content read per component, selecting that column alone.
    let reads: Vec<_> =
        fake.requests().into_iter().filter(|r| r.path_and_query.contains("%24select=content")).collect();
    assert_eq!(reads.len(), 2, "{reads:?}");
    let e = &plan.environments[0];
    // Two components signed with two certificates: a FIC for each, named after its subject.
    let author = subject_for(&fake, &cert("author.cer"));
    let renewed = subject_for(&fake, &cert("renewed.cer"));
    let subjects: Vec<_> = e.subjects.iter().map(|s| s.subject.clone()).collect();
    assert_eq!(subjects, vec![author.clone(), renewed.clone()]);
    assert_eq!(e.subjects[0].source, SubjectSource::Registered { components: vec!["Contoso.Plugins".into()] });
    assert_eq!(e.subjects[1].source, SubjectSource::Registered { components: vec!["contoso_Integrations".into()] });
    assert_eq!(e.subjects[1].certificate.as_ref().unwrap().not_after, "2027-01-15T00:00:00Z");
    // The plan says where each certificate comes from.
    let text = plan.to_string();
    assert!(text.contains("registered: contoso_Integrations (CN=Contoso Plug-in Publisher 2026, O=Contoso, C=US, until 2027-01-15T00:00:00Z)"), "{text}");
    let creates: Vec<_> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::CreateFic { fic, .. } => Some(fic.subject.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(creates, vec![author, renewed]);
    let report = engine.apply(&plan).await;
    assert!(report.is_success(), "{report}");
    assert!(fake.run_plugin(HOST, assembly, "Contoso.Plugins.Account"));
    assert!(fake.run_plugin(HOST, package, "Contoso.Integrations.Sync"));
    // Verify compares the registered signature, the platform's answer and the FICs: all agree.
    let verify = engine.verify_with(&spec, VerifyOptions::default().at(at(2026, 11, 23))).await.unwrap();
    assert!(verify.is_ok(), "{verify}");
    let c = verify.components.iter().find(|c| c.component.id == package).unwrap();
    assert_eq!(c.registered_subject.as_deref(), Some(subject_for(&fake, &cert("renewed.cer")).as_str()));
    assert_eq!(c.days_left, Some(53));
    assert!(c.warnings.is_empty(), "53 days is outside the 30-day window: {:?}", c.warnings);
    // A re-run changes nothing.
    assert!(engine.plan(&spec).await.unwrap().actions.is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_unsigned_registered_component_is_refused_before_any_write() {
    let fake = fake();
    fake.add_registered_assembly(HOST, "Contoso.Plugins", &signed("unsigned.dll"));
    fake.add_plugin_assembly(HOST, "Contoso.Legacy", None);
    // A second environment with its own unsigned plug-in: every environment is named in the one refusal.
    let test_host = "contoso-test.crm.dynamics.com";
    fake.add_environment(test_host, TENANT);
    fake.add_registered_assembly(test_host, "Contoso.Plugins", &signed("unsigned.dll"));
    let mut spec =
        spec(EnvironmentSpec::new(format!("https://{HOST}")).with_assemblies(["Contoso.Plugins", "Contoso.Legacy"]));
    spec.environments.push(EnvironmentSpec::new(format!("https://{test_host}")).with_assemblies(["Contoso.Plugins"]));
    let engine = engine(&fake, &spec);
    fake.clear_log();
    let err = engine.plan(&spec).await.unwrap_err();
    let ProvisionError::UnsignedComponents { components } = &err else { panic!("{err:?}") };
    assert_eq!(components.len(), 3, "all of them, in one error: {err}");
    assert!(err.to_string().contains(test_host), "{err}");
    let text = err.to_string();
    assert!(text.contains("Contoso.Plugins") && text.contains("not signed"), "{text}");
    assert!(text.contains("Contoso.Legacy") && text.contains("no bytes registered"), "{text}");
    assert!(
        text.contains("dataverse-mi sign") && text.contains("nuget sign") && text.contains("register it again"),
        "{text}"
    );
    assert_eq!(fake.writes(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_rotation_from_old_to_new_never_stops_the_plugin() {
    let fake = fake();
    let assembly = fake.add_registered_assembly(HOST, "Contoso.Plugins", &signed("signed.dll"));
    let base = spec(EnvironmentSpec::new(format!("https://{HOST}")).with_assemblies(["Contoso.Plugins"]));
    let engine = engine(&fake, &base);
    let old = subject_for(&fake, &cert("author.cer"));
    let new = subject_for(&fake, &cert("renewed.cer"));
    let fic_subjects = |fake: &FakePlatform| {
        let mut s: Vec<String> = fake.graph_fics(APP).into_iter().map(|f| f.subject).collect();
        s.sort();
        s
    };

    // Before: set up with the registered (old) certificate.
    assert!(engine.apply(&engine.plan(&base).await.unwrap()).await.is_success());
    assert!(fake.run_plugin(HOST, assembly, "Contoso.Plugins.Account"), "before the rotation");
    assert_eq!(fic_subjects(&fake), vec![old.clone()]);

    // Finishing before the new certificate is even there keeps the old FIC and says who still uses it: the
    // component carries the old certificate.
    let too_early = base.finishing_rotation(file("renewed.cer"));
    let plan = engine.plan(&too_early).await.unwrap();
    assert!(!plan.actions.iter().any(|a| matches!(a, Action::DeleteFic { .. })), "{plan}");
    let [PlanNote::FicKept { users, subject, .. }] = &plan.kept_fics()[..] else { panic!("{plan}") };
    assert_eq!(users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["Contoso.Plugins"]);
    assert_eq!(subject, &old);
    assert!(plan.to_string().contains("re-sign and register it"), "{plan}");

    // Step 1: add the new certificate's FIC, keep the old one.
    let rotating = base.adding_certificate(file("renewed.cer"));
    let plan = engine.plan(&rotating).await.unwrap();
    assert_eq!(plan.actions.len(), 1, "{:?}", plan.actions);
    assert!(matches!(&plan.actions[0], Action::CreateFic { fic, .. } if fic.subject == new));
    assert!(engine.apply(&plan).await.is_success());
    let mut both = vec![old.clone(), new.clone()];
    both.sort();
    assert_eq!(fic_subjects(&fake), both);
    assert!(fake.run_plugin(HOST, assembly, "Contoso.Plugins.Account"), "during: still signed with the old one");

    // The plug-in is re-signed and registered again: it works at once, with the new FIC.
    fake.register_content(HOST, assembly, &signed("renewed.dll"));
    assert!(fake.run_plugin(HOST, assembly, "Contoso.Plugins.Account"), "during: re-registered with the new one");
    // Removing the new certificate now would break it: kept.
    let wrong_way = base.finishing_rotation(file("signed.dll"));
    let plan = engine.plan(&wrong_way).await.unwrap();
    assert!(!plan.actions.iter().any(|a| matches!(a, Action::DeleteFic { .. })), "{plan}");
    assert!(matches!(&plan.kept_fics()[..], [PlanNote::FicKept { subject, .. }] if *subject == new), "{plan}");

    // Step 2: finish. Verify first shows every component signed with the new certificate.
    let verify = engine.verify_with(&rotating, VerifyOptions::default().at(at(2026, 11, 23))).await.unwrap();
    assert!(verify.is_ok(), "{verify}");
    assert_eq!(verify.components[0].registered_subject.as_deref(), Some(new.as_str()));
    // The component's own computed subject (its new signature's), not the environment's first certificate's.
    assert_eq!(verify.components[0].computed_subject, new);
    let finish = base.finishing_rotation(file("renewed.cer"));
    let plan = engine.plan(&finish).await.unwrap();
    assert_eq!(plan.actions.len(), 1, "{:?}", plan.actions);
    assert!(matches!(&plan.actions[0], Action::DeleteFic { subject, .. } if *subject == old));
    assert!(engine.apply(&plan).await.is_success());
    assert_eq!(fic_subjects(&fake), vec![new.clone()]);
    assert!(fake.run_plugin(HOST, assembly, "Contoso.Plugins.Account"), "after the rotation");
    // Finishing to the registered signature instead is the same state: nothing to do.
    assert!(engine.plan(&base.finishing_rotation(CertificateSpec::Registered)).await.unwrap().actions.is_empty());
}

#[tokio::test(start_paused = true)]
async fn verify_warns_before_the_signing_certificate_expires_and_fails_after() {
    let fake = fake();
    fake.add_registered_assembly(HOST, "Contoso.Plugins", &signed("renewed.dll"));
    let spec = spec(EnvironmentSpec::new(format!("https://{HOST}")).with_assemblies(["Contoso.Plugins"]));
    let engine = engine(&fake, &spec);
    assert!(engine.apply(&engine.plan(&spec).await.unwrap()).await.is_success());

    // renewed.cer is valid until 2027-01-15T00:00:00Z.
    let on = |y, m, d| VerifyOptions::default().at(at(y, m, d));
    let early = engine.verify_with(&spec, on(2026, 11, 23)).await.unwrap();
    assert!(early.is_ok() && early.components[0].warnings.is_empty(), "{early}");
    assert_eq!(early.components[0].days_left, Some(53));

    let soon = engine.verify_with(&spec, on(2027, 1, 1)).await.unwrap();
    assert!(soon.is_ok(), "a warning is not a failure: {soon}");
    let c = &soon.components[0];
    assert_eq!(c.days_left, Some(14));
    assert_eq!(
        c.warnings,
        vec![ComponentWarning::CertificateExpiresSoon {
            certificate: "CN=Contoso Plug-in Publisher 2026, O=Contoso, C=US".into(),
            not_after: "2027-01-15T00:00:00Z".into(),
            days_left: 14,
        }]
    );
    assert!(soon.to_string().contains("expires in 14 days"), "{soon}");
    // The window is configurable: 7 days says nothing yet.
    let narrow = engine.verify_with(&spec, on(2027, 1, 1).warn_within(Duration::from_secs(7 * 86_400))).await.unwrap();
    assert!(narrow.components[0].warnings.is_empty());
    // JSON carries not_after and the days left, for a scheduled job.
    let json = serde_json::to_value(&soon).unwrap();
    assert_eq!(json["components"][0]["certificate"]["not_after"], "2027-01-15T00:00:00Z");
    assert_eq!(json["components"][0]["days_left"], 14);
    assert_eq!(json["components"][0]["warnings"][0]["warning"], "certificate_expires_soon");

    let expired = engine.verify_with(&spec, on(2027, 1, 16)).await.unwrap();
    assert!(!expired.is_ok());
    assert_eq!(expired.components[0].days_left, Some(-1));
    assert!(
        matches!(&expired.components[0].status, ComponentStatus::CertificateExpired { not_after, .. } if not_after == "2027-01-15T00:00:00Z"),
        "{expired}"
    );
}

#[tokio::test(start_paused = true)]
async fn verify_reports_an_unsigned_registration_and_the_registered_subject_beside_the_spec_certificate() {
    let fake = fake();
    let assembly = fake.add_registered_assembly(HOST, "Contoso.Plugins", &signed("signed.dll"));
    // The spec names a certificate, and the platform has the assembly signed with another: verify sees it.
    let spec = spec(
        EnvironmentSpec::new(format!("https://{HOST}"))
            .with_assemblies(["Contoso.Plugins"])
            .with_certificate(file("renewed.cer")),
    );
    let engine = engine(&fake, &spec);
    assert!(engine.apply(&engine.plan(&spec).await.unwrap()).await.is_success());
    assert!(!fake.run_plugin(HOST, assembly, "Contoso.Plugins.Account"), "the FIC is for the wrong certificate");
    let report = engine.verify(&spec).await.unwrap();
    let c = &report.components[0];
    assert_eq!(c.registered_subject.as_deref(), Some(subject_for(&fake, &cert("author.cer")).as_str()));
    assert!(!report.is_ok(), "{report}");
    assert!(
        c.problems.iter().any(|p| matches!(p, ComponentStatus::MissingFic { subject } if *subject == subject_for(&fake, &cert("author.cer")))
            || matches!(p, ComponentStatus::SubjectMismatch { .. })),
        "{report}"
    );

    // Registered again without a signature: a problem of its own.
    fake.register_content(HOST, assembly, &signed("unsigned.dll"));
    let report = engine.verify(&spec).await.unwrap();
    assert!(
        report.components[0]
            .problems
            .iter()
            .any(|p| matches!(p, ComponentStatus::Unsigned { reason } if reason.contains("not signed"))),
        "{report}"
    );
    assert!(matches!(report.components[0].component.registered, Some(RegisteredSignature::Unsigned { .. })));
}

#[tokio::test(start_paused = true)]
async fn version_1_to_2_upgrade_and_revert_keep_the_plugin_working() {
    let fake = fake();
    let assembly = fake.add_registered_assembly(HOST, "Contoso.Plugins", &signed("signed.dll"));
    let mut v1 = spec(EnvironmentSpec::new(format!("https://{HOST}")).with_assemblies(["Contoso.Plugins"]));
    v1.version = SubjectFormatVersion::V1;
    let engine = engine(&fake, &v1);
    assert!(engine.apply(&engine.plan(&v1).await.unwrap()).await.is_success());
    assert!(fake.run_plugin(HOST, assembly, "A"), "version 1");
    let v1_fics = fake.graph_fics(APP);
    assert_eq!(v1_fics.len(), 1);
    // Version 1 carries the CN values (tests/fixtures/make_signed.py: the CA "Contoso Code Signing CA", the author
    // "Contoso Plug-in Publisher").
    assert!(
        v1_fics[0].subject.ends_with("/i/Contoso Code Signing CA/s/Contoso Plug-in Publisher"),
        "{}",
        v1_fics[0].subject
    );

    // 1. Add the version 2 FIC and switch the row's version (no pruning yet).
    let v2 = v1.at_version(SubjectFormatVersion::V2);
    let plan = engine.plan(&v2).await.unwrap();
    assert!(plan.actions.iter().any(|a| matches!(a, Action::CreateFic { .. })));
    assert!(plan.actions.iter().any(|a| matches!(a, Action::UpdateManagedIdentity { .. })));
    assert!(!plan.actions.iter().any(|a| matches!(a, Action::DeleteFic { .. })));
    assert!(engine.apply(&plan).await.is_success());
    assert!(fake.run_plugin(HOST, assembly, "A"), "version 2, both FICs there");
    // 2. Verify.
    assert!(engine.verify(&v2).await.unwrap().is_ok());
    // Revert is the same step back: the row at version 1 again, its FIC still there.
    let back = v2.at_version(SubjectFormatVersion::V1);
    assert!(engine.apply(&engine.plan(&back).await.unwrap()).await.is_success());
    assert!(fake.run_plugin(HOST, assembly, "A"), "reverted to version 1");
    assert!(engine.apply(&engine.plan(&v2).await.unwrap()).await.is_success());
    // 3. Remove the version 1 FIC.
    let mut done = v2.clone();
    done.prune = true;
    let plan = engine.plan(&done).await.unwrap();
    assert_eq!(plan.actions.len(), 1, "{:?}", plan.actions);
    assert!(matches!(&plan.actions[0], Action::DeleteFic { subject, .. } if *subject == v1_fics[0].subject));
    assert!(engine.apply(&plan).await.is_success());
    assert!(fake.run_plugin(HOST, assembly, "A"), "version 2 alone");
    assert_eq!(fake.graph_fics(APP).len(), 1);
}

#[test]
fn certificates_in_a_spec_file() {
    let spec = ProvisionSpec::from_toml(&format!(
        r#"
        [identity]
        kind = "app-registration"
        app_id = "{APP}"
        [[environments]]
        org_url = "https://{HOST}"
        plugin_assemblies = ["Contoso.Plugins"]
        certificates = ["registered", {{ path = "new.cer" }}]
        "#
    ))
    .unwrap();
    let e = &spec.environments[0];
    assert_eq!(e.certificate_specs().len(), 2);
    assert!(e.certificate_specs()[0].is_registered());
    assert_eq!(e.certificate_specs()[1], CertificateSpec::File { path: "new.cer".into(), password_env: None });
    // Written back the same way.
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["environments"][0]["certificates"][0], "registered");
    assert!(json["environments"][0].get("certificate").is_none());
    let again = ProvisionSpec::from_json(&json.to_string()).unwrap();
    assert_eq!(again.environments, spec.environments);

    // Both keys at once: refused with the fix.
    let both = ProvisionSpec::from_toml(&format!(
        r#"
        [identity]
        kind = "app-registration"
        app_id = "{APP}"
        [[environments]]
        org_url = "https://{HOST}"
        certificate = {{ path = "old.cer" }}
        certificates = [{{ path = "new.cer" }}]
        "#
    ))
    .unwrap_err();
    assert!(both.to_string().contains("certificate and certificates"), "{both}");
    // A word that is not a certificate is refused too.
    let bad = ProvisionSpec::from_toml(&format!(
        r#"
        [identity]
        kind = "app-registration"
        app_id = "{APP}"
        [[environments]]
        org_url = "https://{HOST}"
        certificate = "registred"
        "#
    ));
    assert!(bad.is_err());
}

#[tokio::test(start_paused = true)]
async fn teardown_deletes_only_what_the_spec_made_and_is_idempotent() {
    use dataverse_mi::provision::{DestroyOptions, DestroyStep};
    const TEST: &str = "contoso-test.crm.dynamics.com";
    const VAULT: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso-kv";
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_environment_with_id(HOST, TENANT, ENV.into());
    fake.add_environment(TEST, TENANT);
    let ours = fake.add_registered_assembly(HOST, "Contoso.Plugins", &signed("signed.dll"));
    let theirs = fake.add_registered_assembly(HOST, "Fabrikam.Plugins", &signed("signed.dll"));
    let test_ours = fake.add_registered_assembly(TEST, "Contoso.Plugins", &signed("signed.dll"));
    let mut spec = ProvisionSpec::new(
        IdentitySpec::app_registration_named("Contoso plug-ins", true),
        vec![
            EnvironmentSpec::new(format!("https://{HOST}")).with_assemblies(["Contoso.Plugins"]),
            EnvironmentSpec::new(format!("https://{TEST}")).with_assemblies(["Contoso.Plugins"]),
        ],
    );
    spec.grants.push(dataverse_mi::provision::GrantSpec { role: "Key Vault Secrets User".into(), scope: VAULT.into() });
    let engine = engine(&fake, &spec);
    let applied = engine.apply(&engine.plan(&spec).await.unwrap()).await;
    assert!(applied.is_success(), "{applied}");
    let app = applied.identity.unwrap().client_id;
    // Another spec's component, bound to the same row in the first environment, and a FIC made by hand.
    let row = dataverse_mi::entities::managed_identity_row_id(app, TENANT, ENV);
    fake.seed_binding(HOST, theirs, Some(row));
    fake.seed_graph_fic(
        app,
        dataverse_mi::fic::FederatedIdentityCredential {
            name: "github-actions".into(),
            issuer: "https://token.actions.githubusercontent.com".into(),
            subject: "repo:contoso/plugins:ref:refs/heads/main".into(),
            audiences: vec!["api://AzureADTokenExchange".into()],
            description: None,
        },
    );
    assert_eq!(fake.graph_fics(app).len(), 3);
    assert_eq!(fake.role_assignments().len(), 1);

    fake.clear_log();
    let all = DestroyOptions::default().with_role_assignments(true).with_identity(true);
    let plan = engine.plan_destroy(&spec, all).await.unwrap();
    assert_eq!(fake.writes(), 0, "planning a teardown only reads");
    let text = plan.to_string();
    let kinds: Vec<&str> = plan
        .steps
        .iter()
        .map(|s| match s {
            DestroyStep::Unbind { .. } => "unbind",
            DestroyStep::DeleteRow { .. } => "row",
            DestroyStep::DeleteFic { .. } => "fic",
            DestroyStep::DeleteRoleAssignment { .. } => "grant",
            DestroyStep::DeleteIdentity { .. } => "identity",
            _ => "other",
        })
        .collect();
    // Both components are unbound; only the test environment's row and FIC go (Fabrikam still uses the dev row
    // and presents the dev FIC's subject); the grant stays (Fabrikam's plug-in may rely on it), and so does the
    // identity (it carries the first environment's FIC and a FIC made by hand).
    assert_eq!(kinds, vec!["unbind", "unbind", "row", "fic"], "{text}");
    assert!(text.contains("may rely on it"), "the reason the grant stays: {text}");
    assert!(text.contains("Fabrikam.Plugins"), "the reason names who still uses the row: {text}");
    assert!(text.contains("github-actions"), "the reason names the FIC that keeps the identity: {text}");

    let report = engine.destroy(&plan).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(fake.binding(HOST, ours), None);
    assert_eq!(fake.binding(TEST, test_ours), None);
    assert_eq!(fake.binding(HOST, theirs), Some(row), "another spec's binding is kept");
    assert!(fake.run_plugin(HOST, theirs, "Fabrikam.Plugins.Sync"), "and it still gets tokens");
    assert!(fake.managed_identities(TEST).is_empty());
    assert_eq!(fake.managed_identities(HOST).len(), 1);
    assert_eq!(fake.graph_fics(app).len(), 2);
    assert_eq!(fake.role_assignments().len(), 1, "the grant stays while Fabrikam may rely on it");
    assert_eq!(fake.applications_named("Contoso plug-ins"), vec![app]);

    // Again: nothing left to do.
    let again = engine.plan_destroy(&spec, all).await.unwrap();
    assert!(again.steps.is_empty(), "{again}");

    // Once Fabrikam moved away and the hand-made FIC is gone, the rest goes, the identity last.
    fake.seed_binding(HOST, theirs, None);
    assert!(fake.remove_graph_fic(app, "github-actions"));
    let last = engine.plan_destroy(&spec, all).await.unwrap();
    assert!(matches!(last.steps.last(), Some(DestroyStep::DeleteIdentity { .. })), "{last}");
    assert!(last.steps.iter().any(|s| matches!(s, DestroyStep::DeleteRoleAssignment { .. })), "{last}");
    assert!(engine.destroy(&last).await.is_success());
    assert!(fake.role_assignments().is_empty());
    assert!(fake.applications_named("Contoso plug-ins").is_empty());
    assert!(fake.managed_identities(HOST).is_empty());
    // And a teardown of nothing is nothing.
    assert!(engine.plan_destroy(&spec, all).await.unwrap().steps.is_empty());
}

#[tokio::test(start_paused = true)]
async fn teardown_never_deletes_an_identity_the_spec_did_not_create() {
    use dataverse_mi::provision::{DestroyOptions, DestroyStep};
    let fake = fake();
    fake.add_registered_assembly(HOST, "Contoso.Plugins", &signed("signed.dll"));
    let spec = spec(EnvironmentSpec::new(format!("https://{HOST}")).with_assemblies(["Contoso.Plugins"]));
    let engine = engine(&fake, &spec);
    assert!(engine.apply(&engine.plan(&spec).await.unwrap()).await.is_success());
    let plan = engine.plan_destroy(&spec, DestroyOptions::default().with_identity(true)).await.unwrap();
    assert!(!plan.steps.iter().any(|s| matches!(s, DestroyStep::DeleteIdentity { .. })), "{plan}");
    assert!(plan.kept.iter().any(|k| k.why.contains("does not create it")), "{plan}");
    assert!(engine.destroy(&plan).await.is_success());
    assert!(fake.graph_fics(APP).is_empty());
    assert_eq!(fake.applications_named("Contoso plug-ins").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn discovery_selects_environments_and_components_by_pattern() {
    use dataverse_mi::provision::PlanNote;
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_application(APP, "Contoso plug-ins");
    for host in [
        "contoso-dev.crm.dynamics.com",
        "contoso-test.crm4.dynamics.com",
        "contoso-sandbox.crm.dynamics.com",
        "contoso-old.crm.dynamics.com",
        "contoso-empty.crm.dynamics.com",
        "fabrikam-dev.crm.dynamics.com",
    ] {
        fake.add_environment(host, TENANT);
        if host != "contoso-empty.crm.dynamics.com" {
            fake.add_registered_assembly(host, "Contoso.Plugins", &signed("signed.dll"));
        }
    }
    let extra = fake.add_registered_assembly("contoso-test.crm4.dynamics.com", "contoso.extra", &signed("renewed.dll"));
    fake.add_registered_assembly("contoso-test.crm4.dynamics.com", "Fabrikam.Plugins", &signed("signed.dll"));
    fake.set_discovery("contoso-old.crm.dynamics.com", "Contoso (retired)", true);
    fake.set_discovery("contoso-dev.crm.dynamics.com", "Contoso Development", false);
    let spec = ProvisionSpec::from_toml(&format!(
        r#"
        environments = {{ discover = true, name = "contoso-*", exclude = ["*sandbox*"], plugin_assemblies = ["Contoso.*"] }}
        [identity]
        kind = "app-registration"
        app_id = "{APP}"
        "#
    ))
    .unwrap();
    assert!(spec.environments.is_empty());
    assert_eq!(spec.discover.as_ref().unwrap().name.as_deref(), Some("contoso-*"));
    let engine = engine(&fake, &spec);

    let resolved = engine.resolve(&spec).await.unwrap();
    let urls: Vec<&str> = resolved.environments.iter().map(|e| e.org_url.as_str()).collect();
    // Not the sandbox (excluded), not the disabled one, not fabrikam (name), not the empty one (no component).
    assert_eq!(urls, vec!["https://contoso-dev.crm.dynamics.com", "https://contoso-test.crm4.dynamics.com"]);
    assert!(resolved.environments.iter().all(|e| e.environment_id.is_some()), "discovery gives the ids as a check");

    let plan = engine.plan(&spec).await.unwrap();
    assert_eq!(plan.environments.len(), 2);
    let test = &plan.environments[1];
    // Patterns match case-insensitively, and only the kind's names: contoso.extra yes, Fabrikam.Plugins no.
    let mut names: Vec<&str> = test.components.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    assert_eq!(names, vec!["Contoso.Plugins", "contoso.extra"]);
    // Two signers in the test environment: two FICs there.
    assert_eq!(test.subjects.len(), 2);
    assert!(plan.notes.contains(&PlanNote::NothingToBind { org_url: "https://contoso-empty.crm.dynamics.com".into() }));
    // A stored plan carries the environments discovery found, not the selector.
    let stored = serde_json::to_value(&plan.spec).unwrap();
    assert_eq!(stored["environments"].as_array().map(Vec::len), Some(2));
    assert!(engine.apply(&plan).await.is_success());
    assert!(fake.run_plugin("contoso-test.crm4.dynamics.com", extra, "Contoso.Extra.Step"));
    assert!(engine.plan(&spec).await.unwrap().actions.is_empty(), "a re-run changes nothing");

    // A selector that matches nothing says so.
    let nothing = ProvisionSpec::from_toml(&format!(
        r#"
        environments = {{ discover = true, name = "northwind-*" }}
        [identity]
        kind = "app-registration"
        app_id = "{APP}"
        "#
    ))
    .unwrap();
    let err = engine.plan(&nothing).await.unwrap_err();
    assert!(err.to_string().contains("northwind-*"), "{err}");
}

/// Two FICs per environment while rotating: an identity serving more than 10 environments cannot rotate them all
/// at once (20 FICs at most). The refusal says how, and a chosen few rotate at a time.
#[tokio::test(start_paused = true)]
async fn more_than_ten_environments_rotate_a_few_at_a_time() {
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_application(APP, "Contoso plug-ins");
    let hosts: Vec<String> = (0..11).map(|i| format!("env{i}.crm.dynamics.com")).collect();
    let mut assemblies = Vec::new();
    for h in &hosts {
        fake.add_environment(h, TENANT);
        assemblies.push(fake.add_registered_assembly(h, "Contoso.Plugins", &signed("signed.dll")));
    }
    let base = ProvisionSpec::new(
        IdentitySpec::app_registration(APP),
        hosts
            .iter()
            .map(|h| EnvironmentSpec::new(format!("https://{h}")).with_assemblies(["Contoso.Plugins"]))
            .collect(),
    );
    let engine = engine(&fake, &base);
    assert!(engine.apply(&engine.plan(&base).await.unwrap()).await.is_success());
    assert_eq!(fake.graph_fics(APP).len(), 11);
    let err = engine.plan(&base.adding_certificate(file("renewed.cer"))).await.unwrap_err();
    assert!(err.to_string().contains("22 FICs") && err.to_string().contains("--environment"), "{err}");
    // Five at a time: each batch is added, re-registered and finished before the next.
    for batch in hosts.chunks(5) {
        let urls: Vec<String> = batch.iter().map(|h| format!("https://{h}")).collect();
        let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
        let plan = engine.plan(&base.adding_certificate_in(file("renewed.cer"), &urls)).await.unwrap();
        assert_eq!(plan.actions.iter().filter(|a| matches!(a, Action::CreateFic { .. })).count(), batch.len());
        assert!(engine.apply(&plan).await.is_success());
        for h in batch {
            let i = hosts.iter().position(|x| x == h).unwrap();
            fake.register_content(h, assemblies[i], &signed("renewed.dll"));
        }
        let finish = engine.plan(&base.finishing_rotation_in(file("renewed.cer"), &urls)).await.unwrap();
        assert!(finish.kept_fics().is_empty(), "{finish}");
        assert_eq!(finish.actions.iter().filter(|a| matches!(a, Action::DeleteFic { .. })).count(), batch.len());
        assert!(engine.apply(&finish).await.is_success());
        assert!(fake.graph_fics(APP).len() <= 20);
    }
    assert_eq!(fake.graph_fics(APP).len(), 11);
    for (h, a) in hosts.iter().zip(&assemblies) {
        assert!(fake.run_plugin(h, *a, "Contoso.Plugins.Account"), "{h}");
    }
}

#[tokio::test(start_paused = true)]
async fn plan_warns_of_an_expired_signing_certificate() {
    let fake = fake();
    let path = format!("{}/tests/fixtures/expired.cer", env!("CARGO_MANIFEST_DIR"));
    let expired = Certificate::from_file(&path).unwrap().certificate;
    fake.add_plugin_assembly(HOST, "Contoso.Plugins", Some(expired));
    let spec = spec(
        EnvironmentSpec::new(format!("https://{HOST}"))
            .with_assemblies(["Contoso.Plugins"])
            .with_certificate(CertificateSpec::File { path: path.into(), password_env: None }),
    );
    let engine = engine(&fake, &spec);
    let plan = engine.plan(&spec).await.unwrap();
    assert!(
        plan.notes.iter().any(
            |n| matches!(n, PlanNote::CertificateExpired { not_after, .. } if not_after == "2021-01-01T00:00:00Z")
        ),
        "{plan}"
    );
    assert!(plan.to_string().contains("expired on 2021-01-01T00:00:00Z"), "{plan}");
}
