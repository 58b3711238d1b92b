//! Fault injection (latency, 5xx, timeouts, no leader, 403) per path pattern, and the request log.
//!
//! Faults answer in the dialect of the system they hit (Nomad and Consul plain text, Vault JSON),
//! so a client's error classification is tested against the real shapes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{DevState, System};

/// How many requests the log keeps before dropping the oldest.
pub const REQUEST_LOG_CAPACITY: usize = 100_000;

/// What an injected fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Delay by `latency_ms`, then serve normally.
    Latency,
    /// Answer `status` (default 500) with `body` (default: an "injected fault" message).
    Error,
    /// Never answer: hang until the client gives up (or the devstack shuts down).
    Timeout,
    /// The system's "no cluster leader" error (Vault: active node not found, 503).
    NoLeader,
    /// Vault's sealed error (503); on Nomad and Consul the same as `no_leader`.
    Sealed,
    /// The system's 403 body.
    Forbidden,
    /// Serve normally but answer a blocking query at once, as if it carried no `index` or
    /// `wait` (a server or proxy that ignores blocking: a client that does not pace itself
    /// turns this into a hot loop).
    NoBlock,
}

/// A fault as posted to `POST /_devstack/faults`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultSpec {
    /// Only requests to this system; `null` means all three.
    #[serde(default)]
    pub system: Option<System>,
    /// Only this HTTP method; `null` means any.
    #[serde(default)]
    pub method: Option<String>,
    /// Path pattern: `^…` is a regex, a pattern with `*` is a glob over the whole path, anything
    /// else is a path prefix. Empty matches every path.
    #[serde(default)]
    pub path: String,
    /// What to do.
    pub kind: FaultKind,
    /// Status for `error` faults.
    #[serde(default)]
    pub status: Option<u16>,
    /// Body for `error` faults.
    #[serde(default)]
    pub body: Option<String>,
    /// Delay for `latency` faults.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Fire at most this many times; `null` means forever.
    #[serde(default)]
    pub count: Option<u64>,
    /// Chance of firing per matching request (0.0–1.0); `null` means always.
    #[serde(default)]
    pub probability: Option<f64>,
}

/// Errors arming a fault.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// The path pattern is not a valid regex (after glob translation).
    #[error("invalid path pattern {pattern:?}: {source}")]
    Pattern {
        /// The pattern as given.
        pattern: String,
        /// The regex error.
        #[source]
        source: regex::Error,
    },
    /// A status outside 100–599.
    #[error("invalid status {0}")]
    Status(u16),
    /// A probability outside 0–1.
    #[error("probability must be between 0 and 1")]
    Probability,
}

/// An armed fault, as listed by `GET /_devstack/faults`.
#[derive(Debug, Clone, Serialize)]
pub struct ArmedFault {
    /// Identifier for `DELETE /_devstack/faults/:id`.
    #[serde(rename = "ID")]
    pub id: String,
    /// The fault as posted.
    #[serde(rename = "Spec")]
    pub spec: FaultSpec,
    /// How many times it has fired.
    #[serde(rename = "Fired")]
    pub fired: u64,
    #[serde(skip)]
    matcher: Option<Regex>,
}

impl ArmedFault {
    fn matches(&self, system: System, method: &str, path: &str) -> bool {
        if self.spec.system.is_some_and(|s| s != system) {
            return false;
        }
        if let Some(m) = &self.spec.method
            && !m.eq_ignore_ascii_case(method)
        {
            return false;
        }
        if self.spec.count.is_some_and(|c| self.fired >= c) {
            return false;
        }
        match &self.matcher {
            Some(re) => re.is_match(path),
            None => path.starts_with(&self.spec.path),
        }
    }
}

/// Turn the documented pattern forms into an optional regex (`None` = prefix match).
fn compile_pattern(pattern: &str) -> Result<Option<Regex>, FaultError> {
    let source = if pattern.starts_with('^') {
        pattern.to_string()
    } else if pattern.contains('*') {
        let parts: Vec<String> = pattern.split('*').map(regex::escape).collect();
        format!("^{}$", parts.join(".*"))
    } else {
        return Ok(None);
    };
    Regex::new(&source)
        .map(Some)
        .map_err(|source| FaultError::Pattern {
            pattern: pattern.to_string(),
            source,
        })
}

/// The faults currently armed.
#[derive(Debug, Default)]
pub struct FaultTable {
    faults: Mutex<Vec<ArmedFault>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a handler panicked mid-update; the data is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FaultTable {
    /// Disarm every fault.
    pub fn clear(&self) {
        lock(&self.faults).clear();
    }

    /// Arm a fault; returns its ID.
    pub fn add(&self, spec: FaultSpec) -> Result<String, FaultError> {
        if let Some(s) = spec.status
            && !(100..=599).contains(&s)
        {
            return Err(FaultError::Status(s));
        }
        if let Some(p) = spec.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err(FaultError::Probability);
        }
        let matcher = compile_pattern(&spec.path)?;
        let id = uuid::Uuid::new_v4().to_string();
        lock(&self.faults).push(ArmedFault {
            id: id.clone(),
            spec,
            fired: 0,
            matcher,
        });
        Ok(id)
    }

    /// Disarm one fault; false if unknown.
    pub fn remove(&self, id: &str) -> bool {
        let mut faults = lock(&self.faults);
        let before = faults.len();
        faults.retain(|f| f.id != id);
        faults.len() != before
    }

    /// Every armed fault (exhausted ones included, with their fire count).
    pub fn list(&self) -> Vec<ArmedFault> {
        lock(&self.faults).clone()
    }

    /// The first matching fault that fires for this request (counting it), if any.
    pub fn fire(&self, system: System, method: &str, path: &str) -> Option<FaultSpec> {
        let mut faults = lock(&self.faults);
        for fault in faults.iter_mut() {
            if !fault.matches(system, method, path) {
                continue;
            }
            if let Some(p) = fault.spec.probability
                && rand::random::<f64>() >= p
            {
                continue;
            }
            fault.fired += 1;
            return Some(fault.spec.clone());
        }
        None
    }
}

/// One served request.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RequestEntry {
    /// Position in the log, increasing from 1 (never reused, also across `clear`).
    #[serde(rename = "Seq")]
    pub seq: u64,
    /// Which server served it.
    #[serde(rename = "System")]
    pub system: System,
    /// HTTP method.
    #[serde(rename = "Method")]
    pub method: String,
    /// Request path.
    #[serde(rename = "Path")]
    pub path: String,
    /// Query string with any `token` value redacted.
    #[serde(rename = "Query")]
    pub query: String,
    /// Response status.
    #[serde(rename = "Status")]
    pub status: u16,
    /// When it arrived (RFC 3339).
    #[serde(rename = "Time")]
    pub time: String,
    /// How long it took to answer, in milliseconds.
    #[serde(rename = "DurationMs")]
    pub duration_ms: u64,
    /// The object a write touched (`job <namespace>/<id>`), when the handler names one.
    #[serde(rename = "Object", skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The job version the write created; absent when it created none (an unchanged
    /// re-register, api-facts §1.4) or wrote no versioned object.
    #[serde(rename = "Version", skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// What a write handler touched, carried to the request log as a response extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenObject {
    /// `job <namespace>/<id>`.
    pub object: String,
    /// The version created, if any.
    pub version: Option<u64>,
}

impl WrittenObject {
    /// Attach to a response so the request log records it.
    pub fn attach(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}

#[derive(Debug, Default)]
struct LogInner {
    next_seq: u64,
    entries: VecDeque<RequestEntry>,
}

/// Every request the devstack served, bounded to [`REQUEST_LOG_CAPACITY`] entries.
#[derive(Debug, Default)]
pub struct RequestLog {
    inner: Mutex<LogInner>,
}

impl RequestLog {
    /// Forget all entries (sequence numbers keep growing).
    pub fn clear(&self) {
        lock(&self.inner).entries.clear();
    }

    /// Append an entry, assigning its sequence number.
    pub fn record(&self, mut entry: RequestEntry) {
        let mut inner = lock(&self.inner);
        inner.next_seq += 1;
        entry.seq = inner.next_seq;
        if inner.entries.len() >= REQUEST_LOG_CAPACITY {
            inner.entries.pop_front();
        }
        inner.entries.push_back(entry);
    }

    /// All entries, oldest first.
    pub fn entries(&self) -> Vec<RequestEntry> {
        lock(&self.inner).entries.iter().cloned().collect()
    }

    /// Entries with a sequence number above `since`, optionally of one system.
    pub fn entries_since(&self, system: Option<System>, since: u64) -> Vec<RequestEntry> {
        lock(&self.inner)
            .entries
            .iter()
            .filter(|e| e.seq > since && system.is_none_or(|s| s == e.system))
            .cloned()
            .collect()
    }

    /// How many logged requests match: `system` and `method` (`None` = any) and a path prefix.
    pub fn count_matching(
        &self,
        system: Option<System>,
        method: Option<&str>,
        path_prefix: &str,
    ) -> usize {
        lock(&self.inner)
            .entries
            .iter()
            .filter(|e| {
                system.is_none_or(|s| s == e.system)
                    && method.is_none_or(|m| m.eq_ignore_ascii_case(&e.method))
                    && e.path.starts_with(path_prefix)
            })
            .count()
    }
}

/// Drop the value of any `token` query parameter so secrets never reach the log.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("token") => format!("{k}=REDACTED"),
            _ => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn text(status: StatusCode, body: &str) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn vault_errors(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [message] });
    (status, axum::Json(body)).into_response()
}

/// Vault's current 403 message (a multierror).
pub const VAULT_PERMISSION_DENIED: &str = "1 error occurred:\n\t* permission denied\n\n";

/// The response a fault gives, in the dialect of `system`; `None` for latency (pass through).
async fn fault_response(state: &DevState, system: System, spec: &FaultSpec) -> Option<Response> {
    match spec.kind {
        FaultKind::Latency => {
            tokio::time::sleep(Duration::from_millis(spec.latency_ms.unwrap_or(0))).await;
            None
        }
        FaultKind::Timeout => {
            // Dropped (cancelled) when the client disconnects; otherwise waits for shutdown.
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                _ = state.shutdown.cancelled() => {}
            }
            Some(text(StatusCode::GATEWAY_TIMEOUT, "injected timeout"))
        }
        FaultKind::Error => {
            let status = spec
                .status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Some(match (&spec.body, system) {
                (Some(body), System::Vault)
                    if serde_json::from_str::<serde_json::Value>(body).is_ok() =>
                {
                    let mut r = (status, body.clone()).into_response();
                    r.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    r
                }
                (Some(body), System::Vault) => vault_errors(status, body),
                (Some(body), _) => text(status, body),
                (None, System::Vault) => vault_errors(status, "injected fault"),
                (None, _) => text(status, "injected fault"),
            })
        }
        FaultKind::NoLeader | FaultKind::Sealed => Some(match system {
            System::Nomad | System::Consul => {
                text(StatusCode::INTERNAL_SERVER_ERROR, "No cluster leader")
            }
            System::Vault if spec.kind == FaultKind::Sealed => {
                vault_errors(StatusCode::SERVICE_UNAVAILABLE, "Vault is sealed")
            }
            System::Vault => vault_errors(
                StatusCode::SERVICE_UNAVAILABLE,
                "local node not active but active cluster node not found",
            ),
        }),
        FaultKind::NoBlock => None,
        FaultKind::Forbidden => Some(match system {
            System::Nomad | System::Consul => text(StatusCode::FORBIDDEN, "Permission denied"),
            System::Vault => vault_errors(StatusCode::FORBIDDEN, VAULT_PERMISSION_DENIED),
        }),
    }
}

/// Logs the request and applies any matching fault before the API handler runs.
pub async fn middleware(
    State((state, system)): State<(Arc<DevState>, System)>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    if path == "/_devstack" || path.starts_with("/_devstack/") {
        return next.run(request).await;
    }
    let method = request.method().as_str().to_string();
    let query = redact_query(request.uri().query().unwrap_or(""));
    let started = tokio::time::Instant::now();
    let time = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();

    let mut request = request;
    let faulted = match state.faults.fire(system, &method, &path) {
        // The event stream's `index` is a replay point, not a blocking query: left alone.
        Some(spec) if spec.kind == FaultKind::NoBlock => {
            if path != "/v1/event/stream" {
                drop_blocking_params(&mut request);
            }
            None
        }
        Some(spec) => fault_response(&state, system, &spec).await,
        None => None,
    };
    let response = match faulted {
        Some(r) => r,
        None => {
            let gated = match system {
                System::Consul => super::consul::gate(&state, &request),
                System::Vault => super::vault::gate(&state, &request),
                System::Nomad => None,
            };
            match gated {
                Some(r) => r,
                None => next.run(request).await,
            }
        }
    };
    let written = response.extensions().get::<WrittenObject>().cloned();
    state.requests.record(RequestEntry {
        seq: 0,
        system,
        method,
        path,
        query,
        status: response.status().as_u16(),
        time,
        duration_ms: started.elapsed().as_millis() as u64,
        object: written.as_ref().map(|w| w.object.clone()),
        version: written.and_then(|w| w.version),
    });
    response
}

/// Remove `index` and `wait` from the query so the handler answers at once.
fn drop_blocking_params(request: &mut Request) {
    let Some(query) = request.uri().query() else {
        return;
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| {
            let key = p.split_once('=').map_or(*p, |(k, _)| k);
            !key.eq_ignore_ascii_case("index") && !key.eq_ignore_ascii_case("wait")
        })
        .collect();
    let path = request.uri().path();
    let rebuilt = if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    if let Ok(uri) = rebuilt.parse() {
        *request.uri_mut() = uri;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str) -> FaultSpec {
        FaultSpec {
            system: None,
            method: None,
            path: path.to_string(),
            kind: FaultKind::Error,
            status: None,
            body: None,
            latency_ms: None,
            count: Some(2),
            probability: None,
        }
    }

    #[test]
    fn patterns_regex_glob_and_prefix() {
        let t = FaultTable::default();
        t.add(spec("^/v1/job/.*")).unwrap_or_default();
        assert!(t.fire(System::Nomad, "GET", "/v1/job/x").is_some());
        assert!(t.fire(System::Nomad, "GET", "/v1/jobs").is_none());
        t.clear();
        t.add(spec("/v1/kv/*/x")).unwrap_or_default();
        assert!(t.fire(System::Consul, "GET", "/v1/kv/a/b/x").is_some());
        assert!(t.fire(System::Consul, "GET", "/v1/kv/a/b/y").is_none());
        t.clear();
        t.add(spec("/v1/kv/")).unwrap_or_default();
        assert!(t.fire(System::Consul, "GET", "/v1/kv/a").is_some());
        assert!(t.fire(System::Consul, "GET", "/v1/kv/b").is_some());
        // count 2 exhausted
        assert!(t.fire(System::Consul, "GET", "/v1/kv/c").is_none());
    }

    #[test]
    fn token_query_values_are_redacted() {
        assert_eq!(redact_query("index=3&token=abc"), "index=3&token=REDACTED");
    }

    #[test]
    fn log_is_bounded_and_sequenced() {
        let log = RequestLog::default();
        for _ in 0..3 {
            log.record(RequestEntry {
                seq: 0,
                system: System::Vault,
                method: "GET".into(),
                path: "/v1/secret/data/x".into(),
                query: String::new(),
                status: 200,
                time: String::new(),
                duration_ms: 0,
                object: None,
                version: None,
            });
        }
        assert_eq!(log.entries_since(None, 1).len(), 2);
        assert_eq!(
            log.count_matching(Some(System::Vault), Some("get"), "/v1/secret/"),
            3
        );
        assert_eq!(log.count_matching(Some(System::Nomad), None, "/"), 0);
    }
}
