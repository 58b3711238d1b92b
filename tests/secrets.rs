//! Secrets stay secret (DESIGN rule 6), end to end: recognisable values are seeded where a user
//! keeps them — the Nomad token, a Vault secret the job reads, a secret-looking `env` key written
//! literally in a jobspec, a token in the Git URL — and every log line, page, API answer, event,
//! history row, `drover plan` output and the store file drover writes is scanned for them.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{KillOnDrop, TestEnv, default_seed};
use drover_devstack::DevstackConfig;
use drover_devstack::seed::SeedVaultSecret;
use serde_json::{Value, json};

const NOMAD_TOKEN: &str = "0e2ad5a1-5ec2-4e7c-9d1a-70cafe5ec2e7";
const VAULT_VALUE: &str = "vault-value-c0ffee-5ecret";
const ENV_VALUE: &str = "hunter2-env-5ecret";
const DRIFT_VALUE: &str = "drifted-env-5ecret";
const URL_TOKEN: &str = "ghp_url70ken5ecret";

const SECRETS: [&str; 5] = [NOMAD_TOKEN, VAULT_VALUE, ENV_VALUE, DRIFT_VALUE, URL_TOKEN];

fn jobspec() -> String {
    format!(
        r#"job "app" {{
  datacenters = ["dc1"]
  group "app" {{
    task "server" {{
      driver = "docker"
      config {{
        image = "nginx:1.27"
      }}
      env {{
        DB_PASSWORD = "{ENV_VALUE}"
        LOG_LEVEL   = "info"
      }}
      template {{
        destination = "secrets/app.env"
        env         = true
        data        = <<EOT
{{{{ with secret "nomad/data/default/app" }}}}API_KEY={{{{ .Data.data.API_KEY }}}}{{{{ end }}}}
EOT
      }}
      resources {{
        cpu    = 100
        memory = 64
      }}
    }}
  }}
}}
"#
    )
}

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{what} contains the secret {secret:?}:\n{text}"
        );
    }
}

/// Run the binary and return (exit code, stdout + stderr).
async fn run(mut command: Command) -> (Option<i32>, String) {
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_pages_api_events_history_plan_or_the_store() {
    let mut seed = default_seed();
    seed.vault_secrets.push(SeedVaultSecret {
        mount: "nomad".into(),
        path: "default/app".into(),
        data: [("API_KEY".to_string(), json!(VAULT_VALUE))].into(),
    });
    let env = TestEnv::with_config(DevstackConfig {
        time_scale: 0.01,
        seed: Some(seed),
        nomad_acl: true,
        root_token: NOMAD_TOKEN.into(),
        ..DevstackConfig::default()
    })
    .await;
    env.write(
        "apps/app/app.yaml",
        "name: app\nsync: { self_heal: false }\nresources:\n  - vault_secret: { mount: nomad, path: default/app, keys: [API_KEY] }\n  - nomad_job: { file: job.nomad.hcl }\n",
    );
    env.write("apps/app/job.nomad.hcl", &jobspec());
    let rev = env.commit("app with secrets");

    // drover serve, as a user runs it: the token from the environment, logs on stderr.
    let work = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = work.path().join("drover.yaml");
    std::fs::write(
        &config,
        format!(
            "repo:\n  url: {}\n  poll_interval: 200ms\ndata_dir: {}\nlisten: 127.0.0.1:0\n\
             resync_interval: 1s\nprogress_interval: 200ms\n",
            env.repo.display(),
            work.path().join("data").display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let logs = work.path().join("drover.log");
    let log_file = std::fs::File::create(&logs).unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["serve", "-c"])
        .arg(&config)
        .env("NOMAD_ADDR", env.devstack.nomad_url())
        .env("NOMAD_TOKEN", NOMAD_TOKEN)
        // The Vault preflight reads the secret whose value must not show anywhere.
        .env("VAULT_ADDR", env.devstack.vault_url())
        .env("VAULT_TOKEN", NOMAD_TOKEN)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("stdout"));
    let killer = KillOnDrop(child);
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
    .ok()
    .flatten()
    .unwrap_or_else(|| panic!("serve printed no address"));
    let http = common::http_client();
    let get = |path: &str| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            http.get(&url)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"))
                .text()
                .await
                .unwrap_or_default()
        }
    };
    let wait_app = |want: &'static str| async move {
        let deadline = tokio::time::Instant::now() + common::WAIT;
        loop {
            let body = get("/api/v1/apps/app").await;
            let v: Value = serde_json::from_str(&body).unwrap_or_default();
            if v["sync"] == want && (want != "Synced" || v["health"] == "Healthy") {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "app never {want}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    wait_app("Synced").await;

    // Drift that touches the secret: someone edits DB_PASSWORD in Nomad (self_heal is off, so
    // drover shows the diff instead of healing it).
    let mut job = job_with_token(&env, "app", NOMAD_TOKEN).await;
    job["TaskGroups"][0]["Tasks"][0]["Env"]["DB_PASSWORD"] = json!(DRIFT_VALUE);
    job["TaskGroups"][0]["Tasks"][0]["Env"]["LOG_LEVEL"] = json!("debug");
    let r = http
        .post(format!("{}/v1/jobs", env.devstack.nomad_url()))
        .header("X-Nomad-Token", NOMAD_TOKEN)
        .json(&json!({ "Job": job }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.status().is_success());
    let app = wait_app("OutOfSync").await;
    assert!(
        app.contains("LOG_LEVEL"),
        "the diff is shown (only the secret is hidden): {app}"
    );

    for path in [
        "/",
        "/apps/app",
        "/api/v1/apps",
        "/api/v1/apps/app",
        "/api/v1/apps/app/history",
        "/api/v1/events",
        "/api/v1/source",
    ] {
        assert_clean(path, &get(path).await);
    }

    // drover plan, as the CLI prints it.
    let mut plan = Command::new(env!("CARGO_BIN_EXE_drover"));
    plan.arg("plan")
        .arg(&env.repo)
        .env("NOMAD_ADDR", env.devstack.nomad_url())
        .env("NOMAD_TOKEN", NOMAD_TOKEN);
    let (code, out) = run(plan).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("Env[LOG_LEVEL]"), "{out}");
    assert_clean("drover plan", &out);

    // A Git URL with a token: the fetch fails, and says so without the token.
    let mut bad = Command::new(env!("CARGO_BIN_EXE_drover"));
    bad.args(["plan", "--git"])
        .arg(format!("http://{URL_TOKEN}@127.0.0.1:9/infra.git"))
        .env("NOMAD_ADDR", env.devstack.nomad_url())
        .env("NOMAD_TOKEN", NOMAD_TOKEN);
    let (code, out) = run(bad).await;
    assert_eq!(code, Some(1), "{out}");
    assert_clean("drover plan --git", &out);

    drop(killer);
    let log_text = std::fs::read_to_string(&logs).unwrap_or_default();
    assert!(
        log_text.contains(&rev[..7]) || log_text.contains("new revision"),
        "logs were captured: {log_text}"
    );
    assert_clean("the log", &log_text);
    let store = std::fs::read(work.path().join("data/drover.db")).unwrap_or_default();
    assert_clean("drover.db", &String::from_utf8_lossy(&store));
    env.shutdown().await;
}

/// GET a job with a Nomad ACL token (the devstack enforces ACLs in this test).
async fn job_with_token(env: &TestEnv, id: &str, token: &str) -> Value {
    env.http
        .get(format!("{}/v1/job/{id}", env.devstack.nomad_url()))
        .header("X-Nomad-Token", token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}
