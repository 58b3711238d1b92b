//! Probes: checks of what an app serves, beyond its resources' own health (`probes:` in
//! app.yaml). Each check gives a [`ProbeStatus`]; the controller's probe runner schedules them
//! and the status derivation counts their health in the app's.
//!
//! Messages name their target without secrets: URLs lose their userinfo, query and fragment.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;

use super::Health;
use crate::controller::{ProbeKind, ProbeStatus};
use crate::desired::{Probe, ProbeCheck};
use crate::providers::s3::S3Client;

/// How long a TLS probe waits for the connection and handshake.
const TLS_TIMEOUT: Duration = Duration::from_secs(10);

const SECONDS_PER_DAY: i64 = 86_400;

/// The trust store of probes could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The CA bundle could not be read.
    #[error("cannot read the probes' CA file {path}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The CA bundle holds no usable certificate.
    #[error("the probes' CA file {path} holds no usable PEM certificate")]
    NoCertificate {
        /// The file.
        path: String,
    },
    /// The HTTP client could not be built.
    #[error("building the probes' HTTP client")]
    Client(#[source] reqwest::Error),
}

/// What probes trust and talk through: the system roots plus an optional CA bundle (for homelab
/// CAs), one rustls configuration for `http` and `tls` probes alike.
#[derive(Clone)]
pub struct ProbeClients {
    tls: Arc<rustls::ClientConfig>,
    http: reqwest::Client,
}

impl std::fmt::Debug for ProbeClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeClients").finish_non_exhaustive()
    }
}

impl ProbeClients {
    /// Trust the system roots and, if given, every certificate of `ca_file` (PEM).
    pub fn new(ca_file: Option<&Path>) -> Result<ProbeClients, TrustError> {
        crate::providers::install_crypto_provider();
        let mut roots = rustls::RootCertStore::empty();
        let system = rustls_native_certs::load_native_certs();
        if !system.errors.is_empty() {
            tracing::debug!(
                errors = system.errors.len(),
                "some system roots were unreadable"
            );
        }
        roots.add_parsable_certificates(system.certs);
        if let Some(path) = ca_file {
            let display = path.display().to_string();
            let pem = std::fs::read(path).map_err(|source| TrustError::Read {
                path: display.clone(),
                source,
            })?;
            let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
                .filter_map(Result::ok)
                .collect();
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(TrustError::NoCertificate { path: display });
            }
        }
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .user_agent(concat!("drover-probe/", env!("CARGO_PKG_VERSION")))
            // The status a URL answers is what is checked; a redirect is such an answer.
            .redirect(reqwest::redirect::Policy::none())
            .tls_backend_preconfigured(tls.clone())
            .build()
            .map_err(TrustError::Client)?;
        Ok(ProbeClients {
            tls: Arc::new(tls),
            http,
        })
    }

    /// The system roots alone (the CA bundle of drover.yaml comes with [`ProbeClients::new`]);
    /// `None` if even the HTTP client cannot be built.
    pub fn system() -> Option<ProbeClients> {
        ProbeClients::new(None)
            .map_err(|e| tracing::warn!(error = %e, "probes have no HTTP client"))
            .ok()
    }
}

/// The kind, target and default name of a probe (a name never carries a secret).
pub fn describe(probe: &Probe) -> (ProbeKind, String, String) {
    let (kind, target) = match &probe.check {
        ProbeCheck::Http { url, .. } => (ProbeKind::Http, redact_url(url)),
        ProbeCheck::Tls { host, port, .. } => (ProbeKind::Tls, format!("{host}:{port}")),
        ProbeCheck::BackupFreshness { bucket, prefix, .. } => {
            (ProbeKind::BackupFreshness, format!("{bucket}/{prefix}"))
        }
    };
    let name = probe.name.clone().unwrap_or_else(|| target.clone());
    (kind, target, name)
}

/// A probe's status before it has run.
pub fn not_run(probe: &Probe) -> ProbeStatus {
    let (kind, target, name) = describe(probe);
    ProbeStatus {
        name,
        kind,
        target,
        health: Health::Unknown,
        message: "not run yet".into(),
        latency_ms: None,
        days_left: None,
        age_seconds: None,
        checked_at: None,
    }
}

/// What one run of a check found.
#[derive(Debug, Clone, PartialEq)]
struct Finding {
    health: Health,
    message: String,
    latency_ms: Option<u64>,
    days_left: Option<i64>,
    age_seconds: Option<u64>,
}

impl Finding {
    fn new(health: Health, message: impl Into<String>) -> Finding {
        Finding {
            health,
            message: message.into(),
            latency_ms: None,
            days_left: None,
            age_seconds: None,
        }
    }
}

/// Run `probe` once. `clients` is `None` when they could not be built; `s3` is the configured
/// S3 client, if any.
pub async fn check(
    probe: &Probe,
    clients: Option<&ProbeClients>,
    s3: Option<&S3Client>,
) -> ProbeStatus {
    let finding = match (&probe.check, clients) {
        (ProbeCheck::BackupFreshness { .. }, _) => backup_freshness(&probe.check, s3).await,
        (_, None) => Finding::new(Health::Unknown, "probes have no HTTP/TLS client"),
        (ProbeCheck::Http { .. }, Some(clients)) => http(&probe.check, clients).await,
        (ProbeCheck::Tls { .. }, Some(clients)) => tls(&probe.check, clients).await,
    };
    ProbeStatus {
        health: finding.health,
        message: finding.message,
        latency_ms: finding.latency_ms,
        days_left: finding.days_left,
        age_seconds: finding.age_seconds,
        checked_at: Some(SystemTime::now()),
        ..not_run(probe)
    }
}

async fn http(check: &ProbeCheck, clients: &ProbeClients) -> Finding {
    let ProbeCheck::Http {
        url,
        expect_status,
        timeout_secs,
    } = check
    else {
        return Finding::new(Health::Unknown, "not an http probe");
    };
    let timeout = Duration::from_secs(*timeout_secs);
    let started = Instant::now();
    let answer = clients.http.get(url).timeout(timeout).send().await;
    let latency_ms = millis(started.elapsed());
    let mut finding = match answer {
        Ok(response) => {
            let status = response.status().as_u16();
            if status == *expect_status {
                Finding::new(Health::Healthy, format!("{status} in {latency_ms} ms"))
            } else {
                Finding::new(
                    Health::Degraded,
                    format!("{status}, expected {expect_status} ({latency_ms} ms)"),
                )
            }
        }
        Err(error) if error.is_timeout() => Finding::new(
            Health::Degraded,
            format!("no answer within {}", humantime::format_duration(timeout)),
        ),
        // reqwest names the URL in its errors: dropped, the target is shown beside the message.
        Err(error) => Finding::new(
            Health::Degraded,
            format!("request failed: {}", error_chain(&error.without_url())),
        ),
    };
    finding.latency_ms = Some(latency_ms);
    finding
}

async fn tls(check: &ProbeCheck, clients: &ProbeClients) -> Finding {
    let ProbeCheck::Tls {
        host,
        port,
        warn_days,
    } = check
    else {
        return Finding::new(Health::Unknown, "not a tls probe");
    };
    let Ok(server_name) = ServerName::try_from(host.clone()) else {
        return Finding::new(Health::Degraded, format!("{host:?} is not a host name"));
    };
    let started = Instant::now();
    let connector = tokio_rustls::TlsConnector::from(clients.tls.clone());
    let handshake = async {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), *port))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        connector
            .connect(server_name, tcp)
            .await
            .map_err(|e| format!("TLS handshake failed: {}", handshake_failure(&e)))
    };
    let stream = match tokio::time::timeout(TLS_TIMEOUT, handshake).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(message)) => return Finding::new(Health::Degraded, message),
        Err(_) => {
            return Finding::new(
                Health::Degraded,
                format!(
                    "no TLS handshake within {}",
                    humantime::format_duration(TLS_TIMEOUT)
                ),
            );
        }
    };
    let latency_ms = millis(started.elapsed());
    let (_, connection) = stream.get_ref();
    let Some(leaf) = connection.peer_certificates().and_then(|c| c.first()) else {
        return Finding::new(Health::Degraded, "the server sent no certificate");
    };
    let not_after = match x509_parser::parse_x509_certificate(leaf.as_ref()) {
        Ok((_, cert)) => cert.validity().not_after.timestamp(),
        Err(e) => {
            return Finding::new(
                Health::Degraded,
                format!("cannot read the certificate: {e}"),
            );
        }
    };
    let days_left = days_until(not_after, unix_now());
    let mut finding = expiry_verdict(days_left, *warn_days);
    finding.latency_ms = Some(latency_ms);
    finding
}

/// Whole days from `now` to `not_after` (both Unix seconds), rounded down; negative once past.
fn days_until(not_after: i64, now: i64) -> i64 {
    (not_after - now).div_euclid(SECONDS_PER_DAY)
}

/// Healthy with at least `warn_days` left, else Degraded, saying so.
fn expiry_verdict(days_left: i64, warn_days: u32) -> Finding {
    let mut finding = if days_left < i64::from(warn_days) {
        Finding::new(
            Health::Degraded,
            format!("certificate expires in {days_left} days (fewer than warn_days {warn_days})"),
        )
    } else {
        Finding::new(
            Health::Healthy,
            format!("certificate expires in {days_left} days"),
        )
    };
    finding.days_left = Some(days_left);
    finding
}

/// Why a handshake failed, in words (the certificate problems people meet most, else rustls').
fn handshake_failure(error: &std::io::Error) -> String {
    use rustls::CertificateError as C;
    let Some(rustls_error) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return error.to_string();
    };
    match rustls_error {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "certificate not trusted (unknown issuer; add its CA as probes.ca_file)".into()
        }
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "certificate expired".into()
        }
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => "certificate not valid for this host name".into(),
        other => other.to_string(),
    }
}

async fn backup_freshness(check: &ProbeCheck, s3: Option<&S3Client>) -> Finding {
    let ProbeCheck::BackupFreshness {
        bucket,
        prefix,
        max_age_secs,
    } = check
    else {
        return Finding::new(Health::Unknown, "not a backup_freshness probe");
    };
    let Some(s3) = s3 else {
        return Finding::new(
            Health::Unknown,
            "no S3 configured (AWS_ENDPOINT_URL and credentials): backup freshness cannot be checked",
        );
    };
    let newest = match s3.newest_object(bucket, prefix).await {
        Ok(newest) => newest,
        Err(e) => {
            return Finding::new(
                Health::Degraded,
                format!("listing failed: {}", error_chain(&e)),
            );
        }
    };
    let Some((key, modified)) = newest else {
        return Finding::new(
            Health::Degraded,
            format!("no object under {bucket}/{prefix}"),
        );
    };
    // An object dated in the future (clock skew) is as fresh as can be.
    let age = SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default()
        .as_secs();
    freshness_verdict(&key, age, *max_age_secs)
}

/// Healthy when the newest object (`key`, `age` seconds old) is younger than `max_age`.
fn freshness_verdict(key: &str, age: u64, max_age: u64) -> Finding {
    let shown = |secs: u64| humantime::format_duration(Duration::from_secs(secs)).to_string();
    let mut finding = if age < max_age {
        Finding::new(
            Health::Healthy,
            format!("newest object {key} is {} old", shown(age)),
        )
    } else {
        Finding::new(
            Health::Degraded,
            format!(
                "newest object {key} is {} old, older than max_age {}",
                shown(age),
                shown(max_age)
            ),
        )
    };
    finding.age_seconds = Some(age);
    finding
}

/// `url` without userinfo, query or fragment (they may hold credentials); unparsable URLs are
/// cut at the first `?`/`#` and after any `@`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string()
        }
        Err(_) => {
            let cut = url.split(['?', '#']).next().unwrap_or_default();
            match cut.split_once("://") {
                Some((scheme, rest)) => {
                    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
                    format!("{scheme}://{rest}")
                }
                None => cut.rsplit_once('@').map_or(cut, |(_, r)| r).to_string(),
            }
        }
    }
}

fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_messages_lose_userinfo_query_and_fragment() {
        assert_eq!(
            redact_url("https://admin:hunter2@svc.example.org:8443/health?token=s3cr3t#x"),
            "https://svc.example.org:8443/health"
        );
        assert_eq!(
            redact_url("https://svc.example.org/health"),
            "https://svc.example.org/health"
        );
        let broken = redact_url("ht!tp://user:pw@host/x?key=v");
        assert!(
            !broken.contains("pw") && !broken.contains("key=v"),
            "{broken}"
        );
    }

    #[test]
    fn days_left_round_down_and_go_negative_once_expired() {
        let now = 1_000_000_000;
        assert_eq!(days_until(now + 10 * SECONDS_PER_DAY, now), 10);
        assert_eq!(days_until(now + 10 * SECONDS_PER_DAY - 5, now), 9);
        assert_eq!(days_until(now - 1, now), -1);
    }

    #[test]
    fn a_certificate_is_degraded_below_warn_days_and_healthy_at_or_above() {
        let near = expiry_verdict(9, 30);
        assert_eq!(near.health, Health::Degraded);
        assert!(
            near.message.contains("fewer than warn_days 30"),
            "{}",
            near.message
        );
        assert_eq!(near.days_left, Some(9));
        assert_eq!(expiry_verdict(30, 30).health, Health::Healthy);
        assert_eq!(expiry_verdict(29, 30).health, Health::Degraded);
    }

    #[test]
    fn a_backup_is_fresh_only_while_younger_than_max_age() {
        assert_eq!(freshness_verdict("db/a", 299, 300).health, Health::Healthy);
        let stale = freshness_verdict("db/a", 300, 300);
        assert_eq!(stale.health, Health::Degraded);
        assert!(
            stale.message.contains("older than max_age 5m"),
            "{}",
            stale.message
        );
        assert_eq!(stale.age_seconds, Some(300));
    }

    #[tokio::test]
    async fn backup_freshness_without_s3_is_unknown_and_says_why() {
        let probe = Probe {
            name: None,
            interval_secs: 30,
            check: ProbeCheck::BackupFreshness {
                bucket: "b".into(),
                prefix: "db/".into(),
                max_age_secs: 300,
            },
        };
        let status = check(&probe, None, None).await;
        assert_eq!(status.health, Health::Unknown);
        assert!(
            status.message.contains("no S3 configured"),
            "{}",
            status.message
        );
        assert_eq!(status.target, "b/db/");
    }
}
