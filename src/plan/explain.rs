//! Step 2 of planning: the server's verdict for creations and suspects (Nomad parse + plan for
//! jobs, a volume read for CSI volumes), turned into [`Plan`] steps.

use super::{Change, Payload, Plan, Step, Triage, Verdict, csi_volume, nomad_job, order, render};
use crate::desired::{App, JobFormat, ResourceId, ResourceSpec, VolumeMode};
use crate::providers::nomad::types::DiffType;
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
    app: &App,
    revision: &str,
    triage: &[Triage],
    edges: &[(ResourceId, ResourceId)],
    style: render::Style<'_>,
) -> Result<Plan, PlanError> {
    let waves = order::waves(app, edges)?;
    let max_wave = waves.values().copied().max().unwrap_or(0);
    let mut steps = Vec::new();
    for t in triage {
        let resource = app.resources.iter().find(|r| r.id == t.id);
        let spec_hash = resource.map(|r| r.spec_hash()).unwrap_or_default();
        let wave = waves.get(&t.id).copied().unwrap_or(max_wave + 1);
        let (change, payload) = match (t.verdict, resource) {
            (Verdict::Unchanged, _) => (Change::Unchanged, Payload::None),
            (Verdict::NotManaged, _) => (Change::NotManaged, Payload::None),
            (Verdict::Delete, _) => (Change::Delete, Payload::Delete),
            (Verdict::Create | Verdict::Suspect, Some(resource)) => match &resource.spec {
                ResourceSpec::NomadJob(spec) => {
                    let job = match spec.format {
                        JobFormat::Hcl2 => nomad
                            .parse_job(&spec.source, Some(&spec.variables), false)
                            .await
                            .map_err(|e| parse_error(&spec.file, &t.id, e))?,
                        JobFormat::Json => {
                            nomad_job::json_job(&spec.source).map_err(|message| {
                                PlanError::Json {
                                    file: spec.file.clone(),
                                    message,
                                }
                            })?
                        }
                    };
                    let mut job = nomad_job::prepare(job, &t.id, &app.name);
                    let plan = |job: &serde_json::Value| {
                        let job = job.clone();
                        async move {
                            nomad
                                .plan_job(&job)
                                .await
                                .map_err(|source| PlanError::Nomad {
                                    resource: t.id.clone(),
                                    source,
                                })
                        }
                    };
                    let mut planned = plan(&job).await?;
                    // A scaling group keeps its live count (DESIGN rule 8): a plan of the Git
                    // count would show `Count: "3" => "1"` after every scale. The live counts
                    // come from that diff; only when something else changed too is the job
                    // planned again with them, for the true diff.
                    let scaling = nomad_job::scaling_groups(&job);
                    let mut count_only = false;
                    if let Some(diff) = planned.diff.as_ref() {
                        let live_counts = nomad_job::live_scaling_counts(diff, &scaling);
                        if !live_counts.is_empty() {
                            nomad_job::set_counts(&mut job, &live_counts);
                            count_only = nomad_job::only_counts_differ(diff, &live_counts);
                            if !count_only {
                                planned = plan(&job).await?;
                            }
                        }
                    }
                    let unchanged = count_only
                        || planned
                            .diff
                            .as_ref()
                            .is_some_and(|d| d.diff_type == DiffType::None);
                    // "Missing" in a stale cache but unchanged on the server: it exists (drover
                    // registered it a moment ago). Registering again would only add an evaluation.
                    if unchanged {
                        (
                            Change::Unchanged,
                            Payload::Confirm {
                                live_index: planned.job_modify_index,
                            },
                        )
                    } else {
                        let diff = planned
                            .diff
                            .as_ref()
                            .map(|d| render::job_diff(d, style))
                            .unwrap_or_default();
                        let change = if planned.job_modify_index == 0 {
                            Change::Create { diff }
                        } else {
                            Change::Update { diff }
                        };
                        let preserve_counts = !scaling.is_empty()
                            && !planned
                                .diff
                                .as_ref()
                                .is_some_and(nomad_job::changes_a_count);
                        (
                            change,
                            Payload::NomadJob {
                                job,
                                enforce_index: planned.job_modify_index,
                                preserve_counts,
                                source: spec.source.clone(),
                                format: nomad_job::submission_format(spec).to_string(),
                                variables: spec.variables.clone(),
                            },
                        )
                    }
                }
                ResourceSpec::CsiVolume(spec) => {
                    let volume = csi_volume::request_body(spec);
                    let payload = Payload::CsiVolume {
                        volume: crate::telemetry::Redacted(Box::new(volume)),
                        register: spec.mode == VolumeMode::Register,
                        plugin_id: spec.plugin_id.clone(),
                    };
                    if t.verdict == Verdict::Create {
                        let diff = format!(
                            "+ CSI Volume: \"{}\" (plugin \"{}\")\n",
                            spec.id, spec.plugin_id
                        );
                        (Change::Create { diff }, payload)
                    } else {
                        let live = nomad
                            .read_csi_volume(&t.id.scope, &t.id.name)
                            .await
                            .map_err(|source| PlanError::Nomad {
                                resource: t.id.clone(),
                                source,
                            })?;
                        match live {
                            None => (
                                Change::Create {
                                    diff: format!("+ CSI Volume: \"{}\"\n", spec.id),
                                },
                                payload,
                            ),
                            Some(live) => {
                                let lines = csi_volume::diff_against_live(spec, &live);
                                if lines.is_empty() {
                                    (Change::Unchanged, Payload::Confirm { live_index: 0 })
                                } else {
                                    let diff = format!(
                                        "+/- CSI Volume: \"{}\"\n{}\n",
                                        spec.id,
                                        lines.join("\n")
                                    );
                                    (Change::Update { diff }, payload)
                                }
                            }
                        }
                    }
                }
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
        });
    }
    // Deletions go last, in reverse dependency order (jobs before the volumes they mount).
    steps.sort_by_key(|s| match s.change {
        Change::Delete => (u32::MAX, u32::MAX - delete_rank(&s.id)),
        _ => (s.wave, 0),
    });
    Ok(Plan {
        app: app.name.clone(),
        revision: revision.to_string(),
        steps,
    })
}

fn delete_rank(id: &ResourceId) -> u32 {
    match id.kind {
        crate::desired::ResourceKind::NomadJob => 1,
        _ => 0,
    }
}

/// Map Nomad's `Failed to parse job: input.hcl:12,5-9: …` onto the user's file.
fn parse_error(file: &str, id: &ResourceId, error: NomadError) -> PlanError {
    match error.body() {
        Some(body) if error.status() == Some(400) => {
            let text = body.strip_prefix("Failed to parse job: ").unwrap_or(body);
            let message = relocate_diagnostics(text, file);
            PlanError::Parse {
                file: file.to_string(),
                message,
            }
        }
        _ => PlanError::Nomad {
            resource: id.clone(),
            source: error,
        },
    }
}

/// `input.hcl:12,5-9: msg` → `apps/web/job.nomad.hcl:12:5: msg` (Nomad parses under the name
/// `input.hcl`; the user needs their own file and line).
pub(crate) fn relocate_diagnostics(text: &str, file: &str) -> String {
    static LOCATION: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"input\.hcl:(\d+),(\d+)(?:-\d+)?").ok());
    match LOCATION.as_ref() {
        Some(re) => re
            .replace_all(text, |c: &regex::Captures| {
                format!("{file}:{}:{}", &c[1], &c[2])
            })
            .replace("input.hcl", file),
        None => text.replace("input.hcl", file),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nomad_parse_diagnostics_point_at_the_users_file() {
        let text = "input.hcl:12,5-9: Unsupported argument; An argument named \"foo\" is not expected here.";
        assert_eq!(
            relocate_diagnostics(text, "apps/web/job.nomad.hcl"),
            "apps/web/job.nomad.hcl:12:5: Unsupported argument; An argument named \"foo\" is not expected here."
        );
    }

    use crate::desired::{JobFormat, NomadJobSpec, Resource, ResourceKind};
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
        let redaction = render::Redaction::default();
        let style = render::Style {
            colour: false,
            redaction: &redaction,
        };
        explain(nomad, app, "rev-1", triage, &[], style).await
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
        let plan = plan_of(
            &nomad,
            &desired,
            &[triaged(&id, Verdict::Suspect, Reason::GitChanged)],
        )
        .await
        .expect("plan");
        assert_eq!(plan.steps[0].change, Change::Unchanged);
        assert_eq!(plan.steps[0].payload, Payload::Confirm { live_index: 0 });

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
    async fn deletions_go_last_jobs_before_volumes_in_a_wave_after_every_desired_one() {
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
            triaged(&gone_job, Verdict::Delete, Reason::RemovedFromGit),
            triaged(&volume_id("data"), Verdict::Unchanged, Reason::InSync),
        ];
        let plan = plan_of(&nomad, &desired, &triage).await.expect("plan");
        let steps: Vec<(String, u32, &str, String)> = plan
            .steps
            .iter()
            .map(|s| {
                (
                    s.id.to_string(),
                    s.wave,
                    s.change.verb(),
                    s.spec_hash.clone(),
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
                    desired.resources[0].spec_hash()
                ),
                (
                    "nomad_job/default/old".to_string(),
                    1,
                    "delete",
                    String::new()
                ),
                (
                    "csi_volume/default/scratch".to_string(),
                    1,
                    "delete",
                    String::new()
                ),
            ]
        );
        assert!(plan.steps[1..].iter().all(|s| s.payload == Payload::Delete));
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
