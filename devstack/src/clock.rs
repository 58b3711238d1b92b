//! Raft-like monotonic indexes and blocking-query waits shared by the simulated servers.

use std::time::Duration;

use tokio::sync::watch;

/// Go duration text is parsed by the jobspec crate, which needs it for jobspec durations.
pub use drover_jobspec::parse_go_duration;

/// One server's monotonic index. Every write takes the next value; blocking reads wait on it.
#[derive(Debug)]
pub struct IndexClock {
    tx: watch::Sender<u64>,
}

impl IndexClock {
    /// A clock whose current index is `start`.
    pub fn new(start: u64) -> Self {
        IndexClock {
            tx: watch::Sender::new(start),
        }
    }

    /// The latest index handed out.
    pub fn current(&self) -> u64 {
        *self.tx.borrow()
    }

    /// Take the next index and wake every blocked reader.
    pub fn bump(&self) -> u64 {
        let mut next = 0;
        self.tx.send_modify(|i| {
            *i += 1;
            next = *i;
        });
        next
    }

    /// A receiver that sees every new index (event-stream followers wait on it).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    /// Wake blocked readers without taking an index (state they watch changed in place).
    pub fn poke(&self) {
        self.tx.send_modify(|_| {});
    }

    /// Set the index back (reset only).
    pub fn reset(&self, start: u64) {
        self.tx.send_replace(start);
    }

    /// How many blocking reads are waiting on this clock right now (tests await a held query
    /// through it instead of sleeping).
    pub fn held_queries(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Blocking-query semantics shared by Nomad and Consul: return as soon as `index_of()` is
    /// greater than `min_index`, or when `wait` (plus jitter of up to wait/16) has passed.
    /// `min_index == 0` returns at once. Returns the index to report.
    pub async fn wait_past(
        &self,
        min_index: u64,
        wait: Duration,
        mut index_of: impl FnMut() -> u64,
    ) -> u64 {
        let now = index_of();
        if min_index == 0 || now > min_index {
            return now;
        }
        let jitter_cap = wait.as_nanos() / 16;
        let jitter = if jitter_cap > 0 {
            Duration::from_nanos((rand::random::<u64>() as u128 % jitter_cap) as u64)
        } else {
            Duration::ZERO
        };
        let deadline = tokio::time::Instant::now() + wait + jitter;
        let mut rx = self.tx.subscribe();
        loop {
            let idx = index_of();
            if idx > min_index {
                return idx;
            }
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return index_of();
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return index_of(),
            }
        }
    }
}

/// Format a duration the way Go's `time.Duration.String()` does (`1h0m0s`, `30s`, `1.5s`).
pub fn format_go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000_000_000 {
        return if nanos.is_multiple_of(1_000_000) {
            format!("{}ms", nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            format!("{}µs", nanos / 1_000)
        } else {
            format!("{nanos}ns")
        };
    }
    let hours = nanos / 3_600_000_000_000;
    let minutes = (nanos / 60_000_000_000) % 60;
    let secs_nanos = nanos % 60_000_000_000;
    let whole = secs_nanos / 1_000_000_000;
    let frac = secs_nanos % 1_000_000_000;
    let seconds = if frac == 0 {
        format!("{whole}s")
    } else {
        let f = format!("{frac:09}");
        format!("{whole}.{}s", f.trim_end_matches('0'))
    };
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}")
    } else {
        seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_format_like_duration_string() {
        assert_eq!(format_go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format_go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_go_duration(Duration::from_millis(15)), "15ms");
    }

    #[tokio::test(start_paused = true)]
    async fn blocking_wait_returns_on_bump_or_timeout() {
        let clock = std::sync::Arc::new(IndexClock::new(5));
        // Index already past: immediate.
        assert_eq!(
            clock
                .wait_past(4, Duration::from_secs(10), || clock.current())
                .await,
            5
        );
        // Timeout: returns the unchanged index.
        assert_eq!(
            clock
                .wait_past(5, Duration::from_secs(1), || clock.current())
                .await,
            5
        );
        let c2 = clock.clone();
        let waiter = tokio::spawn(async move {
            c2.wait_past(5, Duration::from_secs(300), || c2.current())
                .await
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        clock.bump();
        assert_eq!(waiter.await.unwrap_or(0), 6);
    }
}
