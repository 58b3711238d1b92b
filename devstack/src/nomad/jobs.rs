//! Job endpoints: list, parse, register (EnforceIndex, SpecChanged, versions), read, stop/purge,
//! plan, versions, submission, revert, stable, summary, scale and the per-job sub-lists.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::super::DevState;
use super::diff::UpdateKind;
use super::fallback;
use super::http::{
    ApiError, ApiResult, Req, blocking, field, list_namespaces, ns_ok, obj, require, with_meta,
    write_reply,
};
use super::{Eval, Inner, JobEntry, NomadState, REGION, TRACKED_VERSIONS, misc, now_ns, sched};
use crate::faults::WrittenObject;

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(|x| x.as_str()).unwrap_or("")
}

fn u(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(|x| x.as_u64()).unwrap_or(0)
}

/// `JobSummary` computed from the job's allocations and queued evals.
pub(crate) fn summary_json(inner: &Inner, e: &JobEntry) -> Value {
    let ns = s(&e.job, "Namespace");
    let id = s(&e.job, "ID");
    let mut groups = serde_json::Map::new();
    for g in e.job["TaskGroups"].as_array().into_iter().flatten() {
        let name = s(g, "Name");
        let mut counts = [0u64; 7];
        for a in inner.allocs.values() {
            if a.namespace != ns || a.job_id != id || a.task_group != name {
                continue;
            }
            let slot = match a.client_status.as_str() {
                "pending" => 1,
                "running" => 2,
                "complete" => 3,
                "failed" => 4,
                "lost" => 5,
                "unknown" => 6,
                _ => continue,
            };
            counts[slot] += 1;
        }
        counts[0] = inner
            .evals
            .values()
            .filter(|ev| ev.namespace == ns && ev.job_id == id && ev.status == "blocked")
            .filter_map(|ev| ev.queued.get(name))
            .sum();
        groups.insert(
            name.to_string(),
            json!({"Queued": counts[0], "Complete": counts[3], "Failed": counts[4],
                "Running": counts[2], "Starting": counts[1], "Lost": counts[5], "Unknown": counts[6]}),
        );
    }
    // The summary changes whenever one of the job's allocations does.
    let modify = inner
        .allocs
        .values()
        .filter(|a| a.namespace == ns && a.job_id == id)
        .map(|a| a.modify_index)
        .fold(e.summary_index, u64::max);
    json!({"JobID": id, "Namespace": ns, "Summary": groups,
        "Children": {"Pending": 0, "Running": 0, "Dead": 0},
        "CreateIndex": e.summary_create, "ModifyIndex": modify})
}

fn stub(inner: &Inner, e: &JobEntry, with_meta_field: bool) -> Value {
    let j = &e.job;
    let mut out = obj(vec![
        ("ID", j["ID"].clone()),
        ("ParentID", json!(s(j, "ParentID"))),
        ("Name", j["Name"].clone()),
        ("Namespace", j["Namespace"].clone()),
        ("Datacenters", j["Datacenters"].clone()),
        ("NodePool", j["NodePool"].clone()),
        (
            "Multiregion",
            j.get("Multiregion").cloned().unwrap_or(Value::Null),
        ),
        ("Type", j["Type"].clone()),
        ("Priority", j["Priority"].clone()),
        (
            "Periodic",
            json!(!j.get("Periodic").is_none_or(|p| p.is_null())),
        ),
        (
            "ParameterizedJob",
            json!(!j.get("ParameterizedJob").is_none_or(|p| p.is_null())),
        ),
        ("Stop", j["Stop"].clone()),
        ("Status", j["Status"].clone()),
        ("StatusDescription", j["StatusDescription"].clone()),
        ("JobSummary", summary_json(inner, e)),
        ("CreateIndex", j["CreateIndex"].clone()),
        ("ModifyIndex", j["ModifyIndex"].clone()),
        ("JobModifyIndex", j["JobModifyIndex"].clone()),
        ("SubmitTime", j["SubmitTime"].clone()),
    ]);
    if with_meta_field
        && let Some(m) = j
            .get("Meta")
            .filter(|m| m.as_object().is_some_and(|o| !o.is_empty()))
        && let Some(o) = out.as_object_mut()
    {
        o.insert("Meta".into(), m.clone());
    }
    out
}

/// `GET /v1/jobs`.
pub(crate) async fn list(st: &Arc<DevState>, req: &Req) -> ApiResult {
    let filter = list_namespaces(st, req, "list-jobs")?;
    let prefix = req.q("prefix").unwrap_or("").to_string();
    let meta = req.flag("meta");
    blocking(
        st,
        req,
        |i| i.table_index(&["jobs", "job_summary"]),
        |inner, _| {
            let out: Vec<Value> = inner
                .jobs
                .iter()
                .filter(|((ns, id), _)| ns_ok(&filter, ns) && id.starts_with(&prefix))
                .map(|(_, e)| stub(inner, e, meta))
                .collect();
            Ok(Value::Array(out))
        },
    )
    .await
}

/// `PUT|POST /v1/jobs/parse`.
pub(crate) async fn parse(st: &Arc<DevState>, req: &Req) -> ApiResult {
    let ns = req.namespace();
    let c = super::http::caller(st, req)?;
    if !(c.can(&ns, "parse-job") || c.can(&ns, "submit-job")) {
        return Err(ApiError::forbidden("Permission denied"));
    }
    let body = req.json()?;
    let hcl = field(&body, "JobHCL")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    if hcl.is_empty() {
        return Err(ApiError::bad("Job spec is empty"));
    }
    let vars = field(&body, "Variables")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let mut job = drover_jobspec::parse(hcl, vars)
        .map_err(|e| ApiError::bad(format!("Failed to parse job: {}", e.message)))?;
    if field(&body, "Canonicalize")
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
    {
        super::canonicalize::canonicalize(&mut job);
    }
    let mut resp = axum::response::IntoResponse::into_response(axum::Json(job));
    *resp.status_mut() = StatusCode::OK;
    Ok(resp)
}

/// `GET /v1/job/:id`.
pub(crate) async fn get(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let ns = req.namespace();
    require(st, req, &ns, "read-job")?;
    let key = (ns, id.to_string());
    blocking(
        st,
        req,
        |i| {
            i.jobs
                .get(&key)
                .map(|e| u(&e.job, "ModifyIndex"))
                .unwrap_or_else(|| i.table_index(&["jobs"]))
        },
        |inner, _| {
            inner
                .jobs
                .get(&key)
                .map(|e| e.job.clone())
                .ok_or_else(|| ApiError::not_found("job not found"))
        },
    )
    .await
}

/// The outcome of inserting a job (register, stop, revert, scale).
pub(crate) struct Upsert {
    pub eval_id: String,
    pub eval_index: u64,
    pub job_modify_index: u64,
    pub index: u64,
}

impl Upsert {
    /// For the request log: the job written and the version it created, if any (an unchanged
    /// re-register creates none; a new version is stamped `JobModifyIndex` = this write).
    pub(crate) fn written(&self, inner: &Inner, key: &(String, String)) -> WrittenObject {
        let version = inner
            .jobs
            .get(key)
            .filter(|e| {
                self.job_modify_index == self.index && u(&e.job, "JobModifyIndex") == self.index
            })
            .map(|e| u(&e.job, "Version"));
        WrittenObject {
            object: format!("job {}/{}", key.0, key.1),
            version,
        }
    }
}

/// Create an evaluation for a job at `index`.
pub(crate) fn create_eval(
    inner: &mut Inner,
    index: u64,
    job: &Value,
    triggered_by: &str,
    priority: i64,
) -> String {
    let id = super::new_id();
    let now = now_ns();
    inner.evals.insert(
        id.clone(),
        Eval {
            id: id.clone(),
            namespace: s(job, "Namespace").to_string(),
            priority: if priority > 0 {
                priority
            } else {
                job["Priority"].as_i64().unwrap_or(50)
            },
            job_type: s(job, "Type").to_string(),
            triggered_by: triggered_by.to_string(),
            job_id: s(job, "ID").to_string(),
            job_modify_index: u(job, "JobModifyIndex"),
            node_id: String::new(),
            deployment_id: String::new(),
            status: "pending".to_string(),
            status_description: String::new(),
            previous_eval: String::new(),
            blocked_eval: String::new(),
            failed_tg_allocs: None,
            queued: Default::default(),
            create_index: index,
            modify_index: index,
            create_time: now,
            modify_time: now,
            not_before: None,
        },
    );
    id
}

fn no_eval(job: &Value) -> bool {
    !job.get("Periodic").is_none_or(|p| p.is_null())
        || !job.get("ParameterizedJob").is_none_or(|p| p.is_null())
}

impl NomadState {
    /// Insert a job as `upsertJobImpl` does: a new version only when the spec changed; an
    /// evaluation either way (except periodic/parameterized jobs).
    pub(crate) fn upsert_job(
        &self,
        inner: &mut Inner,
        job: Value,
        submission: Option<Value>,
        triggered_by: &str,
        eval_priority: i64,
    ) -> Upsert {
        self.upsert_job_versioned(inner, job, submission, triggered_by, eval_priority, false)
    }

    /// [`Self::upsert_job`], but `new_version` writes a new version even when the stored spec
    /// equals `job` (a `PreserveCounts` register whose body carried other counts).
    pub(crate) fn upsert_job_versioned(
        &self,
        inner: &mut Inner,
        mut job: Value,
        submission: Option<Value>,
        triggered_by: &str,
        eval_priority: i64,
        new_version: bool,
    ) -> Upsert {
        let key = (s(&job, "Namespace").to_string(), s(&job, "ID").to_string());
        let existing = inner.jobs.get(&key).map(|e| e.job.clone());
        let make_eval = !no_eval(&job);
        if let Some(old) = existing.as_ref()
            && !new_version
            && !super::diff::spec_changed(old, &job)
        {
            let index = self.write(inner, &["evals"]);
            let (eval_id, eval_index) = if make_eval {
                (
                    create_eval(inner, index, old, triggered_by, eval_priority),
                    index,
                )
            } else {
                (String::new(), 0)
            };
            return Upsert {
                eval_id,
                eval_index,
                job_modify_index: u(old, "ModifyIndex"),
                index,
            };
        }
        let index = self.write(inner, &["jobs", "evals", "job_summary"]);
        let (version, create_index) = match existing.as_ref() {
            Some(old) => (u(old, "Version") + 1, u(old, "CreateIndex")),
            None => (0, index),
        };
        if let Some(o) = job.as_object_mut() {
            o.insert("Version".into(), json!(version));
            o.insert("CreateIndex".into(), json!(create_index));
            o.insert("ModifyIndex".into(), json!(index));
            o.insert("JobModifyIndex".into(), json!(index));
            o.insert("SubmitTime".into(), json!(now_ns()));
            o.insert("Stable".into(), json!(false));
            o.insert("Status".into(), json!("pending"));
        }
        let entry = inner.jobs.get_or_insert_with(key.clone(), || JobEntry {
            job: Value::Null,
            versions: Vec::new(),
            submissions: Default::default(),
            summary_index: index,
            summary_create: index,
        });
        entry.summary_index = index;
        if let Some(mut sub) = submission {
            if let Some(o) = sub.as_object_mut() {
                o.insert("Namespace".into(), json!(key.0));
                o.insert("JobID".into(), json!(key.1));
                o.insert("Version".into(), json!(version));
                o.insert("JobModifyIndex".into(), json!(index));
            }
            entry.submissions.insert(version, sub);
        }
        entry.versions.push(job.clone());
        while entry.versions.len() > TRACKED_VERSIONS {
            let dropped = entry.versions.remove(0);
            entry.submissions.remove(&u(&dropped, "Version"));
        }
        entry.job = job.clone();
        let eval_id = if make_eval {
            create_eval(inner, index, &job, triggered_by, eval_priority)
        } else {
            String::new()
        };
        let status = sched::job_status(inner, &key);
        if let Some(e) = inner.jobs.get_mut(&key) {
            e.job["Status"] = json!(status);
            if let Some(v) = e.versions.last_mut() {
                v["Status"] = json!(status);
            }
        }
        Upsert {
            eval_index: if eval_id.is_empty() { 0 } else { index },
            eval_id,
            job_modify_index: index,
            index,
        }
    }
}

fn register_response(up: &Upsert) -> Value {
    with_meta(
        json!({"EvalID": up.eval_id, "EvalCreateIndex": up.eval_index,
            "JobModifyIndex": up.job_modify_index, "Warnings": ""}),
        up.index,
    )
}

/// Namespace precedence: query, body, job, `default`.
fn pick_namespace(req: &Req, body: &Value, job: &Value) -> String {
    if let Some(ns) = req.q("namespace").filter(|n| !n.is_empty()) {
        return ns.to_string();
    }
    for v in [field(body, "Namespace"), job.get("Namespace")] {
        if let Some(ns) = v.and_then(|v| v.as_str()).filter(|n| !n.is_empty()) {
            return ns.to_string();
        }
    }
    "default".to_string()
}

/// Region precedence: query, body, job, agent; `global` is the agent's region.
fn pick_region(req: &Req, body: &Value, job: &Value) -> String {
    let mut region = REGION.to_string();
    if let Some(r) = req.q("region").filter(|r| !r.is_empty()) {
        region = r.to_string();
    } else {
        for v in [field(body, "Region"), job.get("Region")] {
            if let Some(r) = v.and_then(|v| v.as_str()).filter(|r| !r.is_empty()) {
                region = r.to_string();
                break;
            }
        }
    }
    if region == "global" {
        REGION.to_string()
    } else {
        region
    }
}

/// Admission: canonicalize + server mutators, then validation (500 multierror).
pub(crate) fn admit(job: &mut Value, region: &str, namespace: &str) -> Result<(), ApiError> {
    if let Some(o) = job.as_object_mut() {
        o.insert("Namespace".into(), json!(namespace));
        o.insert("Region".into(), json!(region));
    }
    super::canonicalize::admit(job, region);
    fallback::admit_defaults(job, region, namespace);
    super::canonicalize::validate(job).map_err(ApiError::internal)
}

fn check_job_request(body: &Value, url_id: Option<&str>) -> Result<Value, ApiError> {
    let job = match field(body, "Job") {
        Some(j) if j.is_object() => j.clone(),
        _ => return Err(ApiError::bad("Job must be specified")),
    };
    let id = s(&job, "ID");
    if id.is_empty() {
        return Err(ApiError::bad("Job ID hasn't been provided"));
    }
    if let Some(u) = url_id
        && u != id
    {
        return Err(ApiError::bad("Job ID does not match name"));
    }
    Ok(job)
}

/// `PUT|POST /v1/jobs` and `/v1/job/:id`.
pub(crate) async fn register(st: &Arc<DevState>, req: &Req, url_id: Option<&str>) -> ApiResult {
    let body = req.json()?;
    let mut job = check_job_request(&body, url_id)?;
    if s(&job, "Type") == "system"
        && job["TaskGroups"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|g| !g.get("Scaling").is_none_or(|x| x.is_null()))
    {
        return Err(ApiError::bad(
            "Task groups with job type system do not support scaling blocks",
        ));
    }
    let eval_priority = field(&body, "EvalPriority")
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    if eval_priority != 0 && !(1..=100).contains(&eval_priority) {
        return Err(ApiError::bad(
            "Eval priority must be between 1 and 100 inclusively",
        ));
    }
    let ns = pick_namespace(req, &body, &job);
    let region = pick_region(req, &body, &job);
    admit(&mut job, &region, &ns)?;
    let caller = require(st, req, &ns, "submit-job")?;
    job["NomadTokenID"] = json!(caller.accessor());
    let enforce = field(&body, "EnforceIndex")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let want_index = field(&body, "JobModifyIndex")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let preserve_counts = field(&body, "PreserveCounts")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let submission = field(&body, "Submission")
        .filter(|v| v.is_object())
        .cloned();
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    if !inner.namespaces.contains_key(&ns) {
        return Err(ApiError::internal(format!(
            "job {:?} is in nonexistent namespace {:?}",
            s(&job, "ID"),
            ns
        )));
    }
    let key = (ns.clone(), s(&job, "ID").to_string());
    let existing = inner.jobs.get(&key).map(|e| e.job.clone());
    if enforce {
        match (&existing, want_index) {
            (Some(_), 0) => {
                return Err(ApiError::internal(
                    "Enforcing job modify index 0: job already exists",
                ));
            }
            (Some(old), n) if u(old, "JobModifyIndex") != n => {
                return Err(ApiError::internal(format!(
                    "Enforcing job modify index {n}: job exists with conflicting job modify index: {}",
                    u(old, "JobModifyIndex")
                )));
            }
            (None, n) if n != 0 => {
                return Err(ApiError::internal(format!(
                    "Enforcing job modify index {n}: job does not exist"
                )));
            }
            _ => {}
        }
    }
    if let Some(old) = &existing {
        if s(old, "Type") != s(&job, "Type") {
            return Err(ApiError::internal(format!(
                "cannot update job from type {:?} to {:?}",
                s(old, "Type"),
                s(&job, "Type")
            )));
        }
        let periodic = |j: &Value| !j.get("Periodic").is_none_or(|p| p.is_null());
        if periodic(old) != periodic(&job) {
            return Err(ApiError::internal(if periodic(old) {
                "cannot update periodic job to non-periodic"
            } else {
                "cannot update non-periodic job to periodic"
            }));
        }
        let param = |j: &Value| !j.get("ParameterizedJob").is_none_or(|p| p.is_null());
        if param(old) != param(&job) {
            return Err(ApiError::internal(if param(old) {
                "cannot update parameterized job to non-parameterized"
            } else {
                "cannot update non-parameterized job to parameterized"
            }));
        }
    }
    // Measured on Nomad 2.0.5 (api-facts §7): a `PreserveCounts` register whose body carries
    // counts other than the live ones writes a new version (Version 4 → 5) that keeps the live
    // counts. So whether the spec changed is judged on the body as submitted.
    let mut new_version = false;
    if let Some(old) = &existing
        && preserve_counts
    {
        new_version = super::diff::spec_changed(old, &job);
        preserve(old, &mut job);
    }
    let up = nomad.upsert_job_versioned(
        &mut inner,
        job,
        submission,
        "job-register",
        eval_priority,
        new_version,
    );
    let written = up.written(&inner, &key);
    Ok(written.attach(write_reply(req, up.index, &register_response(&up))))
}

/// `PreserveCounts`: every group that already exists keeps its current count, with or without a
/// `scaling` block (nomad/job_endpoint.go `Register`: `prevCounts` covers all groups).
fn preserve(old: &Value, job: &mut Value) {
    let counts: Vec<(String, Value)> = old["TaskGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| (s(g, "Name").to_string(), g["Count"].clone()))
        .collect();
    if let Some(groups) = job["TaskGroups"].as_array_mut() {
        for g in groups {
            let name = s(g, "Name").to_string();
            if let Some((_, c)) = counts.iter().find(|(n, _)| *n == name)
                && let Some(o) = g.as_object_mut()
            {
                o.insert("Count".into(), c.clone());
            }
        }
    }
}

/// `DELETE /v1/job/:id[?purge=true]`.
pub(crate) async fn deregister(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let ns = req.namespace();
    require(st, req, &ns, "submit-job")?;
    let purge = req.flag("purge");
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    let key = (ns, id.to_string());
    let Some(entry) = inner.jobs.get(&key).cloned() else {
        let index = nomad.clock.current();
        let body = with_meta(
            json!({"EvalID": "", "EvalCreateIndex": 0, "JobModifyIndex": 0,
                "VolumeEvalID": "", "VolumeEvalIndex": 0}),
            index,
        );
        return Ok(write_reply(req, index, &body));
    };
    let up = if purge {
        let index = nomad.write(&mut inner, &["jobs", "evals", "job_summary"]);
        inner.jobs.remove(&key);
        inner.push_removed(
            "Job",
            "JobDeregistered",
            index,
            json!({"Job": entry.job.clone()}),
        );
        let eval_id = if no_eval(&entry.job) {
            String::new()
        } else {
            create_eval(&mut inner, index, &entry.job, "job-deregister", 0)
        };
        Upsert {
            eval_index: if eval_id.is_empty() { 0 } else { index },
            eval_id,
            job_modify_index: index,
            index,
        }
    } else {
        let mut job = entry.job.clone();
        job["Stop"] = json!(true);
        // Nomad reports a stop (deregister without purge) as `JobDeregistered`.
        inner.events.job_type_hint = Some("JobDeregistered");
        nomad.upsert_job(&mut inner, job, None, "job-deregister", 0)
    };
    let body = with_meta(
        json!({"EvalID": up.eval_id, "EvalCreateIndex": up.eval_index,
            "JobModifyIndex": up.job_modify_index, "VolumeEvalID": "", "VolumeEvalIndex": 0}),
        up.index,
    );
    let written = up.written(&inner, &key);
    Ok(written.attach(write_reply(req, up.index, &body)))
}

/// `PUT|POST /v1/job/:id/plan`.
pub(crate) async fn plan(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let body = req.json()?;
    let mut job = match field(&body, "Job") {
        Some(j) if j.is_object() => j.clone(),
        _ => return Err(ApiError::bad("Job must be specified")),
    };
    if s(&job, "ID").is_empty() {
        return Err(ApiError::bad("Job must have a valid ID"));
    }
    if s(&job, "ID") != id {
        return Err(ApiError::bad("Job ID does not match"));
    }
    let ns = pick_namespace(req, &body, &job);
    let region = pick_region(req, &body, &job);
    admit(&mut job, &region, &ns)?;
    let c = super::http::caller(st, req)?;
    if !(c.can(&ns, "submit-job") || c.can(&ns, "plan-job")) {
        return Err(ApiError::forbidden("Permission denied"));
    }
    job["NomadTokenID"] = json!(c.accessor());
    let want_diff = field(&body, "Diff")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let inner = st.nomad.lock();
    let key = (ns, id.to_string());
    let existing = inner.jobs.get(&key).map(|e| e.job.clone());
    let (desired, failed) = sched::dry_run(&inner, &job, existing.as_ref());
    let mut diff = Value::Null;
    if want_diff {
        let old_for_diff = existing.as_ref();
        diff = super::diff::job_diff(old_for_diff, &job);
        super::diff::annotate(&mut diff, &Value::Object(desired.clone()));
    }
    let index = inner.table_index(&["jobs", "allocs", "evals"]);
    // The index travels in the header only, not in the body (measured on Nomad 2.0.5,
    // api-facts §7).
    let out = json!({
        "Annotations": {"DesiredTGUpdates": desired, "PreemptedAllocs": null},
        "FailedTGAllocs": failed,
        "JobModifyIndex": existing.as_ref().map(|j| u(j, "JobModifyIndex")).unwrap_or(0),
        "CreatedEvals": null,
        "Diff": diff,
        "NextPeriodicLaunch": "0001-01-01T00:00:00Z",
        "Warnings": "",
    });
    Ok(write_reply(req, index, &out))
}

/// `GET /v1/job/:id/versions[?diffs=true]`.
pub(crate) async fn versions(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let ns = req.namespace();
    require(st, req, &ns, "read-job")?;
    let key = (ns, id.to_string());
    let diffs = req.flag("diffs");
    blocking(
        st,
        req,
        |i| {
            i.jobs
                .get(&key)
                .map(|e| u(&e.job, "ModifyIndex"))
                .unwrap_or_else(|| i.table_index(&["jobs"]))
        },
        |inner, index| {
            let e = inner
                .jobs
                .get(&key)
                .ok_or_else(|| ApiError::not_found("job versions not found"))?;
            let versions: Vec<Value> = e.versions.iter().rev().cloned().collect();
            let d = if diffs {
                let list: Vec<Value> = versions
                    .windows(2)
                    .map(|w| super::diff::job_diff(Some(&w[1]), &w[0]))
                    .collect();
                Value::Array(list)
            } else {
                Value::Null
            };
            Ok(with_meta(json!({"Versions": versions, "Diffs": d}), index))
        },
    )
    .await
}

/// `GET /v1/job/:id/submission?version=N`.
pub(crate) async fn submission(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let ns = req.namespace();
    require(st, req, &ns, "read-job")?;
    let version = match req.q("version") {
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::bad("Unable to parse job version"))?,
        ),
        None => None,
    };
    let key = (ns, id.to_string());
    blocking(
        st,
        req,
        |i| i.table_index(&["jobs"]),
        |inner, _| {
            let e = inner
                .jobs
                .get(&key)
                .ok_or_else(|| ApiError::not_found("job source not found"))?;
            let v = version.unwrap_or_else(|| u(&e.job, "Version"));
            e.submissions
                .get(&v)
                .cloned()
                .ok_or_else(|| ApiError::not_found("job source not found"))
        },
    )
    .await
}

/// `PUT|POST /v1/job/:id/revert`.
pub(crate) async fn revert(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let body = req.json()?;
    let job_id = field(&body, "JobID").and_then(|v| v.as_str()).unwrap_or("");
    if job_id.is_empty() {
        return Err(ApiError::bad("JobID must be specified"));
    }
    if job_id != id {
        return Err(ApiError::bad("Job ID does not match"));
    }
    let ns = req.namespace();
    require(st, req, &ns, "submit-job")?;
    let version = field(&body, "JobVersion")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let enforce = field(&body, "EnforcePriorVersion").and_then(|v| v.as_u64());
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    let up = revert_locked(nomad, &mut inner, &ns, id, version, enforce, "job-register")?;
    Ok(write_reply(req, up.index, &register_response(&up)))
}

/// Revert a job to an older version (also used by deployment auto-revert).
pub(crate) fn revert_locked(
    nomad: &NomadState,
    inner: &mut Inner,
    ns: &str,
    id: &str,
    version: u64,
    enforce: Option<u64>,
    triggered_by: &str,
) -> Result<Upsert, ApiError> {
    let key = (ns.to_string(), id.to_string());
    let entry = inner
        .jobs
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::internal(format!("job {id:?} not found")))?;
    let current = u(&entry.job, "Version");
    if let Some(want) = enforce
        && want != current
    {
        return Err(ApiError::internal(format!(
            "Current job has version {current}; enforcing version {want}"
        )));
    }
    if version == current {
        return Err(ApiError::internal("can't revert to current version"));
    }
    let old = entry
        .versions
        .iter()
        .find(|v| u(v, "Version") == version)
        .cloned()
        .ok_or_else(|| {
            ApiError::internal(format!(
                "job {id:?} in namespace {ns:?} at version {version} not found"
            ))
        })?;
    let mut job = old;
    job["Stable"] = json!(false);
    job["VersionTag"] = Value::Null;
    // Copy the current indexes so SpecChanged sees only the spec.
    for k in ["CreateIndex", "ModifyIndex", "JobModifyIndex", "Version"] {
        job[k] = entry.job[k].clone();
    }
    Ok(nomad.upsert_job(inner, job, None, triggered_by, 0))
}

/// `PUT|POST /v1/job/:id/stable`.
pub(crate) async fn stable(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let body = req.json()?;
    let ns = req.namespace();
    require(st, req, &ns, "submit-job")?;
    let version = field(&body, "JobVersion")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let stable = field(&body, "Stable")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    let key = (ns, id.to_string());
    if !inner.jobs.contains_key(&key) {
        return Err(ApiError::internal(format!("job {id:?} not found")));
    }
    let index = set_stable(nomad, &mut inner, &key, version, stable)
        .ok_or_else(|| ApiError::internal(format!("job {id:?} at version {version} not found")))?;
    Ok(write_reply(req, index, &with_meta(json!({}), index)))
}

/// Mark a version stable; bumps only `ModifyIndex`.
pub(crate) fn set_stable(
    nomad: &NomadState,
    inner: &mut Inner,
    key: &(String, String),
    version: u64,
    stable: bool,
) -> Option<u64> {
    if !inner
        .jobs
        .get(key)?
        .versions
        .iter()
        .any(|v| u(v, "Version") == version)
    {
        return None;
    }
    let index = nomad.write(inner, &["jobs"]);
    let e = inner.jobs.get_mut(key)?;
    for v in e.versions.iter_mut() {
        if u(v, "Version") == version {
            v["Stable"] = json!(stable);
            v["ModifyIndex"] = json!(index);
        }
    }
    if u(&e.job, "Version") == version {
        e.job["Stable"] = json!(stable);
        e.job["ModifyIndex"] = json!(index);
    }
    Some(index)
}

/// `GET /v1/job/:id/summary`.
pub(crate) async fn summary(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let ns = req.namespace();
    require(st, req, &ns, "read-job")?;
    let key = (ns, id.to_string());
    blocking(
        st,
        req,
        |i| i.table_index(&["job_summary"]),
        |inner, _| {
            inner
                .jobs
                .get(&key)
                .map(|e| summary_json(inner, e))
                .ok_or_else(|| ApiError::not_found("job not found"))
        },
    )
    .await
}

/// `GET /v1/job/:id/allocations` (`[]` for an unknown job).
pub(crate) async fn allocations(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let ns = req.namespace();
    require(st, req, &ns, "read-job")?;
    let id = id.to_string();
    let all = req.flag("all");
    blocking(
        st,
        req,
        |i| i.table_index(&["allocs"]),
        |inner, _| {
            // Without `all`, only allocations of the current job instance (not of a purged job
            // with the same ID).
            let create = inner
                .jobs
                .get(&(ns.clone(), id.clone()))
                .map(|e| e.job["CreateIndex"].clone());
            let list: Vec<Value> = inner
                .allocs
                .values()
                .filter(|a| a.namespace == ns && a.job_id == id)
                .filter(|a| all || create.as_ref().is_none_or(|c| a.job["CreateIndex"] == *c))
                .map(misc::alloc_stub)
                .collect();
            Ok(Value::Array(list))
        },
    )
    .await
}

/// `GET /v1/job/:id/evaluations`.
pub(crate) async fn evaluations(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let ns = req.namespace();
    require(st, req, &ns, "read-job")?;
    let id = id.to_string();
    blocking(
        st,
        req,
        |i| i.table_index(&["evals"]),
        |inner, _| {
            let mut list: Vec<&Eval> = inner
                .evals
                .values()
                .filter(|e| e.namespace == ns && e.job_id == id)
                .collect();
            list.sort_by_key(|e| std::cmp::Reverse(e.create_index));
            Ok(Value::Array(
                list.into_iter().map(misc::eval_json).collect(),
            ))
        },
    )
    .await
}

/// `GET /v1/job/:id/deployment` (`null` when none).
pub(crate) async fn latest_deployment(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let ns = req.namespace();
    require(st, req, &ns, "read-job")?;
    let id = id.to_string();
    blocking(
        st,
        req,
        |i| i.table_index(&["deployment"]),
        |inner, _| {
            Ok(inner
                .deployments
                .values()
                .filter(|d| d.namespace == ns && d.job_id == id)
                .max_by_key(|d| d.create_index)
                .map(misc::deployment_json)
                .unwrap_or(Value::Null))
        },
    )
    .await
}

/// `GET /v1/job/:id/deployments`.
pub(crate) async fn deployments(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let ns = req.namespace();
    require(st, req, &ns, "read-job")?;
    let id = id.to_string();
    blocking(
        st,
        req,
        |i| i.table_index(&["deployment"]),
        |inner, _| {
            let mut list: Vec<_> = inner
                .deployments
                .values()
                .filter(|d| d.namespace == ns && d.job_id == id)
                .collect();
            list.sort_by_key(|d| std::cmp::Reverse(d.create_index));
            Ok(Value::Array(
                list.into_iter().map(misc::deployment_json).collect(),
            ))
        },
    )
    .await
}

/// `GET /v1/job/:id/scale`.
pub(crate) async fn scale_status(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let ns = req.namespace();
    require(st, req, &ns, "read-job")?;
    let key = (ns, id.to_string());
    blocking(
        st,
        req,
        |i| i.table_index(&["jobs", "allocs"]),
        |inner, _| {
            let e = inner
                .jobs
                .get(&key)
                .ok_or_else(|| ApiError::not_found("job not found"))?;
            let mut groups = serde_json::Map::new();
            for g in e.job["TaskGroups"].as_array().into_iter().flatten() {
                let name = s(g, "Name");
                let live: Vec<_> = inner
                    .allocs
                    .values()
                    .filter(|a| {
                        a.namespace == key.0
                            && a.job_id == key.1
                            && a.task_group == name
                            && !a.terminal()
                    })
                    .collect();
                groups.insert(
                    name.to_string(),
                    json!({"Desired": g["Count"], "Placed": live.len(),
                        "Running": live.iter().filter(|a| a.client_status == "running").count(),
                        "Healthy": live.iter().filter(|a| a.healthy == Some(true)).count(),
                        "Unhealthy": live.iter().filter(|a| a.healthy == Some(false)).count(),
                        "Events": null}),
                );
            }
            // Index and leader metadata travel in the headers only (measured on Nomad 2.0.5,
            // api-facts §7).
            Ok(json!({"JobID": key.1, "Namespace": key.0,
                "JobModifyIndex": e.job["JobModifyIndex"], "JobCreateIndex": e.job["CreateIndex"],
                "JobStopped": e.job["Stop"], "TaskGroups": groups}))
        },
    )
    .await
}

/// `PUT|POST /v1/job/:id/scale`.
pub(crate) async fn scale(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let body = req.json()?;
    let ns = req.namespace();
    require(st, req, &ns, "submit-job")?;
    let group = field(&body, "Target")
        .and_then(|t| field(t, "Group"))
        .and_then(|g| g.as_str())
        .unwrap_or("")
        .to_string();
    let count = field(&body, "Count").and_then(|c| c.as_i64());
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    let key = (ns, id.to_string());
    let Some(mut job) = inner.jobs.get(&key).map(|e| e.job.clone()) else {
        return Err(ApiError::not_found("job not found"));
    };
    let Some(count) = count else {
        let index = nomad.clock.current();
        return Ok(write_reply(
            req,
            index,
            &register_response(&Upsert {
                eval_id: String::new(),
                eval_index: 0,
                job_modify_index: u(&job, "JobModifyIndex"),
                index,
            }),
        ));
    };
    if count < 0 {
        return Err(ApiError::bad("Scaling action count can't be negative"));
    }
    let mut found = false;
    if let Some(groups) = job["TaskGroups"].as_array_mut() {
        for g in groups {
            if s(g, "Name") == group
                && let Some(o) = g.as_object_mut()
            {
                o.insert("Count".into(), json!(count));
                found = true;
            }
        }
    }
    if !found {
        return Err(ApiError::bad(format!(
            "task group {group:?} specified for scaling does not exist in job"
        )));
    }
    let up = nomad.upsert_job(&mut inner, job, None, "job-scaling", 0);
    let written = up.written(&inner, &key);
    Ok(written.attach(write_reply(req, up.index, &register_response(&up))))
}

/// `PUT|POST /v1/job/:id/evaluate`.
pub(crate) async fn evaluate(st: &Arc<DevState>, req: &Req, id: &str) -> ApiResult {
    let ns = req.namespace();
    require(st, req, &ns, "submit-job")?;
    let nomad = &st.nomad;
    let mut inner = nomad.lock();
    let key = (ns, id.to_string());
    let Some(job) = inner.jobs.get(&key).map(|e| e.job.clone()) else {
        return Err(ApiError::internal("job not found"));
    };
    let index = nomad.write(&mut inner, &["evals"]);
    let eval_id = create_eval(&mut inner, index, &job, "job-eval", 0);
    let up = Upsert {
        eval_id,
        eval_index: index,
        job_modify_index: u(&job, "JobModifyIndex"),
        index,
    };
    Ok(write_reply(req, index, &register_response(&up)))
}

/// How allocations of `group` follow a job change (job meta changes are destructive too).
pub(crate) fn group_update_kind(old_job: &Value, new_job: &Value, group: &str) -> UpdateKind {
    super::diff::job_group_update_kind(old_job, new_job, group)
}

/// `PUT|POST /v1/validate/job`: admission and validation without registering; 200 with the
/// errors in the body.
pub(crate) async fn validate(st: &Arc<DevState>, req: &Req) -> ApiResult {
    let body = req.json()?;
    let mut job = match field(&body, "Job") {
        Some(j) if j.is_object() => j.clone(),
        _ => return Err(ApiError::bad("Job must be specified")),
    };
    let ns = pick_namespace(req, &body, &job);
    let c = super::http::caller(st, req)?;
    if !(c.can(&ns, "read-job") || c.can(&ns, "submit-job")) {
        return Err(ApiError::forbidden("Permission denied"));
    }
    let region = pick_region(req, &body, &job);
    let (errors, text) = match admit(&mut job, &region, &ns) {
        Ok(()) => (Vec::new(), String::new()),
        Err(e) => {
            let list: Vec<String> = e
                .msg
                .lines()
                .filter_map(|l| l.strip_prefix("\t* "))
                .map(String::from)
                .collect();
            (list, e.msg)
        }
    };
    let index = st.nomad.clock.current();
    let out = json!({"DriverConfigValidated": true,
        "ValidationErrors": if errors.is_empty() { Value::Null } else { json!(errors) },
        "Error": text, "Warnings": ""});
    Ok(write_reply(req, index, &out))
}
