//! Watching CSI volumes: one `GET /v1/volumes?type=csi&namespace=*` list (blocking after the
//! first), kept as the snapshot's `volumes`.

use super::{Key, LiveSnapshot, PersistentMap};
use crate::providers::nomad::types::CsiVolumeStub;
use crate::providers::nomad::{Indexed, NomadClient, NomadError, QueryOptions};

/// List every namespace's CSI volumes.
pub(super) async fn list(
    nomad: NomadClient,
    query: QueryOptions,
) -> Result<Indexed<Vec<CsiVolumeStub>>, NomadError> {
    nomad.list_csi_volumes("*", query).await
}

/// Fold a list into the snapshot; whether anything changed.
pub(super) fn fold(snapshot: &mut LiveSnapshot, index: u64, volumes: Vec<CsiVolumeStub>) -> bool {
    let volumes = by_key(volumes);
    let changed = !snapshot.volumes_ready || snapshot.volumes != volumes;
    snapshot.volumes = volumes;
    snapshot.volumes_index = index;
    snapshot.volumes_ready = true;
    changed
}

/// Volumes by `(namespace, id)`; an omitted namespace is `default`.
fn by_key(volumes: Vec<CsiVolumeStub>) -> PersistentMap<Key, CsiVolumeStub> {
    volumes
        .into_iter()
        .map(|v| {
            let ns = if v.namespace.is_empty() {
                "default".to_string()
            } else {
                v.namespace.clone()
            };
            ((ns, v.id.clone()), v)
        })
        .collect()
}
