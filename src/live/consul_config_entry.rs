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

/// Fold one kind's list into the snapshot; whether any entry of that kind changed.
pub(super) fn fold(
    snapshot: &mut LiveSnapshot,
    kind: &str,
    index: u64,
    entries: Vec<ConfigEntry>,
) -> bool {
    let listed: HashMap<Key, ConfigEntry> = entries
        .into_iter()
        .map(|e| ((kind.to_string(), e.name().to_string()), e))
        .collect();
    let before: HashMap<&Key, &ConfigEntry> = snapshot
        .config_entries
        .iter()
        .filter(|((k, _), _)| k == kind)
        .collect();
    let changed = !snapshot.config_kinds_ready.contains(kind)
        || before.len() != listed.len()
        || listed.iter().any(|(key, e)| before.get(key) != Some(&e));
    snapshot.config_entries.retain(|(k, _), _| k != kind);
    snapshot.config_entries.extend(listed);
    snapshot.config_kinds_index.insert(kind.to_string(), index);
    snapshot.config_kinds_ready.insert(kind.to_string());
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_kinds_list_replaces_only_that_kind_and_is_news_only_when_an_entry_changed() {
        let web = ConfigEntry(json!({"Kind": "service-defaults", "Name": "web", "ModifyIndex": 5}));
        let db = ConfigEntry(json!({"Kind": "service-intentions", "Name": "db", "ModifyIndex": 6}));
        let mut snapshot = LiveSnapshot::default();
        assert!(fold(&mut snapshot, "service-intentions", 6, vec![db]));
        assert!(fold(
            &mut snapshot,
            "service-defaults",
            5,
            vec![web.clone()]
        ));
        assert!(snapshot.config_entry("service-defaults", "web").is_some());
        assert!(!fold(&mut snapshot, "service-defaults", 7, vec![web]));
        assert_eq!(
            snapshot.config_kinds_index.get("service-defaults"),
            Some(&7)
        );
        assert!(
            fold(&mut snapshot, "service-defaults", 8, Vec::new()),
            "web deleted"
        );
        assert!(snapshot.config_entry("service-defaults", "web").is_none());
        assert!(snapshot.config_entry("service-intentions", "db").is_some());
    }
}
