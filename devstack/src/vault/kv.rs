//! KV v2 (data, metadata, delete/undelete/destroy, versions, CAS) and KV v1 mounts, with the
//! exact 404 bodies of vault-plugin-secrets-kv.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::{
    Inner, Mount, Req, Secret, Version, envelope, errors, is_list, no_content, no_route, ok, ts,
};
use crate::DevState;

/// Versions kept when neither the mount nor the secret sets `max_versions`.
const DEFAULT_MAX_VERSIONS: u64 = 10;

fn not_found() -> Response {
    // A missing secret on an existing mount: an empty error list.
    errors(StatusCode::NOT_FOUND, &[])
}

fn version_meta(v: &Version, number: u64, custom: &Option<Map<String, Value>>) -> Value {
    json!({
        "created_time": ts(v.created),
        "custom_metadata": custom,
        "deletion_time": v.deleted.map(ts).unwrap_or_default(),
        "destroyed": v.destroyed,
        "version": number,
    })
}

fn is_deleted(v: &Version, now: OffsetDateTime) -> bool {
    v.deleted.is_some_and(|d| d <= now)
}

/// Append a version (after CAS checks done by the caller) and prune beyond max_versions.
fn write_version(mount: &mut Mount, path: &str, data: Map<String, Value>) -> Value {
    let now = OffsetDateTime::now_utc();
    let mount_max = mount.max_versions;
    let mount_after = mount.delete_version_after;
    let secret = mount.v2.entry(path.to_string()).or_insert_with(|| Secret {
        versions: BTreeMap::new(),
        current: 0,
        oldest: 0,
        created: now,
        updated: now,
        max_versions: 0,
        cas_required: false,
        custom_metadata: None,
        delete_version_after: 0,
    });
    secret.current += 1;
    let number = secret.current;
    // A version written under `delete_version_after` carries its future deletion time.
    // The secret's setting applies, but never beyond the mount's.
    let after = match (secret.delete_version_after, mount_after) {
        (0, m) => m,
        (d, 0) => d,
        (d, m) => d.min(m),
    };
    let deleted = (after > 0)
        .then(|| i64::try_from(after).ok())
        .flatten()
        .and_then(|secs| now.checked_add(time::Duration::seconds(secs)));
    let version = Version {
        data: Some(data),
        created: now,
        deleted,
        destroyed: false,
    };
    let meta = version_meta(&version, number, &secret.custom_metadata);
    secret.versions.insert(number, version);
    secret.updated = now;
    // KeyMetadata.AddVersion: the window is max(secret, mount) or 10; `oldest_version` stays 0
    // until the first pruning.
    let max = match secret.max_versions.max(mount_max) {
        0 => DEFAULT_MAX_VERSIONS,
        m => m,
    };
    if secret.current - secret.oldest >= max {
        let delete_up_to = secret.current - max;
        secret.versions.retain(|n, _| *n > delete_up_to);
        secret.oldest = delete_up_to + 1;
    }
    meta
}

/// Seed or control-API write: a new KV v2 version, or a KV v1 overwrite.
pub(super) fn seed_secret(
    inner: &mut Inner,
    mount: &str,
    path: &str,
    data: Map<String, Value>,
) -> Result<(), String> {
    let mount = mount.trim_matches('/');
    let path = path.trim_matches('/');
    if mount.is_empty() || path.is_empty() {
        return Err("mount and path are required".into());
    }
    let m = inner
        .mounts
        .entry(mount.to_string())
        .or_insert_with(|| Mount::new(2));
    if m.version == 2 {
        let path = path.strip_prefix("data/").unwrap_or(path);
        write_version(m, path, data);
    } else {
        m.v1.insert(path.to_string(), data);
    }
    Ok(())
}

pub(super) fn template_read(inner: &Inner, path: &str) -> Option<BTreeMap<String, Value>> {
    let (name, rest) = inner.find_mount(path)?;
    let mount = inner.mounts.get(&name)?;
    if mount.version == 1 {
        return mount
            .v1
            .get(rest)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    }
    // consul-template's shimKVv2Path: add `data/` unless the path already has data/ or metadata/.
    if rest.starts_with("metadata/") {
        return None;
    }
    let secret_path = rest.strip_prefix("data/").unwrap_or(rest);
    let secret = mount.v2.get(secret_path)?;
    let v = secret.versions.get(&secret.current)?;
    if v.destroyed || is_deleted(v, OffsetDateTime::now_utc()) {
        return None;
    }
    let data = v.data.clone()?;
    let mut out = BTreeMap::new();
    out.insert("data".to_string(), Value::Object(data));
    out.insert(
        "metadata".to_string(),
        version_meta(v, secret.current, &secret.custom_metadata),
    );
    Some(out)
}

/// Requests under a mount (anything not `sys/` or `auth/`).
pub(super) fn handle(st: &DevState, req: &Req) -> Response {
    let mut inner = st.vault.lock();
    let Some((name, rest)) = inner.find_mount(&req.path) else {
        return no_route(&req.path);
    };
    let rest = rest.to_string();
    let Some(mount) = inner.mounts.get_mut(&name) else {
        return no_route(&req.path);
    };
    if mount.version == 1 {
        return kv1(mount, req, &rest);
    }
    let (op, path) = match rest.split_once('/') {
        Some((op, p)) => (op, p),
        None => (rest.as_str(), ""),
    };
    match op {
        "data" if !path.is_empty() => data(mount, req, path),
        "subkeys" if !path.is_empty() => subkeys(mount, req, path),
        "metadata" => metadata(mount, req, path),
        "delete" | "undelete" | "destroy" if !path.is_empty() => versions_op(mount, req, op, path),
        "config" if path.is_empty() => config(mount, req),
        _ => no_route(&req.path),
    }
}

fn kv1(mount: &mut Mount, req: &Req, path: &str) -> Response {
    if is_list(&req.method, &req.params) {
        return list_keys(mount.v1.keys(), path);
    }
    if path.is_empty() {
        return no_route(&req.path);
    }
    match req.method.as_str() {
        "GET" => match mount.v1.get(path) {
            Some(data) => {
                let mut body = envelope(Value::Object(data.clone()), "kv");
                body["lease_duration"] = json!(2_764_800);
                ok(body)
            }
            None => not_found(),
        },
        "POST" | "PUT" => match req.json() {
            Ok(data) => {
                mount.v1.insert(path.to_string(), data);
                no_content()
            }
            Err(r) => *r,
        },
        "DELETE" => {
            mount.v1.remove(path);
            no_content()
        }
        _ => errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"]),
    }
}

fn list_keys<'a>(paths: impl Iterator<Item = &'a String>, prefix: &str) -> Response {
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{}/", prefix.trim_end_matches('/'))
    };
    let mut keys: Vec<String> = Vec::new();
    for p in paths.filter(|p| p.starts_with(&prefix)) {
        let rest = &p[prefix.len()..];
        let key = match rest.find('/') {
            Some(i) => rest[..=i].to_string(),
            None => rest.to_string(),
        };
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return not_found();
    }
    keys.sort();
    ok(envelope(json!({ "keys": keys }), "kv"))
}

fn cas_of(body: &Map<String, Value>) -> Option<u64> {
    body.get("options")
        .and_then(|o| o.get("cas"))
        .and_then(Value::as_u64)
}

fn data(mount: &mut Mount, req: &Req, path: &str) -> Response {
    let now = OffsetDateTime::now_utc();
    match req.method.as_str() {
        "GET" => {
            let Some(secret) = mount.v2.get(path) else {
                return not_found();
            };
            let wanted = req
                .params
                .get("version")
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|v| *v > 0)
                .unwrap_or(secret.current);
            let Some(v) = secret.versions.get(&wanted) else {
                return not_found();
            };
            let meta = version_meta(v, wanted, &secret.custom_metadata);
            if v.destroyed || is_deleted(v, now) {
                // Deleted or destroyed: 404 *with* the full body, data.data null.
                let body = envelope(json!({"data": null, "metadata": meta}), "kv");
                return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
            }
            ok(envelope(json!({"data": v.data, "metadata": meta}), "kv"))
        }
        "POST" | "PUT" | "PATCH" => {
            let body = match req.json() {
                Ok(b) => b,
                Err(r) => return *r,
            };
            let cas = cas_of(&body);
            let existing = mount.v2.get(path);
            let current = existing.map_or(0, |s| s.current);
            let cas_required = mount.cas_required || existing.is_some_and(|s| s.cas_required);
            if req.method == Method::PATCH {
                if let Some(r) = require_merge_patch(req) {
                    return r;
                }
                // Order of path_data.go pathDataPatch: data present, secret exists, CAS,
                // then a deleted/destroyed current version answers 404 with its metadata.
                let Some(Value::Object(patch)) = body.get("data") else {
                    return errors(StatusCode::BAD_REQUEST, &["no data provided"]);
                };
                let Some(secret) = existing else {
                    return not_found();
                };
                if let Some(c) = cas
                    && c != current
                {
                    return cas_mismatch();
                }
                if cas_required && cas.is_none() {
                    return cas_missing();
                }
                let Some(v) = secret.versions.get(&secret.current) else {
                    return not_found();
                };
                if v.destroyed || is_deleted(v, now) {
                    let body = envelope(
                        version_meta(v, secret.current, &secret.custom_metadata),
                        "kv",
                    );
                    return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
                }
                let mut merged = v.data.clone().unwrap_or_default();
                merge_patch(&mut merged, patch);
                let meta = write_version(mount, path, merged);
                return ok(envelope(meta, "kv"));
            }
            let data = match body.get("data") {
                Some(Value::Object(d)) => d.clone(),
                Some(Value::Null) | None => {
                    return errors(StatusCode::BAD_REQUEST, &["no data provided"]);
                }
                Some(_) => {
                    return errors(
                        StatusCode::BAD_REQUEST,
                        &["data must be a map of key/value pairs"],
                    );
                }
            };
            if cas_required && cas.is_none() {
                return cas_missing();
            }
            if let Some(c) = cas
                && c != current
            {
                return cas_mismatch();
            }
            let meta = write_version(mount, path, data);
            ok(envelope(meta, "kv"))
        }
        "DELETE" => {
            if let Some(secret) = mount.v2.get_mut(path) {
                let current = secret.current;
                if let Some(v) = secret.versions.get_mut(&current)
                    && v.deleted.is_none()
                    && !v.destroyed
                {
                    v.deleted = Some(now);
                }
            }
            no_content()
        }
        _ => errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"]),
    }
}

/// Seconds as Go's `time.Duration.String()` prints them (`0s`, `45s`, `1m30s`, `3h25m19s`).
fn go_duration(secs: u64) -> String {
    crate::clock::format_go_duration(std::time::Duration::from_secs(secs))
}

/// A duration parameter: seconds as a number, or a Go duration string. `Err` is Vault's 400.
fn duration_param(v: Option<&Value>) -> Result<Option<u64>, Box<Response>> {
    let invalid = || {
        Box::new(errors(
            StatusCode::BAD_REQUEST,
            &["error converting input for field \"delete_version_after\": time: invalid duration"],
        ))
    };
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(invalid),
        Some(Value::String(s)) => s
            .parse::<u64>()
            .ok()
            .or_else(|| crate::clock::parse_go_duration(s).map(|d| d.as_secs()))
            .map(Some)
            .ok_or_else(invalid),
        Some(_) => Err(invalid()),
    }
}

/// The key structure of a value with the leaves replaced by `null`, `depth` levels deep
/// (0: unlimited), as `GET <mount>/subkeys/<path>` reports it.
fn subkey_tree(data: &Map<String, Value>, depth: u64, level: u64) -> Value {
    Value::Object(
        data.iter()
            .map(|(k, v)| {
                let child = match v {
                    // A map without subkeys is a leaf too.
                    Value::Object(m) if !m.is_empty() && (depth == 0 || level < depth) => {
                        subkey_tree(m, depth, level + 1)
                    }
                    _ => Value::Null,
                };
                (k.clone(), child)
            })
            .collect(),
    )
}

/// `GET <mount>/subkeys/<path>[?version=N&depth=D]`: key names without values.
fn subkeys(mount: &Mount, req: &Req, path: &str) -> Response {
    if req.method != Method::GET {
        return errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"]);
    }
    let Some(secret) = mount.v2.get(path) else {
        return not_found();
    };
    let wanted = req
        .params
        .get("version")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|v| *v > 0)
        .unwrap_or(secret.current);
    let depth = req
        .params
        .get("depth")
        .and_then(|d| d.parse::<u64>().ok())
        .unwrap_or(0);
    let Some(v) = secret.versions.get(&wanted) else {
        return not_found();
    };
    let meta = version_meta(v, wanted, &secret.custom_metadata);
    match &v.data {
        Some(d) if !v.destroyed && !is_deleted(v, OffsetDateTime::now_utc()) => ok(envelope(
            json!({"subkeys": subkey_tree(d, depth, 1), "metadata": meta}),
            "kv",
        )),
        // Like a data read: deleted or destroyed is 404 with the metadata.
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(envelope(json!({"subkeys": null, "metadata": meta}), "kv")),
        )
            .into_response(),
    }
}

/// PATCH answers 415 unless the body is declared `application/merge-patch+json`.
fn require_merge_patch(req: &Req) -> Option<Response> {
    let content_type = req
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/merge-patch+json") {
        return None;
    }
    Some(errors(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        &[&format!(
            "PATCH requires Content-Type of application/merge-patch+json, provided {content_type}"
        )],
    ))
}

fn cas_mismatch() -> Response {
    errors(
        StatusCode::BAD_REQUEST,
        &["check-and-set parameter did not match the current version"],
    )
}

fn cas_missing() -> Response {
    errors(
        StatusCode::BAD_REQUEST,
        &["check-and-set parameter required for this call"],
    )
}

/// RFC 7396 JSON merge patch: null removes a key, objects merge recursively.
fn merge_patch(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                target.remove(k);
            }
            Value::Object(p) => {
                let entry = target
                    .entry(k.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(t) = entry {
                    merge_patch(t, p);
                } else {
                    let mut fresh = Map::new();
                    merge_patch(&mut fresh, p);
                    *entry = Value::Object(fresh);
                }
            }
            other => {
                target.insert(k.clone(), other.clone());
            }
        }
    }
}

fn versions_op(mount: &mut Mount, req: &Req, op: &str, path: &str) -> Response {
    if !matches!(req.method.as_str(), "POST" | "PUT") {
        return errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"]);
    }
    let body = match req.json() {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let versions: Vec<u64> = body
        .get("versions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    if versions.is_empty() {
        return errors(StatusCode::BAD_REQUEST, &["no version number provided"]);
    }
    let now = OffsetDateTime::now_utc();
    if let Some(secret) = mount.v2.get_mut(path) {
        for n in versions {
            if let Some(v) = secret.versions.get_mut(&n) {
                match op {
                    "delete" if v.deleted.is_none() && !v.destroyed => v.deleted = Some(now),
                    "undelete" if !v.destroyed => v.deleted = None,
                    "destroy" => {
                        v.destroyed = true;
                        v.data = None;
                    }
                    _ => {}
                }
            }
        }
    }
    no_content()
}

fn metadata(mount: &mut Mount, req: &Req, path: &str) -> Response {
    if is_list(&req.method, &req.params) {
        return list_keys(mount.v2.keys(), path);
    }
    if path.is_empty() {
        return no_route(&req.path);
    }
    match req.method.as_str() {
        "GET" => {
            let Some(secret) = mount.v2.get(path) else {
                return not_found();
            };
            let versions: Map<String, Value> = secret
                .versions
                .iter()
                .map(|(n, v)| {
                    (
                        n.to_string(),
                        json!({
                            "created_time": ts(v.created),
                            "deletion_time": v.deleted.map(ts).unwrap_or_default(),
                            "destroyed": v.destroyed,
                        }),
                    )
                })
                .collect();
            ok(envelope(
                json!({
                    "cas_required": secret.cas_required,
                    "created_time": ts(secret.created),
                    "current_version": secret.current,
                    "custom_metadata": secret.custom_metadata,
                    "delete_version_after": go_duration(secret.delete_version_after),
                    "max_versions": secret.max_versions,
                    "oldest_version": secret.oldest,
                    "updated_time": ts(secret.updated),
                    "versions": versions,
                }),
                "kv",
            ))
        }
        "POST" | "PUT" | "PATCH" => {
            let body = match req.json() {
                Ok(b) => b,
                Err(r) => return *r,
            };
            let patch = req.method == Method::PATCH;
            if patch {
                // Patch Metadata: JSON merge patch of an existing entry only.
                if let Some(r) = require_merge_patch(req) {
                    return r;
                }
                if !mount.v2.contains_key(path) {
                    return not_found();
                }
            }
            let now = OffsetDateTime::now_utc();
            let secret = mount.v2.entry(path.to_string()).or_insert_with(|| Secret {
                versions: BTreeMap::new(),
                current: 0,
                oldest: 0,
                created: now,
                updated: now,
                max_versions: 0,
                cas_required: false,
                custom_metadata: None,
                delete_version_after: 0,
            });
            if let Some(m) = body.get("max_versions").and_then(Value::as_u64) {
                secret.max_versions = m;
            }
            if let Some(c) = body.get("cas_required").and_then(Value::as_bool) {
                secret.cas_required = c;
            }
            match duration_param(body.get("delete_version_after")) {
                Ok(Some(d)) => secret.delete_version_after = d,
                Ok(None) => {}
                Err(r) => return *r,
            }
            match body.get("custom_metadata") {
                Some(Value::Object(m)) if patch => {
                    let mut merged = secret.custom_metadata.clone().unwrap_or_default();
                    merge_patch(&mut merged, m);
                    secret.custom_metadata = Some(merged);
                }
                Some(Value::Object(m)) => secret.custom_metadata = Some(m.clone()),
                Some(Value::Null) | None => {}
                Some(_) => {
                    return errors(
                        StatusCode::BAD_REQUEST,
                        &["custom_metadata must be a map of strings"],
                    );
                }
            }
            secret.updated = now;
            no_content()
        }
        "DELETE" => {
            mount.v2.remove(path);
            no_content()
        }
        _ => errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"]),
    }
}

fn config(mount: &mut Mount, req: &Req) -> Response {
    match req.method.as_str() {
        "GET" => ok(envelope(
            json!({
                "cas_required": mount.cas_required,
                "delete_version_after": go_duration(mount.delete_version_after),
                "max_versions": mount.max_versions,
            }),
            "kv",
        )),
        "POST" | "PUT" => {
            let body = match req.json() {
                Ok(b) => b,
                Err(r) => return *r,
            };
            if let Some(m) = body.get("max_versions").and_then(Value::as_u64) {
                mount.max_versions = m;
            }
            if let Some(c) = body.get("cas_required").and_then(Value::as_bool) {
                mount.cas_required = c;
            }
            match duration_param(body.get("delete_version_after")) {
                Ok(Some(d)) => mount.delete_version_after = d,
                Ok(None) => {}
                Err(r) => return *r,
            }
            no_content()
        }
        _ => errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc7396() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let p = json!({"a": null, "b": {"c": 5}, "e": "x"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        merge_patch(&mut t, &p);
        assert_eq!(Value::Object(t), json!({"b": {"c": 5, "d": 3}, "e": "x"}));
    }
}
