//! The probe runner: one task per app with probes, started, restarted and stopped by the
//! scheduler as the app loads, changes its probes or leaves Git. It only stores results; the
//! status derivation reads them ([`with_probes`]), and a probe whose health changes wakes its
//! app so the status is re-published promptly (DESIGN principle 8).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{AppStatus, ProbeStatus};
use crate::desired::Probe;
use crate::health::Health;
use crate::health::probes::{self, ProbeClients};
use crate::providers::s3::S3Client;

/// The probes of every app and their latest results.
#[derive(Clone)]
pub struct ProbeRunner {
    clients: Option<ProbeClients>,
    apps: Arc<Mutex<BTreeMap<String, AppProbes>>>,
    /// Run numbers, never reused across apps, stops and restarts: a task stopped while its
    /// check was in flight can never write into a later run's results.
    runs: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for ProbeRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeRunner").finish_non_exhaustive()
    }
}

/// One app's running probes.
struct AppProbes {
    /// What runs, to tell whether a new revision changed it.
    probes: Vec<Probe>,
    /// Results by probe position; written only by the task of `generation`.
    results: Vec<ProbeStatus>,
    /// Distinguishes this run from an earlier one of the same app (a late write is dropped).
    generation: u64,
    stop: CancellationToken,
}

impl ProbeRunner {
    /// A runner whose probes talk through `clients` (`None`: HTTP and TLS probes report that
    /// they cannot run).
    pub fn new(clients: Option<ProbeClients>) -> ProbeRunner {
        ProbeRunner {
            clients,
            apps: Arc::new(Mutex::new(BTreeMap::new())),
            runs: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    fn apps(&self) -> MutexGuard<'_, BTreeMap<String, AppProbes>> {
        match self.apps.lock() {
            Ok(apps) => apps,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Run `probes` for `app` (its last good revision's), restarting them if they changed;
    /// `wake` is notified when a probe's health changes. No probes: stop any.
    pub fn ensure(&self, app: &str, probes: &[Probe], s3: Option<S3Client>, wake: Arc<Notify>) {
        if probes.is_empty() {
            self.stop(app);
            return;
        }
        let mut apps = self.apps();
        if apps
            .get(app)
            .is_some_and(|running| running.probes == probes)
        {
            return;
        }
        let generation = self.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(old) = apps.remove(app) {
            old.stop.cancel();
        }
        let stop = CancellationToken::new();
        apps.insert(
            app.to_string(),
            AppProbes {
                probes: probes.to_vec(),
                results: probes.iter().map(probes::not_run).collect(),
                generation,
                stop: stop.clone(),
            },
        );
        drop(apps);
        let runner = self.clone();
        let (app, probes) = (app.to_string(), probes.to_vec());
        tokio::spawn(async move {
            let loops = probes.iter().enumerate().map(|(index, probe)| {
                let slot = Slot {
                    runner: &runner,
                    app: &app,
                    generation,
                    index,
                };
                run_probe(slot, probe, s3.as_ref(), &wake, &stop)
            });
            futures::future::join_all(loops).await;
        });
    }

    /// Stop `app`'s probes and forget their results (it left Git, or has no probes any more).
    pub fn stop(&self, app: &str) {
        if let Some(old) = self.apps().remove(app) {
            old.stop.cancel();
        }
    }

    /// Stop every app's probes (the controller stops).
    pub fn stop_all(&self) {
        for (_, old) in std::mem::take(&mut *self.apps()) {
            old.stop.cancel();
        }
    }

    /// `app`'s probes with their latest results, in app.yaml order.
    pub fn results(&self, app: &str) -> Vec<ProbeStatus> {
        self.apps()
            .get(app)
            .map(|a| a.results.clone())
            .unwrap_or_default()
    }

    /// Store one result; true when the probe's health changed.
    fn record(&self, slot: &Slot<'_>, status: ProbeStatus) -> bool {
        let mut apps = self.apps();
        let Some(current) = apps
            .get_mut(slot.app)
            .filter(|a| a.generation == slot.generation)
        else {
            return false;
        };
        let Some(result) = current.results.get_mut(slot.index) else {
            return false;
        };
        let changed = result.health != status.health;
        *result = status;
        changed
    }
}

/// Where one probe's results go.
struct Slot<'a> {
    runner: &'a ProbeRunner,
    app: &'a str,
    generation: u64,
    index: usize,
}

/// Run one probe every `interval` (the first run at once) until `stop`.
async fn run_probe(
    slot: Slot<'_>,
    probe: &Probe,
    s3: Option<&S3Client>,
    wake: &Notify,
    stop: &CancellationToken,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs(probe.interval_secs.max(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let status = tokio::select! {
            _ = stop.cancelled() => return,
            status = probes::check(probe, slot.runner.clients.as_ref(), s3) => status,
        };
        if status.health != Health::Healthy {
            tracing::debug!(app = slot.app, probe = %status.name, message = %status.message, "probe not healthy");
        }
        if slot.runner.record(&slot, status) {
            wake.notify_one();
        }
    }
}

/// `status` with `probes` and their health counted in the app's: the worst of the resources'
/// and the probes'. A probe that could not decide (not run yet, no S3 configured) is shown but
/// does not count, so a missing setting does not hold back the apps that depend on this one.
pub fn with_probes(mut status: AppStatus, probes: Vec<ProbeStatus>) -> AppStatus {
    status.health = probes
        .iter()
        .map(|p| p.health)
        .filter(|h| *h != Health::Unknown)
        .fold(status.health, Health::worst);
    status.probes = probes;
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{Phase, ProbeKind};

    fn probe_with(health: Health) -> ProbeStatus {
        ProbeStatus {
            name: "p".into(),
            kind: ProbeKind::Http,
            target: "http://127.0.0.1/".into(),
            health,
            message: String::new(),
            latency_ms: None,
            days_left: None,
            age_seconds: None,
            checked_at: None,
        }
    }

    fn healthy_app() -> AppStatus {
        let mut status = AppStatus::unknown("web", "abc", Phase::Synced);
        status.health = Health::Healthy;
        status
    }

    #[tokio::test]
    async fn a_stopped_runs_late_result_never_lands_in_a_later_run_of_the_same_app() {
        let runner = ProbeRunner::new(None);
        let probe = Probe {
            name: Some("p".into()),
            interval_secs: 3600,
            check: crate::desired::ProbeCheck::Http {
                url: "http://127.0.0.1:1/".into(),
                expect_status: 200,
                timeout_secs: 1,
            },
        };
        let wake = Arc::new(Notify::new());
        runner.ensure("a", std::slice::from_ref(&probe), None, wake.clone());
        let first = runner.apps().get("a").map(|a| a.generation);
        // The app leaves Git and comes back: a new run of the same probes.
        runner.stop("a");
        runner.ensure("a", std::slice::from_ref(&probe), None, wake);
        let second = runner.apps().get("a").map(|a| a.generation);
        assert_ne!(first, second);
        let Some(first) = first else {
            panic!("the first run was registered")
        };
        // What the first run's task might write after its check was already in flight.
        let stale = Slot {
            runner: &runner,
            app: "a",
            generation: first,
            index: 0,
        };
        let mut late = probe_with(Health::Healthy);
        late.message = "late result of a stopped run".into();
        assert!(!runner.record(&stale, late));
        assert!(
            runner
                .results("a")
                .iter()
                .all(|r| r.message != "late result of a stopped run")
        );
        runner.stop_all();
    }

    #[test]
    fn an_apps_health_is_the_worst_of_its_resources_and_its_decided_probes() {
        let failed = with_probes(
            healthy_app(),
            vec![probe_with(Health::Healthy), probe_with(Health::Degraded)],
        );
        assert_eq!(failed.health, Health::Degraded);
        assert_eq!(failed.probes.len(), 2);
        let passing = with_probes(healthy_app(), vec![probe_with(Health::Healthy)]);
        assert_eq!(passing.health, Health::Healthy);
        let undecided = with_probes(healthy_app(), vec![probe_with(Health::Unknown)]);
        assert_eq!(undecided.health, Health::Healthy);
        let mut missing = healthy_app();
        missing.health = Health::Missing;
        assert_eq!(
            with_probes(missing, vec![probe_with(Health::Degraded)]).health,
            Health::Missing
        );
    }
}
