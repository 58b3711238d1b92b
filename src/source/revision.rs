//! A commit's tree held in memory, so loading never races a working copy.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// A commit's tree: every file's bytes, keyed by its `/`-separated path relative to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// Commit ID (hex), or `"local"` for a directory read from disk.
    pub id: String,
    /// The commit's summary line, if any.
    pub message: String,
    /// Files under the root, `apps/overseerr/app.yaml` → contents.
    pub files: Arc<BTreeMap<String, Vec<u8>>>,
}

/// Reading a directory into a [`Revision`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    /// A file or folder could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The path that failed.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Revision {
    /// A revision from in-memory files (tests, rendering).
    pub fn from_files(id: &str, files: BTreeMap<String, Vec<u8>>) -> Self {
        Revision {
            id: id.to_string(),
            message: String::new(),
            files: Arc::new(files),
        }
    }

    /// Read every regular file under `root` (skipping `.git`), for `drover validate <dir>`.
    pub fn from_dir(root: &Path) -> Result<Self, RevisionError> {
        let mut files = BTreeMap::new();
        read_dir_into(root, root, &mut files)?;
        Ok(Revision::from_files("local", files))
    }

    /// The short form of the commit ID shown to people.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    /// A file's bytes.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// Paths directly or indirectly under `dir` (`dir` without trailing slash).
    pub fn paths_under<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.files
            .keys()
            .filter(move |p| p.starts_with(&prefix))
            .map(String::as_str)
    }
}

fn read_dir_into(
    root: &Path,
    dir: &Path,
    files: &mut BTreeMap<String, Vec<u8>>,
) -> Result<(), RevisionError> {
    let read_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| RevisionError::Read { path, source }
    };
    let entries = std::fs::read_dir(dir).map_err(read_err(dir))?;
    for entry in entries {
        let entry = entry.map_err(read_err(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(read_err(&path))?;
        if entry.file_name() == ".git" {
            continue;
        }
        if kind.is_dir() {
            read_dir_into(root, &path, files)?;
        } else if kind.is_file() {
            let bytes = std::fs::read(&path).map_err(read_err(&path))?;
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.insert(rel, bytes);
        }
    }
    Ok(())
}
