//! The status page over real HTTP against the devstack: the overview and app page (markup
//! contract, security headers, 404), the live event stream end to end (a change in the cluster →
//! an `apps` event showing it, the diff on the app page), the stream behind `web.private`, and the
//! buttons' switch (changes on or off).

mod common;

use common::TestEnv;
use drover::web::stream::AppsEvent;
use futures::StreamExt;
use reqwest::Method;
use serde_json::Value;

/// One Server-Sent Event.
#[derive(Debug)]
struct Sse {
    event: String,
    data: String,
}

/// Reads events off a `text/event-stream` body.
struct EventReader {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl EventReader {
    async fn open(env: &TestEnv) -> EventReader {
        let response = env
            .http
            .get(format!("{}/api/v1/stream", env.drover_url()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET /api/v1/stream: {e}"));
        assert_eq!(response.status().as_u16(), 200);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        EventReader {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped); `None` when the stream ended.
    async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut data) = (String::new(), Vec::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
                    }
                }
                if event.is_empty() && data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some(Sse {
                    event,
                    data: data.join("\n"),
                });
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Some(Err(e)) => panic!("reading the stream: {e}"),
                None => return None,
            }
        }
    }

    /// Read `apps` events until one shows `app` as `ok` says, or panic after the common wait.
    async fn wait_app(&mut self, app: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let seen = tokio::time::timeout(common::WAIT, async {
            while let Some(event) = self.next().await {
                if event.event != "apps" {
                    continue;
                }
                let decoded: AppsEvent = serde_json::from_str(&event.data)
                    .unwrap_or_else(|e| panic!("apps event ({e}): {}", event.data));
                let raw: Value = serde_json::from_str(&event.data).unwrap_or_default();
                if let Some(i) = decoded.apps.iter().position(|a| a.name == app)
                    && ok(&raw["apps"][i])
                {
                    return raw["apps"][i].clone();
                }
            }
            panic!("the stream ended before {app} was {what}");
        })
        .await;
        seen.unwrap_or_else(|_| panic!("no apps event showed {app} {what}"))
    }
}

async fn get(env: &TestEnv, path: &str) -> reqwest::Response {
    env.http
        .get(format!("{}{path}", env.drover_url()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_drift_reaches_the_stream_and_the_app_page_shows_its_diff() {
    let mut env = TestEnv::new().await;
    let revision = env.sync_web_app("sync: { self_heal: false }\n").await;
    let mut stream = EventReader::open(&env).await;
    // The first event has every app as it is now.
    let first = stream
        .wait_app("web", "Synced", |a| a["sync"] == "Synced")
        .await;
    assert_eq!(first["drift"], false, "{first}");
    assert_eq!(first["short_revision"], revision[..12], "{first}");
    assert_eq!(first["commit"]["subject"], "web", "{first}");

    // The cluster changes behind drover's back.
    let (code, _) = env.nomad_send(Method::DELETE, "/v1/job/web", None).await;
    assert_eq!(code, 200);
    let drifted = stream
        .wait_app("web", "OutOfSync with drift", |a| {
            a["sync"] == "OutOfSync" && a["drift"] == true
        })
        .await;
    assert_eq!(drifted["counts"]["update"], 1, "{drifted}");

    // The app page: the markup contract, the diff, the security headers.
    let response = get(&env, "/apps/web").await;
    assert_eq!(response.status().as_u16(), 200);
    let csp = header(&response, "content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    let html = response.text().await.unwrap_or_default();
    assert!(
        html.contains(r#"<main data-app="web" data-sync="OutOfSync" data-health="#),
        "{html}"
    );
    // minijinja escapes `/` in text and attributes too (`&#x2f;`): the DOM sees the plain id.
    let diff_start = html
        .find(r#"<pre class="diff" data-resource="nomad_job&#x2f;default&#x2f;web">"#)
        .unwrap_or_else(|| panic!("no diff element: {html}"));
    let diff = &html[diff_start..];
    let diff = &diff[..diff.find("</pre>").unwrap_or(diff.len())];
    assert!(diff.contains("Stop"), "the diff shows the stop: {diff}");
    assert!(
        html.contains("live_changed") || html.contains("stopped"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "no inline script: {html}");

    // The overview row.
    let html = get(&env, "/").await.text().await.unwrap_or_default();
    assert!(
        html.contains(r#"<tr data-app="web" data-sync="OutOfSync" data-health="#),
        "{html}"
    );
    assert!(html.contains(r#"href="/apps/web""#), "{html}");
    assert!(html.contains(r#"<span class="tag drift""#), "{html}");
    assert!(html.contains(r#"id="banner""#), "{html}");

    // Stopping drover ends the stream (a graceful shutdown does not wait on the page).
    env.stop_drover().await;
    let ended = tokio::time::timeout(common::WAIT, async {
        while stream.next().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived drover");
    env.shutdown().await;
}

#[tokio::test]
async fn unknown_apps_get_a_404_page_and_the_assets_are_served_compiled_in() {
    let mut env = TestEnv::new().await;
    env.sync_web_app("").await;
    let response = get(&env, "/apps/nope").await;
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    let html = response.text().await.unwrap_or_default();
    assert!(html.contains("no app named <code>nope</code>"), "{html}");

    for (path, kind, content) in [
        (
            "/assets/drover.js",
            "text/javascript",
            drover::web::page::SCRIPT,
        ),
        ("/assets/drover.css", "text/css", drover::web::page::STYLE),
    ] {
        let response = get(&env, path).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert!(
            header(&response, "content-type").starts_with(kind),
            "{path}"
        );
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(response.text().await.unwrap_or_default(), content, "{path}");
    }
    // Nothing the pages load comes from elsewhere.
    let html = get(&env, "/").await.text().await.unwrap_or_default();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn the_stream_and_the_app_page_are_private_with_web_private() {
    let mut env = TestEnv::new().await;
    env.write("apps/web/app.yaml", &common::app_yaml("web", ""));
    env.write(
        "apps/web/job.nomad.hcl",
        &common::web_jobspec("web", "nginx:1.27"),
    );
    env.commit("web");
    let mut settings = env.settings();
    settings.web.private = true;
    env.start_drover_with(settings).await;
    for path in ["/api/v1/stream", "/apps/web"] {
        let response = get(&env, path).await;
        assert_eq!(response.status().as_u16(), 401, "{path}");
    }
    let authorised = env
        .http
        .get(format!("{}/api/v1/stream", env.drover_url()))
        .bearer_auth(common::TEST_API_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(authorised.status().as_u16(), 200);
    drop(authorised);
    env.shutdown().await;
}

#[tokio::test]
async fn the_buttons_are_off_with_the_reason_when_no_token_is_configured() {
    let mut env = TestEnv::new().await;
    env.write("apps/web/app.yaml", &common::app_yaml("web", ""));
    env.write(
        "apps/web/job.nomad.hcl",
        &common::web_jobspec("web", "nginx:1.27"),
    );
    let revision = env.commit("web");
    let mut settings = env.settings();
    settings.web.api_token = None;
    env.start_drover_with(settings).await;
    env.wait_synced_healthy("web", Some(&revision)).await;
    let html = get(&env, "/apps/web")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(
        html.contains(r#"<section id="actions" data-changes="off">"#),
        "{html}"
    );
    assert!(html.contains("no API token is configured"), "{html}");
    assert!(
        html.contains(r#"<button type="button" data-action="sync" disabled"#),
        "{html}"
    );
    let status: Value = get(&env, "/api/v1/status")
        .await
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(status["changes_enabled"], false, "{status}");
    env.stop_drover().await;

    env.start_drover().await;
    env.wait_synced_healthy("web", Some(&revision)).await;
    let html = get(&env, "/apps/web")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(
        html.contains(r#"<section id="actions" data-changes="on">"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<button type="button" data-action="sync">"#),
        "{html}"
    );
    let status: Value = get(&env, "/api/v1/status")
        .await
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(status["changes_enabled"], true, "{status}");
    env.shutdown().await;
}

async fn drover_status(env: &TestEnv) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["status", "--server", &env.drover_url()])
        .env("DROVER_API_TOKEN", common::TEST_API_TOKEN)
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

#[tokio::test]
async fn drover_status_prints_the_last_sync_the_drift_and_since_when_git_fails() {
    let mut env = TestEnv::new().await;
    let revision = env.sync_web_app("sync: { self_heal: false }\n").await;
    let cli = drover_status(&env).await;
    assert!(
        cli.contains("    last sync: succeeded ") && cli.contains(&revision[..12]),
        "{cli}"
    );
    assert!(!cli.contains("drift:"), "{cli}");

    let (code, _) = env.nomad_send(Method::DELETE, "/v1/job/web", None).await;
    assert_eq!(code, 200);
    env.wait_app("web", "OutOfSync", |s| {
        s.resources.iter().any(drover::web::page::is_drift)
    })
    .await;
    let moved = env.repo.with_extension("moved");
    std::fs::rename(&env.repo, &moved).unwrap_or_else(|e| panic!("{e}"));
    let mut source = env
        .drover
        .as_ref()
        .map(|d| d.source.subscribe())
        .unwrap_or_else(|| panic!("running"));
    tokio::time::timeout(common::WAIT, source.wait_for(|s| s.failing_since.is_some()))
        .await
        .unwrap_or_else(|_| panic!("fetch error never reported"))
        .unwrap_or_else(|e| panic!("{e}"));
    let cli = drover_status(&env).await;
    assert!(
        cli.contains("drift: update nomad_job/default/web (stopped, changed in the cluster)"),
        "{cli}"
    );
    assert!(cli.contains("! Git fetch failing (failing since "), "{cli}");
    assert!(cli.contains("no repository at this path"), "{cli}");
    // The page's banner says the same.
    let html = get(&env, "/").await.text().await.unwrap_or_default();
    assert!(html.contains("Git fetch failing (failing since "), "{html}");
    std::fs::rename(&moved, &env.repo).unwrap_or_else(|e| panic!("{e}"));
    env.shutdown().await;
}

#[tokio::test]
async fn alerts_reach_the_stream_and_the_pages_and_bursts_of_changes_are_coalesced() {
    let mut env = TestEnv::new().await;
    env.sync_web_app("").await;
    let ctx = env
        .drover
        .as_ref()
        .map(|d| d.ctx.clone())
        .unwrap_or_else(|| panic!("running"));
    let mut stream = EventReader::open(&env).await;
    stream.wait_app("web", "listed", |_| true).await;

    let id = ctx.alerts.push(drover::notify::AlertRecord {
        id: 0,
        trigger: drover::notify::AlertTrigger::Drift,
        app: Some("web".into()),
        resource: Some("nomad_job/default/web".into()),
        state: drover::notify::AlertState::Firing,
        message: "<b>drifted</b>".into(),
        at: std::time::SystemTime::now(),
        deliveries: Vec::new(),
    });
    let alerts = tokio::time::timeout(common::WAIT, async {
        loop {
            match stream.next().await {
                Some(e) if e.event == "alerts" => {
                    let alerts: Vec<Value> = serde_json::from_str(&e.data).unwrap_or_default();
                    if alerts.iter().any(|a| a["id"] == id) {
                        return alerts;
                    }
                }
                Some(_) => {}
                None => panic!("the stream ended"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no alerts event"));
    assert_eq!(
        alerts.last().map(|a| a["trigger"].clone()),
        Some("drift".into())
    );
    for path in ["/", "/apps/web"] {
        let html = get(&env, path).await.text().await.unwrap_or_default();
        assert!(
            html.contains(&format!(
                r#"data-alert-id="{id}" data-trigger="drift" data-state="firing""#
            )),
            "{path}: {html}"
        );
        assert!(
            html.contains("&lt;b&gt;drifted&lt;&#x2f;b&gt;"),
            "{path}: {html}"
        );
    }

    // A burst of 40 status changes, 5 ms apart (of an app the controller does not know, so no
    // reconcile interferes): at most one event per coalescing window, not 40.
    let burst_started = std::time::Instant::now();
    for i in 1..=40 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let mut status = drover::controller::AppStatus::unknown(
            "burst",
            "0123456789abcdef",
            drover::controller::Phase::Waiting,
        );
        status.errors = (0..i).map(|n| format!("error {n}")).collect();
        ctx.publish(status);
    }
    // The promise: at most 4 `apps` events a second.
    let windows = burst_started.elapsed().as_millis() / 250;
    let mut events = 0;
    let last = tokio::time::timeout(common::WAIT, async {
        loop {
            match stream.next().await {
                Some(e) if e.event == "apps" => {
                    events += 1;
                    let apps: AppsEvent = serde_json::from_str(&e.data)
                        .unwrap_or_else(|err| panic!("{err}: {}", e.data));
                    if apps
                        .apps
                        .iter()
                        .any(|a| a.name == "burst" && a.errors == 40)
                    {
                        return e.data;
                    }
                }
                Some(_) => {}
                None => panic!("the stream ended"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the burst never showed"));
    assert!(
        events <= windows + 2,
        "{events} apps events for a burst over {windows} quarter-seconds; last {last}"
    );
    // An app that goes is named in `removed`.
    ctx.unpublish("burst");
    tokio::time::timeout(common::WAIT, async {
        loop {
            match stream.next().await {
                Some(e) if e.event == "apps" => {
                    let apps: AppsEvent = serde_json::from_str(&e.data)
                        .unwrap_or_else(|err| panic!("{err}: {}", e.data));
                    if apps.removed == ["burst"] {
                        return;
                    }
                }
                Some(_) => {}
                None => panic!("the stream ended"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the removal never showed"));
    env.shutdown().await;
}
