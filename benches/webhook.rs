//! `cargo bench --bench webhook`: how long a `git push` takes to reach the cluster when the Git
//! host sends a webhook. For each of 100 pushes (one app's image changed, a signed GitHub push
//! event posted to drover) it measures the time from the webhook's POST to the devstack applying
//! the register that creates the job's new version (seen in the devstack's request log, which
//! names the job and the version a write created). Goals (issue 15): p50 < 300 ms, p99 < 1 s.
//!
//! Pushes are spaced past drover's fetch spacing (one fetch per 500 ms however many triggers
//! arrive), as real pushes are; polling is off, so only the webhook can trigger a fetch.
//! `cargo test` runs a 5-push smoke that checks every push registers, without the goals.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mode.rs"]
mod mode;

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use common::{TestEnv, app_yaml, web_jobspec};
use drover_devstack::System;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;

const SECRET: &str = "bench-webhook-secret";
const APPS: usize = 10;
const PUSHES: usize = 100;
const SMOKE_PUSHES: usize = 5;
const SMOKE_NAME: &str = "webhook_bench_smoke";
/// Drover spaces fetches this far apart; a push waits for it to pass, like a real push would.
const FETCH_SPACING: Duration = Duration::from_millis(550);
/// Longest a push may take to register before the bench gives up on it.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);
const GOAL_P50: Duration = Duration::from_millis(300);
const GOAL_P99: Duration = Duration::from_secs(1);

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<sha2_for_hmac::Sha256>::new_from_slice(SECRET.as_bytes())
        .unwrap_or_else(|e| panic!("hmac key: {e}"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The `q`-quantile (nearest rank) of sorted samples.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

async fn run(pushes: usize) -> Result<Vec<Duration>, String> {
    let mut env = TestEnv::new().await;
    for i in 0..APPS {
        let app = format!("app{i}");
        env.write(&format!("apps/{app}/app.yaml"), &app_yaml(&app, ""));
        env.write(
            &format!("apps/{app}/job.nomad.hcl"),
            &web_jobspec(&app, "nginx:1.0"),
        );
    }
    let first = env.commit("ten apps");
    let mut settings = env.settings();
    // Only the webhook fetches.
    settings.source.poll_interval = Duration::from_secs(3600);
    settings.web.webhook_secret = Some(drover::telemetry::Redacted(SECRET.to_string()));
    env.start_drover_with(settings).await;
    env.wait_fetched(&first).await;
    for i in 0..APPS {
        env.wait_synced_healthy(&format!("app{i}"), Some(&first))
            .await;
    }
    let url = format!("{}/api/v1/webhooks/github", env.drover_url());
    let body = json!({
        "ref": "refs/heads/main",
        "repository": { "clone_url": env.repo.display().to_string() },
    })
    .to_string();
    let signature = sign(body.as_bytes());
    let mut latencies = Vec::with_capacity(pushes);
    let mut last_push = Instant::now();
    for n in 0..pushes {
        let app = format!("app{}", n % APPS);
        env.write(
            &format!("apps/{app}/job.nomad.hcl"),
            &web_jobspec(&app, &format!("nginx:1.{}", n + 1)),
        );
        env.commit(&format!("{app}: push {n}"));
        tokio::time::sleep(FETCH_SPACING.saturating_sub(last_push.elapsed())).await;
        let log = &env.devstack.state().requests;
        let mark = log.entries().last().map_or(0, |e| e.seq);
        let object = format!("job default/{app}");
        let started = Instant::now();
        last_push = started;
        let response = env
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header("x-hub-signature-256", &signature)
            .body(body.clone())
            .send()
            .await
            .map_err(|e| format!("push {n}: POST webhook: {e}"))?;
        if response.status().as_u16() != 202 {
            return Err(format!("push {n}: webhook answered {}", response.status()));
        }
        loop {
            let registered = log
                .entries_since(Some(System::Nomad), mark)
                .iter()
                .any(|e| e.object.as_deref() == Some(object.as_str()) && e.version.is_some());
            if registered {
                latencies.push(started.elapsed());
                break;
            }
            if started.elapsed() > PUSH_TIMEOUT {
                return Err(format!(
                    "push {n}: {app} not registered {PUSH_TIMEOUT:?} after the webhook"
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    env.shutdown().await;
    Ok(latencies)
}

fn main() -> ExitCode {
    let full = match mode::from_args(SMOKE_NAME) {
        mode::Mode::Full => true,
        mode::Mode::Smoke => false,
        mode::Mode::Done => return ExitCode::SUCCESS,
    };
    let pushes = if full { PUSHES } else { SMOKE_PUSHES };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = SystemTime::now();
    let mut latencies = match rt.block_on(run(pushes)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("webhook bench FAILED: {e}");
            return ExitCode::FAILURE;
        }
    };
    latencies.sort();
    let (p50, p90, p99) = (
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.9),
        quantile(&latencies, 0.99),
    );
    let max = latencies.last().copied().unwrap_or_default();
    println!(
        "webhook → registered over {pushes} pushes ({APPS} apps): p50 {p50:.0?}, p90 {p90:.0?}, \
         p99 {p99:.0?}, max {max:.0?} (run took {:.0?})",
        started.elapsed().unwrap_or_default()
    );
    if !full {
        println!("{SMOKE_NAME}: ok");
        return ExitCode::SUCCESS;
    }
    let mut failed = false;
    if p50 >= GOAL_P50 {
        println!("FAILED: p50 {p50:?} is not under the goal {GOAL_P50:?}");
        failed = true;
    }
    if p99 >= GOAL_P99 {
        println!("FAILED: p99 {p99:?} is not under the goal {GOAL_P99:?}");
        failed = true;
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
