//! Packs from Git registries: the source stage scans a fetched revision's `apps/*/app.yaml` for
//! `pack: { source: <git URL>, ref: R }`, fetches each (URL, ref) once into a mirror (through
//! [`GitSource`], so auth, known hosts and redaction are the desired repo's), resolves R to a
//! commit, reads the named packs into memory and attaches them to the [`Revision`]. Desired
//! loading then reads them from the revision without any I/O.
//!
//! Pinning: a tag or branch is resolved again only when a revision is attached (a new commit of
//! the desired repo, or a manual refresh); a full commit id is read from the mirror without a
//! fetch once it is there. A failed fetch of a ref that resolved before keeps its last commit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use sha2::Digest as _;

use super::{GitSource, Revision, SourceConfig, SourceError, redact_url};
use crate::chart::{PackFiles, load_pack};

/// The most bytes of one pack drover reads from a registry (4 MiB).
pub const MAX_PACK_BYTES: usize = 4 * 1024 * 1024;

/// How long one registry fetch may take before the app's pack is reported as failed (libgit2 has
/// no per-call timeout; the fetch is asked to cancel).
pub const PACK_FETCH_TIMEOUT: Duration = Duration::from_secs(120);

/// The ref a pack source follows when `ref:` is omitted: the remote's default branch.
pub const DEFAULT_PACK_REF: &str = "HEAD";

/// Whether an app's `pack.source` names a Git repository rather than a folder of this one.
pub fn is_git_url(source: &str) -> bool {
    ["https://", "http://", "ssh://", "git://", "file://"]
        .iter()
        .any(|scheme| source.starts_with(scheme))
        || (source.starts_with("git@") && source.contains(':'))
}

/// One (URL, ref) of a registry, resolved.
#[derive(Debug, Clone)]
pub struct FetchedPackSource {
    /// The commit the ref resolved to (full id).
    pub commit: String,
    /// Each pack name the apps asked for → its files, or why it is not there.
    pub packs: BTreeMap<String, Result<PackFiles, String>>,
    /// Set when this fetch failed and the last resolved commit is used instead.
    pub warning: Option<String>,
}

/// Every Git pack source a revision's apps name: (URL, ref) → resolved, or the error message
/// (credentials scrubbed, naming the URL and the ref).
#[derive(Debug, Clone, Default)]
pub struct PackSources {
    entries: BTreeMap<(String, String), Result<FetchedPackSource, String>>,
}

impl PackSources {
    /// The entry for `url` at `reference` (`None` = the remote's default branch).
    pub fn get(
        &self,
        url: &str,
        reference: Option<&str>,
    ) -> Option<&Result<FetchedPackSource, String>> {
        self.entries.get(&(
            url.to_string(),
            reference.unwrap_or(DEFAULT_PACK_REF).to_string(),
        ))
    }

    /// Every (URL, ref) and its outcome.
    pub fn iter(
        &self,
    ) -> impl Iterator<Item = (&(String, String), &Result<FetchedPackSource, String>)> {
        self.entries.iter()
    }

    /// Whether no app names a Git pack source.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The (URL, ref) → pack names of every `pack:` with a Git `source` in `apps/*/app.yaml`. Files
/// that do not parse are skipped here: desired loading reports them.
pub fn scan(rev: &Revision) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut wanted: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for path in rev.paths() {
        let parts: Vec<&str> = path.split('/').collect();
        if !matches!(parts.as_slice(), ["apps", _, "app.yaml"]) {
            continue;
        }
        let Ok(bytes) = rev.file(path) else { continue };
        // Most apps name no pack: their file is not parsed (every commit scans every app).
        if !bytes.windows(4).any(|w| w == b"pack") {
            continue;
        }
        let Ok(doc) = serde_yaml_ng::from_slice::<serde_yaml_ng::Value>(&bytes) else {
            continue;
        };
        let Some(pack) = doc.get("pack") else {
            continue;
        };
        let text = |key: &str| match pack.get(key) {
            Some(serde_yaml_ng::Value::String(s)) => Some(s.trim().to_string()),
            Some(serde_yaml_ng::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let (Some(source), Some(name)) = (text("source"), text("name")) else {
            continue;
        };
        if !is_git_url(&source) {
            continue;
        }
        let reference = text("ref")
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| DEFAULT_PACK_REF.to_string());
        wanted.entry((source, reference)).or_default().insert(name);
    }
    wanted
}

/// Fetches pack registries into mirrors under one folder and remembers the last commit each
/// (URL, ref) resolved to.
#[derive(Debug)]
pub struct PackFetcher {
    root: PathBuf,
    known_hosts: Option<PathBuf>,
    last: Mutex<BTreeMap<(String, String), String>>,
    refresh: tokio::sync::Notify,
    timeout: Duration,
}

impl PackFetcher {
    /// Mirrors go under `root` (drover's data dir `packs/`), one folder per URL.
    pub fn new(root: &Path) -> Self {
        PackFetcher {
            root: root.to_path_buf(),
            known_hosts: None,
            last: Mutex::new(BTreeMap::new()),
            refresh: tokio::sync::Notify::new(),
            timeout: PACK_FETCH_TIMEOUT,
        }
    }

    /// Trust the SSH host keys in `file`, as the desired repo's source does.
    pub fn with_known_hosts(mut self, file: Option<PathBuf>) -> Self {
        self.known_hosts = file;
        self
    }

    /// Give up on a registry fetch after `timeout` (default [`PACK_FETCH_TIMEOUT`]).
    pub fn with_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Ask the loader of the current revision to resolve the pack refs again (a manual
    /// refresh); several requests before it wakes coalesce into one.
    pub fn request_refresh(&self) {
        self.refresh.notify_one();
    }

    /// Resolves when [`PackFetcher::request_refresh`] was called.
    pub async fn refresh_requested(&self) {
        self.refresh.notified().await;
    }

    /// Resolve every Git pack source `rev`'s apps name and attach them (blocking: Git I/O).
    pub fn attach(&self, rev: Revision) -> Revision {
        let wanted = scan(&rev);
        if wanted.is_empty() {
            return rev;
        }
        let mut entries = BTreeMap::new();
        for ((url, reference), names) in wanted {
            let entry = self.resolve(&url, &reference, &names);
            entries.insert((url, reference), entry);
        }
        rev.with_pack_sources(PackSources { entries })
    }

    fn resolve(
        &self,
        url: &str,
        reference: &str,
        names: &BTreeSet<String>,
    ) -> Result<FetchedPackSource, String> {
        let key = (url.to_string(), reference.to_string());
        let shown = redact_url(url);
        let failed =
            |e: &SourceError| format!("cannot fetch pack source {shown} at ref {reference:?}: {e}");
        let source = self.source(url, reference).map_err(|e| failed(&e))?;
        let (tree, warning) = match self.fetch_within_timeout(&source, reference) {
            Ok(tree) => {
                let mut last = match self.last.lock() {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                };
                last.insert(key, tree.id.clone());
                (tree, None)
            }
            Err(e) => {
                let previous = match self.last.lock() {
                    Ok(guard) => guard.get(&key).cloned(),
                    Err(poisoned) => poisoned.into_inner().get(&key).cloned(),
                };
                let Some(previous) = previous else {
                    return Err(failed(&e));
                };
                let tree = source.revision_at(&previous).map_err(|e| failed(&e))?;
                let warning = format!(
                    "{}; keeping the last resolved commit {}",
                    failed(&e),
                    tree.short_id()
                );
                tracing::warn!(url = %shown, reference, "{warning}");
                (tree, Some(warning))
            }
        };
        let packs = names
            .iter()
            .map(|name| (name.clone(), locate_pack(&tree, &shown, name)))
            .collect();
        Ok(FetchedPackSource {
            commit: tree.id.clone(),
            packs,
            warning,
        })
    }

    fn source(&self, url: &str, reference: &str) -> Result<GitSource, SourceError> {
        let digest = sha2::Sha256::digest(url.as_bytes());
        let mirror = self.root.join(hex::encode(&digest[..12]));
        let config = SourceConfig {
            url: url.to_string(),
            // A commit is not a ref the remote advertises: fetch its branches and tags.
            reference: if is_full_commit(reference) {
                DEFAULT_PACK_REF.to_string()
            } else {
                reference.to_string()
            },
            ..SourceConfig::default()
        };
        let source = GitSource::open(config, &mirror)?;
        Ok(match &self.known_hosts {
            Some(file) => source.with_known_hosts(file.clone()),
            None => source,
        })
    }
}

impl PackFetcher {
    /// [`fetch_tree`] on its own thread, cancelled after the timeout so a hung registry cannot
    /// stall loading the desired state.
    fn fetch_within_timeout(
        &self,
        source: &GitSource,
        reference: &str,
    ) -> Result<Revision, SourceError> {
        let (tx, rx) = mpsc::channel();
        let (fetcher, wanted) = (source.clone(), reference.to_string());
        std::thread::spawn(move || {
            let _ = tx.send(fetch_tree(&fetcher, &wanted));
        });
        match rx.recv_timeout(self.timeout) {
            Ok(result) => result,
            Err(_) => {
                source.cancel();
                Err(SourceError::Fetch {
                    url: source.display_url(),
                    message: format!("timed out after {}s", self.timeout.as_secs_f32()),
                    transient: true,
                })
            }
        }
    }
}

/// A full commit id: immutable, so read from the mirror without a fetch once it is there.
fn is_full_commit(reference: &str) -> bool {
    reference.len() == 40 && reference.bytes().all(|b| b.is_ascii_hexdigit())
}

fn fetch_tree(source: &GitSource, reference: &str) -> Result<Revision, SourceError> {
    if is_full_commit(reference) {
        if let Ok(tree) = source.revision_at(reference) {
            return Ok(tree);
        }
        source.fetch_commit()?;
        return source.revision_at(reference);
    }
    source.fetch()
}

/// Pack `name` in a registry's tree: `packs/<name>/` (the nomad-pack registry layout), else
/// `<name>/`, else the root when its metadata.hcl names the pack `name`. Read into memory, at
/// most [`MAX_PACK_BYTES`]; origins name its files `git+<url>@<commit>:<path>`.
pub fn locate_pack(tree: &Revision, shown_url: &str, name: &str) -> Result<PackFiles, String> {
    let at = format!("git+{shown_url}@{}", tree.short_id());
    for folder in [format!("packs/{name}"), name.to_string()] {
        if tree.contains(&format!("{folder}/metadata.hcl")) {
            return read_pack(tree, &folder, format!("{at}:{folder}"), name);
        }
    }
    if tree.contains("metadata.hcl") {
        let root = read_pack(tree, "", format!("{at}:."), name)?;
        if load_pack(root.clone(), "").is_ok_and(|p| p.name == name) {
            return Ok(root);
        }
    }
    Err(format!(
        "no pack \"{name}\" in {shown_url} at {}: looked for packs/{name}/, {name}/ and a root \
         metadata.hcl naming it",
        tree.short_id()
    ))
}

fn read_pack(tree: &Revision, folder: &str, dir: String, name: &str) -> Result<PackFiles, String> {
    let mut files = BTreeMap::new();
    let mut total = 0usize;
    let paths: Vec<&str> = tree.paths_under(folder).collect();
    for path in paths {
        let rel = if folder.is_empty() {
            path
        } else {
            &path[folder.len() + 1..]
        };
        let bytes = tree.file(path).map_err(|e| e.to_string())?;
        total = total.saturating_add(bytes.len());
        if total > MAX_PACK_BYTES {
            return Err(format!(
                "pack \"{name}\" at {dir} is more than {MAX_PACK_BYTES} bytes, the limit for a \
                 pack drover reads"
            ));
        }
        // Binary files (images in a README) are not part of what a pack renders.
        if let Ok(text) = String::from_utf8(bytes.into_owned()) {
            files.insert(rel.to_string(), text);
        }
    }
    Ok(PackFiles { dir, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(files: &[(&str, &str)]) -> Revision {
        Revision::from_files(
            "c0ffee0000000000",
            files
                .iter()
                .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
                .collect(),
        )
    }

    #[test]
    fn urls_are_told_from_repository_folders() {
        for url in [
            "https://github.com/hashicorp/nomad-pack-community-registry",
            "http://h/r.git",
            "ssh://git@h/r.git",
            "git@github.com:o/r.git",
            "file:///tmp/r",
        ] {
            assert!(is_git_url(url), "{url}");
        }
        for folder in ["charts/", "charts", "packs/x", "git@nocolon"] {
            assert!(!is_git_url(folder), "{folder}");
        }
    }

    #[test]
    fn scan_finds_git_sources_with_their_refs_and_names() {
        let r = rev(&[
            (
                "apps/a/app.yaml",
                "name: a\npack:\n  name: redis\n  source: file:///reg\n  ref: v1\n",
            ),
            (
                "apps/b/app.yaml",
                "name: b\npack:\n  name: web\n  source: file:///reg\n  ref: v1\n",
            ),
            (
                "apps/c/app.yaml",
                "name: c\npack:\n  name: x\n  source: file:///other\n",
            ),
            (
                "apps/d/app.yaml",
                "name: d\npack:\n  name: y\n  source: charts/\n",
            ),
            (
                "apps/e/deeper/app.yaml",
                "pack: {name: z, source: file:///z}\n",
            ),
        ]);
        let found = scan(&r);
        let keys: Vec<_> = found.keys().cloned().collect();
        assert_eq!(
            keys,
            vec![
                ("file:///other".to_string(), "HEAD".to_string()),
                ("file:///reg".to_string(), "v1".to_string()),
            ]
        );
        let names: Vec<_> = found[&("file:///reg".to_string(), "v1".to_string())]
            .iter()
            .cloned()
            .collect();
        assert_eq!(names, vec!["redis".to_string(), "web".to_string()]);
    }

    #[test]
    fn a_pack_is_found_under_packs_then_its_name_then_the_root() {
        let meta = |n: &str| format!("pack {{\n  name = \"{n}\"\n}}\n");
        let registry = rev(&[
            ("packs/redis/metadata.hcl", &meta("redis")),
            ("packs/redis/templates/r.nomad.tpl", "job"),
            ("redis/metadata.hcl", &meta("redis")),
            ("web/metadata.hcl", &meta("web")),
            ("metadata.hcl", &meta("solo")),
        ]);
        let found = locate_pack(&registry, "file:///reg", "redis").unwrap();
        assert_eq!(found.dir, "git+file:///reg@c0ffee000000:packs/redis");
        assert!(found.files.contains_key("templates/r.nomad.tpl"));
        assert_eq!(
            locate_pack(&registry, "file:///reg", "web").unwrap().dir,
            "git+file:///reg@c0ffee000000:web"
        );
        assert_eq!(
            locate_pack(&registry, "file:///reg", "solo").unwrap().dir,
            "git+file:///reg@c0ffee000000:."
        );
        let missing = locate_pack(&registry, "file:///reg", "nope").unwrap_err();
        assert!(missing.contains("no pack \"nope\""), "{missing}");
    }

    #[test]
    fn a_pack_over_the_limit_is_refused() {
        // Each file is under the per-file limit; together they are over the pack's.
        let half = "x".repeat(MAX_PACK_BYTES / 2 + 1);
        let registry = rev(&[
            ("packs/big/metadata.hcl", "pack {}\n"),
            ("packs/big/a.md", &half),
            ("packs/big/b.md", &half),
        ]);
        let err = locate_pack(&registry, "file:///reg", "big").unwrap_err();
        assert!(err.contains("more than"), "{err}");
    }
}
