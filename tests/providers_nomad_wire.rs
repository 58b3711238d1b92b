//! The Nomad client's side of the wire, pinned against a capturing HTTP server: methods, paths,
//! query parameters, headers and body keys exactly as api-facts.md §1 gives them, and how error
//! answers are classified. (The devstack tests pin the server side with its own types.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::IntoResponse;
use drover::providers::nomad::types::{CsiMountOptions, CsiVolumeRequest};
use drover::providers::nomad::{NomadClient, NomadConfig, QueryOptions, RegisterOptions};
use drover::telemetry::Redacted;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Value,
}

type Answer = Arc<dyn Fn(&Seen) -> (StatusCode, String) + Send + Sync>;

#[derive(Clone)]
struct Capture {
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Answer,
}

async fn capture(State(c): State<Capture>, request: Request) -> impl IntoResponse {
    let (parts, body) = request.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method.clone(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers: parts.headers.clone(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    };
    let (status, text) = (c.answer)(&seen);
    if let Ok(mut all) = c.seen.lock() {
        all.push(seen);
    }
    (status, [("X-Nomad-Index", "77")], text)
}

async fn server(
    answer: impl Fn(&Seen) -> (StatusCode, String) + Send + Sync + 'static,
) -> (NomadClient, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new().fallback(capture).with_state(Capture {
        seen: seen.clone(),
        answer: Arc::new(answer),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let client = NomadClient::new(NomadConfig {
        address: format!("http://{addr}"),
        token: Some(Redacted("secret-token".into())),
        region: Some("eu".into()),
        request_timeout: Duration::from_secs(5),
        max_retries: 2,
        ..NomadConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    (client, seen)
}

fn last(seen: &Arc<Mutex<Vec<Seen>>>) -> Seen {
    seen.lock()
        .ok()
        .and_then(|s| s.last().cloned())
        .unwrap_or_else(|| panic!("no request"))
}

fn ok_json(v: Value) -> (StatusCode, String) {
    (StatusCode::OK, v.to_string())
}

#[tokio::test]
async fn register_sends_enforce_index_submission_token_and_region() {
    // §1.3: POST /v1/jobs, body {Job, EnforceIndex, JobModifyIndex, Submission{Source,Format,Variables}}.
    let (client, seen) =
        server(|_| ok_json(json!({"EvalID": "e1", "JobModifyIndex": 43, "Index": 44}))).await;
    let job = json!({"ID": "web", "Namespace": "media"});
    let options = RegisterOptions {
        enforce_index: Some(42),
        submission_source: Some("job \"web\" {}".into()),
        submission_format: Some("hcl2".into()),
        submission_variables: Some("image = \"x\"".into()),
        ..RegisterOptions::default()
    };
    let response = client
        .register_job(&job, &options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.job_modify_index, 43);
    let s = last(&seen);
    assert_eq!(s.method, Method::POST);
    assert_eq!(s.path, "/v1/jobs");
    assert!(
        s.query.contains("namespace=media") && s.query.contains("region=eu"),
        "{}",
        s.query
    );
    assert_eq!(s.headers["X-Nomad-Token"], "secret-token");
    assert_eq!(s.body["EnforceIndex"], true);
    assert_eq!(s.body["JobModifyIndex"], 42);
    assert_eq!(s.body["Job"]["ID"], "web");
    assert_eq!(
        s.body["Submission"],
        json!({"Source": "job \"web\" {}", "Format": "hcl2", "Variables": "image = \"x\""})
    );
    assert!(s.body.get("PreserveCounts").is_none());
}

#[tokio::test]
async fn parse_and_plan_bodies_use_the_documented_keys() {
    // §1.2: {JobHCL, Canonicalize, Variables}; §1.5: POST /v1/job/:id/plan with {Job, Diff: true}.
    let (client, seen) = server(|s| {
        if s.path.ends_with("/plan") {
            ok_json(json!({"JobModifyIndex": 0, "Diff": {"Type": "Added", "ID": "web", "Fields": null, "Objects": null, "TaskGroups": null},
                "Annotations": {"DesiredTGUpdates": {"web": {"Place": 1, "Ignore": 0}}}, "FailedTGAllocs": null, "Warnings": ""}))
        } else {
            ok_json(json!({"ID": "web"}))
        }
    })
    .await;
    client
        .parse_job("job \"web\" {}", Some("a = 1"), false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = last(&seen);
    assert_eq!(
        (s.method.clone(), s.path.as_str()),
        (Method::POST, "/v1/jobs/parse")
    );
    assert_eq!(
        s.body,
        json!({"JobHCL": "job \"web\" {}", "Canonicalize": false, "Variables": "a = 1"})
    );
    let plan = client
        .plan_job(&json!({"ID": "web"}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = last(&seen);
    assert_eq!(s.path, "/v1/job/web/plan");
    assert_eq!(s.body["Diff"], true);
    assert_eq!(plan.job_modify_index, 0);
    assert_eq!(
        plan.diff.map(|d| d.diff_type),
        Some(drover::providers::nomad::types::DiffType::Added)
    );
    let updates = plan
        .annotations
        .and_then(|a| a.desired_tg_updates)
        .unwrap_or_default();
    assert_eq!(updates.get("web").map(|u| u.place), Some(1));
}

#[tokio::test]
async fn blocking_lists_send_index_and_wait_in_milliseconds_and_read_x_nomad_index() {
    // §1.1: index=N&wait=<ms>ms (the Go client's form); the index comes from X-Nomad-Index.
    let (client, seen) = server(|_| ok_json(json!([]))).await;
    let listed = client
        .list_jobs(
            "*",
            QueryOptions {
                index: 12,
                wait: Some(Duration::from_secs(300)),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed.index, 77);
    let s = last(&seen);
    assert_eq!(s.path, "/v1/jobs");
    for part in ["namespace=*", "meta=true", "index=12", "wait=300000ms"] {
        assert!(s.query.contains(part), "{part} in {}", s.query);
    }
    client
        .list_csi_volumes("*", QueryOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = last(&seen);
    assert_eq!(s.path, "/v1/volumes");
    assert!(
        s.query.contains("type=csi"),
        "without type=csi Nomad answers []: {}",
        s.query
    );
    assert!(!s.query.contains("index="), "a first list does not block");
}

#[tokio::test]
async fn csi_create_and_register_are_put_with_a_volumes_array() {
    // §1.10: PUT only (POST is 405); register is /v1/volume/csi/:id, create is .../create.
    let (client, seen) = server(|_| ok_json(json!({"Volumes": []}))).await;
    let volume = CsiVolumeRequest {
        id: "vol".into(),
        name: "vol".into(),
        namespace: "default".into(),
        plugin_id: "glusterfs".into(),
        external_id: None,
        requested_capacity_min: 0,
        requested_capacity_max: 0,
        requested_capabilities: Vec::new(),
        mount_options: CsiMountOptions::default(),
        parameters: Default::default(),
        secrets: Redacted(Default::default()),
        context: Default::default(),
        snapshot_id: String::new(),
        clone_id: String::new(),
        access_mode: String::new(),
        attachment_mode: String::new(),
    };
    client
        .put_csi_volume("default", &volume, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = last(&seen);
    assert_eq!(
        (s.method.clone(), s.path.as_str()),
        (Method::PUT, "/v1/volume/csi/vol/create")
    );
    assert_eq!(s.body["Volumes"][0]["ID"], "vol");
    assert_eq!(s.body["Volumes"][0]["PluginID"], "glusterfs");
    client
        .put_csi_volume("default", &volume, true)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = last(&seen);
    assert_eq!(
        (s.method.clone(), s.path.as_str()),
        (Method::PUT, "/v1/volume/csi/vol")
    );
}

#[tokio::test]
async fn plain_text_errors_are_classified_and_only_transient_ones_retried() {
    // §1.12: EnforceIndex conflicts are 500 text; 4xx is never retried; 5xx leaderless is.
    let (client, seen) = server(|s| match s.path.as_str() {
        "/v1/jobs" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Enforcing job modify index 41: job exists with conflicting job modify index: 42"
                .into(),
        ),
        "/v1/job/missing" => (StatusCode::NOT_FOUND, "job not found".into()),
        "/v1/jobs/parse" => (
            StatusCode::BAD_REQUEST,
            "Failed to parse job: input.hcl:1,1-2: Invalid".into(),
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "No cluster leader".into(),
        ),
    })
    .await;
    let count = |seen: &Arc<Mutex<Vec<Seen>>>, path: &str| {
        seen.lock()
            .map(|s| s.iter().filter(|x| x.path == path).count())
            .unwrap_or(0)
    };

    let err = client
        .register_job(
            &json!({"ID": "web"}),
            &RegisterOptions {
                enforce_index: Some(41),
                ..Default::default()
            },
        )
        .await
        .err()
        .unwrap_or_else(|| panic!("expected an error"));
    assert!(
        err.is_enforce_index_conflict() && !err.is_transient(),
        "{err}"
    );
    assert_eq!(
        count(&seen, "/v1/jobs"),
        1,
        "a register is never retried blindly"
    );

    assert_eq!(
        client.read_job("default", "missing").await.ok(),
        Some(None),
        "404 job not found reads as absent"
    );

    let err = client
        .parse_job("x", None, false)
        .await
        .err()
        .unwrap_or_else(|| panic!("expected an error"));
    assert_eq!(err.status(), Some(400));
    assert_eq!(count(&seen, "/v1/jobs/parse"), 1, "4xx is not retried");

    let err = client
        .leader()
        .await
        .err()
        .unwrap_or_else(|| panic!("expected an error"));
    assert!(err.is_transient());
    assert_eq!(
        count(&seen, "/v1/status/leader"),
        3,
        "one try and max_retries (2) retries"
    );
}
