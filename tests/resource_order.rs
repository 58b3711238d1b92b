//! Order inside an app: explicit `wave:` and implicit edges (a job's CSI volume, Vault secret,
//! bucket, Connect upstream's intentions) apply resources in dependency order whatever their
//! listing order; a cycle is an error naming it; a failure blocks only its dependents and is shown
//! on them; deletion runs in reverse order. And the preflight of a job: a missing CSI volume or an
//! unhealthy plugin or a missing bucket blocks only that job, until fixed.

mod common;

use common::{TestEnv, web_jobspec};
use drover::controller::SyncResult;
use drover::source::Revision;
use drover_devstack::seed::SeedCsiPlugin;
use serde_json::{Value, json};

/// Every request the devstack served, all systems: `(seq, system, method, path)`.
async fn request_log(env: &TestEnv) -> Vec<(u64, String, String, String)> {
    let url = format!("{}/_devstack/requests", env.devstack.nomad_url());
    let v: Value = env
        .http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("request log: {e}"))
        .json()
        .await
        .unwrap_or(Value::Null);
    let entries = v.get("entries").cloned().unwrap_or(v);
    entries
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (
                e["Seq"].as_u64().unwrap_or_default(),
                field("System"),
                field("Method"),
                field("Path"),
            )
        })
        .collect()
}

/// The sequence number of the first request with this method and path.
fn seq_of(log: &[(u64, String, String, String)], method: &str, path: &str) -> u64 {
    log.iter()
        .find(|(_, _, m, p)| m == method && p == path)
        .map(|(seq, ..)| *seq)
        .unwrap_or_else(|| panic!("no {method} {path} in {log:#?}"))
}

/// `web_jobspec` whose group mounts the CSI volume `source`.
fn jobspec_mounting(id: &str, source: &str) -> String {
    web_jobspec(id, "nginx:1.27").replace(
        "    task \"server\" {",
        &format!(
            "    volume \"data\" {{\n      type            = \"csi\"\n      source          = \"{source}\"\n      access_mode     = \"single-node-writer\"\n      attachment_mode = \"file-system\"\n    }}\n\n    task \"server\" {{"
        ),
    )
}

/// `jobspec_mounting` whose service also has a Connect upstream to `upstream`.
fn jobspec_with_upstream(id: &str, source: &str, upstream: &str) -> String {
    jobspec_mounting(id, source).replace(
        "      tags = [\"public\"]\n",
        &format!(
            "      tags = [\"public\"]\n\n      connect {{\n        sidecar_service {{\n          proxy {{\n            upstreams {{\n              destination_name = \"{upstream}\"\n              local_bind_port  = 9000\n            }}\n          }}\n        }}\n      }}\n"
        ),
    )
}

const VOLUME: &str =
    "capabilities: [{ access_mode: single-node-writer, attachment_mode: file-system }]";

fn resource_message(status: &drover::controller::AppStatus, id: &str) -> String {
    status
        .resources
        .iter()
        .find(|r| r.id == id)
        .map(|r| r.message.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_listed_in_reverse_order_apply_in_dependency_order() {
    let mut env = TestEnv::new().await;
    env.write(
        "apps/media/web.nomad.hcl",
        &jobspec_with_upstream("web", "media_data", "minio"),
    );
    env.write(
        "apps/media/last.nomad.hcl",
        &web_jobspec("last", "nginx:1.27"),
    );
    // Dependents first: the job with an explicit late wave, the job, its upstream's intentions
    // (after that service's defaults), then the volume it mounts.
    env.write(
        "apps/media/app.yaml",
        &format!(
            "name: media\nresources:\n  - nomad_job: {{ file: last.nomad.hcl }}\n    wave: 5\n  - nomad_job: {{ file: web.nomad.hcl }}\n  - consul_config_entry: {{ Kind: service-intentions, Name: minio, Sources: [{{ Name: web, Action: allow }}] }}\n  - consul_config_entry: {{ Kind: service-defaults, Name: minio, Protocol: http }}\n  - csi_volume: {{ id: media_data, plugin_id: glusterfs, {VOLUME} }}\n"
        ),
    );
    env.commit("media, dependents first");
    env.start_drover().await;
    env.wait_synced_healthy("media", None).await;

    let log = request_log(&env).await;
    let volume = seq_of(&log, "PUT", "/v1/volume/csi/media_data/create");
    let writes: Vec<u64> = log
        .iter()
        .filter(|(_, system, m, p)| system == "consul" && m == "PUT" && p == "/v1/config")
        .map(|(seq, ..)| *seq)
        .collect();
    let registers: Vec<u64> = log
        .iter()
        .filter(|(_, _, m, p)| m == "POST" && p == "/v1/jobs")
        .map(|(seq, ..)| *seq)
        .collect();
    assert_eq!(writes.len(), 2, "{log:#?}");
    assert_eq!(registers.len(), 2, "{log:#?}");
    assert!(
        volume < registers[0] && writes[1] < registers[0],
        "the volume and both config entries are written before any job: {log:#?}"
    );
    // Which job and which entry came first: the live objects' indexes say.
    let (_, web) = env.nomad("/v1/job/web").await;
    let (_, last) = env.nomad("/v1/job/last").await;
    assert!(
        web["CreateIndex"].as_u64() < last["CreateIndex"].as_u64(),
        "wave 5 is registered after the job of wave 1: {web:#?} {last:#?}"
    );
    let consul = |path: &'static str| {
        let url = format!("{}{path}", env.devstack.consul_url());
        let http = env.http.clone();
        async move {
            let v: Value = http
                .get(url)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .json()
                .await
                .unwrap_or(Value::Null);
            v["CreateIndex"].as_u64().unwrap_or_default()
        }
    };
    let defaults = consul("/v1/config/service-defaults/minio").await;
    let intentions = consul("/v1/config/service-intentions/minio").await;
    assert!(
        0 < defaults && defaults < intentions,
        "service-defaults before the intentions of the same service"
    );
    env.shutdown().await;
}

fn rev(files: &[(&str, &str)]) -> Revision {
    Revision::from_files(
        "test",
        files
            .iter()
            .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
            .collect(),
    )
}

#[test]
fn a_cycle_is_an_error_at_validate_naming_the_whole_cycle_with_file_and_line() {
    let job = jobspec_mounting("loop", "loop_data");
    let app = format!(
        "name: loop\nresources:\n  - nomad_job: {{ file: job.nomad.hcl }}\n    wave: 1\n  - csi_volume: {{ id: loop_data, plugin_id: glusterfs, {VOLUME} }}\n    wave: 2\n"
    );
    let loaded = drover::desired::load(&rev(&[
        ("apps/loop/app.yaml", &app),
        ("apps/loop/job.nomad.hcl", &job),
    ]));
    let Err(diagnostics) = &loaded.apps[0].result else {
        panic!("a cycle must make the app invalid");
    };
    let shown: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(diagnostics.len(), 1, "{shown:#?}");
    assert_eq!(diagnostics[0].file, "apps/loop/app.yaml");
    assert_eq!(diagnostics[0].line, 3, "{shown:#?}");
    assert_eq!(
        diagnostics[0].message,
        "dependency cycle: nomad_job/default/loop → csi_volume/default/loop_data → nomad_job/default/loop"
    );

    // Without the contradicting waves the same resources load.
    let fine = app.replace("    wave: 2\n", "");
    let loaded = drover::desired::load(&rev(&[
        ("apps/loop/app.yaml", &fine),
        ("apps/loop/job.nomad.hcl", &job),
    ]));
    assert!(loaded.apps[0].result.is_ok(), "{:?}", loaded.apps[0].result);
}

#[test]
fn a_wave_must_be_a_non_negative_integer_beside_a_kind() {
    let cases = [
        ("    wave: -1\n", "wave -1 is out of range"),
        ("    wave: soon\n", "expected a wave (an integer), found"),
    ];
    for (wave, message) in cases {
        let app = format!("name: w\nresources:\n  - nomad_job: {{ file: job.nomad.hcl }}\n{wave}");
        let loaded = drover::desired::load(&rev(&[
            ("apps/w/app.yaml", &app),
            ("apps/w/job.nomad.hcl", &web_jobspec("w", "nginx:1.27")),
        ]));
        let Err(diagnostics) = &loaded.apps[0].result else {
            panic!("{wave} must be refused");
        };
        let d = &diagnostics[0];
        assert!(d.message.starts_with(message), "{d}");
        assert_eq!(
            (d.file.as_str(), d.line, d.field.as_deref()),
            ("apps/w/app.yaml", 4, Some("resources[0].wave"))
        );
    }
    let only_wave =
        drover::desired::load(&rev(&[("apps/w/app.yaml", "resources:\n  - wave: 1\n")]));
    let Err(diagnostics) = &only_wave.apps[0].result else {
        panic!("an item with only a wave has no resource");
    };
    assert_eq!(diagnostics[0].message, "empty a resource");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_is_reported_on_the_app_and_the_other_apps_keep_syncing() {
    let mut env = TestEnv::new().await;
    env.write(
        "apps/loop/job.nomad.hcl",
        &jobspec_mounting("loop", "loop_data"),
    );
    env.write(
        "apps/loop/app.yaml",
        &format!(
            "name: loop\nresources:\n  - nomad_job: {{ file: job.nomad.hcl }}\n    wave: 1\n  - csi_volume: {{ id: loop_data, plugin_id: glusterfs, {VOLUME} }}\n    wave: 2\n"
        ),
    );
    env.sync_web_app("").await;
    let status = env
        .wait_app("loop", "invalid", |s| !s.errors.is_empty())
        .await;
    assert_eq!(format!("{:?}", status.sync), "InvalidSpec");
    assert!(
        status.errors.iter().any(|e| e.contains(
            "dependency cycle: nomad_job/default/loop → csi_volume/default/loop_data → nomad_job/default/loop"
        )),
        "{:?}",
        status.errors
    );
    assert!(env.job("loop").await.is_none());
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_dependency_blocks_its_dependent_and_is_shown_on_it_until_it_succeeds() {
    let mut env = TestEnv::new().await;
    // Consul refuses every config-entry write for now.
    let fault = env
        .control(
            "/faults",
            json!({"system": "consul", "method": "PUT", "path": "/v1/config", "kind": "error", "status": 500, "body": "injected"}),
        )
        .await;
    env.write(
        "apps/media/web.nomad.hcl",
        &jobspec_with_upstream("web", "media_data", "minio"),
    );
    env.write(
        "apps/media/other.nomad.hcl",
        &web_jobspec("other", "nginx:1.27"),
    );
    env.write(
        "apps/media/app.yaml",
        &format!(
            "name: media\nresources:\n  - nomad_job: {{ file: web.nomad.hcl }}\n  - nomad_job: {{ file: other.nomad.hcl }}\n  - consul_config_entry: {{ Kind: service-intentions, Name: minio, Sources: [{{ Name: web, Action: allow }}] }}\n  - csi_volume: {{ id: media_data, plugin_id: glusterfs, {VOLUME} }}\n"
        ),
    );
    env.commit("media");
    env.start_drover().await;
    let blocked = "depends on consul_config_entry/service-intentions/minio, which failed";
    let status = env
        .wait_app("media", "web blocked by its intentions", |s| {
            resource_message(s, "nomad_job/default/web").contains(blocked)
        })
        .await;
    // The independent job and the volume went through; the job is not registered.
    env.wait_job("other", "registered", |j| j.is_some()).await;
    let (code, _) = env.nomad("/v1/volume/csi/media_data").await;
    assert_eq!(code, 200);
    assert!(env.job("web").await.is_none(), "{status:#?}");
    assert!(
        status.errors.iter().any(|e| e.starts_with("nomad_job/default/web: blocked: depends on consul_config_entry/service-intentions/minio")),
        "{:?}",
        status.errors
    );

    let id = fault["ID"]
        .as_str()
        .or_else(|| fault["id"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("fault id in {fault}"));
    let url = format!("{}/_devstack/faults/{id}", env.devstack.nomad_url());
    let removed = env.http.delete(url).send().await.expect("remove fault");
    assert!(removed.status().is_success());
    env.wait_synced_healthy("media", None).await;
    assert!(env.job("web").await.is_some());
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_volume_then_an_unhealthy_plugin_block_only_the_job_until_fixed() {
    let mut seed = common::default_seed();
    // A node-only plugin (volumes are registered, not created) that is down.
    seed.csi_plugins.push(SeedCsiPlugin {
        id: "nodeonly".into(),
        provider: None,
        controller: false,
        healthy: false,
    });
    let mut env = TestEnv::with_seed(seed).await;
    env.write(
        "apps/media/web.nomad.hcl",
        &jobspec_mounting("web", "ext_data"),
    );
    env.write(
        "apps/media/other.nomad.hcl",
        &web_jobspec("other", "nginx:1.27"),
    );
    env.write(
        "apps/media/app.yaml",
        "name: media\nresources:\n  - nomad_job: { file: web.nomad.hcl }\n  - nomad_job: { file: other.nomad.hcl }\n",
    );
    env.commit("media");
    env.start_drover().await;
    let missing = "CSI volume ext_data does not exist and is not in this plan";
    env.wait_app("media", "web blocked by its missing volume", |s| {
        resource_message(s, "nomad_job/default/web").contains(missing)
    })
    .await;
    env.wait_job("other", "registered", |j| j.is_some()).await;
    assert!(env.job("web").await.is_none());

    // The volume appears (registered by someone else), but its plugin is down.
    let (code, body) = env
        .nomad_send(
            reqwest::Method::PUT,
            "/v1/volume/csi/ext_data",
            Some(json!({"Volumes": [{
                "ID": "ext_data", "Name": "ext_data", "ExternalID": "ext-1", "PluginID": "nodeonly",
                "RequestedCapabilities": [{"AccessMode": "single-node-writer", "AttachmentMode": "file-system"}]
            }]})),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let status = env
        .wait_app("media", "web blocked by the plugin", |s| {
            resource_message(s, "nomad_job/default/web")
                .contains("CSI plugin nodeonly is not healthy")
        })
        .await;
    assert!(
        resource_message(&status, "nomad_job/default/web")
            .contains("(it serves CSI volume ext_data)"),
        "{status:#?}"
    );
    assert!(env.job("web").await.is_none());

    // Fixed: the job registers at a later cycle, without a commit.
    env.control(
        "/nomad/csi/plugin",
        json!({"id": "nodeonly", "controller": false, "healthy": true}),
    )
    .await;
    env.wait_job("web", "registered once its plugin is healthy", |j| {
        j.is_some()
    })
    .await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_app_is_deleted_in_reverse_dependency_order() {
    let mut env = TestEnv::new().await;
    env.write(
        "apps/media/web.nomad.hcl",
        &jobspec_with_upstream("media-web", "media_data", "minio"),
    );
    env.write(
        "apps/media/app.yaml",
        &format!(
            "name: media\nsync: {{ prune: true }}\nresources:\n  - nomad_job: {{ file: web.nomad.hcl }}\n  - consul_config_entry: {{ Kind: service-intentions, Name: minio, Sources: [{{ Name: media-web, Action: allow }}] }}\n  - consul_config_entry: {{ Kind: service-defaults, Name: minio, Protocol: http }}\n  - csi_volume: {{ id: media_data, plugin_id: glusterfs, {VOLUME} }}\n"
        ),
    );
    env.sync_web_app("").await;
    env.wait_synced_healthy("media", None).await;

    env.remove("apps/media");
    env.commit("media leaves");
    env.wait_job("media-web", "purged", |j| j.is_none()).await;
    let deleted = |log: &[(u64, String, String, String)], path: &str| {
        log.iter()
            .find(|(_, _, m, p)| m == "DELETE" && p.starts_with(path))
            .map(|(seq, ..)| *seq)
    };
    let deadline = tokio::time::Instant::now() + common::WAIT;
    let log = loop {
        let log = request_log(&env).await;
        if deleted(&log, "/v1/volume/csi/media_data").is_some()
            && deleted(&log, "/v1/config/service-defaults/minio").is_some()
        {
            break log;
        }
        assert!(tokio::time::Instant::now() < deadline, "{log:#?}");
        env.wait_full_cycle("web").await;
    };
    let job = deleted(&log, "/v1/job/media-web");
    let intentions = deleted(&log, "/v1/config/service-intentions/minio");
    let defaults = deleted(&log, "/v1/config/service-defaults/minio");
    let volume = deleted(&log, "/v1/volume/csi/media_data");
    assert!(job.is_some() && intentions.is_some(), "{log:#?}");
    assert!(
        job < volume,
        "the job before the volume it mounts: {log:#?}"
    );
    assert!(job < intentions, "the job before its upstream's intentions");
    assert!(
        intentions < defaults,
        "the intentions before the service-defaults they follow: {log:#?}"
    );
    env.shutdown().await;
}

/// `web_jobspec` whose task's env points at the bucket `bucket` (an `s3://` URL).
fn jobspec_pointing_at_bucket(id: &str, bucket: &str) -> String {
    web_jobspec(id, "nginx:1.27").replace(
        "      driver = \"docker\"\n",
        &format!(
            "      driver = \"docker\"\n\n      env {{\n        LITESTREAM_REPLICA = \"s3://{bucket}/db\"\n      }}\n"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_blocks_only_the_job_pointing_at_it_until_it_exists() {
    use drover::providers::s3::{S3Client, S3Config, StaticCredentials};
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (user, password) = ("drover-test", "drover-test-password");
    let server = drover_devstack::s3::S3Server::start(
        "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        dir.path(),
        user,
        password,
    )
    .await
    .unwrap_or_else(|e| panic!("s3s-fs: {e}"));
    let config = S3Config {
        endpoint: Some(server.url()),
        credentials: Some(StaticCredentials::new(user, password)),
        max_retries: 1,
        request_timeout: std::time::Duration::from_secs(5),
        ..S3Config::default()
    };
    let s3 = S3Client::new(config.clone()).await;
    let mut env = TestEnv::new().await;
    env.write(
        "apps/media/web.nomad.hcl",
        &jobspec_pointing_at_bucket("web", "overseerr-litestream"),
    );
    env.write(
        "apps/media/other.nomad.hcl",
        &web_jobspec("other", "nginx:1.27"),
    );
    // The app also declares a bucket: the cycle's S3 read knows it exists once created.
    env.write(
        "apps/media/app.yaml",
        "name: media\nresources:\n  - nomad_job: { file: web.nomad.hcl }\n  - nomad_job: { file: other.nomad.hcl }\n  - bucket: { name: media-files }\n",
    );
    env.commit("media");
    let mut settings = env.settings();
    settings.s3 = Some(config);
    env.start_drover_with(settings).await;
    let missing = "bucket overseerr-litestream does not exist and is not in this plan";
    let status = env
        .wait_app("media", "web blocked by its missing bucket", |s| {
            resource_message(s, "nomad_job/default/web").contains(missing)
        })
        .await;
    env.wait_job("other", "registered", |j| j.is_some()).await;
    assert!(env.job("web").await.is_none(), "{status:#?}");
    // The history says so: the sync that held web back is `blocked`, not `succeeded`.
    let status = env
        .wait_app("media", "a sync recorded", |s| s.last_sync.is_some())
        .await;
    let last = status.last_sync.as_ref().map(|l| l.result);
    assert_eq!(last, Some(SyncResult::Blocked), "{status:#?}");
    assert!(
        s3.exists("media-files")
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        "the app's other resources sync"
    );

    // The bucket appears (made by someone else): the job registers at a later cycle, without
    // a commit.
    s3.create("overseerr-litestream")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    env.wait_job("web", "registered once its bucket exists", |j| j.is_some())
        .await;
    env.shutdown().await;
    server.shutdown().await;
}
