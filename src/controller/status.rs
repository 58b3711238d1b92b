//! `AppStatus`: sync status × health, the revision and the last outcome, per app.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize, Serializer};

use crate::health::Health;
use crate::plan::Change;
pub use crate::store::{SyncResult, Trigger};

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

/// What the controller is doing for an app, derived from facts each cycle (never stored). It is
/// served as its sentence (`synced`, `waiting for dependency minio`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// The app's files have errors.
    InvalidSpec,
    /// The live cache has not finished its first listing.
    WaitingForLiveState,
    /// A rollback pin names a revision that cannot be read.
    PinnedRevisionUnavailable,
    /// Planning failed; `permanent` when retrying cannot help before a change.
    PlanFailed {
        /// Not retried until Git or the cluster changes.
        permanent: bool,
    },
    /// A dependency is not Healthy yet.
    WaitingForDependency(String),
    /// Writes of this revision (short ID) are in flight.
    Syncing(String),
    /// A write failed; `permanent` when retrying cannot help before a change.
    SyncFailed {
        /// Not retried until Git or the cluster changes.
        permanent: bool,
    },
    /// A step waits on something (a CSI plugin, say).
    Waiting,
    /// Writes are pending, and why they were not made.
    OutOfSync(Pending),
    /// Everything applied and Healthy.
    Synced,
    /// Everything applied, not yet Healthy.
    WaitingForHealth,
    /// The app left Git while drover still runs what it applied.
    RemovedFromGit(Kept),
}

/// Why pending writes were not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// They will be on the next cycle (or a policy such as `self_heal: false` holds them).
    Writes,
    /// `sync.auto` is off: only a manual sync writes.
    AutoSyncOff,
    /// More than `max_prune_share` of the app would be deleted.
    PruneRefused,
}

/// Why an app that left Git still has resources in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// The revision, or the share of apps that left at once, is not trusted to prune.
    PruneRefused,
    /// Its last policy said `prune: false`.
    PruneOff,
    /// A delete failed; retried.
    PruneFailed,
    /// Some resources were not pruned (ownership, an unreadable last revision).
    NotPruned,
}

/// The phase suffix of a permanent failure: it is not retried on the same facts.
const PERMANENT: &str = "(permanent: retried when Git or the cluster changes, or at the resync)";

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::InvalidSpec => f.write_str("invalid spec"),
            Phase::WaitingForLiveState => f.write_str("waiting for live state"),
            Phase::PinnedRevisionUnavailable => f.write_str("pinned revision unavailable"),
            Phase::PlanFailed { permanent: false } => f.write_str("plan failed"),
            Phase::PlanFailed { permanent: true } => write!(f, "plan failed {PERMANENT}"),
            Phase::WaitingForDependency(dep) => write!(f, "waiting for dependency {dep}"),
            Phase::Syncing(revision) => write!(f, "syncing {revision}"),
            Phase::SyncFailed { permanent: false } => f.write_str("sync failed"),
            Phase::SyncFailed { permanent: true } => write!(f, "sync failed {PERMANENT}"),
            Phase::Waiting => f.write_str("waiting"),
            Phase::OutOfSync(Pending::Writes) => f.write_str("out of sync"),
            Phase::OutOfSync(Pending::AutoSyncOff) => f.write_str("out of sync (auto-sync off)"),
            Phase::OutOfSync(Pending::PruneRefused) => f.write_str("out of sync (prune refused)"),
            Phase::Synced => f.write_str("synced"),
            Phase::WaitingForHealth => f.write_str("waiting for health"),
            Phase::RemovedFromGit(why) => write!(
                f,
                "removed from Git ({})",
                match why {
                    Kept::PruneRefused => "prune refused",
                    Kept::PruneOff => "prune off",
                    Kept::PruneFailed => "prune failed",
                    Kept::NotPruned => "not pruned",
                }
            ),
        }
    }
}

impl Serialize for Phase {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A served phase sentence that is not one drover writes.
#[derive(Debug, thiserror::Error)]
#[error("unknown phase {0:?}")]
pub struct UnknownPhase(String);

impl std::str::FromStr for Phase {
    type Err = UnknownPhase;

    /// The inverse of `Display`, so the CLI decodes the API's phase into the same type.
    fn from_str(text: &str) -> Result<Phase, UnknownPhase> {
        let permanent = |head: &str| {
            let rest = text.strip_prefix(head)?;
            match rest {
                "" => Some(false),
                _ if rest.strip_prefix(' ') == Some(PERMANENT) => Some(true),
                _ => None,
            }
        };
        let phase = match text {
            "invalid spec" => Phase::InvalidSpec,
            "waiting for live state" => Phase::WaitingForLiveState,
            "pinned revision unavailable" => Phase::PinnedRevisionUnavailable,
            "waiting" => Phase::Waiting,
            "out of sync" => Phase::OutOfSync(Pending::Writes),
            "out of sync (auto-sync off)" => Phase::OutOfSync(Pending::AutoSyncOff),
            "out of sync (prune refused)" => Phase::OutOfSync(Pending::PruneRefused),
            "synced" => Phase::Synced,
            "waiting for health" => Phase::WaitingForHealth,
            "removed from Git (prune refused)" => Phase::RemovedFromGit(Kept::PruneRefused),
            "removed from Git (prune off)" => Phase::RemovedFromGit(Kept::PruneOff),
            "removed from Git (prune failed)" => Phase::RemovedFromGit(Kept::PruneFailed),
            "removed from Git (not pruned)" => Phase::RemovedFromGit(Kept::NotPruned),
            _ => {
                if let Some(permanent) = permanent("plan failed") {
                    Phase::PlanFailed { permanent }
                } else if let Some(permanent) = permanent("sync failed") {
                    Phase::SyncFailed { permanent }
                } else if let Some(dep) = text.strip_prefix("waiting for dependency ") {
                    Phase::WaitingForDependency(dep.to_string())
                } else if let Some(revision) = text.strip_prefix("syncing ") {
                    Phase::Syncing(revision.to_string())
                } else {
                    return Err(UnknownPhase(text.to_string()));
                }
            }
        };
        Ok(phase)
    }
}

impl<'de> Deserialize<'de> for Phase {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Phase, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl PartialEq<&str> for Phase {
    fn eq(&self, other: &&str) -> bool {
        *other == self.to_string().as_str()
    }
}

/// What a resource needs, as the status shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKind {
    /// It will be created.
    #[serde(rename = "create")]
    Create,
    /// It will be updated.
    #[serde(rename = "update")]
    Update,
    /// It will be deleted (pruned).
    #[serde(rename = "delete")]
    Delete,
    /// Nothing to do.
    #[serde(rename = "unchanged")]
    Unchanged,
    /// Declared but left alone (owned by another app).
    #[serde(rename = "not-managed")]
    NotManaged,
    /// Triage suspects a change; the server was not asked yet (waiting for a dependency).
    #[serde(rename = "check")]
    Check,
    /// Not known: the app's revision does not load (shown as last applied).
    #[serde(rename = "unknown")]
    Unknown,
}

impl ChangeKind {
    /// The word served (`create`, `not-managed`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
            ChangeKind::Unchanged => "unchanged",
            ChangeKind::NotManaged => "not-managed",
            ChangeKind::Check => "check",
            ChangeKind::Unknown => "unknown",
        }
    }

    /// The kind of a planned change.
    pub fn of(change: &Change) -> ChangeKind {
        match change {
            Change::Create { .. } => ChangeKind::Create,
            Change::Update { .. } => ChangeKind::Update,
            Change::Delete => ChangeKind::Delete,
            Change::Unchanged => ChangeKind::Unchanged,
            Change::NotManaged => ChangeKind::NotManaged,
        }
    }
}

impl PartialEq<&str> for ChangeKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The result of the last sync that wrote or failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncOutcome {
    /// `succeeded`, `failed`, `conflict`, `waiting`, `blocked`.
    pub result: SyncResult,
    /// The revision it applied.
    pub revision: String,
    /// Lines like `update nomad_job/default/web`.
    pub changes: Vec<String>,
    /// Problems, one per line.
    pub problems: Vec<String>,
    /// When it finished.
    #[serde(with = "unix_seconds")]
    pub at: SystemTime,
    /// How long it took, in milliseconds. (Absent from an older drover's answer.)
    #[serde(default)]
    pub duration_ms: Option<u64>,
}

/// One resource's state in an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceStatus {
    /// `nomad_job/default/web`.
    pub id: String,
    /// `create`, `update`, `delete`, `unchanged`, `not-managed`, `check`, `unknown`.
    pub change: ChangeKind,
    /// Why it needs attention (`git_changed`, `live_changed`, …).
    pub reason: String,
    /// Its health.
    pub health: Health,
    /// What decided the health.
    pub message: String,
    /// The pending diff, if it is out of sync (secrets never appear here).
    pub diff: Option<String>,
    /// The apply wave it belongs to (`None`: not planned, e.g. as last applied). (Absent from
    /// an older drover's answer.)
    #[serde(default)]
    pub wave: Option<u32>,
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
    pub phase: Phase,
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
    /// The app's probes (`probes:` in app.yaml), each with its last result; their health counts in
    /// the app's. (Absent from an older drover's answer.)
    #[serde(default)]
    pub probes: Vec<ProbeStatus>,
    /// Automatic sync on.
    pub auto_sync: bool,
    /// When this status was computed.
    #[serde(with = "unix_seconds")]
    pub observed_at: SystemTime,
}

impl AppStatus {
    /// A status with nothing known yet.
    pub fn unknown(name: &str, revision: &str, phase: Phase) -> AppStatus {
        AppStatus {
            name: name.to_string(),
            revision: revision.to_string(),
            pinned: None,
            sync: SyncStatus::Unknown,
            health: Health::Unknown,
            phase,
            resources: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            last_sync: None,
            probes: Vec::new(),
            auto_sync: true,
            observed_at: SystemTime::now(),
        }
    }
}

/// Which check a probe makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// An HTTP(S) request: expected status, latency, timeout.
    Http,
    /// A TLS handshake: certificate days to expiry.
    Tls,
    /// The newest object under a bucket prefix is younger than `max_age`.
    BackupFreshness,
}

/// One probe's last result, as the status, page, metrics and alerts show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeStatus {
    /// The probe's name (`name:` in app.yaml, or derived from its target).
    pub name: String,
    /// What it checks.
    pub kind: ProbeKind,
    /// What it checks against: a URL, `host:port`, `bucket/prefix`.
    pub target: String,
    /// `Healthy` when it passed, `Degraded` when it failed, `Unknown` before its first run.
    pub health: Health,
    /// What it found (`200 in 35 ms`, `certificate expires in 12 days`, `newest object 3m old`).
    pub message: String,
    /// HTTP and TLS: how long the check took.
    pub latency_ms: Option<u64>,
    /// TLS: whole days until the certificate expires (negative once expired).
    pub days_left: Option<i64>,
    /// Backup freshness: the age of the newest object, in seconds.
    pub age_seconds: Option<u64>,
    /// When it last ran (`None`: not yet).
    #[serde(with = "unix_seconds_opt")]
    pub checked_at: Option<SystemTime>,
}

/// What is wrong with the repository as a whole rather than one app (an invalid head revision, a
/// refused prune of removed apps): published beside the app statuses, shown as a banner.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RepoStatus {
    /// The head revision these problems were derived from.
    pub revision: Option<String>,
    /// One line each: `revision … is invalid: …`, `prune refused: …`.
    pub problems: Vec<String>,
    /// A fetched commit refused by signature verification (`repo.verify`), e.g.
    /// `commit abc1234: no signature`; the revision in force stays.
    #[serde(default)]
    pub refused_commit: Option<String>,
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

mod unix_seconds_opt {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::unix_seconds::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        let secs = Option::<u64>::deserialize(d)?;
        Ok(secs.map(|secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_are_served_as_the_words_clients_read() {
        let phases = [
            (Phase::InvalidSpec, "invalid spec"),
            (Phase::WaitingForLiveState, "waiting for live state"),
            (
                Phase::PinnedRevisionUnavailable,
                "pinned revision unavailable",
            ),
            (Phase::PlanFailed { permanent: false }, "plan failed"),
            (
                Phase::WaitingForDependency("db".into()),
                "waiting for dependency db",
            ),
            (Phase::Syncing("abc".into()), "syncing abc"),
            (Phase::SyncFailed { permanent: false }, "sync failed"),
            (Phase::Waiting, "waiting"),
            (Phase::OutOfSync(Pending::Writes), "out of sync"),
            (
                Phase::OutOfSync(Pending::AutoSyncOff),
                "out of sync (auto-sync off)",
            ),
            (
                Phase::OutOfSync(Pending::PruneRefused),
                "out of sync (prune refused)",
            ),
            (Phase::Synced, "synced"),
            (Phase::WaitingForHealth, "waiting for health"),
            (
                Phase::RemovedFromGit(Kept::PruneRefused),
                "removed from Git (prune refused)",
            ),
            (
                Phase::RemovedFromGit(Kept::PruneOff),
                "removed from Git (prune off)",
            ),
            (
                Phase::RemovedFromGit(Kept::PruneFailed),
                "removed from Git (prune failed)",
            ),
            (
                Phase::RemovedFromGit(Kept::NotPruned),
                "removed from Git (not pruned)",
            ),
        ];
        for (phase, word) in phases {
            assert_eq!(
                serde_json::to_value(&phase).expect("json"),
                serde_json::json!(word)
            );
            assert_eq!(phase, word);
            let decoded: Phase = serde_json::from_value(serde_json::json!(word)).expect("decodes");
            assert_eq!(decoded, phase, "{word} decodes to the phase that wrote it");
        }
        for phase in [
            Phase::PlanFailed { permanent: true },
            Phase::SyncFailed { permanent: true },
            Phase::RemovedFromGit(Kept::PruneRefused),
            Phase::RemovedFromGit(Kept::PruneOff),
            Phase::RemovedFromGit(Kept::PruneFailed),
            Phase::RemovedFromGit(Kept::NotPruned),
            Phase::OutOfSync(Pending::PruneRefused),
        ] {
            assert_eq!(phase.to_string().parse::<Phase>().ok(), Some(phase.clone()));
        }
        assert!("sync failed (later)".parse::<Phase>().is_err());
        assert!("dancing".parse::<Phase>().is_err());
        assert!(
            Phase::SyncFailed { permanent: true }
                .to_string()
                .starts_with("sync failed (permanent: ")
        );
        for (change, word) in [
            (ChangeKind::Create, "create"),
            (ChangeKind::Update, "update"),
            (ChangeKind::Delete, "delete"),
            (ChangeKind::Unchanged, "unchanged"),
            (ChangeKind::NotManaged, "not-managed"),
            (ChangeKind::Check, "check"),
            (ChangeKind::Unknown, "unknown"),
        ] {
            assert_eq!(
                serde_json::to_value(change).expect("json"),
                serde_json::json!(word)
            );
            assert_eq!(change.as_str(), word);
        }
        for (result, word) in [
            (SyncResult::Succeeded, "succeeded"),
            (SyncResult::Failed, "failed"),
            (SyncResult::Conflict, "conflict"),
            (SyncResult::Waiting, "waiting"),
            (SyncResult::Blocked, "blocked"),
            (SyncResult::NoOp, "no-op"),
            (SyncResult::Interrupted, "interrupted"),
        ] {
            assert_eq!(
                serde_json::to_value(result).expect("json"),
                serde_json::json!(word)
            );
            assert_eq!(result.as_str(), word);
        }
        for (trigger, word) in [
            (Trigger::Auto, "auto"),
            (Trigger::SelfHeal, "self-heal"),
            (Trigger::Manual, "manual"),
        ] {
            assert_eq!(
                serde_json::to_value(trigger).expect("json"),
                serde_json::json!(word)
            );
            assert_eq!(trigger.as_str(), word);
        }
    }
}
