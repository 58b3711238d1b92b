//! `drover import nomad --out <repo>`: adopt the jobs, CSI volumes and Consul config entries
//! running in a cluster into a desired-state repository, so that drover's first sync is a no-op
//! and drover owns them from then on.
//!
//! One app per job (`apps/<job>/`), named after the job (or after the job's `drover.app` meta when
//! it already has one). A CSI volume goes to the app of the job that mounts it (same namespace),
//! a config entry to the app of the job that declares a service of its `Name`; the rest go to one
//! app each (`csi-<volume>`) or together (`consul-config`).
//!
//! Adoption: drover takes over a live object on its first sync without a write only when the
//! object already says whose it is (`Meta["drover.app"]`, DESIGN rule 4). So, after the repository
//! is written, each adopted job and config entry that lacks that meta gets it, with a
//! compare-and-set write (`EnforceIndex` on the job's `JobModifyIndex`, `?cas=` on the entry's
//! `ModifyIndex`). For a job this is one new job version (Nomad restarts its allocations, since
//! meta reaches the tasks' environment); `--no-stamp` skips these writes, and the first sync then
//! makes them instead. CSI volumes carry no owner mark: they are adopted by the first sync's
//! comparison alone (and, like every volume drover did not create, are never pruned).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::plan::nomad_job::OWNER_META_KEY;
use crate::providers::consul::{ConsulClient, ConsulError, QueryOptions};
use crate::providers::nomad::types::CsiVolume;
use crate::providers::nomad::{NomadClient, NomadError, RegisterOptions};

/// The config entry kinds read from Consul. Certificates are left out: their private keys must not
/// land in Git.
pub const CONFIG_ENTRY_KINDS: &[&str] = &[
    "service-defaults",
    "service-intentions",
    "service-resolver",
    "service-router",
    "service-splitter",
    "proxy-defaults",
    "ingress-gateway",
    "terminating-gateway",
    "mesh",
    "api-gateway",
    "http-route",
    "tcp-route",
    "exported-services",
    "sameness-group",
    "jwt-provider",
];

/// The app that gathers config entries no imported job declares a service for.
pub const SHARED_CONSUL_APP: &str = "consul-config";

/// Server-set fields of a job, dropped from a jobspec written from the job JSON (and the tokens a
/// register may carry, which must never land in Git).
const SERVER_JOB_FIELDS: &[&str] = &[
    "Status",
    "StatusDescription",
    "Stable",
    "Version",
    "VersionTag",
    "SubmitTime",
    "CreateIndex",
    "ModifyIndex",
    "JobModifyIndex",
    "Stop",
    "Dispatched",
    "DispatchIdempotencyToken",
    "ParentID",
    "Payload",
    "NomadTokenID",
    "VaultToken",
    "VaultNamespace",
    "ConsulToken",
];

/// Fields Consul adds to every config entry.
const SERVER_ENTRY_FIELDS: &[&str] = &["CreateIndex", "ModifyIndex", "Hash"];

/// What went wrong while importing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A Nomad call failed.
    #[error("reading Nomad")]
    Nomad(#[from] NomadError),
    /// Writing the owner meta onto a job failed (the repository is already written).
    #[error("writing the owner meta onto {resource}")]
    Stamp {
        /// `nomad_job/<ns>/<id>`.
        resource: String,
        /// The register's error.
        #[source]
        source: NomadError,
    },
    /// A Consul call failed.
    #[error("Consul config entries of kind {kind}")]
    Consul {
        /// The kind being listed or written.
        kind: String,
        /// The client's error.
        #[source]
        source: ConsulError,
    },
    /// The output folder already holds an app of that name.
    #[error("{path} already exists: drover import writes new app folders only")]
    Exists {
        /// The folder.
        path: String,
    },
    /// A file could not be written.
    #[error("writing {path}")]
    Write {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// app.yaml could not be serialised.
    #[error("serialising {path}: {message}")]
    Serialise {
        /// The file.
        path: String,
        /// serde's message.
        message: String,
    },
}

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The desired-state repository to write `apps/` into.
    pub out: PathBuf,
    /// Write the owner meta onto adopted jobs and config entries (see the module docs).
    pub stamp: bool,
}

/// One thing adopted into the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adopted {
    /// The app it went to.
    pub app: String,
    /// `nomad_job/<ns>/<id>`, `csi_volume/<ns>/<id>`, `consul_config_entry/<Kind>/<Name>`.
    pub resource: String,
    /// Where its spec came from (`stored submission (hcl2)`, `job JSON`, …).
    pub source: String,
    /// Whether the owner meta was written onto it now.
    pub stamped: bool,
}

/// One thing left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// What it is.
    pub resource: String,
    /// Why it was left out.
    pub reason: String,
}

/// What `import` did.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// Adopted objects, in the order written.
    pub adopted: Vec<Adopted>,
    /// Objects left out.
    pub skipped: Vec<Skipped>,
    /// Notes the user should act on (volume secrets not imported, …).
    pub notes: Vec<String>,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.adopted {
            let stamped = if a.stamped {
                ", owner meta written"
            } else {
                ""
            };
            writeln!(
                f,
                "adopted  {} -> apps/{} (from {}{stamped})",
                a.resource, a.app, a.source
            )?;
        }
        for s in &self.skipped {
            writeln!(f, "skipped  {}: {}", s.resource, s.reason)?;
        }
        for n in &self.notes {
            writeln!(f, "note     {n}")?;
        }
        let apps: BTreeSet<&str> = self.adopted.iter().map(|a| a.app.as_str()).collect();
        write!(
            f,
            "\n{} resource(s) adopted into {} app(s), {} skipped",
            self.adopted.len(),
            apps.len(),
            self.skipped.len()
        )
    }
}

/// A job to adopt, as read.
#[derive(Debug, Clone)]
struct ImportedJob {
    app: String,
    namespace: String,
    id: String,
    /// The live job JSON.
    live: Value,
    /// Jobspec file name and text.
    file: String,
    text: String,
    /// A `*.vars.hcl` beside the jobspec (the submission's `Variables`), if any.
    vars_file: Option<(String, String)>,
    /// app.yaml `variables:` (the submission's `VariableFlags`).
    variables: BTreeMap<String, String>,
    /// The submission to keep storing with the stamped version: source, format, var-file text.
    submission: Option<(String, String, String)>,
    source_note: String,
}

/// An app folder to write.
#[derive(Debug, Default)]
struct AppFolder {
    namespace: String,
    resources: Vec<Value>,
    files: Vec<(String, String)>,
}

/// Read the cluster, write one folder per app under `options.out/apps/`, then (with
/// `options.stamp`) write the owner meta onto what was adopted.
pub async fn import(
    nomad: &NomadClient,
    consul: Option<&ConsulClient>,
    options: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    let jobs = read_jobs(nomad, &mut report).await?;
    let volumes = read_volumes(nomad).await?;
    let entries = match consul {
        Some(consul) => read_entries(consul, &mut report).await?,
        None => {
            report
                .notes
                .push("CONSUL_HTTP_ADDR is not set: no Consul config entries were imported".into());
            Vec::new()
        }
    };

    let mut apps: BTreeMap<String, AppFolder> = BTreeMap::new();
    for job in &jobs {
        let folder = apps.entry(job.app.clone()).or_default();
        folder.namespace = job.namespace.clone();
        let mut resource = Map::new();
        resource.insert("file".into(), json!(job.file));
        if !job.variables.is_empty() {
            resource.insert("variables".into(), json!(job.variables));
        }
        folder.resources.push(json!({ "nomad_job": resource }));
        folder.files.push((job.file.clone(), job.text.clone()));
        if let Some(vars) = &job.vars_file {
            folder.files.push(vars.clone());
        }
        report.adopted.push(Adopted {
            app: job.app.clone(),
            resource: format!("nomad_job/{}/{}", job.namespace, job.id),
            source: job.source_note.clone(),
            stamped: false,
        });
    }

    let mut taken: BTreeSet<String> = apps.keys().cloned().collect();
    for volume in &volumes {
        let app = jobs
            .iter()
            .find(|j| j.namespace == volume.namespace && mounts(&j.live).contains(&volume.id))
            .map(|j| j.app.clone())
            .unwrap_or_else(|| {
                unique_name(&format!("csi-{}", volume.id), &volume.namespace, &taken)
            });
        taken.insert(app.clone());
        let folder = apps.entry(app.clone()).or_insert_with(|| AppFolder {
            namespace: volume.namespace.clone(),
            ..AppFolder::default()
        });
        folder
            .resources
            .push(json!({ "csi_volume": volume_spec(volume) }));
        report.adopted.push(Adopted {
            app,
            resource: format!("csi_volume/{}/{}", volume.namespace, volume.id),
            source: "GET /v1/volume/csi/:id".into(),
            stamped: false,
        });
    }
    if !volumes.is_empty() {
        report.notes.push(
            "CSI volume secrets and mount flags are never returned by Nomad and were not \
             imported; add `secrets:`/`mount_options.mount_flags` to app.yaml if the volumes \
             need them (kept out of Git otherwise). Imported volumes are `prevent_destroy: true`"
                .into(),
        );
    }

    for (entry, owner) in &entries {
        let kind = str_field(entry, "Kind");
        let name = str_field(entry, "Name");
        let app = match owner {
            Some(owner) => owner.clone(),
            None => jobs
                .iter()
                .find(|j| service_names(&j.live).contains(name))
                .map(|j| j.app.clone())
                .unwrap_or_else(|| SHARED_CONSUL_APP.to_string()),
        };
        let folder = apps.entry(app.clone()).or_insert_with(|| AppFolder {
            namespace: "default".into(),
            ..AppFolder::default()
        });
        let file = format!("{kind}-{}.json", file_stem(name));
        folder
            .resources
            .push(json!({ "consul_config_entry": { "file": file } }));
        let text = serde_json::to_string_pretty(&entry_file_body(entry)).map_err(|e| {
            ImportError::Serialise {
                path: file.clone(),
                message: e.to_string(),
            }
        })?;
        folder.files.push((file, format!("{text}\n")));
        report.adopted.push(Adopted {
            app,
            resource: format!("consul_config_entry/{kind}/{name}"),
            source: format!("GET /v1/config/{kind}"),
            stamped: false,
        });
    }

    write_repo(&options.out, &apps)?;

    if options.stamp {
        stamp_jobs(nomad, &jobs, &mut report).await?;
        if let Some(consul) = consul {
            stamp_entries(consul, &entries, &mut report).await?;
        }
    } else {
        report.notes.push(
            "--no-stamp: the owner meta was not written; drover's first sync will add it \
             (one register per job, one write per config entry)"
                .into(),
        );
    }
    Ok(report)
}

async fn read_jobs(
    nomad: &NomadClient,
    report: &mut ImportReport,
) -> Result<Vec<ImportedJob>, ImportError> {
    let listed = nomad.list_jobs("*", QueryOptions::default()).await?.value;
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut jobs = Vec::new();
    for stub in listed {
        let namespace = if stub.namespace.is_empty() {
            "default".to_string()
        } else {
            stub.namespace.clone()
        };
        let resource = format!("nomad_job/{namespace}/{}", stub.id);
        let meta = stub.meta.clone().unwrap_or_default();
        if let Some(reason) = skip_reason(&stub.id, stub.stop, &meta) {
            report.skipped.push(Skipped { resource, reason });
            continue;
        }
        let Some(live) = nomad.read_job_json(&namespace, &stub.id).await? else {
            report.skipped.push(Skipped {
                resource,
                reason: "gone while importing".into(),
            });
            continue;
        };
        if !str_field(&live, "ParentID").is_empty() {
            report.skipped.push(Skipped {
                resource,
                reason: format!(
                    "a child of {} (periodic or dispatched): its parent is imported",
                    str_field(&live, "ParentID")
                ),
            });
            continue;
        }
        let app = match meta.get(OWNER_META_KEY) {
            Some(owner) => owner.clone(),
            None => unique_name(&stub.id, &namespace, &names),
        };
        names.insert(app.clone());
        let stem = file_stem(&stub.id);
        let submission = nomad.read_job_submission(&namespace, &stub.id).await?;
        let job = match submission.as_ref().and_then(submission_parts) {
            Some(parts) if parts.format == "hcl2" || parts.format == "hcl" => {
                let vars_file = (!parts.variables.trim().is_empty())
                    .then(|| (format!("{stem}.vars.hcl"), parts.variables.clone()));
                ImportedJob {
                    app,
                    namespace,
                    id: stub.id.clone(),
                    live,
                    file: format!("{stem}.nomad.hcl"),
                    text: parts.source.clone(),
                    vars_file,
                    variables: parts.flags.clone(),
                    submission: Some((
                        parts.source.clone(),
                        "hcl2".into(),
                        var_file_text(&parts.variables, &parts.flags),
                    )),
                    source_note: "stored submission (hcl2)".into(),
                }
            }
            Some(parts) if parts.format == "json" => ImportedJob {
                app,
                namespace,
                id: stub.id.clone(),
                live,
                file: format!("{stem}.nomad.json"),
                text: parts.source.clone(),
                vars_file: None,
                variables: BTreeMap::new(),
                submission: Some((parts.source.clone(), "json".into(), String::new())),
                source_note: "stored submission (json)".into(),
            },
            other => {
                let why = match other {
                    Some(parts) => format!("job JSON (submission format {:?})", parts.format),
                    None => "job JSON (no stored submission)".to_string(),
                };
                let text =
                    serde_json::to_string_pretty(&json!({ "Job": jobspec_from_live(&live) }))
                        .map_err(|e| ImportError::Serialise {
                            path: format!("{stem}.nomad.json"),
                            message: e.to_string(),
                        })?;
                ImportedJob {
                    app,
                    namespace,
                    id: stub.id.clone(),
                    live,
                    file: format!("{stem}.nomad.json"),
                    text: format!("{text}\n"),
                    vars_file: None,
                    variables: BTreeMap::new(),
                    submission: None,
                    source_note: why,
                }
            }
        };
        jobs.push(job);
    }
    Ok(jobs)
}

/// Why a listed job is not imported, if it is not.
pub fn skip_reason(id: &str, stop: bool, meta: &BTreeMap<String, String>) -> Option<String> {
    if meta.contains_key("drover.hook-run") {
        return Some("a drover hook job (its app's hooks declare it)".into());
    }
    if id.contains("/periodic-") || id.contains("/dispatch-") {
        return Some("a periodic or dispatched child job: its parent is imported".into());
    }
    if stop {
        return Some(
            "stopped: importing it would start it again (run it, or add it by hand)".into(),
        );
    }
    None
}

struct SubmissionParts {
    source: String,
    format: String,
    flags: BTreeMap<String, String>,
    variables: String,
}

fn submission_parts(submission: &Value) -> Option<SubmissionParts> {
    let source = str_field(submission, "Source");
    if source.is_empty() {
        return None;
    }
    let flags = submission
        .get("VariableFlags")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    Some(SubmissionParts {
        source: source.to_string(),
        format: str_field(submission, "Format").to_ascii_lowercase(),
        flags,
        variables: str_field(submission, "Variables").to_string(),
    })
}

/// The var-file text to store with a stamped version: the submission's var file, then its flags
/// (as drover itself sends app.yaml `variables:` after the var files).
fn var_file_text(variables: &str, flags: &BTreeMap<String, String>) -> String {
    let mut text = variables.trim_end().to_string();
    for (name, value) in flags {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!("{name} = {}", json!(value)));
    }
    text
}

/// A jobspec (`{"Job": …}` body) from the live job JSON: server-set fields and tokens dropped,
/// drover's own owner meta dropped (drover adds it).
pub fn jobspec_from_live(live: &Value) -> Value {
    let mut job = live.clone();
    if let Some(obj) = job.as_object_mut() {
        for field in SERVER_JOB_FIELDS {
            obj.remove(*field);
        }
        if let Some(meta) = obj.get_mut("Meta").and_then(Value::as_object_mut) {
            meta.remove(OWNER_META_KEY);
        }
    }
    job
}

/// The config entry as its file: server fields and drover's owner meta dropped.
pub fn entry_file_body(entry: &Value) -> Value {
    let mut body = entry.clone();
    if let Some(obj) = body.as_object_mut() {
        for field in SERVER_ENTRY_FIELDS {
            obj.remove(*field);
        }
        let empty_meta = match obj.get_mut("Meta").and_then(Value::as_object_mut) {
            Some(meta) => {
                meta.remove(OWNER_META_KEY);
                meta.is_empty()
            }
            None => false,
        };
        if empty_meta {
            obj.remove("Meta");
        }
    }
    body
}

/// The CSI volume IDs a job's groups mount (`volume` blocks of type `csi`).
fn mounts(job: &Value) -> BTreeSet<String> {
    groups(job)
        .filter_map(|g| g.get("Volumes").and_then(Value::as_object))
        .flat_map(|volumes| volumes.values())
        .filter(|v| str_field(v, "Type") == "csi")
        .map(|v| str_field(v, "Source").to_string())
        .collect()
}

/// The Consul service names a job declares (group and task services).
fn service_names(job: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for group in groups(job) {
        let tasks = group
            .get("Tasks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for holder in std::iter::once(group).chain(tasks) {
            for service in holder
                .get("Services")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                names.insert(str_field(service, "Name").to_string());
            }
        }
    }
    names
}

fn groups(job: &Value) -> impl Iterator<Item = &Value> {
    job.get("TaskGroups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The app.yaml `csi_volume:` mapping of a live volume (never its secrets: Nomad does not return
/// them, and they do not belong in Git).
pub fn volume_spec(volume: &CsiVolume) -> Value {
    let mut spec = Map::new();
    spec.insert("id".into(), json!(volume.id));
    if !volume.name.is_empty() && volume.name != volume.id {
        spec.insert("name".into(), json!(volume.name));
    }
    spec.insert("plugin_id".into(), json!(volume.plugin_id));
    if volume.requested_capacity_min > 0 {
        spec.insert("capacity_min".into(), json!(volume.requested_capacity_min));
    }
    if volume.requested_capacity_max > 0 {
        spec.insert("capacity_max".into(), json!(volume.requested_capacity_max));
    }
    let capabilities: Vec<Value> = volume
        .requested_capabilities
        .iter()
        .map(|c| json!({ "access_mode": c.access_mode, "attachment_mode": c.attachment_mode }))
        .collect();
    spec.insert("capabilities".into(), Value::Array(capabilities));
    if let Some(fs_type) = volume
        .mount_options
        .as_ref()
        .and_then(|m| m.fs_type.as_deref())
        .filter(|t| !t.is_empty())
    {
        spec.insert("mount_options".into(), json!({ "fs_type": fs_type }));
    }
    if !volume.parameters.is_empty() {
        spec.insert("parameters".into(), json!(volume.parameters));
    }
    if !volume.context.is_empty() {
        spec.insert("context".into(), json!(volume.context));
    }
    spec.insert("prevent_destroy".into(), json!(true));
    Value::Object(spec)
}

async fn read_volumes(nomad: &NomadClient) -> Result<Vec<CsiVolume>, ImportError> {
    let listed = nomad
        .list_csi_volumes("*", QueryOptions::default())
        .await?
        .value;
    let mut volumes = Vec::new();
    for stub in listed {
        let namespace = if stub.namespace.is_empty() {
            "default"
        } else {
            stub.namespace.as_str()
        };
        if let Some(mut volume) = nomad.read_csi_volume(namespace, &stub.id).await? {
            if volume.namespace.is_empty() {
                volume.namespace = namespace.to_string();
            }
            volumes.push(volume);
        }
    }
    Ok(volumes)
}

/// Every config entry of the kinds drover imports, with the app its `drover.app` meta names.
async fn read_entries(
    consul: &ConsulClient,
    report: &mut ImportReport,
) -> Result<Vec<(Value, Option<String>)>, ImportError> {
    let mut entries = Vec::new();
    for kind in CONFIG_ENTRY_KINDS {
        let listed = match consul
            .list_config_entries(kind, QueryOptions::default())
            .await
        {
            Ok(listed) => listed.value,
            // An older Consul does not know every kind: nothing of it to import.
            Err(e) if e.status() == Some(400) => continue,
            Err(source) => {
                return Err(ImportError::Consul {
                    kind: (*kind).to_string(),
                    source,
                });
            }
        };
        for entry in listed {
            let owner = entry.meta_value(OWNER_META_KEY).map(str::to_string);
            entries.push((entry.0, owner));
        }
    }
    report.notes.push(
        "inline-certificate and file-system-certificate entries are not imported (they hold \
         private keys or paths to them)"
            .into(),
    );
    Ok(entries)
}

async fn stamp_jobs(
    nomad: &NomadClient,
    jobs: &[ImportedJob],
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    for job in jobs {
        let owner = job
            .live
            .get("Meta")
            .and_then(|m| m.get(OWNER_META_KEY))
            .and_then(Value::as_str);
        if owner.is_some() {
            continue;
        }
        let mut stamped = job.live.clone();
        crate::providers::nomad::job_body::set_meta(&mut stamped, OWNER_META_KEY, &job.app);
        let enforce_index = job
            .live
            .get("JobModifyIndex")
            .and_then(Value::as_u64)
            .unwrap_or_default();
        let (submission_source, submission_format, submission_variables) = match &job.submission {
            Some((source, format, variables)) => (
                Some(source.clone()),
                Some(format.clone()),
                Some(variables.clone()),
            ),
            None => (None, None, None),
        };
        let options = RegisterOptions {
            enforce_index: Some(enforce_index),
            preserve_counts: true,
            submission_source,
            submission_format,
            submission_variables,
        };
        let resource = format!("nomad_job/{}/{}", job.namespace, job.id);
        match nomad.register_job(&stamped, &options).await {
            Ok(_) => {
                if let Some(a) = report.adopted.iter_mut().find(|a| a.resource == resource) {
                    a.stamped = true;
                }
            }
            // Someone changed the job since it was read: never overwrite their change.
            Err(e) if e.is_enforce_index_conflict() => report.notes.push(format!(
                "{resource} changed while importing: its owner meta was not written and its \
                 jobspec may be out of date; re-import it (into an empty folder) or compare \
                 with `drover plan`"
            )),
            Err(source) => return Err(ImportError::Stamp { resource, source }),
        }
    }
    Ok(())
}

async fn stamp_entries(
    consul: &ConsulClient,
    entries: &[(Value, Option<String>)],
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    for (entry, owner) in entries {
        if owner.is_some() {
            continue;
        }
        let kind = str_field(entry, "Kind").to_string();
        let name = str_field(entry, "Name").to_string();
        let resource = format!("consul_config_entry/{kind}/{name}");
        let Some(adopted) = report.adopted.iter_mut().find(|a| a.resource == resource) else {
            continue;
        };
        let cas = entry
            .get("ModifyIndex")
            .and_then(Value::as_u64)
            .unwrap_or_default();
        let mut body = entry.clone();
        if let Some(obj) = body.as_object_mut() {
            for field in SERVER_ENTRY_FIELDS {
                obj.remove(*field);
            }
            let meta = obj
                .entry("Meta")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(meta) = meta.as_object_mut() {
                meta.insert(OWNER_META_KEY.into(), json!(adopted.app));
            }
        }
        let written = consul
            .write_config_entry(&body, cas)
            .await
            .map_err(|source| ImportError::Consul {
                kind: kind.clone(),
                source,
            })?;
        if written {
            adopted.stamped = true;
        } else {
            report.notes.push(format!(
                "{resource} changed while importing: its owner meta was not written; drover's \
                 first sync adds it"
            ));
        }
    }
    Ok(())
}

fn write_repo(out: &Path, apps: &BTreeMap<String, AppFolder>) -> Result<(), ImportError> {
    for name in apps.keys() {
        let dir = out.join("apps").join(name);
        if dir.exists() {
            return Err(ImportError::Exists {
                path: dir.display().to_string(),
            });
        }
    }
    for (name, folder) in apps {
        let dir = out.join("apps").join(name);
        std::fs::create_dir_all(&dir).map_err(|source| ImportError::Write {
            path: dir.display().to_string(),
            source,
        })?;
        let manifest = json!({
            "name": name,
            "namespace": folder.namespace,
            "resources": folder.resources,
        });
        let app_yaml = dir.join("app.yaml");
        let yaml = serde_yaml_ng::to_string(&manifest).map_err(|e| ImportError::Serialise {
            path: app_yaml.display().to_string(),
            message: e.to_string(),
        })?;
        let text =
            format!("# Imported from the cluster by `drover import nomad`; edit freely.\n{yaml}");
        for (file, content) in
            std::iter::once(("app.yaml".to_string(), text)).chain(folder.files.iter().cloned())
        {
            let path = dir.join(&file);
            std::fs::write(&path, content).map_err(|source| ImportError::Write {
                path: path.display().to_string(),
                source,
            })?;
        }
    }
    Ok(())
}

/// A valid app name (`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`) from a job ID, distinct from `taken`
/// (`-<namespace>`, then a number, appended on a clash).
pub fn unique_name(id: &str, namespace: &str, taken: &BTreeSet<String>) -> String {
    let base = app_name(id);
    if !taken.contains(&base) {
        return base;
    }
    let with_ns = app_name(&format!("{base}-{namespace}"));
    if !taken.contains(&with_ns) {
        return with_ns;
    }
    (2..)
        .map(|n| app_name(&format!("{with_ns}-{n}")))
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or(with_ns)
}

/// Lower-case, characters outside `[a-z0-9.-]` turned into `-`, trimmed to 63; a name shorter
/// than 3 gets `-app`.
pub fn app_name(id: &str) -> String {
    let mapped: String = id
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut name: String = mapped
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .chars()
        .take(63)
        .collect();
    while name.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        name.pop();
    }
    if name.len() < 3 {
        // App names have at least three characters: `db` becomes `db-app`.
        name = if name.is_empty() {
            "app".to_string()
        } else {
            format!("{name}-app")
        };
    }
    name
}

/// A file name stem from an ID (`/` and other separators become `-`).
fn file_stem(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_are_valid_and_unique() {
        assert_eq!(app_name("Web_Frontend"), "web-frontend");
        assert_eq!(app_name("db"), "db-app");
        assert_eq!(app_name("_x_"), "x-app");
        assert_eq!(app_name("__"), "app");
        let taken: BTreeSet<String> = ["web".to_string(), "web-prod".to_string()].into();
        assert_eq!(unique_name("web", "prod", &taken), "web-prod-2");
        assert_eq!(unique_name("api", "prod", &taken), "api");
    }

    #[test]
    fn hook_periodic_and_stopped_jobs_are_skipped() {
        let hook: BTreeMap<String, String> = [("drover.hook-run".into(), "1".into())].into();
        assert!(skip_reason("seed", false, &hook).is_some());
        assert!(skip_reason("backup/periodic-1700000000", false, &BTreeMap::new()).is_some());
        assert!(skip_reason("web", true, &BTreeMap::new()).is_some());
        assert!(skip_reason("web", false, &BTreeMap::new()).is_none());
    }

    #[test]
    fn jobspec_from_live_drops_server_fields_tokens_and_owner_meta() {
        let live = json!({
            "ID": "web", "Status": "running", "JobModifyIndex": 9, "VaultToken": "s.x",
            "Meta": { "drover.app": "web", "team": "a" }, "TaskGroups": []
        });
        let spec = jobspec_from_live(&live);
        assert_eq!(
            spec,
            json!({ "ID": "web", "Meta": { "team": "a" }, "TaskGroups": [] })
        );
    }

    #[test]
    fn entry_files_drop_indexes_and_owner_meta() {
        let live = json!({
            "Kind": "service-defaults", "Name": "web", "Protocol": "http",
            "Meta": { "drover.app": "web" }, "CreateIndex": 3, "ModifyIndex": 4
        });
        assert_eq!(
            entry_file_body(&live),
            json!({ "Kind": "service-defaults", "Name": "web", "Protocol": "http" })
        );
    }

    #[test]
    fn flags_follow_the_var_file_in_the_stored_submission() {
        let flags: BTreeMap<String, String> = [("image".into(), "nginx:1".into())].into();
        assert_eq!(
            var_file_text("count = 2\n", &flags),
            "count = 2\nimage = \"nginx:1\""
        );
    }
}
