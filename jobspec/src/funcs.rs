//! The HCL2 functions jobspecs may call (jobspec2's function table, `funcs_more.rs` has the
//! rest); filesystem functions fail like Nomad's with `AllowFS=false`, and a name Nomad does not
//! know (Terraform's `tostring`, `regex`, `templatefile`) is unknown here too.

use serde_json::{Map, Value};

use super::eval::{as_f64, num_f, to_str};

/// Why a call failed.
pub(crate) enum FuncErr {
    /// No such function.
    Unknown,
    /// The function rejected its arguments.
    Failed(String),
    /// A Nomad function this parser cannot evaluate.
    Unsupported,
}

pub(crate) fn fail<T>(msg: impl Into<String>) -> Result<T, FuncErr> {
    Err(FuncErr::Failed(msg.into()))
}

pub(crate) fn s(args: &[Value], i: usize) -> Result<String, FuncErr> {
    args.get(i)
        .and_then(to_str)
        .ok_or_else(|| FuncErr::Failed(format!("argument {} must be a string", i + 1)))
}

pub(crate) fn n(args: &[Value], i: usize) -> Result<f64, FuncErr> {
    args.get(i)
        .and_then(as_f64)
        .ok_or_else(|| FuncErr::Failed(format!("argument {} must be a number", i + 1)))
}

pub(crate) fn list(args: &[Value], i: usize) -> Result<Vec<Value>, FuncErr> {
    match args.get(i) {
        Some(Value::Array(a)) => Ok(a.clone()),
        _ => fail(format!("argument {} must be a list", i + 1)),
    }
}

fn obj(args: &[Value], i: usize) -> Result<Map<String, Value>, FuncErr> {
    match args.get(i) {
        Some(Value::Object(o)) => Ok(o.clone()),
        _ => fail(format!("argument {} must be a map", i + 1)),
    }
}

pub(crate) fn strs(v: Vec<Value>) -> Result<Vec<String>, FuncErr> {
    v.iter()
        .map(|x| to_str(x).ok_or_else(|| FuncErr::Failed("list elements must be strings".into())))
        .collect()
}

fn regex(p: &str) -> Result<regex::Regex, FuncErr> {
    regex::Regex::new(p).map_err(|e| FuncErr::Failed(format!("invalid regular expression: {e}")))
}

/// Call `name` with evaluated arguments.
pub(crate) fn call(name: &str, a: Vec<Value>) -> Result<Value, FuncErr> {
    let str_v = |x: String| Ok(Value::String(x));
    match name {
        // Nomad's filesystem functions, disabled in `/v1/jobs/parse` (AllowFS=false); Terraform's
        // `templatefile` is not one of them.
        "abspath" | "basename" | "dirname" | "file" | "filebase64" | "fileexists" | "fileset"
        | "pathexpand" => fail("filesystem function disabled"),
        "upper" => str_v(s(&a, 0)?.to_uppercase()),
        "lower" => str_v(s(&a, 0)?.to_lowercase()),
        "title" => str_v(
            s(&a, 0)?
                .split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "trimspace" => str_v(s(&a, 0)?.trim().to_string()),
        "trimprefix" => {
            let (x, p) = (s(&a, 0)?, s(&a, 1)?);
            str_v(x.strip_prefix(p.as_str()).unwrap_or(&x).to_string())
        }
        "trimsuffix" => {
            let (x, p) = (s(&a, 0)?, s(&a, 1)?);
            str_v(x.strip_suffix(p.as_str()).unwrap_or(&x).to_string())
        }
        "trim" => {
            let (x, cs) = (s(&a, 0)?, s(&a, 1)?);
            str_v(x.trim_matches(|c| cs.contains(c)).to_string())
        }
        "chomp" => str_v(s(&a, 0)?.trim_end_matches(['\n', '\r']).to_string()),
        "strrev" => str_v(s(&a, 0)?.chars().rev().collect()),
        "indent" => {
            let (k, x) = (n(&a, 0)? as usize, s(&a, 1)?);
            if k > 1024 {
                return fail("indentation must be at most 1024 spaces");
            }
            let pad = " ".repeat(k);
            str_v(x.replace('\n', &format!("\n{pad}")))
        }
        "substr" => {
            let x: Vec<char> = s(&a, 0)?.chars().collect();
            let off = n(&a, 1)? as i64;
            let len = n(&a, 2)? as i64;
            let start = if off < 0 {
                (x.len() as i64 + off).max(0)
            } else {
                off.min(x.len() as i64)
            } as usize;
            let end = if len < 0 {
                x.len()
            } else {
                (start + len as usize).min(x.len())
            };
            str_v(x[start..end].iter().collect())
        }
        "replace" => {
            let (x, from, to) = (s(&a, 0)?, s(&a, 1)?, s(&a, 2)?);
            if from.len() > 1 && from.starts_with('/') && from.ends_with('/') {
                let re = regex(&from[1..from.len() - 1])?;
                str_v(re.replace_all(&x, to.as_str()).into_owned())
            } else {
                str_v(x.replace(&from, &to))
            }
        }
        "regex_replace" => {
            let re = regex(&s(&a, 1)?)?;
            str_v(re.replace_all(&s(&a, 0)?, s(&a, 2)?.as_str()).into_owned())
        }
        "split" => {
            let (sep, x) = (s(&a, 0)?, s(&a, 1)?);
            Ok(Value::Array(
                x.split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect(),
            ))
        }
        "join" => {
            let sep = s(&a, 0)?;
            let mut parts = Vec::new();
            for i in 1..a.len() {
                parts.extend(strs(list(&a, i)?)?);
            }
            str_v(parts.join(&sep))
        }
        "format" => format_fn(&s(&a, 0)?, &a[1..]).map(Value::String),
        "formatlist" => {
            let f = s(&a, 0)?;
            let len = a[1..]
                .iter()
                .filter_map(|v| v.as_array().map(Vec::len))
                .max()
                .unwrap_or(0);
            let mut out = Vec::new();
            for i in 0..len {
                let row: Vec<Value> = a[1..]
                    .iter()
                    .map(|v| match v {
                        Value::Array(x) => x.get(i).cloned().unwrap_or(Value::Null),
                        o => o.clone(),
                    })
                    .collect();
                out.push(Value::String(format_fn(&f, &row)?));
            }
            Ok(Value::Array(out))
        }
        "length" => match a.first() {
            Some(Value::Array(x)) => Ok(Value::from(x.len())),
            Some(Value::Object(x)) => Ok(Value::from(x.len())),
            Some(Value::String(x)) => Ok(Value::from(x.chars().count())),
            _ => fail("argument must be a collection or string"),
        },
        "concat" => {
            let mut out = Vec::new();
            for i in 0..a.len() {
                out.extend(list(&a, i)?);
            }
            Ok(Value::Array(out))
        }
        "contains" => Ok(Value::Bool(
            list(&a, 0)?.contains(a.get(1).unwrap_or(&Value::Null)),
        )),
        "distinct" => {
            let mut out: Vec<Value> = Vec::new();
            for v in list(&a, 0)? {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            Ok(Value::Array(out))
        }
        "compact" => Ok(Value::Array(
            list(&a, 0)?
                .into_iter()
                .filter(|v| !v.is_null() && v != &Value::String(String::new()))
                .collect(),
        )),
        "flatten" => {
            fn flat(v: Vec<Value>, out: &mut Vec<Value>) {
                for x in v {
                    match x {
                        Value::Array(inner) => flat(inner, out),
                        o => out.push(o),
                    }
                }
            }
            let mut out = Vec::new();
            flat(list(&a, 0)?, &mut out);
            Ok(Value::Array(out))
        }
        "reverse" => Ok(Value::Array(list(&a, 0)?.into_iter().rev().collect())),
        "sort" => {
            let mut v = strs(list(&a, 0)?)?;
            v.sort();
            Ok(Value::Array(v.into_iter().map(Value::String).collect()))
        }
        "element" => {
            let l = list(&a, 0)?;
            if l.is_empty() {
                return fail("cannot use element function with an empty list");
            }
            let i = n(&a, 1)? as usize % l.len();
            Ok(l[i].clone())
        }
        "index" => {
            let l = list(&a, 0)?;
            let v = a.get(1).cloned().unwrap_or(Value::Null);
            match l.iter().position(|x| x == &v) {
                Some(i) => Ok(Value::from(i)),
                None => fail("item not found"),
            }
        }
        "slice" => {
            let l = list(&a, 0)?;
            let (st, en) = (n(&a, 1)? as usize, n(&a, 2)? as usize);
            if st > en || en > l.len() {
                return fail("index out of range");
            }
            Ok(Value::Array(l[st..en].to_vec()))
        }
        "range" => {
            let (st, en, step) = match a.len() {
                1 => (0.0, n(&a, 0)?, 1.0),
                2 => (n(&a, 0)?, n(&a, 1)?, 1.0),
                _ => (n(&a, 0)?, n(&a, 1)?, n(&a, 2)?),
            };
            if step == 0.0 {
                return fail("step must not be zero");
            }
            let mut out = Vec::new();
            let mut x = st;
            while (step > 0.0 && x < en) || (step < 0.0 && x > en) {
                out.push(num_f(x));
                x += step;
                if out.len() > 1024 {
                    return fail("more than 1024 values were generated");
                }
            }
            Ok(Value::Array(out))
        }
        "keys" => Ok(Value::Array(
            obj(&a, 0)?
                .keys()
                .map(|k| Value::String(k.clone()))
                .collect(),
        )),
        "values" => Ok(Value::Array(obj(&a, 0)?.values().cloned().collect())),
        "lookup" => {
            let m = obj(&a, 0)?;
            let k = s(&a, 1)?;
            match (m.get(&k), a.get(2)) {
                (Some(v), _) => Ok(v.clone()),
                (None, Some(d)) => Ok(d.clone()),
                (None, None) => fail(format!("lookup failed to find key {k:?}")),
            }
        }
        "merge" => {
            let mut out = Map::new();
            for v in &a {
                if let Value::Object(o) = v {
                    out.extend(o.clone());
                }
            }
            Ok(Value::Object(out))
        }
        "zipmap" => {
            let (k, v) = (strs(list(&a, 0)?)?, list(&a, 1)?);
            Ok(Value::Object(k.into_iter().zip(v).collect()))
        }
        "coalesce" => a
            .into_iter()
            .find(|v| !v.is_null() && v != &Value::String(String::new()))
            .ok_or_else(|| FuncErr::Failed("no non-null, non-empty-string arguments".into())),
        "coalescelist" => a
            .into_iter()
            .find(|v| v.as_array().is_some_and(|x| !x.is_empty()))
            .ok_or_else(|| FuncErr::Failed("no non-empty lists".into())),
        "abs" => Ok(num_f(n(&a, 0)?.abs())),
        "ceil" => Ok(num_f(n(&a, 0)?.ceil())),
        "floor" => Ok(num_f(n(&a, 0)?.floor())),
        "signum" => Ok(num_f(n(&a, 0)?.signum())),
        "pow" => Ok(num_f(n(&a, 0)?.powf(n(&a, 1)?))),
        "max" | "min" => {
            let mut xs = Vec::new();
            for i in 0..a.len() {
                xs.push(n(&a, i)?);
            }
            let r = if name == "max" {
                xs.into_iter().fold(f64::MIN, f64::max)
            } else {
                xs.into_iter().fold(f64::MAX, f64::min)
            };
            Ok(num_f(r))
        }
        "parseint" => {
            let base = n(&a, 1)? as u32;
            if !(2..=36).contains(&base) {
                return fail("base must be a whole number between 2 and 36");
            }
            i64::from_str_radix(&s(&a, 0)?, base)
                .map(Value::from)
                .or_else(|_| fail("cannot parse as integer"))
        }
        "jsonencode" => serde_json::to_string(a.first().unwrap_or(&Value::Null))
            .map(Value::String)
            .or_else(|e| fail(e.to_string())),
        "jsondecode" => serde_json::from_str(&s(&a, 0)?).or_else(|e| fail(e.to_string())),
        "yamlencode" => serde_yaml_ng::to_string(a.first().unwrap_or(&Value::Null))
            .map(Value::String)
            .or_else(|e| fail(e.to_string())),
        "yamldecode" => serde_yaml_ng::from_str(&s(&a, 0)?).or_else(|e| fail(e.to_string())),
        "urlencode" => str_v(url::form_urlencoded::byte_serialize(s(&a, 0)?.as_bytes()).collect()),
        "uuidv4" => str_v(uuid::Uuid::new_v4().to_string()),
        _ => super::funcs_more::call(name, a),
    }
}

/// `format` verbs used in jobspecs: `%s %d %v %q %f %%` (flags are ignored).
fn format_fn(f: &str, args: &[Value]) -> Result<String, FuncErr> {
    let mut out = String::new();
    let mut it = f.chars().peekable();
    let mut i = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // skip flags/width
        let mut verb = None;
        while let Some(&d) = it.peek() {
            it.next();
            if d.is_ascii_alphabetic() || d == '%' {
                verb = Some(d);
                break;
            }
        }
        let Some(verb) = verb else {
            return fail("unterminated format verb");
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(v) = args.get(i) else {
            return fail(format!("not enough arguments for %{verb} at {i}"));
        };
        i += 1;
        match verb {
            'q' => out.push_str(
                &serde_json::to_string(&to_str(v).unwrap_or_default()).unwrap_or_default(),
            ),
            'd' => out.push_str(
                &as_f64(v)
                    .map(|x| (x as i64).to_string())
                    .unwrap_or_default(),
            ),
            'v' | 's' | 'f' | 'g' => match to_str(v) {
                Some(x) => out.push_str(&x),
                None => out.push_str(&serde_json::to_string(v).unwrap_or_default()),
            },
            other => return fail(format!("unsupported format verb %{other}")),
        }
    }
    Ok(out)
}
