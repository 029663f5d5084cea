//! The Microsoft Graph client against wiremock.

mod common;

use common::{catch_all, fic, json, options, token};
use dataverse_mi::clients::{AppRef, ClientOptions, GraphClient, UpsertOutcome};
use dataverse_mi::cloud::{Cloud, CloudProfile};
use serde_json::json;
use uuid::Uuid;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const APP: Uuid = Uuid::from_u128(0x0b5a7d2c_6f4e_4d3a_9c1b_2a8e7f6d5c4b);
const OBJ: Uuid = Uuid::from_u128(0x9f0e1d2c_3b4a_4596_8877_665544332211);

fn graph(server: &MockServer) -> GraphClient {
    let base = format!("{}/v1.0/", server.uri()).parse().unwrap();
    GraphClient::new(&CloudProfile::from(Cloud::Public), token(), ClientOptions { base_url: Some(base), ..options() })
        .unwrap()
}

fn stored(id: &str, name: &str) -> serde_json::Value {
    let mut v = serde_json::to_value(fic(name)).unwrap();
    v["id"] = json!(id);
    v
}

#[tokio::test]
async fn application_by_app_id() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/applications(appId='{APP}')")))
        .and(query_param("$select", "id,appId,displayName,tags"))
        .respond_with(json(json!({"@odata.context": "x", "id": OBJ, "appId": APP, "displayName": "Contoso plug-ins", "tags": ["dataverse-mi", "team:platform"]})))
        .mount(&server)
        .await;
    catch_all(&server).await;
    let app = graph(&server).get_application(AppRef::AppId(APP)).await.unwrap();
    assert_eq!((app.id, app.app_id, app.display_name.as_deref()), (OBJ, APP, Some("Contoso plug-ins")));
    assert_eq!(app.tags, ["dataverse-mi", "team:platform"]);
}

#[tokio::test]
async fn list_get_create_update_delete_fics() {
    let server = MockServer::start().await;
    let fics = format!("/v1.0/applications/{OBJ}/federatedIdentityCredentials");
    let next = format!("{}{fics}?$skiptoken=2", server.uri());
    Mock::given(method("GET"))
        .and(path(&fics))
        .and(query_param("$skiptoken", "2"))
        .respond_with(json(json!({"value": [stored("b", "fic-b")]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(&fics))
        .respond_with(json(json!({"value": [stored("a", "fic-a")], "@odata.nextLink": next})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{fics}/fic-a")))
        .respond_with(json(stored("a", "fic-a")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(&fics))
        .and(body_json(fic("fic-c").graph_body().unwrap()))
        .respond_with(ResponseTemplate::new(201).set_body_json(stored("c", "fic-c")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("{fics}/c")))
        .and(body_json(json!({
            "issuer": fic("x").issuer, "subject": fic("x").subject, "audiences": fic("x").audiences, "description": "plug-ins"
        })))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{fics}/fic-a")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let g = graph(&server);
    let app = AppRef::ObjectId(OBJ);
    let all = g.list_fics(app).await.unwrap();
    assert_eq!(all.iter().map(|f| f.credential.name.as_str()).collect::<Vec<_>>(), ["fic-a", "fic-b"]);
    assert_eq!(g.get_fic(app, "fic-a").await.unwrap().id, "a");
    assert_eq!(g.create_fic(app, &fic("fic-c")).await.unwrap().id, "c");
    g.update_fic(app, "c", &fic("fic-c")).await.unwrap();
    g.delete_fic(app, "fic-a").await.unwrap();
}

#[tokio::test]
async fn upsert_by_name_reports_created_or_updated() {
    let server = MockServer::start().await;
    let url = format!("/v1.0/applications(appId='{APP}')/federatedIdentityCredentials(name='fic-a')");
    // Graph's documented behaviour: only with `Prefer: create-if-missing` does a missing FIC get created (201);
    // without it the PATCH is an update, and a missing FIC answers 404.
    Mock::given(method("PATCH"))
        .and(path(&url))
        .and(header("prefer", "create-if-missing"))
        .respond_with(ResponseTemplate::new(201).set_body_json(stored("a", "fic-a")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(&url))
        .and(header("prefer", "create-if-missing"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(&url))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": {
            "code": "Request_ResourceNotFound",
            "message": "Resource 'fic-a' does not exist or one of its queried reference-property objects are not present.",
            "innerError": {"date": "2026-11-22T10:00:00", "request-id": "0c1d2e3f-0000-0000-0000-000000000000", "client-request-id": "y"}
        }})))
        .mount(&server)
        .await;
    catch_all(&server).await;
    let g = graph(&server);
    assert_eq!(g.upsert_fic(AppRef::AppId(APP), &fic("fic-a")).await.unwrap(), UpsertOutcome::Created);
    assert_eq!(g.upsert_fic(AppRef::AppId(APP), &fic("fic-a")).await.unwrap(), UpsertOutcome::Updated);
}

#[tokio::test]
async fn graph_errors_keep_code_and_request_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "code": "Request_BadRequest",
            "message": "FederatedIdentityCredential with name fic-a already exists.",
            "innerError": {"date": "2026-11-22T10:00:00", "request-id": "5d6c4b1a-0000-0000-0000-000000000000", "client-request-id": "x"}
        }})))
        .mount(&server)
        .await;
    let err = graph(&server).create_fic(AppRef::ObjectId(OBJ), &fic("fic-a")).await.unwrap_err();
    assert_eq!(err.service_code(), Some("Request_BadRequest"));
    assert_eq!(err.request_id(), Some("5d6c4b1a-0000-0000-0000-000000000000"));
    assert!(err.to_string().contains("already exists"), "{err}");
}

#[tokio::test]
async fn invalid_fics_are_refused_before_any_request() {
    let server = MockServer::start().await;
    catch_all(&server).await;
    let g = graph(&server);
    let mut two = fic("fic-a");
    two.audiences.push("api://other".into());
    assert!(g.create_fic(AppRef::ObjectId(OBJ), &two).await.unwrap_err().to_string().contains("exactly one audience"));
    assert!(g.upsert_fic(AppRef::ObjectId(OBJ), &fic("bad name")).await.is_err());
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[test]
fn sovereign_scopes_follow_the_endpoint() {
    let g = GraphClient::new(&CloudProfile::from(Cloud::UsGov), token(), ClientOptions::default()).unwrap();
    assert_eq!(g.scope(), "https://graph.microsoft.us/.default");
    let mut dod = CloudProfile::from(Cloud::UsGov);
    dod.graph_endpoint = "https://dod-graph.microsoft.us".into();
    assert_eq!(
        GraphClient::new(&dod, token(), ClientOptions::default()).unwrap().scope(),
        "https://dod-graph.microsoft.us/.default"
    );
    let plain = ClientOptions {
        base_url: Some("http://graph.example.test/v1.0/".parse().unwrap()),
        ..ClientOptions::default()
    };
    let err = GraphClient::new(&CloudProfile::default(), token(), plain).unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
}

#[tokio::test]
async fn application_and_service_principal_creation() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/applications"))
        .and(query_param("$filter", "displayName eq 'O''Brien plug-ins'"))
        .respond_with(json(json!({"value": []})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1.0/applications"))
        // Tagged as made by this tool (Graph's `application.tags`), so that a teardown can tell.
        .and(body_json(json!({"displayName": "O'Brien plug-ins", "signInAudience": "AzureADMyOrg", "tags": ["dataverse-mi"]})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": OBJ, "appId": APP, "displayName": "O'Brien plug-ins", "passwordCredentials": [], "keyCredentials": []})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1.0/servicePrincipals"))
        .and(body_json(json!({"appId": APP})))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": "22222222-0000-0000-0000-000000000000", "appId": APP})),
        )
        .mount(&server)
        .await;
    catch_all(&server).await;
    let g = graph(&server);
    assert!(g.find_applications_by_display_name("O'Brien plug-ins").await.unwrap().is_empty());
    let app = g.create_application("O'Brien plug-ins").await.unwrap();
    assert_eq!(app.app_id, APP);
    let sp = g.create_service_principal(app.app_id).await.unwrap();
    assert_eq!(sp.app_id, APP);
}

#[tokio::test]
async fn service_principal_by_app_id() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/servicePrincipals(appId='{APP}')")))
        .and(query_param("$select", "id,appId"))
        .respond_with(json(json!({"id": "22222222-0000-0000-0000-000000000000", "appId": APP})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/servicePrincipals(appId='{APP}')")))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"error": {"code": "Request_ResourceNotFound", "message": "Resource does not exist."}}),
        ))
        .mount(&server)
        .await;
    catch_all(&server).await;
    let g = graph(&server);
    let sp = g.get_service_principal(APP).await.unwrap();
    assert_eq!(sp.id.to_string(), "22222222-0000-0000-0000-000000000000");
    let gone = g.get_service_principal(APP).await.unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
}

/// FIC creates in one JSON batch, answered in the shape of Graph's "JSON batching" page: `responses` in any order,
/// each with `id`, `status`, `headers`, `body`; one of them a failure.
#[tokio::test]
async fn fic_creates_in_one_json_batch() {
    let server = MockServer::start().await;
    catch_all(&server).await;
    let app = Uuid::parse_str("0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b").unwrap();
    let url = format!("/applications(appId='{app}')/federatedIdentityCredentials");
    Mock::given(method("POST"))
        .and(path("/v1.0/$batch"))
        .and(body_json(json!({"requests": [
            {"id": "1", "method": "POST", "url": url, "headers": {"Content-Type": "application/json"}, "body": fic("plugins-dev").graph_body().unwrap()},
            {"id": "2", "method": "POST", "url": url, "headers": {"Content-Type": "application/json"}, "body": fic("plugins-test").graph_body().unwrap()},
        ]})))
        .respond_with(json(json!({"responses": [
            {"id": "2", "status": 409, "headers": {"Content-Type": "application/json"},
             "body": {"error": {"code": "Request_BadRequest", "message": "FederatedIdentityCredential with name plugins-test already exists."}}},
            {"id": "1", "status": 201, "headers": {"Content-Type": "application/json"}, "body": stored("f1", "plugins-dev")},
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let results =
        graph(&server).create_fics_batch(AppRef::AppId(app), &[fic("plugins-dev"), fic("plugins-test")]).await;
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].as_ref().unwrap().credential.name, "plugins-dev", "matched by id, not by position");
    let err = results[1].as_ref().unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(409), "{err:?}");
    assert_eq!(err.service_code(), Some("Request_BadRequest"));
}

/// A whole batch that fails (here throttled past the retries) is each create's failure as it is: a caller can still
/// ask `is_throttled()` (it used to be an `InvalidInput` for every item).
#[tokio::test]
async fn a_throttled_batch_is_throttled_for_every_create() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1.0/$batch"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "0")
                .set_body_json(json!({"error": {"code": "TooManyRequests", "message": "Too many requests."}})),
        )
        .mount(&server)
        .await;
    catch_all(&server).await;
    let results =
        graph(&server).create_fics_batch(AppRef::AppId(APP), &[fic("plugins-dev"), fic("plugins-test")]).await;
    assert_eq!(results.len(), 2);
    for r in results {
        let err = r.unwrap_err();
        assert!(err.is_throttled(), "{err:?}");
        assert_eq!(err.service_code(), Some("TooManyRequests"));
    }
}

/// A managed identity's service principal as Graph answers it (`servicePrincipalType` `ManagedIdentity`, its ARM
/// resource id among `alternativeNames`, the resource group in lower case as Graph writes it), and an
/// application's: the audit tells them apart and finds the identity's resource id.
#[tokio::test]
async fn a_managed_identitys_service_principal_names_its_resource_id() {
    use dataverse_mi::clients::graph::requests::directory_principal;
    let server = MockServer::start().await;
    let mi = uuid::Uuid::from_u128(0x6a3e9f2c_0000_4000_8000_0000000000aa);
    let resource = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourcegroups/rg-plugins/providers/Microsoft.ManagedIdentity/userAssignedIdentities/dataverse-plugin-mi";
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/servicePrincipals(appId='{mi}')")))
        .and(query_param("$select", "id,appId,servicePrincipalType,alternativeNames"))
        .respond_with(json(json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals(id,appId,servicePrincipalType,alternativeNames)/$entity",
            "id": OBJ, "appId": mi, "servicePrincipalType": "ManagedIdentity",
            "alternativeNames": ["isExplicit=True", resource]
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/servicePrincipals(appId='{APP}')")))
        .respond_with(json(
            json!({"id": OBJ, "appId": APP, "servicePrincipalType": "Application", "alternativeNames": []}),
        ))
        .mount(&server)
        .await;
    catch_all(&server).await;
    let client = graph(&server);
    let found = client.send(directory_principal(mi)).await.unwrap();
    assert_eq!(found.user_assigned_resource_id(), Some(resource));
    let app = client.send(directory_principal(APP)).await.unwrap();
    assert_eq!(app.user_assigned_resource_id(), None);
}
