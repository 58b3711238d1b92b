//! Allocation, evaluation, deployment, node, namespace, status and agent endpoints, and the JSON
//! views of the scheduler's records.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::super::DevState;
use super::http::{
    ApiError, ApiResult, Req, blocking, caller, empty_reply, field, list_namespaces, ns_ok, obj,
    read_reply, require, require_any, require_management, status_reply, with_meta, write_reply,
};
use super::{Alloc, Deployment, Eval, Node, REGION, sched};

/// A namespace object.
pub(crate) fn namespace_json(
    name: &str,
    description: &str,
    meta: Option<Value>,
    create: u64,
    modify: u64,
) -> Value {
    // `Hash`, `OptionalExtraClaims` and `RequiredExtraClaims` are in every namespace (measured
    // on Nomad 2.0.5, api-facts §7); the hash covers the namespace's settings.
    let hash = {
        use base64::Engine as _;
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(name.as_bytes());
        h.update([0]);
        h.update(description.as_bytes());
        h.update([0]);
        h.update(meta.as_ref().map(Value::to_string).unwrap_or_default());
        base64::engine::general_purpose::STANDARD.encode(h.finalize())
    };
    json!({"Name": name, "Description": description, "Quota": "", "Meta": meta,
        "Capabilities": null, "NodePoolConfiguration": null,
        "VaultConfiguration": null, "ConsulConfiguration": null,
        "Hash": hash, "OptionalExtraClaims": null, "RequiredExtraClaims": null,
        "CreateIndex": create, "ModifyIndex": modify})
}

fn task_states_json(a: &Alloc) -> Value {
    if a.task_states.is_empty() {
        return Value::Null;
    }
    let mut m = serde_json::Map::new();
    for (name, t) in &a.task_states {
        m.insert(
            name.clone(),
            json!({"State": t.state, "Failed": t.failed, "Restarts": 0,
                "LastRestart": null,
                "StartedAt": t.started_at, "FinishedAt": t.finished_at,
                "Events": t.events, "TaskHandle": null, "Paused": false}),
        );
    }
    Value::Object(m)
}

fn deployment_status_json(a: &Alloc) -> Value {
    if a.deployment_id.is_empty() && a.healthy.is_none() {
        return Value::Null;
    }
    json!({"Healthy": a.healthy, "Timestamp": a.health_time.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string()),
        "Canary": false, "ModifyIndex": a.modify_index})
}

fn allocated_resources(a: &Alloc) -> Value {
    let mut tasks = serde_json::Map::new();
    for t in a.job["TaskGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["Name"] == json!(a.task_group))
        .flat_map(|g| g["Tasks"].as_array().into_iter().flatten())
    {
        let name = t["Name"].as_str().unwrap_or("").to_string();
        tasks.insert(
            name,
            json!({"Cpu": {"CpuShares": t["Resources"]["CPU"], "ReservedCores": null},
                "Memory": {"MemoryMB": t["Resources"]["MemoryMB"], "MemoryMaxMB": t["Resources"]["MemoryMaxMB"]},
                "Networks": null, "Devices": null}),
        );
    }
    let ports: Vec<Value> = a
        .ports
        .iter()
        .map(|(label, value, to)| {
            json!({"Label": label, "Value": value, "To": to, "HostIP": "127.0.0.1"})
        })
        .collect();
    json!({"Tasks": tasks, "TaskLifecycles": null,
        "Shared": {"Networks": null, "DiskMB": 300, "Ports": if ports.is_empty() { Value::Null } else { Value::Array(ports) }}})
}

/// `AllocListStub`, without `AllocatedResources` (measured on Nomad 2.0.5, api-facts §7); see
/// [`alloc_stub_with_resources`] for `?resources=true`.
pub(crate) fn alloc_stub(a: &Alloc) -> Value {
    obj(vec![
        ("ID", json!(a.id)),
        ("EvalID", json!(a.eval_id)),
        ("Name", json!(a.name)),
        ("Namespace", json!(a.namespace)),
        ("NodeID", json!(a.node_id)),
        ("NodeName", json!(a.node_name)),
        ("JobID", json!(a.job_id)),
        ("JobType", json!(a.job_type)),
        ("JobVersion", a.job["Version"].clone()),
        ("TaskGroup", json!(a.task_group)),
        ("DesiredStatus", json!(a.desired_status)),
        ("DesiredDescription", json!(a.desired_description)),
        ("ClientStatus", json!(a.client_status)),
        ("ClientDescription", json!(a.client_description)),
        (
            "DesiredTransition",
            json!({"Migrate": null, "MigrateDisablePlacement": null, "Reschedule": null,
                "ForceReschedule": null, "NoShutdownDelay": null}),
        ),
        ("TaskStates", task_states_json(a)),
        ("DeploymentStatus", deployment_status_json(a)),
        ("FollowupEvalID", json!("")),
        ("NextAllocation", json!(a.next_allocation)),
        ("RescheduleTracker", Value::Null),
        ("PreemptedAllocations", Value::Null),
        ("PreemptedByAllocation", json!("")),
        ("CreateIndex", json!(a.create_index)),
        ("ModifyIndex", json!(a.modify_index)),
        ("CreateTime", json!(a.create_time)),
        ("ModifyTime", json!(a.modify_time)),
    ])
}

/// An allocation stub with its `AllocatedResources` (a list read with `?resources=true`).
pub(crate) fn alloc_stub_with_resources(a: &Alloc) -> Value {
    let mut v = alloc_stub(a);
    if let Some(o) = v.as_object_mut() {
        o.insert("AllocatedResources".into(), allocated_resources(a));
    }
    v
}

/// The full Allocation (includes `Job` and `AllocatedResources`).
pub(crate) fn alloc_full(a: &Alloc) -> Value {
    let mut v = alloc_stub_with_resources(a);
    if let Some(o) = v.as_object_mut() {
        o.insert("Job".into(), Value::clone(&a.job));
        o.insert("DeploymentID".into(), json!(a.deployment_id));
        o.insert("PreviousAllocation".into(), json!(a.previous_allocation));
        o.insert("AllocModifyIndex".into(), json!(a.modify_index));
        o.insert("Resources".into(), Value::Null);
        o.insert("Metrics".into(), Value::Null);
        o.insert("NetworkStatus".into(), Value::Null);
        o.insert("SignedIdentities".into(), Value::Null);
    }
    v
}

/// An Evaluation.
pub(crate) fn eval_json(e: &Eval) -> Value {
    json!({"ID": e.id, "Namespace": e.namespace, "Priority": e.priority, "Type": e.job_type,
        "TriggeredBy": e.triggered_by, "JobID": e.job_id, "JobModifyIndex": e.job_modify_index,
        "NodeID": e.node_id, "NodeModifyIndex": 0, "DeploymentID": e.deployment_id,
        "Status": e.status, "StatusDescription": e.status_description, "Wait": 0,
        "WaitUntil": "0001-01-01T00:00:00Z", "NextEval": "", "PreviousEval": e.previous_eval,
        "BlockedEval": e.blocked_eval, "RelatedEvals": null, "FailedTGAllocs": e.failed_tg_allocs,
        "ClassEligibility": null, "EscapedComputedClass": false,
        "QuotaLimitReached": "", "AnnotatePlan": false,
        "QueuedAllocations": if e.queued.is_empty() { Value::Null } else { json!(e.queued) },
        "SnapshotIndex": e.create_index, "CreateIndex": e.create_index,
        "ModifyIndex": e.modify_index, "CreateTime": e.create_time, "ModifyTime": e.modify_time})
}

/// A Deployment.
pub(crate) fn deployment_json(d: &Deployment) -> Value {
    let mut groups = serde_json::Map::new();
    for (name, g) in &d.groups {
        groups.insert(
            name.clone(),
            json!({"AutoRevert": g.auto_revert, "AutoPromote": g.auto_promote,
                "ProgressDeadline": g.progress_deadline,
                "RequireProgressBy": g.require_progress_by_wall,
                "Promoted": false, "PlacedCanaries": null, "DesiredCanaries": 0,
                "DesiredTotal": g.desired_total, "PlacedAllocs": g.placed,
                "HealthyAllocs": g.healthy, "UnhealthyAllocs": g.unhealthy}),
        );
    }
    json!({"ID": d.id, "Namespace": d.namespace, "JobID": d.job_id, "JobVersion": d.job_version,
        "JobModifyIndex": d.job_modify_index, "JobSpecModifyIndex": d.job_spec_modify_index,
        "JobCreateIndex": d.job_create_index, "IsMultiregion": false, "TaskGroups": groups,
        "Status": d.status, "StatusDescription": d.description, "EvalPriority": d.priority,
        "CreateIndex": d.create_index, "ModifyIndex": d.modify_index,
        "CreateTime": d.create_time, "ModifyTime": d.modify_time})
}

fn node_attributes(n: &Node) -> Value {
    json!({"cpu.arch": n.arch, "kernel.name": "linux", "os.name": "ubuntu",
        "unique.hostname": n.name, "unique.network.ip-address": n.address,
        "driver.docker": "1", "nomad.version": "1.10.0", "nomad.service_discovery": "true",
        "consul.version": "1.20.0", "consul.connect": "true", "consul.grpc": "8502",
        "vault.version": "1.18.0", "cpu.totalcompute": n.cpu.to_string(),
        "memory.totalbytes": (n.memory * 1024 * 1024).to_string()})
}

/// The fingerprinted drivers: each with `Attributes`, `Detected`, `Healthy`,
/// `HealthDescription` and `UpdateTime` (measured on Nomad 2.0.5, api-facts §7).
fn drivers_json(n: &Node) -> Value {
    json!({"docker": {"Attributes": {"driver.docker": "1"}, "Detected": true, "Healthy": true,
        "HealthDescription": "Healthy", "UpdateTime": n.fingerprinted_at}})
}

/// `NodeListStub`: no `Attributes`, `NodeResources` or `ReservedResources` (measured on Nomad
/// 2.0.5, api-facts §7) unless asked for with `?resources=true`.
fn node_stub(n: &Node, with_resources: bool) -> Value {
    let mut v = json!({"Address": n.address, "ID": n.id,
        "Datacenter": n.datacenter, "Name": n.name, "NodeClass": n.class, "NodePool": n.pool,
        "Version": "1.10.0", "Drain": n.drain,
        "SchedulingEligibility": if n.eligible { "eligible" } else { "ineligible" },
        "Status": n.status, "StatusDescription": "", "Drivers": drivers_json(n),
        "HostVolumes": null,
        "LastDrain": null, "CreateIndex": n.create_index, "ModifyIndex": n.modify_index});
    if with_resources && let Some(o) = v.as_object_mut() {
        o.insert("NodeResources".into(), node_resources(n));
        o.insert("ReservedResources".into(), Value::Null);
    }
    v
}

fn node_resources(n: &Node) -> Value {
    json!({"Cpu": {"CpuShares": n.cpu}, "Memory": {"MemoryMB": n.memory},
        "Disk": {"DiskMB": 100000}, "Networks": null})
}

fn node_full(n: &Node) -> Value {
    json!({"ID": n.id, "Name": n.name, "Datacenter": n.datacenter, "NodeClass": n.class,
        "NodePool": n.pool, "HTTPAddr": format!("{}:4646", n.address),
        "Attributes": node_attributes(n), "Meta": n.meta,
        "NodeResources": node_resources(n),
        "ReservedResources": null, "Drivers": drivers_json(n),
        "CSIControllerPlugins": null, "CSINodePlugins": null, "HostVolumes": null,
        "DrainStrategy": if n.drain { json!({"Deadline": n.drain_deadline, "IgnoreSystemJobs": false, "ForceDeadline": "0001-01-01T00:00:00Z", "StartedAt": "0001-01-01T00:00:00Z"}) } else { Value::Null },
        "Drain": n.drain,
        "SchedulingEligibility": if n.eligible { "eligible" } else { "ineligible" },
        "Status": n.status, "StatusDescription": "", "Events": null,
        "CreateIndex": n.create_index, "ModifyIndex": n.modify_index})
}

/// `GET /v1/deployments`.
pub(crate) async fn deployments(st: &Arc<DevState>, req: &Req) -> ApiResult {
    let filter = list_namespaces(st, req, "read-job")?;
    let prefix = req.q("prefix").unwrap_or("").to_string();
    blocking(
        st,
        req,
        |i| i.table_index(&["deployment"]),
        |inner, _| {
            Ok(Value::Array(
                inner
                    .deployments
                    .values()
                    .filter(|d| ns_ok(&filter, &d.namespace) && d.id.starts_with(&prefix))
                    .map(deployment_json)
                    .collect(),
            ))
        },
    )
    .await
}

/// `GET /v1/deployment/:id` (404 `deployment not found`).
pub(crate) async fn deployment(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    require_any_or_read(st, req)?;
    let id = id.to_string();
    blocking(
        st,
        req,
        |i| i.table_index(&["deployment"]),
        |inner, _| {
            find_prefix(&inner.deployments, &id)
                .map(deployment_json)
                .ok_or_else(|| ApiError::not_found("deployment not found"))
        },
    )
    .await
}

fn require_any_or_read(st: &Arc<DevState>, req: &Req) -> Result<(), ApiError> {
    let ns = req.namespace();
    require(st, req, &ns, "read-job").map(|_| ())
}

fn find_prefix<'a, T>(map: &'a std::collections::BTreeMap<String, T>, id: &str) -> Option<&'a T> {
    map.get(id).or_else(|| {
        let mut it = map
            .iter()
            .filter(|(k, _)| id.len() >= 4 && k.starts_with(id));
        match (it.next(), it.next()) {
            (Some((_, v)), None) => Some(v),
            _ => None,
        }
    })
}

/// `PUT|POST /v1/deployment/fail/:id`.
pub(crate) async fn deployment_fail(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let ns = req.namespace();
    require(st, req, &ns, "submit-job")?;
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    let Some(d) = inner.deployments.get(id).cloned() else {
        return Err(ApiError::internal("deployment not found"));
    };
    if !d.active() {
        return Err(ApiError::internal("can't fail terminal deployment"));
    }
    let index = sched::fail_deployment(nomad, &mut inner, id, "Deployment marked as failed");
    let body = with_meta(
        json!({"EvalID": "", "EvalCreateIndex": 0, "DeploymentModifyIndex": index,
            "RevertedJobVersion": null}),
        index,
    );
    Ok(write_reply(req, index, &body))
}

/// `PUT|POST /v1/deployment/promote/:id` (no canaries are simulated, so it only validates).
pub(crate) async fn deployment_promote(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let ns = req.namespace();
    require(st, req, &ns, "submit-job")?;
    let inner = st.nomad.lock();
    let Some(d) = inner.deployments.get(id) else {
        return Err(ApiError::internal("deployment not found"));
    };
    if !d.active() {
        return Err(ApiError::internal("can't promote terminal deployment"));
    }
    Err(ApiError::internal(format!(
        "no canaries to promote in deployment {id}"
    )))
}

/// `GET /v1/allocations`.
pub(crate) async fn allocations(st: &Arc<DevState>, req: &Req) -> ApiResult {
    let filter = list_namespaces(st, req, "read-job")?;
    let prefix = req.q("prefix").unwrap_or("").to_string();
    let stub = if req.flag("resources") {
        alloc_stub_with_resources
    } else {
        alloc_stub
    };
    blocking(
        st,
        req,
        |i| i.table_index(&["allocs"]),
        |inner, _| {
            Ok(Value::Array(
                inner
                    .allocs
                    .values()
                    .filter(|a| ns_ok(&filter, &a.namespace) && a.id.starts_with(&prefix))
                    .map(stub)
                    .collect(),
            ))
        },
    )
    .await
}

/// `GET /v1/allocation/:id` (404 `alloc not found`).
pub(crate) async fn allocation(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    require_any_or_read(st, req)?;
    let id = id.to_string();
    blocking(
        st,
        req,
        |i| {
            i.allocs
                .get(&id)
                .map(|a| a.modify_index)
                .unwrap_or_else(|| i.table_index(&["allocs"]))
        },
        |inner, _| {
            find_prefix(&inner.allocs, &id)
                .map(alloc_full)
                .ok_or_else(|| ApiError::not_found("alloc not found"))
        },
    )
    .await
}

/// `GET /v1/evaluations`.
pub(crate) async fn evaluations(st: &Arc<DevState>, req: &Req) -> ApiResult {
    let filter = list_namespaces(st, req, "read-job")?;
    let prefix = req.q("prefix").unwrap_or("").to_string();
    blocking(
        st,
        req,
        |i| i.table_index(&["evals"]),
        |inner, _| {
            Ok(Value::Array(
                inner
                    .evals
                    .values()
                    .filter(|e| ns_ok(&filter, &e.namespace) && e.id.starts_with(&prefix))
                    .map(eval_json)
                    .collect(),
            ))
        },
    )
    .await
}

/// `GET /v1/evaluation/:id` (404 `eval not found`).
pub(crate) async fn evaluation(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    require_any_or_read(st, req)?;
    let id = id.to_string();
    blocking(
        st,
        req,
        |i| i.table_index(&["evals"]),
        |inner, _| {
            find_prefix(&inner.evals, &id)
                .map(eval_json)
                .ok_or_else(|| ApiError::not_found("eval not found"))
        },
    )
    .await
}

/// `GET /v1/nodes`.
pub(crate) async fn nodes(st: &Arc<DevState>, req: &Req) -> ApiResult {
    require_any(st, req)?;
    let prefix = req.q("prefix").unwrap_or("").to_string();
    let with_resources = req.flag("resources");
    blocking(
        st,
        req,
        |i| i.table_index(&["nodes"]),
        |inner, _| {
            Ok(Value::Array(
                inner
                    .nodes
                    .iter()
                    .filter(|n| n.id.starts_with(&prefix))
                    .map(|n| node_stub(n, with_resources))
                    .collect(),
            ))
        },
    )
    .await
}

/// `GET /v1/node/:id` (by ID, unique prefix or name).
pub(crate) async fn node(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    require_any(st, req)?;
    let id = id.to_string();
    blocking(
        st,
        req,
        |i| i.table_index(&["nodes"]),
        |inner, _| {
            inner
                .node_index(&id)
                .map(|i| node_full(&inner.nodes[i]))
                .ok_or_else(|| ApiError::not_found("node not found"))
        },
    )
    .await
}

/// `GET /v1/node/:id/allocations`.
pub(crate) async fn node_allocations(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    require_any(st, req)?;
    let id = id.to_string();
    blocking(
        st,
        req,
        |i| i.table_index(&["allocs"]),
        |inner, _| {
            let node_id = inner
                .node_index(&id)
                .map(|i| inner.nodes[i].id.clone())
                .unwrap_or(id.clone());
            Ok(Value::Array(
                inner
                    .allocs
                    .values()
                    .filter(|a| a.node_id == node_id)
                    .map(alloc_full)
                    .collect(),
            ))
        },
    )
    .await
}

/// `PUT|POST /v1/node/:id/drain` with `{"DrainSpec": {"Deadline": ns}, "MarkEligible": bool}`.
pub(crate) async fn node_drain(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    require_management(st, req)?;
    let body = req.json()?;
    let spec = field(&body, "DrainSpec").filter(|v| !v.is_null()).cloned();
    let mark_eligible = field(&body, "MarkEligible")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    let idx = inner
        .node_index(id)
        .ok_or_else(|| ApiError::internal("node not found"))?;
    let index = match spec {
        Some(spec) => {
            let deadline = field(&spec, "Deadline")
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            sched::drain_node(nomad, &mut inner, idx, deadline)
        }
        None => {
            let index = nomad.write(&mut inner, &["nodes"]);
            let n = &mut inner.nodes[idx];
            n.drain = false;
            if mark_eligible {
                n.eligible = true;
            }
            n.modify_index = index;
            index
        }
    };
    let body = with_meta(
        json!({"EvalIDs": null, "EvalCreateIndex": 0, "NodeModifyIndex": index}),
        index,
    );
    Ok(write_reply(req, index, &body))
}

/// `PUT|POST /v1/node/:id/eligibility` with `{"Eligibility": "eligible"|"ineligible"}`.
pub(crate) async fn node_eligibility(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    require_management(st, req)?;
    let body = req.json()?;
    let elig = field(&body, "Eligibility")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    if elig != "eligible" && elig != "ineligible" {
        return Err(ApiError::bad(format!(
            "invalid scheduling eligibility {elig:?}"
        )));
    }
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    let idx = inner
        .node_index(id)
        .ok_or_else(|| ApiError::internal("node not found"))?;
    let index = nomad.write(&mut inner, &["nodes"]);
    let n = &mut inner.nodes[idx];
    n.eligible = elig == "eligible";
    n.modify_index = index;
    let body = with_meta(
        json!({"EvalIDs": null, "EvalCreateIndex": 0, "NodeModifyIndex": index}),
        index,
    );
    Ok(write_reply(req, index, &body))
}

/// `GET /v1/namespaces`.
pub(crate) async fn namespaces(st: &Arc<DevState>, req: &Req) -> ApiResult {
    let c = caller(st, req)?;
    let prefix = req.q("prefix").unwrap_or("").to_string();
    blocking(
        st,
        req,
        |i| i.table_index(&["namespaces"]),
        |inner, _| {
            Ok(Value::Array(
                inner
                    .namespaces
                    .iter()
                    .filter(|(n, _)| n.starts_with(&prefix) && c.can(n, "read-job"))
                    .map(|(_, v)| v.clone())
                    .collect(),
            ))
        },
    )
    .await
}

/// `GET /v1/namespace/:name` (404 `namespace not found`).
pub(crate) async fn namespace(st: &Arc<DevState>, req: &Req, name: &str) -> ApiResult {
    let c = caller(st, req)?;
    if !c.can(name, "read-job") {
        return Err(ApiError::forbidden("Permission denied"));
    }
    let name = name.to_string();
    blocking(
        st,
        req,
        |i| i.table_index(&["namespaces"]),
        |inner, _| {
            inner
                .namespaces
                .get(&name)
                .cloned()
                .ok_or_else(|| ApiError::not_found("namespace not found"))
        },
    )
    .await
}

/// `PUT|POST /v1/namespace/:name`.
pub(crate) async fn namespace_put(st: &Arc<DevState>, req: &Req, name: &str) -> ApiResult {
    require_management(st, req)?;
    let body = req.json()?;
    let name = if name.is_empty() {
        field(&body, "Name")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    } else {
        name.to_string()
    };
    if name.is_empty() {
        return Err(ApiError::bad("Namespace name required"));
    }
    let valid = regex::Regex::new(r"^[a-zA-Z0-9-]{1,128}$")
        .map(|re| re.is_match(&name))
        .unwrap_or(false);
    if !valid {
        return Err(ApiError::internal(format!(
            "1 error occurred:\n\t* invalid name {name:?}. Must match regex ^[a-zA-Z0-9-]{{1,128}}$\n\n"
        )));
    }
    let description = field(&body, "Description")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let meta = field(&body, "Meta").filter(|m| !m.is_null()).cloned();
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    let index = nomad.write(&mut inner, &["namespaces"]);
    let create = inner
        .namespaces
        .get(&name)
        .and_then(|n| n["CreateIndex"].as_u64())
        .unwrap_or(index);
    inner.namespaces.insert(
        name.clone(),
        namespace_json(&name, &description, meta, create, index),
    );
    Ok(empty_reply(StatusCode::OK, index))
}

/// `DELETE /v1/namespace/:name`.
pub(crate) async fn namespace_delete(st: &Arc<DevState>, req: &Req, name: &str) -> ApiResult {
    require_management(st, req)?;
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    if name == "default" {
        return Err(ApiError::internal("default namespace can not be deleted"));
    }
    if inner.jobs.keys().any(|(ns, _)| ns == name) {
        return Err(ApiError::internal(format!(
            "namespace {name:?} has non-terminal jobs in regions: [{REGION}]"
        )));
    }
    let index = nomad.write(&mut inner, &["namespaces"]);
    inner.namespaces.remove(name);
    Ok(empty_reply(StatusCode::OK, index))
}

/// `GET /v1/status/leader`.
pub(crate) fn leader(st: &Arc<DevState>, req: &Req) -> ApiResult {
    let _ = st;
    // No X-Nomad-Index/KnownLeader/LastContact here (measured on Nomad 2.0.5, api-facts §7).
    Ok(status_reply(req, StatusCode::OK, &json!("127.0.0.1:4647")))
}

/// `GET /v1/status/peers`.
pub(crate) fn peers(_st: &Arc<DevState>, req: &Req) -> ApiResult {
    Ok(read_reply(req, 0, &json!(["127.0.0.1:4647"])))
}

/// `GET /v1/regions`.
pub(crate) fn regions(_st: &Arc<DevState>, req: &Req) -> ApiResult {
    Ok(read_reply(req, 0, &json!([REGION])))
}

/// `GET /v1/agent/self`.
pub(crate) fn agent_self(st: &Arc<DevState>, req: &Req) -> ApiResult {
    require_any(st, req)?;
    let body = json!({
        "config": {"Region": REGION, "Datacenter": super::DATACENTER, "NodeName": "devstack",
            "Version": {"Version": "1.10.0", "Prerelease": "", "Metadata": "", "Revision": "devstack"},
            "ACL": {"Enabled": st.config.nomad_acl}, "Server": {"Enabled": true}, "Client": {"Enabled": true}},
        "member": {"Name": "devstack.global", "Addr": "127.0.0.1", "Port": 4648,
            "Tags": {"region": REGION, "dc": super::DATACENTER, "role": "nomad", "build": "1.10.0", "port": "4647"},
            "Status": "alive", "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
            "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 2},
        "stats": {"nomad": {"server": "true", "leader": "true", "leader_addr": "127.0.0.1:4647",
            "bootstrap": "true", "known_regions": "1"},
            "raft": {"state": "Leader", "applied_index": st.nomad.clock.current().to_string()},
            "runtime": {"arch": "amd64", "os": "linux", "version": "go1.22"},
            "serf": {"members": "1"}, "client": {"known_servers": "127.0.0.1:4647"}},
        "stats_errors": null,
    });
    // No X-Nomad-Index/KnownLeader/LastContact here (measured on Nomad 2.0.5, api-facts §7).
    Ok(status_reply(req, StatusCode::OK, &body))
}
