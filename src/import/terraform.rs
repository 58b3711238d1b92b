//! `drover import terraform <dir> --out <repo>`: read a Terraform configuration that uses the
//! Nomad provider (and Consul's, Vault's and MinIO's basic resources) and write a desired-state
//! repository that means the same: one app per root `module` block, the jobspec and config files
//! copied unchanged, and an IMPORT-REPORT.md listing, at file:line, everything not translated.

mod eval;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use hcl::Value;
use hcl::edit::Span as _;
use hcl::edit::structure::{Block as EditBlock, Body as EditBody, Structure};
use regex::Regex;
use serde_json::json;

use eval::{Evaluated, Scope, classify};

/// Where files that could not be translated are kept (drover reads only `apps/`).
const NOT_IMPORTED: &str = "not-imported";

/// How deep module calls may nest (a cycle of local modules stops here).
const MAX_MODULE_DEPTH: usize = 8;

/// Why an import could not be written at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// `--out` holds files already.
    #[error("{0} is not empty: drover import writes only into a new or empty folder")]
    OutNotEmpty(PathBuf),
    /// A file or folder could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// What was read.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A `.tf` file is not valid HCL.
    #[error("{file}:{line}:{column}: HCL syntax error: {message}")]
    Parse {
        /// The file, relative to the configuration.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The folder has no `*.tf` file.
    #[error("no *.tf files in {0}")]
    NoConfiguration(PathBuf),
    /// The output could not be written.
    #[error("cannot write {path}: {error}")]
    Write {
        /// What was written.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

/// One construct not translated (or translated with a caveat), at its place in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Gap {
    /// The `.tf` file, relative to the configuration folder.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// What it is (`resource "aws_instance" "x"`, `argument detach`…).
    pub what: String,
    /// Why it is not translated, and what to do.
    pub why: String,
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file, self.line, self.what, self.why
        )
    }
}

/// An app the import writes.
#[derive(Debug, Clone, Default)]
pub struct ImportedApp {
    /// The app (and folder) name.
    pub name: String,
    /// Where it comes from (`main.tf:12 module "overseerr"`).
    pub origin: String,
    /// Its `resources:` items, as app.yaml holds them.
    pub resources: Vec<serde_json::Value>,
    /// Apps it depends on.
    pub depends_on: BTreeSet<String>,
    /// The Nomad namespace its jobspecs set, when not `default`.
    pub namespace: Option<String>,
    /// Files written beside its app.yaml: name → content.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Files not translated, kept for the user under `not-imported/<app>/`: name → content.
    pub kept: BTreeMap<String, Vec<u8>>,
    /// `data "nomad_plugin"` with `wait_for_healthy`: plugin ID and place.
    plugin_waits: Vec<(String, String, usize)>,
    /// Terraform module names it depends on (resolved to apps at the end).
    module_deps: Vec<(String, String, usize)>,
}

/// What an import found and wrote.
#[derive(Debug, Clone, Default)]
pub struct TerraformImport {
    /// The apps, in the configuration's order.
    pub apps: Vec<ImportedApp>,
    /// Constructs not translated.
    pub gaps: Vec<Gap>,
    /// Constructs translated with a caveat, or not needed by drover.
    pub notes: Vec<Gap>,
    /// Modules with nothing drover manages but files kept under `not-imported/`.
    pub kept_only: Vec<ImportedApp>,
}

impl TerraformImport {
    /// IMPORT-REPORT.md.
    pub fn report(&self, source: &Path) -> String {
        let mut out = format!(
            "# Import report\n\nImported from `{}` by `drover import terraform`.\n\n## Apps ({})\n\n",
            source.display(),
            self.apps.len()
        );
        out.push_str("| app | from | resources | depends on |\n|---|---|---|---|\n");
        for app in &self.apps {
            let kinds: Vec<String> = app
                .resources
                .iter()
                .filter_map(|r| r.as_object().and_then(|o| o.keys().next().cloned()))
                .collect();
            let deps: Vec<&str> = app.depends_on.iter().map(String::as_str).collect();
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                app.name,
                app.origin,
                kinds.join(", "),
                deps.join(", ")
            ));
        }
        out.push_str(&format!("\n## Not translated ({})\n\n", self.gaps.len()));
        if self.gaps.is_empty() {
            out.push_str("Nothing.\n");
        }
        for gap in &self.gaps {
            out.push_str(&format!(
                "- `{}:{}` {}: {}\n",
                gap.file, gap.line, gap.what, gap.why
            ));
        }
        out.push_str(&format!("\n## Notes ({})\n\n", self.notes.len()));
        if self.notes.is_empty() {
            out.push_str("None.\n");
        }
        for note in &self.notes {
            out.push_str(&format!(
                "- `{}:{}` {}: {}\n",
                note.file, note.line, note.what, note.why
            ));
        }
        out
    }
}

/// Import the configuration in `dir` and write the repository to `out` (new or empty).
pub fn import_terraform(dir: &Path, out: &Path) -> Result<TerraformImport, ImportError> {
    if out.exists() {
        let mut entries = std::fs::read_dir(out).map_err(|error| ImportError::Read {
            path: out.to_path_buf(),
            error,
        })?;
        if entries.next().is_some() {
            return Err(ImportError::OutNotEmpty(out.to_path_buf()));
        }
    }
    let imported = read_configuration(dir)?;
    write_repository(&imported, dir, out)?;
    Ok(imported)
}

/// Read and translate, without writing anything.
pub fn read_configuration(dir: &Path) -> Result<TerraformImport, ImportError> {
    let files = load_module(dir, ".")?;
    if files.is_empty() {
        return Err(ImportError::NoConfiguration(dir.to_path_buf()));
    }
    let mut importer = Importer {
        root: dir.to_path_buf(),
        result: TerraformImport::default(),
        module_outputs: hcl::Map::new(),
    };
    importer.root_module(&files)?;
    importer.finish();
    Ok(importer.result)
}

fn write_repository(
    imported: &TerraformImport,
    source: &Path,
    out: &Path,
) -> Result<(), ImportError> {
    let write = |path: &Path, content: &[u8]| -> Result<(), ImportError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| ImportError::Write {
                path: parent.to_path_buf(),
                error,
            })?;
        }
        std::fs::write(path, content).map_err(|error| ImportError::Write {
            path: path.to_path_buf(),
            error,
        })
    };
    write(
        &out.join("drover.yaml"),
        b"# Written by `drover import terraform`; each app.yaml may override these.\nnamespace: default\n",
    )?;
    for app in &imported.apps {
        let folder = out.join("apps").join(&app.name);
        write(&folder.join("app.yaml"), app_yaml(app).as_bytes())?;
        for (name, content) in &app.files {
            write(&folder.join(name), content)?;
        }
    }
    for app in imported.apps.iter().chain(&imported.kept_only) {
        for (name, content) in &app.kept {
            write(&out.join(NOT_IMPORTED).join(&app.name).join(name), content)?;
        }
    }
    write(
        &out.join("IMPORT-REPORT.md"),
        imported.report(source).as_bytes(),
    )
}

/// The app's app.yaml text.
pub fn app_yaml(app: &ImportedApp) -> String {
    let mut doc = serde_json::Map::new();
    doc.insert("name".into(), json!(app.name));
    if let Some(namespace) = &app.namespace {
        doc.insert("namespace".into(), json!(namespace));
    }
    if !app.depends_on.is_empty() {
        doc.insert("depends_on".into(), json!(app.depends_on));
    }
    doc.insert("resources".into(), json!(app.resources));
    let body = serde_yaml_ng::to_string(&serde_json::Value::Object(doc)).unwrap_or_default();
    format!(
        "# Imported by `drover import terraform` from {}.\n{body}",
        app.origin
    )
}

/// One parsed `.tf` file.
struct TfFile {
    /// Path relative to the configuration root.
    rel: String,
    text: String,
    body: EditBody,
}

impl TfFile {
    fn line(&self, span: Option<std::ops::Range<usize>>) -> usize {
        let start = span.map_or(0, |s| s.start).min(self.text.len());
        self.text.as_bytes()[..start]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn source_of(&self, span: Option<std::ops::Range<usize>>) -> &str {
        span.and_then(|s| self.text.get(s)).unwrap_or_default()
    }
}

/// Every `*.tf` of the folder `rel` (relative to `root`), sorted by name.
fn load_module(root: &Path, rel: &str) -> Result<Vec<TfFile>, ImportError> {
    let folder = if rel == "." {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let entries = std::fs::read_dir(&folder).map_err(|error| ImportError::Read {
        path: folder.clone(),
        error,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "tf"))
        .collect();
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|error| ImportError::Read {
            path: path.clone(),
            error,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rel = eval::normalize(&format!("{rel}/{name}"));
        let body = hcl::edit::parser::parse_body(&text).map_err(|e| ImportError::Parse {
            file: rel.clone(),
            line: e.location().line(),
            column: e.location().column(),
            message: e.message().to_string(),
        })?;
        files.push(TfFile { rel, text, body });
    }
    Ok(files)
}

/// An attribute of a block: key, expression, line and source text.
struct Arg<'a> {
    key: String,
    expr: hcl::Expression,
    line: usize,
    source: &'a str,
}

fn args_of<'a>(file: &'a TfFile, body: &EditBody) -> Vec<Arg<'a>> {
    body.iter()
        .filter_map(|s| match s {
            Structure::Attribute(a) => Some(Arg {
                key: a.key.as_str().to_string(),
                expr: a.value.clone().into(),
                line: file.line(a.span()),
                source: file.source_of(a.value.span()),
            }),
            Structure::Block(_) => None,
        })
        .collect()
}

fn blocks_of(body: &EditBody) -> Vec<&EditBlock> {
    body.iter()
        .filter_map(|s| match s {
            Structure::Block(b) => Some(b),
            Structure::Attribute(_) => None,
        })
        .collect()
}

fn labels(block: &EditBlock) -> Vec<String> {
    block
        .labels
        .iter()
        .map(|l| match l {
            hcl::edit::structure::BlockLabel::String(s) => s.as_str().to_string(),
            hcl::edit::structure::BlockLabel::Ident(i) => i.as_str().to_string(),
        })
        .collect()
}

fn literal_regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| unreachable!("literal regex {pattern}: {e}"))
}

/// `module.<name>` references in an expression's text.
static MODULE_REF: LazyLock<Regex> =
    LazyLock::new(|| literal_regex(r"\bmodule\.([A-Za-z_][A-Za-z0-9_-]*)"));

/// A jobspec's `csi_plugin { id = "…" }`.
static CSI_PLUGIN_ID: LazyLock<Regex> =
    LazyLock::new(|| literal_regex(r#"csi_plugin\s*\{[^}]*?\bid\s*=\s*"([^"]+)""#));

/// A jobspec's `namespace = "…"` in its job block (at most one indentation level).
static JOB_NAMESPACE: LazyLock<Regex> =
    LazyLock::new(|| literal_regex(r#"(?m)^[ \t]{0,2}namespace\s*=\s*"([^"]+)""#));

/// A drover app name from a Terraform module name (`plugin_csi` → `plugin-csi`).
fn app_name(module: &str) -> String {
    let name: String = module
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name = name.trim_matches('-').to_string();
    if name.is_empty() { "root".into() } else { name }
}

/// An object key's name as written (`KEY` or `"KEY"`).
fn object_key(key: &hcl::ObjectKey) -> String {
    match key {
        hcl::ObjectKey::Identifier(i) => i.to_string(),
        hcl::ObjectKey::Expression(hcl::Expression::String(s)) => s.clone(),
        other => other.to_string(),
    }
}

/// A value as app.yaml writes it (JSON has the same shape as YAML here).
fn to_json(value: &Value) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

struct Importer {
    root: PathBuf,
    result: TerraformImport,
    /// Root modules' outputs that evaluate without resources, for `module.x.y`.
    module_outputs: hcl::Map<String, Value>,
}

impl Importer {
    fn gap(&mut self, file: &str, line: usize, what: impl Into<String>, why: impl Into<String>) {
        // hcl-rs quotes whole expressions in its messages: one line each in the report.
        let why: String = why.into();
        let why = why.split_whitespace().collect::<Vec<_>>().join(" ");
        self.result.gaps.push(Gap {
            file: file.to_string(),
            line,
            what: what.into(),
            why,
        });
    }

    fn note(&mut self, file: &str, line: usize, what: impl Into<String>, why: impl Into<String>) {
        self.result.notes.push(Gap {
            file: file.to_string(),
            line,
            what: what.into(),
            why: why.into(),
        });
    }

    /// The root module: each `module` block is an app; resources outside modules form one more.
    fn root_module(&mut self, files: &[TfFile]) -> Result<(), ImportError> {
        let mut scope = self.scope(files, ".", &hcl::Map::new());
        let root_name = self
            .root
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| app_name(&n.to_string_lossy())))
            .unwrap_or_else(|| "root".into());
        let mut root_app = ImportedApp {
            name: root_name,
            origin: "the root module's own resources".into(),
            ..ImportedApp::default()
        };
        for file in files {
            for block in blocks_of(&file.body) {
                if block.ident.as_str() == "module" {
                    let name = labels(block).first().cloned().unwrap_or_default();
                    let line = file.line(block.span());
                    let mut app = ImportedApp {
                        name: app_name(&name),
                        origin: format!("{}:{line} module \"{name}\"", file.rel),
                        ..ImportedApp::default()
                    };
                    // The outputs of the modules read so far, for `module.x.y`.
                    scope.modules = self.module_outputs.clone();
                    if self.module_call(&mut app, file, block, &scope, 0)? {
                        self.result.apps.push(app);
                    }
                } else {
                    self.top_block(&mut root_app, file, block, &scope, 0)?;
                }
            }
        }
        if !root_app.resources.is_empty() {
            self.result.apps.push(root_app);
        }
        Ok(())
    }

    /// Variables (defaults, then `args`) and locals of a module.
    fn scope(
        &mut self,
        files: &[TfFile],
        module_path: &str,
        args: &hcl::Map<String, Value>,
    ) -> Scope {
        let mut scope = Scope {
            vars: hcl::Map::new(),
            locals: hcl::Map::new(),
            modules: self.module_outputs.clone(),
            module_path: module_path.to_string(),
        };
        for file in files {
            for block in blocks_of(&file.body) {
                if block.ident.as_str() != "variable" {
                    continue;
                }
                let name = labels(block).first().cloned().unwrap_or_default();
                if let Some(value) = args.get(&name) {
                    scope.vars.insert(name, value.clone());
                    continue;
                }
                let default = args_of(file, &block.body)
                    .into_iter()
                    .find(|a| a.key == "default");
                if let Some(default) = default {
                    match eval::evaluate(&default.expr, &scope.context()) {
                        Ok(value) => {
                            scope.vars.insert(name, value);
                        }
                        Err(e) => self.gap(
                            &file.rel,
                            default.line,
                            format!("default of variable \"{name}\""),
                            e,
                        ),
                    }
                }
            }
        }
        // Locals may use each other in any order: evaluate until nothing more resolves.
        let mut pending: Vec<(String, hcl::Expression, String, usize)> = Vec::new();
        for file in files {
            for block in blocks_of(&file.body) {
                if block.ident.as_str() == "locals" {
                    for arg in args_of(file, &block.body) {
                        pending.push((arg.key, arg.expr, file.rel.clone(), arg.line));
                    }
                }
            }
        }
        loop {
            let before = pending.len();
            let ctx = scope.context();
            let mut still = Vec::new();
            let mut resolved = Vec::new();
            for item in pending {
                match eval::evaluate(&item.1, &ctx) {
                    Ok(value) => resolved.push((item.0.clone(), value)),
                    Err(_) => still.push(item),
                }
            }
            for (name, value) in resolved {
                scope.locals.insert(name, value);
            }
            pending = still;
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
        let ctx = scope.context();
        for (name, expr, file, line) in pending {
            let why = eval::evaluate(&expr, &ctx).err().unwrap_or_default();
            self.note(
                &file,
                line,
                format!("local.{name}"),
                format!("cannot be evaluated ({why}); whatever uses it is reported where used"),
            );
        }
        scope
    }

    /// A `module` block: follow it into its folder, adding what it declares to `app`.
    /// Returns false when the module is not imported (reported).
    fn module_call(
        &mut self,
        app: &mut ImportedApp,
        file: &TfFile,
        block: &EditBlock,
        scope: &Scope,
        depth: usize,
    ) -> Result<bool, ImportError> {
        let name = labels(block).first().cloned().unwrap_or_default();
        let line = file.line(block.span());
        let what = format!("module \"{name}\"");
        if depth >= MAX_MODULE_DEPTH {
            self.gap(
                &file.rel,
                line,
                what,
                format!("module calls nest deeper than {MAX_MODULE_DEPTH}"),
            );
            return Ok(false);
        }
        let ctx = scope.context();
        let mut source = None;
        let mut args = hcl::Map::new();
        for arg in args_of(file, &block.body) {
            match arg.key.as_str() {
                "source" => match eval::evaluate(&arg.expr, &ctx)
                    .ok()
                    .as_ref()
                    .and_then(as_text)
                {
                    Some(s) if s.starts_with("./") || s.starts_with("../") => source = Some(s),
                    Some(s) => {
                        self.gap(&file.rel, arg.line, &what, format!("source \"{s}\" is not a local folder: download the module and import its folder, or translate it by hand"));
                        return Ok(false);
                    }
                    None => {
                        self.gap(&file.rel, arg.line, &what, "its source is not a string");
                        return Ok(false);
                    }
                },
                "version" => {}
                "depends_on" => {
                    for m in MODULE_REF.captures_iter(arg.source) {
                        app.module_deps
                            .push((m[1].to_string(), file.rel.clone(), arg.line));
                    }
                    let others = arg
                        .source
                        .split([',', '[', ']', '\n'])
                        .map(str::trim)
                        .filter(|s| {
                            !s.is_empty() && !s.starts_with("module.") && !s.starts_with('#')
                        })
                        .count();
                    if others > 0 {
                        self.note(&file.rel, arg.line, format!("{what} depends_on"), "references to resources are not app dependencies: drover orders an app's resources itself");
                    }
                }
                "count" | "for_each" => {
                    self.gap(&file.rel, arg.line, format!("{what} {}", arg.key), "modules with count/for_each are not translated: write one module block per instance, or one app per instance by hand");
                    return Ok(false);
                }
                "providers" => self.note(
                    &file.rel,
                    arg.line,
                    format!("{what} providers"),
                    "provider configurations are not needed by drover",
                ),
                key => {
                    for m in MODULE_REF.captures_iter(arg.source) {
                        app.module_deps
                            .push((m[1].to_string(), file.rel.clone(), arg.line));
                    }
                    match eval::evaluate(&arg.expr, &ctx) {
                        Ok(value) => {
                            args.insert(key.to_string(), value);
                        }
                        Err(e) => {
                            self.gap(&file.rel, arg.line, format!("{what} argument {key}"), e)
                        }
                    }
                }
            }
        }
        let Some(source) = source else {
            self.gap(&file.rel, line, what, "no source");
            return Ok(false);
        };
        let module_path = eval::normalize(&format!("{}/{source}", scope.module_path));
        let files = match load_module(&self.root, &module_path) {
            Ok(files) if !files.is_empty() => files,
            Ok(_) => {
                self.gap(
                    &file.rel,
                    line,
                    what,
                    format!("{module_path} has no .tf files"),
                );
                return Ok(false);
            }
            Err(ImportError::Read { path, error }) => {
                self.gap(
                    &file.rel,
                    line,
                    what,
                    format!("cannot read {}: {error}", path.display()),
                );
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let inner = self.scope(&files, &module_path, &args);
        for file in &files {
            for block in blocks_of(&file.body) {
                self.top_block(app, file, block, &inner, depth + 1)?;
            }
        }
        if depth == 0 {
            let outputs = self.outputs(&files, &inner);
            self.module_outputs.insert(name, Value::Object(outputs));
        }
        Ok(true)
    }

    /// A module's outputs that evaluate (those naming resources do not: their values are unknown
    /// before Terraform applies).
    fn outputs(&self, files: &[TfFile], scope: &Scope) -> hcl::Map<String, Value> {
        let ctx = scope.context();
        let mut outputs = hcl::Map::new();
        for file in files {
            for block in blocks_of(&file.body) {
                if block.ident.as_str() != "output" {
                    continue;
                }
                let name = labels(block).first().cloned().unwrap_or_default();
                if let Some(value) = args_of(file, &block.body)
                    .into_iter()
                    .find(|a| a.key == "value")
                    .and_then(|a| eval::evaluate(&a.expr, &ctx).ok())
                {
                    outputs.insert(name, value);
                }
            }
        }
        outputs
    }

    /// A block at the top of a module's file.
    fn top_block(
        &mut self,
        app: &mut ImportedApp,
        file: &TfFile,
        block: &EditBlock,
        scope: &Scope,
        depth: usize,
    ) -> Result<(), ImportError> {
        let line = file.line(block.span());
        match block.ident.as_str() {
            "variable" | "locals" | "output" => {}
            "module" => {
                self.module_call(app, file, block, scope, depth)?;
            }
            "resource" => self.resource(app, file, block, scope),
            "data" => self.data(app, file, block, scope),
            "terraform" => self.note(
                &file.rel,
                line,
                "terraform settings",
                "backend and required providers are not needed by drover",
            ),
            "provider" => {
                let name = labels(block).first().cloned().unwrap_or_default();
                self.note(&file.rel, line, format!("provider \"{name}\""), "drover reads its cluster addresses from drover.yaml and the environment (NOMAD_ADDR, CONSUL_HTTP_ADDR, VAULT_ADDR, AWS_*)");
            }
            other => self.gap(&file.rel, line, format!("{other} block"), "not translated"),
        }
        Ok(())
    }

    /// Meta-arguments every resource may have. Returns (skip, prevent_destroy).
    fn meta_args(
        &mut self,
        app: &mut ImportedApp,
        file: &TfFile,
        block: &EditBlock,
        scope: &Scope,
        what: &str,
    ) -> (bool, bool) {
        let mut skip = false;
        let mut prevent_destroy = false;
        for arg in args_of(file, &block.body) {
            match arg.key.as_str() {
                "count" => match eval::evaluate(&arg.expr, &scope.context()) {
                    Ok(Value::Number(n)) if n.as_u64() == Some(1) => {}
                    Ok(Value::Number(n)) if n.as_u64() == Some(0) => {
                        self.note(
                            &file.rel,
                            arg.line,
                            format!("{what} count"),
                            "count = 0: Terraform creates nothing, nor does the import",
                        );
                        skip = true;
                    }
                    _ => {
                        self.gap(&file.rel, arg.line, format!("{what} count"), "count other than 0 or 1 is not translated: declare each instance in app.yaml");
                        skip = true;
                    }
                },
                "for_each" => {
                    self.gap(
                        &file.rel,
                        arg.line,
                        format!("{what} for_each"),
                        "for_each is not translated: declare each instance in app.yaml",
                    );
                    skip = true;
                }
                "depends_on" => {
                    for m in MODULE_REF.captures_iter(arg.source) {
                        app.module_deps
                            .push((m[1].to_string(), file.rel.clone(), arg.line));
                    }
                }
                "provider" => self.note(
                    &file.rel,
                    arg.line,
                    format!("{what} provider"),
                    "provider aliases are not needed by drover",
                ),
                _ => {}
            }
        }
        for inner in blocks_of(&block.body) {
            let line = file.line(inner.span());
            match inner.ident.as_str() {
                "lifecycle" => {
                    for arg in args_of(file, &inner.body) {
                        match (arg.key.as_str(), eval::evaluate(&arg.expr, &scope.context())) {
                            ("prevent_destroy", Ok(Value::Bool(b))) => prevent_destroy = b,
                            (key, _) => self.note(&file.rel, arg.line, format!("{what} lifecycle {key}"), "not translated: drover has no such setting"),
                        }
                    }
                }
                "provisioner" | "connection" => self.gap(&file.rel, line, format!("{what} {}", inner.ident.as_str()), "provisioners are not translated: a hook (pre_sync/post_sync batch job) may do the same"),
                _ => {}
            }
        }
        (skip, prevent_destroy)
    }

    fn resource(&mut self, app: &mut ImportedApp, file: &TfFile, block: &EditBlock, scope: &Scope) {
        let l = labels(block);
        let (kind, name) = (
            l.first().cloned().unwrap_or_default(),
            l.get(1).cloned().unwrap_or_default(),
        );
        let line = file.line(block.span());
        let what = format!("resource \"{kind}\" \"{name}\"");
        let (skip, prevent_destroy) = self.meta_args(app, file, block, scope, &what);
        if skip {
            return;
        }
        match kind.as_str() {
            "nomad_job" => self.nomad_job(app, file, block, scope, &name, &what),
            "nomad_csi_volume" | "nomad_csi_volume_registration" => {
                self.volume(
                    app,
                    file,
                    block,
                    scope,
                    &what,
                    prevent_destroy,
                    kind == "nomad_csi_volume_registration",
                );
            }
            "consul_config_entry" => self.config_entry(app, file, block, scope, &what),
            "vault_kv_secret_v2" => self.vault_secret(app, file, block, scope, &what),
            "minio_s3_bucket" => self.bucket(app, file, block, scope, &what, prevent_destroy),
            other => {
                let provider = other.split('_').next().unwrap_or(other);
                self.gap(
                    &file.rel,
                    line,
                    what,
                    format!(
                        "resource type {other} (provider {provider}) is not supported by drover"
                    ),
                );
            }
        }
    }

    fn data(&mut self, app: &mut ImportedApp, file: &TfFile, block: &EditBlock, scope: &Scope) {
        let l = labels(block);
        let (kind, name) = (
            l.first().cloned().unwrap_or_default(),
            l.get(1).cloned().unwrap_or_default(),
        );
        let line = file.line(block.span());
        let what = format!("data \"{kind}\" \"{name}\"");
        if kind != "nomad_plugin" {
            self.gap(
                &file.rel,
                line,
                what,
                "data sources are not translated: values read from it are unknown to the import",
            );
            return;
        }
        let ctx = scope.context();
        let mut plugin = None;
        let mut wait = false;
        for arg in args_of(file, &block.body) {
            let value = eval::evaluate(&arg.expr, &ctx);
            match (arg.key.as_str(), value) {
                ("plugin_id", Ok(v)) => plugin = as_text(&v),
                ("wait_for_healthy", Ok(Value::Bool(b))) => wait = b,
                ("wait_for_registration", _) => {}
                (key, Err(e)) => self.gap(&file.rel, arg.line, format!("{what} {key}"), e),
                (key, Ok(_)) => self.note(
                    &file.rel,
                    arg.line,
                    format!("{what} {key}"),
                    "not translated",
                ),
            }
        }
        match (plugin, wait) {
            (Some(plugin), true) => app.plugin_waits.push((plugin, file.rel.clone(), line)),
            (Some(_), false) => self.note(
                &file.rel,
                line,
                what,
                "a plugin lookup without wait_for_healthy orders nothing: not needed by drover",
            ),
            (None, _) => self.gap(&file.rel, line, what, "plugin_id is unknown"),
        }
    }

    /// A string argument; an evaluation error is a gap at its line.
    fn text_arg(
        &mut self,
        file: &TfFile,
        arg: &Arg<'_>,
        ctx: &hcl::eval::Context<'_>,
        what: &str,
    ) -> Option<String> {
        match eval::evaluate(&arg.expr, ctx) {
            Ok(value) => as_text(&value),
            Err(e) => {
                self.gap(&file.rel, arg.line, format!("{what} {}", arg.key), e);
                None
            }
        }
    }

    /// Read a file named by `file()`/`templatefile()` (relative to the root).
    fn read_file(&mut self, path: &str, file: &TfFile, line: usize, what: &str) -> Option<Vec<u8>> {
        match std::fs::read(self.root.join(path)) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.gap(&file.rel, line, what, format!("cannot read {path}: {e}"));
                None
            }
        }
    }

    /// Put a file in the app's folder, under a free name; returns the name used.
    fn add_file(
        app: &mut ImportedApp,
        wanted: &str,
        fallback_prefix: &str,
        content: Vec<u8>,
    ) -> String {
        let mut name = wanted.to_string();
        if app.files.get(&name).is_some_and(|c| *c != content) {
            name = format!("{fallback_prefix}-{wanted}");
        }
        app.files.insert(name.clone(), content);
        name
    }

    fn nomad_job(
        &mut self,
        app: &mut ImportedApp,
        file: &TfFile,
        block: &EditBlock,
        scope: &Scope,
        name: &str,
        what: &str,
    ) {
        let ctx = scope.context();
        let mut jobspec: Option<(Evaluated, usize)> = None;
        let mut json_spec = false;
        for arg in args_of(file, &block.body) {
            match arg.key.as_str() {
                "jobspec" => match eval::evaluate(&arg.expr, &ctx) {
                    Ok(Value::String(s)) => jobspec = Some((classify(&s), arg.line)),
                    Ok(_) => self.gap(
                        &file.rel,
                        arg.line,
                        format!("{what} jobspec"),
                        "not a string",
                    ),
                    Err(e) => self.gap(&file.rel, arg.line, format!("{what} jobspec"), e),
                },
                "json" => {
                    json_spec = matches!(eval::evaluate(&arg.expr, &ctx), Ok(Value::Bool(true)))
                }
                "purge_on_destroy" | "deregister_on_destroy" => self.note(
                    &file.rel,
                    arg.line,
                    format!("{what} {}", arg.key),
                    "ignored: drover stops (never purges) a job only when its app prunes it",
                ),
                "detach" => self.note(
                    &file.rel,
                    arg.line,
                    format!("{what} detach"),
                    "ignored: drover follows the deployment and reports the job's health",
                ),
                "count" | "for_each" | "depends_on" | "provider" => {}
                key => self.note(
                    &file.rel,
                    arg.line,
                    format!("{what} {key}"),
                    "ignored: drover has no such job setting",
                ),
            }
        }
        let mut variables: Option<serde_json::Map<String, serde_json::Value>> = None;
        for inner in blocks_of(&block.body) {
            let line = file.line(inner.span());
            match inner.ident.as_str() {
                "hcl2" => variables = self.hcl2_vars(file, &inner.body, &ctx, what).or(variables),
                "dynamic" if labels(inner).first().map(String::as_str) == Some("hcl2") => {
                    variables = self.dynamic_hcl2(file, inner, scope, what).or(variables);
                }
                "lifecycle" | "provisioner" | "connection" => {}
                "timeouts" => self.note(
                    &file.rel,
                    line,
                    format!("{what} timeouts"),
                    "ignored: drover follows deployments with Nomad's own deadlines",
                ),
                other => self.gap(
                    &file.rel,
                    line,
                    format!("{what} {other} block"),
                    "not translated",
                ),
            }
        }
        let Some((spec, line)) = jobspec else {
            self.gap(
                &file.rel,
                file.line(block.span()),
                what,
                "no jobspec that evaluates",
            );
            return;
        };
        let extension = if json_spec { "nomad.json" } else { "nomad.hcl" };
        let file_name = match spec {
            Evaluated::File(path) => {
                let Some(content) = self.read_file(&path, file, line, what) else {
                    return;
                };
                let base = path.rsplit('/').next().unwrap_or(&path).to_string();
                Self::add_file(app, &base, name, content)
            }
            Evaluated::Text(text) => {
                Self::add_file(app, &format!("{name}.{extension}"), name, text.into_bytes())
            }
            Evaluated::TemplateFile { path, vars } => {
                let Some(content) = self.read_file(&path, file, line, what) else {
                    return;
                };
                let base = path.rsplit('/').next().unwrap_or(&path).to_string();
                let text = String::from_utf8_lossy(&content).into_owned();
                match eval::render_template(&text, &vars) {
                    Ok(rendered) => {
                        let stem = base.strip_suffix(".tpl").unwrap_or(&base);
                        // drover reads a jobspec as HCL2 unless it ends in .json.
                        let rendered_name = if stem.ends_with(".hcl") || stem.ends_with(".json") {
                            stem.to_string()
                        } else {
                            format!("{stem}.hcl")
                        };
                        self.note(&file.rel, line, format!("{what} jobspec"), format!("templatefile(\"{path}\") rendered with its variables into {rendered_name}"));
                        Self::add_file(app, &rendered_name, name, rendered.into_bytes())
                    }
                    Err(e) => {
                        app.kept.insert(base.clone(), content);
                        self.gap(&file.rel, line, format!("{what} jobspec"), format!("templatefile(\"{path}\") cannot be rendered ({e}); the template is kept as {NOT_IMPORTED}/{}/{base}: render it by hand or turn it into a jobspec with HCL2 variables", app.name));
                        return;
                    }
                }
            }
            Evaluated::Mixed => {
                self.gap(
                    &file.rel,
                    line,
                    format!("{what} jobspec"),
                    "a file's content combined with other text or functions is not translated",
                );
                return;
            }
        };
        let namespace = app
            .files
            .get(&file_name)
            .and_then(|c| {
                JOB_NAMESPACE
                    .captures(&String::from_utf8_lossy(c))
                    .map(|m| m[1].to_string())
            })
            .filter(|ns| ns != "default");
        if let Some(ns) = namespace {
            match &app.namespace {
                Some(current) if *current != ns => {
                    self.gap(&file.rel, line, format!("{what} jobspec"), format!("its namespace {ns} differs from the app's other job ({current}): an app has one namespace; move this job to an app of its own"));
                    return;
                }
                _ => app.namespace = Some(ns),
            }
        }
        let mut job = serde_json::Map::new();
        job.insert("file".into(), json!(file_name));
        if let Some(vars) = variables.filter(|v| !v.is_empty()) {
            job.insert("variables".into(), serde_json::Value::Object(vars));
        }
        app.resources.push(json!({ "nomad_job": job }));
    }

    fn hcl2_vars(
        &mut self,
        file: &TfFile,
        body: &EditBody,
        ctx: &hcl::eval::Context<'_>,
        what: &str,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        let mut vars = None;
        for arg in args_of(file, body) {
            match (arg.key.as_str(), eval::evaluate(&arg.expr, ctx)) {
                ("vars", Ok(Value::Object(map))) => {
                    vars = Some(map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect());
                }
                ("enabled", Ok(Value::Bool(true))) => {}
                ("allow_fs", Ok(Value::Bool(true))) => self.gap(&file.rel, arg.line, format!("{what} hcl2 allow_fs"), "drover checks jobspecs as Nomad does by default: file functions in the jobspec are refused"),
                (_, Err(e)) => self.gap(&file.rel, arg.line, format!("{what} hcl2 {}", arg.key), e),
                (key, Ok(_)) => self.note(&file.rel, arg.line, format!("{what} hcl2 {key}"), "ignored"),
            }
        }
        vars
    }

    /// `dynamic "hcl2" { for_each = cond ? [1] : [] content { vars = … } }`: one block or none.
    fn dynamic_hcl2(
        &mut self,
        file: &TfFile,
        block: &EditBlock,
        scope: &Scope,
        what: &str,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        let line = file.line(block.span());
        let mut ctx = scope.context();
        let for_each = args_of(file, &block.body)
            .into_iter()
            .find(|a| a.key == "for_each");
        let items: Vec<Value> = match for_each.map(|a| eval::evaluate(&a.expr, &ctx)) {
            Some(Ok(Value::Array(items))) => items,
            Some(Ok(Value::Object(map))) => map.into_values().collect(),
            Some(Err(e)) => {
                self.gap(&file.rel, line, format!("{what} dynamic \"hcl2\""), e);
                return None;
            }
            _ => {
                self.gap(
                    &file.rel,
                    line,
                    format!("{what} dynamic \"hcl2\""),
                    "for_each is not a list or map",
                );
                return None;
            }
        };
        match items.as_slice() {
            [] => None,
            [item] => {
                let mut iterator = hcl::Map::new();
                iterator.insert("key".into(), Value::Number(0.into()));
                iterator.insert("value".into(), item.clone());
                ctx.declare_var("hcl2", Value::Object(iterator));
                let content = blocks_of(&block.body)
                    .into_iter()
                    .find(|b| b.ident.as_str() == "content")?;
                self.hcl2_vars(file, &content.body, &ctx, what)
            }
            _ => {
                self.gap(
                    &file.rel,
                    line,
                    format!("{what} dynamic \"hcl2\""),
                    "more than one hcl2 block",
                );
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn volume(
        &mut self,
        app: &mut ImportedApp,
        file: &TfFile,
        block: &EditBlock,
        scope: &Scope,
        what: &str,
        prevent_destroy: bool,
        register: bool,
    ) {
        let ctx = scope.context();
        let mut spec = serde_json::Map::new();
        for arg in args_of(file, &block.body) {
            if arg.key == "secrets" {
                // Only the key names, from the expression itself: the values are never read.
                let keys: Vec<String> = match &arg.expr {
                    hcl::Expression::Object(object) => object.keys().map(object_key).collect(),
                    _ => Vec::new(),
                };
                self.gap(&file.rel, arg.line, format!("{what} secrets"), format!("secret values are never written to the repository: the volume is imported without its secrets ({}); keep them in Vault and add them to the csi_volume by hand", keys.join(", ")));
                continue;
            }
            let value = match eval::evaluate(&arg.expr, &ctx) {
                Ok(v) => v,
                Err(e) => {
                    if !matches!(
                        arg.key.as_str(),
                        "depends_on" | "count" | "for_each" | "provider"
                    ) {
                        self.gap(&file.rel, arg.line, format!("{what} {}", arg.key), e);
                    }
                    continue;
                }
            };
            match arg.key.as_str() {
                "volume_id" => {
                    spec.insert("id".into(), to_json(&value));
                }
                key @ ("name" | "plugin_id" | "external_id" | "capacity_min" | "capacity_max"
                | "snapshot_id" | "clone_id") => {
                    spec.insert(key.into(), to_json(&value));
                }
                key @ ("parameters" | "context") => {
                    spec.insert(key.into(), to_json(&value));
                }
                "namespace" if as_text(&value).as_deref() == Some("default") => {}
                "namespace" => self.gap(
                    &file.rel,
                    arg.line,
                    format!("{what} namespace"),
                    "set namespace: in the app's app.yaml (an app has one namespace)",
                ),
                "type" | "depends_on" | "count" | "for_each" | "provider" => {}
                "deregister_on_destroy" => self.note(
                    &file.rel,
                    arg.line,
                    format!("{what} {}", arg.key),
                    "ignored: prevent_destroy and prune decide what drover removes",
                ),
                key => self.gap(
                    &file.rel,
                    arg.line,
                    format!("{what} {key}"),
                    "not translated",
                ),
            }
        }
        let mut capabilities = Vec::new();
        for inner in blocks_of(&block.body) {
            let line = file.line(inner.span());
            match inner.ident.as_str() {
                "capability" => {
                    let mut cap = serde_json::Map::new();
                    for arg in args_of(file, &inner.body) {
                        if let Ok(v) = eval::evaluate(&arg.expr, &ctx) {
                            cap.insert(arg.key.clone(), to_json(&v));
                        }
                    }
                    capabilities.push(serde_json::Value::Object(cap));
                }
                "mount_options" => {
                    let mut options = serde_json::Map::new();
                    for arg in args_of(file, &inner.body) {
                        if let Ok(v) = eval::evaluate(&arg.expr, &ctx) {
                            options.insert(arg.key.clone(), to_json(&v));
                        }
                    }
                    spec.insert("mount_options".into(), serde_json::Value::Object(options));
                }
                "lifecycle" | "provisioner" | "connection" => {}
                other => self.gap(
                    &file.rel,
                    line,
                    format!("{what} {other} block"),
                    "not translated",
                ),
            }
        }
        if !capabilities.is_empty() {
            spec.insert(
                "capabilities".into(),
                serde_json::Value::Array(capabilities),
            );
        }
        if register && !spec.contains_key("external_id") {
            self.gap(
                &file.rel,
                file.line(block.span()),
                what,
                "a registration without external_id",
            );
        }
        if prevent_destroy {
            spec.insert("prevent_destroy".into(), json!(true));
        }
        app.resources.push(json!({ "csi_volume": spec }));
    }

    fn config_entry(
        &mut self,
        app: &mut ImportedApp,
        file: &TfFile,
        block: &EditBlock,
        scope: &Scope,
        what: &str,
    ) {
        let ctx = scope.context();
        let (mut kind, mut name, mut config) = (None, None, None);
        for arg in args_of(file, &block.body) {
            let value = eval::evaluate(&arg.expr, &ctx);
            match (arg.key.as_str(), value) {
                ("depends_on" | "count" | "for_each" | "provider", _) => {}
                (_, Err(e)) => self.gap(&file.rel, arg.line, format!("{what} {}", arg.key), e),
                ("kind", Ok(v)) => kind = as_text(&v),
                ("name", Ok(v)) => name = as_text(&v),
                ("config_json", Ok(Value::String(s))) => config = Some((classify(&s), arg.line)),
                (key @ ("namespace" | "partition"), Ok(_)) => self.gap(&file.rel, arg.line, format!("{what} {key}"), "Consul namespaces and partitions are not translated (drover.yaml has no Consul namespace per entry; CONSUL_NAMESPACE applies to all)"),
                (key, Ok(_)) => self.gap(&file.rel, arg.line, format!("{what} {key}"), "not translated"),
            }
        }
        let line = file.line(block.span());
        let (Some(kind), Some(name)) = (kind, name) else {
            self.gap(&file.rel, line, what, "kind and name must evaluate");
            return;
        };
        let text = match config {
            Some((Evaluated::Text(text), _)) => text,
            Some((Evaluated::File(path), line)) => match self.read_file(&path, file, line, what) {
                Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                None => return,
            },
            Some((_, line)) => {
                self.gap(
                    &file.rel,
                    line,
                    format!("{what} config_json"),
                    "not a JSON string the import can evaluate",
                );
                return;
            }
            None => "{}".into(),
        };
        let mut entry = serde_json::Map::new();
        entry.insert("Kind".into(), json!(kind));
        entry.insert("Name".into(), json!(name));
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(map)) => entry.extend(map),
            _ => {
                self.gap(
                    &file.rel,
                    line,
                    format!("{what} config_json"),
                    "not a JSON object",
                );
                return;
            }
        }
        let file_name = format!("{}-{}.json", app_name(&kind), app_name(&name));
        let content = serde_json::to_string_pretty(&entry).unwrap_or_default() + "\n";
        let file_name = Self::add_file(app, &file_name, &app_name(&kind), content.into_bytes());
        app.resources
            .push(json!({ "consul_config_entry": { "file": file_name } }));
    }

    fn vault_secret(
        &mut self,
        app: &mut ImportedApp,
        file: &TfFile,
        block: &EditBlock,
        scope: &Scope,
        what: &str,
    ) {
        let ctx = scope.context();
        let (mut mount, mut path, mut keys) = (None, None, None);
        let reported = self.result.gaps.len();
        for arg in args_of(file, &block.body) {
            match arg.key.as_str() {
                "mount" => mount = self.text_arg(file, &arg, &ctx, what),
                "name" => path = self.text_arg(file, &arg, &ctx, what),
                "data_json" => keys = self.secret_keys(file, &arg, &ctx, what),
                "depends_on" | "count" | "for_each" | "provider" => {}
                key => self.note(
                    &file.rel,
                    arg.line,
                    format!("{what} {key}"),
                    "ignored: drover only checks that the secret holds its keys",
                ),
            }
        }
        let line = file.line(block.span());
        let (Some(mount), Some(path), Some(keys)) = (mount, path, keys) else {
            // Say it once: an argument that failed has its gap already.
            if self.result.gaps.len() > reported {
                return;
            }
            self.gap(
                &file.rel,
                line,
                what,
                "mount, name and the key names of data_json must evaluate",
            );
            return;
        };
        self.note(&file.rel, line, what, "imported as a requirement (key names only): drover never writes secret values; keep writing them to Vault yourself");
        app.resources
            .push(json!({ "vault_secret": { "mount": mount, "path": path, "keys": keys } }));
    }

    /// The key names of `data_json`, never its values: from the evaluated JSON when it evaluates,
    /// else from a literal `jsonencode({ KEY = … })` whose values name unknown variables.
    fn secret_keys(
        &mut self,
        file: &TfFile,
        arg: &Arg<'_>,
        ctx: &hcl::eval::Context<'_>,
        what: &str,
    ) -> Option<Vec<String>> {
        if let Ok(Value::String(s)) = eval::evaluate(&arg.expr, ctx)
            && let Ok(serde_json::Value::Object(map)) =
                serde_json::from_str::<serde_json::Value>(&s)
        {
            return Some(map.keys().cloned().collect());
        }
        if let hcl::Expression::FuncCall(call) = &arg.expr
            && call.name.name.as_str() == "jsonencode"
            && let Some(hcl::Expression::Object(object)) = call.args.first()
        {
            let keys: Vec<String> = object.keys().map(object_key).collect();
            return Some(keys);
        }
        self.gap(
            &file.rel,
            arg.line,
            format!("{what} data_json"),
            "its key names cannot be found without its values",
        );
        None
    }

    fn bucket(
        &mut self,
        app: &mut ImportedApp,
        file: &TfFile,
        block: &EditBlock,
        scope: &Scope,
        what: &str,
        prevent_destroy: bool,
    ) {
        let ctx = scope.context();
        let mut name = None;
        let reported = self.result.gaps.len();
        for arg in args_of(file, &block.body) {
            match arg.key.as_str() {
                "bucket" => name = self.text_arg(file, &arg, &ctx, what),
                "force_destroy" => self.note(
                    &file.rel,
                    arg.line,
                    format!("{what} force_destroy"),
                    "ignored: drover never deletes objects; a bucket that holds any is kept",
                ),
                "acl" => self.gap(
                    &file.rel,
                    arg.line,
                    format!("{what} acl"),
                    "canned ACLs are not translated: write a bucket policy (bucket.policy) instead",
                ),
                "depends_on" | "count" | "for_each" | "provider" => {}
                key => self.gap(
                    &file.rel,
                    arg.line,
                    format!("{what} {key}"),
                    "not translated",
                ),
            }
        }
        let Some(name) = name else {
            if self.result.gaps.len() > reported {
                return;
            }
            self.gap(
                &file.rel,
                file.line(block.span()),
                what,
                "bucket (its name) must evaluate",
            );
            return;
        };
        let mut spec = serde_json::Map::new();
        spec.insert("name".into(), json!(name));
        if prevent_destroy {
            spec.insert("prevent_destroy".into(), json!(true));
        }
        app.resources.push(json!({ "bucket": spec }));
    }

    /// Resolve module references and plugin waits into app dependencies.
    fn finish(&mut self) {
        let mut module_apps: BTreeMap<String, String> = BTreeMap::new();
        for app in &self.result.apps {
            if let Some(module) = app.origin.split("module \"").nth(1) {
                module_apps.insert(module.trim_end_matches('"').to_string(), app.name.clone());
            }
        }
        // Which app runs which CSI plugin (a `csi_plugin { id = "…" }` in one of its jobspecs).
        let mut plugin_apps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for app in &self.result.apps {
            for (name, content) in &app.files {
                if !name.ends_with(".hcl") {
                    continue;
                }
                for m in CSI_PLUGIN_ID.captures_iter(&String::from_utf8_lossy(content)) {
                    plugin_apps
                        .entry(m[1].to_string())
                        .or_default()
                        .insert(app.name.clone());
                }
            }
        }
        let mut gaps = Vec::new();
        let mut notes = Vec::new();
        for app in &mut self.result.apps {
            for (module, file, line) in std::mem::take(&mut app.module_deps) {
                match module_apps.get(&module) {
                    Some(dep) if *dep != app.name => {
                        app.depends_on.insert(dep.clone());
                    }
                    Some(_) => {}
                    None => gaps.push(Gap {
                        file,
                        line,
                        what: format!("reference to module.{module}"),
                        why: "that module is not imported as an app, so this dependency is dropped"
                            .into(),
                    }),
                }
            }
            for (plugin, file, line) in std::mem::take(&mut app.plugin_waits) {
                let what = format!("wait_for_healthy on plugin \"{plugin}\"");
                let runners: Vec<String> = plugin_apps
                    .get(&plugin)
                    .into_iter()
                    .flatten()
                    .filter(|a| **a != app.name)
                    .cloned()
                    .collect();
                match plugin_apps.get(&plugin) {
                    Some(_) if !runners.is_empty() => {
                        app.depends_on.extend(runners.iter().cloned());
                        notes.push(Gap { file, line, what, why: format!("depends_on: [{}], the app(s) running the plugin's jobs", runners.join(", ")) });
                    }
                    Some(_) => notes.push(Gap { file, line, what, why: "the plugin's job is in the same app: drover orders it".into() }),
                    None => notes.push(Gap { file, line, what, why: "no imported app runs this plugin: drover creates the volume once Nomad lists the plugin; add depends_on on the app that runs it".into() }),
                }
            }
        }
        self.result.gaps.extend(gaps);
        self.result.notes.extend(notes);
        // An app with nothing drover manages is not written.
        let mut empty = Vec::new();
        let mut kept_only = Vec::new();
        self.result.apps.retain(|app| {
            if app.resources.is_empty() {
                if !app.kept.is_empty() {
                    kept_only.push(app.clone());
                }
                empty.push(app.origin.clone());
                false
            } else {
                true
            }
        });
        for origin in empty {
            let (file, rest) = origin.split_once(':').unwrap_or((&origin, ""));
            let line = rest
                .split(' ')
                .next()
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            self.result.gaps.push(Gap {
                file: file.into(),
                line,
                what: rest
                    .split_once(' ')
                    .map(|(_, m)| m)
                    .unwrap_or(rest)
                    .to_string(),
                why: "declares nothing drover manages: no app written".into(),
            });
        }
        self.result.kept_only = kept_only;
        let written: BTreeSet<String> = self.result.apps.iter().map(|a| a.name.clone()).collect();
        for app in &mut self.result.apps {
            app.depends_on.retain(|d| written.contains(d));
        }
        self.result.gaps.sort();
        self.result.gaps.dedup();
        // A shared module (nomad-job) called many times says the same thing once.
        self.result.notes.sort();
        self.result.notes.dedup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, path: &str, text: &str) {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(full, text).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn a_jobspec_namespace_becomes_the_apps_and_a_second_one_is_a_gap() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = tmp.path();
        write(
            dir,
            "main.tf",
            "module \"site\" {\n  source = \"./site\"\n}\n",
        );
        write(
            dir,
            "site/main.tf",
            "resource \"nomad_job\" \"a\" {\n  jobspec = file(\"${path.module}/a.hcl\")\n}\n\
             resource \"nomad_job\" \"b\" {\n  jobspec = file(\"${path.module}/b.hcl\")\n}\n",
        );
        write(
            dir,
            "site/a.hcl",
            "job \"a\" {\n  namespace = \"shop\"\n}\n",
        );
        write(
            dir,
            "site/b.hcl",
            "job \"b\" {\n  namespace = \"other\"\n}\n",
        );
        let imported = read_configuration(dir).unwrap_or_else(|e| panic!("{e}"));
        let site = &imported.apps[0];
        assert_eq!(site.namespace.as_deref(), Some("shop"));
        assert!(app_yaml(site).contains("\nnamespace: shop\n"));
        assert_eq!(
            site.resources,
            [json!({ "nomad_job": { "file": "a.hcl" } })]
        );
        assert_eq!(
            imported
                .gaps
                .iter()
                .map(|g| (g.file.as_str(), g.line))
                .collect::<Vec<_>>(),
            [("site/main.tf", 5)]
        );
    }

    #[test]
    fn module_names_become_app_names() {
        assert_eq!(
            app_name("plugin_csi_glusterfs_nodes"),
            "plugin-csi-glusterfs-nodes"
        );
        assert_eq!(app_name("Media_Centre"), "media-centre");
    }

    #[test]
    fn the_csi_plugin_id_is_found_in_a_jobspec() {
        let text = "task \"p\" {\n  csi_plugin {\n    id        = \"glusterfs\"\n    type = \"node\"\n  }\n}";
        let ids: Vec<String> = CSI_PLUGIN_ID
            .captures_iter(text)
            .map(|m| m[1].to_string())
            .collect();
        assert_eq!(ids, ["glusterfs"]);
    }
}
