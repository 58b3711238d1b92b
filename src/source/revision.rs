//! A commit's tree: the listing of its files, whose contents are read only when asked for. Memory
//! then follows what the apps reference, not the size of the repository.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The largest file drover reads from the desired state (4 MiB). Files nobody references are
/// never read, whatever their size.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A commit's tree: every file's path, `/`-separated and relative to the root, and where its
/// bytes are. Git objects are immutable, so reading later never races a push.
#[derive(Clone)]
pub struct Revision {
    /// Commit ID (hex), or `"local"` for a directory read from disk.
    pub id: String,
    /// The commit's summary line, if any.
    pub message: String,
    files: Arc<BTreeMap<String, Content>>,
    git: Option<Arc<GitObjects>>,
    /// Packs from Git registries the apps name, fetched by the source stage (see
    /// [`super::packs`]) so desired loading stays pure over the revision.
    pack_sources: Arc<super::packs::PackSources>,
    /// What was asked of this copy, when it records (see [`Revision::recording`]).
    reads: Option<Arc<Mutex<Reads>>>,
}

/// What a load asked of a revision: with it, [`Revision::reads_same`] tells whether another
/// revision would answer every question the same (an app whose files a commit did not touch is
/// not loaded again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    /// Files read or looked up.
    files: std::collections::BTreeSet<String>,
    /// Folders listed.
    dirs: std::collections::BTreeSet<String>,
    /// The whole listing, or something outside the files (Git packs): never the same.
    everything: bool,
}

impl Reads {
    fn note_file(&mut self, path: &str) {
        if !self.files.contains(path) {
            self.files.insert(path.to_string());
        }
    }
}

/// Where a file's bytes are.
#[derive(Debug, Clone)]
enum Content {
    /// Held in memory (tests, rendering).
    Bytes(Vec<u8>),
    /// A regular file on disk.
    Disk(PathBuf),
    /// A blob in the Git object database.
    Blob(git2::Oid),
}

/// The object database blobs are read from, opened once per revision.
struct GitObjects {
    path: PathBuf,
    /// Opened handles not in use (a handle is not `Sync`): the loader reads blobs on every core,
    /// each with a handle of its own, instead of taking turns on one.
    idle: Mutex<Vec<git2::Repository>>,
}

impl fmt::Debug for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revision")
            .field("id", &self.id)
            .field("message", &self.message)
            .field("files", &self.files.len())
            .finish()
    }
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

/// One file of a revision could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// No such file in the revision.
    #[error("{path} does not exist")]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// The file is bigger than [`MAX_FILE_BYTES`].
    #[error("{path} is {size} bytes, more than the limit of {limit} bytes for a file drover reads")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The disk or the object database failed.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
}

impl Revision {
    /// A revision from in-memory files (tests, rendering).
    pub fn from_files(id: &str, files: BTreeMap<String, Vec<u8>>) -> Self {
        let files = files
            .into_iter()
            .map(|(path, bytes)| (path, Content::Bytes(bytes)))
            .collect();
        Revision {
            id: id.to_string(),
            message: String::new(),
            files: Arc::new(files),
            git: None,
            pack_sources: Arc::default(),
            reads: None,
        }
    }

    /// List every regular file under `root` (skipping `.git`), for `drover validate <dir>`.
    /// Contents are read when [`Revision::file`] asks for them.
    pub fn from_dir(root: &Path) -> Result<Self, RevisionError> {
        let mut files = BTreeMap::new();
        list_dir_into(root, root, &mut files)?;
        Ok(Revision {
            id: "local".to_string(),
            message: String::new(),
            files: Arc::new(files),
            git: None,
            pack_sources: Arc::default(),
            reads: None,
        })
    }

    /// A revision whose files are the blobs `files` names in the repository at `repo`.
    pub(crate) fn from_git(
        id: &str,
        message: String,
        repo: &Path,
        files: BTreeMap<String, git2::Oid>,
    ) -> Self {
        Revision {
            id: id.to_string(),
            message,
            files: Arc::new(
                files
                    .into_iter()
                    .map(|(path, oid)| (path, Content::Blob(oid)))
                    .collect(),
            ),
            git: Some(Arc::new(GitObjects {
                path: repo.to_path_buf(),
                idle: Mutex::new(Vec::new()),
            })),
            pack_sources: Arc::default(),
            reads: None,
        }
    }

    /// This revision with the Git pack sources its apps name attached.
    pub fn with_pack_sources(mut self, sources: super::packs::PackSources) -> Self {
        self.pack_sources = Arc::new(sources);
        self
    }

    /// The Git pack sources attached by the source stage.
    pub fn pack_sources(&self) -> &super::packs::PackSources {
        self.record(|r| r.everything = true);
        &self.pack_sources
    }

    /// A copy that records what is asked of it ([`Revision::reads`]).
    pub fn recording(&self) -> Revision {
        Revision {
            reads: Some(Arc::default()),
            ..self.clone()
        }
    }

    /// What was asked of this copy so far (`None` unless it is [`recording`](Self::recording)).
    pub fn reads(&self) -> Option<Reads> {
        let reads = self.reads.as_ref()?;
        Some(match reads.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        })
    }

    fn record(&self, f: impl FnOnce(&mut Reads)) {
        if let Some(reads) = &self.reads {
            match reads.lock() {
                Ok(mut guard) => f(&mut guard),
                Err(poisoned) => f(&mut poisoned.into_inner()),
            }
        }
    }

    /// Whether `other` answers every question in `reads` as this revision does: the same files
    /// (same Git blobs, or the same bytes held in memory) and the same listings. Files on disk
    /// are never the same (they may have changed in place).
    pub fn reads_same(&self, other: &Revision, reads: &Reads) -> bool {
        if reads.everything {
            return false;
        }
        let same = |a: Option<&Content>, b: Option<&Content>| match (a, b) {
            (None, None) => true,
            (Some(Content::Blob(a)), Some(Content::Blob(b))) => a == b,
            (Some(Content::Bytes(a)), Some(Content::Bytes(b))) => a == b,
            _ => false,
        };
        let files_same = reads
            .files
            .iter()
            .all(|path| same(self.files.get(path), other.files.get(path)));
        files_same
            && reads.dirs.iter().all(|dir| {
                let mut mine = self.entries_under(dir);
                let mut theirs = other.entries_under(dir);
                loop {
                    match (mine.next(), theirs.next()) {
                        (None, None) => return true,
                        (Some((p, a)), Some((q, b))) if p == q && same(Some(a), Some(b)) => {}
                        _ => return false,
                    }
                }
            })
    }

    /// The files directly or indirectly under `dir`, without recording the listing. The paths
    /// are sorted: the ones under `dir` are one range (each app's lookups walked every path of
    /// the repository before).
    fn entries_under<'a>(&'a self, dir: &str) -> impl Iterator<Item = (&'a str, &'a Content)> + 'a {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.files
            .range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(path, _)| path.starts_with(&prefix))
            .map(|(path, content)| (path.as_str(), content))
    }

    /// The short form of the commit ID shown to people.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    /// Whether the revision has a file at `path` (without reading it).
    pub fn contains(&self, path: &str) -> bool {
        self.record(|r| r.note_file(path));
        self.files.contains_key(path)
    }

    /// Every file's path, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.record(|r| r.everything = true);
        self.files.keys().map(String::as_str)
    }

    /// A file's bytes, read now; files over [`MAX_FILE_BYTES`] are refused unread.
    pub fn file(&self, path: &str) -> Result<Cow<'_, [u8]>, FileError> {
        self.record(|r| r.note_file(path));
        let not_found = || FileError::NotFound {
            path: path.to_string(),
        };
        let too_large = |size: u64| FileError::TooLarge {
            path: path.to_string(),
            size,
            limit: MAX_FILE_BYTES,
        };
        let failed = |message: String| FileError::Read {
            path: path.to_string(),
            message,
        };
        match self.files.get(path).ok_or_else(not_found)? {
            Content::Bytes(bytes) => {
                let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
                if size > MAX_FILE_BYTES {
                    return Err(too_large(size));
                }
                Ok(Cow::Borrowed(bytes))
            }
            Content::Disk(full) => {
                let file = std::fs::File::open(full).map_err(|e| failed(e.to_string()))?;
                let size = file.metadata().map_err(|e| failed(e.to_string()))?.len();
                if size > MAX_FILE_BYTES {
                    return Err(too_large(size));
                }
                // The file may grow after the size check: never read past the limit.
                let mut bytes = Vec::new();
                file.take(MAX_FILE_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| failed(e.to_string()))?;
                let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
                if size > MAX_FILE_BYTES {
                    return Err(too_large(size));
                }
                Ok(Cow::Owned(bytes))
            }
            Content::Blob(oid) => {
                let git = self
                    .git
                    .as_ref()
                    .ok_or_else(|| failed("no git repository".to_string()))?;
                git.read(*oid, MAX_FILE_BYTES)
                    .map(Cow::Owned)
                    .map_err(|e| match e {
                        BlobError::TooLarge(size) => too_large(size),
                        BlobError::Git(e) => failed(e.message().to_string()),
                    })
            }
        }
    }

    /// Paths directly or indirectly under `dir` (`dir` without trailing slash).
    pub fn paths_under<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.record(|r| {
            r.dirs.insert(dir.to_string());
        });
        self.entries_under(dir).map(|(path, _)| path)
    }
}

enum BlobError {
    TooLarge(u64),
    Git(git2::Error),
}

impl GitObjects {
    /// A blob's bytes; its size is read from the object header first, so an oversized blob is
    /// never inflated.
    fn read(&self, oid: git2::Oid, limit: u64) -> Result<Vec<u8>, BlobError> {
        let idle = || match self.idle.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let taken = idle().pop();
        let repo = match taken {
            Some(repo) => repo,
            None => git2::Repository::open(&self.path).map_err(BlobError::Git)?,
        };
        let result = (|| {
            let odb = repo.odb().map_err(BlobError::Git)?;
            let (size, _) = odb.read_header(oid).map_err(BlobError::Git)?;
            let size = u64::try_from(size).unwrap_or(u64::MAX);
            if size > limit {
                return Err(BlobError::TooLarge(size));
            }
            let blob = repo.find_blob(oid).map_err(BlobError::Git)?;
            Ok(blob.content().to_vec())
        })();
        idle().push(repo);
        result
    }
}

fn list_dir_into(
    root: &Path,
    dir: &Path,
    files: &mut BTreeMap<String, Content>,
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
            list_dir_into(root, &path, files)?;
        } else if kind.is_file() {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.insert(rel, Content::Disk(path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_over_the_limit_are_refused_and_others_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("small"), "hi").unwrap();
        let big = vec![b'x'; usize::try_from(MAX_FILE_BYTES).unwrap() + 1];
        std::fs::write(dir.path().join("big"), &big).unwrap();
        let rev = Revision::from_dir(dir.path()).unwrap();
        assert_eq!(rev.file("small").unwrap().as_ref(), b"hi");
        assert!(rev.contains("big"));
        assert_eq!(
            rev.file("big").unwrap_err(),
            FileError::TooLarge {
                path: "big".to_string(),
                size: MAX_FILE_BYTES + 1,
                limit: MAX_FILE_BYTES,
            }
        );
        assert!(matches!(
            rev.file("missing"),
            Err(FileError::NotFound { .. })
        ));
        let in_memory = Revision::from_files("t", BTreeMap::from([("big".to_string(), big)]));
        assert!(matches!(
            in_memory.file("big"),
            Err(FileError::TooLarge { .. })
        ));
    }
}
