//! Applying a `nomad_job`: register with compare-and-set, and the job's half of the prune guard
//! (its owner meta).

use serde_json::Value;

use super::{StepResult, Write, failed};
use crate::desired::ResourceId;
use crate::plan::nomad_job::OWNER_META_KEY;
use crate::providers::nomad::{NomadClient, RegisterOptions};

/// Register the job (`EnforceIndex`: a job someone else changed since the plan is a conflict,
/// reported and never overwritten), then record ownership and the marker.
pub(super) async fn register(
    nomad: &NomadClient,
    job: &Value,
    options: &RegisterOptions,
    write: &Write<'_>,
) -> StepResult {
    match nomad.register_job(job, options).await {
        Ok(response) => {
            tracing::info!(app = %write.plan.app, resource = %write.resource, eval = %response.eval_id, "job registered");
            write.record(response.job_modify_index).await
        }
        Err(e) if e.is_enforce_index_conflict() => StepResult::Conflict {
            message: e.body().unwrap_or_default().to_string(),
        },
        Err(e) => failed(&e, e.is_transient()),
    }
}

/// Purge the job, but only when its meta names `app` (the store's ownership was checked
/// before); a job already gone is purged all the same (an unknown job's DELETE is a 200).
pub(super) async fn prune(nomad: &NomadClient, app: &str, id: &ResourceId) -> StepResult {
    match nomad.read_job(&id.scope, &id.name).await {
        Ok(Some(job)) => {
            let marked = job.meta.get(OWNER_META_KEY).map(String::as_str);
            if marked != Some(app) {
                return StepResult::Skipped {
                    reason: format!("job meta {OWNER_META_KEY} does not name this app"),
                };
            }
        }
        Ok(None) => {}
        Err(e) => return failed(&e, e.is_transient()),
    }
    match nomad.deregister_job(&id.scope, &id.name, true).await {
        Ok(_) => StepResult::Deleted,
        Err(e) => failed(&e, e.is_transient()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{APP, applied_index, devstack, job_write, plan, policy};
    use super::super::{StepResult, apply};
    use crate::plan::{Payload, Reason};
    use crate::store::Store;
    use serde_json::json;

    #[tokio::test]
    async fn job_writes_are_compare_and_set_and_record_ownership_and_marker() {
        let (stack, nomad) = devstack("{}").await;
        let store = Store::open_in_memory().expect("store");
        let all = policy(true, true, Vec::new());

        let created = apply(
            &nomad,
            &store,
            &plan(vec![job_write("web", 0, Reason::New, 0)]),
            all.clone(),
        )
        .await;
        let live_index = applied_index(&created);
        assert!(live_index > 0);
        assert_eq!(created.changes(), ["create nomad_job/default/web"]);
        assert_eq!(
            store.owned(APP).await.expect("owned"),
            ["nomad_job/default/web"]
        );
        let marker = store.markers(APP).await.expect("markers");
        assert_eq!(marker.len(), 1);
        assert_eq!(marker[0].live_index, live_index);
        assert_eq!(marker[0].spec_hash, "hash-of-web");

        // Planned as absent, but it exists now: EnforceIndex refuses, nothing is overwritten.
        let again = apply(
            &nomad,
            &store,
            &plan(vec![job_write("web", 0, Reason::New, 0)]),
            all.clone(),
        )
        .await;
        assert!(
            matches!(&again.steps[0].result, StepResult::Conflict { .. }),
            "{again:?}"
        );
        assert!(again.failed());

        // With the index the plan saw, the update (a new meta value) goes through.
        let mut update = job_write("web", 0, Reason::GitChanged, live_index);
        if let Payload::NomadJob { job, .. } = &mut update.payload {
            job["Meta"]["release"] = json!("2");
        }
        let updated = apply(&nomad, &store, &plan(vec![update]), all).await;
        let after = applied_index(&updated);
        assert!(after > live_index);
        assert_eq!(
            store.markers(APP).await.expect("markers")[0].live_index,
            after
        );
        stack.shutdown().await;
    }
}
