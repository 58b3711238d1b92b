//! Applying a `bucket`: create it, write each setting the plan found different, then read the
//! declared settings back and record their fingerprint as the marker. A prune deletes only an
//! owned, EMPTY bucket: drover never deletes objects; a bucket that still holds some is
//! reported and kept.

use super::{StepResult, Write, failed};
use crate::desired::{BUCKET_OWNER_TAG, ResourceId};
use crate::plan::bucket::{BucketWrites, fingerprint};
use crate::providers::s3::{Read, S3Client, S3Error, Wanted};

/// What a step says when no S3 client is configured.
pub(super) fn no_s3() -> StepResult {
    StepResult::Failed {
        message: "no S3 client configured: set AWS_ENDPOINT_URL (or AWS_REGION) and \
                  AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY so drover can manage buckets"
            .into(),
        transient: false,
    }
}

/// Create the bucket if asked, write each changed setting, then record ownership and the
/// marker at the fingerprint of the settings read back.
pub(super) async fn put(
    s3: &S3Client,
    id: &ResourceId,
    writes: &BucketWrites,
    write: &Write<'_>,
) -> StepResult {
    let bucket = id.name.as_str();
    // Created by someone else since the read: S3 refuses (`BucketAlreadyOwnedByYou` or
    // `BucketAlreadyExists`); the next cycle sees it and plans from there.
    if writes.create
        && let Err(e) = s3.create(bucket).await
    {
        return failed(&e, e.is_transient());
    }
    if let Some(tags) = &writes.tags {
        match s3.put_tags(bucket, tags).await {
            Ok(()) => {}
            // Ownership then lives in drover's store alone; only tags the app asked for are
            // an error.
            Err(e) if e.is_not_implemented() && !writes.tags_declared => {}
            Err(e) => return setting_failed("tags", &e),
        }
    }
    if let Some(on) = writes.versioning
        && let Err(e) = s3.put_versioning(bucket, on).await
    {
        return setting_failed("versioning", &e);
    }
    if let Some(policy) = &writes.policy
        && let Err(e) = s3.put_policy(bucket, policy.as_deref()).await
    {
        return setting_failed("policy", &e);
    }
    if let Some(rules) = &writes.lifecycle
        && let Err(e) = s3.put_lifecycle(bucket, rules).await
    {
        return setting_failed("lifecycle", &e);
    }
    match s3.settings(bucket, writes.wanted).await {
        Ok(settings) => write.record(fingerprint(&settings)).await,
        Err(e) => failed(&e, e.is_transient()),
    }
}

/// A setting's write failed; a server that does not implement it gets a message saying so.
fn setting_failed(setting: &str, error: &S3Error) -> StepResult {
    if error.is_not_implemented() {
        return StepResult::Failed {
            message: format!(
                "the S3 server does not implement bucket {setting} (501 NotImplemented): remove \
                 `{setting}` from this bucket in Git, or use a server that has it (MinIO, AWS)"
            ),
            transient: false,
        };
    }
    failed(error, error.is_transient())
}

/// Delete the bucket only if its tags name this app (on a server without tagging, the store's
/// record, checked before, is the only mark) and it holds no object: objects are never deleted.
pub(super) async fn prune(s3: &S3Client, app: &str, id: &ResourceId) -> StepResult {
    let bucket = id.name.as_str();
    match s3.exists(bucket).await {
        Ok(true) => {}
        Ok(false) => return StepResult::Deleted,
        Err(e) => return failed(&e, e.is_transient()),
    }
    let tags = match s3
        .settings(
            bucket,
            Wanted {
                tags: true,
                ..Wanted::default()
            },
        )
        .await
    {
        Ok(settings) => settings.tags,
        Err(e) => return failed(&e, e.is_transient()),
    };
    if let Some(refusal) = ownership_refusal(tags.as_ref(), app) {
        return StepResult::Skipped { reason: refusal };
    }
    match s3.is_empty(bucket).await {
        Ok(true) => {}
        Ok(false) => {
            return StepResult::Skipped {
                reason: "it still holds objects; drover never deletes objects: empty the bucket \
                         yourself and the next prune deletes it"
                    .into(),
            };
        }
        Err(e) => return failed(&e, e.is_transient()),
    }
    // An object written since the check makes S3 refuse (`BucketNotEmpty`): a failed step,
    // and the next cycle reports the bucket as holding objects.
    match s3.delete(bucket).await {
        Ok(()) => StepResult::Deleted,
        Err(e) => failed(&e, e.is_transient()),
    }
}

/// Why a bucket's tags forbid pruning it: they name another app or none. A server without
/// tagging leaves the store's ownership as the only mark (`None`: no refusal).
fn ownership_refusal(
    tags: Option<&Read<std::collections::BTreeMap<String, String>>>,
    app: &str,
) -> Option<String> {
    match tags {
        Some(Read::Unsupported) => None,
        Some(Read::Value(tags)) if tags.get(BUCKET_OWNER_TAG).map(String::as_str) == Some(app) => {
            None
        }
        _ => Some(format!(
            "its tags do not say {BUCKET_OWNER_TAG}={app}; not deleted"
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::tests::{APP, delete, devstack, plan, policy, results};
    use super::super::{Clients, StepResult, apply_with_clients};
    use super::*;
    use crate::desired::ResourceKind;
    use crate::providers::s3::S3Config;
    use crate::store::Store;
    use drover_devstack::s3::S3Server;

    fn bucket_id(name: &str) -> ResourceId {
        ResourceId {
            kind: ResourceKind::Bucket,
            scope: String::new(),
            name: name.into(),
        }
    }

    #[test]
    fn only_tags_naming_this_app_or_a_server_without_tagging_allow_a_prune() {
        let tags = |pairs: &[(&str, &str)]| {
            Read::Value(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            )
        };
        assert_eq!(
            ownership_refusal(Some(&tags(&[("drover.app", "media")])), "media"),
            None
        );
        assert_eq!(ownership_refusal(Some(&Read::Unsupported), "media"), None);
        for refused in [
            Some(tags(&[("drover.app", "other")])),
            Some(tags(&[("team", "media")])),
            Some(tags(&[])),
            None,
        ] {
            let reason = ownership_refusal(refused.as_ref(), "media");
            assert!(
                reason
                    .as_deref()
                    .is_some_and(|r| r.contains("drover.app=media")),
                "{refused:?}: {reason:?}"
            );
        }
    }

    async fn s3s() -> (tempfile::TempDir, S3Server, S3Client) {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = S3Server::start(
            "127.0.0.1:0".parse().expect("addr"),
            dir.path(),
            "key",
            "secret-key",
        )
        .await
        .expect("s3s-fs");
        let client = S3Client::new(S3Config {
            endpoint: Some(server.url()),
            credentials: Some(crate::providers::s3::StaticCredentials::new(
                "key",
                "secret-key",
            )),
            max_retries: 0,
            ..S3Config::default()
        })
        .await;
        (dir, server, client)
    }

    #[tokio::test]
    async fn prune_deletes_an_owned_empty_bucket_and_never_one_holding_objects() {
        let (_dir, server, s3) = s3s().await;
        let (_stack, nomad) = devstack("{}").await;
        let store = Store::open_in_memory().expect("store");
        for name in ["empty", "full", "gone"] {
            if name != "gone" {
                s3.create(name).await.expect("create");
            }
            store
                .record_owned(APP, &bucket_id(name))
                .await
                .expect("own");
        }
        s3.sdk()
            .put_object()
            .bucket("full")
            .key("db/generation")
            .body(b"data".to_vec().into())
            .send()
            .await
            .expect("put object");
        s3.create("theirs").await.expect("create");
        let steps = ["empty", "full", "gone", "theirs"]
            .into_iter()
            .map(|n| delete(bucket_id(n), 0))
            .collect();
        let clients = Clients {
            nomad: &nomad,
            consul: None,
            s3: Some(&s3),
        };
        let report = apply_with_clients(
            clients,
            &store,
            &plan(steps),
            policy(true, true, Vec::new()),
        )
        .await;
        let got = results(&report);
        assert_eq!(got[0], ("empty".to_string(), StepResult::Deleted));
        assert!(
            matches!(&got[1].1, StepResult::Skipped { reason } if reason.contains("holds objects")),
            "{got:?}"
        );
        assert_eq!(got[2], ("gone".to_string(), StepResult::Deleted));
        assert!(
            matches!(&got[3].1, StepResult::Skipped { reason } if reason.contains("not owned")),
            "{got:?}"
        );
        assert!(!s3.exists("empty").await.expect("head"));
        assert!(s3.exists("full").await.expect("head"));
        assert!(s3.exists("theirs").await.expect("head"));
        let owned = store.owned(APP).await.expect("owned");
        assert!(!owned.contains(&bucket_id("empty")) && owned.contains(&bucket_id("full")));
        server.shutdown().await;
    }

    #[tokio::test]
    async fn a_create_on_a_server_without_tagging_keeps_ownership_in_the_store_but_declared_tags_fail()
     {
        let (_dir, server, s3) = s3s().await;
        let (_stack, nomad) = devstack("{}").await;
        let store = Store::open_in_memory().expect("store");
        let writes = |tags_declared: bool| BucketWrites {
            create: true,
            versioning: None,
            policy: None,
            lifecycle: None,
            tags: Some(BTreeMap::from([(
                BUCKET_OWNER_TAG.to_string(),
                APP.to_string(),
            )])),
            tags_declared,
            wanted: Wanted {
                tags: true,
                ..Wanted::default()
            },
        };
        let step = |name: &str, tags_declared: bool| {
            super::super::tests::step(
                bucket_id(name),
                0,
                crate::plan::Change::Create { diff: "+".into() },
                crate::plan::Reason::New,
                crate::plan::Payload::Bucket(writes(tags_declared)),
            )
        };
        let clients = Clients {
            nomad: &nomad,
            consul: None,
            s3: Some(&s3),
        };
        let report = apply_with_clients(
            clients,
            &store,
            &plan(vec![step("plain", false), step("tagged", true)]),
            policy(true, true, Vec::new()),
        )
        .await;
        assert!(
            matches!(report.steps[0].result, StepResult::Applied { live_index } if live_index > 0),
            "{report:?}"
        );
        assert_eq!(
            store.owner_of(&bucket_id("plain")).await.expect("owner"),
            Some(APP.into())
        );
        match &report.steps[1].result {
            StepResult::Failed { message, transient } => {
                assert!(
                    message.contains("does not implement bucket tags"),
                    "{message}"
                );
                assert!(!transient);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            store.owner_of(&bucket_id("tagged")).await.expect("owner"),
            None
        );
        server.shutdown().await;
    }
}
