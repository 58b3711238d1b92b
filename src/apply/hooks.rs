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
use crate::plan::nomad_job::{OWNER_META_KEY, json_job, prepare, submission_format};
use crate::providers::nomad::types::AllocListStub;
use crate::providers::nomad::{NomadClient, QueryOptions, RegisterOptions, job_body};
use crate::store::Store;
use crate::telemetry::error_chain;

/// Job meta key whose new value on each run makes the registration a new job version.
pub const HOOK_RUN_META_KEY: &str = "drover.hook-run";

/// The longest single blocking query while a hook is awaited (Nomad caps waits at 5 minutes).
const LONGEST_WAIT: Duration = Duration::from_secs(60);

/// A pause after a failed read of the allocations before the next one (the hook's timeout
/// still bounds the whole wait).
const READ_RETRY: Duration = Duration::from_millis(500);

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
        Err(e) if e.is_enforce_index_conflict() => {
            return failed(
                "the job changed while registering it (conflict)".into(),
                true,
            );
        }
        Err(e) => {
            return failed(
                format!("registering: {}", error_chain(&e)),
                e.is_transient(),
            );
        }
    };
    let expected = placements(&job);
    let timeout = Duration::from_secs(hook.timeout_secs);
    await_allocations(nomad, id, registered.job_modify_index, expected, timeout).await
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
    let mut index = 0;
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
        let query = QueryOptions {
            index,
            wait: Some(left.min(LONGEST_WAIT)),
        };
        let read = nomad.watch_job_allocations(&id.scope, &id.name, query);
        match tokio::time::timeout(left, read).await {
            Err(_) => continue,
            Ok(Err(e)) => {
                last_error = Some(error_chain(&e));
                tokio::time::sleep(READ_RETRY.min(left)).await;
            }
            Ok(Ok(found)) => {
                // An index that goes backwards (a restarted server) starts over.
                index = if found.index < index { 0 } else { found.index };
                let run: Vec<&AllocListStub> = found
                    .value
                    .iter()
                    .filter(|a| a.create_index >= since)
                    .collect();
                if let Some(outcome) = verdict(&run, expected) {
                    return outcome;
                }
            }
        }
    }
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
    use super::*;
    use serde_json::json;

    fn alloc(status: &str, failed_task: Option<&str>) -> AllocListStub {
        serde_json::from_value(json!({
            "ID": "0123456789abcdef", "ClientStatus": status, "CreateIndex": 10,
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
}
