//! Services spawn the engine's futures (`tokio::spawn`, an axum handler): each must be `Send`, and `'static` when
//! its inputs are owned. A compile-time check, and a run on a multi-threaded runtime.
#![cfg(feature = "testkit")]

use dataverse_mi::provision::{
    CertificateSpec, EnvironmentSpec, IdentitySpec, ProvisionOptions, ProvisionSpec, WatchOptions,
};
use dataverse_mi::testkit::{FakeOptions, FakePlatform};
use uuid::Uuid;

const TENANT: Uuid = Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47);
const APP: Uuid = Uuid::from_u128(0x0b5a7d2c_6f4e_4d3a_9c1b_2a8e7f6d5c4b);

fn assert_send<T: Send>(_: &T) {}

fn setup() -> (FakePlatform, ProvisionSpec) {
    let cert_path = format!("{}/examples/contoso-plugins.cer", env!("CARGO_MANIFEST_DIR"));
    let cert = dataverse_mi::cert::Certificate::from_file(&cert_path).unwrap().certificate;
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_application(APP, "Contoso plug-ins");
    fake.add_default_environment("contoso.crm.dynamics.com", TENANT);
    fake.add_plugin_assembly("contoso.crm.dynamics.com", "Contoso.Plugins", Some(cert));
    let spec = ProvisionSpec::new(
        IdentitySpec::app_registration(APP),
        vec![
            EnvironmentSpec::new("https://contoso.crm.dynamics.com")
                .with_assemblies(["Contoso.Plugins"])
                .with_certificate(CertificateSpec::File { path: cert_path.into(), password_env: None }),
        ],
    );
    (fake, spec)
}

#[test]
fn the_engines_futures_are_send() {
    let (fake, spec) = setup();
    let engine = fake.provisioner(&spec, 4, Default::default(), ProvisionOptions::default()).unwrap().provisioner;
    let plan = engine.plan(&spec);
    assert_send(&plan);
    drop(plan);
    let verify = engine.verify(&spec);
    assert_send(&verify);
    drop(verify);
    let window = WatchOptions::since_text("2000-01-01T00:00:00Z").unwrap();
    let watch = engine.watch(&spec, &window);
    assert_send(&watch);
    drop(watch);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let planned = rt.block_on(engine.plan(&spec)).unwrap();
    let apply = engine.apply(&planned);
    assert_send(&apply);
    drop(apply);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_apply_verify_run_in_spawned_tasks() {
    let (fake, spec) = setup();
    let engine = fake.provisioner(&spec, 4, Default::default(), ProvisionOptions::default()).unwrap().provisioner;
    let (e, s) = (engine.clone(), spec.clone());
    let plan = tokio::spawn(async move { e.plan(&s).await }).await.unwrap().unwrap();
    let e = engine.clone();
    let report = tokio::spawn(async move { e.apply(&plan).await }).await.unwrap();
    assert!(report.is_success(), "{report}");
    let verify = tokio::spawn(async move { engine.verify(&spec).await }).await.unwrap().unwrap();
    assert!(verify.is_ok(), "{verify}");
}

/// Every client call's future is `Send` (each one listed: a call added later without its line here is the one
/// to look at).
#[test]
fn client_futures_are_send() {
    use dataverse_mi::clients::{
        AppRef, ArmClient, ClientOptions, ComponentKind, DataverseClient, GraphClient, ManagedIdentityUpdate, OrgUrl,
        UserAssignedIdentityRef,
    };
    use dataverse_mi::entities::{NewManagedIdentity, PluginTraceLogSetting};
    use dataverse_mi::subject::SubjectFormatVersion;
    let (fake, _) = setup();
    let options = ClientOptions { transport: Some(fake.transport()), ..ClientOptions::default() };
    let token = dataverse_mi::testkit::test_token();
    let cloud = dataverse_mi::cloud::CloudProfile::default();
    let id = Uuid::from_u128(1);
    let dv =
        DataverseClient::new(OrgUrl::any_host("contoso.crm.dynamics.com").unwrap(), token.clone(), options.clone())
            .unwrap();
    let row = NewManagedIdentity::for_plugins(APP, TENANT, id, SubjectFormatVersion::V2);
    let update = ManagedIdentityUpdate::default();
    let kind = ComponentKind::PluginAssembly;
    assert_send(&dv.retrieve_current_organization());
    assert_send(&dv.who_am_i());
    assert_send(&dv.create_managed_identity(&row));
    assert_send(&dv.get_managed_identity(id));
    assert_send(&dv.list_managed_identities(None));
    assert_send(&dv.update_managed_identity(id, &update));
    assert_send(&dv.delete_managed_identity(id));
    assert_send(&dv.get_plugin_assembly(id));
    assert_send(&dv.find_plugin_assemblies_by_name(&["a"]));
    assert_send(&dv.list_plugin_assemblies());
    assert_send(&dv.get_plugin_package(id));
    assert_send(&dv.find_plugin_packages_by_name(&["a"]));
    assert_send(&dv.list_plugin_packages());
    assert_send(&dv.environment_status());
    assert_send(&dv.bind(kind, id, id));
    assert_send(&dv.unbind(kind, id));
    assert_send(&dv.binding(kind, id));
    assert_send(&dv.list_plugin_trace_logs("2026-11-22T10:00:00Z", None));
    assert_send(&dv.plugin_trace_log_setting());
    assert_send(&dv.set_plugin_trace_log_setting(id, PluginTraceLogSetting::Exception));
    assert_send(&dv.get_component_managed_identity_fic(kind, id));

    let graph = GraphClient::new(&cloud, token.clone(), options.clone()).unwrap();
    let fic: dataverse_mi::FederatedIdentityCredential = serde_json::from_value(serde_json::json!({
        "name": "fic-a", "issuer": "https://login.microsoftonline.com/x/v2.0", "subject": "s", "audiences": ["a"]
    }))
    .unwrap();
    let app = AppRef::AppId(APP);
    assert_send(&graph.get_application(app));
    assert_send(&graph.find_applications_by_display_name("x"));
    assert_send(&graph.create_application("x"));
    assert_send(&graph.create_service_principal(APP));
    assert_send(&graph.get_service_principal(APP));
    assert_send(&graph.list_fics(app));
    assert_send(&graph.get_fic(app, "fic-a"));
    assert_send(&graph.create_fic(app, &fic));
    assert_send(&graph.update_fic(app, "fic-a", &fic));
    assert_send(&graph.delete_fic(app, "fic-a"));
    assert_send(&graph.upsert_fic(app, &fic));

    let arm = ArmClient::new(&cloud, token, options).unwrap();
    let uami = UserAssignedIdentityRef {
        subscription_id: "00000000-0000-0000-0000-000000000001".into(),
        resource_group: "rg".into(),
        name: "uami".into(),
    };
    let tags = std::collections::BTreeMap::new();
    let scope = "/subscriptions/00000000-0000-0000-0000-000000000001";
    assert_send(&arm.get_user_assigned_identity(&uami));
    assert_send(&arm.list_fics(&uami));
    assert_send(&arm.get_fic(&uami, "fic-a"));
    assert_send(&arm.create_or_update_fic(&uami, &fic));
    assert_send(&arm.delete_fic(&uami, "fic-a"));
    assert_send(&arm.create_or_update_user_assigned_identity(&uami, "westeurope", &tags));
    assert_send(&arm.find_role_definition(scope, "Reader"));
    assert_send(&arm.list_role_assignments(scope, id));
    assert_send(&arm.create_role_assignment(scope, id, "role", id));
}
