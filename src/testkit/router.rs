//! The fake's request handling: which service and route a request is for (the table in [`super::routes`]), the
//! injected faults, batches (each request inside dispatched through the same table), the log, and the platform's
//! rules its handlers ([`super::handlers`]) share.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

use super::handlers::{Answer, Incoming, error, percent_decode};
use super::routes::{BatchKind, Matched, Miss, Serve, resolve};
use super::{LoggedRequest, State};

/// Which service and route a request is for.
enum Target {
    Discovery { rest: String },
    Dataverse { host: String, rest: String },
    Graph { rest: String },
    Arm { rest: String },
    Login,
    Unknown,
}

impl Target {
    /// The service's name in the route table, the Dataverse environment's host (empty for the other services), and
    /// the path below the service's base.
    fn parts(&self) -> (&'static str, &str, &str) {
        match self {
            Target::Dataverse { host, rest } => ("dataverse", host, rest),
            Target::Graph { rest } => ("graph", "", rest),
            Target::Arm { rest } => ("arm", "", rest),
            Target::Login => ("login", "", "token"),
            Target::Discovery { rest } => ("discovery", "", rest),
            Target::Unknown => ("unknown", "", ""),
        }
    }
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

pub(super) fn handle(s: &mut State, request: &http::Request<Bytes>, host_hint: Option<&str>, path: &str) -> Handled {
    let latency = s.options.latency;
    let faults = s.options.faults.clone();
    let roll = s.rng.f64();
    let t = target(s, host_hint, path);
    let (service, env_host, rest) = t.parts();
    let method = request.method().clone();
    let resolved = resolve(&method, service, rest);
    let route_name = route_name(&resolved, &method, service);
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
    let path_only = rest.split('?').next().unwrap_or(rest);
    let (status, answer) = match resolved {
        Ok(Matched { serve: Serve::Batch(kind), keys, params, .. }) => {
            let incoming = Incoming { request, host: env_host, path: path_only, body: &Value::Null, keys, params };
            let (response, inner) = match kind {
                BatchKind::Dataverse => dataverse_batch(s, &incoming),
                BatchKind::Graph => graph_batch(s, &incoming),
            };
            s.log.push(log(route_name, response.status().as_u16(), false));
            for r in inner {
                s.log.push(r.logged(log(String::new(), 0, false)));
            }
            return Handled::Answer(response, delay);
        }
        Ok(Matched { serve: Serve::One(handler), keys, params, .. }) => {
            let body: Value = if request.body().is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(request.body()).unwrap_or(Value::Null)
            };
            let incoming = Incoming { request, host: env_host, path: path_only, body: &body, keys, params };
            handler(s, &incoming).unwrap_or_else(|e| e)
        }
        Err(miss) => no_route(service, &method, path_only, miss),
    };
    if after_processing {
        // Processed, but the answer is lost: the client will retry into its own effect.
        s.log.push(log(route_name, 0, false));
        return Handled::Drop { delay };
    }
    s.log.push(log(route_name, status.as_u16(), truncate));
    let wants_body = method != Method::POST
        || request.headers().get("prefer").is_some_and(|v| v.as_bytes().starts_with(b"return=representation"))
        || service != "dataverse";
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

/// The name a request is logged under: its route's, or `METHOD service unknown` for one no route serves.
fn route_name(resolved: &Result<Matched, Miss>, method: &Method, service: &str) -> String {
    match resolved {
        Ok(m) => m.route.as_str().to_owned(),
        Err(_) => format!("{method} {service} unknown"),
    }
}

/// The answer to a request no route serves, in the service's shape: 405 when routes have its path with other
/// methods, 404 otherwise.
fn no_route(service: &str, method: &Method, path: &str, miss: Miss) -> Answer {
    if miss == Miss::Method {
        return error(405, "MethodNotAllowed", &format!("the fake has no {method} route for {path}"));
    }
    match service {
        "dataverse" => error(404, "0x80060888", &format!("Resource not found for the segment '{path}'")),
        "graph" => error(404, "Request_ResourceNotFound", &format!("the fake has no route for {method} {path}")),
        _ => error(404, "NoRoute", &format!("the fake has no route for {method} {service} {path}")),
    }
}

/// A request inside a batch, through the same table and handlers as on its own: its route, its answer, and the
/// injected fault's headers when a fault answered it (a batch inside a batch is refused).
fn serve_inner(
    s: &mut State,
    service: &'static str,
    host: &str,
    request: &http::Request<Bytes>,
    rest: &str,
    body: &Value,
) -> (String, Answer, Option<Vec<(String, String)>>) {
    let method = request.method();
    let resolved = resolve(method, service, rest);
    let route = route_name(&resolved, method, service);
    let fault_host = if service == "graph" { "graph.microsoft.com" } else { host };
    if let Some((status, body, headers)) = inner_fault(s, &route, Some(fault_host)) {
        return (route, (status, body), Some(headers));
    }
    let path = rest.split('?').next().unwrap_or(rest);
    let answer = match resolved {
        Ok(Matched { serve: Serve::One(handler), keys, params, .. }) => {
            handler(s, &Incoming { request, host, path, body, keys, params }).unwrap_or_else(|e| e)
        }
        Ok(Matched { serve: Serve::Batch(_), .. }) => {
            error(400, "BadRequest", "A batch request cannot contain another batch request.")
        }
        Err(miss) => no_route(service, method, path, miss),
    };
    (route, answer, None)
}

/// A request inside a batch, as logged.
pub(super) struct InnerLog {
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
fn graph_batch(s: &mut State, i: &Incoming<'_>) -> (Response<Bytes>, Vec<InnerLog>) {
    let answer = |(status, v): Answer| respond(status, &v, &[]);
    let body: Value = serde_json::from_slice(i.request.body()).unwrap_or(Value::Null);
    let Some(requests) = body.get("requests").and_then(Value::as_array) else {
        return (answer(error(400, "BadRequest", "Invalid batch payload format.")), Vec::new());
    };
    if requests.len() > 20 {
        let too_many = error(400, "BadRequest", "The number of requests in a batch exceeds the limit of 20.");
        return (answer(too_many), Vec::new());
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
        let (route, (status, answer), fault) = serve_inner(s, "graph", "", &inner, &url, &inner_body);
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
    (respond(StatusCode::OK, &json!({"responses": responses}), &[]), logged)
}

/// A Dataverse `$batch`: each request through the same handler as on its own, change sets all or nothing (the
/// environment's state is put back when one request of the set fails, and the set answers with that response).
fn dataverse_batch(s: &mut State, i: &Incoming<'_>) -> (Response<Bytes>, Vec<InnerLog>) {
    let (request, host) = (i.request, i.host);
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
        let (route, (status, answer), fault) = serve_inner(s, "dataverse", host, &inner, &path, &body);
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

/// The result of routing one request.
#[derive(Debug)]
pub(crate) enum Handled {
    Answer(http::Response<Bytes>, Duration),
    Drop { delay: Duration },
}
