//! Git webhooks over real HTTP: signatures and tokens good and bad for each forge, oversized
//! bodies, pings, pushes to other branches, webhooks off without a secret, and a signed push that
//! registers the job on the devstack well under a second (the poll is too slow to have done it).

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{TestEnv, app_yaml, web_jobspec};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};

const SECRET: &str = "webhook-secret-7c1e";

/// Long enough that no poll happens during a test: any fetch after the first is a trigger's.
const NO_POLL: Duration = Duration::from_secs(600);

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2_for_hmac::Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|e| panic!("hmac key: {e}"));
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Drover polling every 10 minutes, with `secret` as the webhook secret; waits for the first
/// fetch of `head`.
async fn start(env: &mut TestEnv, secret: Option<&str>, head: &str) {
    let mut settings = env.settings();
    settings.source.poll_interval = NO_POLL;
    settings.web.webhook_secret = secret.map(|s| drover::telemetry::Redacted(s.to_string()));
    env.start_drover_with(settings).await;
    env.wait_fetched(head).await;
}

fn last_fetch(env: &TestEnv) -> Option<SystemTime> {
    env.drover
        .as_ref()
        .unwrap_or_else(|| panic!("drover is not running"))
        .source
        .subscribe()
        .borrow()
        .last_fetch
}

fn push_payload(env: &TestEnv, branch: &str) -> Vec<u8> {
    json!({
        "ref": format!("refs/heads/{branch}"),
        "repository": { "clone_url": env.repo.display().to_string() },
    })
    .to_string()
    .into_bytes()
}

async fn post(
    env: &TestEnv,
    provider: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = env
        .http
        .post(format!("{}/api/v1/webhooks/{provider}", env.drover_url()))
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST webhook {provider}: {e}"));
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

fn github_push(body: &[u8], secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("x-github-event", "push".to_string()),
        (
            "x-hub-signature-256",
            format!("sha256={}", sign(secret, body)),
        ),
    ]
}

#[tokio::test]
async fn a_signed_github_push_registers_the_job_well_under_a_second() {
    let mut env = TestEnv::new().await;
    let first = env.commit("empty");
    start(&mut env, Some(SECRET), &first).await;
    // The watcher spaces fetches 500 ms apart; a real push comes long after the last fetch, so
    // let that spacing pass to measure the webhook's own latency.
    let fetched = last_fetch(&env).unwrap_or_else(|| panic!("no first fetch"));
    let gap = Duration::from_millis(600).saturating_sub(fetched.elapsed().unwrap_or_default());
    tokio::time::sleep(gap).await;

    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    let pushed = env.commit("web");
    let body = push_payload(&env, "main");
    let started = Instant::now();
    let (code, answer) = post(&env, "github", &github_push(&body, SECRET), body).await;
    assert_eq!(
        (code, &answer["fetch"]),
        (202, &json!("triggered")),
        "{answer}"
    );
    loop {
        if env.job("web").await.is_some() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "job never registered after the webhook"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    eprintln!("webhook to job registered: {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    env.wait_synced_healthy("web", Some(&pushed)).await;
    env.shutdown().await;
}

/// The headers a forge sends for a body.
type HeadersFor = dyn Fn(&[u8]) -> Vec<(&'static str, String)>;

#[tokio::test]
async fn gitea_gitlab_and_generic_pushes_with_the_right_secret_trigger_a_fetch() {
    let mut env = TestEnv::new().await;
    let mut head = env.commit("first");
    start(&mut env, Some(SECRET), &head).await;
    let cases: Vec<(&str, Box<HeadersFor>)> = vec![
        (
            "gitea",
            Box::new(|b: &[u8]| {
                vec![
                    ("x-gitea-event", "push".into()),
                    ("x-gitea-signature", sign(SECRET, b)),
                ]
            }),
        ),
        (
            "gitlab",
            Box::new(|_: &[u8]| {
                vec![
                    ("x-gitlab-event", "Push Hook".into()),
                    ("x-gitlab-token", SECRET.into()),
                ]
            }),
        ),
        (
            "generic",
            Box::new(|_: &[u8]| vec![("authorization", format!("Bearer {SECRET}"))]),
        ),
        (
            "generic",
            Box::new(|b: &[u8]| {
                vec![(
                    "x-drover-signature-256",
                    format!("sha256={}", sign(SECRET, b)),
                )]
            }),
        ),
    ];
    for (index, (provider, headers)) in cases.iter().enumerate() {
        env.write("README.md", &format!("change {index}\n"));
        head = env.commit(&format!("change {index}"));
        let body = push_payload(&env, "main");
        let (code, answer) = post(&env, provider, &headers(&body), body).await;
        assert_eq!(
            (code, &answer["fetch"]),
            (202, &json!("triggered")),
            "{provider}: {answer}"
        );
        env.wait_fetched(&head).await;
    }
    env.shutdown().await;
}

#[tokio::test]
async fn bad_signatures_and_tokens_get_401_and_trigger_nothing() {
    let mut env = TestEnv::new().await;
    let first = env.commit("first");
    start(&mut env, Some(SECRET), &first).await;
    let fetched_before = last_fetch(&env);
    env.write("README.md", "pushed\n");
    let pushed = env.commit("pushed");

    let body = push_payload(&env, "main");
    let other_body = b"{\"ref\":\"refs/heads/other\"}".to_vec();
    let bad: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("github", vec![("x-github-event", "push".into())]),
        ("github", github_push(&body, "wrong-secret")),
        // Signed for another body.
        ("github", github_push(&other_body, SECRET)),
        ("github", vec![("x-hub-signature-256", sign(SECRET, &body))]),
        ("gitea", vec![("x-gitea-signature", sign("wrong", &body))]),
        ("gitea", vec![("x-gitea-signature", "not hex".into())]),
        ("gitlab", vec![("x-gitlab-token", "wrong".into())]),
        ("gitlab", vec![("x-gitlab-token", format!("{SECRET}x"))]),
        ("gitlab", vec![]),
        ("generic", vec![("authorization", "Bearer wrong".into())]),
        ("generic", vec![("authorization", SECRET.into())]),
        (
            "generic",
            vec![(
                "x-drover-signature-256",
                format!("sha256={}", sign("wrong", &body)),
            )],
        ),
    ];
    for (provider, headers) in &bad {
        let (code, answer) = post(&env, provider, headers, body.clone()).await;
        assert_eq!(code, 401, "{provider} {headers:?}: {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{answer}");
        assert!(!message.contains(SECRET), "{answer}");
    }
    // Nothing to await for "no fetch": give a triggered fetch (500 ms spacing, a local repo)
    // ample time to have happened, then check none did.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        last_fetch(&env),
        fetched_before,
        "a refused webhook fetched"
    );

    // The same push signed right does fetch: the check above could have failed.
    let (code, _) = post(&env, "github", &github_push(&body, SECRET), body).await;
    assert_eq!(code, 202);
    env.wait_fetched(&pushed).await;
    env.shutdown().await;
}

#[tokio::test]
async fn oversized_bodies_get_413_declared_or_streamed() {
    let mut env = TestEnv::new().await;
    let first = env.commit("first");
    start(&mut env, Some(SECRET), &first).await;
    let big = vec![b' '; 1024 * 1024 + 1];

    let (code, answer) = post(&env, "github", &github_push(&big, SECRET), big.clone()).await;
    assert_eq!(code, 413, "{answer}");

    // Chunked, so no Content-Length announces the size: cut off while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let mut request = env
        .http
        .post(format!("{}/api/v1/webhooks/github", env.drover_url()))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)));
    for (name, value) in github_push(&big, SECRET) {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("POST: {e}"));
    assert_eq!(response.status().as_u16(), 413);

    // At the limit is still read (and, signed right, accepted).
    let limit = vec![b' '; 1024 * 1024];
    let (code, answer) = post(&env, "github", &github_push(&limit, SECRET), limit).await;
    assert_eq!(code, 202, "{answer}");
    env.shutdown().await;
}

#[tokio::test]
async fn pings_pushes_elsewhere_and_other_events_fetch_nothing() {
    let mut env = TestEnv::new().await;
    let first = env.commit("first");
    start(&mut env, Some(SECRET), &first).await;
    let fetched_before = last_fetch(&env);

    let ping = b"{\"zen\":\"Keep it logically awesome.\"}".to_vec();
    let headers = vec![
        ("x-github-event", "ping".to_string()),
        (
            "x-hub-signature-256",
            format!("sha256={}", sign(SECRET, &ping)),
        ),
    ];
    let (code, answer) = post(&env, "github", &headers, ping).await;
    assert_eq!(code, 200, "{answer}");

    let feature = push_payload(&env, "feature");
    let (code, answer) = post(&env, "github", &github_push(&feature, SECRET), feature).await;
    assert_eq!(
        (code, &answer["fetch"]),
        (202, &json!("ignored")),
        "{answer}"
    );

    let elsewhere = json!({
        "ref": "refs/heads/main",
        "repository": { "clone_url": "https://example.invalid/other/repo.git" },
    })
    .to_string()
    .into_bytes();
    let (code, answer) = post(&env, "github", &github_push(&elsewhere, SECRET), elsewhere).await;
    assert_eq!(
        (code, &answer["fetch"]),
        (202, &json!("ignored")),
        "{answer}"
    );

    let issue = b"{}".to_vec();
    let headers = vec![
        ("x-github-event", "issues".to_string()),
        (
            "x-hub-signature-256",
            format!("sha256={}", sign(SECRET, &issue)),
        ),
    ];
    let (code, answer) = post(&env, "github", &headers, issue).await;
    assert_eq!(
        (code, &answer["fetch"]),
        (202, &json!("ignored")),
        "{answer}"
    );

    // See `bad_signatures_and_tokens_get_401_and_trigger_nothing` for why this waits.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        last_fetch(&env),
        fetched_before,
        "an ignored webhook fetched"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn without_a_secret_webhooks_are_off() {
    let mut env = TestEnv::new().await;
    let first = env.commit("first");
    start(&mut env, None, &first).await;
    let body = push_payload(&env, "main");
    let (code, answer) = post(&env, "github", &github_push(&body, ""), body).await;
    assert_eq!(code, 404, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("DROVER_WEBHOOK_SECRET")),
        "{answer}"
    );
    let (code, _) = post(&env, "bitbucket", &[], Vec::new()).await;
    assert_eq!(code, 404);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_in_the_demos_repository_applies_at_once_through_its_post_commit_hook() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no curl (.ci/run installs it)"
        );
        eprintln!("skipped: the demo's post-commit hook needs curl");
        return;
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut demo = common::start_demo(tmp.path(), tmp.path(), &["--poll-interval", "10m"]).await;
    let hook = demo
        .printed
        .iter()
        .any(|line| line.contains("post-commit hook calls drover's Git webhook"));
    assert!(hook, "the demo says nothing of its post-commit hook");
    let (page, repo) = (demo.url.clone(), demo.repo.clone());
    let nomad = demo
        .export("NOMAD_ADDR")
        .unwrap_or_else(|| panic!("no NOMAD_ADDR in {:#?}", demo.printed));
    let hook_file = std::path::Path::new(&repo).join(".git/hooks/post-commit");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&hook_file)
            .unwrap_or_else(|e| panic!("{}: {e}", hook_file.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the hook holds the secret: owner only");
    }
    let http = common::http_client();
    // The first fetch is done once the example's apps are listed: a commit after it is new.
    let deadline = Instant::now() + common::WAIT;
    loop {
        let apps: Vec<Value> = match http.get(format!("{page}api/v1/apps")).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        // Every app of desired-state/ (the example the demo seeds its repository from).
        if apps.len() == example_app_count() {
            break;
        }
        assert!(Instant::now() < deadline, "the demo listed no apps");
        // Polling the demo's API from outside: there is no event to await across processes.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A new app, committed with the git CLI (which runs the hook); polling is 10 minutes away.
    let app = std::path::Path::new(&repo).join("apps/hello");
    std::fs::create_dir_all(&app).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(app.join("app.yaml"), app_yaml("hello", "")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        app.join("job.nomad.hcl"),
        web_jobspec("hello", "nginx:1.27"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=Demo User",
                "-c",
                "user.email=demo@example.org",
            ])
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap_or_else(|e| panic!("git {args:?}: {e}"));
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["add", "apps/hello"]);
    git(&["commit", "-q", "-m", "hello"]);
    let committed = Instant::now();
    let deadline = committed + Duration::from_secs(20);
    loop {
        let found = http
            .get(format!("{nomad}/v1/job/hello"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if found {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the commit was not applied without a poll: no job hello"
        );
        // Polling the demo's Nomad from outside: there is no event to await across processes.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "commit → job registered through the post-commit hook in {:?}",
        committed.elapsed()
    );
    let _ = demo.child.kill().await;
}

/// How many apps desired-state/ holds: the demo lists them all once its first fetch is done.
fn example_app_count() -> usize {
    let apps = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("desired-state/apps");
    std::fs::read_dir(&apps)
        .unwrap_or_else(|e| panic!("{}: {e}", apps.display()))
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("app.yaml").is_file())
        .count()
}
