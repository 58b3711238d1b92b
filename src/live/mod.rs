//! LiveStore: background watchers hold one blocking list per kind and fill a cache of live state;
//! planning reads only the cache. Nothing plans or prunes before the first full list (`ready`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::providers::nomad::types::{CsiVolumeStub, JobListStub};
use crate::providers::nomad::{NomadClient, NomadError, QueryOptions};

/// `(namespace, id)`.
pub type Key = (String, String);

/// What the watchers last saw.
#[derive(Debug, Clone, Default)]
pub struct LiveSnapshot {
    /// Jobs in every namespace.
    pub jobs: HashMap<Key, JobListStub>,
    /// CSI volumes in every namespace.
    pub volumes: HashMap<Key, CsiVolumeStub>,
    /// The jobs list has completed once.
    pub jobs_ready: bool,
    /// The volumes list has completed once.
    pub volumes_ready: bool,
    /// `X-Nomad-Index` of the last jobs list.
    pub jobs_index: u64,
    /// `X-Nomad-Index` of the last volumes list.
    pub volumes_index: u64,
    /// The last watcher error, cleared by the next success.
    pub last_error: Option<String>,
}

impl LiveSnapshot {
    /// Both lists have completed once: planning (and above all pruning) may start.
    pub fn ready(&self) -> bool {
        self.jobs_ready && self.volumes_ready
    }

    /// A job's stub.
    pub fn job(&self, namespace: &str, id: &str) -> Option<&JobListStub> {
        self.jobs.get(&(namespace.to_string(), id.to_string()))
    }

    /// A volume's stub.
    pub fn volume(&self, namespace: &str, id: &str) -> Option<&CsiVolumeStub> {
        self.volumes.get(&(namespace.to_string(), id.to_string()))
    }
}

/// The cache of live state, shared by every app's reconcile.
#[derive(Clone)]
pub struct LiveStore {
    snapshot: Arc<RwLock<Arc<LiveSnapshot>>>,
    changed: watch::Sender<u64>,
}

impl Default for LiveStore {
    fn default() -> Self {
        LiveStore {
            snapshot: Arc::new(RwLock::new(Arc::new(LiveSnapshot::default()))),
            changed: watch::Sender::new(0),
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
        self.changed.send_modify(|generation| *generation += 1);
    }

    /// List once without blocking (one-shot commands: `drover plan`, `drover sync`).
    pub async fn load_once(&self, nomad: &NomadClient) -> Result<(), NomadError> {
        let jobs = nomad.list_jobs("*", QueryOptions::default()).await?;
        let volumes = nomad.list_csi_volumes("*", QueryOptions::default()).await?;
        self.update(|s| {
            s.jobs = index_jobs(jobs.value);
            s.jobs_index = jobs.index;
            s.jobs_ready = true;
            s.volumes = index_volumes(volumes.value);
            s.volumes_index = volumes.index;
            s.volumes_ready = true;
            s.last_error = None;
        });
        Ok(())
    }

    /// Start the two watchers (jobs, CSI volumes); they stop on `shutdown`.
    pub fn spawn_watchers(&self, nomad: NomadClient, shutdown: CancellationToken) {
        let store = self.clone();
        let client = nomad.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            watch_loop("jobs", stop, |index| {
                let client = client.clone();
                let store = store.clone();
                async move {
                    let list = client
                        .list_jobs(
                            "*",
                            QueryOptions {
                                index,
                                wait: Some(BLOCKING_WAIT),
                            },
                        )
                        .await;
                    store.apply_list(list.map(|l| (l.index, l.value)), |s, index, jobs| {
                        // Only publish when something a reconciler reads changed: the list
                        // index also moves on allocation churn.
                        let jobs = index_jobs(jobs);
                        let changed = !s.jobs_ready || s.jobs != jobs;
                        s.jobs = jobs;
                        s.jobs_index = index;
                        s.jobs_ready = true;
                        changed
                    })
                }
            })
            .await;
        });
        let store = self.clone();
        tokio::spawn(async move {
            watch_loop("csi volumes", shutdown, |index| {
                let client = nomad.clone();
                let store = store.clone();
                async move {
                    let list = client
                        .list_csi_volumes(
                            "*",
                            QueryOptions {
                                index,
                                wait: Some(BLOCKING_WAIT),
                            },
                        )
                        .await;
                    store.apply_list(list.map(|l| (l.index, l.value)), |s, index, volumes| {
                        let volumes = index_volumes(volumes);
                        let changed = !s.volumes_ready || s.volumes != volumes;
                        s.volumes = volumes;
                        s.volumes_index = index;
                        s.volumes_ready = true;
                        changed
                    })
                }
            })
            .await;
        });
    }

    /// Fold one list result into the snapshot; returns the index to block on next.
    fn apply_list<T>(
        &self,
        result: Result<(u64, T), NomadError>,
        fold: impl FnOnce(&mut LiveSnapshot, u64, T) -> bool,
    ) -> Result<u64, NomadError> {
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
                    self.changed.send_modify(|generation| *generation += 1);
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

    /// Record that something drover itself just wrote changed live state (so readers re-check
    /// before the watcher's next answer arrives).
    pub fn poke(&self) {
        self.changed.send_modify(|generation| *generation += 1);
    }
}

/// Run blocking queries forever: index resets if it goes backwards, errors back off.
async fn watch_loop<F, Fut>(what: &'static str, shutdown: CancellationToken, mut list: F)
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<u64, NomadError>>,
{
    let mut index = 0u64;
    let mut failures = 0u32;
    loop {
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = list(index) => r,
        };
        match result {
            Ok(next) => {
                failures = 0;
                // An index that goes backwards (a restored or new cluster) restarts from zero.
                index = if next < index { 0 } else { next.max(1) };
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let delay = Duration::from_millis(250 * 2u64.saturating_pow(failures.min(6)));
                tracing::warn!(watcher = what, %error, retry_in = ?delay, "live watcher failed");
                index = 0;
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

fn index_jobs(jobs: Vec<JobListStub>) -> HashMap<Key, JobListStub> {
    jobs.into_iter()
        .map(|j| {
            let ns = if j.namespace.is_empty() {
                "default".to_string()
            } else {
                j.namespace.clone()
            };
            ((ns, j.id.clone()), j)
        })
        .collect()
}

fn index_volumes(volumes: Vec<CsiVolumeStub>) -> HashMap<Key, CsiVolumeStub> {
    volumes
        .into_iter()
        .map(|v| {
            let ns = if v.namespace.is_empty() {
                "default".to_string()
            } else {
                v.namespace.clone()
            };
            ((ns, v.id.clone()), v)
        })
        .collect()
}
