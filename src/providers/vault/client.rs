//! `VaultClient`: one reqwest client, the CLI's environment, retries on transient errors only,
//! and `check_requirement`, which learns a secret's key names and never keeps its values.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::Method;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::config::VaultConfig;
use super::error::VaultError;
use crate::providers::http::{client_builder, path_segment};
use crate::telemetry::Redacted;
use crate::telemetry::metrics::RequestCounter;

/// What a secret lacks of a requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The secret holds every listed key.
    Nothing,
    /// No secret at the path (never written, or its current version deleted or destroyed).
    Secret,
    /// The secret exists without these keys (sorted as listed).
    Keys(Vec<String>),
}

/// A KV mount as `sys/internal/ui/mounts/<path>` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KvMount {
    /// `nomad/`, with its trailing slash.
    path: String,
    /// 1 or 2.
    version: u8,
}

/// A Vault API client (KV requirement checks so far).
#[derive(Debug, Clone)]
pub struct VaultClient {
    http: reqwest::Client,
    config: VaultConfig,
    /// The token in use: `VAULT_TOKEN`, or the one an AppRole or JWT login returned.
    token: Arc<Mutex<Option<Redacted<String>>>>,
    /// Mounts already resolved: a mount's version does not change under a running secret, so
    /// a steady cycle costs one read per requirement.
    mounts: Arc<Mutex<Vec<KvMount>>>,
    /// Where each request is counted (`None`: nowhere), by status code.
    requests: Option<RequestCounter>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: Option<T>,
}

#[derive(Deserialize)]
struct MountInfo {
    #[serde(default)]
    path: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    options: Option<BTreeMap<String, String>>,
}

/// KV v2's `data`: the key names only; each value is skipped by the decoder, never stored.
#[derive(Deserialize)]
struct KvV2Data {
    data: Option<BTreeMap<String, IgnoredAny>>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<String>,
}

#[derive(Deserialize)]
struct LoginAnswer {
    auth: LoginAuth,
}

#[derive(Deserialize)]
struct LoginAuth {
    client_token: String,
}

impl VaultClient {
    /// Build a client; reads certificate files now so a bad path fails early.
    pub fn new(config: VaultConfig) -> Result<VaultClient, VaultError> {
        let http = client_builder(&config.tls)
            .and_then(|b| b.build().map_err(|e| format!("building HTTP client: {e}")))
            .map_err(VaultError::Config)?;
        let token = Arc::new(Mutex::new(config.token.clone()));
        Ok(VaultClient {
            http,
            config,
            token,
            mounts: Arc::new(Mutex::new(Vec::new())),
            requests: None,
        })
    }

    /// The same client, counting every request it (and its clones) sends in `requests`.
    pub fn counting_requests(mut self, requests: RequestCounter) -> VaultClient {
        self.requests = Some(requests);
        self
    }

    /// The settings in use.
    pub fn config(&self) -> &VaultConfig {
        &self.config
    }

    /// Which of `keys` the KV secret at `path` lacks, as a Nomad template would read it
    /// (`nomad/default/app`, or KV v2's `nomad/data/default/app`). The mount and its version
    /// come from `sys/internal/ui/mounts/<path>` (once per mount), then one read. Only key names
    /// are decoded; values are skipped by the decoder and never held, logged or returned.
    pub async fn check_requirement(
        &self,
        path: &str,
        keys: &[String],
    ) -> Result<Missing, VaultError> {
        let path = path.trim_matches('/');
        let mount = self.mount_of(path).await?;
        let rest = path.strip_prefix(mount.path.as_str()).unwrap_or(path);
        let read_path = if mount.version == 2 {
            let rest = rest
                .strip_prefix("data/")
                .or_else(|| rest.strip_prefix("metadata/"))
                .unwrap_or(rest);
            format!("{}data/{rest}", mount.path)
        } else {
            path.to_string()
        };
        let present: Option<Vec<String>> = if mount.version == 2 {
            let answer: Option<Envelope<KvV2Data>> = self.read(&read_path).await?;
            answer
                .and_then(|e| e.data)
                .and_then(|d| d.data)
                .map(|m| m.into_keys().collect())
        } else {
            let answer: Option<Envelope<BTreeMap<String, IgnoredAny>>> =
                self.read(&read_path).await?;
            answer.and_then(|e| e.data).map(|m| m.into_keys().collect())
        };
        Ok(match present {
            None => Missing::Secret,
            Some(present) => {
                let absent: Vec<String> = keys
                    .iter()
                    .filter(|k| !present.contains(k))
                    .cloned()
                    .collect();
                if absent.is_empty() {
                    Missing::Nothing
                } else {
                    Missing::Keys(absent)
                }
            }
        })
    }

    async fn mount_of(&self, path: &str) -> Result<KvMount, VaultError> {
        if let Some(known) = self
            .lock_mounts()
            .iter()
            .find(|m| format!("{path}/").starts_with(m.path.as_str()))
        {
            return Ok(known.clone());
        }
        let api = format!("/v1/sys/internal/ui/mounts/{}", encode_path(path));
        let info: Envelope<MountInfo> =
            self.send(Method::GET, &api, None)
                .await?
                .ok_or_else(|| VaultError::Status {
                    method: "GET".into(),
                    path: api.clone(),
                    status: 404,
                    errors: vec![format!("no mount for {path}")],
                })?;
        let info = info.data.ok_or_else(|| VaultError::Status {
            method: "GET".into(),
            path: api.clone(),
            status: 404,
            errors: vec![format!("no mount for {path}")],
        })?;
        let version = match info.options.as_ref().and_then(|o| o.get("version")) {
            Some(v) if v == "2" && info.kind == "kv" => 2,
            _ => 1,
        };
        let mut mount_path = info.path.trim_start_matches('/').to_string();
        if !mount_path.ends_with('/') {
            mount_path.push('/');
        }
        let mount = KvMount {
            path: mount_path,
            version,
        };
        self.lock_mounts().push(mount.clone());
        Ok(mount)
    }

    /// `GET /v1/<path>`; `None` when the secret is missing (404 `{"errors":[]}`, or a deleted
    /// version's 404 with a body). A 404 naming no handler (no such mount) is an error.
    async fn read<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
    ) -> Result<Option<T>, VaultError> {
        let api = format!("/v1/{}", encode_path(path));
        self.send(Method::GET, &api, None).await
    }

    fn lock_mounts(&self) -> std::sync::MutexGuard<'_, Vec<KvMount>> {
        self.mounts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn current_token(&self) -> Option<Redacted<String>> {
        self.token.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_token(&self, token: Option<Redacted<String>>) {
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = token;
    }

    /// The token to send: `VAULT_TOKEN`, or an AppRole or JWT login's (logged in on first use,
    /// and again after a 403 drops it).
    async fn token(&self) -> Result<Redacted<String>, VaultError> {
        if let Some(token) = self.current_token() {
            return Ok(token);
        }
        let (login_path, body) = if let Some((role_id, secret_id)) = &self.config.approle {
            (
                "/v1/auth/approle/login".to_string(),
                serde_json::json!({"role_id": role_id, "secret_id": secret_id.expose()}),
            )
        } else if let Some(jwt) = &self.config.jwt {
            let token = read_jwt(&jwt.token_file)?;
            (
                format!(
                    "/v1/auth/{}/login",
                    encode_path(jwt.mount.trim_matches('/'))
                ),
                serde_json::json!({"role": jwt.role, "jwt": token.expose()}),
            )
        } else {
            return Err(VaultError::NoCredentials);
        };
        let answer: Option<LoginAnswer> = self
            .send_once(Method::POST, &login_path, Some(&body), None)
            .await?;
        let token = answer
            .map(|a| Redacted(a.auth.client_token))
            .ok_or(VaultError::NoCredentials)?;
        self.set_token(Some(token.clone()));
        Ok(token)
    }

    /// Whether drover can log in again (AppRole or JWT) when a token is refused.
    fn logs_in(&self) -> bool {
        self.config.approle.is_some() || self.config.jwt.is_some()
    }

    /// Send with retries (exponential backoff with jitter) on transient errors only.
    async fn send<T: for<'de> Deserialize<'de>>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Option<T>, VaultError> {
        let attempt = || async {
            let token = self.token().await?;
            let result = self
                .send_once(method.clone(), path, body, Some(&token))
                .await;
            if result.as_ref().is_err_and(VaultError::is_forbidden) && self.logs_in() {
                // An expired login token: log in again next time.
                self.set_token(None);
            }
            result
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(self.config.max_retries)
            .with_jitter();
        attempt
            .retry(backoff)
            .when(VaultError::is_transient)
            .notify(|error, after| {
                tracing::warn!(%error, retry_in = ?after, "vault call failed; retrying");
            })
            .await
    }

    /// One request. `Ok(None)` is a 404 that says "no such secret": an empty `errors` list, or a
    /// body with `data` (a deleted or destroyed KV v2 version).
    async fn send_once<T: for<'de> Deserialize<'de>>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        token: Option<&Redacted<String>>,
    ) -> Result<Option<T>, VaultError> {
        let transport = |source| VaultError::Transport {
            method: method.to_string(),
            path: path.to_string(),
            source,
        };
        let mut request = self
            .http
            .request(method.clone(), format!("{}{}", self.config.address, path))
            .timeout(self.config.request_timeout);
        if let Some(token) = token {
            request = request.header("X-Vault-Token", token.expose());
        }
        if let Some(namespace) = &self.config.namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let sent = request.send().await;
        if let Some(requests) = &self.requests {
            match &sent {
                Ok(response) => requests.answered(response.status().as_u16()),
                Err(_) => requests.unanswered(),
            }
        }
        let response = sent.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        if status.as_u16() == 404 {
            let errors = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|b| b.errors)
                .unwrap_or_else(|_| vec!["not found".to_string()]);
            if errors.is_empty() {
                return Ok(None);
            }
            return Err(VaultError::Status {
                method: method.to_string(),
                path: path.to_string(),
                status: 404,
                errors,
            });
        }
        if !status.is_success() {
            let errors = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|b| b.errors)
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.trim().replace("\n\t", " ").trim().to_string())
                .collect();
            return Err(VaultError::Status {
                method: method.to_string(),
                path: path.to_string(),
                status: status.as_u16(),
                errors,
            });
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| VaultError::decode(method.as_str(), path, &e))
    }
}

/// The JWT in `path`, trimmed (files written by `echo` end with a newline).
fn read_jwt(path: &std::path::Path) -> Result<Redacted<String>, VaultError> {
    let failed = |source| VaultError::JwtFile {
        path: path.display().to_string(),
        source,
    };
    let contents = std::fs::read_to_string(path).map_err(failed)?;
    let jwt = contents.trim();
    if jwt.is_empty() {
        return Err(failed(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file is empty",
        )));
    }
    Ok(Redacted(jwt.to_string()))
}

/// Each segment of a Vault path percent-encoded, slashes kept.
fn encode_path(path: &str) -> String {
    path.split('/')
        .map(path_segment)
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwt_file_is_trimmed_and_an_empty_or_missing_one_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("vault.jwt");
        std::fs::write(&file, "  a.b.c\n").unwrap_or_else(|e| panic!("{e}"));
        let jwt = read_jwt(&file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(jwt.expose(), "a.b.c");
        std::fs::write(&file, "\n").unwrap_or_else(|e| panic!("{e}"));
        let empty = read_jwt(&file).err().map(|e| e.to_string());
        assert!(
            empty.as_deref().is_some_and(|e| e.contains("vault.jwt")),
            "{empty:?}"
        );
        let missing = read_jwt(&dir.path().join("absent")).err();
        assert!(matches!(missing, Some(VaultError::JwtFile { .. })));
    }
}
