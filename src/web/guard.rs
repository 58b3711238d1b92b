//! Request guard for the status page and API against web pages (before the API token of
//! [`super::auth`], which a browser may hold as a cookie):
//! - every request must name an allowed host in `Host` (`localhost`, an IP address, or a name in
//!   `web.allowed_hosts`), so a DNS-rebinding page cannot read or drive drover under its own
//!   name. IP addresses are safe to accept: rebinding needs a name the attacker controls, and a
//!   page loaded from an IP is held to that IP's origin by the browser;
//! - a mutating request (anything but GET, HEAD, OPTIONS) must not come from another site
//!   (`Sec-Fetch-Site`, `Origin`) and must carry `Content-Type: application/json`, which a plain
//!   HTML form cannot send and a cross-site script cannot send without a CORS preflight drover
//!   never grants.
//!
//! Refusals are 403 with a JSON `{"error": ...}` that says why.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The host name every drover answers to, with any port (besides IP addresses).
const LOCALHOST: &str = "localhost";

/// Which `Host` names the server answers to.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    hosts: Arc<BTreeSet<String>>,
}

impl AccessPolicy {
    /// `localhost`, IP addresses and `allowed_hosts` (host names; a port given there is ignored).
    pub fn new(allowed_hosts: &[String]) -> AccessPolicy {
        let mut hosts = BTreeSet::from([LOCALHOST.to_string()]);
        for entry in allowed_hosts {
            let host = match entry.trim().parse::<Authority>() {
                Ok(authority) => authority.host().to_string(),
                Err(_) => entry.trim().to_string(),
            };
            hosts.insert(normalise_host(&host));
        }
        AccessPolicy {
            hosts: Arc::new(hosts),
        }
    }

    /// Whether `host` (a `Host` header's host part) is one the server answers to.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = normalise_host(host);
        is_ip_literal(&host) || self.hosts.contains(&host)
    }
}

/// `127.0.0.1`, `[::1]` (the form `Host` gives an IPv6 address in).
fn is_ip_literal(host: &str) -> bool {
    host.parse::<std::net::Ipv4Addr>().is_ok()
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
}

/// Lower case, without a trailing dot (`Example.org.` is `example.org`).
fn normalise_host(host: &str) -> String {
    host.trim()
        .to_ascii_lowercase()
        .trim_end_matches('.')
        .to_string()
}

/// The request's authority: the `Host` header, or the URI's authority (HTTP/2, absolute form).
fn request_authority(request: &Request) -> Option<Authority> {
    request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Authority>().ok())
        .or_else(|| request.uri().authority().cloned())
}

/// `(host, port)` with the web's default ports treated as absent, so `Origin: https://x` matches
/// `Host: x` behind a TLS proxy.
fn host_and_port(host: &str, port: Option<u16>) -> (String, Option<u16>) {
    (normalise_host(host), port.filter(|p| *p != 80 && *p != 443))
}

/// Why a mutating request is refused, if it is.
fn cross_site_refusal(headers: &HeaderMap, authority: &Authority) -> Option<String> {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("").trim().to_ascii_lowercase();
        if site == "cross-site" || site == "same-site" {
            return Some(format!(
                "cross-site request refused (Sec-Fetch-Site: {site}); drover's API takes changes \
                 only from its own page, the drover CLI or scripts without an Origin"
            ));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let text = origin.to_str().unwrap_or("");
        let same = url::Url::parse(text).ok().is_some_and(|url| {
            url.host_str().is_some_and(|host| {
                host_and_port(host, url.port())
                    == host_and_port(authority.host(), authority.port_u16())
            })
        });
        if !same {
            return Some(format!(
                "cross-origin request refused (Origin: {text} is not this server, {authority})"
            ));
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        let shown = if content_type.is_empty() {
            "none".to_string()
        } else {
            content_type.to_string()
        };
        return Some(format!(
            "changes need Content-Type: application/json (got {shown}); send a JSON body such as {{}}"
        ));
    }
    None
}

fn refuse(message: String) -> Response {
    (StatusCode::FORBIDDEN, Json(json!({ "error": message }))).into_response()
}

/// The middleware: see the module documentation.
pub async fn guard(State(policy): State<AccessPolicy>, request: Request, next: Next) -> Response {
    let Some(authority) = request_authority(&request) else {
        return refuse("request refused: no Host header".to_string());
    };
    if !policy.allows_host(authority.host()) {
        tracing::warn!(host = %authority, "request with an unknown Host refused");
        return refuse(format!(
            "host {} is not allowed: drover answers to localhost, IP addresses and the names in \
             web.allowed_hosts of drover.yaml",
            authority.host()
        ));
    }
    let read_only = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !read_only && let Some(message) = cross_site_refusal(request.headers(), &authority) {
        tracing::warn!(method = %request.method(), path = %request.uri().path(), reason = %message, "request refused");
        return refuse(message);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn policy(allowed: &[&str]) -> AccessPolicy {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        AccessPolicy::new(&allowed)
    }

    #[test]
    fn hosts_are_localhost_ip_addresses_and_configured_names() {
        let p = policy(&["Drover.Example.org", "ops.example.org:8443"]);
        for ok in [
            "localhost",
            "127.0.0.1",
            "[::1]",
            "10.0.0.5",
            "[fd00::5]",
            "drover.example.org",
            "DROVER.example.org.",
            "ops.example.org",
        ] {
            assert!(p.allows_host(ok), "{ok}");
        }
        for refused in [
            "attacker.example",
            "example.org",
            "127.0.0.1.nip.io",
            "localhost.attacker.example",
            "::1",
            "",
        ] {
            assert!(!p.allows_host(refused), "{refused}");
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn mutations_need_same_origin_and_json() {
        let here: Authority = "127.0.0.1:8080"
            .parse()
            .unwrap_or_else(|e| panic!("authority: {e}"));
        let json = ("content-type", "application/json");
        assert_eq!(cross_site_refusal(&headers(&[json]), &here), None);
        assert_eq!(
            cross_site_refusal(
                &headers(&[
                    ("content-type", "application/json; charset=utf-8"),
                    ("origin", "http://127.0.0.1:8080"),
                    ("sec-fetch-site", "same-origin"),
                ]),
                &here
            ),
            None
        );
        for refused in [
            headers(&[]),
            headers(&[("content-type", "application/x-www-form-urlencoded")]),
            headers(&[("content-type", "text/plain")]),
            headers(&[json, ("origin", "https://attacker.example")]),
            headers(&[json, ("origin", "http://127.0.0.1:9999")]),
            headers(&[json, ("origin", "null")]),
            headers(&[json, ("sec-fetch-site", "cross-site")]),
            headers(&[json, ("sec-fetch-site", "same-site")]),
        ] {
            assert!(cross_site_refusal(&refused, &here).is_some(), "{refused:?}");
        }
        // Behind a TLS proxy that keeps the Host: the default port is implied.
        let proxied: Authority = "drover.example.org"
            .parse()
            .unwrap_or_else(|e| panic!("authority: {e}"));
        assert_eq!(
            cross_site_refusal(
                &headers(&[json, ("origin", "https://drover.example.org")]),
                &proxied
            ),
            None
        );
    }
}
