//! Vault secret requirements are a preflight: a job whose template reads a key Vault lacks (or
//! whose path is listed as a `vault_secret` with a key Vault lacks) is not registered, with a
//! message naming path and key, while the app's other job registers; once the key is seeded the
//! job registers at the next cycle without a commit. No secret value reaches logs, API or page.

mod common;

use common::logs::captured_logs;
use common::{TestEnv, web_jobspec};
use drover::health::Health;
use drover::providers::vault::{Missing, VaultClient, VaultConfig};
use serde_json::json;

/// A value seeded into Vault that must never be shown anywhere.
const SEEDED_VALUE: &str = "s3cr3t-Vault-VALUE-7f1c";

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
    for path in [
        "/api/v1/apps",
        "/api/v1/apps/media",
        "/api/v1/events",
        "/",
        "/apps/media",
    ] {
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

/// A call to the devstack's Vault API with the root token; returns the JSON answer (or Null).
async fn vault_call(
    devstack: &drover_devstack::Devstack,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut request = common::http_client()
        .request(method, format!("{}/v1/{path}", devstack.vault_url()))
        .header("X-Vault-Token", devstack.root_token());
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("vault {path}: {e}"));
    let status = answer.status();
    let text = answer.text().await.unwrap_or_default();
    assert!(status.is_success(), "vault {path}: {status}: {text}");
    serde_json::from_str(&text).unwrap_or_default()
}

fn client(devstack: &drover_devstack::Devstack, token: Option<&str>) -> VaultClient {
    VaultClient::new(VaultConfig {
        address: devstack.vault_url(),
        token: token.map(|t| drover::telemetry::Redacted(t.to_string())),
        max_retries: 0,
        ..VaultConfig::default()
    })
    .unwrap_or_else(|e| panic!("vault client: {e}"))
}

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|k| k.to_string()).collect()
}

#[tokio::test]
async fn check_requirement_reads_key_names_of_kv_v2_and_v1_and_a_deleted_version_is_missing() {
    use reqwest::Method;
    let devstack = common::fast_devstack().await;
    let vault = client(&devstack, Some(devstack.root_token()));
    vault_call(
        &devstack,
        Method::POST,
        "secret/data/app",
        Some(json!({"data": {"A": SEEDED_VALUE}})),
    )
    .await;
    // Both spellings a template may use; the missing key is named, the value never kept.
    let lacks = vault
        .check_requirement("secret/app", &keys(&["A", "B"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lacks, Missing::Keys(keys(&["B"])));
    assert!(!format!("{lacks:?}").contains(SEEDED_VALUE));
    let holds = vault
        .check_requirement("secret/data/app", &keys(&["A"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(holds, Missing::Nothing);
    let absent = vault
        .check_requirement("secret/none", &keys(&["A"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(absent, Missing::Secret);
    // A soft-deleted current version answers 404 with a body: missing, not an error.
    vault_call(&devstack, Method::DELETE, "secret/data/app", None).await;
    let deleted = vault
        .check_requirement("secret/app", &keys(&["A"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(deleted, Missing::Secret);

    // KV v1: the secret's own keys.
    vault_call(
        &devstack,
        Method::POST,
        "sys/mounts/kv1",
        Some(json!({"type": "kv", "options": {"version": "1"}})),
    )
    .await;
    vault_call(
        &devstack,
        Method::POST,
        "kv1/app",
        Some(json!({"A": SEEDED_VALUE})),
    )
    .await;
    let v1 = vault
        .check_requirement("kv1/app", &keys(&["A", "C"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v1, Missing::Keys(keys(&["C"])));

    // A bad token is a permanent 403, not "missing"; its text carries no token.
    let outsider = client(&devstack, Some("not-a-token"));
    let err = outsider
        .check_requirement("secret/app", &keys(&["A"]))
        .await
        .err()
        .unwrap_or_else(|| panic!("a bad token was accepted"));
    assert!(err.is_forbidden() && !err.is_transient(), "{err}");
    assert!(!err.to_string().contains("not-a-token"), "{err}");
    // No token at all is said plainly.
    let err = client(&devstack, None)
        .check_requirement("secret/app", &keys(&["A"]))
        .await
        .err()
        .unwrap_or_else(|| panic!("no token was accepted"));
    assert!(err.to_string().contains("VAULT_TOKEN"), "{err}");
    devstack.shutdown().await;
}

#[tokio::test]
async fn approle_login_gives_the_token_the_check_uses() {
    use reqwest::Method;
    let devstack = common::fast_devstack().await;
    vault_call(
        &devstack,
        Method::POST,
        "secret/data/app",
        Some(json!({"data": {"A": SEEDED_VALUE}})),
    )
    .await;
    vault_call(
        &devstack,
        Method::POST,
        "sys/auth/approle",
        Some(json!({"type": "approle"})),
    )
    .await;
    vault_call(
        &devstack,
        Method::PUT,
        "sys/policies/acl/reader",
        Some(json!({"policy": "path \"secret/data/*\" { capabilities = [\"read\"] }"})),
    )
    .await;
    vault_call(
        &devstack,
        Method::POST,
        "auth/approle/role/drover",
        Some(json!({"token_policies": ["reader"]})),
    )
    .await;
    let role_id = vault_call(
        &devstack,
        Method::GET,
        "auth/approle/role/drover/role-id",
        None,
    )
    .await["data"]["role_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let secret_id = vault_call(
        &devstack,
        Method::POST,
        "auth/approle/role/drover/secret-id",
        Some(json!({})),
    )
    .await["data"]["secret_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!role_id.is_empty() && !secret_id.is_empty());
    let vault = VaultClient::new(VaultConfig {
        address: devstack.vault_url(),
        approle: Some((role_id, drover::telemetry::Redacted(secret_id))),
        max_retries: 0,
        ..VaultConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let holds = vault
        .check_requirement("secret/app", &keys(&["A"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(holds, Missing::Nothing);
    devstack.shutdown().await;
}
