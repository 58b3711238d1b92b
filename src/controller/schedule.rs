//! The controller loop: one task per app (never two reconciles of one app at once), woken by a
//! new revision, a live change, a manual sync or its own requeue timer; a concurrency limit.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::probes::with_probes;
use super::reconcile::{Action, AppMemory, Mode, reconcile};
use super::removal::{Removal, RemovalVerdict, reconcile_removed};
use super::status::Phase;
use super::{AppStatus, Context};
use crate::desired::{self, LoadedApp, ResourceId};
use crate::live::{Key, Touched};

use crate::desired::{DesiredRevision, PinnedRevisions, RevisionReader};

/// Handle of a running controller.
#[derive(Clone)]
pub struct ControllerHandle {
    apps: Arc<Mutex<BTreeMap<String, AppHandle>>>,
    desired: watch::Receiver<Option<DesiredRevision>>,
    interest: Arc<Mutex<InterestIndex>>,
}

/// Which apps each live key concerns: a change wakes its apps by lookup (asking each of 1,000
/// apps whether a change concerns it, on every event of a first sync, was a quarter of drover's
/// CPU there).
#[derive(Debug, Default)]
struct InterestIndex {
    /// Apps woken by every change (interest not known yet, invalid, with dependencies, removed).
    everything: HashSet<String>,
    by_key: HashMap<Key, HashSet<String>>,
    of_app: HashMap<String, HashSet<Key>>,
}

impl InterestIndex {
    /// `app` is concerned by changes of `keys` (`None`: by every change).
    fn set(&mut self, app: &str, keys: Option<HashSet<Key>>) {
        if let Some(keys) = &keys
            && self.of_app.get(app) == Some(keys)
            && !self.everything.contains(app)
        {
            return;
        }
        self.forget(app);
        match keys {
            None => {
                self.everything.insert(app.to_string());
            }
            Some(keys) => {
                for key in &keys {
                    self.by_key
                        .entry(key.clone())
                        .or_default()
                        .insert(app.to_string());
                }
                self.of_app.insert(app.to_string(), keys);
            }
        }
    }

    fn forget(&mut self, app: &str) {
        self.everything.remove(app);
        for key in self.of_app.remove(app).unwrap_or_default() {
            if let Some(apps) = self.by_key.get_mut(&key) {
                apps.remove(app);
                if apps.is_empty() {
                    self.by_key.remove(&key);
                }
            }
        }
    }

    /// The apps `touched` concerns; `None`: every app.
    fn concerned(&self, touched: &Touched) -> Option<HashSet<&str>> {
        if touched.all {
            return None;
        }
        let mut apps: HashSet<&str> = self.everything.iter().map(String::as_str).collect();
        for key in &touched.keys {
            if let Some(interested) = self.by_key.get(key) {
                apps.extend(interested.iter().map(String::as_str));
            }
        }
        Some(apps)
    }
}

#[derive(Clone)]
struct AppHandle {
    wake: Arc<Notify>,
    manual: Arc<Mutex<bool>>,
    /// False while the app has left Git (its task prunes it): no manual sync then.
    in_git: Arc<AtomicBool>,
    /// The controller's index of the jobs, volumes and config entries whose live changes can
    /// change each app's reconcile (see [`interest`]), shared by every app's handle.
    interest: Arc<Mutex<InterestIndex>>,
}

impl ControllerHandle {
    /// Ask for a manual sync of `app` (applies even with `sync.auto: false`). False if unknown.
    pub fn request_sync(&self, app: &str) -> bool {
        let apps = match self.apps.lock() {
            Ok(a) => a,
            Err(p) => p.into_inner(),
        };
        match apps.get(app) {
            Some(handle) if handle.in_git.load(Ordering::Relaxed) => {
                if let Ok(mut manual) = handle.manual.lock() {
                    *manual = true;
                }
                handle.wake.notify_one();
                true
            }
            _ => false,
        }
    }

    /// Wait until the controller's head revision is `revision` (a fetch just brought it, and the
    /// loader is reading its apps), at most `limit`; false if it did not arrive in time.
    pub async fn wait_loaded(&self, revision: &str, limit: std::time::Duration) -> bool {
        let mut desired = self.desired.clone();
        let loaded = desired.wait_for(|d| d.as_ref().is_some_and(|d| d.revision.id == revision));
        matches!(tokio::time::timeout(limit, loaded).await, Ok(Ok(_)))
    }

    /// Wake the apps a live change concerns (all when `touched.all`).
    fn wake_touched(&self, touched: &Touched) {
        let apps = match self.apps.lock() {
            Ok(a) => a,
            Err(p) => p.into_inner(),
        };
        let index = match self.interest.lock() {
            Ok(i) => i,
            Err(p) => p.into_inner(),
        };
        match index.concerned(touched) {
            None => apps.values().for_each(|handle| handle.wake.notify_one()),
            Some(names) => {
                for name in names {
                    if let Some(handle) = apps.get(name) {
                        handle.wake.notify_one();
                    }
                }
            }
        }
    }
}

/// Start the controller. `desired` carries each new revision; the controller runs until
/// `shutdown`. Apps that left Git keep their task, which prunes them as the revision's
/// [`RemovalVerdict`] allows.
pub fn spawn(
    ctx: Context,
    desired: watch::Receiver<Option<DesiredRevision>>,
    pins: Option<RevisionReader>,
    shutdown: CancellationToken,
) -> (ControllerHandle, JoinHandle<()>) {
    let handle = ControllerHandle {
        apps: Arc::new(Mutex::new(BTreeMap::new())),
        desired: desired.clone(),
        interest: Arc::default(),
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
    let mut leadership = ctx.leadership.subscribe();
    let mut tasks: BTreeMap<String, JoinHandle<()>> = BTreeMap::new();
    let removals = watch::Sender::new(None::<Arc<RemovalVerdict>>);
    let mut revision_changed = true;
    loop {
        // The index decides once per revision (again on a live change if the store could not
        // be read); the apps' tasks act on its verdict.
        let undecided = removals.borrow().is_none();
        if revision_changed || undecided {
            let current = desired.borrow_and_update().clone();
            if let Some(current) = current {
                let verdict = RemovalVerdict::decide(&ctx, &current).await.map(Arc::new);
                removals.send_replace(verdict.clone());
                let tasks_of = TaskSource {
                    ctx: &ctx,
                    desired: &desired,
                    removals: &removals,
                    pins: &pins,
                    shutdown: &shutdown,
                };
                on_revision(&tasks_of, &current, verdict.as_deref(), &handle, &mut tasks);
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
                // the cache; removed apps retry a pending prune.
                handle.wake_touched(&ctx.live.take_touched());
                revision_changed = false;
            }
            // Took the lock (`ha:`): decide again on the restored state and wake every app, which
            // now writes.
            changed = leadership.changed() => {
                if changed.is_err() { break }
                revision_changed = true;
            }
        }
    }
    for (_, task) in tasks {
        task.abort();
    }
    ctx.probes.stop_all();
}

/// What a new app task is given.
struct TaskSource<'a> {
    ctx: &'a Context,
    desired: &'a watch::Receiver<Option<DesiredRevision>>,
    removals: &'a watch::Sender<Option<Arc<RemovalVerdict>>>,
    pins: &'a Option<RevisionReader>,
    shutdown: &'a CancellationToken,
}

/// A new revision: start tasks for new apps and for apps that left Git (to prune them), wake
/// all, let the tasks of apps that are neither end.
fn on_revision(
    source: &TaskSource<'_>,
    current: &DesiredRevision,
    verdict: Option<&RemovalVerdict>,
    handle: &ControllerHandle,
    tasks: &mut BTreeMap<String, JoinHandle<()>>,
) {
    let present: BTreeSet<String> = current.loaded.apps.iter().map(|a| a.name.clone()).collect();
    let mut names = present.clone();
    names.extend(verdict.iter().flat_map(|v| v.removed.iter().cloned()));
    let mut apps = match handle.apps.lock() {
        Ok(a) => a,
        Err(p) => p.into_inner(),
    };
    for name in &names {
        if tasks.get(name).is_none_or(JoinHandle::is_finished) {
            let app_handle = AppHandle {
                wake: Arc::new(Notify::new()),
                manual: Arc::new(Mutex::new(false)),
                in_git: Arc::new(AtomicBool::new(true)),
                interest: Arc::clone(&handle.interest),
            };
            set_interest(&app_handle, name, None);
            apps.insert(name.clone(), app_handle.clone());
            let task = tokio::spawn(app_task(
                source.ctx.clone(),
                name.clone(),
                source.desired.clone(),
                source.removals.subscribe(),
                source.pins.clone(),
                app_handle,
                source.shutdown.clone(),
            ));
            tasks.insert(name.clone(), task);
        }
    }
    tasks.retain(|name, _| names.contains(name));
    apps.retain(|name, app| {
        let keep = names.contains(name);
        if !keep && let Ok(mut index) = app.interest.lock() {
            index.forget(name);
        }
        keep
    });
    for (name, app) in apps.iter() {
        app.in_git.store(present.contains(name), Ordering::Relaxed);
        app.wake.notify_one();
    }
}

/// How long a cycle woken by the cluster waits for the rest of the burst it belongs to.
const CLUSTER_WAKE_GATHER: std::time::Duration = std::time::Duration::from_millis(100);

async fn app_task(
    ctx: Context,
    name: String,
    desired: watch::Receiver<Option<DesiredRevision>>,
    removals: watch::Receiver<Option<Arc<RemovalVerdict>>>,
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
    // The revision at which this app, having left Git, was kept, and whether this replica led
    // then: wakes skip it until either changes.
    let mut kept_at: Option<(String, bool)> = None;
    // The last reconcile's status, before the probes' latest results are merged in: a probe's
    // change re-publishes it with them, without another cycle.
    let mut last_status: Option<AppStatus> = None;
    // The app's pin, with the role it was read at.
    let mut pin_read: Option<(bool, Option<String>)> = None;
    // The app as the last reconcile ran it, and at which revision: a new commit that leaves the
    // app's files as they were is the same facts under a new name (see [`unchanged_since`]).
    let mut last_run: Option<(LoadedApp, String)> = None;
    // The newest revision the last wake saw: a wake at the same one came from the cluster.
    let mut last_head: Option<String> = None;
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
        // A wake from the cluster (same revision as the last cycle, no manual sync) waits a
        // moment for the events that come with it: a deployment's allocation and deployment
        // events arrive in bursts, and one cycle after the burst reads once what a cycle per
        // event would read each time.
        let same_head = last_head.as_deref() == Some(head.revision.id.as_str());
        last_head = Some(head.revision.id.clone());
        let manual_waiting = handle.manual.lock().map(|m| *m).unwrap_or(true);
        if !timer && same_head && !manual_waiting {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(CLUSTER_WAKE_GATHER) => {}
            }
        }
        if head.app(&name).is_none() {
            set_interest(&handle, &name, None);
            ctx.probes.stop(&name);
            last_status = None;
            let verdict = removals.borrow().clone();
            let Some(verdict) = verdict.filter(|v| v.revision == head.revision.id) else {
                // The index has not decided on this revision yet; it wakes the tasks when it has.
                deadline = tokio::time::Instant::now() + ctx.settings.progress_interval;
                continue;
            };
            if !verdict.removed.contains(&name) {
                return;
            }
            let manual = take_manual(&handle);
            let kept = (verdict.revision.clone(), ctx.leads());
            if !timer && !manual && kept_at.as_ref() == Some(&kept) {
                continue;
            }
            last_seen = None;
            let permit = ctx.permits.acquire().await;
            ctx.metrics.reconcile_started(&name);
            let removal =
                Box::pin(reconcile_removed(&ctx, &name, &verdict, &pins, &mut memory)).await;
            drop(permit);
            kept_at = (removal == Removal::Kept).then_some(kept);
            deadline = tokio::time::Instant::now()
                + match removal {
                    Removal::Gone => return,
                    Removal::Retry(Action::RequeueAfter(after)) => after,
                    Removal::Kept | Removal::Retry(Action::AwaitChange) => {
                        ctx.settings.resync_interval
                    }
                };
            continue;
        }
        kept_at = None;
        // Pins change only through rollback and unpin, which ask for a (manual) sync, and an HA
        // takeover, which restores them before the role flips: a wake from the cluster or a new
        // commit reuses the pin read in this role (a thousand apps reading their pin from the
        // store on each commit queued the changed app's cycle behind them).
        let manual_pending = handle.manual.lock().map(|m| *m).unwrap_or(true);
        let leads = ctx.leads();
        let pin = match &pin_read {
            Some((led, pin)) if !timer && !manual_pending && *led == leads => pin.clone(),
            _ => {
                let pin = ctx.store.pinned(&name).await.ok().flatten();
                pin_read = Some((leads, pin.clone()));
                pin
            }
        };
        let source = match (&pin, &pins) {
            (Some(rev), Some(reader)) if !head.revision.id.starts_with(rev.as_str()) => {
                match Box::pin(pinned.load(reader, rev)).await {
                    Some(loaded) => loaded,
                    None => {
                        let mut status =
                            AppStatus::unknown(&name, rev, Phase::PinnedRevisionUnavailable);
                        status
                            .errors
                            .push(format!("pinned revision {rev} cannot be read"));
                        let status = with_probes(status, ctx.probes.results(&name));
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
        set_interest(&handle, &name, interest(&loaded));
        // Probes run from the last revision of the app that loads.
        if let Ok(app) = &loaded.result {
            ctx.probes
                .ensure(&name, &app.probes, ctx.s3.clone(), handle.wake.clone());
        }
        let manual = take_manual(&handle);
        let facts_at = unchanged_since(last_run.as_ref(), last_status.as_ref(), &loaded)
            .unwrap_or(&source.revision.id);
        let seen = observed(&ctx, &loaded, facts_at, pin.as_deref());
        if !timer && !manual && last_seen.as_ref() == Some(&seen) {
            restamp(&ctx, &name, &mut last_status, &source.revision.id, &desired);
            republish_probes(&ctx, &name, last_status.as_ref(), &desired);
            continue;
        }
        last_seen = Some(seen);
        last_run = Some((loaded.clone(), source.revision.id.clone()));
        let mode = if manual { Mode::Manual } else { Mode::Auto };
        let edges = match &loaded.result {
            Ok(app) => desired::resource_dependencies(app),
            Err(_) => Vec::<(ResourceId, ResourceId)>::new(),
        };
        let permit = ctx.permits.acquire().await;
        ctx.metrics.reconcile_started(&name);
        // Boxed: a cycle's future is large (about 14 KB), and kept inline it made every idle
        // app task that large for good (14 MB at 1,000 apps).
        let outcome = Box::pin(reconcile(
            &ctx,
            &loaded,
            &source.revision.id,
            &edges,
            mode,
            &mut memory,
        ))
        .await;
        drop(permit);
        let mut status = outcome.status;
        status.pinned = pin;
        status.warnings = loaded.warnings.iter().map(ToString::to_string).collect();
        last_status = Some(status.clone());
        let status = with_probes(status, ctx.probes.results(&name));
        ctx.publish_unless(status, || left_git(&desired, &name));
        deadline = tokio::time::Instant::now()
            + match outcome.action {
                Action::RequeueAfter(after) => after,
                // The resync still runs; a held permanent failure costs it no request.
                Action::AwaitChange => ctx.settings.resync_interval,
            };
    }
}

/// The revision the last reconcile ran at, when `loaded` is the app it ran on (same files, same
/// warnings) and that run ended without an error: a new commit that did not touch the app then
/// brings no new facts, and its 1,000 neighbours' cycles do not queue before the changed app's.
/// An app that failed runs again on every commit (a push is how users ask for a retry).
fn unchanged_since<'a>(
    last_run: Option<&'a (LoadedApp, String)>,
    last_status: Option<&AppStatus>,
    loaded: &LoadedApp,
) -> Option<&'a str> {
    let (last, revision) = last_run?;
    let clean = last_status.is_some_and(|s| s.errors.is_empty());
    let same = last.result == loaded.result && last.warnings == loaded.warnings;
    (clean && same).then_some(revision.as_str())
}

/// An app skipped at a new revision (its files unchanged) reports that revision, as a cycle
/// would have: the status is the last one, at the new revision.
fn restamp(
    ctx: &Context,
    name: &str,
    last_status: &mut Option<AppStatus>,
    revision: &str,
    desired: &watch::Receiver<Option<DesiredRevision>>,
) {
    let Some(last) = last_status.as_mut() else {
        return;
    };
    if last.revision == revision {
        return;
    }
    last.revision = revision.to_string();
    last.observed_at = std::time::SystemTime::now();
    let status = with_probes(last.clone(), ctx.probes.results(name));
    ctx.publish_unless(status, || left_git(desired, name));
}

/// A wake with no new facts for a reconcile: if the probes' results differ from the published
/// ones (a probe's health changed), publish the last reconcile's status with them, at once and
/// without a request to the cluster.
fn republish_probes(
    ctx: &Context,
    name: &str,
    last_status: Option<&AppStatus>,
    desired: &watch::Receiver<Option<DesiredRevision>>,
) {
    let Some(last) = last_status else { return };
    let results = ctx.probes.results(name);
    if ctx
        .status_of(name)
        .is_some_and(|shown| shown.probes == results)
    {
        return;
    }
    let mut status = with_probes(last.clone(), results);
    status.observed_at = std::time::SystemTime::now();
    ctx.publish_unless(status, || left_git(desired, name));
}

/// The jobs, volumes and config entries whose live changes can change a reconcile of `loaded`
/// (what [`observed`] reads); `None` for every change: an invalid app shows what it last applied,
/// and an app with dependencies re-checks their health on any wake.
fn interest(loaded: &LoadedApp) -> Option<HashSet<Key>> {
    let app = loaded.result.as_ref().ok()?;
    if !app.depends_on.is_empty() {
        return None;
    }
    Some(
        app.resources
            .iter()
            .filter(|r| {
                matches!(
                    r.id.kind,
                    crate::desired::ResourceKind::NomadJob
                        | crate::desired::ResourceKind::CsiVolume
                        | crate::desired::ResourceKind::ConsulConfigEntry
                )
            })
            .map(|r| (r.id.scope.clone(), r.id.name.clone()))
            .collect(),
    )
}

fn set_interest(handle: &AppHandle, app: &str, keys: Option<HashSet<Key>>) {
    if let Ok(mut index) = handle.interest.lock() {
        index.set(app, keys);
    }
}

/// Whether a manual sync was asked for since the last cycle (and forget it).
fn take_manual(handle: &AppHandle) -> bool {
    handle
        .manual
        .lock()
        .map(|mut m| std::mem::take(&mut *m))
        .unwrap_or(false)
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
    // A follower that takes the lock must act on facts it only planned on before.
    let mut seen = format!("{revision}|{pin:?}|leads={}", ctx.leads());
    // The kinds the cycle will ask the cache to watch, asked for before readiness is read: a
    // kind first wanted inside the cycle made the cache not ready there, and when its list
    // came, the wake saw the same facts as before and was skipped (the app waited for its
    // progress timer).
    if let Ok(app) = &loaded.result {
        ctx.live.want_config_kinds(app.config_entry_kinds());
    }
    let live = ctx.live.snapshot();
    let _ = write!(seen, "|ready={}", live.ready());
    let mut stub_of = |id: &ResourceId| match id.kind {
        crate::desired::ResourceKind::NomadJob => {
            let _ = write!(
                seen,
                "|{:?}@{:?}",
                live.job(&id.scope, &id.name),
                live.job_activity(&id.scope, &id.name)
            );
        }
        crate::desired::ResourceKind::CsiVolume => {
            let _ = write!(seen, "|{:?}", live.volume(&id.scope, &id.name));
        }
        // Watched too: an entry changed in Consul is drift to see now, not at the resync.
        crate::desired::ResourceKind::ConsulConfigEntry => {
            let _ = write!(
                seen,
                "|{}/{}@{:?}",
                id.scope,
                id.name,
                live.config_entry(&id.scope, &id.name)
                    .map(crate::providers::consul::ConfigEntry::modify_index)
            );
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn key(name: &str) -> Key {
        ("default".to_string(), name.to_string())
    }

    fn touched(keys: &[&str]) -> Touched {
        Touched {
            all: false,
            keys: keys.iter().map(|k| key(k)).collect(),
        }
    }

    fn woken(index: &InterestIndex, keys: &[&str]) -> Option<BTreeSet<String>> {
        index
            .concerned(&touched(keys))
            .map(|names| names.into_iter().map(str::to_string).collect())
    }

    fn names(list: &[&str]) -> Option<BTreeSet<String>> {
        Some(list.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn a_live_change_wakes_the_apps_interested_in_it_and_those_following_everything() {
        let mut index = InterestIndex::default();
        index.set("web", Some([key("web")].into()));
        index.set("db", Some([key("db"), key("shared")].into()));
        index.set("new", None);
        assert_eq!(woken(&index, &["web"]), names(&["web", "new"]));
        assert_eq!(woken(&index, &["shared"]), names(&["db", "new"]));
        assert_eq!(woken(&index, &["other"]), names(&["new"]));
        let all = Touched {
            all: true,
            keys: HashSet::new(),
        };
        assert!(
            index.concerned(&all).is_none(),
            "a list or an error wakes all"
        );
        // Interest moves: the old keys stop waking the app.
        index.set("db", Some([key("db")].into()));
        assert_eq!(woken(&index, &["shared"]), names(&["new"]));
        index.set("new", Some([key("new")].into()));
        assert_eq!(woken(&index, &["web"]), names(&["web"]));
        // An app that follows every change again, and one forgotten.
        index.set("web", None);
        assert_eq!(woken(&index, &["db"]), names(&["db", "web"]));
        index.forget("web");
        index.forget("db");
        assert_eq!(woken(&index, &["db"]), names(&[]));
        assert!(
            index.by_key.keys().all(|k| k == &key("new")),
            "{:?}",
            index.by_key
        );
    }

    fn loaded(app_yaml: &str, jobs: &[&str]) -> LoadedApp {
        let mut files = BTreeMap::new();
        for job in jobs {
            files.insert(
                format!("apps/a/{job}.nomad.hcl"),
                format!("job \"{job}\" {{\n  type = \"batch\"\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"docker\"\n      config {{\n        image = \"busybox:1\"\n      }}\n    }}\n  }}\n}}\n")
                    .into_bytes(),
            );
        }
        files.insert("apps/a/app.yaml".to_string(), app_yaml.as_bytes().to_vec());
        let revision = crate::source::Revision::from_files("r", files);
        let mut loaded = crate::desired::load(&revision);
        loaded.apps.remove(0)
    }

    #[test]
    fn a_commit_is_new_facts_only_for_an_app_whose_files_it_changed_or_that_failed() {
        let yaml = "name: a\nresources:\n  - nomad_job: { file: web.nomad.hcl }\n";
        let app = loaded(yaml, &["web"]);
        let last = (app.clone(), "r1".to_string());
        let mut status = AppStatus::unknown("a", "r1", Phase::Synced);
        assert_eq!(
            unchanged_since(Some(&last), Some(&status), &app),
            Some("r1")
        );
        assert_eq!(unchanged_since(None, Some(&status), &app), None);
        assert_eq!(unchanged_since(Some(&last), None, &app), None);
        let other = loaded(&format!("{yaml}sync: {{ prune: true }}\n"), &["web"]);
        assert_eq!(unchanged_since(Some(&last), Some(&status), &other), None);
        status.errors.push("plan failed".into());
        assert_eq!(
            unchanged_since(Some(&last), Some(&status), &app),
            None,
            "a failed app runs again on a new commit"
        );
    }

    #[test]
    fn an_app_follows_the_live_changes_of_its_own_jobs_unless_it_must_see_every_change() {
        let two_jobs = "name: a\nresources:\n  - nomad_job: { file: web.nomad.hcl }\n  - nomad_job: { file: worker.nomad.hcl }\n";
        let keys = interest(&loaded(two_jobs, &["web", "worker"]));
        let key = |id: &str| ("default".to_string(), id.to_string());
        assert_eq!(keys, Some(HashSet::from([key("web"), key("worker")])));
        let with_dependency = format!("{two_jobs}depends_on: [db]\n");
        assert_eq!(
            interest(&loaded(&with_dependency, &["web", "worker"])),
            None,
            "dependencies' health is re-checked on any wake"
        );
        let invalid = "name: a\nresources:\n  - nomad_job: { file: missing.nomad.hcl }\n";
        let invalid = loaded(invalid, &[]);
        assert!(invalid.result.is_err());
        assert_eq!(
            interest(&invalid),
            None,
            "an invalid app shows what it last applied"
        );
    }
}
