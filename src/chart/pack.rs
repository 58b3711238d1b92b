//! Loading a pack directory: `metadata.hcl`, `variables.hcl`, `templates/`, `outputs.tpl` and
//! vendored dependencies under `deps/<name>/`, from a map of files (a Git revision, the files
//! shipped in the binary, or a directory on disk).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::ChartError;
use super::variables::{VariableDecl, eval_expr, parse_variables};

/// A pack's files: paths relative to the pack root, and how to name the root to the user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PackFiles {
    /// The pack root as the user knows it (`charts/litestream_service`, or `drover:charts/…` for
    /// the packs shipped in the binary). Origins and errors name files under it.
    pub dir: String,
    /// Relative path → text.
    pub files: BTreeMap<String, String>,
}

impl PackFiles {
    /// The files under `prefix/` of `all`, relative to it.
    pub fn subdir(&self, prefix: &str) -> PackFiles {
        let prefix = format!("{}/", prefix.trim_end_matches('/'));
        PackFiles {
            dir: format!("{}/{}", self.dir, prefix.trim_end_matches('/')),
            files: self
                .files
                .iter()
                .filter_map(|(p, t)| p.strip_prefix(&prefix).map(|r| (r.to_string(), t.clone())))
                .collect(),
        }
    }

    /// Read a pack directory from disk (`drover render --pack DIR`).
    pub fn from_dir(root: &Path, display: &str) -> Result<PackFiles, ChartError> {
        let mut files = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| ChartError::new(dir.display().to_string(), 0, e.to_string()))?;
            for entry in entries {
                let entry = entry
                    .map_err(|e| ChartError::new(dir.display().to_string(), 0, e.to_string()))?;
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Ok(rel) = path.strip_prefix(root) else {
                    continue;
                };
                let rel = rel.to_string_lossy().replace('\\', "/");
                // Binary files (images in a README) are not part of what a pack renders.
                if let Ok(text) = std::fs::read_to_string(&path) {
                    files.insert(rel, text);
                }
            }
        }
        Ok(PackFiles {
            dir: display.to_string(),
            files,
        })
    }

    /// The file's path as the user names it.
    pub fn display(&self, rel: &str) -> String {
        format!("{}/{rel}", self.dir)
    }
}

/// A `dependency "name" { … }` of `metadata.hcl`, with its vendored pack.
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    /// The block label: the pack name (its files are under `deps/<name>/`).
    pub name: String,
    /// `alias`, else the name: how templates and variables address it.
    pub alias: String,
    /// `source`, as written (informational: dependencies must be vendored under `deps/`).
    pub source: String,
    /// `enabled` (default true): a disabled dependency renders nothing.
    pub enabled: bool,
    /// The dependency's own pack.
    pub pack: Pack,
}

/// One template file of a pack.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateFile {
    /// Path relative to the pack root (`templates/web.nomad.tpl`).
    pub rel: String,
    /// Its text.
    pub text: String,
}

impl TemplateFile {
    /// A helper (`templates/_helpers.tpl`): parsed for its `define`s, never output.
    pub fn is_helper(&self) -> bool {
        self.rel
            .rsplit('/')
            .next()
            .is_some_and(|f| f.starts_with('_'))
    }
}

/// A loaded pack.
#[derive(Debug, Clone, PartialEq)]
pub struct Pack {
    /// `pack.name` (the directory name when metadata.hcl gives none).
    pub name: String,
    /// `pack.description`.
    pub description: String,
    /// `pack.version`.
    pub version: String,
    /// `pack.url`.
    pub url: String,
    /// `app.url`.
    pub app_url: String,
    /// Where the files came from.
    pub files: PackFiles,
    /// `variables.hcl`.
    pub variables: Vec<VariableDecl>,
    /// `templates/*.tpl`, sorted by path.
    pub templates: Vec<TemplateFile>,
    /// `outputs.tpl`, if any.
    pub outputs: Option<String>,
    /// Dependencies, in metadata order.
    pub dependencies: Vec<Dependency>,
}

impl Pack {
    /// The `meta` map templates read with `[[ meta "pack.name" . ]]` (nomad-pack's keys).
    pub fn meta(&self) -> Value {
        let deps: Vec<Value> = self
            .dependencies
            .iter()
            .map(|d| {
                serde_json::json!({ d.alias.clone(): {
                    "id": d.alias, "name": d.name, "alias": d.alias,
                    "source": d.source, "enabled": d.enabled,
                }})
            })
            .collect();
        serde_json::json!({
            "app": { "url": self.app_url },
            "pack": {
                "name": self.name,
                "description": self.description,
                "version": self.version,
                "url": self.url,
            },
            "dependencies": deps,
        })
    }
}

fn string_attr(
    file: &str,
    line: usize,
    body: &hcl::Body,
    key: &str,
) -> Result<Option<String>, ChartError> {
    match body.attributes().find(|a| a.key() == key) {
        None => Ok(None),
        Some(attr) => match eval_expr(attr.expr()).map_err(|m| ChartError::new(file, line, m))? {
            Value::String(s) => Ok(Some(s)),
            Value::Bool(b) => Ok(Some(b.to_string())),
            _ => Err(ChartError::new(
                file,
                line,
                format!("{key} must be a string"),
            )),
        },
    }
}

/// Load a pack from its files. `fallback_name` names it when metadata.hcl has no `pack.name`.
pub fn load_pack(files: PackFiles, fallback_name: &str) -> Result<Pack, ChartError> {
    let meta_file = files.display("metadata.hcl");
    let Some(meta_text) = files.files.get("metadata.hcl") else {
        return Err(ChartError::new(
            &meta_file,
            0,
            "not a pack: metadata.hcl is missing",
        ));
    };
    let body: hcl::Body =
        hcl::parse(meta_text).map_err(|e| ChartError::new(&meta_file, 0, e.to_string()))?;
    let mut pack = Pack {
        name: fallback_name.to_string(),
        description: String::new(),
        version: String::new(),
        url: String::new(),
        app_url: String::new(),
        files: PackFiles::default(),
        variables: Vec::new(),
        templates: Vec::new(),
        outputs: None,
        dependencies: Vec::new(),
    };
    let mut deps = Vec::new();
    for block in body.blocks() {
        let line = meta_text
            .lines()
            .position(|l| l.trim_start().starts_with(block.identifier()))
            .map_or(0, |i| i + 1);
        match block.identifier() {
            "pack" => {
                let b = block.body();
                if let Some(n) = string_attr(&meta_file, line, b, "name")? {
                    pack.name = n;
                }
                pack.description =
                    string_attr(&meta_file, line, b, "description")?.unwrap_or_default();
                pack.version = string_attr(&meta_file, line, b, "version")?.unwrap_or_default();
                pack.url = string_attr(&meta_file, line, b, "url")?.unwrap_or_default();
            }
            "app" => {
                pack.app_url =
                    string_attr(&meta_file, line, block.body(), "url")?.unwrap_or_default();
            }
            "dependency" => {
                let Some(name) = block.labels().first().map(|l| l.as_str().to_string()) else {
                    return Err(ChartError::new(
                        &meta_file,
                        line,
                        "a dependency block needs a name label",
                    ));
                };
                let b = block.body();
                let alias =
                    string_attr(&meta_file, line, b, "alias")?.unwrap_or_else(|| name.clone());
                let source = string_attr(&meta_file, line, b, "source")?.unwrap_or_default();
                let enabled = match b.attributes().find(|a| a.key() == "enabled") {
                    Some(a) => match eval_expr(a.expr())
                        .map_err(|m| ChartError::new(&meta_file, line, m))?
                    {
                        Value::Bool(v) => v,
                        _ => {
                            return Err(ChartError::new(
                                &meta_file,
                                line,
                                "enabled must be a bool",
                            ));
                        }
                    },
                    None => true,
                };
                deps.push((name, alias, source, enabled, line));
            }
            // `integration` describes the pack for HashiCorp's catalogue; nothing to render.
            _ => {}
        }
    }
    pack.variables = match files.files.get("variables.hcl") {
        Some(text) => parse_variables(&files.display("variables.hcl"), text)?,
        None => Vec::new(),
    };
    pack.templates = files
        .files
        .iter()
        .filter(|(p, _)| {
            p.starts_with("templates/")
                && p.ends_with(".tpl")
                && !p["templates/".len()..].contains('/')
        })
        .map(|(p, t)| TemplateFile {
            rel: p.clone(),
            text: t.clone(),
        })
        .collect();
    pack.outputs = files.files.get("outputs.tpl").cloned();
    for (name, alias, source, enabled, line) in deps {
        let dep_files = files.subdir(&format!("deps/{name}"));
        if dep_files.files.is_empty() {
            return Err(ChartError::new(
                &meta_file,
                line,
                format!(
                    "dependency \"{name}\" is not vendored: {}/deps/{name}/ is missing (copy the pack there, as `nomad-pack vendor deps` does)",
                    files.dir
                ),
            ));
        }
        let dep_pack = load_pack(dep_files, &name)?;
        pack.dependencies.push(Dependency {
            name,
            alias,
            source,
            enabled,
            pack: dep_pack,
        });
    }
    pack.files = files;
    Ok(pack)
}
