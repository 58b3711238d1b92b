//! Consul client settings, read from the same environment variables as the `consul` CLI.

use std::path::PathBuf;
use std::time::Duration;

use crate::providers::http::{TlsSettings, base_url, env_flag};
use crate::telemetry::Redacted;

/// How to reach a Consul cluster.
#[derive(Debug, Clone)]
pub struct ConsulConfig {
    /// Base URL (`CONSUL_HTTP_ADDR`, default `127.0.0.1:8500`; `https` with `CONSUL_HTTP_SSL`).
    pub address: String,
    /// ACL token (`CONSUL_HTTP_TOKEN`), sent as `X-Consul-Token`.
    pub token: Option<Redacted<String>>,
    /// Namespace (`CONSUL_NAMESPACE`, Enterprise), sent as `?ns=` when set.
    pub namespace: Option<String>,
    /// CA file, client certificate and key (`CONSUL_CACERT`, `CONSUL_CLIENT_CERT`,
    /// `CONSUL_CLIENT_KEY`); `CONSUL_HTTP_SSL_VERIFY=false` skips verification.
    pub tls: TlsSettings,
    /// Timeout of a non-blocking request (a blocking one adds its wait).
    pub request_timeout: Duration,
    /// How many times a transient failure is retried.
    pub max_retries: usize,
}

impl Default for ConsulConfig {
    fn default() -> Self {
        ConsulConfig {
            address: "http://127.0.0.1:8500".to_string(),
            token: None,
            namespace: None,
            tls: TlsSettings::default(),
            request_timeout: Duration::from_secs(30),
            max_retries: 4,
        }
    }
}

impl ConsulConfig {
    /// Settings from `CONSUL_*` variables, defaults where unset (like the `consul` CLI).
    pub fn from_env() -> Self {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Settings from `CONSUL_*` variables when `CONSUL_HTTP_ADDR` is set; `None` otherwise
    /// (drover then manages no config entries, and says so on each one).
    pub fn from_lookup_when_set(lookup: impl Fn(&str) -> Option<String>) -> Option<Self> {
        lookup("CONSUL_HTTP_ADDR")
            .filter(|v| !v.is_empty())
            .map(|_| Self::from_lookup(lookup))
    }

    /// Settings from any variable lookup (testable without touching the process environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |key: &str| lookup(key).filter(|v| !v.is_empty());
        let https = get("CONSUL_HTTP_SSL").is_some_and(|v| env_flag(&v));
        ConsulConfig {
            address: base_url(
                get("CONSUL_HTTP_ADDR")
                    .as_deref()
                    .unwrap_or("127.0.0.1:8500"),
                https,
            ),
            token: get("CONSUL_HTTP_TOKEN").map(Redacted),
            namespace: get("CONSUL_NAMESPACE"),
            tls: TlsSettings {
                ca_cert: get("CONSUL_CACERT").map(PathBuf::from),
                client_cert: get("CONSUL_CLIENT_CERT").map(PathBuf::from),
                client_key: get("CONSUL_CLIENT_KEY").map(PathBuf::from),
                skip_verify: get("CONSUL_HTTP_SSL_VERIFY").is_some_and(|v| !env_flag(&v)),
            },
            ..ConsulConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_is_read_like_the_consul_cli() {
        let env = |k: &str| {
            let value = match k {
                "CONSUL_HTTP_ADDR" => "consul.example:8501",
                "CONSUL_HTTP_SSL" => "true",
                "CONSUL_HTTP_TOKEN" => "c0nsul-s3cr3t",
                "CONSUL_NAMESPACE" => "media",
                "CONSUL_CACERT" => "/etc/consul/ca.pem",
                "CONSUL_CLIENT_CERT" => "/etc/consul/cli.pem",
                "CONSUL_CLIENT_KEY" => "/etc/consul/cli-key.pem",
                _ => return None,
            };
            Some(value.to_string())
        };
        let c = ConsulConfig::from_lookup(env);
        assert_eq!(c.address, "https://consul.example:8501");
        assert_eq!(c.namespace.as_deref(), Some("media"));
        assert_eq!(c.tls.ca_cert, Some(PathBuf::from("/etc/consul/ca.pem")));
        assert_eq!(
            c.tls.client_cert,
            Some(PathBuf::from("/etc/consul/cli.pem"))
        );
        assert_eq!(
            c.tls.client_key,
            Some(PathBuf::from("/etc/consul/cli-key.pem"))
        );
        assert!(!c.tls.skip_verify);
        assert_eq!(
            c.token.as_ref().map(|t| t.expose().as_str()),
            Some("c0nsul-s3cr3t")
        );
        assert!(!format!("{c:?}").contains("c0nsul-s3cr3t"));
    }

    #[test]
    fn defaults_match_the_cli() {
        let c = ConsulConfig::from_lookup(|_| None);
        assert_eq!(c.address, "http://127.0.0.1:8500");
        assert!(c.token.is_none() && c.namespace.is_none());
        // An explicit scheme wins over CONSUL_HTTP_SSL; SSL_VERIFY=false skips verification.
        let c = ConsulConfig::from_lookup(|k| match k {
            "CONSUL_HTTP_ADDR" => Some("http://10.0.0.1:8500".into()),
            "CONSUL_HTTP_SSL" => Some("true".into()),
            "CONSUL_HTTP_SSL_VERIFY" => Some("false".into()),
            _ => None,
        });
        assert_eq!(c.address, "http://10.0.0.1:8500");
        assert!(c.tls.skip_verify);
    }
}
