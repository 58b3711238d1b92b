//! HCL2 jobspec → `api.Job` JSON, following Nomad's jobspec2 rules (`POST /v1/jobs/parse`).
//!
//! Its own crate so that both sides use it: the devstack serves `/v1/jobs/parse` with it, and
//! drover's `validate` checks jobspecs offline with it. It depends on nothing of either.
//!
//! Syntax comes from `hcl-edit` (spans kept for diagnostics); evaluation, the block schemas and
//! jobspec2's normalisation are ours. Output is the uncanonicalized `api.Job`: every Go field
//! present, unset pointers `null`.

mod duration;
mod eval;
#[cfg(any(test, feature = "test-support"))]
pub mod examples;
mod funcs;
mod funcs_more;
pub mod schema;

pub use duration::parse_go_duration;

use std::ops::Range;

use hcl::edit::Span;
use hcl::edit::structure::{Block, Body, Structure};
use serde_json::{Map, Value};

use eval::{Diag, Scope};

/// A parse failure, rendered like Nomad's diagnostics (`input.hcl:12,5-9: Unsupported argument; …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// The diagnostic text, without the `Failed to parse job: ` prefix the endpoint adds.
    pub message: String,
    /// Where the problem starts, for callers that point at the user's own file; `None` where
    /// Nomad gives no position either (an unset variable, a Levant template).
    pub location: Option<Location>,
    /// The message without its position: `Unsupported argument; An argument named …`.
    pub description: String,
}

/// The start of a diagnostic's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Which of the two inputs the position is in.
    pub input: Input,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

/// The two texts [`parse`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The jobspec (`JobHCL`).
    Jobspec,
    /// The var-file body (`Variables`).
    Variables,
}

impl ParseError {
    fn unlocated(description: String) -> Self {
        ParseError {
            message: description.clone(),
            location: None,
            description,
        }
    }
}

/// The file name Nomad's parse endpoint gives the jobspec.
const FILE: &str = "input.hcl";

/// 1-based line and column of a byte offset (columns count characters, like HCL's).
fn line_col(src: &str, off: usize) -> (usize, usize) {
    let mut off = off.min(src.len());
    while !src.is_char_boundary(off) {
        off -= 1;
    }
    let before = &src[..off];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// HCL's range notation: `input.hcl:L,C-C` or `input.hcl:L,C-L,C`.
pub(crate) fn pos_string(src: &str, r: &Range<usize>) -> String {
    let (l1, c1) = line_col(src, r.start);
    let (l2, c2) = line_col(src, r.end.max(r.start));
    if l1 == l2 {
        format!("{FILE}:{l1},{c1}-{c2}")
    } else {
        format!("{FILE}:{l1},{c1}-{l2},{c2}")
    }
}

fn render(src: &str, d: &Diag) -> ParseError {
    render_in(src, Input::Jobspec, d)
}

fn render_in(src: &str, input: Input, d: &Diag) -> ParseError {
    let (line, column) = line_col(src, d.range.start);
    let description = format!("{}; {}", d.summary, d.detail);
    ParseError {
        message: format!("{}: {description}", pos_string(src, &d.range)),
        location: Some(Location {
            input,
            line,
            column,
        }),
        description,
    }
}

fn syntax_error(e: &hcl::edit::parser::Error, input: Input) -> ParseError {
    let loc = e.location();
    let msg = e
        .message()
        .lines()
        .next()
        .unwrap_or("invalid syntax")
        .to_string();
    let description = format!("Invalid syntax; {msg}");
    ParseError {
        message: format!(
            "{FILE}:{},{}-{}: {description}",
            loc.line(),
            loc.column(),
            loc.column() + 1
        ),
        location: Some(Location {
            input,
            line: loc.line(),
            column: loc.column(),
        }),
        description,
    }
}

/// Parse an HCL2 jobspec with an optional HCL2 var-file body into an uncanonicalized `api.Job`.
pub fn parse(hcl: &str, variables: &str) -> Result<Value, ParseError> {
    if hcl.contains("[[") && looks_like_levant(hcl) {
        return Err(ParseError {
            message: format!(
                "{FILE}: this file uses Levant/Nomad Pack `[[ ]]` template markers; render it before parsing"
            ),
            location: None,
            description: "this file uses Levant/Nomad Pack `[[ ]]` template markers; render it before parsing".to_string(),
        });
    }
    let (body, renamed) = parse_body_lenient(hcl).map_err(|e| syntax_error(&e, Input::Jobspec))?;
    let vars_body = if variables.trim().is_empty() {
        Body::new()
    } else {
        hcl::edit::parser::parse_body(variables).map_err(|e| syntax_error(&e, Input::Variables))?
    };

    let mut var_blocks: Vec<&Block> = Vec::new();
    let mut local_blocks: Vec<&Block> = Vec::new();
    let mut job: Option<&Block> = None;
    for st in body.iter() {
        match st {
            Structure::Attribute(a) => {
                let r = a.key.span().unwrap_or(0..0);
                return Err(render(
                    hcl,
                    &Diag::new(
                        r,
                        "Unsupported argument",
                        format!(
                            "An argument named \"{}\" is not expected here.",
                            a.key.value()
                        ),
                    ),
                ));
            }
            Structure::Block(b) => match b.ident.value().as_str() {
                "variable" => var_blocks.push(b),
                "locals" => local_blocks.push(b),
                "job" => {
                    if let Some(prev) = job {
                        let r = b.ident.span().unwrap_or(0..0);
                        let p = prev.ident.span().unwrap_or(0..0);
                        return Err(render(
                            hcl,
                            &Diag::new(
                                r,
                                "Duplicate job block",
                                format!(
                                    "Only one block of type \"job\" is allowed. Previous definition was at {}.",
                                    pos_string(hcl, &p)
                                ),
                            ),
                        ));
                    }
                    job = Some(b);
                }
                other => {
                    let r = b.ident.span().unwrap_or(0..0);
                    return Err(render(
                        hcl,
                        &Diag::new(
                            r,
                            "Unsupported block type",
                            format!("Blocks of type \"{other}\" are not expected here."),
                        ),
                    ));
                }
            },
        }
    }

    let vars = input_variables(hcl, &var_blocks, variables, &vars_body, &renamed)?;
    let locals = eval_locals(hcl, &local_blocks, &vars, &renamed)?;

    let Some(job) = job else {
        let description = "Missing job block; A job block is required".to_string();
        return Err(ParseError {
            message: format!("{FILE}:1,1-1: {description}"),
            location: Some(Location {
                input: Input::Jobspec,
                line: 1,
                column: 1,
            }),
            description,
        });
    };
    let mut sc = Scope {
        text: hcl,
        base: 0,
        vars: &vars,
        locals: &locals,
        iter: Vec::new(),
        locals_ready: true,
        renamed: &renamed,
    };
    schema::block_label_ok(job, 1, &sc).map_err(|d| render(hcl, &d))?;
    let mut out = schema::decode(&job.body, &schema::JOB, &mut sc).map_err(|d| render(hcl, &d))?;
    // An `id` argument wins over the label; the label always names the job by default.
    let label = Value::String(job.labels[0].as_str().to_string());
    if out.get("ID").is_none_or(Value::is_null) {
        out.insert("ID".into(), label.clone());
    }
    if out.get("Name").is_none_or(Value::is_null) {
        out.insert("Name".into(), label);
    }
    let mut job_v = Value::Object(out);
    normalize(&mut job_v);
    Ok(job_v)
}

/// The syntax of a jobspec as Nomad reads it: like `hcl::edit::parser::parse_body`, except that an
/// attribute set twice in one body parses (the second key is renamed in place to a placeholder
/// of the same length), because Nomad accepts that inside a driver `config` block. [`parse`]
/// decides whether the body allows it; use this for what can be read before that (labels).
pub fn parse_jobspec_body(src: &str) -> Result<Body, hcl::edit::parser::Error> {
    parse_body_lenient(src).map(|(body, _)| body)
}

/// Attribute keys renamed so that `hcl-edit` parses a body with a key defined twice: the byte
/// offset of the renamed key and its real name.
pub(crate) type Renamed = Vec<(usize, String)>;

/// Parse a body, tolerating an attribute key defined twice in one body. `hcl-edit` refuses
/// that while parsing, but Nomad decodes a driver `config` body leniently and accepts it
/// (measured on Nomad 2.0.5, api-facts §7), so each redefined key is renamed in place to a
/// placeholder of the same length (positions stay valid) and remembered; the schema decoder
/// resolves it back and refuses it where the jobspec itself defines the attribute.
fn parse_body_lenient(src: &str) -> Result<(Body, Renamed), hcl::edit::parser::Error> {
    const MAX_RENAMES: usize = 10_000;
    let mut text = src.to_string();
    let mut renamed: Renamed = Vec::new();
    let mut counter = 0usize;
    loop {
        let err = match hcl::edit::parser::parse_body(&text) {
            Ok(body) => return Ok((body, renamed)),
            Err(e) => e,
        };
        let off = err.location().offset();
        if !err.message().contains("found redefined attribute")
            || renamed.len() >= MAX_RENAMES
            || !text.is_char_boundary(off)
        {
            return Err(err);
        }
        let len = text[off..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(text.len() - off);
        if len == 0 {
            return Err(err);
        }
        let original = match renamed.iter().position(|(o, _)| *o == off) {
            Some(i) => renamed.remove(i).1,
            None => text[off..off + len].to_string(),
        };
        counter += 1;
        text.replace_range(off..off + len, &placeholder(counter, len));
        renamed.push((off, original));
    }
}

/// The `n`th identifier of exactly `len` ASCII bytes.
fn placeholder(mut n: usize, len: usize) -> String {
    const FIRST: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_";
    const REST: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789";
    let mut out = String::with_capacity(len);
    out.push(char::from(FIRST[n % FIRST.len()]));
    n /= FIRST.len();
    for _ in 1..len {
        out.push(char::from(REST[n % REST.len()]));
        n /= REST.len();
    }
    out
}

/// The real name of an attribute key (see [`parse_body_lenient`]).
pub(crate) fn key_name(a: &hcl::edit::structure::Attribute, sc: &Scope) -> String {
    if sc.base == 0
        && let Some(start) = a.key.span().map(|r| r.start)
        && let Some((_, name)) = sc.renamed.iter().find(|(o, _)| *o == start)
    {
        return name.clone();
    }
    a.key.value().to_string()
}

/// A renamed key outside the job body (variables, locals) is HCL's redefinition error.
fn refuse_renamed(
    hcl: &str,
    a: &hcl::edit::structure::Attribute,
    renamed: &Renamed,
) -> Result<(), ParseError> {
    let Some(r) = a.key.span() else { return Ok(()) };
    match renamed.iter().find(|(o, _)| *o == r.start) {
        Some((_, name)) => Err(render(
            hcl,
            &Diag::new(
                r,
                "Attribute redefined",
                format!(
                    "The argument \"{name}\" was already set. Each argument may be set only once."
                ),
            ),
        )),
        None => Ok(()),
    }
}

/// `[[ ... ]]` outside heredocs marks a Levant or Nomad Pack template.
fn looks_like_levant(hcl: &str) -> bool {
    let mut in_heredoc: Option<String> = None;
    for line in hcl.lines() {
        let t = line.trim();
        if let Some(delim) = &in_heredoc {
            if t == delim {
                in_heredoc = None;
            }
            continue;
        }
        if let Some(pos) = line.find("<<") {
            let rest = line[pos + 2..].trim_start_matches('-');
            let delim: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !delim.is_empty() {
                in_heredoc = Some(delim);
                continue;
            }
        }
        if line.contains("[[") && line.contains("]]") {
            return true;
        }
    }
    false
}

/// A `variable` block: name, default and type text.
type Declared = (String, Option<Value>, Option<String>);

/// cty's conversion error for a value that does not fit a primitive type constraint.
fn type_mismatch(ty: &str) -> &'static str {
    match ty {
        "number" => "a number is required",
        "bool" => "a bool is required",
        _ => "string required",
    }
}

/// Declared `variable` blocks plus the var-file body → the `var` object.
fn input_variables(
    hcl: &str,
    blocks: &[&Block],
    var_src: &str,
    var_body: &Body,
    renamed: &Renamed,
) -> Result<Map<String, Value>, ParseError> {
    let no_vars = Map::new();
    let mut declared: Vec<Declared> = Vec::new();
    for b in blocks {
        if b.labels.len() != 1 {
            let r = b.ident.span().unwrap_or(0..0);
            return Err(render(
                hcl,
                &Diag::new(
                    r,
                    "Missing name for variable",
                    "All variable blocks must have 1 labels (name).",
                ),
            ));
        }
        let name = b.labels[0].as_str().to_string();
        let mut default = None;
        let mut ty = None;
        let mut sc = Scope {
            text: hcl,
            base: 0,
            vars: &no_vars,
            locals: &no_vars,
            iter: Vec::new(),
            locals_ready: false,
            renamed,
        };
        for st in b.body.iter() {
            if let Structure::Attribute(a) = st {
                refuse_renamed(hcl, a, renamed)?;
            }
            match st {
                Structure::Attribute(a) => match a.key.value().as_str() {
                    "default" => {
                        let value = sc.eval(&a.value).map_err(|d| render(hcl, &d))?;
                        default = Some((value, a.value.span().unwrap_or(0..0)));
                    }
                    "type" => {
                        let r = a.value.span().unwrap_or(0..0);
                        ty = Some(hcl.get(r).unwrap_or("").trim().to_string());
                    }
                    "description" | "sensitive" | "nullable" => {}
                    other => {
                        let r = a.key.span().unwrap_or(0..0);
                        return Err(render(
                            hcl,
                            &Diag::new(
                                r,
                                "Unsupported argument",
                                format!("An argument named \"{other}\" is not expected here."),
                            ),
                        ));
                    }
                },
                Structure::Block(vb) if vb.ident.value().as_str() == "validation" => {}
                Structure::Block(vb) => {
                    let r = vb.ident.span().unwrap_or(0..0);
                    return Err(render(
                        hcl,
                        &Diag::new(
                            r,
                            "Unsupported block type",
                            format!(
                                "Blocks of type \"{}\" are not expected here.",
                                vb.ident.value()
                            ),
                        ),
                    ));
                }
            }
        }
        // Nomad converts a default to the declared type when it reads the block.
        let default = match (default, ty.as_deref()) {
            (Some((value, range)), Some(t)) => match eval::convert(value, t) {
                Some(converted) => Some(converted),
                None => {
                    return Err(render(
                        hcl,
                        &Diag::new(
                            range,
                            "Invalid default value for variable",
                            format!(
                                "This default value is not compatible with the variable's type constraint: {}.",
                                type_mismatch(t)
                            ),
                        ),
                    ));
                }
            },
            (default, _) => default.map(|(value, _)| value),
        };
        declared.push((name, default, ty));
    }

    let mut given: Map<String, Value> = Map::new();
    for st in var_body.iter() {
        let Structure::Attribute(a) = st else {
            let r = st.span().unwrap_or(0..0);
            return Err(render_in(
                var_src,
                Input::Variables,
                &Diag::new(r, "Unexpected block", "Blocks are not allowed here."),
            ));
        };
        let name = a.key.value().to_string();
        let r = a.key.span().unwrap_or(0..0);
        if !declared.iter().any(|(n, ..)| *n == name) {
            return Err(render_in(
                var_src,
                Input::Variables,
                &Diag::new(
                    r,
                    "Undefined variable",
                    format!(
                        "A \"{name}\" variable was passed in but was not found in known variables. To declare variable \"{name}\", place this block in your job files:\nvariable \"{name}\" {{\n  type = string\n}}"
                    ),
                ),
            ));
        }
        let mut sc = Scope {
            text: var_src,
            base: 0,
            vars: &no_vars,
            locals: &no_vars,
            iter: Vec::new(),
            locals_ready: false,
            renamed: &[],
        };
        let v = sc
            .eval(&a.value)
            .map_err(|d| render_in(var_src, Input::Variables, &d))?;
        // A value that does not fit the declared type is refused where it is written.
        if let Some((_, _, Some(t))) = declared.iter().find(|(n, ..)| *n == name)
            && eval::convert(v.clone(), t).is_none()
        {
            return Err(render_in(
                var_src,
                Input::Variables,
                &Diag::new(
                    a.value.span().unwrap_or(0..0),
                    "Invalid value for variable",
                    format!(
                        "The value for {name} is not compatible with the variable's type constraint: {}.",
                        type_mismatch(t)
                    ),
                ),
            ));
        }
        given.insert(name, v);
    }

    let mut out = Map::new();
    for (name, default, ty) in declared {
        let v = match given.remove(&name).or(default) {
            Some(v) => v,
            None => {
                // Nomad's diagnostic has no source range: `<nil>: Unset variable "x"; …`
                // (measured on Nomad 2.0.5, api-facts §7).
                let description = format!(
                    "Unset variable \"{name}\"; A used variable must be set or have a default value; see https://developer.hashicorp.com/nomad/docs/job-specification/hcl2/variables for details."
                );
                return Err(ParseError {
                    message: format!("<nil>: {description}"),
                    ..ParseError::unlocated(description)
                });
            }
        };
        // Both sources were checked against the type above.
        let v = match ty.as_deref() {
            Some(t) => eval::convert(v.clone(), t).unwrap_or(v),
            None => v,
        };
        out.insert(name, v);
    }
    Ok(out)
}

/// `locals {}` blocks, evaluated in dependency order by repeated passes.
fn eval_locals(
    hcl: &str,
    blocks: &[&Block],
    vars: &Map<String, Value>,
    renamed: &Renamed,
) -> Result<Map<String, Value>, ParseError> {
    let mut pending: Vec<&hcl::edit::structure::Attribute> = Vec::new();
    for b in blocks {
        for st in b.body.iter() {
            match st {
                Structure::Attribute(a) => {
                    refuse_renamed(hcl, a, renamed)?;
                    pending.push(a);
                }
                Structure::Block(ib) => {
                    let r = ib.ident.span().unwrap_or(0..0);
                    return Err(render(
                        hcl,
                        &Diag::new(
                            r,
                            "Unsupported block type",
                            "Blocks are not allowed in locals.",
                        ),
                    ));
                }
            }
        }
    }
    let mut locals = Map::new();
    while !pending.is_empty() {
        let mut next = Vec::new();
        let mut first_err = None;
        for a in &pending {
            let snapshot = locals.clone();
            let mut sc = Scope {
                text: hcl,
                base: 0,
                vars,
                locals: &snapshot,
                iter: Vec::new(),
                locals_ready: true,
                renamed,
            };
            match sc.eval(&a.value) {
                Ok(v) => {
                    locals.insert(a.key.value().to_string(), v);
                }
                Err(d) => {
                    first_err.get_or_insert(d);
                    next.push(*a);
                }
            }
        }
        if next.len() == pending.len()
            && let Some(d) = first_err
        {
            return Err(render(hcl, &d));
        }
        pending = next;
    }
    Ok(locals)
}

fn arr_mut<'a>(v: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    v.get_mut(key)
        .and_then(Value::as_array_mut)
        .map(|a| a.iter_mut())
        .into_iter()
        .flatten()
}

/// jobspec2's `normalizeJob` plus the decoder's block fix-ups.
fn normalize(job: &mut Value) {
    let Some(obj) = job.as_object_mut() else {
        return;
    };
    if obj.get("Name").is_none_or(Value::is_null) {
        let id = obj.get("ID").cloned().unwrap_or(Value::Null);
        obj.insert("Name".into(), id);
    }
    // Nomad 2.0.5 (api-facts §7): the job-level Consul/Vault tokens are gone from the API, a
    // periodic block always says `SpecType: "cron"`, and an unset `Specs` is left out.
    obj.remove("ConsulToken");
    obj.remove("VaultToken");
    if let Some(Value::Object(p)) = obj.get_mut("Periodic") {
        p.insert("SpecType".into(), Value::String("cron".into()));
        if p.get("Specs").is_some_and(Value::is_null) {
            p.remove("Specs");
        }
    }
    let job_vault = obj.remove("vault").map(|mut v| {
        normalize_vault(&mut v);
        v
    });
    if let Some(Value::Array(tasks)) = obj.remove("task") {
        let mut alone = Vec::new();
        for t in tasks {
            let mut g = schema::empty(&schema::GROUP);
            g.insert("Name".into(), t.get("Name").cloned().unwrap_or(Value::Null));
            g.insert("Tasks".into(), Value::Array(vec![t]));
            alone.push(Value::Object(g));
        }
        if let Some(Value::Array(existing)) = obj.get("TaskGroups") {
            alone.extend(existing.iter().cloned());
        }
        obj.insert("TaskGroups".into(), Value::Array(alone));
    }
    normalize_constraints(job);
    for g in arr_mut(job, "TaskGroups") {
        let group_vault = g.as_object_mut().and_then(|o| o.remove("vault"));
        normalize_constraints(g);
        for n in arr_mut(g, "Networks") {
            normalize_ports(n);
        }
        if let Some(Value::Object(sc)) = g.get_mut("Scaling")
            && sc
                .get("Type")
                .is_none_or(|t| t.as_str().is_none_or(str::is_empty))
        {
            sc.insert("Type".into(), Value::String("horizontal".into()));
        }
        for t in arr_mut(g, "Tasks") {
            normalize_constraints(t);
            if let Some(res) = t.get_mut("Resources") {
                for n in arr_mut(res, "Networks") {
                    normalize_ports(n);
                }
                for d in arr_mut(res, "Devices") {
                    normalize_constraints(d);
                }
            }
            for sp in arr_mut(t, "ScalingPolicies") {
                let ty = match sp["Type"].as_str().unwrap_or("") {
                    "cpu" => "vertical_cpu",
                    "mem" => "vertical_mem",
                    other => other,
                }
                .to_string();
                if let Some(o) = sp.as_object_mut() {
                    o.insert("Type".into(), Value::String(ty));
                }
            }
            for tpl in arr_mut(t, "Templates") {
                normalize_template(tpl);
            }
            if let Some(tv) = t.get_mut("Vault") {
                normalize_vault(tv);
            }
            let Some(to) = t.as_object_mut() else {
                continue;
            };
            if to.get("Vault").is_none_or(Value::is_null)
                && let Some(v) = group_vault.as_ref().or(job_vault.as_ref())
            {
                let mut v = v.clone();
                normalize_vault(&mut v);
                to.insert("Vault".into(), v);
            }
            // An identity named "" or "default" is the task's default identity.
            if let Some(Value::Array(ids)) = to.get_mut("Identities") {
                let pos = ids.iter().position(|i| {
                    matches!(
                        i.get("Name").and_then(Value::as_str),
                        Some("") | Some("default")
                    )
                });
                if let Some(pos) = pos {
                    let default = ids.remove(pos);
                    let empty = ids.is_empty();
                    to.insert("Identity".into(), default);
                    if empty {
                        to.insert("Identities".into(), Value::Null);
                    }
                }
            }
            // Left out when unset, not `null` (measured on Nomad 2.0.5, api-facts §7).
            for key in ["Identities", "CSIPluginConfig"] {
                if to.get(key).is_some_and(Value::is_null) {
                    to.remove(key);
                }
            }
        }
    }
}

fn normalize_vault(v: &mut Value) {
    let Some(o) = v.as_object_mut() else { return };
    for (k, d) in [
        ("Env", Value::Bool(true)),
        ("DisableFile", Value::Bool(false)),
        ("ChangeMode", Value::String("restart".into())),
    ] {
        if o.get(k).is_none_or(Value::is_null) {
            o.insert(k.into(), d);
        }
    }
}

fn normalize_template(t: &mut Value) {
    let Some(o) = t.as_object_mut() else { return };
    for (k, d) in [
        ("ChangeMode", Value::String("restart".into())),
        ("Perms", Value::String("0644".into())),
        ("Splay", Value::from(5_000_000_000_i64)),
        ("ErrMissingKey", Value::Bool(false)),
    ] {
        if o.get(k).is_none_or(Value::is_null) {
            o.insert(k.into(), d);
        }
    }
    if let Some(Value::Object(cs)) = o.get_mut("ChangeScript") {
        for (k, d) in [
            ("Args", Value::Array(Vec::new())),
            ("Timeout", Value::from(5_000_000_000_i64)),
            ("FailOnError", Value::Bool(false)),
        ] {
            if cs.get(k).is_none_or(Value::is_null) {
                cs.insert(k.into(), d);
            }
        }
    }
}

/// `port` blocks → `ReservedPorts` (static > 0) and `DynamicPorts`.
fn normalize_ports(n: &mut Value) {
    let Some(o) = n.as_object_mut() else { return };
    let Some(Value::Array(ports)) = o.remove("Ports") else {
        return;
    };
    let (reserved, dynamic): (Vec<Value>, Vec<Value>) = ports
        .into_iter()
        .partition(|p| p.get("Value").and_then(Value::as_i64).unwrap_or(0) > 0);
    o.insert(
        "ReservedPorts".into(),
        if reserved.is_empty() {
            Value::Null
        } else {
            Value::Array(reserved)
        },
    );
    o.insert(
        "DynamicPorts".into(),
        if dynamic.is_empty() {
            Value::Null
        } else {
            Value::Array(dynamic)
        },
    );
}

/// Constraint/affinity shorthands (`distinct_hosts = true`, `version = "..."`, …) and the
/// `=` default operand, like jobspec2's custom constraint decoders.
fn normalize_constraints(v: &mut Value) {
    for key in ["Constraints", "Affinities"] {
        for c in arr_mut(v, key) {
            let Some(o) = c.as_object_mut() else { continue };
            for short in [
                "version",
                "semver",
                "regexp",
                "set_contains",
                "set_contains_all",
                "set_contains_any",
            ] {
                if let Some(Value::String(s)) = o.remove(short)
                    && !s.is_empty()
                {
                    o.insert("Operand".into(), Value::String(short.into()));
                    o.insert("RTarget".into(), Value::String(s));
                }
            }
            if let Some(Value::Bool(true)) = o.remove("distinct_hosts") {
                o.insert("Operand".into(), Value::String("distinct_hosts".into()));
            }
            if let Some(Value::String(p)) = o.remove("distinct_property")
                && !p.is_empty()
            {
                o.insert("Operand".into(), Value::String("distinct_property".into()));
                o.insert("LTarget".into(), Value::String(p));
            }
            if o.get("Operand")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                o.insert("Operand".into(), Value::String("=".into()));
            }
        }
    }
}

/// Entry point for drover's fuzz targets (`fuzz/`, and `tests/fuzz_corpus.rs` on stable).
#[doc(hidden)]
pub mod fuzzing {
    /// `data` as a jobspec, and after a NUL byte, as its HCL2 var-file; must not panic.
    pub fn parse(data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        let (hcl, variables) = text.split_once('\0').unwrap_or((&text, ""));
        let _ = super::parse(hcl, variables);
    }
}

#[cfg(test)]
mod tests;
