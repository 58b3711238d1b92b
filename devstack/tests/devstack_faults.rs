//! HTTP-level tests of the devstack control API: fault injection in each system's dialect,
//! the request log, seeding and reset (docs/devstack-control.md).

use std::time::{Duration, Instant};

use drover_devstack::System;
use reqwest::Client;
use serde_json::{Value, json};

mod support;

use support::{fast_devstack as start, http_client as client};

async fn add_fault(c: &Client, base: &str, fault: Value) -> String {
    let r = c
        .post(format!("{base}/_devstack/faults"))
        .json(&fault)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.expect("json")["ID"]
        .as_str()
        .expect("ID")
        .to_string()
}

#[tokio::test]
async fn count_limited_error_fault_fires_n_times_then_recovers() {
    // Control API: `count` limits how often a fault fires; afterwards the real answer returns.
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    add_fault(
        &c,
        &base,
        json!({"system": "consul", "path": "^/v1/kv/.*", "kind": "error", "status": 503, "body": "try later", "count": 2}),
    )
    .await;
    let url = format!("{base}/v1/kv/a");
    for _ in 0..2 {
        let r = c.get(&url).send().await.expect("req");
        assert_eq!(r.status(), 503);
        assert_eq!(r.text().await.expect("body"), "try later");
    }
    let r = c.get(&url).send().await.expect("req");
    assert_eq!(r.status(), 404, "recovered: the real KV miss");
    let listed: Value = c
        .get(format!("{base}/_devstack/faults"))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert_eq!(listed[0]["Fired"], 2);
    ds.shutdown().await;
}

#[tokio::test]
async fn probability_one_always_fires_and_other_systems_are_untouched() {
    // A fault with probability 1.0 fires on every match; `system` limits it to one server.
    let ds = start().await;
    let c = client();
    add_fault(
        &c,
        &ds.vault_url(),
        json!({"system": "vault", "path": "/v1/secret/*", "kind": "error", "status": 500, "probability": 1.0}),
    )
    .await;
    for _ in 0..3 {
        let r = c
            .get(format!("{}/v1/secret/data/x", ds.vault_url()))
            .header("X-Vault-Token", ds.root_token())
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), 500);
        // Vault dialect: a JSON errors list.
        assert_eq!(
            r.json::<Value>().await.expect("json"),
            json!({"errors": ["injected fault"]})
        );
    }
    let r = c
        .get(format!("{}/v1/status/leader", ds.consul_url()))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    // probability 0 never fires
    c.delete(format!("{}/_devstack/faults", ds.vault_url()))
        .send()
        .await
        .expect("req");
    add_fault(
        &c,
        &ds.consul_url(),
        json!({"path": "/v1/status/", "kind": "error", "probability": 0.0}),
    )
    .await;
    let r = c
        .get(format!("{}/v1/status/leader", ds.consul_url()))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    ds.shutdown().await;
}

#[tokio::test]
async fn no_leader_fault_speaks_each_systems_dialect() {
    // §0: Nomad/Consul `No cluster leader` 500 text; Vault 503 JSON (sealed / no active node).
    let ds = start().await;
    let c = client();
    add_fault(&c, &ds.consul_url(), json!({"kind": "no_leader"})).await;
    let r = c
        .get(format!("{}/v1/jobs", ds.nomad_url()))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 500);
    assert_eq!(r.text().await.expect("body"), "No cluster leader");
    let r = c
        .get(format!("{}/v1/catalog/services", ds.consul_url()))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 500);
    assert_eq!(r.text().await.expect("body"), "No cluster leader");
    let r = c
        .get(format!("{}/v1/sys/health", ds.vault_url()))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"errors": ["local node not active but active cluster node not found"]})
    );
    c.delete(format!("{}/_devstack/faults", ds.nomad_url()))
        .send()
        .await
        .expect("req");
    add_fault(
        &c,
        &ds.vault_url(),
        json!({"system": "vault", "kind": "sealed"}),
    )
    .await;
    let r = c
        .get(format!("{}/v1/sys/health", ds.vault_url()))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"errors": ["Vault is sealed"]})
    );
    ds.shutdown().await;
}

#[tokio::test]
async fn forbidden_fault_uses_each_systems_403_body() {
    // §0/§3.1: Consul 403 `Permission denied` text; Vault 403 multierror JSON.
    let ds = start().await;
    let c = client();
    let id = add_fault(
        &c,
        &ds.consul_url(),
        json!({"kind": "forbidden", "method": "GET"}),
    )
    .await;
    let r = c
        .get(format!("{}/v1/kv/x", ds.consul_url()))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403);
    assert_eq!(r.text().await.expect("body"), "Permission denied");
    let r = c
        .get(format!("{}/v1/secret/data/x", ds.vault_url()))
        .header("X-Vault-Token", ds.root_token())
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]})
    );
    // Method filter: a PUT is not faulted.
    let r = c
        .put(format!("{}/v1/kv/x", ds.consul_url()))
        .body("1")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let r = c
        .delete(format!("{}/_devstack/faults/{id}", ds.consul_url()))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let r = c
        .get(format!("{}/v1/kv/x", ds.consul_url()))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    ds.shutdown().await;
}

#[tokio::test]
async fn latency_fault_delays_at_least_the_given_time() {
    // `latency` delays by latency_ms, then serves the real answer.
    let ds = start().await;
    let c = client();
    add_fault(
        &c,
        &ds.consul_url(),
        json!({"system": "consul", "path": "/v1/status/leader", "kind": "latency", "latency_ms": 300}),
    )
    .await;
    let started = Instant::now();
    let r = c
        .get(format!("{}/v1/status/leader", ds.consul_url()))
        .send()
        .await
        .expect("req");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!("127.0.0.1:8300")
    );
    ds.shutdown().await;
}

#[tokio::test]
async fn timeout_fault_hangs_until_the_client_gives_up() {
    // `timeout` never answers: a client with a short timeout fails; the server stays healthy.
    let ds = start().await;
    let c = client();
    add_fault(
        &c,
        &ds.consul_url(),
        json!({"path": "/v1/kv/", "kind": "timeout", "count": 1}),
    )
    .await;
    let short = Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let started = Instant::now();
    let err = short
        .get(format!("{}/v1/kv/x", ds.consul_url()))
        .send()
        .await
        .expect_err("times out");
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let r = c
        .get(format!("{}/v1/kv/x", ds.consul_url()))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 404);
    ds.shutdown().await;
}

#[tokio::test]
async fn request_log_counts_api_calls_but_not_control_calls() {
    // Request log: every API request recorded with a sequence number; control routes never logged;
    // token values never logged.
    let ds = start().await;
    let c = client();
    for _ in 0..3 {
        c.get(format!("{}/v1/kv/a?token=secret-token", ds.consul_url()))
            .send()
            .await
            .expect("req");
    }
    c.get(format!("{}/v1/sys/health", ds.vault_url()))
        .send()
        .await
        .expect("req");
    let log = &ds.state().requests;
    assert_eq!(
        log.count_matching(Some(System::Consul), Some("GET"), "/v1/kv/"),
        3
    );
    assert_eq!(log.count_matching(Some(System::Vault), None, "/v1/sys/"), 1);
    assert_eq!(log.count_matching(None, None, "/_devstack"), 0);
    let entries: Value = c
        .get(format!(
            "{}/_devstack/requests?system=consul",
            ds.nomad_url()
        ))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    let entries = entries.as_array().expect("array");
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["Status"], 404);
    assert_eq!(entries[0]["Query"], "token=REDACTED");
    assert!(
        !serde_json::to_string(entries)
            .expect("json")
            .contains("secret-token")
    );
    let first = entries[0]["Seq"].as_u64().expect("seq");
    let since: Value = c
        .get(format!(
            "{}/_devstack/requests?since={first}",
            ds.nomad_url()
        ))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert_eq!(since.as_array().map(Vec::len), Some(3));
    c.delete(format!("{}/_devstack/requests", ds.nomad_url()))
        .send()
        .await
        .expect("req");
    assert_eq!(log.entries().len(), 0);
    ds.shutdown().await;
}

#[tokio::test]
async fn control_seed_secret_reset_and_health() {
    // POST /_devstack/vault/secret seeds KV v2 (new mount created); reset forgets it; health answers.
    let ds = start().await;
    let c = client();
    let r = c
        .post(format!("{}/_devstack/vault/secret", ds.vault_url()))
        .json(&json!({"mount": "nomad", "path": "default/app", "data": {"K": "v"}}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let r = c
        .get(format!("{}/v1/nomad/data/default/app", ds.vault_url()))
        .header("X-Vault-Token", ds.root_token())
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.expect("json")["data"]["data"]["K"],
        "v"
    );
    add_fault(&c, &ds.consul_url(), json!({"kind": "no_leader"})).await;
    let r = c
        .post(format!("{}/_devstack/reset", ds.consul_url()))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200, "control routes are never faulted");
    let r = c
        .get(format!("{}/v1/nomad/data/default/app", ds.vault_url()))
        .header("X-Vault-Token", ds.root_token())
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 404, "reset forgot the mount and the fault");
    let h: Value = c
        .get(format!("{}/_devstack/health", ds.vault_url()))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert_eq!(h["status"], "ok");
    let r = c
        .post(format!("{}/_devstack/faults", ds.vault_url()))
        .json(&json!({"kind": "explode"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 400);
    ds.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_pending_consul_long_polls() {
    // A blocking read with a long wait must not keep `Devstack::shutdown` waiting.
    let ds = start().await;
    let c = client();
    let url = format!("{}/v1/kv/x", ds.consul_url());
    let idx = c.get(&url).send().await.expect("req").headers()["X-Consul-Index"]
        .to_str()
        .expect("ascii")
        .to_string();
    let poll =
        tokio::spawn(async move { c.get(format!("{url}?index={idx}&wait=10m")).send().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), ds.shutdown())
        .await
        .expect("shutdown is prompt");
    assert!(started.elapsed() < Duration::from_secs(5));
    let _ = poll.await;
}

fn small_job(id: &str, image: &str) -> Value {
    json!({"ID": id, "Type": "service", "TaskGroups": [{"Name": "web", "Count": 1,
        "Tasks": [{"Name": "t", "Driver": "docker", "Config": {"image": image},
            "Resources": {"CPU": 100, "MemoryMB": 64}}]}]})
}

async fn nomad_index(c: &Client, url: &str) -> u64 {
    let r = c.get(url).send().await.expect("req");
    assert_eq!(r.status(), 200, "GET {url}");
    r.headers()["x-nomad-index"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("index")
}

#[tokio::test]
async fn no_block_fault_answers_a_blocking_query_at_once_and_blocking_returns_when_cleared() {
    // A server (or proxy) that ignores `index`/`wait`: the query answers before anything
    // changed, with the unchanged index. Real time: a scaled clock would end the wait anyway.
    let ds = drover_devstack::Devstack::start(drover_devstack::DevstackConfig::default())
        .await
        .expect("devstack starts");
    let c = client();
    let base = ds.nomad_url();
    let index = nomad_index(&c, &format!("{base}/v1/jobs")).await;
    let blocking = format!("{base}/v1/jobs?index={index}&wait=5m");
    let id = add_fault(
        &c,
        &base,
        json!({"system": "nomad", "method": "GET", "path": "/v1/jobs", "kind": "no_block"}),
    )
    .await;
    // Nothing is written meanwhile: without the fault this would block for 5 minutes and the
    // client's 20 s timeout would fail the test.
    assert_eq!(nomad_index(&c, &blocking).await, index);
    c.delete(format!("{base}/_devstack/faults/{id}"))
        .send()
        .await
        .expect("req");
    // Cleared: the same query blocks until a write.
    let waiter = {
        let c = c.clone();
        tokio::spawn(async move { nomad_index(&c, &blocking).await })
    };
    // Still waiting a moment later (with the fault it answered at once).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "the cleared query blocks again");
    let r = c
        .put(format!("{base}/v1/jobs"))
        .json(&json!({"Job": small_job("wake", "nginx:1")}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let woke = waiter.await.expect("join");
    assert!(
        woke > index,
        "the blocking query answered with the write's index"
    );
    ds.shutdown().await;
}

#[tokio::test]
async fn request_log_names_the_job_a_write_touched_and_the_version_it_created() {
    // A duplicate registration is visible in the log: an unchanged re-register creates no
    // version (api-facts §1.4), so its entry has an `Object` but no `Version`.
    let ds = start().await;
    let c = client();
    let base = ds.nomad_url();
    let register = |job: Value| {
        let c = c.clone();
        let url = format!("{base}/v1/jobs");
        async move {
            let r = c
                .put(url)
                .json(&json!({ "Job": job }))
                .send()
                .await
                .expect("req");
            assert_eq!(r.status(), 200);
        }
    };
    register(small_job("web", "nginx:1")).await;
    register(small_job("web", "nginx:1")).await;
    register(small_job("web", "nginx:2")).await;
    let r = c
        .post(format!("{base}/v1/job/web/scale"))
        .json(&json!({"Count": 3, "Target": {"Group": "web"}}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let r = c
        .delete(format!("{base}/v1/job/web"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let log: Value = c
        .get(format!("{base}/_devstack/requests?system=nomad"))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    let writes: Vec<(String, Value)> = log
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["Method"] != "GET")
        .map(|e| {
            (
                e["Object"].as_str().unwrap_or("").to_string(),
                e["Version"].clone(),
            )
        })
        .collect();
    let job = "job default/web".to_string();
    assert_eq!(
        writes,
        vec![
            (job.clone(), json!(0)),
            (job.clone(), Value::Null),
            (job.clone(), json!(1)),
            (job.clone(), json!(2)),
            // A stop is a new version too.
            (job.clone(), json!(3)),
        ]
    );
    ds.shutdown().await;
}
