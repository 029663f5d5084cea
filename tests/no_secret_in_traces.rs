//! The token never appears in errors, `Debug` output or traces. In a test binary of its own: tracing caches
//! which call sites are enabled per process, and other tests running without a subscriber would disable them.
#![cfg(feature = "testkit")]

mod common;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::{TOKEN, token};
use dataverse_mi::clients::{ClientOptions, DataverseClient, OrgUrl};
use dataverse_mi::http::RetryOptions;
use dataverse_mi::testkit::{ReplayEvent, ReplayTransport};

fn response(status: u16, headers: &[(&str, &str)], body: &str) -> http::Response<Bytes> {
    dataverse_mi::testkit::replay_response(status, headers, body.to_owned())
}

#[tokio::test(start_paused = true)]
async fn the_token_never_appears_in_errors_or_traces() {
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    let buf = Buf::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(buf.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // Throttled, then refused twice (a 401 is retried once with a fresh token): every path that reports an error.
    let unauthorized = || {
        response(
            401,
            &[("www-authenticate", "Bearer error=invalid_token")],
            r#"{"error":{"code":"","message":"invalid token"}}"#,
        )
    };
    let t = Arc::new(ReplayTransport::new(
        [response(429, &[("retry-after", "1")], ""), unauthorized(), unauthorized()].map(ReplayEvent::answer).into(),
    ));
    let options = ClientOptions {
        retry: RetryOptions { jitter: 0.0, ..RetryOptions::default() },
        transport: Some(t.clone()),
        ..ClientOptions::default()
    };
    let c = DataverseClient::new(OrgUrl::parse("https://contoso.crm.dynamics.com").unwrap(), token(), options).unwrap();
    let err = c.who_am_i().await.unwrap_err();
    let shown = format!("{err} {err:?} {c:?}");
    let traced = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(!shown.contains("secret-payload"), "{shown}");
    assert!(!traced.contains("secret-payload"), "{traced}");
    assert!(traced.contains("request") && traced.contains("attempt=2") && traced.contains("status=401"), "{traced}");
    // The request sent again with a fresh token has its own span, within the same attempt.
    let refused = traced.lines().filter(|l| l.contains("attempt=2 ") && l.contains("status=401")).count();
    assert_eq!(refused, 2, "the fresh token's request: {traced}");
    assert!(traced.contains("path=\"/api/data/v9.2/WhoAmI\""), "{traced}");
    // What the transport received: the token, each time, in a header marked sensitive (so even a transport that
    // logs requests does not print it).
    let sent = t.requests();
    assert_eq!(sent.len(), 3);
    for r in &sent {
        assert_eq!(r.headers["authorization"], format!("Bearer {TOKEN}").as_str());
        assert!(r.headers["authorization"].is_sensitive());
        assert!(!format!("{r:?}").contains("secret-payload"), "{r:?}");
    }
}

/// The shared token cache now lives in `ClientOptions` (one cache for every client): its Debug, holding a fetched
/// token, never shows the token.
#[tokio::test]
async fn a_shared_token_cache_in_client_options_never_prints_its_token() {
    use dataverse_mi::auth::{TokenCache, TokenSource as _};
    let cache = Arc::new(TokenCache::new(token()));
    let fetched = cache.token(&["https://contoso.crm.dynamics.com/.default"]).await.unwrap();
    let options = ClientOptions { token_cache: Some(cache), ..ClientOptions::default() };
    let text = format!("{options:?} {fetched:?}");
    assert!(!text.contains(TOKEN), "{text}");
}
