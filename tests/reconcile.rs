//! End-to-end tests of the reconcile loop: a real Git repo, the devstack, drover on loopback.

mod common;

use std::time::Duration;

use common::{TestEnv, app_yaml, example, web_jobspec};
use reqwest::Method;
use serde_json::{Value, json};

fn sync_of(s: &drover::controller::AppStatus) -> String {
    format!("{:?}", s.sync)
}

async fn version(env: &TestEnv, id: &str) -> u64 {
    env.job(id)
        .await
        .and_then(|j| j["Version"].as_u64())
        .unwrap_or_else(|| panic!("job {id} missing"))
}

async fn job_modify_index(env: &TestEnv, id: &str) -> u64 {
    env.job(id)
        .await
        .and_then(|j| j["JobModifyIndex"].as_u64())
        .unwrap_or_else(|| panic!("job {id} missing"))
}

fn registers_of(requests: &[(String, String)]) -> usize {
    requests
        .iter()
        .filter(|(m, p)| {
            (m == "POST" || m == "PUT")
                && (p == "/v1/jobs" || p.starts_with("/v1/job/") && !p.ends_with("/plan"))
        })
        .count()
}

#[tokio::test]
async fn first_sync_of_several_apps_reaches_synced_and_healthy_then_costs_no_plans() {
    let mut env = TestEnv::new().await;
    for name in ["alpha", "beta", "gamma"] {
        env.write(&format!("apps/{name}/app.yaml"), &app_yaml(name, ""));
        env.write(
            &format!("apps/{name}/job.nomad.hcl"),
            &web_jobspec(name, "nginx:1.27"),
        );
    }
    let rev = env.commit("three apps");
    env.start_drover().await;
    for name in ["alpha", "beta", "gamma"] {
        env.wait_synced_healthy(name, Some(&rev)).await;
        let job = env
            .job(name)
            .await
            .unwrap_or_else(|| panic!("{name} not registered"));
        assert_eq!(job["Meta"]["drover.app"], name, "ownership meta");
        assert_eq!(job["Version"], 0);
    }
    // Steady state: further cycles (each app runs at least one full, timer-driven one) ask Nomad
    // for no plans and register nothing.
    let before = env.nomad_requests().await;
    let mark = std::time::SystemTime::now();
    for name in ["alpha", "beta", "gamma"] {
        env.wait_cycle_since(name, mark).await;
    }
    let after = env.nomad_requests().await;
    let new: Vec<_> = after[before.len().min(after.len())..].to_vec();
    let plans = new.iter().filter(|(_, p)| p.ends_with("/plan")).count();
    assert_eq!(plans, 0, "unchanged cycles must not plan: {new:?}");
    assert_eq!(
        registers_of(&new),
        0,
        "unchanged cycles must not register: {new:?}"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn a_git_change_makes_one_new_job_version_and_nothing_else_changes() {
    let mut env = TestEnv::new().await;
    for name in ["front", "back"] {
        env.write(&format!("apps/{name}/app.yaml"), &app_yaml(name, ""));
        env.write(
            &format!("apps/{name}/job.nomad.hcl"),
            &web_jobspec(name, "nginx:1.27"),
        );
    }
    let first = env.commit("two apps");
    env.start_drover().await;
    env.wait_synced_healthy("front", Some(&first)).await;
    env.wait_synced_healthy("back", Some(&first)).await;
    let back_index = job_modify_index(&env, "back").await;

    env.write(
        "apps/front/job.nomad.hcl",
        &web_jobspec("front", "nginx:1.28"),
    );
    let second = env.commit("front: nginx 1.28");
    env.wait_synced_healthy("front", Some(&second)).await;
    env.wait_synced_healthy("back", Some(&second)).await;
    assert_eq!(version(&env, "front").await, 1);
    let job = env.job("front").await.unwrap_or_default();
    assert_eq!(
        job["TaskGroups"][0]["Tasks"][0]["Config"]["image"],
        "nginx:1.28"
    );
    assert_eq!(
        version(&env, "back").await,
        0,
        "back must not get a new version"
    );
    assert_eq!(job_modify_index(&env, "back").await, back_index);
    // History records the change with its revision.
    let history = env.running_history("front").await;
    assert!(
        history
            .iter()
            .any(|h| h.revision == second && h.result == Some(drover::store::SyncResult::Succeeded)),
        "{history:?}"
    );
    env.shutdown().await;
}

impl TestEnv {
    async fn running_history(&self, app: &str) -> Vec<drover::store::SyncRecord> {
        self.drover
            .as_ref()
            .unwrap_or_else(|| panic!("not running"))
            .ctx
            .store
            .history(app, 20)
            .await
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn a_job_stopped_edited_or_purged_behind_droverss_back_is_healed() {
    let mut env = TestEnv::new().await;
    env.sync_web_app("sync: { self_heal: true }\n").await;

    // Stopped through the API (nomad job stop).
    let (code, _) = env.nomad_send(Method::DELETE, "/v1/job/web", None).await;
    assert_eq!(code, 200);
    assert_eq!(env.job("web").await.unwrap_or_default()["Stop"], true);
    env.wait_job("web", "stop undone", |j| {
        j.is_some_and(|j| j["Stop"] == false)
    })
    .await;
    // Stop made version 1; the heal made version 2.
    assert_eq!(version(&env, "web").await, 2);
    env.wait_synced_healthy("web", None).await;

    // Edited through the API: a new image.
    let mut edited = env.job("web").await.unwrap_or_default();
    edited["TaskGroups"][0]["Tasks"][0]["Config"]["image"] = json!("evil:latest");
    let (code, body) = env
        .nomad_send(Method::POST, "/v1/jobs", Some(json!({ "Job": edited })))
        .await;
    assert_eq!(code, 200, "{body}");
    env.wait_job("web", "edit healed", |j| {
        j.is_some_and(|j| j["TaskGroups"][0]["Tasks"][0]["Config"]["image"] == "nginx:1.27")
    })
    .await;

    // Purged.
    let (code, _) = env
        .nomad_send(Method::DELETE, "/v1/job/web?purge=true", None)
        .await;
    assert_eq!(code, 200);
    env.wait_job("web", "recreated after purge", |j| j.is_some())
        .await;
    env.wait_synced_healthy("web", None).await;
    env.shutdown().await;
}

#[tokio::test]
async fn drift_is_reported_with_its_diff_and_left_alone_when_self_heal_is_off() {
    let mut env = TestEnv::new().await;
    env.sync_web_app("sync: { self_heal: false }\n").await;

    let (code, _) = env.nomad_send(Method::DELETE, "/v1/job/web", None).await;
    assert_eq!(code, 200);
    let status = env
        .wait_app("web", "OutOfSync", |s| sync_of(s) == "OutOfSync")
        .await;
    let diff = status
        .resources
        .iter()
        .find_map(|r| r.diff.clone())
        .unwrap_or_default();
    assert!(diff.contains("Stop"), "the diff shows the stop: {diff}");
    let status = env.wait_full_cycle("web").await;
    assert_eq!(sync_of(&status), "OutOfSync");
    let job = env.job("web").await.unwrap_or_default();
    assert_eq!(
        job["Stop"], true,
        "self_heal off: drover must not undo the stop"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn a_drift_left_alone_adds_no_sync_to_the_history_cycle_after_cycle() {
    let mut env = TestEnv::new().await;
    env.sync_web_app("sync: { self_heal: false }\n").await;
    let (code, _) = env.nomad_send(Method::DELETE, "/v1/job/web", None).await;
    assert_eq!(code, 200);
    env.wait_app("web", "OutOfSync", |s| sync_of(s) == "OutOfSync")
        .await;
    for _ in 0..3 {
        let status = env.wait_full_cycle("web").await;
        assert_eq!(sync_of(&status), "OutOfSync");
    }
    let store = &env
        .drover
        .as_ref()
        .unwrap_or_else(|| panic!("drover is not running"))
        .ctx
        .store;
    let history = store
        .history("web", 50)
        .await
        .unwrap_or_else(|e| panic!("history: {e}"));
    let results: Vec<&str> = history
        .iter()
        .map(|s| s.result.map_or("unfinished", |r| r.as_str()))
        .collect();
    assert_eq!(
        results,
        ["succeeded"],
        "only the first sync: cycles that may not write are not syncs"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn bad_yaml_unknown_keys_and_bad_hcl_break_only_their_own_app() {
    let mut env = TestEnv::new().await;
    env.write("apps/good/app.yaml", &app_yaml("good", ""));
    env.write(
        "apps/good/job.nomad.hcl",
        &web_jobspec("good", "nginx:1.27"),
    );
    env.write("apps/badyaml/app.yaml", "name: badyaml\nresources: [\n");
    env.write(
        "apps/typo/app.yaml",
        "name: typo\nsync: { self_heel: true }\nresources: []\n",
    );
    env.write("apps/badhcl/app.yaml", &app_yaml("badhcl", ""));
    env.write(
        "apps/badhcl/job.nomad.hcl",
        "job \"badhcl\" {\n  group \"g\" {\n    task \"t\" {\n      driver = \n",
    );
    env.commit("one good app, three broken ones");
    env.start_drover().await;
    env.wait_synced_healthy("good", None).await;
    let bad_yaml = env
        .wait_app("badyaml", "InvalidSpec", |s| sync_of(s) == "InvalidSpec")
        .await;
    assert!(
        bad_yaml
            .errors
            .iter()
            .any(|e| e.contains("apps/badyaml/app.yaml:")),
        "{:?}",
        bad_yaml.errors
    );
    let typo = env
        .wait_app("typo", "InvalidSpec", |s| sync_of(s) == "InvalidSpec")
        .await;
    assert!(
        typo.errors
            .iter()
            .any(|e| e.contains("self_heel") && e.contains("self_heal")),
        "a did-you-mean hint: {:?}",
        typo.errors
    );
    let hcl = env
        .wait_app("badhcl", "InvalidSpec", |s| sync_of(s) == "InvalidSpec")
        .await;
    assert!(
        hcl.errors
            .iter()
            .any(|e| e.contains("apps/badhcl/job.nomad.hcl:")),
        "{:?}",
        hcl.errors
    );
    assert!(env.job("badhcl").await.is_none());
    env.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_repository_keeps_the_last_good_revision() {
    let mut env = TestEnv::new().await;
    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    let rev = env.commit("web");
    env.start_drover().await;
    env.wait_synced_healthy("web", Some(&rev)).await;
    // The remote disappears.
    let moved = env.repo.with_extension("moved");
    std::fs::rename(&env.repo, &moved).unwrap_or_else(|e| panic!("{e}"));
    let source = env
        .drover
        .as_ref()
        .map(|d| d.source.subscribe())
        .unwrap_or_else(|| panic!("running"));
    tokio::time::timeout(common::WAIT, async {
        let mut rx = source.clone();
        loop {
            if rx.borrow_and_update().last_error.is_some() {
                break;
            }
            let _ = rx.changed().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("fetch error never reported"));
    let status = source.borrow().clone();
    assert_eq!(
        status.revision.as_ref().map(|r| r.id.clone()),
        Some(rev.clone())
    );
    // The app stays at the last good revision and nothing is deleted.
    let s = env.wait_full_cycle("web").await;
    assert_eq!(s.revision, rev);
    assert!(env.job("web").await.is_some());
    std::fs::rename(&moved, &env.repo).unwrap_or_else(|e| panic!("{e}"));
    env.shutdown().await;
}

#[tokio::test]
async fn an_enforce_index_conflict_is_reported_not_overwritten() {
    let mut env = TestEnv::new().await;
    env.sync_web_app("").await;

    // drover's next register is held; once the devstack says it holds it, someone else registers.
    env.control(
        "/faults",
        json!({"system": "nomad", "method": "POST", "path": "^/v1/jobs$", "kind": "latency", "latency_ms": 3000, "count": 1}),
    )
    .await;
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.28"));
    env.commit("nginx 1.28");
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let (_, faults) = env.nomad("/_devstack/faults").await;
        if faults[0]["Fired"].as_u64() == Some(1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "drover's register never reached the devstack: {faults}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut other = env.job("web").await.unwrap_or_default();
    other["Meta"]["changed-by"] = json!("operator");
    let (code, body) = env
        .nomad_send(Method::PUT, "/v1/job/web", Some(json!({ "Job": other })))
        .await;
    assert_eq!(code, 200, "{body}");
    env.wait_app("web", "conflict reported", |s| {
        s.last_sync
            .as_ref()
            .is_some_and(|l| l.result == drover::store::SyncResult::Conflict)
    })
    .await;
    // The failed write is in the history with Nomad's EnforceIndex message; nothing was forced.
    let history = env.running_history("web").await;
    let conflict = history
        .iter()
        .find(|h| h.result == Some(drover::store::SyncResult::Conflict))
        .unwrap_or_else(|| panic!("no conflict in {history:?}"));
    assert!(
        conflict
            .message
            .as_deref()
            .is_some_and(|m| m.contains("Enforcing job modify index")),
        "{conflict:?}"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn a_restart_after_register_before_the_marker_does_not_register_again() {
    let mut env = TestEnv::new().await;
    env.sync_web_app("").await;
    let store = env
        .drover
        .as_ref()
        .map(|d| d.ctx.store.clone())
        .unwrap_or_else(|| panic!("running"));
    env.stop_drover().await;
    // A crash between the register and the marker write: the marker is lost, and a sync was open.
    store
        .delete_marker(
            "web",
            &drover::desired::ResourceId::parse("nomad_job/default/web")
                .unwrap_or_else(|| panic!("id")),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .begin_sync("web", "deadbeef", drover::store::Trigger::Auto)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    drop(store);
    let before = env.nomad_requests().await.len();
    env.start_drover().await;
    env.wait_synced_healthy("web", None).await;
    env.wait_full_cycle("web").await;
    let requests = env.nomad_requests().await;
    let new = &requests[before.min(requests.len())..];
    assert_eq!(
        registers_of(new),
        0,
        "no duplicate registration after restart: {new:?}"
    );
    assert!(
        new.iter().any(|(_, p)| p == "/v1/job/web/plan"),
        "the server decides: one plan"
    );
    assert_eq!(version(&env, "web").await, 0);
    let history = env.running_history("web").await;
    assert!(
        history
            .iter()
            .any(|h| h.result == Some(drover::store::SyncResult::Interrupted)),
        "{history:?}"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn most_apps_leaving_git_at_once_is_refused_not_pruned() {
    let mut env = TestEnv::new().await;
    for name in ["keep", "gone1", "gone2", "gone3"] {
        env.write(
            &format!("apps/{name}/app.yaml"),
            &app_yaml(name, "sync: { prune: true }\n"),
        );
        env.write(
            &format!("apps/{name}/job.nomad.hcl"),
            &web_jobspec(name, "nginx:1.27"),
        );
    }
    env.commit("four apps");
    env.start_drover().await;
    for app in ["keep", "gone1", "gone2", "gone3"] {
        env.wait_synced_healthy(app, None).await;
    }
    for app in ["gone1", "gone2", "gone3"] {
        env.remove(&format!("apps/{app}"));
    }
    env.commit("remove three of four apps");
    env.wait_event("not pruning").await;
    env.wait_full_cycle("keep").await;
    for app in ["gone1", "gone2", "gone3"] {
        assert!(
            env.job(app).await.is_some(),
            "the guard stops a mass deletion of {app}"
        );
    }
    let events = env
        .drover
        .as_ref()
        .unwrap_or_else(|| panic!("running"))
        .ctx
        .store
        .events(None, 50)
        .await
        .unwrap_or_default();
    assert!(
        events.iter().any(|e| e.message.contains("not pruning")),
        "{events:?}"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn removed_apps_are_pruned_per_their_last_policy_and_ownership() {
    let mut env = TestEnv::new().await;
    for (name, extra) in [
        ("a1", ""),
        ("a2", ""),
        ("a3", ""),
        ("pruned", "sync: { prune: true }\n"),
        ("kept", "sync: { prune: false }\n"),
        ("adopted", "sync: { prune: true }\n"),
    ] {
        env.write(&format!("apps/{name}/app.yaml"), &app_yaml(name, extra));
        env.write(
            &format!("apps/{name}/job.nomad.hcl"),
            &web_jobspec(name, "nginx:1.27"),
        );
    }
    env.commit("six apps");
    env.start_drover().await;
    for app in ["a1", "a2", "a3", "pruned", "kept", "adopted"] {
        env.wait_synced_healthy(app, None).await;
    }
    env.stop_drover().await;
    // Taken over by hand: the ownership meta names someone else.
    let mut taken = env.job("adopted").await.unwrap_or_default();
    taken["Meta"]["drover.app"] = json!("someone-else");
    let (code, body) = env
        .nomad_send(Method::POST, "/v1/jobs", Some(json!({ "Job": taken })))
        .await;
    assert_eq!(code, 200, "{body}");

    env.remove("apps/pruned");
    env.remove("apps/kept");
    env.remove("apps/adopted");
    env.commit("remove three of six apps");
    env.start_drover().await;
    env.wait_job("pruned", "pruned (prune: true)", |j| j.is_none())
        .await;
    env.wait_full_cycle("a1").await;
    assert!(
        env.job("kept").await.is_some(),
        "prune: false keeps the job"
    );
    assert!(
        env.job("adopted").await.is_some(),
        "a job whose meta names another owner is kept"
    );
    for app in ["a1", "a2", "a3"] {
        assert!(env.job(app).await.is_some());
    }

    // An empty repository never deletes anything.
    for app in ["a1", "a2", "a3"] {
        env.remove(&format!("apps/{app}"));
    }
    env.commit("empty");
    env.wait_event("no loadable apps").await;
    for app in ["a1", "a2", "a3"] {
        assert!(
            env.job(app).await.is_some(),
            "emptying Git must not delete {app}"
        );
    }
    env.shutdown().await;
}

#[tokio::test]
async fn the_real_overseerr_jobspec_syncs_to_healthy_with_its_volume_created_first() {
    let mut env = TestEnv::new().await;
    let jobspec = std::fs::read_to_string(example("modules/overseerr/jobspec.nomad.hcl"))
        .unwrap_or_else(|e| panic!("{e}"));
    env.write("apps/overseerr/jobspec.nomad.hcl", &jobspec);
    env.write(
        "apps/overseerr/app.yaml",
        r#"name: overseerr
resources:
  - csi_volume:
      id: glusterfs_overseerr_config
      plugin_id: glusterfs
      capacity_min: 100MiB
      capacity_max: 1GiB
      capabilities: [{ access_mode: single-node-writer, attachment_mode: file-system }]
      prevent_destroy: true
  - nomad_job: { file: jobspec.nomad.hcl }
  - vault_secret: { mount: nomad, path: default/overseerr, keys: [MINIO_ACCESS_KEY, MINIO_SECRET_KEY] }
"#,
    );
    env.commit("overseerr");
    env.start_drover().await;
    let status = env.wait_synced_healthy("overseerr", None).await;
    let requests = env.nomad_requests().await;
    let create = requests
        .iter()
        .position(|(m, p)| m == "PUT" && p == "/v1/volume/csi/glusterfs_overseerr_config/create");
    let register = requests
        .iter()
        .position(|(m, p)| m == "POST" && p == "/v1/jobs");
    assert!(create.is_some(), "volume created: {requests:?}");
    assert!(
        create < register,
        "the volume is created before the job is registered"
    );
    let (code, volume) = env.nomad("/v1/volume/csi/glusterfs_overseerr_config").await;
    assert_eq!(code, 200);
    assert_eq!(volume["RequestedCapacityMin"], 104857600);
    assert!(
        status
            .resources
            .iter()
            .any(|r| r.id == "nomad_job/default/overseerr")
    );
    let (_, allocs) = env.nomad("/v1/job/overseerr/allocations").await;
    let alloc = &allocs[0];
    assert_eq!(alloc["TaskStates"]["litestream-restore"]["State"], "dead");
    assert_eq!(alloc["TaskStates"]["litestream-restore"]["Failed"], false);
    assert_eq!(alloc["TaskStates"]["litestream"]["State"], "running");
    env.shutdown().await;
}

async fn api_post(env: &TestEnv, path: &str, body: Value) -> (u16, Value) {
    let addr = env
        .drover
        .as_ref()
        .map(|d| d.web_addr)
        .unwrap_or_else(|| panic!("running"));
    let r = env
        .http
        .post(format!("http://{addr}{path}"))
        .json(&body)
        .bearer_auth(common::TEST_API_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn auto_sync_off_waits_for_a_manual_sync() {
    let mut env = TestEnv::new().await;
    env.write(
        "apps/web/app.yaml",
        &app_yaml("web", "sync: { auto: false }\n"),
    );
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    env.commit("web, manual sync");
    env.start_drover().await;
    let status = env
        .wait_app("web", "OutOfSync", |s| sync_of(s) == "OutOfSync")
        .await;
    assert!(
        status
            .resources
            .iter()
            .any(|r| r.change == "create" && r.diff.is_some()),
        "{status:#?}"
    );
    env.wait_full_cycle("web").await;
    assert!(
        env.job("web").await.is_none(),
        "auto: false never applies by itself"
    );
    let (code, _) = api_post(&env, "/api/v1/apps/web/sync", json!({})).await;
    assert_eq!(code, 202);
    env.wait_synced_healthy("web", None).await;
    assert!(env.job("web").await.is_some());
    env.shutdown().await;
}

#[tokio::test]
async fn rollback_pins_an_older_revision_until_unpinned() {
    let mut env = TestEnv::new().await;
    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.26"));
    let v1 = env.commit("v1");
    env.start_drover().await;
    env.wait_synced_healthy("web", Some(&v1)).await;
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    let v2 = env.commit("v2");
    env.wait_synced_healthy("web", Some(&v2)).await;

    let (code, body) = api_post(
        &env,
        "/api/v1/apps/web/rollback",
        json!({ "revision": &v1[..8] }),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["pinned"], v1.as_str());
    let status = env.wait_synced_healthy("web", Some(&v1)).await;
    assert_eq!(status.pinned.as_deref(), Some(v1.as_str()));
    let image = |j: Option<Value>| {
        j.unwrap_or_default()["TaskGroups"][0]["Tasks"][0]["Config"]["image"].clone()
    };
    assert_eq!(image(env.job("web").await), "nginx:1.26");

    // While pinned, new commits are not applied.
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.28"));
    let v3 = env.commit("v3");
    env.wait_fetched(&v3).await;
    let status = env.wait_full_cycle("web").await;
    assert_eq!(status.revision, v1, "a pinned app stays at its pin");
    assert_eq!(image(env.job("web").await), "nginx:1.26");

    let (code, _) = api_post(&env, "/api/v1/apps/web/unpin", json!({})).await;
    assert_eq!(code, 200);
    env.wait_synced_healthy("web", Some(&v3)).await;
    assert_eq!(image(env.job("web").await), "nginx:1.28");
    env.shutdown().await;
}

#[tokio::test]
async fn transient_nomad_errors_are_retried_and_the_sync_completes() {
    let mut env = TestEnv::new().await;
    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    env.commit("web");
    // The first plan answers 500 "No cluster leader" twice (retried inside the client with
    // backoff) and the first register answers 503 (retried by the next cycle).
    env.control(
        "/faults",
        json!({"system": "nomad", "path": "^/v1/job/web/plan$", "kind": "no_leader", "count": 2}),
    )
    .await;
    env.control(
        "/faults",
        json!({"system": "nomad", "method": "POST", "path": "^/v1/jobs$", "kind": "error", "status": 503, "count": 1}),
    )
    .await;
    env.start_drover().await;
    env.wait_synced_healthy("web", None).await;
    let requests = env.nomad_requests().await;
    let plans = requests
        .iter()
        .filter(|(_, p)| p == "/v1/job/web/plan")
        .count();
    assert!(
        plans >= 3,
        "two leaderless answers were retried: {plans} plan calls"
    );
    let history = env.running_history("web").await;
    assert!(
        history
            .iter()
            .any(|h| h.result == Some(drover::store::SyncResult::Failed)),
        "{history:?}"
    );
    assert!(
        history
            .iter()
            .any(|h| h.result == Some(drover::store::SyncResult::Succeeded)),
        "{history:?}"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn with_nomad_acls_a_bad_token_is_reported_and_the_root_token_syncs() {
    let mut env = TestEnv::with_config(drover_devstack::DevstackConfig {
        time_scale: 0.01,
        nomad_acl: true,
        seed: Some(common::default_seed()),
        ..drover_devstack::DevstackConfig::default()
    })
    .await;
    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    env.commit("web");
    env.nomad_token = Some("not-a-token".into());
    env.start_drover().await;
    // 403 is never retried as transient; the app reports it.
    let status = env
        .wait_app("web", "forbidden", |s| {
            s.errors.iter().any(|e| e.contains("403"))
        })
        .await;
    assert!(
        status
            .errors
            .iter()
            .any(|e| e.contains("ACL token not found")),
        "{:?}",
        status.errors
    );
    env.stop_drover().await;
    env.nomad_token = Some(env.devstack.root_token().to_string());
    env.start_drover().await;
    env.wait_synced_healthy("web", None).await;
    env.shutdown().await;
}

#[tokio::test]
async fn a_resource_removed_from_an_app_is_pruned_but_volumes_are_never_destroyed() {
    let mut env = TestEnv::new().await;
    env.write(
        "apps/media/app.yaml",
        r#"name: media
sync: { prune: true }
resources:
  - nomad_job: { file: a.nomad.hcl }
  - nomad_job: { file: b.nomad.hcl }
  - csi_volume:
      id: media_data
      plugin_id: glusterfs
      capabilities: [{ access_mode: single-node-writer, attachment_mode: file-system }]
"#,
    );
    env.write(
        "apps/media/a.nomad.hcl",
        &web_jobspec("media-a", "nginx:1.27"),
    );
    env.write(
        "apps/media/b.nomad.hcl",
        &web_jobspec("media-b", "nginx:1.27"),
    );
    env.commit("media with two jobs and a volume");
    env.start_drover().await;
    env.wait_synced_healthy("media", None).await;
    assert!(env.job("media-b").await.is_some());

    env.write(
        "apps/media/app.yaml",
        "name: media\nsync: { prune: true }\nresources:\n  - nomad_job: { file: a.nomad.hcl }\n",
    );
    env.remove("apps/media/b.nomad.hcl");
    let rev = env.commit("drop job b and the volume");
    env.wait_job("media-b", "pruned", |j| j.is_none()).await;
    env.wait_synced_healthy("media", Some(&rev)).await;
    let (code, _) = env.nomad("/v1/volume/csi/media_data").await;
    assert_eq!(
        code, 200,
        "a volume that leaves Git is kept (its data is never destroyed by a prune)"
    );
    assert!(env.job("media-a").await.is_some());
    env.shutdown().await;
}

#[tokio::test]
async fn a_volume_waits_for_its_csi_plugin_and_the_job_for_its_volume() {
    let mut seed = common::default_seed();
    seed.csi_plugins.clear();
    let mut env = TestEnv::with_seed(seed).await;
    env.write(
        "apps/app/app.yaml",
        r#"name: app
resources:
  - csi_volume:
      id: app_data
      plugin_id: glusterfs
      capabilities: [{ access_mode: single-node-writer, attachment_mode: file-system }]
  - nomad_job: { file: job.nomad.hcl }
"#,
    );
    let jobspec = web_jobspec("app", "nginx:1.27").replace(
        "    task \"server\" {",
        "    volume \"data\" {\n      type            = \"csi\"\n      source          = \"app_data\"\n      access_mode     = \"single-node-writer\"\n      attachment_mode = \"file-system\"\n    }\n\n    task \"server\" {",
    );
    env.write("apps/app/job.nomad.hcl", &jobspec);
    env.commit("app with a CSI volume");
    env.start_drover().await;
    let status = env
        .wait_app("app", "waiting for the plugin", |s| {
            s.resources.iter().any(|r| {
                r.message
                    .contains("CSI plugin glusterfs is not running yet")
            })
        })
        .await;
    assert_eq!(sync_of(&status), "OutOfSync");
    env.wait_full_cycle("app").await;
    assert!(
        env.job("app").await.is_none(),
        "the job waits for its volume's wave"
    );
    let (code, _) = env.nomad("/v1/volume/csi/app_data").await;
    assert_eq!(code, 404);

    env.control(
        "/nomad/csi/plugin",
        json!({"id": "glusterfs", "controller": true, "healthy": true}),
    )
    .await;
    env.wait_synced_healthy("app", None).await;
    let (code, volume) = env.nomad("/v1/volume/csi/app_data").await;
    assert_eq!(code, 200);
    assert_eq!(volume["PluginID"], "glusterfs");
    env.shutdown().await;
}

#[tokio::test]
async fn an_app_in_another_namespace_syncs_there() {
    let mut seed = common::default_seed();
    seed.namespaces = vec!["media".into()];
    let mut env = TestEnv::with_seed(seed).await;
    env.write(
        "apps/web/app.yaml",
        "name: web\nnamespace: media\nresources:\n  - nomad_job: { file: job.nomad.hcl }\n",
    );
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    env.commit("web in media");
    env.start_drover().await;
    let status = env.wait_synced_healthy("web", None).await;
    assert!(
        status
            .resources
            .iter()
            .any(|r| r.id == "nomad_job/media/web"),
        "{status:#?}"
    );
    let (code, job) = env.nomad("/v1/job/web?namespace=media").await;
    assert_eq!(code, 200);
    assert_eq!(job["Namespace"], "media");
    assert!(
        env.job("web").await.is_none(),
        "nothing in the default namespace"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn a_json_jobspec_syncs_and_updates_like_an_hcl_one() {
    let mut env = TestEnv::new().await;
    let job = |image: &str| {
        json!({"Job": {"ID": "api", "Name": "api", "Type": "service", "Datacenters": ["dc1"],
            "TaskGroups": [{"Name": "api", "Count": 1,
                "Tasks": [{"Name": "server", "Driver": "docker", "Config": {"image": image}}]}]}})
        .to_string()
    };
    env.write(
        "apps/api/app.yaml",
        "name: api\nresources:\n  - nomad_job: { file: job.json }\n",
    );
    env.write("apps/api/job.json", &job("nginx:1.27"));
    env.commit("json job");
    env.start_drover().await;
    env.wait_synced_healthy("api", None).await;
    assert_eq!(version(&env, "api").await, 0);
    env.write("apps/api/job.json", &job("nginx:1.28"));
    let rev = env.commit("json job: 1.28");
    env.wait_synced_healthy("api", Some(&rev)).await;
    assert_eq!(version(&env, "api").await, 1);
    let (_, submission) = env.nomad("/v1/job/api/submission?version=1").await;
    assert_eq!(submission["Format"], "json", "{submission}");
    env.shutdown().await;
}

#[tokio::test]
async fn hcl2_variables_from_app_yaml_and_var_files_reach_the_job() {
    let mut env = TestEnv::new().await;
    env.write(
        "apps/web/app.yaml",
        "name: web\nresources:\n  - nomad_job: { file: job.nomad.hcl }\n",
    );
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    env.write("apps/web/prod.vars.hcl", "image = \"nginx:1.28\"\n");
    env.commit("var file");
    env.start_drover().await;
    env.wait_synced_healthy("web", None).await;
    let image = |j: Option<Value>| {
        j.unwrap_or_default()["TaskGroups"][0]["Tasks"][0]["Config"]["image"].clone()
    };
    assert_eq!(
        image(env.job("web").await),
        "nginx:1.28",
        "the var file beside the jobspec wins over the default"
    );
    env.write(
        "apps/web/app.yaml",
        "name: web\nresources:\n  - nomad_job: { file: job.nomad.hcl, variables: { image: \"nginx:1.29\" } }\n",
    );
    let rev = env.commit("app.yaml variables win");
    env.wait_synced_healthy("web", Some(&rev)).await;
    assert_eq!(image(env.job("web").await), "nginx:1.29");
    env.shutdown().await;
}

#[tokio::test]
async fn failing_allocations_make_the_app_degraded_then_a_fix_in_git_heals_it() {
    let mut env = TestEnv::new().await;
    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    env.write(
        "apps/web/job.nomad.hcl",
        &web_jobspec("web", "nginx:broken"),
    );
    env.commit("a broken image");
    env.control("/nomad/job/web/fail-next", json!({})).await;
    env.start_drover().await;
    let status = env
        .wait_app("web", "Degraded", |s| {
            format!("{:?}", s.health) == "Degraded"
        })
        .await;
    assert_eq!(
        sync_of(&status),
        "Synced",
        "applied as Git says, but unhealthy"
    );
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    let rev = env.commit("fix the image");
    env.wait_synced_healthy("web", Some(&rev)).await;
    env.shutdown().await;
}

#[tokio::test]
async fn an_app_waits_for_the_apps_it_depends_on_to_be_healthy() {
    let mut env = TestEnv::new().await;
    env.write("apps/db/app.yaml", &app_yaml("db", ""));
    env.write(
        "apps/db/job.nomad.hcl",
        &web_jobspec("db", "postgres:broken"),
    );
    env.write("apps/web/app.yaml", &app_yaml("web", "depends_on: [db]\n"));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    env.commit("web depends on db");
    env.control("/nomad/job/db/fail-next", json!({})).await;
    env.start_drover().await;
    env.wait_app("db", "Degraded", |s| {
        format!("{:?}", s.health) == "Degraded"
    })
    .await;
    let web = env
        .wait_app("web", "waiting for db", |s| {
            s.phase.to_string().contains("waiting for dependency db")
        })
        .await;
    assert_eq!(sync_of(&web), "OutOfSync");
    assert!(
        env.job("web").await.is_none(),
        "web is not applied while db is unhealthy"
    );
    env.write("apps/db/job.nomad.hcl", &web_jobspec("db", "postgres:17"));
    env.commit("fix db");
    env.wait_synced_healthy("db", None).await;
    env.wait_synced_healthy("web", None).await;
    env.shutdown().await;
}

#[tokio::test]
async fn a_drained_node_is_not_drift_and_the_app_returns_to_healthy() {
    let mut env = TestEnv::new().await;
    env.sync_web_app("").await;
    let (_, allocs) = env.nomad("/v1/job/web/allocations").await;
    let node = allocs[0]["NodeName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let before = env.nomad_requests().await.len();
    env.control(&format!("/nomad/node/{node}/drain"), json!({}))
        .await;
    env.wait_app("web", "rescheduled and Healthy", |s| {
        sync_of(s) == "Synced" && format!("{:?}", s.health) == "Healthy"
    })
    .await;
    tokio::time::timeout(common::WAIT, async {
        loop {
            let (_, allocs) = env.nomad("/v1/job/web/allocations").await;
            let running_elsewhere = allocs
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["ClientStatus"] == "running" && a["NodeName"] != node.as_str());
            if running_elsewhere {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not rescheduled off {node}"));
    env.wait_synced_healthy("web", None).await;
    let requests = env.nomad_requests().await;
    assert_eq!(
        registers_of(&requests[before.min(requests.len())..]),
        0,
        "a reschedule is not drift"
    );
    assert_eq!(version(&env, "web").await, 0);
    env.shutdown().await;
}

#[tokio::test]
async fn drover_stops_fighting_a_change_that_keeps_undoing_it_until_a_manual_sync() {
    let mut env = TestEnv::new().await;
    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    let jobspec = web_jobspec("web", "nginx:1.27")
        .replace("min_healthy_time = \"1s\"", "min_healthy_time = \"20s\"");
    env.write("apps/web/job.nomad.hcl", &jobspec);
    env.commit("web");
    env.start_drover().await;
    env.wait_synced_healthy("web", None).await;

    // Another controller stops the job every time it runs again.
    let nomad = env.devstack.nomad_url();
    let http = env.http.clone();
    let fighter = tokio::spawn(async move {
        let mut stops = 0u32;
        for _ in 0..2000 {
            if let Ok(r) = http.get(format!("{nomad}/v1/job/web")).send().await
                && let Ok(job) = r.json::<Value>().await
                && job["Stop"] == false
            {
                let _ = http.delete(format!("{nomad}/v1/job/web")).send().await;
                stops += 1;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stops
    });
    let status = env
        .wait_app("web", "holding its heals", |s| {
            s.resources
                .iter()
                .any(|r| r.message.contains("not healing until Git changes"))
        })
        .await;
    assert_eq!(sync_of(&status), "OutOfSync");
    fighter.abort();
    let heals = env
        .nomad_requests()
        .await
        .iter()
        .filter(|(m, p)| m == "POST" && p == "/v1/jobs")
        .count();
    // The README promises three heals that never become healthy, then a hold.
    assert!(
        heals <= 1 + 3,
        "first sync plus at most three heals, saw {heals} registers"
    );
    // A manual sync applies Git again.
    let (code, _) = api_post(&env, "/api/v1/apps/web/sync", json!({})).await;
    assert_eq!(code, 202);
    env.wait_job("web", "running again", |j| {
        j.is_some_and(|j| j["Stop"] == false)
    })
    .await;
    env.shutdown().await;
}

/// Commit one app per name with `prune: true` and wait until all are Synced and Healthy.
async fn sync_prunable_apps(env: &mut TestEnv, names: &[&str]) {
    for name in names {
        env.write(
            &format!("apps/{name}/app.yaml"),
            &app_yaml(name, "sync: { prune: true }\n"),
        );
        env.write(
            &format!("apps/{name}/job.nomad.hcl"),
            &web_jobspec(name, "nginx:1.27"),
        );
    }
    env.commit("prunable apps");
    env.start_drover().await;
    for name in names {
        env.wait_synced_healthy(name, None).await;
    }
}

#[tokio::test]
async fn a_revision_with_no_apps_left_prunes_nothing_even_with_prune_on() {
    // One app only, so the share guard (more than one app at once) cannot be what saves it.
    let mut env = TestEnv::new().await;
    sync_prunable_apps(&mut env, &["solo"]).await;
    env.remove("apps/solo");
    let empty = env.commit("an empty apps/ folder");
    env.wait_fetched(&empty).await;
    env.wait_event("no loadable apps").await;
    assert!(
        env.job("solo").await.is_some_and(|j| j["Stop"] == false),
        "an empty revision must never delete"
    );
    // Git comes back: the app is still there and nothing was recreated.
    env.write(
        "apps/solo/app.yaml",
        &app_yaml("solo", "sync: { prune: true }\n"),
    );
    env.write(
        "apps/solo/job.nomad.hcl",
        &web_jobspec("solo", "nginx:1.27"),
    );
    let back = env.commit("solo is back");
    env.wait_synced_healthy("solo", Some(&back)).await;
    assert_eq!(version(&env, "solo").await, 0);
    env.shutdown().await;
}

#[tokio::test]
async fn a_revision_with_repo_level_errors_prunes_nothing_even_with_prune_on() {
    let mut env = TestEnv::new().await;
    sync_prunable_apps(&mut env, &["stays", "leaves"]).await;
    // One of two apps leaves (not more than max_prune_share) while the root drover.yaml is broken.
    env.remove("apps/leaves");
    env.write("drover.yaml", "defaults: [this is: not valid\n");
    let broken = env.commit("remove an app and break drover.yaml");
    env.wait_fetched(&broken).await;
    env.wait_event("no loadable apps or repo-level errors")
        .await;
    assert!(
        env.job("leaves").await.is_some_and(|j| j["Stop"] == false),
        "a revision with repo-level errors must not prune"
    );
    // Once drover.yaml is fixed the removal is trusted and the app is pruned.
    env.remove("drover.yaml");
    env.commit("fix drover.yaml");
    env.wait_job("leaves", "pruned once Git is healthy", |j| j.is_none())
        .await;
    assert!(env.job("stays").await.is_some());
    env.shutdown().await;
}

#[tokio::test]
async fn removing_most_of_an_apps_resources_at_once_is_refused() {
    let mut env = TestEnv::new().await;
    env.write(
        "apps/trio/app.yaml",
        "name: trio\nsync: { prune: true }\nresources:\n  - nomad_job: { file: a.nomad.hcl }\n  - nomad_job: { file: b.nomad.hcl }\n  - nomad_job: { file: c.nomad.hcl }\n",
    );
    for id in ["trio-a", "trio-b", "trio-c"] {
        let file = format!("apps/trio/{}.nomad.hcl", &id[5..]);
        env.write(&file, &web_jobspec(id, "nginx:1.27"));
    }
    env.commit("trio");
    env.start_drover().await;
    env.wait_synced_healthy("trio", None).await;

    // Two of three jobs leave the app at once: more than the default max_prune_share (50 %).
    env.write(
        "apps/trio/app.yaml",
        "name: trio\nsync: { prune: true }\nresources:\n  - nomad_job: { file: a.nomad.hcl }\n",
    );
    let rev = env.commit("drop b and c");
    let status = env
        .wait_app("trio", "prune refused", |s| {
            s.revision == rev && s.errors.iter().any(|e| e.contains("prune refused"))
        })
        .await;
    assert_ne!(sync_of(&status), "Synced", "{status:#?}");
    env.wait_full_cycle("trio").await;
    env.wait_full_cycle("trio").await;
    let refusals = env
        .drover
        .as_ref()
        .unwrap_or_else(|| panic!("running"))
        .ctx
        .store
        .events(Some("trio"), 100)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.message.contains("prune refused"))
        .count();
    assert_eq!(
        refusals, 1,
        "one event per refused revision, not one per cycle"
    );
    for id in ["trio-b", "trio-c"] {
        assert!(
            env.job(id).await.is_some_and(|j| j["Stop"] == false),
            "the per-app share guard keeps {id}"
        );
    }
    // One of two leaving (50 %, not more) is allowed.
    env.write(
        "apps/trio/app.yaml",
        "name: trio\nsync: { prune: true }\nresources:\n  - nomad_job: { file: a.nomad.hcl }\n  - nomad_job: { file: b.nomad.hcl }\n",
    );
    env.commit("keep b, drop c");
    env.wait_job("trio-c", "pruned", |j| j.is_none()).await;
    assert!(env.job("trio-b").await.is_some());
    env.shutdown().await;
}

#[tokio::test]
async fn a_removed_apps_volumes_are_deregistered_never_deleted_and_prevent_destroy_keeps_them() {
    let mut env = TestEnv::new().await;
    sync_prunable_apps(&mut env, &["other1", "other2"]).await;
    env.write(
        "apps/media/app.yaml",
        r#"name: media
sync: { prune: true }
resources:
  - nomad_job: { file: job.nomad.hcl }
  - csi_volume:
      id: media_cache
      plugin_id: glusterfs
      capabilities: [{ access_mode: single-node-writer, attachment_mode: file-system }]
  - csi_volume:
      id: media_config
      plugin_id: glusterfs
      capabilities: [{ access_mode: single-node-writer, attachment_mode: file-system }]
      prevent_destroy: true
"#,
    );
    env.write(
        "apps/media/job.nomad.hcl",
        &web_jobspec("media", "nginx:1.27"),
    );
    env.commit("media with two volumes");
    env.wait_synced_healthy("media", None).await;
    for id in ["media_cache", "media_config"] {
        assert_eq!(env.nomad(&format!("/v1/volume/csi/{id}")).await.0, 200);
    }

    env.remove("apps/media");
    env.commit("media leaves Git");
    env.wait_job("media", "purged", |j| j.is_none()).await;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while env.nomad("/v1/volume/csi/media_cache").await.0 != 404 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the unprotected volume is deregistered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.wait_full_cycle("other1").await;
    assert_eq!(
        env.nomad("/v1/volume/csi/media_config").await.0,
        200,
        "prevent_destroy keeps the volume registered"
    );
    let requests = env.nomad_requests().await;
    assert!(
        requests
            .iter()
            .any(|(m, p)| m == "DELETE" && p == "/v1/volume/csi/media_cache"),
        "deregistered: {requests:?}"
    );
    assert!(
        !requests.iter().any(|(m, p)| m == "DELETE"
            && p.starts_with("/v1/volume/csi/")
            && p.ends_with("/delete")),
        "never deleted in storage: {requests:?}"
    );
    assert!(
        !requests
            .iter()
            .any(|(m, p)| m == "DELETE" && p == "/v1/volume/csi/media_config"),
        "{requests:?}"
    );
    env.shutdown().await;
}
