//! Pure planning: triage desired × live × last-applied, then ask the server about suspects only.
//!
//! Step 1 ([`triage`]) is a pure function of data: it marks each resource Unchanged, Create,
//! Suspect or Delete by comparing the desired spec hash with the last-applied marker, and the live
//! modify index with the recorded one. Step 2 ([`explain`]) sends only suspects and creations to
//! the server (Nomad's parse and plan endpoints) for the verdict and the human diff.

pub mod bucket;
pub mod consul_config_entry;
pub mod csi_volume;
mod explain;
pub mod nomad_job;
pub mod order;
pub mod render;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

pub use explain::{PlanError, explain};

use crate::desired::{App, ResourceId, ResourceKind, ResourceSpec};
use crate::live::LiveSnapshot;
use crate::providers::nomad::types::CsiVolumeRequest;

/// The last-applied marker of a resource (from the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMarker {
    /// Desired spec hash when drover last applied (or confirmed) it.
    pub spec_hash: String,
    /// The live modify index right after (e.g. the job's `JobModifyIndex`).
    pub live_index: u64,
    /// The revision it came from.
    pub revision: String,
}

/// Why a resource needs attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Not in the cluster and never applied.
    New,
    /// Git changed since the last apply.
    GitChanged,
    /// Changed in the cluster behind drover's back.
    LiveChanged,
    /// Stopped in the cluster behind drover's back.
    Stopped,
    /// Deleted or purged in the cluster behind drover's back.
    Missing,
    /// Exists in the cluster but drover never applied it (adoption).
    Unmanaged,
    /// drover owns it but it left Git.
    RemovedFromGit,
    /// Nothing to do.
    InSync,
}

impl Reason {
    /// The cluster moved away from what drover applied (self-heal territory).
    pub fn is_drift(self) -> bool {
        matches!(
            self,
            Reason::LiveChanged | Reason::Stopped | Reason::Missing
        )
    }
}

/// The triage verdict for one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing to ask the server.
    Unchanged,
    /// Absent: create it.
    Create,
    /// Might differ: ask the server.
    Suspect,
    /// Owned and gone from Git: delete if pruning.
    Delete,
    /// A kind this version does not apply yet.
    NotManaged,
}

/// Triage of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Triage {
    /// The resource.
    pub id: ResourceId,
    /// What to do about it.
    pub verdict: Verdict,
    /// Why.
    pub reason: Reason,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Change {
    /// Create it.
    Create {
        /// Human-readable diff (`nomad job plan` style).
        diff: String,
    },
    /// Update it.
    Update {
        /// Human-readable diff (`nomad job plan` style).
        diff: String,
    },
    /// Delete it (prune).
    Delete,
    /// Already as desired.
    Unchanged,
    /// Declared but not applied by this version of drover (a later release applies it).
    NotManaged,
}

impl Change {
    /// Whether applying this step writes to the cluster.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Change::Create { .. } | Change::Update { .. } | Change::Delete
        )
    }

    /// `create`, `update`, `delete`, `unchanged`, `not-managed`.
    pub fn verb(&self) -> &'static str {
        match self {
            Change::Create { .. } => "create",
            Change::Update { .. } => "update",
            Change::Delete => "delete",
            Change::Unchanged => "unchanged",
            Change::NotManaged => "not-managed",
        }
    }
}

/// What apply sends for a step (decided by plan, executed by apply).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Payload {
    /// Register this job with `EnforceIndex` = `enforce_index`.
    NomadJob {
        /// The job as parsed by the server, with drover's ownership meta.
        job: Value,
        /// The `JobModifyIndex` the plan saw (0: must not exist).
        enforce_index: u64,
        /// Register with `PreserveCounts`: the job has scaling groups and Git changes no count.
        preserve_counts: bool,
        /// The original jobspec for `Submission`.
        #[serde(skip)]
        source: String,
        /// `hcl2` or `json`.
        format: String,
        /// Var-file body for `Submission`.
        #[serde(skip)]
        variables: String,
    },
    /// Create or register this CSI volume.
    CsiVolume {
        /// One element of `Volumes`. It holds the plugin secrets, so it never prints (`Debug`
        /// shows `<redacted>`) and is never serialized.
        #[serde(skip)]
        volume: crate::telemetry::Redacted<Box<CsiVolumeRequest>>,
        /// `PUT /v1/volume/csi/:id` instead of `/create`.
        register: bool,
        /// The plugin that must be healthy first.
        plugin_id: String,
    },
    /// Write this Consul config entry with `?cas=`.
    ConsulConfigEntry {
        /// The entry as `PUT /v1/config` takes it, with drover's `Meta`.
        entry: Value,
        /// The live `ModifyIndex` the plan saw (0: create only if absent).
        cas: u64,
    },
    /// Create or update this bucket's settings.
    Bucket(bucket::BucketWrites),
    /// Delete (prune): a job is purged, a CSI volume only deregistered (storage is never
    /// destroyed by a prune).
    Delete,
    /// Nothing to send; record the marker with this live index (a suspect that was unchanged).
    Confirm {
        /// The live modify index to record.
        live_index: u64,
    },
    /// Nothing to send.
    None,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The resource.
    pub id: ResourceId,
    /// Resources in lower waves are applied (and healthy) first.
    pub wave: u32,
    /// What changes.
    pub change: Change,
    /// Why.
    pub reason: Reason,
    /// What apply sends.
    pub payload: Payload,
    /// The desired spec hash to record once applied (`""` for deletions).
    pub spec_hash: String,
    /// Steps of this plan that must not have failed for this one to write: the resource's
    /// dependencies, or for a deletion the deletions of what depends on it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<ResourceId>,
}

/// The plan of one app at one revision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// App name.
    pub app: String,
    /// Revision the desired state came from.
    pub revision: String,
    /// Steps in wave order.
    pub steps: Vec<Step>,
}

impl Plan {
    /// Whether anything would be written.
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| s.change.is_write())
    }
}

/// Resources an app owns (from the store) that are not in its desired state any more.
#[derive(Debug, Clone, Default)]
pub struct Owned {
    /// Resource IDs the store says this app created.
    pub resources: Vec<ResourceId>,
    /// Of those, the ones whose last applied spec said `prevent_destroy`: never deleted.
    pub protected: Vec<ResourceId>,
}

/// Step 1: triage every desired resource and every owned-but-undesired one. Pure.
pub fn triage(
    app: &App,
    live: &LiveSnapshot,
    markers: &BTreeMap<ResourceId, AppliedMarker>,
    owned: &Owned,
) -> Vec<Triage> {
    let mut out = Vec::new();
    for resource in &app.resources {
        let marker = markers.get(&resource.id);
        let hash = resource.spec_hash();
        let (verdict, reason) = match &resource.spec {
            ResourceSpec::NomadJob(_) => nomad_job::triage(&resource.id, &hash, live, marker),
            ResourceSpec::CsiVolume(_) => csi_volume::triage(&resource.id, &hash, live, marker),
            ResourceSpec::ConsulConfigEntry(_) => {
                consul_config_entry::triage(&resource.id, &hash, live, marker)
            }
            ResourceSpec::Bucket(_) => bucket::triage(&resource.id, &hash, live, marker),
            _ => (Verdict::NotManaged, Reason::InSync),
        };
        out.push(Triage {
            id: resource.id.clone(),
            verdict,
            reason,
        });
    }
    for id in &owned.resources {
        if app.resources.iter().any(|r| &r.id == id) || owned.protected.contains(id) {
            continue;
        }
        let exists = match id.kind {
            ResourceKind::NomadJob => live.job(&id.scope, &id.name).is_some(),
            ResourceKind::CsiVolume => live.volume(&id.scope, &id.name).is_some(),
            ResourceKind::ConsulConfigEntry => live.config_entry(&id.scope, &id.name).is_some(),
            ResourceKind::Bucket => live.bucket(&id.name).flatten().is_some(),
            _ => false,
        };
        if exists {
            out.push(Triage {
                id: id.clone(),
                verdict: Verdict::Delete,
                reason: Reason::RemovedFromGit,
            });
        }
    }
    out
}

/// Test fixtures, shared with the controller's unit tests.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::desired::{
        BucketSpec, CsiVolumeSpec, JobFormat, NomadJobSpec, Origin, Resource, SyncPolicy,
        VolumeCapability, VolumeMode,
    };
    use crate::providers::nomad::types::{CsiVolumeStub, JobListStub};

    pub(crate) fn id(kind: ResourceKind, scope: &str, name: &str) -> ResourceId {
        ResourceId {
            kind,
            scope: scope.into(),
            name: name.into(),
        }
    }

    pub(crate) fn job_id(name: &str) -> ResourceId {
        id(ResourceKind::NomadJob, "default", name)
    }

    pub(crate) fn volume_id(name: &str) -> ResourceId {
        id(ResourceKind::CsiVolume, "default", name)
    }

    fn origin() -> Origin {
        Origin {
            file: "apps/a/app.yaml".into(),
            line: 1,
        }
    }

    pub(crate) fn job(name: &str) -> Resource {
        Resource {
            id: job_id(name),
            spec: ResourceSpec::NomadJob(NomadJobSpec {
                file: format!("apps/a/{name}.nomad.hcl"),
                format: JobFormat::Hcl2,
                source: format!("job \"{name}\" {{}}"),
                variables: String::new(),
                job_id: name.into(),
            }),
            origin: origin(),
        }
    }

    pub(crate) fn volume(name: &str) -> Resource {
        Resource {
            id: volume_id(name),
            spec: ResourceSpec::CsiVolume(CsiVolumeSpec {
                id: name.into(),
                name: name.into(),
                namespace: "default".into(),
                plugin_id: "glusterfs".into(),
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
            }),
            origin: origin(),
        }
    }

    pub(crate) fn bucket(name: &str) -> Resource {
        Resource {
            id: id(ResourceKind::Bucket, "", name),
            spec: ResourceSpec::Bucket(BucketSpec {
                name: name.into(),
                versioning: None,
                lifecycle: None,
                policy: None,
                tags: BTreeMap::new(),
                prevent_destroy: false,
            }),
            origin: origin(),
        }
    }

    pub(crate) fn app(resources: Vec<Resource>) -> App {
        App {
            name: "a".into(),
            dir: "apps/a".into(),
            namespace: "default".into(),
            depends_on: Vec::new(),
            sync: SyncPolicy::default(),
            pack: None,
            resources,
            probes: Vec::new(),
            hooks: Vec::new(),
            explicit_waves: BTreeMap::new(),
        }
    }

    /// Live jobs and volumes by name, in namespace `default`.
    pub(crate) fn live(jobs: &[&str], volumes: &[&str]) -> LiveSnapshot {
        let mut live = LiveSnapshot {
            jobs_ready: true,
            volumes_ready: true,
            ..LiveSnapshot::default()
        };
        for name in jobs {
            live.jobs.insert(
                ("default".into(), (*name).into()),
                JobListStub {
                    id: (*name).into(),
                    name: (*name).into(),
                    namespace: "default".into(),
                    job_type: "service".into(),
                    stop: false,
                    status: "running".into(),
                    modify_index: 10,
                    job_modify_index: 7,
                    create_index: 1,
                    meta: None,
                    summary: None,
                },
            );
        }
        for name in volumes {
            live.volumes.insert(
                ("default".into(), (*name).into()),
                CsiVolumeStub {
                    id: (*name).into(),
                    namespace: "default".into(),
                    plugin_id: "glusterfs".into(),
                    schedulable: true,
                    modify_index: 3,
                },
            );
        }
        live
    }

    fn verdicts(triage: &[Triage]) -> Vec<(String, Verdict, Reason)> {
        triage
            .iter()
            .map(|t| (t.id.to_string(), t.verdict, t.reason))
            .collect()
    }

    fn step(name: &str, change: Change) -> Step {
        Step {
            id: job_id(name),
            wave: 0,
            change,
            reason: Reason::InSync,
            payload: Payload::None,
            spec_hash: String::new(),
            after: Vec::new(),
        }
    }

    #[test]
    fn only_cluster_side_reasons_are_drift() {
        let drift = [Reason::LiveChanged, Reason::Stopped, Reason::Missing];
        let not_drift = [
            Reason::New,
            Reason::GitChanged,
            Reason::Unmanaged,
            Reason::RemovedFromGit,
            Reason::InSync,
        ];
        for reason in drift {
            assert!(reason.is_drift(), "{reason:?}");
        }
        for reason in not_drift {
            assert!(!reason.is_drift(), "{reason:?}");
        }
    }

    #[test]
    fn only_create_update_and_delete_write_and_each_change_has_its_verb() {
        let cases = [
            (Change::Create { diff: "+".into() }, true, "create"),
            (Change::Update { diff: "~".into() }, true, "update"),
            (Change::Delete, true, "delete"),
            (Change::Unchanged, false, "unchanged"),
            (Change::NotManaged, false, "not-managed"),
        ];
        for (change, writes, verb) in cases {
            assert_eq!(change.is_write(), writes, "{change:?}");
            assert_eq!(change.verb(), verb);
        }
    }

    #[test]
    fn a_plan_has_changes_only_when_a_step_writes() {
        let quiet = Plan {
            app: "a".into(),
            revision: "r".into(),
            steps: vec![step("x", Change::Unchanged), step("y", Change::NotManaged)],
        };
        assert!(!quiet.has_changes());

        let busy = Plan {
            steps: vec![
                step("x", Change::Unchanged),
                step("y", Change::Update { diff: "~".into() }),
                step("z", Change::Delete),
            ],
            ..quiet
        };
        assert!(busy.has_changes());
    }

    #[test]
    fn triage_gives_each_desired_resource_its_kinds_verdict() {
        let desired = app(vec![job("web"), volume("data"), bucket("media")]);
        let got = triage(
            &desired,
            &live(&["web"], &[]),
            &BTreeMap::new(),
            &Owned::default(),
        );
        assert_eq!(
            verdicts(&got),
            [
                (
                    "nomad_job/default/web".to_string(),
                    Verdict::Suspect,
                    Reason::Unmanaged
                ),
                (
                    "csi_volume/default/data".to_string(),
                    Verdict::Create,
                    Reason::New
                ),
                (
                    "bucket/media".to_string(),
                    Verdict::NotManaged,
                    Reason::InSync
                ),
            ]
        );
    }

    #[test]
    fn triage_uses_each_resources_own_marker() {
        let desired = app(vec![job("web"), volume("data")]);
        let web = &desired.resources[0];
        let data = &desired.resources[1];
        let markers = BTreeMap::from([
            (
                web.id.clone(),
                AppliedMarker {
                    spec_hash: web.spec_hash(),
                    live_index: 7,
                    revision: "r1".into(),
                },
            ),
            (
                data.id.clone(),
                AppliedMarker {
                    spec_hash: "an older spec".into(),
                    live_index: 0,
                    revision: "r1".into(),
                },
            ),
        ]);
        let got = triage(
            &desired,
            &live(&["web"], &["data"]),
            &markers,
            &Owned::default(),
        );
        assert_eq!(
            verdicts(&got),
            [
                (
                    "nomad_job/default/web".to_string(),
                    Verdict::Unchanged,
                    Reason::InSync
                ),
                (
                    "csi_volume/default/data".to_string(),
                    Verdict::Suspect,
                    Reason::GitChanged
                ),
            ]
        );
    }

    #[test]
    fn triage_deletes_only_owned_live_resources_that_left_git_and_are_not_protected() {
        let desired = app(vec![job("web")]);
        let owned = Owned {
            resources: vec![
                // Still desired: triaged once, as desired.
                job_id("web"),
                // Left Git and live: deleted.
                job_id("old"),
                volume_id("scratch"),
                // Left Git but already gone from the cluster: nothing to delete.
                job_id("gone"),
                volume_id("gone"),
                // Protected (`prevent_destroy`): never deleted.
                volume_id("data"),
                // A kind this version does not prune.
                id(ResourceKind::VaultSecret, "nomad", "default/media"),
            ],
            protected: vec![volume_id("data")],
        };
        let got = triage(
            &desired,
            &live(&["web", "old"], &["scratch", "data"]),
            &BTreeMap::new(),
            &owned,
        );
        assert_eq!(
            verdicts(&got),
            [
                (
                    "nomad_job/default/web".to_string(),
                    Verdict::Suspect,
                    Reason::Unmanaged
                ),
                (
                    "nomad_job/default/old".to_string(),
                    Verdict::Delete,
                    Reason::RemovedFromGit
                ),
                (
                    "csi_volume/default/scratch".to_string(),
                    Verdict::Delete,
                    Reason::RemovedFromGit
                ),
            ]
        );
    }

    #[test]
    fn triage_plans_config_entries_and_deletes_owned_ones_that_left_git_only_when_listed() {
        let entry_id = |name: &str| id(ResourceKind::ConsulConfigEntry, "service-defaults", name);
        let web = Resource {
            id: entry_id("web"),
            spec: ResourceSpec::ConsulConfigEntry(crate::desired::ConfigEntrySpec {
                kind: "service-defaults".into(),
                name: "web".into(),
                body: serde_json::json!({"Kind": "service-defaults", "Name": "web"}),
            }),
            origin: origin(),
        };
        let mut snapshot = live(&[], &[]);
        snapshot.config_entries.insert(
            ("service-defaults".into(), "old".into()),
            crate::providers::consul::ConfigEntry(
                serde_json::json!({"Kind": "service-defaults", "Name": "old", "ModifyIndex": 4}),
            ),
        );
        let owned = Owned {
            resources: vec![entry_id("old"), entry_id("gone")],
            protected: Vec::new(),
        };
        let got = triage(&app(vec![web]), &snapshot, &BTreeMap::new(), &owned);
        assert_eq!(
            verdicts(&got),
            [
                (
                    "consul_config_entry/service-defaults/web".to_string(),
                    Verdict::Create,
                    Reason::New
                ),
                (
                    "consul_config_entry/service-defaults/old".to_string(),
                    Verdict::Delete,
                    Reason::RemovedFromGit
                ),
            ]
        );
    }

    #[test]
    fn triage_plans_buckets_with_an_s3_client_and_deletes_owned_ones_that_left_git_only_when_they_exist()
     {
        let bucket_id = |name: &str| id(ResourceKind::Bucket, "", name);
        let mut snapshot = live(&[], &[]);
        snapshot.s3_configured = true;
        snapshot
            .buckets
            .insert("old".into(), Some(Default::default()));
        snapshot.buckets.insert("gone".into(), None);
        let owned = Owned {
            resources: vec![bucket_id("old"), bucket_id("gone"), bucket_id("unread")],
            protected: Vec::new(),
        };
        let got = triage(
            &app(vec![bucket("media")]),
            &snapshot,
            &BTreeMap::new(),
            &owned,
        );
        assert_eq!(
            verdicts(&got),
            [
                ("bucket/media".to_string(), Verdict::Create, Reason::New),
                (
                    "bucket/old".to_string(),
                    Verdict::Delete,
                    Reason::RemovedFromGit
                ),
            ]
        );
        // A protected bucket (`prevent_destroy` when it left Git) is never deleted.
        let protected = Owned {
            protected: vec![bucket_id("old")],
            ..owned
        };
        let got = triage(&app(Vec::new()), &snapshot, &BTreeMap::new(), &protected);
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn triage_never_deletes_what_the_app_does_not_own() {
        let got = triage(
            &app(Vec::new()),
            &live(&["web"], &["data"]),
            &BTreeMap::new(),
            &Owned::default(),
        );
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn csi_secrets_in_a_plan_never_print_or_serialize() {
        let mut spec = match volume("data").spec {
            ResourceSpec::CsiVolume(spec) => spec,
            other => panic!("{other:?}"),
        };
        spec.secrets.insert(
            "password".into(),
            crate::desired::SecretString("hunter2".into()),
        );
        let payload = Payload::CsiVolume {
            volume: crate::telemetry::Redacted(Box::new(csi_volume::request_body(&spec))),
            register: false,
            plugin_id: "glusterfs".into(),
        };
        assert!(!format!("{payload:?}").contains("hunter2"));
        let json = serde_json::to_string(&payload).unwrap_or_default();
        assert!(!json.contains("hunter2"), "{json}");
    }
}
