//! What every HashiCorp-style HTTP client shares: the address rules of the CLIs and a reqwest
//! client built from CA, client certificate and skip-verify settings.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The TLS files and switches a client was configured with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// CA certificate file (PEM) that replaces the system roots.
    pub ca_cert: Option<PathBuf>,
    /// Client certificate file (PEM), used together with `client_key`.
    pub client_cert: Option<PathBuf>,
    /// Client key file (PEM).
    pub client_key: Option<PathBuf>,
    /// Accept any server certificate; for labs only.
    pub skip_verify: bool,
}

/// A reqwest builder with drover's user agent and connect timeout and the given TLS settings;
/// certificate files are read now, so a bad path fails at start-up. `Err` is a readable reason.
pub fn client_builder(tls: &TlsSettings) -> Result<reqwest::ClientBuilder, String> {
    super::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("drover/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &tls.ca_cert {
        let cert = reqwest::Certificate::from_pem(&read_pem(path)?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        builder = builder.tls_certs_only([cert]);
    }
    if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
        let mut pem = read_pem(cert)?;
        pem.push(b'\n');
        pem.extend(read_pem(key)?);
        let identity =
            reqwest::Identity::from_pem(&pem).map_err(|e| format!("{}: {e}", cert.display()))?;
        builder = builder.identity(identity);
    }
    if tls.skip_verify {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    Ok(builder)
}

/// `host:port` → `<scheme>://host:port` (`https` when `https` is set, as `CONSUL_HTTP_SSL` asks);
/// an address with a scheme is kept; trailing slashes are dropped.
pub fn base_url(address: &str, https: bool) -> String {
    let trimmed = address.trim().trim_end_matches('/');
    if trimmed.contains("://") {
        trimmed.to_string()
    } else if https {
        format!("https://{trimmed}")
    } else {
        format!("http://{trimmed}")
    }
}

/// `1`, `true`, `yes` (any case) as Go's `strconv.ParseBool` and the CLIs read switches.
pub fn env_flag(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "t" | "true" | "yes"
    )
}

/// One URL path segment, percent-encoded.
pub fn path_segment(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_get_a_scheme_like_the_clis() {
        assert_eq!(base_url("127.0.0.1:8500", false), "http://127.0.0.1:8500");
        assert_eq!(base_url("127.0.0.1:8500", true), "https://127.0.0.1:8500");
        assert_eq!(base_url("http://c:8500/", true), "http://c:8500");
        assert!(env_flag("TRUE") && env_flag("1") && !env_flag("false") && !env_flag(""));
        assert_eq!(path_segment("a b/c"), "a+b%2Fc");
    }

    #[test]
    fn an_unreadable_certificate_names_the_file() {
        let tls = TlsSettings {
            ca_cert: Some(PathBuf::from("/nonexistent/ca.pem")),
            ..TlsSettings::default()
        };
        let err = client_builder(&tls).err().unwrap_or_default();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
