//! Fault injection (latency, 5xx, timeouts, no leader, 403) per path pattern, and the request log.
//!
//! OWNER: devstack-consul-vault helper. Skeleton only.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::{DevState, System};

/// The faults currently armed.
#[derive(Debug, Default)]
pub struct FaultTable {}

impl FaultTable {
    /// Disarm every fault.
    pub fn clear(&self) {}
}

/// Every request the devstack served.
#[derive(Debug, Default)]
pub struct RequestLog {}

impl RequestLog {
    /// Forget all entries.
    pub fn clear(&self) {}
}

/// Logs the request and applies any matching fault before the API handler runs.
pub async fn middleware(
    State((_state, _system)): State<(Arc<DevState>, System)>,
    request: Request,
    next: Next,
) -> Response {
    next.run(request).await
}
