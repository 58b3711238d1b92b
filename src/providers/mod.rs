//! Typed clients for the real APIs; the only code that knows wire formats.

pub mod consul;
pub mod http;
pub mod nomad;
pub mod s3;
pub mod vault;

use std::sync::Once;

/// Install rustls' ring crypto provider once, before any HTTPS-capable client is built
/// (reqwest is built without aws-lc; without a provider it panics on first use).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
