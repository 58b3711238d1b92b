//! The defaults the scheduler relies on, filled after `canonicalize::admit` only where still
//! missing (a safety net for sparse API-JSON jobs; a no-op for admitted jobs).

use serde_json::{Value, json};

const SEC: i64 = 1_000_000_000;

fn set_default(obj: &mut serde_json::Map<String, Value>, key: &str, v: Value) {
    match obj.get(key) {
        None | Some(Value::Null) => {
            obj.insert(key.to_string(), v);
        }
        _ => {}
    }
}

fn set_if_absent(obj: &mut serde_json::Map<String, Value>, key: &str, v: Value) {
    if !obj.contains_key(key) {
        obj.insert(key.to_string(), v);
    }
}

/// The job-level `update` default of `api.Job.Canonicalize` for service/system jobs.
pub(crate) fn default_update() -> Value {
    json!({"Stagger": 30 * SEC, "MaxParallel": 1, "HealthCheck": "checks",
        "MinHealthyTime": 10 * SEC, "HealthyDeadline": 300 * SEC, "ProgressDeadline": 600 * SEC,
        "AutoRevert": false, "AutoPromote": false, "Canary": 0})
}

/// Fill the server defaults the scheduler and the reads depend on, where still missing.
pub(crate) fn admit_defaults(job: &mut Value, region: &str, namespace: &str) {
    let Some(obj) = job.as_object_mut() else {
        return;
    };
    let id = obj.get("ID").cloned().unwrap_or(Value::Null);
    set_default(obj, "Name", id);
    obj.insert("Namespace".into(), json!(namespace));
    obj.insert("Region".into(), json!(region));
    set_default(obj, "Type", json!("service"));
    set_default(obj, "Priority", json!(50));
    set_default(obj, "AllAtOnce", json!(false));
    let dcs_empty = obj
        .get("Datacenters")
        .and_then(|d| d.as_array())
        .is_none_or(|a| a.is_empty());
    if dcs_empty {
        obj.insert("Datacenters".into(), json!(["*"]));
    }
    match obj.get("NodePool") {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => {
            obj.insert("NodePool".into(), json!("default"));
        }
    }
    for k in [
        "Constraints",
        "Affinities",
        "Spreads",
        "Meta",
        "Periodic",
        "ParameterizedJob",
        "Payload",
        "Multiregion",
        "UI",
        "VersionTag",
    ] {
        set_if_absent(obj, k, Value::Null);
    }
    for (k, v) in [
        ("ParentID", json!("")),
        ("Dispatched", json!(false)),
        ("Stop", json!(false)),
        ("Status", json!("")),
        ("StatusDescription", json!("")),
        ("Stable", json!(false)),
        ("Version", json!(0)),
        ("SubmitTime", json!(0)),
        ("CreateIndex", json!(0)),
        ("ModifyIndex", json!(0)),
        ("JobModifyIndex", json!(0)),
        ("ConsulNamespace", json!("")),
        ("VaultNamespace", json!("")),
        ("NomadTokenID", json!("")),
    ] {
        set_default(obj, k, v);
    }
    let jtype = obj
        .get("Type")
        .and_then(|t| t.as_str())
        .unwrap_or("service")
        .to_string();
    if matches!(jtype.as_str(), "service" | "system") {
        set_default(obj, "Update", default_update());
    } else {
        set_default(
            obj,
            "Update",
            json!({"Stagger": 0, "MaxParallel": 0, "HealthCheck": "", "MinHealthyTime": 0,
                "HealthyDeadline": 0, "ProgressDeadline": 0, "AutoRevert": false,
                "AutoPromote": false, "Canary": 0}),
        );
    }
    let job_update = obj.get("Update").cloned().unwrap_or(Value::Null);
    let Some(groups) = obj.get_mut("TaskGroups").and_then(|g| g.as_array_mut()) else {
        return;
    };
    for g in groups {
        let Some(go) = g.as_object_mut() else {
            continue;
        };
        let scaling_min = go
            .get("Scaling")
            .and_then(|s| s.get("Min"))
            .and_then(|m| m.as_i64());
        set_default(go, "Count", json!(scaling_min.unwrap_or(1)));
        if matches!(jtype.as_str(), "service" | "system") {
            match go.get_mut("Update") {
                Some(Value::Object(u)) => {
                    if let Some(ju) = job_update.as_object() {
                        for (k, v) in ju {
                            set_default(u, k, v.clone());
                        }
                    }
                }
                _ => {
                    go.insert("Update".into(), job_update.clone());
                }
            }
        } else {
            set_if_absent(go, "Update", Value::Null);
        }
        set_default(
            go,
            "EphemeralDisk",
            json!({"Sticky": false, "Migrate": false, "SizeMB": 300}),
        );
        for k in [
            "Constraints",
            "Affinities",
            "Spreads",
            "Networks",
            "Services",
            "Volumes",
            "Meta",
            "Scaling",
        ] {
            set_if_absent(go, k, Value::Null);
        }
        if let Some(tasks) = go.get_mut("Tasks").and_then(|t| t.as_array_mut()) {
            for t in tasks {
                let Some(to) = t.as_object_mut() else {
                    continue;
                };
                match to.get_mut("Resources") {
                    Some(Value::Object(r)) => {
                        set_default(r, "CPU", json!(100));
                        set_default(r, "MemoryMB", json!(300));
                    }
                    _ => {
                        to.insert(
                            "Resources".into(),
                            json!({"CPU": 100, "Cores": 0, "MemoryMB": 300, "MemoryMaxMB": 0}),
                        );
                    }
                }
                set_default(to, "KillTimeout", json!(5 * SEC));
                for k in [
                    "Lifecycle",
                    "Templates",
                    "Services",
                    "VolumeMounts",
                    "Vault",
                    "Constraints",
                    "Meta",
                    "Env",
                    "CSIPluginConfig",
                ] {
                    set_if_absent(to, k, Value::Null);
                }
            }
        }
    }
}
