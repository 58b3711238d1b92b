//! The stack every command runs on, assembled in one place: the store, the Nomad client, the
//! live cache and the controller [`Context`] for `drover serve` ([`runtime::start`]) and
//! `drover plan`, and the desired state of a folder or Git ref for `drover plan` and
//! `drover validate`, loaded the way `serve` loads each fetched revision.
//!
//! [`runtime::start`]: crate::controller::runtime::start

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::controller::reconcile::{AppMemory, Mode, Outcome, reconcile};
use crate::controller::{Context, ControllerSettings};
use crate::desired::DesiredRevision;
use crate::desired::LoadedApp;
use crate::health::Health;
use crate::live::LiveStore;
use crate::providers::consul::{ConsulClient, ConsulConfig, ConsulError};
use crate::providers::nomad::{NomadClient, NomadConfig, NomadError};
use crate::source::{GitSource, Revision, RevisionError, SourceConfig, SourceError};
use crate::store::{Store, StoreError};

/// Assembling the stack failed.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The data directory could not be created.
    #[error("cannot create data dir {path}")]
    DataDir {
        /// The directory.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("opening the store")]
    Store(#[from] StoreError),
    /// The Nomad client could not be built.
    #[error("building the Nomad client")]
    Nomad(#[source] NomadError),
    /// The Vault client could not be built.
    #[error("building the Vault client")]
    Vault(#[source] crate::providers::vault::VaultError),
    /// The Consul client could not be built.
    #[error("building the Consul client")]
    Consul(#[source] ConsulError),
    /// The first full read of live state failed.
    #[error("reading live state from Nomad")]
    Live(#[source] NomadError),
    /// A desired-state folder could not be read.
    #[error(transparent)]
    Folder(#[from] RevisionError),
    /// A Git repository could not be opened or fetched.
    #[error(transparent)]
    Git(#[from] SourceError),
    /// The temporary Git mirror could not be created.
    #[error("creating a temporary mirror")]
    Mirror(#[source] std::io::Error),
    /// The fetch task did not finish.
    #[error("fetching the Git repository")]
    FetchTask(#[source] tokio::task::JoinError),
}

/// How the live cache is filled.
#[derive(Debug, Clone)]
pub enum LiveReading {
    /// Background watchers keep it current until the token is cancelled (`serve`).
    Watch(CancellationToken),
    /// One full list now, then never again (`plan`).
    Once,
}

/// The store file inside a data directory.
pub fn store_file(data_dir: &Path) -> PathBuf {
    data_dir.join("drover.db")
}

/// Open (creating the folder as needed) the store of a data directory.
pub fn open_store(data_dir: &Path) -> Result<Store, StackError> {
    std::fs::create_dir_all(data_dir).map_err(|source| StackError::DataDir {
        path: data_dir.display().to_string(),
        source,
    })?;
    Ok(Store::open(&store_file(data_dir))?)
}

/// The controller context over `store`: the Nomad client and the live cache, filled as `live`
/// says.
pub async fn context(
    nomad: NomadConfig,
    consul: Option<ConsulConfig>,
    store: Store,
    live: LiveReading,
    settings: ControllerSettings,
) -> Result<Context, StackError> {
    let nomad = NomadClient::new(nomad).map_err(StackError::Nomad)?;
    let consul = consul
        .map(ConsulClient::new)
        .transpose()
        .map_err(StackError::Consul)?;
    // The context first: it hands the clients the counters of its metrics, and the watchers
    // must send through those counting clients.
    let ctx = Context::new(nomad, store, LiveStore::default(), settings).with_consul(consul);
    let cache = &ctx.live;
    let consul_shutdown = match live {
        LiveReading::Watch(shutdown) => {
            cache.spawn_watchers(ctx.nomad.clone(), shutdown.clone());
            shutdown
        }
        LiveReading::Once => {
            cache
                .load_once(&ctx.nomad)
                .await
                .map_err(StackError::Live)?;
            // A one-shot command ends with the process; its config-entry lists answer at once.
            CancellationToken::new()
        }
    };
    if let Some(consul) = &ctx.consul {
        cache.watch_consul(consul.clone(), consul_shutdown);
    }
    // Entries drover owns are watched even when Git no longer declares their kind, so a restart
    // cannot hide one that is due for pruning.
    cache.want_config_kinds(
        owned_config_kinds(&ctx.store)
            .await
            .iter()
            .map(String::as_str),
    );
    Ok(ctx)
}

/// How long a one-shot plan waits for the first config-entry lists.
const LIVE_READY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The config-entry kinds of every entry the store says an app owns.
async fn owned_config_kinds(store: &Store) -> BTreeSet<String> {
    let mut kinds = BTreeSet::new();
    for app in store.known_apps().await.unwrap_or_default() {
        for id in store.owned(&app).await.unwrap_or_default() {
            if id.kind == crate::desired::ResourceKind::ConsulConfigEntry {
                kinds.insert(id.scope);
            }
        }
    }
    kinds
}

/// Where `plan` and `validate` read the desired state from.
#[derive(Debug, Clone)]
pub enum DesiredSource {
    /// A folder on disk (with apps/*/app.yaml).
    Dir(PathBuf),
    /// A Git repository (path or URL) at a branch, tag or `HEAD`.
    Git {
        /// The repository.
        url: String,
        /// The branch or tag.
        reference: String,
    },
}

impl DesiredSource {
    /// How messages name it (credentials in a URL removed).
    pub fn display(&self) -> String {
        match self {
            DesiredSource::Dir(dir) => dir.display().to_string(),
            DesiredSource::Git { url, .. } => crate::source::redact_url(url),
        }
    }
}

/// A loaded desired state, with the temporary Git mirror its revision was read from.
#[derive(Debug)]
pub struct LoadedDesired {
    /// The revision and its apps.
    pub desired: DesiredRevision,
    /// Kept for as long as the revision: a Git revision's files live in the mirror.
    _mirror: Option<tempfile::TempDir>,
}

/// Load the apps of a folder or of a Git ref, as `serve` loads each fetched revision.
pub async fn load_desired(source: &DesiredSource) -> Result<LoadedDesired, StackError> {
    let (revision, mirror) = match source {
        DesiredSource::Dir(dir) => (Revision::from_dir(dir)?, None),
        DesiredSource::Git { url, reference } => {
            let mirror = tempfile::tempdir().map_err(StackError::Mirror)?;
            let git = GitSource::open(
                SourceConfig {
                    url: url.clone(),
                    reference: reference.clone(),
                    ..SourceConfig::default()
                },
                mirror.path(),
            )?;
            let revision = tokio::task::spawn_blocking(move || git.fetch())
                .await
                .map_err(StackError::FetchTask)??;
            (revision, Some(mirror))
        }
    };
    // Packs from Git registries are read into memory: their mirrors need not outlive this.
    let pack_mirrors = tempfile::tempdir().map_err(StackError::Mirror)?;
    let packs = crate::source::packs::PackFetcher::new(pack_mirrors.path());
    let revision = tokio::task::spawn_blocking(move || packs.attach(revision))
        .await
        .map_err(StackError::FetchTask)?;
    Ok(LoadedDesired {
        desired: DesiredRevision::load(Arc::new(revision)),
        _mirror: mirror,
    })
}

/// One app's dry run, for `drover plan`.
#[derive(Debug)]
pub struct PlannedApp<'a> {
    /// The app as loaded.
    pub loaded: &'a LoadedApp,
    /// What reconcile decided, without writing.
    pub outcome: Outcome,
    /// Each `depends_on` entry and its health as planned now (`None`: invalid or missing).
    pub dependencies: Vec<(String, Option<Health>)>,
}

/// Dry-run every app (or only `only`) of `desired` through the same reconcile a sync runs, in
/// `Mode::DryRun`. The apps a selected app depends on are planned too (and not returned), so
/// their health is judged from the cluster as a sync would see it.
pub async fn dry_run<'a>(
    ctx: &Context,
    desired: &'a DesiredRevision,
    only: Option<&str>,
) -> Vec<PlannedApp<'a>> {
    let selected = |name: &str| only.is_none_or(|o| o == name);
    let needed: BTreeSet<&str> = desired
        .loaded
        .apps
        .iter()
        .filter(|loaded| selected(&loaded.name))
        .flat_map(|loaded| {
            let deps = loaded.result.as_ref().map(|a| a.depends_on.as_slice());
            std::iter::once(loaded.name.as_str())
                .chain(deps.unwrap_or_default().iter().map(String::as_str))
        })
        .collect();
    // One-shot: list every config-entry kind in use once before planning (the watchers answer
    // their first list at once), so no app plans against a kind not yet read.
    let kinds = desired
        .loaded
        .apps
        .iter()
        .filter_map(|loaded| loaded.result.as_ref().ok())
        .flat_map(|app| app.config_entry_kinds());
    ctx.live.want_config_kinds(kinds);
    ctx.live.wait_ready(LIVE_READY_WAIT).await;
    let mut outcomes = Vec::new();
    for loaded in &desired.loaded.apps {
        if !needed.contains(loaded.name.as_str()) {
            continue;
        }
        let edges = loaded
            .result
            .as_ref()
            .map(crate::desired::resource_dependencies)
            .unwrap_or_default();
        let outcome = reconcile(
            ctx,
            loaded,
            &desired.revision.id,
            &edges,
            Mode::DryRun,
            &mut AppMemory::default(),
        )
        .await;
        outcomes.push((loaded, outcome));
    }
    let health: BTreeMap<String, Health> = outcomes
        .iter()
        .map(|(loaded, outcome)| (loaded.name.clone(), outcome.status.health))
        .collect();
    outcomes
        .into_iter()
        .filter(|(loaded, _)| selected(&loaded.name))
        .map(|(loaded, outcome)| {
            let deps = loaded.result.as_ref().map(|a| a.depends_on.as_slice());
            let dependencies = deps
                .unwrap_or_default()
                .iter()
                .map(|dep| (dep.clone(), health.get(dep).copied()))
                .collect();
            PlannedApp {
                loaded,
                outcome,
                dependencies,
            }
        })
        .collect()
}

/// The S3 client for `config`, if S3 is configured.
pub async fn s3_client(
    config: Option<crate::providers::s3::S3Config>,
) -> Option<crate::providers::s3::S3Client> {
    match config {
        Some(config) => Some(crate::providers::s3::S3Client::new(config).await),
        None => None,
    }
}

/// The Vault client for `config`, if Vault is configured.
pub fn vault_client(
    config: Option<crate::providers::vault::VaultConfig>,
) -> Result<Option<crate::providers::vault::VaultClient>, StackError> {
    config
        .map(crate::providers::vault::VaultClient::new)
        .transpose()
        .map_err(StackError::Vault)
}
