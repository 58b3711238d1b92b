//! Store unit tests against real SQLite (in memory and on disk).

use super::*;

fn marker(app: &str, resource: &str, hash: &str, index: u64) -> Marker {
    Marker {
        app: app.into(),
        resource: rid(resource),
        spec_hash: hash.into(),
        live_index: index,
        revision: "rev1".into(),
        applied_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
    }
}

#[tokio::test]
async fn migrations_are_idempotent_and_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/drover.db");
    {
        let store = Store::open(&path).unwrap();
        store.pin("web", "abc").await.unwrap();
        store
            .set_marker(&marker("web", "nomad_job/default/web", "h1", 7))
            .await
            .unwrap();
    }
    // Opening again (twice) re-runs no migration and keeps the data.
    let _first = Store::open(&path).unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.pinned("web").await.unwrap().as_deref(), Some("abc"));
    assert_eq!(store.markers("web").await.unwrap().len(), 1);
    let version: i64 = store
        .conn
        .lock()
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version as usize, Store::schema_version());
    let mode: String = store
        .conn
        .lock()
        .unwrap()
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drover.db");
    drop(Store::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
}

#[tokio::test]
async fn sync_lifecycle_and_history_newest_first() {
    let store = Store::open_in_memory().unwrap();
    let a = store.begin_sync("web", "r1", Trigger::Auto).await.unwrap();
    store
        .finish_sync(
            a,
            SyncResult::Succeeded,
            None,
            &["create nomad_job/default/web".into()],
        )
        .await
        .unwrap();
    let b = store
        .begin_sync("web", "r2", Trigger::SelfHeal)
        .await
        .unwrap();
    store
        .finish_sync(b, SyncResult::Failed, Some("plan failed"), &[])
        .await
        .unwrap();
    let other = store.begin_sync("db", "r2", Trigger::Auto).await.unwrap();
    assert!(b > a);

    let history = store.history("web", 10).await.unwrap();
    assert_eq!(history.iter().map(|s| s.id).collect::<Vec<_>>(), vec![b, a]);
    let newest = &history[0];
    assert_eq!(newest.revision, "r2");
    assert_eq!(newest.trigger, Trigger::SelfHeal);
    assert_eq!(newest.result, Some(SyncResult::Failed));
    assert_eq!(newest.message.as_deref(), Some("plan failed"));
    assert!(newest.finished_at.unwrap() >= newest.started_at);
    assert_eq!(
        history[1].changes,
        vec!["create nomad_job/default/web".to_string()]
    );
    assert_eq!(store.history("web", 1).await.unwrap().len(), 1);

    assert_eq!(store.last_sync("web").await.unwrap().unwrap().id, b);
    let running = store.last_sync("db").await.unwrap().unwrap();
    assert_eq!(running.id, other);
    assert!(running.finished_at.is_none() && running.result.is_none());
    assert!(store.last_sync("nope").await.unwrap().is_none());

    let err = store
        .finish_sync(9999, SyncResult::Succeeded, None, &[])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { id: 9999, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn unfinished_syncs_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drover.db");
    let (done, interrupted) = {
        let store = Store::open(&path).unwrap();
        let done = store.begin_sync("web", "r1", Trigger::Auto).await.unwrap();
        store
            .finish_sync(done, SyncResult::Succeeded, None, &[])
            .await
            .unwrap();
        let interrupted = store.begin_sync("web", "r2", Trigger::Auto).await.unwrap();
        // The process "dies" here: no finish_sync, store dropped.
        (done, interrupted)
    };
    let store = Store::open(&path).unwrap();
    let unfinished = store.unfinished_syncs().await.unwrap();
    assert_eq!(unfinished.len(), 1);
    assert_eq!(unfinished[0].id, interrupted);
    assert_eq!(unfinished[0].revision, "r2");
    assert_ne!(unfinished[0].id, done);

    store
        .finish_sync(
            interrupted,
            SyncResult::Interrupted,
            Some("drover restarted"),
            &[],
        )
        .await
        .unwrap();
    assert!(store.unfinished_syncs().await.unwrap().is_empty());
}

#[tokio::test]
async fn history_is_trimmed_per_app_but_unfinished_kept() {
    let store = Store::open_in_memory().unwrap();
    let first = store.begin_sync("web", "r0", Trigger::Auto).await.unwrap();
    store
        .finish_sync(first, SyncResult::Succeeded, None, &[])
        .await
        .unwrap();
    let other = store.begin_sync("db", "r0", Trigger::Auto).await.unwrap();
    store
        .finish_sync(other, SyncResult::Succeeded, None, &[])
        .await
        .unwrap();
    for i in 0..SYNCS_KEPT_PER_APP {
        let id = store
            .begin_sync("web", &format!("r{i}"), Trigger::Auto)
            .await
            .unwrap();
        store
            .finish_sync(id, SyncResult::NoOp, None, &[])
            .await
            .unwrap();
    }
    let history = store.history("web", usize::MAX).await.unwrap();
    assert_eq!(history.len() as i64, SYNCS_KEPT_PER_APP);
    assert!(history.iter().all(|s| s.id != first), "oldest sync trimmed");
    assert_eq!(
        store.history("db", 10).await.unwrap().len(),
        1,
        "other apps untouched"
    );
}

#[tokio::test]
async fn markers_upsert_by_app_and_resource() {
    let store = Store::open_in_memory().unwrap();
    store
        .set_marker(&marker("web", "nomad_job/default/web", "h1", 10))
        .await
        .unwrap();
    store
        .set_marker(&marker("web", "csi_volume/default/v", "h2", 3))
        .await
        .unwrap();
    store
        .set_marker(&marker("db", "nomad_job/default/db", "h3", 4))
        .await
        .unwrap();
    let mut updated = marker("web", "nomad_job/default/web", "h9", 42);
    updated.revision = "rev2".into();
    store.set_marker(&updated).await.unwrap();

    let web = store.markers("web").await.unwrap();
    assert_eq!(web.len(), 2);
    let job = web
        .iter()
        .find(|m| m.resource == "nomad_job/default/web")
        .unwrap();
    assert_eq!(
        job, &updated,
        "all fields round-trip, incl. applied_at to the millisecond"
    );

    let all = store.all_markers().await.unwrap();
    assert_eq!(
        all.iter()
            .map(|m| format!("{} {}", m.app, m.resource))
            .collect::<Vec<_>>(),
        vec![
            "db nomad_job/default/db",
            "web csi_volume/default/v",
            "web nomad_job/default/web",
        ]
    );

    store
        .delete_marker("web", &rid("csi_volume/default/v"))
        .await
        .unwrap();
    store
        .delete_marker("web", &rid("nomad_job/default/never-existed"))
        .await
        .unwrap();
    assert_eq!(store.markers("web").await.unwrap().len(), 1);

    // Indexes beyond i64 cannot be stored and say so instead of wrapping.
    let err = store
        .set_marker(&marker("web", "nomad_job/default/x", "h", u64::MAX))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

#[tokio::test]
async fn ownership_records_one_owner_per_resource() {
    let store = Store::open_in_memory().unwrap();
    store
        .record_owned("web", &rid("nomad_job/default/web"))
        .await
        .unwrap();
    store
        .record_owned("web", &rid("csi_volume/default/v"))
        .await
        .unwrap();
    store
        .record_owned("web", &rid("nomad_job/default/web"))
        .await
        .unwrap();
    assert_eq!(
        store.owned("web").await.unwrap(),
        vec!["csi_volume/default/v", "nomad_job/default/web"]
    );
    assert_eq!(
        store
            .owner_of(&rid("nomad_job/default/web"))
            .await
            .unwrap()
            .as_deref(),
        Some("web")
    );
    assert_eq!(
        store
            .owner_of(&rid("nomad_job/default/other"))
            .await
            .unwrap(),
        None
    );

    // Another app taking the resource over moves ownership.
    store
        .record_owned("web2", &rid("csi_volume/default/v"))
        .await
        .unwrap();
    assert_eq!(
        store
            .owner_of(&rid("csi_volume/default/v"))
            .await
            .unwrap()
            .as_deref(),
        Some("web2")
    );
    assert_eq!(
        store.owned("web").await.unwrap(),
        vec!["nomad_job/default/web"]
    );

    // Forgetting by the wrong app leaves the owner in place.
    store
        .forget_owned("web", &rid("csi_volume/default/v"))
        .await
        .unwrap();
    assert!(
        store
            .owner_of(&rid("csi_volume/default/v"))
            .await
            .unwrap()
            .is_some()
    );
    store
        .forget_owned("web2", &rid("csi_volume/default/v"))
        .await
        .unwrap();
    assert!(
        store
            .owner_of(&rid("csi_volume/default/v"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.owned("web2").await.unwrap().is_empty());
}

#[tokio::test]
async fn known_apps_come_from_ownership_and_markers() {
    let store = Store::open_in_memory().unwrap();
    assert!(store.known_apps().await.unwrap().is_empty());
    store
        .record_owned("zeta", &rid("nomad_job/default/z"))
        .await
        .unwrap();
    store
        .set_marker(&marker("alpha", "nomad_job/default/a", "h", 1))
        .await
        .unwrap();
    store
        .set_marker(&marker("zeta", "nomad_job/default/z", "h", 1))
        .await
        .unwrap();
    // A pin or a sync alone does not make an app "known" for pruning.
    store.pin("pinned-only", "r").await.unwrap();
    store
        .begin_sync("synced-only", "r", Trigger::Auto)
        .await
        .unwrap();
    assert_eq!(store.known_apps().await.unwrap(), vec!["alpha", "zeta"]);
}

#[tokio::test]
async fn pin_replace_and_unpin() {
    let store = Store::open_in_memory().unwrap();
    assert_eq!(store.pinned("web").await.unwrap(), None);
    store.pin("web", "r1").await.unwrap();
    store.pin("web", "r2").await.unwrap();
    assert_eq!(store.pinned("web").await.unwrap().as_deref(), Some("r2"));
    assert_eq!(store.pinned("db").await.unwrap(), None);
    assert!(store.unpin("web").await.unwrap());
    assert!(!store.unpin("web").await.unwrap());
    assert_eq!(store.pinned("web").await.unwrap(), None);
}

#[tokio::test]
async fn events_newest_first_filtered_by_app() {
    let store = Store::open_in_memory().unwrap();
    store
        .add_event(None, "info", "drover started")
        .await
        .unwrap();
    store
        .add_event(Some("web"), "warning", "drift on web")
        .await
        .unwrap();
    store
        .add_event(Some("db"), "error", "db failed")
        .await
        .unwrap();
    store
        .add_event(Some("web"), "info", "web synced")
        .await
        .unwrap();

    let all = store.events(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
        vec!["web synced", "db failed", "drift on web", "drover started"]
    );
    assert_eq!(all[3].app, None);
    assert_eq!(all[1].level, "error");
    assert!(all[0].at >= all[3].at);

    let web = store.events(Some("web"), 10).await.unwrap();
    assert_eq!(
        web.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
        vec!["web synced", "drift on web"]
    );
    assert_eq!(store.events(None, 2).await.unwrap().len(), 2);
}

#[tokio::test]
async fn events_are_trimmed_to_the_retention_limit() {
    let store = Store::open_in_memory().unwrap();
    {
        let conn = store.conn.lock().unwrap();
        let mut stmt = conn
            .prepare("INSERT INTO events (app, at, level, message) VALUES (NULL, 0, 'info', 'old')")
            .unwrap();
        for _ in 0..EVENTS_KEPT {
            stmt.execute([]).unwrap();
        }
    }
    store.add_event(None, "info", "newest").await.unwrap();
    let kept = store.events(None, usize::MAX).await.unwrap();
    assert_eq!(kept.len() as i64, EVENTS_KEPT);
    assert_eq!(kept[0].message, "newest");
}

#[test]
fn time_round_trips_in_milliseconds() {
    let t = UNIX_EPOCH + Duration::from_millis(1_234_567);
    assert_eq!(from_millis(to_millis(t)), t);
    assert_eq!(to_millis(UNIX_EPOCH - Duration::from_secs(5)), 0);
    assert_eq!(from_millis(-5), UNIX_EPOCH);
}

#[tokio::test]
async fn two_handles_on_one_file_see_each_others_writes() {
    // `drover history` reads the file while `drover serve` writes it (WAL allows both).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drover.db");
    let writer = Store::open(&path).unwrap();
    let reader = Store::open(&path).unwrap();
    let id = writer.begin_sync("web", "r1", Trigger::Auto).await.unwrap();
    assert_eq!(reader.unfinished_syncs().await.unwrap()[0].id, id);
    writer
        .finish_sync(
            id,
            SyncResult::Succeeded,
            None,
            &["update nomad_job/default/web".into()],
        )
        .await
        .unwrap();
    let last = reader.last_sync("web").await.unwrap().unwrap();
    assert_eq!(last.result, Some(SyncResult::Succeeded));
    reader
        .add_event(Some("web"), "info", "from the other handle")
        .await
        .unwrap();
    assert_eq!(
        writer.events(Some("web"), 1).await.unwrap()[0].message,
        "from the other handle"
    );
}

#[test]
fn debug_names_the_store_without_its_connection() {
    let store = Store::open_in_memory().unwrap();
    assert_eq!(format!("{store:?}"), "Store { .. }");
}

#[tokio::test]
async fn stored_resource_ids_this_version_cannot_read_are_left_out() {
    let store = Store::open_in_memory().unwrap();
    store
        .set_marker(&marker("web", "nomad_job/default/web", "h", 1))
        .await
        .unwrap();
    store
        .record_owned("web", &rid("nomad_job/default/web"))
        .await
        .unwrap();
    store
        .with(|c| {
            c.execute(
                "INSERT INTO markers (app, resource, spec_hash, live_index, revision, applied_at)
                 VALUES ('web', 'future_kind/x', 'h', 1, 'r', 0)",
                [],
            )
            .map_err(q("test"))?;
            c.execute(
                "INSERT INTO owned (resource, app, recorded_at) VALUES ('future_kind/x', 'web', 0)",
                [],
            )
            .map_err(q("test"))?;
            Ok(())
        })
        .await
        .unwrap();
    let markers = store.markers("web").await.unwrap();
    assert_eq!(
        markers.iter().map(|m| &m.resource).collect::<Vec<_>>(),
        [&rid("nomad_job/default/web")]
    );
    assert_eq!(store.owned("web").await.unwrap(), ["nomad_job/default/web"]);
}

#[tokio::test]
async fn a_once_hook_is_recorded_per_app_phase_and_job_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drover.db");
    {
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store
                .once_hook_ran("media", "pre_sync", "default/seed")
                .await
                .unwrap(),
            None
        );
        store
            .record_once_hook("media", "pre_sync", "default/seed", "r1")
            .await
            .unwrap();
        // A second record keeps the first revision.
        store
            .record_once_hook("media", "pre_sync", "default/seed", "r2")
            .await
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let ran = |app: &'static str, phase: &'static str, job: &'static str| {
        let store = store.clone();
        async move { store.once_hook_ran(app, phase, job).await.unwrap() }
    };
    assert_eq!(
        ran("media", "pre_sync", "default/seed").await.as_deref(),
        Some("r1")
    );
    assert_eq!(ran("media", "post_sync", "default/seed").await, None);
    assert_eq!(ran("other", "pre_sync", "default/seed").await, None);
    assert_eq!(ran("media", "pre_sync", "default/seed2").await, None);
}

#[tokio::test]
async fn a_due_post_sync_is_kept_per_app_until_cleared() {
    let store = Store::open_in_memory().unwrap();
    assert_eq!(store.post_sync_due("web").await.unwrap(), None);
    store.set_post_sync_due("web", Some("r1")).await.unwrap();
    store.set_post_sync_due("web", Some("r2")).await.unwrap();
    store.set_post_sync_due("db", Some("r1")).await.unwrap();
    assert_eq!(
        store.post_sync_due("web").await.unwrap().as_deref(),
        Some("r2")
    );
    store.set_post_sync_due("web", None).await.unwrap();
    assert_eq!(store.post_sync_due("web").await.unwrap(), None);
    assert_eq!(
        store.post_sync_due("db").await.unwrap().as_deref(),
        Some("r1")
    );
}

#[tokio::test]
async fn firing_alerts_survive_a_reopen_and_are_replaced_as_a_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drover.db");
    let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let drift = FiringAlert {
        trigger: "drift".into(),
        app: Some("web".into()),
        resource: Some("nomad_job/default/web".into()),
        message: "changed in the cluster".into(),
        fired_at: at,
        notified_at: at + Duration::from_secs(60),
    };
    let repo = FiringAlert {
        trigger: "prune_refused".into(),
        app: None,
        resource: None,
        message: "prune refused".into(),
        fired_at: at,
        notified_at: at,
    };
    {
        let store = Store::open(&path).unwrap();
        assert!(store.firing_alerts().await.unwrap().is_empty());
        store
            .save_firing_alerts(vec![drift.clone(), repo.clone()])
            .await
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.firing_alerts().await.unwrap(),
        vec![drift.clone(), repo]
    );
    store.save_firing_alerts(vec![drift.clone()]).await.unwrap();
    assert_eq!(store.firing_alerts().await.unwrap(), vec![drift]);
}

#[tokio::test]
async fn a_schema_2_store_gains_the_firing_alerts_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drover.db");
    {
        let mut conn = Connection::open(&path).unwrap();
        let tx = conn.transaction().unwrap();
        for sql in &MIGRATIONS[..2] {
            tx.execute_batch(sql).unwrap();
        }
        tx.pragma_update(None, "user_version", 2).unwrap();
        tx.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(Store::schema_version(), 3);
    assert!(store.firing_alerts().await.unwrap().is_empty());
}
