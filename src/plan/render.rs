//! Human diffs in the style of `nomad job plan`: `+` added, `-` deleted, `+/-` edited; unchanged
//! context hidden; optional ANSI colour for terminals; values of secret-looking keys redacted.

use std::fmt::Write as _;

use crate::providers::nomad::types::{DiffType, FieldDiff, JobDiff, ObjectDiff};

/// What a redacted value shows instead.
pub const REDACTED: &str = "<redacted>";

/// Key fragments whose values a diff hides unless told otherwise.
pub const DEFAULT_REDACT_KEYS: &[&str] = &["password", "secret", "token", "key", "credential"];

/// Which values a diff hides: those of `Env[K]` and `Meta[K]` entries and of driver `Config` keys
/// whose key contains one of the fragments, case-insensitively (DESIGN rule 6). Jobspecs sometimes
/// carry literal secrets in `env`; every diff drover shows (CLI, page, API) goes through this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    /// Lower-case key fragments.
    fragments: Vec<String>,
}

impl Default for Redaction {
    fn default() -> Self {
        Redaction::new(DEFAULT_REDACT_KEYS.iter().copied())
    }
}

impl Redaction {
    /// Hide values whose key contains any of `fragments` (case-insensitive).
    pub fn new<S: AsRef<str>>(fragments: impl IntoIterator<Item = S>) -> Redaction {
        Redaction {
            fragments: fragments
                .into_iter()
                .map(|f| f.as_ref().to_lowercase())
                .filter(|f| !f.is_empty())
                .collect(),
        }
    }

    /// Hide nothing (`drover plan --show-secrets`).
    pub fn reveal_all() -> Redaction {
        Redaction {
            fragments: Vec::new(),
        }
    }

    /// Whether the value of a key (a config-entry field, a map key) is hidden.
    pub fn hides_key(&self, key: &str) -> bool {
        let key = key.to_lowercase();
        self.fragments.iter().any(|f| key.contains(f.as_str()))
    }

    /// Whether a diff field's value is hidden. `in_config`: the field is a driver config key.
    fn hides(&self, field: &str, in_config: bool) -> bool {
        let key = match field.strip_suffix(']').and_then(|f| f.split_once('[')) {
            Some(("Env" | "Meta", key)) => key,
            _ if in_config => field,
            _ => return false,
        };
        let key = key.to_lowercase();
        self.fragments.iter().any(|f| key.contains(f.as_str()))
    }
}

/// How to render: colour for a TTY, and which values to hide.
#[derive(Debug, Clone, Copy)]
pub struct Style<'a> {
    /// ANSI colours (green/red/yellow).
    pub colour: bool,
    /// Values to hide.
    pub redaction: &'a Redaction,
}

/// Render a `JobDiff`.
pub fn job_diff(diff: &JobDiff, style: Style<'_>) -> String {
    let colour = style.colour;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}Job: \"{}\"",
        marker(diff.diff_type, colour),
        diff.id
    );
    fields(&mut out, diff.fields.as_deref(), 0, style, false);
    objects(&mut out, diff.objects.as_deref(), 0, style, false);
    for group in diff.task_groups.as_deref().unwrap_or_default() {
        if group.diff_type == DiffType::None && group.updates.as_ref().is_none_or(|u| u.is_empty())
        {
            continue;
        }
        let updates = group
            .updates
            .as_ref()
            .map(|u| {
                u.iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(k, n)| format!("{n} {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|s| !s.is_empty())
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{}Task Group: \"{}\"{}",
            marker(group.diff_type, colour),
            group.name,
            updates
        );
        fields(&mut out, group.fields.as_deref(), 1, style, false);
        objects(&mut out, group.objects.as_deref(), 1, style, false);
        for task in group.tasks.as_deref().unwrap_or_default() {
            if task.diff_type == DiffType::None {
                continue;
            }
            let notes = task
                .annotations
                .as_ref()
                .filter(|a| !a.is_empty())
                .map(|a| format!(" ({})", a.join(", ")))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}Task: \"{}\"{}",
                marker(task.diff_type, colour),
                task.name,
                notes
            );
            fields(&mut out, task.fields.as_deref(), 2, style, false);
            objects(&mut out, task.objects.as_deref(), 2, style, false);
        }
    }
    out
}

fn fields(
    out: &mut String,
    fields: Option<&[FieldDiff]>,
    depth: usize,
    style: Style<'_>,
    in_config: bool,
) {
    for f in fields.unwrap_or_default() {
        let indent = "  ".repeat(depth);
        let hidden = style.redaction.hides(&f.name, in_config);
        let value = |v: &str| {
            if hidden {
                REDACTED.to_string()
            } else {
                v.to_string()
            }
        };
        let (old, new) = (value(&f.old), value(&f.new));
        let line = match f.diff_type {
            DiffType::None => continue,
            DiffType::Added => format!("{}: \"{new}\"", f.name),
            DiffType::Deleted => format!("{}: \"{old}\"", f.name),
            DiffType::Edited => format!("{}: \"{old}\" => \"{new}\"", f.name),
        };
        let notes = f
            .annotations
            .as_ref()
            .filter(|a| !a.is_empty())
            .map(|a| format!(" ({})", a.join(", ")))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{indent}{}{line}{notes}",
            marker(f.diff_type, style.colour)
        );
    }
}

fn objects(
    out: &mut String,
    list: Option<&[ObjectDiff]>,
    depth: usize,
    style: Style<'_>,
    inside_config: bool,
) {
    for o in list.unwrap_or_default() {
        if o.diff_type == DiffType::None {
            continue;
        }
        let indent = "  ".repeat(depth);
        let _ = writeln!(
            out,
            "{indent}{}{} {{",
            marker(o.diff_type, style.colour),
            o.name
        );
        // A task's driver `Config` object holds the driver's keys (`auth.password`, …).
        let in_config = inside_config || o.name == "Config";
        fields(out, o.fields.as_deref(), depth + 1, style, in_config);
        objects(out, o.objects.as_deref(), depth + 1, style, in_config);
        let _ = writeln!(out, "{indent}    }}");
    }
}

fn marker(t: DiffType, colour: bool) -> String {
    let (text, code) = match t {
        DiffType::Added => ("+ ", "32"),
        DiffType::Deleted => ("- ", "31"),
        DiffType::Edited => ("+/- ", "33"),
        DiffType::None => ("", ""),
    };
    if colour && !code.is_empty() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::nomad::types::{TaskDiff, TaskGroupDiff};

    fn field(t: DiffType, name: &str, old: &str, new: &str) -> FieldDiff {
        FieldDiff {
            diff_type: t,
            name: name.into(),
            old: old.into(),
            new: new.into(),
            annotations: None,
        }
    }

    #[test]
    fn renders_like_nomad_job_plan_and_hides_unchanged_context() {
        let diff = JobDiff {
            diff_type: DiffType::Edited,
            id: "web".into(),
            fields: Some(vec![field(DiffType::Edited, "Stop", "true", "false")]),
            objects: None,
            task_groups: Some(vec![TaskGroupDiff {
                diff_type: DiffType::Edited,
                name: "web".into(),
                fields: None,
                objects: None,
                tasks: Some(vec![TaskDiff {
                    diff_type: DiffType::Edited,
                    name: "server".into(),
                    fields: None,
                    objects: Some(vec![ObjectDiff {
                        diff_type: DiffType::Edited,
                        name: "Config".into(),
                        fields: Some(vec![
                            field(DiffType::Edited, "image", "nginx:1", "nginx:2"),
                            field(DiffType::None, "ports[0]", "http", "http"),
                        ]),
                        objects: None,
                    }]),
                    annotations: Some(vec!["forces create/destroy update".into()]),
                }]),
                updates: Some([("create/destroy update".to_string(), 1)].into()),
            }]),
        };
        let plain = Style {
            colour: false,
            redaction: &Redaction::default(),
        };
        let text = job_diff(&diff, plain);
        assert_eq!(
            text,
            "+/- Job: \"web\"\n+/- Stop: \"true\" => \"false\"\n+/- Task Group: \"web\" (1 create/destroy update)\n  +/- Task: \"server\" (forces create/destroy update)\n    +/- Config {\n      +/- image: \"nginx:1\" => \"nginx:2\"\n        }\n"
        );
        let colour = Style {
            colour: true,
            ..plain
        };
        assert!(job_diff(&diff, colour).contains("\x1b[33m+/- \x1b[0m"));
    }

    fn task_diff(fields: Vec<FieldDiff>, config: Vec<FieldDiff>) -> JobDiff {
        JobDiff {
            diff_type: DiffType::Edited,
            id: "web".into(),
            fields: Some(vec![field(DiffType::Added, "Meta[api_token]", "", "t0k3n")]),
            objects: None,
            task_groups: Some(vec![TaskGroupDiff {
                diff_type: DiffType::Edited,
                name: "web".into(),
                fields: None,
                objects: None,
                tasks: Some(vec![TaskDiff {
                    diff_type: DiffType::Edited,
                    name: "server".into(),
                    fields: Some(fields),
                    objects: Some(vec![ObjectDiff {
                        diff_type: DiffType::Edited,
                        name: "Config".into(),
                        fields: Some(config),
                        objects: None,
                    }]),
                    annotations: None,
                }]),
                updates: None,
            }]),
        }
    }

    #[test]
    fn secret_looking_env_meta_and_config_values_are_redacted() {
        let diff = task_diff(
            vec![
                field(DiffType::Edited, "Env[DB_PASSWORD]", "hunter1", "hunter2"),
                field(DiffType::Added, "Env[Aws_Secret_Access_Key]", "", "wJalr"),
                field(DiffType::Added, "Env[LOG_LEVEL]", "", "debug"),
                field(DiffType::Edited, "Name", "keyed", "keyless"),
            ],
            vec![
                field(DiffType::Added, "auth[0][password]", "", "dockerpw"),
                field(DiffType::Edited, "image", "nginx:1", "nginx:2"),
            ],
        );
        let style = Style {
            colour: false,
            redaction: &Redaction::default(),
        };
        let text = job_diff(&diff, style);
        for secret in ["hunter1", "hunter2", "wJalr", "dockerpw", "t0k3n"] {
            assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        }
        assert!(
            text.contains("+/- Env[DB_PASSWORD]: \"<redacted>\" => \"<redacted>\""),
            "{text}"
        );
        assert!(text.contains("+ Meta[api_token]: \"<redacted>\""), "{text}");
        assert!(
            text.contains("+ auth[0][password]: \"<redacted>\""),
            "{text}"
        );
        // Other keys, and fields that are not env/meta/config keys, stay visible.
        assert!(text.contains("+ Env[LOG_LEVEL]: \"debug\""), "{text}");
        assert!(text.contains("image: \"nginx:1\" => \"nginx:2\""), "{text}");
        assert!(text.contains("Name: \"keyed\" => \"keyless\""), "{text}");

        let revealed = job_diff(
            &diff,
            Style {
                redaction: &Redaction::reveal_all(),
                ..style
            },
        );
        assert!(
            revealed.contains("\"hunter1\" => \"hunter2\""),
            "{revealed}"
        );
        assert!(!revealed.contains(REDACTED), "{revealed}");

        let custom = Redaction::new(["LOG_"]);
        let text = job_diff(
            &diff,
            Style {
                redaction: &custom,
                ..style
            },
        );
        assert!(text.contains("+ Env[LOG_LEVEL]: \"<redacted>\""), "{text}");
        assert!(
            text.contains("hunter2"),
            "configured keys replace the defaults: {text}"
        );
    }
}
