//! Alerts: conditions derived from the app statuses (sync failed, drift, degraded health, a failed
//! probe, a refused prune), fired once per state change, resolved when they clear, and delivered
//! to the configured channels. [`AlertLog`] keeps the recent ones for the page and the API.

pub mod channels;
pub mod conditions;
pub mod dedup;
pub mod email;
pub mod engine;
pub mod settings;

use std::collections::VecDeque;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// What raised an alert (`on_<trigger>` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertTrigger {
    /// A sync failed.
    SyncFailed,
    /// The cluster drifted from Git and the drift was not healed.
    Drift,
    /// A drift was healed (only routed when configured).
    DriftHealed,
    /// The app's health became Degraded or Missing.
    HealthDegraded,
    /// A probe failed.
    ProbeFailed,
    /// A prune was refused by a guard.
    PruneRefused,
}

/// Whether an alert starts or ends a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition began (or is re-notified while it lasts).
    Firing,
    /// The condition cleared (`on_recovered`).
    Resolved,
}

/// How delivering an alert to one channel went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DeliveryResult {
    /// Not tried yet, or being retried.
    Pending,
    /// The channel accepted it.
    Delivered,
    /// Every attempt failed; the last error (never a secret: no URL tokens, no passwords).
    Failed {
        /// Why.
        error: String,
    },
}

/// One channel's delivery of one alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The channel's name from the configuration.
    pub channel: String,
    /// The outcome so far.
    #[serde(flatten)]
    pub result: DeliveryResult,
    /// Attempts made.
    pub attempts: u32,
}

/// One alert: a condition that began or ended, and where it was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Increasing with time.
    pub id: u64,
    /// What raised it.
    pub trigger: AlertTrigger,
    /// The app (`None`: the repository as a whole).
    pub app: Option<String>,
    /// The resource or probe concerned, if one.
    pub resource: Option<String>,
    /// Firing or resolved.
    pub state: AlertState,
    /// The human message (secret values never appear).
    pub message: String,
    /// When it was raised.
    #[serde(with = "unix_seconds")]
    pub at: SystemTime,
    /// Per channel.
    pub deliveries: Vec<Delivery>,
}

/// How many alerts the log keeps.
pub const ALERT_LOG_SIZE: usize = 200;

/// The recent alerts, newest last; subscribers (the page's event stream) see every change.
#[derive(Debug, Clone)]
pub struct AlertLog {
    recent: watch::Sender<VecDeque<AlertRecord>>,
}

impl Default for AlertLog {
    fn default() -> AlertLog {
        AlertLog {
            recent: watch::Sender::new(VecDeque::new()),
        }
    }
}

impl AlertLog {
    /// The recent alerts, oldest first.
    pub fn recent(&self) -> Vec<AlertRecord> {
        self.recent.borrow().iter().cloned().collect()
    }

    /// Notified on every change.
    pub fn subscribe(&self) -> watch::Receiver<VecDeque<AlertRecord>> {
        self.recent.subscribe()
    }

    /// Record a new alert (its id is assigned here) and return the id.
    pub fn push(&self, mut record: AlertRecord) -> u64 {
        let mut id = 0;
        self.recent.send_modify(|recent| {
            id = recent.back().map_or(1, |last| last.id + 1);
            record.id = id;
            recent.push_back(record);
            while recent.len() > ALERT_LOG_SIZE {
                recent.pop_front();
            }
        });
        id
    }

    /// Update the delivery to `channel` of alert `id` (no-op once the alert left the log).
    pub fn set_delivery(&self, id: u64, delivery: Delivery) {
        self.recent.send_if_modified(|recent| {
            let Some(record) = recent.iter_mut().find(|r| r.id == id) else {
                return false;
            };
            match record
                .deliveries
                .iter_mut()
                .find(|d| d.channel == delivery.channel)
            {
                Some(existing) => *existing = delivery,
                None => record.deliveries.push(delivery),
            }
            true
        });
    }
}

mod unix_seconds {
    use std::time::{SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let secs = u64::deserialize(d)?;
        Ok(UNIX_EPOCH + std::time::Duration::from_secs(secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(message: &str) -> AlertRecord {
        AlertRecord {
            id: 0,
            trigger: AlertTrigger::SyncFailed,
            app: Some("web".into()),
            resource: None,
            state: AlertState::Firing,
            message: message.into(),
            at: SystemTime::UNIX_EPOCH,
            deliveries: Vec::new(),
        }
    }

    #[test]
    fn the_log_numbers_alerts_and_keeps_the_newest() {
        let log = AlertLog::default();
        for i in 0..ALERT_LOG_SIZE + 5 {
            log.push(alert(&format!("a{i}")));
        }
        let recent = log.recent();
        assert_eq!(recent.len(), ALERT_LOG_SIZE);
        assert_eq!(recent[0].id, 6);
        assert_eq!(recent[0].message, "a5");
        assert_eq!(recent.last().map(|r| r.id), Some(ALERT_LOG_SIZE as u64 + 5));
    }

    #[test]
    fn a_delivery_is_recorded_and_replaced_per_channel() {
        let log = AlertLog::default();
        let id = log.push(alert("x"));
        log.set_delivery(
            id,
            Delivery {
                channel: "ops".into(),
                result: DeliveryResult::Pending,
                attempts: 1,
            },
        );
        log.set_delivery(
            id,
            Delivery {
                channel: "ops".into(),
                result: DeliveryResult::Failed {
                    error: "503".into(),
                },
                attempts: 3,
            },
        );
        let recent = log.recent();
        assert_eq!(recent[0].deliveries.len(), 1);
        assert_eq!(recent[0].deliveries[0].attempts, 3);
        let json = serde_json::to_value(&recent[0]).unwrap_or_default();
        assert_eq!(json["deliveries"][0]["result"], "failed");
        assert_eq!(json["deliveries"][0]["error"], "503");
        assert_eq!(json["trigger"], "sync_failed");
    }
}
