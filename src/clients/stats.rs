//! What the clients sent: requests, retries and batched requests, in all and per call (a task-local scope).

use std::sync::Arc;

/// Request and retry counters, shared by the clients given them in [`ClientOptions::stats`](super::ClientOptions::stats).
///
/// The clients add to their own counters (a platform's: [`Platform::stats`](super::Platform::stats), totals for everyone using it) and,
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
