//! Health per resource and per app, derived from live facts each time (DESIGN principle 8).
//! This file has the verdicts; each kind's judge is in a file of its own (`nomad_job.rs`,
//! `csi_volume.rs`).

mod bucket;
mod consul_config_entry;
mod csi_volume;
mod nomad_job;
pub mod preflight;
pub mod probes;
pub mod vault_secret;

use serde::{Deserialize, Serialize};

pub use bucket::bucket;
pub use consul_config_entry::consul_config_entry;
pub use csi_volume::csi_volume;
pub use nomad_job::{JobFacts, JobReads, ReadMarks, judge_job};

/// How a resource or app is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Health {
    /// Running as desired.
    Healthy,
    /// Stopped on purpose.
    Suspended,
    /// Not decided yet (nothing observed).
    Unknown,
    /// Converging: a deployment or allocations are in progress.
    Progressing,
    /// Failed allocations or a failed deployment.
    Degraded,
    /// Absent from the cluster.
    Missing,
}

impl Health {
    /// The worse of two (an app is as healthy as its least healthy resource).
    pub fn worst(self, other: Health) -> Health {
        self.max(other)
    }

    /// A state that will not change without something happening (no need to poll).
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            Health::Healthy | Health::Degraded | Health::Missing | Health::Suspended
        )
    }
}

/// A resource's health and the fact that decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    /// The verdict.
    pub health: Health,
    /// Why, for people (`deployment failed: Failed due to unhealthy allocations`).
    pub message: String,
}

impl Assessment {
    fn new(health: Health, message: impl Into<String>) -> Self {
        Assessment {
            health,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_orders_missing_over_degraded_over_progressing() {
        assert_eq!(
            Health::Healthy.worst(Health::Progressing),
            Health::Progressing
        );
        assert_eq!(Health::Degraded.worst(Health::Missing), Health::Missing);
        assert_eq!(Health::Suspended.worst(Health::Healthy), Health::Suspended);
    }
}
