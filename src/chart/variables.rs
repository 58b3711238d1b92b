//! Pack variables: `variable "x" { description, type, default }` declarations, the HCL type
//! expressions they use, and the merge `default < var_files < variables` with type checks.

use std::collections::BTreeMap;
use std::fmt;

use hcl::eval::{Context, Evaluate};
use serde_json::{Map, Value};

use super::ChartError;

/// An HCL type constraint (`string`, `list(number)`, `object({ a = string })`, `any`, …).
#[derive(Debug, Clone, PartialEq)]
pub enum VarType {
    /// Any value.
    Any,
    /// A string (numbers and bools convert to it, as in HCL).
    String,
    /// A number (a numeric string converts to it).
    Number,
    /// A bool (`"true"`/`"false"` convert to it).
    Bool,
    /// `list(T)`.
    List(Box<VarType>),
    /// `set(T)` (kept as a list).
    Set(Box<VarType>),
    /// `map(T)`.
    Map(Box<VarType>),
    /// `object({ k = T })`; `optional(T)` attributes may be absent.
    Object(Vec<(String, VarType, bool)>),
    /// `tuple([T, …])`.
    Tuple(Vec<VarType>),
}

impl fmt::Display for VarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarType::Any => write!(f, "any"),
            VarType::String => write!(f, "string"),
            VarType::Number => write!(f, "number"),
            VarType::Bool => write!(f, "bool"),
            VarType::List(t) => write!(f, "list({t})"),
            VarType::Set(t) => write!(f, "set({t})"),
            VarType::Map(t) => write!(f, "map({t})"),
            VarType::Object(attrs) => {
                write!(f, "object({{")?;
                for (i, (k, t, optional)) in attrs.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    if *optional {
                        write!(f, "{k} = optional({t})")?;
                    } else {
                        write!(f, "{k} = {t}")?;
                    }
                }
                write!(f, "}})")
            }
            VarType::Tuple(items) => {
                write!(f, "tuple([")?;
                for (i, t) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{t}")?;
                }
                write!(f, "])")
            }
        }
    }
}

impl VarType {
    /// Read a type expression as written in `variables.hcl`.
    pub fn from_expr(expr: &hcl::Expression) -> Result<VarType, String> {
        use hcl::Expression as E;
        match expr {
            E::Variable(v) => match v.as_str() {
                "any" => Ok(VarType::Any),
                "string" => Ok(VarType::String),
                "number" => Ok(VarType::Number),
                "bool" => Ok(VarType::Bool),
                other => Err(format!("unknown type \"{other}\"")),
            },
            E::Parenthesis(inner) => VarType::from_expr(inner),
            E::FuncCall(call) => {
                let name = call.name.name.as_str();
                let one = || -> Result<VarType, String> {
                    match call.args.as_slice() {
                        [arg] => VarType::from_expr(arg),
                        _ => Err(format!("{name}(…) takes one type")),
                    }
                };
                match name {
                    "list" => Ok(VarType::List(Box::new(one()?))),
                    "set" => Ok(VarType::Set(Box::new(one()?))),
                    "map" => Ok(VarType::Map(Box::new(one()?))),
                    "object" => match call.args.as_slice() {
                        [E::Object(attrs)] => {
                            let mut out = Vec::new();
                            for (key, value) in attrs {
                                let key = match key {
                                    hcl::ObjectKey::Identifier(i) => i.to_string(),
                                    hcl::ObjectKey::Expression(E::String(s)) => s.clone(),
                                    _ => return Err("object attribute names must be names".into()),
                                };
                                let (ty, optional) = match value {
                                    E::FuncCall(c) if c.name.name.as_str() == "optional" => {
                                        match c.args.first() {
                                            Some(arg) => (VarType::from_expr(arg)?, true),
                                            None => return Err("optional(…) takes a type".into()),
                                        }
                                    }
                                    other => (VarType::from_expr(other)?, false),
                                };
                                out.push((key, ty, optional));
                            }
                            Ok(VarType::Object(out))
                        }
                        _ => Err("object(…) takes an object of attribute types".into()),
                    },
                    "tuple" => match call.args.as_slice() {
                        [E::Array(items)] => Ok(VarType::Tuple(
                            items
                                .iter()
                                .map(VarType::from_expr)
                                .collect::<Result<_, _>>()?,
                        )),
                        _ => Err("tuple(…) takes a list of types".into()),
                    },
                    other => Err(format!("unknown type constructor \"{other}\"")),
                }
            }
            _ => Err(
                "expected a type (string, number, bool, list(T), map(T), object({…}), any)".into(),
            ),
        }
    }

    /// Convert `value` to this type as HCL would, or say why not (`at` names the place).
    pub fn convert(&self, value: &Value, at: &str) -> Result<Value, String> {
        let mismatch = || {
            format!(
                "{at}: expected {self}, found {}",
                match value {
                    Value::Null => "null".to_string(),
                    Value::Bool(_) => "a bool".to_string(),
                    Value::Number(_) => "a number".to_string(),
                    Value::String(s) => format!("the string \"{s}\""),
                    Value::Array(_) => "a list".to_string(),
                    Value::Object(_) => "an object".to_string(),
                }
            )
        };
        if value.is_null() {
            return Ok(Value::Null);
        }
        match self {
            VarType::Any => Ok(value.clone()),
            VarType::String => match value {
                Value::String(_) => Ok(value.clone()),
                Value::Number(n) => Ok(Value::String(n.to_string())),
                Value::Bool(b) => Ok(Value::String(b.to_string())),
                _ => Err(mismatch()),
            },
            VarType::Number => match value {
                Value::Number(_) => Ok(value.clone()),
                Value::String(s) => {
                    if let Ok(i) = s.trim().parse::<i64>() {
                        Ok(Value::from(i))
                    } else if let Some(n) = s
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                    {
                        Ok(Value::Number(n))
                    } else {
                        Err(mismatch())
                    }
                }
                _ => Err(mismatch()),
            },
            VarType::Bool => match value {
                Value::Bool(_) => Ok(value.clone()),
                Value::String(s) if s == "true" => Ok(Value::Bool(true)),
                Value::String(s) if s == "false" => Ok(Value::Bool(false)),
                _ => Err(mismatch()),
            },
            VarType::List(t) | VarType::Set(t) => match value {
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| t.convert(v, &format!("{at}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array),
                _ => Err(mismatch()),
            },
            VarType::Tuple(types) => match value {
                Value::Array(items) if items.len() == types.len() => items
                    .iter()
                    .zip(types)
                    .enumerate()
                    .map(|(i, (v, t))| t.convert(v, &format!("{at}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array),
                _ => Err(mismatch()),
            },
            VarType::Map(t) => match value {
                Value::Object(entries) => {
                    let mut out = Map::new();
                    for (k, v) in entries {
                        out.insert(k.clone(), t.convert(v, &format!("{at}.{k}"))?);
                    }
                    Ok(Value::Object(out))
                }
                _ => Err(mismatch()),
            },
            VarType::Object(attrs) => match value {
                Value::Object(entries) => {
                    let mut out = Map::new();
                    for (k, t, optional) in attrs {
                        match entries.get(k) {
                            Some(v) => {
                                out.insert(k.clone(), t.convert(v, &format!("{at}.{k}"))?);
                            }
                            None if *optional => {
                                out.insert(k.clone(), Value::Null);
                            }
                            None => return Err(format!("{at}: attribute \"{k}\" is required")),
                        }
                    }
                    if let Some(extra) = entries.keys().find(|k| !attrs.iter().any(|a| &a.0 == *k))
                    {
                        return Err(format!(
                            "{at}: unexpected attribute \"{extra}\" (the type is {self})"
                        ));
                    }
                    Ok(Value::Object(out))
                }
                _ => Err(mismatch()),
            },
        }
    }
}

/// One `variable "name" { … }` of a pack.
#[derive(Debug, Clone, PartialEq)]
pub struct VariableDecl {
    /// The variable name.
    pub name: String,
    /// Its `description`.
    pub description: String,
    /// Its `type` (`any` when absent).
    pub ty: VarType,
    /// Its `default`, if any (a variable without one is required).
    pub default: Option<Value>,
    /// The line of the declaration in `variables.hcl`.
    pub line: usize,
}

/// Evaluate a constant HCL expression (a default, a var-file value) to JSON.
pub(crate) fn eval_expr(expr: &hcl::Expression) -> Result<Value, String> {
    let value = expr
        .evaluate(&Context::new())
        .map_err(|e| format!("cannot evaluate: {e}"))?;
    serde_json::to_value(value).map_err(|e| e.to_string())
}

/// Read `variables.hcl`.
pub fn parse_variables(file: &str, text: &str) -> Result<Vec<VariableDecl>, ChartError> {
    let body: hcl::Body = hcl::parse(text).map_err(|e| ChartError::new(file, 0, e.to_string()))?;
    let mut out: Vec<VariableDecl> = Vec::new();
    for block in body.blocks() {
        let line = block_line(text, block);
        if block.identifier() != "variable" {
            return Err(ChartError::new(
                file,
                line,
                format!(
                    "unexpected block \"{}\"; only variable blocks belong here",
                    block.identifier()
                ),
            ));
        }
        let Some(name) = block.labels().first().map(|l| l.as_str().to_string()) else {
            return Err(ChartError::new(
                file,
                line,
                "a variable block needs a name label",
            ));
        };
        let mut decl = VariableDecl {
            name: name.clone(),
            description: String::new(),
            ty: VarType::Any,
            default: None,
            line,
        };
        for attr in block.body().attributes() {
            let at = |m: String| ChartError::new(file, line, format!("variable \"{name}\": {m}"));
            match attr.key() {
                "description" => {
                    decl.description = match eval_expr(attr.expr()).map_err(at)? {
                        Value::String(s) => s,
                        _ => return Err(at("description must be a string".into())),
                    }
                }
                "type" => decl.ty = VarType::from_expr(attr.expr()).map_err(at)?,
                "default" => decl.default = Some(eval_expr(attr.expr()).map_err(at)?),
                other => return Err(at(format!("unknown attribute \"{other}\""))),
            }
        }
        if let Some(default) = &decl.default {
            decl.default = Some(
                decl.ty
                    .convert(default, &format!("default of variable \"{name}\""))
                    .map_err(|m| ChartError::new(file, line, m))?,
            );
        }
        if out.iter().any(|d| d.name == name) {
            return Err(ChartError::new(
                file,
                line,
                format!("variable \"{name}\" is declared twice"),
            ));
        }
        out.push(decl);
    }
    Ok(out)
}

/// The line where a block starts (hcl-rs keeps no spans: found by its header text).
fn block_line(text: &str, block: &hcl::Block) -> usize {
    let label = block
        .labels()
        .first()
        .map(|l| l.as_str())
        .unwrap_or_default();
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            t.starts_with(block.identifier()) && t.contains(&format!("\"{label}\""))
        })
        .map_or(0, |i| i + 1)
}

/// A value given for a variable, and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct GivenValue {
    /// The value.
    pub value: Value,
    /// The file that gave it (app.yaml, a var file, or `--var`).
    pub file: String,
    /// 1-based line in that file (0 when unknown).
    pub line: usize,
}

/// The values given for one pack: its own variables by name, and its dependencies' by alias.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GivenValues {
    /// This pack's variables.
    pub own: BTreeMap<String, GivenValue>,
    /// Each dependency's values, by alias.
    pub deps: BTreeMap<String, GivenValues>,
}

impl GivenValues {
    /// Set `name` (dotted `alias.var` for a dependency's variable), later values winning.
    pub fn set(&mut self, name: &str, value: GivenValue) {
        self.own.insert(name.to_string(), value);
    }
}

/// A pack's final variables, and the values given for each of its dependencies (by alias).
pub type Resolved = (Map<String, Value>, BTreeMap<String, GivenValues>);

/// Merge defaults with given values (`default < var files < variables`, the caller adds them in
/// that order) and check the types: the pack's final variables.
pub fn resolve(
    pack_name: &str,
    decls: &[VariableDecl],
    dep_aliases: &[String],
    given: &GivenValues,
) -> Result<Resolved, ChartError> {
    let mut dep_values: BTreeMap<String, GivenValues> = given.deps.clone();
    let mut own: BTreeMap<&str, &GivenValue> = BTreeMap::new();
    for (name, value) in &given.own {
        let name = name.strip_prefix(&format!("{pack_name}.")).unwrap_or(name);
        if decls.iter().any(|d| d.name == name) {
            own.insert(name, value);
            continue;
        }
        // `alias.var`, or `alias: { var: … }` from a mapping.
        if let Some((alias, rest)) = name.split_once('.')
            && dep_aliases.iter().any(|a| a == alias)
        {
            dep_values
                .entry(alias.to_string())
                .or_default()
                .set(rest, value.clone());
            continue;
        }
        if dep_aliases.iter().any(|a| a == name)
            && let Value::Object(entries) = &value.value
        {
            let dep = dep_values.entry(name.to_string()).or_default();
            for (k, v) in entries {
                dep.set(
                    k,
                    GivenValue {
                        value: v.clone(),
                        ..value.clone()
                    },
                );
            }
            continue;
        }
        let known: Vec<&str> = decls.iter().map(|d| d.name.as_str()).collect();
        let hint = crate::desired::check::suggest(name, &known)
            .map(|s| format!("; did you mean \"{s}\"?"))
            .unwrap_or_default();
        return Err(ChartError::new(
            &value.file,
            value.line,
            format!(
                "unknown variable \"{name}\": pack {pack_name} declares no such variable{hint}"
            ),
        ));
    }
    let mut out = Map::new();
    for decl in decls {
        let value = match own.get(decl.name.as_str()) {
            Some(given) => decl
                .ty
                .convert(&given.value, &format!("variable \"{}\"", decl.name))
                .map_err(|m| ChartError::new(&given.file, given.line, m))?,
            None => match &decl.default {
                Some(default) => default.clone(),
                None => {
                    return Err(ChartError::new(
                        pack_name,
                        0,
                        format!("missing required variable {}", decl.name),
                    ));
                }
            },
        };
        out.insert(decl.name.clone(), value);
    }
    Ok((out, dep_values))
}

/// Read a var file: HCL (`name = value`, a dependency's as `alias = { var = value }`), JSON or
/// YAML (by extension), into given values.
pub fn parse_var_file(file: &str, text: &str, into: &mut GivenValues) -> Result<(), ChartError> {
    let lower = file.to_ascii_lowercase();
    if lower.ends_with(".json") || lower.ends_with(".yaml") || lower.ends_with(".yml") {
        let value: Value = if lower.ends_with(".json") {
            serde_json::from_str(text)
                .map_err(|e| ChartError::new(file, e.line(), e.to_string()))?
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| {
                ChartError::new(file, e.location().map_or(0, |l| l.line()), e.to_string())
            })?
        };
        let Value::Object(entries) = value else {
            return Err(ChartError::new(
                file,
                1,
                "a var file is a mapping of variable names to values",
            ));
        };
        for (k, v) in entries {
            let line = line_of_key(text, &k);
            into.set(
                &k,
                GivenValue {
                    value: v,
                    file: file.to_string(),
                    line,
                },
            );
        }
        return Ok(());
    }
    let body: hcl::Body = hcl::parse(text).map_err(|e| ChartError::new(file, 0, e.to_string()))?;
    for attr in body.attributes() {
        let line = line_of_key(text, attr.key());
        let value = eval_expr(attr.expr()).map_err(|m| ChartError::new(file, line, m))?;
        into.set(
            attr.key(),
            GivenValue {
                value,
                file: file.to_string(),
                line,
            },
        );
    }
    Ok(())
}

/// The first line that starts with `key` (hcl-rs keeps no spans).
fn line_of_key(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let t = l.trim_start().trim_start_matches('"');
            t.starts_with(key)
                && t[key.len()..]
                    .trim_start_matches('"')
                    .trim_start()
                    .starts_with(['=', ':'])
        })
        .map_or(0, |i| i + 1)
}

/// A `--var name=value` from the command line: strings stay strings, anything else is read as an
/// HCL expression when the variable's type asks for it (the conversion happens in [`resolve`]).
pub fn parse_cli_var(arg: &str) -> Result<(String, Value), String> {
    let Some((name, raw)) = arg.split_once('=') else {
        return Err(format!("--var {arg}: expected NAME=VALUE"));
    };
    let trimmed = raw.trim_start();
    let structured = trimmed.starts_with('[') || trimmed.starts_with('{');
    let value = if structured {
        let body: hcl::Body =
            hcl::parse(&format!("v = {raw}\n")).map_err(|e| format!("--var {name}: {e}"))?;
        match body.attributes().next() {
            Some(attr) => eval_expr(attr.expr()).map_err(|e| format!("--var {name}: {e}"))?,
            None => Value::String(raw.to_string()),
        }
    } else {
        Value::String(raw.to_string())
    };
    Ok((name.trim().to_string(), value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ty(text: &str) -> VarType {
        let body: hcl::Body =
            hcl::parse(&format!("t = {text}\n")).unwrap_or_else(|e| panic!("{e}"));
        let attr = body
            .attributes()
            .next()
            .unwrap_or_else(|| panic!("no attribute"));
        VarType::from_expr(attr.expr()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn type_expressions_read_and_print_back() {
        for text in [
            "string",
            "list(number)",
            "map(list(string))",
            "object({a = string, b = optional(bool)})",
            "tuple([string, number])",
            "any",
        ] {
            assert_eq!(ty(text).to_string(), text);
        }
    }

    #[test]
    fn values_convert_as_hcl_converts_them() {
        assert_eq!(ty("string").convert(&json!(5), "v"), Ok(json!("5")));
        assert_eq!(ty("number").convert(&json!("5"), "v"), Ok(json!(5)));
        assert_eq!(ty("bool").convert(&json!("true"), "v"), Ok(json!(true)));
        assert_eq!(
            ty("number").convert(&json!("five"), "v"),
            Err("v: expected number, found the string \"five\"".to_string())
        );
        assert_eq!(
            ty("list(number)").convert(&json!([1, "x"]), "v"),
            Err("v[1]: expected number, found the string \"x\"".to_string())
        );
        let object = ty("object({a = string, b = optional(bool)})");
        assert_eq!(
            object.convert(&json!({ "a": "x" }), "v"),
            Ok(json!({ "a": "x", "b": null }))
        );
        assert_eq!(
            object.convert(&json!({ "b": true }), "v"),
            Err("v: attribute \"a\" is required".to_string())
        );
        assert!(
            object
                .convert(&json!({ "a": "x", "c": 1 }), "v")
                .is_err_and(|e| e.contains("unexpected attribute \"c\""))
        );
    }

    #[test]
    fn given_values_win_over_defaults_and_unknown_names_are_refused() {
        let decls = parse_variables(
            "variables.hcl",
            "variable \"a\" {\n  type = number\n  default = 1\n}\n\nvariable \"b\" {\n  type = string\n}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(decls[1].line, 6);
        let value = |v| GivenValue {
            value: v,
            file: "app.yaml".into(),
            line: 3,
        };
        let mut given = GivenValues::default();
        given.set("b", value(json!("x")));
        let (vars, _) = resolve("p", &decls, &[], &given).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Value::Object(vars), json!({ "a": 1, "b": "x" }));

        given.set("p.a", value(json!("2")));
        let (vars, _) = resolve("p", &decls, &[], &given).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(vars["a"], json!(2), "the pack-qualified name, converted");

        let err = resolve("p", &decls, &[], &GivenValues::default()).expect_err("b is required");
        assert_eq!(err.message, "missing required variable b");

        given.set("c", value(json!(1)));
        let err = resolve("p", &decls, &[], &given).expect_err("c is unknown");
        assert_eq!((err.file.as_str(), err.line), ("app.yaml", 3));
        assert!(err.message.starts_with("unknown variable \"c\""), "{err}");
    }

    #[test]
    fn dependency_values_go_to_the_dependency_by_alias() {
        let mut given = GivenValues::default();
        let value = |v| GivenValue {
            value: v,
            file: "f".into(),
            line: 0,
        };
        given.set("dep.x", value(json!(1)));
        given.set("dep", value(json!({ "y": 2 })));
        let (_, deps) =
            resolve("p", &[], &["dep".to_string()], &given).unwrap_or_else(|e| panic!("{e}"));
        let dep = &deps["dep"].own;
        assert_eq!(
            (dep["x"].value.clone(), dep["y"].value.clone()),
            (json!(1), json!(2))
        );
    }

    #[test]
    fn cli_vars_are_strings_unless_structured() {
        assert_eq!(parse_cli_var("a=1"), Ok(("a".into(), json!("1"))));
        assert_eq!(
            parse_cli_var("l=[\"x\", 2]"),
            Ok(("l".into(), json!(["x", 2])))
        );
        assert!(parse_cli_var("novalue").is_err());
    }
}
