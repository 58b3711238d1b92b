//! Health of a `nomad_job`: from the job, its latest deployment and its allocations.

use super::{Assessment, Health};
use crate::providers::nomad::types::{AllocListStub, Deployment, Job};
use crate::providers::nomad::{NomadClient, NomadError};

/// What health needs to know about the job itself (read from the server, not the cache, so a
/// job drover just registered is judged at its new version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFacts {
    /// `service`, `batch`, `system`, `sysbatch`.
    pub job_type: String,
    /// `pending`, `running`, `dead`.
    pub status: String,
    /// The current version.
    pub version: u64,
    /// Whether the job is stopped.
    pub stop: bool,
    /// The sum of its task groups' `Count` (`None` when the job lists no groups).
    pub desired_count: Option<u64>,
}

impl JobFacts {
    /// From a `GET /v1/job/:id` answer.
    pub fn from_job(job: &Job) -> JobFacts {
        JobFacts {
            job_type: job.job_type.clone(),
            status: job.status.clone(),
            version: job.version,
            stop: job.stop,
            desired_count: (!job.task_groups.is_empty())
                .then(|| job.task_groups.iter().map(|g| g.count).sum()),
        }
    }
}

/// What a job's health reads can be reused against: marks from the live cache, taken before the
/// reads (a read is reused only while the mark it was taken at is still the latest, so a change
/// that lands during a read is read again next time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadMarks {
    /// The event stream session the cache is fed by (0: none; nothing is reused).
    pub session: u64,
    /// The job's `ModifyIndex` in the cache (`None`: not in the cache; read each time).
    pub job: Option<u64>,
    /// The index of the job's last deployment event.
    pub deployments: u64,
    /// The index of the job's last allocation event.
    pub allocations: u64,
}

/// A job's three health reads, each kept with the mark it was taken at: while the event stream
/// runs, a progress cycle reads again only what an event says moved (an allocation event costs
/// one allocations read, not the job, its deployment and its allocations).
#[derive(Debug, Clone, Default)]
pub struct JobReads {
    session: u64,
    job: Option<(u64, Option<JobFacts>)>,
    deployment: Option<(u64, Option<Deployment>)>,
    allocations: Option<(u64, Vec<AllocListStub>)>,
}

impl JobReads {
    /// Health of the job, reading only what moved since the kept reads (all three without a
    /// stream).
    pub async fn assess(
        &mut self,
        nomad: &NomadClient,
        namespace: &str,
        id: &str,
        marks: ReadMarks,
    ) -> Result<Assessment, NomadError> {
        if marks.session == 0 || marks.session != self.session {
            *self = JobReads {
                session: marks.session,
                ..JobReads::default()
            };
        }
        let job_mark = marks.job.unwrap_or(u64::MAX);
        let facts = match &self.job {
            Some((at, facts)) if marks.job.is_some() && *at == job_mark => facts.clone(),
            _ => {
                let facts = nomad
                    .read_job(namespace, id)
                    .await?
                    .map(|job| JobFacts::from_job(&job));
                self.job = marks.job.map(|at| (at, facts.clone()));
                facts
            }
        };
        let Some(facts) = facts else {
            return Ok(Assessment::new(Health::Missing, "job not found"));
        };
        if facts.stop {
            return Ok(Assessment::new(Health::Suspended, "job is stopped"));
        }
        let deployment = if facts.job_type != "service" {
            None
        } else {
            match &self.deployment {
                Some((at, deployment)) if *at == marks.deployments => deployment.clone(),
                _ => {
                    let deployment = nomad.latest_deployment(namespace, id).await?;
                    self.deployment = Some((marks.deployments, deployment.clone()));
                    deployment
                }
            }
        };
        let allocations = match &self.allocations {
            Some((at, allocations)) if *at == marks.allocations => allocations.clone(),
            _ => {
                let allocations = nomad.job_allocations(namespace, id).await?;
                self.allocations = Some((marks.allocations, allocations.clone()));
                allocations
            }
        };
        if marks.session == 0 {
            *self = JobReads::default();
        }
        Ok(judge_job(&facts, deployment.as_ref(), &allocations))
    }
}

/// The pure part of [`JobReads::assess`].
pub fn judge_job(
    job: &JobFacts,
    deployment: Option<&Deployment>,
    allocations: &[AllocListStub],
) -> Assessment {
    if job.stop {
        return Assessment::new(Health::Suspended, "job is stopped");
    }
    // Every group at `count = 0`: nothing should run, so Nomad's `dead` is the goal reached
    // (system jobs ignore `count`).
    if job.desired_count == Some(0) && !matches!(job.job_type.as_str(), "system" | "sysbatch") {
        let still_running = allocations
            .iter()
            .filter(|a| a.desired_status == "run" && !a.is_terminal())
            .count();
        return if still_running == 0 {
            Assessment::new(Health::Healthy, "scaled to zero")
        } else {
            Assessment::new(
                Health::Progressing,
                format!("scaling to zero: {still_running} allocation(s) still running"),
            )
        };
    }
    if matches!(job.job_type.as_str(), "batch" | "sysbatch") {
        let failed = allocations
            .iter()
            .filter(|a| a.client_status == "failed" && a.desired_status == "run")
            .count();
        let complete = allocations
            .iter()
            .filter(|a| a.client_status == "complete")
            .count();
        return if failed > 0 && job.status == "dead" {
            Assessment::new(Health::Degraded, format!("{failed} allocation(s) failed"))
        } else if job.status == "dead" && complete > 0 {
            Assessment::new(Health::Healthy, "completed")
        } else if job.status == "running" && allocations.is_empty() {
            // Periodic and parameterized parents are `running` with no allocations of their own.
            Assessment::new(Health::Healthy, "waiting for launches")
        } else {
            Assessment::new(Health::Progressing, format!("status {}", job.status))
        };
    }
    // Only the deployment of the current version counts: an older one says nothing about it.
    if let Some(d) = deployment.filter(|d| d.job_version == job.version) {
        match d.status.as_str() {
            "failed" => {
                return Assessment::new(
                    Health::Degraded,
                    format!("deployment failed: {}", d.status_description),
                );
            }
            "running" | "pending" | "initializing" | "blocked" | "unblocking" | "paused" => {
                let (healthy, total) = d
                    .task_groups
                    .as_ref()
                    .map(|g| {
                        g.values().fold((0, 0), |(h, t), s| {
                            (h + s.healthy_allocs, t + s.desired_total)
                        })
                    })
                    .unwrap_or((0, 0));
                return Assessment::new(
                    Health::Progressing,
                    format!("deployment {}: {healthy}/{total} healthy", d.status),
                );
            }
            _ => {}
        }
    }
    // Allocations that count: wanted running, not replaced by a reschedule, and either of the
    // current version or still running an older one (a finished old allocation is history).
    let live_allocs: Vec<&AllocListStub> = allocations
        .iter()
        .filter(|a| a.desired_status == "run" && !a.is_replaced())
        .filter(|a| a.job_version >= job.version || !a.is_terminal())
        .collect();
    let outdated = live_allocs
        .iter()
        .filter(|a| a.job_version < job.version)
        .count();
    let failed = live_allocs
        .iter()
        .filter(|a| matches!(a.client_status.as_str(), "failed" | "lost"))
        .count();
    let unhealthy = live_allocs
        .iter()
        .filter(|a| a.deployment_status.and_then(|d| d.healthy) == Some(false))
        .count();
    let pending = live_allocs
        .iter()
        .filter(|a| a.client_status == "pending")
        .count();
    let running = live_allocs
        .iter()
        .filter(|a| a.client_status == "running")
        .count();
    if failed > 0 || unhealthy > 0 {
        Assessment::new(
            Health::Degraded,
            format!("{} allocation(s) failed or unhealthy", failed + unhealthy),
        )
    } else if outdated > 0 {
        // Allocations of an older version still run: the new version is not placed yet.
        Assessment::new(
            Health::Progressing,
            format!(
                "{outdated} allocation(s) still on an older version than {}",
                job.version
            ),
        )
    } else if pending > 0 {
        Assessment::new(
            Health::Progressing,
            format!("{pending} allocation(s) pending"),
        )
    } else if running > 0 {
        Assessment::new(Health::Healthy, format!("{running} allocation(s) running"))
    } else {
        Assessment::new(Health::Progressing, "no allocations placed yet")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::nomad::types::{AllocDeploymentStatus, DeploymentGroup};

    fn stub(kind: &str, status: &str) -> JobFacts {
        JobFacts {
            job_type: kind.into(),
            status: status.into(),
            version: 1,
            stop: false,
            desired_count: Some(1),
        }
    }

    fn alloc(client: &str, healthy: Option<bool>) -> AllocListStub {
        AllocListStub {
            id: "a".into(),
            name: "web.web[0]".into(),
            job_id: "web".into(),
            job_version: 1,
            task_group: "web".into(),
            node_name: "n".into(),
            desired_status: "run".into(),
            client_status: client.into(),
            deployment_status: Some(AllocDeploymentStatus { healthy }),
            next_allocation: None,
            task_states: None,
            create_index: 1,
        }
    }

    fn deployment(status: &str, version: u64) -> Deployment {
        Deployment {
            id: "d".into(),
            job_id: "web".into(),
            job_version: version,
            job_spec_modify_index: 10,
            status: status.into(),
            status_description: "Failed due to unhealthy allocations".into(),
            task_groups: Some(
                [(
                    "web".to_string(),
                    DeploymentGroup {
                        desired_total: 2,
                        placed_allocs: 2,
                        healthy_allocs: 1,
                        unhealthy_allocs: 0,
                    },
                )]
                .into(),
            ),
        }
    }

    #[test]
    fn deployment_of_the_current_spec_decides_service_health() {
        let s = stub("service", "running");
        let a = [alloc("running", Some(true))];
        assert_eq!(
            judge_job(&s, Some(&deployment("running", 1)), &a).health,
            Health::Progressing
        );
        assert_eq!(
            judge_job(&s, Some(&deployment("failed", 1)), &a).health,
            Health::Degraded
        );
        assert_eq!(
            judge_job(&s, Some(&deployment("successful", 1)), &a).health,
            Health::Healthy
        );
        // A failed deployment of an older version does not count.
        assert_eq!(
            judge_job(&s, Some(&deployment("failed", 0)), &a).health,
            Health::Healthy
        );
    }

    #[test]
    fn allocations_of_an_older_version_mean_the_new_one_is_not_placed_yet() {
        // Right after a register the old allocations still run and the deployment of the new
        // version may not exist yet: that is not Healthy.
        let s = stub("service", "running");
        let mut old = alloc("running", Some(true));
        old.job_version = 0;
        assert_eq!(
            judge_job(&s, Some(&deployment("successful", 0)), &[old]).health,
            Health::Progressing
        );
    }

    #[test]
    fn failed_allocations_of_an_older_version_or_rescheduled_ones_do_not_count() {
        let s = stub("service", "running");
        let mut old_failed = alloc("failed", Some(false));
        old_failed.job_version = 0;
        let mut replaced = alloc("failed", Some(false));
        replaced.next_allocation = Some("b".into());
        let now = alloc("running", Some(true));
        assert_eq!(
            judge_job(&s, None, &[old_failed, replaced, now]).health,
            Health::Healthy
        );
    }

    #[test]
    fn a_job_scaled_to_zero_is_healthy_once_nothing_runs() {
        let mut s = stub("service", "dead");
        s.desired_count = Some(0);
        let verdict = judge_job(&s, None, &[]);
        assert_eq!(verdict.health, Health::Healthy);
        assert_eq!(verdict.message, "scaled to zero");
        // Still stopping the allocations of the scale-down.
        assert_eq!(
            judge_job(&s, None, &[alloc("running", Some(true))]).health,
            Health::Progressing
        );
        // A stopped job stays Suspended, whatever its count.
        s.stop = true;
        assert_eq!(judge_job(&s, None, &[]).health, Health::Suspended);
        // The count comes from the job's groups.
        let job: Job = serde_json::from_value(serde_json::json!({"Type": "service",
            "Status": "dead", "Version": 0,
            "TaskGroups": [{"Name": "a", "Count": 0}, {"Name": "b", "Count": 0}]}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(JobFacts::from_job(&job).desired_count, Some(0));
    }

    #[test]
    fn a_stopped_job_is_suspended() {
        let mut s = stub("service", "dead");
        s.stop = true;
        assert_eq!(judge_job(&s, None, &[]).health, Health::Suspended);
    }

    #[test]
    fn allocations_decide_without_a_deployment() {
        let s = stub("service", "running");
        assert_eq!(
            judge_job(&s, None, &[alloc("pending", None)]).health,
            Health::Progressing
        );
        assert_eq!(
            judge_job(&s, None, &[alloc("failed", None)]).health,
            Health::Degraded
        );
        assert_eq!(
            judge_job(&s, None, &[alloc("running", Some(false))]).health,
            Health::Degraded
        );
        assert_eq!(judge_job(&s, None, &[]).health, Health::Progressing);
    }

    #[test]
    fn batch_jobs_are_healthy_when_complete() {
        let done = [alloc("complete", None)];
        assert_eq!(
            judge_job(&stub("batch", "dead"), None, &done).health,
            Health::Healthy
        );
        assert_eq!(
            judge_job(&stub("batch", "running"), None, &[alloc("running", None)]).health,
            Health::Progressing
        );
        assert_eq!(
            judge_job(&stub("batch", "dead"), None, &[alloc("failed", None)]).health,
            Health::Degraded
        );
    }
}
