//! The conditions alerts are about, derived from the status read model alone (level-triggered:
//! the same statuses always give the same set, whatever woke the engine).

use std::collections::BTreeMap;

use super::AlertTrigger;
use crate::controller::{AppStatus, Kept, Pending, Phase, RepoStatus};
use crate::health::Health;

/// What one alert is about: a trigger, an app (`None`: the repository) and a resource or probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConditionKey {
    /// What raised it.
    pub trigger: AlertTrigger,
    /// The app, if one.
    pub app: Option<String>,
    /// The resource or probe, if one.
    pub resource: Option<String>,
}

impl ConditionKey {
    /// A key.
    pub fn new(trigger: AlertTrigger, app: Option<&str>, resource: Option<&str>) -> ConditionKey {
        ConditionKey {
            trigger,
            app: app.map(str::to_string),
            resource: resource.map(str::to_string),
        }
    }
}

/// The conditions holding now, each with its message.
pub type Conditions = BTreeMap<ConditionKey, String>;

/// Resource reasons that mean the cluster moved away from what drover applied.
const DRIFT_REASONS: [&str; 3] = ["live_changed", "stopped", "missing"];

/// Whether an app's status can say anything yet (its live state is still loading: no verdict).
pub fn app_is_known(status: &AppStatus) -> bool {
    status.phase != Phase::WaitingForLiveState
}

/// Every condition in `statuses` and `repo`. Apps still waiting for live state give none (the
/// engine holds their alerts as they were). `with_healed`: also report drift healed this cycle.
pub fn derive(
    statuses: &BTreeMap<String, AppStatus>,
    repo: &RepoStatus,
    with_healed: bool,
) -> Conditions {
    let mut found = Conditions::new();
    for status in statuses.values().filter(|s| app_is_known(s)) {
        app_conditions(status, with_healed, &mut found);
    }
    let problems: Vec<&str> = repo
        .problems
        .iter()
        .map(String::as_str)
        .chain(repo.refused_commit.as_deref())
        .collect();
    if !problems.is_empty() {
        found.insert(
            ConditionKey::new(AlertTrigger::PruneRefused, None, None),
            format!("repository: {}", problems.join("; ")),
        );
    }
    found
}

fn app_conditions(status: &AppStatus, with_healed: bool, found: &mut Conditions) {
    let app = Some(status.name.as_str());
    let mut add = |trigger, resource: Option<&str>, message: String| {
        found.insert(ConditionKey::new(trigger, app, resource), message);
    };
    if let Phase::SyncFailed { .. } = status.phase {
        let why = status
            .last_sync
            .as_ref()
            .and_then(|s| s.problems.first())
            .or(status.errors.first())
            .map(|p| format!(": {p}"))
            .unwrap_or_default();
        add(
            AlertTrigger::SyncFailed,
            None,
            format!("{}: sync failed{why}", status.name),
        );
    }
    if matches!(
        status.phase,
        Phase::OutOfSync(Pending::PruneRefused) | Phase::RemovedFromGit(Kept::PruneRefused)
    ) {
        add(
            AlertTrigger::PruneRefused,
            None,
            format!("{}: {}", status.name, status.phase),
        );
    }
    if matches!(status.health, Health::Degraded | Health::Missing) {
        add(
            AlertTrigger::HealthDegraded,
            None,
            format!("{}: health {:?}", status.name, status.health),
        );
    }
    for resource in &status.resources {
        if !DRIFT_REASONS.contains(&resource.reason.as_str()) {
            continue;
        }
        let write = matches!(resource.change.as_str(), "create" | "update" | "delete");
        if !write {
            continue;
        }
        // A pending diff means the change was not applied: the drift is still there (self_heal
        // off, a policy hold, or a failed heal). No diff on a write: this cycle healed it.
        if resource.diff.is_some() {
            add(
                AlertTrigger::Drift,
                Some(&resource.id),
                format!(
                    "{}: {} changed in the cluster and was not healed ({})",
                    status.name, resource.id, resource.reason
                ),
            );
        } else if with_healed {
            add(
                AlertTrigger::DriftHealed,
                Some(&resource.id),
                format!(
                    "{}: {} changed in the cluster and was healed",
                    status.name, resource.id
                ),
            );
        }
    }
    for probe in status
        .probes
        .iter()
        .filter(|p| p.health == Health::Degraded)
    {
        add(
            AlertTrigger::ProbeFailed,
            Some(&probe.name),
            format!(
                "{}: probe {} ({}) failed: {}",
                status.name, probe.name, probe.target, probe.message
            ),
        );
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::controller::{
        ChangeKind, ProbeKind, ProbeStatus, ResourceStatus, SyncOutcome, SyncResult,
    };

    pub(crate) fn status(name: &str, phase: Phase) -> AppStatus {
        let mut s = AppStatus::unknown(name, "abc", phase);
        s.health = Health::Healthy;
        s
    }

    pub(crate) fn drifted(name: &str, resource: &str, diff: Option<&str>) -> AppStatus {
        let mut s = status(name, Phase::OutOfSync(Pending::Writes));
        s.resources.push(ResourceStatus {
            id: resource.into(),
            change: ChangeKind::Update,
            reason: "live_changed".into(),
            health: Health::Healthy,
            message: String::new(),
            diff: diff.map(str::to_string),
            wave: None,
        });
        s
    }

    fn keys(found: &Conditions) -> Vec<(AlertTrigger, Option<&str>, Option<&str>)> {
        found
            .keys()
            .map(|k| (k.trigger, k.app.as_deref(), k.resource.as_deref()))
            .collect()
    }

    #[test]
    fn each_trigger_comes_from_its_part_of_the_status() {
        let mut failed = status("a", Phase::SyncFailed { permanent: false });
        failed.last_sync = Some(SyncOutcome {
            result: SyncResult::Failed,
            revision: "abc".into(),
            changes: vec![],
            problems: vec!["nomad said 500".into()],
            at: std::time::SystemTime::UNIX_EPOCH,
            duration_ms: None,
        });
        let mut degraded = status("b", Phase::WaitingForHealth);
        degraded.health = Health::Missing;
        let mut probed = status("c", Phase::Synced);
        for (name, health) in [("up", Health::Healthy), ("down", Health::Degraded)] {
            probed.probes.push(ProbeStatus {
                name: name.into(),
                kind: ProbeKind::Http,
                target: "http://x".into(),
                health,
                message: "503".into(),
                latency_ms: None,
                days_left: None,
                age_seconds: None,
                checked_at: None,
            });
        }
        let refused = status("d", Phase::RemovedFromGit(Kept::PruneRefused));
        let drift = drifted("e", "nomad_job/default/e", Some("- image"));
        let healed = drifted("f", "nomad_job/default/f", None);
        let mut git_change = drifted("g", "nomad_job/default/g", Some("+ x"));
        git_change.resources[0].reason = "git_changed".into();
        let waiting = {
            let mut s = drifted("h", "nomad_job/default/h", Some("+ x"));
            s.phase = Phase::WaitingForLiveState;
            s.health = Health::Degraded;
            s
        };
        let statuses: BTreeMap<String, AppStatus> = [
            failed, degraded, probed, refused, drift, healed, git_change, waiting,
        ]
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
        let repo = RepoStatus {
            revision: Some("abc".into()),
            problems: vec!["prune refused: 3 of 4 apps left Git".into()],
            refused_commit: Some("commit abc1234: no signature".into()),
        };
        let found = derive(&statuses, &repo, false);
        use AlertTrigger::*;
        assert_eq!(
            keys(&found),
            vec![
                (SyncFailed, Some("a"), None),
                (Drift, Some("e"), Some("nomad_job/default/e")),
                (HealthDegraded, Some("b"), None),
                (ProbeFailed, Some("c"), Some("down")),
                (PruneRefused, None, None),
                (PruneRefused, Some("d"), None),
            ]
        );
        let failed_key = ConditionKey::new(SyncFailed, Some("a"), None);
        assert_eq!(found[&failed_key], "a: sync failed: nomad said 500");
        assert_eq!(
            found[&ConditionKey::new(PruneRefused, None, None)],
            "repository: prune refused: 3 of 4 apps left Git; commit abc1234: no signature"
        );
        let only_refused = RepoStatus {
            problems: Vec::new(),
            ..repo.clone()
        };
        assert_eq!(
            derive(&BTreeMap::new(), &only_refused, false)
                .get(&ConditionKey::new(PruneRefused, None, None))
                .map(String::as_str),
            Some("repository: commit abc1234: no signature")
        );
        let with_healed = derive(&statuses, &repo, true);
        assert!(with_healed.contains_key(&ConditionKey::new(
            DriftHealed,
            Some("f"),
            Some("nomad_job/default/f")
        )));
    }
}
