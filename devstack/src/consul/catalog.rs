//! Catalog, health, agent and status endpoints (api/catalog.go, api/health.go shapes).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{
    AGENT_NODE, DATACENTER, Inner, NodeRec, Params, ServiceCheck, ServiceInstance, ServiceRec,
    block_on, json_read, text_error,
};
use crate::DevState;

type St = State<Arc<DevState>>;

pub(super) fn upsert_node(inner: &mut Inner, name: &str, address: &str, dc: &str, idx: u64) {
    let existing = inner.nodes.get(name).cloned();
    inner.nodes.insert(
        name.to_string(),
        NodeRec {
            id: existing
                .as_ref()
                .map_or_else(|| uuid::Uuid::new_v4().to_string(), |n| n.id.clone()),
            name: name.to_string(),
            address: address.to_string(),
            datacenter: if dc.is_empty() { DATACENTER } else { dc }.to_string(),
            serf_status: existing
                .as_ref()
                .map_or_else(|| "passing".to_string(), |n| n.serf_status.clone()),
            create_index: existing.as_ref().map_or(idx, |n| n.create_index),
            modify_index: idx,
        },
    );
}

fn node_json(n: &NodeRec) -> Value {
    json!({
        "ID": n.id,
        "Node": n.name,
        "Address": n.address,
        "Datacenter": n.datacenter,
        "TaggedAddresses": {"lan": n.address, "lan_ipv4": n.address, "wan": n.address, "wan_ipv4": n.address},
        "Meta": {"consul-network-segment": ""},
        "CreateIndex": n.create_index,
        "ModifyIndex": n.modify_index,
    })
}

fn proxy_json(s: &ServiceInstance) -> Value {
    match &s.proxy_destination {
        Some(dest) if s.kind == "connect-proxy" => json!({
            "DestinationServiceName": dest,
            "DestinationServiceID": s.id.strip_suffix("-sidecar-proxy").unwrap_or(&s.id),
            "LocalServiceAddress": "127.0.0.1",
            "LocalServicePort": s.port,
            "Mode": "",
            "MeshGateway": {},
            "Expose": {},
        }),
        _ => json!({"Mode": "", "MeshGateway": {}, "Expose": {}}),
    }
}

fn service_json(r: &ServiceRec) -> Value {
    let s = &r.instance;
    let mut v = json!({
        "ID": s.id,
        "Service": s.name,
        "Tags": s.tags,
        "Address": s.address,
        "Meta": s.meta,
        "Port": s.port,
        "Weights": {"Passing": 1, "Warning": 1},
        "EnableTagOverride": false,
        "Proxy": proxy_json(s),
        "Connect": {},
        "PeerName": "",
        "Datacenter": DATACENTER,
        "CreateIndex": r.create_index,
        "ModifyIndex": r.modify_index,
    });
    if let Some(obj) = v.as_object_mut() {
        // NodeService: Kind and Port are omitempty.
        if !s.kind.is_empty() {
            obj.insert("Kind".into(), json!(s.kind));
        }
        if s.port == 0 {
            obj.remove("Port");
        }
    }
    v
}

fn catalog_service_json(n: Option<&NodeRec>, r: &ServiceRec) -> Value {
    let s = &r.instance;
    let (id, node, address, dc) = match n {
        Some(n) => (
            n.id.clone(),
            n.name.clone(),
            n.address.clone(),
            n.datacenter.clone(),
        ),
        None => (
            String::new(),
            s.node.clone(),
            s.address.clone(),
            DATACENTER.into(),
        ),
    };
    let mut v = json!({
        "ID": id,
        "Node": node,
        "Address": address,
        "Datacenter": dc,
        "TaggedAddresses": {"lan": address, "wan": address},
        "NodeMeta": {"consul-network-segment": ""},
        "ServiceKind": s.kind,
        "ServiceID": s.id,
        "ServiceName": s.name,
        "ServiceTags": s.tags,
        "ServiceAddress": s.address,
        "ServiceWeights": {"Passing": 1, "Warning": 1},
        "ServiceMeta": s.meta,
        "ServicePort": s.port,
        "ServiceSocketPath": "",
        "ServiceEnableTagOverride": false,
        "ServiceProxy": proxy_json(s),
        "ServiceConnect": {},
        "ServiceLocality": null,
        "CreateIndex": r.create_index,
        "ModifyIndex": r.modify_index,
    });
    if !s.address.is_empty()
        && let Some(obj) = v.as_object_mut()
    {
        obj.insert(
            "ServiceTaggedAddresses".into(),
            json!({
                "lan_ipv4": {"Address": s.address, "Port": s.port},
                "wan_ipv4": {"Address": s.address, "Port": s.port},
            }),
        );
    }
    v
}

fn serf_check_json(n: &NodeRec) -> Value {
    json!({
        "Node": n.name,
        "CheckID": "serfHealth",
        "Name": "Serf Health Status",
        "Status": n.serf_status,
        "Notes": "",
        "Output": if n.serf_status == "passing" { "Agent alive and reachable" } else { "Agent not live or unreachable" },
        "ServiceID": "",
        "ServiceName": "",
        "ServiceTags": [],
        "Type": "",
        "Interval": "",
        "Timeout": "",
        "ExposedPort": 0,
        "Definition": {},
        "CreateIndex": n.create_index,
        "ModifyIndex": n.modify_index,
    })
}

/// HealthCheckDefinition: every field is omitempty, durations print as Go strings.
fn check_definition(http: &str, tcp: &str, grpc: &str, c: &ServiceCheck) -> Value {
    let mut d = serde_json::Map::new();
    for (k, v) in [
        ("HTTP", http),
        ("TCP", tcp),
        ("GRPC", grpc),
        ("Interval", c.interval.as_str()),
        ("Timeout", c.timeout.as_str()),
    ] {
        if !v.is_empty() && v != "0s" {
            d.insert(k.to_string(), json!(v));
        }
    }
    Value::Object(d)
}

pub(super) fn service_check_json(r: &ServiceRec, c: &ServiceCheck) -> Value {
    let s = &r.instance;
    let (http, tcp, grpc) = match c.check_type.as_str() {
        "http" => (c.http.clone(), String::new(), String::new()),
        "tcp" => (String::new(), c.http.clone(), String::new()),
        "grpc" => (String::new(), String::new(), c.http.clone()),
        _ => (String::new(), String::new(), String::new()),
    };
    json!({
        "Node": s.node,
        "CheckID": c.check_id,
        "Name": c.name,
        "Status": c.status,
        "Notes": "",
        "Output": c.output,
        "ServiceID": s.id,
        "ServiceName": s.name,
        "ServiceTags": s.tags,
        "Type": c.check_type,
        "Interval": c.interval,
        "Timeout": c.timeout,
        "ExposedPort": 0,
        "Definition": check_definition(&http, &tcp, &grpc, c),
        "CreateIndex": r.create_index,
        "ModifyIndex": r.modify_index,
    })
}

/// Every `?tag=` value; the parameter may repeat, and an instance must carry all of them.
fn tags_of(raw: Option<&str>) -> Vec<String> {
    raw.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .filter(|(k, _)| k == "tag")
            .map(|(_, v)| v.into_owned())
            .collect()
    })
    .unwrap_or_default()
}

fn tag_ok(tags: &[String], s: &ServiceInstance) -> bool {
    tags.iter().all(|t| s.tags.contains(t))
}

pub(super) async fn services(State(st): St, Query(params): Query<Params>) -> Response {
    let idx = block_on(&st, &params, |i| i.catalog_index).await;
    let inner = st.consul.lock();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in inner.services.values() {
        out.entry(s.instance.name.clone())
            .or_default()
            .extend(s.instance.tags.iter().cloned());
    }
    json_read(idx, json!(out))
}

pub(super) async fn service(
    State(st): St,
    Path(name): Path<String>,
    Query(params): Query<Params>,
    RawQuery(raw): RawQuery,
) -> Response {
    let tags = tags_of(raw.as_deref());
    let idx = block_on(&st, &params, |i| i.catalog_index).await;
    let inner = st.consul.lock();
    let out: Vec<Value> = inner
        .services
        .values()
        .filter(|s| s.instance.name == name && tag_ok(&tags, &s.instance))
        .map(|s| catalog_service_json(inner.nodes.get(&s.instance.node), s))
        .collect();
    json_read(idx, json!(out))
}

pub(super) async fn nodes(State(st): St, Query(params): Query<Params>) -> Response {
    let idx = block_on(&st, &params, |i| i.catalog_index).await;
    let inner = st.consul.lock();
    let out: Vec<Value> = inner.nodes.values().map(node_json).collect();
    json_read(idx, json!(out))
}

pub(super) async fn node(
    State(st): St,
    Path(name): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    let idx = block_on(&st, &params, |i| i.catalog_index).await;
    let inner = st.consul.lock();
    let Some(n) = inner.nodes.get(&name) else {
        // An unknown node is `null` with 200.
        return json_read(idx, Value::Null);
    };
    let services: serde_json::Map<String, Value> = inner
        .services
        .values()
        .filter(|s| s.instance.node == name)
        .map(|s| (s.instance.id.clone(), service_json(s)))
        .collect();
    json_read(idx, json!({"Node": node_json(n), "Services": services}))
}

/// Every health-check JSON of an entry: the node's `serfHealth` first, then the service's.
fn entry_checks(inner: &Inner, r: &ServiceRec) -> Vec<Value> {
    let mut checks = Vec::new();
    if let Some(n) = inner.nodes.get(&r.instance.node) {
        checks.push(serf_check_json(n));
    }
    checks.extend(r.instance.checks.iter().map(|c| service_check_json(r, c)));
    checks
}

/// `?passing` read as Go's `strconv.ParseBool`, an empty value meaning true.
fn passing_param(params: &Params) -> Result<bool, Box<Response>> {
    match params.get("passing").map(String::as_str) {
        None => Ok(false),
        Some("" | "1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
        Some(_) => Err(Box::new(text_error(
            StatusCode::BAD_REQUEST,
            "Invalid value for ?passing",
        ))),
    }
}

fn health_entries(
    inner: &Inner,
    tags: &[String],
    passing_only: bool,
    keep: impl Fn(&ServiceInstance) -> bool,
) -> Vec<Value> {
    inner
        .services
        .values()
        .filter(|s| keep(&s.instance) && tag_ok(tags, &s.instance))
        .filter_map(|s| {
            let checks = entry_checks(inner, s);
            // `?passing`: every check, the node's serfHealth included, must be passing.
            if passing_only && checks.iter().any(|c| c["Status"] != "passing") {
                return None;
            }
            let node = inner
                .nodes
                .get(&s.instance.node)
                .map_or(Value::Null, node_json);
            Some(json!({"Node": node, "Service": service_json(s), "Checks": checks}))
        })
        .collect()
}

pub(super) async fn health_service(
    State(st): St,
    Path(name): Path<String>,
    Query(params): Query<Params>,
    RawQuery(raw): RawQuery,
) -> Response {
    let tags = tags_of(raw.as_deref());
    let passing = match passing_param(&params) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let idx = block_on(&st, &params, |i| i.catalog_index).await;
    let inner = st.consul.lock();
    json_read(
        idx,
        json!(health_entries(&inner, &tags, passing, |s| s.name == name)),
    )
}

pub(super) async fn health_connect(
    State(st): St,
    Path(name): Path<String>,
    Query(params): Query<Params>,
    RawQuery(raw): RawQuery,
) -> Response {
    let tags = tags_of(raw.as_deref());
    let passing = match passing_param(&params) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let idx = block_on(&st, &params, |i| i.catalog_index).await;
    let inner = st.consul.lock();
    json_read(
        idx,
        json!(health_entries(&inner, &tags, passing, |s| {
            s.kind == "connect-proxy" && s.proxy_destination.as_deref() == Some(name.as_str())
        })),
    )
}

pub(super) async fn health_checks(
    State(st): St,
    Path(name): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    let idx = block_on(&st, &params, |i| i.catalog_index).await;
    let inner = st.consul.lock();
    let out: Vec<Value> = inner
        .services
        .values()
        .filter(|s| s.instance.name == name)
        .flat_map(|s| s.instance.checks.iter().map(|c| service_check_json(s, c)))
        .collect();
    json_read(idx, json!(out))
}

pub(super) async fn health_state(
    State(st): St,
    Path(state): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    if !matches!(state.as_str(), "any" | "passing" | "warning" | "critical") {
        return text_error(StatusCode::BAD_REQUEST, "Invalid check state");
    }
    let idx = block_on(&st, &params, |i| i.catalog_index).await;
    let inner = st.consul.lock();
    let mut out: Vec<Value> = inner.nodes.values().map(serf_check_json).collect();
    for s in inner.services.values() {
        out.extend(s.instance.checks.iter().map(|c| service_check_json(s, c)));
    }
    out.retain(|c| state == "any" || c["Status"] == state.as_str());
    json_read(idx, json!(out))
}

pub(super) async fn health_node(
    State(st): St,
    Path(node): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    let idx = block_on(&st, &params, |i| i.catalog_index).await;
    let inner = st.consul.lock();
    let mut out: Vec<Value> = inner
        .nodes
        .get(&node)
        .map(serf_check_json)
        .into_iter()
        .collect();
    for s in inner.services.values().filter(|s| s.instance.node == node) {
        out.extend(s.instance.checks.iter().map(|c| service_check_json(s, c)));
    }
    json_read(idx, json!(out))
}

fn str_field(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

/// `PUT /v1/catalog/register`: a node with an optional service and checks.
pub(super) async fn register(State(st): St, body: axum::body::Bytes) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return text_error(
                StatusCode::BAD_REQUEST,
                format!("Request decoding failed: {e}"),
            );
        }
    };
    let node = str_field(&v, "Node");
    if node.is_empty() {
        return text_error(StatusCode::BAD_REQUEST, "Must provide node");
    }
    let address = str_field(&v, "Address");
    if address.is_empty() {
        return text_error(StatusCode::BAD_REQUEST, "Must provide address");
    }
    st.consul
        .register_node(&node, &address, &str_field(&v, "Datacenter"));
    if let Some(svc) = v.get("Service").filter(|s| s.is_object()) {
        let name = str_field(svc, "Service");
        if name.is_empty() {
            return text_error(StatusCode::BAD_REQUEST, "Must provide service name");
        }
        let id = Some(str_field(svc, "ID"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| name.clone());
        let mut checks = Vec::new();
        let check_values: Vec<Value> = match (v.get("Checks"), v.get("Check")) {
            (Some(Value::Array(a)), _) => a.clone(),
            (_, Some(c)) if c.is_object() => vec![c.clone()],
            _ => Vec::new(),
        };
        for c in check_values {
            let def = c.get("Definition").cloned().unwrap_or(Value::Null);
            let status = Some(str_field(&c, "Status"))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "critical".into());
            // CheckID defaults to the check's Name.
            let check_id = Some(str_field(&c, "CheckID"))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| str_field(&c, "Name"));
            checks.push(ServiceCheck {
                check_id,
                name: str_field(&c, "Name"),
                check_type: str_field(&c, "Type"),
                status,
                output: str_field(&c, "Output"),
                interval: str_field(&def, "Interval"),
                timeout: str_field(&def, "Timeout"),
                http: str_field(&def, "HTTP"),
            });
        }
        let tags = svc
            .get("Tags")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let meta = svc
            .get("Meta")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        st.consul.register_instance(ServiceInstance {
            id,
            name,
            tags,
            meta,
            address: str_field(svc, "Address"),
            port: svc
                .get("Port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0),
            node,
            kind: str_field(svc, "Kind"),
            proxy_destination: svc
                .get("Proxy")
                .map(|p| str_field(p, "DestinationServiceName"))
                .filter(|s| !s.is_empty()),
            alloc_id: String::new(),
            checks,
        });
    }
    Json(true).into_response()
}

/// `PUT /v1/catalog/deregister`: a node, or one service of it.
pub(super) async fn deregister(State(st): St, body: axum::body::Bytes) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return text_error(
                StatusCode::BAD_REQUEST,
                format!("Request decoding failed: {e}"),
            );
        }
    };
    let node = str_field(&v, "Node");
    if node.is_empty() {
        return text_error(StatusCode::BAD_REQUEST, "Must provide node");
    }
    let service_id = str_field(&v, "ServiceID");
    let check_id = str_field(&v, "CheckID");
    let mut inner = st.consul.lock();
    let idx = st.consul.index.bump();
    if !check_id.is_empty() && service_id.is_empty() {
        // Only that check goes; the node and its services stay.
        for svc in inner
            .services
            .values_mut()
            .filter(|s| s.instance.node == node)
        {
            let before = svc.instance.checks.len();
            svc.instance.checks.retain(|c| c.check_id != check_id);
            if svc.instance.checks.len() != before {
                svc.modify_index = idx;
            }
        }
    } else if service_id.is_empty() {
        if node != AGENT_NODE {
            inner.nodes.remove(&node);
            inner.services.retain(|_, s| s.instance.node != node);
        }
    } else {
        inner
            .services
            .retain(|_, s| !(s.instance.node == node && s.instance.id == service_id));
    }
    inner.catalog_index = idx;
    Json(true).into_response()
}

pub(super) async fn agent_self(State(st): St) -> Response {
    let inner = st.consul.lock();
    let node_id = inner
        .nodes
        .get(AGENT_NODE)
        .map(|n| n.id.clone())
        .unwrap_or_default();
    Json(json!({
        "Config": {
            "Datacenter": DATACENTER,
            "PrimaryDatacenter": DATACENTER,
            "NodeName": AGENT_NODE,
            "NodeID": node_id,
            "Revision": "devstack",
            "Server": true,
            "Version": "1.21.0",
        },
        "DebugConfig": {},
        "Coord": null,
        "Member": {"Name": AGENT_NODE, "Addr": "127.0.0.1", "Port": 8301, "Tags": {"dc": DATACENTER, "role": "consul"}, "Status": 1},
        "Stats": {},
        "Meta": {"consul-network-segment": ""},
        "xDS": {},
    }))
    .into_response()
}

/// `GET /v1/catalog/datacenters`: the one simulated datacenter.
pub(super) async fn datacenters() -> Response {
    Json([DATACENTER]).into_response()
}

pub(super) async fn leader() -> Response {
    Json("127.0.0.1:8300").into_response()
}

pub(super) async fn peers() -> Response {
    Json(["127.0.0.1:8300"]).into_response()
}
