//! Human diffs in the style of `nomad job plan`: `+` added, `-` deleted, `+/-` edited; unchanged
//! context hidden; optional ANSI colour for terminals.

use std::fmt::Write as _;

use crate::providers::nomad::types::{DiffType, FieldDiff, JobDiff, ObjectDiff};

/// Render a `JobDiff`. `colour` adds ANSI colours (green/red/yellow) for a TTY.
pub fn job_diff(diff: &JobDiff, colour: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}Job: \"{}\"",
        marker(diff.diff_type, colour),
        diff.id
    );
    fields(&mut out, diff.fields.as_deref(), 0, colour);
    objects(&mut out, diff.objects.as_deref(), 0, colour);
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
        fields(&mut out, group.fields.as_deref(), 1, colour);
        objects(&mut out, group.objects.as_deref(), 1, colour);
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
            fields(&mut out, task.fields.as_deref(), 2, colour);
            objects(&mut out, task.objects.as_deref(), 2, colour);
        }
    }
    out
}

fn fields(out: &mut String, fields: Option<&[FieldDiff]>, depth: usize, colour: bool) {
    for f in fields.unwrap_or_default() {
        let indent = "  ".repeat(depth);
        let line = match f.diff_type {
            DiffType::None => continue,
            DiffType::Added => format!("{}: \"{}\"", f.name, f.new),
            DiffType::Deleted => format!("{}: \"{}\"", f.name, f.old),
            DiffType::Edited => format!("{}: \"{}\" => \"{}\"", f.name, f.old, f.new),
        };
        let notes = f
            .annotations
            .as_ref()
            .filter(|a| !a.is_empty())
            .map(|a| format!(" ({})", a.join(", ")))
            .unwrap_or_default();
        let _ = writeln!(out, "{indent}{}{line}{notes}", marker(f.diff_type, colour));
    }
}

fn objects(out: &mut String, list: Option<&[ObjectDiff]>, depth: usize, colour: bool) {
    for o in list.unwrap_or_default() {
        if o.diff_type == DiffType::None {
            continue;
        }
        let indent = "  ".repeat(depth);
        let _ = writeln!(out, "{indent}{}{} {{", marker(o.diff_type, colour), o.name);
        fields(out, o.fields.as_deref(), depth + 1, colour);
        objects(out, o.objects.as_deref(), depth + 1, colour);
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
        let text = job_diff(&diff, false);
        assert_eq!(
            text,
            "+/- Job: \"web\"\n+/- Stop: \"true\" => \"false\"\n+/- Task Group: \"web\" (1 create/destroy update)\n  +/- Task: \"server\" (forces create/destroy update)\n    +/- Config {\n      +/- image: \"nginx:1\" => \"nginx:2\"\n        }\n"
        );
        assert!(job_diff(&diff, true).contains("\x1b[33m+/- \x1b[0m"));
    }
}
