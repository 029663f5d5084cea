//! How a client is built: its retry policy, transport, concurrency limit (and the limit shared across clients),
//! how its batches hold permits, and the services' batch and paging bounds.

use std::sync::Arc;

pub(super) use tokio::sync::Semaphore;
use url::Url;

use super::policy::{ClassifyRetry, Policy};
use crate::auth::TokenCache;
use crate::http::{RetryOptions, Transport};

use super::{ApiError, RequestStats};

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
    /// makes one per client around the client's credential. A [`Platform`](super::Platform) sets one for all the clients it makes.
    pub token_cache: Option<Arc<TokenCache>>,
    /// The caller's policies run once per call, before the time budget and the retries (see [`policy`](super::policy)).
    pub per_call_policies: Vec<Arc<dyn Policy>>,
    /// The caller's policies run on every attempt, after the retry decision and before the transport (see
    /// [`policy`](super::policy)): a correlation-id header, OpenTelemetry, a proxy's header.
    pub per_try_policies: Vec<Arc<dyn Policy>>,
    /// The retry classifier; `None` is the service's own ([`policy::ServiceClassifier`](super::policy::ServiceClassifier)).
    pub classifier: Option<Arc<dyn ClassifyRetry>>,
}

impl ClientOptions {
    /// Adds a policy run once per call (see [`policy`](super::policy)).
    pub fn with_per_call_policy(mut self, policy: impl Policy + 'static) -> Self {
        self.per_call_policies.push(Arc::new(policy));
        self
    }

    /// Adds a policy run on every attempt (see [`policy`](super::policy)).
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
    pub(super) semaphore: Arc<Semaphore>,
    pub(super) size: usize,
}

impl ConcurrencyLimit {
    /// A limit of `permits` requests in flight (1 to [`Semaphore::MAX_PERMITS`](tokio::sync::Semaphore::MAX_PERMITS)).
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

/// The default [`ClientOptions::max_pages`]: 1,000 pages (half a million rows at Dataverse's 500 per page).
pub const DEFAULT_MAX_PAGES: usize = 1_000;

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
