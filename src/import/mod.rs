//! Importers: turn what already exists somewhere else into a desired-state repository.

pub mod nomad;
