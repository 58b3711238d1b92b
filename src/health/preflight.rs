//! The preflight of a job about to be registered (the seed's validation rules): the CSI volumes
//! it mounts exist (or are earlier in this plan), their plugin is healthy, and the buckets its
//! templates or env point at (`s3://NAME`, a `bucket: NAME` line) exist. A job that fails it is not registered this
//! cycle, with a message a user can act on, while the rest of the app syncs; it is checked again
//! at every cycle. (Its Vault requirements are checked by `vault_secret`.)

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

use crate::desired::{App, ResourceId, ResourceKind, ResourceSpec, job_refs};
use crate::live::LiveSnapshot;
use crate::plan::{Change, Plan};
use crate::providers::nomad::NomadClient;

/// Asks S3 whether a bucket exists (a `HEAD` on it): `Ok(false)` when it does not, `Err` with
/// why when it could not tell.
pub type BucketProbe =
    dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<bool, String>> + Send>> + Send + Sync;

/// What is known about buckets, for the bucket check. Without either fact, buckets are not
/// checked (no S3 configured).
#[derive(Clone, Copy, Default)]
pub struct BucketFacts<'a> {
    /// The buckets known to exist (the S3 live state), if drover lists them.
    pub existing: Option<&'a BTreeSet<String>>,
    /// Asked about a bucket not in `existing`, if set.
    pub probe: Option<&'a BucketProbe>,
}

impl std::fmt::Debug for BucketFacts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketFacts")
            .field("existing", &self.existing)
            .field("probe", &self.probe.is_some())
            .finish()
    }
}

/// The jobs of `plan` that would be registered now and fail their preflight, each with why
/// (reasons joined by `; `). One plugin read per plugin the checked jobs' volumes use.
pub async fn blocked_jobs(
    nomad: &NomadClient,
    live: &LiveSnapshot,
    app: &App,
    plan: &Plan,
    buckets: BucketFacts<'_>,
) -> BTreeMap<ResourceId, String> {
    let mut plugins: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for step in &plan.steps {
        if !matches!(step.change, Change::Create { .. } | Change::Update { .. }) {
            continue;
        }
        let Some(ResourceSpec::NomadJob(job)) = app
            .resources
            .iter()
            .find(|r| r.id == step.id)
            .map(|r| &r.spec)
        else {
            continue;
        };
        let refs = job_refs(job);
        let mut reasons = Vec::new();
        for source in &refs.csi_sources {
            let Some(plugin_id) = volume_plugin(app, live, &step.id.scope, source) else {
                reasons.push(format!(
                    "CSI volume {source} does not exist and is not in this plan"
                ));
                continue;
            };
            if !plugins.contains_key(&plugin_id) {
                let verdict = plugin_problem(nomad, &plugin_id).await;
                plugins.insert(plugin_id.clone(), verdict);
            }
            if let Some(Some(problem)) = plugins.get(&plugin_id) {
                reasons.push(format!("{problem} (it serves CSI volume {source})"));
            }
        }
        for bucket in refs.pointed_buckets() {
            if let Some(problem) = bucket_problem(app, &bucket, buckets).await {
                reasons.push(problem);
            }
        }
        if !reasons.is_empty() {
            out.insert(step.id.clone(), reasons.join("; "));
        }
    }
    out
}

/// The plugin of the CSI volume `source` in `namespace`: declared in the app (created earlier
/// in this plan), else live; `None` when it is neither.
fn volume_plugin(app: &App, live: &LiveSnapshot, namespace: &str, source: &str) -> Option<String> {
    let declared = app.resources.iter().find_map(|r| match &r.spec {
        ResourceSpec::CsiVolume(v) if r.id.scope == namespace && v.id == source => {
            Some(v.plugin_id.clone())
        }
        _ => None,
    });
    declared.or_else(|| {
        live.volume(namespace, source)
            .map(|stub| stub.plugin_id.clone())
    })
}

/// Why the CSI plugin cannot serve a job's volume now, if it cannot.
async fn plugin_problem(nomad: &NomadClient, plugin_id: &str) -> Option<String> {
    match nomad.read_csi_plugin(plugin_id).await {
        Ok(Some(plugin)) if plugin.is_healthy() => None,
        Ok(Some(plugin)) => Some(format!(
            "CSI plugin {plugin_id} is not healthy ({} healthy controllers, {} healthy nodes)",
            plugin.controllers_healthy, plugin.nodes_healthy
        )),
        Ok(None) => Some(format!("CSI plugin {plugin_id} is not running")),
        Err(e) => Some(format!(
            "CSI plugin {plugin_id} could not be checked: {}",
            crate::telemetry::error_chain(&e)
        )),
    }
}

/// Why a bucket a job points at is missing, if it is: declared in the app (created earlier in
/// this plan), else known to exist, else asked about.
async fn bucket_problem(app: &App, bucket: &str, facts: BucketFacts<'_>) -> Option<String> {
    let declared = app
        .resources
        .iter()
        .any(|r| r.id.kind == ResourceKind::Bucket && r.id.name == bucket);
    if declared || facts.existing.is_some_and(|known| known.contains(bucket)) {
        return None;
    }
    let missing = format!("bucket {bucket} does not exist and is not in this plan");
    match (facts.probe, facts.existing) {
        (Some(probe), _) => match probe(bucket.to_string()).await {
            Ok(true) => None,
            Ok(false) => Some(missing),
            Err(e) => Some(format!("bucket {bucket} could not be checked: {e}")),
        },
        (None, Some(_)) => Some(missing),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{app, bucket};

    fn probe_answering(answer: Result<bool, String>) -> Box<BucketProbe> {
        Box::new(move |_name: String| {
            let answer = answer.clone();
            Box::pin(async move { answer })
        })
    }

    #[tokio::test]
    async fn a_bucket_is_fine_when_declared_known_or_found_and_unchecked_without_facts() {
        let declared = app(vec![bucket("declared")]);
        let known = BTreeSet::from(["known".to_string()]);
        let facts = BucketFacts {
            existing: Some(&known),
            probe: None,
        };
        assert_eq!(bucket_problem(&declared, "declared", facts).await, None);
        assert_eq!(bucket_problem(&declared, "known", facts).await, None);
        assert_eq!(
            bucket_problem(&declared, "other", facts).await.as_deref(),
            Some("bucket other does not exist and is not in this plan")
        );
        // No S3 facts at all: not checked.
        let none = BucketFacts::default();
        assert_eq!(bucket_problem(&declared, "other", none).await, None);

        let found = probe_answering(Ok(true));
        let absent = probe_answering(Ok(false));
        let broken = probe_answering(Err("403 Forbidden".into()));
        let with = |probe: &'static BucketProbe| BucketFacts {
            existing: None,
            probe: Some(probe),
        };
        let found: &'static BucketProbe = Box::leak(found);
        let absent: &'static BucketProbe = Box::leak(absent);
        let broken: &'static BucketProbe = Box::leak(broken);
        assert_eq!(bucket_problem(&declared, "other", with(found)).await, None);
        assert_eq!(
            bucket_problem(&declared, "other", with(absent))
                .await
                .as_deref(),
            Some("bucket other does not exist and is not in this plan")
        );
        assert_eq!(
            bucket_problem(&declared, "other", with(broken))
                .await
                .as_deref(),
            Some("bucket other could not be checked: 403 Forbidden")
        );
        // A declared bucket is never asked about.
        assert_eq!(
            bucket_problem(&declared, "declared", with(absent)).await,
            None
        );
    }
}
