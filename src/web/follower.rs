//! A follower (`ha:`) serves the page and the read-only API, and refuses every change (the
//! API's sync, rollback, unpin and refresh, and the Git webhooks) with `503` naming the leader,
//! so a load balancer or a Git host retries, and reaches the leader.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

use super::api::FollowerRefusal;
use crate::ha::Leadership;

/// Seconds a refused client is asked to wait: a takeover needs at least the lock's TTL anyway.
const RETRY_AFTER_SECONDS: &str = "5";

/// Whether a request changes something: anything but a read. `POST /login` only opens a page
/// session on this replica, so a follower lets it through.
pub fn is_change(method: &Method, path: &str) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) && path != "/login"
}

/// Middleware: on a follower, a change gets `503` with `{"error", "leader"}` and `Retry-After`.
pub async fn refuse_changes(
    State(leadership): State<watch::Receiver<Leadership>>,
    request: Request,
    next: Next,
) -> Response {
    let leader = {
        let now = leadership.borrow();
        (!now.leads()).then(|| now.leader.clone())
    };
    match leader {
        Some(leader) if is_change(request.method(), request.uri().path()) => {
            let error = match &leader {
                Some(leader) => {
                    format!("this drover is a follower: changes go to the leader, {leader}")
                }
                None => "this drover is a follower and no leader holds the lock right now \
                         (a takeover is under way): retry"
                    .to_string(),
            };
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(FollowerRefusal { error, leader }),
            )
                .into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
            response
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_but_reads_is_a_change_except_the_page_login() {
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            assert!(is_change(&method, "/api/v1/apps/web/sync"));
            assert!(is_change(&method, "/api/v1/refresh"));
            assert!(is_change(&method, "/webhooks/github"));
        }
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(!is_change(&method, "/api/v1/status"));
        }
        assert!(!is_change(&Method::POST, "/login"));
    }
}
