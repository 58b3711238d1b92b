//! The simulated Consul server: catalog and health (fed by Nomad allocations and the agent
//! endpoints), config entries with CAS and the intentions API over them, KV with sessions,
//! blocking queries with `X-Consul-Index`, `?pretty` and `?dc`, optional ACL.

mod agent;
mod catalog;
mod config_entries;
mod intentions;
mod kv;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::Value;

use super::clock::{IndexClock, parse_go_duration};
use super::{DevState, DevstackConfig};

/// The agent's own catalog node name (the simulated Consul server).
pub const AGENT_NODE: &str = "consul-server";
/// The datacenter every node lives in unless told otherwise.
pub const DATACENTER: &str = "dc1";

/// A service instance Nomad registers for an allocation (`_nomad-task-<alloc>-<task>-<svc>-<port>`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceInstance {
    /// Consul service ID.
    pub id: String,
    /// Service name.
    pub name: String,
    /// Tags from the jobspec (Traefik's among them).
    pub tags: Vec<String>,
    /// Service meta; Nomad adds `external-source=nomad`.
    pub meta: BTreeMap<String, String>,
    /// Address the service is reached at.
    pub address: String,
    /// Port the service is reached at.
    pub port: u16,
    /// Catalog node name (the Nomad node's name).
    pub node: String,
    /// `""` for a plain service, `connect-proxy` for a sidecar.
    pub kind: String,
    /// For a sidecar: the service it proxies.
    pub proxy_destination: Option<String>,
    /// The allocation that owns it, so all of an allocation's services go together.
    pub alloc_id: String,
    /// The service's checks.
    pub checks: Vec<ServiceCheck>,
}

/// A check of a [`ServiceInstance`].
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceCheck {
    /// Check ID (`_nomad-check-<hash>`).
    pub check_id: String,
    /// Check name.
    pub name: String,
    /// `http`, `tcp`, `script`, `grpc`, `ttl`.
    pub check_type: String,
    /// `passing`, `warning` or `critical`.
    pub status: String,
    /// Check output text.
    pub output: String,
    /// Go duration string (`30s`).
    pub interval: String,
    /// Go duration string (`5s`).
    pub timeout: String,
    /// For HTTP checks, the URL probed.
    pub http: String,
}

/// A catalog node.
#[derive(Debug, Clone)]
pub(crate) struct NodeRec {
    pub id: String,
    pub name: String,
    pub address: String,
    pub datacenter: String,
    /// Status of the node's `serfHealth` check.
    pub serf_status: String,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A registered service with its indexes.
#[derive(Debug, Clone)]
pub(crate) struct ServiceRec {
    pub instance: ServiceInstance,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A stored config entry (PascalCase map without the indexes).
#[derive(Debug, Clone)]
pub(crate) struct ConfigRec {
    pub body: serde_json::Map<String, Value>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A KV pair.
#[derive(Debug, Clone)]
pub(crate) struct KvRec {
    pub value: Vec<u8>,
    pub flags: u64,
    pub session: Option<String>,
    pub lock_index: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A session.
#[derive(Debug, Clone)]
pub(crate) struct SessionRec {
    pub id: String,
    pub name: String,
    pub node: String,
    pub lock_delay: Duration,
    pub behavior: String,
    pub ttl: String,
    pub node_checks: Vec<String>,
    pub service_checks: Option<Value>,
    /// When the session is invalidated unless renewed (2×TTL, scaled).
    pub deadline: Option<tokio::time::Instant>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A Consul ACL token from the seed.
#[derive(Debug, Clone)]
pub(crate) struct AclToken {
    management: bool,
    capabilities: Vec<String>,
}

/// Everything behind Consul's lock; each table remembers the index of its last write.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub nodes: BTreeMap<String, NodeRec>,
    pub services: BTreeMap<String, ServiceRec>,
    pub catalog_index: u64,
    pub config: BTreeMap<(String, String), ConfigRec>,
    pub config_index: u64,
    pub kv: BTreeMap<String, KvRec>,
    pub kv_index: u64,
    /// Keys under lock delay until the given instant.
    pub lock_delays: HashMap<String, tokio::time::Instant>,
    pub sessions: BTreeMap<String, SessionRec>,
    pub session_index: u64,
    pub tokens: HashMap<String, AclToken>,
}

/// Consul's in-memory state.
pub struct ConsulState {
    inner: Mutex<Inner>,
    /// The one monotonic Consul index; every write takes the next value.
    pub index: IndexClock,
    time_scale: f64,
}

impl ConsulState {
    /// Empty state.
    pub fn new(config: &DevstackConfig) -> Self {
        ConsulState {
            inner: Mutex::new(Inner::default()),
            index: IndexClock::new(1),
            time_scale: config.time_scale,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means a handler panicked mid-update; the data is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Scale a simulated duration (session TTLs, lock delays).
    pub(crate) fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.time_scale.max(0.0))
    }

    /// Forget everything; keep the agent node.
    pub fn reset(&self, config: &DevstackConfig) {
        let mut inner = self.lock();
        *inner = Inner::default();
        self.index.reset(1);
        let idx = self.index.bump();
        inner.nodes.insert(
            AGENT_NODE.to_string(),
            NodeRec {
                id: uuid::Uuid::new_v4().to_string(),
                name: AGENT_NODE.to_string(),
                address: "127.0.0.1".to_string(),
                datacenter: DATACENTER.to_string(),
                serf_status: "passing".to_string(),
                create_index: idx,
                modify_index: idx,
            },
        );
        inner.services.insert(
            "consul".to_string(),
            ServiceRec {
                instance: ServiceInstance {
                    id: "consul".to_string(),
                    name: "consul".to_string(),
                    tags: Vec::new(),
                    meta: BTreeMap::new(),
                    address: String::new(),
                    port: 8300,
                    node: AGENT_NODE.to_string(),
                    kind: String::new(),
                    proxy_destination: None,
                    alloc_id: String::new(),
                    checks: Vec::new(),
                },
                create_index: idx,
                modify_index: idx,
            },
        );
        inner.catalog_index = idx;
        inner.config_index = idx;
        inner.kv_index = idx;
        inner.session_index = idx;
        if let Some(seed) = &config.seed {
            // Seed nodes are Nomad clients, each also a Consul catalog node (default 10.0.0.N).
            for (i, n) in seed.nodes.iter().flatten().enumerate() {
                let address = n
                    .address
                    .clone()
                    .unwrap_or_else(|| format!("10.0.0.{}", i + 1));
                catalog::upsert_node(&mut inner, &n.name, &address, &n.datacenter, idx);
            }
            for t in seed.acl_tokens.iter().filter(|t| t.system == "consul") {
                inner.tokens.insert(
                    t.secret_id.clone(),
                    AclToken {
                        management: t.management,
                        capabilities: t.capabilities.clone(),
                    },
                );
            }
        }
    }

    /// Register (or replace) a catalog node, as a Nomad client's agent would.
    pub fn register_node(&self, name: &str, address: &str, datacenter: &str) {
        let mut inner = self.lock();
        let idx = self.index.bump();
        catalog::upsert_node(&mut inner, name, address, datacenter, idx);
        inner.catalog_index = idx;
    }

    /// Register or replace a service instance.
    pub fn register_instance(&self, instance: ServiceInstance) {
        let mut inner = self.lock();
        let idx = self.index.bump();
        if !inner.nodes.contains_key(&instance.node) {
            let address = instance.address.clone();
            let node = instance.node.clone();
            catalog::upsert_node(&mut inner, &node, &address, DATACENTER, idx);
        }
        let create_index = inner
            .services
            .get(&instance.id)
            .map_or(idx, |s| s.create_index);
        inner.services.insert(
            instance.id.clone(),
            ServiceRec {
                instance,
                create_index,
                modify_index: idx,
            },
        );
        inner.catalog_index = idx;
    }

    /// Remove every service instance of an allocation.
    pub fn deregister_alloc(&self, alloc_id: &str) {
        if alloc_id.is_empty() {
            return;
        }
        let mut inner = self.lock();
        let before = inner.services.len();
        inner
            .services
            .retain(|_, s| s.instance.alloc_id != alloc_id);
        if inner.services.len() != before {
            inner.catalog_index = self.index.bump();
        }
    }

    /// Set the status of every check of an allocation's services (`passing`/`critical`).
    pub fn set_alloc_checks(&self, alloc_id: &str, status: &str) {
        let mut inner = self.lock();
        let mut changed = false;
        for svc in inner
            .services
            .values_mut()
            .filter(|s| s.instance.alloc_id == alloc_id)
        {
            for check in svc.instance.checks.iter_mut() {
                if check.status != status {
                    check.status = status.to_string();
                    changed = true;
                }
            }
        }
        if changed {
            let idx = self.index.bump();
            let mut critical: Vec<(String, String)> = Vec::new();
            for svc in inner
                .services
                .values_mut()
                .filter(|s| s.instance.alloc_id == alloc_id)
            {
                svc.modify_index = idx;
                if status == "critical" {
                    critical.extend(
                        svc.instance
                            .checks
                            .iter()
                            .map(|c| (svc.instance.node.clone(), c.check_id.clone())),
                    );
                }
            }
            inner.catalog_index = idx;
            for (node, check) in critical {
                kv::invalidate_for_check(self, &mut inner, &node, &check);
            }
        }
    }

    /// Every registered service instance (for in-process inspection).
    pub fn instances(&self) -> Vec<ServiceInstance> {
        self.lock()
            .services
            .values()
            .map(|s| s.instance.clone())
            .collect()
    }

    /// Set a node's `serfHealth` status (`passing`/`critical`), e.g. when a node is lost.
    pub fn set_node_health(&self, node: &str, status: &str) {
        let mut inner = self.lock();
        let idx = self.index.bump();
        if let Some(n) = inner.nodes.get_mut(node) {
            n.serf_status = status.to_string();
            n.modify_index = idx;
        }
        inner.catalog_index = idx;
        if status == "critical" {
            kv::invalidate_for_check(self, &mut inner, node, "serfHealth");
        }
    }
}

/// The `/v1/...` routes of the Consul API.
pub fn router() -> Router<Arc<DevState>> {
    Router::new()
        .route("/v1/catalog/datacenters", get(catalog::datacenters))
        .route("/v1/catalog/services", get(catalog::services))
        .route("/v1/catalog/service/{name}", get(catalog::service))
        .route("/v1/catalog/nodes", get(catalog::nodes))
        .route("/v1/catalog/node/{node}", get(catalog::node))
        .route("/v1/catalog/register", put(catalog::register))
        .route("/v1/catalog/deregister", put(catalog::deregister))
        .route("/v1/agent/self", get(catalog::agent_self))
        .route("/v1/agent/services", get(agent::services))
        .route("/v1/agent/service/register", put(agent::service_register))
        .route(
            "/v1/agent/service/deregister/{id}",
            put(agent::service_deregister),
        )
        .route("/v1/agent/service/{id}", get(agent::service))
        .route("/v1/agent/checks", get(agent::checks))
        .route("/v1/agent/check/update/{id}", put(agent::check_update))
        .route("/v1/agent/check/{verb}/{id}", put(agent::check_ttl))
        .route("/v1/status/leader", get(catalog::leader))
        .route("/v1/status/peers", get(catalog::peers))
        .route("/v1/health/service/{name}", get(catalog::health_service))
        .route("/v1/health/connect/{name}", get(catalog::health_connect))
        .route("/v1/health/checks/{name}", get(catalog::health_checks))
        .route("/v1/health/state/{state}", get(catalog::health_state))
        .route("/v1/health/node/{node}", get(catalog::health_node))
        .route(
            "/v1/config",
            put(config_entries::apply).post(config_entries::apply),
        )
        .route("/v1/config/{kind}", get(config_entries::list))
        .route("/v1/connect/intentions", get(intentions::list))
        .route(
            "/v1/connect/intentions/exact",
            get(intentions::exact_get)
                .put(intentions::exact_put)
                .delete(intentions::exact_delete),
        )
        .route("/v1/connect/intentions/check", get(intentions::check))
        .route(
            "/v1/config/{kind}/{name}",
            get(config_entries::read).delete(config_entries::delete),
        )
        .route(
            "/v1/kv/",
            get(kv::get_root).put(kv::put_root).delete(kv::delete_root),
        )
        .route(
            "/v1/kv/{*key}",
            get(kv::get_key).put(kv::put_key).delete(kv::delete_key),
        )
        .route("/v1/session/create", put(kv::session_create))
        .route("/v1/session/renew/{id}", put(kv::session_renew))
        .route("/v1/session/destroy/{id}", put(kv::session_destroy))
        .route("/v1/session/info/{id}", get(kv::session_info))
        .route("/v1/session/node/{node}", get(kv::session_node))
        .route("/v1/session/list", get(kv::session_list))
        .layer(axum::middleware::from_fn(common_query))
}

/// Query parameters every Consul endpoint reads: `?dc=` other than this datacenter is a 500
/// `No path to datacenter`; `?pretty` re-encodes a JSON answer with a four-space indent and a
/// final newline; catalog and health reads answer `X-Consul-Effective-Consistency`.
async fn common_query(request: Request, next: axum::middleware::Next) -> Response {
    let pairs: Vec<(String, String)> = request
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    if pairs
        .iter()
        .any(|(k, v)| k == "dc" && !v.is_empty() && v != DATACENTER)
    {
        return text_error(StatusCode::INTERNAL_SERVER_ERROR, "No path to datacenter");
    }
    let pretty = pairs.iter().any(|(k, _)| k == "pretty");
    // Catalog and health reads report the consistency mode they ran in.
    let path = request.uri().path();
    let consistency = (request.method() == axum::http::Method::GET
        && (path.starts_with("/v1/health/")
            || (path.starts_with("/v1/catalog/") && path != "/v1/catalog/datacenters")))
        .then(|| {
            if pairs.iter().any(|(k, _)| k == "consistent") {
                "consistent"
            } else if pairs.iter().any(|(k, _)| k == "stale") {
                "stale"
            } else {
                "leader"
            }
        });
    let mut response = next.run(request).await;
    if let Some(mode) = consistency
        && response.status().is_success()
    {
        response.headers_mut().insert(
            "X-Consul-Effective-Consistency",
            HeaderValue::from_static(mode),
        );
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !pretty || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return text_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed to read response body",
        );
    };
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    if serde::Serialize::serialize(&value, &mut ser).is_err() {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    out.push(b'\n');
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(out))
}

/// Query parameters as a map; flags like `?passing` map to `""`.
pub(crate) type Params = HashMap<String, String>;

/// `?index=N&wait=D` of a blocking read; wait defaults to 5 min and is capped at 10 min.
pub(crate) fn blocking(params: &Params) -> (u64, Duration) {
    let min = params
        .get("index")
        .and_then(|i| i.parse::<u64>().ok())
        .unwrap_or(0);
    let wait = params
        .get("wait")
        .and_then(|w| parse_go_duration(w))
        .unwrap_or(Duration::from_secs(300))
        .min(Duration::from_secs(600));
    (min, wait)
}

/// Run a blocking read on one table's index; returns the index to report.
pub(crate) async fn block_on(
    state: &DevState,
    params: &Params,
    table: impl Fn(&Inner) -> u64,
) -> u64 {
    let (min, wait) = blocking(params);
    let consul = &state.consul;
    // A shutdown ends every long poll at once, so stopping the devstack never waits minutes.
    tokio::select! {
        idx = consul.index.wait_past(min, wait, || table(&consul.lock())) => idx,
        _ = state.shutdown.cancelled() => table(&consul.lock()),
    }
}

/// Add the read headers: `X-Consul-Index` (never 0), `X-Consul-KnownLeader`, `X-Consul-LastContact`.
pub(crate) fn with_index(mut response: Response, index: u64) -> Response {
    let h = response.headers_mut();
    h.insert("X-Consul-Index", HeaderValue::from(index.max(1)));
    h.insert("X-Consul-KnownLeader", HeaderValue::from_static("true"));
    h.insert("X-Consul-LastContact", HeaderValue::from_static("0"));
    response
}

/// A JSON read answer with the index headers.
pub(crate) fn json_read(index: u64, value: Value) -> Response {
    with_index(axum::Json(value).into_response(), index)
}

/// Consul's plain-text error.
pub(crate) fn text_error(status: StatusCode, message: impl Into<String>) -> Response {
    let mut r = (status, message.into()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The token a request presents: `X-Consul-Token`, `Authorization: Bearer`, or legacy `?token=`.
fn request_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(t) = headers.get("X-Consul-Token").and_then(|v| v.to_str().ok())
        && !t.is_empty()
    {
        return Some(t.to_string());
    }
    if let Some(t) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(t.trim().to_string());
    }
    query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    })
}

/// The ACL resource a path belongs to (`kv`, `service`, `node`, `session`, `operator`, …).
fn acl_resource(path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix("/v1/")?;
    let first = rest.split('/').next().unwrap_or("");
    Some(match first {
        "kv" => "kv",
        "session" => "session",
        "catalog" | "health" => "service",
        "config" => "operator",
        "agent" => "agent",
        "status" => return None,
        _ => "operator",
    })
}

/// Optional ACL enforcement (`config.consul_acl`): `None` lets the request through, otherwise the
/// 403 answer (`ACL not found` for an unknown token, `Permission denied` for missing rights).
pub(crate) fn gate(state: &DevState, request: &Request) -> Option<Response> {
    if !state.config.consul_acl {
        return None;
    }
    let resource = acl_resource(request.uri().path())?;
    let write = !matches!(request.method().as_str(), "GET" | "HEAD");
    let denied = || Some(text_error(StatusCode::FORBIDDEN, "Permission denied"));
    let Some(token) = request_token(request.headers(), request.uri().query()) else {
        // The anonymous token has no rights under a default-deny policy.
        return denied();
    };
    if token == state.config.root_token {
        return None;
    }
    let tokens = state.consul.lock();
    let Some(acl) = tokens.tokens.get(&token) else {
        return Some(text_error(StatusCode::FORBIDDEN, "ACL not found"));
    };
    if acl.management {
        return None;
    }
    let level = if write { "write" } else { "read" };
    let allowed = acl.capabilities.iter().any(|c| {
        let c = c.as_str();
        c == "write"
            || (!write && c == "read")
            || c == format!("{resource}:write")
            || c == format!("{resource}:{level}")
    });
    if allowed { None } else { denied() }
}
