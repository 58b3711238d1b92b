//! `drover backup` / `drover restore`: an online, consistent copy of the store (`VACUUM INTO`
//! in a read transaction, which WAL mode lets run beside a serving drover), and putting one back
//! while no drover holds the data directory (`drover.lock`, an OS file lock `serve` holds).

use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

/// The lock file a running drover holds in its data directory.
pub const LOCK_FILE: &str = "drover.lock";

/// Backing up or restoring the store failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file operation failed.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused an operation.
    #[error("cannot {action} {path}")]
    Sqlite {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file is not a drover store this build can use.
    #[error("{path} is not a drover store: {why}")]
    NotAStore {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// The target of a backup exists (never overwritten).
    #[error("{path} exists; choose a new file")]
    Exists {
        /// The file.
        path: String,
    },
    /// A drover holds the data directory.
    #[error("a drover is running on {dir} (it holds {lock}); stop it first, or pass --force")]
    InUse {
        /// The data directory.
        dir: String,
        /// The lock file.
        lock: String,
    },
}

/// The lock on a data directory, released when dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Take the data directory's lock without waiting; `Ok(None)` when another holder has it.
    pub fn try_acquire(data_dir: &Path) -> Result<Option<DataDirLock>, BackupError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |action| {
            let path = path.display().to_string();
            move |source| BackupError::Io {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(data_dir).map_err(io("create the folder of"))?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("open"))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(DataDirLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(source)) => Err(io("lock")(source)),
        }
    }
}

/// The schema version of a drover store at `path`, checked: an SQLite file whose `user_version`
/// is one this build knows, with the `syncs` table and an intact `quick_check`.
pub fn store_version(path: &Path) -> Result<usize, BackupError> {
    let shown = path.display().to_string();
    let not_store = |why: String| BackupError::NotAStore {
        path: shown.clone(),
        why,
    };
    if !path.is_file() {
        return Err(not_store("no such file".into()));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| not_store(e.to_string()))?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| not_store(e.to_string()))?;
    let supported = super::Store::schema_version();
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version == 0 || version > supported {
        return Err(not_store(format!(
            "schema version {version} (this drover knows 1 to {supported})"
        )));
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'syncs'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| not_store(e.to_string()))?;
    if tables != 1 {
        return Err(not_store("no syncs table".into()));
    }
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| not_store(e.to_string()))?;
    if check != "ok" {
        return Err(not_store(format!("integrity check: {check}")));
    }
    Ok(version)
}

/// Write a consistent copy of the store of `data_dir` to `out` (which must not exist), safe
/// while `drover serve` runs. Returns the copy's schema version.
pub fn backup(data_dir: &Path, out: &Path) -> Result<usize, BackupError> {
    let store = crate::app_stack::store_file(data_dir);
    store_version(&store)?;
    if out.exists() {
        return Err(BackupError::Exists {
            path: out.display().to_string(),
        });
    }
    let sqlite = |action| {
        let path = store.display().to_string();
        move |source| BackupError::Sqlite {
            action,
            path,
            source,
        }
    };
    // Read-write open (not read-only) so SQLite may use the WAL index a running drover keeps.
    let conn = Connection::open_with_flags(&store, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(sqlite("open"))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(sqlite("open"))?;
    let target = out.to_str().ok_or_else(|| BackupError::NotAStore {
        path: out.display().to_string(),
        why: "the path is not UTF-8".into(),
    })?;
    conn.execute("VACUUM INTO ?1", [target])
        .map_err(sqlite("copy"))?;
    store_version(out)
}

/// Put the backup `from` in place as the store of `data_dir`, keeping the old store (and its
/// WAL) aside as `drover.db.before-restore-<unix seconds>`. Refused while a drover holds the
/// data directory unless `force`. Returns where the old store went, if there was one.
pub fn restore(from: &Path, data_dir: &Path, force: bool) -> Result<Option<PathBuf>, BackupError> {
    store_version(from)?;
    let lock = DataDirLock::try_acquire(data_dir)?;
    if lock.is_none() && !force {
        return Err(BackupError::InUse {
            dir: data_dir.display().to_string(),
            lock: data_dir.join(LOCK_FILE).display().to_string(),
        });
    }
    let store = crate::app_stack::store_file(data_dir);
    let io = |action, path: &Path| {
        let path = path.display().to_string();
        move |source| BackupError::Io {
            action,
            path,
            source,
        }
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut aside = None;
    if store.exists() {
        let kept = PathBuf::from(format!("{}.before-restore-{stamp}", store.display()));
        for suffix in ["-wal", "-shm"] {
            let side = PathBuf::from(format!("{}{suffix}", store.display()));
            if side.exists() {
                let to = PathBuf::from(format!("{}{suffix}", kept.display()));
                std::fs::rename(&side, &to).map_err(io("move aside", &side))?;
            }
        }
        std::fs::rename(&store, &kept).map_err(io("move aside", &store))?;
        aside = Some(kept);
    }
    // Copy next to the store, then rename: a crash never leaves half a store in place.
    let partial = data_dir.join("drover.db.restoring");
    std::fs::copy(from, &partial).map_err(io("copy to", &partial))?;
    std::fs::rename(&partial, &store).map_err(io("put in place", &store))?;
    drop(lock);
    Ok(aside)
}
