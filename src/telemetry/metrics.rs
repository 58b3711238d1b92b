//! The metrics registry: what `GET /metrics` serves, in the OpenMetrics text format as
//! `prometheus-client` encodes it.
//!
//! Events (syncs, drift, Git fetches, API requests, alerts) are counted where they happen;
//! per-app state and probe results are derived from the status read model at scrape time by
//! a custom collector, so an app that left Git leaves no stale series. Label values are app,
//! probe and channel names, systems and HTTP status codes: bounded, and never a URL, a token or
//! an error text.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;
use tokio::sync::watch;

use crate::controller::{AppStatus, ProbeKind, SyncResult, SyncStatus};
use crate::health::Health;

/// The `Content-Type` of the exposition (OpenMetrics text 1.0.0, which Prometheus negotiates).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric name starts with this (`drover_syncs_total`).
const PREFIX: &str = "drover";

/// Sync durations: a no-op confirm takes milliseconds, a rolling deployment minutes.
const SYNC_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Git fetch durations: a local mirror answers in milliseconds, a large remote in seconds.
const FETCH_BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0];

/// The systems drover sends API requests to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiSystem {
    /// Nomad's HTTP API.
    Nomad,
    /// Consul's HTTP API.
    Consul,
    /// Vault's HTTP API.
    Vault,
    /// The S3 endpoint.
    S3,
}

impl ApiSystem {
    /// The `system` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiSystem::Nomad => "nomad",
            ApiSystem::Consul => "consul",
            ApiSystem::Vault => "vault",
            ApiSystem::S3 => "s3",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppLabels {
    app: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabels {
    app: String,
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    system: String,
    code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    channel: String,
    result: String,
}

type Timestamp = Gauge<f64, AtomicU64>;

fn sync_histogram() -> Histogram {
    Histogram::new(SYNC_BUCKETS)
}

/// drover's metrics: a cheap handle (clones share the registry), kept in the controller
/// `Context` and handed to the clients and the Git watcher that count into it.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    syncs: Family<SyncLabels, Counter>,
    sync_duration: Family<AppLabels, Histogram>,
    drift_detected: Family<AppLabels, Counter>,
    drift_healed: Family<AppLabels, Counter>,
    reconciles: Family<AppLabels, Counter>,
    concurrency: Gauge,
    /// Answers that say a server is overloaded or gone (429, 502–504, none): the adaptive
    /// concurrency limit backs off on them.
    overload: Arc<AtomicU64>,
    fetch_duration: Histogram,
    fetch_failures: Counter,
    last_fetch_success: Timestamp,
    api_requests: Family<RequestLabels, Counter>,
    alerts: Family<AlertLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry whose per-app and probe series are read from `statuses` at each scrape.
    pub fn new(statuses: watch::Receiver<BTreeMap<String, AppStatus>>) -> Metrics {
        let mut registry = Registry::with_prefix(PREFIX);
        let syncs = Family::<SyncLabels, Counter>::default();
        registry.register(
            "syncs",
            "Syncs that wrote or tried to write, by app and result (succeeded, failed, conflict, \
             waiting, blocked, no-op)",
            syncs.clone(),
        );
        let sync_duration = Family::<AppLabels, Histogram>::new_with_constructor(
            sync_histogram as fn() -> Histogram,
        );
        registry.register_with_unit(
            "sync_duration",
            "How long a sync (hooks and writes) took, by app",
            Unit::Seconds,
            sync_duration.clone(),
        );
        let drift_detected = Family::<AppLabels, Counter>::default();
        registry.register(
            "drift_detected",
            "Resources found changed, stopped or deleted in the cluster behind drover's back, \
             counted once per drift",
            drift_detected.clone(),
        );
        let drift_healed = Family::<AppLabels, Counter>::default();
        registry.register(
            "drift_healed",
            "Drifted resources drover wrote back to what Git says (self-heal or a manual sync)",
            drift_healed.clone(),
        );
        let reconciles = Family::<AppLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconcile cycles run, by app (a wake that brings no new facts, such as a commit \
             that leaves the app's files as they were, runs none)",
            reconciles.clone(),
        );
        let concurrency = Gauge::default();
        registry.register(
            "reconcile_concurrency",
            "How many apps may reconcile at once now (adapts between 1 and `concurrency` to the \
             servers' answers)",
            concurrency.clone(),
        );
        let fetch_duration = Histogram::new(FETCH_BUCKETS);
        registry.register_with_unit(
            "git_fetch_duration",
            "How long a Git fetch took, failed or not",
            Unit::Seconds,
            fetch_duration.clone(),
        );
        let fetch_failures = Counter::default();
        registry.register(
            "git_fetch_failures",
            "Git fetches that failed or timed out",
            fetch_failures.clone(),
        );
        let last_fetch_success = Timestamp::default();
        registry.register_with_unit(
            "git_last_successful_fetch_timestamp",
            "When the last Git fetch succeeded (Unix time; 0 before the first)",
            Unit::Seconds,
            last_fetch_success.clone(),
        );
        let api_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "api_requests",
            "HTTP requests drover sent, by system (nomad, consul, vault, s3) and status code \
             (`error` when no answer came)",
            api_requests.clone(),
        );
        let alerts = Family::<AlertLabels, Counter>::default();
        registry.register(
            "alerts_sent",
            "Alert deliveries by channel and result (delivered, failed)",
            alerts.clone(),
        );
        registry.register_collector(Box::new(StatusCollector { statuses }));
        Metrics {
            inner: Arc::new(Inner {
                registry,
                syncs,
                sync_duration,
                drift_detected,
                drift_healed,
                reconciles,
                concurrency,
                overload: Arc::default(),
                fetch_duration,
                fetch_failures,
                last_fetch_success,
                api_requests,
                alerts,
            }),
        }
    }

    /// The exposition, as `GET /metrics` serves it (ends with `# EOF`).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)?;
        Ok(text)
    }

    /// A sync of `app` ended with `result` after `duration`.
    pub fn sync_finished(&self, app: &str, result: SyncResult, duration: Duration) {
        let inner = &self.inner;
        inner
            .syncs
            .get_or_create(&SyncLabels {
                app: app.to_string(),
                result: result.as_str().to_string(),
            })
            .inc();
        inner
            .sync_duration
            .get_or_create(&AppLabels {
                app: app.to_string(),
            })
            .observe(duration.as_secs_f64());
    }

    /// `count` resources of `app` newly found drifted.
    pub fn drift_detected(&self, app: &str, count: u64) {
        if count > 0 {
            let labels = AppLabels {
                app: app.to_string(),
            };
            self.inner
                .drift_detected
                .get_or_create(&labels)
                .inc_by(count);
        }
    }

    /// A drifted resource of `app` was written back.
    pub fn drift_healed(&self, app: &str) {
        let labels = AppLabels {
            app: app.to_string(),
        };
        self.inner.drift_healed.get_or_create(&labels).inc();
    }

    /// A reconcile cycle of `app` starts.
    pub fn reconcile_started(&self, app: &str) {
        let labels = AppLabels {
            app: app.to_string(),
        };
        self.inner.reconciles.get_or_create(&labels).inc();
    }

    /// The adaptive concurrency limit is now `limit`.
    pub fn concurrency_limit(&self, limit: usize) {
        self.inner
            .concurrency
            .set(i64::try_from(limit).unwrap_or(i64::MAX));
    }

    /// Overload answers (429, 502–504, no answer) counted so far, from every system.
    pub fn overload_answers(&self) -> u64 {
        self.inner
            .overload
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A Git fetch ended after `duration`, successfully or not, at `now`.
    pub fn git_fetched(&self, duration: Duration, succeeded: bool, now: SystemTime) {
        let inner = &self.inner;
        inner.fetch_duration.observe(duration.as_secs_f64());
        if succeeded {
            let unix = now
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            inner.last_fetch_success.set(unix);
        } else {
            inner.fetch_failures.inc();
        }
    }

    /// An alert was sent to `channel` (its configured name) and delivered or not.
    pub fn alert_delivered(&self, channel: &str, delivered: bool) {
        let labels = AlertLabels {
            channel: channel.to_string(),
            result: if delivered { "delivered" } else { "failed" }.to_string(),
        };
        self.inner.alerts.get_or_create(&labels).inc();
    }

    /// The counter a client of `system` counts its requests in.
    pub fn requests(&self, system: ApiSystem) -> RequestCounter {
        RequestCounter {
            requests: self.inner.api_requests.clone(),
            overload: self.inner.overload.clone(),
            system,
        }
    }
}

/// Counts one system's API requests by status code; held by that system's client, which calls
/// [`RequestCounter::answered`] or [`RequestCounter::unanswered`] at its one send point.
#[derive(Debug, Clone)]
pub struct RequestCounter {
    requests: Family<RequestLabels, Counter>,
    overload: Arc<AtomicU64>,
    system: ApiSystem,
}

impl RequestCounter {
    /// A request got an HTTP answer with `status`.
    pub fn answered(&self, status: u16) {
        if matches!(status, 429 | 502 | 503 | 504) {
            self.overloaded();
        }
        self.count(status.to_string());
    }

    /// A request got no answer (connection refused, timeout, TLS failure).
    pub fn unanswered(&self) {
        self.overloaded();
        self.count("error".to_string());
    }

    fn overloaded(&self) {
        self.overload
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn count(&self, code: String) {
        let labels = RequestLabels {
            system: self.system.as_str().to_string(),
            code,
        };
        self.requests.get_or_create(&labels).inc();
    }
}

/// Per-app sync and health state and probe results, read from the statuses at each scrape.
#[derive(Debug)]
struct StatusCollector {
    statuses: watch::Receiver<BTreeMap<String, AppStatus>>,
}

/// The part of an app's status the series are derived from.
struct ScrapedApp {
    name: String,
    sync: SyncStatus,
    health: Health,
    probes: Vec<crate::controller::ProbeStatus>,
}

const SYNC_STATES: [(SyncStatus, &str); 4] = [
    (SyncStatus::Synced, "synced"),
    (SyncStatus::OutOfSync, "out_of_sync"),
    (SyncStatus::InvalidSpec, "invalid_spec"),
    (SyncStatus::Unknown, "unknown"),
];

const HEALTH_STATES: [(Health, &str); 6] = [
    (Health::Healthy, "healthy"),
    (Health::Progressing, "progressing"),
    (Health::Degraded, "degraded"),
    (Health::Missing, "missing"),
    (Health::Suspended, "suspended"),
    (Health::Unknown, "unknown"),
];

fn probe_kind(kind: ProbeKind) -> &'static str {
    match kind {
        ProbeKind::Http => "http",
        ProbeKind::Tls => "tls",
        ProbeKind::BackupFreshness => "backup_freshness",
    }
}

/// One gauge family written from `rows` (label pairs, value).
fn encode_gauges<V: prometheus_client::encoding::EncodeGaugeValue + Clone>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    rows: &[(Vec<(&str, &str)>, V)],
) -> Result<(), std::fmt::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for (labels, value) in rows {
        let metric = family.encode_family(labels)?;
        ConstGauge::new(value.clone()).encode(metric)?;
    }
    Ok(())
}

impl Collector for StatusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Only what the series need is copied out (not resources and diffs), so a scrape holds
        // the lock reconciles publish through for as short as it can.
        let statuses: Vec<ScrapedApp> = self
            .statuses
            .borrow()
            .values()
            .map(|status| ScrapedApp {
                name: status.name.clone(),
                sync: status.sync,
                health: status.health,
                probes: status.probes.clone(),
            })
            .collect();
        let mut sync_rows = Vec::new();
        let mut health_rows = Vec::new();
        let mut probe_success = Vec::new();
        let mut probe_duration = Vec::new();
        let mut cert_days = Vec::new();
        let mut backup_age = Vec::new();
        for status in &statuses {
            let app = status.name.as_str();
            for (state, word) in SYNC_STATES {
                let value = i64::from(status.sync == state);
                sync_rows.push((vec![("app", app), ("state", word)], value));
            }
            for (state, word) in HEALTH_STATES {
                let value = i64::from(status.health == state);
                health_rows.push((vec![("app", app), ("state", word)], value));
            }
            for probe in &status.probes {
                let labels = vec![
                    ("app", app),
                    ("probe", probe.name.as_str()),
                    ("kind", probe_kind(probe.kind)),
                ];
                // Before its first run a probe has no result to report.
                if probe.checked_at.is_none() || probe.health == Health::Unknown {
                    continue;
                }
                let passed = i64::from(probe.health == Health::Healthy);
                probe_success.push((labels.clone(), passed));
                if let Some(ms) = probe.latency_ms {
                    probe_duration.push((labels.clone(), Duration::from_millis(ms).as_secs_f64()));
                }
                if let Some(days) = probe.days_left {
                    cert_days.push((labels.clone(), days));
                }
                if let Some(age) = probe.age_seconds {
                    backup_age.push((labels, age));
                }
            }
        }
        encode_gauges(
            &mut encoder,
            "app_sync_state",
            "1 for the app's current sync state (synced, out_of_sync, invalid_spec, unknown), \
             0 for the others",
            None,
            &sync_rows,
        )?;
        encode_gauges(
            &mut encoder,
            "app_health_state",
            "1 for the app's current health (healthy, progressing, degraded, missing, suspended, \
             unknown), 0 for the others",
            None,
            &health_rows,
        )?;
        encode_gauges(
            &mut encoder,
            "probe_success",
            "1 if the probe's last run passed, 0 if it failed",
            None,
            &probe_success,
        )?;
        encode_gauges(
            &mut encoder,
            "probe_duration",
            "How long the probe's last run took",
            Some(&Unit::Seconds),
            &probe_duration,
        )?;
        encode_gauges(
            &mut encoder,
            "probe_certificate_expiry",
            "Whole days until the TLS probe's certificate expires (negative once expired)",
            Some(&Unit::Other("days".into())),
            &cert_days,
        )?;
        encode_gauges(
            &mut encoder,
            "probe_backup_age",
            "Age of the newest object the backup-freshness probe found",
            Some(&Unit::Seconds),
            &backup_age,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{Phase, ProbeStatus};

    /// `name{labels}` → value for every sample line of an exposition.
    fn samples(text: &str) -> BTreeMap<String, f64> {
        text.lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_string(), value.parse().ok()?))
            })
            .collect()
    }

    fn metrics() -> (Metrics, watch::Sender<BTreeMap<String, AppStatus>>) {
        let statuses = watch::Sender::new(BTreeMap::new());
        (Metrics::new(statuses.subscribe()), statuses)
    }

    fn scrape(metrics: &Metrics) -> BTreeMap<String, f64> {
        let text = metrics.encode().unwrap_or_else(|e| panic!("encoding: {e}"));
        assert!(text.ends_with("# EOF\n"), "{text}");
        samples(&text)
    }

    #[test]
    fn alerts_are_counted_by_channel_and_result() {
        let (metrics, _statuses) = metrics();
        metrics.alert_delivered("slack", true);
        metrics.alert_delivered("slack", true);
        metrics.alert_delivered("slack", false);
        metrics.alert_delivered("ops-webhook", true);
        let found = scrape(&metrics);
        let sent = |channel: &str, result: &str| {
            let key =
                format!("drover_alerts_sent_total{{channel=\"{channel}\",result=\"{result}\"}}");
            found.get(&key).copied()
        };
        assert_eq!(sent("slack", "delivered"), Some(2.0), "{found:?}");
        assert_eq!(sent("slack", "failed"), Some(1.0));
        assert_eq!(sent("ops-webhook", "delivered"), Some(1.0));
        assert_eq!(sent("ops-webhook", "failed"), None);
    }

    #[test]
    fn syncs_drift_and_requests_are_counted_with_their_labels() {
        let (metrics, _statuses) = metrics();
        metrics.sync_finished("web", SyncResult::Succeeded, Duration::from_millis(300));
        metrics.sync_finished("web", SyncResult::Failed, Duration::from_secs(2));
        metrics.drift_detected("web", 2);
        metrics.drift_detected("web", 0);
        metrics.drift_healed("web");
        metrics.reconcile_started("web");
        let nomad = metrics.requests(ApiSystem::Nomad);
        nomad.answered(200);
        nomad.answered(200);
        nomad.unanswered();
        metrics.requests(ApiSystem::S3).answered(404);
        let found = scrape(&metrics);
        let value = |key: &str| found.get(key).copied();
        assert_eq!(
            value(r#"drover_syncs_total{app="web",result="succeeded"}"#),
            Some(1.0),
            "{found:?}"
        );
        assert_eq!(
            value(r#"drover_syncs_total{app="web",result="failed"}"#),
            Some(1.0)
        );
        assert_eq!(
            value(r#"drover_sync_duration_seconds_count{app="web"}"#),
            Some(2.0)
        );
        assert_eq!(
            value(r#"drover_sync_duration_seconds_sum{app="web"}"#),
            Some(2.3)
        );
        assert_eq!(
            value(r#"drover_sync_duration_seconds_bucket{le="0.5",app="web"}"#),
            Some(1.0)
        );
        assert_eq!(
            value(r#"drover_drift_detected_total{app="web"}"#),
            Some(2.0)
        );
        assert_eq!(value(r#"drover_drift_healed_total{app="web"}"#), Some(1.0));
        assert_eq!(value(r#"drover_reconciles_total{app="web"}"#), Some(1.0));
        assert_eq!(
            value(r#"drover_api_requests_total{system="nomad",code="200"}"#),
            Some(2.0)
        );
        assert_eq!(
            value(r#"drover_api_requests_total{system="nomad",code="error"}"#),
            Some(1.0)
        );
        assert_eq!(
            value(r#"drover_api_requests_total{system="s3",code="404"}"#),
            Some(1.0)
        );
    }

    #[test]
    fn a_failed_fetch_counts_a_failure_and_keeps_the_last_success() {
        let (metrics, _statuses) = metrics();
        let first = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        metrics.git_fetched(Duration::from_millis(20), true, first);
        metrics.git_fetched(
            Duration::from_millis(40),
            false,
            first + Duration::from_secs(60),
        );
        let found = scrape(&metrics);
        let value = |key: &str| found.get(key).copied();
        assert_eq!(
            value("drover_git_fetch_failures_total"),
            Some(1.0),
            "{found:?}"
        );
        assert_eq!(
            value("drover_git_last_successful_fetch_timestamp_seconds"),
            Some(1_700_000_000.0)
        );
        assert_eq!(value("drover_git_fetch_duration_seconds_count"), Some(2.0));
    }

    fn probe(name: &str, kind: ProbeKind, health: Health) -> ProbeStatus {
        ProbeStatus {
            name: name.into(),
            kind,
            target: format!("https://user:s3cret@{name}.example.org/"),
            health,
            message: "secret-free message".into(),
            latency_ms: None,
            days_left: None,
            age_seconds: None,
            checked_at: Some(SystemTime::now()),
        }
    }

    #[test]
    fn app_state_and_probes_are_read_from_the_statuses_at_each_scrape() {
        let (metrics, statuses) = metrics();
        let mut web = AppStatus::unknown("web", "abc", Phase::Synced);
        web.sync = SyncStatus::OutOfSync;
        web.health = Health::Degraded;
        web.probes = vec![
            ProbeStatus {
                latency_ms: Some(35),
                ..probe("api", ProbeKind::Http, Health::Healthy)
            },
            ProbeStatus {
                latency_ms: Some(120),
                days_left: Some(12),
                ..probe("cert", ProbeKind::Tls, Health::Degraded)
            },
            ProbeStatus {
                age_seconds: Some(90),
                ..probe("backup", ProbeKind::BackupFreshness, Health::Healthy)
            },
            ProbeStatus {
                checked_at: None,
                ..probe("later", ProbeKind::Http, Health::Unknown)
            },
        ];
        let db = AppStatus::unknown("db", "abc", Phase::Synced);
        statuses.send_modify(|all| {
            all.insert("web".into(), web);
            all.insert("db".into(), db);
        });
        let text = metrics.encode().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !text.contains("s3cret") && !text.contains("example.org"),
            "{text}"
        );
        let found = samples(&text);
        let value = |key: &str| found.get(key).copied();
        let state = |metric: &str, app: &str, state: &str| {
            value(&format!(
                "drover_{metric}{{app=\"{app}\",state=\"{state}\"}}"
            ))
        };
        assert_eq!(
            state("app_sync_state", "web", "out_of_sync"),
            Some(1.0),
            "{text}"
        );
        assert_eq!(state("app_sync_state", "web", "synced"), Some(0.0));
        assert_eq!(state("app_sync_state", "db", "unknown"), Some(1.0));
        assert_eq!(state("app_health_state", "web", "degraded"), Some(1.0));
        assert_eq!(state("app_health_state", "web", "healthy"), Some(0.0));
        assert_eq!(
            value(r#"drover_probe_success{app="web",probe="api",kind="http"}"#),
            Some(1.0)
        );
        assert_eq!(
            value(r#"drover_probe_success{app="web",probe="cert",kind="tls"}"#),
            Some(0.0)
        );
        assert_eq!(
            value(r#"drover_probe_duration_seconds{app="web",probe="api",kind="http"}"#),
            Some(0.035)
        );
        assert_eq!(
            value(r#"drover_probe_certificate_expiry_days{app="web",probe="cert",kind="tls"}"#),
            Some(12.0)
        );
        assert_eq!(
            value(
                r#"drover_probe_backup_age_seconds{app="web",probe="backup",kind="backup_freshness"}"#
            ),
            Some(90.0)
        );
        assert!(
            !text.contains("probe=\"later\""),
            "a probe not run yet has no result"
        );
        assert!(text.contains("# HELP drover_app_sync_state "), "{text}");
        assert!(
            text.contains("# UNIT drover_probe_certificate_expiry_days days"),
            "{text}"
        );

        // The app leaves Git: its status goes, and so do its series.
        statuses.send_modify(|all| {
            all.remove("web");
        });
        let text = metrics.encode().unwrap_or_else(|e| panic!("{e}"));
        assert!(!text.contains("app=\"web\""), "{text}");
        assert!(text.contains("app=\"db\""), "{text}");
    }
}
