//! Throttling inside batches: a Graph batch item, a Dataverse `$batch` item or a change set answered 429 is sent again
//! after its own `Retry-After`, never at once; waits asserted exactly on tokio's paused clock. The answers are in the
//! shapes of Graph's "JSON batching" page and Learn's "Execute batch operations using the Web API".
#![cfg(feature = "testkit")]

mod common;

use common::fic;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dataverse_mi::clients::{AppRef, Batch, ClientOptions, DataverseClient, GraphClient, OrgUrl, dataverse::requests};
use dataverse_mi::cloud::{Cloud, CloudProfile};
use dataverse_mi::http::RetryOptions;
use dataverse_mi::testkit::{ReplayEvent, ReplayTransport};
use tokio::time::Instant;
use uuid::Uuid;

/// The client options over a replay of `answers` (the testkit's replay transport: each request captured with
/// when it came).
fn options(script: &Arc<ReplayTransport>) -> ClientOptions {
    ClientOptions {
        transport: Some(script.clone()),
        retry: RetryOptions { jitter: 0.0, initial_delay: Duration::from_millis(100), ..RetryOptions::default() },
        ..ClientOptions::default()
    }
}

/// A replay answering `answers` in order, whatever the requests.
fn replay(answers: impl IntoIterator<Item = http::Response<Bytes>>) -> Arc<ReplayTransport> {
    Arc::new(ReplayTransport::new(answers.into_iter().map(ReplayEvent::answer).collect()))
}

fn graph_answer(responses: serde_json::Value) -> http::Response<Bytes> {
    let body = serde_json::to_vec(&serde_json::json!({ "responses": responses })).unwrap();
    http::Response::builder().status(200).header("content-type", "application/json").body(Bytes::from(body)).unwrap()
}

fn stored(name: &str) -> serde_json::Value {
    serde_json::json!({
        "id": "f1",
        "name": name,
        "issuer": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
        "subject": "/eid1/c/pub/t/v4j5cvGGr0GRqy180BHbRw/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/x/h/y",
        "audiences": ["api://AzureADTokenExchange"]
    })
}

#[tokio::test(start_paused = true)]
async fn a_graph_batch_item_answered_429_is_sent_again_after_its_own_retry_after() {
    let script = replay([
        graph_answer(serde_json::json!([
            {"id": "2", "status": 429, "headers": {"Retry-After": "7", "Content-Type": "application/json"},
             "body": {"error": {"code": "TooManyRequests", "message": "Too many requests"}}},
            {"id": "1", "status": 201, "headers": {"Content-Type": "application/json"}, "body": stored("fic-a")},
        ])),
        graph_answer(serde_json::json!([
            {"id": "1", "status": 201, "headers": {"Content-Type": "application/json"}, "body": stored("fic-b")},
        ])),
    ]);
    let graph = GraphClient::new(&CloudProfile::from(Cloud::Public), common::token(), options(&script)).unwrap();
    let started = Instant::now();
    let results = graph.create_fics_batch(AppRef::AppId(Uuid::from_u128(1)), &[fic("fic-a"), fic("fic-b")]).await;
    assert_eq!(
        results.iter().map(|r| r.as_ref().unwrap().credential.name.clone()).collect::<Vec<_>>(),
        ["fic-a", "fic-b"]
    );
    let seen = script.requests();
    assert_eq!(seen.len(), 2, "one batch, then the throttled item alone");
    assert_eq!(seen[1].at - started, Duration::from_secs(7), "after the item's own Retry-After, not at once");
    assert!(
        seen[1].body_text().contains(r#""name":"fic-b""#) && !seen[1].body_text().contains(r#""name":"fic-a""#),
        "{}",
        seen[1].body_text()
    );
}

/// A part of a batch answer: status, headers, JSON body.
type Part<'a> = (u16, &'a [(&'a str, &'a str)], &'a str);

fn multipart(parts: &[Part<'_>]) -> http::Response<Bytes> {
    let mut body = String::new();
    for (status, headers, json) in parts {
        let reason = http::StatusCode::from_u16(*status).unwrap().canonical_reason().unwrap_or("");
        let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        body.push_str(&format!(
            "--batchresponse_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 {status} {reason}\r\nContent-Type: application/json; odata.metadata=minimal\r\n{extra}OData-Version: 4.0\r\n\r\n{json}\r\n"
        ));
    }
    body.push_str("--batchresponse_1--\r\n");
    http::Response::builder()
        .status(200)
        .header("content-type", "multipart/mixed; boundary=batchresponse_1")
        .body(Bytes::from(body))
        .unwrap()
}

const THROTTLED: &str = r#"{"error":{"code":"0x80072322","message":"Number of requests exceeded the limit of 6000 over time window of 300 seconds."}}"#;

#[tokio::test(start_paused = true)]
async fn a_dataverse_batch_item_answered_429_is_sent_again_after_its_own_retry_after() {
    let script = replay([
        multipart(&[(200, &[], r#"{"value":[]}"#), (429, &[("Retry-After", "4")], THROTTLED)]),
        multipart(&[(200, &[], r#"{"value":[]}"#)]),
    ]);
    let org = OrgUrl::parse("https://contoso.crm.dynamics.com").unwrap();
    let client = DataverseClient::new(org, common::token(), options(&script)).unwrap();
    let mut batch = Batch::new();
    let rows = batch.add(requests::managed_identities(None));
    let assemblies = batch.add(requests::plugin_assemblies());
    let started = Instant::now();
    let mut answers = client.send_batch(&batch).await;
    assert!(answers.take(rows).unwrap().is_empty());
    assert!(answers.take(assemblies).unwrap().is_empty(), "the throttled read, answered the second time");
    assert_eq!(answers.round_trips(), 2);
    let seen = script.requests();
    assert_eq!(seen[1].at - started, Duration::from_secs(4));
    assert!(
        seen[1].body_text().contains("pluginassemblies") && !seen[1].body_text().contains("managedidentities"),
        "{}",
        seen[1].body_text()
    );
}

#[tokio::test(start_paused = true)]
async fn a_change_set_answered_429_is_sent_again_after_its_retry_after_and_keeps_its_kind_past_the_budget() {
    let row = dataverse_mi::entities::NewManagedIdentity::for_plugins(
        Uuid::from_u128(1),
        Uuid::from_u128(2),
        Uuid::from_u128(3),
        dataverse_mi::subject::SubjectFormatVersion::V2,
    );
    let script =
        replay([multipart(&[(429, &[("Retry-After", "3")], THROTTLED)]), multipart(&[(204, &[], ""), (204, &[], "")])]);
    let org = OrgUrl::parse("https://contoso.crm.dynamics.com").unwrap();
    let client = DataverseClient::new(org.clone(), common::token(), options(&script)).unwrap();
    let mut writes = Batch::new();
    writes.add(requests::update_managed_identity(row.id, &Default::default()));
    writes.add(requests::bind(dataverse_mi::clients::ComponentKind::PluginAssembly, Uuid::from_u128(4), row.id));
    let started = Instant::now();
    client.send_change_set(&writes).await.unwrap();
    let seen = script.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].at - started, Duration::from_secs(3));

    // Throttled past the retries: the change set's error is a 429, `is_throttled`.
    let script = replay((0..5).map(|_| multipart(&[(429, &[("Retry-After", "1")], THROTTLED)])));
    let client = DataverseClient::new(org, common::token(), options(&script)).unwrap();
    let err = client.send_change_set(&writes).await.unwrap_err();
    assert!(err.is_throttled(), "{err:?}");
    assert_eq!(script.requests().len(), 5, "RetryOptions::max_attempts rounds");
}
