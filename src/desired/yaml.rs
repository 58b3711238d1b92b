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

enum Frame {
    Seq(Node, usize),
    Map(Node, usize, Option<Node>),
}

/// Parse one YAML document. An empty document is `Ok(None)`.
pub fn parse(text: &str) -> Result<Option<Node>, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut documents = 0usize;
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
                let node = Node {
                    value: resolve_scalar(&text, style, tag.as_ref()),
                    line,
                    col,
                };
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                Some(node)
            }
            Event::Alias(id) => Some(anchors.get(&id).cloned().ok_or(YamlError {
                line,
                col,
                message: "alias to an unknown anchor".to_string(),
            })?),
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq(
                    Node {
                        value: Value::Seq(Vec::new()),
                        line,
                        col,
                    },
                    anchor,
                ));
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map(
                    Node {
                        value: Value::Map(Vec::new()),
                        line,
                        col,
                    },
                    anchor,
                    None,
                ));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(node, anchor)) | Some(Frame::Map(node, anchor, _)) => {
                    if anchor > 0 {
                        anchors.insert(anchor, node.clone());
                    }
                    Some(node)
                }
                None => None,
            },
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => None,
        };
        if let Some(node) = done {
            match stack.last_mut() {
                Some(Frame::Seq(parent, _)) => {
                    if let Value::Seq(items) = &mut parent.value {
                        items.push(node);
                    }
                }
                Some(Frame::Map(parent, _, pending)) => match pending.take() {
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
    fn empty_document_is_none() {
        assert_eq!(parse("# only a comment\n").unwrap(), None);
    }
}
