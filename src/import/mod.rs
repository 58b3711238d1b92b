//! Importers: turn what a user already has (a Terraform configuration, a running cluster) into a
//! drover desired-state repository.

pub mod nomad;
pub mod terraform;
