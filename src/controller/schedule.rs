//! The controller loop: one task per app (never two reconciles of one app at once), woken by a
//! new revision, a live change, a manual sync or its own requeue timer; a concurrency limit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::reconcile::{Action, AppMemory, Mode, reconcile};
use super::status::{Kept, Phase};
use super::{AppStatus, Context, RepoStatus, SyncStatus};
use crate::desired::{self, LoadedApp, ResourceId};

use crate::desired::{DesiredRevision, PinnedRevisions, RevisionReader};

/// Handle of a running controller.
#[derive(Clone)]
pub struct ControllerHandle {
    apps: Arc<Mutex<BTreeMap<String, AppHandle>>>,
    desired: watch::Receiver<Option<DesiredRevision>>,
}

#[derive(Clone)]
struct AppHandle {
    wake: Arc<Notify>,
    manual: Arc<Mutex<bool>>,
}

impl ControllerHandle {
    /// Ask for a manual sync of `app` (applies even with `sync.auto: false`). False if unknown.
    pub fn request_sync(&self, app: &str) -> bool {
        let apps = match self.apps.lock() {
            Ok(a) => a,
            Err(p) => p.into_inner(),
        };
        match apps.get(app) {
            Some(handle) => {
                if let Ok(mut manual) = handle.manual.lock() {
                    *manual = true;
                }
                handle.wake.notify_one();
                true
            }
            None => false,
        }
    }

    /// Wait until the controller's head revision is `revision` (a fetch just brought it, and the
    /// loader is reading its apps), at most `limit`; false if it did not arrive in time.
    pub async fn wait_loaded(&self, revision: &str, limit: std::time::Duration) -> bool {
        let mut desired = self.desired.clone();
        let loaded = desired.wait_for(|d| d.as_ref().is_some_and(|d| d.revision.id == revision));
        matches!(tokio::time::timeout(limit, loaded).await, Ok(Ok(_)))
    }

    /// Wake every app now.
    pub fn wake_all(&self) {
        let apps = match self.apps.lock() {
            Ok(a) => a,
            Err(p) => p.into_inner(),
        };
        for handle in apps.values() {
            handle.wake.notify_one();
        }
    }
}

/// Start the controller. `desired` carries each new revision; the controller runs until
/// `shutdown`. Apps that left Git are handed to [`prune_removed`].
pub fn spawn(
    ctx: Context,
    desired: watch::Receiver<Option<DesiredRevision>>,
    pins: Option<RevisionReader>,
    shutdown: CancellationToken,
) -> (ControllerHandle, JoinHandle<()>) {
    let handle = ControllerHandle {
        apps: Arc::new(Mutex::new(BTreeMap::new())),
        desired: desired.clone(),
    };
    let h = handle.clone();
    let join = tokio::spawn(async move { run(ctx, desired, pins, h, shutdown).await });
    (handle, join)
}

async fn run(
    ctx: Context,
    mut desired: watch::Receiver<Option<DesiredRevision>>,
    pins: Option<RevisionReader>,
    handle: ControllerHandle,
    shutdown: CancellationToken,
) {
    let mut live_changes = ctx.live.subscribe();
    let mut tasks: BTreeMap<String, JoinHandle<()>> = BTreeMap::new();
    let mut revision_changed = true;
    // Pruning of removed apps waits for live state and retries failures on later live changes.
    let mut prune_pending = false;
    loop {
        if revision_changed {
            let current = desired.borrow_and_update().clone();
            if let Some(current) = current {
                on_revision(
                    &ctx, &current, &desired, &pins, &handle, &mut tasks, &shutdown,
                )
                .await;
                prune_pending = prune_removed(&ctx, &current, &pins).await;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = desired.changed() => {
                if changed.is_err() { break }
                revision_changed = true;
            }
            changed = live_changes.changed() => {
                if changed.is_err() { break }
                // Drift or progress in the cluster: apps whose resources changed re-check from
                // the cache (the others skip the wake), and pending prunes are retried.
                handle.wake_all();
                revision_changed = false;
                let current = desired.borrow().clone();
                if let (true, Some(current)) = (prune_pending, current) {
                    prune_pending = prune_removed(&ctx, &current, &pins).await;
                }
            }
        }
    }
    for (_, task) in tasks {
        task.abort();
    }
}

/// A new revision: start tasks for new apps, wake all, let removed apps' tasks end.
async fn on_revision(
    ctx: &Context,
    current: &DesiredRevision,
    desired: &watch::Receiver<Option<DesiredRevision>>,
    pins: &Option<RevisionReader>,
    handle: &ControllerHandle,
    tasks: &mut BTreeMap<String, JoinHandle<()>>,
    shutdown: &CancellationToken,
) {
    let names: BTreeSet<String> = current.loaded.apps.iter().map(|a| a.name.clone()).collect();
    for name in &names {
        if tasks.get(name).is_none_or(JoinHandle::is_finished) {
            let app_handle = AppHandle {
                wake: Arc::new(Notify::new()),
                manual: Arc::new(Mutex::new(false)),
            };
            if let Ok(mut apps) = handle.apps.lock() {
                apps.insert(name.clone(), app_handle.clone());
            }
            let task = tokio::spawn(app_task(
                ctx.clone(),
                name.clone(),
                desired.clone(),
                pins.clone(),
                app_handle,
                shutdown.clone(),
            ));
            tasks.insert(name.clone(), task);
        }
    }
    handle.wake_all();
    tasks.retain(|name, _| names.contains(name));
    if let Ok(mut apps) = handle.apps.lock() {
        apps.retain(|name, _| names.contains(name));
    }
}

async fn app_task(
    ctx: Context,
    name: String,
    desired: watch::Receiver<Option<DesiredRevision>>,
    pins: Option<RevisionReader>,
    handle: AppHandle,
    shutdown: CancellationToken,
) {
    let mut memory = AppMemory::default();
    let mut deadline = tokio::time::Instant::now();
    let mut pinned = PinnedRevisions::default();
    // What the last reconcile saw; a wake that changes none of it is skipped (the requeue timer
    // and manual syncs always run).
    let mut last_seen: Option<String> = None;
    loop {
        let timer = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = handle.wake.notified() => false,
            _ = tokio::time::sleep_until(deadline) => true,
        };
        let Some(head) = desired.borrow().clone() else {
            deadline = tokio::time::Instant::now() + ctx.settings.progress_interval;
            continue;
        };
        if head.app(&name).is_none() {
            return;
        }
        let pin = ctx.store.pinned(&name).await.ok().flatten();
        let source = match (&pin, &pins) {
            (Some(rev), Some(reader)) if !head.revision.id.starts_with(rev.as_str()) => {
                match pinned.load(reader, rev).await {
                    Some(loaded) => loaded,
                    None => {
                        let mut status =
                            AppStatus::unknown(&name, rev, Phase::PinnedRevisionUnavailable);
                        status
                            .errors
                            .push(format!("pinned revision {rev} cannot be read"));
                        ctx.publish_unless(status, || left_git(&desired, &name));
                        deadline = tokio::time::Instant::now() + ctx.settings.progress_interval;
                        continue;
                    }
                }
            }
            _ => head.clone(),
        };
        let Some(loaded) = source.app(&name).or_else(|| head.app(&name)).cloned() else {
            return;
        };
        let manual = handle
            .manual
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or(false);
        let seen = observed(&ctx, &loaded, &source.revision.id, pin.as_deref());
        if !timer && !manual && last_seen.as_ref() == Some(&seen) {
            continue;
        }
        last_seen = Some(seen);
        let mode = if manual { Mode::Manual } else { Mode::Auto };
        let edges = match &loaded.result {
            Ok(app) => desired::resource_dependencies(app),
            Err(_) => Vec::<(ResourceId, ResourceId)>::new(),
        };
        let permit = ctx.permits.clone().acquire_owned().await;
        let outcome = reconcile(
            &ctx,
            &loaded,
            &source.revision.id,
            &edges,
            mode,
            &mut memory,
        )
        .await;
        drop(permit);
        let mut status = outcome.status;
        status.pinned = pin;
        status.warnings = loaded.warnings.iter().map(ToString::to_string).collect();
        ctx.publish_unless(status, || left_git(&desired, &name));
        deadline = tokio::time::Instant::now()
            + match outcome.action {
                Action::RequeueAfter(after) => after,
                // The resync still runs; a held permanent failure costs it no request.
                Action::AwaitChange => ctx.settings.resync_interval,
            };
    }
}

/// Whether the newest revision no longer has `app`.
fn left_git(desired: &watch::Receiver<Option<DesiredRevision>>, app: &str) -> bool {
    desired
        .borrow()
        .as_ref()
        .is_some_and(|head| head.app(app).is_none())
}

/// Everything a reconcile of `loaded` depends on that a wake can change: the revision, the pin,
/// the live stubs of its resources and the health of the apps it depends on.
fn observed(ctx: &Context, loaded: &LoadedApp, revision: &str, pin: Option<&str>) -> String {
    use std::fmt::Write as _;
    let mut seen = format!("{revision}|{pin:?}");
    let live = ctx.live.snapshot();
    let _ = write!(seen, "|ready={}", live.ready());
    let mut stub_of = |id: &ResourceId| match id.kind {
        crate::desired::ResourceKind::NomadJob => {
            let _ = write!(seen, "|{:?}", live.job(&id.scope, &id.name));
        }
        crate::desired::ResourceKind::CsiVolume => {
            let _ = write!(seen, "|{:?}", live.volume(&id.scope, &id.name));
        }
        _ => {}
    };
    match &loaded.result {
        Ok(app) => {
            for r in &app.resources {
                stub_of(&r.id);
            }
        }
        // An invalid app still shows the health of what it last applied.
        Err(_) => {
            let shown = ctx.status_of(&loaded.name).map(|s| s.resources);
            for r in shown.iter().flatten() {
                if let Some(id) = ResourceId::parse(&r.id) {
                    stub_of(&id);
                }
            }
        }
    }
    if let Ok(app) = &loaded.result {
        let statuses = ctx.statuses.borrow();
        for dep in &app.depends_on {
            let _ = write!(seen, "|{dep}={:?}", statuses.get(dep).map(|s| s.health));
        }
    }
    seen
}

/// Apps drover knows (store) that are gone from Git: pruned only when Git is trustworthy, the
/// app's last policy said `prune: true`, and not too many apps vanish at once. Apps that left Git
/// and own nothing lose their status. Publishes the repository's problems (an invalid revision, a
/// refused prune). Returns whether to try again on the next live change (live state not ready
/// yet, or a prune failed).
pub async fn prune_removed(
    ctx: &Context,
    current: &DesiredRevision,
    pins: &Option<RevisionReader>,
) -> bool {
    let short = current.revision.short_id();
    let mut problems: Vec<String> = current
        .loaded
        .repo_errors
        .iter()
        .map(|d| format!("revision {short} is invalid: {d}"))
        .collect();
    let retry = prune_removed_apps(ctx, current, pins, &mut problems).await;
    ctx.repo.send_replace(RepoStatus {
        revision: Some(current.revision.id.clone()),
        problems,
    });
    retry
}

async fn prune_removed_apps(
    ctx: &Context,
    current: &DesiredRevision,
    pins: &Option<RevisionReader>,
    problems: &mut Vec<String>,
) -> bool {
    let Ok(known) = ctx.store.known_apps().await else {
        return true;
    };
    let present: BTreeSet<&str> = current
        .loaded
        .apps
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    // drover owns nothing for these (e.g. never valid): nothing to prune or keep, nothing to show.
    let shown: Vec<String> = ctx.statuses.borrow().keys().cloned().collect();
    for app in shown {
        if !present.contains(app.as_str()) && !known.contains(&app) {
            ctx.unpublish(&app);
        }
    }
    let removed: Vec<&String> = known
        .iter()
        .filter(|a| !present.contains(a.as_str()))
        .collect();
    if removed.is_empty() {
        return false;
    }
    let names = removed
        .iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let refusal = if current.loaded.apps.is_empty() || !current.loaded.repo_errors.is_empty() {
        Some((
            "warning",
            format!(
                "prune refused: revision {} has no loadable apps or repo-level errors; not pruning {} app(s) that left Git: {names}",
                current.revision.short_id(),
                removed.len()
            ),
        ))
    } else {
        let share = removed.len() as f64 / known.len().max(1) as f64;
        (removed.len() > 1 && share > ctx.settings.max_prune_share).then(|| {
            (
                "error",
                format!(
                    "prune refused: {} of {} apps left Git at once (more than {:.0}%); not pruning {names}: check the repository",
                    removed.len(),
                    known.len(),
                    ctx.settings.max_prune_share * 100.0
                ),
            )
        })
    };
    if let Some((level, message)) = refusal {
        tracing::warn!("{message}");
        let _ = ctx.store.add_event(None, level, &message).await;
        for app in &removed {
            // What was applied still runs; say that Git dropped it and why it is kept.
            publish_removed(
                ctx,
                app,
                &current.revision.id,
                Kept::PruneRefused,
                vec![message.clone()],
            );
        }
        problems.push(message);
        return false;
    }
    if !ctx.live.snapshot().ready() {
        return true;
    }
    let mut retry = false;
    for app in removed {
        retry |= prune_app(ctx, app, &current.revision.id, pins).await;
    }
    retry
}

/// Prune one removed app; returns whether to try again later.
async fn prune_app(
    ctx: &Context,
    app: &str,
    revision: &str,
    pins: &Option<RevisionReader>,
) -> bool {
    // The app's last policy comes from the revision it was last applied from.
    let markers = ctx.store.markers(app).await.unwrap_or_default();
    let last_revision = markers
        .iter()
        .max_by_key(|m| m.applied_at)
        .map(|m| m.revision.clone());
    let last_app = match (last_revision, pins) {
        (Some(rev), Some(reader)) => {
            let reader = reader.clone();
            tokio::task::spawn_blocking(move || reader(&rev))
                .await
                .ok()
                .flatten()
                .map(DesiredRevision::load)
                .and_then(|d| d.app(app).filter(|a| a.result.is_ok()).cloned())
        }
        _ => None,
    };
    let Some((loaded, policy)) = last_app.and_then(|a| {
        let policy = a.result.as_ref().ok()?.sync;
        Some((a, policy))
    }) else {
        publish_removed(
            ctx,
            app,
            revision,
            Kept::NotPruned,
            vec![
                "the app left Git but its last applied revision cannot be read; nothing deleted"
                    .into(),
            ],
        );
        return false;
    };
    if !policy.prune {
        publish_removed(ctx, app, revision, Kept::PruneOff, Vec::new());
        return false;
    }
    // The same path as every app: markers → triage → explain → apply with its guards, against
    // desired = nothing (its volumes keep their last prevent_destroy).
    let mut memory = AppMemory::default();
    let outcome = reconcile(ctx, &loaded, revision, &[], Mode::Removed, &mut memory).await;
    let report = match outcome.report {
        Some(report) => report,
        // Live state not listed yet, or planning failed: try again on the next live change.
        None if outcome.plan.is_none() => return true,
        None => crate::apply::ApplyReport::default(),
    };
    for line in report.changes() {
        let _ = ctx
            .store
            .add_event(Some(app), "info", &format!("pruned: {line}"))
            .await;
    }
    tracing::info!(app, changes = ?report.changes(), "pruned app removed from Git");
    if report.failed() {
        publish_removed(ctx, app, revision, Kept::PruneFailed, report.problems());
        return true;
    }
    let remaining = ctx.store.owned(app).await.unwrap_or_default();
    let kept: Vec<&ResourceId> = remaining
        .iter()
        .filter(|id| id.kind != crate::desired::ResourceKind::CsiVolume)
        .collect();
    if kept.is_empty() {
        ctx.unpublish(app);
    } else {
        // Still running (e.g. its job now names another owner): say so and why.
        let reasons = report
            .steps
            .iter()
            .filter_map(|s| match &s.result {
                crate::apply::StepResult::Skipped { reason } => {
                    Some(format!("{}: kept: {reason}", s.id))
                }
                _ => None,
            })
            .collect::<Vec<_>>();
        let reasons = if reasons.is_empty() {
            kept.iter().map(|r| format!("{r}: kept")).collect()
        } else {
            reasons
        };
        publish_removed(ctx, app, revision, Kept::NotPruned, reasons);
    }
    false
}

/// The status of an app that left Git while drover still runs what it applied: `OutOfSync`,
/// phase `removed from Git (<why>)`; its last known resources and health stay shown.
fn publish_removed(ctx: &Context, app: &str, revision: &str, why: Kept, errors: Vec<String>) {
    let phase = Phase::RemovedFromGit(why);
    let mut status = ctx
        .status_of(app)
        .unwrap_or_else(|| AppStatus::unknown(app, revision, phase.clone()));
    status.revision = revision.to_string();
    status.sync = SyncStatus::OutOfSync;
    status.phase = phase;
    status.errors = errors;
    status.observed_at = std::time::SystemTime::now();
    ctx.publish(status);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::ControllerSettings;
    use crate::live::LiveStore;
    use crate::plan::nomad_job::OWNER_META_KEY;
    use crate::providers::nomad::{NomadClient, NomadConfig, RegisterOptions};
    use crate::source::Revision;
    use crate::store::rid;
    use crate::store::{Marker, Store};
    use drover_devstack::faults::FaultSpec;
    use drover_devstack::{Devstack, DevstackConfig};
    use serde_json::json;
    use std::time::SystemTime;

    /// `apps/<name>/app.yaml` (one job) and its jobspec, for each `(name, prune)`.
    fn revision(id: &str, apps: &[(&str, bool)], extra: &[(&str, &str)]) -> Arc<Revision> {
        let mut files = BTreeMap::new();
        for (name, prune) in apps {
            files.insert(
                format!("apps/{name}/app.yaml"),
                format!(
                    "name: {name}\nresources:\n  - nomad_job: {{ file: job.nomad.hcl }}\nsync: {{ prune: {prune} }}\n"
                )
                .into_bytes(),
            );
            files.insert(
                format!("apps/{name}/job.nomad.hcl"),
                format!(
                    "job \"{name}\" {{\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"docker\"\n      config {{ image = \"busybox\" }}\n    }}\n  }}\n}}\n"
                )
                .into_bytes(),
            );
        }
        for (path, text) in extra {
            files.insert((*path).to_string(), text.as_bytes().to_vec());
        }
        Arc::new(Revision::from_files(id, files))
    }

    fn desired(id: &str, apps: &[&str]) -> DesiredRevision {
        let apps: Vec<(&str, bool)> = apps.iter().map(|a| (*a, false)).collect();
        DesiredRevision::load(revision(id, &apps, &[]))
    }

    /// The revision the removed apps were last applied from.
    fn old_revision() -> Arc<Revision> {
        revision(
            "old",
            &[
                ("pruned", true),
                ("kept", false),
                ("relabelled", true),
                ("failing", true),
                ("solo", true),
            ],
            &[],
        )
    }

    fn pins() -> Option<RevisionReader> {
        let old = old_revision();
        let reader: RevisionReader = Arc::new(move |id: &str| (id == "old").then(|| old.clone()));
        Some(reader)
    }

    struct Fixture {
        stack: Devstack,
        nomad: NomadClient,
        store: Store,
    }

    impl Fixture {
        async fn start() -> Fixture {
            let stack = Devstack::start(DevstackConfig {
                time_scale: 0.01,
                ..DevstackConfig::default()
            })
            .await
            .expect("devstack");
            let nomad = NomadClient::new(NomadConfig {
                address: stack.nomad_url(),
                max_retries: 0,
                ..NomadConfig::default()
            })
            .expect("client");
            let store = Store::open_in_memory().expect("store");
            Fixture {
                stack,
                nomad,
                store,
            }
        }

        /// A job drover applied for `app` from revision `old` (meta naming `owner`).
        async fn applied_job(&self, app: &str, owner: &str) {
            let job = json!({
                "ID": app, "Name": app, "Type": "batch", "Namespace": "default",
                "Meta": { OWNER_META_KEY: owner },
                "TaskGroups": [{"Name": "g", "Count": 1,
                    "Tasks": [{"Name": "t", "Driver": "docker", "Config": {"image": "busybox"}}]}]
            });
            self.nomad
                .register_job(&job, &RegisterOptions::default())
                .await
                .expect("register");
            let resource = format!("nomad_job/default/{app}");
            self.store
                .record_owned(app, &rid(&resource))
                .await
                .expect("own");
            self.marker(app, &resource, "old").await;
        }

        async fn marker(&self, app: &str, resource: &str, revision: &str) {
            self.store
                .set_marker(&Marker {
                    app: app.into(),
                    resource: rid(resource),
                    spec_hash: "h".into(),
                    live_index: 1,
                    revision: revision.into(),
                    applied_at: SystemTime::now(),
                })
                .await
                .expect("marker");
        }

        /// A context whose live cache has (`ready`) or has not yet listed the cluster.
        async fn context(&self, ready: bool, max_prune_share: f64) -> Context {
            let live = LiveStore::default();
            if ready {
                live.load_once(&self.nomad).await.expect("live");
            }
            Context::new(
                self.nomad.clone(),
                self.store.clone(),
                live,
                ControllerSettings {
                    max_prune_share,
                    ..ControllerSettings::default()
                },
            )
        }

        async fn exists(&self, job: &str) -> bool {
            self.nomad
                .read_job("default", job)
                .await
                .expect("read")
                .is_some()
        }
    }

    #[tokio::test]
    async fn removed_apps_are_pruned_only_when_live_state_and_git_are_trustworthy() {
        let f = Fixture::start().await;
        f.applied_job("pruned", "pruned").await;
        let pins = pins();

        // The live cache has not listed the cluster yet: try again later, delete nothing.
        let unready = f.context(false, 0.5).await;
        assert!(prune_removed(&unready, &desired("new", &["present"]), &pins).await);
        assert!(f.exists("pruned").await);

        let ctx = f.context(true, 0.5).await;
        // Nothing left Git.
        assert!(!prune_removed(&ctx, &desired("new", &["present", "pruned"]), &pins).await);
        assert!(f.exists("pruned").await);
        // A revision with no apps, or with repo-level errors, is not trusted to prune.
        assert!(!prune_removed(&ctx, &desired("new", &[]), &pins).await);
        assert!(f.exists("pruned").await);
        let broken = DesiredRevision::load(revision(
            "new",
            &[("present", false)],
            &[("drover.yaml", "{ not: [valid")],
        ));
        assert!(!broken.loaded.repo_errors.is_empty());
        assert!(!prune_removed(&ctx, &broken, &pins).await);
        assert!(f.exists("pruned").await);

        // One known app, gone: a single removal is never a mass removal.
        assert!(!prune_removed(&ctx, &desired("new", &["present"]), &pins).await);
        assert!(!f.exists("pruned").await);
        assert!(f.store.owned("pruned").await.expect("owned").is_empty());
        f.stack.shutdown().await;
    }

    #[tokio::test]
    async fn prune_of_removed_apps_follows_the_share_limit_their_last_policy_and_ownership() {
        let f = Fixture::start().await;
        f.applied_job("pruned", "pruned").await;
        f.applied_job("kept", "kept").await;
        // Its job was taken over by hand: the meta names someone else.
        f.applied_job("relabelled", "someone-else").await;
        // A volume that is no longer in the cluster stays owned (and is no reason to keep the
        // app's status).
        f.store
            .record_owned("pruned", &rid("csi_volume/default/pruned-data"))
            .await
            .expect("own");
        for present in ["x1", "x2"] {
            f.marker(present, &format!("nomad_job/default/{present}"), "old")
                .await;
        }
        let pins = pins();
        let ctx = f.context(true, 0.5).await;
        for app in ["pruned", "relabelled"] {
            ctx.publish(AppStatus::unknown(app, "old", Phase::Synced));
        }

        // Three of five known apps left Git at once: more than half, refused.
        assert!(!prune_removed(&ctx, &desired("new", &["x1", "x2"]), &pins).await);
        for job in ["pruned", "kept", "relabelled"] {
            assert!(f.exists(job).await, "{job} is kept by the share limit");
        }

        // Exactly half is allowed (x3 is known now too: three of six).
        f.marker("x3", "nomad_job/default/x3", "old").await;
        let ctx = f.context(true, 0.5).await;
        for app in ["pruned", "relabelled"] {
            ctx.publish(AppStatus::unknown(app, "old", Phase::Synced));
        }
        let current = desired("new", &["x1", "x2", "x3"]);
        assert!(!prune_removed(&ctx, &current, &pins).await);
        assert!(!f.exists("pruned").await, "prune: true deletes");
        assert!(f.exists("kept").await, "prune: false keeps the job");
        assert!(
            f.exists("relabelled").await,
            "meta naming another owner keeps it"
        );
        assert_eq!(
            f.store.owned("pruned").await.expect("owned"),
            ["csi_volume/default/pruned-data"]
        );
        assert_eq!(
            f.store.owned("relabelled").await.expect("owned"),
            ["nomad_job/default/relabelled"]
        );
        assert!(ctx.status_of("pruned").is_none(), "only a volume is left");
        assert!(ctx.status_of("relabelled").is_some(), "its job is left");
        let kept = ctx.status_of("kept").expect("kept's status");
        assert_eq!(kept.sync, SyncStatus::OutOfSync);
        f.stack.shutdown().await;
    }

    #[tokio::test]
    async fn a_removed_apps_prune_waits_for_live_state_and_ends_when_nothing_is_left_to_delete() {
        let f = Fixture::start().await;
        f.applied_job("pruned", "pruned").await;
        let pins = pins();
        // Before the live cache has listed the cluster the prune cannot plan: try again later.
        let unready = f.context(false, 1.0).await;
        assert!(prune_app(&unready, "pruned", "new", &pins).await);
        assert!(f.exists("pruned").await);
        // The job was deleted by hand meanwhile: nothing to delete, nothing to retry; the job
        // stays recorded (drover did not delete it), so the app is shown as not pruned.
        f.nomad
            .deregister_job("default", "pruned", true)
            .await
            .expect("deregister");
        let ctx = f.context(true, 1.0).await;
        assert!(!prune_app(&ctx, "pruned", "new", &pins).await);
        let status = ctx.status_of("pruned").expect("status");
        assert_eq!(status.phase, Phase::RemovedFromGit(Kept::NotPruned));
        f.stack.shutdown().await;
    }

    #[tokio::test]
    async fn a_failed_prune_is_retried_and_an_unreadable_last_revision_deletes_nothing() {
        let f = Fixture::start().await;
        f.applied_job("failing", "failing").await;
        // Last applied from a revision that cannot be read any more.
        f.applied_job("unreadable", "unreadable").await;
        f.marker("unreadable", "nomad_job/default/unreadable", "lost")
            .await;
        let fault: FaultSpec = serde_json::from_value(json!({
            "system": "nomad", "method": "DELETE", "path": "/v1/job/failing", "kind": "error",
            "status": 500, "body": "injected"
        }))
        .expect("fault");
        f.stack.state().faults.add(fault).expect("arm fault");
        let ctx = f.context(true, 1.0).await;
        assert!(prune_removed(&ctx, &desired("new", &["present"]), &pins()).await);
        assert!(f.exists("failing").await);
        assert!(f.exists("unreadable").await);
        let status = ctx.status_of("unreadable").expect("status");
        assert_eq!(status.sync, SyncStatus::OutOfSync);
        assert!(!status.errors.is_empty());
        // Without a reader for pinned revisions, nothing can be pruned either.
        f.stack.state().faults.clear();
        assert!(!prune_removed(&ctx, &desired("new", &["present"]), &None).await);
        assert!(f.exists("failing").await);
        f.stack.shutdown().await;
    }

    #[tokio::test]
    async fn an_app_that_left_git_owning_nothing_leaves_the_status_list_and_others_stay() {
        let f = Fixture::start().await;
        f.applied_job("kept", "kept").await;
        f.applied_job("relabelled", "someone-else").await;
        let ctx = f.context(true, 1.0).await;
        for app in ["present", "never-applied", "kept", "relabelled"] {
            ctx.publish(AppStatus::unknown(app, "old", Phase::Synced));
        }
        // `never-applied` left Git and drover owns nothing for it; `kept` left Git but its job
        // stays (prune off in its last revision); `relabelled`'s job names another owner, so
        // its prune skips it; `present` is still in Git.
        assert!(!prune_removed(&ctx, &desired("new", &["present"]), &pins()).await);
        let shown: Vec<String> = ctx.statuses.borrow().keys().cloned().collect();
        assert_eq!(shown, ["kept", "present", "relabelled"].map(String::from));
        let kept = ctx.status_of("kept").expect("kept is shown");
        assert_eq!(kept.sync, SyncStatus::OutOfSync);
        assert_eq!(kept.phase, Phase::RemovedFromGit(Kept::PruneOff));
        assert_eq!(kept.revision, "new");
        // The status says why the job was kept (the prune's skip reason), not only that it was.
        let relabelled = ctx.status_of("relabelled").expect("relabelled is shown");
        assert!(
            relabelled
                .errors
                .iter()
                .any(|e| e.starts_with("nomad_job/default/relabelled: kept: ")),
            "{:?}",
            relabelled.errors
        );
        assert!(f.exists("relabelled").await);
        f.stack.shutdown().await;
    }
}
