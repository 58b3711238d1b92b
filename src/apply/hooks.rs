//! Sync hooks: a Nomad batch job registered through the same client as the app's jobs (its
//! namespace, drover's owner meta, compare-and-set) and awaited, with a blocking query on its
//! allocations, until they complete, one fails, or the hook's timeout passes.
//!
//! Each run sets the job meta [`HOOK_RUN_META_KEY`] to a new value: a batch job that completed
//! is not run again by a register of the same spec, while a new job version is (Nomad places
//! new allocations for a batch job whose terminal ones belong to an older version).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::desired::{App, Hook, HookPhase, JobFormat, ResourceId, ResourceKind};
use crate::live::pacing::ListPacer;
use crate::plan::nomad_job::{OWNER_META_KEY, json_job, prepare, submission_format};
use crate::providers::nomad::types::AllocListStub;
use crate::providers::nomad::{NomadClient, NomadError, QueryOptions, RegisterOptions, job_body};
use crate::store::Store;
use crate::telemetry::error_chain;

/// Job meta key whose new value on each run makes the registration a new job version.
pub const HOOK_RUN_META_KEY: &str = "drover.hook-run";

/// The longest single blocking query while a hook is awaited (Nomad caps waits at 5 minutes).
const LONGEST_WAIT: Duration = Duration::from_secs(60);

/// One hook's run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HookRun {
    /// `pre_sync`, `post_sync` or `sync_fail`.
    pub phase: HookPhase,
    /// The hook's job, `nomad_job/<namespace>/<id>`.
    pub job: ResourceId,
    /// What happened.
    pub outcome: HookOutcome,
}

/// What a hook's run came to.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum HookOutcome {
    /// Every allocation completed.
    Succeeded,
    /// A `once: true` hook that completed before (at this revision): not run again.
    AlreadyRan {
        /// The revision it completed at.
        revision: String,
    },
    /// It did not complete: an allocation failed, the timeout passed, or it could not start.
    Failed {
        /// Why, for the app's status.
        reason: String,
        /// Worth running again at the next retry without a Git change.
        transient: bool,
    },
}

impl HookRun {
    /// Whether the hook failed.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, HookOutcome::Failed { .. })
    }

    /// `pre_sync hook nomad_job/default/seed`.
    pub fn name(&self) -> String {
        format!("{} hook {}", self.phase.as_str(), self.job)
    }

    /// The line shown on the app's status for a failure.
    pub fn problem(&self) -> Option<String> {
        match &self.outcome {
            HookOutcome::Failed { reason, .. } => Some(format!("{} failed: {reason}", self.name())),
            _ => None,
        }
    }
}

/// Run the app's hooks of `phase`, in the order declared; the first failure stops the rest.
pub async fn run_phase(
    nomad: &NomadClient,
    store: &Store,
    app: &App,
    revision: &str,
    phase: HookPhase,
) -> Vec<HookRun> {
    let mut runs = Vec::new();
    for hook in app.hooks.iter().filter(|h| h.phase == phase) {
        let run = run_one(nomad, store, app, revision, hook).await;
        match &run.outcome {
            HookOutcome::Succeeded => {
                tracing::info!(app = %app.name, hook = %run.name(), "hook completed");
            }
            HookOutcome::Failed { reason, .. } => {
                tracing::warn!(app = %app.name, hook = %run.name(), %reason, "hook failed");
            }
            HookOutcome::AlreadyRan { .. } => {}
        }
        let failed = run.failed();
        runs.push(run);
        if failed {
            break;
        }
    }
    runs
}

/// Record each run as an event of the app (a hook that already ran is not news).
pub async fn record_events(store: &Store, app: &str, runs: &[HookRun]) {
    for run in runs {
        let (level, message) = match &run.outcome {
            HookOutcome::Succeeded => ("info", format!("{} completed", run.name())),
            HookOutcome::Failed { .. } => ("error", run.problem().unwrap_or_default()),
            HookOutcome::AlreadyRan { .. } => continue,
        };
        let _ = store.add_event(Some(app), level, &message).await;
    }
}

async fn run_one(
    nomad: &NomadClient,
    store: &Store,
    app: &App,
    revision: &str,
    hook: &Hook,
) -> HookRun {
    let job = ResourceId {
        kind: ResourceKind::NomadJob,
        scope: app.namespace.clone(),
        name: hook.job.job_id.clone(),
    };
    let once_key = format!("{}/{}", job.scope, job.name);
    let outcome = async {
        if hook.once {
            match store
                .once_hook_ran(&app.name, hook.phase.as_str(), &once_key)
                .await
            {
                Ok(Some(revision)) => return HookOutcome::AlreadyRan { revision },
                Ok(None) => {}
                Err(e) => return failed(format!("reading the store: {}", error_chain(&e)), true),
            }
        }
        let outcome = register_and_await(nomad, &app.name, &job, hook).await;
        if hook.once && outcome == HookOutcome::Succeeded {
            // Recorded only on success: a failed once-hook runs again at the next sync.
            if let Err(e) = store
                .record_once_hook(&app.name, hook.phase.as_str(), &once_key, revision)
                .await
            {
                tracing::warn!(app = %app.name, job = %job, error = %error_chain(&e), "once hook completed but was not recorded: it may run again");
            }
        }
        outcome
    }
    .await;
    HookRun {
        phase: hook.phase,
        job,
        outcome,
    }
}

fn failed(reason: String, transient: bool) -> HookOutcome {
    HookOutcome::Failed { reason, transient }
}

/// Parse, register (a new version, compare-and-set on the live job) and await the allocations.
async fn register_and_await(
    nomad: &NomadClient,
    app: &str,
    id: &ResourceId,
    hook: &Hook,
) -> HookOutcome {
    let spec = &hook.job;
    let parsed = match spec.format {
        JobFormat::Hcl2 => nomad
            .parse_job(&spec.source, Some(&spec.variables), false)
            .await
            .map_err(|e| (error_chain(&e), e.is_transient())),
        JobFormat::Json => json_job(&spec.source).map_err(|e| (e, false)),
    };
    let job = match parsed {
        Ok(job) => job,
        Err((message, transient)) => {
            return failed(format!("parsing {}: {message}", spec.file), transient);
        }
    };
    let kind = job.get("Type").and_then(Value::as_str).unwrap_or("service");
    if kind != "batch" {
        return failed(
            format!("its job is type {kind}; a hook's job must be a batch job"),
            false,
        );
    }
    let mut job = prepare(job, id, app);
    job_body::set_meta(&mut job, HOOK_RUN_META_KEY, &run_id());
    let enforce_index = match nomad.read_job(&id.scope, &id.name).await {
        Ok(Some(live)) => {
            if live.meta.get(OWNER_META_KEY).map(String::as_str) != Some(app) {
                return failed(
                    format!(
                        "job {} exists and its meta {OWNER_META_KEY} does not name this app; not overwritten",
                        id.name
                    ),
                    false,
                );
            }
            live.job_modify_index
        }
        Ok(None) => 0,
        Err(e) => {
            return failed(
                format!("reading the job: {}", error_chain(&e)),
                e.is_transient(),
            );
        }
    };
    let options = RegisterOptions {
        enforce_index: Some(enforce_index),
        preserve_counts: false,
        submission_source: Some(spec.source.clone()),
        submission_format: Some(submission_format(spec).to_string()),
        submission_variables: Some(spec.variables.clone()),
    };
    let registered = match nomad.register_job(&job, &options).await {
        Ok(r) => r,
        Err(e) => return register_failure(&e),
    };
    let expected = placements(&job);
    let timeout = Duration::from_secs(hook.timeout_secs);
    await_allocations(nomad, id, registered.job_modify_index, expected, timeout).await
}

/// Why a register failed: a compare-and-set conflict (someone wrote the job since it was read)
/// is retried, never overwritten; other errors say what Nomad answered.
fn register_failure(error: &NomadError) -> HookOutcome {
    match error {
        e if e.is_enforce_index_conflict() => failed(
            "the job changed while registering it (conflict); not overwritten".into(),
            true,
        ),
        e => failed(format!("registering: {}", error_chain(e)), e.is_transient()),
    }
}

/// A value that differs on every run (the time, to the nanosecond).
fn run_id() -> String {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos().to_string())
        .unwrap_or_default()
}

/// How many allocations a run of the job places: the sum of its groups' counts.
fn placements(job: &Value) -> usize {
    job.get("TaskGroups")
        .and_then(Value::as_array)
        .map(|groups| {
            groups
                .iter()
                .map(|g| {
                    g.get("Count")
                        .and_then(Value::as_u64)
                        .and_then(|c| usize::try_from(c).ok())
                        .unwrap_or(1)
                })
                .sum()
        })
        .unwrap_or(1)
}

/// Follow the allocations of this run (created at or after `since`, the registration's index)
/// with blocking queries until [`verdict`] decides, or `timeout` passes.
async fn await_allocations(
    nomad: &NomadClient,
    id: &ResourceId,
    since: u64,
    expected: usize,
    timeout: Duration,
) -> HookOutcome {
    let deadline = tokio::time::Instant::now() + timeout;
    // The watchers' pacing: a server or proxy that ignores `index`/`wait`, answers index 0 or
    // fails cannot make this loop spin; the hook's timeout still bounds the whole wait.
    let mut pacer = ListPacer::new(tokio::time::Instant::now());
    let mut last_error = None;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            let mut reason = format!("timed out after {}s", timeout.as_secs());
            if let Some(e) = last_error {
                reason.push_str(&format!(" (last error: {e})"));
            }
            return failed(reason, true);
        }
        let started = tokio::time::Instant::now();
        let slot = pacer.reserve(started);
        let query = QueryOptions {
            index: pacer.index(),
            wait: Some(left.min(LONGEST_WAIT)),
        };
        let read = nomad.watch_job_allocations(&id.scope, &id.name, query);
        let next = match tokio::time::timeout(left, read).await {
            Err(_) => continue,
            Ok(Err(e)) => {
                last_error = Some(error_chain(&e));
                tokio::time::Instant::now() + pacer.failed()
            }
            Ok(Ok(found)) => {
                let next = pacer.answered(started, slot, found.index);
                let run = allocations_of_run(&found.value, since);
                if let Some(outcome) = verdict(&run, expected) {
                    return outcome;
                }
                next
            }
        };
        tokio::time::sleep_until(next.min(deadline)).await;
    }
}

/// The allocations of the run registered at index `since` (an earlier run's are older).
fn allocations_of_run(allocations: &[AllocListStub], since: u64) -> Vec<&AllocListStub> {
    allocations
        .iter()
        .filter(|a| a.create_index >= since)
        .collect()
}

/// The run's verdict from its allocations, `None` while it goes on: a failed or lost allocation
/// fails it; all `expected` allocations complete make it succeed.
fn verdict(run: &[&AllocListStub], expected: usize) -> Option<HookOutcome> {
    if let Some(bad) = run
        .iter()
        .find(|a| matches!(a.client_status.as_str(), "failed" | "lost"))
    {
        let failed_tasks: Vec<&str> = bad
            .task_states
            .iter()
            .flatten()
            .filter(|(_, t)| t.failed)
            .map(|(name, _)| name.as_str())
            .collect();
        let short = bad.id.get(..8).unwrap_or(&bad.id);
        let mut reason = format!("allocation {short} {}", bad.client_status);
        if !failed_tasks.is_empty() {
            reason.push_str(&format!(" (failed tasks: {})", failed_tasks.join(", ")));
        }
        return Some(failed(reason, true));
    }
    let complete = run.iter().filter(|a| a.client_status == "complete").count();
    (complete >= expected.max(1) && run.iter().all(|a| a.is_terminal()))
        .then_some(HookOutcome::Succeeded)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{devstack, job_body};
    use super::*;
    use crate::desired::NomadJobSpec;
    use serde_json::json;

    fn alloc(status: &str, failed_task: Option<&str>) -> AllocListStub {
        alloc_at(status, failed_task, 10)
    }

    fn alloc_at(status: &str, failed_task: Option<&str>, create_index: u64) -> AllocListStub {
        serde_json::from_value(json!({
            "ID": "0123456789abcdef", "ClientStatus": status, "CreateIndex": create_index,
            "TaskStates": failed_task.map(|t| json!({t: {"State": "dead", "Failed": true}})),
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_verdict_waits_for_every_placement_and_fails_on_the_first_failed_one() {
        let done = alloc("complete", None);
        let running = alloc("running", None);
        assert_eq!(verdict(&[], 1), None, "nothing placed yet");
        assert_eq!(verdict(&[&running], 1), None);
        assert_eq!(verdict(&[&done], 2), None, "one of two placed");
        assert_eq!(verdict(&[&done, &running], 2), None);
        assert_eq!(verdict(&[&done], 1), Some(HookOutcome::Succeeded));
        assert_eq!(verdict(&[&done, &done], 2), Some(HookOutcome::Succeeded));
        let bad = alloc("failed", Some("seed"));
        assert_eq!(
            verdict(&[&done, &bad], 2),
            Some(HookOutcome::Failed {
                reason: "allocation 01234567 failed (failed tasks: seed)".into(),
                transient: true
            })
        );
        let lost = alloc("lost", None);
        assert!(matches!(
            verdict(&[&lost], 1),
            Some(HookOutcome::Failed { reason, .. }) if reason == "allocation 01234567 lost"
        ));
    }

    #[test]
    fn placements_sum_the_group_counts() {
        assert_eq!(placements(&json!({"TaskGroups": [{"Count": 2}, {}]})), 3);
        assert_eq!(placements(&json!({})), 1);
    }

    #[test]
    fn a_run_is_the_allocations_created_from_its_registration_on() {
        let allocs = [
            alloc_at("complete", None, 9),
            alloc_at("complete", None, 10),
            alloc_at("running", None, 11),
        ];
        let run = allocations_of_run(&allocs, 10);
        let indexes: Vec<u64> = run.iter().map(|a| a.create_index).collect();
        assert_eq!(indexes, [10, 11]);
    }

    #[test]
    fn a_register_conflict_is_retried_and_not_overwritten_other_errors_are_shown() {
        let error = |status: u16, body: &str| NomadError::Status {
            method: "POST".into(),
            path: "/v1/jobs".into(),
            status,
            body: body.into(),
        };
        let conflict = error(
            500,
            "Enforcing job modify index 7: job exists with conflicting job modify index: 9",
        );
        assert_eq!(
            register_failure(&conflict),
            failed(
                "the job changed while registering it (conflict); not overwritten".into(),
                true
            )
        );
        let HookOutcome::Failed { reason, transient } = register_failure(&error(400, "bad job"))
        else {
            panic!("not a failure");
        };
        assert!(reason.starts_with("registering: "), "{reason}");
        assert!(reason.contains("bad job"), "{reason}");
        assert!(!transient);
    }

    const APP: &str = "a";

    fn hook(phase: HookPhase, job: &Value, once: bool, timeout_secs: u64) -> Hook {
        let id = job["ID"].as_str().unwrap_or_default().to_string();
        Hook {
            phase,
            job: NomadJobSpec {
                file: format!("apps/a/{id}.json"),
                format: JobFormat::Json,
                source: job.to_string(),
                variables: String::new(),
                job_id: id,
            },
            once,
            timeout_secs,
        }
    }

    fn app_with(hooks: Vec<Hook>) -> App {
        App {
            hooks,
            ..crate::plan::tests::app(Vec::new())
        }
    }

    fn batch(id: &str) -> Value {
        let mut job = job_body(id, None);
        job.as_object_mut().map(|o| o.remove("Meta"));
        job
    }

    fn outcomes(runs: &[HookRun]) -> Vec<(String, HookOutcome)> {
        runs.iter()
            .map(|r| (r.job.name.clone(), r.outcome.clone()))
            .collect()
    }

    async fn allocations(nomad: &NomadClient, id: &str) -> Vec<AllocListStub> {
        nomad.job_allocations("default", id).await.expect("allocs")
    }

    #[tokio::test]
    async fn a_hook_runs_as_a_new_version_each_time_and_a_once_hook_only_until_it_completes() {
        let (stack, nomad) = devstack("{}").await;
        let store = Store::open_in_memory().expect("store");
        let app = app_with(vec![
            hook(HookPhase::PostSync, &batch("other"), false, 10),
            hook(HookPhase::PreSync, &batch("check"), false, 10),
            hook(HookPhase::PreSync, &batch("seed"), true, 10),
        ]);
        let runs = run_phase(&nomad, &store, &app, "r1", HookPhase::PreSync).await;
        assert_eq!(
            outcomes(&runs),
            [
                ("check".to_string(), HookOutcome::Succeeded),
                ("seed".to_string(), HookOutcome::Succeeded)
            ]
        );
        assert_eq!(runs[1].name(), "pre_sync hook nomad_job/default/seed");
        assert!(!runs[1].failed());
        assert_eq!(runs[1].problem(), None);
        let seed = nomad
            .read_job("default", "seed")
            .await
            .expect("read")
            .expect("seed");
        assert_eq!(seed.meta.get(OWNER_META_KEY).map(String::as_str), Some(APP));
        assert!(seed.meta.contains_key(HOOK_RUN_META_KEY));
        assert!(
            nomad
                .read_job("default", "other")
                .await
                .expect("read")
                .is_none()
        );
        assert_eq!(
            store
                .once_hook_ran(APP, "pre_sync", "default/seed")
                .await
                .expect("store")
                .as_deref(),
            Some("r1")
        );

        // Again: the plain hook runs as a new version (a second allocation); the once hook not.
        let again = run_phase(&nomad, &store, &app, "r2", HookPhase::PreSync).await;
        assert_eq!(
            outcomes(&again),
            [
                ("check".to_string(), HookOutcome::Succeeded),
                (
                    "seed".to_string(),
                    HookOutcome::AlreadyRan {
                        revision: "r1".into()
                    }
                )
            ]
        );
        assert_eq!(allocations(&nomad, "check").await.len(), 2);
        assert_eq!(
            store
                .once_hook_ran(APP, "pre_sync", "default/check")
                .await
                .expect("store"),
            None,
            "only once hooks are recorded"
        );
        assert_eq!(allocations(&nomad, "seed").await.len(), 1);

        record_events(&store, APP, &again).await;
        let events = store.events(Some(APP), 10).await.expect("events");
        let messages: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            ["pre_sync hook nomad_job/default/check completed"]
        );
        stack.shutdown().await;
    }

    #[tokio::test]
    async fn a_failed_hook_stops_its_phase_is_not_recorded_and_says_why() {
        let (stack, nomad) = devstack("{}").await;
        let store = Store::open_in_memory().expect("store");
        let app = app_with(vec![
            hook(HookPhase::PreSync, &batch("seed"), true, 10),
            hook(HookPhase::PreSync, &batch("after"), false, 10),
        ]);
        let control = format!("{}/_devstack/nomad/job/seed/fail-next", stack.nomad_url());
        let answer = reqwest::Client::new()
            .post(control)
            .json(&json!({}))
            .send()
            .await
            .expect("control");
        assert!(answer.status().is_success());
        let runs = run_phase(&nomad, &store, &app, "r1", HookPhase::PreSync).await;
        assert_eq!(runs.len(), 1, "the phase stops at the failure: {runs:?}");
        assert!(runs[0].failed());
        let problem = runs[0].problem().expect("a problem");
        assert!(
            problem.starts_with("pre_sync hook nomad_job/default/seed failed: allocation "),
            "{problem}"
        );
        assert!(
            problem.ends_with(" failed (failed tasks: once)"),
            "{problem}"
        );
        assert!(matches!(
            runs[0].outcome,
            HookOutcome::Failed {
                transient: true,
                ..
            }
        ));
        assert_eq!(
            store
                .once_hook_ran(APP, "pre_sync", "default/seed")
                .await
                .expect("store"),
            None
        );
        record_events(&store, APP, &runs).await;
        let events = store.events(Some(APP), 10).await.expect("events");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].level, "error");
        assert_eq!(events[0].message, problem);
        stack.shutdown().await;
    }

    #[tokio::test]
    async fn a_hook_does_not_take_over_a_foreign_job_nor_run_a_service_and_times_out() {
        let (stack, nomad) = devstack("{}").await;
        let store = Store::open_in_memory().expect("store");
        nomad
            .register_job(
                &job_body("theirs", Some("other")),
                &RegisterOptions::default(),
            )
            .await
            .expect("register");
        let mut service = batch("svc");
        service["Type"] = json!("service");
        let mut no_groups = batch("empty");
        no_groups["TaskGroups"] = json!([]);
        // A template that waits for a Vault secret nobody wrote: the allocation never starts.
        let mut waits = batch("waits");
        waits["TaskGroups"][0]["Tasks"][0]["Templates"] = json!([{
            "EmbeddedTmpl": "{{ with secret \"kv/data/missing\" }}{{ .Data.data.x }}{{ end }}",
            "DestPath": "local/x"
        }]);
        let mut failures = Vec::new();
        for job in [&batch("theirs"), &service, &no_groups, &waits] {
            let app = app_with(vec![hook(HookPhase::SyncFail, job, false, 1)]);
            let runs = run_phase(&nomad, &store, &app, "r1", HookPhase::SyncFail).await;
            failures.push(runs[0].outcome.clone());
        }
        let reason = |o: &HookOutcome| match o {
            HookOutcome::Failed { reason, transient } => (reason.clone(), *transient),
            other => panic!("not a failure: {other:?}"),
        };
        let (theirs, transient) = reason(&failures[0]);
        assert!(theirs.contains("does not name this app"), "{theirs}");
        assert!(!transient);
        let theirs_job = nomad.read_job("default", "theirs").await.expect("read");
        assert_eq!(
            theirs_job
                .expect("theirs")
                .meta
                .get(OWNER_META_KEY)
                .map(String::as_str),
            Some("other"),
            "not overwritten"
        );
        assert_eq!(
            reason(&failures[1]),
            (
                "its job is type service; a hook's job must be a batch job".to_string(),
                false
            )
        );
        assert!(
            nomad
                .read_job("default", "svc")
                .await
                .expect("read")
                .is_none()
        );
        let (empty, _) = reason(&failures[2]);
        assert!(empty.starts_with("registering: "), "{empty}");
        assert_eq!(
            reason(&failures[3]),
            ("timed out after 1s".to_string(), true)
        );
        stack.shutdown().await;
    }
}
