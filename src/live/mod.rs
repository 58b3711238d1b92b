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

/// Sustained pace of one watcher: on average at most one list per this interval, so a server
/// whose index moves on every answer (or that ignores `index`) cannot make it spin.
const LIST_INTERVAL: Duration = Duration::from_millis(200);
/// Lists a watcher may send back to back before [`LIST_INTERVAL`] paces it: a burst of real
/// changes (a deployment moving allocations) is still seen at once.
const LIST_BURST: u32 = 20;
/// First wait after an answer whose index did not increase; it doubles up to the cap.
const UNMOVED_BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Longest wait between lists while the index does not move (a proxy that drops `index`/`wait`
/// turns the watcher into a poll at this interval).
const UNMOVED_BACKOFF_CAP: Duration = Duration::from_secs(10);
/// Unmoved answers in a row after which the watcher warns once.
const UNMOVED_WARN_AFTER: u32 = 3;

/// Paces one watcher's blocking lists, following Consul's and Nomad's client guidance: block on
/// the last index; an index that did not increase is not re-used at once (backoff with jitter up
/// to a cap); one that went backwards restarts from 0; and lists never exceed a rate cap.
#[derive(Debug)]
struct ListPacer {
    /// The index to block on next (0: a plain list).
    index: u64,
    /// Answers in a row whose index did not increase.
    unmoved: u32,
    /// Failed lists in a row.
    failures: u32,
    /// Rate cap state (GCRA): the instant the bucket is empty again.
    theoretical_arrival: tokio::time::Instant,
}

impl ListPacer {
    fn new(now: tokio::time::Instant) -> ListPacer {
        ListPacer {
            index: 0,
            unmoved: 0,
            failures: 0,
            theoretical_arrival: now,
        }
    }

    /// Record a list starting at `started`; returns the earliest start of the next one the rate
    /// cap allows.
    fn reserve(&mut self, started: tokio::time::Instant) -> tokio::time::Instant {
        self.theoretical_arrival = self.theoretical_arrival.max(started) + LIST_INTERVAL;
        self.theoretical_arrival
            .checked_sub(LIST_INTERVAL * (LIST_BURST - 1))
            .unwrap_or(started)
            .max(started)
    }

    /// An answer with index `answered` arrived for the list started at `started`, whose rate slot
    /// was `slot`; returns when the next list may start.
    fn answered(
        &mut self,
        started: tokio::time::Instant,
        slot: tokio::time::Instant,
        answered: u64,
    ) -> tokio::time::Instant {
        self.failures = 0;
        let moved = answered > self.index;
        // An index that goes backwards (a restored or new cluster) restarts from zero; a zero
        // answer is treated as 1 so the next list still blocks.
        self.index = if answered < self.index {
            0
        } else {
            answered.max(1)
        };
        if moved {
            self.unmoved = 0;
            return slot;
        }
        self.unmoved = self.unmoved.saturating_add(1);
        // Measured from the list's start: a blocking query that waited its full time and came
        // back unchanged is normal and is re-issued at once.
        let backoff = UNMOVED_BACKOFF_BASE
            .saturating_mul(2u32.saturating_pow(self.unmoved.saturating_sub(1).min(16)))
            .min(UNMOVED_BACKOFF_CAP);
        slot.max(started + with_jitter(backoff))
    }

    /// The list failed; returns how long to wait before the next one.
    fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.index = 0;
        self.unmoved = 0;
        with_jitter(Duration::from_millis(
            250 * 2u64.saturating_pow(self.failures.min(6)),
        ))
    }
}

/// Between half and all of `delay`, so watchers of many drovers do not retry in lockstep.
fn with_jitter(delay: Duration) -> Duration {
    let factor: f64 = rand::Rng::random_range(&mut rand::rng(), 0.5..=1.0);
    delay.mul_f64(factor)
}

/// Run blocking queries forever, paced by a [`ListPacer`]; errors back off.
async fn watch_loop<F, Fut>(what: &'static str, shutdown: CancellationToken, mut list: F)
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<u64, NomadError>>,
{
    let mut pacer = ListPacer::new(tokio::time::Instant::now());
    loop {
        let started = tokio::time::Instant::now();
        let slot = pacer.reserve(started);
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = list(pacer.index) => r,
        };
        let resume_at = match result {
            Ok(next) => {
                let resume_at = pacer.answered(started, slot, next);
                if pacer.unmoved == UNMOVED_WARN_AFTER {
                    tracing::warn!(
                        watcher = what,
                        index = next,
                        "Nomad answers blocking queries at once without a newer index (a proxy \
                         dropping index/wait?); backing off"
                    );
                }
                resume_at
            }
            Err(error) => {
                let delay = pacer.failed();
                tracing::warn!(watcher = what, %error, retry_in = ?delay, "live watcher failed");
                tokio::time::Instant::now() + delay
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep_until(resume_at) => {}
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::time::Instant;

    /// Run `watch_loop` against `answer` (index given → index answered) for `window` of paused
    /// time, or until 1,000 lists; returns each list's start offset and the index it sent.
    async fn run_watch(
        window: Duration,
        answer: impl Fn(u64, usize) -> u64 + Send + Sync + 'static,
    ) -> Vec<(Duration, u64)> {
        let calls: Arc<Mutex<Vec<(Duration, u64)>>> = Arc::default();
        let shutdown = CancellationToken::new();
        let begin = Instant::now();
        let seen = Arc::clone(&calls);
        let stop = shutdown.clone();
        let answer = Arc::new(answer);
        let task = tokio::spawn(watch_loop("test", shutdown.clone(), move |index| {
            let seen = Arc::clone(&seen);
            let stop = stop.clone();
            let answer = Arc::clone(&answer);
            async move {
                // A server that answers at once, but still a real await point.
                tokio::task::yield_now().await;
                let mut calls = seen.lock().unwrap_or_else(|p| p.into_inner());
                calls.push((begin.elapsed(), index));
                if calls.len() >= 1000 || begin.elapsed() >= window {
                    stop.cancel();
                }
                Ok(answer(index, calls.len()))
            }
        }));
        tokio::select! {
            _ = task => {}
            _ = tokio::time::sleep(window) => shutdown.cancel(),
        }
        calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    #[tokio::test(start_paused = true)]
    async fn an_index_that_never_moves_backs_off_instead_of_spinning() {
        let window = Duration::from_secs(60);
        let calls = run_watch(window, |_, _| 7).await;
        // Backoff from 0.5 s (jittered down to half) doubling to a 10 s cap: about a dozen lists
        // a minute, never hundreds.
        assert!(
            calls.len() <= 25,
            "{} lists in {window:?}: {calls:?}",
            calls.len()
        );
        assert!(calls.len() >= 5, "keeps listing: {calls:?}");
        let last = calls.last().map(|c| c.0).unwrap_or_default();
        assert!(
            last >= Duration::from_secs(40),
            "still listing late: {calls:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_without_index_is_polled_slowly() {
        let calls = run_watch(Duration::from_secs(60), |_, _| 0).await;
        assert!(calls.len() <= 25, "{} lists: {calls:?}", calls.len());
    }

    #[tokio::test(start_paused = true)]
    async fn moving_indexes_are_seen_at_once_in_bursts_and_rate_capped_after() {
        let window = Duration::from_secs(10);
        let calls = run_watch(window, |_, n| 100 + n as u64).await;
        // The first LIST_BURST answers are followed by the next list without delay.
        let burst: Vec<_> = calls.iter().take(LIST_BURST as usize).collect();
        assert!(
            burst.iter().all(|c| c.0 == Duration::ZERO),
            "a burst of changes waits for nothing: {burst:?}"
        );
        // Then at most one per LIST_INTERVAL: 10 s / 200 ms + the burst.
        assert!(
            calls.len() <= LIST_BURST as usize + 51,
            "{} lists in {window:?}",
            calls.len()
        );
        assert!(calls.len() >= 40, "paced, not stopped: {}", calls.len());
        // Every list blocks on the index last answered.
        assert!(calls.windows(2).all(|w| w[1].1 > w[0].1), "{calls:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_index_that_goes_backwards_restarts_from_zero() {
        let calls = run_watch(Duration::from_secs(5), |_, n| match n {
            1 => 100,
            2 => 50,
            _ => 60 + n as u64,
        })
        .await;
        let sent: Vec<u64> = calls.iter().take(4).map(|c| c.1).collect();
        assert_eq!(sent, vec![0, 100, 0, 63], "{calls:?}");
        // The backwards answer is not re-listed at once.
        assert!(calls[2].0 >= UNMOVED_BACKOFF_BASE / 2, "{calls:?}");
    }
}
