//! The `drover` binary: exit codes and output of validate, plan, status and the demo.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{TestEnv, app_yaml, web_jobspec};

fn drover() -> Command {
    Command::new(env!("CARGO_BIN_EXE_drover"))
}

fn desired_state() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("desired-state")
}

#[test]
fn validate_accepts_the_example_repo_and_exits_zero() {
    let out = drover()
        .args(["validate"])
        .arg(desired_state())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok    overseerr"), "{stdout}");
}

#[test]
fn validate_lists_every_error_with_file_line_and_exits_one() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let app = dir.path().join("apps/web");
    std::fs::create_dir_all(&app).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        app.join("app.yaml"),
        "name: web\nsyncc: {}\nresources:\n  - nomad_job: { file: missing.nomad.hcl }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = drover()
        .arg("validate")
        .arg(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("apps/web/app.yaml:2:"),
        "names file and line: {stdout}"
    );
    assert!(stdout.contains("sync"), "suggests the valid key: {stdout}");
    assert!(
        stdout.contains("missing.nomad.hcl"),
        "the second error too: {stdout}"
    );
}

#[test]
fn every_command_has_help() {
    for cmd in [
        "demo", "serve", "devstack", "validate", "plan", "sync", "status", "history", "rollback",
        "unpin",
    ] {
        let out = drover()
            .args([cmd, "--help"])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.status.success(), "{cmd} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{cmd}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_exits_two_with_changes_and_zero_once_synced() {
    let mut env = TestEnv::new().await;
    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    env.commit("web");
    let plan = |env: &TestEnv| {
        drover()
            .arg("plan")
            .arg(&env.repo)
            .env("NOMAD_ADDR", env.devstack.nomad_url())
            .env_remove("NOMAD_TOKEN")
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let out = tokio::task::block_in_place(|| plan(&env));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("create nomad_job/default/web"), "{stdout}");
    assert!(
        stdout.contains("+ Job: \"web\""),
        "nomad job plan style diff: {stdout}"
    );

    env.start_drover().await;
    env.wait_synced_healthy("web", None).await;
    let out = tokio::task::block_in_place(|| plan(&env));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "no changes once synced: {stdout}"
    );
    env.shutdown().await;
}

/// The newcomer's command: the demo comes up Synced and Healthy and applies a new commit.
#[tokio::test(flavor = "multi_thread")]
async fn demo_shows_the_media_stack_synced_and_healthy_and_picks_up_a_commit() {
    let work = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // Port 0: the demo binds a free port itself and prints its status page URL.
    let work_dir = work.path().display().to_string();
    let demo = common::start_demo(
        work.path(),
        work.path(),
        &["--poll-interval", "300ms", "--work-dir", &work_dir],
    )
    .await;
    let base = demo.url.trim_end_matches('/').to_string();
    drover::providers::install_crypto_provider();
    let client = reqwest::Client::new();
    let apps = |body: &serde_json::Value, want_rev: Option<&str>| -> bool {
        let list = body.as_array().cloned().unwrap_or_default();
        // desired-state/'s nine apps (tests/media_stack.rs lists them).
        list.len() == 9
            && list.iter().all(|a| {
                a["sync"] == "Synced"
                    && a["health"] == "Healthy"
                    && want_rev.is_none_or(|r| a["revision"] == r)
            })
    };
    let wait = |want_rev: Option<String>| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
            loop {
                if let Ok(r) = client.get(format!("{base}/api/v1/apps")).send().await
                    && let Ok(body) = r.json::<serde_json::Value>().await
                {
                    if apps(&body, want_rev.as_deref()) {
                        return body;
                    }
                    if tokio::time::Instant::now() > deadline {
                        return body;
                    }
                } else if tokio::time::Instant::now() > deadline {
                    return serde_json::Value::Null;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    };
    let body = wait(None).await;
    assert!(apps(&body, None), "demo apps not Synced+Healthy: {body:#}");
    let page = client
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .unwrap_or_default();
    assert!(page.contains("overseerr"), "status page lists the apps");

    // A commit made with plain git in the printed repo is applied within a poll.
    let repo = work.path().join("repo");
    let app_yaml = repo.join("apps/overseerr/app.yaml");
    let text = std::fs::read_to_string(&app_yaml).unwrap_or_default();
    assert!(text.contains("TZ: Europe/London"), "{text}");
    std::fs::write(&app_yaml, text.replacen("TZ: Europe/London", "TZ: UTC", 1))
        .unwrap_or_else(|e| panic!("{e}"));
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["commit", "-am", "overseerr: UTC"]);
    let head = git(&["rev-parse", "HEAD"]);
    let body = wait(Some(head.clone())).await;
    assert!(apps(&body, Some(&head)), "new commit not applied: {body:#}");
    drop(demo);
}

#[test]
fn the_readme_seed_example_is_a_valid_seed() {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap_or_else(|e| panic!("{e}"));
    let start = readme
        .find("```yaml\nnodes:")
        .unwrap_or_else(|| panic!("no seed example in README"));
    let body = &readme[start + "```yaml\n".len()..];
    let end = body.find("```").unwrap_or(body.len());
    let seed = drover_devstack::seed::Seed::from_yaml(&body[..end])
        .unwrap_or_else(|e| panic!("README seed: {e}"));
    assert_eq!(seed.nodes.map(|n| n.len()), Some(1));
    assert_eq!(seed.vault_secrets.len(), 1);
    assert_eq!(seed.acl_tokens.len(), 1);
}

/// Run the binary against a running drover (`--server`), off the async runtime's threads.
async fn cli(env: &TestEnv, args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = drover();
    command
        .args(args)
        .env("DROVER_ADDR", env.drover_url())
        .env("DROVER_API_TOKEN", common::TEST_API_TOKEN);
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn status_sync_history_rollback_and_unpin_drive_a_running_drover() {
    let mut env = TestEnv::new().await;
    env.write(
        "apps/web/app.yaml",
        &app_yaml("web", "sync: { auto: false }\n"),
    );
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.26"));
    let v1 = env.commit("v1");
    env.start_drover().await;
    env.wait_app("web", "OutOfSync", |s| {
        format!("{:?}", s.sync) == "OutOfSync"
    })
    .await;

    // `sync --dry-run` shows the pending diff and exits 2; nothing is written.
    let (code, out, err) = cli(&env, &["sync", "--app", "web", "--dry-run"]).await;
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(out.contains("create nomad_job/default/web"), "{out}");
    assert!(env.job("web").await.is_none());

    // `sync` asks the running drover to apply (auto-sync is off).
    let (code, out, err) = cli(&env, &["sync", "--app", "web"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("sync requested: web"), "{out}");
    env.wait_synced_healthy("web", Some(&v1)).await;

    let (code, out, err) = cli(&env, &["status"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("web "))
        .unwrap_or_else(|| panic!("no row for web: {out}"));
    for column in ["Synced", "Healthy", &v1[..12]] {
        assert!(row.contains(column), "{column} in {row:?}");
    }

    let (code, out, err) = cli(&env, &["history", "web"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.lines().any(|l| l.contains(&v1[..12])
            && l.contains("succeeded")
            && l.contains("manual")
            && l.contains("create nomad_job/default/web")),
        "{out}"
    );

    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    let v2 = env.commit("v2");
    cli(&env, &["sync", "--app", "web"]).await;
    env.wait_synced_healthy("web", Some(&v2)).await;

    let (code, out, err) = cli(&env, &["rollback", "web", "--to", &v1[..10]]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!("web pinned to {v1}")), "{out}");
    env.wait_synced_healthy("web", Some(&v1)).await;
    let image = |j: Option<serde_json::Value>| {
        j.unwrap_or_default()["TaskGroups"][0]["Tasks"][0]["Config"]["image"].clone()
    };
    assert_eq!(image(env.job("web").await), "nginx:1.26");

    let (code, out, err) = cli(&env, &["unpin", "web"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("web follows the branch again"), "{out}");
    cli(&env, &["sync", "--app", "web"]).await;
    env.wait_synced_healthy("web", Some(&v2)).await;
    assert_eq!(image(env.job("web").await), "nginx:1.27");

    // No drover listening: a clear error and exit 1.
    let (code, _, err) = {
        let mut command = drover();
        command.args(["status", "--server", "http://127.0.0.1:9"]);
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        (
            out.status.code(),
            String::new(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot reach drover"), "{err}");
    env.shutdown().await;
}
