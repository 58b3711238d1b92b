//! A config entry as Consul's JSON (kept as a `serde_json::Value`: every kind has its own schema),
//! with typed accessors, and the normalisation that makes a desired entry and the live one
//! comparable.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One config entry, any kind, exactly as Consul sends or takes it (PascalCase keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConfigEntry(pub Value);

impl ConfigEntry {
    /// `Kind` (`service-defaults`, `service-intentions`, …), `""` when missing.
    pub fn kind(&self) -> &str {
        self.str_field("Kind")
    }

    /// `Name`, `""` when missing.
    pub fn name(&self) -> &str {
        self.str_field("Name")
    }

    /// `Meta`, the user map where drover records ownership (`drover.app`).
    pub fn meta(&self) -> Option<&Map<String, Value>> {
        self.0.get("Meta").and_then(Value::as_object)
    }

    /// One `Meta` value.
    pub fn meta_value(&self, key: &str) -> Option<&str> {
        self.meta()?.get(key)?.as_str()
    }

    /// `CreateIndex` (0 on an entry that was never stored).
    pub fn create_index(&self) -> u64 {
        self.0
            .get("CreateIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    /// `ModifyIndex`: what a `cas` write or delete must name.
    pub fn modify_index(&self) -> u64 {
        self.0
            .get("ModifyIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    /// The JSON body.
    pub fn body(&self) -> &Value {
        &self.0
    }

    fn str_field(&self, key: &str) -> &str {
        self.0.get(key).and_then(Value::as_str).unwrap_or("")
    }
}

/// Fields Consul maintains itself on every entry: never desired, never drift.
const SERVER_FIELDS: &[&str] = &["CreateIndex", "ModifyIndex", "Hash"];
/// Intention source fields Consul computes, or keeps only for intentions migrated from the
/// legacy API (read-only in the service-intentions reference).
const SOURCE_SERVER_FIELDS: &[&str] = &[
    "Precedence",
    "LegacyID",
    "LegacyMeta",
    "LegacyCreateTime",
    "LegacyUpdateTime",
];
/// Maps whose keys and values are user data: kept exactly as written.
const OPAQUE_MAPS: &[&str] = &["Meta", "Config", "Arguments"];

/// The form of an entry that a diff compares: what Consul adds or normalises on a write is
/// removed or normalised on both sides, so an entry drover wrote reads back equal.
/// `namespace` is the client's namespace (`CONSUL_NAMESPACE`), which the server fills in.
pub fn normalize_for_diff(entry: &Value, namespace: Option<&str>) -> Value {
    let mut out = drop_zero_values(entry.clone());
    let Value::Object(map) = &mut out else {
        return out;
    };
    for field in SERVER_FIELDS {
        map.remove(*field);
    }
    drop_default_scope(map, namespace);
    let kind = map
        .get("Kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    // The two singletons get their only legal name when it is left out.
    let singleton = match kind.as_str() {
        "proxy-defaults" => Some("global"),
        "mesh" => Some("mesh"),
        _ => None,
    };
    if let Some(name) = singleton {
        map.entry("Name").or_insert_with(|| Value::from(name));
    }
    if kind == "service-defaults"
        && let Some(Value::String(protocol)) = map.get_mut("Protocol")
    {
        *protocol = protocol.to_ascii_lowercase();
    }
    if kind == "service-intentions" {
        let entry_namespace = map
            .get("Namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(Value::Array(sources)) = map.get_mut("Sources") {
            for source in sources.iter_mut() {
                if let Value::Object(source) = source {
                    normalize_source(source, entry_namespace.as_deref().or(namespace));
                }
            }
            // Consul re-sorts sources by precedence; they are a set keyed by who the source is.
            sources.sort_by_key(source_key);
        }
    }
    out
}

fn normalize_source(source: &mut Map<String, Value>, namespace: Option<&str>) {
    for field in SOURCE_SERVER_FIELDS {
        source.remove(*field);
    }
    if source.get("Type").and_then(Value::as_str) == Some("consul") {
        source.remove("Type");
    }
    // A source without a namespace inherits the destination's.
    drop_default_scope(source, namespace);
    if let Some(Value::Array(permissions)) = source.get_mut("Permissions") {
        for permission in permissions.iter_mut() {
            if let Some(Value::Array(methods)) = permission.pointer_mut("/HTTP/Methods") {
                for method in methods.iter_mut() {
                    if let Value::String(m) = method {
                        *m = m.to_ascii_uppercase();
                    }
                }
            }
        }
    }
}

fn source_key(source: &Value) -> Vec<String> {
    ["Peer", "SamenessGroup", "Partition", "Namespace", "Name"]
        .iter()
        .map(|k| {
            source
                .get(*k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// Enterprise answers `Namespace`/`Partition` `default` (or the request's namespace) where the
/// writer said nothing; Community Edition omits them.
fn drop_default_scope(map: &mut Map<String, Value>, namespace: Option<&str>) {
    for (key, implied) in [("Namespace", namespace), ("Partition", None)] {
        let value = map.get(key).and_then(Value::as_str);
        if value.is_some_and(|v| v == "default" || Some(v) == implied) {
            map.remove(key);
        }
    }
}

/// Consul's structs are Go structs with `omitempty`: an absent field and its zero value (`""`,
/// `0`, `false`, `[]`, `{}`, `null`) decode the same, and responses omit them. Opaque user maps
/// keep their contents, but an empty one is still dropped.
fn drop_zero_values(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter_map(|(k, v)| {
                    let v = if OPAQUE_MAPS.contains(&k.as_str()) {
                        v
                    } else {
                        drop_zero_values(v)
                    };
                    (!is_zero(&v)).then_some((k, v))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(drop_zero_values).collect()),
        other => other,
    }
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn same(desired: Value, live: Value) {
        assert_eq!(
            normalize_for_diff(&desired, None),
            normalize_for_diff(&live, None)
        );
    }

    #[test]
    fn accessors_read_the_pascal_case_fields() {
        let e = ConfigEntry(json!({"Kind": "service-defaults", "Name": "web",
            "Meta": {"drover.app": "media"}, "CreateIndex": 7, "ModifyIndex": 9}));
        assert_eq!((e.kind(), e.name()), ("service-defaults", "web"));
        assert_eq!(e.meta_value("drover.app"), Some("media"));
        assert_eq!((e.create_index(), e.modify_index()), (7, 9));
        let bare = ConfigEntry(json!({"Kind": "mesh"}));
        assert_eq!((bare.name(), bare.modify_index()), ("", 0));
        assert!(bare.meta().is_none());
    }

    #[test]
    fn server_indexes_and_hash_are_not_drift() {
        // GET returns CreateIndex and ModifyIndex (api-facts §2.3); current Consul also stores a
        // `Hash` of the entry (`json:",omitempty" hash:"ignore"` on every config entry struct).
        same(
            json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"}),
            json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http",
                   "CreateIndex": 10, "ModifyIndex": 12, "Hash": 8734659834534u64}),
        );
    }

    #[test]
    fn service_defaults_protocol_is_compared_lower_case() {
        // "Protocol is lower-cased on write" (api-facts §2.3).
        same(
            json!({"Kind": "service-defaults", "Name": "web", "Protocol": "HTTP"}),
            json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"}),
        );
        // Any other difference still shows.
        assert_ne!(
            normalize_for_diff(
                &json!({"Kind": "service-defaults", "Name": "web", "Protocol": "grpc"}),
                None
            ),
            normalize_for_diff(
                &json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"}),
                None
            )
        );
    }

    #[test]
    fn intention_precedence_type_legacy_fields_and_source_order_are_not_drift() {
        // ServiceIntentionsConfigEntry.normalize: Type defaults to "consul", Precedence is
        // computed, sources are stable-sorted by descending precedence, HTTP methods are
        // upper-cased; LegacyID/LegacyMeta/LegacyCreateTime/LegacyUpdateTime are read-only
        // (only intentions migrated from the legacy API carry them).
        let desired = json!({"Kind": "service-intentions", "Name": "minio", "Sources": [
            {"Name": "*", "Action": "deny"},
            {"Name": "overseerr", "Action": "allow"},
            {"Name": "web", "Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/", "Methods": ["get"]}}]}
        ]});
        let live = json!({"Kind": "service-intentions", "Name": "minio", "Sources": [
            {"Name": "overseerr", "Action": "allow", "Precedence": 9, "Type": "consul",
             "LegacyID": "5f0e…", "LegacyMeta": {"a": "b"},
             "LegacyCreateTime": "2020-01-01T00:00:00Z", "LegacyUpdateTime": "2020-01-01T00:00:00Z"},
            {"Name": "web", "Precedence": 9, "Type": "consul",
             "Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/", "Methods": ["GET"]}}]},
            {"Name": "*", "Action": "deny", "Precedence": 8, "Type": "consul"}
        ], "CreateIndex": 5, "ModifyIndex": 5});
        same(desired, live);
        // A changed action is drift.
        let a = json!({"Kind": "service-intentions", "Name": "minio", "Sources": [{"Name": "web", "Action": "allow"}]});
        let b = json!({"Kind": "service-intentions", "Name": "minio", "Sources": [{"Name": "web", "Action": "deny"}]});
        assert_ne!(normalize_for_diff(&a, None), normalize_for_diff(&b, None));
    }

    #[test]
    fn default_namespace_and_partition_are_not_drift() {
        // Enterprise fills Namespace/Partition ("default", or the request's namespace) and a
        // source inherits the destination's namespace; Community Edition omits both.
        same(
            json!({"Kind": "service-intentions", "Name": "db", "Sources": [{"Name": "web", "Action": "allow"}]}),
            json!({"Kind": "service-intentions", "Name": "db", "Namespace": "default", "Partition": "default",
                   "Sources": [{"Name": "web", "Action": "allow", "Namespace": "default", "Partition": "default"}]}),
        );
        let desired = json!({"Kind": "service-defaults", "Name": "web"});
        let live = json!({"Kind": "service-defaults", "Name": "web", "Namespace": "media"});
        assert_eq!(
            normalize_for_diff(&desired, Some("media")),
            normalize_for_diff(&live, Some("media"))
        );
        // Another namespace than the client's is a real difference.
        assert_ne!(
            normalize_for_diff(&desired, None),
            normalize_for_diff(&live, None)
        );
    }

    #[test]
    fn omitted_zero_values_and_singleton_names_are_not_drift() {
        // Consul's structs use omitempty: an empty Meta, "" or false reads back absent; the
        // devstack (like Consul) fills empty TransparentProxy/MeshGateway/Expose objects.
        same(
            json!({"Kind": "service-defaults", "Name": "web", "Meta": {}, "ExternalSNI": "",
                   "BalanceInboundConnections": ""}),
            json!({"Kind": "service-defaults", "Name": "web", "Protocol": "",
                   "TransparentProxy": {}, "MeshGateway": {}, "Expose": {}}),
        );
        // proxy-defaults and mesh take their only legal names when left out.
        same(
            json!({"Kind": "proxy-defaults", "Config": {"protocol": "http"}}),
            json!({"Kind": "proxy-defaults", "Name": "global", "Config": {"protocol": "http"}}),
        );
        // Opaque maps keep their zero values: a Config key set to 0 is user data.
        let with_zero = json!({"Kind": "proxy-defaults", "Name": "global", "Config": {"max": 0}});
        assert_eq!(normalize_for_diff(&with_zero, None)["Config"]["max"], 0);
    }
}
