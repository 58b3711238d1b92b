//! `app.yaml` and the root `drover.yaml`: spanned YAML read into typed [`App`]s, every error kept.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use super::check::{Ctx, join, key_hint};
use super::native;
use super::yaml::{self, Node, Value};
use super::{
    App, BUCKET_OWNER_TAG, BucketSpec, CsiVolumeSpec, Diagnostic, Hook, HookPhase, LifecycleRule,
    MountOptions, Origin, Probe, ProbeCheck, Resource, ResourceId, ResourceKind, ResourceSpec,
    SecretString, SyncPolicy, VaultSecretSpec, VolumeCapability, VolumeMode,
};
use crate::source::Revision;

const APP_KEYS: &[&str] = &[
    "name",
    "namespace",
    "depends_on",
    "sync",
    "chart",
    "pack",
    "resources",
    "probes",
    "hooks",
];
const SYNC_KEYS: &[&str] = &["auto", "self_heal", "prune"];
/// `wave:` beside a resource's kind key: its place in the app's apply order.
const WAVE_KEY: &str = "wave";
/// The kind keys and `wave`, the keys of one `resources:` item.
const RESOURCE_ITEM_KEYS: &[&str] = &[
    "nomad_job",
    "csi_volume",
    "bucket",
    "vault_secret",
    "consul_config_entry",
    WAVE_KEY,
];
pub(crate) const JOB_KEYS: &[&str] = &["file", "variables", "var_files", "levant"];
const VOLUME_INLINE_KEYS: &[&str] = &[
    "id",
    "name",
    "plugin_id",
    "external_id",
    "capacity_min",
    "capacity_max",
    "capabilities",
    "mount_options",
    "parameters",
    "secrets",
    "context",
    "snapshot_id",
    "clone_id",
    "prevent_destroy",
];
const VOLUME_FILE_KEYS: &[&str] = &["file", "variables", "prevent_destroy"];
const ACCESS_MODES: &[&str] = &[
    "single-node-reader-only",
    "single-node-writer",
    "multi-node-reader-only",
    "multi-node-single-writer",
    "multi-node-multi-writer",
];
const ATTACHMENT_MODES: &[&str] = &["file-system", "block-device"];

/// Repo-wide defaults from the root `drover.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RepoDefaults {
    /// Namespace for apps that set none.
    pub namespace: String,
    /// Sync policy for apps that set none (an app's `sync:` keys override one by one).
    pub sync: SyncPolicy,
    /// What the cluster's Traefik supplies to routers that do not say (`traefik:`).
    pub traefik: super::TraefikDefaults,
}

impl Default for RepoDefaults {
    fn default() -> Self {
        RepoDefaults {
            namespace: "default".to_string(),
            sync: SyncPolicy::default(),
            traefik: super::TraefikDefaults::default(),
        }
    }
}

/// One app after its own files were read, before repo-wide checks.
#[derive(Debug)]
pub(crate) struct Draft {
    /// The app name (or the folder name when unreadable).
    pub name: String,
    /// `apps/<folder>`.
    pub dir: String,
    /// The app.yaml path.
    pub file: String,
    /// The typed app if its own files had no error.
    pub app: Option<App>,
    /// Errors so far.
    pub diags: Vec<Diagnostic>,
    /// Warnings (fields accepted but not acted on yet); they do not make the app invalid.
    pub warnings: Vec<Diagnostic>,
    /// Each `depends_on` entry with its position.
    pub depends_on: Vec<(String, usize, usize)>,
    /// Position of `name:` (or 0,0).
    pub name_pos: (usize, usize),
    /// Every resource this app declares, even when the app has errors (for duplicate checks).
    pub claims: Vec<(super::ResourceId, Origin)>,
}

impl Draft {
    /// A copy without the app (what a load keeps to reuse the folder next time).
    pub(crate) fn without_app(&self) -> Draft {
        Draft {
            name: self.name.clone(),
            dir: self.dir.clone(),
            file: self.file.clone(),
            app: None,
            diags: self.diags.clone(),
            warnings: self.warnings.clone(),
            depends_on: self.depends_on.clone(),
            name_pos: self.name_pos,
            claims: self.claims.clone(),
        }
    }
}

fn yaml_error(file: &str, e: yaml::YamlError) -> Diagnostic {
    Diagnostic {
        file: file.to_string(),
        line: e.line,
        column: e.col,
        field: None,
        message: format!("invalid YAML: {}", e.message),
        hint: None,
    }
}

fn text_of(rev: &Revision, path: &str) -> Result<String, String> {
    let bytes = rev.file(path).map_err(|e| e.to_string())?;
    String::from_utf8(bytes.into_owned()).map_err(|_| format!("{path} is not UTF-8 text"))
}

/// Read the root `drover.yaml` (optional).
pub(crate) fn repo_defaults(rev: &Revision, diags: &mut Vec<Diagnostic>) -> RepoDefaults {
    let mut out = RepoDefaults::default();
    let path = "drover.yaml";
    if !rev.contains(path) {
        return out;
    }
    let mut ctx = Ctx::new(path);
    let text = match text_of(rev, path) {
        Ok(t) => t,
        Err(message) => {
            diags.push(Diagnostic {
                file: path.to_string(),
                line: 0,
                column: 0,
                field: None,
                message,
                hint: None,
            });
            return out;
        }
    };
    match yaml::parse(&text) {
        Err(e) => ctx.push(yaml_error(path, e)),
        Ok(None) => {}
        Ok(Some(root)) => {
            if let Some(f) = ctx.fields(&root, "", &["namespace", "sync", "traefik"]) {
                if let Some(n) = f.get("namespace")
                    && let Some(ns) = namespace(&mut ctx, n, "namespace")
                {
                    out.namespace = ns;
                }
                if let Some(n) = f.get("sync") {
                    out.sync = sync_policy(&mut ctx, n, out.sync);
                }
                if let Some(n) = f.get("traefik") {
                    out.traefik = traefik_defaults(&mut ctx, n);
                }
            }
        }
    }
    diags.extend(ctx.diags);
    out
}

fn literal_regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| unreachable!("literal regex {pattern}: {e}"))
}

static APP_NAME: LazyLock<Regex> =
    LazyLock::new(|| literal_regex(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"));
static NAMESPACE: LazyLock<Regex> = LazyLock::new(|| literal_regex(r"^[a-zA-Z0-9-]{1,128}$"));
static BUCKET: LazyLock<Regex> =
    LazyLock::new(|| literal_regex(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"));
static VARIABLE: LazyLock<Regex> = LazyLock::new(|| literal_regex(r"^[A-Za-z_][A-Za-z0-9_-]*$"));

fn valid_app_name(name: &str) -> bool {
    APP_NAME.is_match(name)
}

fn namespace(ctx: &mut Ctx, node: &Node, field: &str) -> Option<String> {
    let ns = ctx.nonempty(node, field)?;
    if !NAMESPACE.is_match(&ns) {
        ctx.err_hint(
            node,
            field,
            format!("\"{ns}\" is not a valid Nomad namespace"),
            Some("use letters, digits and dashes".to_string()),
        );
        return None;
    }
    Some(ns)
}

/// `traefik:` in drover.yaml: the entrypoints and rule the cluster's Traefik gives a router
/// that names none (its `entryPoints.<name>.asDefault` and the Consul catalog `defaultRule`).
fn traefik_defaults(ctx: &mut Ctx, node: &Node) -> super::TraefikDefaults {
    let mut out = super::TraefikDefaults::default();
    if let Some(f) = ctx.fields(node, "traefik", &["default_entrypoints", "default_rule"]) {
        if let Some(n) = f.get("default_entrypoints") {
            out.entrypoints = ctx.string_list(n, "traefik.default_entrypoints");
        }
        if let Some(n) = f.get("default_rule") {
            out.rule = ctx.nonempty(n, "traefik.default_rule");
        }
    }
    out
}

fn sync_policy(ctx: &mut Ctx, node: &Node, base: SyncPolicy) -> SyncPolicy {
    let mut out = base;
    if let Some(f) = ctx.fields(node, "sync", SYNC_KEYS) {
        if let Some(v) = f.get("auto").and_then(|n| ctx.boolean(n, "sync.auto")) {
            out.auto = v;
        }
        if let Some(v) = f
            .get("self_heal")
            .and_then(|n| ctx.boolean(n, "sync.self_heal"))
        {
            out.self_heal = v;
        }
        if let Some(v) = f.get("prune").and_then(|n| ctx.boolean(n, "sync.prune")) {
            out.prune = v;
        }
    }
    out
}

/// Read one app folder's `app.yaml` and the native files it references.
pub(crate) fn load_app(rev: &Revision, folder: &str, defaults: &RepoDefaults) -> Draft {
    let dir = format!("apps/{folder}");
    let file = format!("{dir}/app.yaml");
    let mut ctx = Ctx::new(&file);
    let mut draft = Draft {
        name: folder.to_string(),
        dir: dir.clone(),
        file: file.clone(),
        app: None,
        diags: Vec::new(),
        warnings: Vec::new(),
        depends_on: Vec::new(),
        name_pos: (0, 0),
        claims: Vec::new(),
    };
    let text = match text_of(rev, &file) {
        Ok(t) => t,
        Err(message) => {
            draft.diags.push(Diagnostic {
                file,
                line: 0,
                column: 0,
                field: None,
                message,
                hint: None,
            });
            return draft;
        }
    };
    let root = match yaml::parse(&text) {
        Err(e) => {
            draft.diags.push(yaml_error(&file, e));
            return draft;
        }
        Ok(None) => Node {
            value: Value::Map(Vec::new()),
            line: 1,
            col: 1,
        },
        Ok(Some(root)) => root,
    };
    let Some(f) = ctx.fields(&root, "", APP_KEYS) else {
        draft.diags = ctx.diags;
        return draft;
    };

    let mut name_ok = true;
    let name = match f.get("name") {
        Some(n) => {
            draft.name_pos = (n.line, n.col);
            match ctx.nonempty(n, "name") {
                Some(name) if valid_app_name(&name) => name,
                Some(name) => {
                    ctx.err_hint(
                        n,
                        "name",
                        format!("\"{name}\" is not a valid app name"),
                        Some("use lowercase letters, digits and dashes (at most 63), starting and ending with a letter or digit".to_string()),
                    );
                    name_ok = false;
                    name
                }
                None => {
                    name_ok = false;
                    folder.to_string()
                }
            }
        }
        None => {
            if !valid_app_name(folder) {
                ctx.err_hint(
                    &root,
                    "name",
                    format!("the folder name \"{folder}\" is not a valid app name"),
                    Some("set name: in app.yaml, or rename the folder to lowercase letters, digits and dashes".to_string()),
                );
                name_ok = false;
            }
            folder.to_string()
        }
    };
    draft.name = name.clone();

    let namespace = match f.get("namespace") {
        Some(n) => namespace(&mut ctx, n, "namespace").unwrap_or_default(),
        None => defaults.namespace.clone(),
    };
    let sync = match f.get("sync") {
        Some(n) => sync_policy(&mut ctx, n, defaults.sync),
        None => defaults.sync,
    };
    let mut depends_on = Vec::new();
    if let Some(n) = f.get("depends_on")
        && let Some(items) = ctx.list(n, "depends_on")
    {
        for (i, item) in items.iter().enumerate() {
            let field = format!("depends_on[{i}]");
            if let Some(dep) = ctx.nonempty(item, &field) {
                if depends_on.contains(&dep) {
                    ctx.err(item, &field, format!("\"{dep}\" is listed twice"));
                    continue;
                }
                draft.depends_on.push((dep.clone(), item.line, item.col));
                depends_on.push(dep);
            }
        }
    }
    let mut listing = Listing::default();
    let mut resources = match f.get("resources") {
        Some(n) => resources(&mut ctx, rev, &dir, &namespace, n, &mut listing),
        None => Vec::new(),
    };
    // What the pack renders comes after the explicit resources (order among kinds is by
    // dependencies, not by listing).
    let pack = match f.get("pack") {
        Some(n) => super::pack::pack_resources(&mut ctx, rev, &dir, &namespace, n).map(
            |(pack, rendered)| {
                resources.extend(rendered);
                pack
            },
        ),
        None => None,
    };
    let probes = match f.get("probes") {
        Some(n) => probes(&mut ctx, n),
        None => Vec::new(),
    };
    let hooks = match f.get("hooks") {
        Some(n) => hooks(&mut ctx, rev, (&dir, &namespace), &resources, n),
        None => Vec::new(),
    };
    warn_unsupported(&mut ctx, &f);
    duplicate_ids_within(&mut ctx, &resources);
    draft.claims = resources
        .iter()
        .map(|r| (r.id.clone(), r.origin.clone()))
        .collect();

    if ctx.diags.is_empty() && name_ok {
        let app = App {
            name,
            dir,
            namespace,
            depends_on,
            sync,
            pack,
            resources,
            probes,
            hooks,
            explicit_waves: listing.waves,
        };
        dependency_cycle(&mut ctx, &app, &listing.items);
        draft.app = ctx.diags.is_empty().then_some(app);
    }
    draft.diags = ctx.diags;
    draft.warnings = ctx.warnings;
    draft
}

/// An error where the first resource of a dependency cycle inside the app is listed, naming the
/// whole cycle.
fn dependency_cycle(ctx: &mut Ctx, app: &App, items: &BTreeMap<ResourceId, (usize, usize)>) {
    let ids: Vec<ResourceId> = app.resources.iter().map(|r| r.id.clone()).collect();
    let edges = super::resource_dependencies(app);
    let Err(cycle) = crate::plan::order::order(&ids, &app.explicit_waves, &edges) else {
        return;
    };
    let (line, column) = cycle
        .0
        .first()
        .and_then(|id| items.get(id))
        .copied()
        .unwrap_or((0, 0));
    let file = ctx.file.clone();
    ctx.push(Diagnostic {
        file,
        line,
        column,
        field: Some("resources".into()),
        message: cycle.to_string(),
        hint: Some(
            "each resource waits for the next (it mounts, reads or names it, or has a higher \
             wave:); remove one of these dependencies"
                .into(),
        ),
    });
}

/// The app.yaml keys that are accepted but not acted on, and what that means for the app.
/// `chart:` was the placeholder before packs: ignoring it silently would let a user believe it
/// renders.
const NOT_SUPPORTED_YET: [(&str, &str); 1] = [(
    "chart",
    "not supported yet under this name: charts are Nomad Packs, written `pack: { name, variables, var_files }`; `chart:` is ignored",
)];

/// A warning at each key in [`NOT_SUPPORTED_YET`] the app.yaml uses.
fn warn_unsupported(ctx: &mut Ctx, fields: &super::check::Fields<'_>) {
    for (key, message) in NOT_SUPPORTED_YET {
        if let Some(node) = fields.key(key) {
            ctx.warn(node, key, message);
        }
    }
}

fn duplicate_ids_within(ctx: &mut Ctx, resources: &[Resource]) {
    for (i, r) in resources.iter().enumerate() {
        if let Some(first) = resources[..i].iter().find(|o| o.id == r.id) {
            ctx.push(Diagnostic {
                file: r.origin.file.clone(),
                line: r.origin.line,
                column: 0,
                field: Some(format!("resources[{i}]")),
                message: format!("{} is declared twice in this app", r.id),
                hint: Some(format!(
                    "first declared at {}:{}",
                    first.origin.file, first.origin.line
                )),
            });
        }
    }
}

/// The single key of a "one of" item (`- nomad_job: {...}`), reported when zero or several.
fn one_key<'a>(
    ctx: &mut Ctx,
    item: &'a Node,
    field: &str,
    allowed: &[&str],
    what: &str,
) -> Option<(String, &'a Node)> {
    let f = ctx.fields(item, field, allowed)?;
    let keys: Vec<String> = f
        .keys()
        .filter(|k| *k != WAVE_KEY)
        .map(str::to_string)
        .collect();
    match keys.as_slice() {
        [one] => f.get(one).map(|v| (one.clone(), v)),
        [] => {
            // Empty, or only `wave:` (unknown keys were reported already).
            let only_wave = matches!(&item.value, Value::Map(p)
                if p.iter().all(|(k, _)| k.key_text() == WAVE_KEY));
            if only_wave {
                let kinds: Vec<&str> = allowed.iter().copied().filter(|k| *k != WAVE_KEY).collect();
                ctx.err_hint(
                    item,
                    field,
                    format!("empty {what}"),
                    Some(format!("use one of: {}", kinds.join(", "))),
                );
            }
            None
        }
        many => {
            ctx.err_hint(
                item,
                field,
                format!(
                    "{what} has {} kind keys ({}); each item takes exactly one",
                    many.len(),
                    many.join(", ")
                ),
                Some("split it into separate list items".to_string()),
            );
            None
        }
    }
}

/// The `wave:` of a resources item, if written: a non-negative integer.
fn explicit_wave(ctx: &mut Ctx, item: &Node, field: &str) -> Option<u32> {
    let Value::Map(pairs) = &item.value else {
        return None;
    };
    let (_, node) = pairs.iter().find(|(k, _)| k.key_text() == WAVE_KEY)?;
    let field = join(field, WAVE_KEY);
    match &node.value {
        Value::Int(i) => match u32::try_from(*i) {
            Ok(wave) => Some(wave),
            Err(_) => {
                ctx.err_hint(
                    node,
                    &field,
                    format!("wave {i} is out of range"),
                    Some(
                        "a wave is an integer from 0 to 4294967295; lower waves apply first".into(),
                    ),
                );
                None
            }
        },
        _ => {
            ctx.err_hint(
                node,
                &field,
                format!(
                    "expected a wave (an integer), found {}",
                    node.value.type_name()
                ),
                Some("write e.g. wave: 1; lower waves apply first".into()),
            );
            None
        }
    }
}

/// Where each resource is listed in app.yaml, and the `wave:` written on any of them.
#[derive(Default)]
struct Listing {
    waves: BTreeMap<ResourceId, u32>,
    items: BTreeMap<ResourceId, (usize, usize)>,
}

/// The app's resources, and where they are listed.
fn resources(
    ctx: &mut Ctx,
    rev: &Revision,
    dir: &str,
    namespace: &str,
    node: &Node,
    listing: &mut Listing,
) -> Vec<Resource> {
    let mut out = Vec::new();
    let Some(items) = ctx.list(node, "resources") else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let field = format!("resources[{i}]");
        let wave = explicit_wave(ctx, item, &field);
        let Some((kind, value)) = one_key(ctx, item, &field, RESOURCE_ITEM_KEYS, "a resource")
        else {
            continue;
        };
        let field = join(&field, &kind);
        let here = Origin {
            file: ctx.file.clone(),
            line: item.line,
        };
        let made = match kind.as_str() {
            "nomad_job" => {
                native::nomad_job(ctx, rev, dir, namespace, value, &field).map(|(spec, origin)| {
                    Resource {
                        id: ResourceId {
                            kind: ResourceKind::NomadJob,
                            scope: namespace.to_string(),
                            name: spec.job_id.clone(),
                        },
                        spec: ResourceSpec::NomadJob(spec),
                        origin,
                    }
                })
            }
            "csi_volume" => {
                csi_volume(ctx, rev, dir, namespace, value, &field).map(|(spec, origin)| Resource {
                    id: ResourceId {
                        kind: ResourceKind::CsiVolume,
                        scope: namespace.to_string(),
                        name: spec.id.clone(),
                    },
                    spec: ResourceSpec::CsiVolume(spec),
                    origin: origin.unwrap_or(here),
                })
            }
            "bucket" => bucket(ctx, value, &field).map(|spec| Resource {
                id: ResourceId {
                    kind: ResourceKind::Bucket,
                    scope: String::new(),
                    name: spec.name.clone(),
                },
                spec: ResourceSpec::Bucket(spec),
                origin: here,
            }),
            "vault_secret" => vault_secret(ctx, value, &field).map(|spec| Resource {
                id: ResourceId {
                    kind: ResourceKind::VaultSecret,
                    scope: spec.mount.clone(),
                    name: spec.path.clone(),
                },
                spec: ResourceSpec::VaultSecret(spec),
                origin: here,
            }),
            _ => {
                native::config_entry(ctx, rev, dir, value, &field).map(|(spec, origin)| Resource {
                    id: ResourceId {
                        kind: ResourceKind::ConsulConfigEntry,
                        scope: spec.kind.clone(),
                        name: spec.name.clone(),
                    },
                    spec: ResourceSpec::ConsulConfigEntry(spec),
                    origin: origin.unwrap_or(here),
                })
            }
        };
        if let Some(resource) = &made {
            listing
                .items
                .insert(resource.id.clone(), (item.line, item.col));
            if let Some(wave) = wave {
                listing.waves.insert(resource.id.clone(), wave);
            }
        }
        out.extend(made);
    }
    out
}

fn csi_volume(
    ctx: &mut Ctx,
    rev: &Revision,
    dir: &str,
    namespace: &str,
    node: &Node,
    field: &str,
) -> Option<(CsiVolumeSpec, Option<Origin>)> {
    let is_file =
        matches!(&node.value, Value::Map(p) if p.iter().any(|(k, _)| k.key_text() == "file"));
    if is_file {
        let f = ctx.fields(node, field, VOLUME_FILE_KEYS)?;
        let prevent_destroy = f
            .get("prevent_destroy")
            .and_then(|n| ctx.boolean(n, &join(field, "prevent_destroy")))
            .unwrap_or(false);
        let vars = f.get("variables");
        let file_node = f.get("file")?;
        let (mut spec, origin) =
            native::csi_volume_file(ctx, rev, dir, namespace, file_node, vars, field)?;
        spec.prevent_destroy = prevent_destroy;
        return Some((spec, Some(origin)));
    }
    let f = ctx.fields(node, field, VOLUME_INLINE_KEYS)?;
    let before = ctx.diags.len();
    let req = |ctx: &mut Ctx, key: &str| -> Option<String> {
        match f.get(key) {
            Some(n) => ctx.nonempty(n, &join(field, key)),
            None => {
                ctx.err(node, &join(field, key), format!("{key} is required"));
                None
            }
        }
    };
    let id = req(ctx, "id");
    let plugin_id = req(ctx, "plugin_id");
    let opt = |ctx: &mut Ctx, key: &str| -> Option<String> {
        f.get(key).and_then(|n| ctx.nonempty(n, &join(field, key)))
    };
    let name = opt(ctx, "name");
    let external_id = opt(ctx, "external_id");
    let snapshot_id = opt(ctx, "snapshot_id");
    let clone_id = opt(ctx, "clone_id");
    let capacity_min = f
        .get("capacity_min")
        .and_then(|n| ctx.size(n, &join(field, "capacity_min")));
    let capacity_max = f
        .get("capacity_max")
        .and_then(|n| ctx.size(n, &join(field, "capacity_max")));
    let mut capabilities = Vec::new();
    if let Some(n) = f.get("capabilities")
        && let Some(items) = ctx.list(n, &join(field, "capabilities"))
    {
        for (i, item) in items.iter().enumerate() {
            let cf = format!("{field}.capabilities[{i}]");
            let Some(c) = ctx.fields(item, &cf, &["access_mode", "attachment_mode"]) else {
                continue;
            };
            let access = c.get("access_mode").and_then(|n| {
                let v = ctx.nonempty(n, &join(&cf, "access_mode"))?;
                one_of(ctx, n, &join(&cf, "access_mode"), &v, ACCESS_MODES)
            });
            let attach = c.get("attachment_mode").and_then(|n| {
                let v = ctx.nonempty(n, &join(&cf, "attachment_mode"))?;
                one_of(ctx, n, &join(&cf, "attachment_mode"), &v, ATTACHMENT_MODES)
            });
            match (access, attach) {
                (Some(access_mode), Some(attachment_mode)) => capabilities.push(VolumeCapability {
                    access_mode,
                    attachment_mode,
                }),
                (a, b) => {
                    if a.is_none() && c.get("access_mode").is_none() {
                        ctx.err(item, &join(&cf, "access_mode"), "access_mode is required");
                    }
                    if b.is_none() && c.get("attachment_mode").is_none() {
                        ctx.err(
                            item,
                            &join(&cf, "attachment_mode"),
                            "attachment_mode is required",
                        );
                    }
                }
            }
        }
    }
    let mount_options = f.get("mount_options").and_then(|n| {
        let mf = join(field, "mount_options");
        let m = ctx.fields(n, &mf, &["fs_type", "mount_flags"])?;
        Some(MountOptions {
            fs_type: m
                .get("fs_type")
                .and_then(|n| ctx.string(n, &join(&mf, "fs_type")))
                .unwrap_or_default(),
            mount_flags: m
                .get("mount_flags")
                .map(|n| ctx.string_list(n, &join(&mf, "mount_flags")))
                .unwrap_or_default(),
        })
    });
    let map = |ctx: &mut Ctx, key: &str| {
        f.get(key)
            .map(|n| ctx.string_map(n, &join(field, key)))
            .unwrap_or_default()
    };
    let parameters = map(ctx, "parameters");
    let secrets = map(ctx, "secrets")
        .into_iter()
        .map(|(k, v)| (k, SecretString(v)))
        .collect();
    let context = map(ctx, "context");
    let prevent_destroy = f
        .get("prevent_destroy")
        .and_then(|n| ctx.boolean(n, &join(field, "prevent_destroy")))
        .unwrap_or(false);
    if ctx.diags.len() > before {
        return None;
    }
    let id = id?;
    let spec = CsiVolumeSpec {
        name: name.unwrap_or_else(|| id.clone()),
        id,
        namespace: namespace.to_string(),
        plugin_id: plugin_id?,
        mode: if external_id.is_some() {
            VolumeMode::Register
        } else {
            VolumeMode::Create
        },
        external_id,
        capacity_min,
        capacity_max,
        capabilities,
        mount_options,
        parameters,
        secrets,
        context,
        snapshot_id,
        clone_id,
        prevent_destroy,
    };
    let problems = volume_problems(&spec);
    for p in &problems {
        ctx.err(node, field, p.clone());
    }
    problems.is_empty().then_some((spec, None))
}

/// Checks shared by inline and file volumes.
pub(crate) fn volume_problems(spec: &CsiVolumeSpec) -> Vec<String> {
    let mut out = Vec::new();
    if spec.capabilities.is_empty() {
        out.push(
            "a CSI volume needs at least one capability (access_mode and attachment_mode)"
                .to_string(),
        );
    }
    if let (Some(min), Some(max)) = (spec.capacity_min, spec.capacity_max)
        && min > max
    {
        out.push(format!(
            "capacity_min ({min} bytes) is larger than capacity_max ({max} bytes)"
        ));
    }
    if spec.snapshot_id.is_some() && spec.clone_id.is_some() {
        out.push("snapshot_id and clone_id cannot both be set".to_string());
    }
    if spec.mode == VolumeMode::Register && (spec.snapshot_id.is_some() || spec.clone_id.is_some())
    {
        out.push(
            "a registered volume (external_id) cannot have snapshot_id or clone_id".to_string(),
        );
    }
    out
}

/// Accept `value` only if it is one of `valid`, hinting at the nearest.
pub(crate) fn one_of(
    ctx: &mut Ctx,
    node: &Node,
    field: &str,
    value: &str,
    valid: &[&str],
) -> Option<String> {
    if valid.contains(&value) {
        return Some(value.to_string());
    }
    ctx.err_hint(
        node,
        field,
        format!("\"{value}\" is not one of {}", valid.join(", ")),
        super::check::suggest(value, valid).map(|s| format!("did you mean \"{s}\"?")),
    );
    None
}

fn valid_bucket_name(name: &str) -> bool {
    let ip_like = name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok());
    BUCKET.is_match(name) && !name.contains("..") && !ip_like && !name.starts_with("xn--")
}

fn bucket(ctx: &mut Ctx, node: &Node, field: &str) -> Option<BucketSpec> {
    let f = ctx.fields(
        node,
        field,
        &[
            "name",
            "versioning",
            "lifecycle",
            "policy",
            "tags",
            "prevent_destroy",
        ],
    )?;
    let before = ctx.diags.len();
    let name = match f.get("name") {
        Some(n) => {
            let name = ctx.nonempty(n, &join(field, "name"))?;
            if !valid_bucket_name(&name) {
                ctx.err_hint(
                    n,
                    &join(field, "name"),
                    format!("\"{name}\" is not a valid S3 bucket name"),
                    Some("3-63 lowercase letters, digits, dots and dashes".to_string()),
                );
            }
            Some(name)
        }
        None => {
            ctx.err(node, &join(field, "name"), "name is required");
            None
        }
    };
    let versioning = f
        .get("versioning")
        .and_then(|n| ctx.boolean(n, &join(field, "versioning")));
    let lifecycle = f
        .get("lifecycle")
        .and_then(|n| lifecycle(ctx, n, &join(field, "lifecycle")));
    let policy = match f.get("policy") {
        Some(n) => match &n.value {
            Value::Str(s) => match serde_json::from_str(s) {
                Ok(v) => bucket_policy(ctx, n, &join(field, "policy"), v),
                Err(e) => {
                    ctx.err(
                        n,
                        &join(field, "policy"),
                        format!("policy is not JSON: {e}"),
                    );
                    None
                }
            },
            Value::Map(_) => bucket_policy(ctx, n, &join(field, "policy"), n.to_json()),
            _ => {
                ctx.err(
                    n,
                    &join(field, "policy"),
                    "expected a policy document (a mapping or a JSON string)",
                );
                None
            }
        },
        None => None,
    };
    let tags = f
        .get("tags")
        .map(|n| {
            let tags = ctx.string_map(n, &join(field, "tags"));
            if tags.contains_key(BUCKET_OWNER_TAG) {
                ctx.err(
                    n,
                    &join(field, "tags"),
                    format!(
                        "the tag \"{BUCKET_OWNER_TAG}\" is drover's ownership tag; do not set it"
                    ),
                );
            }
            tags
        })
        .unwrap_or_default();
    let prevent_destroy = f
        .get("prevent_destroy")
        .and_then(|n| ctx.boolean(n, &join(field, "prevent_destroy")))
        .unwrap_or(false);
    if ctx.diags.len() > before {
        return None;
    }
    Some(BucketSpec {
        name: name?,
        versioning,
        lifecycle,
        policy,
        tags,
        prevent_destroy,
    })
}

/// A bucket policy document: an object with a `Statement` list whose items say `Effect`
/// `Allow` or `Deny` and name an `Action` (S3 would refuse anything less at apply time).
fn bucket_policy(
    ctx: &mut Ctx,
    node: &Node,
    field: &str,
    policy: serde_json::Value,
) -> Option<serde_json::Value> {
    let problem = match &policy {
        serde_json::Value::Object(doc) => match doc.get("Statement") {
            Some(serde_json::Value::Array(statements)) => {
                statements.iter().enumerate().find_map(|(i, st)| {
                    match st.get("Effect").and_then(serde_json::Value::as_str) {
                        Some("Allow" | "Deny") if st.get("Action").is_some() => None,
                        Some("Allow" | "Deny") => Some(format!("Statement[{i}] has no Action")),
                        _ => Some(format!(
                            "Statement[{i}].Effect must be \"Allow\" or \"Deny\""
                        )),
                    }
                })
            }
            _ => Some("a policy needs a \"Statement\" list".to_string()),
        },
        _ => Some("a policy is a JSON object".to_string()),
    };
    match problem {
        Some(problem) => {
            ctx.err(node, field, format!("invalid bucket policy: {problem}"));
            None
        }
        None => Some(policy),
    }
}

/// `lifecycle: { rules: [{ id, prefix, days, noncurrent_days, abort_multipart_days, enabled }] }`.
fn lifecycle(ctx: &mut Ctx, node: &Node, field: &str) -> Option<Vec<LifecycleRule>> {
    let f = ctx.fields(node, field, &["rules"])?;
    let Some(rules) = f.get("rules") else {
        ctx.err(
            node,
            &join(field, "rules"),
            "rules is required (an empty list removes every rule)",
        );
        return None;
    };
    let items = ctx.list(rules, &join(field, "rules"))?;
    let before = ctx.diags.len();
    let mut out: Vec<LifecycleRule> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}.rules[{i}]");
        let keys = [
            "id",
            "prefix",
            "enabled",
            "days",
            "noncurrent_days",
            "abort_multipart_days",
        ];
        let Some(r) = ctx.fields(item, &at, &keys) else {
            continue;
        };
        let id = match r.get("id") {
            Some(n) => ctx.nonempty(n, &join(&at, "id")),
            None => {
                ctx.err(item, &join(&at, "id"), "id is required");
                None
            }
        };
        let prefix = r
            .get("prefix")
            .and_then(|n| ctx.string(n, &join(&at, "prefix")))
            .unwrap_or_default();
        let enabled = r
            .get("enabled")
            .and_then(|n| ctx.boolean(n, &join(&at, "enabled")))
            .unwrap_or(true);
        let mut days = |key: &str| -> Option<i32> {
            let n = r.get(key)?;
            let value = ctx.unsigned(n, &join(&at, key))?;
            match i32::try_from(value) {
                Ok(days) if days > 0 => Some(days),
                _ => {
                    ctx.err(n, &join(&at, key), "days must be between 1 and 2147483647");
                    None
                }
            }
        };
        let expire_days = days("days");
        let noncurrent_days = days("noncurrent_days");
        let abort_multipart_days = days("abort_multipart_days");
        if expire_days.is_none() && noncurrent_days.is_none() && abort_multipart_days.is_none() {
            ctx.err(
                item,
                &at,
                "a rule needs an action: days, noncurrent_days or abort_multipart_days",
            );
        }
        if let Some(id) = id {
            if out.iter().any(|o| o.id == id) {
                ctx.err(
                    item,
                    &join(&at, "id"),
                    format!("duplicate rule id \"{id}\""),
                );
            }
            out.push(LifecycleRule {
                id,
                prefix,
                enabled,
                expire_days,
                noncurrent_days,
                abort_multipart_days,
            });
        }
    }
    (ctx.diags.len() == before).then_some(out)
}

fn vault_secret(ctx: &mut Ctx, node: &Node, field: &str) -> Option<VaultSecretSpec> {
    let f = ctx.fields(node, field, &["mount", "path", "keys"])?;
    let before = ctx.diags.len();
    let mut req = |key: &str| -> Option<String> {
        match f.get(key) {
            Some(n) => {
                let v = ctx.nonempty(n, &join(field, key))?;
                if v.starts_with('/') || v.ends_with('/') {
                    ctx.err(
                        n,
                        &join(field, key),
                        format!("\"{v}\" must not start or end with /"),
                    );
                }
                Some(v)
            }
            None => {
                ctx.err(node, &join(field, key), format!("{key} is required"));
                None
            }
        }
    };
    let mount = req("mount");
    let path = req("path");
    let keys = f
        .get("keys")
        .map(|n| ctx.string_list(n, &join(field, "keys")))
        .unwrap_or_default();
    if ctx.diags.len() > before {
        return None;
    }
    Some(VaultSecretSpec {
        mount: mount?,
        path: path?,
        keys,
    })
}

fn probes(ctx: &mut Ctx, node: &Node) -> Vec<Probe> {
    let mut out = Vec::new();
    let Some(items) = ctx.list(node, "probes") else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let field = format!("probes[{i}]");
        let Some((kind, value)) = one_key(
            ctx,
            item,
            &field,
            &["http", "tls", "backup_freshness"],
            "a probe",
        ) else {
            continue;
        };
        let field = join(&field, &kind);
        let before = ctx.diags.len();
        let allowed: &[&str] = match kind.as_str() {
            "http" => &["url", "expect_status", "timeout", "name", "interval"],
            "tls" => &["host", "port", "warn_days", "name", "interval"],
            _ => &["bucket", "prefix", "max_age", "name", "interval"],
        };
        let Some(f) = ctx.fields(value, &field, allowed) else {
            continue;
        };
        let name = f
            .get("name")
            .and_then(|n| ctx.nonempty(n, &join(&field, "name")));
        let interval = match f.get("interval") {
            Some(n) => positive_duration(ctx, n, &join(&field, "interval")),
            None => Some(Probe::DEFAULT_INTERVAL_SECS),
        };
        let check = match kind.as_str() {
            "http" => http_probe(ctx, value, &f, &field),
            "tls" => tls_probe(ctx, value, &f, &field),
            _ => backup_probe(ctx, value, &f, &field),
        };
        if ctx.diags.len() == before
            && let (Some(check), Some(interval_secs)) = (check, interval)
        {
            out.push(Probe {
                name,
                interval_secs,
                check,
            });
        }
    }
    out
}

/// A duration above zero (`interval:`, `timeout:`), else an error at the node.
fn positive_duration(ctx: &mut Ctx, node: &Node, field: &str) -> Option<u64> {
    match ctx.duration_secs(node, field)? {
        0 => {
            ctx.err(node, field, "must be at least 1s");
            None
        }
        secs => Some(secs),
    }
}

fn http_probe(
    ctx: &mut Ctx,
    value: &Node,
    f: &super::check::Fields<'_>,
    field: &str,
) -> Option<ProbeCheck> {
    let url = match f.get("url") {
        Some(n) => {
            let u = ctx.nonempty(n, &join(field, "url"))?;
            match url::Url::parse(&u) {
                Ok(p) if matches!(p.scheme(), "http" | "https") => Some(u),
                _ => {
                    // The URL may carry a password: the message names it without one.
                    ctx.err(
                        n,
                        &join(field, "url"),
                        format!(
                            "\"{}\" is not an http(s) URL",
                            crate::health::probes::redact_url(&u)
                        ),
                    );
                    None
                }
            }
        }
        None => {
            ctx.err(value, &join(field, "url"), "url is required");
            None
        }
    };
    let status = match f.get("expect_status") {
        Some(n) => match ctx.unsigned(n, &join(field, "expect_status")) {
            Some(s @ 100..=599) => Some(s as u16),
            Some(s) => {
                ctx.err(
                    n,
                    &join(field, "expect_status"),
                    format!("{s} is not an HTTP status code"),
                );
                None
            }
            None => None,
        },
        None => Some(200),
    };
    let timeout = match f.get("timeout") {
        Some(n) => positive_duration(ctx, n, &join(field, "timeout")),
        None => Some(Probe::DEFAULT_HTTP_TIMEOUT_SECS),
    };
    Some(ProbeCheck::Http {
        url: url?,
        expect_status: status?,
        timeout_secs: timeout?,
    })
}

fn tls_probe(
    ctx: &mut Ctx,
    value: &Node,
    f: &super::check::Fields<'_>,
    field: &str,
) -> Option<ProbeCheck> {
    let host = match f.get("host") {
        Some(n) => ctx.nonempty(n, &join(field, "host")),
        None => {
            ctx.err(value, &join(field, "host"), "host is required");
            None
        }
    };
    let port = match f.get("port") {
        Some(n) => match ctx.unsigned(n, &join(field, "port")) {
            Some(p @ 1..=65535) => Some(p as u16),
            Some(p) => {
                ctx.err(n, &join(field, "port"), format!("{p} is not a TCP port"));
                None
            }
            None => None,
        },
        None => Some(Probe::DEFAULT_TLS_PORT),
    };
    let warn_days = match f.get("warn_days") {
        Some(n) => ctx
            .unsigned(n, &join(field, "warn_days"))
            .map(|d| u32::try_from(d).unwrap_or(u32::MAX)),
        None => Some(Probe::DEFAULT_WARN_DAYS),
    };
    Some(ProbeCheck::Tls {
        host: host?,
        port: port?,
        warn_days: warn_days?,
    })
}

fn backup_probe(
    ctx: &mut Ctx,
    value: &Node,
    f: &super::check::Fields<'_>,
    field: &str,
) -> Option<ProbeCheck> {
    let bucket = match f.get("bucket") {
        Some(n) => ctx.nonempty(n, &join(field, "bucket")),
        None => {
            ctx.err(value, &join(field, "bucket"), "bucket is required");
            None
        }
    };
    let prefix = f
        .get("prefix")
        .and_then(|n| ctx.string(n, &join(field, "prefix")))
        .unwrap_or_default();
    let max_age = match f.get("max_age") {
        Some(n) => positive_duration(ctx, n, &join(field, "max_age")),
        None => {
            ctx.err(value, &join(field, "max_age"), "max_age is required");
            None
        }
    };
    Some(ProbeCheck::BackupFreshness {
        bucket: bucket?,
        prefix,
        max_age_secs: max_age?,
    })
}

/// `hooks:`; a hook's job must be a batch job of its own, not one of the app's `resources`.
fn hooks(
    ctx: &mut Ctx,
    rev: &Revision,
    (dir, namespace): (&str, &str),
    resources: &[Resource],
    node: &Node,
) -> Vec<Hook> {
    const PHASES: [(&str, HookPhase); 3] = [
        ("pre_sync", HookPhase::PreSync),
        ("post_sync", HookPhase::PostSync),
        ("sync_fail", HookPhase::SyncFail),
    ];
    let mut out = Vec::new();
    let Some(items) = ctx.list(node, "hooks") else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let field = format!("hooks[{i}]");
        let keys = PHASES.map(|(key, _)| key);
        let Some((key, value)) = one_key(ctx, item, &field, &keys, "a hook") else {
            continue;
        };
        let Some(phase) = PHASES.iter().find(|(k, _)| *k == key).map(|(_, p)| *p) else {
            continue;
        };
        let field = join(&field, &key);
        let Some(f) = ctx.fields(value, &field, &["nomad_job", "once", "timeout"]) else {
            continue;
        };
        let once = f
            .get("once")
            .and_then(|n| ctx.boolean(n, &join(&field, "once")))
            .unwrap_or(false);
        let timeout_secs = match f.get("timeout") {
            Some(n) => match ctx.duration_secs(n, &join(&field, "timeout")) {
                Some(0) => {
                    ctx.err(
                        n,
                        &join(&field, "timeout"),
                        "a hook's timeout must be above 0",
                    );
                    continue;
                }
                Some(secs) => secs,
                None => continue,
            },
            None => Hook::DEFAULT_TIMEOUT_SECS,
        };
        let Some(job) = f.get("nomad_job") else {
            ctx.err(
                value,
                &join(&field, "nomad_job"),
                "a hook needs a nomad_job: { file: ... }",
            );
            continue;
        };
        // A hook's job lives in the app's namespace like its other jobs.
        let Some((spec, _)) =
            native::nomad_job(ctx, rev, dir, namespace, job, &join(&field, "nomad_job"))
        else {
            continue;
        };
        let is_resource = resources.iter().any(|r| {
            r.id.kind == ResourceKind::NomadJob
                && r.id.scope == namespace
                && r.id.name == spec.job_id
        });
        if is_resource {
            ctx.err(
                job,
                &join(&field, "nomad_job"),
                format!(
                    "job \"{}\" is also one of the app's resources; a hook needs a batch job of its own",
                    spec.job_id
                ),
            );
            continue;
        }
        if native::check_batch_job(ctx, &spec) {
            out.push(Hook {
                phase,
                job: spec,
                once,
                timeout_secs,
            });
        }
    }
    out
}

/// Map an unknown `apps/<x>/app.yml` to a hint (the file is ignored otherwise).
pub(crate) fn misnamed_manifest_hint(path: &str) -> Option<Diagnostic> {
    let rest = path.strip_prefix("apps/")?;
    let (_folder, file) = rest.split_once('/')?;
    if file.contains('/') {
        return None;
    }
    let hint_for = ["app.yml", "App.yaml", "app.yaml.yaml", "application.yaml"];
    hint_for.contains(&file).then(|| Diagnostic {
        file: path.to_string(),
        line: 0,
        column: 0,
        field: None,
        message: "this folder has no app.yaml, so it is not loaded".to_string(),
        hint: Some("did you mean \"app.yaml\"?".to_string()),
    })
}

/// Render app.yaml `variables:` into (name → HCL value) pairs, keeping positions for errors.
pub(crate) fn variables_map(
    ctx: &mut Ctx,
    node: &Node,
    field: &str,
) -> Vec<(String, serde_json::Value, usize, usize)> {
    let mut out = Vec::new();
    let Value::Map(pairs) = &node.value else {
        ctx.err(
            node,
            field,
            format!("expected a mapping, found {}", node.value.type_name()),
        );
        return out;
    };
    for (k, v) in pairs {
        let key = k.key_text();
        if !VARIABLE.is_match(&key) {
            ctx.err(
                k,
                &join(field, &key),
                format!("\"{key}\" is not a valid variable name"),
            );
            continue;
        }
        if matches!(v.value, Value::Null) {
            ctx.err(v, &join(field, &key), "a variable value cannot be null");
            continue;
        }
        out.push((key, v.to_json(), k.line, k.col));
    }
    out
}

/// Unknown-key hint helper re-exported for native files (HCL keys).
pub(crate) fn hint(typo: &str, valid: &[&str]) -> String {
    key_hint(typo, valid)
}

/// A string → string map from JSON (volume variables and HCL parameters).
pub(crate) fn json_to_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
