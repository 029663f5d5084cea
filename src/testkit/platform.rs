//! The fake platform's handle: made once, cloned freely, its state behind one lock; faults and the request log.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::access;
use super::{FakeOptions, Fault, FaultOptions, LoggedRequest, Route, State};

/// The fake platform. Cheap to clone: clones share the state.
#[derive(Debug, Clone)]
pub struct FakePlatform {
    pub(crate) state: Arc<Mutex<State>>,
    /// How many requests have been received, for waiting on it ([`FakePlatform::requests_reached`]).
    pub(super) received: Arc<tokio::sync::watch::Sender<usize>>,
}

impl FakePlatform {
    /// An empty platform.
    pub fn new(options: FakeOptions) -> Self {
        let rng = fastrand::Rng::with_seed(options.faults.seed ^ 0x5eed);
        FakePlatform {
            state: Arc::new(Mutex::new(State {
                environments: BTreeMap::new(),
                apps: BTreeMap::new(),
                uamis: BTreeMap::new(),
                service_principals: BTreeMap::new(),
                role_assignments: Vec::new(),
                resource_apis: BTreeMap::from([(crate::clients::MICROSOFT_GRAPH_APP_ID, access::microsoft_graph())]),
                app_role_grants: Vec::new(),
                fic_created: BTreeMap::new(),
                fic_propagation: Duration::ZERO,
                unreplicated: BTreeMap::new(),
                replication_lag: 0,
                log: Vec::new(),
                faults: Vec::new(),
                rng,
                options,
            })),
            received: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    /// Waits until the fake has received `n` requests in all (since the last [`clear_log`](Self::clear_log)):
    /// an event to act on, e.g. to stop a client half-way, without polling.
    pub async fn requests_reached(&self, n: usize) {
        let mut received = self.received.subscribe();
        // The sender lives as long as this platform, so the wait ends only when the count is reached.
        let _ = received.wait_for(|count| *count >= n).await;
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock (a test assertion) must not hide the state from the next look.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Aims a fault at particular requests (see [`Fault`]); faults are matched in the order given.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Changes the faults from now on (e.g. to seed cleanly and then turn chaos on).
    pub fn set_faults(&self, faults: FaultOptions) {
        let mut s = self.lock();
        s.rng = fastrand::Rng::with_seed(faults.seed ^ 0x5eed);
        s.options.faults = faults;
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.lock().log.clone()
    }

    /// Requests per route (`METHOD service route`).
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in &self.lock().log {
            *out.entry(r.route.clone()).or_default() += 1;
        }
        out
    }

    /// Requests on one route.
    pub fn count(&self, route: Route) -> usize {
        self.lock().log.iter().filter(|r| r.route == route.as_str()).count()
    }

    /// Round trips (HTTP requests on the wire: a batch counts once, its inner requests not at all), by service.
    pub fn round_trips(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in self.lock().log.iter().filter(|r| !r.in_batch) {
            *out.entry(r.service().to_owned()).or_default() += 1;
        }
        out
    }

    /// Requests that came inside batches, by service.
    pub fn batched_requests(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in self.lock().log.iter().filter(|r| r.in_batch) {
            *out.entry(r.service().to_owned()).or_default() += 1;
        }
        out
    }

    /// Writes that took effect (not faults).
    pub fn writes(&self) -> usize {
        self.lock().log.iter().filter(|r| r.is_write() && !r.fault && !r.rolled_back).count()
    }

    /// Forgets the request log.
    pub fn clear_log(&self) {
        self.lock().log.clear();
        self.received.send_replace(0);
    }
}
