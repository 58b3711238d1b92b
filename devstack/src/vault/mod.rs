//! The simulated Vault server: KV v2 and v1 mounts, sys/mounts, sys/auth, sys/capabilities,
//! token create/lookup/renew/revoke, AppRole and JWT login, a small ACL policy model, Vault's
//! JSON error bodies.

mod auth;
mod kv;
pub mod policy;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::faults::VAULT_PERMISSION_DENIED;
use super::{DevState, DevstackConfig};

/// Query parameters of a request.
pub(crate) type Params = HashMap<String, String>;

/// One version of a KV v2 secret.
#[derive(Debug, Clone)]
pub(crate) struct Version {
    pub data: Option<Map<String, Value>>,
    pub created: OffsetDateTime,
    pub deleted: Option<OffsetDateTime>,
    pub destroyed: bool,
}

/// A KV v2 secret: its versions and metadata.
#[derive(Debug, Clone)]
pub(crate) struct Secret {
    pub versions: BTreeMap<u64, Version>,
    pub current: u64,
    pub oldest: u64,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    pub max_versions: u64,
    pub cas_required: bool,
    pub custom_metadata: Option<Map<String, Value>>,
    /// `delete_version_after` in seconds; 0 defers to the mount's setting.
    pub delete_version_after: u64,
}

/// A secrets engine mount (only KV is simulated).
#[derive(Debug, Clone)]
pub(crate) struct Mount {
    pub version: u8,
    pub uuid: String,
    pub accessor: String,
    pub description: String,
    pub cas_required: bool,
    pub max_versions: u64,
    /// Mount-wide `delete_version_after` in seconds (0: versions are never auto-deleted).
    pub delete_version_after: u64,
    pub v2: BTreeMap<String, Secret>,
    pub v1: BTreeMap<String, Map<String, Value>>,
}

impl Mount {
    fn new(version: u8) -> Self {
        Mount {
            version,
            uuid: uuid::Uuid::new_v4().to_string(),
            accessor: format!("kv_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
            description: String::new(),
            cas_required: false,
            max_versions: 0,
            delete_version_after: 0,
            v2: BTreeMap::new(),
            v1: BTreeMap::new(),
        }
    }
}

/// A token.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub id: String,
    pub accessor: String,
    pub policies: Vec<String>,
    pub display_name: String,
    pub path: String,
    pub created: OffsetDateTime,
    /// Lease length granted by the last issue or renew, in seconds (0: never expires).
    pub ttl: u64,
    /// The TTL the token was created with (`creation_ttl`); renewals do not change it.
    pub creation_ttl: u64,
    /// When the current lease started: issue time, then each renewal.
    pub renewed: OffsetDateTime,
    /// `renewable: false` at creation forbids renewals.
    pub renewable: bool,
    pub meta: Option<Map<String, Value>>,
    pub orphan: bool,
}

/// An AppRole role.
#[derive(Debug, Clone)]
pub(crate) struct AppRole {
    pub role_id: String,
    pub policies: Vec<String>,
    pub ttl: u64,
    /// `token_max_ttl` in seconds (0: the system maximum).
    pub max_ttl: u64,
    /// Default `secret_id_ttl` (seconds) and `secret_id_num_uses` for new secret IDs.
    pub secret_id_ttl: u64,
    pub secret_id_num_uses: u64,
    pub secret_ids: Vec<SecretId>,
}

/// One AppRole secret ID with its accessor and limits.
#[derive(Debug, Clone)]
pub(crate) struct SecretId {
    pub id: String,
    pub accessor: String,
    /// Seconds until it expires (0: never).
    pub ttl: u64,
    /// Logins left (0: unlimited).
    pub num_uses: u64,
    /// Set on tokens issued with it, next to `role_name`.
    pub metadata: Map<String, Value>,
    pub created: OffsetDateTime,
}

impl SecretId {
    /// Whether its TTL has run out.
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        self.ttl > 0
            && i64::try_from(self.ttl)
                .ok()
                .and_then(|t| self.created.checked_add(time::Duration::seconds(t)))
                .is_some_and(|end| end <= now)
    }
}

/// A JWT auth role.
#[derive(Debug, Clone)]
pub(crate) struct JwtRole {
    pub policies: Vec<String>,
    pub ttl: u64,
    pub bound_audiences: Vec<String>,
}

/// Everything behind Vault's lock.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    /// Mount path without slashes → mount.
    pub mounts: BTreeMap<String, Mount>,
    pub tokens: HashMap<String, Token>,
    /// Policy name → (source text, parsed rules).
    pub policies: BTreeMap<String, (String, Vec<policy::PathRule>)>,
    pub approles: BTreeMap<String, AppRole>,
    /// JWT roles by (auth mount, role name).
    pub jwt_roles: BTreeMap<(String, String), JwtRole>,
    /// Enabled auth methods, `sys/auth`: path without slashes → (type, accessor).
    pub auth_mounts: BTreeMap<String, (String, String)>,
}

impl Inner {
    /// The mount a path lies under (longest match): `(mount name, rest of the path)`.
    pub fn find_mount<'p>(&self, path: &'p str) -> Option<(String, &'p str)> {
        self.mounts
            .keys()
            .filter(|m| path == m.as_str() || path.starts_with(&format!("{m}/")))
            .max_by_key(|m| m.len())
            .map(|m| {
                let rest = path[m.len()..].trim_start_matches('/');
                (m.clone(), rest)
            })
    }
}

/// Vault's in-memory state.
pub struct VaultState {
    inner: Mutex<Inner>,
}

impl VaultState {
    /// Dev-mode state: a KV v2 mount at `secret/`, the root token.
    pub fn new(config: &DevstackConfig) -> Self {
        let state = VaultState {
            inner: Mutex::new(Inner::default()),
        };
        state.reset(config);
        state
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means a handler panicked mid-update; the data is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forget everything and re-apply the seed.
    pub fn reset(&self, config: &DevstackConfig) {
        let mut inner = self.lock();
        *inner = Inner::default();
        inner.mounts.insert("secret".into(), Mount::new(2));
        inner.auth_mounts.insert(
            "token".into(),
            ("token".into(), "auth_token_devstack".into()),
        );
        inner.tokens.insert(
            config.root_token.clone(),
            Token {
                id: config.root_token.clone(),
                accessor: uuid::Uuid::new_v4().to_string(),
                policies: vec!["root".into()],
                display_name: "root".into(),
                path: "auth/token/root".into(),
                created: OffsetDateTime::now_utc(),
                ttl: 0,
                creation_ttl: 0,
                renewed: OffsetDateTime::now_utc(),
                renewable: false,
                meta: None,
                orphan: true,
            },
        );
        inner.policies.insert(
            "default".into(),
            (
                "path \"auth/token/lookup-self\" { capabilities = [\"read\"] }\n".into(),
                Vec::new(),
            ),
        );
        if let Some(seed) = &config.seed {
            for m in &seed.vault_mounts {
                let name = m.path.trim_matches('/').to_string();
                inner.mounts.insert(name, Mount::new(m.version));
            }
            for s in &seed.vault_secrets {
                let data: Map<String, Value> =
                    s.data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                if let Err(e) = kv::seed_secret(&mut inner, &s.mount, &s.path, data) {
                    tracing::warn!(mount = %s.mount, path = %s.path, error = %e, "vault seed secret skipped");
                }
            }
        }
    }

    /// Write a secret (KV v2 new version, or KV v1 overwrite) as the control API's seeding does.
    /// Creates a KV v2 mount when the mount does not exist.
    pub fn seed_secret(
        &self,
        mount: &str,
        path: &str,
        data: Map<String, Value>,
    ) -> Result<(), String> {
        kv::seed_secret(&mut self.lock(), mount, path, data)
    }

    /// Read a secret the way consul-template does for `{{ with secret "p" }}`: resolve the mount
    /// (the `sys/internal/ui/mounts` preflight), add `data/` for KV v2 unless present, and treat
    /// a deleted or destroyed current version as missing. Returns what the template sees as
    /// `.Data`: for KV v2 `{"data": {..}, "metadata": {..}}` (so `.Data.data.KEY`), for KV v1
    /// the secret's own keys.
    pub fn template_read(&self, path: &str) -> Option<BTreeMap<String, Value>> {
        let inner = self.lock();
        kv::template_read(&inner, path.trim_start_matches('/'))
    }
}

/// The `/v1/...` routes of the Vault API (one dispatcher: mounts are dynamic).
pub fn router() -> Router<Arc<DevState>> {
    Router::new().route("/v1/{*path}", any(dispatch))
}

/// RFC 3339 with nanoseconds, as Vault prints times.
pub(crate) fn ts(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The success envelope around `data`.
pub(crate) fn envelope(data: Value, mount_type: &str) -> Value {
    json!({
        "request_id": uuid::Uuid::new_v4().to_string(),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": null,
        "auth": null,
        "mount_type": mount_type,
    })
}

/// A 200 JSON answer.
pub(crate) fn ok(body: Value) -> Response {
    axum::Json(body).into_response()
}

/// `{"errors": [..]}` with a status.
pub(crate) fn errors(status: StatusCode, messages: &[&str]) -> Response {
    (status, axum::Json(json!({ "errors": messages }))).into_response()
}

/// 204 No Content.
pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// 404 for a path no mount or backend serves.
pub(crate) fn no_route(path: &str) -> Response {
    errors(
        StatusCode::NOT_FOUND,
        &[&format!(
            "no handler for route {path:?}. route entry not found."
        )],
    )
}

/// The token a request presents: `X-Vault-Token`, or `Authorization: Bearer`.
pub(crate) fn request_token(headers: &HeaderMap) -> Option<String> {
    if let Some(t) = headers.get("X-Vault-Token").and_then(|v| v.to_str().ok())
        && !t.is_empty()
    {
        return Some(t.to_string());
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

fn parse_params(uri: &Uri) -> Params {
    uri.query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a request is a list operation (`LIST` or `GET ?list=true`).
pub(crate) fn is_list(method: &Method, params: &Params) -> bool {
    method.as_str() == "LIST"
        || (method == Method::GET && params.get("list").is_some_and(|v| v == "true" || v == "1"))
}

/// Paths served without a token.
fn unauthenticated(path: &str) -> bool {
    matches!(path, "sys/health" | "sys/seal-status" | "sys/leader")
        || path.starts_with("sys/internal/ui/mounts")
        || is_login(path)
}

/// `auth/<mount>/login`: every auth method's login is served without a token.
fn is_login(path: &str) -> bool {
    path.strip_prefix("auth/")
        .and_then(|rest| rest.strip_suffix("/login"))
        .is_some_and(|mount| !mount.is_empty() && !mount.contains('/'))
}

/// Paths every valid token may use (Vault's `default` policy).
fn default_allowed(path: &str) -> bool {
    matches!(
        path,
        "auth/token/lookup-self"
            | "auth/token/renew-self"
            | "auth/token/revoke-self"
            | "sys/capabilities-self"
    )
}

/// Token and policy check before the handler: `None` lets the request through, otherwise
/// Vault's 403 (`permission denied` multierror), which also covers unknown tokens.
pub(crate) fn gate(state: &DevState, request: &Request) -> Option<Response> {
    let path = request.uri().path().strip_prefix("/v1/")?;
    let path = path.trim_end_matches('/');
    if unauthenticated(path) {
        return None;
    }
    let denied = || Some(errors(StatusCode::FORBIDDEN, &[VAULT_PERMISSION_DENIED]));
    let Some(token) = request_token(request.headers()) else {
        return denied();
    };
    let inner = state.vault.lock();
    let Some(tok) = inner.tokens.get(&token) else {
        return denied();
    };
    if tok.policies.iter().any(|p| p == "root") || default_allowed(path) {
        return None;
    }
    let params = parse_params(request.uri());
    let wanted: &[&str] = if is_list(request.method(), &params) {
        &["list"]
    } else {
        match request.method().as_str() {
            "GET" | "HEAD" => &["read"],
            "POST" | "PUT" => &["create", "update"],
            "PATCH" => &["patch", "update"],
            "DELETE" => &["delete"],
            _ => &["read"],
        }
    };
    let rules: Vec<policy::PathRule> = tok
        .policies
        .iter()
        .filter_map(|p| inner.policies.get(p))
        .flat_map(|(_, r)| r.iter().cloned())
        .collect();
    if policy::allows(&rules, path, wanted) {
        None
    } else {
        denied()
    }
}

/// One parsed request, as the handlers see it.
pub(crate) struct Req {
    pub method: Method,
    /// Path after `/v1/`, without a trailing slash.
    pub path: String,
    pub params: Params,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl Req {
    /// The body as a JSON object (empty body → empty object); `Err` is Vault's 400.
    pub fn json(&self) -> Result<Map<String, Value>, Box<Response>> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(Box::new(errors(
                StatusCode::BAD_REQUEST,
                &["failed to parse JSON input: body is not an object"],
            ))),
            Err(e) => Err(Box::new(errors(
                StatusCode::BAD_REQUEST,
                &[&format!("failed to parse JSON input: {e}")],
            ))),
        }
    }
}

async fn dispatch(
    State(st): State<Arc<DevState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let path = uri
        .path()
        .strip_prefix("/v1/")
        .unwrap_or("")
        .trim_end_matches('/')
        .to_string();
    let req = Req {
        method,
        params: parse_params(&uri),
        path,
        headers,
        body,
    };
    let mut response = if req.path.starts_with("sys/") {
        sys(&st, &req)
    } else if req.path.starts_with("auth/") {
        auth::handle(&st, &req)
    } else {
        kv::handle(&st, &req)
    };
    if !response.headers().contains_key(header::CACHE_CONTROL) {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn mount_json(m: &Mount) -> Value {
    json!({
        "accessor": m.accessor,
        "config": {"default_lease_ttl": 0, "force_no_cache": false, "max_lease_ttl": 0},
        "description": m.description,
        "external_entropy_access": false,
        "local": false,
        "options": {"version": m.version.to_string()},
        "plugin_version": "",
        "running_plugin_version": "v0.20.0+builtin",
        "running_sha256": "",
        "seal_wrap": false,
        "type": "kv",
        "uuid": m.uuid,
    })
}

fn builtin_mount(kind: &str, description: &str) -> Value {
    json!({
        "accessor": format!("{kind}_devstack"),
        "config": {"default_lease_ttl": 0, "force_no_cache": false, "max_lease_ttl": 0},
        "description": description,
        "external_entropy_access": false,
        "local": kind == "cubbyhole",
        "options": null,
        "plugin_version": "",
        "running_plugin_version": format!("v1.18.0+builtin.vault"),
        "running_sha256": "",
        "seal_wrap": false,
        "type": kind,
        "uuid": uuid::Uuid::new_v4().to_string(),
    })
}

fn health_json() -> Value {
    json!({
        "initialized": true,
        "sealed": false,
        "standby": false,
        "performance_standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": OffsetDateTime::now_utc().unix_timestamp(),
        "version": "1.18.0",
        "enterprise": false,
        "cluster_name": "vault-cluster-devstack",
        "cluster_id": "00000000-0000-0000-0000-000000000001",
        "echo_duration_ms": 0,
        "clock_skew_ms": 0,
    })
}

fn sys(st: &DevState, req: &Req) -> Response {
    let path = req.path.as_str();
    let method = req.method.as_str();
    match (method, path) {
        ("GET" | "HEAD", "sys/health") => return ok(health_json()),
        ("GET", "sys/seal-status") => {
            return ok(json!({
                "type": "shamir", "initialized": true, "sealed": false, "t": 1, "n": 1,
                "progress": 0, "nonce": "", "version": "1.18.0", "build_date": "2026-01-01T00:00:00Z",
                "migration": false, "cluster_name": "vault-cluster-devstack",
                "cluster_id": "00000000-0000-0000-0000-000000000001", "recovery_seal": false,
                "storage_type": "inmem",
            }));
        }
        ("GET", "sys/leader") => {
            return ok(
                json!({"ha_enabled": false, "is_self": false, "active_time": "0001-01-01T00:00:00Z",
                "leader_address": "", "leader_cluster_address": "", "performance_standby": false,
                "performance_standby_last_remote_wal": 0}),
            );
        }
        ("GET", "sys/mounts") => {
            let inner = st.vault.lock();
            let mut mounts = Map::new();
            for (name, m) in &inner.mounts {
                mounts.insert(format!("{name}/"), mount_json(m));
            }
            mounts.insert(
                "cubbyhole/".into(),
                builtin_mount("cubbyhole", "per-token private secret storage"),
            );
            mounts.insert(
                "identity/".into(),
                builtin_mount("identity", "identity store"),
            );
            mounts.insert(
                "sys/".into(),
                builtin_mount(
                    "system",
                    "system endpoints used for control, policy and debugging",
                ),
            );
            // Vault returns the mounts both at the top level and under `data`.
            let mut body = envelope(Value::Object(mounts.clone()), "system");
            if let Some(obj) = body.as_object_mut() {
                for (k, v) in mounts {
                    obj.insert(k, v);
                }
            }
            return ok(body);
        }
        _ => {}
    }
    if let Some(mount) = path
        .strip_prefix("sys/mounts/")
        .and_then(|m| m.strip_suffix("/tune"))
        && method == "GET"
    {
        return sys_mount_tune(st, mount);
    }
    if let Some(mount) = path.strip_prefix("sys/mounts/") {
        return sys_mount(st, req, mount);
    }
    if matches!(path, "sys/capabilities-self" | "sys/capabilities") && method != "GET" {
        return sys_capabilities(st, req, path == "sys/capabilities-self");
    }
    if path == "sys/auth" && method == "GET" {
        return sys_auth_list(st);
    }
    if let Some(mount) = path.strip_prefix("sys/auth/") {
        return sys_auth(st, req, mount);
    }
    if path == "sys/internal/ui/mounts" && method == "GET" {
        // The UI's mount list: secret engines and auth methods, keyed `<path>/`.
        let inner = st.vault.lock();
        let secret: Map<String, Value> = inner
            .mounts
            .iter()
            .map(|(name, m)| (format!("{name}/"), mount_json(m)))
            .collect();
        let auth: Map<String, Value> = inner
            .auth_mounts
            .iter()
            .map(|(p, (kind, accessor))| (format!("{p}/"), auth_mount_json(kind, accessor)))
            .collect();
        return ok(envelope(json!({"auth": auth, "secret": secret}), "system"));
    }
    if let Some(target) = path.strip_prefix("sys/internal/ui/mounts/") {
        let inner = st.vault.lock();
        // Vault answers 403 rather than 404 so mounts cannot be enumerated, and also when the
        // token has no capability anywhere under the mount.
        let preflight = || {
            errors(
                StatusCode::FORBIDDEN,
                &[&format!(
                    "preflight capability check returned 403, please ensure client's policies grant access to path \"{target}/\""
                )],
            )
        };
        let Some((name, _)) = inner.find_mount(target) else {
            return preflight();
        };
        let token = request_token(&req.headers).and_then(|t| inner.tokens.get(&t));
        let Some(token) = token else {
            return preflight();
        };
        if !token.policies.iter().any(|p| p == "root") {
            let prefix = format!("{name}/");
            let access = token
                .policies
                .iter()
                .filter_map(|p| inner.policies.get(p))
                .flat_map(|(_, rules)| rules.iter())
                .any(|r| {
                    let pat = r.pattern.trim_end_matches('*');
                    (pat.starts_with(&prefix) || prefix.starts_with(pat))
                        && r.capabilities.iter().any(|c| c != "deny")
                });
            if !access {
                return preflight();
            }
        }
        let mut m = inner
            .mounts
            .get(&name)
            .map(mount_json)
            .unwrap_or(Value::Null);
        if let Some(obj) = m.as_object_mut() {
            obj.insert("path".into(), json!(format!("{name}/")));
        }
        return ok(envelope(m, "system"));
    }
    let policy_name = path
        .strip_prefix("sys/policies/acl/")
        .or_else(|| path.strip_prefix("sys/policy/"));
    if let Some(name) = policy_name {
        return sys_policy(st, req, name, path.starts_with("sys/policies/acl/"));
    }
    if (path == "sys/policies/acl" || path == "sys/policy")
        && (is_list(&req.method, &req.params) || method == "GET")
    {
        let inner = st.vault.lock();
        let mut keys: Vec<String> = inner.policies.keys().cloned().collect();
        keys.push("root".into());
        keys.sort();
        return ok(envelope(json!({"keys": keys, "policies": keys}), "system"));
    }
    no_route(path)
}

fn sys_mount(st: &DevState, req: &Req, mount: &str) -> Response {
    let mount = mount.trim_matches('/').to_string();
    let mut inner = st.vault.lock();
    match req.method.as_str() {
        "POST" | "PUT" => {
            let body = match req.json() {
                Ok(b) => b,
                Err(r) => return *r,
            };
            let kind = body.get("type").and_then(Value::as_str).unwrap_or("");
            let opt_version = body
                .get("options")
                .and_then(|o| o.get("version"))
                .and_then(|v| match v {
                    Value::String(s) => s.parse::<u8>().ok(),
                    Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
                    _ => None,
                });
            let version = match kind {
                "kv" => opt_version.unwrap_or(1),
                "kv-v2" => 2,
                "" => {
                    return errors(StatusCode::BAD_REQUEST, &["missing backend type"]);
                }
                other => {
                    return errors(
                        StatusCode::BAD_REQUEST,
                        &[&format!("plugin not found in the catalog: {other}")],
                    );
                }
            };
            if !(version == 1 || version == 2) {
                return errors(
                    StatusCode::BAD_REQUEST,
                    &["invalid version: must be 1 or 2"],
                );
            }
            if let Some((existing, _)) = inner.find_mount(&mount) {
                return errors(
                    StatusCode::BAD_REQUEST,
                    &[&format!("path is already in use at {existing}/")],
                );
            }
            let mut m = Mount::new(version);
            m.description = body
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            inner.mounts.insert(mount, m);
            no_content()
        }
        "DELETE" => {
            inner.mounts.remove(&mount);
            no_content()
        }
        "GET" => match inner.mounts.get(&mount) {
            Some(m) => ok(envelope(mount_json(m), "system")),
            None => errors(
                StatusCode::BAD_REQUEST,
                &[&format!("No secret engine mount at {mount}/")],
            ),
        },
        _ => errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"]),
    }
}

/// `GET sys/mounts/<path>/tune`: the mount's tunables, `options.version` among them.
fn sys_mount_tune(st: &DevState, mount: &str) -> Response {
    let inner = st.vault.lock();
    let mount = mount.trim_matches('/');
    match inner.mounts.get(mount) {
        Some(m) => ok(envelope(
            json!({
                "default_lease_ttl": 2_764_800,
                "max_lease_ttl": 2_764_800,
                "force_no_cache": false,
                "description": m.description,
                "options": {"version": m.version.to_string()},
            }),
            "system",
        )),
        None => errors(
            StatusCode::BAD_REQUEST,
            &[&format!("cannot fetch sysview for path \"{mount}/\"")],
        ),
    }
}

/// `POST sys/capabilities-self` (the caller's token) or `sys/capabilities` (`token` in the
/// body): the capabilities on each of `paths`, under `data` and at the top level.
fn sys_capabilities(st: &DevState, req: &Req, own: bool) -> Response {
    let body = match req.json() {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let token_id = if own {
        request_token(&req.headers).unwrap_or_default()
    } else {
        body.get("token")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let paths: Vec<String> = match body.get("paths").or_else(|| body.get("path")) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(p)) => p.split(',').map(|s| s.trim().to_string()).collect(),
        _ => Vec::new(),
    };
    if paths.is_empty() {
        return errors(StatusCode::BAD_REQUEST, &["paths must be supplied"]);
    }
    let inner = st.vault.lock();
    let Some(token) = inner.tokens.get(&token_id) else {
        return errors(StatusCode::BAD_REQUEST, &["invalid token"]);
    };
    let root = token.policies.iter().any(|p| p == "root");
    let rules: Vec<&policy::PathRule> = token
        .policies
        .iter()
        .filter_map(|p| inner.policies.get(p))
        .flat_map(|(_, r)| r.iter())
        .collect();
    let mut data = Map::new();
    for path in &paths {
        let caps: Vec<String> = if root {
            vec!["root".to_string()]
        } else {
            let matching: Vec<&&policy::PathRule> = rules
                .iter()
                .filter(|r| policy::matches(&r.pattern, path.trim_start_matches('/')))
                .collect();
            let mut caps: Vec<String> = matching
                .iter()
                .flat_map(|r| r.capabilities.iter().cloned())
                .collect();
            caps.sort();
            caps.dedup();
            // No grant, or an explicit deny, reads as ["deny"].
            if caps.is_empty() || caps.iter().any(|c| c == "deny") {
                vec!["deny".to_string()]
            } else {
                caps
            }
        };
        data.insert(path.clone(), json!(caps));
    }
    // With one path, `capabilities` repeats its list (the older single-path answer).
    if let Some(first) = paths.first().and_then(|p| data.get(p)).cloned()
        && paths.len() == 1
    {
        data.insert("capabilities".into(), first);
    }
    let mut out = envelope(Value::Object(data.clone()), "system");
    if let Some(obj) = out.as_object_mut() {
        for (k, v) in data {
            obj.insert(k, v);
        }
    }
    ok(out)
}

fn auth_mount_json(kind: &str, accessor: &str) -> Value {
    json!({
        "accessor": accessor,
        "config": {"default_lease_ttl": 0, "force_no_cache": false, "max_lease_ttl": 0, "token_type": "default-service"},
        "description": if kind == "token" { "token based credentials" } else { "" },
        "external_entropy_access": false,
        "local": false,
        "options": null,
        "plugin_version": "",
        "running_plugin_version": format!("v1.18.0+builtin.vault"),
        "running_sha256": "",
        "seal_wrap": false,
        "type": kind,
        "uuid": uuid::Uuid::new_v4().to_string(),
    })
}

/// `GET sys/auth`: enabled auth methods, keyed `<path>/`, at the top level and under `data`.
fn sys_auth_list(st: &DevState) -> Response {
    let inner = st.vault.lock();
    let mut mounts = Map::new();
    for (path, (kind, accessor)) in &inner.auth_mounts {
        mounts.insert(format!("{path}/"), auth_mount_json(kind, accessor));
    }
    let mut body = envelope(Value::Object(mounts.clone()), "system");
    if let Some(obj) = body.as_object_mut() {
        for (k, v) in mounts {
            obj.insert(k, v);
        }
    }
    ok(body)
}

/// `POST|DELETE sys/auth/<path>`: enable or disable an auth method (approle, jwt, ...).
fn sys_auth(st: &DevState, req: &Req, mount: &str) -> Response {
    let mount = mount.trim_matches('/').to_string();
    let mut inner = st.vault.lock();
    match req.method.as_str() {
        "POST" | "PUT" => {
            let body = match req.json() {
                Ok(b) => b,
                Err(r) => return *r,
            };
            let kind = body.get("type").and_then(Value::as_str).unwrap_or("");
            if kind.is_empty() {
                return errors(StatusCode::BAD_REQUEST, &["missing backend type"]);
            }
            if !matches!(kind, "approle" | "jwt" | "oidc" | "token" | "userpass") {
                return errors(
                    StatusCode::BAD_REQUEST,
                    &[&format!("plugin not found in the catalog: {kind}")],
                );
            }
            if inner.auth_mounts.contains_key(&mount) {
                return errors(
                    StatusCode::BAD_REQUEST,
                    &[&format!("path is already in use at {mount}/")],
                );
            }
            let accessor = format!(
                "auth_{kind}_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            );
            inner
                .auth_mounts
                .insert(mount, (kind.to_string(), accessor));
            no_content()
        }
        "DELETE" => {
            if mount != "token" {
                inner.auth_mounts.remove(&mount);
            }
            no_content()
        }
        _ => errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"]),
    }
}

/// One ACL policy. `sys/policies/acl/<name>` reads `{name, policy}`, the older
/// `sys/policy/<name>` reads `{name, rules}`.
fn sys_policy(st: &DevState, req: &Req, name: &str, acl_path: bool) -> Response {
    let mut inner = st.vault.lock();
    match req.method.as_str() {
        "POST" | "PUT" => {
            if name == "root" {
                return errors(StatusCode::BAD_REQUEST, &["cannot update \"root\" policy"]);
            }
            let body = match req.json() {
                Ok(b) => b,
                Err(r) => return *r,
            };
            let text = body
                .get("policy")
                .or_else(|| body.get("rules"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if text.is_empty() {
                return errors(
                    StatusCode::BAD_REQUEST,
                    &["'policy' parameter not supplied or empty"],
                );
            }
            match policy::parse(&text) {
                Ok(rules) => {
                    inner.policies.insert(name.to_string(), (text, rules));
                    no_content()
                }
                Err(e) => errors(StatusCode::BAD_REQUEST, &[&e.to_string()]),
            }
        }
        "GET" => match inner.policies.get(name) {
            Some((text, _)) => ok(envelope(
                if acl_path {
                    json!({"name": name, "policy": text})
                } else {
                    json!({"name": name, "rules": text})
                },
                "system",
            )),
            None => errors(StatusCode::NOT_FOUND, &[]),
        },
        "DELETE" => {
            inner.policies.remove(name);
            no_content()
        }
        _ => errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"]),
    }
}
