//! The devstack's Consul config entries behave like Consul's ConfigEntry endpoint where a
//! reconciler can tell: writes that change nothing are skipped, deletes of what is gone report
//! success, a held list of one kind wakes only when that kind changes, entries carry `Hash`.
//! (Consul agent/consul/config_endpoint.go: shouldSkipOperation, List's hash-based suppression
//! of spurious wakeups; api-facts.md §2.3, §6.6, §6.9.)

use std::time::{Duration, Instant};

use drover_devstack::Devstack;
use reqwest::Client;
use serde_json::{Value, json};

mod support;

use support::{fast_devstack as start, http_client as client};

async fn put(c: &Client, url: String, body: Value) -> String {
    let r = c.put(url).json(&body).send().await.expect("request");
    assert_eq!(r.status(), 200);
    r.text().await.expect("body")
}

async fn get(c: &Client, url: String) -> (u64, Value) {
    let r = c.get(url).send().await.expect("request");
    let index = r.headers()["X-Consul-Index"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("index");
    (index, r.json().await.expect("json"))
}

async fn delete(c: &Client, url: String) -> String {
    let r = c.delete(url).send().await.expect("request");
    assert_eq!(r.status(), 200);
    r.text().await.expect("body")
}

/// Wait until a blocking read is held by the Consul simulator.
async fn until_held(ds: &Devstack) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while ds.state().consul.index.held_queries() == 0 {
        assert!(Instant::now() < deadline, "no blocking query was held");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_write_that_changes_nothing_answers_true_and_keeps_the_indexes() {
    // shouldSkipUpsertOperation: an identical (normalized) entry is not written; the answer is
    // true whatever the cas said, and ModifyIndex does not move.
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let entry = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "HTTP"});
    assert_eq!(
        put(&c, format!("{base}/v1/config?cas=0"), entry.clone()).await,
        "true"
    );
    let (index, before) = get(&c, format!("{base}/v1/config/service-defaults/web")).await;
    // Protocol is lower-cased on write, so "HTTP" and "http" are the same content.
    let same = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"});
    assert_eq!(
        put(&c, format!("{base}/v1/config?cas=0"), same.clone()).await,
        "true"
    );
    assert_eq!(
        put(&c, format!("{base}/v1/config?cas=9999"), same).await,
        "true"
    );
    let (index_after, after) = get(&c, format!("{base}/v1/config/service-defaults/web")).await;
    assert_eq!(after["ModifyIndex"], before["ModifyIndex"]);
    assert_eq!(index_after, index);
    // A change still needs the right index.
    let grpc = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "grpc"});
    assert_eq!(
        put(&c, format!("{base}/v1/config?cas=0"), grpc.clone()).await,
        "false"
    );
    assert_eq!(
        put(&c, format!("{base}/v1/config?cas=9999"), grpc).await,
        "false"
    );
    ds.shutdown().await;
}

#[tokio::test]
async fn deleting_an_absent_entry_with_cas_answers_true() {
    // ConfigEntry.Delete skips a delete of what is gone and reports Deleted = true; only an
    // entry that exists with another ModifyIndex answers false.
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let url = format!("{base}/v1/config/service-defaults/gone");
    assert_eq!(delete(&c, format!("{url}?cas=5")).await, "true");
    assert_eq!(delete(&c, url.clone()).await, "{}");
    let entry = json!({"Kind": "service-defaults", "Name": "gone", "Protocol": "http"});
    assert_eq!(put(&c, format!("{base}/v1/config"), entry).await, "true");
    let (_, got) = get(&c, url.clone()).await;
    let modify = got["ModifyIndex"].as_u64().expect("ModifyIndex");
    assert_eq!(
        delete(&c, format!("{url}?cas={}", modify + 1)).await,
        "false"
    );
    assert_eq!(delete(&c, format!("{url}?cas={modify}")).await, "true");
    ds.shutdown().await;
}

#[tokio::test]
async fn entries_read_back_with_a_hash_of_their_content() {
    // Current Consul stores `Hash` on every config entry (omitempty): it reads back with the
    // entry and changes with the content only.
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let url = format!("{base}/v1/config/service-defaults/web");
    let http = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"});
    put(&c, format!("{base}/v1/config"), http).await;
    let (_, first) = get(&c, url.clone()).await;
    let hash = first["Hash"].as_u64().expect("Hash");
    assert_ne!(hash, 0);
    let (_, list) = get(&c, format!("{base}/v1/config/service-defaults")).await;
    assert_eq!(list[0]["Hash"], hash);
    let grpc = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "grpc"});
    put(&c, format!("{base}/v1/config"), grpc).await;
    let (_, second) = get(&c, url).await;
    assert_ne!(second["Hash"], hash);
    ds.shutdown().await;
}

#[tokio::test]
async fn a_held_list_of_one_kind_ignores_writes_of_other_kinds_and_wakes_on_its_own() {
    // The config-entries table index moves on any kind, but List re-hashes the kind's entries
    // and keeps waiting while they are unchanged; on timeout it reports the latest index.
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let (index, empty) = get(&c, format!("{base}/v1/config/service-defaults")).await;
    assert_eq!(empty, json!([]));

    // 1. Another kind's write does not end the wait.
    let held = tokio::spawn({
        let c = c.clone();
        let url = format!("{base}/v1/config/service-defaults?index={index}&wait=1s");
        async move {
            let started = Instant::now();
            let answer = get(&c, url).await;
            (started.elapsed(), answer)
        }
    });
    until_held(&ds).await;
    let intentions = json!({"Kind": "service-intentions", "Name": "db",
        "Sources": [{"Name": "web", "Action": "allow"}]});
    assert_eq!(
        put(&c, format!("{base}/v1/config"), intentions).await,
        "true"
    );
    let (elapsed, (after_other, entries)) = held.await.expect("join");
    assert!(elapsed >= Duration::from_secs(1), "woke after {elapsed:?}");
    assert_eq!(entries, json!([]));
    assert!(after_other > index, "the timeout reports the latest index");

    // 2. A write of the kind itself wakes the list at once, with the entry.
    let held = tokio::spawn({
        let c = c.clone();
        let url = format!("{base}/v1/config/service-defaults?index={after_other}&wait=30s");
        async move {
            let started = Instant::now();
            let answer = get(&c, url).await;
            (started.elapsed(), answer)
        }
    });
    until_held(&ds).await;
    let web = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"});
    assert_eq!(put(&c, format!("{base}/v1/config"), web).await, "true");
    let (elapsed, (woke_at, entries)) = held.await.expect("join");
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert!(woke_at > after_other);
    assert_eq!(entries[0]["Name"], "web");
    ds.shutdown().await;
}
