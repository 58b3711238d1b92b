//! `GET /v1/event/stream` (api-facts §1.9): every write of the Nomad state emits events into a
//! bounded buffer; a stream replays the buffer from `?index` and then follows it as NDJSON, one
//! `{"Index":N,"Events":[…]}` line per index, with `{}` heartbeat lines in between.
//!
//! Events are derived, not hand-placed: [`StateGuard`](super::StateGuard) calls [`collect`] when a
//! lock that took indexes is released, and every object whose `ModifyIndex` falls in those
//! indexes becomes an event. Only removals, which leave nothing to find, are pushed by hand
//! ([`Inner::push_removed`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::super::DevState;
use super::http::{ApiError, ApiResult, Req, list_namespaces, ns_ok};
use super::{Inner, csi, misc};

/// One event, as Nomad's `structs.Event`.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub topic: &'static str,
    pub kind: &'static str,
    pub key: String,
    pub namespace: String,
    pub filter_keys: Option<Vec<String>>,
    pub index: u64,
    pub payload: Value,
}

impl Event {
    /// An event about `payload`, keyed as Nomad keys that topic's events.
    fn about(topic: &'static str, kind: &'static str, index: u64, payload: Value) -> Event {
        let (key, namespace, filter_keys) = identity(topic, &payload);
        Event {
            topic,
            kind,
            key,
            namespace,
            filter_keys,
            index,
            payload,
        }
    }

    fn json(&self) -> Value {
        json!({"Topic": self.topic, "Type": self.kind, "Key": self.key,
            "Namespace": self.namespace, "FilterKeys": self.filter_keys, "Index": self.index,
            "Payload": self.payload})
    }

    /// Whether a subscription to `topics` (topic → keys, `*` wildcards) wants this event.
    fn wanted(&self, topics: &BTreeMap<String, Vec<String>>) -> bool {
        [self.topic, "*"].iter().any(|t| {
            topics.get(*t).is_some_and(|keys| {
                keys.iter().any(|k| {
                    k == "*" || *k == self.key || self.filter_keys.iter().flatten().any(|f| f == k)
                })
            })
        })
    }
}

/// The bounded event buffer: one batch per index, oldest first.
#[derive(Debug, Default)]
pub(crate) struct EventBuffer {
    batches: VecDeque<(u64, Vec<Event>)>,
    /// The highest index dropped from the front (a follower behind it has lost events).
    dropped_through: u64,
    /// Removals pushed during the current lock, emitted with the rest on release.
    pending: Vec<Event>,
    /// The type the next job upserts are reported with (`JobDeregistered` for a stop).
    pub job_type_hint: Option<&'static str>,
    /// Objects examined to derive events, ever (tests check it follows the writes, not the state).
    pub examined: u64,
}

impl EventBuffer {
    fn push(&mut self, mut events: Vec<Event>, capacity: usize) {
        events.sort_by_key(|e| e.index);
        for event in events {
            match self.batches.back_mut() {
                Some((index, batch)) if *index == event.index => batch.push(event),
                _ => self.batches.push_back((event.index, vec![event])),
            }
        }
        while self.batches.len() > capacity.max(1) {
            if let Some((index, _)) = self.batches.pop_front() {
                self.dropped_through = index;
            }
        }
    }

    /// Batches after `after`, and whether events after `after` were already dropped.
    fn since(&self, after: u64) -> (Vec<(u64, Vec<Event>)>, bool) {
        let lost = self.dropped_through > after;
        let out = self
            .batches
            .iter()
            .filter(|(index, _)| *index > after)
            .cloned()
            .collect();
        (out, lost)
    }
}

impl Inner {
    /// Record the removal of an object (its last state as payload) at `index`.
    pub(crate) fn push_removed(
        &mut self,
        topic: &'static str,
        kind: &'static str,
        index: u64,
        payload: Value,
    ) {
        self.events
            .pending
            .push(Event::about(topic, kind, index, payload));
    }
}

/// Key, namespace and filter keys of a payload, as Nomad sets them per topic.
fn identity(topic: &str, payload: &Value) -> (String, String, Option<Vec<String>>) {
    let inner = match topic {
        "Job" => &payload["Job"],
        "Allocation" => &payload["Allocation"],
        "Deployment" => &payload["Deployment"],
        "CSIVolume" => &payload["Volume"],
        _ => payload,
    };
    let text = |k: &str| inner[k].as_str().unwrap_or_default().to_string();
    let filter = match topic {
        "Allocation" => Some(vec![text("JobID"), text("DeploymentID")]),
        "Deployment" => Some(vec![text("JobID")]),
        _ => None,
    };
    (text("ID"), text("Namespace"), filter)
}

/// Emit the events of the indexes `(from, to]`: every job, allocation, deployment and volume
/// modified there, plus the removals pushed meanwhile.
pub(crate) fn collect(inner: &mut Inner, from: u64, to: u64, capacity: usize) {
    let in_range = |i: u64| i > from && i <= to;
    let mut out = std::mem::take(&mut inner.events.pending);
    let job_kind = inner.events.job_type_hint.take().unwrap_or("JobRegistered");
    let mut add = |topic: &'static str, kind: &'static str, index: u64, payload: Value| {
        out.push(Event::about(topic, kind, index, payload));
    };
    // Only the objects written under this lock are examined (O(changed), not O(state)).
    let jobs = inner.jobs.take_touched();
    let allocs = inner.allocs.take_touched();
    let deployments = inner.deployments.take_touched();
    let volumes = inner.volumes.take_touched();
    inner.events.examined += (jobs.len() + allocs.len() + deployments.len() + volumes.len()) as u64;
    for entry in jobs.iter().filter_map(|k| inner.jobs.get(k)) {
        let index = entry.job["ModifyIndex"].as_u64().unwrap_or(0);
        if in_range(index) {
            add("Job", job_kind, index, json!({"Job": entry.job}));
        }
    }
    for a in allocs.iter().filter_map(|k| inner.allocs.get(k)) {
        if in_range(a.modify_index) {
            // Created within these indexes (perhaps updated again before the lock was released).
            let kind = if in_range(a.create_index) {
                "AllocationCreated"
            } else {
                "AllocationUpdated"
            };
            let mut stub = misc::alloc_stub(a);
            stub["DeploymentID"] = json!(a.deployment_id);
            add(
                "Allocation",
                kind,
                a.modify_index,
                json!({"Allocation": stub}),
            );
        }
    }
    for d in deployments.iter().filter_map(|k| inner.deployments.get(k)) {
        if in_range(d.modify_index) {
            add(
                "Deployment",
                "DeploymentStatusUpdate",
                d.modify_index,
                json!({"Deployment": misc::deployment_json(d)}),
            );
        }
    }
    for v in volumes.iter().filter_map(|k| inner.volumes.get(k)) {
        if in_range(v.modify_index) {
            add(
                "CSIVolume",
                "CSIVolumeRegistered",
                v.modify_index,
                json!({"Volume": csi::volume_event_json(inner, v)}),
            );
        }
    }
    if !out.is_empty() {
        inner.events.push(out, capacity);
    }
}

/// `topic=T[:key]` parameters (none: every topic), or 400 `Invalid topic query: …`.
fn topics(req: &Req) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    let raw: Vec<&str> = req
        .query
        .iter()
        .filter(|(k, _)| k == "topic")
        .map(|(_, v)| v.as_str())
        .collect();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if raw.is_empty() {
        out.insert("*".into(), vec!["*".into()]);
        return Ok(out);
    }
    for topic in raw {
        let parts: Vec<&str> = topic.split(':').collect();
        let (name, key) = match parts.as_slice() {
            [name] => (*name, "*"),
            [name, key] => (*name, *key),
            _ => {
                return Err(ApiError::bad(format!(
                    "Invalid topic query: error parsing topics: Invalid key value pair for \
                     topic: {topic}"
                )));
            }
        };
        out.entry(name.to_string())
            .or_default()
            .push(key.to_string());
    }
    Ok(out)
}

/// `?index=` (400 `Unable to parse index: …` with Go's `strconv.ParseUint` text).
fn start_index(req: &Req) -> Result<u64, ApiError> {
    match req.q("index") {
        None | Some("") => Ok(0),
        Some(i) => i.parse::<u64>().map_err(|_| {
            ApiError::bad(format!(
                "Unable to parse index: strconv.ParseUint: parsing {i:?}: invalid syntax"
            ))
        }),
    }
}

/// `GET /v1/event/stream`.
pub(crate) async fn stream(st: &Arc<DevState>, req: &Req) -> ApiResult {
    let topics = topics(req)?;
    let index = start_index(req)?;
    let namespaces = list_namespaces(st, req, "read-job")?;
    let all_namespaces = req.namespace() == "*";
    let namespace = req.namespace();
    // Index 0 follows from now; N replays the buffer after N (best effort, as Nomad does).
    let after = if index == 0 {
        st.nomad.clock.current()
    } else {
        index
    };
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let state = Arc::clone(st);
    let heartbeat = st.config.event_heartbeat;
    tokio::spawn(async move {
        let wanted = |e: &Event| {
            e.wanted(&topics)
                && (e.namespace.is_empty()
                    || (if all_namespaces {
                        ns_ok(&namespaces, &e.namespace)
                    } else {
                        e.namespace == namespace
                    }))
        };
        follow(&state, after, heartbeat, tx, wanted).await;
    });
    let body = Body::from_stream(tokio_stream_of(rx));
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// An mpsc receiver as a body stream of `Result<Bytes, Infallible>`.
fn tokio_stream_of(
    rx: mpsc::Receiver<Bytes>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| (Ok(line), rx))
    })
}

/// Send every wanted batch after `after` as it appears, `{}` every `heartbeat`; ends when the
/// client goes away, the devstack shuts down, or the follower fell behind the buffer.
async fn follow(
    st: &DevState,
    mut after: u64,
    heartbeat: Duration,
    tx: mpsc::Sender<Bytes>,
    wanted: impl Fn(&Event) -> bool,
) {
    let mut changed = st.nomad.clock.subscribe();
    // A reset is a new cluster: its streams end, as a restarted Nomad's connections do.
    let generation = st.nomad.generation();
    let mut replay = true;
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    loop {
        if st.nomad.generation() != generation {
            return;
        }
        let (batches, lost) = st.nomad.lock().events.since(after);
        if lost && !replay {
            // Nomad closes a subscription that fell behind its buffer; the client re-lists.
            return;
        }
        replay = false;
        for (index, events) in batches {
            after = index;
            let events: Vec<Value> = events
                .iter()
                .filter(|e| wanted(e))
                .map(Event::json)
                .collect();
            if events.is_empty() {
                continue;
            }
            let mut line =
                serde_json::to_vec(&json!({"Index": index, "Events": events})).unwrap_or_default();
            line.push(b'\n');
            if tx.send(Bytes::from(line)).await.is_err() {
                return;
            }
        }
        tokio::select! {
            c = changed.changed() => if c.is_err() { return },
            _ = beat.tick() => {
                if tx.send(Bytes::from_static(b"{}\n")).await.is_err() {
                    return;
                }
            }
            _ = tx.closed() => return,
            _ = st.shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(index: u64, topic: &'static str, key: &str, filter: Option<&str>) -> Event {
        Event {
            topic,
            kind: "X",
            key: key.to_string(),
            namespace: "default".to_string(),
            filter_keys: filter.map(|f| vec![f.to_string()]),
            index,
            payload: Value::Null,
        }
    }

    #[test]
    fn the_buffer_keeps_the_newest_batches_and_says_when_a_follower_lost_some() {
        let mut buffer = EventBuffer::default();
        buffer.push((1..=5).map(|i| event(i, "Job", "web", None)).collect(), 3);
        let (kept, lost) = buffer.since(0);
        assert_eq!(kept.iter().map(|b| b.0).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert!(lost, "indexes 1 and 2 were dropped");
        let (kept, lost) = buffer.since(2);
        assert_eq!(kept.len(), 3);
        assert!(!lost, "nothing after 2 was dropped");
        // Two events of one index are one batch.
        buffer.push(
            vec![event(6, "Job", "a", None), event(6, "Job", "b", None)],
            3,
        );
        let (kept, _) = buffer.since(5);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].1.len(), 2);
    }

    #[test]
    fn a_topic_key_matches_the_key_or_a_filter_key_and_star_matches_all() {
        let mut topics = BTreeMap::new();
        topics.insert("Allocation".to_string(), vec!["web".to_string()]);
        assert!(event(1, "Allocation", "a1", Some("web")).wanted(&topics));
        assert!(!event(1, "Allocation", "a1", Some("api")).wanted(&topics));
        assert!(!event(1, "Job", "web", None).wanted(&topics));
        topics.insert("*".to_string(), vec!["*".to_string()]);
        assert!(event(1, "Job", "web", None).wanted(&topics));
    }

    /// A write to one job of 1,000 examines that job only, not the whole state.
    #[test]
    fn a_write_examines_only_the_objects_it_touched() {
        let nomad = super::super::NomadState::new(&crate::DevstackConfig::default());
        {
            let mut inner = nomad.lock();
            let index = nomad.write(&mut inner, &["jobs"]);
            for i in 0..1000 {
                let id = format!("app-{i}");
                let job = json!({"ID": id, "Namespace": "default", "ModifyIndex": index});
                inner.jobs.insert(
                    ("default".to_string(), id),
                    super::super::JobEntry {
                        job,
                        versions: Vec::new(),
                        submissions: BTreeMap::new(),
                        summary_index: index,
                        summary_create: index,
                    },
                );
            }
        }
        let examined_before = nomad.lock().events.examined;
        assert_eq!(examined_before, 1000, "the registration touched 1,000 jobs");
        let written = {
            let mut inner = nomad.lock();
            let index = nomad.write(&mut inner, &["jobs"]);
            let key = ("default".to_string(), "app-7".to_string());
            if let Some(entry) = inner.jobs.get_mut(&key) {
                entry.job["ModifyIndex"] = json!(index);
            }
            index
        };
        let inner = nomad.lock();
        assert_eq!(inner.events.examined - examined_before, 1);
        let (batches, _) = inner.events.since(written - 1);
        let keys: Vec<&str> = batches
            .iter()
            .flat_map(|(_, events)| events.iter().map(|e| e.key.as_str()))
            .collect();
        assert_eq!(keys, vec!["app-7"]);
    }
}
