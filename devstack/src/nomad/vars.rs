//! Nomad Variables: list, read, CAS writes and deletes (409 with the current variable), and the
//! lock-acquire/renew/release operations with TTLs over scaled time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::super::DevState;
use super::super::clock::{format_go_duration, parse_go_duration};
use super::http::{
    ApiError, ApiResult, Req, blocking, empty_reply, field, list_namespaces, ns_ok, require,
    status_reply, write_reply,
};
use super::{Inner, NomadState, VarLock, Variable, new_id, now_ns};

fn meta_json(v: &Variable, items: bool) -> Value {
    let mut out = json!({"Namespace": v.namespace, "Path": v.path,
        "CreateIndex": v.create_index, "CreateTime": v.create_time,
        "ModifyIndex": v.modify_index, "ModifyTime": v.modify_time});
    if let Some(o) = out.as_object_mut() {
        if items {
            o.insert("Items".into(), json!(v.items));
        }
        if let Some(l) = &v.lock {
            o.insert(
                "Lock".into(),
                json!({"TTL": l.ttl, "LockDelay": l.lock_delay, "ID": l.id}),
            );
        }
    }
    out
}

/// Drop locks whose TTL ran out (called by the scheduler loop).
pub(crate) fn expire_locks(nomad: &NomadState, inner: &mut Inner, now: Instant) {
    let expired: Vec<((String, String), Instant)> = inner
        .vars
        .iter()
        .filter_map(|(k, v)| {
            v.lock
                .as_ref()
                .filter(|l| l.expires <= now)
                .map(|l| (k.clone(), l.expires + l.delay))
        })
        .collect();
    if expired.is_empty() {
        return;
    }
    let index = nomad.write(inner, &["vars"]);
    for (k, delay_until) in expired {
        // A lock lost by expiry stays unavailable for its lock delay, so the old holder (which
        // may still believe it leads) has stopped writing before anyone else acquires.
        inner.var_lock_delays.insert(k.clone(), delay_until);
        if let Some(v) = inner.vars.get_mut(&k) {
            v.lock = None;
            v.modify_index = index;
        }
    }
}

/// `GET /v1/vars?prefix=`.
pub(crate) async fn list(st: &Arc<DevState>, req: &Req) -> ApiResult {
    let filter = list_namespaces(st, req, "variables-read")?;
    let prefix = req.q("prefix").unwrap_or("").to_string();
    blocking(
        st,
        req,
        |i| i.table_index(&["vars"]),
        |inner, _| {
            Ok(Value::Array(
                inner
                    .vars
                    .iter()
                    .filter(|((ns, p), _)| ns_ok(&filter, ns) && p.starts_with(&prefix))
                    .map(|(_, v)| meta_json(v, false))
                    .collect(),
            ))
        },
    )
    .await
}

fn valid_path(p: &str) -> bool {
    regex::Regex::new(r"^[a-zA-Z0-9\-_~/]{1,128}$").is_ok_and(|re| re.is_match(p))
}

/// `GET|PUT|DELETE /v1/var/:path`.
pub(crate) async fn handle(st: &Arc<DevState>, req: &Req, path: &str) -> ApiResult {
    let ns = req.namespace();
    match req.method {
        Method::GET => {
            require(st, req, &ns, "variables-read")?;
            let key = (ns, path.to_string());
            blocking(
                st,
                req,
                |i| {
                    i.vars
                        .get(&key)
                        .map(|v| v.modify_index)
                        .unwrap_or_else(|| i.table_index(&["vars"]))
                },
                |inner, _| {
                    inner
                        .vars
                        .get(&key)
                        .map(|v| meta_json(v, true))
                        .ok_or_else(|| ApiError::not_found("variable not found"))
                },
            )
            .await
        }
        Method::PUT | Method::POST => {
            require(st, req, &ns, "variables-write")?;
            put(st, req, &ns, path)
        }
        Method::DELETE => {
            require(st, req, &ns, "variables-write")?;
            delete(st, req, &ns, path)
        }
        _ => Err(ApiError::method()),
    }
}

fn cas_param(req: &Req) -> Result<Option<u64>, ApiError> {
    match req.q("cas") {
        None => Ok(None),
        Some(c) => c
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ApiError::bad(format!("failed to parse cas value {c:?}"))),
    }
}

fn conflict(req: &Req, v: Option<&Variable>, ns: &str, path: &str) -> ApiResult {
    let body = match v {
        Some(v) => meta_json(v, true),
        None => json!({"Namespace": ns, "Path": path, "CreateIndex": 0, "CreateTime": 0,
            "ModifyIndex": 0, "ModifyTime": 0, "Items": null}),
    };
    Ok(status_reply(req, StatusCode::CONFLICT, &body))
}

fn put(st: &Arc<DevState>, req: &Req, ns: &str, path: &str) -> ApiResult {
    if !valid_path(path) {
        return Err(ApiError::bad("invalid path"));
    }
    let ops: Vec<&str> = ["lock-acquire", "lock-renew", "lock-release"]
        .into_iter()
        .filter(|o| req.q(o).is_some())
        .collect();
    if ops.len() > 1 {
        return Err(ApiError::bad("multiple lock operations"));
    }
    let cas = cas_param(req)?;
    if cas.is_some() && !ops.is_empty() {
        return Err(ApiError::bad("CAS can't be used with lock operations"));
    }
    let body = req.json()?;
    let items: Option<BTreeMap<String, String>> = field(&body, "Items")
        .filter(|i| !i.is_null())
        .and_then(|i| i.as_object())
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        });
    let lock_req = field(&body, "Lock").filter(|l| !l.is_null()).cloned();
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    let key = (ns.to_string(), path.to_string());
    let now = Instant::now();
    let existing = inner.vars.get(&key).cloned();
    let held = existing
        .as_ref()
        .and_then(|v| v.lock.clone())
        .filter(|l| l.expires > now);
    let lock_id = lock_req
        .as_ref()
        .and_then(|l| field(l, "ID"))
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    match ops.first().copied() {
        None => {
            let Some(items) = items else {
                return Err(ApiError::bad("variable missing required Items object"));
            };
            if let Some(l) = &lock_req
                && (field(l, "TTL").is_some_and(|v| !v.is_null() && v != "")
                    || field(l, "LockDelay").is_some_and(|v| !v.is_null() && v != ""))
            {
                return Err(ApiError::bad(
                    "lock TTL and lock delay can only be set with lock-acquire",
                ));
            }
            if let Some(c) = cas {
                let current = existing.as_ref().map(|v| v.modify_index).unwrap_or(0);
                if c != current {
                    return conflict(req, existing.as_ref(), ns, path);
                }
            }
            if let Some(l) = &held
                && l.id != lock_id
            {
                return Err(ApiError::conflict("attempting to modify locked variable"));
            }
            let index = nomad.write(&mut inner, &["vars"]);
            let t = now_ns();
            let v = Variable {
                namespace: ns.to_string(),
                path: path.to_string(),
                items,
                lock: held,
                create_index: existing.as_ref().map(|v| v.create_index).unwrap_or(index),
                modify_index: index,
                create_time: existing.as_ref().map(|v| v.create_time).unwrap_or(t),
                modify_time: t,
            };
            let out = meta_json(&v, true);
            inner.vars.insert(key, v);
            Ok(write_reply(req, index, &out))
        }
        Some("lock-acquire") => {
            let ttl_s = lock_req
                .as_ref()
                .and_then(|l| field(l, "TTL"))
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .unwrap_or("15s")
                .to_string();
            let delay_s = lock_req
                .as_ref()
                .and_then(|l| field(l, "LockDelay"))
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .unwrap_or("15s")
                .to_string();
            let ttl = parse_go_duration(&ttl_s)
                .ok_or_else(|| ApiError::bad(format!("invalid lock TTL {ttl_s:?}")))?;
            if ttl < Duration::from_secs(10) || ttl > Duration::from_secs(86400) {
                return Err(ApiError::bad("lock TTL must be between 10s and 24h0m0s"));
            }
            // Arguments are checked before the conflict, as the HTTP layer does.
            if held.is_some() {
                return conflict(req, existing.as_ref(), ns, path);
            }
            // An expired lock (cleaned up by the scheduler or not yet) blocks acquisition until
            // its lock delay has passed; this answers like a held lock (409, current variable).
            let delay_until = existing
                .as_ref()
                .and_then(|v| v.lock.as_ref())
                .map(|l| l.expires + l.delay)
                .or_else(|| inner.var_lock_delays.get(&key).copied());
            if delay_until.is_some_and(|until| now < until) {
                return conflict(req, existing.as_ref(), ns, path);
            }
            inner.var_lock_delays.remove(&key);
            let index = nomad.write(&mut inner, &["vars"]);
            let t = now_ns();
            let v =
                Variable {
                    namespace: ns.to_string(),
                    path: path.to_string(),
                    items: items
                        .or_else(|| existing.as_ref().map(|v| v.items.clone()))
                        .unwrap_or_default(),
                    lock: Some(VarLock {
                        id: new_id(),
                        ttl: format_go_duration(ttl),
                        expires: now + st.config.scaled(ttl),
                        delay: st.config.scaled(parse_go_duration(&delay_s).ok_or_else(|| {
                            ApiError::bad(format!("invalid lock delay {delay_s:?}"))
                        })?),
                        lock_delay: delay_s,
                    }),
                    create_index: existing.as_ref().map(|v| v.create_index).unwrap_or(index),
                    modify_index: index,
                    create_time: existing.as_ref().map(|v| v.create_time).unwrap_or(t),
                    modify_time: t,
                };
            let out = meta_json(&v, true);
            inner.vars.insert(key, v);
            Ok(write_reply(req, index, &out))
        }
        Some(op) => {
            if lock_req.is_none() || lock_id.is_empty() {
                return Err(ApiError::bad("missing lock information"));
            }
            if op == "lock-release" && items.as_ref().is_some_and(|i| !i.is_empty()) {
                return Err(ApiError::bad(
                    "lock release operation doesn't take variable items",
                ));
            }
            let Some(l) = held else {
                return Err(ApiError::conflict("variable doesn't hold a lock"));
            };
            if l.id != lock_id {
                return conflict(req, existing.as_ref(), ns, path);
            }
            let index = nomad.write(&mut inner, &["vars"]);
            let Some(v) = inner.vars.get_mut(&key) else {
                return Err(ApiError::not_found("variable not found"));
            };
            if op == "lock-renew" {
                let ttl = parse_go_duration(&l.ttl).unwrap_or(Duration::from_secs(15));
                if let Some(lk) = v.lock.as_mut() {
                    lk.expires = now + st.config.scaled(ttl);
                }
                let out = meta_json(v, false);
                return Ok(write_reply(req, index, &out));
            }
            v.lock = None;
            v.modify_index = index;
            v.modify_time = now_ns();
            let out = meta_json(v, true);
            Ok(write_reply(req, index, &out))
        }
    }
}

fn delete(st: &Arc<DevState>, req: &Req, ns: &str, path: &str) -> ApiResult {
    let cas = cas_param(req)?;
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    let key = (ns.to_string(), path.to_string());
    let existing = inner.vars.get(&key).cloned();
    if let Some(c) = cas {
        let current = existing.as_ref().map(|v| v.modify_index).unwrap_or(0);
        if c != current {
            return conflict(req, existing.as_ref(), ns, path);
        }
    }
    if existing
        .as_ref()
        .and_then(|v| v.lock.as_ref())
        .is_some_and(|l| l.expires > Instant::now())
    {
        return Err(ApiError::conflict("attempting to modify locked variable"));
    }
    let index = nomad.write(&mut inner, &["vars"]);
    inner.vars.remove(&key);
    Ok(empty_reply(StatusCode::NO_CONTENT, index))
}
