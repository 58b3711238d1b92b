//! `drover import terraform`: the fixture configuration (tests/fixtures/terraform/stack, in the
//! shapes of our first user's repository) imports with every gap reported at file:line, the result
//! validates and syncs to Healthy on the devstack, and the user's own repository (when present)
//! imports into a repository that validates, with Overseerr meaning what the example's does.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::TestEnv;
use drover::desired::ResourceSpec;
use drover::providers::s3::{S3Config, StaticCredentials};
use drover_devstack::s3::S3Server;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/terraform/stack")
}

fn drover(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run drover: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Import `dir` into a new folder `out` under a temporary directory; panics unless exit 0.
fn import(dir: &Path, tmp: &Path) -> (PathBuf, String) {
    let out = tmp.join("imported");
    let (dir_arg, out_arg) = (dir.display().to_string(), out.display().to_string());
    let run = drover(&["import", "terraform", &dir_arg, "--out", &out_arg]);
    let stdout = text(&run.stdout);
    assert!(
        run.status.success(),
        "import failed: {}\n{stdout}",
        text(&run.stderr)
    );
    (out, stdout)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn validate(dir: &Path) -> Output {
    drover(&["validate", &dir.display().to_string()])
}

#[test]
fn the_fixture_imports_one_app_per_module_and_reports_every_gap_at_file_and_line() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (out, stdout) = import(&fixture(), tmp.path());

    // The report is printed and written, and lists each untranslated construct at file:line.
    let report = read(&out.join("IMPORT-REPORT.md"));
    assert!(stdout.starts_with(&report), "{stdout}");
    for gap in [
        "`main.tf:61` module \"broken\": declares nothing drover manages",
        "`main.tf:66` module \"vpc\": source \"terraform-aws-modules/vpc/aws\" is not a local folder",
        "`modules/api/main.tf:24` resource \"nomad_job\" \"extra\" count: count other than 0 or 1",
        "`modules/broken/main.tf:2` resource \"nomad_job\" \"stamp\" jobspec: templatefile(\"modules/broken/stamp.nomad.tpl\") cannot be rendered (undefined function `timestamp`",
        "`modules/web/main.tf:50` resource \"nomad_csi_volume\" \"web_data\" secrets: secret values are never written to the repository: the volume is imported without its secrets (password, username)",
        "`modules/worker/main.tf:33` resource \"aws_instance\" \"bastion\": resource type aws_instance (provider aws) is not supported",
        "`modules/worker/main.tf:37` data \"http\" \"ip\": data sources are not translated",
        "`modules/worker/main.tf:76` resource \"minio_s3_bucket\" \"logs\" bucket: undefined function `formatdate`",
    ] {
        assert!(report.contains(gap), "missing {gap:?} in\n{report}");
    }
    assert!(report.contains("## Not translated (8)"), "{report}");
    for note in [
        "`modules/web/main.tf:19` wait_for_healthy on plugin \"glusterfs\": depends_on: [csi]",
        "`modules/nomad-job/main.tf:25` resource \"nomad_job\" \"this\" purge_on_destroy: ignored",
        "`modules/api/main.tf:20` resource \"nomad_job\" \"api\" detach: ignored",
    ] {
        assert!(report.contains(note), "missing {note:?} in\n{report}");
    }

    // One app per module that declares something drover manages.
    let mut apps: Vec<String> = std::fs::read_dir(out.join("apps"))
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|e| {
            e.map(|e| e.file_name().to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    apps.sort();
    assert_eq!(apps, ["api", "batch", "csi", "web", "worker"]);

    // file() with hcl2 vars, the volume with prevent_destroy, the bucket, the Vault requirement
    // (key names only), the config entry, and the dependencies from `depends_on = [module.csi]`
    // and from the plugin the volume waits for.
    let web = read(&out.join("apps/web/app.yaml"));
    for expected in [
        "depends_on:\n- csi\n",
        "    id: web_data\n",
        "    capacity_min: 100MiB\n",
        "    mount_options:\n      fs_type: ext4\n",
        "    - access_mode: single-node-writer\n      attachment_mode: file-system\n    prevent_destroy: true\n",
        "- bucket:\n    name: web-assets\n",
        "- vault_secret:\n    mount: nomad\n    path: default/overseerr\n    keys:\n    - MINIO_ACCESS_KEY\n    - MINIO_SECRET_KEY\n",
        "- consul_config_entry:\n    file: service-defaults-web.json\n",
        "- nomad_job:\n    file: web.nomad.hcl\n    variables:\n      image: nginx:1.27\n",
    ] {
        assert!(web.contains(expected), "missing {expected:?} in\n{web}");
    }
    // The jobspec is copied unchanged.
    assert_eq!(
        read(&out.join("apps/web/web.nomad.hcl")),
        read(&fixture().join("modules/web/web.nomad.hcl"))
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&read(
            &out.join("apps/web/service-defaults-web.json")
        ))
        .ok(),
        Some(serde_json::json!({ "Kind": "service-defaults", "Name": "web", "Protocol": "http" }))
    );
    // The wrapper module's `dynamic "hcl2"` with use_hcl2 = true: its vars, interpolated.
    let batch = read(&out.join("apps/batch/app.yaml"));
    assert!(
        batch.contains("- nomad_job:\n    file: batch.nomad.hcl\n    variables:\n      image: nginx:1.27-batch\n"),
        "{batch}"
    );
    // … and with use_hcl2 = false (the default): no variables.
    assert!(
        read(&out.join("apps/csi/app.yaml"))
            .ends_with("- nomad_job:\n    file: plugin.nomad.hcl\n"),
    );
    // templatefile() rendered with a module output, a local built from another local, for and if.
    let api = read(&out.join("apps/api/api.nomad.hcl"));
    for expected in [
        "count = 2\n",
        "image = \"registry.example.org/api:2.1\"",
        "BUCKET = \"web-assets\"",
        "FLAG_A = \"on\"\n        FLAG_B = \"on\"\n        CLUSTERED = \"true\"\n",
    ] {
        assert!(api.contains(expected), "missing {expected:?} in\n{api}");
    }
    assert!(read(&out.join("apps/api/app.yaml")).contains("depends_on:\n- web\n"));
    // The heredoc, with its local interpolated.
    let worker = read(&out.join("apps/worker/worker.nomad.hcl"));
    assert!(worker.starts_with("job \"worker\" {\n"), "{worker}");
    assert!(worker.contains("image = \"busybox:1.36\""), "{worker}");
    // A registration (external_id, context) and a config entry whose config_json is a file().
    let worker_app = read(&out.join("apps/worker/app.yaml"));
    for expected in [
        "depends_on:\n- csi\n",
        "    external_id: worker_scratch\n    context:\n      server: storage.lan\n",
        "    - access_mode: multi-node-multi-writer\n      attachment_mode: file-system\n    prevent_destroy: true\n",
        "- consul_config_entry:\n    file: service-resolver-worker.json\n",
    ] {
        assert!(
            worker_app.contains(expected),
            "missing {expected:?} in\n{worker_app}"
        );
    }
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&read(
            &out.join("apps/worker/service-resolver-worker.json")
        ))
        .ok(),
        Some(
            serde_json::json!({ "Kind": "service-resolver", "Name": "worker", "ConnectTimeout": "15s" })
        )
    );
    // The template that cannot be rendered is kept, outside apps/.
    assert_eq!(
        read(&out.join("not-imported/broken/stamp.nomad.tpl")),
        read(&fixture().join("modules/broken/stamp.nomad.tpl"))
    );
    // No secret value reaches the repository.
    for file in files_under(&out) {
        assert!(
            !read(&file).contains("hunter2"),
            "{} holds a secret value",
            file.display()
        );
    }

    // And drover validate accepts it.
    let checked = validate(&out);
    assert!(
        checked.status.success(),
        "{}{}",
        text(&checked.stdout),
        text(&checked.stderr)
    );
}

#[test]
fn import_terraform_has_help() {
    let run = drover(&["import", "terraform", "--help"]);
    assert!(run.status.success());
    let help = text(&run.stdout);
    assert!(help.contains("Usage: drover import terraform"), "{help}");
    assert!(help.contains("--out <OUT>"), "{help}");
}

#[test]
fn import_refuses_an_output_folder_that_is_not_empty() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = tmp.path().join("repo");
    std::fs::create_dir_all(&out).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(out.join("keep.txt"), "mine\n").unwrap_or_else(|e| panic!("{e}"));
    let run = drover(&[
        "import",
        "terraform",
        &fixture().display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        text(&run.stderr).contains("is not empty"),
        "{}",
        text(&run.stderr)
    );
    assert_eq!(read(&out.join("keep.txt")), "mine\n");
    assert!(!out.join("apps").exists());
}

#[test]
fn a_syntax_error_is_an_error_at_its_file_and_line() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().join("tf");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("main.tf"), "module \"a\" {\n  source = \n}\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let out = tmp.path().join("out");
    let run = drover(&[
        "import",
        "terraform",
        &dir.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        text(&run.stderr).contains("main.tf:2:12: HCL syntax error"),
        "{}",
        text(&run.stderr)
    );
    assert!(!out.exists());
}

/// The embedded S3 server (`s3s-fs`, as `drover demo` runs it).
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_imported_fixture_syncs_to_synced_and_healthy_on_the_devstack() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (out, _) = import(&fixture(), tmp.path());
    // The default seed holds the glusterfs plugin and nomad/default/overseerr with both keys.
    let mut env = TestEnv::new().await;
    let (_s3_dir, _s3, s3_config) = embedded_s3().await;
    copy_dir(&out, &env.repo);
    let revision = env.commit("imported from Terraform");
    let mut settings = env.settings();
    settings.s3 = Some(s3_config);
    env.start_drover_with(settings).await;
    for app in ["csi", "web", "api", "batch", "worker"] {
        let status = env.wait_synced_healthy(app, Some(&revision)).await;
        assert!(!status.resources.is_empty(), "{status:#?}");
    }
    let web = env.status("web").unwrap_or_else(|| panic!("no web status"));
    let ids: Vec<&str> = web.resources.iter().map(|r| r.id.as_str()).collect();
    for id in [
        "csi_volume/default/web_data",
        "bucket/web-assets",
        "vault_secret/nomad/default/overseerr",
        "consul_config_entry/service-defaults/web",
        "nomad_job/default/web",
    ] {
        assert!(ids.contains(&id), "{id} not in {ids:?}");
    }
    let worker = env
        .status("worker")
        .unwrap_or_else(|| panic!("no worker status"));
    let ids: Vec<&str> = worker.resources.iter().map(|r| r.id.as_str()).collect();
    for id in [
        "csi_volume/default/worker_scratch",
        "consul_config_entry/service-resolver/worker",
        "nomad_job/default/worker",
    ] {
        assert!(ids.contains(&id), "{id} not in {ids:?}");
    }
    let job = env.job("api").await.unwrap_or_else(|| panic!("no api job"));
    assert_eq!(job["TaskGroups"][0]["Count"], 2, "{job}");
    let batch = env
        .job("batch")
        .await
        .unwrap_or_else(|| panic!("no batch job"));
    assert_eq!(
        batch["TaskGroups"][0]["Tasks"][0]["Config"]["image"], "nginx:1.27-batch",
        "{batch}"
    );
    env.shutdown().await;
}

/// Our first user's repository, when this machine has it (it is not part of drover's).
fn brmartin() -> Option<PathBuf> {
    let path = std::env::var_os("DROVER_BRMARTIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/examples/brmartin")
        });
    if path.join("main.tf").is_file() {
        Some(path)
    } else {
        eprintln!(
            "note: skipped: {} is absent (set DROVER_BRMARTIN to the brmartin repository)",
            path.display()
        );
        None
    }
}

#[test]
fn brmartin_imports_into_a_repository_that_validates_with_overseerr_as_the_example_has_it() {
    let Some(dir) = brmartin() else { return };
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (out, _) = import(&dir, tmp.path());
    let checked = validate(&out);
    assert!(
        checked.status.success(),
        "{}{}",
        text(&checked.stdout),
        text(&checked.stderr)
    );

    // Overseerr: the same job (the same jobspec file) and the same volume as the example's
    // (desired-state/, which matches the seed), except what the Terraform does not say
    // (capacity, bucket, Vault secret, intentions: see the comparison below).
    let imported = common::load_dir(&out);
    let example = common::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("desired-state"));
    let overseerr = |loaded: &drover::desired::Loaded| {
        loaded
            .apps
            .iter()
            .find(|a| a.name == "overseerr")
            .and_then(|a| a.result.as_ref().ok())
            .cloned()
            .unwrap_or_else(|| panic!("no valid overseerr app"))
    };
    let (imported, example) = (overseerr(&imported), overseerr(&example));
    let volume = |app: &drover::desired::App| {
        app.resources
            .iter()
            .find_map(|r| match &r.spec {
                ResourceSpec::CsiVolume(v) => Some(v.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no volume in {app:#?}"))
    };
    let (mut ours, theirs) = (volume(&imported), volume(&example));
    assert_eq!(ours.capacity_min, None, "Terraform sets no capacity");
    ours.capacity_min = theirs.capacity_min;
    ours.capacity_max = theirs.capacity_max;
    assert_eq!(ours, theirs);
    let job_ids = |app: &drover::desired::App| -> Vec<String> {
        app.resources
            .iter()
            .filter(|r| matches!(r.spec, ResourceSpec::NomadJob(_)))
            .map(|r| r.id.to_string())
            .collect()
    };
    assert_eq!(job_ids(&imported), job_ids(&example));
    // The jobspec is the user's file, unchanged (the example took it as it is).
    assert_eq!(
        read(&out.join("apps/overseerr/jobspec.nomad.hcl")),
        read(&dir.join("modules/overseerr/jobspec.nomad.hcl"))
    );
}
