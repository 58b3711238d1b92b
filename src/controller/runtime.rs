//! `drover serve` wired together: store, Git watcher, live watchers, controller and web server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Context;
use super::schedule::{self, ControllerHandle};
use crate::app_stack::{self, LiveReading, StackError};
use crate::config::Settings;
use crate::desired::ResourceId;
use crate::desired::{DesiredRevision, RevisionReader};
use crate::source::packs::PackFetcher;
use crate::source::{GitSource, Movement, SourceError, SourceWatcher};
use crate::store::Store;

/// Starting the server failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store, Nomad client or live cache could not be set up.
    #[error(transparent)]
    Stack(#[from] StackError),
    /// The Git mirror could not be opened.
    #[error("opening the Git source")]
    Source(#[from] SourceError),
    /// The probes' CA file (`probes.ca_file`) could not be used.
    #[error(transparent)]
    Probes(#[from] crate::health::probes::TrustError),
    /// `ha.lock: consul-session` without a Consul.
    #[error("ha.lock consul-session needs a Consul: set CONSUL_HTTP_ADDR")]
    NoConsulForLock,
    /// HA: the leader's state could not be read from the cluster.
    #[error("restoring the leader's state from the cluster")]
    ClusterState(#[from] crate::cluster_state::ClusterStateError),
    /// The web listener could not bind.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A running drover.
pub struct Running {
    /// Where the status page and API listen.
    pub web_addr: SocketAddr,
    /// The controller context (statuses, store, live cache).
    pub ctx: Context,
    /// Manual sync requests.
    pub controller: ControllerHandle,
    /// The Git watcher.
    pub source: Arc<SourceWatcher>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    /// Held while running, so `drover restore` can tell the store is in use.
    _data_dir_lock: Option<crate::store::backup::DataDirLock>,
}

impl Running {
    /// Stop everything and wait for it.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Start drover with `settings` until `shutdown` is cancelled.
pub async fn start(settings: Settings, shutdown: CancellationToken) -> Result<Running, StartError> {
    // Bind first: a busy port fails before anything is started or written.
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: settings.listen,
            source,
        })?;
    let web_addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: settings.listen,
        source,
    })?;
    let store = app_stack::open_store(&settings.data_dir)?;
    // Not exclusive: a second drover on the same data dir is the operator's call, but restore
    // must see that one runs.
    let data_dir_lock = match crate::store::backup::DataDirLock::try_acquire(&settings.data_dir) {
        Ok(lock) => lock,
        Err(error) => {
            tracing::warn!(%error, "cannot lock the data directory");
            None
        }
    };
    // A crash in the middle of a sync left it open: close it as interrupted; the next
    // level-triggered cycle redoes whatever is still needed, guarded by markers and CAS.
    for sync in store.unfinished_syncs().await.unwrap_or_default() {
        let _ = store
            .finish_sync(
                sync.id,
                crate::store::SyncResult::Interrupted,
                Some("drover stopped during this sync"),
                &[],
            )
            .await;
        let _ = store
            .add_event(
                Some(&sync.app),
                "warning",
                "a sync was interrupted by a restart; resuming",
            )
            .await;
    }
    let ctx = app_stack::context(
        settings.nomad.clone(),
        settings.consul.clone(),
        store,
        LiveReading::Watch(shutdown.clone()),
        settings.controller.clone(),
    )
    .await?
    .with_vault(app_stack::vault_client(settings.vault.clone())?);
    let ctx = ctx.with_s3(app_stack::s3_client(settings.s3.clone()).await);
    let ctx = ctx.with_probe_clients(crate::health::probes::ProbeClients::new(
        settings.probes.ca_file.as_deref(),
    )?);
    // HA: every replica starts as a follower (reads, plans, serves; writes nothing) and the
    // lock task flips it to leader when it takes the lock.
    let leadership = match &settings.ha {
        Some(ha) => {
            let holder =
                crate::ha::holder_id(ha.advertise.as_deref(), web_addr, |k| std::env::var(k).ok());
            ctx.leadership
                .send_replace(crate::ha::Leadership::follower(&holder));
            tracing::info!(path = %ha.path, %holder, "following until this replica takes the leader lock");
            let lock = crate::ha::LeaderLock::new(
                settings.nomad.clone(),
                settings.consul.clone(),
                ha.clone(),
            )
            .ok_or(StartError::NoConsulForLock)?;
            let takeover = crate::ha::Takeover {
                store: ctx.store.clone(),
                nomad: ctx.nomad.clone(),
                prefix: settings.cluster_state.clone(),
            };
            Some(tokio::spawn(lock.run(
                holder,
                takeover,
                ctx.leadership.clone(),
                shutdown.clone(),
            )))
        }
        None => None,
    };
    let source = GitSource::open(settings.source.clone(), &settings.data_dir.join("mirror"))?;
    let watcher = Arc::new(SourceWatcher::spawn_with_metrics(
        source.clone(),
        settings.source.poll_interval,
        shutdown.clone(),
        Some(ctx.metrics.clone()),
    ));

    let (desired_tx, desired_rx) = watch::channel(None::<DesiredRevision>);
    let mut tasks: Vec<JoinHandle<()>> = leadership.into_iter().collect();
    tasks.push(tokio::spawn(publish_refused_commits(
        ctx.clone(),
        watcher.subscribe(),
        shutdown.clone(),
    )));
    let mut source_rx = watcher.subscribe();
    let stop = shutdown.clone();
    let history = source.clone();
    let events = ctx.store.clone();
    let owner_store = ctx.store.clone();
    // Pack registries are resolved again only when the desired repo's commit changes.
    let pack_fetcher = Arc::new(PackFetcher::new(&settings.data_dir.join("packs")));
    let pinned_packs = Arc::clone(&pack_fetcher);
    let rollback_packs = Arc::clone(&pack_fetcher);
    tasks.push(tokio::spawn(async move {
        let mut current: Option<String> = None;
        // A manual refresh resolves the pack registries' tags and branches again.
        let mut resolve_packs = false;
        // The last load: the next one reloads only the app folders a commit changed.
        let mut last_loaded: Option<DesiredRevision> = None;
        loop {
            let revision = source_rx.borrow_and_update().revision.clone();
            if let Some(revision) = revision
                && (resolve_packs || current.as_deref() != Some(revision.id.as_str()))
            {
                let previous = current.replace(revision.id.clone());
                if let Some(previous) = previous
                    && previous != revision.id
                {
                    warn_if_not_forward(&history, &events, previous, revision.id.clone()).await;
                }
                let owners = recorded_owners(&owner_store).await;
                let packs = Arc::clone(&pack_fetcher);
                let previous = last_loaded.take();
                let loaded = tokio::task::spawn_blocking(move || {
                    let revision = Arc::new(packs.attach(Arc::unwrap_or_clone(revision)));
                    DesiredRevision::load_after(revision, &owners, previous.as_ref())
                })
                .await;
                if let Ok(loaded) = loaded {
                    last_loaded = Some(loaded.clone());
                    tracing::info!(
                        revision = %loaded.revision.short_id(),
                        apps = loaded.loaded.apps.len(),
                        reloaded = loaded.loaded.folders_reloaded().unwrap_or_default(),
                        "new revision"
                    );
                    desired_tx.send_replace(Some(loaded));
                }
            }
            resolve_packs = false;
            tokio::select! {
                _ = stop.cancelled() => return,
                changed = source_rx.changed() => if changed.is_err() { return },
                () = pack_fetcher.refresh_requested() => resolve_packs = true,
            }
        }
    }));

    let reader_source = source.clone();
    let pins: RevisionReader = Arc::new(move |rev: &str| {
        // A pinned (rolled back) revision reads its Git packs too (off the async runtime).
        let revision = reader_source.revision_at(rev).ok()?;
        Some(Arc::new(pinned_packs.attach(revision)))
    });
    let (controller, join) = schedule::spawn(ctx.clone(), desired_rx, Some(pins), shutdown.clone());
    tasks.push(join);
    tasks.push(crate::notify::engine::spawn(
        ctx.clone(),
        settings.notifications.clone(),
        shutdown.clone(),
    ));

    let app = crate::web::router(crate::web::WebState {
        ctx: ctx.clone(),
        controller: controller.clone(),
        source: watcher.clone(),
        packs: rollback_packs,
        access: crate::web::guard::AccessPolicy::new(&settings.web.allowed_hosts),
        auth: crate::web::auth::ApiAuth::new(settings.web.api_token.as_ref(), settings.web.private),
        commits: crate::web::page::CommitCache::default(),
        shutdown: shutdown.clone(),
    })
    // Outside the page/API guard: webhooks authenticate by their own signature or token.
    .nest(
        crate::web::webhook::WEBHOOK_PATH,
        crate::web::webhook::router(settings.web.webhook_secret.clone(), watcher.clone()),
    )
    // Webhooks included: a follower (`ha:`) refuses every change with 503 naming the leader.
    .layer(axum::middleware::from_fn_with_state(
        ctx.leadership.subscribe(),
        crate::web::follower::refuse_changes,
    ));
    let stop = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "web server stopped");
        }
    }));
    tracing::info!(%web_addr, "drover serving");
    Ok(Running {
        web_addr,
        ctx,
        controller,
        source: watcher,
        shutdown,
        tasks,
        _data_dir_lock: data_dir_lock,
    })
}

/// A commit refused by signature verification becomes a repository problem (the page's banner,
/// `/api/v1/status`, an alert) and an event, until a fetch brings a commit that passes.
async fn publish_refused_commits(
    ctx: Context,
    mut source_rx: watch::Receiver<crate::source::SourceStatus>,
    stop: CancellationToken,
) {
    loop {
        let refused = source_rx.borrow_and_update().refused_commit.clone();
        let changed = ctx.repo.send_if_modified(|repo| {
            let changed = repo.refused_commit != refused;
            repo.refused_commit = refused.clone();
            changed
        });
        if changed && let Some(reason) = &refused {
            let message = format!("{reason}; the last verified revision stays in force");
            let _ = ctx.store.add_event(None, "warning", &message).await;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = source_rx.changed() => if changed.is_err() { return },
        }
    }
}

/// A branch that did not move forward (a force-push back to an older commit, a rewritten or
/// unrelated history) is still applied, as Git is the truth, but never silently: a warning event
/// names both commits.
async fn warn_if_not_forward(source: &GitSource, store: &Store, from: String, to: String) {
    let git = source.clone();
    let (old, new) = (from.clone(), to.clone());
    let movement = tokio::task::spawn_blocking(move || git.movement(&old, &new)).await;
    let short = |id: &str| id.get(..12).unwrap_or(id).to_string();
    let branch = &source.config().reference;
    let message = match movement {
        Ok(Ok(Movement::Same | Movement::Forward)) => return,
        Ok(Ok(Movement::Backward)) => format!(
            "{branch} moved backwards from {} to its ancestor {} (a force-push or reset?); applying {}",
            short(&from),
            short(&to),
            short(&to)
        ),
        Ok(Ok(Movement::Rewritten)) => format!(
            "{branch} was rewritten: {} does not descend from {} (a force-push?); applying {}",
            short(&to),
            short(&from),
            short(&to)
        ),
        Ok(Ok(Movement::Unrelated)) => format!(
            "{branch} moved from {} to {}, which shares no history with it; applying {}",
            short(&from),
            short(&to),
            short(&to)
        ),
        Ok(Err(error)) => {
            tracing::debug!(%error, "cannot tell how the branch moved");
            return;
        }
        Err(_) => return,
    };
    tracing::warn!(from = %from, to = %to, "{message}");
    let _ = store.add_event(None, "warning", &message).await;
}

/// Which app drover created each resource for, so a new app declaring an existing resource is
/// the one refused. A store error only loses this tie-breaker (both apps are then refused).
async fn recorded_owners(store: &Store) -> BTreeMap<ResourceId, String> {
    let mut owners = BTreeMap::new();
    let apps = match store.known_apps().await {
        Ok(apps) => apps,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read resource owners");
            return owners;
        }
    };
    for app in apps {
        match store.owned(&app).await {
            Ok(resources) => {
                for id in resources {
                    owners.insert(id, app.clone());
                }
            }
            Err(e) => tracing::warn!(error = %e, %app, "cannot read resource owners"),
        }
    }
    owners
}
