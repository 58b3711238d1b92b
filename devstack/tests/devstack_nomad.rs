//! HTTP-level tests of the simulated Nomad server against the facts in api-facts.md §1 and §6.

use std::path::{Path, PathBuf};
use std::time::Duration;

use drover_devstack::{Devstack, DevstackConfig};
use serde_json::{Value, json};

struct Api {
    ds: Devstack,
    http: reqwest::Client,
}

impl Api {
    async fn start() -> Api {
        Api::start_with(DevstackConfig {
            time_scale: 0.01,
            ..Default::default()
        })
        .await
    }

    async fn start_with(config: DevstackConfig) -> Api {
        // reqwest is built without a default rustls provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ds = Devstack::start(config).await.expect("devstack starts");
        Api {
            ds,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.ds.nomad_url(), path)
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, String, reqwest::header::HeaderMap) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self.http.request(m, self.url(path));
        if let Some(b) = body {
            rb = rb.body(b.to_string());
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, resp.text().await.unwrap(), headers)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let (s, t, _) = self.send("GET", path, None).await;
        (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
    }

    async fn ok(&self, path: &str) -> Value {
        let (s, v) = self.get(path).await;
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let (s, t, _) = self.send("PUT", path, Some(body)).await;
        (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
    }

    async fn register(&self, job: Value) -> Value {
        let (s, v) = self.put("/v1/jobs", json!({ "Job": job })).await;
        assert_eq!(s, 200, "register: {v}");
        v
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let (s, t, _) = self
            .send("POST", &format!("/_devstack{path}"), Some(body))
            .await;
        assert_eq!(s, 200, "control {path}: {t}");
        serde_json::from_str(&t).unwrap()
    }

    /// Poll until `f` says yes (simulated time is scaled by 0.01).
    async fn until<F: Fn(&Value) -> bool>(&self, path: &str, what: &str, f: F) -> Value {
        for _ in 0..300 {
            let (s, v) = self.get(path).await;
            if s == 200 && f(&v) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (_, v) = self.get(path).await;
        panic!("timed out waiting for {what} at {path}: {v}");
    }
}

fn web_job(id: &str) -> Value {
    json!({
        "ID": id, "Name": id, "Type": "service",
        "TaskGroups": [{
            "Name": "web", "Count": 1,
            "Networks": [{"DynamicPorts": [{"Label": "http", "To": 8080}]}],
            "Services": [{"Name": format!("{id}-web"), "PortLabel": "http", "Tags": ["traefik.enable=true"],
                "Checks": [{"Name": "alive", "Type": "http", "Path": "/health", "Interval": 10_000_000_000u64, "Timeout": 2_000_000_000u64}]}],
            "Update": {"MaxParallel": 1, "MinHealthyTime": 1_000_000_000u64, "HealthyDeadline": 60_000_000_000u64,
                "ProgressDeadline": 120_000_000_000u64, "AutoRevert": true, "HealthCheck": "checks"},
            "Tasks": [{"Name": "server", "Driver": "docker", "Config": {"image": "nginx:1.27"},
                "Resources": {"CPU": 100, "MemoryMB": 128}}]
        }]
    })
}

fn batch_job(id: &str) -> Value {
    json!({"ID": id, "Type": "batch", "TaskGroups": [{"Name": "run", "Count": 1,
        "Tasks": [{"Name": "once", "Driver": "docker", "Config": {"image": "busybox"}}]}]})
}

// §1.7 / §6.4: GET returns the server struct with defaults: Datacenters ["*"], NodePool, Update
// object with integer-nanosecond durations, nulls for empty collections; §1.3 register response.
#[tokio::test]
async fn register_response_and_job_get_carry_server_defaults() {
    let api = Api::start().await;
    let job = json!({"ID": "plain", "TaskGroups": [{"Name": "g",
        "Tasks": [{"Name": "t", "Driver": "docker", "Config": {"image": "x"}}]}]});
    let (status, text, headers) = api.send("PUT", "/v1/jobs", Some(json!({"Job": job}))).await;
    assert_eq!(status, 200, "{text}");
    let resp: Value = serde_json::from_str(&text).unwrap();
    for k in [
        "EvalID",
        "EvalCreateIndex",
        "JobModifyIndex",
        "Warnings",
        "Index",
        "LastContact",
        "KnownLeader",
        "NextToken",
    ] {
        assert!(resp.get(k).is_some(), "register response lacks {k}: {resp}");
    }
    assert_eq!(
        headers["x-nomad-index"].to_str().unwrap(),
        resp["Index"].to_string()
    );
    assert_eq!(resp["JobModifyIndex"], resp["EvalCreateIndex"]);

    let (status, text, headers) = api.send("GET", "/v1/job/plain", None).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-nomad-knownleader"], "true");
    assert_eq!(headers["x-nomad-lastcontact"], "0");
    let j: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(j["Datacenters"], json!(["*"]));
    assert_eq!(j["NodePool"], "default");
    assert_eq!(j["Namespace"], "default");
    assert_eq!(j["Region"], "global");
    assert_eq!(j["Type"], "service");
    assert_eq!(j["Priority"], 50);
    assert_eq!(j["Version"], 0);
    assert_eq!(j["Update"]["MinHealthyTime"], json!(10_000_000_000u64));
    assert_eq!(j["Update"]["HealthyDeadline"], json!(300_000_000_000u64));
    assert!(j["Constraints"].is_null() && j["Meta"].is_null() && j["Periodic"].is_null());
    assert_eq!(j["CreateIndex"], j["JobModifyIndex"]);
    assert_eq!(j["TaskGroups"][0]["Count"], 1);
    assert_eq!(j["TaskGroups"][0]["Tasks"][0]["Resources"]["MemoryMB"], 300);
    assert_eq!(
        j["TaskGroups"][0]["Tasks"][0]["KillTimeout"],
        json!(5_000_000_000u64)
    );

    // §1.6 list stub shape.
    let list = api.ok("/v1/jobs").await;
    let stub = &list[0];
    for k in [
        "ID",
        "ParentID",
        "Name",
        "Namespace",
        "Datacenters",
        "NodePool",
        "Type",
        "Priority",
        "Periodic",
        "ParameterizedJob",
        "Stop",
        "Status",
        "StatusDescription",
        "JobSummary",
        "CreateIndex",
        "ModifyIndex",
        "JobModifyIndex",
        "SubmitTime",
    ] {
        assert!(stub.get(k).is_some(), "stub lacks {k}: {stub}");
    }
    assert_eq!(stub["Periodic"], false);
    assert!(stub.get("Meta").is_none(), "Meta omitted without meta=true");
    let summary = &stub["JobSummary"]["Summary"]["g"];
    for k in [
        "Queued", "Complete", "Failed", "Running", "Starting", "Lost", "Unknown",
    ] {
        assert!(summary.get(k).is_some(), "summary lacks {k}");
    }
    // ?pretty indents.
    let (_, pretty, _) = api.send("GET", "/v1/job/plain?pretty", None).await;
    assert!(pretty.contains("\n  \"ID\""), "{pretty}");
    // §1.6 prefix filter.
    assert_eq!(api.ok("/v1/jobs?prefix=zzz").await, json!([]));
    api.ds.shutdown().await;
}

// §1.1/§1.12: plain-text errors and Nomad's status codes.
#[tokio::test]
async fn errors_are_plain_text_with_nomads_status_codes() {
    let api = Api::start().await;
    let (s, t, h) = api.send("GET", "/v1/job/nope", None).await;
    assert_eq!((s, t.as_str()), (404, "job not found"));
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let (s, t, _) = api.send("GET", "/v1/job/nope/unknown-suffix", None).await;
    assert_eq!((s, t.as_str()), (404, "job not found"));
    let (s, t, _) = api.send("GET", "/v1/job/nope/plan", None).await;
    assert_eq!((s, t.as_str()), (405, "Invalid method"));
    let (s, t, _) = api.send("GET", "/v1/no/such/endpoint", None).await;
    assert_eq!((s, t.as_str()), (404, ""));
    let (s, t, _) = api.send("PUT", "/v1/jobs", None).await;
    assert_eq!((s, t.as_str()), (400, "Request body is empty"));
    let (s, t, _) = api.send("PUT", "/v1/jobs", Some(json!({}))).await;
    assert_eq!((s, t.as_str()), (400, "Job must be specified"));
    let (s, t, _) = api
        .send("PUT", "/v1/jobs", Some(json!({"Job": {"Name": "x"}})))
        .await;
    assert_eq!((s, t.as_str()), (400, "Job ID hasn't been provided"));
    let (s, t, _) = api
        .send("PUT", "/v1/job/other", Some(json!({"Job": web_job("x")})))
        .await;
    assert_eq!((s, t.as_str()), (400, "Job ID does not match name"));
    // §1.10: volume register is PUT only.
    let (s, t, _) = api
        .send("POST", "/v1/volume/csi/v1", Some(json!({"Volumes": []})))
        .await;
    assert_eq!((s, t.as_str()), (405, "Invalid method"));
    // §1.3: validation errors are 500 multierror text.
    let bad = json!({"ID": "bad", "TaskGroups": [{"Name": "g", "Tasks": []}]});
    let (s, t, _) = api.send("PUT", "/v1/jobs", Some(json!({"Job": bad}))).await;
    assert_eq!(s, 500);
    assert!(
        t.starts_with("1 error occurred:\n\t* Task group g validation failed"),
        "{t}"
    );
    // §1.1 bad blocking params.
    let (s, t, _) = api.send("GET", "/v1/jobs?index=1&wait=soon", None).await;
    assert_eq!((s, t.as_str()), (400, "Invalid wait time"));
    let (s, t, _) = api.send("GET", "/v1/jobs?index=x", None).await;
    assert_eq!((s, t.as_str()), (400, "Invalid index"));
    // §1.6: unknown job: allocations [] and deployment null, delete 200 with empty EvalID.
    assert_eq!(api.ok("/v1/job/nope/allocations").await, json!([]));
    assert_eq!(api.ok("/v1/job/nope/deployment").await, Value::Null);
    let (s, t, _) = api.send("DELETE", "/v1/job/nope", None).await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(v["EvalID"], "");
    assert_eq!(v["JobModifyIndex"], 0);
    let (s, t, _) = api.send("GET", "/v1/job/nope/versions", None).await;
    assert_eq!((s, t.as_str()), (404, "job versions not found"));
    api.ds.shutdown().await;
}

// §1.3: EnforceIndex conflicts are 500 with the exact `Enforcing job modify index` texts.
#[tokio::test]
async fn enforce_index_conflicts_are_500_with_exact_texts() {
    let api = Api::start().await;
    let (s, t, _) = api
        .send(
            "PUT",
            "/v1/jobs",
            Some(json!({"Job": web_job("e"), "EnforceIndex": true, "JobModifyIndex": 41})),
        )
        .await;
    assert_eq!(
        (s, t.as_str()),
        (500, "Enforcing job modify index 41: job does not exist")
    );
    let (s, t, _) = api
        .send(
            "PUT",
            "/v1/jobs",
            Some(json!({"Job": web_job("e"), "EnforceIndex": true, "JobModifyIndex": 0})),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    let jmi = api.ok("/v1/job/e").await["JobModifyIndex"]
        .as_u64()
        .unwrap();
    let (s, t, _) = api
        .send(
            "PUT",
            "/v1/jobs",
            Some(json!({"Job": web_job("e"), "EnforceIndex": true, "JobModifyIndex": 0})),
        )
        .await;
    assert_eq!(
        (s, t.as_str()),
        (500, "Enforcing job modify index 0: job already exists")
    );
    let (s, t, _) = api
        .send(
            "PUT",
            "/v1/jobs",
            Some(json!({"Job": web_job("e"), "EnforceIndex": true, "JobModifyIndex": jmi - 1})),
        )
        .await;
    assert_eq!(s, 500);
    assert_eq!(
        t,
        format!(
            "Enforcing job modify index {}: job exists with conflicting job modify index: {jmi}",
            jmi - 1
        )
    );
    let (s, _, _) = api
        .send(
            "PUT",
            "/v1/jobs",
            Some(json!({"Job": web_job("e"), "EnforceIndex": true, "JobModifyIndex": jmi})),
        )
        .await;
    assert_eq!(s, 200);
    // §1.3 type change is 500.
    let mut b = web_job("e");
    b["Type"] = json!("batch");
    let (s, t, _) = api.send("PUT", "/v1/jobs", Some(json!({"Job": b}))).await;
    assert_eq!(
        (s, t.as_str()),
        (500, "cannot update job from type \"service\" to \"batch\"")
    );
    api.ds.shutdown().await;
}

// §1.1/§6.6: a blocked `/v1/jobs?index=N` returns when a job registers; a timeout is 200 with
// the unchanged index.
#[tokio::test]
async fn blocking_job_list_wakes_on_register_and_times_out_with_same_index() {
    let api = Api::start().await;
    let (_, _, h) = api.send("GET", "/v1/jobs", None).await;
    let index: u64 = h["x-nomad-index"].to_str().unwrap().parse().unwrap();
    let started = std::time::Instant::now();
    let (s, _, h2) = api
        .send("GET", &format!("/v1/jobs?index={index}&wait=150ms"), None)
        .await;
    assert_eq!(s, 200);
    assert!(started.elapsed() >= Duration::from_millis(140));
    assert_eq!(h2["x-nomad-index"].to_str().unwrap(), index.to_string());

    let url = api.url(&format!("/v1/jobs?index={index}&wait=5s"));
    let http = api.http.clone();
    let waiter = tokio::spawn(async move {
        let r = http.get(url).send().await.unwrap();
        let idx: u64 = r.headers()["x-nomad-index"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        (idx, r.json::<Value>().await.unwrap())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiter.is_finished(),
        "blocking query returned before any change"
    );
    let started = std::time::Instant::now();
    api.register(batch_job("wake")).await;
    let (idx, list) = waiter.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(idx > index);
    assert_eq!(list[0]["ID"], "wake");
    api.ds.shutdown().await;
}

// §1.4/§6.2/§6.3: version bump rules.
#[tokio::test]
async fn version_rules_unchanged_meta_stop_purge() {
    let api = Api::start().await;
    let first = api.register(batch_job("v")).await;
    let j0 = api.ok("/v1/job/v").await;
    assert_eq!(j0["Version"], 0);
    // Status changes (pending → running → dead) bump only ModifyIndex.
    let settled = api
        .until("/v1/job/v", "dead", |j| j["Status"] == "dead")
        .await;
    assert!(settled["ModifyIndex"].as_u64() > settled["JobModifyIndex"].as_u64());
    assert_eq!(settled["JobModifyIndex"], j0["JobModifyIndex"]);
    let again = api.register(batch_job("v")).await;
    assert_eq!(
        again["JobModifyIndex"], settled["ModifyIndex"],
        "JobModifyIndex = stored ModifyIndex"
    );
    let j1 = api.ok("/v1/job/v").await;
    assert_eq!(j1["Version"], 0, "unchanged re-register keeps the version");
    assert_ne!(
        again["EvalID"], first["EvalID"],
        "but creates a new evaluation"
    );
    assert_eq!(j1["JobModifyIndex"], j0["JobModifyIndex"]);

    let mut meta = batch_job("v");
    meta["Meta"] = json!({"owner": "drover"});
    let r = api.register(meta).await;
    let j2 = api.ok("/v1/job/v").await;
    assert_eq!(j2["Version"], 1, "a Meta change is a new version");
    assert_eq!(r["JobModifyIndex"], j2["JobModifyIndex"]);
    assert!(j2["JobModifyIndex"].as_u64() > j1["JobModifyIndex"].as_u64());

    let (s, _, _) = api.send("DELETE", "/v1/job/v", None).await;
    assert_eq!(s, 200);
    let j3 = api.ok("/v1/job/v").await;
    assert_eq!(j3["Version"], 2, "stop creates a version");
    assert_eq!(j3["Stop"], true);
    let versions = api.ok("/v1/job/v/versions?diffs=true").await;
    let vs: Vec<u64> = versions["Versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["Version"].as_u64().unwrap())
        .collect();
    assert_eq!(vs, vec![2, 1, 0], "newest first");
    assert!(versions.get("Index").is_some() && versions["Diffs"].is_array());
    api.until("/v1/job/v", "dead after stop", |j| j["Status"] == "dead")
        .await;

    let (s, _, _) = api.send("DELETE", "/v1/job/v?purge=true", None).await;
    assert_eq!(s, 200);
    let (s, _) = api.get("/v1/job/v").await;
    assert_eq!(s, 404);
    api.ds.shutdown().await;
}

// §1.6 versions keep 6, submission by version, revert creates a version, EnforcePriorVersion.
#[tokio::test]
async fn versions_keep_six_and_revert_and_submission() {
    let api = Api::start().await;
    for i in 0..8 {
        let mut j = batch_job("r");
        j["Meta"] = json!({"n": i.to_string()});
        let (s, v) = api
            .put("/v1/jobs", json!({"Job": j, "Submission": {"Source": format!("job \"r\" {{ # {i}\n}}"), "Format": "hcl2", "VariableFlags": null, "Variables": ""}}))
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let versions = api.ok("/v1/job/r/versions").await;
    assert_eq!(versions["Versions"].as_array().unwrap().len(), 6);
    assert_eq!(versions["Versions"][0]["Version"], 7);
    let sub = api.ok("/v1/job/r/submission?version=6").await;
    assert!(sub["Source"].as_str().unwrap().contains("# 6"));
    assert_eq!(sub["Format"], "hcl2");
    let (s, t, _) = api
        .send(
            "PUT",
            "/v1/job/r/revert",
            Some(json!({"JobID": "r", "JobVersion": 5, "EnforcePriorVersion": 6})),
        )
        .await;
    assert_eq!(
        (s, t.as_str()),
        (500, "Current job has version 7; enforcing version 6")
    );
    let (s, t, _) = api
        .send(
            "PUT",
            "/v1/job/r/revert",
            Some(json!({"JobID": "r", "JobVersion": 7})),
        )
        .await;
    assert_eq!((s, t.as_str()), (500, "can't revert to current version"));
    let (s, v) = api
        .put(
            "/v1/job/r/revert",
            json!({"JobID": "r", "JobVersion": 5, "EnforcePriorVersion": 7}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let j = api.ok("/v1/job/r").await;
    assert_eq!(j["Version"], 8);
    assert_eq!(j["Meta"]["n"], "5");
    api.ds.shutdown().await;
}

// §1.5: plan returns DesiredTGUpdates from a dry run, JobModifyIndex 0 for a new job and the
// current one otherwise, and persists nothing.
#[tokio::test]
async fn plan_annotations_and_job_modify_index() {
    let api = Api::start().await;
    let (s, plan) = api
        .put("/v1/job/p/plan", json!({"Job": web_job("p"), "Diff": true}))
        .await;
    assert_eq!(s, 200, "{plan}");
    assert_eq!(plan["JobModifyIndex"], 0);
    assert_eq!(plan["Annotations"]["DesiredTGUpdates"]["web"]["Place"], 1);
    assert!(plan["FailedTGAllocs"].is_null());
    // The index is a header only, not in the body (measured on Nomad 2.0.5, api-facts §7).
    assert!(plan.get("Index").is_none());
    assert_eq!(api.ok("/v1/jobs").await, json!([]), "plan persists nothing");

    api.register(web_job("p")).await;
    api.until("/v1/job/p/allocations", "alloc placed", |v| {
        v.as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    let jmi = api.ok("/v1/job/p").await["JobModifyIndex"].clone();
    let (_, same) = api
        .put("/v1/job/p/plan", json!({"Job": web_job("p"), "Diff": true}))
        .await;
    assert_eq!(same["JobModifyIndex"], jmi);
    assert_eq!(same["Annotations"]["DesiredTGUpdates"]["web"]["Ignore"], 1);
    assert_eq!(same["Annotations"]["DesiredTGUpdates"]["web"]["Place"], 0);

    let mut image = web_job("p");
    image["TaskGroups"][0]["Tasks"][0]["Config"]["image"] = json!("nginx:1.28");
    let (_, destructive) = api
        .put("/v1/job/p/plan", json!({"Job": image, "Diff": true}))
        .await;
    assert_eq!(
        destructive["Annotations"]["DesiredTGUpdates"]["web"]["DestructiveUpdate"],
        1
    );

    let mut count = web_job("p");
    count["TaskGroups"][0]["Count"] = json!(3);
    let (_, more) = api.put("/v1/job/p/plan", json!({"Job": count})).await;
    assert_eq!(more["Annotations"]["DesiredTGUpdates"]["web"]["Place"], 2);
    assert_eq!(
        more["Annotations"]["DesiredTGUpdates"]["web"]["InPlaceUpdate"],
        1
    );

    // An unsatisfiable constraint shows up in FailedTGAllocs.
    let mut arch = web_job("q");
    arch["Constraints"] =
        json!([{"LTarget": "${attr.cpu.arch}", "RTarget": "riscv", "Operand": "="}]);
    let (_, failed) = api.put("/v1/job/q/plan", json!({"Job": arch})).await;
    let m = &failed["FailedTGAllocs"]["web"];
    assert_eq!(m["NodesEvaluated"], 3);
    assert_eq!(m["ConstraintFiltered"]["${attr.cpu.arch} = riscv"], 3);
    api.ds.shutdown().await;
}

// §1.8: a service job runs, turns healthy, its deployment succeeds and the version is stable;
// Consul receives the services.
#[tokio::test]
async fn deployment_succeeds_and_allocs_become_healthy() {
    let api = Api::start().await;
    api.register(web_job("d")).await;
    let d = api
        .until("/v1/job/d/deployment", "successful deployment", |d| {
            d["Status"] == "successful"
        })
        .await;
    assert_eq!(d["StatusDescription"], "Deployment completed successfully");
    assert_eq!(d["TaskGroups"]["web"]["HealthyAllocs"], 1);
    assert_eq!(d["TaskGroups"]["web"]["DesiredTotal"], 1);
    let allocs = api.ok("/v1/job/d/allocations").await;
    let a = &allocs[0];
    assert_eq!(a["ClientStatus"], "running");
    assert_eq!(a["DeploymentStatus"]["Healthy"], true);
    assert_eq!(a["TaskStates"]["server"]["State"], "running");
    assert_eq!(a["Name"], "d.web[0]");
    let full = api
        .ok(&format!("/v1/allocation/{}", a["ID"].as_str().unwrap()))
        .await;
    assert_eq!(full["Job"]["ID"], "d");
    let j = api
        .until("/v1/job/d", "stable", |j| j["Stable"] == true)
        .await;
    assert_eq!(j["Status"], "running");
    let summary = api.ok("/v1/job/d/summary").await;
    assert_eq!(summary["Summary"]["web"]["Running"], 1);
    // §1.1: the summary moves with allocation churn.
    assert!(summary["ModifyIndex"].as_u64() > summary["CreateIndex"].as_u64());

    // Consul follows the allocation (checked when the devstack Consul serves its catalog).
    let consul = format!("{}/v1/health/service/d-web", api.ds.consul_url());
    let mut entries = Value::Null;
    let mut passing = false;
    for _ in 0..200 {
        let r = api.http.get(&consul).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        entries = r.json().await.unwrap();
        passing = entries[0]["Checks"].as_array().is_some_and(|c| {
            c.iter()
                .filter(|c| c["ServiceID"] != "")
                .all(|c| c["Status"] == "passing")
        });
        if passing {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        passing,
        "the allocation's service checks pass in Consul: {entries}"
    );
    let svc = &entries[0]["Service"];
    let alloc_id = a["ID"].as_str().unwrap();
    assert_eq!(
        svc["ID"],
        format!("_nomad-task-{alloc_id}-group-web-d-web-http")
    );
    assert_eq!(svc["Tags"], json!(["traefik.enable=true"]));
    assert_eq!(svc["Meta"]["external-source"], "nomad");
    assert_eq!(entries[0]["Node"]["Node"], a["NodeName"]);
    // Stopping the job removes the instance.
    api.send("DELETE", "/v1/job/d", None).await;
    let mut gone = false;
    for _ in 0..200 {
        let v: Value = api
            .http
            .get(&consul)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v == json!([]) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "service deregistered after stop");
    api.ds.shutdown().await;
}

// §1.6: a failing allocation fails the deployment; auto_revert rolls back to the stable version
// with the exact description.
#[tokio::test]
async fn failed_alloc_fails_deployment_and_auto_reverts() {
    let api = Api::start().await;
    api.register(web_job("ar")).await;
    api.until("/v1/job/ar", "v0 stable", |j| j["Stable"] == true)
        .await;
    let mut v1 = web_job("ar");
    v1["TaskGroups"][0]["Tasks"][0]["Config"]["image"] = json!("nginx:broken");
    // A long min_healthy_time keeps the alloc undecided while the test fails it.
    v1["TaskGroups"][0]["Update"]["MinHealthyTime"] = json!(200_000_000_000u64);
    v1["TaskGroups"][0]["Update"]["HealthyDeadline"] = json!(500_000_000_000u64);
    v1["TaskGroups"][0]["Update"]["ProgressDeadline"] = json!(900_000_000_000u64);
    api.register(v1).await;
    let allocs = api
        .until("/v1/job/ar/allocations", "v1 alloc", |v| {
            v.as_array()
                .unwrap()
                .iter()
                .any(|a| a["JobVersion"] == 1 && a["ClientStatus"] == "running")
        })
        .await;
    let id = allocs
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["JobVersion"] == 1)
        .unwrap()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    api.control(
        &format!("/nomad/allocation/{id}/fail"),
        json!({"task": "server"}),
    )
    .await;
    let deps = api
        .until("/v1/job/ar/deployments", "failed deployment", |v| {
            v.as_array()
                .unwrap()
                .iter()
                .any(|d| d["Status"] == "failed")
        })
        .await;
    let failed = deps
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["Status"] == "failed")
        .unwrap();
    assert_eq!(
        failed["StatusDescription"],
        "Failed due to unhealthy allocations - rolling back to job version 0"
    );
    let j = api
        .until("/v1/job/ar", "reverted", |j| j["Version"] == 2)
        .await;
    assert_eq!(
        j["TaskGroups"][0]["Tasks"][0]["Config"]["image"],
        "nginx:1.27"
    );
    let a = api.ok(&format!("/v1/allocation/{id}")).await;
    assert_eq!(a["ClientStatus"], "failed");
    assert_eq!(a["TaskStates"]["server"]["Failed"], true);
    assert_eq!(a["DeploymentStatus"]["Healthy"], false);
    api.ds.shutdown().await;
}

// §1.5 rolling update: with max_parallel 1 a destructive change of 3 allocations plans as
// `1 create/destroy update, 2 ignore` and then rolls through one at a time to success.
#[tokio::test]
async fn rolling_update_respects_max_parallel() {
    let api = Api::start().await;
    let mut j = web_job("roll");
    j["TaskGroups"][0]["Count"] = json!(3);
    api.register(j.clone()).await;
    api.until("/v1/job/roll", "stable v0", |j| j["Stable"] == true)
        .await;
    j["TaskGroups"][0]["Tasks"][0]["Config"]["image"] = json!("nginx:1.28");
    let (_, plan) = api
        .put("/v1/job/roll/plan", json!({"Job": j, "Diff": true}))
        .await;
    let u = &plan["Annotations"]["DesiredTGUpdates"]["web"];
    assert_eq!(
        (u["DestructiveUpdate"].as_u64(), u["Ignore"].as_u64()),
        (Some(1), Some(2)),
        "{u}"
    );
    api.register(j).await;
    let d = api
        .until("/v1/job/roll/deployment", "v1 successful", |d| {
            d["JobVersion"] == 1 && d["Status"] == "successful"
        })
        .await;
    assert_eq!(d["TaskGroups"]["web"]["HealthyAllocs"], 3);
    let allocs = api.ok("/v1/job/roll/allocations").await;
    let live: Vec<&Value> = allocs
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["DesiredStatus"] == "run")
        .collect();
    assert_eq!(live.len(), 3);
    assert!(live.iter().all(|a| a["JobVersion"] == 1));
    let evals = api.ok("/v1/job/roll/evaluations").await;
    assert!(
        evals
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["TriggeredBy"] == "deployment-watcher")
            .count()
            >= 2
    );
    api.ds.shutdown().await;
}

// Drain: allocations on the node are stopped and replaced on other nodes.
#[tokio::test]
async fn draining_a_node_reschedules_allocations_elsewhere() {
    let api = Api::start().await;
    let mut j = web_job("dr");
    j["TaskGroups"][0]["Count"] = json!(2);
    api.register(j).await;
    let allocs = api
        .until("/v1/job/dr/allocations", "2 running", |v| {
            v.as_array()
                .unwrap()
                .iter()
                .filter(|a| a["ClientStatus"] == "running")
                .count()
                == 2
        })
        .await;
    let node = allocs[0]["NodeName"].as_str().unwrap().to_string();
    api.control(&format!("/nomad/node/{node}/drain"), json!({}))
        .await;
    let after = api
        .until("/v1/job/dr/allocations", "replacements running", |v| {
            let live: Vec<&Value> = v
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["DesiredStatus"] == "run" && a["ClientStatus"] == "running")
                .collect();
            live.len() == 2 && live.iter().all(|a| a["NodeName"] != json!(node))
        })
        .await;
    assert!(
        after
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["NodeName"] == json!(node) && a["DesiredStatus"] == "stop")
    );
    let n = api.ok(&format!("/v1/node/{node}")).await;
    assert_eq!(n["SchedulingEligibility"], "ineligible");
    // Lost node: allocs become lost and are replaced.
    let other = after
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["DesiredStatus"] == "run")
        .unwrap()["NodeName"]
        .as_str()
        .unwrap()
        .to_string();
    api.control(&format!("/nomad/node/{other}/lost"), json!({}))
        .await;
    api.until("/v1/job/dr/allocations", "lost replaced", |v| {
        let arr = v.as_array().unwrap();
        arr.iter()
            .any(|a| a["ClientStatus"] == "lost" && a["DesiredStatus"] == "stop")
            && arr
                .iter()
                .filter(|a| a["ClientStatus"] == "running" && a["DesiredStatus"] == "run")
                .count()
                == 2
    })
    .await;
    api.ds.shutdown().await;
}

// Batch jobs run to completion; fail-next makes the next placement fail.
#[tokio::test]
async fn batch_job_completes_and_fail_next_fails() {
    let api = Api::start().await;
    api.register(batch_job("b")).await;
    api.until("/v1/job/b/allocations", "complete", |v| {
        v[0]["ClientStatus"] == "complete"
    })
    .await;
    let j = api
        .until("/v1/job/b", "dead", |j| j["Status"] == "dead")
        .await;
    assert_eq!(j["Type"], "batch");
    let s = api.ok("/v1/job/b/summary").await;
    assert_eq!(s["Summary"]["run"]["Complete"], 1);

    api.control("/nomad/job/bf/fail-next", json!({})).await;
    api.register(batch_job("bf")).await;
    let a = api
        .until("/v1/job/bf/allocations", "failed", |v| {
            v[0]["ClientStatus"] == "failed"
        })
        .await;
    assert_eq!(a[0]["TaskStates"]["once"]["Failed"], true);
    api.ds.shutdown().await;
}

// Nomad's reconciler (scheduler/reconcile.go, filterOldTerminalAllocs): a completed batch
// allocation is not run again by a register of the same spec, but terminal allocations of an
// older job version, or of a purged job with the same ID, no longer count: a new version runs
// again. (The way to re-run a batch job is a changed spec, e.g. a meta value.)
#[tokio::test]
async fn a_new_version_of_a_completed_batch_job_runs_again_the_same_spec_does_not() {
    let api = Api::start().await;
    let completed = |n: usize| {
        move |v: &Value| {
            v.as_array()
                .is_some_and(|a| a.len() == n && a.iter().all(|x| x["ClientStatus"] == "complete"))
        }
    };
    api.register(batch_job("seed")).await;
    api.until("/v1/job/seed/allocations", "one complete", completed(1))
        .await;
    // The same spec again: no new version, the completed allocation stands.
    let same = api.register(batch_job("seed")).await;
    api.until(
        &format!("/v1/evaluation/{}", same["EvalID"].as_str().unwrap()),
        "evaluated",
        |e| e["Status"] == "complete",
    )
    .await;
    let allocs = api.ok("/v1/job/seed/allocations").await;
    assert_eq!(allocs.as_array().map(Vec::len), Some(1), "{allocs}");
    assert_eq!(api.ok("/v1/job/seed").await["Version"], 0);

    // A changed meta is a new version: a new allocation runs to completion.
    let mut changed = batch_job("seed");
    changed["Meta"] = json!({"run": "2"});
    api.register(changed).await;
    let allocs = api
        .until("/v1/job/seed/allocations", "two complete", completed(2))
        .await;
    let versions: Vec<&Value> = allocs
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["JobVersion"])
        .collect();
    assert!(
        versions.contains(&&json!(0)) && versions.contains(&&json!(1)),
        "{allocs}"
    );
    api.ds.shutdown().await;
}

fn volume(id: &str, plugin: &str) -> Value {
    json!({"Volumes": [{"ID": id, "Name": id, "PluginID": plugin,
        "RequestedCapabilities": [{"AccessMode": "single-node-writer", "AttachmentMode": "file-system"}],
        "MountOptions": {"FSType": "ext4", "MountFlags": ["noatime"]}, "Secrets": {"k": "v"}}]})
}

fn csi_job(id: &str, vol: &str) -> Value {
    let mut j = batch_job(id);
    j["Type"] = json!("service");
    j["TaskGroups"][0]["Volumes"] = json!({"data": {"Name": "data", "Type": "csi", "Source": vol,
        "ReadOnly": false, "AccessMode": "single-node-writer", "AttachmentMode": "file-system"}});
    j
}

// §1.10: CSI create needs a healthy controller; single-node-writer blocks a second writer;
// deleting a claimed volume is `volume in use`; unknown deregister is 500 `volume not found: id`.
#[tokio::test]
async fn csi_volumes_plugins_and_claims() {
    let api = Api::start().await;
    assert_eq!(api.ok("/v1/volumes").await, json!([]), "no type → []");
    let (s, v) = api
        .put("/v1/volume/csi/data/create", volume("data", "gluster"))
        .await;
    assert_eq!(
        (s, v),
        (500, json!("no CSI plugin named: gluster could be found"))
    );
    api.control(
        "/nomad/csi/plugin",
        json!({"id": "gluster", "controller": true, "healthy": false}),
    )
    .await;
    let (s, v) = api
        .put("/v1/volume/csi/data/create", volume("data", "gluster"))
        .await;
    assert_eq!(
        (s, v),
        (500, json!("no healthy controllers for CSI plugin: gluster"))
    );
    api.control(
        "/nomad/csi/plugin",
        json!({"id": "gluster", "controller": true, "healthy": true}),
    )
    .await;
    let (s, v) = api
        .put("/v1/volume/csi/data/create", volume("data", "gluster"))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = api
        .put(
            "/v1/volume/csi/x",
            json!({"Volumes": [{"ID": "", "PluginID": ""}]}),
        )
        .await;
    assert_eq!(s, 500);
    assert_eq!(
        v,
        json!(
            "validation: missing volume id, missing plugin id, must include at least one capability block"
        )
    );
    let got = api.ok("/v1/volume/csi/data").await;
    assert!(got["Secrets"].is_null());
    assert_eq!(got["MountOptions"]["MountFlags"], json!(["[REDACTED]"]));
    let list = api.ok("/v1/volumes?type=csi").await;
    assert_eq!(list[0]["ID"], "data");
    assert_eq!(list[0]["Schedulable"], true);
    let plugins = api.ok("/v1/plugins?type=csi").await;
    assert_eq!(plugins[0]["ID"], "gluster");
    assert_eq!(plugins[0]["ControllersHealthy"], 1);
    // Re-register with another plugin is refused.
    let (s, v) = api
        .put("/v1/volume/csi/data", volume("data", "other"))
        .await;
    assert_eq!(s, 500, "{v}");

    api.register(csi_job("w1", "data")).await;
    api.until("/v1/job/w1/allocations", "writer running", |v| {
        v[0]["ClientStatus"] == "running"
    })
    .await;
    let got = api.ok("/v1/volume/csi/data").await;
    assert_eq!(got["WriteAllocs"].as_object().unwrap().len(), 1);
    assert_eq!(got["Allocations"].as_array().unwrap().len(), 1);
    api.register(csi_job("w2", "data")).await;
    let evals = api
        .until("/v1/job/w2/evaluations", "blocked eval", |v| {
            v.as_array()
                .unwrap()
                .iter()
                .any(|e| e["Status"] == "blocked")
        })
        .await;
    let failed = evals
        .as_array()
        .unwrap()
        .iter()
        .find(|e| !e["FailedTGAllocs"].is_null())
        .unwrap();
    assert_eq!(
        failed["FailedTGAllocs"]["run"]["ConstraintFiltered"]["CSI volume data has exhausted its available writer claims"],
        3
    );
    let (s, t, _) = api.send("DELETE", "/v1/volume/csi/data", None).await;
    assert_eq!((s, t.as_str()), (500, "volume in use: data"));
    let (s, t, _) = api.send("DELETE", "/v1/volume/csi/ghost", None).await;
    assert_eq!((s, t.as_str()), (500, "volume not found: ghost"));
    // A job needing a missing volume fails placement with Nomad's metric key.
    let (_, plan) = api
        .put("/v1/job/m/plan", json!({"Job": csi_job("m", "missing")}))
        .await;
    assert_eq!(
        plan["FailedTGAllocs"]["run"]["ConstraintFiltered"]["missing CSI Volume missing"],
        3
    );
    // Stopping the writer releases the claim; the blocked job then places.
    api.send("DELETE", "/v1/job/w1", None).await;
    api.until("/v1/job/w2/allocations", "second writer", |v| {
        v.as_array()
            .is_some_and(|a| a.iter().any(|x| x["ClientStatus"] == "running"))
    })
    .await;
    api.send("DELETE", "/v1/job/w2", None).await;
    api.until("/v1/volume/csi/data", "unclaimed", |v| {
        v["WriteAllocs"].as_object().is_some_and(|m| m.is_empty())
    })
    .await;
    let (s, t, _) = api.send("DELETE", "/v1/volume/csi/data/delete", None).await;
    assert_eq!((s, t.as_str()), (200, ""));
    api.ds.shutdown().await;
}

// §1.11: variables CAS conflicts are 409 with the current variable; locks acquire/release.
#[tokio::test]
async fn variables_cas_and_locks() {
    let api = Api::start().await;
    let (s, t, _) = api.send("GET", "/v1/var/app/config", None).await;
    assert_eq!((s, t.as_str()), (404, "variable not found"));
    let (s, t, _) = api
        .send(
            "PUT",
            "/v1/var/app/config",
            Some(json!({"Path": "app/config"})),
        )
        .await;
    assert_eq!(
        (s, t.as_str()),
        (400, "variable missing required Items object")
    );
    let (s, v) = api
        .put("/v1/var/app/config?cas=0", json!({"Items": {"a": "1"}}))
        .await;
    assert_eq!(s, 200, "{v}");
    let idx = v["ModifyIndex"].as_u64().unwrap();
    let (s, v) = api
        .put("/v1/var/app/config?cas=0", json!({"Items": {"a": "2"}}))
        .await;
    assert_eq!(s, 409);
    assert_eq!(v["Items"]["a"], "1");
    assert_eq!(v["ModifyIndex"], idx);
    let (s, _) = api
        .put(
            &format!("/v1/var/app/config?cas={idx}"),
            json!({"Items": {"a": "2"}}),
        )
        .await;
    assert_eq!(s, 200);
    let list = api.ok("/v1/vars?prefix=app").await;
    assert_eq!(list[0]["Path"], "app/config");
    assert!(list[0].get("Items").is_none());

    let (s, v) = api
        .put(
            "/v1/var/app/lock?lock-acquire",
            json!({"Items": {"leader": "me"}, "Lock": {"TTL": "15s"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["Lock"]["TTL"], "15s");
    let lock_id = v["Lock"]["ID"].as_str().unwrap().to_string();
    let (s, _) = api
        .put(
            "/v1/var/app/lock?lock-acquire",
            json!({"Lock": {"TTL": "15s"}}),
        )
        .await;
    assert_eq!(s, 409, "a held lock cannot be acquired again");
    let (s, _) = api
        .put("/v1/var/app/lock?lock-acquire&cas=1", json!({"Lock": {}}))
        .await;
    assert_eq!(s, 400);
    let (s, v) = api
        .put(
            "/v1/var/app/lock?lock-renew",
            json!({"Lock": {"ID": lock_id}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = api
        .put(
            "/v1/var/app/lock?lock-release",
            json!({"Lock": {"ID": "wrong"}}),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    let (s, v) = api
        .put(
            "/v1/var/app/lock?lock-release",
            json!({"Lock": {"ID": lock_id}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v.get("Lock").is_none());
    let (s, t, _) = api
        .send(
            "PUT",
            "/v1/var/app/lock?lock-release",
            Some(json!({"Lock": {"ID": lock_id}})),
        )
        .await;
    assert_eq!((s, t.as_str()), (409, "variable doesn't hold a lock"));
    let (s, t, _) = api.send("DELETE", "/v1/var/app/config?cas=1", None).await;
    assert_eq!(s, 409, "{t}");
    let (s, t, _) = api.send("DELETE", "/v1/var/app/config", None).await;
    assert_eq!((s, t.as_str()), (204, ""));

    // §1.11 a lock whose TTL (scaled) runs out without renewal is released.
    let (s, v) = api
        .put(
            "/v1/var/app/ttl?lock-acquire",
            json!({"Items": {"a": "b"}, "Lock": {"TTL": "10s"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = api
        .put(
            "/v1/var/app/ttl?lock-acquire",
            json!({"Lock": {"TTL": "10s"}}),
        )
        .await;
    assert_eq!(s, 409);
    api.until("/v1/var/app/ttl", "lock expired", |v| {
        v.get("Lock").is_none()
    })
    .await;
    // Free again once the lock delay (15 s by default, scaled) has passed after the expiry;
    // devstack_var_locks.rs checks that it is not free before.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (s, v) = api
            .put(
                "/v1/var/app/ttl?lock-acquire",
                json!({"Lock": {"TTL": "10s"}}),
            )
            .await;
        if s == 200 {
            break;
        }
        assert_eq!(s, 409, "{v}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the expired lock never became free: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (s, t, _) = api
        .send(
            "PUT",
            "/v1/var/app/ttl?lock-acquire",
            Some(json!({"Lock": {"TTL": "1s"}})),
        )
        .await;
    assert_eq!(s, 400, "TTL below 10s: {t}");
    api.ds.shutdown().await;
}

// Vault templates: a task reading a secret that is missing stays pending with a Template event.
#[tokio::test]
async fn vault_template_waits_for_missing_secret() {
    let api = Api::start().await;
    let mut j = web_job("vt");
    j["TaskGroups"][0]["Tasks"][0]["Templates"] = json!([{"DestPath": "secrets/env", "Envvars": true,
        "EmbeddedTmpl": "{{ with secret \"nomad/default/nothere\" }}X={{ .Data.data.x }}{{ end }}"}]);
    api.register(j.clone()).await;
    let a = api
        .until("/v1/job/vt/allocations", "template event", |v| {
            v[0]["TaskStates"]["server"]["Events"]
                .as_array()
                .is_some_and(|e| {
                    e.iter().any(|ev| {
                        ev["Type"] == "Template"
                            && ev["DisplayMessage"] == "Missing: vault.read(nomad/default/nothere)"
                    })
                })
        })
        .await;
    assert_eq!(a[0]["ClientStatus"], "pending");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        api.ok("/v1/job/vt/allocations").await[0]["ClientStatus"],
        "pending"
    );

    // update.healthy_deadline: the waiting alloc turns unhealthy and fails the deployment;
    // with no stable version there is nothing to revert to.
    let mut short = web_job("vd");
    short["TaskGroups"][0]["Tasks"][0]["Templates"] =
        j["TaskGroups"][0]["Tasks"][0]["Templates"].clone();
    short["TaskGroups"][0]["Update"]["HealthyDeadline"] = json!(5_000_000_000u64);
    api.register(short).await;
    let d = api
        .until("/v1/job/vd/deployment", "failed", |d| {
            d["Status"] == "failed"
        })
        .await;
    assert_eq!(
        d["StatusDescription"],
        "Failed due to unhealthy allocations - no stable job version to auto revert to"
    );
    assert_eq!(
        api.ok("/v1/job/vd/allocations").await[0]["DeploymentStatus"]["Healthy"],
        false
    );
    api.ds.shutdown().await;
}

// Status, agent, nodes, namespaces.
#[tokio::test]
async fn status_agent_nodes_and_namespaces() {
    let api = Api::start().await;
    assert_eq!(api.ok("/v1/status/leader").await, json!("127.0.0.1:4647"));
    assert_eq!(api.ok("/v1/agent/self").await["config"]["Region"], "global");
    assert_eq!(api.ok("/v1/regions").await, json!(["global"]));
    let nodes = api.ok("/v1/nodes").await;
    let names: Vec<&str> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Hestia", "Heracles", "Nyx"]);
    let hestia = api.ok("/v1/node/hestia").await;
    assert_eq!(hestia["Attributes"]["cpu.arch"], "amd64");
    let (s, _, _) = api
        .send(
            "PUT",
            "/v1/namespace/media",
            Some(json!({"Description": "media"})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(api.ok("/v1/namespace/media").await["Description"], "media");
    let mut j = batch_job("nsjob");
    j["Namespace"] = json!("media");
    api.register(j).await;
    assert_eq!(
        api.ok("/v1/jobs").await,
        json!([]),
        "default namespace only"
    );
    let all = api.ok("/v1/jobs?namespace=*").await;
    assert_eq!(all[0]["Namespace"], "media");
    let (s, _) = api.get("/v1/job/nsjob?namespace=media").await;
    assert_eq!(s, 200);
    // arm64-only job lands on an arm64 node.
    let mut arm = web_job("arm");
    arm["Constraints"] =
        json!([{"LTarget": "${attr.cpu.arch}", "RTarget": "arm64", "Operand": "="}]);
    api.register(arm).await;
    let a = api
        .until("/v1/job/arm/allocations", "placed", |v| {
            v.as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
    assert!(matches!(
        a[0]["NodeName"].as_str(),
        Some("Heracles") | Some("Nyx")
    ));
    api.ds.shutdown().await;
}

// Node drain/eligibility over the HTTP API, and job scaling (a scale re-registers the job).
#[tokio::test]
async fn node_drain_api_and_job_scale() {
    let api = Api::start().await;
    let nyx = api.ok("/v1/node/nyx").await;
    let id = nyx["ID"].as_str().unwrap().to_string();
    let (s, v) = api
        .put(
            &format!("/v1/node/{id}/drain"),
            json!({"DrainSpec": {"Deadline": 3_600_000_000_000u64}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["NodeModifyIndex"].as_u64().unwrap() > 0);
    let n = api
        .until(&format!("/v1/node/{id}"), "drain done", |n| {
            n["Drain"] == false
        })
        .await;
    assert_eq!(n["SchedulingEligibility"], "ineligible");
    let (s, _) = api
        .put(
            &format!("/v1/node/{id}/eligibility"),
            json!({"Eligibility": "eligible"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        api.ok("/v1/node/nyx").await["SchedulingEligibility"],
        "eligible"
    );
    let (s, t, _) = api
        .send(
            "PUT",
            &format!("/v1/node/{id}/eligibility"),
            Some(json!({"Eligibility": "maybe"})),
        )
        .await;
    assert_eq!(s, 400, "{t}");

    let mut j = web_job("sc");
    j["TaskGroups"][0]["Scaling"] = json!({"Min": 1, "Max": 5, "Enabled": true});
    api.register(j.clone()).await;
    let (s, v) = api
        .put(
            "/v1/job/sc/scale",
            json!({"Count": 3, "Target": {"Group": "web"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let job = api.ok("/v1/job/sc").await;
    assert_eq!(job["Version"], 1);
    assert_eq!(job["TaskGroups"][0]["Count"], 3);
    api.until("/v1/job/sc/allocations", "3 allocs", |v| {
        v.as_array().is_some_and(|a| a.len() == 3)
    })
    .await;
    let st = api.ok("/v1/job/sc/scale").await;
    assert_eq!(st["TaskGroups"]["web"]["Desired"], 3);
    // PreserveCounts keeps the scaled count of a group with a scaling block.
    let mut again = j.clone();
    again["Meta"] = json!({"x": "y"});
    let (s, _) = api
        .put("/v1/jobs", json!({"Job": again, "PreserveCounts": true}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(api.ok("/v1/job/sc").await["TaskGroups"][0]["Count"], 3);
    api.ds.shutdown().await;
}

// Garbage input is answered with an error status, never a dropped connection.
#[tokio::test]
async fn garbage_bodies_get_error_statuses() {
    let api = Api::start().await;
    let bodies = [
        (
            "PUT",
            "/v1/jobs",
            json!({"Job": {"ID": "g", "TaskGroups": [1, "x", null]}}),
        ),
        (
            "PUT",
            "/v1/jobs",
            json!({"Job": {"ID": "g", "TaskGroups": {"a": 1}}}),
        ),
        ("PUT", "/v1/jobs", json!({"Job": "nope"})),
        (
            "PUT",
            "/v1/job/g/plan",
            json!({"Job": {"ID": "g", "TaskGroups": [{"Tasks": [7]}]}}),
        ),
        ("PUT", "/v1/volume/csi/x", json!({"Volumes": [1, null]})),
        ("PUT", "/v1/volume/csi/x/create", json!({"Volumes": "x"})),
        ("PUT", "/v1/var/a", json!({"Items": [1, 2]})),
        (
            "PUT",
            "/v1/var/a?lock-acquire",
            json!({"Lock": {"TTL": "soon"}}),
        ),
        ("PUT", "/v1/job/g/revert", json!({"JobID": 5})),
        ("PUT", "/v1/job/g/scale", json!({"Count": "x"})),
        ("PUT", "/v1/node/hestia/drain", json!({"DrainSpec": 3})),
        ("PUT", "/v1/jobs/parse", json!({"JobHCL": 12})),
    ];
    for (m, path, body) in bodies {
        let (s, t, _) = api.send(m, path, Some(body)).await;
        assert!((400..600).contains(&s) || s == 200, "{m} {path}: {s} {t}");
    }
    let (s, _, _) = api.send("PUT", "/v1/jobs", Some(json!("[[["))).await;
    assert_eq!(s, 400);
    let (s, t, _) = api.send("PUT", "/v1/jobs", None).await;
    assert_eq!((s, t.as_str()), (400, "Request body is empty"));
    assert_eq!(api.ok("/v1/status/leader").await, json!("127.0.0.1:4647"));
    // The scheduler survived whatever was admitted.
    api.register(batch_job("after")).await;
    api.until("/v1/job/after/allocations", "complete", |v| {
        v[0]["ClientStatus"] == "complete"
    })
    .await;
    api.ds.shutdown().await;
}

// `POST /v1/validate/job` answers 200 with the validation errors in the body.
#[tokio::test]
async fn validate_job_endpoint_reports_errors_in_body() {
    let api = Api::start().await;
    let (s, ok) = api
        .put("/v1/validate/job", json!({"Job": web_job("ok")}))
        .await;
    assert_eq!(s, 200, "{ok}");
    assert_eq!(ok["Error"], "");
    assert!(ok["ValidationErrors"].is_null());
    let bad = json!({"ID": "bad", "TaskGroups": [{"Name": "g", "Tasks": []}]});
    let (s, v) = api.put("/v1/validate/job", json!({"Job": bad})).await;
    assert_eq!(s, 200);
    assert!(
        v["Error"]
            .as_str()
            .unwrap()
            .contains("Task group g validation failed"),
        "{v}"
    );
    assert!(!v["ValidationErrors"].as_array().unwrap().is_empty());
    assert_eq!(api.ok("/v1/jobs").await, json!([]));
    api.ds.shutdown().await;
}

// §1.3 namespace precedence (query, body, job) and region mapping; §1.6 `meta=true` stubs.
#[tokio::test]
async fn register_namespace_precedence_and_meta_stubs() {
    let api = Api::start().await;
    for ns in ["a", "b", "c"] {
        let (s, _, _) = api
            .send("PUT", &format!("/v1/namespace/{ns}"), Some(json!({})))
            .await;
        assert_eq!(s, 200);
    }
    let mut j = batch_job("prec");
    j["Namespace"] = json!("c");
    j["Region"] = json!("global");
    j["Meta"] = json!({"drover.owner": "app"});
    let (s, v) = api
        .put(
            "/v1/jobs?namespace=a",
            json!({"Job": j.clone(), "Namespace": "b"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let got = api.ok("/v1/job/prec?namespace=a").await;
    assert_eq!(
        got["Namespace"], "a",
        "query namespace wins and overwrites the job's"
    );
    assert_eq!(got["Region"], "global");
    let (s, _) = api
        .put("/v1/jobs", json!({"Job": j.clone(), "Namespace": "b"}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(api.ok("/v1/job/prec?namespace=b").await["Namespace"], "b");
    let (s, _) = api.put("/v1/jobs", json!({"Job": j})).await;
    assert_eq!(s, 200);
    assert_eq!(api.ok("/v1/job/prec?namespace=c").await["Namespace"], "c");
    let stubs = api.ok("/v1/jobs?namespace=*&meta=true").await;
    assert_eq!(stubs.as_array().unwrap().len(), 3);
    assert!(
        stubs
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["Meta"]["drover.owner"] == "app")
    );
    let (s, t, _) = api
        .send(
            "PUT",
            "/v1/jobs?namespace=nope",
            Some(json!({"Job": batch_job("x")})),
        )
        .await;
    assert_eq!(s, 500, "{t}");
    api.ds.shutdown().await;
}

// The control API's reset re-seeds Nomad: jobs gone, nodes back, the index restarts, and the
// scheduler keeps working.
#[tokio::test]
async fn control_reset_reseeds_nomad() {
    let api = Api::start().await;
    api.register(batch_job("before")).await;
    api.until("/v1/job/before/allocations", "complete", |v| {
        v[0]["ClientStatus"] == "complete"
    })
    .await;
    api.control("/nomad/node/Nyx/lost", json!({})).await;
    let (_, _, h) = api.send("GET", "/v1/jobs", None).await;
    let before: u64 = h["x-nomad-index"].to_str().unwrap().parse().unwrap();
    let (s, t, _) = api.send("POST", "/_devstack/reset", Some(json!({}))).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(api.ok("/v1/jobs").await, json!([]));
    let nodes = api.ok("/v1/nodes").await;
    assert!(
        nodes
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["Status"] == "ready")
    );
    let (_, _, h) = api.send("GET", "/v1/nodes", None).await;
    let after: u64 = h["x-nomad-index"].to_str().unwrap().parse().unwrap();
    assert!(
        after > before,
        "indexes only grow, across a reset too ({after} vs {before})"
    );
    let (_, _, h) = api.send("GET", "/v1/jobs", None).await;
    let jobs_index: u64 = h["x-nomad-index"].to_str().unwrap().parse().unwrap();
    assert!(
        jobs_index > before,
        "the emptied job list has a newer index"
    );
    api.register(batch_job("after")).await;
    api.until("/v1/job/after/allocations", "complete", |v| {
        v[0]["ClientStatus"] == "complete"
    })
    .await;
    api.ds.shutdown().await;
}

// §1.1 ACL: 403 texts, and namespace=* filters silently.
#[tokio::test]
async fn acl_tokens_gate_requests() {
    let seed = drover_devstack::seed::Seed::from_yaml(
        "namespaces: [media]\nacl_tokens:\n  - secret_id: reader\n    system: nomad\n    namespaces: [media]\n    capabilities: [read-job, list-jobs]\n  - secret_id: ops\n    system: nomad\n    management: true\n",
    )
    .unwrap();
    let api = Api::start_with(DevstackConfig {
        time_scale: 0.01,
        nomad_acl: true,
        seed: Some(seed),
        ..Default::default()
    })
    .await;
    let root = api.ds.root_token().to_string();
    let (s, t, _) = api.send("GET", "/v1/jobs", None).await;
    assert_eq!((s, t.as_str()), (403, "Permission denied"));
    let r = api
        .http
        .get(api.url("/v1/jobs"))
        .header("X-Nomad-Token", "bogus")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(r.text().await.unwrap(), "ACL token not found");
    let mut j = batch_job("secret");
    j["Namespace"] = json!("media");
    let r = api
        .http
        .put(api.url("/v1/jobs"))
        .bearer_auth(&root)
        .json(&json!({"Job": j}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let stored = api
        .http
        .get(api.url("/v1/job/secret?namespace=media"))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert!(
        !stored["NomadTokenID"].as_str().unwrap().is_empty(),
        "NomadTokenID is the accessor"
    );
    let r = api
        .http
        .get(api.url("/v1/jobs?namespace=*"))
        .header("X-Nomad-Token", "reader")
        .send()
        .await
        .unwrap();
    let list: Value = r.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let r = api
        .http
        .get(api.url("/v1/jobs"))
        .header("X-Nomad-Token", "reader")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "default namespace not granted");
    let r = api
        .http
        .put(api.url("/v1/jobs?namespace=media"))
        .header("X-Nomad-Token", "reader")
        .json(&json!({"Job": batch_job("x")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // §1.4: an identical job registered with another token is a new version (NomadTokenID).
    let reg = |token: &'static str| {
        let api = &api;
        async move {
            let mut j = batch_job("tok");
            j["Namespace"] = json!("media");
            let r = api
                .http
                .put(api.url("/v1/jobs"))
                .header("X-Nomad-Token", token)
                .json(&json!({"Job": j}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
        }
    };
    let version = |token: String| {
        let api = &api;
        async move {
            api.http
                .get(api.url("/v1/job/tok?namespace=media"))
                .header("X-Nomad-Token", token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()["Version"]
                .clone()
        }
    };
    reg("ops").await;
    reg("ops").await;
    assert_eq!(version(root.clone()).await, 0);
    let root_static: &'static str = Box::leak(root.clone().into_boxed_str());
    reg(root_static).await;
    assert_eq!(version(root.clone()).await, 1);
    api.ds.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Real jobspecs (HCL via /v1/jobs/parse).

/// The project's copy of the few modules of the user's repository these tests read (the
/// workspace's tests/fixtures).
const MODULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/brmartin/modules"
);

fn module(rel: &str) -> String {
    std::fs::read_to_string(format!("{MODULES}/{rel}")).unwrap()
}

/// The user's whole repository beside the workspace (or where `DROVER_SHARED_EXAMPLES` says), if
/// present: a clone of the project alone skips the tests that go over all of it.
fn shared_examples() -> Option<PathBuf> {
    let path = std::env::var_os("DROVER_SHARED_EXAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/examples/brmartin")
        });
    if path.is_dir() {
        Some(path)
    } else {
        eprintln!(
            "note: {} is absent; skipping the tests over every example jobspec",
            path.display()
        );
        None
    }
}

/// Var-file values the Terraform modules pass for variables without defaults.
fn vars_for(hcl: &str) -> &'static str {
    if hcl.contains("variable \"elastic_version\"") {
        "elastic_version = \"8.15.0\"\n"
    } else {
        ""
    }
}

impl Api {
    async fn parse(&self, hcl: &str) -> Value {
        let (s, v) = self
            .put(
                "/v1/jobs/parse",
                json!({"JobHCL": hcl, "Canonicalize": true, "Variables": vars_for(hcl)}),
            )
            .await;
        assert_eq!(s, 200, "parse: {v}");
        v
    }
}

// §1.2: parse errors are 400 with the `Failed to parse job:` prefix and `input.hcl` positions.
#[tokio::test]
async fn parse_endpoint_errors() {
    let api = Api::start().await;
    let (s, t, _) = api
        .send("POST", "/v1/jobs/parse", Some(json!({"JobHCL": ""})))
        .await;
    assert_eq!((s, t.as_str()), (400, "Job spec is empty"));
    let (s, t, _) = api
        .send(
            "POST",
            "/v1/jobs/parse",
            Some(json!({"JobHCL": "job \"x\" {\n  bogus = 1\n}\n"})),
        )
        .await;
    assert_eq!(s, 400);
    assert!(t.starts_with("Failed to parse job: input.hcl:2,"), "{t}");
    api.ds.shutdown().await;
}

// §1.5: plan diffs on a real jobspec: None when unchanged, Edited with `forces create/destroy
// update` and the `Updates` keys, Added/Deleted fields, `forces create` on Count.
#[tokio::test]
async fn plan_diff_types_and_annotations_on_real_jobspec() {
    let api = Api::start().await;
    let job = api.parse(&module("dummy/jobspec.nomad.hcl")).await;
    let (_, added) = api
        .put(
            "/v1/job/hello-world/plan",
            json!({"Job": job, "Diff": true}),
        )
        .await;
    assert_eq!(added["Diff"]["Type"], "Added");
    assert_eq!(added["JobModifyIndex"], 0);
    assert_eq!(added["Diff"]["TaskGroups"][0]["Updates"]["create"], 1);
    let mut with_meta = job.clone();
    with_meta["Meta"] = json!({"owner": "drover"});
    api.register(with_meta.clone()).await;
    api.until("/v1/job/hello-world/allocations", "running", |v| {
        v.as_array()
            .is_some_and(|a| a.iter().any(|x| x["ClientStatus"] == "running"))
    })
    .await;
    let plan = |j: Value| {
        let api = &api;
        async move {
            let (s, p) = api
                .put("/v1/job/hello-world/plan", json!({"Job": j, "Diff": true}))
                .await;
            assert_eq!(s, 200, "{p}");
            p
        }
    };
    let none = plan(with_meta.clone()).await;
    assert_eq!(none["Diff"]["Type"], "None");
    assert_eq!(none["Diff"]["TaskGroups"][0]["Updates"]["ignore"], 1);

    let mut image = with_meta.clone();
    image["TaskGroups"][0]["Tasks"][0]["Config"]["image"] = json!("busybox:1.38.0");
    let p = plan(image).await;
    assert_eq!(p["Diff"]["Type"], "Edited");
    let tg = &p["Diff"]["TaskGroups"][0];
    assert_eq!(tg["Updates"]["create/destroy update"], 1);
    let web = tg["Tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["Name"] == "web")
        .unwrap();
    assert_eq!(web["Type"], "Edited");
    assert_eq!(web["Annotations"], json!(["forces create/destroy update"]));
    assert_eq!(
        p["Annotations"]["DesiredTGUpdates"]["servers"]["DestructiveUpdate"],
        1
    );

    let mut count = with_meta.clone();
    count["TaskGroups"][0]["Count"] = json!(3);
    let p = plan(count).await;
    let tg = &p["Diff"]["TaskGroups"][0];
    assert_eq!(tg["Updates"]["create"], 2);
    assert_eq!(tg["Updates"]["in-place update"], 1);
    let count_field = tg["Fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["Name"] == "Count")
        .unwrap();
    assert_eq!(count_field["Type"], "Edited");
    assert_eq!(count_field["Annotations"], json!(["forces create"]));

    let p = plan(job.clone()).await;
    let meta = p["Diff"]["Fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["Name"] == "Meta[owner]")
        .unwrap();
    assert_eq!(meta["Type"], "Deleted");
    assert_eq!(meta["Old"], "drover");
    assert_eq!(meta["New"], "");
    api.ds.shutdown().await;
}

/// The `nomad/` KV v2 mount, without the Overseerr secret (the test writes it).
fn overseerr_seed() -> drover_devstack::seed::Seed {
    drover_devstack::seed::Seed::from_yaml("vault_mounts:\n  - path: nomad\n    version: 2\n")
        .unwrap()
}

// The user's Overseerr job end to end: parse, plan (missing CSI volume), register, the CSI
// plugin from the real plugin-csi-glusterfs jobs, volume create, the blocked eval places, the
// Vault template renders, prestart dead/Failed=false, litestream sidecar running, deployment
// successful.
#[tokio::test]
async fn overseerr_runs_end_to_end_with_csi_plugin_jobs_and_vault() {
    let api = Api::start_with(DevstackConfig {
        time_scale: 0.01,
        seed: Some(overseerr_seed()),
        ..Default::default()
    })
    .await;
    let hcl = module("overseerr/jobspec.nomad.hcl");
    let job = api.parse(&hcl).await;
    assert_eq!(job["ID"], "overseerr");
    let (s, plan) = api
        .put("/v1/job/overseerr/plan", json!({"Job": job, "Diff": true}))
        .await;
    assert_eq!(s, 200, "{plan}");
    assert_eq!(plan["Diff"]["Type"], "Added");
    assert_eq!(
        plan["FailedTGAllocs"]["overseerr"]["ConstraintFiltered"]["missing CSI Volume glusterfs_overseerr_config"],
        3
    );
    let (s, reg) = api
        .put(
            "/v1/jobs",
            json!({"Job": job, "Submission": {"Source": hcl, "Format": "hcl2"}}),
        )
        .await;
    assert_eq!(s, 200, "{reg}");
    api.until("/v1/job/overseerr/evaluations", "blocked eval", |v| {
        v.as_array()
            .unwrap()
            .iter()
            .any(|e| e["Status"] == "blocked")
    })
    .await;
    let summary = api.ok("/v1/job/overseerr/summary").await;
    assert_eq!(summary["Summary"]["overseerr"]["Queued"], 1, "{summary}");

    // The CSI plugin comes from the user's plugin jobs (controller + system node job).
    for file in ["jobspec-controller.nomad.hcl", "jobspec-nodes.nomad.hcl"] {
        let pj = api
            .parse(&module(&format!("plugin-csi-glusterfs/{file}")))
            .await;
        api.register(pj).await;
    }
    api.until("/v1/plugin/csi/glusterfs", "plugin healthy", |p| {
        p["ControllersHealthy"].as_u64() >= Some(1) && p["NodesHealthy"].as_u64() >= Some(3)
    })
    .await;
    let (s, v) = api
        .put(
            "/v1/volume/csi/glusterfs_overseerr_config/create",
            json!({"Volumes": [{"ID": "glusterfs_overseerr_config", "Name": "glusterfs_overseerr_config",
                "PluginID": "glusterfs", "RequestedCapabilities": [{"AccessMode": "single-node-writer", "AttachmentMode": "file-system"}]}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    // The seed mounts `nomad/` but holds no secret yet: the Vault template must wait.
    api.until("/v1/job/overseerr/allocations", "template waits", |v| {
        v.as_array().is_some_and(|a| {
            a.iter().any(|x| {
                x["TaskStates"]["litestream-restore"]["Events"]
                    .as_array()
                    .is_some_and(|e| {
                        e.iter().any(|ev| {
                            ev["DisplayMessage"] == "Missing: vault.read(nomad/default/overseerr)"
                        })
                    })
            })
        })
    })
    .await;
    // Written through Vault's own KV v2 API, the secret lets the template render.
    let written = api
        .http
        .put(format!(
            "{}/v1/nomad/data/default/overseerr",
            api.ds.vault_url()
        ))
        .header("X-Vault-Token", api.ds.root_token())
        .json(&json!({"data": {"MINIO_ACCESS_KEY": "ak", "MINIO_SECRET_KEY": "sk"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(written.status().as_u16(), 200);
    let d = api
        .until("/v1/job/overseerr/deployment", "successful", |d| {
            d["Status"] == "successful"
        })
        .await;
    assert_eq!(d["TaskGroups"]["overseerr"]["HealthyAllocs"], 1);
    let allocs = api.ok("/v1/job/overseerr/allocations").await;
    let a = allocs
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["ClientStatus"] == "running")
        .unwrap();
    let ts = &a["TaskStates"];
    assert_eq!(ts["litestream-restore"]["State"], "dead");
    assert_eq!(ts["litestream-restore"]["Failed"], false);
    assert_eq!(ts["litestream"]["State"], "running");
    assert_eq!(ts["overseerr"]["State"], "running");
    let vol = api.ok("/v1/volume/csi/glusterfs_overseerr_config").await;
    assert_eq!(vol["WriteAllocs"].as_object().unwrap().len(), 1);
    let sub = api.ok("/v1/job/overseerr/submission?version=0").await;
    assert_eq!(sub["Source"], hcl);
    api.ds.shutdown().await;
}

// Every jobspec in brmartin/modules parses over HTTP and registers.
#[tokio::test]
async fn every_brmartin_jobspec_parses_and_registers() {
    let Some(examples) = shared_examples() else {
        return;
    };
    let api = Api::start().await;
    let mut count = 0;
    let mut failures = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(examples.join("modules"))
        .unwrap()
        .map(|d| d.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let Ok(files) = std::fs::read_dir(&dir) else {
            continue;
        };
        for f in files {
            let f = f.unwrap().path();
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            if !name.ends_with(".hcl") || name.starts_with("volume-") {
                continue;
            }
            let hcl = std::fs::read_to_string(&f).unwrap();
            // A file may hold several jobs (plugin-csi-glusterfs); register each.
            let (s, v) = api
                .put(
                    "/v1/jobs/parse",
                    json!({"JobHCL": hcl, "Canonicalize": true, "Variables": vars_for(&hcl)}),
                )
                .await;
            if s != 200 {
                failures.push(format!("{}: parse {s}: {v}", f.display()));
                continue;
            }
            let ns = v["Namespace"].as_str().unwrap_or("default").to_string();
            if ns != "default" {
                // Nomad refuses jobs in unknown namespaces; the Terraform modules create them.
                let (s, t, _) = api
                    .send(
                        "PUT",
                        &format!("/v1/namespace/{ns}"),
                        Some(json!({"Name": ns})),
                    )
                    .await;
                assert_eq!(s, 200, "{t}");
            }
            let (s, r) = api.put("/v1/jobs", json!({"Job": v})).await;
            if s != 200 {
                failures.push(format!("{}: register {s}: {r}", f.display()));
                continue;
            }
            count += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(count >= 25, "only {count} jobspecs");
    api.ds.shutdown().await;
}

/// Every jobspec file of the user's modules (volume specs aside), as (path, HCL); none when the
/// shared examples are absent.
fn module_jobspecs() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(examples) = shared_examples() else {
        return out;
    };
    let mut dirs: Vec<_> = std::fs::read_dir(examples.join("modules"))
        .unwrap()
        .map(|d| d.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let Ok(files) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = files.map(|f| f.unwrap().path()).collect();
        files.sort();
        for f in files {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".hcl") && !name.starts_with("volume-") {
                out.push((
                    f.display().to_string(),
                    std::fs::read_to_string(&f).unwrap(),
                ));
            }
        }
    }
    out
}

fn captures(re: &str, text: &str) -> Vec<String> {
    regex::Regex::new(re)
        .unwrap()
        .captures_iter(text)
        .map(|c| c[1].to_string())
        .collect()
}

// The issue's bar: every jobspec of the user's repository parses, registers, plans and runs to
// healthy — with its CSI volumes created, its Vault secrets and Nomad variables present (a
// template waits for missing ones), on nodes named like the user's (jobs pin `Hestia`).
#[tokio::test]
async fn every_brmartin_jobspec_runs_to_healthy() {
    let specs = module_jobspecs();
    if specs.is_empty() {
        return;
    }
    let mut secrets: Vec<String> = specs
        .iter()
        .flat_map(|(_, h)| captures(r#"secret\s+"([^"]+)""#, h))
        .collect();
    secrets.sort();
    secrets.dedup();
    let mut seed = String::from(
        "nodes:\n  - {name: Hestia, arch: amd64, cpu_mhz: 200000, memory_mb: 524288}\n  - {name: Heracles, arch: arm64, cpu_mhz: 200000, memory_mb: 524288}\n  - {name: Nyx, arch: arm64, cpu_mhz: 200000, memory_mb: 524288}\ncsi_plugins:\n  - {id: glusterfs}\nvault_mounts:\n  - {path: nomad, version: 2}\nvault_secrets:\n",
    );
    for p in &secrets {
        let rest = p.trim_start_matches("nomad/");
        let rest = rest.strip_prefix("data/").unwrap_or(rest);
        seed.push_str(&format!(
            "  - {{mount: nomad, path: \"{rest}\", data: {{KEY: value}}}}\n"
        ));
    }
    let api = Api::start_with(DevstackConfig {
        time_scale: 0.01,
        seed: Some(drover_devstack::seed::Seed::from_yaml(&seed).unwrap()),
        ..Default::default()
    })
    .await;
    let vault_ready = secrets
        .iter()
        .all(|p| api.ds.state().vault.template_read(p).is_some());
    let mut jobs: Vec<(String, Value, bool)> = Vec::new();
    let mut volumes_made = std::collections::BTreeSet::new();
    for (path, hcl) in &specs {
        let job = api.parse(hcl).await;
        let ns = job["Namespace"].as_str().unwrap_or("default").to_string();
        let id = job["ID"].as_str().unwrap().to_string();
        if ns != "default" {
            let (s, _, _) = api
                .send("PUT", &format!("/v1/namespace/{ns}"), Some(json!({})))
                .await;
            assert_eq!(s, 200);
        }
        for g in job["TaskGroups"].as_array().unwrap() {
            for v in g["Volumes"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.values())
            {
                if v["Type"] != "csi" {
                    continue;
                }
                let src = v["Source"].as_str().unwrap().to_string();
                if !volumes_made.insert((ns.clone(), src.clone())) {
                    continue;
                }
                let mode = v["AccessMode"]
                    .as_str()
                    .filter(|m| !m.is_empty())
                    .unwrap_or("single-node-writer");
                let attach = v["AttachmentMode"]
                    .as_str()
                    .filter(|m| !m.is_empty())
                    .unwrap_or("file-system");
                let (s, r) = api
                    .put(
                        &format!("/v1/volume/csi/{src}/create?namespace={ns}"),
                        json!({"Volumes": [{"ID": src, "Name": src, "PluginID": "glusterfs",
                            "RequestedCapabilities": [{"AccessMode": mode, "AttachmentMode": attach}]}]}),
                    )
                    .await;
                assert_eq!(s, 200, "{path}: volume {src}: {r}");
            }
        }
        for var in captures(r#"nomadVar\s+"([^"@]+)""#, hcl) {
            let (s, r) = api
                .put(
                    &format!("/v1/var/{var}?namespace={ns}"),
                    json!({"Items": {"KEY": "value"}}),
                )
                .await;
            assert_eq!(s, 200, "{path}: var {var}: {r}");
        }
        let (s, plan) = api
            .put(
                &format!("/v1/job/{id}/plan?namespace={ns}"),
                json!({"Job": job, "Diff": true}),
            )
            .await;
        assert_eq!(s, 200, "{path}: plan {plan}");
        let key = format!("{id}?namespace={ns}");
        // Two files may define the same job (dummy/): the later one updates it.
        let seen = jobs.iter().any(|(k, _, _)| *k == key);
        assert_eq!(
            plan["Diff"]["Type"],
            if seen { "Edited" } else { "Added" },
            "{path}"
        );
        assert!(
            plan["FailedTGAllocs"].is_null(),
            "{path}: {}",
            plan["FailedTGAllocs"]
        );
        let (s, r) = api
            .put(&format!("/v1/jobs?namespace={ns}"), json!({"Job": job}))
            .await;
        assert_eq!(s, 200, "{path}: register {r}");
        let waits_on_vault = hcl.contains("secret \"") && !vault_ready;
        jobs.retain(|(k, _, _)| *k != key);
        jobs.push((key, job, waits_on_vault));
    }
    for (q, job, waits_on_vault) in &jobs {
        let id = q.split('?').next().unwrap();
        let ns_q = &q[id.len()..];
        let periodic = !job["Periodic"].is_null() || !job["ParameterizedJob"].is_null();
        if periodic {
            api.until(&format!("/v1/job/{q}"), "periodic running", |j| {
                j["Status"] == "running"
            })
            .await;
            continue;
        }
        if *waits_on_vault {
            api.until(
                &format!("/v1/job/{id}/allocations{ns_q}"),
                "waiting on Vault",
                |v| {
                    v.as_array().is_some_and(|a| {
                        a.iter()
                            .any(|x| x.to_string().contains("Missing: vault.read("))
                    })
                },
            )
            .await;
            continue;
        }
        match job["Type"].as_str().unwrap() {
            "batch" => {
                api.until(
                    &format!("/v1/job/{id}/allocations{ns_q}"),
                    "batch complete",
                    |v| {
                        v.as_array().is_some_and(|a| {
                            !a.is_empty() && a.iter().all(|x| x["ClientStatus"] == "complete")
                        })
                    },
                )
                .await;
            }
            "system" => {
                api.until(
                    &format!("/v1/job/{id}/allocations{ns_q}"),
                    "system running",
                    |v| {
                        v.as_array().is_some_and(|a| {
                            !a.is_empty() && a.iter().all(|x| x["ClientStatus"] == "running")
                        })
                    },
                )
                .await;
            }
            _ => {
                api.until(
                    &format!("/v1/job/{id}/deployment{ns_q}"),
                    "deployment successful",
                    |d| d["Status"] == "successful",
                )
                .await;
                let allocs = api.ok(&format!("/v1/job/{id}/allocations{ns_q}")).await;
                for a in allocs
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|a| a["DesiredStatus"] == "run")
                {
                    assert_eq!(a["DeploymentStatus"]["Healthy"], true, "{id}");
                    for (task, ts) in a["TaskStates"].as_object().unwrap() {
                        assert_eq!(ts["Failed"], false, "{id}/{task}");
                    }
                }
            }
        }
    }
    assert!(jobs.len() >= 25, "only {} jobspecs", jobs.len());
    api.ds.shutdown().await;
}

/// A settled cluster costs no scheduler passes until something is written (a thousand settled
/// jobs used to cost a third of a core: every 5 ms pass walked every allocation to change
/// nothing); a write wakes it at once.
#[tokio::test]
async fn a_settled_scheduler_rests_until_a_write() {
    let api = Api::start().await;
    api.register(web_job("rest")).await;
    api.until("/v1/job/rest/deployment", "successful deployment", |d| {
        d["Status"] == "successful"
    })
    .await;
    let steps = || async {
        let (status, health) = api.get("/_devstack/health").await;
        assert_eq!(status, 200);
        health["scheduler_steps"]
            .as_u64()
            .unwrap_or_else(|| panic!("scheduler_steps in {health}"))
    };
    // Let the last writes of the deployment settle (Consul checks, job status).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = steps().await;
    // 400 ms is 80 ticks at this time scale; at most one safety pass a second may run.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let rested = steps().await - before;
    assert!(rested <= 1, "{rested} scheduler passes in a quiet 400 ms");

    api.register(web_job("woken")).await;
    api.until("/v1/job/woken/deployment", "a deployment after rest", |d| {
        d["Status"] == "successful"
    })
    .await;
    assert!(steps().await > before + rested);
    api.ds.shutdown().await;
}
