//! API calls as values: a [`Request`] is one call, built in one place (no I/O) with the decoder of its answer.
//!
//! The same value is sent on its own (`DataverseClient::send`, `GraphClient::send`), in a Dataverse `$batch` or
//! change set, or in a Microsoft Graph JSON batch (a [`Batch`] of them); each answer, single or inside a batch, is
//! read by the value's own decoder, and a collection's further pages are read the same way whichever way its first
//! page came.
//!
//! ```
//! use dataverse_mi::clients::{Batch, dataverse};
//!
//! let mut batch = Batch::new();
//! let organization = batch.add(dataverse::requests::current_organization());
//! let rows = batch.add(dataverse::requests::managed_identities(Some("statecode eq 0")));
//! assert_eq!(batch.len(), 2);
//! // let mut answers = client.send_batch(&batch).await;   // one round trip
//! // let organization = answers.take(organization)?;     // typed: OrganizationDetail
//! # let _ = (organization, rows);
//! ```

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::{ApiError, Page, Service, decode};

/// Where a request goes: a path under the client's base URL, or an absolute link a server gave (a next page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Path(String),
    Link(String),
}

/// A request without its decoder.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) operation: &'static str,
    pub(crate) method: Method,
    pub(crate) target: Target,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Option<Bytes>,
    pub(crate) retry_safe: bool,
    /// A 404 answer is read by the decoder (as "none") rather than being the error.
    pub(crate) absent_ok: bool,
    /// The entity path the request creates (`/managedidentities(id)`): a later request of the same change set
    /// that names it refers to it by its `Content-ID`.
    pub(crate) creates: Option<String>,
    /// An input refused while building: sending fails with it, before any request.
    pub(crate) invalid: Option<ApiError>,
}

impl Head {
    /// A request to `target` with no headers or body, retried when its method is idempotent.
    pub(crate) fn new(operation: &'static str, method: Method, target: Target) -> Self {
        let retry_safe = super::policy::idempotent(&method);
        Head {
            operation,
            method,
            target,
            headers: Vec::new(),
            body: None,
            retry_safe,
            absent_ok: false,
            creates: None,
            invalid: None,
        }
    }
}

/// How an answer is read: the value, or the value so far and one more request to read (a next page, a file
/// column) with how to merge its value in.
pub(crate) enum Step<T> {
    Done(T),
    Then(T, Box<Request<T>>, fn(T, T) -> T),
}

pub(crate) type Decoder<T> =
    Arc<dyn Fn(Service, &'static str, http::Response<Bytes>) -> Result<Step<T>, ApiError> + Send + Sync>;

/// One API call, as a value: the request (method, path, headers, body, whether it is safe to send twice) and the
/// decoder of its answer. Built by the functions of [`dataverse::requests`](super::dataverse::requests) and
/// [`graph::requests`](super::graph::requests), the one place each call is written; sent by a client on its own or
/// in a [`Batch`]. Cheap to clone.
pub struct Request<T> {
    pub(crate) head: Head,
    pub(crate) decode: Decoder<T>,
}

impl<T> Clone for Request<T> {
    fn clone(&self) -> Self {
        Request { head: self.head.clone(), decode: self.decode.clone() }
    }
}

impl<T> fmt::Debug for Request<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("operation", &self.head.operation)
            .field("method", &self.head.method)
            .field("target", &self.head.target)
            .field("body_bytes", &self.head.body.as_ref().map(Bytes::len))
            .field("retry_safe", &self.head.retry_safe)
            .finish()
    }
}

impl<T> Request<T> {
    /// What the call does, e.g. `create managed identity`.
    pub fn operation(&self) -> &'static str {
        self.head.operation
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.head.method
    }

    /// The path under the client's base URL, with its query (escaped), e.g. `managedidentities?$select=...`; for
    /// a next page, the link the server gave.
    pub fn path(&self) -> &str {
        match &self.head.target {
            Target::Path(p) | Target::Link(p) => p,
        }
    }

    /// The JSON body, if any.
    pub fn body(&self) -> Option<&[u8]> {
        self.head.body.as_deref()
    }

    /// Whether sending it twice is harmless (it is then retried).
    pub fn is_retry_safe(&self) -> bool {
        self.head.retry_safe
    }

    /// The input error found while building it, if any: sending it fails with this error.
    pub fn invalid(&self) -> Option<&ApiError> {
        self.head.invalid.as_ref()
    }

    pub(crate) fn new(operation: &'static str, method: Method, path: impl Into<String>, decode: Decoder<T>) -> Self {
        Request { head: Head::new(operation, method, Target::Path(path.into())), decode }
    }

    pub(crate) fn header(mut self, name: HeaderName, value: &'static str) -> Self {
        self.head.headers.push((name, HeaderValue::from_static(value)));
        self
    }

    /// The JSON body; a value that does not serialize makes the request invalid.
    pub(crate) fn json_body<B: serde::Serialize + ?Sized>(mut self, body: &B) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => {
                self.head.headers.push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
                self.head.body = Some(Bytes::from(bytes));
            }
            Err(e) => self.head.invalid = Some(ApiError::invalid("request body", e.to_string())),
        }
        self
    }

    pub(crate) fn retry_safe(mut self, safe: bool) -> Self {
        self.head.retry_safe = safe;
        self
    }

    pub(crate) fn absent_ok(mut self) -> Self {
        self.head.absent_ok = true;
        self
    }

    pub(crate) fn creating(mut self, entity: String) -> Self {
        self.head.creates = Some(entity);
        self
    }

    /// A request refused before sending (a bad input): sending it fails with `error`.
    pub(crate) fn refused(mut self, error: ApiError) -> Self {
        self.head.invalid = Some(error);
        self
    }
}

/// The decoder of a JSON answer.
pub(crate) fn json<T: DeserializeOwned + 'static>() -> Decoder<T> {
    Arc::new(|service, operation, response| decode(service, operation, response.body()).map(Step::Done))
}

/// The decoder of a JSON answer, mapped.
pub(crate) fn json_map<R: DeserializeOwned + 'static, T: 'static>(map: fn(R) -> T) -> Decoder<T> {
    Arc::new(move |service, operation, response| {
        decode::<R>(service, operation, response.body()).map(|r| Step::Done(map(r)))
    })
}

/// The decoder of an answer whose body is not read (a `204`).
pub(crate) fn empty() -> Decoder<()> {
    Arc::new(|_, _, _| Ok(Step::Done(())))
}

/// The decoder of a collection: the rows of each page, the next page (`@odata.nextLink`, ARM's `nextLink`) read with
/// the same headers (the client refuses a link to another origin, a repeated link, more pages than allowed).
pub(crate) fn pages<U: DeserializeOwned + Send + 'static>(headers: Vec<(HeaderName, HeaderValue)>) -> Decoder<Vec<U>> {
    Arc::new(move |service, operation, response| {
        let page: Page<U> = decode(service, operation, response.body())?;
        Ok(match page.next_link {
            None => Step::Done(page.value),
            Some(link) => {
                let mut next = Request::new(operation, Method::GET, String::new(), pages::<U>(headers.clone()));
                next.head.target = Target::Link(link);
                next.head.headers = headers.clone();
                Step::Then(page.value, Box::new(next), |mut a, b| {
                    a.extend(b);
                    a
                })
            }
        })
    })
}

/// The decoder of a collection whose rows are read as `W` and handed out as `U` (each page mapped as it comes).
pub(crate) fn pages_map<W: DeserializeOwned + 'static, U: Send + 'static>(map: fn(W) -> U) -> Decoder<Vec<U>> {
    Arc::new(move |service, operation, response| {
        let page: Page<W> = decode(service, operation, response.body())?;
        let rows = page.value.into_iter().map(map).collect();
        Ok(match page.next_link {
            None => Step::Done(rows),
            Some(link) => {
                let mut next = Request::new(operation, Method::GET, String::new(), pages_map::<W, U>(map));
                next.head.target = Target::Link(link);
                Step::Then(rows, Box::new(next), |mut a, b| {
                    a.extend(b);
                    a
                })
            }
        })
    })
}

/// What sends the further requests an answer needs (next pages, a file column): the client's pipeline. A trait, so
/// that request values need nothing from the pipeline that sends them.
pub(crate) trait FollowUp: Send + Sync {
    /// The service, for the decoders.
    fn service(&self) -> Service;
    /// Whether a next page may be read after `pages` pages (a repeated link, or too many pages, end the read).
    fn may_follow(
        &self,
        next: &Head,
        pages: usize,
        seen: &mut std::collections::HashSet<String>,
    ) -> Result<(), ApiError>;
    /// Sends one further request alone.
    fn send_head<'a>(&'a self, head: &'a Head) -> BoxFuture<'a, Result<http::Response<Bytes>, ApiError>>;
}

impl<T> Request<T> {
    /// Reads the answer of the request's first round trip (sent alone or in a batch) with its decoder, reading
    /// what else it needs alone through `via` (further pages; a file column): a repeated next-page link, or more
    /// pages than `max_pages`, end the read with [`ApiError::Paging`].
    pub(crate) async fn finish(
        self,
        via: &dyn FollowUp,
        outcome: Result<http::Response<Bytes>, ApiError>,
    ) -> Result<T, ApiError> {
        let operation = self.head.operation;
        let service = via.service();
        let mut step = (self.decode)(service, operation, outcome?)?;
        let mut pages = 1usize;
        let mut seen = std::collections::HashSet::new();
        loop {
            let (so_far, next, merge) = match step {
                Step::Done(value) => return Ok(value),
                Step::Then(so_far, next, merge) => (so_far, next, merge),
            };
            via.may_follow(&next.head, pages, &mut seen)?;
            let response = via.send_head(&next.head).await?;
            pages += 1;
            step = match (next.decode)(service, operation, response)? {
                Step::Done(value) => Step::Done(merge(so_far, value)),
                Step::Then(value, more, m) => Step::Then(merge(so_far, value), more, m),
            };
        }
    }
}

/// A request with its type erased, to sit in a [`Batch`] beside requests of other types.
pub(crate) trait Erased: Send + Sync {
    fn head(&self) -> &Head;
    /// Reads the answer (or the error) of the request's first round trip, reading further pages alone, and gives
    /// the typed `Result<T, ApiError>` boxed.
    fn finish<'a>(
        &'a self,
        via: &'a dyn FollowUp,
        outcome: Result<http::Response<Bytes>, ApiError>,
    ) -> BoxFuture<'a, Box<dyn Any + Send>>;
}

impl<T: Send + 'static> Erased for Request<T> {
    fn head(&self) -> &Head {
        &self.head
    }

    fn finish<'a>(
        &'a self,
        via: &'a dyn FollowUp,
        outcome: Result<http::Response<Bytes>, ApiError>,
    ) -> BoxFuture<'a, Box<dyn Any + Send>> {
        Box::pin(async move {
            let result: Result<T, ApiError> = self.clone().finish(via, outcome).await;
            Box::new(result) as Box<dyn Any + Send>
        })
    }
}

/// Requests of any types, to send together: in one Dataverse `$batch` or change set, in Graph JSON batches, or one
/// by one. Each [`add`](Self::add) gives a [`Slot`] that takes its typed answer from the [`Answers`]. A batch is a
/// value: it can be sent again (one by one after a batch failed as a whole, say).
#[derive(Clone, Default)]
pub struct Batch {
    pub(crate) items: Vec<Arc<dyn Erased>>,
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.items.iter().map(|i| i.head().operation)).finish()
    }
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch::default()
    }

    /// Adds a request; its answer is taken with the slot returned.
    pub fn add<T: Send + 'static>(&mut self, request: Request<T>) -> Slot<T> {
        self.items.push(Arc::new(request));
        Slot { index: self.items.len() - 1, _type: PhantomData }
    }

    /// How many requests it holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Where a request's answer is in [`Answers`]: typed, so that taking it gives the request's own type.
#[derive(Debug)]
pub struct Slot<T> {
    index: usize,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Slot<T> {}

/// The answers of a [`Batch`], each taken once with its [`Slot`].
#[derive(Default)]
pub struct Answers {
    answers: Vec<Option<Box<dyn Any + Send>>>,
    round_trips: usize,
    whole: Option<ApiError>,
}

impl fmt::Debug for Answers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answers").field("answers", &self.answers.len()).field("round_trips", &self.round_trips).finish()
    }
}

impl Answers {
    pub(crate) fn new(answers: Vec<Box<dyn Any + Send>>, round_trips: usize) -> Self {
        Answers { answers: answers.into_iter().map(Some).collect(), round_trips, whole: None }
    }

    pub(crate) fn failed_with(mut self, error: Option<ApiError>) -> Self {
        self.whole = error;
        self
    }

    /// The error of a batch that failed as a whole (not sent, not answered, not readable), which every request's
    /// answer then is; `None` when the batch was answered (each request's answer may still be an error).
    pub fn failed_as_a_whole(&self) -> Option<&ApiError> {
        self.whole.as_ref()
    }

    /// The answer of the request at `slot`, decoded by its own decoder: its value, or its typed error (a request
    /// refused inside the batch, or the batch's own error when the batch failed as a whole). Taking an answer a
    /// second time, or with a slot of another batch, is an `InvalidInput` error.
    pub fn take<T: Send + 'static>(&mut self, slot: Slot<T>) -> Result<T, ApiError> {
        let taken = self.answers.get_mut(slot.index).and_then(Option::take);
        match taken.map(|b| b.downcast::<Result<T, ApiError>>()) {
            Some(Ok(result)) => *result,
            Some(Err(_)) => Err(ApiError::invalid("batch slot", "the slot is of another batch (another type)")),
            None => {
                Err(ApiError::invalid("batch slot", "the answer was taken already, or the slot is of another batch"))
            }
        }
    }

    /// The round trips it took: the batches sent (more than one when some requests were throttled and sent again,
    /// or the batch was larger than the service takes at once), or the requests sent one by one.
    pub fn round_trips(&self) -> usize {
        self.round_trips
    }
}

/// Whether an answer inside a batch is a refusal for throttling, with the wait the service asks (per item: its own
/// `Retry-After`).
pub(crate) fn throttled_wait(response: &http::Response<Bytes>) -> Option<std::time::Duration> {
    (response.status() == StatusCode::TOO_MANY_REQUESTS)
        .then(|| crate::http::server_retry_after(response.headers(), std::time::SystemTime::now()).unwrap_or_default())
}
