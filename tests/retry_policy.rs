//! The retry policy follows the error: a permanent failure (403) is tried once per revision, a
//! transient one (503) is retried with a growing delay.

mod common;

use std::time::{Duration, SystemTime};

use common::{TestEnv, WAIT, app_yaml, web_jobspec};
use drover::controller::{AppStatus, Phase};
use serde_json::{Value, json};

/// Registrations (`POST /v1/jobs`) Nomad served so far, with when they arrived.
async fn registrations(env: &TestEnv) -> Vec<SystemTime> {
    let url = format!(
        "{}/_devstack/requests?system=nomad",
        env.devstack.nomad_url()
    );
    let log: Value = env
        .http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("request log: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("request log: {e}"));
    let entries = log.get("entries").cloned().unwrap_or(log);
    entries
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["Method"] == "POST" && e["Path"] == "/v1/jobs")
        .map(|e| {
            let time = e["Time"].as_str().unwrap_or_default();
            humantime::parse_rfc3339_weak(time).unwrap_or_else(|e| panic!("{time}: {e}"))
        })
        .collect()
}

/// Wait until Nomad has served at least `n` registrations.
async fn wait_registrations(env: &TestEnv, n: usize) -> Vec<SystemTime> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let seen = registrations(env).await;
        if seen.len() >= n {
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} registrations, expected {n}",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One app whose register Nomad answers 403, drover started with `resync` (a progress interval
/// of 100 ms, no client retries): the environment, the commit and its permanent failure.
async fn forbidden_register(resync: Duration) -> (TestEnv, String, AppStatus) {
    let mut env = TestEnv::new().await;
    env.control(
        "/faults",
        json!({"system": "nomad", "method": "POST", "path": "^/v1/jobs$", "kind": "forbidden"}),
    )
    .await;
    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    let v1 = env.commit("web");
    let mut settings = env.settings();
    settings.nomad.max_retries = 0;
    settings.controller.progress_interval = Duration::from_millis(100);
    settings.controller.resync_interval = resync;
    env.start_drover_with(settings).await;
    let failed = env
        .wait_app("web", "permanently failed at v1", |s| {
            s.revision == v1 && s.phase == Phase::SyncFailed { permanent: true }
        })
        .await;
    (env, v1, failed)
}

#[tokio::test]
async fn a_forbidden_register_is_not_retried_before_the_resync_and_says_it_is_permanent() {
    // Retries of a transient failure would come every 100 ms; the resync is far away.
    let (env, v1, failed) = forbidden_register(Duration::from_secs(600)).await;
    assert_eq!(failed.revision, v1);
    assert!(
        failed.errors.iter().any(|e| e.contains("403")),
        "{failed:#?}"
    );
    // Fifteen progress intervals later: still one attempt.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(registrations(&env).await.len(), 1);

    // A new revision is tried once more, and again only once.
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.28"));
    let v2 = env.commit("nginx 1.28");
    env.wait_app("web", "permanently failed at v2", |s| {
        s.revision == v2 && s.phase == Phase::SyncFailed { permanent: true }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(registrations(&env).await.len(), 2);

    // Once the cause is fixed, the next change in Git lands.
    env.devstack.state().faults.clear();
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.29"));
    let v3 = env.commit("nginx 1.29");
    env.wait_synced_healthy("web", Some(&v3)).await;
    env.shutdown().await;
}

/// A 403 is "permanent" for the facts drover sees, but its cause (an ACL policy, a token) is
/// fixed in Nomad, where nothing drover watches changes: the resync tries it again, and once the
/// cause is gone the revision lands without a new commit.
#[tokio::test]
async fn a_permanent_failure_is_tried_again_at_the_resync_and_lands_once_the_cause_is_fixed() {
    let (env, v1, _) = forbidden_register(Duration::from_secs(1)).await;
    let tries = wait_registrations(&env, 2).await;
    let gap = tries[1].duration_since(tries[0]).unwrap_or_default();
    assert!(
        gap >= Duration::from_millis(900),
        "the second try waited for the resync, not the progress interval: {gap:?}"
    );
    env.devstack.state().faults.clear();
    env.wait_synced_healthy("web", Some(&v1)).await;
    env.shutdown().await;
}

#[tokio::test]
async fn an_unavailable_nomad_is_retried_with_a_growing_delay() {
    let mut env = TestEnv::new().await;
    env.control(
        "/faults",
        json!({"system": "nomad", "method": "POST", "path": "^/v1/jobs$", "kind": "error", "status": 503}),
    )
    .await;
    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    let v1 = env.commit("web");
    let mut settings = env.settings();
    // One request per cycle (no client retries), a resync far away: every retry is the backoff's.
    settings.nomad.max_retries = 0;
    settings.controller.progress_interval = Duration::from_millis(100);
    settings.controller.max_backoff = Duration::from_secs(30);
    settings.controller.resync_interval = Duration::from_secs(600);
    env.start_drover_with(settings).await;
    let times = wait_registrations(&env, 5).await;
    let failed = env
        // Not the in-flight status a retry publishes while it writes (it is at v1 too).
        .wait_app("web", "failed at v1", |s| {
            s.revision == v1 && !matches!(s.phase, drover::controller::Phase::Syncing(_))
        })
        .await;
    assert_eq!(failed.phase, "sync failed", "{failed:#?}");
    // The n-th retry waits at least 100 ms × 2ⁿ⁻¹ (jitter only adds, up to as much again).
    for (n, pair) in times.windows(2).enumerate() {
        let gap = pair[1].duration_since(pair[0]).unwrap_or_default();
        let least = Duration::from_millis(100) * 2u32.pow(n as u32);
        assert!(gap >= least, "retry {n}: {gap:?} < {least:?} ({times:?})");
        assert!(
            gap < least * 2 + Duration::from_millis(500),
            "retry {n}: {gap:?}"
        );
    }
    // Nomad is back: the next retry lands without any change in Git.
    env.devstack.state().faults.clear();
    env.wait_synced_healthy("web", Some(&v1)).await;
    env.shutdown().await;
}
