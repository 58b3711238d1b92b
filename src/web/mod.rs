//! The status page, JSON API, manual sync/refresh/rollback endpoints and `/healthz` (axum).

pub mod guard;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

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
}

/// All routes.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/apps", get(list_apps))
        .route("/api/apps/{name}", get(get_app))
        .route("/api/apps/{name}/sync", post(sync_app))
        .route("/api/apps/{name}/history", get(history))
        .route("/api/apps/{name}/rollback", post(rollback))
        .route("/api/apps/{name}/unpin", post(unpin))
        .route("/api/source", get(source_status))
        .route("/api/status", get(repo_status))
        .route("/api/refresh", post(refresh))
        .route("/api/events", get(events))
        .layer(axum::middleware::from_fn_with_state(
            state.access.clone(),
            guard::guard,
        ))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn list_apps(State(state): State<WebState>) -> Json<Vec<AppStatus>> {
    Json(state.ctx.statuses.borrow().values().cloned().collect())
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
        (
            StatusCode::ACCEPTED,
            Json(json!({ "app": name, "sync": "requested" })),
        )
            .into_response()
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
                .map(|r| {
                    json!({
                        "id": r.id,
                        "app": r.app,
                        "revision": r.revision,
                        "started_at": secs(r.started_at),
                        "finished_at": r.finished_at.map(secs),
                        "result": r.result,
                        "message": r.message,
                        "changes": r.changes,
                        "trigger": r.trigger,
                    })
                })
                .collect::<Vec<Value>>(),
        )
        .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
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
        Ok(Err(e)) => return error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
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
        return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
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
    Json(json!({ "app": name, "pinned": commit })).into_response()
}

async fn unpin(State(state): State<WebState>, Path(name): Path<String>) -> Response {
    // A pinned app that left Git may still be unpinned; a name never seen is a typo.
    if state.ctx.status_of(&name).is_none() {
        match state.ctx.store.pinned(&name).await {
            Ok(Some(_)) => {}
            Ok(None) => return error(StatusCode::NOT_FOUND, format!("no app named {name}")),
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
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
            Json(json!({ "app": name, "was_pinned": was_pinned })).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn source_status(State(state): State<WebState>) -> Json<Value> {
    let status = state.source.subscribe().borrow().clone();
    Json(json!({
        "url": state.source.source().display_url(),
        "revision": status.revision.as_ref().map(|r| r.id.clone()),
        "message": status.revision.as_ref().map(|r| r.message.clone()),
        "last_error": status.last_error,
        "last_fetch": status.last_fetch.map(secs),
        "consecutive_failures": status.consecutive_failures,
    }))
}

/// The repository as a whole: the head revision's problems (invalid, prune refused) and the
/// last Git fetch error; what the page's banner shows.
async fn repo_status(State(state): State<WebState>) -> Json<Value> {
    let repo = state.ctx.repo.borrow().clone();
    let git_error = state.source.subscribe().borrow().last_error.clone();
    Json(json!({
        "revision": repo.revision,
        "problems": repo.problems,
        "git_error": git_error,
    }))
}

async fn refresh(State(state): State<WebState>) -> impl IntoResponse {
    state.source.trigger();
    (
        StatusCode::ACCEPTED,
        Json(json!({ "refresh": "requested" })),
    )
}

async fn events(State(state): State<WebState>) -> Response {
    match state.ctx.store.events(None, 100).await {
        Ok(events) => Json(
            events
                .into_iter()
                .map(|e| json!({"id": e.id, "app": e.app, "at": secs(e.at), "level": e.level, "message": e.message}))
                .collect::<Vec<Value>>(),
        )
        .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A plain server-rendered status page that refreshes itself.
async fn page(State(state): State<WebState>) -> Html<String> {
    let source = state.source.subscribe().borrow().clone();
    let apps: Vec<AppStatus> = state.ctx.statuses.borrow().values().cloned().collect();
    let mut rows = String::new();
    for app in &apps {
        let mut details = String::new();
        for r in &app.resources {
            details.push_str(&format!(
                "<li><code>{}</code> {} · {:?} · {}{}</li>",
                esc(&r.id),
                esc(r.change.as_str()),
                r.health,
                esc(&r.message),
                r.diff
                    .as_ref()
                    .map(|d| format!("<pre>{}</pre>", esc(d)))
                    .unwrap_or_default()
            ));
        }
        for e in &app.errors {
            details.push_str(&format!("<li class=err>{}</li>", esc(e)));
        }
        if let Some(last) = &app.last_sync {
            details.push_str(&format!(
                "<li>last sync: <b>{}</b> at <code>{}</code>{}</li>",
                esc(last.result.as_str()),
                esc(last.revision.get(..12).unwrap_or(&last.revision)),
                if last.changes.is_empty() {
                    String::new()
                } else {
                    format!(": {}", esc(&last.changes.join(", ")))
                }
            ));
        }
        rows.push_str(&format!(
            "<tr><td><b>{}</b></td><td class={:?}>{:?}</td><td class={:?}>{:?}</td><td>{}</td><td><code>{}</code>{}</td><td><ul>{}</ul></td></tr>",
            esc(&app.name),
            app.sync,
            app.sync,
            app.health,
            app.health,
            esc(&app.phase.to_string()),
            esc(app.revision.get(..12).unwrap_or(&app.revision)),
            app.pinned.as_ref().map(|p| format!(" (pinned {})", esc(p.get(..12).unwrap_or(p)))).unwrap_or_default(),
            details
        ));
    }
    let revision = source
        .revision
        .as_ref()
        .map(|r| format!("{} {}", r.short_id(), esc(&r.message)))
        .unwrap_or_else(|| "none yet".into());
    let mut source_error = source
        .last_error
        .as_ref()
        .map(|e| format!("<p class=err>Git: {}</p>", esc(e)))
        .unwrap_or_default();
    let problems = state.ctx.repo.borrow().problems.clone();
    if !problems.is_empty() {
        let items: String = problems
            .iter()
            .map(|p| format!("<li>{}</li>", esc(p)))
            .collect();
        source_error.push_str(&format!("<div class=banner><ul>{items}</ul></div>"));
    }
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><meta http-equiv=refresh content=5><title>drover</title><style>\
body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.4em;vertical-align:top;text-align:left}}\
.Synced,.Healthy{{color:#087f23}}.OutOfSync,.Progressing{{color:#b26a00}}.InvalidSpec,.Degraded,.Missing,.err{{color:#b00020}}pre{{background:#f6f6f6;padding:.5em}}.banner{{background:#fdecea;border:1px solid #b00020;color:#b00020;padding:0 .5em;margin-bottom:1em}}</style></head>\
<body><h1>drover</h1><p>Repository <code>{}</code> at <code>{}</code></p>{}<table><tr><th>App</th><th>Sync</th><th>Health</th><th>Phase</th><th>Revision</th><th>Resources</th></tr>{}</table></body></html>",
        esc(&state.source.source().display_url()),
        revision,
        source_error,
        rows
    ))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
