//! `GET /api/v1/stream`: the page's live updates as Server-Sent Events.
//!
//! - `apps`: `{"apps": [AppSummary…], "removed": [name…]}`, first with every app, then with the
//!   apps whose status changed, at most every [`COALESCE`] (a burst of reconciles is one event);
//! - `alerts`: the recent alerts (oldest first), whenever the alert log changes;
//! - `repo`: the header and banner ([`RepoSummary`]), whenever the Git fetch or the repository's
//!   problems change;
//! - a keep-alive comment every 15 s.
//!
//! The stream ends when drover shuts down; the page's script reconnects when it drops.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::WebState;
use super::page::{AppSummary, RepoSummary};
use crate::controller::AppStatus;
use crate::notify::AlertRecord;

/// The shortest time between two `apps` events (at most 4 a second).
pub const COALESCE: Duration = Duration::from_millis(250);

/// The `apps` event's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppsEvent {
    /// Apps that are new or changed since the last event (all of them in the first).
    pub apps: Vec<AppSummary>,
    /// Apps gone since the last event.
    pub removed: Vec<String>,
}

/// One connection's position: what it was sent last.
struct Position {
    state: WebState,
    statuses: watch::Receiver<BTreeMap<String, AppStatus>>,
    alerts: watch::Receiver<VecDeque<AlertRecord>>,
    repo: watch::Receiver<crate::controller::RepoStatus>,
    source: watch::Receiver<crate::source::SourceStatus>,
    /// The statuses last sent, `observed_at` cleared (a re-check that changed nothing is not a
    /// change worth sending).
    sent: BTreeMap<String, AppStatus>,
    last_repo: Option<RepoSummary>,
    queued: VecDeque<Event>,
    started: bool,
}

fn comparable(status: &AppStatus) -> AppStatus {
    let mut status = status.clone();
    status.observed_at = UNIX_EPOCH;
    status
}

fn event(name: &str, data: &impl Serialize) -> Option<Event> {
    match serde_json::to_string(data) {
        Ok(json) => Some(Event::default().event(name).data(json)),
        Err(e) => {
            tracing::error!(error = %e, "event stream: encoding an event");
            None
        }
    }
}

impl Position {
    /// The `apps` event for what changed since the last one, if anything did.
    async fn apps_event(&mut self) -> Option<Event> {
        let current: BTreeMap<String, AppStatus> = self
            .statuses
            .borrow_and_update()
            .iter()
            .map(|(name, status)| (name.clone(), comparable(status)))
            .collect();
        let changed: Vec<AppStatus> = current
            .iter()
            .filter(|(name, status)| self.sent.get(*name) != Some(status))
            .map(|(_, status)| status.clone())
            .collect();
        let removed: Vec<String> = self
            .sent
            .keys()
            .filter(|name| !current.contains_key(*name))
            .cloned()
            .collect();
        self.sent = current;
        if changed.is_empty() && removed.is_empty() && self.started {
            return None;
        }
        let now = SystemTime::now();
        let found = super::commits(
            &self.state,
            changed.iter().map(|s| s.revision.clone()).collect(),
        )
        .await;
        let apps = changed
            .iter()
            .map(|s| AppSummary::of(s, found.get(&s.revision), now))
            .collect();
        event("apps", &AppsEvent { apps, removed })
    }

    fn alerts_event(&mut self) -> Option<Event> {
        let alerts: Vec<AlertRecord> = self.alerts.borrow_and_update().iter().cloned().collect();
        event("alerts", &alerts)
    }

    fn repo_event(&mut self) -> Option<Event> {
        self.repo.borrow_and_update();
        self.source.borrow_and_update();
        let summary = super::repo_summary(&self.state, SystemTime::now());
        if self.last_repo.as_ref() == Some(&summary) {
            return None;
        }
        let sent = event("repo", &summary);
        self.last_repo = Some(summary);
        sent
    }

    /// The next event, waiting for a change; `None` when drover stops.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.queued.pop_front() {
                return Some(event);
            }
            if !self.started {
                let apps = self.apps_event().await;
                let repo = self.repo_event();
                let alerts = self.alerts_event();
                self.queued
                    .extend([apps, repo, alerts].into_iter().flatten());
                self.started = true;
                continue;
            }
            let shutdown = self.state.shutdown.clone();
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                changed = self.statuses.changed() => {
                    changed.ok()?;
                    // Let a burst of reconciles settle into one event.
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(COALESCE) => {}
                    }
                    if let Some(event) = self.apps_event().await {
                        return Some(event);
                    }
                }
                changed = self.alerts.changed() => {
                    changed.ok()?;
                    if let Some(event) = self.alerts_event() {
                        return Some(event);
                    }
                }
                changed = self.repo.changed() => {
                    changed.ok()?;
                    if let Some(event) = self.repo_event() {
                        return Some(event);
                    }
                }
                changed = self.source.changed() => {
                    changed.ok()?;
                    if let Some(event) = self.repo_event() {
                        return Some(event);
                    }
                }
            }
        }
    }
}

/// The handler (behind the read guard, like the other reads).
pub async fn stream(
    State(state): State<WebState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let position = Position {
        statuses: state.ctx.statuses.subscribe(),
        alerts: state.ctx.alerts.subscribe(),
        repo: state.ctx.repo.subscribe(),
        source: state.source.subscribe(),
        sent: BTreeMap::new(),
        last_repo: None,
        queued: VecDeque::new(),
        started: false,
        state,
    };
    let events = futures::stream::unfold(position, |mut position| async move {
        position.next().await.map(|event| (Ok(event), position))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
