//! The API token: mutating endpoints (sync, refresh, rollback, unpin) need
//! `Authorization: Bearer <token>`, and with `web.private` the read-only API and the page do too.
//! Without a configured token the mutating endpoints are off (403), never open. The token is
//! compared in constant time (as SHA-256 digests, so its length does not leak either) and never
//! logged: refusals log the method and path only.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::telemetry::Redacted;

/// Who may call what.
#[derive(Clone, Default)]
pub struct ApiAuth {
    /// SHA-256 of the configured token.
    token_digest: Option<Arc<Redacted<[u8; 32]>>>,
    /// Whether reads need the token too.
    private: bool,
    /// The page-session cookie's value: derived from the token, so the cookie is not the token.
    session: Option<Arc<Redacted<String>>>,
}

impl std::fmt::Debug for ApiAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiAuth")
            .field("token", &self.token_digest.is_some())
            .field("private", &self.private)
            .finish()
    }
}

/// What a caller's credentials amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credentials {
    /// No `Authorization` header.
    Missing,
    /// A header that is not the token (or not a bearer token).
    Wrong,
    /// The token.
    Valid,
}

fn digest(text: &[u8]) -> [u8; 32] {
    Sha256::digest(text).into()
}

impl ApiAuth {
    /// `token`: from `DROVER_API_TOKEN` or `web.token_file`; `private`: reads need it too.
    pub fn new(token: Option<&Redacted<String>>, private: bool) -> ApiAuth {
        ApiAuth {
            token_digest: token.map(|t| Arc::new(Redacted(digest(t.expose().as_bytes())))),
            private,
            session: token.map(|t| {
                let derived = digest(format!("drover-page-session:{}", t.expose()).as_bytes());
                Arc::new(Redacted(hex::encode(derived)))
            }),
        }
    }

    /// Whether mutating endpoints can be used at all (a token is configured); the page disables
    /// its buttons otherwise.
    pub fn changes_enabled(&self) -> bool {
        self.token_digest.is_some()
    }

    /// Whether the request carries the page-session cookie `POST /login` set.
    fn has_session(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.session else {
            return false;
        };
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == SESSION_COOKIE)
            .any(|(_, value)| bool::from(value.as_bytes().ct_eq(expected.expose().as_bytes())))
    }

    fn check(&self, headers: &HeaderMap) -> Credentials {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Credentials::Missing;
        };
        let Some(expected) = &self.token_digest else {
            return Credentials::Wrong;
        };
        let given = bearer(value).map(|t| digest(t.as_bytes()));
        match given {
            Some(given) if bool::from(given.ct_eq(expected.expose())) => Credentials::Valid,
            _ => Credentials::Wrong,
        }
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
pub(crate) fn bearer(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?.trim();
    let (scheme, token) = text.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn answer(status: StatusCode, message: &str) -> Response {
    let mut response = (status, Json(json!({ "error": message }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"drover\""),
        );
    }
    response
}

/// What a refused caller is told.
pub const TOKEN_NOT_CONFIGURED: &str = "changes through the API are off: no API token is \
    configured; set DROVER_API_TOKEN (or web.token_file in drover.yaml) on the server and send \
    it as `Authorization: Bearer <token>` (the CLI reads DROVER_API_TOKEN)";
const TOKEN_MISSING: &str =
    "this endpoint needs the API token as `Authorization: Bearer <token>` (DROVER_API_TOKEN)";
const TOKEN_WRONG: &str = "the API token is wrong";

async fn require(auth: &ApiAuth, request: Request, next: Next) -> Response {
    if auth.token_digest.is_none() {
        tracing::warn!(method = %request.method(), path = %request.uri().path(), "refused: no API token configured");
        return answer(StatusCode::FORBIDDEN, TOKEN_NOT_CONFIGURED);
    }
    match auth.check(request.headers()) {
        Credentials::Valid => next.run(request).await,
        refused => {
            tracing::warn!(method = %request.method(), path = %request.uri().path(), credentials = ?refused, "refused: API token missing or wrong");
            let message = if refused == Credentials::Missing {
                TOKEN_MISSING
            } else {
                TOKEN_WRONG
            };
            answer(StatusCode::UNAUTHORIZED, message)
        }
    }
}

/// Middleware for mutating endpoints: the token, always.
pub async fn changes(State(auth): State<ApiAuth>, request: Request, next: Next) -> Response {
    require(&auth, request, next).await
}

/// Middleware for the read-only API and the page: with `web.private`, the token or the page
/// session cookie (a browser cannot add the header to a page load). A page request without
/// either gets the login form (still `401`).
pub async fn reads(State(auth): State<ApiAuth>, request: Request, next: Next) -> Response {
    if !auth.private || auth.has_session(request.headers()) {
        return next.run(request).await;
    }
    let is_page = !request.uri().path().starts_with(super::API_PREFIX);
    if is_page && auth.check(request.headers()) != Credentials::Valid {
        tracing::info!("status page: login form shown");
        return (StatusCode::UNAUTHORIZED, Html(LOGIN_PAGE)).into_response();
    }
    require(&auth, request, next).await
}

/// The page-session cookie.
const SESSION_COOKIE: &str = "drover_session";

/// `POST /login` body.
#[derive(serde::Deserialize)]
pub struct Login {
    token: String,
}

/// `POST /login` with `{"token": "..."}` (the guard has made sure it is JSON from drover's own
/// page): the right token sets an `HttpOnly; SameSite=Strict` session cookie for the private page
/// and read-only API; the token itself never goes into a URL or a cookie.
pub async fn login(State(auth): State<ApiAuth>, Json(login): Json<Login>) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {}", login.token)) {
        headers.insert(header::AUTHORIZATION, value);
    }
    match (&auth.session, auth.check(&headers)) {
        (Some(session), Credentials::Valid) => {
            let cookie = format!(
                "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
                session.expose()
            );
            match HeaderValue::from_str(&cookie) {
                Ok(value) => {
                    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, value)]).into_response()
                }
                Err(_) => answer(StatusCode::INTERNAL_SERVER_ERROR, "cannot set the cookie"),
            }
        }
        (None, _) => answer(StatusCode::FORBIDDEN, TOKEN_NOT_CONFIGURED),
        _ => {
            tracing::warn!("login refused: wrong API token");
            answer(StatusCode::UNAUTHORIZED, TOKEN_WRONG)
        }
    }
}

/// The private page's login form: posts JSON to `/login` (a plain form post would be refused as
/// cross-site-capable), then reloads.
const LOGIN_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>drover: sign in</title></head>
<body>
<h1>drover</h1>
<p>This drover is private: enter its API token (DROVER_API_TOKEN).</p>
<form id="login"><input type="password" name="token" autocomplete="current-password" autofocus>
<button type="submit">Sign in</button></form>
<p id="error" role="alert"></p>
<script>
document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = event.target.token.value;
  const answer = await fetch("/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token }),
  });
  if (answer.ok) { location.reload(); }
  else { document.getElementById("error").textContent = "wrong token"; }
});
</script>
</body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn with_authorization(value: &'static str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        map
    }

    #[test]
    fn only_the_exact_bearer_token_is_valid() {
        let auth = ApiAuth::new(Some(&Redacted("s3cret-token".to_string())), false);
        assert_eq!(auth.check(&HeaderMap::new()), Credentials::Missing);
        assert_eq!(
            auth.check(&with_authorization("Bearer s3cret-token")),
            Credentials::Valid
        );
        assert_eq!(
            auth.check(&with_authorization("bearer  s3cret-token ")),
            Credentials::Valid
        );
        for wrong in [
            "Bearer s3cret-toke",
            "Bearer s3cret-token2",
            "Bearer S3CRET-TOKEN",
            "Basic s3cret-token",
            "s3cret-token",
            "Bearer ",
            "Bearer",
        ] {
            assert_eq!(
                auth.check(&with_authorization(wrong)),
                Credentials::Wrong,
                "{wrong}"
            );
        }
        let off = ApiAuth::new(None, false);
        assert_eq!(
            off.check(&with_authorization("Bearer s3cret-token")),
            Credentials::Wrong
        );
    }
}
