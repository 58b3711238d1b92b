//! Request guard for the status page and API, which have no credentials of their own:
//! - every request must name an allowed host in `Host` (loopback names, the listen address, or
//!   `web.allowed_hosts`), so a DNS-rebinding page cannot read or drive drover under its own name;
//! - a mutating request (anything but GET, HEAD, OPTIONS) must not come from another site
//!   (`Sec-Fetch-Site`, `Origin`) and must carry `Content-Type: application/json`, which a plain
//!   HTML form cannot send and a cross-site script cannot send without a CORS preflight drover
//!   never grants.
//!
//! Refusals are 403 with a JSON `{"error": ...}` that says why.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Host names every drover answers to, with any port.
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Which `Host` names the server answers to.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    hosts: Arc<BTreeSet<String>>,
}

impl AccessPolicy {
    /// Loopback names, the listen address's own IP (when it is a specific address) and
    /// `allowed_hosts` (host names; a port given there is ignored).
    pub fn new(allowed_hosts: &[String], listen: SocketAddr) -> AccessPolicy {
        let mut hosts: BTreeSet<String> = LOOPBACK_HOSTS.iter().map(|h| h.to_string()).collect();
        if !listen.ip().is_unspecified() {
            let ip = match listen.ip() {
                std::net::IpAddr::V4(ip) => ip.to_string(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            };
            hosts.insert(ip);
        }
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
        self.hosts.contains(&normalise_host(host))
    }
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
            "host {} is not allowed: drover answers to localhost, 127.0.0.1, [::1] and the names in \
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

    fn policy(allowed: &[&str], listen: &str) -> AccessPolicy {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        AccessPolicy::new(
            &allowed,
            listen.parse().unwrap_or_else(|e| panic!("{listen}: {e}")),
        )
    }

    #[test]
    fn hosts_are_loopback_the_listen_ip_and_configured_names() {
        let p = policy(
            &["Drover.Example.org", "ops.example.org:8443"],
            "0.0.0.0:8080",
        );
        for ok in [
            "localhost",
            "127.0.0.1",
            "[::1]",
            "drover.example.org",
            "DROVER.example.org.",
            "ops.example.org",
        ] {
            assert!(p.allows_host(ok), "{ok}");
        }
        for refused in ["attacker.example", "0.0.0.0", "10.0.0.5", "example.org", ""] {
            assert!(!p.allows_host(refused), "{refused}");
        }
        assert!(policy(&[], "10.0.0.5:8080").allows_host("10.0.0.5"));
        assert!(policy(&[], "[fd00::5]:8080").allows_host("[fd00::5]"));
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
