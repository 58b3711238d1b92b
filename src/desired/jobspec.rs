//! HCL2 jobspecs checked offline with Nomad's parser rules (the `drover-jobspec` crate), so that
//! `drover validate`, and `drover plan` without a cluster, report what `nomad job validate` would.
//!
//! Only where no cluster decides: with a cluster, its own `/v1/jobs/parse` is the judge (DESIGN
//! rule 1), so loading apps for the controller does not run this check.

use drover_jobspec::Input;

use super::traefik::{self, RouterDeclaration};
use super::{App, Diagnostic, JobFormat, Loaded, NomadJobSpec, ResourceSpec, TraefikDefaults};

/// What Nomad's parser would refuse in the app's HCL2 jobspecs, each pointing at the user's
/// file, with the variables the app gives them (app.yaml `variables:` and var files). JSON
/// jobspecs are not checked here.
pub fn offline_jobspec_errors(app: &App) -> Vec<Diagnostic> {
    app.resources
        .iter()
        .filter_map(|resource| match &resource.spec {
            ResourceSpec::NomadJob(job) if job.format == JobFormat::Hcl2 => {
                drover_jobspec::parse(&job.source, &job.variables)
                    .err()
                    .map(|e| located(&job.file, &job.variables, &app.dir, e))
            }
            _ => None,
        })
        .collect()
}

/// The apps (among those `selected`) whose HCL2 jobspecs Nomad would refuse, with the errors.
pub fn refused_jobspecs(
    loaded: &Loaded,
    selected: impl Fn(&str) -> bool,
) -> Vec<(&str, Vec<Diagnostic>)> {
    loaded
        .apps
        .iter()
        .filter(|app| selected(&app.name))
        .filter_map(|app| {
            let errors = offline_jobspec_errors(app.result.as_ref().ok()?);
            (!errors.is_empty()).then_some((app.name.as_str(), errors))
        })
        .collect()
}

/// `loaded` with every valid app's jobspecs checked offline, each HCL2 jobspec parsed once: an
/// app whose jobspec Nomad would refuse becomes invalid, with those errors; the jobs that parse
/// get the Traefik tags lint (`traefik.rs`), whose errors make the app invalid too (its warnings
/// joined the app's at load: [`super::load_after`]).
pub fn check_jobspecs_offline(mut loaded: Loaded) -> Loaded {
    let mut errors: Vec<Vec<Diagnostic>> = vec![Vec::new(); loaded.apps.len()];
    let mut routers: Vec<(&str, Vec<RouterDeclaration>)> = Vec::new();
    for (i, app) in loaded.apps.iter().enumerate() {
        let mut declared = Vec::new();
        if let Ok(valid) = &app.result {
            for job in jobs(valid) {
                let lint = match lint_job(job, &valid.dir, &loaded.traefik) {
                    Ok(lint) => lint,
                    Err(e) => {
                        errors[i].extend(e);
                        continue;
                    }
                };
                errors[i].extend(lint.errors);
                declared.extend(lint.routers);
            }
        }
        routers.push((app.name.as_str(), declared));
    }
    for (i, duplicates) in traefik::duplicate_routers(&routers) {
        errors[i].extend(duplicates);
    }
    for (app, errors) in loaded.apps.iter_mut().zip(errors) {
        if !errors.is_empty() && app.result.is_ok() {
            app.result = Err(errors);
        }
    }
    loaded
}

/// The app's Nomad jobs.
fn jobs(app: &App) -> impl Iterator<Item = &NomadJobSpec> {
    app.resources.iter().filter_map(|r| match &r.spec {
        ResourceSpec::NomadJob(job) => Some(job),
        _ => None,
    })
}

/// The Traefik tags lint of one job, parsed offline; a jobspec that does not parse is the
/// parser's error (`None` for JSON, which Nomad itself checks).
fn lint_job(
    job: &NomadJobSpec,
    app_dir: &str,
    defaults: &TraefikDefaults,
) -> Result<traefik::JobLint, Option<Diagnostic>> {
    let parsed: serde_json::Value = match job.format {
        JobFormat::Hcl2 => drover_jobspec::parse(&job.source, &job.variables)
            .map_err(|e| Some(located(&job.file, &job.variables, app_dir, e)))?,
        // JSON is checked by Nomad itself; here it is only read for the lint.
        JobFormat::Json => serde_json::from_str(&job.source).map_err(|_| None)?,
    };
    let source = (job.format == JobFormat::Hcl2).then_some(job.source.as_str());
    Ok(traefik::lint_job(&job.file, source, &parsed, defaults))
}

/// The Traefik tags lint's warnings for one valid app's jobs, joined to the app's warnings at
/// every load (the controller's too): the status, the API and `validate` show them. A jobspec
/// that does not parse is left to Nomad (DESIGN rule 1) and lint errors to `validate`: nothing
/// here makes an app invalid.
pub(crate) fn lint_warnings(app: &App, traefik: &TraefikDefaults) -> Vec<Diagnostic> {
    jobs(app)
        .filter_map(|job| lint_job(job, &app.dir, traefik).ok())
        .flat_map(|lint| lint.warnings)
        .collect()
}

/// A parser error as a diagnostic of the user's file: the jobspec, or for the variables drover
/// assembled (one `name = value` line each, from app.yaml and var files) the app.yaml, naming
/// the variable.
fn located(
    jobspec: &str,
    variables: &str,
    app_dir: &str,
    error: drover_jobspec::ParseError,
) -> Diagnostic {
    let (file, line, column, field) = match error.location {
        Some(at) if at.input == Input::Jobspec => (jobspec.to_string(), at.line, at.column, None),
        Some(at) => {
            let name = variables
                .lines()
                .nth(at.line.saturating_sub(1))
                .and_then(|l| l.split_once(" = "))
                .map(|(name, _)| format!("nomad_job.variables.{name}"));
            (format!("{app_dir}/app.yaml"), 0, 0, name)
        }
        None => (jobspec.to_string(), 0, 0, None),
    };
    Diagnostic {
        file,
        line,
        column,
        field,
        message: error.description,
        hint: Some("Nomad's jobspec parser, checked offline".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::source::Revision;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/brmartin");

    fn load_checked(files: &[(&str, &str)]) -> Loaded {
        let files: BTreeMap<String, Vec<u8>> = files
            .iter()
            .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
            .collect();
        check_jobspecs_offline(super::super::load(&Revision::from_files("test", files)))
    }

    fn errors(loaded: &Loaded) -> Vec<String> {
        let app_errors = loaded.apps.iter().filter_map(|a| a.result.as_ref().err());
        loaded
            .repo_errors
            .iter()
            .chain(app_errors.flatten())
            .map(|d| d.to_string())
            .collect()
    }

    fn is_clean(loaded: &Loaded) -> bool {
        errors(loaded).is_empty()
    }

    const APP: &str = "name: web\nresources:\n  - nomad_job: { file: web.nomad.hcl, variables: { tag: \"1.27\" } }\n";
    const JOB: &str = "variable \"tag\" {\n  type = string\n}\n\njob \"web\" {\n  group \"web\" {\n    task \"web\" {\n      driver = \"docker\"\n      config { image = \"nginx:${var.tag}\" }\n      resources {\n        memory = 128\n      }\n    }\n  }\n}\n";

    #[test]
    fn a_valid_jobspec_with_its_variables_passes() {
        let loaded = load_checked(&[("apps/web/app.yaml", APP), ("apps/web/web.nomad.hcl", JOB)]);
        assert!(is_clean(&loaded), "{:?}", errors(&loaded));
    }

    #[test]
    fn what_nomad_refuses_points_at_the_jobspec() {
        let bad = JOB.replace("memory = 128", "memory = \"lots\"");
        let loaded = load_checked(&[("apps/web/app.yaml", APP), ("apps/web/web.nomad.hcl", &bad)]);
        assert_eq!(
            errors(&loaded),
            [
                "apps/web/web.nomad.hcl:11:19: Unsuitable value type; Unsuitable value: a number is required (Nomad's jobspec parser, checked offline)"
            ]
        );
        let undeclared = JOB.replace("var.tag", "var.version");
        let loaded = load_checked(&[
            ("apps/web/app.yaml", APP),
            ("apps/web/web.nomad.hcl", &undeclared),
        ]);
        let found = errors(&loaded);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(
                "apps/web/web.nomad.hcl:9:36: Unsupported attribute; This object does not have an attribute named \"version\"."
            ),
            "{found:?}"
        );
    }

    #[test]
    fn a_variable_value_nomad_refuses_names_the_app_yaml_variable() {
        let app = APP.replace("tag: \"1.27\"", "tag: [1, 2]");
        let loaded = load_checked(&[("apps/web/app.yaml", &app), ("apps/web/web.nomad.hcl", JOB)]);
        assert_eq!(
            errors(&loaded),
            [
                "apps/web/app.yaml: nomad_job.variables.tag: Invalid value for variable; The value for tag is not compatible with the variable's type constraint: string required. (Nomad's jobspec parser, checked offline)"
            ]
        );
    }

    /// Every jobspec of the user's repository that the tests carry validates, as an app with
    /// the variables its Terraform module passes, Traefik tags included.
    #[test]
    fn every_fixture_jobspec_validates() {
        let mut checked = 0;
        for entry in walk(std::path::Path::new(FIXTURES)) {
            let name = entry
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&entry).unwrap_or_else(|e| panic!("{e}"));
            // Volume specs and Consul config entries are other kinds.
            if !name.ends_with(".hcl") || !text.contains("job \"") {
                continue;
            }
            let variables = if text.contains("variable \"elastic_version\"") {
                ", variables: { elastic_version: \"8.15.0\" }"
            } else {
                ""
            };
            let app =
                format!("name: app\nresources:\n  - nomad_job: {{ file: {name}{variables} }}\n");
            // The dummy's Traefik router names no entrypoint: the user's Traefik gives it
            // `websecure`, the one their other routers name (the Traefik lint needs it said).
            let loaded = load_checked(&[
                (
                    "drover.yaml",
                    "traefik: { default_entrypoints: [websecure] }\n",
                ),
                ("apps/app/app.yaml", &app),
                (&format!("apps/app/{name}"), &text),
            ]);
            assert!(
                is_clean(&loaded),
                "{}: {:?}",
                entry.display(),
                errors(&loaded)
            );
            checked += 1;
        }
        assert!(checked >= 10, "found only {checked} fixture jobspecs");
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out.sort();
        out
    }
}
