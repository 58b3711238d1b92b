//! `repo.verify`: only commits with a Git SSH signature by a key of `allowed_signers` go into
//! force. Real keys (`ssh-keygen -t ed25519`), real signed commits (`git commit -S` with
//! `gpg.format=ssh`), drover against the devstack.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TEST_API_TOKEN, TestEnv, WAIT, app_yaml, web_jobspec};
use drover::source::verify::{VerifyMode, VerifyPolicy};
use serde_json::Value;

/// `ssh-keygen` is there (CI installs openssh-client); tests skip with a message otherwise.
fn have_ssh_keygen() -> bool {
    let found = Command::new("ssh-keygen").arg("-?").output().is_ok();
    if !found {
        eprintln!("SKIPPED: ssh-keygen not found (install openssh-client)");
    }
    found
}

fn run(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A new ed25519 key pair; returns the private key's path.
fn keygen(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key));
    key
}

/// `SHA256:…` of a key, as ssh-keygen prints it.
fn fingerprint(key: &Path) -> String {
    let listed = run(Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key.with_extension("pub")));
    listed
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("fingerprint in {listed:?}"))
        .to_string()
}

fn git(repo: &Path) -> Command {
    let mut command = Command::new("git");
    command.arg("-C").arg(repo).args([
        "-c",
        "user.name=Tester",
        "-c",
        "user.email=tester@example.com",
        "-c",
        "gpg.format=ssh",
        "-c",
        "commit.gpgsign=false",
    ]);
    command
}

/// Commit the working copy, signed with `key` (`None`: unsigned); returns the commit id.
fn commit(repo: &Path, key: Option<&Path>, message: &str) -> String {
    run(git(repo).args(["add", "-A"]));
    let mut command = git(repo);
    if let Some(key) = key {
        command
            .arg("-c")
            .arg(format!("user.signingkey={}", key.display()))
            .args(["commit", "-q", "-S", "--allow-empty", "-m", message]);
    } else {
        command.args([
            "commit",
            "-q",
            "--no-gpg-sign",
            "--allow-empty",
            "-m",
            message,
        ]);
    }
    run(&mut command);
    run(git(repo).args(["rev-parse", "HEAD"]))
        .trim()
        .to_string()
}

struct Signed {
    env: TestEnv,
    _keys: tempfile::TempDir,
    good: PathBuf,
    unknown: PathBuf,
    first: String,
}

/// The web app (nginx:1.27) committed with a listed key, drover started with `mode`, and the
/// app Synced at that commit.
async fn start(mode: VerifyMode) -> Option<Signed> {
    if !have_ssh_keygen() {
        return None;
    }
    let keys = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let good = keygen(keys.path(), "good");
    let unknown = keygen(keys.path(), "unknown");
    let public =
        std::fs::read_to_string(good.with_extension("pub")).unwrap_or_else(|e| panic!("{e}"));
    let signers = keys.path().join("allowed_signers");
    std::fs::write(
        &signers,
        format!("tester@example.com namespaces=\"git\" {public}"),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let mut env = TestEnv::new().await;
    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    let first = commit(&env.repo, Some(&good), "web 1.27, signed");
    let mut settings = env.settings();
    settings.source.verify = Some(VerifyPolicy {
        ssh_allowed_signers: Some(signers),
        openpgp_keys: Vec::new(),
        mode,
    });
    env.start_drover_with(settings).await;
    env.wait_synced_healthy("web", Some(&first)).await;
    Some(Signed {
        env,
        _keys: keys,
        good,
        unknown,
        first,
    })
}

fn running(env: &TestEnv) -> &drover::controller::runtime::Running {
    env.drover
        .as_ref()
        .unwrap_or_else(|| panic!("drover is not running"))
}

/// Fetch now; return `GET /api/v1/source`.
async fn refresh(env: &TestEnv) -> Value {
    tokio::time::timeout(WAIT, running(env).source.refresh())
        .await
        .unwrap_or_else(|_| panic!("no fetch finished"));
    env.http
        .get(format!("{}/api/v1/source", env.drover_url()))
        .bearer_auth(TEST_API_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The commit is refused with `reason`, the first commit stays in force and the job keeps
/// nginx:1.27 through a full reconcile.
async fn assert_refused(s: &Signed, bad: &str, reason: &str) {
    let source = refresh(&s.env).await;
    let short = &bad[..7];
    assert_eq!(
        source["last_error"].as_str(),
        Some(format!("commit {short}: {reason}").as_str()),
        "{source:#}"
    );
    assert_eq!(source["revision"].as_str(), Some(s.first.as_str()));
    // The repository problem the alert engine and the page's banner read, and an event.
    let expected = format!("commit {short}: {reason}");
    let mut repo = running(&s.env).ctx.repo.subscribe();
    let published = tokio::time::timeout(
        WAIT,
        repo.wait_for(|r| r.refused_commit.as_deref() == Some(expected.as_str())),
    )
    .await
    .is_ok();
    assert!(published, "refusal not published: {:?}", *repo.borrow());
    s.env.wait_event(&expected).await;
    let status = s.env.wait_full_cycle("web").await;
    assert_eq!(status.revision, s.first);
    let job = s.env.job("web").await.unwrap_or_default();
    assert_eq!(
        job["TaskGroups"][0]["Tasks"][0]["Config"]["image"],
        "nginx:1.27"
    );
}

fn set_image(env: &TestEnv, image: &str) {
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", image));
}

#[tokio::test(flavor = "multi_thread")]
async fn only_commits_signed_by_a_listed_key_go_into_force() {
    let Some(s) = start(VerifyMode::Tip).await else {
        return;
    };

    set_image(&s.env, "nginx:1.28");
    let unsigned = commit(&s.env.repo, None, "1.28, unsigned");
    assert_refused(&s, &unsigned, "no signature").await;

    let by_unknown = commit(&s.env.repo, Some(&s.unknown), "1.28, unknown key");
    let reason = format!("signed by unknown key {}", fingerprint(&s.unknown));
    assert_refused(&s, &by_unknown, &reason).await;

    // The first commit's valid signature pasted onto another commit.
    let tampered = {
        let repo = git2::Repository::open(&s.env.repo).unwrap_or_else(|e| panic!("{e}"));
        let first = git2::Oid::from_str(&s.first).unwrap_or_else(|e| panic!("{e}"));
        let (signature, _) = repo
            .extract_signature(&first, Some("gpgsig"))
            .unwrap_or_else(|e| panic!("{e}"));
        let head = repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .unwrap_or_else(|e| panic!("{e}"));
        let who =
            git2::Signature::now("Tester", "tester@example.com").unwrap_or_else(|e| panic!("{e}"));
        let tree = head.tree().unwrap_or_else(|e| panic!("{e}"));
        let buffer = repo
            .commit_create_buffer(&who, &who, "1.28, tampered", &tree, &[&head])
            .unwrap_or_else(|e| panic!("{e}"));
        let content = buffer
            .as_str()
            .unwrap_or_else(|e| panic!("utf-8 commit: {e}"));
        let oid = repo
            .commit_signed(
                content,
                signature.as_str().unwrap_or_else(|e| panic!("utf-8: {e}")),
                Some("gpgsig"),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        run(git(&s.env.repo).args(["reset", "-q", "--hard", &oid.to_string()]));
        oid.to_string()
    };
    let reason = format!(
        "bad signature by {} (tester@example.com)",
        fingerprint(&s.good)
    );
    let source = refresh(&s.env).await;
    let shown = source["last_error"].as_str().unwrap_or_default();
    assert!(
        shown.starts_with(&format!("commit {}: {reason}", &tampered[..7])),
        "{source:#}"
    );
    assert_refused(&s, &tampered, shown.split_once(": ").map_or("", |(_, r)| r)).await;

    // A properly signed commit on top goes into force (tip mode checks the tip only).
    set_image(&s.env, "nginx:1.29");
    let good = commit(&s.env.repo, Some(&s.good), "1.29, signed");
    let source = refresh(&s.env).await;
    assert_eq!(source["last_error"], Value::Null, "{source:#}");
    s.env.wait_synced_healthy("web", Some(&good)).await;
    let mut repo = running(&s.env).ctx.repo.subscribe();
    tokio::time::timeout(WAIT, repo.wait_for(|r| r.refused_commit.is_none()))
        .await
        .unwrap_or_else(|_| panic!("the refusal is cleared"))
        .unwrap_or_else(|e| panic!("{e}"));
    let job = s.env.job("web").await.unwrap_or_default();
    assert_eq!(
        job["TaskGroups"][0]["Tasks"][0]["Config"]["image"],
        "nginx:1.29"
    );
    s.env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn all_new_refuses_a_bad_commit_under_a_good_tip() {
    let Some(s) = start(VerifyMode::AllNew).await else {
        return;
    };
    set_image(&s.env, "nginx:1.28");
    let unsigned = commit(&s.env.repo, None, "1.28, unsigned");
    set_image(&s.env, "nginx:1.29");
    commit(&s.env.repo, Some(&s.good), "1.29, signed on top");
    assert_refused(&s, &unsigned, "no signature").await;

    // Dropping the unsigned commit (a force-push) lets a signed one through.
    run(git(&s.env.repo).args(["reset", "-q", "--hard", &s.first]));
    set_image(&s.env, "nginx:1.29");
    let good = commit(&s.env.repo, Some(&s.good), "1.29, signed");
    let source = refresh(&s.env).await;
    assert_eq!(source["last_error"], Value::Null, "{source:#}");
    s.env.wait_synced_healthy("web", Some(&good)).await;
    s.env.shutdown().await;
}

/// A new Ed25519 OpenPGP key (rPGP) whose primary key signs.
fn openpgp_key(user: &str) -> pgp::composed::SignedSecretKey {
    let mut params = pgp::composed::SecretKeyParamsBuilder::default();
    params
        .key_type(pgp::composed::KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(user.into());
    params
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
        .generate(rand08::thread_rng())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn openpgp_fingerprint(key: &pgp::composed::SignedSecretKey) -> String {
    use pgp::types::KeyDetails;
    format!("{:X}", key.fingerprint())
}

/// Commit the working copy with git2, the `gpgsig` header made by `sign` over the commit
/// object; HEAD moves to it. Returns the commit id.
fn commit_openpgp(repo_path: &Path, message: &str, sign: impl Fn(&str) -> String) -> String {
    run(git(repo_path).args(["add", "-A"]));
    let repo = git2::Repository::open(repo_path).unwrap_or_else(|e| panic!("{e}"));
    let tree_id = repo
        .index()
        .and_then(|mut index| index.write_tree())
        .unwrap_or_else(|e| panic!("{e}"));
    let tree = repo.find_tree(tree_id).unwrap_or_else(|e| panic!("{e}"));
    let parent = repo.head().and_then(|h| h.peel_to_commit()).ok();
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let who =
        git2::Signature::now("Tester", "tester@example.com").unwrap_or_else(|e| panic!("{e}"));
    let buffer = repo
        .commit_create_buffer(&who, &who, message, &tree, &parents)
        .unwrap_or_else(|e| panic!("{e}"));
    let content = buffer
        .as_str()
        .unwrap_or_else(|e| panic!("utf-8 commit: {e}"));
    let oid = repo
        .commit_signed(content, &sign(content), Some("gpgsig"))
        .unwrap_or_else(|e| panic!("{e}"));
    run(git(repo_path).args(["reset", "-q", "--hard", &oid.to_string()]));
    oid.to_string()
}

fn openpgp_signature(key: &pgp::composed::SignedSecretKey, data: &[u8]) -> String {
    pgp::composed::DetachedSignature::sign_binary_data(
        rand08::thread_rng(),
        &key.primary_key,
        &pgp::types::Password::empty(),
        pgp::crypto::hash::HashAlgorithm::Sha256,
        data,
    )
    .and_then(|s| s.to_armored_string(Default::default()))
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn only_commits_signed_by_a_listed_openpgp_key_go_into_force() {
    let listed = openpgp_key("Tester <tester@example.com>");
    let other = openpgp_key("Other <other@example.com>");
    let keys = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let armoured = keys.path().join("team.asc");
    std::fs::write(
        &armoured,
        listed
            .to_public_key()
            .to_armored_string(Default::default())
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let mut env = TestEnv::new().await;
    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    let first = commit_openpgp(&env.repo, "web 1.27, signed", |c| {
        openpgp_signature(&listed, c.as_bytes())
    });
    let mut settings = env.settings();
    settings.source.verify = Some(VerifyPolicy {
        ssh_allowed_signers: None,
        openpgp_keys: vec![armoured],
        mode: VerifyMode::Tip,
    });
    env.start_drover_with(settings).await;
    env.wait_synced_healthy("web", Some(&first)).await;
    let s = Signed {
        env,
        _keys: keys,
        good: PathBuf::new(),
        unknown: PathBuf::new(),
        first,
    };

    set_image(&s.env, "nginx:1.28");
    let by_other = commit_openpgp(&s.env.repo, "1.28, other key", |c| {
        openpgp_signature(&other, c.as_bytes())
    });
    let reason = format!(
        "signed by unknown OpenPGP key {}",
        openpgp_fingerprint(&other)
    );
    assert_refused(&s, &by_other, &reason).await;

    // A valid signature by the listed key, but over other content.
    set_image(&s.env, "nginx:1.28");
    let tampered = commit_openpgp(&s.env.repo, "1.28, tampered", |_| {
        openpgp_signature(&listed, b"some other commit")
    });
    let source = refresh(&s.env).await;
    let prefix = format!(
        "commit {}: bad signature by OpenPGP key {}",
        &tampered[..7],
        openpgp_fingerprint(&listed)
    );
    let shown = source["last_error"].as_str().unwrap_or_default();
    assert!(shown.starts_with(&prefix), "{source:#}");
    assert_refused(&s, &tampered, shown.split_once(": ").map_or("", |(_, r)| r)).await;

    set_image(&s.env, "nginx:1.29");
    let good = commit_openpgp(&s.env.repo, "1.29, signed", |c| {
        openpgp_signature(&listed, c.as_bytes())
    });
    let source = refresh(&s.env).await;
    assert_eq!(source["last_error"], Value::Null, "{source:#}");
    s.env.wait_synced_healthy("web", Some(&good)).await;
}
