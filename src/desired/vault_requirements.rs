//! Vault secrets a job needs, read from its templates: every `{{ with secret "PATH" }}` (and
//! `{{ secret "PATH" }}`) becomes a requirement on PATH holding the keys the template reads from
//! it, KV v2's `.Data.data.KEY` or KV v1's `.Data.KEY` (also `index .Data.data "KEY"`). They join
//! the app.yaml `vault_secret:` requirements per path, so a key only named in a template is
//! checked like a listed one. A key only tested (`{{ if .Data.data.KEY }}`) is not required.
//! Pure: no Vault call, no value, only paths and key names.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use hcl::edit::Span;
use hcl::edit::structure::{Block, Body};
use regex::Regex;
use serde::Serialize;
use serde_json::Value;

use super::{App, JobFormat, Origin, ResourceSpec, secret_path_matches};

/// A Vault secret that must exist and hold `keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretRequirement {
    /// The path as consul-template reads it (`nomad/data/default/nextcloud`); for an app.yaml
    /// `vault_secret`, `mount/path`.
    pub path: String,
    /// The keys it must hold, sorted.
    pub keys: BTreeSet<String>,
    /// Who requires it: each template (its `template` block) and app.yaml entry.
    pub required_by: Vec<Origin>,
}

/// Every Vault secret `app` requires: its `vault_secret` resources, and what its jobs'
/// templates read (HCL2 jobspecs through Nomad's parser with the app's variables; a jobspec
/// that does not parse adds nothing, its error is reported elsewhere). One entry per path: a
/// template path naming a `vault_secret` (`nomad/default/x` or KV v2's `nomad/data/default/x` for
/// `mount: nomad, path: default/x`) joins it.
pub fn app_secret_requirements(app: &App) -> Vec<SecretRequirement> {
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for resource in &app.resources {
        match &resource.spec {
            ResourceSpec::VaultSecret(secret) => explicit.push((
                secret.mount.as_str(),
                secret.path.as_str(),
                SecretRequirement {
                    path: format!("{}/{}", secret.mount, secret.path),
                    keys: secret.keys.iter().cloned().collect(),
                    required_by: vec![resource.origin.clone()],
                },
            )),
            ResourceSpec::NomadJob(job) => {
                let parsed = match job.format {
                    JobFormat::Hcl2 => drover_jobspec::parse(&job.source, &job.variables).ok(),
                    JobFormat::Json => serde_json::from_str(&job.source).ok(),
                };
                let source = (job.format == JobFormat::Hcl2).then_some(job.source.as_str());
                if let Some(parsed) = parsed {
                    implicit.extend(template_secret_requirements(&job.file, source, &parsed));
                }
            }
            _ => {}
        }
    }
    merge(explicit, implicit)
}

fn merge(
    explicit: Vec<(&str, &str, SecretRequirement)>,
    implicit: Vec<SecretRequirement>,
) -> Vec<SecretRequirement> {
    let mut out: Vec<SecretRequirement> = Vec::new();
    let join = |into: &mut Vec<SecretRequirement>, at: Option<usize>, r: SecretRequirement| match at
    {
        Some(i) => {
            into[i].keys.extend(r.keys);
            into[i].required_by.extend(r.required_by);
        }
        None => into.push(r),
    };
    let mut mounts: Vec<(String, String)> = Vec::new();
    for (mount, path, requirement) in explicit {
        let at = mounts.iter().position(|(m, p)| m == mount && p == path);
        if at.is_none() {
            mounts.push((mount.to_string(), path.to_string()));
        }
        join(&mut out, at, requirement);
    }
    for requirement in implicit {
        let at = mounts
            .iter()
            .position(|(m, p)| secret_path_matches(&requirement.path, m, p))
            .or_else(|| {
                out.iter()
                    .skip(mounts.len())
                    .position(|r| r.path == requirement.path)
                    .map(|i| i + mounts.len())
            });
        join(&mut out, at, requirement);
    }
    out
}

/// The secrets the templates of one parsed job (`drover_jobspec::parse`, or API JSON) read,
/// one entry per path per template, in file order. `source` is the HCL2 text of `file`, for
/// the template lines (`None`: line 0).
pub fn template_secret_requirements(
    file: &str,
    source: Option<&str>,
    job: &Value,
) -> Vec<SecretRequirement> {
    let lines = source.map(template_lines).unwrap_or_default();
    let job = job.get("Job").unwrap_or(job);
    let mut out = Vec::new();
    for group in array(job, "TaskGroups") {
        let group_name = text(group, "Name");
        for task in array(group, "Tasks") {
            let task_name = text(task, "Name");
            for (i, template) in array(task, "Templates").enumerate() {
                let Some(data) = template.get("EmbeddedTmpl").and_then(Value::as_str) else {
                    continue;
                };
                let line = lines
                    .get(&(group_name.clone(), task_name.clone(), i))
                    .copied()
                    .unwrap_or(0);
                for (path, keys) in secrets_in_template(data) {
                    out.push(SecretRequirement {
                        path,
                        keys,
                        required_by: vec![Origin {
                            file: file.to_string(),
                            line,
                        }],
                    });
                }
            }
        }
    }
    out
}

fn array<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn literal_regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| unreachable!("literal regex {pattern}: {e}"))
}

/// `secret "PATH"` with no further argument (with one, `secret` writes, e.g. a PKI issue).
static SECRET_CALL: LazyLock<Regex> =
    LazyLock::new(|| literal_regex(r#"(?:^|[\s(])secret\s+"([^"]+)"(\s+"[^"]*")?"#));
/// `$name := secret "PATH"` (or `=`).
static SECRET_VARIABLE: LazyLock<Regex> =
    LazyLock::new(|| literal_regex(r#"(\$\w+)\s*:?=\s*secret\s+"([^"]+)"\s*$"#));
/// `(secret "PATH").Data.data.KEY`.
static SECRET_FIELD: LazyLock<Regex> =
    LazyLock::new(|| literal_regex(r#"\(\s*secret\s+"([^"]+)"\s*\)\.Data\.(\w+)(?:\.(\w+))?"#));
/// `.Data.data.KEY`, `.Data.KEY`, `$s.Data.data.KEY`.
static DATA_FIELD: LazyLock<Regex> =
    LazyLock::new(|| literal_regex(r"(?:^|[^\w.$)])(\$\w+)?\.Data\.(\w+)(?:\.(\w+))?"));
/// `index .Data.data "KEY"`, `index $s.Data "KEY"`.
static DATA_INDEX: LazyLock<Regex> =
    LazyLock::new(|| literal_regex(r#"\bindex\s+(\$\w+)?\.Data(\.data)?\s+"([^"]+)""#));

/// The key a `.Data.<first>[.<second>]` read names: KV v2's `.Data.data.KEY`, else KV v1's
/// `.Data.KEY`. `.Data.data` alone and KV v2's `.Data.metadata…` name none.
fn key_of(first: &str, second: Option<&str>) -> Option<String> {
    match (first, second) {
        ("data", Some(key)) => Some(key.to_string()),
        ("data" | "metadata", _) => None,
        (key, _) => Some(key.to_string()),
    }
}

/// What `.` is inside a block: the secret of `with secret`, something else (`with`, `range`,
/// `define`), or unchanged (`if`).
#[derive(Clone, Copy)]
enum Dot {
    Secret(usize),
    Other,
    Unchanged,
}

/// The secrets one consul-template text reads, with the keys read from each, by path.
pub fn secrets_in_template(data: &str) -> Vec<(String, BTreeSet<String>)> {
    let mut found: Vec<(String, BTreeSet<String>)> = Vec::new();
    let mut scopes: Vec<Dot> = Vec::new();
    let mut variables: BTreeMap<String, usize> = BTreeMap::new();
    for action in actions(data) {
        let dot = scopes.iter().rev().find_map(|scope| match scope {
            Dot::Secret(i) => Some(Some(*i)),
            Dot::Other => Some(None),
            Dot::Unchanged => None,
        });
        let dot = dot.flatten();
        let (keyword, rest) = action
            .split_once(char::is_whitespace)
            .unwrap_or((action, ""));
        // A key tested by `if`, `with` or `range` may be absent (the branch is skipped); only
        // a key printed or passed on must exist.
        let conditional = matches!(keyword, "if" | "with" | "range" | "else");
        // Keys read in this action, from `.`, a variable, or a parenthesised call.
        let read = |found: &mut Vec<(String, BTreeSet<String>)>, var: Option<&str>, key| {
            let target = match var {
                Some(name) => variables.get(name).copied(),
                None => dot,
            };
            if let (Some(i), Some(key), false) = (target, key, conditional) {
                found[i].1.insert(key);
            }
        };
        for c in DATA_FIELD.captures_iter(action) {
            let var = c.get(1).map(|m| m.as_str());
            let key = c
                .get(2)
                .and_then(|f| key_of(f.as_str(), c.get(3).map(|m| m.as_str())));
            read(&mut found, var, key);
        }
        for c in DATA_INDEX.captures_iter(action) {
            let var = c.get(1).map(|m| m.as_str());
            let key = c.get(3).map(|m| m.as_str().to_string());
            // KV v1's `index .Data "KEY"` or v2's `index .Data.data "KEY"`.
            read(&mut found, var, key);
        }
        for c in SECRET_FIELD.captures_iter(action) {
            if let Some(path) = c.get(1) {
                let i = index_of(&mut found, path.as_str());
                let key = c
                    .get(2)
                    .and_then(|f| key_of(f.as_str(), c.get(3).map(|m| m.as_str())));
                if !conditional {
                    found[i].1.extend(key);
                }
            }
        }
        let reads_secret = || {
            SECRET_CALL
                .captures(action)
                .filter(|c| c.get(2).is_none())
                .and_then(|c| c.get(1))
                .map(|m| m.as_str().to_string())
        };
        match keyword {
            "with" | "else" if keyword == "with" || rest.trim_start().starts_with("with") => {
                let scope = match reads_secret() {
                    Some(path) => {
                        let i = index_of(&mut found, &path);
                        if let Some(c) = SECRET_VARIABLE.captures(rest)
                            && let Some(name) = c.get(1)
                        {
                            variables.insert(name.as_str().to_string(), i);
                        }
                        Dot::Secret(i)
                    }
                    None => Dot::Other,
                };
                if keyword == "else" {
                    scopes.pop();
                }
                scopes.push(scope);
            }
            "else" => {
                // The else branch of `with` sees the outer `.`.
                scopes.pop();
                scopes.push(Dot::Unchanged);
            }
            "if" => scopes.push(Dot::Unchanged),
            "range" | "define" | "block" => scopes.push(Dot::Other),
            "end" => {
                scopes.pop();
            }
            _ => {
                if let Some(path) = reads_secret() {
                    let i = index_of(&mut found, &path);
                    if let Some(c) = SECRET_VARIABLE.captures(action)
                        && let Some(name) = c.get(1)
                    {
                        variables.insert(name.as_str().to_string(), i);
                    }
                }
            }
        }
    }
    found
}

/// The index of `path` in `found`, added with no key if new.
fn index_of(found: &mut Vec<(String, BTreeSet<String>)>, path: &str) -> usize {
    match found.iter().position(|(p, _)| p == path) {
        Some(i) => i,
        None => {
            found.push((path.to_string(), BTreeSet::new()));
            found.len() - 1
        }
    }
}

/// The text inside each `{{ … }}` action, trim markers and spaces removed, comments skipped.
fn actions(data: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let inner = after[..end]
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        if !inner.starts_with("/*") {
            out.push(inner);
        }
        rest = &after[end + 2..];
    }
    out
}

/// The line of each task's `template` blocks: (group, task, index) → line.
fn template_lines(source: &str) -> BTreeMap<(String, String, usize), usize> {
    let mut out = BTreeMap::new();
    let Ok(body) = hcl::edit::parser::parse_body(source) else {
        return out;
    };
    let line_of = |block: &Block| {
        block.ident.span().map_or(0, |r| {
            source
                .get(..r.start)
                .map_or(0, |b| b.matches('\n').count() + 1)
        })
    };
    for job in blocks(&body, "job") {
        for group in blocks(&job.body, "group") {
            for task in blocks(&group.body, "task") {
                for (i, template) in blocks(&task.body, "template").enumerate() {
                    out.insert((label(group), label(task), i), line_of(template));
                }
            }
        }
    }
    out
}

fn blocks<'a>(body: &'a Body, ident: &'a str) -> impl Iterator<Item = &'a Block> {
    body.blocks().filter(move |b| b.ident.as_str() == ident)
}

fn label(block: &Block) -> String {
    block
        .labels
        .first()
        .map(|l| l.as_str().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::source::Revision;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/brmartin");

    fn fixture(module: &str) -> String {
        let file = format!("{FIXTURES}/modules/{module}/jobspec.nomad.hcl");
        std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    /// (path, keys, "file:line" of each template) for each requirement.
    fn summary(requirements: &[SecretRequirement]) -> Vec<(String, Vec<String>, Vec<String>)> {
        requirements
            .iter()
            .map(|r| {
                (
                    r.path.clone(),
                    r.keys.iter().cloned().collect(),
                    r.required_by
                        .iter()
                        .map(|o| format!("{}:{}", o.file, o.line))
                        .collect(),
                )
            })
            .collect()
    }

    fn of_fixture(module: &str, variables: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
        let source = fixture(module);
        let job = drover_jobspec::parse(&source, variables)
            .unwrap_or_else(|e| panic!("{module}: {}", e.message));
        summary(&template_secret_requirements(
            "job.nomad.hcl",
            Some(&source),
            &job,
        ))
    }

    fn owned(path: &str, keys: &[&str], at: &[&str]) -> (String, Vec<String>, Vec<String>) {
        (
            path.to_string(),
            keys.iter().map(ToString::to_string).collect(),
            at.iter().map(ToString::to_string).collect(),
        )
    }

    #[test]
    fn the_users_templates_require_exact_paths_and_keys() {
        let overseerr_keys = ["MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"];
        assert_eq!(
            of_fixture("overseerr", ""),
            [
                owned(
                    "nomad/default/overseerr",
                    &overseerr_keys,
                    &["job.nomad.hcl:87"]
                ),
                owned(
                    "nomad/default/overseerr",
                    &overseerr_keys,
                    &["job.nomad.hcl:128"]
                ),
            ]
        );
        assert_eq!(
            of_fixture("nextcloud", ""),
            [
                owned(
                    "nomad/data/default/nextcloud",
                    &["db_password"],
                    &["job.nomad.hcl:109"]
                ),
                owned(
                    "nomad/data/default/nextcloud",
                    &["collabora_password"],
                    &["job.nomad.hcl:268"]
                ),
            ]
        );
        assert_eq!(
            of_fixture("gitlab-runner", ""),
            [
                owned(
                    "nomad/default/gitlab-runner",
                    &["runner_token_amd64"],
                    &["job.nomad.hcl:29"]
                ),
                owned(
                    "nomad/default/gitlab-runner",
                    &["runner_token_arm64"],
                    &["job.nomad.hcl:106"]
                ),
            ]
        );
        assert_eq!(of_fixture("elk", "elastic_version = \"8.15.0\""), []);
        assert_eq!(of_fixture("dummy", ""), []);
    }

    fn keys_of(data: &str) -> Vec<(String, Vec<String>)> {
        secrets_in_template(data)
            .into_iter()
            .map(|(p, k)| (p, k.into_iter().collect()))
            .collect()
    }

    fn pair(path: &str, keys: &[&str]) -> (String, Vec<String>) {
        (
            path.to_string(),
            keys.iter().map(ToString::to_string).collect(),
        )
    }

    #[test]
    fn keys_are_read_in_every_template_form() {
        // KV v1, `index` for a key no field name can hold, trim markers, KV v2 metadata.
        assert_eq!(
            keys_of(
                "{{- with secret \"secret/db\" -}}{{ .Data.password }}{{ index .Data \"user-name\" }}{{ end }}\
                 {{ with secret \"kv/data/app\" }}{{ .Data.metadata.version }}{{ index .Data.data \"api-key\" }}{{ end }}"
            ),
            [
                pair("secret/db", &["password", "user-name"]),
                pair("kv/data/app", &["api-key"])
            ]
        );
        // A variable, and a call used in place.
        assert_eq!(
            keys_of(
                "{{ $s := secret \"kv/data/a\" }}{{ $s.Data.data.one }}\
                 {{ (secret \"kv/data/b\").Data.data.two }}{{ with $c := secret \"kv/data/c\" }}{{ $c.Data.data.three }}{{ end }}"
            ),
            [
                pair("kv/data/a", &["one"]),
                pair("kv/data/b", &["two"]),
                pair("kv/data/c", &["three"])
            ]
        );
        // `{{ secret }}` alone requires the secret, with no key.
        assert_eq!(
            keys_of("{{ secret \"kv/data/x\" }}"),
            [pair("kv/data/x", &[])]
        );
    }

    #[test]
    fn only_reads_of_the_secret_itself_count() {
        assert_eq!(
            keys_of(
                "{{ .Data.data.outside }}\
                 {{ with secret \"kv/data/a\" }}\
                   {{ if .Data.data.flag }}{{ .Data.data.inner }}{{ end }}\
                   {{ range service \"db\" }}{{ .Data.data.not_a_key }}{{ end }}\
                   {{ range $k, $v := .Data.data }}{{ $k }}{{ end }}\
                 {{ else }}{{ .Data.data.in_else }}{{ end }}\
                 {{ secret \"pki/issue/web\" \"common_name=web.example.org\" }}\
                 {{/* {{ with secret \"kv/data/commented\" }} */}}"
            ),
            [pair("kv/data/a", &["inner"])]
        );
    }

    #[test]
    fn listed_and_template_requirements_merge_per_path() {
        let app = "name: overseerr\nresources:\n  - nomad_job: { file: job.nomad.hcl }\n  - vault_secret: { mount: nomad, path: default/overseerr, keys: [MINIO_ACCESS_KEY, REGION] }\n  - vault_secret: { mount: nomad, path: default/other, keys: [X] }\n";
        // The first template also reads a secret no vault_secret lists (one line more: the
        // second template moves to line 129).
        let job = fixture("overseerr").replacen(
            "{{ end }}\nEOF\n",
            "{{ end }}\n{{ with secret \"nomad/data/default/extra\" }}{{ .Data.data.E }}{{ end }}\nEOF\n",
            1,
        );
        assert!(job.contains("default/extra"));
        let files: BTreeMap<String, Vec<u8>> = [
            ("apps/overseerr/app.yaml", app.to_string()),
            ("apps/overseerr/job.nomad.hcl", job),
        ]
        .into_iter()
        .map(|(p, t)| (p.to_string(), t.into_bytes()))
        .collect();
        let loaded = super::super::load(&Revision::from_files("test", files));
        let app = loaded.apps[0]
            .result
            .as_ref()
            .unwrap_or_else(|e| panic!("{e:?}"));
        let file = "apps/overseerr/job.nomad.hcl";
        assert_eq!(
            summary(&app_secret_requirements(app)),
            [
                owned(
                    "nomad/default/overseerr",
                    &["MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "REGION"],
                    &[
                        "apps/overseerr/app.yaml:4",
                        &format!("{file}:87"),
                        &format!("{file}:129")
                    ]
                ),
                owned(
                    "nomad/default/other",
                    &["X"],
                    &["apps/overseerr/app.yaml:5"]
                ),
                owned("nomad/data/default/extra", &["E"], &[&format!("{file}:87")]),
            ]
        );
    }
}
