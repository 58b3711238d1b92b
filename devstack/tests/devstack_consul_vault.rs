//! HTTP-level tests of the devstack's Consul and Vault simulators against the documented facts
//! (shared/reference/api-facts.md §2, §3, §6).

use std::collections::BTreeMap;
use std::time::Duration;

use drover_devstack::consul::{ServiceCheck, ServiceInstance};
use drover_devstack::{Devstack, DevstackConfig};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

mod support;

use support::{fast_devstack as start, http_client as client};

fn instance(alloc: &str, name: &str, node: &str, tags: &[&str], status: &str) -> ServiceInstance {
    ServiceInstance {
        id: format!("_nomad-task-{alloc}-web-{name}-http"),
        name: name.to_string(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        meta: BTreeMap::from([("external-source".to_string(), "nomad".to_string())]),
        address: "10.0.0.1".to_string(),
        port: 8080,
        node: node.to_string(),
        kind: String::new(),
        proxy_destination: None,
        alloc_id: alloc.to_string(),
        checks: vec![ServiceCheck {
            check_id: format!("_nomad-check-{alloc}"),
            name: "service: \"web\" check".to_string(),
            check_type: "http".to_string(),
            status: status.to_string(),
            output: String::new(),
            interval: "10s".to_string(),
            timeout: "2s".to_string(),
            http: "http://10.0.0.1:8080/health".to_string(),
        }],
    }
}

async fn get_json(c: &Client, url: String) -> (StatusCode, Value) {
    let r = c.get(url).send().await.expect("request");
    let status = r.status();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn put_json(c: &Client, url: String, body: Value) -> (StatusCode, String) {
    let r = c.put(url).json(&body).send().await.expect("request");
    let status = r.status();
    (status, r.text().await.expect("body"))
}

// ---------------------------------------------------------------------------------------------
// Consul catalog and health

#[tokio::test]
async fn consul_catalog_services_is_object_map_with_tag_union_and_consul_present() {
    // §2.2: /v1/catalog/services is {name: [tags]}, union over instances, `consul` always present.
    let ds = start().await;
    let c = client();
    ds.state().consul.register_node("node-1", "10.0.0.1", "dc1");
    ds.state().consul.register_instance(instance(
        "a1",
        "web",
        "node-1",
        &["traefik.enable=true"],
        "passing",
    ));
    ds.state()
        .consul
        .register_instance(instance("a2", "web", "node-1", &["v2"], "passing"));
    let (status, body) = get_json(&c, format!("{}/v1/catalog/services", ds.consul_url())).await;
    assert_eq!(status, 200);
    assert!(body.get("consul").is_some(), "{body}");
    let tags: Vec<&str> = body["web"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(tags, vec!["traefik.enable=true", "v2"]);
    ds.shutdown().await;
}

#[tokio::test]
async fn consul_catalog_service_flat_shape_and_unknown_service_is_empty_array() {
    // §2.2: flat CatalogService array; an unknown service is [] with 200, not 404.
    let ds = start().await;
    let c = client();
    ds.state().consul.register_node("node-1", "10.0.0.1", "dc1");
    ds.state()
        .consul
        .register_instance(instance("a1", "web", "node-1", &["t1"], "passing"));
    let (status, body) = get_json(&c, format!("{}/v1/catalog/service/web", ds.consul_url())).await;
    assert_eq!(status, 200);
    let e = &body[0];
    for key in [
        "ID",
        "Node",
        "Address",
        "Datacenter",
        "ServiceID",
        "ServiceName",
        "ServiceTags",
        "ServiceMeta",
        "ServicePort",
        "ServiceWeights",
        "CreateIndex",
        "ModifyIndex",
    ] {
        assert!(e.get(key).is_some(), "missing {key} in {e}");
    }
    assert_eq!(e["ServiceMeta"]["external-source"], "nomad");
    let (_, tagged) = get_json(
        &c,
        format!("{}/v1/catalog/service/web?tag=nope", ds.consul_url()),
    )
    .await;
    assert_eq!(tagged, json!([]));
    let (status, unknown) =
        get_json(&c, format!("{}/v1/catalog/service/nope", ds.consul_url())).await;
    assert_eq!(status, 200);
    assert_eq!(unknown, json!([]));
    let (status, unknown) =
        get_json(&c, format!("{}/v1/health/service/nope", ds.consul_url())).await;
    assert_eq!(status, 200);
    assert_eq!(unknown, json!([]));
    ds.shutdown().await;
}

#[tokio::test]
async fn consul_health_includes_serf_health_and_passing_filters_on_every_check() {
    // §2.2: Checks include the node's serfHealth; ?passing needs every check passing (warning is not).
    let ds = start().await;
    let c = client();
    let consul = &ds.state().consul;
    consul.register_node("node-1", "10.0.0.1", "dc1");
    consul.register_node("node-2", "10.0.0.2", "dc1");
    consul.register_instance(instance("a1", "web", "node-1", &[], "passing"));
    consul.register_instance(instance("a2", "web", "node-2", &[], "warning"));
    let url = format!("{}/v1/health/service/web", ds.consul_url());
    let (_, all) = get_json(&c, url.clone()).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    let checks = all[0]["Checks"].as_array().expect("checks");
    let serf = checks
        .iter()
        .find(|c| c["CheckID"] == "serfHealth")
        .expect("serfHealth present");
    assert_eq!(serf["Name"], "Serf Health Status");
    assert_eq!(serf["ServiceID"], "");
    assert!(all[0]["Node"]["Node"].is_string() && all[0]["Service"]["Service"] == "web");
    let (_, passing) = get_json(&c, format!("{url}?passing")).await;
    assert_eq!(passing.as_array().map(Vec::len), Some(1));
    assert_eq!(passing[0]["Node"]["Node"], "node-1");
    // The node check counts: a critical serfHealth drops the otherwise-passing instance.
    consul.set_node_health("node-1", "critical");
    let (_, passing) = get_json(&c, format!("{url}?passing=1")).await;
    assert_eq!(passing, json!([]));
    // ?passing is parsed like Go's strconv.ParseBool.
    let (s, b) = get_json(&c, format!("{url}?passing=maybe")).await;
    assert_eq!((s.as_u16(), b), (400, json!("Invalid value for ?passing")));
    ds.shutdown().await;
}

#[tokio::test]
async fn consul_health_checks_definition_durations_are_strings() {
    // §2.2: /v1/health/checks/:service has Definition durations as strings ("10s").
    let ds = start().await;
    let c = client();
    ds.state()
        .consul
        .register_instance(instance("a1", "web", "node-1", &[], "critical"));
    let (_, body) = get_json(&c, format!("{}/v1/health/checks/web", ds.consul_url())).await;
    let check = &body[0];
    assert_eq!(check["Definition"]["Interval"], "10s");
    assert_eq!(check["Definition"]["Timeout"], "2s");
    assert_eq!(check["Status"], "critical");
    assert_eq!(check["ServiceName"], "web");
    let (_, critical) = get_json(&c, format!("{}/v1/health/state/critical", ds.consul_url())).await;
    assert_eq!(critical.as_array().map(Vec::len), Some(1));
    ds.shutdown().await;
}

#[tokio::test]
async fn consul_alloc_checks_flip_and_deregister_wake_blocking_readers() {
    // §2.1/§6: X-Consul-Index never 0; a blocking read returns when a write bumps the index.
    let ds = start().await;
    let c = client();
    ds.state()
        .consul
        .register_instance(instance("a1", "web", "node-1", &[], "critical"));
    let url = format!("{}/v1/health/service/web?passing", ds.consul_url());
    let r = c.get(&url).send().await.expect("req");
    let index: u64 = r.headers()["X-Consul-Index"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("number");
    assert!(index >= 1);
    assert_eq!(r.headers()["X-Consul-KnownLeader"], "true");
    assert!(r.headers().contains_key("X-Consul-LastContact"));
    assert_eq!(r.json::<Value>().await.expect("json"), json!([]));

    let state = ds.state().clone();
    let flip = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        state.consul.set_alloc_checks("a1", "passing");
    });
    // A blocking read may also return for unrelated writes (the simulated Nomad clients register
    // their nodes): "a return is no guarantee of change". Each return has a larger index, and
    // the flip is seen well before the 30 s wait.
    let started = std::time::Instant::now();
    let mut last = index;
    let passing = loop {
        let r = c
            .get(format!("{url}&index={last}&wait=30s"))
            .send()
            .await
            .expect("req");
        let new_index: u64 = r.headers()["X-Consul-Index"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("number");
        assert!(new_index > last, "a blocking read returns a larger index");
        last = new_index;
        let body = r.json::<Value>().await.expect("json");
        if body.as_array().map(Vec::len) == Some(1) || started.elapsed() > Duration::from_secs(10) {
            break body;
        }
    };
    assert!(started.elapsed() < Duration::from_secs(10), "woke on write");
    assert_eq!(passing.as_array().map(Vec::len), Some(1));
    flip.await.expect("flip");

    ds.state().consul.deregister_alloc("a1");
    let (_, gone) = get_json(&c, format!("{}/v1/catalog/service/web", ds.consul_url())).await;
    assert_eq!(gone, json!([]));
    ds.shutdown().await;
}

#[tokio::test]
async fn consul_blocking_read_times_out_with_200_and_same_index() {
    // §6.6: a blocking read without change returns 200 after `wait` with the unchanged index.
    let ds = start().await;
    let c = client();
    let url = format!("{}/v1/kv/some/key", ds.consul_url());
    let r = c.get(&url).send().await.expect("req");
    let idx = r.headers()["X-Consul-Index"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert_ne!(idx, "0");
    let started = std::time::Instant::now();
    let r = c
        .get(format!("{url}?index={idx}&wait=300ms"))
        .send()
        .await
        .expect("req");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.headers()["X-Consul-Index"].to_str().expect("ascii"), idx);
    ds.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Consul config entries

#[tokio::test]
async fn consul_config_entry_put_returns_bare_true_false_with_cas() {
    // §2.3: PUT /v1/config answers bare true/false; cas=0 creates only if absent; a failed CAS is false.
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let entry = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "HTTP"});
    let (s, b) = put_json(&c, format!("{base}/v1/config?cas=0"), entry.clone()).await;
    assert_eq!((s.as_u16(), b.as_str()), (200, "true"));
    // A second create loses when it would change the entry (an identical one is skipped and
    // answers true: devstack_consul_config_entries.rs).
    let grpc = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "grpc"});
    let (s, b) = put_json(&c, format!("{base}/v1/config?cas=0"), grpc.clone()).await;
    assert_eq!((s.as_u16(), b.as_str()), (200, "false"));
    let (_, got) = get_json(&c, format!("{base}/v1/config/service-defaults/web")).await;
    // Protocol is lower-cased on write; indexes are present.
    assert_eq!(got["Protocol"], "http");
    let modify = got["ModifyIndex"].as_u64().expect("ModifyIndex");
    assert!(got["CreateIndex"].as_u64().is_some());
    let (_, b) = put_json(
        &c,
        format!("{base}/v1/config?cas={}", modify + 100),
        grpc.clone(),
    )
    .await;
    assert_eq!(b, "false");
    let (_, b) = put_json(&c, format!("{base}/v1/config?cas={modify}"), grpc).await;
    assert_eq!(b, "true");
    let (_, b) = put_json(&c, format!("{base}/v1/config"), entry).await;
    assert_eq!(b, "true");
    // Delete: {} without cas, true/false with cas.
    let (_, got) = get_json(&c, format!("{base}/v1/config/service-defaults/web")).await;
    let modify = got["ModifyIndex"].as_u64().expect("ModifyIndex");
    let r = c
        .delete(format!("{base}/v1/config/service-defaults/web?cas=1"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.text().await.expect("body"), "false");
    let r = c
        .delete(format!(
            "{base}/v1/config/service-defaults/web?cas={modify}"
        ))
        .send()
        .await
        .expect("req");
    assert_eq!(r.text().await.expect("body"), "true");
    let r = c
        .delete(format!("{base}/v1/config/service-defaults/web"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.text().await.expect("body"), "{}");
    ds.shutdown().await;
}

#[tokio::test]
async fn consul_config_entry_missing_is_404_text_and_decode_error_is_400() {
    // §2.3: 404 `Config entry not found for "kind" / "name"`; decode errors are 400 text.
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let r = c
        .get(format!("{base}/v1/config/service-defaults/web"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.text().await.expect("body"),
        "Config entry not found for \"service-defaults\" / \"web\""
    );
    let r = c
        .put(format!("{base}/v1/config"))
        .body("{not json")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .expect("body")
            .starts_with("Request decoding failed: ")
    );
    ds.shutdown().await;
}

#[tokio::test]
async fn consul_config_entry_snake_case_aliases_are_accepted() {
    // §2.3: snake_case aliases on input come back PascalCase; opaque Config keys are kept.
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let (_, b) = put_json(
        &c,
        format!("{base}/v1/config"),
        json!({"kind": "proxy-defaults", "name": "global", "config": {"protocol": "http"},
               "mesh_gateway": {"mode": "local"}}),
    )
    .await;
    assert_eq!(b, "true");
    let (_, got) = get_json(&c, format!("{base}/v1/config/proxy-defaults/global")).await;
    assert_eq!(got["Kind"], "proxy-defaults");
    assert_eq!(got["Config"]["protocol"], "http");
    assert_eq!(got["MeshGateway"]["Mode"], "local");
    let (_, list) = get_json(&c, format!("{base}/v1/config/proxy-defaults")).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    ds.shutdown().await;
}

#[tokio::test]
async fn consul_intentions_are_normalized_with_precedence_type_and_sorted_sources() {
    // §2.3/§6.9: Type defaults to consul, Precedence computed, Sources stable-sorted by precedence desc.
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let (s, b) = put_json(
        &c,
        format!("{base}/v1/config"),
        json!({"Kind": "service-intentions", "Name": "minio", "Sources": [
            {"Name": "*", "Action": "deny"},
            {"Name": "overseerr", "Action": "allow"},
            {"Name": "traefik", "Action": "allow"}
        ]}),
    )
    .await;
    assert_eq!((s.as_u16(), b.as_str()), (200, "true"));
    let (_, got) = get_json(&c, format!("{base}/v1/config/service-intentions/minio")).await;
    let sources = got["Sources"].as_array().expect("sources");
    let names: Vec<&str> = sources.iter().filter_map(|s| s["Name"].as_str()).collect();
    assert_eq!(names, vec!["overseerr", "traefik", "*"]);
    assert_eq!(sources[0]["Precedence"], 9);
    assert_eq!(sources[2]["Precedence"], 8);
    assert!(sources.iter().all(|s| s["Type"] == "consul"));
    ds.shutdown().await;
}

#[tokio::test]
async fn consul_intentions_validation_errors_are_500_text() {
    // §2.3: Name is required; At least one source is required; duplicates; Action XOR Permissions.
    let ds = start().await;
    let c = client();
    let url = format!("{}/v1/config", ds.consul_url());
    let cases = [
        (
            json!({"Kind": "service-intentions", "Sources": [{"Name": "a", "Action": "allow"}]}),
            "Name is required",
        ),
        (
            json!({"Kind": "service-intentions", "Name": "db", "Sources": []}),
            "At least one source is required",
        ),
        (
            json!({"Kind": "service-intentions", "Name": "db", "Sources": [{"Name": "a", "Action": "allow"}, {"Name": "a", "Action": "deny"}]}),
            "Sources[1] defines \"a\" more than once",
        ),
        (
            json!({"Kind": "service-intentions", "Name": "db", "Sources": [{"Name": "a", "Action": "allow", "Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/"}}]}]}),
            "Sources[0].Action must be omitted if Permissions are specified",
        ),
        (
            json!({"Kind": "service-intentions", "Name": "db", "Sources": [{"Name": "a", "Action": "maybe"}]}),
            "Sources[0].Action must be set to 'allow' or 'deny'",
        ),
        // Action is compared exactly: Consul does not lower-case it.
        (
            json!({"Kind": "service-intentions", "Name": "db", "Sources": [{"Name": "a", "Action": "Allow"}]}),
            "Sources[0].Action must be set to 'allow' or 'deny'",
        ),
        (
            json!({"Kind": "service-intentions", "Name": "*", "Sources": [{"Name": "a", "Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/"}}]}]}),
            "Sources[0].Permissions cannot be specified on intentions with wildcarded destinations",
        ),
        (
            json!({"Kind": "service-intentions", "Name": "db", "Sources": [{"Name": "a", "Permissions": [{"Action": "allow"}]}]}),
            "Sources[0].Permissions[0].HTTP is required",
        ),
        (
            json!({"Kind": "service-intentions", "Name": "db", "Sources": [{"Name": "a", "Permissions": [{"Action": "allow", "HTTP": {"Methods": ["get", "GET"]}}]}]}),
            "Sources[0].Permissions[0].HTTP.Methods contains \"GET\" more than once",
        ),
        (
            json!({"Kind": "service-intentions", "Name": "web*", "Sources": [{"Name": "a", "Action": "allow"}]}),
            "Name: wildcard character '*' cannot be used with partial values",
        ),
    ];
    // Meta is limited to 64 keys on every kind.
    let meta: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    let (s, b) = put_json(
        &c,
        url.clone(),
        json!({"Kind": "service-defaults", "Name": "db", "Meta": meta}),
    )
    .await;
    assert_eq!(
        (s.as_u16(), b.as_str()),
        (500, "Meta exceeds maximum element count 64")
    );
    for (body, want) in cases {
        let (s, b) = put_json(&c, url.clone(), body).await;
        assert_eq!(s, 500, "{b}");
        assert_eq!(b, want);
    }
    ds.shutdown().await;
}

#[tokio::test]
async fn consul_l7_intentions_need_http_protocol_on_the_destination() {
    // §2.3: L7 permissions on a tcp destination fail with the incompatibility text; http works.
    let ds = start().await;
    let c = client();
    let url = format!("{}/v1/config", ds.consul_url());
    let l7 = json!({"Kind": "service-intentions", "Name": "api", "Sources": [
        {"Name": "web", "Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/v1", "Methods": ["get", "post"]}}]}
    ]});
    let (s, b) = put_json(&c, url.clone(), l7.clone()).await;
    assert_eq!(s, 500);
    assert_eq!(
        b,
        "service \"api\" has protocol \"tcp\", which is incompatible with L7 intentions permissions"
    );
    let (_, b) = put_json(
        &c,
        url.clone(),
        json!({"Kind": "service-defaults", "Name": "api", "Protocol": "http"}),
    )
    .await;
    assert_eq!(b, "true");
    let (s, b) = put_json(&c, url, l7).await;
    assert_eq!((s.as_u16(), b.as_str()), (200, "true"));
    let (_, got) = get_json(
        &c,
        format!("{}/v1/config/service-intentions/api", ds.consul_url()),
    )
    .await;
    // HTTP methods are upper-cased.
    assert_eq!(
        got["Sources"][0]["Permissions"][0]["HTTP"]["Methods"],
        json!(["GET", "POST"])
    );
    // Once L7 intentions exist, the destination cannot go back to tcp.
    let (s, b) = put_json(
        &c,
        format!("{}/v1/config", ds.consul_url()),
        json!({"Kind": "service-defaults", "Name": "api", "Protocol": "tcp"}),
    )
    .await;
    assert_eq!(s, 500);
    assert_eq!(
        b,
        "service \"api\" has protocol \"tcp\", which is incompatible with L7 intentions permissions"
    );
    // Routers and splitters need an HTTP-like protocol too.
    let router = json!({"Kind": "service-router", "Name": "web", "Routes": [
        {"Match": {"HTTP": {"PathPrefix": "/admin"}}, "Destination": {"Service": "admin"}}]});
    let (s, b) = put_json(&c, format!("{}/v1/config", ds.consul_url()), router.clone()).await;
    assert_eq!(s, 500);
    assert_eq!(
        b,
        "discovery chain \"web\" uses a protocol \"tcp\" that does not permit advanced routing or splitting behavior"
    );
    put_json(
        &c,
        format!("{}/v1/config", ds.consul_url()),
        json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"}),
    )
    .await;
    let (s, b) = put_json(&c, format!("{}/v1/config", ds.consul_url()), router).await;
    assert_eq!((s.as_u16(), b.as_str()), (200, "true"));
    ds.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Consul KV and sessions

#[tokio::test]
async fn consul_kv_missing_key_is_404_with_empty_body() {
    // §2.4/§6.7: a KV miss is 404 with an empty body (and an index header).
    let ds = start().await;
    let c = client();
    let r = c
        .get(format!("{}/v1/kv/drover/missing", ds.consul_url()))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 404);
    assert!(r.headers().contains_key("X-Consul-Index"));
    assert_eq!(r.text().await.expect("body"), "");
    ds.shutdown().await;
}

#[tokio::test]
async fn consul_kv_put_get_raw_recurse_keys_and_cas() {
    // §2.4: PUT returns true; GET array with base64 Value; ?raw, ?recurse, ?keys&separator, ?cas.
    let ds = start().await;
    let c = client();
    let base = format!("{}/v1/kv", ds.consul_url());
    let r = c
        .put(format!("{base}/app/a?flags=42"))
        .body("hello")
        .send()
        .await
        .expect("req");
    assert_eq!(r.text().await.expect("body"), "true");
    c.put(format!("{base}/app/sub/b"))
        .body("x")
        .send()
        .await
        .expect("req");
    let (_, got) = get_json(&c, format!("{base}/app/a")).await;
    assert_eq!(got[0]["Key"], "app/a");
    assert_eq!(got[0]["Value"], "aGVsbG8=");
    assert_eq!(got[0]["Flags"], 42);
    assert_eq!(got[0]["LockIndex"], 0);
    let modify = got[0]["ModifyIndex"].as_u64().expect("index");
    let raw = c
        .get(format!("{base}/app/a?raw"))
        .send()
        .await
        .expect("req");
    assert_eq!(raw.text().await.expect("body"), "hello");
    let (_, rec) = get_json(&c, format!("{base}/app?recurse")).await;
    assert_eq!(rec.as_array().map(Vec::len), Some(2));
    let (_, keys) = get_json(&c, format!("{base}/app/?keys&separator=/")).await;
    assert_eq!(keys, json!(["app/a", "app/sub/"]));
    let r = c
        .put(format!("{base}/app/a?cas=1"))
        .body("y")
        .send()
        .await
        .expect("req");
    assert_eq!(r.text().await.expect("body"), "false");
    let r = c
        .put(format!("{base}/app/a?cas={modify}"))
        .body("y")
        .send()
        .await
        .expect("req");
    assert_eq!(r.text().await.expect("body"), "true");
    let r = c
        .put(format!("{base}/app/a?cas=1&acquire=x"))
        .body("y")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 400);
    // agent/kvs_endpoint.go conflictingFlags: every query parameter, encoded and sorted.
    assert_eq!(
        r.text().await.expect("body"),
        "Conflicting flags: acquire=x&cas=1\n"
    );
    let r = c
        .put(format!("{base}/big"))
        .body(vec![b'x'; 512 * 1024 + 1])
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 413);
    let r = c
        .put(format!("{base}/conf.json"))
        .body("{}")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 400, "extension keys rejected");
    assert_eq!(
        r.text().await.expect("body"),
        "key contains suspicious file extension '.json' that may be cached by proxies"
    );
    let r = c
        .get(format!("{base}/conf.json"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 400, "validated on GET too");
    let (s, keys) = get_json(&c, format!("{base}/?keys")).await;
    assert_eq!(s, 200);
    assert!(keys.as_array().is_some_and(|k| k.len() == 2), "{keys}");
    let r = c
        .delete(format!("{base}/app?recurse"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.text().await.expect("body"), "true");
    let r = c.get(format!("{base}/app/a")).send().await.expect("req");
    assert_eq!(r.status(), 404);
    ds.shutdown().await;
}

async fn session(c: &Client, base: &str, body: Value) -> String {
    let (s, b) = put_json(c, format!("{base}/v1/session/create"), body).await;
    assert_eq!(s, 200, "{b}");
    let v: Value = serde_json::from_str(&b).expect("json");
    v["ID"].as_str().expect("ID").to_string()
}

#[tokio::test]
async fn consul_session_lock_acquire_contention_release_and_lock_delay() {
    // §2.4: acquire true / other session false / release; after invalidation the lock delay blocks acquire.
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let s1 = session(&c, &base, json!({"Name": "drover", "LockDelay": "15s"})).await;
    // 60 s lock delay (Consul's maximum) × 0.01 = a 600 ms window, wide enough for a busy CI.
    let s2 = session(&c, &base, json!({"Name": "other", "LockDelay": "60s"})).await;
    let key = format!("{base}/v1/kv/drover/leader");
    let r = c
        .put(format!("{key}?acquire={s1}"))
        .body("me")
        .send()
        .await
        .expect("req");
    assert_eq!(r.text().await.expect("body"), "true");
    let (_, got) = get_json(&c, key.clone()).await;
    assert_eq!(got[0]["Session"], s1.as_str());
    assert_eq!(got[0]["LockIndex"], 1);
    // Re-acquire by the holder: true, no new LockIndex.
    let r = c
        .put(format!("{key}?acquire={s1}"))
        .body("me2")
        .send()
        .await
        .expect("req");
    assert_eq!(r.text().await.expect("body"), "true");
    let r = c
        .put(format!("{key}?acquire={s2}"))
        .body("you")
        .send()
        .await
        .expect("req");
    assert_eq!(r.text().await.expect("body"), "false");
    let r = c
        .put(format!("{key}?release={s2}"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.text().await.expect("body"), "false");
    let r = c
        .put(format!("{key}?release={s1}"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.text().await.expect("body"), "true");
    // A voluntary release has no lock delay.
    let r = c
        .put(format!("{key}?acquire={s2}"))
        .body("you")
        .send()
        .await
        .expect("req");
    assert_eq!(r.text().await.expect("body"), "true");
    let (_, got) = get_json(&c, key.clone()).await;
    assert_eq!(got[0]["LockIndex"], 2);
    // Destroying the holder releases the lock and starts its lock delay (s2's 60 s × 0.01).
    // Acquiring is retried until it succeeds: it must not succeed before the delay is over (a
    // lower bound holds however slow the machine is), and must succeed after it.
    let s3 = session(&c, &base, json!({"LockDelay": 15})).await;
    let destroyed_at = std::time::Instant::now();
    let r = c
        .put(format!("{base}/v1/session/destroy/{s2}"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.text().await.expect("body"), "true");
    let (_, got) = get_json(&c, key.clone()).await;
    assert!(got[0].get("Session").is_none(), "{got}");
    let mut refused = 0;
    loop {
        let r = c
            .put(format!("{key}?acquire={s3}"))
            .body("x")
            .send()
            .await
            .expect("req");
        if r.text().await.expect("body") == "true" {
            break;
        }
        refused += 1;
        assert!(
            destroyed_at.elapsed() < Duration::from_secs(30),
            "lock delay never ends"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        destroyed_at.elapsed() >= Duration::from_millis(600),
        "acquired {:?} after the holder was destroyed, inside its 600 ms lock delay ({refused} refusals)",
        destroyed_at.elapsed()
    );
    ds.shutdown().await;
}

#[tokio::test]
async fn consul_session_renew_404_after_ttl_expiry() {
    // §2.4: the session is invalidated after ~2×TTL; renew then gives 404 `Session id '<id>' not found`.
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let (s, b) = put_json(
        &c,
        format!("{base}/v1/session/create"),
        json!({"TTL": "5s"}),
    )
    .await;
    assert_eq!(s, 500, "TTL below 10s is rejected: {b}");
    // agent/consul/session_endpoint.go formats the TTL with %d (nanoseconds).
    assert_eq!(
        b,
        "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]"
    );
    let id = session(
        &c,
        &base,
        json!({"TTL": "60s", "Behavior": "delete", "LockDelay": "0s"}),
    )
    .await;
    let key = format!("{base}/v1/kv/drover/leader");
    let r = c
        .put(format!("{key}?acquire={id}"))
        .body("me")
        .send()
        .await
        .expect("req");
    assert_eq!(r.text().await.expect("body"), "true");
    // Renew within the TTL (60s × 0.01 = 600 ms; invalidated after about 2×TTL = 1.2 s).
    let r = c
        .put(format!("{base}/v1/session/renew/{id}"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let renewed: Value = r.json().await.expect("json");
    assert_eq!(renewed[0]["ID"], id.as_str());
    // The TTL string comes back as given.
    assert_eq!(renewed[0]["TTL"], "60s");
    // Wait (bounded) for the server to invalidate it, without renewing.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, info) = get_json(&c, format!("{base}/v1/session/info/{id}")).await;
        if info == json!([]) || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = c
        .put(format!("{base}/v1/session/renew/{id}"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.text().await.expect("body"),
        format!("Session id '{id}' not found")
    );
    // Behavior delete: the held key is gone.
    let r = c.get(&key).send().await.expect("req");
    assert_eq!(r.status(), 404);
    let (_, info) = get_json(&c, format!("{base}/v1/session/info/{id}")).await;
    assert_eq!(info, json!([]));
    ds.shutdown().await;
}

#[tokio::test]
async fn consul_session_create_body_is_optional_with_defaults() {
    // §2.4: empty body → agent node, serfHealth check, 15s lock delay, release behaviour.
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let r = c
        .put(format!("{base}/v1/session/create"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.expect("json")["ID"]
        .as_str()
        .expect("id")
        .to_string();
    let (_, info) = get_json(&c, format!("{base}/v1/session/info/{id}")).await;
    assert_eq!(info[0]["Behavior"], "release");
    assert_eq!(info[0]["LockDelay"], 15_000_000_000u64);
    assert_eq!(info[0]["NodeChecks"], json!(["serfHealth"]));
    let (_, list) = get_json(&c, format!("{base}/v1/session/list")).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    ds.shutdown().await;
}

#[tokio::test]
async fn consul_acl_enforced_with_root_and_seed_tokens() {
    // §2.1: X-Consul-Token / Bearer; unknown token 403 `ACL not found`; no rights 403 `Permission denied`.
    let seed = drover_devstack::seed::Seed::from_yaml(
        "acl_tokens:\n  - secret_id: kv-reader\n    system: consul\n    capabilities: [\"kv:read\"]\n",
    )
    .expect("seed");
    let ds = Devstack::start(DevstackConfig {
        time_scale: 0.01,
        consul_acl: true,
        seed: Some(seed),
        ..Default::default()
    })
    .await
    .expect("start");
    let c = client();
    let url = format!("{}/v1/kv/x", ds.consul_url());
    let r = c.put(&url).body("1").send().await.expect("req");
    assert_eq!(r.status(), 403);
    assert_eq!(r.text().await.expect("body"), "Permission denied");
    let r = c
        .put(&url)
        .header("X-Consul-Token", "nope")
        .body("1")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403);
    assert_eq!(r.text().await.expect("body"), "ACL not found");
    let r = c
        .put(&url)
        .bearer_auth(ds.root_token())
        .body("1")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let r = c
        .get(&url)
        .header("X-Consul-Token", "kv-reader")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let r = c
        .put(&url)
        .header("X-Consul-Token", "kv-reader")
        .body("2")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403);
    ds.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Vault

async fn vault(
    c: &Client,
    ds: &Devstack,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    vault_as(c, ds, ds.root_token(), method, path, body).await
}

async fn vault_as(
    c: &Client,
    ds: &Devstack,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let m = Method::from_bytes(method.as_bytes()).expect("method");
    let mut rb = c
        .request(m, format!("{}/v1/{path}", ds.vault_url()))
        .header("X-Vault-Token", token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("req");
    let status = r.status();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn vault_kv2_write_read_versions_and_envelope() {
    // §3.2: write returns version metadata; read has data.data and data.metadata; ?version=N.
    let ds = start().await;
    let c = client();
    let (s, w) = vault(
        &c,
        &ds,
        "POST",
        "secret/data/app",
        Some(json!({"data": {"K": "v1"}})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(w["data"]["version"], 1);
    assert_eq!(w["data"]["deletion_time"], "");
    vault(
        &c,
        &ds,
        "PUT",
        "secret/data/app",
        Some(json!({"data": {"K": "v2"}})),
    )
    .await;
    let (s, r) = vault(&c, &ds, "GET", "secret/data/app", None).await;
    assert_eq!(s, 200);
    for key in [
        "request_id",
        "lease_id",
        "renewable",
        "lease_duration",
        "wrap_info",
        "warnings",
        "auth",
    ] {
        assert!(r.get(key).is_some(), "envelope key {key}");
    }
    assert_eq!(r["mount_type"], "kv");
    assert_eq!(r["data"]["data"]["K"], "v2");
    assert_eq!(r["data"]["metadata"]["version"], 2);
    assert_eq!(r["data"]["metadata"]["destroyed"], false);
    let (_, r1) = vault(&c, &ds, "GET", "secret/data/app?version=1", None).await;
    assert_eq!(r1["data"]["data"]["K"], "v1");
    let (s, _) = vault(&c, &ds, "GET", "secret/data/app?version=9", None).await;
    assert_eq!(s, 404);
    let (_, meta) = vault(&c, &ds, "GET", "secret/metadata/app", None).await;
    assert_eq!(meta["data"]["current_version"], 2);
    // KeyMetadata.AddVersion leaves oldest_version at 0 until versions are pruned.
    assert_eq!(meta["data"]["oldest_version"], 0);
    assert!(meta["data"]["versions"]["2"]["created_time"].is_string());
    // PATCH (merge-patch) makes a new version keeping other keys.
    let r = c
        .patch(format!("{}/v1/secret/data/app", ds.vault_url()))
        .header("X-Vault-Token", ds.root_token())
        .header("Content-Type", "application/merge-patch+json")
        .body(r#"{"data":{"NEW":"n"}}"#)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let (_, r3) = vault(&c, &ds, "GET", "secret/data/app", None).await;
    assert_eq!(r3["data"]["data"], json!({"K": "v2", "NEW": "n"}));
    ds.shutdown().await;
}

#[tokio::test]
async fn vault_missing_secret_is_404_with_empty_errors() {
    // §3.1/§6.8: a missing secret on an existing mount is 404 {"errors":[]}.
    let ds = start().await;
    let c = client();
    let (s, b) = vault(&c, &ds, "GET", "secret/data/nope", None).await;
    assert_eq!(s, 404);
    assert_eq!(b, json!({"errors": []}));
    ds.shutdown().await;
}

#[tokio::test]
async fn vault_unmounted_path_is_404_no_handler() {
    // §3.1: a path with no mount: 404 `no handler for route "x/y". route entry not found.`
    let ds = start().await;
    let c = client();
    let (s, b) = vault(&c, &ds, "GET", "nomount/data/x", None).await;
    assert_eq!(s, 404);
    assert_eq!(
        b,
        json!({"errors": ["no handler for route \"nomount/data/x\". route entry not found."]})
    );
    ds.shutdown().await;
}

#[tokio::test]
async fn vault_soft_deleted_and_destroyed_versions_are_404_with_body() {
    // §3.2/§6.8: deleted or destroyed version → 404 with data.data null and metadata filled.
    let ds = start().await;
    let c = client();
    vault(
        &c,
        &ds,
        "POST",
        "secret/data/app",
        Some(json!({"data": {"K": "1"}})),
    )
    .await;
    vault(
        &c,
        &ds,
        "POST",
        "secret/data/app",
        Some(json!({"data": {"K": "2"}})),
    )
    .await;
    let (s, _) = vault(&c, &ds, "DELETE", "secret/data/app", None).await;
    assert_eq!(s, 204);
    let (s, b) = vault(&c, &ds, "GET", "secret/data/app", None).await;
    assert_eq!(s, 404);
    assert_eq!(b["data"]["data"], Value::Null);
    assert_eq!(b["data"]["metadata"]["version"], 2);
    assert_ne!(b["data"]["metadata"]["deletion_time"], "");
    assert!(ds.state().vault.template_read("secret/app").is_none());
    let (s, _) = vault(
        &c,
        &ds,
        "POST",
        "secret/undelete/app",
        Some(json!({"versions": [2]})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, b) = vault(&c, &ds, "GET", "secret/data/app", None).await;
    assert_eq!(
        (s.as_u16(), b["data"]["data"]["K"].clone()),
        (200, json!("2"))
    );
    let (s, _) = vault(
        &c,
        &ds,
        "PUT",
        "secret/destroy/app",
        Some(json!({"versions": [2]})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, b) = vault(&c, &ds, "GET", "secret/data/app", None).await;
    assert_eq!(s, 404);
    assert_eq!(b["data"]["data"], Value::Null);
    assert_eq!(b["data"]["metadata"]["destroyed"], true);
    let (s, _) = vault(
        &c,
        &ds,
        "POST",
        "secret/delete/app",
        Some(json!({"versions": [1]})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = vault(&c, &ds, "GET", "secret/data/app?version=1", None).await;
    assert_eq!(s, 404);
    let (s, _) = vault(&c, &ds, "DELETE", "secret/metadata/app", None).await;
    assert_eq!(s, 204);
    let (s, b) = vault(&c, &ds, "GET", "secret/data/app", None).await;
    assert_eq!((s.as_u16(), b), (404, json!({"errors": []})));
    ds.shutdown().await;
}

#[tokio::test]
async fn vault_cas_mismatch_and_cas_required_are_400() {
    // §3.2: `check-and-set parameter did not match the current version` / `... required for this call`.
    let ds = start().await;
    let c = client();
    let (s, _) = vault(
        &c,
        &ds,
        "POST",
        "secret/data/c",
        Some(json!({"options": {"cas": 0}, "data": {"a": 1}})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = vault(
        &c,
        &ds,
        "POST",
        "secret/data/c",
        Some(json!({"options": {"cas": 0}, "data": {"a": 2}})),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        b,
        json!({"errors": ["check-and-set parameter did not match the current version"]})
    );
    let (s, _) = vault(
        &c,
        &ds,
        "POST",
        "secret/data/c",
        Some(json!({"options": {"cas": 1}, "data": {"a": 2}})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = vault(
        &c,
        &ds,
        "POST",
        "secret/metadata/c",
        Some(json!({"cas_required": true})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, b) = vault(
        &c,
        &ds,
        "POST",
        "secret/data/c",
        Some(json!({"data": {"a": 3}})),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        b,
        json!({"errors": ["check-and-set parameter required for this call"]})
    );
    ds.shutdown().await;
}

#[tokio::test]
async fn vault_list_metadata_keys_folders_end_in_slash() {
    // §3.2: LIST or GET ?list=true on metadata/<prefix>/ returns data.keys, folders end in '/'.
    let ds = start().await;
    let c = client();
    for p in ["default/overseerr", "default/minio", "other"] {
        vault(
            &c,
            &ds,
            "POST",
            &format!("secret/data/{p}"),
            Some(json!({"data": {"x": "y"}})),
        )
        .await;
    }
    let (s, b) = vault(&c, &ds, "LIST", "secret/metadata/", None).await;
    assert_eq!(s, 200);
    assert_eq!(b["data"]["keys"], json!(["default/", "other"]));
    let (_, b) = vault(&c, &ds, "GET", "secret/metadata/default/?list=true", None).await;
    assert_eq!(b["data"]["keys"], json!(["minio", "overseerr"]));
    let (s, b) = vault(&c, &ds, "LIST", "secret/metadata/nothing/", None).await;
    assert_eq!((s.as_u16(), b), (404, json!({"errors": []})));
    ds.shutdown().await;
}

#[tokio::test]
async fn vault_permission_denied_is_403_multierror() {
    // §3.1: 403 {"errors":["1 error occurred:\n\t* permission denied\n\n"]}, also for bad tokens.
    let ds = start().await;
    let c = client();
    let want = json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]});
    let (s, b) = vault_as(&c, &ds, "bogus", "GET", "secret/data/x", None).await;
    assert_eq!((s.as_u16(), b.clone()), (403, want.clone()));
    let r = c
        .get(format!("{}/v1/secret/data/x", ds.vault_url()))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403);
    // A policy-limited token: read on secret/data/app/*, nothing else.
    let (s, _) = vault(
        &c,
        &ds,
        "POST",
        "sys/policies/acl/app-read",
        Some(json!({"policy": "path \"secret/data/app/*\" {\n  capabilities = [\"read\"]\n}\n"})),
    )
    .await;
    assert_eq!(s, 204);
    let (_, t) = vault(
        &c,
        &ds,
        "POST",
        "auth/token/create",
        Some(json!({"policies": ["app-read"]})),
    )
    .await;
    let token = t["auth"]["client_token"]
        .as_str()
        .expect("token")
        .to_string();
    vault(
        &c,
        &ds,
        "POST",
        "secret/data/app/x",
        Some(json!({"data": {"k": "v"}})),
    )
    .await;
    let (s, _) = vault_as(&c, &ds, &token, "GET", "secret/data/app/x", None).await;
    assert_eq!(s, 200);
    let (s, b) = vault_as(
        &c,
        &ds,
        &token,
        "POST",
        "secret/data/app/x",
        Some(json!({"data": {}})),
    )
    .await;
    assert_eq!((s.as_u16(), b), (403, want.clone()));
    let (s, _) = vault_as(&c, &ds, &token, "GET", "secret/data/other", None).await;
    assert_eq!(s, 403);
    // The ui/mounts preflight needs some capability under the mount, else 403 preflight text.
    let (s, _) = vault_as(
        &c,
        &ds,
        &token,
        "GET",
        "sys/internal/ui/mounts/secret/app/x",
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = vault_as(
        &c,
        &ds,
        "bogus",
        "GET",
        "sys/internal/ui/mounts/secret/app/x",
        None,
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(
        b["errors"][0],
        "preflight capability check returned 403, please ensure client's policies grant access to path \"secret/app/x/\""
    );
    let (s, me) = vault_as(&c, &ds, &token, "GET", "auth/token/lookup-self", None).await;
    assert_eq!(s, 200);
    assert_eq!(me["data"]["policies"], json!(["app-read", "default"]));
    ds.shutdown().await;
}

#[tokio::test]
async fn vault_ui_mounts_preflight_and_template_shim() {
    // §3.3: sys/internal/ui/mounts/<path> gives the mount (path, type kv, options.version "2");
    // consul-template adds data/ for KV v2 so both path forms read the same secret.
    let seed = drover_devstack::seed::Seed::from_yaml(
        "vault_mounts:\n  - path: nomad\n  - path: legacy\n    version: 1\nvault_secrets:\n  - mount: nomad\n    path: default/overseerr\n    data: {MINIO_ACCESS_KEY: a, MINIO_SECRET_KEY: b}\n",
    )
    .expect("seed");
    let ds = Devstack::start(DevstackConfig {
        time_scale: 0.01,
        seed: Some(seed),
        ..Default::default()
    })
    .await
    .expect("start");
    let c = client();
    let (s, b) = vault(
        &c,
        &ds,
        "GET",
        "sys/internal/ui/mounts/nomad/default/overseerr",
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["data"]["path"], "nomad/");
    assert_eq!(b["data"]["type"], "kv");
    assert_eq!(b["data"]["options"]["version"], "2");
    let (s, _) = vault(&c, &ds, "GET", "sys/internal/ui/mounts/nowhere/x", None).await;
    assert_eq!(s, 403);
    let v = &ds.state().vault;
    let a = v
        .template_read("nomad/default/overseerr")
        .expect("shimmed path");
    let b = v
        .template_read("nomad/data/default/overseerr")
        .expect("data path");
    assert_eq!(a["data"], b["data"]);
    assert_eq!(a["data"]["MINIO_ACCESS_KEY"], "a");
    assert!(v.template_read("nomad/default/missing").is_none());
    // KV v1 mount: plain paths.
    let (s, _) = vault(&c, &ds, "PUT", "legacy/app", Some(json!({"k": "v"}))).await;
    assert_eq!(s, 204);
    let (s, b) = vault(&c, &ds, "GET", "legacy/app", None).await;
    assert_eq!((s.as_u16(), b["data"]["k"].clone()), (200, json!("v")));
    assert_eq!(v.template_read("legacy/app").expect("v1")["k"], "v");
    let (_, mounts) = vault(&c, &ds, "GET", "sys/mounts", None).await;
    assert_eq!(mounts["data"]["nomad/"]["options"]["version"], "2");
    assert_eq!(mounts["data"]["legacy/"]["options"]["version"], "1");
    assert_eq!(mounts["data"]["secret/"]["type"], "kv");
    ds.shutdown().await;
}

#[tokio::test]
async fn vault_sys_mounts_enable_and_disable() {
    // sys/mounts: enable kv with options.version, conflict is 400, disable removes the mount.
    let ds = start().await;
    let c = client();
    let (s, _) = vault(
        &c,
        &ds,
        "POST",
        "sys/mounts/kv2",
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, b) = vault(
        &c,
        &ds,
        "POST",
        "sys/mounts/kv2",
        Some(json!({"type": "kv"})),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(b, json!({"errors": ["path is already in use at kv2/"]}));
    let (s, _) = vault(
        &c,
        &ds,
        "POST",
        "kv2/data/x",
        Some(json!({"data": {"a": "b"}})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = vault(&c, &ds, "DELETE", "sys/mounts/kv2", None).await;
    assert_eq!(s, 204);
    let (s, _) = vault(&c, &ds, "GET", "kv2/data/x", None).await;
    assert_eq!(s, 404);
    let (s, h) = vault(&c, &ds, "GET", "sys/health", None).await;
    assert_eq!((s.as_u16(), h["sealed"].clone()), (200, json!(false)));
    ds.shutdown().await;
}

#[tokio::test]
async fn vault_approle_login_good_and_bad() {
    // §3.2: AppRole login returns auth{client_token,...}, data null; bad creds 400 `invalid role or secret ID`.
    let ds = start().await;
    let c = client();
    let (s, _) = vault(
        &c,
        &ds,
        "POST",
        "auth/approle/role/drover",
        Some(json!({"token_policies": ["drover"], "token_ttl": "1h"})),
    )
    .await;
    assert_eq!(s, 204);
    let (_, rid) = vault(&c, &ds, "GET", "auth/approle/role/drover/role-id", None).await;
    let role_id = rid["data"]["role_id"]
        .as_str()
        .expect("role_id")
        .to_string();
    let (_, sid) = vault(&c, &ds, "POST", "auth/approle/role/drover/secret-id", None).await;
    let secret_id = sid["data"]["secret_id"]
        .as_str()
        .expect("secret_id")
        .to_string();
    let r = c
        .post(format!("{}/v1/auth/approle/login", ds.vault_url()))
        .json(&json!({"role_id": role_id, "secret_id": secret_id}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["data"], Value::Null);
    assert_eq!(b["auth"]["metadata"]["role_name"], "drover");
    assert_eq!(b["auth"]["lease_duration"], 3600);
    assert_eq!(b["auth"]["token_policies"], json!(["default", "drover"]));
    let token = b["auth"]["client_token"]
        .as_str()
        .expect("token")
        .to_string();
    let (s, me) = vault_as(&c, &ds, &token, "GET", "auth/token/lookup-self", None).await;
    assert_eq!(s, 200);
    assert_eq!(me["data"]["id"], token.as_str());
    let r = c
        .post(format!("{}/v1/auth/approle/login", ds.vault_url()))
        .json(&json!({"role_id": role_id, "secret_id": "wrong"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"errors": ["invalid role or secret ID"]})
    );
    ds.shutdown().await;
}

#[tokio::test]
async fn vault_jwt_login_needs_configured_role_and_well_formed_jwt() {
    // JWT auth: any well-formed JWT for a configured role logs in; otherwise 400.
    let ds = start().await;
    let c = client();
    let (s, _) = vault(
        &c,
        &ds,
        "POST",
        "auth/jwt/role/nomad-workloads",
        Some(
            json!({"role_type": "jwt", "token_policies": ["wl"], "bound_audiences": ["vault.io"]}),
        ),
    )
    .await;
    assert_eq!(s, 204);
    // {"alg":"none"} . {"aud":"vault.io"} . sig
    let good = "eyJhbGciOiJub25lIn0.eyJhdWQiOiJ2YXVsdC5pbyJ9.c2ln";
    let login = |body: Value| {
        c.post(format!("{}/v1/auth/jwt/login", ds.vault_url()))
            .json(&body)
            .send()
    };
    let r = login(json!({"role": "nomad-workloads", "jwt": good}))
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["auth"]["policies"], json!(["default", "wl"]));
    let r = login(json!({"role": "nomad-workloads", "jwt": "garbage"}))
        .await
        .expect("req");
    assert_eq!(r.status(), 400);
    let r = login(json!({"role": "unknown", "jwt": good}))
        .await
        .expect("req");
    assert_eq!(r.status(), 400);
    ds.shutdown().await;
}

#[tokio::test]
async fn vault_jwt_auth_enabled_at_another_path_has_its_own_roles_and_login() {
    // JWT auth API: `vault auth enable -path=nomad-workloads jwt` is `POST sys/auth/<path>`; roles
    // are `auth/<path>/role/:name`, login is `POST auth/<path>/login` (no token needed) and the
    // token's `path` names the mount. A path with no auth method has no handler (404).
    let ds = start().await;
    let c = client();
    let (s, _) = vault(
        &c,
        &ds,
        "POST",
        "sys/auth/nomad-workloads",
        Some(json!({"type": "jwt"})),
    )
    .await;
    assert_eq!(s, 204);
    let good = "eyJhbGciOiJub25lIn0.eyJhdWQiOiJ2YXVsdC5pbyJ9.c2ln";
    let login = |mount: &str| {
        c.post(format!("{}/v1/auth/{mount}/login", ds.vault_url()))
            .json(&json!({"role": "drover", "jwt": good}))
            .send()
    };
    let r = login("nomad-workloads").await.expect("req");
    assert_eq!(r.status(), 400, "no role yet");
    let (s, _) = vault(
        &c,
        &ds,
        "POST",
        "auth/nomad-workloads/role/drover",
        Some(
            json!({"role_type": "jwt", "token_policies": ["wl"], "bound_audiences": ["vault.io"]}),
        ),
    )
    .await;
    assert_eq!(s, 204);
    let r = login("nomad-workloads").await.expect("req");
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["auth"]["policies"], json!(["default", "wl"]));
    let token = b["auth"]["client_token"].as_str().unwrap_or_default();
    let (s, me) = vault_as(&c, &ds, token, "GET", "auth/token/lookup-self", None).await;
    assert_eq!(s, 200);
    assert_eq!(me["data"]["path"], "auth/nomad-workloads/login");
    // Roles belong to their mount: the default `jwt/` mount does not have this one.
    let (s, _) = vault(&c, &ds, "GET", "auth/jwt/role/drover", None).await;
    assert_eq!(s, 404);
    let r = login("jwt").await.expect("req");
    assert_eq!(r.status(), 400);
    let r = login("not-enabled").await.expect("req");
    assert_eq!(r.status(), 404);
    ds.shutdown().await;
}

#[tokio::test]
async fn vault_patch_requires_merge_patch_content_type() {
    // KV v2 PATCH needs `Content-Type: application/merge-patch+json`, otherwise 415.
    let ds = start().await;
    let c = client();
    vault(
        &c,
        &ds,
        "POST",
        "secret/data/p",
        Some(json!({"data": {"a": "1"}})),
    )
    .await;
    let (s, b) = vault(
        &c,
        &ds,
        "PATCH",
        "secret/data/p",
        Some(json!({"data": {"b": "2"}})),
    )
    .await;
    assert_eq!(s, 415, "{b}");
    let r = c
        .patch(format!("{}/v1/secret/data/missing", ds.vault_url()))
        .header("X-Vault-Token", ds.root_token())
        .header("Content-Type", "application/merge-patch+json")
        .body(r#"{"data":{"b":"2"}}"#)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 404, "patching a missing secret");
    ds.shutdown().await;
}

#[tokio::test]
async fn consul_catalog_register_connect_proxy_and_health_connect() {
    // §2.2: /v1/health/connect/:name returns the connect-proxy instances for a service;
    // /v1/catalog/register and /deregister answer true.
    let ds = start().await;
    let c = client();
    let base = ds.consul_url();
    let (s, b) = put_json(
        &c,
        format!("{base}/v1/catalog/register"),
        json!({"Node": "ext", "Address": "10.1.1.1",
               "Service": {"ID": "web-sidecar-proxy", "Service": "web-sidecar-proxy", "Kind": "connect-proxy",
                           "Port": 21000, "Proxy": {"DestinationServiceName": "web"}},
               "Check": {"CheckID": "c1", "Name": "proxy", "Status": "passing"}}),
    )
    .await;
    assert_eq!((s.as_u16(), b.as_str()), (200, "true"));
    let (_, entries) = get_json(&c, format!("{base}/v1/health/connect/web?passing")).await;
    assert_eq!(entries.as_array().map(Vec::len), Some(1));
    assert_eq!(entries[0]["Service"]["Kind"], "connect-proxy");
    assert_eq!(
        entries[0]["Service"]["Proxy"]["DestinationServiceName"],
        "web"
    );
    let (_, node) = get_json(&c, format!("{base}/v1/catalog/node/ext")).await;
    assert!(node["Services"]["web-sidecar-proxy"].is_object(), "{node}");
    let (_, nodes) = get_json(&c, format!("{base}/v1/catalog/nodes")).await;
    assert!(
        nodes
            .as_array()
            .is_some_and(|n| n.iter().any(|x| x["Node"] == "ext"))
    );
    let (_, b) = put_json(
        &c,
        format!("{base}/v1/catalog/deregister"),
        json!({"Node": "ext", "ServiceID": "web-sidecar-proxy"}),
    )
    .await;
    assert_eq!(b, "true");
    let (_, entries) = get_json(&c, format!("{base}/v1/health/connect/web?passing=false")).await;
    assert_eq!(entries, json!([]));
    let (_, unknown) = get_json(&c, format!("{base}/v1/catalog/node/nope")).await;
    assert_eq!(unknown, Value::Null);
    ds.shutdown().await;
}

#[tokio::test]
async fn consul_seed_nodes_are_catalog_nodes_with_serf_health() {
    // Seed nodes are Nomad clients and also Consul catalog nodes (seed format).
    let seed = drover_devstack::seed::Seed::from_yaml(
        "nodes:\n  - name: hestia\n    address: 192.168.1.5\n  - name: heracles\n    arch: arm64\n",
    )
    .expect("seed");
    let ds = Devstack::start(DevstackConfig {
        time_scale: 0.01,
        seed: Some(seed),
        ..Default::default()
    })
    .await
    .expect("start");
    let c = client();
    let (_, nodes) = get_json(&c, format!("{}/v1/catalog/nodes", ds.consul_url())).await;
    let find = |name: &str| {
        nodes
            .as_array()
            .and_then(|a| a.iter().find(|n| n["Node"] == name).cloned())
            .unwrap_or(Value::Null)
    };
    assert_eq!(find("hestia")["Address"], "192.168.1.5");
    assert_eq!(find("heracles")["Address"], "10.0.0.2");
    assert_eq!(find("heracles")["Datacenter"], "dc1");
    let (_, checks) = get_json(&c, format!("{}/v1/health/node/hestia", ds.consul_url())).await;
    assert_eq!(checks[0]["CheckID"], "serfHealth");
    assert_eq!(checks[0]["Status"], "passing");
    ds.shutdown().await;
}

#[tokio::test]
async fn vault_max_versions_prunes_oldest_and_moves_oldest_version() {
    // path_data.go AddVersion: keep max(secret, mount) versions (default 10); oldest_version
    // becomes the first kept version once pruning starts.
    let ds = start().await;
    let c = client();
    let (s, _) = vault(
        &c,
        &ds,
        "POST",
        "secret/metadata/m",
        Some(json!({"max_versions": 2})),
    )
    .await;
    assert_eq!(s, 204);
    for i in 1..=4 {
        vault(
            &c,
            &ds,
            "POST",
            "secret/data/m",
            Some(json!({"data": {"i": i}})),
        )
        .await;
    }
    let (_, meta) = vault(&c, &ds, "GET", "secret/metadata/m", None).await;
    assert_eq!(meta["data"]["current_version"], 4);
    assert_eq!(meta["data"]["oldest_version"], 3);
    let versions: Vec<&String> = meta["data"]["versions"]
        .as_object()
        .expect("versions")
        .keys()
        .collect();
    assert_eq!(versions, vec!["3", "4"]);
    let (s, _) = vault(&c, &ds, "GET", "secret/data/m?version=1", None).await;
    assert_eq!(s, 404);
    ds.shutdown().await;
}
