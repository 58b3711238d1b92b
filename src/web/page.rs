//! The status page: HTML from templates under `src/web/templates/`, compiled into the binary and
//! rendered by minijinja with HTML auto-escaping, so nothing from Git, the cluster or an error
//! message can inject markup. The overview (`/`) shows one row per app; the app page
//! (`/apps/{name}`) its resources, diffs, history and alerts. The script and style sheet are
//! files compiled in too (`/assets/…`): the pages carry no inline script, so a strict
//! `Content-Security-Policy` holds.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};

use crate::controller::{AppStatus, ChangeKind, SyncResult, SyncStatus};
use crate::health::Health;
use crate::notify::AlertRecord;
use crate::source::CommitInfo;

const OVERVIEW: &str = "overview.html";
const APP: &str = "app.html";
const NOT_FOUND: &str = "not_found.html";

/// The script the pages load (`/assets/drover.js`).
pub const SCRIPT: &str = include_str!("assets/drover.js");
/// The style sheet the pages load (`/assets/drover.css`).
pub const STYLE: &str = include_str!("assets/drover.css");

/// The `Content-Security-Policy` of every page: only drover's own files, no inline script,
/// never inside a frame.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'none'";

/// The templates, parsed once. Immutable, so sharing them process-wide is safe; a template that
/// does not parse is a build mistake the unit tests catch, and at run time answers a 500.
static TEMPLATES: LazyLock<Result<Environment<'static>, minijinja::Error>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // Every template escapes HTML, whatever its name; `|safe` is never used.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    // A misspelled field is an error (caught by the tests), not an empty cell.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_template(OVERVIEW, include_str!("templates/overview.html"))?;
    env.add_template(APP, include_str!("templates/app.html"))?;
    env.add_template(NOT_FOUND, include_str!("templates/not_found.html"))?;
    Ok(env)
});

/// A moment as the page shows it: relative text, the absolute time (a tooltip) and Unix seconds
/// (the script keeps the relative text current).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moment {
    /// Unix seconds.
    pub unix: u64,
    /// `2026-11-30T17:05:59Z`.
    pub absolute: String,
    /// `3m ago`.
    pub relative: String,
}

impl Moment {
    /// `at` as seen at `now`.
    pub fn new(at: SystemTime, now: SystemTime) -> Moment {
        let unix = at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Moment {
            unix,
            absolute: humantime::format_rfc3339_seconds(at).to_string(),
            relative: relative(now.duration_since(at).unwrap_or_default()),
        }
    }

    fn from_unix(seconds: i64, now: SystemTime) -> Moment {
        let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
        Moment::new(at, now)
    }
}

/// `12s ago`, `3m ago`, `5h ago`, `2d ago` (the script uses the same steps).
fn relative(age: Duration) -> String {
    let s = age.as_secs();
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86_400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// `850 ms`, `12.3 s`, `4m 05s`.
pub fn duration_text(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{}m {:02}s", ms / 60_000, (ms / 1000) % 60),
    }
}

/// The last sync as a row shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastSyncSummary {
    /// `succeeded`, `failed`, …
    pub result: SyncResult,
    /// When it finished.
    pub at: Moment,
    /// `850 ms` (`None`: not recorded).
    pub duration: Option<String>,
}

/// One overview row, and the body of the stream's `apps` event for one app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppSummary {
    /// App name.
    pub name: String,
    /// Sync status.
    pub sync: SyncStatus,
    /// Health.
    pub health: Health,
    /// Phase sentence.
    pub phase: String,
    /// Full revision id.
    pub revision: String,
    /// Its first 12 characters.
    pub short_revision: String,
    /// The revision's subject, author and time, when the mirror has it.
    pub commit: Option<CommitSummary>,
    /// Pinned revision (short), if pinned.
    pub pinned: Option<String>,
    /// A resource is out of sync because the cluster changed, not Git.
    pub drift: bool,
    /// The last sync failed, or the phase says a plan or sync failed.
    pub failed: bool,
    /// Resources per change word (`update` → 2), not-managed ones included.
    pub counts: BTreeMap<String, usize>,
    /// The last sync that wrote or failed.
    pub last_sync: Option<LastSyncSummary>,
    /// Number of errors.
    pub errors: usize,
    /// Number of warnings.
    pub warnings: usize,
}

/// A commit as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitSummary {
    /// First line of the message.
    pub subject: String,
    /// Author's name.
    pub author: String,
    /// Commit time.
    pub time: Moment,
}

/// Reasons that mean the cluster moved away from what drover applied (see
/// [`crate::plan::Reason::is_drift`], served snake_case).
const DRIFT_REASONS: [&str; 3] = ["live_changed", "stopped", "missing"];

/// Whether `resource` is out of sync because the cluster changed, not Git (the drift marker).
pub fn is_drift(resource: &crate::controller::ResourceStatus) -> bool {
    resource.change != ChangeKind::Unchanged && DRIFT_REASONS.contains(&resource.reason.as_str())
}

impl AppSummary {
    /// The row of `status`; `commit` looks revisions up (cached: see [`CommitCache`]).
    pub fn of(status: &AppStatus, commit: Option<&CommitInfo>, now: SystemTime) -> AppSummary {
        let mut counts = BTreeMap::new();
        for resource in &status.resources {
            *counts
                .entry(resource.change.as_str().to_string())
                .or_insert(0) += 1;
        }
        let drift = status.resources.iter().any(is_drift);
        let phase = status.phase.to_string();
        let failed = status
            .last_sync
            .as_ref()
            .is_some_and(|s| s.result == SyncResult::Failed)
            || phase.starts_with("sync failed")
            || phase.starts_with("plan failed");
        AppSummary {
            name: status.name.clone(),
            sync: status.sync,
            health: status.health,
            phase,
            revision: status.revision.clone(),
            short_revision: short(&status.revision),
            commit: commit.map(|c| CommitSummary {
                subject: c.subject.clone(),
                author: c.author.clone(),
                time: Moment::from_unix(c.time, now),
            }),
            pinned: status.pinned.as_deref().map(short),
            drift,
            failed,
            counts,
            last_sync: status.last_sync.as_ref().map(|s| LastSyncSummary {
                result: s.result,
                at: Moment::new(s.at, now),
                duration: s.duration_ms.map(duration_text),
            }),
            errors: status.errors.len(),
            warnings: status.warnings.len(),
        }
    }
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

/// Commit subjects, authors and times by id, read from the mirror once per commit: the
/// overview of 1,000 apps at one revision reads one commit, whatever the history.
#[derive(Clone, Default)]
pub struct CommitCache {
    known: Arc<Mutex<HashMap<String, Option<CommitInfo>>>>,
}

/// Commits remembered at most (a long-running drover sees many; old ones are dropped).
const COMMITS_KEPT: usize = 512;

impl CommitCache {
    /// The commit `id`, through `read` (the mirror) when not yet known; a commit that cannot be
    /// read is remembered as unknown too.
    pub fn get(
        &self,
        id: &str,
        read: impl FnOnce(&str) -> Option<CommitInfo>,
    ) -> Option<CommitInfo> {
        if let Ok(known) = self.known.lock()
            && let Some(found) = known.get(id)
        {
            return found.clone();
        }
        let found = read(id);
        if let Ok(mut known) = self.known.lock() {
            if known.len() >= COMMITS_KEPT {
                known.clear();
            }
            known.insert(id.to_string(), found.clone());
        }
        found
    }
}

/// The repository as the header and the banner show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RepoSummary {
    /// The repository URL, credentials removed.
    pub repository: String,
    /// The newest fetched revision (short) and its subject.
    pub revision: Option<String>,
    /// Its subject.
    pub subject: Option<String>,
    /// Banner lines: Git fetch failing (since when), the head revision's problems (invalid,
    /// prune refused).
    pub problems: Vec<String>,
    /// On a follower (`ha:`): that it follows and who leads (the header shows it).
    #[serde(default)]
    pub role: Option<String>,
}

/// The header's line for a follower (`ha:`); `None` on a leader or a single drover.
pub fn role_line(leadership: &crate::ha::Leadership) -> Option<String> {
    if leadership.leads() {
        return None;
    }
    Some(match &leadership.leader {
        Some(leader) => {
            format!("follower (read-only): the leader is {leader}; changes are made there")
        }
        None => "follower (read-only): no leader holds the lock right now".into(),
    })
}

impl RepoSummary {
    /// The banner from the source watcher's error and the repository's problems.
    pub fn new(
        repository: String,
        head: Option<(&str, &str)>,
        git_error: Option<&str>,
        failing_since: Option<SystemTime>,
        repo_problems: &[String],
        now: SystemTime,
    ) -> RepoSummary {
        let mut problems = Vec::new();
        if let Some(error) = git_error {
            let since = failing_since
                .map(|t| {
                    let m = Moment::new(t, now);
                    format!(" (failing since {}, {})", m.absolute, m.relative)
                })
                .unwrap_or_default();
            problems.push(format!("Git fetch failing{since}: {error}"));
        }
        problems.extend(repo_problems.iter().cloned());
        RepoSummary {
            repository,
            revision: head.map(|(id, _)| short(id)),
            subject: head.map(|(_, subject)| subject.to_string()),
            problems,
            role: None,
        }
    }
}

/// Whether the page's buttons can work, and why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangesView {
    /// A token is configured on the server.
    pub enabled: bool,
    /// Why the buttons are off, when they are.
    pub reason: String,
}

impl ChangesView {
    /// From whether the server has an API token.
    pub fn new(enabled: bool) -> ChangesView {
        ChangesView {
            enabled,
            reason: if enabled {
                String::new()
            } else {
                "changes are off: no API token is configured on the server (DROVER_API_TOKEN)"
                    .into()
            },
        }
    }
}

/// Everything the overview shows.
#[derive(Debug, Serialize)]
pub struct OverviewView {
    /// Header and banner.
    pub repo: RepoSummary,
    /// One row per app.
    pub apps: Vec<AppSummary>,
    /// Recent alerts (newest first).
    pub alerts: Vec<AlertView>,
}

/// One alert as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    /// The record.
    #[serde(flatten)]
    pub record: AlertRecord,
    /// `sync_failed`, …
    pub trigger_word: String,
    /// `firing`, `resolved`.
    pub state_word: String,
    /// When.
    pub when: Moment,
}

impl AlertView {
    /// `record` seen at `now`.
    pub fn new(record: &AlertRecord, now: SystemTime) -> AlertView {
        let word = |v: serde_json::Result<serde_json::Value>| {
            v.ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        AlertView {
            trigger_word: word(serde_json::to_value(record.trigger)),
            state_word: word(serde_json::to_value(record.state)),
            when: Moment::new(record.at, now),
            record: record.clone(),
        }
    }
}

/// One resource on the app page.
#[derive(Debug, Serialize)]
pub struct ResourceView {
    /// The status.
    #[serde(flatten)]
    pub status: crate::controller::ResourceStatus,
    /// Out of sync because the cluster changed.
    pub drift: bool,
}

/// A group of resources applied together.
#[derive(Debug, Serialize)]
pub struct WaveView {
    /// `wave 0`, or `as last applied`.
    pub title: String,
    /// Its resources, in apply order.
    pub resources: Vec<ResourceView>,
}

/// A Nomad job of the app as the live cache has it.
#[derive(Debug, Serialize)]
pub struct JobView {
    /// `nomad_job/default/web`.
    pub resource: String,
    /// `running`, `pending`, `dead`.
    pub status: String,
    /// Stopped on purpose.
    pub stop: bool,
    /// `service`, `batch`, …
    pub job_type: String,
    /// Allocation counts per group (`web: 2 running, 1 failed`).
    pub groups: Vec<String>,
}

/// One sync of the history.
#[derive(Debug, Serialize)]
pub struct HistoryView {
    /// Started.
    pub started: Moment,
    /// `1.2 s`, or `running`.
    pub duration: String,
    /// `auto`, `self-heal`, `manual`.
    pub trigger: String,
    /// `succeeded`, …, or `running`.
    pub result: String,
    /// Full revision.
    pub revision: String,
    /// Short revision.
    pub short_revision: String,
    /// Why it failed, or what it waited for.
    pub message: String,
    /// `update nomad_job/default/web`, …
    pub changes: Vec<String>,
}

/// One event.
#[derive(Debug, Serialize)]
pub struct EventView {
    /// When.
    pub when: Moment,
    /// `info`, `warning`, `error`.
    pub level: String,
    /// What happened.
    pub message: String,
}

/// Everything the app page shows.
#[derive(Debug, Serialize)]
pub struct AppView {
    /// Header and banner.
    pub repo: RepoSummary,
    /// The row data (badges, revision, last sync).
    pub summary: AppSummary,
    /// The full status (errors, warnings, probes).
    pub status: AppStatus,
    /// Managed resources by wave.
    pub waves: Vec<WaveView>,
    /// Resources drover does not manage here, shown collapsed.
    pub not_managed: Vec<ResourceView>,
    /// Its Nomad jobs as the live cache has them.
    pub jobs: Vec<JobView>,
    /// Sync history, newest first.
    pub history: Vec<HistoryView>,
    /// Revisions a rollback may pin (from the history, newest first, each once).
    pub rollback_revisions: Vec<String>,
    /// Events, newest first.
    pub events: Vec<EventView>,
    /// This app's recent alerts, newest first.
    pub alerts: Vec<AlertView>,
    /// Whether the buttons work.
    pub changes: ChangesView,
}

/// Group `status`'s resources by wave (in apply order), not-managed ones apart.
pub fn group_resources(status: &AppStatus) -> (Vec<WaveView>, Vec<ResourceView>) {
    let mut waves: Vec<WaveView> = Vec::new();
    let mut not_managed = Vec::new();
    for resource in &status.resources {
        let view = ResourceView {
            drift: is_drift(resource),
            status: resource.clone(),
        };
        if resource.change == ChangeKind::NotManaged {
            not_managed.push(view);
            continue;
        }
        let title = match resource.wave {
            Some(wave) => format!("wave {wave}"),
            None => "resources".to_string(),
        };
        match waves.last_mut() {
            Some(last) if last.title == title => last.resources.push(view),
            _ => waves.push(WaveView {
                title,
                resources: vec![view],
            }),
        }
    }
    (waves, not_managed)
}

/// The app's Nomad jobs as `live` has them.
pub fn jobs_of(status: &AppStatus, live: &crate::live::LiveSnapshot) -> Vec<JobView> {
    status
        .resources
        .iter()
        .filter_map(|r| {
            let rest = r.id.strip_prefix("nomad_job/")?;
            let (namespace, id) = rest.split_once('/')?;
            let stub = live.job(namespace, id)?;
            let groups = stub
                .summary
                .as_ref()
                .and_then(|s| s.summary.as_ref())
                .map(|groups| {
                    groups
                        .iter()
                        .map(|(name, g)| {
                            let counts = [
                                (g.running, "running"),
                                (g.starting, "starting"),
                                (g.queued, "queued"),
                                (g.failed, "failed"),
                                (g.lost, "lost"),
                                (g.complete, "complete"),
                            ];
                            let said: Vec<String> = counts
                                .iter()
                                .filter(|(n, _)| *n > 0)
                                .map(|(n, word)| format!("{n} {word}"))
                                .collect();
                            let said = if said.is_empty() {
                                "no allocations".to_string()
                            } else {
                                said.join(", ")
                            };
                            format!("{name}: {said}")
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(JobView {
                resource: r.id.clone(),
                status: stub.status.clone(),
                stop: stub.stop,
                job_type: stub.job_type.clone(),
                groups,
            })
        })
        .collect()
}

/// History records as the page shows them.
pub fn history_view(records: &[crate::store::SyncRecord], now: SystemTime) -> Vec<HistoryView> {
    records
        .iter()
        .map(|r| HistoryView {
            started: Moment::new(r.started_at, now),
            duration: match r.finished_at {
                Some(end) => duration_text(
                    u64::try_from(
                        end.duration_since(r.started_at)
                            .unwrap_or_default()
                            .as_millis(),
                    )
                    .unwrap_or(u64::MAX),
                ),
                None => "running".into(),
            },
            trigger: r.trigger.as_str().into(),
            result: r.result.map_or("running", SyncResult::as_str).into(),
            revision: r.revision.clone(),
            short_revision: short(&r.revision),
            message: r.message.clone().unwrap_or_default(),
            changes: r.changes.clone(),
        })
        .collect()
}

/// Events as the page shows them.
pub fn events_view(records: &[crate::store::EventRecord], now: SystemTime) -> Vec<EventView> {
    records
        .iter()
        .map(|e| EventView {
            when: Moment::new(e.at, now),
            level: e.level.clone(),
            message: e.message.clone(),
        })
        .collect()
}

/// Rendering the page failed (a template bug; the detail goes to the log, never to the client).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template did not parse when the templates were loaded.
    #[error("loading the page templates: {0}")]
    Load(String),
    /// Rendering a template failed.
    #[error("rendering the status page")]
    Render(#[source] minijinja::Error),
}

fn render_template<T: Serialize>(name: &str, view: &T) -> Result<String, RenderError> {
    let templates = TEMPLATES
        .as_ref()
        .map_err(|e| RenderError::Load(format!("{e:#}")))?;
    templates
        .get_template(name)
        .and_then(|template| template.render(minijinja::value::Serde(view)))
        .map_err(RenderError::Render)
}

/// The overview's HTML.
pub fn render_overview(view: &OverviewView) -> Result<String, RenderError> {
    render_template(OVERVIEW, view)
}

/// An app page's HTML.
pub fn render_app(view: &AppView) -> Result<String, RenderError> {
    render_template(APP, view)
}

/// The page for an unknown app.
pub fn render_not_found(repo: &RepoSummary, name: &str) -> Result<String, RenderError> {
    render_template(
        NOT_FOUND,
        &serde_json::json!({ "repo": repo, "name": name }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{Phase, ResourceStatus, SyncOutcome};
    use crate::notify::{AlertState, AlertTrigger};

    const NASTY: &str = "<script>x</script>&\"";
    const ESCAPED: &str = "&lt;script&gt;x&lt;&#x2f;script&gt;&amp;&quot;";

    fn status_with(text: &str) -> AppStatus {
        let mut app = AppStatus::unknown(
            text,
            "0123456789abcdef",
            Phase::WaitingForDependency(text.into()),
        );
        app.errors.push(text.to_string());
        app.warnings.push(text.to_string());
        app.pinned = Some("fedcba9876543210".into());
        app.sync = SyncStatus::OutOfSync;
        app.resources.push(ResourceStatus {
            id: text.into(),
            change: ChangeKind::Update,
            reason: "live_changed".into(),
            health: Health::Healthy,
            message: text.into(),
            diff: Some(text.into()),
            wave: Some(0),
        });
        app.last_sync = Some(SyncOutcome {
            result: SyncResult::Failed,
            revision: "0123456789abcdef".into(),
            changes: vec![text.into()],
            problems: vec![text.into()],
            at: SystemTime::now(),
            duration_ms: Some(1234),
        });
        app
    }

    fn repo_with(text: &str) -> RepoSummary {
        RepoSummary::new(
            text.into(),
            Some(("0123456789abcdef", text)),
            Some(text),
            Some(SystemTime::now()),
            &[text.into()],
            SystemTime::now(),
        )
    }

    fn commit_with(text: &str) -> CommitInfo {
        CommitInfo {
            id: "0123456789abcdef".into(),
            subject: text.into(),
            author: text.into(),
            time: 1_700_000_000,
        }
    }

    fn alert_with(text: &str) -> AlertRecord {
        AlertRecord {
            id: 7,
            trigger: AlertTrigger::Drift,
            app: Some(text.into()),
            resource: Some(text.into()),
            state: AlertState::Firing,
            message: text.into(),
            at: SystemTime::now(),
            deliveries: Vec::new(),
        }
    }

    fn app_view_with(text: &str) -> AppView {
        let status = status_with(text);
        let (waves, not_managed) = group_resources(&status);
        let now = SystemTime::now();
        AppView {
            repo: repo_with(text),
            summary: AppSummary::of(&status, Some(&commit_with(text)), now),
            waves,
            not_managed,
            jobs: vec![JobView {
                resource: text.into(),
                status: text.into(),
                stop: false,
                job_type: text.into(),
                groups: vec![text.into()],
            }],
            history: vec![HistoryView {
                started: Moment::new(now, now),
                duration: "1 s".into(),
                trigger: "auto".into(),
                result: "failed".into(),
                revision: text.into(),
                short_revision: text.into(),
                message: text.into(),
                changes: vec![text.into()],
            }],
            rollback_revisions: vec![text.into()],
            events: vec![EventView {
                when: Moment::new(now, now),
                level: "info".into(),
                message: text.into(),
            }],
            alerts: vec![AlertView::new(&alert_with(text), now)],
            changes: ChangesView::new(true),
            status,
        }
    }

    #[test]
    fn every_field_of_the_overview_is_escaped() {
        let now = SystemTime::now();
        let status = status_with(NASTY);
        let html = render_overview(&OverviewView {
            repo: repo_with(NASTY),
            apps: vec![AppSummary::of(&status, Some(&commit_with(NASTY)), now)],
            alerts: vec![AlertView::new(&alert_with(NASTY), now)],
        })
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!html.contains("<script>"), "{html}");
        // Repository, head subject, Git error banner, repo problem, name (row attribute, link,
        // text), phase, commit subject, author, alert app/resource/message: escaped each time.
        assert_eq!(html.matches(ESCAPED).count(), 14, "{html}");
        assert!(html.contains("pinned fedcba987654"), "{html}");
        assert!(
            html.contains(r#"data-sync="OutOfSync" data-health="Unknown" data-drift="true""#),
            "{html}"
        );
        assert!(html.contains("<code>0123456789ab</code>"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains(r#"<script src="/assets/drover.js" defer></script>"#));
        assert!(
            !html.contains(" style="),
            "inline style breaks the CSP: {html}"
        );
    }

    #[test]
    fn every_field_of_the_app_page_is_escaped() {
        let html = render_app(&app_view_with(NASTY)).unwrap_or_else(|e| panic!("{e:?}"));
        let without_script_tag =
            html.replace(r#"<script src="/assets/drover.js" defer></script>"#, "");
        assert!(!without_script_tag.contains("<script"), "{html}");
        assert!(html.contains(ESCAPED), "{html}");
        // The diff, in the markup contract's element.
        assert!(
            html.contains(&format!(
                r#"<pre class="diff" data-resource="{ESCAPED}">{ESCAPED}</pre>"#
            )),
            "{html}"
        );
        assert!(
            !html.contains(" style="),
            "inline style breaks the CSP: {html}"
        );
        assert!(
            html.contains(r#"data-alert-id="7" data-trigger="drift" data-state="firing""#),
            "{html}"
        );
    }

    #[test]
    fn the_script_never_parses_data_as_markup() {
        // Data from the stream goes into the page through textContent and attributes only.
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!SCRIPT.contains(sink), "drover.js uses {sink}");
        }
        assert!(SCRIPT.contains("textContent"));
    }

    #[test]
    fn an_empty_page_renders() {
        let html = render_overview(&OverviewView {
            repo: RepoSummary {
                repository: "file:///repo".into(),
                ..RepoSummary::default()
            },
            apps: Vec::new(),
            alerts: Vec::new(),
        })
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(html.contains("none yet"), "{html}");
        assert!(
            html.contains(r#"<div id="banner" role="alert" hidden>"#),
            "{html}"
        );
    }

    /// A thousand apps: the page stays small per app (no resource lists on the overview), and
    /// the commit of their shared revision is read once, not once per app.
    #[test]
    fn a_thousand_apps_render_small_and_read_each_commit_once() {
        let now = SystemTime::now();
        let cache = CommitCache::default();
        let mut reads = 0;
        let mut apps = Vec::new();
        for i in 0..1000 {
            let mut status = AppStatus::unknown(
                &format!("app-{i:04}"),
                if i % 2 == 0 {
                    "aaaaaaaaaaaaaaaa"
                } else {
                    "bbbbbbbbbbbbbbbb"
                },
                Phase::Synced,
            );
            status.sync = SyncStatus::Synced;
            status.health = Health::Healthy;
            for r in 0..30 {
                status.resources.push(ResourceStatus {
                    id: format!("nomad_job/default/app-{i}-{r}"),
                    change: if r < 5 {
                        ChangeKind::Unchanged
                    } else {
                        ChangeKind::NotManaged
                    },
                    reason: "in_sync".into(),
                    health: Health::Unknown,
                    message: "a message that would bloat the overview if it were shown".into(),
                    diff: None,
                    wave: Some(0),
                });
            }
            status.last_sync = Some(SyncOutcome {
                result: SyncResult::Succeeded,
                revision: status.revision.clone(),
                changes: vec!["update nomad_job/default/x".into()],
                problems: Vec::new(),
                at: now,
                duration_ms: Some(900),
            });
            let commit = cache.get(&status.revision, |id| {
                reads += 1;
                Some(commit_with(id))
            });
            apps.push(AppSummary::of(&status, commit.as_ref(), now));
        }
        assert_eq!(reads, 2, "one read per distinct revision");
        let html = render_overview(&OverviewView {
            repo: RepoSummary::default(),
            apps,
            alerts: Vec::new(),
        })
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(html.matches("data-app=").count(), 1000);
        let per_app = html.len() / 1000;
        assert!(per_app < 1500, "{per_app} bytes per app");
        assert!(!html.contains("a message that would bloat"));
    }

    #[test]
    fn drift_is_a_change_the_cluster_made() {
        let now = SystemTime::now();
        let mut status = status_with("x");
        assert!(AppSummary::of(&status, None, now).drift);
        status.resources[0].reason = "git_changed".into();
        assert!(!AppSummary::of(&status, None, now).drift);
        status.resources[0].reason = "missing".into();
        status.resources[0].change = ChangeKind::Unchanged;
        assert!(!AppSummary::of(&status, None, now).drift);
    }

    #[test]
    fn times_and_durations_read_well() {
        assert_eq!(relative(Duration::from_secs(5)), "5s ago");
        assert_eq!(relative(Duration::from_secs(125)), "2m ago");
        assert_eq!(relative(Duration::from_secs(7300)), "2h ago");
        assert_eq!(relative(Duration::from_secs(200_000)), "2d ago");
        assert_eq!(duration_text(850), "850 ms");
        assert_eq!(duration_text(12_345), "12.3 s");
        assert_eq!(duration_text(245_000), "4m 05s");
    }
}
