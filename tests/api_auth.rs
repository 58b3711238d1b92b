//! Who may call drover's API: mutating endpoints need the bearer token (`DROVER_API_TOKEN`),
//! are off (403) without one configured, refuse a wrong or missing token (401) and a cross-site
//! form (403) without acting; `web.private` closes the read-only API and page too; the old
//! unversioned paths are gone; the token never reaches the log.

mod common;

use common::logs::{captured_logs, logs_text};
use common::{TEST_API_TOKEN, TestEnv, app_yaml, web_jobspec};
use serde_json::{Value, json};

/// A request to the running drover with the given `Authorization` and extra headers.
async fn send(
    env: &TestEnv,
    method: reqwest::Method,
    path: &str,
    authorization: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, String) {
    let mut request = env
        .http
        .request(method, format!("{}{path}", env.drover_url()));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let r = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let code = r.status().as_u16();
    (code, r.text().await.unwrap_or_default())
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A drover (with `configure`d settings) that synced app `web`; its pins and events tell whether
/// a refused request acted.
async fn env_with_web(configure: impl FnOnce(&mut drover::config::Settings)) -> (TestEnv, String) {
    let mut env = TestEnv::new().await;
    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    let revision = env.commit("web");
    let mut settings = env.settings();
    configure(&mut settings);
    env.start_drover_with(settings).await;
    env.wait_synced_healthy("web", Some(&revision)).await;
    (env, revision)
}

/// Whether drover recorded a pin for `web` (an event `pinned to ...`).
async fn pinned(env: &TestEnv) -> bool {
    let (code, events) = send(
        env,
        reqwest::Method::GET,
        "/api/v1/events",
        Some(&bearer(TEST_API_TOKEN)),
        &[],
        None,
    )
    .await;
    assert_eq!(code, 200, "{events}");
    events.contains("pinned to")
}

#[tokio::test]
async fn without_a_configured_token_changes_are_off_and_reads_open() {
    let (env, revision) = env_with_web(|s| s.web.api_token = None).await;
    for path in [
        "/api/v1/apps/web/sync",
        "/api/v1/apps/web/unpin",
        "/api/v1/refresh",
    ] {
        for authorization in [None, Some(bearer(TEST_API_TOKEN))] {
            let (code, body) = send(
                &env,
                reqwest::Method::POST,
                path,
                authorization.as_deref(),
                &[],
                Some(json!({})),
            )
            .await;
            assert_eq!(code, 403, "{path}: {body}");
            assert!(body.contains("DROVER_API_TOKEN"), "says how: {body}");
        }
    }
    let (code, body) = send(
        &env,
        reqwest::Method::POST,
        "/api/v1/apps/web/rollback",
        Some(&bearer(TEST_API_TOKEN)),
        &[],
        Some(json!({ "revision": revision })),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert!(!pinned(&env).await);
    let (code, _) = send(&env, reqwest::Method::GET, "/api/v1/apps", None, &[], None).await;
    assert_eq!(code, 200);
    env.shutdown().await;
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_refused_and_the_right_one_works() {
    let (env, revision) = env_with_web(|_| {}).await;
    let rollback = json!({ "revision": revision });
    let wrong = [
        None,
        Some(bearer("not-the-token")),
        Some(bearer(&format!("{TEST_API_TOKEN}x"))),
        Some(bearer(&TEST_API_TOKEN[..TEST_API_TOKEN.len() - 1])),
        Some(format!("Basic {TEST_API_TOKEN}")),
        Some(TEST_API_TOKEN.to_string()),
    ];
    for authorization in &wrong {
        let (code, body) = send(
            &env,
            reqwest::Method::POST,
            "/api/v1/apps/web/rollback",
            authorization.as_deref(),
            &[],
            Some(rollback.clone()),
        )
        .await;
        assert_eq!(code, 401, "{authorization:?}: {body}");
        assert!(!body.contains(TEST_API_TOKEN), "{body}");
    }
    assert!(!pinned(&env).await, "a refused rollback pinned nothing");

    let (code, body) = send(
        &env,
        reqwest::Method::POST,
        "/api/v1/apps/web/rollback",
        Some(&bearer(TEST_API_TOKEN)),
        &[],
        Some(rollback),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(pinned(&env).await, "the rollback pinned the app");
    for path in ["/api/v1/apps/web/sync", "/api/v1/refresh"] {
        let (code, body) = send(
            &env,
            reqwest::Method::POST,
            path,
            Some(&bearer(TEST_API_TOKEN)),
            &[],
            Some(json!({})),
        )
        .await;
        assert_eq!(code, 202, "{path}: {body}");
    }
    let (code, body) = send(
        &env,
        reqwest::Method::POST,
        "/api/v1/apps/web/unpin",
        Some(&bearer(TEST_API_TOKEN)),
        &[],
        Some(json!({})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"was_pinned\":true"), "{body}");
    env.shutdown().await;
}

#[tokio::test]
async fn a_cross_site_post_with_the_token_triggers_nothing() {
    let (env, revision) = env_with_web(|_| {}).await;
    let token = bearer(TEST_API_TOKEN);
    let form = format!("revision={revision}");
    for headers in [
        // A plain HTML form from another site.
        vec![
            ("content-type", "application/x-www-form-urlencoded"),
            ("origin", "https://attacker.example"),
            ("sec-fetch-site", "cross-site"),
        ],
        vec![("content-type", "application/x-www-form-urlencoded")],
        vec![("content-type", "text/plain")],
    ] {
        let mut request = env
            .http
            .post(format!("{}/api/v1/apps/web/rollback", env.drover_url()))
            .header("authorization", &token)
            .body(form.clone());
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let r = request.send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status().as_u16(), 403, "{headers:?}");
    }
    // JSON from another site's script (a CORS preflight drover never grants would precede it).
    let (code, body) = send(
        &env,
        reqwest::Method::POST,
        "/api/v1/apps/web/rollback",
        Some(&token),
        &[("origin", "https://attacker.example")],
        Some(json!({ "revision": revision })),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    // No CORS grant at all, and certainly no wildcard.
    let r = env
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/v1/apps/web/rollback", env.drover_url()),
        )
        .header("origin", "https://attacker.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        r.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        r.headers()
    );
    assert!(!pinned(&env).await, "nothing was pinned");
    env.shutdown().await;
}

#[tokio::test]
async fn private_mode_needs_the_token_for_reads_and_the_page() {
    let (env, _) = env_with_web(|s| s.web.private = true).await;
    for path in [
        "/",
        "/api/v1/apps",
        "/api/v1/apps/web",
        "/api/v1/apps/web/resources",
        "/api/v1/apps/web/history",
        "/api/v1/events",
        "/api/v1/source",
        "/api/v1/status",
    ] {
        for authorization in [None, Some(bearer("not-the-token"))] {
            let (code, body) = send(
                &env,
                reqwest::Method::GET,
                path,
                authorization.as_deref(),
                &[],
                None,
            )
            .await;
            assert_eq!(code, 401, "{path}: {body}");
            assert!(!body.contains("nomad_job"), "{path}: {body}");
        }
        let (code, body) = send(
            &env,
            reqwest::Method::GET,
            path,
            Some(&bearer(TEST_API_TOKEN)),
            &[],
            None,
        )
        .await;
        assert_eq!(code, 200, "{path}: {body}");
    }
    let (code, body) = send(
        &env,
        reqwest::Method::GET,
        "/api/v1/apps/web/resources",
        Some(&bearer(TEST_API_TOKEN)),
        &[],
        None,
    )
    .await;
    assert!(
        code == 200 && body.contains("nomad_job/default/web"),
        "{body}"
    );
    // Health checks stay open.
    let (code, body) = send(&env, reqwest::Method::GET, "/healthz", None, &[], None).await;
    assert_eq!((code, body.as_str()), (200, "ok"));
    env.shutdown().await;
}

#[tokio::test]
async fn the_private_page_signs_in_with_an_http_only_same_site_cookie() {
    let (env, _) = env_with_web(|s| s.web.private = true).await;
    let (code, form) = send(&env, reqwest::Method::GET, "/", None, &[], None).await;
    assert_eq!(code, 401);
    assert!(
        form.contains("Sign in") && !form.contains("nomad_job"),
        "{form}"
    );

    let login = |token: &str| {
        env.http
            .post(format!("{}/login", env.drover_url()))
            .json(&json!({ "token": token }))
            .send()
    };
    let wrong = login("not-the-token")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    // A cross-site form cannot sign in either.
    let form_post = env
        .http
        .post(format!("{}/login", env.drover_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TEST_API_TOKEN}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(form_post.status().as_u16(), 403);
    assert!(form_post.headers().get("set-cookie").is_none());

    let right = login(TEST_API_TOKEN)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(right.status().as_u16(), 204);
    let set_cookie = right
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no cookie: {:?}", right.headers()))
        .to_string();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    assert!(!set_cookie.contains(TEST_API_TOKEN), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap_or_default().to_string();
    for path in ["/", "/api/v1/apps"] {
        let (code, body) = send(
            &env,
            reqwest::Method::GET,
            path,
            None,
            &[("cookie", cookie.as_str())],
            None,
        )
        .await;
        assert_eq!(code, 200, "{path}: {body}");
        assert!(body.contains("web"), "{path}: {body}");
    }
    // A forged cookie opens nothing, and the cookie is for reading: changes need the token.
    let (code, _) = send(
        &env,
        reqwest::Method::GET,
        "/api/v1/apps",
        None,
        &[("cookie", "drover_session=0000")],
        None,
    )
    .await;
    assert_eq!(code, 401);
    let (code, body) = send(
        &env,
        reqwest::Method::POST,
        "/api/v1/refresh",
        None,
        &[("cookie", cookie.as_str())],
        Some(json!({})),
    )
    .await;
    assert_eq!(code, 401, "{body}");
    env.shutdown().await;
}

#[tokio::test]
async fn the_unversioned_api_paths_are_gone() {
    let (env, _) = env_with_web(|_| {}).await;
    for (method, path) in [
        (reqwest::Method::GET, "/api/apps"),
        (reqwest::Method::GET, "/api/apps/web"),
        (reqwest::Method::GET, "/api/events"),
        (reqwest::Method::GET, "/api/source"),
        (reqwest::Method::GET, "/api/status"),
        (reqwest::Method::POST, "/api/apps/web/sync"),
        (reqwest::Method::POST, "/api/refresh"),
    ] {
        let (code, body) = send(
            &env,
            method.clone(),
            path,
            Some(&bearer(TEST_API_TOKEN)),
            &[],
            (method == reqwest::Method::POST).then(|| json!({})),
        )
        .await;
        assert_eq!(code, 404, "{method} {path}: {body}");
    }
    env.shutdown().await;
}

#[tokio::test]
async fn the_token_never_reaches_the_log() {
    captured_logs();
    let (env, _) = env_with_web(|_| {}).await;
    let guess = "guessed-token-9d41e7";
    for authorization in [bearer(TEST_API_TOKEN), bearer(guess)] {
        send(
            &env,
            reqwest::Method::POST,
            "/api/v1/apps/web/sync",
            Some(&authorization),
            &[],
            Some(json!({})),
        )
        .await;
    }
    let logs = logs_text();
    // The refusal was logged (so the capture works), without what the caller sent.
    assert!(logs.contains("API token missing or wrong"), "{logs}");
    assert!(!logs.contains(TEST_API_TOKEN), "{logs}");
    assert!(!logs.contains(guess), "{logs}");
    env.shutdown().await;
}
