//! What `drover plan` and the status say matches what drover does: a Vault requirement shows
//! what its check found (not `not-managed`).

mod common;

use common::{TestEnv, app_yaml, web_jobspec};
use serde_json::json;

/// A recognisable value that must never be printed.
const SECRET_VALUE: &str = "plan-truth-value-7c21";

/// Write `data` at `nomad/data/<path>` through the Vault API with the root token.
async fn put_secret(env: &TestEnv, path: &str, data: serde_json::Value) {
    let answer = env
        .http
        .post(format!("{}/v1/nomad/data/{path}", env.devstack.vault_url()))
        .header("X-Vault-Token", env.devstack.root_token())
        .json(&json!({ "data": data }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("vault {path}: {e}"));
    assert!(
        answer.status().is_success(),
        "vault {path}: {}",
        answer.status()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_shows_each_vault_requirement_as_its_check_found_it_without_values() {
    let env = TestEnv::new().await;
    put_secret(
        &env,
        "default/full",
        json!({"A": SECRET_VALUE, "B": SECRET_VALUE}),
    )
    .await;
    put_secret(&env, "default/partial", json!({"A": SECRET_VALUE})).await;
    env.write(
        "apps/web/app.yaml",
        &app_yaml(
            "web",
            "  - vault_secret: { mount: nomad, path: default/full, keys: [A, B] }\n  \
             - vault_secret: { mount: nomad, path: default/partial, keys: [A, K1, K2] }\n  \
             - vault_secret: { mount: nomad, path: default/absent, keys: [C] }\n",
        ),
    );
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    env.commit("web: three requirements");
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_drover"))
            .arg("plan")
            .arg(&env.repo)
            .env("NOMAD_ADDR", env.devstack.nomad_url())
            .env("CONSUL_HTTP_ADDR", env.devstack.consul_url())
            .env("VAULT_ADDR", env.devstack.vault_url())
            .env("VAULT_TOKEN", env.devstack.root_token())
            .env_remove("NOMAD_TOKEN")
            .env_remove("CONSUL_HTTP_TOKEN")
            .env_remove("VAULT_JWT_ROLE")
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    });
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    // The status's words: its change, health and message.
    for expected in [
        "unchanged vault_secret/nomad/default/full: Healthy, holds keys A, B",
        "unchanged vault_secret/nomad/default/partial: Missing, Vault secret \
         nomad/default/partial lacks keys K1, K2",
        "unchanged vault_secret/nomad/default/absent: Missing, Vault secret \
         nomad/default/absent does not exist (needs key C)",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} not in:\n{stdout}{stderr}"
        );
    }
    assert!(!stdout.contains("not-managed"), "{stdout}");
    assert!(
        !stdout.contains(SECRET_VALUE) && !stderr.contains(SECRET_VALUE),
        "{stdout}{stderr}"
    );
    env.shutdown().await;
}
