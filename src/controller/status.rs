//! `AppStatus`: sync status × health, the revision and the last outcome, per app.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::health::Health;

/// Whether the cluster matches Git.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncStatus {
    /// Everything matches.
    Synced,
    /// Something differs (and was not, or could not be, applied).
    OutOfSync,
    /// The app's files have errors; nothing was applied.
    InvalidSpec,
    /// Not yet known (live state still loading, dependencies not ready).
    Unknown,
}

/// The result of the last sync that wrote or failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncOutcome {
    /// `succeeded`, `failed`, `conflict`, `waiting`.
    pub result: String,
    /// The revision it applied.
    pub revision: String,
    /// Lines like `update nomad_job/default/web`.
    pub changes: Vec<String>,
    /// Problems, one per line.
    pub problems: Vec<String>,
    /// When it finished.
    #[serde(with = "unix_seconds")]
    pub at: SystemTime,
}

/// One resource's state in an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceStatus {
    /// `nomad_job/default/web`.
    pub id: String,
    /// `create`, `update`, `delete`, `unchanged`, `not-managed`.
    pub change: String,
    /// Why it needs attention (`git_changed`, `live_changed`, …).
    pub reason: String,
    /// Its health.
    pub health: Health,
    /// What decided the health.
    pub message: String,
    /// The pending diff, if it is out of sync (secrets never appear here).
    pub diff: Option<String>,
}

/// The one read model of an app, published on every reconcile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppStatus {
    /// App name.
    pub name: String,
    /// The revision in force (a pin, or the branch head).
    pub revision: String,
    /// Pinned revision (rollback), if any.
    pub pinned: Option<String>,
    /// Sync status.
    pub sync: SyncStatus,
    /// Health.
    pub health: Health,
    /// What the controller is doing (`synced`, `waiting for dependency minio`, …); derived.
    pub phase: String,
    /// Per resource.
    pub resources: Vec<ResourceStatus>,
    /// Errors (spec diagnostics, planning failures).
    pub errors: Vec<String>,
    /// Warnings from the app's files (a field not supported yet): shown, never blocking.
    /// (Absent from an older drover's answer.)
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The last sync that wrote or failed.
    pub last_sync: Option<SyncOutcome>,
    /// Automatic sync on.
    pub auto_sync: bool,
    /// When this status was computed.
    #[serde(with = "unix_seconds")]
    pub observed_at: SystemTime,
}

impl AppStatus {
    /// A status with nothing known yet.
    pub fn unknown(name: &str, revision: &str, phase: &str) -> AppStatus {
        AppStatus {
            name: name.to_string(),
            revision: revision.to_string(),
            pinned: None,
            sync: SyncStatus::Unknown,
            health: Health::Unknown,
            phase: phase.to_string(),
            resources: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            last_sync: None,
            auto_sync: true,
            observed_at: SystemTime::now(),
        }
    }
}

/// What is wrong with the repository as a whole rather than one app (an invalid head revision, a
/// refused prune of removed apps): published beside the app statuses, shown as a banner.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RepoStatus {
    /// The head revision these problems were derived from.
    pub revision: Option<String>,
    /// One line each: `revision … is invalid: …`, `prune refused: …`.
    pub problems: Vec<String>,
}

mod unix_seconds {
    use std::time::{SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let secs = u64::deserialize(d)?;
        Ok(UNIX_EPOCH + std::time::Duration::from_secs(secs))
    }
}
