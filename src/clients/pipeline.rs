//! The one path every request takes: the token, the retry policy, the concurrency permits, the stats, the
//! transport; a request on its own or a batch of them.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use super::policy::Policy;
use crate::auth::{TokenCache, TokenSource};
use crate::http::RetryOptions;

use super::paths::origin;
use super::{
    ApiError, BatchPermits, ClientOptions, ConcurrencyLimit, DATAVERSE_BATCH_LIMIT, GRAPH_BATCH_LIMIT, RequestStats,
    Service,
};
use super::{batch, error, policy, request};
use super::{check_base, decode, default_transport};

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
        method: call.head.method.clone(),
        url: call.url.to_string(),
        headers: call
            .head
            .headers
            .iter()
            .filter(|(n, _)| *n != CONTENT_TYPE)
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: call.head.body.as_ref().map(|b| b.to_vec()),
        content_id,
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

/// A request head ready to send: its [`Head`](request::Head) with the URL it resolved to on this client, and the
/// concurrency permits it takes (one, or one per inner request of a batch: service protection counts those). A
/// batch's envelope is a call too, made here rather than from a request value.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) head: request::Head,
    pub(crate) url: Url,
    pub(crate) permits: u32,
}

impl Call {
    pub(crate) fn new(operation: &'static str, method: Method, url: Url) -> Self {
        let head = request::Head::new(operation, method, request::Target::Link(url.to_string()));
        Call { head, url, permits: 1 }
    }

    pub(crate) fn json<T: serde::Serialize + ?Sized>(mut self, body: &T) -> Result<Self, ApiError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ApiError::invalid("request body", e.to_string()))?;
        self.head.headers.push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
        self.head.body = Some(Bytes::from(bytes));
        Ok(self)
    }

    /// Marks the request as safe to send twice (the client method explains why).
    pub(crate) fn retry_safe(mut self, safe: bool) -> Self {
        self.head.retry_safe = safe;
        self
    }

    /// The HTTP request it is (without the token: the bearer policy adds it).
    fn request(&self) -> Result<http::Request<Bytes>, ApiError> {
        let mut builder = http::Request::builder()
            .method(self.head.method.clone())
            .uri(self.url.as_str())
            .header(ACCEPT, "application/json");
        for (name, value) in &self.head.headers {
            builder = builder.header(name, value);
        }
        builder
            .body(self.head.body.clone().unwrap_or_default())
            .map_err(|e| ApiError::invalid("request", e.to_string()))
    }
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
        let ctx = policy::Context::new(self.service, call.head.operation, call.head.retry_safe, call.permits);
        let response = policy::Next::new(&self.policies).send(&ctx, &mut request).await?;
        if response.status().is_success()
            || response.status().is_redirection()
            || (call.head.absent_ok && response.status() == StatusCode::NOT_FOUND)
        {
            return Ok(response);
        }
        let mut e = error::service_error(self.service, call.head.operation, &response, ctx.attempt().max(1));
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
        Ok(Call { head: head.clone(), url, permits: 1 })
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
    /// else it needs alone (further pages; a file column) through this pipeline.
    pub(crate) async fn finish<T>(
        &self,
        request: request::Request<T>,
        outcome: Result<http::Response<Bytes>, ApiError>,
    ) -> Result<T, ApiError> {
        request.finish(self, outcome).await
    }

    /// Whether a next page may be read after `pages` pages: a server whose links repeat or never end would read
    /// forever, so a link seen before, or more pages than `max_pages`, end the read with [`ApiError::Paging`].
    pub(crate) fn may_follow(
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
        let retry_safe = calls.iter().all(|c| c.head.retry_safe);
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
            if let Some(body) = &call.head.body {
                let mut text = String::from_utf8_lossy(body).into_owned();
                for (entity, id) in &created {
                    text = text.replace(&format!("\"{entity}\""), &format!("\"${id}\""));
                }
                call.head.body = Some(Bytes::from(text));
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
        let operation = call.head.operation;
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
        call.head.headers.push((
            CONTENT_TYPE,
            HeaderValue::try_from(format!("multipart/mixed; boundary={boundary}"))
                .map_err(|_| ApiError::invalid("batch", "boundary"))?,
        ));
        call.head
            .headers
            .push((HeaderName::from_static("prefer"), HeaderValue::from_static("odata.continue-on-error")));
        call.head.body = Some(Bytes::from(batch::build_request(&boundary, parts)));
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
            let mut r = serde_json::json!({"id": (i + 1).to_string(), "method": call.head.method.as_str(), "url": format!("/{relative}")});
            let mut headers = serde_json::Map::new();
            for (name, value) in call.head.headers.iter().filter(|(n, _)| *n != CONTENT_TYPE) {
                if let Ok(v) = value.to_str() {
                    headers.insert(name.as_str().to_owned(), serde_json::Value::String(v.to_owned()));
                }
            }
            if let Some(body) = &call.head.body {
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
            .retry_safe(calls.iter().all(|c| c.head.retry_safe));
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

/// The pipeline reads the further requests an answer needs (next pages, a file column): checked against the
/// paging bounds, sent alone.
impl request::FollowUp for Pipeline {
    fn service(&self) -> Service {
        self.service
    }

    fn may_follow(
        &self,
        next: &request::Head,
        pages: usize,
        seen: &mut std::collections::HashSet<String>,
    ) -> Result<(), ApiError> {
        Pipeline::may_follow(self, next, pages, seen)
    }

    fn send_head<'a>(
        &'a self,
        head: &'a request::Head,
    ) -> futures_util::future::BoxFuture<'a, Result<http::Response<Bytes>, ApiError>> {
        Box::pin(async move { self.send(self.call_of(head)?).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Secret, StaticToken};
    use crate::clients::{ClientOptions, Service, any_of, odata_string};
    use crate::http::Transport;
    use crate::http::TransportError;
    use bytes::Bytes;
    use http::Method;
    use std::sync::Arc;
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
