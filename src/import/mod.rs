//! Importers: turn what a user already has into a drover desired-state repository.

pub mod terraform;
