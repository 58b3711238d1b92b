//! The simulated scheduler and clients: evaluations → placements (datacenters, node pool,
//! constraints, resources, CSI claims), the allocation lifecycle over scaled time (templates
//! waiting on Vault, prestart/main/poststart tasks, health), deployments with auto-revert, job
//! status, drains and lost nodes, and the Consul catalog following allocations.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::super::DevState;
use super::super::clock::format_go_duration;
use super::super::consul::{ServiceCheck, ServiceInstance};
use super::diff::UpdateKind;
use super::{
    Alloc, Deployment, DeploymentGroup, Inner, NomadState, TaskState, csi, jobs, new_id, now_ns,
    now_rfc3339,
};

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(|x| x.as_str()).unwrap_or("")
}

fn arr(v: &Value, k: &str) -> Vec<Value> {
    v.get(k)
        .and_then(|x| x.as_array())
        .cloned()
        .unwrap_or_default()
}

fn dur(v: &Value, k: &str) -> Duration {
    Duration::from_nanos(v.get(k).and_then(|x| x.as_u64()).unwrap_or(0))
}

/// Start the scheduler loop.
pub(crate) fn spawn(state: Arc<DevState>) {
    tokio::spawn(async move {
        let tick = state
            .config
            .scaled(Duration::from_millis(250))
            .clamp(Duration::from_millis(5), Duration::from_millis(250));
        let mut generation = u64::MAX;
        // The index at which the last step found nothing to advance with time: until another
        // write, a step would walk every allocation to change nothing (at 1,000 settled jobs
        // that was a third of a core), so the loop only re-checks once per [`QUIET_RECHECK`].
        let mut quiet_at: Option<(u64, Instant)> = None;
        loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => break,
                _ = tokio::time::sleep(tick) => {}
            }
            let g = state.nomad.generation();
            if g != generation {
                generation = g;
                quiet_at = None;
                for (name, address, dc) in state.nomad.nodes_for_consul() {
                    state.consul.register_node(&name, &address, &dc);
                }
            }
            let index = state.nomad.clock.current();
            if quiet_at.is_some_and(|(at, since)| at == index && since.elapsed() < QUIET_RECHECK) {
                continue;
            }
            state
                .nomad
                .steps
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // A bug must not silently stop the simulated cluster: log and keep ticking.
            let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step(&state)));
            quiet_at = match stepped {
                Ok(Pending::Nothing) if state.nomad.clock.current() == index => {
                    Some((index, Instant::now()))
                }
                Ok(_) => None,
                Err(_) => {
                    tracing::error!("devstack nomad scheduler step panicked");
                    None
                }
            };
        }
    });
}

/// What the Consul catalog must do after a step (run outside the Nomad lock).
enum ConsulAction {
    Register(Vec<ServiceInstance>),
    Deregister(String),
    Checks(String, &'static str),
}

/// How often a quiet scheduler (nothing left to advance with time, no write since) steps anyway:
/// a safety net for state that changed without taking an index.
const QUIET_RECHECK: Duration = Duration::from_secs(1);

/// Whether the state holds work that time alone advances (a pending evaluation, an allocation
/// on its way to running and healthy, an active deployment's deadline, a lock's TTL, a drain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pending {
    Nothing,
    TimedWork,
}

/// One scheduler pass.
pub(crate) fn step(state: &Arc<DevState>) -> Pending {
    let nomad = &state.nomad;
    let mut actions = Vec::new();
    let pending;
    {
        let mut inner = nomad.lock();
        let now = Instant::now();
        super::vars::expire_locks(nomad, &mut inner, now);
        let evals = process_evals(state, &mut inner, now);
        let allocs = advance_allocs(state, &mut inner, now, &mut actions);
        let deployments = update_deployments(state, &mut inner, now);
        finish_drains(nomad, &mut inner);
        update_job_statuses(nomad, &mut inner);
        garbage_collect(nomad, &mut inner);
        let timed = evals
            || allocs
            || deployments
            || inner.vars.values().any(|v| v.lock.is_some())
            || inner.nodes.iter().any(|n| n.drain);
        pending = if timed {
            Pending::TimedWork
        } else {
            Pending::Nothing
        };
    }
    for a in actions {
        match a {
            ConsulAction::Register(list) => {
                for i in list {
                    state.consul.register_instance(i);
                }
            }
            ConsulAction::Deregister(id) => state.consul.deregister_alloc(&id),
            ConsulAction::Checks(id, status) => state.consul.set_alloc_checks(&id, status),
        }
    }
    pending
}

/// Terminal allocations and finished evaluations kept per job (Nomad GCs them over time).
const KEEP_TERMINAL: usize = 20;

/// Keep memory bounded in a long-running devstack: drop the oldest terminal allocations and
/// finished evaluations beyond [`KEEP_TERMINAL`] per job.
fn garbage_collect(nomad: &NomadState, inner: &mut Inner) {
    let mut allocs: BTreeMap<(String, String), Vec<(u64, String)>> = BTreeMap::new();
    for a in inner
        .allocs
        .values()
        .filter(|a| a.terminal() && !a.consul_registered)
    {
        allocs
            .entry((a.namespace.clone(), a.job_id.clone()))
            .or_default()
            .push((a.modify_index, a.id.clone()));
    }
    let mut evals: BTreeMap<(String, String), Vec<(u64, String)>> = BTreeMap::new();
    for e in inner
        .evals
        .values()
        .filter(|e| matches!(e.status.as_str(), "complete" | "failed" | "canceled"))
    {
        evals
            .entry((e.namespace.clone(), e.job_id.clone()))
            .or_default()
            .push((e.modify_index, e.id.clone()));
    }
    let excess = |m: BTreeMap<(String, String), Vec<(u64, String)>>| -> Vec<String> {
        m.into_values()
            .flat_map(|mut v| {
                v.sort();
                let n = v.len().saturating_sub(KEEP_TERMINAL);
                v.into_iter().take(n).map(|(_, id)| id).collect::<Vec<_>>()
            })
            .collect()
    };
    let (old_allocs, old_evals) = (excess(allocs), excess(evals));
    if old_allocs.is_empty() && old_evals.is_empty() {
        return;
    }
    nomad.write(inner, &["allocs", "evals", "job_summary"]);
    for id in old_allocs {
        inner.allocs.remove(&id);
    }
    for id in old_evals {
        inner.evals.remove(&id);
    }
}

// ---------------------------------------------------------------------------------------------
// Job status

/// Nomad's `getJobStatus`.
pub(crate) fn job_status(inner: &Inner, key: &(String, String)) -> &'static str {
    let mut facts = JobFacts::default();
    for a in inner
        .allocs
        .values()
        .filter(|a| a.namespace == key.0 && a.job_id == key.1)
    {
        facts.add_alloc(a);
    }
    for d in inner
        .deployments
        .values()
        .filter(|d| d.namespace == key.0 && d.job_id == key.1)
    {
        facts.add_deployment(d);
    }
    for ev in inner
        .evals
        .values()
        .filter(|ev| ev.namespace == key.0 && ev.job_id == key.1)
    {
        facts.add_eval(ev);
    }
    status_of(inner, key, &facts)
}

/// What a job's status is derived from, gathered from its allocations, deployments and evals.
#[derive(Debug, Default, Clone, Copy)]
struct JobFacts {
    has_alloc: bool,
    live_alloc: bool,
    active_deployment: bool,
    has_eval: bool,
    pending_eval: bool,
}

impl JobFacts {
    fn add_alloc(&mut self, a: &Alloc) {
        self.has_alloc = true;
        self.live_alloc |= !a.terminal();
    }
    fn add_deployment(&mut self, d: &super::Deployment) {
        self.active_deployment |= d.active();
    }
    fn add_eval(&mut self, ev: &super::Eval) {
        self.has_eval = true;
        self.pending_eval |= matches!(ev.status.as_str(), "pending" | "blocked");
    }
}

fn status_of(inner: &Inner, key: &(String, String), facts: &JobFacts) -> &'static str {
    let Some(e) = inner.jobs.get(key) else {
        return "dead";
    };
    let job = &e.job;
    let periodic = !job.get("Periodic").is_none_or(|p| p.is_null())
        || !job.get("ParameterizedJob").is_none_or(|p| p.is_null());
    if s(job, "Type") == "system" || periodic {
        return if job["Stop"] == json!(true) {
            "dead"
        } else {
            "running"
        };
    }
    if facts.live_alloc || facts.active_deployment {
        "running"
    } else if facts.pending_eval {
        "pending"
    } else if facts.has_alloc || facts.has_eval {
        "dead"
    } else {
        "pending"
    }
}

/// The facts entry of a job that exists (others are not looked up by the caller).
fn facts_of<'a>(
    facts: &'a mut BTreeMap<(String, String), JobFacts>,
    inner: &Inner,
    namespace: &str,
    job_id: &str,
) -> Option<&'a mut JobFacts> {
    let key = (namespace.to_string(), job_id.to_string());
    if !inner.jobs.contains_key(&key) {
        return None;
    }
    Some(facts.entry(key).or_default())
}

/// Every job's status, from one pass over allocations, deployments and evals (not one pass per
/// job: with a thousand jobs that was the devstack's busiest loop).
fn update_job_statuses(nomad: &NomadState, inner: &mut Inner) {
    let mut facts: BTreeMap<(String, String), JobFacts> = BTreeMap::new();
    for a in inner.allocs.values() {
        if let Some(f) = facts_of(&mut facts, inner, &a.namespace, &a.job_id) {
            f.add_alloc(a);
        }
    }
    for d in inner.deployments.values() {
        if let Some(f) = facts_of(&mut facts, inner, &d.namespace, &d.job_id) {
            f.add_deployment(d);
        }
    }
    for ev in inner.evals.values() {
        if let Some(f) = facts_of(&mut facts, inner, &ev.namespace, &ev.job_id) {
            f.add_eval(ev);
        }
    }
    let keys: Vec<_> = inner.jobs.keys().cloned().collect();
    for key in keys {
        let status = status_of(inner, &key, &facts.get(&key).copied().unwrap_or_default());
        let current = inner
            .jobs
            .get(&key)
            .map(|e| s(&e.job, "Status").to_string())
            .unwrap_or_default();
        if current != status {
            let index = nomad.write(inner, &["jobs"]);
            if let Some(e) = inner.jobs.get_mut(&key) {
                e.job["Status"] = json!(status);
                e.job["ModifyIndex"] = json!(index);
                let version = e.job["Version"].clone();
                for v in e.versions.iter_mut().filter(|v| v["Version"] == version) {
                    v["Status"] = json!(status);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Feasibility

/// Resolve a constraint target against a node.
fn resolve(target: &str, node: &super::Node) -> Option<String> {
    let t = target.trim();
    let Some(inner) = t.strip_prefix("${").and_then(|x| x.strip_suffix('}')) else {
        return Some(t.to_string());
    };
    match inner {
        "attr.cpu.arch" => Some(node.arch.clone()),
        "attr.kernel.name" => Some("linux".to_string()),
        "attr.os.name" => Some("ubuntu".to_string()),
        "attr.unique.hostname" | "node.unique.name" => Some(node.name.clone()),
        "node.unique.id" => Some(node.id.clone()),
        "node.datacenter" => Some(node.datacenter.clone()),
        "node.class" => Some(node.class.clone()),
        "node.pool" => Some(node.pool.clone()),
        "attr.unique.network.ip-address" => Some(node.address.clone()),
        "attr.driver.docker" => Some("1".to_string()),
        // What a client with Consul, Vault and Nomad service discovery fingerprints.
        "attr.nomad.service_discovery" | "attr.consul.connect" => Some("true".to_string()),
        "attr.nomad.version" => Some("1.10.0".to_string()),
        "attr.consul.version" => Some("1.20.0".to_string()),
        "attr.consul.grpc" => Some("8502".to_string()),
        "attr.vault.version" => Some("1.18.0".to_string()),
        "attr.os.signals" => Some(
            "SIGABRT,SIGALRM,SIGBUS,SIGCHLD,SIGCONT,SIGFPE,SIGHUP,SIGILL,SIGINT,SIGIO,SIGIOT,\
             SIGKILL,SIGPIPE,SIGPROF,SIGQUIT,SIGSEGV,SIGSTOP,SIGSYS,SIGTERM,SIGTRAP,SIGTSTP,\
             SIGTTIN,SIGTTOU,SIGURG,SIGUSR1,SIGUSR2,SIGVTALRM,SIGWINCH,SIGXCPU,SIGXFSZ"
                .to_string(),
        ),
        other => other
            .strip_prefix("meta.")
            .and_then(|k| node.meta.get(k).cloned()),
    }
}

/// Check one constraint; `Err` carries the metric key Nomad uses.
fn check_constraint(c: &Value, node: &super::Node) -> Result<(), String> {
    let l = s(c, "LTarget");
    let r = s(c, "RTarget");
    let op = s(c, "Operand");
    let op = if op.is_empty() { "=" } else { op };
    let key = format!("{l} {op} {r}");
    if op == "distinct_hosts" || op == "distinct_property" {
        return Ok(());
    }
    let lv = resolve(l, node);
    let rv = resolve(r, node);
    let ok = match op {
        "=" | "==" | "is" => lv.is_some() && lv == rv,
        "!=" | "not" => lv != rv,
        "is_set" => lv.is_some(),
        "is_not_set" => lv.is_none(),
        "regexp" => match (lv, rv) {
            (Some(l), Some(r)) => regex::Regex::new(&r).is_ok_and(|re| re.is_match(&l)),
            _ => false,
        },
        "set_contains" | "set_contains_all" => match (lv, rv) {
            (Some(l), Some(r)) => {
                let have: BTreeSet<&str> = l.split(',').map(str::trim).collect();
                r.split(',').map(str::trim).all(|x| have.contains(x))
            }
            _ => false,
        },
        "set_contains_any" => match (lv, rv) {
            (Some(l), Some(r)) => {
                let have: BTreeSet<&str> = l.split(',').map(str::trim).collect();
                r.split(',').map(str::trim).any(|x| have.contains(x))
            }
            _ => false,
        },
        "<" | "<=" | ">" | ">=" => match (lv, rv) {
            (Some(l), Some(r)) => {
                let ord = match (l.parse::<f64>(), r.parse::<f64>()) {
                    (Ok(a), Ok(b)) => a.partial_cmp(&b),
                    _ => Some(l.cmp(&r)),
                };
                matches!(
                    (op, ord),
                    ("<", Some(std::cmp::Ordering::Less))
                        | (
                            "<=",
                            Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                        )
                        | (">", Some(std::cmp::Ordering::Greater))
                        | (
                            ">=",
                            Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
                        )
                )
            }
            _ => false,
        },
        // version/semver and others: the simulated nodes satisfy them.
        _ => true,
    };
    if ok { Ok(()) } else { Err(key) }
}

fn glob_match(pattern: &str, text: &str) -> bool {
    let re = format!(
        "^{}$",
        pattern
            .split('*')
            .map(regex::escape)
            .collect::<Vec<_>>()
            .join(".*")
    );
    regex::Regex::new(&re).is_ok_and(|r| r.is_match(text))
}

/// Resource needs of a group: (cpu MHz, memory MB).
fn group_resources(group: &Value) -> (u64, u64) {
    let mut cpu = 0;
    let mut mem = 0;
    for t in arr(group, "Tasks") {
        let r = &t["Resources"];
        cpu += r["CPU"].as_u64().unwrap_or(100);
        mem += r["MemoryMB"].as_u64().unwrap_or(300);
    }
    (cpu, mem)
}

/// How many nodes a system job's group runs on: ready, eligible nodes in its datacenters and
/// pool that satisfy its constraints.
fn system_node_count(inner: &Inner, job: &Value, group: &Value) -> u64 {
    let dcs: Vec<String> = arr(job, "Datacenters")
        .iter()
        .filter_map(|d| d.as_str().map(String::from))
        .collect();
    let pool = s(job, "NodePool");
    let mut constraints = arr(job, "Constraints");
    constraints.extend(arr(group, "Constraints"));
    for t in arr(group, "Tasks") {
        constraints.extend(arr(&t, "Constraints"));
    }
    inner
        .nodes
        .iter()
        .filter(|n| n.status == "ready" && n.eligible && !n.drain)
        .filter(|n| pool == "all" || pool.is_empty() || pool == n.pool)
        .filter(|n| dcs.iter().any(|d| glob_match(d, &n.datacenter)))
        .filter(|n| constraints.iter().all(|c| check_constraint(c, n).is_ok()))
        .count() as u64
}

/// CSI claims an allocation takes: (namespace, volume id, write).
type Claims = Vec<(String, String, bool)>;

/// A chosen node and the claims the allocation takes there.
type Choice = Option<(usize, Claims)>;

/// Accumulates an `AllocMetric` for a group whose placement failed.
#[derive(Default, Debug, Clone)]
struct Metric {
    evaluated: u64,
    filtered: u64,
    in_pool: u64,
    available: BTreeMap<String, u64>,
    constraint: BTreeMap<String, u64>,
    exhausted: u64,
    dimension: BTreeMap<String, u64>,
    failures: u64,
}

impl Metric {
    fn json(&self) -> Value {
        let map = |m: &BTreeMap<String, u64>| {
            if m.is_empty() { Value::Null } else { json!(m) }
        };
        json!({"NodesEvaluated": self.evaluated, "NodesFiltered": self.filtered,
            "NodesInPool": self.in_pool, "NodesAvailable": self.available,
            "ClassFiltered": null, "ConstraintFiltered": map(&self.constraint),
            "NodesExhausted": self.exhausted, "ClassExhausted": null,
            "DimensionExhausted": map(&self.dimension), "QuotaExhausted": null,
            "ResourcesExhausted": null, "Scores": null, "ScoreMetaData": null,
            "AllocationTime": 0, "CoalescedFailures": self.failures.saturating_sub(1)})
    }
}

/// A placement decided during planning (not yet applied).
#[derive(Debug, Clone)]
struct Planned {
    node: usize,
    cpu: u64,
    memory: u64,
    job_id: String,
    group: String,
    claims: Vec<(String, String, bool)>,
}

/// The CSI volumes a group uses: (volume name in group, source, read_only, access mode).
fn csi_volumes(group: &Value, name_index: u64) -> Vec<(String, bool, String)> {
    let mut out = Vec::new();
    if let Some(vols) = group.get("Volumes").and_then(|v| v.as_object()) {
        for v in vols.values() {
            if s(v, "Type") != "csi" {
                continue;
            }
            let mut source = s(v, "Source").to_string();
            if v["PerAlloc"] == json!(true) {
                source = format!("{source}[{name_index}]");
            }
            let ro = v["ReadOnly"] == json!(true);
            out.push((source, ro, s(v, "AccessMode").to_string()));
        }
    }
    out
}

/// Pick a node for one allocation of `group`, or record why none fits.
#[allow(clippy::too_many_arguments)]
fn select_node(
    inner: &Inner,
    job: &Value,
    group: &Value,
    name_index: u64,
    planned: &[Planned],
    ignore_allocs: &BTreeSet<String>,
    metric: &mut Metric,
) -> Choice {
    let ns = s(job, "Namespace");
    let job_id = s(job, "ID");
    let gname = s(group, "Name");
    let dcs: Vec<String> = arr(job, "Datacenters")
        .iter()
        .filter_map(|d| d.as_str().map(String::from))
        .collect();
    let pool = s(job, "NodePool");
    let mut constraints = arr(job, "Constraints");
    constraints.extend(arr(group, "Constraints"));
    for t in arr(group, "Tasks") {
        constraints.extend(arr(&t, "Constraints"));
    }
    // System jobs run one allocation per feasible node.
    let distinct = matches!(s(job, "Type"), "system" | "sysbatch")
        || constraints
            .iter()
            .any(|c| s(c, "Operand") == "distinct_hosts");
    let (cpu, mem) = group_resources(group);
    let vols = csi_volumes(group, name_index);
    metric.failures += 1;
    let mut best: Option<(usize, (usize, u64))> = None;
    let mut claims_out = Vec::new();
    for (i, node) in inner.nodes.iter().enumerate() {
        if node.status != "ready" || !node.eligible || node.drain {
            continue;
        }
        if !(pool == "all" || pool.is_empty() || pool == node.pool) {
            continue;
        }
        if !dcs.iter().any(|d| glob_match(d, &node.datacenter)) {
            continue;
        }
        metric.in_pool += 1;
        *metric.available.entry(node.datacenter.clone()).or_default() += 1;
        metric.evaluated += 1;
        let mut filtered: Option<String> = None;
        for c in &constraints {
            if let Err(k) = check_constraint(c, node) {
                filtered = Some(k);
                break;
            }
        }
        let live_here =
            |a: &Alloc| a.node_id == node.id && !a.terminal() && !ignore_allocs.contains(&a.id);
        if filtered.is_none() && distinct {
            let taken = inner.allocs.values().any(|a| {
                live_here(a) && a.namespace == ns && a.job_id == job_id && a.task_group == gname
            }) || planned
                .iter()
                .any(|p| p.node == i && p.job_id == job_id && p.group == gname);
            if taken {
                filtered = Some("distinct_hosts".to_string());
            }
        }
        let mut claims = Vec::new();
        if filtered.is_none() {
            for (source, ro, mode) in &vols {
                let Some(vol) = inner.volumes.get(&(ns.to_string(), source.clone())) else {
                    filtered = Some(format!("missing CSI Volume {source}"));
                    break;
                };
                let plugin = s(&vol.spec, "PluginID");
                let nodes = csi::plugin_node_ids(inner, plugin);
                if !nodes.contains(&node.id) {
                    filtered = Some(format!(
                        "CSI plugin {plugin} is missing from client {}",
                        node.id
                    ));
                    break;
                }
                let write = !ro && !mode.contains("reader");
                if write
                    && matches!(
                        mode.as_str(),
                        "single-node-writer" | "multi-node-single-writer"
                    )
                {
                    let writers = inner
                        .allocs
                        .values()
                        .filter(|a| !a.terminal() && !ignore_allocs.contains(&a.id))
                        .filter(|a| {
                            a.claims
                                .iter()
                                .any(|(cns, cid, w)| *w && cns == ns && cid == source)
                        })
                        .count()
                        + planned
                            .iter()
                            .filter(|p| {
                                p.claims
                                    .iter()
                                    .any(|(cns, cid, w)| *w && cns == ns && cid == source)
                            })
                            .count();
                    if writers > 0 {
                        filtered = Some(format!(
                            "CSI volume {source} has exhausted its available writer claims"
                        ));
                        break;
                    }
                }
                claims.push((ns.to_string(), source.clone(), write));
            }
        }
        if let Some(k) = filtered {
            metric.filtered += 1;
            *metric.constraint.entry(k).or_default() += 1;
            continue;
        }
        let (mut used_cpu, mut used_mem, mut same_job) = (0u64, 0u64, 0usize);
        for a in inner.allocs.values().filter(|a| live_here(a)) {
            used_cpu += a.cpu;
            used_mem += a.memory;
            if a.job_id == job_id {
                same_job += 1;
            }
        }
        for p in planned.iter().filter(|p| p.node == i) {
            used_cpu += p.cpu;
            used_mem += p.memory;
            if p.job_id == job_id {
                same_job += 1;
            }
        }
        if used_cpu + cpu > node.cpu {
            metric.exhausted += 1;
            *metric.dimension.entry("cpu".to_string()).or_default() += 1;
            continue;
        }
        if used_mem + mem > node.memory {
            metric.exhausted += 1;
            *metric.dimension.entry("memory".to_string()).or_default() += 1;
            continue;
        }
        let score = (same_job, used_cpu);
        if best.as_ref().is_none_or(|(_, b)| score < *b) {
            best = Some((i, score));
            claims_out = claims;
        }
    }
    let found = best.map(|(i, _)| (i, claims_out));
    if found.is_some() {
        metric.failures -= 1;
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Reconciliation

#[derive(Debug, Default)]
struct GroupPlan {
    /// (name index, previous allocation) to place.
    place: Vec<(u64, String)>,
    stop: Vec<String>,
    inplace: Vec<String>,
    ignore: Vec<String>,
    destructive: Vec<String>,
    /// Reported as Ignore and left untouched: destructive updates held back by
    /// `update.max_parallel`, and completed batch allocations.
    deferred: Vec<String>,
    migrate: u64,
}

/// Desired changes for every group of a job (`job` None or stopped = stop everything).
fn reconcile(
    inner: &Inner,
    ns: &str,
    job_id: &str,
    job: Option<&Value>,
) -> BTreeMap<String, GroupPlan> {
    let mut out: BTreeMap<String, GroupPlan> = BTreeMap::new();
    let allocs: Vec<&Alloc> = inner
        .allocs
        .values()
        .filter(|a| a.namespace == ns && a.job_id == job_id)
        .collect();
    let stopped = job.is_none_or(|j| j["Stop"] == json!(true));
    if stopped {
        for a in allocs.iter().filter(|a| !a.terminal()) {
            out.entry(a.task_group.clone())
                .or_default()
                .stop
                .push(a.id.clone());
        }
        return out;
    }
    let Some(job) = job else {
        return out;
    };
    let batch = matches!(s(job, "Type"), "batch" | "sysbatch");
    let groups = arr(job, "TaskGroups");
    let names: BTreeSet<String> = groups.iter().map(|g| s(g, "Name").to_string()).collect();
    for a in allocs.iter().filter(|a| !a.terminal()) {
        if !names.contains(&a.task_group) {
            out.entry(a.task_group.clone())
                .or_default()
                .stop
                .push(a.id.clone());
        }
    }
    for g in &groups {
        let gname = s(g, "Name").to_string();
        let plan = out.entry(gname.clone()).or_default();
        let count = if matches!(s(job, "Type"), "system" | "sysbatch") {
            system_node_count(inner, job, g)
        } else {
            g["Count"].as_u64().unwrap_or(1)
        };
        let mut live: Vec<&&Alloc> = allocs
            .iter()
            .filter(|a| a.task_group == gname && !a.terminal())
            .collect();
        live.sort_by_key(|a| (name_index(&a.name), a.create_index));
        // Completed batch allocations count, except those of an older job version or of a
        // purged job with the same ID (Nomad's reconciler, filterOldTerminalAllocs): a new
        // version of a batch job runs again.
        let completed: Vec<&&Alloc> = if batch {
            allocs
                .iter()
                .filter(|a| {
                    a.task_group == gname
                        && a.client_status == "complete"
                        && a.desired_status == "run"
                        && !older_job(&a.job, job)
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut used: BTreeSet<u64> = BTreeSet::new();
        let mut kept = 0u64;
        for a in &completed {
            used.insert(name_index(&a.name));
            kept += 1;
            plan.deferred.push(a.id.clone());
        }
        for a in live {
            let idx = name_index(&a.name);
            if kept >= count || used.contains(&idx) {
                plan.stop.push(a.id.clone());
                continue;
            }
            used.insert(idx);
            kept += 1;
            let same = a.job["Version"] == job["Version"]
                && a.job["JobModifyIndex"] == job["JobModifyIndex"];
            if same {
                plan.ignore.push(a.id.clone());
                continue;
            }
            match jobs::group_update_kind(&a.job, job, &gname) {
                // A new JobModifyIndex always touches the alloc: in place unless destructive
                // (scheduler genericAllocUpdateFn; a count change shows `in-place update`).
                UpdateKind::Ignore | UpdateKind::InPlace => plan.inplace.push(a.id.clone()),
                UpdateKind::Destructive => {
                    plan.destructive.push(a.id.clone());
                }
            }
        }
        // Rolling update: at most `max_parallel` replacements in flight (not yet healthy).
        let max_parallel = g["Update"]["MaxParallel"].as_u64().unwrap_or(0);
        if s(job, "Type") == "service" && max_parallel > 0 {
            let in_flight = allocs
                .iter()
                .filter(|a| {
                    a.task_group == gname
                        && !a.terminal()
                        && !a.previous_allocation.is_empty()
                        && a.healthy != Some(true)
                        && a.job["Version"] == job["Version"]
                        && a.job["JobModifyIndex"] == job["JobModifyIndex"]
                })
                .count() as u64;
            let room = max_parallel.saturating_sub(in_flight) as usize;
            if plan.destructive.len() > room {
                let held = plan.destructive.split_off(room);
                plan.deferred.extend(held);
            }
        }
        let mut next = 0u64;
        while kept < count {
            while used.contains(&next) {
                next += 1;
            }
            used.insert(next);
            // Replace a failed/lost alloc of the same slot if there is one.
            let prev = allocs
                .iter()
                .filter(|a| {
                    a.task_group == gname
                        && name_index(&a.name) == next
                        && a.next_allocation.is_empty()
                        && matches!(a.client_status.as_str(), "failed" | "lost")
                })
                .map(|a| a.id.clone())
                .next()
                .unwrap_or_default();
            plan.place.push((next, prev));
            kept += 1;
        }
    }
    out
}

/// Whether `alloc_job` (the job an allocation runs) is older than `job`: a lower version, or an
/// earlier instance of the ID (a lower `CreateIndex`).
fn older_job(alloc_job: &Value, job: &Value) -> bool {
    let num = |j: &Value, k: &str| j[k].as_u64().unwrap_or(0);
    num(alloc_job, "Version") < num(job, "Version")
        || num(alloc_job, "CreateIndex") < num(job, "CreateIndex")
}

fn name_index(name: &str) -> u64 {
    name.rsplit_once('[')
        .and_then(|(_, r)| r.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Plan's dry run: `DesiredTGUpdates` and `FailedTGAllocs` for a candidate job.
pub(crate) fn dry_run(
    inner: &Inner,
    job: &Value,
    existing: Option<&Value>,
) -> (serde_json::Map<String, Value>, Value) {
    let ns = s(job, "Namespace");
    let id = s(job, "ID");
    let mut candidate = job.clone();
    // A changed spec is inserted at JobModifyIndex+1 so every alloc compares as out of date.
    let changed = existing.is_none_or(|old| super::diff::spec_changed(old, job));
    if let Some(old) = existing {
        if changed {
            candidate["Version"] = json!(old["Version"].as_u64().unwrap_or(0) + 1);
            candidate["JobModifyIndex"] = json!(old["JobModifyIndex"].as_u64().unwrap_or(0) + 1);
        } else {
            candidate = old.clone();
        }
    }
    let plans = reconcile(inner, ns, id, Some(&candidate));
    let mut desired = serde_json::Map::new();
    let mut failed = serde_json::Map::new();
    let mut planned: Vec<Planned> = Vec::new();
    let groups = arr(&candidate, "TaskGroups");
    for (gname, p) in &plans {
        let mut ignore_allocs: BTreeSet<String> = p.stop.iter().cloned().collect();
        ignore_allocs.extend(p.destructive.iter().cloned());
        if let Some(g) = groups.iter().find(|g| s(g, "Name") == gname) {
            let mut metric = Metric::default();
            let mut any_failed = false;
            let slots: Vec<u64> = p
                .place
                .iter()
                .map(|(i, _)| *i)
                .chain(p.destructive.iter().map(|a| {
                    inner
                        .allocs
                        .get(a)
                        .map(|x| name_index(&x.name))
                        .unwrap_or(0)
                }))
                .collect();
            for idx in slots {
                match select_node(
                    inner,
                    &candidate,
                    g,
                    idx,
                    &planned,
                    &ignore_allocs,
                    &mut metric,
                ) {
                    Some((node, claims)) => {
                        let (cpu, memory) = group_resources(g);
                        planned.push(Planned {
                            node,
                            cpu,
                            memory,
                            job_id: id.to_string(),
                            group: gname.clone(),
                            claims,
                        });
                    }
                    None => any_failed = true,
                }
            }
            if any_failed {
                failed.insert(gname.clone(), metric.json());
            }
        }
        desired.insert(
            gname.clone(),
            json!({"Ignore": p.ignore.len() + p.deferred.len(), "Place": p.place.len(), "Migrate": p.migrate,
                "Stop": p.stop.len(), "InPlaceUpdate": p.inplace.len(),
                "DestructiveUpdate": p.destructive.len(), "Canary": 0, "Preemptions": 0,
                "Disconnect": 0, "Reconnect": 0, "RescheduleNow": 0, "RescheduleLater": 0}),
        );
    }
    let failed = if failed.is_empty() {
        Value::Null
    } else {
        Value::Object(failed)
    };
    (desired, failed)
}

/// Process the evaluations that are due; true while any waits for its time (`not_before`).
fn process_evals(state: &Arc<DevState>, inner: &mut Inner, now: Instant) -> bool {
    let waiting = inner
        .evals
        .values()
        .any(|e| e.status == "pending" && e.not_before.is_some_and(|t| t > now));
    let mut pending: Vec<(u64, String)> = inner
        .evals
        .values()
        .filter(|e| {
            (e.status == "pending" && e.not_before.is_none_or(|t| t <= now))
                || e.status == "blocked"
        })
        .map(|e| (e.create_index, e.id.clone()))
        .collect();
    pending.sort();
    for (_, id) in pending {
        process_eval(state, inner, &id, now);
    }
    waiting
}

fn stop_alloc(a: &mut Alloc, desc: &str, index: u64) {
    a.desired_status = "stop".to_string();
    a.desired_description = desc.to_string();
    if !matches!(a.client_status.as_str(), "failed" | "lost" | "complete") {
        a.client_status = "complete".to_string();
        a.client_description = "All tasks have completed".to_string();
    }
    let t = now_rfc3339();
    for ts in a.task_states.values_mut() {
        if ts.state != "dead" {
            ts.state = "dead".to_string();
            ts.finished_at = Some(t.clone());
            ts.events.push(event("Killing", "Sent interrupt"));
            ts.events.push(event("Killed", "Task successfully killed"));
        }
    }
    a.modify_index = index;
    a.modify_time = now_ns();
}

fn event(kind: &str, msg: &str) -> Value {
    json!({"Type": kind, "Time": now_ns(), "DisplayMessage": msg, "Details": {},
        "Message": "", "FailsTask": false, "ExitCode": 0, "Signal": 0})
}

fn process_eval(state: &Arc<DevState>, inner: &mut Inner, eval_id: &str, now: Instant) {
    let nomad = &state.nomad;
    let Some(ev) = inner.evals.get(eval_id).cloned() else {
        return;
    };
    let key = (ev.namespace.clone(), ev.job_id.clone());
    let job = inner
        .jobs
        .get(&key)
        .map(|e| std::sync::Arc::new(e.job.clone()));
    let plans = reconcile(inner, &key.0, &key.1, job.as_deref());
    let blocked = ev.status == "blocked";
    let nothing = plans.values().all(|p| {
        p.place.is_empty() && p.stop.is_empty() && p.inplace.is_empty() && p.destructive.is_empty()
    });
    if blocked && nothing {
        // Satisfied by someone else (e.g. a newer eval): complete it.
        let index = nomad.write(inner, &["evals", "job_summary"]);
        if let Some(e) = inner.evals.get_mut(eval_id) {
            e.status = "complete".to_string();
            e.queued.clear();
            e.modify_index = index;
            e.modify_time = now_ns();
        }
        return;
    }
    // Try placements first: a blocked eval that still cannot place changes nothing.
    let groups = job
        .as_ref()
        .map(|j| arr(j, "TaskGroups"))
        .unwrap_or_default();
    let mut planned: Vec<Planned> = Vec::new();
    let mut placements: Vec<(String, u64, String, Choice)> = Vec::new();
    let mut failed: BTreeMap<String, Value> = BTreeMap::new();
    let mut queued: BTreeMap<String, u64> = BTreeMap::new();
    if let Some(job) = job.as_ref() {
        for (gname, p) in &plans {
            let Some(g) = groups.iter().find(|g| s(g, "Name") == gname) else {
                continue;
            };
            let mut ignore_allocs: BTreeSet<String> = p.stop.iter().cloned().collect();
            ignore_allocs.extend(p.destructive.iter().cloned());
            let mut metric = Metric::default();
            let mut nfail = 0;
            let slots: Vec<(u64, String)> = p
                .place
                .iter()
                .cloned()
                .chain(p.destructive.iter().map(|a| {
                    (
                        inner
                            .allocs
                            .get(a)
                            .map(|x| name_index(&x.name))
                            .unwrap_or(0),
                        a.clone(),
                    )
                }))
                .collect();
            for (idx, prev) in slots {
                let choice = select_node(inner, job, g, idx, &planned, &ignore_allocs, &mut metric);
                if let Some((node, claims)) = &choice {
                    let (cpu, memory) = group_resources(g);
                    planned.push(Planned {
                        node: *node,
                        cpu,
                        memory,
                        job_id: key.1.clone(),
                        group: gname.clone(),
                        claims: claims.clone(),
                    });
                } else {
                    nfail += 1;
                }
                placements.push((gname.clone(), idx, prev, choice));
            }
            if nfail > 0 {
                failed.insert(gname.clone(), metric.json());
                queued.insert(gname.clone(), nfail);
            }
        }
    }
    let placed_any = placements.iter().any(|p| p.3.is_some());
    let other_changes = plans
        .values()
        .any(|p| !p.stop.is_empty() || !p.inplace.is_empty());
    if blocked && !placed_any && !other_changes {
        return;
    }
    let index = nomad.write(inner, &["evals", "allocs", "job_summary"]);
    let t = now_ns();
    // Deployment for a new version of a service job.
    let mut deployment_id = String::new();
    if let Some(job) = job.as_ref()
        && s(job, "Type") == "service"
        && job["Stop"] != json!(true)
    {
        let version = job["Version"].as_u64().unwrap_or(0);
        let jmi = job["JobModifyIndex"].as_u64().unwrap_or(0);
        let existing = inner
            .deployments
            .values()
            .find(|d| {
                d.namespace == key.0
                    && d.job_id == key.1
                    && d.job_version == version
                    && d.job_spec_modify_index == jmi
            })
            .map(|d| d.id.clone());
        let has_update = groups.iter().any(|g| {
            g["Update"].is_object() && g["Update"]["MaxParallel"].as_u64().unwrap_or(0) > 0
        });
        match existing {
            Some(id) => deployment_id = id,
            None if has_update && (placed_any || !nothing) => {
                cancel_deployments(inner, &key, index, "Cancelled due to newer version of job");
                deployment_id = new_id();
                let mut dgroups = BTreeMap::new();
                for g in &groups {
                    let u = &g["Update"];
                    if !u.is_object() {
                        continue;
                    }
                    let pd = u["ProgressDeadline"].as_i64().unwrap_or(600_000_000_000);
                    let by = state.config.scaled(Duration::from_nanos(pd.max(0) as u64));
                    dgroups.insert(
                        s(g, "Name").to_string(),
                        DeploymentGroup {
                            auto_revert: u["AutoRevert"] == json!(true),
                            auto_promote: u["AutoPromote"] == json!(true),
                            progress_deadline: pd,
                            require_progress_by: now + by,
                            require_progress_by_wall: wall_in(by),
                            desired_total: g["Count"].as_u64().unwrap_or(1),
                            placed: 0,
                            healthy: 0,
                            unhealthy: 0,
                        },
                    );
                }
                inner.deployments.insert(
                    deployment_id.clone(),
                    Deployment {
                        id: deployment_id.clone(),
                        namespace: key.0.clone(),
                        job_id: key.1.clone(),
                        job_version: version,
                        job_modify_index: job["ModifyIndex"].as_u64().unwrap_or(0),
                        job_spec_modify_index: jmi,
                        job_create_index: job["CreateIndex"].as_u64().unwrap_or(0),
                        groups: dgroups,
                        status: "running".to_string(),
                        description: "Deployment is running".to_string(),
                        priority: ev.priority,
                        create_index: index,
                        modify_index: index,
                        create_time: t,
                        modify_time: t,
                    },
                );
                inner.tables.insert("deployment", index);
            }
            None => {}
        }
    }
    if job.as_ref().is_none_or(|j| j["Stop"] == json!(true)) {
        cancel_deployments(inner, &key, index, "Cancelled because job is stopped");
    }
    for p in plans.values() {
        for id in &p.stop {
            if let Some(a) = inner.allocs.get_mut(id) {
                stop_alloc(a, "alloc not needed due to job update", index);
            }
        }
        for id in &p.destructive {
            if let Some(a) = inner.allocs.get_mut(id) {
                stop_alloc(a, "alloc is being updated due to job update", index);
            }
        }
        for id in p.inplace.iter().chain(p.ignore.iter()) {
            if let (Some(a), Some(job)) = (inner.allocs.get_mut(id), job.as_ref()) {
                if a.job["Version"] == job["Version"]
                    && a.job["JobModifyIndex"] == job["JobModifyIndex"]
                {
                    continue;
                }
                a.job = job.clone();
                a.modify_index = index;
                a.modify_time = t;
                if !deployment_id.is_empty() {
                    a.deployment_id = deployment_id.clone();
                }
                // Services may have changed (tags): re-register.
                a.consul_registered = false;
            }
        }
    }
    let fail_next = inner.fail_next.remove(&key);
    if let Some(job) = job.as_ref() {
        for (gname, idx, prev, choice) in placements {
            let Some((node_idx, claims)) = choice else {
                continue;
            };
            let Some(g) = groups.iter().find(|g| s(g, "Name") == gname) else {
                continue;
            };
            let id = new_id();
            let node = inner.nodes[node_idx].clone();
            let ports = assign_ports(inner, &node.id, g);
            let (cpu, memory) = group_resources(g);
            let mut task_states = BTreeMap::new();
            for task in arr(g, "Tasks") {
                let lc = &task["Lifecycle"];
                task_states.insert(
                    s(&task, "Name").to_string(),
                    TaskState {
                        state: "pending".to_string(),
                        failed: false,
                        started_at: None,
                        finished_at: None,
                        events: vec![event("Received", "Task received by client")],
                        hook: s(lc, "Hook").to_string(),
                        sidecar: lc["Sidecar"] == json!(true),
                    },
                );
            }
            if !prev.is_empty()
                && let Some(p) = inner.allocs.get_mut(&prev)
            {
                p.next_allocation = id.clone();
                p.modify_index = index;
            }
            inner.allocs.insert(
                id.clone(),
                Alloc {
                    id: id.clone(),
                    eval_id: eval_id.to_string(),
                    name: format!("{}.{}[{}]", key.1, gname, idx),
                    namespace: key.0.clone(),
                    node_id: node.id.clone(),
                    node_name: node.name.clone(),
                    job_id: key.1.clone(),
                    job_type: s(job, "Type").to_string(),
                    job: job.clone(),
                    task_group: gname.clone(),
                    desired_status: "run".to_string(),
                    desired_description: String::new(),
                    client_status: "pending".to_string(),
                    client_description: "No tasks have started".to_string(),
                    task_states,
                    healthy: None,
                    health_time: None,
                    deployment_id: deployment_id.clone(),
                    previous_allocation: prev,
                    next_allocation: String::new(),
                    create_index: index,
                    modify_index: index,
                    create_time: t,
                    modify_time: t,
                    cpu,
                    memory,
                    ports,
                    claims,
                    placed_at: now,
                    ready_at: None,
                    running_at: None,
                    fail_on_start: fail_next,
                    consul_registered: false,
                    consul_passing: false,
                    failed_task: None,
                },
            );
        }
    }
    // Blocked eval bookkeeping.
    let job_modify_index = job
        .as_ref()
        .and_then(|j| j["JobModifyIndex"].as_u64())
        .unwrap_or(ev.job_modify_index);
    if blocked {
        if let Some(e) = inner.evals.get_mut(eval_id) {
            if failed.is_empty() {
                e.status = "complete".to_string();
                e.queued.clear();
            } else {
                e.queued = queued;
            }
            e.modify_index = index;
            e.modify_time = t;
        }
        return;
    }
    let mut blocked_id = String::new();
    if !failed.is_empty() {
        let existing_blocked = inner
            .evals
            .values()
            .find(|e| e.namespace == key.0 && e.job_id == key.1 && e.status == "blocked")
            .map(|e| e.id.clone());
        match existing_blocked {
            Some(b) => {
                if let Some(e) = inner.evals.get_mut(&b) {
                    e.queued = queued.clone();
                    e.modify_index = index;
                }
                blocked_id = b;
            }
            None => {
                blocked_id = new_id();
                let mut b = ev.clone();
                b.id = blocked_id.clone();
                b.status = "blocked".to_string();
                b.status_description = "created to place remaining allocations".to_string();
                b.triggered_by = "queued-allocs".to_string();
                b.previous_eval = eval_id.to_string();
                b.queued = queued.clone();
                b.failed_tg_allocs = None;
                b.job_modify_index = job_modify_index;
                b.create_index = index;
                b.modify_index = index;
                b.create_time = t;
                b.modify_time = t;
                b.not_before = None;
                inner.evals.insert(blocked_id.clone(), b);
            }
        }
    }
    if let Some(e) = inner.evals.get_mut(eval_id) {
        e.status = "complete".to_string();
        e.deployment_id = deployment_id;
        e.blocked_eval = blocked_id;
        e.failed_tg_allocs = if failed.is_empty() {
            None
        } else {
            Some(failed)
        };
        e.queued = plans
            .keys()
            .map(|g| (g.clone(), queued.get(g).copied().unwrap_or(0)))
            .collect();
        e.modify_index = index;
        e.modify_time = t;
    }
}

fn wall_in(d: Duration) -> String {
    (time::OffsetDateTime::now_utc() + d)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "0001-01-01T00:00:00Z".to_string())
}

fn cancel_deployments(inner: &mut Inner, key: &(String, String), index: u64, why: &str) {
    let mut changed = false;
    for d in inner
        .deployments
        .values_mut_where(|d| d.namespace == key.0 && d.job_id == key.1 && d.active())
    {
        {
            d.status = "cancelled".to_string();
            d.description = why.to_string();
            d.modify_index = index;
            d.modify_time = now_ns();
            changed = true;
        }
    }
    if changed {
        inner.tables.insert("deployment", index);
    }
}

/// Dynamic and reserved ports of a group, plus one per Connect sidecar.
fn assign_ports(inner: &mut Inner, node_id: &str, group: &Value) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    let mut next = inner.next_port.get(node_id).copied().unwrap_or(20000);
    for n in arr(group, "Networks") {
        for p in arr(&n, "ReservedPorts") {
            out.push((
                s(&p, "Label").to_string(),
                p["Value"].as_u64().unwrap_or(0),
                p["To"].as_u64().unwrap_or(0),
            ));
        }
        for p in arr(&n, "DynamicPorts") {
            out.push((
                s(&p, "Label").to_string(),
                next,
                p["To"].as_u64().unwrap_or(0),
            ));
            next += 1;
        }
    }
    for svc in arr(group, "Services") {
        if svc["Connect"].is_object() && !svc["Connect"]["SidecarService"].is_null() {
            out.push((format!("connect-proxy-{}", s(&svc, "Name")), next, next));
            next += 1;
        }
    }
    inner.next_port.insert(node_id.to_string(), next);
    out
}

// ---------------------------------------------------------------------------------------------
// Client simulation

/// Vault paths a template reads with `{{ with secret "p" }}` / `{{ secret "p" }}`.
pub(crate) fn template_secrets(template: &str) -> Vec<String> {
    let Ok(re) = regex::Regex::new(r#"secret\s+"([^"]+)""#) else {
        return Vec::new();
    };
    re.captures_iter(template)
        .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
        .collect()
}

/// Nomad variable paths a template reads with `{{ with nomadVar "p" }}` (an `@ns` suffix
/// names another namespace).
pub(crate) fn template_nomad_vars(template: &str) -> Vec<(String, Option<String>)> {
    let Ok(re) = regex::Regex::new(r#"nomadVar\s+"([^"@]+)(?:@([^".]+)[^"]*)?""#) else {
        return Vec::new();
    };
    re.captures_iter(template)
        .filter_map(|c| {
            let path = c.get(1)?.as_str().to_string();
            Some((path, c.get(2).map(|m| m.as_str().to_string())))
        })
        .collect()
}

fn alloc_group(a: &Alloc) -> Value {
    arr(&a.job, "TaskGroups")
        .into_iter()
        .find(|g| s(g, "Name") == a.task_group)
        .unwrap_or(Value::Null)
}

/// Terminal and deregistered, or running, health decided and in sync with Consul.
fn alloc_at_rest(a: &Alloc) -> bool {
    if a.terminal() {
        return !a.consul_registered;
    }
    a.running_at.is_some()
        && a.healthy.is_some()
        && a.job_type == "service"
        && a.consul_registered
        && a.consul_passing
}

/// Move allocations along (template, start, checks, health); true while any is not at rest.
fn advance_allocs(
    state: &Arc<DevState>,
    inner: &mut Inner,
    now: Instant,
    actions: &mut Vec<ConsulAction>,
) -> bool {
    let cfg = &state.config;
    let nomad = &state.nomad;
    // Only allocations with something left to advance are written (and so become events).
    let ids: Vec<String> = inner
        .allocs
        .values()
        .filter(|a| !alloc_at_rest(a))
        .map(|a| a.id.clone())
        .collect();
    if ids.is_empty() {
        return false;
    }
    let var_keys: BTreeSet<(String, String)> = inner.vars.keys().cloned().collect();
    let mut changed_any = false;
    let mut failure_evals: Vec<(String, String, Duration)> = Vec::new();
    let nodes: BTreeMap<String, String> = inner
        .nodes
        .iter()
        .map(|n| (n.id.clone(), n.address.clone()))
        .collect();
    for id in ids {
        let Some(a) = inner.allocs.get_mut(&id) else {
            continue;
        };
        if a.terminal() {
            if a.consul_registered {
                actions.push(ConsulAction::Deregister(a.id.clone()));
                a.consul_registered = false;
            }
            continue;
        }
        // Steady state (running, health decided, Consul in sync): nothing to advance.
        let steady = a.running_at.is_some()
            && a.healthy.is_some()
            && a.job_type == "service"
            && a.consul_registered
            && a.consul_passing;
        if steady {
            continue;
        }
        let group = alloc_group(a);
        let mut changed = false;
        if a.ready_at.is_none() {
            // Templates wait for their Vault secrets.
            // (task, event message) for every dependency a template still waits on.
            let mut missing: Vec<(String, String)> = Vec::new();
            for t in arr(&group, "Tasks") {
                let task = s(&t, "Name").to_string();
                for tpl in arr(&t, "Templates") {
                    let body = s(&tpl, "EmbeddedTmpl");
                    for p in template_secrets(body) {
                        if state.vault.template_read(&p).is_none() {
                            missing.push((task.clone(), format!("Missing: vault.read({p})")));
                        }
                    }
                    for (p, ns) in template_nomad_vars(body) {
                        let ns = ns.unwrap_or_else(|| a.namespace.clone());
                        if !var_keys.contains(&(ns.clone(), p.clone())) {
                            missing.push((
                                task.clone(),
                                format!("Missing: nomad.var.block({p}@{ns}.{})", super::REGION),
                            ));
                        }
                    }
                }
            }
            if missing.is_empty() {
                a.ready_at = Some(now);
                for ts in a.task_states.values_mut() {
                    ts.events
                        .push(event("Task Setup", "Building Task Directory"));
                }
                changed = true;
            } else {
                for (task, msg) in missing {
                    if let Some(ts) = a.task_states.get_mut(&task)
                        && !ts.events.iter().any(|e| e["DisplayMessage"] == json!(msg))
                    {
                        ts.events.push(event("Template", &msg));
                        changed = true;
                    }
                }
            }
        } else if a.running_at.is_none() {
            let ready = a.ready_at.unwrap_or(now);
            if now >= ready + cfg.scaled(Duration::from_secs(1)) {
                let t = now_rfc3339();
                if a.fail_on_start {
                    fail_alloc_tasks(a, None, "Exit Code: 1");
                    failure_evals.push((
                        a.namespace.clone(),
                        a.job_id.clone(),
                        reschedule_delay(&group),
                    ));
                } else {
                    for ts in a.task_states.values_mut() {
                        ts.events.push(event("Started", "Task started by client"));
                        ts.started_at = Some(t.clone());
                        if ts.hook == "prestart" && !ts.sidecar {
                            ts.state = "dead".to_string();
                            ts.failed = false;
                            ts.finished_at = Some(t.clone());
                            ts.events.push(event("Terminated", "Exit Code: 0"));
                        } else if ts.hook == "poststop" {
                            ts.state = "pending".to_string();
                        } else {
                            ts.state = "running".to_string();
                        }
                    }
                    a.client_status = "running".to_string();
                    a.client_description = "Tasks are running".to_string();
                    a.running_at = Some(now);
                }
                changed = true;
            }
        } else if let Some(running) = a.running_at {
            let batch = matches!(a.job_type.as_str(), "batch" | "sysbatch");
            if batch {
                if now >= running + cfg.scaled(Duration::from_secs(2)) {
                    let t = now_rfc3339();
                    for ts in a.task_states.values_mut() {
                        if ts.state != "dead" {
                            ts.state = "dead".to_string();
                            ts.finished_at = Some(t.clone());
                            ts.events.push(event("Terminated", "Exit Code: 0"));
                        }
                    }
                    a.client_status = "complete".to_string();
                    a.client_description = "All tasks have completed".to_string();
                    changed = true;
                }
            } else {
                let checks_at = running + cfg.scaled(Duration::from_secs(1));
                if a.consul_registered && !a.consul_passing && now >= checks_at {
                    actions.push(ConsulAction::Checks(a.id.clone(), "passing"));
                    a.consul_passing = true;
                }
                let min_healthy = dur(&group["Update"], "MinHealthyTime");
                if a.healthy.is_none() && now >= checks_at + cfg.scaled(min_healthy) {
                    a.healthy = Some(true);
                    a.health_time = Some(now_rfc3339());
                    changed = true;
                }
            }
        }
        // update.healthy_deadline: an allocation of a deployment that is not healthy in time
        // (e.g. a template still waiting for Vault) is marked unhealthy.
        let deadline = dur(&group["Update"], "HealthyDeadline");
        let min_healthy = dur(&group["Update"], "MinHealthyTime");
        if a.healthy.is_none()
            && !a.deployment_id.is_empty()
            && misses_healthy_deadline(cfg, a.placed_at, a.ready_at, now, deadline, min_healthy)
        {
            a.healthy = Some(false);
            a.health_time = Some(now_rfc3339());
            changed = true;
        }
        if a.client_status == "running" && !a.consul_registered && a.job_type == "service" {
            let address = nodes.get(&a.node_id).cloned().unwrap_or_default();
            let list = services_for(a, &group, &address);
            actions.push(ConsulAction::Deregister(a.id.clone()));
            if !list.is_empty() {
                actions.push(ConsulAction::Register(list));
            }
            if a.consul_passing {
                actions.push(ConsulAction::Checks(a.id.clone(), "passing"));
            }
            a.consul_registered = true;
        }
        if changed {
            changed_any = true;
            a.modify_time = now_ns();
            a.modify_index = 0; // set below once the index is taken
        }
    }
    if changed_any || !failure_evals.is_empty() {
        let index = nomad.write(inner, &["allocs", "job_summary"]);
        for a in inner.allocs.values_mut_where(|a| a.modify_index == 0) {
            a.modify_index = index;
        }
        for (ns, job_id, delay) in failure_evals {
            schedule_failure_eval(state, inner, &ns, &job_id, delay, index, now);
        }
    }
    true
}

fn reschedule_delay(group: &Value) -> Duration {
    let d = dur(&group["ReschedulePolicy"], "Delay");
    if d.is_zero() {
        Duration::from_secs(30)
    } else {
        d
    }
}

/// Mark an allocation's task (or its main tasks) failed.
/// Whether an allocation of a deployment that is not healthy yet has missed its
/// `update.healthy_deadline` at `now`. One whose client was ready in time would turn healthy on the
/// simulated timeline (ready, +1 s running, +1 s checks, + min_healthy_time) before the deadline,
/// even when the scheduler loop runs late on a loaded machine: only a late readiness (a template
/// still waiting for Vault, say) misses it.
fn misses_healthy_deadline(
    cfg: &crate::DevstackConfig,
    placed_at: Instant,
    ready_at: Option<Instant>,
    now: Instant,
    deadline: Duration,
    min_healthy: Duration,
) -> bool {
    if deadline.is_zero() || now <= placed_at + cfg.scaled(deadline) {
        return false;
    }
    let to_healthy = Duration::from_secs(2) + min_healthy;
    ready_at.is_none_or(|ready| ready + cfg.scaled(to_healthy) > placed_at + cfg.scaled(deadline))
}

pub(crate) fn fail_alloc_tasks(a: &mut Alloc, task: Option<&str>, msg: &str) {
    let t = now_rfc3339();
    for (name, ts) in a.task_states.iter_mut() {
        let target = match task {
            Some(x) => x == name,
            None => ts.hook.is_empty(),
        };
        if target {
            ts.failed = true;
            ts.events.push(event("Terminated", msg));
            ts.events
                .push(event("Not Restarting", "Error was unrecoverable"));
        }
        if ts.state != "dead" {
            ts.state = "dead".to_string();
            ts.finished_at = Some(t.clone());
        }
    }
    a.failed_task = task.map(String::from);
    a.client_status = "failed".to_string();
    a.client_description = "Failed tasks".to_string();
    if a.job_type == "service" {
        a.healthy = Some(false);
        a.health_time = Some(t);
    }
}

/// An `alloc-failure` evaluation, processed after the group's reschedule delay.
pub(crate) fn schedule_failure_eval(
    state: &Arc<DevState>,
    inner: &mut Inner,
    ns: &str,
    job_id: &str,
    delay: Duration,
    index: u64,
    now: Instant,
) {
    let key = (ns.to_string(), job_id.to_string());
    let Some(job) = inner.jobs.get(&key).map(|e| e.job.clone()) else {
        return;
    };
    if s(&job, "Type") != "service" {
        return;
    }
    let id = jobs::create_eval(inner, index, &job, "alloc-failure", 0);
    if let Some(e) = inner.evals.get_mut(&id) {
        e.not_before = Some(now + state.config.scaled(delay));
    }
    inner.tables.insert("evals", index);
}

fn interpolate(text: &str, a: &Alloc, task: &str) -> String {
    text.replace("${NOMAD_JOB_NAME}", &a.job_id)
        .replace("${NOMAD_JOB_ID}", &a.job_id)
        .replace("${NOMAD_GROUP_NAME}", &a.task_group)
        .replace("${NOMAD_TASK_NAME}", task)
        .replace("${NOMAD_ALLOC_ID}", &a.id)
        .replace("${NOMAD_NAMESPACE}", &a.namespace)
        .replace("${JOB}", &a.job_id)
        .replace("${TASKGROUP}", &a.task_group)
        .replace("${TASK}", task)
}

fn check_id(service_id: &str, name: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("{service_id}/{name}").as_bytes());
    format!("_nomad-check-{}", &hex::encode(h)[..40])
}

/// The Consul service instances of a running allocation.
fn services_for(a: &Alloc, group: &Value, address: &str) -> Vec<ServiceInstance> {
    let mut out = Vec::new();
    let mut entries: Vec<(String, Value)> = arr(group, "Services")
        .into_iter()
        .map(|s| (format!("group-{}", a.task_group), s))
        .collect();
    for t in arr(group, "Tasks") {
        for svc in arr(&t, "Services") {
            entries.push((s(&t, "Name").to_string(), svc));
        }
    }
    for (workload, svc) in entries {
        if !matches!(s(&svc, "Provider"), "" | "consul") {
            continue;
        }
        let task_name = workload.strip_prefix("group-").unwrap_or(&workload);
        let name = interpolate(s(&svc, "Name"), a, task_name);
        if name.is_empty() {
            continue;
        }
        let label = s(&svc, "PortLabel").to_string();
        let port = a
            .ports
            .iter()
            .find(|(l, _, _)| *l == label)
            .map(|(_, v, _)| *v)
            .or_else(|| label.parse::<u64>().ok())
            .unwrap_or(0);
        let id = format!("_nomad-task-{}-{}-{}-{}", a.id, workload, name, label);
        let mut meta: BTreeMap<String, String> = svc
            .get("Meta")
            .and_then(|m| m.as_object())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        meta.insert("external-source".to_string(), "nomad".to_string());
        let tags: Vec<String> = arr(&svc, "Tags")
            .iter()
            .filter_map(|t| t.as_str().map(|x| interpolate(x, a, task_name)))
            .collect();
        let checks: Vec<ServiceCheck> = arr(&svc, "Checks")
            .iter()
            .map(|c| {
                let cname = match s(c, "Name") {
                    "" => format!("service: {name:?} check"),
                    n => n.to_string(),
                };
                let ctype = s(c, "Type").to_string();
                let http = if ctype == "http" {
                    format!(
                        "{}://{}:{}{}",
                        match s(c, "Protocol") {
                            "" => "http",
                            p => p,
                        },
                        address,
                        port,
                        s(c, "Path")
                    )
                } else {
                    String::new()
                };
                ServiceCheck {
                    check_id: check_id(&id, &cname),
                    name: cname,
                    check_type: ctype,
                    status: "critical".to_string(),
                    output: String::new(),
                    interval: format_go_duration(dur(c, "Interval")),
                    timeout: format_go_duration(dur(c, "Timeout")),
                    http,
                }
            })
            .collect();
        let connect = svc["Connect"].is_object() && !svc["Connect"]["SidecarService"].is_null();
        out.push(ServiceInstance {
            id: id.clone(),
            name: name.clone(),
            tags,
            meta: meta.clone(),
            address: address.to_string(),
            port: port as u16,
            node: a.node_name.clone(),
            kind: String::new(),
            proxy_destination: None,
            alloc_id: a.id.clone(),
            checks,
        });
        if connect {
            let proxy_port = a
                .ports
                .iter()
                .find(|(l, _, _)| *l == format!("connect-proxy-{name}"))
                .map(|(_, v, _)| *v)
                .unwrap_or(0);
            let sidecar_id = format!("{id}-sidecar-proxy");
            out.push(ServiceInstance {
                id: sidecar_id.clone(),
                name: format!("{name}-sidecar-proxy"),
                tags: arr(&svc["Connect"]["SidecarService"], "Tags")
                    .iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect(),
                meta,
                address: address.to_string(),
                port: proxy_port as u16,
                node: a.node_name.clone(),
                kind: "connect-proxy".to_string(),
                proxy_destination: Some(name.clone()),
                alloc_id: a.id.clone(),
                checks: vec![ServiceCheck {
                    check_id: check_id(&sidecar_id, "Connect Sidecar Listening"),
                    name: "Connect Sidecar Listening".to_string(),
                    check_type: "tcp".to_string(),
                    status: "critical".to_string(),
                    output: String::new(),
                    interval: "10s".to_string(),
                    timeout: "2s".to_string(),
                    http: String::new(),
                }],
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Deployments

/// Count deployments' allocations and end them; true while any deployment is active.
fn update_deployments(state: &Arc<DevState>, inner: &mut Inner, now: Instant) -> bool {
    let nomad = &state.nomad;
    let active: Vec<String> = inner
        .deployments
        .values()
        .filter(|d| d.active())
        .map(|d| d.id.clone())
        .collect();
    if active.is_empty() {
        return false;
    }
    // Placed, healthy and unhealthy allocations per (deployment, group), in one pass over the
    // allocations (not one per deployment group: quadratic with a thousand jobs deploying).
    let active_ids: BTreeSet<&str> = active.iter().map(String::as_str).collect();
    let mut counts: BTreeMap<(String, String), (u64, u64, u64)> = BTreeMap::new();
    for a in inner.allocs.values() {
        if !active_ids.contains(a.deployment_id.as_str()) {
            continue;
        }
        let c = counts
            .entry((a.deployment_id.clone(), a.task_group.clone()))
            .or_default();
        c.0 += 1;
        c.1 += u64::from(a.healthy == Some(true));
        c.2 += u64::from(a.healthy == Some(false));
    }
    for id in active {
        let Some(d) = inner.deployments.get(&id).cloned() else {
            continue;
        };
        let mut groups = d.groups.clone();
        let mut progressed = false;
        for (gname, g) in groups.iter_mut() {
            let (placed, healthy, unhealthy) = counts
                .get(&(id.clone(), gname.clone()))
                .copied()
                .unwrap_or_default();
            if healthy > g.healthy {
                progressed = true;
                let by = state
                    .config
                    .scaled(Duration::from_nanos(g.progress_deadline.max(0) as u64));
                g.require_progress_by = now + by;
                g.require_progress_by_wall = wall_in(by);
            }
            g.placed = placed;
            g.healthy = healthy;
            g.unhealthy = unhealthy;
        }
        let counts_changed = groups.iter().any(|(k, g)| {
            d.groups.get(k).is_none_or(|o| {
                (o.placed, o.healthy, o.unhealthy) != (g.placed, g.healthy, g.unhealthy)
            })
        });
        let unhealthy = groups.values().any(|g| g.unhealthy > 0);
        let deadline = !progressed
            && groups
                .values()
                .any(|g| g.healthy < g.desired_total && now > g.require_progress_by);
        let done = groups.values().all(|g| g.healthy >= g.desired_total);
        if !(counts_changed || unhealthy || deadline || done) {
            continue;
        }
        if progressed && !done && !unhealthy {
            // The deployment watcher asks for the next batch of a rolling update.
            let key = (d.namespace.clone(), d.job_id.clone());
            if let Some(job) = inner.jobs.get(&key).map(|e| e.job.clone()) {
                let index = nomad.write(inner, &["evals"]);
                let eid = jobs::create_eval(inner, index, &job, "deployment-watcher", 0);
                if let Some(e) = inner.evals.get_mut(&eid) {
                    e.deployment_id = d.id.clone();
                }
            }
        }
        let index = nomad.write(inner, &["deployment"]);
        if let Some(dm) = inner.deployments.get_mut(&id) {
            dm.groups = groups.clone();
            dm.modify_index = index;
            dm.modify_time = now_ns();
        }
        if unhealthy || deadline {
            let why = if unhealthy {
                "Failed due to unhealthy allocations"
            } else {
                "Failed due to progress deadline"
            };
            fail_deployment(nomad, inner, &id, why);
        } else if done {
            if let Some(dm) = inner.deployments.get_mut(&id) {
                dm.status = "successful".to_string();
                dm.description = "Deployment completed successfully".to_string();
            }
            let key = (d.namespace.clone(), d.job_id.clone());
            jobs::set_stable(nomad, inner, &key, d.job_version, true);
        }
    }
    true
}

/// Fail a deployment; with auto_revert, roll back to the latest stable version.
pub(crate) fn fail_deployment(nomad: &NomadState, inner: &mut Inner, id: &str, why: &str) -> u64 {
    let index = nomad.write(inner, &["deployment"]);
    let Some(d) = inner.deployments.get(id).cloned() else {
        return index;
    };
    let key = (d.namespace.clone(), d.job_id.clone());
    let auto_revert = d.groups.values().any(|g| g.auto_revert);
    let mut description = why.to_string();
    let mut revert_to = None;
    if auto_revert && let Some(e) = inner.jobs.get(&key) {
        let current = e.job["Version"].as_u64().unwrap_or(0);
        let stable = e
            .versions
            .iter()
            .rev()
            .filter(|v| v["Stable"] == json!(true))
            .filter_map(|v| v["Version"].as_u64())
            .find(|v| *v != current && *v < d.job_version);
        match stable {
            Some(v) => {
                description = format!("{why} - rolling back to job version {v}");
                revert_to = Some(v);
            }
            None => {
                description = format!("{why} - no stable job version to auto revert to");
            }
        }
    }
    if let Some(dm) = inner.deployments.get_mut(id) {
        dm.status = "failed".to_string();
        dm.description = description;
        dm.modify_index = index;
        dm.modify_time = now_ns();
    }
    if let Some(v) = revert_to {
        let _ = jobs::revert_locked(nomad, inner, &key.0, &key.1, v, None, "deployment-watcher");
    }
    index
}

// ---------------------------------------------------------------------------------------------
// Nodes

/// Drain a node: migrate its allocations elsewhere.
pub(crate) fn drain_node(nomad: &NomadState, inner: &mut Inner, idx: usize, deadline: i64) -> u64 {
    let index = nomad.write(inner, &["nodes", "allocs", "evals", "job_summary"]);
    let node_id = inner.nodes[idx].id.clone();
    {
        let n = &mut inner.nodes[idx];
        n.drain = true;
        n.drain_deadline = deadline;
        n.eligible = false;
        n.modify_index = index;
    }
    let mut jobs_hit: BTreeSet<(String, String)> = BTreeSet::new();
    for a in inner
        .allocs
        .values_mut_where(|a| a.node_id == node_id && !a.terminal())
    {
        {
            stop_alloc(a, "alloc is being migrated", index);
            jobs_hit.insert((a.namespace.clone(), a.job_id.clone()));
        }
    }
    for key in jobs_hit {
        if let Some(job) = inner.jobs.get(&key).map(|e| e.job.clone()) {
            let id = jobs::create_eval(inner, index, &job, "node-drain", 0);
            if let Some(e) = inner.evals.get_mut(&id) {
                e.node_id = node_id.clone();
            }
        }
    }
    index
}

/// Mark a node down: its allocations are lost and replaced elsewhere.
pub(crate) fn lose_node(nomad: &NomadState, inner: &mut Inner, idx: usize) -> u64 {
    let index = nomad.write(inner, &["nodes", "allocs", "evals", "job_summary"]);
    let node_id = inner.nodes[idx].id.clone();
    {
        let n = &mut inner.nodes[idx];
        n.status = "down".to_string();
        n.modify_index = index;
    }
    let mut jobs_hit: BTreeSet<(String, String)> = BTreeSet::new();
    for a in inner
        .allocs
        .values_mut_where(|a| a.node_id == node_id && !a.terminal())
    {
        {
            a.client_status = "lost".to_string();
            a.desired_status = "stop".to_string();
            a.client_description = "alloc is lost since its node is down".to_string();
            a.desired_description = "alloc is lost since its node is down".to_string();
            for ts in a.task_states.values_mut() {
                ts.state = "dead".to_string();
            }
            a.modify_index = index;
            jobs_hit.insert((a.namespace.clone(), a.job_id.clone()));
        }
    }
    for key in jobs_hit {
        if let Some(job) = inner.jobs.get(&key).map(|e| e.job.clone()) {
            let id = jobs::create_eval(inner, index, &job, "node-update", 0);
            if let Some(e) = inner.evals.get_mut(&id) {
                e.node_id = node_id.clone();
            }
        }
    }
    index
}

/// A drain completes once no live allocation remains on the node.
fn finish_drains(nomad: &NomadState, inner: &mut Inner) {
    let done: Vec<usize> = inner
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.drain)
        .filter(|(_, n)| {
            !inner
                .allocs
                .values()
                .any(|a| a.node_id == n.id && !a.terminal())
        })
        .map(|(i, _)| i)
        .collect();
    if done.is_empty() {
        return;
    }
    let index = nomad.write(inner, &["nodes"]);
    for i in done {
        inner.nodes[i].drain = false;
        inner.nodes[i].modify_index = index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The allocations placed from one job version share one copy of it: memory linear in
    /// allocations, not allocations × job size (a job of 1,000 groups took > 20 GB).
    #[tokio::test]
    async fn allocations_of_one_job_version_share_one_copy_of_it() {
        let config = crate::DevstackConfig::default();
        let state = Arc::new(DevState {
            nomad: super::super::NomadState::new(&config),
            consul: crate::consul::ConsulState::new(&config),
            vault: crate::vault::VaultState::new(&config),
            faults: crate::faults::FaultTable::default(),
            requests: crate::faults::RequestLog::default(),
            shutdown: tokio_util::sync::CancellationToken::new(),
            config,
        });
        state.reset();
        let groups: Vec<Value> = (0..300)
            .map(|g| {
                json!({"Name": format!("g{g}"), "Count": 1, "Tasks": [{"Name": "t",
                    "Driver": "docker", "Config": {"image": "nginx"},
                    "Resources": {"CPU": 10, "MemoryMB": 10}}]})
            })
            .collect();
        let mut job = json!({"ID": "wide", "Name": "wide", "Type": "service",
            "Datacenters": ["*"], "TaskGroups": groups});
        let mut inner = state.nomad.lock();
        if let Err(e) = jobs::admit(&mut job, super::super::REGION, "default") {
            panic!("admit: {e:?}");
        }
        state
            .nomad
            .upsert_job(&mut inner, job, None, "job-register", 50);
        process_evals(&state, &mut inner, Instant::now());
        let copies: BTreeSet<*const Value> = inner
            .allocs
            .values()
            .map(|a| {
                let job: &Value = &a.job;
                std::ptr::from_ref(job)
            })
            .collect();
        assert_eq!(inner.allocs.len(), 300, "one allocation per group");
        assert_eq!(copies.len(), 1, "job copies held by 300 allocations");
    }

    fn node() -> super::super::Node {
        super::super::Node {
            id: "n1".into(),
            name: "hestia".into(),
            datacenter: "dc1".into(),
            arch: "amd64".into(),
            pool: "default".into(),
            class: String::new(),
            cpu: 4000,
            memory: 8192,
            meta: [("role".to_string(), "edge".to_string())].into(),
            address: "10.0.0.10".into(),
            status: "ready".into(),
            eligible: true,
            drain: false,
            drain_deadline: 0,
            fingerprinted_at: String::new(),
            create_index: 1,
            modify_index: 1,
        }
    }

    #[test]
    fn only_a_late_readiness_misses_the_healthy_deadline() {
        let cfg = crate::DevstackConfig {
            time_scale: 0.01,
            ..Default::default()
        };
        let placed = Instant::now();
        let deadline = Duration::from_secs(300); // 3 s at this scale
        let min = Duration::from_secs(10);
        let late = placed + Duration::from_secs(4);
        // Ready at once, but the loop ran 4 s late: it would have been healthy in time.
        assert!(!misses_healthy_deadline(
            &cfg,
            placed,
            Some(placed),
            late,
            deadline,
            min
        ));
        // Never ready (a template waiting for Vault): unhealthy once the deadline passed.
        assert!(misses_healthy_deadline(
            &cfg, placed, None, late, deadline, min
        ));
        // Ready too late to be healthy before the deadline.
        let ready = placed + Duration::from_millis(2900);
        assert!(misses_healthy_deadline(
            &cfg,
            placed,
            Some(ready),
            late,
            deadline,
            min
        ));
        // Before the deadline nothing is missed; a zero deadline is never missed.
        assert!(!misses_healthy_deadline(
            &cfg,
            placed,
            None,
            placed + Duration::from_secs(2),
            deadline,
            min
        ));
        assert!(!misses_healthy_deadline(
            &cfg,
            placed,
            None,
            late,
            Duration::ZERO,
            min
        ));
    }

    #[test]
    fn constraints_resolve_node_attributes_and_meta() {
        let n = node();
        let c = |l: &str, op: &str, r: &str| json!({"LTarget": l, "Operand": op, "RTarget": r});
        assert!(check_constraint(&c("${attr.cpu.arch}", "=", "amd64"), &n).is_ok());
        assert_eq!(
            check_constraint(&c("${attr.cpu.arch}", "=", "arm64"), &n),
            Err("${attr.cpu.arch} = arm64".to_string())
        );
        assert!(check_constraint(&c("${node.unique.name}", "!=", "nyx"), &n).is_ok());
        assert!(check_constraint(&c("${meta.role}", "regexp", "^ed"), &n).is_ok());
        assert!(check_constraint(&c("${meta.role}", "is_set", ""), &n).is_ok());
        assert!(check_constraint(&c("${meta.nope}", "is_set", ""), &n).is_err());
        assert!(check_constraint(&c("a,b,c", "set_contains", "a,c"), &n).is_ok());
    }

    #[test]
    fn template_secret_paths_are_found() {
        assert_eq!(
            template_secrets("{{ with secret \"nomad/default/overseerr\" }}x{{ end }}"),
            vec!["nomad/default/overseerr".to_string()]
        );
    }

    #[test]
    fn template_nomad_var_paths_are_found() {
        assert_eq!(
            template_nomad_vars("{{ with nomadVar \"nomad/jobs/n8n/n8n/n8n\" }}{{ .x }}{{ end }}"),
            vec![("nomad/jobs/n8n/n8n/n8n".to_string(), None)]
        );
        assert_eq!(
            template_nomad_vars("{{ with nomadVar \"a/b@ops.global\" }}{{ end }}"),
            vec![("a/b".to_string(), Some("ops".to_string()))]
        );
    }

    #[test]
    fn datacenter_globs() {
        assert!(glob_match("*", "dc1"));
        assert!(glob_match("dc*", "dc1"));
        assert!(!glob_match("eu-*", "dc1"));
    }
}
