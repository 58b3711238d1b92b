//! HTTP plumbing of the simulated Nomad API: one dispatcher for `/v1/...`, Nomad's plain-text
//! errors, index headers, `?pretty`, blocking queries and ACL checks.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Map, Value, json};

use super::super::DevState;
use super::super::clock::parse_go_duration;
use super::{AclToken, Inner, csi, jobs, misc, vars};

/// An error answered as Nomad does: status line plus bare text.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub msg: String,
}

impl ApiError {
    pub fn bad(msg: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            msg: msg.into(),
        }
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            msg: msg.into(),
        }
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            msg: msg.into(),
        }
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            msg: msg.into(),
        }
    }
    pub fn method() -> Self {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            msg: "Invalid method".to_string(),
        }
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::CONFLICT,
            msg: msg.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, self.msg).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        resp
    }
}

/// Result type of every handler.
pub(crate) type ApiResult = Result<Response, ApiError>;

/// A parsed request.
pub(crate) struct Req {
    pub method: Method,
    pub segs: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Req {
    /// A query parameter's value (`Some("")` for a bare `?flag`).
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean query flag (`?purge=true`, bare `?purge`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.q(key), Some("") | Some("true") | Some("1"))
    }

    /// `?namespace=`, default `default`.
    pub fn namespace(&self) -> String {
        match self.q("namespace") {
            Some(ns) if !ns.is_empty() => ns.to_string(),
            _ => "default".to_string(),
        }
    }

    /// The ACL secret from `X-Nomad-Token` or `Authorization: Bearer`.
    pub fn token(&self) -> Option<String> {
        if let Some(v) = self
            .headers
            .get("x-nomad-token")
            .and_then(|v| v.to_str().ok())
        {
            return Some(v.to_string());
        }
        self.headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|v| v.trim().to_string())
    }

    /// Decode the JSON body like Go's decoder: empty → 400 `Request body is empty`.
    pub fn json(&self) -> Result<Value, ApiError> {
        if self.body.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(ApiError::bad("Request body is empty"));
        }
        serde_json::from_slice(&self.body).map_err(|e| ApiError::bad(e.to_string()))
    }
}

/// Case-insensitive field lookup, as Go's `encoding/json` matches names.
pub(crate) fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Serialize a body, honouring `?pretty`.
fn render(req: &Req, body: &Value) -> Vec<u8> {
    let pretty = matches!(req.q("pretty"), Some(v) if v != "0");
    let out = if pretty {
        serde_json::to_vec_pretty(body)
    } else {
        serde_json::to_vec(body)
    };
    out.unwrap_or_default()
}

fn json_response(req: &Req, status: StatusCode, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(render(req, body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A read: body plus `X-Nomad-Index`, `X-Nomad-KnownLeader`, `X-Nomad-LastContact`.
pub(crate) fn read_reply(req: &Req, index: u64, body: &Value) -> Response {
    let mut resp = json_response(req, StatusCode::OK, body);
    let h = resp.headers_mut();
    h.insert("x-nomad-index", HeaderValue::from(index));
    h.insert("x-nomad-knownleader", HeaderValue::from_static("true"));
    h.insert("x-nomad-lastcontact", HeaderValue::from_static("0"));
    resp
}

/// A write: body plus `X-Nomad-Index`.
pub(crate) fn write_reply(req: &Req, index: u64, body: &Value) -> Response {
    let mut resp = json_response(req, StatusCode::OK, body);
    resp.headers_mut()
        .insert("x-nomad-index", HeaderValue::from(index));
    resp
}

/// An empty-bodied reply with an index header.
pub(crate) fn empty_reply(status: StatusCode, index: u64) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert("x-nomad-index", HeaderValue::from(index));
    resp
}

/// A JSON reply with an arbitrary status (409 with the conflicting variable).
pub(crate) fn status_reply(req: &Req, status: StatusCode, body: &Value) -> Response {
    json_response(req, status, body)
}

/// Add `Index`, `LastContact`, `KnownLeader`, `NextToken` to a Response-type body.
pub(crate) fn with_meta(mut body: Value, index: u64) -> Value {
    if let Some(obj) = body.as_object_mut() {
        obj.insert("Index".into(), json!(index));
        obj.insert("LastContact".into(), json!(0));
        obj.insert("KnownLeader".into(), json!(true));
        obj.insert("NextToken".into(), json!(""));
    }
    body
}

/// Parse `index` and `wait` (400 `Invalid index` / `Invalid wait time`).
fn blocking_params(req: &Req) -> Result<(u64, Duration), ApiError> {
    let index = match req.q("index") {
        None | Some("") => 0,
        Some(i) => i
            .parse::<u64>()
            .map_err(|_| ApiError::bad("Invalid index"))?,
    };
    let wait = match req.q("wait") {
        None | Some("") => Duration::from_secs(300),
        Some(w) => parse_go_duration(w).ok_or_else(|| ApiError::bad("Invalid wait time"))?,
    };
    Ok((index, wait.min(Duration::from_secs(300))))
}

/// A blocking read: wait until `index_of` passes `?index`, then build the body.
pub(crate) async fn blocking<I, B>(
    st: &Arc<DevState>,
    req: &Req,
    index_of: I,
    body_of: B,
) -> ApiResult
where
    I: Fn(&Inner) -> u64,
    B: FnOnce(&Inner, u64) -> Result<Value, ApiError>,
{
    let (min, wait) = blocking_params(req)?;
    let nomad = &st.nomad;
    if min > 0 {
        nomad
            .clock
            .wait_past(min, wait, || index_of(&nomad.lock()))
            .await;
    }
    let inner = nomad.lock();
    let index = index_of(&inner).max(1);
    match body_of(&inner, index) {
        Ok(body) => Ok(read_reply(req, index, &body)),
        // A read that found nothing still carries the query metadata headers (measured on
        // Nomad 2.0.5, api-facts §7: `GET /v1/job/nosuch` → 404 with X-Nomad-Index …).
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            let mut resp = e.into_response();
            let h = resp.headers_mut();
            h.insert("x-nomad-index", HeaderValue::from(index));
            h.insert("x-nomad-knownleader", HeaderValue::from_static("true"));
            h.insert("x-nomad-lastcontact", HeaderValue::from_static("0"));
            Ok(resp)
        }
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------------
// ACL

/// What a request may do, resolved from its token.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    /// ACLs off, or a management token.
    Management(String),
    /// A client token.
    Token(AclToken),
    /// No token while ACLs are on.
    Anonymous,
}

impl Caller {
    /// The accessor ID recorded as the job's `NomadTokenID`.
    pub fn accessor(&self) -> String {
        match self {
            Caller::Management(a) => a.clone(),
            Caller::Token(t) => t.accessor_id.clone(),
            Caller::Anonymous => String::new(),
        }
    }

    /// Whether the caller holds `cap` in `ns`.
    pub fn can(&self, ns: &str, cap: &str) -> bool {
        match self {
            Caller::Management(_) => true,
            Caller::Anonymous => false,
            Caller::Token(t) => {
                if t.management {
                    return true;
                }
                let ns_ok = t.namespaces.iter().any(|n| n == ns || n == "*");
                let implied: &[&str] = match cap {
                    "read-job" | "list-jobs" => {
                        &["read-job", "list-jobs", "submit-job", "read", "write"]
                    }
                    "parse-job" => &["parse-job", "submit-job", "write"],
                    "plan-job" => &["plan-job", "submit-job", "write"],
                    "submit-job" => &["submit-job", "write"],
                    "variables-read" => &["variables-read", "variables-write", "read", "write"],
                    "variables-write" => &["variables-write", "write"],
                    other => {
                        return ns_ok && t.capabilities.iter().any(|c| c == other || c == "write");
                    }
                };
                ns_ok && t.capabilities.iter().any(|c| implied.contains(&c.as_str()))
            }
        }
    }

    /// Management-only operations (nodes writes, namespaces writes).
    pub fn is_management(&self) -> bool {
        match self {
            Caller::Management(_) => true,
            Caller::Token(t) => t.management,
            Caller::Anonymous => false,
        }
    }
}

/// Resolve the caller; 403 `ACL token not found` for an unknown secret.
pub(crate) fn caller(st: &DevState, req: &Req) -> Result<Caller, ApiError> {
    let inner = st.nomad.lock();
    let token = req.token();
    let known = token.as_ref().and_then(|t| inner.tokens.get(t)).cloned();
    if !st.config.nomad_acl {
        // With ACLs disabled no token is resolved, so jobs get no NomadTokenID.
        return Ok(Caller::Management(String::new()));
    }
    match (token, known) {
        (None, _) => Ok(Caller::Anonymous),
        (Some(t), _) if t.is_empty() => Ok(Caller::Anonymous),
        (Some(_), None) => Err(ApiError::forbidden("ACL token not found")),
        (Some(_), Some(t)) if t.management => Ok(Caller::Management(t.accessor_id)),
        (Some(_), Some(t)) => Ok(Caller::Token(t)),
    }
}

/// Require `cap` in `ns` (403 `Permission denied`).
pub(crate) fn require(st: &DevState, req: &Req, ns: &str, cap: &str) -> Result<Caller, ApiError> {
    let c = caller(st, req)?;
    if c.can(ns, cap) {
        Ok(c)
    } else {
        Err(ApiError::forbidden("Permission denied"))
    }
}

/// Require any known token (node, agent, status reads).
pub(crate) fn require_any(st: &DevState, req: &Req) -> Result<Caller, ApiError> {
    let c = caller(st, req)?;
    match c {
        Caller::Anonymous => Err(ApiError::forbidden("Permission denied")),
        c => Ok(c),
    }
}

/// Require a management token.
pub(crate) fn require_management(st: &DevState, req: &Req) -> Result<Caller, ApiError> {
    let c = caller(st, req)?;
    if c.is_management() {
        Ok(c)
    } else {
        Err(ApiError::forbidden("Permission denied"))
    }
}

/// For list endpoints: which namespaces the caller lists (`*` filters silently, one namespace
/// without `cap` is 403).
pub(crate) fn list_namespaces(
    st: &DevState,
    req: &Req,
    cap: &str,
) -> Result<Option<Vec<String>>, ApiError> {
    let c = caller(st, req)?;
    let ns = req.namespace();
    if ns == "*" {
        let all: Vec<String> = st.nomad.lock().namespaces.keys().cloned().collect();
        if c.is_management() {
            return Ok(None);
        }
        return Ok(Some(all.into_iter().filter(|n| c.can(n, cap)).collect()));
    }
    if c.can(&ns, cap) {
        Ok(Some(vec![ns]))
    } else {
        Err(ApiError::forbidden("Permission denied"))
    }
}

/// Whether a namespace filter admits `ns` (`None` = all).
pub(crate) fn ns_ok(filter: &Option<Vec<String>>, ns: &str) -> bool {
    filter.as_ref().is_none_or(|f| f.iter().any(|n| n == ns))
}

// ---------------------------------------------------------------------------------------------
// Routing

/// The Nomad API router: one catch-all dispatcher, empty 404 for unknown paths.
pub(crate) fn router() -> Router<Arc<DevState>> {
    Router::new()
        .route("/v1/{*rest}", any(dispatch))
        .fallback(|| async { StatusCode::NOT_FOUND })
}

async fn dispatch(State(st): State<Arc<DevState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => return ApiError::bad(e.to_string()).into_response(),
    };
    let path = parts.uri.path();
    let rest = path.strip_prefix("/v1/").unwrap_or("");
    let segs: Vec<String> = rest.split('/').map(percent_decode).collect();
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let req = Req {
        method: parts.method,
        segs,
        query,
        headers: parts.headers,
        body,
    };
    match route(&st, &req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

async fn route(st: &Arc<DevState>, req: &Req) -> ApiResult {
    let segs: Vec<&str> = req.segs.iter().map(|s| s.as_str()).collect();
    let m = &req.method;
    let get = *m == Method::GET;
    let put = *m == Method::PUT || *m == Method::POST;
    let del = *m == Method::DELETE;
    match segs.as_slice() {
        ["jobs"] if get => jobs::list(st, req).await,
        ["jobs"] if put => jobs::register(st, req, None).await,
        ["jobs", "parse"] if put => jobs::parse(st, req).await,
        ["jobs", "parse"] | ["jobs"] => Err(ApiError::method()),
        ["job", id] if get => jobs::get(st, req, id).await,
        ["job", id] if put => jobs::register(st, req, Some(id)).await,
        ["job", id] if del => jobs::deregister(st, req, id).await,
        ["job", _] => Err(ApiError::method()),
        ["job", id, "plan"] if put => jobs::plan(st, req, id).await,
        ["job", id, "versions"] if get => jobs::versions(st, req, id).await,
        ["job", id, "submission"] if get => jobs::submission(st, req, id).await,
        ["job", id, "revert"] if put => jobs::revert(st, req, id).await,
        ["job", id, "stable"] if put => jobs::stable(st, req, id).await,
        ["job", id, "summary"] if get => jobs::summary(st, req, id).await,
        ["job", id, "allocations"] if get => jobs::allocations(st, req, id).await,
        ["job", id, "evaluations"] if get => jobs::evaluations(st, req, id).await,
        ["job", id, "deployment"] if get => jobs::latest_deployment(st, req, id).await,
        ["job", id, "deployments"] if get => jobs::deployments(st, req, id).await,
        ["job", id, "scale"] if get => jobs::scale_status(st, req, id).await,
        ["job", id, "scale"] if put => jobs::scale(st, req, id).await,
        ["job", id, "evaluate"] if put => jobs::evaluate(st, req, id).await,
        [
            "job",
            _,
            "plan" | "versions" | "submission" | "revert" | "stable" | "summary",
        ]
        | [
            "job",
            _,
            "allocations" | "evaluations" | "deployment" | "deployments" | "scale",
        ]
        | ["job", _, "evaluate"] => Err(ApiError::method()),
        // Nomad treats any other suffix as part of the job ID (`/v1/job/a/b` reads job `a/b`).
        ["job", rest @ ..] if get => jobs::get(st, req, &rest.join("/")).await,
        ["job", _, ..] => Err(ApiError::method()),
        ["validate", "job"] if put => jobs::validate(st, req).await,
        ["deployments"] if get => misc::deployments(st, req).await,
        ["deployment", id] if get => misc::deployment(st, req, id).await,
        ["deployment", "fail", id] if put => misc::deployment_fail(st, req, id).await,
        ["deployment", "promote", id] if put => misc::deployment_promote(st, req, id).await,
        ["allocations"] if get => misc::allocations(st, req).await,
        ["allocation", id] if get => misc::allocation(st, req, id).await,
        ["evaluations"] if get => misc::evaluations(st, req).await,
        ["evaluation", id] if get => misc::evaluation(st, req, id).await,
        ["nodes"] if get => misc::nodes(st, req).await,
        ["node", id] if get => misc::node(st, req, id).await,
        ["node", id, "drain"] if put => misc::node_drain(st, req, id).await,
        ["node", id, "eligibility"] if put => misc::node_eligibility(st, req, id).await,
        ["node", id, "allocations"] if get => misc::node_allocations(st, req, id).await,
        ["namespaces"] if get => misc::namespaces(st, req).await,
        ["namespace", name] if get => misc::namespace(st, req, name).await,
        ["namespace", name] if put => misc::namespace_put(st, req, name).await,
        ["namespace", name] if del => misc::namespace_delete(st, req, name).await,
        ["namespace"] if put => misc::namespace_put(st, req, "").await,
        ["plugins"] if get => csi::plugins(st, req).await,
        ["plugin", "csi", id] if get => csi::plugin(st, req, id).await,
        ["volumes"] if get => csi::volumes(st, req).await,
        ["volumes"] if put => csi::register(st, req, None).await,
        ["volume", "csi", id] if get => csi::volume(st, req, id).await,
        ["volume", "csi", id] if *m == Method::PUT => csi::register(st, req, Some(id)).await,
        ["volume", "csi", id] if del => csi::deregister(st, req, id).await,
        ["volume", "csi", id, "create"] if *m == Method::PUT => csi::create(st, req, id).await,
        ["volume", "csi", id, "delete"] if del => csi::delete(st, req, id).await,
        ["volume", "csi", id, "detach"] if del => csi::detach(st, req, id).await,
        ["volume", "csi", ..] => Err(ApiError::method()),
        ["vars"] if get => vars::list(st, req).await,
        ["var", rest @ ..] if !rest.is_empty() => vars::handle(st, req, &rest.join("/")).await,
        ["status", "leader"] if get => misc::leader(st, req),
        ["status", "peers"] if get => misc::peers(st, req),
        ["agent", "self"] if get => misc::agent_self(st, req),
        ["regions"] if get => misc::regions(st, req),
        ["event", "stream"] if get => super::events::stream(st, req).await,
        _ => Ok(StatusCode::NOT_FOUND.into_response()),
    }
}

/// Build a JSON object from pairs (keeps insertion order).
pub(crate) fn obj(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert(k.to_string(), v);
    }
    Value::Object(m)
}
