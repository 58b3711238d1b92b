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
use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// What each app folder's load read, for the next revision's load (see [`load_after`]).
    memo: Option<Arc<LoadMemo>>,
}

/// What loading a revision's app folders read and made, so the next revision reloads only the
/// folders whose reads it answers differently.
#[derive(Debug)]
struct LoadMemo {
    defaults: manifest::RepoDefaults,
    folders: HashMap<String, FolderMemo>,
    /// How many folders this load read afresh (the others were reused).
    reloaded: usize,
}

#[derive(Debug)]
struct FolderMemo {
    /// The folder's draft before the repo-wide checks, without its app: the app is taken from
    /// the load's `apps` when reused (one copy of each app, not two).
    draft: manifest::Draft,
    /// The draft had an app.
    had_app: bool,
    reads: crate::source::Reads,
    /// The jobspec lint of the draft's app.
    lint: Vec<Diagnostic>,
}

impl Loaded {
    /// How many app folders this load read afresh, the others being reused from the load it
    /// followed (`None` for a load that keeps no record, such as one built by hand).
    pub fn folders_reloaded(&self) -> Option<usize> {
        self.memo.as_ref().map(|m| m.reloaded)
    }

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
    load_after(revision, recorded_owners, None)
}

/// [`load_with_owners`], reusing what `previous` (an earlier revision and its load) read for
/// every app folder this revision answers the same: the same files, the same listings and the
/// same repo defaults. A commit that changes one app of a thousand parses one app's files.
pub fn load_after(
    revision: &Revision,
    recorded_owners: &BTreeMap<ResourceId, String>,
    previous: Option<(&Revision, &Loaded)>,
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
    let reusable = previous.and_then(|(rev, loaded)| {
        let memo = loaded.memo.as_ref()?;
        let apps: HashMap<&str, &LoadedApp> =
            loaded.apps.iter().map(|a| (a.dir.as_str(), a)).collect();
        (memo.defaults == defaults).then_some((rev, memo, apps))
    });
    let loads: Vec<(bool, manifest::Draft, FolderMemo)> = on_all_cores(&folders, |folder| {
        if let Some((before, memo, apps)) = &reusable
            && let Some(kept) = memo.folders.get(folder)
            && before.reads_same(revision, &kept.reads)
        {
            let app = match apps.get(kept.draft.dir.as_str()).map(|a| &a.result) {
                Some(Ok(app)) if kept.had_app => Some(app.clone()),
                _ => None,
            };
            // An app refused by a repo-wide check last time is not in `apps`: read it again.
            if app.is_some() == kept.had_app {
                let mut draft = kept.draft.without_app();
                draft.app = app;
                let memo = FolderMemo {
                    draft: kept.draft.without_app(),
                    had_app: kept.had_app,
                    reads: kept.reads.clone(),
                    lint: kept.lint.clone(),
                };
                return (false, draft, memo);
            }
        }
        let recording = revision.recording();
        let draft = manifest::load_app(&recording, folder, &defaults);
        let lint = match (&draft.app, draft.diags.is_empty()) {
            (Some(app), true) => jobspec::lint_warnings(app, &defaults.traefik),
            _ => Vec::new(),
        };
        let memo = FolderMemo {
            draft: draft.without_app(),
            had_app: draft.app.is_some(),
            reads: recording.reads().unwrap_or_default(),
            lint,
        };
        (true, draft, memo)
    });
    let reloaded = loads.iter().filter(|(fresh, _, _)| *fresh).count();
    let (mut drafts, memos): (Vec<manifest::Draft>, Vec<FolderMemo>) = loads
        .into_iter()
        .map(|(_, draft, memo)| (draft, memo))
        .unzip();
    repo_checks(&mut drafts, recorded_owners);
    let mut apps: Vec<LoadedApp> = drafts
        .into_iter()
        .zip(&memos)
        .map(|(d, memo)| {
            let result = match (d.app, d.diags.is_empty()) {
                (Some(app), true) => Ok(app),
                (_, _) => Err(d.diags),
            };
            let mut warnings = d.warnings;
            // The lint speaks of valid apps only (a repo-wide check may have refused this one).
            if result.is_ok() {
                warnings.extend(memo.lint.iter().cloned());
            }
            LoadedApp {
                name: d.name,
                dir: d.dir,
                result,
                warnings,
                secret_requirements: Arc::default(),
            }
        })
        .collect();
    apps.sort_by(|a, b| a.name.cmp(&b.name).then(a.dir.cmp(&b.dir)));
    let memo = LoadMemo {
        defaults: defaults.clone(),
        folders: folders.into_iter().zip(memos).collect(),
        reloaded,
    };
    Loaded {
        apps,
        repo_errors,
        traefik: defaults.traefik,
        memo: Some(Arc::new(memo)),
    }
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
    // By name, the drafts using it (a pairwise comparison was a million at 1,000 apps).
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, d) in drafts.iter().enumerate() {
        by_name.entry(d.name.as_str()).or_default().push(i);
    }
    let mut extra: Vec<Vec<Diagnostic>> = vec![Vec::new(); drafts.len()];
    for (i, d) in drafts.iter().enumerate() {
        for &j in by_name.get(d.name.as_str()).map_or(&[][..], Vec::as_slice) {
            if i != j {
                extra[i].push(at(
                    &d.file,
                    d.name_pos,
                    "name",
                    format!("app name \"{}\" is also used by {}", d.name, drafts[j].dir),
                ));
            }
        }
        for (dep, line, col) in &d.depends_on {
            if !by_name.contains_key(dep.as_str()) {
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

    fn job_file(id: &str, image: &str) -> Vec<u8> {
        format!(
            "job \"{id}\" {{\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"docker\"\n      config {{\n        image = \"{image}\"\n      }}\n    }}\n  }}\n}}\n"
        )
        .into_bytes()
    }

    /// Apps `a`, `b` and `c`; `c`'s jobspec is a shared file outside its folder.
    fn three_apps() -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        for app in ["a", "b"] {
            files.insert(
                format!("apps/{app}/app.yaml"),
                format!("name: {app}\nresources:\n  - nomad_job: {{ file: job.nomad.hcl }}\n")
                    .into_bytes(),
            );
            files.insert(
                format!("apps/{app}/job.nomad.hcl"),
                job_file(app, "nginx:1"),
            );
        }
        files.insert(
            "apps/c/app.yaml".into(),
            b"name: c\nresources:\n  - nomad_job: { file: ../../shared/c.nomad.hcl }\n".to_vec(),
        );
        files.insert("shared/c.nomad.hcl".into(), job_file("c", "nginx:1"));
        files
    }

    /// Load `after` following a load of `before`; returns the load and how many folders it read.
    fn reload(
        before: &BTreeMap<String, Vec<u8>>,
        after: &BTreeMap<String, Vec<u8>>,
    ) -> (Loaded, usize) {
        let old = Revision::from_files("old", before.clone());
        let first = load(&old);
        assert_eq!(first.folders_reloaded(), Some(first.apps.len()));
        let new = Revision::from_files("new", after.clone());
        let loaded = load_after(&new, &BTreeMap::new(), Some((&old, &first)));
        let reloaded = loaded.folders_reloaded().unwrap_or(usize::MAX);
        // Whatever was reused, the result is what a full load of the new revision gives.
        let full = load(&new);
        assert_eq!(format!("{:?}", loaded.apps), format!("{:?}", full.apps));
        assert_eq!(loaded.repo_errors, full.repo_errors);
        (loaded, reloaded)
    }

    #[test]
    fn a_load_reads_again_only_the_app_folders_whose_files_changed() {
        let before = three_apps();
        assert!(
            load(&Revision::from_files("r", before.clone()))
                .apps
                .iter()
                .all(|a| a.result.is_ok())
        );
        assert_eq!(reload(&before, &before).1, 0, "nothing changed");
        let mut one = before.clone();
        one.insert("apps/a/job.nomad.hcl".into(), job_file("a", "nginx:2"));
        assert_eq!(reload(&before, &one).1, 1, "a's jobspec changed");
        let mut listed = before.clone();
        listed.insert("apps/b/README.md".into(), b"notes".to_vec());
        // b's load lists its folder (var files beside the jobspec): a new file there is news.
        assert_eq!(reload(&before, &listed).1, 1, "a new file in b's folder");
        let mut shared = before.clone();
        shared.insert("shared/c.nomad.hcl".into(), job_file("c", "nginx:2"));
        assert_eq!(
            reload(&before, &shared).1,
            1,
            "c's file outside its folder changed"
        );
        let mut added = before.clone();
        added.insert(
            "apps/d/app.yaml".into(),
            b"name: d\nresources:\n  - nomad_job: { file: job.nomad.hcl }\n".to_vec(),
        );
        added.insert("apps/d/job.nomad.hcl".into(), job_file("d", "nginx:1"));
        assert_eq!(reload(&before, &added).1, 1, "a new app");
        let mut removed = before.clone();
        removed.remove("apps/a/app.yaml");
        removed.remove("apps/a/job.nomad.hcl");
        assert_eq!(reload(&before, &removed).1, 0, "an app removed");
        let mut defaults = before.clone();
        defaults.insert("drover.yaml".into(), b"namespace: media\n".to_vec());
        assert_eq!(
            reload(&before, &defaults).1,
            3,
            "new repo defaults reload every app"
        );
    }

    #[test]
    fn a_reused_app_still_meets_the_repo_wide_checks() {
        let before = three_apps();
        let mut clash = before.clone();
        // A new folder naming itself like an unchanged app: both are refused, the reused one too.
        clash.insert(
            "apps/e/app.yaml".into(),
            b"name: a\nresources:\n  - nomad_job: { file: job.nomad.hcl }\n".to_vec(),
        );
        clash.insert("apps/e/job.nomad.hcl".into(), job_file("e", "nginx:1"));
        let (loaded, n) = reload(&before, &clash);
        assert_eq!(n, 1);
        let refused = loaded
            .apps
            .iter()
            .filter(|a| a.name == "a" && a.result.is_err())
            .count();
        assert_eq!(refused, 2, "{:?}", loaded.apps);
        // The clash resolved: the app refused last time is read again (its app was not kept).
        let (loaded, n) = reload(&clash, &before);
        assert_eq!(n, 1, "a, whose last load was refused");
        assert!(
            loaded.apps.iter().all(|a| a.result.is_ok()),
            "{:?}",
            loaded.apps
        );
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
