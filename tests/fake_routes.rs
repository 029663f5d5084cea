//! The fake's routes as a client meets them: each route of the table is served by its own handler, a path served
//! with another method is 405 and one nothing serves is 404 (in the service's error shape), and a batch inside a
//! batch is refused.
#![cfg(feature = "testkit")]

use bytes::Bytes;
use dataverse_mi::fic::FederatedIdentityCredential;
use dataverse_mi::testkit::{FakeOptions, FakePlatform};
use serde_json::{Value, json};
use uuid::Uuid;

const TENANT: Uuid = Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47);
const APP: Uuid = Uuid::from_u128(0x0b5a7d2c_6f4e_4d3a_9c1b_2a8e7f6d5c4b);
const HOST: &str = "contoso.crm.dynamics.com";

async fn send(fake: &FakePlatform, method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let request = http::Request::builder().method(method).uri(url).body(body).unwrap();
    let response = fake.transport().send(request).await.unwrap();
    let body = if response.body().is_empty() { Value::Null } else { serde_json::from_slice(response.body()).unwrap() };
    (response.status().as_u16(), body)
}

fn fake() -> FakePlatform {
    let fake = FakePlatform::new(FakeOptions::default());
    fake.add_environment(HOST, TENANT);
    fake.add_application(APP, "Contoso plug-ins");
    let fic = FederatedIdentityCredential {
        name: "env-one".into(),
        issuer: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0".into(),
        subject: "/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/a/LH1aC05vOk2cGyqOf21cSw/n/plugin/e/00000000-0000-0000-0000-000000000001/h/ab".into(),
        audiences: vec!["api://AzureADTokenExchange".into()],
        description: None,
    };
    fake.seed_graph_fic(APP, fic);
    fake
}

#[tokio::test]
async fn a_fic_is_read_and_deleted_by_its_name_key() {
    let fake = fake();
    let by_name = format!(
        "https://graph.microsoft.com/v1.0/applications(appId='{APP}')/federatedIdentityCredentials(name='env-one')"
    );
    let (status, body) = send(&fake, "GET", &by_name, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "env-one");
    assert_eq!(fake.requests().last().unwrap().route, "GET graph fic upsert");
    let (status, _) = send(&fake, "DELETE", &by_name, None).await;
    assert_eq!(status, 204);
    assert!(fake.graph_fics(APP).is_empty());
    let (status, body) = send(&fake, "GET", &by_name, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("Request_ResourceNotFound")));
}

#[tokio::test]
async fn a_path_served_with_another_method_is_405_and_an_unserved_one_404_in_the_services_shape() {
    let fake = fake();
    let (status, body) = send(&fake, "DELETE", &format!("https://{HOST}/api/data/v9.2/WhoAmI"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (405, Some("MethodNotAllowed")));
    let (status, body) = send(&fake, "GET", &format!("https://{HOST}/api/data/v9.2/solutions"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("0x80060888")));
    assert_eq!(fake.requests().last().unwrap().route, "GET dataverse unknown");
    let (status, body) = send(&fake, "GET", "https://graph.microsoft.com/v1.0/groups", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("Request_ResourceNotFound")));
}

#[tokio::test]
async fn a_batch_inside_a_graph_batch_is_refused_and_its_neighbours_answered() {
    let fake = fake();
    let batch = json!({"requests": [
        {"id": "1", "method": "POST", "url": "/$batch", "body": {"requests": []}, "headers": {"Content-Type": "application/json"}},
        {"id": "2", "method": "GET", "url": format!("/applications(appId='{APP}')")},
    ]});
    let (status, body) = send(&fake, "POST", "https://graph.microsoft.com/v1.0/$batch", Some(batch)).await;
    assert_eq!(status, 200);
    let answer = |id: &str| body["responses"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(answer("1")["status"], 400);
    assert_eq!(answer("2")["status"], 200);
    assert_eq!(answer("2")["body"]["appId"], APP.to_string());
}
