//! [`Revision`] → [`App`]s: raw manifests (with spans), then typed apps.
//! Every error of an app is collected; a broken app never hides the others.
//!
//! OWNER: desired helper. `app.rs` and `diagnostic.rs` types are the contract with `plan/`.

mod app;
pub(crate) mod check;
mod deps;
mod diagnostic;
mod jobspec;
mod manifest;
mod native;
mod pack;
mod revision;
mod traefik;
mod vault_requirements;
mod yaml;

pub use app::*;
pub use check::{parse_duration_secs, parse_size};
pub use deps::{JobRefs, job_refs, resource_dependencies, secret_path_matches};
pub use diagnostic::Diagnostic;
pub use jobspec::{check_jobspecs_offline, offline_jobspec_errors, refused_jobspecs};
pub use revision::{DesiredRevision, PinnedRevisions, RevisionReader};
pub use traefik::TraefikDefaults;
pub use vault_requirements::{
    SecretRequirement, app_secret_requirements, secrets_in_template, template_secret_requirements,
};
pub use yaml::{
    MAX_BYTES as YAML_MAX_BYTES, MAX_DEPTH as YAML_MAX_DEPTH, MAX_NODES as YAML_MAX_NODES,
};

use crate::source::Revision;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

/// The outcome of loading one app folder.
#[derive(Debug, Clone)]
pub struct LoadedApp {
    /// The app's name (from `name:`, or the folder name when the manifest is unreadable).
    pub name: String,
    /// The folder, `apps/<name>`.
    pub dir: String,
    /// The typed app, or every error found in it (the app is then `InvalidSpec`).
    pub result: Result<App, Vec<Diagnostic>>,
    /// What was accepted but deserves attention (a field not supported yet), valid app or not.
    pub warnings: Vec<Diagnostic>,
    /// The app's Vault requirements, computed on first use and shared by every clone: finding
    /// the implicit ones parses each jobspec, which cost more CPU than the rest of a cycle when
    /// it ran on every reconcile.
    secret_requirements: Arc<OnceLock<Vec<SecretRequirement>>>,
}

impl LoadedApp {
    /// The Vault secrets this app needs (listed `vault_secret`s and those its job templates
    /// read), once per loaded revision; none when the app does not load.
    pub fn secret_requirements(&self) -> &[SecretRequirement] {
        match &self.result {
            Ok(app) => self
                .secret_requirements
                .get_or_init(|| app_secret_requirements(app)),
            Err(_) => &[],
        }
    }
}

/// Everything loaded from one revision.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// One entry per `apps/*/app.yaml`, sorted by name.
    pub apps: Vec<LoadedApp>,
    /// Errors not tied to one app (a bad root `drover.yaml`, duplicate app names).
    pub repo_errors: Vec<Diagnostic>,
    /// The root `drover.yaml` `traefik:` defaults, for the Traefik tags lint.
    pub traefik: TraefikDefaults,
}

impl Loaded {
    /// The app called `name`, if any (the first of that name, as `apps` is sorted by name).
    /// Every app task looks itself up on each wake: a binary search keeps that O(log N) at
    /// 1,000 apps, where a scan made each wake of all apps O(N²).
    pub fn app(&self, name: &str) -> Option<&LoadedApp> {
        let first = self.apps.partition_point(|a| a.name.as_str() < name);
        match self.apps.get(first) {
            Some(found) if found.name == name => Some(found),
            // Not there, or `apps` was built unsorted: the scan is the answer.
            _ => self.apps.iter().find(|a| a.name == name),
        }
    }
}

/// Load every app of a revision.
pub fn load(revision: &Revision) -> Loaded {
    load_with_owners(revision, &BTreeMap::new())
}

/// Load every app of a revision, knowing which app drover created each resource for: when two
/// apps declare the same resource, that app keeps it and only the other is invalid.
pub fn load_with_owners(
    revision: &Revision,
    recorded_owners: &BTreeMap<ResourceId, String>,
) -> Loaded {
    let mut repo_errors = Vec::new();
    let defaults = manifest::repo_defaults(revision, &mut repo_errors);
    let mut folders = BTreeSet::new();
    for path in revision.paths_under("apps") {
        if let Some(folder) = path
            .strip_prefix("apps/")
            .and_then(|r| r.strip_suffix("/app.yaml"))
            .filter(|f| !f.contains('/'))
        {
            folders.insert(folder.to_string());
        }
    }
    for path in revision.paths_under("apps") {
        if let Some(d) = manifest::misnamed_manifest_hint(path) {
            let folder = path
                .trim_start_matches("apps/")
                .split('/')
                .next()
                .unwrap_or("");
            if !folders.contains(folder) {
                repo_errors.push(d);
            }
        }
    }
    let folders: Vec<String> = folders.into_iter().collect();
    let mut drafts: Vec<manifest::Draft> =
        on_all_cores(&folders, |f| manifest::load_app(revision, f, &defaults));
    repo_checks(&mut drafts, recorded_owners);
    let mut apps: Vec<LoadedApp> = drafts
        .into_iter()
        .map(|d| LoadedApp {
            name: d.name,
            dir: d.dir,
            result: match (d.app, d.diags.is_empty()) {
                (Some(app), true) => Ok(app),
                (_, _) => Err(d.diags),
            },
            warnings: d.warnings,
            secret_requirements: Arc::default(),
        })
        .collect();
    apps.sort_by(|a, b| a.name.cmp(&b.name).then(a.dir.cmp(&b.dir)));
    jobspec::with_lint_warnings(Loaded {
        apps,
        repo_errors,
        traefik: defaults.traefik,
    })
}

/// `f` of each item, in order, the items split over the machine's cores: parsing a thousand
/// apps' files takes a third of a second of one core, and every commit waits for it.
pub(crate) fn on_all_cores<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    const SMALL: usize = 32;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let threads = cores.min(8).min(items.len().div_ceil(SMALL));
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| {
                part.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

fn at(file: &str, (line, column): (usize, usize), field: &str, message: String) -> Diagnostic {
    Diagnostic {
        file: file.to_string(),
        line,
        column,
        field: Some(field.to_string()),
        message,
        hint: None,
    }
}

/// Which of the apps declaring `id` owns it, and why; `None` when it cannot be told (each then
/// gets an error). In order: the app drover created it for (`recorded_owners`), else the only
/// app declaring it from a file inside its own folder (`file: ../web/job.nomad.hcl` does not make
/// the `web` job another app's).
fn owner_among(
    drafts: &[manifest::Draft],
    id: &ResourceId,
    claimants: &[(usize, Origin)],
    recorded_owners: &BTreeMap<ResourceId, String>,
) -> Option<(usize, &'static str)> {
    let only = |matches: Vec<usize>| match matches.as_slice() {
        [one] => Some(*one),
        _ => None,
    };
    if let Some(recorded) = recorded_owners.get(id) {
        let by_record = claimants
            .iter()
            .map(|(i, _)| *i)
            .filter(|i| drafts[*i].name == *recorded)
            .collect();
        if let Some(i) = only(by_record) {
            return Some((i, "which drover created it for"));
        }
    }
    let in_own_folder = claimants
        .iter()
        .filter(|(i, origin)| origin.file.starts_with(&format!("{}/", drafts[*i].dir)))
        .map(|(i, _)| *i)
        .collect();
    only(in_own_folder).map(|i| (i, "whose folder holds its file"))
}

/// Checks across apps: unique names, `depends_on` targets and cycles, resources claimed twice.
fn repo_checks(drafts: &mut [manifest::Draft], recorded_owners: &BTreeMap<ResourceId, String>) {
    let names: Vec<String> = drafts.iter().map(|d| d.name.clone()).collect();
    let mut extra: Vec<Vec<Diagnostic>> = vec![Vec::new(); drafts.len()];
    for (i, d) in drafts.iter().enumerate() {
        for (j, other) in drafts.iter().enumerate() {
            if i != j && d.name == other.name {
                extra[i].push(at(
                    &d.file,
                    d.name_pos,
                    "name",
                    format!("app name \"{}\" is also used by {}", d.name, other.dir),
                ));
            }
        }
        for (dep, line, col) in &d.depends_on {
            if !names.contains(dep) {
                let valid: Vec<&str> = names.iter().map(String::as_str).collect();
                extra[i].push(Diagnostic {
                    hint: check::suggest(dep, &valid).map(|s| format!("did you mean \"{s}\"?")),
                    ..at(
                        &d.file,
                        (*line, *col),
                        "depends_on",
                        format!(
                            "depends_on names \"{dep}\", which is not an app in this repository"
                        ),
                    )
                });
            }
        }
    }
    // Cycles: an app is in a cycle when it can reach itself through depends_on.
    let graph: BTreeMap<&str, Vec<&str>> = drafts
        .iter()
        .map(|d| {
            (
                d.name.as_str(),
                d.depends_on.iter().map(|(n, _, _)| n.as_str()).collect(),
            )
        })
        .collect();
    for (i, d) in drafts.iter().enumerate() {
        if let Some(path) = cycle_from(&graph, &d.name) {
            let pos = d
                .depends_on
                .iter()
                .find(|(n, _, _)| Some(n.as_str()) == path.get(1).copied())
                .map_or((0, 0), |(_, l, c)| (*l, *c));
            extra[i].push(at(
                &d.file,
                pos,
                "depends_on",
                format!("depends_on forms a cycle: {}", path.join(" → ")),
            ));
        }
    }
    // The same resource claimed by two apps: the owner keeps it and only the others are
    // refused, so a new folder cannot break an app that already works. See `owner_among`.
    let mut owners: BTreeMap<ResourceId, Vec<(usize, Origin)>> = BTreeMap::new();
    for (i, d) in drafts.iter().enumerate() {
        for (id, origin) in &d.claims {
            let list = owners.entry(id.clone()).or_default();
            if !list.iter().any(|(j, _)| *j == i) {
                list.push((i, origin.clone()));
            }
        }
    }
    for (id, list) in owners.iter().filter(|(_, l)| l.len() > 1) {
        let owner = owner_among(drafts, id, list, recorded_owners);
        for (i, origin) in list {
            let (message, hint) = match owner {
                Some((o, _)) if o == *i => continue,
                Some((o, why)) => {
                    let place = list
                        .iter()
                        .find(|(j, _)| *j == o)
                        .map(|(_, at)| format!(" ({}:{})", at.file, at.line))
                        .unwrap_or_default();
                    (
                        format!("{id} belongs to app {}{place}, {why}", drafts[o].name),
                        "a resource belongs to exactly one app: give this one another ID, or \
                         move it into that app"
                            .to_string(),
                    )
                }
                None => {
                    let others: Vec<String> = list
                        .iter()
                        .filter(|(j, _)| j != i)
                        .map(|(j, o)| format!("{} ({}:{})", drafts[*j].name, o.file, o.line))
                        .collect();
                    (
                        format!("{id} is also declared by app {}", others.join(", ")),
                        "a resource belongs to exactly one app".to_string(),
                    )
                }
            };
            extra[*i].push(Diagnostic {
                file: origin.file.clone(),
                line: origin.line,
                column: 0,
                field: None,
                message,
                hint: Some(hint),
            });
        }
    }
    for (d, more) in drafts.iter_mut().zip(extra) {
        d.diags.extend(more);
        // Shown in reading order: the app.yaml first, then each native file top to bottom.
        let manifest = d.file.clone();
        d.diags.sort_by(|a, b| {
            (a.file != manifest, &a.file, a.line, a.column).cmp(&(
                b.file != manifest,
                &b.file,
                b.line,
                b.column,
            ))
        });
    }
}

fn cycle_from<'a>(graph: &BTreeMap<&'a str, Vec<&'a str>>, start: &'a str) -> Option<Vec<&'a str>> {
    // Depth-first search for a path back to `start`.
    let mut stack: Vec<(&'a str, Vec<&'a str>)> = vec![(start, vec![start])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(node).into_iter().flatten() {
            if *next == start {
                let mut p = path.clone();
                p.push(start);
                return Some(p);
            }
            if seen.insert(*next) {
                let mut p = path.clone();
                p.push(next);
                stack.push((next, p));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_split_over_the_cores_comes_back_in_order() {
        let items: Vec<usize> = (0..1000).collect();
        let doubled = on_all_cores(&items, |i| i * 2);
        assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(on_all_cores(&[1, 2, 3], |i| i + 1), vec![2, 3, 4]);
        assert!(on_all_cores(&Vec::<u8>::new(), |i| *i).is_empty());
    }

    #[test]
    fn secret_requirements_are_found_once_and_shared_by_every_clone() {
        let files = BTreeMap::from([
            (
                "apps/a/app.yaml".to_string(),
                b"name: a\nresources:\n  - nomad_job: { file: a.nomad.hcl }\n".to_vec(),
            ),
            (
                "apps/a/a.nomad.hcl".to_string(),
                b"job \"a\" {\n  group \"g\" {\n    task \"t\" {\n      driver = \"docker\"\n      config {\n        image = \"busybox:1\"\n      }\n      template {\n        data = \"{{ with secret \\\"nomad/data/default/a\\\" }}{{ .Data.data.PASSWORD }}{{ end }}\"\n        destination = \"secrets/env\"\n      }\n    }\n  }\n}\n"
                    .to_vec(),
            ),
        ]);
        let loaded = load(&Revision::from_files("r", files));
        let app = &loaded.apps[0];
        // A reconcile works on a clone of the loaded app each cycle: the clone must reuse what
        // the first cycle found instead of parsing the jobspec again.
        let copy = app.clone();
        let first = copy.secret_requirements();
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(first[0].path, "nomad/data/default/a");
        assert!(first[0].keys.contains("PASSWORD"), "{first:?}");
        let again = app.clone();
        assert!(std::ptr::eq(first, again.secret_requirements()));
    }

    fn named(name: &str, dir: &str) -> LoadedApp {
        LoadedApp {
            name: name.to_string(),
            dir: dir.to_string(),
            result: Err(Vec::new()),
            warnings: Vec::new(),
            secret_requirements: Arc::default(),
        }
    }

    #[test]
    fn an_app_is_found_by_name_first_of_its_name_sorted_or_not() {
        let mut apps: Vec<LoadedApp> = (0..1000)
            .map(|i| named(&format!("app-{i:02}"), &format!("apps/app-{i:02}")))
            .collect();
        apps.push(named("app-500", "apps/z-copy"));
        apps.sort_by(|a, b| a.name.cmp(&b.name).then(a.dir.cmp(&b.dir)));
        let sorted = Loaded {
            apps: apps.clone(),
            ..Loaded::default()
        };
        for i in [0, 1, 99, 100, 500, 999] {
            let name = format!("app-{i:02}");
            assert_eq!(
                sorted.app(&name).map(|a| a.name.as_str()),
                Some(name.as_str())
            );
        }
        assert_eq!(
            sorted.app("app-500").map(|a| a.dir.as_str()),
            Some("apps/app-500")
        );
        assert!(sorted.app("app-1000").is_none());
        assert!(sorted.app("").is_none());
        apps.reverse();
        let unsorted = Loaded {
            apps,
            ..Loaded::default()
        };
        for i in [0, 7, 500, 999] {
            let name = format!("app-{i:02}");
            assert_eq!(
                unsorted.app(&name).map(|a| a.name.as_str()),
                Some(name.as_str())
            );
        }
    }
}
