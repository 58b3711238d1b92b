//! A tiny Vault ACL policy model: `path "glob" { capabilities = [...] }` rules in HCL or JSON.

use serde_json::Value;

/// One `path` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct PathRule {
    /// The path pattern: `*` at the end is a prefix match, `+` matches one segment.
    pub pattern: String,
    /// Granted capabilities (`create`, `read`, `update`, `patch`, `delete`, `list`, `sudo`, `deny`).
    pub capabilities: Vec<String>,
}

/// Errors parsing a policy document.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The HCL did not parse.
    #[error("failed to parse policy: {0}")]
    Hcl(#[from] hcl::Error),
    /// The JSON form was not `{"path": {"<glob>": {"capabilities": [...]}}}`.
    #[error("failed to parse policy: {0}")]
    Shape(String),
}

/// Parse a policy in HCL or its JSON form.
pub fn parse(text: &str) -> Result<Vec<PathRule>, PolicyError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{')
        && let Ok(v) = serde_json::from_str::<Value>(trimmed)
    {
        return parse_json(&v);
    }
    let body = hcl::parse(text)?;
    let mut rules = Vec::new();
    for block in body.blocks() {
        if block.identifier() != "path" {
            continue;
        }
        let Some(label) = block.labels().first() else {
            return Err(PolicyError::Shape("path block without a label".into()));
        };
        let mut capabilities = Vec::new();
        for attr in block.body().attributes() {
            if attr.key() != "capabilities" {
                continue;
            }
            match attr.expr() {
                hcl::Expression::Array(items) => {
                    for item in items {
                        match item {
                            hcl::Expression::String(s) => capabilities.push(s.clone()),
                            _ => {
                                return Err(PolicyError::Shape(
                                    "capabilities must be strings".into(),
                                ));
                            }
                        }
                    }
                }
                _ => return Err(PolicyError::Shape("capabilities must be a list".into())),
            }
        }
        rules.push(PathRule {
            pattern: label.as_str().to_string(),
            capabilities,
        });
    }
    Ok(rules)
}

fn parse_json(v: &Value) -> Result<Vec<PathRule>, PolicyError> {
    let paths = v
        .get("path")
        .and_then(Value::as_object)
        .ok_or_else(|| PolicyError::Shape("missing \"path\" object".into()))?;
    let mut rules = Vec::new();
    for (pattern, rule) in paths {
        let capabilities = rule
            .get("capabilities")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        rules.push(PathRule {
            pattern: pattern.clone(),
            capabilities,
        });
    }
    Ok(rules)
}

/// Whether a Vault path pattern matches a request path.
pub fn matches(pattern: &str, path: &str) -> bool {
    let (pattern, prefix) = match pattern.strip_suffix('*') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let pat: Vec<&str> = pattern.split('/').collect();
    let segs: Vec<&str> = path.split('/').collect();
    if prefix {
        // Every segment but the last must match exactly (or `+`); the last is a string prefix.
        if segs.len() < pat.len() {
            return false;
        }
        let last = pat.len() - 1;
        for (i, p) in pat.iter().enumerate() {
            if i == last {
                let rest = segs[i..].join("/");
                return rest.starts_with(p);
            }
            if *p != "+" && *p != segs[i] {
                return false;
            }
        }
        true
    } else {
        pat.len() == segs.len()
            && pat
                .iter()
                .zip(segs.iter())
                .all(|(p, s)| *p == "+" || p == s)
    }
}

/// Whether the rules grant any of `wanted` on `path` (`deny` on any matching rule wins).
pub fn allows(rules: &[PathRule], path: &str, wanted: &[&str]) -> bool {
    let mut granted = false;
    for rule in rules.iter().filter(|r| matches(&r.pattern, path)) {
        if rule.capabilities.iter().any(|c| c == "deny") {
            return false;
        }
        if rule
            .capabilities
            .iter()
            .any(|c| c == "sudo" || wanted.contains(&c.as_str()))
        {
            granted = true;
        }
    }
    granted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hcl_policy_parses_and_matches() {
        let rules = parse(
            r#"
path "secret/data/app/*" { capabilities = ["read", "list"] }
path "secret/data/+/config" { capabilities = ["create", "update"] }
path "secret/data/app/private" { capabilities = ["deny"] }
"#,
        )
        .unwrap_or_default();
        assert_eq!(rules.len(), 3);
        assert!(allows(&rules, "secret/data/app/x", &["read"]));
        assert!(!allows(&rules, "secret/data/other/x", &["read"]));
        assert!(allows(&rules, "secret/data/web/config", &["update"]));
        assert!(!allows(&rules, "secret/data/app/private", &["read"]));
    }

    #[test]
    fn json_policy_parses() {
        let rules = parse(r#"{"path":{"kv/*":{"capabilities":["read"]}}}"#).unwrap_or_default();
        assert!(allows(&rules, "kv/a/b", &["read"]));
        assert!(!allows(&rules, "kv/a/b", &["update"]));
    }
}
