//! Access where plug-ins call besides Azure: the identity as an application user of Dataverse environments with
//! security roles, and Microsoft Graph application permissions. Planned, applied, a re-run writes nothing, verify
//! checks them, destroy takes them away when asked; for an app registration and a user-assigned identity alike.
#![cfg(feature = "testkit")]

use dataverse_mi::cert::Certificate;
use dataverse_mi::http::RetryOptions;
use dataverse_mi::provision::{
    Action, ApiPermissionSpec, ApplicationUserSpec, CertificateSpec, CreateIdentitySpec, DestroyOptions,
    EnvironmentSpec, IdentitySpec, ProvisionError, ProvisionOptions, ProvisionSpec, Provisioner, application_user_id,
};
use dataverse_mi::testkit::{FakeOptions, FakePlatform};
use uuid::Uuid;

const TENANT: Uuid = Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47);
const APP: Uuid = Uuid::from_u128(0x0b5a7d2c_6f4e_4d3a_9c1b_2a8e7f6d5c4b);
const HOST: &str = "contoso.crm.dynamics.com";
const DATA: &str = "contoso-data.crm.dynamics.com";

fn cert_path() -> String {
    format!("{}/examples/contoso-plugins.cer", env!("CARGO_MANIFEST_DIR"))
}

fn fake() -> FakePlatform {
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_environment(HOST, TENANT);
    fake.add_environment(DATA, TENANT);
    let cert = Certificate::from_file(cert_path()).unwrap().certificate;
    fake.add_plugin_assembly(HOST, "Contoso.Plugins", Some(cert));
    fake
}

fn spec(identity: IdentitySpec) -> ProvisionSpec {
    let mut spec = ProvisionSpec::new(
        identity,
        vec![
            EnvironmentSpec::new(format!("https://{HOST}"))
                .with_assemblies(["Contoso.Plugins"])
                .with_certificate(CertificateSpec::File { path: cert_path().into(), password_env: None }),
        ],
    );
    // Every environment of the spec, and one the plug-ins call that is not in it.
    spec.application_users.push(ApplicationUserSpec::new(None, ["Basic User"]));
    spec.application_users.push(ApplicationUserSpec::new(Some(format!("https://{DATA}")), ["Basic User", "Delegate"]));
    spec.api_permissions.push(ApiPermissionSpec::graph(["Mail.Send", "User.Read.All"]));
    spec
}

fn engine(fake: &FakePlatform, spec: &ProvisionSpec) -> Provisioner {
    let retry = RetryOptions { jitter: 0.0, ..RetryOptions::default() };
    fake.provisioner(spec, 4, retry, ProvisionOptions::default()).unwrap().provisioner
}

/// Plan, apply, a re-run with no write, verify, destroy with `access`, verify again: for one identity.
async fn round_trip(
    fake: &FakePlatform,
    spec: &ProvisionSpec,
    client_id: impl Fn() -> Uuid,
    principal: impl Fn() -> Uuid,
) {
    let engine = engine(fake, spec);
    let plan = engine.plan(spec).await.unwrap();
    let grants: Vec<&Action> = plan.actions.iter().filter(|a| a.is_grant()).collect();
    assert_eq!(grants.len(), 4, "{plan}");
    let text = plan.to_string();
    assert!(text.contains(&format!("application user in https://{DATA}: role 'Delegate': to give")), "{text}");
    assert!(text.contains("API permission Microsoft Graph Mail.Send: to grant"), "{text}");
    let report = engine.apply(&plan).await;
    assert!(report.is_success(), "{report}");

    let (user, roles) =
        fake.application_user(HOST, client_id()).expect("an application user in the spec's environment");
    assert_eq!(user, application_user_id(client_id(), &format!("https://{HOST}")), "the derived id");
    assert_eq!(roles, ["Basic User"]);
    assert_eq!(fake.application_user(DATA, client_id()).unwrap().1, ["Basic User", "Delegate"]);
    assert_eq!(fake.api_permissions(principal()), ["Mail.Send", "User.Read.All"]);

    fake.clear_log();
    let again = engine.plan(spec).await.unwrap();
    assert!(again.is_empty(), "{again}");
    assert_eq!(fake.writes(), 0);
    let verify = engine.verify(spec).await.unwrap();
    assert!(verify.is_ok(), "{verify}");
    assert_eq!(verify.application_users.len(), 2);
    assert!(verify.api_permissions.iter().all(|p| p.existing.is_some()));

    // A role taken away by hand: verify names it, plan gives it back alone.
    let data_user = fake.application_user(DATA, client_id()).unwrap().0;
    let delegate = verify.application_users.iter().find(|u| u.org_url.contains(DATA)).unwrap().roles[1].role_id;
    let dv =
        format!("https://{DATA}/api/data/v9.2/systemusers({data_user})/systemuserroles_association({delegate})/$ref");
    let request = http::Request::delete(dv).body(bytes::Bytes::new()).unwrap();
    assert_eq!(fake.transport().send(request).await.unwrap().status(), 204);
    let verify = engine.verify(spec).await.unwrap();
    assert!(!verify.is_ok());
    assert!(
        verify.to_string().contains(&format!("application user in https://{DATA}: role 'Delegate': MISSING")),
        "{verify}"
    );
    let plan = engine.plan(spec).await.unwrap();
    assert_eq!(plan.actions.len(), 1, "{plan}");
    assert!(
        matches!(&plan.actions[0], Action::GrantDataverseAccess { user: Some(u), roles, .. } if *u == data_user && roles.len() == 1)
    );
    assert!(engine.apply(&plan).await.is_success());

    // Destroy without `access` keeps them and says so; with it, takes them away.
    let kept = engine.plan_destroy(spec, DestroyOptions::default()).await.unwrap();
    assert!(kept.to_string().contains("not asked to take them away (--access)"), "{kept}");
    let destroy = engine.plan_destroy(spec, DestroyOptions::default().with_access(true)).await.unwrap();
    let report = engine.destroy(&destroy).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(fake.application_user(HOST, client_id()).unwrap().1, Vec::<String>::new());
    assert_eq!(fake.application_user(DATA, client_id()).unwrap().1, Vec::<String>::new());
    assert!(fake.api_permissions(principal()).is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_app_registration_is_given_dataverse_roles_and_graph_permissions() {
    let fake = fake();
    fake.add_application(APP, "Contoso plug-ins");
    let spec = spec(IdentitySpec::app_registration(APP));
    let principal = || fake.service_principal(APP).unwrap();
    round_trip(&fake, &spec, || APP, principal).await;
}

#[tokio::test(start_paused = true)]
async fn a_user_assigned_identity_made_by_the_apply_is_given_them_too() {
    let fake = fake();
    let spec = spec(IdentitySpec::UserAssigned {
        subscription_id: "sub-1".into(),
        resource_group: "rg".into(),
        name: "contoso-plugins".into(),
        create: Some(CreateIdentitySpec { location: "westeurope".into(), tags: Default::default() }),
    });
    let ids = || fake.user_assigned_identity("sub-1", "rg", "contoso-plugins").unwrap();
    round_trip(&fake, &spec, || ids().0, || ids().1).await;
}

#[tokio::test(start_paused = true)]
async fn a_delegated_permission_an_unknown_one_and_an_unknown_role_are_refused_with_the_reason() {
    let fake = fake();
    fake.add_application(APP, "Contoso plug-ins");
    let mut delegated = spec(IdentitySpec::app_registration(APP));
    delegated.api_permissions = vec![ApiPermissionSpec::graph(["User.Read"])];
    let err = engine(&fake, &delegated).plan(&delegated).await.unwrap_err();
    assert!(matches!(&err, ProvisionError::PermissionNotFound { delegated_only: true, .. }), "{err}");
    assert!(err.to_string().contains("'User.Read' is a delegated permission"), "{err}");

    let mut typo = spec(IdentitySpec::app_registration(APP));
    typo.api_permissions = vec![ApiPermissionSpec::graph(["Mail.Sned"])];
    let err = engine(&fake, &typo).plan(&typo).await.unwrap_err();
    let ProvisionError::PermissionNotFound { delegated_only: false, known, .. } = &err else { panic!("{err}") };
    assert_eq!(known[0], "Mail.Send", "the closest first: {err}");

    let mut role = spec(IdentitySpec::app_registration(APP));
    role.application_users = vec![ApplicationUserSpec::new(None, ["Basic Usr"])];
    let err = engine(&fake, &role).plan(&role).await.unwrap_err();
    assert!(matches!(&err, ProvisionError::SecurityRoleNotFound { role, .. } if role == "Basic Usr"), "{err}");
    // Nothing was written on the way.
    assert_eq!(fake.writes(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_application_user_made_by_hand_is_used_and_only_the_missing_role_given() {
    let fake = fake();
    fake.add_application(APP, "Contoso plug-ins");
    let by_hand = fake.seed_application_user(HOST, APP, &["Basic User"]).unwrap();
    let mut spec = spec(IdentitySpec::app_registration(APP));
    spec.application_users = vec![ApplicationUserSpec::new(None, ["Basic User", "Environment Maker"])];
    spec.api_permissions.clear();
    let engine = engine(&fake, &spec);
    let plan = engine.plan(&spec).await.unwrap();
    let access: Vec<&Action> = plan.actions.iter().filter(|a| a.is_grant()).collect();
    assert!(
        matches!(access[..], [Action::GrantDataverseAccess { user: Some(u), roles, .. }] if *u == by_hand && roles.len() == 1 && roles[0].0 == "Environment Maker"),
        "{plan}"
    );
    assert!(engine.apply(&plan).await.is_success());
    assert_eq!(
        fake.application_user(HOST, APP).unwrap(),
        (by_hand, vec!["Basic User".into(), "Environment Maker".into()])
    );
}

#[tokio::test(start_paused = true)]
async fn access_stays_while_the_identity_carries_fics_this_teardown_keeps() {
    let fake = fake();
    fake.add_application(APP, "Contoso plug-ins");
    let spec = spec(IdentitySpec::app_registration(APP));
    let engine = engine(&fake, &spec);
    assert!(engine.apply(&engine.plan(&spec).await.unwrap()).await.is_success());
    // Another team's FIC on the same identity (made by hand): its plug-ins may call Dataverse and Graph with the
    // identity's access too.
    let mut theirs = fake.graph_fics(APP)[0].clone();
    theirs.name = "another-team".into();
    theirs.subject = theirs.subject.replace("/e/", "/e/0");
    fake.seed_graph_fic(APP, theirs);
    let destroy = engine.plan_destroy(&spec, DestroyOptions::default().with_access(true)).await.unwrap();
    let text = destroy.to_string();
    assert!(text.contains("whoever uses them may rely on them") && text.contains("another-team"), "{text}");
    assert!(engine.destroy(&destroy).await.is_success());
    assert_eq!(fake.application_user(HOST, APP).unwrap().1, ["Basic User"], "kept");
    assert_eq!(fake.api_permissions(fake.service_principal(APP).unwrap()), ["Mail.Send", "User.Read.All"]);
}

#[tokio::test(start_paused = true)]
async fn a_service_principal_just_made_is_waited_for_before_its_api_permission_is_given() {
    let fake = fake();
    // The identity is made by this apply, and the directory knows its principal only after two more requests.
    fake.set_principal_replication_lag(2);
    let mut spec = spec(IdentitySpec::UserAssigned {
        subscription_id: "sub-1".into(),
        resource_group: "rg".into(),
        name: "contoso-plugins".into(),
        create: Some(CreateIdentitySpec { location: "westeurope".into(), tags: Default::default() }),
    });
    spec.application_users.clear();
    spec.api_permissions = vec![ApiPermissionSpec::graph(["Mail.Send"])];
    let engine = engine(&fake, &spec);
    let report = engine.apply(&engine.plan(&spec).await.unwrap()).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(report.principal_retries, 2, "{report}");
    let principal = fake.user_assigned_identity("sub-1", "rg", "contoso-plugins").unwrap().1;
    assert_eq!(fake.api_permissions(principal), ["Mail.Send"]);
}
