//! The simulated Nomad server: state store, HTTP routes, scheduler, deployments, CSI, variables.
//!
//! OWNER: devstack-nomad helper. Skeleton only; see the task description.

pub mod canonicalize;
pub mod diff;
pub mod jobspec;

use std::sync::Arc;

use axum::Router;

use super::{DevState, DevstackConfig};

/// Nomad's in-memory state (jobs, versions, evals, deployments, allocs, nodes, CSI, variables).
pub struct NomadState {}

impl NomadState {
    /// Empty state; [`NomadState::reset`] fills in the seed.
    pub fn new(_config: &DevstackConfig) -> Self {
        NomadState {}
    }

    /// Forget everything and re-apply the seed (default: three nodes in dc1).
    pub fn reset(&self, _config: &DevstackConfig) {}
}

/// The `/v1/...` routes of the Nomad API.
pub fn router() -> Router<Arc<DevState>> {
    Router::new()
}

/// Control-API routes that act on Nomad (fail/heal allocs, drain/lose nodes, seed CSI plugins),
/// mounted under `/_devstack` by `control::router`.
pub fn control_routes() -> Router<Arc<DevState>> {
    Router::new()
}

/// Start the simulated scheduler and clients (stops on `state.shutdown`).
pub fn spawn_background(_state: Arc<DevState>) {}
