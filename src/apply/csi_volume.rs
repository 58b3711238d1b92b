//! Applying a `csi_volume`: create or register once its plugin is healthy; a prune only
//! deregisters (it never destroys the volume's data).

use super::{StepResult, Write, failed};
use crate::desired::ResourceId;
use crate::providers::nomad::NomadClient;
use crate::providers::nomad::types::CsiVolumeRequest;

/// Create (or, with `register`, register) the volume, then record ownership and the marker.
/// Volumes are created only after their plugin is healthy (like Terraform's
/// `data "nomad_plugin" { wait_for_healthy = true }`).
pub(super) async fn put(
    nomad: &NomadClient,
    id: &ResourceId,
    volume: &CsiVolumeRequest,
    register: bool,
    plugin_id: &str,
    write: &Write<'_>,
) -> StepResult {
    match nomad.read_csi_plugin(plugin_id).await {
        Ok(Some(plugin)) if plugin.is_healthy() => {}
        Ok(Some(_)) => {
            return StepResult::Waiting {
                reason: format!("CSI plugin {plugin_id} is not healthy yet"),
            };
        }
        Ok(None) => {
            return StepResult::Waiting {
                reason: format!("CSI plugin {plugin_id} is not running yet"),
            };
        }
        Err(e) => return failed(&e, e.is_transient()),
    }
    match nomad.put_csi_volume(&id.scope, volume, register).await {
        Ok(()) => write.record(0).await,
        Err(e) => failed(&e, e.is_transient()),
    }
}

/// Deregister the volume (volumes carry no owner mark; the store's ownership was checked
/// before).
pub(super) async fn prune(nomad: &NomadClient, id: &ResourceId) -> StepResult {
    match nomad.delete_csi_volume(&id.scope, &id.name, true).await {
        Ok(()) => StepResult::Deleted,
        Err(e) => failed(&e, e.is_transient()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{APP, devstack, plan, policy, results, volume_write};
    use super::super::{StepResult, apply};
    use crate::store::Store;

    #[tokio::test]
    async fn volumes_wait_for_a_healthy_plugin() {
        let (stack, nomad) =
            devstack("csi_plugins:\n  - {id: glusterfs}\n  - {id: sick, healthy: false}\n").await;
        let store = Store::open_in_memory().expect("store");
        let steps = vec![
            volume_write("data", "glusterfs"),
            volume_write("cache", "sick"),
            volume_write("scratch", "absent"),
        ];
        let report = apply(&nomad, &store, &plan(steps), policy(true, true, Vec::new())).await;
        assert_eq!(
            results(&report),
            [
                ("data".to_string(), StepResult::Applied { live_index: 0 }),
                (
                    "cache".to_string(),
                    StepResult::Waiting {
                        reason: "CSI plugin sick is not healthy yet".into()
                    }
                ),
                (
                    "scratch".to_string(),
                    StepResult::Waiting {
                        reason: "CSI plugin absent is not running yet".into()
                    }
                ),
            ]
        );
        assert!(
            nomad
                .read_csi_volume("default", "data")
                .await
                .expect("read")
                .is_some()
        );
        assert!(
            nomad
                .read_csi_volume("default", "cache")
                .await
                .expect("read")
                .is_none()
        );
        assert_eq!(
            store.owned(APP).await.expect("owned"),
            ["csi_volume/default/data"]
        );
        stack.shutdown().await;
    }
}
