//! `pack:` in app.yaml: find the pack (repo-local `charts/<name>/`, else one shipped with drover),
//! merge its variables (`default < var_files < variables`), render it, and turn what it renders
//! into ordinary resources of the app whose origin is the pack template.

use std::collections::BTreeMap;

use super::check::Ctx;
use super::native;
use super::yaml::{Node, Value};
use super::{
    Diagnostic, JobFormat, NomadJobSpec, Origin, PackRef, Resource, ResourceId, ResourceKind,
    ResourceSpec,
};
use crate::chart::Rendered;
use crate::chart::variables::{GivenValue, GivenValues, parse_var_file};
use crate::chart::{ChartError, PackFiles, load_pack, render_pack, shipped};
use crate::source::packs::{DEFAULT_PACK_REF, is_git_url};
use crate::source::{Revision, redact_url};

const PACK_KEYS: &[&str] = &["name", "source", "ref", "variables", "var_files"];

/// The files of pack `name` from `source` (a folder of the repository, default `charts`), else
/// the shipped one when no source was given.
pub(crate) fn find_pack(
    rev: &Revision,
    name: &str,
    source: Option<&str>,
) -> Result<PackFiles, String> {
    let folder = source.unwrap_or("charts").trim_end_matches('/');
    let dir = format!("{folder}/{name}");
    let prefix = format!("{dir}/");
    let mut files = BTreeMap::new();
    for path in rev.paths() {
        if let Some(rel) = path.strip_prefix(&prefix)
            && let Ok(bytes) = rev.file(path)
            && let Ok(text) = String::from_utf8(bytes.into_owned())
        {
            files.insert(rel.to_string(), text);
        }
    }
    if !files.is_empty() {
        return Ok(PackFiles { dir, files });
    }
    if source.is_none()
        && let Some(files) = shipped::pack_files(name)
    {
        return Ok(files);
    }
    let shipped = shipped::names();
    Err(if source.is_none() {
        format!(
            "no pack \"{name}\": neither {dir}/ in this repository nor a pack shipped with drover ({})",
            if shipped.is_empty() {
                "none".to_string()
            } else {
                shipped.join(", ")
            }
        )
    } else {
        format!("no pack \"{name}\" at {dir}/ in this repository")
    })
}

/// The files of pack `name` from the Git registry `url` at `reference`, as the source stage
/// attached them to the revision; a fetch failure is this app's error at `pack.source`.
fn git_pack(
    ctx: &mut Ctx,
    rev: &Revision,
    url: &str,
    reference: Option<&str>,
    name: &str,
    f: &super::check::Fields<'_>,
    node: &Node,
) -> Result<PackFiles, ()> {
    let at = f.get("source").unwrap_or(node);
    let shown = redact_url(url);
    let ref_shown = reference.unwrap_or(DEFAULT_PACK_REF);
    let fetched = match rev.pack_sources().get(url, reference) {
        Some(Ok(fetched)) => fetched,
        Some(Err(message)) => {
            ctx.err(at, "pack.source", message.clone());
            return Err(());
        }
        None => {
            ctx.err(
                at,
                "pack.source",
                format!("pack source {shown} at ref {ref_shown:?} was not fetched"),
            );
            return Err(());
        }
    };
    if let Some(warning) = &fetched.warning {
        ctx.warn(at, "pack.source", warning.clone());
    }
    match fetched.packs.get(name) {
        Some(Ok(files)) => Ok(files.clone()),
        Some(Err(message)) => {
            ctx.err(at, "pack.source", format!("{message} (ref {ref_shown:?})"));
            Err(())
        }
        None => {
            ctx.err(
                at,
                "pack.source",
                format!("pack \"{name}\" of {shown} at ref {ref_shown:?} was not fetched"),
            );
            Err(())
        }
    }
}

fn chart_diag(e: ChartError, field: &str) -> Diagnostic {
    Diagnostic {
        file: e.file,
        line: e.line,
        column: 0,
        field: Some(field.to_string()),
        message: e.message,
        hint: None,
    }
}

/// Read `pack:`, render it and return the resources it renders to.
pub(crate) fn pack_resources(
    ctx: &mut Ctx,
    rev: &Revision,
    dir: &str,
    namespace: &str,
    node: &Node,
) -> Option<(PackRef, Vec<Resource>)> {
    let f = ctx.fields(node, "pack", PACK_KEYS)?;
    let Some(name_node) = f.get("name") else {
        ctx.err(node, "pack.name", "a pack needs a name");
        return None;
    };
    let name = ctx.nonempty(name_node, "pack.name")?;
    let source = match f.get("source") {
        Some(n) => Some(ctx.nonempty(n, "pack.source")?),
        None => None,
    };
    let reference = match f.get("ref") {
        Some(n) => Some(ctx.nonempty(n, "pack.ref")?),
        None => None,
    };
    let git_source = source.as_deref().filter(|s| is_git_url(s));
    if reference.is_some() && git_source.is_none() {
        ctx.err(
            f.get("ref").unwrap_or(node),
            "pack.ref",
            "ref applies to a Git source (source: <git URL>), not to a folder of this repository",
        );
        return None;
    }
    let found = match git_source {
        Some(url) => git_pack(ctx, rev, url, reference.as_deref(), &name, &f, node),
        None => find_pack(rev, &name, source.as_deref()).map_err(|message| {
            ctx.err(name_node, "pack.name", message);
        }),
    };
    let Ok(files) = found else {
        return None;
    };
    let pack_dir = files.dir.clone();
    let pack = match load_pack(files, &name) {
        Ok(p) => p,
        Err(e) => {
            ctx.push(chart_diag(e, "pack"));
            return None;
        }
    };

    let mut given = GivenValues::default();
    if let Some(n) = f.get("var_files") {
        let items = ctx.list(n, "pack.var_files")?;
        for (i, item) in items.iter().enumerate() {
            let field = format!("pack.var_files[{i}]");
            let rel = ctx.nonempty(item, &field)?;
            let path = match native::resolve(dir, &rel) {
                Ok(p) => p,
                Err(e) => {
                    ctx.err(item, &field, e);
                    return None;
                }
            };
            let text = match rev.file(&path).map(|b| String::from_utf8(b.into_owned())) {
                Ok(Ok(t)) => t,
                Ok(Err(_)) => {
                    ctx.err(item, &field, format!("{path} is not UTF-8 text"));
                    return None;
                }
                Err(e) => {
                    ctx.err(item, &field, format!("{path}: {e}"));
                    return None;
                }
            };
            if let Err(e) = parse_var_file(&path, &text, &mut given) {
                ctx.push(chart_diag(e, &field));
                return None;
            }
        }
    }
    if let Some(n) = f.get("variables") {
        match &n.value {
            Value::Map(pairs) => {
                for (k, v) in pairs {
                    given.set(
                        &k.key_text(),
                        GivenValue {
                            value: v.to_json(),
                            file: ctx.file.clone(),
                            line: v.line,
                        },
                    );
                }
            }
            Value::Null => {}
            _ => {
                ctx.err(
                    n,
                    "pack.variables",
                    "expected a mapping of variable names to values",
                );
                return None;
            }
        }
    }
    let rendered = match render_pack(&pack, &given) {
        Ok(r) => r,
        Err(mut e) => {
            // A missing variable is the app's mistake: point at its pack: block.
            if e.line == 0 && e.message.starts_with("missing required variable") {
                e.file = ctx.file.clone();
                e.line = node.line;
                e.message = format!("{} (pack {})", e.message, pack.name);
            }
            ctx.push(chart_diag(e, "pack"));
            return None;
        }
    };
    let mut resources = Vec::new();
    let mut templates = Vec::new();
    let before = ctx.diags.len();
    for file in &rendered.files {
        templates.push(file.template.clone());
        if file.is_volume() || file.is_config_entry() {
            if let Some(resource) = rendered_file_resource(ctx, namespace, file) {
                resources.push(resource);
            }
            continue;
        }
        if !file.is_job() {
            continue;
        }
        let Some(info) = native::hcl_job_info(ctx, &file.template, &file.text) else {
            continue;
        };
        resources.push(Resource {
            id: ResourceId {
                kind: ResourceKind::NomadJob,
                scope: namespace.to_string(),
                name: info.job_id.clone(),
            },
            spec: ResourceSpec::NomadJob(NomadJobSpec {
                file: file.template.clone(),
                format: JobFormat::Hcl2,
                source: file.text.clone(),
                variables: String::new(),
                job_id: info.job_id,
            }),
            origin: Origin {
                file: file.template.clone(),
                line: 1,
            },
        });
    }
    if ctx.diags.len() > before {
        return None;
    }
    Some((
        PackRef {
            name: pack.name.clone(),
            dir: pack_dir,
            version: pack.version.clone(),
            templates,
        },
        resources,
    ))
}

/// Where a rendered file is put for the readers of app files (a path without the `drover:`
/// scheme, which app paths may not contain); diagnostics and origins are renamed back.
const RENDERED_DIR: &str = "rendered";

/// A rendered `*.volume.hcl` (a `nomad volume create` spec) or `*.config-entry.hcl` (a
/// `consul config write` file), read exactly as the same file in the app folder would be, with
/// the template as its origin.
fn rendered_file_resource(ctx: &mut Ctx, namespace: &str, file: &Rendered) -> Option<Resource> {
    let synthetic = format!("{RENDERED_DIR}/{}", file.file_name);
    let rev = Revision::from_files(
        "pack-render",
        BTreeMap::from([(synthetic.clone(), file.text.clone().into_bytes())]),
    );
    let at = |value| Node {
        value,
        line: 1,
        col: 1,
    };
    let before = ctx.diags.len();
    let field = format!("pack ({})", file.template);
    let made = if file.is_volume() {
        native::csi_volume_file(
            ctx,
            &rev,
            RENDERED_DIR,
            namespace,
            &at(Value::Str(file.file_name.clone())),
            None,
            &field,
        )
        .map(|(spec, _)| Resource {
            id: ResourceId {
                kind: ResourceKind::CsiVolume,
                scope: namespace.to_string(),
                name: spec.id.clone(),
            },
            spec: ResourceSpec::CsiVolume(spec),
            origin: Origin {
                file: file.template.clone(),
                line: 1,
            },
        })
    } else {
        let node = at(Value::Map(vec![(
            at(Value::Str("file".into())),
            at(Value::Str(file.file_name.clone())),
        )]));
        native::config_entry(ctx, &rev, RENDERED_DIR, &node, &field).map(|(spec, _)| Resource {
            id: ResourceId {
                kind: ResourceKind::ConsulConfigEntry,
                scope: spec.kind.clone(),
                name: spec.name.clone(),
            },
            spec: ResourceSpec::ConsulConfigEntry(spec),
            origin: Origin {
                file: file.template.clone(),
                line: 1,
            },
        })
    };
    for d in &mut ctx.diags[before..] {
        if d.file == synthetic || d.file == ctx.file {
            d.file = file.template.clone();
        }
    }
    made
}
