//! Control-API routes acting on the simulated Nomad cluster (see `docs/devstack-nomad.md`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::super::DevState;
use super::{SeedPlugin, sched};

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn not_found(what: &str, id: &str) -> Response {
    reply(
        StatusCode::NOT_FOUND,
        json!({"error": format!("{what} not found: {id}")}),
    )
}

fn body_json(body: &Bytes) -> Result<Value, Box<Response>> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(reply(
            StatusCode::BAD_REQUEST,
            json!({"error": e.to_string()}),
        ))
    })
}

/// The `/nomad/...` control routes (mounted under `/_devstack`).
pub(crate) fn routes() -> Router<Arc<DevState>> {
    Router::new()
        .route("/nomad/allocation/{id}/fail", post(fail_alloc))
        .route("/nomad/allocation/{id}/heal", post(heal_alloc))
        .route("/nomad/node/{id}/drain", post(drain))
        .route("/nomad/node/{id}/lost", post(lost))
        .route("/nomad/csi/plugin", post(csi_plugin))
        .route("/nomad/job/{id}/fail-next", post(fail_next))
}

fn find_alloc(inner: &super::Inner, id: &str) -> Option<String> {
    if inner.allocs.contains_key(id) {
        return Some(id.to_string());
    }
    let m: Vec<&String> = inner.allocs.keys().filter(|k| k.starts_with(id)).collect();
    (m.len() == 1 && !id.is_empty()).then(|| m[0].clone())
}

async fn fail_alloc(
    State(st): State<Arc<DevState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let body = match body_json(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let task = body.get("task").and_then(|t| t.as_str()).map(String::from);
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    let Some(id) = find_alloc(&inner, &id) else {
        return not_found("allocation", &id);
    };
    let index = nomad.write(&mut inner, &["allocs", "job_summary"]);
    let Some(a) = inner.allocs.get_mut(&id) else {
        return not_found("allocation", &id);
    };
    if a.terminal() {
        return reply(
            StatusCode::CONFLICT,
            json!({"error": format!("allocation {id} is terminal ({})", a.client_status)}),
        );
    }
    sched::fail_alloc_tasks(a, task.as_deref(), "Exit Code: 1");
    a.modify_index = index;
    a.modify_time = super::now_ns();
    let (ns, job_id) = (a.namespace.clone(), a.job_id.clone());
    let group = a.job["TaskGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["Name"] == json!(a.task_group))
        .cloned()
        .unwrap_or(Value::Null);
    let delay = std::time::Duration::from_nanos(
        group["ReschedulePolicy"]["Delay"]
            .as_u64()
            .unwrap_or(30_000_000_000),
    );
    sched::schedule_failure_eval(&st, &mut inner, &ns, &job_id, delay, index, Instant::now());
    reply(
        StatusCode::OK,
        json!({"ID": id, "ClientStatus": "failed", "Index": index}),
    )
}

async fn heal_alloc(State(st): State<Arc<DevState>>, Path(id): Path<String>) -> Response {
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    let Some(id) = find_alloc(&inner, &id) else {
        return not_found("allocation", &id);
    };
    let index = nomad.write(&mut inner, &["allocs", "job_summary"]);
    let Some(a) = inner.allocs.get_mut(&id) else {
        return not_found("allocation", &id);
    };
    if a.desired_status != "run" {
        return reply(
            StatusCode::CONFLICT,
            json!({"error": format!("allocation {id} is stopped")}),
        );
    }
    a.fail_on_start = false;
    if a.client_status == "failed" {
        let t = super::now_rfc3339();
        for ts in a.task_states.values_mut() {
            if ts.hook != "prestart" || ts.sidecar {
                ts.state = "running".to_string();
                ts.failed = false;
                ts.finished_at = None;
                ts.started_at = Some(t.clone());
            }
        }
        a.client_status = "running".to_string();
        a.client_description = "Tasks are running".to_string();
        a.running_at = Some(Instant::now());
        a.placed_at = Instant::now();
        a.consul_registered = false;
        a.consul_passing = false;
        a.healthy = None;
    }
    a.modify_index = index;
    reply(
        StatusCode::OK,
        json!({"ID": id, "ClientStatus": a.client_status, "Index": index}),
    )
}

async fn drain(State(st): State<Arc<DevState>>, Path(id): Path<String>) -> Response {
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    let Some(i) = inner.node_index(&id) else {
        return not_found("node", &id);
    };
    let index = sched::drain_node(nomad, &mut inner, i, 0);
    let node_id = inner.nodes[i].id.clone();
    reply(StatusCode::OK, json!({"NodeID": node_id, "Index": index}))
}

async fn lost(State(st): State<Arc<DevState>>, Path(id): Path<String>) -> Response {
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    let Some(i) = inner.node_index(&id) else {
        return not_found("node", &id);
    };
    let index = sched::lose_node(nomad, &mut inner, i);
    let node_id = inner.nodes[i].id.clone();
    reply(StatusCode::OK, json!({"NodeID": node_id, "Index": index}))
}

async fn csi_plugin(State(st): State<Arc<DevState>>, body: Bytes) -> Response {
    let body = match body_json(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(id) = body.get("id").and_then(|v| v.as_str()).map(String::from) else {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "missing plugin id"}),
        );
    };
    let controller = body
        .get("controller")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    let healthy = body
        .get("healthy")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    let provider = body
        .get("provider")
        .and_then(|v| v.as_str())
        .unwrap_or(&id)
        .to_string();
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    let index = nomad.write(&mut inner, &["csi_plugins", "csi_volumes"]);
    let create_index = inner
        .seed_plugins
        .get(&id)
        .map(|p| p.create_index)
        .unwrap_or(index);
    inner.seed_plugins.insert(
        id.clone(),
        SeedPlugin {
            provider,
            controller,
            healthy,
            create_index,
            modify_index: index,
        },
    );
    reply(
        StatusCode::OK,
        json!({"ID": id, "Controller": controller, "Healthy": healthy, "Index": index}),
    )
}

async fn fail_next(
    State(st): State<Arc<DevState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let body = match body_json(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let ns = body
        .get("namespace")
        .and_then(|v| v.as_str())
        .unwrap_or("default")
        .to_string();
    let mut inner = st.nomad.lock();
    inner.fail_next.insert((ns.clone(), id.clone()));
    reply(
        StatusCode::OK,
        json!({"JobID": id, "Namespace": ns, "FailNext": true}),
    )
}
