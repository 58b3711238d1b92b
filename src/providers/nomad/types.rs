//! Nomad wire types drover reads. Field names are Go's (`ID`, `JobModifyIndex`, `TaskGroups`);
//! jobs themselves stay `serde_json::Value` because drover only passes them through.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /v1/jobs` element (`JobListStub`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobListStub {
    /// Job ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Job name.
    #[serde(rename = "Name", default)]
    pub name: String,
    /// Namespace (omitted when empty).
    #[serde(rename = "Namespace", default)]
    pub namespace: String,
    /// `service`, `batch`, `system`, `sysbatch`.
    #[serde(rename = "Type", default)]
    pub job_type: String,
    /// Whether the job is stopped.
    #[serde(rename = "Stop", default)]
    pub stop: bool,
    /// `pending`, `running`, `dead`.
    #[serde(rename = "Status", default)]
    pub status: String,
    /// Changes on any update, status included.
    #[serde(rename = "ModifyIndex", default)]
    pub modify_index: u64,
    /// Changes only when the spec changes.
    #[serde(rename = "JobModifyIndex", default)]
    pub job_modify_index: u64,
    /// Set when the job was created.
    #[serde(rename = "CreateIndex", default)]
    pub create_index: u64,
    /// Job meta (only with `meta=true`).
    #[serde(rename = "Meta", default)]
    pub meta: Option<BTreeMap<String, String>>,
    /// Allocation counts per group.
    #[serde(rename = "JobSummary", default)]
    pub summary: Option<JobSummary>,
}

/// `JobSummary`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobSummary {
    /// Counts per task group.
    #[serde(rename = "Summary", default)]
    pub summary: Option<BTreeMap<String, TaskGroupSummary>>,
}

/// Allocation counts of one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskGroupSummary {
    /// Queued.
    #[serde(default)]
    pub queued: u64,
    /// Complete.
    #[serde(default)]
    pub complete: u64,
    /// Failed.
    #[serde(default)]
    pub failed: u64,
    /// Running.
    #[serde(default)]
    pub running: u64,
    /// Starting.
    #[serde(default)]
    pub starting: u64,
    /// Lost.
    #[serde(default)]
    pub lost: u64,
}

/// Register / revert / deregister response.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobRegisterResponse {
    /// The evaluation created (empty for periodic/parameterized jobs).
    #[serde(rename = "EvalID", default)]
    pub eval_id: String,
    /// The job's modify index after the write.
    #[serde(rename = "JobModifyIndex", default)]
    pub job_modify_index: u64,
    /// Deprecation and other warnings, one string.
    #[serde(rename = "Warnings", default)]
    pub warnings: Option<String>,
    /// Raft index of the write.
    #[serde(rename = "Index", default)]
    pub index: u64,
}

/// `POST /v1/job/:id/plan` response.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobPlanResponse {
    /// The current job's `JobModifyIndex`, 0 for a new job: pass it back as `EnforceIndex`.
    #[serde(rename = "JobModifyIndex", default)]
    pub job_modify_index: u64,
    /// The structured diff (with `Diff: true`).
    #[serde(rename = "Diff", default)]
    pub diff: Option<JobDiff>,
    /// Scheduler annotations.
    #[serde(rename = "Annotations", default)]
    pub annotations: Option<PlanAnnotations>,
    /// Groups whose placements would fail, keyed by group (raw metrics).
    #[serde(rename = "FailedTGAllocs", default)]
    pub failed_tg_allocs: Option<BTreeMap<String, Value>>,
    /// Warnings.
    #[serde(rename = "Warnings", default)]
    pub warnings: Option<String>,
}

/// `PlanAnnotations`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PlanAnnotations {
    /// What the scheduler would do per group.
    #[serde(rename = "DesiredTGUpdates", default)]
    pub desired_tg_updates: Option<BTreeMap<String, DesiredUpdates>>,
}

/// `DesiredUpdates` of one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DesiredUpdates {
    /// Unchanged allocations.
    #[serde(default)]
    pub ignore: u64,
    /// New allocations.
    #[serde(default)]
    pub place: u64,
    /// Migrated.
    #[serde(default)]
    pub migrate: u64,
    /// Stopped.
    #[serde(default)]
    pub stop: u64,
    /// Updated in place.
    #[serde(default)]
    pub in_place_update: u64,
    /// Replaced.
    #[serde(default)]
    pub destructive_update: u64,
    /// Canaries.
    #[serde(default)]
    pub canary: u64,
}

/// The kind of a diff node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum DiffType {
    /// Present only in the new job.
    Added,
    /// Present only in the old job.
    Deleted,
    /// Changed.
    Edited,
    /// Unchanged (context).
    None,
}

/// `JobDiff`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct JobDiff {
    /// Added / Deleted / Edited / None.
    #[serde(rename = "Type")]
    pub diff_type: DiffType,
    /// Job ID.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Primitive fields.
    #[serde(rename = "Fields", default)]
    pub fields: Option<Vec<FieldDiff>>,
    /// Nested objects.
    #[serde(rename = "Objects", default)]
    pub objects: Option<Vec<ObjectDiff>>,
    /// Groups.
    #[serde(rename = "TaskGroups", default)]
    pub task_groups: Option<Vec<TaskGroupDiff>>,
}

/// `TaskGroupDiff`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct TaskGroupDiff {
    /// Added / Deleted / Edited / None.
    #[serde(rename = "Type")]
    pub diff_type: DiffType,
    /// Group name.
    #[serde(rename = "Name", default)]
    pub name: String,
    /// Primitive fields.
    #[serde(rename = "Fields", default)]
    pub fields: Option<Vec<FieldDiff>>,
    /// Nested objects.
    #[serde(rename = "Objects", default)]
    pub objects: Option<Vec<ObjectDiff>>,
    /// Tasks.
    #[serde(rename = "Tasks", default)]
    pub tasks: Option<Vec<TaskDiff>>,
    /// Scheduler counts (`create`, `destroy`, `in-place update`, …).
    #[serde(rename = "Updates", default)]
    pub updates: Option<BTreeMap<String, u64>>,
}

/// `TaskDiff`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct TaskDiff {
    /// Added / Deleted / Edited / None.
    #[serde(rename = "Type")]
    pub diff_type: DiffType,
    /// Task name.
    #[serde(rename = "Name", default)]
    pub name: String,
    /// Primitive fields.
    #[serde(rename = "Fields", default)]
    pub fields: Option<Vec<FieldDiff>>,
    /// Nested objects.
    #[serde(rename = "Objects", default)]
    pub objects: Option<Vec<ObjectDiff>>,
    /// `forces create/destroy update`, `forces in-place update`, …
    #[serde(rename = "Annotations", default)]
    pub annotations: Option<Vec<String>>,
}

/// `ObjectDiff`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ObjectDiff {
    /// Added / Deleted / Edited / None.
    #[serde(rename = "Type")]
    pub diff_type: DiffType,
    /// Object name (`Resources`, `Template`, …).
    #[serde(rename = "Name", default)]
    pub name: String,
    /// Primitive fields.
    #[serde(rename = "Fields", default)]
    pub fields: Option<Vec<FieldDiff>>,
    /// Nested objects.
    #[serde(rename = "Objects", default)]
    pub objects: Option<Vec<ObjectDiff>>,
}

/// `FieldDiff`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct FieldDiff {
    /// Added / Deleted / Edited / None.
    #[serde(rename = "Type")]
    pub diff_type: DiffType,
    /// Field name (`Meta[owner]`, `MemoryMB`).
    #[serde(rename = "Name", default)]
    pub name: String,
    /// Old value as text.
    #[serde(rename = "Old", default)]
    pub old: String,
    /// New value as text.
    #[serde(rename = "New", default)]
    pub new: String,
    /// Annotations (`forces create`).
    #[serde(rename = "Annotations", default)]
    pub annotations: Option<Vec<String>>,
}

/// A deployment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Deployment {
    /// Deployment ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Job ID.
    #[serde(rename = "JobID", default)]
    pub job_id: String,
    /// The job version being deployed.
    #[serde(rename = "JobVersion", default)]
    pub job_version: u64,
    /// The job's spec index the deployment is for.
    #[serde(rename = "JobSpecModifyIndex", default)]
    pub job_spec_modify_index: u64,
    /// `running`, `successful`, `failed`, `cancelled`, `paused`, …
    #[serde(rename = "Status", default)]
    pub status: String,
    /// Human description.
    #[serde(rename = "StatusDescription", default)]
    pub status_description: String,
    /// Per-group progress.
    #[serde(rename = "TaskGroups", default)]
    pub task_groups: Option<BTreeMap<String, DeploymentGroup>>,
}

/// A deployment's progress for one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeploymentGroup {
    /// Allocations wanted.
    #[serde(default)]
    pub desired_total: u64,
    /// Allocations placed.
    #[serde(default)]
    pub placed_allocs: u64,
    /// Healthy allocations.
    #[serde(default)]
    pub healthy_allocs: u64,
    /// Unhealthy allocations.
    #[serde(default)]
    pub unhealthy_allocs: u64,
}

/// `AllocListStub` (the fields drover reads).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AllocListStub {
    /// Allocation ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// `job.group[0]`.
    #[serde(rename = "Name", default)]
    pub name: String,
    /// Job ID.
    #[serde(rename = "JobID", default)]
    pub job_id: String,
    /// Job version it runs.
    #[serde(rename = "JobVersion", default)]
    pub job_version: u64,
    /// Task group.
    #[serde(rename = "TaskGroup", default)]
    pub task_group: String,
    /// Node name.
    #[serde(rename = "NodeName", default)]
    pub node_name: String,
    /// `run`, `stop`, `evict`.
    #[serde(rename = "DesiredStatus", default)]
    pub desired_status: String,
    /// `pending`, `running`, `complete`, `failed`, `lost`, `unknown`.
    #[serde(rename = "ClientStatus", default)]
    pub client_status: String,
    /// Deployment health (`Healthy` stays null until decided).
    #[serde(rename = "DeploymentStatus", default)]
    pub deployment_status: Option<AllocDeploymentStatus>,
    /// The replacement, when this allocation was rescheduled (empty otherwise).
    #[serde(rename = "NextAllocation", default)]
    pub next_allocation: Option<String>,
    /// Per-task states.
    #[serde(rename = "TaskStates", default)]
    pub task_states: Option<BTreeMap<String, TaskState>>,
}

/// An allocation's deployment health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct AllocDeploymentStatus {
    /// `None` until health has been decided.
    #[serde(rename = "Healthy", default)]
    pub healthy: Option<bool>,
}

/// One task's state.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TaskState {
    /// `pending`, `running`, `dead`.
    #[serde(rename = "State", default)]
    pub state: String,
    /// Whether it failed (a dead prestart task with `Failed: false` is fine).
    #[serde(rename = "Failed", default)]
    pub failed: bool,
    /// Restarts so far.
    #[serde(rename = "Restarts", default)]
    pub restarts: u64,
}

/// `GET /v1/volumes?type=csi` element.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CsiVolumeStub {
    /// Volume ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Namespace.
    #[serde(rename = "Namespace", default)]
    pub namespace: String,
    /// Plugin ID.
    #[serde(rename = "PluginID", default)]
    pub plugin_id: String,
    /// Whether allocations can use it.
    #[serde(rename = "Schedulable", default)]
    pub schedulable: bool,
    /// Changes on any update.
    #[serde(rename = "ModifyIndex", default)]
    pub modify_index: u64,
}

/// `GET /v1/plugin/csi/:id`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CsiPlugin {
    /// Plugin ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Whether volumes need a controller.
    #[serde(rename = "ControllerRequired", default)]
    pub controller_required: bool,
    /// Healthy controllers.
    #[serde(rename = "ControllersHealthy", default)]
    pub controllers_healthy: u64,
    /// Healthy node plugins.
    #[serde(rename = "NodesHealthy", default)]
    pub nodes_healthy: u64,
}

impl AllocListStub {
    /// `complete`, `failed` or `lost`: the client is done with it.
    pub fn is_terminal(&self) -> bool {
        matches!(self.client_status.as_str(), "complete" | "failed" | "lost")
    }

    /// Replaced by a rescheduled allocation.
    pub fn is_replaced(&self) -> bool {
        self.next_allocation
            .as_deref()
            .is_some_and(|n| !n.is_empty())
    }
}

impl CsiPlugin {
    /// Ready to create and mount volumes.
    pub fn is_healthy(&self) -> bool {
        self.nodes_healthy > 0 && (!self.controller_required || self.controllers_healthy > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn alloc_stub_reads_go_field_names_and_a_null_healthy() {
        // api-facts §1.8: `DeploymentStatus.Healthy` stays null until decided; `NextAllocation`
        // names the reschedule; times and other fields are ignored.
        let stub: AllocListStub = serde_json::from_value(json!({
            "ID": "a1", "Name": "web.web[0]", "JobID": "web", "JobVersion": 3, "TaskGroup": "web",
            "NodeName": "Hestia", "DesiredStatus": "run", "ClientStatus": "failed",
            "DeploymentStatus": {"Healthy": null, "Timestamp": "0001-01-01T00:00:00Z", "Canary": false},
            "NextAllocation": "a2",
            "TaskStates": {"init": {"State": "dead", "Failed": false, "Restarts": 0, "Events": []}},
            "CreateTime": 1763870000000000000u64
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stub.job_version, 3);
        assert_eq!(stub.deployment_status.and_then(|d| d.healthy), None);
        assert!(stub.is_terminal() && stub.is_replaced());
        assert_eq!(
            stub.task_states
                .and_then(|t| t.get("init").map(|s| (s.state.clone(), s.failed))),
            Some(("dead".into(), false))
        );
    }

    #[test]
    fn deployment_and_list_stub_read_documented_shapes() {
        // api-facts §1.6: Deployment fields and JobListStub (Namespace/Meta omitted when empty).
        let d: Deployment = serde_json::from_value(json!({
            "ID": "d1", "JobID": "web", "JobVersion": 2, "JobSpecModifyIndex": 40,
            "Status": "failed", "StatusDescription": "Failed due to unhealthy allocations",
            "TaskGroups": {"web": {"DesiredTotal": 2, "PlacedAllocs": 2, "HealthyAllocs": 1,
                "UnhealthyAllocs": 1, "ProgressDeadline": 600000000000u64, "AutoRevert": true}}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            d.task_groups
                .and_then(|g| g.get("web").map(|g| g.unhealthy_allocs)),
            Some(1)
        );
        let stub: JobListStub = serde_json::from_value(json!({
            "ID": "web", "Name": "web", "Type": "service", "Stop": false, "Status": "running",
            "CreateIndex": 10, "ModifyIndex": 57, "JobModifyIndex": 55,
            "JobSummary": {"JobID": "web", "Summary": {"web": {"Queued": 0, "Complete": 0, "Failed": 0,
                "Running": 1, "Starting": 0, "Lost": 0, "Unknown": 0}}}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                stub.namespace.as_str(),
                stub.job_modify_index,
                stub.modify_index
            ),
            ("", 55, 57)
        );
        assert!(stub.meta.is_none());
    }
}
