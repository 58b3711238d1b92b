//! One task per app, a concurrency limit, level-triggered reconcile cycles.
//!
//! Start reading at [`reconcile::reconcile`]: load → plan → apply → assess → publish.

pub mod limit;
pub mod probes;
pub mod reconcile;
pub mod removal;
pub mod runtime;
pub mod schedule;
mod status;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use status::{
    AppStatus, ChangeKind, Kept, Pending, Phase, ProbeKind, ProbeStatus, RepoStatus,
    ResourceStatus, SyncOutcome, SyncResult, SyncStatus, Trigger,
};

use crate::live::LiveStore;
use crate::providers::consul::ConsulClient;
use crate::providers::nomad::NomadClient;
use crate::providers::s3::S3Client;
use crate::providers::vault::VaultClient;
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::telemetry::metrics::ApiSystem;

/// Controller tuning.
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    /// At most this many apps reconcile at once; the limit starts lower and adapts to the
    /// servers' answers (see [`limit`]).
    pub concurrency: usize,
    /// Requeue of a settled app (correctness does not depend on triggers).
    pub resync_interval: Duration,
    /// Requeue while something converges (deployments, plugin waits).
    pub progress_interval: Duration,
    /// Longest backoff after failures.
    pub max_backoff: Duration,
    /// Colour diffs (a TTY).
    pub colour: bool,
    /// Values hidden in every diff drover shows (`redact.keys` in drover.yaml).
    pub redaction: crate::plan::render::Redaction,
    /// Refuse to prune when more than this share of known apps left Git at once.
    pub max_prune_share: f64,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        ControllerSettings {
            concurrency: 16,
            resync_interval: Duration::from_secs(180),
            progress_interval: Duration::from_secs(5),
            max_backoff: Duration::from_secs(300),
            colour: false,
            redaction: crate::plan::render::Redaction::default(),
            max_prune_share: 0.5,
        }
    }
}

/// Everything a reconcile needs, shared by all app tasks; no globals.
#[derive(Clone)]
pub struct Context {
    /// Nomad client.
    pub nomad: NomadClient,
    /// Consul client, when one is configured (config entries need it).
    pub consul: Option<ConsulClient>,
    /// History, markers, ownership, pins.
    pub store: Store,
    /// The live cache.
    pub live: LiveStore,
    /// Tuning.
    pub settings: Arc<ControllerSettings>,
    /// The one read model of app status for web, CLI, metrics and alerts.
    pub statuses: watch::Sender<BTreeMap<String, AppStatus>>,
    /// Problems of the repository as a whole, derived with each head revision.
    pub repo: watch::Sender<RepoStatus>,
    /// Limits concurrent reconciles.
    pub permits: limit::ConcurrencyLimit,
    /// Vault, for the preflight of `vault_secret` requirements (`None`: no Vault configured).
    pub vault: Option<VaultClient>,
    /// S3, for buckets (`None`: buckets are shown as not managed).
    pub s3: Option<S3Client>,
    /// Recent alerts and their deliveries (the page and `/api/v1/alerts` read it).
    pub alerts: crate::notify::AlertLog,
    /// What `/metrics` serves; the clients of this context count their requests in it.
    pub metrics: Metrics,
    /// The apps' probes and their latest results (the status derivation reads them).
    pub probes: probes::ProbeRunner,
    /// Whether this replica leads (`ha:`); only a leader writes to the cluster or notifies.
    pub leadership: watch::Sender<crate::ha::Leadership>,
}

impl Context {
    /// A context with an empty status map.
    pub fn new(
        nomad: NomadClient,
        store: Store,
        live: LiveStore,
        settings: ControllerSettings,
    ) -> Context {
        let statuses = watch::Sender::new(BTreeMap::new());
        let metrics = Metrics::new(statuses.subscribe());
        let permits = limit::ConcurrencyLimit::new(settings.concurrency, metrics.clone());
        Context {
            nomad: nomad.counting_requests(metrics.requests(ApiSystem::Nomad)),
            consul: None,
            store,
            live,
            settings: Arc::new(settings),
            statuses,
            repo: watch::Sender::new(RepoStatus::default()),
            permits,
            vault: None,
            s3: None,
            alerts: crate::notify::AlertLog::default(),
            metrics,
            probes: probes::ProbeRunner::new(crate::health::probes::ProbeClients::system()),
            leadership: watch::Sender::new(crate::ha::Leadership::single()),
        }
    }

    /// Whether this replica may write to the cluster and send notifications now.
    pub fn leads(&self) -> bool {
        self.leadership.borrow().leads()
    }

    /// The same context with probes trusting `clients`' roots (drover.yaml's `probes.ca_file`).
    pub fn with_probe_clients(mut self, clients: crate::health::probes::ProbeClients) -> Context {
        self.probes.stop_all();
        self.probes = probes::ProbeRunner::new(Some(clients));
        self
    }

    /// The same context with a Consul client (its requests counted in `metrics`).
    pub fn with_consul(mut self, consul: Option<ConsulClient>) -> Context {
        let counter = self.metrics.requests(ApiSystem::Consul);
        self.consul = consul.map(|c| c.counting_requests(counter));
        self
    }

    /// The same context with a Vault client (its requests counted in `metrics`).
    pub fn with_vault(mut self, vault: Option<VaultClient>) -> Context {
        let counter = self.metrics.requests(ApiSystem::Vault);
        self.vault = vault.map(|v| v.counting_requests(counter));
        self
    }

    /// The same context with an S3 client: buckets are read each cycle and managed (its
    /// requests counted in `metrics`).
    pub fn with_s3(mut self, s3: Option<S3Client>) -> Context {
        if s3.is_some() {
            self.live.use_s3();
        }
        let counter = self.metrics.requests(ApiSystem::S3);
        self.s3 = s3.map(|s3| s3.counting_requests(counter));
        self
    }

    /// Publish one app's status.
    pub fn publish(&self, status: AppStatus) {
        self.statuses.send_modify(|all| {
            all.insert(status.name.clone(), status);
        });
    }

    /// Publish one app's status unless `left_git()` says the app has left Git meanwhile. Checked
    /// while the statuses are locked, so a reconcile that ends late never brings back the status
    /// of an app that was removed (or replaces the one saying it was removed).
    pub fn publish_unless(&self, status: AppStatus, left_git: impl FnOnce() -> bool) {
        self.statuses.send_if_modified(|all| {
            if left_git() {
                return false;
            }
            all.insert(status.name.clone(), status);
            true
        });
    }

    /// Forget an app's status (it left Git and was pruned).
    pub fn unpublish(&self, app: &str) {
        self.statuses.send_modify(|all| {
            all.remove(app);
        });
    }

    /// The current status of an app.
    pub fn status_of(&self, app: &str) -> Option<AppStatus> {
        self.statuses.borrow().get(app).cloned()
    }
}
