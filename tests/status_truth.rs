//! End-to-end tests that the status drover shows (API, page, `drover status`, history, events)
//! says what is true: removed apps, refused prunes, writes in flight, scaled-to-zero jobs,
//! refused rollbacks, a branch that moved backwards, self-heal writes and broken revisions.

mod common;

use std::collections::BTreeMap;

use common::{TestEnv, WAIT, app_yaml, web_jobspec};
use drover::controller::AppStatus;
use reqwest::Method;
use serde_json::{Value, json};

fn sync_of(s: &AppStatus) -> String {
    format!("{:?}", s.sync)
}

fn health_of(s: &AppStatus) -> String {
    format!("{:?}", s.health)
}

fn web_addr(env: &TestEnv) -> std::net::SocketAddr {
    env.drover
        .as_ref()
        .map(|d| d.web_addr)
        .unwrap_or_else(|| panic!("drover is not running"))
}

async fn api_get(env: &TestEnv, path: &str) -> (u16, String) {
    let r = env
        .http
        .get(format!("http://{}{path}", web_addr(env)))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let code = r.status().as_u16();
    (code, r.text().await.unwrap_or_default())
}

async fn api_json(env: &TestEnv, path: &str) -> Value {
    let (code, body) = api_get(env, path).await;
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

async fn api_post(env: &TestEnv, path: &str, body: Value) -> (u16, Value) {
    let r = env
        .http
        .post(format!("http://{}{path}", web_addr(env)))
        .json(&body)
        .bearer_auth(common::TEST_API_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

/// Wait until the whole status map satisfies `ok`, or panic with the map last seen.
async fn wait_statuses(
    env: &TestEnv,
    what: &str,
    ok: impl Fn(&BTreeMap<String, AppStatus>) -> bool,
) {
    let running = env
        .drover
        .as_ref()
        .unwrap_or_else(|| panic!("drover is not running"));
    let mut rx = running.ctx.statuses.subscribe();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if ok(&rx.borrow_and_update()) {
            return;
        }
        tokio::select! {
            _ = rx.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {
                panic!("timed out waiting for {what}; statuses: {:#?}", rx.borrow());
            }
        }
    }
}

/// Wait until the repo-level status (`/api/v1/status`) has a problem containing `needle`.
async fn wait_repo_problem(env: &TestEnv, needle: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (code, body) = api_get(env, "/api/v1/status").await;
        if code == 200 {
            let status: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let found = status["problems"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p.as_str().is_some_and(|p| p.contains(needle)));
            if found {
                return status;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for a repo problem containing {needle:?}; last: {code} {body}"
        );
        // The repo status is served over HTTP only; poll it.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn events(env: &TestEnv) -> Vec<drover::store::EventRecord> {
    env.drover
        .as_ref()
        .unwrap_or_else(|| panic!("drover is not running"))
        .ctx
        .store
        .events(None, 200)
        .await
        .unwrap_or_default()
}

async fn history(env: &TestEnv, app: &str) -> Vec<drover::store::SyncRecord> {
    env.drover
        .as_ref()
        .unwrap_or_else(|| panic!("drover is not running"))
        .ctx
        .store
        .history(app, 50)
        .await
        .unwrap_or_default()
}

/// `drover status` against the running server; its stdout.
async fn drover_status(env: &TestEnv) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["status", "--server", &format!("http://{}", web_addr(env))])
        .output()
        .await
        .unwrap_or_else(|e| panic!("drover status: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "drover status failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn write_web_like(env: &TestEnv, name: &str, extra: &str) {
    env.write(&format!("apps/{name}/app.yaml"), &app_yaml(name, extra));
    env.write(
        &format!("apps/{name}/job.nomad.hcl"),
        &web_jobspec(name, "nginx:1.27"),
    );
}

#[tokio::test]
async fn an_invalid_app_removed_from_git_leaves_the_status_list() {
    let mut env = TestEnv::new().await;
    write_web_like(&env, "good", "");
    env.write("apps/broken/app.yaml", "name: broken\nresources: [\n");
    env.commit("a good and a broken app");
    env.start_drover().await;
    env.wait_synced_healthy("good", None).await;
    env.wait_app("broken", "InvalidSpec", |s| sync_of(s) == "InvalidSpec")
        .await;

    env.remove("apps/broken");
    let rev = env.commit("remove the broken app");
    env.wait_synced_healthy("good", Some(&rev)).await;
    // drover never owned anything for it: nothing to prune, nothing to show.
    wait_statuses(&env, "the broken app to leave the list", |all| {
        !all.contains_key("broken")
    })
    .await;
    let apps = api_json(&env, "/api/v1/apps").await;
    let names: Vec<&str> = apps
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["good"], "{apps}");
    let (_, page) = api_get(&env, "/").await;
    assert!(
        page.contains(r#"data-app="good""#) && !page.contains(r#"data-app="broken""#),
        "the page lists it no more: {page}"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn a_refused_prune_of_removed_apps_is_shown_on_the_apps_the_api_the_page_and_the_cli() {
    let mut env = TestEnv::new().await;
    for name in ["keep", "gone1", "gone2", "gone3"] {
        write_web_like(&env, name, "sync: { prune: true }\n");
    }
    env.commit("four apps");
    env.start_drover().await;
    for app in ["keep", "gone1", "gone2", "gone3"] {
        env.wait_synced_healthy(app, None).await;
    }
    for app in ["gone1", "gone2", "gone3"] {
        env.remove(&format!("apps/{app}"));
    }
    let rev = env.commit("remove three of four apps");
    env.wait_synced_healthy("keep", Some(&rev)).await;
    for app in ["gone1", "gone2", "gone3"] {
        let status = env
            .wait_app(app, "shown as removed, prune refused", |s| {
                s.phase.to_string().contains("removed from Git")
                    && s.phase.to_string().contains("prune refused")
            })
            .await;
        assert_eq!(sync_of(&status), "OutOfSync", "{status:#?}");
        assert!(
            status.errors.iter().any(|e| e.contains("prune refused")),
            "{status:#?}"
        );
        assert!(env.job(app).await.is_some(), "the guard kept {app}");
    }
    let repo = wait_repo_problem(&env, "prune refused").await;
    assert_eq!(repo["revision"], rev.as_str(), "{repo}");
    let (_, page) = api_get(&env, "/").await;
    assert!(
        page.contains(r#"<div id="banner" role="alert"><ul><li>"#)
            && page.contains("prune refused"),
        "the page shows a banner: {page}"
    );
    let cli = drover_status(&env).await;
    assert!(cli.contains("prune refused"), "{cli}");
    assert!(cli.contains("removed from Git"), "{cli}");
    env.shutdown().await;
}

#[tokio::test]
async fn an_invalid_head_revision_is_a_repo_problem_and_drover_status_prints_it_with_pins_and_git_errors()
 {
    let mut env = TestEnv::new().await;
    write_web_like(&env, "web", "");
    let v1 = env.commit("web");
    env.start_drover().await;
    env.wait_synced_healthy("web", Some(&v1)).await;
    env.write("drover.yaml", "namespace: default\nbogus_key: 1\n");
    let v2 = env.commit("a root drover.yaml with an unknown key");
    let repo = wait_repo_problem(&env, "bogus_key").await;
    assert_eq!(repo["revision"], v2.as_str(), "{repo}");
    assert!(
        repo["problems"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p.as_str().is_some_and(|p| p.contains(&v2[..12]))),
        "the problem names the revision: {repo}"
    );
    let (_, page) = api_get(&env, "/").await;
    assert!(
        page.contains(r#"<div id="banner" role="alert"><ul><li>"#) && page.contains("bogus_key"),
        "{page}"
    );

    // A pin and a Git fetch error are printed too.
    let (code, body) = api_post(&env, "/api/v1/apps/web/rollback", json!({ "revision": v1 })).await;
    assert_eq!(code, 200, "{body}");
    env.wait_app("web", "pinned", |s| {
        s.pinned.as_deref() == Some(v1.as_str())
    })
    .await;
    let moved = env.repo.with_extension("moved");
    std::fs::rename(&env.repo, &moved).unwrap_or_else(|e| panic!("{e}"));
    let mut source = env
        .drover
        .as_ref()
        .map(|d| d.source.subscribe())
        .unwrap_or_else(|| panic!("running"));
    tokio::time::timeout(WAIT, source.wait_for(|s| s.last_error.is_some()))
        .await
        .unwrap_or_else(|_| panic!("fetch error never reported"))
        .unwrap_or_else(|e| panic!("{e}"));
    let cli = drover_status(&env).await;
    assert!(cli.contains(&format!("pinned {}", &v1[..12])), "{cli}");
    assert!(cli.contains("bogus_key"), "{cli}");
    assert!(cli.contains("no repository at this path"), "{cli}");
    std::fs::rename(&moved, &env.repo).unwrap_or_else(|e| panic!("{e}"));
    env.shutdown().await;
}

#[tokio::test]
async fn an_app_whose_prune_share_is_refused_is_out_of_sync_with_the_reason() {
    let mut env = TestEnv::new().await;
    env.write(
        "apps/media/app.yaml",
        "name: media\nsync: { prune: true }\nresources:\n  - nomad_job: { file: a.nomad.hcl }\n  - nomad_job: { file: b.nomad.hcl }\n  - nomad_job: { file: c.nomad.hcl }\n",
    );
    for job in ["a", "b", "c"] {
        env.write(
            &format!("apps/media/{job}.nomad.hcl"),
            &web_jobspec(&format!("media-{job}"), "nginx:1.27"),
        );
    }
    env.commit("media with three jobs");
    env.start_drover().await;
    env.wait_synced_healthy("media", None).await;
    env.write(
        "apps/media/app.yaml",
        "name: media\nsync: { prune: true }\nresources:\n  - nomad_job: { file: a.nomad.hcl }\n",
    );
    let rev = env.commit("drop two of three jobs");
    let status = env
        .wait_app("media", "prune refused", |s| {
            s.revision == rev && s.phase.to_string().contains("prune refused")
        })
        .await;
    assert_eq!(sync_of(&status), "OutOfSync", "{status:#?}");
    assert!(
        status.errors.iter().any(|e| e.contains("prune refused")),
        "{status:#?}"
    );
    assert!(env.job("media-b").await.is_some());
    env.shutdown().await;
}

#[tokio::test]
async fn a_stalled_register_shows_the_sync_in_flight_not_synced_at_the_old_revision() {
    let mut env = TestEnv::new().await;
    let v1 = env.sync_web_app("").await;
    // The next register is held for 3 s (the client's timeout is 5 s).
    env.control(
        "/faults",
        json!({"system": "nomad", "method": "POST", "path": "^/v1/jobs$", "kind": "latency", "latency_ms": 3000, "count": 1}),
    )
    .await;
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.28"));
    let v2 = env.commit("nginx 1.28");
    let status = env
        .wait_app("web", "syncing v2", |s| {
            s.revision == v2 && s.phase.to_string().starts_with("syncing")
        })
        .await;
    assert_eq!(sync_of(&status), "OutOfSync", "{status:#?}");
    assert!(status.phase.to_string().contains(&v2[..12]), "{status:#?}");
    // Still in flight: the register has not landed.
    let job = env.job("web").await.unwrap_or_default();
    assert_eq!(job["Version"], 0, "shown before the write finished");
    assert_eq!(
        status.last_sync.as_ref().map(|l| l.revision.clone()),
        Some(v1),
        "the last applied revision is still shown"
    );
    env.wait_synced_healthy("web", Some(&v2)).await;
    env.shutdown().await;
}

#[tokio::test]
async fn a_job_scaled_to_zero_is_healthy() {
    let mut env = TestEnv::new().await;
    env.write("apps/idle/app.yaml", &app_yaml("idle", ""));
    env.write(
        "apps/idle/job.nomad.hcl",
        &web_jobspec("idle", "nginx:1.27")
            .replace("  group \"web\" {\n", "  group \"web\" {\n    count = 0\n"),
    );
    let rev = env.commit("a job with count = 0");
    env.start_drover().await;
    let status = env.wait_synced_healthy("idle", Some(&rev)).await;
    assert!(
        status
            .resources
            .iter()
            .any(|r| r.message.contains("scaled to zero")),
        "{status:#?}"
    );
    let job = env.job("idle").await.unwrap_or_default();
    assert_eq!(job["Status"], "dead", "Nomad calls it dead: {job}");
    env.shutdown().await;
}

#[tokio::test]
async fn rollback_to_a_revision_without_the_app_or_with_it_invalid_is_refused() {
    let mut env = TestEnv::new().await;
    write_web_like(&env, "other", "");
    let without = env.commit("only another app");
    write_web_like(&env, "web", "");
    env.commit("web");
    env.write("apps/web/job.nomad.hcl", "job \"web\" {\n  group \"g\" {\n");
    let broken = env.commit("web: broken jobspec");
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.28"));
    let fixed = env.commit("web: fixed");
    env.start_drover().await;
    env.wait_synced_healthy("web", Some(&fixed)).await;

    let (code, body) = api_post(
        &env,
        "/api/v1/apps/web/rollback",
        json!({ "revision": &without[..8] }),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    let message = body["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("has no app web") && message.contains(&without[..12]),
        "{body}"
    );
    let (code, body) = api_post(
        &env,
        "/api/v1/apps/web/rollback",
        json!({ "revision": broken }),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|m| m.contains("invalid") && m.contains("job.nomad.hcl")),
        "{body}"
    );
    let pinned = env
        .drover
        .as_ref()
        .map(|d| d.ctx.store.clone())
        .unwrap_or_else(|| panic!("running"))
        .pinned("web")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pinned, None, "nothing was pinned");
    env.shutdown().await;
}

#[tokio::test]
async fn a_branch_that_moved_backwards_is_applied_with_a_warning_naming_both_commits() {
    let mut env = TestEnv::new().await;
    let v1 = env.sync_web_app("").await;
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.28"));
    let v2 = env.commit("nginx 1.28");
    env.wait_synced_healthy("web", Some(&v2)).await;

    // A force-push of the branch back to v1.
    let git = git2::Repository::open(&env.repo).unwrap_or_else(|e| panic!("{e}"));
    let oid = git2::Oid::from_str(&v1).unwrap_or_else(|e| panic!("{e}"));
    git.reference(
        &format!("refs/heads/{}", drover::source::SEED_BRANCH),
        oid,
        true,
        "force-push back to v1",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    env.wait_synced_healthy("web", Some(&v1)).await;
    let job = env.job("web").await.unwrap_or_default();
    assert_eq!(
        job["TaskGroups"][0]["Tasks"][0]["Config"]["image"], "nginx:1.27",
        "applied"
    );
    let events = events(&env).await;
    let warning = events
        .iter()
        .find(|e| e.level == "warning" && e.message.contains("backwards"))
        .unwrap_or_else(|| panic!("no warning event: {events:#?}"));
    assert!(
        warning.message.contains(&v1[..12]) && warning.message.contains(&v2[..12]),
        "{warning:?}"
    );
    let api = api_json(&env, "/api/v1/events").await;
    assert!(
        api.as_array().into_iter().flatten().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("backwards"))),
        "{api}"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn a_write_that_heals_drift_is_recorded_as_self_heal() {
    let mut env = TestEnv::new().await;
    env.sync_web_app("sync: { self_heal: true }\n").await;
    let (code, _) = env.nomad_send(Method::DELETE, "/v1/job/web", None).await;
    assert_eq!(code, 200);
    env.wait_job("web", "stop undone", |j| {
        j.is_some_and(|j| j["Stop"] == false)
    })
    .await;
    env.wait_synced_healthy("web", None).await;
    let history = history(&env, "web").await;
    let triggers: Vec<&str> = history.iter().map(|h| h.trigger.as_str()).collect();
    // Newest first: the heal, then the first sync from Git.
    assert_eq!(triggers.first(), Some(&"self-heal"), "{history:#?}");
    assert_eq!(triggers.last(), Some(&"auto"), "{history:#?}");
    env.shutdown().await;
}

#[tokio::test]
async fn a_revision_that_fails_to_parse_keeps_showing_the_live_health_and_resources() {
    let mut env = TestEnv::new().await;
    env.sync_web_app("").await;
    env.write("apps/web/job.nomad.hcl", "job \"web\" {\n  group \"g\" {\n");
    let rev = env.commit("web: broken jobspec");
    let status = env
        .wait_app("web", "InvalidSpec at the broken revision", |s| {
            s.revision == rev && sync_of(s) == "InvalidSpec"
        })
        .await;
    assert_eq!(health_of(&status), "Healthy", "{status:#?}");
    let job = status
        .resources
        .iter()
        .find(|r| r.id == "nomad_job/default/web")
        .unwrap_or_else(|| panic!("the running job is still listed: {status:#?}"));
    assert_eq!(format!("{:?}", job.health), "Healthy", "{status:#?}");
    assert!(
        status.errors.iter().any(|e| e.contains("job.nomad.hcl")),
        "{status:#?}"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn an_app_removed_from_git_whose_job_is_kept_says_removed_and_why() {
    let mut env = TestEnv::new().await;
    for (name, extra) in [
        ("a1", ""),
        ("a2", ""),
        ("a3", ""),
        ("kept", "sync: { prune: false }\n"),
        ("adopted", "sync: { prune: true }\n"),
    ] {
        write_web_like(&env, name, extra);
    }
    env.commit("five apps");
    env.start_drover().await;
    for app in ["a1", "a2", "a3", "kept", "adopted"] {
        env.wait_synced_healthy(app, None).await;
    }
    env.stop_drover().await;
    // Taken over by hand: the ownership meta names someone else, so the prune must keep it.
    let mut taken = env.job("adopted").await.unwrap_or_default();
    taken["Meta"]["drover.app"] = json!("someone-else");
    let (code, body) = env
        .nomad_send(Method::POST, "/v1/jobs", Some(json!({ "Job": taken })))
        .await;
    assert_eq!(code, 200, "{body}");
    env.remove("apps/kept");
    env.remove("apps/adopted");
    let rev = env.commit("remove two of five apps");
    env.start_drover().await;
    let kept = env
        .wait_app("kept", "removed, prune off", |s| {
            s.revision == rev && s.phase == "removed from Git (prune off)"
        })
        .await;
    assert_eq!(sync_of(&kept), "OutOfSync");
    let adopted = env
        .wait_app("adopted", "removed, not pruned", |s| {
            s.revision == rev && s.phase == "removed from Git (not pruned)"
        })
        .await;
    assert_eq!(sync_of(&adopted), "OutOfSync");
    assert!(
        adopted
            .errors
            .iter()
            .any(|e| e.contains("nomad_job/default/adopted") && e.contains("kept")),
        "{adopted:#?}"
    );
    assert!(env.job("adopted").await.is_some());
    env.shutdown().await;
}

#[tokio::test]
async fn a_register_that_times_out_shows_sync_failed_at_the_new_revision_until_a_retry_lands() {
    let mut env = TestEnv::new().await;
    env.sync_web_app("").await;
    // The next register never answers; drover's client gives up after its 5 s timeout.
    env.control(
        "/faults",
        json!({"system": "nomad", "method": "POST", "path": "^/v1/jobs$", "kind": "timeout", "count": 1}),
    )
    .await;
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.28"));
    let v2 = env.commit("nginx 1.28");
    env.wait_app("web", "syncing v2", |s| {
        s.revision == v2 && s.phase.to_string().starts_with("syncing")
    })
    .await;
    let failed = env
        .wait_app("web", "sync failed at v2", |s| {
            s.revision == v2 && s.phase == "sync failed"
        })
        .await;
    assert_eq!(sync_of(&failed), "OutOfSync", "{failed:#?}");
    assert!(!failed.errors.is_empty(), "{failed:#?}");
    env.wait_synced_healthy("web", Some(&v2)).await;
    env.shutdown().await;
}
