//! The JSON API and status page of a running drover, over real HTTP: every endpoint, and what it
//! must never show (credentials in the Git URL).

mod common;

use std::time::Duration;

use common::{TestEnv, app_yaml, web_jobspec};
use serde_json::{Value, json};

async fn get(env: &TestEnv, path: &str) -> (u16, String) {
    let r = env
        .http
        .get(format!("{}{path}", env.drover_url()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let code = r.status().as_u16();
    (code, r.text().await.unwrap_or_default())
}

async fn get_json(env: &TestEnv, path: &str) -> (u16, Value) {
    let (code, body) = get(env, path).await;
    (
        code,
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}")),
    )
}

async fn post_json(env: &TestEnv, path: &str, body: Value) -> (u16, Value) {
    let r = env
        .http
        .post(format!("{}{path}", env.drover_url()))
        .json(&body)
        .bearer_auth(common::TEST_API_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_read_endpoint_answers_what_drover_knows() {
    let mut env = TestEnv::new().await;
    let rev = env.sync_web_app("").await;

    let (code, body) = get(&env, "/healthz").await;
    assert_eq!((code, body.as_str()), (200, "ok"));

    let (code, apps) = get_json(&env, "/api/v1/apps").await;
    assert_eq!(code, 200);
    assert_eq!(apps.as_array().map(Vec::len), Some(1), "{apps}");

    let (code, app) = get_json(&env, "/api/v1/apps/web").await;
    assert_eq!(code, 200);
    assert_eq!(app["name"], "web");
    assert_eq!(app["sync"], "Synced");
    assert_eq!(app["health"], "Healthy");
    assert_eq!(app["revision"], rev.as_str());
    assert_eq!(app["resources"][0]["id"], "nomad_job/default/web");
    assert!(
        app["observed_at"]
            .as_u64()
            .is_some_and(|t| t > 1_700_000_000)
    );

    let (code, missing) = get_json(&env, "/api/v1/apps/nosuch").await;
    assert_eq!(code, 404);
    assert!(
        missing["error"]
            .as_str()
            .is_some_and(|e| e.contains("nosuch")),
        "{missing}"
    );

    let (code, history) = get_json(&env, "/api/v1/apps/web/history").await;
    assert_eq!(code, 200);
    let first = &history[0];
    assert_eq!(first["revision"], rev.as_str(), "{history}");
    assert_eq!(first["result"], "succeeded");
    assert_eq!(first["trigger"], "auto");
    assert_eq!(first["changes"], json!(["create nomad_job/default/web"]));
    assert!(first["finished_at"].as_u64() >= first["started_at"].as_u64());

    let (code, source) = get_json(&env, "/api/v1/source").await;
    assert_eq!(code, 200);
    assert_eq!(source["revision"], rev.as_str());
    assert_eq!(source["message"], "web");
    assert_eq!(source["last_error"], Value::Null);
    assert_eq!(source["consecutive_failures"], 0);

    let (code, page) = get(&env, "/").await;
    assert_eq!(code, 200);
    assert!(page.contains("web") && page.contains("Synced"), "{page}");
    env.shutdown().await;
}

#[tokio::test]
async fn refresh_fetches_now_and_events_record_a_rollback() {
    let mut env = TestEnv::new().await;
    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    let first = env.commit("web");
    // Polling an hour apart: only a refresh can bring the next commit in time.
    let mut settings = env.settings();
    settings.source.poll_interval = Duration::from_secs(3600);
    env.start_drover_with(settings).await;
    env.wait_synced_healthy("web", Some(&first)).await;

    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.28"));
    let second = env.commit("web: nginx 1.28");
    let (code, _) = post_json(&env, "/api/v1/refresh", json!({})).await;
    assert_eq!(code, 202);
    env.wait_synced_healthy("web", Some(&second)).await;

    let (code, pinned) = post_json(
        &env,
        "/api/v1/apps/web/rollback",
        json!({ "revision": first }),
    )
    .await;
    assert_eq!(code, 200, "{pinned}");
    let (code, events) = get_json(&env, "/api/v1/events").await;
    assert_eq!(code, 200);
    assert!(
        events
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["app"] == "web"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(&format!("pinned to {first}")))),
        "{events}"
    );
    env.wait_synced_healthy("web", Some(&first)).await;
    env.shutdown().await;
}

#[tokio::test]
async fn credentials_in_the_git_url_never_reach_the_api_page_or_events() {
    // A password, and a token given as the user name (as GitHub and GitLab accept it).
    for (credentials, shown) in [
        ("bot:pa55w0rd-secret", "bot:***@127.0.0.1"),
        ("pa55w0rd-secret", "//***@127.0.0.1"),
    ] {
        let mut env = TestEnv::new().await;
        // Nothing listens there: the fetch fails and its error is shown, without the secret.
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut settings = env.settings();
        settings.source.url = format!("http://{credentials}@127.0.0.1:{dead}/infra.git");
        env.start_drover_with(settings).await;
        let mut rx = env
            .drover
            .as_ref()
            .map(|d| d.source.subscribe())
            .unwrap_or_else(|| panic!("running"));
        // The watch's read guard is dropped at once: held across the awaits below, it would
        // block the Git watcher's next publish (and so the shutdown) on this one thread.
        let failed = tokio::time::timeout(common::WAIT, rx.wait_for(|s| s.last_error.is_some()))
            .await
            .is_ok_and(|seen| seen.is_ok());
        assert!(failed, "the fetch error is reported");

        let (_, source) = get(&env, "/api/v1/source").await;
        let (_, page) = get(&env, "/").await;
        let (_, events) = get(&env, "/api/v1/events").await;
        for (what, text) in [
            ("/api/v1/source", &source),
            ("/", &page),
            ("/api/v1/events", &events),
        ] {
            assert!(
                !text.contains("pa55w0rd-secret"),
                "{what} leaks the secret: {text}"
            );
        }
        assert!(source.contains(shown), "{source}");
        env.shutdown().await;
    }
}

#[tokio::test]
async fn traefik_lint_warnings_reach_the_api_and_the_page() {
    let mut env = TestEnv::new().await;
    let tagged = web_jobspec("web", "nginx:1.27").replace(
        "tags = [\"public\"]",
        "tags = [\"traefik.enable=true\", \"traefik.http.routers.web.rule=Host(`web.example`)\", \"traefik.http.routers.web.entrypoints=websecure\"]",
    );
    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    env.write("apps/web/job.nomad.hcl", &tagged);
    let revision = env.commit("web: Traefik tags, no check");
    env.start_drover().await;
    // The status a finished cycle publishes (a sync's in-flight status comes before it).
    let status = env.wait_synced_healthy("web", Some(&revision)).await;
    // The warning points at the service block (line and column of `service`).
    let line = tagged
        .lines()
        .position(|l| l == "    service {")
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no service block in {tagged}"));
    let at = format!("apps/web/job.nomad.hcl:{line}:5: check: service");
    let expected = format!("{at} \"web\" has Traefik tags but no check");
    assert!(
        status.warnings.iter().any(|w| w.starts_with(&expected)),
        "{:#?}",
        status.warnings
    );

    let (code, app) = get_json(&env, "/api/v1/apps/web").await;
    assert_eq!(code, 200);
    let warnings: Vec<&str> = app["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(warnings.iter().any(|w| w.starts_with(&expected)), "{app:#}");
    // The overview counts warnings; the app page shows them.
    let (code, page) = get(&env, "/apps/web").await;
    assert_eq!(code, 200);
    // The page escapes HTML (`/` too); read it as text.
    let text = [
        ("&quot;", "\""),
        ("&#34;", "\""),
        ("&#x2f;", "/"),
        ("&#x27;", "'"),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&amp;", "&"),
    ]
    .iter()
    .fold(page.clone(), |text, (entity, plain)| {
        text.replace(entity, plain)
    });
    assert!(text.contains(&format!("warning: {expected}")), "{page}");
    env.shutdown().await;
}
