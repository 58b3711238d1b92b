//! Go `text/template` (Go 1.22+ semantics) over JSON values, with configurable delimiters and the
//! Sprig v3 functions Nomad Packs use — the engine drover renders Nomad Packs and Levant templates
//! with (`[[ ]]` delimiters; the `{{ }}` of consul-template passes through as text).
//!
//! ```
//! use drover_gotmpl::{Delims, FuncMap, TemplateSet, Value};
//! let mut set = TemplateSet::new(Delims { left: "[[".into(), right: "]]".into() }, FuncMap::sprig());
//! set.parse("job", r#"job [[ .name | quote ]] { meta { x = "{{ env "X" }}" } }"#).unwrap();
//! let out = set.execute("job", &serde_json::json!({"name": "web"})).unwrap();
//! assert_eq!(out, r#"job "web" { meta { x = "{{ env "X" }}" } }"#);
//! ```
//!
//! **Faithfulness.** Lexing (trim markers `[[- ` / ` -]]`, comments, raw and interpreted strings,
//! chars, Go number literals), parsing and its error messages, execution (pipelines, variables,
//! `if`/`else if`/`with`/`else with`/`range` over lists, maps in sorted key order and integers,
//! `break`/`continue`, `define`/`template`/`block`), truthiness, the built-in functions (`and`/`or`
//! short-circuit, `eq` with several arguments, Go's comparison rules) and `%v`/`printf` formatting
//! follow Go. `golden/` holds a Go program that renders every `golden/cases/*.tpl` with Go 1.26 and
//! Sprig v3.3.0; `tests/golden.rs` compares our output byte for byte, and error messages by position
//! (`template: NAME:LINE:COL:`) and text.
//!
//! **Data model.** Templates see [`serde_json::Value`]s, as Go would see the result of decoding
//! JSON with integers kept as `int`: a JSON integer is a Go `int`, a number with a fraction or
//! exponent a `float64`, arrays `[]interface {}`, objects `map[string]interface {}`. So `eq 1 1.0` is
//! an error as in Go. A missing map key prints `<no value>` (also with `missingkey=zero`, as Go
//! does for `interface{}` maps); a present `null` passed to a function is `nil`.
//!
//! **Known differences from Go** (each golden case that shows one has a `.expected-diff` note):
//! - Template calls nest at most 100 deep (Go: 100000), control structures and parentheses 200 deep,
//!   output is capped at 64 MiB, execution at 10 million steps, values built by Sprig functions at
//!   1,000 levels of nesting: a runaway template errors instead of exhausting stack, memory or time.
//! - Strings are UTF-8: a Sprig function that cuts a multi-byte character (`trunc`, `substr`)
//!   yields U+FFFD where Go would write the broken bytes.
//! - Sprig functions returning typed Go slices (`[]string` from `splitList`, `toStrings`,
//!   `sortAlpha`, `keys`) return JSON arrays: `typeOf` says `[]interface {}` for them.
//! - Go's numeric results keep their Go type (`add` returns `int64`, `int` an `int`): `typeOf` and
//!   `kindOf` say `int64` for them in Go, `int` here; printing and comparisons are the same.
//! - `keys` and `values` return sorted (by key) results; Go's are in random map order.
//! - `set`, `unset`, `merge`, `mergeOverwrite` change the map in place in Go; here the change is
//!   written back when the map is a variable or a field of one (`$_ := set $d "k" v`), not when it
//!   is reached through `.` or through another variable holding the same map.
//! - `call` is not supported (functions are not values); complex numbers are not supported.
//!
//! **Sprig functions provided** ([`FuncMap::sprig`]): default empty coalesce ternary fail; quote
//! squote upper lower title trim trimAll trimPrefix trimSuffix replace contains hasPrefix hasSuffix
//! repeat substr trunc nospace indent nindent camelcase snakecase kebabcase plural; join split
//! splitList toString toStrings toJson toPrettyJson fromJson; list append/push prepend first last
//! rest initial slice uniq has without compact concat sortAlpha (and their `must…` forms); keys
//! values dict get set unset hasKey pluck merge mergeOverwrite; int int64 float64 atoi add add1 sub
//! mul div mod max min until; b64enc b64dec sha256sum; regexMatch regexFind regexReplaceAll; kindOf
//! kindIs typeOf; base dir ext clean uuidv4.
//!
//! **Not provided on purpose:** Sprig's `env` and `expandenv` (a pack must not read drover's
//! environment: it holds tokens), and Sprig's functions outside the pack subset (dates, crypto
//! beyond `sha256sum`, semver, random strings other than `uuidv4`). An unknown function is a parse
//! error naming it, as in Go.

mod exec;
mod fmt;
mod funcs;
mod lex;
mod parse;
mod sprig;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use serde_json::Value;

/// The action delimiters (Go's `Delims`). Nomad Pack uses `[[` and `]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delims {
    pub left: String,
    pub right: String,
}

impl Default for Delims {
    fn default() -> Self {
        Delims {
            left: "{{".to_string(),
            right: "}}".to_string(),
        }
    }
}

/// A template function: receives its arguments already evaluated.
pub type Func = Arc<dyn Fn(&[Value]) -> Result<Value, String> + Send + Sync>;

/// Named functions callable from templates (Go's `template.FuncMap`).
#[derive(Clone, Default)]
pub struct FuncMap {
    funcs: BTreeMap<String, Entry>,
}

/// A function and, for the Sprig ones, its Go signature (for Go's argument checks).
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) f: Func,
    pub(crate) sig: Option<funcs::Sig>,
}

impl FuncMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, name: &str, f: Func) {
        self.funcs.insert(name.to_string(), Entry { f, sig: None });
    }

    pub(crate) fn insert_entry(&mut self, name: &str, e: Entry) {
        self.funcs.insert(name.to_string(), e);
    }

    pub(crate) fn entry(&self, name: &str) -> Option<&Entry> {
        self.funcs.get(name)
    }

    pub fn extend(&mut self, other: FuncMap) {
        self.funcs.extend(other.funcs);
    }

    pub fn get(&self, name: &str) -> Option<&Func> {
        self.funcs.get(name).map(|e| &e.f)
    }

    /// The function names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.funcs.keys().cloned().collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.funcs.contains_key(name)
    }

    /// The Sprig v3 functions (without `env` / `expandenv`).
    pub fn sprig() -> Self {
        sprig::sprig()
    }
}

impl std::fmt::Debug for FuncMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.funcs.keys()).finish()
    }
}

/// What a missing map key evaluates to (Go's `missingkey=` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingKey {
    /// Prints `<no value>` (Go's `default` / `invalid`).
    #[default]
    Default,
    /// The zero value (for JSON maps, as in Go, still prints `<no value>`).
    Zero,
    /// An execution error.
    Error,
}

/// A parse or execution failure, displayed as Go displays it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `template: NAME:LINE: MESSAGE`
    #[error("template: {name}:{line}: {message}")]
    Parse {
        name: String,
        line: usize,
        message: String,
    },
    /// `template: NAME:LINE:COL: executing "TEMPLATE" at <ACTION>: MESSAGE`
    #[error("template: {name}:{line}:{col}: executing \"{template}\" at <{action}>: {message}")]
    Exec {
        /// The template (file) the failing node was parsed in.
        name: String,
        line: usize,
        col: usize,
        /// The template being executed.
        template: String,
        /// The failing action or node, as written.
        action: String,
        message: String,
    },
    /// Errors without a position, e.g. `template: no template "x" associated with template "y"`.
    #[error("template: {0}")]
    Template(String),
}

/// A set of named templates sharing one namespace (Go's `*template.Template` and its associated
/// templates).
#[derive(Debug, Clone)]
pub struct TemplateSet {
    delims: Delims,
    funcs: FuncMap,
    missing_key: MissingKey,
    trees: parse::Trees,
}

impl TemplateSet {
    pub fn new(delims: Delims, funcs: FuncMap) -> Self {
        TemplateSet {
            delims,
            funcs,
            missing_key: MissingKey::Default,
            trees: BTreeMap::new(),
        }
    }

    /// Parse `text` as template `name`; `define`/`block` inside add more named templates.
    /// A name already defined is replaced, as in Go (unless the new body is empty). Unknown
    /// functions are parse errors.
    pub fn parse(&mut self, name: &str, text: &str) -> Result<(), Error> {
        let funcs = &self.funcs;
        let has_func = |f: &str| funcs::BUILTINS.contains(&f) || funcs.contains(f);
        let trees = parse::parse(name, text, &self.delims.left, &self.delims.right, &has_func)
            .map_err(|e| Error::Parse {
                name: name.to_string(),
                line: e.line,
                message: e.message,
            })?;
        for tree in trees {
            let keep_old = parse::is_empty(&tree.root) && self.trees.contains_key(&tree.name);
            if !keep_old {
                self.trees.insert(tree.name.clone(), Arc::new(tree));
            }
        }
        Ok(())
    }

    pub fn has(&self, name: &str) -> bool {
        self.trees.contains_key(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.trees.keys().cloned().collect()
    }

    pub fn execute(&self, name: &str, data: &Value) -> Result<String, Error> {
        let Some(tree) = self.trees.get(name) else {
            return Err(Error::Template(format!(
                "no template {} associated with this set",
                fmt::go_quote(name)
            )));
        };
        let ex = exec::Exec {
            trees: &self.trees,
            funcs: &self.funcs,
            missing_key: self.missing_key,
        };
        ex.run(tree.clone(), data)
    }

    pub fn set_missing_key(&mut self, mode: MissingKey) {
        self.missing_key = mode;
    }
}

/// Entry point for drover's fuzz targets (`fuzz/`, and `tests/fuzz_corpus.rs` on stable).
#[doc(hidden)]
pub mod fuzzing {
    use super::{Delims, FuncMap, TemplateSet, Value};

    /// `data` as a pack template with `[[ ]]` delimiters and Sprig, and after a NUL byte as its
    /// JSON data (a small fixed object when absent or invalid): parsed, then executed; must not
    /// panic, and the engine's step and output limits bound the time and memory.
    pub fn render(data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        let (template, json) = text.split_once('\0').unwrap_or((&text, ""));
        let data = serde_json::from_str::<Value>(json).unwrap_or_else(|_| {
            serde_json::json!({
                "name": "web",
                "count": 3,
                "ports": [80, 443],
                "meta": {"team": "ops", "ratio": 0.5, "on": true, "none": null},
            })
        });
        let delims = Delims {
            left: "[[".into(),
            right: "]]".into(),
        };
        let mut set = TemplateSet::new(delims, FuncMap::sprig());
        if set.parse("fuzz", template).is_ok() {
            let _ = set.execute("fuzz", &data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pack_set() -> TemplateSet {
        TemplateSet::new(
            Delims {
                left: "[[".into(),
                right: "]]".into(),
            },
            FuncMap::sprig(),
        )
    }

    #[test]
    fn templates_share_one_namespace_and_later_definitions_replace() {
        let mut set = pack_set();
        set.parse("_helpers.tpl", r#"[[ define "name" ]]old[[ end ]]"#)
            .expect("helpers parse");
        set.parse("job.nomad.tpl", r#"job "[[ template "name" . ]]""#)
            .expect("job parses");
        assert_eq!(
            set.execute("job.nomad.tpl", &Value::Null).expect("renders"),
            r#"job "old""#
        );
        set.parse("more.tpl", r#"[[ define "name" ]]new[[ end ]]"#)
            .expect("redefinition parses");
        assert_eq!(
            set.execute("job.nomad.tpl", &Value::Null).expect("renders"),
            r#"job "new""#
        );
        // An empty body does not replace (Go: only white space and comments).
        set.parse("empty.tpl", r#"[[ define "name" ]]  [[/* x */]] [[ end ]]"#)
            .expect("parses");
        assert_eq!(
            set.execute("job.nomad.tpl", &Value::Null).expect("renders"),
            r#"job "new""#
        );
        assert!(set.has("name") && set.has("_helpers.tpl"));
        assert_eq!(
            set.names(),
            [
                "_helpers.tpl",
                "empty.tpl",
                "job.nomad.tpl",
                "more.tpl",
                "name"
            ]
        );
    }

    #[test]
    fn unknown_template_and_unknown_function_are_errors() {
        let mut set = pack_set();
        assert!(matches!(
            set.execute("nope", &Value::Null),
            Err(Error::Template(_))
        ));
        let err = set
            .parse("t", "x\n[[ env \"HOME\" ]]")
            .expect_err("env is not provided");
        assert_eq!(
            err.to_string(),
            r#"template: t:2: function "env" not defined"#
        );
    }

    #[test]
    fn a_failing_function_reports_template_line_column_and_action() {
        let mut funcs = FuncMap::sprig();
        funcs.insert(
            "required_var",
            Arc::new(|args: &[Value]| match args {
                [Value::String(name), Value::Null] => {
                    Err(format!("missing required variable {name}"))
                }
                [_, v] => Ok(v.clone()),
                _ => Err("want 2 arguments".into()),
            }),
        );
        let mut set = TemplateSet::new(
            Delims {
                left: "[[".into(),
                right: "]]".into(),
            },
            funcs,
        );
        set.parse(
            "job.nomad.tpl",
            "job {\n  image = [[ required_var \"image\" .image ]]\n}",
        )
        .expect("parses");
        let err = set
            .execute("job.nomad.tpl", &json!({}))
            .expect_err("image is missing");
        assert_eq!(
            err.to_string(),
            "template: job.nomad.tpl:2:13: executing \"job.nomad.tpl\" at <required_var \"image\" .image>: \
             error calling required_var: missing required variable image"
        );
        assert_eq!(
            set.execute("job.nomad.tpl", &json!({"image": "x"}))
                .expect("renders"),
            "job {\n  image = x\n}"
        );
    }

    #[test]
    fn missing_key_modes() {
        let mut set = pack_set();
        set.parse("t", "[[ .a.b ]]").expect("parses");
        assert_eq!(set.execute("t", &json!({})).expect("renders"), "<no value>");
        set.set_missing_key(MissingKey::Zero);
        assert_eq!(
            set.execute("t", &json!({"a": {}})).expect("renders"),
            "<no value>"
        );
        set.set_missing_key(MissingKey::Error);
        let err = set
            .execute("t", &json!({"a": {}}))
            .expect_err("missing key");
        assert!(
            err.to_string().ends_with(r#"map has no entry for key "b""#),
            "{err}"
        );
    }

    #[test]
    fn default_delimiters_and_literal_pack_syntax() {
        let mut set = TemplateSet::new(Delims::default(), FuncMap::new());
        set.parse("t", "{{ .x }} [[ .x ]]").expect("parses");
        assert_eq!(
            set.execute("t", &json!({"x": 1})).expect("renders"),
            "1 [[ .x ]]"
        );
    }
}
