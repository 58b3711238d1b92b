//! Unsafe edges: servers that answer blocking queries at once, cross-site requests, broken pipes,
//! unknown apps, log formats and the demo away from the source tree.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, Uri};
use common::{TestEnv, app_yaml, web_jobspec};
use drover::live::LiveStore;
use drover::providers::nomad::{NomadClient, NomadConfig};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// How a fake Nomad sets `X-Nomad-Index` on its immediate `[]` answers.
#[derive(Clone, Copy, Debug)]
enum IndexBehaviour {
    /// The same index every time, whatever `index`/`wait` say (a proxy that drops them).
    Constant,
    /// No `X-Nomad-Index` header at all (a server or proxy that knows nothing of indexes).
    Absent,
    /// A new, higher index on every answer, still at once (a misbehaving server).
    Increasing,
}

/// A fake Nomad on 127.0.0.1:0 that answers every list with `[]` at once; returns its URL and
/// the number of requests per path.
async fn immediate_nomad(behaviour: IndexBehaviour) -> (String, Arc<Mutex<BTreeMap<String, u64>>>) {
    let counts: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let next_index = Arc::new(AtomicU64::new(42));
    let seen = Arc::clone(&counts);
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let seen = Arc::clone(&seen);
        let next_index = Arc::clone(&next_index);
        async move {
            *seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(uri.path().to_string())
                .or_default() += 1;
            let mut headers = HeaderMap::new();
            let index = match behaviour {
                IndexBehaviour::Constant => Some(42),
                IndexBehaviour::Absent => None,
                IndexBehaviour::Increasing => Some(next_index.fetch_add(1, Ordering::SeqCst)),
            };
            if let Some(index) = index {
                headers.insert("X-Nomad-Index", HeaderValue::from(index));
            }
            headers.insert("Content-Type", HeaderValue::from_static("application/json"));
            (headers, "[]")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local addr: {e}"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), counts)
}

/// Run the LiveStore's watchers against a fake Nomad for `window` of real time; returns the
/// requests per path.
async fn watch_for(behaviour: IndexBehaviour, window: Duration) -> BTreeMap<String, u64> {
    drover::providers::install_crypto_provider();
    let (url, counts) = immediate_nomad(behaviour).await;
    let nomad = NomadClient::new(NomadConfig {
        address: url,
        ..NomadConfig::default()
    })
    .unwrap_or_else(|e| panic!("client: {e}"));
    let live = LiveStore::default();
    let shutdown = CancellationToken::new();
    live.spawn_watchers(nomad, shutdown.clone());
    tokio::time::sleep(window).await;
    shutdown.cancel();
    assert!(
        live.snapshot().ready(),
        "the watchers still fill the cache: {behaviour:?}"
    );
    counts.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn watchers_do_not_hammer_a_server_that_answers_blocking_queries_at_once() {
    let window = Duration::from_secs(3);
    for behaviour in [IndexBehaviour::Constant, IndexBehaviour::Absent] {
        let counts = watch_for(behaviour, window).await;
        for path in ["/v1/jobs", "/v1/volumes"] {
            let n = counts.get(path).copied().unwrap_or(0);
            // Backoff from 0.5 s doubling: about 4 lists in 3 s. Before the fix: hundreds of
            // thousands.
            assert!(
                (1..=8).contains(&n),
                "{behaviour:?}: {n} lists of {path} in {window:?}: {counts:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watchers_cap_their_rate_when_every_answer_has_a_new_index() {
    let window = Duration::from_secs(3);
    let counts = watch_for(IndexBehaviour::Increasing, window).await;
    for path in ["/v1/jobs", "/v1/volumes"] {
        let n = counts.get(path).copied().unwrap_or(0);
        // A burst of 20, then at most 5 a second.
        assert!(
            (1..=20 + 16).contains(&n),
            "{n} lists of {path} in {window:?}: {counts:?}"
        );
    }
}

// ---- the web API: cross-site requests and foreign Host names ----

fn drover_bin() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_drover"));
    command.env("DROVER_API_TOKEN", common::TEST_API_TOKEN);
    command
}

fn web_base(env: &TestEnv) -> String {
    let addr = env
        .drover
        .as_ref()
        .map(|d| d.web_addr)
        .unwrap_or_else(|| panic!("drover is not running"));
    format!("http://{addr}")
}

/// Send a request with exactly these extra headers and body; returns the status and JSON body.
async fn send_raw(
    env: &TestEnv,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let mut request = env
        .http
        .request(method, format!("{}{path}", web_base(env)))
        .bearer_auth(common::TEST_API_TOKEN);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if !body.is_empty() {
        request = request.body(body.to_string());
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Run the drover CLI against the running drover; returns (exit code, stdout, stderr).
async fn cli(env: &TestEnv, args: &[&str]) -> (Option<i32>, String, String) {
    let out = drover_bin()
        .args(args)
        .arg("--server")
        .arg(web_base(env))
        .env_remove("DROVER_ADDR")
        .output()
        .await
        .unwrap_or_else(|e| panic!("drover {args:?}: {e}"));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

async fn pinned(env: &TestEnv, app: &str) -> Option<String> {
    env.drover
        .as_ref()
        .unwrap_or_else(|| panic!("drover is not running"))
        .ctx
        .store
        .pinned(app)
        .await
        .unwrap_or_else(|e| panic!("store: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_site_and_foreign_host_requests_are_refused_and_change_nothing() {
    let mut env = TestEnv::new().await;
    env.write(
        "apps/web/app.yaml",
        &app_yaml("web", "sync: { auto: false }\n"),
    );
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    let v1 = env.commit("web, manual sync");
    env.start_drover().await;
    env.wait_app("web", "OutOfSync", |s| {
        format!("{:?}", s.sync) == "OutOfSync"
    })
    .await;
    let here = web_base(&env).trim_start_matches("http://").to_string();
    let foreign_host = format!(
        "attacker.example:{}",
        here.rsplit(':').next().unwrap_or("80")
    );
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let json = ("Content-Type", "application/json");
    let attacker = ("Origin", "https://attacker.example");

    for path in [
        "/api/v1/apps/web/sync",
        "/api/v1/apps/web/unpin",
        "/api/v1/refresh",
    ] {
        for (what, headers, body, reason) in [
            (
                "a form from another site",
                vec![attacker, form],
                "x=1",
                "Origin",
            ),
            (
                "a fetch from another site",
                vec![json, ("Sec-Fetch-Site", "cross-site")],
                "{}",
                "cross-site",
            ),
            (
                "JSON from another origin",
                vec![json, attacker],
                "{}",
                "Origin",
            ),
            ("a form without Origin", vec![form], "x=1", "Content-Type"),
            ("no body at all", vec![], "", "Content-Type"),
            (
                "a rebound DNS name",
                vec![json, ("Host", foreign_host.as_str())],
                "{}",
                "not allowed",
            ),
        ] {
            let (code, body) = send_raw(&env, reqwest::Method::POST, path, &headers, body).await;
            assert_eq!(code, 403, "{what} to {path}: {body}");
            let error = body["error"].as_str().unwrap_or_default();
            assert!(error.contains(reason), "{what} to {path}: says why: {body}");
        }
    }
    // DNS rebinding reads too.
    let (code, body) = send_raw(
        &env,
        reqwest::Method::GET,
        "/api/v1/apps",
        &[("Host", foreign_host.as_str())],
        "",
    )
    .await;
    assert_eq!(code, 403, "{body}");
    // Nothing was synced: the app is still OutOfSync with no job and no sync in its history.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(env.job("web").await.is_none(), "a refused sync applied");
    let (_, history) = send_raw(
        &env,
        reqwest::Method::GET,
        "/api/v1/apps/web/history",
        &[],
        "",
    )
    .await;
    assert_eq!(history, serde_json::json!([]), "no sync recorded");

    // Loopback names with any port, same-origin JSON and the CLI still work.
    for host in [
        here.clone(),
        format!("localhost:{}", here.rsplit(':').next().unwrap_or("")),
    ] {
        let (code, body) = send_raw(
            &env,
            reqwest::Method::GET,
            "/api/v1/apps",
            &[("Host", host.as_str())],
            "",
        )
        .await;
        assert_eq!(code, 200, "Host {host}: {body}");
    }
    let origin = format!("http://{here}");
    let (code, body) = send_raw(
        &env,
        reqwest::Method::POST,
        "/api/v1/apps/web/sync",
        &[
            json,
            ("Origin", origin.as_str()),
            ("Sec-Fetch-Site", "same-origin"),
        ],
        "{}",
    )
    .await;
    assert_eq!(code, 202, "same-origin JSON sync: {body}");
    env.wait_synced_healthy("web", Some(&v1)).await;

    let (code, stdout, stderr) = cli(&env, &["rollback", "web", "--to", &v1[..10]]).await;
    assert_eq!(code, Some(0), "CLI rollback: {stdout}{stderr}");
    assert_eq!(pinned(&env, "web").await.as_deref(), Some(v1.as_str()));
    let (code, body) = send_raw(
        &env,
        reqwest::Method::POST,
        "/api/v1/apps/web/unpin",
        &[attacker, form],
        "x=1",
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        pinned(&env, "web").await.as_deref(),
        Some(v1.as_str()),
        "a refused unpin left the pin"
    );
    let (code, stdout, stderr) = cli(&env, &["unpin", "web"]).await;
    assert_eq!(code, Some(0), "CLI unpin: {stdout}{stderr}");
    assert_eq!(pinned(&env, "web").await, None);
    let (code, stdout, stderr) = cli(&env, &["sync", "--app", "web"]).await;
    assert_eq!(code, Some(0), "CLI sync: {stdout}{stderr}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_allowed_hosts_are_answered() {
    let mut env = TestEnv::new().await;
    let mut settings = env.settings();
    settings.web.allowed_hosts = vec!["Drover.Example.org".into()];
    env.drover = Some(
        drover::controller::runtime::start(settings, CancellationToken::new())
            .await
            .unwrap_or_else(|e| panic!("drover: {e:?}")),
    );
    let port = web_base(&env).rsplit(':').next().unwrap_or("").to_string();
    let host = format!("drover.example.org:{port}");
    let (code, body) = send_raw(
        &env,
        reqwest::Method::GET,
        "/api/v1/apps",
        &[("Host", host.as_str())],
        "",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let origin = format!("http://{host}");
    let (code, body) = send_raw(
        &env,
        reqwest::Method::POST,
        "/api/v1/refresh",
        &[
            ("Host", host.as_str()),
            ("Origin", origin.as_str()),
            ("Content-Type", "application/json"),
        ],
        "{}",
    )
    .await;
    assert_eq!(code, 202, "{body}");
    let (code, body) = send_raw(
        &env,
        reqwest::Method::GET,
        "/api/v1/apps",
        &[("Host", "other.example.org")],
        "",
    )
    .await;
    assert_eq!(code, 403, "{body}");
    env.shutdown().await;
}

// ---- the CLI ----

fn drover_sync_bin() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_drover"));
    command.env("DROVER_API_TOKEN", common::TEST_API_TOKEN);
    command
}

#[test]
fn output_into_a_pipe_closed_early_exits_quietly() {
    use std::io::BufRead as _;
    // 40 apps with 50 unknown keys each: far more output than a pipe buffers.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for app in 0..40 {
        let folder = dir.path().join(format!("apps/app{app}"));
        std::fs::create_dir_all(&folder).unwrap_or_else(|e| panic!("{e}"));
        let mut yaml = format!("name: app{app}\n");
        for key in 0..50 {
            yaml.push_str(&format!("unknown_key_number_{key}: 1\n"));
        }
        std::fs::write(folder.join("app.yaml"), yaml).unwrap_or_else(|e| panic!("{e}"));
    }
    let mut child = drover_sync_bin()
        .arg("validate")
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    // `| head -1`: read one line, then close the pipe.
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut first = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut first)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(first.contains("app"), "{first}");
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        out.status.code(),
        Some(141),
        "exits like a tool killed by SIGPIPE: {stderr}"
    );
    assert!(stderr.trim().is_empty(), "quietly: {stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_apps_are_errors_in_unpin_history_and_plan() {
    let mut env = TestEnv::new().await;
    let rev = env.sync_web_app("").await;

    for command in [vec!["unpin", "nosuch"], vec!["history", "nosuch"]] {
        let (code, stdout, stderr) = cli(&env, &command).await;
        assert_eq!(code, Some(1), "{command:?}: {stdout}{stderr}");
        assert!(
            stderr.contains("no app named nosuch") && stderr.contains("404"),
            "{command:?} says why: {stderr}"
        );
        assert!(!stdout.contains("follows the branch"), "{stdout}");
    }
    let (_, events) = send_raw(&env, reqwest::Method::GET, "/api/v1/events", &[], "").await;
    assert!(
        !events
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["app"] == "nosuch"),
        "no event for an unknown app: {events}"
    );
    // Known apps still work.
    let (code, stdout, stderr) = cli(&env, &["history", "web"]).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains(&rev[..12]), "{stdout}");
    let (code, stdout, stderr) = cli(&env, &["unpin", "web"]).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");

    let plan = |app: &'static str| {
        drover_bin()
            .arg("plan")
            .arg(&env.repo)
            .args(["--app", app])
            .env("NOMAD_ADDR", env.devstack.nomad_url())
            .env_remove("NOMAD_TOKEN")
            .output()
    };
    let out = plan("nosuch").await.unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no app named nosuch") && stderr.contains("web"),
        "names the apps there are: {stderr}"
    );
    let out = plan("web").await.unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "synced: {stdout}");
    assert!(stdout.contains("app web:"), "{stdout}");
    env.shutdown().await;
}

/// stderr of `drover plan` against a Nomad that refuses connections (it logs retries, then fails).
fn plan_logs(args: &[&str], env: &[(&str, &str)]) -> String {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let desired = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("desired-state");
    let out = drover_sync_bin()
        .args(args)
        .arg("plan")
        .arg(desired)
        .env("NOMAD_ADDR", format!("http://127.0.0.1:{closed_port}"))
        .env_remove("NOMAD_TOKEN")
        .env_remove("DROVER_LOG_FORMAT")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// The log lines of `stderr` (the final `error:` line is the CLI's, not a log).
fn log_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| !l.starts_with("error:") && !l.trim().is_empty())
        .collect()
}

#[test]
fn log_format_flag_and_env_choose_json_or_text() {
    let json = plan_logs(&["--log-format", "json"], &[]);
    let lines = log_lines(&json);
    assert!(!lines.is_empty(), "the retries are logged: {json}");
    for line in &lines {
        let value: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(value["level"], "WARN", "{line}");
    }

    for text in [
        plan_logs(&["--log-format", "text"], &[]),
        plan_logs(&[], &[("DROVER_LOG_FORMAT", "text")]),
    ] {
        let lines = log_lines(&text);
        assert!(!lines.is_empty(), "{text}");
        for line in &lines {
            assert!(
                serde_json::from_str::<Value>(line).is_err(),
                "text, not JSON: {line}"
            );
            assert!(
                line.contains("WARN") && line.contains("nomad call failed; retrying"),
                "{line}"
            );
            assert!(
                !line.contains('\u{1b}'),
                "no colours off a terminal: {line}"
            );
        }
    }

    // Not a terminal and not asked: JSON.
    let default = plan_logs(&[], &[]);
    assert!(
        log_lines(&default)
            .iter()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "{default}"
    );
}

// ---- the demo away from the source tree ----

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_seeds_its_repository_from_the_built_in_example_anywhere() {
    let help = drover_bin()
        .args(["demo", "--help"])
        .output()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        !help.contains(env!("CARGO_MANIFEST_DIR")),
        "no path of the build machine as a default: {help}"
    );

    let elsewhere = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // The printed status page URL, then the apps drover found in the repository.
    let mut demo = common::start_demo(elsewhere.path(), tmp.path(), &[]).await;
    let url = demo.url.clone();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let http = common::http_client();
    let deadline = tokio::time::Instant::now() + common::WAIT;
    let mut names = Vec::new();
    while tokio::time::Instant::now() < deadline {
        if let Ok(response) = http.get(format!("{url}api/v1/apps")).send().await
            && let Ok(apps) = response.json::<Value>().await
        {
            names = apps
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["name"].as_str().map(str::to_string))
                .collect();
            names.sort();
            if names.len() == 9 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        names,
        [
            "glusterfs-csi",
            "jellyfin",
            "minio",
            "overseerr",
            "prowlarr",
            "qbittorrent",
            "radarr",
            "sonarr",
            "traefik"
        ]
    );
    let _ = demo.child.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_demo_on_a_busy_port_fails_says_what_to_do_and_leaves_no_folder() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = busy
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = tokio::time::timeout(
        common::WAIT,
        drover_bin()
            .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
            .env("TMPDIR", tmp.path())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("the demo did not stop"))
    .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("--listen 127.0.0.1:0"),
        "names the port and the way out: {stderr}"
    );
    let left: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("drover-demo-"))
        .collect();
    assert!(left.is_empty(), "temporary folders left behind: {left:?}");
    drop(busy);
}

#[test]
fn the_readme_drover_yaml_example_is_valid_with_its_allowed_hosts() {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap_or_else(|e| panic!("{e}"));
    let start = readme
        .find("```yaml\n# drover.yaml\n")
        .unwrap_or_else(|| panic!("no drover.yaml example in README"));
    let body = &readme[start + "```yaml\n".len()..];
    let end = body.find("```").unwrap_or(body.len());
    let file: drover::config::FileSettings =
        serde_yaml_ng::from_str(&body[..end]).unwrap_or_else(|e| panic!("README drover.yaml: {e}"));
    assert_eq!(file.web.allowed_hosts, ["drover.example.org"]);
}
