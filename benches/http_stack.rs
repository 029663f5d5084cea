//! One request round trip through the whole client stack (retry policy, token cache, concurrency limit,
//! reqwest transport, JSON decoding with paths) against a loopback server, next to a bare reqwest call doing
//! the same request and decoding in the same run. The target: the stack adds less than 10%.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::Criterion;

mod support;
use dataverse_mi::auth::{Secret, StaticToken};
use dataverse_mi::clients::{ClientOptions, DataverseClient, OrgUrl, WhoAmI};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
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
    c.final_summary();

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
