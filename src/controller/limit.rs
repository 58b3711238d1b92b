//! How many apps reconcile at once: a limit that adapts to the servers' answers (additive
//! increase while cycles queue and the servers answer well, multiplicative decrease when they
//! answer 429, 502–504 or not at all), between [`FLOOR`] and the configured `concurrency`.
//!
//! A fixed limit is either too low for a thousand apps on a healthy cluster or too high for a
//! struggling one. The floor is not 1: a cycle that meets a timeout holds its slot through the
//! client's retries, and with one slot a few such cycles stalled every other app (the soak
//! found it: apps added during faults were not created before its deadline).

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::telemetry::Metrics;

/// The limit a controller starts at and never goes below (or the configured maximum, if
/// lower): what drover ran with before the limit adapted.
pub const FLOOR: usize = 4;

/// The shared limit; cheap to clone.
#[derive(Clone)]
pub struct ConcurrencyLimit {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    freed: Notify,
    floor: usize,
    max: usize,
    metrics: Metrics,
}

#[derive(Debug)]
struct State {
    limit: usize,
    in_flight: usize,
    /// Cycles waiting for a slot (growth only helps when some wait).
    waiting: usize,
    /// Cycles that ended well at the current limit since it last changed.
    good: usize,
    /// The servers' overload answers counted when the limit was last decreased.
    pressure_seen: u64,
    /// Bumped on each decrease: a cycle that began before one cannot decrease it again (one
    /// halving per episode, however many cycles were in flight when it began).
    epoch: u64,
}

/// One app's slot; frees it on drop.
pub struct Slot {
    inner: Arc<Inner>,
    epoch: u64,
}

impl ConcurrencyLimit {
    /// A limit between [`FLOOR`] and `max`, starting at the floor (`max`, if lower).
    pub fn new(max: usize, metrics: Metrics) -> ConcurrencyLimit {
        let max = max.max(1);
        let floor = FLOOR.min(max);
        let limit = floor;
        metrics.concurrency_limit(limit);
        ConcurrencyLimit {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    limit,
                    in_flight: 0,
                    waiting: 0,
                    good: 0,
                    pressure_seen: metrics.overload_answers(),
                    epoch: 0,
                }),
                freed: Notify::new(),
                floor,
                max,
                metrics,
            }),
        }
    }

    /// Wait for a slot.
    pub async fn acquire(&self) -> Slot {
        let mut counted = false;
        loop {
            let freed = self.inner.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut state = self.inner.lock();
                if state.in_flight < state.limit {
                    state.in_flight += 1;
                    if counted {
                        state.waiting -= 1;
                    }
                    return Slot {
                        inner: self.inner.clone(),
                        epoch: state.epoch,
                    };
                }
                if !counted {
                    state.waiting += 1;
                    counted = true;
                }
            }
            freed.await;
        }
    }

    /// The current limit.
    pub fn current(&self) -> usize {
        self.inner.lock().limit
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let inner = &self.inner;
        let pressure = inner.metrics.overload_answers();
        let mut state = inner.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        let before = state.limit;
        if pressure > state.pressure_seen {
            state.pressure_seen = pressure;
            if self.epoch == state.epoch {
                state.limit = (state.limit / 2).max(inner.floor);
                state.epoch += 1;
                state.good = 0;
            }
        } else if state.waiting > 0 && state.limit < inner.max {
            // One more slot per `limit` good cycles: about one per round of cycles.
            state.good += 1;
            if state.good >= state.limit {
                state.limit += 1;
                state.good = 0;
            }
        }
        let (after, grew) = (state.limit, state.limit > before);
        drop(state);
        if after != before {
            inner.metrics.concurrency_limit(after);
        }
        inner.freed.notify_one();
        if grew {
            inner.freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::metrics::ApiSystem;

    fn limit(max: usize) -> (ConcurrencyLimit, Metrics) {
        let statuses = tokio::sync::watch::Sender::new(Default::default());
        let metrics = Metrics::new(statuses.subscribe());
        (ConcurrencyLimit::new(max, metrics.clone()), metrics)
    }

    #[tokio::test]
    async fn queued_cycles_that_end_well_raise_the_limit_up_to_the_maximum() {
        let (limit, _) = limit(6);
        assert_eq!(limit.current(), FLOOR);
        for _ in 0..40 {
            queued_round(&limit).await;
        }
        assert_eq!(limit.current(), 6, "grows to the maximum and no further");
    }

    #[tokio::test]
    async fn without_a_queue_the_limit_stays() {
        let (limit, _) = limit(32);
        for _ in 0..100 {
            drop(limit.acquire().await);
        }
        assert_eq!(limit.current(), FLOOR);
    }

    #[tokio::test]
    async fn overload_answers_halve_the_limit_once_per_episode_down_to_the_floor() {
        let (limit, metrics) = limit(16);
        grow_to(&limit, 16).await;
        let slots = futures_join(&limit, 10).await;
        let nomad = metrics.requests(ApiSystem::Nomad);
        nomad.answered(503);
        nomad.answered(429);
        drop(slots);
        assert_eq!(
            limit.current(),
            8,
            "ten cycles in one episode halve it once"
        );
        nomad.answered(200);
        nomad.answered(404);
        nomad.answered(500);
        drop(limit.acquire().await);
        assert_eq!(
            limit.current(),
            8,
            "a 200, a 404 and a 500 are answers, not overload"
        );
        nomad.unanswered();
        drop(limit.acquire().await);
        assert_eq!(limit.current(), 4, "no answer at all is overload too");
        nomad.answered(502);
        drop(limit.acquire().await);
        assert_eq!(limit.current(), FLOOR, "never below the floor");
        let (low, metrics) = self::limit(2);
        metrics.requests(ApiSystem::Vault).answered(504);
        drop(low.acquire().await);
        assert_eq!(low.current(), 2, "a maximum below the floor is the floor");
    }

    /// Queue cycles until the limit is `target`.
    async fn grow_to(limit: &ConcurrencyLimit, target: usize) {
        for _ in 0..200 {
            if limit.current() >= target {
                return;
            }
            queued_round(limit).await;
        }
        panic!("the limit never grew to {target}: {}", limit.current());
    }

    /// Take every slot, queue one more cycle, then free them all: one round of good cycles
    /// with a queue.
    async fn queued_round(limit: &ConcurrencyLimit) {
        let slots: Vec<Slot> = futures_join(limit, limit.current()).await;
        let waiter = tokio::spawn({
            let limit = limit.clone();
            async move { drop(limit.acquire().await) }
        });
        tokio::task::yield_now().await;
        drop(slots);
        let _ = waiter.await;
    }

    #[tokio::test]
    async fn a_slot_is_never_given_beyond_the_limit() {
        let (limit, _) = limit(2);
        let first = limit.acquire().await;
        let _second = limit.acquire().await;
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), limit.acquire());
        assert!(third.await.is_err(), "a third slot waits");
        drop(first);
        let third = tokio::time::timeout(std::time::Duration::from_secs(5), limit.acquire());
        assert!(third.await.is_ok(), "and gets the freed one");
    }

    async fn futures_join(limit: &ConcurrencyLimit, n: usize) -> Vec<Slot> {
        let mut slots = Vec::new();
        for _ in 0..n {
            slots.push(limit.acquire().await);
        }
        slots
    }
}
