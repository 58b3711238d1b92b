//! Nomad's structured job diff (structs/diff.go), the plan annotations (scheduler/annotate.go),
//! the in-place vs destructive update rule (scheduler `tasksUpdated`) and the SpecChanged rule.
//!
//! Jobs are `serde_json::Value` in Nomad's JSON shape. Primitive fields are compared as the
//! strings Go's `flatmap` produces (`"50"`, `"true"`, `Meta[owner]`), so Old/New are strings.

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

/// Job-level fields the diff leaves out (structs/diff.go `Job.Diff` filter).
const JOB_FILTER: &[&str] = &[
    "ID",
    "Status",
    "StatusDescription",
    "Version",
    "Stable",
    "CreateIndex",
    "ModifyIndex",
    "JobModifyIndex",
    "Update",
    "SubmitTime",
    "NomadTokenID",
    "VaultToken",
];

/// Fields holding `map[string]string`-like maps, flattened as `Name[key]` fields.
const MAP_FIELDS: &[&str] = &[
    "Meta",
    "Env",
    "GetterOptions",
    "GetterHeaders",
    "CanaryMeta",
    "TaggedAddresses",
    "Target",
];

/// Fields skipped everywhere below the job: identities of the element itself or server noise.
const SKIP: &[&str] = &["Name", "Config", "Tasks", "Ports"];

fn type_rank(t: &str) -> u8 {
    match t {
        "Edited" => 0,
        "Added" => 1,
        "Deleted" => 2,
        _ => 3,
    }
}

/// Nomad's diff sort: Edited, Added, Deleted, None; then by name.
fn sort_diffs(v: &mut [Value]) {
    v.sort_by(|a, b| {
        let ta = type_rank(a["Type"].as_str().unwrap_or(""));
        let tb = type_rank(b["Type"].as_str().unwrap_or(""));
        ta.cmp(&tb).then_with(|| {
            a["Name"]
                .as_str()
                .unwrap_or("")
                .cmp(b["Name"].as_str().unwrap_or(""))
        })
    });
}

fn scalar_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `flatmap.Flatten(obj, filter, primitiveOnly=true)`: scalars and maps of scalars.
fn flatten_primitive(v: Option<&Value>, filter: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(Value::Object(o)) = v else {
        return out;
    };
    for (k, val) in o {
        if filter.contains(&k.as_str()) {
            continue;
        }
        if let Some(s) = scalar_str(val) {
            out.insert(k.clone(), Value::String(s));
        } else if MAP_FIELDS.contains(&k.as_str())
            && let Value::Object(m) = val
        {
            for (mk, mv) in m {
                if let Some(s) = scalar_str(mv) {
                    out.insert(format!("{k}[{mk}]"), Value::String(s));
                }
            }
        }
    }
    out
}

/// `flatmap.Flatten(config, nil, false)`: everything, `a[0]`, `a[key]` style.
fn flatten_all(prefix: &str, v: &Value, out: &mut Map<String, Value>) {
    match v {
        Value::Object(o) => {
            for (k, val) in o {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}[{k}]")
                };
                flatten_all(&p, val, out);
            }
        }
        Value::Array(a) => {
            for (i, val) in a.iter().enumerate() {
                flatten_all(&format!("{prefix}[{i}]"), val, out);
            }
        }
        Value::Null => {}
        other => {
            if let Some(s) = scalar_str(other) {
                out.insert(prefix.to_string(), Value::String(s));
            }
        }
    }
}

fn field_diff(old: &str, new: &str, name: &str, contextual: bool) -> Option<Value> {
    let (ty, o, n) = if old == new {
        if !contextual {
            return None;
        }
        ("None", old, new)
    } else if old.is_empty() {
        ("Added", "", new)
    } else if new.is_empty() {
        ("Deleted", old, "")
    } else {
        ("Edited", old, new)
    };
    Some(json!({"Type": ty, "Name": name, "Old": o, "New": n, "Annotations": null}))
}

fn field_diffs(old: &Map<String, Value>, new: &Map<String, Value>, contextual: bool) -> Vec<Value> {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out: Vec<Value> = keys
        .into_iter()
        .filter_map(|k| {
            let o = old.get(k).and_then(Value::as_str).unwrap_or("");
            let n = new.get(k).and_then(Value::as_str).unwrap_or("");
            field_diff(o, n, k, contextual)
        })
        .collect();
    sort_diffs(&mut out);
    out
}

fn any_changed(items: &[Value]) -> bool {
    items.iter().any(|d| d["Type"] != "None")
}

/// The type of an object diff from its parts, like `primitiveObjectDiff`.
fn derive_type(fields: &[Value], objects: &[Value]) -> Option<&'static str> {
    let mut added = false;
    let mut deleted = false;
    for d in fields.iter().chain(objects) {
        match d["Type"].as_str() {
            Some("Edited") => return Some("Edited"),
            Some("Added") => added = true,
            Some("Deleted") => deleted = true,
            _ => {}
        }
    }
    match (added, deleted) {
        (true, true) => Some("Edited"),
        (true, false) => Some("Added"),
        (false, true) => Some("Deleted"),
        _ => None,
    }
}

/// The ObjectDiff name Nomad uses for an object-valued field or a list element.
fn object_name(field: &str) -> &str {
    match field {
        "Constraints" => "Constraint",
        "Affinities" => "Affinity",
        "Spreads" => "Spread",
        "SpreadTarget" => "SpreadTarget",
        "Networks" => "Network",
        "DynamicPorts" => "Dynamic Port",
        "ReservedPorts" => "Static Port",
        "Services" => "Service",
        "Checks" => "Check",
        "Templates" => "Template",
        "Artifacts" => "Artifact",
        "VolumeMounts" => "VolumeMount",
        "Volumes" => "Volume",
        "Devices" => "Device",
        "Identities" => "Identity",
        "Upstreams" => "ConsulUpstreams",
        "Connect" => "ConsulConnect",
        "Proxy" => "ConsulProxy",
        "Gateway" => "Gateway",
        "Paths" => "Path",
        "ScalingPolicies" => "ScalingPolicy",
        other => other,
    }
}

/// Generic object diff: primitive fields, string sets, nested objects and object lists.
fn object_diff(
    name: &str,
    old: Option<&Value>,
    new: Option<&Value>,
    contextual: bool,
) -> Option<Value> {
    let old = old.filter(|v| !v.is_null());
    let new = new.filter(|v| !v.is_null());
    if old.is_none() && new.is_none() {
        return None;
    }
    let of = flatten_primitive(old, &[]);
    let nf = flatten_primitive(new, &[]);
    let fields = field_diffs(&of, &nf, contextual);
    let objects = nested_objects(old, new, contextual, &[]);
    let ty = derive_type(&fields, &objects)?;
    Some(json!({"Type": ty, "Name": name, "Fields": fields, "Objects": objects}))
}

fn string_set_diff(name: &str, old: &[String], new: &[String], contextual: bool) -> Option<Value> {
    let mut fields = Vec::new();
    let mut added = false;
    let mut removed = false;
    for o in old {
        if !new.contains(o) {
            fields.extend(field_diff(o, "", name, contextual));
            removed = true;
        } else if contextual {
            fields.extend(field_diff(o, o, name, contextual));
        }
    }
    for n in new {
        if !old.contains(n) {
            fields.extend(field_diff("", n, name, contextual));
            added = true;
        }
    }
    sort_diffs(&mut fields);
    let ty = match (added, removed) {
        (true, true) => "Edited",
        (true, false) => "Added",
        (false, true) => "Deleted",
        _ if fields.is_empty() => return None,
        _ => "None",
    };
    Some(json!({"Type": ty, "Name": name, "Fields": fields, "Objects": []}))
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    match v {
        Some(Value::Array(a)) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            Some(a.iter().filter_map(scalar_str).collect())
        }
        _ => None,
    }
}

/// Lists of objects: keyed by `Name` for services and checks, else as sets (equal elements
/// produce nothing; a changed element is a Deleted plus an Added object).
fn object_list_diff(field: &str, old: &[Value], new: &[Value], contextual: bool) -> Vec<Value> {
    let name = object_name(field);
    let mut out = Vec::new();
    if matches!(field, "Services" | "Checks") {
        let key = |v: &Value| v["Name"].as_str().unwrap_or("").to_string();
        for o in old {
            let n = new.iter().find(|n| key(n) == key(o));
            out.extend(keyed_object_diff(name, Some(o), n, contextual));
        }
        for n in new {
            if !old.iter().any(|o| key(o) == key(n)) {
                out.extend(keyed_object_diff(name, None, Some(n), contextual));
            }
        }
    } else {
        for o in old {
            if !new.contains(o) {
                out.extend(object_diff(name, Some(o), None, contextual));
            }
        }
        for n in new {
            if !old.contains(n) {
                out.extend(object_diff(name, None, Some(n), contextual));
            }
        }
    }
    out
}

/// A named element (service, check): its `Name` is a field of the diff like other fields.
fn keyed_object_diff(
    name: &str,
    old: Option<&Value>,
    new: Option<&Value>,
    contextual: bool,
) -> Option<Value> {
    if old.is_some() && old == new {
        return None;
    }
    object_diff(name, old, new, contextual)
}

fn nested_objects(
    old: Option<&Value>,
    new: Option<&Value>,
    contextual: bool,
    skip: &[&str],
) -> Vec<Value> {
    let empty = Map::new();
    let oo = old.and_then(Value::as_object).unwrap_or(&empty);
    let no = new.and_then(Value::as_object).unwrap_or(&empty);
    let mut keys: Vec<&String> = oo.keys().chain(no.keys()).collect();
    keys.dedup();
    let mut seen: Vec<&String> = Vec::new();
    let mut out = Vec::new();
    for k in keys {
        if seen.contains(&k) || skip.contains(&k.as_str()) || MAP_FIELDS.contains(&k.as_str()) {
            continue;
        }
        seen.push(k);
        let (ov, nv) = (
            oo.get(k).filter(|v| !v.is_null()),
            no.get(k).filter(|v| !v.is_null()),
        );
        if ov.is_none() && nv.is_none() {
            continue;
        }
        let is_obj = |v: Option<&Value>| v.is_some_and(Value::is_object);
        let is_arr = |v: Option<&Value>| v.is_some_and(Value::is_array);
        if k == "Volumes" && (is_obj(ov) || is_obj(nv)) {
            let om = ov.and_then(Value::as_object).cloned().unwrap_or_default();
            let nm = nv.and_then(Value::as_object).cloned().unwrap_or_default();
            let mut names: Vec<&String> = om.keys().chain(nm.keys()).collect();
            names.sort();
            names.dedup();
            for vname in names {
                if om.get(vname) != nm.get(vname) {
                    out.extend(object_diff(
                        "Volume",
                        om.get(vname),
                        nm.get(vname),
                        contextual,
                    ));
                }
            }
        } else if is_obj(ov) || is_obj(nv) {
            out.extend(object_diff(object_name(k), ov, nv, contextual));
        } else if is_arr(ov) || is_arr(nv) {
            let oa = ov.and_then(Value::as_array).cloned().unwrap_or_default();
            let na = nv.and_then(Value::as_array).cloned().unwrap_or_default();
            let all_obj = oa.iter().chain(na.iter()).all(Value::is_object);
            if all_obj {
                out.extend(object_list_diff(k, &oa, &na, contextual));
            } else if let (Some(os), Some(ns)) = (
                strings(Some(&Value::Array(oa.clone()))),
                strings(Some(&Value::Array(na.clone()))),
            ) && let Some(d) = string_set_diff(k, &os, &ns, contextual)
            {
                // Unchanged sets only show inside an edited parent.
                out.push(d);
            }
        }
    }
    // Drop unchanged string sets when nothing else changed, so an unchanged parent stays None.
    if !any_changed(&out) {
        out.clear();
    }
    sort_diffs(&mut out);
    out
}

fn config_diff(old: Option<&Value>, new: Option<&Value>, contextual: bool) -> Option<Value> {
    let mut of = Map::new();
    let mut nf = Map::new();
    if let Some(o) = old.filter(|v| !v.is_null()) {
        flatten_all("", o, &mut of);
    }
    if let Some(n) = new.filter(|v| !v.is_null()) {
        flatten_all("", n, &mut nf);
    }
    let fields = field_diffs(&of, &nf, contextual);
    let ty = derive_type(&fields, &[])?;
    Some(json!({"Type": ty, "Name": "Config", "Fields": fields, "Objects": []}))
}

fn named<'a>(list: Option<&'a Value>, name: &str) -> Option<&'a Value> {
    list.and_then(Value::as_array)?
        .iter()
        .find(|x| x["Name"] == name)
}

fn names(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x["Name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn task_diff(old: Option<&Value>, new: Option<&Value>, contextual: bool) -> Value {
    let name = new
        .or(old)
        .and_then(|t| t["Name"].as_str())
        .unwrap_or("")
        .to_string();
    let of = flatten_primitive(old, &["Name", "Config"]);
    let nf = flatten_primitive(new, &["Name", "Config"]);
    let fields = field_diffs(&of, &nf, false);
    let mut objects = nested_objects(old, new, contextual, SKIP);
    objects.extend(config_diff(
        old.map(|t| &t["Config"]),
        new.map(|t| &t["Config"]),
        contextual,
    ));
    sort_diffs(&mut objects);
    let ty = match (old, new) {
        (None, _) => "Added",
        (_, None) => "Deleted",
        (Some(o), Some(n)) if o != n && (any_changed(&fields) || any_changed(&objects)) => "Edited",
        _ => "None",
    };
    json!({"Type": ty, "Name": name, "Fields": fields, "Objects": objects, "Annotations": null})
}

fn group_diff(old: Option<&Value>, new: Option<&Value>, contextual: bool) -> Value {
    let name = new
        .or(old)
        .and_then(|t| t["Name"].as_str())
        .unwrap_or("")
        .to_string();
    let of = flatten_primitive(old, &["Name"]);
    let nf = flatten_primitive(new, &["Name"]);
    let fields = field_diffs(&of, &nf, false);
    let objects = nested_objects(old, new, contextual, SKIP);
    let (ot, nt) = (old.map(|g| &g["Tasks"]), new.map(|g| &g["Tasks"]));
    let mut tasks = Vec::new();
    let mut tnames = names(ot);
    for n in names(nt) {
        if !tnames.contains(&n) {
            tnames.push(n);
        }
    }
    for tn in tnames {
        tasks.push(task_diff(named(ot, &tn), named(nt, &tn), contextual));
    }
    sort_diffs(&mut tasks);
    let ty = match (old, new) {
        (None, _) => "Added",
        (_, None) => "Deleted",
        _ if any_changed(&fields) || any_changed(&objects) || any_changed(&tasks) => "Edited",
        _ => "None",
    };
    json!({"Type": ty, "Name": name, "Fields": fields, "Objects": objects, "Tasks": tasks, "Updates": null})
}

/// The contextual `JobDiff` between the stored job (`None` for a new job) and a candidate.
pub fn job_diff(old: Option<&Value>, new: &Value) -> Value {
    let contextual = true;
    let of = flatten_primitive(old, JOB_FILTER);
    let nf = flatten_primitive(Some(new), JOB_FILTER);
    let fields = field_diffs(&of, &nf, false);
    let mut objects = Vec::new();
    let strs = |j: Option<&Value>, k: &str| strings(j.map(|j| &j[k])).unwrap_or_default();
    if let Some(d) = string_set_diff(
        "Datacenters",
        &strs(old, "Datacenters"),
        &strs(Some(new), "Datacenters"),
        contextual,
    ) && d["Type"] != "None"
    {
        objects.push(d);
    }
    for k in ["Constraints", "Affinities", "Spreads"] {
        let oa = old
            .and_then(|j| j[k].as_array())
            .cloned()
            .unwrap_or_default();
        let na = new[k].as_array().cloned().unwrap_or_default();
        objects.extend(object_list_diff(k, &oa, &na, contextual));
    }
    for (k, name) in [
        ("Periodic", "Periodic"),
        ("ParameterizedJob", "ParameterizedJob"),
        ("Multiregion", "Multiregion"),
    ] {
        objects.extend(object_diff(
            name,
            old.map(|j| &j[k]),
            Some(&new[k]),
            contextual,
        ));
    }
    sort_diffs(&mut objects);
    let (ogs, ngs) = (old.map(|j| &j["TaskGroups"]), Some(&new["TaskGroups"]));
    let mut gnames = names(ogs);
    for n in names(ngs) {
        if !gnames.contains(&n) {
            gnames.push(n);
        }
    }
    let mut groups: Vec<Value> = gnames
        .iter()
        .map(|g| group_diff(named(ogs, g), named(ngs, g), contextual))
        .collect();
    sort_diffs(&mut groups);
    let ty = if old.is_none() {
        "Added"
    } else if any_changed(&fields) || any_changed(&objects) || any_changed(&groups) {
        "Edited"
    } else {
        "None"
    };
    let mut d = json!({"Type": ty, "ID": new["ID"], "Fields": fields, "Objects": objects, "TaskGroups": groups});
    nil_empty_lists(&mut d);
    d
}

/// Go encodes the diff's nil slices as `null`; ours start as empty arrays.
fn nil_empty_lists(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        for (k, val) in o.iter_mut() {
            if matches!(k.as_str(), "Fields" | "Objects" | "Tasks" | "TaskGroups")
                && val.as_array().is_some_and(Vec::is_empty)
            {
                *val = Value::Null;
            } else {
                nil_empty_lists(val);
            }
        }
    } else if let Some(a) = v.as_array_mut() {
        for x in a {
            nil_empty_lists(x);
        }
    }
}

/// Add the plan annotations: `TaskGroupDiff.Updates` from the scheduler's `DesiredTGUpdates`,
/// `forces create`/`forces destroy` on `Count`, and the per-task update annotations.
pub fn annotate(diff: &mut Value, desired_tg_updates: &Value) {
    let Some(groups) = diff.get_mut("TaskGroups").and_then(Value::as_array_mut) else {
        return;
    };
    for g in groups {
        let name = g["Name"].as_str().unwrap_or("").to_string();
        if let Some(u) = desired_tg_updates.get(&name).and_then(Value::as_object) {
            let mut updates = Map::new();
            for (src, dst) in [
                ("Ignore", "ignore"),
                ("Place", "create"),
                ("Migrate", "migrate"),
                ("Stop", "destroy"),
                ("Canary", "canary"),
                ("InPlaceUpdate", "in-place update"),
                ("DestructiveUpdate", "create/destroy update"),
            ] {
                let n = u.get(src).and_then(Value::as_u64).unwrap_or(0);
                if n != 0 {
                    updates.insert(dst.to_string(), json!(n));
                }
            }
            if let Some(go) = g.as_object_mut() {
                go.insert("Updates".into(), Value::Object(updates));
            }
        }
        if let Some(fields) = g.get_mut("Fields").and_then(Value::as_array_mut)
            && let Some(c) = fields.iter_mut().find(|f| f["Name"] == "Count")
        {
            let num = |k: &str| {
                c[k].as_str()
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(0)
            };
            let (o, n) = (num("Old"), num("New"));
            let ann = match o.cmp(&n) {
                Ordering::Less => Some("forces create"),
                Ordering::Greater => Some("forces destroy"),
                Ordering::Equal => None,
            };
            if let Some(a) = ann {
                push_annotation(c, a);
            }
        }
        let parent = g["Type"].as_str().unwrap_or("").to_string();
        if let Some(tasks) = g.get_mut("Tasks").and_then(Value::as_array_mut) {
            for t in tasks {
                annotate_task(t, &parent);
            }
        }
    }
}

fn push_annotation(v: &mut Value, a: &str) {
    match v.get_mut("Annotations") {
        Some(Value::Array(arr)) => arr.push(json!(a)),
        _ => {
            if let Some(o) = v.as_object_mut() {
                o.insert("Annotations".into(), json!([a]));
            }
        }
    }
}

fn annotate_task(t: &mut Value, parent_type: &str) {
    if t["Type"] == "None" {
        return;
    }
    match parent_type {
        "Added" => return push_annotation(t, "forces create"),
        "Deleted" => return push_annotation(t, "forces destroy"),
        _ => {}
    }
    let empty = Vec::new();
    let fields = t["Fields"].as_array().unwrap_or(&empty);
    let mut destructive = fields.iter().any(|f| f["Name"] != "KillTimeout");
    if !destructive {
        for o in t["Objects"].as_array().unwrap_or(&empty) {
            match o["Name"].as_str().unwrap_or("") {
                "Service" | "Constraint" | "Affinity" | "Spread" => {}
                "LogConfig" => {
                    let fs = o["Fields"].as_array().unwrap_or(&empty);
                    if fs.iter().any(|f| f["Name"] == "Disabled") {
                        destructive = true;
                        break;
                    }
                }
                _ => {
                    destructive = true;
                    break;
                }
            }
        }
    }
    push_annotation(
        t,
        if destructive {
            "forces create/destroy update"
        } else {
            "forces in-place update"
        },
    );
}

/// How existing allocations of a group must change for a new group spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// Nothing that affects running allocations changed (e.g. only `Count`).
    Ignore,
    /// Allocations are updated in place (services, constraints, affinities, spreads, update
    /// strategy, restart/reschedule policies...).
    InPlace,
    /// Allocations must be replaced (Nomad's `tasksUpdated` is true).
    Destructive,
}

/// Task fields whose change forces a replacement (scheduler/util.go `tasksUpdated`).
const DESTRUCTIVE_TASK_FIELDS: &[&str] = &[
    "Driver",
    "User",
    "Lifecycle",
    "Config",
    "Env",
    "Meta",
    "LogConfig",
    "Artifacts",
    "Vault",
    "Consul",
    "Templates",
    "CSIPluginConfig",
    "VolumeMounts",
    "Identity",
    "Identities",
    "DispatchPayload",
    "Secrets",
    "Kind",
];

/// Resource fields compared by `tasksUpdated`.
const RESOURCE_FIELDS: &[&str] = &[
    "CPU",
    "Cores",
    "MemoryMB",
    "MemoryMaxMB",
    "Devices",
    "Networks",
    "SecretsMB",
];

/// Connect-related service parts that make a service change destructive.
fn connect_parts(svcs: &Value) -> Vec<Value> {
    svcs.as_array()
        .map(|a| {
            a.iter()
                .map(|s| json!([s["Name"], s["Connect"], s["PortLabel"]]))
                .filter(|v| !v[1].is_null())
                .collect()
        })
        .unwrap_or_default()
}

/// Decide whether a group change is ignorable, in place or destructive (Nomad's tasksUpdated).
pub fn update_kind(old_group: &Value, new_group: &Value) -> UpdateKind {
    if tasks_updated(old_group, new_group) {
        return UpdateKind::Destructive;
    }
    let strip = |g: &Value| {
        let mut g = g.clone();
        if let Some(o) = g.as_object_mut() {
            o.remove("Count");
            o.remove("Scaling");
        }
        g
    };
    if strip(old_group) == strip(new_group) {
        UpdateKind::Ignore
    } else {
        UpdateKind::InPlace
    }
}

/// [`update_kind`] for group `group` of two whole jobs: a change of the job's `Meta` is also
/// destructive, since Nomad compares the job, group and task meta combined.
pub fn job_group_update_kind(old_job: &Value, new_job: &Value, group: &str) -> UpdateKind {
    let find = |j: &Value| {
        j["TaskGroups"]
            .as_array()
            .and_then(|a| a.iter().find(|g| g["Name"] == group))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let (og, ng) = (find(old_job), find(new_job));
    if og.is_null() || ng.is_null() || old_job["Meta"] != new_job["Meta"] {
        return UpdateKind::Destructive;
    }
    update_kind(&og, &ng)
}

fn tasks_updated(a: &Value, b: &Value) -> bool {
    let (at, bt) = (a["Tasks"].as_array(), b["Tasks"].as_array());
    let (at, bt) = match (at, bt) {
        (Some(x), Some(y)) => (x, y),
        (None, None) => return false,
        _ => return true,
    };
    if at.len() != bt.len() {
        return true;
    }
    for key in ["Networks", "EphemeralDisk", "Volumes", "Meta"] {
        if a[key] != b[key] {
            return true;
        }
    }
    if connect_parts(&a["Services"]) != connect_parts(&b["Services"]) {
        return true;
    }
    for ta in at {
        let Some(tb) = bt.iter().find(|t| t["Name"] == ta["Name"]) else {
            return true;
        };
        if DESTRUCTIVE_TASK_FIELDS.iter().any(|k| ta[*k] != tb[*k]) {
            return true;
        }
        if connect_parts(&ta["Services"]) != connect_parts(&tb["Services"]) {
            return true;
        }
        if RESOURCE_FIELDS
            .iter()
            .any(|k| ta["Resources"][*k] != tb["Resources"][*k])
        {
            return true;
        }
    }
    false
}

/// Fields `Job.SpecChanged` masks before its deep compare (api-facts §1.4).
const SPEC_MASKED: &[&str] = &[
    "Status",
    "StatusDescription",
    "Stable",
    "Version",
    "CreateIndex",
    "ModifyIndex",
    "JobModifyIndex",
    "SubmitTime",
];

/// Nomad's `Job.SpecChanged`: a deep compare with status, version and index fields masked.
pub fn spec_changed(old: &Value, new: &Value) -> bool {
    let mask = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            for k in SPEC_MASKED {
                o.remove(*k);
            }
        }
        v
    };
    mask(old) != mask(new)
}

#[cfg(test)]
mod tests;
