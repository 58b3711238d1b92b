//! Evaluating Terraform expressions with hcl-rs: a `Context` holding `var`, `local`, `path` and
//! `module`, plus the few functions an import needs.
//!
//! `file()` and `templatefile()` cannot read the disk here (hcl-rs functions are plain `fn`
//! pointers, so they cannot know the configuration's folder): they return a marker string naming
//! the file, which the importer turns into a copied file. A marker that ends up inside a larger
//! string means the file's content was combined with something else, which is reported.

use hcl::Value;
use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};

/// Starts and separates the parts of a marker; never in real Terraform values.
const MARK: char = '\u{1}';

/// What an evaluated string stands for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Evaluated {
    /// `file(path)`: the file, path relative to the configuration root.
    File(String),
    /// `templatefile(path, vars)`.
    TemplateFile {
        /// Path relative to the configuration root.
        path: String,
        /// The template's variables.
        vars: Value,
    },
    /// A plain string (a literal, heredoc or interpolation).
    Text(String),
    /// A marker mixed with other text: a file's content changed by the expression.
    Mixed,
}

/// Classify an evaluated string.
pub(crate) fn classify(text: &str) -> Evaluated {
    if !text.contains(MARK) {
        return Evaluated::Text(text.to_string());
    }
    let mut parts = text.splitn(3, MARK);
    let (Some(""), Some(kind), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return Evaluated::Mixed;
    };
    if rest.contains(MARK) {
        return Evaluated::Mixed;
    }
    match kind {
        "file" => Evaluated::File(rest.to_string()),
        "templatefile" => match serde_json::from_str::<serde_json::Value>(rest) {
            Ok(v) => Evaluated::TemplateFile {
                path: v["path"].as_str().unwrap_or_default().to_string(),
                vars: hcl::to_value(&v["vars"]).unwrap_or(Value::Null),
            },
            Err(_) => Evaluated::Mixed,
        },
        _ => Evaluated::Mixed,
    }
}

/// Whether a value holds a file marker anywhere.
pub(crate) fn holds_marker(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains(MARK),
        Value::Array(items) => items.iter().any(holds_marker),
        Value::Object(map) => map.values().any(holds_marker),
        _ => false,
    }
}

fn marker(kind: &str, rest: &str) -> String {
    format!("{MARK}{kind}{MARK}{rest}")
}

/// Terraform resolves relative paths against the root module's folder, as the importer does.
fn file_fn(args: FuncArgs) -> Result<Value, String> {
    let path = args.first().and_then(Value::as_str).unwrap_or_default();
    Ok(Value::String(marker("file", &normalize(path))))
}

fn templatefile_fn(args: FuncArgs) -> Result<Value, String> {
    let path = args.first().and_then(Value::as_str).unwrap_or_default();
    let vars = args.get(1).cloned().unwrap_or(Value::Null);
    let payload = serde_json::json!({ "path": normalize(path), "vars": vars });
    Ok(Value::String(marker("templatefile", &payload.to_string())))
}

fn jsonencode_fn(args: FuncArgs) -> Result<Value, String> {
    let value = args.first().cloned().unwrap_or(Value::Null);
    if holds_marker(&value) {
        return Err("jsonencode() of a file's content is not translated".into());
    }
    serde_json::to_string(&value)
        .map(Value::String)
        .map_err(|e| e.to_string())
}

fn jsondecode_fn(args: FuncArgs) -> Result<Value, String> {
    let text = args.first().and_then(Value::as_str).unwrap_or_default();
    if text.contains(MARK) {
        return Err("jsondecode() of a file's content is not translated".into());
    }
    serde_json::from_str::<serde_json::Value>(text)
        .map_err(|e| e.to_string())
        .and_then(|v| hcl::to_value(v).map_err(|e| e.to_string()))
}

fn text_fn(args: &FuncArgs, f: impl Fn(&str) -> String) -> Result<Value, String> {
    let text = args.first().and_then(Value::as_str).unwrap_or_default();
    Ok(Value::String(f(text)))
}

fn lower_fn(args: FuncArgs) -> Result<Value, String> {
    text_fn(&args, str::to_lowercase)
}

fn upper_fn(args: FuncArgs) -> Result<Value, String> {
    text_fn(&args, str::to_uppercase)
}

fn trimspace_fn(args: FuncArgs) -> Result<Value, String> {
    text_fn(&args, |s| s.trim().to_string())
}

fn tostring_fn(args: FuncArgs) -> Result<Value, String> {
    match args.first() {
        Some(Value::String(s)) => Ok(Value::String(s.clone())),
        Some(Value::Number(n)) => Ok(Value::String(n.to_string())),
        Some(Value::Bool(b)) => Ok(Value::String(b.to_string())),
        _ => Err("tostring() needs a string, number or bool".into()),
    }
}

fn join_fn(args: FuncArgs) -> Result<Value, String> {
    let separator = args.first().and_then(Value::as_str).unwrap_or_default();
    let items: Vec<String> = args
        .get(1)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    Ok(Value::String(items.join(separator)))
}

fn merge_fn(args: FuncArgs) -> Result<Value, String> {
    let mut merged = hcl::Map::new();
    for value in args.iter() {
        match value {
            Value::Object(map) => merged.extend(map.clone()),
            Value::Null => {}
            _ => return Err("merge() takes objects".into()),
        }
    }
    Ok(Value::Object(merged))
}

fn concat_fn(args: FuncArgs) -> Result<Value, String> {
    let mut all = Vec::new();
    for value in args.iter() {
        match value {
            Value::Array(items) => all.extend(items.clone()),
            _ => return Err("concat() takes lists".into()),
        }
    }
    Ok(Value::Array(all))
}

/// Remove `.` and `x/..` parts so paths compare and resolve the same way.
pub(crate) fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (path.starts_with('/'), joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// The names an evaluation context knows.
pub(crate) struct Scope {
    /// `var.*`.
    pub vars: hcl::Map<String, Value>,
    /// `local.*`.
    pub locals: hcl::Map<String, Value>,
    /// `module.<name>.<output>` of the modules evaluated so far.
    pub modules: hcl::Map<String, Value>,
    /// `path.module`, relative to the root.
    pub module_path: String,
}

impl Scope {
    /// A context with these names and the importer's functions.
    pub(crate) fn context(&self) -> Context<'static> {
        let mut ctx = Context::new();
        ctx.declare_var("var", Value::Object(self.vars.clone()));
        ctx.declare_var("local", Value::Object(self.locals.clone()));
        ctx.declare_var("module", Value::Object(self.modules.clone()));
        let mut path = hcl::Map::new();
        path.insert("module".into(), Value::String(self.module_path.clone()));
        path.insert("root".into(), Value::String(".".into()));
        path.insert("cwd".into(), Value::String(".".into()));
        ctx.declare_var("path", Value::Object(path));
        declare_functions(&mut ctx);
        ctx
    }
}

/// The functions the importer evaluates; any other is reported by hcl-rs as undefined.
pub(crate) fn declare_functions(ctx: &mut Context<'_>) {
    let one_string = |f| FuncDef::builder().param(ParamType::String).build(f);
    ctx.declare_func("file", one_string(file_fn));
    ctx.declare_func(
        "templatefile",
        FuncDef::builder()
            .param(ParamType::String)
            .param(ParamType::Any)
            .build(templatefile_fn),
    );
    ctx.declare_func(
        "jsonencode",
        FuncDef::builder()
            .param(ParamType::Any)
            .build(jsonencode_fn),
    );
    ctx.declare_func("jsondecode", one_string(jsondecode_fn));
    ctx.declare_func("lower", one_string(lower_fn));
    ctx.declare_func("upper", one_string(upper_fn));
    ctx.declare_func("trimspace", one_string(trimspace_fn));
    ctx.declare_func(
        "tostring",
        FuncDef::builder().param(ParamType::Any).build(tostring_fn),
    );
    ctx.declare_func(
        "join",
        FuncDef::builder()
            .param(ParamType::String)
            .param(ParamType::Any)
            .build(join_fn),
    );
    ctx.declare_func(
        "merge",
        FuncDef::builder()
            .variadic_param(ParamType::Any)
            .build(merge_fn),
    );
    ctx.declare_func(
        "concat",
        FuncDef::builder()
            .variadic_param(ParamType::Any)
            .build(concat_fn),
    );
}

/// Evaluate an expression; the error is hcl-rs's message.
pub(crate) fn evaluate(expr: &hcl::Expression, ctx: &Context<'_>) -> Result<Value, String> {
    expr.evaluate(ctx).map_err(|e| e.to_string())
}

/// Render a Terraform template (`${x}`, `%{ if }`, `%{ for }`) with `vars` as its names.
pub(crate) fn render_template(text: &str, vars: &Value) -> Result<String, String> {
    let template: hcl::Template = text.parse().map_err(|e: hcl::Error| e.to_string())?;
    let mut ctx = Context::new();
    if let Value::Object(map) = vars {
        for (name, value) in map {
            ctx.declare_var(name.as_str(), value.clone());
        }
    }
    declare_functions(&mut ctx);
    template.evaluate(&ctx).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str, scope: &Scope) -> Result<Value, String> {
        let body: hcl::Body = hcl::from_str(&format!("x = {text}\n")).map_err(|e| e.to_string())?;
        let attr = body.attributes().next().ok_or("no attribute")?;
        evaluate(attr.expr(), &scope.context())
    }

    fn scope() -> Scope {
        let mut vars = hcl::Map::new();
        vars.insert("image".into(), Value::String("nginx".into()));
        Scope {
            vars,
            locals: hcl::Map::new(),
            modules: hcl::Map::new(),
            module_path: "modules/web".into(),
        }
    }

    #[test]
    fn file_of_path_module_names_the_file_relative_to_the_root() {
        let value = eval(r#"file("${path.module}/../web/./job.nomad.hcl")"#, &scope());
        let text = value.ok().and_then(|v| v.as_str().map(str::to_string));
        assert_eq!(
            text.as_deref().map(classify),
            Some(Evaluated::File("modules/web/job.nomad.hcl".into()))
        );
    }

    #[test]
    fn paths_are_normalized_and_absolute_ones_stay_absolute() {
        assert_eq!(normalize("./modules/x/../y/./a.hcl"), "modules/y/a.hcl");
        assert_eq!(normalize("/srv/jobs/a.hcl"), "/srv/jobs/a.hcl");
        assert_eq!(normalize("./"), ".");
        assert_eq!(normalize("../shared/a.hcl"), "../shared/a.hcl");
    }

    #[test]
    fn a_file_inside_a_larger_string_is_mixed() {
        let value = eval(r##""# ${file("a.hcl")}""##, &scope());
        let text = value.ok().and_then(|v| v.as_str().map(str::to_string));
        assert_eq!(text.as_deref().map(classify), Some(Evaluated::Mixed));
    }

    #[test]
    fn templatefile_keeps_its_variables_and_renders_them() {
        let value = eval(r#"templatefile("t.tpl", { image = var.image })"#, &scope());
        let text = value.ok().and_then(|v| v.as_str().map(str::to_string));
        let Some(Evaluated::TemplateFile { path, vars }) = text.as_deref().map(classify) else {
            panic!("not a templatefile: {text:?}");
        };
        assert_eq!(path, "t.tpl");
        assert_eq!(
            render_template(
                "image = \"${image}\"%{ if image == \"nginx\" } # web%{ endif }",
                &vars
            ),
            Ok("image = \"nginx\" # web".to_string())
        );
    }

    #[test]
    fn unknown_functions_and_names_are_errors() {
        assert!(eval("timestamp()", &scope()).is_err());
        assert!(eval("var.missing", &scope()).is_err());
        assert_eq!(
            eval("jsonencode({ a = 1 })", &scope()),
            Ok(Value::String("{\"a\":1}".into()))
        );
    }
}
