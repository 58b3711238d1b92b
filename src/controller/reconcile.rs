//! `reconcile(app)`: load → plan → apply → assess → publish. Level-triggered: it never learns
//! whether a commit, drift or a timer woke it, and recomputes everything from facts.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};

use super::status::{ChangeKind, Pending, Phase, SyncResult, Trigger};
use super::{AppStatus, Context, ControllerSettings, ResourceStatus, SyncOutcome, SyncStatus};
use crate::apply::{self, ApplyPolicy, ApplyReport, StepResult};
use crate::desired::{App, HookPhase, LoadedApp, ResourceId, ResourceKind, SecretRequirement};
use crate::health::{self, Assessment, Health};
use crate::live::LiveSnapshot;
use crate::plan::{self, AppliedMarker, Change, Owned, Plan};
use crate::telemetry::error_chain;

/// Why this reconcile may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The controller's own cycle: writes only if `sync.auto`, drift only if `self_heal`.
    Auto,
    /// `drover sync`: writes whatever the plan says (prune still needs `sync.prune`).
    Manual,
    /// `drover plan` / `--dry-run`: never writes.
    DryRun,
    /// The app left Git: an ordinary app whose desired resources are empty, given as it was last
    /// applied (for its policy and its volumes' `prevent_destroy`). It deletes what it owns if that
    /// policy said `prune: true`; no dependency waits, no sync history (the prune is an event).
    Removed,
}

/// What an app task remembers between cycles: caches only, never facts (a restart loses nothing).
#[derive(Debug, Default)]
pub struct AppMemory {
    health: HashMap<ResourceId, (String, Assessment)>,
    /// Each job's last health reads, reused while the event stream says they have not moved.
    job_reads: HashMap<ResourceId, health::JobReads>,
    /// How the last cycle failed, which decides when the next one runs.
    retry: Retry,
    last_sync: Option<SyncOutcome>,
    /// Heals per resource (at a spec hash) that have not yet been followed by Healthy.
    heals: HashMap<ResourceId, (String, u32)>,
    /// The revision whose prune was refused and recorded as an event (once, not every cycle).
    prune_refused_at: Option<String>,
    /// The resources the last plan found drifted, so a drift is counted once, not each cycle.
    drifted: HashSet<ResourceId>,
    /// The last Vault check of the app's requirements (see [`secrets_due`]).
    secrets: Option<SecretsChecked>,
}

/// One Vault check of an app's requirements, and when it was made.
#[derive(Debug, Clone)]
struct SecretsChecked {
    requirements: Vec<SecretRequirement>,
    checks: health::vault_secret::SecretChecks,
    at: tokio::time::Instant,
}

/// Whether a cycle must read its Vault requirements again rather than reuse the last check
/// (Vault has no watch, so each read is a request). A cycle that may write, a manual sync, new
/// requirements, a requirement that did not hold and a check a resync old read again; the
/// progress cycles of an app converging and the cycles of unrelated wakes (another app's
/// commit, an allocation moving) reuse it: at 1,000 apps they were most of drover's Vault reads.
fn secrets_due(
    last: Option<&SecretsChecked>,
    requirements: &[SecretRequirement],
    may_write: bool,
    mode: Mode,
    now: tokio::time::Instant,
    max_age: Duration,
) -> bool {
    let Some(last) = last else {
        return true;
    };
    may_write
        || mode == Mode::Manual
        || last.requirements != requirements
        || !last.checks.all_hold()
        || now.saturating_duration_since(last.at) >= max_age
}

/// The retry state after a failed cycle: transient failures back off (with jitter), permanent
/// ones wait for a change.
#[derive(Debug, Default)]
enum Retry {
    /// The last cycle did not fail.
    #[default]
    Clear,
    /// A transient failure (5xx, timeout, no leader, connection refused, a conflict): the next
    /// delays, growing up to `max_backoff`.
    Transient(<ExponentialBuilder as BackoffBuilder>::Backoff),
    /// A permanent failure (400, 403, 404 on write, a jobspec Nomad refuses): not retried until
    /// the facts it failed on (`facts_key`) change or a resync interval has passed (an ACL
    /// policy fixed in Nomad changes nothing drover watches); the status it published is shown
    /// meanwhile.
    Permanent {
        /// The revision, triage and live stubs it failed on.
        facts: String,
        /// The status that said so.
        status: Box<AppStatus>,
        /// When it failed.
        since: tokio::time::Instant,
    },
}

/// How a cycle failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Retrying later may succeed.
    Transient,
    /// Retrying cannot succeed before Git or the cluster changes.
    Permanent,
}

impl Failure {
    /// How planning failed: only a transient Nomad error is worth a retry on the same facts.
    fn of_plan(error: &plan::PlanError) -> Failure {
        if error.is_transient() {
            Failure::Transient
        } else {
            Failure::Permanent
        }
    }
}

impl AppMemory {
    /// When to run again after a failure of `kind`, remembering it; `None` for a permanent one
    /// (the normal resync or a change runs it again).
    fn failed(&mut self, kind: Failure, settings: &ControllerSettings) -> Option<Duration> {
        if kind == Failure::Permanent {
            self.retry = Retry::Clear;
            return None;
        }
        if !matches!(self.retry, Retry::Transient(_)) {
            self.retry = Retry::Transient(
                ExponentialBuilder::default()
                    .with_min_delay(settings.progress_interval)
                    .with_max_delay(settings.max_backoff)
                    .without_max_times()
                    .with_jitter()
                    .build(),
            );
        }
        let next = match &mut self.retry {
            Retry::Transient(delays) => delays.next(),
            _ => None,
        };
        Some(
            next.unwrap_or(settings.max_backoff)
                .min(settings.max_backoff),
        )
    }

    /// Remember a permanent failure on `facts` and the status that reports it.
    fn hold_permanent(&mut self, facts: String, status: &AppStatus) {
        self.retry = Retry::Permanent {
            facts,
            status: Box::new(status.clone()),
            since: tokio::time::Instant::now(),
        };
    }

    /// The status of a permanent failure on exactly these facts less than `resync` ago, if any.
    fn permanent_on(&self, facts: &str, resync: Duration) -> Option<&AppStatus> {
        match &self.retry {
            Retry::Permanent {
                facts: f,
                status,
                since,
            } if f == facts && since.elapsed() < resync => Some(status),
            _ => None,
        }
    }
}

/// What the app task does after a reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reconcile again after this long, even without a trigger.
    RequeueAfter(Duration),
    /// Retrying cannot help (a permanent failure): wait for Git or the cluster to change. The
    /// task still resyncs at `resync_interval`, where the held failure costs no request.
    AwaitChange,
}

/// The result of one reconcile.
#[derive(Debug)]
pub struct Outcome {
    /// The status to publish.
    pub status: AppStatus,
    /// The plan, when one was made.
    pub plan: Option<Plan>,
    /// What apply did, when it ran.
    pub report: Option<ApplyReport>,
    /// When to reconcile again without a trigger.
    pub action: Action,
}

/// Reconcile one app at one revision: markers → triage → explain → apply → assess → publish.
pub async fn reconcile(
    ctx: &Context,
    loaded: &LoadedApp,
    revision: &str,
    edges: &[(ResourceId, ResourceId)],
    mode: Mode,
    memory: &mut AppMemory,
) -> Outcome {
    let (app, declared) = match desired_of(loaded, mode) {
        Ok(apps) => apps,
        Err(diagnostics) => return invalid_spec(ctx, loaded, revision, diagnostics, memory).await,
    };
    let app = &*app;
    let mode = on_this_replica(mode, ctx.leads());
    ctx.live.want_config_kinds(declared.config_entry_kinds());
    let live = ctx.live.snapshot();
    if !live.ready() {
        return waiting_for_live_state(ctx, app, revision, &live);
    }
    let (markers, owned) = match read_markers(ctx, app, declared).await {
        Ok(found) => found,
        Err(message) => {
            return failure(ctx, app, revision, message, Failure::Transient, "", memory);
        }
    };
    // S3 has no watch: the buckets this app declares or owns are read on its resync, on a
    // manual sync and after drover wrote them, not on every progress cycle.
    if let Some(s3) = &ctx.s3 {
        let buckets = buckets_to_read(app, &owned);
        let buckets = match mode {
            Mode::Manual => buckets,
            _ => ctx.live.buckets_due(buckets, ctx.settings.resync_interval),
        };
        if !buckets.is_empty()
            && let Err(e) = ctx.live.read_buckets(s3, &buckets).await
        {
            let message = format!("reading buckets: {}", error_chain(&e));
            return failure(ctx, app, revision, message, Failure::Transient, "", memory);
        }
    }
    let live = ctx.live.snapshot();
    let triage = plan::triage(app, &live, &markers, &owned);
    let facts = facts_key(revision, &triage, &live);
    if let Some(early) = hold_back(ctx, app, revision, &triage, &facts, mode, memory) {
        return early;
    }
    let style = style(&ctx.settings);
    let explained = plan::explain(&ctx.nomad, &live, app, revision, &triage, edges, style);
    let plan = match explained.await {
        Ok(plan) => plan,
        Err(error) => return plan_failed(ctx, app, revision, &error, &facts, memory),
    };
    if mode != Mode::DryRun {
        count_new_drift(ctx, &plan, memory);
    }
    // Preflight: every Vault requirement, one read each when due; a job whose requirement does
    // not hold is not registered this cycle, while the rest of the app syncs.
    let requirements = match mode {
        Mode::Removed => &[][..],
        _ => loaded.secret_requirements(),
    };
    let now = tokio::time::Instant::now();
    let max_age = ctx.settings.resync_interval;
    let reuse = memory.secrets.as_ref().filter(|last| {
        !secrets_due(
            Some(last),
            requirements,
            wants_apply(&plan),
            mode,
            now,
            max_age,
        )
    });
    let secrets = match reuse {
        Some(last) => last.checks.clone(),
        None => {
            let checks = health::vault_secret::check(ctx.vault.as_ref(), requirements).await;
            memory.secrets = Some(SecretsChecked {
                requirements: requirements.to_vec(),
                checks: checks.clone(),
                at: now,
            });
            checks
        }
    };
    let checked = Checked {
        live: &live,
        secrets: &secrets,
    };
    let (report, prune_refusal) = apply_allowed(ctx, mode, app, &plan, checked, memory).await;
    let live_now = ctx.live.snapshot();
    let resources = assess(ctx, &plan, report.as_ref(), &live_now, &secrets, memory).await;
    let mut status = derive_status(Cycle {
        app,
        revision,
        plan: &plan,
        report: report.as_ref(),
        resources,
        prune_refusal,
        last_sync: memory.last_sync.clone(),
        at: SystemTime::now(),
    });
    if mode != Mode::DryRun {
        run_post_sync(ctx, app, &mut status, memory).await;
    }
    publish(ctx, status, plan, report, facts, memory)
}

/// The mode a cycle runs in on this replica: a follower's (`ha:`) plans like a dry run and writes
/// nothing (no apply, prune, hook or sync record), whatever woke it; a removed app keeps its
/// emptied desired state, so the follower shows what the leader prunes.
fn on_this_replica(mode: Mode, leads: bool) -> Mode {
    if leads { mode } else { Mode::DryRun }
}

/// Count the resources the server newly confirmed drifted (changed, stopped or deleted behind
/// drover's back); one that stays drifted over several cycles counts once.
fn count_new_drift(ctx: &Context, plan: &Plan, memory: &mut AppMemory) {
    let drifted: HashSet<ResourceId> = plan
        .steps
        .iter()
        .filter(|step| step.reason.is_drift() && step.change.is_write())
        .map(|step| step.id.clone())
        .collect();
    let new = drifted.difference(&memory.drifted).count();
    ctx.metrics.drift_detected(&plan.app, new as u64);
    memory.drifted = drifted;
}

/// The app to reconcile and the app as last declared: the same app, or for a removed app
/// (`Mode::Removed`) its last applied version emptied of resources, beside that version (whose
/// volumes keep their `prevent_destroy`). An app whose files do not load gives its diagnostics.
fn desired_of(
    loaded: &LoadedApp,
    mode: Mode,
) -> Result<(std::borrow::Cow<'_, App>, &App), &[crate::desired::Diagnostic]> {
    match (&loaded.result, mode) {
        (Ok(last), Mode::Removed) => {
            let emptied = App {
                resources: Vec::new(),
                ..last.clone()
            };
            Ok((std::borrow::Cow::Owned(emptied), last))
        }
        (Ok(app), _) => Ok((std::borrow::Cow::Borrowed(app), app)),
        (Err(diagnostics), _) => Err(diagnostics),
    }
}

/// Why this cycle stops after triage, if it does: a sync waits for its dependencies' health,
/// and a permanent failure is not retried on the same facts (its status stays). A dry run
/// writes nothing, so it waits for nothing: it shows what a sync would do, and its caller
/// reports the dependencies' health (`drover plan` has no controller statuses to ask).
fn hold_back(
    ctx: &Context,
    app: &App,
    revision: &str,
    triage: &[plan::Triage],
    facts: &str,
    mode: Mode,
    memory: &AppMemory,
) -> Option<Outcome> {
    if matches!(mode, Mode::Auto | Mode::Manual)
        && let Some(dependency) = unhealthy_dependencies(ctx, app)
    {
        return Some(waiting_for_dependency(
            ctx,
            app,
            revision,
            triage,
            &dependency,
            memory,
        ));
    }
    if mode == Mode::Auto {
        return memory
            .permanent_on(facts, ctx.settings.resync_interval)
            .map(held_failure);
    }
    None
}

/// The facts a cycle's preflight reads: the live state the plan saw, and the Vault checks.
#[derive(Clone, Copy)]
struct Checked<'a> {
    live: &'a LiveSnapshot,
    secrets: &'a health::vault_secret::SecretChecks,
}

/// Apply what this cycle may write (its mode and the app's policy), with the prune guard's
/// refusal, if it refused (an event once per revision). Jobs whose preflight fails (a Vault
/// requirement, a missing CSI volume or bucket, an unhealthy plugin) are held back.
async fn apply_allowed(
    ctx: &Context,
    mode: Mode,
    app: &App,
    plan: &Plan,
    checked: Checked<'_>,
    memory: &mut AppMemory,
) -> (Option<ApplyReport>, Option<String>) {
    let max_share = ctx.settings.max_prune_share;
    let mut blocked = checked.secrets.blocked_jobs(app);
    if matches!(mode, Mode::Auto | Mode::Manual) {
        // With S3 configured: the buckets this cycle's read found are known to exist; any other
        // bucket a job points at is asked about (a HEAD), and only while that job waits to be
        // written. Without S3, buckets are not checked.
        let existing = existing_buckets(checked.live);
        let probe = ctx.s3.clone().map(bucket_probe);
        let buckets = health::preflight::BucketFacts {
            existing: ctx.s3.as_ref().map(|_| &existing),
            probe: probe.as_deref(),
        };
        let found =
            health::preflight::blocked_jobs(&ctx.nomad, checked.live, app, plan, buckets).await;
        for (id, reason) in found {
            blocked
                .entry(id)
                .and_modify(|r| *r = format!("{r}; {reason}"))
                .or_insert(reason);
        }
    }
    let (policy, prune_refused) = sync_policy(mode, app, plan, max_share, blocked, memory);
    let report = match policy {
        Some(policy) if wants_apply(plan) => {
            let report = run_apply(ctx, app, plan, policy, mode, memory).await;
            // Whatever was written to a bucket is read back on the next cycle.
            ctx.live.forget_bucket_reads(
                plan.steps
                    .iter()
                    .filter(|step| step.id.kind == ResourceKind::Bucket && step.change.is_write())
                    .map(|step| step.id.name.as_str()),
            );
            Some(report)
        }
        _ => None,
    };
    let refusal = prune_refused.then(|| prune_refusal(max_share));
    note_prune_refusal(ctx, &app.name, &plan.revision, refusal.as_deref(), memory).await;
    (report, refusal)
}

/// The buckets the live state last read as existing.
fn existing_buckets(live: &LiveSnapshot) -> BTreeSet<String> {
    live.buckets
        .iter()
        .filter(|(_, state)| state.is_some())
        .map(|(name, _)| name.clone())
        .collect()
}

/// Asks S3 whether a bucket the live state has not read (or read as missing) exists now.
fn bucket_probe(s3: crate::providers::s3::S3Client) -> Box<health::preflight::BucketProbe> {
    Box::new(move |bucket: String| {
        let s3 = s3.clone();
        Box::pin(async move { s3.exists(&bucket).await.map_err(|e| error_chain(&e)) })
    })
}

/// Planning (the server's verdict on the suspects) failed: retried if the error is transient.
fn plan_failed(
    ctx: &Context,
    app: &App,
    revision: &str,
    error: &plan::PlanError,
    facts: &str,
    memory: &mut AppMemory,
) -> Outcome {
    let (message, kind) = (error_chain(error), Failure::of_plan(error));
    failure(ctx, app, revision, message, kind, facts, memory)
}

/// The cycle's outcome: its status, and when to run again; a permanent sync failure is held on
/// its facts.
fn publish(
    ctx: &Context,
    status: AppStatus,
    plan: Plan,
    report: Option<ApplyReport>,
    facts: String,
    memory: &mut AppMemory,
) -> Outcome {
    let action = next_action(&status, report.as_ref(), &ctx.settings, memory);
    if status.phase == (Phase::SyncFailed { permanent: true }) {
        memory.hold_permanent(facts, &status);
    }
    Outcome {
        status,
        plan: Some(plan),
        report,
        action,
    }
}

/// Everything one cycle of a loadable app learned, from which its status follows.
#[derive(Debug)]
pub struct Cycle<'a> {
    /// The app.
    pub app: &'a App,
    /// The revision in force.
    pub revision: &'a str,
    /// The plan made.
    pub plan: &'a Plan,
    /// What apply did, if it ran.
    pub report: Option<&'a ApplyReport>,
    /// Each resource's change and health.
    pub resources: Vec<ResourceStatus>,
    /// Why the prune was refused, if it was.
    pub prune_refusal: Option<String>,
    /// The last sync that wrote or failed.
    pub last_sync: Option<SyncOutcome>,
    /// When the facts were gathered.
    pub at: SystemTime,
}

/// An app's status from the facts of one cycle (DESIGN principle 8: a phase is derived).
pub fn derive_status(cycle: Cycle<'_>) -> AppStatus {
    let Cycle {
        app,
        revision,
        plan,
        report,
        resources,
        prune_refusal,
        last_sync,
        at,
    } = cycle;
    let health = app_health(&resources, Health::Healthy);
    let pending_writes = plan.steps.iter().zip(0..).any(|(step, i)| {
        step.change.is_write()
            && !report
                .and_then(|r| r.steps.get(i))
                .is_some_and(|s| s.result.wrote())
    });
    let phase = match report.and_then(failure_kind) {
        Some(kind) => Phase::SyncFailed {
            permanent: kind == Failure::Permanent,
        },
        None if report.is_some_and(ApplyReport::waiting) => Phase::Waiting,
        None if prune_refusal.is_some() => Phase::OutOfSync(Pending::PruneRefused),
        None if pending_writes && !app.sync.auto => Phase::OutOfSync(Pending::AutoSyncOff),
        None if pending_writes => Phase::OutOfSync(Pending::Writes),
        None if health == Health::Healthy => Phase::Synced,
        None => Phase::WaitingForHealth,
    };
    let mut errors = report.map(ApplyReport::problems).unwrap_or_default();
    errors.extend(prune_refusal);
    AppStatus {
        name: app.name.clone(),
        revision: revision.to_string(),
        pinned: None,
        sync: if pending_writes {
            SyncStatus::OutOfSync
        } else {
            SyncStatus::Synced
        },
        health,
        phase,
        resources,
        errors,
        // Filled in by the scheduler from the loaded app, like `pinned`.
        warnings: Vec::new(),
        last_sync,
        // Filled in by the scheduler from the probe runner's latest results.
        probes: Vec::new(),
        auto_sync: app.sync.auto,
        observed_at: at,
    }
}

/// When to run again: a failure backs off (transient) or waits for a change (permanent);
/// otherwise soon while something converges, else at the resync interval.
fn next_action(
    status: &AppStatus,
    report: Option<&ApplyReport>,
    settings: &ControllerSettings,
    memory: &mut AppMemory,
) -> Action {
    if let Some(kind) = report.and_then(failure_kind) {
        return memory
            .failed(kind, settings)
            .map_or(Action::AwaitChange, Action::RequeueAfter);
    }
    memory.retry = Retry::Clear;
    if !status.health.is_settled() || report.is_some_and(ApplyReport::waiting) {
        Action::RequeueAfter(settings.progress_interval)
    } else {
        Action::RequeueAfter(settings.resync_interval)
    }
}

/// Which writes this cycle may make (`None`: none), and whether the prune guard refused the
/// deletions (more than `max_prune_share` of the app at once). `blocked` are the writes whose
/// preflight failed. Every field is spelled out: a policy must not get a default by accident.
fn sync_policy(
    mode: Mode,
    app: &App,
    plan: &Plan,
    max_prune_share: f64,
    blocked: BTreeMap<ResourceId, String>,
    memory: &mut AppMemory,
) -> (Option<ApplyPolicy>, bool) {
    let policy = match mode {
        Mode::Auto if app.sync.auto => Some(ApplyPolicy {
            heal_drift: app.sync.self_heal,
            prune: app.sync.prune,
            hold: held_heals(plan, memory),
            blocked,
        }),
        Mode::Manual => {
            memory.heals.clear();
            Some(ApplyPolicy {
                heal_drift: true,
                prune: app.sync.prune,
                hold: Vec::new(),
                blocked,
            })
        }
        // Everything of a removed app goes: the share of apps leaving at once guards it instead.
        Mode::Removed => {
            return (
                app.sync.prune.then(|| ApplyPolicy {
                    heal_drift: false,
                    prune: true,
                    hold: Vec::new(),
                    blocked,
                }),
                false,
            );
        }
        Mode::Auto | Mode::DryRun => None,
    };
    let refused = policy.as_ref().is_some_and(|p| p.prune)
        && prune_share_exceeded(app, plan, max_prune_share);
    let policy = policy.map(|policy| ApplyPolicy {
        prune: policy.prune && !refused,
        ..policy
    });
    (policy, refused)
}

/// Whether apply has anything to do: a write, or a marker to confirm.
fn wants_apply(plan: &Plan) -> bool {
    plan.steps
        .iter()
        .any(|s| s.change.is_write() || matches!(s.payload, plan::Payload::Confirm { .. }))
}

fn style(settings: &ControllerSettings) -> plan::render::Style<'_> {
    plan::render::Style {
        colour: settings.colour,
        redaction: &settings.redaction,
    }
}

fn prune_refusal(max_prune_share: f64) -> String {
    format!(
        "prune refused: the sync would delete more than {:.0}% of the app's resources",
        max_prune_share * 100.0
    )
}

/// A refused prune is an event once per revision, not every cycle.
async fn note_prune_refusal(
    ctx: &Context,
    app: &str,
    revision: &str,
    refusal: Option<&str>,
    memory: &mut AppMemory,
) {
    let Some(message) = refusal else {
        memory.prune_refused_at = None;
        return;
    };
    if memory.prune_refused_at.as_deref() != Some(revision) {
        let _ = ctx.store.add_event(Some(app), "error", message).await;
        memory.prune_refused_at = Some(revision.to_string());
    }
}

/// The status of a permanent failure held on unchanged facts, observed again.
fn held_failure(held: &AppStatus) -> Outcome {
    let mut status = held.clone();
    status.observed_at = SystemTime::now();
    Outcome {
        status,
        plan: None,
        report: None,
        action: Action::AwaitChange,
    }
}

/// The app's files do not load: nothing of this revision applies, but what was applied before
/// still runs and its health is shown.
async fn invalid_spec(
    ctx: &Context,
    loaded: &LoadedApp,
    revision: &str,
    diagnostics: &[crate::desired::Diagnostic],
    memory: &mut AppMemory,
) -> Outcome {
    let mut status = AppStatus::unknown(&loaded.name, revision, Phase::InvalidSpec);
    status.sync = SyncStatus::InvalidSpec;
    status.errors = diagnostics.iter().map(ToString::to_string).collect();
    status.last_sync = memory.last_sync.clone();
    status.resources = running_resources(ctx, &loaded.name, memory).await;
    status.health = app_health(&status.resources, Health::Unknown);
    let settings = &ctx.settings;
    Outcome {
        action: Action::RequeueAfter(if status.health.is_settled() {
            settings.resync_interval
        } else {
            settings.progress_interval
        }),
        status,
        plan: None,
        report: None,
    }
}

fn waiting_for_live_state(
    ctx: &Context,
    app: &App,
    revision: &str,
    live: &LiveSnapshot,
) -> Outcome {
    let mut status = AppStatus::unknown(&app.name, revision, Phase::WaitingForLiveState);
    status.errors.extend(live.last_error.clone());
    Outcome {
        status,
        plan: None,
        report: None,
        action: Action::RequeueAfter(ctx.settings.progress_interval),
    }
}

/// The app's markers and what it owns. `declared` is the app as last declared (the app itself,
/// or for a removed app its last applied version).
async fn read_markers(
    ctx: &Context,
    app: &App,
    declared: &App,
) -> Result<(BTreeMap<ResourceId, AppliedMarker>, Owned), String> {
    let markers = ctx
        .store
        .markers(&app.name)
        .await
        .map_err(|e| format!("reading markers: {e}"))?;
    let markers = markers
        .into_iter()
        .map(|m| {
            let marker = AppliedMarker {
                spec_hash: m.spec_hash,
                live_index: m.live_index,
                revision: m.revision,
            };
            (m.resource, marker)
        })
        .collect();
    let owned: Vec<ResourceId> = ctx
        .store
        .owned(&app.name)
        .await
        .map_err(|e| format!("reading ownership: {e}"))?;
    // A volume that left Git keeps the `prevent_destroy` it had: a volume of a removed app has
    // its last spec at hand; without it (a volume removed from an app) it is protected. A bucket
    // is protected when its last spec said so (the prune deletes only empty buckets anyway).
    let protected = owned
        .iter()
        .filter(|id| !app.resources.iter().any(|r| &r.id == *id))
        .filter(|id| match id.kind {
            ResourceKind::CsiVolume => !declared.resources.iter().any(|r| {
                &r.id == *id
                    && matches!(&r.spec, crate::desired::ResourceSpec::CsiVolume(v) if !v.prevent_destroy)
            }),
            ResourceKind::Bucket => declared.resources.iter().any(|r| {
                &r.id == *id
                    && matches!(&r.spec, crate::desired::ResourceSpec::Bucket(b) if b.prevent_destroy)
            }),
            _ => false,
        })
        .cloned()
        .collect();
    Ok((
        markers,
        Owned {
            resources: owned,
            protected,
        },
    ))
}

/// The buckets a cycle reads: each declared one with the settings it declares, and each owned
/// one that left Git (existence only: the prune reads the rest).
fn buckets_to_read(app: &App, owned: &Owned) -> Vec<(String, crate::providers::s3::Wanted)> {
    let mut out: Vec<(String, crate::providers::s3::Wanted)> = app
        .resources
        .iter()
        .filter_map(|r| match &r.spec {
            crate::desired::ResourceSpec::Bucket(spec) => {
                Some((spec.name.clone(), plan::bucket::wanted(spec)))
            }
            _ => None,
        })
        .collect();
    for id in &owned.resources {
        if id.kind == ResourceKind::Bucket && !out.iter().any(|(name, _)| *name == id.name) {
            out.push((id.name.clone(), crate::providers::s3::Wanted::default()));
        }
    }
    out
}

fn unhealthy_dependencies(ctx: &Context, app: &App) -> Option<String> {
    let statuses = ctx.statuses.borrow();
    app.depends_on
        .iter()
        .find(|dep| {
            statuses
                .get(*dep)
                .is_none_or(|s| s.health != Health::Healthy)
        })
        .cloned()
}

async fn run_apply(
    ctx: &Context,
    app: &App,
    plan: &Plan,
    policy: ApplyPolicy,
    mode: Mode,
    memory: &mut AppMemory,
) -> ApplyReport {
    // The writes the policy lets through (apply skips the others).
    let allowed: Vec<&plan::Step> = plan
        .steps
        .iter()
        .filter(|step| step.change.is_write())
        .filter(|step| {
            if step.reason.is_drift() {
                policy.heal_drift && !policy.hold.contains(&step.id)
            } else {
                step.change != Change::Delete || policy.prune
            }
        })
        .collect();
    // A sync is a cycle with writes to make: a drift held by `self_heal: false` is no sync, cycle
    // after cycle. A removed app's prune is recorded as events by its caller, not as a sync.
    let writes = !allowed.is_empty() && mode != Mode::Removed;
    // What caused the writes, for the history: Git, or drift being healed (self-heal).
    let heals_only = !allowed.is_empty() && allowed.iter().all(|step| step.reason.is_drift());
    let trigger = match mode {
        Mode::Manual => Trigger::Manual,
        _ if heals_only => Trigger::SelfHeal,
        _ => Trigger::Auto,
    };
    if writes {
        // A write may take long (a slow or stalled Nomad): say so now, not only when it ends.
        ctx.publish(in_flight(ctx, plan, memory));
    }
    let sync_started = std::time::Instant::now();
    let sync_id = if writes {
        ctx.store
            .begin_sync(&plan.app, &plan.revision, trigger)
            .await
            .ok()
    } else {
        None
    };
    // Hooks run when a sync operation happens (writes to make), not on a no-op resync.
    let report = if writes {
        sync_with_hooks(ctx, app, plan, policy).await
    } else {
        apply::apply_with_clients(apply_clients(ctx), &ctx.store, plan, policy).await
    };
    if writes {
        apply::hooks::record_events(&ctx.store, &app.name, &report.hooks).await;
        // Due in the store, not in memory: a restart before the app is Healthy keeps it.
        let settled = !report.failed() && !report.waiting();
        let due = (settled && has_post_sync(app)).then_some(plan.revision.as_str());
        if let Err(e) = ctx.store.set_post_sync_due(&app.name, due).await {
            tracing::warn!(app = %app.name, error = %error_chain(&e), "post_sync hooks not recorded as due");
        }
    }
    if report.steps.iter().any(|s| s.result.wrote()) {
        let written = report
            .steps
            .iter()
            .filter(|s| s.result.wrote())
            .filter(|s| matches!(s.id.kind, ResourceKind::NomadJob | ResourceKind::CsiVolume))
            .map(|s| (s.id.scope.clone(), s.id.name.clone()))
            .collect();
        ctx.live.poke(written);
        for step in &report.steps {
            if let (ResourceKind::ConsulConfigEntry, StepResult::Applied { live_index }) =
                (&step.id.kind, &step.result)
            {
                ctx.live.note_config_written(
                    (step.id.scope.clone(), step.id.name.clone()),
                    *live_index,
                );
            }
        }
    }
    if writes {
        let result = sync_result(&report);
        ctx.metrics
            .sync_finished(&plan.app, result, sync_started.elapsed());
        let problems = report.problems();
        let message = (!problems.is_empty()).then(|| problems.join("; "));
        if let Some(id) = sync_id {
            let _ = ctx
                .store
                .finish_sync(id, result, message.as_deref(), &report.changes())
                .await;
        }
        for problem in &problems {
            let _ = ctx
                .store
                .add_event(Some(&plan.app), "warning", problem)
                .await;
        }
        if result != SyncResult::NoOp {
            tracing::info!(app = %plan.app, revision = %plan.revision, result = result.as_str(), changes = ?report.changes(), "sync finished");
            memory.last_sync = Some(SyncOutcome {
                result,
                revision: plan.revision.clone(),
                changes: report.changes(),
                problems,
                at: SystemTime::now(),
                duration_ms: Some(
                    u64::try_from(sync_started.elapsed().as_millis()).unwrap_or(u64::MAX),
                ),
            });
        }
    }
    report
}

/// A sync with its hooks: pre_sync first (a failure stops the sync before any write, the
/// previous state keeps running), then the writes, then sync_fail if anything failed.
async fn sync_with_hooks(
    ctx: &Context,
    app: &App,
    plan: &Plan,
    policy: ApplyPolicy,
) -> ApplyReport {
    let (nomad, store) = (&ctx.nomad, &ctx.store);
    let pre = apply::hooks::run_phase(nomad, store, app, &plan.revision, HookPhase::PreSync).await;
    let mut report = if pre.iter().any(apply::hooks::HookRun::failed) {
        ApplyReport::stopped_by_hooks(plan, pre)
    } else {
        let mut report = apply::apply_with_clients(apply_clients(ctx), store, plan, policy).await;
        report.hooks = pre;
        report
    };
    if report.failed() {
        let on_fail =
            apply::hooks::run_phase(nomad, store, app, &plan.revision, HookPhase::SyncFail).await;
        report.hooks.extend(on_fail);
    }
    report
}

/// The clients a sync writes through.
fn apply_clients(ctx: &Context) -> apply::Clients<'_> {
    apply::Clients {
        nomad: &ctx.nomad,
        consul: ctx.consul.as_ref(),
        s3: ctx.s3.as_ref(),
    }
}

fn has_post_sync(app: &App) -> bool {
    app.hooks.iter().any(|h| h.phase == HookPhase::PostSync)
}

/// The post_sync hooks of the last sync, once the app it wrote is Synced and Healthy; a
/// failure fails that sync (shown on the status and in its outcome) and runs sync_fail.
async fn run_post_sync(ctx: &Context, app: &App, status: &mut AppStatus, memory: &mut AppMemory) {
    if status.phase != Phase::Synced || !has_post_sync(app) {
        return;
    }
    let (nomad, store) = (&ctx.nomad, &ctx.store);
    let Ok(Some(revision)) = store.post_sync_due(&app.name).await else {
        return;
    };
    let mut runs = apply::hooks::run_phase(nomad, store, app, &revision, HookPhase::PostSync).await;
    if runs.iter().any(apply::hooks::HookRun::failed) {
        runs.extend(
            apply::hooks::run_phase(nomad, store, app, &revision, HookPhase::SyncFail).await,
        );
    }
    apply::hooks::record_events(store, &app.name, &runs).await;
    // Cleared once run (a restart during the run runs them again: at least once).
    if let Err(e) = store.set_post_sync_due(&app.name, None).await {
        tracing::warn!(app = %app.name, error = %error_chain(&e), "post_sync hooks ran but are still due");
    }
    let problems: Vec<String> = runs
        .iter()
        .filter_map(apply::hooks::HookRun::problem)
        .collect();
    if problems.is_empty() {
        return;
    }
    if let Some(last) = memory.last_sync.as_mut() {
        last.result = SyncResult::Failed;
        last.problems.extend(problems.iter().cloned());
        status.last_sync = Some(last.clone());
    }
    status.errors.extend(problems);
}

/// How a sync ended, for its history: the worst of its steps. A step held back by its preflight
/// or a failed dependency makes it `blocked`, not `succeeded` (nor `no-op` when nothing else
/// was written): something the plan wanted is not there.
fn sync_result(report: &ApplyReport) -> SyncResult {
    let any = |result: fn(&StepResult) -> bool| report.steps.iter().any(|s| result(&s.result));
    if any(|r| matches!(r, StepResult::Conflict { .. })) {
        SyncResult::Conflict
    } else if report.failed() {
        SyncResult::Failed
    } else if report.waiting() {
        SyncResult::Waiting
    } else if any(|r| matches!(r, StepResult::Blocked { .. })) {
        SyncResult::Blocked
    } else if report.changes().is_empty() {
        SyncResult::NoOp
    } else {
        SyncResult::Succeeded
    }
}

/// The app's status while the writes of `plan` are in flight: out of sync, at the revision being
/// applied; resources, health and the last sync (the revision in force) as last seen.
fn in_flight(ctx: &Context, plan: &Plan, memory: &AppMemory) -> AppStatus {
    let short = plan.revision.get(..12).unwrap_or(&plan.revision);
    let phase = Phase::Syncing(short.to_string());
    let mut status = ctx
        .status_of(&plan.app)
        .unwrap_or_else(|| AppStatus::unknown(&plan.app, &plan.revision, phase.clone()));
    status.revision = plan.revision.clone();
    status.sync = SyncStatus::OutOfSync;
    status.phase = phase;
    status.errors.clear();
    status.last_sync = memory.last_sync.clone();
    status.observed_at = SystemTime::now();
    status
}

async fn assess(
    ctx: &Context,
    plan: &Plan,
    report: Option<&ApplyReport>,
    live: &LiveSnapshot,
    secrets: &health::vault_secret::SecretChecks,
    memory: &mut AppMemory,
) -> Vec<ResourceStatus> {
    let mut out = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let applied = report.and_then(|r| r.steps.get(i)).map(|s| &s.result);
        let just_wrote = applied.is_some_and(StepResult::wrote);
        if just_wrote {
            // The cached verdict and reads were about the previous version.
            memory.health.remove(&step.id);
            memory.job_reads.remove(&step.id);
        }
        let kind = step.id.kind;
        let assessment = match kind {
            _ if just_wrote && step.change != Change::Delete => Assessment {
                health: Health::Progressing,
                message: "just applied".into(),
            },
            ResourceKind::NomadJob => job_health(ctx, live, &step.id, memory).await,
            ResourceKind::CsiVolume => health::csi_volume(live, &step.id.scope, &step.id.name),
            ResourceKind::VaultSecret => secrets.assessment(&step.id),
            ResourceKind::ConsulConfigEntry => {
                health::consul_config_entry(live, &step.id.scope, &step.id.name)
            }
            ResourceKind::Bucket => health::bucket(live, &step.id.name),
        };
        if applied.is_some_and(StepResult::wrote) && step.reason.is_drift() {
            ctx.metrics.drift_healed(&plan.app);
            let entry = memory
                .heals
                .entry(step.id.clone())
                .or_insert_with(|| (step.spec_hash.clone(), 0));
            if entry.0 != step.spec_hash {
                *entry = (step.spec_hash.clone(), 0);
            }
            entry.1 += 1;
        } else if assessment.health == Health::Healthy && !step.change.is_write() {
            memory.heals.remove(&step.id);
        }
        let diff = match (&step.change, applied) {
            (Change::Create { diff } | Change::Update { diff }, result)
                if !result.is_some_and(StepResult::wrote) =>
            {
                Some(diff.clone())
            }
            _ => None,
        };
        let mut message = assessment.message;
        if let Some(result) = applied {
            match result {
                StepResult::Skipped { reason }
                | StepResult::Waiting { reason }
                | StepResult::Blocked { reason } => {
                    message = format!("{message}; {reason}");
                }
                StepResult::Failed { message: m, .. } | StepResult::Conflict { message: m } => {
                    message = format!("{message}; {m}");
                }
                _ => {}
            }
        }
        // A Vault requirement is checked, never written: with Vault configured it counts in the
        // app's health; without, it is only shown (not checked).
        let change = match (kind, &step.change) {
            (ResourceKind::VaultSecret, Change::NotManaged) if ctx.vault.is_some() => {
                ChangeKind::Unchanged
            }
            (_, change) => ChangeKind::of(change),
        };
        out.push(ResourceStatus {
            id: step.id.to_string(),
            change,
            reason: serde_json::to_value(step.reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            health: assessment.health,
            message,
            diff,
            wave: Some(step.wave),
        });
    }
    out
}

/// An app is as healthy as its least healthy managed resource (`empty` when it has none).
fn app_health(resources: &[ResourceStatus], empty: Health) -> Health {
    resources
        .iter()
        .filter(|r| r.change != ChangeKind::NotManaged)
        .map(|r| r.health)
        .reduce(Health::worst)
        .unwrap_or(empty)
}

/// What drover applied for an app and still owns, with its live health: shown while the app's
/// current revision cannot be loaded (the store's ownership survives a restart).
async fn running_resources(
    ctx: &Context,
    app: &str,
    memory: &mut AppMemory,
) -> Vec<ResourceStatus> {
    let live = ctx.live.snapshot();
    if !live.ready() {
        return Vec::new();
    }
    let owned = ctx.store.owned(app).await.unwrap_or_default();
    let mut out = Vec::new();
    for id in owned {
        let assessment = match id.kind {
            ResourceKind::NomadJob => job_health(ctx, &live, &id, memory).await,
            ResourceKind::CsiVolume => health::csi_volume(&live, &id.scope, &id.name),
            ResourceKind::ConsulConfigEntry => {
                health::consul_config_entry(&live, &id.scope, &id.name)
            }
            ResourceKind::Bucket => health::bucket(&live, &id.name),
            _ => continue,
        };
        out.push(ResourceStatus {
            id: id.to_string(),
            change: ChangeKind::Unknown,
            reason: "invalid_spec".to_string(),
            health: assessment.health,
            message: format!("as last applied: {}", assessment.message),
            diff: None,
            wave: None,
        });
    }
    out
}

/// A job's health, re-read only when its stub changed or it has not settled.
async fn job_health(
    ctx: &Context,
    live: &LiveSnapshot,
    id: &ResourceId,
    memory: &mut AppMemory,
) -> Assessment {
    let fingerprint = live
        .job(&id.scope, &id.name)
        .map(|s| {
            format!(
                "{}:{}:{}:{:?}:{:?}",
                s.modify_index,
                s.job_modify_index,
                s.stop,
                s.summary,
                live.job_activity(&id.scope, &id.name)
            )
        })
        .unwrap_or_default();
    if let Some((seen, cached)) = memory.health.get(id)
        && *seen == fingerprint
        && cached.health.is_settled()
    {
        return cached.clone();
    }
    let activity = live.job_activity(&id.scope, &id.name);
    let marks = health::ReadMarks {
        session: live.stream_session,
        job: live.job(&id.scope, &id.name).map(|s| s.modify_index),
        deployments: activity.deployments,
        allocations: activity.allocations,
    };
    let reads = memory.job_reads.entry(id.clone()).or_default();
    let assessment = match reads.assess(&ctx.nomad, &id.scope, &id.name, marks).await {
        Ok(a) => a,
        Err(e) => Assessment {
            health: Health::Unknown,
            message: format!("health unknown: {e}"),
        },
    };
    memory
        .health
        .insert(id.clone(), (fingerprint, assessment.clone()));
    assessment
}

/// How an apply failed: transient if any step can succeed on a retry (a transient error or a
/// compare-and-set conflict, which the next plan resolves), else permanent; `None` if none failed.
fn failure_kind(report: &ApplyReport) -> Option<Failure> {
    let mut kind = None;
    for hook in &report.hooks {
        match hook.outcome {
            apply::hooks::HookOutcome::Failed {
                transient: true, ..
            } => return Some(Failure::Transient),
            apply::hooks::HookOutcome::Failed {
                transient: false, ..
            } => kind = Some(Failure::Permanent),
            _ => {}
        }
    }
    for step in &report.steps {
        match step.result {
            StepResult::Failed {
                transient: true, ..
            }
            | StepResult::Conflict { .. } => return Some(Failure::Transient),
            StepResult::Failed {
                transient: false, ..
            } => kind = Some(Failure::Permanent),
            _ => {}
        }
    }
    kind
}

/// What a permanent failure is held on: the revision, the triage and the live stubs of the
/// triaged resources. A new commit or a change of one of them in the cluster lets it retry.
fn facts_key(revision: &str, triage: &[plan::Triage], live: &LiveSnapshot) -> String {
    use std::fmt::Write as _;
    let mut key = revision.to_string();
    for t in triage {
        let _ = write!(key, "|{}:{:?}:{:?}", t.id, t.verdict, t.reason);
        match t.id.kind {
            ResourceKind::NomadJob => {
                let _ = write!(key, ":{:?}", live.job(&t.id.scope, &t.id.name));
            }
            ResourceKind::CsiVolume => {
                let _ = write!(key, ":{:?}", live.volume(&t.id.scope, &t.id.name));
            }
            _ => {}
        }
    }
    key
}

fn failure(
    ctx: &Context,
    app: &App,
    revision: &str,
    message: String,
    kind: Failure,
    facts: &str,
    memory: &mut AppMemory,
) -> Outcome {
    tracing::warn!(app = %app.name, error = %message, transient = kind == Failure::Transient, "reconcile failed");
    let action = memory
        .failed(kind, &ctx.settings)
        .map_or(Action::AwaitChange, Action::RequeueAfter);
    let phase = Phase::PlanFailed {
        permanent: kind == Failure::Permanent,
    };
    let mut status = AppStatus::unknown(&app.name, revision, phase);
    status.errors.push(message);
    status.auto_sync = app.sync.auto;
    status.last_sync = memory.last_sync.clone();
    status.sync = SyncStatus::Unknown;
    if kind == Failure::Permanent {
        memory.hold_permanent(facts.to_string(), &status);
    }
    Outcome {
        status,
        plan: None,
        report: None,
        action,
    }
}

fn waiting_for_dependency(
    ctx: &Context,
    app: &App,
    revision: &str,
    triage: &[plan::Triage],
    dependency: &str,
    memory: &AppMemory,
) -> Outcome {
    let mut status = AppStatus::unknown(
        &app.name,
        revision,
        Phase::WaitingForDependency(dependency.to_string()),
    );
    status.auto_sync = app.sync.auto;
    status.last_sync = memory.last_sync.clone();
    status
        .errors
        .push(format!("waiting for app {dependency} to be Healthy"));
    let pending = triage.iter().any(|t| {
        matches!(
            t.verdict,
            plan::Verdict::Create | plan::Verdict::Suspect | plan::Verdict::Delete
        )
    });
    status.sync = if pending {
        SyncStatus::OutOfSync
    } else {
        SyncStatus::Synced
    };
    status.resources = triage
        .iter()
        .map(|t| ResourceStatus {
            id: t.id.to_string(),
            change: match t.verdict {
                plan::Verdict::Create => ChangeKind::Create,
                plan::Verdict::Suspect => ChangeKind::Check,
                plan::Verdict::Delete => ChangeKind::Delete,
                plan::Verdict::Unchanged => ChangeKind::Unchanged,
                plan::Verdict::NotManaged => ChangeKind::NotManaged,
            },
            reason: serde_json::to_value(t.reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            health: Health::Unknown,
            message: format!("waiting for {dependency}"),
            diff: None,
            wave: None,
        })
        .collect();
    Outcome {
        status,
        plan: None,
        report: None,
        action: Action::RequeueAfter(ctx.settings.progress_interval),
    }
}

/// A sync that would delete more than `max_share` of an app's resources (and more than one) is
/// refused: a half-written or broken app.yaml must not empty the cluster.
fn prune_share_exceeded(app: &App, plan: &Plan, max_share: f64) -> bool {
    let deletes = plan
        .steps
        .iter()
        .filter(|s| s.change == Change::Delete)
        .count();
    let total = app.resources.len() + deletes;
    let exceeded = deletes > 1 && deletes as f64 > max_share * total as f64;
    if exceeded {
        tracing::warn!(app = %app.name, deletes, total, "prune refused: too many deletions at once");
    }
    exceeded
}

/// Drifted resources healed [`apply::HEAL_LIMIT`] times at this spec without ever becoming
/// healthy: something keeps undoing drover (a deployment's auto_revert, another controller).
fn held_heals(plan: &Plan, memory: &AppMemory) -> Vec<ResourceId> {
    plan.steps
        .iter()
        .filter(|s| s.reason.is_drift())
        .filter(|s| {
            memory
                .heals
                .get(&s.id)
                .is_some_and(|(hash, n)| *hash == s.spec_hash && *n >= apply::HEAL_LIMIT)
        })
        .map(|s| s.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::LiveStore;
    use crate::plan::tests::{app, bucket, job, job_id, volume, volume_id};
    use crate::plan::{Payload, Reason, Step};
    use crate::providers::nomad::{NomadClient, NomadConfig};
    use crate::store::rid;
    use crate::store::{Marker, Store};

    fn step(id: ResourceId, change: Change, reason: Reason, spec_hash: &str) -> Step {
        Step {
            id,
            wave: 0,
            change,
            reason,
            payload: Payload::None,
            spec_hash: spec_hash.into(),
            after: Vec::new(),
        }
    }

    /// A plan with one Unchanged step per desired resource and `deletes` deletions.
    fn plan_for(app: &App, deletes: usize) -> Plan {
        let mut steps: Vec<Step> = app
            .resources
            .iter()
            .map(|r| step(r.id.clone(), Change::Unchanged, Reason::InSync, "h"))
            .collect();
        steps.extend((0..deletes).map(|i| {
            step(
                job_id(&format!("gone-{i}")),
                Change::Delete,
                Reason::RemovedFromGit,
                "",
            )
        }));
        Plan {
            app: app.name.clone(),
            revision: "r".into(),
            steps,
        }
    }

    #[test]
    fn a_sync_with_a_blocked_step_is_recorded_blocked_and_the_old_results_keep_their_words() {
        let report = |results: Vec<StepResult>| ApplyReport {
            steps: results
                .into_iter()
                .zip(0..)
                .map(|(result, i)| apply::StepReport {
                    id: job_id(&format!("job-{i}")),
                    change: "update".into(),
                    result,
                })
                .collect(),
            hooks: Vec::new(),
        };
        let wrote = || StepResult::Applied { live_index: 7 };
        let blocked = || StepResult::Blocked {
            reason: "bucket b does not exist and is not in this plan".into(),
        };
        let waiting = || StepResult::Waiting {
            reason: "plugin".into(),
        };
        let failed = || StepResult::Failed {
            message: "500".into(),
            transient: true,
        };
        let conflict = || StepResult::Conflict {
            message: "index".into(),
        };
        for (results, expected) in [
            (vec![wrote(), blocked()], SyncResult::Blocked),
            (vec![blocked()], SyncResult::Blocked),
            (vec![wrote()], SyncResult::Succeeded),
            (vec![StepResult::Confirmed], SyncResult::NoOp),
            (vec![wrote(), blocked(), waiting()], SyncResult::Waiting),
            (vec![blocked(), failed()], SyncResult::Failed),
            (vec![failed(), conflict()], SyncResult::Conflict),
        ] {
            assert_eq!(
                sync_result(&report(results.clone())),
                expected,
                "{results:?}"
            );
        }
    }

    fn app_with(resources: usize) -> App {
        app((0..resources).map(|i| job(&format!("job-{i}"))).collect())
    }

    fn exceeded(resources: usize, deletes: usize, max_share: f64) -> bool {
        let app = app_with(resources);
        prune_share_exceeded(&app, &plan_for(&app, deletes), max_share)
    }

    #[test]
    fn prune_share_counts_only_deletions_against_the_app_and_allows_one_delete() {
        // Share of deletions among desired + deleted resources, at a limit of one half.
        assert!(!exceeded(3, 0, 0.4), "no deletion never exceeds");
        assert!(!exceeded(0, 1, 0.5), "a single deletion is always allowed");
        assert!(!exceeded(5, 1, 0.5));
        assert!(!exceeded(2, 2, 0.5), "exactly the share is allowed");
        assert!(!exceeded(3, 3, 0.5));
        assert!(exceeded(2, 3, 0.5), "more than the share is refused");
        assert!(exceeded(1, 3, 0.5));
        assert!(exceeded(0, 2, 0.5));
        assert!(!exceeded(1, 3, 0.8));
    }

    #[test]
    fn a_follower_plans_every_mode_as_a_dry_run_and_a_leader_keeps_it() {
        for mode in [Mode::Auto, Mode::Manual, Mode::DryRun, Mode::Removed] {
            assert_eq!(on_this_replica(mode, true), mode);
            assert_eq!(on_this_replica(mode, false), Mode::DryRun);
        }
    }

    #[test]
    fn the_sync_policy_follows_the_mode_the_apps_policy_and_the_preflight() {
        let mut app = app_with(2);
        app.sync.auto = true;
        app.sync.self_heal = true;
        app.sync.prune = true;
        let plan = Plan {
            app: "a".into(),
            revision: "r".into(),
            steps: vec![step(
                job_id("job-0"),
                Change::Unchanged,
                Reason::LiveChanged,
                "h",
            )],
        };
        let blocked = BTreeMap::from([(job_id("job-1"), "lacks key K".to_string())]);
        let mut memory = AppMemory::default();
        memory
            .heals
            .insert(job_id("job-0"), ("h".into(), apply::HEAL_LIMIT));
        let policy = |mode, app: &App, memory: &mut AppMemory| {
            sync_policy(mode, app, &plan, 1.0, blocked.clone(), memory).0
        };

        let auto = policy(Mode::Auto, &app, &mut memory).unwrap_or_else(|| panic!("auto"));
        assert!(auto.heal_drift && auto.prune);
        assert_eq!(auto.hold, [job_id("job-0")]);
        assert_eq!(auto.blocked, blocked);

        app.sync.self_heal = false;
        app.sync.prune = false;
        let auto = policy(Mode::Auto, &app, &mut memory).unwrap_or_else(|| panic!("auto"));
        assert!(!auto.heal_drift && !auto.prune);

        // A manual sync heals drift whatever self_heal says, holds nothing and forgets the heals.
        app.sync.prune = true;
        let manual = policy(Mode::Manual, &app, &mut memory).unwrap_or_else(|| panic!("manual"));
        assert!(manual.heal_drift && manual.prune);
        assert!(manual.hold.is_empty() && memory.heals.is_empty());
        assert_eq!(manual.blocked, blocked);

        let removed = policy(Mode::Removed, &app, &mut memory).unwrap_or_else(|| panic!("gone"));
        assert!(!removed.heal_drift && removed.prune);
        app.sync.prune = false;
        assert!(policy(Mode::Removed, &app, &mut memory).is_none());

        app.sync.auto = false;
        assert!(policy(Mode::Auto, &app, &mut memory).is_none());
        assert!(policy(Mode::DryRun, &app, &mut memory).is_none());
    }

    #[test]
    fn heals_are_held_only_for_drift_at_the_same_spec_after_the_limit() {
        let plan = Plan {
            app: "a".into(),
            revision: "r".into(),
            steps: vec![
                step(job_id("held"), Change::Unchanged, Reason::LiveChanged, "h"),
                step(job_id("below"), Change::Unchanged, Reason::Stopped, "h"),
                step(job_id("respec"), Change::Unchanged, Reason::Missing, "h2"),
                step(job_id("git"), Change::Unchanged, Reason::GitChanged, "h"),
                step(job_id("never"), Change::Unchanged, Reason::LiveChanged, "h"),
            ],
        };
        let mut memory = AppMemory::default();
        memory
            .heals
            .insert(job_id("held"), ("h".into(), apply::HEAL_LIMIT));
        memory
            .heals
            .insert(job_id("below"), ("h".into(), apply::HEAL_LIMIT - 1));
        memory
            .heals
            .insert(job_id("respec"), ("h".into(), apply::HEAL_LIMIT + 2));
        memory
            .heals
            .insert(job_id("git"), ("h".into(), apply::HEAL_LIMIT + 2));
        assert_eq!(held_heals(&plan, &memory), [job_id("held")]);
        memory
            .heals
            .insert(job_id("below"), ("h".into(), apply::HEAL_LIMIT + 1));
        assert_eq!(
            held_heals(&plan, &memory),
            [job_id("held"), job_id("below")]
        );
    }

    fn resource(id: ResourceId, change: ChangeKind, health: Health) -> ResourceStatus {
        ResourceStatus {
            id: id.to_string(),
            change,
            reason: String::new(),
            health,
            message: String::new(),
            diff: None,
            wave: None,
        }
    }

    fn report_of(results: Vec<(ResourceId, StepResult)>) -> ApplyReport {
        ApplyReport {
            steps: results
                .into_iter()
                .map(|(id, result)| apply::StepReport {
                    id,
                    change: "create".into(),
                    result,
                })
                .collect(),
            hooks: Vec::new(),
        }
    }

    /// The status of one cycle of `app` (jobs `web` and `db`) with this plan and apply report.
    fn derived(
        auto: bool,
        changes: [Change; 2],
        report: Option<&ApplyReport>,
        health: [Health; 2],
        prune_refusal: Option<&str>,
    ) -> AppStatus {
        let mut app = app(vec![job("web"), job("db")]);
        app.sync.auto = auto;
        let [web, db] = changes;
        let plan = Plan {
            app: app.name.clone(),
            revision: "r".into(),
            steps: vec![
                step(job_id("web"), web, Reason::New, "h"),
                step(job_id("db"), db, Reason::InSync, "h"),
            ],
        };
        let resources = plan
            .steps
            .iter()
            .zip(health)
            .map(|(s, h)| resource(s.id.clone(), ChangeKind::of(&s.change), h))
            .collect();
        derive_status(Cycle {
            app: &app,
            revision: "r",
            plan: &plan,
            report,
            resources,
            prune_refusal: prune_refusal.map(str::to_string),
            last_sync: None,
            at: SystemTime::UNIX_EPOCH,
        })
    }

    fn create() -> Change {
        Change::Create { diff: "+".into() }
    }

    #[test]
    fn derive_status_phases_follow_the_facts_in_order() {
        use Health::{Healthy, Progressing};
        let all_healthy = [Healthy, Healthy];
        // Nothing to write, everything Healthy: synced.
        let synced = derived(
            true,
            [Change::Unchanged, Change::Unchanged],
            None,
            all_healthy,
            None,
        );
        assert_eq!(
            (synced.sync, synced.phase),
            (SyncStatus::Synced, Phase::Synced)
        );
        assert!(synced.errors.is_empty());
        assert_eq!(synced.health, Healthy);
        let converging = derived(
            true,
            [Change::Unchanged, Change::Unchanged],
            None,
            [Healthy, Progressing],
            None,
        );
        assert_eq!(converging.phase, Phase::WaitingForHealth);
        assert_eq!(converging.health, Progressing);
        // A write not made: out of sync, and why.
        let pending = derived(true, [create(), Change::Unchanged], None, all_healthy, None);
        assert_eq!(pending.sync, SyncStatus::OutOfSync);
        assert_eq!(pending.phase, Phase::OutOfSync(Pending::Writes));
        let manual = derived(
            false,
            [create(), Change::Unchanged],
            None,
            all_healthy,
            None,
        );
        assert_eq!(manual.phase, Phase::OutOfSync(Pending::AutoSyncOff));
        assert!(!manual.auto_sync);
        let refused = derived(
            true,
            [Change::Delete, Change::Unchanged],
            None,
            all_healthy,
            Some("prune refused: too many"),
        );
        assert_eq!(refused.phase, Phase::OutOfSync(Pending::PruneRefused));
        assert_eq!(refused.errors, ["prune refused: too many"]);
        // The write made: synced (health follows), the step's result decides the rest.
        let written = report_of(vec![
            (job_id("web"), StepResult::Applied { live_index: 3 }),
            (job_id("db"), StepResult::Unchanged),
        ]);
        let applied = derived(
            true,
            [create(), Change::Unchanged],
            Some(&written),
            [Progressing, Healthy],
            None,
        );
        assert_eq!(applied.sync, SyncStatus::Synced);
        assert_eq!(applied.phase, Phase::WaitingForHealth);
        let waiting = report_of(vec![(
            job_id("web"),
            StepResult::Waiting {
                reason: "plugin".into(),
            },
        )]);
        let waits = derived(
            true,
            [create(), Change::Unchanged],
            Some(&waiting),
            all_healthy,
            None,
        );
        assert_eq!(waits.phase, Phase::Waiting);
        assert_eq!(waits.errors, ["nomad_job/default/web: waiting: plugin"]);
        // A failure wins over a refused prune, and says whether it is permanent.
        let forbidden = report_of(vec![(
            job_id("web"),
            StepResult::Failed {
                message: "403".into(),
                transient: false,
            },
        )]);
        let failed = derived(
            true,
            [create(), Change::Unchanged],
            Some(&forbidden),
            all_healthy,
            Some("prune refused"),
        );
        assert_eq!(failed.phase, Phase::SyncFailed { permanent: true });
        assert_eq!(
            failed.phase.to_string(),
            format!(
                "sync failed {}",
                "(permanent: retried when Git or the cluster changes, or at the resync)"
            )
        );
        assert_eq!(
            failed.errors,
            ["nomad_job/default/web: 403", "prune refused"]
        );
        assert_eq!(failed.sync, SyncStatus::OutOfSync);
    }

    #[test]
    fn a_not_managed_resource_does_not_count_for_the_apps_health() {
        let resources = vec![
            resource(job_id("a"), ChangeKind::Unchanged, Health::Healthy),
            resource(job_id("b"), ChangeKind::NotManaged, Health::Degraded),
        ];
        assert_eq!(app_health(&resources, Health::Unknown), Health::Healthy);
        assert_eq!(app_health(&[], Health::Unknown), Health::Unknown);
    }

    #[test]
    fn vault_is_read_again_only_when_a_cycle_may_write_is_manual_or_the_check_is_stale() {
        use health::vault_secret::{SecretChecks, Verdict};
        let requirement = |path: &str| SecretRequirement {
            path: path.to_string(),
            keys: BTreeSet::from(["KEY".to_string()]),
            required_by: Vec::new(),
        };
        let wanted = vec![requirement("nomad/data/default/web")];
        let at = tokio::time::Instant::now();
        let resync = Duration::from_secs(180);
        let checked = |verdict: Verdict| SecretsChecked {
            requirements: wanted.clone(),
            checks: SecretChecks::from_verdicts(vec![(wanted[0].clone(), verdict)]),
            at,
        };
        let holds = checked(Verdict::Holds);
        let due = |last: Option<&SecretsChecked>, write: bool, mode: Mode, after: Duration| {
            secrets_due(last, &wanted, write, mode, at + after, resync)
        };
        let soon = Duration::from_secs(1);
        assert!(due(None, false, Mode::Auto, soon), "never checked");
        assert!(
            !due(Some(&holds), false, Mode::Auto, soon),
            "a progress cycle reuses it"
        );
        assert!(
            !due(Some(&holds), false, Mode::Auto, resync - soon),
            "not yet a resync old"
        );
        assert!(due(Some(&holds), false, Mode::Auto, resync), "a resync old");
        assert!(
            due(Some(&holds), true, Mode::Auto, soon),
            "a cycle that may write"
        );
        assert!(
            due(Some(&holds), false, Mode::Manual, soon),
            "a manual sync"
        );
        let lacks = checked(Verdict::Lacks("lacks KEY".into()));
        assert!(
            due(Some(&lacks), false, Mode::Auto, soon),
            "a requirement that did not hold"
        );
        let unchecked = checked(Verdict::Unchecked("sealed".into()));
        assert!(
            due(Some(&unchecked), false, Mode::Auto, soon),
            "a read that failed"
        );
        let other = [requirement("nomad/data/default/api")];
        assert!(
            secrets_due(Some(&holds), &other, false, Mode::Auto, at + soon, resync),
            "other requirements"
        );
    }

    #[test]
    fn transient_failures_back_off_with_jitter_up_to_the_limit_and_permanent_ones_wait() {
        let settings = ControllerSettings {
            progress_interval: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..ControllerSettings::default()
        };
        let mut memory = AppMemory::default();
        let delays: Vec<Duration> = (0..6)
            .map(|_| {
                memory
                    .failed(Failure::Transient, &settings)
                    .expect("a delay")
            })
            .collect();
        // The n-th delay is 100 ms × 2ⁿ plus a jitter below as much again, never above the limit.
        for (n, delay) in delays.iter().enumerate() {
            let base = (Duration::from_millis(100) * 2u32.pow(n as u32)).min(settings.max_backoff);
            assert!(*delay >= base, "{n}: {delay:?} < {base:?}");
            assert!(
                *delay < base * 2 || *delay == settings.max_backoff,
                "{n}: {delay:?}"
            );
            assert!(*delay <= settings.max_backoff, "{n}: {delay:?}");
        }
        // A permanent failure sets no timer, and the next transient one starts over.
        assert_eq!(memory.failed(Failure::Permanent, &settings), None);
        let first = memory
            .failed(Failure::Transient, &settings)
            .expect("a delay");
        assert!(first < Duration::from_millis(200), "{first:?}");
    }

    #[test]
    fn a_permanent_failure_is_held_only_on_the_same_facts() {
        let mut memory = AppMemory::default();
        let status = AppStatus::unknown("a", "r", Phase::SyncFailed { permanent: true });
        let hour = Duration::from_secs(3600);
        assert!(memory.permanent_on("r|x", hour).is_none());
        memory.hold_permanent("r|x".into(), &status);
        assert_eq!(memory.permanent_on("r|x", hour), Some(&status));
        assert!(memory.permanent_on("r2|x", hour).is_none());
        assert!(memory.permanent_on("", hour).is_none());
        // A resync interval later it is tried again (the soak found a 403 held for good after
        // the policy was fixed: nothing drover watches had changed).
        assert!(memory.permanent_on("r|x", Duration::ZERO).is_none());
    }

    #[test]
    fn an_apply_fails_permanently_only_when_no_failure_is_worth_a_retry() {
        let report = |results: Vec<StepResult>| ApplyReport {
            steps: results
                .into_iter()
                .map(|result| apply::StepReport {
                    id: job_id("j"),
                    change: "update".into(),
                    result,
                })
                .collect(),
            hooks: Vec::new(),
        };
        let permanent = || StepResult::Failed {
            message: "403".into(),
            transient: false,
        };
        let transient = || StepResult::Failed {
            message: "503".into(),
            transient: true,
        };
        let conflict = || StepResult::Conflict {
            message: "index".into(),
        };
        assert_eq!(failure_kind(&report(vec![StepResult::Deleted])), None);
        assert_eq!(
            failure_kind(&report(vec![StepResult::Confirmed, permanent()])),
            Some(Failure::Permanent)
        );
        assert_eq!(
            failure_kind(&report(vec![permanent(), transient()])),
            Some(Failure::Transient)
        );
        assert_eq!(
            failure_kind(&report(vec![permanent(), conflict(), permanent()])),
            Some(Failure::Transient)
        );
    }

    #[test]
    fn the_facts_of_a_failure_change_with_the_revision_and_the_triage() {
        let live = LiveSnapshot::default();
        let triage = |verdict| {
            vec![plan::Triage {
                id: job_id("j"),
                verdict,
                reason: Reason::New,
            }]
        };
        let key = facts_key("r1", &triage(plan::Verdict::Create), &live);
        assert_eq!(key, facts_key("r1", &triage(plan::Verdict::Create), &live));
        assert_ne!(key, facts_key("r2", &triage(plan::Verdict::Create), &live));
        assert_ne!(key, facts_key("r1", &triage(plan::Verdict::Suspect), &live));
        assert_ne!(key, facts_key("r1", &[], &live));
    }

    fn marker(app: &str, resource: &str, hash: &str, index: u64) -> Marker {
        Marker {
            app: app.into(),
            resource: rid(resource),
            spec_hash: hash.into(),
            live_index: index,
            revision: "r7".into(),
            applied_at: SystemTime::UNIX_EPOCH,
        }
    }

    #[tokio::test]
    async fn read_markers_returns_the_apps_markers_ownership_and_protects_volumes_that_left_git() {
        let store = Store::open_in_memory().expect("store");
        for m in [
            marker("a", "nomad_job/default/web", "hw", 7),
            marker("a", "csi_volume/default/data", "hd", 0),
            marker("b", "nomad_job/default/theirs", "hb", 3),
        ] {
            store.set_marker(&m).await.expect("marker");
        }
        for (owner, resource) in [
            ("a", "nomad_job/default/web"),
            ("a", "nomad_job/default/old"),
            ("a", "csi_volume/default/data"),
            ("a", "csi_volume/default/scratch"),
            ("a", "bucket/media"),
            ("b", "csi_volume/default/theirs"),
        ] {
            store
                .record_owned(owner, &rid(resource))
                .await
                .expect("own");
        }
        let nomad = NomadClient::new(NomadConfig::default()).expect("client");
        let ctx = Context::new(
            nomad,
            store,
            LiveStore::default(),
            ControllerSettings::default(),
        );
        let desired = app(vec![job("web"), volume("data"), bucket("media")]);
        let (markers, owned) = read_markers(&ctx, &desired, &desired).await.expect("read");
        let expected = BTreeMap::from([
            (
                job_id("web"),
                AppliedMarker {
                    spec_hash: "hw".into(),
                    live_index: 7,
                    revision: "r7".into(),
                },
            ),
            (
                volume_id("data"),
                AppliedMarker {
                    spec_hash: "hd".into(),
                    live_index: 0,
                    revision: "r7".into(),
                },
            ),
        ]);
        assert_eq!(markers, expected);
        assert_eq!(
            owned
                .resources
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "bucket/media",
                "csi_volume/default/data",
                "csi_volume/default/scratch",
                "nomad_job/default/old",
                "nomad_job/default/web",
            ]
        );
        assert_eq!(owned.protected, [volume_id("scratch")]);

        // The same app once it left Git: its volumes keep the prevent_destroy they were last
        // declared with; one it no longer declared at all stays protected.
        let mut kept = volume("scratch");
        if let crate::desired::ResourceSpec::CsiVolume(v) = &mut kept.spec {
            v.prevent_destroy = true;
        }
        let mut kept_bucket = bucket("media");
        if let crate::desired::ResourceSpec::Bucket(b) = &mut kept_bucket.spec {
            b.prevent_destroy = true;
        }
        let last = app(vec![job("web"), volume("data"), kept, kept_bucket]);
        let emptied = app(Vec::new());
        let (_, owned) = read_markers(&ctx, &emptied, &last).await.expect("read");
        assert_eq!(
            owned.protected,
            [
                crate::plan::tests::id(ResourceKind::Bucket, "", "media"),
                volume_id("scratch")
            ]
        );
        // A bucket whose last spec did not say prevent_destroy is not protected.
        let last = app(vec![
            job("web"),
            volume("data"),
            volume("scratch"),
            bucket("media"),
        ]);
        let (_, owned) = read_markers(&ctx, &emptied, &last).await.expect("read");
        assert!(owned.protected.is_empty(), "{:?}", owned.protected);
        let last = app(vec![job("web"), volume("scratch")]);
        let (_, owned) = read_markers(&ctx, &emptied, &last).await.expect("read");
        assert_eq!(owned.protected, [volume_id("data")]);
    }

    /// An app `a` whose `jobs` are one batch job each, with the given `sync:` policy.
    fn loaded_app(jobs: &[&str], sync: &str) -> LoadedApp {
        let mut files = BTreeMap::new();
        let mut yaml = String::from("name: a\nresources:\n");
        for job in jobs {
            yaml.push_str(&format!("  - nomad_job: {{ file: {job}.nomad.hcl }}\n"));
            files.insert(
                format!("apps/a/{job}.nomad.hcl"),
                format!(
                    "job \"{job}\" {{\n  type = \"batch\"\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"docker\"\n      config {{\n        image = \"busybox:1\"\n      }}\n    }}\n  }}\n}}\n"
                )
                .into_bytes(),
            );
        }
        yaml.push_str(&format!("sync: {sync}\n"));
        files.insert("apps/a/app.yaml".to_string(), yaml.into_bytes());
        let revision = crate::source::Revision::from_files("r", files);
        let mut loaded = crate::desired::load(&revision);
        assert!(loaded.repo_errors.is_empty(), "{:?}", loaded.repo_errors);
        loaded.apps.remove(0)
    }

    struct Cluster {
        stack: drover_devstack::Devstack,
        ctx: Context,
    }

    impl Cluster {
        async fn start() -> Cluster {
            let stack = drover_devstack::Devstack::start(drover_devstack::DevstackConfig {
                time_scale: 0.01,
                ..Default::default()
            })
            .await
            .expect("devstack");
            let nomad = NomadClient::new(NomadConfig {
                address: stack.nomad_url(),
                max_retries: 0,
                ..NomadConfig::default()
            })
            .expect("client");
            let ctx = Context::new(
                nomad,
                Store::open_in_memory().expect("store"),
                LiveStore::default(),
                ControllerSettings::default(),
            );
            Cluster { stack, ctx }
        }

        /// One reconcile on a fresh listing of the cluster (no watcher runs in these tests).
        async fn reconcile(&self, loaded: &LoadedApp, mode: Mode) -> Outcome {
            self.ctx
                .live
                .load_once(&self.ctx.nomad)
                .await
                .expect("list");
            let mut memory = AppMemory::default();
            reconcile(&self.ctx, loaded, "r", &[], mode, &mut memory).await
        }

        async fn jobs(&self) -> Vec<String> {
            let mut names = Vec::new();
            for job in ["j1", "j2", "j3", "j4"] {
                if self
                    .ctx
                    .nomad
                    .read_job("default", job)
                    .await
                    .expect("read")
                    .is_some()
                {
                    names.push(job.to_string());
                }
            }
            names
        }
    }

    fn prune_refused(outcome: &Outcome) -> bool {
        outcome
            .status
            .errors
            .iter()
            .any(|e| e.contains("prune refused"))
    }

    #[tokio::test]
    async fn prune_deletes_only_with_the_policy_and_within_the_share() {
        let cluster = Cluster::start().await;
        let all = ["j1", "j2", "j3", "j4"];
        let created = cluster
            .reconcile(&loaded_app(&all, "{ prune: true }"), Mode::Auto)
            .await;
        assert_eq!(created.report.map(|r| r.changes().len()), Some(4));
        assert_eq!(cluster.jobs().await, all);

        // Three of four resources gone at once: refused, nothing deleted.
        let most_gone = cluster
            .reconcile(&loaded_app(&["j1"], "{ prune: true }"), Mode::Auto)
            .await;
        assert!(prune_refused(&most_gone), "{:?}", most_gone.status);
        assert_eq!(cluster.jobs().await, all);

        // Prune off: nothing deleted, and nothing was refused either.
        let prune_off = cluster
            .reconcile(&loaded_app(&["j1"], "{ prune: false }"), Mode::Auto)
            .await;
        assert!(!prune_refused(&prune_off), "{:?}", prune_off.status);
        let one_gone_prune_off = cluster
            .reconcile(
                &loaded_app(&["j1", "j2", "j3"], "{ prune: false }"),
                Mode::Manual,
            )
            .await;
        assert!(!prune_refused(&one_gone_prune_off));
        assert_eq!(cluster.jobs().await, all);

        // One of four gone, prune on: deleted.
        let one_gone = cluster
            .reconcile(
                &loaded_app(&["j1", "j2", "j3"], "{ prune: true }"),
                Mode::Auto,
            )
            .await;
        assert!(!prune_refused(&one_gone));
        assert_eq!(
            one_gone.report.map(|r| r.changes()),
            Some(vec!["delete nomad_job/default/j4".to_string()])
        );
        assert_eq!(cluster.jobs().await, ["j1", "j2", "j3"]);
        cluster.stack.shutdown().await;
    }

    #[tokio::test]
    async fn an_app_is_out_of_sync_only_while_a_write_is_pending() {
        let cluster = Cluster::start().await;
        let app = loaded_app(&["j1"], "{ auto: false }");
        let pending = cluster.reconcile(&app, Mode::Auto).await;
        assert_eq!(pending.status.sync, SyncStatus::OutOfSync);
        let written = cluster.reconcile(&app, Mode::Manual).await;
        assert_eq!(
            written.status.sync,
            SyncStatus::Synced,
            "{:?}",
            written.status
        );
        let converged = cluster.reconcile(&app, Mode::Auto).await;
        assert!(converged.report.is_none());
        assert_eq!(
            converged.status.sync,
            SyncStatus::Synced,
            "{:?}",
            converged.status
        );
        cluster.stack.shutdown().await;
    }

    #[tokio::test]
    async fn without_auto_sync_only_a_manual_sync_or_nothing_writes() {
        let cluster = Cluster::start().await;
        let app = loaded_app(&["j1"], "{ auto: false }");
        let auto = cluster.reconcile(&app, Mode::Auto).await;
        assert!(auto.report.is_none(), "{:?}", auto.report);
        assert_eq!(auto.status.sync, SyncStatus::OutOfSync);
        let dry = cluster.reconcile(&app, Mode::DryRun).await;
        assert!(dry.report.is_none());
        assert!(cluster.jobs().await.is_empty());

        let manual = cluster.reconcile(&app, Mode::Manual).await;
        assert_eq!(
            manual.report.map(|r| r.changes()),
            Some(vec!["create nomad_job/default/j1".to_string()])
        );
        assert_eq!(cluster.jobs().await, ["j1"]);

        let auto_app = loaded_app(&["j1", "j2"], "{ auto: true }");
        let synced = cluster.reconcile(&auto_app, Mode::Auto).await;
        assert_eq!(
            synced.report.map(|r| r.changes()),
            Some(vec!["create nomad_job/default/j2".to_string()])
        );
        cluster.stack.shutdown().await;
    }
}
