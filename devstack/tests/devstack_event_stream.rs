//! `GET /v1/event/stream` against the facts of api-facts §1.9: NDJSON batches
//! `{"Index":N,"Events":[…]}`, `{}` heartbeats, topic/key and namespace filters, `index` replay,
//! the 400 texts, and the fault layer.

mod support;

use std::time::Duration;

use drover_devstack::{Devstack, DevstackConfig};
use serde_json::{Value, json};
use support::http_client;

async fn devstack(heartbeat: Duration) -> Devstack {
    Devstack::start(DevstackConfig {
        time_scale: 0.01,
        event_heartbeat: heartbeat,
        ..DevstackConfig::default()
    })
    .await
    .unwrap_or_else(|e| panic!("devstack starts: {e}"))
}

/// An open stream, read line by line.
struct Lines {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl Lines {
    async fn open(ds: &Devstack, query: &str) -> Lines {
        let resp = http_client()
            .get(format!("{}/v1/event/stream{query}", ds.nomad_url()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("stream: {e}"));
        assert_eq!(resp.status().as_u16(), 200, "stream {query}");
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        Lines {
            resp,
            buf: Vec::new(),
        }
    }

    /// The next line as JSON, or `None` when the stream ends or stays silent for 5 s.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(
                    serde_json::from_slice(&line)
                        .unwrap_or_else(|e| panic!("one JSON object per line: {e}")),
                );
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.resp.chunk())
                .await
                .ok()?
                .ok()??;
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// The next event (heartbeats skipped) whose `Topic` and `Type` match.
    async fn event(&mut self, topic: &str, kind: &str) -> (u64, Value) {
        loop {
            let line = self
                .next()
                .await
                .unwrap_or_else(|| panic!("no {topic}/{kind} event"));
            for e in line["Events"].as_array().into_iter().flatten() {
                if e["Topic"] == topic && e["Type"] == kind {
                    return (line["Index"].as_u64().unwrap_or(0), e.clone());
                }
            }
        }
    }

    /// Every event until `quiet` passes with nothing but heartbeats.
    async fn drain_for(&mut self, quiet: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(Some(line)) = tokio::time::timeout(quiet, self.next()).await {
            out.extend(line["Events"].as_array().into_iter().flatten().cloned());
        }
        out
    }
}

fn job(id: &str) -> Value {
    json!({"ID": id, "Type": "service", "TaskGroups": [{"Name": "web", "Count": 1,
        "Tasks": [{"Name": "server", "Driver": "docker", "Config": {"image": "nginx"}}]}]})
}

async fn send(ds: &Devstack, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or_default();
    let mut rb = http_client().request(method, format!("{}{path}", ds.nomad_url()));
    if let Some(b) = body {
        rb = rb.body(b.to_string());
    }
    let resp = rb.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

async fn register(ds: &Devstack, id: &str) -> u64 {
    let (status, body) = send(ds, "PUT", "/v1/jobs", Some(json!({"Job": job(id)}))).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    v["JobModifyIndex"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn a_registered_job_arrives_as_a_job_registered_batch_with_the_job_as_payload() {
    let ds = devstack(Duration::from_secs(30)).await;
    let mut stream = Lines::open(&ds, "?topic=Job&topic=Allocation&namespace=*").await;
    let index = register(&ds, "web").await;
    let (batch_index, event) = stream.event("Job", "JobRegistered").await;
    assert_eq!(batch_index, index, "the batch carries the write's index");
    assert_eq!(event["Index"], json!(index));
    assert_eq!(event["Key"], "web");
    assert_eq!(event["Namespace"], "default");
    assert_eq!(event["Payload"]["Job"]["ID"], "web");
    assert_eq!(event["Payload"]["Job"]["JobModifyIndex"], json!(index));
    // The scheduler places the allocation: Allocation events filter by job ID.
    let (_, alloc) = stream.event("Allocation", "AllocationCreated").await;
    assert_eq!(alloc["Payload"]["Allocation"]["JobID"], "web");
    assert!(
        alloc["FilterKeys"]
            .as_array()
            .is_some_and(|k| k.contains(&json!("web"))),
        "{alloc}"
    );
    ds.shutdown().await;
}

#[tokio::test]
async fn topic_key_filters_keep_only_that_job_and_its_allocations() {
    let ds = devstack(Duration::from_secs(30)).await;
    let mut stream = Lines::open(&ds, "?topic=Job:api&topic=Allocation:api").await;
    register(&ds, "web").await;
    register(&ds, "api").await;
    let (_, event) = stream.event("Job", "JobRegistered").await;
    assert_eq!(event["Key"], "api", "web's registration is filtered out");
    let (_, alloc) = stream.event("Allocation", "AllocationCreated").await;
    assert_eq!(alloc["Payload"]["Allocation"]["JobID"], "api");
    for e in stream.drain_for(Duration::from_millis(500)).await {
        assert!(
            e["Key"] == "api" || e["FilterKeys"][0] == "api",
            "only api's events: {e}"
        );
        assert!(
            e["Topic"] == "Job" || e["Topic"] == "Allocation",
            "only the asked topics: {e}"
        );
    }
    ds.shutdown().await;
}

#[tokio::test]
async fn index_replays_the_buffer_after_it() {
    let ds = devstack(Duration::from_secs(30)).await;
    let first = register(&ds, "one").await;
    let second = register(&ds, "two").await;
    let mut stream = Lines::open(&ds, &format!("?topic=Job&index={first}")).await;
    let mut replayed = Vec::new();
    while let Some(line) = stream.next().await {
        let index = line["Index"].as_u64().unwrap_or(0);
        assert!(index > first, "only batches after {first}: {line}");
        let events = line["Events"].as_array().cloned().unwrap_or_default();
        if events.iter().any(|e| e["Key"] == "two") {
            replayed.push(index);
            break;
        }
    }
    assert_eq!(replayed, vec![second], "two's registration is replayed");
    ds.shutdown().await;
}

#[tokio::test]
async fn stop_and_purge_are_job_deregistered_and_volumes_have_their_events() {
    let ds = devstack(Duration::from_secs(30)).await;
    let mut stream = Lines::open(&ds, "?topic=Job&topic=CSIVolume").await;
    register(&ds, "web").await;
    stream.event("Job", "JobRegistered").await;
    let (status, _) = send(&ds, "DELETE", "/v1/job/web", None).await;
    assert_eq!(status, 200);
    let (_, stopped) = stream.event("Job", "JobDeregistered").await;
    assert_eq!(stopped["Payload"]["Job"]["Stop"], json!(true));
    let (status, _) = send(&ds, "DELETE", "/v1/job/web?purge=true", None).await;
    assert_eq!(status, 200);
    let (_, purged) = stream.event("Job", "JobDeregistered").await;
    assert_eq!(purged["Key"], "web");

    let (status, body) = send(
        &ds,
        "POST",
        "/_devstack/nomad/csi/plugin",
        Some(json!({"id": "gluster", "controller": true, "healthy": true})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let volume = json!({"Volumes": [{"ID": "data", "Name": "data", "PluginID": "gluster",
        "ExternalID": "vol-1",
        "RequestedCapabilities": [{"AccessMode": "single-node-writer",
            "AttachmentMode": "file-system"}]}]});
    let (status, body) = send(&ds, "PUT", "/v1/volume/csi/data", Some(volume)).await;
    assert_eq!(status, 200, "{body}");
    let (_, registered) = stream.event("CSIVolume", "CSIVolumeRegistered").await;
    assert_eq!(registered["Payload"]["Volume"]["ID"], "data");
    let (status, body) = send(&ds, "DELETE", "/v1/volume/csi/data", None).await;
    assert_eq!(status, 200, "{body}");
    let (_, gone) = stream.event("CSIVolume", "CSIVolumeDeregistered").await;
    assert_eq!(gone["Key"], "data");
    ds.shutdown().await;
}

#[tokio::test]
async fn heartbeats_are_empty_objects_on_their_own_lines() {
    let ds = devstack(Duration::from_millis(50)).await;
    let mut stream = Lines::open(&ds, "?topic=Job").await;
    assert_eq!(stream.next().await, Some(json!({})));
    assert_eq!(stream.next().await, Some(json!({})));
    ds.shutdown().await;
}

#[tokio::test]
async fn namespace_filters_events_and_star_sees_every_namespace() {
    let ds = devstack(Duration::from_secs(30)).await;
    let (status, body) = send(
        &ds,
        "PUT",
        "/v1/namespace/team",
        Some(json!({"Name": "team"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut default_only = Lines::open(&ds, "?topic=Job").await;
    let mut all = Lines::open(&ds, "?topic=Job&namespace=*").await;
    let (status, body) = send(
        &ds,
        "PUT",
        "/v1/jobs?namespace=team",
        Some(json!({"Job": job("web")})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    register(&ds, "api").await;
    let (_, first) = all.event("Job", "JobRegistered").await;
    assert_eq!(first["Namespace"], "team");
    let (_, only) = default_only.event("Job", "JobRegistered").await;
    assert_eq!(
        (only["Key"].clone(), only["Namespace"].clone()),
        (json!("api"), json!("default"))
    );
    ds.shutdown().await;
}

#[tokio::test]
async fn bad_topic_and_index_are_400_with_nomads_texts() {
    let ds = devstack(Duration::from_secs(30)).await;
    let (status, body) = send(&ds, "GET", "/v1/event/stream?topic=Job:a:b", None).await;
    assert_eq!(status, 400);
    assert!(body.starts_with("Invalid topic query: "), "{body}");
    let (status, body) = send(&ds, "GET", "/v1/event/stream?index=x", None).await;
    assert_eq!(status, 400);
    assert!(body.starts_with("Unable to parse index: "), "{body}");
    ds.shutdown().await;
}

#[tokio::test]
async fn the_stream_honours_injected_faults() {
    let ds = devstack(Duration::from_secs(30)).await;
    for (kind, status) in [("error", 500), ("forbidden", 403)] {
        let (s, body) = send(
            &ds,
            "POST",
            "/_devstack/faults",
            Some(
                json!({"system": "nomad", "path": "/v1/event/stream", "kind": kind,
                "count": 1}),
            ),
        )
        .await;
        assert_eq!(s, 200, "{body}");
        let (s, _) = send(&ds, "GET", "/v1/event/stream?topic=Job", None).await;
        assert_eq!(s, status, "{kind}");
    }
    // Spent faults: the stream opens again.
    Lines::open(&ds, "?topic=Job").await;
    ds.shutdown().await;
}
