//! Config entries (agent/config_endpoint.go): PUT with `cas` answering bare `true`/`false`,
//! snake_case aliases, server-side normalization and validation as 500 text.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{ConfigRec, Inner, Params, block_on, json_read, text_error, with_index};
use crate::DevState;

type St = State<Arc<DevState>>;

/// The kinds this simulator stores.
const KINDS: &[&str] = &[
    "service-defaults",
    "service-intentions",
    "service-resolver",
    "service-router",
    "service-splitter",
    "proxy-defaults",
    "ingress-gateway",
    "terminating-gateway",
    "mesh",
    "api-gateway",
    "http-route",
    "tcp-route",
    "inline-certificate",
    "exported-services",
    "sameness-group",
    "jwt-provider",
];

/// Keys whose values are user maps (names as keys) or opaque config: their keys are kept.
const OPAQUE_KEYS: &[&str] = &["Meta", "Config", "Arguments", "Subsets", "Failover"];
/// Keys whose children are user-named maps whose *values* still get their keys converted.
const NAMED_MAP_KEYS: &[&str] = &["Subsets", "Failover"];

/// `snake_case` (or lower-case) key → PascalCase, with Consul's initialisms.
fn pascal(key: &str) -> String {
    if !key.contains('_') && key.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
        return key.to_string();
    }
    key.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| match p.to_ascii_lowercase().as_str() {
            "id" => "ID".to_string(),
            "http" => "HTTP".to_string(),
            "grpc" => "GRPC".to_string(),
            "tcp" => "TCP".to_string(),
            "tls" => "TLS".to_string(),
            "sni" => "SNI".to_string(),
            "jwt" => "JWT".to_string(),
            "ttl" => "TTL".to_string(),
            "ip" => "IP".to_string(),
            "ips" => "IPs".to_string(),
            "acl" => "ACL".to_string(),
            "url" => "URL".to_string(),
            _ => {
                let mut c = p.chars();
                match c.next() {
                    Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                    None => String::new(),
                }
            }
        })
        .collect()
}

fn convert_keys(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = pascal(&k);
                let value = if NAMED_MAP_KEYS.contains(&key.as_str()) {
                    match v {
                        Value::Object(m) => Value::Object(
                            m.into_iter().map(|(n, x)| (n, convert_keys(x))).collect(),
                        ),
                        other => other,
                    }
                } else if OPAQUE_KEYS.contains(&key.as_str()) {
                    v
                } else {
                    convert_keys(v)
                };
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(convert_keys).collect()),
        other => other,
    }
}

fn s<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

fn is_http_like(protocol: &str) -> bool {
    matches!(protocol, "http" | "http2" | "grpc")
}

/// Whether the service's intentions entry has any source with L7 permissions.
fn has_l7_intentions(inner: &Inner, service: &str) -> bool {
    inner
        .config
        .get(&("service-intentions".to_string(), service.to_string()))
        .and_then(|e| e.body.get("Sources"))
        .and_then(Value::as_array)
        .is_some_and(|sources| {
            sources.iter().any(|src| {
                src.get("Permissions")
                    .and_then(Value::as_array)
                    .is_some_and(|p| !p.is_empty())
            })
        })
}

/// The destination's protocol: its service-defaults, else proxy-defaults' `Config.protocol`, else tcp.
fn protocol_of(inner: &Inner, service: &str) -> String {
    if let Some(sd) = inner
        .config
        .get(&("service-defaults".to_string(), service.to_string()))
    {
        let p = s(&sd.body, "Protocol");
        if !p.is_empty() {
            return p.to_ascii_lowercase();
        }
    }
    if let Some(pd) = inner
        .config
        .get(&("proxy-defaults".to_string(), "global".to_string()))
        && let Some(p) = pd
            .body
            .get("Config")
            .and_then(|c| c.get("protocol"))
            .and_then(Value::as_str)
    {
        return p.to_ascii_lowercase();
    }
    "tcp".to_string()
}

/// Intention precedence without namespaces: exact→exact 9, `*`→exact 8, exact→`*` 6, `*`→`*` 5.
fn precedence(source: &str, destination: &str) -> u64 {
    match (destination == "*", source == "*") {
        (false, false) => 9,
        (false, true) => 8,
        (true, false) => 6,
        (true, true) => 5,
    }
}

const HTTP_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

fn partial_wildcard(name: &str) -> bool {
    name != "*" && name.contains('*')
}

/// One L7 permission, after normalization (methods upper-cased), validated in Consul's order.
fn check_permission(i: usize, j: usize, p: &mut Map<String, Value>) -> Result<(), String> {
    let pa = s(p, "Action");
    if pa != "allow" && pa != "deny" {
        return Err(format!(
            "Sources[{i}].Permissions[{j}].Action must be set to 'allow' or 'deny'"
        ));
    }
    let prefix = format!("Sources[{i}].Permissions[{j}].HTTP");
    let Some(Value::Object(http)) = p.get_mut("HTTP") else {
        return Err(format!("{prefix} is required"));
    };
    let mut path_parts = 0;
    for key in ["PathExact", "PathPrefix"] {
        let v = s(http, key);
        if !v.is_empty() {
            path_parts += 1;
            if !v.starts_with('/') {
                return Err(format!("{prefix}.{key} doesn't start with '/': {v:?}"));
            }
        }
    }
    if !s(http, "PathRegex").is_empty() {
        path_parts += 1;
    }
    if path_parts > 1 {
        return Err(format!(
            "{prefix} should only contain at most one of PathExact, PathPrefix, or PathRegex"
        ));
    }
    let mut parts = path_parts;
    if let Some(Value::Array(headers)) = http.get("Header") {
        for (k, h) in headers.iter().enumerate() {
            if h.get("Name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                return Err(format!("{prefix}.Header[{k}] missing required Name field"));
            }
            parts += 1;
        }
    }
    if let Some(Value::Array(methods)) = http.get_mut("Methods")
        && !methods.is_empty()
    {
        let mut seen: Vec<String> = Vec::new();
        for m in methods.iter_mut() {
            let upper = m.as_str().unwrap_or("").to_ascii_uppercase();
            if !HTTP_METHODS.contains(&upper.as_str()) {
                return Err(format!(
                    "{prefix}.Methods contains an invalid method {upper:?}"
                ));
            }
            if seen.contains(&upper) {
                return Err(format!(
                    "{prefix}.Methods contains {upper:?} more than once"
                ));
            }
            seen.push(upper.clone());
            *m = json!(upper);
        }
        parts += 1;
    }
    if parts == 0 {
        return Err(format!("{prefix} should not be empty"));
    }
    Ok(())
}

/// Normalize (Type, Precedence, upper-cased methods, stable sort) and validate in the order of
/// Consul's `ServiceIntentionsConfigEntry.validate`, then the L7 protocol check.
fn normalize_intentions(inner: &Inner, entry: &mut Map<String, Value>) -> Result<(), String> {
    let name = s(entry, "Name").to_string();
    if partial_wildcard(&name) {
        return Err("Name: wildcard character '*' cannot be used with partial values".into());
    }
    let sources = match entry.get_mut("Sources") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => return Err("At least one source is required".into()),
    };
    let mut seen = Vec::new();
    let mut has_l7 = false;
    for (i, src) in sources.iter_mut().enumerate() {
        let Value::Object(src) = src else {
            return Err(format!("Sources[{i}] must be an object"));
        };
        if s(src, "Type").is_empty() {
            src.insert("Type".into(), json!("consul"));
        }
        let sname = s(src, "Name").to_string();
        src.insert("Precedence".into(), json!(precedence(&sname, &name)));
        if sname.is_empty() {
            return Err(format!("Sources[{i}].Name is required"));
        }
        if partial_wildcard(&sname) {
            return Err(format!(
                "Sources[{i}].Name: wildcard character '*' cannot be used with partial values"
            ));
        }
        let action = s(src, "Action").to_string();
        let perm_count = src
            .get("Permissions")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if perm_count == 0 && action != "allow" && action != "deny" {
            return Err(format!(
                "Sources[{i}].Action must be set to 'allow' or 'deny'"
            ));
        }
        if perm_count > 0 && !action.is_empty() {
            return Err(format!(
                "Sources[{i}].Action must be omitted if Permissions are specified"
            ));
        }
        if name == "*" && perm_count > 0 {
            return Err(format!(
                "Sources[{i}].Permissions cannot be specified on intentions with wildcarded destinations"
            ));
        }
        if s(src, "Type") != "consul" {
            return Err(format!("Sources[{i}].Type must be set to 'consul'"));
        }
        if let Some(Value::Array(ps)) = src.get_mut("Permissions") {
            for (j, p) in ps.iter_mut().enumerate() {
                let Value::Object(p) = p else {
                    return Err(format!("Sources[{i}].Permissions[{j}] must be an object"));
                };
                check_permission(i, j, p)?;
            }
        }
        has_l7 |= perm_count > 0;
        let key = (
            s(src, "Peer").to_string(),
            s(src, "SamenessGroup").to_string(),
            sname.clone(),
        );
        if seen.contains(&key) {
            return Err(if !key.0.is_empty() {
                format!(
                    "Sources[{i}] defines peer({:?}) {sname:?} more than once",
                    key.0
                )
            } else if !key.1.is_empty() {
                format!(
                    "Sources[{i}] defines sameness-group({:?}) {sname:?} more than once",
                    key.1
                )
            } else {
                format!("Sources[{i}] defines {sname:?} more than once")
            });
        }
        seen.push(key);
    }
    // Stable sort: highest precedence first, original order otherwise.
    sources.sort_by_key(|src| {
        std::cmp::Reverse(src.get("Precedence").and_then(Value::as_u64).unwrap_or(0))
    });
    if has_l7 {
        let protocol = protocol_of(inner, &name);
        if !is_http_like(&protocol) {
            return Err(format!(
                "service {name:?} has protocol {protocol:?}, which is incompatible with L7 intentions permissions"
            ));
        }
    }
    Ok(())
}

/// Decode, convert aliases, validate and normalize an entry. `Err((status, text))`.
pub(super) fn prepare(
    inner: &Inner,
    body: &[u8],
) -> Result<Map<String, Value>, (StatusCode, String)> {
    let bad = |m: String| {
        (
            StatusCode::BAD_REQUEST,
            format!("Request decoding failed: {m}"),
        )
    };
    let raw: Value = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    let Value::Object(mut entry) = convert_keys(raw) else {
        return Err(bad("body is not a JSON object".into()));
    };
    entry.remove("CreateIndex");
    entry.remove("ModifyIndex");
    match entry.get("Kind") {
        None => {}
        Some(Value::String(_)) => {}
        Some(_) => return Err(bad("Kind value in payload is not a string".into())),
    }
    let kind = s(&entry, "Kind").to_string();
    if kind.is_empty() {
        return Err(bad(
            "Payload does not contain a kind/Kind key at the top level".into(),
        ));
    }
    if !KINDS.contains(&kind.as_str()) {
        return Err(bad(format!("invalid config entry kind: {kind}")));
    }
    let err500 = |m: String| (StatusCode::INTERNAL_SERVER_ERROR, m);
    // Both singletons default their name when it is left out.
    if kind == "mesh" && s(&entry, "Name").is_empty() {
        entry.insert("Name".into(), json!("mesh"));
    }
    if kind == "proxy-defaults" && s(&entry, "Name").is_empty() {
        entry.insert("Name".into(), json!("global"));
    }
    let name = s(&entry, "Name").to_string();
    if name.is_empty() {
        return Err(err500("Name is required".into()));
    }
    if kind == "proxy-defaults" && name != "global" {
        return Err(err500(format!(
            "invalid name ({name:?}), only \"global\" is supported"
        )));
    }
    if kind == "mesh" && name != "mesh" {
        return Err(err500(format!(
            "invalid name ({name:?}), only \"mesh\" is supported"
        )));
    }
    if let Some(meta) = entry.get("Meta") {
        match meta {
            Value::Object(m) if m.len() > 64 => {
                return Err(err500("Meta exceeds maximum element count 64".into()));
            }
            Value::Object(_) | Value::Null => {}
            _ => return Err(bad("Meta must be a map of strings".into())),
        }
    }
    match kind.as_str() {
        "service-defaults" => {
            let p = s(&entry, "Protocol").to_ascii_lowercase();
            // `Protocol` has no omitempty in ServiceConfigEntry: an unset one reads as "".
            entry.insert("Protocol".into(), json!(p.clone()));
            for k in ["TransparentProxy", "MeshGateway", "Expose"] {
                entry.entry(k).or_insert_with(|| json!({}));
            }
            // The graph check: a service with L7 intentions must stay HTTP-like.
            let effective = if p.is_empty() { "tcp".to_string() } else { p };
            if !is_http_like(&effective) && has_l7_intentions(inner, &name) {
                return Err(err500(format!(
                    "service {name:?} has protocol {effective:?}, which is incompatible with L7 intentions permissions"
                )));
            }
        }
        "service-router" | "service-splitter" => {
            let protocol = protocol_of(inner, &name);
            if !is_http_like(&protocol) {
                return Err(err500(format!(
                    "discovery chain {name:?} uses a protocol {protocol:?} that does not permit advanced routing or splitting behavior"
                )));
            }
        }
        "proxy-defaults" => {
            for k in ["TransparentProxy", "MeshGateway", "Expose"] {
                entry.entry(k).or_insert_with(|| json!({}));
            }
        }
        "service-intentions" => {
            if entry
                .get("Sources")
                .is_some_and(|v| !v.is_array() && !v.is_null())
            {
                return Err(bad("Sources must be a list".into()));
            }
            normalize_intentions(inner, &mut entry).map_err(err500)?;
        }
        _ => {}
    }
    Ok(entry)
}

/// `?cas=N` (an empty value means no CAS); a bad number is a plain Go error, so 500.
fn cas_param(params: &Params) -> Result<Option<u64>, Box<Response>> {
    match params.get("cas").filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(c) => c.parse::<u64>().map(Some).map_err(|_| {
            Box::new(text_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("strconv.ParseUint: parsing {c:?}: invalid syntax"),
            ))
        }),
    }
}

/// `PUT /v1/config[?cas=N]` → `true`, or `false` when the CAS check fails.
pub(super) async fn apply(
    State(st): St,
    Query(params): Query<Params>,
    body: axum::body::Bytes,
) -> Response {
    let cas = match cas_param(&params) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let mut inner = st.consul.lock();
    let entry = match prepare(&inner, &body) {
        Ok(e) => e,
        Err((status, msg)) => return text_error(status, msg),
    };
    let key = (s(&entry, "Kind").to_string(), s(&entry, "Name").to_string());
    let existing = inner.config.get(&key);
    // ConfigEntry.Apply's shouldSkipUpsertOperation: an entry that already has exactly this
    // (normalized) content is not written at all, and the answer is `true` whatever the `cas`
    // index said; the indexes stay where they were.
    if existing.is_some_and(|e| e.body == entry) {
        return Json(true).into_response();
    }
    if let Some(cas) = cas {
        let ok = match existing {
            None => cas == 0,
            Some(e) => cas != 0 && e.modify_index == cas,
        };
        if !ok {
            return Json(false).into_response();
        }
    }
    let idx = st.consul.index.bump();
    let create_index = existing.map_or(idx, |e| e.create_index);
    inner.config.insert(
        key,
        ConfigRec {
            body: entry,
            create_index,
            modify_index: idx,
        },
    );
    inner.config_index = idx;
    Json(true).into_response()
}

/// Consul stores a hash of each entry's content (`Hash`, `json:",omitempty" hash:"ignore"`),
/// which reads back with the entry; any stable 64-bit digest of the content stands in for it.
fn content_hash(body: &Map<String, Value>) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(Value::Object(body.clone()).to_string().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

fn entry_json(rec: &ConfigRec) -> Value {
    let mut m = rec.body.clone();
    m.insert("Hash".into(), json!(content_hash(&rec.body)));
    m.insert("CreateIndex".into(), json!(rec.create_index));
    m.insert("ModifyIndex".into(), json!(rec.modify_index));
    Value::Object(m)
}

/// `GET /v1/config/:kind/:name`.
pub(super) async fn read(
    State(st): St,
    Path((kind, name)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Response {
    // The Get RPC builds an entry of the kind first: an unknown kind is a 500.
    if !KINDS.contains(&kind.as_str()) {
        return text_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("invalid config entry kind: {kind}"),
        );
    }
    let idx = block_on(&st, &params, |i| i.config_index).await;
    let inner = st.consul.lock();
    match inner.config.get(&(kind.clone(), name.clone())) {
        Some(rec) => json_read(idx, entry_json(rec)),
        None => with_index(
            text_error(
                StatusCode::NOT_FOUND,
                format!("Config entry not found for {kind:?} / {name:?}"),
            ),
            idx,
        ),
    }
}

/// `GET /v1/config/:kind` → every entry of the kind (blocking).
pub(super) async fn list(
    State(st): St,
    Path(kind): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    // The List RPC rejects the kind: a plain RPC error, so 500.
    if !KINDS.contains(&kind.as_str()) {
        return text_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("invalid config entry kind: {kind}"),
        );
    }
    // ConfigEntry.List suppresses spurious wakeups: the table index moves on a write of any
    // kind, but a held list returns early only when a hash of this kind's entries (indexes
    // excluded) differs from the one it started with. On timeout it reports the latest index.
    let (min, wait) = super::blocking(&params);
    let consul = &st.consul;
    let (started_at, started_with) = {
        let inner = consul.lock();
        let bodies: Vec<Map<String, Value>> =
            bodies_of_kind(&inner, &kind).into_iter().cloned().collect();
        (inner.config_index, bodies)
    };
    let changed_index = || {
        let inner = consul.lock();
        let now: Vec<&Map<String, Value>> = bodies_of_kind(&inner, &kind);
        if now.len() != started_with.len() || now.iter().zip(&started_with).any(|(a, b)| *a != b) {
            inner.config_index
        } else {
            inner.config_index.min(min)
        }
    };
    // The first run answers at once when the index already passed `min`, as any blocking read.
    if started_at <= min {
        tokio::select! {
            _ = consul.index.wait_past(min, wait, changed_index) => {}
            _ = st.shutdown.cancelled() => {}
        }
    }
    let inner = st.consul.lock();
    let out: Vec<Value> = inner
        .config
        .iter()
        .filter(|((k, _), _)| *k == kind)
        .map(|(_, rec)| entry_json(rec))
        .collect();
    json_read(inner.config_index, json!(out))
}

fn bodies_of_kind<'a>(inner: &'a Inner, kind: &str) -> Vec<&'a Map<String, Value>> {
    inner
        .config
        .iter()
        .filter(|((k, _), _)| k == kind)
        .map(|(_, rec)| &rec.body)
        .collect()
}

/// `DELETE /v1/config/:kind/:name[?cas=N]` → `{}`, or `true`/`false` with cas.
pub(super) async fn delete(
    State(st): St,
    Path((kind, name)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Response {
    if !KINDS.contains(&kind.as_str()) {
        return text_error(
            StatusCode::BAD_REQUEST,
            format!("invalid config entry kind: {kind}"),
        );
    }
    let cas = match cas_param(&params) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let mut inner = st.consul.lock();
    let key = (kind, name);
    // ConfigEntry.Delete skips deleting what is already gone and reports it deleted: `true`
    // even with a `cas`. Only an entry that exists with another ModifyIndex answers `false`.
    if let Some(cas) = cas
        && inner
            .config
            .get(&key)
            .is_some_and(|e| e.modify_index != cas)
    {
        return Json(false).into_response();
    }
    if inner.config.remove(&key).is_some() {
        inner.config_index = st.consul.index.bump();
    }
    match cas {
        Some(_) => Json(true).into_response(),
        None => Json(json!({})).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_aliases_become_pascal_case() {
        assert_eq!(pascal("kind"), "Kind");
        assert_eq!(pascal("local_connect_timeout_ms"), "LocalConnectTimeoutMs");
        assert_eq!(pascal("external_sni"), "ExternalSNI");
        assert_eq!(pascal("mutual_tls_mode"), "MutualTLSMode");
        assert_eq!(pascal("PathPrefix"), "PathPrefix");
        let v = convert_keys(
            json!({"kind":"proxy-defaults","config":{"protocol":"http"},"meta":{"a_b":"1"}}),
        );
        assert_eq!(v["Config"]["protocol"], "http");
        assert_eq!(v["Meta"]["a_b"], "1");
    }

    #[test]
    fn intention_precedence_table() {
        assert_eq!(precedence("web", "db"), 9);
        assert_eq!(precedence("*", "db"), 8);
        assert_eq!(precedence("web", "*"), 6);
        assert_eq!(precedence("*", "*"), 5);
    }
}
