//! A YAML tree that remembers where each node was written, built from saphyr-parser events,
//! so every later error can point at a line and column (DESIGN principle 6: raw, then typed).

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

/// A YAML node and its position (1-based line and column).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

/// A YAML value, resolved with the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string (quoted, block or a plain scalar that is nothing else).
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order (key nodes keep their own positions).
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// A short name of the type, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// The node as JSON (chart values, bucket policy and lifecycle are passed on as given).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            Value::Map(pairs) => serde_json::Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.key_text(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// The text of a mapping key (scalars as written; other keys in a debug form).
    pub fn key_text(&self) -> String {
        match &self.value {
            Value::Str(s) => s.clone(),
            Value::Null => "null".to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Seq(_) | Value::Map(_) => format!("{:?}", self.to_json()),
        }
    }
}

/// The YAML text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What the parser said.
    pub message: String,
}

/// The most nodes one document may produce, counting every node an alias copies (and the copy
/// kept of each anchored node): an `app.yaml` has hundreds, while eight levels of aliases of
/// aliases ("billion laughs") would make billions.
pub const MAX_NODES: usize = 100_000;

/// The deepest nesting of lists and mappings one document may have (the tree is freed
/// recursively, so unbounded depth could overflow the stack).
pub const MAX_DEPTH: usize = 64;

/// The largest YAML document read, in bytes.
pub const MAX_BYTES: usize = 1024 * 1024;

/// A collection being built: its node, its anchor id, and the node count when it started (so
/// its own size, aliases inside included, is known when it ends).
enum Frame {
    Seq(Node, usize, usize),
    Map(Node, usize, usize, Option<Node>),
}

/// Parse one YAML document. An empty document is `Ok(None)`. Documents over [`MAX_BYTES`],
/// [`MAX_NODES`] (aliases expanded) or [`MAX_DEPTH`] are errors, found before the memory is spent.
pub fn parse(text: &str) -> Result<Option<Node>, YamlError> {
    if text.len() > MAX_BYTES {
        return Err(YamlError {
            line: 1,
            col: 1,
            message: format!(
                "the document is {} bytes, more than the limit of {MAX_BYTES} bytes",
                text.len()
            ),
        });
    }
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    // Each anchored node with the number of nodes it holds, which an alias to it adds again.
    let mut anchors: HashMap<usize, (Node, usize)> = HashMap::new();
    // Nodes in the tree (aliases expanded), and nodes in the copies kept for aliases.
    let mut produced = 0usize;
    let mut kept = 0usize;
    let mut root: Option<Node> = None;
    let mut documents = 0usize;
    let too_many = |line, col| YamlError {
        line,
        col,
        message: format!(
            "the document expands to more than {MAX_NODES} values (aliases are counted each time they are used)"
        ),
    };
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| YamlError {
            line: e.marker().line(),
            col: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
        let (line, col) = position(&span);
        let done = match event {
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError {
                        line,
                        col,
                        message: "only one YAML document is allowed here".to_string(),
                    });
                }
                None
            }
            Event::Scalar(text, style, anchor, tag) => {
                produced += 1;
                if anchor > 0 {
                    kept += 1;
                }
                if produced + kept > MAX_NODES {
                    return Err(too_many(line, col));
                }
                let node = Node {
                    value: resolve_scalar(&text, style, tag.as_ref()),
                    line,
                    col,
                };
                if anchor > 0 {
                    anchors.insert(anchor, (node.clone(), 1));
                }
                Some(node)
            }
            Event::Alias(id) => {
                let (node, size) = anchors.get(&id).ok_or(YamlError {
                    line,
                    col,
                    message: "alias to an unknown anchor".to_string(),
                })?;
                // Counted before copying, so a bomb stops here instead of allocating.
                produced = produced.saturating_add(*size);
                if produced + kept > MAX_NODES {
                    return Err(too_many(line, col));
                }
                Some(node.clone())
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if stack.len() >= MAX_DEPTH => {
                return Err(YamlError {
                    line,
                    col,
                    message: format!("lists and mappings are nested more than {MAX_DEPTH} deep"),
                });
            }
            Event::SequenceStart(anchor, _) => {
                produced += 1;
                if produced + kept > MAX_NODES {
                    return Err(too_many(line, col));
                }
                stack.push(Frame::Seq(
                    Node {
                        value: Value::Seq(Vec::new()),
                        line,
                        col,
                    },
                    anchor,
                    produced - 1,
                ));
                None
            }
            Event::MappingStart(anchor, _) => {
                produced += 1;
                if produced + kept > MAX_NODES {
                    return Err(too_many(line, col));
                }
                stack.push(Frame::Map(
                    Node {
                        value: Value::Map(Vec::new()),
                        line,
                        col,
                    },
                    anchor,
                    produced - 1,
                    None,
                ));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(node, anchor, start))
                | Some(Frame::Map(node, anchor, start, _)) => {
                    if anchor > 0 {
                        // The copy kept for aliases counts too: it is memory like any other.
                        let size = produced - start;
                        kept += size;
                        if produced + kept > MAX_NODES {
                            return Err(too_many(line, col));
                        }
                        anchors.insert(anchor, (node.clone(), size));
                    }
                    Some(node)
                }
                None => None,
            },
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => None,
        };
        if let Some(node) = done {
            match stack.last_mut() {
                Some(Frame::Seq(parent, _, _)) => {
                    if let Value::Seq(items) = &mut parent.value {
                        items.push(node);
                    }
                }
                Some(Frame::Map(parent, _, _, pending)) => match pending.take() {
                    None => *pending = Some(node),
                    Some(key) => {
                        if let Value::Map(pairs) = &mut parent.value {
                            pairs.push((key, node));
                        }
                    }
                },
                None => root = Some(node),
            }
        }
    }
    Ok(root)
}

fn position(span: &Span) -> (usize, usize) {
    (span.start.line(), span.start.col() + 1)
}

fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&Cow<'_, Tag>>) -> Value {
    if let Some(tag) = tag
        && tag.suffix == "str"
    {
        return Value::Str(text.to_string());
    }
    if style != ScalarStyle::Plain {
        return Value::Str(text.to_string());
    }
    let t = text;
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" => return Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = t.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Value::Int(i);
    }
    if let Some(oct) = t.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return Value::Int(i);
    }
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(i) = t.parse::<i64>()
    {
        return Value::Int(i);
    }
    let looks_float = !digits.is_empty()
        && digits.bytes().any(|b| b.is_ascii_digit())
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && digits
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.');
    if looks_float && let Ok(f) = t.parse::<f64>() {
        return Value::Float(f);
    }
    Value::Str(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_keys_and_values_are_one_based() {
        let node = parse("name: web\nsync:\n  auto: true\n  prune: 3\n")
            .unwrap()
            .unwrap();
        let Value::Map(pairs) = &node.value else {
            panic!("map expected")
        };
        assert_eq!((pairs[0].0.line, pairs[0].0.col), (1, 1));
        assert_eq!((pairs[0].1.line, pairs[0].1.col), (1, 7));
        let Value::Map(sync) = &pairs[1].1.value else {
            panic!("map expected")
        };
        assert_eq!((sync[1].0.line, sync[1].0.col), (4, 3));
        assert_eq!(sync[0].1.value, Value::Bool(true));
        assert_eq!(sync[1].1.value, Value::Int(3));
    }

    #[test]
    fn flow_collections_and_quoted_scalars() {
        let node = parse("a: { b: [1, '2', 2.5, ~, x] }").unwrap().unwrap();
        let json = node.to_json();
        assert_eq!(
            json,
            serde_json::json!({"a": {"b": [1, "2", 2.5, null, "x"]}})
        );
    }

    #[test]
    fn scan_errors_carry_line_and_column() {
        let err = parse("a: b\nc: [1, 2\n").unwrap_err();
        assert!(err.line >= 2, "{err:?}");
    }

    #[test]
    fn anchors_and_aliases_are_expanded() {
        let node = parse("a: &x { k: 1 }\nb: *x\n").unwrap().unwrap();
        assert_eq!(
            node.to_json(),
            serde_json::json!({"a": {"k": 1}, "b": {"k": 1}})
        );
    }

    #[test]
    fn ordinary_alias_use_stays_well_within_the_limit() {
        let mut text = String::from("base: &b { a: 1, b: 2, c: 3, d: [1, 2, 3] }\nitems:\n");
        for _ in 0..1000 {
            text.push_str("  - *b\n");
        }
        let node = parse(&text).unwrap().unwrap();
        assert_eq!(node.to_json()["items"][999]["d"][2], 3);
    }

    #[test]
    fn an_alias_bomb_stops_at_the_alias_that_crosses_the_limit() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..=8 {
            let refs = vec![format!("*a{}", level - 1); 10].join(", ");
            text.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
        }
        let err = parse(&text).unwrap_err();
        // a4 (line 5) alone holds 111,111 nodes, long before the 10^9 of the last line.
        assert_eq!(err.line, 5, "{err:?}");
        assert!(err.message.contains("aliases"), "{err:?}");
    }

    #[test]
    fn nested_anchors_are_counted_once_each() {
        // Each anchored list holds the next: 40 levels are 40 + 40·41/2 nodes with their copies,
        // not 2^40.
        let mut numbered = String::from("x: ");
        for i in 0..40 {
            numbered.push_str(&format!("&a{i} ["));
        }
        numbered.push('1');
        numbered.push_str(&"]".repeat(40));
        assert!(parse(&numbered).is_ok(), "{numbered}");
    }

    #[test]
    fn empty_document_is_none() {
        assert_eq!(parse("# only a comment\n").unwrap(), None);
    }
}
