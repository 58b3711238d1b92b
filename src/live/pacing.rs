//! Pacing of the watchers' blocking lists, shared by every watched kind.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

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
pub(crate) struct ListPacer {
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
    pub(crate) fn new(now: tokio::time::Instant) -> ListPacer {
        ListPacer {
            index: 0,
            unmoved: 0,
            failures: 0,
            theoretical_arrival: now,
        }
    }

    /// Record a list starting at `started`; returns the earliest start of the next one the rate
    /// cap allows.
    pub(crate) fn reserve(&mut self, started: tokio::time::Instant) -> tokio::time::Instant {
        self.theoretical_arrival = self.theoretical_arrival.max(started) + LIST_INTERVAL;
        self.theoretical_arrival
            .checked_sub(LIST_INTERVAL * (LIST_BURST - 1))
            .unwrap_or(started)
            .max(started)
    }

    /// An answer with index `answered` arrived for the list started at `started`, whose rate slot
    /// was `slot`; returns when the next list may start.
    pub(crate) fn answered(
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

    /// The index to block on next (0: a plain list).
    pub(crate) fn index(&self) -> u64 {
        self.index
    }

    /// The list failed; returns how long to wait before the next one.
    pub(crate) fn failed(&mut self) -> Duration {
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
pub(super) async fn watch_loop<F, Fut, E>(what: &'static str, shutdown: CancellationToken, list: F)
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<u64, E>>,
    E: std::fmt::Display,
{
    let mut pacer = ListPacer::new(tokio::time::Instant::now());
    watch_loop_from(what, shutdown, 0, &mut pacer, list).await;
}

/// [`watch_loop`] with a pacer kept by the caller across runs (a fallback that starts and
/// stops keeps its rate cap), whose first query blocks on `index`.
pub(super) async fn watch_loop_from<F, Fut, E>(
    what: &'static str,
    shutdown: CancellationToken,
    index: u64,
    pacer: &mut ListPacer,
    mut list: F,
) where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<u64, E>>,
    E: std::fmt::Display,
{
    pacer.index = index;
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
                        "the server answers blocking queries at once without a newer index (a proxy \
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
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
                Ok::<u64, String>(answer(index, calls.len()))
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
