//! The status page, JSON API, manual sync/refresh/rollback endpoints and `/healthz` (axum).

pub mod api;
pub mod auth;
pub mod guard;
pub mod page;
pub mod webhook;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::controller::schedule::ControllerHandle;
use crate::controller::{AppStatus, Context};
use crate::source::SourceWatcher;

/// What the handlers share.
#[derive(Clone)]
pub struct WebState {
    /// Controller context (statuses, store).
    pub ctx: Context,
    /// Manual sync requests.
    pub controller: ControllerHandle,
    /// Git refresh and revision resolution.
    pub source: Arc<SourceWatcher>,
    /// Allowed `Host` names (see [`guard`]).
    pub access: guard::AccessPolicy,
    /// The API token (see [`auth`]).
    pub auth: auth::ApiAuth,
}

/// All routes: the page, `/healthz` and the JSON API under `/api/v1/` (see [`auth`] for who
/// may call what).
pub fn router(state: WebState) -> Router {
    let reads = axum::middleware::from_fn_with_state(state.auth.clone(), auth::reads);
    let changes = axum::middleware::from_fn_with_state(state.auth.clone(), auth::changes);
    let api_reads = Router::new()
        .route("/apps", get(list_apps))
        .route("/apps/{name}", get(get_app))
        .route("/apps/{name}/resources", get(resources))
        .route("/apps/{name}/history", get(history))
        .route("/source", get(source_status))
        .route("/status", get(repo_status))
        .route("/events", get(events))
        .route("/alerts", get(alerts))
        .route_layer(reads.clone());
    let api_changes = Router::new()
        .route("/apps/{name}/sync", post(sync_app))
        .route("/apps/{name}/rollback", post(rollback))
        .route("/apps/{name}/unpin", post(unpin))
        .route("/refresh", post(refresh))
        .route_layer(changes);
    Router::new()
        .route("/", get(page).route_layer(reads))
        .route("/healthz", get(|| async { "ok" }))
        .route("/login", post(auth::login).with_state(state.auth.clone()))
        .nest(API_PREFIX, api_reads.merge(api_changes))
        .layer(axum::middleware::from_fn_with_state(
            state.access.clone(),
            guard::guard,
        ))
        .with_state(state)
}

/// Where the JSON API lives; the CLI prefixes its paths with it too.
pub const API_PREFIX: &str = "/api/v1";

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = api::ApiError {
        error: message.into(),
    };
    (status, Json(body)).into_response()
}

/// What a client is told when drover itself failed: the detail (paths, SQL, OS errors) is for
/// the operator, so it goes to the log and never to the client.
pub const INTERNAL_ERROR: &str = "internal error, see the drover log";

/// Log `failure` with its causes while doing `what`, and answer a 500 without them.
fn internal_error(what: &str, failure: &dyn std::error::Error) -> Response {
    tracing::error!(error = %crate::telemetry::error_chain(failure), "{what}");
    error(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR)
}

async fn list_apps(State(state): State<WebState>) -> Json<Vec<AppStatus>> {
    Json(state.ctx.statuses.borrow().values().cloned().collect())
}

/// Recent alerts, newest first, each with its channels' deliveries.
async fn alerts(State(state): State<WebState>) -> Json<Vec<crate::notify::AlertRecord>> {
    let mut recent = state.ctx.alerts.recent();
    recent.reverse();
    Json(recent)
}

async fn resources(State(state): State<WebState>, Path(name): Path<String>) -> Response {
    match state.ctx.status_of(&name) {
        Some(status) => Json(status.resources).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no app named {name}")),
    }
}

async fn get_app(State(state): State<WebState>, Path(name): Path<String>) -> Response {
    match state.ctx.status_of(&name) {
        Some(status) => Json(status).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no app named {name}")),
    }
}

/// How long a manual sync waits for the fetch (and load) of the newest commit before it syncs
/// what drover has; a failed or slow fetch never blocks the sync itself.
const SYNC_FETCH_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

async fn sync_app(State(state): State<WebState>, Path(name): Path<String>) -> Response {
    // Fetch first, and wait until the controller holds that commit, so a sync right after a
    // push applies the push (the app task takes its revision when it runs).
    let started = tokio::time::Instant::now();
    if let Ok(fetched) = tokio::time::timeout(SYNC_FETCH_LIMIT, state.source.refresh()).await
        && let Some(revision) = fetched.revision
    {
        let left = SYNC_FETCH_LIMIT.saturating_sub(started.elapsed());
        state.controller.wait_loaded(&revision.id, left).await;
    }
    if state.controller.request_sync(&name) {
        let body = api::SyncRequested {
            app: name,
            sync: "requested".into(),
        };
        (StatusCode::ACCEPTED, Json(body)).into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("no app named {name}"))
    }
}

async fn history(State(state): State<WebState>, Path(name): Path<String>) -> Response {
    match state.ctx.store.history(&name, 50).await {
        // An app gone from Git keeps its history; a name never seen is a typo.
        Ok(records) if records.is_empty() && state.ctx.status_of(&name).is_none() => {
            error(StatusCode::NOT_FOUND, format!("no app named {name}"))
        }
        Ok(records) => Json(
            records
                .into_iter()
                .map(|r| api::HistoryEntry {
                    id: r.id,
                    app: r.app,
                    revision: r.revision,
                    started_at: secs(r.started_at),
                    finished_at: r.finished_at.map(secs),
                    result: r.result,
                    message: r.message,
                    changes: r.changes,
                    trigger: r.trigger,
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => internal_error("reading sync history", &e),
    }
}

#[derive(serde::Deserialize)]
struct RollbackRequest {
    revision: String,
}

async fn rollback(
    State(state): State<WebState>,
    Path(name): Path<String>,
    Json(request): Json<RollbackRequest>,
) -> Response {
    if state.ctx.status_of(&name).is_none() {
        return error(StatusCode::NOT_FOUND, format!("no app named {name}"));
    }
    let source = state.source.source().clone();
    let wanted = request.revision.clone();
    // Load the app from that revision: pinning to a revision without it, or where it does not
    // load, would leave the app with nothing to apply.
    let read = tokio::task::spawn_blocking(move || {
        source
            .revision_at(&wanted)
            .map(|revision| (crate::desired::load(&revision), revision))
    })
    .await;
    let (loaded, revision) = match read {
        Ok(Ok(read)) => read,
        // An unknown commit or tag is the user's to fix; anything else is drover's.
        Ok(Err(e @ crate::source::SourceError::RefNotFound { .. })) => {
            return error(StatusCode::BAD_REQUEST, e.to_string());
        }
        Ok(Err(e)) => return internal_error("reading the rollback revision", &e),
        Err(e) => return internal_error("reading the rollback revision", &e),
    };
    match loaded.app(&name).map(|app| &app.result) {
        None => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("revision {} has no app {name}", revision.short_id()),
            );
        }
        Some(Err(diagnostics)) => {
            let errors: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "app {name} is invalid at revision {}: {}",
                    revision.short_id(),
                    errors.join("; ")
                ),
            );
        }
        Some(Ok(_)) => {}
    }
    let commit = revision.id;
    if let Err(e) = state.ctx.store.pin(&name, &commit).await {
        return internal_error("pinning an app", &e);
    }
    let _ = state
        .ctx
        .store
        .add_event(
            Some(&name),
            "info",
            &format!("pinned to {commit} (rollback)"),
        )
        .await;
    state.controller.request_sync(&name);
    Json(api::Pinned {
        app: name,
        pinned: commit,
    })
    .into_response()
}

async fn unpin(State(state): State<WebState>, Path(name): Path<String>) -> Response {
    // A pinned app that left Git may still be unpinned; a name never seen is a typo.
    if state.ctx.status_of(&name).is_none() {
        match state.ctx.store.pinned(&name).await {
            Ok(Some(_)) => {}
            Ok(None) => return error(StatusCode::NOT_FOUND, format!("no app named {name}")),
            Err(e) => return internal_error("reading an app's pin", &e),
        }
    }
    match state.ctx.store.unpin(&name).await {
        Ok(was_pinned) => {
            let _ = state
                .ctx
                .store
                .add_event(Some(&name), "info", "unpinned")
                .await;
            state.controller.request_sync(&name);
            Json(api::Unpinned {
                app: name,
                was_pinned,
            })
            .into_response()
        }
        Err(e) => internal_error("unpinning an app", &e),
    }
}

async fn source_status(State(state): State<WebState>) -> Json<api::SourceView> {
    let status = state.source.subscribe().borrow().clone();
    Json(api::SourceView {
        url: state.source.source().display_url(),
        revision: status.revision.as_ref().map(|r| r.id.clone()),
        message: status.revision.as_ref().map(|r| r.message.clone()),
        last_error: status.last_error,
        last_fetch: status.last_fetch.map(secs),
        consecutive_failures: status.consecutive_failures,
    })
}

/// The repository as a whole: the head revision's problems (invalid, prune refused) and the
/// last Git fetch error; what the page's banner shows.
async fn repo_status(State(state): State<WebState>) -> Json<api::RepoView> {
    let repo = state.ctx.repo.borrow().clone();
    let git_error = state.source.subscribe().borrow().last_error.clone();
    Json(api::RepoView {
        revision: repo.revision,
        problems: repo.problems,
        git_error,
    })
}

async fn refresh(State(state): State<WebState>) -> impl IntoResponse {
    state.source.trigger();
    let body = api::RefreshRequested {
        refresh: "requested".into(),
    };
    (StatusCode::ACCEPTED, Json(body))
}

async fn events(State(state): State<WebState>) -> Response {
    match state.ctx.store.events(None, 100).await {
        Ok(events) => Json(
            events
                .into_iter()
                .map(|e| api::EventEntry {
                    id: e.id,
                    app: e.app,
                    at: secs(e.at),
                    level: e.level,
                    message: e.message,
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => internal_error("reading events", &e),
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A plain server-rendered status page that refreshes itself.
async fn page(State(state): State<WebState>) -> Response {
    let source = state.source.subscribe().borrow().clone();
    let view = page::PageView {
        repository: state.source.source().display_url(),
        revision: source.revision.as_ref().map(|r| page::PageRevision {
            id: r.id.clone(),
            message: r.message.clone(),
        }),
        git_error: source.last_error.clone(),
        problems: state.ctx.repo.borrow().problems.clone(),
        apps: state.ctx.statuses.borrow().values().cloned().collect(),
    };
    match page::render(&view) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %crate::telemetry::error_chain(&e), "status page");
            (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR).into_response()
        }
    }
}
