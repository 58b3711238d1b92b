//! Planning a `nomad_job`: triage by indexes, then Nomad's own parse and plan endpoints decide.

use serde_json::Value;

use super::{AppliedMarker, Change, Payload, PlanError, Reason, Verdict, render};
use crate::desired::{JobFormat, NomadJobSpec, ResourceId};
use crate::live::LiveSnapshot;
use crate::providers::nomad::types::{DiffType, FieldDiff, JobDiff, ObjectDiff};
use crate::providers::nomad::{NomadClient, NomadError, job_body};

/// Job meta key marking the app that owns a job (DESIGN rule 4).
pub const OWNER_META_KEY: &str = "drover.app";

/// Cheap triage from the list stub and the marker; no server calls.
pub fn triage(
    id: &ResourceId,
    spec_hash: &str,
    live: &LiveSnapshot,
    marker: Option<&AppliedMarker>,
) -> (Verdict, Reason) {
    match (live.job(&id.scope, &id.name), marker) {
        (None, None) => (Verdict::Create, Reason::New),
        (None, Some(_)) => (Verdict::Create, Reason::Missing),
        (Some(_), None) => (Verdict::Suspect, Reason::Unmanaged),
        (Some(stub), Some(marker)) => {
            if marker.spec_hash != spec_hash {
                (Verdict::Suspect, Reason::GitChanged)
            } else if stub.stop {
                (Verdict::Suspect, Reason::Stopped)
            } else if stub.job_modify_index > marker.live_index {
                // Only a newer index is drift: an older one is a cache that has not yet seen
                // drover's own write.
                (Verdict::Suspect, Reason::LiveChanged)
            } else {
                (Verdict::Unchanged, Reason::InSync)
            }
        }
    }
}

/// The JSON job inside a JSON jobspec (`{"Job": {...}}` or a bare job).
pub fn json_job(source: &str) -> Result<Value, String> {
    job_body::from_json_jobspec(source).map_err(|e| e.to_string())
}

/// Make a parsed job drover's: namespace from the resource ID, the owner meta set.
pub fn prepare(mut job: Value, id: &ResourceId, app: &str) -> Value {
    job_body::set_namespace(&mut job, &id.scope);
    job_body::set_meta(&mut job, OWNER_META_KEY, app);
    job
}

/// The submission format name Nomad records.
pub fn submission_format(spec: &NomadJobSpec) -> &'static str {
    match spec.format {
        JobFormat::Hcl2 => "hcl2",
        JobFormat::Json => "json",
    }
}

/// Names of the job's groups with a `scaling` block: their count belongs to the autoscaler (or
/// `nomad job scale`), not to Git (DESIGN rule 8).
pub fn scaling_groups(job: &Value) -> Vec<String> {
    job_body::view(job)
        .map(|job| job.task_groups)
        .unwrap_or_default()
        .into_iter()
        .filter(|g| g.scaling.is_some() && !g.name.is_empty())
        .map(|g| g.name)
        .collect()
}

/// The live counts of scaling groups whose count differs from Git, read from a plan diff's
/// `Count: "live" => "git"` edits. Nomad's plan endpoint has no `PreserveCounts`, so this is how
/// drover learns them without another read.
pub fn live_scaling_counts(diff: &JobDiff, scaling: &[String]) -> Vec<(String, u64)> {
    diff.task_groups
        .iter()
        .flatten()
        .filter(|g| g.diff_type == DiffType::Edited && scaling.contains(&g.name))
        .filter_map(|g| {
            g.fields
                .iter()
                .flatten()
                .find(|f| f.name == "Count" && f.diff_type == DiffType::Edited)
                .and_then(|f| f.old.parse().ok())
                .map(|count| (g.name.clone(), count))
        })
        .collect()
}

/// Put `counts` into the job's groups of those names.
pub fn set_counts(job: &mut Value, counts: &[(String, u64)]) {
    job_body::set_group_counts(job, counts);
}

/// Whether the diff changes nothing but the `Count` of the groups named in `counts` (a scale by
/// the autoscaler, which is not drift).
pub fn only_counts_differ(diff: &JobDiff, counts: &[(String, u64)]) -> bool {
    let quiet_fields = |fields: &Option<Vec<FieldDiff>>| {
        fields
            .iter()
            .flatten()
            .all(|f| f.diff_type == DiffType::None)
    };
    let quiet_objects = |objects: &Option<Vec<ObjectDiff>>| {
        objects
            .iter()
            .flatten()
            .all(|o| o.diff_type == DiffType::None)
    };
    quiet_fields(&diff.fields)
        && quiet_objects(&diff.objects)
        && diff.task_groups.iter().flatten().all(|g| {
            if g.diff_type == DiffType::None {
                return true;
            }
            g.diff_type == DiffType::Edited
                && counts.iter().any(|(n, _)| *n == g.name)
                && g.fields
                    .iter()
                    .flatten()
                    .all(|f| f.diff_type == DiffType::None || f.name == "Count")
                && quiet_objects(&g.objects)
                && g.tasks
                    .iter()
                    .flatten()
                    .all(|t| t.diff_type == DiffType::None)
        })
}

/// Whether Git changes the count of an existing group: then `PreserveCounts` must not be sent, since
/// Nomad would keep the live count of *every* group (the scaling groups' live counts are copied in
/// by drover itself).
pub fn changes_a_count(diff: &JobDiff) -> bool {
    diff.task_groups
        .iter()
        .flatten()
        .filter(|g| g.diff_type == DiffType::Edited)
        .any(|g| {
            g.fields
                .iter()
                .flatten()
                .any(|f| f.name == "Count" && f.diff_type == DiffType::Edited)
        })
}

/// Step 2 for a job to create or a suspect: the cluster parses the jobspec and plans it; its diff
/// decides between Create, Update and Unchanged (a confirmation at the live index).
pub(super) async fn explain(
    nomad: &NomadClient,
    app: &str,
    id: &ResourceId,
    spec: &NomadJobSpec,
    style: render::Style<'_>,
) -> Result<(Change, Payload), PlanError> {
    let job = match spec.format {
        JobFormat::Hcl2 => nomad
            .parse_job(&spec.source, Some(&spec.variables), false)
            .await
            .map_err(|e| parse_error(&spec.file, id, e))?,
        JobFormat::Json => json_job(&spec.source).map_err(|message| PlanError::Json {
            file: spec.file.clone(),
            message,
        })?,
    };
    let mut job = prepare(job, id, app);
    let plan = |job: &serde_json::Value| {
        let job = job.clone();
        async move {
            nomad
                .plan_job(&job)
                .await
                .map_err(|source| PlanError::Nomad {
                    resource: id.clone(),
                    source,
                })
        }
    };
    let mut planned = plan(&job).await?;
    // A scaling group keeps its live count (DESIGN rule 8): a plan of the Git
    // count would show `Count: "3" => "1"` after every scale. The live counts
    // come from that diff; only when something else changed too is the job
    // planned again with them, for the true diff.
    let scaling = scaling_groups(&job);
    let mut count_only = false;
    if let Some(diff) = planned.diff.as_ref() {
        let live_counts = live_scaling_counts(diff, &scaling);
        if !live_counts.is_empty() {
            set_counts(&mut job, &live_counts);
            count_only = only_counts_differ(diff, &live_counts);
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
    Ok(if unchanged {
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
        let preserve_counts =
            !scaling.is_empty() && !planned.diff.as_ref().is_some_and(changes_a_count);
        (
            change,
            Payload::NomadJob {
                job,
                enforce_index: planned.job_modify_index,
                preserve_counts,
                source: spec.source.clone(),
                format: submission_format(spec).to_string(),
                variables: spec.variables.clone(),
            },
        )
    })
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
    use crate::desired::ResourceKind;

    #[test]
    fn nomad_parse_diagnostics_point_at_the_users_file() {
        let text = "input.hcl:12,5-9: Unsupported argument; An argument named \"foo\" is not expected here.";
        assert_eq!(
            relocate_diagnostics(text, "apps/web/job.nomad.hcl"),
            "apps/web/job.nomad.hcl:12:5: Unsupported argument; An argument named \"foo\" is not expected here."
        );
    }

    use crate::providers::nomad::types::{JobListStub, TaskDiff, TaskGroupDiff};
    use serde_json::json;

    fn id() -> ResourceId {
        ResourceId {
            kind: ResourceKind::NomadJob,
            scope: "default".into(),
            name: "web".into(),
        }
    }

    fn live_with(stop: bool, jmi: u64) -> LiveSnapshot {
        let mut live = LiveSnapshot::default();
        live.jobs.insert(
            ("default".into(), "web".into()),
            JobListStub {
                id: "web".into(),
                name: "web".into(),
                namespace: "default".into(),
                job_type: "service".into(),
                stop,
                status: "running".into(),
                modify_index: jmi + 3,
                job_modify_index: jmi,
                create_index: 1,
                meta: None,
                summary: None,
            },
        );
        live
    }

    fn marker(hash: &str, idx: u64) -> AppliedMarker {
        AppliedMarker {
            spec_hash: hash.into(),
            live_index: idx,
            revision: "r".into(),
        }
    }

    #[test]
    fn triage_decides_from_hash_and_job_modify_index_only() {
        let empty = LiveSnapshot::default();
        assert_eq!(
            triage(&id(), "h", &empty, None),
            (Verdict::Create, Reason::New)
        );
        assert_eq!(
            triage(&id(), "h", &empty, Some(&marker("h", 5))),
            (Verdict::Create, Reason::Missing)
        );
        // ModifyIndex moved (status churn) but JobModifyIndex did not: unchanged.
        assert_eq!(
            triage(&id(), "h", &live_with(false, 5), Some(&marker("h", 5))),
            (Verdict::Unchanged, Reason::InSync)
        );
        assert_eq!(
            triage(&id(), "h2", &live_with(false, 5), Some(&marker("h", 5))),
            (Verdict::Suspect, Reason::GitChanged)
        );
        assert_eq!(
            triage(&id(), "h", &live_with(false, 9), Some(&marker("h", 5))),
            (Verdict::Suspect, Reason::LiveChanged)
        );
        assert_eq!(
            triage(&id(), "h", &live_with(true, 9), Some(&marker("h", 5))),
            (Verdict::Suspect, Reason::Stopped)
        );
        // The cache has not caught up with drover's own write yet: not drift.
        assert_eq!(
            triage(&id(), "h", &live_with(false, 3), Some(&marker("h", 5))),
            (Verdict::Unchanged, Reason::InSync)
        );
        assert_eq!(
            triage(&id(), "h", &live_with(false, 3), None),
            (Verdict::Suspect, Reason::Unmanaged)
        );
    }

    #[test]
    fn prepare_sets_namespace_and_owner_meta_keeping_user_meta() {
        let job = json!({"ID": "web", "Meta": {"team": "media"}});
        let job = prepare(job, &id(), "media");
        assert_eq!(job["Namespace"], "default");
        assert_eq!(job["Meta"]["team"], "media");
        assert_eq!(job["Meta"][OWNER_META_KEY], "media");
        let job = prepare(json!({"ID": "web", "Meta": null}), &id(), "a");
        assert_eq!(job["Meta"][OWNER_META_KEY], "a");
    }

    fn group_diff(name: &str, fields: Vec<FieldDiff>, tasks: Vec<TaskDiff>) -> TaskGroupDiff {
        TaskGroupDiff {
            diff_type: DiffType::Edited,
            name: name.into(),
            fields: Some(fields),
            objects: None,
            tasks: Some(tasks),
            updates: None,
        }
    }

    fn edited(name: &str, old: &str, new: &str) -> FieldDiff {
        FieldDiff {
            diff_type: DiffType::Edited,
            name: name.into(),
            old: old.into(),
            new: new.into(),
            annotations: None,
        }
    }

    fn job_diff(groups: Vec<TaskGroupDiff>) -> JobDiff {
        JobDiff {
            diff_type: DiffType::Edited,
            id: "web".into(),
            fields: None,
            objects: None,
            task_groups: Some(groups),
        }
    }

    #[test]
    fn a_scaled_count_is_read_from_the_diff_and_alone_is_no_change() {
        let job = json!({"TaskGroups": [
            {"Name": "web", "Count": 1, "Scaling": {"Min": 1, "Max": 5}},
            {"Name": "db", "Count": 1, "Scaling": null},
        ]});
        let scaling = scaling_groups(&job);
        assert_eq!(scaling, ["web"]);
        let scaled = job_diff(vec![group_diff(
            "web",
            vec![edited("Count", "3", "1")],
            vec![],
        )]);
        let counts = live_scaling_counts(&scaled, &scaling);
        assert_eq!(counts, [("web".to_string(), 3)]);
        assert!(only_counts_differ(&scaled, &counts));
        let mut copied = job.clone();
        set_counts(&mut copied, &counts);
        assert_eq!(copied["TaskGroups"][0]["Count"], 3);
        assert_eq!(copied["TaskGroups"][1]["Count"], 1);

        // A memory change as well: not count-only.
        let task = TaskDiff {
            diff_type: DiffType::Edited,
            name: "server".into(),
            fields: None,
            objects: None,
            annotations: None,
        };
        let both = job_diff(vec![group_diff(
            "web",
            vec![edited("Count", "3", "1")],
            vec![task],
        )]);
        assert!(!only_counts_differ(
            &both,
            &live_scaling_counts(&both, &scaling)
        ));

        // A group without a scaling block: its count is Git's, and changing it rules out
        // PreserveCounts (Nomad would keep every group's live count).
        let db = job_diff(vec![group_diff(
            "db",
            vec![edited("Count", "1", "2")],
            vec![],
        )]);
        assert!(live_scaling_counts(&db, &scaling).is_empty());
        assert!(changes_a_count(&db));
    }

    #[test]
    fn json_jobspecs_with_or_without_wrapper() {
        assert_eq!(
            json_job(r#"{"Job":{"ID":"a"}}"#).ok(),
            Some(json!({"ID":"a"}))
        );
        assert_eq!(json_job(r#"{"ID":"a"}"#).ok(), Some(json!({"ID":"a"})));
        assert!(json_job("{").is_err());
    }
}
