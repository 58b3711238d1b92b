//! The example repository (`desired-state/`, the seed's Overseerr migration) end to end: one
//! commit on an empty devstack brings every app Synced and Healthy, the Overseerr job after its
//! volume, its intentions and its Vault check; and `drover demo` does the same by itself.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::TestEnv;
use drover_devstack::seed::SeedVaultSecret;
use serde_json::{Value, json};

/// The example's apps, as `drover validate` lists them.
const APPS: [&str; 3] = ["glusterfs-csi", "minio", "overseerr"];

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
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("desired-state"),
        &env.repo,
    );
    let revision = env.commit("the Overseerr migration");
    env.start_drover().await;
    for app in APPS {
        env.wait_synced_healthy(app, Some(&revision)).await;
    }

    // Every resource of a kind drover manages today is Healthy (a bucket is still `not-managed`).
    let overseerr = env
        .status("overseerr")
        .unwrap_or_else(|| panic!("no overseerr status"));
    let managed: Vec<(&str, String)> = overseerr
        .resources
        .iter()
        .filter(|r| !r.id.starts_with("bucket/"))
        .map(|r| (r.id.as_str(), format!("{:?}", r.health)))
        .collect();
    assert_eq!(
        managed,
        [
            (
                "csi_volume/default/glusterfs_overseerr_config",
                "Healthy".into()
            ),
            ("vault_secret/nomad/default/overseerr", "Healthy".into()),
            (
                "consul_config_entry/service-intentions/overseerr",
                "Healthy".into()
            ),
            ("nomad_job/default/overseerr", "Healthy".into()),
        ],
        "{overseerr:#?}"
    );

    // The job was registered once, after its volume was created, after every config entry (its
    // own intentions, and MinIO's which let it reach MinIO) was written and after its Vault
    // secret was read: each of those requests arrived before the job's submission time.
    let job = env
        .job("overseerr")
        .await
        .unwrap_or_else(|| panic!("no overseerr job"));
    assert_eq!(job["Version"], 0, "registered once");
    let submitted = SystemTime::UNIX_EPOCH
        + Duration::from_nanos(job["SubmitTime"].as_u64().unwrap_or_default());
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
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_brings_every_managed_resource_of_the_example_to_synced_and_healthy() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["demo", "--listen", "127.0.0.1:0", "--time-scale", "0.02"])
        .current_dir(tmp.path())
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let url = tokio::time::timeout(common::WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.trim().strip_prefix("Status page:") {
                return url.trim().to_string();
            }
        }
        String::new()
    })
    .await
    .unwrap_or_else(|_| panic!("the demo printed no status page URL"));
    let http = common::http_client();
    // An app is done when Synced and Healthy with each resource drover manages Healthy.
    let done = |app: &Value| {
        app["sync"] == "Synced"
            && app["health"] == "Healthy"
            && app["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|r| r["change"] == "not-managed" || r["health"] == "Healthy")
    };
    let deadline = tokio::time::Instant::now() + common::WAIT * 2;
    let mut apps = Value::Null;
    loop {
        if let Ok(response) = http.get(format!("{url}api/apps")).send().await
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
    let overseerr = apps
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["name"] == "overseerr")
        .cloned()
        .unwrap_or_default();
    let ids: Vec<&str> = overseerr["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str())
        .collect();
    for id in [
        "csi_volume/default/glusterfs_overseerr_config",
        "bucket/overseerr-litestream",
        "vault_secret/nomad/default/overseerr",
        "consul_config_entry/service-intentions/overseerr",
        "nomad_job/default/overseerr",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let _ = child.kill().await;
}
