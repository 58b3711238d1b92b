//! The Nomad HTTP client: configuration like the `nomad` CLI, typed responses, retries on
//! transient failures only, blocking queries.

mod client;
mod config;
mod error;
pub mod job_body;
pub mod types;
mod variables;

pub use client::{EventStream, Indexed, NomadClient, QueryOptions, RegisterOptions};
pub use config::NomadConfig;
pub use error::NomadError;
pub use variables::{Variable, VariableMetadata, VariableWrite};
