//! The status page and the API's error answers, over real HTTP: text from Git or from an error is
//! escaped on the page, and a failure inside drover answers a short message, never its detail.

mod common;

use common::{TestEnv, app_yaml, web_jobspec};
use serde_json::Value;

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

#[tokio::test]
async fn markup_from_git_and_from_errors_is_escaped_on_the_page() {
    let mut env = TestEnv::new().await;
    // An unknown key is an error whose message quotes the key.
    env.write(
        "apps/web/app.yaml",
        &app_yaml("web", "\"<script>alert('key')</script>\": true\n"),
    );
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    env.commit("<script>alert('commit')</script>");
    env.start_drover().await;
    let status = env
        .wait_app("web", "invalid", |s| !s.errors.is_empty())
        .await;
    assert!(
        status
            .errors
            .iter()
            .any(|e| e.contains("<script>alert('key')")),
        "the error quotes the key: {status:?}"
    );

    let (code, page) = get(&env, "/").await;
    assert_eq!(code, 200, "{page}");
    assert!(!page.contains("<script"), "unescaped markup: {page}");
    for what in ["key", "commit"] {
        assert!(
            page.contains(&format!("&lt;script&gt;alert(&#x27;{what}&#x27;)")),
            "the {what} is shown, escaped: {page}"
        );
    }
    env.shutdown().await;
}

#[tokio::test]
async fn a_failure_inside_drover_answers_without_its_detail() {
    let mut env = TestEnv::new().await;
    env.sync_web_app("").await;

    // Break the store under the running drover: its queries now fail with SQLite's message.
    let db = rusqlite::Connection::open(env.data.join("drover.db"))
        .unwrap_or_else(|e| panic!("open the store: {e}"));
    db.busy_timeout(common::WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    db.execute_batch("DROP TABLE events; DROP TABLE syncs;")
        .unwrap_or_else(|e| panic!("drop tables: {e}"));

    for path in ["/api/events", "/api/apps/web/history"] {
        let (code, body) = get(&env, path).await;
        assert_eq!(code, 500, "{path}: {body}");
        let answer: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"));
        assert_eq!(
            answer["error"], "internal error, see the drover log",
            "{path} answers the short message: {body}"
        );
        for detail in ["no such table", "store", "query", "sqlite"] {
            assert!(
                !body.to_lowercase().contains(detail),
                "{path} leaks {detail:?}: {body}"
            );
        }
    }
    env.shutdown().await;
}
