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
