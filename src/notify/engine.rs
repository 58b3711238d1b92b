//! The alert engine: watches the status read model, turns condition changes into alerts
//! ([`dedup`](super::dedup)), records them in [`AlertLog`](super::AlertLog) and delivers them
//! along the routes, with retries.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::channels::{DeliveryError, HttpChannel, Notifier};
use super::conditions::{self, ConditionKey};
use super::dedup::{DedupPolicy, Firing, Tracker, Transition};
use super::settings::{ChannelConfig, NotifySettings, RetryPolicy};
use super::{AlertRecord, AlertState, AlertTrigger, Delivery, DeliveryResult};
use crate::controller::Context;
use crate::store::FiringAlert;

/// After a start, an app with no status yet is not judged for this long (its task has not
/// published): its saved alerts are neither resolved nor fired meanwhile.
const STARTUP_GRACE: Duration = Duration::from_secs(60);

/// Channels by name, ready to send.
type Channels = BTreeMap<String, Arc<dyn Notifier>>;

/// Start the engine; it stops with `shutdown`.
pub fn spawn(
    ctx: Context,
    settings: NotifySettings,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if !settings.enabled {
            return;
        }
        let channels = build_channels(&settings);
        let restored = ctx
            .store
            .firing_alerts()
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "cannot read the saved firing alerts; starting empty");
                Vec::new()
            })
            .into_iter()
            .filter_map(from_saved)
            .collect();
        let tracker = Tracker::new(
            DedupPolicy {
                hold: settings.hold,
                renotify: settings.renotify,
            },
            restored,
        );
        run(ctx, settings, channels, tracker, shutdown).await;
    })
}

fn build_channels(settings: &NotifySettings) -> Channels {
    crate::providers::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(settings.retry.timeout)
        .build()
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot build the alert HTTP client with a timeout");
            reqwest::Client::new()
        });
    settings
        .channels
        .iter()
        .map(|(name, config)| {
            let channel: Arc<dyn Notifier> = match config {
                ChannelConfig::Email { .. } => Arc::new(super::email::EmailChannel::new(
                    config.clone(),
                    settings.retry.timeout,
                )),
                _ => Arc::new(HttpChannel::new(client.clone(), config.clone())),
            };
            (name.clone(), channel)
        })
        .collect()
}

fn from_saved(saved: FiringAlert) -> Option<Firing> {
    let trigger: AlertTrigger = serde_json::from_value(serde_json::json!(saved.trigger)).ok()?;
    Some(Firing {
        key: ConditionKey {
            trigger,
            app: saved.app,
            resource: saved.resource,
        },
        message: saved.message,
        fired_at: saved.fired_at,
        notified_at: saved.notified_at,
    })
}

fn to_saved(firing: Firing) -> FiringAlert {
    FiringAlert {
        trigger: serde_json::to_value(firing.key.trigger)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        app: firing.key.app,
        resource: firing.key.resource,
        message: firing.message,
        fired_at: firing.fired_at,
        notified_at: firing.notified_at,
    }
}

async fn run(
    ctx: Context,
    settings: NotifySettings,
    channels: Channels,
    mut tracker: Tracker,
    shutdown: CancellationToken,
) {
    let started = SystemTime::now();
    let with_healed = settings
        .routes
        .iter()
        .any(|r| r.triggers.contains(&AlertTrigger::DriftHealed));
    let mut statuses_rx = ctx.statuses.subscribe();
    let mut repo_rx = ctx.repo.subscribe();
    let mut saved = tracker.firing();
    let settings = Arc::new(settings);
    loop {
        let now = SystemTime::now();
        let in_grace = now.duration_since(started).unwrap_or_default() < STARTUP_GRACE;
        let (transitions, due) = {
            let statuses = statuses_rx.borrow_and_update();
            let repo = repo_rx.borrow_and_update();
            let current = conditions::derive(&statuses, &repo, with_healed);
            let undecided = |key: &ConditionKey| match &key.app {
                Some(app) => match statuses.get(app) {
                    Some(status) => !conditions::app_is_known(status),
                    None => in_grace,
                },
                None => repo.revision.is_none() && in_grace,
            };
            let transitions = tracker.observe(now, &current, undecided);
            // Without the undecided keys: a past due time of one would wake the loop at once,
            // again and again, until its app can be judged.
            (transitions, tracker.next_due(undecided))
        };
        let firing = tracker.firing();
        if firing != saved {
            let rows = firing.iter().cloned().map(to_saved).collect();
            match ctx.store.save_firing_alerts(rows).await {
                Ok(()) => saved = firing,
                // Kept unsaved: the next turn tries again (within a minute at most, below).
                Err(error) => tracing::warn!(%error, "cannot save the firing alerts"),
            }
        }
        for transition in transitions {
            dispatch(&ctx, &settings, &channels, transition, now);
        }
        // Wake for a hold-down or re-notification falling due, and at the end of the grace.
        let mut wake = due;
        if in_grace {
            let grace_end = started + STARTUP_GRACE;
            wake = Some(wake.map_or(grace_end, |w| w.min(grace_end)));
        }
        let sleep = wake
            .map(|at| at.duration_since(SystemTime::now()).unwrap_or_default())
            .unwrap_or(Duration::from_secs(3600))
            // A clock step must not leave a decision waiting long.
            .min(Duration::from_secs(60))
            + Duration::from_millis(10);
        let changed = tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = statuses_rx.changed() => if changed.is_err() { return } else { true },
            changed = repo_rx.changed() => if changed.is_err() { return } else { true },
            _ = tokio::time::sleep(sleep) => false,
        };
        if changed {
            // Statuses change in bursts (a first sync publishes thousands): one evaluation of
            // every app per burst, not one per publish. Hold-downs are seconds long.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(EVALUATION_GATHER) => {}
            }
        }
    }
}

/// How long the engine lets a burst of status changes gather before it evaluates them.
const EVALUATION_GATHER: Duration = Duration::from_millis(50);

/// Record `transition` as an alert and start its deliveries.
fn dispatch(
    ctx: &Context,
    settings: &Arc<NotifySettings>,
    channels: &Channels,
    transition: Transition,
    now: SystemTime,
) {
    let Transition {
        key,
        state,
        message,
        renotify,
    } = transition;
    let resolved = state == AlertState::Resolved;
    let mut targets: Vec<String> = settings
        .routes
        .iter()
        .filter(|route| route.takes(key.trigger, key.app.as_deref(), resolved))
        .flat_map(|route| route.channels.iter().cloned())
        .collect();
    targets.sort();
    targets.dedup();
    // A follower (`ha:`) records and shows the alert; only the leader delivers it.
    if !ctx.leads() {
        targets.clear();
    }
    let record = AlertRecord {
        id: 0,
        trigger: key.trigger,
        app: key.app,
        resource: key.resource,
        state,
        message,
        at: now,
        deliveries: targets
            .iter()
            .map(|channel| Delivery {
                channel: channel.clone(),
                result: DeliveryResult::Pending,
                attempts: 0,
            })
            .collect(),
    };
    tracing::info!(
        trigger = ?record.trigger,
        app = record.app.as_deref().unwrap_or("-"),
        resource = record.resource.as_deref().unwrap_or("-"),
        state = ?record.state,
        renotify,
        channels = targets.len(),
        "alert"
    );
    let id = ctx.alerts.push(record.clone());
    let record = Arc::new(AlertRecord { id, ..record });
    for name in targets {
        let Some(channel) = channels.get(&name).cloned() else {
            continue;
        };
        let (ctx, record, retry) = (ctx.clone(), record.clone(), settings.retry);
        tokio::spawn(async move {
            deliver(&ctx, &name, channel.as_ref(), &record, retry).await;
        });
    }
}

/// Send `record` to one channel, retrying transient failures with backoff, and record each
/// attempt in the log.
async fn deliver(
    ctx: &Context,
    name: &str,
    channel: &dyn Notifier,
    record: &AlertRecord,
    retry: RetryPolicy,
) {
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let attempt = || async {
        let n = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        ctx.alerts.set_delivery(
            record.id,
            Delivery {
                channel: name.to_string(),
                result: DeliveryResult::Pending,
                attempts: n,
            },
        );
        channel.send(record).await
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(retry.first_delay)
        .with_factor(2.0)
        .with_max_times(retry.attempts.saturating_sub(1) as usize);
    let outcome = attempt
        .retry(backoff)
        .when(DeliveryError::is_transient)
        .notify(|error, after| {
            tracing::warn!(channel = name, alert = record.id, %error, retry_in = ?after, "alert delivery failed; retrying");
        })
        .await;
    let made = attempts.load(std::sync::atomic::Ordering::SeqCst);
    let result = match outcome {
        Ok(()) => DeliveryResult::Delivered,
        Err(error) => {
            tracing::warn!(channel = name, alert = record.id, %error, attempts = made, "alert not delivered");
            DeliveryResult::Failed {
                error: error.to_string(),
            }
        }
    };
    ctx.metrics
        .alert_delivered(name, result == DeliveryResult::Delivered);
    ctx.alerts.set_delivery(
        record.id,
        Delivery {
            channel: name.to_string(),
            result,
            attempts: made,
        },
    );
}
