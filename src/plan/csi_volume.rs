//! Planning a `csi_volume`: the request body Nomad takes, triage, and a field diff against live.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{AppliedMarker, Reason, Verdict};
use crate::desired::{CsiVolumeSpec, ResourceId, VolumeMode};
use crate::live::LiveSnapshot;

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
pub fn request_body(spec: &CsiVolumeSpec) -> Value {
    let capabilities: Vec<Value> = spec
        .capabilities
        .iter()
        .map(|c| json!({"AccessMode": c.access_mode, "AttachmentMode": c.attachment_mode}))
        .collect();
    let first = spec.capabilities.first();
    let mut body = json!({
        "ID": spec.id,
        "Name": spec.name,
        "Namespace": spec.namespace,
        "PluginID": spec.plugin_id,
        "RequestedCapacityMin": spec.capacity_min.unwrap_or(0),
        "RequestedCapacityMax": spec.capacity_max.unwrap_or(0),
        "RequestedCapabilities": capabilities,
        // An empty object rather than null avoids "can not update mount options while volume
        // is in use" on updates (as Terraform's provider does).
        "MountOptions": spec.mount_options.as_ref().map(|m| json!({"FSType": m.fs_type, "MountFlags": m.mount_flags})).unwrap_or_else(|| json!({})),
        "Parameters": spec.parameters,
        "Secrets": spec.secrets.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect::<BTreeMap<_, _>>(),
        "Context": spec.context,
        "SnapshotID": spec.snapshot_id.clone().unwrap_or_default(),
        "CloneID": spec.clone_id.clone().unwrap_or_default(),
        "AccessMode": first.map(|c| c.access_mode.clone()).unwrap_or_default(),
        "AttachmentMode": first.map(|c| c.attachment_mode.clone()).unwrap_or_default(),
    });
    if spec.mode == VolumeMode::Register
        && let Some(obj) = body.as_object_mut()
    {
        obj.insert(
            "ExternalID".into(),
            Value::String(spec.external_id.clone().unwrap_or_default()),
        );
    }
    body
}

/// Differences between the desired volume and the live one (`GET /v1/volume/csi/:id`), as
/// `nomad job plan`-style lines. Secrets and mount flags are never compared (GET redacts them).
pub fn diff_against_live(spec: &CsiVolumeSpec, live: &Value) -> Vec<String> {
    let desired = request_body(spec);
    let mut lines = Vec::new();
    for field in [
        "Name",
        "PluginID",
        "RequestedCapacityMin",
        "RequestedCapacityMax",
        "SnapshotID",
        "CloneID",
    ] {
        let want = &desired[field];
        let have = live.get(field).unwrap_or(&Value::Null);
        if !same_scalar(want, have) {
            lines.push(format!(
                "  +/- {field}: {} => {}",
                scalar_text(have),
                scalar_text(want)
            ));
        }
    }
    let caps = |v: &Value| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = v
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        (
                            c["AccessMode"].as_str().unwrap_or_default().to_string(),
                            c["AttachmentMode"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    };
    let (want_caps, have_caps) = (
        caps(&desired["RequestedCapabilities"]),
        caps(live.get("RequestedCapabilities").unwrap_or(&Value::Null)),
    );
    if want_caps != have_caps {
        lines.push(format!(
            "  +/- RequestedCapabilities: {have_caps:?} => {want_caps:?}"
        ));
    }
    for map in ["Parameters", "Context"] {
        let want = string_map(&desired[map]);
        let have = string_map(live.get(map).unwrap_or(&Value::Null));
        for (k, v) in &want {
            match have.get(k) {
                None => lines.push(format!("  +   {map}[{k}]: \"{v}\"")),
                Some(old) if old != v => {
                    lines.push(format!("  +/- {map}[{k}]: \"{old}\" => \"{v}\""))
                }
                _ => {}
            }
        }
        for (k, old) in &have {
            if !want.contains_key(k) {
                lines.push(format!("  -   {map}[{k}]: \"{old}\""));
            }
        }
    }
    let fs_want = desired["MountOptions"]["FSType"]
        .as_str()
        .unwrap_or_default();
    let fs_have = live
        .pointer("/MountOptions/FSType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if fs_want != fs_have {
        lines.push(format!(
            "  +/- MountOptions.FSType: \"{fs_have}\" => \"{fs_want}\""
        ));
    }
    lines
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn same_scalar(a: &Value, b: &Value) -> bool {
    let empty = |v: &Value| v.is_null() || v.as_str() == Some("") || v.as_u64() == Some(0);
    a == b || (empty(a) && empty(b))
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::Null => "\"\"".into(),
        Value::String(s) => format!("\"{s}\""),
        other => format!("\"{other}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{SecretString, VolumeCapability};

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
        let body = request_body(&spec());
        assert_eq!(body["RequestedCapacityMin"], 104857600);
        assert_eq!(body["RequestedCapacityMax"], 1073741824);
        assert_eq!(
            body["RequestedCapabilities"][0]["AccessMode"],
            "single-node-writer"
        );
        assert_eq!(body["AccessMode"], "single-node-writer");
        assert_eq!(body["MountOptions"], json!({}));
        assert!(body.get("ExternalID").is_none());
    }

    #[test]
    fn live_diff_ignores_redacted_secrets_and_reports_changes() {
        let mut live = request_body(&spec());
        live["Secrets"] = Value::Null;
        assert!(diff_against_live(&spec(), &live).is_empty());
        live["RequestedCapacityMax"] = json!(10);
        live["Parameters"] = json!({"share": "y"});
        let lines = diff_against_live(&spec(), &live);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines.iter().all(|l| !l.contains("hunter2")));
    }
}
