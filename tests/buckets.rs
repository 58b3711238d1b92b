//! bucket end to end. Bucket *settings* (versioning, policy, lifecycle, tags) run against a real
//! MinIO (the embedded s3s-fs implements none of them): the binary `.ci/run` installs, found
//! through `DROVER_TEST_MINIO` or at `target/minio-bin/minio`. Under `CI=true` a missing MinIO
//! fails these tests; elsewhere they skip with a printed reason. Prune safety runs against the
//! embedded s3s-fs (the server `drover demo` uses), which needs no install.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_s3::types::{BucketVersioningStatus, Tag, Tagging, VersioningConfiguration};
use common::{KillOnDrop, TestEnv, WAIT};
use drover::controller::AppStatus;
use drover::providers::s3::{S3Client, S3Config, StaticCredentials};
use drover_devstack::s3::S3Server;

const USER: &str = "drover-test";
const PASSWORD: &str = "drover-test-password";

/// A MinIO server on loopback ports chosen at run time, its data in a tempdir; killed on drop.
struct Minio {
    url: String,
    _process: KillOnDrop,
    _data: tempfile::TempDir,
}

/// The MinIO binary: `DROVER_TEST_MINIO`, else where `.ci/run` caches it.
fn minio_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DROVER_TEST_MINIO") {
        let path = PathBuf::from(path);
        assert!(
            path.exists(),
            "DROVER_TEST_MINIO={} does not exist",
            path.display()
        );
        return Some(path);
    }
    let cached = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/minio-bin/minio");
    cached.exists().then_some(cached)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .port()
}

/// Start MinIO, or `None` (skip) outside CI when it is not installed.
async fn minio() -> Option<Minio> {
    let Some(binary) = minio_binary() else {
        let reason = "MinIO not installed (set DROVER_TEST_MINIO or run .ci/run, which installs \
                      it at target/minio-bin/minio)";
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("{reason}: bucket-settings tests must run in CI");
        }
        eprintln!("skipping: {reason}");
        return None;
    };
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (port, console) = (free_port(), free_port());
    let process = std::process::Command::new(&binary)
        .arg("server")
        .arg(data.path())
        .args(["--address", &format!("127.0.0.1:{port}")])
        .args(["--console-address", &format!("127.0.0.1:{console}")])
        .env("MINIO_ROOT_USER", USER)
        .env("MINIO_ROOT_PASSWORD", PASSWORD)
        .env("MINIO_BROWSER", "off")
        .env("MINIO_UPDATE", "off")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    let process = KillOnDrop(process);
    let url = format!("http://127.0.0.1:{port}");
    let http = common::http_client();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let live = http
            .get(format!("{url}/minio/health/live"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if live {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "MinIO never became live at {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some(Minio {
        url,
        _process: process,
        _data: data,
    })
}

fn s3_config(endpoint: &str, user: &str, password: &str) -> S3Config {
    S3Config {
        endpoint: Some(endpoint.to_string()),
        credentials: Some(StaticCredentials::new(user, password)),
        max_retries: 1,
        request_timeout: Duration::from_secs(5),
        ..S3Config::default()
    }
}

/// Start drover against the devstack and this S3 endpoint.
async fn start(env: &mut TestEnv, s3: S3Config) {
    let mut settings = env.settings();
    settings.s3 = Some(s3);
    env.start_drover_with(settings).await;
}

fn media_app(sync: &str, bucket: &str) -> String {
    format!("name: media\nsync: {sync}\nresources:\n  - bucket: {bucket}\n")
}

const POLICY: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::media-files/public/*"]}]}"#;

fn full_bucket() -> String {
    format!(
        "{{ name: media-files, versioning: true, tags: {{ team: media }}, policy: '{POLICY}', \
         lifecycle: {{ rules: [{{ id: expire-tmp, prefix: tmp/, days: 7 }}, \
         {{ id: uploads, noncurrent_days: 30 }}] }} }}"
    )
}

fn message_of(status: &AppStatus, id: &str) -> String {
    status
        .resources
        .iter()
        .find(|r| r.id == id)
        .map(|r| format!("{} {}", r.message, r.diff.clone().unwrap_or_default()))
        .unwrap_or_default()
}

/// What S3 says about a bucket, read through the SDK (not through drover's reads).
#[derive(Debug, PartialEq)]
struct Seen {
    versioning: Option<String>,
    policy: bool,
    rules: Vec<String>,
    tags: BTreeMap<String, String>,
}

async fn seen(s3: &S3Client, bucket: &str) -> Seen {
    let sdk = s3.sdk();
    let versioning = sdk.get_bucket_versioning().bucket(bucket).send().await;
    let policy = sdk.get_bucket_policy().bucket(bucket).send().await;
    let rules = sdk
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await;
    let tags = sdk.get_bucket_tagging().bucket(bucket).send().await;
    Seen {
        versioning: versioning
            .ok()
            .and_then(|v| v.status().map(|s| s.as_str().to_string())),
        policy: policy.is_ok_and(|p| p.policy().is_some()),
        rules: rules
            .map(|r| {
                let mut ids: Vec<String> = r
                    .rules()
                    .iter()
                    .map(|r| r.id().unwrap_or_default().to_string())
                    .collect();
                ids.sort();
                ids
            })
            .unwrap_or_default(),
        tags: tags
            .map(|t| {
                t.tag_set()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn as_declared() -> Seen {
    Seen {
        versioning: Some("Enabled".into()),
        policy: true,
        rules: vec!["expire-tmp".into(), "uploads".into()],
        tags: BTreeMap::from([
            ("drover.app".to_string(), "media".to_string()),
            ("team".to_string(), "media".to_string()),
        ]),
    }
}

async fn wait_seen(s3: &S3Client, bucket: &str, what: &str, ok: impl Fn(&Seen) -> bool) -> Seen {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = seen(s3, bucket).await;
        if ok(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{bucket} never {what}; last: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Change every setting behind drover's back, through the S3 API.
async fn drift_everything(s3: &S3Client, bucket: &str) {
    let sdk = s3.sdk();
    sdk.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("suspend versioning: {e:?}"));
    sdk.delete_bucket_policy()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("delete policy: {e:?}"));
    sdk.delete_bucket_lifecycle()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("delete lifecycle: {e:?}"));
    let tag = |k: &str, v: &str| {
        Tag::builder()
            .key(k)
            .value(v)
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let tagging = Tagging::builder()
        .tag_set(tag("drover.app", "media"))
        .tag_set(tag("team", "someone-else"))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    sdk.put_bucket_tagging()
        .bucket(bucket)
        .tagging(tagging)
        .send()
        .await
        .unwrap_or_else(|e| panic!("retag: {e:?}"));
}

#[tokio::test]
async fn bucket_settings_are_created_on_minio_and_drift_of_each_is_healed() {
    let Some(minio) = minio().await else { return };
    let mut env = TestEnv::new().await;
    env.write(
        "apps/media/app.yaml",
        &media_app("{ self_heal: true }", &full_bucket()),
    );
    env.commit("media: a bucket with every setting");
    let config = s3_config(&minio.url, USER, PASSWORD);
    start(&mut env, config.clone()).await;
    env.wait_synced_healthy("media", None).await;
    let s3 = S3Client::new(config).await;
    assert_eq!(seen(&s3, "media-files").await, as_declared());

    // A settled cycle writes nothing: the marker's fingerprint matches what S3 reports.
    let status = env.wait_full_cycle("media").await;
    let bucket = status
        .resources
        .iter()
        .find(|r| r.id == "bucket/media-files")
        .unwrap_or_else(|| panic!("{status:#?}"));
    assert_eq!(format!("{:?}", bucket.change), "Unchanged", "{bucket:?}");

    drift_everything(&s3, "media-files").await;
    wait_seen(&s3, "media-files", "healed", |s| *s == as_declared()).await;
    env.shutdown().await;
}

#[tokio::test]
async fn bucket_drift_is_reported_with_a_diff_per_setting_when_self_heal_is_off() {
    let Some(minio) = minio().await else { return };
    let mut env = TestEnv::new().await;
    env.write(
        "apps/media/app.yaml",
        &media_app("{ self_heal: false }", &full_bucket()),
    );
    env.commit("media");
    let config = s3_config(&minio.url, USER, PASSWORD);
    start(&mut env, config.clone()).await;
    env.wait_synced_healthy("media", None).await;
    let s3 = S3Client::new(config).await;

    drift_everything(&s3, "media-files").await;
    let status = env
        .wait_app("media", "OutOfSync", |s| {
            format!("{:?}", s.sync) == "OutOfSync"
        })
        .await;
    let shown = message_of(&status, "bucket/media-files");
    for expected in [
        "+/- Versioning: \"Suspended\" => \"Enabled\"",
        "+   Policy.Statement[0].Effect: \"Allow\"",
        "+   Lifecycle[0].ID: \"expire-tmp\"",
        "+/- Tags.team: \"someone-else\" => \"media\"",
        "self_heal is off",
    ] {
        assert!(shown.contains(expected), "{expected:?} not in {shown}");
    }
    let left = seen(&s3, "media-files").await;
    assert_eq!(left.versioning.as_deref(), Some("Suspended"), "not healed");
    assert!(!left.policy && left.rules.is_empty());
    env.shutdown().await;
}

/// The embedded s3s-fs, as `drover demo` runs it.
async fn embedded_s3() -> (tempfile::TempDir, S3Server, S3Config) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = S3Server::start(
        "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        dir.path(),
        USER,
        PASSWORD,
    )
    .await
    .unwrap_or_else(|e| panic!("s3s-fs: {e}"));
    let config = s3_config(&server.url(), USER, PASSWORD);
    (dir, server, config)
}

#[tokio::test]
async fn a_bucket_holding_objects_is_never_deleted_when_its_app_leaves_git_and_one_not_owned_neither()
 {
    let (_dir, server, config) = embedded_s3().await;
    let s3 = S3Client::new(config.clone()).await;
    // Someone else's bucket, existing before drover: never adopted on a server without tags.
    s3.create("theirs").await.unwrap_or_else(|e| panic!("{e}"));
    let mut env = TestEnv::new().await;
    let buckets = "name: media\nsync: { prune: true }\nresources:\n  \
                   - bucket: { name: media-files }\n  - bucket: { name: scratch }\n  \
                   - bucket: { name: theirs }\n  - bucket: { name: keeper-one }\n";
    env.write("apps/media/app.yaml", buckets);
    env.commit("media: four buckets");
    start(&mut env, config).await;
    env.wait_synced_healthy("media", None).await;
    assert!(
        s3.exists("media-files")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    );
    s3.sdk()
        .put_object()
        .bucket("media-files")
        .key("db/generation")
        .body(b"litestream".to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("put object: {e:?}"));

    // Two of the app's three owned buckets leave Git at once: more than max_prune_share (50%),
    // so nothing is deleted.
    let kept = "name: media\nsync: { prune: true }\nresources:\n  - bucket: { name: keeper-one }\n";
    env.write("apps/media/app.yaml", kept);
    let revision = env.commit("media: three buckets leave");
    let status = env
        .wait_app("media", "refusing the prune", |s| {
            s.revision == revision && format!("{:?}", s.phase).contains("PruneRefused")
        })
        .await;
    assert!(
        s3.exists("scratch").await.unwrap_or_else(|e| panic!("{e}")),
        "{status:#?}"
    );

    // With a second bucket declared the share holds: the empty owned bucket goes, the one
    // holding an object stays (reported), the one never owned stays.
    env.write(
        "apps/media/app.yaml",
        &format!("{kept}  - bucket: {{ name: keeper-two }}\n"),
    );
    let revision = env.commit("media: two keepers");
    env.wait_app("media", "at the new revision", |s| s.revision == revision)
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while s3.exists("scratch").await.unwrap_or_else(|e| panic!("{e}")) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "scratch never pruned: {:#?}",
            env.status("media")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = env.wait_full_cycle("media").await;
    assert!(
        s3.exists("media-files")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    );
    let object = s3
        .sdk()
        .head_object()
        .bucket("media-files")
        .key("db/generation")
        .send()
        .await;
    assert!(object.is_ok(), "the object is never deleted");
    let shown = message_of(&status, "bucket/media-files");
    assert!(shown.contains("holds objects"), "{status:#?}");
    assert!(s3.exists("theirs").await.unwrap_or_else(|e| panic!("{e}")));
    env.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_commit_deleting_every_app_prunes_no_bucket() {
    let (_dir, server, config) = embedded_s3().await;
    let s3 = S3Client::new(config.clone()).await;
    let mut env = TestEnv::new().await;
    env.write(
        "apps/media/app.yaml",
        "name: media\nsync: { prune: true }\nresources:\n  - bucket: { name: media-files }\n",
    );
    env.commit("media");
    start(&mut env, config).await;
    env.wait_synced_healthy("media", None).await;

    env.remove("apps/media");
    let revision = env.commit("delete every app");
    env.wait_fetched(&revision).await;
    env.wait_event("no loadable apps").await;
    assert!(
        s3.exists("media-files")
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        "an empty tree prunes nothing"
    );
    env.shutdown().await;
    server.shutdown().await;
}

#[test]
fn invalid_bucket_names_policies_and_lifecycle_rules_are_errors_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let app = "name: media\nresources:\n  \
               - bucket: { name: Media_Files }\n  \
               - bucket: { name: 192.168.1.10 }\n  \
               - bucket: { name: ok-one, policy: '{\"Statement\": [' }\n  \
               - bucket: { name: ok-two, policy: '{\"Statement\": [{\"Effect\": \"Maybe\", \"Action\": \"s3:*\"}]}' }\n  \
               - bucket: { name: ok-three, lifecycle: { rules: [{ id: x }] } }\n  \
               - bucket: { name: ok-four, tags: { drover.app: other } }\n";
    std::fs::create_dir_all(dir.path().join("apps/media")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("apps/media/app.yaml"), app).unwrap_or_else(|e| panic!("{e}"));
    let loaded = common::load_dir(dir.path());
    let text = common::render_diagnostics(&common::all_diagnostics(&loaded));
    for expected in [
        "apps/media/app.yaml:3:",
        "\"Media_Files\" is not a valid S3 bucket name",
        "apps/media/app.yaml:4:",
        "\"192.168.1.10\" is not a valid S3 bucket name",
        "apps/media/app.yaml:5:",
        "policy is not JSON",
        "apps/media/app.yaml:6:",
        "Statement[0].Effect must be \"Allow\" or \"Deny\"",
        "apps/media/app.yaml:7:",
        "a rule needs an action",
        "apps/media/app.yaml:8:",
        "drover's ownership tag",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
}

/// `drover demo` manages the example's bucket on its embedded s3s-fs: created, then Unchanged
/// and Healthy (not `not-managed`), ownership in the store since s3s-fs keeps no tags.
#[tokio::test(flavor = "multi_thread")]
async fn the_demo_creates_the_example_bucket_on_its_embedded_s3_and_keeps_it_synced() {
    let work = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let work_dir = work.path().display().to_string();
    let demo = common::start_demo(work.path(), work.path(), &["--work-dir", &work_dir]).await;
    let base = demo.url.trim_end_matches('/').to_string();
    let http = common::http_client();
    let bucket_of = |body: &serde_json::Value| {
        body.as_array()
            .into_iter()
            .flatten()
            .flat_map(|app| app["resources"].as_array().cloned().unwrap_or_default())
            .find(|r| r["id"] == "bucket/overseerr-litestream")
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut last = serde_json::Value::Null;
    loop {
        if let Ok(r) = http.get(format!("{base}/api/v1/apps")).send().await
            && let Ok(body) = r.json::<serde_json::Value>().await
        {
            last = body;
            // In sync, not merely equal: drover created it and recorded it as this app's.
            if bucket_of(&last).is_some_and(|b| {
                b["change"] == "unchanged" && b["reason"] == "in_sync" && b["health"] == "Healthy"
            }) {
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the demo's bucket never synced: {last:#}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        work.path().join("s3/overseerr-litestream").is_dir(),
        "created on the embedded S3 server"
    );
}

/// `drover plan` reads buckets through the standard `AWS_*` variables and shows their diff.
#[tokio::test(flavor = "multi_thread")]
async fn drover_plan_reads_buckets_from_s3_and_shows_their_diff() {
    let (_dir, server, _config) = embedded_s3().await;
    let env = TestEnv::new().await;
    env.write(
        "apps/media/app.yaml",
        "name: media\nresources:\n  - bucket: { name: media-files, tags: { team: media } }\n",
    );
    env.commit("media");
    let plan = |s3_env: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_drover"));
        command
            .arg("plan")
            .arg(&env.repo)
            .env("NOMAD_ADDR", env.devstack.nomad_url())
            .env_remove("NOMAD_TOKEN")
            .env_remove("CONSUL_HTTP_ADDR")
            .env_remove("VAULT_ADDR");
        for key in ["AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"] {
            command.env_remove(key);
        }
        if s3_env {
            command
                .env("AWS_ENDPOINT_URL", server.url())
                .env("AWS_ACCESS_KEY_ID", USER)
                .env("AWS_SECRET_ACCESS_KEY", PASSWORD)
                .env("AWS_REGION", "us-east-1");
        } else {
            for key in [
                "AWS_ENDPOINT_URL",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_REGION",
                "AWS_DEFAULT_REGION",
            ] {
                command.env_remove(key);
            }
        }
        command.output().unwrap_or_else(|e| panic!("{e}"))
    };
    let out = tokio::task::block_in_place(|| plan(true));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stdout.contains("create bucket/media-files"), "{stdout}");
    assert!(stdout.contains("+   Tags.team: \"media\""), "{stdout}");
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));
    // Without any AWS_* variable, buckets are shown as not managed.
    let out = tokio::task::block_in_place(|| plan(false));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        stdout.contains("not-managed bucket/media-files"),
        "{stdout}"
    );
    server.shutdown().await;
    env.shutdown().await;
}

/// On a server that keeps tags, the store's record is not enough: a bucket whose `drover.app`
/// tag was changed to another app is never deleted, though this app created it.
#[tokio::test]
async fn a_bucket_retagged_to_another_app_is_never_pruned_on_minio() {
    let Some(minio) = minio().await else { return };
    let mut env = TestEnv::new().await;
    let app = |buckets: &[&str]| {
        let mut yaml =
            String::from("name: media\nsync: { self_heal: false, prune: true }\nresources:\n");
        for b in buckets {
            yaml.push_str(&format!("  - bucket: {{ name: {b} }}\n"));
        }
        yaml
    };
    env.write(
        "apps/media/app.yaml",
        &app(&["media-files", "keeper-one", "keeper-two"]),
    );
    env.commit("media: three buckets");
    let config = s3_config(&minio.url, USER, PASSWORD);
    start(&mut env, config.clone()).await;
    env.wait_synced_healthy("media", None).await;
    let s3 = S3Client::new(config).await;
    let tag = Tag::builder()
        .key("drover.app")
        .value("someone-else")
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    s3.sdk()
        .put_bucket_tagging()
        .bucket("media-files")
        .tagging(
            Tagging::builder()
                .tag_set(tag)
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("retag: {e:?}"));

    env.write("apps/media/app.yaml", &app(&["keeper-one", "keeper-two"]));
    let revision = env.commit("media-files leaves Git");
    let status = env
        .wait_app("media", "refusing to prune media-files", |s| {
            s.revision == revision
                && message_of(s, "bucket/media-files").contains("do not say drover.app=media")
        })
        .await;
    assert!(
        s3.exists("media-files")
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        "{status:#?}"
    );
    env.shutdown().await;
}
