//! Typed clients for the real APIs; the only code that knows wire formats.

pub mod nomad;
