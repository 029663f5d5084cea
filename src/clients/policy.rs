//! The request pipeline: a chain of policies between the typed client methods and the [`Transport`].
//!
//! Every request of every client goes through the same chain, in this order (the shape of azure_core's
//! pipeline):
//!
//! 1. the caller's **per-call** policies ([`ClientOptions::per_call_policies`](super::ClientOptions)): run once
//!    per call, whatever the retries;
//! 2. the **time budget** ([`RetryOptions::max_elapsed`]): the whole call, every attempt, wait and body read
//!    included, ends when the budget does;
//! 3. **retry**, deciding with the service's [`ClassifyRetry`] (Dataverse's service protection 429s, ARM's
//!    concurrent-FIC-write 409, transient 5xx, connection failures) and waiting as the server asks;
//! 4. the caller's **per-try** policies ([`ClientOptions::per_try_policies`](super::ClientOptions)): run on every
//!    attempt (a correlation-id header, OpenTelemetry, a proxy's header);
//! 5. the **concurrency limit** (an attempt holds its permits while in flight, not while waiting to retry);
//! 6. the **origin guard** (a request never leaves the client's origin with its token);
//! 7. the **bearer token** policy: the only token cache, whose token is dropped and fetched again once when the
//!    service answers 401, the request then sent once more within the same attempt;
//! 8. the **tracing span** and the **request counter** of each request sent (the one sent again with a fresh
//!    token included);
//! 9. the **transport**.
//!
//! A policy is a value implementing [`Policy`]: it may change the request, answer without calling the rest of
//! the chain, or call it ([`Next::send`]) and look at the answer. The request is passed by `&mut` down the chain
//! (the transport gets a copy): a change a per-try policy makes stays for the next attempt, so set headers with
//! `insert`, not `append`.
//!
//! ```
//! use dataverse_mi::clients::policy::{Context, Next, Policy, PolicyResult};
//! use dataverse_mi::reexports::{async_trait, bytes::Bytes, http};
//!
//! /// Adds a correlation id to every attempt.
//! #[derive(Debug)]
//! struct CorrelationId(http::HeaderValue);
//!
//! #[async_trait]
//! impl Policy for CorrelationId {
//!     async fn send(&self, ctx: &Context, request: &mut http::Request<Bytes>, next: Next<'_>) -> PolicyResult {
//!         request.headers_mut().insert("x-ms-correlation-request-id", self.0.clone());
//!         next.send(ctx, request).await
//!     }
//! }
//!
//! let options = dataverse_mi::clients::ClientOptions::default()
//!     .with_per_try_policy(CorrelationId(http::HeaderValue::from_static("8c3c1b8e-0f5a-4d7e-9a43-5b1f2f7c1d00")));
//! assert_eq!(options.per_try_policies.len(), 1);
//! ```
//!
//! The chain is written here rather than on `tower`: a `tower::Service` is polled for readiness and called
//! through `&mut self`, so a shared chain needs cloning or buffering per call, and its retry layer must clone
//! the policy state per request; the clients' policies are plain `async fn`s over a shared `&self`, a user's
//! policy is one `impl` of one method, and a build without the `reqwest` feature does not compile `tower` at all.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderValue};
use http::{Method, StatusCode};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::RequestStats;
use super::error::{self, ApiError, Service};
use crate::auth::TokenCache;
use crate::http::{RetryClass, RetryOptions, Transport, TransportErrorKind, server_retry_after};

/// The code of ARM's 409 for concurrent FIC writes to one user-assigned identity (retried: the PUT is idempotent).
pub const CONCURRENT_FIC_WRITES: &str = "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity";

/// What a policy returns: the response (of any status), or the error that ended the call.
pub type PolicyResult = Result<http::Response<Bytes>, ApiError>;

/// One step of the pipeline. See the [module docs](self) for the order of the built-in steps.
#[async_trait]
pub trait Policy: Send + Sync + fmt::Debug {
    /// Handles `request`: usually changes it or looks at it, then calls `next.send(ctx, request)`.
    async fn send(&self, ctx: &Context, request: &mut http::Request<Bytes>, next: Next<'_>) -> PolicyResult;
}

/// The rest of the chain after a policy.
#[derive(Clone, Copy)]
pub struct Next<'a> {
    rest: &'a [Arc<dyn Policy>],
}

impl fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next").field("policies", &self.rest.len()).finish()
    }
}

impl<'a> Next<'a> {
    pub(crate) fn new(policies: &'a [Arc<dyn Policy>]) -> Self {
        Next { rest: policies }
    }

    /// Sends `request` through the rest of the chain.
    pub async fn send(self, ctx: &Context, request: &mut http::Request<Bytes>) -> PolicyResult {
        match self.rest.split_first() {
            Some((policy, rest)) => policy.send(ctx, request, Next { rest }).await,
            None => Err(ApiError::invalid("pipeline", "the pipeline has no transport at its end")),
        }
    }
}

/// What the policies know of the call they take part in.
#[derive(Debug)]
pub struct Context {
    service: Service,
    operation: &'static str,
    retry_safe: bool,
    permits: u32,
    started: Instant,
    attempt: AtomicU32,
    refused_token_identity: std::sync::Mutex<Option<String>>,
}

impl Context {
    pub(crate) fn new(service: Service, operation: &'static str, retry_safe: bool, permits: u32) -> Self {
        Context {
            service,
            operation,
            retry_safe,
            permits,
            started: Instant::now(),
            attempt: AtomicU32::new(0),
            refused_token_identity: std::sync::Mutex::new(None),
        }
    }

    /// The service called.
    pub fn service(&self) -> Service {
        self.service
    }

    /// What the call does, e.g. `create managed identity`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// Whether sending the request twice is harmless (GET, PUT, DELETE, and the POST and PATCH calls the client
    /// method knows to be).
    pub fn retry_safe(&self) -> bool {
        self.retry_safe
    }

    /// The attempt under way: 1 for the first (0 before the retry policy has started one).
    pub fn attempt(&self) -> u32 {
        self.attempt.load(Ordering::Relaxed)
    }

    /// Time since the call started (tokio's clock).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Who the token refused twice with 401 was issued to, for the error's message.
    pub(crate) fn refused_token_identity(&self) -> Option<String> {
        self.refused_token_identity.lock().ok().and_then(|g| g.clone())
    }
}

/// A copy of a request (an `http::Request` is not `Clone`: its extensions may not be).
pub fn clone_request(request: &http::Request<Bytes>) -> http::Request<Bytes> {
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// Decides whether an answer is worth another attempt: one per service, so that each service's own "try again"
/// signals are read in one place (the shape of smithy's `ClassifyRetry`).
pub trait ClassifyRetry: Send + Sync + fmt::Debug {
    /// The class of an attempt's outcome.
    fn classify(&self, ctx: &Context, outcome: &PolicyResult) -> RetryClass;
}

/// Dataverse's service protection error codes (Learn, "Service protection API limits": number of requests,
/// combined execution time, concurrent requests).
pub const DATAVERSE_SERVICE_PROTECTION_CODES: [&str; 3] = ["0x80072322", "0x80072321", "0x80072326"];

/// The classifier each service's clients use:
/// - every service: 2xx/3xx succeed; 429 is throttled; 408, 500, 502, 503, 504 and connection failures and
///   timeouts are transient; anything else is permanent;
/// - Dataverse: an answer carrying a service protection code ([`DATAVERSE_SERVICE_PROTECTION_CODES`]) is
///   throttled whatever its status;
/// - Azure Resource Manager: a 409 [`CONCURRENT_FIC_WRITES`] (another FIC write to the same identity is under
///   way) is transient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceClassifier(pub Service);

impl ClassifyRetry for ServiceClassifier {
    fn classify(&self, _ctx: &Context, outcome: &PolicyResult) -> RetryClass {
        let response = match outcome {
            Ok(response) => response,
            Err(ApiError::Transport { kind, .. }) if kind.is_retryable() => return RetryClass::Transient,
            Err(_) => return RetryClass::Permanent,
        };
        let class = RetryClass::of_status(response.status());
        if class != RetryClass::Permanent && class != RetryClass::Transient {
            return class;
        }
        match self.0 {
            Service::Dataverse => match error::service_code(response.body()) {
                Some(code) if DATAVERSE_SERVICE_PROTECTION_CODES.contains(&code.as_str()) => RetryClass::Throttled,
                _ => class,
            },
            Service::Arm if response.status() == StatusCode::CONFLICT => match error::service_code(response.body()) {
                Some(code) if code == CONCURRENT_FIC_WRITES => RetryClass::Transient,
                _ => class,
            },
            _ => class,
        }
    }
}

/// The time budget: the call ends when [`RetryOptions::max_elapsed`] has passed since it started, whatever is
/// under way (a wait, an attempt, a body arriving a byte at a time).
#[derive(Debug)]
pub(crate) struct Budget {
    pub(crate) max_elapsed: Duration,
}

#[async_trait]
impl Policy for Budget {
    async fn send(&self, ctx: &Context, request: &mut http::Request<Bytes>, next: Next<'_>) -> PolicyResult {
        let left = self.max_elapsed.saturating_sub(ctx.elapsed());
        match tokio::time::timeout(left, next.send(ctx, request)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ApiError::Transport {
                service: ctx.service,
                operation: ctx.operation,
                kind: TransportErrorKind::Timeout,
                message: format!(
                    "the call's time budget of {} (RetryOptions::max_elapsed) ran out",
                    humantime::format_duration(self.max_elapsed)
                ),
                attempts: ctx.attempt().max(1),
                source: None,
            }),
        }
    }
}

/// Retries what its classifier says may succeed, for requests safe to send twice, waiting the longer of the
/// server's wait and the backoff (see [`RetryOptions`]).
#[derive(Debug)]
pub(crate) struct Retry {
    pub(crate) options: RetryOptions,
    pub(crate) classifier: Arc<dyn ClassifyRetry>,
    pub(crate) stats: Arc<RequestStats>,
    pub(crate) rng: std::sync::Mutex<fastrand::Rng>,
}

impl Retry {
    fn jittered(&self, d: Duration) -> Duration {
        // NaN passes through `clamp`: a jitter that is not a number is no jitter.
        let j = if self.options.jitter.is_finite() { self.options.jitter.clamp(0.0, 1.0) } else { 0.0 };
        if j == 0.0 {
            return d;
        }
        let r = self.rng.lock().map(|mut rng| rng.f64()).unwrap_or(0.5);
        d.mul_f64(1.0 - j * r)
    }
}

#[async_trait]
impl Policy for Retry {
    async fn send(&self, ctx: &Context, request: &mut http::Request<Bytes>, next: Next<'_>) -> PolicyResult {
        loop {
            let attempt = ctx.attempt.fetch_add(1, Ordering::Relaxed) + 1;
            let outcome = next.send(ctx, request).await;
            let class = self.classifier.classify(ctx, &outcome);
            if class == RetryClass::Success {
                return outcome;
            }
            let server_wait = outcome.as_ref().ok().and_then(|r| server_retry_after(r.headers(), SystemTime::now()));
            // The server's wait or our own backoff, whichever is longer; never more than MAX_RETRY_WAIT, and a wait
            // that would end past the time budget ends the call now (saturating: a server can ask for anything).
            let wanted = server_wait.unwrap_or_default().max(self.jittered(self.options.backoff(attempt)));
            let wait = wanted.min(crate::http::MAX_RETRY_WAIT);
            let elapsed = ctx.elapsed();
            let within_budget = server_wait.is_none_or(|w| elapsed.saturating_add(w) <= self.options.max_elapsed)
                && elapsed.saturating_add(wait) <= self.options.max_elapsed;
            if class.is_retryable() && ctx.retry_safe && attempt < self.options.max_attempts && within_budget {
                tracing::debug!(
                    operation = ctx.operation,
                    attempt,
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    ?class,
                    "retrying"
                );
                self.stats.add_retry();
                tokio::time::sleep(wait).await;
                continue;
            }
            return outcome;
        }
    }
}

/// One `tracing` span per attempt (service, operation, method, path, attempt, status, elapsed; never the token).
#[derive(Debug)]
pub(crate) struct Span;

#[async_trait]
impl Policy for Span {
    async fn send(&self, ctx: &Context, request: &mut http::Request<Bytes>, next: Next<'_>) -> PolicyResult {
        let span = tracing::info_span!(
            "request",
            service = %ctx.service,
            operation = ctx.operation,
            method = %request.method(),
            path = request.uri().path(),
            attempt = ctx.attempt(),
            status = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
        );
        let sent_at = Instant::now();
        let outcome = next.send(ctx, request).instrument(span.clone()).await;
        span.record("elapsed_ms", u64::try_from(sent_at.elapsed().as_millis()).unwrap_or(u64::MAX));
        if let Ok(response) = &outcome {
            span.record("status", response.status().as_u16());
        }
        outcome
    }
}

/// The concurrency limit: an attempt holds its permits while in flight (not while waiting to retry).
#[derive(Debug)]
pub(crate) struct Limit {
    pub(crate) semaphore: Arc<Semaphore>,
    pub(crate) capacity: u32,
}

#[async_trait]
impl Policy for Limit {
    async fn send(&self, ctx: &Context, request: &mut http::Request<Bytes>, next: Next<'_>) -> PolicyResult {
        let _permit = self
            .semaphore
            .acquire_many(ctx.permits.clamp(1, self.capacity))
            .await
            .map_err(|_| ApiError::invalid("client", "the client was closed"))?;
        next.send(ctx, request).await
    }
}

/// Counts every attempt sent.
#[derive(Debug)]
pub(crate) struct Count {
    pub(crate) stats: Arc<RequestStats>,
}

#[async_trait]
impl Policy for Count {
    async fn send(&self, ctx: &Context, request: &mut http::Request<Bytes>, next: Next<'_>) -> PolicyResult {
        self.stats.add_request();
        next.send(ctx, request).await
    }
}

/// Refuses a request to another origin than the client's: its token is for that origin only.
#[derive(Debug)]
pub(crate) struct OriginGuard {
    pub(crate) origin: String,
    /// The base URL's scheme and authority as `url` serializes them (lowercase host, no default port): a request
    /// built from the base has exactly these; anything else is compared by its serialized origin.
    pub(crate) scheme: String,
    pub(crate) authority: String,
}

impl OriginGuard {
    pub(crate) fn of(base: &url::Url) -> Self {
        let authority = match base.port() {
            Some(port) => format!("{}:{port}", base.host_str().unwrap_or_default()),
            None => base.host_str().unwrap_or_default().to_owned(),
        };
        OriginGuard { origin: base.origin().ascii_serialization(), scheme: base.scheme().to_owned(), authority }
    }
}

#[async_trait]
impl Policy for OriginGuard {
    async fn send(&self, ctx: &Context, request: &mut http::Request<Bytes>, next: Next<'_>) -> PolicyResult {
        let uri = request.uri();
        let same = uri.scheme_str() == Some(self.scheme.as_str())
            && uri.authority().is_some_and(|a| a.as_str() == self.authority);
        if !same {
            let found = uri_origin(uri);
            if found != self.origin {
                return Err(ApiError::ForeignHost { expected: self.origin.clone(), found });
            }
        }
        next.send(ctx, request).await
    }
}

/// The origin of a URI as `url` serializes it (`https://host`, the port when not the scheme's default).
pub(crate) fn uri_origin(uri: &http::Uri) -> String {
    url::Url::parse(&uri.to_string()).map(|u| u.origin().ascii_serialization()).unwrap_or_else(|_| "null".into())
}

/// The bearer token: from the one cache; on a 401, the token is dropped from the cache and the attempt sent once
/// more with a fresh one (the refused token may have been revoked or rotated). Not processed, so sending it again
/// is safe whatever the method.
#[derive(Debug)]
pub(crate) struct Bearer {
    pub(crate) tokens: Arc<TokenCache>,
    pub(crate) scope: String,
}

impl Bearer {
    /// Puts the token in `request`, and returns it.
    async fn authorize(&self, request: &mut http::Request<Bytes>) -> Result<crate::auth::AccessToken, ApiError> {
        use crate::auth::TokenSource as _;
        let token = self.tokens.token(&[self.scope.as_str()]).await?;
        let mut bearer = HeaderValue::try_from(format!("Bearer {}", token.token.expose()))
            .map_err(|_| ApiError::invalid("token", "the token has characters that cannot go in a header"))?;
        bearer.set_sensitive(true);
        request.headers_mut().insert(AUTHORIZATION, bearer);
        Ok(token)
    }
}

#[async_trait]
impl Policy for Bearer {
    async fn send(&self, ctx: &Context, request: &mut http::Request<Bytes>, next: Next<'_>) -> PolicyResult {
        self.authorize(request).await?;
        let response = next.send(ctx, request).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        self.tokens.forget(&[self.scope.as_str()]).await;
        tracing::debug!(operation = ctx.operation, "401: sending once more with a fresh token");
        let token = self.authorize(request).await?;
        let response = next.send(ctx, request).await?;
        if response.status() == StatusCode::UNAUTHORIZED
            && let Ok(mut slot) = ctx.refused_token_identity.lock()
        {
            // Read from the token's claims only now, for the message: never on the common path.
            let who = crate::auth::token_identity(&token.token)
                .map(|i| format!("the identity {i}"))
                .unwrap_or_else(|| "the identity signed in".into());
            *slot = Some(format!("a fresh token for {} was refused too: {who} has no access here", self.scope));
        }
        Ok(response)
    }
}

/// The end of the chain: the transport.
#[derive(Debug)]
pub(crate) struct Transmit {
    pub(crate) transport: Arc<dyn Transport>,
}

#[async_trait]
impl Policy for Transmit {
    async fn send(&self, ctx: &Context, request: &mut http::Request<Bytes>, _next: Next<'_>) -> PolicyResult {
        self.transport.send(clone_request(request)).await.map_err(|e| ApiError::Transport {
            service: ctx.service,
            operation: ctx.operation,
            kind: e.kind,
            message: e.message.clone(),
            attempts: ctx.attempt().max(1),
            source: Some(e),
        })
    }
}

/// Whether a method is safe to send twice by its nature.
pub(crate) fn idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context::new(Service::Dataverse, "test", true, 1)
    }

    fn answer(status: u16, body: &str) -> PolicyResult {
        Ok(http::Response::builder().status(status).body(Bytes::from(body.to_owned())).unwrap())
    }

    #[test]
    fn each_service_reads_its_own_signals() {
        let dv = ServiceClassifier(Service::Dataverse);
        let arm = ServiceClassifier(Service::Arm);
        let graph = ServiceClassifier(Service::Graph);
        let protection = r#"{"error":{"code":"0x80072321","message":"Combined execution time of incoming requests exceeded limit"}}"#;
        assert_eq!(dv.classify(&ctx(), &answer(429, protection)), RetryClass::Throttled);
        // A service protection code is throttling whatever status a gateway put on it.
        assert_eq!(dv.classify(&ctx(), &answer(503, protection)), RetryClass::Throttled);
        assert_eq!(dv.classify(&ctx(), &answer(400, r#"{"error":{"code":"0x80040237"}}"#)), RetryClass::Permanent);
        let concurrent = format!(r#"{{"error":{{"code":"{CONCURRENT_FIC_WRITES}","message":"..."}}}}"#);
        assert_eq!(arm.classify(&ctx(), &answer(409, &concurrent)), RetryClass::Transient);
        assert_eq!(graph.classify(&ctx(), &answer(409, &concurrent)), RetryClass::Permanent);
        assert_eq!(arm.classify(&ctx(), &answer(409, r#"{"error":{"code":"Conflict"}}"#)), RetryClass::Permanent);
        assert_eq!(graph.classify(&ctx(), &answer(200, "{}")), RetryClass::Success);
        assert_eq!(graph.classify(&ctx(), &answer(502, "")), RetryClass::Transient);
        let refused = Err(ApiError::Transport {
            service: Service::Graph,
            operation: "x",
            kind: TransportErrorKind::Connect,
            message: "refused".into(),
            attempts: 1,
            source: None,
        });
        assert_eq!(graph.classify(&ctx(), &refused), RetryClass::Transient);
        assert_eq!(graph.classify(&ctx(), &Err(ApiError::invalid("x", "y"))), RetryClass::Permanent);
    }

    #[test]
    fn a_request_copy_is_the_same_request() {
        let request = http::Request::builder()
            .method(Method::PATCH)
            .uri("https://contoso.crm.dynamics.com/api/data/v9.2/x")
            .header("if-match", "*")
            .body(Bytes::from_static(b"{}"))
            .unwrap();
        let copy = clone_request(&request);
        assert_eq!(
            (copy.method(), copy.uri(), copy.headers(), copy.body()),
            (request.method(), request.uri(), request.headers(), request.body())
        );
        assert_eq!(uri_origin(request.uri()), "https://contoso.crm.dynamics.com");
    }
}
