//! Traefik tags on Nomad services, linted at validate time.
//!
//! Traefik's Consul catalog provider builds routers from a service's `traefik.*` tags. Mistakes
//! there only show when the route fails in production, so `drover validate` checks them from the
//! job as Nomad's parser reads it (the `drover-jobspec` value), pointing at the tags in the file:
//! - errors: a `traefik.enable=true` service whose router has no rule or no entrypoint (unless
//!   `drover.yaml` declares `traefik: { default_rule, default_entrypoints }`), and a router name
//!   declared by two apps (Traefik router names are global to the provider);
//! - warnings: a Connect service without `traefik.consulcatalog.connect=true` (Traefik would
//!   dial the service's own port, past the sidecar), and a service with Traefik tags and no check
//!   (Consul reports it passing, so Traefik routes to it before it serves).

use std::collections::BTreeMap;

use hcl::edit::Span;
use hcl::edit::expr::Expression;
use hcl::edit::structure::{Block, Body};
use serde::Serialize;
use serde_json::Value;

use super::Diagnostic;

/// `traefik:` in the root drover.yaml: what the cluster's Traefik gives a router that names none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TraefikDefaults {
    /// `default_entrypoints`: entrypoints declared `asDefault` in Traefik's static config.
    pub entrypoints: Vec<String>,
    /// `default_rule`: the Consul catalog provider's `defaultRule`.
    pub rule: Option<String>,
}

/// A router one app declares, for the check across apps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouterDeclaration {
    /// `http`, `tcp` or `udp`.
    pub protocol: String,
    /// The router name.
    pub name: String,
    /// Where: the first tag naming it.
    pub file: String,
    /// 1-based line and column (0 when unknown).
    pub at: (usize, usize),
}

/// What the lint found in one job.
#[derive(Debug, Default)]
pub(crate) struct JobLint {
    /// Problems that make the app invalid.
    pub errors: Vec<Diagnostic>,
    /// Problems worth a look; the app stays valid.
    pub warnings: Vec<Diagnostic>,
    /// Routers the job's Traefik-enabled services declare.
    pub routers: Vec<RouterDeclaration>,
}

/// One service of the parsed job, with where it is written.
struct Service<'a> {
    value: &'a Value,
    /// `group "g"` or `task "t"`, to name a service that has no name of its own.
    parent: String,
    at: (usize, usize),
    /// Position of each tag, in the order of the parsed `Tags`.
    tag_at: Vec<(usize, usize)>,
}

/// Lint the Traefik tags of one job: `job` is the parsed job (`drover_jobspec::parse`),
/// `source` the HCL2 text of `file` (for positions; `None` for JSON jobspecs).
pub(crate) fn lint_job(
    file: &str,
    source: Option<&str>,
    job: &Value,
    defaults: &TraefikDefaults,
) -> JobLint {
    let positions = source.map(service_positions).unwrap_or_default();
    let mut lint = JobLint::default();
    for service in services(job, &positions) {
        lint_service(file, &service, defaults, &mut lint);
    }
    lint
}

/// Routers declared by more than one app: for each app index, the errors it gets (each names
/// the other apps declaring the router). Names still holding a runtime `${…}` are skipped: two
/// jobs interpolating `${NOMAD_JOB_NAME}` do not collide.
pub(crate) fn duplicate_routers(
    apps: &[(&str, Vec<RouterDeclaration>)],
) -> BTreeMap<usize, Vec<Diagnostic>> {
    let mut by_name: BTreeMap<(&str, &str), Vec<(usize, &RouterDeclaration)>> = BTreeMap::new();
    for (i, (_, routers)) in apps.iter().enumerate() {
        for router in routers.iter().filter(|r| !r.name.contains("${")) {
            let claims = by_name
                .entry((router.protocol.as_str(), router.name.as_str()))
                .or_default();
            if !claims.iter().any(|(j, _)| *j == i) {
                claims.push((i, router));
            }
        }
    }
    let mut out: BTreeMap<usize, Vec<Diagnostic>> = BTreeMap::new();
    for ((protocol, name), claims) in by_name.iter().filter(|(_, c)| c.len() > 1) {
        for (i, router) in claims {
            let others: Vec<String> = claims
                .iter()
                .filter(|(j, _)| j != i)
                .map(|(j, other)| format!("{} ({})", apps[*j].0, place(&other.file, other.at)))
                .collect();
            out.entry(*i).or_default().push(Diagnostic {
                file: router.file.clone(),
                line: router.at.0,
                column: router.at.1,
                field: Some(format!("traefik.{protocol}.routers.{name}")),
                message: format!(
                    "Traefik router \"{name}\" is also declared by app {}",
                    others.join(", ")
                ),
                hint: Some(
                    "router names are global in Traefik's Consul catalog: give one of them \
                     another name"
                        .to_string(),
                ),
            });
        }
    }
    out
}

fn place(file: &str, (line, column): (usize, usize)) -> String {
    match (line, column) {
        (0, _) => file.to_string(),
        (l, 0) => format!("{file}:{l}"),
        (l, c) => format!("{file}:{l}:{c}"),
    }
}

/// One router as its tags describe it.
#[derive(Default)]
struct Router {
    at: Option<(usize, usize)>,
    rule: bool,
    entrypoints: bool,
}

fn lint_service(file: &str, service: &Service<'_>, defaults: &TraefikDefaults, lint: &mut JobLint) {
    let name = match service.value.get("Name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => format!("service \"{name}\""),
        _ => format!("the service of {}", service.parent),
    };
    let tags: Vec<(&str, (usize, usize))> = service
        .value
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, tag)| {
            let at = service.tag_at.get(i).copied().unwrap_or(service.at);
            tag.as_str().map(|t| (t, at))
        })
        .collect();
    // Traefik reads option names case-insensitively; router names are kept as written.
    let written_keys: Vec<&str> = tags
        .iter()
        .map(|(tag, _)| tag.split_once('=').map_or(*tag, |(key, _)| key).trim())
        .filter(|key| key.to_ascii_lowercase().starts_with("traefik."))
        .collect();
    let traefik_tags: Vec<(String, &str, (usize, usize))> = tags
        .iter()
        .filter_map(|(tag, at)| {
            let (key, value) = tag.split_once('=').unwrap_or((tag, ""));
            let key = key.trim().to_ascii_lowercase();
            key.starts_with("traefik.")
                .then_some((key, value.trim(), *at))
        })
        .collect();
    if traefik_tags.is_empty() {
        return;
    }
    let diagnostic = |at: (usize, usize), field: String, message: String, hint: &str| Diagnostic {
        file: file.to_string(),
        line: at.0,
        column: at.1,
        field: Some(field),
        message,
        hint: Some(hint.to_string()),
    };
    let has_check = service
        .value
        .get("Checks")
        .and_then(Value::as_array)
        .is_some_and(|c| !c.is_empty());
    if !has_check {
        lint.warnings.push(diagnostic(
            service.at,
            "check".to_string(),
            format!("{name} has Traefik tags but no check"),
            "without a check Consul reports it passing, so Traefik routes to it before it serves",
        ));
    }
    let enabled = traefik_tags
        .iter()
        .find(|(key, _, _)| key == "traefik.enable")
        .filter(|(_, value, _)| value.eq_ignore_ascii_case("true"));
    let Some((_, _, enable_at)) = enabled else {
        return;
    };
    let connect = service
        .value
        .get("Connect")
        .and_then(|c| c.get("SidecarService"))
        .is_some_and(|s| !s.is_null());
    let connect_tag = traefik_tags.iter().any(|(key, value, _)| {
        key == "traefik.consulcatalog.connect" && value.eq_ignore_ascii_case("true")
    });
    if connect && !connect_tag {
        lint.warnings.push(diagnostic(
            service.at,
            "traefik.consulcatalog.connect".to_string(),
            format!(
                "{name} is a Consul Connect service without the tag \
                 traefik.consulcatalog.connect=true"
            ),
            "without it Traefik dials the service's port directly, past the sidecar",
        ));
    }
    // traefik.<protocol>.routers.<name>.<option>, in tag order.
    let mut routers: Vec<((String, String), Router)> = Vec::new();
    for ((key, _, at), written) in traefik_tags.iter().zip(&written_keys) {
        let parts: Vec<&str> = key.splitn(5, '.').collect();
        let [_, protocol, "routers", _, option] = parts.as_slice() else {
            continue;
        };
        let Some(router) = written.split('.').nth(3) else {
            continue;
        };
        if !matches!(*protocol, "http" | "tcp" | "udp") {
            continue;
        }
        let id = (protocol.to_string(), router.to_string());
        let index = match routers.iter().position(|(r, _)| *r == id) {
            Some(i) => i,
            None => {
                routers.push((id, Router::default()));
                routers.len() - 1
            }
        };
        let entry = &mut routers[index].1;
        entry.at.get_or_insert(*at);
        match *option {
            "rule" => entry.rule = true,
            "entrypoints" => entry.entrypoints = true,
            _ => {}
        }
    }
    let has_default_rule = defaults.rule.is_some();
    let has_default_entrypoints = !defaults.entrypoints.is_empty();
    if routers.is_empty() {
        // Traefik then makes one http router named after the service, from the defaults.
        let field = "traefik.enable".to_string();
        if !has_default_rule {
            lint.errors.push(diagnostic(
                *enable_at,
                field.clone(),
                format!("{name} enables Traefik but declares no router rule"),
                "add traefik.http.routers.<name>.rule=Host(`…`), or declare traefik.default_rule \
                 in drover.yaml",
            ));
        }
        if !has_default_entrypoints {
            lint.errors.push(diagnostic(
                *enable_at,
                field,
                format!("{name} enables Traefik but declares no router entrypoint"),
                "add traefik.http.routers.<name>.entrypoints=<entrypoint>, or declare \
                 traefik.default_entrypoints in drover.yaml",
            ));
        }
        return;
    }
    for ((protocol, router), facts) in routers {
        let at = facts.at.unwrap_or(service.at);
        let prefix = format!("traefik.{protocol}.routers.{router}");
        // UDP routers have no rule: they take everything on their entrypoint.
        if protocol != "udp" && !facts.rule && !has_default_rule {
            lint.errors.push(diagnostic(
                at,
                format!("{prefix}.rule"),
                format!("Traefik router \"{router}\" of {name} has no rule"),
                &format!(
                    "add the tag {prefix}.rule=…, or declare traefik.default_rule in drover.yaml"
                ),
            ));
        }
        if !facts.entrypoints && !has_default_entrypoints {
            lint.errors.push(diagnostic(
                at,
                format!("{prefix}.entrypoints"),
                format!("Traefik router \"{router}\" of {name} has no entrypoint"),
                &format!(
                    "add the tag {prefix}.entrypoints=<entrypoint>, or declare \
                     traefik.default_entrypoints in drover.yaml"
                ),
            ));
        }
        lint.routers.push(RouterDeclaration {
            protocol,
            name: router,
            file: file.to_string(),
            at,
        });
    }
}

/// Where a service block sits: its group, its task (`None` for a group service), its index
/// among its siblings.
type ServiceKey = (String, Option<String>, usize);

/// A service block's position and its tags' positions.
#[derive(Debug, Default, Clone)]
struct ServicePosition {
    at: (usize, usize),
    tags: Vec<(usize, usize)>,
}

/// Every job's, group's and task's services in the parsed job, with positions when known.
fn services<'a>(
    job: &'a Value,
    positions: &BTreeMap<ServiceKey, ServicePosition>,
) -> Vec<Service<'a>> {
    let job = job.get("Job").unwrap_or(job);
    let mut out = Vec::new();
    let mut push = |list: Option<&'a Value>, key: (String, Option<String>)| {
        let parent = match &key.1 {
            Some(task) => format!("task \"{task}\""),
            None => format!("group \"{}\"", key.0),
        };
        for (i, value) in list
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let position = positions
                .get(&(key.0.clone(), key.1.clone(), i))
                .cloned()
                .unwrap_or_default();
            out.push(Service {
                value,
                parent: parent.clone(),
                at: position.at,
                tag_at: position.tags,
            });
        }
    };
    for group in job
        .get("TaskGroups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let group_name = group
            .get("Name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        push(group.get("Services"), (group_name.clone(), None));
        for task in group
            .get("Tasks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let task_name = task
                .get("Name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            push(task.get("Services"), (group_name.clone(), Some(task_name)));
        }
    }
    out
}

/// The positions of the service blocks written in an HCL2 jobspec (none if it does not parse
/// as plain HCL; the lint then points at the file).
fn service_positions(source: &str) -> BTreeMap<ServiceKey, ServicePosition> {
    let mut out = BTreeMap::new();
    let Ok(body) = hcl::edit::parser::parse_body(source) else {
        return out;
    };
    let position = |offset: usize| line_column(source, offset);
    let service = |block: &Block| ServicePosition {
        at: block.ident.span().map_or((0, 0), |r| position(r.start)),
        tags: match block.body.get_attribute("tags").map(|a| &a.value) {
            Some(Expression::Array(items)) => items
                .iter()
                .map(|item| item.span().map_or((0, 0), |r| position(r.start)))
                .collect(),
            _ => Vec::new(),
        },
    };
    for job in blocks(&body, "job") {
        for group in blocks(&job.body, "group") {
            let group_name = label(group);
            for (i, block) in blocks(&group.body, "service").enumerate() {
                out.insert((group_name.clone(), None, i), service(block));
            }
            for task in blocks(&group.body, "task") {
                for (i, block) in blocks(&task.body, "service").enumerate() {
                    out.insert((group_name.clone(), Some(label(task)), i), service(block));
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

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/brmartin");

    fn lint_text(source: &str, defaults: &TraefikDefaults) -> JobLint {
        let job = drover_jobspec::parse(source, "").unwrap_or_else(|e| panic!("{}", e.message));
        lint_job("web.nomad.hcl", Some(source), &job, defaults)
    }

    fn shown(diagnostics: &[Diagnostic]) -> Vec<String> {
        diagnostics.iter().map(ToString::to_string).collect()
    }

    fn job_with_service(service: &str) -> String {
        format!(
            "job \"web\" {{\n  group \"web\" {{\n    network {{\n      port \"http\" {{ to = 80 }}\n    }}\n{service}\n    task \"web\" {{\n      driver = \"docker\"\n      config {{ image = \"nginx\" }}\n    }}\n  }}\n}}\n"
        )
    }

    const CHECK: &str = "      check {\n        type     = \"http\"\n        path     = \"/\"\n        interval = \"10s\"\n        timeout  = \"2s\"\n      }\n";

    fn service(tags: &[&str], extra: &str) -> String {
        let tags: Vec<String> = tags.iter().map(|t| format!("        \"{t}\",\n")).collect();
        format!(
            "    service {{\n      name = \"web\"\n      port = \"http\"\n{extra}      tags = [\n{}      ]\n    }}",
            tags.concat()
        )
    }

    #[test]
    fn a_complete_router_passes() {
        let job = job_with_service(&service(
            &[
                "traefik.enable=true",
                "traefik.http.routers.web.rule=Host(`web.example.com`)",
                "traefik.http.routers.web.entrypoints=websecure",
            ],
            CHECK,
        ));
        let lint = lint_text(&job, &TraefikDefaults::default());
        assert!(lint.errors.is_empty(), "{:?}", shown(&lint.errors));
        assert!(lint.warnings.is_empty(), "{:?}", shown(&lint.warnings));
        assert_eq!(
            lint.routers,
            [RouterDeclaration {
                protocol: "http".to_string(),
                name: "web".to_string(),
                file: "web.nomad.hcl".to_string(),
                at: (17, 9),
            }]
        );
    }

    #[test]
    fn a_router_without_rule_or_entrypoint_is_an_error_at_its_tag() {
        let job = job_with_service(&service(
            &[
                "traefik.enable=true",
                "traefik.http.routers.web.middlewares=auth",
            ],
            CHECK,
        ));
        let lint = lint_text(&job, &TraefikDefaults::default());
        assert_eq!(
            shown(&lint.errors),
            [
                "web.nomad.hcl:17:9: traefik.http.routers.web.rule: Traefik router \"web\" of service \"web\" has no rule (add the tag traefik.http.routers.web.rule=…, or declare traefik.default_rule in drover.yaml)",
                "web.nomad.hcl:17:9: traefik.http.routers.web.entrypoints: Traefik router \"web\" of service \"web\" has no entrypoint (add the tag traefik.http.routers.web.entrypoints=<entrypoint>, or declare traefik.default_entrypoints in drover.yaml)",
            ]
        );
    }

    #[test]
    fn drover_yaml_defaults_stand_in_for_missing_rule_and_entrypoint() {
        let job = job_with_service(&service(&["traefik.enable=true"], CHECK));
        let none = lint_text(&job, &TraefikDefaults::default());
        assert_eq!(
            shown(&none.errors),
            [
                "web.nomad.hcl:16:9: traefik.enable: service \"web\" enables Traefik but declares no router rule (add traefik.http.routers.<name>.rule=Host(`…`), or declare traefik.default_rule in drover.yaml)",
                "web.nomad.hcl:16:9: traefik.enable: service \"web\" enables Traefik but declares no router entrypoint (add traefik.http.routers.<name>.entrypoints=<entrypoint>, or declare traefik.default_entrypoints in drover.yaml)",
            ]
        );
        let entrypoints_only = TraefikDefaults {
            entrypoints: vec!["websecure".to_string()],
            rule: None,
        };
        assert_eq!(lint_text(&job, &entrypoints_only).errors.len(), 1);
        let both = TraefikDefaults {
            entrypoints: vec!["websecure".to_string()],
            rule: Some("Host(`{{ .Name }}.example.com`)".to_string()),
        };
        assert!(lint_text(&job, &both).errors.is_empty());
        // A router that names its rule but not its entrypoint takes the default entrypoint.
        let job = job_with_service(&service(
            &[
                "traefik.enable=true",
                "traefik.tcp.routers.db.rule=HostSNI(`*`)",
            ],
            CHECK,
        ));
        assert!(lint_text(&job, &entrypoints_only).errors.is_empty());
    }

    #[test]
    fn option_names_are_case_insensitive_and_router_names_kept_as_written() {
        let job = job_with_service(&service(
            &[
                "traefik.enable=true",
                "traefik.http.routers.MyApp.Rule=Host(`web.example.com`)",
                "traefik.http.routers.MyApp.EntryPoints=websecure",
            ],
            CHECK,
        ));
        let lint = lint_text(&job, &TraefikDefaults::default());
        assert!(lint.errors.is_empty(), "{:?}", shown(&lint.errors));
        let names: Vec<&str> = lint.routers.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["MyApp"]);
    }

    #[test]
    fn tags_without_traefik_enable_are_not_routers() {
        let job = job_with_service(&service(
            &["traefik.http.routers.web.rule=Host(`x`)"],
            CHECK,
        ));
        let lint = lint_text(&job, &TraefikDefaults::default());
        assert!(lint.errors.is_empty(), "{:?}", shown(&lint.errors));
        assert!(lint.routers.is_empty());
    }

    #[test]
    fn connect_without_the_consulcatalog_tag_and_no_check_are_warnings_at_the_service() {
        let connect = "      connect {\n        sidecar_service {}\n      }\n";
        let tags = [
            "traefik.enable=true",
            "traefik.http.routers.web.rule=Host(`web.example.com`)",
            "traefik.http.routers.web.entrypoints=websecure",
        ];
        let lint = lint_text(
            &job_with_service(&service(&tags, connect)),
            &TraefikDefaults::default(),
        );
        assert!(lint.errors.is_empty(), "{:?}", shown(&lint.errors));
        assert_eq!(
            shown(&lint.warnings),
            [
                "web.nomad.hcl:6:5: check: service \"web\" has Traefik tags but no check (without a check Consul reports it passing, so Traefik routes to it before it serves)",
                "web.nomad.hcl:6:5: traefik.consulcatalog.connect: service \"web\" is a Consul Connect service without the tag traefik.consulcatalog.connect=true (without it Traefik dials the service's port directly, past the sidecar)",
            ]
        );
        let mut with_tag = tags.to_vec();
        with_tag.push("traefik.consulcatalog.connect=true");
        let lint = lint_text(
            &job_with_service(&service(&with_tag, &format!("{connect}{CHECK}"))),
            &TraefikDefaults::default(),
        );
        assert!(lint.warnings.is_empty(), "{:?}", shown(&lint.warnings));
        // A Connect service Traefik does not route to needs no tag.
        let lint = lint_text(
            &job_with_service(&service(&[], connect)),
            &TraefikDefaults::default(),
        );
        assert!(lint.warnings.is_empty(), "{:?}", shown(&lint.warnings));
    }

    #[test]
    fn a_router_name_in_two_apps_is_an_error_in_each() {
        let router = |file: &str, line: usize, name: &str| RouterDeclaration {
            protocol: "http".to_string(),
            name: name.to_string(),
            file: file.to_string(),
            at: (line, 9),
        };
        let apps = [
            (
                "blog",
                vec![
                    router("apps/blog/job.hcl", 20, "web"),
                    router("apps/blog/job.hcl", 30, "blog"),
                ],
            ),
            ("shop", vec![router("apps/shop/job.hcl", 12, "web")]),
            (
                "wiki",
                vec![
                    router("apps/wiki/job.hcl", 5, "wiki"),
                    router("apps/wiki/job.hcl", 9, "${NOMAD_JOB_NAME}"),
                ],
            ),
            (
                "docs",
                vec![router("apps/docs/job.hcl", 5, "${NOMAD_JOB_NAME}")],
            ),
        ];
        let found: Vec<(usize, Vec<String>)> = duplicate_routers(&apps)
            .into_iter()
            .map(|(i, d)| (i, shown(&d)))
            .collect();
        assert_eq!(
            found,
            [
                (0, vec!["apps/blog/job.hcl:20:9: traefik.http.routers.web: Traefik router \"web\" is also declared by app shop (apps/shop/job.hcl:12:9) (router names are global in Traefik's Consul catalog: give one of them another name)".to_string()]),
                (1, vec!["apps/shop/job.hcl:12:9: traefik.http.routers.web: Traefik router \"web\" is also declared by app blog (apps/blog/job.hcl:20:9) (router names are global in Traefik's Consul catalog: give one of them another name)".to_string()]),
            ]
        );
    }

    /// The user's real jobspecs: no error once drover.yaml declares the `websecure` entrypoint
    /// their routers use (the dummy's router names none), and a warning for each service with
    /// Traefik tags and no check: the dummy's, and Elasticsearch's, whose check is commented out.
    #[test]
    fn the_fixture_jobspecs_lint_as_expected() {
        let defaults = TraefikDefaults {
            entrypoints: vec!["websecure".to_string()],
            rule: None,
        };
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut routers = Vec::new();
        let mut no_defaults_errors = Vec::new();
        for module in ["dummy", "elk", "gitlab-runner", "nextcloud", "overseerr"] {
            let file = format!("modules/{module}/jobspec.nomad.hcl");
            let source = std::fs::read_to_string(format!("{FIXTURES}/{file}"))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            let variables = if module == "elk" {
                "elastic_version = \"8.15.0\""
            } else {
                ""
            };
            let job = drover_jobspec::parse(&source, variables)
                .unwrap_or_else(|e| panic!("{file}: {}", e.message));
            let lint = lint_job(&file, Some(&source), &job, &defaults);
            errors.extend(shown(&lint.errors));
            warnings.extend(shown(&lint.warnings));
            routers.extend(lint.routers.into_iter().map(|r| r.name));
            no_defaults_errors.extend(shown(
                &lint_job(&file, Some(&source), &job, &TraefikDefaults::default()).errors,
            ));
        }
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(
            warnings,
            [
                "modules/dummy/jobspec.nomad.hcl:35:5: check: the service of group \"servers\" has Traefik tags but no check (without a check Consul reports it passing, so Traefik routes to it before it serves)",
                "modules/elk/jobspec.nomad.hcl:105:7: check: service \"elk-node-http\" has Traefik tags but no check (without a check Consul reports it passing, so Traefik routes to it before it serves)",
            ]
        );
        assert_eq!(
            routers,
            ["web", "es", "kibana", "nextcloud", "collabora", "overseerr"]
        );
        assert_eq!(
            no_defaults_errors,
            [
                "modules/dummy/jobspec.nomad.hcl:57:9: traefik.http.routers.web.entrypoints: Traefik router \"web\" of the service of group \"servers\" has no entrypoint (add the tag traefik.http.routers.web.entrypoints=<entrypoint>, or declare traefik.default_entrypoints in drover.yaml)"
            ]
        );
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("ab\ncé d", 7), (2, 4));
        assert_eq!(line_column("x", 0), (1, 1));
    }
}
