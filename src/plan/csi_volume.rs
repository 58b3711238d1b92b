//! Planning a `csi_volume`: the request body Nomad takes, triage, and a field diff against live.

use super::{AppliedMarker, Change, Payload, PlanError, Reason, Verdict};
use crate::desired::{CsiVolumeSpec, ResourceId, VolumeCapability, VolumeMode};
use crate::live::LiveSnapshot;
use crate::providers::nomad::NomadClient;
use crate::providers::nomad::types::{
    CsiMountOptions, CsiVolume, CsiVolumeCapability, CsiVolumeRequest,
};
use crate::telemetry::Redacted;

/// Cheap triage from the volume list and the marker.
pub fn triage(
    id: &ResourceId,
    spec_hash: &str,
    live: &LiveSnapshot,
    marker: Option<&AppliedMarker>,
) -> (Verdict, Reason) {
    match (live.volume(&id.scope, &id.name), marker) {
        (None, None) => (Verdict::Create, Reason::New),
        (None, Some(_)) => (Verdict::Create, Reason::Missing),
        (Some(_), None) => (Verdict::Suspect, Reason::Unmanaged),
        (Some(_), Some(m)) if m.spec_hash != spec_hash => (Verdict::Suspect, Reason::GitChanged),
        (Some(_), Some(_)) => (Verdict::Unchanged, Reason::InSync),
    }
}

/// One element of `Volumes` for `PUT /v1/volume/csi/:id[/create]` (capacities in bytes).
pub fn request_body(spec: &CsiVolumeSpec) -> CsiVolumeRequest {
    let first = spec.capabilities.first();
    CsiVolumeRequest {
        id: spec.id.clone(),
        name: spec.name.clone(),
        namespace: spec.namespace.clone(),
        plugin_id: spec.plugin_id.clone(),
        external_id: (spec.mode == VolumeMode::Register)
            .then(|| spec.external_id.clone().unwrap_or_default()),
        requested_capacity_min: spec.capacity_min.unwrap_or(0),
        requested_capacity_max: spec.capacity_max.unwrap_or(0),
        requested_capabilities: spec.capabilities.iter().map(capability).collect(),
        mount_options: spec
            .mount_options
            .as_ref()
            .map(|m| CsiMountOptions {
                fs_type: Some(m.fs_type.clone()),
                mount_flags: Some(m.mount_flags.clone()),
            })
            .unwrap_or_default(),
        parameters: spec.parameters.clone(),
        secrets: Redacted(
            spec.secrets
                .iter()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect(),
        ),
        context: spec.context.clone(),
        snapshot_id: spec.snapshot_id.clone().unwrap_or_default(),
        clone_id: spec.clone_id.clone().unwrap_or_default(),
        access_mode: first.map(|c| c.access_mode.clone()).unwrap_or_default(),
        attachment_mode: first.map(|c| c.attachment_mode.clone()).unwrap_or_default(),
    }
}

fn capability(c: &VolumeCapability) -> CsiVolumeCapability {
    CsiVolumeCapability {
        access_mode: c.access_mode.clone(),
        attachment_mode: c.attachment_mode.clone(),
    }
}

/// Differences between the desired volume and the live one (`GET /v1/volume/csi/:id`), as
/// `nomad job plan`-style lines. Secrets and mount flags are never compared (GET redacts them).
pub fn diff_against_live(spec: &CsiVolumeSpec, live: &CsiVolume) -> Vec<String> {
    let desired = request_body(spec);
    let mut lines = Vec::new();
    let scalars = [
        ("Name", text(&live.name), text(&desired.name)),
        ("PluginID", text(&live.plugin_id), text(&desired.plugin_id)),
        (
            "RequestedCapacityMin",
            number(live.requested_capacity_min),
            number(desired.requested_capacity_min),
        ),
        (
            "RequestedCapacityMax",
            number(live.requested_capacity_max),
            number(desired.requested_capacity_max),
        ),
        (
            "SnapshotID",
            text(&live.snapshot_id),
            text(&desired.snapshot_id),
        ),
        ("CloneID", text(&live.clone_id), text(&desired.clone_id)),
    ];
    for (field, have, want) in scalars {
        if have != want {
            lines.push(format!("  +/- {field}: {have} => {want}"));
        }
    }
    let caps = |list: &[CsiVolumeCapability]| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = list
            .iter()
            .map(|c| (c.access_mode.clone(), c.attachment_mode.clone()))
            .collect();
        out.sort();
        out
    };
    let (want_caps, have_caps) = (
        caps(&desired.requested_capabilities),
        caps(&live.requested_capabilities),
    );
    if want_caps != have_caps {
        lines.push(format!(
            "  +/- RequestedCapabilities: {have_caps:?} => {want_caps:?}"
        ));
    }
    for (map, want, have) in [
        ("Parameters", &desired.parameters, &live.parameters),
        ("Context", &desired.context, &live.context),
    ] {
        for (k, v) in want {
            match have.get(k) {
                None => lines.push(format!("  +   {map}[{k}]: \"{v}\"")),
                Some(old) if old != v => {
                    lines.push(format!("  +/- {map}[{k}]: \"{old}\" => \"{v}\""))
                }
                _ => {}
            }
        }
        for (k, old) in have {
            if !want.contains_key(k) {
                lines.push(format!("  -   {map}[{k}]: \"{old}\""));
            }
        }
    }
    let fs_want = desired.mount_options.fs_type.as_deref().unwrap_or_default();
    let fs_have = live
        .mount_options
        .as_ref()
        .and_then(|m| m.fs_type.as_deref())
        .unwrap_or_default();
    if fs_want != fs_have {
        lines.push(format!(
            "  +/- MountOptions.FSType: \"{fs_have}\" => \"{fs_want}\""
        ));
    }
    lines
}

/// Step 2 for a volume to create or a suspect: a suspect is compared with the live volume. A
/// Git change that the comparison cannot see (Nomad never returns `Secrets` nor `MountFlags`)
/// is re-sent as an update: Nomad updates an existing volume's secrets in place.
pub(super) async fn explain(
    nomad: &NomadClient,
    id: &ResourceId,
    verdict: Verdict,
    reason: Reason,
    spec: &CsiVolumeSpec,
) -> Result<(Change, Payload), PlanError> {
    let volume = request_body(spec);
    let payload = Payload::CsiVolume {
        volume: crate::telemetry::Redacted(Box::new(volume)),
        register: spec.mode == VolumeMode::Register,
        plugin_id: spec.plugin_id.clone(),
    };
    Ok(if verdict == Verdict::Create {
        let diff = format!(
            "+ CSI Volume: \"{}\" (plugin \"{}\")\n",
            spec.id, spec.plugin_id
        );
        (Change::Create { diff }, payload)
    } else {
        let live = nomad
            .read_csi_volume(&id.scope, &id.name)
            .await
            .map_err(|source| PlanError::Nomad {
                resource: id.clone(),
                source,
            })?;
        match live {
            None => (
                Change::Create {
                    diff: format!("+ CSI Volume: \"{}\"\n", spec.id),
                },
                payload,
            ),
            Some(live) => {
                let mut lines = diff_against_live(spec, &live);
                if lines.is_empty() && reason == Reason::GitChanged {
                    lines.push(UNSEEN_CHANGE.to_string());
                }
                if lines.is_empty() {
                    (Change::Unchanged, Payload::Confirm { live_index: 0 })
                } else {
                    let diff = format!("+/- CSI Volume: \"{}\"\n{}\n", spec.id, lines.join("\n"));
                    (Change::Update { diff }, payload)
                }
            }
        }
    })
}

/// The diff line of a Git change the live volume cannot show: the spec changed but every field
/// Nomad returns matches, so what changed is one Nomad never returns (`Secrets`, `MountFlags`)
/// or one drover keeps to itself (`prevent_destroy`). Which one is not known (the marker keeps
/// only the spec's hash), and no value is shown; the volume is re-sent, which updates secrets in
/// place and is a no-op otherwise.
pub const UNSEEN_CHANGE: &str = "  +/- changed in Git in a field Nomad does not return (Secrets, \
     MountOptions.MountFlags) or drover does not send (prevent_destroy): re-sent, no value shown";

/// A string field as the diff shows it (an absent field reads as `""`).
fn text(value: &str) -> String {
    format!("\"{value}\"")
}

/// A number as the diff shows it.
fn number(value: u64) -> String {
    format!("\"{value}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::SecretString;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn spec() -> CsiVolumeSpec {
        CsiVolumeSpec {
            id: "glusterfs_overseerr_config".into(),
            name: "glusterfs_overseerr_config".into(),
            namespace: "default".into(),
            plugin_id: "glusterfs".into(),
            mode: VolumeMode::Create,
            external_id: None,
            capacity_min: Some(100 * 1024 * 1024),
            capacity_max: Some(1024 * 1024 * 1024),
            capabilities: vec![VolumeCapability {
                access_mode: "single-node-writer".into(),
                attachment_mode: "file-system".into(),
            }],
            mount_options: None,
            parameters: BTreeMap::from([("share".to_string(), "x".to_string())]),
            secrets: BTreeMap::from([("password".to_string(), SecretString("hunter2".into()))]),
            context: BTreeMap::new(),
            snapshot_id: None,
            clone_id: None,
            prevent_destroy: true,
        }
    }

    #[test]
    fn request_body_uses_bytes_and_pascal_case_like_the_api() {
        let body = serde_json::to_value(request_body(&spec())).unwrap_or_default();
        assert_eq!(body["RequestedCapacityMin"], 104857600);
        assert_eq!(body["RequestedCapacityMax"], 1073741824);
        assert_eq!(
            body["RequestedCapabilities"][0]["AccessMode"],
            "single-node-writer"
        );
        assert_eq!(body["AccessMode"], "single-node-writer");
        assert_eq!(body["MountOptions"], json!({}));
        assert_eq!(body["Secrets"], json!({"password": "hunter2"}));
        assert_eq!(body["SnapshotID"], "");
        assert!(body.get("ExternalID").is_none());
        assert!(!format!("{:?}", request_body(&spec())).contains("hunter2"));

        let mut register = spec();
        register.mode = VolumeMode::Register;
        register.external_id = Some("vol-123".into());
        register.mount_options = Some(crate::desired::MountOptions {
            fs_type: "ext4".into(),
            mount_flags: vec!["noatime".into()],
        });
        let body = serde_json::to_value(request_body(&register)).unwrap_or_default();
        assert_eq!(body["ExternalID"], "vol-123");
        assert_eq!(
            body["MountOptions"],
            json!({"FSType": "ext4", "MountFlags": ["noatime"]})
        );
    }

    /// The volume as `GET /v1/volume/csi/:id` answers for what [`spec`] created (api-facts §6.10:
    /// secrets `null`, mount flags redacted, allocations added).
    fn live() -> CsiVolume {
        serde_json::from_value(json!({
            "ID": "glusterfs_overseerr_config", "Namespace": "default",
            "Name": "glusterfs_overseerr_config", "ExternalID": "", "PluginID": "glusterfs",
            "RequestedCapacityMin": 104857600, "RequestedCapacityMax": 1073741824,
            "RequestedCapabilities": [{"AccessMode": "single-node-writer",
                "AttachmentMode": "file-system"}],
            "MountOptions": {"FSType": "", "MountFlags": ["[REDACTED]"]},
            "Parameters": {"share": "x"}, "Secrets": null, "Context": null,
            "SnapshotID": "", "CloneID": "", "Schedulable": true, "Allocations": [],
            "ModifyIndex": 12
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn live_diff_ignores_redacted_secrets_and_reports_changes() {
        assert_eq!(diff_against_live(&spec(), &live()), Vec::<String>::new());
        let mut changed = live();
        changed.requested_capacity_max = 10;
        changed.parameters = BTreeMap::from([("share".to_string(), "y".to_string())]);
        let lines = diff_against_live(&spec(), &changed);
        assert_eq!(
            lines,
            [
                "  +/- RequestedCapacityMax: \"10\" => \"1073741824\"",
                "  +/- Parameters[share]: \"y\" => \"x\"",
            ]
        );
    }

    #[test]
    fn live_diff_names_each_field_that_differs() {
        let mut want = spec();
        want.name = "renamed".into();
        want.snapshot_id = Some("snap".into());
        want.clone_id = Some("src".into());
        want.capacity_min = Some(1);
        want.capabilities.push(VolumeCapability {
            access_mode: "multi-node-reader-only".into(),
            attachment_mode: "file-system".into(),
        });
        want.context = BTreeMap::from([("zone".to_string(), "a".to_string())]);
        want.mount_options = Some(crate::desired::MountOptions {
            fs_type: "ext4".into(),
            mount_flags: Vec::new(),
        });
        let mut have = live();
        have.plugin_id = "other".into();
        have.parameters.insert("gone".into(), "z".into());
        let lines = diff_against_live(&want, &have);
        assert_eq!(
            lines,
            [
                "  +/- Name: \"glusterfs_overseerr_config\" => \"renamed\"",
                "  +/- PluginID: \"other\" => \"glusterfs\"",
                "  +/- RequestedCapacityMin: \"104857600\" => \"1\"",
                "  +/- SnapshotID: \"\" => \"snap\"",
                "  +/- CloneID: \"\" => \"src\"",
                "  +/- RequestedCapabilities: [(\"single-node-writer\", \"file-system\")] => \
                 [(\"multi-node-reader-only\", \"file-system\"), (\"single-node-writer\", \"file-system\")]",
                "  -   Parameters[gone]: \"z\"",
                "  +   Context[zone]: \"a\"",
                "  +/- MountOptions.FSType: \"\" => \"ext4\"",
            ]
        );
    }
}
