//! Thin typed clients for the Dataverse Web API, Microsoft Graph and Azure Resource Manager.
//!
//! One method per API call, typed in and out, no provisioning policy. Every client shares the same
//! machinery: a base URL (injectable, so tests point it at a loopback fake), a token requested for exactly
//! that origin, a [`RetryOptions`] policy, a concurrency limit shared by the client's clones, and a
//! `tracing` span per request that never records the token.

pub mod arm;
pub(crate) mod batch;
pub mod dataverse;
pub mod discovery;
mod error;
pub mod graph;
pub(crate) mod platform;
pub mod policy;
mod request;

use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;
pub use tokio::sync::Semaphore;
use url::Url;
use uuid::Uuid;

use crate::auth::{TokenCache, TokenSource};
use crate::http::{RetryOptions, Transport};
use policy::{ClassifyRetry, Policy};

pub use arm::{
    AUTHORIZATION_API_VERSION, ArmClient, ArmFederatedIdentityCredential, CONCURRENT_FIC_WRITES, CREATED_BY_TAG,
    DEFAULT_MANAGED_IDENTITY_API_VERSION, RoleAssignment, RoleDefinition, UserAssignedIdentity,
    UserAssignedIdentityRef, role_assignment_name,
};
pub use dataverse::{
    ApplicationUser, BusinessUnit, ComponentKind, ComponentManagedIdentityFic, DATAVERSE_HOST_SUFFIXES,
    DataverseClient, EnvironmentStatus, ManagedIdentityUpdate, OrgUrl, SecurityRole, WhoAmI,
};
pub use discovery::{DiscoveredEnvironment, GlobalDiscoveryClient};
pub use error::{ApiError, DATAVERSE_DUPLICATE_KEY, DATAVERSE_NOT_FOUND, ErrorDetail, Service, ServiceError};
pub use graph::{
    AppRef, AppRole, AppRoleAssignment, Application, CREATED_TAG, DirectoryPrincipal, GraphClient,
    GraphFederatedIdentityCredential, MICROSOFT_GRAPH_APP_ID, PermissionScope, ResourceServicePrincipal,
    ServicePrincipal, UpsertOutcome,
};
pub use platform::{
    DEFAULT_DATAVERSE_CONCURRENCY, DataverseBaseUrl, Endpoints, EndpointsFile, EndpointsFileError, Platform,
};
pub use request::{Answers, Batch, Request, Slot};

/// Options every client takes.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The retry policy.
    pub retry: RetryOptions,
    /// Most requests in flight at once, across all clones of the client. Dataverse allows 52 per user;
    /// the default, 8, leaves room for everything else the user runs.
    pub max_concurrency: usize,
    /// The transport; `None` uses [`ReqwestTransport`](crate::http::ReqwestTransport) with its default timeouts.
    pub transport: Option<Arc<dyn Transport>>,
    /// Base URL override, e.g. a loopback fake in tests. `http://` is accepted for loopback hosts only.
    pub base_url: Option<Url>,
    /// Counters to add this client's requests and retries to (shared by as many clients as you like).
    pub stats: Option<Arc<RequestStats>>,
    /// A concurrency limit shared with other clients (e.g. one per user across all environments); when set,
    /// it replaces `max_concurrency`.
    pub shared_limit: Option<ConcurrencyLimit>,
    /// Most pages one collection read follows (`@odata.nextLink`, ARM's `nextLink`): a link that repeats, or
    /// more pages than this, end the read with [`ApiError::Paging`]. Default [`DEFAULT_MAX_PAGES`].
    pub max_pages: usize,
    /// How a batch counts against the concurrency limit (`max_concurrency` / `shared_limit`).
    pub batch_permits: BatchPermits,
    /// The token cache, shared by as many clients as you like: then it is the only one, so the token a service
    /// refused with a 401 is dropped for every client that shares it, and the next request fetches a fresh one.
    /// When set, it supplies the tokens (its own credential), not the credential given to the client. `None`
    /// makes one per client around the client's credential. A [`Platform`] sets one for all the clients it makes.
    pub token_cache: Option<Arc<TokenCache>>,
    /// The caller's policies run once per call, before the time budget and the retries (see [`policy`]).
    pub per_call_policies: Vec<Arc<dyn Policy>>,
    /// The caller's policies run on every attempt, after the retry decision and before the transport (see
    /// [`policy`]): a correlation-id header, OpenTelemetry, a proxy's header.
    pub per_try_policies: Vec<Arc<dyn Policy>>,
    /// The retry classifier; `None` is the service's own ([`policy::ServiceClassifier`]).
    pub classifier: Option<Arc<dyn ClassifyRetry>>,
}

impl ClientOptions {
    /// Adds a policy run once per call (see [`policy`]).
    pub fn with_per_call_policy(mut self, policy: impl Policy + 'static) -> Self {
        self.per_call_policies.push(Arc::new(policy));
        self
    }

    /// Adds a policy run on every attempt (see [`policy`]).
    pub fn with_per_try_policy(mut self, policy: impl Policy + 'static) -> Self {
        self.per_try_policies.push(Arc::new(policy));
        self
    }
}

/// A concurrency limit clients share: a semaphore and its size (a batch that takes one permit per inner request
/// takes at most the size, never waiting for more permits than exist).
///
/// ```
/// use dataverse_mi::clients::{ClientOptions, ConcurrencyLimit};
/// // Every Dataverse client of one user, across environments: 16 requests in flight at most.
/// let limit = ConcurrencyLimit::new(16);
/// let options = ClientOptions { shared_limit: Some(limit.clone()), ..ClientOptions::default() };
/// assert_eq!(limit.size(), 16);
/// ```
#[derive(Debug, Clone)]
pub struct ConcurrencyLimit {
    semaphore: Arc<Semaphore>,
    size: usize,
}

impl ConcurrencyLimit {
    /// A limit of `permits` requests in flight (1 to [`Semaphore::MAX_PERMITS`]).
    pub fn new(permits: usize) -> Self {
        let size = permits.clamp(1, Semaphore::MAX_PERMITS);
        ConcurrencyLimit { semaphore: Arc::new(Semaphore::new(size)), size }
    }

    /// Its size.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Permits free now.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }
}

/// How many concurrency permits a batch (Dataverse `$batch`, Graph JSON batch) holds while it is in flight.
///
/// Dataverse's service protection limits count three things per user: requests, their combined execution time,
/// and concurrent requests (Learn, "Service protection API limits"). A batch is one concurrent request, whose
/// inner requests the server executes one after another, so by default it holds one permit; its inner requests
/// are counted as requests ([`RequestStats::batched`]). `PerRequest` holds one permit per inner request
/// instead (at most the limit's size), for a caller who wants the conservative reading: a batch then costs as
/// much concurrency as its requests sent one by one, and batching saves round trips but no throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BatchPermits {
    /// One permit per batch (a batch is one request in flight).
    #[default]
    PerRoundTrip,
    /// One permit per request inside the batch.
    PerRequest,
}

/// The most requests Microsoft Graph takes in one JSON batch.
pub const GRAPH_BATCH_LIMIT: usize = 20;

/// The most requests Dataverse takes in one `$batch` (Learn, "Execute batch operations using the Web API").
pub const DATAVERSE_BATCH_LIMIT: usize = 1000;

/// How a batch goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchFormat {
    /// Dataverse's OData `$batch` (`multipart/mixed`).
    Multipart,
    /// Microsoft Graph's JSON batch.
    Json,
}

/// A call as a request inside a Dataverse batch (its absolute URL, its headers, its body).
fn batch_request(call: &Call, content_id: Option<u32>) -> batch::BatchRequest {
    batch::BatchRequest {
        method: call.method.clone(),
        url: call.url.to_string(),
        headers: call
            .headers
            .iter()
            .filter(|(n, _)| *n != CONTENT_TYPE)
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: call.body.as_ref().map(|b| b.to_vec()),
        content_id,
    }
}

/// The default [`ClientOptions::max_pages`]: 1,000 pages (half a million rows at Dataverse's 500 per page).
pub const DEFAULT_MAX_PAGES: usize = 1_000;

/// Request and retry counters, shared by the clients given them in [`ClientOptions::stats`].
///
/// The clients add to their own counters (a platform's: [`Platform::stats`], totals for everyone using it) and,
/// while a future runs under [`RequestStats::counting`], to that future's counters too: what one call of a shared
/// engine sent, apart from everything else sent at the same time.
#[derive(Debug, Default)]
pub struct RequestStats {
    requests: std::sync::atomic::AtomicU64,
    retries: std::sync::atomic::AtomicU64,
    inner: std::sync::atomic::AtomicU64,
}

tokio::task_local! {
    /// The counters of the calls running on this task, outermost first ([`RequestStats::counting`]).
    static CALL_STATS: Arc<Vec<Arc<RequestStats>>>;
}

impl RequestStats {
    /// Runs `future` with `counters` counting every request, retry and batched request the clients send while
    /// it runs, in addition to the clients' own counters and those of any `counting` it runs inside. It follows
    /// the future through `join!`, `select!` and streams polled inside it; a task spawned from it is not counted.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use dataverse_mi::clients::RequestStats;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let mine = Arc::new(RequestStats::default());
    /// let answer = RequestStats::counting(&mine, async { 42 }).await;
    /// assert_eq!((answer, mine.requests()), (42, 0)); // nothing was sent
    /// # }
    /// ```
    pub async fn counting<F: std::future::Future>(counters: &Arc<RequestStats>, future: F) -> F::Output {
        let mut chain = CALL_STATS.try_with(|outer| outer.as_ref().clone()).unwrap_or_default();
        if !chain.iter().any(|c| Arc::ptr_eq(c, counters)) {
            chain.push(counters.clone());
        }
        CALL_STATS.scope(Arc::new(chain), future).await
    }

    /// Adds to these counters and to the running call's (unless they are the same).
    fn add(&self, field: impl Fn(&RequestStats) -> &std::sync::atomic::AtomicU64, n: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        field(self).fetch_add(n, Relaxed);
        let _ = CALL_STATS.try_with(|calls| {
            for call in calls.iter().filter(|c| !std::ptr::eq(Arc::as_ptr(c), self)) {
                field(call).fetch_add(n, Relaxed);
            }
        });
    }

    pub(crate) fn add_request(&self) {
        self.add(|s| &s.requests, 1);
    }

    pub(crate) fn add_retry(&self) {
        self.add(|s| &s.retries, 1);
    }

    pub(crate) fn add_batched(&self, n: u64) {
        self.add(|s| &s.inner, n);
    }

    /// Requests sent (every attempt counts).
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Attempts that were retries.
    pub fn retries(&self) -> u64 {
        self.retries.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Requests sent inside batches (Dataverse `$batch`, Graph JSON batching); each batch itself counts once in
    /// [`requests`](Self::requests), as the round trip it is.
    pub fn batched(&self) -> u64 {
        self.inner.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            retry: RetryOptions::default(),
            max_concurrency: 8,
            transport: None,
            base_url: None,
            stats: None,
            shared_limit: None,
            max_pages: DEFAULT_MAX_PAGES,
            batch_permits: BatchPermits::default(),
            token_cache: None,
            per_call_policies: Vec::new(),
            per_try_policies: Vec::new(),
            classifier: None,
        }
    }
}

pub(crate) fn default_transport() -> Result<Arc<dyn Transport>, ApiError> {
    #[cfg(feature = "reqwest")]
    {
        let t = crate::http::ReqwestTransport::new(crate::http::ReqwestOptions::default())
            .map_err(|e| ApiError::invalid("transport", e.message))?;
        Ok(Arc::new(t))
    }
    #[cfg(not(feature = "reqwest"))]
    {
        Err(ApiError::invalid("transport", "the `reqwest` feature is off: pass ClientOptions::transport"))
    }
}

/// The base URL: the override in `options`, else `{endpoint}/{suffix}`.
pub(crate) fn base_url(
    options: &ClientOptions,
    endpoint: &str,
    suffix: &str,
    what: &'static str,
) -> Result<Url, ApiError> {
    match &options.base_url {
        Some(b) => Ok(b.clone()),
        None => Url::parse(&format!("{}/{suffix}", endpoint.trim_end_matches('/')))
            .map_err(|e| ApiError::invalid(what, e.to_string())),
    }
}

/// Whether a URL may be used as a base: `https://`, or `http://` to a loopback host.
pub(crate) fn check_base(url: &Url, what: &'static str) -> Result<(), ApiError> {
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(ApiError::invalid(what, format!("'{url}' has no host"))),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => {
            Err(ApiError::invalid(what, format!("'{url}' is not https (plain http is allowed only to loopback)")))
        }
        other => Err(ApiError::invalid(what, format!("'{url}' has the scheme '{other}'; use https"))),
    }
}

/// The shared request machinery of one client: its base URL and its chain of policies ([`policy`]). Cheap to
/// clone; clones share the chain (and so the limit, the counters and the token cache).
#[derive(Debug, Clone)]
pub(crate) struct Pipeline {
    service: Service,
    base: Url,
    origin: String,
    scope: String,
    policies: Arc<[Arc<dyn Policy>]>,
    retry: RetryOptions,
    batch_permits: BatchPermits,
    stats: Arc<RequestStats>,
    max_pages: usize,
}

/// One request to make.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) operation: &'static str,
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Option<Bytes>,
    /// Whether sending the request twice is harmless (set by the client method that knows).
    pub(crate) retry_safe: bool,
    /// Concurrency permits the request takes: one, or one per inner request of a batch (service protection
    /// counts those).
    pub(crate) permits: u32,
    /// A 404 is an answer to read (as "none"), not an error.
    pub(crate) absent_ok: bool,
}

impl Call {
    pub(crate) fn new(operation: &'static str, method: Method, url: Url) -> Self {
        let retry_safe = policy::idempotent(&method);
        Call { operation, method, url, headers: Vec::new(), body: None, retry_safe, permits: 1, absent_ok: false }
    }

    pub(crate) fn json<T: serde::Serialize + ?Sized>(mut self, body: &T) -> Result<Self, ApiError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ApiError::invalid("request body", e.to_string()))?;
        self.headers.push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
        self.body = Some(Bytes::from(bytes));
        Ok(self)
    }

    /// Marks the request as safe to send twice (the client method explains why).
    pub(crate) fn retry_safe(mut self, safe: bool) -> Self {
        self.retry_safe = safe;
        self
    }

    /// The HTTP request it is (without the token: the bearer policy adds it).
    fn request(&self) -> Result<http::Request<Bytes>, ApiError> {
        let mut builder = http::Request::builder()
            .method(self.method.clone())
            .uri(self.url.as_str())
            .header(ACCEPT, "application/json");
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        builder.body(self.body.clone().unwrap_or_default()).map_err(|e| ApiError::invalid("request", e.to_string()))
    }
}

fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

impl Pipeline {
    pub(crate) fn new(
        service: Service,
        base: Url,
        credential: Arc<dyn TokenSource>,
        options: ClientOptions,
    ) -> Result<Self, ApiError> {
        check_base(&base, "base URL")?;
        let transport = match options.transport {
            Some(t) => t,
            None => default_transport()?,
        };
        let origin = origin(&base);
        let scope = format!("{origin}/.default");
        let limit = options.shared_limit.unwrap_or_else(|| ConcurrencyLimit::new(options.max_concurrency));
        let rng = match options.retry.seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        let stats = options.stats.unwrap_or_default();
        let tokens = options.token_cache.unwrap_or_else(|| Arc::new(TokenCache::new(credential)));
        let mut policies: Vec<Arc<dyn Policy>> = options.per_call_policies;
        policies.push(Arc::new(policy::Budget { max_elapsed: options.retry.max_elapsed }));
        policies.push(Arc::new(policy::Retry {
            options: options.retry.clone(),
            classifier: options.classifier.unwrap_or_else(|| Arc::new(policy::ServiceClassifier(service))),
            stats: stats.clone(),
            rng: std::sync::Mutex::new(rng),
        }));
        policies.extend(options.per_try_policies);
        policies.push(Arc::new(policy::Limit {
            capacity: u32::try_from(limit.size).unwrap_or(u32::MAX),
            semaphore: limit.semaphore,
        }));
        policies.push(Arc::new(policy::OriginGuard::of(&base)));
        policies.push(Arc::new(policy::Bearer { tokens, scope: scope.clone() }));
        // Below the bearer policy: the request sent again with a fresh token after a 401 has its own span and count.
        policies.push(Arc::new(policy::Span));
        policies.push(Arc::new(policy::Count { stats: stats.clone() }));
        policies.push(Arc::new(policy::Transmit { transport }));
        Ok(Pipeline {
            service,
            scope,
            origin,
            base,
            policies: policies.into(),
            retry: options.retry,
            batch_permits: options.batch_permits,
            stats,
            max_pages: options.max_pages.max(1),
        })
    }

    /// The scope tokens are requested for: the base URL's origin and `/.default`.
    pub(crate) fn scope(&self) -> &str {
        &self.scope
    }

    /// A URL under the base. `path` is relative and already escaped.
    pub(crate) fn url(&self, path: &str) -> Result<Url, ApiError> {
        self.base.join(path).map_err(|e| ApiError::invalid("URL", format!("{path}: {e}")))
    }

    /// Checks that a URL given by a server (a paging link) stays on the client's origin.
    pub(crate) fn same_origin(&self, url: &str) -> Result<Url, ApiError> {
        let parsed = Url::parse(url).map_err(|e| ApiError::invalid("link", format!("{url}: {e}")))?;
        if origin(&parsed) != self.origin {
            return Err(ApiError::ForeignHost { expected: self.origin.clone(), found: origin(&parsed) });
        }
        Ok(parsed)
    }

    /// Sends a call through the chain of policies; returns the successful response or the error.
    pub(crate) async fn send(&self, call: Call) -> Result<http::Response<Bytes>, ApiError> {
        let mut request = call.request()?;
        let ctx = policy::Context::new(self.service, call.operation, call.retry_safe, call.permits);
        let response = policy::Next::new(&self.policies).send(&ctx, &mut request).await?;
        if response.status().is_success()
            || response.status().is_redirection()
            || (call.absent_ok && response.status() == StatusCode::NOT_FOUND)
        {
            return Ok(response);
        }
        let mut e = error::service_error(self.service, call.operation, &response, ctx.attempt().max(1));
        if let (ApiError::Service(inner), Some(note)) = (&mut e, ctx.refused_token_identity()) {
            inner.message = format!("{} ({note})", inner.message);
        }
        Err(e)
    }

    /// The call a request head makes on this client: its path under the base, or its link (a next page) checked
    /// to stay on the client's origin.
    pub(crate) fn call_of(&self, head: &request::Head) -> Result<Call, ApiError> {
        if let Some(e) = &head.invalid {
            return Err(e.clone());
        }
        let url = match &head.target {
            request::Target::Path(path) => self.url(path)?,
            request::Target::Link(link) => self.same_origin(link)?,
        };
        let mut call = Call::new(head.operation, head.method.clone(), url).retry_safe(head.retry_safe);
        call.headers = head.headers.clone();
        call.body = head.body.clone();
        call.absent_ok = head.absent_ok;
        Ok(call)
    }

    /// Sends a request value and reads its answer with its decoder (every page of a collection).
    pub(crate) async fn execute<T>(&self, request: request::Request<T>) -> Result<T, ApiError> {
        let outcome = match self.call_of(&request.head) {
            Ok(call) => self.send(call).await,
            Err(e) => Err(e),
        };
        self.finish(request, outcome).await
    }

    /// Reads the answer of a request's first round trip (sent alone or in a batch) with its decoder, reading what
    /// else it needs alone (further pages; a file column): a repeated next-page link, or more pages than
    /// `max_pages`, end the read with [`ApiError::Paging`].
    pub(crate) async fn finish<T>(
        &self,
        request: request::Request<T>,
        outcome: Result<http::Response<Bytes>, ApiError>,
    ) -> Result<T, ApiError> {
        let operation = request.head.operation;
        let mut step = (request.decode)(self.service, operation, outcome?)?;
        let mut pages = 1usize;
        let mut seen = std::collections::HashSet::new();
        loop {
            let (so_far, next, merge) = match step {
                request::Step::Done(value) => return Ok(value),
                request::Step::Then(so_far, next, merge) => (so_far, next, merge),
            };
            self.may_follow(&next.head, pages, &mut seen)?;
            let response = self.send(self.call_of(&next.head)?).await?;
            pages += 1;
            step = match (next.decode)(self.service, operation, response)? {
                request::Step::Done(value) => request::Step::Done(merge(so_far, value)),
                request::Step::Then(value, more, m) => request::Step::Then(merge(so_far, value), more, m),
            };
        }
    }

    /// Whether a next page may be read after `pages` pages: a server whose links repeat or never end would read
    /// forever, so a link seen before, or more pages than `max_pages`, end the read with [`ApiError::Paging`].
    fn may_follow(
        &self,
        next: &request::Head,
        pages: usize,
        seen: &mut std::collections::HashSet<String>,
    ) -> Result<(), ApiError> {
        let request::Target::Link(link) = &next.target else { return Ok(()) };
        let paging =
            |reason: String| ApiError::Paging { service: self.service, operation: next.operation, pages, reason };
        if !seen.insert(link.clone()) {
            return Err(paging(format!("the next page's link repeats an earlier one: '{}'", crate::guid::clip(link))));
        }
        if pages >= self.max_pages {
            return Err(paging(format!("more than {} pages (ClientOptions::max_pages)", self.max_pages)));
        }
        Ok(())
    }

    /// Sends each request of a batch on its own (at most `max_concurrency` at once, as the limit allows).
    pub(crate) async fn send_each(&self, batch: &request::Batch) -> request::Answers {
        use futures_util::StreamExt as _;
        let mut sends: Vec<futures_util::future::BoxFuture<'_, Box<dyn std::any::Any + Send>>> = Vec::new();
        for item in &batch.items {
            sends.push(Box::pin(async move {
                let outcome = match self.call_of(item.head()) {
                    Ok(call) => self.send(call).await,
                    Err(e) => Err(e),
                };
                item.finish(self, outcome).await
            }));
        }
        let answers = futures_util::stream::iter(sends).buffered(8).collect::<Vec<_>>().await;
        request::Answers::new(answers, batch.len())
    }

    /// Waits before sending throttled batch items again, if the retry policy allows another round: the longest
    /// wait the items ask for (each its own `Retry-After`), never at once, within the call's time budget.
    async fn wait_for_throttled(
        &self,
        round: u32,
        waits: &[std::time::Duration],
        started: tokio::time::Instant,
    ) -> bool {
        let Some(wait) = waits.iter().max().copied() else { return false };
        let wait = wait.max(self.retry.backoff(round)).min(crate::http::MAX_RETRY_WAIT);
        if round >= self.retry.max_attempts || started.elapsed().saturating_add(wait) > self.retry.max_elapsed {
            return false;
        }
        tracing::debug!(service = %self.service, items = waits.len(), wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "batch items throttled: sending them again");
        self.stats.add_retry();
        tokio::time::sleep(wait).await;
        true
    }

    /// Sends a batch as Dataverse `$batch` round trips (`Prefer: odata.continue-on-error`; at most
    /// [`DATAVERSE_BATCH_LIMIT`] requests each): see [`send_in_rounds`](Self::send_in_rounds).
    pub(crate) async fn send_dataverse_batch(&self, batch: &request::Batch) -> request::Answers {
        self.send_in_rounds(batch, BatchFormat::Multipart).await
    }

    /// Sends a batch as Microsoft Graph JSON batches (`POST {base}$batch`, at most [`GRAPH_BATCH_LIMIT`] requests
    /// each, each URL under this client's base; Graph answers in any order, matched by id): see
    /// [`send_in_rounds`](Self::send_in_rounds).
    pub(crate) async fn send_graph_batch(&self, batch: &request::Batch) -> request::Answers {
        self.send_in_rounds(batch, BatchFormat::Json).await
    }

    /// The one batching loop, whatever the wire format: the requests in round trips of at most the format's limit,
    /// each answer read by its own request's decoder. Items answered 429 are sent again, in a new batch, after the
    /// longest wait they ask for (each its own `Retry-After`), within the retry policy's attempts and time budget.
    /// A batch that fails as a whole (not sent, not answered, not readable) is every item's error, and the answers
    /// say so ([`Answers::failed_as_a_whole`](request::Answers::failed_as_a_whole)).
    async fn send_in_rounds(&self, batch: &request::Batch, format: BatchFormat) -> request::Answers {
        let items = &batch.items;
        let mut outcomes: Vec<Option<Result<http::Response<Bytes>, ApiError>>> = vec![None; items.len()];
        let mut round_trips = 0;
        let mut whole = None;
        let started = tokio::time::Instant::now();
        let limit = match format {
            BatchFormat::Multipart => DATAVERSE_BATCH_LIMIT,
            BatchFormat::Json => GRAPH_BATCH_LIMIT,
        };
        for chunk_start in (0..items.len()).step_by(limit) {
            let mut pending: Vec<usize> = (chunk_start..items.len().min(chunk_start + limit)).collect();
            let mut round = 0;
            while !pending.is_empty() {
                round += 1;
                let mut calls = Vec::new();
                let mut sent = Vec::new();
                for &i in &pending {
                    match self.call_of(items[i].head()) {
                        Ok(call) => {
                            calls.push(call);
                            sent.push(i);
                        }
                        Err(e) => outcomes[i] = Some(Err(e)),
                    }
                }
                if sent.is_empty() {
                    break;
                }
                round_trips += 1;
                let responses = match format {
                    BatchFormat::Multipart => self.multipart_batch(&calls).await,
                    BatchFormat::Json => self.json_batch("send a batch", &calls).await,
                };
                let responses = match responses {
                    Ok(r) => r,
                    Err(e) => {
                        sent.iter().for_each(|&i| outcomes[i] = Some(Err(e.clone())));
                        whole = Some(e);
                        break;
                    }
                };
                let mut throttled = Vec::new();
                let mut waits = Vec::new();
                for (i, response) in sent.into_iter().zip(responses) {
                    if let Some(wait) = request::throttled_wait(&response) {
                        waits.push(wait);
                        throttled.push(i);
                    }
                    outcomes[i] = Some(self.inner_result(items[i].head(), response));
                }
                if !self.wait_for_throttled(round, &waits, started).await {
                    break;
                }
                pending = throttled;
            }
        }
        self.finish_all(items, outcomes, round_trips).await.failed_with(whole)
    }

    /// One Dataverse `$batch` of single requests: one answer per call, in order, or the batch's error.
    async fn multipart_batch(&self, calls: &[Call]) -> Result<Vec<http::Response<Bytes>>, ApiError> {
        let parts: Vec<batch::BatchPart> =
            calls.iter().map(|call| batch::BatchPart::Request(batch_request(call, None))).collect();
        let retry_safe = calls.iter().all(|c| c.retry_safe);
        let responses = self.batch("read in a batch", &parts, retry_safe).await?;
        self.one_answer_each("read in a batch", responses.len(), calls.len())?;
        Ok(responses.into_iter().map(batch::BatchResponse::into_http).collect())
    }

    /// A batch answer must have one answer per request: otherwise it is not readable.
    fn one_answer_each(&self, operation: &'static str, answers: usize, requests: usize) -> Result<(), ApiError> {
        if answers == requests {
            return Ok(());
        }
        Err(ApiError::Decode {
            service: self.service,
            operation,
            path: "$batch".into(),
            message: format!("{answers} answers to {requests} requests"),
            source: None,
        })
    }

    /// Reads every item's outcome with its own decoder (further pages alone, four at a time).
    async fn finish_all(
        &self,
        items: &[Arc<dyn request::Erased>],
        outcomes: Vec<Option<Result<http::Response<Bytes>, ApiError>>>,
        round_trips: usize,
    ) -> request::Answers {
        use futures_util::StreamExt as _;
        let mut reads: Vec<futures_util::future::BoxFuture<'_, Box<dyn std::any::Any + Send>>> = Vec::new();
        for (item, outcome) in items.iter().zip(outcomes) {
            let outcome = outcome.unwrap_or_else(|| Err(ApiError::invalid("batch", "the request was not sent")));
            reads.push(item.finish(self, outcome));
        }
        let answers = futures_util::stream::iter(reads).buffered(4).collect::<Vec<_>>().await;
        request::Answers::new(answers, round_trips)
    }

    /// Sends a batch as one Dataverse change set: together or not at all. A request naming a row an earlier
    /// request of the set creates refers to it by `Content-ID` (`$n`). When the set fails, its error is the failing
    /// request's (typed as its single request's would be); a set answered 429 is sent again after the wait it asks.
    pub(crate) async fn send_change_set(&self, batch: &request::Batch) -> Result<request::Answers, ApiError> {
        let items = &batch.items;
        if items.is_empty() {
            return Ok(request::Answers::new(Vec::new(), 0));
        }
        let mut requests = Vec::with_capacity(items.len());
        let mut created: Vec<(String, u32)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let content_id = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let mut call = self.call_of(item.head())?;
            if let Some(body) = &call.body {
                let mut text = String::from_utf8_lossy(body).into_owned();
                for (entity, id) in &created {
                    text = text.replace(&format!("\"{entity}\""), &format!("\"${id}\""));
                }
                call.body = Some(Bytes::from(text));
            }
            if let Some(entity) = &item.head().creates {
                created.push((entity.clone(), content_id));
            }
            requests.push(batch_request(&call, Some(content_id)));
        }
        let started = tokio::time::Instant::now();
        let mut round = 0;
        let responses = loop {
            round += 1;
            let parts = [batch::BatchPart::ChangeSet(requests.clone())];
            let responses = self.batch("write a change set", &parts, true).await?;
            // A change set that failed answers with the one response that failed it.
            let Some(failed) = responses.iter().find(|r| !r.status.is_success()).cloned() else { break responses };
            let response = failed.into_http();
            if let Some(wait) = request::throttled_wait(&response)
                && self.wait_for_throttled(round, &[wait], started).await
            {
                continue;
            }
            return Err(error::service_error(self.service, "write a change set", &response, round));
        };
        self.one_answer_each("write a change set", responses.len(), items.len())?;
        let outcomes = items
            .iter()
            .zip(responses)
            .map(|(item, response)| Some(self.inner_result(item.head(), response.into_http())))
            .collect();
        Ok(self.finish_all(items, outcomes, usize::try_from(round).unwrap_or(usize::MAX)).await)
    }

    /// Sends a call and decodes the JSON body, naming the JSON path on failure.
    pub(crate) async fn json<T: DeserializeOwned>(&self, call: Call) -> Result<T, ApiError> {
        let operation = call.operation;
        let response = self.send(call).await?;
        decode(self.service, operation, response.body())
    }

    /// Sends a Dataverse `$batch` (at `{base}$batch`) and reads its answer: one response per request, in order.
    /// Takes one concurrency permit per inner request. Answers that are not a readable batch are errors
    /// (`ApiError::Decode`).
    pub(crate) async fn batch(
        &self,
        operation: &'static str,
        parts: &[batch::BatchPart],
        retry_safe: bool,
    ) -> Result<Vec<batch::BatchResponse>, ApiError> {
        let inner: usize = parts
            .iter()
            .map(|p| match p {
                batch::BatchPart::Request(_) => 1,
                batch::BatchPart::ChangeSet(r) => r.len(),
            })
            .sum();
        let boundary = batch::boundary("batch");
        let mut call = Call::new(operation, Method::POST, self.url("$batch")?).retry_safe(retry_safe);
        call.headers.push((
            CONTENT_TYPE,
            HeaderValue::try_from(format!("multipart/mixed; boundary={boundary}"))
                .map_err(|_| ApiError::invalid("batch", "boundary"))?,
        ));
        call.headers.push((HeaderName::from_static("prefer"), HeaderValue::from_static("odata.continue-on-error")));
        call.body = Some(Bytes::from(batch::build_request(&boundary, parts)));
        call.permits = self.batch_permits(inner);
        let response = self.send(call).await?;
        self.stats.add_batched(inner as u64);
        let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        batch::parse_response(content_type, response.body()).map_err(|e| ApiError::Decode {
            service: self.service,
            operation,
            path: "$batch".into(),
            message: e.to_string(),
            source: None,
        })
    }

    /// Sends one Microsoft Graph JSON batch (`POST {base}$batch`, `{"requests": [...]}`, at most
    /// [`GRAPH_BATCH_LIMIT`] requests, each URL under this client's base); returns each inner response in the order
    /// of the calls (Graph answers in any order, matched by id).
    async fn json_batch(
        &self,
        operation: &'static str,
        calls: &[Call],
    ) -> Result<Vec<http::Response<Bytes>>, ApiError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            responses: Vec<Inner>,
        }
        #[derive(serde::Deserialize)]
        struct Inner {
            id: String,
            status: u16,
            #[serde(default)]
            headers: std::collections::BTreeMap<String, String>,
            #[serde(default)]
            body: Option<serde_json::Value>,
        }
        if calls.len() > GRAPH_BATCH_LIMIT {
            return Err(ApiError::invalid(
                "batch",
                format!("{} requests; Graph takes at most {GRAPH_BATCH_LIMIT}", calls.len()),
            ));
        }
        let mut listed = Vec::with_capacity(calls.len());
        for (i, call) in calls.iter().enumerate() {
            let relative = call
                .url
                .as_str()
                .strip_prefix(self.base.as_str())
                .ok_or_else(|| ApiError::invalid("batch", format!("{} is not under {}", call.url, self.base)))?;
            let mut r = serde_json::json!({"id": (i + 1).to_string(), "method": call.method.as_str(), "url": format!("/{relative}")});
            let mut headers = serde_json::Map::new();
            for (name, value) in call.headers.iter().filter(|(n, _)| *n != CONTENT_TYPE) {
                if let Ok(v) = value.to_str() {
                    headers.insert(name.as_str().to_owned(), serde_json::Value::String(v.to_owned()));
                }
            }
            if let Some(body) = &call.body {
                let body: serde_json::Value = serde_json::from_slice(body)
                    .map_err(|e| ApiError::invalid("batch", format!("a request body is not JSON: {e}")))?;
                r["body"] = body;
                headers.insert("Content-Type".into(), "application/json".into());
            }
            if !headers.is_empty() {
                r["headers"] = serde_json::Value::Object(headers);
            }
            listed.push(r);
        }
        let mut call = Call::new(operation, Method::POST, self.url("$batch")?)
            .json(&serde_json::json!({ "requests": listed }))?
            .retry_safe(calls.iter().all(|c| c.retry_safe));
        call.permits = self.batch_permits(calls.len());
        let answer: Answer = self.json(call).await?;
        self.stats.add_batched(calls.len() as u64);
        let mut by_id: std::collections::HashMap<String, Inner> =
            answer.responses.into_iter().map(|r| (r.id.clone(), r)).collect();
        let mut out = Vec::with_capacity(calls.len());
        for i in 1..=calls.len() {
            let inner = by_id.remove(&i.to_string()).ok_or_else(|| ApiError::Decode {
                service: self.service,
                operation,
                path: "responses".into(),
                message: format!("no response for request {i}"),
                source: None,
            })?;
            let body = inner.body.map(|b| serde_json::to_vec(&b).unwrap_or_default()).unwrap_or_default();
            let mut response = http::Response::new(Bytes::from(body));
            *response.status_mut() = StatusCode::from_u16(inner.status).unwrap_or(StatusCode::BAD_GATEWAY);
            for (name, value) in inner.headers {
                if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
                    response.headers_mut().insert(n, v);
                }
            }
            out.push(response);
        }
        Ok(out)
    }

    fn batch_permits(&self, inner: usize) -> u32 {
        match self.batch_permits {
            BatchPermits::PerRoundTrip => 1,
            BatchPermits::PerRequest => u32::try_from(inner).unwrap_or(u32::MAX),
        }
    }

    /// A response inside a batch read as the answer of the request alone: the typed error for a failure, as
    /// [`send`](Self::send) would give it (a 404 passed on to a request that reads it as "none").
    pub(crate) fn inner_result(
        &self,
        head: &request::Head,
        response: http::Response<Bytes>,
    ) -> Result<http::Response<Bytes>, ApiError> {
        if response.status().is_success() || (head.absent_ok && response.status() == StatusCode::NOT_FOUND) {
            Ok(response)
        } else {
            Err(error::service_error(self.service, head.operation, &response, 1))
        }
    }
}

/// What a create returned: the row as stored, or only its id (from `OData-EntityId`) when the service answered
/// `204 No Content` although the representation was asked for.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Created<T> {
    /// The id from `OData-EntityId`, when the answer had no body.
    pub id: Option<Uuid>,
    /// The row as stored, when the answer had a body.
    pub row: Option<T>,
}

/// The answer of a create (`Prefer: return=representation`): the created row, or, where the service answers 204
/// anyway, the new row's id from the `OData-EntityId` header.
pub(crate) fn created<T: DeserializeOwned>(
    service: Service,
    operation: &'static str,
    response: &http::Response<Bytes>,
) -> Result<Created<T>, ApiError> {
    if !response.body().is_empty() {
        let row: T = decode(service, operation, response.body())?;
        return Ok(Created { id: None, row: Some(row) });
    }
    let header = response.headers().get("odata-entityid").and_then(|v| v.to_str().ok());
    let id = header.and_then(entity_id_of).ok_or_else(|| ApiError::Decode {
        service,
        operation,
        path: "OData-EntityId".into(),
        message: match header {
            Some(h) => {
                format!("the answer has no body and its OData-EntityId '{}' names no row id", crate::guid::clip(h))
            }
            None => "the answer has neither a body nor an OData-EntityId header".into(),
        },
        source: None,
    })?;
    Ok(Created { id: Some(id), row: None })
}

/// The row id at the end of an `OData-EntityId` URL: `.../managedidentities(4b037f42-...)`.
fn entity_id_of(url: &str) -> Option<Uuid> {
    let inner = url.trim_end().strip_suffix(')')?;
    let start = inner.rfind('(')?;
    crate::guid::parse_guid(&inner[start + 1..]).ok()
}

pub(crate) fn decode<T: DeserializeOwned>(
    service: Service,
    operation: &'static str,
    body: &[u8],
) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| ApiError::Decode {
        service,
        operation,
        path: e.path().to_string(),
        message: e.inner().to_string(),
        source: Some(Arc::new(e.into_inner())),
    })
}

/// A page of an OData collection.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Page<T> {
    pub(crate) value: Vec<T>,
    #[serde(rename = "@odata.nextLink", alias = "nextLink", default)]
    pub(crate) next_link: Option<String>,
}

impl Pipeline {
    /// The pages of a collection as they come, one request each, read by the request's own decoder: a reader keeps
    /// one page in memory at a time. The same paging as [`finish`](Self::finish) (the same checks on each next
    /// link), yielding each page instead of merging them.
    pub(crate) fn pages<'a, T: Send + 'static>(
        &'a self,
        first: request::Request<Vec<T>>,
    ) -> impl futures_util::Stream<Item = Result<Vec<T>, ApiError>> + Send + 'a {
        let state = (Some(first), 0usize, std::collections::HashSet::<String>::new());
        futures_util::stream::unfold(state, move |(next, pages, mut seen)| async move {
            let request = next?;
            let read = async {
                self.may_follow(&request.head, pages, &mut seen)?;
                let response = self.send(self.call_of(&request.head)?).await?;
                (request.decode)(self.service, request.head.operation, response)
            };
            match read.await {
                Ok(request::Step::Done(rows)) => Some((Ok(rows), (None, pages + 1, seen))),
                Ok(request::Step::Then(rows, more, _)) => Some((Ok(rows), (Some(*more), pages + 1, seen))),
                Err(e) => Some((Err(e), (None, pages + 1, seen))),
            }
        })
    }
}

/// `path?k=v&...`, the pairs escaped as a query.
pub(crate) fn with_query(path: String, pairs: &[(&str, &str)]) -> String {
    let start = path.len() + 1;
    let mut query = url::form_urlencoded::Serializer::for_suffix(format!("{path}?"), start);
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    query.finish()
}

/// A path segment, escaped: everything but letters, digits and `-._~` as `%XX`.
pub(crate) fn path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escapes a string for an OData literal: `'` doubled, the whole in single quotes.
pub fn odata_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `field eq 'a' or field eq 'b' ...`, escaped.
pub(crate) fn any_of(field: &str, values: &[&str]) -> String {
    values.iter().map(|v| format!("{field} eq {}", odata_string(v))).collect::<Vec<_>>().join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Secret, StaticToken};
    use crate::http::TransportError;
    use std::sync::Mutex;
    use std::time::{Duration, SystemTime};

    #[derive(Debug, Default)]
    struct Always503(Mutex<u32>);

    #[async_trait::async_trait]
    impl Transport for Always503 {
        async fn send(&self, _r: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
            *self.0.lock().unwrap() += 1;
            Ok(http::Response::builder().status(503).body(Bytes::new()).unwrap())
        }
    }

    fn pipeline(t: Arc<Always503>) -> Pipeline {
        let token = Arc::new(StaticToken::new(Secret::new("t"), SystemTime::now() + Duration::from_secs(3600)));
        let options = ClientOptions {
            transport: Some(t),
            retry: RetryOptions { jitter: 0.0, ..RetryOptions::default() },
            ..ClientOptions::default()
        };
        Pipeline::new(Service::Graph, Url::parse("https://graph.microsoft.com/v1.0/").unwrap(), token, options).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn unsafe_calls_are_sent_once_safe_ones_retried() {
        let t = Arc::new(Always503::default());
        let p = pipeline(t.clone());
        let url = p.url("things").unwrap();
        assert!(p.send(Call::new("post", Method::POST, url.clone())).await.is_err());
        assert_eq!(*t.0.lock().unwrap(), 1);
        assert!(p.send(Call::new("patch", Method::PATCH, url.clone())).await.is_err());
        assert_eq!(*t.0.lock().unwrap(), 2);
        assert!(p.send(Call::new("get", Method::GET, url.clone())).await.is_err());
        assert_eq!(*t.0.lock().unwrap(), 7);
        assert!(p.send(Call::new("post", Method::POST, url).retry_safe(true)).await.is_err());
        assert_eq!(*t.0.lock().unwrap(), 12);
    }

    #[tokio::test]
    async fn calls_to_another_origin_are_refused() {
        let p = pipeline(Arc::new(Always503::default()));
        let err =
            p.send(Call::new("get", Method::GET, Url::parse("https://evil.example/x").unwrap())).await.unwrap_err();
        assert!(matches!(err, ApiError::ForeignHost { .. }));
        assert!(matches!(p.same_origin("http://graph.microsoft.com/v1.0/x"), Err(ApiError::ForeignHost { .. })));
        assert!(p.same_origin("https://graph.microsoft.com/v1.0/x?$skiptoken=1").is_ok());
    }

    #[test]
    fn odata_literals_double_quotes() {
        assert_eq!(odata_string("O'Brien"), "'O''Brien'");
        assert_eq!(any_of("name", &["a", "b'c"]), "name eq 'a' or name eq 'b''c'");
    }
}
