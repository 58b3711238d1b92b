//! Apps that left Git. Where a revision is loaded, its index decides once whether Git may be
//! trusted to prune ([`RemovalVerdict::decide`]: not from an empty or half-written revision, not
//! when too many apps leave at once). Each removed app is then an ordinary app task whose desired
//! resources are empty ([`reconcile_removed`]): `reconcile` with `Mode::Removed`, under the app's
//! last policy, with the same ownership and `prevent_destroy` guards as every write.

use std::collections::BTreeSet;

use super::reconcile::{Action, AppMemory, Mode, reconcile};
use super::status::{Kept, Phase};
use super::{AppStatus, Context, SyncStatus};
use crate::desired::{DesiredRevision, LoadedApp, ResourceId, ResourceKind, RevisionReader};

/// What a revision's index decided about the apps that left Git with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovalVerdict {
    /// The revision decided on.
    pub revision: String,
    /// Apps drover owns resources for (the store) that this revision no longer has.
    pub removed: BTreeSet<String>,
    /// Why none of them may be pruned at this revision, if so.
    pub refusal: Option<String>,
}

impl RemovalVerdict {
    /// Decide for `current`: which apps left Git and whether they may be pruned. Apps that left
    /// Git owning nothing lose their status; a refusal is an event (once: this runs once per
    /// revision); the repository's problems (an invalid revision, a refused prune) are published.
    /// `None` if the store cannot say which apps drover knows (decide again later).
    pub async fn decide(ctx: &Context, current: &DesiredRevision) -> Option<RemovalVerdict> {
        let short = current.revision.short_id();
        let mut problems: Vec<String> = current
            .loaded
            .repo_errors
            .iter()
            .map(|d| format!("revision {short} is invalid: {d}"))
            .collect();
        let verdict = removal_verdict(ctx, current).await;
        problems.extend(verdict.as_ref().and_then(|v| v.refusal.clone()));
        // The refused commit is the source's to set and clear (runtime), not the revision's.
        ctx.repo.send_modify(|repo| {
            repo.revision = Some(current.revision.id.clone());
            repo.problems = problems;
        });
        verdict
    }
}

async fn removal_verdict(ctx: &Context, current: &DesiredRevision) -> Option<RemovalVerdict> {
    let known = ctx.store.known_apps().await.ok()?;
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
    let removed: BTreeSet<String> = known
        .iter()
        .filter(|a| !present.contains(a.as_str()))
        .cloned()
        .collect();
    let refusal = removal_refusal(current, &removed, known.len(), ctx.settings.max_prune_share);
    if let Some((level, message)) = &refusal {
        tracing::warn!("{message}");
        let _ = ctx.store.add_event(None, level, message).await;
    }
    Some(RemovalVerdict {
        revision: current.revision.id.clone(),
        removed,
        refusal: refusal.map(|(_, message)| message),
    })
}

/// Why the apps in `removed` may not be pruned at `current` (with the event's level): the
/// revision has no loadable apps or repo-level errors, or more than `max_share` of the `known`
/// apps (and more than one) left at once.
fn removal_refusal(
    current: &DesiredRevision,
    removed: &BTreeSet<String>,
    known: usize,
    max_share: f64,
) -> Option<(&'static str, String)> {
    if removed.is_empty() {
        return None;
    }
    let names = removed
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if current.loaded.apps.is_empty() || !current.loaded.repo_errors.is_empty() {
        return Some((
            "warning",
            format!(
                "prune refused: revision {} has no loadable apps or repo-level errors; not pruning {} app(s) that left Git: {names}",
                current.revision.short_id(),
                removed.len()
            ),
        ));
    }
    let share = removed.len() as f64 / known.max(1) as f64;
    (removed.len() > 1 && share > max_share).then(|| {
        (
            "error",
            format!(
                "prune refused: {} of {known} apps left Git at once (more than {:.0}%); not pruning {names}: check the repository",
                removed.len(),
                max_share * 100.0
            ),
        )
    })
}

/// What a removed app's cycle leaves its task to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Kept at this revision (refused, `prune: false`, not pruned): nothing changes before the
    /// next revision, so wakes skip it until then.
    Kept,
    /// Run again (live state not listed yet, a failed prune): after `Action`, or on a live change.
    Retry(Action),
    /// Pruned: it owns nothing that runs; its status is gone and its task ends.
    Gone,
}

/// One cycle of an app that left Git at `verdict`'s revision: if the index allows it and its
/// last policy said `prune: true`, it is reconciled as last applied with desired = nothing.
pub async fn reconcile_removed(
    ctx: &Context,
    app: &str,
    verdict: &RemovalVerdict,
    pins: &Option<RevisionReader>,
    memory: &mut AppMemory,
) -> Removal {
    let revision = verdict.revision.as_str();
    if let Some(refusal) = &verdict.refusal {
        // What was applied still runs; say that Git dropped it and why it is kept.
        publish_removed(
            ctx,
            app,
            revision,
            Kept::PruneRefused,
            vec![refusal.clone()],
        );
        return Removal::Kept;
    }
    let Some(loaded) = last_applied(ctx, app, pins).await else {
        let why = "the app left Git but its last applied revision cannot be read; nothing deleted";
        publish_removed(ctx, app, revision, Kept::NotPruned, vec![why.into()]);
        return Removal::Kept;
    };
    if !loaded.result.as_ref().is_ok_and(|a| a.sync.prune) {
        publish_removed(ctx, app, revision, Kept::PruneOff, Vec::new());
        return Removal::Kept;
    }
    // Its last declared dependencies order the deletions (in reverse).
    let edges = loaded
        .result
        .as_ref()
        .map(crate::desired::resource_dependencies)
        .unwrap_or_default();
    let outcome = reconcile(ctx, &loaded, revision, &edges, Mode::Removed, memory).await;
    let report = match outcome.report {
        Some(report) => report,
        // Live state not listed yet, or planning failed: try again.
        None if outcome.plan.is_none() => return Removal::Retry(outcome.action),
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
        return Removal::Retry(outcome.action);
    }
    let remaining = ctx.store.owned(app).await.unwrap_or_default();
    let kept: Vec<&ResourceId> = remaining
        .iter()
        .filter(|id| id.kind != ResourceKind::CsiVolume)
        .collect();
    if kept.is_empty() {
        ctx.unpublish(app);
        return Removal::Gone;
    }
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
    Removal::Kept
}

/// The app as it was last applied (its policy and its volumes' `prevent_destroy`), from the
/// revision of its newest marker; `None` if that revision cannot be read or the app did not load.
async fn last_applied(
    ctx: &Context,
    app: &str,
    pins: &Option<RevisionReader>,
) -> Option<LoadedApp> {
    let markers = ctx.store.markers(app).await.unwrap_or_default();
    let last_revision = markers
        .iter()
        .max_by_key(|m| m.applied_at)
        .map(|m| m.revision.clone())?;
    let reader = pins.clone()?;
    tokio::task::spawn_blocking(move || reader(&last_revision))
        .await
        .ok()
        .flatten()
        .map(DesiredRevision::load)
        .and_then(|d| d.app(app).filter(|a| a.result.is_ok()).cloned())
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
    use std::collections::BTreeMap;
    use std::sync::Arc;
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

    /// What the controller does for a revision: the index decides, then each removed app's
    /// task runs one cycle. Whether any of them wants to run again.
    async fn run_removals(
        ctx: &Context,
        current: &DesiredRevision,
        pins: &Option<RevisionReader>,
    ) -> bool {
        let Some(verdict) = RemovalVerdict::decide(ctx, current).await else {
            return true;
        };
        let mut retry = false;
        for app in &verdict.removed {
            let mut memory = AppMemory::default();
            let removal = reconcile_removed(ctx, app, &verdict, pins, &mut memory).await;
            retry |= matches!(removal, Removal::Retry(_));
        }
        retry
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

    #[test]
    fn the_index_refuses_to_prune_from_an_empty_or_broken_revision_or_a_mass_removal() {
        let gone =
            |names: &[&str]| -> BTreeSet<String> { names.iter().map(|n| n.to_string()).collect() };
        let current = desired("new", &["x1", "x2"]);
        // Nothing left Git: nothing to refuse.
        assert_eq!(removal_refusal(&current, &gone(&[]), 4, 0.5), None);
        // One app leaving is never a mass removal, even of one known app.
        assert_eq!(removal_refusal(&current, &gone(&["a"]), 1, 0.0), None);
        assert_eq!(removal_refusal(&current, &gone(&["a"]), 0, 0.0), None);
        // Exactly the share is allowed; more is refused, saying how many of how many.
        assert_eq!(removal_refusal(&current, &gone(&["a", "b"]), 4, 0.5), None);
        let (level, message) =
            removal_refusal(&current, &gone(&["a", "b", "c"]), 5, 0.5).expect("refused");
        assert_eq!(level, "error");
        assert!(
            message.starts_with(
                "prune refused: 3 of 5 apps left Git at once (more than 50%); not pruning a, b, c"
            ),
            "{message}"
        );
        // An empty revision, or one with repo-level errors, never prunes, even one app.
        let empty = desired("new", &[]);
        let (level, message) = removal_refusal(&empty, &gone(&["a"]), 4, 1.0).expect("refused");
        assert_eq!(level, "warning");
        assert!(
            message.contains("not pruning 1 app(s) that left Git: a"),
            "{message}"
        );
        let broken = DesiredRevision::load(revision(
            "new",
            &[("x1", false)],
            &[("drover.yaml", "{ not: [valid")],
        ));
        assert!(removal_refusal(&broken, &gone(&["a"]), 4, 1.0).is_some());
    }

    #[tokio::test]
    async fn removed_apps_are_pruned_only_when_live_state_and_git_are_trustworthy() {
        let f = Fixture::start().await;
        f.applied_job("pruned", "pruned").await;
        let pins = pins();

        // The live cache has not listed the cluster yet: try again later, delete nothing.
        let unready = f.context(false, 0.5).await;
        assert!(run_removals(&unready, &desired("new", &["present"]), &pins).await);
        assert!(f.exists("pruned").await);

        let ctx = f.context(true, 0.5).await;
        // Nothing left Git.
        assert!(!run_removals(&ctx, &desired("new", &["present", "pruned"]), &pins).await);
        assert!(f.exists("pruned").await);
        // A revision with no apps, or with repo-level errors, is not trusted to prune.
        assert!(!run_removals(&ctx, &desired("new", &[]), &pins).await);
        assert!(f.exists("pruned").await);
        let broken = DesiredRevision::load(revision(
            "new",
            &[("present", false)],
            &[("drover.yaml", "{ not: [valid")],
        ));
        assert!(!broken.loaded.repo_errors.is_empty());
        assert!(!run_removals(&ctx, &broken, &pins).await);
        assert!(f.exists("pruned").await);

        // One known app, gone: a single removal is never a mass removal.
        assert!(!run_removals(&ctx, &desired("new", &["present"]), &pins).await);
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
        assert!(!run_removals(&ctx, &desired("new", &["x1", "x2"]), &pins).await);
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
        assert!(!run_removals(&ctx, &current, &pins).await);
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
        let verdict = RemovalVerdict {
            revision: "new".into(),
            removed: BTreeSet::from(["pruned".to_string()]),
            refusal: None,
        };
        let mut memory = AppMemory::default();
        let removal = reconcile_removed(&unready, "pruned", &verdict, &pins, &mut memory).await;
        assert!(matches!(removal, Removal::Retry(_)));
        assert!(f.exists("pruned").await);
        // The job was deleted by hand meanwhile: nothing to delete, nothing to retry; the job
        // stays recorded (drover did not delete it), so the app is shown as not pruned.
        f.nomad
            .deregister_job("default", "pruned", true)
            .await
            .expect("deregister");
        let ctx = f.context(true, 1.0).await;
        let removal = reconcile_removed(&ctx, "pruned", &verdict, &pins, &mut memory).await;
        assert_eq!(removal, Removal::Kept);
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
        assert!(run_removals(&ctx, &desired("new", &["present"]), &pins()).await);
        assert!(f.exists("failing").await);
        assert!(f.exists("unreadable").await);
        let status = ctx.status_of("unreadable").expect("status");
        assert_eq!(status.sync, SyncStatus::OutOfSync);
        assert!(!status.errors.is_empty());
        // Without a reader for pinned revisions, nothing can be pruned either.
        f.stack.state().faults.clear();
        assert!(!run_removals(&ctx, &desired("new", &["present"]), &None).await);
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
        assert!(!run_removals(&ctx, &desired("new", &["present"]), &pins()).await);
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
