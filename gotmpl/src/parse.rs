//! The parser: Go's `text/template/parse` grammar into a small tree.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::lex::{Item, Kind, lex};

/// Control structures and parenthesised pipelines nest at most this deep (no stack overflow).
pub(crate) const MAX_NESTING: usize = 200;

#[derive(Debug, Clone)]
pub(crate) struct Tree {
    /// The template name.
    pub name: String,
    /// The name of the template (file) it was parsed from, for error positions.
    pub parse_name: String,
    /// The whole source text, for line:col of execution errors.
    pub text: Arc<str>,
    pub root: Vec<Node>,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If {
        pipe: Pipe,
        list: Vec<Node>,
        else_list: Option<Vec<Node>>,
    },
    Range {
        pipe: Pipe,
        list: Vec<Node>,
        else_list: Option<Vec<Node>>,
    },
    With {
        pipe: Pipe,
        list: Vec<Node>,
        else_list: Option<Vec<Node>>,
    },
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<String>,
    pub cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub(crate) enum Number {
    Int(i64),
    Uint(u64),
    Float(f64),
}

#[derive(Debug, Clone)]
pub(crate) enum ArgKind {
    Field(Vec<String>),
    /// `$x.a.b`: the variable name (with `$`) and the fields.
    Variable(String, Vec<String>),
    Dot,
    Nil,
    Bool(bool),
    Number(Number, String),
    Str(String, String),
    Identifier(String),
    Pipe(Box<Pipe>),
    Chain(Box<Arg>, Vec<String>),
}

#[derive(Debug, Clone)]
pub(crate) struct Arg {
    pub pos: usize,
    pub kind: ArgKind,
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ArgKind::Field(idents) => idents.iter().try_for_each(|i| write!(f, ".{i}")),
            ArgKind::Variable(name, idents) => {
                write!(f, "{name}")?;
                idents.iter().try_for_each(|i| write!(f, ".{i}"))
            }
            ArgKind::Dot => write!(f, "."),
            ArgKind::Nil => write!(f, "nil"),
            ArgKind::Bool(b) => write!(f, "{b}"),
            ArgKind::Number(_, text) => write!(f, "{text}"),
            ArgKind::Str(quoted, _) => write!(f, "{quoted}"),
            ArgKind::Identifier(name) => write!(f, "{name}"),
            ArgKind::Pipe(p) => write!(f, "({p})"),
            ArgKind::Chain(node, fields) => {
                write!(f, "{node}")?;
                fields.iter().try_for_each(|i| write!(f, ".{i}"))
            }
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                write!(f, " ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            write!(f, "{}", self.decl.join(", "))?;
            write!(f, "{}", if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                write!(f, " | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

pub(crate) struct ParseError {
    pub line: usize,
    pub message: String,
}

type PResult<T> = Result<T, ParseError>;

enum Step {
    Node(Node),
    End,
    Else { is_chain: bool },
}

struct Parser<'a> {
    items: Vec<Item>,
    i: usize,
    parse_name: &'a str,
    text: Arc<str>,
    has_func: &'a dyn Fn(&str) -> bool,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    action_line: usize,
    trees: Vec<Tree>,
    /// The furthest item read, for error lines.
    read: std::cell::Cell<usize>,
}

/// Parse `text`; returns the top-level tree (named `name`) and the `define`d / `block` trees, in
/// order of definition.
pub(crate) fn parse(
    name: &str,
    text: &str,
    left: &str,
    right: &str,
    has_func: &dyn Fn(&str) -> bool,
) -> Result<Vec<Tree>, ParseError> {
    let items = lex(text, left, right);
    let text: Arc<str> = Arc::from(text);
    let mut p = Parser {
        items,
        i: 0,
        parse_name: name,
        text: text.clone(),
        has_func,
        vars: vec!["$".to_string()],
        range_depth: 0,
        depth: 0,
        action_line: 0,
        trees: Vec::new(),
        read: std::cell::Cell::new(0),
    };
    let root = p.parse_top()?;
    let mut trees = vec![Tree {
        name: name.to_string(),
        parse_name: name.to_string(),
        text,
        root,
    }];
    trees.append(&mut p.trees);
    Ok(trees)
}

/// Empty of everything but space (and comments, which the lexer drops): does not replace.
pub(crate) fn is_empty(nodes: &[Node]) -> bool {
    nodes
        .iter()
        .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
}

impl Parser<'_> {
    fn err<T>(&self, line: usize, message: impl Into<String>) -> PResult<T> {
        Err(ParseError {
            line,
            message: message.into(),
        })
    }

    /// Go reports the line of the last token read (peeked ones included).
    fn cur_line(&self) -> usize {
        self.items.get(self.read.get()).map(|t| t.line).unwrap_or(1)
    }

    fn errorf<T>(&self, message: impl Into<String>) -> PResult<T> {
        self.err(self.cur_line(), message)
    }

    fn next(&mut self) -> Item {
        self.read.set(
            self.read
                .get()
                .max(self.i.min(self.items.len().saturating_sub(1))),
        );
        let item = self
            .items
            .get(self.i)
            .cloned()
            .unwrap_or_else(|| self.eof());
        if self.i < self.items.len() {
            self.i += 1;
        }
        item
    }

    fn eof(&self) -> Item {
        Item {
            kind: Kind::Eof,
            pos: self.text.len(),
            val: String::new(),
            line: 1,
        }
    }

    fn backup(&mut self) {
        self.i = self.i.saturating_sub(1);
    }

    fn peek(&self) -> Item {
        self.read.set(
            self.read
                .get()
                .max(self.i.min(self.items.len().saturating_sub(1))),
        );
        self.items
            .get(self.i)
            .cloned()
            .unwrap_or_else(|| self.eof())
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let t = self.next();
            if t.kind != Kind::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn unexpected<T>(&self, token: &Item, context: &str) -> PResult<T> {
        if token.kind == Kind::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != token.line {
                extra = format!(
                    " in action started at {}:{}",
                    self.parse_name, self.action_line
                );
                if token.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return self.err(token.line, format!("{token}{extra}"));
        }
        self.err(token.line, format!("unexpected {token} in {context}"))
    }

    fn expect(&mut self, kind: Kind, context: &str) -> PResult<Item> {
        let t = self.next_non_space();
        if t.kind != kind {
            return self.unexpected(&t, context);
        }
        Ok(t)
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return self.errorf("max expression depth exceeded");
        }
        Ok(())
    }

    fn parse_top(&mut self) -> PResult<Vec<Node>> {
        let mut root = Vec::new();
        while self.peek().kind != Kind::Eof {
            if self.peek().kind == Kind::LeftDelim {
                let save = self.i;
                self.next();
                let t = self.next_non_space();
                if t.kind == Kind::Keyword && t.val == "define" {
                    self.definition()?;
                    continue;
                }
                self.i = save;
            }
            match self.text_or_action()? {
                Step::Node(n) => root.push(n),
                Step::End => return self.errorf("unexpected {{end}}"),
                Step::Else { .. } => return self.errorf("unexpected {{else}}"),
            }
        }
        Ok(root)
    }

    fn add_tree(&mut self, name: String, root: Vec<Node>) -> PResult<()> {
        if let Some(existing) = self.trees.iter_mut().find(|t| t.name == name) {
            if is_empty(&existing.root) {
                existing.root = root;
                return Ok(());
            }
            if !is_empty(&root) {
                return self.errorf(format!(
                    "template: multiple definition of template {}",
                    crate::fmt::go_quote(&name)
                ));
            }
            return Ok(());
        }
        self.trees.push(Tree {
            name,
            parse_name: self.parse_name.to_string(),
            text: self.text.clone(),
            root,
        });
        Ok(())
    }

    fn definition(&mut self) -> PResult<()> {
        let context = "define clause";
        let t = self.next_non_space();
        if t.kind != Kind::Str && t.kind != Kind::RawStr {
            return self.unexpected(&t, context);
        }
        let name = self.unquote(&t)?;
        self.expect(Kind::RightDelim, context)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        if !matches!(end, Step::End) {
            return self.errorf(format!("unexpected {{{{else}}}} in {context}"));
        }
        self.add_tree(name, list)
    }

    fn item_list(&mut self) -> PResult<(Vec<Node>, Step)> {
        self.enter()?;
        let mut list = Vec::new();
        while self.peek_non_space().kind != Kind::Eof {
            match self.text_or_action()? {
                Step::Node(n) => list.push(n),
                other => {
                    self.depth -= 1;
                    return Ok((list, other));
                }
            }
        }
        self.errorf("unexpected EOF")
    }

    fn text_or_action(&mut self) -> PResult<Step> {
        let token = self.next_non_space();
        match token.kind {
            Kind::Text => Ok(Step::Node(Node::Text(token.val))),
            Kind::LeftDelim => {
                self.action_line = token.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
            _ => self.unexpected(&token, "input"),
        }
    }

    fn action(&mut self) -> PResult<Step> {
        let token = self.next_non_space();
        if token.kind == Kind::Keyword {
            match token.val.as_str() {
                "block" => return self.block().map(Step::Node),
                "break" | "continue" => {
                    let ctx = format!("{{{{{}}}}}", token.val);
                    let t = self.next_non_space();
                    if t.kind != Kind::RightDelim {
                        return self.unexpected(&t, &ctx);
                    }
                    if self.range_depth == 0 {
                        return self.errorf(format!("{ctx} outside {{{{range}}}}"));
                    }
                    return Ok(Step::Node(if token.val == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    }));
                }
                "else" => {
                    let peek = self.peek_non_space();
                    if peek.kind == Kind::Keyword && (peek.val == "if" || peek.val == "with") {
                        return Ok(Step::Else { is_chain: true });
                    }
                    self.expect(Kind::RightDelim, "else")?;
                    return Ok(Step::Else { is_chain: false });
                }
                "end" => {
                    self.expect(Kind::RightDelim, "end")?;
                    return Ok(Step::End);
                }
                "if" | "range" | "with" => return self.control(&token.val).map(Step::Node),
                "template" => return self.template().map(Step::Node),
                _ => {}
            }
        }
        self.backup();
        let pipe = self.pipeline("command", Kind::RightDelim)?;
        Ok(Step::Node(Node::Action(pipe)))
    }

    fn control(&mut self, context: &str) -> PResult<Node> {
        let vars_len = self.vars.len();
        let pipe = self.pipeline(context, Kind::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, next) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let mut else_list = None;
        match next {
            Step::End => {}
            Step::Else { is_chain } => {
                let peek = self.peek_non_space();
                if is_chain && (context == "if" || context == "with") && peek.val == context {
                    self.next_non_space();
                    self.enter()?;
                    let inner = self.control(context)?;
                    self.depth -= 1;
                    else_list = Some(vec![inner]);
                } else if is_chain {
                    // `else with` inside an `if` (or `else if` in a `with`): Go rejects it.
                    self.next_non_space();
                    return self.errorf(format!("unexpected <{}> in {}", peek.val, "input"));
                } else {
                    let (l, next) = self.item_list()?;
                    if !matches!(next, Step::End) {
                        return self.errorf("expected end; found {{else}}");
                    }
                    else_list = Some(l);
                }
            }
            Step::Node(_) => {}
        }
        self.vars.truncate(vars_len);
        Ok(match context {
            "if" => Node::If {
                pipe,
                list,
                else_list,
            },
            "range" => Node::Range {
                pipe,
                list,
                else_list,
            },
            _ => Node::With {
                pipe,
                list,
                else_list,
            },
        })
    }

    fn template_name(&mut self, context: &str) -> PResult<(Item, String)> {
        let token = self.next_non_space();
        match token.kind {
            Kind::Str | Kind::RawStr => {
                let name = self.unquote(&token)?;
                Ok((token, name))
            }
            _ => self.unexpected(&token, context),
        }
    }

    fn template(&mut self) -> PResult<Node> {
        let context = "template clause";
        let (token, name) = self.template_name(context)?;
        let mut pipe = None;
        if self.next_non_space().kind != Kind::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(context, Kind::RightDelim)?);
        }
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe,
        })
    }

    fn block(&mut self) -> PResult<Node> {
        let context = "block clause";
        let (token, name) = self.template_name(context)?;
        let pipe = self.pipeline(context, Kind::RightDelim)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        if !matches!(end, Step::End) {
            return self.errorf(format!("unexpected {{{{else}}}} in {context}"));
        }
        self.add_tree(name.clone(), list)?;
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe: Some(pipe),
        })
    }

    fn pipeline(&mut self, context: &str, end: Kind) -> PResult<Pipe> {
        let token = self.peek_non_space();
        let mut pipe = Pipe {
            pos: token.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        'decls: loop {
            let v = self.peek_non_space();
            if v.kind != Kind::Variable {
                break;
            }
            self.next_non_space();
            let next = self.peek_non_space();
            if next.kind == Kind::Assign || next.kind == Kind::Declare {
                pipe.is_assign = next.kind == Kind::Assign;
                self.next_non_space();
                pipe.decl.push(v.val.clone());
                self.vars.push(v.val);
                break;
            } else if next.kind == Kind::Char && next.val == "," {
                self.next_non_space();
                pipe.decl.push(v.val.clone());
                self.vars.push(v.val);
                if context == "range" && pipe.decl.len() < 2 {
                    match self.peek_non_space().kind {
                        Kind::Variable | Kind::RightDelim | Kind::RightParen => continue 'decls,
                        _ => return self.errorf("range can only initialize variables"),
                    }
                }
                return self.errorf(format!("too many declarations in {context}"));
            } else {
                // Not a declaration: put back the variable and the spaces peeking skipped.
                while self.i > 0 {
                    self.i -= 1;
                    if self
                        .items
                        .get(self.i)
                        .is_some_and(|t| t.kind == Kind::Variable)
                    {
                        break;
                    }
                }
                break;
            }
        }
        loop {
            let token = self.next_non_space();
            if token.kind == end {
                if pipe.cmds.is_empty() {
                    return self.err(token.line, format!("missing value for {context}"));
                }
                for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
                    if let Some(first) = c.args.first()
                        && matches!(
                            first.kind,
                            ArgKind::Bool(_)
                                | ArgKind::Dot
                                | ArgKind::Nil
                                | ArgKind::Number(..)
                                | ArgKind::Str(..)
                        )
                    {
                        return self.errorf(format!(
                            "non executable command in pipeline stage {}",
                            i + 1
                        ));
                    }
                }
                return Ok(pipe);
            }
            match token.kind {
                Kind::Bool
                | Kind::CharConstant
                | Kind::Dot
                | Kind::Field
                | Kind::Identifier
                | Kind::Number
                | Kind::Nil
                | Kind::RawStr
                | Kind::Str
                | Kind::Variable
                | Kind::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return self.unexpected(&token, context),
            }
        }
    }

    fn command(&mut self) -> PResult<Command> {
        let mut cmd = Command {
            pos: self.peek_non_space().pos,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space();
            if let Some(operand) = self.operand()? {
                cmd.args.push(operand);
            }
            let token = self.next();
            match token.kind {
                Kind::Space => continue,
                Kind::RightDelim | Kind::RightParen => self.backup(),
                Kind::Pipe => {}
                _ => return self.unexpected(&token, "operand"),
            }
            break;
        }
        if cmd.args.is_empty() {
            return self.errorf("empty command");
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().kind != Kind::Field {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().kind == Kind::Field {
            let f = self.next();
            fields.push(f.val[1..].to_string());
        }
        let kind = match node.kind {
            ArgKind::Field(mut idents) => {
                idents.extend(fields);
                return Ok(Some(Arg {
                    pos,
                    kind: ArgKind::Field(idents),
                }));
            }
            ArgKind::Variable(name, mut idents) => {
                idents.extend(fields);
                return Ok(Some(Arg {
                    pos,
                    kind: ArgKind::Variable(name, idents),
                }));
            }
            ArgKind::Bool(_)
            | ArgKind::Str(..)
            | ArgKind::Number(..)
            | ArgKind::Nil
            | ArgKind::Dot => {
                return self.errorf(format!(
                    "unexpected . after term {}",
                    crate::fmt::go_quote(&node.to_string())
                ));
            }
            _ => ArgKind::Chain(Box::new(node), fields),
        };
        Ok(Some(Arg { pos, kind }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let token = self.next_non_space();
        let pos = token.pos;
        let kind = match token.kind {
            Kind::Identifier => {
                if !(self.has_func)(&token.val) {
                    return self.err(
                        token.line,
                        format!("function {} not defined", crate::fmt::go_quote(&token.val)),
                    );
                }
                ArgKind::Identifier(token.val)
            }
            Kind::Dot => ArgKind::Dot,
            Kind::Nil => ArgKind::Nil,
            Kind::Variable => {
                let mut parts = token.val.split('.');
                let name = parts.next().unwrap_or("$").to_string();
                if !self.vars.contains(&name) {
                    return self.err(
                        token.line,
                        format!("undefined variable {}", crate::fmt::go_quote(&name)),
                    );
                }
                ArgKind::Variable(name, Vec::new())
            }
            Kind::Field => ArgKind::Field(vec![token.val[1..].to_string()]),
            Kind::Bool => ArgKind::Bool(token.val == "true"),
            Kind::CharConstant | Kind::Number => {
                let n = parse_number(&token).map_err(|message| ParseError {
                    line: token.line,
                    message,
                })?;
                ArgKind::Number(n, token.val)
            }
            Kind::LeftParen => {
                self.enter()?;
                let p = self.pipeline("parenthesized pipeline", Kind::RightParen)?;
                self.depth -= 1;
                ArgKind::Pipe(Box::new(p))
            }
            Kind::Str | Kind::RawStr => {
                let s = self.unquote(&token)?;
                ArgKind::Str(token.val, s)
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        };
        Ok(Some(Arg { pos, kind }))
    }

    fn unquote(&self, token: &Item) -> PResult<String> {
        unquote(&token.val).ok_or(ParseError {
            line: token.line,
            message: "invalid syntax".into(),
        })
    }
}

/// Go's `strconv.Unquote` for "…", `…` and '…' literals.
pub(crate) fn unquote(s: &str) -> Option<String> {
    if s.len() >= 2 && s.starts_with('`') && s.ends_with('`') {
        let inner = &s[1..s.len() - 1];
        return if inner.contains('`') {
            None
        } else {
            Some(inner.replace('\r', ""))
        };
    }
    let quote = s.chars().next()?;
    if !(quote == '"' || quote == '\'') || s.len() < 2 || !s.ends_with(quote) {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    let mut out = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == quote || c == '\n' {
            return None;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next()?;
        let hex = |chars: &mut std::iter::Peekable<std::str::Chars>, n: usize| -> Option<u32> {
            let mut v = 0u32;
            for _ in 0..n {
                v = v * 16 + chars.next()?.to_digit(16)?;
            }
            Some(v)
        };
        match e {
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' if quote == '"' => out.push('"'),
            '\'' if quote == '\'' => out.push('\''),
            'x' => {
                let v = hex(&mut chars, 2)?;
                // A byte; Go strings may hold invalid UTF-8, ours cannot: map to the char.
                out.push(char::from_u32(v)?);
            }
            'u' => out.push(char::from_u32(hex(&mut chars, 4)?)?),
            'U' => out.push(char::from_u32(hex(&mut chars, 8)?)?),
            '0'..='7' => {
                let mut v = e.to_digit(8)?;
                for _ in 0..2 {
                    v = v * 8 + chars.next()?.to_digit(8)?;
                }
                if v > 255 {
                    return None;
                }
                out.push(char::from_u32(v)?);
            }
            _ => return None,
        }
    }
    if quote == '\'' && out.chars().count() != 1 {
        return None;
    }
    Some(out)
}

fn parse_number(token: &Item) -> Result<Number, String> {
    let text = token.val.as_str();
    let bad = || format!("illegal number syntax: {}", crate::fmt::go_quote(text));
    if token.kind == Kind::CharConstant {
        let s = unquote(text).ok_or_else(|| format!("malformed character constant: {text}"))?;
        let c = s.chars().next().ok_or_else(bad)?;
        return Ok(Number::Int(c as i64));
    }
    if text.ends_with('i') {
        return Err(bad());
    }
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if body.contains('_') && (body.starts_with('_') || body.ends_with('_') || body.contains("__")) {
        return Err(bad());
    }
    let clean: String = body.chars().filter(|c| *c != '_').collect();
    let lower = clean.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        if h.contains('p') {
            let f = hex_float(h).ok_or_else(bad)?;
            return Ok(Number::Float(if neg { -f } else { f }));
        }
        if h.contains('.') {
            return Err(bad());
        }
        u64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        u64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        u64::from_str_radix(b, 2).ok()
    } else if lower.contains(['.', 'e']) {
        None
    } else if lower.len() > 1 && lower.starts_with('0') {
        u64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse::<u64>().ok()
    };
    if let Some(u) = int {
        if neg {
            if u <= i64::MAX as u64 + 1 {
                return Ok(Number::Int((u as i128).wrapping_neg() as i64));
            }
            return Ok(Number::Float(-(u as f64)));
        }
        if u <= i64::MAX as u64 {
            return Ok(Number::Int(u as i64));
        }
        return Ok(Number::Uint(u));
    }
    if lower.starts_with("0x") || lower.starts_with("0o") || lower.starts_with("0b") {
        return Err(bad());
    }
    if lower.contains(['.', 'e']) {
        let f: f64 = lower.parse().map_err(|_| bad())?;
        return Ok(Number::Float(if neg { -f } else { f }));
    }
    // An integer literal too large for 64 bits.
    if !lower.is_empty() && lower.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("integer overflow: {}", crate::fmt::go_quote(text)));
    }
    Err(bad())
}

/// A hex float body (after `0x`): `1.8p4`.
fn hex_float(h: &str) -> Option<f64> {
    let (mant, exp) = h.split_once('p')?;
    let exp: i32 = exp.parse().ok()?;
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    Some(v * 2f64.powi(exp))
}

/// The trees of one `parse` call, keyed by name, for the set.
pub(crate) type Trees = BTreeMap<String, Arc<Tree>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> (usize, String) {
        match parse("t", text, "[[", "]]", &|f| f == "f") {
            Ok(_) => panic!("{text:?} parsed"),
            Err(e) => (e.line, e.message),
        }
    }

    #[test]
    fn parse_errors_name_line_and_problem_like_go() {
        assert_eq!(
            parse_err("[[ nope ]]"),
            (1, "function \"nope\" not defined".into())
        );
        assert_eq!(parse_err("[[ if 1 ]]\n\nx"), (3, "unexpected EOF".into()));
        assert_eq!(parse_err("a\n[[ end ]]"), (2, "unexpected {{end}}".into()));
        assert_eq!(
            parse_err("[[ $x ]]"),
            (1, "undefined variable \"$x\"".into())
        );
        assert_eq!(
            parse_err("[[ break ]]"),
            (1, "{{break}} outside {{range}}".into())
        );
        assert_eq!(parse_err("[[ ]]"), (1, "missing value for command".into()));
    }

    #[test]
    fn define_and_block_add_templates() {
        let trees = parse(
            "main",
            "[[ define \"a\" ]]A[[ end ]][[ block \"b\" . ]]B[[ end ]]",
            "[[",
            "]]",
            &|_| false,
        )
        .unwrap_or_else(|e| panic!("{}", e.message));
        let names: Vec<&str> = trees.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["main", "a", "b"]);
    }

    #[test]
    fn numbers_follow_go_literal_rules() {
        let num = |s: &str| {
            parse_number(&Item {
                kind: Kind::Number,
                pos: 0,
                val: s.into(),
                line: 1,
            })
            .ok()
        };
        assert!(matches!(num("0x1F"), Some(Number::Int(31))));
        assert!(matches!(num("017"), Some(Number::Int(15))));
        assert!(matches!(num("1_000"), Some(Number::Int(1000))));
        assert!(matches!(num("-7"), Some(Number::Int(-7))));
        assert!(matches!(num("1.5e3"), Some(Number::Float(f)) if f == 1500.0));
        assert!(num("1__0").is_none());
    }

    #[test]
    fn unquote_handles_go_escapes() {
        assert_eq!(
            unquote(r#""a\tb\u00e9\x41\101""#).as_deref(),
            Some("a\tbéAA")
        );
        assert_eq!(unquote("`raw\\n`").as_deref(), Some("raw\\n"));
        assert_eq!(unquote(r#""bad\q""#), None);
    }
}
