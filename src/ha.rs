//! High availability: one leader among several `drover serve` replicas, elected with a Nomad
//! variable lock (`PUT /v1/var/:path?lock-acquire|lock-renew|lock-release`, api-facts §1.11).
//!
//! Safety rule: no two writers. A leader renews every TTL/3 and, if no renew has succeeded for
//! 2/3 of the TTL, steps down (cancels everything that writes) before the lock can expire; the
//! lock delay then keeps the lock free long enough for the old leader's last writes to finish.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::providers::nomad::NomadConfig;

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

    /// Try once: the lock ID when taken, `None` when another replica holds it (or its lock delay
    /// runs).
    pub async fn try_acquire(&self, holder: &str) -> Result<Option<String>, HaError> {
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
        Ok((status == 200)
            .then(|| body["Lock"]["ID"].as_str().map(String::from))
            .flatten())
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

    /// Wait until this replica holds the lock (trying every TTL/3); `None` on shutdown.
    pub async fn campaign(&self, holder: &str, shutdown: &CancellationToken) -> Option<String> {
        loop {
            match self.try_acquire(holder).await {
                Ok(Some(id)) => {
                    tracing::info!(path = %self.settings.path, "became the leader");
                    return Some(id);
                }
                Ok(None) => tracing::debug!("another replica leads; following"),
                Err(error) => tracing::warn!(%error, "leader lock unreachable; following"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(self.settings.ttl / 3) => {}
            }
        }
    }

    /// Renew every TTL/3 until shutdown; when the lock is lost or cannot be renewed in time,
    /// cancel `shutdown` (everything that writes stops) before the TTL runs out.
    pub async fn hold(self, id: String, shutdown: CancellationToken) {
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
                Ok(false) => {
                    tracing::error!("the leader lock is held by another replica: stepping down");
                    shutdown.cancel();
                    return;
                }
                Err(error) => tracing::warn!(%error, "renewing the leader lock"),
            }
            if must_step_down(last_renewed, Instant::now(), self.settings.ttl) {
                tracing::error!("the leader lock could not be renewed in time: stepping down");
                shutdown.cancel();
                return;
            }
        }
    }
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
