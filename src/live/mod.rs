//! LiveStore: background watchers hold one blocking list per kind and fill a cache of live state;
//! planning reads only the cache. Nothing plans or prunes before the first full list (`ready`).
//! Each watched kind has its own file (`nomad_job.rs`, `csi_volume.rs`: its list and how it
//! folds into the snapshot); `pacing.rs` paces the blocking lists.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

mod bucket;
mod consul_config_entry;
mod csi_volume;
mod event_stream;
mod nomad_job;
pub(crate) mod pacing;

use crate::providers::consul::{ConfigEntry, ConsulClient};
use crate::providers::nomad::types::{CsiVolumeStub, JobListStub};
use crate::providers::nomad::{NomadClient, NomadError, QueryOptions};
use crate::providers::s3::{BucketSettings, S3Client, S3Error, Wanted};
use pacing::watch_loop;

/// `(namespace, id)`.
pub type Key = (String, String);

/// The snapshot's maps: cloning one shares its nodes, so each event or bucket read makes a new
/// snapshot in O(log N) instead of copying every job, entry and bucket (at 1,000 apps that copy
/// was most of drover's CPU time during a first sync).
pub type PersistentMap<K, V> = imbl::HashMap<K, V>;

/// What the watchers last saw.
#[derive(Debug, Clone, Default)]
pub struct LiveSnapshot {
    /// Jobs in every namespace.
    pub jobs: PersistentMap<Key, JobListStub>,
    /// CSI volumes in every namespace.
    pub volumes: PersistentMap<Key, CsiVolumeStub>,
    /// The jobs list has completed once.
    pub jobs_ready: bool,
    /// The volumes list has completed once.
    pub volumes_ready: bool,
    /// The index jobs are known up to (the last list's `X-Nomad-Index`, or the last event's).
    pub jobs_index: u64,
    /// The index volumes are known up to.
    pub volumes_index: u64,
    /// Per job, the index of the last allocation and of the last deployment event (the event
    /// stream carries no job summary: this tells a reconcile which of its health reads moved).
    pub job_activity: PersistentMap<Key, JobActivity>,
    /// The event stream being followed: a new number each time one opens, 0 while none is (the
    /// cache is then fed by lists, and `job_activity` does not move).
    pub stream_session: u64,
    /// Consul config entries by `(kind, name)`, for the kinds in use.
    pub config_entries: PersistentMap<Key, ConfigEntry>,
    /// Config-entry kinds some app declares (each gets a watcher when Consul is configured).
    pub config_kinds_wanted: BTreeSet<String>,
    /// Config-entry kinds whose list has completed once.
    pub config_kinds_ready: BTreeSet<String>,
    /// `X-Consul-Index` of each kind's last list.
    pub config_kinds_index: BTreeMap<String, u64>,
    /// Config entries this process wrote, with the `ModifyIndex` the write made and when, until
    /// a list of their kind has seen the write (see [`Self::config_unlisted_write`]).
    pub config_written: PersistentMap<Key, (u64, std::time::Instant)>,
    /// A Consul client is configured (`CONSUL_HTTP_ADDR`, or the devstack's).
    pub consul_configured: bool,
    /// Buckets by name as last read: `None` inside when the bucket does not exist. A bucket not
    /// in the map was never read.
    pub buckets: PersistentMap<String, Option<BucketSettings>>,
    /// An S3 client is configured (`AWS_ENDPOINT_URL` and friends, or the demo's server).
    pub s3_configured: bool,
    /// The last watcher error, cleared by the next success.
    pub last_error: Option<String>,
}

impl LiveSnapshot {
    /// Both lists have completed once: planning (and above all pruning) may start.
    pub fn ready(&self) -> bool {
        self.jobs_ready
            && self.volumes_ready
            && (!self.consul_configured
                || self.config_kinds_wanted.is_subset(&self.config_kinds_ready))
    }

    /// A config entry, if its kind is watched and it exists.
    pub fn config_entry(&self, kind: &str, name: &str) -> Option<&ConfigEntry> {
        self.config_entries
            .get(&(kind.to_string(), name.to_string()))
    }

    /// The Consul index of the last list of `kind` (0: never listed).
    pub fn config_kind_index(&self, kind: &str) -> u64 {
        self.config_kinds_index.get(kind).copied().unwrap_or(0)
    }

    /// The `ModifyIndex` of this process's write of the entry when the last list of its kind
    /// was taken before that write, and the write is less than [`READ_YOUR_WRITES`] old (a
    /// write no list ever shows, as after Consul's indexes restarted, is not believed forever).
    pub fn config_unlisted_write(&self, kind: &str, name: &str) -> Option<u64> {
        let (index, at) = self
            .config_written
            .get(&(kind.to_string(), name.to_string()))?;
        (self.config_kind_index(kind) < *index && at.elapsed() < READ_YOUR_WRITES).then_some(*index)
    }

    /// A bucket as last read: `Some(None)` when it does not exist, `None` when never read.
    pub fn bucket(&self, name: &str) -> Option<Option<&BucketSettings>> {
        self.buckets.get(name).map(Option::as_ref)
    }

    /// A job's stub.
    pub fn job(&self, namespace: &str, id: &str) -> Option<&JobListStub> {
        self.jobs.get(&(namespace.to_string(), id.to_string()))
    }

    /// The indexes of the job's last allocation and deployment events (0: none seen).
    pub fn job_activity(&self, namespace: &str, id: &str) -> JobActivity {
        self.job_activity
            .get(&(namespace.to_string(), id.to_string()))
            .copied()
            .unwrap_or_default()
    }

    /// A volume's stub.
    pub fn volume(&self, namespace: &str, id: &str) -> Option<&CsiVolumeStub> {
        self.volumes.get(&(namespace.to_string(), id.to_string()))
    }
}

/// The index of a job's last event of each topic that moves its health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobActivity {
    /// The last `Allocation` event of one of the job's allocations.
    pub allocations: u64,
    /// The last `Deployment` event of one of the job's deployments.
    pub deployments: u64,
}

/// How long drover trusts its own write of a config entry over lists that have not seen it.
pub const READ_YOUR_WRITES: Duration = Duration::from_secs(60);

/// The cache of live state, shared by every app's reconcile.
#[derive(Clone)]
pub struct LiveStore {
    snapshot: Arc<RwLock<Arc<LiveSnapshot>>>,
    changed: watch::Sender<u64>,
    consul: Arc<Mutex<Option<ConsulWatch>>>,
    /// When each bucket was last read, and with which settings: S3 has no watch, so a read is
    /// reused until it is a resync interval old or drover writes the bucket.
    bucket_reads: Arc<Mutex<HashMap<String, (Wanted, tokio::time::Instant)>>>,
    /// What changed since the controller last took it ([`take_touched`](Self::take_touched)).
    touched: Arc<Mutex<Touched>>,
}

/// The live objects that changed since the controller last looked, so it wakes only the apps
/// that declare them (at 1,000 apps, waking every app on every event was O(N) per event).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Touched {
    /// Something not tied to one job or volume changed (a list, readiness, an error): wake all.
    pub all: bool,
    /// Jobs and volumes by `(namespace, id)` whose stub or activity changed.
    pub keys: HashSet<Key>,
}

/// Touched keys kept before they collapse into `all` (nobody is taking them, or a burst).
const TOUCHED_KEYS_MAX: usize = 10_000;

impl Touched {
    fn add(&mut self, keys: impl IntoIterator<Item = Key>) {
        if self.all {
            return;
        }
        self.keys.extend(keys);
        if self.keys.len() > TOUCHED_KEYS_MAX {
            self.all = true;
            self.keys = HashSet::new();
        }
    }
}

/// What a config-entry watcher needs: the client and when to stop.
#[derive(Clone)]
struct ConsulWatch {
    client: ConsulClient,
    shutdown: CancellationToken,
}

impl Default for LiveStore {
    fn default() -> Self {
        LiveStore {
            snapshot: Arc::new(RwLock::new(Arc::new(LiveSnapshot::default()))),
            changed: watch::Sender::new(0),
            consul: Arc::default(),
            bucket_reads: Arc::default(),
            touched: Arc::default(),
        }
    }
}

/// How long a watcher's blocking query waits (Nomad caps it at 5 minutes).
const BLOCKING_WAIT: Duration = Duration::from_secs(300);

impl LiveStore {
    /// The current snapshot (cheap: an `Arc`).
    pub fn snapshot(&self) -> Arc<LiveSnapshot> {
        match self.snapshot.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A receiver that changes whenever the snapshot changes (drift wakes reconciles).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn update(&self, f: impl FnOnce(&mut LiveSnapshot)) {
        let mut guard = match self.snapshot.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = (**guard).clone();
        f(&mut next);
        *guard = Arc::new(next);
        drop(guard);
        self.notify(None);
    }

    /// Wake the readers: `keys` changed (`None`: anything may have).
    fn notify(&self, keys: Option<Vec<Key>>) {
        if let Ok(mut touched) = self.touched.lock() {
            match keys {
                None => {
                    touched.all = true;
                    touched.keys = HashSet::new();
                }
                Some(keys) => touched.add(keys),
            }
        }
        self.changed.send_modify(|generation| *generation += 1);
    }

    /// What changed since the last call (the controller's, after each wake of `subscribe`).
    pub fn take_touched(&self) -> Touched {
        match self.touched.lock() {
            Ok(mut touched) => std::mem::take(&mut *touched),
            Err(_) => Touched {
                all: true,
                keys: HashSet::new(),
            },
        }
    }

    /// List once without blocking (one-shot commands: `drover plan`, `drover sync`).
    pub async fn load_once(&self, nomad: &NomadClient) -> Result<(), NomadError> {
        let jobs = nomad_job::list(nomad.clone(), QueryOptions::default()).await?;
        let volumes = csi_volume::list(nomad.clone(), QueryOptions::default()).await?;
        self.update(|s| {
            nomad_job::fold(s, jobs.index, jobs.value);
            csi_volume::fold(s, volumes.index, volumes.value);
            s.last_error = None;
        });
        Ok(())
    }

    /// Keep jobs and CSI volumes current until `shutdown`: one list, then Nomad's event stream
    /// (falling back to blocking lists while the stream is unavailable).
    pub fn spawn_watchers(&self, nomad: NomadClient, shutdown: CancellationToken) {
        tokio::spawn(event_stream::follow(self.clone(), nomad, shutdown));
    }

    /// Change the snapshot; `f` names the jobs and volumes it changed, and only their apps are
    /// woken (all of them when it also cleared an error).
    fn update_keys(&self, f: impl FnOnce(&mut LiveSnapshot, &mut Vec<Key>) -> bool) {
        let mut guard = match self.snapshot.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = (**guard).clone();
        let had_error = next.last_error.take().is_some();
        let mut keys = Vec::new();
        let changed = f(&mut next, &mut keys);
        *guard = Arc::new(next);
        drop(guard);
        if had_error {
            self.notify(None);
        } else if changed {
            self.notify(Some(keys));
        }
    }

    /// Watch Consul config entries with `consul`: each kind named by
    /// [`want_config_kinds`](Self::want_config_kinds) gets one held blocking list.
    pub fn watch_consul(&self, consul: ConsulClient, shutdown: CancellationToken) {
        let mut slot = match self.consul.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Some(ConsulWatch {
            client: consul,
            shutdown,
        });
        drop(slot);
        self.update(|s| s.consul_configured = true);
    }

    /// The config-entry kinds an app declares: each new one gets a watcher (when Consul is
    /// configured), and [`LiveSnapshot::ready`] waits for its first list.
    pub fn want_config_kinds<'a>(&self, kinds: impl IntoIterator<Item = &'a str>) {
        let snapshot = self.snapshot();
        let new: Vec<String> = kinds
            .into_iter()
            .filter(|k| !snapshot.config_kinds_wanted.contains(*k))
            .map(str::to_string)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if new.is_empty() {
            return;
        }
        self.update(|s| s.config_kinds_wanted.extend(new.iter().cloned()));
        let watch = match self.consul.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let Some(watch) = watch else {
            return;
        };
        for kind in new {
            let store = self.clone();
            let client = watch.client.clone();
            let shutdown = watch.shutdown.clone();
            tokio::spawn(async move {
                watch_loop("config entries", shutdown, |index| {
                    let list = consul_config_entry::list(
                        client.clone(),
                        kind.clone(),
                        QueryOptions {
                            index,
                            wait: Some(BLOCKING_WAIT),
                        },
                    );
                    let store = store.clone();
                    let kind = kind.clone();
                    async move {
                        let answer = list.await;
                        store.apply_config_list(&kind, answer.map(|l| (l.index, l.value)))
                    }
                })
                .await;
            });
        }
    }

    /// Record that buckets are managed with an S3 client (their steps are planned, not
    /// shown as `not-managed`).
    pub fn use_s3(&self) {
        self.update(|s| s.s3_configured = true);
    }

    /// Read `buckets` now (S3 has no watch): an app's cycle calls this before planning, so it
    /// plans against what S3 says this cycle. An error leaves the snapshot as it was.
    pub async fn read_buckets(
        &self,
        s3: &S3Client,
        buckets: &[(String, Wanted)],
    ) -> Result<(), S3Error> {
        let read_at = tokio::time::Instant::now();
        let read = bucket::read(s3, buckets).await?;
        if let Ok(mut reads) = self.bucket_reads.lock() {
            for (name, wanted) in buckets {
                reads.insert(name.clone(), (*wanted, read_at));
            }
        }
        // Not news for other apps: the app that read is the one about to plan.
        self.update_quiet(|s| {
            bucket::fold(s, read);
        });
        Ok(())
    }

    /// Of `buckets`, those a cycle must read: never read with these settings, read at least
    /// `max_age` ago (the app's resync), or written by drover since (see
    /// [`forget_bucket_reads`](Self::forget_bucket_reads)). Progress cycles in between reuse
    /// the snapshot, so an app converging elsewhere costs S3 nothing.
    pub fn buckets_due(
        &self,
        buckets: Vec<(String, Wanted)>,
        max_age: Duration,
    ) -> Vec<(String, Wanted)> {
        let Ok(reads) = self.bucket_reads.lock() else {
            return buckets;
        };
        let now = tokio::time::Instant::now();
        buckets
            .into_iter()
            .filter(|(name, wanted)| match reads.get(name) {
                Some((read_with, at)) => {
                    read_with != wanted || now.saturating_duration_since(*at) >= max_age
                }
                None => true,
            })
            .collect()
    }

    /// Drover wrote (or may have written) these buckets: their next cycle reads them again.
    pub fn forget_bucket_reads<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        if let Ok(mut reads) = self.bucket_reads.lock() {
            for name in names {
                reads.remove(name);
            }
        }
    }

    fn update_quiet(&self, f: impl FnOnce(&mut LiveSnapshot)) {
        let mut guard = match self.snapshot.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = (**guard).clone();
        f(&mut next);
        *guard = Arc::new(next);
    }

    /// Wait until the snapshot is [`ready`](LiveSnapshot::ready), at most `limit` (a one-shot
    /// command's first lists; the caller then reports what is still not listed).
    pub async fn wait_ready(&self, limit: Duration) {
        let mut changed = self.subscribe();
        let _ = tokio::time::timeout(limit, async {
            while !self.snapshot().ready() {
                if changed.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    /// Fold one list result into the snapshot; returns the index to block on next.
    /// [`apply_list`](Self::apply_list) for one config-entry kind: only the apps that declare
    /// an entry that changed are woken (all of them on the kind's first list or after an error).
    fn apply_config_list<E: std::fmt::Display>(
        &self,
        kind: &str,
        result: Result<(u64, Vec<ConfigEntry>), E>,
    ) -> Result<u64, E> {
        let (index, entries) = match result {
            Ok(listed) => listed,
            Err(error) => {
                let text = error.to_string();
                self.update(|s| s.last_error = Some(text));
                return Err(error);
            }
        };
        let mut first = false;
        self.update_keys(|s, keys| {
            let folded = consul_config_entry::fold(s, kind, index, entries);
            first = folded.first;
            *keys = folded.changed;
            !keys.is_empty()
        });
        if first {
            self.notify(None);
        }
        Ok(index)
    }

    fn apply_list<T, E: std::fmt::Display>(
        &self,
        result: Result<(u64, T), E>,
        fold: impl FnOnce(&mut LiveSnapshot, u64, T) -> bool,
    ) -> Result<u64, E> {
        match result {
            Ok((index, value)) => {
                let mut guard = match self.snapshot.write() {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                };
                let mut next = (**guard).clone();
                let had_error = next.last_error.take().is_some();
                let changed = fold(&mut next, index, value) || had_error;
                *guard = Arc::new(next);
                drop(guard);
                if changed {
                    self.notify(None);
                }
                Ok(index)
            }
            Err(error) => {
                let text = error.to_string();
                self.update(|s| s.last_error = Some(text));
                Err(error)
            }
        }
    }

    /// Record that drover itself just wrote config entry `key` (`(kind, name)`), which now has
    /// `modify_index`: until a list of its kind has seen it, plans trust the write.
    pub fn note_config_written(&self, key: Key, modify_index: u64) {
        self.update_quiet(|s| {
            s.config_written
                .insert(key, (modify_index, std::time::Instant::now()));
        });
    }

    /// Record that drover itself just wrote these jobs and volumes `(namespace, id)` (so their
    /// readers re-check before the watcher's next answer arrives).
    pub fn poke(&self, keys: Vec<Key>) {
        self.notify(Some(keys));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> Key {
        ("default".to_string(), id.to_string())
    }

    /// A live change names the keys it touched (the controller wakes their apps, see its
    /// interest index); a change of the cache as a whole (a list, readiness, an error) is `all`.
    #[test]
    fn a_change_names_the_keys_it_touched() {
        let live = LiveStore::default();
        live.poke(vec![key("web")]);
        live.poke(vec![key("api")]);
        let touched = live.take_touched();
        assert!(!touched.all);
        assert_eq!(touched.keys, HashSet::from([key("web"), key("api")]));
        assert_eq!(live.take_touched(), Touched::default(), "taken once");
        live.use_s3();
        let touched = live.take_touched();
        assert!(touched.all);
        live.poke(
            (0..=TOUCHED_KEYS_MAX)
                .map(|i| key(&format!("j{i}")))
                .collect(),
        );
        let touched = live.take_touched();
        assert!(
            touched.all && touched.keys.is_empty(),
            "a burst collapses to all"
        );
    }

    /// S3 has no watch: a bucket is read again only when its last read is a resync old, when
    /// it is wanted with other settings, or when drover wrote it.
    #[tokio::test(start_paused = true)]
    async fn a_bucket_is_due_on_first_look_at_resync_with_new_settings_or_after_a_write() {
        let live = LiveStore::default();
        let resync = Duration::from_secs(180);
        let versioning = Wanted {
            versioning: true,
            ..Wanted::default()
        };
        let media = || vec![("media".to_string(), versioning)];
        assert_eq!(live.buckets_due(media(), resync), media(), "never read");
        if let Ok(mut reads) = live.bucket_reads.lock() {
            reads.insert("media".into(), (versioning, tokio::time::Instant::now()));
        }
        assert!(live.buckets_due(media(), resync).is_empty(), "just read");
        tokio::time::advance(resync - Duration::from_secs(1)).await;
        assert!(
            live.buckets_due(media(), resync).is_empty(),
            "progress cycle"
        );
        let other = vec![("media".to_string(), Wanted::default())];
        assert_eq!(
            live.buckets_due(other.clone(), resync),
            other,
            "other settings"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(live.buckets_due(media(), resync), media(), "resync");
        if let Ok(mut reads) = live.bucket_reads.lock() {
            reads.insert("media".into(), (versioning, tokio::time::Instant::now()));
        }
        live.forget_bucket_reads(["media"]);
        assert_eq!(live.buckets_due(media(), resync), media(), "written");
    }
}
