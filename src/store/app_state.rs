//! The part of the store a leader needs and the next leader must have (markers, ownership, pin,
//! `once` hooks, due post_sync), read and replaced per app, and the change feed that tells the
//! HA mirror ([`crate::cluster_state`]) which apps to copy to the cluster. History (syncs,
//! events, firing alerts) is not part of it: it stays local to each replica.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, q};

/// Apps whose cluster-kept state changed, coalesced until the mirror takes them: a burst of
/// writes during one sync is one entry, and a stalled mirror holds at most one entry per app.
#[derive(Debug, Default)]
pub struct ChangeFeed {
    dirty: Mutex<BTreeSet<String>>,
    wake: tokio::sync::Notify,
}

impl ChangeFeed {
    /// Note that `app` changed (also used to retry an app later).
    pub fn mark_dirty(&self, app: &str) {
        if let Ok(mut dirty) = self.dirty.lock() {
            dirty.insert(app.to_string());
        }
        self.wake.notify_one();
    }

    /// Make the next [`changed`](Self::changed) return at once, with no app marked.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Wait until an app is marked (returns at once if one was marked since the last wait).
    pub async fn changed(&self) {
        self.wake.notified().await;
    }

    /// The apps marked since the last call, clearing them.
    pub fn take(&self) -> BTreeSet<String> {
        self.dirty
            .lock()
            .map(|mut dirty| std::mem::take(&mut *dirty))
            .unwrap_or_default()
    }
}

/// A last-applied marker as kept in the cluster (times in Unix milliseconds, exactly as stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkerRow {
    /// The resource ID's display form.
    pub resource: String,
    /// SHA-256 of the applied spec (never the spec itself).
    pub spec_hash: String,
    /// The live index after the apply.
    pub live_index: u64,
    /// The Git revision applied.
    pub revision: String,
    /// When.
    pub applied_at: i64,
}

/// A resource drover created for the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedRow {
    /// The resource ID's display form.
    pub resource: String,
    /// When the ownership was recorded.
    pub recorded_at: i64,
}

/// The revision the app is pinned to (a rollback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRow {
    /// The pinned revision.
    pub revision: String,
    /// When.
    pub pinned_at: i64,
}

/// A `once: true` hook that completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnceHookRow {
    /// `pre_sync`, `post_sync`, ...
    pub phase: String,
    /// The hook's job, `namespace/id`.
    pub job: String,
    /// The revision it ran at.
    pub revision: String,
    /// When it completed.
    pub ran_at: i64,
}

/// The sync whose post_sync hooks are due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueRow {
    /// That sync's revision.
    pub revision: String,
    /// Since when.
    pub due_at: i64,
}

/// Everything about one app that a leader needs to continue where the last one stopped.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppState {
    /// Last-applied markers, by resource.
    #[serde(default)]
    pub markers: Vec<MarkerRow>,
    /// Owned resources, by resource.
    #[serde(default)]
    pub owned: Vec<OwnedRow>,
    /// The pin, if any.
    #[serde(default)]
    pub pin: Option<PinRow>,
    /// Completed `once` hooks, by phase and job.
    #[serde(default)]
    pub once_hooks: Vec<OnceHookRow>,
    /// Due post_sync hooks, if any.
    #[serde(default)]
    pub post_sync_due: Option<DueRow>,
}

impl AppState {
    /// No row at all: the app has no state to keep.
    pub fn is_empty(&self) -> bool {
        self.markers.is_empty()
            && self.owned.is_empty()
            && self.pin.is_none()
            && self.once_hooks.is_empty()
            && self.post_sync_due.is_none()
    }
}

/// What [`Store::replace_cluster_state`] did, for a log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaceCounts {
    /// Apps written from the cluster.
    pub apps: usize,
    /// Markers written.
    pub markers: usize,
    /// Ownership rows written.
    pub owned: usize,
    /// Pins written.
    pub pins: usize,
    /// `once` hook rows added (rows this store already had are kept).
    pub once_hooks: usize,
    /// Due post_sync rows written.
    pub post_sync_due: usize,
    /// Apps whose local markers, ownership, pin or due post_sync were dropped because the
    /// cluster has no record of them.
    pub dropped_apps: Vec<String>,
}

fn read_app_state(c: &Connection, app: &str) -> Result<AppState, StoreError> {
    let what = "app state";
    let mut markers = c
        .prepare_cached(
            "SELECT resource, spec_hash, live_index, revision, applied_at FROM markers
             WHERE app = ?1 ORDER BY resource",
        )
        .map_err(q(what))?;
    let markers = markers
        .query_map([app], |r| {
            Ok(MarkerRow {
                resource: r.get(0)?,
                spec_hash: r.get(1)?,
                live_index: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                revision: r.get(3)?,
                applied_at: r.get(4)?,
            })
        })
        .map_err(q(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(q(what))?;
    let mut owned = c
        .prepare_cached("SELECT resource, recorded_at FROM owned WHERE app = ?1 ORDER BY resource")
        .map_err(q(what))?;
    let owned = owned
        .query_map([app], |r| {
            Ok(OwnedRow {
                resource: r.get(0)?,
                recorded_at: r.get(1)?,
            })
        })
        .map_err(q(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(q(what))?;
    let pin = c
        .query_row(
            "SELECT revision, pinned_at FROM pins WHERE app = ?1",
            [app],
            |r| {
                Ok(PinRow {
                    revision: r.get(0)?,
                    pinned_at: r.get(1)?,
                })
            },
        )
        .optional()
        .map_err(q(what))?;
    let mut once = c
        .prepare_cached(
            "SELECT phase, job, revision, ran_at FROM once_hooks WHERE app = ?1
             ORDER BY phase, job",
        )
        .map_err(q(what))?;
    let once_hooks = once
        .query_map([app], |r| {
            Ok(OnceHookRow {
                phase: r.get(0)?,
                job: r.get(1)?,
                revision: r.get(2)?,
                ran_at: r.get(3)?,
            })
        })
        .map_err(q(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(q(what))?;
    let post_sync_due = c
        .query_row(
            "SELECT revision, due_at FROM post_sync_due WHERE app = ?1",
            [app],
            |r| {
                Ok(DueRow {
                    revision: r.get(0)?,
                    due_at: r.get(1)?,
                })
            },
        )
        .optional()
        .map_err(q(what))?;
    Ok(AppState {
        markers,
        owned,
        pin,
        once_hooks,
        post_sync_due,
    })
}

const STATE_TABLES: &[&str] = &["markers", "owned", "pins", "once_hooks", "post_sync_due"];

fn apps_with_state(c: &Connection) -> Result<BTreeSet<String>, StoreError> {
    let sql = STATE_TABLES
        .iter()
        .map(|t| format!("SELECT app FROM {t}"))
        .collect::<Vec<_>>()
        .join(" UNION ");
    let mut stmt = c.prepare_cached(&sql).map_err(q("apps with state"))?;
    let apps = stmt
        .query_map([], |r| r.get(0))
        .map_err(q("apps with state"))?
        .collect::<Result<BTreeSet<String>, _>>()
        .map_err(q("apps with state"))?;
    Ok(apps)
}

impl Store {
    /// `app`'s cluster-kept state, rows sorted.
    pub async fn app_state(&self, app: &str) -> Result<AppState, StoreError> {
        let app = app.to_string();
        self.with(move |c| read_app_state(c, &app)).await
    }

    /// Every app with at least one cluster-kept row, sorted.
    pub async fn apps_with_state(&self) -> Result<BTreeSet<String>, StoreError> {
        self.with(|c| apps_with_state(c)).await
    }

    /// Make the cluster's records the truth, in one transaction: every app's markers, ownership,
    /// pin and due post_sync become exactly `states` (apps not in it keep none of these), while
    /// completed `once` hooks are the union of local rows and the records (a hook that ran
    /// must never run again, and no leader ever forgets one). Nothing is told to the change
    /// feed: the caller knows what it wrote.
    pub async fn replace_cluster_state(
        &self,
        states: BTreeMap<String, AppState>,
    ) -> Result<ReplaceCounts, StoreError> {
        self.with(move |c| {
            let what = "replace cluster state";
            let tx = c.transaction().map_err(q(what))?;
            let mut counts = ReplaceCounts {
                dropped_apps: apps_with_state(&tx)?
                    .into_iter()
                    .filter(|app| !states.contains_key(app))
                    .filter(|app| {
                        // An app that has only once-hook rows loses nothing.
                        ["markers", "owned", "pins", "post_sync_due"]
                            .iter()
                            .any(|t| {
                                tx.query_row(
                                    &format!("SELECT 1 FROM {t} WHERE app = ?1 LIMIT 1"),
                                    [app],
                                    |_| Ok(()),
                                )
                                .optional()
                                .ok()
                                .flatten()
                                .is_some()
                            })
                    })
                    .collect(),
                ..ReplaceCounts::default()
            };
            for table in ["markers", "owned", "pins", "post_sync_due"] {
                tx.execute(&format!("DELETE FROM {table}"), [])
                    .map_err(q(what))?;
            }
            for (app, state) in &states {
                counts.apps += 1;
                for m in &state.markers {
                    let live_index =
                        i64::try_from(m.live_index).map_err(|e| StoreError::Corrupt {
                            what: "live index (above i64::MAX)",
                            source: Box::new(e),
                        })?;
                    counts.markers += tx
                        .execute(
                            "INSERT OR REPLACE INTO markers
                             (app, resource, spec_hash, live_index, revision, applied_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            params![
                                app,
                                m.resource,
                                m.spec_hash,
                                live_index,
                                m.revision,
                                m.applied_at
                            ],
                        )
                        .map_err(q(what))?;
                }
                for o in &state.owned {
                    // One owner per resource: two records claiming one resource (written by
                    // different leaders) keep the later app in name order, and say so.
                    let previous: Option<String> = tx
                        .query_row(
                            "SELECT app FROM owned WHERE resource = ?1",
                            [&o.resource],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(q(what))?;
                    if let Some(previous) = previous {
                        tracing::warn!(resource = %o.resource, %previous, %app,
                            "two apps' cluster records own one resource");
                    }
                    counts.owned += tx
                        .execute(
                            "INSERT OR REPLACE INTO owned (resource, app, recorded_at)
                             VALUES (?1, ?2, ?3)",
                            params![o.resource, app, o.recorded_at],
                        )
                        .map_err(q(what))?;
                }
                if let Some(pin) = &state.pin {
                    counts.pins += tx
                        .execute(
                            "INSERT INTO pins (app, revision, pinned_at) VALUES (?1, ?2, ?3)",
                            params![app, pin.revision, pin.pinned_at],
                        )
                        .map_err(q(what))?;
                }
                for h in &state.once_hooks {
                    counts.once_hooks += tx
                        .execute(
                            "INSERT INTO once_hooks (app, phase, job, revision, ran_at)
                             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (app, phase, job) DO NOTHING",
                            params![app, h.phase, h.job, h.revision, h.ran_at],
                        )
                        .map_err(q(what))?;
                }
                if let Some(due) = &state.post_sync_due {
                    counts.post_sync_due += tx
                        .execute(
                            "INSERT INTO post_sync_due (app, revision, due_at) VALUES (?1, ?2, ?3)",
                            params![app, due.revision, due.due_at],
                        )
                        .map_err(q(what))?;
                }
            }
            tx.commit().map_err(q(what))?;
            Ok(counts)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::store::{Marker, rid};

    fn marker(app: &str, resource: &str) -> Marker {
        Marker {
            app: app.into(),
            resource: rid(resource),
            spec_hash: "ab".repeat(32),
            live_index: 7,
            revision: "rev1".into(),
            applied_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        }
    }

    #[tokio::test]
    async fn every_write_to_a_kept_table_tells_the_feed_its_app_and_history_does_not() {
        let store = Store::open_in_memory().unwrap();
        // Before anyone asks for a feed, writes just work.
        store.pin("early", "r").await.unwrap();
        let feed = store.change_feed();
        let job = rid("nomad_job/default/web");
        store
            .set_marker(&marker("a", "nomad_job/default/web"))
            .await
            .unwrap();
        store.delete_marker("b", &job).await.unwrap();
        store.record_owned("c", &job).await.unwrap();
        assert_eq!(
            feed.take(),
            BTreeSet::from(["a".into(), "b".into(), "c".into()])
        );
        // Ownership moving to another app changes both apps' records.
        store.record_owned("d", &job).await.unwrap();
        assert_eq!(feed.take(), BTreeSet::from(["c".into(), "d".into()]));
        store.forget_owned("d", &job).await.unwrap();
        store.pin("e", "r").await.unwrap();
        store
            .record_once_hook("f", "pre_sync", "default/seed", "r")
            .await
            .unwrap();
        store.set_post_sync_due("g", Some("r")).await.unwrap();
        store.set_post_sync_due("h", None).await.unwrap();
        assert_eq!(
            feed.take(),
            ["d", "e", "f", "g", "h"].map(String::from).into()
        );
        // An unpin that removed nothing changed nothing; one that did, did.
        assert!(!store.unpin("nobody").await.unwrap());
        assert!(store.unpin("e").await.unwrap());
        assert_eq!(feed.take(), BTreeSet::from(["e".into()]));
        // History is local to each replica.
        let sync = store
            .begin_sync("a", "r", crate::store::Trigger::Auto)
            .await
            .unwrap();
        store
            .finish_sync(sync, crate::store::SyncResult::Succeeded, None, &[])
            .await
            .unwrap();
        store.add_event(Some("a"), "info", "hello").await.unwrap();
        assert!(feed.take().is_empty());
        // A clone shares the feed.
        store.clone().pin("i", "r").await.unwrap();
        assert_eq!(feed.take(), BTreeSet::from(["i".into()]));
    }

    #[tokio::test]
    async fn replacing_makes_the_records_the_truth_but_keeps_every_once_hook_that_ran() {
        let store = Store::open_in_memory().unwrap();
        let job = rid("nomad_job/default/web");
        // Local: app "gone" has everything; app "kept" has stale rows; "seeded" only a hook.
        store
            .set_marker(&marker("gone", "nomad_job/default/old"))
            .await
            .unwrap();
        store
            .record_owned("gone", &rid("nomad_job/default/old"))
            .await
            .unwrap();
        store.record_owned("gone", &job).await.unwrap();
        store.pin("gone", "r0").await.unwrap();
        store.set_post_sync_due("gone", Some("r0")).await.unwrap();
        store
            .record_once_hook("gone", "pre_sync", "default/seed", "r0")
            .await
            .unwrap();
        store
            .set_marker(&marker("kept", "nomad_job/default/stale"))
            .await
            .unwrap();
        store
            .record_once_hook("seeded", "pre_sync", "default/s", "r0")
            .await
            .unwrap();

        let kept = AppState {
            markers: vec![MarkerRow {
                resource: "nomad_job/default/web".into(),
                spec_hash: "cd".repeat(32),
                live_index: 42,
                revision: "r2".into(),
                applied_at: 1_700_000_000_999,
            }],
            // The cluster says the job that "gone" owned locally is "kept"'s now.
            owned: vec![OwnedRow {
                resource: "nomad_job/default/web".into(),
                recorded_at: 1_700_000_000_000,
            }],
            pin: Some(PinRow {
                revision: "r1".into(),
                pinned_at: 1_700_000_000_500,
            }),
            once_hooks: vec![OnceHookRow {
                phase: "pre_sync".into(),
                job: "default/migrate".into(),
                revision: "r1".into(),
                ran_at: 1_700_000_000_400,
            }],
            post_sync_due: Some(DueRow {
                revision: "r2".into(),
                due_at: 1_700_000_000_998,
            }),
        };
        let counts = store
            .replace_cluster_state(BTreeMap::from([("kept".to_string(), kept.clone())]))
            .await
            .unwrap();
        assert_eq!(counts.dropped_apps, ["gone"]);
        assert_eq!(
            (counts.apps, counts.markers, counts.owned, counts.pins),
            (1, 1, 1, 1)
        );
        assert_eq!((counts.once_hooks, counts.post_sync_due), (1, 1));

        assert_eq!(store.app_state("kept").await.unwrap(), kept);
        let gone = store.app_state("gone").await.unwrap();
        assert_eq!(gone.once_hooks.len(), 1, "a hook that ran stays recorded");
        assert!(gone.markers.is_empty() && gone.owned.is_empty());
        assert!(gone.pin.is_none() && gone.post_sync_due.is_none());
        assert_eq!(store.owner_of(&job).await.unwrap().as_deref(), Some("kept"));
        assert_eq!(
            store
                .once_hook_ran("seeded", "pre_sync", "default/s")
                .await
                .unwrap()
                .as_deref(),
            Some("r0")
        );
        assert_eq!(
            store.apps_with_state().await.unwrap(),
            ["gone", "kept", "seeded"].map(String::from).into()
        );
    }
}
