//! What `drover plan` and the status say matches what drover does: a Vault requirement shows
//! what its check found (not `not-managed`), and a Git change to a CSI volume's secrets (which
//! Nomad never shows back) is an update that re-sends them, not `unchanged`.

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

fn volume_app(secret: &str) -> String {
    format!(
        "name: data\nsync: {{ auto: true, prune: true }}\nresources:\n  - csi_volume:\n      \
         id: data\n      plugin_id: glusterfs\n      capacity_min: 100MiB\n      \
         capacity_max: 1GiB\n      capabilities: [{{ access_mode: single-node-writer, \
         attachment_mode: file-system }}]\n      secrets: {{ password: \"{secret}\" }}\n"
    )
}

/// PUTs of the volume (register or create) the devstack served.
async fn volume_writes(env: &TestEnv) -> usize {
    env.nomad_requests()
        .await
        .into_iter()
        .filter(|(method, path)| method == "PUT" && path.starts_with("/v1/volume/csi/data"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_git_change_to_a_volumes_secrets_is_an_update_that_resends_them() {
    let mut env = TestEnv::new().await;
    env.write("apps/data/app.yaml", &volume_app("first-secret-9a1d"));
    let first = env.commit("data: a volume with secrets");
    env.start_drover().await;
    env.wait_synced_healthy("data", Some(&first)).await;
    let writes_before = volume_writes(&env).await;
    assert_eq!(writes_before, 1, "created once");

    env.write("apps/data/app.yaml", &volume_app("second-secret-4be0"));
    let second = env.commit("data: new volume secret");
    let status = env
        .wait_app("data", "synced at the secret change", |s| {
            s.revision == second && s.last_sync.as_ref().is_some_and(|l| l.revision == second)
        })
        .await;
    let last = status
        .last_sync
        .as_ref()
        .unwrap_or_else(|| panic!("no sync: {status:#?}"));
    assert!(
        last.changes
            .iter()
            .any(|c| c == "update csi_volume/default/data"),
        "the secret change is an update: {status:#?}"
    );
    assert_eq!(
        volume_writes(&env).await,
        writes_before + 1,
        "the new secrets were re-sent to Nomad"
    );
    let shown = serde_json::to_string(&status).unwrap_or_default();
    assert!(
        !shown.contains("first-secret-9a1d") && !shown.contains("second-secret-4be0"),
        "{shown}"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_secret_change_shows_as_an_update_whose_diff_names_no_value() {
    let mut env = TestEnv::new().await;
    env.write("apps/data/app.yaml", &volume_app("first-secret-9a1d"));
    let first = env.commit("data: a volume with secrets");
    env.start_drover().await;
    env.wait_synced_healthy("data", Some(&first)).await;

    let manual = volume_app("second-secret-4be0").replace("auto: true", "auto: false");
    env.write("apps/data/app.yaml", &manual);
    let second = env.commit("data: new volume secret, manual sync");
    let status = env
        .wait_app("data", "planned at the secret change", |s| {
            s.revision == second
        })
        .await;
    let volume = status
        .resources
        .iter()
        .find(|r| r.id == "csi_volume/default/data")
        .unwrap_or_else(|| panic!("{status:#?}"));
    assert_eq!(volume.change, "update", "{volume:#?}");
    assert_eq!(volume.reason, "git_changed", "{volume:#?}");
    let diff = volume.diff.clone().unwrap_or_default();
    assert!(
        diff.contains("changed in Git in a field Nomad does not return (Secrets"),
        "{diff}"
    );
    assert!(
        !diff.contains("first-secret-9a1d") && !diff.contains("second-secret-4be0"),
        "{diff}"
    );
    env.shutdown().await;
}
