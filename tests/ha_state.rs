//! HA state kept in the cluster: a leader copies its markers, ownership, pins and completed
//! `once` hooks to Nomad variables; a store restored from them has the same rows, and the next
//! leader, starting from an empty data directory, neither re-runs the hook nor re-registers an
//! unchanged job, and keeps the pin.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{TEST_API_TOKEN, TestEnv, WAIT, app_yaml, web_jobspec};
use drover::cluster_state::{self, StatePrefix};
use drover::config::Settings;
use drover::providers::nomad::{NomadClient, NomadConfig};
use drover::store::{AppState, Store};
use serde_json::{Value, json};

/// A batch job for the `once` hook.
const SEED_JOB: &str = r#"job "seed" {
  datacenters = ["dc1"]
  type        = "batch"

  group "run" {
    task "run" {
      driver = "docker"

      config {
        image = "busybox:1.36"
      }
    }
  }
}
"#;

/// Settings of one HA replica with its own data directory. The devstack runs at a 0.01 time
/// scale, so the lock's TTL is scaled down too: at 24 h it lives some 14 minutes here, far
/// beyond the test, and a renew is never due.
fn replica(env: &TestEnv, data: &Path) -> Settings {
    let mut settings = env.settings();
    settings.data_dir = data.to_path_buf();
    settings.ha = Some(drover::ha::HaSettings {
        kind: drover::ha::LockKind::NomadVariable,
        advertise: None,
        path: "drover/leader".into(),
        ttl: Duration::from_secs(24 * 3600),
        lock_delay: Duration::from_secs(1),
    });
    settings
}

fn nomad(env: &TestEnv) -> NomadClient {
    NomadClient::new(NomadConfig {
        address: env.devstack.nomad_url(),
        ..NomadConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn store(env: &TestEnv) -> Store {
    env.drover
        .as_ref()
        .unwrap_or_else(|| panic!("no drover"))
        .ctx
        .store
        .clone()
}

/// Wait until the cluster's record of `app` equals the running drover's local state.
async fn wait_copied(env: &TestEnv, app: &str) -> AppState {
    let client = nomad(env);
    let path = StatePrefix::default()
        .app_path(app)
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let local = store(env)
            .app_state(app)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let record = client
            .read_variable("default", &path)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|v| cluster_state::decode(&path, &v.items).unwrap_or_else(|e| panic!("{e}")));
        if record.as_ref() == Some(&local) {
            return local;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{app}: cluster {record:#?} != local {local:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Roll `app` back to `revision` through the API (which pins it there).
async fn pin(env: &TestEnv, app: &str, revision: &str) {
    let pinned = env
        .http
        .post(format!("{}/api/v1/apps/{app}/rollback", env.drover_url()))
        .bearer_auth(TEST_API_TOKEN)
        .json(&json!({ "revision": revision }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pinned.status().as_u16(), 200);
}

fn image(job: &Value) -> &str {
    job["TaskGroups"][0]["Tasks"][0]["Config"]["image"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_next_leader_restores_pins_hooks_and_markers_and_repeats_no_write() {
    let mut env = TestEnv::new().await;
    let dirs = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    env.write(
        "apps/db/app.yaml",
        &app_yaml(
            "db",
            "hooks:\n  - { pre_sync: { nomad_job: { file: seed.nomad.hcl }, once: true } }\n",
        ),
    );
    env.write("apps/db/seed.nomad.hcl", SEED_JOB);
    env.write("apps/db/job.nomad.hcl", &web_jobspec("db", "nginx:1.27"));
    let first = env.commit("web and db");

    // The first leader syncs both apps (the seed runs once) and pins web to this commit.
    env.start_drover_with(replica(&env, &dirs.path().join("a")))
        .await;
    env.wait_synced_healthy("web", Some(&first)).await;
    env.wait_synced_healthy("db", Some(&first)).await;
    pin(&env, "web", &first).await;
    // Git moves on; the pinned app stays where it was.
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.28"));
    env.write("apps/db/job.nomad.hcl", &web_jobspec("db", "nginx:1.28"));
    let second = env.commit("web and db on 1.28");
    env.wait_synced_healthy("db", Some(&second)).await;
    env.wait_fetched(&second).await;
    env.wait_full_cycle("web").await;
    let web_job = env.job("web").await.unwrap_or_else(|| panic!("no web"));
    assert_eq!(image(&web_job), "nginx:1.27", "pinned");

    // Everything the leader needs is in the cluster.
    let web = wait_copied(&env, "web").await;
    let db = wait_copied(&env, "db").await;
    assert_eq!(web.pin.as_ref().map(|p| p.revision.as_str()), Some(&*first));
    assert!(
        web.owned
            .iter()
            .any(|o| o.resource == "nomad_job/default/web")
    );
    assert!(
        web.markers
            .iter()
            .any(|m| m.resource == "nomad_job/default/web" && m.revision == first)
    );
    assert!(
        db.markers
            .iter()
            .any(|m| m.resource == "nomad_job/default/db" && m.revision == second)
    );
    assert_eq!(
        db.once_hooks
            .iter()
            .map(|h| (h.phase.as_str(), h.job.as_str()))
            .collect::<Vec<_>>(),
        [("pre_sync", "default/seed")]
    );

    // Records carry hashes of specs, never the specs (or any value in them).
    for marker in web.markers.iter().chain(&db.markers) {
        assert!(
            marker.spec_hash.len() == 64 && marker.spec_hash.bytes().all(|b| b.is_ascii_hexdigit()),
            "{marker:?}"
        );
    }

    // A fresh store restored from the cluster has the same rows.
    let fresh = Store::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
    let restored = cluster_state::restore(&fresh, &nomad(&env), &StatePrefix::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(restored.authoritative);
    assert_eq!(restored.counts.apps, 2);
    for (app, state) in [("web", &web), ("db", &db)] {
        assert_eq!(&fresh.app_state(app).await.unwrap_or_default(), state);
    }

    // The leader stops (releasing the lock); the next one starts from an empty data directory.
    let seed_version =
        env.job("seed").await.unwrap_or_else(|| panic!("no seed"))["Version"].clone();
    let seed_runs = env.nomad("/v1/job/seed/allocations").await.1;
    env.stop_drover().await;
    let before = env.nomad_requests().await.len();
    env.start_drover_with(replica(&env, &dirs.path().join("b")))
        .await;
    env.wait_synced_healthy("db", Some(&second)).await;
    env.wait_synced_healthy("web", Some(&first)).await;
    env.wait_full_cycle("db").await;
    env.wait_full_cycle("web").await;

    let registers: Vec<(String, String)> = env.nomad_requests().await[before..]
        .iter()
        .filter(|(method, path)| {
            (method == "POST" || method == "PUT")
                && (path == "/v1/jobs"
                    || path.starts_with("/v1/job/") && path.matches('/').count() == 3)
        })
        .cloned()
        .collect();
    assert_eq!(registers, [], "the next leader registered again");
    let next = store(&env);
    assert_eq!(next.pinned("web").await.ok().flatten(), Some(first.clone()));
    assert!(
        next.once_hook_ran("db", "pre_sync", "default/seed")
            .await
            .ok()
            .flatten()
            .is_some()
    );
    let seed = env.job("seed").await.unwrap_or_else(|| panic!("no seed"));
    assert_eq!(seed["Version"], seed_version, "the once hook ran again");
    assert_eq!(env.nomad("/v1/job/seed/allocations").await.1, seed_runs);
    let web_job = env.job("web").await.unwrap_or_else(|| panic!("no web"));
    assert_eq!(image(&web_job), "nginx:1.27", "the pin was lost");
    env.shutdown().await;
}

/// A replica that first follows and then takes over must apply the pin it restored, not the
/// one it read as a follower (none: its store was empty). Real time: the follower retries the
/// lock every TTL/3 and a scaled devstack would expire the lock under it.
#[tokio::test(flavor = "multi_thread")]
async fn a_follower_that_takes_over_applies_the_restored_pin() {
    let mut env = TestEnv::with_config(drover_devstack::DevstackConfig {
        time_scale: 1.0,
        ..drover_devstack::DevstackConfig::default()
    })
    .await;
    let dirs = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let real_time = |env: &TestEnv, data: &Path| {
        let mut settings = replica(env, data);
        if let Some(ha) = settings.ha.as_mut() {
            ha.ttl = Duration::from_secs(10);
            ha.lock_delay = Duration::from_millis(100);
        }
        settings
    };
    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    let first = env.commit("web");
    let a = real_time(&env, &dirs.path().join("a"));
    env.start_drover_with(a).await;
    env.wait_synced_healthy("web", Some(&first)).await;
    pin(&env, "web", &first).await;
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.28"));
    let second = env.commit("web on 1.28");
    env.wait_fetched(&second).await;
    env.wait_full_cycle("web").await;
    wait_copied(&env, "web").await;
    env.stop_drover().await;

    // Another replica holds the lock while B starts: B follows (no pin in its empty store).
    let b = real_time(&env, &dirs.path().join("b"));
    let other = drover::ha::LeaderLock::new(
        b.nomad.clone(),
        b.consul.clone(),
        b.ha.clone().unwrap_or_else(|| panic!("ha")),
    )
    .unwrap_or_else(|| panic!("lock"));
    let deadline = tokio::time::Instant::now() + WAIT;
    let lock_id = loop {
        match other.try_acquire("another-replica").await {
            Ok(drover::ha::Attempt::Acquired(id)) => break id,
            attempt => assert!(
                tokio::time::Instant::now() < deadline,
                "the lock stays taken: {attempt:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let before = env.nomad_requests().await.len();
    env.start_drover_with(b).await;
    env.wait_fetched(&second).await;
    env.wait_full_cycle("web").await;
    let leads = |env: &TestEnv| {
        env.drover
            .as_ref()
            .unwrap_or_else(|| panic!("no drover"))
            .ctx
            .leads()
    };
    assert!(
        !leads(&env),
        "a follower while another replica holds the lock"
    );
    other
        .release(&lock_id)
        .await
        .unwrap_or_else(|e| panic!("release: {e}"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while !leads(&env) {
        assert!(tokio::time::Instant::now() < deadline, "B never led");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.wait_full_cycle("web").await;
    env.wait_full_cycle("web").await;
    assert_eq!(store(&env).pinned("web").await.ok().flatten(), Some(first));
    let web_job = env.job("web").await.unwrap_or_else(|| panic!("no web"));
    assert_eq!(
        image(&web_job),
        "nginx:1.27",
        "the new leader undid the pin"
    );
    let registers = env.nomad_requests().await[before..]
        .iter()
        .filter(|(method, path)| (method == "POST" || method == "PUT") && path == "/v1/jobs")
        .count();
    assert_eq!(registers, 0, "the new leader registered web again");
    env.shutdown().await;
}
