//! The one error type of the clients.

use std::fmt;

use http::StatusCode;
use serde::Deserialize;

use crate::auth::AuthError;
use crate::http::TransportErrorKind;

/// Which service a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Service {
    /// The Dataverse Web API.
    Dataverse,
    /// Microsoft Graph.
    Graph,
    /// Azure Resource Manager.
    Arm,
    /// The Power Platform Global Discovery Service.
    GlobalDiscovery,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Dataverse => "Dataverse",
            Service::Graph => "Microsoft Graph",
            Service::Arm => "Azure Resource Manager",
            Service::GlobalDiscovery => "Global Discovery Service",
        })
    }
}

/// One entry of an ARM error's `details`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct ErrorDetail {
    /// The detail's code.
    #[serde(default)]
    pub code: Option<String>,
    /// The detail's message.
    #[serde(default)]
    pub message: Option<String>,
}

/// An error response from a service, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceError {
    /// The service.
    pub service: Service,
    /// What was being done, e.g. `create managed identity`.
    pub operation: &'static str,
    /// The HTTP status.
    pub status: StatusCode,
    /// The service's error code (`0x80040237`, `Request_ResourceNotFound`, `ResourceNotFound`); Dataverse
    /// sometimes sends an empty one, kept as `None`.
    pub code: Option<String>,
    /// The service's message, or the start of a non-JSON body.
    pub message: String,
    /// ARM's `details`.
    pub details: Vec<ErrorDetail>,
    /// `x-ms-request-id`, Dataverse's `x-ms-service-request-id`, `request-id` or Graph's `innerError.request-id`.
    pub request_id: Option<String>,
    /// `x-ms-correlation-request-id`.
    pub correlation_id: Option<String>,
    /// How many attempts were made.
    pub attempts: u32,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): HTTP {}", self.service, self.operation, self.status.as_u16())?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        write!(f, ": {}", self.message)?;
        for d in &self.details {
            write!(f, "; {}: {}", d.code.as_deref().unwrap_or("-"), d.message.as_deref().unwrap_or("-"))?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        if self.attempts > 1 {
            write!(f, " after {} attempts", self.attempts)?;
        }
        Ok(())
    }
}

/// Everything that can go wrong calling Dataverse, Graph or ARM. `Clone`, so that one failure (a whole batch's) can
/// be each of its requests' answer and keep its kind (`is_throttled`, `status`, ...).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ApiError {
    /// The service answered with an error status.
    Service(Box<ServiceError>),
    /// No response was received.
    Transport {
        /// The service.
        service: Service,
        /// What was being done.
        operation: &'static str,
        /// The kind of failure.
        kind: TransportErrorKind,
        /// What happened.
        message: String,
        /// How many attempts were made.
        attempts: u32,
        /// The transport's error, with its cause chain (`None` when the call's time budget ended it): also
        /// [`std::error::Error::source`].
        source: Option<crate::http::TransportError>,
    },
    /// A successful response whose body is not what the API documents.
    Decode {
        /// The service.
        service: Service,
        /// What was being done.
        operation: &'static str,
        /// The JSON path where decoding failed, e.g. `value[3].managedidentityid`.
        path: String,
        /// Why.
        message: String,
        /// The JSON decoder's error, when it was JSON that did not decode: also [`std::error::Error::source`]
        /// (as a `serde_json::Error`).
        source: Option<std::sync::Arc<serde_json::Error>>,
    },
    /// A collection's paging did not end: a next-page link repeated, or there were more pages than allowed.
    Paging {
        /// The service.
        service: Service,
        /// What was being read.
        operation: &'static str,
        /// Pages read.
        pages: usize,
        /// Why it stopped.
        reason: String,
    },
    /// No token could be obtained.
    Auth(AuthError),
    /// An input was refused before anything was sent.
    InvalidInput {
        /// Which input.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// A URL (e.g. a paging link) points at another host than the one the token is for: not followed.
    ForeignHost {
        /// The origin the client talks to.
        expected: String,
        /// The origin that was asked for.
        found: String,
    },
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::Auth(e)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Service(e) => write!(f, "{e}"),
            ApiError::Transport { service, operation, kind, message, attempts, .. } => {
                write!(f, "{service} ({operation}): {kind}: {message} (after {attempts} attempt(s))")
            }
            ApiError::Decode { service, operation, path, message, .. } => {
                write!(f, "{service} ({operation}): the response does not decode at {path}: {message}")
            }
            ApiError::Paging { service, operation, pages, reason } => {
                write!(f, "{service} ({operation}): paging stopped after {pages} page(s): {reason}")
            }
            ApiError::Auth(e) => write!(f, "{e}"),
            ApiError::InvalidInput { what, message } => write!(f, "invalid {what}: {message}"),
            ApiError::ForeignHost { expected, found } => {
                write!(f, "refusing to send a token for {expected} to {found}")
            }
        }
    }
}

/// Written by hand rather than derived: the sources are the errors themselves (a `TransportError`, a
/// `serde_json::Error`), so that `source()?.downcast_ref::<serde_json::Error>()` finds them.
impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApiError::Transport { source, .. } => source.as_ref().map(|e| e as &(dyn std::error::Error + 'static)),
            ApiError::Decode { source, .. } => source.as_deref().map(|e| e as &(dyn std::error::Error + 'static)),
            // Transparent, as the derived impl was: the token error's own source.
            ApiError::Auth(e) => std::error::Error::source(e),
            _ => None,
        }
    }
}

/// Dataverse's "duplicate key" code.
pub const DATAVERSE_DUPLICATE_KEY: &str = "0x80040237";
/// Dataverse's "row does not exist" code.
pub const DATAVERSE_NOT_FOUND: &str = "0x80040217";

impl ApiError {
    /// The HTTP status, when the service answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ApiError::Service(e) => Some(e.status),
            _ => None,
        }
    }

    /// The service's error code, when it sent one.
    pub fn service_code(&self) -> Option<&str> {
        match self {
            ApiError::Service(e) => e.code.as_deref(),
            _ => None,
        }
    }

    /// The request id the service gave, for support cases.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ApiError::Service(e) => e.request_id.as_deref(),
            _ => None,
        }
    }

    /// The thing asked for does not exist (404, or Dataverse's `0x80040217`).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND) || self.service_code() == Some(DATAVERSE_NOT_FOUND)
    }

    /// The thing to create exists already, or a precondition failed (409, 412, or Dataverse's duplicate key).
    pub fn is_conflict(&self) -> bool {
        matches!(self.status(), Some(StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED))
            || self.service_code() == Some(DATAVERSE_DUPLICATE_KEY)
    }

    /// The service throttled the request (429), even after the retries.
    pub fn is_throttled(&self) -> bool {
        self.status() == Some(StatusCode::TOO_MANY_REQUESTS)
    }

    /// The service the failed call was for, when it reached for one.
    pub fn service(&self) -> Option<Service> {
        match self {
            ApiError::Service(e) => Some(e.service),
            ApiError::Transport { service, .. }
            | ApiError::Decode { service, .. }
            | ApiError::Paging { service, .. } => Some(*service),
            _ => None,
        }
    }

    /// No response came in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ApiError::Transport { kind: TransportErrorKind::Timeout, .. })
    }

    /// An input refused before any request was sent (`what` names it, e.g. `"URL"`): for code that plugs into
    /// the clients, such as a [`DataverseBaseUrl`](crate::provision::api::DataverseBaseUrl) mapping.
    pub fn invalid(what: &'static str, message: impl Into<String>) -> Self {
        ApiError::InvalidInput { what, message: message.into() }
    }
}

#[derive(Deserialize)]
struct Envelope {
    error: Body,
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    details: Vec<ErrorDetail>,
    #[serde(default, rename = "innerError", alias = "innererror")]
    inner: Option<Inner>,
}

#[derive(Deserialize)]
struct Inner {
    #[serde(default, rename = "request-id")]
    request_id: Option<String>,
}

/// The service's error code in an error body, if it has one.
pub(crate) fn service_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Envelope>(body).ok()?.error.code.filter(|c| !c.is_empty())
}

const EXCERPT: usize = 300;

/// Builds the error for a non-success response.
pub(crate) fn service_error(
    service: Service,
    operation: &'static str,
    response: &http::Response<bytes::Bytes>,
    attempts: u32,
) -> ApiError {
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let status = response.status();
    let (code, message, details, inner_request_id) = match serde_json::from_slice::<Envelope>(response.body()) {
        Ok(Envelope { error }) => (
            error.code.filter(|c| !c.is_empty()),
            error.message.unwrap_or_default(),
            error.details,
            error.inner.and_then(|i| i.request_id),
        ),
        Err(_) => (None, excerpt(response.body(), status), Vec::new(), None),
    };
    ApiError::Service(Box::new(ServiceError {
        service,
        operation,
        status,
        code,
        message,
        details,
        // Dataverse answers x-ms-service-request-id (public captures show it), ARM x-ms-request-id, Graph
        // request-id and innerError.request-id.
        request_id: header("x-ms-request-id")
            .or_else(|| header("x-ms-service-request-id"))
            .or_else(|| header("request-id"))
            .or(inner_request_id),
        correlation_id: header("x-ms-correlation-request-id"),
        attempts,
    }))
}

/// The start of a body that is not a JSON error (an HTML gateway page, a proxy's text), on one line.
fn excerpt(body: &[u8], status: StatusCode) -> String {
    if body.is_empty() {
        return status.canonical_reason().unwrap_or("no message").to_owned();
    }
    let text = String::from_utf8_lossy(body);
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = flat.chars().take(EXCERPT).collect();
    if flat.chars().count() > EXCERPT {
        out.push('…');
    }
    format!("(not a JSON error) {out}")
}
