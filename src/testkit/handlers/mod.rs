//! The fake's handlers, one per route of the table in [`super::routes`], and what they share: the request as a
//! handler sees it ([`Incoming`]), error answers in each service's shape, OData queries and paging.

pub(super) mod arm;
pub(super) mod dataverse;
pub(super) mod graph;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::State;

/// A handler's answer: the status and the JSON body (`Null` for none).
pub(super) type Answer = (StatusCode, Value);

/// What a handler is given: the request, the environment it is for (Dataverse), its path below the service's base
/// (percent-decoded, without the query), its JSON body, and what the route's pattern matched.
pub(super) struct Incoming<'a> {
    pub(super) request: &'a http::Request<Bytes>,
    /// The Dataverse environment's host; empty for the other services.
    pub(super) host: &'a str,
    pub(super) path: &'a str,
    pub(super) body: &'a Value,
    /// Each OData key `(...)` of the path, in order, as written.
    pub(super) keys: Vec<String>,
    /// The pattern's named segments.
    pub(super) params: Vec<(String, String)>,
}

impl Incoming<'_> {
    /// The path's `n`th OData key, as written (`3c8e…`, `appId='…'`); empty when the path has fewer.
    pub(super) fn key(&self, n: usize) -> &str {
        self.keys.get(n).map(String::as_str).unwrap_or_default()
    }

    /// The path's `n`th OData key read as a GUID.
    pub(super) fn key_id(&self, n: usize) -> Option<Uuid> {
        Uuid::parse_str(self.key(n)).ok()
    }

    /// The quoted value of the path's `n`th OData key (`appId='x'` gives `x`; `''` in it is one quote).
    pub(super) fn quoted(&self, n: usize) -> Option<String> {
        let key = self.key(n);
        let inner = key.split_once('\'')?.1.strip_suffix('\'')?;
        Some(inner.replace("''", "'"))
    }

    /// A named segment of the route's pattern; empty when it has none of that name.
    pub(super) fn param(&self, name: &str) -> &str {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default()
    }

    /// A query option (`$filter`, `$select`, …), decoded.
    pub(super) fn query(&self, name: &str) -> Option<String> {
        param(&query(self.request), name)
    }

    /// The `$filter` as (field, value) terms joined by `or`: `Ok(None)` without one, an error answer in the
    /// service's shape for one the fake cannot read.
    pub(super) fn filter(&self, code: &str) -> Result<Option<Vec<(String, String)>>, Answer> {
        match self.query("$filter") {
            None => Ok(None),
            Some(f) => parse_filter(&f)
                .map(Some)
                .ok_or_else(|| error(400, code, &format!("the fake cannot read this $filter: {f}"))),
        }
    }
}

pub(super) fn error(status: u16, code: &str, message: &str) -> Answer {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        json!({"error": {"code": code, "message": message}}),
    )
}

pub(super) fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

pub(super) fn query(request: &http::Request<Bytes>) -> Vec<(String, String)> {
    request.uri().query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

pub(super) fn param(q: &[(String, String)], name: &str) -> Option<String> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// Splits `a eq 'x' or b eq 'y''z' or c eq 123` into (field, value) pairs, unescaping quotes.
pub(super) fn parse_filter(filter: &str) -> Option<Vec<(String, String)>> {
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

/// One page of `rows` (the fake's page size), with an `@odata.nextLink` when more follow.
pub(super) fn page(request: &http::Request<Bytes>, rows: Vec<Value>, page_size: usize) -> Value {
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

/// `POST login token`: a token for any request (the fake checks no credential).
pub(super) fn token(s: &mut State, _: &Incoming<'_>) -> Result<Answer, Answer> {
    Ok((
        StatusCode::OK,
        json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": format!("fake.{}", s.rng.u64(..))}),
    ))
}

/// `GET discovery instances`: every environment of the fake, in the shape of Learn's example answer.
pub(super) fn instances(s: &mut State, _: &Incoming<'_>) -> Result<Answer, Answer> {
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
    Ok((
        StatusCode::OK,
        json!({"@odata.context": "https://globaldisco.crm.dynamics.com/api/discovery/v2.0/$metadata#Instances", "value": rows}),
    ))
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
