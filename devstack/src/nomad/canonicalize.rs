//! Client-side `Canonicalize` (api/jobs.go, api/tasks.go, api/services.go, api/resources.go)
//! and the server's admission mutators and validators on register and plan.
//!
//! The job is `serde_json::Value` in `api.Job` shape (Go field names, durations in ns).

use serde_json::{Map, Value, json};

const SEC: i64 = 1_000_000_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;

fn is_unset(v: Option<&Value>) -> bool {
    v.is_none_or(Value::is_null)
}

/// Set `key` to `default` when it is absent or null.
fn def(o: &mut Map<String, Value>, key: &str, default: Value) {
    if is_unset(o.get(key)) {
        o.insert(key.to_string(), default);
    }
}

fn s<'a>(o: &'a Map<String, Value>, key: &str) -> &'a str {
    o.get(key).and_then(Value::as_str).unwrap_or("")
}

fn empty_coll(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        _ => false,
    }
}

/// Non-null fields of `over` replace those of `base` (Go's `Merge` on pointer structs).
fn merged(base: &Value, over: Option<&Value>) -> Value {
    let mut out = base.clone();
    if let (Some(o), Some(Value::Object(ov))) = (out.as_object_mut(), over) {
        for (k, v) in ov {
            if !v.is_null() {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

fn default_update() -> Value {
    json!({"Stagger": 30 * SEC, "MaxParallel": 1, "HealthCheck": "checks",
        "MinHealthyTime": 10 * SEC, "HealthyDeadline": 5 * MIN, "ProgressDeadline": 10 * MIN,
        "Canary": 0, "AutoRevert": false, "AutoPromote": false})
}

fn default_migrate() -> Value {
    json!({"MaxParallel": 1, "HealthCheck": "checks", "MinHealthyTime": 10 * SEC,
        "HealthyDeadline": 5 * MIN})
}

fn default_reschedule(job_type: &str) -> Option<Value> {
    match job_type {
        "service" => Some(json!({"Attempts": 0, "Interval": 0, "Delay": 30 * SEC,
            "DelayFunction": "exponential", "MaxDelay": HOUR, "Unlimited": true})),
        "batch" => Some(
            json!({"Attempts": 1, "Interval": 24 * HOUR, "Delay": 5 * SEC,
            "DelayFunction": "constant", "MaxDelay": 0, "Unlimited": false}),
        ),
        _ => None,
    }
}

fn default_restart(job_type: &str) -> Value {
    match job_type {
        "batch" | "sysbatch" => json!({"Interval": 24 * HOUR, "Attempts": 3, "Delay": 15 * SEC,
            "Mode": "fail", "RenderTemplates": false}),
        _ => json!({"Interval": 30 * MIN, "Attempts": 2, "Delay": 15 * SEC, "Mode": "fail",
            "RenderTemplates": false}),
    }
}

fn update_is_empty(u: &Value) -> bool {
    u.as_object().is_none_or(|o| {
        o.values().all(|v| match v {
            Value::Null => true,
            Value::Bool(b) => !b,
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::String(s) => s.is_empty(),
            _ => false,
        })
    })
}

fn each_mut<'a>(v: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    v.get_mut(key)
        .and_then(Value::as_array_mut)
        .map(|a| a.iter_mut())
        .into_iter()
        .flatten()
}

/// Which side canonicalizes: the parse endpoint's `Canonicalize: true` option (the shape
/// measured on Nomad 2.0.5, api-facts §7) or the server admitting a job (the stored struct).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Parse,
    Server,
}

/// Fill the defaults `api.Job.Canonicalize()` fills (the `Canonicalize: true` parse option).
pub fn canonicalize(job: &mut Value) {
    canonicalize_on(job, Side::Parse);
}

fn canonicalize_on(job: &mut Value, side: Side) {
    let Some(o) = job.as_object_mut() else { return };
    def(o, "ID", json!(""));
    let id = o.get("ID").cloned().unwrap_or(json!(""));
    def(o, "Name", id);
    for k in [
        "ParentID",
        "ConsulNamespace",
        "VaultNamespace",
        "NomadTokenID",
        "Status",
        "StatusDescription",
        "NodePool",
    ] {
        def(o, k, json!(""));
    }
    def(o, "Priority", json!(50));
    def(o, "Stop", json!(false));
    def(o, "Region", json!("global"));
    def(o, "Namespace", json!("default"));
    def(o, "Type", json!("service"));
    def(o, "AllAtOnce", json!(false));
    def(o, "Stable", json!(false));
    def(o, "Version", json!(0));
    def(o, "CreateIndex", json!(0));
    def(o, "ModifyIndex", json!(0));
    def(o, "JobModifyIndex", json!(0));
    let job_type = s(o, "Type").to_string();
    if let Some(Value::Object(p)) = o.get_mut("Periodic") {
        def(p, "Enabled", json!(true));
        def(p, "ProhibitOverlap", json!(false));
        def(p, "TimeZone", json!("UTC"));
        if !is_unset(p.get("Spec")) {
            def(p, "SpecType", json!("cron"));
        }
    }
    if let Some(Value::Object(p)) = o.get_mut("ParameterizedJob")
        && s(p, "Payload").is_empty()
    {
        p.insert("Payload".into(), json!("optional"));
    }
    match o.get("Update") {
        Some(u) if !u.is_null() => {
            let u = merged(&default_update(), Some(u));
            o.insert("Update".into(), u);
        }
        _ if job_type == "service" || job_type == "system" => {
            o.insert("Update".into(), default_update());
        }
        _ => {}
    }
    for key in ["Affinities", "Spreads"] {
        canon_weights(o, key);
    }
    let job_snapshot = Value::Object(o.clone());
    for g in each_mut(job, "TaskGroups") {
        canonicalize_group(g, &job_snapshot, side);
    }
}

fn canon_weights(o: &mut Map<String, Value>, key: &str) {
    if let Some(Value::Array(a)) = o.get_mut(key) {
        for x in a {
            if let Some(xo) = x.as_object_mut() {
                def(xo, "Weight", json!(50));
            }
        }
    }
}

fn canonicalize_group(g: &mut Value, job: &Value, side: Side) {
    let job_type = job.get("Type").and_then(Value::as_str).unwrap_or("service");
    let job_name = job.get("Name").and_then(Value::as_str).unwrap_or("");
    let Some(o) = g.as_object_mut() else { return };
    def(o, "Name", json!(""));
    if is_unset(o.get("Count")) {
        let min = o
            .get("Scaling")
            .and_then(|sc| sc.get("Min"))
            .filter(|m| !m.is_null())
            .cloned();
        o.insert("Count".into(), min.unwrap_or(json!(1)));
    }
    let count = o.get("Count").cloned().unwrap_or(json!(1));
    if let Some(Value::Object(sc)) = o.get_mut("Scaling") {
        def(sc, "Enabled", json!(true));
        def(sc, "Min", count);
        if s(sc, "Type").is_empty() {
            sc.insert("Type".into(), json!("horizontal"));
        }
    }
    let disk = merged(
        &json!({"Sticky": false, "Migrate": false, "SizeMB": 300}),
        o.get("EphemeralDisk"),
    );
    o.insert("EphemeralDisk".into(), disk);

    // Update: the job's strategy merged under the group's.
    let ju = job.get("Update").filter(|u| !u.is_null());
    let tu = o.get("Update").filter(|u| !u.is_null()).cloned();
    let upd = match (ju, tu) {
        (Some(j), Some(t)) => Some(merged(j, Some(&t))),
        (Some(j), None) if !update_is_empty(j) => Some(j.clone()),
        (None, Some(t)) => Some(t),
        _ => None,
    };
    if let Some(u) = upd {
        o.insert("Update".into(), merged(&default_update(), Some(&u)));
    }

    // Reschedule: type default ← job ← group.
    if let Some(d) = default_reschedule(job_type) {
        let r = merged(
            &merged(&d, job.get("Reschedule")),
            o.get("ReschedulePolicy"),
        );
        o.insert("ReschedulePolicy".into(), r);
    }

    // Migrate: job ← group; service jobs always get one.
    let jm = job.get("Migrate").filter(|m| !m.is_null());
    let tm = o.get("Migrate").filter(|m| !m.is_null()).cloned();
    let mig = match (jm, tm) {
        (Some(j), t) => Some(merged(j, t.as_ref())),
        (None, Some(t)) => Some(t),
        (None, None) if job_type == "service" => Some(json!({})),
        _ => None,
    };
    if let Some(m) = mig {
        o.insert("Migrate".into(), merged(&default_migrate(), Some(&m)));
    }

    let rp = merged(&default_restart(job_type), o.get("RestartPolicy"));
    o.insert("RestartPolicy".into(), rp.clone());
    canon_weights(o, "Affinities");
    canon_weights(o, "Spreads");

    let group_name = s(o, "Name").to_string();
    // The parse endpoint leaves HostNetwork "" (measured on Nomad 2.0.5, api-facts §7); the
    // server's stored ports name the default host network.
    if side == Side::Server {
        for n in each_mut(g, "Networks") {
            canon_network(n);
        }
    }
    let svc_prefix = format!("{job_name}-{group_name}");
    for svc in each_mut(g, "Services") {
        canon_service(svc, &svc_prefix, side);
    }
    for t in each_mut(g, "Tasks") {
        canonicalize_task(t, &rp, &svc_prefix, side);
    }
}

fn canon_network(n: &mut Value) {
    for key in ["DynamicPorts", "ReservedPorts"] {
        for p in each_mut(n, key) {
            if let Some(po) = p.as_object_mut()
                && s(po, "HostNetwork").is_empty()
            {
                po.insert("HostNetwork".into(), json!("default"));
            }
        }
    }
}

fn canon_resources(r: &mut Map<String, Value>, side: Side) {
    if is_unset(r.get("Cores")) {
        r.insert("Cores".into(), json!(0));
        def(r, "CPU", json!(100));
    }
    def(r, "CPU", json!(0));
    def(r, "MemoryMB", json!(300));
    match side {
        // Canonicalize leaves an unset memory_max null (measured on Nomad 2.0.5, api-facts §7).
        Side::Parse => {
            r.entry("MemoryMaxMB").or_insert(Value::Null);
        }
        Side::Server => def(r, "MemoryMaxMB", json!(0)),
    }
    if let Some(Value::Array(devs)) = r.get_mut("Devices") {
        for d in devs {
            if let Some(dobj) = d.as_object_mut() {
                def(dobj, "Count", json!(1));
            }
        }
    }
}

fn default_logs() -> Value {
    json!({"MaxFiles": 10, "MaxFileSizeMB": 10, "Disabled": false})
}

/// The canonical `LogConfig`; the parse endpoint keeps the deprecated `Enabled` as null
/// (measured on Nomad 2.0.5, api-facts §7).
fn canon_logs(given: Option<&Value>, side: Side) -> Value {
    let mut logs = merged(&default_logs(), given);
    if side == Side::Parse
        && let Some(o) = logs.as_object_mut()
    {
        o.entry("Enabled").or_insert(Value::Null);
    }
    logs
}

fn canonicalize_task(t: &mut Value, group_restart: &Value, svc_prefix: &str, side: Side) {
    let Some(o) = t.as_object_mut() else { return };
    let mut res = match o.get("Resources") {
        Some(Value::Object(r)) => r.clone(),
        _ => Map::new(),
    };
    canon_resources(&mut res, side);
    o.insert("Resources".into(), Value::Object(res));
    def(o, "KillTimeout", json!(5 * SEC));
    let logs = canon_logs(o.get("LogConfig"), side);
    o.insert("LogConfig".into(), logs);
    let rp = merged(group_restart, o.get("RestartPolicy"));
    o.insert("RestartPolicy".into(), rp);
    // A lifecycle block that is present but empty is dropped.
    if let Some(Value::Object(l)) = o.get("Lifecycle") {
        let hook_empty = s(l, "Hook").is_empty();
        let sidecar = l.get("Sidecar").and_then(Value::as_bool).unwrap_or(false);
        if hook_empty && !sidecar {
            o.insert("Lifecycle".into(), Value::Null);
        }
    }
    if let Some(Value::Object(v)) = o.get_mut("Vault") {
        def(v, "Env", json!(true));
        def(v, "DisableFile", json!(false));
        def(v, "Namespace", json!(""));
        if s(v, "Cluster").is_empty() {
            v.insert("Cluster".into(), json!("default"));
        }
        def(v, "ChangeMode", json!("restart"));
        def(v, "ChangeSignal", json!("SIGHUP"));
        def(v, "AllowTokenExpiration", json!(false));
    }
    if let Some(Value::Object(c)) = o.get_mut("CSIPluginConfig") {
        if s(c, "MountDir").is_empty() {
            c.insert("MountDir".into(), json!("/csi"));
        }
        if s(c, "StagePublishBaseDir").is_empty() {
            c.insert("StagePublishBaseDir".into(), json!("/local/csi"));
        }
        if c.get("HealthTimeout").and_then(Value::as_i64).unwrap_or(0) == 0 {
            c.insert("HealthTimeout".into(), json!(30 * SEC));
        }
    }
    canon_weights(o, "Affinities");
    let task_name = s(o, "Name").to_string();
    for tpl in each_mut(t, "Templates") {
        if let Some(to) = tpl.as_object_mut() {
            for k in ["SourcePath", "DestPath", "EmbeddedTmpl"] {
                def(to, k, json!(""));
            }
            def(to, "ChangeMode", json!("restart"));
            let sig = match to.get("ChangeSignal").and_then(Value::as_str) {
                Some(sig) => sig.to_uppercase(),
                None if s(to, "ChangeMode") == "signal" => "SIGHUP".to_string(),
                None => String::new(),
            };
            to.insert("ChangeSignal".into(), json!(sig));
            def(to, "Splay", json!(5 * SEC));
            def(to, "Perms", json!("0644"));
            def(to, "LeftDelim", json!("{{"));
            def(to, "RightDelim", json!("}}"));
            def(to, "Envvars", json!(false));
            def(to, "ErrMissingKey", json!(false));
            def(to, "Once", json!(false));
            def(to, "VaultGrace", json!(0));
            if let Some(Value::Object(cs)) = to.get_mut("ChangeScript") {
                def(cs, "Command", json!(""));
                def(cs, "Args", json!([]));
                def(cs, "Timeout", json!(5 * SEC));
                def(cs, "FailOnError", json!(false));
            }
        }
    }
    for a in each_mut(t, "Artifacts") {
        if let Some(ao) = a.as_object_mut() {
            def(ao, "GetterSource", json!(""));
            def(ao, "GetterMode", json!("any"));
            def(ao, "GetterInsecure", json!(false));
            if is_unset(ao.get("RelativeDest")) {
                let dest = if s(ao, "GetterMode") == "file" {
                    let src = s(ao, "GetterSource");
                    let base = src
                        .split('?')
                        .next()
                        .unwrap_or("")
                        .rsplit('/')
                        .next()
                        .unwrap_or("");
                    format!("local/{base}")
                } else {
                    "local/".to_string()
                };
                ao.insert("RelativeDest".into(), json!(dest));
            }
        }
    }
    for vm in each_mut(t, "VolumeMounts") {
        if let Some(vo) = vm.as_object_mut() {
            def(vo, "PropagationMode", json!("private"));
            def(vo, "ReadOnly", json!(false));
            def(vo, "SELinuxLabel", json!(""));
        }
    }
    let prefix = format!("{svc_prefix}-{task_name}");
    for svc in each_mut(t, "Services") {
        canon_service(svc, &prefix, side);
    }
}

/// `CheckRestart.Merge`: the check's non-zero settings override the service's.
fn merge_check_restart(svc: &Value, own: &Value) -> Value {
    let mut out = svc.clone();
    if let Some(o) = out.as_object_mut() {
        if own["Limit"].as_i64().unwrap_or(0) > 0 {
            o.insert("Limit".into(), own["Limit"].clone());
        }
        if !own["Grace"].is_null() {
            o.insert("Grace".into(), own["Grace"].clone());
        }
        if own["IgnoreWarnings"].as_bool().unwrap_or(false) {
            o.insert("IgnoreWarnings".into(), json!(true));
        }
    }
    out
}

fn canon_service(svc: &mut Value, default_name: &str, side: Side) {
    let Some(o) = svc.as_object_mut() else { return };
    if s(o, "Name").is_empty() {
        o.insert("Name".into(), json!(default_name));
    }
    for (k, d) in [
        ("AddressMode", "auto"),
        ("OnUpdate", "require_healthy"),
        ("Provider", "consul"),
        ("Cluster", "default"),
    ] {
        if s(o, k).is_empty() {
            o.insert(k.into(), json!(d));
        }
    }
    for k in ["Meta", "CanaryMeta", "TaggedAddresses"] {
        if empty_coll(o.get(k)) {
            o.insert(k.into(), Value::Null);
        }
    }
    if let Some(Value::Object(w)) = o.get_mut("Weights") {
        for k in ["Passing", "Warning"] {
            if w.get(k).and_then(Value::as_i64).unwrap_or(0) <= 0 {
                w.insert(k.into(), json!(1));
            }
        }
    }
    let on_update = s(o, "OnUpdate").to_string();
    let svc_cr = o.get("CheckRestart").cloned().filter(|v| !v.is_null());
    if let Some(Value::Array(checks)) = o.get_mut("Checks") {
        for c in checks {
            let Some(co) = c.as_object_mut() else {
                continue;
            };
            let cr = match (&svc_cr, co.get("CheckRestart").filter(|v| !v.is_null())) {
                (Some(sv), Some(own)) => Some(merge_check_restart(sv, own)),
                (Some(sv), None) => Some(sv.clone()),
                (None, own) => own.cloned(),
            };
            if let Some(mut cr) = cr {
                if let Some(cro) = cr.as_object_mut() {
                    def(cro, "Grace", json!(SEC));
                }
                co.insert("CheckRestart".into(), cr);
            }
            for k in [
                "SuccessBeforePassing",
                "FailuresBeforeCritical",
                "FailuresBeforeWarning",
            ] {
                if co.get(k).and_then(Value::as_i64).unwrap_or(0) < 0 {
                    co.insert(k.into(), json!(0));
                }
            }
            if s(co, "OnUpdate").is_empty() {
                co.insert("OnUpdate".into(), json!(on_update));
            }
        }
    }
    if let Some(Value::Object(conn)) = o.get_mut("Connect") {
        if let Some(Value::Object(ss)) = conn.get_mut("SidecarService") {
            if empty_coll(ss.get("Tags")) {
                ss.insert("Tags".into(), Value::Null);
            }
            if let Some(Value::Object(p)) = ss.get_mut("Proxy") {
                for k in ["Upstreams", "Config"] {
                    if empty_coll(p.get(k)) {
                        p.insert(k.into(), Value::Null);
                    }
                }
                if let Some(Value::Object(tp)) = p.get_mut("TransparentProxy") {
                    for k in [
                        "ExcludeInboundPorts",
                        "ExcludeOutboundPorts",
                        "ExcludeOutboundCIDRs",
                        "ExcludeUIDs",
                    ] {
                        if empty_coll(tp.get(k)) {
                            tp.insert(k.into(), Value::Null);
                        }
                    }
                }
            }
        }
        if let Some(Value::Object(st)) = conn.get_mut("SidecarTask") {
            def(st, "KillTimeout", json!(5 * SEC));
            def(st, "ShutdownDelay", json!(0));
            let logs = canon_logs(st.get("LogConfig"), side);
            st.insert("LogConfig".into(), logs);
            if let Some(Value::Object(r)) = st.get_mut("Resources") {
                canon_resources(r, side);
            }
        }
    }
}

/// Turn a submitted `api.Job` into the stored `structs.Job`: canonicalize, `Datacenters=["*"]`
/// when empty, `NodePool="default"`, the agent region, injected Connect sidecar tasks, implicit
/// constraints, and every server field present (nil collections as `null`).
pub fn admit(job: &mut Value, region: &str) {
    use drover_jobspec::schema;
    schema::fill_shape(job, &schema::JOB);
    canonicalize_on(job, Side::Server);
    let Some(o) = job.as_object_mut() else { return };
    if empty_coll(o.get("Datacenters")) {
        o.insert("Datacenters".into(), json!(["*"]));
    }
    if s(o, "NodePool").is_empty() {
        o.insert("NodePool".into(), json!("default"));
    }
    let r = s(o, "Region");
    if r.is_empty() || r == "global" {
        o.insert("Region".into(), json!(region));
    }
    if s(o, "Namespace").is_empty() {
        o.insert("Namespace".into(), json!("default"));
    }
    if o.get("Priority").and_then(Value::as_i64).unwrap_or(0) == 0 {
        o.insert("Priority".into(), json!(50));
    }
    // Server-only fields, present with zero values; tokens are never stored.
    for (k, v) in [
        ("Status", json!("")),
        ("StatusDescription", json!("")),
        ("Stable", json!(false)),
        ("Version", json!(0)),
        ("SubmitTime", json!(0)),
        ("CreateIndex", json!(0)),
        ("ModifyIndex", json!(0)),
        ("JobModifyIndex", json!(0)),
        ("Stop", json!(false)),
        ("Dispatched", json!(false)),
        ("NomadTokenID", json!("")),
        ("ParentID", json!("")),
        ("ConsulNamespace", json!("")),
        ("VaultNamespace", json!("")),
    ] {
        def(o, k, v);
    }
    // What Nomad 2.0.5 stores and serves (measured, api-facts §7): no job-level tokens, and no
    // job-level Migrate/Reschedule when the job set none (the groups carry the merged ones).
    o.remove("ConsulToken");
    o.remove("VaultToken");
    for k in ["Migrate", "Reschedule"] {
        if o.get(k).is_some_and(Value::is_null) {
            o.remove(k);
        }
    }
    o.entry("VersionTag").or_insert(Value::Null);
    let namespace = s(o, "Namespace").to_string();
    nil_empty_maps(job, &["Meta"]);
    for g in each_mut(job, "TaskGroups") {
        nil_empty_maps(g, &["Meta"]);
        for t in each_mut(g, "Tasks") {
            nil_empty_maps(t, &["Meta", "Config", "Env"]);
        }
        inject_connect_sidecars(g);
        implicit_constraints(g);
        server_read_shape(g, &namespace);
    }
}

/// The default workload identity the server gives every task (its keys measured on Nomad
/// 2.0.5, api-facts §7).
fn default_identity() -> Value {
    json!({"Name": "default", "Audience": ["nomad.io"], "ChangeMode": "", "ChangeSignal": "",
        "Env": false, "File": false, "Filepath": "", "ServiceName": "", "TTL": 0,
        "ExtraClaims": null})
}

/// The group as Nomad 2.0.5 serves it (measured, api-facts §7): every task has a workload
/// `Identity`, every service a `Namespace`, and networks leave out their empty fields.
fn server_read_shape(g: &mut Value, namespace: &str) {
    for svc in each_mut(g, "Services") {
        if let Some(so) = svc.as_object_mut() {
            def(so, "Namespace", json!(namespace));
        }
    }
    for n in each_mut(g, "Networks") {
        drop_empty_network_fields(n);
    }
    for t in each_mut(g, "Tasks") {
        let Some(to) = t.as_object_mut() else {
            continue;
        };
        def(to, "Identity", default_identity());
        for svc in each_mut(t, "Services") {
            if let Some(so) = svc.as_object_mut() {
                def(so, "Namespace", json!(namespace));
            }
        }
        if let Some(res) = t.get_mut("Resources") {
            for n in each_mut(res, "Networks") {
                drop_empty_network_fields(n);
            }
        }
    }
}

/// Nomad leaves a network's unset `CIDR`, `CNI`, `DNS`, `Device`, `Hostname`, `IP`, `MBits`
/// and `ReservedPorts` out of the JSON it serves (measured on Nomad 2.0.5, api-facts §7).
fn drop_empty_network_fields(n: &mut Value) {
    let Some(o) = n.as_object_mut() else { return };
    for k in [
        "CIDR",
        "CNI",
        "DNS",
        "Device",
        "Hostname",
        "IP",
        "MBits",
        "ReservedPorts",
    ] {
        let empty = match o.get(k) {
            Some(Value::Number(x)) => x.as_f64() == Some(0.0),
            other => empty_coll(other) || other.and_then(Value::as_str) == Some(""),
        };
        if empty {
            o.remove(k);
        }
    }
}

/// The server's `Canonicalize` treats empty maps as nil so `meta {}` and no meta compare equal.
fn nil_empty_maps(v: &mut Value, keys: &[&str]) {
    if let Some(o) = v.as_object_mut() {
        for k in keys {
            if o.get(*k)
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
            {
                o.insert((*k).to_string(), Value::Null);
            }
        }
    }
}

/// The `connect-proxy-<service>` task Nomad's connect admission hook adds for each group
/// service with a sidecar (job_endpoint_hook_connect.go), merged with `sidecar_task` overrides.
fn inject_connect_sidecars(g: &mut Value) {
    let Some(o) = g.as_object_mut() else { return };
    let restart = o.get("RestartPolicy").cloned().unwrap_or(Value::Null);
    let mut new_tasks = Vec::new();
    let mut new_ports = Vec::new();
    if let Some(Value::Array(svcs)) = o.get_mut("Services") {
        for svc in svcs {
            let name = svc
                .get("Name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let Some(conn) = svc.get_mut("Connect").and_then(Value::as_object_mut) else {
                continue;
            };
            let Some(ss) = conn
                .get_mut("SidecarService")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            let label = format!("connect-proxy-{name}");
            if s(ss, "Port").is_empty() {
                ss.insert("Port".into(), json!(label));
                new_ports
                    .push(json!({"Label": label, "Value": 0, "To": -1, "HostNetwork": "default"}));
            }
            let overrides = conn.get("SidecarTask").cloned().unwrap_or(Value::Null);
            new_tasks.push((name, overrides));
        }
    }
    if !new_ports.is_empty()
        && let Some(Value::Array(nets)) = o.get_mut("Networks")
        && let Some(n) = nets.first_mut().and_then(Value::as_object_mut)
    {
        let dp = n.entry("DynamicPorts").or_insert(Value::Null);
        if !dp.is_array() {
            *dp = json!([]);
        }
        if let Some(a) = dp.as_array_mut() {
            for p in new_ports {
                let label = p.get("Label").cloned();
                if !a.iter().any(|x| x.get("Label") == label.as_ref()) {
                    a.push(p);
                }
            }
        }
    }
    let tasks = o.entry("Tasks").or_insert(json!([]));
    let Some(tasks) = tasks.as_array_mut() else {
        return;
    };
    for (svc, overrides) in new_tasks {
        let kind = format!("connect-proxy:{svc}");
        if tasks
            .iter()
            .any(|t| t.get("Kind").and_then(Value::as_str) == Some(kind.as_str()))
        {
            continue;
        }
        let mut task = sidecar_task(&svc);
        if let (Some(to), Value::Object(ov)) = (task.as_object_mut(), &overrides) {
            for (k, v) in ov {
                let keep = match v {
                    Value::Null => false,
                    Value::String(x) => !x.is_empty(),
                    _ => true,
                };
                if !keep {
                    continue;
                }
                if k == "Config" || k == "Env" || k == "Meta" {
                    let base = to.get(k).cloned().unwrap_or(Value::Null);
                    to.insert(
                        k.clone(),
                        merged(&if base.is_null() { json!({}) } else { base }, Some(v)),
                    );
                } else if k == "Resources" || k == "LogConfig" {
                    let base = to.get(k).cloned().unwrap_or(json!({}));
                    to.insert(k.clone(), merged(&base, Some(v)));
                } else {
                    to.insert(k.clone(), v.clone());
                }
            }
        }
        {
            use drover_jobspec::schema;
            schema::fill_shape(&mut task, &schema::TASK);
        }
        canonicalize_task(&mut task, &restart, "", Side::Server);
        tasks.push(task);
    }
}

fn sidecar_task(svc: &str) -> Value {
    let mut t = drover_jobspec::schema::empty(&drover_jobspec::schema::TASK);
    t.insert("Name".into(), json!(format!("connect-proxy-{svc}")));
    t.insert("Kind".into(), json!(format!("connect-proxy:{svc}")));
    t.insert("Driver".into(), json!("docker"));
    t.insert(
        "Config".into(),
        json!({"image": "${meta.connect.sidecar_image}",
            "args": ["-c", "${NOMAD_SECRETS_DIR}/envoy_bootstrap.json", "-l", "${meta.connect.log_level}",
                "--concurrency", "${meta.connect.proxy_concurrency}", "--disable-hot-restart"]}),
    );
    t.insert("ShutdownDelay".into(), json!(5 * SEC));
    t.insert(
        "LogConfig".into(),
        json!({"MaxFiles": 2, "MaxFileSizeMB": 2, "Disabled": false}),
    );
    t.insert("Resources".into(), json!({"CPU": 250, "MemoryMB": 128}));
    t.insert(
        "Lifecycle".into(),
        json!({"Hook": "prestart", "Sidecar": true}),
    );
    Value::Object(t)
}

/// Implicit constraints of the server's constraint hook: Vault for tasks with `vault`, Consul for
/// groups registering Consul services or Connect sidecars.
fn implicit_constraints(g: &mut Value) {
    let tasks = g
        .get("Tasks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let uses_vault = tasks
        .iter()
        .any(|t| t.get("Vault").is_some_and(|v| !v.is_null()));
    let provider_svc = |svcs: Option<&Value>, provider: &str| {
        svcs.and_then(Value::as_array).is_some_and(|a| {
            a.iter().any(|s| {
                let p = s.get("Provider").and_then(Value::as_str).unwrap_or("");
                (if p.is_empty() { "consul" } else { p }) == provider
            })
        })
    };
    let uses = |provider: &str| {
        provider_svc(g.get("Services"), provider)
            || tasks
                .iter()
                .any(|t| provider_svc(t.get("Services"), provider))
    };
    let (uses_consul, uses_nomad_sd) = (uses("consul"), uses("nomad"));
    let mut add = Vec::new();
    if uses_vault {
        add.push(
            json!({"LTarget": "${attr.vault.version}", "RTarget": ">= 0.6.1", "Operand": "semver"}),
        );
    }
    // Signals the tasks rely on (template/vault change_mode "signal", kill_signal).
    let mut signals: Vec<String> = Vec::new();
    for t in &tasks {
        let mut want = |sig: &Value| {
            if let Some(sig) = sig.as_str().filter(|x| !x.is_empty()) {
                let sig = sig.to_uppercase();
                if !signals.contains(&sig) {
                    signals.push(sig);
                }
            }
        };
        if t["Vault"]["ChangeMode"] == "signal" {
            want(&t["Vault"]["ChangeSignal"]);
        }
        for tpl in t["Templates"].as_array().into_iter().flatten() {
            if tpl["ChangeMode"] == "signal" {
                want(&tpl["ChangeSignal"]);
            }
        }
        want(&t["KillSignal"]);
    }
    if !signals.is_empty() {
        signals.sort();
        add.push(json!({"LTarget": "${attr.os.signals}", "RTarget": signals.join(","), "Operand": "set_contains"}));
    }
    if uses_nomad_sd {
        add.push(json!({"LTarget": "${attr.nomad.service_discovery}", "RTarget": "true", "Operand": "="}));
    }
    if uses_consul {
        add.push(json!({"LTarget": "${attr.consul.version}", "RTarget": ">= 1.8.0", "Operand": "semver"}));
    }
    let Some(o) = g.as_object_mut() else { return };
    if add.is_empty() {
        return;
    }
    let cons = o.entry("Constraints").or_insert(Value::Null);
    if !cons.is_array() {
        *cons = json!([]);
    }
    if let Some(a) = cons.as_array_mut() {
        for c in add {
            if !a.contains(&c) {
                a.push(c);
            }
        }
    }
}

/// Hashicorp multierror's list format, as Nomad's validation errors are rendered.
fn multierror(errs: &[String]) -> String {
    if errs.len() == 1 {
        return format!("1 error occurred:\n\t* {}\n\n", errs[0]);
    }
    let points: Vec<String> = errs.iter().map(|e| format!("* {e}")).collect();
    format!(
        "{} errors occurred:\n\t{}\n\n",
        errs.len(),
        points.join("\n\t")
    )
}

/// Nomad-like `Job.Validate` for the common failures; `Err` holds the multierror text.
pub fn validate(job: &Value) -> Result<(), String> {
    let mut errs = Vec::new();
    let gs = |k: &str| job.get(k).and_then(Value::as_str).unwrap_or("");
    if gs("Region").is_empty() {
        errs.push("Missing job region".to_string());
    }
    let id = gs("ID");
    if id.is_empty() {
        errs.push("Missing job ID".to_string());
    } else if id.contains(' ') {
        errs.push("Job ID contains a space".to_string());
    } else if id.contains('\0') {
        errs.push("Job ID contains a null character".to_string());
    }
    if gs("Name").is_empty() {
        errs.push("Missing job name".to_string());
    }
    if gs("Namespace").is_empty() {
        errs.push("Job must be in a namespace".to_string());
    }
    let ty = gs("Type");
    match ty {
        "service" | "batch" | "system" | "sysbatch" => {}
        "" => errs.push("Missing job type".to_string()),
        other => errs.push(format!("Invalid job type: {other:?}")),
    }
    let prio = job.get("Priority").and_then(Value::as_i64).unwrap_or(0);
    if !(1..=100).contains(&prio) {
        errs.push("Job priority must be between [1, 100]".to_string());
    }
    if empty_coll(job.get("Datacenters")) {
        errs.push("Missing job datacenters".to_string());
    } else if let Some(dcs) = job.get("Datacenters").and_then(Value::as_array)
        && dcs.iter().any(|d| d.as_str().is_none_or(str::is_empty))
    {
        errs.push("Job datacenter must be non-empty string".to_string());
    }
    let groups = job
        .get("TaskGroups")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if groups.is_empty() {
        errs.push("Missing job task groups".to_string());
    }
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let name = g.get("Name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            errs.push(format!("Job task group {} missing name", i + 1));
        } else if let Some((_, j)) = seen.iter().find(|(n, _)| n == name) {
            errs.push(format!(
                "Job task group {} redefines '{name}' from group {}",
                i + 1,
                j + 1
            ));
        } else {
            seen.push((name.to_string(), i));
        }
        if let Err(e) = validate_group(g, ty) {
            errs.push(format!("Task group {name} validation failed: {e}"));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(multierror(&errs))
    }
}

fn validate_group(g: &Value, job_type: &str) -> Result<(), String> {
    let mut errs = Vec::new();
    if g.get("Name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        errs.push("Missing task group name".to_string());
    }
    let count = g.get("Count").and_then(Value::as_i64).unwrap_or(0);
    if count < 0 {
        errs.push("Task group count can't be negative".to_string());
    }
    if job_type == "system" && g.get("Scaling").is_some_and(|s| !s.is_null()) {
        errs.push("System jobs may not have a scaling block".to_string());
    }
    let tasks = g
        .get("Tasks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if tasks.is_empty() {
        errs.push("Missing tasks for task group".to_string());
    }
    let volumes = g
        .get("Volumes")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut seen: Vec<String> = Vec::new();
    for (i, t) in tasks.iter().enumerate() {
        let name = t.get("Name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            errs.push(format!("Task {} missing name", i + 1));
        } else if let Some(j) = seen.iter().position(|n| n == name) {
            errs.push(format!(
                "Task {} redefines '{name}' from task {}",
                i + 1,
                j + 1
            ));
        } else {
            seen.push(name.to_string());
        }
    }
    // Nomad checks names for every task first, then validates each task.
    for t in &tasks {
        let name = t.get("Name").and_then(Value::as_str).unwrap_or("");
        let mut terrs = Vec::new();
        if t.get("Driver")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            terrs.push("Missing task driver".to_string());
        }
        if let Some(hook) = t
            .get("Lifecycle")
            .and_then(|l| l.get("Hook"))
            .and_then(Value::as_str)
            && !matches!(hook, "prestart" | "poststart" | "poststop")
        {
            terrs.push(format!("invalid hook: {hook}"));
        }
        if let Some(mem) = t
            .get("Resources")
            .and_then(|r| r.get("MemoryMB"))
            .and_then(Value::as_i64)
            && mem < 10
        {
            terrs.push(format!("minimum MemoryMB value is 10; got {mem}"));
        }
        for (k, vm) in t
            .get("VolumeMounts")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let v = vm.get("Volume").and_then(Value::as_str).unwrap_or("");
            if !volumes.contains_key(v) {
                terrs.push(format!(
                    "Volume Mount ({k}) references undefined volume {v}"
                ));
            }
        }
        if !terrs.is_empty() {
            errs.push(format!(
                "Task {name} validation failed: {}",
                multierror(&terrs)
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(multierror(&errs))
    }
}

#[cfg(test)]
mod tests;
