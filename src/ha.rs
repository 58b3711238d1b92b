//! High availability: one leader among several `drover serve` replicas, elected with a Nomad
//! variable lock (`PUT /v1/var/:path?lock-acquire|lock-renew|lock-release`, api-facts §1.11).
//!
//! Safety rule: no two writers. A leader renews every TTL/3 and, if no renew has succeeded for
//! 2/3 of the TTL, steps down (cancels everything that writes) before the lock can expire; the
//! lock delay then keeps the lock free long enough for the old leader's last writes to finish.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::providers::nomad::NomadConfig;

/// This replica's part: the leader writes; a follower reads, plans and serves, never writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reconciles and writes (also a single process without `ha:`).
    Leader,
    /// Waits for the lock; its controller plans but never applies, prunes, runs hooks or
    /// notifies, and its web server refuses changes with 503.
    Follower,
}

/// Who leads, as this replica knows it. The controller context carries it in a `watch`, so a
/// follower that takes the lock starts writing without a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    /// This replica's part.
    pub role: Role,
    /// This replica's holder id in the lock (`None`: no `ha:` block, a single process).
    pub this_replica: Option<String>,
    /// The holder id of the current leader, when known.
    pub leader: Option<String>,
}

impl Leadership {
    /// A single process without `ha:`: always the leader.
    pub fn single() -> Leadership {
        Leadership {
            role: Role::Leader,
            this_replica: None,
            leader: None,
        }
    }

    /// A replica that has not (yet) taken the lock.
    pub fn follower(this_replica: &str) -> Leadership {
        Leadership {
            role: Role::Follower,
            this_replica: Some(this_replica.to_string()),
            leader: None,
        }
    }

    /// Whether this replica may write to the cluster and send notifications.
    pub fn leads(&self) -> bool {
        self.role == Role::Leader
    }
}

/// What one attempt at the lock found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Taken: the lock ID to renew and release with.
    Acquired(String),
    /// Held by another replica (or in its lock delay); its holder id when the variable names one.
    Held(Option<String>),
}

/// `ha:` in drover.yaml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaFile {
    /// `nomad-variable` (implemented) or `consul-session`.
    pub lock: String,
    /// The variable path of the lock.
    #[serde(default)]
    pub path: Option<String>,
    /// Lock TTL (Nomad accepts 10 s to 24 h).
    #[serde(default, with = "crate::config::opt_duration")]
    pub ttl: Option<Duration>,
    /// How long the lock stays unavailable after it expired.
    #[serde(default, with = "crate::config::opt_duration")]
    pub lock_delay: Option<Duration>,
}

/// Resolved HA settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaSettings {
    /// Variable path of the lock.
    pub path: String,
    /// Lock TTL.
    pub ttl: Duration,
    /// Lock delay.
    pub lock_delay: Duration,
}

impl HaFile {
    /// Check and resolve the block; an error names what is wrong.
    pub fn resolve(self) -> Result<HaSettings, String> {
        if self.lock != "nomad-variable" {
            return Err(format!(
                "ha.lock {:?} is not supported: use nomad-variable (consul-session is not implemented yet)",
                self.lock
            ));
        }
        let ttl = self.ttl.unwrap_or(Duration::from_secs(15));
        if ttl < Duration::from_secs(10) {
            return Err("ha.ttl must be at least 10s (Nomad's minimum lock TTL)".into());
        }
        Ok(HaSettings {
            path: self.path.unwrap_or_else(|| "drover/leader".into()),
            ttl,
            lock_delay: self.lock_delay.unwrap_or(Duration::from_secs(15)),
        })
    }
}

/// The lock service failed (not "someone else holds it", which is an answer).
#[derive(Debug, thiserror::Error)]
pub enum HaError {
    /// The request did not complete.
    #[error("leader lock {path}: {source}")]
    Request {
        /// The variable path.
        path: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// Nomad answered with an unexpected status.
    #[error("leader lock {path}: Nomad answered {status}: {body}")]
    Status {
        /// The variable path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The answer's text.
        body: String,
    },
}

/// The leader lock of one replica.
#[derive(Clone)]
pub struct LeaderLock {
    http: reqwest::Client,
    nomad: NomadConfig,
    settings: HaSettings,
}

/// Whether a leader must step down: no successful renew for 2/3 of the TTL, so it stops writing
/// before the lock can expire on the server (whose TTL started after our request left).
pub fn must_step_down(last_renewed: Instant, now: Instant, ttl: Duration) -> bool {
    now.saturating_duration_since(last_renewed) >= ttl * 2 / 3
}

impl LeaderLock {
    /// A lock client for `settings` against the Nomad of `nomad`.
    pub fn new(nomad: NomadConfig, settings: HaSettings) -> LeaderLock {
        // reqwest is built without a default TLS provider and panics without one.
        crate::providers::install_crypto_provider();
        let http = reqwest::Client::builder()
            // One attempt never outlives a sixth of the TTL: two may fail before stepping down.
            .timeout(settings.ttl / 6)
            .build()
            .unwrap_or_default();
        LeaderLock {
            http,
            nomad,
            settings,
        }
    }

    async fn put(&self, operation: &str, body: Value) -> Result<(u16, Value), HaError> {
        let url = format!(
            "{}/v1/var/{}?{operation}&namespace={}",
            self.nomad.address.trim_end_matches('/'),
            self.settings.path,
            self.nomad.namespace
        );
        let mut request = self.http.put(url).json(&body);
        if let Some(token) = &self.nomad.token {
            request = request.header("X-Nomad-Token", token.0.as_str());
        }
        let path = self.settings.path.clone();
        let response = request.send().await.map_err(|source| HaError::Request {
            path: path.clone(),
            source,
        })?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|source| HaError::Request {
            path: path.clone(),
            source,
        })?;
        match status {
            200 | 409 => Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null))),
            _ => Err(HaError::Status {
                path,
                status,
                body: text.chars().take(200).collect(),
            }),
        }
    }

    /// Try once: the lock ID when taken, else who holds it (the lock delay also answers "held").
    pub async fn try_acquire(&self, holder: &str) -> Result<Attempt, HaError> {
        let lock = json!({
            "TTL": format!("{}s", self.settings.ttl.as_secs()),
            "LockDelay": format!("{}ms", self.settings.lock_delay.as_millis()),
        });
        let (status, body) = self
            .put(
                "lock-acquire",
                json!({"Items": {"holder": holder}, "Lock": lock}),
            )
            .await?;
        let holder_of = |body: &Value| body["Items"]["holder"].as_str().map(String::from);
        Ok(match body["Lock"]["ID"].as_str() {
            Some(id) if status == 200 => Attempt::Acquired(id.to_string()),
            // Without a lock on the variable (its lock delay runs) its last holder's name stays in
            // the items, but nobody leads.
            _ if !body["Lock"].is_null() => Attempt::Held(holder_of(&body)),
            _ => Attempt::Held(None),
        })
    }

    /// Renew; `false` when the lock is no longer ours.
    pub async fn renew(&self, id: &str) -> Result<bool, HaError> {
        let (status, _) = self.put("lock-renew", json!({"Lock": {"ID": id}})).await?;
        Ok(status == 200)
    }

    /// Release on a clean shutdown so a follower need not wait for the TTL.
    pub async fn release(&self, id: &str) -> Result<(), HaError> {
        self.put("lock-release", json!({"Lock": {"ID": id}}))
            .await
            .map(drop)
    }

    /// Wait until this replica holds the lock (trying every TTL/3), publishing who leads
    /// meanwhile; `None` on shutdown.
    pub async fn campaign(
        &self,
        holder: &str,
        leadership: &watch::Sender<Leadership>,
        shutdown: &CancellationToken,
    ) -> Option<String> {
        loop {
            match self.try_acquire(holder).await {
                Ok(Attempt::Acquired(id)) => return Some(id),
                Ok(Attempt::Held(leader)) => {
                    tracing::debug!(?leader, "another replica leads; following");
                    leadership.send_if_modified(|now| {
                        let changed = now.leader != leader;
                        now.leader.clone_from(&leader);
                        changed
                    });
                }
                Err(error) => tracing::warn!(%error, "leader lock unreachable; following"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(self.settings.ttl / 3) => {}
            }
        }
    }

    /// The replica's whole life under `ha:`: follow until the lock is taken, restore the state a
    /// leader needs, lead (the role flips, the controller starts writing) and renew until
    /// shutdown; a leader that loses the lock flips back to follower and cancels `shutdown`, so
    /// the process exits (code 3) and its scheduler restarts it as a follower.
    pub async fn run(
        self,
        holder: String,
        store: crate::store::Store,
        leadership: watch::Sender<Leadership>,
        shutdown: CancellationToken,
    ) {
        loop {
            let Some(id) = self.campaign(&holder, &leadership, &shutdown).await else {
                return;
            };
            if let Err(error) = restore_cluster_state(&store).await {
                // Leading without the previous leader's state could adopt or prune wrongly.
                tracing::error!(%error, "took the leader lock but cannot restore the cluster state; releasing it");
                if let Err(error) = self.release(&id).await {
                    tracing::warn!(%error, "releasing the leader lock");
                }
                continue;
            }
            tracing::info!(path = %self.settings.path, holder = %holder, "became the leader");
            leadership.send_replace(Leadership {
                role: Role::Leader,
                this_replica: Some(holder.clone()),
                leader: Some(holder),
            });
            self.hold(id, leadership, shutdown).await;
            return;
        }
    }

    /// Renew every TTL/3 until shutdown; when the lock is lost or cannot be renewed in time,
    /// stop writing at once (role follower) and cancel `shutdown`, before the TTL runs out.
    pub async fn hold(
        self,
        id: String,
        leadership: watch::Sender<Leadership>,
        shutdown: CancellationToken,
    ) {
        let step_down = |why: &str| {
            tracing::error!("{why}: stepping down");
            leadership.send_modify(|now| {
                now.role = Role::Follower;
                now.leader = None;
            });
            shutdown.cancel();
        };
        let mut last_renewed = Instant::now();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => {
                    if let Err(error) = self.release(&id).await {
                        tracing::warn!(%error, "releasing the leader lock");
                    }
                    return;
                }
                () = tokio::time::sleep(self.settings.ttl / 3) => {}
            }
            let attempt = Instant::now();
            match self.renew(&id).await {
                Ok(true) => last_renewed = attempt,
                Ok(false) => return step_down("the leader lock is held by another replica"),
                Err(error) => tracing::warn!(%error, "renewing the leader lock"),
            }
            if must_step_down(last_renewed, Instant::now(), self.settings.ttl) {
                return step_down("the leader lock could not be renewed in time");
            }
        }
    }
}

/// The state a leader needs (markers, ownership, pins, `once` hooks) as the previous leader left
/// it, read into the local store right after taking the lock and before anything is applied.
///
/// TODO(cluster_state): a no-op until `crate::cluster_state` (h-hastate) lands; then call its
/// restore-into-the-local-store function here. This is the only call site on the takeover path.
pub async fn restore_cluster_state(store: &crate::store::Store) -> Result<(), HaError> {
    let _ = store;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_steps_down_at_two_thirds_of_the_ttl_without_a_renew() {
        let start = Instant::now();
        let ttl = Duration::from_secs(15);
        assert!(!must_step_down(
            start,
            start + Duration::from_millis(9_999),
            ttl
        ));
        assert!(must_step_down(start, start + Duration::from_secs(10), ttl));
    }

    #[test]
    fn only_nomad_variable_locks_with_a_ttl_of_ten_seconds_or_more() {
        let file = |lock: &str, ttl: u64| HaFile {
            lock: lock.into(),
            path: None,
            ttl: Some(Duration::from_secs(ttl)),
            lock_delay: None,
        };
        assert!(file("consul-session", 15).resolve().is_err());
        assert!(file("nomad-variable", 5).resolve().is_err());
        let settings = file("nomad-variable", 10).resolve().unwrap();
        assert_eq!(settings.path, "drover/leader");
        assert_eq!(settings.lock_delay, Duration::from_secs(15));
    }
}
