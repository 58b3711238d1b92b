//! The control API under `/_devstack/`: fault injection, request log, seeding, reset.
//!
//! Served on all three ports; never faulted and never logged. See `docs/devstack-control.md`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, body::Bytes};
use serde_json::{Value, json};

use super::faults::FaultSpec;
use super::{DevState, System};

type St = State<Arc<DevState>>;

/// Routes mounted at `/_devstack` on all three servers.
pub fn router() -> Router<Arc<DevState>> {
    Router::new()
        .route("/health", get(health))
        .route("/reset", post(reset))
        .route(
            "/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/faults/{id}", delete(remove_fault))
        .route("/requests", get(requests).delete(clear_requests))
        .route("/vault/secret", post(seed_secret))
        .merge(super::nomad::control_routes())
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": message.into()})),
    )
        .into_response()
}

async fn health(State(st): St) -> Response {
    Json(json!({
        "status": "ok",
        "consul_index": st.consul.index.current(),
        "faults": st.faults.list().len(),
        "requests": st.requests.entries().len(),
        "scheduler_steps": st.nomad.steps.load(std::sync::atomic::Ordering::Relaxed),
    }))
    .into_response()
}

async fn reset(State(st): St) -> Response {
    st.reset();
    Json(json!({"reset": true})).into_response()
}

async fn add_fault(State(st): St, body: Bytes) -> Response {
    let spec: FaultSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return bad_request(format!("invalid fault: {e}")),
    };
    match st.faults.add(spec) {
        Ok(id) => Json(json!({"ID": id})).into_response(),
        Err(e) => bad_request(e.to_string()),
    }
}

async fn list_faults(State(st): St) -> Response {
    Json(st.faults.list()).into_response()
}

async fn remove_fault(State(st): St, Path(id): Path<String>) -> Response {
    if st.faults.remove(&id) {
        Json(json!({"deleted": id})).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("fault {id} not found")})),
        )
            .into_response()
    }
}

async fn clear_faults(State(st): St) -> Response {
    st.faults.clear();
    Json(json!({"cleared": true})).into_response()
}

async fn requests(State(st): St, Query(params): Query<HashMap<String, String>>) -> Response {
    let system = match params.get("system").map(String::as_str) {
        None | Some("") => None,
        Some("nomad") => Some(System::Nomad),
        Some("consul") => Some(System::Consul),
        Some("vault") => Some(System::Vault),
        Some(other) => return bad_request(format!("unknown system {other:?}")),
    };
    let since = match params.get("since").map(|s| s.parse::<u64>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return bad_request("since must be a sequence number"),
    };
    Json(st.requests.entries_since(system, since)).into_response()
}

async fn clear_requests(State(st): St) -> Response {
    st.requests.clear();
    Json(json!({"cleared": true})).into_response()
}

#[derive(serde::Deserialize)]
struct SeedSecret {
    #[serde(default = "default_mount")]
    mount: String,
    path: String,
    data: serde_json::Map<String, Value>,
}

fn default_mount() -> String {
    "secret".to_string()
}

async fn seed_secret(State(st): St, body: Bytes) -> Response {
    let s: SeedSecret = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return bad_request(format!("invalid secret: {e}")),
    };
    match st.vault.seed_secret(&s.mount, &s.path, s.data) {
        Ok(()) => Json(json!({"mount": s.mount, "path": s.path})).into_response(),
        Err(e) => bad_request(e),
    }
}
