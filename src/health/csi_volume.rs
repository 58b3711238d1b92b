//! Health of a `csi_volume`: from the live volume list alone.

use super::{Assessment, Health};
use crate::live::LiveSnapshot;

/// Health of a CSI volume, from the volume list alone.
pub fn csi_volume(live: &LiveSnapshot, namespace: &str, id: &str) -> Assessment {
    match live.volume(namespace, id) {
        None => Assessment::new(Health::Missing, "volume not found"),
        Some(v) if v.schedulable => Assessment::new(Health::Healthy, "schedulable"),
        Some(_) => Assessment::new(Health::Degraded, "not schedulable"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::live;

    #[test]
    fn a_volume_is_healthy_when_schedulable_and_missing_when_not_listed() {
        let mut snapshot = live(&[], &["data"]);
        assert_eq!(
            csi_volume(&snapshot, "default", "data").health,
            Health::Healthy
        );
        assert_eq!(
            csi_volume(&snapshot, "default", "other").health,
            Health::Missing
        );
        if let Some(v) = snapshot
            .volumes
            .get_mut(&("default".to_string(), "data".to_string()))
        {
            v.schedulable = false;
        }
        assert_eq!(
            csi_volume(&snapshot, "default", "data").health,
            Health::Degraded
        );
    }
}
