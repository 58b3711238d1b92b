//! Credentials and secret values stay secret: Vault login by JWT (the JWT file is read, never
//! shown), and a full run seeded with recognisable secrets (Vault KV values, the S3 secret key,
//! the Consul and Vault tokens, CSI volume secrets, the JWT) in which no log line at TRACE, API
//! answer, page, stored byte or CLI output shows any of them.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use drover::providers::vault::{Missing, VaultClient, VaultConfig, VaultError};
use serde_json::{Value, json};

/// A JWT (`{"alg":"none"}.{"aud":"drover","sub":"drover-leak-jwt-sub-5e1b"}.sig`): the devstack
/// checks its shape and audience, not its signature.
const JWT: &str = "eyJhbGciOiJub25lIn0.eyJhdWQiOiJkcm92ZXIiLCJzdWIiOiJkcm92ZXItbGVhay1qd3Qtc3ViLTVlMWIifQ.c2lnLWRyb3Zlci1sZWFr";

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

fn logs_text() -> String {
    let logs = captured_logs();
    let bytes = logs.lock().unwrap_or_else(|p| p.into_inner()).clone();
    String::from_utf8_lossy(&bytes).to_string()
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
    VaultClient::new(VaultConfig {
        address: devstack.vault_url(),
        jwt: Some(drover::providers::vault::JwtLogin {
            role: "drover".into(),
            token_file: token_file.to_path_buf(),
            mount: drover::providers::vault::DEFAULT_JWT_MOUNT.into(),
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
