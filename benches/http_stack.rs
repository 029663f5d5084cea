//! One request round trip through the whole client stack (the pipeline of policies: time budget, retry, concurrency
//! limit, origin guard, bearer token, tracing span, counter; then the reqwest transport and JSON decoding with
//! paths) against a loopback server, next to a bare reqwest call doing the same request and decoding in the same
//! run; and the pipeline alone, over a transport that answers at once, against calling that transport directly.
//! The target: the pipeline costs less than 3% of a loopback round trip.

use std::sync::Arc;

use bytes::Bytes;
use std::time::{Duration, SystemTime};

use criterion::Criterion;

mod support;
use dataverse_mi::auth::{Secret, StaticToken};
use dataverse_mi::clients::{ClientOptions, DataverseClient, OrgUrl, WhoAmI};
use dataverse_mi::http::Transport;
use dataverse_mi::testkit::{ReplayTransport, replay_response};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = rt.block_on(async {
        // Without recording: wiremock otherwise keeps every request, slowing whichever benchmark runs second.
        let server = MockServer::builder().disable_request_recording().start().await;
        Mock::given(method("GET"))
            .and(path("/api/data/v9.2/WhoAmI"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "@odata.context": "https://contoso.crm.dynamics.com/api/data/v9.2/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
                "BusinessUnitId": "00000000-0000-0000-0000-00000000000b",
                "UserId": "00000000-0000-0000-0000-00000000000a",
                "OrganizationId": "00000000-0000-0000-0000-00000000000c"
            })))
            .mount(&server)
            .await;
        server
    });
    let url = format!("{}/api/data/v9.2/WhoAmI", server.uri());
    let token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.bench.token";
    let credential = Arc::new(StaticToken::new(Secret::new(token), SystemTime::now() + Duration::from_secs(7200)));
    let client = {
        let _guard = rt.enter();
        DataverseClient::new(OrgUrl::loopback_for_testing(&server.uri()).unwrap(), credential, ClientOptions::default())
            .unwrap()
    };
    let bare = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(120))
        .build()
        .unwrap();

    let mut c = Criterion::default().configure_from_args();
    c.bench_function("round_trip/bare_reqwest", |b| {
        b.to_async(&rt).iter(|| async {
            let r = bare
                .get(&url)
                .bearer_auth(token)
                .header("accept", "application/json")
                .header("odata-maxversion", "4.0")
                .header("odata-version", "4.0")
                .send()
                .await
                .unwrap();
            let body = r.bytes().await.unwrap();
            serde_json::from_slice::<WhoAmI>(&body).unwrap()
        })
    });
    c.bench_function("round_trip/full_stack", |b| b.to_async(&rt).iter(|| async { client.who_am_i().await.unwrap() }));

    // The loopback round trip varies by several percent from run to run, as much as the stack costs; so the
    // stack's own cost is also measured alone: the same call through a transport that answers at once,
    // against calling that transport and decoding directly.
    // The crate's replay transport, keeping no request (the benchmark sends millions).
    let canned = Arc::new(
        ReplayTransport::answering_all(replay_response(
            200,
            &[("content-type", "application/json")],
            Bytes::from_static(br#"{"BusinessUnitId":"00000000-0000-0000-0000-00000000000b","UserId":"00000000-0000-0000-0000-00000000000a","OrganizationId":"00000000-0000-0000-0000-00000000000c"}"#),
        ))
        .without_capture(),
    );
    let offline = {
        let _guard = rt.enter();
        let options = ClientOptions { transport: Some(canned.clone()), ..ClientOptions::default() };
        let credential = Arc::new(StaticToken::new(Secret::new(token), SystemTime::now() + Duration::from_secs(7200)));
        DataverseClient::new(OrgUrl::parse("https://contoso.crm.dynamics.com").unwrap(), credential, options).unwrap()
    };
    c.bench_function("stack_alone/canned_transport_direct", |b| {
        b.to_async(&rt).iter(|| async {
            let request = http::Request::get("https://contoso.crm.dynamics.com/api/data/v9.2/WhoAmI")
                .header("authorization", format!("Bearer {token}"))
                .body(bytes::Bytes::new())
                .unwrap();
            let response = canned.send(request).await.unwrap();
            serde_json::from_slice::<WhoAmI>(response.body()).unwrap()
        })
    });
    c.bench_function("stack_alone/through_the_stack", |b| {
        b.to_async(&rt).iter(|| async { offline.who_am_i().await.unwrap() })
    });
    c.final_summary();

    if let (Some(direct), Some(stacked), Some(bare)) = (
        support::estimate_ns("stack_alone/canned_transport_direct"),
        support::estimate_ns("stack_alone/through_the_stack"),
        support::estimate_ns("round_trip/bare_reqwest"),
    ) {
        println!(
            "pipeline alone: {:.2} µs per request = {:.1}% of a bare loopback round trip (target < 3%)",
            (stacked - direct) / 1000.0,
            (stacked - direct) / bare * 100.0
        );
    }
    if let (Some(bare), Some(stack)) =
        (support::estimate_ns("round_trip/bare_reqwest"), support::estimate_ns("round_trip/full_stack"))
    {
        println!(
            "overhead: full stack {:.1} µs vs bare reqwest {:.1} µs = {:+.1}% (target < 10%)",
            stack / 1000.0,
            bare / 1000.0,
            (stack / bare - 1.0) * 100.0
        );
    }
}
