//! The local agent's service and check endpoints (agent/agent_endpoint.go): register and
//! deregister services on the agent's own node, list them, and drive TTL checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{AGENT_NODE, DATACENTER, Params, ServiceCheck, ServiceInstance, text_error};
use crate::DevState;

type St = State<Arc<DevState>>;

fn str_of(v: &Value, k: &str) -> String {
    v.get(k)
        .or_else(|| v.get(k.to_ascii_lowercase()))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// One check definition of a service registration; `n` numbers it when there are several.
fn check_of(service_id: &str, c: &Value, n: Option<usize>) -> ServiceCheck {
    // The agent names unnamed service checks `service:<id>` (`service:<id>:<n>` for several).
    let default_id = match n {
        Some(i) => format!("service:{service_id}:{i}"),
        None => format!("service:{service_id}"),
    };
    let check_id = Some(str_of(c, "CheckID"))
        .filter(|s| !s.is_empty())
        .or_else(|| Some(str_of(c, "ID")).filter(|s| !s.is_empty()))
        .unwrap_or(default_id);
    let (check_type, target) = ["HTTP", "TCP", "GRPC"]
        .iter()
        .find_map(|k| {
            let t = str_of(c, k);
            (!t.is_empty()).then(|| (k.to_ascii_lowercase(), t))
        })
        .unwrap_or_else(|| {
            if str_of(c, "TTL").is_empty() {
                (String::new(), String::new())
            } else {
                ("ttl".to_string(), String::new())
            }
        });
    let name = Some(str_of(c, "Name"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("Service '{service_id}' check"));
    ServiceCheck {
        check_id,
        name,
        check_type,
        // New checks start critical unless the definition says otherwise.
        status: Some(str_of(c, "Status"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "critical".into()),
        output: String::new(),
        interval: str_of(c, "Interval"),
        timeout: str_of(c, "Timeout"),
        http: target,
    }
}

/// `PUT /v1/agent/service/register`: 200 with an empty body.
pub(super) async fn service_register(State(st): St, body: axum::body::Bytes) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return text_error(
                StatusCode::BAD_REQUEST,
                "Request decode failed: body is not an object",
            );
        }
        Err(e) => {
            return text_error(
                StatusCode::BAD_REQUEST,
                format!("Request decode failed: {e}"),
            );
        }
    };
    let name = str_of(&v, "Name");
    if name.is_empty() {
        return text_error(StatusCode::BAD_REQUEST, "Missing service name");
    }
    let id = Some(str_of(&v, "ID"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| name.clone());
    let mut checks = Vec::new();
    if let Some(c) = v.get("Check").filter(|c| c.is_object()) {
        checks.push(check_of(&id, c, None));
    }
    if let Some(Value::Array(list)) = v.get("Checks") {
        for (i, c) in list.iter().enumerate() {
            checks.push(check_of(&id, c, Some(i + 1)));
        }
    }
    let tags = v
        .get("Tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let meta: BTreeMap<String, String> = v
        .get("Meta")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, x)| x.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let port = v
        .get("Port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(0);
    st.consul.register_instance(ServiceInstance {
        id,
        name,
        tags,
        meta,
        address: str_of(&v, "Address"),
        port,
        node: AGENT_NODE.to_string(),
        kind: str_of(&v, "Kind"),
        proxy_destination: v
            .get("Proxy")
            .map(|p| str_of(p, "DestinationServiceName"))
            .filter(|s| !s.is_empty()),
        alloc_id: String::new(),
        checks,
    });
    StatusCode::OK.into_response()
}

/// `PUT /v1/agent/service/deregister/:id`: 200 with an empty body, 404 for an unknown ID.
pub(super) async fn service_deregister(State(st): St, Path(id): Path<String>) -> Response {
    let mut inner = st.consul.lock();
    let known = inner
        .services
        .get(&id)
        .is_some_and(|s| s.instance.node == AGENT_NODE);
    if !known {
        return text_error(
            StatusCode::NOT_FOUND,
            format!(
                "Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."
            ),
        );
    }
    inner.services.remove(&id);
    inner.catalog_index = st.consul.index.bump();
    StatusCode::OK.into_response()
}

fn agent_service_json(s: &ServiceInstance) -> Value {
    let mut v = json!({
        "ID": s.id,
        "Service": s.name,
        "Tags": s.tags,
        "Meta": s.meta,
        "Port": s.port,
        "Address": s.address,
        "Weights": {"Passing": 1, "Warning": 1},
        "EnableTagOverride": false,
        "Datacenter": DATACENTER,
    });
    if !s.kind.is_empty()
        && let Some(obj) = v.as_object_mut()
    {
        obj.insert("Kind".into(), json!(s.kind));
    }
    v
}

/// `GET /v1/agent/services`: the agent node's services keyed by ID.
pub(super) async fn services(State(st): St) -> Response {
    let inner = st.consul.lock();
    let out: Map<String, Value> = inner
        .services
        .values()
        .filter(|s| s.instance.node == AGENT_NODE)
        .map(|s| (s.instance.id.clone(), agent_service_json(&s.instance)))
        .collect();
    axum::Json(Value::Object(out)).into_response()
}

/// `GET /v1/agent/service/:id`: one service, 404 text if unknown.
pub(super) async fn service(State(st): St, Path(id): Path<String>) -> Response {
    let inner = st.consul.lock();
    match inner
        .services
        .get(&id)
        .filter(|s| s.instance.node == AGENT_NODE)
    {
        Some(s) => axum::Json(agent_service_json(&s.instance)).into_response(),
        None => text_error(StatusCode::NOT_FOUND, format!("unknown service ID: {id}")),
    }
}

/// `GET /v1/agent/checks`: the agent node's checks keyed by CheckID.
pub(super) async fn checks(State(st): St) -> Response {
    let inner = st.consul.lock();
    let mut out = Map::new();
    for s in inner
        .services
        .values()
        .filter(|s| s.instance.node == AGENT_NODE)
    {
        for c in &s.instance.checks {
            out.insert(c.check_id.clone(), super::catalog::service_check_json(s, c));
        }
    }
    axum::Json(Value::Object(out)).into_response()
}

/// Set a check's status and output; `false` if no check has that ID.
fn set_check(st: &DevState, check_id: &str, status: &str, output: &str) -> bool {
    let mut inner = st.consul.lock();
    let idx = st.consul.index.bump();
    let mut found = false;
    for svc in inner.services.values_mut() {
        for c in svc
            .instance
            .checks
            .iter_mut()
            .filter(|c| c.check_id == check_id)
        {
            c.status = status.to_string();
            c.output = output.to_string();
            found = true;
        }
        if found {
            svc.modify_index = idx;
            break;
        }
    }
    if found {
        inner.catalog_index = idx;
        if status == "critical" {
            super::kv::invalidate_for_check(&st.consul, &mut inner, AGENT_NODE, check_id);
        }
    }
    found
}

fn unknown_check(id: &str) -> Response {
    text_error(
        StatusCode::NOT_FOUND,
        format!("Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."),
    )
}

/// `PUT /v1/agent/check/{pass,warn,fail}/:id[?note=]`: drive a TTL check.
pub(super) async fn check_ttl(
    State(st): St,
    Path((verb, id)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Response {
    let status = match verb.as_str() {
        "pass" => "passing",
        "warn" => "warning",
        "fail" => "critical",
        _ => return text_error(StatusCode::NOT_FOUND, "404 page not found"),
    };
    let note = params.get("note").map(String::as_str).unwrap_or("");
    if set_check(&st, &id, status, note) {
        StatusCode::OK.into_response()
    } else {
        unknown_check(&id)
    }
}

/// `PUT /v1/agent/check/update/:id` with `{"Status","Output"}`.
pub(super) async fn check_update(
    State(st): St,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return text_error(
                StatusCode::BAD_REQUEST,
                format!("Request decode failed: {e}"),
            );
        }
    };
    let status = str_of(&v, "Status");
    if !matches!(status.as_str(), "passing" | "warning" | "critical") {
        return text_error(
            StatusCode::BAD_REQUEST,
            format!("Invalid check status: '{status}'"),
        );
    }
    if set_check(&st, &id, &status, &str_of(&v, "Output")) {
        StatusCode::OK.into_response()
    } else {
        unknown_check(&id)
    }
}
