//! SQLite history store: sync history, last-applied markers, ownership, pins, events.
//!
//! One file under `--data-dir`, in WAL mode, migrated through `PRAGMA user_version`. Every method
//! is async and runs its query on the blocking pool, so callers in the reconcile loop never block
//! the runtime. Times are stored as Unix milliseconds.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use crate::desired::ResourceId;

/// Finished syncs kept per app; older ones are deleted when a sync finishes.
const SYNCS_KEPT_PER_APP: i64 = 1000;

/// Events kept in total; older ones are deleted when an event is added.
const EVENTS_KEPT: i64 = 10_000;

/// Schema versions, applied in order; `user_version` is the number applied so far.
/// Never edit a released entry: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "
    CREATE TABLE syncs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        app TEXT NOT NULL,
        revision TEXT NOT NULL,
        trigger TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        result TEXT,
        message TEXT,
        changes TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX syncs_by_app ON syncs (app, id);
    CREATE INDEX syncs_unfinished ON syncs (finished_at) WHERE finished_at IS NULL;
    CREATE TABLE markers (
        app TEXT NOT NULL,
        resource TEXT NOT NULL,
        spec_hash TEXT NOT NULL,
        live_index INTEGER NOT NULL,
        revision TEXT NOT NULL,
        applied_at INTEGER NOT NULL,
        PRIMARY KEY (app, resource)
    );
    CREATE TABLE owned (
        resource TEXT PRIMARY KEY,
        app TEXT NOT NULL,
        recorded_at INTEGER NOT NULL
    );
    CREATE INDEX owned_by_app ON owned (app);
    CREATE TABLE pins (
        app TEXT PRIMARY KEY,
        revision TEXT NOT NULL,
        pinned_at INTEGER NOT NULL
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        app TEXT,
        at INTEGER NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX events_by_app ON events (app, id);
    ",
    // 2: `once: true` hooks that completed (a migration seed runs exactly once), and the sync
    // whose post_sync hooks are due.
    "
    CREATE TABLE once_hooks (
        app TEXT NOT NULL,
        phase TEXT NOT NULL,
        job TEXT NOT NULL,
        revision TEXT NOT NULL,
        ran_at INTEGER NOT NULL,
        PRIMARY KEY (app, phase, job)
    );
    -- The sync whose post_sync hooks run once its app is Healthy (survives a restart).
    CREATE TABLE post_sync_due (
        app TEXT PRIMARY KEY,
        revision TEXT NOT NULL,
        due_at INTEGER NOT NULL
    );
    ",
    // 3: the alerts firing now, so a restart neither fires them again nor forgets to resolve
    // them. `app` and `resource` are '' when the alert has none (they are in the key).
    "
    CREATE TABLE alerts_firing (
        trigger TEXT NOT NULL,
        app TEXT NOT NULL,
        resource TEXT NOT NULL,
        message TEXT NOT NULL,
        fired_at INTEGER NOT NULL,
        notified_at INTEGER NOT NULL,
        PRIMARY KEY (trigger, app, resource)
    );
    ",
];

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database folder could not be created.
    #[error("cannot create store directory {path}")]
    CreateDir {
        /// The folder.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Opening or configuring the database failed.
    #[error("cannot open store {path}")]
    Open {
        /// The database file (or `:memory:`).
        path: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// Applying a schema migration failed.
    #[error("store migration to schema version {version} failed")]
    Migrate {
        /// The version being applied.
        version: usize,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer drover with a schema this one does not know.
    #[error("store schema version {found} is newer than this drover supports ({supported})")]
    TooNew {
        /// The file's `user_version`.
        found: i64,
        /// The newest version this build knows.
        supported: usize,
    },
    /// A query failed.
    #[error("store query failed: {what}")]
    Query {
        /// Which operation.
        what: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored value could not be decoded (e.g. a change list that is not JSON).
    #[error("store holds an invalid {what}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// The decoding error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The row to update does not exist.
    #[error("no {what} with id {id} in the store")]
    NotFound {
        /// What was looked for.
        what: &'static str,
        /// Its id.
        id: i64,
    },
    /// A previous operation panicked while holding the connection.
    #[error("store connection is unusable after a panic")]
    Poisoned,
    /// The blocking task running the query failed.
    #[error("store task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// What started a sync, as recorded in its history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// The controller's own cycle applied Git.
    Auto,
    /// The controller's own cycle healed drift (`self_heal`).
    SelfHeal,
    /// `drover sync` or the page's button.
    Manual,
}

/// How a sync ended, as recorded in its history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncResult {
    /// Every write landed.
    Succeeded,
    /// A write failed.
    Failed,
    /// A compare-and-set write found the object changed.
    Conflict,
    /// A step waits on something; retried.
    Waiting,
    /// A write was held back (its preflight failed, or a dependency did not go through); the
    /// others landed. Retried each cycle.
    Blocked,
    /// Writes were planned, none was allowed or needed.
    NoOp,
    /// drover stopped during the sync.
    Interrupted,
}

impl Trigger {
    /// The word stored and served.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Auto => "auto",
            Trigger::SelfHeal => "self-heal",
            Trigger::Manual => "manual",
        }
    }
}

impl SyncResult {
    /// The word stored and served.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncResult::Succeeded => "succeeded",
            SyncResult::Failed => "failed",
            SyncResult::Conflict => "conflict",
            SyncResult::Waiting => "waiting",
            SyncResult::Blocked => "blocked",
            SyncResult::NoOp => "no-op",
            SyncResult::Interrupted => "interrupted",
        }
    }
}

/// A stored word as `T` (a value this version does not know is corrupt).
fn word<T: serde::de::DeserializeOwned>(
    what: &'static str,
    stored: String,
) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(stored)).map_err(|e| StoreError::Corrupt {
        what,
        source: Box::new(e),
    })
}

/// One sync attempt of an app, from start to result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRecord {
    /// Row id, increasing with time.
    pub id: i64,
    /// The app synced.
    pub app: String,
    /// The Git revision applied.
    pub revision: String,
    /// When the sync started.
    pub started_at: SystemTime,
    /// When it finished; `None` while running or if drover stopped mid-sync.
    pub finished_at: Option<SystemTime>,
    /// `"succeeded"`, `"failed"`, `"blocked"`, `"no-op"`, ...; `None` while unfinished.
    pub result: Option<SyncResult>,
    /// A human explanation, usually of a failure.
    pub message: Option<String>,
    /// Human lines like `update nomad_job/default/web`.
    pub changes: Vec<String>,
    /// What started it.
    pub trigger: Trigger,
}

/// What drover last applied for one resource: the base of the cheap triage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The app the resource belongs to.
    pub app: String,
    /// The resource's `ResourceId` display form.
    pub resource: ResourceId,
    /// Hash of the desired spec that was applied.
    pub spec_hash: String,
    /// The live index after the apply (e.g. the job's `JobModifyIndex`).
    pub live_index: u64,
    /// The Git revision it came from.
    pub revision: String,
    /// When it was applied.
    pub applied_at: SystemTime,
}

/// A notable happening, for the status page and `drover status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Row id, increasing with time.
    pub id: i64,
    /// The app concerned, or `None` for controller-wide events.
    pub app: Option<String>,
    /// When it happened.
    pub at: SystemTime,
    /// `info`, `warning`, `error`, ...
    pub level: String,
    /// What happened (never a secret).
    pub message: String,
}

/// The store: one SQLite connection shared behind a mutex. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// Told the app of every write to the cluster-kept tables, once someone asked for it (HA).
    changes: Arc<OnceLock<Arc<ChangeFeed>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

fn to_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        // Before 1970: clock is badly wrong; store the epoch rather than fail a sync.
        Err(_) => 0,
    }
}

fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn q(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

impl Store {
    /// Open (creating folders and file as needed) and migrate the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        // WAL: readers never block the writer, and a crash loses at most the last transaction.
        let _mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        Self::setup(conn)
    }

    /// A fresh database in memory (tests, `drover plan`).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: ":memory:".to_string(),
            source,
        })?;
        Self::setup(conn)
    }

    fn setup(mut conn: Connection) -> Result<Store, StoreError> {
        migrate(&mut conn)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            changes: Arc::default(),
        })
    }

    /// The feed of apps whose cluster-kept state (markers, ownership, pin, `once` hooks, due
    /// post_sync) changed; created on first call, shared by every clone of this store.
    pub fn change_feed(&self) -> Arc<ChangeFeed> {
        Arc::clone(self.changes.get_or_init(Arc::default))
    }

    /// Tell the feed, if there is one, that `app`'s cluster-kept state changed.
    fn changed(&self, app: &str) {
        if let Some(feed) = self.changes.get() {
            feed.mark_dirty(app);
        }
    }

    /// The schema version this build writes.
    pub fn schema_version() -> usize {
        MIGRATIONS.len()
    }

    /// Run `f` with the connection on the blocking pool.
    async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StoreError::Poisoned)?;
            f(&mut guard)
        })
        .await
        .map_err(StoreError::Task)?
    }

    /// Record that a sync of `app` at `revision` starts now; returns its id for [`finish_sync`].
    ///
    /// [`finish_sync`]: Store::finish_sync
    pub async fn begin_sync(
        &self,
        app: &str,
        revision: &str,
        trigger: Trigger,
    ) -> Result<i64, StoreError> {
        let (app, revision, trigger) = (app.to_string(), revision.to_string(), trigger.as_str());
        let now = to_millis(SystemTime::now());
        self.with(move |c| {
            c.execute(
                "INSERT INTO syncs (app, revision, trigger, started_at) VALUES (?1, ?2, ?3, ?4)",
                params![app, revision, trigger, now],
            )
            .map_err(q("begin sync"))?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    /// Record a sync's outcome, and trim the app's history to the newest syncs.
    pub async fn finish_sync(
        &self,
        id: i64,
        result: SyncResult,
        message: Option<&str>,
        changes: &[String],
    ) -> Result<(), StoreError> {
        let result = result.as_str();
        let message = message.map(str::to_string);
        let changes = serde_json::to_string(changes).map_err(|e| StoreError::Corrupt {
            what: "change list",
            source: Box::new(e),
        })?;
        let now = to_millis(SystemTime::now());
        self.with(move |c| {
            let tx = c.transaction().map_err(q("finish sync"))?;
            let app: Option<String> = tx
                .query_row("SELECT app FROM syncs WHERE id = ?1", [id], |r| r.get(0))
                .optional()
                .map_err(q("finish sync"))?;
            let Some(app) = app else {
                return Err(StoreError::NotFound { what: "sync", id });
            };
            tx.execute(
                "UPDATE syncs SET finished_at = ?2, result = ?3, message = ?4, changes = ?5
                 WHERE id = ?1",
                params![id, now, result, message, changes],
            )
            .map_err(q("finish sync"))?;
            tx.execute(
                "DELETE FROM syncs WHERE app = ?1 AND finished_at IS NOT NULL AND id < (
                     SELECT COALESCE(MIN(id), 0) FROM (
                         SELECT id FROM syncs WHERE app = ?1 ORDER BY id DESC LIMIT ?2))",
                params![app, SYNCS_KEPT_PER_APP],
            )
            .map_err(q("trim sync history"))?;
            tx.commit().map_err(q("finish sync"))
        })
        .await
    }

    /// Syncs that started but never finished: drover stopped (or crashed) in the middle.
    /// Oldest first.
    pub async fn unfinished_syncs(&self) -> Result<Vec<SyncRecord>, StoreError> {
        self.with(|c| {
            select_syncs(
                c,
                "WHERE finished_at IS NULL ORDER BY id ASC",
                params![],
                "unfinished syncs",
            )
        })
        .await
    }

    /// The app's newest `limit` syncs, newest first.
    pub async fn history(&self, app: &str, limit: usize) -> Result<Vec<SyncRecord>, StoreError> {
        let app = app.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |c| {
            select_syncs(
                c,
                "WHERE app = ?1 ORDER BY id DESC LIMIT ?2",
                params![app, limit],
                "history",
            )
        })
        .await
    }

    /// The app's newest sync, finished or not.
    pub async fn last_sync(&self, app: &str) -> Result<Option<SyncRecord>, StoreError> {
        Ok(self.history(app, 1).await?.into_iter().next())
    }

    /// Insert or replace the marker of `(marker.app, marker.resource)`.
    pub async fn set_marker(&self, marker: &Marker) -> Result<(), StoreError> {
        let m = marker.clone();
        let app = marker.app.clone();
        let live_index = i64::try_from(m.live_index).map_err(|e| StoreError::Corrupt {
            what: "live index (above i64::MAX)",
            source: Box::new(e),
        })?;
        self.with(move |c| {
            c.execute(
                "INSERT INTO markers (app, resource, spec_hash, live_index, revision, applied_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (app, resource) DO UPDATE SET
                     spec_hash = excluded.spec_hash, live_index = excluded.live_index,
                     revision = excluded.revision, applied_at = excluded.applied_at",
                params![
                    m.app,
                    m.resource.to_string(),
                    m.spec_hash,
                    live_index,
                    m.revision,
                    to_millis(m.applied_at)
                ],
            )
            .map_err(q("set marker"))?;
            Ok(())
        })
        .await?;
        self.changed(&app);
        Ok(())
    }

    /// The app's markers, by resource.
    pub async fn markers(&self, app: &str) -> Result<Vec<Marker>, StoreError> {
        let app = app.to_string();
        self.with(move |c| select_markers(c, "WHERE app = ?1 ORDER BY resource", params![app]))
            .await
    }

    /// Every app's markers, by app and resource.
    pub async fn all_markers(&self) -> Result<Vec<Marker>, StoreError> {
        self.with(|c| select_markers(c, "ORDER BY app, resource", params![]))
            .await
    }

    /// Forget a resource's marker (after deleting it). Missing markers are fine.
    pub async fn delete_marker(&self, app: &str, resource: &ResourceId) -> Result<(), StoreError> {
        let changed = app;
        let (app, resource) = (app.to_string(), resource.to_string());
        self.with(move |c| {
            c.execute(
                "DELETE FROM markers WHERE app = ?1 AND resource = ?2",
                params![app, resource],
            )
            .map_err(q("delete marker"))?;
            Ok(())
        })
        .await?;
        self.changed(changed);
        Ok(())
    }

    /// Record that drover created `resource` for `app`, so it may prune it later. A resource has
    /// one owner: recording it for another app moves the ownership there (and logs it).
    pub async fn record_owned(&self, app: &str, resource: &ResourceId) -> Result<(), StoreError> {
        let changed = app;
        let (app, resource) = (app.to_string(), resource.to_string());
        let now = to_millis(SystemTime::now());
        let previous = self.with(move |c| {
            let tx = c.transaction().map_err(q("record owned"))?;
            let previous: Option<String> = tx
                .query_row(
                    "SELECT app FROM owned WHERE resource = ?1",
                    [&resource],
                    |r| r.get(0),
                )
                .optional()
                .map_err(q("record owned"))?;
            let previous = previous.filter(|p| *p != app);
            if let Some(previous) = &previous {
                tracing::warn!(%resource, from = %previous, to = %app, "resource ownership moves");
            }
            tx.execute(
                "INSERT INTO owned (resource, app, recorded_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (resource) DO UPDATE SET app = excluded.app,
                     recorded_at = CASE WHEN owned.app = excluded.app
                                        THEN owned.recorded_at ELSE excluded.recorded_at END",
                params![resource, app, now],
            )
            .map_err(q("record owned"))?;
            tx.commit().map_err(q("record owned"))?;
            Ok(previous)
        })
        .await?;
        self.changed(changed);
        // The app the resource moved away from lost an ownership row too.
        if let Some(previous) = previous {
            self.changed(&previous);
        }
        Ok(())
    }

    /// The resources drover created for `app`, sorted.
    pub async fn owned(&self, app: &str) -> Result<Vec<ResourceId>, StoreError> {
        let app = app.to_string();
        self.with(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT resource FROM owned WHERE app = ?1 ORDER BY resource")
                .map_err(q("owned"))?;
            let rows = stmt
                .query_map([app], |r| r.get(0))
                .map_err(q("owned"))?
                .collect::<Result<Vec<String>, _>>()
                .map_err(q("owned"))?;
            Ok(rows.iter().filter_map(|r| resource_id(r)).collect())
        })
        .await
    }

    /// The app that owns `resource`, if drover created it.
    pub async fn owner_of(&self, resource: &ResourceId) -> Result<Option<String>, StoreError> {
        let resource = resource.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT app FROM owned WHERE resource = ?1",
                [resource],
                |r| r.get(0),
            )
            .optional()
            .map_err(q("owner of"))
        })
        .await
    }

    /// Drop `app`'s ownership of `resource` (after it was deleted). Another app's ownership of
    /// the same resource is left alone.
    pub async fn forget_owned(&self, app: &str, resource: &ResourceId) -> Result<(), StoreError> {
        let changed = app;
        let (app, resource) = (app.to_string(), resource.to_string());
        self.with(move |c| {
            c.execute(
                "DELETE FROM owned WHERE app = ?1 AND resource = ?2",
                params![app, resource],
            )
            .map_err(q("forget owned"))?;
            Ok(())
        })
        .await?;
        self.changed(changed);
        Ok(())
    }

    /// Apps that own resources or have markers, sorted: an app among these that is no longer in
    /// Git was deleted there, and its resources are candidates for pruning.
    pub async fn known_apps(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let mut stmt = c
                .prepare_cached("SELECT app FROM owned UNION SELECT app FROM markers ORDER BY app")
                .map_err(q("known apps"))?;
            let rows = stmt
                .query_map([], |r| r.get(0))
                .map_err(q("known apps"))?
                .collect::<Result<Vec<String>, _>>()
                .map_err(q("known apps"))?;
            Ok(rows)
        })
        .await
    }

    /// Pin `app` to `revision` (rollback) until [`unpin`](Store::unpin); replaces an older pin.
    pub async fn pin(&self, app: &str, revision: &str) -> Result<(), StoreError> {
        let changed = app;
        let (app, revision) = (app.to_string(), revision.to_string());
        let now = to_millis(SystemTime::now());
        self.with(move |c| {
            c.execute(
                "INSERT INTO pins (app, revision, pinned_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (app) DO UPDATE SET revision = excluded.revision,
                     pinned_at = excluded.pinned_at",
                params![app, revision, now],
            )
            .map_err(q("pin"))?;
            Ok(())
        })
        .await?;
        self.changed(changed);
        Ok(())
    }

    /// Remove `app`'s pin; `true` if there was one.
    pub async fn unpin(&self, app: &str) -> Result<bool, StoreError> {
        let changed = app;
        let app = app.to_string();
        let removed = self
            .with(move |c| {
                let n = c
                    .execute("DELETE FROM pins WHERE app = ?1", [app])
                    .map_err(q("unpin"))?;
                Ok(n > 0)
            })
            .await?;
        if removed {
            self.changed(changed);
        }
        Ok(removed)
    }

    /// The revision `app` is pinned to, if any.
    pub async fn pinned(&self, app: &str) -> Result<Option<String>, StoreError> {
        let app = app.to_string();
        self.with(move |c| {
            c.query_row("SELECT revision FROM pins WHERE app = ?1", [app], |r| {
                r.get(0)
            })
            .optional()
            .map_err(q("pinned"))
        })
        .await
    }

    /// Record that `app`'s `once: true` hook (its phase and job, `namespace/id`) completed at
    /// `revision`: it never runs again for this app.
    pub async fn record_once_hook(
        &self,
        app: &str,
        phase: &str,
        job: &str,
        revision: &str,
    ) -> Result<(), StoreError> {
        let changed = app;
        let (app, phase, job, revision) = (
            app.to_string(),
            phase.to_string(),
            job.to_string(),
            revision.to_string(),
        );
        let now = to_millis(SystemTime::now());
        self.with(move |c| {
            c.execute(
                "INSERT INTO once_hooks (app, phase, job, revision, ran_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (app, phase, job) DO NOTHING",
                params![app, phase, job, revision, now],
            )
            .map_err(q("record once hook"))?;
            Ok(())
        })
        .await?;
        self.changed(changed);
        Ok(())
    }

    /// The revision at which `app`'s `once: true` hook (phase, job) completed, if it did.
    pub async fn once_hook_ran(
        &self,
        app: &str,
        phase: &str,
        job: &str,
    ) -> Result<Option<String>, StoreError> {
        let (app, phase, job) = (app.to_string(), phase.to_string(), job.to_string());
        self.with(move |c| {
            c.query_row(
                "SELECT revision FROM once_hooks WHERE app = ?1 AND phase = ?2 AND job = ?3",
                params![app, phase, job],
                |r| r.get(0),
            )
            .optional()
            .map_err(q("once hook"))
        })
        .await
    }

    /// Set (`Some(revision)`: that sync wrote and its post_sync hooks are due once the app is
    /// Healthy) or clear (`None`) `app`'s due post_sync hooks.
    pub async fn set_post_sync_due(
        &self,
        app: &str,
        revision: Option<&str>,
    ) -> Result<(), StoreError> {
        let changed = app;
        let (app, revision) = (app.to_string(), revision.map(str::to_string));
        let now = to_millis(SystemTime::now());
        self.with(move |c| {
            match revision {
                Some(revision) => c.execute(
                    "INSERT INTO post_sync_due (app, revision, due_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (app) DO UPDATE SET revision = excluded.revision,
                         due_at = excluded.due_at",
                    params![app, revision, now],
                ),
                None => c.execute("DELETE FROM post_sync_due WHERE app = ?1", [app]),
            }
            .map_err(q("post_sync due"))?;
            Ok(())
        })
        .await?;
        self.changed(changed);
        Ok(())
    }

    /// The revision of `app`'s sync whose post_sync hooks are due, if any.
    pub async fn post_sync_due(&self, app: &str) -> Result<Option<String>, StoreError> {
        let app = app.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT revision FROM post_sync_due WHERE app = ?1",
                [app],
                |r| r.get(0),
            )
            .optional()
            .map_err(q("post_sync due"))
        })
        .await
    }

    /// Append an event, and trim the oldest beyond the retention limit.
    pub async fn add_event(
        &self,
        app: Option<&str>,
        level: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        let (app, level, message) = (
            app.map(str::to_string),
            level.to_string(),
            message.to_string(),
        );
        let now = to_millis(SystemTime::now());
        self.with(move |c| {
            c.execute(
                "INSERT INTO events (app, at, level, message) VALUES (?1, ?2, ?3, ?4)",
                params![app, now, level, message],
            )
            .map_err(q("add event"))?;
            let newest = c.last_insert_rowid();
            c.execute(
                "DELETE FROM events WHERE id <= ?1",
                [newest.saturating_sub(EVENTS_KEPT)],
            )
            .map_err(q("trim events"))?;
            Ok(())
        })
        .await
    }

    /// The newest `limit` events, newest first: of one app, or of all (`None`).
    pub async fn events(
        &self,
        app: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let app = app.map(str::to_string);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT id, app, at, level, message FROM events
                     WHERE ?1 IS NULL OR app = ?1 ORDER BY id DESC LIMIT ?2",
                )
                .map_err(q("events"))?;
            let rows = stmt
                .query_map(params![app, limit], |r| {
                    Ok(EventRecord {
                        id: r.get(0)?,
                        app: r.get(1)?,
                        at: from_millis(r.get(2)?),
                        level: r.get(3)?,
                        message: r.get(4)?,
                    })
                })
                .map_err(q("events"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(q("events"))?;
            Ok(rows)
        })
        .await
    }
}

/// One alert that is firing, as the store keeps it across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiringAlert {
    /// The trigger's word (`sync_failed`, `drift`, …).
    pub trigger: String,
    /// The app, if the alert has one.
    pub app: Option<String>,
    /// The resource or probe, if one.
    pub resource: Option<String>,
    /// The message it fired with.
    pub message: String,
    /// When it began firing.
    pub fired_at: SystemTime,
    /// When it was last sent (the first time, or a re-notification).
    pub notified_at: SystemTime,
}

impl Store {
    /// The alerts firing when they were last saved.
    pub async fn firing_alerts(&self) -> Result<Vec<FiringAlert>, StoreError> {
        self.with(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT trigger, app, resource, message, fired_at, notified_at
                     FROM alerts_firing ORDER BY trigger, app, resource",
                )
                .map_err(q("firing alerts"))?;
            let rows = stmt
                .query_map([], |r| {
                    let app: String = r.get(1)?;
                    let resource: String = r.get(2)?;
                    Ok(FiringAlert {
                        trigger: r.get(0)?,
                        app: Some(app).filter(|a| !a.is_empty()),
                        resource: Some(resource).filter(|r| !r.is_empty()),
                        message: r.get(3)?,
                        fired_at: from_millis(r.get(4)?),
                        notified_at: from_millis(r.get(5)?),
                    })
                })
                .map_err(q("firing alerts"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(q("firing alerts"))?;
            Ok(rows)
        })
        .await
    }

    /// Replace the saved firing alerts with `alerts` (in one transaction).
    pub async fn save_firing_alerts(&self, alerts: Vec<FiringAlert>) -> Result<(), StoreError> {
        self.with(move |c| {
            let tx = c.transaction().map_err(q("save firing alerts"))?;
            tx.execute("DELETE FROM alerts_firing", [])
                .map_err(q("save firing alerts"))?;
            for alert in &alerts {
                tx.execute(
                    "INSERT OR REPLACE INTO alerts_firing
                     (trigger, app, resource, message, fired_at, notified_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        alert.trigger,
                        alert.app.as_deref().unwrap_or(""),
                        alert.resource.as_deref().unwrap_or(""),
                        alert.message,
                        to_millis(alert.fired_at),
                        to_millis(alert.notified_at),
                    ],
                )
                .map_err(q("save firing alerts"))?;
            }
            tx.commit().map_err(q("save firing alerts"))?;
            Ok(())
        })
        .await
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|source| StoreError::Migrate { version: 0, source })?;
    let current = usize::try_from(found).unwrap_or(usize::MAX);
    if current > MIGRATIONS.len() {
        return Err(StoreError::TooNew {
            found,
            supported: MIGRATIONS.len(),
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = index + 1;
        let err = |source| StoreError::Migrate { version, source };
        // Schema and version change in one transaction, so a crash cannot half-apply one.
        let tx = conn.transaction().map_err(err)?;
        tx.execute_batch(sql).map_err(err)?;
        tx.pragma_update(None, "user_version", version as i64)
            .map_err(err)?;
        tx.commit().map_err(err)?;
    }
    Ok(())
}

fn select_syncs(
    c: &Connection,
    tail: &str,
    args: &[&dyn rusqlite::ToSql],
    what: &'static str,
) -> Result<Vec<SyncRecord>, StoreError> {
    let sql = format!(
        "SELECT id, app, revision, trigger, started_at, finished_at, result, message, changes
         FROM syncs {tail}"
    );
    let mut stmt = c.prepare_cached(&sql).map_err(q(what))?;
    let raw = stmt
        .query_map(args, |r| {
            Ok((
                SyncRecord {
                    id: r.get(0)?,
                    app: r.get(1)?,
                    revision: r.get(2)?,
                    trigger: Trigger::Auto,
                    started_at: from_millis(r.get(4)?),
                    finished_at: r.get::<_, Option<i64>>(5)?.map(from_millis),
                    result: None,
                    message: r.get(7)?,
                    changes: Vec::new(),
                },
                r.get::<_, String>(8)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })
        .map_err(q(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(q(what))?;
    raw.into_iter()
        .map(|(mut record, changes, trigger, result)| {
            record.trigger = word("sync trigger", trigger)?;
            record.result = result.map(|r| word("sync result", r)).transpose()?;
            record.changes = serde_json::from_str(&changes).map_err(|e| StoreError::Corrupt {
                what: "change list",
                source: Box::new(e),
            })?;
            Ok(record)
        })
        .collect()
}

fn select_markers(
    c: &Connection,
    tail: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Marker>, StoreError> {
    let sql = format!(
        "SELECT app, resource, spec_hash, live_index, revision, applied_at FROM markers {tail}"
    );
    let mut stmt = c.prepare_cached(&sql).map_err(q("markers"))?;
    let raw = stmt
        .query_map(args, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                from_millis(r.get(5)?),
            ))
        })
        .map_err(q("markers"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(q("markers"))?;
    let mut markers = Vec::with_capacity(raw.len());
    for (app, resource, spec_hash, index, revision, applied_at) in raw {
        let Some(resource) = resource_id(&resource) else {
            continue;
        };
        let live_index = u64::try_from(index).map_err(|e| StoreError::Corrupt {
            what: "live index",
            source: Box::new(e),
        })?;
        markers.push(Marker {
            app,
            resource,
            spec_hash,
            live_index,
            revision,
            applied_at,
        });
    }
    Ok(markers)
}

/// A stored resource ID; one this version cannot read (a kind it does not know, say one written
/// by a newer drover) is left out with a warning rather than failing the app.
fn resource_id(stored: &str) -> Option<ResourceId> {
    let id = ResourceId::parse(stored);
    if id.is_none() {
        tracing::warn!(
            resource = stored,
            "skipping a stored resource ID this version cannot read"
        );
    }
    id
}

/// A resource ID from its `Display` form, for tests.
#[cfg(test)]
pub(crate) fn rid(text: &str) -> ResourceId {
    ResourceId::parse(text).unwrap_or_else(|| panic!("not a resource ID: {text}"))
}

pub mod app_state;
pub mod backup;

pub use app_state::{AppState, ChangeFeed};

#[cfg(test)]
mod tests;
