//! TestEnv: the devstack, a real Git repository and drover on loopback ports chosen at run time.
#![allow(dead_code)]

pub mod logs;

use std::path::{Path, PathBuf};
use std::time::Duration;

use drover::config::Settings;
use drover::controller::runtime::{self, Running};
use drover::controller::{AppStatus, ControllerSettings};
use drover::providers::nomad::NomadConfig;
use drover::source::SourceConfig;
use drover_devstack::seed::{Seed, SeedCsiPlugin, SeedVaultMount, SeedVaultSecret};
use drover_devstack::{Devstack, DevstackConfig};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// How long any wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct TestEnv {
    pub devstack: Devstack,
    pub repo: PathBuf,
    pub data: PathBuf,
    _dirs: tempfile::TempDir,
    pub drover: Option<Running>,
    pub http: reqwest::Client,
    /// The Nomad token drover uses (`None`: no token).
    pub nomad_token: Option<String>,
}

/// A devstack with fast simulated time and no seed, for HTTP-level tests.
pub async fn fast_devstack() -> Devstack {
    Devstack::start(DevstackConfig {
        time_scale: 0.01,
        ..DevstackConfig::default()
    })
    .await
    .unwrap_or_else(|e| panic!("devstack starts: {e}"))
}

/// The API token every test drover is started with (send it to mutating endpoints).
pub const TEST_API_TOKEN: &str = "test-api-token-7f3a9c";

/// An HTTP client for tests (installs the crypto provider reqwest needs, even for plain http).
pub fn http_client() -> reqwest::Client {
    drover::providers::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap_or_else(|e| panic!("http client: {e}"))
}

/// The devstack seed every test starts with: the glusterfs CSI plugin and the Overseerr secret.
pub fn default_seed() -> Seed {
    Seed {
        csi_plugins: vec![SeedCsiPlugin {
            id: "glusterfs".into(),
            provider: None,
            controller: true,
            healthy: true,
        }],
        vault_mounts: vec![SeedVaultMount {
            path: "nomad".into(),
            version: 2,
        }],
        vault_secrets: vec![SeedVaultSecret {
            mount: "nomad".into(),
            path: "default/overseerr".into(),
            data: [
                ("MINIO_ACCESS_KEY".to_string(), json!("access")),
                ("MINIO_SECRET_KEY".to_string(), json!("secret")),
            ]
            .into(),
        }],
        ..Seed::default()
    }
}

impl TestEnv {
    /// A devstack (fast simulated time) and an empty Git repository with one commit.
    pub async fn new() -> TestEnv {
        Self::with_seed(default_seed()).await
    }

    pub async fn with_seed(seed: Seed) -> TestEnv {
        Self::with_config(DevstackConfig {
            time_scale: 0.01,
            seed: Some(seed),
            ..DevstackConfig::default()
        })
        .await
    }

    pub async fn with_config(config: DevstackConfig) -> TestEnv {
        drover::providers::install_crypto_provider();
        let devstack = Devstack::start(config)
            .await
            .unwrap_or_else(|e| panic!("devstack: {e}"));
        let dirs = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let repo = dirs.path().join("repo");
        let data = dirs.path().join("data");
        std::fs::create_dir_all(repo.join("apps")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(repo.join("README.md"), "test repo\n").unwrap_or_else(|e| panic!("{e}"));
        drover::source::init_repo_from_dir(&repo, &repo)
            .unwrap_or_else(|e| panic!("git init: {e}"));
        TestEnv {
            devstack,
            repo,
            data,
            _dirs: dirs,
            drover: None,
            http: reqwest::Client::new(),
            nomad_token: None,
        }
    }

    /// Write a file in the repository's working copy (not committed).
    pub fn write(&self, path: &str, content: &str) {
        let full = self.repo.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(full, content).unwrap_or_else(|e| panic!("write {path}: {e}"));
    }

    /// Remove a file or folder from the working copy.
    pub fn remove(&self, path: &str) {
        let full = self.repo.join(path);
        if full.is_dir() {
            std::fs::remove_dir_all(full).unwrap_or_else(|e| panic!("{e}"));
        } else {
            std::fs::remove_file(full).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// Commit everything; returns the commit ID.
    pub fn commit(&self, message: &str) -> String {
        drover::source::commit_all(&self.repo, message).unwrap_or_else(|e| panic!("commit: {e}"))
    }

    pub fn settings(&self) -> Settings {
        Settings {
            source: SourceConfig {
                url: self.repo.display().to_string(),
                reference: drover::source::SEED_BRANCH.into(),
                poll_interval: Duration::from_millis(200),
                ..SourceConfig::default()
            },
            data_dir: self.data.clone(),
            listen: "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
            nomad: NomadConfig {
                address: self.devstack.nomad_url(),
                token: self.nomad_token.clone().map(drover::telemetry::Redacted),
                request_timeout: Duration::from_secs(5),
                max_retries: 3,
                ..NomadConfig::default()
            },
            consul: Some(drover::providers::consul::ConsulConfig {
                address: self.devstack.consul_url(),
                token: self.nomad_token.clone().map(drover::telemetry::Redacted),
                request_timeout: Duration::from_secs(5),
                max_retries: 3,
                ..drover::providers::consul::ConsulConfig::default()
            }),
            controller: ControllerSettings {
                progress_interval: Duration::from_millis(200),
                resync_interval: Duration::from_secs(2),
                max_backoff: Duration::from_secs(2),
                ..ControllerSettings::default()
            },
            web: drover::config::WebSettings {
                api_token: Some(drover::telemetry::Redacted(TEST_API_TOKEN.to_string())),
                ..drover::config::WebSettings::default()
            },
            vault: Some(drover::providers::vault::VaultConfig {
                address: self.devstack.vault_url(),
                token: Some(drover::telemetry::Redacted(
                    self.devstack.root_token().to_string(),
                )),
                request_timeout: Duration::from_secs(5),
                max_retries: 3,
                ..drover::providers::vault::VaultConfig::default()
            }),
            s3: None,
            notifications: drover::notify::settings::NotifySettings::default(),
            probes: Default::default(),
            ha: None,
            cluster_state: Default::default(),
        }
    }

    /// Start drover against the devstack and the repository.
    pub async fn start_drover(&mut self) {
        self.start_drover_with(self.settings()).await;
    }

    /// Start drover with settings a test changed (start from [`settings`](Self::settings)).
    pub async fn start_drover_with(&mut self, settings: Settings) {
        let running = runtime::start(settings, CancellationToken::new())
            .await
            .unwrap_or_else(|e| panic!("drover: {e:?}"));
        self.drover = Some(running);
    }

    /// The running drover's base URL (`http://127.0.0.1:port`).
    pub fn drover_url(&self) -> String {
        format!("http://{}", self.running().web_addr)
    }

    /// Stop drover (as a restart would).
    pub async fn stop_drover(&mut self) {
        if let Some(running) = self.drover.take() {
            running.stop().await;
        }
    }

    fn running(&self) -> &Running {
        self.drover
            .as_ref()
            .unwrap_or_else(|| panic!("drover is not running"))
    }

    pub fn status(&self, app: &str) -> Option<AppStatus> {
        self.running().ctx.status_of(app)
    }

    /// Wait until `app`'s status satisfies `ok`, or panic with the last status seen.
    pub async fn wait_app(
        &self,
        app: &str,
        what: &str,
        ok: impl Fn(&AppStatus) -> bool,
    ) -> AppStatus {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut rx = self.running().ctx.statuses.subscribe();
        loop {
            if let Some(status) = rx.borrow_and_update().get(app).cloned()
                && ok(&status)
            {
                return status;
            }
            let timeout = tokio::time::sleep_until(deadline);
            tokio::select! {
                _ = rx.changed() => {}
                _ = timeout => {
                    panic!("timed out waiting for {app} to be {what}; last status: {:#?}", rx.borrow().get(app));
                }
            }
        }
    }

    /// Wait for a reconcile of `app` that began after `since` (two publications later: the first
    /// may come from a cycle already under way at `since`), and return its status. Tests that
    /// assert "nothing happened" wait for this instead of sleeping.
    pub async fn wait_cycle_since(&self, app: &str, since: std::time::SystemTime) -> AppStatus {
        let first = self
            .wait_app(app, "a cycle after the mark", |s| s.observed_at > since)
            .await;
        self.wait_app(app, "a full cycle after the mark", |s| {
            s.observed_at > first.observed_at
        })
        .await
    }

    /// [`wait_cycle_since`](Self::wait_cycle_since) from now.
    pub async fn wait_full_cycle(&self, app: &str) -> AppStatus {
        self.wait_cycle_since(app, std::time::SystemTime::now())
            .await
    }

    /// Wait until the Git watcher has fetched `revision`.
    pub async fn wait_fetched(&self, revision: &str) {
        let mut rx = self.running().source.subscribe();
        let fetched = tokio::time::timeout(WAIT, async {
            loop {
                if rx
                    .borrow_and_update()
                    .revision
                    .as_ref()
                    .is_some_and(|r| r.id == revision)
                {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        assert!(fetched.is_ok(), "revision {revision} never fetched");
    }

    /// Wait until drover has recorded an event whose message contains `needle`.
    pub async fn wait_event(&self, needle: &str) -> drover::store::EventRecord {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let events = self
                .running()
                .ctx
                .store
                .events(None, 200)
                .await
                .unwrap_or_default();
            if let Some(e) = events.into_iter().find(|e| e.message.contains(needle)) {
                return e;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no event containing {needle:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until `app` is Synced and Healthy at `revision` (any revision if `None`).
    pub async fn wait_synced_healthy(&self, app: &str, revision: Option<&str>) -> AppStatus {
        self.wait_app(app, "Synced+Healthy", |s| {
            format!("{:?}", s.sync) == "Synced"
                && format!("{:?}", s.health) == "Healthy"
                && revision.is_none_or(|r| s.revision == r)
        })
        .await
    }

    /// GET a Nomad path, JSON (panics on a non-2xx unless `allow_404`).
    pub async fn nomad(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{}", self.devstack.nomad_url(), path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    /// Send to Nomad with a method and JSON body.
    pub async fn nomad_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{}", self.devstack.nomad_url(), path));
        if let Some(body) = body {
            r = r.json(&body);
        }
        let r = r.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    /// POST to the devstack's control API.
    pub async fn control(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/_devstack{}", self.devstack.nomad_url(), path))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("control {path}: {e}"));
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert!(status.is_success(), "control {path}: {status}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Requests Nomad served so far: `(method, path)`.
    pub async fn nomad_requests(&self) -> Vec<(String, String)> {
        self.served_requests("nomad", &self.devstack.nomad_url())
            .await
    }

    /// Requests Consul served so far: `(method, path)`.
    pub async fn consul_requests(&self) -> Vec<(String, String)> {
        self.served_requests("consul", &self.devstack.consul_url())
            .await
    }

    /// The devstack's request log of one system, from its own address: `(method, path)`.
    async fn served_requests(&self, system: &str, base: &str) -> Vec<(String, String)> {
        let r = self
            .http
            .get(format!("{base}/_devstack/requests?system={system}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("request log: {e}"));
        let v: Value = r.json().await.unwrap_or(Value::Null);
        let entries = v.get("entries").cloned().unwrap_or(v);
        entries
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let field = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                (field("Method"), field("Path"))
            })
            .collect()
    }

    /// The live job, or `None` on 404.
    pub async fn job(&self, id: &str) -> Option<Value> {
        let (status, body) = self.nomad(&format!("/v1/job/{id}")).await;
        (status == 200).then_some(body)
    }

    /// Commit `apps/web` (the `web_jobspec` on nginx:1.27, `extra` appended to its app.yaml), start
    /// drover and wait until it is Synced and Healthy; returns the commit.
    pub async fn sync_web_app(&mut self, extra: &str) -> String {
        self.write("apps/web/app.yaml", &app_yaml("web", extra));
        self.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
        let rev = self.commit("web");
        self.start_drover().await;
        self.wait_synced_healthy("web", Some(&rev)).await;
        rev
    }

    /// Poll the live job until `ok` holds (`None`: the job does not exist), or panic.
    pub async fn wait_job(
        &self,
        id: &str,
        what: &str,
        ok: impl Fn(Option<&Value>) -> bool,
    ) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let job = self.job(id).await;
            if ok(job.as_ref()) {
                return job;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for job {id}: {what}; last seen: {job:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn shutdown(mut self) {
        self.stop_drover().await;
        self.devstack.shutdown().await;
    }
}

/// A small service jobspec (HCL2) whose image tag is a variable.
pub fn web_jobspec(id: &str, image: &str) -> String {
    format!(
        r#"variable "image" {{
  type    = string
  default = "{image}"
}}

job "{id}" {{
  datacenters = ["dc1"]

  group "web" {{
    network {{
      port "http" {{
        to = 8080
      }}
    }}

    update {{
      min_healthy_time = "1s"
      healthy_deadline = "30s"
    }}

    task "server" {{
      driver = "docker"

      config {{
        image = var.image
        ports = ["http"]
      }}

      resources {{
        cpu    = 100
        memory = 64
      }}
    }}

    service {{
      name = "{id}"
      port = "http"
      tags = ["public"]
    }}
  }}
}}
"#
    )
}

/// An app.yaml with one nomad_job resource.
pub fn app_yaml(name: &str, extra: &str) -> String {
    format!("name: {name}\nresources:\n  - nomad_job: {{ file: job.nomad.hcl }}\n{extra}")
}

/// Path of a file of the user's repository, in the project's copy (tests/fixtures/brmartin).
pub fn example(path: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/brmartin")
        .join(path);
    assert!(p.exists(), "missing fixture {}", p.display());
    p
}

/// Serve `app` on a free loopback port (a test's receiver or target); returns its address.
pub async fn serve_local(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// `drover demo` started as a user would, and what it printed.
pub struct DemoProcess {
    /// The process (killed when dropped).
    pub child: tokio::process::Child,
    /// `Status page:` (ends with `/`).
    pub url: String,
    /// `Git repo:`.
    pub repo: String,
    /// Every line it printed before `Ctrl-C stops everything.`
    pub printed: Vec<String>,
}

impl DemoProcess {
    /// The value of an `export NAME=value` line it printed.
    pub fn export(&self, name: &str) -> Option<String> {
        let prefix = format!("export {name}=");
        self.printed
            .iter()
            .find_map(|line| line.trim().strip_prefix(&prefix).map(str::to_string))
    }
}

/// Start `drover demo` on a free loopback port with fast devstack time (and `args`), in `cwd`
/// with `TMPDIR=tmp` (where it makes its folder), the test API token in its environment; wait
/// until it has printed everything it prints at start.
pub async fn start_demo(cwd: &Path, tmp: &Path, args: &[&str]) -> DemoProcess {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["demo", "--listen", "127.0.0.1:0", "--time-scale", "0.02"])
        .args(args)
        .current_dir(cwd)
        .env("TMPDIR", tmp)
        .env("DROVER_API_TOKEN", TEST_API_TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("drover demo: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let printed = tokio::time::timeout(WAIT, async {
        let mut printed = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            let last = line.starts_with("Ctrl-C");
            printed.push(line);
            if last {
                break;
            }
        }
        printed
    })
    .await
    .unwrap_or_else(|_| panic!("the demo did not finish printing its addresses"));
    // Keep reading its output so a full pipe never stalls it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let field = |label: &str| {
        printed
            .iter()
            .find_map(|line| {
                line.trim()
                    .strip_prefix(label)
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("the demo printed no {label:?} line: {printed:#?}"))
    };
    let (url, repo) = (field("Status page:"), field("Git repo:"));
    DemoProcess {
        child,
        url,
        repo,
        printed,
    }
}

/// Kills a child process (drover serve, the demo) when dropped, so a failing test leaves none
/// running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Load a desired-state folder from disk, the way `drover validate` does.
pub fn load_dir(path: &Path) -> drover::desired::Loaded {
    let revision = drover::source::Revision::from_dir(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    drover::desired::load(&revision)
}

/// Every diagnostic of a load: repo-level first, then each app's.
pub fn all_diagnostics(loaded: &drover::desired::Loaded) -> Vec<drover::desired::Diagnostic> {
    let mut out = loaded.repo_errors.clone();
    for app in &loaded.apps {
        if let Err(d) = &app.result {
            out.extend(d.iter().cloned());
        }
    }
    out
}

/// Diagnostics one per line (`file:line:col: field: message (hint)`), then a count.
pub fn render_diagnostics(diags: &[drover::desired::Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&format!("{d}\n"));
    }
    match diags.len() {
        0 => out.push_str("no errors\n"),
        1 => out.push_str("1 error\n"),
        n => out.push_str(&format!("{n} errors\n")),
    }
    out
}
