//! The Nomad HTTP client.
