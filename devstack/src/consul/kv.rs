//! KV store and sessions (agent/kvs_endpoint.go, agent/session_endpoint.go): locks with
//! `acquire`/`release`, lock delay, TTL invalidation after about 2×TTL.

use base64::Engine as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{
    AGENT_NODE, Inner, KvRec, Params, SessionRec, block_on, json_read, text_error, with_index,
};
use crate::DevState;
use crate::clock::parse_go_duration;

type St = State<Arc<DevState>>;

/// Consul's default `kv_max_value_size`.
const MAX_VALUE_SIZE: usize = 512 * 1024;
/// Extensions recent Consul rejects at the end of a key (cache-deception guard).
const REJECTED_EXTENSIONS: &[&str] = &[
    ".js", ".css", ".html", ".htm", ".xml", ".json", ".txt", ".log", ".php", ".asp", ".jsp",
    ".cgi", ".pl", ".py", ".rb", ".sh", ".exe", ".dll", ".bat", ".cmd", ".com", ".scr", ".vbs",
    ".pdf", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".zip", ".rar", ".tar", ".gz",
    ".7z", ".bz2", ".jpg", ".jpeg", ".png", ".gif", ".svg", ".ico", ".bmp", ".mp3", ".mp4", ".avi",
    ".mov", ".wmv", ".flv", ".swf", ".woff", ".woff2", ".ttf", ".eot", ".otf",
];

/// Key rules of recent Consul (agent/kvs_endpoint.go `validateKVKey`), applied to every
/// non-empty key on GET, PUT and DELETE: no leading `/`, no `../`, no web-file extensions.
fn validate_key(key: &str) -> Result<(), String> {
    if key.starts_with('/') {
        return Err("key must not begin with a '/'".into());
    }
    if key.contains("../") || key.contains("..\\") {
        return Err("key contains invalid path traversal sequence".into());
    }
    let lower = key.to_ascii_lowercase();
    for ext in REJECTED_EXTENSIONS {
        if lower.ends_with(ext) {
            return Err(format!(
                "key contains suspicious file extension '{ext}' that may be cached by proxies"
            ));
        }
    }
    if [".js?", ".css?", ".html?", ".htm?"]
        .iter()
        .any(|e| lower.contains(e))
    {
        return Err(
            "key contains suspicious file extension with parameters that may be cached".into(),
        );
    }
    if lower.starts_with("..") || lower.contains("/..") {
        return Err("key contains path traversal sequence after normalization".into());
    }
    Ok(())
}

/// `Conflicting flags: <all query parameters, sorted>` when more than one of `flags` is set.
fn conflicting(params: &Params, flags: &[&str]) -> Option<Response> {
    if flags.iter().filter(|f| params.contains_key(**f)).count() < 2 {
        return None;
    }
    let mut pairs: Vec<(&String, &String)> = params.iter().collect();
    pairs.sort();
    let encoded: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    Some(text_error(
        StatusCode::BAD_REQUEST,
        format!("Conflicting flags: {encoded}\n"),
    ))
}

fn kv_json(key: &str, r: &KvRec) -> Value {
    let mut v = json!({
        "LockIndex": r.lock_index,
        "Key": key,
        "Flags": r.flags,
        "Value": if r.value.is_empty() { Value::Null } else { json!(base64::engine::general_purpose::STANDARD.encode(&r.value)) },
        "CreateIndex": r.create_index,
        "ModifyIndex": r.modify_index,
    });
    if let (Some(s), Some(obj)) = (&r.session, v.as_object_mut()) {
        obj.insert("Session".into(), json!(s));
    }
    v
}

fn not_found(idx: u64) -> Response {
    with_index(StatusCode::NOT_FOUND.into_response(), idx)
}

async fn get_impl(st: &DevState, key: String, params: Params) -> Response {
    if !key.is_empty()
        && let Err(e) = validate_key(&key)
    {
        return text_error(StatusCode::BAD_REQUEST, e);
    }
    if key.is_empty() && !params.contains_key("keys") && !params.contains_key("recurse") {
        return text_error(StatusCode::BAD_REQUEST, "Missing key name");
    }
    let idx = block_on(st, &params, |i: &Inner| i.kv_index).await;
    let inner = st.consul.lock();
    if params.contains_key("keys") {
        // Consul still reads its historic misspelling `seperator`; `separator` wins.
        let sep = params
            .get("separator")
            .or_else(|| params.get("seperator"))
            .cloned()
            .unwrap_or_default();
        let mut keys: Vec<String> = Vec::new();
        for k in inner.kv.keys().filter(|k| k.starts_with(&key)) {
            let rest = &k[key.len()..];
            let item = match (!sep.is_empty()).then(|| rest.find(&sep)).flatten() {
                Some(pos) => format!("{key}{}", &rest[..pos + sep.len()]),
                None => k.clone(),
            };
            if keys.last() != Some(&item) {
                keys.push(item);
            }
        }
        // The root gives an empty list rather than a 404.
        if keys.is_empty() && !key.is_empty() {
            return not_found(idx);
        }
        return json_read(idx, json!(keys));
    }
    if params.contains_key("recurse") {
        let out: Vec<Value> = inner
            .kv
            .iter()
            .filter(|(k, _)| k.starts_with(&key))
            .map(|(k, r)| kv_json(k, r))
            .collect();
        if out.is_empty() {
            return not_found(idx);
        }
        return json_read(idx, json!(out));
    }
    let Some(rec) = inner.kv.get(&key) else {
        // A missing key is 404 with an empty body.
        return not_found(idx);
    };
    if params.contains_key("raw") {
        let mut r = rec.value.clone().into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        h.insert(
            "X-Content-Type-Options",
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            "Content-Security-Policy",
            HeaderValue::from_static("sandbox"),
        );
        return with_index(r, idx);
    }
    json_read(idx, json!([kv_json(&key, rec)]))
}

pub(super) async fn get_root(State(st): St, Query(params): Query<Params>) -> Response {
    get_impl(&st, String::new(), params).await
}

pub(super) async fn get_key(
    State(st): St,
    Path(key): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    get_impl(&st, key, params).await
}

pub(super) async fn put_root() -> Response {
    text_error(StatusCode::BAD_REQUEST, "Missing key name")
}

fn parse_u64(params: &Params, name: &str) -> Result<Option<u64>, Box<Response>> {
    // Presence counts: `?cas` with no value is a parse error, as in Consul.
    match params.get(name) {
        None => Ok(None),
        // A plain Go strconv error, which Consul answers with 500.
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
            Box::new(text_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("strconv.ParseUint: parsing {v:?}: invalid syntax"),
            ))
        }),
    }
}

pub(super) async fn put_key(
    State(st): St,
    Path(key): Path<String>,
    Query(params): Query<Params>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(e) = validate_key(&key) {
        return text_error(StatusCode::BAD_REQUEST, e);
    }
    if let Some(r) = conflicting(&params, &["cas", "acquire", "release"]) {
        return r;
    }
    if body.len() > MAX_VALUE_SIZE {
        return text_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Request body({} bytes) too large, max size: {MAX_VALUE_SIZE} bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.",
                body.len()
            ),
        );
    }
    let flags = match parse_u64(&params, "flags") {
        Ok(f) => f.unwrap_or(0),
        Err(r) => return *r,
    };
    let cas = match parse_u64(&params, "cas") {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let mut inner = st.consul.lock();
    let existing = inner.kv.get(&key).cloned();
    if let Some(cas) = cas {
        let ok = match &existing {
            None => cas == 0,
            Some(e) => e.modify_index == cas,
        };
        if !ok {
            return Json(false).into_response();
        }
    }
    let mut session = existing.as_ref().and_then(|e| e.session.clone());
    let mut lock_index = existing.as_ref().map_or(0, |e| e.lock_index);
    if let Some(sid) = params.get("acquire") {
        if !inner.sessions.contains_key(sid) {
            return text_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("invalid session {sid:?}"),
            );
        }
        match &session {
            Some(holder) if holder == sid => {}
            Some(_) => return Json(false).into_response(),
            None => {
                if inner
                    .lock_delays
                    .get(&key)
                    .is_some_and(|until| *until > tokio::time::Instant::now())
                {
                    return Json(false).into_response();
                }
                session = Some(sid.clone());
                lock_index += 1;
            }
        }
    }
    if let Some(sid) = params.get("release") {
        if session.as_deref() != Some(sid.as_str()) {
            return Json(false).into_response();
        }
        session = None;
    }
    let idx = st.consul.index.bump();
    inner.kv.insert(
        key,
        KvRec {
            value: body.to_vec(),
            flags,
            session,
            lock_index,
            create_index: existing.as_ref().map_or(idx, |e| e.create_index),
            modify_index: idx,
        },
    );
    inner.kv_index = idx;
    Json(true).into_response()
}

async fn delete_impl(st: &DevState, key: String, params: Params) -> Response {
    if !key.is_empty()
        && let Err(e) = validate_key(&key)
    {
        return text_error(StatusCode::BAD_REQUEST, e);
    }
    if let Some(r) = conflicting(&params, &["recurse", "cas"]) {
        return r;
    }
    let cas = match parse_u64(&params, "cas") {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let mut inner = st.consul.lock();
    if params.contains_key("recurse") {
        let before = inner.kv.len();
        inner.kv.retain(|k, _| !k.starts_with(&key));
        if inner.kv.len() != before {
            inner.kv_index = st.consul.index.bump();
        }
        return Json(true).into_response();
    }
    if key.is_empty() {
        return text_error(StatusCode::BAD_REQUEST, "Missing key name");
    }
    if let Some(cas) = cas {
        // kvsDeleteCASTxn: a missing key counts as deleted (true) whatever the index.
        let ok = match inner.kv.get(&key) {
            None => true,
            Some(e) => e.modify_index == cas,
        };
        if !ok {
            return Json(false).into_response();
        }
    }
    if inner.kv.remove(&key).is_some() {
        inner.kv_index = st.consul.index.bump();
    }
    Json(true).into_response()
}

pub(super) async fn delete_root(State(st): St, Query(params): Query<Params>) -> Response {
    delete_impl(&st, String::new(), params).await
}

pub(super) async fn delete_key(
    State(st): St,
    Path(key): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    delete_impl(&st, key, params).await
}

// ---------------------------------------------------------------------------------------------
// Sessions

fn session_json(s: &SessionRec) -> Value {
    json!({
        "ID": s.id,
        "Name": s.name,
        "Node": s.node,
        "LockDelay": s.lock_delay.as_nanos() as u64,
        "Behavior": s.behavior,
        "TTL": s.ttl,
        "NodeChecks": s.node_checks,
        "ServiceChecks": s.service_checks,
        "CreateIndex": s.create_index,
        "ModifyIndex": s.modify_index,
    })
}

/// `LockDelay` as a duration string, or a number: below 1000 seconds, otherwise nanoseconds.
fn parse_lock_delay(v: &Value) -> Result<Duration, String> {
    match v {
        Value::String(s) => parse_go_duration(s)
            .ok_or_else(|| format!("Request decode failed: invalid LockDelay {s:?}")),
        Value::Number(n) => {
            let n = n
                .as_u64()
                .ok_or_else(|| "Request decode failed: invalid LockDelay".to_string())?;
            Ok(if n < 1000 {
                Duration::from_secs(n)
            } else {
                Duration::from_nanos(n)
            })
        }
        Value::Null => Ok(Duration::from_secs(15)),
        _ => Err("Request decode failed: invalid LockDelay".to_string()),
    }
}

/// Remove a session: release its locks (or delete its keys) and start their lock delay.
/// Invalidate every session on `node` that names `check_id` among its node checks (a check
/// that turns critical ends the sessions bound to it).
pub(super) fn invalidate_for_check(
    consul: &super::ConsulState,
    inner: &mut Inner,
    node: &str,
    check_id: &str,
) {
    let ids: Vec<String> = inner
        .sessions
        .values()
        .filter(|s| s.node == node && s.node_checks.iter().any(|c| c == check_id))
        .map(|s| s.id.clone())
        .collect();
    for id in ids {
        invalidate(consul, inner, &id);
        tracing::debug!(session = %id, check = check_id, "consul session invalidated by a critical check");
    }
}

pub(super) fn invalidate(consul: &super::ConsulState, inner: &mut Inner, id: &str) -> bool {
    let Some(session) = inner.sessions.remove(id) else {
        return false;
    };
    let idx = consul.index.bump();
    let until = tokio::time::Instant::now() + consul.scaled(session.lock_delay);
    let held: Vec<String> = inner
        .kv
        .iter()
        .filter(|(_, r)| r.session.as_deref() == Some(id))
        .map(|(k, _)| k.clone())
        .collect();
    for key in held {
        if session.behavior == "delete" {
            inner.kv.remove(&key);
        } else if let Some(r) = inner.kv.get_mut(&key) {
            r.session = None;
            r.modify_index = idx;
        }
        if !session.lock_delay.is_zero() {
            inner.lock_delays.insert(key, until);
        }
    }
    inner.kv_index = idx;
    inner.session_index = idx;
    true
}

/// Invalidate the session once its deadline passes without a renew.
fn spawn_ttl_watch(st: Arc<DevState>, id: String) {
    tokio::spawn(async move {
        loop {
            let deadline = {
                let inner = st.consul.lock();
                match inner.sessions.get(&id).and_then(|s| s.deadline) {
                    Some(d) => d,
                    None => return,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {}
                _ = st.shutdown.cancelled() => return,
            }
            let mut inner = st.consul.lock();
            let expired = inner
                .sessions
                .get(&id)
                .and_then(|s| s.deadline)
                .is_some_and(|d| d <= tokio::time::Instant::now());
            if expired {
                invalidate(&st.consul, &mut inner, &id);
                tracing::debug!(session = %id, "consul session expired");
                return;
            }
        }
    });
}

pub(super) async fn session_create(State(st): St, body: axum::body::Bytes) -> Response {
    let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return text_error(
                    StatusCode::BAD_REQUEST,
                    "Request decode failed: body is not an object",
                );
            }
            Err(e) => {
                return text_error(
                    StatusCode::BAD_REQUEST,
                    format!("Request decode failed: {e}"),
                );
            }
        }
    };
    let field = |k: &str| {
        v.get(k)
            .or_else(|| v.get(k.to_ascii_lowercase()))
            .cloned()
            .unwrap_or(Value::Null)
    };
    // Bounded at 60 s (Consul's MaxLockDelay) so a huge value cannot overflow a timer.
    let lock_delay = match parse_lock_delay(&field("LockDelay")) {
        Ok(d) => d.min(Duration::from_secs(60)),
        Err(e) => return text_error(StatusCode::BAD_REQUEST, e),
    };
    let behavior = field("Behavior").as_str().unwrap_or("release").to_string();
    let behavior = if behavior.is_empty() {
        "release".to_string()
    } else {
        behavior
    };
    if behavior != "release" && behavior != "delete" {
        return text_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Invalid Behavior setting '{behavior}'"),
        );
    }
    let ttl_text = field("TTL").as_str().unwrap_or("").to_string();
    let ttl = if ttl_text.is_empty() {
        None
    } else {
        match parse_go_duration(&ttl_text) {
            Some(d) if d.is_zero() => None,
            Some(d) if d >= Duration::from_secs(10) && d <= Duration::from_secs(86400) => Some(d),
            // Consul formats the duration with %d: nanoseconds.
            Some(d) => {
                return text_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "Invalid Session TTL '{}', must be between [10s=24h0m0s]",
                        d.as_nanos()
                    ),
                );
            }
            None => {
                return text_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "Session TTL '{ttl_text}' invalid: time: invalid duration {ttl_text:?}"
                    ),
                );
            }
        }
    };
    let node = field("Node")
        .as_str()
        .filter(|n| !n.is_empty())
        .unwrap_or(AGENT_NODE)
        .to_string();
    // Sending a `Checks` key replaces the default serfHealth check.
    let node_checks: Vec<String> = match (field("NodeChecks"), field("Checks")) {
        (Value::Array(a), _) | (_, Value::Array(a)) => a
            .iter()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect(),
        _ => vec!["serfHealth".to_string()],
    };
    let service_checks = match field("ServiceChecks") {
        Value::Null => None,
        other => Some(other),
    };
    let id = uuid::Uuid::new_v4().to_string();
    {
        let mut inner = st.consul.lock();
        if !inner.nodes.contains_key(&node) {
            return text_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Missing node registration",
            );
        }
        // Every node check must exist on that node (serfHealth always does) and not be critical.
        for check in &node_checks {
            let status = if check == "serfHealth" {
                inner.nodes.get(&node).map(|n| n.serf_status.clone())
            } else {
                inner
                    .services
                    .values()
                    .filter(|svc| svc.instance.node == node)
                    .flat_map(|svc| svc.instance.checks.iter())
                    .find(|c| &c.check_id == check)
                    .map(|c| c.status.clone())
            };
            match status {
                None => {
                    return text_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("Missing check '{check}' registration"),
                    );
                }
                Some(s) if s == "critical" => {
                    return text_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("Check '{check}' is in critical state"),
                    );
                }
                Some(_) => {}
            }
        }
        let idx = st.consul.index.bump();
        let deadline = ttl.map(|t| tokio::time::Instant::now() + st.consul.scaled(t * 2));
        inner.sessions.insert(
            id.clone(),
            SessionRec {
                id: id.clone(),
                name: field("Name").as_str().unwrap_or("").to_string(),
                node,
                lock_delay,
                behavior,
                // Consul keeps the TTL string as given.
                ttl: ttl_text.clone(),
                node_checks,
                service_checks,
                deadline,
                create_index: idx,
                modify_index: idx,
            },
        );
        inner.session_index = idx;
    }
    if ttl.is_some() {
        spawn_ttl_watch(st.clone(), id.clone());
    }
    Json(json!({"ID": id})).into_response()
}

pub(super) async fn session_renew(State(st): St, Path(id): Path<String>) -> Response {
    let mut inner = st.consul.lock();
    let now = tokio::time::Instant::now();
    let expired = inner
        .sessions
        .get(&id)
        .and_then(|s| s.deadline)
        .is_some_and(|d| d <= now);
    if expired {
        invalidate(&st.consul, &mut inner, &id);
    }
    let scaled_ttl = inner.sessions.get(&id).map(|s| {
        parse_go_duration(&s.ttl)
            .filter(|t| !t.is_zero())
            .map(|t| st.consul.scaled(t * 2))
    });
    let Some(ttl) = scaled_ttl else {
        return text_error(
            StatusCode::NOT_FOUND,
            format!("Session id '{id}' not found"),
        );
    };
    let idx = inner.session_index;
    let Some(s) = inner.sessions.get_mut(&id) else {
        return text_error(
            StatusCode::NOT_FOUND,
            format!("Session id '{id}' not found"),
        );
    };
    if let Some(ttl) = ttl {
        s.deadline = Some(now + ttl);
    }
    json_read(idx, json!([session_json(s)]))
}

pub(super) async fn session_destroy(State(st): St, Path(id): Path<String>) -> Response {
    let mut inner = st.consul.lock();
    invalidate(&st.consul, &mut inner, &id);
    Json(true).into_response()
}

pub(super) async fn session_info(
    State(st): St,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    let idx = block_on(&st, &params, |i| i.session_index).await;
    let inner = st.consul.lock();
    let out: Vec<Value> = inner
        .sessions
        .get(&id)
        .map(session_json)
        .into_iter()
        .collect();
    json_read(idx, json!(out))
}

pub(super) async fn session_node(
    State(st): St,
    Path(node): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    let idx = block_on(&st, &params, |i| i.session_index).await;
    let inner = st.consul.lock();
    let out: Vec<Value> = inner
        .sessions
        .values()
        .filter(|s| s.node == node)
        .map(session_json)
        .collect();
    json_read(idx, json!(out))
}

pub(super) async fn session_list(State(st): St, Query(params): Query<Params>) -> Response {
    let idx = block_on(&st, &params, |i| i.session_index).await;
    let inner = st.consul.lock();
    let out: Vec<Value> = inner.sessions.values().map(session_json).collect();
    json_read(idx, json!(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_delay_numbers_below_1000_are_seconds() {
        assert_eq!(parse_lock_delay(&json!(15)), Ok(Duration::from_secs(15)));
        assert_eq!(
            parse_lock_delay(&json!(15_000_000_000u64)),
            Ok(Duration::from_secs(15))
        );
        assert_eq!(parse_lock_delay(&json!("1s")), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn key_validation() {
        assert!(validate_key("drover/leader").is_ok());
        assert!(validate_key("/x").is_err());
        assert!(validate_key("a/../b").is_err());
        assert!(validate_key("conf.json").is_err());
        assert!(validate_key("a/..").is_err());
        assert!(validate_key("app.JS").is_err());
    }
}
