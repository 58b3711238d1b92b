//! What the reconcile bench counts: the devstack's request log (Nomad by kind, Consul and Vault
//! by what they cost), and CPU time read from `/proc` (no libc: per-thread `schedstat` in
//! nanoseconds, else `stat` clock ticks).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

/// One request the devstack served.
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    #[serde(rename = "Seq")]
    pub seq: u64,
    #[serde(rename = "System")]
    pub system: String,
    #[serde(rename = "Method")]
    pub method: String,
    #[serde(rename = "Path")]
    pub path: String,
    #[serde(rename = "Query", default)]
    pub query: String,
}

/// Reads `GET /_devstack/requests` (the control API is not itself logged).
pub struct RequestLog {
    url: String,
    http: reqwest::Client,
    cursor: Mutex<u64>,
}

impl RequestLog {
    pub fn new(nomad_url: &str) -> RequestLog {
        RequestLog {
            url: format!("{nomad_url}/_devstack/requests"),
            http: reqwest::Client::new(),
            cursor: Mutex::new(0),
        }
    }

    async fn fetch(&self, system: Option<&str>, since: u64) -> Vec<Entry> {
        let mut query = vec![("since", since.to_string())];
        if let Some(system) = system {
            query.push(("system", system.to_string()));
        }
        let response = self
            .http
            .get(&self.url)
            .query(&query)
            .send()
            .await
            .unwrap_or_else(|e| panic!("request log: {e}"));
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("request log body: {e}"));
        let entries = body.get("entries").cloned().unwrap_or(body);
        serde_json::from_value(entries).unwrap_or_else(|e| panic!("request log entries: {e}"))
    }

    /// The newest sequence number of any system (sequence numbers are shared by all systems).
    pub async fn last_seq(&self) -> u64 {
        let since = *self.cursor.lock().unwrap_or_else(|p| p.into_inner());
        let newest = self
            .fetch(None, since)
            .await
            .iter()
            .map(|e| e.seq)
            .max()
            .unwrap_or(since);
        *self.cursor.lock().unwrap_or_else(|p| p.into_inner()) = newest;
        newest
    }

    /// Nomad requests after `seq`.
    pub async fn since(&self, seq: u64) -> Vec<Entry> {
        self.fetch(Some("nomad"), seq)
            .await
            .into_iter()
            .filter(|e| e.system.eq_ignore_ascii_case("nomad"))
            .collect()
    }

    /// Requests of `system` (`consul`, `vault`) after `seq`.
    pub async fn of_system_since(&self, system: &str, seq: u64) -> Vec<Entry> {
        self.fetch(Some(system), seq)
            .await
            .into_iter()
            .filter(|e| e.system.eq_ignore_ascii_case(system))
            .collect()
    }

    /// Sequence numbers of the bench's own request (`method` on `/v1/job/<job>`) after `seq`.
    pub async fn own_request(&self, seq: u64, method: &str, job: &str) -> Vec<u64> {
        let path = format!("/v1/job/{job}");
        self.since(seq)
            .await
            .iter()
            .filter(|e| e.method == method && e.path == path)
            .map(|e| e.seq)
            .take(1)
            .collect()
    }
}

/// Nomad requests by kind.
#[derive(Debug, Clone, Default)]
pub struct Kinds {
    pub parse: u64,
    pub plan: u64,
    pub register: u64,
    pub list: u64,
    /// Of `list`: blocking queries (`index` > 0).
    pub blocking_list: u64,
    pub deployment: u64,
    pub allocations: u64,
    pub other: u64,
    /// Every request as `METHOD /path` with IDs folded to `{id}`.
    pub by_endpoint: BTreeMap<String, u64>,
}

/// The kind of one request.
fn kind(method: &str, path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let write = method == "POST" || method == "PUT";
    match segments.as_slice() {
        ["v1", "jobs", "parse"] => "parse",
        ["v1", "job", _, "plan"] => "plan",
        ["v1", "jobs"] | ["v1", "job", _] if write => "register",
        ["v1", "jobs"] | ["v1", "volumes"] if method == "GET" => "list",
        ["v1", "job", _, "deployment" | "deployments"] | ["v1", "deployment", ..] => "deployment",
        ["v1", "job", _, "allocations"] | ["v1", "allocation" | "allocations", ..] => "allocations",
        _ => "other",
    }
}

/// `/v1/job/app-03/plan` → `/v1/job/{id}/plan`.
fn endpoint(method: &str, path: &str) -> String {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let folded: Vec<&str> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let after_singular = i == 2
                && matches!(
                    segments[1],
                    "job" | "deployment" | "allocation" | "evaluation" | "node"
                );
            let after_csi = i == 3 && segments[1] == "volume" && segments[2] == "csi";
            if after_singular || after_csi {
                "{id}"
            } else {
                s
            }
        })
        .collect();
    format!("{method} /{}", folded.join("/"))
}

impl Kinds {
    pub fn count<'a>(entries: impl Iterator<Item = &'a Entry>) -> Kinds {
        let mut k = Kinds::default();
        for e in entries {
            match kind(&e.method, &e.path) {
                "parse" => k.parse += 1,
                "plan" => k.plan += 1,
                "register" => k.register += 1,
                "list" => {
                    k.list += 1;
                    if is_blocking(&e.query) {
                        k.blocking_list += 1;
                    }
                }
                "deployment" => k.deployment += 1,
                "allocations" => k.allocations += 1,
                _ => k.other += 1,
            }
            *k.by_endpoint
                .entry(endpoint(&e.method, &e.path))
                .or_default() += 1;
        }
        k
    }

    pub fn total(&self) -> u64 {
        self.parse
            + self.plan
            + self.register
            + self.list
            + self.deployment
            + self.allocations
            + self.other
    }

    pub fn json(&self) -> Value {
        json!({
            "total": self.total(),
            "parse": self.parse,
            "plan": self.plan,
            "register": self.register,
            "list": self.list,
            "blocking_list": self.blocking_list,
            "deployment": self.deployment,
            "allocations": self.allocations,
            "other": self.other,
            "by_endpoint": self.by_endpoint,
        })
    }
}

/// Whether a request is a blocking query (`index` > 0 in its query string).
fn is_blocking(query: &str) -> bool {
    query
        .split('&')
        .filter_map(|p| p.strip_prefix("index="))
        .any(|i| i.parse::<u64>().is_ok_and(|i| i > 0))
}

/// Consul and Vault requests: what an unchanged cycle must not cost (Consul) or costs once per
/// requirement (Vault).
#[derive(Debug, Clone, Default)]
pub struct ConsulVault {
    /// Consul requests other than blocking queries (reads that polled, writes).
    pub consul: u64,
    /// Consul blocking queries answered (a watcher's held list that returned).
    pub consul_blocking: u64,
    /// Of `consul`: config-entry writes (`PUT /v1/config`).
    pub consul_writes: u64,
    /// Vault secret reads (`GET /v1/<mount>/...` outside `sys/` and `auth/`), by path.
    pub vault_reads: BTreeMap<String, u64>,
    /// Every other Vault request (mount lookups, logins).
    pub vault_other: u64,
}

impl ConsulVault {
    pub fn count(consul: &[Entry], vault: &[Entry]) -> ConsulVault {
        let mut c = ConsulVault::default();
        for e in consul {
            if e.method == "GET" && is_blocking(&e.query) {
                c.consul_blocking += 1;
            } else {
                c.consul += 1;
                if e.method == "PUT" && e.path == "/v1/config" {
                    c.consul_writes += 1;
                }
            }
        }
        for e in vault {
            let internal = e.path.starts_with("/v1/sys/") || e.path.starts_with("/v1/auth/");
            if e.method == "GET" && !internal {
                *c.vault_reads.entry(e.path.clone()).or_default() += 1;
            } else {
                c.vault_other += 1;
            }
        }
        c
    }

    /// Every secret read.
    pub fn vault_read_total(&self) -> u64 {
        self.vault_reads.values().sum()
    }

    pub fn json(&self) -> Value {
        json!({
            "consul": self.consul,
            "consul_blocking": self.consul_blocking,
            "consul_writes": self.consul_writes,
            "vault_reads": self.vault_read_total(),
            "vault_reads_by_path": self.vault_reads,
            "vault_other": self.vault_other,
        })
    }
}

/// S3 requests, from the embedded S3 server's own log (`S3Server::requests`): S3 has no watch,
/// so an unchanged cycle reads each bucket again (one `HeadBucket`, plus one read per declared
/// setting).
#[derive(Debug, Clone, Default)]
pub struct S3Counts {
    /// Every request.
    pub total: u64,
    /// `HeadBucket` (one per bucket read), by bucket.
    pub heads: BTreeMap<String, u64>,
    /// Other reads (`GET`: a setting, or a listing).
    pub other_reads: u64,
    /// Writes (`PUT`, `POST`, `DELETE`).
    pub writes: u64,
}

impl S3Counts {
    pub fn count(requests: &[drover_devstack::s3::S3Request]) -> S3Counts {
        let mut c = S3Counts::default();
        for r in requests {
            c.total += 1;
            if r.method == "HEAD" {
                *c.heads.entry(r.bucket().to_string()).or_default() += 1;
            } else if r.is_read() {
                c.other_reads += 1;
            } else {
                c.writes += 1;
            }
        }
        c
    }

    pub fn json(&self) -> Value {
        json!({
            "total": self.total,
            "head_bucket": self.heads.values().sum::<u64>(),
            "head_bucket_by_bucket": self.heads,
            "other_reads": self.other_reads,
            "writes": self.writes,
        })
    }
}

/// CPU time from `/proc`.
pub struct Cpu;

/// Linux's `USER_HZ` (100 on every mainstream architecture).
const TICKS_PER_SECOND: u64 = 100;

impl Cpu {
    /// `utime + stime` of the whole process (`/proc/self/stat`, clock ticks).
    pub fn process() -> Duration {
        Self::of_process("self")
    }

    /// `utime + stime` of process `pid` (`self`: this one).
    pub fn of_process(pid: &str) -> Duration {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| stat_ticks(&s))
            .map(ticks)
            .unwrap_or_default()
    }

    /// CPU time of the live threads whose name starts with `prefix` (the bench names runtime
    /// threads; `schedstat` is in nanoseconds, `stat` in ticks as a fallback).
    pub fn threads_with_prefix(prefix: &str) -> Duration {
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
            return Duration::ZERO;
        };
        let mut total = Duration::ZERO;
        for task in dir.flatten() {
            let path = task.path();
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if !name.starts_with(prefix) {
                continue;
            }
            let from_schedstat = std::fs::read_to_string(path.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .map(Duration::from_nanos);
            let used = from_schedstat.or_else(|| {
                std::fs::read_to_string(path.join("stat"))
                    .ok()
                    .and_then(|s| stat_ticks(&s))
                    .map(ticks)
            });
            total += used.unwrap_or_default();
        }
        total
    }

    /// Where per-thread numbers come from on this machine.
    pub fn source() -> &'static str {
        if std::path::Path::new("/proc/self/schedstat").exists() {
            "schedstat (ns) per thread; /proc/self/stat utime+stime for the process"
        } else {
            "stat ticks per thread and for the process"
        }
    }
}

fn ticks(n: u64) -> Duration {
    Duration::from_millis(n * 1000 / TICKS_PER_SECOND)
}

/// `utime + stime` from a `stat` line (fields 14 and 15; the name in parentheses may hold spaces).
fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}
