//! How the fake behaves: its latency, the faults injected at a seeded rate and those aimed at particular requests.

use std::time::Duration;

use super::route_name::Route;

use crate::cloud::Cloud;

/// Injected faults, decided per request by a seeded generator.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultOptions {
    /// The seed: the same seed and requests give the same faults.
    pub seed: u64,
    /// Share of requests answered 429 with `Retry-After: 1`.
    pub throttle: f64,
    /// Share of requests answered 503.
    pub unavailable: f64,
    /// Share of requests whose connection is dropped (in-process transport only; half of them after the request
    /// was processed, so a retry meets its own earlier effect).
    pub dropped: f64,
    /// Share of requests delayed by [`FaultOptions::delay`].
    pub delayed: f64,
    /// The delay of a delayed request.
    pub delay: Duration,
}

impl Default for FaultOptions {
    fn default() -> Self {
        FaultOptions {
            seed: 0,
            throttle: 0.0,
            unavailable: 0.0,
            dropped: 0.0,
            delayed: 0.0,
            delay: Duration::from_secs(2),
        }
    }
}

impl FaultOptions {
    /// `share` of all requests faulted, spread evenly over the four kinds.
    pub fn chaos(seed: u64, share: f64) -> Self {
        let each = share / 4.0;
        FaultOptions {
            seed,
            throttle: each,
            unavailable: each,
            dropped: each,
            delayed: each,
            delay: Duration::from_secs(2),
        }
    }
}

/// A fault aimed at particular requests: the next `count` requests on a [`Route`] (as [`LoggedRequest::route`](super::LoggedRequest::route)
/// names it, e.g. `POST graph fics`), optionally on one host, get this answer instead of the platform's. The route
/// is checked when it is named: a typo is an [`UnknownRoute`](super::UnknownRoute) there, not a fault that never fires.
///
/// ```
/// use std::time::Duration;
/// use dataverse_mi::testkit::Fault;
/// // The next two FIC creates answer 503; then one throttled read of the rows of one environment.
/// let unavailable = Fault::status("POST graph fics".parse()?, 503).times(2);
/// let throttled = Fault::status("GET dataverse managedidentities".parse()?, 429)
///     .on_host("contoso.crm.dynamics.com")
///     .retry_after(Duration::from_secs(3));
/// # Ok::<(), dataverse_mi::testkit::UnknownRoute>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Fault {
    /// The route.
    pub route: Route,
    /// Only requests for this host (lowercase), when set.
    pub host: Option<String>,
    /// How many matching requests it answers (1 by default).
    pub count: u32,
    /// The answer.
    pub kind: FaultKind,
}

/// What a [`Fault`] answers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FaultKind {
    /// This status, with an error body in the service's shape and, when set, `Retry-After`.
    Status {
        /// The status (403, 404, 409, 412, 429, 5xx, ...).
        status: u16,
        /// `Retry-After`, in whole seconds.
        retry_after: Option<Duration>,
    },
    /// The connection dropped before the request was processed (in-process transport only; over HTTP, a 503).
    Dropped,
    /// The platform's answer after this delay (on tokio's clock in-process).
    Slow(Duration),
    /// The platform's answer with its body cut in half (truncated JSON).
    Truncated,
}

impl Fault {
    /// The next request on `route` answers `status`.
    pub fn status(route: Route, status: u16) -> Self {
        Fault { route, host: None, count: 1, kind: FaultKind::Status { status, retry_after: None } }
    }

    /// The next request on `route` has its connection dropped.
    pub fn dropped(route: Route) -> Self {
        Fault { route, host: None, count: 1, kind: FaultKind::Dropped }
    }

    /// The next request on `route` is answered after `delay`.
    pub fn slow(route: Route, delay: Duration) -> Self {
        Fault { route, host: None, count: 1, kind: FaultKind::Slow(delay) }
    }

    /// The next request on `route` gets its answer with the body cut in half.
    pub fn truncated(route: Route) -> Self {
        Fault { route, host: None, count: 1, kind: FaultKind::Truncated }
    }

    /// Only for requests to `host`.
    pub fn on_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into().to_ascii_lowercase());
        self
    }

    /// For the next `count` matching requests.
    pub fn times(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    /// With `Retry-After` (a status fault).
    pub fn retry_after(mut self, wait: Duration) -> Self {
        if let FaultKind::Status { retry_after, .. } = &mut self.kind {
            *retry_after = Some(wait);
        }
        self
    }
}

/// How the fake behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeOptions {
    /// Faults to inject.
    pub faults: FaultOptions,
    /// A latency added to every request (on tokio's clock in the in-process transport).
    pub latency: Duration,
    /// Rows per page of Dataverse and Graph collections.
    pub page_size: usize,
    /// The cloud whose subject format `GetComponentManagedIdentityFIC` answers in.
    pub cloud: Cloud,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions { faults: FaultOptions::default(), latency: Duration::ZERO, page_size: 50, cloud: Cloud::Public }
    }
}
