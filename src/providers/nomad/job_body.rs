//! The job body drover registers: opaque JSON as the server parsed it (so every field Nomad
//! knows survives untouched), with the few edits drover makes before registering. The Nomad key
//! names those edits need live here, not in the planner.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::types::Job;

/// The job inside a JSON jobspec: `{"Job": {...}}` (what `nomad job run -json` takes) or a bare
/// job.
pub fn from_json_jobspec(source: &str) -> Result<Value, serde_json::Error> {
    let value: Value = serde_json::from_str(source)?;
    Ok(match value.get("Job") {
        Some(job) if job.is_object() => job.clone(),
        _ => value,
    })
}

/// The typed view of the fields drover reads (`None` when the body does not have Nomad's shape;
/// the server then refuses it with its own message).
pub fn view(job: &Value) -> Option<Job> {
    Job::deserialize(job).ok()
}

/// The job's `ID` and namespace (`default_namespace` when it names none).
pub fn identity(job: &Value, default_namespace: &str) -> (String, String) {
    let id = job
        .get("ID")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let namespace = job
        .get("Namespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(default_namespace)
        .to_string();
    (id, namespace)
}

/// Set the job's `Namespace`.
pub fn set_namespace(job: &mut Value, namespace: &str) {
    if let Some(obj) = job.as_object_mut() {
        obj.insert("Namespace".into(), Value::String(namespace.to_string()));
    }
}

/// Set one `Meta` entry, keeping the others (a `null` or missing `Meta` becomes a map).
pub fn set_meta(job: &mut Value, key: &str, value: &str) {
    if let Some(obj) = job.as_object_mut() {
        let meta = obj
            .entry("Meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(key.to_string(), Value::String(value.to_string()));
        }
    }
}

/// Set the `Count` of the groups named in `counts`; other groups are left alone.
pub fn set_group_counts(job: &mut Value, counts: &[(String, u64)]) {
    let groups = job.get_mut("TaskGroups").and_then(Value::as_array_mut);
    for group in groups.into_iter().flatten() {
        let name = group
            .get("Name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some((_, count)) = counts.iter().find(|(n, _)| n == name)
            && let Some(obj) = group.as_object_mut()
        {
            obj.insert("Count".into(), Value::from(*count));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_jobspecs_with_or_without_the_job_wrapper() {
        assert_eq!(
            from_json_jobspec(r#"{"Job":{"ID":"a"}}"#).ok(),
            Some(json!({"ID":"a"}))
        );
        assert_eq!(
            from_json_jobspec(r#"{"ID":"a"}"#).ok(),
            Some(json!({"ID":"a"}))
        );
        assert!(from_json_jobspec("{").is_err());
    }

    #[test]
    fn edits_keep_every_field_drover_does_not_touch() {
        let mut job = json!({"ID": "web", "Meta": {"team": "media"}, "Unknown": {"x": 1},
            "TaskGroups": [{"Name": "web", "Count": 1, "Tasks": []}, {"Name": "db", "Count": 1}]});
        set_namespace(&mut job, "apps");
        set_meta(&mut job, "drover.app", "media");
        set_group_counts(&mut job, &[("web".into(), 3)]);
        assert_eq!(
            job,
            json!({"ID": "web", "Meta": {"team": "media", "drover.app": "media"},
                "Unknown": {"x": 1}, "Namespace": "apps",
                "TaskGroups": [{"Name": "web", "Count": 3, "Tasks": []}, {"Name": "db", "Count": 1}]})
        );
        let mut bare = json!({"ID": "web", "Meta": null});
        set_meta(&mut bare, "k", "v");
        assert_eq!(bare["Meta"], json!({"k": "v"}));
        assert_eq!(identity(&bare, "default"), ("web".into(), "default".into()));
        assert_eq!(identity(&job, "default"), ("web".into(), "apps".into()));
    }

    #[test]
    fn the_view_reads_a_parsed_uncanonicalized_job_with_nulls() {
        // `POST /v1/jobs/parse` without Canonicalize: unset pointer fields are null.
        let parsed = json!({"ID": "web", "Namespace": null, "Type": null, "Version": null,
            "Stop": null, "Meta": null, "Dispatched": false,
            "TaskGroups": [{"Name": "web", "Count": null, "Scaling": {"Min": 1, "Max": 5,
                "Enabled": null, "Policy": null, "Type": "horizontal"}},
                {"Name": "db", "Count": 2, "Scaling": null}]});
        let job = view(&parsed).unwrap_or_else(|| panic!("view"));
        assert_eq!(job.namespace, "");
        assert_eq!(job.task_groups.len(), 2);
        assert_eq!(job.task_groups[0].count, 0);
        assert_eq!(job.task_groups[0].scaling.and_then(|s| s.max), Some(5));
        assert!(job.task_groups[1].scaling.is_none());
        assert!(view(&json!({"TaskGroups": "not a list"})).is_none());
    }
}
