//! Building URLs and OData paths: a service's base URL checked, query strings, path segments, OData literals.

use url::Url;

use super::{ApiError, ClientOptions};

/// The base URL: the override in `options`, else `{endpoint}/{suffix}`.
pub(crate) fn base_url(
    options: &ClientOptions,
    endpoint: &str,
    suffix: &str,
    what: &'static str,
) -> Result<Url, ApiError> {
    match &options.base_url {
        Some(b) => Ok(b.clone()),
        None => Url::parse(&format!("{}/{suffix}", endpoint.trim_end_matches('/')))
            .map_err(|e| ApiError::invalid(what, e.to_string())),
    }
}

/// Whether a URL may be used as a base: `https://`, or `http://` to a loopback host.
pub(crate) fn check_base(url: &Url, what: &'static str) -> Result<(), ApiError> {
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(ApiError::invalid(what, format!("'{url}' has no host"))),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => {
            Err(ApiError::invalid(what, format!("'{url}' is not https (plain http is allowed only to loopback)")))
        }
        other => Err(ApiError::invalid(what, format!("'{url}' has the scheme '{other}'; use https"))),
    }
}

pub(super) fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// `path?k=v&...`, the pairs escaped as a query.
pub(crate) fn with_query(path: String, pairs: &[(&str, &str)]) -> String {
    let start = path.len() + 1;
    let mut query = url::form_urlencoded::Serializer::for_suffix(format!("{path}?"), start);
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    query.finish()
}

/// A path segment, escaped: everything but letters, digits and `-._~` as `%XX`.
pub(crate) fn path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escapes a string for an OData literal: `'` doubled, the whole in single quotes.
pub fn odata_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `field eq 'a' or field eq 'b' ...`, escaped.
pub(crate) fn any_of(field: &str, values: &[&str]) -> String {
    values.iter().map(|v| format!("{field} eq {}", odata_string(v))).collect::<Vec<_>>().join(" or ")
}
