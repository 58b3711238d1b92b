//! `GET /metrics`: the exposition parsed and checked against known events: syncs, a drift
//! healed, the Nomad and Consul requests the devstack itself logged, a failed Git fetch, app
//! state without stale series, and the read guard of `web.private`.

mod common;

use std::collections::BTreeMap;

use common::{TEST_API_TOKEN, TestEnv, WAIT, app_yaml, web_jobspec};
use reqwest::Method;

/// One scrape: the sample lines as `name{labels}` → value.
#[derive(Debug)]
struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    /// Parse the OpenMetrics text: comments (`# HELP`, `# TYPE`, `# UNIT`, `# EOF`) skipped,
    /// each other line `series value`.
    fn parse(text: &str) -> Scrape {
        assert!(
            text.ends_with("# EOF\n"),
            "an OpenMetrics exposition ends with # EOF"
        );
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .map(|line| {
                let (series, value) = line
                    .rsplit_once(' ')
                    .unwrap_or_else(|| panic!("a sample line: {line:?}"));
                let value = value
                    .parse()
                    .unwrap_or_else(|e| panic!("value of {line:?}: {e}"));
                (series.to_string(), value)
            })
            .collect();
        Scrape(samples)
    }

    fn get(&self, series: &str) -> Option<f64> {
        self.0.get(series).copied()
    }

    /// The sum of every sample of `name` whose labels include each of `labels` (`k="v"`).
    fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.0
            .iter()
            .filter(|(series, _)| {
                let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
                metric == name && labels.iter().all(|l| rest.contains(l))
            })
            .map(|(_, value)| value)
            .sum()
    }
}

/// GET /metrics with the test token.
async fn scrape(env: &TestEnv) -> Scrape {
    let response = env
        .http
        .get(format!("{}/metrics", env.drover_url()))
        .bearer_auth(TEST_API_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET /metrics: {e}"));
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}"
    );
    Scrape::parse(&response.text().await.unwrap_or_default())
}

/// A drover that synced `names`, each app one job (`extra` appended to each app.yaml).
async fn env_with_apps(names: &[&str], extra: &str) -> TestEnv {
    let mut env = TestEnv::new().await;
    for name in names {
        env.write(&format!("apps/{name}/app.yaml"), &app_yaml(name, extra));
        env.write(
            &format!("apps/{name}/job.nomad.hcl"),
            &web_jobspec(name, "nginx:1.27"),
        );
    }
    let revision = env.commit("apps");
    env.start_drover().await;
    for name in names {
        env.wait_synced_healthy(name, Some(&revision)).await;
    }
    env
}

#[tokio::test]
async fn each_synced_app_counts_one_succeeded_sync_and_shows_its_state() {
    let names = ["alpha", "beta", "gamma"];
    let env = env_with_apps(&names, "").await;
    let found = scrape(&env).await;
    for name in names {
        let app = format!("app=\"{name}\"");
        assert_eq!(
            found.get(&format!(
                "drover_syncs_total{{app=\"{name}\",result=\"succeeded\"}}"
            )),
            Some(1.0),
            "{found:?}"
        );
        assert_eq!(found.sum("drover_syncs_total", &[&app]), 1.0, "{found:?}");
        assert_eq!(
            found.get(&format!(
                "drover_sync_duration_seconds_count{{app=\"{name}\"}}"
            )),
            Some(1.0)
        );
        assert_eq!(
            found.get(&format!(
                "drover_app_sync_state{{app=\"{name}\",state=\"synced\"}}"
            )),
            Some(1.0)
        );
        assert_eq!(found.sum("drover_app_sync_state", &[&app]), 1.0);
        assert_eq!(
            found.get(&format!(
                "drover_app_health_state{{app=\"{name}\",state=\"healthy\"}}"
            )),
            Some(1.0)
        );
        assert_eq!(found.sum("drover_app_health_state", &[&app]), 1.0);
    }
    assert_eq!(found.sum("drover_syncs_total", &[]), 3.0);
    assert_eq!(found.sum("drover_drift_detected_total", &[]), 0.0);
    env.shutdown().await;
}

#[tokio::test]
async fn a_drift_made_through_the_cluster_api_and_healed_counts_once_each() {
    let mut env = TestEnv::new().await;
    env.sync_web_app("sync: { self_heal: true }\n").await;
    let before = scrape(&env).await;
    assert_eq!(before.sum("drover_drift_detected_total", &[]), 0.0);
    assert_eq!(before.sum("drover_drift_healed_total", &[]), 0.0);

    // `nomad job stop web`, behind drover's back.
    let (code, _) = env.nomad_send(Method::DELETE, "/v1/job/web", None).await;
    assert_eq!(code, 200);
    env.wait_job("web", "stop undone", |j| {
        j.is_some_and(|j| j["Stop"] == false)
    })
    .await;
    env.wait_synced_healthy("web", None).await;
    // A further cycle on the healed job must not count the drift again.
    env.wait_full_cycle("web").await;
    let after = scrape(&env).await;
    assert_eq!(
        after.get(r#"drover_drift_detected_total{app="web"}"#),
        Some(1.0),
        "{after:?}"
    );
    assert_eq!(
        after.get(r#"drover_drift_healed_total{app="web"}"#),
        Some(1.0),
        "{after:?}"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn a_drift_left_alone_counts_once_however_many_cycles_it_lasts() {
    let mut env = TestEnv::new().await;
    env.sync_web_app("sync: { self_heal: false }\n").await;
    let (code, _) = env.nomad_send(Method::DELETE, "/v1/job/web", None).await;
    assert_eq!(code, 200);
    env.wait_app("web", "OutOfSync", |s| {
        s.sync == drover::controller::SyncStatus::OutOfSync
    })
    .await;
    // Two more full cycles that each plan the same drift again.
    env.wait_full_cycle("web").await;
    env.wait_full_cycle("web").await;
    let found = scrape(&env).await;
    assert_eq!(
        found.get(r#"drover_drift_detected_total{app="web"}"#),
        Some(1.0),
        "{found:?}"
    );
    assert_eq!(
        found.sum("drover_drift_healed_total", &[]),
        0.0,
        "{found:?}"
    );
    assert_eq!(
        found.get(r#"drover_app_sync_state{app="web",state="out_of_sync"}"#),
        Some(1.0)
    );
    env.shutdown().await;
}

/// The requests the devstack logged for `system` (`nomad`, `consul`), by status code.
async fn logged_by_code(env: &TestEnv, system: &str, base: &str) -> BTreeMap<String, f64> {
    let log: serde_json::Value = env
        .http
        .get(format!("{base}/_devstack/requests?system={system}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("request log: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("request log: {e}"));
    let entries = log.get("entries").cloned().unwrap_or(log);
    let mut counts = BTreeMap::new();
    for entry in entries.as_array().into_iter().flatten() {
        let code = entry["Status"].to_string();
        *counts.entry(code).or_default() += 1.0;
    }
    counts
}

/// drover's own count of its requests to `system`, by status code.
fn counted_by_code(found: &Scrape, system: &str) -> BTreeMap<String, f64> {
    let prefix = format!("drover_api_requests_total{{system=\"{system}\",code=\"");
    found
        .0
        .iter()
        .filter_map(|(series, value)| {
            let code = series.strip_prefix(&prefix)?.strip_suffix("\"}")?;
            Some((code.to_string(), *value))
        })
        .collect()
}

#[tokio::test]
async fn the_request_counters_equal_the_devstacks_own_request_log() {
    // Only drover talks to this devstack's Nomad and Consul (the test reads nothing there but
    // the control API, which is not logged), so both count the same requests since the start.
    let env = env_with_apps(&["alpha", "beta"], "").await;
    let systems = [
        ("nomad", env.devstack.nomad_url()),
        ("consul", env.devstack.consul_url()),
        ("vault", env.devstack.vault_url()),
    ];
    // A request in flight between the two reads (a blocking query answering) would make them
    // differ for a moment: compare when a scrape before and after the log reads agree.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let first = scrape(&env).await;
        let mut logged = Vec::new();
        for (system, url) in &systems {
            logged.push(logged_by_code(&env, system, url).await);
        }
        let second = scrape(&env).await;
        let steady = systems
            .iter()
            .all(|(system, _)| counted_by_code(&first, system) == counted_by_code(&second, system));
        if steady || tokio::time::Instant::now() > deadline {
            assert!(!logged[0].is_empty(), "drover sent Nomad requests");
            for ((system, _), logged) in systems.iter().zip(logged) {
                assert_eq!(
                    counted_by_code(&second, system),
                    logged,
                    "{system}, by status code"
                );
            }
            break;
        }
    }
    env.shutdown().await;
}

#[tokio::test]
async fn the_s3_request_counter_equals_the_s3_servers_own_log() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (user, password) = ("metrics-user", "metrics-password-1");
    let server = drover_devstack::s3::S3Server::start(
        "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        dir.path(),
        user,
        password,
    )
    .await
    .unwrap_or_else(|e| panic!("s3s-fs: {e}"));
    let mut env = TestEnv::new().await;
    env.write(
        "apps/media/app.yaml",
        "name: media\nresources:\n  - bucket: { name: media-files }\n",
    );
    env.commit("media: one bucket");
    let mut settings = env.settings();
    settings.s3 = Some(drover::providers::s3::S3Config {
        endpoint: Some(server.url()),
        credentials: Some(drover::providers::s3::StaticCredentials::new(
            user, password,
        )),
        max_retries: 1,
        request_timeout: std::time::Duration::from_secs(5),
        ..drover::providers::s3::S3Config::default()
    });
    env.start_drover_with(settings).await;
    env.wait_synced_healthy("media", None).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let first = scrape(&env).await;
        let mut logged: BTreeMap<String, f64> = BTreeMap::new();
        for request in server.requests() {
            *logged.entry(request.status.to_string()).or_default() += 1.0;
        }
        let second = scrape(&env).await;
        let counted = counted_by_code(&second, "s3");
        if counted_by_code(&first, "s3") == counted || tokio::time::Instant::now() > deadline {
            assert!(!logged.is_empty(), "drover sent S3 requests");
            assert_eq!(counted, logged, "s3, by status code");
            break;
        }
    }
    env.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_failed_fetch_moves_the_failure_counter_and_not_the_success_time() {
    let env = env_with_apps(&["alpha"], "").await;
    let healthy = scrape(&env).await;
    assert_eq!(healthy.get("drover_git_fetch_failures_total"), Some(0.0));
    let first_success = healthy
        .get("drover_git_last_successful_fetch_timestamp_seconds")
        .unwrap_or_default();
    assert!(first_success > 0.0, "{healthy:?}");
    assert!(healthy.get("drover_git_fetch_duration_seconds_count") >= Some(1.0));

    // The remote disappears.
    let moved = env.repo.with_extension("moved");
    std::fs::rename(&env.repo, &moved).unwrap_or_else(|e| panic!("{e}"));
    let mut source = env
        .drover
        .as_ref()
        .map(|d| d.source.subscribe())
        .unwrap_or_else(|| panic!("running"));
    let failures_seen = |want: u32| {
        let mut rx = source.clone();
        async move {
            tokio::time::timeout(WAIT, rx.wait_for(|s| s.consecutive_failures >= want))
                .await
                .unwrap_or_else(|_| panic!("{want} failed fetches never reported"))
                .map(|s| s.consecutive_failures)
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    let failing = failures_seen(1).await;
    let during = scrape(&env).await;
    // One more failure, with no success in between (a success resets the count).
    failures_seen(failing + 1).await;
    let later = scrape(&env).await;
    let failures = |s: &Scrape| s.get("drover_git_fetch_failures_total").unwrap_or_default();
    let success = |s: &Scrape| s.get("drover_git_last_successful_fetch_timestamp_seconds");
    assert!(failures(&during) >= 1.0, "{during:?}");
    assert!(failures(&later) > failures(&during), "{later:?}");
    assert_eq!(
        success(&later),
        success(&during),
        "no success while failing"
    );
    assert!(source.borrow_and_update().last_error.is_some());
    std::fs::rename(&moved, &env.repo).unwrap_or_else(|e| panic!("{e}"));
    env.shutdown().await;
}

#[tokio::test]
async fn an_app_removed_from_git_leaves_no_series_behind() {
    // One app of three leaves: within the prune guard's share, so it is pruned and forgotten.
    let env = env_with_apps(&["alpha", "beta", "gamma"], "sync: { prune: true }\n").await;
    let before = scrape(&env).await;
    assert_eq!(before.sum("drover_app_sync_state", &["app=\"beta\""]), 1.0);

    env.remove("apps/beta");
    let revision = env.commit("beta leaves");
    env.wait_fetched(&revision).await;
    let mut statuses = env
        .drover
        .as_ref()
        .map(|d| d.ctx.statuses.subscribe())
        .unwrap_or_else(|| panic!("running"));
    tokio::time::timeout(WAIT, statuses.wait_for(|all| !all.contains_key("beta")))
        .await
        .unwrap_or_else(|_| panic!("beta's status never went"))
        .unwrap_or_else(|e| panic!("{e}"));
    let after = scrape(&env).await;
    for metric in ["drover_app_sync_state", "drover_app_health_state"] {
        assert_eq!(after.sum(metric, &["app=\"beta\""]), 0.0, "{after:?}");
        assert!(
            !after
                .0
                .keys()
                .any(|s| s.starts_with(metric) && s.contains("app=\"beta\"")),
            "{after:?}"
        );
        assert_eq!(after.sum(metric, &["app=\"alpha\""]), 1.0, "{after:?}");
    }
    env.shutdown().await;
}

#[tokio::test]
async fn a_private_drover_refuses_an_unauthenticated_scrape() {
    let mut env = TestEnv::new().await;
    let mut settings = env.settings();
    settings.web.private = true;
    env.start_drover_with(settings).await;
    let url = format!("{}/metrics", env.drover_url());
    let anonymous = env
        .http
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(anonymous.status().as_u16(), 401);
    let body = anonymous.text().await.unwrap_or_default();
    assert!(!body.contains("drover_"), "{body}");
    let wrong = env
        .http
        .get(&url)
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(wrong.status().as_u16(), 401);
    // Prometheus' `authorization: { credentials: ... }` sends the bearer token.
    let found = scrape(&env).await;
    assert!(
        found.get("drover_git_fetch_failures_total").is_some(),
        "{found:?}"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn an_open_drover_serves_metrics_without_a_token() {
    let mut env = TestEnv::new().await;
    env.start_drover().await;
    let response = env
        .http
        .get(format!("{}/metrics", env.drover_url()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.unwrap_or_default();
    // A family with no samples yet (no sync so far) is left out; a plain metric is there.
    assert!(text.contains("# HELP drover_git_fetch_failures "), "{text}");
    env.shutdown().await;
}

#[tokio::test]
async fn a_request_that_gets_no_answer_is_counted_as_an_error_once_per_attempt() {
    drover::providers::install_crypto_provider();
    // A port nothing listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("{e}"));
    let statuses = tokio::sync::watch::Sender::new(BTreeMap::new());
    let metrics = drover::telemetry::Metrics::new(statuses.subscribe());
    let nomad = drover::providers::nomad::NomadClient::new(drover::providers::nomad::NomadConfig {
        address: format!("http://{closed}"),
        max_retries: 2,
        request_timeout: std::time::Duration::from_secs(2),
        ..drover::providers::nomad::NomadConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
    .counting_requests(metrics.requests(drover::telemetry::metrics::ApiSystem::Nomad));
    let read = nomad.read_job("default", "web").await;
    assert!(read.is_err(), "{read:?}");
    let found = Scrape::parse(&metrics.encode().unwrap_or_else(|e| panic!("{e}")));
    // The first attempt and two retries (a refused connection is transient).
    assert_eq!(
        counted_by_code(&found, "nomad"),
        BTreeMap::from([("error".to_string(), 3.0)]),
        "{found:?}"
    );
}

#[tokio::test]
async fn a_commit_runs_a_cycle_only_in_the_apps_whose_files_it_changed() {
    let mut env = TestEnv::new().await;
    for name in ["web", "api"] {
        env.write(&format!("apps/{name}/app.yaml"), &app_yaml(name, ""));
        env.write(
            &format!("apps/{name}/job.nomad.hcl"),
            &web_jobspec(name, "nginx:1.27"),
        );
    }
    let first = env.commit("apps");
    // No resync inside the test: every cycle counted below was woken by the commits.
    let mut settings = env.settings();
    settings.controller.resync_interval = std::time::Duration::from_secs(3600);
    env.start_drover_with(settings).await;
    for name in ["web", "api"] {
        env.wait_synced_healthy(name, Some(&first)).await;
    }
    let cycles = |found: &Scrape, app: &str| {
        found
            .get(&format!("drover_reconciles_total{{app=\"{app}\"}}"))
            .unwrap_or_else(|| panic!("no reconcile counted for {app}: {found:?}"))
    };
    let before = scrape(&env).await;

    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.28"));
    let second = env.commit("web: nginx 1.28");
    env.wait_synced_healthy("web", Some(&second)).await;
    let api = env
        .wait_app("api", "at the new commit", |s| s.revision == second)
        .await;
    assert_eq!(api.sync, drover::controller::SyncStatus::Synced, "{api:#?}");
    let after = scrape(&env).await;
    assert!(
        cycles(&after, "web") > cycles(&before, "web"),
        "the changed app ran a cycle: {after:?}"
    );
    assert_eq!(
        cycles(&after, "api"),
        cycles(&before, "api"),
        "api's files did not change: it reports the commit without a cycle"
    );

    // Its own change still runs it.
    env.write("apps/api/job.nomad.hcl", &web_jobspec("api", "nginx:1.28"));
    let third = env.commit("api: nginx 1.28");
    env.wait_synced_healthy("api", Some(&third)).await;
    assert!(cycles(&scrape(&env).await, "api") > cycles(&after, "api"));
    env.shutdown().await;
}
