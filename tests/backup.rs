//! `drover backup` while `drover serve` runs, `drover restore` into a fresh data directory, and
//! the refusals: a running drover on the target, a file that is not a drover store.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::TestEnv;
use drover::store::Store;

fn drover(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap_or_else(|e| panic!("drover {args:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_while_serving_restores_markers_ownership_and_history() {
    let mut env = TestEnv::new().await;
    let revision = env.sync_web_app("").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("drover-backup.db");

    // Online: the in-process drover keeps running (and holding its store) during the copy.
    let out = drover(&["backup", &file.display().to_string()], &env.data);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("store schema version"),
        "{}",
        text(&out)
    );
    let again = drover(&["backup", &file.display().to_string()], &env.data);
    assert!(!again.status.success());
    assert!(text(&again).contains("exists"), "{}", text(&again));

    // Restoring over the running drover's store is refused, and leaves it alone.
    let busy = drover(&["restore", &file.display().to_string()], &env.data);
    assert!(!busy.status.success());
    assert!(
        text(&busy).contains("a drover is running on"),
        "{}",
        text(&busy)
    );
    let running = env
        .drover
        .as_ref()
        .unwrap_or_else(|| panic!("drover runs"))
        .ctx
        .store
        .clone();
    let markers = running.markers("web").await.unwrap_or_default();
    let owned = running.owned("web").await.unwrap_or_default();
    let history = running.history("web", 50).await.unwrap_or_default();
    env.shutdown().await;

    let fresh = dir.path().join("fresh-data");
    let out = drover(&["restore", &file.display().to_string()], &fresh);
    assert!(out.status.success(), "{}", text(&out));
    let restored = Store::open(&fresh.join("drover.db")).unwrap_or_else(|e| panic!("{e}"));
    let restored_markers = restored.markers("web").await.unwrap_or_default();
    let restored_owned = restored.owned("web").await.unwrap_or_default();
    let restored_history = restored.history("web", 50).await.unwrap_or_default();
    assert!(
        restored_owned
            .iter()
            .any(|r| format!("{r:?}").contains("web")),
        "the web job is owned: {restored_owned:?}"
    );
    assert!(
        restored_history.iter().any(|s| s.revision == revision),
        "the sync of {revision} is in the history"
    );
    assert_eq!(format!("{restored_markers:?}"), format!("{markers:?}"));
    assert!(!markers.is_empty());
    assert_eq!(format!("{restored_owned:?}"), format!("{owned:?}"));
    assert_eq!(restored_history.len(), history.len());

    // A second restore keeps the first one's store aside.
    drop(restored);
    let out = drover(&["restore", &file.display().to_string()], &fresh);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("the old store is"), "{}", text(&out));
    let kept = std::fs::read_dir(&fresh)
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("drover.db.before-restore-")
        })
        .count();
    assert!(kept >= 1, "old store kept aside");
}

#[test]
fn restoring_a_file_that_is_not_a_drover_store_is_refused() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let junk = dir.path().join("notes.txt");
    std::fs::write(&junk, "not a database, just text\n".repeat(100))
        .unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let out = drover(&["restore", &junk.display().to_string()], &data);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("is not a drover store"),
        "{}",
        text(&out)
    );
    assert!(!data.join("drover.db").exists(), "nothing restored");

    // An SQLite file of something else is refused too.
    let other = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&other).unwrap_or_else(|e| panic!("{e}"));
    conn.execute_batch("CREATE TABLE t (x); PRAGMA user_version = 1;")
        .unwrap_or_else(|e| panic!("{e}"));
    drop(conn);
    let out = drover(&["restore", &other.display().to_string()], &data);
    assert!(!out.status.success());
    assert!(text(&out).contains("no syncs table"), "{}", text(&out));
}
