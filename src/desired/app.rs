//! The typed desired state: apps and their resources.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// One app: a folder `apps/<name>/` with an `app.yaml` and the files it references.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct App {
    /// Unique app name (defaults to the folder name).
    pub name: String,
    /// The folder, `apps/<name>`.
    pub dir: String,
    /// Nomad namespace for its jobs and volumes.
    pub namespace: String,
    /// Apps that must be Healthy before this one syncs.
    pub depends_on: Vec<String>,
    /// Automatic sync, self-heal and prune switches.
    pub sync: SyncPolicy,
    /// The pack (chart) the app renders, if any; what it renders is in `resources`.
    pub pack: Option<PackRef>,
    /// Explicit resources, in file order.
    pub resources: Vec<Resource>,
    /// Health probes beyond the resources' own health.
    pub probes: Vec<Probe>,
    /// Hooks run around a sync.
    pub hooks: Vec<Hook>,
    /// The `wave:` written on resources (the others are ordered by their dependencies alone).
    #[serde(skip)]
    pub explicit_waves: BTreeMap<ResourceId, u32>,
}

impl App {
    /// The Consul config-entry kinds this app declares (each is watched while any app uses it).
    pub fn config_entry_kinds(&self) -> impl Iterator<Item = &str> {
        self.resources
            .iter()
            .filter(|r| r.id.kind == ResourceKind::ConsulConfigEntry)
            .map(|r| r.id.scope.as_str())
    }
}

/// `sync:` in app.yaml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SyncPolicy {
    /// Apply changes from Git without a manual `drover sync` (default true).
    pub auto: bool,
    /// Re-apply resources changed behind drover's back (default true).
    pub self_heal: bool,
    /// Delete resources drover owns that left Git (default false).
    pub prune: bool,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        SyncPolicy {
            auto: true,
            self_heal: true,
            prune: false,
        }
    }
}

/// `pack:` in app.yaml, as resolved and rendered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PackRef {
    /// The pack name (`pack.name` of its metadata.hcl).
    pub name: String,
    /// Where its files came from (`charts/<name>`, or `drover:charts/<name>` when shipped).
    pub dir: String,
    /// `pack.version`.
    pub version: String,
    /// The templates that rendered something.
    pub templates: Vec<String>,
}

/// What kind of thing a resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// A Nomad job.
    NomadJob,
    /// A Nomad CSI volume.
    CsiVolume,
    /// An S3/MinIO bucket.
    Bucket,
    /// A Vault secret that must exist with given keys.
    VaultSecret,
    /// A Consul config entry.
    ConsulConfigEntry,
}

impl ResourceKind {
    /// The app.yaml key (`nomad_job`, `csi_volume`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::NomadJob => "nomad_job",
            ResourceKind::CsiVolume => "csi_volume",
            ResourceKind::Bucket => "bucket",
            ResourceKind::VaultSecret => "vault_secret",
            ResourceKind::ConsulConfigEntry => "consul_config_entry",
        }
    }
}

/// Stable identity of a resource: kind, scope (namespace, mount or config-entry kind) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ResourceId {
    /// The kind.
    pub kind: ResourceKind,
    /// Nomad namespace, Vault mount, Consul config-entry kind, or `""` for buckets.
    pub scope: String,
    /// Job ID, volume ID, bucket name, secret path or entry name.
    pub name: String,
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scope.is_empty() {
            write!(f, "{}/{}", self.kind.as_str(), self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind.as_str(), self.scope, self.name)
        }
    }
}

/// Compares with the `Display` form (`nomad_job/default/web`).
impl PartialEq<&str> for ResourceId {
    fn eq(&self, other: &&str) -> bool {
        ResourceId::parse(other).is_some_and(|id| id == *self)
    }
}

impl ResourceId {
    /// Parse the `Display` form back (`nomad_job/default/web`, `bucket/b`).
    pub fn parse(text: &str) -> Option<ResourceId> {
        let (kind, rest) = text.split_once('/')?;
        let kind = match kind {
            "nomad_job" => ResourceKind::NomadJob,
            "csi_volume" => ResourceKind::CsiVolume,
            "bucket" => ResourceKind::Bucket,
            "vault_secret" => ResourceKind::VaultSecret,
            "consul_config_entry" => ResourceKind::ConsulConfigEntry,
            _ => return None,
        };
        let (scope, name) = match kind {
            ResourceKind::Bucket => ("", rest),
            _ => rest.split_once('/')?,
        };
        Some(ResourceId {
            kind,
            scope: scope.to_string(),
            name: name.to_string(),
        })
    }
}

/// Where in the user's files a resource was declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// File relative to the repo root (the app.yaml, or the native file).
    pub file: String,
    /// 1-based line (0 if unknown).
    pub line: usize,
}

/// One resource of an app.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resource {
    /// Stable identity.
    pub id: ResourceId,
    /// What Git says it should be.
    pub spec: ResourceSpec,
    /// Where it was declared.
    pub origin: Origin,
}

impl Resource {
    /// SHA-256 (hex) of the spec as loaded: the "desired spec hash" of the last-applied marker.
    pub fn spec_hash(&self) -> String {
        let bytes = serde_json::to_vec(&self.spec).unwrap_or_default();
        hex::encode(Sha256::digest(bytes))
    }
}

/// The desired state of one resource, by kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceSpec {
    /// A Nomad job, as a jobspec (HCL2 or JSON).
    NomadJob(NomadJobSpec),
    /// A Nomad CSI volume.
    CsiVolume(CsiVolumeSpec),
    /// An S3 bucket.
    Bucket(BucketSpec),
    /// A required Vault secret.
    VaultSecret(VaultSecretSpec),
    /// A Consul config entry.
    ConsulConfigEntry(ConfigEntrySpec),
}

/// The format of a jobspec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobFormat {
    /// HCL2, parsed by Nomad's `/v1/jobs/parse`.
    Hcl2,
    /// API JSON (`{"Job": {...}}` or a bare job object), as `nomad job run -json` takes.
    Json,
}

/// `nomad_job:` — a jobspec file and its HCL2 variables.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NomadJobSpec {
    /// The jobspec path relative to the repo root.
    pub file: String,
    /// HCL2 or JSON.
    pub format: JobFormat,
    /// The file's text.
    pub source: String,
    /// HCL2 var-file body: var files beside the jobspec, then app.yaml `variables:` (these win).
    pub variables: String,
    /// The job ID (the `job "<id>"` label, or `ID` in JSON).
    pub job_id: String,
}

/// How a CSI volume comes to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeMode {
    /// `nomad volume create`: the plugin provisions it.
    Create,
    /// `nomad volume register`: it already exists in storage (`external_id`).
    Register,
}

/// One `capability` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeCapability {
    /// `single-node-writer`, `multi-node-reader-only`, …
    pub access_mode: String,
    /// `file-system` or `block-device`.
    pub attachment_mode: String,
}

/// `mount_options`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountOptions {
    /// File system type.
    pub fs_type: String,
    /// Mount flags.
    pub mount_flags: Vec<String>,
}

/// A value that must never be printed (CSI secrets).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct SecretString(pub String);

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `csi_volume:` — inline in app.yaml or from a `nomad volume create` spec file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CsiVolumeSpec {
    /// Volume ID.
    pub id: String,
    /// Display name (defaults to the ID).
    pub name: String,
    /// Nomad namespace.
    pub namespace: String,
    /// CSI plugin ID.
    pub plugin_id: String,
    /// Create or register.
    pub mode: VolumeMode,
    /// Storage-side ID (register only).
    pub external_id: Option<String>,
    /// Minimum capacity in bytes.
    pub capacity_min: Option<u64>,
    /// Maximum capacity in bytes.
    pub capacity_max: Option<u64>,
    /// At least one capability.
    pub capabilities: Vec<VolumeCapability>,
    /// Mount options, if any.
    pub mount_options: Option<MountOptions>,
    /// Plugin parameters.
    pub parameters: BTreeMap<String, String>,
    /// Plugin secrets (never shown).
    pub secrets: BTreeMap<String, SecretString>,
    /// Plugin context.
    pub context: BTreeMap<String, String>,
    /// Snapshot to create from.
    pub snapshot_id: Option<String>,
    /// Volume to clone.
    pub clone_id: Option<String>,
    /// Never delete it, even when pruning.
    pub prevent_destroy: bool,
}

/// `bucket:`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketSpec {
    /// Bucket name.
    pub name: String,
    /// Versioning on/off; `None` leaves it alone.
    pub versioning: Option<bool>,
    /// Lifecycle rules; `None` leaves the bucket's lifecycle alone, `Some(empty)` removes it.
    pub lifecycle: Option<Vec<LifecycleRule>>,
    /// Bucket policy JSON, as given.
    pub policy: Option<serde_json::Value>,
    /// Tags besides drover's ownership tag.
    pub tags: BTreeMap<String, String>,
    /// Never delete it, even when pruning.
    pub prevent_destroy: bool,
}

/// The tag naming the app that owns a bucket (the `Meta` key of jobs and config entries).
pub const BUCKET_OWNER_TAG: &str = "drover.app";

/// One bucket lifecycle rule (`lifecycle: { rules: [...] }`): the S3 actions drover sets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct LifecycleRule {
    /// Rule ID (unique in the bucket).
    pub id: String,
    /// Key prefix the rule applies to (`""`: every object).
    pub prefix: String,
    /// `Enabled` or `Disabled` in S3.
    pub enabled: bool,
    /// Expire current objects this many days after creation (`days`).
    pub expire_days: Option<i32>,
    /// Expire noncurrent versions this many days after they became noncurrent (`noncurrent_days`).
    pub noncurrent_days: Option<i32>,
    /// Abort incomplete multipart uploads this many days after they started (`abort_multipart_days`).
    pub abort_multipart_days: Option<i32>,
}

/// `vault_secret:` — a requirement, never a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VaultSecretSpec {
    /// KV mount (`nomad`).
    pub mount: String,
    /// Secret path under the mount (`default/overseerr`).
    pub path: String,
    /// Keys that must exist.
    pub keys: Vec<String>,
}

/// `consul_config_entry:` — any kind, in the API's PascalCase JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigEntrySpec {
    /// `service-defaults`, `service-intentions`, …
    pub kind: String,
    /// Entry name.
    pub name: String,
    /// The full entry as `PUT /v1/config` takes it (PascalCase keys).
    pub body: serde_json::Value,
}

/// One `probes:` entry: what it checks, how often, under which name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probe {
    /// `name:`, or `None` to be named after its target.
    pub name: Option<String>,
    /// Seconds between two runs (`interval:`, default [`Probe::DEFAULT_INTERVAL_SECS`]).
    pub interval_secs: u64,
    /// The check.
    pub check: ProbeCheck,
}

impl Probe {
    /// Default `interval:` of a probe.
    pub const DEFAULT_INTERVAL_SECS: u64 = 30;
    /// Default `timeout:` of an `http` probe.
    pub const DEFAULT_HTTP_TIMEOUT_SECS: u64 = 10;
    /// Default `port:` of a `tls` probe.
    pub const DEFAULT_TLS_PORT: u16 = 443;
    /// Default `warn_days:` of a `tls` probe.
    pub const DEFAULT_WARN_DAYS: u32 = 30;
}

/// What a probe checks.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeCheck {
    /// An HTTP GET expecting a status (redirects are not followed).
    Http {
        /// URL to fetch.
        url: String,
        /// Status code expected.
        expect_status: u16,
        /// Seconds before the request counts as failed.
        timeout_secs: u64,
    },
    /// A TLS certificate that must not expire within `warn_days`.
    Tls {
        /// Host to connect to (and the name the certificate must carry).
        host: String,
        /// Port (default 443).
        port: u16,
        /// Days of validity left before a warning.
        warn_days: u32,
    },
    /// A backup prefix whose newest object must be younger than `max_age`.
    BackupFreshness {
        /// Bucket.
        bucket: String,
        /// Key prefix.
        prefix: String,
        /// Maximum age in seconds.
        max_age_secs: u64,
    },
}

/// `hooks:` entries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hook {
    /// When it runs.
    pub phase: HookPhase,
    /// The batch job it runs.
    pub job: NomadJobSpec,
    /// Run once per app lifetime rather than every sync (recorded in the store on success).
    pub once: bool,
    /// How long its allocations may take to complete before the hook fails (`timeout:`).
    pub timeout_secs: u64,
}

impl Hook {
    /// Default `timeout:` of a hook.
    pub const DEFAULT_TIMEOUT_SECS: u64 = 300;
}

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookPhase {
    /// Before the app's resources are applied.
    PreSync,
    /// After they are applied and healthy.
    PostSync,
    /// When a sync fails (a write or a pre_sync hook).
    SyncFail,
}

impl HookPhase {
    /// The app.yaml key (`pre_sync`, `post_sync`, `sync_fail`).
    pub fn as_str(self) -> &'static str {
        match self {
            HookPhase::PreSync => "pre_sync",
            HookPhase::PostSync => "post_sync",
            HookPhase::SyncFail => "sync_fail",
        }
    }
}
