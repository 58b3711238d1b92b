//! Rendering a pack as nomad-pack does: one template set with `[[ ]]` delimiters, Sprig, the
//! pack-context functions of nomad-pack's current syntax (`var`, `vars`, `must_var`, `meta`,
//! `metas`, `must_meta`, `deps`, `deps_tree`) and its extras (`toStringList`, `fileContents`,
//! `packPath`), every template executed with its pack's context.
//!
//! The context (`.`) of a pack is `{ "_self": { "vars": …, "meta": … }, "<alias>": <dep context> }`:
//! a parent reads a dependency's variable with `[[ var "x" .alias ]]` and calls its helpers with
//! `[[ template "helper" .alias ]]`, as in nomad-pack.

use std::collections::BTreeMap;
use std::sync::Arc;

use drover_gotmpl::{Delims, FuncMap, MissingKey, TemplateSet, Value};
use serde_json::Map;

use super::ChartError;
use super::pack::Pack;
use super::variables::{GivenValues, resolve};

/// One rendered template.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The template file as the user names it (`charts/web/templates/web.nomad.tpl`).
    pub template: String,
    /// nomad-pack's output name: `<pack>/<file without .tpl>`, dependencies under
    /// `<pack>/deps/<alias>/` (what `render --to-dir` writes).
    pub output_name: String,
    /// The template's file name without `.tpl` (`web.nomad`, `config.volume.hcl`).
    pub file_name: String,
    /// The rendered text.
    pub text: String,
}

impl Rendered {
    /// A Nomad job (`*.nomad.tpl` or `*.nomad.hcl.tpl`).
    pub fn is_job(&self) -> bool {
        self.file_name.ends_with(".nomad") || self.file_name.ends_with(".nomad.hcl")
    }

    /// A CSI volume specification (`*.volume.hcl.tpl`).
    pub fn is_volume(&self) -> bool {
        self.file_name.ends_with(".volume.hcl")
    }

    /// A Consul config entry (`*.config-entry.hcl.tpl`).
    pub fn is_config_entry(&self) -> bool {
        self.file_name.ends_with(".config-entry.hcl")
    }
}

/// What a pack renders to, and its outputs.tpl text (if it has one).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RenderedPack {
    /// Every template with non-empty output, parent's first, in path order.
    pub files: Vec<Rendered>,
    /// The rendered `outputs.tpl`, if any.
    pub outputs: Option<String>,
}

/// A pack with its variables resolved, one level of the context tree.
struct Prepared<'a> {
    pack: &'a Pack,
    /// Template-name prefix of this pack's files.
    prefix: String,
    /// Output-name prefix (`<root>/` or `<root>/deps/<alias>/`).
    out_prefix: String,
    context: Value,
    children: Vec<Prepared<'a>>,
}

fn prepare<'a>(
    pack: &'a Pack,
    given: &GivenValues,
    out_prefix: String,
) -> Result<Prepared<'a>, ChartError> {
    let enabled: Vec<_> = pack.dependencies.iter().filter(|d| d.enabled).collect();
    let aliases: Vec<String> = pack.dependencies.iter().map(|d| d.alias.clone()).collect();
    let (vars, dep_given) = resolve(&pack.name, &pack.variables, &aliases, given)?;
    let mut context = Map::new();
    context.insert(
        "_self".into(),
        serde_json::json!({ "vars": Value::Object(vars), "meta": pack.meta() }),
    );
    let mut children = Vec::new();
    for dep in enabled {
        let empty = GivenValues::default();
        let child = prepare(
            &dep.pack,
            dep_given.get(&dep.alias).unwrap_or(&empty),
            format!("{out_prefix}deps/{}/", dep.alias),
        )?;
        context.insert(dep.alias.clone(), child.context.clone());
        children.push(child);
    }
    Ok(Prepared {
        pack,
        prefix: pack.files.dir.clone(),
        out_prefix,
        context: Value::Object(context),
        children,
    })
}

fn all_levels<'p, 'a>(p: &'p Prepared<'a>, out: &mut Vec<&'p Prepared<'a>>) {
    out.push(p);
    for c in &p.children {
        all_levels(c, out);
    }
}

/// The pack-context functions: `.` is a context (`_self` holds this pack's vars and meta).
fn context_funcs(funcs: &mut FuncMap) {
    fn self_part(ctx: Option<&Value>, part: &str) -> Result<Value, String> {
        ctx.and_then(|c| c.get("_self"))
            .and_then(|s| s.get(part))
            .cloned()
            .ok_or_else(|| format!("expected a pack context (pass `.`), to read its {part}"))
    }
    fn descend(map: &Value, key: &str, what: &str) -> Result<Value, String> {
        let mut cur = map;
        for k in key.split('.') {
            cur = match cur {
                Value::Object(m) => m
                    .get(k)
                    .ok_or_else(|| format!("{what} key {k} not found"))?,
                _ => return Err("encountered non-traversable key while traversing".into()),
            };
        }
        Ok(cur.clone())
    }
    fn key(args: &[Value], name: &str) -> Result<String, String> {
        match args.first() {
            Some(Value::String(s)) if args.len() == 2 => Ok(s.clone()),
            _ => Err(format!(
                "{name} takes a key and a pack context: [[ {name} \"key\" . ]]"
            )),
        }
    }
    funcs.insert(
        "vars",
        Arc::new(|args: &[Value]| self_part(args.first(), "vars")),
    );
    funcs.insert(
        "metas",
        Arc::new(|args: &[Value]| self_part(args.first(), "meta")),
    );
    funcs.insert(
        "must_var",
        Arc::new(|args: &[Value]| {
            let k = key(args, "must_var")?;
            descend(&self_part(args.get(1), "vars")?, &k, "var")
        }),
    );
    // `var` and `meta` give "" for a missing key (nomad-pack), `must_*` fail.
    funcs.insert(
        "var",
        Arc::new(|args: &[Value]| {
            let k = key(args, "var")?;
            Ok(descend(&self_part(args.get(1), "vars")?, &k, "var")
                .unwrap_or(Value::String(String::new())))
        }),
    );
    funcs.insert(
        "must_meta",
        Arc::new(|args: &[Value]| {
            let k = key(args, "must_meta")?;
            descend(&self_part(args.get(1), "meta")?, &k, "meta")
        }),
    );
    funcs.insert(
        "meta",
        Arc::new(|args: &[Value]| {
            let k = key(args, "meta")?;
            Ok(descend(&self_part(args.get(1), "meta")?, &k, "meta")
                .unwrap_or(Value::String(String::new())))
        }),
    );
    funcs.insert(
        "deps",
        Arc::new(|args: &[Value]| match args.first() {
            Some(Value::Object(m)) => Ok(Value::Object(
                m.iter()
                    .filter(|(k, _)| *k != "_self")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )),
            _ => Err("deps takes a pack context: [[ deps . ]]".into()),
        }),
    );
    funcs.insert(
        "deps_tree",
        Arc::new(|args: &[Value]| {
            fn walk(ctx: &Value, path: &str, out: &mut Vec<Value>) {
                if let Value::Object(m) = ctx {
                    let mut keys: Vec<&String> = m.keys().filter(|k| *k != "_self").collect();
                    keys.sort();
                    for k in keys {
                        let p = format!("{path}.{k}");
                        out.push(Value::String(p.clone()));
                        if let Some(child) = m.get(k) {
                            walk(child, &p, out);
                        }
                    }
                }
            }
            let mut out = Vec::new();
            if let Some(ctx) = args.first() {
                walk(ctx, "", &mut out);
            }
            Ok(Value::Array(out))
        }),
    );
    funcs.insert(
        "toStringList",
        Arc::new(|args: &[Value]| {
            let quote = |v: &Value| match v {
                Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
                other => serde_json::to_string(&other.to_string()).unwrap_or_default(),
            };
            let inner = match args.first() {
                Some(Value::Array(items)) => items.iter().map(quote).collect::<Vec<_>>().join(", "),
                Some(v) => quote(v),
                None => return Err("toStringList takes a list".into()),
            };
            Ok(Value::String(format!("[{inner}]")))
        }),
    );
}

/// `fileContents` and `packPath`, confined to the pack's own files (a pack must not read the
/// machine drover runs on: its data dir holds tokens).
fn file_funcs(funcs: &mut FuncMap, root: &Pack) {
    let dir = root.files.dir.clone();
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    fn collect(p: &Pack, files: &mut BTreeMap<String, String>) {
        for (rel, text) in &p.files.files {
            files.insert(p.files.display(rel), text.clone());
        }
        for d in &p.dependencies {
            collect(&d.pack, files);
        }
    }
    collect(root, &mut files);
    let path_dir = dir.clone();
    funcs.insert(
        "packPath",
        Arc::new(move |_: &[Value]| Ok(Value::String(path_dir.clone()))),
    );
    funcs.insert(
        "fileContents",
        Arc::new(move |args: &[Value]| {
            let Some(Value::String(path)) = args.first() else {
                return Err("fileContents takes a path".into());
            };
            let rel = path.trim_start_matches("./");
            let full = if rel.starts_with(&format!("{dir}/")) {
                rel.to_string()
            } else {
                format!("{dir}/{rel}")
            };
            files
                .get(&full)
                .map(|t| Value::String(t.clone()))
                .ok_or_else(|| format!("failed to read {path}: not a file of this pack (fileContents reads only the pack's own files)"))
        }),
    );
}

/// The line a Go-template error points at (`template: NAME:LINE:…`), when it names `name`.
fn error_line(message: &str, name: &str) -> usize {
    message
        .strip_prefix("template: ")
        .and_then(|m| m.strip_prefix(name))
        .and_then(|m| m.strip_prefix(':'))
        .and_then(|m| m.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

/// The engine's error at the template's file and line; the message keeps the column and the
/// action (`12:8: executing … at <…>: …`) without repeating the file name.
fn template_error(name: &str, e: &drover_gotmpl::Error) -> ChartError {
    let message = e.to_string();
    let line = error_line(&message, name);
    let short = message
        .strip_prefix(&format!("template: {name}:"))
        .map(str::to_string)
        .unwrap_or(message);
    ChartError::new(name, line, short)
}

/// Render `pack` with the given values.
pub fn render_pack(pack: &Pack, given: &GivenValues) -> Result<RenderedPack, ChartError> {
    let root = prepare(pack, given, format!("{}/", pack.name))?;
    let mut levels = Vec::new();
    all_levels(&root, &mut levels);

    let mut funcs = FuncMap::sprig();
    context_funcs(&mut funcs);
    file_funcs(&mut funcs, pack);
    let mut set = TemplateSet::new(
        Delims {
            left: "[[".into(),
            right: "]]".into(),
        },
        funcs,
    );
    set.set_missing_key(MissingKey::Zero);
    for level in &levels {
        for t in &level.pack.templates {
            let name = format!("{}/{}", level.prefix, t.rel);
            set.parse(&name, &t.text)
                .map_err(|e| template_error(&name, &e))?;
        }
    }
    let mut out = RenderedPack::default();
    for level in &levels {
        for t in level.pack.templates.iter().filter(|t| !t.is_helper()) {
            let name = format!("{}/{}", level.prefix, t.rel);
            let text = set
                .execute(&name, &level.context)
                .map_err(|e| template_error(&name, &e))?
                // nomad-pack prints missing values as nothing, not Go's "<no value>".
                .replace("<no value>", "");
            // An empty render is skipped, like nomad-pack (a template behind a switch).
            if text.trim().is_empty() {
                continue;
            }
            let file = t.rel.strip_prefix("templates/").unwrap_or(&t.rel);
            let file_name = file.strip_suffix(".tpl").unwrap_or(file).to_string();
            out.files.push(Rendered {
                template: name,
                output_name: format!("{}{file_name}", level.out_prefix),
                file_name,
                text,
            });
        }
    }
    if let Some(text) = &pack.outputs {
        let name = format!("{}/outputs.tpl", pack.files.dir);
        set.parse(&name, text)
            .map_err(|e| template_error(&name, &e))?;
        let rendered = set
            .execute(&name, &root.context)
            .map_err(|e| template_error(&name, &e))?;
        out.outputs = Some(rendered.replace("<no value>", ""));
    }
    Ok(out)
}
