//! Nomad wire types drover reads and sends. Field names are Go's (`ID`, `JobModifyIndex`,
//! `TaskGroups`); fields Nomad may omit or send as `null` read as their default, and unknown
//! fields are ignored (servers add fields; drover reads only what it needs). A job's body stays
//! `serde_json::Value` where drover only passes it through (see [`super::job_body`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::telemetry::Redacted;

/// Read an absent *or `null`* field as its default (Go sends `null` for empty maps and slices).
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `GET /v1/job/:id` (`Job`): the fields drover reads. The job drover registers is the opaque
/// body the server parsed, not this view.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Job {
    /// Job ID.
    #[serde(rename = "ID", default, deserialize_with = "nullable")]
    pub id: String,
    /// Namespace.
    #[serde(rename = "Namespace", default, deserialize_with = "nullable")]
    pub namespace: String,
    /// `service`, `batch`, `system`, `sysbatch`.
    #[serde(rename = "Type", default, deserialize_with = "nullable")]
    pub job_type: String,
    /// `pending`, `running`, `dead`.
    #[serde(rename = "Status", default, deserialize_with = "nullable")]
    pub status: String,
    /// The current version.
    #[serde(rename = "Version", default, deserialize_with = "nullable")]
    pub version: u64,
    /// Whether the job is stopped.
    #[serde(rename = "Stop", default, deserialize_with = "nullable")]
    pub stop: bool,
    /// Changes only when the spec changes.
    #[serde(rename = "JobModifyIndex", default, deserialize_with = "nullable")]
    pub job_modify_index: u64,
    /// Job meta (drover's ownership mark lives here).
    #[serde(rename = "Meta", default, deserialize_with = "nullable")]
    pub meta: BTreeMap<String, String>,
    /// Task groups.
    #[serde(rename = "TaskGroups", default, deserialize_with = "nullable")]
    pub task_groups: Vec<TaskGroup>,
}

/// A job's `TaskGroups[]` element: the fields drover reads.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct TaskGroup {
    /// Group name.
    #[serde(rename = "Name", default, deserialize_with = "nullable")]
    pub name: String,
    /// Wanted allocations (`null` in a parsed, uncanonicalized job that sets none).
    #[serde(rename = "Count", default, deserialize_with = "nullable")]
    pub count: u64,
    /// The group's `scaling` block, when it has one.
    #[serde(rename = "Scaling", default)]
    pub scaling: Option<ScalingPolicy>,
}

/// A group's `Scaling` (`ScalingPolicy`): its count belongs to an autoscaler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct ScalingPolicy {
    /// Lowest count.
    #[serde(rename = "Min", default)]
    pub min: Option<i64>,
    /// Highest count.
    #[serde(rename = "Max", default)]
    pub max: Option<i64>,
    /// Whether the autoscaler acts on it.
    #[serde(rename = "Enabled", default)]
    pub enabled: Option<bool>,
}

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
    /// The Raft index that created it (tells one run of a batch job from an earlier one).
    #[serde(rename = "CreateIndex", default)]
    pub create_index: u64,
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

/// One `RequestedCapabilities[]` element of a CSI volume.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct CsiVolumeCapability {
    /// `single-node-writer`, `multi-node-multi-writer`, …
    #[serde(rename = "AccessMode", default, deserialize_with = "nullable")]
    pub access_mode: String,
    /// `file-system` or `block-device`.
    #[serde(rename = "AttachmentMode", default, deserialize_with = "nullable")]
    pub attachment_mode: String,
}

/// A CSI volume's `MountOptions`. Sent as `{}` when unset: `null` makes Nomad refuse updates of
/// a volume in use ("can not update mount options while volume is in use").
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CsiMountOptions {
    /// File system type.
    #[serde(rename = "FSType", default, skip_serializing_if = "Option::is_none")]
    pub fs_type: Option<String>,
    /// Mount flags (a GET answers `["[REDACTED]"]`).
    #[serde(
        rename = "MountFlags",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub mount_flags: Option<Vec<String>>,
}

/// One element of `Volumes` in `PUT /v1/volume/csi/:id[/create]` (capacities in bytes). It
/// holds the plugin secrets: `Debug` never shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CsiVolumeRequest {
    /// Volume ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Display name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Namespace.
    #[serde(rename = "Namespace")]
    pub namespace: String,
    /// The plugin that provisions it.
    #[serde(rename = "PluginID")]
    pub plugin_id: String,
    /// The storage provider's ID (`register` only).
    #[serde(rename = "ExternalID", skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Bytes, 0 when unset.
    #[serde(rename = "RequestedCapacityMin")]
    pub requested_capacity_min: u64,
    /// Bytes, 0 when unset.
    #[serde(rename = "RequestedCapacityMax")]
    pub requested_capacity_max: u64,
    /// Access and attachment modes.
    #[serde(rename = "RequestedCapabilities")]
    pub requested_capabilities: Vec<CsiVolumeCapability>,
    /// Mount options (`{}` when unset).
    #[serde(rename = "MountOptions")]
    pub mount_options: CsiMountOptions,
    /// Plugin parameters.
    #[serde(rename = "Parameters")]
    pub parameters: BTreeMap<String, String>,
    /// Plugin secrets.
    #[serde(rename = "Secrets", serialize_with = "expose_secrets")]
    pub secrets: Redacted<BTreeMap<String, String>>,
    /// Plugin context.
    #[serde(rename = "Context")]
    pub context: BTreeMap<String, String>,
    /// Snapshot to create it from (`""`: none).
    #[serde(rename = "SnapshotID")]
    pub snapshot_id: String,
    /// Volume to clone (`""`: none).
    #[serde(rename = "CloneID")]
    pub clone_id: String,
    /// The first capability's access mode (older servers read this field).
    #[serde(rename = "AccessMode")]
    pub access_mode: String,
    /// The first capability's attachment mode.
    #[serde(rename = "AttachmentMode")]
    pub attachment_mode: String,
}

fn expose_secrets<S: Serializer>(
    secrets: &Redacted<BTreeMap<String, String>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    secrets.expose().serialize(serializer)
}

/// `GET /v1/volume/csi/:id` (`CSIVolume`): the fields drover compares. `Secrets` (redacted to
/// `null` by the server) is not read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct CsiVolume {
    /// Volume ID.
    #[serde(rename = "ID", default, deserialize_with = "nullable")]
    pub id: String,
    /// Namespace.
    #[serde(rename = "Namespace", default, deserialize_with = "nullable")]
    pub namespace: String,
    /// Display name.
    #[serde(rename = "Name", default, deserialize_with = "nullable")]
    pub name: String,
    /// The storage provider's ID.
    #[serde(rename = "ExternalID", default, deserialize_with = "nullable")]
    pub external_id: String,
    /// The plugin.
    #[serde(rename = "PluginID", default, deserialize_with = "nullable")]
    pub plugin_id: String,
    /// Bytes.
    #[serde(
        rename = "RequestedCapacityMin",
        default,
        deserialize_with = "nullable"
    )]
    pub requested_capacity_min: u64,
    /// Bytes.
    #[serde(
        rename = "RequestedCapacityMax",
        default,
        deserialize_with = "nullable"
    )]
    pub requested_capacity_max: u64,
    /// Access and attachment modes.
    #[serde(
        rename = "RequestedCapabilities",
        default,
        deserialize_with = "nullable"
    )]
    pub requested_capabilities: Vec<CsiVolumeCapability>,
    /// Mount options.
    #[serde(rename = "MountOptions", default)]
    pub mount_options: Option<CsiMountOptions>,
    /// Plugin parameters.
    #[serde(rename = "Parameters", default, deserialize_with = "nullable")]
    pub parameters: BTreeMap<String, String>,
    /// Plugin context.
    #[serde(rename = "Context", default, deserialize_with = "nullable")]
    pub context: BTreeMap<String, String>,
    /// Snapshot it was created from.
    #[serde(rename = "SnapshotID", default, deserialize_with = "nullable")]
    pub snapshot_id: String,
    /// Volume it was cloned from.
    #[serde(rename = "CloneID", default, deserialize_with = "nullable")]
    pub clone_id: String,
    /// Whether allocations can use it.
    #[serde(rename = "Schedulable", default, deserialize_with = "nullable")]
    pub schedulable: bool,
    /// Changes on any update.
    #[serde(rename = "ModifyIndex", default, deserialize_with = "nullable")]
    pub modify_index: u64,
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

    // Shapes as a real Nomad 2.0.5 answers (api-facts §6, §7): each test has a field Nomad omits
    // (read as its default) and fields drover does not know (ignored).

    #[test]
    fn job_read_view_decodes_a_nomad_2_job_with_identity_and_without_tokens() {
        // §7: no ConsulToken/VaultToken/Migrate/Reschedule; every task has a default Identity
        // (unknown to drover); MaxRunDuration is null. `Version` is left out here: it reads as 0.
        let job: Job = serde_json::from_value(json!({
            "ID": "web", "Name": "web", "Namespace": "default", "Type": "service",
            "Status": "running", "Stop": false, "JobModifyIndex": 55, "ModifyIndex": 57,
            "Dispatched": false, "Meta": {"drover.app": "media"}, "Datacenters": ["*"],
            "TaskGroups": [{"Name": "web", "Count": 2, "MaxRunDuration": null, "Scaling": null,
                "Services": [{"Name": "web", "Namespace": "default"}],
                "Tasks": [{"Name": "server", "Identity": {"Name": "default",
                    "Audience": ["nomadproject.io"], "ExtraClaims": null, "TTL": 0}}]}]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                job.job_type.as_str(),
                job.status.as_str(),
                job.version,
                job.stop
            ),
            ("service", "running", 0, false)
        );
        assert_eq!(job.job_modify_index, 55);
        assert_eq!(
            job.meta.get("drover.app").map(String::as_str),
            Some("media")
        );
        assert_eq!(
            job.task_groups
                .iter()
                .map(|g| (g.name.as_str(), g.count, g.scaling.is_some()))
                .collect::<Vec<_>>(),
            [("web", 2, false)]
        );
        // Go sends `null` for an empty map or list.
        let bare: Job =
            serde_json::from_value(json!({"ID": "x", "Meta": null, "TaskGroups": null}))
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(bare.meta.is_empty() && bare.task_groups.is_empty());
    }

    #[test]
    fn alloc_stubs_decode_without_allocated_resources_and_with_new_fields() {
        // §7: the list stub has DesiredTransition.MigrateDisablePlacement and full task events,
        // and no AllocatedResources. `NextAllocation` and `DeploymentStatus` are left out here.
        let stubs: Vec<AllocListStub> = serde_json::from_value(json!([{
            "ID": "a1", "EvalID": "e1", "Name": "web.web[0]", "Namespace": "default",
            "NodeID": "n1", "NodeName": "node", "JobID": "web", "JobType": "service",
            "JobVersion": 1, "TaskGroup": "web", "DesiredStatus": "run",
            "DesiredDescription": "", "ClientStatus": "running", "ClientDescription": "",
            "DesiredTransition": {"Migrate": null, "Reschedule": null,
                "ForceReschedule": null, "NoShutdownDelay": null,
                "MigrateDisablePlacement": null},
            "TaskStates": {"server": {"State": "running", "Failed": false, "Restarts": 0,
                "LastRestart": null, "StartedAt": "2026-11-30T09:00:00Z",
                "Events": [{"Type": "Started", "Details": {}, "DriverError": "",
                    "KillReason": "", "RestartReason": "", "DisplayMessage": "Task started"}]}},
            "FollowupEvalID": "", "CreateIndex": 20, "ModifyIndex": 24,
            "CreateTime": 1764493200000000000u64, "ModifyTime": 1764493201000000000u64
        }]))
        .unwrap_or_else(|e| panic!("{e}"));
        let [stub] = stubs.as_slice() else {
            panic!("{stubs:?}");
        };
        assert_eq!(
            (stub.job_version, stub.client_status.as_str()),
            (1, "running")
        );
        assert!(stub.deployment_status.is_none() && !stub.is_replaced() && !stub.is_terminal());
        assert_eq!(
            stub.task_states
                .as_ref()
                .and_then(|t| t.get("server"))
                .map(|s| s.state.as_str()),
            Some("running")
        );
    }

    #[test]
    fn a_deployment_decodes_with_unknown_group_fields_and_a_missing_description() {
        let d: Deployment = serde_json::from_value(json!({
            "ID": "d1", "Namespace": "default", "JobID": "web", "JobVersion": 1,
            "JobModifyIndex": 55, "JobSpecModifyIndex": 55, "JobCreateIndex": 10,
            "IsMultiregion": false, "Status": "running", "EvalPriority": 50,
            "TaskGroups": {"web": {"AutoRevert": false, "AutoPromote": false,
                "ProgressDeadline": 600000000000u64, "RequireProgressBy": "2026-11-30T09:10:00Z",
                "Promoted": false, "PlacedCanaries": null, "DesiredCanaries": 0,
                "DesiredTotal": 2, "PlacedAllocs": 2, "HealthyAllocs": 1, "UnhealthyAllocs": 0}},
            "CreateIndex": 56, "ModifyIndex": 58
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (d.status.as_str(), d.status_description.as_str()),
            ("running", "")
        );
        assert_eq!(
            d.task_groups.and_then(|g| g.get("web").copied()),
            Some(DeploymentGroup {
                desired_total: 2,
                placed_allocs: 2,
                healthy_allocs: 1,
                unhealthy_allocs: 0
            })
        );
        // The latest deployment of a job that has none is `null` (§6.7).
        let none: Option<Deployment> =
            serde_json::from_value(Value::Null).unwrap_or_else(|e| panic!("{e}"));
        assert!(none.is_none());
    }

    #[test]
    fn csi_volume_and_plugin_decode_with_redactions_and_unknown_fields() {
        // §6.10: GET redacts Secrets (null) and MountFlags, and adds Allocations. `Context` and
        // `CloneID` are left out here.
        let v: CsiVolume = serde_json::from_value(json!({
            "ID": "data", "Namespace": "default", "Name": "data", "ExternalID": "ext-1",
            "PluginID": "glusterfs", "Provider": "glusterfs.csi", "ProviderVersion": "1.0",
            "RequestedCapacityMin": 104857600, "RequestedCapacityMax": 0, "Capacity": 104857600,
            "RequestedCapabilities": [{"AccessMode": "single-node-writer",
                "AttachmentMode": "file-system"}],
            "AccessMode": "", "AttachmentMode": "",
            "MountOptions": {"FSType": "ext4", "MountFlags": ["[REDACTED]"]},
            "Secrets": null, "Parameters": {"share": "x"}, "SnapshotID": "",
            "ReadAllocs": {}, "WriteAllocs": {}, "Allocations": [], "Schedulable": true,
            "PluginProvider": "glusterfs.csi", "ControllerRequired": false,
            "ResourceExhausted": "0001-01-01T00:00:00Z", "CreateIndex": 30, "ModifyIndex": 31
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.requested_capacity_min, 104857600);
        assert_eq!(
            v.mount_options.and_then(|m| m.fs_type).as_deref(),
            Some("ext4")
        );
        assert!(v.context.is_empty() && v.clone_id.is_empty() && v.schedulable);
        assert_eq!(
            v.requested_capabilities[0].access_mode,
            "single-node-writer"
        );

        let stubs: Vec<CsiVolumeStub> = serde_json::from_value(json!([{"ID": "data",
            "Namespace": "default", "Name": "data", "PluginID": "glusterfs",
            "Schedulable": true, "AccessMode": "", "CurrentReaders": 0, "ModifyIndex": 31}]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stubs[0].modify_index, 31);

        let plugin: CsiPlugin = serde_json::from_value(json!({
            "ID": "glusterfs", "Provider": "glusterfs.csi", "Version": "1.0",
            "ControllersHealthy": 0, "Controllers": {}, "NodesHealthy": 1, "NodesExpected": 1,
            "Nodes": {}, "Allocations": [], "CreateIndex": 5, "ModifyIndex": 6
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        // `ControllerRequired` left out: a node-only plugin, healthy with its one node.
        assert!(!plugin.controller_required && plugin.is_healthy());
    }

    #[test]
    fn plan_and_register_answers_decode_with_nomad_2_fields() {
        // §7: the plan body has no Index/KnownLeader/LastContact; DesiredTGUpdates carries newer
        // counters (Disconnect, Reconnect, …) drover does not read. `Warnings` is left out.
        let plan: JobPlanResponse = serde_json::from_value(json!({
            "JobModifyIndex": 55, "CreatedEvals": null, "NextPeriodicLaunch": null,
            "FailedTGAllocs": null,
            "Annotations": {"PreemptedAllocs": null, "DesiredTGUpdates": {"web": {
                "Ignore": 1, "Place": 0, "Migrate": 0, "Stop": 0, "InPlaceUpdate": 0,
                "DestructiveUpdate": 1, "Canary": 0, "Preemptions": 0, "Disconnect": 0,
                "Reconnect": 0, "RescheduleNow": 0, "RescheduleLater": 0}}},
            "Diff": {"Type": "Edited", "ID": "web", "Fields": null, "Objects": null,
                "TaskGroups": [{"Type": "Edited", "Name": "web", "Fields": null,
                    "Objects": null, "Updates": {"create/destroy update": 1, "ignore": 1},
                    "Tasks": [{"Type": "Edited", "Name": "server",
                        "Annotations": ["forces create/destroy update"],
                        "Fields": [{"Type": "Edited", "Name": "Config[image]",
                            "Old": "busybox:1", "New": "busybox:2", "Annotations": null}],
                        "Objects": null}]}]}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.job_modify_index, 55);
        assert!(plan.warnings.is_none());
        assert_eq!(
            plan.annotations
                .and_then(|a| a.desired_tg_updates)
                .and_then(|u| u.get("web").copied())
                .map(|u| (u.ignore, u.destructive_update)),
            Some((1, 1))
        );
        let field = plan
            .diff
            .and_then(|d| d.task_groups)
            .and_then(|g| g.into_iter().next())
            .and_then(|g| g.tasks)
            .and_then(|t| t.into_iter().next())
            .and_then(|t| t.fields)
            .and_then(|f| f.into_iter().next());
        assert_eq!(
            field.map(|f| (f.old, f.new)),
            Some(("busybox:1".into(), "busybox:2".into()))
        );

        // Register: the `JobModifyIndex` of an unchanged re-register is the job's ModifyIndex
        // (§6.2); `Index`/`KnownLeader`/`LastContact` are mirrored in the body.
        let registered: JobRegisterResponse = serde_json::from_value(json!({
            "EvalID": "e2", "EvalCreateIndex": 60, "JobModifyIndex": 60, "Warnings": "",
            "Index": 60, "LastContact": 0, "KnownLeader": false, "NextToken": ""
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (registered.eval_id.as_str(), registered.job_modify_index),
            ("e2", 60)
        );
        // Deregister of a periodic or unknown job: no evaluation, `EvalID` left out.
        let deregistered: JobRegisterResponse = serde_json::from_value(json!({
            "EvalCreateIndex": 0, "JobModifyIndex": 61, "Index": 61
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(deregistered.eval_id, "");
    }

    #[test]
    fn job_list_stub_reads_the_summary_with_unknown_counters() {
        // §7: `JobSummary.Summary.<group>` has `Unknown` too; `Starting` is left out here.
        let stub: JobListStub = serde_json::from_value(json!({
            "ID": "web", "ParentID": "", "Name": "web", "Namespace": "default",
            "Datacenters": ["*"], "NodePool": "default", "Multiregion": null,
            "Type": "service", "Priority": 50, "Periodic": false, "ParameterizedJob": false,
            "Stop": false, "Status": "running", "StatusDescription": "", "Version": 1,
            "Meta": {"drover.app": "media"},
            "JobSummary": {"JobID": "web", "Namespace": "default", "Summary": {"web": {
                "Queued": 0, "Complete": 0, "Failed": 0, "Running": 2, "Lost": 0,
                "Unknown": 0}}, "Children": {"Pending": 0, "Running": 0, "Dead": 0},
                "CreateIndex": 10, "ModifyIndex": 57},
            "CreateIndex": 10, "ModifyIndex": 57, "JobModifyIndex": 55, "SubmitTime": 1
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            stub.summary
                .and_then(|s| s.summary)
                .and_then(|s| s.get("web").copied()),
            Some(TaskGroupSummary {
                running: 2,
                ..TaskGroupSummary::default()
            })
        );
    }
}

/// One line of `GET /v1/event/stream`: the events of one index (`{}`, a heartbeat, has none).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventBatch {
    /// The raft index the events happened at (0 for a heartbeat).
    #[serde(rename = "Index", default)]
    pub index: u64,
    /// The events, in the order the server applied them.
    #[serde(rename = "Events", default, deserialize_with = "nullable")]
    pub events: Vec<Event>,
}

/// One event of the stream (`structs.Event`).
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    /// `Job`, `Allocation`, `Deployment`, `CSIVolume`, …
    #[serde(rename = "Topic", default)]
    pub topic: String,
    /// `JobRegistered`, `JobDeregistered`, `AllocationUpdated`, …
    #[serde(rename = "Type", default)]
    pub kind: String,
    /// The object's ID.
    #[serde(rename = "Key", default)]
    pub key: String,
    /// The object's namespace.
    #[serde(rename = "Namespace", default)]
    pub namespace: String,
    /// The index it happened at.
    #[serde(rename = "Index", default)]
    pub index: u64,
    /// The object, under a key named after the topic.
    #[serde(rename = "Payload", default)]
    pub payload: EventPayload,
}

/// The payload fields drover reads: a full job or volume reads as its list stub.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventPayload {
    /// `Job` topic.
    #[serde(rename = "Job", default)]
    pub job: Option<JobListStub>,
    /// `CSIVolume` topic.
    #[serde(rename = "Volume", default)]
    pub volume: Option<CsiVolumeStub>,
    /// `Allocation` topic: whose allocation.
    #[serde(rename = "Allocation", default)]
    pub allocation: Option<EventJobRef>,
    /// `Deployment` topic: whose deployment.
    #[serde(rename = "Deployment", default)]
    pub deployment: Option<EventJobRef>,
}

/// The job an allocation or deployment belongs to.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventJobRef {
    /// Job ID.
    #[serde(rename = "JobID", default)]
    pub job_id: String,
    /// Namespace.
    #[serde(rename = "Namespace", default)]
    pub namespace: String,
}
