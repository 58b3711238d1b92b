//! Go's `fmt` as templates see it: `%v` printing of JSON values, `Sprintf`, `strconv.Quote`.

use serde_json::Value;

/// Go's `strconv.Quote`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() || c == '\u{fffe}' || c == '\u{ffff}' => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%#U`: `U+0041 'A'`.
pub(crate) fn unicode_hash(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{c}'", c as u32)
    }
}

/// Go's type name of a JSON value as decoded into `interface{}`.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(n) if n.is_u64() && n.as_i64().is_none() => "uint64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// strconv.FormatFloat(f, 'g', -1, 64).
pub(crate) fn format_float_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Shortest round-trip digits and decimal exponent from Rust's `{:e}`.
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if neg { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        return exp_form(sign, &digits, exp);
    }
    fixed_form(sign, &digits, exp)
}

fn exp_form(sign: &str, digits: &str, exp: i32) -> String {
    let mut s = String::from(sign);
    s.push_str(&digits[..1]);
    if digits.len() > 1 {
        s.push('.');
        s.push_str(&digits[1..]);
    }
    s.push('e');
    s.push(if exp < 0 { '-' } else { '+' });
    s.push_str(&format!("{:02}", exp.abs()));
    s
}

fn fixed_form(sign: &str, digits: &str, exp: i32) -> String {
    let mut s = String::from(sign);
    if exp < 0 {
        s.push_str("0.");
        for _ in 0..(-exp - 1) {
            s.push('0');
        }
        s.push_str(digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            s.push_str(digits);
            for _ in digits.len()..int_len {
                s.push('0');
            }
        } else {
            s.push_str(&digits[..int_len]);
            s.push('.');
            s.push_str(&digits[int_len..]);
        }
    }
    s
}

/// `%v` of a value (`nil` prints `<nil>`).
pub(crate) fn format_v(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else {
                out.push_str(&format_float_g(n.as_f64().unwrap_or(0.0)));
            }
        }
        Value::String(s) => out.push_str(s),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_v(e, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push_str("map[");
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                format_v(&m[k.as_str()], out);
            }
            out.push(']');
        }
    }
}

pub(crate) fn to_v(v: &Value) -> String {
    let mut s = String::new();
    format_v(v, &mut s);
    s
}

/// Go's `fmt.Sprint`: spaces between operands when neither side is a string.
pub(crate) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        format_v(a, &mut out);
    }
    out
}

/// Go's `fmt.Sprintln`: always spaces, and a newline.
pub(crate) fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        format_v(a, &mut out);
    }
    out.push('\n');
    out
}

#[derive(Default, Clone, Copy)]
struct Flags {
    minus: bool,
    plus: bool,
    sharp: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn pad(s: String, f: &Flags) -> String {
    let Some(w) = f.width else { return s };
    let n = s.chars().count();
    if n >= w {
        return s;
    }
    let fill = w - n;
    if f.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if f.zero {
        // Zero padding goes after the sign.
        let (sign, rest) = match s.strip_prefix(['-', '+']) {
            Some(r) => (&s[..1], r),
            None => ("", s.as_str()),
        };
        format!("{sign}{}{rest}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

fn bad_verb(verb: char, v: &Value) -> String {
    match v {
        Value::Null => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", type_name(v), to_v(v)),
    }
}

fn as_int(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) if !n.is_f64() => {
            n.as_i64().map(i128::from).or(n.as_u64().map(i128::from))
        }
        _ => None,
    }
}

fn fmt_int(i: i128, verb: char, f: &Flags) -> String {
    let neg = i < 0;
    let a = i.unsigned_abs();
    let mut digits = match verb {
        'd' | 'v' => a.to_string(),
        'x' => format!("{a:x}"),
        'X' => format!("{a:X}"),
        'o' => format!("{a:o}"),
        'O' => format!("0o{a:o}"),
        'b' => format!("{a:b}"),
        _ => a.to_string(),
    };
    if let Some(p) = f.prec {
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    if f.sharp {
        match verb {
            'x' => digits.insert_str(0, "0x"),
            'X' => digits.insert_str(0, "0X"),
            'o' if !digits.starts_with('0') => digits.insert(0, '0'),
            _ => {}
        }
    }
    let sign = if neg {
        "-"
    } else if f.plus {
        "+"
    } else if f.space {
        " "
    } else {
        ""
    };
    let mut flags = *f;
    if f.prec.is_some() {
        flags.zero = false;
    }
    pad(format!("{sign}{digits}"), &flags)
}

fn fmt_float(x: f64, verb: char, f: &Flags) -> String {
    let body = match verb {
        'v' | 'g' | 'G' => match f.prec {
            None => format_float_g(x),
            Some(p) => format_g_prec(x, p.max(1)),
        },
        'f' | 'F' => format!("{:.*}", f.prec.unwrap_or(6), x),
        'e' | 'E' => {
            let s = format!("{:.*e}", f.prec.unwrap_or(6), x);
            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
            let e: i32 = e.parse().unwrap_or(0);
            let r = format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
            if verb == 'E' { r.to_uppercase() } else { r }
        }
        _ => format_float_g(x),
    };
    let body = if verb == 'G' {
        body.to_uppercase()
    } else {
        body
    };
    let body = if x.is_infinite() || x.is_nan() {
        format_float_g(x)
    } else {
        body
    };
    let sign = if !body.starts_with('-') && f.plus {
        "+"
    } else if !body.starts_with('-') && f.space {
        " "
    } else {
        ""
    };
    pad(format!("{sign}{body}"), f)
}

fn format_g_prec(x: f64, p: usize) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let s = format!("{:.*e}", p - 1, x);
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = e.parse().unwrap_or(0);
    let neg = m.starts_with('-');
    let mut digits: String = m.chars().filter(|c| c.is_ascii_digit()).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let sign = if neg { "-" } else { "" };
    if exp < -4 || exp >= p as i32 {
        exp_form(sign, &digits, exp)
    } else {
        fixed_form(sign, &digits, exp)
    }
}

fn fmt_str(s: &str, f: &Flags) -> String {
    let s = match f.prec {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    };
    pad(s, f)
}

fn format_one(verb: char, v: &Value, f: &Flags) -> String {
    match verb {
        'v' => match v {
            Value::Number(n) if n.is_f64() => fmt_float(n.as_f64().unwrap_or(0.0), 'g', f),
            Value::Number(_) => fmt_int(as_int(v).unwrap_or(0), 'd', f),
            Value::String(s) => fmt_str(s, f),
            _ => pad(to_v(v), f),
        },
        'T' => pad(type_name(v).to_string(), f),
        's' => match v {
            Value::String(s) => fmt_str(s, f),
            Value::Array(a) => {
                let items: Vec<String> = a
                    .iter()
                    .map(|e| format_one('s', e, &Flags::default()))
                    .collect();
                pad(format!("[{}]", items.join(" ")), f)
            }
            Value::Null => pad("%!s(<nil>)".into(), f),
            Value::Object(_) => pad(to_v(v), f),
            _ => bad_verb('s', v),
        },
        'q' => match v {
            Value::String(s) => pad(go_quote(s), f),
            Value::Number(_) if as_int(v).is_some() => {
                let c = as_int(v)
                    .and_then(|i| u32::try_from(i).ok())
                    .and_then(char::from_u32);
                pad(format!("'{}'", c.unwrap_or('\u{fffd}')), f)
            }
            Value::Array(a) => {
                let items: Vec<String> = a
                    .iter()
                    .map(|e| format_one('q', e, &Flags::default()))
                    .collect();
                pad(format!("[{}]", items.join(" ")), f)
            }
            _ => bad_verb('q', v),
        },
        't' => match v {
            Value::Bool(b) => pad(b.to_string(), f),
            _ => bad_verb('t', v),
        },
        'd' | 'o' | 'O' | 'b' | 'c' | 'U' => match as_int(v) {
            Some(i) if verb == 'c' => pad(
                u32::try_from(i)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{fffd}')
                    .to_string(),
                f,
            ),
            Some(i) if verb == 'U' => pad(format!("U+{i:04X}"), f),
            Some(i) => fmt_int(i, verb, f),
            None => match v {
                Value::Array(a) => {
                    let items: Vec<String> = a
                        .iter()
                        .map(|e| format_one(verb, e, &Flags::default()))
                        .collect();
                    pad(format!("[{}]", items.join(" ")), f)
                }
                Value::Number(n) if verb == 'b' => fmt_float(n.as_f64().unwrap_or(0.0), 'b', f),
                _ => bad_verb(verb, v),
            },
        },
        'x' | 'X' => match v {
            Value::String(s) => {
                let h = hex::encode(s.as_bytes());
                pad(if verb == 'X' { h.to_uppercase() } else { h }, f)
            }
            Value::Number(n) if n.is_f64() => bad_verb(verb, v),
            Value::Number(_) => fmt_int(as_int(v).unwrap_or(0), verb, f),
            _ => bad_verb(verb, v),
        },
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => match v {
            Value::Number(n) if n.is_f64() => fmt_float(n.as_f64().unwrap_or(0.0), verb, f),
            _ => bad_verb(verb, v),
        },
        _ => bad_verb(verb, v),
    }
}

/// Go's `fmt.Sprintf` for the verbs templates use.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut argi = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut f = Flags::default();
        while let Some(&c) = chars.peek() {
            match c {
                '-' => f.minus = true,
                '+' => f.plus = true,
                '#' => f.sharp = true,
                '0' => f.zero = !f.minus,
                ' ' => f.space = true,
                _ => break,
            }
            chars.next();
        }
        let num =
            |chars: &mut std::iter::Peekable<std::str::Chars>, argi: &mut usize| -> Option<usize> {
                if chars.peek() == Some(&'*') {
                    chars.next();
                    let v = args.get(*argi).and_then(as_int);
                    *argi += 1;
                    // Go refuses widths over 1e6; clamp (no huge allocation).
                    return v
                        .and_then(|i| usize::try_from(i).ok())
                        .map(|w| w.min(1_000_000));
                }
                let mut n: Option<usize> = None;
                while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                    n = Some(
                        n.unwrap_or(0)
                            .saturating_mul(10)
                            .saturating_add(d as usize)
                            .min(1_000_000),
                    );
                    chars.next();
                }
                n
            };
        f.width = num(&mut chars, &mut argi);
        if chars.peek() == Some(&'.') {
            chars.next();
            f.prec = Some(num(&mut chars, &mut argi).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        out.push_str(&format_one(verb, arg, &f));
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[argi..]
            .iter()
            .map(|a| match a {
                Value::Null => "<nil>".to_string(),
                _ => format!("{}={}", type_name(a), to_v(a)),
            })
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_like_go_percent_v() {
        for (f, want) in [
            (1.5, "1.5"),
            (2.0, "2"),
            (1e21, "1e+21"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
        ] {
            assert_eq!(format_float_g(f), want, "{f}");
        }
    }

    #[test]
    fn values_print_like_go_percent_v() {
        let v = json!({"b": [1, "x", null], "a": {"z": true, "y": 1.5}});
        assert_eq!(to_v(&v), "map[a:map[y:1.5 z:true] b:[1 x <nil>]]");
    }

    #[test]
    fn sprintf_handles_verbs_flags_and_bad_arguments() {
        let args = [json!("ab"), json!(42), json!(2.5)];
        assert_eq!(sprintf("%-4s|%05d|%.2f|%%", &args), "ab  |00042|2.50|%");
        assert_eq!(sprintf("%d %d", &[json!(1)]), "1 %!d(MISSING)");
        assert_eq!(
            sprintf("x", &[json!(1), json!("a")]),
            "x%!(EXTRA int=1, string=a)"
        );
        assert_eq!(
            sprintf("%q %v %t", &[json!("a\"b"), json!(null), json!(true)]),
            "\"a\\\"b\" <nil> true"
        );
    }

    #[test]
    fn sprint_spaces_only_between_non_strings() {
        assert_eq!(
            sprint(&[json!("a"), json!(1), json!(2), json!("b")]),
            "a1 2b"
        );
        assert_eq!(sprintln(&[json!("a"), json!(1)]), "a 1\n");
    }

    #[test]
    fn quote_escapes_like_strconv() {
        assert_eq!(go_quote("a\"\\\n\t\u{1}é"), "\"a\\\"\\\\\\n\\t\\x01é\"");
    }
}
