//! The simulated Nomad server: state store, HTTP routes, scheduler, deployments, CSI, variables.
//!
//! All Nomad state sits behind one mutex ([`NomadState::inner`]) that is never held across an
//! `.await`; one [`IndexClock`] hands out the raft-like index for every write.

pub mod canonicalize;
pub mod diff;

mod control;
mod csi;
mod events;
mod fallback;
mod http;
mod jobs;
mod misc;
mod sched;
mod tracked;
mod vars;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use serde_json::Value;
use tokio::time::Instant;

use super::clock::IndexClock;
use super::{DevState, DevstackConfig};

/// The agent's region; `global` in a submitted job maps to it.
pub const REGION: &str = "global";
/// The agent's datacenter.
pub const DATACENTER: &str = "dc1";
/// Versions kept per job (`job_tracked_versions`).
const TRACKED_VERSIONS: usize = 6;

/// Nomad's in-memory state (jobs, versions, evals, deployments, allocs, nodes, CSI, variables).
pub struct NomadState {
    /// The one monotonic index of the whole Nomad state.
    pub clock: IndexClock,
    inner: Mutex<Inner>,
    /// Counts resets, so the scheduler re-registers nodes in Consul after one.
    generation: std::sync::atomic::AtomicU64,
    /// Index batches the event buffer keeps.
    event_buffer: usize,
    /// Scheduler passes run (a quiet cluster skips them; `/_devstack/health` shows the count).
    pub(crate) steps: std::sync::atomic::AtomicU64,
}

/// The state lock's guard: when it is released after writes, the objects those writes touched
/// become events (`/v1/event/stream`), so no write site can forget to emit them.
pub(crate) struct StateGuard<'a> {
    guard: MutexGuard<'a, Inner>,
    nomad: &'a NomadState,
    /// The index when the lock was taken.
    taken_at: u64,
}

impl std::ops::Deref for StateGuard<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.guard
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.guard
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        let now = self.nomad.clock.current();
        if now > self.taken_at {
            events::collect(&mut self.guard, self.taken_at, now, self.nomad.event_buffer);
        }
    }
}

/// A job, its kept versions and submissions.
#[derive(Debug, Clone)]
pub(crate) struct JobEntry {
    /// The current (server) job.
    pub job: Value,
    /// Kept versions, oldest first.
    pub versions: Vec<Value>,
    /// Submissions (source) per version.
    pub submissions: BTreeMap<u64, Value>,
    /// ModifyIndex of the job summary.
    pub summary_index: u64,
    /// CreateIndex of the job summary.
    pub summary_create: u64,
}

/// One task's state inside an allocation.
#[derive(Debug, Clone)]
pub(crate) struct TaskState {
    pub state: String,
    pub failed: bool,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub events: Vec<Value>,
    /// `prestart`, `poststart`, `poststop` or `""` for a main task.
    pub hook: String,
    pub sidecar: bool,
}

/// An allocation plus the simulation's bookkeeping.
#[derive(Debug, Clone)]
pub(crate) struct Alloc {
    pub id: String,
    pub eval_id: String,
    pub name: String,
    pub namespace: String,
    pub node_id: String,
    pub node_name: String,
    pub job_id: String,
    pub job_type: String,
    /// The job version the allocation runs, shared by all allocations placed from it (a copy
    /// each made a job of G groups hold G copies of itself: quadratic memory).
    pub job: std::sync::Arc<Value>,
    pub task_group: String,
    pub desired_status: String,
    pub desired_description: String,
    pub client_status: String,
    pub client_description: String,
    pub task_states: BTreeMap<String, TaskState>,
    pub healthy: Option<bool>,
    pub health_time: Option<String>,
    pub deployment_id: String,
    pub previous_allocation: String,
    pub next_allocation: String,
    pub create_index: u64,
    pub modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
    pub cpu: u64,
    pub memory: u64,
    /// (label, host port value, container `to`).
    pub ports: Vec<(String, u64, u64)>,
    /// Claimed CSI volumes: (namespace, volume id, write claim).
    pub claims: Vec<(String, String, bool)>,
    /// When the simulated client received it (the health deadline counts from here).
    pub placed_at: Instant,
    /// When templates rendered and tasks began starting.
    pub ready_at: Option<Instant>,
    /// When the main tasks started running.
    pub running_at: Option<Instant>,
    /// The alloc fails right after starting (control API `fail-next`).
    pub fail_on_start: bool,
    /// Consul services registered for it.
    pub consul_registered: bool,
    /// Consul checks set to passing.
    pub consul_passing: bool,
    /// The task whose failure the control API asked for.
    pub failed_task: Option<String>,
}

impl Alloc {
    /// `complete`, `failed` and `lost` are terminal.
    pub fn terminal(&self) -> bool {
        matches!(self.client_status.as_str(), "complete" | "failed" | "lost")
            || self.desired_status != "run"
    }
}

/// One task group's progress within a deployment.
#[derive(Debug, Clone)]
pub(crate) struct DeploymentGroup {
    pub auto_revert: bool,
    pub auto_promote: bool,
    pub progress_deadline: i64,
    pub require_progress_by: Instant,
    pub require_progress_by_wall: String,
    pub desired_total: u64,
    pub placed: u64,
    pub healthy: u64,
    pub unhealthy: u64,
}

/// A deployment.
#[derive(Debug, Clone)]
pub(crate) struct Deployment {
    pub id: String,
    pub namespace: String,
    pub job_id: String,
    pub job_version: u64,
    pub job_modify_index: u64,
    pub job_spec_modify_index: u64,
    pub job_create_index: u64,
    pub groups: BTreeMap<String, DeploymentGroup>,
    pub status: String,
    pub description: String,
    pub priority: i64,
    pub create_index: u64,
    pub modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
}

impl Deployment {
    /// `running`, `pending`, `paused`, … are live; `successful`, `failed`, `cancelled` are not.
    pub fn active(&self) -> bool {
        !matches!(self.status.as_str(), "successful" | "failed" | "cancelled")
    }
}

/// An evaluation.
#[derive(Debug, Clone)]
pub(crate) struct Eval {
    pub id: String,
    pub namespace: String,
    pub priority: i64,
    pub job_type: String,
    pub triggered_by: String,
    pub job_id: String,
    pub job_modify_index: u64,
    pub node_id: String,
    pub deployment_id: String,
    pub status: String,
    pub status_description: String,
    pub previous_eval: String,
    pub blocked_eval: String,
    pub failed_tg_allocs: Option<BTreeMap<String, Value>>,
    pub queued: BTreeMap<String, u64>,
    pub create_index: u64,
    pub modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
    /// Not processed before this instant (reschedule delay).
    pub not_before: Option<Instant>,
}

/// A simulated client node.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub id: String,
    pub name: String,
    pub datacenter: String,
    pub arch: String,
    pub pool: String,
    pub class: String,
    pub cpu: u64,
    pub memory: u64,
    pub meta: BTreeMap<String, String>,
    pub address: String,
    pub status: String,
    pub eligible: bool,
    pub drain: bool,
    pub drain_deadline: i64,
    /// When the drivers were fingerprinted (RFC 3339), the drivers' `UpdateTime`.
    pub fingerprinted_at: String,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A CSI plugin declared by the seed or the control API.
#[derive(Debug, Clone)]
pub(crate) struct SeedPlugin {
    pub provider: String,
    pub controller: bool,
    pub healthy: bool,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A registered CSI volume.
#[derive(Debug, Clone)]
pub(crate) struct Volume {
    /// The merged registration (`structs.CSIVolume` fields as submitted).
    pub spec: Value,
    pub create_index: u64,
    pub modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
}

/// A variable lock.
#[derive(Debug, Clone)]
pub(crate) struct VarLock {
    pub id: String,
    pub ttl: String,
    pub lock_delay: String,
    pub expires: Instant,
    /// The lock delay already scaled to wall time: how long after expiry nobody may acquire.
    pub delay: std::time::Duration,
}

/// A Nomad variable.
#[derive(Debug, Clone)]
pub(crate) struct Variable {
    pub namespace: String,
    pub path: String,
    pub items: BTreeMap<String, String>,
    pub lock: Option<VarLock>,
    pub create_index: u64,
    pub modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
}

/// An ACL token known to Nomad.
#[derive(Debug, Clone)]
pub(crate) struct AclToken {
    pub accessor_id: String,
    pub management: bool,
    pub namespaces: Vec<String>,
    pub capabilities: Vec<String>,
}

/// Everything behind the lock.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub namespaces: BTreeMap<String, Value>,
    pub jobs: tracked::TrackedMap<(String, String), JobEntry>,
    pub allocs: tracked::TrackedMap<String, Alloc>,
    pub evals: BTreeMap<String, Eval>,
    pub deployments: tracked::TrackedMap<String, Deployment>,
    pub nodes: Vec<Node>,
    pub seed_plugins: BTreeMap<String, SeedPlugin>,
    pub volumes: tracked::TrackedMap<(String, String), Volume>,
    pub vars: BTreeMap<(String, String), Variable>,
    /// Variables whose lock expired: no lock-acquire before this instant (the lock delay).
    pub var_lock_delays: BTreeMap<(String, String), Instant>,
    pub tokens: BTreeMap<String, AclToken>,
    /// Jobs whose next placements fail (control API).
    pub fail_next: BTreeSet<(String, String)>,
    /// Index of the last write per table, for read indexes.
    pub tables: BTreeMap<&'static str, u64>,
    /// Next dynamic port per node.
    pub next_port: BTreeMap<String, u64>,
    /// Events for `/v1/event/stream`.
    pub(crate) events: events::EventBuffer,
}

impl Inner {
    /// The index a read of these tables reports (never 0 so blocking clients make progress).
    pub fn table_index(&self, tables: &[&str]) -> u64 {
        tables
            .iter()
            .filter_map(|t| self.tables.get(t))
            .copied()
            .max()
            .unwrap_or(1)
            .max(1)
    }

    /// Find a node by ID, name, ID prefix or (for convenience) case-insensitive name.
    pub fn node_index(&self, key: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.id == key || n.name == key)
            .or_else(|| {
                self.nodes
                    .iter()
                    .position(|n| n.name.eq_ignore_ascii_case(key))
            })
            .or_else(|| {
                let matches: Vec<usize> = self
                    .nodes
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| !key.is_empty() && n.id.starts_with(key))
                    .map(|(i, _)| i)
                    .collect();
                (matches.len() == 1).then(|| matches[0])
            })
    }
}

impl NomadState {
    /// Empty state; [`NomadState::reset`] fills in the seed.
    pub fn new(config: &DevstackConfig) -> Self {
        NomadState {
            clock: IndexClock::new(1),
            inner: Mutex::new(Inner::default()),
            generation: std::sync::atomic::AtomicU64::new(0),
            event_buffer: config.event_buffer,
            steps: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The state lock; a poisoned lock is recovered because every write leaves the state whole.
    pub(crate) fn lock(&self) -> StateGuard<'_> {
        let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // Read under the lock: only writers holding it move the clock.
        let taken_at = self.clock.current();
        StateGuard {
            guard,
            nomad: self,
            taken_at,
        }
    }

    /// Take the next index and record it as the last write of `tables`.
    pub(crate) fn write(&self, inner: &mut Inner, tables: &[&'static str]) -> u64 {
        let index = self.clock.bump();
        for t in tables {
            inner.tables.insert(t, index);
        }
        index
    }

    /// Forget everything and re-apply the seed (default: three nodes in dc1).
    pub fn reset(&self, config: &DevstackConfig) {
        let mut inner = self.lock();
        *inner = Inner::default();
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // Indexes only grow, across resets too: a client blocked at index N must see the reset
        // as a change, never as time going backwards.
        let index = self.write(
            &mut inner,
            &[
                "namespaces",
                "nodes",
                "csi_plugins",
                "csi_volumes",
                "jobs",
                "job_summary",
                "allocs",
                "evals",
                "deployment",
                "vars",
            ],
        );
        let mut names = vec!["default".to_string()];
        if let Some(seed) = &config.seed {
            names.extend(seed.namespaces.iter().cloned());
        }
        for name in names {
            let description = if name == "default" {
                "Default shared namespace"
            } else {
                ""
            };
            inner.namespaces.insert(
                name.clone(),
                misc::namespace_json(&name, description, None, index, index),
            );
        }
        let seeded = config.seed.as_ref().and_then(|s| s.nodes.clone());
        let nodes: Vec<super::seed::SeedNode> = seeded.unwrap_or_else(default_nodes);
        for (i, n) in nodes.iter().enumerate() {
            inner.nodes.push(Node {
                id: uuid::Uuid::new_v4().to_string(),
                name: n.name.clone(),
                datacenter: n.datacenter.clone(),
                arch: n.arch.clone(),
                pool: n.node_pool.clone(),
                class: n.node_class.clone(),
                cpu: n.cpu_mhz,
                memory: n.memory_mb,
                meta: n.meta.clone(),
                address: n
                    .address
                    .clone()
                    .unwrap_or_else(|| format!("10.0.0.{}", i + 1)),
                status: "ready".to_string(),
                eligible: true,
                drain: false,
                drain_deadline: 0,
                fingerprinted_at: now_rfc3339(),
                create_index: index,
                modify_index: index,
            });
        }
        if let Some(seed) = &config.seed {
            for p in &seed.csi_plugins {
                inner.seed_plugins.insert(
                    p.id.clone(),
                    SeedPlugin {
                        provider: p.provider.clone().unwrap_or_else(|| p.id.clone()),
                        controller: p.controller,
                        healthy: p.healthy,
                        create_index: index,
                        modify_index: index,
                    },
                );
            }
            for t in &seed.acl_tokens {
                if t.system == "nomad" {
                    inner.tokens.insert(
                        t.secret_id.clone(),
                        AclToken {
                            accessor_id: uuid::Uuid::new_v4().to_string(),
                            management: t.management,
                            namespaces: t.namespaces.clone(),
                            capabilities: t.capabilities.clone(),
                        },
                    );
                }
            }
        }
        inner.tokens.insert(
            config.root_token.clone(),
            AclToken {
                accessor_id: uuid::Uuid::new_v4().to_string(),
                management: true,
                namespaces: vec![],
                capabilities: vec![],
            },
        );
    }

    /// How many resets happened.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Register the nodes in Consul's catalog (after both states were reset).
    pub(crate) fn nodes_for_consul(&self) -> Vec<(String, String, String)> {
        self.lock()
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.address.clone(), n.datacenter.clone()))
            .collect()
    }
}

/// The user's cluster: node names as Nomad reports them (jobs constrain
/// `${node.unique.name} = Hestia`).
fn default_nodes() -> Vec<super::seed::SeedNode> {
    [("Hestia", "amd64"), ("Heracles", "arm64"), ("Nyx", "arm64")]
        .into_iter()
        .map(|(name, arch)| super::seed::SeedNode {
            name: name.to_string(),
            datacenter: DATACENTER.to_string(),
            arch: arch.to_string(),
            node_pool: "default".to_string(),
            node_class: String::new(),
            cpu_mhz: 4000,
            memory_mb: 8192,
            meta: BTreeMap::new(),
            address: None,
        })
        .collect()
}

/// Unix time in nanoseconds.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// RFC 3339 time of now.
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "0001-01-01T00:00:00Z".to_string())
}

/// A fresh UUID string.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The `/v1/...` routes of the Nomad API.
pub fn router() -> Router<Arc<DevState>> {
    http::router()
}

/// Control-API routes that act on Nomad (fail/heal allocs, drain/lose nodes, seed CSI plugins),
/// mounted under `/_devstack` by `control::router`.
pub fn control_routes() -> Router<Arc<DevState>> {
    control::routes()
}

/// Start the simulated scheduler and clients (stops on `state.shutdown`).
pub fn spawn_background(state: Arc<DevState>) {
    sched::spawn(state);
}
