//! Execution: Go's `text/template` exec semantics over JSON values.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::fmt::{format_v, go_quote, type_name};
use crate::funcs::{self, ParamType};
use crate::parse::{Arg, ArgKind, Command, Node, Number, Pipe, Tree};
use crate::{Error, FuncMap, MissingKey};

/// `template` calls nest at most this deep (Go: 100000), so self-recursion errors out
/// (and the stack of a 2 MiB thread suffices even in debug builds).
pub(crate) const MAX_TEMPLATE_DEPTH: usize = 100;
/// Output cap: a template that produces more fails instead of exhausting memory.
pub(crate) const MAX_OUTPUT: usize = 64 * 1024 * 1024;
/// Nodes walked and range iterations, in all: `range 1000000000000` with an empty body errors
/// out instead of spinning.
pub(crate) const MAX_STEPS: u64 = 10_000_000;

/// A value during evaluation: `None` is Go's invalid `reflect.Value` (a missing key, no data).
type Val = Option<Value>;

pub(crate) struct Exec<'a> {
    pub trees: &'a BTreeMap<String, Arc<Tree>>,
    pub funcs: &'a FuncMap,
    pub missing_key: MissingKey,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

struct State<'a> {
    ex: &'a Exec<'a>,
    tree: Arc<Tree>,
    /// The position (byte offset) and text of the node being evaluated, for errors.
    pos: usize,
    context: String,
    vars: Vec<(String, Val)>,
    depth: usize,
    out: String,
    /// Dot is an element of a list or map being ranged over: a Go `interface {}` value.
    dot_is_elem: bool,
    steps: u64,
}

type R<T> = Result<T, Error>;

impl Exec<'_> {
    pub(crate) fn run(&self, tree: Arc<Tree>, data: &Value) -> R<String> {
        let dot: Val = if data.is_null() {
            None
        } else {
            Some(data.clone())
        };
        let mut s = State {
            ex: self,
            tree: tree.clone(),
            pos: 0,
            context: String::new(),
            vars: vec![("$".into(), dot.clone())],
            depth: 0,
            out: String::new(),
            dot_is_elem: false,
            steps: 0,
        };
        s.walk_list(&dot, &tree.root)?;
        Ok(s.out)
    }
}

pub(crate) fn is_true(v: &Val) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
    }
}

impl State<'_> {
    fn at(&mut self, pos: usize, context: impl ToString) {
        self.pos = pos;
        self.context = context.to_string();
    }

    fn errorf<T>(&self, message: impl Into<String>) -> R<T> {
        let text = &self.tree.text;
        let pos = self.pos.min(text.len());
        let before = text.get(..pos).unwrap_or("");
        let line = 1 + before.matches('\n').count();
        let col = match before.rfind('\n') {
            Some(i) => pos - i - 1,
            None => pos,
        };
        let action = self.context.clone();
        Err(Error::Exec {
            name: self.tree.parse_name.clone(),
            line,
            col,
            template: self.tree.name.clone(),
            action,
            message: message.into(),
        })
    }

    fn write(&mut self, s: &str) -> R<()> {
        if self.out.len() + s.len() > MAX_OUTPUT {
            return self.errorf(format!("output exceeds {MAX_OUTPUT} bytes"));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn walk_list(&mut self, dot: &Val, list: &[Node]) -> R<Flow> {
        for n in list {
            match self.walk(dot, n)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return self.errorf(format!("execution exceeds {MAX_STEPS} steps"));
        }
        Ok(())
    }

    fn walk(&mut self, dot: &Val, node: &Node) -> R<Flow> {
        self.step()?;
        match node {
            Node::Text(t) => self.write(t)?,
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.print_value(pipe, &v)?;
                }
            }
            Node::If {
                pipe,
                list,
                else_list,
            }
            | Node::With {
                pipe,
                list,
                else_list,
            } => {
                let mark = self.vars.len();
                let v = self.eval_pipeline(dot, pipe)?;
                let truth = is_true(&v);
                let is_with = matches!(node, Node::With { .. });
                let flow = if truth {
                    let d = if is_with { v } else { dot.clone() };
                    self.walk_list(&d, list)?
                } else if let Some(e) = else_list {
                    self.walk_list(dot, e)?
                } else {
                    Flow::Normal
                };
                self.vars.truncate(mark);
                return Ok(flow);
            }
            Node::Range {
                pipe,
                list,
                else_list,
            } => {
                let mark = self.vars.len();
                self.at(pipe.pos, pipe);
                let v = self.eval_pipeline(dot, pipe)?;
                self.walk_range(dot, pipe, v, list, else_list.as_deref())?;
                self.vars.truncate(mark);
            }
            Node::Template { pos, name, pipe } => {
                self.at(
                    *pos,
                    format!(
                        "{{{{template {} {}}}}}",
                        go_quote(name),
                        pipe.as_ref().map(|p| p.to_string()).unwrap_or_default()
                    )
                    .replace(" }}", "}}"),
                );
                let Some(tree) = self.ex.trees.get(name).cloned() else {
                    return self.errorf(format!("template {} not defined", go_quote(name)));
                };
                if self.depth >= MAX_TEMPLATE_DEPTH {
                    return self.errorf(format!(
                        "exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})"
                    ));
                }
                let new_dot = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => None,
                };
                let saved_vars =
                    std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
                let saved_tree = std::mem::replace(&mut self.tree, tree.clone());
                self.depth += 1;
                let r = self.walk_list(&new_dot, &tree.root);
                self.depth -= 1;
                self.tree = saved_tree;
                self.vars = saved_vars;
                r?;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_range(
        &mut self,
        dot: &Val,
        pipe: &Pipe,
        v: Val,
        list: &[Node],
        else_list: Option<&[Node]>,
    ) -> R<()> {
        let one = |s: &mut Self, key: Value, elem: Value| -> R<Flow> {
            s.step()?;
            let mark = s.vars.len();
            match pipe.decl.len() {
                0 => {}
                1 => {
                    let i = s.vars.len() - 1;
                    s.vars[i].1 = Some(elem.clone());
                }
                _ => {
                    let i = s.vars.len() - 2;
                    s.vars[i].1 = Some(key);
                    s.vars[i + 1].1 = Some(elem.clone());
                }
            }
            let saved = std::mem::replace(&mut s.dot_is_elem, true);
            let r = s.walk_list(&Some(elem), list);
            s.dot_is_elem = saved;
            s.vars.truncate(mark);
            r
        };
        let mut ran = false;
        match &v {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                for (i, e) in a.iter().enumerate() {
                    ran = true;
                    if let Flow::Break = one(self, Value::from(i), e.clone())? {
                        break;
                    }
                }
            }
            Some(Value::Object(m)) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                for k in keys {
                    ran = true;
                    if let Flow::Break = one(self, Value::String(k.clone()), m[k.as_str()].clone())?
                    {
                        break;
                    }
                }
            }
            Some(Value::Number(n)) if !n.is_f64() => {
                if pipe.decl.len() > 1 {
                    return self.errorf(format!(
                        "can't use {} to iterate over more than one variable",
                        crate::fmt::to_v(v.as_ref().unwrap_or(&Value::Null))
                    ));
                }
                let count = n.as_i64().unwrap_or(i64::MAX);
                for i in 0..count.max(0) {
                    ran = true;
                    if let Flow::Break = one(self, Value::from(i), Value::from(i))? {
                        break;
                    }
                }
            }
            Some(other) => {
                return self.errorf(format!(
                    "range can't iterate over {}",
                    crate::fmt::to_v(other)
                ));
            }
        }
        if !ran && let Some(e) = else_list {
            self.walk_list(dot, e)?;
        }
        Ok(())
    }

    fn print_value(&mut self, pipe: &Pipe, v: &Val) -> R<()> {
        self.at(pipe.pos, pipe);
        match v {
            None | Some(Value::Null) => self.write("<no value>"),
            Some(v) => {
                let mut s = String::new();
                format_v(v, &mut s);
                self.write(&s)
            }
        }
    }

    fn eval_pipeline(&mut self, dot: &Val, pipe: &Pipe) -> R<Val> {
        self.at(pipe.pos, pipe);
        let mut value: Option<Val> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(dot, cmd, value.take())?;
            // Go digs into an `interface {}` result: a nil one becomes the invalid value.
            value = Some(match v {
                Some(Value::Null) => None,
                v => v,
            });
        }
        // The "lovely" unwrap: a nil interface becomes the invalid value.
        let value = match value.flatten() {
            Some(Value::Null) => None,
            v => v,
        };
        for name in &pipe.decl {
            if pipe.is_assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = value.clone();
                } else {
                    return self.errorf(format!("undefined variable: {name}"));
                }
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, cmd: &Command, final_: &Option<Val>) -> R<()> {
        if cmd.args.len() > 1 || final_.is_some() {
            return self.errorf(format!(
                "can't give argument to non-function {}",
                cmd.args[0]
            ));
        }
        Ok(())
    }

    /// `final_`: the previous pipeline stage's value (`None` when there is none).
    fn eval_command(&mut self, dot: &Val, cmd: &Command, final_: Option<Val>) -> R<Val> {
        let first = &cmd.args[0];
        match &first.kind {
            ArgKind::Field(idents) => {
                self.at(first.pos, first);
                self.eval_dot_field_chain(dot, idents, cmd.args.len() > 1 || final_.is_some())
            }
            ArgKind::Chain(node, fields) => {
                self.at(first.pos, first);
                let v = self.eval_arg_value(dot, node)?;
                if matches!(node.kind, ArgKind::Nil) {
                    return self.errorf(format!("indirection through explicit nil in {first}"));
                }
                self.eval_field_chain(v, fields, cmd.args.len() > 1 || final_.is_some())
            }
            ArgKind::Identifier(name) => self.eval_function(dot, first.pos, name, cmd, final_),
            ArgKind::Pipe(p) => {
                self.not_a_function(cmd, &final_)?;
                self.eval_pipeline(dot, p)
            }
            ArgKind::Variable(name, idents) => {
                self.at(first.pos, first);
                if idents.is_empty() {
                    self.not_a_function(cmd, &final_)?;
                    return self.var_value(name);
                }
                self.eval_var_field_chain(name, idents, cmd.args.len() > 1 || final_.is_some())
            }
            _ => {
                self.at(first.pos, first);
                self.not_a_function(cmd, &final_)?;
                match &first.kind {
                    ArgKind::Bool(b) => Ok(Some(Value::Bool(*b))),
                    ArgKind::Dot => Ok(dot.clone()),
                    ArgKind::Nil => self.errorf("nil is not a command"),
                    ArgKind::Number(Number::Uint(_), text) => {
                        self.errorf(format!("{text} overflows int"))
                    }
                    ArgKind::Number(n, _) => Ok(Some(number_value(n))),
                    ArgKind::Str(_, s) => Ok(Some(Value::String(s.clone()))),
                    _ => self.errorf(format!(
                        "can't evaluate command {}",
                        go_quote(&first.to_string())
                    )),
                }
            }
        }
    }

    fn var_value(&self, name: &str) -> R<Val> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => self.errorf(format!("undefined variable: {name}")),
        }
    }

    fn eval_field_chain(&mut self, receiver: Val, idents: &[String], has_args: bool) -> R<Val> {
        self.field_chain(receiver.as_ref(), idents, has_args, false)
    }

    fn eval_dot_field_chain(&mut self, dot: &Val, idents: &[String], has_args: bool) -> R<Val> {
        self.field_chain(dot.as_ref(), idents, has_args, self.dot_is_elem)
    }

    /// `$x.a.b` without cloning `$x` (only the result is cloned).
    fn eval_var_field_chain(&self, var: &str, idents: &[String], has_args: bool) -> R<Val> {
        match self.vars.iter().rev().find(|(n, _)| n == var) {
            Some((_, v)) => self.field_chain(v.as_ref(), idents, has_args, false),
            None => self.errorf(format!("undefined variable: {var}")),
        }
    }

    /// Go's evalFieldChain on a map receiver, navigating by reference. `None` is the invalid value.
    fn field_chain(
        &self,
        receiver: Option<&Value>,
        idents: &[String],
        has_args: bool,
        receiver_is_elem: bool,
    ) -> R<Val> {
        static NIL: Value = Value::Null;
        let n = idents.len();
        let mut cur = receiver;
        for (i, name) in idents.iter().enumerate() {
            // Values looked up in a map are Go `interface {}` values (error messages say so).
            let from_map = i > 0 || receiver_is_elem;
            cur = match cur {
                None => {
                    if self.ex.missing_key == MissingKey::Error {
                        return self
                            .errorf(format!("nil data; no entry for key {}", go_quote(name)));
                    }
                    // Further fields of the invalid value stay invalid.
                    return Ok(None);
                }
                Some(Value::Object(m)) => {
                    if has_args && i == n - 1 {
                        return self.errorf(format!("{name} is not a method but has arguments"));
                    }
                    match m.get(name.as_str()) {
                        Some(v) => Some(v),
                        None => match self.ex.missing_key {
                            MissingKey::Error => {
                                return self.errorf(format!(
                                    "map has no entry for key {}",
                                    go_quote(name)
                                ));
                            }
                            MissingKey::Zero => Some(&NIL),
                            MissingKey::Default => None,
                        },
                    }
                }
                Some(Value::Null) => {
                    return self.errorf(format!("nil pointer evaluating interface {{}}.{name}"));
                }
                Some(other) => {
                    let typ = if from_map {
                        "interface {}"
                    } else {
                        type_name(other)
                    };
                    return self.errorf(format!("can't evaluate field {name} in type {typ}"));
                }
            };
        }
        Ok(cur.cloned())
    }

    /// An argument to a function.
    fn eval_arg_value(&mut self, dot: &Val, arg: &Arg) -> R<Val> {
        self.at(arg.pos, arg);
        match &arg.kind {
            ArgKind::Dot => Ok(dot.clone()),
            ArgKind::Nil => Ok(Some(Value::Null)),
            ArgKind::Field(idents) => self.eval_dot_field_chain(dot, idents, false),
            ArgKind::Variable(name, idents) if idents.is_empty() => self.var_value(name),
            ArgKind::Variable(name, idents) => self.eval_var_field_chain(name, idents, false),
            ArgKind::Pipe(p) => self.eval_pipeline(dot, p),
            ArgKind::Identifier(name) => {
                let cmd = Command {
                    pos: arg.pos,
                    args: vec![arg.clone()],
                };
                self.eval_function(dot, arg.pos, name, &cmd, None)
            }
            ArgKind::Chain(node, fields) => {
                let v = self.eval_arg_value(dot, node)?;
                self.at(arg.pos, arg);
                if matches!(node.kind, ArgKind::Nil) {
                    return self.errorf(format!("indirection through explicit nil in {arg}"));
                }
                self.eval_field_chain(v, fields, false)
            }
            ArgKind::Bool(b) => Ok(Some(Value::Bool(*b))),
            ArgKind::Number(n, _) => Ok(Some(number_value(n))),
            ArgKind::Str(_, s) => Ok(Some(Value::String(s.clone()))),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Val,
        pos: usize,
        name: &str,
        cmd: &Command,
        final_: Option<Val>,
    ) -> R<Val> {
        self.at(pos, name);
        let args = &cmd.args[1..];
        let user = self.ex.funcs.entry(name);
        // `and` / `or` short-circuit: evaluate lazily (unless a FuncMap replaced them).
        if user.is_none() && (name == "and" || name == "or") {
            let n = args.len() + usize::from(final_.is_some());
            if n == 0 {
                return self.errorf(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                ));
            }
            let mut last: Val = None;
            for a in args {
                let v = self.eval_arg_value(dot, a)?;
                let t = is_true(&v);
                last = v;
                if (name == "and") != t {
                    return Ok(last.or(Some(Value::Null)));
                }
            }
            if let Some(f) = final_ {
                last = f;
            }
            return Ok(last.or(Some(Value::Null)));
        }
        let sig = match user {
            Some(e) => e.sig.clone(),
            None if funcs::BUILTINS.contains(&name) => funcs::builtin_sig(name),
            None => return self.errorf(format!("{} is not a defined function", go_quote(name))),
        };
        let n_args = args.len() + usize::from(final_.is_some());
        if let Some(sig) = &sig {
            let fixed = sig.fixed.len();
            if sig.variadic.is_some() && n_args < fixed {
                return self.errorf(format!(
                    "wrong number of args for {name}: want at least {fixed} got {}",
                    args.len()
                ));
            }
            if sig.variadic.is_none() && n_args != fixed {
                return self.errorf(format!(
                    "wrong number of args for {name}: want {fixed} got {n_args}"
                ));
            }
        }
        let param = |i: usize| -> ParamType {
            sig.as_ref()
                .map(|s| {
                    s.fixed
                        .get(i)
                        .copied()
                        .or(s.variadic)
                        .unwrap_or(ParamType::Any)
                })
                .unwrap_or(ParamType::Any)
        };
        let mut argv: Vec<Val> = Vec::with_capacity(n_args);
        for (i, a) in args.iter().enumerate() {
            let t = param(i);
            if t != ParamType::Any
                && let Some(msg) = literal_mismatch(a, t)
            {
                self.at(a.pos, a);
                return self.errorf(msg);
            }
            let v = self.eval_arg_value(dot, a)?;
            self.at(a.pos, a);
            // Untyped parameters keep the invalid value (built-ins tell it from nil).
            argv.push(if t == ParamType::Any {
                v
            } else {
                Some(self.validate(v, t)?)
            });
        }
        if let Some(f) = final_ {
            let t = param(args.len());
            argv.push(if t == ParamType::Any {
                f
            } else {
                Some(self.validate(f, t)?)
            });
        }
        // Functions copy their arguments (Sprig's append copies the list): charge the work, so a
        // loop that grows a list quadratically meets the step cap instead of running for hours.
        let work: usize = argv
            .iter()
            .map(|v| match v {
                Some(Value::Array(a)) => a.len(),
                Some(Value::Object(m)) => m.len(),
                Some(Value::String(s)) => s.len() / 8,
                _ => 0,
            })
            .sum();
        self.steps += work as u64;
        self.step()?;
        let result = match user {
            Some(entry) => {
                let values: Vec<Value> =
                    argv.into_iter().map(|v| v.unwrap_or(Value::Null)).collect();
                match (entry.f)(&values) {
                    Ok(v) => v,
                    Err(m) => {
                        self.at(cmd.pos, cmd);
                        return self.errorf(format!("error calling {name}: {m}"));
                    }
                }
            }
            None => match funcs::builtin(name, &argv) {
                Some(Ok(v)) => v,
                Some(Err(funcs::CallError::Plain(m))) => {
                    self.at(pos, name);
                    return self.errorf(m);
                }
                Some(Err(funcs::CallError::Call(m))) => {
                    self.at(cmd.pos, cmd);
                    return self.errorf(format!("error calling {name}: {m}"));
                }
                None => {
                    return self.errorf(format!("{} is not a defined function", go_quote(name)));
                }
            },
        };
        // Sprig's set/unset/merge change the map they are given (Go maps are references): when
        // that map is a variable (`$_ := set $d "k" v`), write the result back into it.
        if matches!(
            name,
            "set" | "unset" | "merge" | "mergeOverwrite" | "mustMerge" | "mustMergeOverwrite"
        ) && user.is_some()
            && let Some(Arg {
                kind: ArgKind::Variable(var, idents),
                ..
            }) = args.first()
        {
            self.write_back(var, idents, result.clone());
        }
        Ok(Some(result))
    }

    fn write_back(&mut self, var: &str, idents: &[String], value: Value) {
        let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == var) else {
            return;
        };
        let Some(mut target) = slot.1.as_mut() else {
            return;
        };
        for ident in idents {
            match target.get_mut(ident.as_str()) {
                Some(t) => target = t,
                None => return,
            }
        }
        if target.is_object() {
            *target = value;
        }
    }

    fn validate(&self, v: Val, t: ParamType) -> R<Value> {
        let Some(v) = v else {
            return match t {
                ParamType::Any | ParamType::Map => Ok(Value::Null),
                _ => self.errorf(format!("invalid value; expected {}", t.go_name())),
            };
        };
        if v.is_null() && t != ParamType::Any {
            // A nil `interface {}` read from a map is not assignable to a typed parameter.
            return self.errorf(format!(
                "wrong type for value; expected {}; got interface {{}}",
                t.go_name()
            ));
        }
        let ok = match t {
            ParamType::Any => true,
            ParamType::Str => v.is_string(),
            ParamType::Int => v.is_i64() || v.is_u64(),
            ParamType::Bool => v.is_boolean(),
            ParamType::Map => v.is_object() || v.is_null(),
        };
        if !ok {
            if v.is_null() {
                return self.errorf(format!("invalid value; expected {}", t.go_name()));
            }
            return self.errorf(format!(
                "wrong type for value; expected {}; got {}",
                t.go_name(),
                type_name(&v)
            ));
        }
        Ok(v)
    }
}

/// Go checks a literal argument against a typed parameter before evaluating it.
fn literal_mismatch(a: &Arg, t: ParamType) -> Option<String> {
    let (want, ok) = match (&a.kind, t) {
        (ArgKind::Nil, ParamType::Map | ParamType::Any) => return None,
        (ArgKind::Nil, _) => return Some(format!("cannot assign nil to {}", t.go_name())),
        (ArgKind::Str(..), ParamType::Str) => return None,
        (ArgKind::Str(..), _) | (ArgKind::Number(..), _) | (ArgKind::Bool(_), _) => match t {
            ParamType::Str => ("string", false),
            ParamType::Int => (
                "integer",
                matches!(a.kind, ArgKind::Number(Number::Int(_) | Number::Uint(_), _)),
            ),
            ParamType::Bool => ("bool", matches!(a.kind, ArgKind::Bool(_))),
            _ => return None,
        },
        _ => return None,
    };
    if ok {
        None
    } else {
        Some(format!("expected {want}; found {a}"))
    }
}

pub(crate) fn number_value(n: &Number) -> Value {
    match n {
        Number::Int(i) => Value::from(*i),
        Number::Uint(u) => Value::from(*u),
        Number::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
    }
}
