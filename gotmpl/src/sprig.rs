//! The Sprig v3 functions Nomad Packs use (Masterminds/sprig v3.3.0 semantics), without `env` and
//! `expandenv`.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::Digest as _;

use crate::fmt::{go_quote, to_v, type_name};
use crate::funcs::{ParamType as P, Sig};
use crate::{Entry, FuncMap};

type R = Result<Value, String>;

/// Values nest at most this deep: a template that wraps a map in itself in a loop errors out
/// instead of overflowing the stack when the value is printed or dropped.
pub(crate) const MAX_VALUE_DEPTH: usize = 1000;

fn reg(
    m: &mut FuncMap,
    name: &str,
    fixed: &[P],
    variadic: Option<P>,
    f: impl Fn(&[Value]) -> R + Send + Sync + 'static,
) {
    let checked = move |args: &[Value]| -> R {
        let v = f(args)?;
        if too_deep(&v) {
            return Err(format!("result nests deeper than {MAX_VALUE_DEPTH} levels"));
        }
        Ok(v)
    };
    m.insert_entry(
        name,
        Entry {
            f: Arc::new(checked),
            sig: Some(Sig {
                fixed: fixed.to_vec(),
                variadic,
            }),
        },
    );
}

/// A result larger than the output cap is refused before it is built.
fn check_size(len: u128) -> Result<(), String> {
    if len > crate::exec::MAX_OUTPUT as u128 {
        return Err(format!("result exceeds {} bytes", crate::exec::MAX_OUTPUT));
    }
    Ok(())
}

/// Sprig's indent/nindent: `prefix`, then `n` spaces before every line.
fn indent(n: i64, text: &str, prefix: &str) -> R {
    if n < 0 {
        return Err("strings: negative Repeat count".into());
    }
    let lines = text.matches('\n').count() as u128 + 1;
    check_size(text.len() as u128 + lines * n as u128)?;
    let pad = " ".repeat(n as usize);
    Ok(Value::String(format!(
        "{prefix}{pad}{}",
        text.replace('\n', &format!("\n{pad}"))
    )))
}

/// Iterative (no recursion) depth check.
fn too_deep(v: &Value) -> bool {
    let mut stack: Vec<(&Value, usize)> = vec![(v, 1)];
    while let Some((v, depth)) = stack.pop() {
        if depth > MAX_VALUE_DEPTH {
            return true;
        }
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|e| (e, depth + 1))),
            Value::Object(m) => stack.extend(m.values().map(|e| (e, depth + 1))),
            _ => {}
        }
    }
    false
}
fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn i(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// Sprig's `strval`: strings as is, everything else `%v`.
pub(crate) fn strval(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => to_v(other),
    }
}

/// Sprig's `strslice`: nil elements are skipped.
fn strslice(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().filter(|e| !e.is_null()).map(strval).collect(),
        Value::Null => Vec::new(),
        other => vec![strval(other)],
    }
}

/// Sprig's `empty`.
pub(crate) fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

/// `cast.ToInt64`: numbers truncate, strings parse (base prefixes, `.0` suffix), else 0.
fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or(n.as_u64().map(|u| u as i64))
            .unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64),
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => parse_go_int(s).unwrap_or(0),
        _ => 0,
    }
}

fn parse_go_int(s: &str) -> Option<i64> {
    let mut t = s;
    if let Some(dot) = t.find('.')
        && t[dot + 1..].chars().all(|c| c == '0')
    {
        t = &t[..dot];
    }
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let lower = body.to_ascii_lowercase();
    let v = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if lower.len() > 1 && lower.starts_with('0') {
        i64::from_str_radix(&lower[1..], 8).ok()?
    } else {
        if lower.is_empty() || !lower.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        lower.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn list_of(v: &Value, what: &str) -> Result<Vec<Value>, String> {
    match v {
        Value::Array(a) => Ok(a.clone()),
        // Sprig asks reflect for the kind of a nil interface: a nil-pointer panic in Go.
        Value::Null => Err(NIL_DEREF.to_string()),
        other => Err(format!("Cannot {what} on type {}", kind_of(other))),
    }
}

fn strings(v: Vec<String>) -> Value {
    Value::Array(v.into_iter().map(Value::String).collect())
}

/// Go's `encoding/json` output: `<`, `>`, `&` escaped, floats as Go writes them.
pub(crate) fn go_json(v: &Value, indent: Option<&str>) -> String {
    let mut out = String::new();
    write_json(v, indent, 0, &mut out);
    out
}

fn write_json(v: &Value, indent: Option<&str>, depth: usize, out: &mut String) {
    let nl = |out: &mut String, d: usize| {
        if let Some(ind) = indent {
            out.push('\n');
            for _ in 0..d {
                out.push_str(ind);
            }
        }
    };
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(0.0);
            let a = f.abs();
            if a != 0.0 && !(1e-6..1e21).contains(&a) {
                let s = crate::fmt::format_float_g(f);
                // Go: 'e' format with shortest digits, exponent without a leading zero.
                let s = if s.contains('e') { s } else { format!("{f:e}") };
                out.push_str(&s.replace("e-0", "e-").replace("e+0", "e+"));
            } else {
                let s = crate::fmt::format_float_g(f);
                if s.contains('e') {
                    out.push_str(&format!("{f}"));
                } else {
                    out.push_str(&s);
                }
            }
        }
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                        out.push_str(&format!("\\u{:04x}", c as u32))
                    }
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, depth + 1);
                write_json(e, indent, depth + 1, out);
            }
            if !a.is_empty() {
                nl(out, depth);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, depth + 1);
                write_json(&Value::String((*k).clone()), None, 0, out);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write_json(&m[k.as_str()], indent, depth + 1, out);
            }
            if !m.is_empty() {
                nl(out, depth);
            }
            out.push('}');
        }
    }
}

fn floats_everywhere(v: Value) -> Value {
    match v {
        Value::Number(n) => float(n.as_f64().unwrap_or(0.0)),
        Value::Array(a) => Value::Array(a.into_iter().map(floats_everywhere).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, floats_everywhere(v)))
                .collect(),
        ),
        v => v,
    }
}

fn merge_into(dst: &mut Map<String, Value>, src: &Map<String, Value>, overwrite: bool) {
    for (k, v) in src {
        match (dst.get_mut(k), v) {
            (Some(Value::Object(d)), Value::Object(s)) => merge_into(d, s, overwrite),
            (Some(existing), v) => {
                if overwrite || empty(existing) {
                    *existing = v.clone();
                }
            }
            (None, v) => {
                dst.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Split into words for camelcase/snakecase/kebabcase (xstrings' rules, simplified).
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = s.chars().collect();
    for (idx, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if c.is_uppercase() && !cur.is_empty() {
            let prev = chars[idx - 1];
            let next_lower = chars.get(idx + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                out.push(std::mem::take(&mut cur));
            }
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.push_str(&go_upper(c.encode_utf8(&mut [0; 4])));
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_');
    }
    out
}

fn go_regex(re: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(re).map_err(|e| {
        let detail = e.to_string();
        let last = detail
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        let last = last.strip_prefix("error: ").unwrap_or(last);
        format!("regexp: Compile(`{re}`): error parsing regexp: {last}")
    })
}

/// Go's `unicode.ToUpper` per rune: no rune grows into several (ß stays ß).
fn go_upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// Go's `unicode.ToLower` per rune.
fn go_lower(s: &str) -> String {
    s.chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

pub(crate) fn sprig() -> FuncMap {
    let mut m = FuncMap::new();
    let a = Some(P::Any);
    reg(&mut m, "default", &[P::Any], a, |v| {
        Ok(if v.len() < 2 || empty(&v[1]) {
            v[0].clone()
        } else {
            v[1].clone()
        })
    });
    reg(&mut m, "empty", &[P::Any], None, |v| {
        Ok(Value::Bool(empty(&v[0])))
    });
    reg(&mut m, "coalesce", &[], a, |v| {
        Ok(v.iter().find(|x| !empty(x)).cloned().unwrap_or(Value::Null))
    });
    reg(&mut m, "ternary", &[P::Any, P::Any, P::Bool], None, |v| {
        Ok(if v[2].as_bool() == Some(true) {
            v[0].clone()
        } else {
            v[1].clone()
        })
    });
    reg(&mut m, "quote", &[], a, |v| {
        Ok(Value::String(
            v.iter()
                .filter(|x| !x.is_null())
                .map(|x| go_quote(&strval(x)))
                .collect::<Vec<_>>()
                .join(" "),
        ))
    });
    reg(&mut m, "squote", &[], a, |v| {
        Ok(Value::String(
            v.iter()
                .filter(|x| !x.is_null())
                .map(|x| format!("'{}'", strval(x)))
                .collect::<Vec<_>>()
                .join(" "),
        ))
    });
    reg(&mut m, "upper", &[P::Str], None, |v| {
        Ok(Value::String(go_upper(s(&v[0]))))
    });
    reg(&mut m, "lower", &[P::Str], None, |v| {
        Ok(Value::String(go_lower(s(&v[0]))))
    });
    reg(&mut m, "title", &[P::Str], None, |v| {
        Ok(Value::String(title(s(&v[0]))))
    });
    reg(&mut m, "trim", &[P::Str], None, |v| {
        Ok(Value::String(s(&v[0]).trim().to_string()))
    });
    reg(&mut m, "trimAll", &[P::Str, P::Str], None, |v| {
        let cut: Vec<char> = s(&v[0]).chars().collect();
        Ok(Value::String(
            s(&v[1]).trim_matches(cut.as_slice()).to_string(),
        ))
    });
    reg(&mut m, "trimPrefix", &[P::Str, P::Str], None, |v| {
        Ok(Value::String(
            s(&v[1])
                .strip_prefix(s(&v[0]))
                .unwrap_or(s(&v[1]))
                .to_string(),
        ))
    });
    reg(&mut m, "trimSuffix", &[P::Str, P::Str], None, |v| {
        Ok(Value::String(
            s(&v[1])
                .strip_suffix(s(&v[0]))
                .unwrap_or(s(&v[1]))
                .to_string(),
        ))
    });
    reg(&mut m, "replace", &[P::Str, P::Str, P::Str], None, |v| {
        let (old, new, src) = (s(&v[0]), s(&v[1]), s(&v[2]));
        let count = if old.is_empty() {
            src.chars().count() + 1
        } else {
            src.matches(old).count()
        };
        check_size(src.len() as u128 + count as u128 * new.len() as u128)?;
        if old.is_empty() {
            // Go inserts `new` around every rune.
            let mut out = String::from(new);
            for c in src.chars() {
                out.push(c);
                out.push_str(new);
            }
            return Ok(Value::String(out));
        }
        Ok(Value::String(src.replace(old, new)))
    });
    reg(&mut m, "contains", &[P::Str, P::Str], None, |v| {
        Ok(Value::Bool(s(&v[1]).contains(s(&v[0]))))
    });
    reg(&mut m, "hasPrefix", &[P::Str, P::Str], None, |v| {
        Ok(Value::Bool(s(&v[1]).starts_with(s(&v[0]))))
    });
    reg(&mut m, "hasSuffix", &[P::Str, P::Str], None, |v| {
        Ok(Value::Bool(s(&v[1]).ends_with(s(&v[0]))))
    });
    reg(&mut m, "repeat", &[P::Int, P::Str], None, |v| {
        let n = i(&v[0]);
        if n < 0 {
            return Err("strings: negative Repeat count".into());
        }
        if (n as u128) * (s(&v[1]).len() as u128) > crate::exec::MAX_OUTPUT as u128 {
            return Err("repeat: result too large".into());
        }
        Ok(Value::String(s(&v[1]).repeat(n as usize)))
    });
    reg(&mut m, "substr", &[P::Int, P::Int, P::Str], None, |v| {
        let (start, end, st) = (i(&v[0]), i(&v[1]), s(&v[2]));
        let len = st.len() as i64;
        let (a, b) = if start < 0 {
            (0, end)
        } else if end < 0 || end > len {
            (start, len)
        } else {
            (start, end)
        };
        if a > b || b > len || a > len || b < 0 {
            return Err(format!(
                "runtime error: slice bounds out of range [{a}:{b}]"
            ));
        }
        Ok(Value::String(
            String::from_utf8_lossy(&st.as_bytes()[a as usize..b as usize]).into_owned(),
        ))
    });
    reg(&mut m, "trunc", &[P::Int, P::Str], None, |v| {
        let (c, st) = (i(&v[0]), s(&v[1]));
        let len = st.len() as i64;
        let out = if c < 0 && len + c > 0 {
            &st.as_bytes()[(len + c) as usize..]
        } else if c >= 0 && len > c {
            &st.as_bytes()[..c as usize]
        } else {
            st.as_bytes()
        };
        Ok(Value::String(String::from_utf8_lossy(out).into_owned()))
    });
    reg(&mut m, "nospace", &[P::Str], None, |v| {
        Ok(Value::String(
            s(&v[0]).chars().filter(|c| !c.is_whitespace()).collect(),
        ))
    });
    reg(&mut m, "indent", &[P::Int, P::Str], None, |v| {
        indent(i(&v[0]), s(&v[1]), "")
    });
    reg(&mut m, "nindent", &[P::Int, P::Str], None, |v| {
        indent(i(&v[0]), s(&v[1]), "\n")
    });
    reg(&mut m, "join", &[P::Str, P::Any], None, |v| {
        Ok(Value::String(strslice(&v[1]).join(s(&v[0]))))
    });
    reg(&mut m, "split", &[P::Str, P::Str], None, |v| {
        let mut out = Map::new();
        for (n, part) in go_split(s(&v[1]), s(&v[0])).into_iter().enumerate() {
            out.insert(format!("_{n}"), Value::String(part));
        }
        Ok(Value::Object(out))
    });
    reg(&mut m, "splitList", &[P::Str, P::Str], None, |v| {
        Ok(strings(go_split(s(&v[1]), s(&v[0]))))
    });
    reg(&mut m, "toString", &[P::Any], None, |v| {
        Ok(Value::String(strval(&v[0])))
    });
    reg(&mut m, "toStrings", &[P::Any], None, |v| {
        Ok(strings(strslice(&v[0])))
    });
    reg(&mut m, "toJson", &[P::Any], None, |v| {
        Ok(Value::String(go_json(&v[0], None)))
    });
    reg(&mut m, "toPrettyJson", &[P::Any], None, |v| {
        Ok(Value::String(go_json(&v[0], Some("  "))))
    });
    reg(&mut m, "fromJson", &[P::Str], None, |v| {
        Ok(serde_json::from_str::<Value>(s(&v[0]))
            .map(floats_everywhere)
            .unwrap_or(Value::Null))
    });
    reg(&mut m, "list", &[], a, |v| Ok(Value::Array(v.to_vec())));
    for name in ["append", "mustAppend", "push", "mustPush"] {
        reg(&mut m, name, &[P::Any, P::Any], None, |v| {
            let mut l = list_of(&v[0], "push")?;
            l.push(v[1].clone());
            Ok(Value::Array(l))
        });
    }
    for name in ["prepend", "mustPrepend"] {
        reg(&mut m, name, &[P::Any, P::Any], None, |v| {
            let mut l = list_of(&v[0], "prepend")?;
            l.insert(0, v[1].clone());
            Ok(Value::Array(l))
        });
    }
    for name in ["first", "mustFirst"] {
        reg(&mut m, name, &[P::Any], None, |v| {
            Ok(list_of(&v[0], "find first")?
                .first()
                .cloned()
                .unwrap_or(Value::Null))
        });
    }
    for name in ["last", "mustLast"] {
        reg(&mut m, name, &[P::Any], None, |v| {
            Ok(list_of(&v[0], "find last")?
                .last()
                .cloned()
                .unwrap_or(Value::Null))
        });
    }
    for name in ["rest", "mustRest"] {
        reg(&mut m, name, &[P::Any], None, |v| {
            let l = list_of(&v[0], "find rest")?;
            Ok(Value::Array(l.get(1..).unwrap_or_default().to_vec()))
        });
    }
    for name in ["initial", "mustInitial"] {
        reg(&mut m, name, &[P::Any], None, |v| {
            let l = list_of(&v[0], "find initial")?;
            Ok(Value::Array(
                l.get(..l.len().saturating_sub(1))
                    .unwrap_or_default()
                    .to_vec(),
            ))
        });
    }
    reg(&mut m, "slice", &[P::Any], a, |v| {
        let l = match &v[0] {
            Value::Array(a) => a,
            Value::Null => return Err(NIL_DEREF.into()),
            other => {
                return Err(format!(
                    "list should be type of slice or array but {}",
                    kind_of(other)
                ));
            }
        };
        if l.is_empty() {
            return Ok(Value::Null);
        }
        let start = v.get(1).map(to_i64).unwrap_or(0);
        let end = v.get(2).map(to_i64).unwrap_or(l.len() as i64);
        if start < 0 || end < start || end > l.len() as i64 {
            return Err("reflect.Value.Slice: slice index out of bounds".into());
        }
        Ok(Value::Array(l[start as usize..end as usize].to_vec()))
    });
    reg(&mut m, "uniq", &[P::Any], None, |v| {
        let l = list_of(&v[0], "find uniq")?;
        let mut out: Vec<Value> = Vec::new();
        for e in l {
            if !out.contains(&e) {
                out.push(e);
            }
        }
        Ok(Value::Array(out))
    });
    reg(&mut m, "has", &[P::Any, P::Any], None, |v| {
        Ok(Value::Bool(match &v[1] {
            Value::Null => false,
            Value::Array(a) => a.contains(&v[0]),
            other => return Err(format!("Cannot find has on type {}", type_name(other))),
        }))
    });
    reg(&mut m, "without", &[P::Any], a, |v| {
        let l = list_of(&v[0], "find without")?;
        Ok(Value::Array(
            l.into_iter().filter(|e| !v[1..].contains(e)).collect(),
        ))
    });
    reg(&mut m, "compact", &[P::Any], None, |v| {
        let l = list_of(&v[0], "compact")?;
        Ok(Value::Array(l.into_iter().filter(|e| !empty(e)).collect()))
    });
    reg(&mut m, "concat", &[], a, |v| {
        let mut out = Vec::new();
        for l in v {
            out.extend(list_of(l, "concat")?);
        }
        Ok(Value::Array(out))
    });
    reg(&mut m, "sortAlpha", &[P::Any], None, |v| {
        Ok(match &v[0] {
            Value::Array(_) => {
                let mut l = strslice(&v[0]);
                l.sort();
                strings(l)
            }
            other => strings(vec![strval(other)]),
        })
    });
    reg(&mut m, "keys", &[], Some(P::Map), |v| {
        // Go's map order is random; sorted here (packs pipe keys into sortAlpha anyway).
        let mut out: Vec<String> = v
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|m| m.keys().cloned())
            .collect();
        out.sort();
        Ok(strings(out))
    });
    reg(&mut m, "values", &[P::Map], None, |v| {
        let mut pairs: Vec<(&String, &Value)> = v[0]
            .as_object()
            .map(|m| m.iter().collect())
            .unwrap_or_default();
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        Ok(Value::Array(
            pairs.into_iter().map(|(_, v)| v.clone()).collect(),
        ))
    });
    reg(&mut m, "dict", &[], a, |v| {
        let mut out = Map::new();
        for pair in v.chunks(2) {
            let val = pair.get(1).cloned().unwrap_or(Value::String(String::new()));
            out.insert(strval(&pair[0]), val);
        }
        Ok(Value::Object(out))
    });
    reg(&mut m, "get", &[P::Map, P::Str], None, |v| {
        Ok(v[0]
            .get(s(&v[1]))
            .cloned()
            .unwrap_or(Value::String(String::new())))
    });
    reg(&mut m, "set", &[P::Map, P::Str, P::Any], None, |v| {
        let Some(d) = v[0].as_object() else {
            return Err("assignment to entry in nil map".into());
        };
        let mut d = d.clone();
        d.insert(s(&v[1]).to_string(), v[2].clone());
        Ok(Value::Object(d))
    });
    reg(&mut m, "unset", &[P::Map, P::Str], None, |v| {
        let mut d = v[0].as_object().cloned().unwrap_or_default();
        d.shift_remove(s(&v[1]));
        Ok(Value::Object(d))
    });
    reg(&mut m, "hasKey", &[P::Map, P::Str], None, |v| {
        Ok(Value::Bool(v[0].get(s(&v[1])).is_some()))
    });
    reg(&mut m, "pluck", &[P::Str], Some(P::Map), |v| {
        Ok(Value::Array(
            v[1..]
                .iter()
                .filter_map(|d| d.get(s(&v[0])).cloned())
                .collect(),
        ))
    });
    for (name, overwrite) in [
        ("merge", false),
        ("mustMerge", false),
        ("mergeOverwrite", true),
        ("mustMergeOverwrite", true),
    ] {
        reg(&mut m, name, &[P::Map], Some(P::Map), move |v| {
            let mut dst = v[0].as_object().cloned().unwrap_or_default();
            for src in &v[1..] {
                if let Some(src) = src.as_object() {
                    merge_into(&mut dst, src, overwrite);
                }
            }
            Ok(Value::Object(dst))
        });
    }
    reg(&mut m, "int", &[P::Any], None, |v| {
        Ok(Value::from(to_i64(&v[0])))
    });
    reg(&mut m, "int64", &[P::Any], None, |v| {
        Ok(Value::from(to_i64(&v[0])))
    });
    reg(&mut m, "float64", &[P::Any], None, |v| {
        Ok(float(to_f64(&v[0])))
    });
    reg(&mut m, "atoi", &[P::Str], None, |v| {
        Ok(Value::from(s(&v[0]).parse::<i64>().unwrap_or(0)))
    });
    reg(&mut m, "add", &[], a, |v| {
        Ok(Value::from(
            v.iter().map(to_i64).fold(0i64, i64::wrapping_add),
        ))
    });
    reg(&mut m, "add1", &[P::Any], None, |v| {
        Ok(Value::from(to_i64(&v[0]).wrapping_add(1)))
    });
    reg(&mut m, "sub", &[P::Any, P::Any], None, |v| {
        Ok(Value::from(to_i64(&v[0]).wrapping_sub(to_i64(&v[1]))))
    });
    reg(&mut m, "mul", &[P::Any], a, |v| {
        Ok(Value::from(
            v.iter().map(to_i64).fold(1i64, i64::wrapping_mul),
        ))
    });
    reg(&mut m, "div", &[P::Any, P::Any], None, |v| {
        to_i64(&v[0])
            .checked_div(to_i64(&v[1]))
            .map(Value::from)
            .ok_or_else(|| "runtime error: integer divide by zero".to_string())
    });
    reg(&mut m, "mod", &[P::Any, P::Any], None, |v| {
        to_i64(&v[0])
            .checked_rem(to_i64(&v[1]))
            .map(Value::from)
            .ok_or_else(|| "runtime error: integer divide by zero".to_string())
    });
    reg(&mut m, "max", &[P::Any], a, |v| {
        Ok(Value::from(v.iter().map(to_i64).max().unwrap_or(0)))
    });
    reg(&mut m, "min", &[P::Any], a, |v| {
        Ok(Value::from(v.iter().map(to_i64).min().unwrap_or(0)))
    });
    reg(&mut m, "until", &[P::Int], None, |v| {
        let n = i(&v[0]);
        if n.unsigned_abs() > 1_000_000 {
            return Err("until: count too large".into());
        }
        let r: Vec<Value> = if n >= 0 {
            (0..n).map(Value::from).collect()
        } else {
            (0..-n).map(|x| Value::from(-x)).collect()
        };
        Ok(Value::Array(r))
    });
    reg(&mut m, "b64enc", &[P::Str], None, |v| {
        Ok(Value::String(
            base64::engine::general_purpose::STANDARD.encode(s(&v[0])),
        ))
    });
    reg(&mut m, "b64dec", &[P::Str], None, |v| {
        Ok(Value::String(
            match base64::engine::general_purpose::STANDARD.decode(s(&v[0])) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => go_base64_error(&e),
            },
        ))
    });
    reg(&mut m, "sha256sum", &[P::Str], None, |v| {
        Ok(Value::String(hex::encode(sha2::Sha256::digest(
            s(&v[0]).as_bytes(),
        ))))
    });
    reg(&mut m, "regexMatch", &[P::Str, P::Str], None, |v| {
        Ok(Value::Bool(
            go_regex(s(&v[0]))
                .map(|re| re.is_match(s(&v[1])))
                .unwrap_or(false),
        ))
    });
    reg(&mut m, "regexFind", &[P::Str, P::Str], None, |v| {
        let re = go_regex(s(&v[0]))?;
        Ok(Value::String(
            re.find(s(&v[1]))
                .map(|m| m.as_str().to_string())
                .unwrap_or_default(),
        ))
    });
    reg(
        &mut m,
        "regexReplaceAll",
        &[P::Str, P::Str, P::Str],
        None,
        |v| {
            let re = go_regex(s(&v[0]))?;
            Ok(Value::String(
                re.replace_all(s(&v[1]), s(&v[2])).into_owned(),
            ))
        },
    );
    reg(&mut m, "kindOf", &[P::Any], None, |v| {
        Ok(Value::String(kind_of(&v[0]).into()))
    });
    reg(&mut m, "kindIs", &[P::Str, P::Any], None, |v| {
        Ok(Value::Bool(s(&v[0]) == kind_of(&v[1])))
    });
    reg(&mut m, "typeOf", &[P::Any], None, |v| {
        Ok(Value::String(type_name(&v[0]).into()))
    });
    reg(&mut m, "fail", &[P::Str], None, |v| {
        Err(s(&v[0]).to_string())
    });
    reg(&mut m, "camelcase", &[P::Str], None, |v| {
        Ok(Value::String(
            words(s(&v[0]))
                .iter()
                .map(|w| title(&w.to_lowercase()))
                .collect(),
        ))
    });
    reg(&mut m, "snakecase", &[P::Str], None, |v| {
        Ok(Value::String(
            words(s(&v[0]))
                .iter()
                .map(|w| w.to_lowercase())
                .collect::<Vec<_>>()
                .join("_"),
        ))
    });
    reg(&mut m, "kebabcase", &[P::Str], None, |v| {
        Ok(Value::String(
            words(s(&v[0]))
                .iter()
                .map(|w| w.to_lowercase())
                .collect::<Vec<_>>()
                .join("-"),
        ))
    });
    reg(&mut m, "plural", &[P::Str, P::Str, P::Int], None, |v| {
        Ok(if i(&v[2]) == 1 {
            v[0].clone()
        } else {
            v[1].clone()
        })
    });
    reg(&mut m, "base", &[P::Str], None, |v| {
        Ok(Value::String(path_base(s(&v[0]))))
    });
    reg(&mut m, "dir", &[P::Str], None, |v| {
        Ok(Value::String(path_dir(s(&v[0]))))
    });
    reg(&mut m, "clean", &[P::Str], None, |v| {
        Ok(Value::String(path_clean(s(&v[0]))))
    });
    reg(&mut m, "ext", &[P::Str], None, |v| {
        let p = s(&v[0]);
        let ext = match p.rfind(['.', '/']) {
            Some(i) if p.as_bytes()[i] == b'.' => &p[i..],
            _ => "",
        };
        Ok(Value::String(ext.to_string()))
    });
    reg(&mut m, "uuidv4", &[], None, |_| {
        Ok(Value::String(uuid::Uuid::new_v4().to_string()))
    });
    m
}

/// Go's `path.Clean`.
fn path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `path.Base`.
fn path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// Go's `path.Dir`.
fn path_dir(p: &str) -> String {
    let dir = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    path_clean(dir)
}

fn go_base64_error(e: &base64::DecodeError) -> String {
    let at = match e {
        base64::DecodeError::InvalidByte(at, _)
        | base64::DecodeError::InvalidLastSymbol { offset: at, .. } => *at,
        base64::DecodeError::InvalidLength(len) => *len,
        base64::DecodeError::InvalidPadding => 0,
    };
    format!("illegal base64 data at input byte {at}")
}

const NIL_DEREF: &str = "runtime error: invalid memory address or nil pointer dereference";

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "invalid",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

/// Go's `strings.Split`: an empty separator splits into runes.
fn go_split(s: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return s.chars().map(String::from).collect();
    }
    s.split(sep).map(String::from).collect()
}
