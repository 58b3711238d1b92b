//! The JSON bodies of the API, as types: the server serializes them and the CLI decodes them,
//! so the two cannot drift apart. App statuses are [`AppStatus`](crate::controller::AppStatus)
//! and [`RepoStatus`](crate::controller::RepoStatus) themselves.

use serde::{Deserialize, Serialize};

/// Any error answer: `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong: the user's to fix for a 4xx, a fixed short message for a 500.
    pub error: String,
}

/// What a follower (`ha:`) answers a change with, as a `503`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowerRefusal {
    /// Why, naming the leader.
    pub error: String,
    /// The leader's holder id (its listen address), unknown during a takeover.
    pub leader: Option<String>,
}

/// `POST /api/v1/apps/:name/sync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequested {
    /// The app.
    pub app: String,
    /// Always `requested`.
    pub sync: String,
}

/// `POST /api/v1/apps/:name/rollback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinned {
    /// The app.
    pub app: String,
    /// The full commit the app is now pinned to.
    pub pinned: String,
}

/// `POST /api/v1/apps/:name/unpin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unpinned {
    /// The app.
    pub app: String,
    /// Whether there was a pin to remove.
    pub was_pinned: bool,
}

/// `POST /api/v1/refresh`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRequested {
    /// Always `requested`.
    pub refresh: String,
}

/// One entry of `GET /api/v1/apps/:name/history`: a sync drover ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Sync id.
    pub id: i64,
    /// The app.
    pub app: String,
    /// The revision it applied.
    pub revision: String,
    /// Unix seconds.
    pub started_at: u64,
    /// Unix seconds; `None` while it runs.
    pub finished_at: Option<u64>,
    /// `succeeded`, `failed`, …; `None` while it runs.
    pub result: Option<crate::store::SyncResult>,
    /// Why it failed, or what it waited for.
    pub message: Option<String>,
    /// Lines like `update nomad_job/default/web`.
    pub changes: Vec<String>,
    /// What started it (`auto`, `manual`, …).
    pub trigger: crate::store::Trigger,
}

/// One entry of `GET /api/v1/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventEntry {
    /// Event id.
    pub id: i64,
    /// The app it concerns, if one.
    pub app: Option<String>,
    /// Unix seconds.
    pub at: u64,
    /// `info`, `warning`, `error`.
    pub level: String,
    /// What happened.
    pub message: String,
}

/// `GET /api/v1/source`: the Git watcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceView {
    /// The repository URL, credentials removed.
    pub url: String,
    /// The newest fetched commit.
    pub revision: Option<String>,
    /// Its message.
    pub message: Option<String>,
    /// The last fetch's error, cleared by the next success.
    pub last_error: Option<String>,
    /// Unix seconds of the last fetch.
    pub last_fetch: Option<u64>,
    /// Failed fetches since the last success.
    pub consecutive_failures: u32,
}

/// `GET /api/v1/status`: the repository as a whole (what the page's banner shows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoView {
    /// The head revision the problems were derived from.
    pub revision: Option<String>,
    /// The head revision's problems (invalid, prune refused).
    pub problems: Vec<String>,
    /// The last Git fetch error.
    pub git_error: Option<String>,
    /// Unix seconds of the first of the failed fetches since the last success. (Absent from an
    /// older drover's answer.)
    #[serde(default)]
    pub git_failing_since: Option<u64>,
    /// Whether the mutating endpoints are on (the server has an API token); the page disables
    /// its buttons otherwise. (Absent from an older drover's answer.)
    #[serde(default)]
    pub changes_enabled: bool,
    /// `leader` or `follower` (`ha:`); a single drover is its own leader. (Absent from an older
    /// drover's answer.)
    #[serde(default = "leader_role")]
    pub role: crate::ha::Role,
    /// The leader's holder id (its listen address) under `ha:`, when known.
    #[serde(default)]
    pub leader: Option<String>,
}

fn leader_role() -> crate::ha::Role {
    crate::ha::Role::Leader
}
