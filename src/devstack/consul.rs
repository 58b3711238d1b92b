//! The simulated Consul server: catalog and health (fed by Nomad allocations), config entries
//! with CAS, KV with sessions, blocking queries with `X-Consul-Index`, optional ACL.
//!
//! OWNER: devstack-consul-vault helper. Skeleton only.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;

use super::{DevState, DevstackConfig};

/// A service instance Nomad registers for an allocation (`_nomad-task-<alloc>-<task>-<svc>-<port>`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceInstance {
    /// Consul service ID.
    pub id: String,
    /// Service name.
    pub name: String,
    /// Tags from the jobspec (Traefik's among them).
    pub tags: Vec<String>,
    /// Service meta; Nomad adds `external-source=nomad`.
    pub meta: BTreeMap<String, String>,
    /// Address the service is reached at.
    pub address: String,
    /// Port the service is reached at.
    pub port: u16,
    /// Catalog node name (the Nomad node's name).
    pub node: String,
    /// `""` for a plain service, `connect-proxy` for a sidecar.
    pub kind: String,
    /// For a sidecar: the service it proxies.
    pub proxy_destination: Option<String>,
    /// The allocation that owns it, so all of an allocation's services go together.
    pub alloc_id: String,
    /// The service's checks.
    pub checks: Vec<ServiceCheck>,
}

/// A check of a [`ServiceInstance`].
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceCheck {
    /// Check ID (`_nomad-check-<hash>`).
    pub check_id: String,
    /// Check name.
    pub name: String,
    /// `http`, `tcp`, `script`, `grpc`, `ttl`.
    pub check_type: String,
    /// `passing`, `warning` or `critical`.
    pub status: String,
    /// Check output text.
    pub output: String,
    /// Go duration string (`30s`).
    pub interval: String,
    /// Go duration string (`5s`).
    pub timeout: String,
    /// For HTTP checks, the URL probed.
    pub http: String,
}

/// Consul's in-memory state.
pub struct ConsulState {}

impl ConsulState {
    /// Empty state.
    pub fn new(_config: &DevstackConfig) -> Self {
        ConsulState {}
    }

    /// Forget everything; keep the agent node.
    pub fn reset(&self, _config: &DevstackConfig) {}

    /// Register (or replace) a catalog node, as a Nomad client's agent would.
    pub fn register_node(&self, _name: &str, _address: &str, _datacenter: &str) {}

    /// Register or replace a service instance.
    pub fn register_instance(&self, _instance: ServiceInstance) {}

    /// Remove every service instance of an allocation.
    pub fn deregister_alloc(&self, _alloc_id: &str) {}

    /// Set the status of every check of an allocation's services (`passing`/`critical`).
    pub fn set_alloc_checks(&self, _alloc_id: &str, _status: &str) {}
}

/// The `/v1/...` routes of the Consul API.
pub fn router() -> Router<Arc<DevState>> {
    Router::new()
}
