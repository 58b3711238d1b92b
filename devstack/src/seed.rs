//! The `--seed FILE` format: nodes, Vault secrets, CSI plugins, ACL tokens to start with.
//!
//! Shared by the Nomad, Consul and Vault parts of the devstack; extend with care.

use std::collections::BTreeMap;
use std::path::Path;

use super::DevstackError;

/// Initial devstack state, read from YAML (snake_case keys; unknown keys are errors).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Nomad client nodes; when absent, three nodes in dc1 (one amd64, two arm64).
    #[serde(default)]
    pub nodes: Option<Vec<SeedNode>>,
    /// CSI plugins reported healthy without a plugin job (a shortcut; jobs with `csi_plugin` work too).
    #[serde(default)]
    pub csi_plugins: Vec<SeedCsiPlugin>,
    /// Nomad namespaces besides `default`.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Vault secrets written at start.
    #[serde(default)]
    pub vault_secrets: Vec<SeedVaultSecret>,
    /// Extra Vault KV mounts (`nomad` → KV v2) besides the dev-mode `secret/`.
    #[serde(default)]
    pub vault_mounts: Vec<SeedVaultMount>,
    /// ACL tokens for Nomad and Consul (besides the root/management token).
    #[serde(default)]
    pub acl_tokens: Vec<SeedToken>,
}

/// A simulated Nomad client node.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedNode {
    /// Node name (also its Consul catalog node).
    pub name: String,
    /// Datacenter (default `dc1`).
    #[serde(default = "default_dc")]
    pub datacenter: String,
    /// `amd64` or `arm64` (the `${attr.cpu.arch}` attribute).
    #[serde(default = "default_arch")]
    pub arch: String,
    /// Node pool (default `default`).
    #[serde(default = "default_pool")]
    pub node_pool: String,
    /// Node class.
    #[serde(default)]
    pub node_class: String,
    /// CPU in MHz available to tasks.
    #[serde(default = "default_cpu")]
    pub cpu_mhz: u64,
    /// Memory in MB available to tasks.
    #[serde(default = "default_memory")]
    pub memory_mb: u64,
    /// Node meta (`${meta.x}`).
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    /// IP address (default 10.0.0.N, never contacted).
    #[serde(default)]
    pub address: Option<String>,
}

/// A CSI plugin to report as present.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedCsiPlugin {
    /// Plugin ID (`glusterfs`).
    pub id: String,
    /// Provider name reported by the plugin.
    #[serde(default)]
    pub provider: Option<String>,
    /// Whether the plugin has (and needs) a healthy controller; volume create needs one.
    #[serde(default = "yes")]
    pub controller: bool,
    /// Whether the plugin is healthy.
    #[serde(default = "yes")]
    pub healthy: bool,
}

/// A Vault KV secret.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedVaultSecret {
    /// Mount (`secret`, `nomad`).
    pub mount: String,
    /// Path under the mount.
    pub path: String,
    /// Key/value pairs.
    pub data: BTreeMap<String, serde_json::Value>,
}

/// A Vault KV mount.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedVaultMount {
    /// Mount path without slashes.
    pub path: String,
    /// KV version, 1 or 2.
    #[serde(default = "two")]
    pub version: u8,
}

/// An ACL token.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedToken {
    /// The secret presented in `X-Nomad-Token` / `X-Consul-Token`.
    pub secret_id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// `nomad` or `consul`.
    pub system: String,
    /// Namespaces (Nomad) the token may use; empty with `management: false` means none.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Capabilities granted in those namespaces (`read-job`, `submit-job`, `list-jobs`, …).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// A management token may do everything.
    #[serde(default)]
    pub management: bool,
}

fn default_dc() -> String {
    "dc1".to_string()
}
fn default_arch() -> String {
    "amd64".to_string()
}
fn default_pool() -> String {
    "default".to_string()
}
fn default_cpu() -> u64 {
    4000
}
fn default_memory() -> u64 {
    8192
}
fn yes() -> bool {
    true
}
fn two() -> u8 {
    2
}

impl Seed {
    /// Read and parse a seed file.
    pub fn from_file(path: &Path) -> Result<Seed, DevstackError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DevstackError::Seed(format!("{}: {e}", path.display())))?;
        Seed::from_yaml(&text).map_err(|e| DevstackError::Seed(format!("{}: {e}", path.display())))
    }

    /// Parse seed YAML.
    pub fn from_yaml(text: &str) -> Result<Seed, serde_yaml_ng::Error> {
        serde_yaml_ng::from_str(text)
    }
}
