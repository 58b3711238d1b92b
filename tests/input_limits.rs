//! Hostile or unexpected input from Git: alias bombs, oversized files, apps reaching into other
//! apps' folders, and folders that hold no apps at all.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use drover::desired::{self, Loaded};
use drover::source::Revision;

const JOB: &str = r#"job "web" {
  group "g" {
    task "t" {
      driver = "docker"
      config { image = "nginx:1" }
    }
  }
}
"#;

fn rev(files: &[(&str, &str)]) -> Revision {
    Revision::from_files(
        "test",
        files
            .iter()
            .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
            .collect::<BTreeMap<_, _>>(),
    )
}

fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }
}

fn errors_of(loaded: &Loaded, app: &str) -> String {
    match &loaded
        .app(app)
        .unwrap_or_else(|| panic!("no app {app}"))
        .result
    {
        Ok(_) => String::new(),
        Err(d) => common::render_diagnostics(d),
    }
}

/// Nine levels of nine aliases each: 9^9 (387 million) strings once expanded, from 0.6 KB.
fn billion_laughs() -> String {
    let mut text = String::from(
        "name: bomb\nx0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for level in 1..=9 {
        let prev = level - 1;
        let refs = vec![format!("*a{prev}"); 9].join(",");
        text.push_str(&format!("x{level}: &a{level} [{refs}]\n"));
    }
    text
}

#[test]
fn an_alias_bomb_makes_its_app_invalid_and_the_others_still_load() {
    let bomb = billion_laughs();
    assert!(bomb.len() < 1024, "the bomb is small: {}", bomb.len());
    let loaded = desired::load(&rev(&[
        ("apps/bomb/app.yaml", &bomb),
        (
            "apps/web/app.yaml",
            "name: web\nresources:\n  - nomad_job: { file: web.nomad.hcl }\n",
        ),
        ("apps/web/web.nomad.hcl", JOB),
    ]));
    let errors = errors_of(&loaded, "bomb");
    assert!(
        errors.contains("apps/bomb/app.yaml:")
            && errors.contains("aliases")
            && errors.contains(&desired::YAML_MAX_NODES.to_string()),
        "{errors}"
    );
    // The error names a line and column inside the file.
    let located = errors
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("apps/bomb/app.yaml:"))
        .and_then(|rest| rest.split(':').next())
        .and_then(|line| line.parse::<usize>().ok());
    assert!(matches!(located, Some(2..=11)), "{errors}");
    assert!(loaded.app("web").is_some_and(|a| a.result.is_ok()));
}

#[test]
fn an_alias_bomb_in_the_root_drover_yaml_is_a_repo_error_and_apps_still_load() {
    let bomb = billion_laughs().replace("name: bomb\n", "namespace: default\n");
    let loaded = desired::load(&rev(&[
        ("drover.yaml", &bomb),
        (
            "apps/web/app.yaml",
            "name: web\nresources:\n  - nomad_job: { file: web.nomad.hcl }\n",
        ),
        ("apps/web/web.nomad.hcl", JOB),
    ]));
    let errors = common::render_diagnostics(&loaded.repo_errors);
    assert!(
        errors.contains("drover.yaml:") && errors.contains("aliases"),
        "{errors}"
    );
    assert!(loaded.app("web").is_some_and(|a| a.result.is_ok()));
}

#[test]
fn deeply_nested_yaml_is_refused_instead_of_overflowing_the_stack() {
    // Block sequences nested on one line: `- - - - ... 1`, 200,000 levels from 400 KB.
    let deep = format!("name: deep\nx:\n  {}1\n", "- ".repeat(200_000));
    let flow = format!("name: flow\nx: {}1{}\n", "[".repeat(250), "]".repeat(250));
    let loaded = desired::load(&rev(&[
        ("apps/deep/app.yaml", &deep),
        ("apps/flow/app.yaml", &flow),
    ]));
    for app in ["deep", "flow"] {
        let errors = errors_of(&loaded, app);
        assert!(
            errors.contains(&format!("apps/{app}/app.yaml:")) && errors.contains("nested"),
            "{app}: {errors}"
        );
    }
}

#[test]
fn validate_reports_an_alias_bomb_and_exits_one() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("apps/bomb/app.yaml", &billion_laughs())]);
    let out = Command::new(env!("CARGO_BIN_EXE_drover"))
        .arg("validate")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("apps/bomb/app.yaml:") && stdout.contains("aliases"),
        "{stdout}"
    );
}

const WEB_APP: &str = "name: web\nresources:\n  - nomad_job: { file: web.nomad.hcl }\n";

#[test]
fn a_new_app_pointing_into_another_apps_folder_is_refused_and_the_owner_keeps_syncing() {
    let loaded = desired::load(&rev(&[
        ("apps/web/app.yaml", WEB_APP),
        ("apps/web/web.nomad.hcl", JOB),
        (
            "apps/intruder/app.yaml",
            "name: intruder\nresources:\n  - nomad_job: { file: ../web/web.nomad.hcl }\n",
        ),
    ]));
    assert!(
        loaded.app("web").is_some_and(|a| a.result.is_ok()),
        "web must stay valid:\n{}",
        errors_of(&loaded, "web")
    );
    let errors = errors_of(&loaded, "intruder");
    assert!(
        errors.contains("nomad_job/default/web belongs to app web")
            && errors.contains("apps/web/web.nomad.hcl"),
        "{errors}"
    );
}

#[test]
fn a_copied_job_id_is_refused_in_the_newcomer_when_drover_knows_the_owner() {
    let files = [
        ("apps/web/app.yaml", WEB_APP),
        ("apps/web/web.nomad.hcl", JOB),
        (
            "apps/copy/app.yaml",
            "name: copy\nresources:\n  - nomad_job: { file: web.nomad.hcl }\n",
        ),
        ("apps/copy/web.nomad.hcl", JOB),
    ];
    // Both declare it from their own folder: nothing in the files tells which came first.
    let unknown = desired::load(&rev(&files));
    for app in ["web", "copy"] {
        assert!(
            errors_of(&unknown, app).contains("is also declared by app"),
            "{app}: {}",
            errors_of(&unknown, app)
        );
    }
    // drover created the job for `web`: web keeps it, only the copy is refused.
    let owners = BTreeMap::from([(
        desired::ResourceId::parse("nomad_job/default/web").unwrap(),
        "web".to_string(),
    )]);
    let known = desired::load_with_owners(&rev(&files), &owners);
    assert!(known.app("web").is_some_and(|a| a.result.is_ok()));
    let errors = errors_of(&known, "copy");
    assert!(
        errors.contains("belongs to app web") && errors.contains("drover created it for"),
        "{errors}"
    );
}

/// A valid jobspec padded with comments to just over the file limit.
fn oversized_job() -> String {
    let mut text = JOB.replace("\"web\"", "\"big\"");
    let line = format!("# {}\n", "x".repeat(77));
    while (text.len() as u64) <= drover::source::MAX_FILE_BYTES {
        text.push_str(&line);
    }
    text
}

#[test]
fn a_referenced_file_over_the_limit_is_an_error_naming_it_and_unreferenced_ones_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let big = oversized_job();
    write_tree(
        dir.path(),
        &[
            ("apps/web/app.yaml", WEB_APP),
            ("apps/web/web.nomad.hcl", JOB),
            // Not referenced by any app: never read, whatever its size.
            ("apps/web/unused.nomad.hcl", &big),
            ("junk/huge.bin", &big),
            (
                "apps/big/app.yaml",
                "name: big\nresources:\n  - nomad_job: { file: big.nomad.hcl }\n",
            ),
            ("apps/big/big.nomad.hcl", &big),
        ],
    );
    let loaded = common::load_dir(dir.path());
    assert!(loaded.app("web").is_some_and(|a| a.result.is_ok()));
    let errors = errors_of(&loaded, "big");
    assert!(
        errors.contains("apps/big/app.yaml:3:")
            && errors.contains(&format!(
                "apps/big/big.nomad.hcl is {} bytes, more than the limit of {} bytes",
                big.len(),
                drover::source::MAX_FILE_BYTES
            )),
        "{errors}"
    );
}

/// A bare repository holding one commit; returns the commit and the blob ids by path.
fn commit_tree(
    repo: &git2::Repository,
    files: &[(&str, &[u8])],
) -> (String, BTreeMap<String, git2::Oid>) {
    let mut blobs = BTreeMap::new();
    // Build nested trees bottom-up from the paths.
    fn insert(repo: &git2::Repository, entries: &[(Vec<&str>, git2::Oid)]) -> git2::Oid {
        let mut builder = repo.treebuilder(None).unwrap();
        let mut dirs: BTreeMap<&str, Vec<(Vec<&str>, git2::Oid)>> = BTreeMap::new();
        for (parts, oid) in entries {
            if parts.len() == 1 {
                builder.insert(parts[0], *oid, 0o100644).unwrap();
            } else {
                dirs.entry(parts[0])
                    .or_default()
                    .push((parts[1..].to_vec(), *oid));
            }
        }
        for (name, children) in dirs {
            let tree = insert(repo, &children);
            builder.insert(name, tree, 0o040000).unwrap();
        }
        builder.write().unwrap()
    }
    let mut entries = Vec::new();
    for (path, bytes) in files {
        let oid = repo.blob(bytes).unwrap();
        blobs.insert(path.to_string(), oid);
        entries.push((path.split('/').collect::<Vec<_>>(), oid));
    }
    let tree = repo.find_tree(insert(repo, &entries)).unwrap();
    let sig = git2::Signature::now("t", "t@localhost").unwrap();
    let commit = repo
        .commit(Some("refs/heads/main"), &sig, &sig, "c", &tree, &[])
        .unwrap();
    (commit.to_string(), blobs)
}

#[test]
fn a_git_revision_reads_only_the_blobs_apps_reference() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = dir.path().join("mirror");
    let repo = git2::Repository::init_bare(&mirror).unwrap();
    let big = oversized_job();
    let junk: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (commit, blobs) = commit_tree(
        &repo,
        &[
            ("apps/web/app.yaml", WEB_APP.as_bytes()),
            ("apps/web/web.nomad.hcl", JOB.as_bytes()),
            (
                "apps/big/app.yaml",
                b"name: big\nresources:\n  - nomad_job: { file: big.nomad.hcl }\n",
            ),
            ("apps/big/big.nomad.hcl", big.as_bytes()),
            ("junk/data.bin", &junk),
        ],
    );
    // The unrelated blob vanishes from the object database: reading it would fail, so a
    // revision that loads proves it was never read.
    let hex = blobs["junk/data.bin"].to_string();
    std::fs::remove_file(mirror.join("objects").join(&hex[..2]).join(&hex[2..])).unwrap();

    let source = drover::source::GitSource::open(
        drover::source::SourceConfig::new(dir.path().join("no-remote").display().to_string()),
        &mirror,
    )
    .unwrap();
    let revision = source.revision_at(&commit).unwrap();
    assert!(revision.contains("junk/data.bin"), "still listed");
    let loaded = desired::load(&revision);
    assert!(
        loaded.app("web").is_some_and(|a| a.result.is_ok()),
        "{}",
        errors_of(&loaded, "web")
    );
    let errors = errors_of(&loaded, "big");
    assert!(
        errors.contains("apps/big/big.nomad.hcl is") && errors.contains("more than the limit"),
        "{errors}"
    );
}

/// `plan --git` reads the apps' files from its temporary mirror after the fetch, so the mirror
/// must outlive the load.
#[tokio::test(flavor = "multi_thread")]
async fn plan_from_git_reads_the_files_of_the_fetched_revision() {
    let env = common::TestEnv::new().await;
    env.write("apps/web/app.yaml", &common::app_yaml("web", ""));
    env.write(
        "apps/web/job.nomad.hcl",
        &common::web_jobspec("web", "nginx:1.27"),
    );
    env.commit("web");
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_drover"))
            .args(["plan", "--git"])
            .arg(&env.repo)
            .env("NOMAD_ADDR", env.devstack.nomad_url())
            .env_remove("NOMAD_TOKEN")
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("create nomad_job/default/web"), "{stdout}");
    env.shutdown().await;
}

fn run_drover(args: &[&str], dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(args)
        .arg(dir)
        // plan must stop before asking Nomad: nothing listens here.
        .env("NOMAD_ADDR", "http://127.0.0.1:9")
        .env_remove("NOMAD_TOKEN")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn validate_and_plan_on_a_folder_without_apps_say_so_and_exit_one() {
    let empty = tempfile::tempdir().unwrap();
    // A Terraform layout, like the one drover users often start from.
    let terraform = tempfile::tempdir().unwrap();
    write_tree(
        terraform.path(),
        &[
            ("main.tf", "module \"web\" { source = \"./modules/web\" }\n"),
            ("modules/web/jobspec.nomad.hcl", JOB),
        ],
    );
    for dir in [empty.path(), terraform.path()] {
        for command in [&["validate"][..], &["plan"][..]] {
            let (code, output) = run_drover(command, dir);
            assert_eq!(code, Some(1), "{command:?} {}: {output}", dir.display());
            assert!(
                output.contains("no apps found in")
                    && output.contains(&dir.display().to_string())
                    && output.contains("apps/<app>/app.yaml"),
                "{command:?}: {output}"
            );
        }
    }
}

/// The running controller knows which app it created a job for: a new folder with its own copy
/// of that jobspec is refused, and the app that owns the job keeps syncing.
#[tokio::test(flavor = "multi_thread")]
async fn serve_keeps_the_owner_of_a_job_valid_when_a_new_app_declares_it_too() {
    let mut env = common::TestEnv::new().await;
    env.sync_web_app("").await;
    env.write("apps/copy/app.yaml", &common::app_yaml("copy", ""));
    env.write(
        "apps/copy/job.nomad.hcl",
        &common::web_jobspec("web", "nginx:1.27"),
    );
    let rev = env.commit("copy declares the web job too");
    let copy = env
        .wait_app("copy", "InvalidSpec", |s| {
            s.revision == rev && format!("{:?}", s.sync) == "InvalidSpec"
        })
        .await;
    assert!(
        copy.errors
            .iter()
            .any(|e| e.contains("nomad_job/default/web belongs to app web")),
        "{:?}",
        copy.errors
    );
    env.wait_synced_healthy("web", Some(&rev)).await;
    env.shutdown().await;
}
