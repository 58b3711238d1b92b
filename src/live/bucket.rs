//! Reading buckets: S3 has no blocking queries, so the buckets an app declares or owns are read
//! at the start of each of its cycles (one `HeadBucket` each, plus one read per declared
//! setting), and kept as the snapshot's `buckets`.

use std::collections::HashMap;

use super::LiveSnapshot;
use crate::providers::s3::{BucketSettings, S3Client, S3Error, Wanted};

/// Read each bucket: `None` when it does not exist, else the settings wanted.
pub(super) async fn read(
    s3: &S3Client,
    buckets: &[(String, Wanted)],
) -> Result<HashMap<String, Option<BucketSettings>>, S3Error> {
    let mut out = HashMap::new();
    for (name, wanted) in buckets {
        let state = match s3.exists(name).await? {
            true => Some(s3.settings(name, *wanted).await?),
            false => None,
        };
        out.insert(name.clone(), state);
    }
    Ok(out)
}

/// Fold what was read into the snapshot; whether any bucket changed.
pub(super) fn fold(
    snapshot: &mut LiveSnapshot,
    read: HashMap<String, Option<BucketSettings>>,
) -> bool {
    let mut changed = false;
    for (name, state) in read {
        if snapshot.buckets.get(&name) != Some(&state) {
            changed = true;
            snapshot.buckets.insert(name, state);
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::s3::{Read, S3Config, StaticCredentials, Versioning};

    /// S3 has no watch, so a cycle's cost is what it reads: one `HeadBucket` per bucket, and for
    /// one that exists one read per setting wanted (tags always).
    #[tokio::test]
    async fn a_read_costs_one_head_per_bucket_and_one_get_per_wanted_setting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = drover_devstack::s3::S3Server::start(
            "127.0.0.1:0".parse().expect("addr"),
            dir.path(),
            "key",
            "secret-key",
        )
        .await
        .expect("s3s-fs");
        let s3 = S3Client::new(S3Config {
            endpoint: Some(server.url()),
            credentials: Some(StaticCredentials::new("key", "secret-key")),
            max_retries: 0,
            ..S3Config::default()
        })
        .await;
        s3.create("media").await.expect("create");
        let wanted = Wanted {
            versioning: true,
            tags: true,
            ..Wanted::default()
        };
        let before = s3.requests();
        let read = read(&s3, &[("media".into(), wanted), ("absent".into(), wanted)])
            .await
            .expect("read");
        assert_eq!(s3.requests() - before, 1 + 2 + 1);
        // s3s-fs implements neither versioning nor tagging.
        let media = read.get("media").cloned().flatten().expect("media exists");
        assert_eq!(media.versioning, Some(Read::Unsupported));
        assert_eq!(media.tags, Some(Read::Unsupported));
        assert_eq!(media.policy, None, "not wanted, not read");
        assert_eq!(read.get("absent"), Some(&None));
        server.shutdown().await;
    }

    #[test]
    fn a_read_replaces_only_the_buckets_read_and_is_news_only_when_one_changed() {
        let on = BucketSettings {
            versioning: Some(Read::Value(Versioning::Enabled)),
            ..BucketSettings::default()
        };
        let mut snapshot = LiveSnapshot::default();
        let read = |name: &str, s: Option<BucketSettings>| HashMap::from([(name.to_string(), s)]);
        assert!(fold(&mut snapshot, read("a", Some(on.clone()))));
        assert!(fold(&mut snapshot, read("b", None)));
        assert!(!fold(&mut snapshot, read("a", Some(on.clone()))));
        assert_eq!(snapshot.bucket("a"), Some(Some(&on)));
        assert_eq!(snapshot.bucket("b"), Some(None));
        assert_eq!(snapshot.bucket("c"), None);
        assert!(fold(&mut snapshot, read("a", None)), "a deleted");
        assert_eq!(snapshot.bucket("a"), Some(None));
    }
}
