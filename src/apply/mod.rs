//! Executes a plan: compare-and-set writes, retries on transient errors only (inside the
//! providers), the prune guard (ownership in the store *and* on the object), wave barriers.

use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

use crate::desired::{ResourceId, ResourceKind};
use crate::plan::nomad_job::OWNER_META_KEY;
use crate::plan::{Change, Payload, Plan, Reason, Step};
use crate::providers::nomad::{NomadClient, RegisterOptions};
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

    /// Whether later waves must wait.
    pub fn blocks(&self) -> bool {
        matches!(
            self,
            StepResult::Waiting { .. } | StepResult::Conflict { .. } | StepResult::Failed { .. }
        )
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
}

impl ApplyReport {
    /// Lines like `update nomad_job/default/web` for each write made.
    pub fn changes(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter(|s| s.result.wrote())
            .map(|s| format!("{} {}", s.change, s.id))
            .collect()
    }

    /// Whether any step failed or conflicted.
    pub fn failed(&self) -> bool {
        self.steps.iter().any(|s| {
            matches!(
                s.result,
                StepResult::Failed { .. } | StepResult::Conflict { .. }
            )
        })
    }

    /// Whether any step waits on something.
    pub fn waiting(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.result, StepResult::Waiting { .. }))
    }

    /// A one-line summary of failures and waits.
    pub fn problems(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter_map(|s| match &s.result {
                StepResult::Failed { message, .. } => Some(format!("{}: {message}", s.id)),
                StepResult::Conflict { message } => Some(format!("{}: conflict: {message}", s.id)),
                StepResult::Waiting { reason } => Some(format!("{}: waiting: {reason}", s.id)),
                _ => None,
            })
            .collect()
    }
}

/// Execute `plan` in wave order. A blocked wave stops the later ones; every write is CAS.
pub async fn apply(
    nomad: &NomadClient,
    store: &Store,
    plan: &Plan,
    policy: ApplyPolicy,
) -> ApplyReport {
    let mut report = ApplyReport::default();
    let mut blocked_at: Option<u32> = None;
    for step in &plan.steps {
        let result = match blocked_at {
            Some(wave) if step.wave > wave && step.change.is_write() => StepResult::Skipped {
                reason: format!("waiting for wave {wave}"),
            },
            _ => apply_step(nomad, store, plan, step, &policy).await,
        };
        if result.blocks() {
            blocked_at = Some(blocked_at.map_or(step.wave, |w| w.min(step.wave)));
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
    nomad: &NomadClient,
    store: &Store,
    plan: &Plan,
    step: &Step,
    policy: &ApplyPolicy,
) -> StepResult {
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
    let resource = step.id.to_string();
    let marker = |live_index: u64| Marker {
        app: plan.app.clone(),
        resource: resource.clone(),
        spec_hash: step.spec_hash.clone(),
        live_index,
        revision: plan.revision.clone(),
        applied_at: SystemTime::now(),
    };
    match (&step.change, &step.payload) {
        (Change::Unchanged, Payload::Confirm { live_index }) => {
            // A job equal to desired already carries this app's owner meta: it is ours (the
            // store was lost or the marker never written). Volumes carry no mark: never adopted.
            if step.reason == Reason::Unmanaged
                && step.id.kind == ResourceKind::NomadJob
                && let Err(e) = store.record_owned(&plan.app, &resource).await
            {
                return failed(&e, false);
            }
            match store.set_marker(&marker(*live_index)).await {
                Ok(()) => StepResult::Confirmed,
                Err(e) => failed(&e, false),
            }
        }
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
            match nomad.register_job(job, &options).await {
                Ok(response) => {
                    tracing::info!(app = %plan.app, resource = %resource, eval = %response.eval_id, "job registered");
                    record_write(
                        store,
                        &plan.app,
                        &resource,
                        marker(response.job_modify_index),
                    )
                    .await
                }
                Err(e) if e.is_enforce_index_conflict() => StepResult::Conflict {
                    message: e.body().unwrap_or_default().to_string(),
                },
                Err(e) => failed(&e, e.is_transient()),
            }
        }
        (
            Change::Create { .. } | Change::Update { .. },
            Payload::CsiVolume {
                volume,
                register,
                plugin_id,
            },
        ) => {
            // Volumes are created only after their plugin is healthy (like Terraform's
            // `data "nomad_plugin" { wait_for_healthy = true }`).
            match nomad.read_csi_plugin(plugin_id).await {
                Ok(Some(plugin)) if plugin.is_healthy() => {}
                Ok(Some(_)) => {
                    return StepResult::Waiting {
                        reason: format!("CSI plugin {plugin_id} is not healthy yet"),
                    };
                }
                Ok(None) => {
                    return StepResult::Waiting {
                        reason: format!("CSI plugin {plugin_id} is not running yet"),
                    };
                }
                Err(e) => return failed(&e, e.is_transient()),
            }
            match nomad
                .put_csi_volume(&step.id.scope, volume.expose(), *register)
                .await
            {
                Ok(_) => record_write(store, &plan.app, &resource, marker(0)).await,
                Err(e) => failed(&e, e.is_transient()),
            }
        }
        (Change::Delete, Payload::Delete) => {
            if !policy.prune {
                return StepResult::Skipped {
                    reason: "removed from Git; prune is off".into(),
                };
            }
            prune(nomad, store, &plan.app, &step.id).await
        }
        _ => StepResult::Unchanged,
    }
}

/// Delete only what this app owns: recorded in the store *and* marked on the object.
async fn prune(nomad: &NomadClient, store: &Store, app: &str, id: &ResourceId) -> StepResult {
    let resource = id.to_string();
    match store.owner_of(&resource).await {
        Ok(Some(owner)) if owner == app => {}
        Ok(_) => {
            return StepResult::Skipped {
                reason: "not owned by this app".into(),
            };
        }
        Err(e) => return failed(&e, false),
    }
    let deleted = match id.kind {
        ResourceKind::NomadJob => {
            match nomad.read_job(&id.scope, &id.name).await {
                Ok(Some(job)) => {
                    let marked = job
                        .get("Meta")
                        .and_then(|meta| meta.get(OWNER_META_KEY))
                        .and_then(Value::as_str);
                    if marked != Some(app) {
                        return StepResult::Skipped {
                            reason: format!("job meta {OWNER_META_KEY} does not name this app"),
                        };
                    }
                }
                Ok(None) => {}
                Err(e) => return failed(&e, e.is_transient()),
            }
            nomad
                .deregister_job(&id.scope, &id.name, true)
                .await
                .map(|_| ())
        }
        ResourceKind::CsiVolume => {
            nomad
                // Deregister only: a prune never destroys the volume's data.
                .delete_csi_volume(&id.scope, &id.name, true)
                .await
        }
        _ => {
            return StepResult::Skipped {
                reason: "this kind is not pruned by this version".into(),
            };
        }
    };
    match deleted {
        Ok(()) => {
            let _ = store.delete_marker(app, &resource).await;
            let _ = store.forget_owned(app, &resource).await;
            StepResult::Deleted
        }
        Err(e) => failed(&e, e.is_transient()),
    }
}

/// After a write: ownership first, then the marker (a crash in between only costs one plan call).
async fn record_write(store: &Store, app: &str, resource: &str, marker: Marker) -> StepResult {
    let live_index = marker.live_index;
    if let Err(e) = store.record_owned(app, resource).await {
        return failed(&e, false);
    }
    if let Err(e) = store.set_marker(&marker).await {
        return failed(&e, false);
    }
    StepResult::Applied { live_index }
}

fn failed(error: &dyn std::error::Error, transient: bool) -> StepResult {
    StepResult::Failed {
        message: crate::telemetry::error_chain(error),
        transient,
    }
}
