//! Nomad client settings, read from the same environment variables as the `nomad` CLI.

use std::path::PathBuf;
use std::time::Duration;

use crate::telemetry::Redacted;

/// How to reach a Nomad cluster.
#[derive(Debug, Clone)]
pub struct NomadConfig {
    /// Base URL (`NOMAD_ADDR`, default `http://127.0.0.1:4646`).
    pub address: String,
    /// ACL token (`NOMAD_TOKEN`).
    pub token: Option<Redacted<String>>,
    /// Default namespace (`NOMAD_NAMESPACE`, default `default`).
    pub namespace: String,
    /// Region (`NOMAD_REGION`), sent only when set.
    pub region: Option<String>,
    /// CA certificate file (`NOMAD_CACERT`).
    pub ca_cert: Option<PathBuf>,
    /// Client certificate file (`NOMAD_CLIENT_CERT`).
    pub client_cert: Option<PathBuf>,
    /// Client key file (`NOMAD_CLIENT_KEY`).
    pub client_key: Option<PathBuf>,
    /// Server name to verify the certificate against (`NOMAD_TLS_SERVER_NAME`).
    pub tls_server_name: Option<String>,
    /// Skip certificate verification (`NOMAD_SKIP_VERIFY`); for labs only.
    pub skip_verify: bool,
    /// Timeout of a non-blocking request.
    pub request_timeout: Duration,
    /// How many times a transient failure is retried.
    pub max_retries: usize,
}

impl Default for NomadConfig {
    fn default() -> Self {
        NomadConfig {
            address: "http://127.0.0.1:4646".to_string(),
            token: None,
            namespace: "default".to_string(),
            region: None,
            ca_cert: None,
            client_cert: None,
            client_key: None,
            tls_server_name: None,
            skip_verify: false,
            request_timeout: Duration::from_secs(30),
            max_retries: 4,
        }
    }
}

impl NomadConfig {
    /// Settings from `NOMAD_*` variables, defaults where unset (like the `nomad` CLI).
    pub fn from_env() -> Self {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Settings from any variable lookup (testable without touching the process environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |key: &str| lookup(key).filter(|v| !v.is_empty());
        let mut config = NomadConfig::default();
        if let Some(addr) = get("NOMAD_ADDR") {
            config.address = normalize_address(&addr);
        }
        config.token = get("NOMAD_TOKEN").map(Redacted);
        if let Some(ns) = get("NOMAD_NAMESPACE") {
            config.namespace = ns;
        }
        config.region = get("NOMAD_REGION");
        config.ca_cert = get("NOMAD_CACERT").map(PathBuf::from);
        config.client_cert = get("NOMAD_CLIENT_CERT").map(PathBuf::from);
        config.client_key = get("NOMAD_CLIENT_KEY").map(PathBuf::from);
        config.tls_server_name = get("NOMAD_TLS_SERVER_NAME");
        config.skip_verify = get("NOMAD_SKIP_VERIFY")
            .map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
            .unwrap_or(false);
        config
    }
}

/// `127.0.0.1:4646` → `http://127.0.0.1:4646`; trailing slashes dropped.
pub(crate) fn normalize_address(addr: &str) -> String {
    let trimmed = addr.trim().trim_end_matches('/');
    if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_is_read_like_the_nomad_cli() {
        let env = |k: &str| match k {
            "NOMAD_ADDR" => Some("https://nomad.example:4646/".to_string()),
            "NOMAD_TOKEN" => Some("s3cr3t".to_string()),
            "NOMAD_NAMESPACE" => Some("media".to_string()),
            "NOMAD_REGION" => Some("eu".to_string()),
            "NOMAD_TLS_SERVER_NAME" => Some("server.global.nomad".to_string()),
            _ => None,
        };
        let c = NomadConfig::from_lookup(env);
        assert_eq!(c.address, "https://nomad.example:4646");
        assert_eq!(c.namespace, "media");
        assert_eq!(c.region.as_deref(), Some("eu"));
        assert_eq!(c.tls_server_name.as_deref(), Some("server.global.nomad"));
        assert_eq!(format!("{:?}", c.token), "Some(<redacted>)");
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn defaults_match_the_cli() {
        let c = NomadConfig::from_lookup(|_| None);
        assert_eq!(c.address, "http://127.0.0.1:4646");
        assert_eq!(c.namespace, "default");
        assert!(c.token.is_none());
        assert_eq!(normalize_address("10.0.0.1:4646"), "http://10.0.0.1:4646");
    }
}
