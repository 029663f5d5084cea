//! The transport seam and the retry policy.
//!
//! [`Transport`] sends one request and returns the response: it is the only place this crate touches the
//! network. It speaks the `http` crate's types, so hyper, a blocking client in a thread, a recorder or a mock
//! plug in as easily as the default [`ReqwestTransport`]. [`RetryOptions`] is the policy the clients apply
//! between themselves and the transport.
//!
//! The types its signature needs are re-exported in [`reexports`](crate::reexports):
//!
//! ```
//! use dataverse_mi::http::{Transport, TransportError};
//! use dataverse_mi::reexports::{async_trait, bytes::Bytes, http};
//!
//! /// A transport that answers every request with 503: handy to see the retry policy work.
//! #[derive(Debug)]
//! struct Unavailable;
//!
//! #[async_trait]
//! impl Transport for Unavailable {
//!     async fn send(&self, _request: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
//!         Ok(http::Response::builder().status(503).body(Bytes::new()).unwrap())
//!     }
//! }
//! ```
//!
//! It imports nothing of the crate (`tests/architecture.rs` checks the floors).

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};

/// Sends one HTTP request. Implementations must not retry: the clients' policy does.
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug {
    /// Sends `request` and returns the whole response, whatever its status.
    async fn send(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError>;
}

/// What kind of failure a transport had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The connection could not be made (refused, DNS, TLS).
    Connect,
    /// Connecting or reading took longer than allowed.
    Timeout,
    /// The connection broke while the request or response was in flight (reset, closed).
    Connection,
    /// The response body was larger than allowed ([`ReqwestOptions::max_body_bytes`]).
    BodyTooLarge,
    /// Anything else (a malformed request, a client bug).
    Other,
}

impl TransportErrorKind {
    /// Whether trying again may succeed (for a request that is safe to send twice): a failed connection, a timeout,
    /// a broken connection.
    pub fn is_retryable(self) -> bool {
        matches!(self, TransportErrorKind::Connect | TransportErrorKind::Timeout | TransportErrorKind::Connection)
    }
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportErrorKind::Connect => "could not connect",
            TransportErrorKind::Timeout => "timed out",
            TransportErrorKind::Connection => "connection broke",
            TransportErrorKind::BodyTooLarge => "response too large",
            TransportErrorKind::Other => "transport failed",
        })
    }
}

/// A transport failure: no HTTP response was received. Its [`source`](std::error::Error::source) is the
/// transport's own error (for the default transport, the `reqwest::Error` and its cause chain), kept as it came.
#[derive(Debug, Clone)]
pub struct TransportError {
    /// The kind of failure.
    pub kind: TransportErrorKind,
    /// What happened (for the default transport, the cause chain on one line).
    pub message: String,
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// By hand: the source is the transport's error itself (not the `Arc` holding it), so that it downcasts.
impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl TransportError {
    /// A new error.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        TransportError { kind, message: message.into(), source: None }
    }

    /// A new error caused by `source` (kept: [`std::error::Error::source`] returns it).
    pub fn with_source(
        kind: TransportErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        TransportError { kind, message: message.into(), source: Some(std::sync::Arc::new(source)) }
    }

    /// Whether trying again may succeed (for a request that is safe to send twice).
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

/// The default transport, on `reqwest` with rustls.
#[cfg(feature = "reqwest")]
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    max_body_bytes: usize,
    client: reqwest::Client,
}

/// Timeouts of [`ReqwestTransport`].
#[cfg(feature = "reqwest")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReqwestOptions {
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long the server may stay silent while sending the response.
    pub read_timeout: Duration,
    /// How long one request may take in all, the body included: a server that drips a byte at a time ends here
    /// (the read timeout alone would never fire).
    pub total_timeout: Duration,
    /// The largest response body read: a larger one ends the request with [`TransportErrorKind::BodyTooLarge`],
    /// without buffering it all (a `Content-Length` above it is refused before reading).
    pub max_body_bytes: usize,
}

/// The default [`ReqwestOptions::max_body_bytes`]: 64 MiB, room for a page of 5,000 plug-in trace log rows with
/// their traces (the largest page the crate reads).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

#[cfg(feature = "reqwest")]
impl Default for ReqwestOptions {
    fn default() -> Self {
        ReqwestOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(120),
            total_timeout: Duration::from_secs(300),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

#[cfg(feature = "reqwest")]
impl ReqwestTransport {
    /// A transport with the given timeouts.
    pub fn new(options: ReqwestOptions) -> Result<Self, TransportError> {
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .timeout(options.total_timeout)
            .user_agent(concat!("dataverse-mi/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TransportError::with_source(TransportErrorKind::Other, e.to_string(), e))?;
        Ok(ReqwestTransport { client, max_body_bytes: options.max_body_bytes })
    }

    /// Wraps a `reqwest::Client` configured by the caller (proxies, certificates, ...).
    pub fn from_client(client: reqwest::Client) -> Self {
        ReqwestTransport { client, max_body_bytes: DEFAULT_MAX_BODY_BYTES }
    }
}

#[cfg(feature = "reqwest")]
fn reqwest_error(e: reqwest::Error) -> TransportError {
    let kind = if e.is_timeout() {
        TransportErrorKind::Timeout
    } else if e.is_connect() {
        TransportErrorKind::Connect
    } else if e.is_request() || e.is_body() || e.is_decode() {
        TransportErrorKind::Connection
    } else {
        TransportErrorKind::Other
    };
    // The chain on one line for the message (the useful part, "connection reset by peer", is at the bottom); the
    // error itself kept as the source.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    TransportError::with_source(kind, message, e)
}

#[cfg(feature = "reqwest")]
#[async_trait]
impl Transport for ReqwestTransport {
    async fn send(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
        let (parts, body) = request.into_parts();
        let response = self
            .client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(reqwest_error)?;
        let status = response.status();
        let version = response.version();
        let headers = response.headers().clone();
        let too_large = |read: u64| {
            TransportError::new(
                TransportErrorKind::BodyTooLarge,
                format!("the response body is over {} bytes (at least {read}); refused", self.max_body_bytes),
            )
        };
        if let Some(length) = response.content_length().filter(|l| *l > self.max_body_bytes as u64) {
            return Err(too_large(length));
        }
        // Read chunk by chunk, so that a body past the limit is refused without being buffered whole.
        let mut response = response;
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(reqwest_error)? {
            if body.len() + chunk.len() > self.max_body_bytes {
                return Err(too_large((body.len() + chunk.len()) as u64));
            }
            body.extend_from_slice(&chunk);
        }
        let body = body.freeze();
        let mut out = http::Response::new(body);
        *out.status_mut() = status;
        *out.version_mut() = version;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

/// The retry policy between the clients and the transport.
///
/// Retried: 408, 429, 500, 502, 503, 504 and connection failures, for requests that are safe to send twice
/// (GET, PUT, DELETE, and the POST and PATCH calls whose second sending cannot create a second thing). The
/// wait before attempt `n + 1` is the larger of the server's (`Retry-After` in seconds or as an HTTP date,
/// `retry-after-ms`, `x-ms-retry-after-ms`) and `initial_delay * 2^(n-1)`, capped at `max_delay`, less up to
/// `jitter` of itself at random, and never more than [`MAX_RETRY_WAIT`] (5 minutes). No retry starts once
/// `max_elapsed` would be exceeded: a server asking for a wait past the budget ends the call at once with its
/// answer. Values out of range are clamped, never a panic: a jitter that is not a number is no jitter, waits and
/// sums saturate.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryOptions {
    /// Most attempts in all, the first included (1 = no retries).
    pub max_attempts: u32,
    /// The first backoff.
    pub initial_delay: Duration,
    /// The longest backoff (the server's `Retry-After` may ask for longer and is honoured, up to
    /// [`MAX_RETRY_WAIT`]).
    pub max_delay: Duration,
    /// The longest a call may take, waits included.
    pub max_elapsed: Duration,
    /// The share of each backoff removed at random (0.0 to 1.0): spreads retries of concurrent callers.
    pub jitter: f64,
    /// A seed for the jitter, for reproducible runs; `None` seeds from the system.
    pub seed: Option<u64>,
}

impl Default for RetryOptions {
    fn default() -> Self {
        RetryOptions {
            max_attempts: 5,
            initial_delay: Duration::from_millis(800),
            max_delay: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(180),
            jitter: 0.2,
            seed: None,
        }
    }
}

impl RetryOptions {
    /// No retries at all.
    pub fn none() -> Self {
        RetryOptions { max_attempts: 1, ..RetryOptions::default() }
    }

    /// The backoff before attempt `attempt + 1`, before jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// The longest single wait between two attempts, whatever the server asks (`Retry-After`) or the options say: a
/// server asking for longer than the call's remaining time budget ([`RetryOptions::max_elapsed`]) ends the call at
/// once with its answer (a typed error with the status), rather than holding it; a longer backoff is cut to this.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(300);

/// How a response or failure is treated by the retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryClass {
    /// 2xx/3xx: done.
    Success,
    /// 429: throttled; wait as the server says.
    Throttled,
    /// 408, 500, 502, 503, 504, or no response: may succeed if tried again.
    Transient,
    /// Any other 4xx/5xx: trying again will not help.
    Permanent,
}

impl RetryClass {
    /// The class of an HTTP status.
    pub fn of_status(status: StatusCode) -> Self {
        match status.as_u16() {
            200..=399 => RetryClass::Success,
            429 => RetryClass::Throttled,
            408 | 500 | 502 | 503 | 504 => RetryClass::Transient,
            _ => RetryClass::Permanent,
        }
    }

    /// Whether a retry may help.
    pub fn is_retryable(self) -> bool {
        matches!(self, RetryClass::Throttled | RetryClass::Transient)
    }
}

/// The wait a server asks for: `retry-after-ms`, `x-ms-retry-after-ms` (milliseconds), or `Retry-After` in
/// seconds or as an HTTP date (measured from the response's `Date` header when there is one, else from `now`).
pub fn server_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(ms) = text(name).and_then(|v| v.parse::<u64>().ok()) {
            return Some(Duration::from_millis(ms));
        }
    }
    let value = text("retry-after")?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>()
        && seconds.is_finite()
        && seconds >= 0.0
    {
        return Some(Duration::from_secs_f64(seconds.min(86_400.0)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let base = text("date").and_then(|d| httpdate::parse_http_date(d).ok()).unwrap_or(now);
    Some(at.duration_since(base).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(server_retry_after(&headers(&[("retry-after", "7")]), now), Some(Duration::from_secs(7)));
        assert_eq!(server_retry_after(&headers(&[("retry-after", "1.5")]), now), Some(Duration::from_millis(1500)));
        assert_eq!(
            server_retry_after(&headers(&[("retry-after-ms", "250"), ("retry-after", "9")]), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            server_retry_after(&headers(&[("x-ms-retry-after-ms", "40")]), now),
            Some(Duration::from_millis(40))
        );
        assert_eq!(
            server_retry_after(
                &headers(&[
                    ("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT"),
                    ("date", "Wed, 21 Oct 2015 07:28:00 GMT")
                ]),
                now
            ),
            Some(Duration::from_secs(30))
        );
        // A date in the past means "now".
        assert_eq!(
            server_retry_after(&headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]), now),
            Some(Duration::ZERO)
        );
        assert_eq!(server_retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(server_retry_after(&headers(&[("retry-after", "-3")]), now), None);
        assert_eq!(server_retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_doubles_to_the_cap() {
        let o = RetryOptions {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            ..Default::default()
        };
        let got: Vec<u64> = (1..=5).map(|n| o.backoff(n).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 5, 5]);
        assert_eq!(o.backoff(200), Duration::from_secs(5));
    }

    #[test]
    fn classes() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(RetryClass::of_status(StatusCode::from_u16(s).unwrap()).is_retryable(), "{s}");
        }
        for s in [200, 204, 400, 401, 403, 404, 409, 412, 501] {
            assert!(!RetryClass::of_status(StatusCode::from_u16(s).unwrap()).is_retryable(), "{s}");
        }
    }
}
