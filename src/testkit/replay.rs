//! A replay transport: canned responses served in order, and every request captured, to check afterwards against
//! the requests a test expects (the shape of smithy-rs's `StaticReplayClient`). For a test of one client call, where
//! the whole fake platform is more than is needed.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::http::{Transport, TransportError};

/// One exchange of a replay: the request a test expects (or any request) and the answer to give.
#[derive(Debug)]
pub struct ReplayEvent {
    expected: Option<http::Request<Bytes>>,
    answer: Result<http::Response<Bytes>, TransportError>,
}

impl ReplayEvent {
    /// `request` is expected; `response` is the answer.
    pub fn new(request: http::Request<Bytes>, response: http::Response<Bytes>) -> Self {
        ReplayEvent { expected: Some(request), answer: Ok(response) }
    }

    /// Any request; `response` is the answer.
    pub fn answer(response: http::Response<Bytes>) -> Self {
        ReplayEvent { expected: None, answer: Ok(response) }
    }

    /// Any request; the transport fails with `error` (a dropped connection, a timeout).
    pub fn failure(error: TransportError) -> Self {
        ReplayEvent { expected: None, answer: Err(error) }
    }
}

/// A response with `status`, `headers` and `body`, for a replay.
pub fn response(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> http::Response<Bytes> {
    let mut r = http::Response::new(body.into());
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (http::HeaderName::try_from(*k), http::HeaderValue::try_from(*v)) {
            r.headers_mut().append(k, v);
        }
    }
    r
}

/// A request as the transport received it, and when (tokio's clock: paused in tests).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CapturedRequest {
    /// When it arrived.
    pub at: tokio::time::Instant,
    /// The method.
    pub method: http::Method,
    /// The URI.
    pub uri: http::Uri,
    /// The headers (the `authorization` header is marked sensitive: its `Debug` does not show the token).
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl CapturedRequest {
    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How a replay's requests differ from the expected ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the requests sent are not the ones expected:\n{}", .differences.join("\n"))]
#[non_exhaustive]
pub struct ReplayMismatch {
    /// Each difference, in words (the request's index, what differs, both values).
    pub differences: Vec<String>,
}

/// A [`Transport`] that answers from a list of [`ReplayEvent`]s in order and captures every request. When the list
/// is used up it answers with a transport error (`no response left`), or with the response given to
/// [`answering_all`](Self::answering_all).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use dataverse_mi::clients::{ClientOptions, DataverseClient, OrgUrl};
/// use dataverse_mi::testkit::{ReplayEvent, ReplayTransport, replay_response, test_token};
///
/// let who = r#"{"UserId":"00000000-0000-0000-0000-00000000000a","BusinessUnitId":"00000000-0000-0000-0000-00000000000b","OrganizationId":"00000000-0000-0000-0000-00000000000c"}"#;
/// let expected = http::Request::get("https://contoso.crm.dynamics.com/api/data/v9.2/WhoAmI").body(Default::default())?;
/// let replay = Arc::new(ReplayTransport::new(vec![ReplayEvent::new(expected, replay_response(200, &[], who))]));
/// let options = ClientOptions { transport: Some(replay.clone()), ..ClientOptions::default() };
/// let client = DataverseClient::new(OrgUrl::parse("https://contoso.crm.dynamics.com")?, test_token(), options)?;
/// client.who_am_i().await?;
/// // The method, URI and body as expected; the headers the client adds are not compared but those named.
/// replay.check_requests(&["*"])?;
/// assert_eq!(replay.requests().len(), 1);
/// # Ok(()) }
/// ```
pub struct ReplayTransport {
    events: Mutex<VecDeque<ReplayEvent>>,
    expected: Mutex<Vec<Option<http::Request<Bytes>>>>,
    captured: Mutex<Vec<CapturedRequest>>,
    otherwise: Option<http::Response<Bytes>>,
    delay: Option<Duration>,
    capture: bool,
    received: std::sync::atomic::AtomicUsize,
    in_flight: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
}

impl fmt::Debug for ReplayTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lock = |m: &Mutex<VecDeque<ReplayEvent>>| m.lock().map(|e| e.len()).unwrap_or_default();
        f.debug_struct("ReplayTransport")
            .field("left", &lock(&self.events))
            .field("captured", &self.captured.lock().map(|c| c.len()).unwrap_or_default())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ReplayTransport {
    /// Answers from `events`, in order.
    pub fn new(events: Vec<ReplayEvent>) -> Self {
        ReplayTransport {
            events: Mutex::new(events.into()),
            expected: Mutex::new(Vec::new()),
            captured: Mutex::new(Vec::new()),
            otherwise: None,
            delay: None,
            capture: true,
            received: Default::default(),
            in_flight: Default::default(),
            peak: Default::default(),
        }
    }

    /// Answers every request with `response` (after any events), capturing each: the request-capture helper.
    pub fn answering_all(response: http::Response<Bytes>) -> Self {
        ReplayTransport { otherwise: Some(response), ..ReplayTransport::new(Vec::new()) }
    }

    /// The same, once the events are used up, answering with `response`.
    pub fn then_answering(mut self, response: http::Response<Bytes>) -> Self {
        self.otherwise = Some(response);
        self
    }

    /// Each answer after `delay` (on tokio's clock), so that concurrency can be observed
    /// ([`peak_in_flight`](Self::peak_in_flight)).
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Keeps no request, only their number ([`received`](Self::received)): for a benchmark that sends millions
    /// (the way wiremock's `disable_request_recording` is). [`requests`](Self::requests) is then empty and
    /// [`check_requests`](Self::check_requests) has nothing to compare.
    pub fn without_capture(mut self) -> Self {
        self.capture = false;
        self
    }

    /// How many requests were received, captured or not.
    pub fn received(&self) -> usize {
        self.received.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<CapturedRequest> {
        lock(&self.captured).clone()
    }

    /// The most requests in flight at once so far.
    pub fn peak_in_flight(&self) -> usize {
        self.peak.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Events not used yet.
    pub fn left(&self) -> usize {
        lock(&self.events).len()
    }

    /// Checks the requests received against the expected ones of the events used, in order: the method, the URI,
    /// the body (JSON bodies compared as JSON), and every header of the expected request except those named in
    /// `ignore_headers` (`"*"`: no header is compared). Also a difference: an event not used, or a request with
    /// no event.
    pub fn check_requests(&self, ignore_headers: &[&str]) -> Result<(), ReplayMismatch> {
        let captured = lock(&self.captured);
        let expected = lock(&self.expected);
        let mut differences = Vec::new();
        let all_headers = ignore_headers.contains(&"*");
        for (i, (sent, wanted)) in captured.iter().zip(expected.iter()).enumerate() {
            let Some(wanted) = wanted else { continue };
            if sent.method != wanted.method() {
                differences.push(format!("request {i}: method {} instead of {}", sent.method, wanted.method()));
            }
            if sent.uri != *wanted.uri() {
                differences.push(format!("request {i}: URI {} instead of {}", sent.uri, wanted.uri()));
            }
            let as_json = |b: &Bytes| serde_json::from_slice::<serde_json::Value>(b).ok();
            let same_body = match (as_json(&sent.body), as_json(wanted.body())) {
                (Some(a), Some(b)) => a == b,
                _ => sent.body == *wanted.body(),
            };
            if !same_body {
                differences.push(format!(
                    "request {i}: body {} instead of {}",
                    sent.body_text(),
                    String::from_utf8_lossy(wanted.body())
                ));
            }
            if !all_headers {
                for (name, value) in wanted.headers() {
                    if ignore_headers.iter().any(|h| h.eq_ignore_ascii_case(name.as_str())) {
                        continue;
                    }
                    if sent.headers.get(name) != Some(value) {
                        differences.push(format!(
                            "request {i}: header {name} is {:?}, expected {value:?}",
                            sent.headers.get(name)
                        ));
                    }
                }
            }
        }
        if captured.len() > expected.len() && self.otherwise.is_none() {
            differences
                .push(format!("{} request(s) more than the replay has answers for", captured.len() - expected.len()));
        }
        let left = lock(&self.events).len();
        if left > 0 {
            differences.push(format!("{left} expected request(s) never sent"));
        }
        if differences.is_empty() { Ok(()) } else { Err(ReplayMismatch { differences }) }
    }
}

#[async_trait]
impl Transport for ReplayTransport {
    async fn send(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.received.fetch_add(1, SeqCst);
        if self.capture {
            let (parts, body) = request.into_parts();
            lock(&self.captured).push(CapturedRequest {
                at: tokio::time::Instant::now(),
                method: parts.method,
                uri: parts.uri,
                headers: parts.headers,
                body,
            });
        }
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.peak.fetch_max(now, SeqCst);
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        self.in_flight.fetch_sub(1, SeqCst);
        let event = lock(&self.events).pop_front();
        match event {
            Some(e) => {
                lock(&self.expected).push(e.expected);
                e.answer
            }
            None => match &self.otherwise {
                Some(r) => Ok(r.clone()),
                None => Err(TransportError::new(
                    crate::http::TransportErrorKind::Other,
                    "the replay has no response left for this request",
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(uri: &str) -> http::Request<Bytes> {
        let mut r = http::Request::new(Bytes::new());
        *r.uri_mut() = uri.parse().unwrap();
        r
    }

    #[tokio::test]
    async fn a_request_other_than_expected_and_one_never_sent_are_named() {
        let replay = ReplayTransport::new(vec![
            ReplayEvent::new(get("https://a.example/x"), response(200, &[], "{}")),
            ReplayEvent::new(get("https://a.example/y"), response(200, &[], "{}")),
        ]);
        let mut sent = get("https://a.example/z");
        sent.headers_mut().insert("x-kept", http::HeaderValue::from_static("1"));
        assert_eq!(replay.send(sent).await.unwrap().status(), 200);
        let err = replay.check_requests(&[]).unwrap_err();
        assert_eq!(
            err.differences,
            ["request 0: URI https://a.example/z instead of https://a.example/x", "1 expected request(s) never sent"]
        );
        // Used up: the next request gets a transport error, and is one too many.
        assert_eq!(replay.send(get("https://a.example/y")).await.unwrap().status(), 200);
        let extra = replay.send(get("https://a.example/w")).await.unwrap_err();
        assert!(extra.to_string().contains("no response left"), "{extra}");
        let err = replay.check_requests(&["*"]).unwrap_err();
        assert!(err.differences.contains(&"1 request(s) more than the replay has answers for".to_owned()), "{err}");
    }

    #[tokio::test]
    async fn headers_are_compared_but_those_named_and_json_bodies_as_json() {
        let mut expected = http::Request::new(Bytes::from_static(br#"{"a": 1, "b": 2}"#));
        *expected.method_mut() = http::Method::POST;
        expected.headers_mut().insert("authorization", http::HeaderValue::from_static("Bearer x"));
        expected.headers_mut().insert("prefer", http::HeaderValue::from_static("return=representation"));
        let replay = ReplayTransport::new(vec![ReplayEvent::new(expected, response(201, &[], ""))]);
        let mut sent = http::Request::new(Bytes::from_static(br#"{"b":2,"a":1}"#));
        *sent.method_mut() = http::Method::POST;
        sent.headers_mut().insert("authorization", http::HeaderValue::from_static("Bearer y"));
        sent.headers_mut().insert("prefer", http::HeaderValue::from_static("return=representation"));
        replay.send(sent).await.unwrap();
        assert!(replay.check_requests(&["Authorization"]).is_ok());
        let err = replay.check_requests(&[]).unwrap_err();
        assert_eq!(err.differences.len(), 1, "{err}");
        assert!(err.differences[0].starts_with("request 0: header authorization"), "{err}");
    }
}
