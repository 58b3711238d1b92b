//! Token, AppRole and JWT auth: lookup-self, create, renew-self, revoke-self, role config, login.

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::{
    AppRole, JwtRole, Req, SecretId, Token, envelope, errors, no_content, no_route, ok,
    request_token,
};
use crate::DevState;

/// Default TTL of tokens this simulator issues (Vault's 768h system default).
const DEFAULT_TTL: u64 = 2_764_800;

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// A TTL as seconds (number) or a Go duration string.
fn ttl_of(v: Option<&Value>) -> Option<u64> {
    match v {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) if !s.is_empty() => s
            .parse::<u64>()
            .ok()
            .or_else(|| crate::clock::parse_go_duration(s).map(|d| d.as_secs())),
        _ => None,
    }
}

/// Token policies as Vault reports them: sorted, with `default` unless `root`.
fn with_default(mut policies: Vec<String>) -> Vec<String> {
    if !policies.iter().any(|p| p == "root") && !policies.iter().any(|p| p == "default") {
        policies.push("default".into());
    }
    policies.sort();
    policies.dedup();
    policies
}

fn issue(
    st: &DevState,
    policies: Vec<String>,
    ttl: u64,
    display_name: &str,
    path: &str,
    meta: Option<Map<String, Value>>,
) -> Token {
    let token = Token {
        id: format!("hvs.{}", uuid::Uuid::new_v4().simple()),
        accessor: uuid::Uuid::new_v4().simple().to_string(),
        policies: with_default(policies),
        display_name: display_name.to_string(),
        path: path.to_string(),
        created: OffsetDateTime::now_utc(),
        ttl,
        creation_ttl: ttl,
        renewed: OffsetDateTime::now_utc(),
        renewable: ttl > 0,
        meta,
        orphan: true,
    };
    st.vault
        .lock()
        .tokens
        .insert(token.id.clone(), token.clone());
    token
}

fn auth_response(t: &Token) -> Response {
    let mut body = envelope(Value::Null, "");
    body["auth"] = json!({
        "client_token": t.id,
        "accessor": t.accessor,
        "policies": t.policies,
        "token_policies": t.policies,
        "metadata": t.meta,
        "lease_duration": t.ttl,
        "renewable": t.renewable,
        "entity_id": "",
        "token_type": "service",
        "orphan": t.orphan,
        "mfa_requirement": null,
        "num_uses": 0,
    });
    ok(body)
}

fn lookup_json(t: &Token) -> Value {
    let now = OffsetDateTime::now_utc();
    let expires = (t.ttl > 0)
        .then(|| {
            i64::try_from(t.ttl)
                .ok()
                .and_then(|secs| t.renewed.checked_add(time::Duration::seconds(secs)))
        })
        .flatten();
    // `ttl` counts down from the last renewal; a root token (ttl 0) never expires.
    let remaining = expires.map_or(0, |e| (e - now).whole_seconds().max(0));
    let mut v = json!({
        "accessor": t.accessor,
        "creation_time": t.created.unix_timestamp(),
        "creation_ttl": t.creation_ttl,
        "display_name": t.display_name,
        "entity_id": "",
        "expire_time": expires.map(super::ts),
        "explicit_max_ttl": 0,
        "id": t.id,
        "issue_time": super::ts(t.created),
        "meta": t.meta,
        "num_uses": 0,
        "orphan": t.orphan,
        "path": t.path,
        "policies": t.policies,
        "renewable": t.renewable,
        "ttl": remaining,
        "type": "service",
    });
    // Vault adds `last_renewal_time` (unix seconds) once a token has been renewed.
    if t.renewed != t.created
        && let Some(obj) = v.as_object_mut()
    {
        obj.insert(
            "last_renewal_time".into(),
            json!(t.renewed.unix_timestamp()),
        );
    }
    v
}

/// Renew a token's lease: `increment` (seconds or a duration string) or its creation TTL.
/// `Err` is Vault's 400 for a token that cannot be renewed (root, ttl 0).
fn renew(st: &DevState, id: &str, body: &Map<String, Value>) -> Result<Token, Box<Response>> {
    let mut inner = st.vault.lock();
    let Some(t) = inner.tokens.get_mut(id) else {
        return Err(Box::new(bad("token not found")));
    };
    if t.creation_ttl == 0 || !t.renewable {
        return Err(Box::new(bad("lease is not renewable")));
    }
    t.ttl = ttl_of(body.get("increment"))
        .filter(|i| *i > 0)
        .unwrap_or(t.creation_ttl);
    t.renewed = OffsetDateTime::now_utc();
    Ok(t.clone())
}

/// The token an accessor belongs to.
fn by_accessor(st: &DevState, accessor: &str) -> Option<Token> {
    if accessor.is_empty() {
        return None;
    }
    st.vault
        .lock()
        .tokens
        .values()
        .find(|t| t.accessor == accessor)
        .cloned()
}

fn caller(st: &DevState, req: &Req) -> Option<Token> {
    let id = request_token(&req.headers)?;
    st.vault.lock().tokens.get(&id).cloned()
}

fn bad(message: &str) -> Response {
    errors(StatusCode::BAD_REQUEST, &[message])
}

/// Requests under `auth/`.
pub(super) fn handle(st: &DevState, req: &Req) -> Response {
    let path = req.path.as_str();
    let method = req.method.as_str();
    let body = match req.json() {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let denied = || {
        errors(
            StatusCode::FORBIDDEN,
            &[crate::faults::VAULT_PERMISSION_DENIED],
        )
    };
    match (method, path) {
        ("GET", "auth/token/lookup-self") => {
            return match caller(st, req) {
                Some(t) => ok(envelope(lookup_json(&t), "token")),
                None => denied(),
            };
        }
        ("POST" | "PUT", "auth/token/lookup") => {
            let id = body.get("token").and_then(Value::as_str).unwrap_or("");
            let found = st.vault.lock().tokens.get(id).cloned();
            // An unknown token is 403 `bad token` (token_store.go handleLookup).
            return match found {
                Some(t) => ok(envelope(lookup_json(&t), "token")),
                None => errors(StatusCode::FORBIDDEN, &["bad token"]),
            };
        }
        ("POST" | "PUT", "auth/token/renew-self") => {
            let Some(id) = request_token(&req.headers) else {
                return denied();
            };
            return match renew(st, &id, &body) {
                Ok(t) => auth_response(&t),
                Err(r) => *r,
            };
        }
        ("POST" | "PUT", "auth/token/renew") => {
            let id = body.get("token").and_then(Value::as_str).unwrap_or("");
            if id.is_empty() {
                return bad("missing token");
            }
            return match renew(st, id, &body) {
                Ok(t) => auth_response(&t),
                Err(r) => *r,
            };
        }
        ("POST" | "PUT", "auth/token/lookup-accessor") => {
            let accessor = body.get("accessor").and_then(Value::as_str).unwrap_or("");
            return match by_accessor(st, accessor) {
                // By accessor the token ID itself is never shown.
                Some(t) => {
                    let mut data = lookup_json(&t);
                    data["id"] = json!("");
                    ok(envelope(data, "token"))
                }
                None => bad("invalid accessor"),
            };
        }
        ("POST" | "PUT", "auth/token/renew-accessor") => {
            let accessor = body.get("accessor").and_then(Value::as_str).unwrap_or("");
            let Some(t) = by_accessor(st, accessor) else {
                return bad("invalid accessor");
            };
            return match renew(st, &t.id, &body) {
                Ok(mut t) => {
                    t.id = String::new();
                    auth_response(&t)
                }
                Err(r) => *r,
            };
        }
        ("POST" | "PUT", "auth/token/revoke" | "auth/token/revoke-orphan") => {
            let id = body.get("token").and_then(Value::as_str).unwrap_or("");
            if id.is_empty() {
                return bad("missing token");
            }
            st.vault.lock().tokens.remove(id);
            return no_content();
        }
        ("POST" | "PUT", "auth/token/revoke-accessor") => {
            let accessor = body.get("accessor").and_then(Value::as_str).unwrap_or("");
            let Some(t) = by_accessor(st, accessor) else {
                return bad("invalid accessor");
            };
            st.vault.lock().tokens.remove(&t.id);
            return no_content();
        }
        ("POST" | "PUT", "auth/token/revoke-self") => {
            if let Some(id) = request_token(&req.headers) {
                st.vault.lock().tokens.remove(&id);
            }
            return no_content();
        }
        ("POST" | "PUT", "auth/token/create" | "auth/token/create-orphan") => {
            let Some(parent) = caller(st, req) else {
                return denied();
            };
            let requested = strings(body.get("policies"));
            let parent_root = parent.policies.iter().any(|p| p == "root");
            let policies = if requested.is_empty() {
                parent.policies.clone()
            } else {
                requested
            };
            if !parent_root
                && policies
                    .iter()
                    .any(|p| p != "default" && !parent.policies.contains(p))
            {
                return bad("child policies must be subset of parent");
            }
            let ttl = ttl_of(body.get("ttl")).unwrap_or(if policies.iter().any(|p| p == "root") {
                0
            } else {
                DEFAULT_TTL
            });
            let meta = body.get("meta").and_then(Value::as_object).cloned();
            let name = body
                .get("display_name")
                .and_then(Value::as_str)
                .map(|n| format!("token-{n}"))
                .unwrap_or_else(|| "token".into());
            let mut t = issue(st, policies, ttl, &name, "auth/token/create", meta);
            if body.get("renewable").and_then(Value::as_bool) == Some(false) {
                t.renewable = false;
                if let Some(stored) = st.vault.lock().tokens.get_mut(&t.id) {
                    stored.renewable = false;
                }
            }
            return auth_response(&t);
        }
        ("POST" | "PUT", "auth/approle/login") => return approle_login(st, &body),
        _ => {}
    }
    // JWT auth at `jwt/` (always, as `vault auth enable jwt` would) or at any path enabled with
    // `sys/auth/<path>` of type `jwt` or `oidc` (`vault auth enable -path=nomad-workloads jwt`).
    if let Some(rest) = path.strip_prefix("auth/")
        && let Some((mount, rest)) = rest.split_once('/')
        && is_jwt_mount(st, mount)
    {
        if rest == "login" && matches!(method, "POST" | "PUT") {
            return jwt_login(st, mount, &body);
        }
        if let Some(name) = rest.strip_prefix("role/") {
            return jwt_role(st, method, mount, name, &body);
        }
    }
    if path == "auth/approle/role" && super::is_list(&req.method, &req.params) {
        let inner = st.vault.lock();
        if inner.approles.is_empty() {
            return errors(StatusCode::NOT_FOUND, &[]);
        }
        let keys: Vec<&String> = inner.approles.keys().collect();
        return ok(envelope(json!({ "keys": keys }), "approle"));
    }
    if let Some(rest) = path.strip_prefix("auth/approle/role/") {
        return approle_role(st, req, rest, &body);
    }
    no_route(path)
}

fn secret_id_lookup_json(sid: &SecretId) -> Value {
    let expiration = if sid.ttl == 0 {
        "0001-01-01T00:00:00Z".to_string()
    } else {
        i64::try_from(sid.ttl)
            .ok()
            .and_then(|t| sid.created.checked_add(time::Duration::seconds(t)))
            .map(super::ts)
            .unwrap_or_default()
    };
    json!({
        "cidr_list": [],
        "creation_time": super::ts(sid.created),
        "expiration_time": expiration,
        "last_updated_time": super::ts(sid.created),
        "metadata": sid.metadata,
        "secret_id_accessor": sid.accessor,
        "secret_id_num_uses": sid.num_uses,
        "secret_id_ttl": sid.ttl,
        "token_bound_cidrs": [],
    })
}

/// A new secret ID for `role` from a `secret-id` or `custom-secret-id` body.
fn new_secret_id(
    role: &AppRole,
    body: &Map<String, Value>,
    custom: Option<String>,
) -> Result<SecretId, String> {
    // `metadata` is a JSON object encoded as a string.
    let metadata = match body.get("metadata") {
        Some(Value::String(text)) if !text.trim().is_empty() => {
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) => m,
                _ => return Err("failed to parse metadata: invalid JSON object".into()),
            }
        }
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    Ok(SecretId {
        id: custom.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        accessor: uuid::Uuid::new_v4().to_string(),
        ttl: ttl_of(body.get("ttl")).unwrap_or(role.secret_id_ttl),
        num_uses: body
            .get("num_uses")
            .and_then(Value::as_u64)
            .unwrap_or(role.secret_id_num_uses),
        metadata,
        created: OffsetDateTime::now_utc(),
    })
}

fn approle_role(st: &DevState, req: &Req, rest: &str, body: &Map<String, Value>) -> Response {
    let method = req.method.as_str();
    let (name, sub) = match rest.split_once('/') {
        Some((n, s)) => (n, s),
        None => (rest, ""),
    };
    let list = super::is_list(&req.method, &req.params);
    let mut inner = st.vault.lock();
    match (method, sub) {
        ("POST" | "PUT", "") => {
            let mut policies = strings(body.get("token_policies"));
            policies.extend(strings(body.get("policies")));
            let role = inner
                .approles
                .entry(name.to_string())
                .or_insert_with(|| AppRole {
                    role_id: uuid::Uuid::new_v4().to_string(),
                    policies: Vec::new(),
                    ttl: DEFAULT_TTL,
                    max_ttl: 0,
                    secret_id_ttl: 0,
                    secret_id_num_uses: 0,
                    secret_ids: Vec::new(),
                });
            // An update changes only the fields it names.
            if body.contains_key("token_policies") || body.contains_key("policies") {
                role.policies = policies;
            }
            if let Some(t) = ttl_of(body.get("token_ttl")) {
                role.ttl = t;
            }
            if let Some(t) = ttl_of(body.get("token_max_ttl")) {
                role.max_ttl = t;
            }
            if let Some(t) = ttl_of(body.get("secret_id_ttl")) {
                role.secret_id_ttl = t;
            }
            if let Some(n) = body.get("secret_id_num_uses").and_then(Value::as_u64) {
                role.secret_id_num_uses = n;
            }
            no_content()
        }
        ("GET", "") => match inner.approles.get(name) {
            Some(r) => ok(envelope(
                json!({
                    "bind_secret_id": true,
                    "local_secret_ids": false,
                    "period": 0,
                    "policies": r.policies,
                    "secret_id_bound_cidrs": [],
                    "secret_id_num_uses": r.secret_id_num_uses,
                    "secret_id_ttl": r.secret_id_ttl,
                    "token_bound_cidrs": [],
                    "token_explicit_max_ttl": 0,
                    "token_max_ttl": r.max_ttl,
                    "token_no_default_policy": false,
                    "token_num_uses": 0,
                    "token_period": 0,
                    "token_policies": r.policies,
                    "token_ttl": r.ttl,
                    "token_type": "default",
                }),
                "approle",
            )),
            None => errors(StatusCode::NOT_FOUND, &[]),
        },
        ("DELETE", "") => {
            inner.approles.remove(name);
            no_content()
        }
        ("GET", "role-id") => match inner.approles.get(name) {
            Some(r) => ok(envelope(json!({"role_id": r.role_id}), "approle")),
            None => bad(&format!("role {name} does not exist")),
        },
        ("POST" | "PUT", "role-id") => {
            let Some(r) = inner.approles.get_mut(name) else {
                return bad(&format!("role {name} does not exist"));
            };
            if let Some(id) = body.get("role_id").and_then(Value::as_str) {
                r.role_id = id.to_string();
            }
            no_content()
        }
        (_, "secret-id") if list => {
            let Some(r) = inner.approles.get(name) else {
                return bad(&format!("role \"{name}\" does not exist"));
            };
            if r.secret_ids.is_empty() {
                return errors(StatusCode::NOT_FOUND, &[]);
            }
            let keys: Vec<&str> = r.secret_ids.iter().map(|s| s.accessor.as_str()).collect();
            ok(envelope(json!({ "keys": keys }), "approle"))
        }
        ("POST" | "PUT", "secret-id" | "custom-secret-id") => {
            let Some(r) = inner.approles.get_mut(name) else {
                return bad(&format!("role \"{name}\" does not exist"));
            };
            let custom = if sub == "custom-secret-id" {
                match body.get("secret_id").and_then(Value::as_str) {
                    Some(s) if !s.is_empty() => Some(s.to_string()),
                    _ => return bad("missing secret_id"),
                }
            } else {
                None
            };
            let sid = match new_secret_id(r, body, custom) {
                Ok(s) => s,
                Err(e) => return bad(&e),
            };
            let out = json!({
                "secret_id": sid.id,
                "secret_id_accessor": sid.accessor,
                "secret_id_num_uses": sid.num_uses,
                "secret_id_ttl": sid.ttl,
            });
            r.secret_ids.push(sid);
            ok(envelope(out, "approle"))
        }
        ("POST" | "PUT", "secret-id/lookup" | "secret-id-accessor/lookup") => {
            let Some(r) = inner.approles.get(name) else {
                return bad(&format!("role \"{name}\" does not exist"));
            };
            let by_accessor = sub.starts_with("secret-id-accessor");
            let wanted = body
                .get(if by_accessor {
                    "secret_id_accessor"
                } else {
                    "secret_id"
                })
                .and_then(Value::as_str)
                .unwrap_or("");
            let now = OffsetDateTime::now_utc();
            let found = r.secret_ids.iter().find(|s| {
                !s.expired(now)
                    && if by_accessor {
                        s.accessor == wanted
                    } else {
                        s.id == wanted
                    }
            });
            match found {
                Some(sid) => ok(envelope(secret_id_lookup_json(sid), "approle")),
                // An unknown secret ID reads as no content.
                None => no_content(),
            }
        }
        ("POST" | "PUT" | "DELETE", "secret-id/destroy" | "secret-id-accessor/destroy") => {
            let Some(r) = inner.approles.get_mut(name) else {
                return bad(&format!("role \"{name}\" does not exist"));
            };
            let by_accessor = sub.starts_with("secret-id-accessor");
            let wanted = body
                .get(if by_accessor {
                    "secret_id_accessor"
                } else {
                    "secret_id"
                })
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            r.secret_ids.retain(|s| {
                if by_accessor {
                    s.accessor != wanted
                } else {
                    s.id != wanted
                }
            });
            no_content()
        }
        _ => no_route(&req.path),
    }
}

fn approle_login(st: &DevState, body: &Map<String, Value>) -> Response {
    let role_id = body.get("role_id").and_then(Value::as_str).unwrap_or("");
    let secret_id = body.get("secret_id").and_then(Value::as_str).unwrap_or("");
    if role_id.is_empty() {
        return bad("missing role_id");
    }
    let now = OffsetDateTime::now_utc();
    let found = {
        let mut inner = st.vault.lock();
        inner.approles.iter_mut().find_map(|(n, r)| {
            if r.role_id != role_id {
                return None;
            }
            let pos = r
                .secret_ids
                .iter()
                .position(|s| s.id == secret_id && !s.expired(now))?;
            let sid = r.secret_ids[pos].clone();
            // A secret ID with a use limit is consumed; the last use removes it.
            if sid.num_uses > 0 {
                if sid.num_uses == 1 {
                    r.secret_ids.remove(pos);
                } else {
                    r.secret_ids[pos].num_uses -= 1;
                }
            }
            Some((n.clone(), r.clone(), sid))
        })
    };
    let Some((name, role, sid)) = found else {
        return bad("invalid role or secret ID");
    };
    let mut meta = sid.metadata;
    meta.insert("role_name".into(), json!(name));
    let t = issue(
        st,
        role.policies,
        role.ttl,
        "approle",
        "auth/approle/login",
        Some(meta),
    );
    auth_response(&t)
}

/// A JWT segment: base64url without padding (tolerating padding and the standard alphabet).
fn base64url_decode(segment: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let trimmed = segment.trim_end_matches('=');
    URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| STANDARD_NO_PAD.decode(trimmed))
        .ok()
}

/// The JWT's claims if it has three segments and a JSON header and payload (no signature check).
fn jwt_claims(jwt: &str) -> Option<Map<String, Value>> {
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return None;
    }
    let header: Value = serde_json::from_slice(&base64url_decode(parts[0])?).ok()?;
    header.get("alg")?;
    match serde_json::from_slice(&base64url_decode(parts[1])?).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Whether `mount` (under `auth/`) is a JWT auth method.
fn is_jwt_mount(st: &DevState, mount: &str) -> bool {
    mount == "jwt"
        || st
            .vault
            .lock()
            .auth_mounts
            .get(mount)
            .is_some_and(|(kind, _)| matches!(kind.as_str(), "jwt" | "oidc"))
}

/// `auth/<mount>/role/<name>`: write (`POST`/`PUT`) or read a JWT role of that mount.
fn jwt_role(
    st: &DevState,
    method: &str,
    mount: &str,
    name: &str,
    body: &Map<String, Value>,
) -> Response {
    let key = (mount.to_string(), name.to_string());
    if !matches!(method, "POST" | "PUT") {
        let inner = st.vault.lock();
        return match inner.jwt_roles.get(&key) {
            Some(r) => ok(envelope(
                json!({"token_policies": r.policies, "bound_audiences": r.bound_audiences, "token_ttl": r.ttl, "role_type": "jwt"}),
                "jwt",
            )),
            None => errors(StatusCode::NOT_FOUND, &[]),
        };
    }
    let mut policies = strings(body.get("token_policies"));
    policies.extend(strings(body.get("policies")));
    let role = JwtRole {
        policies,
        ttl: ttl_of(body.get("token_ttl")).unwrap_or(DEFAULT_TTL),
        bound_audiences: strings(body.get("bound_audiences")),
    };
    st.vault.lock().jwt_roles.insert(key, role);
    no_content()
}

fn jwt_login(st: &DevState, mount: &str, body: &Map<String, Value>) -> Response {
    let role_name = body.get("role").and_then(Value::as_str).unwrap_or("");
    let jwt = body.get("jwt").and_then(Value::as_str).unwrap_or("");
    if jwt.is_empty() {
        return bad("missing token");
    }
    if role_name.is_empty() {
        return bad("missing role");
    }
    let key = (mount.to_string(), role_name.to_string());
    let role = st.vault.lock().jwt_roles.get(&key).cloned();
    let Some(role) = role else {
        return bad(&format!("role {role_name:?} could not be found"));
    };
    let Some(claims) = jwt_claims(jwt) else {
        return bad("error validating token: invalid JWT");
    };
    if !role.bound_audiences.is_empty() {
        let auds = strings(claims.get("aud"));
        if !auds.iter().any(|a| role.bound_audiences.contains(a)) {
            return bad(
                "error validating claims: invalid audience (aud) claim: audience claim does not match any expected audience",
            );
        }
    }
    let mut meta = Map::new();
    meta.insert("role".into(), json!(role_name));
    let login_path = format!("auth/{mount}/login");
    let t = issue(st, role.policies, role.ttl, "jwt", &login_path, Some(meta));
    auth_response(&t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_shape_is_checked() {
        // {"alg":"none"} . {"sub":"x","aud":"vault"} . sig
        let jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4IiwiYXVkIjoidmF1bHQifQ.c2ln";
        let claims = jwt_claims(jwt).unwrap_or_default();
        assert_eq!(claims.get("aud"), Some(&json!("vault")));
        assert!(jwt_claims("not-a-jwt").is_none());
        assert!(jwt_claims("a.b.c").is_none());
    }
}
