//! Vault client settings, read from the same environment variables as the `vault` CLI.

use std::path::PathBuf;
use std::time::Duration;

use crate::providers::http::{TlsSettings, base_url, env_flag};
use crate::telemetry::Redacted;

/// How to reach and log in to Vault.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// Base URL (`VAULT_ADDR`, default `https://127.0.0.1:8200` like the CLI).
    pub address: String,
    /// Token (`VAULT_TOKEN`), sent as `X-Vault-Token`.
    pub token: Option<Redacted<String>>,
    /// AppRole credentials (`VAULT_ROLE_ID`, `VAULT_SECRET_ID`), used when no token is given.
    pub approle: Option<(String, Redacted<String>)>,
    /// JWT login (`VAULT_JWT_ROLE`, `VAULT_JWT_FILE`, `VAULT_JWT_MOUNT`), used when neither a
    /// token nor AppRole is given.
    pub jwt: Option<JwtLogin>,
    /// Enterprise namespace (`VAULT_NAMESPACE`), sent as `X-Vault-Namespace`.
    pub namespace: Option<String>,
    /// CA file (`VAULT_CACERT`); `VAULT_SKIP_VERIFY` skips verification.
    pub tls: TlsSettings,
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// How many times a transient failure is retried.
    pub max_retries: usize,
}

/// Where Vault's JWT auth method is mounted unless `VAULT_JWT_MOUNT` says otherwise.
pub const DEFAULT_JWT_MOUNT: &str = "jwt";

/// A JWT login: `POST /v1/auth/<mount>/login` with the role and the JWT read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtLogin {
    /// The Vault role (`VAULT_JWT_ROLE`).
    pub role: String,
    /// The file holding the JWT (`VAULT_JWT_FILE`), read at each login so a rotated token (a
    /// Nomad workload identity, a CI job's OIDC token) is picked up; its contents are never kept.
    pub token_file: PathBuf,
    /// The auth method's mount (`VAULT_JWT_MOUNT`, default `jwt`).
    pub mount: String,
}

impl Default for VaultConfig {
    fn default() -> Self {
        VaultConfig {
            address: "https://127.0.0.1:8200".to_string(),
            token: None,
            approle: None,
            jwt: None,
            namespace: None,
            tls: TlsSettings::default(),
            request_timeout: Duration::from_secs(30),
            max_retries: 4,
        }
    }
}

impl VaultConfig {
    /// Settings from `VAULT_*` variables; `None` when `VAULT_ADDR` is unset (no Vault in use).
    pub fn from_env() -> Option<Self> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Settings from any variable lookup; `None` without `VAULT_ADDR`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let get = |key: &str| lookup(key).filter(|v| !v.is_empty());
        let address = get("VAULT_ADDR")?;
        let approle = get("VAULT_ROLE_ID").zip(get("VAULT_SECRET_ID").map(Redacted));
        let jwt = get("VAULT_JWT_ROLE")
            .zip(get("VAULT_JWT_FILE"))
            .map(|(role, file)| JwtLogin {
                role,
                token_file: PathBuf::from(file),
                mount: get("VAULT_JWT_MOUNT").unwrap_or_else(|| DEFAULT_JWT_MOUNT.to_string()),
            });
        Some(VaultConfig {
            address: base_url(&address, true),
            token: get("VAULT_TOKEN").map(Redacted),
            approle,
            jwt,
            namespace: get("VAULT_NAMESPACE"),
            tls: TlsSettings {
                ca_cert: get("VAULT_CACERT").map(PathBuf::from),
                skip_verify: get("VAULT_SKIP_VERIFY").is_some_and(|v| env_flag(&v)),
                ..TlsSettings::default()
            },
            ..VaultConfig::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_is_read_like_the_vault_cli() {
        let env = |k: &str| {
            let value = match k {
                "VAULT_ADDR" => "https://vault.example:8200/",
                "VAULT_TOKEN" => "hvs.v4ult-s3cr3t",
                "VAULT_NAMESPACE" => "media",
                "VAULT_CACERT" => "/etc/vault/ca.pem",
                "VAULT_SKIP_VERIFY" => "true",
                "VAULT_ROLE_ID" => "role",
                "VAULT_SECRET_ID" => "s3cr3t-id",
                _ => return None,
            };
            Some(value.to_string())
        };
        let c = VaultConfig::from_lookup(env).unwrap_or_default();
        assert_eq!(c.address, "https://vault.example:8200");
        assert_eq!(c.namespace.as_deref(), Some("media"));
        assert_eq!(c.tls.ca_cert, Some(PathBuf::from("/etc/vault/ca.pem")));
        assert!(c.tls.skip_verify);
        assert_eq!(
            c.token.as_ref().map(|t| t.expose().as_str()),
            Some("hvs.v4ult-s3cr3t")
        );
        assert_eq!(c.approle.as_ref().map(|(r, _)| r.as_str()), Some("role"));
        assert_eq!(
            c.jwt, None,
            "no JWT login without VAULT_JWT_ROLE and VAULT_JWT_FILE"
        );
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("v4ult-s3cr3t") && !shown.contains("s3cr3t-id"),
            "{shown}"
        );
    }

    #[test]
    fn jwt_login_is_read_from_role_file_and_mount() {
        let env = |mount: Option<&'static str>| {
            move |k: &str| {
                let value = match k {
                    "VAULT_ADDR" => "http://127.0.0.1:8200",
                    "VAULT_JWT_ROLE" => "drover",
                    "VAULT_JWT_FILE" => "/run/secrets/vault.jwt",
                    "VAULT_JWT_MOUNT" => mount?,
                    _ => return None,
                };
                Some(value.to_string())
            }
        };
        let c = VaultConfig::from_lookup(env(None)).unwrap_or_default();
        assert_eq!(
            c.jwt,
            Some(JwtLogin {
                role: "drover".into(),
                token_file: PathBuf::from("/run/secrets/vault.jwt"),
                mount: "jwt".into(),
            })
        );
        let c = VaultConfig::from_lookup(env(Some("nomad-workloads"))).unwrap_or_default();
        assert_eq!(c.jwt.map(|j| j.mount).as_deref(), Some("nomad-workloads"));
    }

    #[test]
    fn no_address_means_no_vault() {
        assert!(VaultConfig::from_lookup(|_| None).is_none());
        let c = VaultConfig::from_lookup(|k| (k == "VAULT_ADDR").then(|| "127.0.0.1:8200".into()));
        assert_eq!(
            c.map(|c| c.address).as_deref(),
            Some("https://127.0.0.1:8200")
        );
    }
}
