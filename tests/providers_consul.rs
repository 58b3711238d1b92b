//! The Consul client against the devstack's Consul: config entries created, updated and deleted
//! with `cas` (a lost CAS is `false`, never an overwrite), blocking lists that wake on another
//! client's write, permanent vs transient errors from injected faults, and a token that never
//! shows in Debug output or errors.

use std::time::{Duration, Instant};

use drover::providers::consul::{
    ConfigEntry, ConsulClient, ConsulConfig, ConsulError, QueryOptions,
};
use drover::telemetry::{Redacted, error_chain};
use drover_devstack::faults::{FaultKind, FaultSpec};
use drover_devstack::{Devstack, DevstackConfig, System};
use serde_json::{Value, json};

mod common;

const TOKEN: &str = "c0nsul-t0ken-never-shown";

fn consul(ds: &Devstack, token: Option<&str>) -> ConsulClient {
    ConsulClient::new(ConsulConfig {
        address: ds.consul_url(),
        token: token.map(|t| Redacted(t.to_string())),
        request_timeout: Duration::from_secs(5),
        max_retries: 2,
        ..ConsulConfig::default()
    })
    .unwrap_or_else(|e| panic!("consul client: {e}"))
}

fn web(protocol: &str) -> Value {
    json!({"Kind": "service-defaults", "Name": "web", "Protocol": protocol,
           "Meta": {"drover.app": "media"}})
}

/// The live `service-defaults/web`, if any.
async fn live_web(client: &ConsulClient) -> Option<ConfigEntry> {
    client
        .read_config_entry("service-defaults", "web")
        .await
        .unwrap_or_else(|e| panic!("read: {e}"))
}

fn fault(kind: FaultKind, status: Option<u16>, count: Option<u64>) -> FaultSpec {
    FaultSpec {
        system: Some(System::Consul),
        method: Some("PUT".into()),
        path: "/v1/config".into(),
        kind,
        status,
        body: None,
        latency_ms: None,
        count,
        probability: None,
    }
}

fn config_puts(ds: &Devstack) -> usize {
    ds.state()
        .requests
        .entries()
        .iter()
        .filter(|r| r.method == "PUT" && r.path == "/v1/config")
        .count()
}

#[tokio::test]
async fn create_with_cas_zero_and_a_second_create_loses() {
    let ds = common::fast_devstack().await;
    let client = consul(&ds, None);
    assert!(live_web(&client).await.is_none());
    assert!(
        client
            .write_config_entry(&web("http"), 0)
            .await
            .expect("create")
    );
    // Another writer's create of different content loses: false, not an error, no overwrite.
    assert!(
        !client
            .write_config_entry(&web("grpc"), 0)
            .await
            .expect("second create")
    );
    let live = live_web(&client).await.expect("exists");
    assert_eq!(live.body()["Protocol"], "http");
    assert_eq!(live.meta_value("drover.app"), Some("media"));
    assert!(live.create_index() > 0 && live.modify_index() >= live.create_index());
    ds.shutdown().await;
}

#[tokio::test]
async fn update_with_the_read_index_wins_and_with_a_stale_one_loses() {
    let ds = common::fast_devstack().await;
    let client = consul(&ds, None);
    client
        .write_config_entry(&web("http"), 0)
        .await
        .expect("create");
    let read = live_web(&client).await;
    let index = read.map(|e| e.modify_index()).unwrap_or_default();
    assert!(
        client
            .write_config_entry(&web("grpc"), index)
            .await
            .expect("update")
    );
    // `index` is stale now: someone (this client) changed the entry since.
    assert!(
        !client
            .write_config_entry(&web("http2"), index)
            .await
            .expect("stale update")
    );
    let live = live_web(&client).await;
    assert_eq!(
        live.map(|e| e.body()["Protocol"].clone()),
        Some(json!("grpc"))
    );
    ds.shutdown().await;
}

#[tokio::test]
async fn a_blocking_list_wakes_when_another_client_writes() {
    let ds = common::fast_devstack().await;
    let watcher = consul(&ds, None);
    let writer = consul(&ds, None);
    let first = watcher
        .list_config_entries("service-defaults", QueryOptions::default())
        .await
        .expect("list");
    assert!(first.value.is_empty() && first.index >= 1);
    let held = tokio::spawn(async move {
        let started = Instant::now();
        let query = QueryOptions {
            index: first.index,
            wait: Some(Duration::from_secs(60)),
        };
        let answer = watcher.list_config_entries("service-defaults", query).await;
        (started.elapsed(), answer)
    });
    // Await the held query itself rather than sleeping.
    let deadline = Instant::now() + common::WAIT;
    while ds.state().consul.index.held_queries() == 0 {
        assert!(Instant::now() < deadline, "the list was never held");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        writer
            .write_config_entry(&web("http"), 0)
            .await
            .expect("write")
    );
    let (elapsed, answer) = held.await.expect("join");
    let answer = answer.expect("blocking list");
    assert!(elapsed < Duration::from_secs(30), "woke after {elapsed:?}");
    assert!(answer.index > first.index);
    let names: Vec<&str> = answer.value.iter().map(|e| e.name()).collect();
    assert_eq!(names, ["web"]);
    ds.shutdown().await;
}

#[tokio::test]
async fn delete_with_cas_loses_on_a_stale_index_and_wins_on_the_current_one() {
    let ds = common::fast_devstack().await;
    let client = consul(&ds, None);
    client
        .write_config_entry(&web("http"), 0)
        .await
        .expect("create");
    let first = live_web(&client).await;
    let stale = first.map(|e| e.modify_index()).unwrap_or_default();
    client
        .write_config_entry(&web("grpc"), stale)
        .await
        .expect("update");
    assert!(
        !client
            .delete_config_entry("service-defaults", "web", stale)
            .await
            .expect("delete")
    );
    let current = live_web(&client).await;
    let current = current.expect("still there after a lost delete");
    assert!(
        client
            .delete_config_entry("service-defaults", "web", current.modify_index())
            .await
            .expect("delete")
    );
    assert!(live_web(&client).await.is_none());
    ds.shutdown().await;
}

#[tokio::test]
async fn a_403_is_permanent_and_not_retried() {
    let ds = common::fast_devstack().await;
    let client = consul(&ds, Some(TOKEN));
    ds.state()
        .faults
        .add(fault(FaultKind::Forbidden, None, None))
        .expect("fault");
    let before = config_puts(&ds);
    let error = client
        .write_config_entry(&web("http"), 0)
        .await
        .expect_err("403");
    assert_eq!(error.status(), Some(403));
    assert!(error.is_forbidden() && !error.is_transient(), "{error}");
    assert_eq!(
        config_puts(&ds) - before,
        1,
        "a permanent error is sent once"
    );
    assert_no_token(&client, &error);
    ds.shutdown().await;
}

#[tokio::test]
async fn a_503_and_no_leader_are_transient_and_retried_until_they_pass() {
    let ds = common::fast_devstack().await;
    let client = consul(&ds, Some(TOKEN));
    // Two 503s, then the server answers: the client retries through them.
    ds.state()
        .faults
        .add(fault(FaultKind::Error, Some(503), Some(2)))
        .expect("fault");
    let before = config_puts(&ds);
    assert!(
        client
            .write_config_entry(&web("http"), 0)
            .await
            .expect("write after retries")
    );
    assert_eq!(config_puts(&ds) - before, 3);
    // A lasting "No cluster leader" (500) is transient too, and gives up after the retries.
    ds.state()
        .faults
        .add(fault(FaultKind::NoLeader, None, None))
        .expect("fault");
    let error = client
        .write_config_entry(&web("grpc"), 0)
        .await
        .expect_err("no leader");
    assert_eq!(error.status(), Some(500));
    assert!(error.is_transient(), "{error}");
    assert_no_token(&client, &error);
    // A 503 that lasts is reported as transient once the retries are spent.
    ds.state().faults.clear();
    ds.state()
        .faults
        .add(fault(FaultKind::Error, Some(503), None))
        .expect("fault");
    let error = client
        .write_config_entry(&web("grpc"), 0)
        .await
        .expect_err("503");
    assert!(
        error.status() == Some(503) && error.is_transient(),
        "{error}"
    );
    ds.shutdown().await;
}

#[tokio::test]
async fn the_token_is_sent_as_x_consul_token_and_never_shown() {
    let ds = Devstack::start(DevstackConfig {
        time_scale: 0.01,
        consul_acl: true,
        root_token: TOKEN.to_string(),
        ..DevstackConfig::default()
    })
    .await
    .expect("devstack");
    // With ACLs on, the token is what lets the write through.
    let with_token = consul(&ds, Some(TOKEN));
    assert!(
        with_token
            .write_config_entry(&web("http"), 0)
            .await
            .expect("write")
    );
    let anonymous = consul(&ds, None);
    let denied = anonymous
        .read_config_entry("service-defaults", "web")
        .await
        .expect_err("anonymous read is denied");
    assert!(denied.is_forbidden());
    // A transport error (nothing listens) carries no token either.
    let unreachable = ConsulClient::new(ConsulConfig {
        address: "http://127.0.0.1:9".into(),
        token: Some(Redacted(TOKEN.into())),
        max_retries: 0,
        ..ConsulConfig::default()
    })
    .expect("client");
    let error = unreachable
        .read_config_entry("service-defaults", "web")
        .await
        .expect_err("connection refused");
    assert!(error.is_transient());
    assert_no_token(&unreachable, &error);
    assert_no_token(&with_token, &denied);
    ds.shutdown().await;
}

fn assert_no_token(client: &ConsulClient, error: &ConsulError) {
    for shown in [
        format!("{client:?}"),
        format!("{:?}", client.config()),
        format!("{error}"),
        format!("{error:?}"),
        error_chain(error),
    ] {
        assert!(!shown.contains(TOKEN), "token shown in {shown}");
    }
}
