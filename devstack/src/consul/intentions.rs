//! The intentions API (`/v1/connect/intentions/...`), served from the `service-intentions`
//! config entries as Consul 1.9+ does: an upsert by source and destination edits one source of
//! the destination's entry, with the same validation and normalization as a config-entry write.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{ConfigRec, Inner, Params, json_read, text_error};
use crate::DevState;

type St = State<Arc<DevState>>;

const KIND: &str = "service-intentions";

fn source_and_destination(params: &Params) -> Result<(String, String), Box<Response>> {
    let source = params.get("source").cloned().unwrap_or_default();
    let destination = params.get("destination").cloned().unwrap_or_default();
    if source.is_empty() {
        return Err(Box::new(text_error(
            StatusCode::BAD_REQUEST,
            "required query parameter 'source' not set",
        )));
    }
    if destination.is_empty() {
        return Err(Box::new(text_error(
            StatusCode::BAD_REQUEST,
            "required query parameter 'destination' not set",
        )));
    }
    Ok((source, destination))
}

/// One source of a destination's entry, as the legacy Intention struct.
fn intention_json(destination: &str, rec: &ConfigRec, src: &Value) -> Value {
    let mut v = json!({
        "Description": src.get("Description").cloned().unwrap_or(json!("")),
        "SourceNS": "default",
        "SourceName": src.get("Name").cloned().unwrap_or(json!("")),
        "DestinationNS": "default",
        "DestinationName": destination,
        "SourceType": src.get("Type").cloned().unwrap_or(json!("consul")),
        "Action": src.get("Action").cloned().unwrap_or(json!("")),
        "Precedence": src.get("Precedence").cloned().unwrap_or(json!(0)),
        "CreateIndex": rec.create_index,
        "ModifyIndex": rec.modify_index,
    });
    if let (Some(p), Some(obj)) = (src.get("Permissions"), v.as_object_mut()) {
        obj.insert("Permissions".into(), p.clone());
    }
    v
}

fn sources(rec: &ConfigRec) -> Vec<Value> {
    rec.body
        .get("Sources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn find<'a>(inner: &'a Inner, destination: &str) -> Option<&'a ConfigRec> {
    inner
        .config
        .get(&(KIND.to_string(), destination.to_string()))
}

/// Validate, normalize and store `entry` as the destination's config entry.
fn store(st: &DevState, inner: &mut Inner, entry: Value) -> Result<(), Box<Response>> {
    let bytes = serde_json::to_vec(&entry).unwrap_or_default();
    let body = super::config_entries::prepare(inner, &bytes)
        .map_err(|(status, msg)| Box::new(text_error(status, msg)))?;
    let name = body
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let key = (KIND.to_string(), name);
    let idx = st.consul.index.bump();
    let create_index = inner.config.get(&key).map_or(idx, |r| r.create_index);
    inner.config.insert(
        key,
        ConfigRec {
            body,
            create_index,
            modify_index: idx,
        },
    );
    inner.config_index = idx;
    Ok(())
}

/// `PUT /v1/connect/intentions/exact?source=S&destination=D` → `true`.
pub(super) async fn exact_put(
    State(st): St,
    Query(params): Query<Params>,
    body: axum::body::Bytes,
) -> Response {
    let (source, destination) = match source_and_destination(&params) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let req: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => Map::new(),
        Err(e) => {
            return text_error(
                StatusCode::BAD_REQUEST,
                format!("Request decode failed: {e}"),
            );
        }
    };
    let mut src = Map::new();
    src.insert("Name".into(), json!(source));
    for (from, to) in [
        ("Action", "Action"),
        ("Description", "Description"),
        ("Permissions", "Permissions"),
    ] {
        if let Some(v) = req.get(from).filter(|v| !v.is_null()) {
            src.insert(to.into(), v.clone());
        }
    }
    let mut inner = st.consul.lock();
    let mut all: Vec<Value> = find(&inner, &destination).map(sources).unwrap_or_default();
    all.retain(|s| s.get("Name").and_then(Value::as_str) != Some(source.as_str()));
    for s in all.iter_mut() {
        // Normalization fields are recomputed on write.
        if let Some(obj) = s.as_object_mut() {
            obj.remove("Precedence");
        }
    }
    all.push(Value::Object(src));
    let mut entry = find(&inner, &destination)
        .map(|r| r.body.clone())
        .unwrap_or_default();
    entry.insert("Kind".into(), json!(KIND));
    entry.insert("Name".into(), json!(destination));
    entry.insert("Sources".into(), Value::Array(all));
    match store(&st, &mut inner, Value::Object(entry)) {
        Ok(()) => Json(true).into_response(),
        Err(r) => *r,
    }
}

/// `GET /v1/connect/intentions/exact?source=S&destination=D`.
pub(super) async fn exact_get(State(st): St, Query(params): Query<Params>) -> Response {
    let (source, destination) = match source_and_destination(&params) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let inner = st.consul.lock();
    let idx = inner.config_index;
    let found = find(&inner, &destination).and_then(|rec| {
        sources(rec)
            .into_iter()
            .find(|s| s.get("Name").and_then(Value::as_str) == Some(source.as_str()))
            .map(|s| intention_json(&destination, rec, &s))
    });
    match found {
        Some(v) => json_read(idx, v),
        None => text_error(StatusCode::NOT_FOUND, "Intention not found"),
    }
}

/// `DELETE /v1/connect/intentions/exact?source=S&destination=D` → `true`.
pub(super) async fn exact_delete(State(st): St, Query(params): Query<Params>) -> Response {
    let (source, destination) = match source_and_destination(&params) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let mut inner = st.consul.lock();
    let Some(rec) = find(&inner, &destination).cloned() else {
        return Json(true).into_response();
    };
    let mut all = sources(&rec);
    let before = all.len();
    all.retain(|s| s.get("Name").and_then(Value::as_str) != Some(source.as_str()));
    if all.len() == before {
        return Json(true).into_response();
    }
    if all.is_empty() {
        // The last source gone: the whole entry goes.
        inner.config.remove(&(KIND.to_string(), destination));
        inner.config_index = st.consul.index.bump();
        return Json(true).into_response();
    }
    let mut entry = rec.body.clone();
    entry.insert("Sources".into(), Value::Array(all));
    match store(&st, &mut inner, Value::Object(entry)) {
        Ok(()) => Json(true).into_response(),
        Err(r) => *r,
    }
}

/// `GET /v1/connect/intentions`: every source of every entry, as intentions.
pub(super) async fn list(State(st): St) -> Response {
    let inner = st.consul.lock();
    let mut out = Vec::new();
    for ((kind, destination), rec) in &inner.config {
        if kind == KIND {
            for s in sources(rec) {
                out.push(intention_json(destination, rec, &s));
            }
        }
    }
    json_read(inner.config_index, json!(out))
}

/// `GET /v1/connect/intentions/check?source=S&destination=D` → `{"Allowed": bool}`.
/// The most precise matching source decides; with none, the default (allow without ACLs).
pub(super) async fn check(State(st): St, Query(params): Query<Params>) -> Response {
    let (source, destination) = match source_and_destination(&params) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let inner = st.consul.lock();
    let mut best: Option<(u64, bool)> = None;
    for dest in [destination.as_str(), "*"] {
        let Some(rec) = find(&inner, dest) else {
            continue;
        };
        for s in sources(rec) {
            let name = s.get("Name").and_then(Value::as_str).unwrap_or("");
            if name != source && name != "*" {
                continue;
            }
            let precedence = s.get("Precedence").and_then(Value::as_u64).unwrap_or(0);
            // L7 permissions count as allow at L4.
            let allowed = match s.get("Action").and_then(Value::as_str) {
                Some(a) => a == "allow",
                None => true,
            };
            if best.is_none_or(|(p, _)| precedence > p) {
                best = Some((precedence, allowed));
            }
        }
    }
    let allowed = best.map_or(!st.config.consul_acl, |(_, a)| a);
    Json(json!({ "Allowed": allowed })).into_response()
}
