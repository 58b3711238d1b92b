//! The example repository (`desired-state/`, the seed's Overseerr migration) end to end: one
//! commit on an empty devstack brings every app Synced and Healthy, the Overseerr job after its
//! volume, its intentions and its Vault check; and `drover demo` does the same by itself.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::TestEnv;
use drover::providers::s3::{S3Config, StaticCredentials};
use drover_devstack::s3::{S3Request, S3Server};
use drover_devstack::seed::SeedVaultSecret;
use serde_json::{Value, json};

/// The example's apps, as `drover validate` lists them.
const APPS: [&str; 9] = [
    "glusterfs-csi",
    "jellyfin",
    "minio",
    "overseerr",
    "prowlarr",
    "qbittorrent",
    "radarr",
    "sonarr",
    "traefik",
];

/// Copy `from` (a folder) under `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let target = to.join(path.file_name().unwrap_or_default());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

/// One request of the devstack's log (every system).
#[derive(Debug)]
struct Served {
    system: String,
    method: String,
    path: String,
    status: u64,
    arrived: SystemTime,
}

async fn served(env: &TestEnv) -> Vec<Served> {
    let answer: Value = env
        .http
        .get(format!("{}/_devstack/requests", env.devstack.nomad_url()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("request log: {e}"))
        .json()
        .await
        .unwrap_or(Value::Null);
    let entries = answer.get("entries").cloned().unwrap_or(answer);
    entries
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            Served {
                system: field("System"),
                method: field("Method"),
                path: field("Path"),
                status: e["Status"].as_u64().unwrap_or_default(),
                arrived: humantime::parse_rfc3339(&field("Time"))
                    .unwrap_or_else(|e| panic!("request time {:?}: {e}", field("Time"))),
            }
        })
        .collect()
}

/// A number field of a Nomad object.
fn index(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// When Nomad accepted a job's current version.
fn submit_time(job: &Value) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(index(job, "SubmitTime"))
}

/// The embedded S3 server (`s3s-fs`, as `drover demo` runs it) with the example's keys.
async fn embedded_s3() -> (tempfile::TempDir, S3Server, S3Config) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = S3Server::start(
        "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        dir.path(),
        "access",
        "secret",
    )
    .await
    .unwrap_or_else(|e| panic!("s3s-fs: {e}"));
    let config = S3Config {
        endpoint: Some(server.url()),
        credentials: Some(StaticCredentials::new("access", "secret")),
        max_retries: 1,
        request_timeout: Duration::from_secs(5),
        ..S3Config::default()
    };
    (dir, server, config)
}

/// The successful `CreateBucket` requests for `bucket`.
fn bucket_creations(s3: &S3Server, bucket: &str) -> Vec<S3Request> {
    s3.requests()
        .into_iter()
        .filter(|r| {
            r.method == "PUT"
                && r.path.trim_end_matches('/') == format!("/{bucket}")
                && r.query.is_empty()
                && (200..300).contains(&r.status)
        })
        .collect()
}

/// How many times `bucket` was read (`HeadBucket`, the first request of each read).
fn bucket_reads(s3: &S3Server, bucket: &str) -> usize {
    s3.requests()
        .iter()
        .filter(|r| r.method == "HEAD" && r.path.trim_end_matches('/') == format!("/{bucket}"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overseerr_example_syncs_from_an_empty_devstack_in_one_commit_in_dependency_order() {
    // The devstack as `drover demo` seeds it: the CSI plugin and both apps' Vault secrets.
    let mut seed = common::default_seed();
    seed.vault_secrets.push(SeedVaultSecret {
        mount: "nomad".into(),
        path: "default/minio".into(),
        data: [
            ("MINIO_ROOT_USER".to_string(), json!("root")),
            ("MINIO_ROOT_PASSWORD".to_string(), json!("password")),
        ]
        .into(),
    });
    let mut env = TestEnv::with_seed(seed).await;
    let (_s3_dir, s3, s3_config) = embedded_s3().await;
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("desired-state"),
        &env.repo,
    );
    let revision = env.commit("the Overseerr migration");
    let mut settings = env.settings();
    settings.s3 = Some(s3_config);
    // No resync within the test: every bucket read comes from a first look or a write.
    settings.controller.resync_interval = Duration::from_secs(600);
    env.start_drover_with(settings).await;
    for app in APPS {
        env.wait_synced_healthy(app, Some(&revision)).await;
    }

    // Every resource is Healthy, the bucket included.
    let overseerr = env
        .status("overseerr")
        .unwrap_or_else(|| panic!("no overseerr status"));
    let health: Vec<(&str, String)> = overseerr
        .resources
        .iter()
        .map(|r| (r.id.as_str(), format!("{:?}", r.health)))
        .collect();
    assert_eq!(
        health,
        [
            (
                "csi_volume/default/glusterfs_overseerr_config",
                "Healthy".into()
            ),
            ("bucket/overseerr-litestream", "Healthy".into()),
            ("vault_secret/nomad/default/overseerr", "Healthy".into()),
            (
                "consul_config_entry/service-intentions/overseerr",
                "Healthy".into()
            ),
            ("nomad_job/default/overseerr", "Healthy".into()),
        ],
        "{overseerr:#?}"
    );

    // The job was registered once, after its volume and its bucket were created, after every
    // config entry (its own intentions, and MinIO's which let it reach MinIO) was written and
    // after its Vault secret was read: each of those requests arrived before the job's
    // submission time.
    let job = env
        .job("overseerr")
        .await
        .unwrap_or_else(|| panic!("no overseerr job"));
    assert_eq!(job["Version"], 0, "registered once");
    let submitted = submit_time(&job);
    let log = served(&env).await;
    let ok = |s: &&Served| (200..300).contains(&s.status);
    let volume_created: Vec<&Served> = log
        .iter()
        .filter(ok)
        .filter(|s| {
            s.system == "nomad"
                && s.method == "PUT"
                && s.path == "/v1/volume/csi/glusterfs_overseerr_config/create"
        })
        .collect();
    assert_eq!(volume_created.len(), 1, "{log:#?}");
    let entries_written: Vec<&Served> = log
        .iter()
        .filter(ok)
        .filter(|s| s.system == "consul" && s.method == "PUT" && s.path == "/v1/config")
        .collect();
    assert_eq!(
        entries_written.len(),
        4,
        "MinIO's three entries and Overseerr's intentions, each written once: {log:#?}"
    );
    let secret_read = log
        .iter()
        .filter(ok)
        .find(|s| {
            s.system == "vault" && s.method == "GET" && s.path == "/v1/nomad/data/default/overseerr"
        })
        .unwrap_or_else(|| panic!("the Overseerr secret was never checked: {log:#?}"));
    for before in volume_created
        .iter()
        .chain(&entries_written)
        .chain([&secret_read])
    {
        assert!(
            before.arrived < submitted,
            "{before:?} came after the job's registration at {submitted:?}"
        );
    }
    let bucket_created = bucket_creations(&s3, "overseerr-litestream");
    assert_eq!(bucket_created.len(), 1, "{:#?}", s3.requests());
    assert!(
        bucket_created[0].arrived < submitted,
        "{:?} came after the job's registration at {submitted:?}",
        bucket_created[0]
    );

    // The bucket was read twice (absent, then once after its creation) however many progress
    // cycles the app took to become Healthy: S3 has no watch, and reading on every cycle
    // would cost a `HeadBucket` per bucket each `progress_interval`.
    assert_eq!(
        bucket_reads(&s3, "overseerr-litestream"),
        2,
        "{:#?}",
        s3.requests()
    );

    // MinIO's own buckets were created once each, after MinIO's job (they live in MinIO).
    let minio = env
        .job("minio")
        .await
        .unwrap_or_else(|| panic!("no minio job"));
    for bucket in ["plex-litestream", "appflowy"] {
        let created = bucket_creations(&s3, bucket);
        assert_eq!(created.len(), 1, "{bucket}: {:#?}", s3.requests());
        assert!(created[0].arrived > submit_time(&minio), "{bucket}");
    }

    // The seed hook ran once (one version, one allocation, complete) and its allocation had
    // completed before the Overseerr job was created (Raft indexes, not clocks).
    let seed_job = || async {
        let job = env
            .job("overseerr-litestream-seed")
            .await
            .unwrap_or_else(|| panic!("the seed hook never ran"));
        let (_, allocs) = env
            .nomad("/v1/job/overseerr-litestream-seed/allocations")
            .await;
        (job, allocs.as_array().cloned().unwrap_or_default())
    };
    let (seed, seed_allocs) = seed_job().await;
    assert_eq!(seed["Version"], 0, "{seed}");
    assert_eq!(seed_allocs.len(), 1, "{seed_allocs:#?}");
    assert_eq!(seed_allocs[0]["ClientStatus"], "complete");
    assert!(
        index(&seed_allocs[0], "ModifyIndex") < index(&job, "CreateIndex"),
        "seed alloc {} vs overseerr job {job}",
        seed_allocs[0]
    );

    // A second commit changing the job (a pack variable) syncs it again, without running the
    // seed again.
    let app_yaml = std::fs::read_to_string(env.repo.join("apps/overseerr/app.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let changed = app_yaml.replacen(
        "    port: 5055\n",
        "    port: 5055\n    resources: { cpu: 250, memory: 256, memory_max: 512 }\n",
        1,
    );
    assert_ne!(changed, app_yaml, "the change applies");
    env.write("apps/overseerr/app.yaml", &changed);
    let second = env.commit("more CPU for Overseerr");
    env.wait_synced_healthy("overseerr", Some(&second)).await;
    let job = env
        .job("overseerr")
        .await
        .unwrap_or_else(|| panic!("no overseerr job"));
    assert_eq!(job["Version"], 1, "the change was registered: {job}");
    let (seed, seed_allocs) = seed_job().await;
    assert_eq!(seed["Version"], 0, "the seed was registered again: {seed}");
    assert_eq!(seed_allocs.len(), 1, "the seed ran again: {seed_allocs:#?}");
    assert_eq!(bucket_creations(&s3, "overseerr-litestream").len(), 1);
    assert_eq!(
        bucket_reads(&s3, "overseerr-litestream"),
        2,
        "the second sync left the bucket alone: no read before the resync"
    );
    env.shutdown().await;
    s3.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_brings_every_resource_of_the_example_buckets_included_to_synced_and_healthy() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut demo = common::start_demo(tmp.path(), tmp.path(), &[]).await;
    let url = demo.url.clone();
    let http = common::http_client();
    // An app is done when Synced and Healthy with every resource (buckets included) unchanged
    // against Git and Healthy: none is left `not-managed`.
    let done = |app: &Value| {
        app["sync"] == "Synced"
            && app["health"] == "Healthy"
            && app["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|r| r["change"] == "unchanged" && r["health"] == "Healthy")
    };
    let deadline = tokio::time::Instant::now() + common::WAIT * 2;
    let mut apps = Value::Null;
    loop {
        if let Ok(response) = http.get(format!("{url}api/v1/apps")).send().await
            && let Ok(answer) = response.json::<Value>().await
        {
            apps = answer;
        }
        let listed = apps.as_array().cloned().unwrap_or_default();
        if listed.len() == APPS.len() && listed.iter().all(done) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the demo never got every app Synced and Healthy: {apps:#}"
        );
        // Polling the demo's API from outside: there is no event to await across processes.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ids: Vec<&str> = apps
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["resources"].as_array().into_iter().flatten())
        .filter_map(|r| r["id"].as_str())
        .collect();
    for id in [
        "bucket/plex-litestream",
        "bucket/appflowy",
        "csi_volume/default/glusterfs_overseerr_config",
        "bucket/overseerr-litestream",
        "vault_secret/nomad/default/overseerr",
        "consul_config_entry/service-intentions/overseerr",
        "nomad_job/default/overseerr",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let _ = demo.child.kill().await;
}
