//! The typed pass's toolbox: reading spanned YAML nodes into values while collecting located
//! diagnostics, "did you mean" hints, and the size and duration units app.yaml accepts.

use std::collections::BTreeMap;

use super::Diagnostic;
use super::yaml::{Node, Value};

/// Collects every diagnostic of one app while its files are read.
#[derive(Debug, Default)]
pub(crate) struct Ctx {
    /// The file the YAML nodes come from (the app.yaml, relative to the repo root).
    pub file: String,
    /// Everything found so far.
    pub diags: Vec<Diagnostic>,
    /// What is accepted but deserves the user's attention (a field drover does not act on yet).
    pub warnings: Vec<Diagnostic>,
}

/// `parent.key` (or `key` at the top).
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// The nearest valid key to a typo, if one is close enough to be a likely meaning.
pub(crate) fn suggest<'a>(typo: &str, valid: &[&'a str]) -> Option<&'a str> {
    let squash = |s: &str| {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    let typo_squashed = squash(typo);
    if let Some(exact) = valid.iter().find(|v| squash(v) == typo_squashed) {
        return Some(exact);
    }
    valid
        .iter()
        .map(|v| (strsim::normalized_damerau_levenshtein(typo, v), *v))
        .filter(|(score, _)| *score >= 0.5)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v)
}

/// The hint for an unknown key: the nearest valid key, else the list of valid keys.
pub(crate) fn key_hint(typo: &str, valid: &[&str]) -> String {
    match suggest(typo, valid) {
        Some(s) => format!("did you mean \"{s}\"?"),
        None => format!("valid keys: {}", valid.join(", ")),
    }
}

/// A mapping's entries, after unknown and duplicate keys were reported.
pub(crate) struct Fields<'a> {
    entries: Vec<(String, &'a Node, &'a Node)>,
}

impl<'a> Fields<'a> {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, _, v)| *v)
    }

    /// The node of `key` itself (where the user wrote the key), if present.
    pub fn key(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, k, _)| *k)
    }

    /// Every known key present, in file order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _, _)| k.as_str())
    }
}

impl Ctx {
    /// A new collector for `file`.
    pub fn new(file: &str) -> Self {
        Ctx {
            file: file.to_string(),
            diags: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Record an error at a node of this file.
    pub fn err(&mut self, node: &Node, field: &str, message: impl Into<String>) {
        self.err_hint(node, field, message, None);
    }

    /// Record an error with a hint at a node of this file.
    pub fn err_hint(
        &mut self,
        node: &Node,
        field: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.diags.push(Diagnostic {
            file: self.file.clone(),
            line: node.line,
            column: node.col,
            field: (!field.is_empty()).then(|| field.to_string()),
            message: message.into(),
            hint,
        });
    }

    /// Record a warning at a node of this file: the app still loads.
    pub fn warn(&mut self, node: &Node, field: &str, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            file: self.file.clone(),
            line: node.line,
            column: node.col,
            field: (!field.is_empty()).then(|| field.to_string()),
            message: message.into(),
            hint: None,
        });
    }

    /// Record an error anywhere (another file, or no position).
    pub fn push(&mut self, diag: Diagnostic) {
        self.diags.push(diag);
    }

    fn expected(&mut self, node: &Node, field: &str, what: &str) {
        self.err(
            node,
            field,
            format!("expected {what}, found {}", node.value.type_name()),
        );
    }

    /// Read a mapping, reporting keys outside `allowed` (with a hint) and duplicate keys.
    pub fn fields<'a>(
        &mut self,
        node: &'a Node,
        field: &str,
        allowed: &[&str],
    ) -> Option<Fields<'a>> {
        let Value::Map(pairs) = &node.value else {
            self.expected(node, field, "a mapping");
            return None;
        };
        let mut entries: Vec<(String, &'a Node, &'a Node)> = Vec::new();
        for (k, v) in pairs {
            let key = k.key_text();
            let path = join(field, &key);
            if !allowed.contains(&key.as_str()) {
                self.err_hint(
                    k,
                    &path,
                    format!("unknown key \"{key}\""),
                    Some(key_hint(&key, allowed)),
                );
                continue;
            }
            if entries.iter().any(|(e, _, _)| *e == key) {
                self.err(k, &path, format!("duplicate key \"{key}\""));
                continue;
            }
            entries.push((key, k, v));
        }
        Some(Fields { entries })
    }

    /// A string (numbers are not silently turned into names).
    pub fn string(&mut self, node: &Node, field: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.expected(node, field, "a string");
                None
            }
        }
    }

    /// A non-empty string.
    pub fn nonempty(&mut self, node: &Node, field: &str) -> Option<String> {
        let s = self.string(node, field)?;
        if s.trim().is_empty() {
            self.err(node, field, "must not be empty");
            return None;
        }
        Some(s)
    }

    /// A scalar as text (map values such as tags and parameters may be written as numbers).
    pub fn scalar_text(&mut self, node: &Node, field: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => {
                self.expected(node, field, "a string");
                None
            }
        }
    }

    /// A boolean (`true`/`false`, not `yes`/`no`).
    pub fn boolean(&mut self, node: &Node, field: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(b) => Some(*b),
            Value::Str(s) if matches!(s.as_str(), "yes" | "no" | "on" | "off") => {
                self.err_hint(
                    node,
                    field,
                    format!("expected a boolean, found the string \"{s}\""),
                    Some("write true or false".to_string()),
                );
                None
            }
            _ => {
                self.expected(node, field, "a boolean (true or false)");
                None
            }
        }
    }

    /// A non-negative integer.
    pub fn unsigned(&mut self, node: &Node, field: &str) -> Option<u64> {
        match &node.value {
            Value::Int(i) if *i >= 0 => Some(i.unsigned_abs()),
            _ => {
                self.expected(node, field, "a non-negative integer");
                None
            }
        }
    }

    /// A list.
    pub fn list<'a>(&mut self, node: &'a Node, field: &str) -> Option<&'a [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.expected(node, field, "a list");
                None
            }
        }
    }

    /// A list of strings.
    pub fn string_list(&mut self, node: &Node, field: &str) -> Vec<String> {
        let Some(items) = self.list(node, field) else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.string(item, &format!("{field}[{i}]")))
            .collect()
    }

    /// A mapping of string keys to scalar values written as text.
    pub fn string_map(&mut self, node: &Node, field: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Value::Map(pairs) = &node.value else {
            self.expected(node, field, "a mapping");
            return out;
        };
        for (k, v) in pairs {
            let key = k.key_text();
            if let Some(text) = self.scalar_text(v, &join(field, &key)) {
                out.insert(key, text);
            }
        }
        out
    }

    /// A size (`100MiB`, `1GiB`, `10GB`, or a plain number of bytes).
    pub fn size(&mut self, node: &Node, field: &str) -> Option<u64> {
        match &node.value {
            Value::Int(i) if *i >= 0 => Some(i.unsigned_abs()),
            Value::Str(s) => match parse_size(s) {
                Ok(n) => Some(n),
                Err(e) => {
                    self.err_hint(
                        node,
                        field,
                        e,
                        Some("write a size like 100MiB, 1GiB or 10GB".to_string()),
                    );
                    None
                }
            },
            _ => {
                self.expected(node, field, "a size like 100MiB");
                None
            }
        }
    }

    /// A duration (`5m`, `1h30m`, `90s`, or a plain number of seconds) in seconds.
    pub fn duration_secs(&mut self, node: &Node, field: &str) -> Option<u64> {
        match &node.value {
            Value::Int(i) if *i >= 0 => Some(i.unsigned_abs()),
            Value::Str(s) => match parse_duration_secs(s) {
                Ok(n) => Some(n),
                Err(e) => {
                    self.err_hint(
                        node,
                        field,
                        e,
                        Some("write a duration like 30s, 5m or 1h30m".to_string()),
                    );
                    None
                }
            },
            _ => {
                self.expected(node, field, "a duration like 5m");
                None
            }
        }
    }
}

/// Parse a size the way Nomad's volume specs read `capacity_min` (go-humanize): a number and an
/// optional unit, SI (`kB`, `MB`, `GB`, … = 1000ⁿ) or IEC (`KiB`, `MiB`, `GiB`, … = 1024ⁿ),
/// case-insensitive; no unit means bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let written_unit = unit.trim();
    let unit = written_unit.to_ascii_lowercase();
    let number: f64 = num
        .parse()
        .map_err(|_| format!("\"{text}\" is not a size"))?;
    let factor: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "p" | "pb" => 1e15,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024f64.powi(2),
        "gi" | "gib" => 1024f64.powi(3),
        "ti" | "tib" => 1024f64.powi(4),
        "pi" | "pib" => 1024f64.powi(5),
        _ => {
            return Err(format!(
                "unknown size unit \"{written_unit}\" in \"{text}\""
            ));
        }
    };
    let bytes = (number * factor).round();
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("size \"{text}\" is out of range"));
    }
    Ok(bytes as u64)
}

/// Parse a duration (`30s`, `5m`, `1h30m`, `2d`) into whole seconds.
pub fn parse_duration_secs(text: &str) -> Result<u64, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("\"{text}\" is not a duration: {e}"))?;
    Ok(d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_si_and_iec_units() {
        assert_eq!(parse_size("100MiB"), Ok(100 * 1024 * 1024));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("10GB"), Ok(10_000_000_000));
        assert_eq!(parse_size("1.5 KiB"), Ok(1536));
        assert_eq!(parse_size("42"), Ok(42));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
    }

    #[test]
    fn durations_in_seconds() {
        assert_eq!(parse_duration_secs("5m"), Ok(300));
        assert_eq!(parse_duration_secs("1h30m"), Ok(5400));
        assert!(parse_duration_secs("soon").is_err());
    }

    #[test]
    fn suggestions_find_typos_and_case_variants() {
        let valid = ["auto", "self_heal", "prune"];
        assert_eq!(suggest("self_heel", &valid), Some("self_heal"));
        assert_eq!(suggest("selfHeal", &valid), Some("self_heal"));
        assert_eq!(suggest("self-heal", &valid), Some("self_heal"));
        assert_eq!(suggest("zzzzzz", &valid), None);
    }
}
