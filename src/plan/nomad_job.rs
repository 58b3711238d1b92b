//! Planning a `nomad_job`: triage by indexes, then Nomad's own parse and plan endpoints decide.

use serde_json::{Value, json};

use super::{AppliedMarker, Reason, Verdict};
use crate::desired::{JobFormat, NomadJobSpec, ResourceId};
use crate::live::LiveSnapshot;

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
    let value: Value = serde_json::from_str(source).map_err(|e| e.to_string())?;
    Ok(match value.get("Job") {
        Some(job) if job.is_object() => job.clone(),
        _ => value,
    })
}

/// Make a parsed job drover's: namespace from the resource ID, the owner meta set.
pub fn prepare(mut job: Value, id: &ResourceId, app: &str) -> Value {
    if let Some(obj) = job.as_object_mut() {
        obj.insert("Namespace".into(), Value::String(id.scope.clone()));
        let meta = obj.entry("Meta").or_insert_with(|| json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(OWNER_META_KEY.into(), Value::String(app.to_string()));
        }
    }
    job
}

/// The submission format name Nomad records.
pub fn submission_format(spec: &NomadJobSpec) -> &'static str {
    match spec.format {
        JobFormat::Hcl2 => "hcl2",
        JobFormat::Json => "json",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::ResourceKind;
    use crate::providers::nomad::types::JobListStub;

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
