//! The live cache follows Nomad's event stream: a change reaches the cache without a re-list,
//! a stream that answers 5xx falls back to blocking lists, and a dropped stream is resynced.

mod common;

use std::time::Duration;

use drover::live::LiveStore;
use drover::providers::nomad::{NomadClient, NomadConfig};
use drover_devstack::System;
use drover_devstack::faults::{FaultKind, FaultSpec};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn nomad_client(ds: &drover_devstack::Devstack) -> NomadClient {
    drover::providers::install_crypto_provider();
    NomadClient::new(NomadConfig {
        address: ds.nomad_url(),
        ..NomadConfig::default()
    })
    .unwrap_or_else(|e| panic!("client: {e}"))
}

/// Register a minimal service job straight through the devstack's API (not drover).
async fn register(ds: &drover_devstack::Devstack, id: &str) {
    let job = json!({"Job": {"ID": id, "Type": "service", "TaskGroups": [{"Name": "web",
        "Count": 1, "Tasks": [{"Name": "server", "Driver": "docker",
        "Config": {"image": "nginx"}}]}]}});
    let resp = common::http_client()
        .put(format!("{}/v1/jobs", ds.nomad_url()))
        .body(job.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("register {id}: {e}"));
    assert_eq!(resp.status().as_u16(), 200, "register {id}");
}

/// Arm a fault on the devstack's Nomad (every matching request, until removed); its ID.
fn nomad_fault(
    ds: &drover_devstack::Devstack,
    method: Option<&str>,
    path: &str,
    kind: FaultKind,
    status: Option<u16>,
) -> String {
    ds.state()
        .faults
        .add(FaultSpec {
            system: Some(System::Nomad),
            method: method.map(str::to_string),
            path: path.into(),
            kind,
            status,
            body: None,
            latency_ms: None,
            count: None,
            probability: None,
        })
        .unwrap_or_else(|e| panic!("fault: {e}"))
}

/// Wait (on the cache's change signal, at most 10 s) until `done` holds.
async fn until(live: &LiveStore, what: &str, done: impl Fn(&drover::live::LiveSnapshot) -> bool) {
    let mut changed = live.subscribe();
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while !done(&live.snapshot()) {
            if changed.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting for {what}");
}

fn job_lists_since(ds: &drover_devstack::Devstack, seq: u64) -> Vec<String> {
    ds.state()
        .requests
        .entries_since(Some(System::Nomad), seq)
        .into_iter()
        .filter(|e| e.method == "GET" && e.path == "/v1/jobs")
        .map(|e| e.query)
        .collect()
}

fn last_seq(ds: &drover_devstack::Devstack) -> u64 {
    ds.state()
        .requests
        .entries()
        .last()
        .map(|e| e.seq)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_arrives_through_the_stream_without_listing_jobs() {
    let ds = common::fast_devstack().await;
    let live = LiveStore::default();
    let shutdown = CancellationToken::new();
    live.spawn_watchers(nomad_client(&ds), shutdown.clone());
    until(&live, "the first list", |s| s.ready()).await;
    let before = last_seq(&ds);
    register(&ds, "web").await;
    until(&live, "web in the cache", |s| {
        s.job("default", "web").is_some()
    })
    .await;
    until(&live, "web's allocation activity", |s| {
        s.job_activity("default", "web").allocations > 0
    })
    .await;
    let lists = job_lists_since(&ds, before);
    assert!(lists.is_empty(), "no job list for one change: {lists:?}");
    let streams =
        ds.state()
            .requests
            .count_matching(Some(System::Nomad), Some("GET"), "/v1/event/stream");
    assert_eq!(streams, 1, "one stream, held open");
    shutdown.cancel();
    ds.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_answering_5xx_falls_back_to_blocking_lists() {
    let ds = common::fast_devstack().await;
    nomad_fault(&ds, None, "/v1/event/stream", FaultKind::Error, Some(503));
    let live = LiveStore::default();
    let shutdown = CancellationToken::new();
    live.spawn_watchers(nomad_client(&ds), shutdown.clone());
    until(&live, "the first list", |s| s.ready()).await;
    register(&ds, "web").await;
    until(&live, "web through the lists", |s| {
        s.job("default", "web").is_some()
    })
    .await;
    let lists = job_lists_since(&ds, 0);
    assert!(
        lists.iter().any(|q| q.contains("index=")),
        "a blocking list saw the change: {lists:?}"
    );
    // Coalesced and paced: not a list per write.
    assert!(lists.len() <= 6, "{} job lists: {lists:?}", lists.len());
    let refused = ds
        .state()
        .requests
        .entries_since(Some(System::Nomad), 0)
        .into_iter()
        .filter(|e| e.path == "/v1/event/stream")
        .all(|e| e.status == 503);
    assert!(refused, "the stream was tried and refused");
    assert_eq!(
        live.snapshot().stream_session,
        0,
        "no stream session while the lists feed the cache (health reads are not reused)"
    );
    shutdown.cancel();
    ds.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_stream_is_resynced_and_followed_again() {
    let ds = common::fast_devstack().await;
    let live = LiveStore::default();
    let shutdown = CancellationToken::new();
    live.spawn_watchers(nomad_client(&ds), shutdown.clone());
    until(&live, "the first list", |s| s.ready()).await;
    register(&ds, "old").await;
    until(&live, "old in the cache", |s| {
        s.job("default", "old").is_some()
    })
    .await;
    // A reset is a new cluster: the devstack ends its streams, as a restarted Nomad does.
    ds.state().reset();
    until(&live, "the resync dropping old", |s| {
        s.job("default", "old").is_none()
    })
    .await;
    // The reset also cleared the request log: any stream in it was opened after the drop.
    let reopened = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let open = ds
                .state()
                .requests
                .entries_since(Some(System::Nomad), 0)
                .iter()
                .any(|e| e.path == "/v1/event/stream" && e.status == 200);
            if open {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        reopened.is_ok(),
        "the stream was opened again after the drop"
    );
    let before = last_seq(&ds);
    register(&ds, "new").await;
    until(&live, "new in the cache", |s| {
        s.job("default", "new").is_some()
    })
    .await;
    let lists = job_lists_since(&ds, before);
    assert!(lists.is_empty(), "new came through the stream: {lists:?}");
    shutdown.cancel();
    ds.shutdown().await;
}

/// Lists refused (403) through the first list and the whole fallback that follows it, while
/// the stream itself opens: the cache must still list once the lists work again, not follow the
/// stream from nothing and stay never ready.
#[tokio::test(flavor = "multi_thread")]
async fn a_cache_that_never_listed_lists_before_following_the_stream() {
    let ds = common::fast_devstack().await;
    register(&ds, "web").await;
    let refused = nomad_fault(
        &ds,
        Some("GET"),
        "^/v1/(jobs|volumes)$",
        FaultKind::Forbidden,
        None,
    );
    let live = LiveStore::default();
    let shutdown = CancellationToken::new();
    live.spawn_watchers(nomad_client(&ds), shutdown.clone());
    // Past the first list and its fallback (1 s of backoff, jittered up to 2 s): a drover that
    // follows the stream without a list has opened it by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!live.snapshot().ready());
    ds.state().faults.remove(&refused);
    until(&live, "the lists once they work again", |s| {
        s.ready() && s.job("default", "web").is_some()
    })
    .await;
    shutdown.cancel();
    ds.shutdown().await;
}

/// The Nomad requests since `seq`, as `METHOD path`.
fn nomad_requests_since(ds: &drover_devstack::Devstack, seq: u64) -> Vec<String> {
    ds.state()
        .requests
        .entries_since(Some(System::Nomad), seq)
        .into_iter()
        .filter(|e| e.path != "/v1/event/stream")
        .map(|e| format!("{} {}", e.method, e.path))
        .collect()
}

/// While a stream session lasts, a job's health reads are kept with the cache's marks and only
/// the read whose mark moved is made again; without a session every assessment reads all three.
#[tokio::test(flavor = "multi_thread")]
async fn a_health_check_reads_again_only_what_an_event_moved() {
    let ds = common::fast_devstack().await;
    let live = LiveStore::default();
    let shutdown = CancellationToken::new();
    let nomad = nomad_client(&ds);
    live.spawn_watchers(nomad.clone(), shutdown.clone());
    until(&live, "the first list", |s| s.ready()).await;
    register(&ds, "web").await;
    until(&live, "web followed by a stream session", |s| {
        s.stream_session > 0 && s.job("default", "web").is_some()
    })
    .await;
    let snapshot = live.snapshot();
    let marks = drover::health::ReadMarks {
        session: snapshot.stream_session,
        job: snapshot.job("default", "web").map(|j| j.modify_index),
        deployments: 7,
        allocations: 9,
    };
    let mut reads = drover::health::JobReads::default();
    let mut assess = async |marks: drover::health::ReadMarks| {
        let before = last_seq(&ds);
        reads
            .assess(&nomad, "default", "web", marks)
            .await
            .unwrap_or_else(|e| panic!("assess: {e}"));
        let mut made = nomad_requests_since(&ds, before);
        made.sort();
        made
    };
    let all = vec![
        "GET /v1/job/web".to_string(),
        "GET /v1/job/web/allocations".to_string(),
        "GET /v1/job/web/deployment".to_string(),
    ];
    assert_eq!(assess(marks).await, all, "the first check reads all three");
    assert!(assess(marks).await.is_empty(), "nothing moved: no read");
    let allocations = drover::health::ReadMarks {
        allocations: 10,
        ..marks
    };
    assert_eq!(
        assess(allocations).await,
        ["GET /v1/job/web/allocations"],
        "an allocation event"
    );
    let deployments = drover::health::ReadMarks {
        deployments: 8,
        ..allocations
    };
    assert_eq!(
        assess(deployments).await,
        ["GET /v1/job/web/deployment"],
        "a deployment event"
    );
    let job = drover::health::ReadMarks {
        job: marks.job.map(|i| i + 1),
        ..deployments
    };
    assert_eq!(assess(job).await, ["GET /v1/job/web"], "the job changed");
    let uncached = drover::health::ReadMarks { job: None, ..job };
    assert_eq!(
        assess(uncached).await,
        ["GET /v1/job/web"],
        "a job not in the cache is read each time"
    );
    let next_session = drover::health::ReadMarks {
        session: marks.session + 1,
        ..job
    };
    assert_eq!(assess(next_session).await, all, "a new session reads all");
    let no_stream = drover::health::ReadMarks {
        session: 0,
        ..next_session
    };
    assert_eq!(assess(no_stream).await, all, "no stream: all three");
    assert_eq!(assess(no_stream).await, all, "and again: nothing kept");
    shutdown.cancel();
    ds.shutdown().await;
}
