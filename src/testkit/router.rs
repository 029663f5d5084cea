//! The fake's request routing and the platform's rules.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use uuid::Uuid;

use super::{Component, Environment, FakePlatform, Handled, LoggedRequest, State};
use crate::cloud::CloudProfile;
use crate::entities::{ManagedIdentity, NewManagedIdentity};
use crate::fic::{FederatedIdentityCredential, MAX_FICS_PER_IDENTITY, validate_name};
use crate::subject::{CertificateBinding, CertificateKind, SubjectFormatVersion, SubjectIdentifier};

type Answer = (StatusCode, Value);

fn error(status: u16, code: &str, message: &str) -> Answer {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        json!({"error": {"code": code, "message": message}}),
    )
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn query(request: &http::Request<Bytes>) -> Vec<(String, String)> {
    request.uri().query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

fn param(q: &[(String, String)], name: &str) -> Option<String> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// Splits `a eq 'x' or b eq 'y''z' or c eq 123` into (field, value) pairs, unescaping quotes.
fn parse_filter(filter: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = filter.trim();
    loop {
        let (field, after) = rest.split_once(" eq ")?;
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('\'') {
            let mut value = String::new();
            let mut chars = quoted.char_indices().peekable();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().map(|(_, n)| *n) == Some('\'') {
                        value.push('\'');
                        chars.next();
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                } else {
                    value.push(c);
                }
            }
            (value, &quoted[end?..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_owned(), &after[end..])
        };
        out.push((field.trim().to_owned(), value));
        let remaining = remaining.trim_start();
        if remaining.is_empty() {
            return Some(out);
        }
        rest = remaining.strip_prefix("or ")?;
    }
}

fn page(request: &http::Request<Bytes>, rows: Vec<Value>, page_size: usize) -> Value {
    let q = query(request);
    let skip: usize = param(&q, "$skiptoken").and_then(|s| s.parse().ok()).unwrap_or(0);
    let size = page_size.max(1);
    let value: Vec<Value> = rows.iter().skip(skip).take(size).cloned().collect();
    let mut body = json!({ "value": value });
    if skip + size < rows.len() {
        let mut url = url::Url::parse(&request.uri().to_string()).ok();
        if let Some(u) = url.as_mut() {
            let kept: Vec<(String, String)> = q.into_iter().filter(|(k, _)| k != "$skiptoken").collect();
            u.query_pairs_mut().clear().extend_pairs(kept).append_pair("$skiptoken", &(skip + size).to_string());
            body["@odata.nextLink"] = json!(u.to_string());
        }
    }
    body
}

/// Which service and route a request is for.
enum Target {
    Discovery { rest: String },
    Dataverse { host: String, rest: String },
    Graph { rest: String },
    Arm { rest: String },
    Login,
    Unknown,
}

fn target(state: &State, host_hint: Option<&str>, path: &str) -> Target {
    let path = percent_decode(path);
    if let Some(host) = host_hint {
        let host = host.to_ascii_lowercase();
        if state.environments.contains_key(&host) {
            if let Some(rest) = path.strip_prefix("/api/data/v9.2/") {
                return Target::Dataverse { host, rest: rest.to_owned() };
            }
        } else if host.contains("graph") {
            if let Some(rest) = path.strip_prefix("/v1.0/") {
                return Target::Graph { rest: rest.to_owned() };
            }
        } else if host.starts_with("management.") {
            return Target::Arm { rest: path.trim_start_matches('/').to_owned() };
        } else if host.starts_with("login.") {
            return Target::Login;
        } else if host.starts_with("globaldisco.")
            && let Some(rest) = path.strip_prefix("/api/discovery/v2.0/")
        {
            return Target::Discovery { rest: rest.to_owned() };
        }
        return Target::Unknown;
    }
    // Over loopback, the layout `EndpointsFile::fake_at` points clients at.
    use crate::clients::platform::fake_layout::{ARM, DATAVERSE, DISCOVERY, GRAPH, LOGIN, WEB_API};
    if let Some(rest) = path.strip_prefix(DATAVERSE) {
        if let Some((host, tail)) = rest.split_once('/')
            && let Some(rest) = tail.strip_prefix(WEB_API)
        {
            return Target::Dataverse { host: host.to_owned(), rest: rest.to_owned() };
        }
    } else if let Some(rest) = path.strip_prefix(DISCOVERY) {
        return Target::Discovery { rest: rest.to_owned() };
    } else if let Some(rest) = path.strip_prefix(GRAPH) {
        return Target::Graph { rest: rest.to_owned() };
    } else if let Some(rest) = path.strip_prefix(ARM) {
        return Target::Arm { rest: rest.to_owned() };
    } else if path.starts_with(LOGIN) {
        return Target::Login;
    }
    Target::Unknown
}

pub(super) fn handle(
    platform: &FakePlatform,
    request: &http::Request<Bytes>,
    host_hint: Option<&str>,
    path: &str,
) -> Handled {
    let mut s = platform.lock();
    let latency = s.options.latency;
    let faults = s.options.faults.clone();
    let roll = s.rng.f64();
    let t = target(&s, host_hint, path);
    let method = request.method().clone();
    // Injected faults, before processing.
    let mut cut = 0.0;
    let mut next = |share: f64| {
        let hit = roll >= cut && roll < cut + share;
        cut += share;
        hit
    };
    let (throttle, unavailable, dropped, delayed) =
        (next(faults.throttle), next(faults.unavailable), next(faults.dropped), next(faults.delayed));
    let mut delay = if delayed { latency + faults.delay } else { latency };
    let route_name = route_of(&method, &t);
    let host = match &t {
        Target::Dataverse { host, .. } => Some(host.clone()),
        _ => host_hint.map(str::to_ascii_lowercase),
    };
    let log = |route: String, status: u16, fault: bool| LoggedRequest {
        route,
        host: host.clone(),
        method: method.to_string(),
        path_and_query: request.uri().path_and_query().map(|p| p.to_string()).unwrap_or_else(|| path.to_owned()),
        bearer: request
            .headers()
            .get(http::header::AUTHORIZATION)
            .is_some_and(|v| v.as_bytes().starts_with(b"Bearer ")),
        body: String::from_utf8_lossy(request.body()).into_owned(),
        status,
        fault,
        fault_headers: Vec::new(),
        rolled_back: false,
        in_batch: false,
    };
    // A fault aimed at this request comes first.
    let aimed = s.faults.iter().position(|f| {
        f.count > 0 && f.route == route_name.as_str() && f.host.as_ref().is_none_or(|h| Some(h) == host.as_ref())
    });
    let mut truncate = false;
    if let Some(i) = aimed {
        s.faults[i].count -= 1;
        match s.faults[i].kind.clone() {
            super::FaultKind::Status { status, retry_after } => {
                let (status, body, fault_headers) = injected(status, retry_after, &route_name);
                let headers: Vec<(&str, &str)> = fault_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let answer = respond(status, &body, &headers);
                s.log.push(LoggedRequest { fault_headers, ..log(route_name, status.as_u16(), true) });
                return Handled::Answer(answer, delay);
            }
            super::FaultKind::Dropped => {
                s.log.push(log(route_name, 0, true));
                return Handled::Drop { delay };
            }
            super::FaultKind::Slow(extra) => delay += extra,
            super::FaultKind::Truncated => truncate = true,
        }
    }
    if throttle {
        s.log.push(LoggedRequest {
            fault_headers: vec![("retry-after".into(), "1".into())],
            ..log(route_name, 429, true)
        });
        let body =
            json!({"error": {"code": "0x80072322", "message": "Number of requests exceeded the limit (injected)."}});
        return Handled::Answer(respond(StatusCode::TOO_MANY_REQUESTS, &body, &[("retry-after", "1")]), delay);
    }
    if unavailable {
        s.log.push(log(route_name, 503, true));
        let body =
            json!({"error": {"code": "ServiceUnavailable", "message": "The service is unavailable (injected)."}});
        return Handled::Answer(respond(StatusCode::SERVICE_UNAVAILABLE, &body, &[]), delay);
    }
    let after_processing = dropped && s.rng.bool();
    if dropped && !after_processing {
        s.log.push(log(route_name, 0, true));
        return Handled::Drop { delay };
    }
    if let Target::Dataverse { host, rest } = &t
        && rest.split('?').next() == Some("$batch")
        && method == Method::POST
    {
        let (response, inner) = dataverse_batch(&mut s, request, host);
        let status = response.status().as_u16();
        s.log.push(log(route_name, status, false));
        for r in inner {
            s.log.push(r.logged(log(String::new(), 0, false)));
        }
        return Handled::Answer(response, delay);
    }
    if let Target::Graph { rest } = &t
        && rest.split('?').next() == Some("$batch")
        && method == Method::POST
    {
        let (status, answer, inner) = graph_batch(&mut s, request);
        s.log.push(log(route_name, status.as_u16(), false));
        for r in inner {
            s.log.push(r.logged(log(String::new(), 0, false)));
        }
        return Handled::Answer(respond(status, &answer, &[]), delay);
    }
    let body: Value = if request.body().is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(request.body()).unwrap_or(Value::Null)
    };
    let (status, answer) = match &t {
        Target::Dataverse { host, rest } => dataverse(&mut s, request, host, rest, &body),
        Target::Graph { rest } => graph(&mut s, request, rest, &body),
        Target::Arm { rest } => arm(&mut s, request, rest, &body),
        Target::Discovery { rest } => discovery(&s, request, rest),
        Target::Login => (
            StatusCode::OK,
            json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": format!("fake.{}", s.rng.u64(..))}),
        ),
        Target::Unknown => error(404, "NoRoute", &format!("the fake has no route for {method} {path}")),
    };
    if after_processing {
        // Processed, but the answer is lost: the client will retry into its own effect.
        s.log.push(log(route_name, 0, false));
        return Handled::Drop { delay };
    }
    s.log.push(log(route_name, status.as_u16(), truncate));
    let wants_body = method != Method::POST
        || request.headers().get("prefer").is_some_and(|v| v.as_bytes().starts_with(b"return=representation"))
        || !matches!(t, Target::Dataverse { .. });
    let answer =
        if status == StatusCode::NO_CONTENT || (!wants_body && status.is_success()) { Value::Null } else { answer };
    let status = if !wants_body && status == StatusCode::CREATED { StatusCode::NO_CONTENT } else { status };
    let mut response = respond(status, &answer, &[]);
    if truncate {
        let cut = response.body().slice(..response.body().len() / 2);
        *response.body_mut() = cut;
    }
    Handled::Answer(response, delay)
}

/// The Global Discovery Service: every environment of the fake, in the shape of Learn's example answer.
fn discovery(s: &State, request: &http::Request<Bytes>, rest: &str) -> Answer {
    let path = rest.split('?').next().unwrap_or(rest);
    if path != "Instances" || request.method() != Method::GET {
        return error(404, "NotFound", &format!("the fake discovery service has no route for {path}"));
    }
    let rows: Vec<Value> = s
        .environments
        .iter()
        .map(|(host, env)| {
            let url_name = host.split('.').next().unwrap_or(host);
            json!({
                "Id": env.organization_id,
                "UniqueName": format!("unq{}", env.organization_id.simple()),
                "UrlName": url_name,
                "FriendlyName": env.friendly_name.clone().unwrap_or_else(|| url_name.to_owned()),
                "State": if env.disabled { 1 } else { 0 },
                "Version": "9.2.25113.00185",
                "Url": format!("https://{host}"),
                "ApiUrl": format!("https://{}", host.replacen(".crm", ".api.crm", 1)),
                "LastUpdated": "2026-11-01T10:00:00Z",
                "SchemaType": "Standard",
                "TenantId": env.tenant_id,
                "EnvironmentId": env.environment_id.to_string(),
                "Region": "NA",
                "Purpose": "",
                "IsUserSysAdmin": true,
                "OrganizationType": 0,
                "TrialExpirationDate": null
            })
        })
        .collect();
    (
        StatusCode::OK,
        json!({"@odata.context": "https://globaldisco.crm.dynamics.com/api/discovery/v2.0/$metadata#Instances", "value": rows}),
    )
}

/// A request inside a batch, as logged.
struct InnerLog {
    route: String,
    method: String,
    path: String,
    body: String,
    status: u16,
    /// The injected fault's headers, when the answer was one.
    fault: Option<Vec<(String, String)>>,
    rolled_back: bool,
}

impl InnerLog {
    /// The log entry: the envelope's (its host, its bearer) with this request's own values.
    fn logged(self, envelope: LoggedRequest) -> LoggedRequest {
        LoggedRequest {
            route: self.route,
            method: self.method,
            path_and_query: self.path,
            body: self.body,
            status: self.status,
            fault: self.fault.is_some(),
            fault_headers: self.fault.unwrap_or_default(),
            rolled_back: self.rolled_back,
            in_batch: true,
            ..envelope
        }
    }
}

/// An injected status fault's answer: the status, the error in the service's shape, and its headers.
type Injected = (StatusCode, Value, Vec<(String, String)>);

/// An injected status fault's answer, on its own or inside a batch (`Retry-After` when the fault has one).
fn injected(status: u16, retry_after: Option<std::time::Duration>, route: &str) -> Injected {
    let code = if route.contains(" dataverse ") { "0x80040216" } else { "InjectedFault" };
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"error": {"code": code, "message": format!("an injected {status}")}}),
        retry_after.map(|w| ("retry-after".to_owned(), w.as_secs().to_string())).into_iter().collect(),
    )
}

/// A status fault aimed at a request inside a batch (the other fault kinds act on round trips only): its answer
/// ([`injected`]).
fn inner_fault(s: &mut State, route: &str, host: Option<&str>) -> Option<Injected> {
    let i = s.faults.iter().position(|f| {
        f.count > 0
            && f.route == route
            && f.host.as_deref().is_none_or(|h| Some(h) == host)
            && matches!(f.kind, super::FaultKind::Status { .. })
    })?;
    s.faults[i].count -= 1;
    let super::FaultKind::Status { status, retry_after } = s.faults[i].kind else { return None };
    Some(injected(status, retry_after, route))
}

/// A Graph JSON batch: at most 20 requests, each through the same handler as on its own.
fn graph_batch(s: &mut State, request: &http::Request<Bytes>) -> (StatusCode, Value, Vec<InnerLog>) {
    let body: Value = serde_json::from_slice(request.body()).unwrap_or(Value::Null);
    let Some(requests) = body.get("requests").and_then(Value::as_array) else {
        let (status, v) = error(400, "BadRequest", "Invalid batch payload format.");
        return (status, v, Vec::new());
    };
    if requests.len() > 20 {
        let (status, v) = error(400, "BadRequest", "The number of requests in a batch exceeds the limit of 20.");
        return (status, v, Vec::new());
    }
    let mut logged = Vec::new();
    let mut responses = Vec::new();
    for r in requests {
        let id = r.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        let method = r
            .get("method")
            .and_then(Value::as_str)
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            .unwrap_or(Method::GET);
        let url = r.get("url").and_then(Value::as_str).unwrap_or_default().trim_start_matches('/').to_owned();
        let inner_body = r.get("body").cloned().unwrap_or(Value::Null);
        let text = if inner_body.is_null() { String::new() } else { inner_body.to_string() };
        let inner = http::Request::builder()
            .method(method.clone())
            .uri(format!("/v1.0/{url}"))
            .body(Bytes::from(text.clone()))
            .unwrap_or_else(|_| http::Request::new(Bytes::new()));
        let route = route_of(&method, &Target::Graph { rest: url.clone() });
        let (status, answer, fault) = match inner_fault(s, &route, Some("graph.microsoft.com")) {
            Some((status, body, wait)) => (status, body, Some(wait)),
            None => {
                let (status, body) = graph(s, &inner, &url, &inner_body);
                (status, body, None)
            }
        };
        let mut headers = json!({"Content-Type": "application/json"});
        for (name, value) in fault.iter().flatten() {
            headers[name.as_str()] = json!(value);
        }
        logged.push(InnerLog {
            route,
            method: method.to_string(),
            path: format!("/v1.0/{url}"),
            body: text,
            status: status.as_u16(),
            fault: fault.clone(),
            rolled_back: false,
        });
        responses.push(json!({"id": id, "status": status.as_u16(), "headers": headers, "body": answer}));
    }
    // Graph answers in any order: the fake answers backwards, so that a client relying on the order fails.
    responses.reverse();
    (StatusCode::OK, json!({"responses": responses}), logged)
}

/// A Dataverse `$batch`: each request through the same handler as on its own, change sets all or nothing (the
/// environment's state is put back when one request of the set fails, and the set answers with that response).
fn dataverse_batch(s: &mut State, request: &http::Request<Bytes>, host: &str) -> (Response<Bytes>, Vec<InnerLog>) {
    use crate::testkit::batch::{BatchPart, BatchRequest, BatchResponse, build_response, parse_request};
    let content_type = request.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let parts = match parse_request(content_type, request.body()) {
        Ok(p) => p,
        Err(e) => {
            let body =
                json!({"error": {"code": "0x80060891", "message": format!("The batch request is malformed: {e}")}});
            return (respond(StatusCode::BAD_REQUEST, &body, &[]), Vec::new());
        }
    };
    let mut logged: Vec<InnerLog> = Vec::new();
    let one = |s: &mut State,
               logged: &mut Vec<InnerLog>,
               r: &BatchRequest,
               created: &BTreeMap<u32, String>|
     -> BatchResponse {
        let path = r.url.split("/api/data/v9.2/").nth(1).unwrap_or(&r.url).to_owned();
        let mut text = String::from_utf8_lossy(r.body.as_deref().unwrap_or_default()).into_owned();
        // `$n` in a body refers to what request n of the change set created.
        for (id, url) in created {
            text = text.replace(&format!("\"${id}\""), &format!("\"{url}\""));
        }
        let body: Value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::Null) };
        let mut builder = http::Request::builder().method(r.method.clone()).uri(format!("/api/data/v9.2/{path}"));
        for (n, v) in &r.headers {
            builder = builder.header(n.as_str(), v.as_str());
        }
        let inner = builder.body(Bytes::from(text.clone())).unwrap_or_else(|_| http::Request::new(Bytes::new()));
        let route = route_of(&r.method, &Target::Dataverse { host: host.to_owned(), rest: path.clone() });
        let (status, answer, fault) = match inner_fault(s, &route, Some(host)) {
            Some((status, body, wait)) => (status, body, Some(wait)),
            None => {
                let (status, body) = dataverse(s, &inner, host, &path, &body);
                (status, body, None)
            }
        };
        logged.push(InnerLog {
            route,
            method: r.method.to_string(),
            path: format!("/api/data/v9.2/{path}"),
            body: text,
            status: status.as_u16(),
            fault: fault.clone(),
            rolled_back: false,
        });
        let wants_body = r.method == Method::GET
            || r.headers
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case("prefer") && v.starts_with("return=representation"));
        let mut headers = http::HeaderMap::new();
        for (name, value) in fault.iter().flatten() {
            if let (Ok(n), Ok(v)) = (http::HeaderName::try_from(name.as_str()), http::HeaderValue::from_str(value)) {
                headers.insert(n, v);
            }
        }
        let (status, body) = if status.is_success() && !wants_body {
            if let Some(id) = answer.get("managedidentityid").and_then(Value::as_str)
                && let Ok(v) =
                    http::HeaderValue::from_str(&format!("https://{host}/api/data/v9.2/managedidentities({id})"))
            {
                headers.insert("odata-entityid", v);
            }
            (if status == StatusCode::CREATED { StatusCode::NO_CONTENT } else { status }, Bytes::new())
        } else {
            headers.insert("content-type", http::HeaderValue::from_static("application/json; odata.metadata=minimal"));
            (status, Bytes::from(serde_json::to_vec(&answer).unwrap_or_default()))
        };
        BatchResponse { status, headers, body, content_id: r.content_id.map(|c| c.to_string()) }
    };
    let mut answers = Vec::with_capacity(parts.len());
    for part in &parts {
        match part {
            BatchPart::Request(r) => {
                let mut response = one(s, &mut logged, r, &BTreeMap::new());
                response.content_id = None;
                answers.push(Ok(vec![response]));
            }
            BatchPart::ChangeSet(requests) => {
                let before = s.environments.get(host).cloned();
                let first = logged.len();
                let mut created = BTreeMap::new();
                let mut responses = Vec::new();
                let mut failed = None;
                for r in requests {
                    let response = one(s, &mut logged, r, &created);
                    if !response.status.is_success() {
                        failed = Some(response);
                        break;
                    }
                    // What the request created, as the server knows it whether or not it told the client (a create
                    // with `Prefer: return=representation` answers with the row and no `OData-EntityId`).
                    let made = response
                        .headers
                        .get("odata-entityid")
                        .and_then(|url| url.to_str().ok())
                        .map(|url| url.split("/api/data/v9.2").nth(1).unwrap_or(url).to_owned())
                        .or_else(|| {
                            let row: Value = serde_json::from_slice(&response.body).ok()?;
                            Some(format!("/managedidentities({})", row.get("managedidentityid")?.as_str()?))
                        });
                    if let (Some(id), Some(relative)) = (r.content_id, made) {
                        created.insert(id, relative);
                    }
                    responses.push(response);
                }
                match failed {
                    Some(f) => {
                        if let Some(env) = before {
                            s.environments.insert(host.to_owned(), env);
                        }
                        // The set's writes that succeeded before the failure are undone with it.
                        let failed_at = logged.len().saturating_sub(1);
                        for entry in logged.iter_mut().take(failed_at).skip(first) {
                            entry.rolled_back = entry.method != "GET" && (200..300).contains(&entry.status);
                        }
                        answers.push(Err(f));
                    }
                    None => answers.push(Ok(responses)),
                }
            }
        }
    }
    let boundary = crate::testkit::batch::boundary("batchresponse");
    let body = build_response(&boundary, &answers);
    let response = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", format!("multipart/mixed; boundary={boundary}"))
        .header("x-ms-request-id", "fake-request")
        .body(Bytes::from(body))
        .unwrap_or_else(|_| Response::new(Bytes::new()));
    (response, logged)
}

fn respond(status: StatusCode, body: &Value, headers: &[(&str, &str)]) -> Response<Bytes> {
    let bytes = if body.is_null() { Bytes::new() } else { Bytes::from(serde_json::to_vec(body).unwrap_or_default()) };
    let mut b = Response::builder().status(status).header("x-ms-request-id", "fake-request");
    if !bytes.is_empty() {
        b = b.header("content-type", "application/json; odata.metadata=minimal");
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(bytes).unwrap_or_else(|_| Response::new(Bytes::new()))
}

/// The route of a request, from the route table ([`super::Route`]); a request no route serves is logged as
/// `METHOD service unknown`.
fn route_of(method: &Method, t: &Target) -> String {
    let (service, path) = match t {
        Target::Dataverse { rest, .. } => ("dataverse", rest.as_str()),
        Target::Graph { rest } => ("graph", rest.as_str()),
        Target::Arm { rest } => ("arm", rest.as_str()),
        Target::Login => ("login", "token"),
        Target::Discovery { rest } => ("discovery", rest.as_str()),
        Target::Unknown => ("unknown", ""),
    };
    match super::Route::of(method, service, path) {
        Some(route) => route.as_str().to_owned(),
        None => format!("{method} {service} unknown"),
    }
}

fn id_in(rest: &str, prefix: &str) -> Option<Uuid> {
    let inner = rest.strip_prefix(prefix)?.strip_prefix('(')?;
    let end = inner.find(')')?;
    Uuid::parse_str(&inner[..end]).ok()
}

fn component_json(kind: &str, id: Uuid, c: &Component) -> Value {
    if kind == "pluginassemblies" {
        json!({"pluginassemblyid": id, "name": c.name, "version": "1.0.0.0", "culture": "neutral", "isolationmode": 2, "sourcetype": 0,
               "_packageid_value": c.package, "_managedidentityid_value": c.binding})
    } else {
        json!({"pluginpackageid": id, "name": c.name, "uniquename": c.name, "version": "1.0.0", "_managedidentityid_value": c.binding})
    }
}

fn dataverse(s: &mut State, request: &http::Request<Bytes>, host: &str, rest: &str, body: &Value) -> Answer {
    let page_size = s.options.page_size;
    let cloud = CloudProfile::from(s.options.cloud);
    let Some(env) = s.environments.get_mut(host) else { return error(404, "", &format!("no environment at {host}")) };
    let method = request.method();
    let q = query(request);
    let path = rest.split('?').next().unwrap_or(rest);
    if path.starts_with("RetrieveCurrentOrganization") && method == Method::GET {
        return (
            StatusCode::OK,
            json!({"Detail": {
                "OrganizationId": env.organization_id, "EnvironmentId": env.environment_id.to_string(), "TenantId": env.tenant_id.to_string(),
                "UniqueName": format!("unq{}", env.organization_id.simple()), "FriendlyName": host, "UrlName": host.split('.').next(), "Geo": "NA",
                "Endpoints": {"Count": 1, "IsReadOnly": false, "Keys": ["WebApplication"], "Values": [format!("https://{host}/")]}
            }}),
        );
    }
    if path == "plugintracelogs" && method == Method::GET {
        return trace_logs(env, request, page_size);
    }
    if path == "organizations" && method == Method::GET {
        let rows = vec![json!({"organizationid": env.organization_id, "plugintracelogsetting": env.trace_setting})];
        return (StatusCode::OK, page(request, rows, page_size));
    }
    if id_in(path, "organizations") == Some(env.organization_id) && method == Method::PATCH {
        if let Some(v) = body.get("plugintracelogsetting").and_then(Value::as_i64) {
            env.trace_setting = v as i32;
        }
        return (StatusCode::NO_CONTENT, Value::Null);
    }
    if path == "WhoAmI" {
        return (
            StatusCode::OK,
            json!({"UserId": Uuid::nil(), "BusinessUnitId": Uuid::nil(), "OrganizationId": env.organization_id}),
        );
    }
    if path.starts_with("GetComponentManagedIdentityFIC") {
        return component_fic(env, path, &cloud);
    }
    if path == "managedidentities" {
        return match *method {
            Method::GET => {
                let filter = param(&q, "$filter").map(|f| parse_filter(&f));
                let rows: Vec<Value> = env
                    .managed_identities
                    .values()
                    .filter(|row| match &filter {
                        None => true,
                        Some(None) => false,
                        Some(Some(terms)) => terms.iter().any(|(field, value)| match field.as_str() {
                            "applicationid" => {
                                row.application_id.map(|a| a.to_string()) == Some(value.to_ascii_lowercase())
                            }
                            "managedidentityid" => row.id.to_string() == value.to_ascii_lowercase(),
                            "tenantid" => row.tenant_id.map(|a| a.to_string()) == Some(value.to_ascii_lowercase()),
                            _ => false,
                        }),
                    })
                    .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
                    .collect();
                if matches!(filter, Some(None)) {
                    return error(400, "0x80060888", "the fake cannot read this $filter");
                }
                (StatusCode::OK, page(request, rows, page_size))
            }
            Method::POST => {
                let Ok(new) = serde_json::from_value::<NewManagedIdentity>(body.clone()) else {
                    return error(400, "0x80048d19", "Error identified in Payload provided by the user");
                };
                if env.managed_identities.contains_key(&new.id) {
                    return error(412, "0x80040237", "A record with matching key values already exists.");
                }
                let row = ManagedIdentity {
                    id: new.id,
                    name: Some(new.name),
                    application_id: Some(new.application_id),
                    tenant_id: Some(new.tenant_id),
                    credential_source: Some(new.credential_source),
                    subject_scope: Some(new.subject_scope),
                    version: Some(new.version.number()),
                    identity_type: None,
                    state_code: Some(0),
                    component_state: Some(0),
                    is_managed: Some(false),
                    extra: serde_json::Map::new(),
                };
                let v = serde_json::to_value(&row).unwrap_or(Value::Null);
                env.managed_identities.insert(row.id, row);
                (StatusCode::CREATED, v)
            }
            _ => error(405, "", "method not allowed"),
        };
    }
    if let Some(id) = id_in(path, "managedidentities") {
        let Some(row) = env.managed_identities.get_mut(&id) else {
            return error(404, "0x80040217", &format!("managedidentity With Ids = {id} Do Not Exist"));
        };
        return match *method {
            Method::GET => (StatusCode::OK, serde_json::to_value(&*row).unwrap_or(Value::Null)),
            Method::PATCH => {
                if let Some(v) = body.get("version").and_then(Value::as_i64) {
                    row.version = Some(v as i32);
                }
                if let Some(a) = body.get("applicationid").and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok())
                {
                    row.application_id = Some(a);
                }
                if let Some(t) = body.get("tenantid").and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok()) {
                    row.tenant_id = Some(t);
                }
                if let Some(n) = body.get("name").and_then(Value::as_str) {
                    row.name = Some(n.to_owned());
                }
                (StatusCode::NO_CONTENT, Value::Null)
            }
            Method::DELETE => {
                env.managed_identities.remove(&id);
                for c in env.assemblies.values_mut().chain(env.packages.values_mut()) {
                    if c.binding == Some(id) {
                        c.binding = None;
                    }
                }
                (StatusCode::NO_CONTENT, Value::Null)
            }
            _ => error(405, "", "method not allowed"),
        };
    }
    for (set, name_field) in [("pluginassemblies", "name"), ("pluginpackages", "uniquename")] {
        if path == set && *method == Method::GET {
            let filter = param(&q, "$filter").map(|f| parse_filter(&f));
            let table = if set == "pluginassemblies" { &env.assemblies } else { &env.packages };
            let rows: Vec<Value> = table
                .iter()
                .filter(|(_, c)| match &filter {
                    None => true,
                    Some(None) => false,
                    Some(Some(terms)) => terms.iter().any(|(f, v)| (f == name_field || f == "name") && *v == c.name),
                })
                .map(|(id, c)| component_json(set, *id, c))
                .collect();
            if matches!(filter, Some(None)) {
                return error(400, "0x80060888", "the fake cannot read this $filter");
            }
            return (StatusCode::OK, page(request, rows, page_size));
        }
        if let Some(id) = id_in(path, set)
            && path.ends_with(")/fileid/$value")
        {
            // The fake keeps a package's bytes in `content`; its file column is empty.
            return error(404, "0x80040217", &format!("no file attachment found for {set}({id}).fileid"));
        }
        if let Some(id) = id_in(path, set) {
            let rows_exist: Vec<Uuid> = env.managed_identities.keys().copied().collect();
            let table = if set == "pluginassemblies" { &mut env.assemblies } else { &mut env.packages };
            let Some(c) = table.get_mut(&id) else {
                return error(404, "0x80040217", &format!("{set} With Ids = {id} Do Not Exist"));
            };
            return match *method {
                Method::GET => {
                    let mut row = component_json(set, id, c);
                    let select = param(&q, "$select").unwrap_or_default();
                    if select.split(',').any(|f| f.trim() == "content") {
                        use base64::Engine as _;
                        let content = c.content.as_ref().map(|b| base64::engine::general_purpose::STANDARD.encode(b));
                        row = json!({ if set == "pluginassemblies" { "pluginassemblyid" } else { "pluginpackageid" }: id, "content": content });
                    }
                    (StatusCode::OK, row)
                }
                Method::PATCH => match body.get("managedidentityid@odata.bind") {
                    Some(Value::Null) => {
                        c.binding = None;
                        (StatusCode::NO_CONTENT, Value::Null)
                    }
                    Some(Value::String(target)) => match id_in(target.trim_start_matches('/'), "managedidentities") {
                        Some(mi) if rows_exist.contains(&mi) => {
                            c.binding = Some(mi);
                            (StatusCode::NO_CONTENT, Value::Null)
                        }
                        _ => error(404, "0x80040217", &format!("managedidentity {target} does not exist")),
                    },
                    _ => (StatusCode::NO_CONTENT, Value::Null),
                },
                _ => error(405, "", "method not allowed"),
            };
        }
    }
    error(404, "0x80060888", &format!("Resource not found for the segment '{path}'"))
}

/// The subject the platform presents for a component, with the row's application and tenant ids: the one place
/// the fake decides it, for `GetComponentManagedIdentityFIC` and for token requests alike. An assembly inside a
/// plug-in package uses the package's binding and signature, as the platform does.
pub(super) fn presented_subject(
    s: &State,
    host: &str,
    component: Uuid,
    cloud: &CloudProfile,
) -> Result<(String, Uuid, Uuid), String> {
    let env = s.environments.get(host).ok_or("no such environment")?;
    let c = env.assemblies.get(&component).or_else(|| env.packages.get(&component)).ok_or("no such component")?;
    platform_subject(env, c, cloud)
}

fn platform_subject(env: &Environment, c: &Component, cloud: &CloudProfile) -> Result<(String, Uuid, Uuid), String> {
    // A packaged assembly's identity and certificate are its package's.
    let c = match c.package.and_then(|p| env.packages.get(&p)) {
        Some(package) => package,
        None => c,
    };
    let row = c
        .binding
        .and_then(|mi| env.managed_identities.get(&mi))
        .ok_or("The plug-in assembly is not associated with a managed identity.")?;
    let ids = (row.application_id.unwrap_or_default(), row.tenant_id.unwrap_or(env.tenant_id));
    if let Some(subject) = &c.presented {
        return Ok((subject.clone(), ids.0, ids.1));
    }
    let version = row
        .version
        .and_then(SubjectFormatVersion::from_number)
        .ok_or("The managed identity has no subject format version.")?;
    let cert = c.certificate.as_ref().ok_or("The plug-in assembly is not signed.")?;
    // Version 1 carries the CN values, as the platform writes them.
    let binding =
        CertificateBinding::for_certificate(cert, version, CertificateKind::Auto).map_err(|e| e.to_string())?;
    let subject =
        SubjectIdentifier::new(cloud, env.tenant_id, env.environment_id, binding).map_err(|e| e.to_string())?;
    let mut text = subject.to_string();
    if let Some(segment) = &env.presentation.environment_segment {
        text = text.replacen(&format!("/e/{}/", env.environment_id), &format!("/e/{segment}/"), 1);
    }
    Ok((text, ids.0, ids.1))
}

fn trace_logs(env: &Environment, request: &http::Request<Bytes>, page_size: usize) -> Answer {
    let q = query(request);
    let filter = param(&q, "$filter").unwrap_or_default();
    let since =
        filter.split("createdon gt ").nth(1).map(|r| r.split(' ').next().unwrap_or("").to_owned()).unwrap_or_default();
    let prefix =
        filter.split("startswith(typename,'").nth(1).and_then(|r| r.split("')").next()).map(|p| p.replace("''", "'"));
    // Compared as instants, as Dataverse compares DateTimeOffset values (not as text: `10:00:00Z` and
    // `10:00:00.000Z` are the same time).
    let time = |t: &str| humantime::parse_rfc3339_weak(t).ok();
    let since = time(&since);
    let rows = env
        .trace_logs
        .iter()
        .filter(|l| match (l.created_on.as_deref().and_then(time), since) {
            (Some(created), Some(since)) => created > since,
            (_, None) => true,
            (None, Some(_)) => false,
        })
        .filter(|l| prefix.as_deref().is_none_or(|p| l.type_name.as_deref().unwrap_or("").starts_with(p)))
        .map(|l| serde_json::to_value(l).unwrap_or(Value::Null))
        .collect();
    (StatusCode::OK, page(request, rows, page_size))
}

fn component_fic(env: &Environment, path: &str, cloud: &CloudProfile) -> Answer {
    let kind = if path.contains("ComponentName='pluginpackage'") { "pluginpackage" } else { "pluginassembly" };
    let id = path.split("ComponentId=").nth(1).and_then(|r| Uuid::parse_str(r.trim_end_matches(')')).ok());
    let table = if kind == "pluginpackage" { &env.packages } else { &env.assemblies };
    let Some(c) = id.and_then(|id| table.get(&id)) else { return error(404, "0x80040217", "component not found") };
    match platform_subject(env, c, cloud) {
        Ok((subject, _, _)) => (
            StatusCode::OK,
            json!({
                "@odata.context": "https://fake.crm.dynamics.com/api/data/v9.2/$metadata#Microsoft.Dynamics.CRM.GetComponentManagedIdentityFICResponse",
                "FICSubject": subject
            }),
        ),
        Err(why) => error(400, "0x80040265", &why),
    }
}

fn fic_problem(
    list: &[&FederatedIdentityCredential],
    fic: &FederatedIdentityCredential,
    replacing: Option<&str>,
) -> Option<Answer> {
    if let Err(e) = fic.validate() {
        return Some(error(400, "Request_BadRequest", &e.to_string()));
    }
    let others: Vec<&&FederatedIdentityCredential> =
        list.iter().filter(|f| Some(f.name.as_str()) != replacing).collect();
    if replacing.is_none() && others.iter().any(|f| f.name == fic.name) {
        return Some(error(
            409,
            "Request_MultipleObjectsWithSameKeyValue",
            &format!("FederatedIdentityCredential with name {} already exists.", fic.name),
        ));
    }
    if others.iter().any(|f| f.issuer == fic.issuer && f.subject == fic.subject) {
        return Some(error(
            409,
            "Request_MultipleObjectsWithSameKeyValue",
            "A federated identity credential with the same issuer and subject already exists.",
        ));
    }
    if replacing.is_none() && others.len() >= MAX_FICS_PER_IDENTITY {
        return Some(error(
            400,
            "Request_BadRequest",
            "The application has reached the maximum of 20 federated identity credentials.",
        ));
    }
    None
}

/// `applications` (find by `$filter`, create) and `servicePrincipals` (create, read by appId).
fn graph_directory(s: &mut State, request: &http::Request<Bytes>, path: &str, body: &Value) -> Option<Answer> {
    let method = request.method();
    if path == "applications" {
        return Some(match *method {
            Method::GET => {
                let filter = param(&query(request), "$filter").unwrap_or_default();
                let Some(terms) = parse_filter(&filter) else {
                    return Some(error(400, "Request_UnsupportedQuery", "Unsupported query."));
                };
                let rows = s
                    .apps
                    .iter()
                    .filter(|(app_id, a)| {
                        terms.iter().any(|(field, value)| match field.as_str() {
                            "displayName" => a.display_name == *value,
                            "appId" => app_id.to_string() == *value,
                            _ => false,
                        })
                    })
                    .map(|(app_id, a)| json!({"id": a.object_id, "appId": app_id, "displayName": a.display_name}))
                    .collect();
                (StatusCode::OK, page(request, rows, s.options.page_size))
            }
            Method::POST => {
                let Some(name) = body.get("displayName").and_then(Value::as_str).filter(|n| !n.is_empty()) else {
                    return Some(error(400, "Request_BadRequest", "displayName is required."));
                };
                let (app_id, object_id) = (super::ids(&mut s.rng), super::ids(&mut s.rng));
                let tags: Vec<String> = body
                    .get("tags")
                    .and_then(Value::as_array)
                    .map(|t| t.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                s.apps.insert(
                    app_id,
                    super::App { object_id, display_name: name.to_owned(), tags: tags.clone(), fics: Vec::new() },
                );
                (StatusCode::CREATED, json!({"id": object_id, "appId": app_id, "displayName": name, "tags": tags}))
            }
            _ => error(405, "", "method not allowed"),
        });
    }
    if path == "servicePrincipals" && method == Method::POST {
        let Some(app_id) = body.get("appId").and_then(Value::as_str).and_then(|v| Uuid::parse_str(v).ok()) else {
            return Some(error(400, "Request_BadRequest", "appId is required."));
        };
        if !s.apps.contains_key(&app_id) {
            return Some(error(
                400,
                "Request_BadRequest",
                &format!(
                    "The appId '{app_id}' of the service principal does not reference a valid application object."
                ),
            ));
        }
        if s.service_principals.contains_key(&app_id) {
            return Some(error(
                409,
                "Request_MultipleObjectsWithSameKeyValue",
                "The service principal cannot be created, updated, or restored because the service principal name is already in use.",
            ));
        }
        let id = super::ids(&mut s.rng);
        s.service_principals.insert(app_id, id);
        let lag = s.replication_lag;
        if lag > 0 {
            s.unreplicated.insert(id, lag);
        }
        return Some((StatusCode::CREATED, json!({"id": id, "appId": app_id})));
    }
    if let Some(key) = path.strip_prefix("servicePrincipals(appId='").and_then(|r| r.strip_suffix("')")) {
        let found = Uuid::parse_str(key).ok().and_then(|app_id| Some((app_id, *s.service_principals.get(&app_id)?)));
        return Some(match found {
            Some((app_id, id)) if *method == Method::GET => (StatusCode::OK, json!({"id": id, "appId": app_id})),
            Some(_) => error(405, "", "method not allowed"),
            None => error(404, "Request_ResourceNotFound", &format!("Resource '{key}' does not exist.")),
        });
    }
    None
}

fn graph(s: &mut State, request: &http::Request<Bytes>, rest: &str, body: &Value) -> Answer {
    let page_size = s.options.page_size;
    let path = rest.split('?').next().unwrap_or(rest);
    if let Some(answer) = graph_directory(s, request, path, body) {
        return answer;
    }
    let (app_part, tail) = match path.split_once('/') {
        Some((a, t)) if a.starts_with("applications(") => (a.to_owned(), t.to_owned()),
        _ if path.starts_with("applications(") => {
            let end = path.find(')').map(|i| i + 1).unwrap_or(path.len());
            (path[..end].to_owned(), path[end..].trim_start_matches('/').to_owned())
        }
        _ => match path.strip_prefix("applications/").and_then(|r| r.split_once('/').or(Some((r, "")))) {
            Some((obj, t)) => (format!("object:{obj}"), t.to_owned()),
            None => return error(404, "Request_ResourceNotFound", "no such route"),
        },
    };
    let app_id = if let Some(obj) = app_part.strip_prefix("object:") {
        s.apps.iter().find(|(_, a)| a.object_id.to_string() == obj).map(|(id, _)| *id)
    } else {
        app_part.split('\'').nth(1).and_then(|v| Uuid::parse_str(v).ok())
    };
    let Some(app_id) = app_id.filter(|id| s.apps.contains_key(id)) else {
        return error(
            404,
            "Request_ResourceNotFound",
            "Resource does not exist or one of its queried reference-property objects are not present.",
        );
    };
    let rng_id = uuid::Builder::from_random_bytes(s.rng.u128(..).to_le_bytes()).into_uuid().to_string();
    let Some(app) = s.apps.get_mut(&app_id) else { return error(404, "Request_ResourceNotFound", "no app") };
    let method = request.method();
    let stored = |id: &str, f: &FederatedIdentityCredential| {
        let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
        v["id"] = json!(id);
        if v.get("description").is_none() {
            v["description"] = Value::Null;
        }
        v
    };
    if tail.is_empty() && *method == Method::DELETE {
        // Deleting the application deletes its service principal too.
        s.apps.remove(&app_id);
        s.service_principals.remove(&app_id);
        return (StatusCode::NO_CONTENT, Value::Null);
    }
    if tail.is_empty() {
        return (
            StatusCode::OK,
            json!({"id": app.object_id, "appId": app_id, "displayName": app.display_name, "tags": app.tags}),
        );
    }
    if tail == "federatedIdentityCredentials" {
        return match *method {
            Method::GET => {
                let rows = app.fics.iter().map(|(id, f)| stored(id, f)).collect();
                (StatusCode::OK, page(request, rows, page_size))
            }
            Method::POST => {
                let Ok(fic) = serde_json::from_value::<FederatedIdentityCredential>(body.clone()) else {
                    return error(400, "Request_BadRequest", "Invalid request body.");
                };
                let list: Vec<&FederatedIdentityCredential> = app.fics.iter().map(|(_, f)| f).collect();
                if let Some(problem) = fic_problem(&list, &fic, None) {
                    return problem;
                }
                let v = stored(&rng_id, &fic);
                app.fics.push((rng_id, fic));
                (StatusCode::CREATED, v)
            }
            _ => error(405, "", "method not allowed"),
        };
    }
    if let Some(name) = tail.strip_prefix("federatedIdentityCredentials(name='").and_then(|r| r.strip_suffix("')")) {
        // The name is the URL's; the body may leave it out.
        let mut body = body.clone();
        if let Some(fields) = body.as_object_mut() {
            fields.entry("name").or_insert_with(|| json!(name));
        }
        let Ok(mut fic) = serde_json::from_value::<FederatedIdentityCredential>(body) else {
            return error(400, "Request_BadRequest", "Invalid request body.");
        };
        fic.name = name.to_owned();
        let exists = app.fics.iter().any(|(_, f)| f.name == name);
        // Graph creates only with `Prefer: create-if-missing`; otherwise the PATCH is an update of nothing.
        let create_if_missing = request.headers().get_all("prefer").iter().any(|v| {
            v.to_str().is_ok_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("create-if-missing")))
        });
        if !exists && !create_if_missing {
            return error(
                404,
                "Request_ResourceNotFound",
                &format!(
                    "Resource '{name}' does not exist or one of its queried reference-property objects are not present."
                ),
            );
        }
        let list: Vec<&FederatedIdentityCredential> = app.fics.iter().map(|(_, f)| f).collect();
        if let Some(problem) = fic_problem(&list, &fic, exists.then_some(name)) {
            return problem;
        }
        if let Some(slot) = app.fics.iter_mut().find(|(_, f)| f.name == name) {
            slot.1 = fic;
            return (StatusCode::NO_CONTENT, Value::Null);
        }
        let v = stored(&rng_id, &fic);
        app.fics.push((rng_id, fic));
        return (StatusCode::CREATED, v);
    }
    if let Some(key) = tail.strip_prefix("federatedIdentityCredentials/") {
        let Some(index) = app.fics.iter().position(|(id, f)| id == key || f.name == key) else {
            return error(404, "Request_ResourceNotFound", "Resource does not exist.");
        };
        return match *method {
            Method::GET => (StatusCode::OK, stored(&app.fics[index].0, &app.fics[index].1)),
            Method::DELETE => {
                app.fics.remove(index);
                (StatusCode::NO_CONTENT, Value::Null)
            }
            Method::PATCH => {
                let f = &mut app.fics[index].1;
                for (field, slot) in [("issuer", &mut f.issuer), ("subject", &mut f.subject)] {
                    if let Some(v) = body.get(field).and_then(Value::as_str) {
                        *slot = v.to_owned();
                    }
                }
                if let Some(a) = body.get("audiences").and_then(|a| serde_json::from_value(a.clone()).ok()) {
                    f.audiences = a;
                }
                (StatusCode::NO_CONTENT, Value::Null)
            }
            _ => error(405, "", "method not allowed"),
        };
    }
    error(404, "Request_ResourceNotFound", "no such route")
}

pub(super) fn uami_key(subscription: &str, resource_group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
    .to_ascii_lowercase()
}

/// The built-in roles the fake knows: name and definition GUID (Azure's own).
const ROLES: &[(&str, &str)] = &[
    ("Key Vault Secrets User", "4633458b-17de-408a-b874-0445c86b69e6"),
    ("Key Vault Secrets Officer", "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"),
    ("Key Vault Crypto User", "12338af0-0e69-4776-bea7-57ae8d297424"),
    ("Storage Blob Data Reader", "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"),
    ("Storage Blob Data Contributor", "ba92f5b4-2d11-453d-a403-e96b0029c9fe"),
    ("Azure Service Bus Data Sender", "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"),
    ("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
    ("Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c"),
];

/// A role definition's id as ARM names it at `scope`: under the scope's subscription.
pub(super) fn role_definition_id(scope: &str, role_name: &str) -> Option<String> {
    let (_, guid) = ROLES.iter().find(|(name, _)| *name == role_name)?;
    let subscription = scope.trim_start_matches('/').strip_prefix("subscriptions/").and_then(|r| r.split('/').next());
    Some(match subscription {
        Some(sub) => format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"),
        None => format!("/providers/Microsoft.Authorization/roleDefinitions/{guid}"),
    })
}

fn role_assignment_json(a: &crate::clients::RoleAssignment) -> Value {
    json!({"id": a.id, "name": a.name, "type": "Microsoft.Authorization/roleAssignments",
           "properties": {"roleDefinitionId": a.role_definition_id, "principalId": a.principal_id,
                          "principalType": "ServicePrincipal", "scope": a.scope}})
}

/// `{scope}/providers/Microsoft.Authorization/{roleDefinitions|roleAssignments}...`
fn authorization(s: &mut State, request: &http::Request<Bytes>, scope: &str, tail: &str, body: &Value) -> Answer {
    let method = request.method();
    let scope = format!("/{}", scope.trim_matches('/'));
    let filter = param(&query(request), "$filter").unwrap_or_default();
    let terms = parse_filter(&filter).unwrap_or_default();
    let term = |field: &str| terms.iter().find(|(f, _)| f == field).map(|(_, v)| v.clone());
    if tail == "roleDefinitions" && *method == Method::GET {
        let found = term("roleName").and_then(|name| {
            let id = role_definition_id(&scope, &name)?;
            let guid = id.rsplit('/').next().unwrap_or_default().to_owned();
            Some(json!({"id": id, "name": guid, "type": "Microsoft.Authorization/roleDefinitions",
                        "properties": {"roleName": name, "type": "BuiltInRole"}}))
        });
        return (StatusCode::OK, json!({"value": found.into_iter().collect::<Vec<_>>()}));
    }
    if tail == "roleAssignments" && *method == Method::GET {
        let principal = term("principalId").and_then(|p| Uuid::parse_str(&p).ok());
        let related = |other: &str| {
            let (a, b) = (other.to_ascii_lowercase(), scope.to_ascii_lowercase());
            a.starts_with(&b) || b.starts_with(&a)
        };
        let rows: Vec<Value> = s
            .role_assignments
            .iter()
            .filter(|a| principal.is_none_or(|p| a.principal_id == p) && related(&a.scope))
            .map(role_assignment_json)
            .collect();
        return (StatusCode::OK, json!({"value": rows}));
    }
    let Some(name) = tail.strip_prefix("roleAssignments/") else {
        return error(404, "NoRoute", "the fake has no such authorization route");
    };
    if *method == Method::DELETE {
        let before = s.role_assignments.len();
        s.role_assignments.retain(|a| !(a.name.eq_ignore_ascii_case(name) && a.scope.eq_ignore_ascii_case(&scope)));
        return if s.role_assignments.len() < before {
            (StatusCode::OK, Value::Null)
        } else {
            (StatusCode::NO_CONTENT, Value::Null)
        };
    }
    if *method != Method::PUT {
        return error(405, "", "method not allowed");
    }
    let props = &body["properties"];
    let (Some(role_definition_id), Some(principal_id)) =
        (props["roleDefinitionId"].as_str(), props["principalId"].as_str().and_then(|p| Uuid::parse_str(p).ok()))
    else {
        return error(400, "InvalidRoleAssignmentRequest", "roleDefinitionId and principalId are required.");
    };
    if Uuid::parse_str(name).is_err() {
        return error(400, "InvalidRoleAssignmentId", &format!("The role assignment ID '{name}' is not valid."));
    }
    let known = s.service_principals.values().any(|p| *p == principal_id)
        || s.uamis.values().any(|u| u.principal_id == principal_id);
    let waiting = s.unreplicated.get_mut(&principal_id).filter(|n| **n > 0);
    if !known || waiting.is_some() {
        if let Some(n) = waiting {
            *n -= 1;
        }
        return error(
            400,
            "PrincipalNotFound",
            &format!(
                "Principal {} does not exist in the directory. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay.",
                principal_id.simple()
            ),
        );
    }
    let guid = |id: &str| id.rsplit('/').next().unwrap_or_default().to_ascii_lowercase();
    let same = s.role_assignments.iter().any(|a| {
        a.principal_id == principal_id
            && a.scope.eq_ignore_ascii_case(&scope)
            && guid(&a.role_definition_id) == guid(role_definition_id)
    });
    if same || s.role_assignments.iter().any(|a| a.name.eq_ignore_ascii_case(name)) {
        return error(409, "RoleAssignmentExists", "The role assignment already exists.");
    }
    let assignment = crate::clients::RoleAssignment {
        id: format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
        name: name.to_owned(),
        role_definition_id: role_definition_id.to_owned(),
        principal_id,
        scope,
    };
    let v = role_assignment_json(&assignment);
    s.role_assignments.push(assignment);
    (StatusCode::CREATED, v)
}

fn arm(s: &mut State, request: &http::Request<Bytes>, rest: &str, body: &Value) -> Answer {
    let method = request.method();
    let path = rest.split('?').next().unwrap_or(rest);
    const AUTHORIZATION: &str = "/providers/Microsoft.Authorization/";
    if let Some(i) = path.find(AUTHORIZATION) {
        return authorization(s, request, &path[..i], &path[i + AUTHORIZATION.len()..], body);
    }
    let (identity, tail) = match path.find("/federatedIdentityCredentials") {
        Some(i) => (&path[..i], &path[i + "/federatedIdentityCredentials".len()..]),
        None => (path, ""),
    };
    let key = format!("/{}", identity.trim_start_matches('/')).to_ascii_lowercase();
    let write_time = s.options.latency;
    if tail.is_empty() && !path.contains("/federatedIdentityCredentials") && *method == Method::PUT {
        return put_identity(s, identity, key, body);
    }
    if tail.is_empty() && !path.contains("/federatedIdentityCredentials") && *method == Method::DELETE {
        // Its FICs go with it.
        return match s.uamis.remove(&key) {
            Some(_) => (StatusCode::OK, Value::Null),
            None => (StatusCode::NO_CONTENT, Value::Null),
        };
    }
    let Some(uami) = s.uamis.get_mut(&key) else {
        return error(404, "ResourceNotFound", &format!("The Resource '{identity}' was not found."));
    };
    let wire = |u: &str, f: &FederatedIdentityCredential| {
        json!({"id": format!("{u}/federatedIdentityCredentials/{}", f.name), "name": f.name,
               "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
               "properties": {"issuer": f.issuer, "subject": f.subject, "audiences": f.audiences}})
    };
    if !path.contains("/federatedIdentityCredentials") {
        return (StatusCode::OK, uami_json(uami));
    }
    let name = tail.trim_start_matches('/');
    if name.is_empty() {
        let id = uami.id.clone();
        return (StatusCode::OK, json!({"value": uami.fics.iter().map(|f| wire(&id, f)).collect::<Vec<_>>()}));
    }
    if validate_name(name).is_err() {
        return error(400, "InvalidResourceName", "The resource name is invalid.");
    }
    // ARM takes one FIC write at a time per identity: one that arrives while another is under way is refused
    // with its 409 (code and message as ARM sends them).
    if matches!(*method, Method::PUT | Method::DELETE) {
        let now = tokio::time::Instant::now();
        if uami.fic_write_until.is_some_and(|until| now < until) {
            return error(
                409,
                crate::clients::CONCURRENT_FIC_WRITES,
                &format!(
                    "Too many Federated Identity Credentials are written concurrently for the managed identity '{key}'. Concurrent Federated Identity Credentials writes under the same managed identity are not supported."
                ),
            );
        }
        uami.fic_write_until = Some(now + write_time);
    }
    let index = uami.fics.iter().position(|f| f.name == name);
    match (method, index) {
        (&Method::GET, Some(i)) => (StatusCode::OK, wire(&uami.id, &uami.fics[i])),
        (&Method::DELETE, Some(i)) => {
            uami.fics.remove(i);
            (StatusCode::OK, Value::Null)
        }
        (&Method::DELETE, None) => (StatusCode::NO_CONTENT, Value::Null),
        (&Method::PUT, existing) => {
            let props = &body["properties"];
            let fic = FederatedIdentityCredential {
                name: name.to_owned(),
                issuer: props["issuer"].as_str().unwrap_or_default().to_owned(),
                subject: props["subject"].as_str().unwrap_or_default().to_owned(),
                audiences: serde_json::from_value(props["audiences"].clone()).unwrap_or_default(),
                description: None,
            };
            let list: Vec<&FederatedIdentityCredential> = uami.fics.iter().collect();
            if let Some(problem) = fic_problem(&list, &fic, existing.map(|_| name)) {
                return problem;
            }
            let v = wire(&uami.id, &fic);
            match existing {
                Some(i) => {
                    uami.fics[i] = fic;
                    (StatusCode::OK, v)
                }
                None => {
                    uami.fics.push(fic);
                    (StatusCode::CREATED, v)
                }
            }
        }
        (_, None) => error(404, "NotFound", "The federated identity credential was not found."),
        _ => error(405, "", "method not allowed"),
    }
}

fn uami_json(u: &super::Uami) -> Value {
    json!({"id": u.id, "name": u.name, "location": u.location, "tags": u.tags,
           "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
           "properties": {"tenantId": u.tenant_id, "principalId": u.principal_id, "clientId": u.client_id}})
}

/// `PUT` of a user-assigned identity: created (201) or its tags replaced (200).
fn put_identity(s: &mut State, identity: &str, key: String, body: &Value) -> Answer {
    const TYPE: &str = "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/";
    let id = format!("/{}", identity.trim_start_matches('/'));
    let Some(name) = id.find(TYPE).map(|i| id[i + TYPE.len()..].to_owned()).filter(|n| !n.contains('/')) else {
        return error(404, "NoRoute", "the fake has no such ARM route");
    };
    let Some(location) = body.get("location").and_then(Value::as_str).filter(|l| !l.is_empty()) else {
        return error(400, "LocationRequired", "The location property is required for this definition.");
    };
    let tags = body.get("tags").cloned().unwrap_or_else(|| json!({}));
    if let Some(u) = s.uamis.get_mut(&key) {
        u.tags = tags;
        return (StatusCode::OK, uami_json(u));
    }
    let (client_id, principal_id) = (super::ids(&mut s.rng), super::ids(&mut s.rng));
    let tenant_id = s.environments.values().next().map(|e| e.tenant_id).unwrap_or_default();
    if s.replication_lag > 0 {
        s.unreplicated.insert(principal_id, s.replication_lag);
    }
    let u = super::Uami {
        id,
        name,
        location: location.to_owned(),
        tags,
        client_id,
        principal_id,
        tenant_id,
        fics: Vec::new(),
        fic_write_until: None,
    };
    let v = uami_json(&u);
    s.uamis.insert(key, u);
    (StatusCode::CREATED, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert_eq!(
            parse_filter("name eq 'a' or name eq 'O''Brien or not' or applicationid eq 0000").unwrap(),
            vec![
                ("name".into(), "a".into()),
                ("name".into(), "O'Brien or not".into()),
                ("applicationid".into(), "0000".into())
            ]
        );
        assert!(parse_filter("contains(name,'x')").is_none());
        assert!(parse_filter("name eq 'unterminated").is_none());
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%27b%20c"), "a'b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
