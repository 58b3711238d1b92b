//! Watching Consul config entries: one `GET /v1/config/:kind` list per kind in use (blocking
//! after the first), kept as the snapshot's `config_entries`.

use std::collections::HashMap;

use super::{Key, LiveSnapshot};
use crate::providers::consul::{ConfigEntry, ConsulClient, ConsulError, Indexed, QueryOptions};

/// List one kind's entries.
pub(super) async fn list(
    consul: ConsulClient,
    kind: String,
    query: QueryOptions,
) -> Result<Indexed<Vec<ConfigEntry>>, ConsulError> {
    consul.list_config_entries(&kind, query).await
}

/// What one kind's list changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Folded {
    /// The kind's first list: the snapshot may have become ready.
    pub first: bool,
    /// The entries added, changed or removed.
    pub changed: Vec<Key>,
}

/// Fold one kind's list into the snapshot.
pub(super) fn fold(
    snapshot: &mut LiveSnapshot,
    kind: &str,
    index: u64,
    entries: Vec<ConfigEntry>,
) -> Folded {
    let mut listed: HashMap<Key, ConfigEntry> = entries
        .into_iter()
        .map(|e| ((kind.to_string(), e.name().to_string()), e))
        .collect();
    let mut changed: Vec<Key> = listed
        .iter()
        .filter(|(key, e)| snapshot.config_entries.get(*key) != Some(*e))
        .map(|(key, _)| key.clone())
        .collect();
    changed.extend(
        snapshot
            .config_entries
            .keys()
            .filter(|key| key.0 == kind && !listed.contains_key(*key))
            .cloned(),
    );
    let first = snapshot.config_kinds_ready.insert(kind.to_string());
    // Only what changed is replaced: an unchanged entry stays shared with the snapshots that
    // cycles still hold, and the copy just parsed is dropped (a first sync of 1,000 apps lists
    // its kind after each write: replacing all 1,000 each time kept several copies alive).
    for key in &changed {
        match listed.remove(key) {
            Some(entry) => {
                snapshot.config_entries.insert(key.clone(), entry);
            }
            None => {
                snapshot.config_entries.remove(key);
            }
        }
    }
    snapshot.config_kinds_index.insert(kind.to_string(), index);
    // Writes this list has seen are the list's to tell from now on.
    snapshot
        .config_written
        .retain(|(k, _), (written, _)| k != kind || *written > index);
    changed.sort();
    Folded { first, changed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_kinds_list_replaces_only_that_kind_and_names_the_entries_that_changed() {
        let web = ConfigEntry(json!({"Kind": "service-defaults", "Name": "web", "ModifyIndex": 5}));
        let db = ConfigEntry(json!({"Kind": "service-intentions", "Name": "db", "ModifyIndex": 6}));
        let key = |kind: &str, name: &str| (kind.to_string(), name.to_string());
        let mut snapshot = LiveSnapshot::default();
        let folded = fold(&mut snapshot, "service-intentions", 6, vec![db]);
        assert!(folded.first);
        assert_eq!(folded.changed, vec![key("service-intentions", "db")]);
        let folded = fold(&mut snapshot, "service-defaults", 5, vec![web.clone()]);
        assert_eq!(
            folded,
            Folded {
                first: true,
                changed: vec![key("service-defaults", "web")]
            }
        );
        assert!(snapshot.config_entry("service-defaults", "web").is_some());
        assert_eq!(
            fold(&mut snapshot, "service-defaults", 7, vec![web.clone()]),
            Folded::default(),
            "the same list again is no news"
        );
        assert_eq!(
            snapshot.config_kinds_index.get("service-defaults"),
            Some(&7)
        );
        let edited = ConfigEntry(
            json!({"Kind": "service-defaults", "Name": "web", "ModifyIndex": 8, "Protocol": "http"}),
        );
        assert_eq!(
            fold(&mut snapshot, "service-defaults", 8, vec![edited]).changed,
            vec![key("service-defaults", "web")]
        );
        assert_eq!(
            fold(&mut snapshot, "service-defaults", 9, Vec::new()).changed,
            vec![key("service-defaults", "web")],
            "web deleted"
        );
        assert!(snapshot.config_entry("service-defaults", "web").is_none());
        assert!(snapshot.config_entry("service-intentions", "db").is_some());
    }

    #[test]
    fn a_list_forgets_the_writes_it_has_seen() {
        let mut snapshot = LiveSnapshot::default();
        let now = std::time::Instant::now();
        snapshot
            .config_written
            .insert(("service-defaults".into(), "web".into()), (10, now));
        snapshot
            .config_written
            .insert(("service-defaults".into(), "api".into()), (12, now));
        snapshot
            .config_written
            .insert(("service-intentions".into(), "web".into()), (3, now));
        fold(&mut snapshot, "service-defaults", 11, Vec::new());
        let left: Vec<_> = snapshot
            .config_written
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(
            left,
            vec![
                ("service-defaults".to_string(), "api".to_string()),
                ("service-intentions".to_string(), "web".to_string())
            ]
        );
    }
}
