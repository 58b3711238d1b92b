//! The Consul HTTP client: configuration like the `consul` CLI, config entries listed with
//! blocking queries and written with `cas`, retries on transient failures only.

mod client;
mod config;
mod entry;
mod error;

pub use crate::providers::nomad::{Indexed, QueryOptions};
pub use client::{ConsulClient, next_blocking_index};
pub use config::ConsulConfig;
pub use entry::{ConfigEntry, normalize_for_diff};
pub use error::ConsulError;
