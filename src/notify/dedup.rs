//! Fire and resolve: one alert per state change of a condition, with a hold-down against
//! flapping and an optional re-notification while it lasts. Pure: the clock is passed in.
//!
//! The rules (documented in the README):
//! - a condition fires once it has held for `hold` (`for:`) without a break; one that clears
//!   sooner never fires, so an app flapping faster than `hold` sends nothing;
//! - a firing condition resolves once it has been gone for `hold`; one that comes back sooner
//!   keeps firing, so a flap after it fired sends no resolve/fire pair either;
//! - while firing it is sent again every `renotify` (if set);
//! - a healed drift is an event, not a state: it fires at once and ends without a resolve;
//! - conditions whose app cannot be judged now (live state loading, or no status yet shortly
//!   after a start) are left as they are: neither fired nor resolved.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::conditions::{ConditionKey, Conditions};
use super::{AlertState, AlertTrigger};

/// How conditions become alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupPolicy {
    /// A condition must hold this long before it fires, and be gone this long before it
    /// resolves (`for:`).
    pub hold: Duration,
    /// Send a firing alert again after this long (`renotify_interval:`; `None`: never).
    pub renotify: Option<Duration>,
}

/// One alert to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// What it is about.
    pub key: ConditionKey,
    /// Firing or resolved.
    pub state: AlertState,
    /// The message.
    pub message: String,
    /// A re-notification of an alert already firing.
    pub renotify: bool,
}

/// A firing alert, as saved across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    /// What it is about.
    pub key: ConditionKey,
    /// Its message.
    pub message: String,
    /// When it fired.
    pub fired_at: SystemTime,
    /// When it was last sent.
    pub notified_at: SystemTime,
}

#[derive(Debug, Clone)]
enum Stage {
    /// Seen since `since`, not fired yet.
    Pending { since: SystemTime },
    /// Fired; `gone_since` while it is absent (resolves after `hold`).
    Firing {
        fired_at: SystemTime,
        notified_at: SystemTime,
        gone_since: Option<SystemTime>,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    stage: Stage,
    message: String,
}

/// The state of every condition seen.
#[derive(Debug, Clone)]
pub struct Tracker {
    policy: DedupPolicy,
    entries: BTreeMap<ConditionKey, Entry>,
}

fn elapsed(from: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(from).unwrap_or_default()
}

impl Tracker {
    /// A tracker that starts with `restored` firing (what was firing when drover stopped), so a
    /// restart neither fires them again nor forgets to resolve them.
    pub fn new(policy: DedupPolicy, restored: Vec<Firing>) -> Tracker {
        let entries = restored
            .into_iter()
            .map(|f| {
                let entry = Entry {
                    stage: Stage::Firing {
                        fired_at: f.fired_at,
                        notified_at: f.notified_at,
                        gone_since: None,
                    },
                    message: f.message,
                };
                (f.key, entry)
            })
            .collect();
        Tracker { policy, entries }
    }

    /// Compare `current` with what was seen before and say which alerts to send. `undecided`
    /// says which absent conditions cannot be judged now (they are left as they are).
    pub fn observe(
        &mut self,
        now: SystemTime,
        current: &Conditions,
        undecided: impl Fn(&ConditionKey) -> bool,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        let hold = self.policy.hold;
        for (key, message) in current {
            let entry = self.entries.entry(key.clone()).or_insert_with(|| Entry {
                stage: Stage::Pending { since: now },
                message: message.clone(),
            });
            entry.message.clone_from(message);
            let fire = |out: &mut Vec<Transition>, renotify| {
                out.push(Transition {
                    key: key.clone(),
                    state: AlertState::Firing,
                    message: message.clone(),
                    renotify,
                })
            };
            match &mut entry.stage {
                Stage::Pending { since } => {
                    let at_once = key.trigger == AlertTrigger::DriftHealed;
                    if at_once || elapsed(*since, now) >= hold {
                        entry.stage = Stage::Firing {
                            fired_at: now,
                            notified_at: now,
                            gone_since: None,
                        };
                        fire(&mut out, false);
                    }
                }
                Stage::Firing {
                    notified_at,
                    gone_since,
                    ..
                } => {
                    *gone_since = None;
                    if let Some(every) = self.policy.renotify
                        && elapsed(*notified_at, now) >= every
                    {
                        *notified_at = now;
                        fire(&mut out, true);
                    }
                }
            }
        }
        self.entries.retain(|key, entry| {
            if current.contains_key(key) || undecided(key) {
                return true;
            }
            match &mut entry.stage {
                // Cleared before it held long enough: a flap, never sent.
                Stage::Pending { .. } => false,
                // An event: nothing to resolve.
                Stage::Firing { .. } if key.trigger == AlertTrigger::DriftHealed => false,
                Stage::Firing { gone_since, .. } => {
                    let gone = *gone_since.get_or_insert(now);
                    if elapsed(gone, now) < hold {
                        return true;
                    }
                    out.push(Transition {
                        key: key.clone(),
                        state: AlertState::Resolved,
                        message: format!("resolved: {}", entry.message),
                        renotify: false,
                    });
                    false
                }
            }
        });
        out
    }

    /// The alerts firing now (to save).
    pub fn firing(&self) -> Vec<Firing> {
        self.entries
            .iter()
            .filter_map(|(key, entry)| match entry.stage {
                Stage::Firing {
                    fired_at,
                    notified_at,
                    ..
                } if key.trigger != AlertTrigger::DriftHealed => Some(Firing {
                    key: key.clone(),
                    message: entry.message.clone(),
                    fired_at,
                    notified_at,
                }),
                _ => None,
            })
            .collect()
    }

    /// When the next decision may fall due without any status change (a hold-down ending, a
    /// re-notification), so the engine can wake then. Keys that cannot be judged now
    /// (`undecided`, as given to `observe`) are left out: their due time may be past, and they
    /// wait for a status change, not for a clock.
    pub fn next_due(&self, undecided: impl Fn(&ConditionKey) -> bool) -> Option<SystemTime> {
        self.entries
            .iter()
            .filter(|(key, _)| !undecided(key))
            .filter_map(|(_, entry)| match entry.stage {
                Stage::Pending { since } => Some(since + self.policy.hold),
                Stage::Firing {
                    gone_since: Some(gone),
                    ..
                } => Some(gone + self.policy.hold),
                Stage::Firing { notified_at, .. } => {
                    self.policy.renotify.map(|every| notified_at + every)
                }
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOLD: Duration = Duration::from_secs(30);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    fn drift(app: &str) -> ConditionKey {
        ConditionKey::new(
            AlertTrigger::Drift,
            Some(app),
            Some("nomad_job/default/web"),
        )
    }

    fn holding(keys: &[&ConditionKey]) -> Conditions {
        keys.iter()
            .map(|k| ((*k).clone(), format!("{:?} {:?}", k.trigger, k.app)))
            .collect()
    }

    fn tracker(renotify: Option<Duration>) -> Tracker {
        Tracker::new(
            DedupPolicy {
                hold: HOLD,
                renotify,
            },
            Vec::new(),
        )
    }

    fn states(out: &[Transition]) -> Vec<(AlertState, bool)> {
        out.iter().map(|t| (t.state, t.renotify)).collect()
    }

    #[test]
    fn one_alert_per_state_change_across_many_cycles() {
        let mut t = tracker(None);
        let key = drift("web");
        let on = holding(&[&key]);
        let never = |_: &ConditionKey| false;
        assert!(t.observe(at(0), &on, never).is_empty(), "held down");
        assert!(t.observe(at(29), &on, never).is_empty(), "still held down");
        let fired = t.observe(at(30), &on, never);
        assert_eq!(states(&fired), vec![(AlertState::Firing, false)]);
        assert_eq!(fired[0].key, key);
        for s in 31..500 {
            assert!(t.observe(at(s), &on, never).is_empty(), "cycle {s}");
        }
        let off = Conditions::new();
        assert!(t.observe(at(500), &off, never).is_empty(), "resolve held");
        let resolved = t.observe(at(530), &off, never);
        assert_eq!(states(&resolved), vec![(AlertState::Resolved, false)]);
        assert!(resolved[0].message.starts_with("resolved: "));
        assert!(t.observe(at(531), &off, never).is_empty());
        assert!(t.firing().is_empty());
    }

    #[test]
    fn a_flapping_condition_sends_nothing_and_a_flap_while_firing_no_pair() {
        let mut t = tracker(None);
        let key = drift("web");
        let on = holding(&[&key]);
        let off = Conditions::new();
        let never = |_: &ConditionKey| false;
        for s in 0..20 {
            let current = if s % 2 == 0 { &on } else { &off };
            assert!(t.observe(at(s * 10), current, never).is_empty(), "flap {s}");
        }
        assert_eq!(t.observe(at(300), &on, never).len(), 0);
        assert_eq!(t.observe(at(330), &on, never).len(), 1, "fired once held");
        for s in 0..20 {
            let current = if s % 2 == 0 { &off } else { &on };
            assert!(
                t.observe(at(400 + s * 10), current, never).is_empty(),
                "flap {s} while firing"
            );
        }
    }

    #[test]
    fn a_firing_alert_is_renotified_after_the_interval() {
        let mut t = tracker(Some(Duration::from_secs(3600)));
        let key = drift("web");
        let on = holding(&[&key]);
        let never = |_: &ConditionKey| false;
        t.observe(at(0), &on, never);
        assert_eq!(t.observe(at(30), &on, never).len(), 1);
        assert_eq!(t.next_due(never), Some(at(3630)));
        // An app that cannot be judged now has no due time: the engine waits for its status.
        assert_eq!(t.next_due(|k: &ConditionKey| *k == key), None);
        assert!(t.observe(at(3629), &on, never).is_empty());
        assert_eq!(
            states(&t.observe(at(3630), &on, never)),
            vec![(AlertState::Firing, true)]
        );
        assert!(t.observe(at(3631), &on, never).is_empty());
        assert_eq!(t.observe(at(7230), &on, never).len(), 1);
    }

    #[test]
    fn restored_alerts_neither_fire_again_nor_are_forgotten() {
        let key = drift("web");
        let other = drift("db");
        let restored = vec![
            Firing {
                key: key.clone(),
                message: "m".into(),
                fired_at: at(0),
                notified_at: at(0),
            },
            Firing {
                key: other.clone(),
                message: "db drifted".into(),
                fired_at: at(0),
                notified_at: at(0),
            },
        ];
        let policy = DedupPolicy {
            hold: HOLD,
            renotify: None,
        };
        let mut t = Tracker::new(policy, restored);
        // db cannot be judged yet (its live state is loading): kept as it is.
        let undecided = |k: &ConditionKey| k.app.as_deref() == Some("db");
        let on = holding(&[&key]);
        for s in 100..200 {
            assert!(t.observe(at(s), &on, undecided).is_empty(), "no storm");
        }
        assert_eq!(t.firing().len(), 2);
        // Once db can be judged and is fine, it resolves (after the hold-down).
        let never = |_: &ConditionKey| false;
        assert!(t.observe(at(200), &on, never).is_empty());
        let resolved = t.observe(at(230), &on, never);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].key, other);
        assert_eq!(resolved[0].message, "resolved: db drifted");
        assert_eq!(t.firing().len(), 1);
    }

    #[test]
    fn a_healed_drift_fires_at_once_and_never_resolves() {
        let mut t = tracker(None);
        let key = ConditionKey::new(AlertTrigger::DriftHealed, Some("web"), Some("r"));
        let never = |_: &ConditionKey| false;
        assert_eq!(t.observe(at(0), &holding(&[&key]), never).len(), 1);
        assert!(t.observe(at(1), &Conditions::new(), never).is_empty());
        assert!(t.observe(at(100), &Conditions::new(), never).is_empty());
        assert!(t.firing().is_empty());
    }

    #[test]
    fn without_a_hold_down_a_condition_fires_on_first_sight() {
        let mut t = Tracker::new(
            DedupPolicy {
                hold: Duration::ZERO,
                renotify: None,
            },
            Vec::new(),
        );
        let key = drift("web");
        let never = |_: &ConditionKey| false;
        assert_eq!(t.observe(at(0), &holding(&[&key]), never).len(), 1);
        assert_eq!(t.observe(at(1), &Conditions::new(), never).len(), 1);
    }
}
