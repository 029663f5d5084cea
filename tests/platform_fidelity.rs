//! What the real platform does that the crate and its fake, written from one reading of the docs, agreed on
//! wrongly: the Default environment, version 1 names, plug-in packages, Graph's upsert, and a platform whose own
//! subject (`GetComponentManagedIdentityFIC`) differs from ours. The fake is told to disagree with us here.
#![cfg(feature = "testkit")]

use dataverse_mi::cert::Certificate;
use dataverse_mi::clients::{AppRef, ClientOptions, ComponentKind, GraphClient, UpsertOutcome};
use dataverse_mi::cloud::Cloud;
use dataverse_mi::entities::managed_identity_row_id;
use dataverse_mi::environment::EnvironmentId;
use dataverse_mi::fic::{FederatedIdentityCredential, validate_name};
use dataverse_mi::guid::{encode_guid, encode_guid_big_endian};
use dataverse_mi::http::RetryOptions;
use dataverse_mi::provision::{
    Action, CertificateSpec, ComponentStatus, EnvironmentSpec, IdentitySpec, PlanNote, ProvisionOptions, ProvisionSpec,
    Provisioner, WatchOptions,
};
use dataverse_mi::subject::{SubjectFormatVersion, explain_subject};
use dataverse_mi::testkit::{FakeOptions, FakePlatform, Presentation};
use uuid::Uuid;

const TENANT: Uuid = Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47);
const APP: Uuid = Uuid::from_u128(0x0b5a7d2c_6f4e_4d3a_9c1b_2a8e7f6d5c4b);
const HOST: &str = "orgdefault.crm.dynamics.com";

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn load(path: &str) -> Certificate {
    Certificate::from_file(path).unwrap().certificate
}

fn quickstart_cert() -> String {
    format!("{}/examples/contoso-plugins.cer", env!("CARGO_MANIFEST_DIR"))
}

fn spec_for(assemblies: &[&str], packages: &[&str], certificate: &str, version: SubjectFormatVersion) -> ProvisionSpec {
    let mut spec = ProvisionSpec::new(
        IdentitySpec::app_registration(APP),
        vec![
            EnvironmentSpec::new(format!("https://{HOST}"))
                .with_assemblies(assemblies.iter().copied())
                .with_packages(packages.iter().copied())
                .with_certificate(CertificateSpec::File { path: certificate.into(), password_env: None }),
        ],
    );
    spec.version = version;
    spec
}

fn engine(fake: &FakePlatform, spec: &ProvisionSpec) -> Provisioner {
    let retry = RetryOptions { jitter: 0.0, ..RetryOptions::default() };
    fake.provisioner(spec, 4, retry, ProvisionOptions::default()).unwrap().provisioner
}

/// A fake with the app registration and the tenant's Default environment.
fn default_environment() -> (FakePlatform, EnvironmentId) {
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_application(APP, "Contoso plug-ins");
    let env = fake.add_default_environment(HOST, TENANT);
    (fake, env)
}

#[tokio::test(start_paused = true)]
async fn the_default_environment_through_plan_apply_verify_and_watch() {
    let (fake, env) = default_environment();
    let assembly = fake.add_plugin_assembly(HOST, "Contoso.Plugins", Some(load(&quickstart_cert())));
    let spec = spec_for(&["Contoso.Plugins"], &[], &quickstart_cert(), SubjectFormatVersion::V2);
    let engine = engine(&fake, &spec);

    let plan = engine.plan(&spec).await.unwrap();
    let e = &plan.environments[0];
    assert_eq!(e.environment_id, env);
    assert_eq!(e.environment_id.to_string(), format!("Default-{TENANT}"));
    assert!(e.subject.contains(&format!("/n/plugin/e/Default-{TENANT}/h/")), "{}", e.subject);
    assert!(e.fic.name.starts_with(&format!("dataverse-Default-{TENANT}-")), "{}", e.fic.name);
    validate_name(&e.fic.name).unwrap();
    assert_eq!(e.managed_identity_id, Some(managed_identity_row_id(APP, TENANT, env)));
    // The Default environment's row id differs from the one of an environment whose id is the tenant's GUID.
    assert_ne!(e.managed_identity_id, Some(managed_identity_row_id(APP, TENANT, TENANT)));
    assert!(plan.to_string().contains(&format!("Default-{TENANT}")), "{plan}");

    let report = engine.apply(&plan).await;
    assert!(report.is_success(), "{report}");
    let verify = engine.verify(&spec).await.unwrap();
    assert!(verify.is_ok(), "{verify}");
    assert!(verify.components[0].server_checked);
    assert_eq!(verify.components[0].platform_subject, None);
    assert!(fake.run_plugin(HOST, assembly, "Contoso.Plugins.KeyVaultReader"));

    // A hand-made FIC with the tenant encoded big-endian replaces ours: watch reads the failure and explains it.
    fake.set_trace_setting(HOST, 1);
    let mut broken = fake.graph_fics(APP).remove(0);
    assert!(fake.remove_graph_fic(APP, &broken.name));
    broken.subject = broken.subject.replace(&encode_guid(TENANT), &encode_guid_big_endian(TENANT));
    broken.name = "hand-made".into();
    fake.seed_graph_fic(APP, broken);
    assert!(!fake.run_plugin(HOST, assembly, "Contoso.Plugins.KeyVaultReader"));
    let watch = engine.watch(&spec, &WatchOptions::since_text("2000-01-01T00:00:00Z").unwrap()).await.unwrap();
    assert_eq!(watch.failures.len(), 1);
    let diagnosis = &watch.failures[0].diagnosis;
    assert_eq!(diagnosis.error.code.as_deref(), Some("AADSTS700213"));
    assert_eq!(diagnosis.findings[0].cause.id(), "tenant_big_endian", "{diagnosis}");
    assert!(
        diagnosis.error.presented_subject.as_deref().is_some_and(|s| s.contains(&format!("/e/Default-{TENANT}/"))),
        "{diagnosis}"
    );

    // The next plan mends it with one FIC; afterwards the plug-in gets its token again.
    let mend = engine.plan(&spec).await.unwrap();
    assert_eq!(mend.actions.len(), 1, "{mend}");
    assert!(engine.apply(&mend).await.is_success());
    assert!(fake.run_plugin(HOST, assembly, "Contoso.Plugins.KeyVaultReader"));
}

#[tokio::test(start_paused = true)]
async fn a_platform_that_writes_the_default_environment_otherwise_wins_and_the_reports_say_so() {
    let (fake, _) = default_environment();
    let assembly = fake.add_plugin_assembly(HOST, "Contoso.Plugins", Some(load(&quickstart_cert())));
    // What the platform writes in /e/ for a Default environment is not documented: here it writes the bare GUID.
    fake.set_presentation(HOST, Presentation::default().with_environment_segment(TENANT.to_string()));
    let spec = spec_for(&["Contoso.Plugins"], &[], &quickstart_cert(), SubjectFormatVersion::V2);
    let engine = engine(&fake, &spec);

    // The first plan cannot ask the platform (nothing is bound yet): it uses the computed subject.
    let first = engine.plan(&spec).await.unwrap();
    assert!(first.notes.is_empty());
    assert!(engine.apply(&first).await.is_success());
    assert!(!fake.run_plugin(HOST, assembly, "Contoso.Plugins.KeyVaultReader"));

    // Verify now meets the platform's own answer, and explains the difference segment by segment.
    let verify = engine.verify(&spec).await.unwrap();
    assert!(!verify.is_ok());
    let c = &verify.components[0];
    let ComponentStatus::SubjectMismatch { server, local, difference } = &c.status else { panic!("{verify}") };
    assert!(server.contains(&format!("/e/{TENANT}/h/")), "{server}");
    assert!(local.contains(&format!("/e/Default-{TENANT}/h/")), "{local}");
    assert_eq!(
        difference,
        &format!("environment: platform '{TENANT}', computed 'Default-{TENANT}' (environment_not_canonical)")
    );
    assert_eq!(c.platform_subject.as_deref(), Some(server.as_str()));
    let text = verify.to_string();
    assert!(text.contains("platform's subject: ") && text.contains("computed subject:"), "{text}");

    // Plan proposes the FIC the platform asks for, and says why; not a second copy of ours.
    let plan = engine.plan(&spec).await.unwrap();
    let created: Vec<&FederatedIdentityCredential> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::CreateFic { fic, .. } => Some(fic),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 1, "{plan}");
    assert_eq!(&created[0].subject, server);
    validate_name(&created[0].name).unwrap();
    assert_eq!(plan.environments[0].fics.len(), 1, "the platform answered for every component: only its FIC");
    assert!(
        matches!(&plan.notes[..], [PlanNote::PlatformSubjectDiffers { platform, .. }] if platform == server),
        "{plan}"
    );
    assert!(plan.to_string().contains("using the platform's"), "{plan}");

    assert!(engine.apply(&plan).await.is_success());
    assert!(fake.run_plugin(HOST, assembly, "Contoso.Plugins.KeyVaultReader"));
    let verify = engine.verify(&spec).await.unwrap();
    assert!(verify.is_ok(), "{verify}");
    // The difference stays visible while it lasts, even when all is well.
    assert_eq!(verify.components[0].platform_subject.as_deref(), Some(server.as_str()));
    assert!(engine.plan(&spec).await.unwrap().actions.is_empty());
}

#[tokio::test(start_paused = true)]
async fn version_1_subjects_carry_the_cn_values_and_whole_name_fics_of_earlier_releases_are_replaced() {
    let (fake, _) = default_environment();
    let leaf = fixture("leaf.cer");
    let assembly = fake.add_plugin_assembly(HOST, "Contoso.Plugins", Some(load(&leaf)));
    let spec = spec_for(&["Contoso.Plugins"], &[], &leaf, SubjectFormatVersion::V1);
    let engine = engine(&fake, &spec);

    // What an earlier dataverse-mi (and Microsoft's migration scripts) made: the whole .NET names, under the
    // deterministic name of that subject. The platform presents the CN values, so no plug-in could use it.
    let whole = format!(
        "/eid1/c/pub/t/{}/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/Default-{TENANT}/i/CN=Contoso Root CA, O=Contoso, C=US/s/CN=Contoso Plug-in Signing, OU=Dataverse, O=Contoso, C=US",
        encode_guid(TENANT)
    );
    let environment: EnvironmentId = format!("Default-{TENANT}").parse().unwrap();
    let old = FederatedIdentityCredential {
        name: dataverse_mi::fic::default_name(environment, &whole),
        issuer: format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
        subject: whole.clone(),
        audiences: vec!["api://AzureADTokenExchange".into()],
        description: None,
    };
    fake.seed_graph_fic(APP, old.clone());

    // Version 1 with an ordinary CA-issued certificate: the issuer's and the subject's CN values, as Microsoft's
    // version 1 page ("from the certificate Common Name") and its published subject
    // (`.../i/Microsoft Code Signing PCA 2011/s/Microsoft Corporation`) show. The CNs are the fixture's
    // (tests/fixtures/make-certs.sh).
    let cn_form = whole.replace(
        "/i/CN=Contoso Root CA, O=Contoso, C=US/s/CN=Contoso Plug-in Signing, OU=Dataverse, O=Contoso, C=US",
        "/i/Contoso Root CA/s/Contoso Plug-in Signing",
    );
    let plan = engine.plan(&spec).await.unwrap();
    assert_eq!(plan.environments[0].subject, cn_form);
    // One apply recovers: the CN form is created, and the whole-name FIC, provably this tool's, is replaced.
    let deleted: Vec<&str> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::DeleteFic { name, reason, .. } => {
                assert!(reason.contains("whole names"), "{reason}");
                Some(name.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(deleted, [old.name.as_str()], "{plan}");
    assert!(engine.apply(&plan).await.is_success());
    assert!(engine.verify(&spec).await.unwrap().is_ok());
    assert!(fake.run_plugin(HOST, assembly, "Contoso.Plugins.KeyVaultReader"));
    let fics: Vec<String> = fake.graph_fics(APP).into_iter().map(|f| f.subject).collect();
    assert_eq!(fics, std::slice::from_ref(&cn_form));

    // A look-alike made by hand (another name) is not this tool's: it stays.
    let hand = FederatedIdentityCredential { name: "handmade-v1".into(), ..old.clone() };
    fake.seed_graph_fic(APP, hand);
    let again = engine.plan(&spec).await.unwrap();
    assert!(again.actions.is_empty(), "{again}");

    // Where the platform's own answer is another (whole names, say), it wins over the computed CN form.
    assert!(fake.remove_graph_fic(APP, "handmade-v1"));
    fake.set_presented_subject(HOST, assembly, Some(&whole));
    let verify = engine.verify(&spec).await.unwrap();
    let ComponentStatus::SubjectMismatch { server, difference, .. } = &verify.components[0].status else {
        panic!("{verify}")
    };
    assert_eq!(server, &whole);
    assert!(difference.contains("v1_whole_name"), "{difference}");
    let follow = engine.plan(&spec).await.unwrap();
    assert!(
        follow.actions.iter().any(|a| matches!(a, Action::CreateFic { fic, .. } if fic.subject == whole)),
        "{follow}"
    );
}

/// A package signed by the author certificate, with an assembly inside it.
fn packaged() -> (FakePlatform, Uuid, Uuid, ProvisionSpec) {
    let (fake, _) = default_environment();
    let author = fixture("signed/author.cer");
    let package = fake.add_plugin_package(HOST, "contoso_Plugins", Some(load(&author)));
    let assembly = fake.add_packaged_assembly(HOST, package, "Contoso.Plugins");
    // The user names the assembly, as they know it from the plug-in registration tool.
    let spec = spec_for(&["Contoso.Plugins"], &[], &author, SubjectFormatVersion::V2);
    (fake, package, assembly, spec)
}

#[tokio::test(start_paused = true)]
async fn an_assembly_inside_a_package_binds_the_package() {
    let (fake, package, assembly, spec) = packaged();
    let engine = engine(&fake, &spec);
    let plan = engine.plan(&spec).await.unwrap();
    let binds: Vec<(ComponentKind, Uuid)> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Bind { component, .. } => Some((component.kind, component.id)),
            _ => None,
        })
        .collect();
    assert_eq!(binds, [(ComponentKind::PluginPackage, package)]);
    assert!(
        plan.to_string().contains("assembly Contoso.Plugins is in package contoso_Plugins: binding the package"),
        "{plan}"
    );
    assert!(engine.apply(&plan).await.is_success());
    assert_eq!(fake.binding(HOST, assembly), None, "the assembly itself is left alone");
    assert!(fake.binding(HOST, package).is_some());
    assert!(fake.run_plugin(HOST, assembly, "Contoso.Plugins.KeyVaultReader"));
    assert!(engine.verify(&spec).await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn verify_reports_an_assembly_bound_without_its_package_and_plan_fixes_it() {
    let (fake, package, assembly, spec) = packaged();
    let engine = engine(&fake, &spec);
    // Someone bound the assembly by hand (as the community tools do): the token request fails.
    let plan = engine.plan(&spec).await.unwrap();
    assert!(engine.apply(&plan).await.is_success());
    let row = fake.binding(HOST, package).unwrap();
    fake.seed_binding(HOST, package, None);
    fake.seed_binding(HOST, assembly, Some(row));
    assert!(!fake.run_plugin(HOST, assembly, "Contoso.Plugins.KeyVaultReader"));

    let verify = engine.verify(&spec).await.unwrap();
    assert_eq!(
        verify.components[0].status,
        ComponentStatus::AssemblyBoundNotPackage {
            assembly: "Contoso.Plugins".into(),
            package: "contoso_Plugins".into()
        }
    );
    assert!(verify.to_string().contains("bind the package"), "{verify}");
    let mend = engine.plan(&spec).await.unwrap();
    assert!(matches!(&mend.actions[..], [Action::Bind { component, .. }] if component.id == package), "{mend}");
    assert!(engine.apply(&mend).await.is_success());
    assert!(fake.run_plugin(HOST, assembly, "Contoso.Plugins.KeyVaultReader"));
}

#[tokio::test]
async fn graph_upsert_creates_only_with_prefer_create_if_missing() {
    use bytes::Bytes;
    let (fake, _) = default_environment();
    let url = format!(
        "https://graph.microsoft.com/v1.0/applications(appId='{APP}')/federatedIdentityCredentials(name='fic-a')"
    );
    let body = serde_json::json!({
        "issuer": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
        "subject": format!("/eid1/c/pub/t/{}/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/Default-{TENANT}/h/{}", encode_guid(TENANT), "0".repeat(64)),
        "audiences": ["api://AzureADTokenExchange"]
    });
    // The request Graph's docs warn about: without the header it is an update, and there is nothing to update.
    let bare = http::Request::builder()
        .method("PATCH")
        .uri(&url)
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_string()))
        .unwrap();
    let answer = fake.transport().send(bare).await.unwrap();
    assert_eq!(answer.status(), 404);
    assert!(fake.graph_fics(APP).is_empty());

    let graph = GraphClient::new(
        &Cloud::Public.into(),
        dataverse_mi::testkit::test_token(),
        ClientOptions { transport: Some(fake.transport()), ..ClientOptions::default() },
    )
    .unwrap();
    let mut named = body;
    named["name"] = "fic-a".into();
    let fic: FederatedIdentityCredential = serde_json::from_value(named).unwrap();
    assert_eq!(graph.upsert_fic(AppRef::AppId(APP), &fic).await.unwrap(), UpsertOutcome::Created);
    assert_eq!(graph.upsert_fic(AppRef::AppId(APP), &fic).await.unwrap(), UpsertOutcome::Updated);
    assert_eq!(fake.graph_fics(APP).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_spec_may_name_the_environment_id_and_plan_refuses_another() {
    let (fake, env) = default_environment();
    fake.add_plugin_assembly(HOST, "Contoso.Plugins", Some(load(&quickstart_cert())));
    let spec = ProvisionSpec::from_toml(&format!(
        r#"
        [identity]
        kind = "app-registration"
        app_id = "{APP}"
        [[environments]]
        org_url = "https://{HOST}"
        environment_id = "Default-{TENANT}"
        plugin_assemblies = ["Contoso.Plugins"]
        certificate = {{ path = "{}" }}
        "#,
        quickstart_cert()
    ))
    .unwrap();
    assert_eq!(spec.environments[0].environment_id, Some(env));
    assert!(engine(&fake, &spec).plan(&spec).await.is_ok());

    // The URL of another environment than the one meant: refused before any write, naming both ids.
    let mut wrong = spec.clone();
    let other: EnvironmentId = "7efcc31a-c410-e20e-9b3c-3ea55e7f9c56".parse().unwrap();
    wrong.environments[0].environment_id = Some(other);
    fake.clear_log();
    let err = engine(&fake, &wrong).plan(&wrong).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&format!("is the environment Default-{TENANT}, not {other}")), "{text}");
    assert_eq!(fake.writes(), 0);

    // A value that is no environment id is refused when the spec is read, with the field's reason.
    let bad = ProvisionSpec::from_toml(&format!(
        r#"
        [identity]
        kind = "app-registration"
        app_id = "{APP}"
        [[environments]]
        org_url = "https://{HOST}"
        environment_id = "Default"
        certificate = {{ sha256 = "{}" }}
        "#,
        "0".repeat(64)
    ))
    .unwrap_err();
    assert!(bad.to_string().contains("Default-{tenant GUID}"), "{bad}");
}

#[tokio::test(start_paused = true)]
async fn migrating_an_ordinary_ca_certificate_from_version_1_to_2() {
    let (fake, _) = default_environment();
    let leaf = fixture("leaf.cer");
    let assembly = fake.add_plugin_assembly(HOST, "Contoso.Plugins", Some(load(&leaf)));
    let v1 = spec_for(&["Contoso.Plugins"], &[], &leaf, SubjectFormatVersion::V1);
    let engine = engine(&fake, &v1);
    assert!(engine.apply(&engine.plan(&v1).await.unwrap()).await.is_success());
    assert!(fake.run_plugin(HOST, assembly, "Contoso.Plugins.KeyVaultReader"));
    let v1_fic = fake.graph_fics(APP).remove(0);

    // The same spec at version 2, pruning what it no longer needs: the row's version switches and the version 2
    // FIC is added; the plug-in presents the version 1 subject until the switch is applied, so its FIC stays (said
    // in a note) and goes with the next plan.
    let mut v2 = v1.clone();
    v2.version = SubjectFormatVersion::V2;
    v2.prune = true;
    let plan = engine.plan(&v2).await.unwrap();
    let kinds = |plan: &dataverse_mi::provision::Plan| -> Vec<&'static str> {
        plan.actions
            .iter()
            .map(|a| match a {
                Action::CreateFic { .. } => "create_fic",
                Action::UpdateManagedIdentity { .. } => "update_row",
                Action::DeleteFic { .. } => "delete_fic",
                _ => "other",
            })
            .collect()
    };
    assert_eq!(kinds(&plan), ["create_fic", "update_row"], "{plan}");
    assert!(
        matches!(&plan.kept_fics()[..], [PlanNote::FicKept { name, row_switching: true, .. }] if *name == v1_fic.name),
        "{plan}"
    );
    // Said in words, not in Rust's Debug syntax.
    let text = plan.to_string();
    assert!(text.contains(": version 2"), "{text}");
    assert!(text.contains("plan again afterwards"), "{text}");
    assert!(!text.contains("Some("), "{text}");
    assert!(engine.apply(&plan).await.is_success());
    assert!(fake.run_plugin(HOST, assembly, "Contoso.Plugins.KeyVaultReader"));
    let plan = engine.plan(&v2).await.unwrap();
    assert_eq!(kinds(&plan), ["delete_fic"], "{plan}");
    assert!(matches!(&plan.actions[0], Action::DeleteFic { name, .. } if *name == v1_fic.name));
    assert!(engine.apply(&plan).await.is_success());
    assert!(fake.run_plugin(HOST, assembly, "Contoso.Plugins.KeyVaultReader"));
    let fics = fake.graph_fics(APP);
    assert_eq!(fics.len(), 1);
    assert!(
        explain_subject(&fics[0].subject).parts.binding.is_some_and(|b| b.version() == Some(SubjectFormatVersion::V2))
    );
    assert!(engine.verify(&v2).await.unwrap().is_ok());
}
