//! Helpers shared by the client tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dataverse_mi::auth::{Secret, StaticToken, TokenSource};
use dataverse_mi::clients::{ClientOptions, DataverseClient, OrgUrl};
use dataverse_mi::http::RetryOptions;
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.secret-payload.signature";

pub fn token() -> Arc<dyn TokenSource> {
    Arc::new(StaticToken::new(Secret::new(TOKEN), SystemTime::now() + Duration::from_secs(3600)))
}

/// Fast retries with no jitter: the tests count requests, they do not wait.
pub fn options() -> ClientOptions {
    ClientOptions {
        retry: RetryOptions {
            max_attempts: 3,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            jitter: 0.0,
            ..RetryOptions::default()
        },
        ..ClientOptions::default()
    }
}

pub fn dataverse(server: &MockServer) -> DataverseClient {
    DataverseClient::new(OrgUrl::loopback_for_testing(&server.uri()).unwrap(), token(), options()).unwrap()
}

/// Answers every request no other mock took with 500 and a message saying so, so a missing mock fails clearly.
pub async fn catch_all(server: &MockServer) {
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500).set_body_json(serde_json::json!({
            "error": {"code": "NoMock", "message": "no mock for this request"}
        })))
        .with_priority(u8::MAX)
        .mount(server)
        .await;
}

pub fn json(value: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(value)
}

/// A valid FIC named `name` (issuer and subject of the public cloud's documented shape).
pub fn fic(name: &str) -> dataverse_mi::fic::FederatedIdentityCredential {
    dataverse_mi::fic::FederatedIdentityCredential {
        name: name.into(),
        issuer: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0".into(),
        subject: "/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/x/h/y".into(),
        audiences: vec!["api://AzureADTokenExchange".into()],
        description: Some("plug-ins".into()),
    }
}
