//! HCL2 expression evaluation for jobspecs: `var.*`/`local.*`, functions, templates and heredocs.
//!
//! Unknown root variables (`NOMAD_*`, `attr`, `node`, `meta`, `env`, …) evaluate to the literal
//! text `${<expr>}`, like the `UnknownVariable` hook of Nomad's jobspec2 evaluation context.

use std::ops::Range;

use hcl::edit::Span;
use hcl::edit::expr::{BinaryOperator, Expression, ObjectKey, TraversalOperator, UnaryOperator};
use hcl::edit::template::{Directive, Element, Template};
use serde_json::{Map, Number, Value};

/// One diagnostic: a byte range in the jobspec (or var file) plus summary and detail.
#[derive(Debug, Clone)]
pub(crate) struct Diag {
    pub range: Range<usize>,
    pub summary: String,
    pub detail: String,
}

impl Diag {
    pub fn new(range: Range<usize>, summary: &str, detail: impl Into<String>) -> Diag {
        Diag {
            range,
            summary: summary.to_string(),
            detail: detail.into(),
        }
    }
}

/// Evaluation scope: the text spans refer to, the input variables and locals, and the
/// iterator symbols of `for` expressions.
pub(crate) struct Scope<'a> {
    pub text: &'a str,
    pub base: usize,
    pub vars: &'a Map<String, Value>,
    pub locals: &'a Map<String, Value>,
    pub iter: Vec<(String, Value)>,
    /// Whether `local.*` may be read (false while locals themselves are being evaluated in order).
    pub locals_ready: bool,
    /// Keys renamed to parse a body with a redefined attribute (see `parse_body_lenient`).
    pub renamed: &'a [(usize, String)],
}

fn span_of(e: &impl Span) -> Range<usize> {
    e.span().unwrap_or(0..0)
}

impl<'a> Scope<'a> {
    fn range(&self, r: Range<usize>) -> Range<usize> {
        self.base + r.start..self.base + r.end
    }

    fn err(&self, e: &impl Span, summary: &str, detail: impl Into<String>) -> Diag {
        Diag::new(self.range(span_of(e)), summary, detail)
    }

    fn src(&self, e: &impl Span) -> &'a str {
        let r = span_of(e);
        self.text.get(r).unwrap_or("")
    }

    /// Evaluate an expression to a JSON value.
    pub fn eval(&mut self, e: &Expression) -> Result<Value, Diag> {
        match e {
            Expression::Null(_) => Ok(Value::Null),
            Expression::Bool(b) => Ok(Value::Bool(*b.value())),
            Expression::Number(n) => {
                let n = n.value();
                if let Some(i) = n.as_i64() {
                    Ok(Value::from(i))
                } else if let Some(u) = n.as_u64() {
                    Ok(Value::from(u))
                } else {
                    Ok(num_f(n.as_f64().unwrap_or(0.0)))
                }
            }
            Expression::String(s) => Ok(Value::String(s.value().to_string())),
            Expression::Array(a) => {
                let mut out = Vec::new();
                for item in a.iter() {
                    out.push(self.eval(item)?);
                }
                Ok(Value::Array(out))
            }
            Expression::Object(o) => {
                let mut out = Map::new();
                for (k, v) in o.iter() {
                    let key = match k {
                        ObjectKey::Ident(id) => id.value().to_string(),
                        ObjectKey::Expression(Expression::Variable(id)) => id.value().to_string(),
                        ObjectKey::Expression(ke) => {
                            let kv = self.eval(ke)?;
                            to_str(&kv).ok_or_else(|| {
                                self.err(
                                    ke,
                                    "Incorrect key type",
                                    "Can't use this value as a key: string required.",
                                )
                            })?
                        }
                    };
                    out.insert(key, self.eval(v.expr())?);
                }
                Ok(Value::Object(out))
            }
            Expression::StringTemplate(t) => {
                let elems: Vec<&Element> = t.iter().collect();
                self.eval_elements(&elems)
            }
            Expression::HeredocTemplate(h) => self.eval_heredoc(h.as_ref()),
            Expression::Parenthesis(p) => self.eval(p.inner()),
            Expression::Variable(id) => {
                let name = id.value().as_str();
                if let Some((_, v)) = self.iter.iter().rev().find(|(n, _)| n == name) {
                    return Ok(v.clone());
                }
                match name {
                    "var" => Ok(Value::Object(self.vars.clone())),
                    "local" if self.locals_ready => Ok(Value::Object(self.locals.clone())),
                    _ => Ok(Value::String(format!("${{{}}}", self.src(e).trim()))),
                }
            }
            Expression::Traversal(t) => self.eval_traversal(e, t.as_ref()),
            Expression::FuncCall(f) => self.eval_func(f.as_ref()),
            Expression::Conditional(c) => {
                let cond = self.eval(&c.cond_expr)?;
                match as_bool(&cond) {
                    Some(true) => self.eval(&c.true_expr),
                    Some(false) => self.eval(&c.false_expr),
                    None => Err(self.err(
                        &c.cond_expr,
                        "Incorrect condition type",
                        "The condition expression must be of type bool.",
                    )),
                }
            }
            Expression::UnaryOp(u) => {
                let v = self.eval(&u.expr)?;
                match u.operator.value() {
                    UnaryOperator::Neg => as_f64(&v).map(|f| num_f(-f)).ok_or_else(|| {
                        self.err(
                            e,
                            "Invalid operand",
                            "Unsuitable value for unary operand: number required.",
                        )
                    }),
                    UnaryOperator::Not => as_bool(&v).map(|b| Value::Bool(!b)).ok_or_else(|| {
                        self.err(
                            e,
                            "Invalid operand",
                            "Unsuitable value for unary operand: bool required.",
                        )
                    }),
                }
            }
            Expression::BinaryOp(b) => {
                let op = *b.operator.value();
                if matches!(op, BinaryOperator::And | BinaryOperator::Or) {
                    let l = as_bool(&self.eval(&b.lhs_expr)?);
                    let r = as_bool(&self.eval(&b.rhs_expr)?);
                    return match (l, r, op) {
                        (Some(l), Some(r), BinaryOperator::And) => Ok(Value::Bool(l && r)),
                        (Some(l), Some(r), _) => Ok(Value::Bool(l || r)),
                        _ => Err(self.err(
                            e,
                            "Invalid operand",
                            "Unsuitable value for operand: bool required.",
                        )),
                    };
                }
                let l = self.eval(&b.lhs_expr)?;
                let r = self.eval(&b.rhs_expr)?;
                match op {
                    BinaryOperator::Eq => Ok(Value::Bool(loose_eq(&l, &r))),
                    BinaryOperator::NotEq => Ok(Value::Bool(!loose_eq(&l, &r))),
                    _ => {
                        let (Some(x), Some(y)) = (as_f64(&l), as_f64(&r)) else {
                            return Err(self.err(
                                e,
                                "Invalid operand",
                                "Unsuitable value for operand: number required.",
                            ));
                        };
                        Ok(match op {
                            BinaryOperator::Plus => num_f(x + y),
                            BinaryOperator::Minus => num_f(x - y),
                            BinaryOperator::Mul => num_f(x * y),
                            BinaryOperator::Div => num_f(x / y),
                            BinaryOperator::Mod => num_f(x % y),
                            BinaryOperator::Less => Value::Bool(x < y),
                            BinaryOperator::LessEq => Value::Bool(x <= y),
                            BinaryOperator::Greater => Value::Bool(x > y),
                            BinaryOperator::GreaterEq => Value::Bool(x >= y),
                            _ => Value::Null,
                        })
                    }
                }
            }
            Expression::ForExpr(f) => {
                let coll = self.eval(&f.intro.collection_expr)?;
                let items: Vec<(Value, Value)> = match coll {
                    Value::Array(a) => a
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (Value::from(i as u64), v))
                        .collect(),
                    Value::Object(o) => o.into_iter().map(|(k, v)| (Value::String(k), v)).collect(),
                    _ => {
                        return Err(self.err(
                            &f.intro.collection_expr,
                            "Iteration over non-iterable value",
                            "A value of type string cannot be used as the collection in a 'for' expression.",
                        ));
                    }
                };
                let mut arr = Vec::new();
                let mut obj = Map::new();
                for (k, v) in items {
                    let depth = self.iter.len();
                    if let Some(kv) = &f.intro.key_var {
                        self.iter.push((kv.value().to_string(), k));
                    }
                    self.iter.push((f.intro.value_var.value().to_string(), v));
                    let keep = match &f.cond {
                        Some(c) => as_bool(&self.eval(&c.expr)?).unwrap_or(false),
                        None => true,
                    };
                    if keep {
                        let val = self.eval(&f.value_expr)?;
                        if let Some(ke) = &f.key_expr {
                            let key = to_str(&self.eval(ke)?).unwrap_or_default();
                            obj.insert(key, val);
                        } else {
                            arr.push(val);
                        }
                    }
                    self.iter.truncate(depth);
                }
                Ok(if f.key_expr.is_some() {
                    Value::Object(obj)
                } else {
                    Value::Array(arr)
                })
            }
        }
    }

    fn eval_traversal(
        &mut self,
        whole: &Expression,
        t: &hcl::edit::expr::Traversal,
    ) -> Result<Value, Diag> {
        // An unknown root keeps the whole traversal literal (`${attr.unique.hostname}`).
        if let Expression::Variable(id) = &t.expr {
            let name = id.value().as_str();
            let known = self.iter.iter().any(|(n, _)| n == name)
                || name == "var"
                || (name == "local" && self.locals_ready);
            if !known {
                return Ok(Value::String(format!("${{{}}}", self.src(whole).trim())));
            }
        }
        let mut cur = self.eval(&t.expr)?;
        for op in &t.operators {
            cur = match op.value() {
                TraversalOperator::GetAttr(id) => {
                    let name = id.value().as_str();
                    match &cur {
                        Value::Object(o) => {
                            match o.get(name) {
                                Some(v) => v.clone(),
                                None => {
                                    let what = match &t.expr {
                                        Expression::Variable(v) if v.value().as_str() == "var" => {
                                            return Err(self.err(
                                            op,
                                            "Unsupported attribute",
                                            format!("This object does not have an attribute named \"{name}\"."),
                                        ));
                                        }
                                        _ => name,
                                    };
                                    return Err(self.err(
                                    op,
                                    "Unsupported attribute",
                                    format!("This object does not have an attribute named \"{what}\"."),
                                ));
                                }
                            }
                        }
                        _ => {
                            return Err(self.err(
                                op,
                                "Unsupported attribute",
                                "Can't access attributes on a primitive-typed value.",
                            ));
                        }
                    }
                }
                TraversalOperator::Index(ie) => {
                    let idx = self.eval(ie)?;
                    index_value(&cur, &idx).ok_or_else(|| {
                        self.err(
                            op,
                            "Invalid index",
                            "The given key does not identify an element in this collection value.",
                        )
                    })?
                }
                TraversalOperator::LegacyIndex(i) => index_value(&cur, &Value::from(*i.value()))
                    .ok_or_else(|| {
                        self.err(
                            op,
                            "Invalid index",
                            "The given key does not identify an element in this collection value.",
                        )
                    })?,
                TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_) => {
                    return Err(self.err(
                        op,
                        "Unsupported expression",
                        "Splat expressions are not supported in jobspecs here.",
                    ));
                }
            };
        }
        Ok(cur)
    }

    fn eval_heredoc(&mut self, h: &hcl::edit::template::HeredocTemplate) -> Result<Value, Diag> {
        let range = span_of(h);
        let raw = self.text.get(range.clone()).unwrap_or("");
        let indented = raw.starts_with("<<-");
        let Some(first_nl) = raw.find('\n') else {
            return Ok(Value::String(String::new()));
        };
        let last_nl = raw.rfind('\n').unwrap_or(first_nl);
        let content = if last_nl > first_nl {
            &raw[first_nl + 1..=last_nl]
        } else {
            ""
        };
        let content = if indented {
            dedent(content)
        } else {
            content.to_string()
        };
        let tpl: Template = hcl::edit::parser::parse_template(&content).map_err(|e| {
            Diag::new(
                self.range(range.clone()),
                "Invalid template",
                e.message().to_string(),
            )
        })?;
        let mut sub = Scope {
            text: &content,
            base: self.base + range.start + first_nl + 1,
            vars: self.vars,
            locals: self.locals,
            iter: self.iter.clone(),
            locals_ready: self.locals_ready,
            renamed: self.renamed,
        };
        let elems: Vec<&Element> = tpl.iter().collect();
        sub.eval_elements(&elems)
    }

    fn eval_elements(&mut self, elems: &[&Element]) -> Result<Value, Diag> {
        // A template made of a single interpolation yields the value itself (HCL2 rule).
        if let [Element::Interpolation(i)] = elems {
            return self.eval(&i.expr);
        }
        let mut out = String::new();
        let mut strip_next = false;
        for el in elems {
            match el {
                Element::Literal(l) => {
                    let s: &str = l.as_str();
                    if strip_next {
                        out.push_str(s.trim_start());
                    } else {
                        out.push_str(s);
                    }
                    strip_next = false;
                }
                Element::Interpolation(i) => {
                    if i.strip.strip_start() {
                        let t = out.trim_end().len();
                        out.truncate(t);
                    }
                    let v = self.eval(&i.expr)?;
                    out.push_str(&self.interp_str(&i.expr, &v)?);
                    strip_next = i.strip.strip_end();
                }
                Element::Directive(d) => {
                    match d.as_ref() {
                        Directive::If(ifd) => {
                            let c = self.eval(&ifd.if_expr.cond_expr)?;
                            let Some(cond) = as_bool(&c) else {
                                return Err(self.err(
                                    &ifd.if_expr.cond_expr,
                                    "Invalid template if condition",
                                    "The condition must be of type bool.",
                                ));
                            };
                            let tpl = if cond {
                                Some(&ifd.if_expr.template)
                            } else {
                                ifd.else_expr.as_ref().map(|e| &e.template)
                            };
                            if let Some(tpl) = tpl {
                                let sub: Vec<&Element> = tpl.iter().collect();
                                let v = self.eval_elements(&sub)?;
                                out.push_str(&to_str(&v).unwrap_or_default());
                            }
                        }
                        Directive::For(fd) => {
                            let coll = self.eval(&fd.for_expr.collection_expr)?;
                            let items: Vec<(Value, Value)> = match coll {
                                Value::Array(a) => a
                                    .into_iter()
                                    .enumerate()
                                    .map(|(i, v)| (Value::from(i as u64), v))
                                    .collect(),
                                Value::Object(o) => {
                                    o.into_iter().map(|(k, v)| (Value::String(k), v)).collect()
                                }
                                _ => {
                                    return Err(self.err(
                                        &fd.for_expr.collection_expr,
                                        "Iteration over non-iterable value",
                                        "A value of type string cannot be used as the collection in a 'for' expression.",
                                    ));
                                }
                            };
                            for (k, v) in items {
                                let depth = self.iter.len();
                                if let Some(kv) = &fd.for_expr.key_var {
                                    self.iter.push((kv.value().to_string(), k));
                                }
                                self.iter
                                    .push((fd.for_expr.value_var.value().to_string(), v));
                                let sub: Vec<&Element> = fd.for_expr.template.iter().collect();
                                let r = self.eval_elements(&sub);
                                self.iter.truncate(depth);
                                out.push_str(&to_str(&r?).unwrap_or_default());
                            }
                        }
                    }
                    strip_next = false;
                }
            }
        }
        Ok(Value::String(out))
    }

    fn interp_str(&self, e: &Expression, v: &Value) -> Result<String, Diag> {
        to_str(v).ok_or_else(|| {
            self.err(
                e,
                "Invalid template interpolation value",
                "Cannot include the given value in a string template: string required.",
            )
        })
    }

    fn eval_func(&mut self, f: &hcl::edit::expr::FuncCall) -> Result<Value, Diag> {
        let name = f.name.name.value().as_str();
        // try/can evaluate lazily so failures can be caught.
        if name == "try" || name == "can" {
            for a in f.args.iter() {
                if let Ok(v) = self.eval(a) {
                    return Ok(if name == "can" { Value::Bool(true) } else { v });
                }
                if name == "can" {
                    return Ok(Value::Bool(false));
                }
            }
            return Err(self.err(
                f,
                "Error in function call",
                "Call to function \"try\" failed: no expression succeeded.",
            ));
        }
        // `convert(value, type)`: the second argument is a type expression, not a value.
        if name == "convert"
            && let [value, ty] = f.args.iter().collect::<Vec<_>>().as_slice()
        {
            let v = self.eval(value)?;
            return convert(v, self.src(*ty).trim()).ok_or_else(|| {
                self.err(
                    f,
                    "Error in function call",
                    format!(
                        "Call to function \"convert\" failed: a {} is required.",
                        self.src(*ty).trim()
                    ),
                )
            });
        }
        let mut args = Vec::new();
        for a in f.args.iter() {
            args.push(self.eval(a)?);
        }
        if f.args.expand_final()
            && let Some(Value::Array(last)) = args.pop()
        {
            args.extend(last);
        }
        super::funcs::call(name, args).map_err(|e| match e {
            super::funcs::FuncErr::Unknown => self.err(
                &f.name.name,
                "Call to unknown function",
                format!("There is no function named \"{name}\"."),
            ),
            super::funcs::FuncErr::Unsupported => self.err(
                f,
                "Error in function call",
                format!(
                    "Call to function \"{name}\" failed: drover's jobspec parser cannot evaluate it (Nomad can)."
                ),
            ),
            super::funcs::FuncErr::Failed(msg) => self.err(
                f,
                "Error in function call",
                format!("Call to function \"{name}\" failed: {msg}."),
            ),
        })
    }
}

/// A value converted to a primitive type (`string`, `number`, `bool`); other types pass the
/// value through. `None` when the value does not convert.
pub(crate) fn convert(v: Value, ty: &str) -> Option<Value> {
    match ty {
        "string" => to_str(&v).map(Value::String),
        "number" => as_f64(&v).map(num_f),
        "bool" => as_bool(&v).map(Value::Bool),
        _ => Some(v),
    }
}

/// Go HCL's `<<-` flush rule: strip the smallest leading-space count of the non-blank lines;
/// whitespace-only lines neither count nor get trimmed.
pub(crate) fn dedent(content: &str) -> String {
    let lines: Vec<&str> = content.split_inclusive('\n').collect();
    let blank = |l: &str| l.trim().is_empty() && l.ends_with('\n');
    let min = lines
        .iter()
        .filter(|l| !blank(l))
        .map(|l| {
            l.chars()
                .take_while(|c| c.is_whitespace() && *c != '\n')
                .count()
        })
        .min()
        .unwrap_or(0);
    let mut out = String::with_capacity(content.len());
    for l in lines {
        if blank(l) {
            out.push_str(l);
        } else {
            let skip: usize = l.chars().take(min).map(char::len_utf8).sum();
            out.push_str(&l[skip..]);
        }
    }
    out
}

fn index_value(cur: &Value, idx: &Value) -> Option<Value> {
    match cur {
        Value::Array(a) => as_f64(idx).and_then(|f| a.get(f as usize).cloned()),
        Value::Object(o) => to_str(idx).and_then(|k| o.get(&k).cloned()),
        _ => None,
    }
}

/// A JSON number from a float, integral when possible (cty numbers print like that).
pub(crate) fn num_f(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::from(f as i64)
    } else {
        Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

pub(crate) fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

pub(crate) fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

/// cty's string conversion of primitives; `None` for null and collections.
pub(crate) fn to_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => as_f64(a) == as_f64(b),
        _ => a == b,
    }
}
