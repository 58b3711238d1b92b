//! `drover import nomad --out <repo>`: what runs in the cluster becomes a desired-state repository
//! whose first sync writes nothing, and drover owns what it adopted (prune works afterwards).

mod common;

use common::{TestEnv, web_jobspec};
use reqwest::Method;
use serde_json::{Value, json};

/// Nomad and Consul requests that change something (parse and plan only read).
fn writes(requests: &[(String, String)]) -> Vec<(String, String)> {
    requests
        .iter()
        .filter(|(method, path)| {
            matches!(method.as_str(), "PUT" | "POST" | "DELETE")
                && !path.ends_with("/parse")
                && !path.ends_with("/plan")
                && !path.starts_with("/_devstack")
        })
        .cloned()
        .collect()
}

/// Run the drover binary against the devstack (async: the devstack answers on this runtime).
async fn drover(env: &TestEnv, args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(args)
        .env("NOMAD_ADDR", env.devstack.nomad_url())
        .env("CONSUL_HTTP_ADDR", env.devstack.consul_url())
        .env_remove("NOMAD_TOKEN")
        .env_remove("CONSUL_HTTP_TOKEN")
        .env("DROVER_LOG_FORMAT", "text")
        .output()
        .await
        .unwrap_or_else(|e| panic!("drover {args:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Register `hcl` as `nomad job run` does: parsed by the cluster, with its submission stored
/// (`with_submission`) or, like a job sent by another tool as JSON, without one.
async fn run_job(env: &TestEnv, hcl: &str, flags: Value, with_submission: bool) {
    run_job_with_meta(env, hcl, flags, with_submission, json!({})).await;
}

/// [`run_job`] with job meta added to the parsed job.
async fn run_job_with_meta(
    env: &TestEnv,
    hcl: &str,
    flags: Value,
    with_submission: bool,
    meta: Value,
) {
    let var_lines: String = flags
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect();
    let (status, job) = env
        .nomad_send(
            Method::POST,
            "/v1/jobs/parse",
            Some(json!({ "JobHCL": hcl, "Variables": var_lines })),
        )
        .await;
    assert_eq!(status, 200, "parse: {job}");
    let mut job = job;
    if meta.as_object().is_some_and(|m| !m.is_empty()) {
        job["Meta"] = meta;
    }
    let mut body = json!({ "Job": job });
    if with_submission {
        body["Submission"] = json!({
            "Source": hcl, "Format": "hcl2", "VariableFlags": flags, "Variables": ""
        });
    }
    let (status, answer) = env.nomad_send(Method::POST, "/v1/jobs", Some(body)).await;
    assert_eq!(status, 200, "register: {answer}");
}

/// A job that mounts the CSI volume `media`; its image comes from a var file.
const POSTGRES_JOBSPEC: &str = r#"variable "image" {
  type = string
}

job "postgres" {
  datacenters = ["dc1"]

  group "db" {
    volume "media" {
      type            = "csi"
      source          = "media"
      access_mode     = "single-node-writer"
      attachment_mode = "file-system"
    }

    task "db" {
      driver = "docker"

      config {
        image = var.image
      }

      volume_mount {
        volume      = "media"
        destination = "/data"
      }

      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
"#;

async fn consul_put(env: &TestEnv, path: &str, body: Value) {
    let r = env
        .http
        .put(format!("{}{path}", env.devstack.consul_url()))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {path}: {e}"));
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    assert!(status.is_success(), "PUT {path}: {status}: {text}");
}

#[tokio::test]
async fn an_imported_cluster_syncs_with_zero_writes_and_drover_owns_it() {
    let mut env = TestEnv::new().await;
    // An HCL2 job run with a -var flag (its submission is stored), a job registered as JSON only,
    // a CSI volume and a config entry, all made outside drover.
    run_job(
        &env,
        &web_jobspec("web", "nginx:1.27"),
        json!({ "image": "nginx:1.26" }),
        true,
    )
    .await;
    run_job(&env, &web_jobspec("api", "httpd:2.4"), json!({}), false).await;
    // Left out: a job that looks like a drover hook run, and a stopped job.
    run_job_with_meta(
        &env,
        &web_jobspec("seed", "busybox:1"),
        json!({}),
        false,
        json!({ "drover.hook-run": "1" }),
    )
    .await;
    run_job(&env, &web_jobspec("old", "nginx:1.20"), json!({}), true).await;
    let (status, answer) = env.nomad_send(Method::DELETE, "/v1/job/old", None).await;
    assert_eq!(status, 200, "stop old: {answer}");
    let (status, answer) = env
        .nomad_send(
            Method::PUT,
            "/v1/volume/csi/media/create",
            Some(json!({ "Volumes": [{
                "ID": "media", "Name": "media", "PluginID": "glusterfs",
                "RequestedCapacityMin": 1_073_741_824u64,
                "RequestedCapabilities": [
                    { "AccessMode": "single-node-writer", "AttachmentMode": "file-system" }
                ]
            }] })),
        )
        .await;
    assert_eq!(status, 200, "volume create: {answer}");
    let (status, answer) = env
        .nomad_send(
            Method::PUT,
            "/v1/volume/csi/scratch/create",
            Some(json!({ "Volumes": [{
                "ID": "scratch", "Name": "scratch", "PluginID": "glusterfs",
                "RequestedCapabilities": [
                    { "AccessMode": "single-node-writer", "AttachmentMode": "file-system" }
                ]
            }] })),
        )
        .await;
    assert_eq!(status, 200, "volume create: {answer}");
    // `nomad job run -var-file=postgres.vars.hcl postgres.nomad.hcl`: the var file is in the
    // submission.
    let var_file = "image = \"postgres:16\"\n";
    let (status, job) = env
        .nomad_send(
            Method::POST,
            "/v1/jobs/parse",
            Some(json!({ "JobHCL": POSTGRES_JOBSPEC, "Variables": var_file })),
        )
        .await;
    assert_eq!(status, 200, "parse postgres: {job}");
    let (status, answer) = env
        .nomad_send(
            Method::POST,
            "/v1/jobs",
            Some(json!({ "Job": job, "Submission": {
                "Source": POSTGRES_JOBSPEC, "Format": "hcl2", "VariableFlags": {}, "Variables": var_file
            } })),
        )
        .await;
    assert_eq!(status, 200, "register postgres: {answer}");
    consul_put(
        &env,
        "/v1/config",
        json!({ "Kind": "service-defaults", "Name": "web", "Protocol": "http" }),
    )
    .await;
    // The devstack keeps the submission, as Nomad 2.0.5 does (§1.3): the importer relies on it.
    let (status, submission) = env.nomad("/v1/job/web/submission").await;
    assert_eq!(status, 200, "{submission}");
    assert_eq!(submission["VariableFlags"]["image"], "nginx:1.26");
    let (status, _) = env.nomad("/v1/job/api/submission").await;
    assert_eq!(
        status, 404,
        "a job registered without a submission has none"
    );

    let repo = env.repo.display().to_string();
    let (ok, report) = drover(&env, &["import", "nomad", "--out", &repo]).await;
    assert!(ok, "import failed:\n{report}");
    for line in [
        "adopted  nomad_job/default/web -> apps/web (from stored submission (hcl2), owner meta written)",
        "adopted  nomad_job/default/api -> apps/api (from job JSON (no stored submission), owner meta written)",
        "adopted  csi_volume/default/media -> apps/postgres ",
        "adopted  csi_volume/default/scratch -> apps/csi-scratch ",
        "adopted  consul_config_entry/service-defaults/web -> apps/web",
        "skipped  nomad_job/default/seed: a drover hook job",
        "skipped  nomad_job/default/old: stopped",
    ] {
        assert!(report.contains(line), "missing {line:?} in:\n{report}");
    }
    let app_yaml = std::fs::read_to_string(env.repo.join("apps/web/app.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        app_yaml.contains("image: nginx:1.26"),
        "the -var flag becomes app.yaml variables:\n{app_yaml}"
    );
    assert!(env.repo.join("apps/web/web.nomad.hcl").exists());
    assert!(env.repo.join("apps/api/api.nomad.json").exists());
    let var_file_kept = std::fs::read_to_string(env.repo.join("apps/postgres/postgres.vars.hcl"))
        .unwrap_or_else(|e| panic!("the submission's var file beside the jobspec: {e}"));
    assert_eq!(var_file_kept, var_file);
    assert!(!env.repo.join("apps/seed").exists() && !env.repo.join("apps/old").exists());
    let (ok, validated) = drover(&env, &["validate", &repo]).await;
    assert!(ok, "validate failed:\n{validated}");

    // Prune on for every app (repository defaults), so removing one later prunes it.
    env.write("drover.yaml", "sync: { prune: true }\n");
    let rev = env.commit("import nomad");
    let nomad_before = env.nomad_requests().await.len();
    let consul_before = env.consul_requests().await.len();
    env.start_drover().await;
    for app in ["web", "api", "postgres", "csi-scratch"] {
        env.wait_synced_healthy(app, Some(&rev)).await;
    }
    // A full timer-driven cycle more, so a late write could not slip past the count.
    let mark = std::time::SystemTime::now();
    for app in ["web", "api", "postgres", "csi-scratch"] {
        env.wait_cycle_since(app, mark).await;
    }
    let nomad_after = env.nomad_requests().await;
    let consul_after = env.consul_requests().await;
    let nomad_writes = writes(&nomad_after[nomad_before.min(nomad_after.len())..]);
    let consul_writes = writes(&consul_after[consul_before.min(consul_after.len())..]);
    assert!(
        nomad_writes.is_empty(),
        "first sync wrote to Nomad: {nomad_writes:?}"
    );
    assert!(
        consul_writes.is_empty(),
        "first sync wrote to Consul: {consul_writes:?}"
    );

    // drover owns what it adopted: the app removed from Git (prune on) is purged.
    env.remove("apps/api");
    let rev = env.commit("drop api");
    env.wait_fetched(&rev).await;
    env.wait_job("api", "purged", |job| job.is_none()).await;
    assert!(env.job("web").await.is_some(), "web stays");
    env.shutdown().await;
}

#[tokio::test]
async fn a_job_changed_while_importing_is_not_overwritten() {
    let env = TestEnv::new().await;
    run_job(&env, &web_jobspec("web", "nginx:1.27"), json!({}), true).await;
    // Someone registers between the import's read and its write: Nomad refuses the write
    // (EnforceIndex), as it would for the import's stale index.
    env.control(
        "/faults",
        json!({
            "system": "nomad", "method": "POST", "path": "^/v1/jobs$", "kind": "error",
            "status": 500, "count": 1,
            "body": "Enforcing job modify index 12: job exists with conflicting job modify index: 13"
        }),
    )
    .await;
    let repo = env.repo.display().to_string();
    let (ok, report) = drover(&env, &["import", "nomad", "--out", &repo]).await;
    assert!(ok, "import failed:\n{report}");
    assert!(
        report
            .contains("adopted  nomad_job/default/web -> apps/web (from stored submission (hcl2))"),
        "not stamped:\n{report}"
    );
    assert!(
        report.contains("nomad_job/default/web changed while importing"),
        "{report}"
    );
    let job = env.job("web").await.unwrap_or_else(|| panic!("web"));
    assert!(job["Meta"].get("drover.app").is_none(), "{}", job["Meta"]);
    env.shutdown().await;
}
