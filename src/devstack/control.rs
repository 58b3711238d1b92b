//! The control API under `/_devstack/`: fault injection, request log, seeding, reset.
//!
//! OWNER: devstack-consul-vault helper. Skeleton only.

use std::sync::Arc;

use axum::Router;

use super::DevState;

/// Routes mounted at `/_devstack` on all three servers.
pub fn router() -> Router<Arc<DevState>> {
    Router::new().merge(super::nomad::control_routes())
}
