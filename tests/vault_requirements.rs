//! Vault secret requirements are a preflight: a job whose template reads a key Vault lacks (or
//! whose path is listed as a `vault_secret` with a key Vault lacks) is not registered, with a
//! message naming path and key, while the app's other job registers; once the key is seeded the
//! job registers at the next cycle without a commit. No secret value reaches logs, API or page.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use common::{TestEnv, web_jobspec};
use drover::health::Health;
use serde_json::json;

/// A value seeded into Vault that must never be shown anywhere.
const SEEDED_VALUE: &str = "s3cr3t-Vault-VALUE-7f1c";

/// Every log line drover writes in this test binary, at every level.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        logs
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The web jobspec with a template reading `DB_PASSWORD` from `nomad/data/default/media`.
fn jobspec_reading_secret(id: &str) -> String {
    web_jobspec(id, "nginx:1.27").replace(
        "      resources {",
        "      template {\n        data        = \"{{ with secret \\\"nomad/data/default/media\\\" }}PW={{ .Data.data.DB_PASSWORD }}{{ end }}\"\n        destination = \"secrets/db.env\"\n        env         = true\n      }\n\n      resources {",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_vault_key_blocks_only_its_job_until_it_is_seeded() {
    let logs = captured_logs();
    let mut env = TestEnv::new().await;
    // The secret exists with the listed API_KEY only: DB_PASSWORD (read by the template) and
    // LISTED_KEY (only listed in app.yaml) are missing.
    env.control(
        "/vault/secret",
        json!({"mount": "nomad", "path": "default/media", "data": {"API_KEY": SEEDED_VALUE}}),
    )
    .await;
    env.write("apps/media/web.nomad.hcl", &jobspec_reading_secret("web"));
    env.write(
        "apps/media/other.nomad.hcl",
        &web_jobspec("other", "nginx:1.27"),
    );
    env.write(
        "apps/media/app.yaml",
        "name: media\nresources:\n  - nomad_job: { file: web.nomad.hcl }\n  - nomad_job: { file: other.nomad.hcl }\n  - vault_secret: { mount: nomad, path: default/media, keys: [API_KEY, LISTED_KEY] }\n",
    );
    env.commit("media");
    env.start_drover().await;

    let expected = "Vault secret nomad/default/media lacks keys DB_PASSWORD, LISTED_KEY";
    let status = env
        .wait_app("media", "blocked on Vault", |s| {
            s.resources
                .iter()
                .any(|r| r.id == "nomad_job/default/web" && r.message.contains(expected))
        })
        .await;
    let secret = status
        .resources
        .iter()
        .find(|r| r.id == "vault_secret/nomad/default/media")
        .unwrap_or_else(|| panic!("no vault_secret resource: {status:#?}"));
    assert_eq!(secret.health, Health::Missing, "{secret:#?}");
    assert!(secret.message.contains(expected), "{secret:#?}");
    assert!(
        status.errors.iter().any(|e| e.contains(expected)),
        "{:#?}",
        status.errors
    );
    // The other job of the same app registers; the blocked one does not.
    env.wait_job("other", "registered", |j| j.is_some()).await;
    assert!(
        env.job("web").await.is_none(),
        "web registered despite the preflight"
    );

    // Seed the keys through Vault's own API (a new KV v2 version); no commit follows.
    let vault = reqwest::Client::new();
    let answer = vault
        .post(format!(
            "{}/v1/nomad/data/default/media",
            env.devstack.vault_url()
        ))
        .header("X-Vault-Token", env.devstack.root_token())
        .json(&json!({"data": {
            "API_KEY": SEEDED_VALUE,
            "DB_PASSWORD": SEEDED_VALUE,
            "LISTED_KEY": SEEDED_VALUE,
        }}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("vault write: {e}"));
    assert!(
        answer.status().is_success(),
        "vault write: {}",
        answer.status()
    );
    env.wait_job("web", "registered after the keys were seeded", |j| {
        j.is_some()
    })
    .await;
    let status = env
        .wait_app("media", "the secret holds", |s| {
            s.resources
                .iter()
                .any(|r| r.id == "vault_secret/nomad/default/media" && r.health == Health::Healthy)
        })
        .await;
    assert!(
        !status.errors.iter().any(|e| e.contains("Vault secret")),
        "{:#?}",
        status.errors
    );

    // The mount is resolved once; each cycle then costs one read per requirement.
    let vault_log: serde_json::Value = env
        .http
        .get(format!(
            "{}/_devstack/requests?system=vault",
            env.devstack.nomad_url()
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("request log: {e}"))
        .json()
        .await
        .unwrap_or_default();
    let entries = vault_log.get("entries").cloned().unwrap_or(vault_log);
    let paths: Vec<&str> = entries
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["Path"].as_str())
        .collect();
    let mount_lookups = paths
        .iter()
        .filter(|p| p.starts_with("/v1/sys/internal/ui/mounts/"))
        .count();
    assert_eq!(mount_lookups, 1, "{paths:?}");
    assert!(paths.contains(&"/v1/nomad/data/default/media"), "{paths:?}");

    // No value anywhere: the API, the page, the events and every log line.
    let base = env.drover_url();
    for path in ["/api/apps", "/api/apps/media", "/api/events", "/"] {
        let body = env
            .http
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .text()
            .await
            .unwrap_or_default();
        assert!(!body.is_empty(), "{path} answered nothing");
        assert!(
            !body.contains(SEEDED_VALUE),
            "{path} shows the secret value"
        );
    }
    let log_text =
        String::from_utf8_lossy(&logs.lock().unwrap_or_else(|p| p.into_inner())).to_string();
    assert!(
        log_text.contains("vault") || log_text.contains("media"),
        "logs were captured"
    );
    assert!(
        !log_text.contains(SEEDED_VALUE),
        "a log line shows the secret value"
    );
    env.shutdown().await;
}
