//! Following Nomad's event stream: one list of jobs and volumes, then `GET /v1/event/stream`
//! from the list's index, so a change costs one event line, not a re-list of every job.
//!
//! The follower is the only writer of jobs and volumes. When the stream is unavailable (an old
//! or proxied Nomad, 403/404/5xx, a stream that ends at once) it falls back to the paced
//! blocking lists for a while (one list of each kind in flight, starting from the cache's
//! index) and tries the stream again with exponential backoff. A stream that ends after
//! working, or jumps backwards, is resynced with one list.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio_util::sync::CancellationToken;

use super::pacing::{ListPacer, watch_loop_from};
use super::{BLOCKING_WAIT, Key, LiveSnapshot, LiveStore, csi_volume, nomad_job};
use crate::providers::nomad::types::EventBatch;
use crate::providers::nomad::{EventStream, NomadClient, QueryOptions};

/// The topics the cache needs (CSIPlugin: a plugin's health changes volumes' schedulability).
const TOPICS: &[&str] = &["Job", "Allocation", "Deployment", "CSIVolume", "CSIPlugin"];
/// Nomad heartbeats every 30 s; a stream silent for this long is dead.
const STREAM_IDLE: Duration = Duration::from_secs(75);
/// A stream that ends sooner than this did not work: fall back to lists and back off.
const STREAM_HEALTHY_AFTER: Duration = Duration::from_secs(5);

fn retry_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(120))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Keep jobs and volumes in `store` current until `shutdown`.
pub(super) async fn follow(store: LiveStore, nomad: NomadClient, shutdown: CancellationToken) {
    let mut retry = retry_backoff();
    let mut need_list = true;
    // Kept across fallbacks, so their lists stay within one rate cap.
    let now = tokio::time::Instant::now();
    let mut pacers = (ListPacer::new(now), ListPacer::new(now));
    let mut sessions = 0_u64;
    loop {
        // The stream only brings changes: a cache that never completed a list (the first list
        // and the fallback's all failed) must list before following it, or it never becomes
        // ready (the soak found a drover restarted under a 403 that followed the stream from
        // index 0 and stayed "waiting for live state").
        let listed = {
            let s = store.snapshot();
            s.jobs_ready && s.volumes_ready
        };
        if need_list || !listed {
            let listed = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = store.load_once(&nomad) => r,
            };
            if let Err(error) = listed {
                store.update(|s| s.last_error = Some(error.to_string()));
                let delay = retry.next().unwrap_or(Duration::from_secs(120));
                tracing::warn!(%error, retry_in = ?delay, "listing jobs and volumes failed");
                fall_back(&store, &nomad, &shutdown, delay, &mut pacers).await;
                need_list = false;
                continue;
            }
        }
        let from = stream_index(&store.snapshot());
        let opened = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = nomad.event_stream(TOPICS, from, STREAM_IDLE) => r,
        };
        let started = tokio::time::Instant::now();
        let why = match opened {
            Ok(stream) => {
                // Health reads taken while this session lasts may be reused until one of its
                // events says they moved (see `job_activity`); a new session voids them.
                sessions += 1;
                let session = sessions;
                store.update_quiet(|s| s.stream_session = session);
                let why = read_stream(&store, &nomad, stream, &shutdown).await;
                store.update_quiet(|s| s.stream_session = 0);
                match why {
                    None => return,
                    Some(why) => why,
                }
            }
            Err(error) => error.to_string(),
        };
        if started.elapsed() >= STREAM_HEALTHY_AFTER {
            tracing::info!(reason = %why, "nomad event stream ended; re-listing");
            retry = retry_backoff();
            need_list = true;
            continue;
        }
        let delay = retry.next().unwrap_or(Duration::from_secs(120));
        tracing::warn!(reason = %why, retry_in = ?delay, "nomad event stream unavailable; watching with blocking lists");
        fall_back(&store, &nomad, &shutdown, delay, &mut pacers).await;
        need_list = false;
    }
}

/// The index the cache is complete up to (0: never listed).
fn stream_index(s: &LiveSnapshot) -> u64 {
    if s.jobs_ready && s.volumes_ready {
        s.jobs_index.min(s.volumes_index)
    } else {
        0
    }
}

/// Apply the stream's batches until it ends; `None` on shutdown, else why it ended.
async fn read_stream(
    store: &LiveStore,
    nomad: &NomadClient,
    mut stream: EventStream,
    shutdown: &CancellationToken,
) -> Option<String> {
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return None,
            r = stream.next_batch() => r,
        };
        let batch = match next {
            Ok(Some(batch)) if batch.index == 0 => continue,
            Ok(Some(batch)) => batch,
            Ok(None) => return Some("the server ended the stream".into()),
            Err(error) => return Some(error.to_string()),
        };
        if batch.index <= stream_index(&store.snapshot()) {
            return Some(format!("the stream jumped back to index {}", batch.index));
        }
        let mut to_read = Vec::new();
        store.update_keys(|s, touched| fold_batch(s, &batch, &mut to_read, touched));
        // A deregistration is a stop or a purge; only the server knows which (one read).
        for (namespace, id) in to_read {
            let stub = tokio::select! {
                _ = shutdown.cancelled() => return None,
                r = nomad.job_stub(&namespace, &id) => r,
            };
            match stub {
                Ok(stub) => store.update_keys(|s, touched| {
                    let key = (namespace.clone(), id.clone());
                    touched.push(key.clone());
                    match stub {
                        Some(stub) => {
                            s.jobs.insert(key, stub);
                            true
                        }
                        None => s.jobs.remove(&key).is_some(),
                    }
                }),
                Err(error) => return Some(error.to_string()),
            }
        }
    }
}

/// Fold one batch into the snapshot; returns whether anything changed. Jobs whose
/// deregistration needs a read are pushed to `to_read`, the jobs and volumes it changed to
/// `touched`.
pub(super) fn fold_batch(
    s: &mut LiveSnapshot,
    batch: &EventBatch,
    to_read: &mut Vec<Key>,
    touched: &mut Vec<Key>,
) -> bool {
    let mut changed = false;
    for event in &batch.events {
        let key = (namespace_or_default(&event.namespace), event.key.clone());
        match event.topic.as_str() {
            "Job" if event.index > s.jobs_index => {
                if event.kind == "JobDeregistered" {
                    to_read.push(key);
                    continue;
                }
                let Some(mut stub) = event.payload.job.clone() else {
                    continue;
                };
                let key = (namespace_or_default(&stub.namespace), stub.id.clone());
                let old = s.jobs.get(&key);
                // The event carries the job, not its summary: keep the last listed counts.
                if stub.summary.is_none() {
                    stub.summary = old.and_then(|o| o.summary.clone());
                }
                if old != Some(&stub) {
                    touched.push(key.clone());
                    s.jobs.insert(key, stub);
                    changed = true;
                }
            }
            "CSIVolume" if event.index > s.volumes_index => {
                if event.kind == "CSIVolumeDeregistered" {
                    if s.volumes.remove(&key).is_some() {
                        touched.push(key);
                        changed = true;
                    }
                } else if let Some(volume) = &event.payload.volume {
                    let key = (namespace_or_default(&volume.namespace), volume.id.clone());
                    if s.volumes.get(&key) != Some(volume) {
                        touched.push(key.clone());
                        s.volumes.insert(key, volume.clone());
                        changed = true;
                    }
                }
            }
            "Allocation" | "Deployment" => {
                let owner = event
                    .payload
                    .allocation
                    .as_ref()
                    .or(event.payload.deployment.as_ref());
                if let Some(owner) = owner {
                    let key = (namespace_or_default(&owner.namespace), owner.job_id.clone());
                    touched.push(key.clone());
                    let mut activity = s.job_activity.get(&key).copied().unwrap_or_default();
                    if event.topic == "Allocation" {
                        activity.allocations = event.index;
                    } else {
                        activity.deployments = event.index;
                    }
                    s.job_activity.insert(key, activity);
                    changed = true;
                }
            }
            _ => {}
        }
    }
    s.jobs_index = s.jobs_index.max(batch.index);
    s.volumes_index = s.volumes_index.max(batch.index);
    changed
}

fn namespace_or_default(namespace: &str) -> String {
    if namespace.is_empty() {
        "default".to_string()
    } else {
        namespace.to_string()
    }
}

/// Watch with paced blocking lists (from the cache's indexes) for `duration`.
async fn fall_back(
    store: &LiveStore,
    nomad: &NomadClient,
    shutdown: &CancellationToken,
    duration: Duration,
    (jobs_pacer, volumes_pacer): &mut (ListPacer, ListPacer),
) {
    let phase = shutdown.child_token();
    let snapshot = store.snapshot();
    let jobs_from = if snapshot.jobs_ready {
        snapshot.jobs_index
    } else {
        0
    };
    let volumes_from = if snapshot.volumes_ready {
        snapshot.volumes_index
    } else {
        0
    };
    let jobs = {
        let (store, nomad, phase) = (store.clone(), nomad.clone(), phase.clone());
        watch_loop_from("jobs", phase, jobs_from, jobs_pacer, move |index| {
            let list = nomad_job::list(nomad.clone(), blocking(index));
            let store = store.clone();
            async move {
                let answer = list.await;
                store.apply_list(answer.map(|l| (l.index, l.value)), nomad_job::fold)
            }
        })
    };
    let volumes = {
        let (store, nomad, phase) = (store.clone(), nomad.clone(), phase.clone());
        watch_loop_from(
            "csi volumes",
            phase,
            volumes_from,
            volumes_pacer,
            move |index| {
                let list = csi_volume::list(nomad.clone(), blocking(index));
                let store = store.clone();
                async move {
                    let answer = list.await;
                    store.apply_list(answer.map(|l| (l.index, l.value)), csi_volume::fold)
                }
            },
        )
    };
    let timer = async {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(duration) => {}
        }
        phase.cancel();
    };
    tokio::join!(jobs, volumes, timer);
}

fn blocking(index: u64) -> QueryOptions {
    QueryOptions {
        index,
        wait: Some(BLOCKING_WAIT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(json: serde_json::Value) -> EventBatch {
        serde_json::from_value(json).unwrap_or_else(|e| panic!("batch: {e}"))
    }

    #[test]
    fn a_job_event_replaces_the_stub_keeps_its_counts_and_moves_the_index() {
        let mut s = LiveSnapshot {
            jobs_index: 10,
            volumes_index: 10,
            ..LiveSnapshot::default()
        };
        let mut to_read = Vec::new();
        let mut touched = Vec::new();
        let registered = batch(serde_json::json!({"Index": 12, "Events": [{"Topic": "Job",
            "Type": "JobRegistered", "Key": "web", "Namespace": "default", "Index": 12,
            "Payload": {"Job": {"ID": "web", "Namespace": "default", "Type": "service",
                "Status": "pending", "ModifyIndex": 12, "JobModifyIndex": 12, "CreateIndex": 12,
                "Meta": {"drover.app": "web"}, "TaskGroups": []}}}]}));
        assert!(fold_batch(&mut s, &registered, &mut to_read, &mut touched));
        assert_eq!(
            touched,
            vec![("default".to_string(), "web".to_string())],
            "the registered job wakes its app"
        );
        touched.clear();
        let stub = s.job("default", "web").cloned();
        assert_eq!(stub.as_ref().map(|j| j.job_modify_index), Some(12));
        assert_eq!(
            stub.and_then(|j| j.meta)
                .and_then(|m| m.get("drover.app").cloned()),
            Some("web".to_string())
        );
        assert_eq!((s.jobs_index, s.volumes_index), (12, 12));
        assert!(
            !fold_batch(&mut s, &registered, &mut to_read, &mut touched),
            "an event at or below the cache's index is already in it"
        );
        assert!(touched.is_empty(), "nothing to wake for an old event");
        let gone = batch(serde_json::json!({"Index": 13, "Events": [{"Topic": "Job",
            "Type": "JobDeregistered", "Key": "web", "Namespace": "default", "Index": 13,
            "Payload": {"Job": {"ID": "web"}}}]}));
        fold_batch(&mut s, &gone, &mut to_read, &mut touched);
        assert_eq!(to_read, vec![("default".to_string(), "web".to_string())]);
        let alloc = batch(
            serde_json::json!({"Index": 14, "Events": [{"Topic": "Allocation",
            "Type": "AllocationUpdated", "Key": "a1", "Namespace": "default", "Index": 14,
            "Payload": {"Allocation": {"ID": "a1", "JobID": "web", "Namespace": "default"}}}]}),
        );
        assert!(fold_batch(&mut s, &alloc, &mut to_read, &mut touched));
        assert_eq!(s.job_activity("default", "web").allocations, 14);
        assert_eq!(s.job_activity("default", "web").deployments, 0);
        assert_eq!(
            touched,
            vec![("default".to_string(), "web".to_string())],
            "an allocation wakes its job's app"
        );
    }
}
