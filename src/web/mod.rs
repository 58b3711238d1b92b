//! The status page, JSON API, manual sync/refresh/rollback endpoints, `/metrics` and `/healthz`
//! (axum).

pub mod api;
pub mod auth;
pub mod follower;
pub mod guard;
pub mod page;
pub mod stream;
pub mod webhook;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
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
    /// Fetches the Git pack registries a rollback revision's apps name.
    pub packs: Arc<crate::source::packs::PackFetcher>,
    /// Allowed `Host` names (see [`guard`]).
    pub access: guard::AccessPolicy,
    /// The API token (see [`auth`]).
    pub auth: auth::ApiAuth,
    /// Commit subjects and authors the page shows, read once per commit.
    pub commits: page::CommitCache,
    /// Ends the page's event streams when drover stops (a graceful shutdown waits for them).
    pub shutdown: tokio_util::sync::CancellationToken,
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
        .route("/stream", get(stream::stream))
        .route("/alerts", get(alerts))
        .route_layer(reads.clone());
    let api_changes = Router::new()
        .route("/apps/{name}/sync", post(sync_app))
        .route("/apps/{name}/rollback", post(rollback))
        .route("/apps/{name}/unpin", post(unpin))
        .route("/refresh", post(refresh))
        .route_layer(changes);
    let pages = Router::new()
        .route("/", get(overview))
        .route("/apps/{name}", get(app_page))
        .route("/metrics", get(metrics))
        .route_layer(reads);
    Router::new()
        .merge(pages)
        .route("/assets/drover.js", get(script))
        .route("/assets/drover.css", get(style))
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

/// `GET /metrics`: the OpenMetrics exposition of [`crate::telemetry::metrics`].
async fn metrics(State(state): State<WebState>) -> Response {
    match state.ctx.metrics.encode() {
        Ok(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                crate::telemetry::metrics::CONTENT_TYPE,
            )],
            text,
        )
            .into_response(),
        Err(e) => internal_error("encoding the metrics", &e),
    }
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
    let packs = Arc::clone(&state.packs);
    let read = tokio::task::spawn_blocking(move || {
        source.revision_at(&wanted).map(|revision| {
            let revision = packs.attach(revision);
            (crate::desired::load(&revision), revision)
        })
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
    let source = state.source.subscribe().borrow().clone();
    let leadership = state.ctx.leadership.borrow().clone();
    Json(api::RepoView {
        revision: repo.revision,
        problems: repo.problems,
        git_error: source.last_error,
        git_failing_since: source.failing_since.map(secs),
        changes_enabled: state.auth.changes_enabled(),
        role: leadership.role,
        leader: leadership.leader,
    })
}

async fn refresh(State(state): State<WebState>) -> impl IntoResponse {
    state.packs.request_refresh();
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

/// Headers of every page: a strict CSP (drover's own script and styles only, never framed) and
/// no content sniffing.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(page::CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn rendered(what: &str, status: StatusCode, result: Result<String, page::RenderError>) -> Response {
    match result {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = %crate::telemetry::error_chain(&e), "{what}");
            (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR).into_response()
        }
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", page::SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", page::STYLE)
}

/// The header and banner: the head revision, the Git fetch error (and since when) and the
/// repository's problems.
fn repo_summary(state: &WebState, now: SystemTime) -> page::RepoSummary {
    let source = state.source.subscribe().borrow().clone();
    let problems = state.ctx.repo.borrow().problems.clone();
    let leadership = state.ctx.leadership.borrow().clone();
    let mut summary = page::RepoSummary::new(
        state.source.source().display_url(),
        source
            .revision
            .as_ref()
            .map(|r| (r.id.as_str(), r.message.as_str())),
        source.last_error.as_deref(),
        source.failing_since,
        &problems,
        now,
    );
    summary.role = page::role_line(&leadership);
    summary
}

/// The commits `ids` name, through the cache (a Git read only for a commit not seen yet).
async fn commits(
    state: &WebState,
    ids: std::collections::BTreeSet<String>,
) -> std::collections::HashMap<String, crate::source::CommitInfo> {
    let (cache, source) = (state.commits.clone(), state.source.clone());
    tokio::task::spawn_blocking(move || {
        ids.into_iter()
            .filter_map(|id| {
                cache
                    .get(&id, |id| source.source().commit_info(id).ok())
                    .map(|info| (id, info))
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

/// Every app's row, from the published statuses only (no store query: the overview of 1,000
/// apps costs one pass over memory plus one Git read per new commit).
async fn summaries(state: &WebState, now: SystemTime) -> Vec<page::AppSummary> {
    let statuses: Vec<AppStatus> = state.ctx.statuses.borrow().values().cloned().collect();
    let found = commits(state, statuses.iter().map(|s| s.revision.clone()).collect()).await;
    statuses
        .iter()
        .map(|s| page::AppSummary::of(s, found.get(&s.revision), now))
        .collect()
}

/// `/`: one row per app.
async fn overview(State(state): State<WebState>) -> Response {
    let now = SystemTime::now();
    let view = page::OverviewView {
        repo: repo_summary(&state, now),
        apps: summaries(&state, now).await,
        alerts: state
            .ctx
            .alerts
            .recent()
            .iter()
            .rev()
            .take(20)
            .map(|a| page::AlertView::new(a, now))
            .collect(),
    };
    rendered("status page", StatusCode::OK, page::render_overview(&view))
}

/// How many syncs and events the app page lists.
const APP_PAGE_HISTORY: usize = 20;

/// `/apps/{name}`: one app in full.
async fn app_page(State(state): State<WebState>, Path(name): Path<String>) -> Response {
    let now = SystemTime::now();
    let repo = repo_summary(&state, now);
    let Some(status) = state.ctx.status_of(&name) else {
        return rendered(
            "app page",
            StatusCode::NOT_FOUND,
            page::render_not_found(&repo, &name),
        );
    };
    let history = match state.ctx.store.history(&name, APP_PAGE_HISTORY).await {
        Ok(records) => records,
        Err(e) => return internal_error("reading sync history", &e),
    };
    let events = match state.ctx.store.events(Some(&name), APP_PAGE_HISTORY).await {
        Ok(records) => records,
        Err(e) => return internal_error("reading events", &e),
    };
    let found = commits(&state, [status.revision.clone()].into()).await;
    let (waves, not_managed) = page::group_resources(&status);
    let mut rollback_revisions: Vec<String> = Vec::new();
    for record in &history {
        if !rollback_revisions.contains(&record.revision) {
            rollback_revisions.push(record.revision.clone());
        }
    }
    let view = page::AppView {
        repo,
        summary: page::AppSummary::of(&status, found.get(&status.revision), now),
        waves,
        not_managed,
        jobs: page::jobs_of(&status, &state.ctx.live.snapshot()),
        history: page::history_view(&history, now),
        rollback_revisions,
        events: page::events_view(&events, now),
        alerts: state
            .ctx
            .alerts
            .recent()
            .iter()
            .rev()
            .filter(|a| a.app.as_deref() == Some(name.as_str()))
            .take(20)
            .map(|a| page::AlertView::new(a, now))
            .collect(),
        changes: page::ChangesView::new(state.auth.changes_enabled()),
        status,
    };
    rendered("app page", StatusCode::OK, page::render_app(&view))
}
