//! The request pipeline seen through a scripted transport (the seam callers plug their own transport into):
//! retry waits asserted exactly on tokio's paused clock, the concurrency limit, and what never leaks.

#![cfg(feature = "testkit")]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{TOKEN, token};
use dataverse_mi::clients::{ApiError, ClientOptions, DataverseClient, OrgUrl};
use dataverse_mi::http::{RetryOptions, TransportError, TransportErrorKind};
use dataverse_mi::testkit::{ReplayEvent, ReplayTransport};
use tokio::time::Instant;

type Scripted = Result<http::Response<Bytes>, TransportError>;

/// The testkit's replay transport: answers from a script (then WhoAmI), capturing every request and when.
type Recorder = ReplayTransport;

fn recorder(script: Vec<Scripted>) -> Arc<Recorder> {
    let events = script
        .into_iter()
        .map(|s| match s {
            Ok(r) => ReplayEvent::answer(r),
            Err(e) => ReplayEvent::failure(e),
        })
        .collect();
    Arc::new(ReplayTransport::new(events).then_answering(ok_who_am_i()))
}

/// Every request's time of arrival.
fn times(t: &Recorder) -> Vec<Instant> {
    t.requests().iter().map(|r| r.at).collect()
}

fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Scripted {
    let mut b = http::Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    Ok(b.body(Bytes::from(body.to_owned())).unwrap())
}

fn ok_who_am_i() -> http::Response<Bytes> {
    let body = r#"{"UserId":"00000000-0000-0000-0000-00000000000a","BusinessUnitId":"00000000-0000-0000-0000-00000000000b","OrganizationId":"00000000-0000-0000-0000-00000000000c"}"#;
    http::Response::builder().status(200).body(Bytes::from(body)).unwrap()
}

fn client(transport: Arc<Recorder>, retry: RetryOptions) -> DataverseClient {
    let options = ClientOptions { retry, transport: Some(transport), ..ClientOptions::default() };
    DataverseClient::new(OrgUrl::parse("https://contoso.crm.dynamics.com").unwrap(), token(), options).unwrap()
}

fn exact() -> RetryOptions {
    RetryOptions { jitter: 0.0, ..RetryOptions::default() }
}

fn gaps(times: &[Instant]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(start_paused = true)]
async fn throttled_request_waits_what_the_server_says() {
    let t = recorder(vec![response(
        429,
        &[("retry-after", "7")],
        r#"{"error":{"code":"0x80072322","message":"slow down"}}"#,
    )]);
    let c = client(t.clone(), exact());
    c.who_am_i().await.unwrap();
    assert_eq!(gaps(&times(&t)), [Duration::from_secs(7)]);
    // The custom transport saw the real request, with the token, on the organization's host only.
    let seen = t.requests();
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].uri, "https://contoso.crm.dynamics.com/api/data/v9.2/WhoAmI");
    assert_eq!(seen[0].headers["authorization"], format!("Bearer {TOKEN}").as_str());
}

#[tokio::test(start_paused = true)]
async fn own_backoff_wins_when_longer_than_the_server_s() {
    let t = recorder(vec![response(503, &[("retry-after-ms", "100")], "")]);
    client(t.clone(), exact()).who_am_i().await.unwrap();
    assert_eq!(gaps(&times(&t)), [Duration::from_millis(800)]);
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_double_the_wait_and_report_the_attempts() {
    let t = recorder((0..5).map(|_| response(503, &[], "")).collect());
    let err = client(t.clone(), exact()).who_am_i().await.unwrap_err();
    assert_eq!(
        gaps(&times(&t)),
        [
            Duration::from_millis(800),
            Duration::from_millis(1600),
            Duration::from_millis(3200),
            Duration::from_millis(6400)
        ]
    );
    let ApiError::Service(e) = err else { panic!() };
    assert_eq!(e.attempts, 5);
    assert_eq!(e.status.as_u16(), 503);
}

#[tokio::test(start_paused = true)]
async fn no_retry_beyond_the_time_budget() {
    let t = recorder(vec![response(429, &[("retry-after", "600")], "")]);
    let retry = RetryOptions { max_elapsed: Duration::from_secs(60), ..exact() };
    let err = client(t.clone(), retry).who_am_i().await.unwrap_err();
    assert!(err.is_throttled());
    assert_eq!(t.requests().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn connection_failures_are_retried_for_safe_requests() {
    let t = recorder(vec![
        Err(TransportError::new(TransportErrorKind::Connection, "connection reset by peer")),
        Err(TransportError::new(TransportErrorKind::Timeout, "read timed out")),
    ]);
    client(t.clone(), exact()).who_am_i().await.unwrap();
    assert_eq!(gaps(&times(&t)), [Duration::from_millis(800), Duration::from_millis(1600)]);

    let t = recorder(vec![Err(TransportError::new(TransportErrorKind::Other, "bad request builder"))]);
    let err = client(t.clone(), exact()).who_am_i().await.unwrap_err();
    assert!(matches!(err, ApiError::Transport { attempts: 1, kind: TransportErrorKind::Other, .. }), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn seeded_jitter_is_bounded_and_reproducible() {
    let run = |seed| async move {
        let t = recorder((0..3).map(|_| response(503, &[], "")).collect());
        let retry = RetryOptions { jitter: 0.5, seed: Some(seed), max_attempts: 4, ..RetryOptions::default() };
        client(t.clone(), retry).who_am_i().await.unwrap();
        gaps(&times(&t))
    };
    let a = run(7).await;
    assert_eq!(a, run(7).await);
    assert_ne!(a, run(8).await);
    for (gap, full) in a.iter().zip([800u64, 1600, 3200]) {
        assert!(*gap <= Duration::from_millis(full) && *gap >= Duration::from_millis(full / 2), "{gap:?} vs {full}");
    }
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_limited_across_clones() {
    let t = Arc::new(ReplayTransport::answering_all(ok_who_am_i()).with_delay(Duration::from_millis(50)));
    let options = ClientOptions { max_concurrency: 3, transport: Some(t.clone()), ..ClientOptions::default() };
    let c = DataverseClient::new(OrgUrl::parse("https://contoso.crm.dynamics.com").unwrap(), token(), options).unwrap();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let c = if i % 2 == 0 { c.clone() } else { c.clone().clone() };
        tasks.push(tokio::spawn(async move { c.who_am_i().await.unwrap() }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(t.peak_in_flight(), 3);
    assert_eq!(t.requests().len(), 12);
}

/// A hostile or broken server's waits never crash the client: the largest `Retry-After` there is, after two
/// failed attempts, and absurd millisecond values. The call gives up at once, with the server's answer, instead of
/// waiting past its time budget.
#[tokio::test(start_paused = true)]
async fn absurd_server_waits_end_the_call_without_a_panic_or_a_wait() {
    for header in [("retry-after", "18446744073709551615"), ("retry-after-ms", "18446744073709551615")] {
        let t = recorder(vec![
            response(503, &[], ""),
            response(503, &[], ""),
            response(429, &[header], r#"{"error":{"code":"0x80072322","message":"slow down"}}"#),
        ]);
        let started = Instant::now();
        let err = client(t.clone(), exact()).who_am_i().await.unwrap_err();
        assert!(err.is_throttled(), "{err}");
        assert_eq!(t.requests().len(), 3, "no fourth attempt");
        assert_eq!(started.elapsed(), Duration::from_millis(800 + 1600), "only the own backoffs were waited");
    }
}

/// Option values at the edges are clamped, not a panic or a hang: NaN jitter, zero concurrency, huge concurrency
/// and backoff.
#[tokio::test(start_paused = true)]
async fn extreme_options_are_clamped() {
    let t = recorder(vec![response(503, &[], "")]);
    let retry = RetryOptions {
        jitter: f64::NAN,
        initial_delay: Duration::MAX,
        max_delay: Duration::MAX,
        max_elapsed: Duration::MAX,
        ..RetryOptions::default()
    };
    let options = ClientOptions { retry, max_concurrency: 0, transport: Some(t.clone()), ..ClientOptions::default() };
    let c = DataverseClient::new(OrgUrl::parse("https://contoso.crm.dynamics.com").unwrap(), token(), options).unwrap();
    // A huge backoff with a huge budget: the wait is capped, and zero concurrency still lets one request through.
    tokio::time::timeout(Duration::from_secs(3600), c.who_am_i()).await.expect("not a hang").unwrap();
    let options = ClientOptions { max_concurrency: usize::MAX, transport: Some(t), ..ClientOptions::default() };
    assert!(DataverseClient::new(OrgUrl::parse("https://contoso.crm.dynamics.com").unwrap(), token(), options).is_ok());
}

/// Counts fetches; each token is a JWT-shaped value naming who it was issued to.
#[derive(Debug, Default)]
struct Issuer(AtomicUsize);

#[async_trait::async_trait]
impl dataverse_mi::auth::TokenSource for Issuer {
    async fn token(&self, _scopes: &[&str]) -> Result<dataverse_mi::auth::AccessToken, dataverse_mi::auth::AuthError> {
        use base64::Engine as _;
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"app_displayname":"contoso-provisioner","appid":"0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b"}"#);
        Ok(dataverse_mi::auth::AccessToken {
            token: dataverse_mi::auth::Secret::new(format!("eyJhbGciOiJub25lIn0.{claims}.secret-signature-{n}")),
            expires_on: std::time::SystemTime::now() + Duration::from_secs(3600),
        })
    }
}

fn client_with(transport: Arc<Recorder>, tokens: Arc<Issuer>) -> DataverseClient {
    let options = ClientOptions { retry: exact(), transport: Some(transport), ..ClientOptions::default() };
    DataverseClient::new(OrgUrl::parse("https://contoso.crm.dynamics.com").unwrap(), tokens, options).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_401_is_retried_once_with_a_fresh_token() {
    let unauthorized = || {
        response(
            401,
            &[],
            r#"{"error":{"code":"0x80072560","message":"The user is not a member of the organization."}}"#,
        )
    };
    let tokens = Arc::new(Issuer::default());
    let t = recorder(vec![unauthorized()]);
    client_with(t.clone(), tokens.clone()).who_am_i().await.unwrap();
    assert_eq!(t.requests().len(), 2);
    assert_eq!(tokens.0.load(Ordering::SeqCst), 2, "the refused token was forgotten and a fresh one fetched");

    // Refused twice: an error that names the scope and the identity, never the token.
    let tokens = Arc::new(Issuer::default());
    let t = recorder(vec![unauthorized(), unauthorized()]);
    let err = client_with(t.clone(), tokens).who_am_i().await.unwrap_err();
    assert_eq!(t.requests().len(), 2, "once more, not again and again");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(401));
    let text = err.to_string();
    assert!(text.contains("https://contoso.crm.dynamics.com/.default"), "{text}");
    assert!(text.contains("contoso-provisioner (0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b)"), "{text}");
    assert!(!text.contains("secret-signature"), "{text}");
}

fn page_linking_to(next: &str) -> Scripted {
    response(200, &[], &format!(r#"{{"value":[],"@odata.nextLink":"{next}"}}"#))
}

/// A server whose paging never ends, or whose next link repeats, stops the read with a typed error after a bounded
/// number of pages.
#[tokio::test(start_paused = true)]
async fn paging_that_does_not_end_is_stopped() {
    let base = "https://contoso.crm.dynamics.com/api/data/v9.2/managedidentities";
    // The second page links back to the first page's next link.
    let t = recorder(vec![
        page_linking_to(&format!("{base}?$skiptoken=1")),
        page_linking_to(&format!("{base}?$skiptoken=1")),
    ]);
    let err = client(t.clone(), exact()).list_managed_identities(None).await.unwrap_err();
    assert!(matches!(err, ApiError::Paging { pages: 2, .. }), "{err}");
    assert!(err.to_string().contains("repeats"), "{err}");
    assert_eq!(t.requests().len(), 2);

    // The same guard when the pages are streamed one at a time.
    let t = recorder(vec![
        page_linking_to(&format!("{base}?$skiptoken=1")),
        page_linking_to(&format!("{base}?$skiptoken=1")),
    ]);
    let c = client(t.clone(), exact());
    let pages: Vec<_> = futures_util::StreamExt::collect(c.plugin_trace_log_pages("2026-01-01T00:00:00Z", None)).await;
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(matches!(pages.last(), Some(Err(ApiError::Paging { pages: 2, .. }))), "{pages:?}");
    assert_eq!(t.requests().len(), 2);

    // Links that never end: at most max_pages requests.
    let t = recorder((0..100).map(|i| page_linking_to(&format!("{base}?$skiptoken={i}"))).collect());
    let options =
        ClientOptions { retry: exact(), transport: Some(t.clone()), max_pages: 5, ..ClientOptions::default() };
    let c = DataverseClient::new(OrgUrl::parse("https://contoso.crm.dynamics.com").unwrap(), token(), options).unwrap();
    let err = c.list_managed_identities(None).await.unwrap_err();
    assert!(matches!(err, ApiError::Paging { pages: 5, .. }), "{err}");
    assert!(err.to_string().contains("more than 5 pages"), "{err}");
    assert_eq!(t.requests().len(), 5);
}

/// What gateways and broken servers answer: typed errors with the status, never a panic.
#[tokio::test(start_paused = true)]
async fn malformed_answers_are_typed_errors() {
    let html = "<html><body><h1>502 Bad Gateway</h1><p>The proxy could not reach the server.</p></body></html>";
    let cases: Vec<(u16, &str, &str)> = vec![
        (502, html, "502"),
        (200, r#"{"UserId":"00000000-0000-0000-0000-00000000000a","Busin"#, "who am i"),
        (200, r#"{"UserId":42,"BusinessUnitId":[],"OrganizationId":null}"#, "UserId"),
        (200, "\u{0}\u{1}binary", "who am i"),
        (404, r#"{"error":"not an object"}"#, "404"),
    ];
    for (status, body, words) in cases {
        // 502 is retried: give it as many times as the policy tries.
        let t = recorder((0..2).map(|_| response(status, &[], body)).collect());
        let err = client(t, RetryOptions { max_attempts: 2, ..exact() }).who_am_i().await.unwrap_err();
        assert!(err.to_string().contains(words), "{words}: {err}");
    }
    // A header value that is not text (an invalid UTF-8 request id) is ignored, not a panic.
    let mut b = http::Response::builder().status(429);
    b = b.header("x-ms-request-id", http::HeaderValue::from_bytes(&[0xff, 0xfe]).unwrap()).header("retry-after", "x");
    let t = recorder(vec![Ok(b.body(Bytes::new()).unwrap())]);
    client(t, exact()).who_am_i().await.unwrap();
}

/// The engine's own clients (made by the production constructor) share one token cache: a 401 drops the refused
/// token where every client looks, so the retry really sends a fresh one. Before, the connector cached tokens a
/// second time and the retry sent the refused token again.
#[cfg(feature = "testkit")]
#[tokio::test(flavor = "multi_thread")]
async fn a_401_through_the_engines_clients_fetches_a_fresh_token() {
    use dataverse_mi::provision::{EnvironmentSpec, IdentitySpec, ProvisionOptions, ProvisionSpec, Provisioner};
    use dataverse_mi::testkit::{FakeOptions, FakePlatform, Fault};
    let fake = FakePlatform::new(FakeOptions::default());
    let app = uuid::Uuid::from_u128(0x0b5a7d2c_6f4e_4d3a_9c1b_2a8e7f6d5c4b);
    fake.add_application(app, "Contoso plug-ins");
    fake.add_environment("contoso.crm.dynamics.com", uuid::Uuid::from_u128(0x72f988bf_86f1_41af_91ab_2d7cd011db47));
    let cert = format!("{}/examples/contoso-plugins.cer", env!("CARGO_MANIFEST_DIR"));
    let certificate = dataverse_mi::cert::Certificate::from_file(&cert).unwrap().certificate;
    fake.add_plugin_assembly("contoso.crm.dynamics.com", "Contoso.Plugins", Some(certificate));
    let spec = ProvisionSpec::new(
        IdentitySpec::app_registration(app),
        vec![
            EnvironmentSpec::new("https://contoso.crm.dynamics.com")
                .with_assemblies(["Contoso.Plugins"])
                .with_certificate(dataverse_mi::provision::CertificateSpec::File {
                    path: cert.into(),
                    password_env: None,
                }),
        ],
    );
    let server = fake.start().await;
    let tokens = Arc::new(Issuer::default());
    let platform = dataverse_mi::clients::Platform::new(
        tokens.clone(),
        ClientOptions { retry: exact(), ..ClientOptions::default() },
    )
    .unwrap()
    .with_endpoints(server.endpoints());
    let engine =
        Provisioner::for_spec(&spec, &platform, ProvisionOptions { batch: false, ..ProvisionOptions::default() })
            .unwrap();
    // Warm the cache, then have Dataverse refuse the cached token once.
    engine.plan(&spec).await.unwrap();
    let before = tokens.0.load(Ordering::SeqCst);
    fake.inject(Fault::status("GET dataverse RetrieveCurrentOrganization".parse().unwrap(), 401).times(1));
    engine.plan(&spec).await.unwrap();
    assert_eq!(tokens.0.load(Ordering::SeqCst), before + 1, "the refused token was dropped and a fresh one fetched");
    let refused = fake.requests().iter().filter(|r| r.status == 401).count();
    assert_eq!(refused, 1, "the retry went out with the fresh token and was accepted");
}

/// The time budget covers the whole call: a server that sends its body a byte every two seconds (here: a transport
/// that takes 300 s to finish the response) ends the call when `max_elapsed` does, not at the transport's own
/// deadline.
#[tokio::test(start_paused = true)]
async fn the_time_budget_ends_a_call_whose_body_never_finishes() {
    let t = Arc::new(ReplayTransport::answering_all(ok_who_am_i()).with_delay(Duration::from_secs(300)));
    let c = client(t.clone(), RetryOptions { max_elapsed: Duration::from_secs(5), ..exact() });
    let started = Instant::now();
    let err = c.who_am_i().await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(5), "{err}");
    assert!(err.is_timeout(), "{err:?}");
    assert!(err.to_string().contains("time budget of 5s"), "{err}");
    assert_eq!(t.requests().len(), 1);
}

/// A caller's own policies: per-call ones run once, per-try ones on every attempt and see its number; what they
/// add reaches the transport.
#[tokio::test(start_paused = true)]
async fn callers_policies_run_per_call_and_per_try() {
    use dataverse_mi::clients::policy::{Context, Next, Policy, PolicyResult};

    #[derive(Debug, Default)]
    struct Tally {
        header: &'static str,
        attempts: Mutex<Vec<u32>>,
    }
    #[async_trait::async_trait]
    impl Policy for Tally {
        async fn send(&self, ctx: &Context, request: &mut http::Request<Bytes>, next: Next<'_>) -> PolicyResult {
            self.attempts.lock().unwrap().push(ctx.attempt());
            assert_eq!((ctx.operation(), ctx.service()), ("who am i", dataverse_mi::clients::Service::Dataverse));
            request.headers_mut().insert(self.header, http::HeaderValue::from_static("1"));
            next.send(ctx, request).await
        }
    }
    let per_call = Arc::new(Tally { header: "x-per-call", ..Default::default() });
    let per_try = Arc::new(Tally { header: "x-per-try", ..Default::default() });
    // Sees each request as the transport gets it.
    let t = recorder(vec![response(503, &[], ""), response(503, &[], "")]);
    let options = ClientOptions {
        retry: exact(),
        transport: Some(t.clone()),
        per_call_policies: vec![per_call.clone()],
        per_try_policies: vec![per_try.clone()],
        ..ClientOptions::default()
    };
    let c = DataverseClient::new(OrgUrl::parse("https://contoso.crm.dynamics.com").unwrap(), token(), options).unwrap();
    c.who_am_i().await.unwrap();
    assert_eq!(*per_call.attempts.lock().unwrap(), [0], "before the retry policy: once, no attempt yet");
    assert_eq!(*per_try.attempts.lock().unwrap(), [1, 2, 3]);
    let seen = t.requests();
    assert_eq!(seen.len(), 3);
    for r in &seen {
        for h in ["x-per-call", "x-per-try", "authorization"] {
            assert!(r.headers.contains_key(h), "{h} missing from {:?}", r.headers);
        }
    }
}

/// ARM's concurrent-FIC-write 409 is retried by ARM's classifier, and only there: Graph's same answer is final.
#[tokio::test(start_paused = true)]
async fn each_service_classifies_its_own_retries() {
    use dataverse_mi::clients::{ArmClient, CONCURRENT_FIC_WRITES, UserAssignedIdentityRef};
    let busy = || response(409, &[], &format!(r#"{{"error":{{"code":"{CONCURRENT_FIC_WRITES}","message":"busy"}}}}"#));
    let t = recorder(vec![busy(), busy(), response(200, &[], "")]);
    let options = ClientOptions { retry: exact(), transport: Some(t.clone()), ..ClientOptions::default() };
    let cloud = dataverse_mi::cloud::CloudProfile::from(dataverse_mi::cloud::Cloud::Public);
    let arm = ArmClient::new(&cloud, token(), options).unwrap();
    let identity = UserAssignedIdentityRef {
        subscription_id: "00000000-0000-0000-0000-000000000001".into(),
        resource_group: "rg".into(),
        name: "mi".into(),
    };
    arm.delete_fic(&identity, "fic").await.unwrap();
    assert_eq!(t.requests().len(), 3);
}

/// Errors keep their sources: the transport's error with its cause chain (the `reqwest::Error` of the default
/// transport), and the JSON decoder's error, reachable through `std::error::Error::source`.
#[cfg(feature = "reqwest")]
#[tokio::test]
async fn errors_keep_their_sources() {
    use std::error::Error as _;
    // A loopback port nobody listens on: the connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let options = ClientOptions { retry: RetryOptions::none(), ..ClientOptions::default() };
    let org = OrgUrl::loopback_for_testing(&format!("http://127.0.0.1:{port}")).unwrap();
    let err = DataverseClient::new(org, token(), options).unwrap().who_am_i().await.unwrap_err();
    let transport = err.source().and_then(|s| s.downcast_ref::<TransportError>()).expect("the transport's error");
    assert_eq!(transport.kind, TransportErrorKind::Connect, "{err:?}");
    let cause = transport.source().expect("the transport's own error");
    assert!(cause.downcast_ref::<reqwest::Error>().is_some(), "{cause:?}");
    // Its whole chain, down to the operating system's refusal.
    let mut chain = Some(cause);
    let mut refused = false;
    while let Some(e) = chain {
        refused |=
            e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
        chain = e.source();
    }
    assert!(refused, "{cause:?}");

    let t = recorder(vec![response(200, &[], r#"{"UserId": 7}"#)]);
    let err = client(t, exact()).who_am_i().await.unwrap_err();
    let json = err.source().and_then(|s| s.downcast_ref::<serde_json::Error>()).expect("the decoder's error");
    assert!(json.is_data(), "{json:?}");
    assert!(matches!(&err, ApiError::Decode { path, .. } if path == "UserId"), "{err:?}");
}

/// Token requests can go through the caller's transport too: an azure_identity credential given
/// `TransportHttpClient` sends its token request (here a client secret's, to Entra ID) through it. The answer is in
/// the shape of the Microsoft identity platform's client credentials response.
#[cfg(feature = "azure-identity")]
#[tokio::test]
async fn an_azure_identity_credential_fetches_its_token_through_the_callers_transport() {
    use dataverse_mi::auth::{AzureIdentity, TokenSource as _, TransportHttpClient};
    let t = recorder(vec![response(
        200,
        &[("content-type", "application/json")],
        r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAiOiJKV1QifQ.e30.sig"}"#,
    )]);
    let options = azure_identity::ClientSecretCredentialOptions {
        client_options: azure_core::http::ClientOptions {
            transport: Some(azure_core::http::Transport::new(Arc::new(TransportHttpClient::new(t.clone())))),
            ..Default::default()
        },
    };
    let credential = azure_identity::ClientSecretCredential::new(
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b".into(),
        azure_core::credentials::Secret::new("not-a-real-secret"),
        Some(options),
    )
    .unwrap();
    let token = AzureIdentity::new(credential).token(&["https://graph.microsoft.com/.default"]).await.unwrap();
    assert_eq!(token.token.expose(), "eyJ0eXAiOiJKV1QifQ.e30.sig");
    let seen = t.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "POST");
    assert!(
        seen[0]
            .uri
            .to_string()
            .starts_with("https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token"),
        "{seen:?}"
    );
}
