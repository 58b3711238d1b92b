//! Packs from a Git pack registry (`pack: { source: <git URL>, ref: … }`): a local repository in
//! the nomad-pack registry layout (`packs/<name>/…`), referenced by `file://` URL, renders and
//! syncs; a tag moved upstream changes nothing until the desired repo changes; a full commit ref
//! works; an unknown ref or an unreachable URL is an error of that app only.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "common/daemon.rs"]
mod daemon;
use common::{TestEnv, app_yaml, web_jobspec};

fn root(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{e}"));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{e}")) {
        let entry = entry.unwrap_or_else(|e| panic!("{e}"));
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// A pack registry: a Git repository with the hello_app fixture at `packs/hello_app/`, its first
/// commit tagged `v1`.
struct Registry {
    _dir: tempfile::TempDir,
    path: PathBuf,
    first: String,
}

impl Registry {
    fn new() -> Registry {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("registry");
        copy_dir(
            &root("tests/fixtures/packs/hello_app"),
            &path.join("packs/hello_app"),
        );
        let first =
            drover::source::init_repo_from_dir(&path, &path).unwrap_or_else(|e| panic!("{e}"));
        let registry = Registry {
            _dir: dir,
            path,
            first,
        };
        registry.tag("v1", &registry.first.clone());
        registry
    }

    fn url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    /// Point tag `name` at `commit` (moving it if it exists).
    fn tag(&self, name: &str, commit: &str) {
        let repo = git2::Repository::open(&self.path).unwrap_or_else(|e| panic!("{e}"));
        let oid = git2::Oid::from_str(commit).unwrap_or_else(|e| panic!("{e}"));
        let object = repo
            .find_object(oid, None)
            .unwrap_or_else(|e| panic!("{e}"));
        repo.tag_lightweight(name, &object, true)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Commit the pack with `version` in its metadata; returns the commit.
    fn release(&self, version: &str) -> String {
        let meta = self.path.join("packs/hello_app/metadata.hcl");
        let text = std::fs::read_to_string(&meta).unwrap_or_else(|e| panic!("{e}"));
        let text = text.replace(
            "version     = \"0.2.0\"",
            &format!("version     = \"{version}\""),
        );
        assert!(text.contains(version), "{text}");
        std::fs::write(&meta, text).unwrap_or_else(|e| panic!("{e}"));
        drover::source::commit_all(&self.path, &format!("hello_app {version}"))
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

fn write(dir: &Path, path: &str, text: &str) {
    let full = dir.join(path);
    std::fs::create_dir_all(full.parent().unwrap_or(dir)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(full, text).unwrap_or_else(|e| panic!("{e}"));
}

fn pack_app(name: &str, url: &str, reference: &str) -> String {
    format!(
        "name: {name}\npack:\n  name: hello_app\n  source: {url}\n  ref: {reference}\n  variables:\n    job_name: {name}\n    image: nginx:1.27\n"
    )
}

fn render(dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_drover"))
        .arg("render")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `drover render <dir>` reads a pack from a registry at a tag and at a full commit: the header
/// names the resolved commit, each job's origin is `git+<url>@<commit>:packs/hello_app/…`.
#[test]
fn render_reads_a_registry_pack_at_a_tag_and_at_a_commit() {
    let registry = Registry::new();
    let second = registry.release("0.3.0");
    let url = registry.url();
    let desired = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(
        desired.path(),
        "apps/tagged/app.yaml",
        &pack_app("tagged", &url, "v1"),
    );
    write(
        desired.path(),
        "apps/pinned/app.yaml",
        &pack_app("pinned", &url, &second),
    );
    let (code, out) = render(desired.path());
    assert_eq!(code, Some(0), "{out}");
    let first_short = &registry.first[..12];
    let second_short = &second[..12];
    assert!(
        out.contains(&format!("# pack source {url} v1 = {first_short}")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "# tagged: nomad_job/default/tagged (from git+{url}@{first_short}:packs/hello_app/templates/hello_app.nomad.tpl)"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "# pinned: nomad_job/default/pinned (from git+{url}@{second_short}:packs/hello_app/templates/hello_app.nomad.tpl)"
        )),
        "{out}"
    );
    // The tag is the fixture's 0.2.0, the commit the 0.3.0 release (apps render by name).
    let (pinned, tagged) = out
        .split_once("# tagged:")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        tagged.contains("0.2.0") && !tagged.contains("0.3.0"),
        "{out}"
    );
    assert!(pinned.contains("0.3.0"), "{out}");
}

/// An unknown ref and an unreachable URL are errors of their apps at `pack.source`, naming the
/// URL and the ref; the app next to them still renders.
#[test]
fn an_unknown_ref_or_unreachable_url_is_an_error_of_that_app_only() {
    let registry = Registry::new();
    let url = registry.url();
    let desired = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gone = format!("file://{}/no-such-registry", desired.path().display());
    write(
        desired.path(),
        "apps/good/app.yaml",
        &pack_app("good", &url, "v1"),
    );
    write(
        desired.path(),
        "apps/badref/app.yaml",
        &pack_app("badref", &url, "v9"),
    );
    write(
        desired.path(),
        "apps/gone/app.yaml",
        &pack_app("gone", &gone, "v1"),
    );
    let (code, out) = render(desired.path());
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("# good: nomad_job/default/good"), "{out}");
    let badref = out
        .lines()
        .find(|l| l.starts_with("error: badref:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        badref.contains("apps/badref/app.yaml:4")
            && badref.contains(&url)
            && badref.contains("\"v9\""),
        "{badref}"
    );
    let unreachable = out
        .lines()
        .find(|l| l.starts_with("error: gone:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        unreachable.contains("apps/gone/app.yaml:4")
            && unreachable.contains(&gone)
            && unreachable.contains("\"v1\""),
        "{unreachable}"
    );
}

/// On the devstack: an app using a registry pack at tag v1 syncs to Healthy; the tag moved
/// upstream changes nothing while the desired repo stays at its commit (pinned), and the next
/// desired commit picks the new release up. An app with an unknown ref is invalid; a plain app
/// beside it syncs.
#[tokio::test(flavor = "multi_thread")]
async fn a_registry_pack_syncs_and_stays_pinned_until_the_desired_repo_changes() {
    let registry = Registry::new();
    let url = registry.url();
    let mut env = TestEnv::new().await;
    env.write("apps/hello/app.yaml", &pack_app("hello", &url, "v1"));
    env.write("apps/badref/app.yaml", &pack_app("badref", &url, "v9"));
    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    let rev = env.commit("a registry pack app, a bad ref and a plain app");
    env.start_drover().await;
    env.wait_synced_healthy("hello", Some(&rev)).await;
    env.wait_synced_healthy("web", Some(&rev)).await;
    let job = env
        .job("hello")
        .await
        .unwrap_or_else(|| panic!("hello not registered"));
    assert_eq!(job["Meta"]["pack_version"], "0.2.0");
    let badref = env
        .status("badref")
        .unwrap_or_else(|| panic!("no status for badref"));
    let shown = format!("{badref:?}");
    assert!(
        shown.contains("\\\"v9\\\"") && shown.contains(&url),
        "{shown}"
    );

    // Move v1 upstream; the watcher keeps polling the unchanged desired repo (every 200 ms) and
    // reconciles keep running, on the pinned commit.
    let second = registry.release("0.3.0");
    registry.tag("v1", &second);
    env.wait_full_cycle("hello").await;
    env.wait_full_cycle("hello").await;
    let job = env
        .job("hello")
        .await
        .unwrap_or_else(|| panic!("hello not registered"));
    assert_eq!(
        job["Meta"]["pack_version"], "0.2.0",
        "pinned until the desired repo changes"
    );

    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.28"));
    let rev = env.commit("an unrelated change re-resolves the pack refs");
    env.wait_synced_healthy("hello", Some(&rev)).await;
    let job = env
        .job("hello")
        .await
        .unwrap_or_else(|| panic!("hello not registered"));
    assert_eq!(job["Meta"]["pack_version"], "0.3.0");
    env.shutdown().await;
}

/// A ref that resolved before and then fails to fetch (the registry is gone) keeps its last
/// resolved commit: the app still loads, from that commit, with a warning naming the URL and ref.
/// A fetcher that never resolved it reports the app's error instead.
#[test]
fn a_failed_fetch_keeps_the_last_resolved_commit_with_a_warning() {
    let registry = Registry::new();
    let url = registry.url();
    let desired = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(
        desired.path(),
        "apps/hello/app.yaml",
        &pack_app("hello", &url, "v1"),
    );
    let mirrors = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let fetcher = drover::source::packs::PackFetcher::new(mirrors.path());
    let read =
        || drover::source::Revision::from_dir(desired.path()).unwrap_or_else(|e| panic!("{e}"));
    let origin = |loaded: &drover::desired::Loaded| match &loaded.apps[0].result {
        Ok(app) => app.resources[0].origin.file.clone(),
        Err(d) => panic!("{d:#?}"),
    };

    let first = drover::desired::load(&fetcher.attach(read()));
    let expected = format!(
        "git+{url}@{}:packs/hello_app/templates/hello_app.nomad.tpl",
        &registry.first[..12]
    );
    assert_eq!(origin(&first), expected);
    assert!(
        first.apps[0].warnings.is_empty(),
        "{:?}",
        first.apps[0].warnings
    );

    std::fs::rename(&registry.path, registry.path.with_extension("gone"))
        .unwrap_or_else(|e| panic!("{e}"));
    let again = drover::desired::load(&fetcher.attach(read()));
    assert_eq!(origin(&again), expected);
    let warnings = common::render_diagnostics(&again.apps[0].warnings);
    assert!(
        warnings.contains(&url)
            && warnings.contains("\"v1\"")
            && warnings.contains(&format!(
                "keeping the last resolved commit {}",
                &registry.first[..12]
            )),
        "{warnings}"
    );

    let fresh = drover::source::packs::PackFetcher::new(mirrors.path());
    let failed = drover::desired::load(&fresh.attach(read()));
    let Err(diags) = &failed.apps[0].result else {
        panic!("the registry is gone and was never resolved by this fetcher")
    };
    let shown = common::render_diagnostics(diags);
    assert!(
        shown.contains("apps/hello/app.yaml:4") && shown.contains(&url),
        "{shown}"
    );
}

async fn api_post(env: &TestEnv, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let addr = env
        .drover
        .as_ref()
        .map(|d| d.web_addr)
        .unwrap_or_else(|| panic!("running"));
    let r = env
        .http
        .post(format!("http://{addr}{path}"))
        .json(&body)
        .bearer_auth(common::TEST_API_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// A rollback to an older desired commit reads that commit's Git pack sources too: the app
/// rolls back to the pack release its ref named there.
#[tokio::test(flavor = "multi_thread")]
async fn a_rollback_reads_the_registry_pack_of_the_older_revision() {
    let registry = Registry::new();
    let second = registry.release("0.3.0");
    let url = registry.url();
    let mut env = TestEnv::new().await;
    env.write("apps/hello/app.yaml", &pack_app("hello", &url, "v1"));
    let v1 = env.commit("hello at tag v1");
    env.start_drover().await;
    env.wait_synced_healthy("hello", Some(&v1)).await;
    env.write("apps/hello/app.yaml", &pack_app("hello", &url, &second));
    let v2 = env.commit("hello at the 0.3.0 commit");
    env.wait_synced_healthy("hello", Some(&v2)).await;
    let version =
        |j: Option<serde_json::Value>| j.unwrap_or_default()["Meta"]["pack_version"].clone();
    assert_eq!(version(env.job("hello").await), "0.3.0");

    let (code, body) = api_post(
        &env,
        "/api/v1/apps/hello/rollback",
        serde_json::json!({ "revision": &v1[..8] }),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    env.wait_synced_healthy("hello", Some(&v1)).await;
    assert_eq!(version(env.job("hello").await), "0.2.0");
    env.shutdown().await;
}

/// A manual refresh (`POST /api/v1/refresh`) resolves the registry's moved tag again without a
/// new desired commit.
#[tokio::test(flavor = "multi_thread")]
async fn a_manual_refresh_resolves_a_moved_tag_again() {
    let registry = Registry::new();
    let url = registry.url();
    let mut env = TestEnv::new().await;
    env.write("apps/hello/app.yaml", &pack_app("hello", &url, "v1"));
    let rev = env.commit("hello at tag v1");
    env.start_drover().await;
    env.wait_synced_healthy("hello", Some(&rev)).await;
    let second = registry.release("0.3.0");
    registry.tag("v1", &second);
    let (code, body) = api_post(&env, "/api/v1/refresh", serde_json::json!({})).await;
    assert_eq!(code, 202, "{body}");
    env.wait_job("hello", "the 0.3.0 release", |job| {
        job.is_some_and(|j| j["Meta"]["pack_version"] == "0.3.0")
    })
    .await;
    env.shutdown().await;
}

/// A full commit ref is immutable: once in the mirror it is read without a fetch, so it still
/// loads, without a warning, when the registry has gone away (even for a new fetcher).
#[test]
fn a_full_commit_ref_is_read_from_the_mirror_without_a_fetch() {
    let registry = Registry::new();
    let url = registry.url();
    let commit = registry.first.clone();
    let desired = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(
        desired.path(),
        "apps/hello/app.yaml",
        &pack_app("hello", &url, &commit),
    );
    let mirrors = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let read =
        || drover::source::Revision::from_dir(desired.path()).unwrap_or_else(|e| panic!("{e}"));
    let load = || {
        let fetcher = drover::source::packs::PackFetcher::new(mirrors.path());
        drover::desired::load(&fetcher.attach(read()))
    };
    let first = load();
    assert!(first.apps[0].result.is_ok(), "{:?}", first.apps[0].result);
    std::fs::rename(&registry.path, registry.path.with_extension("gone"))
        .unwrap_or_else(|e| panic!("{e}"));
    let again = load();
    match &again.apps[0].result {
        Ok(app) => assert_eq!(
            app.resources[0].origin.file,
            format!(
                "git+{url}@{}:packs/hello_app/templates/hello_app.nomad.tpl",
                &commit[..12]
            )
        ),
        Err(d) => panic!("{d:#?}"),
    }
    assert!(
        again.apps[0].warnings.is_empty(),
        "{:?}",
        again.apps[0].warnings
    );
}

/// Start `git-daemon` serving `base` on a free loopback port (tests/common/daemon.rs).
fn git_daemon(base: &Path) -> (daemon::KillOnDrop, u16) {
    let exec_path = Command::new("git")
        .arg("--exec-path")
        .output()
        .unwrap_or_else(|e| panic!("git: {e}"));
    let program = Path::new(String::from_utf8_lossy(&exec_path.stdout).trim()).join("git-daemon");
    assert!(
        program.exists(),
        "{} is missing (package `git`)",
        program.display()
    );
    daemon::spawn_listening(|port| {
        let mut command = Command::new(&program);
        command
            .args([
                &format!("--base-path={}", base.display()),
                "--export-all",
                &format!("--port={port}"),
                "--listen=127.0.0.1",
                "--reuseaddr",
            ])
            .arg(base);
        command
    })
}

/// Over a real `git daemon` (git://): `drover render <dir>` reads the registry pack at tag v1.
#[test]
fn render_reads_a_registry_pack_over_git_daemon() {
    let registry = Registry::new();
    let base = registry
        .path
        .parent()
        .unwrap_or_else(|| panic!("registry has a parent"));
    let (_daemon, port) = git_daemon(base);
    let url = format!("git://127.0.0.1:{port}/registry");
    let desired = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(
        desired.path(),
        "apps/hello/app.yaml",
        &pack_app("hello", &url, "v1"),
    );
    let (code, out) = render(desired.path());
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "# hello: nomad_job/default/hello (from git+{url}@{}:packs/hello_app/templates/hello_app.nomad.tpl)",
            &registry.first[..12]
        )),
        "{out}"
    );
}

/// A registry that accepts the connection and never answers is an error of the app after the
/// fetch timeout, naming the URL and the ref; loading does not hang.
#[test]
fn a_hung_registry_times_out_as_an_error_of_that_app() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .port();
    let url = format!("git://127.0.0.1:{port}/registry");
    let desired = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(
        desired.path(),
        "apps/hello/app.yaml",
        &pack_app("hello", &url, "v1"),
    );
    let mirrors = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let fetcher = drover::source::packs::PackFetcher::new(mirrors.path())
        .with_fetch_timeout(std::time::Duration::from_millis(500));
    let rev = drover::source::Revision::from_dir(desired.path()).unwrap_or_else(|e| panic!("{e}"));
    let loaded = drover::desired::load(&fetcher.attach(rev));
    let Err(diags) = &loaded.apps[0].result else {
        panic!("the registry never answers")
    };
    let shown = common::render_diagnostics(diags);
    assert!(
        shown.contains("timed out") && shown.contains(&url) && shown.contains("\"v1\""),
        "{shown}"
    );
    drop(listener);
}
