//! Native HashiCorp files referenced from app.yaml: Nomad jobspecs (HCL2 or JSON, with HCL2
//! variables), `nomad volume create/register` specs (HCL1 as Nomad reads them) and Consul config
//! entries (`consul config write`, HCL or JSON). Jobspec text is kept as written, because Nomad's
//! own parser decides (DESIGN rule 1); it is checked here only for what drover must know first.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use hcl::edit::Span as _;
use hcl::edit::expr::Expression as EditExpr;
use hcl::edit::structure::{Body, Structure};
use hcl::eval::Evaluate as _;
use regex::Regex;

use super::check::{Ctx, join};
use super::manifest::{self, JOB_KEYS};
use super::yaml::{Node, Value};
use super::{
    ConfigEntrySpec, CsiVolumeSpec, Diagnostic, JobFormat, MountOptions, NomadJobSpec, Origin,
    SecretString, VolumeCapability, VolumeMode,
};
use crate::source::{FileError, Revision};

/// Resolve `rel` against the app folder; `..` may leave the app but never the repository.
pub(crate) fn resolve(app_dir: &str, rel: &str) -> Result<String, String> {
    if rel.starts_with('/') || rel.contains('\\') || rel.contains(':') {
        return Err(format!(
            "\"{rel}\" must be a relative path with / separators"
        ));
    }
    let mut parts: Vec<&str> = app_dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("\"{rel}\" escapes the repository"));
                }
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(format!("\"{rel}\" is not a file"));
    }
    Ok(parts.join("/"))
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
        + 1;
    (line, col)
}

fn diag(file: &str, (line, column): (usize, usize), field: &str, message: String) -> Diagnostic {
    Diagnostic {
        file: file.to_string(),
        line,
        column,
        field: (!field.is_empty()).then(|| field.to_string()),
        message,
        hint: None,
    }
}

/// Read the file a `file:` node names; errors point at the node.
fn read(
    ctx: &mut Ctx,
    rev: &Revision,
    dir: &str,
    node: &Node,
    field: &str,
) -> Option<(String, String)> {
    let rel = ctx.nonempty(node, field)?;
    let path = match resolve(dir, &rel) {
        Ok(p) => p,
        Err(e) => {
            ctx.err(node, field, e);
            return None;
        }
    };
    let bytes = match rev.file(&path) {
        Ok(bytes) => bytes,
        Err(FileError::NotFound { .. }) => {
            let siblings: Vec<String> = rev
                .paths_under(dir)
                .filter_map(|p| p.strip_prefix(&format!("{dir}/")).map(str::to_string))
                .collect();
            let refs: Vec<&str> = siblings.iter().map(String::as_str).collect();
            let hint = super::check::suggest(&rel, &refs).map(|s| format!("did you mean \"{s}\"?"));
            ctx.err_hint(node, field, format!("file {path} does not exist"), hint);
            return None;
        }
        Err(e) => {
            ctx.err(node, field, e.to_string());
            return None;
        }
    };
    match String::from_utf8(bytes.into_owned()) {
        Ok(text) => Some((path, text)),
        Err(_) => {
            ctx.err(node, field, format!("{path} is not UTF-8 text"));
            None
        }
    }
}

fn hcl_parse_error(
    file: &str,
    e: &hcl::edit::parser::Error,
    line_map: Option<&[usize]>,
) -> Diagnostic {
    let loc = e.location();
    let line = line_map
        .and_then(|m| m.get(loc.line().saturating_sub(1)).copied())
        .unwrap_or(loc.line());
    diag(
        file,
        (line, loc.column()),
        "",
        format!("HCL syntax error: {}", e.message()),
    )
}

/// Evaluate a literal HCL expression (no references) into JSON.
fn literal(expr: &EditExpr) -> Result<serde_json::Value, String> {
    let expr: hcl::Expression = expr.clone().into();
    let value = expr
        .evaluate(&hcl::eval::Context::new())
        .map_err(|e| format!("only literal values are allowed here: {e}"))?;
    serde_json::to_value(value).map_err(|e| e.to_string())
}

fn span_pos(text: &str, span: Option<std::ops::Range<usize>>) -> (usize, usize) {
    span.map_or((0, 0), |s| line_col(text, s.start))
}

// ---------------------------------------------------------------------------------------------
// Nomad jobs

/// What drover learns from a jobspec before Nomad parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobInfo {
    /// The `job "<id>"` label.
    pub job_id: String,
    /// 1-based line of the job block.
    pub line: usize,
    /// A literal `namespace = "..."` in the job block.
    pub namespace: Option<String>,
    /// `variable "x"` blocks: name, has a default, line.
    pub declared: Vec<(String, bool, usize)>,
}

/// Load `nomad_job: { file, variables, var_files, levant }`.
pub(crate) fn nomad_job(
    ctx: &mut Ctx,
    rev: &Revision,
    dir: &str,
    namespace: &str,
    node: &Node,
    field: &str,
) -> Option<(NomadJobSpec, Origin)> {
    let f = ctx.fields(node, field, JOB_KEYS)?;
    let Some(file_node) = f.get("file") else {
        ctx.err(
            node,
            &join(field, "file"),
            "file is required (the jobspec next to app.yaml)",
        );
        return None;
    };
    let var_files: Vec<(String, &Node)> = match f.get("var_files") {
        Some(n) => match &n.value {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    ctx.nonempty(item, &format!("{field}.var_files[{i}]"))
                        .map(|s| (s, item))
                })
                .collect(),
            _ => {
                ctx.err(n, &join(field, "var_files"), "expected a list of files");
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let yaml_vars = f
        .get("variables")
        .map(|n| manifest::variables_map(ctx, n, &join(field, "variables")))
        .unwrap_or_default();
    let (path, text) = read(ctx, rev, dir, file_node, &join(field, "file"))?;
    let text = match f.get("levant") {
        Some(levant) => levant_render(ctx, rev, dir, levant, &join(field, "levant"), &path, &text)?,
        None => text,
    };
    let before = ctx.diags.len();
    let is_json = path.ends_with(".json") || text.trim_start().starts_with('{');
    if is_json {
        if !yaml_vars.is_empty() || !var_files.is_empty() {
            ctx.err(
                node,
                field,
                format!("{path} is a JSON jobspec; HCL2 variables apply only to HCL jobspecs"),
            );
        }
        let (job_id, ns) = json_job_id(ctx, &path, &text)?;
        check_namespace(ctx, &path, 1, ns.as_deref(), namespace);
        if ctx.diags.len() > before {
            return None;
        }
        return Some((
            NomadJobSpec {
                file: path.clone(),
                format: JobFormat::Json,
                source: text,
                variables: String::new(),
                job_id,
            },
            Origin {
                file: path,
                line: 1,
            },
        ));
    }
    let info = hcl_job_info(ctx, &path, &text)?;
    check_namespace(ctx, &path, info.line, info.namespace.as_deref(), namespace);
    let variables = job_variables(ctx, rev, &path, &info, &var_files, &yaml_vars, field);
    if ctx.diags.len() > before {
        return None;
    }
    Some((
        NomadJobSpec {
            file: path.clone(),
            format: JobFormat::Hcl2,
            source: text,
            variables: variables?,
            job_id: info.job_id,
        },
        Origin {
            file: path,
            line: info.line,
        },
    ))
}

/// `levant: { var_files: [...] }`: the jobspec is a Levant template (`[[ .key ]]`), rendered with
/// the merged YAML/JSON var files (later files win) before anything else reads it.
fn levant_render(
    ctx: &mut Ctx,
    rev: &Revision,
    dir: &str,
    node: &Node,
    field: &str,
    path: &str,
    text: &str,
) -> Option<String> {
    let f = ctx.fields(node, field, &["var_files"])?;
    let mut files = Vec::new();
    if let Some(list) = f.get("var_files") {
        for (i, item) in ctx
            .list(list, &join(field, "var_files"))?
            .iter()
            .enumerate()
        {
            files.push(read(
                ctx,
                rev,
                dir,
                item,
                &format!("{field}.var_files[{i}]"),
            )?);
        }
    }
    let rendered = crate::chart::levant::merge_var_files(&files)
        .and_then(|data| crate::chart::levant::render(path, text, &data));
    match rendered {
        Ok(text) => Some(text),
        Err(e) => {
            ctx.push(Diagnostic {
                file: e.file,
                line: e.line,
                column: 0,
                field: Some(field.to_string()),
                message: e.message,
                hint: None,
            });
            None
        }
    }
}

fn check_namespace(ctx: &mut Ctx, path: &str, line: usize, declared: Option<&str>, app_ns: &str) {
    if let Some(ns) = declared
        && !app_ns.is_empty()
        && ns != app_ns
    {
        ctx.push(Diagnostic {
            hint: Some(format!(
                "set namespace: {ns} in app.yaml, or remove namespace from {path}"
            )),
            ..diag(
                path,
                (line, 0),
                "namespace",
                format!("the file sets namespace \"{ns}\" but the app's namespace is \"{app_ns}\""),
            )
        });
    }
}

fn json_job_id(ctx: &mut Ctx, path: &str, text: &str) -> Option<(String, Option<String>)> {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            ctx.push(diag(
                path,
                (e.line(), e.column()),
                "",
                format!("invalid JSON: {e}"),
            ));
            return None;
        }
    };
    let job = match value.get("Job") {
        Some(job) => job,
        None => &value,
    };
    if !job.is_object() {
        ctx.push(diag(
            path,
            (1, 1),
            "",
            "a JSON jobspec must be an object".to_string(),
        ));
        return None;
    }
    match job.get("ID").and_then(serde_json::Value::as_str) {
        Some(id) if !id.trim().is_empty() => Some((
            id.to_string(),
            job.get("Namespace")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string),
        )),
        _ => {
            ctx.push(Diagnostic {
                hint: Some(
                    "use {\"Job\": {\"ID\": \"name\", ...}} or a bare job with \"ID\"".to_string(),
                ),
                ..diag(path, (1, 1), "ID", "the JSON job has no \"ID\"".to_string())
            });
            None
        }
    }
}

/// Parse an HCL2 jobspec for its job ID, namespace and declared variables; templating layers and
/// syntax errors are reported against the file.
pub(crate) fn hcl_job_info(ctx: &mut Ctx, path: &str, text: &str) -> Option<JobInfo> {
    // Nomad's reading: a key twice inside a driver `config` block is not a syntax error.
    let body = match drover_jobspec::parse_jobspec_body(text) {
        Ok(b) => b,
        Err(e) => {
            let findings = templating_findings(text, None);
            if findings.is_empty() {
                ctx.push(hcl_parse_error(path, &e, None));
            } else {
                report_templating(ctx, path, text, &findings);
            }
            return None;
        }
    };
    let findings = templating_findings(text, Some(&body));
    if !findings.is_empty() {
        report_templating(ctx, path, text, &findings);
        return None;
    }
    // `/v1/jobs/parse` runs with filesystem functions disabled (AllowFS=false): a jobspec that
    // reads local files parses with the nomad CLI but never through the API.
    let mut fs_calls = Vec::new();
    body_fs_calls(&body, &mut fs_calls);
    if !fs_calls.is_empty() {
        for (name, span) in fs_calls {
            ctx.push(Diagnostic {
                hint: Some("inline the content (a heredoc, or a template block's data) or use an HCL2 variable set in app.yaml".to_string()),
                ..diag(
                    path,
                    span_pos(text, span),
                    "",
                    format!("{name}() reads local files, which Nomad's job parse API does not allow"),
                )
            });
        }
        return None;
    }
    let mut jobs = Vec::new();
    let mut declared = Vec::new();
    for s in body.iter() {
        if let Structure::Block(b) = s {
            let pos = span_pos(text, b.span());
            match b.ident.as_str() {
                "job" => jobs.push((b, pos)),
                "variable" => {
                    if let Some(label) = b.labels.first() {
                        declared.push((
                            label.as_str().to_string(),
                            b.body.has_attribute("default"),
                            pos.0,
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    let [(job, pos)] = jobs.as_slice() else {
        ctx.push(diag(
            path,
            (if jobs.is_empty() { 0 } else { jobs[1].1.0 }, 0),
            "job",
            format!(
                "a jobspec must contain exactly one job block, found {}",
                jobs.len()
            ),
        ));
        return None;
    };
    let job_id = match job.labels.as_slice() {
        [label] if !label.as_str().trim().is_empty() => label.as_str().to_string(),
        _ => {
            ctx.push(diag(
                path,
                *pos,
                "job",
                "the job block needs exactly one label, its ID: job \"name\" { ... }".to_string(),
            ));
            return None;
        }
    };
    let namespace = job
        .body
        .get_attribute("namespace")
        .and_then(|a| match &a.value {
            EditExpr::String(s) => Some(s.value().to_string()),
            _ => None,
        });
    Some(JobInfo {
        job_id,
        line: pos.0,
        namespace,
        declared,
    })
}

/// A hook's job must be a batch job (a service never completes, so it could never be awaited):
/// an error at its `type` (or at the job block when it has none: Nomad's default is `service`).
/// A `type` computed from a variable is left to the run, which checks the parsed job.
pub(crate) fn check_batch_job(ctx: &mut Ctx, spec: &NomadJobSpec) -> bool {
    let found = match spec.format {
        JobFormat::Json => serde_json::from_str::<serde_json::Value>(&spec.source)
            .ok()
            .map(|v| {
                let job = v.get("Job").cloned().unwrap_or(v);
                let kind = job.get("Type").and_then(|t| t.as_str().map(str::to_string));
                (Some(kind.unwrap_or_else(|| "service".to_string())), (1, 1))
            }),
        JobFormat::Hcl2 => drover_jobspec::parse_jobspec_body(&spec.source)
            .ok()
            .and_then(|body| {
                body.iter().find_map(|s| match s {
                    Structure::Block(b) if b.ident.as_str() == "job" => {
                        Some(match b.body.get_attribute("type") {
                            Some(a) => (
                                match &a.value {
                                    EditExpr::String(s) => Some(s.value().to_string()),
                                    _ => None,
                                },
                                span_pos(&spec.source, a.span()),
                            ),
                            None => (
                                Some("service".to_string()),
                                span_pos(&spec.source, b.span()),
                            ),
                        })
                    }
                    _ => None,
                })
            }),
    };
    match found {
        Some((Some(kind), pos)) if kind != "batch" => {
            ctx.push(Diagnostic {
                hint: Some("set type = \"batch\" in the job block".to_string()),
                ..diag(
                    &spec.file,
                    pos,
                    "type",
                    format!("a hook's job must be a batch job (it runs to completion), not {kind}"),
                )
            });
            false
        }
        _ => true,
    }
}

const FS_FUNCTIONS: &[&str] = &[
    "file",
    "fileexists",
    "fileset",
    "filebase64",
    "templatefile",
    "abspath",
    "pathexpand",
];

fn body_fs_calls(body: &Body, out: &mut Vec<(String, Option<std::ops::Range<usize>>)>) {
    for s in body.iter() {
        match s {
            Structure::Attribute(a) => expr_fs_calls(&a.value, out),
            Structure::Block(b) => body_fs_calls(&b.body, out),
        }
    }
}

fn template_fs_calls(
    t: &hcl::edit::template::Template,
    out: &mut Vec<(String, Option<std::ops::Range<usize>>)>,
) {
    for e in t.iter() {
        if let hcl::edit::template::Element::Interpolation(i) = e {
            expr_fs_calls(&i.expr, out);
        }
    }
}

fn expr_fs_calls(expr: &EditExpr, out: &mut Vec<(String, Option<std::ops::Range<usize>>)>) {
    match expr {
        EditExpr::FuncCall(f) => {
            let name = f.name.name.as_str();
            if f.name.namespace.is_empty() && FS_FUNCTIONS.contains(&name) {
                out.push((name.to_string(), expr.span()));
            }
            f.args.iter().for_each(|a| expr_fs_calls(a, out));
        }
        EditExpr::Array(a) => a.iter().for_each(|e| expr_fs_calls(e, out)),
        EditExpr::Object(o) => o.iter().for_each(|(_, v)| expr_fs_calls(v.expr(), out)),
        EditExpr::Parenthesis(p) => expr_fs_calls(p.inner(), out),
        EditExpr::Conditional(c) => {
            expr_fs_calls(&c.cond_expr, out);
            expr_fs_calls(&c.true_expr, out);
            expr_fs_calls(&c.false_expr, out);
        }
        EditExpr::StringTemplate(t) => template_fs_calls(t, out),
        EditExpr::HeredocTemplate(h) => template_fs_calls(&h.template, out),
        _ => {}
    }
}

/// A construct of another templating tool found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// Byte offset in the file.
    pub offset: usize,
    /// The text matched.
    pub text: String,
    /// The tool it belongs to.
    pub tool: &'static str,
}

static LEVANT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\[\[-?\s*(?:\.|\$|(?:if|else|end|range|with|template|define|block|env|consulKey\w*|fileContents|loop|parse\w+|replace|timeNow\w*|toLower|toUpper|add|subtract|multiply|divide|modulo|include|quote|sprig_\w+)\b)[^\]]*\]\]",
    )
    .unwrap_or_else(|_| unreachable!("literal regex"))
});
static JINJA_STMT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\{%-?\s*[a-z]\w*[^%]*%\}").unwrap_or_else(|_| unreachable!("literal regex"))
});
static JINJA_EXPR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\{\{-?\s*([a-z_][A-Za-z0-9_]*)(?:\.[A-Za-z_]\w*)*\s*(?:\|[^}]*)?-?\}\}")
        .unwrap_or_else(|_| unreachable!("literal regex"))
});
static TF_DIRECTIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"%\{~?\s*(?:if|for|else|endif|endfor)\b[^}]*\}")
        .unwrap_or_else(|_| unreachable!("literal regex"))
});
static TF_PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{\s*([a-z_][a-z0-9_]*)\s*\}").unwrap_or_else(|_| unreachable!("literal regex"))
});

/// consul-template words that look like a bare Jinja variable inside `{{ }}`.
const CONSUL_TEMPLATE_WORDS: &[&str] = &[
    "end",
    "else",
    "timestamp",
    "node",
    "nodes",
    "services",
    "datacenters",
    "key",
    "keyOrDefault",
    "env",
    "secret",
    "secrets",
    "service",
    "with",
    "range",
    "if",
    "define",
    "template",
];

fn scan(text: &str, base: usize, directives: bool, out: &mut Vec<Finding>) {
    let mut add = |m: regex::Match<'_>, tool: &'static str| {
        out.push(Finding {
            offset: base + m.start(),
            text: m.as_str().to_string(),
            tool,
        })
    };
    for m in LEVANT.find_iter(text) {
        add(m, "Levant");
    }
    for m in JINJA_STMT.find_iter(text) {
        add(m, "Jinja");
    }
    for c in JINJA_EXPR.captures_iter(text) {
        if let (Some(m), Some(word)) = (c.get(0), c.get(1))
            && !CONSUL_TEMPLATE_WORDS.contains(&word.as_str())
        {
            add(m, "Jinja");
        }
    }
    if directives {
        for m in TF_DIRECTIVE.find_iter(text) {
            add(m, "Terraform templatefile");
        }
    }
    for m in TF_PLACEHOLDER.find_iter(text) {
        // `$${x}` is HCL's escape for a literal `${x}`: fine as it is.
        if m.start() > 0 && text.as_bytes().get(m.start() - 1) == Some(&b'$') {
            continue;
        }
        add(m, "Terraform templatefile");
    }
}

/// Constructs of Levant, Jinja or Terraform's `templatefile` in a jobspec. With a parsed body only
/// string values outside `template { data = ... }` are looked at (consul-template text there is
/// Nomad's own); without one (the HCL did not parse) every non-comment line is.
pub(crate) fn templating_findings(text: &str, body: Option<&Body>) -> Vec<Finding> {
    let mut out = Vec::new();
    match body {
        None => {
            let mut offset = 0;
            for line in text.split_inclusive('\n') {
                let t = line.trim_start();
                if !(t.starts_with('#') || t.starts_with("//")) {
                    scan(line, offset, true, &mut out);
                }
                offset += line.len();
            }
        }
        Some(body) => {
            let mut ranges = Vec::new();
            string_ranges(body, false, &mut ranges);
            for r in ranges {
                if let Some(slice) = text.get(r.clone()) {
                    scan(slice, r.start, false, &mut out);
                }
            }
        }
    }
    out.sort_by_key(|f| f.offset);
    out.dedup_by_key(|f| f.offset);
    out
}

fn string_ranges(body: &Body, in_template: bool, out: &mut Vec<std::ops::Range<usize>>) {
    for s in body.iter() {
        match s {
            Structure::Attribute(a) => {
                if in_template && a.key.as_str() == "data" {
                    continue;
                }
                expr_ranges(&a.value, out);
            }
            Structure::Block(b) => string_ranges(&b.body, b.ident.as_str() == "template", out),
        }
    }
}

fn expr_ranges(expr: &EditExpr, out: &mut Vec<std::ops::Range<usize>>) {
    match expr {
        EditExpr::String(_) | EditExpr::StringTemplate(_) | EditExpr::HeredocTemplate(_) => {
            out.extend(expr.span());
        }
        EditExpr::Array(a) => a.iter().for_each(|e| expr_ranges(e, out)),
        EditExpr::Object(o) => o.iter().for_each(|(_, v)| expr_ranges(v.expr(), out)),
        EditExpr::FuncCall(f) => f.args.iter().for_each(|e| expr_ranges(e, out)),
        _ => {}
    }
}

fn report_templating(ctx: &mut Ctx, path: &str, text: &str, findings: &[Finding]) {
    for f in findings.iter().take(5) {
        let what_to_do = match f.tool {
            "Levant" => {
                "render it with `levant render` and commit the output, or use HCL2 variables (`variable \"x\" {}`, `${var.x}`, set in app.yaml `variables:`)"
            }
            "Jinja" => {
                "render it with its Jinja tool and commit the output, or use HCL2 variables (`variable \"x\" {}`, `${var.x}`, set in app.yaml `variables:`)"
            }
            _ => {
                "this looks like a Terraform templatefile() template: declare `variable \"x\" {}` in the jobspec, write `${var.x}`, and set x in app.yaml `variables:`"
            }
        };
        ctx.push(Diagnostic {
            hint: Some(what_to_do.to_string()),
            ..diag(
                path,
                line_col(text, f.offset),
                "",
                format!(
                    "`{}` is {} syntax: this file needs another templating layer before Nomad can read it",
                    f.text.trim(),
                    f.tool
                ),
            )
        });
    }
}

type YamlVars = Vec<(String, serde_json::Value, usize, usize)>;

fn job_variables(
    ctx: &mut Ctx,
    rev: &Revision,
    jobspec: &str,
    info: &JobInfo,
    var_files: &[(String, &Node)],
    yaml_vars: &YamlVars,
    field: &str,
) -> Option<String> {
    let before = ctx.diags.len();
    let declared: Vec<&str> = info.declared.iter().map(|(n, _, _)| n.as_str()).collect();
    let mut merged: Vec<(String, serde_json::Value)> = Vec::new();
    let mut set = |name: &str, value: serde_json::Value| {
        if let Some(slot) = merged.iter_mut().find(|(n, _)| n == name) {
            slot.1 = value;
        } else {
            merged.push((name.to_string(), value));
        }
    };
    let jobspec_dir = jobspec.rsplit_once('/').map_or("", |(d, _)| d);
    // Var files: the listed ones, else every `*.vars.hcl` beside the jobspec (those may serve
    // several jobspecs, so a variable this one does not declare is skipped there).
    let files: Vec<(String, Option<&Node>)> = if var_files.is_empty() {
        rev.paths_under(jobspec_dir)
            .filter(|p| {
                p.ends_with(".vars.hcl") && p.rsplit_once('/').map_or("", |(d, _)| d) == jobspec_dir
            })
            .map(|p| (p.to_string(), None))
            .collect()
    } else {
        var_files
            .iter()
            .filter_map(|(rel, node)| match resolve(jobspec_dir, rel) {
                Ok(p) => Some((p, Some(*node))),
                Err(e) => {
                    ctx.err(node, &join(field, "var_files"), e);
                    None
                }
            })
            .collect()
    };
    for (path, node) in files {
        let text = match rev.file(&path) {
            Ok(bytes) => String::from_utf8(bytes.into_owned()).ok(),
            // A var file found beside the jobspec is read like a listed one: a size or read
            // error is reported, not skipped.
            Err(e @ (FileError::TooLarge { .. } | FileError::Read { .. })) if node.is_none() => {
                ctx.push(diag(&path, (0, 0), "", e.to_string()));
                continue;
            }
            Err(_) => None,
        };
        let Some(text) = text else {
            if let Some(node) = node {
                ctx.err(
                    node,
                    &join(field, "var_files"),
                    format!("var file {path} does not exist or is not text"),
                );
            }
            continue;
        };
        let body = match hcl::edit::parser::parse_body(&text) {
            Ok(b) => b,
            Err(e) => {
                ctx.push(hcl_parse_error(&path, &e, None));
                continue;
            }
        };
        for s in body.iter() {
            match s {
                Structure::Attribute(a) => {
                    let name = a.key.as_str();
                    let pos = span_pos(&text, a.span());
                    if !declared.contains(&name) {
                        if node.is_some() {
                            ctx.push(Diagnostic {
                                hint: Some(undeclared_hint(name, &declared)),
                                ..diag(
                                    &path,
                                    pos,
                                    name,
                                    format!("variable \"{name}\" is not declared in {jobspec}"),
                                )
                            });
                        }
                        continue;
                    }
                    match literal(&a.value) {
                        Ok(v) => set(name, v),
                        Err(e) => ctx.push(diag(&path, pos, name, e)),
                    }
                }
                Structure::Block(b) => ctx.push(diag(
                    &path,
                    span_pos(&text, b.span()),
                    b.ident.as_str(),
                    "a var file holds only `name = value` lines".to_string(),
                )),
            }
        }
    }
    for (name, value, line, col) in yaml_vars {
        if !declared.contains(&name.as_str()) {
            ctx.push(Diagnostic {
                hint: Some(undeclared_hint(name, &declared)),
                ..diag(
                    &ctx.file.clone(),
                    (*line, *col),
                    &format!("{field}.variables.{name}"),
                    format!(
                        "variable \"{name}\" is not declared in {jobspec} (Nomad rejects undeclared variables)"
                    ),
                )
            });
            continue;
        }
        set(name, value.clone());
    }
    for (name, has_default, line) in &info.declared {
        if !has_default && !merged.iter().any(|(n, _)| n == name) {
            ctx.push(Diagnostic {
                hint: Some(format!(
                    "set it under nomad_job.variables in {} or in a var file",
                    ctx.file
                )),
                ..diag(
                    jobspec,
                    (*line, 1),
                    &format!("variable.{name}"),
                    format!("variable \"{name}\" has no default and no value is set"),
                )
            });
        }
    }
    if ctx.diags.len() > before {
        return None;
    }
    Some(
        merged
            .iter()
            .map(|(n, v)| format!("{n} = {}\n", hcl_value(v)))
            .collect(),
    )
}

fn undeclared_hint(name: &str, declared: &[&str]) -> String {
    match super::check::suggest(name, declared) {
        Some(s) => format!("did you mean \"{s}\"?"),
        None if declared.is_empty() => {
            "the jobspec declares no variables; add a `variable` block".to_string()
        }
        None => format!("declared variables: {}", declared.join(", ")),
    }
}

/// A JSON value written as an HCL2 literal (strings quoted and escaped, `${`/`%{` doubled so
/// Nomad reads them literally).
pub(crate) fn hcl_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "null".to_string(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => hcl_string(s),
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items.iter().map(hcl_value).collect::<Vec<_>>().join(", ")
        ),
        serde_json::Value::Object(map) => format!(
            "{{ {} }}",
            map.iter()
                .map(|(k, v)| format!("{} = {}", hcl_string(k), hcl_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn hcl_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------------------
// CSI volumes

const VOLUME_HCL_KEYS: &[&str] = &[
    "id",
    "name",
    "namespace",
    "type",
    "plugin_id",
    "external_id",
    "capacity_min",
    "capacity_max",
    "capability",
    "mount_options",
    "parameters",
    "secrets",
    "context",
    "topology_request",
    "snapshot_id",
    "clone_id",
];

static VAR_REF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{\s*var\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}|\bvar\.([A-Za-z_][A-Za-z0-9_-]*)")
        .unwrap_or_else(|_| unreachable!("literal regex"))
});
static ONE_LINE_BLOCK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^(\s*[A-Za-z_][\w-]*(?:\s+"[^"]*")*\s*)\{(.*)\}\s*$"#)
        .unwrap_or_else(|_| unreachable!("literal regex"))
});
static HCL1_ATTR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"([A-Za-z_][\w-]*)\s*=\s*("(?:[^"\\]|\\.)*"|\[[^\]]*\]|[^\s,]+)\s*,?"#)
        .unwrap_or_else(|_| unreachable!("literal regex"))
});

/// Whether byte `at` of `line` is inside a double-quoted string.
fn in_string(line: &str, at: usize) -> bool {
    let mut inside = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if i >= at {
            break;
        }
        match c {
            '\\' if inside => escaped = !escaped,
            '"' if !escaped => inside = !inside,
            _ => escaped = false,
        }
    }
    inside
}

/// Rewrite a Nomad volume spec into HCL2 that hcl-rs reads: `var.x` substituted from app.yaml,
/// and HCL1's one-line blocks with several attributes split into lines. Returns the text and,
/// per output line, its line in the original file.
pub(crate) fn normalize_volume_hcl(
    text: &str,
    vars: &BTreeMap<String, serde_json::Value>,
) -> (String, Vec<usize>, Vec<(String, usize, usize)>) {
    let mut out = String::new();
    let mut map = Vec::new();
    let mut missing = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let t = raw.trim_start();
        if t.starts_with('#') || t.starts_with("//") {
            out.push_str(raw);
            out.push('\n');
            map.push(lineno);
            continue;
        }
        let mut line = String::new();
        let mut last = 0;
        for c in VAR_REF.captures_iter(raw) {
            let Some(m) = c.get(0) else { continue };
            let interpolated = c.get(1).is_some();
            let Some(name) = c.get(1).or(c.get(2)).map(|n| n.as_str()) else {
                continue;
            };
            let quoted = in_string(raw, m.start());
            if !interpolated && quoted {
                continue; // a literal "var.x" inside a string
            }
            line.push_str(&raw[last..m.start()]);
            match vars.get(name) {
                Some(v) if quoted => {
                    let s = manifest::json_to_text(v);
                    let lit = hcl_string(&s);
                    line.push_str(&lit[1..lit.len() - 1]);
                }
                Some(v) => line.push_str(&hcl_value(v)),
                None => {
                    missing.push((name.to_string(), lineno, m.start() + 1));
                    line.push_str(if quoted { "" } else { "null" });
                }
            }
            last = m.end();
        }
        line.push_str(&raw[last..]);
        if let Some(c) = ONE_LINE_BLOCK.captures(&line) {
            let head = c.get(1).map_or("", |m| m.as_str()).to_string();
            let inner = c.get(2).map_or("", |m| m.as_str()).to_string();
            let attrs: Vec<String> = HCL1_ATTR
                .captures_iter(&inner)
                .filter_map(|a| Some(format!("{} = {}", a.get(1)?.as_str(), a.get(2)?.as_str())))
                .collect();
            if attrs.len() > 1 {
                out.push_str(&head);
                out.push_str("{\n");
                map.push(lineno);
                for a in attrs {
                    out.push_str("  ");
                    out.push_str(&a);
                    out.push('\n');
                    map.push(lineno);
                }
                out.push_str("}\n");
                map.push(lineno);
                continue;
            }
        }
        out.push_str(&line);
        out.push('\n');
        map.push(lineno);
    }
    (out, map, missing)
}

/// Load a volume from a `nomad volume create/register` spec file.
pub(crate) fn csi_volume_file(
    ctx: &mut Ctx,
    rev: &Revision,
    dir: &str,
    namespace: &str,
    file_node: &Node,
    vars: Option<&Node>,
    field: &str,
) -> Option<(CsiVolumeSpec, Origin)> {
    let var_list = vars
        .map(|n| manifest::variables_map(ctx, n, &join(field, "variables")))
        .unwrap_or_default();
    let vars: BTreeMap<String, serde_json::Value> = var_list
        .iter()
        .map(|(k, v, _, _)| (k.clone(), v.clone()))
        .collect();
    let (path, text) = read(ctx, rev, dir, file_node, &join(field, "file"))?;
    let before = ctx.diags.len();
    // A variable the file never references is most likely a typo.
    let referenced: Vec<String> = VAR_REF
        .captures_iter(&text)
        .filter_map(|c| c.get(1).or(c.get(2)).map(|m| m.as_str().to_string()))
        .collect();
    for (name, _, line, col) in &var_list {
        if !referenced.contains(name) {
            let refs: Vec<&str> = referenced.iter().map(String::as_str).collect();
            ctx.push(Diagnostic {
                hint: super::check::suggest(name, &refs).map(|s| format!("did you mean \"{s}\"?")),
                ..diag(
                    &ctx.file.clone(),
                    (*line, *col),
                    &format!("{field}.variables.{name}"),
                    format!("{path} does not use var.{name}"),
                )
            });
        }
    }
    let (norm, map, missing) = normalize_volume_hcl(&text, &vars);
    for (name, line, col) in &missing {
        ctx.push(Diagnostic {
            hint: Some(format!(
                "Nomad volume specs have no variables: set {name} under {field}.variables in {}",
                ctx.file
            )),
            ..diag(&path, (*line, *col), "", format!("var.{name} has no value"))
        });
    }
    let body = match hcl::edit::parser::parse_body(&norm) {
        Ok(b) => b,
        Err(e) => {
            ctx.push(hcl_parse_error(&path, &e, Some(&map)));
            return None;
        }
    };
    let pos = |span: Option<std::ops::Range<usize>>| {
        let (l, c) = span_pos(&norm, span);
        (map.get(l.saturating_sub(1)).copied().unwrap_or(l), c)
    };
    let mut strings: BTreeMap<&str, String> = BTreeMap::new();
    let mut caps = Vec::new();
    let mut mount_options = None;
    let mut maps: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
    let mut sizes: BTreeMap<&str, u64> = BTreeMap::new();
    for s in body.iter() {
        let (key, span) = match s {
            Structure::Attribute(a) => (a.key.as_str(), a.span()),
            Structure::Block(b) => (b.ident.as_str(), b.span()),
        };
        let at = pos(span);
        let Some(key) = VOLUME_HCL_KEYS.iter().find(|k| **k == key).copied() else {
            ctx.push(Diagnostic {
                hint: Some(manifest::hint(key, VOLUME_HCL_KEYS)),
                ..diag(
                    &path,
                    at,
                    key,
                    format!("unknown key \"{key}\" in a volume spec"),
                )
            });
            continue;
        };
        match (key, s) {
            ("topology_request", _) => ctx.push(diag(
                &path,
                at,
                key,
                "topology_request is not supported by drover yet".to_string(),
            )),
            ("capability", Structure::Block(b)) => {
                let m = block_strings(
                    ctx,
                    &path,
                    &b.body,
                    &pos,
                    &["access_mode", "attachment_mode"],
                );
                match (m.get("access_mode"), m.get("attachment_mode")) {
                    (Some(a), Some(t)) => caps.push(VolumeCapability {
                        access_mode: a.clone(),
                        attachment_mode: t.clone(),
                    }),
                    _ => ctx.push(diag(
                        &path,
                        at,
                        key,
                        "a capability block needs access_mode and attachment_mode".to_string(),
                    )),
                }
            }
            ("mount_options", Structure::Block(b)) => {
                let mut fs_type = String::new();
                let mut mount_flags = Vec::new();
                for a in b.body.attributes() {
                    let apos = pos(a.span());
                    match (a.key.as_str(), literal(&a.value)) {
                        ("fs_type", Ok(serde_json::Value::String(s))) => fs_type = s,
                        ("mount_flags", Ok(serde_json::Value::Array(items))) => {
                            mount_flags = items.iter().map(manifest::json_to_text).collect()
                        }
                        (k @ ("fs_type" | "mount_flags"), _) => {
                            ctx.push(diag(&path, apos, k, format!("{k} has the wrong type")))
                        }
                        (k, _) => ctx.push(Diagnostic {
                            hint: Some(manifest::hint(k, &["fs_type", "mount_flags"])),
                            ..diag(
                                &path,
                                apos,
                                k,
                                format!("unknown key \"{k}\" in mount_options"),
                            )
                        }),
                    }
                }
                mount_options = Some(MountOptions {
                    fs_type,
                    mount_flags,
                });
            }
            ("parameters" | "secrets" | "context", Structure::Block(b)) => {
                let m = block_strings(ctx, &path, &b.body, &pos, &[]);
                maps.insert(key, m);
            }
            ("parameters" | "secrets" | "context", Structure::Attribute(a)) => {
                match literal(&a.value) {
                    Ok(serde_json::Value::Object(o)) => {
                        maps.insert(
                            key,
                            o.iter()
                                .map(|(k, v)| (k.clone(), manifest::json_to_text(v)))
                                .collect(),
                        );
                    }
                    _ => ctx.push(diag(&path, at, key, format!("{key} must be a map"))),
                }
            }
            ("capacity_min" | "capacity_max", Structure::Attribute(a)) => match literal(&a.value) {
                Ok(serde_json::Value::String(s)) => match super::check::parse_size(&s) {
                    Ok(n) => {
                        sizes.insert(key, n);
                    }
                    Err(e) => ctx.push(diag(&path, at, key, e)),
                },
                Ok(serde_json::Value::Number(n)) if n.as_u64().is_some() => {
                    sizes.insert(key, n.as_u64().unwrap_or_default());
                }
                _ => ctx.push(diag(
                    &path,
                    at,
                    key,
                    format!("{key} must be a size like \"1GiB\""),
                )),
            },
            (_, Structure::Attribute(a)) if !matches!(key, "capability" | "mount_options") => {
                match literal(&a.value) {
                    Ok(serde_json::Value::String(s)) => {
                        strings.insert(key, s);
                    }
                    Ok(serde_json::Value::Null) => {} // an unset variable, reported above
                    Ok(_) => ctx.push(diag(&path, at, key, format!("{key} must be a string"))),
                    Err(e) => ctx.push(diag(&path, at, key, e)),
                }
            }
            _ => ctx.push(diag(
                &path,
                at,
                key,
                format!("{key} is written the wrong way (block vs. attribute)"),
            )),
        }
    }
    if let Some(t) = strings.get("type")
        && t != "csi"
    {
        ctx.push(diag(
            &path,
            (0, 0),
            "type",
            format!("volume type \"{t}\" is not supported; drover manages type = \"csi\" volumes"),
        ));
    }
    check_namespace(
        ctx,
        &path,
        1,
        strings.get("namespace").map(String::as_str),
        namespace,
    );
    for required in ["id", "plugin_id"] {
        if !strings.contains_key(required) {
            ctx.push(diag(
                &path,
                (0, 0),
                required,
                format!("{required} is required"),
            ));
        }
    }
    if ctx.diags.len() > before {
        return None;
    }
    let id = strings.get("id").cloned().unwrap_or_default();
    let external_id = strings.get("external_id").cloned();
    let spec = CsiVolumeSpec {
        name: strings.get("name").cloned().unwrap_or_else(|| id.clone()),
        id,
        namespace: namespace.to_string(),
        plugin_id: strings.get("plugin_id").cloned().unwrap_or_default(),
        mode: if external_id.is_some() {
            VolumeMode::Register
        } else {
            VolumeMode::Create
        },
        external_id,
        capacity_min: sizes.get("capacity_min").copied(),
        capacity_max: sizes.get("capacity_max").copied(),
        capabilities: caps,
        mount_options,
        parameters: maps.remove("parameters").unwrap_or_default(),
        secrets: maps
            .remove("secrets")
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, SecretString(v)))
            .collect(),
        context: maps.remove("context").unwrap_or_default(),
        snapshot_id: strings.get("snapshot_id").cloned(),
        clone_id: strings.get("clone_id").cloned(),
        prevent_destroy: false,
    };
    let problems = manifest::volume_problems(&spec);
    for p in &problems {
        ctx.push(diag(&path, (1, 1), "", p.clone()));
    }
    problems.is_empty().then_some((
        spec,
        Origin {
            file: path,
            line: 1,
        },
    ))
}

fn block_strings(
    ctx: &mut Ctx,
    path: &str,
    body: &Body,
    pos: &dyn Fn(Option<std::ops::Range<usize>>) -> (usize, usize),
    allowed: &[&str],
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for s in body.iter() {
        match s {
            Structure::Attribute(a) => {
                let k = a.key.as_str();
                if !allowed.is_empty() && !allowed.contains(&k) {
                    ctx.push(Diagnostic {
                        hint: Some(manifest::hint(k, allowed)),
                        ..diag(path, pos(a.span()), k, format!("unknown key \"{k}\""))
                    });
                    continue;
                }
                match literal(&a.value) {
                    Ok(serde_json::Value::Null) => {}
                    Ok(v) => {
                        out.insert(k.to_string(), manifest::json_to_text(&v));
                    }
                    Err(e) => ctx.push(diag(path, pos(a.span()), k, e)),
                }
            }
            Structure::Block(b) => ctx.push(diag(
                path,
                pos(b.span()),
                b.ident.as_str(),
                "unexpected block here".to_string(),
            )),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Consul config entries

const CONFIG_ENTRY_KINDS: &[&str] = &[
    "service-defaults",
    "proxy-defaults",
    "service-router",
    "service-splitter",
    "service-resolver",
    "service-intentions",
    "ingress-gateway",
    "terminating-gateway",
    "api-gateway",
    "http-route",
    "tcp-route",
    "inline-certificate",
    "file-system-certificate",
    "mesh",
    "exported-services",
    "sameness-group",
    "jwt-provider",
    "control-plane-request-limit",
];

/// Load `consul_config_entry:` — `{ file: x.hcl | x.json }` or the entry inline.
pub(crate) fn config_entry(
    ctx: &mut Ctx,
    rev: &Revision,
    dir: &str,
    node: &Node,
    field: &str,
) -> Option<(ConfigEntrySpec, Option<Origin>)> {
    let Value::Map(pairs) = &node.value else {
        ctx.err(
            node,
            field,
            format!("expected a mapping, found {}", node.value.type_name()),
        );
        return None;
    };
    let has_file = pairs.iter().any(|(k, _)| k.key_text() == "file");
    if has_file {
        let f = ctx.fields(node, field, &["file"])?;
        let file_node = f.get("file")?;
        let (path, text) = read(ctx, rev, dir, file_node, &join(field, "file"))?;
        let raw = if path.ends_with(".json") || text.trim_start().starts_with('{') {
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(v) => v,
                Err(e) => {
                    ctx.push(diag(
                        &path,
                        (e.line(), e.column()),
                        "",
                        format!("invalid JSON: {e}"),
                    ));
                    return None;
                }
            }
        } else {
            let body = match hcl::edit::parser::parse_body(&text) {
                Ok(b) => b,
                Err(e) => {
                    ctx.push(hcl_parse_error(&path, &e, None));
                    return None;
                }
            };
            match body_to_json(&body) {
                Ok(v) => v,
                Err((span, e)) => {
                    ctx.push(diag(&path, span_pos(&text, span), "", e));
                    return None;
                }
            }
        };
        let before = ctx.diags.len();
        let spec = entry_from_json(raw, &mut |message, hint| {
            ctx.push(Diagnostic {
                hint,
                ..diag(&path, (1, 1), "", message)
            })
        });
        if ctx.diags.len() > before {
            return None;
        }
        return spec.map(|s| {
            (
                s,
                Some(Origin {
                    file: path,
                    line: 1,
                }),
            )
        });
    }
    let before = ctx.diags.len();
    let spec = entry_from_json(node.to_json(), &mut |message, hint| {
        ctx.err_hint(node, field, message, hint)
    });
    if ctx.diags.len() > before {
        return None;
    }
    spec.map(|s| (s, None))
}

fn entry_from_json(
    raw: serde_json::Value,
    report: &mut dyn FnMut(String, Option<String>),
) -> Option<ConfigEntrySpec> {
    let body = pascal_keys(raw);
    let Some(obj) = body.as_object() else {
        report("a config entry must be an object".to_string(), None);
        return None;
    };
    let kind = obj.get("Kind").and_then(serde_json::Value::as_str);
    let name = obj.get("Name").and_then(serde_json::Value::as_str);
    let Some(kind) = kind.filter(|k| !k.is_empty()) else {
        report("a config entry needs Kind".to_string(), None);
        return None;
    };
    if !CONFIG_ENTRY_KINDS.contains(&kind) {
        report(
            format!("unknown config entry kind \"{kind}\""),
            super::check::suggest(kind, CONFIG_ENTRY_KINDS)
                .map(|s| format!("did you mean \"{s}\"?")),
        );
        return None;
    }
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        report("a config entry needs Name".to_string(), None);
        return None;
    };
    Some(ConfigEntrySpec {
        kind: kind.to_string(),
        name: name.to_string(),
        body: body.clone(),
    })
}

/// An HCL body as `consul config write` reads it: attributes as values, unlabelled blocks as
/// objects (repeated blocks as a list).
fn body_to_json(
    body: &Body,
) -> Result<serde_json::Value, (Option<std::ops::Range<usize>>, String)> {
    let mut out = serde_json::Map::new();
    for s in body.iter() {
        match s {
            Structure::Attribute(a) => {
                let v = literal(&a.value).map_err(|e| (a.span(), e))?;
                out.insert(a.key.as_str().to_string(), v);
            }
            Structure::Block(b) => {
                if !b.labels.is_empty() {
                    return Err((
                        b.span(),
                        "config entries take no labelled blocks".to_string(),
                    ));
                }
                let v = body_to_json(&b.body)?;
                let key = b.ident.as_str().to_string();
                match out.get_mut(&key) {
                    Some(serde_json::Value::Array(list)) => list.push(v),
                    Some(prev) => {
                        let first = prev.take();
                        *prev = serde_json::Value::Array(vec![first, v]);
                    }
                    None => {
                        out.insert(key, v);
                    }
                }
            }
        }
    }
    Ok(serde_json::Value::Object(out))
}

const ACRONYMS: &[(&str, &str)] = &[
    ("http", "HTTP"),
    ("tls", "TLS"),
    ("id", "ID"),
    ("sni", "SNI"),
    ("acl", "ACL"),
    ("jwt", "JWT"),
    ("uri", "URI"),
    ("url", "URL"),
    ("ip", "IP"),
    ("dns", "DNS"),
    ("grpc", "GRPC"),
    ("ttl", "TTL"),
];

/// `local_request_timeout_ms` → `LocalRequestTimeoutMs`; keys already holding a capital letter
/// are kept; user maps (`Meta`) are left alone.
pub(crate) fn pascal_case(key: &str) -> String {
    if key.chars().any(|c| c.is_ascii_uppercase())
        || !key.contains(|c: char| c.is_ascii_lowercase())
    {
        return key.to_string();
    }
    key.split(['_', '-'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            if let Some((_, up)) = ACRONYMS.iter().find(|(lower, _)| *lower == w) {
                return up.to_string();
            }
            let mut cs = w.chars();
            match cs.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + cs.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn pascal_keys(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = pascal_case(&k);
                    let v = if key == "Meta" { v } else { pascal_keys(v) };
                    (key, v)
                })
                .collect(),
        ),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(pascal_keys).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_inside_the_repo_only() {
        assert_eq!(
            resolve("apps/web", "job.nomad.hcl").unwrap(),
            "apps/web/job.nomad.hcl"
        );
        assert_eq!(
            resolve("apps/web", "../shared/x.hcl").unwrap(),
            "apps/shared/x.hcl"
        );
        assert_eq!(resolve("apps/web", "../../x.hcl").unwrap(), "x.hcl");
        assert!(
            resolve("apps/web", "../../../x.hcl")
                .unwrap_err()
                .contains("escapes")
        );
        assert!(resolve("apps/web", "/etc/passwd").is_err());
    }

    #[test]
    fn hcl_values_quote_and_escape() {
        let v = serde_json::json!({"a": [1, true, "x\"y"], "b": "${not_interp}"});
        assert_eq!(
            hcl_value(&v),
            r#"{ "a" = [1, true, "x\"y"], "b" = "$${not_interp}" }"#
        );
        assert_eq!(
            hcl_value(&serde_json::json!("line\nnext")),
            r#""line\nnext""#
        );
        // The rendered literal reads back as the same value.
        let body = format!("x = {}\n", hcl_value(&v));
        let parsed: hcl::Value = hcl::from_str(&body).unwrap();
        assert_eq!(serde_json::to_value(parsed).unwrap()["x"], v);
    }

    #[test]
    fn pascal_case_keys() {
        assert_eq!(
            pascal_case("local_request_timeout_ms"),
            "LocalRequestTimeoutMs"
        );
        assert_eq!(pascal_case("kind"), "Kind");
        assert_eq!(pascal_case("http"), "HTTP");
        assert_eq!(pascal_case("ConnectTimeout"), "ConnectTimeout");
        let v = pascal_keys(
            serde_json::json!({"meta": {"my_key": "x"}, "upstream_config": {"overrides": [{"name": "a"}]}}),
        );
        assert_eq!(
            v,
            serde_json::json!({"Meta": {"my_key": "x"}, "UpstreamConfig": {"Overrides": [{"Name": "a"}]}})
        );
    }

    #[test]
    fn one_line_hcl1_blocks_are_split() {
        let (text, map, missing) = normalize_volume_hcl(
            "id = \"v\"\ncapability { access_mode = \"single-node-writer\" attachment_mode = \"file-system\" }\nx = var.a\n",
            &BTreeMap::new(),
        );
        assert!(hcl::edit::parser::parse_body(&text).is_ok(), "{text}");
        assert_eq!(map.iter().filter(|l| **l == 2).count(), 4);
        assert_eq!(missing, vec![("a".to_string(), 3, 5)]);
    }

    #[test]
    fn templating_is_found_outside_template_data_only() {
        let consul_template = "job \"a\" {\n  group \"g\" {\n    task \"t\" {\n      template {\n        data = <<EOF\n{{ with secret \"x\" }}{{ .Data.data.k }}{{ end }}\n[[runners]]\n${SHELL_VAR}\nEOF\n      }\n    }\n  }\n}\n";
        let body = hcl::edit::parser::parse_body(consul_template).unwrap();
        assert!(templating_findings(consul_template, Some(&body)).is_empty());
        let levant = "job \"a\" {\n  meta { image = \"[[ .image ]]\" }\n}\n";
        let body = hcl::edit::parser::parse_body(levant).unwrap();
        let f = templating_findings(levant, Some(&body));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].tool, "Levant");
        assert_eq!(line_col(levant, f[0].offset), (2, 19));
        let jinja = "job \"a\" {\n{% for x in xs %}\n}\n";
        assert!(hcl::edit::parser::parse_body(jinja).is_err());
        assert_eq!(templating_findings(jinja, None)[0].tool, "Jinja");
        let tf = "job \"a\" {\n  meta { image = \"${image}\" }\n  m = \"$${escaped}\"\n}\n";
        let body = hcl::edit::parser::parse_body(tf).unwrap();
        let f = templating_findings(tf, Some(&body));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].tool, "Terraform templatefile");
    }
}
