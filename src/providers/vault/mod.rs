//! The Vault HTTP client: configuration like the `vault` CLI, token, AppRole or JWT auth, and the one
//! question drover asks Vault: does a KV secret exist and hold these keys? Values are never kept:
//! a read decodes key names only.

mod client;
mod config;
mod error;

pub use client::{Missing, VaultClient};
pub use config::{DEFAULT_JWT_MOUNT, JwtLogin, VaultConfig};
pub use error::VaultError;
