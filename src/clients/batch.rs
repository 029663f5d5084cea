//! OData `$batch` over `multipart/mixed` (Dataverse Web API): building a batch and reading its answer. The server's
//! side of both is in the testkit (`testkit::batch`).
//!
//! A batch is a sequence of parts, each an HTTP request as text (`application/http`) or a change set: a nested
//! `multipart/mixed` whose requests succeed or fail together. The answer has one part per request, and per change
//! set either a nested multipart with one response per request or, when the change set failed, the single
//! response that made it fail. HTTP messages inside parts are read with `httparse`, media types with `mime`;
//! the boundary splitting is here (and fuzzed: `fuzz/fuzz_targets/batch_response.rs`).
// Public for the testkit, which re-exports the client's side beside the server's (`testkit::batch`).
#![cfg_attr(not(feature = "testkit"), allow(unreachable_pub, dead_code))]

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

/// One request inside a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRequest {
    /// The method.
    pub method: Method,
    /// The absolute URL (`https://{org}/api/data/v9.2/...`), or a `$n` reference to an earlier request of the same
    /// change set.
    pub url: String,
    /// Headers besides the body's `Content-Type`.
    pub headers: Vec<(String, String)>,
    /// A JSON body.
    pub body: Option<Vec<u8>>,
    /// The `Content-ID` a later request of the same change set refers to as `$n`.
    pub content_id: Option<u32>,
}

impl BatchRequest {
    /// A `GET` of `url`.
    pub fn get(url: impl Into<String>) -> Self {
        BatchRequest { method: Method::GET, url: url.into(), headers: Vec::new(), body: None, content_id: None }
    }
}

/// A part of a batch: a request on its own, or a change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchPart {
    /// A request answered on its own.
    Request(BatchRequest),
    /// Requests that succeed or fail together.
    ChangeSet(Vec<BatchRequest>),
}

/// One response inside a batch answer.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// The `Content-ID` of the part, when it had one.
    pub content_id: Option<String>,
}

impl BatchResponse {
    /// The response as an `http::Response`, to read it as the answer of a single request.
    pub fn into_http(self) -> http::Response<Bytes> {
        let mut response = http::Response::new(self.body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

/// Why a batch answer (or, on the server's side, a batch request) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The `Content-Type` is not `multipart/mixed` with a boundary.
    #[error("the batch's content type is not multipart/mixed with a boundary: {0}")]
    ContentType(String),
    /// The body is not a well-formed multipart body.
    #[error("the batch body is not well-formed multipart: {0}")]
    Multipart(String),
    /// A part's HTTP message cannot be read.
    #[error("a batch part's HTTP message cannot be read: {0}")]
    Http(String),
}

/// The most parts (and nested parts) read from one answer: far above Dataverse's 1,000 requests per batch, far
/// below what would exhaust memory.
const MAX_PARTS: usize = 4096;

/// A boundary for a new batch or change set.
pub fn boundary(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::from_u128(fastrand::u128(..)).simple())
}

/// The body of a batch request: its parts under `boundary` (which no part may contain: [`boundary`] makes a
/// random one), each change set under a fresh random boundary of its own.
pub fn build_request(boundary: &str, parts: &[BatchPart]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        push(&mut out, format!("--{boundary}\r\n"));
        match part {
            BatchPart::Request(r) => write_request(&mut out, r),
            BatchPart::ChangeSet(requests) => {
                let inner = self::boundary("changeset");
                push(&mut out, format!("Content-Type: multipart/mixed; boundary={inner}\r\n\r\n"));
                for r in requests {
                    push(&mut out, format!("--{inner}\r\n"));
                    write_request(&mut out, r);
                }
                push(&mut out, format!("--{inner}--\r\n"));
            }
        }
    }
    push(&mut out, format!("--{boundary}--\r\n"));
    out
}

pub(crate) fn push(out: &mut Vec<u8>, text: String) {
    out.extend_from_slice(text.as_bytes());
}

fn write_request(out: &mut Vec<u8>, r: &BatchRequest) {
    push(out, "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n".into());
    if let Some(id) = r.content_id {
        push(out, format!("Content-ID: {id}\r\n"));
    }
    push(out, format!("\r\n{} {} HTTP/1.1\r\n", r.method, r.url));
    for (name, value) in &r.headers {
        push(out, format!("{name}: {value}\r\n"));
    }
    if let Some(body) = &r.body {
        push(out, "Content-Type: application/json; type=entry\r\n\r\n".into());
        out.extend_from_slice(body);
        push(out, "\r\n".into());
    } else {
        // The blank line that ends the head, and the line break that ends the part.
        push(out, "\r\n\r\n".into());
    }
}

/// The boundary of a `multipart/mixed` content type.
pub fn boundary_of(content_type: &str) -> Result<String, BatchError> {
    let mime: mime::Mime = content_type.parse().map_err(|_| BatchError::ContentType(clip(content_type)))?;
    if mime.type_() != mime::MULTIPART || mime.subtype().as_str() != "mixed" {
        return Err(BatchError::ContentType(clip(content_type)));
    }
    let b = mime.get_param(mime::BOUNDARY).ok_or_else(|| BatchError::ContentType(clip(content_type)))?;
    let b = b.as_str();
    // RFC 2046: 1 to 70 characters.
    if b.is_empty() || b.len() > 70 {
        return Err(BatchError::ContentType(clip(content_type)));
    }
    Ok(b.to_owned())
}

fn clip(s: &str) -> String {
    crate::guid::clip(s).to_string()
}

/// A part: its headers and its content.
pub(crate) struct Part<'a> {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) content: &'a [u8],
}

impl Part<'_> {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The parts of a multipart body: between `--boundary` lines, up to `--boundary--`.
pub(crate) fn split<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, BatchError> {
    let delimiter = format!("--{boundary}");
    let d = delimiter.as_bytes();
    // Every delimiter line start: at the beginning, or right after a line feed.
    let mut starts = Vec::new();
    let mut i = 0;
    while let Some(found) = find(&body[i..], d) {
        let at = i + found;
        if at == 0 || body[at - 1] == b'\n' {
            starts.push(at);
            if starts.len() > MAX_PARTS {
                return Err(BatchError::Multipart(format!("more than {MAX_PARTS} parts")));
            }
        }
        i = at + d.len();
    }
    let mut parts = Vec::new();
    let mut closed = false;
    for (n, &at) in starts.iter().enumerate() {
        let after = &body[at + d.len()..];
        if after.starts_with(b"--") {
            closed = true;
            break;
        }
        // The rest of the delimiter line (transport padding), then the part up to the line break before the next.
        let line_end =
            find(after, b"\n").ok_or_else(|| BatchError::Multipart("a delimiter line does not end".into()))?;
        let start = at + d.len() + line_end + 1;
        let end = match starts.get(n + 1) {
            Some(&next) => next,
            None => return Err(BatchError::Multipart("the body ends without a closing delimiter".into())),
        };
        let mut raw = &body[start.min(end)..end];
        raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        parts.push(part(raw)?);
    }
    if !closed {
        return Err(BatchError::Multipart("no closing delimiter".into()));
    }
    Ok(parts)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A part's headers (MIME headers, read as HTTP headers) and content.
fn part(raw: &[u8]) -> Result<Part<'_>, BatchError> {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    match httparse::parse_headers(raw, &mut headers) {
        Ok(httparse::Status::Complete((offset, parsed))) => Ok(Part {
            headers: parsed
                .iter()
                .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).trim().to_owned()))
                .collect(),
            content: &raw[offset..],
        }),
        Ok(httparse::Status::Partial) => Err(BatchError::Multipart("a part's headers do not end".into())),
        Err(e) => Err(BatchError::Multipart(format!("a part's headers: {e}"))),
    }
}

/// Reads a batch answer: one response per request, in order (a change set's responses in its order, or the
/// single response that failed it).
pub fn parse_response(content_type: &str, body: &[u8]) -> Result<Vec<BatchResponse>, BatchError> {
    let mut out = Vec::new();
    read_responses(&boundary_of(content_type)?, body, &mut out, 0)?;
    Ok(out)
}

fn read_responses(boundary: &str, body: &[u8], out: &mut Vec<BatchResponse>, depth: u8) -> Result<(), BatchError> {
    for p in split(body, boundary)? {
        let content_type = p.header("content-type").unwrap_or_default().to_owned();
        if content_type.to_ascii_lowercase().starts_with("multipart/") {
            if depth > 0 {
                return Err(BatchError::Multipart("a change set inside a change set".into()));
            }
            read_responses(&boundary_of(&content_type)?, p.content, out, depth + 1)?;
            continue;
        }
        out.push(http_response(p.content, p.header("content-id").map(str::to_owned))?);
        if out.len() > MAX_PARTS {
            return Err(BatchError::Multipart(format!("more than {MAX_PARTS} responses")));
        }
    }
    Ok(())
}

/// Where an HTTP message's head ends, as httparse read it.
pub(crate) fn head_end(parsed: httparse::Result<usize>, what: &str) -> Result<usize, BatchError> {
    match parsed {
        Ok(httparse::Status::Complete(offset)) => Ok(offset),
        Ok(httparse::Status::Partial) => Err(BatchError::Http(format!("the {what}'s head does not end"))),
        Err(e) => Err(BatchError::Http(e.to_string())),
    }
}

fn http_response(raw: &[u8], content_id: Option<String>) -> Result<BatchResponse, BatchError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let offset = head_end(response.parse(raw), "response")?;
    let status = response
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| BatchError::Http("no status code".into()))?;
    let mut map = HeaderMap::new();
    for h in response.headers.iter() {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(h.name.as_bytes()), HeaderValue::from_bytes(h.value)) {
            map.append(name, value);
        }
    }
    Ok(BatchResponse { status, headers: map, body: Bytes::copy_from_slice(&raw[offset..]), content_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer of Learn's "Execute batch operations using the Web API" example, in its shape: a change set
    /// of two creates, then a `GET`.
    const LEARN_ANSWER: &str = "--batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f\r\n\
Content-Type: multipart/mixed; boundary=changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abc\r\n\
\r\n\
--changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abc\r\n\
Content-Type: application/http\r\n\
Content-Transfer-Encoding: binary\r\n\
Content-ID: 1\r\n\
\r\n\
HTTP/1.1 204 No Content\r\n\
OData-Version: 4.0\r\n\
Location: https://org.crm.dynamics.com/api/data/v9.2/tasks(a59c24f3-fafc-e411-80dd-00155d2a68cb)\r\n\
OData-EntityId: https://org.crm.dynamics.com/api/data/v9.2/tasks(a59c24f3-fafc-e411-80dd-00155d2a68cb)\r\n\
\r\n\
\r\n\
--changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abc\r\n\
Content-Type: application/http\r\n\
Content-Transfer-Encoding: binary\r\n\
Content-ID: 2\r\n\
\r\n\
HTTP/1.1 204 No Content\r\n\
OData-Version: 4.0\r\n\
OData-EntityId: https://org.crm.dynamics.com/api/data/v9.2/tasks(a79c24f3-fafc-e411-80dd-00155d2a68cb)\r\n\
\r\n\
\r\n\
--changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abc--\r\n\
--batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f\r\n\
Content-Type: application/http\r\n\
Content-Transfer-Encoding: binary\r\n\
\r\n\
HTTP/1.1 200 OK\r\n\
Content-Type: application/json; odata.metadata=minimal\r\n\
OData-Version: 4.0\r\n\
\r\n\
{\"@odata.context\":\"https://org.crm.dynamics.com/api/data/v9.2/$metadata#tasks(subject)\",\"value\":[{\"subject\":\"Task 1 in batch\"}]}\r\n\
--batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f--\r\n";

    #[test]
    fn reads_learns_answer() {
        let ct = "multipart/mixed; boundary=batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f";
        let r = parse_response(ct, LEARN_ANSWER.as_bytes()).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].status, StatusCode::NO_CONTENT);
        assert_eq!(r[0].content_id.as_deref(), Some("1"));
        assert!(r[1].headers["odata-entityid"].to_str().unwrap().ends_with("(a79c24f3-fafc-e411-80dd-00155d2a68cb)"));
        assert!(r[1].body.is_empty());
        assert_eq!(r[2].status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(&r[2].body).unwrap();
        assert_eq!(v["value"][0]["subject"], "Task 1 in batch");
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        let ct = "multipart/mixed; boundary=b";
        for body in [
            &b""[..],
            b"--b",
            b"--b\r\n",
            b"--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
            b"junk",
            b"--b\r\n\r\nnot http\r\n--b--",
        ] {
            assert!(parse_response(ct, body).is_err(), "{:?}", String::from_utf8_lossy(body));
        }
        assert!(matches!(parse_response("application/json", b""), Err(BatchError::ContentType(_))));
        assert!(matches!(parse_response("multipart/mixed", b""), Err(BatchError::ContentType(_))));
        // An empty batch is well-formed.
        assert_eq!(parse_response(ct, b"--b--\r\n").unwrap(), vec![]);
    }
}
