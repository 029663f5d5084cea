//! The server's side of OData `$batch` over `multipart/mixed`: reading a batch request into its parts and writing
//! its answer, as the fake does; with the client's side re-exported (building a request, reading an answer), so that
//! a fake of your own speaks the same format the clients do.

use http::Method;

pub use crate::clients::batch::{
    BatchError, BatchPart, BatchRequest, BatchResponse, boundary, boundary_of, build_request, parse_response,
};
use crate::clients::batch::{head_end, push, split};

/// The server's side: reads a batch request into its parts (for the testkit's fake).
pub fn parse_request(content_type: &str, body: &[u8]) -> Result<Vec<BatchPart>, BatchError> {
    let mut out = Vec::new();
    for p in split(body, &boundary_of(content_type)?)? {
        let content_type = p.header("content-type").unwrap_or_default().to_owned();
        if content_type.to_ascii_lowercase().starts_with("multipart/") {
            let mut set = Vec::new();
            for inner in split(p.content, &boundary_of(&content_type)?)? {
                let id = inner.header("content-id").and_then(|v| v.parse().ok());
                set.push(http_request(inner.content, id)?);
            }
            out.push(BatchPart::ChangeSet(set));
        } else {
            let id = p.header("content-id").and_then(|v| v.parse().ok());
            out.push(BatchPart::Request(http_request(p.content, id)?));
        }
    }
    Ok(out)
}

fn http_request(raw: &[u8], content_id: Option<u32>) -> Result<BatchRequest, BatchError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let offset = head_end(request.parse(raw), "request")?;
    let method = request
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or_else(|| BatchError::Http("no method".into()))?;
    let url = request.path.ok_or_else(|| BatchError::Http("no URL".into()))?.to_owned();
    let headers = request
        .headers
        .iter()
        .filter(|h| !h.name.eq_ignore_ascii_case("content-type"))
        .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
        .collect();
    let body = &raw[offset..];
    Ok(BatchRequest { method, url, headers, body: (!body.is_empty()).then(|| body.to_vec()), content_id })
}

/// The server's side: writes a batch answer under `boundary` (which no response may contain: [`boundary`] makes
/// a random one). Each entry is a request's response, or a change set's responses
/// (`Ok`, one per request) or the one response that failed it (`Err`).
pub fn build_response(boundary: &str, answers: &[Result<Vec<BatchResponse>, BatchResponse>]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in answers {
        push(&mut out, format!("--{boundary}\r\n"));
        match a {
            Ok(responses) if responses.len() == 1 && responses[0].content_id.is_none() => {
                write_response(&mut out, &responses[0]);
            }
            Ok(responses) => {
                let inner = self::boundary("changesetresponse");
                push(&mut out, format!("Content-Type: multipart/mixed; boundary={inner}\r\n\r\n"));
                for r in responses {
                    push(&mut out, format!("--{inner}\r\n"));
                    write_response(&mut out, r);
                }
                push(&mut out, format!("--{inner}--\r\n"));
            }
            Err(failed) => write_response(&mut out, failed),
        }
    }
    push(&mut out, format!("--{boundary}--\r\n"));
    out
}

fn write_response(out: &mut Vec<u8>, r: &BatchResponse) {
    push(out, "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n".into());
    if let Some(id) = &r.content_id {
        push(out, format!("Content-ID: {id}\r\n"));
    }
    push(out, format!("\r\nHTTP/1.1 {} {}\r\n", r.status.as_u16(), r.status.canonical_reason().unwrap_or("")));
    for (name, value) in &r.headers {
        push(out, format!("{name}: {}\r\n", String::from_utf8_lossy(value.as_bytes())));
    }
    push(out, "\r\n".into());
    out.extend_from_slice(&r.body);
    push(out, "\r\n".into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, StatusCode};

    #[test]
    fn a_failed_change_set_is_one_response() {
        let answer = build_response(
            "batchresponse_x",
            &[Err(BatchResponse {
                status: StatusCode::PRECONDITION_FAILED,
                headers: HeaderMap::new(),
                body: Bytes::from_static(
                    br#"{"error":{"code":"0x80040237","message":"A record with matching key values already exists."}}"#,
                ),
                content_id: Some("1".into()),
            })],
        );
        let r = parse_response("multipart/mixed; boundary=batchresponse_x", &answer).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].status, StatusCode::PRECONDITION_FAILED);
    }

    #[test]
    fn request_round_trip() {
        let parts = vec![
            BatchPart::Request(BatchRequest::get("https://org.crm.dynamics.com/api/data/v9.2/WhoAmI")),
            BatchPart::ChangeSet(vec![
                BatchRequest {
                    method: Method::POST,
                    url: "https://org.crm.dynamics.com/api/data/v9.2/managedidentities".into(),
                    headers: vec![("Prefer".into(), "return=representation".into())],
                    body: Some(br#"{"name":"x"}"#.to_vec()),
                    content_id: Some(1),
                },
                BatchRequest {
                    method: Method::PATCH,
                    url: "https://org.crm.dynamics.com/api/data/v9.2/pluginassemblies(11111111-1111-1111-1111-111111111111)".into(),
                    headers: vec![("If-Match".into(), "*".into())],
                    body: Some(br#"{"managedidentityid@odata.bind":"$1"}"#.to_vec()),
                    content_id: Some(2),
                },
            ]),
        ];
        let b = boundary("batch");
        let body = build_request(&b, &parts);
        let back = parse_request(&format!("multipart/mixed; boundary={b}"), &body).unwrap();
        assert_eq!(back, parts);
    }
}
