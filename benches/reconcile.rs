//! `cargo bench --bench reconcile`: the reconcile loop's work, counted (Nomad requests by kind,
//! Consul, Vault and S3 requests, CPU time), for N apps through first sync, steady state, a Git
//! change and drift. Each app is a service job, a Consul config entry, a Vault requirement
//! (listed, and read by the job's template) and a bucket on the embedded S3 server.
//!
//! Work is counted rather than timed: the machine is noisy, request counts are not. The devstack
//! and drover run on separate runtimes with named threads, so drover's own CPU time is read from
//! its threads in `/proc/self/task` apart from the simulated cluster's.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/measure.rs"]
mod measure;
#[path = "support/mode.rs"]
mod mode;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use common::{TestEnv, app_yaml, web_jobspec};
use drover::controller::runtime::{self, Running};
use drover::controller::{AppStatus, SyncStatus};
use drover::health::Health;
use drover_devstack::s3::S3Server;
use measure::{ConsulVault, Cpu, Kinds, RequestLog, S3Counts};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

/// App counts measured (`DROVER_BENCH_SIZES=10,100,1000` measures others).
const SIZES: [usize; 2] = [10, 50];
/// The steady-state window: the idle minute.
const STEADY_WINDOW: Duration = Duration::from_secs(60);
/// Under `cargo test --benches` (no `--bench` argument): one small run that checks the same
/// assertions quickly and writes no report.
const SMOKE_SIZES: [usize; 1] = [3];
const SMOKE_WINDOW: Duration = Duration::from_secs(3);
/// Quiet time after a phase before the next one starts (deployments finish, watchers settle).
const SETTLE: Duration = Duration::from_secs(2);
/// The least time between two of the bench's scans of every app's status (its waits and the
/// cycle counter): the bench must not take the CPU it measures.
const BENCH_SCAN_GAP: Duration = Duration::from_millis(20);
/// Longest any phase may take.
const PHASE_TIMEOUT: Duration = Duration::from_secs(60);

/// One phase's measurements.
#[derive(Debug, Clone, Default)]
struct Phase {
    name: &'static str,
    wall: Duration,
    requests: Kinds,
    /// Consul and Vault requests.
    others: ConsulVault,
    /// S3 requests (the embedded server's log).
    s3: S3Counts,
    drover_cpu: Duration,
    devstack_cpu: Duration,
    process_cpu: Duration,
    /// Reconcile cycles observed (status publishes with a new `observed_at`; a lower bound).
    cycles: u64,
    /// Resident memory of the bench process (drover and the devstack) at the phase's end, MiB.
    rss_mib: u64,
    /// When every app was Synced (all jobs registered), before all were Healthy (`wall`).
    synced: Option<Duration>,
    /// A Git change: from the refresh request to the devstack applying the changed job's
    /// register (a write that made a new version).
    registered: Option<Duration>,
}

impl Phase {
    fn json(&self) -> Value {
        json!({
            "wall_ms": self.wall.as_millis() as u64,
            "requests": self.requests.json(),
            "consul_vault": self.others.json(),
            "s3": self.s3.json(),
            "drover_cpu_ms": self.drover_cpu.as_millis() as u64,
            "devstack_cpu_ms": self.devstack_cpu.as_millis() as u64,
            "process_cpu_ms": self.process_cpu.as_millis() as u64,
            "reconcile_cycles": self.cycles,
            "process_rss_mib": self.rss_mib,
            "all_synced_ms": self.synced.map(|d| d.as_millis() as u64),
            "refresh_to_registered_ms": self.registered.map(|d| d.as_millis() as u64),
        })
    }
}

/// Counts status publishes with a new `observed_at`, per app: how many reconcile cycles ran.
#[derive(Clone, Default)]
struct CycleCounter(Arc<AtomicU64>);

impl CycleCounter {
    /// Counts on the bench's own runtime (the caller's): reading all N statuses on each publish
    /// is the bench's work, not drover's, and must not show in drover's CPU.
    fn spawn(&self, running: &Running) {
        let mut rx = running.ctx.statuses.subscribe();
        let count = self.0.clone();
        tokio::spawn(async move {
            let mut seen: BTreeMap<String, SystemTime> = BTreeMap::new();
            loop {
                for (name, status) in rx.borrow_and_update().iter() {
                    if seen.get(name) != Some(&status.observed_at) {
                        seen.insert(name.clone(), status.observed_at);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if rx.changed().await.is_err() {
                    return;
                }
                // The bench's own scans of all N statuses, at most every 20 ms (one per
                // publish was a sixth of the CPU in a 1,000-app first sync, taken from drover).
                tokio::time::sleep(BENCH_SCAN_GAP).await;
            }
        });
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The start of a measured phase.
struct Mark {
    seq: u64,
    /// S3 requests served before the phase.
    s3_seen: usize,
    at: Instant,
    drover_cpu: Duration,
    devstack_cpu: Duration,
    process_cpu: Duration,
    cycles: u64,
}

struct Bench {
    env: TestEnv,
    running: Option<Running>,
    log: RequestLog,
    s3: S3Server,
    cycles: CycleCounter,
    apps: Vec<String>,
}

impl Bench {
    async fn mark(&self) -> Mark {
        Mark {
            seq: self.log.last_seq().await,
            s3_seen: self.s3.requests().len(),
            at: Instant::now(),
            drover_cpu: Cpu::threads_with_prefix("drover"),
            devstack_cpu: Cpu::threads_with_prefix("devstack"),
            process_cpu: Cpu::process(),
            cycles: self.cycles.get(),
        }
    }

    /// Close a phase: everything Nomad served since `mark`, minus the bench's own requests.
    async fn phase(&self, name: &'static str, mark: &Mark, exclude: &[u64]) -> Phase {
        let wall = mark.at.elapsed();
        let drover_cpu = Cpu::threads_with_prefix("drover").saturating_sub(mark.drover_cpu);
        let devstack_cpu = Cpu::threads_with_prefix("devstack").saturating_sub(mark.devstack_cpu);
        let process_cpu = Cpu::process().saturating_sub(mark.process_cpu);
        let cycles = self.cycles.get() - mark.cycles;
        let entries = self.log.since(mark.seq).await;
        let requests = Kinds::count(entries.iter().filter(|e| !exclude.contains(&e.seq)));
        let consul = self.log.of_system_since("consul", mark.seq).await;
        let vault = self.log.of_system_since("vault", mark.seq).await;
        let others = ConsulVault::count(&consul, &vault);
        let s3 = S3Counts::count(self.s3.requests().get(mark.s3_seen..).unwrap_or_default());
        Phase {
            name,
            wall,
            requests,
            others,
            s3,
            drover_cpu,
            devstack_cpu,
            process_cpu,
            cycles,
            rss_mib: resident_mib(),
            synced: None,
            registered: None,
        }
    }

    /// Called the moment `job`'s app first reports Synced+Healthy after a write: a finding if
    /// drover has not read the job's deployment or allocations since its register (that health
    /// then came from before the write).
    async fn healthy_unread(&self, job: &str, since: u64) -> Option<String> {
        let entries = self.log.since(since).await;
        let register = entries
            .iter()
            .find(|e| e.method == "POST" && e.path == "/v1/jobs")?;
        let deployment = format!("/v1/job/{job}/deployment");
        let allocations = format!("/v1/job/{job}/allocations");
        let read = entries.iter().any(|e| {
            e.seq > register.seq
                && e.method == "GET"
                && (e.path == deployment || e.path == allocations)
        });
        (!read).then(|| {
            format!(
                "{job} reported Synced+Healthy after its register (seq {}) without reading its deployment or allocations since",
                register.seq
            )
        })
    }

    fn running(&self) -> &Running {
        self.running
            .as_ref()
            .unwrap_or_else(|| panic!("drover is not running"))
    }

    /// Wait until every app satisfies `ok`.
    /// `POST /api/v1/refresh`, then wait for the devstack to apply a register of `app`'s job
    /// that makes a new version; the time from the request to that write.
    async fn refresh_until_registered(&self, app: &str) -> Duration {
        let log = &self.env.devstack.state().requests;
        let mark = log.entries().last().map_or(0, |e| e.seq);
        let object = format!("job default/{app}");
        let started = Instant::now();
        let response = self
            .env
            .http
            .post(format!("http://{}/api/v1/refresh", self.running().web_addr))
            .bearer_auth(common::TEST_API_TOKEN)
            .json(&json!({}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /api/v1/refresh: {e}"));
        assert!(
            response.status().is_success(),
            "refresh answered {}",
            response.status()
        );
        loop {
            let registered = log
                .entries_since(Some(drover_devstack::System::Nomad), mark)
                .iter()
                .any(|e| e.object.as_deref() == Some(object.as_str()) && e.version.is_some());
            if registered {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < PHASE_TIMEOUT,
                "{app} not registered {PHASE_TIMEOUT:?} after the refresh"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn wait_all(&self, what: &str, ok: impl Fn(&AppStatus) -> bool) {
        let mut rx = self.running().ctx.statuses.subscribe();
        let deadline = tokio::time::Instant::now() + PHASE_TIMEOUT;
        loop {
            let pending: Vec<String> = {
                let all = rx.borrow_and_update();
                self.apps
                    .iter()
                    .filter(|a| !all.get(*a).is_some_and(&ok))
                    .cloned()
                    .collect()
            };
            if pending.is_empty() {
                return;
            }
            tokio::time::sleep(BENCH_SCAN_GAP).await;
            tokio::select! {
                _ = rx.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    let all = rx.borrow();
                    let first = all.get(&pending[0]);
                    panic!("timed out waiting for {what}: {} app(s) pending, e.g. {}: {first:#?}", pending.len(), pending[0]);
                }
            }
        }
    }

    /// Wait until `app` satisfies `ok`.
    async fn wait_one(&self, app: &str, what: &str, ok: impl Fn(&AppStatus) -> bool) {
        let deadline = tokio::time::Instant::now() + PHASE_TIMEOUT;
        let mut rx = self.running().ctx.statuses.subscribe();
        loop {
            if rx.borrow_and_update().get(app).is_some_and(&ok) {
                return;
            }
            tokio::select! {
                _ = rx.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    panic!("timed out waiting for {app} to be {what}: {:#?}", rx.borrow().get(app));
                }
            }
        }
    }
}

fn synced_healthy(s: &AppStatus) -> bool {
    s.sync == SyncStatus::Synced && s.health == Health::Healthy
}

/// Synced and Healthy after a sync that finished after `after`.
fn healed_since(s: &AppStatus, after: SystemTime) -> bool {
    synced_healthy(s) && s.last_sync.as_ref().is_some_and(|l| l.at >= after)
}

/// The tests' web jobspec with a template reading the app's Vault secret (the same requirement
/// the app lists: one requirement, one read per check).
fn bench_jobspec(app: &str, image: &str) -> String {
    web_jobspec(app, image).replace(
        "      resources {",
        &format!(
            "      template {{\n        data        = \"{{{{ with secret \\\"nomad/data/default/{app}\\\" }}}}KEY={{{{ .Data.data.KEY }}}}{{{{ end }}}}\"\n        destination = \"secrets/app.env\"\n        env         = true\n      }}\n\n      resources {{"
        ),
    )
}

/// Write the app's secret (`KEY`) through the Vault API with the root token.
async fn seed_secret(env: &TestEnv, app: &str) {
    let answer = env
        .http
        .post(format!(
            "{}/v1/nomad/data/default/{app}",
            env.devstack.vault_url()
        ))
        .header("X-Vault-Token", env.devstack.root_token())
        .json(&json!({"data": {"KEY": "bench"}}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("seed {app}'s secret: {e}"));
    assert!(
        answer.status().is_success(),
        "seed {app}'s secret: {}",
        answer.status()
    );
}

/// The tests' seed on ten roomy amd64 nodes (16 GHz, 64 GiB each: room for 1,600 of the bench's
/// 100 MHz allocations; the default three nodes hold 120, and the rest would wait as blocked
/// evaluations until their deployments fail on the progress deadline).
fn roomy_cluster() -> drover_devstack::seed::Seed {
    let nodes = (1..=10)
        .map(|i| json!({"name": format!("node-{i}"), "cpu_mhz": 16_000, "memory_mb": 65_536}))
        .collect::<Vec<_>>();
    let nodes =
        serde_json::from_value(Value::Array(nodes)).unwrap_or_else(|e| panic!("seed nodes: {e}"));
    drover_devstack::seed::Seed {
        nodes: Some(nodes),
        ..common::default_seed()
    }
}

/// One N: first sync, steady state, a Git change, drift. Returns the phases and failed checks.
fn run_size(
    n: usize,
    window: Duration,
    serve_defaults: bool,
    dev_rt: &Runtime,
    drover_rt: &Runtime,
    main_rt: &Runtime,
) -> SizeResult {
    let env = dev_rt.block_on(TestEnv::with_seed(roomy_cluster()));
    let apps = write_apps(&env, n, dev_rt);
    let first_rev = env.commit(&format!("{n} apps"));
    let log = RequestLog::new(&env.devstack.nomad_url());
    let (s3, s3_dir) = start_s3(dev_rt);
    let _s3_dir = s3_dir;
    let s3_config = drover::providers::s3::S3Config {
        endpoint: Some(s3.url()),
        credentials: Some(drover::providers::s3::StaticCredentials::new(
            S3_KEY_ID,
            S3_SECRET_KEY,
        )),
        ..drover::providers::s3::S3Config::default()
    };
    let bench_apps = apps.clone();
    let mut bench = Bench {
        env,
        running: None,
        log,
        s3,
        cycles: CycleCounter::default(),
        apps: bench_apps,
    };
    let result = run_phases(
        n,
        window,
        serve_defaults,
        drover_rt,
        main_rt,
        &mut bench,
        &apps,
        &first_rev,
        &s3_config,
    );
    dev_rt.block_on(bench.env.shutdown());
    dev_rt.block_on(bench.s3.shutdown());
    result
}

/// The S3 server's credentials in the bench.
const S3_KEY_ID: &str = "bench";
const S3_SECRET_KEY: &str = "bench-secret-key";

/// The S3 server `drover demo` runs, on the devstack's runtime, and its folder.
fn start_s3(dev_rt: &Runtime) -> (S3Server, tempfile::TempDir) {
    let s3_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let s3 = dev_rt
        .block_on(S3Server::start(
            "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
            s3_dir.path(),
            S3_KEY_ID,
            S3_SECRET_KEY,
        ))
        .unwrap_or_else(|e| panic!("s3s-fs: {e}"));
    (s3, s3_dir)
}

/// Write N apps (a job, a config entry, a Vault requirement and a bucket each) into the repo and
/// their secrets into Vault; their names.
fn write_apps(env: &TestEnv, n: usize, dev_rt: &Runtime) -> Vec<String> {
    let apps: Vec<String> = (0..n).map(|i| format!("app-{i:02}")).collect();
    for app in &apps {
        env.write(
            &format!("apps/{app}/app.yaml"),
            &app_yaml(
                app,
                &format!(
                    "  - consul_config_entry: {{ file: defaults.hcl }}\n  - vault_secret: {{ mount: nomad, path: default/{app}, keys: [KEY] }}\n  - bucket: {{ name: {app} }}\nsync: {{ self_heal: true }}\n"
                ),
            ),
        );
        env.write(
            &format!("apps/{app}/defaults.hcl"),
            &format!(
                "Kind     = \"service-defaults\"\nName     = \"{app}\"\nProtocol = \"http\"\n"
            ),
        );
        env.write(
            &format!("apps/{app}/job.nomad.hcl"),
            &bench_jobspec(app, "nginx:1.27"),
        );
        dev_rt.block_on(seed_secret(env, app));
    }
    apps
}

/// The four phases of one N, on a written repo.
#[allow(clippy::too_many_arguments)]
fn run_phases(
    n: usize,
    window: Duration,
    serve_defaults: bool,
    drover_rt: &Runtime,
    main_rt: &Runtime,
    bench: &mut Bench,
    apps: &[String],
    first_rev: &str,
    s3_config: &drover::providers::s3::S3Config,
) -> SizeResult {
    let apps = apps.to_vec();
    let mut failures = Vec::new();
    let mut findings = Vec::new();
    let mut phases = Vec::new();
    let settings_with_s3 = |env: &TestEnv| {
        let mut settings = env.settings();
        settings.s3 = Some(s3_config.clone());
        if serve_defaults {
            // What `drover serve` runs with unless told otherwise: the tests' 2 s resync
            // re-reads every app's secret and bucket 500 times a second at 1,000 apps, which no
            // user would set. The smoke keeps the tests' intervals, so its window sees resyncs.
            let defaults = drover::controller::ControllerSettings::default();
            settings.controller.resync_interval = defaults.resync_interval;
            settings.controller.progress_interval = defaults.progress_interval;
            // And its Git poll: the change below is fetched by a refresh (what a webhook or
            // `POST /api/v1/refresh` does), not by a poll 200 ms later.
            settings.source.poll_interval = drover::source::SourceConfig::default().poll_interval;
        }
        settings
    };
    let settings = settings_with_s3(&bench.env);
    let resync_interval = settings.controller.resync_interval;
    let tuning = json!({
        "serve_defaults": serve_defaults,
        "concurrency": settings.controller.concurrency,
        "resync_interval_ms": settings.controller.resync_interval.as_millis() as u64,
        "progress_interval_ms": settings.controller.progress_interval.as_millis() as u64,
        "git_poll_interval_ms": settings.source.poll_interval.as_millis() as u64,
        "devstack_time_scale": 0.01,
    });

    main_rt.block_on(async {
        // 1. First sync.
        let mark = bench.mark().await;
        let settings = settings_with_s3(&bench.env);
        // Spawned on drover's runtime so that its tasks (and CPU time) live there.
        let running = drover_rt
            .spawn(runtime::start(settings, CancellationToken::new()))
            .await
            .unwrap_or_else(|e| panic!("drover task: {e}"))
            .unwrap_or_else(|e| panic!("drover: {e:?}"));
        bench.cycles.spawn(&running);
        bench.running = Some(running);
        bench
            .wait_all("Synced", |s| {
                s.sync == SyncStatus::Synced && s.revision == first_rev
            })
            .await;
        let all_synced = mark.at.elapsed();
        bench
            .wait_all("Synced+Healthy", |s| {
                synced_healthy(s) && s.revision == first_rev
            })
            .await;
        let mut first = bench.phase("first sync", &mark, &[]).await;
        first.synced = Some(all_synced);
        if first.others.consul_writes != n as u64 {
            findings.push(format!(
                "N={n}, first sync: {} Consul config-entry writes for {n} new entries (want one each)",
                first.others.consul_writes
            ));
        }
        if first.requests.register > n as u64 {
            findings.push(format!(
                "N={n}, first sync: {} registers for {n} new jobs (a job created twice)",
                first.requests.register
            ));
        }
        phases.push(first);
        // Outside any window: a second create of an identical job must not make a new version.
        let mut versioned = Vec::new();
        for app in &apps {
            let version = bench.env.job(app).await.and_then(|j| j["Version"].as_u64());
            if version != Some(0) {
                versioned.push(format!("{app}: {version:?}"));
            }
        }
        if !versioned.is_empty() {
            findings.push(format!(
                "N={n}, first sync: job version not 0 after the first sync: {}",
                versioned.join(", ")
            ));
        }
        tokio::time::sleep(SETTLE).await;

        // 2. Steady state: nothing changes for a window.
        let mark = bench.mark().await;
        tokio::time::sleep(window).await;
        let steady = bench.phase("steady state", &mark, &[]).await;
        if steady.requests.plan > 0 || steady.requests.register > 0 {
            failures.push(format!(
                "N={n}: steady state made {} plan and {} register request(s)",
                steady.requests.plan, steady.requests.register
            ));
        }
        // Settled apps are judged from the cache: only the watchers' blocking lists may appear.
        let polls = steady.requests.total() - steady.requests.blocking_list;
        if polls > 0 {
            failures.push(format!(
                "N={n}: steady state made {polls} request(s) besides blocking lists: {:?}",
                steady.requests.by_endpoint
            ));
        }
        // An unchanged cycle costs Consul nothing (its watchers' held queries aside) and Vault one
        // read per requirement per resync: each app's secret read at least once in the window
        // (which is longer than a resync interval) and at most once per resync interval.
        if steady.others.consul > 0 {
            failures.push(format!(
                "N={n}: steady state made {} Consul request(s) besides blocking queries",
                steady.others.consul
            ));
        }
        if steady.others.vault_other > 0 {
            failures.push(format!(
                "N={n}: steady state made {} Vault request(s) besides secret reads (mount lookups, logins)",
                steady.others.vault_other
            ));
        }
        let resyncs = window.as_millis() / resync_interval.as_millis().max(1) + 1;
        // At least one read per app only when the window holds a whole resync interval (the
        // smoke's 2 s); with `drover serve`'s 3 minutes a quiet minute may read nothing.
        let least = u64::from(window >= resync_interval);
        for app in &apps {
            let path = format!("/v1/nomad/data/default/{app}");
            let reads = steady.others.vault_reads.get(&path).copied().unwrap_or(0);
            if reads < least || u128::from(reads) > resyncs {
                failures.push(format!(
                    "N={n}: steady state read {path} {reads} time(s) in {window:?} (want {least}..={resyncs}: one per resync of {resync_interval:?})"
                ));
            }
        }
        let requirement_paths: Vec<String> = apps
            .iter()
            .map(|app| format!("/v1/nomad/data/default/{app}"))
            .collect();
        let other_paths: Vec<&String> = steady
            .others
            .vault_reads
            .keys()
            .filter(|path| !requirement_paths.contains(path))
            .collect();
        if !other_paths.is_empty() {
            failures.push(format!(
                "N={n}: steady state read other Vault paths than the {n} requirements: {other_paths:?}"
            ));
        }
        // S3 has no watch: an unchanged cycle reads each bucket again, once per resync. A read
        // is one HeadBucket plus one GetBucketTagging (tags are always read: ownership), since
        // these buckets declare no other setting; it writes nothing.
        if steady.s3.writes > 0 {
            failures.push(format!(
                "N={n}: steady state made {} S3 write(s)",
                steady.s3.writes
            ));
        }
        for app in &apps {
            let heads = steady.s3.heads.get(app).copied().unwrap_or(0);
            if heads < least || u128::from(heads) > resyncs {
                failures.push(format!(
                    "N={n}: steady state read bucket {app} {heads} time(s) in {window:?} (want {least}..={resyncs}: S3 has no watch, so one read per bucket per resync of {resync_interval:?})"
                ));
            }
        }
        let other_buckets: Vec<&String> = steady
            .s3
            .heads
            .keys()
            .filter(|bucket| !apps.contains(bucket))
            .collect();
        if !other_buckets.is_empty() {
            failures.push(format!(
                "N={n}: steady state read other buckets than the {n} declared: {other_buckets:?}"
            ));
        }
        let bucket_reads: u64 = steady.s3.heads.values().sum();
        // A read in flight when the window opened has its HeadBucket before the window and its
        // tags GET inside it: at most one such read per bucket.
        let straddling = apps.len() as u64;
        if steady.s3.other_reads > bucket_reads + straddling {
            failures.push(format!(
                "N={n}: steady state made {} S3 GET(s) for {bucket_reads} bucket read(s) (want at most one, the tags, per read)",
                steady.s3.other_reads
            ));
        }
        phases.push(steady);

        // 3. One app's jobspec changes in Git.
        let changed = &apps[0];
        let mark = bench.mark().await;
        let started = SystemTime::now();
        bench.env.write(
            &format!("apps/{changed}/job.nomad.hcl"),
            &bench_jobspec(changed, "nginx:1.28"),
        );
        let second_rev = bench.env.commit(&format!("{changed}: nginx 1.28"));
        let registered = bench.refresh_until_registered(changed).await;
        bench
            .wait_one(changed, "synced after the change", |s| {
                healed_since(s, started) && s.revision == second_rev
            })
            .await;
        if let Some(finding) = bench.healthy_unread(changed, mark.seq).await {
            findings.push(format!("N={n}, git change: {finding}"));
        }
        bench
            .wait_all("at the new revision", |s| {
                synced_healthy(s) && s.revision == second_rev
            })
            .await;
        let mut change = bench.phase("git change (1 app)", &mark, &[]).await;
        change.registered = Some(registered);
        if change.requests.plan > 2 || change.requests.register != 1 {
            failures.push(format!(
                "N={n}: a change to one app made {} plan and {} register request(s) (want <= 2 and 1)",
                change.requests.plan, change.requests.register
            ));
        }
        phases.push(change);
        tokio::time::sleep(SETTLE).await;

        // 4. Drift: one job stopped through the API; self-heal re-registers it.
        let drifted = &apps[apps.len() / 2];
        let mark = bench.mark().await;
        let started = SystemTime::now();
        let (code, body) = bench
            .env
            .nomad_send(reqwest::Method::DELETE, &format!("/v1/job/{drifted}"), None)
            .await;
        assert_eq!(code, 200, "stop {drifted}: {body}");
        let own = bench.log.own_request(mark.seq, "DELETE", drifted).await;
        bench
            .wait_one(drifted, "healed", |s| healed_since(s, started))
            .await;
        if let Some(finding) = bench.healthy_unread(drifted, mark.seq).await {
            findings.push(format!("N={n}, drift: {finding}"));
        }
        let drift = bench.phase("drift heal (1 job)", &mark, &own).await;
        if drift.requests.register == 0 {
            failures.push(format!("N={n}: the stopped job was not re-registered"));
        }
        phases.push(drift);
        let stopped = bench
            .env
            .job(drifted)
            .await
            .is_none_or(|j| j["Stop"] != false);
        if stopped {
            failures.push(format!("N={n}: {drifted} is still stopped after the heal"));
        }
    });

    if let Some(running) = bench.running.take() {
        drover_rt.block_on(running.stop());
    }
    SizeResult {
        n,
        tuning,
        phases,
        failures,
        findings,
    }
}

/// `drover serve` in a process of its own: what drover alone holds and spends (the phases above
/// share one process with the devstack, whose 1,000 jobs are most of that RSS).
struct OwnProcess {
    n: usize,
    /// Start → every app Synced and Healthy.
    converged: Duration,
    /// CPU time (user + system) until then.
    cpu: Duration,
    /// `VmRSS` then, and after a quiet minute; `VmHWM` (the peak) at the end.
    rss_mib: u64,
    idle_rss_mib: u64,
    peak_mib: u64,
}

/// Run `drover serve` (the binary, `serve -c drover.yaml`) against a devstack, S3 server and repo
/// of `n` apps like the phases', until every app is Synced and Healthy, then a quiet window.
fn own_process(n: usize, idle: Duration, dev_rt: &Runtime, main_rt: &Runtime) -> OwnProcess {
    let env = dev_rt.block_on(TestEnv::with_seed(roomy_cluster()));
    let apps = write_apps(&env, n, dev_rt);
    let revision = env.commit(&format!("{n} apps"));
    let (s3, _s3_dir) = start_s3(dev_rt);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("free port: {e}"));
    let config = dir.path().join("drover.yaml");
    std::fs::write(
        &config,
        format!(
            "repo: {{ url: {repo}, ref: {branch} }}\ndata_dir: {data}\nlisten: 127.0.0.1:{port}\nnomad: {{ address: {nomad} }}\n",
            repo = env.repo.display(),
            branch = drover::source::SEED_BRANCH,
            data = dir.path().join("data").display(),
            nomad = env.devstack.nomad_url(),
        ),
    )
    .unwrap_or_else(|e| panic!("config: {e}"));
    let log =
        std::fs::File::create(dir.path().join("drover.log")).unwrap_or_else(|e| panic!("log: {e}"));
    let started = Instant::now();
    // DROVER_BENCH_WRAP runs drover under a tool (`heaptrack -o /tmp/drover`); the RSS read is
    // then the tool's process's.
    let wrap: Vec<String> = std::env::var("DROVER_BENCH_WRAP")
        .map(|w| w.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let mut command = match wrap.split_first() {
        Some((tool, args)) => {
            let mut c = std::process::Command::new(tool);
            c.args(args).arg(env!("CARGO_BIN_EXE_drover"));
            c
        }
        None => std::process::Command::new(env!("CARGO_BIN_EXE_drover")),
    };
    let mut child = command
        .args(["--log-format", "json", "serve", "-c"])
        .arg(&config)
        .env_remove("NOMAD_ADDR")
        .env_remove("NOMAD_TOKEN")
        .env("CONSUL_HTTP_ADDR", env.devstack.consul_url())
        .env("VAULT_ADDR", env.devstack.vault_url())
        .env("VAULT_TOKEN", env.devstack.root_token())
        .env("AWS_ENDPOINT_URL", s3.url())
        .env("AWS_ACCESS_KEY_ID", S3_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .map(KillOnDrop)
        .unwrap_or_else(|e| panic!("drover serve: {e}"));
    let pid = child.0.id().to_string();
    let url = format!("http://127.0.0.1:{port}/api/v1/apps");
    let converged = main_rt.block_on(async {
        let http = common::http_client();
        let deadline = Instant::now() + PHASE_TIMEOUT * 2;
        loop {
            let done = match http.get(&url).send().await {
                Ok(resp) => resp.json::<Vec<Value>>().await.is_ok_and(|statuses| {
                    statuses.len() == apps.len()
                        && statuses.iter().all(|s| {
                            s["revision"] == revision.as_str()
                                && s["sync"] == "Synced"
                                && s["health"] == "Healthy"
                        })
                }),
                Err(_) => false,
            };
            if done {
                return started.elapsed();
            }
            if let Ok(Some(status)) = child.0.try_wait() {
                panic!(
                    "drover serve exited ({status}): see its log in {}",
                    dir.path().display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "drover serve did not converge on {n} apps"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let cpu = Cpu::of_process(&pid);
    let rss_mib = proc_status_mib(&pid, "VmRSS:");
    main_rt.block_on(async { tokio::time::sleep(idle).await });
    let idle_rss_mib = proc_status_mib(&pid, "VmRSS:");
    let peak_mib = proc_status_mib(&pid, "VmHWM:");
    drop(child);
    dev_rt.block_on(env.shutdown());
    dev_rt.block_on(s3.shutdown());
    OwnProcess {
        n,
        converged,
        cpu,
        rss_mib,
        idle_rss_mib,
        peak_mib,
    }
}

/// A child process killed when dropped: a failed measurement does not leave drover running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `/proc/<pid>/status` line's value in MiB (0 where /proc is unavailable).
fn proc_status_mib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

struct SizeResult {
    n: usize,
    /// The controller settings the run used (TestEnv's: short intervals).
    tuning: Value,
    phases: Vec<Phase>,
    failures: Vec<String>,
    /// Observations that do not fail the bench (see docs/benchmarks.md).
    findings: Vec<String>,
}

fn runtime(name: &'static str, workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        // Blocking threads that exit take their CPU time with them: keep them for the run.
        .thread_keep_alive(Duration::from_secs(3600))
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime {name}: {e}"))
}

fn print_table(results: &[SizeResult]) {
    println!();
    if let Some(first) = results.first() {
        println!("settings: {}", first.tuning);
    }
    println!(
        "{:>3} {:<19} {:>8} {:>6} {:>5} {:>4} {:>5} {:>4} {:>4} {:>6} {:>6} {:>5} {:>6} {:>5} {:>6} {:>5} {:>6} {:>9} {:>9} {:>9} {:>7} {:>8} {:>7}",
        "N",
        "phase",
        "wall",
        "parse",
        "plan",
        "reg",
        "list",
        "blk",
        "dep",
        "alloc",
        "other",
        "total",
        "consul",
        "c-blk",
        "vault",
        "s3",
        "cycles",
        "drover cpu",
        "devstack",
        "proc cpu",
        "rss",
        "synced",
        "to reg"
    );
    for r in results {
        for p in &r.phases {
            let k = &p.requests;
            println!(
                "{:>3} {:<19} {:>7.2}s {:>6} {:>5} {:>4} {:>5} {:>4} {:>4} {:>6} {:>6} {:>5} {:>6} {:>5} {:>6} {:>5} {:>6} {:>8}ms {:>7}ms {:>7}ms {:>4}MiB {:>8} {:>7}",
                r.n,
                p.name,
                p.wall.as_secs_f64(),
                k.parse,
                k.plan,
                k.register,
                k.list,
                k.blocking_list,
                k.deployment,
                k.allocations,
                k.other,
                k.total(),
                p.others.consul,
                p.others.consul_blocking,
                p.others.vault_read_total() + p.others.vault_other,
                p.s3.total,
                p.cycles,
                p.drover_cpu.as_millis(),
                p.devstack_cpu.as_millis(),
                p.process_cpu.as_millis(),
                p.rss_mib,
                p.synced
                    .map_or_else(|| "-".to_string(), |d| format!("{:.2}s", d.as_secs_f64())),
                p.registered
                    .map_or_else(|| "-".to_string(), |d| format!("{:.3}s", d.as_secs_f64()))
            );
        }
    }
    println!();
}

/// A one-app change is O(1) work: at a larger N it must not cost more than twice the Nomad
/// requests it costs at the smallest N measured (an O(N) re-list or re-plan would).
fn one_change_scaling_failures(results: &[SizeResult]) -> Vec<String> {
    let change_requests = |r: &SizeResult| {
        r.phases
            .iter()
            .find(|p| p.name == "git change (1 app)")
            .map(|p| p.requests.total())
    };
    let Some((base_n, base)) = results
        .iter()
        .filter_map(|r| change_requests(r).map(|c| (r.n, c)))
        .min_by_key(|(n, _)| *n)
    else {
        return Vec::new();
    };
    results
        .iter()
        .filter_map(|r| change_requests(r).map(|c| (r.n, c)))
        .filter(|&(n, c)| n > base_n && c > 2 * base.max(1))
        .map(|(n, c)| {
            format!(
                "N={n}: a one-app change made {c} Nomad requests, more than twice the {base} at N={base_n} (O(N) work for an O(1) change)"
            )
        })
        .collect()
}

/// `VmRSS` of this process in MiB (0 where /proc is unavailable).
fn resident_mib() -> u64 {
    proc_status_mib("self", "VmRSS:")
}

fn write_report(report: &Value) {
    let path = output_path();
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    match serde_json::to_string_pretty(report) {
        Ok(text) => match std::fs::write(&path, text + "\n") {
            Ok(()) => println!("wrote {}", path.display()),
            Err(e) => eprintln!("cannot write {}: {e}", path.display()),
        },
        Err(e) => eprintln!("cannot encode the report: {e}"),
    }
}

fn output_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench-reconcile.json")
}

/// The smoke run's name, as `cargo test` filters and `--list` see it.
const SMOKE_NAME: &str = "reconcile_smoke";

fn main() -> ExitCode {
    let full = match mode::from_args(SMOKE_NAME) {
        mode::Mode::Full => true,
        mode::Mode::Smoke => false,
        mode::Mode::Done => return ExitCode::SUCCESS,
    };
    let dev_rt = runtime("devstack", 1);
    let drover_rt = runtime("drover", 2);
    let main_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let started = Instant::now();
    let mut results = Vec::new();
    let asked: Vec<usize> = std::env::var("DROVER_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_default();
    let (sizes, window) = if full && !asked.is_empty() {
        (&asked[..], STEADY_WINDOW)
    } else if full {
        (&SIZES[..], STEADY_WINDOW)
    } else {
        (&SMOKE_SIZES[..], SMOKE_WINDOW)
    };
    // DROVER_BENCH_ALONE_ONLY=1: only drover serve in its own process (memory work).
    let alone_only = std::env::var_os("DROVER_BENCH_ALONE_ONLY").is_some();
    for &n in sizes.iter().filter(|_| !alone_only) {
        eprintln!("reconcile bench: N={n} ...");
        results.push(run_size(n, window, full, &dev_rt, &drover_rt, &main_rt));
    }
    print_table(&results);
    // drover alone, in its own process, at the largest N (full runs only).
    let alone = sizes.iter().max().filter(|_| full).map(|&n| {
        eprintln!("reconcile bench: drover serve in its own process, N={n} ...");
        own_process(n, window, &dev_rt, &main_rt)
    });
    if let Some(p) = &alone {
        println!(
            "drover serve alone, N={}: Synced+Healthy {:.2}s from start, CPU {} ms, RSS {} MiB, after {} s idle {} MiB, peak {} MiB",
            p.n,
            p.converged.as_secs_f64(),
            p.cpu.as_millis(),
            p.rss_mib,
            window.as_secs(),
            p.idle_rss_mib,
            p.peak_mib
        );
    }
    for finding in results.iter().flat_map(|r| &r.findings) {
        println!("FINDING: {finding}");
    }
    let report = json!({
        "bench": "reconcile",
        "total_wall_ms": started.elapsed().as_millis() as u64,
        "steady_window_ms": window.as_millis() as u64,
        "cpu_source": Cpu::source(),
        "sizes": results.iter().map(|r| json!({
            "apps": r.n,
            "settings": r.tuning,
            "phases": r.phases.iter().map(|p| (p.name.to_string(), p.json())).collect::<serde_json::Map<_, _>>(),
            "failures": r.failures,
            "findings": r.findings,
        })).collect::<Vec<_>>(),
        "drover_alone": alone.as_ref().map(|p| json!({
            "apps": p.n,
            "synced_healthy_ms": p.converged.as_millis() as u64,
            "cpu_ms": p.cpu.as_millis() as u64,
            "rss_mib": p.rss_mib,
            "idle_rss_mib": p.idle_rss_mib,
            "peak_rss_mib": p.peak_mib,
        })),
    });
    if full {
        write_report(&report);
    } else {
        println!(
            "smoke run (no --bench argument): no report written; `cargo bench --bench reconcile` measures"
        );
    }
    let scaling = one_change_scaling_failures(&results);
    let failures: Vec<&String> = results
        .iter()
        .flat_map(|r| &r.failures)
        .chain(&scaling)
        .collect();
    if failures.is_empty() {
        println!("all checks passed");
        ExitCode::SUCCESS
    } else {
        for f in failures {
            eprintln!("FAILED: {f}");
        }
        ExitCode::FAILURE
    }
}
