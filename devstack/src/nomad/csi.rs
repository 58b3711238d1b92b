//! CSI plugins (seeded, or from running allocations of `csi_plugin` tasks) and CSI volumes:
//! PUT-only register/create with Nomad's merge rules, deregister/delete/detach, redacted reads.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::super::DevState;
use super::http::{
    ApiError, ApiResult, Req, blocking, empty_reply, field, list_namespaces, ns_ok, require,
    with_meta, write_reply,
};
use super::{Inner, Volume, misc, now_ns};

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(|x| x.as_str()).unwrap_or("")
}

/// One plugin's health as Nomad reports it.
#[derive(Debug, Clone, Default)]
pub(crate) struct PluginView {
    pub id: String,
    pub provider: String,
    pub controller_required: bool,
    pub controllers: BTreeSet<String>,
    pub nodes: BTreeSet<String>,
    pub controllers_expected: u64,
    pub nodes_expected: u64,
    pub allocs: Vec<String>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// All plugins: seeded ones plus those served by running `csi_plugin` tasks.
pub(crate) fn plugins_view(inner: &Inner) -> BTreeMap<String, PluginView> {
    let mut out: BTreeMap<String, PluginView> = BTreeMap::new();
    let ready: Vec<String> = inner
        .nodes
        .iter()
        .filter(|n| n.status == "ready")
        .map(|n| n.id.clone())
        .collect();
    for (id, p) in &inner.seed_plugins {
        let v = out.entry(id.clone()).or_insert_with(|| PluginView {
            id: id.clone(),
            ..Default::default()
        });
        v.provider = p.provider.clone();
        v.controller_required |= p.controller;
        if p.controller {
            v.controllers_expected += 1;
            if p.healthy
                && let Some(first) = ready.first()
            {
                v.controllers.insert(first.clone());
            }
        }
        v.nodes_expected += ready.len() as u64;
        if p.healthy {
            v.nodes.extend(ready.iter().cloned());
        }
        v.create_index = p.create_index;
        v.modify_index = v.modify_index.max(p.modify_index);
    }
    for a in inner.allocs.values() {
        if a.terminal() {
            continue;
        }
        let group = a.job["TaskGroups"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|g| s(g, "Name") == a.task_group)
            .cloned()
            .unwrap_or(Value::Null);
        for t in group["Tasks"].as_array().into_iter().flatten() {
            let cfg = &t["CSIPluginConfig"];
            let id = s(cfg, "ID");
            if id.is_empty() {
                continue;
            }
            let kind = s(cfg, "Type");
            let v = out.entry(id.to_string()).or_insert_with(|| PluginView {
                id: id.to_string(),
                provider: id.to_string(),
                create_index: a.create_index,
                ..Default::default()
            });
            v.modify_index = v.modify_index.max(a.modify_index);
            v.allocs.push(a.id.clone());
            let running = a.client_status == "running";
            if matches!(kind, "controller" | "monolith") {
                v.controller_required = true;
                v.controllers_expected += 1;
                if running {
                    v.controllers.insert(a.node_id.clone());
                }
            }
            if matches!(kind, "node" | "monolith") {
                v.nodes_expected += 1;
                if running {
                    v.nodes.insert(a.node_id.clone());
                }
            }
        }
    }
    out
}

/// Nodes where a plugin's node service is healthy.
pub(crate) fn plugin_node_ids(inner: &Inner, plugin: &str) -> BTreeSet<String> {
    plugins_view(inner)
        .remove(plugin)
        .map(|p| p.nodes)
        .unwrap_or_default()
}

fn plugin_stub(p: &PluginView) -> Value {
    json!({"ID": p.id, "Provider": p.provider, "ControllerRequired": p.controller_required,
        "ControllersHealthy": p.controllers.len(), "ControllersExpected": p.controllers_expected,
        "NodesHealthy": p.nodes.len(), "NodesExpected": p.nodes_expected,
        "CreateIndex": p.create_index, "ModifyIndex": p.modify_index})
}

fn plugin_full(inner: &Inner, p: &PluginView) -> Value {
    let info = |node: &String, controller: bool| {
        json!({"PluginID": p.id, "AllocID": "", "Healthy": true, "HealthDescription": "healthy",
            "UpdateTime": super::now_rfc3339(), "RequiresControllerPlugin": p.controller_required,
            "RequiresTopologies": false, "ControllerInfo": if controller { json!({"SupportsCreateDelete": true}) } else { Value::Null },
            "NodeInfo": if controller { Value::Null } else { json!({"ID": node, "MaxVolumes": 0}) }})
    };
    let controllers: serde_json::Map<String, Value> = p
        .controllers
        .iter()
        .map(|n| (n.clone(), info(n, true)))
        .collect();
    let nodes: serde_json::Map<String, Value> = p
        .nodes
        .iter()
        .map(|n| (n.clone(), info(n, false)))
        .collect();
    let allocs: Vec<Value> = p
        .allocs
        .iter()
        .filter_map(|id| inner.allocs.get(id))
        .map(misc::alloc_stub)
        .collect();
    json!({"ID": p.id, "Provider": p.provider, "Version": "1.0.0",
        "ControllerRequired": p.controller_required,
        "Controllers": controllers, "Nodes": nodes, "Allocations": allocs,
        "ControllersHealthy": p.controllers.len(), "ControllersExpected": p.controllers_expected,
        "NodesHealthy": p.nodes.len(), "NodesExpected": p.nodes_expected,
        "CreateIndex": p.create_index, "ModifyIndex": p.modify_index})
}

/// `GET /v1/plugins?type=csi`.
pub(crate) async fn plugins(st: &Arc<DevState>, req: &Req) -> ApiResult {
    let ty = req.q("type").unwrap_or("").to_string();
    let prefix = req.q("prefix").unwrap_or("").to_string();
    blocking(
        st,
        req,
        |i| i.table_index(&["csi_plugins", "allocs"]),
        |inner, _| {
            if ty != "csi" {
                return Ok(json!([]));
            }
            Ok(Value::Array(
                plugins_view(inner)
                    .values()
                    .filter(|p| p.id.starts_with(&prefix))
                    .map(plugin_stub)
                    .collect(),
            ))
        },
    )
    .await
}

/// `GET /v1/plugin/csi/:id` (404 `plugin not found`).
pub(crate) async fn plugin(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let id = id.to_string();
    blocking(
        st,
        req,
        |i| i.table_index(&["csi_plugins", "allocs"]),
        |inner, _| {
            plugins_view(inner)
                .get(&id)
                .map(|p| plugin_full(inner, p))
                .ok_or_else(|| ApiError::not_found("plugin not found"))
        },
    )
    .await
}

/// Live claims on a volume: (alloc id, write).
fn claims(inner: &Inner, ns: &str, id: &str) -> Vec<(String, bool, String)> {
    inner
        .allocs
        .values()
        .filter(|a| !a.terminal())
        .flat_map(|a| {
            a.claims
                .iter()
                .filter(|(cns, cid, _)| cns == ns && cid == id)
                .map(|(_, _, w)| (a.id.clone(), *w, a.node_id.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A volume as the `CSIVolume` topic carries it.
pub(crate) fn volume_event_json(inner: &Inner, v: &Volume) -> Value {
    volume_json(inner, v, true)
}

fn volume_json(inner: &Inner, v: &Volume, full: bool) -> Value {
    let spec = &v.spec;
    let ns = s(spec, "Namespace");
    let id = s(spec, "ID");
    let plugin_id = s(spec, "PluginID");
    let plugins = plugins_view(inner);
    let p = plugins.get(plugin_id).cloned().unwrap_or_default();
    let cl = claims(inner, ns, id);
    let schedulable = !p.nodes.is_empty() && (!p.controller_required || !p.controllers.is_empty());
    let caps = spec
        .get("RequestedCapabilities")
        .cloned()
        .unwrap_or(Value::Null);
    let (access, attach) = if cl.is_empty() {
        (String::new(), String::new())
    } else {
        let first = caps.get(0).cloned().unwrap_or(Value::Null);
        (
            s(&first, "AccessMode").to_string(),
            s(&first, "AttachmentMode").to_string(),
        )
    };
    let readers = cl.iter().filter(|c| !c.1).count();
    let writers = cl.iter().filter(|c| c.1).count();
    let mut out = json!({"ID": id, "Namespace": ns, "Name": s(spec, "Name"),
        "ExternalID": s(spec, "ExternalID"), "Topologies": null,
        "AccessMode": access, "AttachmentMode": attach,
        "CurrentReaders": readers, "CurrentWriters": writers,
        "Schedulable": schedulable, "PluginID": plugin_id, "Provider": p.provider,
        "ControllerRequired": p.controller_required,
        "ControllersHealthy": p.controllers.len(), "ControllersExpected": p.controllers_expected,
        "NodesHealthy": p.nodes.len(), "NodesExpected": p.nodes_expected,
        "ResourceExhausted": "0001-01-01T00:00:00Z",
        "CreateIndex": v.create_index, "ModifyIndex": v.modify_index,
        "CreateTime": v.create_time, "ModifyTime": v.modify_time});
    if full && let Some(o) = out.as_object_mut() {
        for o2 in ["CurrentReaders", "CurrentWriters"] {
            o.remove(o2);
        }
        let mount = match spec.get("MountOptions") {
            Some(m) if m.is_object() => {
                let mut m = m.clone();
                if m.get("MountFlags")
                    .and_then(|f| f.as_array())
                    .is_some_and(|f| !f.is_empty())
                {
                    m["MountFlags"] = json!(["[REDACTED]"]);
                }
                m
            }
            _ => Value::Null,
        };
        let map_of = |write: bool| {
            let m: serde_json::Map<String, Value> = cl
                .iter()
                .filter(|c| c.1 == write)
                .map(|c| (c.0.clone(), Value::Null))
                .collect();
            Value::Object(m)
        };
        o.insert("MountOptions".into(), mount);
        o.insert("Secrets".into(), Value::Null);
        for k in [
            "Parameters",
            "Context",
            "RequestedCapacityMin",
            "RequestedCapacityMax",
            "CloneID",
            "SnapshotID",
            "RequestedTopologies",
        ] {
            o.insert(k.into(), spec.get(k).cloned().unwrap_or(Value::Null));
        }
        o.insert(
            "Capacity".into(),
            spec.get("Capacity").cloned().unwrap_or(json!(0)),
        );
        o.insert("RequestedCapabilities".into(), caps);
        o.insert("ReadAllocs".into(), map_of(false));
        o.insert("WriteAllocs".into(), map_of(true));
        let allocs: Vec<Value> = cl
            .iter()
            .filter_map(|c| inner.allocs.get(&c.0))
            .map(misc::alloc_stub)
            .collect();
        o.insert("Allocations".into(), Value::Array(allocs));
    }
    out
}

/// `GET /v1/volumes?type=csi` (no type → `[]`).
pub(crate) async fn volumes(st: &Arc<DevState>, req: &Req) -> ApiResult {
    let ty = req.q("type").unwrap_or("").to_string();
    if !matches!(ty.as_str(), "" | "csi" | "host") {
        return Err(ApiError::not_found(format!(
            "unsupported volume type {ty:?}"
        )));
    }
    let filter = list_namespaces(st, req, "csi-list-volume")?;
    let prefix = req.q("prefix").unwrap_or("").to_string();
    let plugin = req.q("plugin_id").unwrap_or("").to_string();
    let node = req.q("node_id").unwrap_or("").to_string();
    blocking(
        st,
        req,
        |i| i.table_index(&["csi_volumes", "allocs"]),
        |inner, _| {
            if ty != "csi" {
                return Ok(json!([]));
            }
            Ok(Value::Array(
                inner
                    .volumes
                    .iter()
                    .filter(|((ns, id), v)| {
                        ns_ok(&filter, ns)
                            && id.starts_with(&prefix)
                            && (plugin.is_empty() || s(&v.spec, "PluginID") == plugin)
                            && (node.is_empty()
                                || claims(inner, ns, id).iter().any(|c| c.2 == node))
                    })
                    .map(|(_, v)| volume_json(inner, v, false))
                    .collect(),
            ))
        },
    )
    .await
}

/// `GET /v1/volume/csi/:id` (404 `volume not found`).
pub(crate) async fn volume(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let ns = req.namespace();
    require(st, req, &ns, "csi-read-volume")?;
    let key = (ns, id.to_string());
    blocking(
        st,
        req,
        |i| {
            i.volumes
                .get(&key)
                .map(|v| v.modify_index)
                .unwrap_or_else(|| i.table_index(&["csi_volumes"]))
        },
        |inner, _| {
            inner
                .volumes
                .get(&key)
                .map(|v| volume_json(inner, v, true))
                .ok_or_else(|| ApiError::not_found("volume not found"))
        },
    )
    .await
}

fn validate_volume(v: &Value) -> Result<(), ApiError> {
    let mut errs = Vec::new();
    if s(v, "ID").is_empty() {
        errs.push("missing volume id");
    }
    if s(v, "PluginID").is_empty() {
        errs.push("missing plugin id");
    }
    let caps = v
        .get("RequestedCapabilities")
        .and_then(|c| c.as_array())
        .is_some_and(|c| !c.is_empty());
    if !caps {
        errs.push("must include at least one capability block");
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::internal(format!(
            "validation: {}",
            errs.join(", ")
        )))
    }
}

/// Merge a re-registration into the stored volume (Nomad's `Merge` rules).
fn merge(inner: &Inner, old: &Value, new: &Value, ns: &str) -> Result<Value, ApiError> {
    let id = s(old, "ID");
    let in_use = !claims(inner, ns, id).is_empty();
    let differs = |k: &str| {
        let n = s(new, k);
        !n.is_empty() && n != s(old, k)
    };
    if differs("Name") {
        return Err(ApiError::internal("volume name cannot be updated"));
    }
    if differs("ExternalID") {
        return Err(ApiError::internal("volume external ID cannot be updated"));
    }
    if differs("PluginID") {
        return Err(ApiError::internal("volume plugin ID cannot be updated"));
    }
    if differs("SnapshotID") {
        return Err(ApiError::internal("volume snapshot ID cannot be updated"));
    }
    if differs("CloneID") {
        return Err(ApiError::internal("volume clone ID cannot be updated"));
    }
    let params = new
        .get("Parameters")
        .filter(|p| p.as_object().is_some_and(|o| !o.is_empty()));
    if let Some(p) = params
        && Some(p) != old.get("Parameters")
    {
        return Err(ApiError::internal("volume parameters cannot be updated"));
    }
    if in_use {
        let new_caps = new
            .get("RequestedCapabilities")
            .cloned()
            .unwrap_or(Value::Null);
        let old_caps = old
            .get("RequestedCapabilities")
            .cloned()
            .unwrap_or(Value::Null);
        let covers = old_caps
            .as_array()
            .into_iter()
            .flatten()
            .all(|c| new_caps.as_array().into_iter().flatten().any(|n| n == c));
        if !covers {
            return Err(ApiError::internal(
                "volume requested capabilities update was not compatible with existing capability in use",
            ));
        }
        let mo = new.get("MountOptions").filter(|m| {
            m.as_object().is_some_and(|o| {
                o.values().any(|v| {
                    !(v.is_null() || v == "" || v.as_array().is_some_and(|a| a.is_empty()))
                })
            })
        });
        if let Some(m) = mo
            && Some(m) != old.get("MountOptions")
        {
            return Err(ApiError::internal(
                "can not update mount options while volume is in use",
            ));
        }
    }
    let mut out = old.clone();
    for k in [
        "Secrets",
        "Context",
        "RequestedCapabilities",
        "RequestedCapacityMin",
        "RequestedCapacityMax",
        "MountOptions",
        "RequestedTopologies",
    ] {
        if let Some(v) = new.get(k).filter(|v| !v.is_null()) {
            out[k] = v.clone();
        }
    }
    Ok(out)
}

async fn upsert(st: &Arc<DevState>, req: &Req, create: bool) -> ApiResult {
    let body = req.json()?;
    let vols = field(&body, "Volumes")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    if vols.is_empty() {
        return Err(ApiError::internal("validation: missing volume definition"));
    }
    let qns = req
        .q("namespace")
        .filter(|n| !n.is_empty())
        .map(String::from);
    // ACL before taking the state lock (the caller lookup locks it too).
    for v in &vols {
        let ns = qns
            .clone()
            .or_else(|| Some(s(v, "Namespace").to_string()).filter(|n| !n.is_empty()))
            .unwrap_or_else(|| "default".to_string());
        require(st, req, &ns, "csi-write-volume")?;
    }
    let nomad = &st.nomad;
    let mut prepared = Vec::new();
    {
        let inner = nomad.lock();
        let plugins = plugins_view(&inner);
        for v in &vols {
            if !v.is_object() {
                return Err(ApiError::internal(
                    "validation: missing volume id, missing plugin id, must include at least one capability block",
                ));
            }
            let mut v = v.clone();
            let ns = qns
                .clone()
                .or_else(|| Some(s(&v, "Namespace").to_string()).filter(|n| !n.is_empty()))
                .unwrap_or_else(|| "default".to_string());
            v["Namespace"] = json!(ns);
            if s(&v, "Name").is_empty() {
                v["Name"] = json!(s(&v, "ID"));
            }
            validate_volume(&v)?;
            let pid = s(&v, "PluginID").to_string();
            let Some(p) = plugins.get(&pid) else {
                return Err(ApiError::internal(format!(
                    "no CSI plugin named: {pid} could be found"
                )));
            };
            if create && !p.controller_required {
                return Err(ApiError::internal("plugin has no controller"));
            }
            if (create || p.controller_required) && p.controllers.is_empty() {
                return Err(ApiError::internal(format!(
                    "no healthy controllers for CSI plugin: {pid}"
                )));
            }
            let key = (ns.clone(), s(&v, "ID").to_string());
            let merged = match inner.volumes.get(&key) {
                Some(old) => Some(merge(&inner, &old.spec, &v, &ns)?),
                None => None,
            };
            prepared.push((key, v, merged));
        }
    }
    let mut inner = nomad.lock();
    let index = nomad.write(&mut inner, &["csi_volumes"]);
    let t = now_ns();
    let mut out = Vec::new();
    for (key, mut v, merged) in prepared {
        let stored = match (merged, inner.volumes.get(&key)) {
            (Some(m), Some(old)) => Volume {
                spec: m,
                create_index: old.create_index,
                modify_index: index,
                create_time: old.create_time,
                modify_time: t,
            },
            _ => {
                if create {
                    if s(&v, "ExternalID").is_empty() {
                        v["ExternalID"] = json!(format!("vol-{}", &super::new_id()[..8]));
                    }
                    let cap = v["RequestedCapacityMax"]
                        .as_u64()
                        .filter(|c| *c > 0)
                        .or_else(|| v["RequestedCapacityMin"].as_u64())
                        .unwrap_or(0);
                    v["Capacity"] = json!(cap);
                }
                Volume {
                    spec: v,
                    create_index: index,
                    modify_index: index,
                    create_time: t,
                    modify_time: t,
                }
            }
        };
        inner.volumes.insert(key.clone(), stored);
        if let Some(v) = inner.volumes.get(&key) {
            out.push(volume_json(&inner, v, true));
        }
    }
    let body = with_meta(json!({"Volumes": out, "Warnings": ""}), index);
    Ok(write_reply(req, index, &body))
}

/// `PUT /v1/volume/csi/:id` and `PUT|POST /v1/volumes` (register).
pub(crate) async fn register(st: &Arc<DevState>, req: &Req, _id: Option<&str>) -> ApiResult {
    upsert(st, req, false).await
}

/// `PUT /v1/volume/csi/:id/create`.
pub(crate) async fn create(st: &Arc<DevState>, req: &Req, _id: &str) -> ApiResult {
    upsert(st, req, true).await
}

fn remove(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let ns = req.namespace();
    require(st, req, &ns, "csi-write-volume")?;
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    let key = (ns.clone(), id.to_string());
    if !inner.volumes.contains_key(&key) {
        return Err(ApiError::internal(format!("volume not found: {id}")));
    }
    if !claims(&inner, &ns, id).is_empty() {
        return Err(ApiError::internal(format!("volume in use: {id}")));
    }
    let index = nomad.write(&mut inner, &["csi_volumes"]);
    if let Some(gone) = inner.volumes.remove(&key) {
        let payload = json!({"Volume": volume_json(&inner, &gone, true)});
        inner.push_removed("CSIVolume", "CSIVolumeDeregistered", index, payload);
    }
    Ok(empty_reply(StatusCode::OK, index))
}

/// `DELETE /v1/volume/csi/:id[?force=true]` (deregister).
pub(crate) async fn deregister(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    remove(st, req, id)
}

/// `DELETE /v1/volume/csi/:id/delete` (delete in the provider and deregister).
pub(crate) async fn delete(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    {
        let ns = req.namespace();
        let inner = st.nomad.lock();
        if let Some(v) = inner.volumes.get(&(ns, id.to_string())) {
            let pid = s(&v.spec, "PluginID");
            let healthy = plugins_view(&inner)
                .get(pid)
                .is_some_and(|p| !p.controllers.is_empty());
            if !healthy {
                return Err(ApiError::internal(format!(
                    "no healthy controllers for CSI plugin: {pid}"
                )));
            }
        }
    }
    remove(st, req, id)
}

/// `DELETE /v1/volume/csi/:id/detach?node=<id>`: release claims of terminal allocs on the node.
pub(crate) async fn detach(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let ns = req.namespace();
    require(st, req, &ns, "csi-write-volume")?;
    let node = req.q("node").unwrap_or("").to_string();
    if node.is_empty() {
        return Err(ApiError::bad("detach requires node ID"));
    }
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    if !inner.volumes.contains_key(&(ns.clone(), id.to_string())) {
        return Err(ApiError::internal(format!("volume not found: {id}")));
    }
    let node_id = inner
        .node_index(&node)
        .map(|i| inner.nodes[i].id.clone())
        .unwrap_or(node);
    let index = nomad.write(&mut inner, &["csi_volumes"]);
    for a in inner
        .allocs
        .values_mut_where(|a| a.node_id == node_id && a.terminal())
    {
        {
            a.claims.retain(|(cns, cid, _)| !(*cns == ns && cid == id));
        }
    }
    Ok(empty_reply(StatusCode::OK, index))
}
