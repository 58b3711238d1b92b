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
use axum::response::{IntoResponse, Response};
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
        }
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
fn bearer(value: &HeaderValue) -> Option<&str> {
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

/// Middleware for the read-only API and the page: the token when `web.private` is set.
pub async fn reads(State(auth): State<ApiAuth>, request: Request, next: Next) -> Response {
    if auth.private {
        require(&auth, request, next).await
    } else {
        next.run(request).await
    }
}

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
