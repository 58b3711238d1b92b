//! ops/ stays valid: drover's own jobspec parses with Nomad's rules, the example drover.yaml
//! loads, the alert rules and the dashboard parse and use only metrics drover serves, and every
//! drover command in the runbooks exists with the flags used.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use common::{TEST_API_TOKEN, TestEnv, app_yaml, web_jobspec};
use drover::controller::{AppStatus, Phase, ProbeKind, ProbeStatus};
use drover::health::Health;
use serde_json::Value;

fn ops(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ops").join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(ops(path)).unwrap_or_else(|e| panic!("ops/{path}: {e}"))
}

#[test]
fn drovers_own_jobspec_parses_with_nomads_rules() {
    let job = drover_jobspec::parse(&read("nomad/drover.nomad.hcl"), "")
        .unwrap_or_else(|e| panic!("ops/nomad/drover.nomad.hcl: {}", e.message));
    let group = &job["TaskGroups"][0];
    assert_eq!(
        group["Count"], 1,
        "one drover at a time (single-writer SQLite)"
    );
    let service = &group["Services"][0];
    assert_eq!(service["Name"], "drover");
    assert_eq!(service["Checks"][0]["Path"], "/healthz");
    assert!(
        service["Tags"].as_array().into_iter().flatten().any(|t| t
            .as_str()
            .is_some_and(|t| t.starts_with("traefik.http.routers.drover.rule="))),
        "a Traefik route: {service}"
    );
    let task = group["Tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["Name"] == "drover")
        .unwrap_or_else(|| panic!("no drover task: {group}"));
    assert_eq!(task["Vault"]["Role"], "drover");
    assert_eq!(task["Env"]["VAULT_JWT_ROLE"], "drover-controller");
    assert!(
        task["Env"]["VAULT_JWT_FILE"]
            .as_str()
            .is_some_and(|f| f.ends_with("nomad_vault_drover.jwt")),
        "the JWT file Nomad writes for identity vault_drover: {}",
        task["Env"]
    );
    // The drover.yaml its template renders is one drover reads (every key known).
    let config = task["Templates"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["DestPath"] == "local/drover.yaml")
        .and_then(|t| t["EmbeddedTmpl"].as_str())
        .unwrap_or_else(|| panic!("no local/drover.yaml template: {task}"));
    let file: drover::config::FileSettings = serde_yaml_ng::from_str(config)
        .unwrap_or_else(|e| panic!("the job's drover.yaml: {e}\n{config}"));
    assert_eq!(file.data_dir, Some(PathBuf::from("/var/lib/drover")));
    assert!(
        task["VolumeMounts"][0]["Destination"] == "/var/lib/drover",
        "the store on the volume: {}",
        task["VolumeMounts"]
    );
}

#[test]
fn the_example_drover_yaml_loads() {
    let text = read("drover.yaml");
    // The files it names are the operator's; stand in for them so every key is resolved.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let secrets = dir.path().display().to_string();
    for name in [
        "git-token",
        "nomad-token",
        "webhook-secret",
        "api-token",
        "ops-hook-url",
    ] {
        let value = if name == "ops-hook-url" {
            "https://hooks.example.org/drover"
        } else {
            "x"
        };
        std::fs::write(dir.path().join(name), value).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(dir.path().join("homelab-ca.pem"), "").unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("drover.yaml");
    std::fs::write(&path, text.replace("/etc/drover", &secrets)).unwrap_or_else(|e| panic!("{e}"));
    let settings =
        drover::config::Settings::load(&path).unwrap_or_else(|e| panic!("ops/drover.yaml: {e}"));
    assert_eq!(settings.source.reference, "main");
    assert_eq!(settings.data_dir, PathBuf::from("/var/lib/drover"));
    assert_eq!(settings.controller.concurrency, 16);
    assert!(settings.web.api_token.is_some());
}

/// The alert rules: each has a name, an expression and a hold.
fn rules() -> Vec<serde_yaml_ng::Value> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read("prometheus/drover.rules.yml"))
        .unwrap_or_else(|e| panic!("ops/prometheus/drover.rules.yml: {e}"));
    doc["groups"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_sequence().cloned().unwrap_or_default())
        .collect()
}

fn rule_exprs() -> Vec<(String, String)> {
    rules()
        .iter()
        .map(|r| {
            (
                r["alert"].as_str().unwrap_or_default().to_string(),
                r["expr"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn dashboard_exprs() -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_str(&read("grafana/drover.json"))
        .unwrap_or_else(|e| panic!("ops/grafana/drover.json: {e}"));
    dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            p["targets"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |t| {
                    (
                        title.clone(),
                        t["expr"].as_str().unwrap_or_default().to_string(),
                    )
                })
        })
        .collect()
}

/// Loose PromQL syntax: not empty, brackets balanced and properly nested, quotes closed.
fn check_promql(expr: &str) -> Result<(), String> {
    if expr.trim().is_empty() {
        return Err("empty expression".into());
    }
    let mut stack = Vec::new();
    let mut quoted = false;
    for c in expr.chars() {
        match c {
            '"' => quoted = !quoted,
            _ if quoted => {}
            '(' | '{' | '[' => stack.push(c),
            ')' | '}' | ']' => {
                let open = stack.pop();
                let expected = match c {
                    ')' => '(',
                    '}' => '{',
                    _ => '[',
                };
                if open != Some(expected) {
                    return Err(format!("unbalanced {c:?} in {expr:?}"));
                }
            }
            _ => {}
        }
    }
    if quoted || !stack.is_empty() {
        return Err(format!("unclosed quote or bracket in {expr:?}"));
    }
    Ok(())
}

#[test]
fn the_alert_rules_parse_and_cover_what_operators_need() {
    let rules = rules();
    let names: BTreeSet<&str> = rules.iter().filter_map(|r| r["alert"].as_str()).collect();
    for wanted in [
        "DroverDown",
        "DroverSyncFailing",
        "DroverDriftUnresolved",
        "DroverAppDegraded",
        "DroverCertificateExpiresSoon",
        "DroverBackupStale",
    ] {
        assert!(names.contains(wanted), "no {wanted} rule in {names:?}");
    }
    for rule in &rules {
        let name = rule["alert"].as_str().unwrap_or_default();
        assert!(
            rule["for"].as_str().is_some(),
            "{name}: a hold (`for:`) so one blip does not page"
        );
        if let Err(e) = check_promql(rule["expr"].as_str().unwrap_or_default()) {
            panic!("{name}: {e}");
        }
    }
    let drift = rules
        .iter()
        .find(|r| r["alert"] == "DroverDriftUnresolved")
        .unwrap_or_else(|| panic!("drift rule"));
    assert_eq!(drift["for"], "15m");
    // promtool, when the environment names one (too slow to build in `.ci/run`: see README).
    if let Some(promtool) = std::env::var_os("DROVER_TEST_PROMTOOL") {
        let output = std::process::Command::new(promtool)
            .args(["check", "rules"])
            .arg(ops("prometheus/drover.rules.yml"))
            .output()
            .unwrap_or_else(|e| panic!("promtool: {e}"));
        assert!(
            output.status.success(),
            "promtool check rules:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn every_dashboard_panel_has_a_valid_query() {
    let exprs = dashboard_exprs();
    assert!(exprs.len() >= 10, "{exprs:?}");
    for (panel, expr) in exprs {
        if let Err(e) = check_promql(&expr) {
            panic!("panel {panel}: {e}");
        }
    }
}

/// Metric names an OpenMetrics exposition holds: each sample's name, and each `# TYPE` family
/// with the sample names its type gives it.
fn exposed_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_sum", "_count", "_created"],
                _ => &[""],
            };
            for suffix in suffixes {
                names.insert(format!("{name}{suffix}"));
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    names
}

/// `drover_*` names used in an expression.
fn used_names(expr: &str) -> BTreeSet<String> {
    let pattern = regex::Regex::new(r"\bdrover_[a-z_]+\b").unwrap_or_else(|e| panic!("{e}"));
    pattern
        .find_iter(expr)
        .map(|m| m.as_str().to_string())
        .collect()
}

#[tokio::test]
async fn every_metric_in_the_rules_and_dashboard_is_one_drover_serves() {
    // A running drover with a synced app: its /metrics.
    let mut env = TestEnv::new().await;
    env.write("apps/web/app.yaml", &app_yaml("web", ""));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    let revision = env.commit("web");
    env.start_drover().await;
    env.wait_synced_healthy("web", Some(&revision)).await;
    let scraped = env
        .http
        .get(format!("{}/metrics", env.drover_url()))
        .bearer_auth(TEST_API_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET /metrics: {e}"))
        .text()
        .await
        .unwrap_or_default();
    env.shutdown().await;
    let mut served = exposed_names(&scraped);
    // A family appears only once it has a series: probe gauges once a probe of that kind has a
    // result (a TLS certificate, an S3 listing), drift and alert counters once one happened. The
    // same encoder, fed one of each.
    let (tx, rx) = tokio::sync::watch::channel(std::collections::BTreeMap::new());
    let metrics = drover::telemetry::metrics::Metrics::new(rx);
    let probe = |name: &str, kind| ProbeStatus {
        name: name.into(),
        kind,
        target: name.into(),
        health: Health::Healthy,
        message: String::new(),
        latency_ms: Some(5),
        days_left: Some(40),
        age_seconds: Some(60),
        checked_at: Some(SystemTime::now()),
    };
    let mut status = AppStatus::unknown("web", "abc", Phase::Synced);
    status.probes = vec![
        probe("api", ProbeKind::Http),
        probe("cert", ProbeKind::Tls),
        probe("backup", ProbeKind::BackupFreshness),
    ];
    tx.send_modify(|all| {
        all.insert("web".to_string(), status);
    });
    metrics.drift_detected("web", 1);
    metrics.drift_healed("web");
    metrics.alert_delivered("ops", false);
    served.extend(exposed_names(
        &metrics.encode().unwrap_or_else(|e| panic!("{e}")),
    ));
    assert!(
        served.contains("drover_syncs_total") && served.contains("drover_probe_success"),
        "{served:?}"
    );

    let mut unknown = Vec::new();
    for (place, expr) in rule_exprs().into_iter().chain(dashboard_exprs()) {
        for name in used_names(&expr) {
            if !served.contains(&name) {
                unknown.push(format!("{place}: {name}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "metrics drover does not serve: {unknown:?}\nserved: {served:?}"
    );
}

#[tokio::test]
async fn every_drover_command_in_the_runbooks_exists_with_its_flags() {
    let fence = regex::Regex::new(r"(?s)```[a-z]*\n(.*?)```").unwrap_or_else(|e| panic!("{e}"));
    let mut commands = Vec::new();
    for entry in std::fs::read_dir(ops("runbooks")).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        for block in fence.captures_iter(&text) {
            for line in block[1].lines() {
                let line = line.trim().trim_start_matches("$ ");
                if let Some(rest) = line.strip_prefix("drover ") {
                    commands.push((path.display().to_string(), rest.to_string()));
                }
            }
        }
    }
    assert!(commands.len() >= 5, "{commands:?}");
    for (file, command) in commands {
        let words: Vec<&str> = command.split_whitespace().collect();
        // The subcommand path: leading words that are not flags or arguments (`import nomad`).
        let mut path = vec![words[0]];
        if words[0] == "import"
            && let Some(next) = words.get(1)
        {
            path.push(next);
        }
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_drover"))
            .args(&path)
            .arg("--help")
            .output()
            .await
            .unwrap_or_else(|e| panic!("drover {path:?} --help: {e}"));
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{file}: `drover {command}`: no such command"
        );
        for flag in words.iter().filter(|w| w.starts_with("--")) {
            let flag = flag.split('=').next().unwrap_or(flag);
            assert!(
                help.contains(flag),
                "{file}: `drover {command}`: {flag} is not a flag of drover {}",
                path.join(" ")
            );
        }
    }
}

#[tokio::test]
async fn drovers_own_job_passes_drover_validate_as_an_app() {
    // As an app of a desired-state repository (drover operating drover): Nomad's rules, the
    // Traefik lint and the Vault requirements its templates state.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let app = dir.path().join("apps/drover");
    std::fs::create_dir_all(&app).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(app.join("drover.nomad.hcl"), read("nomad/drover.nomad.hcl"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        app.join("app.yaml"),
        "name: drover\nresources:\n  - nomad_job: { file: drover.nomad.hcl }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_drover"))
        .arg("validate")
        .arg(dir.path())
        .arg("--verbose")
        .output()
        .await
        .unwrap_or_else(|e| panic!("drover validate: {e}"));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "drover validate:\n{text}");
    assert!(!text.contains("warning"), "drover validate warns:\n{text}");
    assert!(
        text.contains("vault secret kv/data/drover: keys api_token"),
        "the API token comes from Vault:\n{text}"
    );
}
