//! The `--seed FILE` format: nodes, Vault secrets, CSI plugins, ACL tokens to start with.
//!
//! OWNER: devstack-consul-vault helper. Skeleton only.

use std::path::Path;

use super::DevstackError;

/// Initial devstack state, read from YAML.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {}

impl Seed {
    /// Read and parse a seed file.
    pub fn from_file(path: &Path) -> Result<Seed, DevstackError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DevstackError::Seed(format!("{}: {e}", path.display())))?;
        serde_yaml_ng::from_str(&text)
            .map_err(|e| DevstackError::Seed(format!("{}: {e}", path.display())))
    }
}
