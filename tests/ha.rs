//! HA: two real `drover serve` processes against one real-time devstack and one Git repository
//! elect one leader with a Nomad variable lock. Every replica serves the page and the read-only
//! API; a follower refuses changes with 503 naming the leader. SIGKILL of the leader mid-sync
//! hands over to the follower after the lock's TTL and lock delay, with no duplicate write; a
//! partition of the lock path makes the leader step down (exit 3) before its TTL ends.

mod common;
#[path = "common/daemon.rs"]
#[allow(dead_code, reason = "only KillOnDrop is used here")]
mod daemon;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use common::{TEST_API_TOKEN, TestEnv, app_yaml, web_jobspec};
use daemon::KillOnDrop;
use serde_json::{Value, json};

/// The lock the replicas are configured with: Nomad's minimum TTL and a short lock delay.
const TTL: Duration = Duration::from_secs(10);
const LOCK_DELAY: Duration = Duration::from_secs(2);
const LOCK_PATH: &str = "drover/leader";
/// How long a test waits for something that should happen within a few seconds.
const PATIENCE: Duration = Duration::from_secs(60);

/// One `drover serve` process with an `ha:` block.
struct Replica {
    process: KillOnDrop,
    /// `http://127.0.0.1:port`.
    url: String,
    /// Its holder id in the lock: its listen address.
    holder: String,
}

/// Start `drover serve` with `ha.lock: <lock>` in `dir` (a Consul session lock reaches the
/// devstack's Consul); it prints its address at once (a follower serves too), and the test waits
/// for that line.
async fn serve_with_lock(env: &TestEnv, dir: &Path, lock: &str) -> Replica {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("drover.yaml");
    std::fs::write(
        &config,
        format!(
            "repo:\n  url: {}\n  ref: {}\n  poll_interval: 1s\ndata_dir: {}\nlisten: 127.0.0.1:0\n\
             nomad: {{ address: {} }}\n\
             ha: {{ lock: {lock}, path: {LOCK_PATH}, ttl: {}s, lock_delay: {}s }}\n",
            env.repo.display(),
            drover::source::SEED_BRANCH,
            dir.join("data").display(),
            env.devstack.nomad_url(),
            TTL.as_secs(),
            LOCK_DELAY.as_secs(),
        ),
    )
    .unwrap();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_drover"))
            .args(["serve", "-c"])
            .arg(&config)
            .env(drover::config::API_TOKEN_ENV, TEST_API_TOKEN)
            .env("CONSUL_HTTP_ADDR", env.devstack.consul_url())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .expect("drover serve starts"),
    );
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut lines = std::io::BufReader::new(stdout).lines();
        if let Some(addr) = lines.by_ref().map_while(Result::ok).find_map(|l| {
            l.split("status page on http://")
                .nth(1)
                .map(|u| u.trim().trim_end_matches('/').to_string())
        }) {
            let _ = tx.send(addr);
        }
        lines.for_each(drop);
    });
    let holder = tokio::time::timeout(PATIENCE, rx)
        .await
        .expect("drover serve prints its address")
        .expect("drover serve did not exit before serving");
    Replica {
        process: child,
        url: format!("http://{holder}"),
        holder,
    }
}

impl Replica {
    async fn get(&self, env: &TestEnv, path: &str) -> (u16, String) {
        let response = env
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        )
    }

    async fn post(&self, env: &TestEnv, path: &str) -> (u16, Value) {
        let response = env
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(TEST_API_TOKEN)
            .json(&json!({}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn status(&self, env: &TestEnv) -> Value {
        let (code, body) = self.get(env, "/api/v1/status").await;
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    async fn app(&self, env: &TestEnv, app: &str) -> Option<Value> {
        let (code, body) = self.get(env, &format!("/api/v1/apps/{app}")).await;
        (code == 200).then(|| serde_json::from_str(&body).unwrap())
    }

    /// Poll (an observed state, not a sleep) until `done` holds for this replica's status.
    async fn wait_status(&self, env: &TestEnv, what: &str, done: impl Fn(&Value) -> bool) {
        let waited = tokio::time::timeout(PATIENCE, async {
            loop {
                if done(&self.status(env).await) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "{what}: last status {}",
            self.status(env).await
        );
    }

    async fn wait_app(&self, env: &TestEnv, app: &str, what: &str, done: impl Fn(&Value) -> bool) {
        let waited = tokio::time::timeout(PATIENCE, async {
            loop {
                if self.app(env, app).await.is_some_and(|s| done(&s)) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "{what}: last {:?}",
            self.app(env, app).await
        );
    }
}

fn leads(status: &Value) -> bool {
    status["role"] == "leader"
}

/// Start two replicas: the first leads (the second starts once it does), the second follows.
async fn two_replicas(env: &TestEnv, dir: &Path) -> (Replica, Replica) {
    two_replicas_with_lock(env, dir, "nomad-variable").await
}

async fn two_replicas_with_lock(env: &TestEnv, dir: &Path, lock: &str) -> (Replica, Replica) {
    let first = serve_with_lock(env, &dir.join("a"), lock).await;
    first
        .wait_status(env, "the first replica leads", leads)
        .await;
    let second = serve_with_lock(env, &dir.join("b"), lock).await;
    let holder = first.holder.clone();
    second
        .wait_status(env, "the second follows the first", |s| {
            s["role"] == "follower" && s["leader"] == holder.as_str()
        })
        .await;
    (first, second)
}

/// The devstack's Nomad request log: `(method, path, query, status, time)`.
async fn nomad_log(env: &TestEnv) -> Vec<(String, String, String, u16, SystemTime)> {
    let log: Value = env
        .http
        .get(format!(
            "{}/_devstack/requests?system=nomad",
            env.devstack.nomad_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = log.get("entries").cloned().unwrap_or(log);
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            let time = humantime::parse_rfc3339(&text("Time"))
                .unwrap_or_else(|err| panic!("request log time {:?}: {err}", e["Time"]));
            (
                text("Method"),
                text("Path"),
                text("Query"),
                u16::try_from(e["Status"].as_u64().unwrap()).unwrap(),
                time,
            )
        })
        .collect()
}

/// Successful lock operations (`lock-acquire`, `lock-renew`, `lock-release`) in log order.
async fn lock_operations(env: &TestEnv) -> Vec<(String, SystemTime)> {
    let lock_path = format!("/v1/var/{LOCK_PATH}");
    nomad_log(env)
        .await
        .into_iter()
        .filter(|(method, path, _, status, _)| {
            method == "PUT" && *path == lock_path && *status == 200
        })
        .filter_map(|(_, _, query, _, time)| {
            ["lock-acquire", "lock-renew", "lock-release"]
                .into_iter()
                .find(|op| query.split('&').any(|p| p == *op))
                .map(|op| (op.to_string(), time))
        })
        .collect()
}

/// Job registrations Nomad accepted.
async fn registrations(env: &TestEnv) -> usize {
    nomad_log(env)
        .await
        .iter()
        .filter(|(method, path, _, status, _)| {
            method == "POST" && path == "/v1/jobs" && *status == 200
        })
        .count()
}

/// The image of each stored version of the job, oldest first.
async fn version_images(env: &TestEnv, job: &str) -> Vec<String> {
    let (code, body) = env.nomad(&format!("/v1/job/{job}/versions")).await;
    assert_eq!(code, 200, "{body}");
    let mut versions: Vec<(u64, String)> = body["Versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["Version"].as_u64().unwrap(),
                v["TaskGroups"][0]["Tasks"][0]["Config"]["image"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    versions.sort();
    versions.into_iter().map(|(_, image)| image).collect()
}

async fn real_time_env() -> TestEnv {
    // Real time: drover's renew period is derived from the TTL it asked for, so the devstack must
    // not scale the TTL down.
    TestEnv::with_config(drover_devstack::DevstackConfig {
        time_scale: 1.0,
        ..drover_devstack::DevstackConfig::default()
    })
    .await
}

fn commit_web(env: &TestEnv, image: &str) -> String {
    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", image));
    env.commit(&format!("web on {image}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_serves_read_only_and_takes_over_a_killed_leaders_sync_once() {
    let env = real_time_env().await;
    let first_image = "nginx:1.27";
    let second_image = "nginx:1.28";
    let first_commit = commit_web(&env, first_image);
    let dirs = tempfile::tempdir().unwrap();
    let (mut leader, follower) = two_replicas(&env, dirs.path()).await;
    assert_eq!(
        env.nomad(&format!("/v1/var/{LOCK_PATH}")).await.1["Items"]["holder"],
        leader.holder.as_str()
    );

    // Both read Git and the cluster: the follower shows the app the leader synced.
    leader
        .wait_app(&env, "web", "the leader syncs web", |s| {
            s["revision"] == first_commit.as_str() && s["sync"] == "Synced"
        })
        .await;
    follower
        .wait_app(&env, "web", "the follower shows web synced", |s| {
            s["revision"] == first_commit.as_str() && s["sync"] == "Synced"
        })
        .await;

    // (d) The follower answers reads with its role and the leader, and refuses every change
    // with 503 naming the leader (its API token is valid: the leader accepts the same requests).
    let (code, page) = follower.get(&env, "/").await;
    assert_eq!(code, 200);
    assert!(
        page.contains("follower (read-only)") && page.contains(&leader.holder),
        "the page header names the role and the leader: {page}"
    );
    for path in [
        "/api/v1/apps/web/sync",
        "/api/v1/apps/web/rollback",
        "/api/v1/apps/web/unpin",
        "/api/v1/refresh",
        "/api/v1/webhooks/github",
    ] {
        let (code, body) = follower.post(&env, path).await;
        assert_eq!(code, 503, "{path}: {body}");
        assert_eq!(body["leader"], leader.holder.as_str(), "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(&leader.holder),
            "{path}: {body}"
        );
    }
    assert_eq!(leader.post(&env, "/api/v1/refresh").await.0, 202);

    // The leader is SIGKILLed while its register of the second commit is in flight (Nomad holds
    // the request for a while): no release, so the lock expires after its TTL.
    env.control(
        "/faults",
        json!({"system": "nomad", "method": "POST", "path": "^/v1/jobs$", "kind": "latency",
               "latency_ms": 4000, "count": 1}),
    )
    .await;
    let second_commit = commit_web(&env, second_image);
    leader
        .wait_app(&env, "web", "the leader syncs the second commit", |s| {
            s["phase"]
                .as_str()
                .is_some_and(|p| p.starts_with("syncing"))
                && s["revision"] == second_commit.as_str()
        })
        .await;
    let killed = tokio::time::Instant::now();
    leader.process.0.kill().unwrap();
    let _ = leader.process.0.wait();

    // The follower leads within the TTL, the lock delay and one campaign period (TTL/3), plus a
    // margin for its status poll.
    follower
        .wait_status(&env, "the follower takes over", leads)
        .await;
    let took = killed.elapsed();
    let bound = TTL + LOCK_DELAY + TTL / 3 + Duration::from_secs(2);
    assert!(took <= bound, "takeover took {took:?}, more than {bound:?}");
    assert_eq!(
        env.nomad(&format!("/v1/var/{LOCK_PATH}")).await.1["Items"]["holder"],
        follower.holder.as_str()
    );

    // (c) The lock delay held, measured on Nomad's side: the new leader's acquire came no
    // earlier than TTL + lock delay after the killed leader's last renew (or acquire).
    let operations = lock_operations(&env).await;
    let acquires: Vec<SystemTime> = operations
        .iter()
        .filter(|(op, _)| op == "lock-acquire")
        .map(|(_, at)| *at)
        .collect();
    assert_eq!(acquires.len(), 2, "{operations:?}");
    let last_hold = operations
        .iter()
        .filter(|(_, at)| *at < acquires[1])
        .map(|(_, at)| *at)
        .max()
        .unwrap();
    let gap = acquires[1].duration_since(last_hold).unwrap();
    // The log stamps a request when its answer is ready, a few ms after the TTL started.
    assert!(
        gap + Duration::from_millis(100) >= TTL + LOCK_DELAY,
        "the lock was taken {gap:?} after the last renew: {operations:?}"
    );

    // Nothing lost, nothing twice: the new leader brings the cluster to the second commit, and
    // each stored version is one commit's job, registered once.
    follower
        .wait_app(&env, "web", "the new leader syncs the second commit", |s| {
            s["revision"] == second_commit.as_str() && s["sync"] == "Synced"
        })
        .await;
    assert_eq!(
        version_images(&env, "web").await,
        [first_image, second_image],
        "one job version per commit"
    );
    assert_eq!(registrations(&env).await, 2, "one registration per commit");
    // Now the leader, it accepts changes.
    assert_eq!(follower.post(&env, "/api/v1/refresh").await.0, 202);
    assert!(
        !follower
            .get(&env, "/")
            .await
            .1
            .contains("follower (read-only)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_steps_down_before_its_ttl_and_nobody_writes_until_one_leads() {
    let env = real_time_env().await;
    let first_commit = commit_web(&env, "nginx:1.27");
    let dirs = tempfile::tempdir().unwrap();
    let (leader, follower) = two_replicas(&env, dirs.path()).await;
    leader
        .wait_app(&env, "web", "the leader syncs web", |s| {
            s["revision"] == first_commit.as_str() && s["sync"] == "Synced"
        })
        .await;

    // Every lock operation fails: the leader cannot renew, the follower cannot acquire.
    env.control(
        "/faults",
        json!({"system": "nomad", "method": "PUT", "path": format!("^/v1/var/{LOCK_PATH}$"),
               "kind": "error", "status": 500}),
    )
    .await;
    let last_renewed = lock_operations(&env).await.last().unwrap().1;
    let mut process = leader.process;
    let exit = tokio::task::spawn_blocking(move || {
        let status = process.0.wait();
        (status, process)
    });
    let (status, _process) = tokio::time::timeout(PATIENCE, exit)
        .await
        .expect("the partitioned leader exits")
        .unwrap();
    let stepped_down = SystemTime::now();
    assert_eq!(status.unwrap().code(), Some(3), "a lost lock exits with 3");
    // It stopped before the lock could expire on the server (TTL after its last renew).
    let held_for = stepped_down.duration_since(last_renewed).unwrap();
    assert!(
        held_for < TTL,
        "stepped down {held_for:?} after the last renew"
    );

    // Nobody holds the lock: a new commit is read and planned by the follower, not written.
    let registered = registrations(&env).await;
    let second_commit = commit_web(&env, "nginx:1.28");
    follower
        .wait_app(&env, "web", "the follower plans the second commit", |s| {
            s["revision"] == second_commit.as_str()
        })
        .await;
    assert_eq!(follower.status(&env).await["role"], "follower");
    assert_eq!(
        registrations(&env).await,
        registered,
        "a write without a leader"
    );

    // The partition heals: the follower takes the lock (after the lock delay) and syncs.
    let (code, body) = env
        .nomad_send(reqwest::Method::DELETE, "/_devstack/faults", None)
        .await;
    assert!(code < 300, "{body}");
    follower
        .wait_status(&env, "the follower leads once the lock path answers", leads)
        .await;
    follower
        .wait_app(&env, "web", "the new leader syncs the second commit", |s| {
            s["revision"] == second_commit.as_str() && s["sync"] == "Synced"
        })
        .await;
    assert_eq!(registrations(&env).await, registered + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consul_session_lock_elects_one_leader_and_fails_over_after_the_session_dies() {
    let env = real_time_env().await;
    let first_commit = commit_web(&env, "nginx:1.27");
    let dirs = tempfile::tempdir().unwrap();
    let (mut leader, follower) = two_replicas_with_lock(&env, dirs.path(), "consul-session").await;
    // The key holds the leader's id and is locked by its session.
    let key: Value = env
        .http
        .get(format!("{}/v1/kv/{LOCK_PATH}", env.devstack.consul_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(key[0]["Session"].is_string(), "{key}");
    let value = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        key[0]["Value"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(String::from_utf8(value).unwrap(), leader.holder);
    leader
        .wait_app(&env, "web", "the leader syncs web", |s| {
            s["revision"] == first_commit.as_str() && s["sync"] == "Synced"
        })
        .await;
    assert_eq!(follower.post(&env, "/api/v1/refresh").await.0, 503);

    let killed = tokio::time::Instant::now();
    leader.process.0.kill().unwrap();
    let _ = leader.process.0.wait();
    let second_commit = commit_web(&env, "nginx:1.28");
    follower
        .wait_status(&env, "the follower takes over", leads)
        .await;
    let took = killed.elapsed();
    // Consul invalidates a session between TTL and 2×TTL after its last renew (at most TTL/3
    // before the kill); then the lock delay runs, and the follower tries every TTL/3.
    let earliest = TTL + LOCK_DELAY - TTL / 3;
    let bound = TTL * 2 + LOCK_DELAY + TTL / 3 + Duration::from_secs(2);
    assert!(
        took >= earliest && took <= bound,
        "takeover took {took:?}, not within {earliest:?}..{bound:?}"
    );
    follower
        .wait_app(&env, "web", "the new leader syncs the second commit", |s| {
            s["revision"] == second_commit.as_str() && s["sync"] == "Synced"
        })
        .await;
    assert_eq!(registrations(&env).await, 2, "one registration per commit");
}
