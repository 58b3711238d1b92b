//! Git webhooks: `POST /api/v1/webhooks/{github,gitea,gitlab,generic}`. A push signed with the
//! shared secret triggers an immediate fetch of the watched repository (the poll still runs).
//!
//! The routes sit outside the page/API [`guard`](super::guard): the forge is another site by
//! definition and may send form-encoded bodies; the signature or token is what authenticates.
//! Every comparison with the secret is constant time (`hmac`'s `verify_slice`).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2_for_hmac::Sha256;

use crate::source::SourceWatcher;
use crate::telemetry::Redacted;

/// The largest webhook body read; larger ones get 413 (GitHub caps payloads at 25 MB, but a
/// push of a GitOps repo is far below this).
pub const MAX_WEBHOOK_BODY: usize = 1024 * 1024;

/// Where the router is mounted.
pub const WEBHOOK_PATH: &str = "/api/v1/webhooks";

/// The header of the generic webhook's HMAC signature (`sha256=<hex>`, as GitHub's).
pub const GENERIC_SIGNATURE_HEADER: &str = "x-drover-signature-256";

type HmacSha256 = Hmac<Sha256>;

/// What the webhook handlers share.
#[derive(Clone)]
struct WebhookState {
    secret: Option<Arc<Redacted<String>>>,
    source: Arc<SourceWatcher>,
}

/// The webhook routes, to be nested at [`WEBHOOK_PATH`]. `secret: None` turns them off (404).
pub fn router(secret: Option<Redacted<String>>, source: Arc<SourceWatcher>) -> Router {
    Router::new()
        .route("/{provider}", post(receive))
        .with_state(WebhookState {
            secret: secret.map(Arc::new),
            source,
        })
}

/// The forge that sent a webhook (the last path segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    GitHub,
    Gitea,
    GitLab,
    Generic,
}

impl Provider {
    fn parse(segment: &str) -> Option<Provider> {
        match segment {
            "github" => Some(Provider::GitHub),
            "gitea" => Some(Provider::Gitea),
            "gitlab" => Some(Provider::GitLab),
            "generic" => Some(Provider::Generic),
            _ => None,
        }
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn refuse(status: StatusCode, message: &str) -> Response {
    answer(status, json!({ "error": message }))
}

async fn receive(
    State(state): State<WebhookState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(provider) = Provider::parse(&provider) else {
        return refuse(
            StatusCode::NOT_FOUND,
            "unknown webhook provider; use github, gitea, gitlab or generic",
        );
    };
    let Some(secret) = state.secret.as_deref() else {
        return refuse(
            StatusCode::NOT_FOUND,
            "webhooks are off: set DROVER_WEBHOOK_SECRET or web.webhook_secret_file",
        );
    };
    // Refuse a declared oversize at once; a chunked body is cut off at the limit while read.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_WEBHOOK_BODY as u64) {
        return too_large(provider);
    }
    let body = match axum::body::to_bytes(body, MAX_WEBHOOK_BODY).await {
        Ok(body) => body,
        Err(error) => {
            let over_limit = std::error::Error::source(&error)
                .is_some_and(|cause| cause.is::<http_body_util::LengthLimitError>());
            if over_limit {
                return too_large(provider);
            }
            tracing::warn!(?provider, %error, "reading a webhook body");
            return refuse(StatusCode::BAD_REQUEST, "cannot read the request body");
        }
    };
    if let Err(reason) = authenticate(provider, &headers, &body, secret.expose()) {
        // The reason names the header, never its value or the secret.
        tracing::warn!(?provider, reason, "webhook refused");
        return refuse(StatusCode::UNAUTHORIZED, reason);
    }
    match event_kind(provider, &headers) {
        Event::Ping => {
            return answer(StatusCode::OK, json!({ "fetch": "none", "reason": "ping" }));
        }
        Event::Other(name) => {
            return ignored(format!("event {name} is not a push"));
        }
        Event::Push => {}
    }
    let payload = parse_payload(&body);
    let config = state.source.source().config();
    if let Some(payload) = &payload {
        if let Some(pushed) = payload.get("ref").and_then(Value::as_str)
            && !ref_matches(&config.reference, pushed)
        {
            return ignored(format!(
                "push to {pushed}, drover watches {}",
                config.reference
            ));
        }
        let urls = payload_urls(payload);
        if !urls.is_empty() && !urls.iter().any(|url| same_repository(url, &config.url)) {
            return ignored("push to another repository".into());
        }
    }
    state.source.trigger();
    tracing::info!(?provider, "webhook push: fetch triggered");
    answer(StatusCode::ACCEPTED, json!({ "fetch": "triggered" }))
}

fn too_large(provider: Provider) -> Response {
    tracing::warn!(
        ?provider,
        limit = MAX_WEBHOOK_BODY,
        "webhook body too large"
    );
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("webhook body over {MAX_WEBHOOK_BODY} bytes"),
    )
}

fn ignored(reason: String) -> Response {
    tracing::info!(reason, "webhook ignored");
    answer(
        StatusCode::ACCEPTED,
        json!({ "fetch": "ignored", "reason": reason }),
    )
}

/// Check the request's signature or token against `secret`; the error says what was wrong.
fn authenticate(
    provider: Provider,
    headers: &HeaderMap,
    body: &[u8],
    secret: &str,
) -> Result<(), &'static str> {
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match provider {
        Provider::GitHub => {
            let signature =
                header_text("x-hub-signature-256").ok_or("missing X-Hub-Signature-256 header")?;
            verify_hmac(secret, body, signature.strip_prefix("sha256="))
        }
        Provider::Gitea => {
            let signature =
                header_text("x-gitea-signature").ok_or("missing X-Gitea-Signature header")?;
            verify_hmac(secret, body, Some(signature))
        }
        Provider::GitLab => {
            let token = header_text("x-gitlab-token").ok_or("missing X-Gitlab-Token header")?;
            verify_token(secret, token)
        }
        Provider::Generic => {
            if let Some(signature) = header_text(GENERIC_SIGNATURE_HEADER) {
                return verify_hmac(secret, body, signature.strip_prefix("sha256="));
            }
            let token = headers
                .get(header::AUTHORIZATION)
                .and_then(super::auth::bearer)
                .ok_or("missing Authorization: Bearer or X-Drover-Signature-256 header")?;
            verify_token(secret, token)
        }
    }
}

/// `hex_signature` must be the hex HMAC-SHA256 of `body` under `secret`.
fn verify_hmac(secret: &str, body: &[u8], hex_signature: Option<&str>) -> Result<(), &'static str> {
    const BAD: &str = "signature does not match the body and secret";
    let signature = hex_signature
        .and_then(|text| hex::decode(text.trim()).ok())
        .ok_or(BAD)?;
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).map_err(|_| BAD)?;
    mac.update(body);
    mac.verify_slice(&signature).map_err(|_| BAD)
}

/// `token` must equal `secret`. Both are run through HMAC so the comparison is constant time
/// and does not leak the secret's length.
fn verify_token(secret: &str, token: &str) -> Result<(), &'static str> {
    const BAD: &str = "token does not match the secret";
    let digest = |text: &str| {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).map_err(|_| BAD)?;
        mac.update(text.as_bytes());
        Ok::<_, &'static str>(mac)
    };
    let expected = digest(secret)?.finalize().into_bytes();
    digest(token)?.verify_slice(&expected).map_err(|_| BAD)
}

#[derive(Debug, PartialEq, Eq)]
enum Event {
    Push,
    Ping,
    Other(String),
}

/// The event a forge says it sent; a missing header counts as a push (the body decides).
fn event_kind(provider: Provider, headers: &HeaderMap) -> Event {
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (name, push): (Option<&str>, &[&str]) = match provider {
        Provider::GitHub => (header_text("x-github-event"), &["push"]),
        Provider::Gitea => (header_text("x-gitea-event"), &["push"]),
        Provider::GitLab => (
            header_text("x-gitlab-event"),
            &["Push Hook", "Tag Push Hook"],
        ),
        Provider::Generic => (None, &[]),
    };
    match name {
        None => Event::Push,
        Some("ping") => Event::Ping,
        Some(name) if push.contains(&name) => Event::Push,
        Some(name) => Event::Other(name.chars().take(64).collect()),
    }
}

/// The JSON payload, also from a form-encoded `payload=` body (GitHub's other content type).
fn parse_payload(body: &[u8]) -> Option<Value> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return Some(value);
    }
    url::form_urlencoded::parse(body)
        .find(|(key, _)| key == "payload")
        .and_then(|(_, payload)| serde_json::from_str(&payload).ok())
}

/// Whether a push to `pushed` (`refs/heads/main`) concerns the watched `reference` (`main`,
/// `refs/heads/main`; `HEAD` follows the default branch, which the payload does not reliably
/// name, so every ref counts).
fn ref_matches(reference: &str, pushed: &str) -> bool {
    if reference == "HEAD" {
        return true;
    }
    let short = |r: &str| {
        r.strip_prefix("refs/heads/")
            .or_else(|| r.strip_prefix("refs/tags/"))
            .unwrap_or(r)
            .to_string()
    };
    pushed == reference || short(pushed) == short(reference)
}

/// The repository URLs a GitHub, Gitea or GitLab push payload names.
fn payload_urls(payload: &Value) -> Vec<String> {
    let fields = [
        ("repository", "clone_url"),
        ("repository", "ssh_url"),
        ("repository", "git_url"),
        ("repository", "html_url"),
        ("repository", "git_http_url"),
        ("repository", "git_ssh_url"),
        ("project", "git_http_url"),
        ("project", "git_ssh_url"),
        ("project", "web_url"),
    ];
    fields
        .iter()
        .filter_map(|(object, field)| payload.get(object)?.get(field)?.as_str())
        .map(str::to_string)
        .collect()
}

/// Whether two repository URLs name the same repository: scheme, credentials, port, a `.git`
/// suffix, a trailing slash and case are ignored; `git@host:owner/repo` equals
/// `https://host/owner/repo`.
fn same_repository(a: &str, b: &str) -> bool {
    normalise_repo_url(a) == normalise_repo_url(b)
}

fn normalise_repo_url(url: &str) -> String {
    let mut rest = url.trim().to_lowercase();
    if let Some((_, after)) = rest.split_once("://") {
        rest = after.to_string();
    } else if let Some((user_host, path)) = rest.split_once(':')
        && !user_host.contains('/')
    {
        // scp-like `git@host:owner/repo`.
        rest = format!("{user_host}/{path}");
    }
    let (authority, path) = match rest.split_once('/') {
        Some((authority, path)) => (authority.to_string(), path.to_string()),
        None => (rest.clone(), String::new()),
    };
    let host = authority.rsplit('@').next().unwrap_or(&authority);
    let host = host.split(':').next().unwrap_or(host);
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    format!("{host}/{path}")
}

/// For [`crate::fuzzing::webhook`]: `data`'s first line as every provider's signature or token
/// header (and event header), the rest as the body, through authentication, the event kind and
/// the push payload's ref and repository checks. A correct signature must always verify.
pub(crate) fn fuzz_request(data: &[u8]) {
    const SECRET: &str = "fuzz-secret";
    let (line, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(value) = axum::http::HeaderValue::from_bytes(line) else {
        return;
    };
    let mut headers = HeaderMap::new();
    for name in [
        "x-hub-signature-256",
        "x-gitea-signature",
        "x-gitlab-token",
        GENERIC_SIGNATURE_HEADER,
        "x-github-event",
        "x-gitea-event",
        "x-gitlab-event",
    ] {
        headers.insert(name, value.clone());
    }
    headers.insert(header::AUTHORIZATION, value);
    for provider in [
        Provider::GitHub,
        Provider::Gitea,
        Provider::GitLab,
        Provider::Generic,
    ] {
        let _ = authenticate(provider, &headers, body, SECRET);
        let _ = event_kind(provider, &headers);
    }
    let mut mac = HmacSha256::new_from_slice(SECRET.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    mac.update(body);
    let signature = hex::encode(mac.finalize().into_bytes());
    assert_eq!(verify_hmac(SECRET, body, Some(&signature)), Ok(()));
    if let Some(payload) = parse_payload(body) {
        if let Some(pushed) = payload.get("ref").and_then(Value::as_str) {
            for reference in ["HEAD", "main", "refs/heads/main", "refs/tags/v1"] {
                let _ = ref_matches(reference, pushed);
            }
        }
        for url in payload_urls(&payload) {
            let _ = same_repository(&url, "https://git.example.com/ops/desired-state.git");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac =
            HmacSha256::new_from_slice(secret.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn hmac_signatures_verify_only_with_the_right_secret_and_body() {
        let signature = sign("s3cret", b"body");
        assert_eq!(verify_hmac("s3cret", b"body", Some(&signature)), Ok(()));
        assert!(verify_hmac("other", b"body", Some(&signature)).is_err());
        assert!(verify_hmac("s3cret", b"body2", Some(&signature)).is_err());
        assert!(verify_hmac("s3cret", b"body", Some("zz")).is_err());
        assert!(verify_hmac("s3cret", b"body", None).is_err());
    }

    #[test]
    fn tokens_must_equal_the_secret() {
        assert_eq!(verify_token("s3cret", "s3cret"), Ok(()));
        assert!(verify_token("s3cret", "s3cre").is_err());
        assert!(verify_token("s3cret", "s3cret ").is_err());
        assert!(verify_token("s3cret", "").is_err());
    }

    #[test]
    fn the_generic_bearer_scheme_is_case_insensitive() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::AUTHORIZATION,
                axum::http::HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{e}")),
            );
            authenticate(Provider::Generic, &headers, b"{}", "s3cret")
        };
        assert_eq!(with("Bearer s3cret"), Ok(()));
        assert_eq!(with("bearer s3cret"), Ok(()));
        assert_eq!(with("BEARER  s3cret"), Ok(()));
        assert!(with("Bearer other").is_err());
        assert!(with("Basic s3cret").is_err());
    }

    #[test]
    fn refs_match_the_watched_branch_only() {
        assert!(ref_matches("main", "refs/heads/main"));
        assert!(ref_matches("refs/heads/main", "refs/heads/main"));
        assert!(!ref_matches("main", "refs/heads/feature"));
        assert!(ref_matches("HEAD", "refs/heads/anything"));
        assert!(ref_matches("v1", "refs/tags/v1"));
    }

    #[test]
    fn repository_urls_compare_by_host_and_path() {
        let https = "https://github.com/Owner/Repo.git";
        assert!(same_repository(https, "git@github.com:owner/repo.git"));
        assert!(same_repository(
            https,
            "https://user:tok@github.com/owner/repo/"
        ));
        assert!(same_repository(https, "ssh://git@github.com:22/owner/repo"));
        assert!(!same_repository(https, "https://github.com/owner/other"));
        assert!(!same_repository(https, "https://gitlab.com/owner/repo"));
        assert!(same_repository("/tmp/x/repo", "/tmp/x/repo/"));
    }

    #[test]
    fn github_ping_and_other_events_are_told_apart() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-github-event",
            "ping".parse().unwrap_or_else(|e| panic!("{e}")),
        );
        assert_eq!(event_kind(Provider::GitHub, &headers), Event::Ping);
        headers.insert(
            "x-github-event",
            "issues".parse().unwrap_or_else(|e| panic!("{e}")),
        );
        assert_eq!(
            event_kind(Provider::GitHub, &headers),
            Event::Other("issues".into())
        );
        headers.insert(
            "x-github-event",
            "push".parse().unwrap_or_else(|e| panic!("{e}")),
        );
        assert_eq!(event_kind(Provider::GitHub, &headers), Event::Push);
    }
}
