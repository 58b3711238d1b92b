//! High availability: one leader among several `drover serve` replicas, elected with a Nomad
//! variable lock (`PUT /v1/var/:path?lock-acquire|lock-renew|lock-release`, api-facts §1.11) or a
//! Consul session holding a KV key (`PUT /v1/session/create`, `PUT /v1/kv/:key?acquire=`,
//! api-facts §2.4).
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

use crate::providers::consul::ConsulConfig;
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
    /// This replica's id in the lock, which followers name as the leader (e.g. its URL).
    #[serde(default)]
    pub advertise: Option<String>,
}

/// Which lock elects the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// A Nomad variable lock at `path`.
    NomadVariable,
    /// A Consul session (TTL, lock delay) acquiring the KV key `path`; Consul invalidates a
    /// session only about 2×TTL after its last renew.
    ConsulSession,
}

/// Resolved HA settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaSettings {
    /// The lock's kind.
    pub kind: LockKind,
    /// Variable path (Nomad) or KV key (Consul) of the lock.
    pub path: String,
    /// Lock TTL.
    pub ttl: Duration,
    /// Lock delay.
    pub lock_delay: Duration,
    /// `ha.advertise`: this replica's id in the lock (default: see [`holder_id`]).
    pub advertise: Option<String>,
}

/// This replica's id in the lock, which followers show and name in their 503s: `ha.advertise`,
/// else the listen address, else (listening on all interfaces, where that names no replica)
/// Nomad's `NOMAD_ADDR_http` of the allocation or `HOSTNAME` with the port.
pub fn holder_id(
    advertise: Option<&str>,
    listen: std::net::SocketAddr,
    env: impl Fn(&str) -> Option<String>,
) -> String {
    if let Some(advertise) = advertise.filter(|a| !a.is_empty()) {
        return advertise.to_string();
    }
    if !listen.ip().is_unspecified() {
        return listen.to_string();
    }
    let set = |key: &str| env(key).filter(|v| !v.is_empty());
    set("NOMAD_ADDR_http")
        .or_else(|| set("HOSTNAME").map(|host| format!("{host}:{}", listen.port())))
        .unwrap_or_else(|| listen.to_string())
}

impl HaFile {
    /// Check and resolve the block; an error names what is wrong.
    pub fn resolve(self) -> Result<HaSettings, String> {
        let kind = match self.lock.as_str() {
            "nomad-variable" => LockKind::NomadVariable,
            "consul-session" => LockKind::ConsulSession,
            other => {
                return Err(format!(
                    "ha.lock {other:?} is not supported: use nomad-variable or consul-session"
                ));
            }
        };
        let ttl = self.ttl.unwrap_or(Duration::from_secs(15));
        if ttl < Duration::from_secs(10) {
            return Err("ha.ttl must be at least 10s (the minimum lock and session TTL)".into());
        }
        Ok(HaSettings {
            kind,
            path: self.path.unwrap_or_else(|| "drover/leader".into()),
            ttl,
            lock_delay: self.lock_delay.unwrap_or(Duration::from_secs(15)),
            advertise: self.advertise,
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

/// Where the lock lives.
#[derive(Clone)]
enum LockService {
    Nomad(NomadConfig),
    Consul(ConsulConfig),
}

/// The leader lock of one replica.
#[derive(Clone)]
pub struct LeaderLock {
    http: reqwest::Client,
    service: LockService,
    settings: HaSettings,
}

/// Whether a leader must step down: no successful renew for 2/3 of the TTL, so it stops writing
/// before the lock can expire on the server (whose TTL started after our request left).
pub fn must_step_down(last_renewed: Instant, now: Instant, ttl: Duration) -> bool {
    now.saturating_duration_since(last_renewed) >= ttl * 2 / 3
}

impl LeaderLock {
    /// A lock client for `settings` against the Nomad of `nomad` or the Consul of `consul`;
    /// `None` for a Consul session lock without a Consul (`CONSUL_HTTP_ADDR`).
    pub fn new(
        nomad: NomadConfig,
        consul: Option<ConsulConfig>,
        settings: HaSettings,
    ) -> Option<LeaderLock> {
        // reqwest is built without a default TLS provider and panics without one.
        crate::providers::install_crypto_provider();
        let http = reqwest::Client::builder()
            // One attempt never outlives a sixth of the TTL: two may fail before stepping down.
            .timeout(settings.ttl / 6)
            .build()
            .unwrap_or_default();
        let service = match settings.kind {
            LockKind::NomadVariable => LockService::Nomad(nomad),
            LockKind::ConsulSession => LockService::Consul(consul?),
        };
        Some(LeaderLock {
            http,
            service,
            settings,
        })
    }

    /// Send one request; the status and the answer's text, or an error if it did not complete.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(u16, String), HaError> {
        let path = self.settings.path.clone();
        let response = request.send().await.map_err(|source| HaError::Request {
            path: path.clone(),
            source,
        })?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|source| HaError::Request { path, source })?;
        Ok((status, text))
    }

    fn unexpected(&self, status: u16, text: &str) -> HaError {
        HaError::Status {
            path: self.settings.path.clone(),
            status,
            body: text.chars().take(200).collect(),
        }
    }

    async fn put(&self, operation: &str, body: Value) -> Result<(u16, Value), HaError> {
        let LockService::Nomad(nomad) = &self.service else {
            return Err(self.unexpected(0, "a Nomad lock operation on a Consul lock"));
        };
        let url = format!(
            "{}/v1/var/{}?{operation}&namespace={}",
            nomad.address.trim_end_matches('/'),
            self.settings.path,
            nomad.namespace
        );
        let mut request = self.http.put(url).json(&body);
        if let Some(token) = &nomad.token {
            request = request.header("X-Nomad-Token", token.0.as_str());
        }
        let (status, text) = self.send(request).await?;
        match status {
            200 | 409 => Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null))),
            _ => Err(self.unexpected(status, &text)),
        }
    }

    /// A Consul request to `path` (with `?ns=` when a namespace is set).
    fn consul(
        &self,
        consul: &ConsulConfig,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let mut request = self.http.request(
            method,
            format!("{}{path}", consul.address.trim_end_matches('/')),
        );
        if let Some(ns) = &consul.namespace {
            request = request.query(&[("ns", ns)]);
        }
        if let Some(token) = &consul.token {
            request = request.header("X-Consul-Token", token.0.as_str());
        }
        request
    }

    /// Consul: create a session with the TTL and lock delay, and acquire the key with it.
    async fn consul_try_acquire(
        &self,
        consul: &ConsulConfig,
        holder: &str,
    ) -> Result<Attempt, HaError> {
        let session = json!({
            "Name": "drover-leader",
            "TTL": format!("{}s", self.settings.ttl.as_secs()),
            "LockDelay": format!("{}ms", self.settings.lock_delay.as_millis()),
            "Behavior": "release",
        });
        let create = self
            .consul(consul, reqwest::Method::PUT, "/v1/session/create")
            .json(&session);
        let (status, text) = self.send(create).await?;
        let created: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let Some(session_id) = created["ID"].as_str().filter(|_| status == 200) else {
            return Err(self.unexpected(status, &text));
        };
        let key = format!("/v1/kv/{}", self.settings.path);
        let acquire = self
            .consul(consul, reqwest::Method::PUT, &key)
            .query(&[("acquire", session_id)])
            .body(holder.to_string());
        let (status, text) = self.send(acquire).await?;
        if status == 200 && text.trim() == "true" {
            return Ok(Attempt::Acquired(session_id.to_string()));
        }
        // Not ours: the session is not kept (a new one is made for the next attempt).
        let destroy = format!("/v1/session/destroy/{session_id}");
        if let Err(error) = self
            .send(self.consul(consul, reqwest::Method::PUT, &destroy))
            .await
        {
            tracing::debug!(%error, "destroying an unused session");
        }
        if status != 200 {
            return Err(self.unexpected(status, &text));
        }
        let (status, text) = self
            .send(self.consul(consul, reqwest::Method::GET, &key))
            .await?;
        let entry: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let entry = &entry[0];
        // Held when a session holds the key; during the lock delay nobody does.
        let holder = (status == 200 && entry["Session"].is_string())
            .then(|| entry["Value"].as_str())
            .flatten()
            .and_then(|v| {
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, v).ok()
            })
            .and_then(|v| String::from_utf8(v).ok());
        Ok(Attempt::Held(holder))
    }

    /// Try once: the lock ID when taken, else who holds it (the lock delay also answers "held").
    pub async fn try_acquire(&self, holder: &str) -> Result<Attempt, HaError> {
        if let LockService::Consul(consul) = &self.service {
            return self.consul_try_acquire(consul, holder).await;
        }
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
        if let LockService::Consul(consul) = &self.service {
            let renew = self.consul(
                consul,
                reqwest::Method::PUT,
                &format!("/v1/session/renew/{id}"),
            );
            // 404: the session was invalidated, so the key is no longer ours.
            return match self.send(renew).await? {
                (200, _) => Ok(true),
                (404, _) => Ok(false),
                (status, text) => Err(self.unexpected(status, &text)),
            };
        }
        let (status, _) = self.put("lock-renew", json!({"Lock": {"ID": id}})).await?;
        Ok(status == 200)
    }

    /// Release on a clean shutdown so a follower need not wait for the TTL.
    pub async fn release(&self, id: &str) -> Result<(), HaError> {
        if let LockService::Consul(consul) = &self.service {
            let key = format!("/v1/kv/{}", self.settings.path);
            let release = self
                .consul(consul, reqwest::Method::PUT, &key)
                .query(&[("release", id)]);
            self.send(release).await?;
            let destroy = format!("/v1/session/destroy/{id}");
            return self
                .send(self.consul(consul, reqwest::Method::PUT, &destroy))
                .await
                .map(drop);
        }
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
        takeover: Takeover,
        leadership: watch::Sender<Leadership>,
        shutdown: CancellationToken,
    ) {
        loop {
            let Some(id) = self.campaign(&holder, &leadership, &shutdown).await else {
                return;
            };
            if let Err(error) = restore_cluster_state(&takeover, &shutdown).await {
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

/// What a new leader needs to take over: the store to fill and where the previous leader kept
/// its state (`crate::cluster_state`).
pub struct Takeover {
    /// This replica's store.
    pub store: crate::store::Store,
    /// Nomad, where the state variables live.
    pub nomad: crate::providers::nomad::NomadClient,
    /// The variables' prefix.
    pub prefix: crate::cluster_state::StatePrefix,
}

/// Right after taking the lock and before writing anything: the cluster's markers, ownership,
/// pins and hooks replace the local ones, then a mirror copies each change back until
/// `shutdown` (a step-down cancels it). The only call site on the takeover path.
pub async fn restore_cluster_state(
    takeover: &Takeover,
    shutdown: &CancellationToken,
) -> Result<(), crate::cluster_state::ClusterStateError> {
    // The mirror ends with `shutdown`; nothing needs its handle.
    let _mirror = crate::cluster_state::take_over(
        &takeover.store,
        &takeover.nomad,
        takeover.prefix.clone(),
        shutdown.clone(),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_id_names_a_reachable_replica() {
        let any: std::net::SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: std::net::SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_string())
            }
        };
        let nomad = env(&[("NOMAD_ADDR_http", "10.0.0.7:25000"), ("HOSTNAME", "node1")]);
        assert_eq!(
            holder_id(Some("https://a.example"), any, nomad),
            "https://a.example"
        );
        assert_eq!(holder_id(Some(""), local, nomad), "127.0.0.1:9000");
        assert_eq!(holder_id(None, any, nomad), "10.0.0.7:25000");
        assert_eq!(
            holder_id(None, any, env(&[("HOSTNAME", "node1")])),
            "node1:8080"
        );
        assert_eq!(holder_id(None, any, env(&[])), "0.0.0.0:8080");
    }

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
    fn nomad_variable_or_consul_session_locks_with_a_ttl_of_ten_seconds_or_more() {
        let file = |lock: &str, ttl: u64| HaFile {
            lock: lock.into(),
            path: None,
            ttl: Some(Duration::from_secs(ttl)),
            lock_delay: None,
            advertise: None,
        };
        assert!(file("etcd", 15).resolve().is_err());
        assert_eq!(
            file("consul-session", 15).resolve().map(|s| s.kind),
            Ok(LockKind::ConsulSession)
        );
        assert!(file("nomad-variable", 5).resolve().is_err());
        let settings = file("nomad-variable", 10).resolve().unwrap();
        assert_eq!(settings.path, "drover/leader");
        assert_eq!(settings.lock_delay, Duration::from_secs(15));
    }
}
