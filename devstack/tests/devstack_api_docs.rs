//! The devstack answers the `curl` examples of Consul's and Vault's API docs with the documented
//! shapes: status codes, headers, key names and casing, value types, null vs [] vs {}.
//! Each test names the doc page it pins; where the docs and shared/reference/api-facts.md differ,
//! api-facts (read from server source) wins and the test says so.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

mod support;

use support::{fast_devstack as start, http_client as client};

/// One answer: status, headers, raw body and the body parsed as JSON (`Null` if it is not).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    json: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn index(&self) -> u64 {
        self.header("X-Consul-Index")
            .expect("X-Consul-Index header")
            .parse()
            .expect("numeric index")
    }
}

async fn send(
    c: &Client,
    method: &str,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut req = c.request(Method::from_bytes(method.as_bytes()).expect("method"), url);
    if let Some(t) = token {
        req = req.header("X-Vault-Token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("request");
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

async fn put_raw(c: &Client, url: String, body: &'static str) -> Answer {
    let r = c.put(url).body(body).send().await.expect("request");
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("object expected, got {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    k.sort();
    k
}

fn is_json(a: &Answer) -> bool {
    a.header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
}

// =============================================================================================
// Consul KV

#[tokio::test]
async fn consul_kv_put_is_true_and_read_is_documented_array() {
    // https://developer.hashicorp.com/consul/api-docs/kv (Create/Update Key, Read Key)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let put = put_raw(&c, format!("{base}/v1/kv/my-key"), "test").await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(put.json, json!(true));

    let get = send(&c, "GET", format!("{base}/v1/kv/my-key"), None, None).await;
    assert_eq!(get.status, StatusCode::OK);
    assert!(is_json(&get));
    let arr = get.json.as_array().expect("array");
    assert_eq!(arr.len(), 1);
    let e = &arr[0];
    // No lock held: `Session` is omitted; everything else is present with its type.
    assert_eq!(
        keys(e),
        sorted(&[
            "CreateIndex",
            "ModifyIndex",
            "LockIndex",
            "Key",
            "Flags",
            "Value"
        ])
    );
    assert_eq!(e["Key"], "my-key");
    assert_eq!(e["Value"], "dGVzdA==");
    assert_eq!(e["Flags"], 0);
    assert_eq!(e["LockIndex"], 0);
    assert!(e["CreateIndex"].is_u64() && e["ModifyIndex"].is_u64());
    assert!(get.index() >= e["ModifyIndex"].as_u64().expect("index"));
    assert_eq!(get.header("X-Consul-KnownLeader"), Some("true"));
    assert!(get.header("X-Consul-LastContact").is_some());
}

#[tokio::test]
async fn consul_kv_missing_key_is_404_with_empty_body_and_index() {
    // https://developer.hashicorp.com/consul/api-docs/kv ("If no key exists ... a 404 is returned")
    let ds = start().await;
    let c = client();
    let get = send(
        &c,
        "GET",
        format!("{}/v1/kv/nope", ds.consul_url()),
        None,
        None,
    )
    .await;
    assert_eq!(get.status, StatusCode::NOT_FOUND);
    assert_eq!(get.text, "");
    assert!(get.index() >= 1);
}

#[tokio::test]
async fn consul_kv_empty_value_is_null_and_flags_are_kept() {
    // https://developer.hashicorp.com/consul/api-docs/kv (flags query parameter; Value base64 or null)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let put = put_raw(&c, format!("{base}/v1/kv/empty?flags=42"), "").await;
    assert_eq!(put.json, json!(true));
    let get = send(&c, "GET", format!("{base}/v1/kv/empty"), None, None).await;
    assert_eq!(get.json[0]["Value"], Value::Null);
    assert_eq!(get.json[0]["Flags"], 42);
}

#[tokio::test]
async fn consul_kv_raw_returns_only_the_value_bytes() {
    // https://developer.hashicorp.com/consul/api-docs/kv (raw query parameter)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    put_raw(&c, format!("{base}/v1/kv/web/config"), "{\"port\":8080}").await;
    let raw = send(
        &c,
        "GET",
        format!("{base}/v1/kv/web/config?raw"),
        None,
        None,
    )
    .await;
    assert_eq!(raw.status, StatusCode::OK);
    assert_eq!(raw.text, "{\"port\":8080}");
    assert_eq!(raw.header("content-type"), Some("text/plain"));
    assert!(raw.index() >= 1);
}

#[tokio::test]
async fn consul_kv_recurse_and_keys_with_separator() {
    // https://developer.hashicorp.com/consul/api-docs/kv (recurse, keys, separator)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    for k in [
        "web/bar",
        "web/foo",
        "web/subdir/a",
        "web/subdir/b",
        "other/x",
    ] {
        put_raw(&c, format!("{base}/v1/kv/{k}"), "v").await;
    }
    let rec = send(&c, "GET", format!("{base}/v1/kv/web?recurse"), None, None).await;
    assert_eq!(rec.status, StatusCode::OK);
    let names: Vec<&str> = rec
        .json
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["Key"].as_str().expect("Key"))
        .collect();
    assert_eq!(
        names,
        ["web/bar", "web/foo", "web/subdir/a", "web/subdir/b"]
    );
    // The index of a recursive read covers the whole subtree.
    let max_modify = rec
        .json
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["ModifyIndex"].as_u64())
        .max()
        .expect("max");
    assert!(rec.index() >= max_modify);

    let ks = send(
        &c,
        "GET",
        format!("{base}/v1/kv/web/?keys&separator=/"),
        None,
        None,
    )
    .await;
    assert_eq!(ks.status, StatusCode::OK);
    assert_eq!(ks.json, json!(["web/bar", "web/foo", "web/subdir/"]));

    // Without a separator every key under the prefix is listed.
    let all = send(
        &c,
        "GET",
        format!("{base}/v1/kv/web/subdir?keys"),
        None,
        None,
    )
    .await;
    assert_eq!(all.json, json!(["web/subdir/a", "web/subdir/b"]));

    // Consul also reads the historic misspelling `seperator` (agent/kvs_endpoint.go).
    let old = send(
        &c,
        "GET",
        format!("{base}/v1/kv/web/?keys&seperator=/"),
        None,
        None,
    )
    .await;
    assert_eq!(old.json, json!(["web/bar", "web/foo", "web/subdir/"]));

    // The root lists keys with an empty prefix; a missing prefix is 404.
    let root = send(
        &c,
        "GET",
        format!("{base}/v1/kv/?keys&separator=/"),
        None,
        None,
    )
    .await;
    assert_eq!(root.json, json!(["other/", "web/"]));
    let missing = send(
        &c,
        "GET",
        format!("{base}/v1/kv/nothing?recurse"),
        None,
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn consul_kv_cas_put_and_delete_answer_true_or_false() {
    // https://developer.hashicorp.com/consul/api-docs/kv (cas on PUT and DELETE)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let first = put_raw(&c, format!("{base}/v1/kv/cas-key?cas=0"), "a").await;
    assert_eq!(first.json, json!(true));
    let again = put_raw(&c, format!("{base}/v1/kv/cas-key?cas=0"), "b").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json, json!(false));
    let get = send(&c, "GET", format!("{base}/v1/kv/cas-key"), None, None).await;
    let modify = get.json[0]["ModifyIndex"].as_u64().expect("ModifyIndex");
    let stale = put_raw(
        &c,
        format!("{base}/v1/kv/cas-key?cas={}", modify + 1000),
        "c",
    )
    .await;
    assert_eq!(stale.json, json!(false));
    let ok = put_raw(&c, format!("{base}/v1/kv/cas-key?cas={modify}"), "d").await;
    assert_eq!(ok.json, json!(true));

    let del_stale = send(
        &c,
        "DELETE",
        format!("{base}/v1/kv/cas-key?cas={modify}"),
        None,
        None,
    )
    .await;
    assert_eq!(del_stale.json, json!(false));
    // Unlike PUT, cas=0 never deletes an existing key.
    let del_zero = send(
        &c,
        "DELETE",
        format!("{base}/v1/kv/cas-key?cas=0"),
        None,
        None,
    )
    .await;
    assert_eq!(del_zero.json, json!(false));
    let get = send(&c, "GET", format!("{base}/v1/kv/cas-key"), None, None).await;
    let modify = get.json[0]["ModifyIndex"].as_u64().expect("ModifyIndex");
    let del = send(
        &c,
        "DELETE",
        format!("{base}/v1/kv/cas-key?cas={modify}"),
        None,
        None,
    )
    .await;
    assert_eq!(del.json, json!(true));
    // A CAS delete of a missing key is true whatever the index (state store kvsDeleteCASTxn).
    let del = send(
        &c,
        "DELETE",
        format!("{base}/v1/kv/cas-key?cas=12345"),
        None,
        None,
    )
    .await;
    assert_eq!(del.json, json!(true));
    // A plain delete answers true even when nothing is there.
    let del = send(&c, "DELETE", format!("{base}/v1/kv/cas-key"), None, None).await;
    assert_eq!(del.status, StatusCode::OK);
    assert_eq!(del.json, json!(true));
}

#[tokio::test]
async fn consul_kv_acquire_sets_session_and_lock_index_release_clears_it() {
    // https://developer.hashicorp.com/consul/api-docs/kv (acquire, release; Session, LockIndex)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let s = send(&c, "PUT", format!("{base}/v1/session/create"), None, None).await;
    let id = s.json["ID"].as_str().expect("ID").to_string();
    let acq = put_raw(
        &c,
        format!("{base}/v1/kv/service/leader?acquire={id}"),
        "me",
    )
    .await;
    assert_eq!(acq.json, json!(true));
    let get = send(
        &c,
        "GET",
        format!("{base}/v1/kv/service/leader"),
        None,
        None,
    )
    .await;
    assert_eq!(get.json[0]["Session"], json!(id));
    assert_eq!(get.json[0]["LockIndex"], 1);
    let rel = put_raw(
        &c,
        format!("{base}/v1/kv/service/leader?release={id}"),
        "me",
    )
    .await;
    assert_eq!(rel.json, json!(true));
    let get = send(
        &c,
        "GET",
        format!("{base}/v1/kv/service/leader"),
        None,
        None,
    )
    .await;
    assert!(get.json[0].get("Session").is_none(), "{}", get.json);
    assert_eq!(get.json[0]["LockIndex"], 1);
}

// =============================================================================================
// Consul blocking queries

#[tokio::test]
async fn consul_blocking_query_returns_on_change_with_higher_index() {
    // https://developer.hashicorp.com/consul/api-docs/features/blocking (index, wait, X-Consul-Index)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    put_raw(&c, format!("{base}/v1/kv/block/me"), "1").await;
    let first = send(&c, "GET", format!("{base}/v1/kv/block/me"), None, None).await;
    let idx = first.index();

    let writer = {
        let c = c.clone();
        let base = base.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            put_raw(&c, format!("{base}/v1/kv/block/me"), "2").await;
        })
    };
    let t0 = Instant::now();
    let blocked = send(
        &c,
        "GET",
        format!("{base}/v1/kv/block/me?index={idx}&wait=10s"),
        None,
        None,
    )
    .await;
    writer.await.expect("writer");
    assert!(t0.elapsed() >= Duration::from_millis(250), "did not block");
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "did not wake on the write"
    );
    assert_eq!(blocked.status, StatusCode::OK);
    assert!(blocked.index() > idx);
    assert_eq!(blocked.json[0]["Value"], "Mg==");
}

#[tokio::test]
async fn consul_blocking_query_times_out_with_200_and_same_index() {
    // https://developer.hashicorp.com/consul/api-docs/features/blocking (a timeout is not an error)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let first = send(
        &c,
        "GET",
        format!("{base}/v1/config/service-defaults"),
        None,
        None,
    )
    .await;
    let idx = first.index();
    let t0 = Instant::now();
    let again = send(
        &c,
        "GET",
        format!("{base}/v1/config/service-defaults?index={idx}&wait=300ms"),
        None,
        None,
    )
    .await;
    assert!(t0.elapsed() >= Duration::from_millis(250));
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.index(), idx);
    assert_eq!(again.json, json!([]));
}

// =============================================================================================
// Consul sessions

#[tokio::test]
async fn consul_session_create_info_list_renew_destroy_shapes() {
    // https://developer.hashicorp.com/consul/api-docs/session (create, info, list, renew, destroy)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let created = send(
        &c,
        "PUT",
        format!("{base}/v1/session/create"),
        None,
        Some(json!({"Name": "my-service-lock", "TTL": "30s", "LockDelay": "15s", "Behavior": "release"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK);
    assert_eq!(keys(&created.json), ["ID"]);
    let id = created.json["ID"].as_str().expect("ID").to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok());

    let info = send(
        &c,
        "GET",
        format!("{base}/v1/session/info/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(info.status, StatusCode::OK);
    assert!(info.index() >= 1);
    let s = &info.json[0];
    assert_eq!(
        keys(s),
        sorted(&[
            "ID",
            "Name",
            "Node",
            "LockDelay",
            "Behavior",
            "TTL",
            "NodeChecks",
            "ServiceChecks",
            "CreateIndex",
            "ModifyIndex"
        ])
    );
    assert_eq!(s["Name"], "my-service-lock");
    // LockDelay is a Go time.Duration: integer nanoseconds.
    assert_eq!(s["LockDelay"], 15_000_000_000u64);
    assert_eq!(s["Behavior"], "release");
    assert_eq!(s["TTL"], "30s");
    assert_eq!(s["NodeChecks"], json!(["serfHealth"]));
    assert_eq!(s["ServiceChecks"], Value::Null);
    assert!(s["Node"].is_string());

    let list = send(&c, "GET", format!("{base}/v1/session/list"), None, None).await;
    assert!(
        list.json
            .as_array()
            .expect("array")
            .iter()
            .any(|x| x["ID"] == json!(id))
    );

    let renew = send(
        &c,
        "PUT",
        format!("{base}/v1/session/renew/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(renew.status, StatusCode::OK);
    assert_eq!(renew.json.as_array().expect("array").len(), 1);
    assert_eq!(renew.json[0]["ID"], json!(id));
    assert_eq!(renew.json[0]["TTL"], "30s");

    let destroy = send(
        &c,
        "PUT",
        format!("{base}/v1/session/destroy/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(destroy.status, StatusCode::OK);
    assert_eq!(destroy.json, json!(true));

    // Gone: info is an empty list, renew is 404 text.
    let info = send(
        &c,
        "GET",
        format!("{base}/v1/session/info/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(info.status, StatusCode::OK);
    assert_eq!(info.json, json!([]));
    let renew = send(
        &c,
        "PUT",
        format!("{base}/v1/session/renew/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(renew.status, StatusCode::NOT_FOUND);
    assert_eq!(renew.text, format!("Session id '{id}' not found"));
}

#[tokio::test]
async fn consul_session_create_without_body_uses_documented_defaults() {
    // https://developer.hashicorp.com/consul/api-docs/session (LockDelay "15s", Behavior release, no TTL)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let created = send(&c, "PUT", format!("{base}/v1/session/create"), None, None).await;
    let id = created.json["ID"].as_str().expect("ID").to_string();
    let info = send(
        &c,
        "GET",
        format!("{base}/v1/session/info/{id}"),
        None,
        None,
    )
    .await;
    let s = &info.json[0];
    assert_eq!(s["LockDelay"], 15_000_000_000u64);
    assert_eq!(s["Behavior"], "release");
    assert_eq!(s["TTL"], "");
    assert_eq!(s["Name"], "");
    // The session is bound to the agent's own node.
    let node = s["Node"].as_str().expect("Node");
    let n = send(
        &c,
        "GET",
        format!("{base}/v1/session/node/{node}"),
        None,
        None,
    )
    .await;
    assert!(
        n.json
            .as_array()
            .expect("array")
            .iter()
            .any(|x| x["ID"] == json!(id))
    );
}

// =============================================================================================
// Consul config entries

#[tokio::test]
async fn consul_config_apply_read_list_delete_with_cas() {
    // https://developer.hashicorp.com/consul/api-docs/config (apply, get, list, delete, cas)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let entry = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "HTTP"});
    let put = send(
        &c,
        "PUT",
        format!("{base}/v1/config"),
        None,
        Some(entry.clone()),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(put.json, json!(true));

    let get = send(
        &c,
        "GET",
        format!("{base}/v1/config/service-defaults/web"),
        None,
        None,
    )
    .await;
    assert_eq!(get.status, StatusCode::OK);
    assert!(get.index() >= 1);
    assert_eq!(get.json["Kind"], "service-defaults");
    assert_eq!(get.json["Name"], "web");
    // Protocol is lower-cased on write (api-facts §2.3).
    assert_eq!(get.json["Protocol"], "http");
    let modify = get.json["ModifyIndex"].as_u64().expect("ModifyIndex");
    assert!(get.json["CreateIndex"].as_u64().expect("CreateIndex") <= modify);

    let list = send(
        &c,
        "GET",
        format!("{base}/v1/config/service-defaults"),
        None,
        None,
    )
    .await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.index() >= modify);
    assert_eq!(list.json.as_array().expect("array").len(), 1);
    assert_eq!(list.json[0]["Name"], "web");

    // cas=0 means create-only: false for an existing entry, not an error. (The write must
    // change something: Consul answers true to a write that changes nothing, without writing.)
    let changed = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "grpc"});
    let again = send(
        &c,
        "PUT",
        format!("{base}/v1/config?cas=0"),
        None,
        Some(changed.clone()),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json, json!(false));
    let stale = send(
        &c,
        "PUT",
        format!("{base}/v1/config?cas={}", modify + 100),
        None,
        Some(changed.clone()),
    )
    .await;
    assert_eq!(stale.json, json!(false));
    let ok = send(
        &c,
        "PUT",
        format!("{base}/v1/config?cas={modify}"),
        None,
        Some(changed),
    )
    .await;
    assert_eq!(ok.json, json!(true));
    let get = send(
        &c,
        "GET",
        format!("{base}/v1/config/service-defaults/web"),
        None,
        None,
    )
    .await;
    let modify2 = get.json["ModifyIndex"].as_u64().expect("ModifyIndex");
    assert!(modify2 > modify);

    // Delete with a stale cas is false, with the current one true.
    let del = send(
        &c,
        "DELETE",
        format!("{base}/v1/config/service-defaults/web?cas={modify}"),
        None,
        None,
    )
    .await;
    assert_eq!(del.json, json!(false));
    let del = send(
        &c,
        "DELETE",
        format!("{base}/v1/config/service-defaults/web?cas={modify2}"),
        None,
        None,
    )
    .await;
    assert_eq!(del.status, StatusCode::OK);
    assert_eq!(del.json, json!(true));

    let miss = send(
        &c,
        "GET",
        format!("{base}/v1/config/service-defaults/web"),
        None,
        None,
    )
    .await;
    assert_eq!(miss.status, StatusCode::NOT_FOUND);
    assert_eq!(
        miss.text,
        "Config entry not found for \"service-defaults\" / \"web\""
    );
    let list = send(
        &c,
        "GET",
        format!("{base}/v1/config/service-defaults"),
        None,
        None,
    )
    .await;
    assert_eq!(list.json, json!([]));

    // Without cas, delete answers `{}` (api-facts §2.3), also for a missing entry.
    send(&c, "PUT", format!("{base}/v1/config"), None, Some(entry)).await;
    let del = send(
        &c,
        "DELETE",
        format!("{base}/v1/config/service-defaults/web"),
        None,
        None,
    )
    .await;
    assert_eq!(del.status, StatusCode::OK);
    assert_eq!(del.json, json!({}));
}

#[tokio::test]
async fn consul_service_defaults_read_has_server_struct_fields() {
    // https://developer.hashicorp.com/consul/api-docs/config (Get Configuration sample: Kind, Name,
    // Protocol, CreateIndex, ModifyIndex); agent/structs/config_entry.go: Protocol has no omitempty,
    // the struct-valued TransparentProxy/MeshGateway/Expose encode as {}
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let put = send(
        &c,
        "PUT",
        format!("{base}/v1/config"),
        None,
        Some(json!({"Kind": "service-defaults", "Name": "api"})),
    )
    .await;
    assert_eq!(put.json, json!(true));
    let get = send(
        &c,
        "GET",
        format!("{base}/v1/config/service-defaults/api"),
        None,
        None,
    )
    .await;
    assert_eq!(get.json["Protocol"], "");
    assert_eq!(get.json["TransparentProxy"], json!({}));
    assert_eq!(get.json["MeshGateway"], json!({}));
    assert_eq!(get.json["Expose"], json!({}));
    assert!(get.json["CreateIndex"].is_u64() && get.json["ModifyIndex"].is_u64());
    // omitempty fields stay out.
    for k in [
        "Mode",
        "MutualTLSMode",
        "ExternalSNI",
        "UpstreamConfig",
        "Destination",
        "Meta",
    ] {
        assert!(
            get.json.get(k).is_none(),
            "{k} should be omitted: {}",
            get.json
        );
    }
}

#[tokio::test]
async fn consul_config_accepts_snake_case_and_answers_pascal_case() {
    // https://developer.hashicorp.com/consul/docs/connect/config-entries (snake_case or CamelCase keys)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let put = send(
        &c,
        "PUT",
        format!("{base}/v1/config"),
        None,
        Some(json!({"kind": "proxy-defaults", "name": "global", "config": {"protocol": "http"}})),
    )
    .await;
    assert_eq!(put.json, json!(true));
    let get = send(
        &c,
        "GET",
        format!("{base}/v1/config/proxy-defaults/global"),
        None,
        None,
    )
    .await;
    assert_eq!(get.json["Kind"], "proxy-defaults");
    assert_eq!(get.json["Name"], "global");
    // `Config` is opaque: its keys are kept as written.
    assert_eq!(get.json["Config"], json!({"protocol": "http"}));
    assert!(get.json.get("kind").is_none());
}

#[tokio::test]
async fn consul_config_validation_error_is_500_text_and_decode_error_400() {
    // api-facts §2.3: validation errors are 500 text, decode errors 400 `Request decoding failed`
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let bad = send(
        &c,
        "PUT",
        format!("{base}/v1/config"),
        None,
        Some(json!({"Kind": "service-intentions", "Name": "db", "Sources": [{"Name": "web", "Action": "maybe"}]})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        bad.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    assert!(
        bad.text
            .contains("Sources[0].Action must be set to 'allow' or 'deny'"),
        "{}",
        bad.text
    );

    let r = c
        .put(format!("{base}/v1/config"))
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .expect("body")
            .starts_with("Request decoding failed")
    );
}

#[tokio::test]
async fn consul_intentions_are_normalized_on_write() {
    // https://developer.hashicorp.com/consul/docs/connect/config-entries/service-intentions
    // (Precedence, Type "consul"; api-facts §2.3: sources re-sorted by precedence, methods upper-cased)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let sd = send(
        &c,
        "PUT",
        format!("{base}/v1/config"),
        None,
        Some(json!({"Kind": "service-defaults", "Name": "db", "Protocol": "http"})),
    )
    .await;
    assert_eq!(sd.json, json!(true));
    let put = send(
        &c,
        "PUT",
        format!("{base}/v1/config"),
        None,
        Some(json!({
            "Kind": "service-intentions",
            "Name": "db",
            "Sources": [
                {"Name": "*", "Action": "deny"},
                {"Name": "web", "Permissions": [
                    {"Action": "allow", "HTTP": {"PathPrefix": "/api", "Methods": ["get", "Post"]}}
                ]},
                {"Name": "admin", "Action": "allow", "Description": "ops"}
            ]
        })),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(put.json, json!(true));
    let get = send(
        &c,
        "GET",
        format!("{base}/v1/config/service-intentions/db"),
        None,
        None,
    )
    .await;
    let sources = get.json["Sources"].as_array().expect("Sources");
    let order: Vec<&str> = sources
        .iter()
        .map(|s| s["Name"].as_str().expect("Name"))
        .collect();
    // Exact sources (precedence 9) first in their original order, then the wildcard (8).
    assert_eq!(order, ["web", "admin", "*"]);
    let prec: Vec<u64> = sources
        .iter()
        .map(|s| s["Precedence"].as_u64().expect("Precedence"))
        .collect();
    assert_eq!(prec, [9, 9, 8]);
    assert!(sources.iter().all(|s| s["Type"] == "consul"));
    assert_eq!(
        sources[0]["Permissions"][0]["HTTP"]["Methods"],
        json!(["GET", "POST"])
    );
    // An L7 source has no Action of its own.
    assert!(sources[0].get("Action").is_none());
    assert_eq!(sources[1]["Description"], "ops");
    assert!(get.json["CreateIndex"].is_u64() && get.json["ModifyIndex"].is_u64());
}

#[tokio::test]
async fn consul_l7_intentions_need_an_http_protocol() {
    // api-facts §2.3: `service "x" has protocol "tcp", which is incompatible with L7 intentions permissions`
    let ds = start().await;
    let c = client();
    let put = send(
        &c,
        "PUT",
        format!("{}/v1/config", ds.consul_url()),
        None,
        Some(json!({
            "Kind": "service-intentions",
            "Name": "api",
            "Sources": [{"Name": "web", "Permissions": [{"Action": "allow", "HTTP": {"PathExact": "/"}}]}]
        })),
    )
    .await;
    assert_eq!(put.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(put.text.contains(
        "service \"api\" has protocol \"tcp\", which is incompatible with L7 intentions permissions"
    ));
}

// =============================================================================================
// Consul catalog and health

#[tokio::test]
async fn consul_catalog_services_is_map_of_tag_lists_with_consul() {
    // https://developer.hashicorp.com/consul/api-docs/catalog (List Services: {"consul": [], ...})
    let ds = start().await;
    let c = client();
    let r = send(
        &c,
        "GET",
        format!("{}/v1/catalog/services", ds.consul_url()),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.index() >= 1);
    // An untagged service has `[]`, not null.
    assert_eq!(r.json["consul"], json!([]));
}

#[tokio::test]
async fn consul_catalog_and_health_unknown_service_are_empty_arrays() {
    // https://developer.hashicorp.com/consul/api-docs/catalog and /health (api-facts §6.7: [] not 404)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    for path in [
        "/v1/catalog/service/nope",
        "/v1/health/service/nope",
        "/v1/health/checks/nope",
        "/v1/health/service/nope?passing",
    ] {
        let r = send(&c, "GET", format!("{base}{path}"), None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.json, json!([]), "{path}");
        assert!(r.index() >= 1, "{path}");
    }
}

#[tokio::test]
async fn consul_catalog_register_then_health_service_has_node_service_checks() {
    // https://developer.hashicorp.com/consul/api-docs/catalog (Register Entity) and
    // https://developer.hashicorp.com/consul/api-docs/health (List Service Instances for Service)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let reg = send(
        &c,
        "PUT",
        format!("{base}/v1/catalog/register"),
        None,
        Some(json!({
            "Node": "foobar",
            "Address": "192.168.10.10",
            "Service": {"ID": "redis1", "Service": "redis", "Tags": ["primary", "v1"], "Address": "127.0.0.1", "Port": 8000},
            "Check": {"Node": "foobar", "CheckID": "service:redis1", "Name": "Redis health check", "Status": "passing", "ServiceID": "redis1"}
        })),
    )
    .await;
    assert_eq!(reg.status, StatusCode::OK, "{}", reg.text);
    assert_eq!(reg.json, json!(true));

    let svcs = send(&c, "GET", format!("{base}/v1/catalog/services"), None, None).await;
    assert_eq!(svcs.json["redis"], json!(["primary", "v1"]));

    let cat = send(
        &c,
        "GET",
        format!("{base}/v1/catalog/service/redis"),
        None,
        None,
    )
    .await;
    let e = &cat.json[0];
    for k in [
        "ID",
        "Node",
        "Address",
        "Datacenter",
        "TaggedAddresses",
        "NodeMeta",
        "ServiceID",
        "ServiceName",
        "ServiceTags",
        "ServiceAddress",
        "ServicePort",
        "ServiceMeta",
        "ServiceWeights",
        "ServiceEnableTagOverride",
        "CreateIndex",
        "ModifyIndex",
    ] {
        assert!(e.get(k).is_some(), "catalog service lacks {k}: {e}");
    }
    assert_eq!(e["Node"], "foobar");
    assert_eq!(e["Address"], "192.168.10.10");
    assert_eq!(e["ServiceID"], "redis1");
    assert_eq!(e["ServicePort"], 8000);
    assert_eq!(e["ServiceWeights"], json!({"Passing": 1, "Warning": 1}));
    // agent/structs ServiceNode: the peer field is `PeerName`, omitempty; there is no
    // `ServicePeerName`.
    assert!(
        e.get("ServicePeerName").is_none() && e.get("PeerName").is_none(),
        "{e}"
    );

    let tagged = send(
        &c,
        "GET",
        format!("{base}/v1/catalog/service/redis?tag=v2"),
        None,
        None,
    )
    .await;
    assert_eq!(tagged.json, json!([]));
    // `tag` may repeat: an instance must carry every tag given (catalog and health).
    for path in ["catalog/service", "health/service"] {
        let both = send(
            &c,
            "GET",
            format!("{base}/v1/{path}/redis?tag=primary&tag=v1"),
            None,
            None,
        )
        .await;
        assert_eq!(both.json.as_array().expect("array").len(), 1, "{path}");
        let mixed = send(
            &c,
            "GET",
            format!("{base}/v1/{path}/redis?tag=primary&tag=v2"),
            None,
            None,
        )
        .await;
        assert_eq!(mixed.json, json!([]), "{path}");
    }

    let h = send(
        &c,
        "GET",
        format!("{base}/v1/health/service/redis"),
        None,
        None,
    )
    .await;
    assert_eq!(h.status, StatusCode::OK);
    let entry = &h.json[0];
    assert_eq!(keys(entry), sorted(&["Node", "Service", "Checks"]));
    assert_eq!(entry["Node"]["Node"], "foobar");
    assert_eq!(entry["Service"]["ID"], "redis1");
    assert_eq!(entry["Service"]["Service"], "redis");
    assert_eq!(entry["Service"]["Port"], 8000);
    let checks = entry["Checks"].as_array().expect("Checks");
    // The node's serfHealth check comes with the service's own checks.
    assert!(
        checks
            .iter()
            .any(|c| c["CheckID"] == "serfHealth" && c["ServiceID"] == "")
    );
    let own = checks
        .iter()
        .find(|c| c["CheckID"] == "service:redis1")
        .expect("service check");
    assert_eq!(own["Status"], "passing");
    assert_eq!(own["ServiceName"], "redis");
    assert!(own["ServiceTags"].is_array());
}

// =============================================================================================
// Vault KV v2

const KV_ENVELOPE: &[&str] = &[
    "request_id",
    "lease_id",
    "renewable",
    "lease_duration",
    "data",
    "wrap_info",
    "warnings",
    "auth",
    "mount_type",
];

#[tokio::test]
async fn vault_kv2_create_and_read_secret_version() {
    // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2 (Create/Update Secret, Read Secret Version)
    let ds = start().await;
    let c = client();
    let (base, tok) = (ds.vault_url(), ds.root_token().to_string());
    let w = send(
        &c,
        "POST",
        format!("{base}/v1/secret/data/my-secret"),
        Some(&tok),
        Some(json!({"options": {"cas": 0}, "data": {"foo": "bar", "zip": "zap"}})),
    )
    .await;
    assert_eq!(w.status, StatusCode::OK, "{}", w.text);
    assert_eq!(keys(&w.json), sorted(KV_ENVELOPE));
    let d = &w.json["data"];
    assert_eq!(
        keys(d),
        sorted(&[
            "created_time",
            "custom_metadata",
            "deletion_time",
            "destroyed",
            "version"
        ])
    );
    assert_eq!(d["version"], 1);
    assert_eq!(d["deletion_time"], "");
    assert_eq!(d["destroyed"], false);
    assert_eq!(d["custom_metadata"], Value::Null);
    assert!(
        d["created_time"]
            .as_str()
            .expect("created_time")
            .ends_with('Z')
    );

    let r = send(
        &c,
        "GET",
        format!("{base}/v1/secret/data/my-secret"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(is_json(&r));
    assert_eq!(keys(&r.json), sorted(KV_ENVELOPE));
    assert_eq!(r.json["data"]["data"], json!({"foo": "bar", "zip": "zap"}));
    assert_eq!(keys(&r.json["data"]["metadata"]), keys(d));
    assert_eq!(r.json["data"]["metadata"]["version"], 1);
    assert_eq!(r.json["lease_id"], "");
    assert_eq!(r.json["lease_duration"], 0);
    assert_eq!(r.json["renewable"], false);
    assert_eq!(r.json["auth"], Value::Null);
    assert_eq!(r.json["wrap_info"], Value::Null);
    assert_eq!(r.json["mount_type"], "kv");

    // A second write is version 2; ?version=1 still reads the first.
    send(
        &c,
        "POST",
        format!("{base}/v1/secret/data/my-secret"),
        Some(&tok),
        Some(json!({"data": {"foo": "baz"}})),
    )
    .await;
    let v1 = send(
        &c,
        "GET",
        format!("{base}/v1/secret/data/my-secret?version=1"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(v1.json["data"]["data"]["foo"], "bar");
    assert_eq!(v1.json["data"]["metadata"]["version"], 1);
    let cur = send(
        &c,
        "GET",
        format!("{base}/v1/secret/data/my-secret"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(cur.json["data"]["metadata"]["version"], 2);
    let gone = send(
        &c,
        "GET",
        format!("{base}/v1/secret/data/my-secret?version=9"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.json, json!({"errors": []}));
}

#[tokio::test]
async fn vault_kv2_missing_secret_and_unmounted_path_differ() {
    // api-facts §3.1: missing secret 404 {"errors":[]}; no mount 404 "no handler for route"
    let ds = start().await;
    let c = client();
    let (base, tok) = (ds.vault_url(), ds.root_token().to_string());
    let miss = send(
        &c,
        "GET",
        format!("{base}/v1/secret/data/nope"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(miss.status, StatusCode::NOT_FOUND);
    assert_eq!(miss.json, json!({"errors": []}));
    let nomount = send(
        &c,
        "GET",
        format!("{base}/v1/nomount/data/x"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(nomount.status, StatusCode::NOT_FOUND);
    let msg = nomount.json["errors"][0].as_str().expect("error text");
    assert!(msg.starts_with("no handler for route"), "{msg}");
}

#[tokio::test]
async fn vault_kv2_cas_mismatch_is_400() {
    // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2 (options.cas)
    let ds = start().await;
    let c = client();
    let (base, tok) = (ds.vault_url(), ds.root_token().to_string());
    let url = format!("{base}/v1/secret/data/cas");
    send(
        &c,
        "POST",
        url.clone(),
        Some(&tok),
        Some(json!({"data": {"a": "1"}})),
    )
    .await;
    let bad = send(
        &c,
        "POST",
        url,
        Some(&tok),
        Some(json!({"options": {"cas": 0}, "data": {"a": "2"}})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.json,
        json!({"errors": ["check-and-set parameter did not match the current version"]})
    );
}

#[tokio::test]
async fn vault_kv2_soft_delete_undelete_destroy() {
    // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2 (Delete Latest Version,
    // Delete Secret Versions, Undelete Secret Versions, Destroy Secret Versions)
    let ds = start().await;
    let c = client();
    let (base, tok) = (ds.vault_url(), ds.root_token().to_string());
    let data = format!("{base}/v1/secret/data/app");
    send(
        &c,
        "POST",
        data.clone(),
        Some(&tok),
        Some(json!({"data": {"k": "v1"}})),
    )
    .await;
    send(
        &c,
        "POST",
        data.clone(),
        Some(&tok),
        Some(json!({"data": {"k": "v2"}})),
    )
    .await;

    // Delete latest: 204, then the read is 404 *with* a body: data null, metadata filled.
    let del = send(&c, "DELETE", data.clone(), Some(&tok), None).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(del.text, "");
    let r = send(&c, "GET", data.clone(), Some(&tok), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json["data"]["data"], Value::Null);
    assert_eq!(r.json["data"]["metadata"]["version"], 2);
    assert_ne!(r.json["data"]["metadata"]["deletion_time"], "");
    assert_eq!(r.json["data"]["metadata"]["destroyed"], false);

    // Undelete version 2.
    let und = send(
        &c,
        "POST",
        format!("{base}/v1/secret/undelete/app"),
        Some(&tok),
        Some(json!({"versions": [2]})),
    )
    .await;
    assert_eq!(und.status, StatusCode::NO_CONTENT);
    let r = send(&c, "GET", data.clone(), Some(&tok), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["data"]["data"]["k"], "v2");
    assert_eq!(r.json["data"]["metadata"]["deletion_time"], "");

    // Delete a chosen version.
    let d1 = send(
        &c,
        "POST",
        format!("{base}/v1/secret/delete/app"),
        Some(&tok),
        Some(json!({"versions": [1]})),
    )
    .await;
    assert_eq!(d1.status, StatusCode::NO_CONTENT);
    let r = send(&c, "GET", format!("{data}?version=1"), Some(&tok), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_ne!(r.json["data"]["metadata"]["deletion_time"], "");

    // Destroy version 2: 404 with destroyed true.
    let ds2 = send(
        &c,
        "PUT",
        format!("{base}/v1/secret/destroy/app"),
        Some(&tok),
        Some(json!({"versions": [2]})),
    )
    .await;
    assert_eq!(ds2.status, StatusCode::NO_CONTENT);
    let r = send(&c, "GET", data.clone(), Some(&tok), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json["data"]["data"], Value::Null);
    assert_eq!(r.json["data"]["metadata"]["destroyed"], true);

    // Metadata reflects both.
    let m = send(
        &c,
        "GET",
        format!("{base}/v1/secret/metadata/app"),
        Some(&tok),
        None,
    )
    .await;
    assert_ne!(m.json["data"]["versions"]["1"]["deletion_time"], "");
    assert_eq!(m.json["data"]["versions"]["2"]["destroyed"], true);
}

#[tokio::test]
async fn vault_kv2_metadata_read_write_list_delete() {
    // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2 (Read/Create/List/Delete Metadata)
    let ds = start().await;
    let c = client();
    let (base, tok) = (ds.vault_url(), ds.root_token().to_string());
    for p in ["my-secret", "folder/one", "folder/two"] {
        send(
            &c,
            "POST",
            format!("{base}/v1/secret/data/{p}"),
            Some(&tok),
            Some(json!({"data": {"x": "y"}})),
        )
        .await;
    }
    let m = send(
        &c,
        "GET",
        format!("{base}/v1/secret/metadata/my-secret"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(m.status, StatusCode::OK);
    assert_eq!(keys(&m.json), sorted(KV_ENVELOPE));
    let d = &m.json["data"];
    assert_eq!(
        keys(d),
        sorted(&[
            "cas_required",
            "created_time",
            "current_version",
            "custom_metadata",
            "delete_version_after",
            "max_versions",
            "oldest_version",
            "updated_time",
            "versions"
        ])
    );
    assert_eq!(d["current_version"], 1);
    assert_eq!(d["oldest_version"], 0);
    assert_eq!(d["max_versions"], 0);
    assert_eq!(d["cas_required"], false);
    assert_eq!(d["delete_version_after"], "0s");
    assert_eq!(d["custom_metadata"], Value::Null);
    assert_eq!(
        keys(&d["versions"]["1"]),
        sorted(&["created_time", "deletion_time", "destroyed"])
    );

    // Write metadata: 204; custom_metadata then shows in metadata and in data reads.
    let w = send(
        &c,
        "POST",
        format!("{base}/v1/secret/metadata/my-secret"),
        Some(&tok),
        Some(json!({"max_versions": 5, "cas_required": false, "custom_metadata": {"foo": "abc", "bar": "123"}})),
    )
    .await;
    assert_eq!(w.status, StatusCode::NO_CONTENT);
    let m = send(
        &c,
        "GET",
        format!("{base}/v1/secret/metadata/my-secret"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(m.json["data"]["max_versions"], 5);
    assert_eq!(
        m.json["data"]["custom_metadata"],
        json!({"foo": "abc", "bar": "123"})
    );
    let r = send(
        &c,
        "GET",
        format!("{base}/v1/secret/data/my-secret"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.json["data"]["metadata"]["custom_metadata"]["foo"], "abc");

    // Patch Metadata: merge-patch content type required; custom_metadata merges key by key.
    let wrong = send(
        &c,
        "PATCH",
        format!("{base}/v1/secret/metadata/my-secret"),
        Some(&tok),
        Some(json!({"max_versions": 3})),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let patch = |path: &str, body: &'static str| {
        c.patch(format!("{base}/v1/secret/metadata/{path}"))
            .header("X-Vault-Token", &tok)
            .header("Content-Type", "application/merge-patch+json")
            .body(body)
            .send()
    };
    let p = patch(
        "my-secret",
        r#"{"max_versions": 3, "custom_metadata": {"bar": "456", "baz": "x"}}"#,
    )
    .await
    .expect("patch");
    assert_eq!(p.status(), StatusCode::NO_CONTENT);
    let m = send(
        &c,
        "GET",
        format!("{base}/v1/secret/metadata/my-secret"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(m.json["data"]["max_versions"], 3);
    assert_eq!(
        m.json["data"]["custom_metadata"],
        json!({"foo": "abc", "bar": "456", "baz": "x"})
    );
    let p = patch("no-such-secret", r#"{"max_versions": 3}"#)
        .await
        .expect("patch");
    assert_eq!(p.status(), StatusCode::NOT_FOUND);

    // List: LIST verb and GET ?list=true; folders end in `/`.
    let l = send(
        &c,
        "LIST",
        format!("{base}/v1/secret/metadata/"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(l.status, StatusCode::OK);
    assert_eq!(l.json["data"], json!({"keys": ["folder/", "my-secret"]}));
    let l2 = send(
        &c,
        "GET",
        format!("{base}/v1/secret/metadata/folder?list=true"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(l2.json["data"]["keys"], json!(["one", "two"]));
    let l3 = send(
        &c,
        "LIST",
        format!("{base}/v1/secret/metadata/empty/"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(l3.status, StatusCode::NOT_FOUND);
    assert_eq!(l3.json, json!({"errors": []}));

    // Delete metadata and all versions.
    let del = send(
        &c,
        "DELETE",
        format!("{base}/v1/secret/metadata/my-secret"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let m = send(
        &c,
        "GET",
        format!("{base}/v1/secret/metadata/my-secret"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(m.status, StatusCode::NOT_FOUND);
    let r = send(
        &c,
        "GET",
        format!("{base}/v1/secret/data/my-secret"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json, json!({"errors": []}));
}

#[tokio::test]
async fn vault_kv2_patch_needs_merge_patch_content_type() {
    // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2 (Patch Secret)
    let ds = start().await;
    let c = client();
    let (base, tok) = (ds.vault_url(), ds.root_token().to_string());
    let url = format!("{base}/v1/secret/data/p");
    send(
        &c,
        "POST",
        url.clone(),
        Some(&tok),
        Some(json!({"data": {"a": "1", "b": "2"}})),
    )
    .await;
    let wrong = send(
        &c,
        "PATCH",
        url.clone(),
        Some(&tok),
        Some(json!({"data": {"a": "9"}})),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = c
        .patch(url.clone())
        .header("X-Vault-Token", &tok)
        .header("Content-Type", "application/merge-patch+json")
        .body(r#"{"data":{"a":"9","b":null}}"#)
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["data"]["version"], 2);
    let get = send(&c, "GET", url, Some(&tok), None).await;
    assert_eq!(get.json["data"]["data"], json!({"a": "9"}));
}

#[tokio::test]
async fn vault_kv_config_read_and_write_with_delete_version_after() {
    // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2 (Configure the KV engine: sample
    // payload max_versions 5, delete_version_after "3h25m19s"; Read KV engine configuration)
    let ds = start().await;
    let c = client();
    let (base, tok) = (ds.vault_url(), ds.root_token().to_string());
    let r = send(
        &c,
        "GET",
        format!("{base}/v1/secret/config"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.json["data"]["delete_version_after"], "0s");
    let w = send(
        &c,
        "POST",
        format!("{base}/v1/secret/config"),
        Some(&tok),
        Some(json!({"max_versions": 5, "cas_required": false, "delete_version_after": "3h25m19s"})),
    )
    .await;
    assert_eq!(w.status, StatusCode::NO_CONTENT);
    let r = send(
        &c,
        "GET",
        format!("{base}/v1/secret/config"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(
        keys(&r.json["data"]),
        sorted(&["cas_required", "delete_version_after", "max_versions"])
    );
    assert_eq!(r.json["data"]["max_versions"], 5);
    assert_eq!(r.json["data"]["delete_version_after"], "3h25m19s");

    // A version written now carries a deletion_time in the future and still reads as 200.
    let wr = send(
        &c,
        "POST",
        format!("{base}/v1/secret/data/timed"),
        Some(&tok),
        Some(json!({"data": {"a": "b"}})),
    )
    .await;
    let deletion = wr.json["data"]["deletion_time"]
        .as_str()
        .expect("deletion_time");
    assert!(!deletion.is_empty());
    assert!(
        deletion
            > wr.json["data"]["created_time"]
                .as_str()
                .expect("created_time")
    );
    let rd = send(
        &c,
        "GET",
        format!("{base}/v1/secret/data/timed"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(rd.status, StatusCode::OK);
    assert_eq!(rd.json["data"]["data"]["a"], "b");

    // Per-secret metadata setting, printed as a Go duration.
    send(
        &c,
        "POST",
        format!("{base}/v1/secret/metadata/timed"),
        Some(&tok),
        Some(json!({"delete_version_after": "90s"})),
    )
    .await;
    let m = send(
        &c,
        "GET",
        format!("{base}/v1/secret/metadata/timed"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(m.json["data"]["delete_version_after"], "1m30s");
}

#[tokio::test]
async fn vault_kv2_subkeys_lists_key_structure_without_values() {
    // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2 (Read secret subkeys)
    let ds = start().await;
    let c = client();
    let (base, tok) = (ds.vault_url(), ds.root_token().to_string());
    send(
        &c,
        "POST",
        format!("{base}/v1/secret/data/nested"),
        Some(&tok),
        Some(json!({"data": {"foo": "abc", "bar": {"baz": "def", "quux": {"corge": "x"}}, "empty": {}}})),
    )
    .await;
    let r = send(
        &c,
        "GET",
        format!("{base}/v1/secret/subkeys/nested"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.json["data"]["subkeys"],
        json!({"foo": null, "bar": {"baz": null, "quux": {"corge": null}}, "empty": null})
    );
    assert_eq!(r.json["data"]["metadata"]["version"], 1);
    let d1 = send(
        &c,
        "GET",
        format!("{base}/v1/secret/subkeys/nested?depth=1"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(
        d1.json["data"]["subkeys"],
        json!({"foo": null, "bar": null, "empty": null})
    );
    let miss = send(
        &c,
        "GET",
        format!("{base}/v1/secret/subkeys/none"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(miss.status, StatusCode::NOT_FOUND);
    assert_eq!(miss.json, json!({"errors": []}));
}

// =============================================================================================
// Vault sys

#[tokio::test]
async fn vault_sys_mounts_lists_kv_v2_with_options() {
    // https://developer.hashicorp.com/vault/api-docs/system/mounts (List mounted secrets engines)
    let ds = start().await;
    let c = client();
    let (base, tok) = (ds.vault_url(), ds.root_token().to_string());
    let enable = send(
        &c,
        "POST",
        format!("{base}/v1/sys/mounts/my-mount"),
        Some(&tok),
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await;
    assert_eq!(enable.status, StatusCode::NO_CONTENT);
    let r = send(&c, "GET", format!("{base}/v1/sys/mounts"), Some(&tok), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let m = &r.json["data"]["my-mount/"];
    assert_eq!(m["type"], "kv");
    assert_eq!(m["options"], json!({"version": "2"}));
    for k in [
        "accessor",
        "config",
        "description",
        "local",
        "seal_wrap",
        "uuid",
    ] {
        assert!(m.get(k).is_some(), "mount lacks {k}");
    }
    assert!(r.json["data"]["secret/"].is_object());
    assert!(r.json["data"]["sys/"].is_object());
    // https://developer.hashicorp.com/vault/api-docs/system/mounts (Read mount configuration: tune)
    let tune = send(
        &c,
        "GET",
        format!("{base}/v1/sys/mounts/my-mount/tune"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(tune.status, StatusCode::OK);
    assert_eq!(tune.json["data"]["options"]["version"], "2");
    assert!(tune.json["data"]["default_lease_ttl"].is_u64());
    assert!(tune.json["data"]["max_lease_ttl"].is_u64());
    // Enabling over an existing path is a 400.
    let dup = send(
        &c,
        "POST",
        format!("{base}/v1/sys/mounts/my-mount"),
        Some(&tok),
        Some(json!({"type": "kv"})),
    )
    .await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn vault_sys_internal_ui_mounts_tells_kv_version() {
    // api-facts §3.3: consul-template's preflight `sys/internal/ui/mounts/<path>`
    let ds = start().await;
    let c = client();
    let (base, tok) = (ds.vault_url(), ds.root_token().to_string());
    let r = send(
        &c,
        "GET",
        format!("{base}/v1/sys/internal/ui/mounts/secret/default/app"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["data"]["path"], "secret/");
    assert_eq!(r.json["data"]["type"], "kv");
    assert_eq!(r.json["data"]["options"]["version"], "2");

    // Without a path: every secret engine and auth method.
    let all = send(
        &c,
        "GET",
        format!("{base}/v1/sys/internal/ui/mounts"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.json["data"]["secret"]["secret/"]["type"], "kv");
    assert_eq!(all.json["data"]["auth"]["token/"]["type"], "token");

    // A KV v1 mount reports version "1".
    send(
        &c,
        "POST",
        format!("{base}/v1/sys/mounts/old"),
        Some(&tok),
        Some(json!({"type": "kv", "options": {"version": "1"}})),
    )
    .await;
    let v1 = send(
        &c,
        "GET",
        format!("{base}/v1/sys/internal/ui/mounts/old/x"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(v1.json["data"]["path"], "old/");
    assert_eq!(v1.json["data"]["options"]["version"], "1");

    // No mount: 403 (so mounts cannot be enumerated), JSON error list.
    let none = send(
        &c,
        "GET",
        format!("{base}/v1/sys/internal/ui/mounts/nomount/x"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(none.status, StatusCode::FORBIDDEN);
    assert!(none.json["errors"][0].is_string());
}

#[tokio::test]
async fn vault_kv1_read_is_flat_with_lease_duration() {
    // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1 (Read Secret: lease_duration 2764800)
    let ds = start().await;
    let c = client();
    let (base, tok) = (ds.vault_url(), ds.root_token().to_string());
    send(
        &c,
        "POST",
        format!("{base}/v1/sys/mounts/kv1"),
        Some(&tok),
        Some(json!({"type": "kv"})),
    )
    .await;
    let w = send(
        &c,
        "POST",
        format!("{base}/v1/kv1/my-secret"),
        Some(&tok),
        Some(json!({"foo": "bar"})),
    )
    .await;
    assert_eq!(w.status, StatusCode::NO_CONTENT);
    let r = send(
        &c,
        "GET",
        format!("{base}/v1/kv1/my-secret"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["data"], json!({"foo": "bar"}));
    assert_eq!(r.json["lease_duration"], 2_764_800);
    let l = send(&c, "LIST", format!("{base}/v1/kv1/"), Some(&tok), None).await;
    assert_eq!(l.json["data"]["keys"], json!(["my-secret"]));
}

#[tokio::test]
async fn vault_bad_token_is_403_multierror() {
    // api-facts §3.1: 403 {"errors":["1 error occurred:\n\t* permission denied\n\n"]}
    let ds = start().await;
    let c = client();
    let r = send(
        &c,
        "GET",
        format!("{}/v1/secret/data/x", ds.vault_url()),
        Some("not-a-token"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.json,
        json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]})
    );
}

// =============================================================================================
// Vault tokens and AppRole

#[tokio::test]
async fn vault_token_lookup_self_root_shape() {
    // https://developer.hashicorp.com/vault/api-docs/auth/token (Lookup a token (self))
    let ds = start().await;
    let c = client();
    let tok = ds.root_token().to_string();
    let r = send(
        &c,
        "GET",
        format!("{}/v1/auth/token/lookup-self", ds.vault_url()),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let d = &r.json["data"];
    for k in [
        "accessor",
        "creation_time",
        "creation_ttl",
        "display_name",
        "entity_id",
        "expire_time",
        "explicit_max_ttl",
        "id",
        "issue_time",
        "meta",
        "num_uses",
        "orphan",
        "path",
        "policies",
        "renewable",
        "ttl",
        "type",
    ] {
        assert!(d.get(k).is_some(), "lookup-self lacks {k}: {d}");
    }
    assert_eq!(d["id"], json!(tok));
    assert_eq!(d["policies"], json!(["root"]));
    assert_eq!(d["ttl"], 0);
    assert_eq!(d["expire_time"], Value::Null);
    assert_eq!(d["meta"], Value::Null);
    assert!(d["creation_time"].is_u64());
    assert_eq!(d["type"], "service");
    assert_eq!(r.json["auth"], Value::Null);
}

#[tokio::test]
async fn vault_token_create_lookup_renew() {
    // https://developer.hashicorp.com/vault/api-docs/auth/token (Create token, Renew a token, Renew a token (self))
    let ds = start().await;
    let c = client();
    let (base, root) = (ds.vault_url(), ds.root_token().to_string());
    let created = send(
        &c,
        "POST",
        format!("{base}/v1/auth/token/create"),
        Some(&root),
        Some(json!({"policies": ["web", "stage"], "meta": {"user": "armon"}, "ttl": "1h", "renewable": true})),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_eq!(created.json["data"], Value::Null);
    let a = &created.json["auth"];
    for k in [
        "client_token",
        "accessor",
        "policies",
        "token_policies",
        "metadata",
        "lease_duration",
        "renewable",
    ] {
        assert!(a.get(k).is_some(), "auth lacks {k}: {a}");
    }
    let policies: Vec<&str> = a["policies"]
        .as_array()
        .expect("policies")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        policies.contains(&"web") && policies.contains(&"stage") && policies.contains(&"default")
    );
    assert_eq!(a["metadata"], json!({"user": "armon"}));
    assert_eq!(a["lease_duration"], 3600);
    assert_eq!(a["renewable"], true);
    let child = a["client_token"]
        .as_str()
        .expect("client_token")
        .to_string();

    let me = send(
        &c,
        "GET",
        format!("{base}/v1/auth/token/lookup-self"),
        Some(&child),
        None,
    )
    .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json["data"]["meta"], json!({"user": "armon"}));
    assert_eq!(me.json["data"]["creation_ttl"], 3600);
    assert!(me.json["data"]["ttl"].as_u64().expect("ttl") <= 3600);
    assert!(me.json["data"]["expire_time"].is_string());

    // Lookup of an unknown token is 403 `bad token` (vault token_store.go handleLookup).
    let unknown = send(
        &c,
        "POST",
        format!("{base}/v1/auth/token/lookup"),
        Some(&root),
        Some(json!({"token": "hvs.nope"})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::FORBIDDEN);
    assert_eq!(unknown.json, json!({"errors": ["bad token"]}));

    // Lookup by body token.
    let lk = send(
        &c,
        "POST",
        format!("{base}/v1/auth/token/lookup"),
        Some(&root),
        Some(json!({"token": child})),
    )
    .await;
    assert_eq!(lk.json["data"]["id"], json!(child));

    // Renew-self with an increment.
    let rs = send(
        &c,
        "POST",
        format!("{base}/v1/auth/token/renew-self"),
        Some(&child),
        Some(json!({"increment": "30m"})),
    )
    .await;
    assert_eq!(rs.status, StatusCode::OK);
    assert_eq!(rs.json["auth"]["client_token"], json!(child));
    assert_eq!(rs.json["auth"]["lease_duration"], 1800);

    // Renew another token by body.
    let rn = send(
        &c,
        "POST",
        format!("{base}/v1/auth/token/renew"),
        Some(&root),
        Some(json!({"token": child, "increment": "1h"})),
    )
    .await;
    assert_eq!(rn.status, StatusCode::OK, "{}", rn.text);
    assert_eq!(rn.json["auth"]["client_token"], json!(child));
    assert_eq!(rn.json["auth"]["lease_duration"], 3600);
    assert_eq!(rn.json["auth"]["renewable"], true);

    // By accessor: lookup hides the ID; renew answers an empty client_token.
    let accessor = me.json["data"]["accessor"]
        .as_str()
        .expect("accessor")
        .to_string();
    let la = send(
        &c,
        "POST",
        format!("{base}/v1/auth/token/lookup-accessor"),
        Some(&root),
        Some(json!({"accessor": accessor})),
    )
    .await;
    assert_eq!(la.status, StatusCode::OK);
    assert_eq!(la.json["data"]["id"], "");
    assert_eq!(la.json["data"]["accessor"], json!(accessor));
    let ra = send(
        &c,
        "POST",
        format!("{base}/v1/auth/token/renew-accessor"),
        Some(&root),
        Some(json!({"accessor": accessor})),
    )
    .await;
    assert_eq!(ra.status, StatusCode::OK);
    assert_eq!(ra.json["auth"]["client_token"], "");
    assert_eq!(ra.json["auth"]["renewable"], true);

    // Revoke by body token: 204.
    let other = send(
        &c,
        "POST",
        format!("{base}/v1/auth/token/create"),
        Some(&root),
        Some(json!({"policies": ["web"]})),
    )
    .await;
    let other = other.json["auth"]["client_token"]
        .as_str()
        .expect("token")
        .to_string();
    let rv = send(
        &c,
        "POST",
        format!("{base}/v1/auth/token/revoke"),
        Some(&root),
        Some(json!({"token": other})),
    )
    .await;
    assert_eq!(rv.status, StatusCode::NO_CONTENT);
    let gone = send(
        &c,
        "GET",
        format!("{base}/v1/auth/token/lookup-self"),
        Some(&other),
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::FORBIDDEN);

    // Revoke-self: 204, then the token is gone (403).
    let rv = send(
        &c,
        "POST",
        format!("{base}/v1/auth/token/revoke-self"),
        Some(&child),
        None,
    )
    .await;
    assert_eq!(rv.status, StatusCode::NO_CONTENT);
    let me = send(
        &c,
        "GET",
        format!("{base}/v1/auth/token/lookup-self"),
        Some(&child),
        None,
    )
    .await;
    assert_eq!(me.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn vault_approle_role_secret_id_login() {
    // https://developer.hashicorp.com/vault/api-docs/auth/approle (Create role, Read role ID,
    // Generate secret ID, Login with AppRole); api-facts §3.2 for metadata.role_name
    let ds = start().await;
    let c = client();
    let (base, root) = (ds.vault_url(), ds.root_token().to_string());
    let enable = send(
        &c,
        "POST",
        format!("{base}/v1/sys/auth/approle"),
        Some(&root),
        Some(json!({"type": "approle"})),
    )
    .await;
    assert_eq!(enable.status, StatusCode::NO_CONTENT, "{}", enable.text);
    let role = send(
        &c,
        "POST",
        format!("{base}/v1/auth/approle/role/my-role"),
        Some(&root),
        Some(json!({"token_policies": ["default", "dev"], "token_ttl": "20m"})),
    )
    .await;
    assert_eq!(role.status, StatusCode::NO_CONTENT);
    let rid = send(
        &c,
        "GET",
        format!("{base}/v1/auth/approle/role/my-role/role-id"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(rid.status, StatusCode::OK);
    let role_id = rid.json["data"]["role_id"]
        .as_str()
        .expect("role_id")
        .to_string();
    let sid = send(
        &c,
        "POST",
        format!("{base}/v1/auth/approle/role/my-role/secret-id"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(sid.status, StatusCode::OK);
    let d = &sid.json["data"];
    for k in [
        "secret_id",
        "secret_id_accessor",
        "secret_id_ttl",
        "secret_id_num_uses",
    ] {
        assert!(d.get(k).is_some(), "secret-id lacks {k}");
    }
    let secret_id = d["secret_id"].as_str().expect("secret_id").to_string();

    let login = send(
        &c,
        "POST",
        format!("{base}/v1/auth/approle/login"),
        None,
        Some(json!({"role_id": role_id, "secret_id": secret_id})),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.json["data"], Value::Null);
    let a = &login.json["auth"];
    assert!(a["client_token"].is_string() && a["accessor"].is_string());
    assert_eq!(a["lease_duration"], 1200);
    assert_eq!(a["renewable"], true);
    assert_eq!(a["metadata"], json!({"role_name": "my-role"}));
    assert_eq!(a["token_policies"], json!(["default", "dev"]));

    let bad = send(
        &c,
        "POST",
        format!("{base}/v1/auth/approle/login"),
        None,
        Some(json!({"role_id": role_id, "secret_id": "wrong"})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json, json!({"errors": ["invalid role or secret ID"]}));

    // The auth methods list shows the mount.
    let auths = send(&c, "GET", format!("{base}/v1/sys/auth"), Some(&root), None).await;
    assert_eq!(auths.status, StatusCode::OK);
    assert_eq!(auths.json["data"]["approle/"]["type"], "approle");
    assert_eq!(auths.json["data"]["token/"]["type"], "token");
}

#[tokio::test]
async fn vault_approle_role_read_list_and_secret_id_lifecycle() {
    // https://developer.hashicorp.com/vault/api-docs/auth/approle (List roles, Read AppRole,
    // Generate new secret ID, List secret ID accessors, Read AppRole secret ID, Destroy,
    // Create custom AppRole secret ID)
    let ds = start().await;
    let c = client();
    let (base, root) = (ds.vault_url(), ds.root_token().to_string());
    let role = send(
        &c,
        "POST",
        format!("{base}/v1/auth/approle/role/application1"),
        Some(&root),
        Some(json!({"token_ttl": "10m", "token_max_ttl": "15m", "token_policies": ["default"], "period": 0, "bind_secret_id": true})),
    )
    .await;
    assert_eq!(role.status, StatusCode::NO_CONTENT);
    let read = send(
        &c,
        "GET",
        format!("{base}/v1/auth/approle/role/application1"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(read.status, StatusCode::OK);
    let d = &read.json["data"];
    assert_eq!(d["token_ttl"], 600);
    assert_eq!(d["token_max_ttl"], 900);
    assert_eq!(d["token_policies"], json!(["default"]));
    assert_eq!(d["bind_secret_id"], true);
    assert_eq!(d["secret_id_bound_cidrs"], json!([]));
    assert!(
        d["secret_id_ttl"].is_u64() && d["secret_id_num_uses"].is_u64() && d["period"].is_u64()
    );

    let roles = send(
        &c,
        "LIST",
        format!("{base}/v1/auth/approle/role"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(roles.status, StatusCode::OK);
    assert_eq!(roles.json["data"]["keys"], json!(["application1"]));

    // Generate with the documented payload: ttl and num_uses are echoed.
    let sid = send(
        &c,
        "POST",
        format!("{base}/v1/auth/approle/role/application1/secret-id"),
        Some(&root),
        Some(json!({"metadata": "{ \"tag1\": \"production\" }", "ttl": 600, "num_uses": 2})),
    )
    .await;
    assert_eq!(sid.status, StatusCode::OK);
    assert_eq!(sid.json["data"]["secret_id_ttl"], 600);
    assert_eq!(sid.json["data"]["secret_id_num_uses"], 2);
    let secret_id = sid.json["data"]["secret_id"]
        .as_str()
        .expect("secret_id")
        .to_string();
    let accessor = sid.json["data"]["secret_id_accessor"]
        .as_str()
        .expect("accessor")
        .to_string();

    let accessors = send(
        &c,
        "LIST",
        format!("{base}/v1/auth/approle/role/application1/secret-id"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(accessors.json["data"]["keys"], json!([accessor]));

    let lookup = send(
        &c,
        "POST",
        format!("{base}/v1/auth/approle/role/application1/secret-id/lookup"),
        Some(&root),
        Some(json!({"secret_id": secret_id})),
    )
    .await;
    assert_eq!(lookup.status, StatusCode::OK);
    let l = &lookup.json["data"];
    assert_eq!(l["metadata"], json!({"tag1": "production"}));
    assert_eq!(l["secret_id_accessor"], json!(accessor));
    assert_eq!(l["cidr_list"], json!([]));
    assert_eq!(l["token_bound_cidrs"], json!([]));
    assert!(l["creation_time"].is_string() && l["expiration_time"].is_string());

    // Login: the secret ID's metadata lands on the token next to role_name; uses are counted.
    let rid = send(
        &c,
        "GET",
        format!("{base}/v1/auth/approle/role/application1/role-id"),
        Some(&root),
        None,
    )
    .await;
    let role_id = rid.json["data"]["role_id"]
        .as_str()
        .expect("role_id")
        .to_string();
    let creds = json!({"role_id": role_id, "secret_id": secret_id});
    let login = send(
        &c,
        "POST",
        format!("{base}/v1/auth/approle/login"),
        None,
        Some(creds.clone()),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.json["auth"]["lease_duration"], 600);
    assert_eq!(
        login.json["auth"]["metadata"],
        json!({"tag1": "production", "role_name": "application1"})
    );
    let second = send(
        &c,
        "POST",
        format!("{base}/v1/auth/approle/login"),
        None,
        Some(creds.clone()),
    )
    .await;
    assert_eq!(second.status, StatusCode::OK);
    let third = send(
        &c,
        "POST",
        format!("{base}/v1/auth/approle/login"),
        None,
        Some(creds),
    )
    .await;
    assert_eq!(
        third.status,
        StatusCode::BAD_REQUEST,
        "num_uses 2 allows two logins"
    );

    // Custom secret ID, then destroy it.
    let custom = send(
        &c,
        "POST",
        format!("{base}/v1/auth/approle/role/application1/custom-secret-id"),
        Some(&root),
        Some(json!({"secret_id": "testsecretid", "ttl": 600, "num_uses": 50})),
    )
    .await;
    assert_eq!(custom.json["data"]["secret_id"], "testsecretid");
    assert_eq!(custom.json["data"]["secret_id_num_uses"], 50);
    let destroy = send(
        &c,
        "POST",
        format!("{base}/v1/auth/approle/role/application1/secret-id/destroy"),
        Some(&root),
        Some(json!({"secret_id": "testsecretid"})),
    )
    .await;
    assert_eq!(destroy.status, StatusCode::NO_CONTENT);
    let gone = send(
        &c,
        "POST",
        format!("{base}/v1/auth/approle/login"),
        None,
        Some(json!({"role_id": role_id, "secret_id": "testsecretid"})),
    )
    .await;
    assert_eq!(gone.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn vault_capabilities_self_reports_per_path() {
    // https://developer.hashicorp.com/vault/api-docs/system/capabilities-self (paths → capability lists)
    let ds = start().await;
    let c = client();
    let (base, root) = (ds.vault_url(), ds.root_token().to_string());
    let pol = send(
        &c,
        "PUT",
        format!("{base}/v1/sys/policies/acl/web"),
        Some(&root),
        Some(
            json!({"policy": "path \"secret/data/web/*\" { capabilities = [\"read\", \"list\"] }"}),
        ),
    )
    .await;
    assert_eq!(pol.status, StatusCode::NO_CONTENT);
    let tok = send(
        &c,
        "POST",
        format!("{base}/v1/auth/token/create"),
        Some(&root),
        Some(json!({"policies": ["web"]})),
    )
    .await;
    let tok = tok.json["auth"]["client_token"]
        .as_str()
        .expect("token")
        .to_string();
    let caps = send(
        &c,
        "POST",
        format!("{base}/v1/sys/capabilities-self"),
        Some(&tok),
        Some(json!({"paths": ["secret/data/web/app", "secret/data/other"]})),
    )
    .await;
    assert_eq!(caps.status, StatusCode::OK, "{}", caps.text);
    assert_eq!(
        caps.json["data"]["secret/data/web/app"],
        json!(["list", "read"])
    );
    assert_eq!(caps.json["data"]["secret/data/other"], json!(["deny"]));
    assert_eq!(caps.json["secret/data/web/app"], json!(["list", "read"]));

    let one = send(
        &c,
        "POST",
        format!("{base}/v1/sys/capabilities-self"),
        Some(&root),
        Some(json!({"paths": ["secret/data/x"]})),
    )
    .await;
    assert_eq!(one.json["capabilities"], json!(["root"]));
    assert_eq!(one.json["secret/data/x"], json!(["root"]));
}

#[tokio::test]
async fn consul_pretty_query_indents_json() {
    // https://developer.hashicorp.com/consul/api-docs/api-structure (Formatted JSON Output: ?pretty)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    put_raw(&c, format!("{base}/v1/kv/p"), "x").await;
    let plain = send(&c, "GET", format!("{base}/v1/kv/p"), None, None).await;
    assert!(!plain.text.contains('\n'));
    let pretty = send(&c, "GET", format!("{base}/v1/kv/p?pretty"), None, None).await;
    assert_eq!(pretty.status, StatusCode::OK);
    assert!(
        pretty.text.starts_with("[\n    {\n        \""),
        "{}",
        pretty.text
    );
    assert!(pretty.text.ends_with("]\n"));
    assert_eq!(pretty.json, plain.json);
    assert!(pretty.index() >= 1);
}

#[tokio::test]
async fn consul_catalog_datacenters_and_deregister_check_or_service() {
    // https://developer.hashicorp.com/consul/api-docs/catalog (List Datacenters; Register Entity:
    // CheckID defaults to Name; Deregister Entity: CheckID removes only that check)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let dcs = send(
        &c,
        "GET",
        format!("{base}/v1/catalog/datacenters"),
        None,
        None,
    )
    .await;
    assert_eq!(dcs.json, json!(["dc1"]));

    let reg = send(
        &c,
        "PUT",
        format!("{base}/v1/catalog/register"),
        None,
        Some(json!({
            "Node": "t2.320",
            "Address": "192.168.10.10",
            "Service": {"ID": "redis1", "Service": "redis", "Port": 8000},
            "Check": {"Name": "redis-alive", "Status": "passing", "ServiceID": "redis1"}
        })),
    )
    .await;
    assert_eq!(reg.json, json!(true));
    let checks = send(
        &c,
        "GET",
        format!("{base}/v1/health/checks/redis"),
        None,
        None,
    )
    .await;
    assert_eq!(checks.json[0]["CheckID"], "redis-alive");

    let dereg = send(
        &c,
        "PUT",
        format!("{base}/v1/catalog/deregister"),
        None,
        Some(json!({"Datacenter": "dc1", "Node": "t2.320", "CheckID": "redis-alive"})),
    )
    .await;
    assert_eq!(dereg.json, json!(true));
    let checks = send(
        &c,
        "GET",
        format!("{base}/v1/health/checks/redis"),
        None,
        None,
    )
    .await;
    assert_eq!(checks.json, json!([]));
    let svc = send(
        &c,
        "GET",
        format!("{base}/v1/catalog/service/redis"),
        None,
        None,
    )
    .await;
    assert_eq!(
        svc.json.as_array().expect("array").len(),
        1,
        "the service stays"
    );

    let dereg = send(
        &c,
        "PUT",
        format!("{base}/v1/catalog/deregister"),
        None,
        Some(json!({"Node": "t2.320", "ServiceID": "redis1"})),
    )
    .await;
    assert_eq!(dereg.json, json!(true));
    let svc = send(
        &c,
        "GET",
        format!("{base}/v1/catalog/service/redis"),
        None,
        None,
    )
    .await;
    assert_eq!(svc.json, json!([]));
    let nodes = send(&c, "GET", format!("{base}/v1/catalog/nodes"), None, None).await;
    assert!(
        nodes
            .json
            .as_array()
            .expect("array")
            .iter()
            .any(|n| n["Node"] == "t2.320")
    );
}

#[tokio::test]
async fn consul_agent_service_register_list_ttl_check_deregister() {
    // https://developer.hashicorp.com/consul/api-docs/agent/service (Register Service, List Services,
    // Deregister Service) and https://developer.hashicorp.com/consul/api-docs/agent/check (TTL Check Pass)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let reg = send(
        &c,
        "PUT",
        format!("{base}/v1/agent/service/register"),
        None,
        Some(json!({
            "ID": "redis1",
            "Name": "redis",
            "Tags": ["primary", "v1"],
            "Address": "127.0.0.1",
            "Port": 8000,
            "Meta": {"redis_version": "4.0"},
            "Check": {"TTL": "15s"}
        })),
    )
    .await;
    assert_eq!(reg.status, StatusCode::OK, "{}", reg.text);
    assert_eq!(reg.text, "");

    let list = send(&c, "GET", format!("{base}/v1/agent/services"), None, None).await;
    let s = &list.json["redis1"];
    assert_eq!(s["ID"], "redis1");
    assert_eq!(s["Service"], "redis");
    assert_eq!(s["Tags"], json!(["primary", "v1"]));
    assert_eq!(s["Meta"], json!({"redis_version": "4.0"}));
    assert_eq!(s["Port"], 8000);
    assert_eq!(s["Weights"], json!({"Passing": 1, "Warning": 1}));
    let one = send(
        &c,
        "GET",
        format!("{base}/v1/agent/service/redis1"),
        None,
        None,
    )
    .await;
    assert_eq!(one.json["Service"], "redis");

    // The service is in the catalog; its TTL check starts critical and is named service:<id>.
    let h = send(
        &c,
        "GET",
        format!("{base}/v1/health/checks/redis"),
        None,
        None,
    )
    .await;
    assert_eq!(h.json[0]["CheckID"], "service:redis1");
    assert_eq!(h.json[0]["Status"], "critical");
    let passing = send(
        &c,
        "GET",
        format!("{base}/v1/health/service/redis?passing"),
        None,
        None,
    )
    .await;
    assert_eq!(passing.json, json!([]));

    let pass = send(
        &c,
        "PUT",
        format!("{base}/v1/agent/check/pass/service:redis1?note=ok"),
        None,
        None,
    )
    .await;
    assert_eq!(pass.status, StatusCode::OK);
    let checks = send(&c, "GET", format!("{base}/v1/agent/checks"), None, None).await;
    assert_eq!(checks.json["service:redis1"]["Status"], "passing");
    assert_eq!(checks.json["service:redis1"]["Output"], "ok");
    let passing = send(
        &c,
        "GET",
        format!("{base}/v1/health/service/redis?passing"),
        None,
        None,
    )
    .await;
    assert_eq!(passing.json.as_array().expect("array").len(), 1);

    let upd = send(
        &c,
        "PUT",
        format!("{base}/v1/agent/check/update/service:redis1"),
        None,
        Some(json!({"Status": "warning", "Output": "slow"})),
    )
    .await;
    assert_eq!(upd.status, StatusCode::OK);
    let h = send(
        &c,
        "GET",
        format!("{base}/v1/health/checks/redis"),
        None,
        None,
    )
    .await;
    assert_eq!(h.json[0]["Status"], "warning");

    let dereg = send(
        &c,
        "PUT",
        format!("{base}/v1/agent/service/deregister/redis1"),
        None,
        None,
    )
    .await;
    assert_eq!(dereg.status, StatusCode::OK);
    let cat = send(
        &c,
        "GET",
        format!("{base}/v1/catalog/service/redis"),
        None,
        None,
    )
    .await;
    assert_eq!(cat.json, json!([]));
    let again = send(
        &c,
        "PUT",
        format!("{base}/v1/agent/service/deregister/redis1"),
        None,
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn consul_wrong_method_is_405_with_allow() {
    // api-facts §2.1: a wrong method is 405 with an `Allow` header
    let ds = start().await;
    let c = client();
    let r = send(
        &c,
        "DELETE",
        format!("{}/v1/catalog/services", ds.consul_url()),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let allow = r.header("allow").expect("Allow header");
    assert!(allow.contains("GET"), "{allow}");
}

#[tokio::test]
async fn consul_unknown_dc_is_no_path_to_datacenter() {
    // https://developer.hashicorp.com/consul/api-docs/kv (dc: "If the DC is invalid, the error
    // \"No path to datacenter\" is returned")
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let bad = send(&c, "GET", format!("{base}/v1/kv/x?dc=dc9"), None, None).await;
    assert_eq!(bad.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(bad.text, "No path to datacenter");
    let ok = send(
        &c,
        "GET",
        format!("{base}/v1/catalog/services?dc=dc1"),
        None,
        None,
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn consul_config_unknown_kind_is_500_on_read_and_list() {
    // agent/consul/config_endpoint.go: List and Get fail `invalid config entry kind: <kind>` as a
    // plain RPC error (500 text)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    for path in ["/v1/config/bogus-kind", "/v1/config/bogus-kind/web"] {
        let r = send(&c, "GET", format!("{base}{path}"), None, None).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(r.text, "invalid config entry kind: bogus-kind", "{path}");
    }
}

#[tokio::test]
async fn vault_token_created_not_renewable_cannot_renew() {
    // https://developer.hashicorp.com/vault/api-docs/auth/token (Create token: renewable (bool: true))
    let ds = start().await;
    let c = client();
    let (base, root) = (ds.vault_url(), ds.root_token().to_string());
    let created = send(
        &c,
        "POST",
        format!("{base}/v1/auth/token/create"),
        Some(&root),
        Some(json!({"policies": ["web"], "ttl": "1h", "renewable": false})),
    )
    .await;
    assert_eq!(created.json["auth"]["renewable"], false);
    let tok = created.json["auth"]["client_token"]
        .as_str()
        .expect("token")
        .to_string();
    let me = send(
        &c,
        "GET",
        format!("{base}/v1/auth/token/lookup-self"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(me.json["data"]["renewable"], false);
    let renew = send(
        &c,
        "POST",
        format!("{base}/v1/auth/token/renew-self"),
        Some(&tok),
        Some(json!({})),
    )
    .await;
    assert_eq!(renew.status, StatusCode::BAD_REQUEST);
    assert!(renew.json["errors"][0].is_string());
}

#[tokio::test]
async fn consul_session_checks_must_be_registered_on_the_node() {
    // https://developer.hashicorp.com/consul/api-docs/session (Create Session: Node must be
    // registered; Checks name health checks of that node)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let no_node = send(
        &c,
        "PUT",
        format!("{base}/v1/session/create"),
        None,
        Some(json!({"Node": "foobar"})),
    )
    .await;
    assert_eq!(no_node.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(no_node.text, "Missing node registration");
    let no_check = send(
        &c,
        "PUT",
        format!("{base}/v1/session/create"),
        None,
        Some(json!({"Checks": ["serfHealth", "a"]})),
    )
    .await;
    assert_eq!(no_check.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(no_check.text, "Missing check 'a' registration");
    // A registered check that is critical (a new TTL check) is refused too.
    send(
        &c,
        "PUT",
        format!("{base}/v1/agent/service/register"),
        None,
        Some(json!({"Name": "web", "Check": {"CheckID": "a", "TTL": "30s"}})),
    )
    .await;
    let critical = send(
        &c,
        "PUT",
        format!("{base}/v1/session/create"),
        None,
        Some(json!({"Checks": ["serfHealth", "a"]})),
    )
    .await;
    assert_eq!(critical.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(critical.text, "Check 'a' is in critical state");
    send(
        &c,
        "PUT",
        format!("{base}/v1/agent/check/pass/a"),
        None,
        None,
    )
    .await;
    let ok = send(
        &c,
        "PUT",
        format!("{base}/v1/session/create"),
        None,
        Some(json!({"Checks": ["serfHealth", "a"]})),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let id = ok.json["ID"].as_str().expect("ID").to_string();
    let info = send(
        &c,
        "GET",
        format!("{base}/v1/session/info/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(info.json[0]["NodeChecks"], json!(["serfHealth", "a"]));
}

#[tokio::test]
async fn vault_policy_read_shapes_and_list_secret_and_folder_of_same_name() {
    // https://developer.hashicorp.com/vault/api-docs/system/policies (Read ACL policy: name, policy)
    // and /system/policy (Read policy: name, rules); kv-v2 List Secrets sample ["foo", "foo/"]
    let ds = start().await;
    let c = client();
    let (base, tok) = (ds.vault_url(), ds.root_token().to_string());
    let text = "path \"secret/*\" { capabilities = [\"read\"] }";
    let w = send(
        &c,
        "PUT",
        format!("{base}/v1/sys/policies/acl/deploy"),
        Some(&tok),
        Some(json!({"policy": text})),
    )
    .await;
    assert_eq!(w.status, StatusCode::NO_CONTENT);
    let acl = send(
        &c,
        "GET",
        format!("{base}/v1/sys/policies/acl/deploy"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(acl.json["data"], json!({"name": "deploy", "policy": text}));
    let old = send(
        &c,
        "GET",
        format!("{base}/v1/sys/policy/deploy"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(old.json["data"], json!({"name": "deploy", "rules": text}));
    let miss = send(
        &c,
        "GET",
        format!("{base}/v1/sys/policies/acl/nope"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(miss.status, StatusCode::NOT_FOUND);

    for p in ["foo", "foo/bar"] {
        send(
            &c,
            "POST",
            format!("{base}/v1/secret/data/{p}"),
            Some(&tok),
            Some(json!({"data": {"k": "v"}})),
        )
        .await;
    }
    let l = send(
        &c,
        "LIST",
        format!("{base}/v1/secret/metadata/"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(l.json["data"]["keys"], json!(["foo", "foo/"]));
}

#[tokio::test]
async fn vault_kv2_cas_required_on_mount_or_secret() {
    // https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2 (cas_required: "If true all keys
    // will require the cas parameter"; path_data.go "check-and-set parameter required for this call")
    let ds = start().await;
    let c = client();
    let (base, tok) = (ds.vault_url(), ds.root_token().to_string());
    send(
        &c,
        "POST",
        format!("{base}/v1/secret/metadata/guarded"),
        Some(&tok),
        Some(json!({"cas_required": true})),
    )
    .await;
    let no_cas = send(
        &c,
        "POST",
        format!("{base}/v1/secret/data/guarded"),
        Some(&tok),
        Some(json!({"data": {"a": "1"}})),
    )
    .await;
    assert_eq!(no_cas.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        no_cas.json,
        json!({"errors": ["check-and-set parameter required for this call"]})
    );
    let with_cas = send(
        &c,
        "POST",
        format!("{base}/v1/secret/data/guarded"),
        Some(&tok),
        Some(json!({"options": {"cas": 0}, "data": {"a": "1"}})),
    )
    .await;
    assert_eq!(with_cas.status, StatusCode::OK);
    assert_eq!(with_cas.json["data"]["version"], 1);
}

#[tokio::test]
async fn consul_check_definition_omits_empty_fields() {
    // agent/structs HealthCheckDefinition: every field is omitempty; durations are Go strings
    // (https://developer.hashicorp.com/consul/api-docs/health, List Checks for Service)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    send(
        &c,
        "PUT",
        format!("{base}/v1/agent/service/register"),
        None,
        Some(json!({
            "Name": "web",
            "Port": 80,
            "Check": {"HTTP": "http://127.0.0.1:80/health", "Interval": "10s", "Timeout": "2s"}
        })),
    )
    .await;
    let h = send(
        &c,
        "GET",
        format!("{base}/v1/health/checks/web"),
        None,
        None,
    )
    .await;
    let check = &h.json[0];
    assert_eq!(
        check["Definition"],
        json!({"HTTP": "http://127.0.0.1:80/health", "Interval": "10s", "Timeout": "2s"})
    );
    assert_eq!(check["Type"], "http");
    assert_eq!(check["Interval"], "10s");
    assert_eq!(check["ServiceTags"], json!([]));
    // The node's serfHealth check has an empty definition.
    let svc = send(
        &c,
        "GET",
        format!("{base}/v1/health/service/web"),
        None,
        None,
    )
    .await;
    let serf = svc.json[0]["Checks"]
        .as_array()
        .expect("Checks")
        .iter()
        .find(|c| c["CheckID"] == "serfHealth")
        .cloned()
        .expect("serfHealth");
    assert_eq!(serf["Definition"], json!({}));
    assert_eq!(serf["ServiceTags"], json!([]));
}

#[tokio::test]
async fn consul_lock_contention_lock_delay_and_delete_behavior() {
    // https://developer.hashicorp.com/consul/docs/dynamic-app-config/sessions (acquire fails while
    // another session holds the lock; lock-delay after invalidation; Behavior "delete")
    let ds = start().await; // time_scale 0.01: a 60 s lock delay lasts 600 ms
    let c = client();
    let base = ds.consul_url();
    let new_session = |body: Value| {
        let c = c.clone();
        let base = base.clone();
        async move {
            let r = send(
                &c,
                "PUT",
                format!("{base}/v1/session/create"),
                None,
                Some(body),
            )
            .await;
            r.json["ID"].as_str().expect("ID").to_string()
        }
    };
    let a = new_session(json!({"Name": "a", "LockDelay": "60s"})).await;
    let b = new_session(json!({"Name": "b"})).await;
    let url = |q: String| format!("{base}/v1/kv/service/leader?{q}");
    assert_eq!(
        put_raw(&c, url(format!("acquire={a}")), "a").await.json,
        json!(true)
    );
    // Re-acquiring by the holder is true and keeps LockIndex; another session gets false.
    assert_eq!(
        put_raw(&c, url(format!("acquire={a}")), "a2").await.json,
        json!(true)
    );
    assert_eq!(
        put_raw(&c, url(format!("acquire={b}")), "b").await.json,
        json!(false)
    );
    let get = send(
        &c,
        "GET",
        format!("{base}/v1/kv/service/leader"),
        None,
        None,
    )
    .await;
    assert_eq!(get.json[0]["LockIndex"], 1);
    assert_eq!(get.json[0]["Value"], "YTI=");
    // Releasing by a non-holder is false.
    assert_eq!(
        put_raw(&c, url(format!("release={b}")), "b").await.json,
        json!(false)
    );

    // Destroying the holder releases the lock but the lock delay blocks a new holder for a while:
    // retried until it succeeds, never before the 600 ms are over (a lower bound that holds
    // however slow the machine is).
    let destroyed_at = std::time::Instant::now();
    send(
        &c,
        "PUT",
        format!("{base}/v1/session/destroy/{a}"),
        None,
        None,
    )
    .await;
    while put_raw(&c, url(format!("acquire={b}")), "b").await.json != json!(true) {
        assert!(
            destroyed_at.elapsed() < Duration::from_secs(30),
            "lock delay never ends"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        destroyed_at.elapsed() >= Duration::from_millis(600),
        "acquired {:?} after destroy, inside the lock delay",
        destroyed_at.elapsed()
    );
    let get = send(
        &c,
        "GET",
        format!("{base}/v1/kv/service/leader"),
        None,
        None,
    )
    .await;
    assert_eq!(get.json[0]["LockIndex"], 2);

    // Behavior "delete": invalidation removes the held key.
    let d = new_session(json!({"Behavior": "delete", "LockDelay": "0s"})).await;
    assert_eq!(
        put_raw(&c, format!("{base}/v1/kv/ephemeral?acquire={d}"), "x")
            .await
            .json,
        json!(true)
    );
    send(
        &c,
        "PUT",
        format!("{base}/v1/session/destroy/{d}"),
        None,
        None,
    )
    .await;
    let gone = send(&c, "GET", format!("{base}/v1/kv/ephemeral"), None, None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn consul_intentions_exact_api_edits_the_config_entry() {
    // https://developer.hashicorp.com/consul/api-docs/connect/intentions (Upsert Intention by Name,
    // Read Specific Intention by Name, List Intentions, Check Intention Result, Delete by Name)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let put = send(
        &c,
        "PUT",
        format!("{base}/v1/connect/intentions/exact?source=web&destination=db"),
        None,
        Some(json!({"Action": "allow", "Description": "web talks to db"})),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(put.json, json!(true));
    send(
        &c,
        "PUT",
        format!("{base}/v1/connect/intentions/exact?source=*&destination=db"),
        None,
        Some(json!({"Action": "deny"})),
    )
    .await;

    let get = send(
        &c,
        "GET",
        format!("{base}/v1/connect/intentions/exact?source=web&destination=db"),
        None,
        None,
    )
    .await;
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(get.json["SourceName"], "web");
    assert_eq!(get.json["DestinationName"], "db");
    assert_eq!(get.json["Action"], "allow");
    assert_eq!(get.json["Precedence"], 9);
    assert_eq!(get.json["SourceType"], "consul");
    assert_eq!(get.json["Description"], "web talks to db");

    // The same data is the service-intentions config entry, sorted by precedence.
    let entry = send(
        &c,
        "GET",
        format!("{base}/v1/config/service-intentions/db"),
        None,
        None,
    )
    .await;
    let names: Vec<&str> = entry.json["Sources"]
        .as_array()
        .expect("Sources")
        .iter()
        .map(|s| s["Name"].as_str().expect("Name"))
        .collect();
    assert_eq!(names, ["web", "*"]);

    let list = send(
        &c,
        "GET",
        format!("{base}/v1/connect/intentions"),
        None,
        None,
    )
    .await;
    assert_eq!(list.json.as_array().expect("array").len(), 2);

    let allowed = send(
        &c,
        "GET",
        format!("{base}/v1/connect/intentions/check?source=web&destination=db"),
        None,
        None,
    )
    .await;
    assert_eq!(allowed.json, json!({"Allowed": true}));
    let denied = send(
        &c,
        "GET",
        format!("{base}/v1/connect/intentions/check?source=api&destination=db"),
        None,
        None,
    )
    .await;
    assert_eq!(denied.json, json!({"Allowed": false}));

    let del = send(
        &c,
        "DELETE",
        format!("{base}/v1/connect/intentions/exact?source=web&destination=db"),
        None,
        None,
    )
    .await;
    assert_eq!(del.json, json!(true));
    let miss = send(
        &c,
        "GET",
        format!("{base}/v1/connect/intentions/exact?source=web&destination=db"),
        None,
        None,
    )
    .await;
    assert_eq!(miss.status, StatusCode::NOT_FOUND);
    let missing_param = send(
        &c,
        "GET",
        format!("{base}/v1/connect/intentions/exact?source=web"),
        None,
        None,
    )
    .await;
    assert_eq!(missing_param.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn consul_catalog_and_health_report_effective_consistency() {
    // https://developer.hashicorp.com/consul/api-docs/features/consistency (X-Consul-Effective-Consistency;
    // default mode, ?stale, ?consistent)
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    for (query, mode) in [
        ("", "leader"),
        ("?stale", "stale"),
        ("?consistent", "consistent"),
    ] {
        for path in ["/v1/catalog/services", "/v1/health/service/consul"] {
            let r = send(&c, "GET", format!("{base}{path}{query}"), None, None).await;
            assert_eq!(
                r.header("X-Consul-Effective-Consistency"),
                Some(mode),
                "{path}{query}"
            );
        }
    }
}
