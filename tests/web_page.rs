//! The status page and the API's error answers, over real HTTP: text from Git or from an error is
//! escaped on the page, and a failure inside drover answers a short message, never its detail.

mod common;

use common::{TestEnv, app_yaml, web_jobspec};
use drover::controller::AppStatus;
use drover::web::api::{
    ApiError, EventEntry, HistoryEntry, RepoView, SourceView, SyncRequested, Unpinned,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
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

    // The overview shows the commit subject; the app page the commit and the error.
    for (path, shown) in [
        ("/", &["commit"][..]),
        ("/apps/web", &["key", "commit"][..]),
    ] {
        let (code, page) = get(&env, path).await;
        assert_eq!(code, 200, "{page}");
        let page = page.replace(r#"<script src="/assets/drover.js" defer></script>"#, "");
        assert!(!page.contains("<script"), "unescaped markup: {page}");
        for what in shown {
            assert!(
                page.contains(&format!("&lt;script&gt;alert(&#x27;{what}&#x27;)")),
                "{path}: the {what} is shown, escaped: {page}"
            );
        }
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

    for path in ["/api/v1/events", "/api/v1/apps/web/history"] {
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

/// The body at `path` decoded into `T`, checked to say everything the server sent: encoded
/// again, it is the same JSON (no field the type lacks, none it renames).
fn decodes_whole<T: DeserializeOwned + Serialize>(path: &str, body: &str) -> T {
    let raw: Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"));
    let typed: T = serde_json::from_value(raw.clone())
        .unwrap_or_else(|e| panic!("{path}: does not decode ({e}): {body}"));
    let again = serde_json::to_value(&typed).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(again, raw, "{path}: the type loses or changes fields");
    typed
}

async fn post(env: &TestEnv, path: &str) -> (u16, String) {
    let r = env
        .http
        .post(format!("{}{path}", env.drover_url()))
        .json(&serde_json::json!({}))
        .bearer_auth(common::TEST_API_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let code = r.status().as_u16();
    (code, r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn every_api_answer_is_the_type_the_cli_decodes() {
    let mut env = TestEnv::new().await;
    let revision = env.sync_web_app("").await;

    let (_, body) = get(&env, "/api/v1/apps").await;
    let apps: Vec<AppStatus> = decodes_whole("/api/v1/apps", &body);
    assert_eq!(apps.len(), 1, "{body}");
    let (_, body) = get(&env, "/api/v1/apps/web").await;
    let app: AppStatus = decodes_whole("/api/v1/apps/web", &body);
    assert_eq!(
        (app.name.as_str(), app.revision.as_str()),
        ("web", revision.as_str())
    );
    let (_, body) = get(&env, "/api/v1/source").await;
    let source: SourceView = decodes_whole("/api/v1/source", &body);
    assert_eq!(source.revision.as_deref(), Some(revision.as_str()));
    let (_, body) = get(&env, "/api/v1/status").await;
    let _: RepoView = decodes_whole("/api/v1/status", &body);
    let (_, body) = get(&env, "/api/v1/apps/web/history").await;
    let history: Vec<HistoryEntry> = decodes_whole("/api/v1/apps/web/history", &body);
    assert!(history.iter().any(|h| h.revision == revision), "{body}");
    let (_, body) = get(&env, "/api/v1/events").await;
    let _: Vec<EventEntry> = decodes_whole("/api/v1/events", &body);
    let (code, body) = post(&env, "/api/v1/apps/web/sync").await;
    assert_eq!(code, 202, "{body}");
    let _: SyncRequested = decodes_whole("/api/v1/apps/web/sync", &body);
    let (code, body) = post(&env, "/api/v1/apps/web/unpin").await;
    assert_eq!(code, 200, "{body}");
    let unpinned: Unpinned = decodes_whole("/api/v1/apps/web/unpin", &body);
    assert!(!unpinned.was_pinned, "{body}");
    let (code, body) = get(&env, "/api/v1/apps/nope").await;
    assert_eq!(code, 404, "{body}");
    let error: ApiError = decodes_whole("/api/v1/apps/nope", &body);
    assert_eq!(error.error, "no app named nope");
    env.shutdown().await;
}
