//! Server-side helpers the register path needs beyond `canonicalize`/`diff`: the defaults the
//! scheduler relies on (filled only where still missing, so they never fight `admit`), a minimal
//! validator, the SpecChanged masking and the in-place/destructive update classification.

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

/// Format errors the way go-multierror does.
pub(crate) fn multierror(errors: &[String]) -> String {
    let head = if errors.len() == 1 {
        "1 error occurred:".to_string()
    } else {
        format!("{} errors occurred:", errors.len())
    };
    let mut s = head;
    for e in errors {
        s.push_str("\n\t* ");
        s.push_str(e);
    }
    s.push_str("\n\n");
    s
}

/// A minimal `Job.Validate`: the structural errors a user can hit from a jobspec.
pub(crate) fn validate(job: &Value) -> Result<(), String> {
    let mut errs = Vec::new();
    let s = |k: &str| job.get(k).and_then(|v| v.as_str()).unwrap_or("");
    if s("Region").is_empty() {
        errs.push("Missing job region".to_string());
    }
    if s("ID").is_empty() {
        errs.push("Missing job ID".to_string());
    } else if s("ID").contains(' ') {
        errs.push("Job ID contains a space".to_string());
    }
    if s("Name").is_empty() {
        errs.push("Missing job name".to_string());
    }
    if !matches!(s("Type"), "service" | "batch" | "system" | "sysbatch") {
        errs.push(format!("Invalid job type: {:?}", s("Type")));
    }
    let prio = job.get("Priority").and_then(|p| p.as_i64()).unwrap_or(50);
    if !(1..=100).contains(&prio) {
        errs.push("Job priority must be between [1, 100]".to_string());
    }
    let groups = job
        .get("TaskGroups")
        .and_then(|g| g.as_array())
        .cloned()
        .unwrap_or_default();
    if groups.is_empty() {
        errs.push("Missing job task groups".to_string());
    }
    for g in &groups {
        let name = g.get("Name").and_then(|v| v.as_str()).unwrap_or("");
        let mut gerrs = Vec::new();
        if name.is_empty() {
            gerrs.push("Missing task group name".to_string());
        }
        if g.get("Count").and_then(|c| c.as_i64()).unwrap_or(0) < 0 {
            gerrs.push("Task group count can't be negative".to_string());
        }
        let tasks = g
            .get("Tasks")
            .and_then(|t| t.as_array())
            .cloned()
            .unwrap_or_default();
        if tasks.is_empty() {
            gerrs.push("Missing tasks for task group".to_string());
        }
        for t in &tasks {
            let tname = t.get("Name").and_then(|v| v.as_str()).unwrap_or("");
            let driver = t.get("Driver").and_then(|v| v.as_str()).unwrap_or("");
            if driver.is_empty() {
                gerrs.push(format!(
                    "Task {tname} validation failed: {}",
                    multierror(&["Missing task driver".to_string()])
                ));
            }
        }
        if !gerrs.is_empty() {
            errs.push(format!(
                "Task group {name} validation failed: {}",
                multierror(&gerrs)
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(multierror(&errs))
    }
}

/// Copy the fields SpecChanged masks from the stored job into the candidate, then compare.
pub(crate) fn spec_changed(stored: &Value, candidate: &Value) -> bool {
    let mut c = candidate.clone();
    if let (Some(co), Some(so)) = (c.as_object_mut(), stored.as_object()) {
        for k in [
            "Status",
            "StatusDescription",
            "Stable",
            "Version",
            "CreateIndex",
            "ModifyIndex",
            "JobModifyIndex",
            "SubmitTime",
        ] {
            co.insert(k.to_string(), so.get(k).cloned().unwrap_or(Value::Null));
        }
    }
    super::diff::spec_changed(stored, &c) && *stored != c
}

/// How an allocation follows a group change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpdateKind {
    /// Nothing relevant changed.
    Ignore,
    /// Updated without a restart.
    InPlace,
    /// Replaced.
    Destructive,
}

fn strip(v: &mut Value, keys: &[&str]) {
    if let Some(o) = v.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
}

/// Nomad's `tasksUpdated` in broad strokes: service, constraint, affinity, spread, count,
/// update-strategy and kill-timeout changes are in place; everything else is destructive.
pub(crate) fn update_kind(old: &Value, new: &Value) -> UpdateKind {
    if old == new {
        return UpdateKind::Ignore;
    }
    let norm = |g: &Value| {
        let mut g = g.clone();
        strip(
            &mut g,
            &[
                "Count",
                "Update",
                "Migrate",
                "ReschedulePolicy",
                "Services",
                "Constraints",
                "Affinities",
                "Spreads",
                "Scaling",
                "StopAfterClientDisconnect",
                "MaxClientDisconnect",
            ],
        );
        if let Some(tasks) = g.get_mut("Tasks").and_then(|t| t.as_array_mut()) {
            for t in tasks {
                strip(
                    t,
                    &[
                        "Services",
                        "Constraints",
                        "Affinities",
                        "Spreads",
                        "KillTimeout",
                    ],
                );
                if let Some(lc) = t.get_mut("LogConfig") {
                    strip(lc, &["MaxFiles", "MaxFileSizeMB"]);
                }
            }
        }
        g
    };
    let (a, b) = (norm(old), norm(new));
    if a == b {
        let strip_count = |g: &Value| {
            let mut g = g.clone();
            strip(&mut g, &["Count"]);
            g
        };
        if strip_count(old) == strip_count(new) {
            UpdateKind::Ignore
        } else {
            UpdateKind::InPlace
        }
    } else {
        UpdateKind::Destructive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multierror_matches_go_multierror_format() {
        assert_eq!(multierror(&["a".into()]), "1 error occurred:\n\t* a\n\n");
        assert_eq!(
            multierror(&["a".into(), "b".into()]),
            "2 errors occurred:\n\t* a\n\t* b\n\n"
        );
    }

    #[test]
    fn image_change_is_destructive_and_service_tag_change_in_place() {
        let g = json!({"Name":"web","Count":1,"Services":[{"Name":"a","Tags":["x"]}],
            "Tasks":[{"Name":"t","Config":{"image":"a:1"}}]});
        let mut tags = g.clone();
        tags["Services"][0]["Tags"] = json!(["y"]);
        assert_eq!(update_kind(&g, &tags), UpdateKind::InPlace);
        let mut image = g.clone();
        image["Tasks"][0]["Config"]["image"] = json!("a:2");
        assert_eq!(update_kind(&g, &image), UpdateKind::Destructive);
        let mut count = g.clone();
        count["Count"] = json!(3);
        assert_eq!(update_kind(&g, &count), UpdateKind::Ignore);
    }
}
