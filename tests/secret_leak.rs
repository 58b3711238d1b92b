//! Credentials and secret values stay secret: Vault login by JWT (the JWT file is read, never
//! shown), and a full run seeded with recognisable secrets (Vault KV values, the S3 secret key,
//! the Consul and Vault tokens, CSI volume secrets, the JWT, drover's API token and Git webhook
//! secret, both used) in which no log line at TRACE, API
//! answer, page, stored byte or CLI output shows any of them. The S3 secret key is drover's own
//! credential too (`AWS_SECRET_ACCESS_KEY` for the embedded s3s-fs, which checks each SigV4
//! signature): the app has a bucket, so drover signs requests with it in every cycle.

mod common;

use common::logs::{captured_logs, logs_text};
use drover::providers::vault::{Missing, VaultClient, VaultConfig, VaultError};
use serde_json::{Value, json};

/// A JWT (`{"alg":"none"}.{"aud":"drover","sub":"drover-leak-jwt-sub-5e1b"}.sig`): the devstack
/// checks its shape and audience, not its signature.
const JWT: &str = "eyJhbGciOiJub25lIn0.eyJhdWQiOiJkcm92ZXIiLCJzdWIiOiJkcm92ZXItbGVhay1qd3Qtc3ViLTVlMWIifQ.c2lnLWRyb3Zlci1sZWFr";

/// A call to the devstack's Vault API with the root token; returns the JSON answer (or Null).
async fn vault_call(
    devstack: &drover_devstack::Devstack,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
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

/// Enable JWT auth with a role `drover` (audience `drover`) whose tokens may read `nomad/*`.
async fn configure_jwt_role(devstack: &drover_devstack::Devstack) {
    use reqwest::Method;
    vault_call(
        devstack,
        Method::POST,
        "sys/auth/jwt",
        Some(json!({"type": "jwt"})),
    )
    .await;
    vault_call(
        devstack,
        Method::PUT,
        "sys/policies/acl/drover-reader",
        Some(json!({"policy": "path \"nomad/*\" { capabilities = [\"read\"] }\npath \"secret/*\" { capabilities = [\"read\"] }"})),
    )
    .await;
    vault_call(
        devstack,
        Method::POST,
        "auth/jwt/role/drover",
        Some(json!({"role_type": "jwt", "token_policies": ["drover-reader"], "bound_audiences": ["drover"]})),
    )
    .await;
}

/// Vault requests the devstack served: `(method, path)`.
async fn vault_requests(devstack: &drover_devstack::Devstack) -> Vec<(String, String)> {
    let answer: Value = common::http_client()
        .get(format!(
            "{}/_devstack/requests?system=vault",
            devstack.vault_url()
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("request log: {e}"))
        .json()
        .await
        .unwrap_or(Value::Null);
    let entries = answer.get("entries").cloned().unwrap_or(answer);
    entries
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (field("Method"), field("Path"))
        })
        .collect()
}

fn jwt_client(devstack: &drover_devstack::Devstack, token_file: &std::path::Path) -> VaultClient {
    jwt_client_at(
        devstack,
        token_file,
        drover::providers::vault::DEFAULT_JWT_MOUNT,
    )
}

fn jwt_client_at(
    devstack: &drover_devstack::Devstack,
    token_file: &std::path::Path,
    mount: &str,
) -> VaultClient {
    VaultClient::new(VaultConfig {
        address: devstack.vault_url(),
        jwt: Some(drover::providers::vault::JwtLogin {
            role: "drover".into(),
            token_file: token_file.to_path_buf(),
            mount: mount.into(),
        }),
        max_retries: 0,
        ..VaultConfig::default()
    })
    .unwrap_or_else(|e| panic!("vault client: {e}"))
}

#[tokio::test]
async fn jwt_login_gives_the_token_the_check_uses_once() {
    use reqwest::Method;
    let devstack = common::fast_devstack().await;
    vault_call(
        &devstack,
        Method::POST,
        "secret/data/app",
        Some(json!({"data": {"A": "value"}})),
    )
    .await;
    configure_jwt_role(&devstack).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let token_file = dir.path().join("vault.jwt");
    // As `echo $JWT > file` writes it: the newline is not part of the token.
    std::fs::write(&token_file, format!("{JWT}\n")).unwrap_or_else(|e| panic!("{e}"));

    let vault = jwt_client(&devstack, &token_file);
    let keys = vec!["A".to_string()];
    for _ in 0..2 {
        let holds = vault
            .check_requirement("secret/app", &keys)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(holds, Missing::Nothing);
    }
    let logins = vault_requests(&devstack)
        .await
        .into_iter()
        .filter(|(method, path)| method == "POST" && path == "/v1/auth/jwt/login")
        .count();
    assert_eq!(logins, 1, "one login, its token reused for both checks");

    // A JWT the role refuses (wrong audience) is Vault's 400, permanent, and shows no JWT.
    let refused = "eyJhbGciOiJub25lIn0.eyJhdWQiOiJvdGhlciJ9.c2ln";
    std::fs::write(&token_file, refused).unwrap_or_else(|e| panic!("{e}"));
    let err = jwt_client(&devstack, &token_file)
        .check_requirement("secret/app", &keys)
        .await
        .err()
        .unwrap_or_else(|| panic!("a JWT for another audience was accepted"));
    assert_eq!(err.status(), Some(400), "{err}");
    assert!(!err.is_transient(), "{err}");
    assert!(!err.to_string().contains(refused), "{err}");

    // JWT auth enabled at another path (`VAULT_JWT_MOUNT`): the login goes there.
    std::fs::write(&token_file, JWT).unwrap_or_else(|e| panic!("{e}"));
    vault_call(
        &devstack,
        Method::POST,
        "sys/auth/nomad-workloads",
        Some(json!({"type": "jwt"})),
    )
    .await;
    vault_call(
        &devstack,
        Method::POST,
        "auth/nomad-workloads/role/drover",
        Some(json!({"role_type": "jwt", "token_policies": ["drover-reader"], "bound_audiences": ["drover"]})),
    )
    .await;
    let holds = jwt_client_at(&devstack, &token_file, "nomad-workloads")
        .check_requirement("secret/app", &keys)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(holds, Missing::Nothing);
    let logins_there = vault_requests(&devstack)
        .await
        .into_iter()
        .filter(|(method, path)| method == "POST" && path == "/v1/auth/nomad-workloads/login")
        .count();
    assert_eq!(logins_there, 1);

    // A missing file is named, so the user knows which setting to fix.
    let absent = dir.path().join("absent.jwt");
    let err = jwt_client(&devstack, &absent)
        .check_requirement("secret/app", &keys)
        .await
        .err()
        .unwrap_or_else(|| panic!("a missing JWT file logged in"));
    assert!(matches!(err, VaultError::JwtFile { .. }), "{err}");
    assert!(
        err.to_string().contains(&absent.display().to_string()),
        "{err}"
    );
    devstack.shutdown().await;
}

// ---- the full run ----

/// A Vault KV value (the secret's `DB_PASSWORD`).
const KV_VALUE: &str = "drover-leak-KvValue-51c9";
/// The S3 access key id drover and Litestream use (not a secret: it names the key).
const S3_ACCESS_KEY: &str = "drover-leak-access";
/// The S3 secret key: drover's own S3 credential, and stored in Vault for Litestream as the
/// demo does.
const S3_SECRET_KEY: &str = "drover-leak-S3Secret-e2a8";
/// drover's Consul ACL token.
const CONSUL_TOKEN: &str = "drover-leak-ConsulToken-b41f";
/// drover's Nomad ACL token.
const NOMAD_TOKEN: &str = "drover-leak-NomadToken-77d0";
/// The Vault root token drover uses (the CLI logs in by JWT instead).
const VAULT_TOKEN: &str = "drover-leak-VaultToken-3a7e";
/// The CSI volume's `secrets`, first and after a Git change.
const CSI_SECRET: &str = "drover-leak-CsiSecret-0f6b";
const CSI_SECRET_CHANGED: &str = "drover-leak-CsiSecret-2d93";

/// drover's API token (the CLI's `DROVER_API_TOKEN`) and its Git webhook secret.
const API_TOKEN: &str = "drover-leak-ApiToken-6c2d";
const WEBHOOK_SECRET: &str = "drover-leak-WebhookSecret-9e4a";

/// Every value that must never be shown.
const SECRETS: [&str; 10] = [
    API_TOKEN,
    WEBHOOK_SECRET,
    KV_VALUE,
    S3_SECRET_KEY,
    CONSUL_TOKEN,
    NOMAD_TOKEN,
    VAULT_TOKEN,
    CSI_SECRET,
    CSI_SECRET_CHANGED,
    JWT,
];

/// The app: a CSI volume with secrets, a bucket, a Vault requirement, a config entry and a job
/// whose templates read the secret (and, with `extra_key`, a key Vault lacks).
fn write_media_app(env: &common::TestEnv, csi_secret: &str, extra_key: Option<&str>) {
    env.write(
        "apps/media/app.yaml",
        &format!(
            "name: media\nsync: {{ auto: true, self_heal: false, prune: true }}\nresources:\n  - csi_volume:\n      id: media_data\n      plugin_id: glusterfs\n      capacity_min: 100MiB\n      capacity_max: 1GiB\n      capabilities: [{{ access_mode: single-node-writer, attachment_mode: file-system }}]\n      secrets: {{ password: \"{csi_secret}\" }}\n  - bucket: {{ name: media-litestream }}\n  - vault_secret: {{ mount: nomad, path: default/media, keys: [DB_PASSWORD, S3_SECRET_KEY] }}\n  - consul_config_entry: {{ file: media-defaults.hcl }}\n  - nomad_job: {{ file: job.nomad.hcl }}\n"
        ),
    );
    env.write(
        "apps/media/media-defaults.hcl",
        "Kind     = \"service-defaults\"\nName     = \"media\"\nProtocol = \"http\"\n",
    );
    let extra = extra_key
        .map(|k| format!("\\nEXTRA={{{{ .Data.data.{k} }}}}"))
        .unwrap_or_default();
    let template = format!(
        "      template {{\n        data        = \"{{{{ with secret \\\"nomad/data/default/media\\\" }}}}DB_PASSWORD={{{{ .Data.data.DB_PASSWORD }}}}\\nS3_SECRET_KEY={{{{ .Data.data.S3_SECRET_KEY }}}}{extra}{{{{ end }}}}\"\n        destination = \"secrets/media.env\"\n        env         = true\n      }}\n\n      resources {{"
    );
    env.write(
        "apps/media/job.nomad.hcl",
        &common::web_jobspec("media", "nginx:1.27").replace("      resources {", &template),
    );
}

/// A Nomad call with drover's token; returns status and JSON.
async fn nomad_call(
    env: &common::TestEnv,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = env
        .http
        .request(method, format!("{}{path}", env.devstack.nomad_url()))
        .header("X-Nomad-Token", NOMAD_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("nomad {path}: {e}"));
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// The store's files under the data dir, with their bytes (the SQLite file, its WAL and shared
/// memory). The Git mirror beside them is left out: it holds the user's repository as committed,
/// which is where the CSI secrets were written.
fn store_files(data_dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let entries = std::fs::read_dir(data_dir).unwrap_or_else(|e| panic!("{e}"));
    let files: Vec<(String, Vec<u8>)> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .filter_map(|path| Some((path.display().to_string(), std::fs::read(&path).ok()?)))
        .collect();
    assert!(
        files
            .iter()
            .any(|(_, bytes)| bytes.starts_with(b"SQLite format 3")),
        "the store's SQLite file is scanned: {:?}",
        files.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    files
}

/// Every API answer, the page and the metrics, as a user reads them now: `(what, body)`.
async fn read_api(env: &common::TestEnv, moment: &str) -> Vec<(String, Vec<u8>)> {
    let base = env.drover_url();
    let mut out = Vec::new();
    for path in [
        "/",
        "/apps/media",
        "/api/v1/apps",
        "/api/v1/apps/media",
        "/api/v1/apps/media/history",
        "/api/v1/events",
        "/api/v1/source",
        "/api/v1/status",
        "/metrics",
    ] {
        let answer = env
            .http
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert!(
            answer.status().is_success(),
            "GET {path}: {}",
            answer.status()
        );
        let text = answer.text().await.unwrap_or_default();
        out.push((format!("GET {path} ({moment})"), text.into_bytes()));
    }
    out
}

/// The places (name → text or bytes) in which a secret was found.
fn leaks(captured: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut found = Vec::new();
    for (place, bytes) in captured {
        for secret in SECRETS {
            if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                found.push(format!("{secret} in {place}"));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_line_api_answer_page_store_byte_or_cli_output() {
    use reqwest::Method;
    captured_logs();
    let mut seed = common::default_seed();
    seed.vault_secrets
        .push(drover_devstack::seed::SeedVaultSecret {
            mount: "nomad".into(),
            path: "default/media".into(),
            data: [
                ("DB_PASSWORD".to_string(), json!(KV_VALUE)),
                ("S3_SECRET_KEY".to_string(), json!(S3_SECRET_KEY)),
            ]
            .into(),
        });
    for (system, secret_id) in [("nomad", NOMAD_TOKEN), ("consul", CONSUL_TOKEN)] {
        seed.acl_tokens.push(drover_devstack::seed::SeedToken {
            secret_id: secret_id.into(),
            name: format!("drover-{system}"),
            system: system.into(),
            namespaces: Vec::new(),
            capabilities: Vec::new(),
            management: true,
        });
    }
    let mut env = common::TestEnv::with_config(drover_devstack::DevstackConfig {
        time_scale: 0.01,
        root_token: VAULT_TOKEN.into(),
        nomad_acl: true,
        consul_acl: true,
        seed: Some(seed),
        ..drover_devstack::DevstackConfig::default()
    })
    .await;
    configure_jwt_role(&env.devstack).await;
    let jwt_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let jwt_file = jwt_dir.path().join("vault.jwt");
    std::fs::write(&jwt_file, JWT).unwrap_or_else(|e| panic!("{e}"));
    // The embedded S3 server `drover demo` runs; it refuses a request not signed with this key.
    let s3_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let s3_server = drover_devstack::s3::S3Server::start(
        "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        s3_dir.path(),
        S3_ACCESS_KEY,
        S3_SECRET_KEY,
    )
    .await
    .unwrap_or_else(|e| panic!("s3s-fs: {e}"));
    // As `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` give them.
    let s3_env = [
        ("AWS_ENDPOINT_URL", s3_server.url()),
        ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY.to_string()),
    ];
    let s3_config = drover::providers::s3::S3Config::from_lookup(|k| {
        s3_env
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.clone())
    });

    let mut settings = env.settings();
    settings.nomad.token = Some(drover::telemetry::Redacted(NOMAD_TOKEN.into()));
    if let Some(consul) = settings.consul.as_mut() {
        consul.token = Some(drover::telemetry::Redacted(CONSUL_TOKEN.into()));
    }
    if let Some(vault) = settings.vault.as_mut() {
        vault.token = Some(drover::telemetry::Redacted(VAULT_TOKEN.into()));
    }
    settings.s3 = Some(s3_config.clone());
    settings.web.api_token = Some(drover::telemetry::Redacted(API_TOKEN.into()));
    settings.web.webhook_secret = Some(drover::telemetry::Redacted(WEBHOOK_SECRET.into()));

    // 1. Everything created: the volume with its secrets, the entry, the checked secret, the job.
    write_media_app(&env, CSI_SECRET, None);
    let first = env.commit("media");
    env.start_drover_with(settings).await;
    env.wait_synced_healthy("media", Some(&first)).await;
    // drover signed with the scanned key: the server holds the bucket it created.
    let s3 = drover::providers::s3::S3Client::new(s3_config).await;
    assert!(
        s3.exists("media-litestream")
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        "drover created the bucket with its S3 credentials"
    );

    // 2. Drift behind drover's back (self_heal off): the diff is shown, not healed.
    let (status, mut job) = nomad_call(&env, Method::GET, "/v1/job/media", None).await;
    assert_eq!(status, 200, "{job}");
    job["TaskGroups"][0]["Tasks"][0]["Env"] = json!({"DRIFT": "yes"});
    let (status, answer) =
        nomad_call(&env, Method::POST, "/v1/jobs", Some(json!({"Job": job}))).await;
    assert_eq!(status, 200, "{answer}");
    env.wait_app("media", "OutOfSync with the drift's diff", |s| {
        s.resources
            .iter()
            .any(|r| r.diff.as_deref().is_some_and(|d| d.contains("DRIFT")))
    })
    .await;
    let mut captured = read_api(&env, "drifted").await;

    // 3. A Git change of the volume's secrets, and a template reading a key Vault lacks: the
    //    volume is updated (its diff masks the secrets), the job blocked with a message naming
    //    the key.
    write_media_app(&env, CSI_SECRET_CHANGED, Some("API_KEY"));
    let second = env.commit("media: new CSI secret, a key Vault lacks");
    env.wait_app("media", "the job blocked on API_KEY", |s| {
        s.revision == second
            && s.resources
                .iter()
                .any(|r| r.id == "nomad_job/default/media" && r.message.contains("API_KEY"))
    })
    .await;
    // The block is a stored event too (scanned through /api/v1/events and the store's file).
    env.wait_event("lacks key API_KEY").await;

    // 4. What a user reads: every API answer, the page, the CLI.
    let base = env.drover_url();
    let answers = read_api(&env, "blocked").await;
    let app_answer = String::from_utf8_lossy(&answers[2].1).to_string();
    assert!(
        app_answer.contains("API_KEY") && app_answer.contains("\"diff\""),
        "the scanned answer holds the block message and the diffs: {app_answer}"
    );
    captured.extend(answers);
    // A Git webhook with the secret, and one with a wrong one (its refusal is logged).
    for token in [WEBHOOK_SECRET, "drover-leak-wrong"] {
        let answer = env
            .http
            .post(format!("{base}/api/v1/webhooks/generic"))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap_or_else(|e| panic!("webhook: {e}"));
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap_or_default();
        assert_eq!(
            status,
            if token == WEBHOOK_SECRET { 202 } else { 401 },
            "{text}"
        );
        captured.push((format!("webhook answer {status}"), text.into_bytes()));
    }
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_drover"))
            .args(args)
            .env("RUST_LOG", "trace")
            .env("DROVER_LOG_FORMAT", "text")
            .env("DROVER_ADDR", &base)
            .env(drover::config::API_TOKEN_ENV, API_TOKEN)
            .env("NOMAD_ADDR", env.devstack.nomad_url())
            .env("NOMAD_TOKEN", NOMAD_TOKEN)
            .env("CONSUL_HTTP_ADDR", env.devstack.consul_url())
            .env("CONSUL_HTTP_TOKEN", CONSUL_TOKEN)
            .env("VAULT_ADDR", env.devstack.vault_url())
            .env_remove("VAULT_TOKEN")
            .env("VAULT_JWT_ROLE", "drover")
            .env("VAULT_JWT_FILE", &jwt_file)
            .envs(s3_env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap_or_else(|e| panic!("drover {args:?}: {e}"));
        let mut bytes = out.stdout;
        bytes.extend_from_slice(&out.stderr);
        (format!("drover {}", args.join(" ")), bytes)
    };
    let repo = env.repo.display().to_string();
    let data = env.data.display().to_string();
    let cli_runs = tokio::task::block_in_place(|| {
        vec![
            cli(&["plan", &repo]),
            cli(&["plan", &repo, "--data-dir", &data]),
            cli(&["validate", "--verbose", &repo]),
            cli(&["status"]),
            cli(&["history", "media"]),
            cli(&["sync", "--app", "media"]),
        ]
    });
    let (_, synced) = &cli_runs[cli_runs.len() - 1];
    let synced = String::from_utf8_lossy(synced);
    assert!(
        synced.contains("sync requested: media"),
        "the CLI's sync was let through with the token: {synced}"
    );
    let jwt_logins = vault_requests(&env.devstack)
        .await
        .into_iter()
        .filter(|(method, path)| method == "POST" && path == "/v1/auth/jwt/login")
        .count();
    assert!(jwt_logins > 0, "the CLI logged in to Vault by JWT");
    captured.extend(cli_runs);

    // 5. What drover keeps and logs: the store's files, every log line at TRACE.
    env.stop_drover().await;
    captured.extend(store_files(&env.data));
    let logs = logs_text();
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "the logs were captured at every level"
    );
    captured.push(("the logs".to_string(), logs.into_bytes()));

    let found = leaks(&captured);
    assert!(found.is_empty(), "secrets leaked: {found:#?}");
    env.shutdown().await;
    s3_server.shutdown().await;
}
