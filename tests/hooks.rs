//! Sync hooks (`pre_sync`, `post_sync`, `sync_fail`; `once: true`): Nomad batch jobs drover
//! registers and awaits around a sync. Order is proven with the devstack's Raft indexes (an
//! allocation's completion index against the next job's creation index), never with sleeps.

mod common;

use common::{TestEnv, WAIT, all_diagnostics, app_yaml, load_dir, web_jobspec};
use drover::store::{SyncRecord, SyncResult};
use serde_json::Value;

/// A batch jobspec: the kind of job a hook runs.
fn batch_jobspec(id: &str) -> String {
    format!(
        r#"job "{id}" {{
  datacenters = ["dc1"]
  type        = "batch"

  group "run" {{
    task "run" {{
      driver = "docker"

      config {{
        image = "busybox:1.36"
      }}
    }}
  }}
}}
"#
    )
}

fn index(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// The allocations of a job.
async fn allocations(env: &TestEnv, job: &str) -> Vec<Value> {
    let (_, v) = env.nomad(&format!("/v1/job/{job}/allocations")).await;
    v.as_array().cloned().unwrap_or_default()
}

/// The app's sync history, newest first.
async fn history(env: &TestEnv, app: &str) -> Vec<SyncRecord> {
    let running = env.drover.as_ref().unwrap_or_else(|| panic!("no drover"));
    running
        .ctx
        .store
        .history(app, 50)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Wait until the app's history holds a finished sync satisfying `ok`.
async fn wait_sync(
    env: &TestEnv,
    app: &str,
    what: &str,
    ok: impl Fn(&SyncRecord) -> bool,
) -> SyncRecord {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let found = history(env, app).await;
        if let Some(sync) = found.iter().find(|s| ok(s)) {
            return sync.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no sync of {app} {what}: {found:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[test]
fn hooks_need_a_batch_job_and_a_valid_timeout_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let app = dir.path().join("apps/web");
    std::fs::create_dir_all(&app).unwrap_or_else(|e| panic!("{e}"));
    let yaml = app_yaml(
        "web",
        "hooks:\n  - { pre_sync: { nomad_job: { file: svc.nomad.hcl } } }\n  - { sync_fail: { nomad_job: { file: seed.nomad.hcl }, timeout: soon } }\n  - { post_sync: { nomad_job: { file: seed.nomad.hcl }, timeout: 0s } }\n  - { pre_sync: { nomad_job: { file: job.nomad.hcl } } }\n",
    );
    std::fs::write(app.join("app.yaml"), yaml).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(app.join("job.nomad.hcl"), web_jobspec("web", "nginx:1.27"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(app.join("seed.nomad.hcl"), batch_jobspec("seed"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(app.join("svc.nomad.hcl"), web_jobspec("svc", "nginx:1.27"))
        .unwrap_or_else(|e| panic!("{e}"));
    let diags = all_diagnostics(&load_dir(dir.path()));
    let shown: Vec<String> = diags.iter().map(ToString::to_string).collect();
    // The service job: at its job block (no `type`: Nomad's default is service).
    let service = diags
        .iter()
        .find(|d| d.message.contains("must be a batch job"))
        .unwrap_or_else(|| panic!("{shown:#?}"));
    assert_eq!(
        (service.file.as_str(), service.line),
        ("apps/web/svc.nomad.hcl", 6),
        "{shown:#?}"
    );
    assert!(service.message.contains("not service"), "{shown:#?}");
    let timeout = |field: &str| {
        diags
            .iter()
            .find(|d| d.field.as_deref() == Some(field))
            .unwrap_or_else(|| panic!("no error at {field}: {shown:#?}"))
    };
    assert_eq!(timeout("hooks[1].sync_fail.timeout").line, 6);
    assert_eq!(timeout("hooks[2].post_sync.timeout").line, 7);
    // The app's own job is not a hook's.
    let own = timeout("hooks[3].pre_sync.nomad_job");
    assert_eq!(own.line, 8);
    assert!(
        own.message.contains("also one of the app's resources"),
        "{shown:#?}"
    );
    assert_eq!(diags.len(), 4, "{shown:#?}");

    // A batch job's `type` that is not batch: the error is at the `type` line.
    std::fs::write(
        app.join("svc.nomad.hcl"),
        batch_jobspec("svc").replace("\"batch\"", "\"system\""),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let diags = all_diagnostics(&load_dir(dir.path()));
    let system = diags
        .iter()
        .find(|d| d.message.contains("not system"))
        .unwrap_or_else(|| panic!("{diags:#?}"));
    assert_eq!((system.line, system.field.as_deref()), (3, Some("type")));
}

#[tokio::test(flavor = "multi_thread")]
async fn pre_sync_completes_before_the_apps_job_is_registered() {
    let mut env = TestEnv::new().await;
    env.write("apps/web/seed.nomad.hcl", &batch_jobspec("seed"));
    let rev = env
        .sync_web_app("hooks:\n  - { pre_sync: { nomad_job: { file: seed.nomad.hcl } } }\n")
        .await;
    let web = env.job("web").await.unwrap_or_else(|| panic!("no web job"));
    let seed = env
        .job("seed")
        .await
        .unwrap_or_else(|| panic!("no seed job"));
    assert_eq!(seed["Meta"]["drover.app"], "web", "drover's owner meta");
    assert_eq!(seed["Namespace"], "default");
    let allocs = allocations(&env, "seed").await;
    assert_eq!(allocs.len(), 1, "{allocs:#?}");
    assert_eq!(allocs[0]["ClientStatus"], "complete");
    // The hook's allocation completed (its last change) before the web job was created.
    assert!(
        index(&allocs[0], "ModifyIndex") < index(&web, "CreateIndex"),
        "seed alloc {} vs web job {}",
        allocs[0],
        web
    );
    // And in the request log: the hook was awaited before the last register (the web job).
    let log = env.nomad_requests().await;
    let awaited = log
        .iter()
        .position(|(m, p)| m == "GET" && p == "/v1/job/seed/allocations")
        .unwrap_or_else(|| panic!("{log:?}"));
    let last_register = log
        .iter()
        .rposition(|(m, p)| m == "POST" && p == "/v1/jobs")
        .unwrap_or_else(|| panic!("{log:?}"));
    assert!(awaited < last_register, "{log:?}");
    let sync = wait_sync(&env, "web", "succeeded", |s| {
        s.revision == rev && s.result == Some(SyncResult::Succeeded)
    })
    .await;
    assert_eq!(
        sync.changes,
        [
            "create nomad_job/default/web",
            "run pre_sync hook nomad_job/default/seed"
        ]
    );
    env.wait_event("pre_sync hook nomad_job/default/seed completed")
        .await;

    // A resync without changes runs no hook.
    env.wait_full_cycle("web").await;
    assert_eq!(allocations(&env, "seed").await.len(), 1);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_pre_sync_blocks_the_sync_shows_why_and_runs_sync_fail() {
    let mut env = TestEnv::new().await;
    env.write("apps/web/check.nomad.hcl", &batch_jobspec("check"));
    env.write("apps/web/notify.nomad.hcl", &batch_jobspec("notify"));
    let hooks = "hooks:\n  - { pre_sync: { nomad_job: { file: check.nomad.hcl } } }\n  - { sync_fail: { nomad_job: { file: notify.nomad.hcl } } }\n";
    env.sync_web_app(hooks).await;
    assert!(
        env.job("notify").await.is_none(),
        "no failure, no sync_fail"
    );
    let before = env.job("web").await.unwrap_or_else(|| panic!("no web"));

    env.control("/nomad/job/check/fail-next", serde_json::json!({}))
        .await;
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.28"));
    let rev = env.commit("web 1.28");
    let status = env
        .wait_app("web", "failed by its pre_sync hook", |s| {
            s.errors
                .iter()
                .any(|e| e.contains("pre_sync hook nomad_job/default/check failed"))
        })
        .await;
    let shown = status.errors.join("\n");
    assert!(shown.contains("allocation"), "{shown}");
    assert!(shown.contains("failed (failed tasks: run)"), "{shown}");
    let failed = wait_sync(&env, "web", "failed", |s| {
        s.revision == rev && s.result == Some(SyncResult::Failed)
    })
    .await;
    // No write was made by the failed sync; sync_fail ran.
    assert_eq!(
        failed.changes,
        ["run sync_fail hook nomad_job/default/notify"],
        "{failed:#?}"
    );
    assert!(
        failed
            .message
            .as_deref()
            .is_some_and(|m| m.contains("pre_sync hook nomad_job/default/check failed")),
        "{failed:#?}"
    );
    let notify = allocations(&env, "notify").await;
    assert_eq!(notify.len(), 1, "{notify:#?}");
    assert_eq!(notify[0]["ClientStatus"], "complete");
    env.wait_event("pre_sync hook nomad_job/default/check failed")
        .await;
    // The API's events show the hook runs.
    let events: Value = env
        .http
        .get(format!("{}/api/v1/events", env.drover_url()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let text = events.to_string();
    for needle in [
        "pre_sync hook nomad_job/default/check failed: allocation",
        "sync_fail hook nomad_job/default/notify completed",
        "pre_sync hook nomad_job/default/check completed",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }

    // The retry runs the hook again (the fault was for one run), which lets the sync through.
    env.wait_synced_healthy("web", Some(&rev)).await;
    let web = env.job("web").await.unwrap_or_else(|| panic!("no web"));
    assert!(web.to_string().contains("nginx:1.28"), "{web}");
    // The update was registered only after the failed run had failed: the failed sync wrote
    // nothing, the previous version kept running until the retry's hook passed.
    let check = allocations(&env, "check").await;
    let bad = check
        .iter()
        .find(|a| a["ClientStatus"] == "failed")
        .unwrap_or_else(|| panic!("{check:#?}"));
    assert!(
        index(bad, "ModifyIndex") < index(&web, "JobModifyIndex"),
        "failed hook {bad} vs web {web}"
    );
    assert!(index(&before, "JobModifyIndex") < index(bad, "CreateIndex"));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn post_sync_runs_after_the_app_is_healthy() {
    let mut env = TestEnv::new().await;
    env.write("apps/web/after.nomad.hcl", &batch_jobspec("after"));
    env.sync_web_app("hooks:\n  - { post_sync: { nomad_job: { file: after.nomad.hcl } } }\n")
        .await;
    env.wait_event("post_sync hook nomad_job/default/after completed")
        .await;
    let (_, deployment) = env.nomad("/v1/job/web/deployment").await;
    assert_eq!(deployment["Status"], "successful", "{deployment}");
    let after = env.job("after").await.unwrap_or_else(|| panic!("no after"));
    // Registered only once the web job's deployment had succeeded (it was Healthy).
    assert!(
        index(&deployment, "ModifyIndex") < index(&after, "CreateIndex"),
        "deployment {deployment} vs hook job {after}"
    );
    assert_eq!(
        allocations(&env, "after").await[0]["ClientStatus"],
        "complete"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_once_hook_runs_once_across_a_restart_and_a_new_commit_and_a_failed_one_is_retried() {
    let mut env = TestEnv::new().await;
    env.write("apps/web/seed.nomad.hcl", &batch_jobspec("seed"));
    // The first run fails: not recorded, so the retry runs it again.
    env.control("/nomad/job/seed/fail-next", serde_json::json!({}))
        .await;
    let first = env
        .sync_web_app(
            "hooks:\n  - { pre_sync: { nomad_job: { file: seed.nomad.hcl }, once: true } }\n",
        )
        .await;
    let runs = allocations(&env, "seed").await;
    let statuses: Vec<&Value> = runs.iter().map(|a| &a["ClientStatus"]).collect();
    assert_eq!(statuses.len(), 2, "a failed run and its retry: {runs:#?}");
    assert!(
        statuses.contains(&&Value::from("failed")) && statuses.contains(&&Value::from("complete"))
    );
    let version = env.job("seed").await.unwrap_or_else(|| panic!("no seed"))["Version"].clone();
    wait_sync(&env, "web", "with the hook", |s| {
        s.revision == first
            && s.result == Some(SyncResult::Succeeded)
            && s.changes
                .contains(&"run pre_sync hook nomad_job/default/seed".to_string())
    })
    .await;

    // A restart with the same store, then a new commit: the app syncs, the seed does not run.
    env.stop_drover().await;
    env.start_drover().await;
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.28"));
    let second = env.commit("web 1.28");
    env.wait_synced_healthy("web", Some(&second)).await;
    let sync = wait_sync(&env, "web", "at the new commit", |s| {
        s.revision == second && s.result == Some(SyncResult::Succeeded)
    })
    .await;
    assert_eq!(sync.changes, ["update nomad_job/default/web"]);
    assert_eq!(allocations(&env, "seed").await.len(), 2, "not run again");
    let seed = env.job("seed").await.unwrap_or_else(|| panic!("no seed"));
    assert_eq!(seed["Version"], version, "not registered again");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_due_post_sync_survives_a_restart_before_the_app_is_healthy() {
    let mut env = TestEnv::new().await;
    env.write("apps/web/after.nomad.hcl", &batch_jobspec("after"));
    env.write(
        "apps/web/app.yaml",
        &app_yaml(
            "web",
            "hooks:\n  - { post_sync: { nomad_job: { file: after.nomad.hcl } } }\n",
        ),
    );
    // Slow to turn healthy (300 s of simulated time, 3 s here): drover restarts before.
    let slow = web_jobspec("web", "nginx:1.27")
        .replace("min_healthy_time = \"1s\"", "min_healthy_time = \"300s\"")
        .replace("healthy_deadline = \"30s\"", "healthy_deadline = \"900s\"");
    env.write("apps/web/job.nomad.hcl", &slow);
    let rev = env.commit("web with a post_sync hook");
    env.start_drover().await;
    wait_sync(&env, "web", "that created the job", |s| {
        s.revision == rev && s.changes == ["create nomad_job/default/web"]
    })
    .await;
    env.stop_drover().await;
    assert!(env.job("after").await.is_none(), "not run before Healthy");

    env.start_drover().await;
    env.wait_event("post_sync hook nomad_job/default/after completed")
        .await;
    let (_, deployment) = env.nomad("/v1/job/web/deployment").await;
    let after = env.job("after").await.unwrap_or_else(|| panic!("no after"));
    assert!(index(&deployment, "ModifyIndex") < index(&after, "CreateIndex"));
    env.shutdown().await;
}
