//! [`SourceWatcher`]: fetch now, then every poll interval (±10 % jitter) or when triggered, and
//! publish the newest good revision. A failed fetch never takes the last good revision away.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use rand::Rng;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{GitSource, Revision, SourceError};
use crate::telemetry::Metrics;

/// The shortest poll interval honoured, so a zero in the config cannot spin the fetch loop.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The shortest time between the starts of two fetches when triggers come faster (a flood of
/// webhooks or sync requests must not turn into back-to-back fetches of the remote).
const MIN_TRIGGER_SPACING: Duration = Duration::from_millis(500);

/// How long one fetch may run before it is reported as failed (libgit2 has no per-call timeout;
/// the fetch is asked to cancel and the watcher waits for it before starting another).
const FETCH_TIMEOUT: Duration = Duration::from_secs(300);

/// What the source knows right now. Published through a `watch` channel.
#[derive(Debug, Clone, Default)]
pub struct SourceStatus {
    /// The newest revision fetched successfully; kept when later fetches fail.
    pub revision: Option<Arc<Revision>>,
    /// The last fetch's error (credentials scrubbed), cleared by the next success.
    pub last_error: Option<String>,
    /// When the last fetch (successful or not) finished.
    pub last_fetch: Option<SystemTime>,
    /// Failed fetches since the last success.
    pub consecutive_failures: u32,
    /// When the first of those failed fetches finished (`None` while fetches succeed).
    pub failing_since: Option<SystemTime>,
    /// The last fetch's commit refused by signature verification (`commit abc1234: …`).
    pub refused_commit: Option<String>,
}

/// A background task that keeps a [`GitSource`] fetched.
///
/// Subscribers are woken only when the revision, the error or the failure count changes, not on
/// every unchanged poll; `last_fetch` is still updated in place.
#[derive(Debug)]
pub struct SourceWatcher {
    status: watch::Receiver<SourceStatus>,
    trigger: Arc<Notify>,
    source: GitSource,
    task: JoinHandle<()>,
    /// Number of fetches started so far.
    started: Arc<AtomicU64>,
    /// Number (by start order) of the last fetch whose outcome is published.
    completed: watch::Receiver<u64>,
}

impl SourceWatcher {
    /// Start fetching `source` at once, then every `poll_interval` (±10 %) or on [`trigger`],
    /// until `shutdown` is cancelled. Fetches run on the blocking pool.
    ///
    /// [`trigger`]: SourceWatcher::trigger
    pub fn spawn(
        source: GitSource,
        poll_interval: Duration,
        shutdown: CancellationToken,
    ) -> SourceWatcher {
        SourceWatcher::spawn_with_metrics(source, poll_interval, shutdown, None)
    }

    /// [`SourceWatcher::spawn`], recording each fetch's duration and outcome in `metrics`.
    pub fn spawn_with_metrics(
        source: GitSource,
        poll_interval: Duration,
        shutdown: CancellationToken,
        metrics: Option<Metrics>,
    ) -> SourceWatcher {
        let (tx, rx) = watch::channel(SourceStatus::default());
        let trigger = Arc::new(Notify::new());
        let started = Arc::new(AtomicU64::new(0));
        let (completed_tx, completed) = watch::channel(0);
        let task = tokio::spawn(run(
            source.clone(),
            poll_interval.max(MIN_POLL_INTERVAL),
            shutdown,
            Arc::clone(&trigger),
            Arc::clone(&started),
            Reports {
                status: tx,
                completed: completed_tx,
                metrics,
            },
        ));
        SourceWatcher {
            status: rx,
            trigger,
            source,
            task,
            started,
            completed,
        }
    }

    /// A receiver of the source's status; `borrow()` gives the current one.
    pub fn subscribe(&self) -> watch::Receiver<SourceStatus> {
        self.status.clone()
    }

    /// Fetch as soon as possible (webhooks, `drover sync`). Several triggers before the fetch
    /// starts coalesce into one; a trigger during a fetch causes one more fetch after it.
    pub fn trigger(&self) {
        self.trigger.notify_one();
    }

    /// Trigger a fetch and wait until one that started after this call has finished, then
    /// return the status (`drover sync`, tests: "push, then sync what was pushed"). Returns the
    /// current status at once if the watcher has stopped. Callers bound the wait with a timeout.
    pub async fn refresh(&self) -> SourceStatus {
        let after = self.started.load(Ordering::SeqCst);
        let mut completed = self.completed.clone();
        self.trigger();
        // A fetch already running may predate the caller's push: wait for the next one.
        let _ = completed.wait_for(|done| *done > after).await;
        self.status.borrow().clone()
    }

    /// The watched source, for reading older revisions (rollback) from the same mirror.
    pub fn source(&self) -> &GitSource {
        &self.source
    }

    /// Whether the background task has stopped (after shutdown).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// `base` scaled by a random factor in [0.9, 1.1], so many drovers do not poll in lockstep.
fn jittered(base: Duration) -> Duration {
    let factor: f64 = rand::rng().random_range(0.9..=1.1);
    base.mul_f64(factor)
}

/// Where the fetch loop reports: the status, the number of the last finished fetch, and the
/// metrics (if any).
struct Reports {
    status: watch::Sender<SourceStatus>,
    completed: watch::Sender<u64>,
    metrics: Option<Metrics>,
}

async fn run(
    source: GitSource,
    poll_interval: Duration,
    shutdown: CancellationToken,
    trigger: Arc<Notify>,
    started: Arc<AtomicU64>,
    reports: Reports,
) {
    let Reports {
        status: tx,
        completed,
        metrics,
    } = reports;
    let url = source.display_url();
    // A fetch that outlived its timeout; it is awaited before another starts on the same mirror.
    let mut pending: Option<JoinHandle<Result<Option<Revision>, SourceError>>> = None;
    let mut fetch_started = tokio::time::Instant::now();
    let mut refused: Option<String> = None;
    loop {
        let mut handle = match pending.take() {
            Some(handle) => handle,
            None => {
                started.fetch_add(1, Ordering::SeqCst);
                fetch_started = tokio::time::Instant::now();
                let fetcher = source.clone();
                let known = tx.borrow().revision.as_ref().map(|r| r.id.clone());
                tokio::task::spawn_blocking(move || fetch_if_changed(&fetcher, known.as_deref()))
            }
        };
        let outcome = tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                source.cancel();
                break;
            }
            joined = tokio::time::timeout(FETCH_TIMEOUT, &mut handle) => match joined {
                Ok(Ok(result)) => result.map_err(|e| {
                    refused = e.is_refusal().then(|| e.to_string());
                    e.to_string()
                }),
                Ok(Err(join)) => Err(format!("fetch {url}: task failed: {join}")),
                Err(_) => {
                    source.cancel();
                    pending = Some(handle);
                    Err(format!("fetch {url}: timed out after {}s", FETCH_TIMEOUT.as_secs()))
                }
            },
        };
        if let Some(metrics) = &metrics {
            metrics.git_fetched(fetch_started.elapsed(), outcome.is_ok(), SystemTime::now());
        }
        let refused = std::mem::take(&mut refused);
        let fetched = outcome.is_ok();
        publish(&tx, outcome);
        if fetched || refused.is_some() {
            // A timed-out or failed fetch says nothing about the commit: keep what was known.
            tx.send_if_modified(|status| {
                let changed = status.refused_commit != refused;
                status.refused_commit = refused;
                changed
            });
        }
        if pending.is_none() {
            // The fetch numbered `started` is over (a timed-out one is still pending).
            completed.send_replace(started.load(Ordering::SeqCst));
        }

        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = trigger.notified() => {
                tracing::debug!(%url, "git refresh triggered");
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep_until(fetch_started + MIN_TRIGGER_SPACING) => {}
                }
            }
            () = tokio::time::sleep(jittered(poll_interval)) => {}
        }
    }
    tracing::debug!(%url, "git watcher stopped");
}

/// Fetch, and read the tree only when the commit differs from `known` (`None` = unchanged), so
/// an unchanged poll costs one fetch negotiation and no blob reads.
fn fetch_if_changed(
    source: &GitSource,
    known: Option<&str>,
) -> Result<Option<Revision>, SourceError> {
    let id = source.fetch_commit()?;
    if known == Some(id.as_str()) {
        return Ok(None);
    }
    source.verify_new(known, &id)?;
    source.revision_at(&id).map(Some)
}

/// Record a fetch outcome; `Ok(None)` means the known revision is still current.
fn publish(tx: &watch::Sender<SourceStatus>, outcome: Result<Option<Revision>, String>) {
    let now = SystemTime::now();
    tx.send_if_modified(|status| {
        status.last_fetch = Some(now);
        match outcome {
            Ok(fetched) => {
                let changed_error = status.last_error.take().is_some();
                let changed_failures = std::mem::take(&mut status.consecutive_failures) != 0;
                status.failing_since = None;
                let Some(revision) = fetched else {
                    return changed_error || changed_failures;
                };
                let same = status
                    .revision
                    .as_ref()
                    .is_some_and(|current| current.id == revision.id);
                if !same {
                    tracing::info!(
                        revision = %revision.short_id(),
                        message = %revision.message,
                        "new git revision"
                    );
                    status.revision = Some(Arc::new(revision));
                }
                !same || changed_error || changed_failures
            }
            Err(message) => {
                status.consecutive_failures = status.consecutive_failures.saturating_add(1);
                status.failing_since.get_or_insert(now);
                tracing::warn!(
                    error = %message,
                    failures = status.consecutive_failures,
                    kept = status.revision.as_ref().map(|r| r.short_id().to_string()),
                    "git fetch failed; keeping the last good revision"
                );
                status.last_error = Some(message);
                true
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_flood_of_triggers_does_not_fetch_back_to_back() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(&repo).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(repo.join("f"), "1").unwrap_or_else(|e| panic!("{e}"));
        crate::source::init_repo_from_dir(&repo, &repo).unwrap_or_else(|e| panic!("{e}"));
        let source = GitSource::open(
            crate::source::SourceConfig {
                url: repo.display().to_string(),
                reference: crate::source::SEED_BRANCH.into(),
                ..crate::source::SourceConfig::default()
            },
            &dir.path().join("mirror"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let shutdown = CancellationToken::new();
        // An hour between polls: every fetch after the first comes from a trigger.
        let watcher = SourceWatcher::spawn(source, Duration::from_secs(3600), shutdown.clone());
        let window = Duration::from_secs(2);
        let begin = std::time::Instant::now();
        while begin.elapsed() < window {
            watcher.trigger();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        shutdown.cancel();
        let fetches = watcher.started.load(Ordering::SeqCst);
        // One at start, then at most one per MIN_TRIGGER_SPACING.
        assert!(
            (2..=6).contains(&fetches),
            "{fetches} fetches in {window:?} of triggers"
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let base = Duration::from_secs(60);
        for _ in 0..200 {
            let d = jittered(base);
            assert!(
                d >= Duration::from_secs(54) && d <= Duration::from_secs(66),
                "{d:?}"
            );
        }
    }

    #[test]
    fn failure_keeps_revision_and_success_clears_error() {
        let (tx, mut rx) = watch::channel(SourceStatus::default());
        publish(&tx, Ok(Some(Revision::from_files("aaa", BTreeMap::new()))));
        assert!(rx.has_changed().unwrap());
        let first = rx.borrow_and_update().revision.clone().unwrap();

        publish(&tx, Err("fetch x: boom".into()));
        let first_failure = rx.borrow_and_update().last_fetch;
        assert!(first_failure.is_some());
        publish(&tx, Err("fetch x: boom".into()));
        let status = rx.borrow_and_update().clone();
        assert_eq!(
            status.failing_since, first_failure,
            "since the first failure"
        );
        assert_eq!(status.revision.unwrap().id, "aaa");
        assert_eq!(status.consecutive_failures, 2);
        assert_eq!(status.last_error.as_deref(), Some("fetch x: boom"));

        // Same revision again: error cleared (a change), but the Arc is the same one.
        publish(&tx, Ok(Some(Revision::from_files("aaa", BTreeMap::new()))));
        assert!(rx.has_changed().unwrap());
        let status = rx.borrow_and_update().clone();
        assert!(status.last_error.is_none());
        assert_eq!(status.consecutive_failures, 0);
        assert_eq!(status.failing_since, None);
        assert!(Arc::ptr_eq(&first, status.revision.as_ref().unwrap()));

        // Unchanged poll (tree re-read or not): subscribers are not woken, but last_fetch moves.
        let before = status.last_fetch;
        publish(&tx, Ok(Some(Revision::from_files("aaa", BTreeMap::new()))));
        publish(&tx, Ok(None));
        assert!(!rx.has_changed().unwrap());
        assert!(rx.borrow().last_fetch >= before);
        assert_eq!(rx.borrow().revision.as_ref().unwrap().id, "aaa");

        // An error, then "unchanged": the error clears and subscribers are woken.
        publish(&tx, Err("boom".into()));
        rx.borrow_and_update();
        publish(&tx, Ok(None));
        assert!(rx.has_changed().unwrap());
        assert!(rx.borrow().last_error.is_none());
    }
}
