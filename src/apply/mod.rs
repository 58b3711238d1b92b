//! Executes a plan: compare-and-set writes, retries on transient errors only (inside the
//! providers), the prune guard (ownership in the store *and* on the object), wave barriers.
//! This file is the step machinery shared by every kind; each kind's writes and deletes are in
//! a file of its own (`nomad_job.rs`, `csi_volume.rs`).

use std::time::SystemTime;

use serde::Serialize;

mod bucket;
mod consul_config_entry;
mod csi_volume;
pub mod hooks;
mod nomad_job;

use crate::desired::{ResourceId, ResourceKind};
use crate::plan::{Change, Payload, Plan, Reason, Step};
use crate::providers::consul::ConsulClient;
use crate::providers::nomad::{NomadClient, RegisterOptions};
use crate::providers::s3::S3Client;
use crate::store::{Marker, Store};

/// Which writes this apply may make.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyPolicy {
    /// Re-apply resources that drifted in the cluster (`sync.self_heal`, or a manual sync).
    pub heal_drift: bool,
    /// Delete owned resources that left Git (`sync.prune`).
    pub prune: bool,
    /// Drifted resources not to heal this time (their drift keeps coming back).
    pub hold: Vec<ResourceId>,
    /// Resources whose preflight failed (a Vault requirement that does not hold), with why:
    /// not written this cycle, while the rest of the app syncs.
    pub blocked: std::collections::BTreeMap<ResourceId, String>,
}

/// Heals of one resource at one spec, none of which became healthy, before drover stops
/// fighting whatever keeps undoing them (DESIGN rule 8).
pub const HEAL_LIMIT: u32 = 3;

/// What happened to one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum StepResult {
    /// Written; the live index right after.
    Applied {
        /// E.g. the job's new `JobModifyIndex`.
        live_index: u64,
    },
    /// Already as desired; marker refreshed.
    Confirmed,
    /// Deleted (pruned).
    Deleted,
    /// Nothing to do.
    Unchanged,
    /// Not written on purpose (policy, ownership, an earlier wave).
    Skipped {
        /// Why.
        reason: String,
    },
    /// Its preflight failed (a Vault secret lacks a key, a CSI volume is missing) or a
    /// dependency did not go through: not written; checked again at the next cycle.
    Blocked {
        /// What the user must fix.
        reason: String,
    },
    /// Cannot proceed yet (e.g. the CSI plugin is not healthy); retried next cycle.
    Waiting {
        /// What it waits for.
        reason: String,
    },
    /// Someone changed the object between plan and write (EnforceIndex); reported, not overwritten.
    Conflict {
        /// Nomad's message.
        message: String,
    },
    /// The write failed.
    Failed {
        /// The error, with its causes.
        message: String,
        /// Worth retrying without a Git change.
        transient: bool,
    },
}

impl StepResult {
    /// Whether the step wrote to the cluster.
    pub fn wrote(&self) -> bool {
        matches!(self, StepResult::Applied { .. } | StepResult::Deleted)
    }

    /// Whether the steps that depend on this one must wait, and why (for their message).
    pub fn hold_reason(&self) -> Option<String> {
        match self {
            StepResult::Waiting { reason } => Some(format!("is waiting: {reason}")),
            StepResult::Blocked { reason } => Some(format!("is blocked: {reason}")),
            StepResult::Conflict { message } => Some(format!("had a conflict: {message}")),
            StepResult::Failed { message, .. } => Some(format!("failed: {message}")),
            _ => None,
        }
    }
}

/// One step's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    /// The resource.
    pub id: ResourceId,
    /// `create`, `update`, `delete`, `unchanged`.
    pub change: String,
    /// What happened.
    pub result: StepResult,
}

/// The outcome of applying one plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ApplyReport {
    /// Per step, in plan order.
    pub steps: Vec<StepReport>,
    /// The sync's hooks that ran (pre_sync before the steps, sync_fail after a failure).
    pub hooks: Vec<hooks::HookRun>,
}

impl ApplyReport {
    /// Lines like `update nomad_job/default/web` for each write made, and `run pre_sync hook
    /// nomad_job/default/seed` for each hook that completed.
    pub fn changes(&self) -> Vec<String> {
        let hook_runs = self
            .hooks
            .iter()
            .filter(|h| h.outcome == hooks::HookOutcome::Succeeded)
            .map(|h| format!("run {}", h.name()));
        self.steps
            .iter()
            .filter(|s| s.result.wrote())
            .map(|s| format!("{} {}", s.change, s.id))
            .chain(hook_runs)
            .collect()
    }

    /// Whether any step failed or conflicted, or a hook failed.
    pub fn failed(&self) -> bool {
        self.hooks.iter().any(hooks::HookRun::failed)
            || self.steps.iter().any(|s| {
                matches!(
                    s.result,
                    StepResult::Failed { .. } | StepResult::Conflict { .. }
                )
            })
    }

    /// The report of a sync a failed pre_sync hook stopped: no write was made.
    pub fn stopped_by_hooks(plan: &Plan, hooks: Vec<hooks::HookRun>) -> ApplyReport {
        let reason = hooks
            .iter()
            .find_map(hooks::HookRun::problem)
            .unwrap_or_default();
        let steps = plan
            .steps
            .iter()
            .map(|step| StepReport {
                id: step.id.clone(),
                change: step.change.verb().to_string(),
                result: if step.change.is_write() {
                    StepResult::Skipped {
                        reason: reason.clone(),
                    }
                } else {
                    StepResult::Unchanged
                },
            })
            .collect();
        ApplyReport { steps, hooks }
    }

    /// Whether any step waits on something.
    pub fn waiting(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.result, StepResult::Waiting { .. }))
    }

    /// A one-line summary of failures and waits (failed hooks first).
    pub fn problems(&self) -> Vec<String> {
        let hook_problems = self.hooks.iter().filter_map(hooks::HookRun::problem);
        hook_problems
            .chain(self.steps.iter().filter_map(|s| match &s.result {
                StepResult::Failed { message, .. } => Some(format!("{}: {message}", s.id)),
                StepResult::Conflict { message } => Some(format!("{}: conflict: {message}", s.id)),
                StepResult::Waiting { reason } => Some(format!("{}: waiting: {reason}", s.id)),
                StepResult::Blocked { reason } => Some(format!("{}: blocked: {reason}", s.id)),
                _ => None,
            }))
            .collect()
    }
}

/// Execute `plan` in wave order without a Consul client (see [`apply_with`]).
pub async fn apply(
    nomad: &NomadClient,
    store: &Store,
    plan: &Plan,
    policy: ApplyPolicy,
) -> ApplyReport {
    apply_with(nomad, None, store, plan, policy).await
}

/// Execute `plan` in wave order; every write is CAS. A step whose dependency (`Step::after`)
/// failed, waits or is blocked is not written: it is blocked too, naming that dependency, while
/// the steps that do not depend on it go on. Config-entry steps need `consul`; without it they
/// fail with a message saying so.
pub async fn apply_with(
    nomad: &NomadClient,
    consul: Option<&ConsulClient>,
    store: &Store,
    plan: &Plan,
    policy: ApplyPolicy,
) -> ApplyReport {
    let clients = Clients {
        nomad,
        consul,
        s3: None,
    };
    apply_with_clients(clients, store, plan, policy).await
}

/// The clients an apply writes with: Nomad always; Consul and S3 when configured (their steps
/// fail with a message saying how to configure them otherwise).
#[derive(Clone, Copy)]
pub struct Clients<'a> {
    /// Nomad.
    pub nomad: &'a NomadClient,
    /// Consul (config entries).
    pub consul: Option<&'a ConsulClient>,
    /// S3 (buckets).
    pub s3: Option<&'a S3Client>,
}

/// Execute `plan` in wave order with every client (see [`apply_with`]).
pub async fn apply_with_clients(
    clients: Clients<'_>,
    store: &Store,
    plan: &Plan,
    policy: ApplyPolicy,
) -> ApplyReport {
    let mut report = ApplyReport::default();
    // The steps that did not go through this time, with why, for their dependents.
    let mut held: Vec<(&ResourceId, String)> = Vec::new();
    for step in &plan.steps {
        let failed_dependency = step
            .after
            .iter()
            .find_map(|dep| held.iter().find(|(id, _)| *id == dep));
        let result = match failed_dependency {
            Some((dep, why)) if step.change.is_write() => StepResult::Blocked {
                reason: format!("depends on {dep}, which {why}"),
            },
            _ => apply_step(clients, store, plan, step, &policy).await,
        };
        if let Some(why) = result.hold_reason() {
            held.push((&step.id, why));
        }
        report.steps.push(StepReport {
            id: step.id.clone(),
            change: step.change.verb().to_string(),
            result,
        });
    }
    report
}

async fn apply_step(
    clients: Clients<'_>,
    store: &Store,
    plan: &Plan,
    step: &Step,
    policy: &ApplyPolicy,
) -> StepResult {
    // Drift the policy does not heal is not written whatever its preflight says: that is the
    // reason to show, not a block.
    if step.change.is_write() && step.reason.is_drift() && !policy.heal_drift {
        return StepResult::Skipped {
            reason: "changed in the cluster; self_heal is off".into(),
        };
    }
    if step.change.is_write() && step.reason.is_drift() && policy.hold.contains(&step.id) {
        return StepResult::Skipped {
            reason: format!(
                "changed in the cluster again after {HEAL_LIMIT} heals that never became healthy \
                 (an auto_revert or another controller?); not healing until Git changes or a \
                 manual sync"
            ),
        };
    }
    if step.change.is_write()
        && step.change != Change::Delete
        && let Some(reason) = policy.blocked.get(&step.id)
    {
        return StepResult::Blocked {
            reason: reason.clone(),
        };
    }
    let Clients { nomad, consul, s3 } = clients;
    let write = Write {
        store,
        plan,
        step,
        resource: &step.id,
    };
    match (&step.change, &step.payload) {
        (Change::Unchanged, Payload::Confirm { live_index }) => {
            // A job equal to desired already carries this app's owner meta: it is ours (the
            // store was lost or the marker never written); so does a config entry equal to
            // desired (its Meta names the app). Volumes carry no mark: never adopted.
            if step.reason == Reason::Unmanaged
                && matches!(
                    step.id.kind,
                    ResourceKind::NomadJob | ResourceKind::ConsulConfigEntry | ResourceKind::Bucket
                )
                && let Err(e) = store.record_owned(&plan.app, write.resource).await
            {
                return failed(&e, true);
            }
            match store.set_marker(&write.marker(*live_index)).await {
                Ok(()) => StepResult::Confirmed,
                Err(e) => failed(&e, true),
            }
        }
        // Named for clarity; the catch-all below answers the same (deleting this arm is an
        // equivalent mutant).
        (Change::Unchanged | Change::NotManaged, _) => StepResult::Unchanged,
        (
            Change::Create { .. } | Change::Update { .. },
            Payload::NomadJob {
                job,
                enforce_index,
                preserve_counts,
                source,
                format,
                variables,
            },
        ) => {
            let options = RegisterOptions {
                enforce_index: Some(*enforce_index),
                preserve_counts: *preserve_counts,
                submission_source: Some(source.clone()),
                submission_format: Some(format.clone()),
                submission_variables: Some(variables.clone()),
            };
            nomad_job::register(nomad, job, &options, &write).await
        }
        (
            Change::Create { .. } | Change::Update { .. },
            Payload::CsiVolume {
                volume,
                register,
                plugin_id,
            },
        ) => {
            csi_volume::put(
                nomad,
                &step.id,
                volume.expose(),
                *register,
                plugin_id,
                &write,
            )
            .await
        }
        (
            Change::Create { .. } | Change::Update { .. },
            Payload::ConsulConfigEntry { entry, cas },
        ) => match consul {
            Some(consul) => consul_config_entry::put(consul, &step.id, entry, *cas, &write).await,
            None => consul_config_entry::no_consul(),
        },
        (Change::Create { .. } | Change::Update { .. }, Payload::Bucket(writes)) => match s3 {
            Some(s3) => bucket::put(s3, &step.id, writes, &write).await,
            None => bucket::no_s3(),
        },
        (Change::Delete, Payload::Delete) => {
            if !policy.prune {
                return StepResult::Skipped {
                    reason: "removed from Git; prune is off".into(),
                };
            }
            prune(clients, store, &plan.app, &step.id).await
        }
        _ => StepResult::Unchanged,
    }
}

/// Delete only what this app owns: recorded in the store *and* marked on the object.
async fn prune(
    Clients { nomad, consul, s3 }: Clients<'_>,
    store: &Store,
    app: &str,
    id: &ResourceId,
) -> StepResult {
    match store.owner_of(id).await {
        Ok(Some(owner)) if owner == app => {}
        Ok(_) => {
            return StepResult::Skipped {
                reason: "not owned by this app".into(),
            };
        }
        Err(e) => return failed(&e, true),
    }
    // Each kind checks its own mark on the object (where it has one) and deletes.
    let result = match id.kind {
        ResourceKind::NomadJob => nomad_job::prune(nomad, app, id).await,
        ResourceKind::CsiVolume => csi_volume::prune(nomad, id).await,
        ResourceKind::ConsulConfigEntry => match consul {
            Some(consul) => consul_config_entry::prune(consul, app, id).await,
            None => consul_config_entry::no_consul(),
        },
        ResourceKind::Bucket => match s3 {
            Some(s3) => bucket::prune(s3, app, id).await,
            None => bucket::no_s3(),
        },
        _ => StepResult::Skipped {
            reason: "this kind is not pruned by this version".into(),
        },
    };
    if result == StepResult::Deleted {
        let _ = store.delete_marker(app, id).await;
        let _ = store.forget_owned(app, id).await;
    }
    result
}

/// What a write needs to record itself: the store, and the app, revision and spec it came from.
struct Write<'a> {
    store: &'a Store,
    plan: &'a Plan,
    step: &'a Step,
    resource: &'a ResourceId,
}

impl Write<'_> {
    /// The last-applied marker of this step at `live_index`.
    fn marker(&self, live_index: u64) -> Marker {
        Marker {
            app: self.plan.app.clone(),
            resource: self.resource.clone(),
            spec_hash: self.step.spec_hash.clone(),
            live_index,
            revision: self.plan.revision.clone(),
            applied_at: SystemTime::now(),
        }
    }

    /// After a successful write: ownership first, then the marker (a crash in between only
    /// costs one plan call).
    async fn record(&self, live_index: u64) -> StepResult {
        if let Err(e) = self.store.record_owned(&self.plan.app, self.resource).await {
            return failed(&e, true);
        }
        if let Err(e) = self.store.set_marker(&self.marker(live_index)).await {
            return failed(&e, true);
        }
        StepResult::Applied { live_index }
    }
}

/// A failed step, with the error's whole chain; `transient` says whether retrying without a
/// change can help. Store errors are transient (a local disk or lock problem, not a statement
/// about the request).
fn failed(error: &dyn std::error::Error, transient: bool) -> StepResult {
    StepResult::Failed {
        message: crate::telemetry::error_chain(error),
        transient,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::desired::{CsiVolumeSpec, VolumeCapability, VolumeMode};
    use crate::plan::csi_volume;
    use crate::plan::nomad_job::OWNER_META_KEY;
    use crate::providers::nomad::NomadConfig;
    use crate::store::rid;
    use drover_devstack::{Devstack, DevstackConfig, System};
    use serde_json::{Value, json};
    use std::collections::BTreeMap;

    pub(super) const APP: &str = "media";

    pub(super) fn job_id(name: &str) -> ResourceId {
        ResourceId {
            kind: ResourceKind::NomadJob,
            scope: "default".into(),
            name: name.into(),
        }
    }

    pub(super) fn volume_id(name: &str) -> ResourceId {
        ResourceId {
            kind: ResourceKind::CsiVolume,
            scope: "default".into(),
            name: name.into(),
        }
    }

    pub(super) fn bucket_id(name: &str) -> ResourceId {
        ResourceId {
            kind: ResourceKind::Bucket,
            scope: String::new(),
            name: name.into(),
        }
    }

    pub(super) fn step(
        id: ResourceId,
        wave: u32,
        change: Change,
        reason: Reason,
        payload: Payload,
    ) -> Step {
        Step {
            spec_hash: format!("hash-of-{}", id.name),
            after: Vec::new(),
            id,
            wave,
            change,
            reason,
            payload,
        }
    }

    pub(super) fn confirm(id: ResourceId, wave: u32, reason: Reason, live_index: u64) -> Step {
        step(
            id,
            wave,
            Change::Unchanged,
            reason,
            Payload::Confirm { live_index },
        )
    }

    pub(super) fn job_body(name: &str, owner: Option<&str>) -> Value {
        let mut job = json!({
            "ID": name, "Name": name, "Type": "batch", "Namespace": "default",
            "TaskGroups": [{"Name": "run", "Count": 1,
                "Tasks": [{"Name": "once", "Driver": "docker", "Config": {"image": "busybox"}}]}]
        });
        if let Some(owner) = owner {
            job["Meta"] = json!({ OWNER_META_KEY: owner });
        }
        job
    }

    pub(super) fn job_write(name: &str, wave: u32, reason: Reason, enforce_index: u64) -> Step {
        let change = if enforce_index == 0 {
            Change::Create { diff: "+".into() }
        } else {
            Change::Update { diff: "~".into() }
        };
        step(
            job_id(name),
            wave,
            change,
            reason,
            Payload::NomadJob {
                job: job_body(name, Some(APP)),
                enforce_index,
                preserve_counts: false,
                source: "{}".into(),
                format: "json".into(),
                variables: String::new(),
            },
        )
    }

    pub(super) fn volume_write(name: &str, plugin_id: &str) -> Step {
        let spec = CsiVolumeSpec {
            id: name.into(),
            name: name.into(),
            namespace: "default".into(),
            plugin_id: plugin_id.into(),
            mode: VolumeMode::Create,
            external_id: None,
            capacity_min: None,
            capacity_max: None,
            capabilities: vec![VolumeCapability {
                access_mode: "single-node-writer".into(),
                attachment_mode: "file-system".into(),
            }],
            mount_options: None,
            parameters: BTreeMap::new(),
            secrets: BTreeMap::new(),
            context: BTreeMap::new(),
            snapshot_id: None,
            clone_id: None,
            prevent_destroy: false,
        };
        step(
            volume_id(name),
            0,
            Change::Create { diff: "+".into() },
            Reason::New,
            Payload::CsiVolume {
                volume: crate::telemetry::Redacted(Box::new(csi_volume::request_body(&spec))),
                register: false,
                plugin_id: plugin_id.into(),
            },
        )
    }

    pub(super) fn delete(id: ResourceId, wave: u32) -> Step {
        step(
            id,
            wave,
            Change::Delete,
            Reason::RemovedFromGit,
            Payload::Delete,
        )
    }

    pub(super) fn plan(steps: Vec<Step>) -> Plan {
        Plan {
            app: APP.into(),
            revision: "rev-1".into(),
            steps,
        }
    }

    pub(super) fn policy(heal_drift: bool, prune: bool, hold: Vec<ResourceId>) -> ApplyPolicy {
        ApplyPolicy {
            heal_drift,
            prune,
            hold,
            blocked: std::collections::BTreeMap::new(),
        }
    }

    pub(super) fn nomad_at(address: String) -> NomadClient {
        NomadClient::new(NomadConfig {
            address,
            max_retries: 0,
            ..NomadConfig::default()
        })
        .expect("nomad client")
    }

    /// A Nomad address nobody listens on: every call fails at once (connection refused), so a
    /// step that reaches Nomad shows as `Failed`.
    pub(super) fn unreachable_nomad() -> NomadClient {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        nomad_at(format!("http://127.0.0.1:{port}"))
    }

    pub(super) fn results(report: &ApplyReport) -> Vec<(String, StepResult)> {
        report
            .steps
            .iter()
            .map(|s| (s.id.name.clone(), s.result.clone()))
            .collect()
    }

    pub(super) fn skipped(reason: &str) -> StepResult {
        StepResult::Skipped {
            reason: reason.into(),
        }
    }

    pub(super) fn is_failed(result: &StepResult) -> bool {
        matches!(result, StepResult::Failed { .. })
    }

    pub(super) fn report_of(results: Vec<(&str, &str, StepResult)>) -> ApplyReport {
        ApplyReport {
            steps: results
                .into_iter()
                .map(|(name, change, result)| StepReport {
                    id: job_id(name),
                    change: change.into(),
                    result,
                })
                .collect(),
            hooks: Vec::new(),
        }
    }

    #[test]
    fn only_applied_and_deleted_wrote_and_only_waits_blocks_conflicts_and_failures_hold() {
        let reason = |r: &str| Some(r.to_string());
        let cases = [
            (StepResult::Applied { live_index: 3 }, true, None),
            (StepResult::Deleted, true, None),
            (StepResult::Confirmed, false, None),
            (StepResult::Unchanged, false, None),
            (skipped("policy"), false, None),
            (
                StepResult::Waiting {
                    reason: "plugin".into(),
                },
                false,
                reason("is waiting: plugin"),
            ),
            (
                StepResult::Blocked {
                    reason: "no volume".into(),
                },
                false,
                reason("is blocked: no volume"),
            ),
            (
                StepResult::Conflict {
                    message: "index".into(),
                },
                false,
                reason("had a conflict: index"),
            ),
            (
                StepResult::Failed {
                    message: "boom".into(),
                    transient: true,
                },
                false,
                reason("failed: boom"),
            ),
        ];
        for (result, wrote, holds) in cases {
            assert_eq!(result.wrote(), wrote, "{result:?}");
            assert_eq!(result.hold_reason(), holds, "{result:?}");
        }
    }

    #[test]
    fn a_report_lists_writes_and_problems_and_tells_failures_from_waits() {
        let report = report_of(vec![
            ("web", "update", StepResult::Applied { live_index: 3 }),
            ("old", "delete", StepResult::Deleted),
            ("ok", "unchanged", StepResult::Confirmed),
            ("same", "unchanged", StepResult::Unchanged),
            ("held", "update", skipped("held")),
            (
                "vol",
                "create",
                StepResult::Waiting {
                    reason: "plugin not healthy".into(),
                },
            ),
            (
                "cas",
                "update",
                StepResult::Conflict {
                    message: "index moved".into(),
                },
            ),
            (
                "bad",
                "update",
                StepResult::Failed {
                    message: "boom".into(),
                    transient: false,
                },
            ),
        ]);
        assert_eq!(
            report.changes(),
            [
                "update nomad_job/default/web",
                "delete nomad_job/default/old"
            ]
        );
        assert_eq!(
            report.problems(),
            [
                "nomad_job/default/vol: waiting: plugin not healthy",
                "nomad_job/default/cas: conflict: index moved",
                "nomad_job/default/bad: boom",
            ]
        );
        assert!(report.failed());
        assert!(report.waiting());

        let quiet = report_of(vec![
            ("ok", "unchanged", StepResult::Confirmed),
            ("held", "update", skipped("held")),
        ]);
        assert!(quiet.changes().is_empty());
        assert!(quiet.problems().is_empty());
        assert!(!quiet.failed());
        assert!(!quiet.waiting());

        let conflict_only = report_of(vec![(
            "cas",
            "update",
            StepResult::Conflict {
                message: "m".into(),
            },
        )]);
        assert!(conflict_only.failed());
        assert!(!conflict_only.waiting());
        let failure_only = report_of(vec![(
            "bad",
            "update",
            StepResult::Failed {
                message: "m".into(),
                transient: true,
            },
        )]);
        assert!(failure_only.failed());
        assert!(!failure_only.waiting());
        let wait_only = report_of(vec![(
            "vol",
            "create",
            StepResult::Waiting { reason: "r".into() },
        )]);
        assert!(!wait_only.failed());
        assert!(wait_only.waiting());
    }

    #[tokio::test]
    async fn unchanged_steps_refresh_markers_and_adopt_only_unmanaged_jobs() {
        let store = Store::open_in_memory().expect("store");
        let steps = vec![
            confirm(job_id("web"), 0, Reason::InSync, 7),
            confirm(job_id("adopted"), 0, Reason::Unmanaged, 9),
            // Volumes carry no owner mark: equal is not proof of ownership.
            confirm(volume_id("data"), 0, Reason::Unmanaged, 0),
            step(
                job_id("plain"),
                0,
                Change::Unchanged,
                Reason::InSync,
                Payload::None,
            ),
            step(
                bucket_id("media"),
                0,
                Change::NotManaged,
                Reason::InSync,
                Payload::None,
            ),
        ];
        let report = apply(
            &unreachable_nomad(),
            &store,
            &plan(steps),
            policy(true, true, Vec::new()),
        )
        .await;
        assert_eq!(
            results(&report),
            [
                ("web".to_string(), StepResult::Confirmed),
                ("adopted".to_string(), StepResult::Confirmed),
                ("data".to_string(), StepResult::Confirmed),
                ("plain".to_string(), StepResult::Unchanged),
                ("media".to_string(), StepResult::Unchanged),
            ]
        );
        assert_eq!(
            report
                .steps
                .iter()
                .map(|s| s.change.as_str())
                .collect::<Vec<_>>(),
            [
                "unchanged",
                "unchanged",
                "unchanged",
                "unchanged",
                "not-managed"
            ]
        );
        let markers: Vec<(String, String, u64, String)> = store
            .markers(APP)
            .await
            .expect("markers")
            .into_iter()
            .map(|m| {
                (
                    m.resource.to_string(),
                    m.spec_hash,
                    m.live_index,
                    m.revision,
                )
            })
            .collect();
        assert_eq!(
            markers,
            [
                (
                    "csi_volume/default/data".to_string(),
                    "hash-of-data".to_string(),
                    0,
                    "rev-1".to_string()
                ),
                (
                    "nomad_job/default/adopted".to_string(),
                    "hash-of-adopted".to_string(),
                    9,
                    "rev-1".to_string()
                ),
                (
                    "nomad_job/default/web".to_string(),
                    "hash-of-web".to_string(),
                    7,
                    "rev-1".to_string()
                ),
            ]
        );
        assert_eq!(
            store.owned(APP).await.expect("owned"),
            ["nomad_job/default/adopted"]
        );
    }

    #[tokio::test]
    async fn drift_is_healed_only_with_self_heal_and_held_resources_are_left_alone() {
        let store = Store::open_in_memory().expect("store");
        let nomad = unreachable_nomad();
        let steps = vec![
            job_write("drifted", 0, Reason::LiveChanged, 5),
            // Not writes, or not drift: never skipped by the heal policy.
            confirm(job_id("settled"), 0, Reason::Missing, 4),
            confirm(job_id("fine"), 0, Reason::InSync, 4),
        ];
        let report = apply(
            &nomad,
            &store,
            &plan(steps),
            policy(false, false, Vec::new()),
        )
        .await;
        assert_eq!(
            results(&report),
            [
                (
                    "drifted".to_string(),
                    skipped("changed in the cluster; self_heal is off")
                ),
                ("settled".to_string(), StepResult::Confirmed),
                ("fine".to_string(), StepResult::Confirmed),
            ]
        );

        let held = vec![job_id("drifted"), job_id("settled"), job_id("fine")];
        let steps = vec![
            job_write("drifted", 0, Reason::LiveChanged, 5),
            confirm(job_id("settled"), 0, Reason::Missing, 4),
            confirm(job_id("fine"), 0, Reason::InSync, 4),
            // Drift that is not held is healed (here: Nomad is unreachable, so it fails).
            job_write("other", 0, Reason::Stopped, 5),
        ];
        let report = apply(&nomad, &store, &plan(steps), policy(true, false, held)).await;
        let got = results(&report);
        assert_eq!(got[0].0, "drifted");
        assert!(
            matches!(&got[0].1, StepResult::Skipped { reason } if reason.contains(&format!("after {HEAL_LIMIT} heals"))),
            "{got:?}"
        );
        assert_eq!(got[1], ("settled".to_string(), StepResult::Confirmed));
        assert_eq!(got[2], ("fine".to_string(), StepResult::Confirmed));
        assert!(is_failed(&got[3].1), "{got:?}");
    }

    #[tokio::test]
    async fn drift_left_alone_by_the_heal_policy_says_so_even_when_its_preflight_fails() {
        let store = Store::open_in_memory().expect("store");
        let reason = "bucket b does not exist and is not in this plan";
        let steps = || {
            vec![
                job_write("drifted", 0, Reason::LiveChanged, 5),
                job_write("new", 0, Reason::New, 5),
            ]
        };
        let blocked = |mut policy: ApplyPolicy| {
            for name in ["drifted", "new"] {
                policy.blocked.insert(job_id(name), reason.to_string());
            }
            policy
        };
        let nomad = unreachable_nomad();
        let off = blocked(policy(false, false, Vec::new()));
        let report = apply(&nomad, &store, &plan(steps()), off).await;
        let is_blocked = StepResult::Blocked {
            reason: reason.into(),
        };
        assert_eq!(
            results(&report),
            [
                (
                    "drifted".to_string(),
                    skipped("changed in the cluster; self_heal is off")
                ),
                ("new".to_string(), is_blocked.clone()),
            ]
        );
        // Held heals too: no write would be made, so the hold is the reason shown.
        let held = blocked(policy(true, false, vec![job_id("drifted"), job_id("new")]));
        let got = results(&apply(&nomad, &store, &plan(steps()), held).await);
        assert!(
            matches!(&got[0].1, StepResult::Skipped { reason } if reason.contains(&format!("after {HEAL_LIMIT} heals"))),
            "{got:?}"
        );
        assert_eq!(got[1], ("new".to_string(), is_blocked));
    }

    fn after(mut step: Step, dependencies: &[ResourceId]) -> Step {
        step.after = dependencies.to_vec();
        step
    }

    #[tokio::test]
    async fn a_write_whose_dependency_did_not_go_through_is_blocked_naming_it_and_others_go_on() {
        let store = Store::open_in_memory().expect("store");
        let steps = vec![
            // Nomad is unreachable: the writes that are tried fail.
            job_write("first", 0, Reason::New, 0),
            volume_write("data", "glusterfs"),
            // Not a write: refreshed whatever its dependency did.
            after(
                confirm(job_id("unchanged"), 1, Reason::InSync, 4),
                &[volume_id("data")],
            ),
            after(
                job_write("later", 1, Reason::GitChanged, 5),
                &[job_id("unchanged"), volume_id("data")],
            ),
            // Blocked in turn, naming its own dependency.
            after(job_write("chained", 2, Reason::New, 0), &[job_id("later")]),
            // Independent of what failed: still tried, in a later wave.
            job_write("free", 2, Reason::New, 0),
            after(delete(job_id("last"), 3), &[job_id("first")]),
        ];
        let report = apply(
            &unreachable_nomad(),
            &store,
            &plan(steps),
            policy(true, true, Vec::new()),
        )
        .await;
        let got = results(&report);
        assert!(is_failed(&got[0].1), "{got:?}");
        let StepResult::Failed { message, .. } = &got[1].1 else {
            panic!("{got:?}");
        };
        assert_eq!(got[2], ("unchanged".to_string(), StepResult::Confirmed));
        let later = format!("depends on csi_volume/default/data, which failed: {message}");
        assert_eq!(
            got[3],
            (
                "later".to_string(),
                StepResult::Blocked {
                    reason: later.clone()
                }
            )
        );
        assert_eq!(
            got[4],
            (
                "chained".to_string(),
                StepResult::Blocked {
                    reason: format!(
                        "depends on nomad_job/default/later, which is blocked: {later}"
                    )
                }
            )
        );
        assert!(is_failed(&got[5].1), "{got:?}");
        assert!(
            matches!(&got[6].1, StepResult::Blocked { reason } if reason.starts_with("depends on nomad_job/default/first, which failed: ")),
            "{got:?}"
        );
        assert!(report.failed());
        assert!(report.changes().is_empty());
    }

    #[tokio::test]
    async fn a_failed_preflight_holds_back_only_that_write() {
        let store = Store::open_in_memory().expect("store");
        let reason = "Vault secret nomad/default/web lacks key K";
        let steps = vec![
            job_write("web", 0, Reason::New, 0),
            confirm(job_id("settled"), 0, Reason::InSync, 4),
            delete(job_id("gone"), 0),
            // Nomad is unreachable: a write that is tried fails.
            job_write("later", 1, Reason::GitChanged, 5),
        ];
        let mut policy = policy(true, true, Vec::new());
        for name in ["web", "settled", "gone"] {
            policy.blocked.insert(job_id(name), reason.to_string());
        }
        let report = apply(&unreachable_nomad(), &store, &plan(steps), policy).await;
        let got = results(&report);
        let blocked = StepResult::Blocked {
            reason: reason.into(),
        };
        assert_eq!(got[0], ("web".to_string(), blocked));
        // Only writes other than deletions are held back by a preflight.
        assert_eq!(got[1], ("settled".to_string(), StepResult::Confirmed));
        assert_eq!(
            got[2],
            ("gone".to_string(), skipped("not owned by this app"))
        );
        // A blocked step holds back only what depends on it, not later waves.
        assert!(is_failed(&got[3].1), "{got:?}");
        assert!(
            report
                .problems()
                .contains(&format!("nomad_job/default/web: blocked: {reason}")),
            "{:?}",
            report.problems()
        );
    }

    #[tokio::test]
    async fn prune_needs_the_policy_and_this_apps_ownership_in_the_store() {
        let store = Store::open_in_memory().expect("store");
        store
            .record_owned(APP, &rid("nomad_job/default/mine"))
            .await
            .expect("own");
        store
            .record_owned("other", &rid("nomad_job/default/theirs"))
            .await
            .expect("own");
        // Vault secrets are requirements, never pruned.
        store
            .record_owned(APP, &rid("vault_secret/nomad/media"))
            .await
            .expect("own");
        let nomad = unreachable_nomad();

        let off = apply(
            &nomad,
            &store,
            &plan(vec![delete(job_id("mine"), 0)]),
            policy(true, false, Vec::new()),
        )
        .await;
        assert_eq!(
            results(&off),
            [(
                "mine".to_string(),
                skipped("removed from Git; prune is off")
            )]
        );

        let steps = vec![
            delete(job_id("theirs"), 0),
            delete(job_id("nobodys"), 0),
            delete(rid("vault_secret/nomad/media"), 0),
        ];
        let report = apply(&nomad, &store, &plan(steps), policy(true, true, Vec::new())).await;
        assert_eq!(
            results(&report),
            [
                ("theirs".to_string(), skipped("not owned by this app")),
                ("nobodys".to_string(), skipped("not owned by this app")),
                (
                    "media".to_string(),
                    skipped("this kind is not pruned by this version")
                ),
            ]
        );
        assert_eq!(
            report
                .steps
                .iter()
                .map(|s| s.change.as_str())
                .collect::<Vec<_>>(),
            ["delete", "delete", "delete"]
        );
        // Nothing was forgotten.
        assert_eq!(
            store
                .owner_of(&rid("nomad_job/default/theirs"))
                .await
                .expect("owner")
                .as_deref(),
            Some("other")
        );
        assert_eq!(
            store.owned(APP).await.expect("owned"),
            ["nomad_job/default/mine", "vault_secret/nomad/media"]
        );
    }

    /// The live index of a one-step report that applied.
    pub(super) fn applied_index(report: &ApplyReport) -> u64 {
        match report.steps.as_slice() {
            [
                StepReport {
                    result: StepResult::Applied { live_index },
                    ..
                },
            ] => *live_index,
            _ => panic!("{report:?}"),
        }
    }

    pub(super) async fn devstack(seed: &str) -> (Devstack, NomadClient) {
        let seed = drover_devstack::seed::Seed::from_yaml(seed).expect("seed");
        let stack = Devstack::start(DevstackConfig {
            time_scale: 0.01,
            seed: Some(seed),
            ..DevstackConfig::default()
        })
        .await
        .expect("devstack");
        let nomad = nomad_at(stack.nomad_url());
        (stack, nomad)
    }

    #[tokio::test]
    async fn prune_deletes_only_what_the_store_and_the_object_both_say_is_this_apps() {
        let (stack, nomad) = devstack("csi_plugins:\n  - {id: glusterfs}\n").await;
        let store = Store::open_in_memory().expect("store");
        for (name, owner) in [
            ("mine", Some(APP)),
            ("relabelled", Some("other")),
            ("unmarked", None),
        ] {
            nomad
                .register_job(&job_body(name, owner), &RegisterOptions::default())
                .await
                .expect("register");
            let resource = job_id(name);
            store.record_owned(APP, &resource).await.expect("own");
            store
                .set_marker(&Marker {
                    app: APP.into(),
                    resource,
                    spec_hash: "h".into(),
                    live_index: 1,
                    revision: "rev-0".into(),
                    applied_at: SystemTime::now(),
                })
                .await
                .expect("marker");
        }
        let created = apply(
            &nomad,
            &store,
            &plan(vec![volume_write("data", "glusterfs")]),
            policy(true, true, Vec::new()),
        )
        .await;
        assert_eq!(created.changes(), ["create csi_volume/default/data"]);

        let steps = vec![
            delete(job_id("mine"), 0),
            delete(job_id("relabelled"), 0),
            delete(job_id("unmarked"), 0),
            delete(volume_id("data"), 0),
        ];
        let report = apply(&nomad, &store, &plan(steps), policy(true, true, Vec::new())).await;
        let not_named = skipped(&format!("job meta {OWNER_META_KEY} does not name this app"));
        assert_eq!(
            results(&report),
            [
                ("mine".to_string(), StepResult::Deleted),
                ("relabelled".to_string(), not_named.clone()),
                ("unmarked".to_string(), not_named),
                ("data".to_string(), StepResult::Deleted),
            ]
        );
        assert!(
            nomad
                .read_job("default", "mine")
                .await
                .expect("read")
                .is_none()
        );
        for kept in ["relabelled", "unmarked"] {
            assert!(
                nomad
                    .read_job("default", kept)
                    .await
                    .expect("read")
                    .is_some()
            );
        }
        // The volume was only deregistered: a prune never destroys its data.
        assert!(
            nomad
                .read_csi_volume("default", "data")
                .await
                .expect("read")
                .is_none()
        );
        let requests = &stack.state().requests;
        assert_eq!(
            requests.count_matching(Some(System::Nomad), Some("DELETE"), "/v1/volume/csi/data"),
            1
        );
        assert_eq!(
            requests.count_matching(Some(System::Nomad), None, "/v1/volume/csi/data/delete"),
            0
        );
        // What was deleted is forgotten; what was refused stays owned, with its marker.
        assert_eq!(
            store.owned(APP).await.expect("owned"),
            ["nomad_job/default/relabelled", "nomad_job/default/unmarked"]
        );
        let markers: Vec<String> = store
            .markers(APP)
            .await
            .expect("markers")
            .into_iter()
            .map(|m| m.resource.to_string())
            .collect();
        assert_eq!(
            markers,
            ["nomad_job/default/relabelled", "nomad_job/default/unmarked"]
        );
        stack.shutdown().await;
    }

    fn hook_run(name: &str, outcome: hooks::HookOutcome) -> hooks::HookRun {
        hooks::HookRun {
            phase: crate::desired::HookPhase::PreSync,
            job: job_id(name),
            outcome,
        }
    }

    #[test]
    fn a_report_lists_completed_hooks_as_changes_and_failed_ones_as_problems() {
        let failed_hook = || {
            hook_run(
                "check",
                hooks::HookOutcome::Failed {
                    reason: "timed out after 1s".into(),
                    transient: true,
                },
            )
        };
        let report = ApplyReport {
            steps: vec![StepReport {
                id: job_id("web"),
                change: "update".into(),
                result: StepResult::Applied { live_index: 3 },
            }],
            hooks: vec![
                hook_run("seed", hooks::HookOutcome::Succeeded),
                hook_run(
                    "once",
                    hooks::HookOutcome::AlreadyRan {
                        revision: "r0".into(),
                    },
                ),
            ],
        };
        assert_eq!(
            report.changes(),
            [
                "update nomad_job/default/web",
                "run pre_sync hook nomad_job/default/seed"
            ]
        );
        assert!(!report.failed());
        assert!(report.problems().is_empty());

        let stopped = ApplyReport::stopped_by_hooks(
            &plan(vec![
                job_write("web", 0, Reason::GitChanged, 3),
                confirm(job_id("db"), 0, Reason::InSync, 4),
            ]),
            vec![failed_hook()],
        );
        let problem = "pre_sync hook nomad_job/default/check failed: timed out after 1s";
        assert_eq!(
            results(&stopped),
            [
                ("web".to_string(), skipped(problem)),
                ("db".to_string(), StepResult::Unchanged)
            ]
        );
        assert_eq!(stopped.steps[0].change, "update");
        assert!(stopped.failed());
        assert!(stopped.changes().is_empty());
        assert_eq!(stopped.problems(), [problem]);
    }
}
