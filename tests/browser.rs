//! The status page in a real browser (headless Chromium over the DevTools protocol): the overview
//! lists the apps with the statuses the API gives, a drift made through the devstack appears on
//! the open page without a reload and its diff on the app page, the Sync button refuses a wrong
//! token and heals the drift with the right one; screenshots go to `target/tmp/screenshots/`.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::Duration;

use browser::Browser;
use common::{TestEnv, app_yaml, web_jobspec};
use reqwest::Method;
use serde_json::{Value, json};

/// How long the page may take to show a change the API already shows.
const PAGE_WAIT: Duration = Duration::from_secs(30);

/// A local HTTP receiver for alert webhooks: the JSON bodies posted to it, in order.
async fn alert_receiver() -> (String, tokio::sync::watch::Receiver<Vec<Value>>) {
    let (tx, rx) = tokio::sync::watch::channel(Vec::new());
    let tx = std::sync::Arc::new(tx);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                tx.send_modify(|all| all.push(body));
                "ok"
            }
        }),
    );
    let addr = common::serve_local(app).await;
    (format!("http://{addr}/hook"), rx)
}

/// Notifications as drover.yaml gives them: drift alerts (held 1 s) of `web` to `url`.
fn drift_alerts_to(url: &str) -> drover::notify::settings::NotifySettings {
    let yaml = format!(
        "repo: {{ url: /unused }}\nnotifications:\n  for: 1s\n  channels:\n    ops: {{ webhook: {{ url: '{url}' }} }}\n  routes:\n    - {{ triggers: [on_drift, on_recovered], apps: [web], channels: [ops] }}\n"
    );
    let file: drover::config::FileSettings =
        serde_yaml_ng::from_str(&yaml).unwrap_or_else(|e| panic!("{e}"));
    drover::config::Settings::from_file_settings(file, |_| None)
        .unwrap_or_else(|e| panic!("{e}"))
        .notifications
}

/// `[[name, sync, health], …]` of the overview's rows, as the page shows them.
const ROWS: &str = "JSON.stringify([...document.querySelectorAll('[data-app]')]
    .map(e => [e.dataset.app, e.dataset.sync, e.dataset.health]).sort())";

async fn api_apps(env: &TestEnv) -> Vec<Value> {
    env.http
        .get(format!("{}/api/v1/apps", env.drover_url()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("apps: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("apps answer: {e}"))
}

/// The rows the API says the overview must show, in the page's order.
fn expected_rows(apps: &[Value]) -> String {
    let mut rows: Vec<Value> = apps
        .iter()
        .map(|a| json!([a["name"], a["sync"], a["health"]]))
        .collect();
    rows.sort_by_key(|r| r.to_string());
    Value::Array(rows).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_shows_real_statuses_then_a_drift_and_its_diff_live() {
    let Some(chromium) = Browser::launch().await else {
        return;
    };
    let mut env = TestEnv::new().await;
    // `web` leaves drift alone so it stays on the page; `api` heals.
    env.write(
        "apps/web/app.yaml",
        &app_yaml("web", "sync: { self_heal: false }\n"),
    );
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    env.write("apps/api/app.yaml", &app_yaml("api", ""));
    env.write("apps/api/job.nomad.hcl", &web_jobspec("api", "nginx:1.27"));
    let rev = env.commit("two apps");
    let (hook_url, mut received) = alert_receiver().await;
    let mut settings = env.settings();
    settings.notifications = drift_alerts_to(&hook_url);
    env.start_drover_with(settings).await;
    env.wait_synced_healthy("web", Some(&rev)).await;
    env.wait_synced_healthy("api", Some(&rev)).await;

    let mut page = chromium.new_page().await;
    let overview = format!("{}/", env.drover_url());
    page.goto(&overview).await;
    let expected = expected_rows(&api_apps(&env).await);
    assert!(expected.contains("\"Synced\""), "{expected}");
    page.wait_value(
        "both apps with their API statuses",
        ROWS,
        &json!(expected),
        PAGE_WAIT,
    )
    .await;
    let links = page
        .eval("JSON.stringify([...document.querySelectorAll('[data-app] a[href]')].map(a => a.getAttribute('href')).sort())")
        .await;
    assert_eq!(links, json!(r#"["/apps/api","/apps/web"]"#));
    page.screenshot("overview-synced.png").await;

    // A drift made in Nomad behind drover's back: a new image.
    let mut edited = env.job("web").await.unwrap_or_default();
    edited["TaskGroups"][0]["Tasks"][0]["Config"]["image"] = json!("evil:latest");
    let (code, body) = env
        .nomad_send(Method::POST, "/v1/jobs", Some(json!({ "Job": edited })))
        .await;
    assert_eq!(code, 200, "{body}");
    // The open page (no reload) turns the row OutOfSync.
    page.wait_for(
        "web OutOfSync without a reload",
        "document.querySelector('[data-app=\"web\"]')?.dataset.sync === 'OutOfSync'",
        PAGE_WAIT,
    )
    .await;
    assert_eq!(
        page.eval("document.querySelector('[data-app=\"api\"]').dataset.sync")
            .await,
        json!("Synced"),
        "only the drifted app changed"
    );
    page.screenshot("overview-drift.png").await;
    // The drift alert reaches the local receiver within 60 s of the change.
    let drifted_at = std::time::Instant::now();
    let alerts = tokio::time::timeout(
        Duration::from_secs(60),
        received.wait_for(|all| all.iter().any(|a| a["trigger"] == "drift")),
    )
    .await
    .unwrap_or_else(|_| panic!("no drift alert reached the receiver within 60 s"))
    .map(|all| all.clone())
    .unwrap_or_else(|e| panic!("{e}"));
    let drift = alerts
        .iter()
        .find(|a| a["trigger"] == "drift")
        .cloned()
        .unwrap_or_default();
    assert_eq!(drift["app"], "web", "{drift}");
    assert_eq!(drift["state"], "firing", "{drift}");
    eprintln!(
        "drift → alert at the receiver in {:?}",
        drifted_at.elapsed()
    );

    // The app page shows the live diff of the job.
    page.goto(&format!("{}/apps/web", env.drover_url())).await;
    let diff = page
        .wait_for(
            "the job's diff",
            "document.querySelector('pre.diff[data-resource=\"nomad_job/default/web\"]')?.textContent",
            PAGE_WAIT,
        )
        .await;
    let diff = diff.as_str().unwrap_or_default();
    assert!(
        diff.contains("evil:latest") && diff.contains("nginx:1.27"),
        "the diff names both images: {diff}"
    );
    assert_eq!(
        page.eval("document.querySelector('[data-app=\"web\"]').dataset.sync")
            .await,
        json!("OutOfSync")
    );
    // The alert is on the app's page too.
    page.wait_for(
        "the drift alert on the app page",
        "document.querySelector('#alerts [data-trigger=\"drift\"][data-state=\"firing\"]')?.textContent",
        PAGE_WAIT,
    )
    .await;
    let shot = page.screenshot("app-web-diff.png").await;
    assert!(shot.exists());

    // The Sync button: a wrong token is refused and changes nothing; the right one heals the
    // drift, and the open page turns Synced by itself.
    let click_sync_with = |token: &str| {
        format!(
            "(() => {{ const t = document.getElementById('token'); t.value = {token:?}; \
             document.querySelector('button[data-action=\"sync\"]').click(); return true; }})()"
        )
    };
    page.eval(&click_sync_with("not-the-token")).await;
    page.wait_for(
        "the refusal of a wrong token",
        "document.getElementById('answer').textContent.startsWith('401') && document.getElementById('answer').textContent",
        PAGE_WAIT,
    )
    .await;
    let job = env.job("web").await.unwrap_or_default();
    assert_eq!(
        job["TaskGroups"][0]["Tasks"][0]["Config"]["image"], "evil:latest",
        "a refused sync wrote nothing"
    );
    page.eval(&click_sync_with(common::TEST_API_TOKEN)).await;
    page.wait_for(
        "the sync accepted",
        "document.getElementById('answer').textContent.startsWith('202') && document.getElementById('answer').textContent",
        PAGE_WAIT,
    )
    .await;
    page.wait_for(
        "web Synced again after the manual sync, without a reload",
        "document.querySelector('main[data-app=\"web\"]').dataset.sync === 'Synced' && !document.querySelector('pre.diff')",
        PAGE_WAIT,
    )
    .await;
    let job = env.job("web").await.unwrap_or_default();
    assert_eq!(
        job["TaskGroups"][0]["Tasks"][0]["Config"]["image"], "nginx:1.27",
        "the manual sync wrote Git's image back"
    );
    page.screenshot("app-web-synced.png").await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_page_lists_the_example_apps_with_their_real_statuses() {
    let Some(chromium) = Browser::launch().await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut demo = common::start_demo(tmp.path(), tmp.path(), &[]).await;
    let url = demo.url.clone();
    let http = common::http_client();
    // Wait until the demo settled (every app Synced and Healthy), then compare the page.
    let deadline = tokio::time::Instant::now() + common::WAIT * 2;
    let apps = loop {
        let apps: Vec<Value> = match http.get(format!("{url}api/v1/apps")).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        // desired-state/'s nine apps (tests/media_stack.rs lists them).
        let settled = apps.len() == 9
            && apps
                .iter()
                .all(|a| a["sync"] == "Synced" && a["health"] == "Healthy");
        if settled {
            break apps;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the demo never settled: {apps:#?}"
        );
        // Polling the demo's API from outside: there is no event to await across processes.
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut page = chromium.new_page().await;
    page.goto(&url).await;
    page.wait_value(
        "the example's apps with their API statuses",
        ROWS,
        &json!(expected_rows(&apps)),
        PAGE_WAIT,
    )
    .await;
    let names = page
        .eval(
            "[...document.querySelectorAll('[data-app]')].map(e => e.dataset.app).sort().join(',')",
        )
        .await;
    assert_eq!(
        names,
        json!("glusterfs-csi,jellyfin,minio,overseerr,prowlarr,qbittorrent,radarr,sonarr,traefik")
    );
    page.screenshot("demo-overview.png").await;
    let _ = demo.child.kill().await;
}
