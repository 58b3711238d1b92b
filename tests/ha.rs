//! HA: two real `drover serve` processes against one devstack and one Git repository elect one
//! leader with a Nomad variable lock; SIGKILL of the leader hands over to the follower after the
//! lock's TTL and lock delay.

mod common;
#[path = "common/daemon.rs"]
#[allow(dead_code, reason = "only KillOnDrop is used here")]
mod daemon;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::TestEnv;
use daemon::KillOnDrop;

/// Start `drover serve` with an `ha:` block; returns the child and a receiver of its address,
/// which it prints only once it leads (a follower waits for the lock first).
fn serve(env: &TestEnv, dir: &Path) -> (KillOnDrop, tokio::sync::oneshot::Receiver<String>) {
    let config = dir.join("drover.yaml");
    std::fs::write(
        &config,
        format!(
            "repo:\n  url: {}\n  ref: {}\n  poll_interval: 1h\ndata_dir: {}\nlisten: 127.0.0.1:0\n\
             nomad: {{ address: {} }}\nha: {{ lock: nomad-variable, path: drover/leader, ttl: 10s, lock_delay: 2s }}\n",
            env.repo.display(),
            drover::source::SEED_BRANCH,
            dir.join("data").display(),
            env.devstack.nomad_url()
        ),
    )
    .unwrap();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_drover"))
            .args(["serve", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("drover serve starts"),
    );
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut lines = std::io::BufReader::new(stdout).lines();
        if let Some(addr) = lines.by_ref().map_while(Result::ok).find_map(|l| {
            l.split("status page on http://")
                .nth(1)
                .map(|u| u.trim().trim_end_matches('/').to_string())
        }) {
            let _ = tx.send(addr);
        }
        lines.for_each(drop);
    });
    (child, rx)
}

async fn lock_holder(env: &TestEnv) -> serde_json::Value {
    env.http
        .get(format!("{}/v1/var/drover/leader", env.devstack.nomad_url()))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_and_the_follower_takes_over_after_ttl_and_lock_delay() {
    // Real time: drover's renew period is derived from the TTL it asked for, so the devstack must
    // not scale the TTL down.
    let env = TestEnv::with_config(drover_devstack::DevstackConfig {
        time_scale: 1.0,
        ..drover_devstack::DevstackConfig::default()
    })
    .await;
    let dirs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dirs.path().join("a")).unwrap();
    std::fs::create_dir_all(dirs.path().join("b")).unwrap();
    let (mut first, first_addr) = serve(&env, &dirs.path().join("a"));
    let first_addr = tokio::time::timeout(Duration::from_secs(60), first_addr)
        .await
        .expect("the first drover leads")
        .unwrap();
    let (_second, mut second_addr) = serve(&env, &dirs.path().join("b"));

    // The lock names the first as holder; the second keeps waiting while the first renews.
    let var = lock_holder(&env).await;
    assert_eq!(var["Items"]["holder"], first_addr.as_str(), "{var}");
    let still_following = tokio::time::timeout(Duration::from_secs(12), &mut second_addr).await;
    assert!(still_following.is_err(), "two leaders: {still_following:?}");
    assert_eq!(
        lock_holder(&env).await["Items"]["holder"],
        first_addr.as_str()
    );

    // SIGKILL: no release, so the follower waits for the TTL (10 s) and the lock delay (2 s).
    let killed = tokio::time::Instant::now();
    first.0.kill().unwrap();
    let second = tokio::time::timeout(Duration::from_secs(30), second_addr)
        .await
        .expect("the follower takes over within TTL + lock delay + a margin")
        .unwrap();
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(25), "failover took {took:?}");
    assert_eq!(lock_holder(&env).await["Items"]["holder"], second.as_str());
}
