//! `chart` (the placeholder before `pack:`) is not acted on: never silently accepted (hooks run: tests/hooks.rs;
//! probes run: tests/probes.rs, and are no longer warned about).
//! `drover validate` warns at each with file:line and field (and still exits 0: the app works
//! without them), and a running drover shows the warning on the app (API, page, `drover status`).

mod common;

use std::process::Command;

use common::{TestEnv, app_yaml, web_jobspec};

fn drover() -> Command {
    Command::new(env!("CARGO_BIN_EXE_drover"))
}

/// The web app's app.yaml with `chart` on line 4 and `probes` (supported) on 5.
const UNSUPPORTED: &str = "chart: { name: litestream-service }\n\
probes:\n  - { http: { url: \"https://web.example.org/health\" } }\n";

#[test]
fn validate_warns_at_each_unsupported_field_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let app = dir.path().join("apps/web");
    std::fs::create_dir_all(&app).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(app.join("app.yaml"), app_yaml("web", UNSUPPORTED))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(app.join("job.nomad.hcl"), web_jobspec("web", "nginx:1.27"))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = drover()
        .arg("validate")
        .arg(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "warnings do not fail validation: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok    web (1 resources)"), "{stdout}");
    assert!(
        stdout.contains("  warning: apps/web/app.yaml:4:1: chart: not supported yet"),
        "warns at chart: {stdout}"
    );
    assert!(!stdout.contains("probes: not supported"), "{stdout}");
    assert!(stdout.contains("1 warning(s)"), "{stdout}");
}

#[test]
fn validate_prints_no_warning_for_an_app_without_them() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let app = dir.path().join("apps/web");
    std::fs::create_dir_all(&app).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(app.join("app.yaml"), app_yaml("web", "")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(app.join("job.nomad.hcl"), web_jobspec("web", "nginx:1.27"))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = drover()
        .arg("validate")
        .arg(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("warning"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_drover_syncs_the_app_and_shows_the_warning_on_it() {
    let mut env = TestEnv::new().await;
    env.write(
        "apps/web/app.yaml",
        &app_yaml("web", "chart: { name: litestream-service }\n"),
    );
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    env.commit("web with a chart");
    env.start_drover().await;
    let status = env.wait_synced_healthy("web", None).await;
    let expected = "apps/web/app.yaml:4:1: chart: not supported yet";
    assert!(
        status.warnings.iter().any(|w| w.starts_with(expected)),
        "{status:?}"
    );

    let (api, page) = {
        let get = |path: &str| env.http.get(format!("{}{path}", env.drover_url())).send();
        let api = get("/api/v1/apps/web")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let api: serde_json::Value = api.json().await.unwrap_or_else(|e| panic!("{e}"));
        // The overview counts warnings; the app page shows them.
        let page = get("/apps/web").await.unwrap_or_else(|e| panic!("{e}"));
        (api, page.text().await.unwrap_or_else(|e| panic!("{e}")))
    };
    assert!(
        api["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|w| w.as_str().is_some_and(|w| w.starts_with(expected))),
        "{api}"
    );
    // The page shows text HTML-escaped (`/` as `&#x2f;`): read it as a browser would.
    let shown = page
        .replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    assert!(shown.contains(&format!("warning: {expected}")), "{page}");

    let mut command = drover();
    command.arg("status").env("DROVER_ADDR", env.drover_url());
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("    warning: {expected}")),
        "{stdout}"
    );
    env.shutdown().await;
}
