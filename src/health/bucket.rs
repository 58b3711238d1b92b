//! Health of a `bucket`: from this cycle's read (S3 applies a setting on write, so a bucket
//! that exists is in service).

use super::{Assessment, Health};
use crate::live::LiveSnapshot;

/// Health of a bucket: Healthy when it exists, Missing when S3 said it does not, Unknown before
/// it was read (or without an S3 client).
pub fn bucket(live: &LiveSnapshot, name: &str) -> Assessment {
    match live.bucket(name) {
        Some(Some(_)) => Assessment::new(Health::Healthy, "bucket exists"),
        Some(None) => Assessment::new(Health::Missing, "bucket not found"),
        None if live.s3_configured => Assessment::new(Health::Unknown, "bucket not read yet"),
        None => Assessment::new(
            Health::Unknown,
            "no S3 client configured (set AWS_ENDPOINT_URL or AWS_REGION)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_is_healthy_when_it_exists_missing_when_not_and_unknown_before_a_read() {
        let mut live = LiveSnapshot::default();
        assert_eq!(bucket(&live, "b").health, Health::Unknown);
        live.buckets.insert("b".into(), None);
        assert_eq!(bucket(&live, "b").health, Health::Missing);
        live.buckets.insert("b".into(), Some(Default::default()));
        assert_eq!(bucket(&live, "b").health, Health::Healthy);
    }
}
