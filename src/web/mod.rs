//! The status page, JSON API and health endpoint (axum).
