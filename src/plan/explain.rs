//! Step 2 of planning: the server's verdict for creations and suspects, turned into [`Plan`]
//! steps. Each kind asks in its own file (`nomad_job::explain`: Nomad parse + plan;
//! `csi_volume::explain`: a volume read); this file orders the steps.

use super::{
    Change, Payload, Plan, Step, Triage, Verdict, bucket, consul_config_entry, csi_volume,
    nomad_job, order, render,
};
use crate::desired::{App, ResourceId, ResourceSpec};
use crate::live::LiveSnapshot;
use crate::providers::nomad::{NomadClient, NomadError};

/// Planning one app failed; the app reports it and the others go on.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Nomad rejected the jobspec (`Failed to parse job: …`), mapped to the user's file.
    #[error("{message}")]
    Parse {
        /// The user's jobspec path.
        file: String,
        /// Nomad's diagnostics with `input.hcl:L,C-C` replaced by `file:L:C`.
        message: String,
    },
    /// A JSON jobspec is not JSON.
    #[error("{file}: invalid JSON jobspec: {message}")]
    Json {
        /// The jobspec path.
        file: String,
        /// The decoder message.
        message: String,
    },
    /// A Nomad call failed while planning a resource.
    #[error("planning {resource}")]
    Nomad {
        /// The resource being planned.
        resource: ResourceId,
        /// The call's error.
        #[source]
        source: NomadError,
    },
    /// The resources depend on each other in a cycle.
    #[error(transparent)]
    Cycle(#[from] order::CycleError),
}

impl PlanError {
    /// Worth retrying later without a Git change.
    pub fn is_transient(&self) -> bool {
        matches!(self, PlanError::Nomad { source, .. } if source.is_transient())
    }
}

/// Ask the server about every triaged resource that needs it and build the plan.
pub async fn explain(
    nomad: &NomadClient,
    live: &LiveSnapshot,
    app: &App,
    revision: &str,
    triage: &[Triage],
    edges: &[(ResourceId, ResourceId)],
    style: render::Style<'_>,
) -> Result<Plan, PlanError> {
    let ids: Vec<ResourceId> = triage.iter().map(|t| t.id.clone()).collect();
    let order = order::order(&ids, &app.explicit_waves, edges)?;
    let mut steps = Vec::new();
    for t in triage {
        let resource = app.resources.iter().find(|r| r.id == t.id);
        let spec_hash = resource.map(|r| r.spec_hash()).unwrap_or_default();
        let wave = order.waves.get(&t.id).copied().unwrap_or_default();
        let after = match t.verdict {
            // Deleted in reverse: after the deletions of whatever depends on it.
            Verdict::Delete => triage
                .iter()
                .filter(|d| d.verdict == Verdict::Delete)
                .filter(|d| {
                    order
                        .dependencies
                        .get(&d.id)
                        .is_some_and(|deps| deps.contains(&t.id))
                })
                .map(|d| d.id.clone())
                .collect(),
            _ => order.dependencies.get(&t.id).cloned().unwrap_or_default(),
        };
        let (change, payload) = match (t.verdict, resource) {
            (Verdict::Unchanged, _) => (Change::Unchanged, Payload::None),
            (Verdict::NotManaged, _) => (Change::NotManaged, Payload::None),
            (Verdict::Delete, _) => (Change::Delete, Payload::Delete),
            (Verdict::Create | Verdict::Suspect, Some(resource)) => match &resource.spec {
                ResourceSpec::NomadJob(spec) => {
                    nomad_job::explain(nomad, &app.name, &t.id, spec, style).await?
                }
                ResourceSpec::CsiVolume(spec) => {
                    csi_volume::explain(nomad, &t.id, t.verdict, t.reason, spec).await?
                }
                ResourceSpec::ConsulConfigEntry(spec) => consul_config_entry::explain(
                    &app.name,
                    &t.id,
                    spec,
                    live.config_entry(&t.id.scope, &t.id.name),
                    style.redaction,
                ),
                ResourceSpec::Bucket(spec) => bucket::explain(
                    &app.name,
                    &t.id,
                    spec,
                    live.bucket(&t.id.name).flatten(),
                    t.reason,
                    style.redaction,
                ),
                _ => (Change::NotManaged, Payload::None),
            },
            (Verdict::Create | Verdict::Suspect, None) => (Change::Unchanged, Payload::None),
        };
        steps.push(Step {
            id: t.id.clone(),
            wave,
            change,
            reason: t.reason,
            payload,
            spec_hash,
            after,
        });
    }
    // Deletions go last, in reverse wave order (jobs before the volumes they mount).
    steps.sort_by_key(|s| match s.change {
        Change::Delete => (u32::MAX, u32::MAX - s.wave),
        _ => (s.wave, 0),
    });
    Ok(Plan {
        app: app.name.clone(),
        revision: revision.to_string(),
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::desired::{JobFormat, NomadJobSpec, Resource, ResourceKind, VolumeMode};
    use crate::plan::tests::{app, volume, volume_id};
    use crate::plan::{Reason, Triage};
    use crate::providers::nomad::{NomadConfig, RegisterOptions};
    use drover_devstack::faults::FaultSpec;
    use drover_devstack::{Devstack, DevstackConfig};
    use serde_json::json;

    const FILE: &str = "apps/a/web.nomad.hcl";

    fn web(image: &str) -> Resource {
        Resource {
            id: ResourceId {
                kind: ResourceKind::NomadJob,
                scope: "default".into(),
                name: "web".into(),
            },
            spec: ResourceSpec::NomadJob(NomadJobSpec {
                file: FILE.into(),
                format: JobFormat::Hcl2,
                source: format!(
                    "job \"web\" {{\n  type = \"batch\"\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"docker\"\n      config {{\n        image = \"{image}\"\n      }}\n    }}\n  }}\n}}\n"
                ),
                variables: String::new(),
                job_id: "web".into(),
            }),
            origin: crate::desired::Origin {
                file: "apps/a/app.yaml".into(),
                line: 1,
            },
        }
    }

    fn with_source(mut resource: Resource, format: JobFormat, source: &str) -> Resource {
        if let ResourceSpec::NomadJob(spec) = &mut resource.spec {
            spec.format = format;
            spec.source = source.into();
        }
        resource
    }

    fn triaged(id: &ResourceId, verdict: Verdict, reason: Reason) -> Triage {
        Triage {
            id: id.clone(),
            verdict,
            reason,
        }
    }

    async fn devstack() -> (Devstack, NomadClient) {
        let seed = drover_devstack::seed::Seed::from_yaml("csi_plugins:\n  - {id: glusterfs}\n")
            .expect("seed");
        let stack = Devstack::start(DevstackConfig {
            time_scale: 0.01,
            seed: Some(seed),
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
        (stack, nomad)
    }

    async fn plan_of(nomad: &NomadClient, app: &App, triage: &[Triage]) -> Result<Plan, PlanError> {
        plan_with_edges(nomad, app, triage, &[]).await
    }

    async fn plan_with_edges(
        nomad: &NomadClient,
        app: &App,
        triage: &[Triage],
        edges: &[(ResourceId, ResourceId)],
    ) -> Result<Plan, PlanError> {
        let redaction = render::Redaction::default();
        let style = render::Style {
            colour: false,
            redaction: &redaction,
        };
        explain(
            nomad,
            &LiveSnapshot::default(),
            app,
            "rev-1",
            triage,
            edges,
            style,
        )
        .await
    }

    fn fault(path: &str, status: u16) -> FaultSpec {
        serde_json::from_value(json!({
            "system": "nomad", "path": path, "kind": "error", "status": status, "body": "injected"
        }))
        .expect("fault")
    }

    #[tokio::test]
    async fn jobs_are_created_updated_or_confirmed_by_the_servers_plan() {
        let (stack, nomad) = devstack().await;
        let desired = app(vec![web("busybox:1")]);
        let id = desired.resources[0].id.clone();

        let plan = plan_of(
            &nomad,
            &desired,
            &[triaged(&id, Verdict::Create, Reason::New)],
        )
        .await
        .expect("plan");
        assert_eq!(plan.app, "a");
        assert_eq!(plan.revision, "rev-1");
        let [step] = plan.steps.as_slice() else {
            panic!("{plan:?}");
        };
        assert_eq!(step.reason, Reason::New);
        assert_eq!(step.spec_hash, desired.resources[0].spec_hash());
        assert!(
            matches!(&step.change, Change::Create { diff } if diff.contains("busybox:1")),
            "{step:?}"
        );
        let Payload::NomadJob {
            job,
            enforce_index: 0,
            preserve_counts: false,
            format,
            ..
        } = &step.payload
        else {
            panic!("{step:?}");
        };
        assert_eq!(format, "hcl2");
        assert_eq!(job["Meta"][nomad_job::OWNER_META_KEY], "a");
        let registered = nomad
            .register_job(job, &RegisterOptions::default())
            .await
            .expect("register");

        // Suspected, but the server sees no difference: confirm at the live index.
        let plan = plan_of(
            &nomad,
            &desired,
            &[triaged(&id, Verdict::Suspect, Reason::LiveChanged)],
        )
        .await
        .expect("plan");
        assert_eq!(plan.steps[0].change, Change::Unchanged);
        assert_eq!(
            plan.steps[0].payload,
            Payload::Confirm {
                live_index: registered.job_modify_index
            }
        );

        // Git changed the image: an update, compare-and-set at the index the plan saw.
        let changed = app(vec![web("busybox:2")]);
        let plan = plan_of(
            &nomad,
            &changed,
            &[triaged(&id, Verdict::Suspect, Reason::GitChanged)],
        )
        .await
        .expect("plan");
        let step = &plan.steps[0];
        assert!(
            matches!(&step.change, Change::Update { diff } if diff.contains("busybox:2")),
            "{step:?}"
        );
        assert!(
            matches!(&step.payload, Payload::NomadJob { enforce_index, .. } if *enforce_index == registered.job_modify_index),
            "{step:?}"
        );
        stack.shutdown().await;
    }

    #[tokio::test]
    async fn volumes_are_created_updated_or_confirmed_against_the_live_volume() {
        let (stack, nomad) = devstack().await;
        let desired = app(vec![volume("data")]);
        let id = volume_id("data");

        let plan = plan_of(
            &nomad,
            &desired,
            &[triaged(&id, Verdict::Create, Reason::New)],
        )
        .await
        .expect("plan");
        assert_eq!(
            plan.steps[0].change,
            Change::Create {
                diff: "+ CSI Volume: \"data\" (plugin \"glusterfs\")\n".into()
            }
        );
        assert!(
            matches!(&plan.steps[0].payload, Payload::CsiVolume { register: false, plugin_id, .. } if plugin_id == "glusterfs"),
            "{plan:?}"
        );
        // Suspected but gone from the cluster: created again.
        let plan = plan_of(
            &nomad,
            &desired,
            &[triaged(&id, Verdict::Suspect, Reason::Missing)],
        )
        .await
        .expect("plan");
        assert_eq!(
            plan.steps[0].change,
            Change::Create {
                diff: "+ CSI Volume: \"data\"\n".into()
            }
        );

        let ResourceSpec::CsiVolume(spec) = &desired.resources[0].spec else {
            panic!("a volume");
        };
        nomad
            .put_csi_volume("default", &csi_volume::request_body(spec), false)
            .await
            .expect("create volume");
        // Not drover's yet (adopted): nothing differs, confirmed.
        let plan = plan_of(
            &nomad,
            &desired,
            &[triaged(&id, Verdict::Suspect, Reason::Unmanaged)],
        )
        .await
        .expect("plan");
        assert_eq!(plan.steps[0].change, Change::Unchanged);
        assert_eq!(plan.steps[0].payload, Payload::Confirm { live_index: 0 });
        // Changed in Git where the live volume cannot show it (its secrets): re-sent.
        let plan = plan_of(
            &nomad,
            &desired,
            &[triaged(&id, Verdict::Suspect, Reason::GitChanged)],
        )
        .await
        .expect("plan");
        assert_eq!(
            plan.steps[0].change,
            Change::Update {
                diff: format!("+/- CSI Volume: \"data\"\n{}\n", csi_volume::UNSEEN_CHANGE)
            }
        );
        assert!(
            matches!(&plan.steps[0].payload, Payload::CsiVolume { .. }),
            "{plan:?}"
        );

        let mut changed = desired.clone();
        if let ResourceSpec::CsiVolume(spec) = &mut changed.resources[0].spec {
            spec.parameters.insert("share".into(), "other".into());
            spec.mode = VolumeMode::Register;
        }
        let plan = plan_of(
            &nomad,
            &changed,
            &[triaged(&id, Verdict::Suspect, Reason::GitChanged)],
        )
        .await
        .expect("plan");
        assert!(
            matches!(&plan.steps[0].change, Change::Update { diff } if diff.starts_with("+/- CSI Volume: \"data\"\n") && diff.contains("share")),
            "{plan:?}"
        );
        assert!(
            matches!(
                &plan.steps[0].payload,
                Payload::CsiVolume { register: true, .. }
            ),
            "{plan:?}"
        );
        stack.shutdown().await;
    }

    #[tokio::test]
    async fn deletions_go_last_in_reverse_order_each_after_the_deletions_of_its_dependents() {
        // No server call: unchanged and deleted resources need none.
        let nomad = NomadClient::new(NomadConfig::default()).expect("client");
        let desired = app(vec![volume("data")]);
        let gone_job = ResourceId {
            kind: ResourceKind::NomadJob,
            scope: "default".into(),
            name: "old".into(),
        };
        let triage = [
            triaged(
                &volume_id("scratch"),
                Verdict::Delete,
                Reason::RemovedFromGit,
            ),
            triaged(&volume_id("spare"), Verdict::Delete, Reason::RemovedFromGit),
            triaged(&gone_job, Verdict::Delete, Reason::RemovedFromGit),
            triaged(&volume_id("data"), Verdict::Unchanged, Reason::InSync),
        ];
        // As last declared: the old job mounted scratch (and data, which stays).
        let edges = [
            (gone_job.clone(), volume_id("scratch")),
            (gone_job.clone(), volume_id("data")),
        ];
        let plan = plan_with_edges(&nomad, &desired, &triage, &edges)
            .await
            .expect("plan");
        let steps: Vec<(String, u32, &str, String, Vec<ResourceId>)> = plan
            .steps
            .iter()
            .map(|s| {
                (
                    s.id.to_string(),
                    s.wave,
                    s.change.verb(),
                    s.spec_hash.clone(),
                    s.after.clone(),
                )
            })
            .collect();
        assert_eq!(
            steps,
            [
                (
                    "csi_volume/default/data".to_string(),
                    0,
                    "unchanged",
                    desired.resources[0].spec_hash(),
                    // The old job is deleted, not applied: nothing to wait for.
                    Vec::new()
                ),
                (
                    "nomad_job/default/old".to_string(),
                    1,
                    "delete",
                    String::new(),
                    vec![]
                ),
                (
                    "csi_volume/default/scratch".to_string(),
                    0,
                    "delete",
                    String::new(),
                    vec![gone_job.clone()]
                ),
                (
                    "csi_volume/default/spare".to_string(),
                    0,
                    "delete",
                    String::new(),
                    vec![]
                ),
            ]
        );
        assert!(plan.steps[1..].iter().all(|s| s.payload == Payload::Delete));
    }

    #[tokio::test]
    async fn resources_listed_in_reverse_are_planned_in_dependency_order_with_their_dependencies() {
        let nomad = NomadClient::new(NomadConfig::default()).expect("client");
        let mut desired = app(vec![volume("late"), volume("data"), volume("first")]);
        desired.explicit_waves.insert(volume_id("first"), 0);
        desired.explicit_waves.insert(volume_id("late"), 4);
        let triage: Vec<Triage> = desired
            .resources
            .iter()
            .map(|r| triaged(&r.id, Verdict::Unchanged, Reason::InSync))
            .collect();
        let mut edges = order::wave_edges(&desired.explicit_waves);
        edges.push((volume_id("late"), volume_id("data")));
        let plan = plan_with_edges(&nomad, &desired, &triage, &edges)
            .await
            .expect("plan");
        let steps: Vec<(String, u32, Vec<ResourceId>)> = plan
            .steps
            .iter()
            .map(|s| (s.id.name.clone(), s.wave, s.after.clone()))
            .collect();
        assert_eq!(
            steps,
            [
                ("data".to_string(), 0, vec![]),
                ("first".to_string(), 0, vec![]),
                (
                    "late".to_string(),
                    4,
                    vec![volume_id("first"), volume_id("data")]
                ),
            ]
        );

        edges.push((volume_id("data"), volume_id("late")));
        let err = plan_with_edges(&nomad, &desired, &triage, &edges)
            .await
            .expect_err("a cycle");
        assert!(
            matches!(&err, PlanError::Cycle(cycle) if cycle.0.len() == 3),
            "{err:?}"
        );
        assert!(!err.is_transient());
    }

    #[tokio::test]
    async fn bad_jobspecs_point_at_the_file_and_server_failures_say_whether_to_retry() {
        let (stack, nomad) = devstack().await;
        let id = web("x").id;
        let create = [triaged(&id, Verdict::Create, Reason::New)];

        let broken = app(vec![with_source(
            web("x"),
            JobFormat::Hcl2,
            "job \"web\" {\n  group {\n",
        )]);
        let err = plan_of(&nomad, &broken, &create)
            .await
            .expect_err("parse error");
        assert!(
            matches!(&err, PlanError::Parse { file, message } if file == FILE && message.contains(&format!("{FILE}:")) && !message.starts_with("Failed to parse job")),
            "{err:?}"
        );
        assert!(!err.is_transient());

        let json = app(vec![with_source(web("x"), JobFormat::Json, "{ not json")]);
        let err = plan_of(&nomad, &json, &create)
            .await
            .expect_err("json error");
        assert!(
            matches!(&err, PlanError::Json { file, .. } if file == FILE),
            "{err:?}"
        );
        assert!(!err.is_transient());

        // A server error while parsing is no parse error of the user's file.
        let faults = &stack.state().faults;
        let armed = faults.add(fault("/v1/jobs/parse", 503)).expect("fault");
        let err = plan_of(&nomad, &app(vec![web("x")]), &create)
            .await
            .expect_err("unavailable");
        assert!(
            matches!(&err, PlanError::Nomad { resource, .. } if *resource == id),
            "{err:?}"
        );
        assert!(err.is_transient());
        faults.remove(&armed);

        faults.add(fault("/v1/job/web/plan", 403)).expect("fault");
        let err = plan_of(&nomad, &app(vec![web("x")]), &create)
            .await
            .expect_err("forbidden");
        assert!(matches!(&err, PlanError::Nomad { .. }), "{err:?}");
        assert!(!err.is_transient());
        stack.shutdown().await;
    }

    fn scaled_web(count: u32, image: &str) -> Resource {
        let source = format!(
            "job \"web\" {{\n  group \"g\" {{\n    count = {count}\n    scaling {{\n      min = 1\n      max = 9\n    }}\n    task \"t\" {{\n      driver = \"docker\"\n      config {{\n        image = \"{image}\"\n      }}\n    }}\n  }}\n}}\n"
        );
        with_source(web(image), JobFormat::Hcl2, &source)
    }

    #[tokio::test]
    async fn a_scaling_groups_live_count_is_kept_and_is_no_change_alone() {
        let (stack, nomad) = devstack().await;
        let id = web("x").id;
        let suspect = [triaged(&id, Verdict::Suspect, Reason::LiveChanged)];
        // Live: scaled to 3 (by an autoscaler or `nomad job scale`).
        let live = app(vec![scaled_web(3, "busybox:1")]);
        let created = plan_of(&nomad, &live, &[triaged(&id, Verdict::Create, Reason::New)])
            .await
            .expect("plan");
        let Payload::NomadJob { job, .. } = &created.steps[0].payload else {
            panic!("{created:?}");
        };
        nomad
            .register_job(job, &RegisterOptions::default())
            .await
            .expect("register");

        // Git still says 1: only the count differs, which is not a change.
        let plan = plan_of(&nomad, &app(vec![scaled_web(1, "busybox:1")]), &suspect)
            .await
            .expect("plan");
        assert_eq!(plan.steps[0].change, Change::Unchanged, "{plan:?}");
        assert!(matches!(plan.steps[0].payload, Payload::Confirm { .. }));

        // Git changes the image too: an update at the live count, registered with PreserveCounts.
        let plan = plan_of(&nomad, &app(vec![scaled_web(1, "busybox:2")]), &suspect)
            .await
            .expect("plan");
        let step = &plan.steps[0];
        let Change::Update { diff } = &step.change else {
            panic!("{step:?}");
        };
        assert!(
            diff.contains("busybox:2") && !diff.contains("Count"),
            "{diff}"
        );
        let Payload::NomadJob {
            job,
            preserve_counts: true,
            ..
        } = &step.payload
        else {
            panic!("{step:?}");
        };
        assert_eq!(job["TaskGroups"][0]["Count"], 3);
        stack.shutdown().await;
    }
}
