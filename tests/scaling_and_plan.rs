//! Scaling groups (the autoscaler owns their count), `drover plan` with dependencies, and secrets
//! in diffs.

mod common;

use std::time::Duration;

use common::{TestEnv, WAIT, fast_devstack, http_client};
use serde_json::{Value, json};

/// A service job whose group `web` has a `scaling` block (min 1, max 5) and runs `count`.
fn scaled_jobspec(id: &str, count: u32, memory: u32) -> String {
    format!(
        r#"job "{id}" {{
  datacenters = ["dc1"]

  group "web" {{
    count = {count}

    scaling {{
      min     = 1
      max     = 5
      enabled = true
    }}

    update {{
      min_healthy_time = "1s"
      healthy_deadline = "30s"
    }}

    task "server" {{
      driver = "docker"

      config {{
        image = "nginx:1.27"
      }}

      resources {{
        cpu    = 100
        memory = {memory}
      }}
    }}
  }}
}}
"#
    )
}

// Nomad's own Register (nomad/job_endpoint.go): `PreserveCounts` keeps the live count of every
// existing group, with or without a `scaling` block; a new group takes the body's count.
#[tokio::test]
async fn preserve_counts_keeps_every_existing_groups_count() {
    let devstack = fast_devstack().await;
    let http = http_client();
    let base = devstack.nomad_url();
    let post = reqwest::Method::POST;
    let (status, mut job) = nomad_call(
        &http,
        &base,
        post.clone(),
        "/v1/jobs/parse",
        Some(json!({"JobHCL": scaled_jobspec("two", 1, 64), "Canonicalize": false})),
    )
    .await;
    assert_eq!(status, 200, "{job}");
    let mut worker = job["TaskGroups"][0].clone();
    worker["Name"] = json!("worker");
    worker["Scaling"] = Value::Null;
    if let Some(groups) = job["TaskGroups"].as_array_mut() {
        groups.push(worker.clone());
    }
    let (status, v) = nomad_call(
        &http,
        &base,
        post.clone(),
        "/v1/jobs",
        Some(json!({"Job": job})),
    )
    .await;
    assert_eq!(status, 200, "{v}");

    let mut more = job.clone();
    more["TaskGroups"][0]["Count"] = json!(4);
    more["TaskGroups"][1]["Count"] = json!(2);
    let mut extra = worker;
    extra["Name"] = json!("extra");
    extra["Count"] = json!(2);
    if let Some(groups) = more["TaskGroups"].as_array_mut() {
        groups.push(extra);
    }
    let (status, v) = nomad_call(
        &http,
        &base,
        post.clone(),
        "/v1/jobs",
        Some(json!({"Job": more, "PreserveCounts": true})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, live) = nomad_call(&http, &base, reqwest::Method::GET, "/v1/job/two", None).await;
    assert_eq!(status, 200, "{live}");
    let counts: Vec<(Value, Value)> = live["TaskGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| (g["Name"].clone(), g["Count"].clone()))
        .collect();
    assert_eq!(
        counts,
        [
            (json!("web"), json!(1)),
            (json!("worker"), json!(1)),
            (json!("extra"), json!(2))
        ]
    );
    devstack.shutdown().await;
}

/// Send `body` to the devstack's Nomad API and return (status, JSON body).
async fn nomad_call(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http.request(method, format!("{base}{path}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

// Measured on Nomad 2.0.5, api-facts §7: `nomad job scale` bumps Version and JobModifyIndex; a
// register with `PreserveCounts: true` whose body carries another count creates a new version
// (Version 4 → 5 there) and keeps the live count; re-registering a body equal to the live job
// creates none.
#[tokio::test]
async fn preserve_counts_register_with_another_count_makes_a_version_like_nomad_2_0_5() {
    let devstack = fast_devstack().await;
    let http = http_client();
    let base = devstack.nomad_url();
    let post = reqwest::Method::POST;
    let (status, parsed) = nomad_call(
        &http,
        &base,
        post.clone(),
        "/v1/jobs/parse",
        Some(json!({"JobHCL": scaled_jobspec("web", 1, 64), "Canonicalize": false})),
    )
    .await;
    assert_eq!(status, 200, "{parsed}");
    let (status, v) = nomad_call(
        &http,
        &base,
        post.clone(),
        "/v1/jobs",
        Some(json!({"Job": parsed})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let job = |v: &Value| {
        (
            v["Version"].as_u64().unwrap_or(u64::MAX),
            v["JobModifyIndex"].as_u64().unwrap_or_default(),
            v["TaskGroups"][0]["Count"].as_u64().unwrap_or_default(),
        )
    };
    let read = || async {
        let (status, v) = nomad_call(&http, &base, reqwest::Method::GET, "/v1/job/web", None).await;
        assert_eq!(status, 200, "{v}");
        job(&v)
    };
    let (version, index, count) = read().await;
    assert_eq!((version, count), (0, 1));

    let (status, v) = nomad_call(
        &http,
        &base,
        post.clone(),
        "/v1/job/web/scale",
        Some(json!({"Count": 2, "Target": {"Group": "web"}})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (scaled_version, scaled_index, count) = read().await;
    assert_eq!((scaled_version, count), (1, 2), "a scale is a new version");
    assert!(scaled_index > index, "a scale bumps JobModifyIndex");

    // The Git body (count 1) with PreserveCounts: a new version, the live count kept.
    let (status, v) = nomad_call(
        &http,
        &base,
        post.clone(),
        "/v1/jobs",
        Some(json!({"Job": parsed, "PreserveCounts": true})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (version, index, count) = read().await;
    assert_eq!(
        (version, count),
        (2, 2),
        "PreserveCounts with another body count writes a version and keeps the count"
    );
    assert!(index > scaled_index);
    assert_eq!(v["JobModifyIndex"].as_u64(), Some(index));

    // A body equal to the live job (count 2): no new version, with or without PreserveCounts.
    let mut same = parsed.clone();
    same["TaskGroups"][0]["Count"] = json!(2);
    for preserve in [true, false] {
        let (status, v) = nomad_call(
            &http,
            &base,
            post.clone(),
            "/v1/jobs",
            Some(json!({"Job": same, "PreserveCounts": preserve})),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            read().await,
            (version, index, 2),
            "identical body (PreserveCounts {preserve})"
        );
    }
    devstack.shutdown().await;
}

/// Registers (job writes) among `requests`; a scale is the autoscaler's write, not drover's.
fn registers_of(requests: &[(String, String)]) -> Vec<(String, String)> {
    requests
        .iter()
        .filter(|(m, p)| {
            (m == "POST" || m == "PUT")
                && (p == "/v1/jobs"
                    || p.starts_with("/v1/job/") && !p.ends_with("/plan") && !p.ends_with("/scale"))
        })
        .cloned()
        .collect()
}

fn plans_of(requests: &[(String, String)]) -> usize {
    requests
        .iter()
        .filter(|(_, p)| p.ends_with("/plan"))
        .count()
}

/// Poll the devstack's request log until a request after `from` satisfies `ok`.
async fn wait_request(
    env: &TestEnv,
    from: usize,
    what: &str,
    ok: impl Fn(&(String, String)) -> bool,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let requests = env.nomad_requests().await;
        if requests.iter().skip(from).any(&ok) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; requests since: {:?}",
            requests.get(from..)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait for a reconcile of `app` that started after now and left it Synced and Healthy.
async fn wait_next_synced_reconcile(env: &TestEnv, app: &str) -> drover::controller::AppStatus {
    let since = std::time::SystemTime::now();
    env.wait_app(app, "reconciled again, Synced and Healthy", |s| {
        s.observed_at > since
            && format!("{:?}", s.sync) == "Synced"
            && format!("{:?}", s.health) == "Healthy"
    })
    .await
}

// The scale behaviour here is measured on Nomad 2.0.5, api-facts §7: a scale bumps Version and
// JobModifyIndex, a plan of the Git count shows `Count: "3" => "1" (forces destroy)`, and a
// PreserveCounts register of the Git count writes a new version.
#[tokio::test]
async fn a_scale_of_a_scaling_group_is_not_drift_and_a_git_change_keeps_the_live_count() {
    let mut env = TestEnv::new().await;
    env.write(
        "apps/web/app.yaml",
        "name: web\nresources:\n  - nomad_job: { file: job.nomad.hcl }\n",
    );
    env.write("apps/web/job.nomad.hcl", &scaled_jobspec("web", 1, 64));
    let first = env.commit("web with a scaling group");
    env.start_drover().await;
    env.wait_synced_healthy("web", Some(&first)).await;

    let before_scale = env.nomad_requests().await.len();
    let (status, body) = env
        .nomad_send(
            reqwest::Method::POST,
            "/v1/job/web/scale",
            Some(json!({"Count": 3, "Target": {"Group": "web"}, "Message": "autoscaler"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let scaled = env.job("web").await.unwrap_or_default();
    assert_eq!(scaled["TaskGroups"][0]["Count"], 3);
    let scaled_version = scaled["Version"].as_u64().unwrap_or_default();

    // drover sees the new JobModifyIndex and asks the server about it once...
    wait_request(
        &env,
        before_scale,
        "drover's plan of the scaled job",
        |(_, p)| p == "/v1/job/web/plan",
    )
    .await;
    wait_next_synced_reconcile(&env, "web").await;
    let after_seen = env.nomad_requests().await;
    let since_scale = &after_seen[before_scale..];
    assert_eq!(
        registers_of(since_scale),
        Vec::<(String, String)>::new(),
        "a scale is not drift: no register"
    );
    let job = env.job("web").await.unwrap_or_default();
    assert_eq!(
        job["Version"].as_u64(),
        Some(scaled_version),
        "no new version"
    );
    assert_eq!(job["TaskGroups"][0]["Count"], 3);
    // ...and records the new index, so the next cycles cost nothing.
    let quiet_from = after_seen.len();
    wait_next_synced_reconcile(&env, "web").await;
    wait_next_synced_reconcile(&env, "web").await;
    let quiet = &env.nomad_requests().await[quiet_from..];
    assert_eq!(
        plans_of(quiet),
        0,
        "no plan once the scale is recorded: {quiet:?}"
    );
    assert!(registers_of(quiet).is_empty(), "{quiet:?}");

    // A real change in Git registers once and keeps the autoscaler's count.
    let before_change = env.nomad_requests().await.len();
    env.write("apps/web/job.nomad.hcl", &scaled_jobspec("web", 1, 128));
    let second = env.commit("web: more memory");
    env.wait_synced_healthy("web", Some(&second)).await;
    let since_change = &env.nomad_requests().await[before_change..];
    assert_eq!(registers_of(since_change).len(), 1, "{since_change:?}");
    let job = env.job("web").await.unwrap_or_default();
    assert_eq!(job["Version"].as_u64(), Some(scaled_version + 1));
    assert_eq!(job["TaskGroups"][0]["Count"], 3, "the live count is kept");
    assert_eq!(
        job["TaskGroups"][0]["Tasks"][0]["Resources"]["MemoryMB"],
        128
    );
    env.shutdown().await;
}

/// Run `drover plan <repo> [extra]` against the devstack; (exit code, stdout).
fn drover_plan(env: &TestEnv, extra: &[&str]) -> (Option<i32>, String) {
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_drover"))
            .arg("plan")
            .arg(&env.repo)
            .args(extra)
            .env("NOMAD_ADDR", env.devstack.nomad_url())
            .env_remove("NOMAD_TOKEN")
            .output()
            .unwrap_or_else(|e| panic!("drover plan: {e}"))
    });
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.code(), format!("{stdout}{stderr}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_of_an_app_with_depends_on_judges_changes_not_dependencies() {
    let mut env = TestEnv::new().await;
    env.write("apps/minio/app.yaml", &common::app_yaml("minio", ""));
    env.write(
        "apps/minio/job.nomad.hcl",
        &common::web_jobspec("minio", "minio/minio:latest"),
    );
    env.write(
        "apps/web/app.yaml",
        &common::app_yaml("web", "depends_on: [minio]\n"),
    );
    env.write(
        "apps/web/job.nomad.hcl",
        &common::web_jobspec("web", "nginx:1.27"),
    );
    let rev = env.commit("minio and web, which depends on it");

    // An empty cluster: both would be created; minio's health is the cluster's, not an error.
    let (code, out) = drover_plan(&env, &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(!out.contains("error"), "{out}");
    assert!(out.contains("create nomad_job/default/minio"), "{out}");
    assert!(out.contains("create nomad_job/default/web"), "{out}");
    assert!(out.contains("depends on minio (not healthy"), "{out}");
    let (code, out) = drover_plan(&env, &["--app", "web"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        !out.contains("app minio"),
        "only the selected app is shown: {out}"
    );

    env.start_drover().await;
    env.wait_synced_healthy("minio", Some(&rev)).await;
    env.wait_synced_healthy("web", Some(&rev)).await;
    let (code, out) = drover_plan(&env, &[]);
    assert_eq!(code, Some(0), "nothing changed: {out}");
    assert!(out.contains("depends on minio (Healthy)"), "{out}");
    env.stop_drover().await;

    // A change to the dependent app (in the working copy `plan` reads): exit 2 with its diff.
    env.write(
        "apps/web/job.nomad.hcl",
        &common::web_jobspec("web", "nginx:1.28"),
    );
    let (code, out) = drover_plan(&env, &["--app", "web"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(!out.contains("error"), "{out}");
    assert!(out.contains("update nomad_job/default/web"), "{out}");
    assert!(out.contains("nginx:1.28"), "{out}");
    env.shutdown().await;
}

/// `web_jobspec` with a literal secret and a harmless value in the task's `env`.
fn jobspec_with_env_secret(id: &str) -> String {
    common::web_jobspec(id, "nginx:1.27").replace(
        "driver = \"docker\"\n",
        "driver = \"docker\"\n\n      env {\n        DB_PASSWORD = \"hunter2\"\n        LOG_LEVEL   = \"debug\"\n      }\n",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_looking_env_values_never_reach_the_page_or_api_but_show_secrets_reveals_them() {
    let mut env = TestEnv::new().await;
    env.write(
        "apps/web/app.yaml",
        &common::app_yaml("web", "sync: { auto: false }\n"),
    );
    env.write("apps/web/job.nomad.hcl", &jobspec_with_env_secret("web"));
    let rev = env.commit("web with a literal secret in env");
    env.start_drover().await;
    // auto-sync off: the app waits OutOfSync with its create diff on the page and in the API.
    env.wait_app("web", "OutOfSync with a diff", |s| {
        s.revision == rev
            && format!("{:?}", s.sync) == "OutOfSync"
            && s.resources.iter().any(|r| r.diff.is_some())
    })
    .await;
    let web = env
        .drover
        .as_ref()
        .map(|d| d.web_addr)
        .unwrap_or_else(|| panic!("drover runs"));
    for path in ["/api/v1/apps/web", "/api/v1/apps", "/apps/web"] {
        let text = env
            .http
            .get(format!("http://{web}{path}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .text()
            .await
            .unwrap_or_default();
        assert!(
            text.contains("DB_PASSWORD"),
            "{path} shows the diff: {text}"
        );
        assert!(text.contains("debug"), "{path} shows other values: {text}");
        assert!(!text.contains("hunter2"), "{path} leaks the secret: {text}");
    }

    let (code, out) = drover_plan(&env, &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("Env[DB_PASSWORD]: \"<redacted>\""), "{out}");
    assert!(!out.contains("hunter2"), "{out}");
    let (code, out) = drover_plan(&env, &["--show-secrets"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("Env[DB_PASSWORD]: \"hunter2\""), "{out}");
    env.shutdown().await;
}

/// `scaled_jobspec` plus a group `worker` without a `scaling` block, running `worker_count`.
fn jobspec_with_worker(id: &str, worker_count: u32) -> String {
    let spec = scaled_jobspec(id, 1, 64);
    let end = spec
        .trim_end()
        .strip_suffix('}')
        .unwrap_or(&spec)
        .to_string();
    format!(
        r#"{end}
  group "worker" {{
    count = {worker_count}

    task "queue" {{
      driver = "docker"

      config {{
        image = "redis:7"
      }}
    }}
  }}
}}
"#
    )
}

// Measured on Nomad 2.0.5, api-facts §7 (a scale is a new version); Nomad's Register applies
// `PreserveCounts` to every group, so a Git count change of a group without `scaling` must be
// registered without it, with the scaling group's live count copied in by drover.
#[tokio::test]
async fn a_git_count_change_of_a_group_without_scaling_applies_and_the_scaled_count_stays() {
    let mut env = TestEnv::new().await;
    env.write("apps/web/app.yaml", &common::app_yaml("web", ""));
    env.write("apps/web/job.nomad.hcl", &jobspec_with_worker("web", 1));
    let first = env.commit("web and worker");
    env.start_drover().await;
    env.wait_synced_healthy("web", Some(&first)).await;
    let (status, body) = env
        .nomad_send(
            reqwest::Method::POST,
            "/v1/job/web/scale",
            Some(json!({"Count": 3, "Target": {"Group": "web"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    env.write("apps/web/job.nomad.hcl", &jobspec_with_worker("web", 2));
    let second = env.commit("two workers");
    env.wait_synced_healthy("web", Some(&second)).await;
    let job = env.job("web").await.unwrap_or_default();
    let count = |name: &str| {
        job["TaskGroups"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|g| g["Name"] == name)
            .map(|g| g["Count"].clone())
    };
    assert_eq!(
        count("worker"),
        Some(json!(2)),
        "Git's count of a plain group"
    );
    assert_eq!(count("web"), Some(json!(3)), "the autoscaler's count");
    env.shutdown().await;
}
