//! The Azure Resource Manager client against wiremock.

mod common;

use common::{catch_all, json, options, token};
use dataverse_mi::clients::{ArmClient, ClientOptions, UserAssignedIdentityRef};
use dataverse_mi::cloud::{Cloud, CloudProfile};
use dataverse_mi::fic::FederatedIdentityCredential;
use serde_json::json;
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const UAMI: &str = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/rg-plugins/providers/Microsoft.ManagedIdentity/userAssignedIdentities/dataverse-plugin-mi";

fn identity() -> UserAssignedIdentityRef {
    UserAssignedIdentityRef {
        subscription_id: "00000000-0000-0000-0000-0000000000aa".into(),
        resource_group: "rg-plugins".into(),
        name: "dataverse-plugin-mi".into(),
    }
}

fn arm(server: &MockServer) -> ArmClient {
    let base = format!("{}/", server.uri()).parse().unwrap();
    ArmClient::new(&CloudProfile::from(Cloud::Public), token(), ClientOptions { base_url: Some(base), ..options() })
        .unwrap()
}

fn fic() -> FederatedIdentityCredential {
    FederatedIdentityCredential {
        name: "fic-a".into(),
        issuer: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0".into(),
        subject: "/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/x/h/y".into(),
        audiences: vec!["api://AzureADTokenExchange".into()],
        description: None,
    }
}

fn stored() -> serde_json::Value {
    json!({
        "id": format!("{UAMI}/federatedIdentityCredentials/fic-a"),
        "name": "fic-a",
        "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
        "properties": {"issuer": fic().issuer, "subject": fic().subject, "audiences": fic().audiences}
    })
}

#[tokio::test]
async fn get_identity() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(UAMI))
        .and(query_param("api-version", "2023-01-31"))
        .respond_with(json(json!({
            "id": UAMI, "name": "dataverse-plugin-mi", "location": "westeurope", "tags": {},
            "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
            "properties": {
                "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "principalId": "11111111-2222-3333-4444-555555555555",
                "clientId": "0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b"
            }
        })))
        .mount(&server)
        .await;
    catch_all(&server).await;
    let id = arm(&server).get_user_assigned_identity(&identity()).await.unwrap();
    assert_eq!(id.client_id.to_string(), "0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b");
    assert_eq!(id.principal_id.to_string(), "11111111-2222-3333-4444-555555555555");
    assert_eq!(id.location, "westeurope");
}

#[tokio::test]
async fn fic_lifecycle_with_configurable_api_version() {
    let server = MockServer::start().await;
    let fics = format!("{UAMI}/federatedIdentityCredentials");
    Mock::given(method("GET"))
        .and(path(&fics))
        .and(query_param("api-version", "2024-11-30"))
        .respond_with(json(json!({"value": [stored()], "nextLink": format!("{}{fics}?api-version=2024-11-30&$skipToken=2", server.uri())})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(&fics))
        .and(query_param("$skipToken", "2"))
        .respond_with(json(json!({"value": []})))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("{fics}/fic-a")))
        .and(body_json(fic().arm_body().unwrap()))
        .respond_with(ResponseTemplate::new(201).set_body_json(stored()))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("{fics}/fic-a")))
        .respond_with(ResponseTemplate::new(200).set_body_json(stored()))
        .mount(&server)
        .await;
    Mock::given(method("GET")).and(path(format!("{fics}/fic-a"))).respond_with(json(stored())).mount(&server).await;
    Mock::given(method("DELETE"))
        .and(path(format!("{fics}/fic-a")))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    catch_all(&server).await;
    let c = arm(&server).with_api_version("2024-11-30");
    let listed = c.list_fics(&identity()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].credential, fic());
    let (made, created) = c.create_or_update_fic(&identity(), &fic()).await.unwrap();
    assert!(created);
    assert_eq!(made.credential.subject, fic().subject);
    let (_, created_again) = c.create_or_update_fic(&identity(), &fic()).await.unwrap();
    assert!(!created_again);
    assert_eq!(c.get_fic(&identity(), "fic-a").await.unwrap().credential.name, "fic-a");
    c.delete_fic(&identity(), "fic-a").await.unwrap();
}

fn concurrent_writes() -> ResponseTemplate {
    ResponseTemplate::new(409)
        .insert_header("x-ms-request-id", "req-1")
        .insert_header("x-ms-correlation-request-id", "corr-1")
        .set_body_json(json!({"error": {
            "code": "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity",
            "message": "Too many Federated Identity Credentials are written concurrently for the managed identity.",
            "details": [{"code": "Retry", "message": "Write them one at a time."}]
        }}))
}

#[tokio::test]
async fn arm_errors_keep_details_and_ids() {
    let server = MockServer::start().await;
    // Another run writing to the same identity: retried (the PUT is idempotent) until the attempts run out.
    Mock::given(method("PUT")).respond_with(concurrent_writes()).expect(3).mount(&server).await;
    let err = arm(&server).create_or_update_fic(&identity(), &fic()).await.unwrap_err();
    assert!(err.is_conflict());
    assert_eq!(err.service_code(), Some(dataverse_mi::clients::CONCURRENT_FIC_WRITES));
    assert_eq!(err.request_id(), Some("req-1"));
    let dataverse_mi::clients::ApiError::Service(e) = &err else { panic!() };
    assert_eq!(e.correlation_id.as_deref(), Some("corr-1"));
    assert_eq!(e.details[0].code.as_deref(), Some("Retry"));
    assert!(err.to_string().contains("Write them one at a time"), "{err}");
}

#[tokio::test]
async fn concurrent_fic_writes_are_retried_until_they_go_through() {
    let server = MockServer::start().await;
    Mock::given(method("PUT")).respond_with(concurrent_writes()).up_to_n_times(2).expect(2).mount(&server).await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": "/subscriptions/sub/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami/federatedIdentityCredentials/fic-a",
            "name": "fic-a",
            "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
            "properties": {"issuer": fic().issuer, "subject": fic().subject, "audiences": fic().audiences}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let (made, created) = arm(&server).create_or_update_fic(&identity(), &fic()).await.unwrap();
    assert!(created);
    assert_eq!(made.credential.subject, fic().subject);
}

#[tokio::test]
async fn other_conflicts_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({"error": {
            "code": "Conflict", "message": "The federated identity credential conflicts with an existing one."
        }})))
        .expect(1)
        .mount(&server)
        .await;
    let err = arm(&server).create_or_update_fic(&identity(), &fic()).await.unwrap_err();
    assert_eq!(err.service_code(), Some("Conflict"));
}

#[tokio::test]
async fn bad_identity_parts_are_refused_before_any_request() {
    let server = MockServer::start().await;
    catch_all(&server).await;
    let mut bad = identity();
    bad.resource_group = "rg/../../other".into();
    assert!(arm(&server).get_user_assigned_identity(&bad).await.unwrap_err().to_string().contains("resource group"));
    assert!(arm(&server).get_fic(&identity(), "../x").await.is_err());
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[test]
fn sovereign_scope() {
    let c = ArmClient::new(&CloudProfile::from(Cloud::China), token(), ClientOptions::default()).unwrap();
    assert_eq!(c.scope(), "https://management.chinacloudapi.cn/.default");
}

#[tokio::test]
async fn identity_creation_and_role_assignments() {
    use dataverse_mi::clients::role_assignment_name;
    let server = MockServer::start().await;
    let vault = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/rg-plugins/providers/Microsoft.KeyVault/vaults/contoso-kv";
    let role_id = "/subscriptions/00000000-0000-0000-0000-0000000000aa/providers/Microsoft.Authorization/roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6";
    let principal: uuid::Uuid = "11111111-2222-3333-4444-555555555555".parse().unwrap();
    Mock::given(method("PUT"))
        .and(path(UAMI))
        .and(body_json(json!({"location": "westeurope", "tags": {"owner": "plugins"}})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": UAMI, "name": "dataverse-plugin-mi", "location": "westeurope",
            "properties": {"tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47", "principalId": principal, "clientId": "0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{vault}/providers/Microsoft.Authorization/roleDefinitions")))
        .and(query_param("$filter", "roleName eq 'Key Vault Secrets User'"))
        .and(query_param("api-version", "2022-04-01"))
        .respond_with(json(json!({"value": [{"id": role_id, "name": "4633458b-17de-408a-b874-0445c86b69e6", "properties": {"roleName": "Key Vault Secrets User"}}]})))
        .mount(&server)
        .await;
    let name = role_assignment_name(vault, role_id, principal);
    assert_eq!(name, role_assignment_name(&format!("{}/", vault.to_uppercase()), &role_id.to_uppercase(), principal));
    assert_eq!(name.get_version_num(), 5);
    let assignment_path = format!("{vault}/providers/Microsoft.Authorization/roleAssignments/{name}");
    Mock::given(method("PUT"))
        .and(path(&assignment_path))
        .and(body_json(json!({"properties": {"roleDefinitionId": role_id, "principalId": principal, "principalType": "ServicePrincipal"}})))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {"code": "PrincipalNotFound", "message": "Principal 1111 does not exist in the directory."}})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(&assignment_path))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": assignment_path, "name": name,
            "properties": {"roleDefinitionId": role_id, "principalId": principal, "scope": vault}
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(&assignment_path))
        .respond_with(ResponseTemplate::new(409).set_body_json(
            json!({"error": {"code": "RoleAssignmentExists", "message": "The role assignment already exists."}}),
        ))
        .mount(&server)
        .await;
    catch_all(&server).await;
    let c = arm(&server);
    let tags = std::collections::BTreeMap::from([("owner".to_owned(), "plugins".to_owned())]);
    let created = c.create_or_update_user_assigned_identity(&identity(), "westeurope", &tags).await.unwrap();
    assert_eq!(created.principal_id, principal);
    let role = c.find_role_definition(vault, "Key Vault Secrets User").await.unwrap().unwrap();
    assert_eq!(role.id, role_id);
    // Just created, the principal has not replicated yet: a typed error the caller retries.
    let first = c.create_role_assignment(vault, name, &role.id, principal).await.unwrap_err();
    assert_eq!(first.service_code(), Some("PrincipalNotFound"));
    let made = c.create_role_assignment(vault, name, &role.id, principal).await.unwrap();
    assert_eq!((made.principal_id, made.scope.as_str()), (principal, vault));
    let again = c.create_role_assignment(vault, name, &role.id, principal).await.unwrap_err();
    assert!(again.is_conflict());
    assert_eq!(again.service_code(), Some("RoleAssignmentExists"));
    assert!(c.find_role_definition("not-a-resource-id", "x").await.is_err());
    assert!(c.find_role_definition("/subscriptions/../x", "x").await.is_err());
}

#[tokio::test]
async fn role_assignments_of_a_principal_and_which_one_grants() {
    use dataverse_mi::clients::RoleAssignment;
    let server = MockServer::start().await;
    let vault =
        "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv";
    let principal: uuid::Uuid = "11111111-2222-3333-4444-555555555555".parse().unwrap();
    let secrets_user = "4633458b-17de-408a-b874-0445c86b69e6";
    Mock::given(method("GET"))
        .and(path(format!("{vault}/providers/Microsoft.Authorization/roleAssignments")))
        .and(query_param("$filter", format!("principalId eq '{principal}'")))
        .and(query_param("api-version", "2022-04-01"))
        .respond_with(json(json!({"value": [
            {"id": "/subscriptions/00000000-0000-0000-0000-0000000000aa/providers/Microsoft.Authorization/roleAssignments/a1", "name": "a1",
             "properties": {"roleDefinitionId": format!("/subscriptions/00000000-0000-0000-0000-0000000000aa/providers/Microsoft.Authorization/roleDefinitions/{secrets_user}"),
                            "principalId": principal, "scope": "/subscriptions/00000000-0000-0000-0000-0000000000aa"}},
            {"id": format!("{vault}/providers/Microsoft.Authorization/roleAssignments/a2"), "name": "a2",
             "properties": {"roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{}", secrets_user.to_uppercase()),
                            "principalId": principal, "scope": vault.to_uppercase()}}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let found: Vec<RoleAssignment> = arm(&server).list_role_assignments(vault, principal).await.unwrap();
    assert_eq!(found.len(), 2);
    let wanted = format!(
        "/subscriptions/00000000-0000-0000-0000-0000000000aa/providers/Microsoft.Authorization/roleDefinitions/{secrets_user}"
    );
    // The first is at the subscription (above the vault): not the grant asked for at the vault.
    assert!(!found[0].grants(vault, &wanted));
    // The second is at the vault, its role named under another scope and in upper case: the same grant.
    assert!(found[1].grants(&format!("{vault}/"), &wanted));
    assert!(
        !found[1]
            .grants(vault, "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7")
    );
}

/// ARM answers a FIC with `systemData` (common types v3+, as the Managed Identity REST spec's resources carry it):
/// its `createdAt` is when the FIC was made, which the diagnosis uses for propagation.
#[tokio::test]
async fn a_fics_creation_time_is_read_from_system_data() {
    let server = MockServer::start().await;
    let mut with_time = stored();
    with_time["systemData"] = json!({
        "createdBy": "someone@contoso.com",
        "createdByType": "User",
        "createdAt": "2026-11-22T09:57:00.1234567Z",
        "lastModifiedBy": "someone@contoso.com",
        "lastModifiedByType": "User",
        "lastModifiedAt": "2026-11-22T09:57:00.1234567Z"
    });
    Mock::given(method("GET"))
        .and(path(format!("{UAMI}/federatedIdentityCredentials")))
        .respond_with(json(json!({"value": [with_time, stored()]})))
        .mount(&server)
        .await;
    catch_all(&server).await;
    let listed = arm(&server).list_fics(&identity()).await.unwrap();
    let made = listed[0].created_at.expect("createdAt read");
    assert_eq!(humantime::format_rfc3339_seconds(made).to_string(), "2026-11-22T09:57:00Z");
    assert_eq!(listed[1].created_at, None, "a FIC without systemData has no time");
}
