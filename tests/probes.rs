//! Probes (`probes:` in app.yaml) against local servers on loopback ports chosen at run time:
//! `http` (status, timeout, redirects), `tls` (a certificate generated here with a chosen expiry),
//! `backup_freshness` (the embedded S3 with objects of known age), and end to end: a probe's
//! failure turns its app Degraded on the status and the API, and its recovery Healthy again.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use common::{TestEnv, app_yaml, web_jobspec};
use drover::controller::ProbeKind;
use drover::desired::{Probe, ProbeCheck};
use drover::health::Health;
use drover::health::probes::{ProbeClients, check};
use drover::providers::s3::{S3Client, S3Config, StaticCredentials};
use drover_devstack::s3::S3Server;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::AsyncReadExt;

// ---------------------------------------------------------------------------------------------
// HTTP

/// A local HTTP server: `/ok` 200, `/fail` 500, `/slow` answers after a minute, `/moved`
/// redirects to `/ok`, `/flip` answers the status in `flip`.
async fn http_server(flip: Arc<AtomicU16>) -> SocketAddr {
    let app = Router::new()
        .route("/ok", get(|| async { StatusCode::OK }))
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                StatusCode::OK
            }),
        )
        .route("/moved", get(|| async { Redirect::to("/ok") }))
        .route(
            "/flip",
            get(move || {
                let status = flip.load(Ordering::SeqCst);
                async move {
                    StatusCode::from_u16(status)
                        .unwrap_or(StatusCode::IM_A_TEAPOT)
                        .into_response()
                }
            }),
        );
    common::serve_local(app).await
}

fn http_probe(url: String, timeout_secs: u64) -> Probe {
    Probe {
        name: None,
        interval_secs: 30,
        check: ProbeCheck::Http {
            url,
            expect_status: 200,
            timeout_secs,
        },
    }
}

fn system_clients() -> ProbeClients {
    ProbeClients::new(None).unwrap_or_else(|e| panic!("probe clients: {e}"))
}

#[tokio::test]
async fn http_probes_check_the_status_time_out_and_do_not_follow_redirects() {
    let addr = http_server(Arc::new(AtomicU16::new(200))).await;
    let clients = system_clients();
    let run = |path: &str, timeout: u64| {
        let probe = http_probe(format!("http://{addr}{path}"), timeout);
        let clients = clients.clone();
        async move { check(&probe, Some(&clients), None).await }
    };

    let ok = run("/ok", 10).await;
    assert_eq!(ok.health, Health::Healthy, "{ok:?}");
    assert_eq!(ok.kind, ProbeKind::Http);
    assert!(ok.message.starts_with("200 in "), "{}", ok.message);
    assert!(ok.latency_ms.is_some() && ok.checked_at.is_some(), "{ok:?}");

    let failed = run("/fail", 10).await;
    assert_eq!(failed.health, Health::Degraded, "{failed:?}");
    assert!(
        failed.message.starts_with("500, expected 200"),
        "{}",
        failed.message
    );

    let moved = run("/moved", 10).await;
    assert_eq!(moved.health, Health::Degraded, "{moved:?}");
    assert!(
        moved.message.starts_with("303, expected 200"),
        "{}",
        moved.message
    );

    let started = std::time::Instant::now();
    let slow = run("/slow", 1).await;
    assert_eq!(slow.health, Health::Degraded, "{slow:?}");
    assert_eq!(slow.message, "no answer within 1s");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout held"
    );
}

#[tokio::test]
async fn an_http_probe_never_shows_the_urls_credentials_or_query() {
    let addr = http_server(Arc::new(AtomicU16::new(200))).await;
    // A closed port: the request fails, and the error must not echo the URL.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let closed_addr = closed.local_addr().unwrap_or_else(|e| panic!("{e}"));
    drop(closed);
    for url in [
        format!("http://probe:pw-s3cret@{addr}/fail?token=tk-s3cret"),
        format!("http://probe:pw-s3cret@{closed_addr}/x?token=tk-s3cret"),
    ] {
        let status = check(&http_probe(url, 5), Some(&system_clients()), None).await;
        let shown = serde_json::to_string(&status).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status.health, Health::Degraded, "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(status.target.starts_with("http://127.0.0.1:"), "{shown}");
    }
}

// ---------------------------------------------------------------------------------------------
// TLS

/// A test CA and a leaf certificate for 127.0.0.1 and localhost it signed.
struct TestPki {
    ca_pem: String,
    leaf: CertificateDer<'static>,
    leaf_key: PrivateKeyDer<'static>,
}

/// A leaf valid from `from` to `until` (relative to now).
fn pki(from: time::Duration, until: time::Duration) -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let fail = |e: rcgen::Error| -> ! { panic!("rcgen: {e}") };
    let ca_key = KeyPair::generate().unwrap_or_else(|e| fail(e));
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail(e));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "drover probes test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap_or_else(|e| fail(e));
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap_or_else(|e| fail(e));
    let mut leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap_or_else(|e| fail(e));
    let now = time::OffsetDateTime::now_utc();
    leaf_params.not_before = now + from;
    leaf_params.not_after = now + until;
    let leaf = leaf_params
        .signed_by(&leaf_key, &issuer)
        .unwrap_or_else(|e| fail(e));
    TestPki {
        ca_pem: ca.pem(),
        leaf: leaf.der().clone(),
        leaf_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    }
}

/// A local TLS server presenting `pki`'s leaf; each connection is held until the client closes.
async fn https_server(pki: &TestPki) -> SocketAddr {
    drover::providers::install_crypto_provider();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![pki.leaf.clone()], pki.leaf_key.clone_key())
        .unwrap_or_else(|e| panic!("server config: {e}"));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut byte = [0u8; 1];
                    let _ = tls.read(&mut byte).await;
                }
            });
        }
    });
    addr
}

fn tls_probe(addr: SocketAddr, warn_days: u32) -> Probe {
    Probe {
        name: Some("cert".into()),
        interval_secs: 30,
        check: ProbeCheck::Tls {
            host: "127.0.0.1".into(),
            port: addr.port(),
            warn_days,
        },
    }
}

/// Probe clients trusting the test CA (drover.yaml's `probes.ca_file`).
fn trusting(pki: &TestPki, dir: &Path) -> ProbeClients {
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap_or_else(|e| panic!("{e}"));
    ProbeClients::new(Some(&ca_file)).unwrap_or_else(|e| panic!("probe clients: {e}"))
}

#[tokio::test]
async fn a_tls_probe_counts_the_days_left_and_warns_below_warn_days() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pki = pki(time::Duration::days(-1), time::Duration::days(10));
    let addr = https_server(&pki).await;
    let clients = trusting(&pki, dir.path());

    let near = check(&tls_probe(addr, 30), Some(&clients), None).await;
    assert_eq!(near.kind, ProbeKind::Tls);
    assert_eq!(near.name, "cert");
    assert_eq!(near.target, format!("127.0.0.1:{}", addr.port()));
    assert!(matches!(near.days_left, Some(9 | 10)), "{near:?}");
    assert_eq!(near.health, Health::Degraded, "{near:?}");
    assert!(
        near.message.contains("fewer than warn_days 30"),
        "{}",
        near.message
    );

    let fine = check(&tls_probe(addr, 5), Some(&clients), None).await;
    assert_eq!(fine.health, Health::Healthy, "{fine:?}");
    assert!(matches!(fine.days_left, Some(9 | 10)), "{fine:?}");
    assert!(fine.latency_ms.is_some(), "{fine:?}");
}

#[tokio::test]
async fn a_tls_probe_fails_on_an_untrusted_or_expired_certificate() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let valid = pki(time::Duration::days(-1), time::Duration::days(100));
    let addr = https_server(&valid).await;
    // The system roots alone do not know the test CA.
    let untrusted = check(&tls_probe(addr, 5), Some(&system_clients()), None).await;
    assert_eq!(untrusted.health, Health::Degraded, "{untrusted:?}");
    assert!(
        untrusted
            .message
            .contains("TLS handshake failed: certificate not trusted"),
        "{}",
        untrusted.message
    );
    assert_eq!(untrusted.days_left, None);

    let expired = pki(time::Duration::days(-20), time::Duration::days(-2));
    let addr = https_server(&expired).await;
    let clients = trusting(&expired, dir.path());
    let status = check(&tls_probe(addr, 5), Some(&clients), None).await;
    assert_eq!(status.health, Health::Degraded, "{status:?}");
    assert!(
        status.message.contains("certificate expired"),
        "{}",
        status.message
    );
}

#[test]
fn a_ca_file_without_a_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("ca.pem");
    std::fs::write(&file, "not a certificate\n").unwrap_or_else(|e| panic!("{e}"));
    let error = ProbeClients::new(Some(&file)).err().map(|e| e.to_string());
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("no usable PEM certificate")),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Backup freshness

const USER: &str = "drover-test";
const PASSWORD: &str = "drover-test-password";
const BUCKET: &str = "backups";

/// The embedded s3s-fs (as `drover demo` runs it), its root directory and a client.
async fn embedded_s3() -> (tempfile::TempDir, S3Server, S3Client) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = S3Server::start(
        "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        dir.path(),
        USER,
        PASSWORD,
    )
    .await
    .unwrap_or_else(|e| panic!("s3s-fs: {e}"));
    let config = S3Config {
        endpoint: Some(server.url()),
        credentials: Some(StaticCredentials::new(USER, PASSWORD)),
        max_retries: 1,
        request_timeout: Duration::from_secs(5),
        ..S3Config::default()
    };
    let client = S3Client::new(config).await;
    client
        .create(BUCKET)
        .await
        .unwrap_or_else(|e| panic!("create bucket: {e}"));
    (dir, server, client)
}

/// Put `key` through S3, then date it `age` ago: s3s-fs reports a file's mtime as LastModified.
async fn put_aged(s3: &S3Client, root: &Path, key: &str, age: Duration) {
    s3.sdk()
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"backup"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e}"));
    age_file(&root.join(BUCKET).join(key), age);
}

fn age_file(path: &Path, age: Duration) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.set_modified(SystemTime::now() - age)
        .unwrap_or_else(|e| panic!("mtime: {e}"));
}

fn backup_probe(prefix: &str, max_age_secs: u64) -> Probe {
    Probe {
        name: None,
        interval_secs: 30,
        check: ProbeCheck::BackupFreshness {
            bucket: BUCKET.into(),
            prefix: prefix.into(),
            max_age_secs,
        },
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_freshness_reads_the_newest_objects_age_under_the_prefix() {
    let (root, _server, s3) = embedded_s3().await;
    put_aged(&s3, root.path(), "fresh/old.db", Duration::from_secs(3600)).await;
    put_aged(&s3, root.path(), "fresh/new.db", Duration::from_secs(60)).await;
    put_aged(&s3, root.path(), "stale/only.db", Duration::from_secs(7200)).await;
    // Newer than anything under fresh/, but outside the prefix.
    put_aged(&s3, root.path(), "other/newest.db", Duration::from_secs(1)).await;

    let fresh = check(&backup_probe("fresh/", 300), None, Some(&s3)).await;
    assert_eq!(fresh.kind, ProbeKind::BackupFreshness);
    assert_eq!(fresh.target, "backups/fresh/");
    assert_eq!(fresh.health, Health::Healthy, "{fresh:?}");
    assert!(fresh.message.contains("fresh/new.db"), "{}", fresh.message);
    assert!(
        fresh.age_seconds.is_some_and(|a| (60..120).contains(&a)),
        "{fresh:?}"
    );

    let stale = check(&backup_probe("stale/", 300), None, Some(&s3)).await;
    assert_eq!(stale.health, Health::Degraded, "{stale:?}");
    assert!(
        stale.age_seconds.is_some_and(|a| (7200..7300).contains(&a)),
        "{stale:?}"
    );
    assert!(
        stale.message.contains("older than max_age 5m"),
        "{}",
        stale.message
    );

    let empty = check(&backup_probe("nothing/", 300), None, Some(&s3)).await;
    assert_eq!(empty.health, Health::Degraded, "{empty:?}");
    assert_eq!(empty.message, "no object under backups/nothing/");

    let no_s3 = check(&backup_probe("fresh/", 300), None, None).await;
    assert_eq!(no_s3.health, Health::Unknown, "{no_s3:?}");
    assert!(
        no_s3.message.contains("no S3 configured"),
        "{}",
        no_s3.message
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_freshness_reads_every_page_of_the_listing() {
    let (root, _server, s3) = embedded_s3().await;
    put_aged(&s3, root.path(), "db/a-0000", Duration::from_secs(7200)).await;
    // 1,000 old objects fill the first page (ListObjectsV2 returns 1,000 keys at most); the
    // fresh one sorts last, on the second page. Written into s3s-fs's directory directly.
    let dir = root.path().join(BUCKET).join("db");
    for i in 1..1000 {
        let path = dir.join(format!("a-{i:04}"));
        std::fs::write(&path, b"old").unwrap_or_else(|e| panic!("{e}"));
        age_file(&path, Duration::from_secs(7200));
    }
    put_aged(&s3, root.path(), "db/z-latest", Duration::from_secs(30)).await;
    let status = check(&backup_probe("db/", 300), None, Some(&s3)).await;
    assert_eq!(status.health, Health::Healthy, "{status:?}");
    assert!(status.message.contains("db/z-latest"), "{}", status.message);
}

// ---------------------------------------------------------------------------------------------
// End to end

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_probe_turns_its_app_degraded_and_its_recovery_healthy() {
    let flip = Arc::new(AtomicU16::new(200));
    let addr = http_server(flip.clone()).await;
    let mut env = TestEnv::new().await;
    let probes = format!(
        "probes:\n  - {{ http: {{ url: \"http://probe:pw-s3cret@{addr}/flip?token=tk-s3cret\", name: api, interval: 1s }} }}\n"
    );
    env.write("apps/web/app.yaml", &app_yaml("web", &probes));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    env.commit("web with a probe");
    // No resync within the test: a probe's change must reach the status by itself.
    let mut settings = env.settings();
    settings.controller.resync_interval = Duration::from_secs(600);
    env.start_drover_with(settings).await;

    let healthy = env
        .wait_app("web", "Healthy with its probe passing", |s| {
            s.health == Health::Healthy
                && s.probes.len() == 1
                && s.probes[0].health == Health::Healthy
        })
        .await;
    assert!(
        healthy.warnings.is_empty(),
        "probes are supported: {healthy:?}"
    );
    assert_eq!(healthy.probes[0].name, "api");

    flip.store(500, Ordering::SeqCst);
    let degraded = env
        .wait_app("web", "Degraded by its probe", |s| {
            s.health == Health::Degraded && s.probes[0].health == Health::Degraded
        })
        .await;
    assert!(
        degraded.probes[0].message.starts_with("500, expected 200"),
        "{degraded:?}"
    );
    assert!(
        degraded
            .resources
            .iter()
            .all(|r| r.health == Health::Healthy),
        "the resources themselves are fine: {degraded:?}"
    );
    let api = env
        .http
        .get(format!("{}/api/v1/apps/web", env.drover_url()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let json: serde_json::Value = serde_json::from_str(&api).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json["health"], "Degraded", "{api}");
    assert_eq!(json["probes"][0]["health"], "Degraded", "{api}");
    assert_eq!(json["probes"][0]["kind"], "http", "{api}");
    assert!(!api.contains("s3cret"), "no credentials in the API: {api}");

    flip.store(200, Ordering::SeqCst);
    env.wait_app("web", "Healthy again", |s| {
        s.health == Health::Healthy && s.probes[0].health == Health::Healthy
    })
    .await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn probes_restart_when_changed_run_from_the_last_good_revision_and_stop_when_gone() {
    let flip = Arc::new(AtomicU16::new(200));
    let addr = http_server(flip.clone()).await;
    let mut env = TestEnv::new().await;
    let probes =
        format!("probes:\n  - {{ http: {{ url: \"http://{addr}/flip\", interval: 1s }} }}\n");
    env.write("apps/web/app.yaml", &app_yaml("web", &probes));
    env.write("apps/web/job.nomad.hcl", &web_jobspec("web", "nginx:1.27"));
    env.commit("web with a probe");
    env.start_drover().await;
    env.wait_app("web", "probe passing", |s| {
        s.probes
            .first()
            .is_some_and(|p| p.health == Health::Healthy)
    })
    .await;

    // A new revision that changes the probes restarts them: the new probe's results replace the
    // old one's.
    let failing = format!(
        "probes:\n  - {{ http: {{ url: \"http://{addr}/fail\", name: renamed, interval: 1s }} }}\n"
    );
    env.write("apps/web/app.yaml", &app_yaml("web", &failing));
    env.commit("web: another probe");
    env.wait_app("web", "Degraded by the new probe", |s| {
        s.probes.len() == 1
            && s.probes[0].name == "renamed"
            && s.probes[0].health == Health::Degraded
            && s.health == Health::Degraded
    })
    .await;
    env.write("apps/web/app.yaml", &app_yaml("web", &probes));
    env.commit("web: the first probe again");
    env.wait_app("web", "the first probe passing again", |s| {
        s.probes.len() == 1
            && s.probes[0].target.ends_with("/flip")
            && s.probes[0].health == Health::Healthy
            && s.health == Health::Healthy
    })
    .await;

    // A broken app.yaml: the app is InvalidSpec, its last good probes go on.
    env.write(
        "apps/web/app.yaml",
        &app_yaml("web", &format!("{probes}bogus: 1\n")),
    );
    let broken = env.commit("broken app.yaml");
    env.wait_app("web", "InvalidSpec", |s| {
        s.revision == broken && format!("{:?}", s.sync) == "InvalidSpec"
    })
    .await;
    flip.store(500, Ordering::SeqCst);
    env.wait_app("web", "Degraded by its probe while InvalidSpec", |s| {
        s.revision == broken && s.health == Health::Degraded
    })
    .await;

    env.remove("apps/web");
    let removed = env.commit("web leaves Git");
    env.wait_fetched(&removed).await;
    let running = env.drover.as_ref().unwrap_or_else(|| panic!("drover runs"));
    let ctx = running.ctx.clone();
    env.wait_app("web", "removed from Git", |s| {
        s.phase.to_string().starts_with("removed from Git")
    })
    .await;
    assert!(
        ctx.probes.results("web").is_empty(),
        "the app's probes stopped"
    );
    env.shutdown().await;
}
