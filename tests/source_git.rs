//! Git source end to end: real repositories made with the `git` CLI, fetched by drover's
//! `GitSource` from a path, a `file://` URL, `git daemon` and smart HTTP (`git http-backend`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "common/daemon.rs"]
mod daemon;
use daemon::{KillOnDrop, free_port, spawn_listening};

use drover::source::{
    GitAuth, GitSource, SourceConfig, SourceError, SourceStatus, SourceWatcher, commit_all,
    init_repo_from_dir,
};
use tokio_util::sync::CancellationToken;

/// Run `git` in `dir` with a fixed identity; panics with stderr on failure.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git is installed");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A bare "server" repository plus a clone to commit and push from.
struct Upstream {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    bare: PathBuf,
    work: PathBuf,
}

impl Upstream {
    fn new() -> Upstream {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let bare = root.join("repo.git");
        git(&root, &["init", "--bare", "repo.git"]);
        git(&root, &["clone", "repo.git", "work"]);
        Upstream {
            _tmp: tmp,
            bare,
            work: root.join("work"),
            root,
        }
    }

    /// Write files, commit and push the current branch; returns the commit id.
    fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, content) in files {
            let full = self.work.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, content).unwrap();
        }
        git(&self.work, &["add", "-A"]);
        git(
            &self.work,
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        git(&self.work, &["push", "-q", "origin", "HEAD"]);
        git(&self.work, &["rev-parse", "HEAD"])
    }

    fn source(&self, url: &str, reference: &str) -> (GitSource, tempfile::TempDir) {
        let data = tempfile::tempdir().unwrap();
        let config = SourceConfig {
            url: url.to_string(),
            reference: reference.to_string(),
            ..SourceConfig::default()
        };
        let source = GitSource::open(config, &data.path().join("mirror")).unwrap();
        (source, data)
    }
}

/// Fail (never skip) when a git helper program is missing, naming the package to install.
fn require_git_program(name: &str) -> PathBuf {
    let exec_path = git(Path::new("."), &["--exec-path"]);
    let program = Path::new(&exec_path).join(name);
    assert!(
        program.exists(),
        "{} is missing: install the Debian/Ubuntu package `git` (it ships git-daemon and \
         git-http-backend in /usr/lib/git-core; Fedora/RHEL: `git-daemon`)",
        program.display()
    );
    program
}

#[test]
fn fetch_from_a_path_reads_the_tree_and_sees_a_new_commit() {
    let up = Upstream::new();
    let first = up.commit(
        &[("apps/web/app.yaml", "name: web\n"), ("README.md", "hi\n")],
        "First commit\n\nWith a body.",
    );
    let (source, _data) = up.source(up.bare.to_str().unwrap(), "HEAD");

    let rev = source.fetch().unwrap();
    assert_eq!(rev.id, first);
    assert_eq!(rev.message, "First commit");
    assert_eq!(
        rev.file("apps/web/app.yaml").ok().as_deref(),
        Some(&b"name: web\n"[..])
    );
    assert_eq!(rev.paths().count(), 2);

    let second = up.commit(&[("apps/web/app.yaml", "name: web2\n")], "Second");
    assert_ne!(first, second);
    let rev = source.fetch().unwrap();
    assert_eq!(rev.id, second);
    assert_eq!(
        rev.file("apps/web/app.yaml").ok().as_deref(),
        Some(&b"name: web2\n"[..])
    );
}

#[test]
fn fetch_from_a_file_url() {
    let up = Upstream::new();
    let id = up.commit(&[("a/b/c.txt", "deep")], "nested");
    let url = url::Url::from_file_path(&up.bare).unwrap().to_string();
    assert!(url.starts_with("file://"));
    let (source, _data) = up.source(&url, "main");
    let rev = source.fetch().unwrap();
    assert_eq!(rev.id, id);
    assert_eq!(rev.file("a/b/c.txt").ok().as_deref(), Some(&b"deep"[..]));
}

#[test]
fn mirror_survives_reopen_and_reads_without_network() {
    let up = Upstream::new();
    let id = up.commit(&[("x", "1")], "one");
    let data = tempfile::tempdir().unwrap();
    let mirror = data.path().join("mirror");
    let config = SourceConfig::new(up.bare.to_str().unwrap());
    GitSource::open(config.clone(), &mirror)
        .unwrap()
        .fetch()
        .unwrap();
    // Remote gone: a reopened mirror still has the commit for rollback.
    std::fs::remove_dir_all(&up.bare).unwrap();
    let source = GitSource::open(config, &mirror).unwrap();
    assert_eq!(
        source.revision_at(&id).unwrap().file("x").ok().as_deref(),
        Some(&b"1"[..])
    );
    assert!(source.fetch().is_err());
}

#[test]
fn git_daemon_remote_is_fetched() {
    let up = Upstream::new();
    let id = up.commit(&[("apps/a/app.yaml", "name: a\n")], "via daemon");
    // Run git-daemon itself, not the `git` wrapper: killing the wrapper would leave it running.
    let program = require_git_program("git-daemon");
    let (daemon, port) = spawn_listening(|port| {
        let mut command = Command::new(&program);
        command
            .args([
                &format!("--base-path={}", up.root.display()),
                "--export-all",
                &format!("--port={port}"),
                "--listen=127.0.0.1",
                "--reuseaddr",
                "--informative-errors",
            ])
            .arg(&up.root);
        command
    });

    let url = format!("git://127.0.0.1:{port}/repo.git");
    let (source, _data) = up.source(&url, "HEAD");
    let rev = source.fetch().unwrap();
    assert_eq!(rev.id, id);
    assert_eq!(
        rev.file("apps/a/app.yaml").ok().as_deref(),
        Some(&b"name: a\n"[..])
    );

    let next = up.commit(&[("apps/a/app.yaml", "name: a2\n")], "second via daemon");
    assert_eq!(source.fetch().unwrap().id, next);

    // An unknown repository on the daemon is an error naming the URL, not a panic.
    let (missing, _d) = up.source(&format!("git://127.0.0.1:{port}/nope.git"), "HEAD");
    let err = missing.fetch().unwrap_err();
    assert!(err.to_string().contains("nope.git"), "{err}");
    drop(daemon);
}

#[test]
fn branch_and_annotated_tag_resolve_to_their_commits() {
    let up = Upstream::new();
    let on_main = up.commit(&[("f", "main")], "main commit");
    git(&up.work, &["tag", "-a", "v1", "-m", "release 1"]);
    git(&up.work, &["push", "-q", "origin", "v1"]);
    git(&up.work, &["checkout", "-q", "-b", "feature"]);
    let on_feature = up.commit(&[("f", "feature")], "feature commit");
    let bare = up.bare.to_str().unwrap();

    let (branch, _d1) = up.source(bare, "feature");
    let rev = branch.fetch().unwrap();
    assert_eq!(rev.id, on_feature);
    assert_eq!(rev.file("f").ok().as_deref(), Some(&b"feature"[..]));

    // An annotated tag peels to its commit.
    let (tag, _d2) = up.source(bare, "v1");
    let rev = tag.fetch().unwrap();
    assert_eq!(rev.id, on_main);
    assert_eq!(rev.file("f").ok().as_deref(), Some(&b"main"[..]));

    let (full, _d3) = up.source(bare, "refs/heads/feature");
    assert_eq!(full.fetch().unwrap().id, on_feature);

    // HEAD follows the remote's default branch (main), not the newest branch.
    let (head, _d4) = up.source(bare, "HEAD");
    assert_eq!(head.fetch().unwrap().id, on_main);
}

#[test]
fn force_push_is_followed_and_the_old_commit_stays_readable() {
    let up = Upstream::new();
    let a = up.commit(&[("f", "a")], "a");
    let b = up.commit(&[("f", "b")], "b");
    let (source, _data) = up.source(up.bare.to_str().unwrap(), "main");
    assert_eq!(source.fetch().unwrap().id, b);

    git(&up.work, &["reset", "-q", "--hard", &a]);
    std::fs::write(up.work.join("f"), "c").unwrap();
    git(&up.work, &["commit", "-q", "-am", "c"]);
    git(&up.work, &["push", "-q", "--force", "origin", "main"]);
    let c = git(&up.work, &["rev-parse", "HEAD"]);

    let rev = source.fetch().unwrap();
    assert_eq!(rev.id, c);
    assert_eq!(rev.file("f").ok().as_deref(), Some(&b"c"[..]));
    // The rewritten-away commit is still in the mirror for rollback.
    assert_eq!(
        source.revision_at(&b).unwrap().file("f").ok().as_deref(),
        Some(&b"b"[..])
    );
}

#[test]
fn revision_at_reads_old_commits_by_id_short_id_and_expression() {
    let up = Upstream::new();
    let first = up.commit(&[("v", "1")], "one");
    let second = up.commit(&[("v", "2"), ("w", "new")], "two");
    let (source, _data) = up.source(up.bare.to_str().unwrap(), "HEAD");
    assert_eq!(source.fetch().unwrap().id, second);

    let old = source.revision_at(&first).unwrap();
    assert_eq!(old.id, first);
    assert_eq!(old.message, "one");
    assert_eq!(old.file("v").ok().as_deref(), Some(&b"1"[..]));
    assert_eq!(old.file("w").ok().as_deref(), None);

    assert_eq!(source.resolve(&first[..10]).unwrap(), first);
    assert_eq!(source.resolve("main~1").unwrap(), first);
    assert_eq!(source.resolve("main").unwrap(), second);
    assert_eq!(source.resolve("HEAD").unwrap(), second);

    let err = source.revision_at("0123456789abcdef").unwrap_err();
    assert!(matches!(err, SourceError::RefNotFound { .. }), "{err}");
}

#[test]
fn empty_repository_and_unknown_branch_are_errors() {
    let up = Upstream::new();
    let bare = up.bare.to_str().unwrap();
    let (head, _d1) = up.source(bare, "HEAD");
    let err = head.fetch().unwrap_err();
    assert!(matches!(err, SourceError::RefNotFound { .. }), "{err}");
    assert!(err.to_string().contains("\"HEAD\""), "{err}");

    up.commit(&[("f", "x")], "x");
    let (branch, _d2) = up.source(bare, "no-such-branch");
    let err = branch.fetch().unwrap_err();
    assert!(matches!(err, SourceError::RefNotFound { .. }), "{err}");
    assert!(err.to_string().contains("no-such-branch"), "{err}");
    assert!(!err.is_transient());
}

#[test]
fn deleted_branch_is_no_longer_followed() {
    let up = Upstream::new();
    up.commit(&[("f", "x")], "x");
    git(&up.work, &["push", "-q", "origin", "HEAD:refs/heads/tmp"]);
    let (source, _data) = up.source(up.bare.to_str().unwrap(), "tmp");
    source.fetch().unwrap();
    git(&up.work, &["push", "-q", "origin", ":refs/heads/tmp"]);
    let err = source.fetch().unwrap_err();
    assert!(matches!(err, SourceError::RefNotFound { .. }), "{err}");
}

#[test]
fn unreachable_url_is_a_transient_error_without_credentials() {
    let port = free_port();
    let data = tempfile::tempdir().unwrap();
    let config = SourceConfig::new(format!("http://bot:s3cr3t@127.0.0.1:{port}/org/repo.git"));
    let source = GitSource::open(config, data.path()).unwrap();
    let err = source.fetch().unwrap_err();
    let text = err.to_string();
    assert!(err.is_transient(), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{port}/org/repo.git")),
        "{text}"
    );
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(!format!("{err:?}").contains("s3cr3t"));
}

#[test]
fn init_repo_from_dir_seeds_a_repo_that_a_source_can_follow() {
    let seed = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(seed.path().join("apps/minio")).unwrap();
    std::fs::write(seed.path().join("apps/minio/app.yaml"), "name: minio\n").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let first = init_repo_from_dir(seed.path(), &repo).unwrap();

    let data = tempfile::tempdir().unwrap();
    let source = GitSource::open(SourceConfig::new(repo.to_str().unwrap()), data.path()).unwrap();
    assert_eq!(source.fetch().unwrap().id, first);

    std::fs::write(repo.join("apps/minio/app.yaml"), "name: minio2\n").unwrap();
    let second = commit_all(&repo, "bump").unwrap();
    let rev = source.fetch().unwrap();
    assert_eq!(rev.id, second);
    assert_eq!(rev.message, "bump");
    // A plain `git` user sees drover's commit on main.
    assert_eq!(git(&repo, &["rev-parse", "main"]), second);
}

async fn wait_for(
    rx: &mut tokio::sync::watch::Receiver<SourceStatus>,
    what: &str,
    pred: impl Fn(&SourceStatus) -> bool,
) -> SourceStatus {
    let waited = tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|s| pred(s)))
        .await
        .map(|r| r.map(|status| status.clone()));
    match waited {
        Ok(Ok(status)) => status,
        _ => panic!("timed out waiting for {what}: {:?}", *rx.borrow()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_keeps_last_good_revision_when_the_remote_is_unreachable() {
    let up = Upstream::new();
    let first = up.commit(&[("f", "1")], "one");
    let (source, _data) = up.source(up.bare.to_str().unwrap(), "HEAD");
    let shutdown = CancellationToken::new();
    let watcher = SourceWatcher::spawn(source, Duration::from_millis(200), shutdown.clone());
    let mut rx = watcher.subscribe();
    wait_for(&mut rx, "first revision", |s| s.revision.is_some()).await;

    // The remote disappears: errors pile up, the revision stays.
    let moved = up.root.join("moved.git");
    std::fs::rename(&up.bare, &moved).unwrap();
    let status = wait_for(&mut rx, "two failures", |s| s.consecutive_failures >= 2).await;
    assert_eq!(status.revision.as_ref().unwrap().id, first);
    let error = status.last_error.unwrap();
    assert!(error.contains("repo.git"), "{error}");
    assert!(status.last_fetch.is_some());

    // It comes back with a new commit: the error clears and the new revision arrives.
    std::fs::rename(&moved, &up.bare).unwrap();
    let second = up.commit(&[("f", "2")], "two");
    let status = wait_for(&mut rx, "recovery", |s| {
        s.last_error.is_none() && s.revision.as_ref().is_some_and(|r| r.id == second)
    })
    .await;
    assert_eq!(status.consecutive_failures, 0);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !watcher.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("watcher stops on shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_fetches_immediately_and_old_revisions_stay_readable() {
    let up = Upstream::new();
    let first = up.commit(&[("f", "1")], "one");
    let (source, _data) = up.source(up.bare.to_str().unwrap(), "HEAD");
    let shutdown = CancellationToken::new();
    // An hour between polls: only trigger() can make the second fetch happen in time.
    let watcher = SourceWatcher::spawn(source, Duration::from_secs(3600), shutdown.clone());
    let mut rx = watcher.subscribe();
    wait_for(&mut rx, "first revision", |s| s.revision.is_some()).await;
    assert_eq!(rx.borrow().revision.as_ref().unwrap().id, first);

    let second = up.commit(&[("f", "2")], "two");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rx.borrow().revision.as_ref().unwrap().id,
        first,
        "no fetch without a trigger"
    );
    watcher.trigger();
    let status = wait_for(&mut rx, "triggered fetch", |s| {
        s.revision.as_ref().is_some_and(|r| r.id == second)
    })
    .await;
    assert_eq!(
        status.revision.unwrap().file("f").ok().as_deref(),
        Some(&b"2"[..])
    );

    // refresh() returns only after a fetch that began after the call: the push is in it.
    for round in 3..6 {
        let pushed = up.commit(&[("f", &round.to_string())], "more");
        let status = tokio::time::timeout(Duration::from_secs(20), watcher.refresh())
            .await
            .expect("refresh finishes");
        assert_eq!(status.revision.unwrap().id, pushed);
    }

    // Rollback reads the older commit from the watcher's mirror.
    let old = watcher.source().revision_at(&first).unwrap();
    assert_eq!(old.file("f").ok().as_deref(), Some(&b"1"[..]));
    shutdown.cancel();
    // After shutdown, refresh() does not hang.
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(5), watcher.refresh())
        .await
        .expect("refresh after shutdown returns");
}

// ---- smart HTTP through `git http-backend` behind a loopback CGI bridge ----

mod http {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::extract::{Request, State};
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::Response;
    use std::io::Write;

    #[derive(Clone)]
    struct Backend {
        root: PathBuf,
        /// Expected `Authorization` header; requests without it get 401.
        basic: Option<String>,
    }

    async fn cgi(State(backend): State<Backend>, request: Request) -> Response {
        if let Some(expected) = &backend.basic {
            let given = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if given != Some(expected.as_str()) {
                let mut resp = Response::new(Body::from("auth required"));
                *resp.status_mut() = StatusCode::UNAUTHORIZED;
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"git\""),
                );
                return resp;
            }
        }
        let (parts, body) = request.into_parts();
        let input = to_bytes(body, 64 << 20).await.unwrap();
        let header = |name: header::HeaderName| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let mut child = Command::new("git")
            .arg("http-backend")
            .env_clear()
            .env("GIT_PROJECT_ROOT", &backend.root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("REQUEST_METHOD", parts.method.as_str())
            .env("PATH_INFO", parts.uri.path())
            .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
            .env("CONTENT_TYPE", header(header::CONTENT_TYPE))
            .env("CONTENT_LENGTH", input.len().to_string())
            .env("HTTP_CONTENT_ENCODING", header(header::CONTENT_ENCODING))
            .env(
                "GIT_PROTOCOL",
                header(header::HeaderName::from_static("git-protocol")),
            )
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("git http-backend runs");
        let mut stdin = child.stdin.take().unwrap();
        let output = tokio::task::spawn_blocking(move || {
            stdin.write_all(&input).unwrap();
            drop(stdin);
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap();
        // CGI output: headers, a blank line, the body.
        let raw = output.stdout;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)))
            .expect("CGI headers end");
        let head = String::from_utf8_lossy(&raw[..split.0]).to_string();
        let mut resp = Response::new(Body::from(raw[split.0 + split.1..].to_vec()));
        for line in head.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("status") {
                let code: u16 = value.split(' ').next().unwrap().parse().unwrap();
                *resp.status_mut() = StatusCode::from_u16(code).unwrap();
            } else {
                resp.headers_mut().append(
                    header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
        }
        resp
    }

    async fn serve(root: PathBuf, basic: Option<String>) -> (SocketAddr, CancellationToken) {
        let app = axum::Router::new()
            .fallback(cgi)
            .with_state(Backend { root, basic });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await
                .unwrap();
        });
        (addr, stop)
    }

    fn blocking_fetch(source: GitSource) -> Result<drover::source::Revision, SourceError> {
        source.fetch()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn smart_http_without_auth() {
        let _ = require_git_program("git-http-backend");
        let up = Upstream::new();
        let id = up.commit(&[("apps/h/app.yaml", "name: h\n")], "over http");
        let (addr, stop) = serve(up.root.clone(), None).await;
        let (source, _data) = up.source(&format!("http://{addr}/repo.git"), "main");
        let rev = tokio::task::spawn_blocking(move || blocking_fetch(source))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rev.id, id);
        assert_eq!(
            rev.file("apps/h/app.yaml").ok().as_deref(),
            Some(&b"name: h\n"[..])
        );
        stop.cancel();
    }

    /// HTTPS-style token auth: the token is sent as the Basic password with the default
    /// `x-access-token` username; a missing or wrong token is an `Auth` error without the token.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn smart_http_token_auth_from_file_and_env() {
        let up = Upstream::new();
        let id = up.commit(&[("f", "secret repo")], "private");
        let expected = format!("Basic {}", base64_basic("x-access-token:tok-123"));
        let (addr, stop) = serve(up.root.clone(), Some(expected)).await;
        let url = format!("http://{addr}/repo.git");

        let token_dir = tempfile::tempdir().unwrap();
        let token_file = token_dir.path().join("token");
        std::fs::write(&token_file, "tok-123\n").unwrap();
        let data = tempfile::tempdir().unwrap();
        let with_file = GitSource::open(
            SourceConfig {
                auth: GitAuth {
                    token_file: Some(token_file.clone()),
                    ..GitAuth::default()
                },
                ..SourceConfig::new(&url)
            },
            data.path(),
        )
        .unwrap();
        let rev = tokio::task::spawn_blocking(move || blocking_fetch(with_file))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rev.id, id);

        // Never set: the test only checks that a missing variable is named in the error.
        let var = format!("DROVER_TEST_TOKEN_{}", addr.port());
        let data2 = tempfile::tempdir().unwrap();
        let wrong = GitSource::open(
            SourceConfig {
                auth: GitAuth {
                    token_file: Some(token_dir.path().join("wrong")),
                    ..GitAuth::default()
                },
                ..SourceConfig::new(&url)
            },
            data2.path(),
        )
        .unwrap();
        std::fs::write(token_dir.path().join("wrong"), "nope-999").unwrap();
        let err = tokio::task::spawn_blocking(move || blocking_fetch(wrong))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, SourceError::Auth { .. }), "{err}");
        assert!(!err.to_string().contains("nope-999"), "{err}");

        // No credentials configured at all.
        let data3 = tempfile::tempdir().unwrap();
        let none = GitSource::open(SourceConfig::new(&url), data3.path()).unwrap();
        let err = tokio::task::spawn_blocking(move || blocking_fetch(none))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, SourceError::Auth { .. }), "{err}");

        // A token variable that is not set is an Auth error naming the variable.
        let data4 = tempfile::tempdir().unwrap();
        let unset = GitSource::open(
            SourceConfig {
                auth: GitAuth {
                    token_env: Some(var.clone()),
                    ..GitAuth::default()
                },
                ..SourceConfig::new(&url)
            },
            data4.path(),
        )
        .unwrap();
        let err = tokio::task::spawn_blocking(move || blocking_fetch(unset))
            .await
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains(&var), "{err}");
        stop.cancel();
    }

    /// Minimal standard base64 for a Basic header (avoids a dev-dependency).
    fn base64_basic(input: &str) -> String {
        const TABLE: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let bytes = input.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

// ---- SSH key auth against a real OpenSSH server on loopback ----

/// An `sshd` on a free loopback port that accepts one client key; killed on drop.
struct SshServer {
    _process: KillOnDrop,
    port: u16,
    host_key_line: String,
}

fn ssh_keygen(path: &Path) {
    ssh_keygen_with_passphrase(path, "");
}

fn ssh_keygen_with_passphrase(path: &Path, passphrase: &str) {
    let status = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            passphrase,
            "-C",
            "drover-test",
            "-f",
        ])
        .arg(path)
        .status()
        .expect("ssh-keygen runs (Debian package openssh-client)");
    assert!(status.success());
}

/// `None` (the test is skipped, with a note) when sshd is missing outside CI; `.ci/run` installs
/// it, and there a missing sshd fails the test.
fn start_sshd(dir: &Path, authorized_pub: &Path) -> Option<SshServer> {
    let sshd = Path::new("/usr/sbin/sshd");
    if !sshd.exists() {
        let message =
            "/usr/sbin/sshd is missing: install the Debian/Ubuntu package `openssh-server`";
        assert!(std::env::var_os("CI").is_none(), "{message}");
        eprintln!("SKIPPED (not in CI): {message}");
        return None;
    }
    // As root, sshd insists on its privilege-separation directory.
    let _ = std::fs::create_dir_all("/run/sshd");
    let host_key = dir.join("host_key");
    ssh_keygen(&host_key);
    let authorized = dir.join("authorized_keys");
    std::fs::copy(authorized_pub, &authorized).unwrap();
    let config = dir.join("sshd_config");
    let (process, port) = spawn_listening(|port| {
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PidFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\n",
                host_key.display(),
                authorized.display(),
                dir.join("sshd.pid").display()
            ),
        )
        .unwrap();
        let mut command = Command::new(sshd);
        command.args(["-D", "-e", "-f"]).arg(&config);
        command
    });
    let public = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
    let mut fields = public.split_whitespace();
    let host_key_line = format!(
        "[127.0.0.1]:{port} {} {}\n",
        fields.next().unwrap(),
        fields.next().unwrap()
    );
    Some(SshServer {
        _process: process,
        port,
        host_key_line,
    })
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn ssh_key_auth_with_known_hosts_file() {
    let up = Upstream::new();
    let id = up.commit(&[("apps/s/app.yaml", "name: s\n")], "over ssh");
    let keys = tempfile::tempdir().unwrap();
    let client_key = keys.path().join("id_ed25519");
    ssh_keygen(&client_key);
    let Some(server) = start_sshd(keys.path(), &keys.path().join("id_ed25519.pub")) else {
        return;
    };
    let known_hosts = keys.path().join("known_hosts");
    std::fs::write(&known_hosts, &server.host_key_line).unwrap();

    let url = format!(
        "ssh://{}@127.0.0.1:{}{}",
        current_user(),
        server.port,
        up.bare.display()
    );
    let open = |auth: GitAuth, known: &Path| {
        let data = tempfile::tempdir().unwrap();
        let config = SourceConfig {
            auth,
            ..SourceConfig::new(&url)
        };
        let source = GitSource::open(config, data.path())
            .unwrap()
            .with_known_hosts(known.to_path_buf());
        (source, data)
    };

    let (source, _d1) = open(
        GitAuth {
            ssh_key_file: Some(client_key.clone()),
            ..GitAuth::default()
        },
        &known_hosts,
    );
    let rev = source.fetch().unwrap();
    assert_eq!(rev.id, id);
    assert_eq!(
        rev.file("apps/s/app.yaml").ok().as_deref(),
        Some(&b"name: s\n"[..])
    );

    // A passphrase-protected key, its passphrase read from an environment variable. (PATH is
    // used because it is always set and tests may not set variables: `unsafe_code` is
    // forbidden.)
    let locked_key = keys.path().join("locked_key");
    let passphrase = std::env::var("PATH").unwrap();
    ssh_keygen_with_passphrase(&locked_key, &passphrase);
    let mut authorized = std::fs::read_to_string(keys.path().join("authorized_keys")).unwrap();
    authorized.push_str(&std::fs::read_to_string(keys.path().join("locked_key.pub")).unwrap());
    std::fs::write(keys.path().join("authorized_keys"), authorized).unwrap();
    let (locked, _d4) = open(
        GitAuth {
            ssh_key_file: Some(locked_key),
            ssh_key_passphrase_env: Some("PATH".into()),
            ..GitAuth::default()
        },
        &known_hosts,
    );
    assert_eq!(locked.fetch().unwrap().id, id);
    let (wrong_passphrase, _d5) = open(
        GitAuth {
            ssh_key_file: Some(keys.path().join("locked_key")),
            ssh_key_passphrase_env: Some("HOME".into()),
            ..GitAuth::default()
        },
        &known_hosts,
    );
    let err = wrong_passphrase.fetch().unwrap_err();
    assert!(matches!(err, SourceError::Auth { .. }), "{err}");

    // A key the server does not know: an authentication error, not a hang or a panic.
    let other_key = keys.path().join("other_key");
    ssh_keygen(&other_key);
    let (wrong, _d2) = open(
        GitAuth {
            ssh_key_file: Some(other_key),
            ..GitAuth::default()
        },
        &known_hosts,
    );
    let err = wrong.fetch().unwrap_err();
    assert!(matches!(err, SourceError::Auth { .. }), "{err}");

    // The host listed with another key is refused (man-in-the-middle guard).
    let bad_hosts = keys.path().join("bad_known_hosts");
    let other_pub = std::fs::read_to_string(keys.path().join("other_key.pub")).unwrap();
    let blob = other_pub.split_whitespace().nth(1).unwrap();
    std::fs::write(
        &bad_hosts,
        format!("[127.0.0.1]:{} ssh-ed25519 {blob}\n", server.port),
    )
    .unwrap();
    let (mitm, _d3) = open(
        GitAuth {
            ssh_key_file: Some(client_key),
            ..GitAuth::default()
        },
        &bad_hosts,
    );
    let err = mitm.fetch().unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    assert!(!err.is_transient());
}

/// `drover serve` as a user runs it: host keys come from `~/.ssh/known_hosts` (no test-only
/// known_hosts file). An unknown host is refused with a hint; once listed, the fetch works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_trusts_only_hosts_in_the_users_known_hosts() {
    let up = Upstream::new();
    let id = up.commit(&[("apps/s/app.yaml", "name: s\n")], "over ssh");
    let keys = tempfile::tempdir().unwrap();
    let client_key = keys.path().join("id_ed25519");
    ssh_keygen(&client_key);
    let Some(server) = start_sshd(keys.path(), &keys.path().join("id_ed25519.pub")) else {
        return;
    };
    let url = format!(
        "ssh://{}@127.0.0.1:{}{}",
        current_user(),
        server.port,
        up.bare.display()
    );
    drover::providers::install_crypto_provider();
    let http = reqwest::Client::new();

    for trusted in [false, true] {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".ssh")).unwrap();
        if trusted {
            std::fs::write(home.path().join(".ssh/known_hosts"), &server.host_key_line).unwrap();
        }
        let config = home.path().join("drover.yaml");
        std::fs::write(
            &config,
            format!(
                "repo:\n  url: {url}\n  poll_interval: 1h\n  auth: {{ ssh_key_file: {} }}\n\
                 data_dir: {}\nlisten: 127.0.0.1:0\nnomad: {{ address: http://127.0.0.1:9 }}\n",
                client_key.display(),
                home.path().join("data").display()
            ),
        )
        .unwrap();
        let mut child = KillOnDrop(
            Command::new(env!("CARGO_BIN_EXE_drover"))
                .args(["serve", "-c"])
                .arg(&config)
                .env("HOME", home.path())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("drover serve starts"),
        );
        let stdout = child.0.stdout.take().expect("piped stdout");
        let base = tokio::task::spawn_blocking(move || {
            use std::io::BufRead as _;
            let mut lines = std::io::BufReader::new(stdout).lines();
            let found = lines.by_ref().map_while(Result::ok).find_map(|l| {
                l.split("status page on ")
                    .nth(1)
                    .map(|u| u.trim().trim_end_matches('/').to_string())
            });
            std::thread::spawn(move || lines.for_each(drop));
            found
        })
        .await
        .unwrap()
        .expect("serve prints its address");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let source = loop {
            let source: serde_json::Value =
                match http.get(format!("{base}/api/v1/source")).send().await {
                    Ok(r) => r.json().await.unwrap_or_default(),
                    Err(_) => serde_json::Value::Null,
                };
            if !source["revision"].is_null() || !source["last_error"].is_null() {
                break source;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no fetch result: {source}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if trusted {
            assert_eq!(source["revision"], id.as_str(), "{source}");
        } else {
            assert!(source["revision"].is_null(), "{source}");
            let error = source["last_error"].as_str().unwrap_or_default();
            assert!(error.contains("~/.ssh/known_hosts"), "{error}");
        }
        drop(child);
    }
}

/// Two commits read from Git: the second commit's load reuses every app folder whose blobs and
/// listings did not change (one Git blob ID per file) and reads the changed one again.
#[test]
fn a_commit_read_from_git_reloads_only_the_app_it_changed() {
    let up = Upstream::new();
    let job = |id: &str, image: &str| {
        format!(
            "job \"{id}\" {{\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"docker\"\n      config {{\n        image = \"{image}\"\n      }}\n    }}\n  }}\n}}\n"
        )
    };
    let app =
        |id: &str| format!("name: {id}\nresources:\n  - nomad_job: {{ file: job.nomad.hcl }}\n");
    let (a, b, c) = (app("a"), app("b"), app("c"));
    let (ja, jb, jc) = (
        job("a", "nginx:1"),
        job("b", "nginx:1"),
        job("c", "nginx:1"),
    );
    let first = up.commit(
        &[
            ("apps/a/app.yaml", &a),
            ("apps/a/job.nomad.hcl", &ja),
            ("apps/b/app.yaml", &b),
            ("apps/b/job.nomad.hcl", &jb),
            ("apps/c/app.yaml", &c),
            ("apps/c/job.nomad.hcl", &jc),
        ],
        "three apps",
    );
    let jb2 = job("b", "nginx:2");
    let second = up.commit(&[("apps/b/job.nomad.hcl", &jb2)], "b: nginx 2");
    let (source, _data) = up.source(up.bare.to_str().unwrap(), "HEAD");
    source.fetch().unwrap();
    let old = source.revision_at(&first).unwrap();
    let new = source.revision_at(&second).unwrap();
    let before = drover::desired::load(&old);
    assert_eq!(before.folders_reloaded(), Some(3));
    assert!(before.apps.iter().all(|a| a.result.is_ok()), "{before:?}");
    let owners = std::collections::BTreeMap::new();
    let after = drover::desired::load_after(&new, &owners, Some((&old, &before)));
    assert_eq!(after.folders_reloaded(), Some(1), "only b changed");
    let full = drover::desired::load(&new);
    assert_eq!(format!("{:?}", after.apps), format!("{:?}", full.apps));
    // The same commit again: nothing to read.
    let again = drover::desired::load_after(&new, &owners, Some((&new, &after)));
    assert_eq!(again.folders_reloaded(), Some(0));
}
