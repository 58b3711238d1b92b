//! The simulated Vault server: KV v2 and v1 mounts, sys/mounts, token lookup, AppRole and JWT
//! login, Vault's JSON error bodies.
//!
//! OWNER: devstack-consul-vault helper. Skeleton only.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use serde_json::Value;

use super::{DevState, DevstackConfig};

/// Vault's in-memory state.
pub struct VaultState {}

impl VaultState {
    /// Dev-mode state: a KV v2 mount at `secret/`, the root token.
    pub fn new(_config: &DevstackConfig) -> Self {
        VaultState {}
    }

    /// Forget everything and re-apply the seed.
    pub fn reset(&self, _config: &DevstackConfig) {}

    /// Read a secret's current data the way consul-template does for `{{ with secret "p" }}`:
    /// resolve the mount, add `data/` for KV v2, treat deleted/destroyed versions as missing.
    pub fn template_read(&self, _path: &str) -> Option<BTreeMap<String, Value>> {
        None
    }
}

/// The `/v1/...` routes of the Vault API.
pub fn router() -> Router<Arc<DevState>> {
    Router::new()
}
