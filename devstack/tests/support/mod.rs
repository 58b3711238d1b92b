//! What the devstack's HTTP-level tests share: a devstack with fast simulated time and a client.
#![allow(dead_code)]

use std::sync::Once;
use std::time::Duration;

use drover_devstack::{Devstack, DevstackConfig};

/// A devstack with fast simulated time and no seed.
pub async fn fast_devstack() -> Devstack {
    Devstack::start(DevstackConfig {
        time_scale: 0.01,
        ..DevstackConfig::default()
    })
    .await
    .unwrap_or_else(|e| panic!("devstack starts: {e}"))
}

/// An HTTP client for tests. reqwest is built without a default TLS crypto provider and panics
/// without one, even for plain http: install rustls' ring provider first.
pub fn http_client() -> reqwest::Client {
    static CRYPTO: Once = Once::new();
    CRYPTO.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap_or_else(|e| panic!("http client: {e}"))
}
