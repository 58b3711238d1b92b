//! Watching jobs: one `GET /v1/jobs?namespace=*` list (blocking after the first), kept as
//! the snapshot's `jobs`.

use super::{Key, LiveSnapshot, PersistentMap};
use crate::providers::nomad::types::JobListStub;
use crate::providers::nomad::{Indexed, NomadClient, NomadError, QueryOptions};

/// List every namespace's jobs.
pub(super) async fn list(
    nomad: NomadClient,
    query: QueryOptions,
) -> Result<Indexed<Vec<JobListStub>>, NomadError> {
    nomad.list_jobs("*", query).await
}

/// Fold a list into the snapshot; whether anything a reconciler reads changed (the list index
/// also moves on allocation churn, which changes nothing here).
pub(super) fn fold(snapshot: &mut LiveSnapshot, index: u64, jobs: Vec<JobListStub>) -> bool {
    let jobs = by_key(jobs);
    let changed = !snapshot.jobs_ready || snapshot.jobs != jobs;
    snapshot.jobs = jobs;
    snapshot.jobs_index = index;
    snapshot.jobs_ready = true;
    changed
}

/// Jobs by `(namespace, id)`; an omitted namespace is `default`.
fn by_key(jobs: Vec<JobListStub>) -> PersistentMap<Key, JobListStub> {
    jobs.into_iter()
        .map(|j| {
            let ns = if j.namespace.is_empty() {
                "default".to_string()
            } else {
                j.namespace.clone()
            };
            ((ns, j.id.clone()), j)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::live;

    #[test]
    fn a_list_is_news_only_when_a_job_changed_and_an_omitted_namespace_is_default() {
        let listed = live(&["web"], &[]);
        let mut stub = listed
            .jobs
            .values()
            .next()
            .cloned()
            .unwrap_or_else(|| panic!("a job"));
        stub.namespace.clear();
        let mut snapshot = LiveSnapshot::default();
        assert!(fold(&mut snapshot, 5, vec![stub.clone()]), "the first list");
        assert!(snapshot.jobs_ready && snapshot.jobs_index == 5);
        assert!(snapshot.job("default", "web").is_some());
        assert!(
            !fold(&mut snapshot, 6, vec![stub.clone()]),
            "only the index moved"
        );
        assert_eq!(snapshot.jobs_index, 6);
        stub.job_modify_index += 1;
        assert!(fold(&mut snapshot, 7, vec![stub]), "the job changed");
    }
}
