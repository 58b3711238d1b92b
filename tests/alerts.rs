//! Alerts end to end: conditions from statuses → fire/resolve → channels, against a local HTTP
//! receiver (every channel format) and a local SMTP sink; routing, dedup, resolve, re-notify,
//! retries, restarts, a drift made through the devstack, and secrets kept out of everything.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use common::{TestEnv, WAIT, app_yaml, web_jobspec};
use drover::controller::{
    AppStatus, ChangeKind, Context, ControllerSettings, Pending, Phase, ResourceStatus,
};
use drover::health::Health;
use drover::live::LiveStore;
use drover::notify::settings::{ChannelConfig, NotifySettings, RetryPolicy, Route, glob_matches};
use drover::notify::{AlertRecord, AlertState, AlertTrigger, DeliveryResult};
use drover::providers::nomad::{NomadClient, NomadConfig};
use drover::store::Store;
use drover::telemetry::Redacted;
use reqwest::Method;
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// The receiver's shared state: what it saw, and how often each flaky path was asked.
type ReceiverState = (
    watch::Sender<Vec<Received>>,
    Arc<Mutex<BTreeMap<String, u32>>>,
);

/// A local HTTP receiver recording every request; paths under `/flaky/` answer 503 to their
/// first two requests.
#[derive(Clone)]
struct Receiver {
    url: String,
    seen: watch::Sender<Vec<Received>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let seen = watch::Sender::new(Vec::new());
        let flaky_count = Arc::new(Mutex::new(BTreeMap::<String, u32>::new()));
        let state = (seen.clone(), flaky_count);
        let app = axum::Router::new().fallback(
            |State((seen, flaky)): State<ReceiverState>,
             uri: Uri,
             headers: HeaderMap,
             body: Bytes| async move {
                let path = uri.path().to_string();
                seen.send_modify(|all| {
                    all.push(Received {
                        path: path.clone(),
                        headers,
                        body: String::from_utf8_lossy(&body).to_string(),
                    })
                });
                if path.starts_with("/flaky/") {
                    let mut counts = flaky.lock().unwrap_or_else(|p| p.into_inner());
                    let n = counts.entry(path).or_insert(0);
                    *n += 1;
                    if *n <= 2 {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                }
                StatusCode::OK
            },
        );
        let app = app.with_state(state);
        let addr = common::serve_local(app).await;
        Receiver {
            url: format!("http://{addr}"),
            seen,
        }
    }

    fn on(&self, path: &str) -> Vec<Received> {
        self.seen
            .borrow()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Wait until `path` got at least `n` requests; return them.
    async fn wait(&self, path: &str, n: usize) -> Vec<Received> {
        let mut rx = self.seen.subscribe();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got: Vec<Received> = rx
                .borrow_and_update()
                .iter()
                .filter(|r| r.path == path)
                .cloned()
                .collect();
            if got.len() >= n {
                return got;
            }
            tokio::select! {
                _ = rx.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    panic!("{path}: {} of {n} requests; all: {:#?}", got.len(), rx.borrow());
                }
            }
        }
    }
}

fn webhook(url: String) -> ChannelConfig {
    ChannelConfig::Webhook { url: Redacted(url) }
}

fn route(triggers: &[AlertTrigger], apps: Option<&[&str]>, channels: &[&str]) -> Route {
    Route {
        triggers: if triggers.is_empty() {
            vec![
                AlertTrigger::SyncFailed,
                AlertTrigger::Drift,
                AlertTrigger::HealthDegraded,
                AlertTrigger::ProbeFailed,
                AlertTrigger::PruneRefused,
            ]
        } else {
            triggers.to_vec()
        },
        recovered: true,
        apps: apps.map(|a| a.iter().map(|s| s.to_string()).collect()),
        channels: channels.iter().map(|s| s.to_string()).collect(),
    }
}

fn notify_settings(channels: Vec<(&str, ChannelConfig)>, routes: Vec<Route>) -> NotifySettings {
    NotifySettings {
        enabled: true,
        hold: Duration::ZERO,
        renotify: None,
        channels: channels
            .into_iter()
            .map(|(n, c)| (n.to_string(), c))
            .collect(),
        routes,
        retry: RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_millis(100),
            timeout: Duration::from_secs(5),
        },
    }
}

/// A controller context with no cluster behind it (the engine only reads statuses).
fn context(store: Store) -> Context {
    drover::providers::install_crypto_provider();
    let nomad = NomadClient::new(NomadConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    Context::new(
        nomad,
        store,
        LiveStore::default(),
        ControllerSettings::default(),
    )
}

fn store_at(dir: &Path) -> Store {
    Store::open(&dir.join("drover.db")).unwrap_or_else(|e| panic!("store: {e}"))
}

struct Engine {
    ctx: Context,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Engine {
    fn start(ctx: Context, settings: NotifySettings) -> Engine {
        let stop = CancellationToken::new();
        let task = drover::notify::engine::spawn(ctx.clone(), settings, stop.clone());
        Engine { ctx, stop, task }
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }

    /// Wait until the log holds an alert matching `ok` whose deliveries all ended.
    async fn wait_alert(&self, what: &str, ok: impl Fn(&AlertRecord) -> bool) -> AlertRecord {
        let mut rx = self.ctx.alerts.subscribe();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let found = rx.borrow_and_update().iter().find(|a| ok(a)).cloned();
            if let Some(alert) = found
                && alert
                    .deliveries
                    .iter()
                    .all(|d| d.result != DeliveryResult::Pending)
            {
                return alert;
            }
            tokio::select! {
                _ = rx.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    panic!("no alert {what}; log: {:#?}", self.ctx.alerts.recent());
                }
            }
        }
    }
}

fn healthy(name: &str) -> AppStatus {
    let mut status = AppStatus::unknown(name, "abc123", Phase::Synced);
    status.health = Health::Healthy;
    status.sync = drover::controller::SyncStatus::Synced;
    status
}

fn drifted(name: &str) -> AppStatus {
    let mut status = healthy(name);
    status.phase = Phase::OutOfSync(Pending::Writes);
    status.sync = drover::controller::SyncStatus::OutOfSync;
    status.resources.push(ResourceStatus {
        id: format!("nomad_job/default/{name}"),
        change: ChangeKind::Update,
        reason: "live_changed".into(),
        health: Health::Healthy,
        message: String::new(),
        diff: Some("- Image: nginx:1.27\n+ Image: nginx:1.26".into()),
        wave: None,
    });
    status
}

fn sync_failed(name: &str) -> AppStatus {
    let mut status = healthy(name);
    status.phase = Phase::SyncFailed { permanent: false };
    status
}

fn is(trigger: AlertTrigger, app: &str, state: AlertState) -> impl Fn(&AlertRecord) -> bool {
    move |a| a.trigger == trigger && a.app.as_deref() == Some(app) && a.state == state
}

#[tokio::test]
async fn every_channel_format_reaches_the_receiver_and_resolves() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let url = |p: &str| Redacted(format!("{}{p}", receiver.url));
    let channels = vec![
        ("hook", webhook(format!("{}/hook", receiver.url))),
        ("slack", ChannelConfig::Slack { url: url("/slack") }),
        (
            "discord",
            ChannelConfig::Discord {
                url: url("/discord"),
            },
        ),
        (
            "ntfy",
            ChannelConfig::Ntfy {
                url: url("/ntfy/alerts"),
                token: Some(Redacted("tk_ntfy".into())),
                priority: "high".into(),
                tags: vec!["warning".into()],
            },
        ),
        (
            "gotify",
            ChannelConfig::Gotify {
                url: url("/gotify/"),
                token: Redacted("gotify-app-token".into()),
                priority: 8,
            },
        ),
    ];
    let names = ["hook", "slack", "discord", "ntfy", "gotify"];
    let engine = Engine::start(
        context(store_at(dir.path())),
        notify_settings(channels, vec![route(&[], None, &names)]),
    );
    engine.ctx.publish(healthy("web"));
    engine.ctx.publish(drifted("web"));
    let fired = engine
        .wait_alert(
            "drift fired",
            is(AlertTrigger::Drift, "web", AlertState::Firing),
        )
        .await;
    assert_eq!(fired.deliveries.len(), 5, "{fired:#?}");
    assert!(
        fired
            .deliveries
            .iter()
            .all(|d| d.result == DeliveryResult::Delivered && d.attempts == 1),
        "{fired:#?}"
    );

    let hook = &receiver.wait("/hook", 1).await[0];
    let body = hook.json();
    assert_eq!(body["trigger"], "drift");
    assert_eq!(body["state"], "firing");
    assert_eq!(body["app"], "web");
    assert_eq!(body["resource"], "nomad_job/default/web");
    assert_eq!(body["id"], fired.id);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("not healed"))
    );
    assert!(body["at"].as_u64().is_some());
    assert!(body.get("deliveries").is_none(), "{body}");

    let slack = receiver.wait("/slack", 1).await[0].json();
    let text = slack["text"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("[FIRING] drift web nomad_job/default/web"),
        "{slack}"
    );

    let discord = receiver.wait("/discord", 1).await[0].json();
    assert!(
        discord["content"]
            .as_str()
            .is_some_and(|c| c.starts_with("[FIRING] drift web"))
    );
    assert_eq!(discord["username"], "drover");

    let ntfy = &receiver.wait("/ntfy/alerts", 1).await[0];
    assert_eq!(
        ntfy.header("title").as_deref(),
        Some("[FIRING] drift web nomad_job/default/web")
    );
    assert_eq!(ntfy.header("priority").as_deref(), Some("high"));
    assert_eq!(ntfy.header("tags").as_deref(), Some("warning"));
    assert_eq!(
        ntfy.header("authorization").as_deref(),
        Some("Bearer tk_ntfy")
    );
    assert!(
        ntfy.body.contains("not healed"),
        "plain-text body: {}",
        ntfy.body
    );

    let gotify = &receiver.wait("/gotify/message", 1).await[0];
    assert_eq!(
        gotify.header("x-gotify-key").as_deref(),
        Some("gotify-app-token")
    );
    let body = gotify.json();
    assert_eq!(body["priority"], 8);
    assert!(
        body["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("[FIRING] drift"))
    );

    // The drift clears: one resolved message on every channel.
    engine.ctx.publish(healthy("web"));
    engine
        .wait_alert(
            "drift resolved",
            is(AlertTrigger::Drift, "web", AlertState::Resolved),
        )
        .await;
    let hook = receiver.wait("/hook", 2).await;
    assert_eq!(hook[1].json()["state"], "resolved");
    assert!(
        receiver.wait("/slack", 2).await[1].json()["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("[RESOLVED] drift web"))
    );
    let ntfy = receiver.wait("/ntfy/alerts", 2).await;
    assert_eq!(ntfy[1].header("tags").as_deref(), Some("white_check_mark"));
    assert_eq!(
        receiver.wait("/gotify/message", 2).await[1].json()["priority"],
        2
    );
    receiver.wait("/discord", 2).await;
    engine.stop().await;
}

#[tokio::test]
async fn alerts_are_routed_by_trigger_and_app() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::start(
        context(store_at(dir.path())),
        notify_settings(
            vec![
                ("media", webhook(format!("{}/media", receiver.url))),
                ("web", webhook(format!("{}/web", receiver.url))),
            ],
            vec![
                route(&[AlertTrigger::Drift], Some(&["media-*"]), &["media"]),
                route(&[AlertTrigger::SyncFailed], Some(&["web"]), &["web"]),
            ],
        ),
    );
    engine.ctx.publish(drifted("media-sonarr"));
    engine.ctx.publish(sync_failed("media-radarr"));
    // web both drifted and failed to sync (one status per app).
    let mut web = drifted("web");
    web.phase = Phase::SyncFailed { permanent: false };
    engine.ctx.publish(web);
    // All four alerts are recorded (the page shows them all), each sent where routed only.
    for (trigger, app, channels) in [
        (AlertTrigger::Drift, "media-sonarr", vec!["media"]),
        (AlertTrigger::SyncFailed, "media-radarr", vec![]),
        (AlertTrigger::Drift, "web", vec![]),
        (AlertTrigger::SyncFailed, "web", vec!["web"]),
    ] {
        let alert = engine
            .wait_alert(
                &format!("{trigger:?} {app}"),
                is(trigger, app, AlertState::Firing),
            )
            .await;
        let sent: Vec<&str> = alert
            .deliveries
            .iter()
            .map(|d| d.channel.as_str())
            .collect();
        assert_eq!(sent, channels, "{trigger:?} {app}");
    }
    let media = receiver.wait("/media", 1).await;
    let web = receiver.wait("/web", 1).await;
    assert_eq!(media.len(), 1, "{media:#?}");
    assert_eq!(media[0].json()["app"], "media-sonarr");
    assert_eq!(web.len(), 1, "{web:#?}");
    assert_eq!(web[0].json()["trigger"], "sync_failed");
    assert!(glob_matches("media-*", "media-sonarr"));
    engine.stop().await;
}

#[tokio::test]
async fn many_reconciles_of_a_drifted_app_send_one_alert_then_a_renotify() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut settings = notify_settings(
        vec![("hook", webhook(format!("{}/hook", receiver.url)))],
        vec![route(&[], None, &["hook"])],
    );
    settings.renotify = Some(Duration::from_secs(2));
    let engine = Engine::start(context(store_at(dir.path())), settings);
    let mut status = drifted("web");
    engine.ctx.publish(status.clone());
    let first = receiver.wait("/hook", 1).await;
    let started = SystemTime::now();
    // Fifty reconciles publish the same drift: nothing more is sent until the re-notify.
    for _ in 0..50 {
        status.observed_at = SystemTime::now();
        engine.ctx.publish(status.clone());
        tokio::task::yield_now().await;
    }
    let both = receiver.wait("/hook", 2).await;
    assert!(
        started.elapsed().unwrap_or_default() >= Duration::from_millis(1500),
        "the second one is the re-notify, not a duplicate"
    );
    assert_eq!(first[0].json()["id"], 1);
    assert_eq!(both[1].json()["state"], "firing");
    assert_eq!(both[1].json()["app"], "web");
    let firing = engine
        .ctx
        .alerts
        .recent()
        .iter()
        .filter(|a| a.state == AlertState::Firing)
        .count();
    assert_eq!(firing, 2, "{:#?}", engine.ctx.alerts.recent());
    engine.stop().await;
}

#[tokio::test]
async fn a_delivery_is_retried_until_the_receiver_accepts_it() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::start(
        context(store_at(dir.path())),
        notify_settings(
            vec![("flaky", webhook(format!("{}/flaky/hook", receiver.url)))],
            vec![route(&[], None, &["flaky"])],
        ),
    );
    engine.ctx.publish(sync_failed("web"));
    let alert = engine
        .wait_alert(
            "sync failed",
            is(AlertTrigger::SyncFailed, "web", AlertState::Firing),
        )
        .await;
    assert_eq!(alert.deliveries.len(), 1);
    assert_eq!(alert.deliveries[0].result, DeliveryResult::Delivered);
    assert_eq!(alert.deliveries[0].attempts, 3, "503, 503, then 200");
    assert_eq!(receiver.on("/flaky/hook").len(), 3);
    // One delivery in the metrics, however many attempts it took.
    let metrics = engine
        .ctx
        .metrics
        .encode()
        .unwrap_or_else(|e| panic!("metrics: {e}"));
    let sent: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("drover_alerts_sent_total{"))
        .collect();
    assert_eq!(
        sent,
        ["drover_alerts_sent_total{channel=\"flaky\",result=\"delivered\"} 1"],
        "{metrics}"
    );
    engine.stop().await;
}

#[tokio::test]
async fn a_restart_with_the_same_store_neither_refires_nor_forgets_to_resolve() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let settings = notify_settings(
        vec![("hook", webhook(format!("{}/hook", receiver.url)))],
        vec![route(&[], None, &["hook"])],
    );
    let engine = Engine::start(context(store_at(dir.path())), settings.clone());
    engine.ctx.publish(drifted("web"));
    engine.ctx.publish(sync_failed("db"));
    receiver.wait("/hook", 2).await;
    engine
        .wait_alert("db", is(AlertTrigger::SyncFailed, "db", AlertState::Firing))
        .await;
    engine.stop().await;

    // Restarted: web still drifts and db still fails (no storm), a new app fails (sent).
    let engine = Engine::start(context(store_at(dir.path())), settings);
    engine.ctx.publish(drifted("web"));
    engine.ctx.publish(sync_failed("db"));
    engine.ctx.publish(sync_failed("cache"));
    engine
        .wait_alert(
            "cache",
            is(AlertTrigger::SyncFailed, "cache", AlertState::Firing),
        )
        .await;
    let hook = receiver.wait("/hook", 3).await;
    assert_eq!(hook.len(), 3, "only the new condition: {hook:#?}");
    assert_eq!(hook[2].json()["app"], "cache");
    // web's drift ended while... now: resolved though it fired before the restart.
    engine.ctx.publish(healthy("web"));
    engine
        .wait_alert(
            "web resolved",
            is(AlertTrigger::Drift, "web", AlertState::Resolved),
        )
        .await;
    let hook = receiver.wait("/hook", 4).await;
    assert_eq!(hook[3].json()["state"], "resolved");
    assert_eq!(hook[3].json()["app"], "web");
    engine.stop().await;
}

#[tokio::test]
async fn apps_waiting_for_live_state_neither_fire_nor_resolve() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let settings = notify_settings(
        vec![("hook", webhook(format!("{}/hook", receiver.url)))],
        vec![route(&[], None, &["hook"])],
    );
    let engine = Engine::start(context(store_at(dir.path())), settings.clone());
    engine.ctx.publish(drifted("web"));
    receiver.wait("/hook", 1).await;
    engine.stop().await;

    let engine = Engine::start(context(store_at(dir.path())), settings);
    // At start nothing is known yet: the saved drift is kept, not resolved.
    let mut loading = AppStatus::unknown("web", "abc123", Phase::WaitingForLiveState);
    loading.health = Health::Missing;
    engine.ctx.publish(loading);
    engine.ctx.publish(sync_failed("marker"));
    engine
        .wait_alert(
            "marker",
            is(AlertTrigger::SyncFailed, "marker", AlertState::Firing),
        )
        .await;
    let hook = receiver.wait("/hook", 2).await;
    assert_eq!(hook.len(), 2, "{hook:#?}");
    assert_eq!(hook[1].json()["app"], "marker");
    engine.stop().await;
}

fn write_file(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    path
}

#[tokio::test]
async fn a_drift_made_through_the_devstack_reaches_the_webhook_and_no_secret_leaks() {
    let logs = common::logs::captured_logs();
    let receiver = Receiver::start().await;
    let mut env = TestEnv::new().await;
    let secrets = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    const HOOK_TOKEN: &str = "hooktoken-5e1f0c9a";
    const DEAD_TOKEN: &str = "deadtoken-77ab31d2";
    const NTFY_TOKEN: &str = "ntfytoken-0c4b2e8f";
    // A port nothing listens on: that channel's deliveries fail, with errors to scan.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("{e}"));
    let hook_file = write_file(
        secrets.path(),
        "hook-url",
        &format!("{}/hook?token={HOOK_TOKEN}\n", receiver.url),
    );
    let dead_file = write_file(
        secrets.path(),
        "dead-url",
        &format!("http://{closed}/{DEAD_TOKEN}/x?token={DEAD_TOKEN}"),
    );
    let ntfy_file = write_file(secrets.path(), "ntfy-token", NTFY_TOKEN);
    let yaml = format!(
        "repo: {{ url: /unused }}\nnotifications:\n  for: 1s\n  channels:\n    hook: {{ webhook: {{ url_file: {} }} }}\n    dead: {{ slack: {{ url_file: {} }} }}\n    phone: {{ ntfy: {{ url: '{}/ntfy/t', token_file: {} }} }}\n  routes:\n    - {{ triggers: [on_drift, on_recovered], apps: [web], channels: [hook, dead, phone] }}\n",
        hook_file.display(),
        dead_file.display(),
        receiver.url,
        ntfy_file.display(),
    );
    let file: drover::config::FileSettings =
        serde_yaml_ng::from_str(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let parsed = drover::config::Settings::from_file_settings(file, |_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut settings = env.settings();
    settings.notifications = parsed.notifications;
    settings.notifications.retry.first_delay = Duration::from_millis(100);

    env.write(
        "apps/web/app.yaml",
        &app_yaml("web", "sync: { self_heal: false }\n"),
    );
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    let rev = env.commit("web");
    env.start_drover_with(settings).await;
    env.wait_synced_healthy("web", Some(&rev)).await;

    // Drift: the job is stopped behind drover's back (self_heal off: it stays).
    let (code, _) = env.nomad_send(Method::DELETE, "/v1/job/web", None).await;
    assert_eq!(code, 200);
    let drifted_at = std::time::Instant::now();
    let hook = receiver.wait("/hook", 1).await;
    assert!(drifted_at.elapsed() < Duration::from_secs(60));
    let body = hook[0].json();
    assert_eq!(body["trigger"], "drift");
    assert_eq!(body["app"], "web");
    assert_eq!(body["resource"], "nomad_job/default/web");
    receiver.wait("/ntfy/t", 1).await;

    // The dead channel fails for good (after its retries): its error is recorded, redacted.
    let log = match &env.drover {
        Some(running) => running.ctx.alerts.clone(),
        None => panic!("drover is running"),
    };
    let mut changes = log.subscribe();
    let dead_failed = |all: &std::collections::VecDeque<AlertRecord>| {
        all.iter()
            .flat_map(|a| a.deliveries.iter())
            .any(|d| d.channel == "dead" && matches!(d.result, DeliveryResult::Failed { .. }))
    };
    tokio::time::timeout(WAIT, changes.wait_for(dead_failed))
        .await
        .unwrap_or_else(|_| panic!("the dead channel never failed: {:#?}", log.recent()))
        .unwrap_or_else(|e| panic!("{e}"));
    let api = format!("{}/api/v1/alerts", env.drover_url());
    let alerts: Value = env
        .http
        .get(&api)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(alerts.as_array().is_some_and(|a| !a.is_empty()));
    let drift = alerts
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["trigger"] == "drift")
        .unwrap_or_else(|| panic!("{alerts:#}"));
    let delivered: BTreeMap<String, String> = drift["deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["channel"].as_str().unwrap_or_default().to_string(),
                d["result"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(delivered.get("hook").map(String::as_str), Some("delivered"));
    assert_eq!(
        delivered.get("phone").map(String::as_str),
        Some("delivered")
    );
    assert_eq!(delivered.get("dead").map(String::as_str), Some("failed"));
    let ids: Vec<u64> = alerts
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["id"].as_u64())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    let answer = alerts.to_string();
    let bodies: String = receiver
        .seen
        .borrow()
        .iter()
        .map(|r| r.body.clone())
        .collect();
    let log_text = {
        let bytes = logs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        String::from_utf8_lossy(&bytes).to_string()
    };
    assert!(
        log_text.contains("alert delivery failed"),
        "errors were logged"
    );
    for secret in [HOOK_TOKEN, DEAD_TOKEN, NTFY_TOKEN] {
        assert!(
            !answer.contains(secret),
            "{secret} in /api/v1/alerts: {answer}"
        );
        assert!(
            !bodies.contains(secret),
            "{secret} in a body sent: {bodies}"
        );
        assert!(!log_text.contains(secret), "{secret} in the logs");
    }
    env.shutdown().await;
}

/// What the SMTP sink received in one session.
#[derive(Debug, Clone, Default)]
struct Mail {
    commands: Vec<String>,
    data: String,
}

/// A local SMTP sink speaking just enough SMTP (EHLO with AUTH PLAIN, MAIL, RCPT, DATA, QUIT).
async fn smtp_sink() -> (u16, watch::Receiver<Vec<Mail>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .port();
    let (tx, rx) = watch::channel(Vec::new());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let mut mail = Mail::default();
                let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    mail.commands.push(line.clone());
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        b"250-sink\r\n250 AUTH PLAIN LOGIN\r\n"
                    } else if upper.starts_with("AUTH") {
                        b"235 2.7.0 ok\r\n"
                    } else if upper.starts_with("DATA") {
                        let _ = write.write_all(b"354 go on\r\n").await;
                        while let Ok(Some(data)) = lines.next_line().await {
                            if data == "." {
                                break;
                            }
                            mail.data.push_str(&data);
                            mail.data.push('\n');
                        }
                        b"250 2.0.0 queued\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    let _ = write.write_all(reply).await;
                }
                tx.send_modify(|all| all.push(mail));
            });
        }
    });
    (port, rx)
}

#[tokio::test]
async fn an_alert_is_mailed_through_smtp() {
    const PASSWORD: &str = "smtp-pass-3d9e71";
    let (port, mut mails) = smtp_sink().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::start(
        context(store_at(dir.path())),
        notify_settings(
            vec![(
                "mail",
                ChannelConfig::Email {
                    host: "127.0.0.1".into(),
                    port,
                    tls: drover::notify::settings::SmtpTls::None,
                    username: Some("drover".into()),
                    password: Some(Redacted(PASSWORD.into())),
                    from: "drover <drover@example.org>".into(),
                    to: vec!["ops@example.org".into(), "oncall@example.org".into()],
                },
            )],
            vec![route(&[], None, &["mail"])],
        ),
    );
    engine.ctx.publish(sync_failed("web"));
    let alert = engine
        .wait_alert(
            "mailed",
            is(AlertTrigger::SyncFailed, "web", AlertState::Firing),
        )
        .await;
    assert_eq!(
        alert.deliveries[0].result,
        DeliveryResult::Delivered,
        "{alert:#?}"
    );
    let mail = mails
        .wait_for(|all| !all.is_empty())
        .await
        .map(|all| all[0].clone())
        .unwrap_or_else(|e| panic!("{e}"));
    let has = |prefix: &str| mail.commands.iter().any(|c| c.starts_with(prefix));
    assert!(has("MAIL FROM:<drover@example.org>"), "{mail:#?}");
    assert!(has("RCPT TO:<ops@example.org>"), "{mail:#?}");
    assert!(has("RCPT TO:<oncall@example.org>"), "{mail:#?}");
    assert!(
        mail.data
            .contains("Subject: drover [FIRING] sync_failed web"),
        "{}",
        mail.data
    );
    assert!(mail.data.contains("web: sync failed"), "{}", mail.data);
    // The credentials went to the server (AUTH PLAIN), and nowhere else.
    use base64::Engine as _;
    let auth = mail
        .commands
        .iter()
        .find_map(|c| c.strip_prefix("AUTH PLAIN "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    assert_eq!(auth, format!("\0drover\0{PASSWORD}").into_bytes());
    let log = format!("{:?}", engine.ctx.alerts.recent());
    assert!(!log.contains(PASSWORD));
    engine.stop().await;
}

#[tokio::test]
async fn the_alerts_api_is_a_read_closed_by_web_private() {
    let mut env = TestEnv::new().await;
    let mut settings = env.settings();
    settings.web.private = true;
    env.start_drover_with(settings).await;
    let url = format!("{}/api/v1/alerts", env.drover_url());
    for authorization in [None, Some("Bearer not-the-token")] {
        let mut request = env.http.get(&url);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.status().as_u16(), 401, "{authorization:?}");
    }
    let response = env
        .http
        .get(&url)
        .bearer_auth(common::TEST_API_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(body.is_array(), "{body}");
    env.shutdown().await;
}
