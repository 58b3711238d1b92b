//! Planning a `consul_config_entry`: the entry as `PUT /v1/config` takes it (with drover's
//! ownership in `Meta`), triage from the watched list and the marker, and a diff of the two
//! entries after [`normalize_for_diff`] (what Consul adds or normalises is never a difference).
//! The live entry comes from the watcher's list: planning costs no Consul request.

use std::collections::BTreeMap;

use serde_json::Value;

use super::render::{REDACTED, Redaction};
use super::{AppliedMarker, Change, Payload, Reason, Verdict};
use crate::desired::{ConfigEntrySpec, ResourceId};
use crate::live::LiveSnapshot;
use crate::providers::consul::{ConfigEntry, normalize_for_diff};

/// The `Meta` key naming the app that owns an entry (as on jobs).
pub const OWNER_META_KEY: &str = "drover.app";

/// The entry drover writes: the spec's body with `Meta["drover.app"] = app`.
pub fn desired_entry(app: &str, spec: &ConfigEntrySpec) -> Value {
    let mut body = spec.body.clone();
    if let Value::Object(map) = &mut body {
        let meta = map
            .entry("Meta")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(serde_json::Map::new());
        }
        if let Value::Object(meta) = meta {
            meta.insert(OWNER_META_KEY.to_string(), Value::from(app));
        }
    }
    body
}

/// Whether the live entry equals the desired one, once both are normalised.
pub fn matches(desired: &Value, live: &ConfigEntry) -> bool {
    normalize_for_diff(desired, None) == normalize_for_diff(live.body(), None)
}

/// Triage from the watched list and the marker: absent → create; present and never applied →
/// suspect (adoption); Git or the live `ModifyIndex` moved since the marker → suspect; else
/// unchanged. The list holds whole entries, so a suspect that matches is confirmed, not written.
///
/// Read your writes: a list older than drover's own recent write of the entry (see
/// [`LiveSnapshot::config_unlisted_write`]) cannot say the entry is missing or changed; it
/// stands as written until a list that saw the write arrives (with a thousand entries written at
/// once the list lags the writes, and each "missing" was healed by another write).
pub fn triage(
    id: &ResourceId,
    spec_hash: &str,
    live: &LiveSnapshot,
    marker: Option<&AppliedMarker>,
) -> (Verdict, Reason) {
    let listed_before_our_write =
        live.config_unlisted_write(&id.scope, &id.name)
            .is_some_and(|index| {
                marker.is_some_and(|m| m.spec_hash == spec_hash && m.live_index == index)
            });
    if listed_before_our_write {
        return (Verdict::Unchanged, Reason::InSync);
    }
    match (live.config_entry(&id.scope, &id.name), marker) {
        (None, None) => (Verdict::Create, Reason::New),
        (None, Some(_)) => (Verdict::Create, Reason::Missing),
        (Some(_), None) => (Verdict::Suspect, Reason::Unmanaged),
        (Some(_), Some(m)) if m.spec_hash != spec_hash => (Verdict::Suspect, Reason::GitChanged),
        (Some(e), Some(m)) if e.modify_index() != m.live_index => {
            (Verdict::Suspect, Reason::LiveChanged)
        }
        (Some(_), Some(_)) => (Verdict::Unchanged, Reason::InSync),
    }
}

/// Step 2 from the live list: create with `cas=0`, update with `cas` = the live `ModifyIndex`,
/// or confirm an entry that already matches.
pub(super) fn explain(
    app: &str,
    id: &ResourceId,
    spec: &ConfigEntrySpec,
    live: Option<&ConfigEntry>,
    redaction: &Redaction,
) -> (Change, Payload) {
    let entry = desired_entry(app, spec);
    let title = format!("Config Entry: \"{}/{}\"", id.scope, id.name);
    match live {
        None => {
            let lines = diff_lines(&Value::Null, &normalize_for_diff(&entry, None), redaction);
            let diff = format!("+ {title}\n{}\n", lines.join("\n"));
            (
                Change::Create { diff },
                Payload::ConsulConfigEntry { entry, cas: 0 },
            )
        }
        Some(live) if matches(&entry, live) => (
            Change::Unchanged,
            Payload::Confirm {
                live_index: live.modify_index(),
            },
        ),
        Some(live) => {
            let lines = diff_lines(
                &normalize_for_diff(live.body(), None),
                &normalize_for_diff(&entry, None),
                redaction,
            );
            let diff = format!("+/- {title}\n{}\n", lines.join("\n"));
            (
                Change::Update { diff },
                Payload::ConsulConfigEntry {
                    entry,
                    cas: live.modify_index(),
                },
            )
        }
    }
}

/// `nomad job plan`-style lines between two normalised entries: `+` added, `-` removed, `+/-`
/// edited, by field path (`Sources[0].Action`). Values whose own key looks secret (`redaction`)
/// show as `<redacted>`.
pub fn diff_lines(live: &Value, desired: &Value, redaction: &Redaction) -> Vec<String> {
    let (mut have, mut want) = (BTreeMap::new(), BTreeMap::new());
    flatten("", live, &mut have);
    flatten("", desired, &mut want);
    for (path, value) in have.iter_mut().chain(want.iter_mut()) {
        if redaction.hides_key(leaf_key(path)) {
            *value = format!("\"{REDACTED}\"");
        }
    }
    let mut lines = Vec::new();
    for (path, new) in &want {
        match have.get(path) {
            None => lines.push(format!("  +   {path}: {new}")),
            Some(old) if old != new => lines.push(format!("  +/- {path}: {old} => {new}")),
            Some(_) => {}
        }
    }
    for (path, old) in &have {
        if !want.contains_key(path) {
            lines.push(format!("  -   {path}: {old}"));
        }
    }
    lines
}

/// The last key of a path (`JWKS.Local.JWKS` → `JWKS`, `Meta[api-token]` → `api-token`).
fn leaf_key(path: &str) -> &str {
    let path = path.trim_end_matches(|c: char| c == ']' || c.is_ascii_digit() || c == '[');
    match path.strip_suffix(']') {
        Some(inner) => inner.rsplit('[').next().unwrap_or(inner),
        None => path.rsplit(['.', '[', ']']).next().unwrap_or(path),
    }
}

fn flatten(path: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let child = if path.is_empty() {
                    k.clone()
                } else if k.chars().all(|c| c.is_ascii_alphanumeric()) {
                    format!("{path}.{k}")
                } else {
                    format!("{path}[{k}]")
                };
                flatten(&child, v, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{path}[{i}]"), v, out);
            }
        }
        Value::Null => {}
        other => {
            out.insert(path.to_string(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::ResourceKind;
    use serde_json::json;

    fn spec(body: Value) -> ConfigEntrySpec {
        ConfigEntrySpec {
            kind: body["Kind"].as_str().unwrap_or_default().into(),
            name: body["Name"].as_str().unwrap_or_default().into(),
            body,
        }
    }

    fn id() -> ResourceId {
        ResourceId {
            kind: ResourceKind::ConsulConfigEntry,
            scope: "service-defaults".into(),
            name: "web".into(),
        }
    }

    #[test]
    fn the_desired_entry_carries_the_owner_in_meta_beside_the_users_meta() {
        let e = desired_entry(
            "media",
            &spec(json!({"Kind": "service-defaults", "Name": "web", "Meta": {"team": "a"}})),
        );
        assert_eq!(e["Meta"], json!({"team": "a", "drover.app": "media"}));
        let e = desired_entry(
            "media",
            &spec(json!({"Kind": "service-defaults", "Name": "web"})),
        );
        assert_eq!(e["Meta"]["drover.app"], "media");
    }

    fn marker(hash: &str, index: u64) -> AppliedMarker {
        AppliedMarker {
            spec_hash: hash.into(),
            live_index: index,
            revision: "r".into(),
        }
    }

    #[test]
    fn triage_follows_presence_the_marker_and_the_modify_index() {
        let mut live = LiveSnapshot::default();
        // A list that saw every write below.
        live.config_kinds_index.insert("service-defaults".into(), 9);
        assert_eq!(
            triage(&id(), "h", &live, None),
            (Verdict::Create, Reason::New)
        );
        assert_eq!(
            triage(&id(), "h", &live, Some(&marker("h", 5))),
            (Verdict::Create, Reason::Missing)
        );
        live.config_entries.insert(
            ("service-defaults".into(), "web".into()),
            ConfigEntry(json!({"Kind": "service-defaults", "Name": "web", "ModifyIndex": 5})),
        );
        assert_eq!(
            triage(&id(), "h", &live, None),
            (Verdict::Suspect, Reason::Unmanaged)
        );
        assert_eq!(
            triage(&id(), "h", &live, Some(&marker("old", 5))),
            (Verdict::Suspect, Reason::GitChanged)
        );
        assert_eq!(
            triage(&id(), "h", &live, Some(&marker("h", 4))),
            (Verdict::Suspect, Reason::LiveChanged)
        );
        assert_eq!(
            triage(&id(), "h", &live, Some(&marker("h", 5))),
            (Verdict::Unchanged, Reason::InSync)
        );
    }

    #[test]
    fn a_list_older_than_drovers_write_neither_misses_nor_changes_the_entry() {
        let mut live = LiveSnapshot::default();
        live.config_kinds_index
            .insert("service-defaults".into(), 11);
        let key = ("service-defaults".to_string(), "web".to_string());
        // Before any write of this process, the list is believed.
        assert_eq!(
            triage(&id(), "h", &live, Some(&marker("h", 12))),
            (Verdict::Create, Reason::Missing),
            "a marker alone (another process's write, or Consul's indexes restarted) proves nothing"
        );
        // This process wrote it at ModifyIndex 12; the last list (index 11) was taken before.
        live.config_written
            .insert(key.clone(), (12, std::time::Instant::now()));
        assert_eq!(
            triage(&id(), "h", &live, Some(&marker("h", 12))),
            (Verdict::Unchanged, Reason::InSync),
            "not missing: the list has not seen the write"
        );
        live.config_entries.insert(
            ("service-defaults".into(), "web".into()),
            ConfigEntry(json!({"Kind": "service-defaults", "Name": "web", "ModifyIndex": 7})),
        );
        assert_eq!(
            triage(&id(), "h", &live, Some(&marker("h", 12))),
            (Verdict::Unchanged, Reason::InSync),
            "not changed: the list holds the version before the write"
        );
        // Git changed since the write: planned as usual.
        assert_eq!(
            triage(&id(), "h2", &live, Some(&marker("h", 12))),
            (Verdict::Suspect, Reason::GitChanged)
        );
        // A list that saw the write (index 12) and no entry: it was deleted since.
        live.config_kinds_index
            .insert("service-defaults".into(), 12);
        live.config_entries.clear();
        assert_eq!(
            triage(&id(), "h", &live, Some(&marker("h", 12))),
            (Verdict::Create, Reason::Missing)
        );
        // A write long ago that no list ever saw (Consul's indexes restarted): believed no more.
        live.config_kinds_index.insert("service-defaults".into(), 3);
        let long_ago = std::time::Instant::now()
            .checked_sub(crate::live::READ_YOUR_WRITES * 2)
            .unwrap_or_else(std::time::Instant::now);
        live.config_written.insert(key, (12, long_ago));
        assert_eq!(
            triage(&id(), "h", &live, Some(&marker("h", 12))),
            (Verdict::Create, Reason::Missing)
        );
    }

    #[test]
    fn explain_creates_with_cas_zero_updates_with_the_live_index_and_confirms_a_match() {
        let s = spec(json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"}));
        let (change, payload) = explain("media", &id(), &s, None, &Redaction::default());
        assert_eq!(change.verb(), "create");
        assert!(matches!(payload, Payload::ConsulConfigEntry { cas: 0, .. }));
        let same = ConfigEntry(json!({"Kind": "service-defaults", "Name": "web",
            "Protocol": "http", "Meta": {"drover.app": "media"}, "ModifyIndex": 9}));
        assert_eq!(
            explain("media", &id(), &s, Some(&same), &Redaction::default()),
            (Change::Unchanged, Payload::Confirm { live_index: 9 })
        );
        let drifted = ConfigEntry(json!({"Kind": "service-defaults", "Name": "web",
            "Protocol": "grpc", "Meta": {"drover.app": "media"}, "ModifyIndex": 11}));
        let (change, payload) = explain("media", &id(), &s, Some(&drifted), &Redaction::default());
        assert!(matches!(
            payload,
            Payload::ConsulConfigEntry { cas: 11, .. }
        ));
        match change {
            Change::Update { diff } => {
                assert!(
                    diff.contains("+/- Protocol: \"grpc\" => \"http\""),
                    "{diff}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn values_under_secret_looking_keys_are_redacted_in_the_diff() {
        let lines = diff_lines(
            &Value::Null,
            &json!({"Meta": {"api-token": "s3cr3t", "team": "a"},
                    "Providers": [{"ClientSecret": "hunter2"}]}),
            &Redaction::default(),
        );
        let text = lines.join("\n");
        assert!(
            !text.contains("s3cr3t") && !text.contains("hunter2"),
            "{text}"
        );
        assert!(text.contains("Meta[api-token]: \"<redacted>\""), "{text}");
        assert!(text.contains("Meta.team: \"a\""), "{text}");
        assert_eq!(leaf_key("JWKS.Local.JWKS"), "JWKS");
        assert_eq!(leaf_key("Sources[0].Action"), "Action");
    }

    #[test]
    fn the_diff_shows_added_removed_and_edited_fields_by_path() {
        let lines = diff_lines(
            &json!({"Sources": [{"Name": "a", "Action": "allow"}], "Protocol": "tcp"}),
            &json!({"Sources": [{"Name": "a", "Action": "deny"}], "Mode": "direct"}),
            &Redaction::default(),
        );
        assert_eq!(
            lines,
            [
                "  +   Mode: \"direct\"",
                "  +/- Sources[0].Action: \"allow\" => \"deny\"",
                "  -   Protocol: \"tcp\"",
            ]
        );
    }
}
