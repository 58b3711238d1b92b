//! Go's built-in template functions (`and`/`or` are in the executor: they are lazy).

use serde_json::Value;

use crate::fmt::{sprint, sprintf, sprintln, to_v, type_name};

/// Parameter types a function declares (Go's reflect-based argument checking).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamType {
    Any,
    Str,
    Int,
    Bool,
    Map,
}

impl ParamType {
    pub(crate) fn go_name(self) -> &'static str {
        match self {
            ParamType::Any => "interface {}",
            ParamType::Str => "string",
            ParamType::Int => "int",
            ParamType::Bool => "bool",
            ParamType::Map => "map[string]interface {}",
        }
    }
}

/// A function's signature: fixed parameters, then an optional variadic one.
#[derive(Debug, Clone)]
pub(crate) struct Sig {
    pub fixed: Vec<ParamType>,
    pub variadic: Option<ParamType>,
}

pub(crate) const BUILTINS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge", "html", "js", "urlquery", "call",
];

/// The built-ins whose parameters Go type-checks before the call.
pub(crate) fn builtin_sig(name: &str) -> Option<Sig> {
    match name {
        "printf" => Some(Sig {
            fixed: vec![ParamType::Str],
            variadic: Some(ParamType::Any),
        }),
        _ => None,
    }
}

pub(crate) enum CallError {
    /// Reported as is (argument-count and type errors).
    Plain(String),
    /// Reported as `error calling NAME: …`.
    Call(String),
}

type Val = Option<Value>;

fn plain<T>(m: impl Into<String>) -> Result<T, CallError> {
    Err(CallError::Plain(m.into()))
}
fn call<T>(m: impl Into<String>) -> Result<T, CallError> {
    Err(CallError::Call(m.into()))
}

fn arity(name: &str, args: &[Val], want: usize) -> Result<(), CallError> {
    if args.len() != want {
        return plain(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn at_least(name: &str, args: &[Val], want: usize) -> Result<(), CallError> {
    if args.len() < want {
        return plain(format!(
            "wrong number of args for {name}: want at least {want} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn nullify(args: &[Val]) -> Vec<Value> {
    args.iter()
        .map(|v| v.clone().unwrap_or(Value::Null))
        .collect()
}

/// Runs built-in `name`, or `None` when it is not a built-in.
pub(crate) fn builtin(name: &str, args: &[Val]) -> Option<Result<Value, CallError>> {
    let r = match name {
        "not" => arity(name, args, 1).map(|_| Value::Bool(!crate::exec::is_true(&args[0]))),
        "len" => arity(name, args, 1).and_then(|_| len(args[0].as_ref())),
        "index" => at_least(name, args, 1).and_then(|_| index(&args[0], &args[1..])),
        "slice" => at_least(name, args, 1).and_then(|_| slice(&args[0], &args[1..])),
        "print" => Ok(Value::String(sprint(&nullify(args)))),
        "println" => Ok(Value::String(sprintln(&nullify(args)))),
        "printf" => at_least(name, args, 1).and_then(|_| match &args[0] {
            Some(Value::String(f)) => Ok(Value::String(sprintf(f, &nullify(&args[1..])))),
            None => plain("invalid value; expected string"),
            Some(v) => plain(format!(
                "wrong type for value; expected string; got {}",
                type_name(v)
            )),
        }),
        "eq" => at_least(name, args, 1).and_then(|_| eq(&args[0], &args[1..]).map(Value::Bool)),
        "ne" => {
            arity(name, args, 2).and_then(|_| eq(&args[0], &args[1..]).map(|b| Value::Bool(!b)))
        }
        "lt" => arity(name, args, 2).and_then(|_| lt(&args[0], &args[1]).map(Value::Bool)),
        "le" => arity(name, args, 2).and_then(|_| {
            Ok(Value::Bool(
                lt(&args[0], &args[1])? || eq(&args[0], &args[1..])?,
            ))
        }),
        "gt" => arity(name, args, 2).and_then(|_| {
            Ok(Value::Bool(
                !(lt(&args[0], &args[1])? || eq(&args[0], &args[1..])?),
            ))
        }),
        "ge" => arity(name, args, 2).and_then(|_| lt(&args[0], &args[1]).map(|b| Value::Bool(!b))),
        "html" => Ok(Value::String(html_escape(&eval_args(args)))),
        "js" => Ok(Value::String(js_escape(&eval_args(args)))),
        "urlquery" => Ok(Value::String(query_escape(&eval_args(args)))),
        "call" => call("call is not supported"),
        _ => return None,
    };
    Some(r)
}

fn eval_args(args: &[Val]) -> String {
    if let [Some(Value::String(s))] = args {
        return s.clone();
    }
    sprint(&nullify(args))
}

fn len(v: Option<&Value>) -> Result<Value, CallError> {
    match v {
        None => call("reflect: call of reflect.Value.Type on zero Value"),
        Some(Value::Null) => call("len of nil pointer"),
        Some(Value::String(s)) => Ok(Value::from(s.len())),
        Some(Value::Array(a)) => Ok(Value::from(a.len())),
        Some(Value::Object(m)) => Ok(Value::from(m.len())),
        Some(other) => call(format!("len of type {}", type_name(other))),
    }
}

fn index_of(idx: &Val, cap: usize) -> Result<usize, CallError> {
    match idx {
        None | Some(Value::Null) => call("cannot index slice/array with nil"),
        Some(Value::Number(n)) if !n.is_f64() => {
            let i = n.as_i64().unwrap_or(i64::MAX);
            if i < 0 || i as u64 >= cap as u64 {
                return call(format!("index out of range: {i}"));
            }
            Ok(i as usize)
        }
        Some(other) => call(format!(
            "cannot index slice/array with type {}",
            type_name(other)
        )),
    }
}

fn index(item: &Val, indexes: &[Val]) -> Result<Value, CallError> {
    let Some(mut cur) = item.clone() else {
        return call("index of untyped nil");
    };
    for idx in indexes {
        cur = match cur {
            Value::Array(mut a) => {
                let len = a.len();
                let i = index_of(idx, len)?;
                a.swap_remove(i)
            }
            Value::String(s) => {
                let i = index_of(idx, s.len())?;
                Value::from(s.as_bytes()[i])
            }
            Value::Object(mut m) => match idx {
                Some(Value::String(k)) => m.remove(k).unwrap_or(Value::Null),
                None | Some(Value::Null) => return call("value is nil; should be of type string"),
                Some(other) => {
                    return call(format!(
                        "value has type {}; should be string",
                        type_name(other)
                    ));
                }
            },
            Value::Null => return call("index of untyped nil"),
            other => return call(format!("can't index item of type {}", type_name(&other))),
        };
    }
    Ok(cur)
}

fn slice(item: &Val, indexes: &[Val]) -> Result<Value, CallError> {
    let Some(v) = item else {
        return call("slice of untyped nil");
    };
    if indexes.len() > 3 {
        return call(format!("too many slice indexes: {}", indexes.len()));
    }
    let cap = match v {
        Value::String(s) => {
            if indexes.len() == 3 {
                return call("cannot 3-index slice a string");
            }
            s.len()
        }
        Value::Array(a) => a.len(),
        Value::Null => return call("slice of untyped nil"),
        other => return call(format!("can't slice item of type {}", type_name(other))),
    };
    let mut idx = [0usize, cap, cap];
    for (i, x) in indexes.iter().enumerate() {
        idx[i] = index_of(x, cap + 1)?;
    }
    if idx[0] > idx[1] {
        return call(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return call(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    match v {
        Value::String(s) => match s.get(idx[0]..idx[1]) {
            Some(sub) => Ok(Value::String(sub.to_string())),
            None => Ok(Value::String(
                String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]]).into_owned(),
            )),
        },
        Value::Array(a) => Ok(Value::Array(a[idx[0]..idx[1]].to_vec())),
        _ => call("can't slice"),
    }
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum BasicKind {
    Invalid,
    Bool,
    Int,
    Uint,
    Float,
    Str,
}

fn basic_kind(v: &Val) -> BasicKind {
    match v {
        Some(Value::Bool(_)) => BasicKind::Bool,
        Some(Value::Number(n)) if n.is_f64() => BasicKind::Float,
        Some(Value::Number(n)) if n.is_i64() => BasicKind::Int,
        Some(Value::Number(_)) => BasicKind::Uint,
        Some(Value::String(_)) => BasicKind::Str,
        _ => BasicKind::Invalid,
    }
}

fn go_type(v: &Val) -> String {
    match v {
        None => "<nil>".into(),
        Some(v) => type_name(v).into(),
    }
}

fn eq(a: &Val, others: &[Val]) -> Result<bool, CallError> {
    if others.is_empty() {
        return call("missing argument for comparison");
    }
    let a = unnull(a);
    let k1 = basic_kind(&a);
    for b in others {
        let b = unnull(b);
        let k2 = basic_kind(&b);
        let truth = if k1 != k2 {
            match (k1, k2) {
                (BasicKind::Int, BasicKind::Uint) | (BasicKind::Uint, BasicKind::Int) => {
                    as_i128(&a) == as_i128(&b)
                }
                _ => {
                    if a.is_some() && b.is_some() {
                        return call(format!(
                            "incompatible types for comparison: {} and {}",
                            go_type(&a),
                            go_type(&b)
                        ));
                    }
                    false
                }
            }
        } else {
            match k1 {
                BasicKind::Invalid => {
                    // Non-basic kinds: nil compares to nil; maps and slices are not comparable.
                    match (&a, &b) {
                        (None, None) => true,
                        (None, Some(_)) | (Some(_), None) => false,
                        (Some(x), Some(_)) => {
                            return call(format!(
                                "non-comparable type {}: {}",
                                to_v(x),
                                type_name(x)
                            ));
                        }
                    }
                }
                BasicKind::Float => as_f64(&a) == as_f64(&b),
                BasicKind::Int | BasicKind::Uint => as_i128(&a) == as_i128(&b),
                _ => a == b,
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn unnull(v: &Val) -> Val {
    match v {
        Some(Value::Null) => None,
        v => v.clone(),
    }
}

fn as_i128(v: &Val) -> Option<i128> {
    match v {
        Some(Value::Number(n)) => n.as_i64().map(i128::from).or(n.as_u64().map(i128::from)),
        _ => None,
    }
}

fn as_f64(v: &Val) -> Option<f64> {
    match v {
        Some(Value::Number(n)) => n.as_f64(),
        _ => None,
    }
}

fn lt(a: &Val, b: &Val) -> Result<bool, CallError> {
    let a = unnull(a);
    let b = unnull(b);
    let k1 = basic_kind(&a);
    let k2 = basic_kind(&b);
    if k1 == BasicKind::Invalid || k2 == BasicKind::Invalid {
        return call("invalid type for comparison");
    }
    if k1 != k2 {
        return match (k1, k2) {
            (BasicKind::Int, BasicKind::Uint) | (BasicKind::Uint, BasicKind::Int) => {
                Ok(as_i128(&a) < as_i128(&b))
            }
            _ => call(format!(
                "incompatible types for comparison: {} and {}",
                go_type(&a),
                go_type(&b)
            )),
        };
    }
    match k1 {
        BasicKind::Bool => call("invalid type for comparison"),
        BasicKind::Float => Ok(as_f64(&a) < as_f64(&b)),
        BasicKind::Int | BasicKind::Uint => Ok(as_i128(&a) < as_i128(&b)),
        BasicKind::Str => {
            Ok(a.as_ref().and_then(Value::as_str) < b.as_ref().and_then(Value::as_str))
        }
        BasicKind::Invalid => call("invalid type for comparison"),
    }
}

pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
