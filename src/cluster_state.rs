//! HA: the state a leader needs (last-applied markers, ownership, pins, completed `once` hooks,
//! due post_sync hooks) kept in the cluster, in Nomad variables, so the next leader has it.
//!
//! One variable per app, `<prefix>/apps/<app>`, holds the app's [`AppState`] as JSON; a leader
//! [`restore`]s every record into its local store before it applies anything, then runs the
//! [`Mirror`], which copies each app whose rows changed (the store's change feed) with
//! check-and-set on the `ModifyIndex` it last saw. `<prefix>/meta` says the records are complete
//! (written once the first leader has copied everything), so from then on the cluster is the
//! truth: an app without a record has no markers, ownership, pin or due post_sync. Completed
//! `once` hooks are only ever added, never dropped, so a seed never runs twice. History (syncs,
//! events, firing alerts) stays local to each replica.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::providers::nomad::{NomadClient, NomadError, VariableWrite};
use crate::store::app_state::ReplaceCounts;
use crate::store::{AppState, Store, StoreError};

/// The variable prefix when drover.yaml names none.
pub const DEFAULT_PREFIX: &str = "drover/state";

/// Nomad's longest variable path (`^[a-zA-Z0-9-_~/]{1,128}$`).
const MAX_PATH_LEN: usize = 128;

/// Nomad refuses a variable whose encoded content is above 64 KiB; the items' JSON must stay
/// 1 KiB below that, for the encryption's nonce and tag and the envelope around the items.
pub const MAX_RECORD_BYTES: usize = 63 * 1024;

/// The `format` item of every record: a drover that reads another format refuses it.
const FORMAT: &str = "drover-app-state/1";

/// Retry delays after a failed copy (Nomad unreachable, a store error).
const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Record reads in flight during a restore.
const RESTORE_READS_AT_ONCE: usize = 8;

/// CAS conflicts in a row on one app before it waits for the next round.
const CONFLICT_ATTEMPTS: usize = 3;

/// Keeping or restoring cluster state failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterStateError {
    /// The configured prefix cannot be a Nomad variable path.
    #[error("cluster_state.prefix {prefix:?}: {reason}")]
    InvalidPrefix {
        /// The prefix.
        prefix: String,
        /// What is wrong.
        reason: String,
    },
    /// An app's variable path would be longer than Nomad allows.
    #[error(
        "app {app:?}: its state variable {path:?} is longer than Nomad's {MAX_PATH_LEN} characters; use a shorter cluster_state.prefix"
    )]
    PathTooLong {
        /// The app.
        app: String,
        /// The path it would have.
        path: String,
    },
    /// An app's record is larger than a Nomad variable may be.
    #[error(
        "app {app:?}: its cluster state is {bytes} bytes, over the {limit}-byte limit of a Nomad variable; the next leader will not have it (split the app)"
    )]
    TooLarge {
        /// The app.
        app: String,
        /// The record's encoded size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A variable under the prefix is not a record this drover can read.
    #[error("cluster state {path}: {reason}")]
    Unreadable {
        /// The variable path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A Nomad call failed.
    #[error("cluster state {path}")]
    Nomad {
        /// The variable path or prefix.
        path: String,
        /// The error.
        #[source]
        source: NomadError,
    },
    /// The local store failed.
    #[error("cluster state: local store")]
    Store(#[from] StoreError),
}

/// `cluster_state:` in drover.yaml.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterStateFile {
    /// The Nomad variable prefix of the records (default `drover/state`).
    #[serde(default)]
    pub prefix: Option<String>,
}

impl ClusterStateFile {
    /// The prefix to use; the block is an error without `ha:` (it would do nothing).
    pub fn resolve(file: Option<ClusterStateFile>, ha: bool) -> Result<StatePrefix, String> {
        match file {
            None => Ok(StatePrefix::default()),
            Some(_) if !ha => {
                Err("cluster_state needs ha: (only an HA leader keeps state in the cluster)".into())
            }
            Some(file) => match file.prefix {
                None => Ok(StatePrefix::default()),
                Some(prefix) => StatePrefix::new(&prefix).map_err(|e| e.to_string()),
            },
        }
    }
}

/// Where records live: `<prefix>/apps/<escaped app>` and `<prefix>/meta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatePrefix(String);

impl Default for StatePrefix {
    fn default() -> Self {
        StatePrefix(DEFAULT_PREFIX.to_string())
    }
}

impl StatePrefix {
    /// Check `prefix` against Nomad's path rules, with room for `/apps/<app>`.
    pub fn new(prefix: &str) -> Result<StatePrefix, ClusterStateError> {
        let invalid = |reason: &str| ClusterStateError::InvalidPrefix {
            prefix: prefix.to_string(),
            reason: reason.to_string(),
        };
        if prefix.is_empty() || prefix.starts_with('/') || prefix.ends_with('/') {
            return Err(invalid(
                "must be non-empty, without a leading or trailing '/'",
            ));
        }
        if prefix.contains("//") {
            return Err(invalid("must not contain an empty segment ('//')"));
        }
        if !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_~/".contains(&b))
        {
            return Err(invalid(
                "Nomad variable paths allow only letters, digits, '-', '_', '~' and '/'",
            ));
        }
        // Room for "/apps/" and an app name of up to 63 characters.
        if prefix.len() + "/apps/".len() + 63 > MAX_PATH_LEN {
            return Err(invalid("too long: keep it under 60 characters"));
        }
        Ok(StatePrefix(prefix.to_string()))
    }

    /// The prefix as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn apps(&self) -> String {
        format!("{}/apps/", self.0)
    }

    fn meta(&self) -> String {
        format!("{}/meta", self.0)
    }

    /// The variable path of `app`'s record.
    pub fn app_path(&self, app: &str) -> Result<String, ClusterStateError> {
        let path = format!("{}{}", self.apps(), escape_app(app));
        if path.len() > MAX_PATH_LEN {
            return Err(ClusterStateError::PathTooLong {
                app: app.to_string(),
                path,
            });
        }
        Ok(path)
    }

    /// The app whose record lives at `path`, if `path` is one.
    pub fn app_of(&self, path: &str) -> Option<String> {
        path.strip_prefix(&self.apps()).and_then(unescape_app)
    }
}

/// An app name as one variable path segment: letters, digits, `-` and `_` stay (every valid
/// app name is unchanged); any other byte, `~` included, becomes `~` and two hex digits.
pub fn escape_app(app: &str) -> String {
    let mut out = String::with_capacity(app.len());
    for byte in app.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("~{byte:02x}"));
        }
    }
    out
}

/// The inverse of [`escape_app`]; `None` for a segment it cannot have written.
pub fn unescape_app(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'~' => {
                let hex = segment.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok().filter(|s| !s.is_empty())
}

/// `app`'s record as variable items, refused when Nomad would refuse it for its size.
pub fn encode(app: &str, state: &AppState) -> Result<BTreeMap<String, String>, ClusterStateError> {
    let json = serde_json::to_string(state).map_err(|e| ClusterStateError::Unreadable {
        path: app.to_string(),
        reason: format!("cannot encode: {e}"),
    })?;
    let items = BTreeMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("state".to_string(), json),
    ]);
    // What Nomad encrypts and measures is the items' JSON.
    let bytes = serde_json::to_vec(&items)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if bytes > MAX_RECORD_BYTES {
        return Err(ClusterStateError::TooLarge {
            app: app.to_string(),
            bytes,
            limit: MAX_RECORD_BYTES,
        });
    }
    Ok(items)
}

/// A record's items back into an [`AppState`].
pub fn decode(path: &str, items: &BTreeMap<String, String>) -> Result<AppState, ClusterStateError> {
    let unreadable = |reason: String| ClusterStateError::Unreadable {
        path: path.to_string(),
        reason,
    };
    match items.get("format").map(String::as_str) {
        Some(FORMAT) => {}
        other => {
            return Err(unreadable(format!(
                "format {other:?} is not {FORMAT:?} (written by another drover version?)"
            )));
        }
    }
    let json = items
        .get("state")
        .ok_or_else(|| unreadable("no state item".into()))?;
    serde_json::from_str(json).map_err(|e| unreadable(format!("invalid state: {e}")))
}

/// A record as the cluster holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    modify_index: u64,
    state: AppState,
}

/// What [`restore`] found and did; the mirror starts from it.
#[derive(Debug, Default)]
pub struct Restored {
    /// Whether the cluster's records are complete (`<prefix>/meta` exists or a record does); if
    /// not, the local store was left as it was and the mirror copies it up.
    pub authoritative: bool,
    /// What the local store received.
    pub counts: ReplaceCounts,
    known: BTreeMap<String, Known>,
}

fn nomad_error(path: &str) -> impl FnOnce(NomadError) -> ClusterStateError + '_ {
    move |source| ClusterStateError::Nomad {
        path: path.to_string(),
        source,
    }
}

/// Read every record under `prefix` and make it the local store's truth (one transaction; see
/// [`Store::replace_cluster_state`]). A cluster with no records and no `meta` (the first leader
/// ever, or one upgrading from a single replica) leaves the local store as it is. Any record
/// that cannot be read fails the whole restore: leading on half the state could re-run a hook.
pub async fn restore(
    store: &Store,
    nomad: &NomadClient,
    prefix: &StatePrefix,
) -> Result<Restored, ClusterStateError> {
    let namespace = nomad.config().namespace.clone();
    let meta = prefix.meta();
    let initialized = nomad
        .read_variable(&namespace, &meta)
        .await
        .map_err(nomad_error(&meta))?
        .is_some();
    let apps_prefix = prefix.apps();
    let listed = nomad
        .list_variables(&namespace, &apps_prefix)
        .await
        .map_err(nomad_error(&apps_prefix))?;
    if !initialized && listed.is_empty() {
        return Ok(Restored::default());
    }
    // A few reads at once: a takeover with a thousand apps should not wait on each in turn.
    let reads = futures::stream::iter(listed.into_iter().map(|listed| {
        let namespace = &namespace;
        async move {
            let path = listed.path;
            let Some(app) = prefix.app_of(&path) else {
                return Err(ClusterStateError::Unreadable {
                    path,
                    reason: "not an app record path drover writes".into(),
                });
            };
            // Gone between the list and the read: deleted by its writer, so no state.
            let Some(variable) = nomad
                .read_variable(namespace, &path)
                .await
                .map_err(nomad_error(&path))?
            else {
                return Ok(None);
            };
            let state = decode(&path, &variable.items)?;
            Ok(Some((
                app,
                Known {
                    modify_index: variable.modify_index,
                    state,
                },
            )))
        }
    }))
    .buffer_unordered(RESTORE_READS_AT_ONCE);
    let known: BTreeMap<String, Known> = reads
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .flatten()
        .collect();
    let states = known
        .iter()
        .map(|(app, k)| (app.clone(), k.state.clone()))
        .collect();
    let counts = store.replace_cluster_state(states).await?;
    Ok(Restored {
        authoritative: true,
        counts,
        known,
    })
}

/// What became of one app's copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Copied {
    /// The cluster holds the local state (or it could not, for a reason logged).
    Done,
    /// Try again later (Nomad or the store failed, or conflicts went on).
    Retry,
    /// Leadership is gone: write nothing more.
    NotLeader,
}

/// Copies changed apps' state to the cluster while this replica leads.
pub struct Mirror {
    store: Store,
    nomad: NomadClient,
    namespace: String,
    prefix: StatePrefix,
    known: BTreeMap<String, Known>,
    initialized: bool,
    too_large: BTreeSet<String>,
    leadership: CancellationToken,
}

impl Mirror {
    /// A mirror starting from what [`restore`] saw; it stops writing once `leadership` is
    /// cancelled (step-down or shutdown).
    pub fn new(
        store: Store,
        nomad: NomadClient,
        prefix: StatePrefix,
        restored: Restored,
        leadership: CancellationToken,
    ) -> Mirror {
        Mirror {
            namespace: nomad.config().namespace.clone(),
            store,
            nomad,
            prefix,
            known: restored.known,
            initialized: restored.authoritative,
            too_large: BTreeSet::new(),
            leadership,
        }
    }

    /// Copy until leadership ends: first every app with local state (those already equal to
    /// their record cost no request), then each app the store reports changed.
    pub async fn run(mut self) {
        let feed = self.store.change_feed();
        match self.store.apps_with_state().await {
            Ok(apps) => apps.iter().for_each(|app| feed.mark_dirty(app)),
            Err(error) => tracing::warn!(%error, "cluster state: cannot list local apps"),
        }
        let mut first = true;
        let mut delay = RETRY_MIN;
        loop {
            if !first {
                tokio::select! {
                    () = self.leadership.cancelled() => return,
                    () = feed.changed() => {}
                }
            }
            first = false;
            let mut failed = false;
            for app in feed.take() {
                match self.copy(&app).await {
                    Copied::Done => {}
                    Copied::Retry => {
                        failed = true;
                        feed.mark_dirty(&app);
                    }
                    Copied::NotLeader => return,
                }
            }
            if !failed && !self.initialized {
                failed = !self.mark_complete().await;
            }
            if failed {
                tokio::select! {
                    () = self.leadership.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(RETRY_MAX);
                // Come back even if nothing else changes.
                feed.wake();
            } else {
                delay = RETRY_MIN;
            }
        }
    }

    /// Write `<prefix>/meta` once every local app is copied: from then on the records are the
    /// truth for the next leader.
    async fn mark_complete(&mut self) -> bool {
        if self.leadership.is_cancelled() {
            return false;
        }
        let meta = self.prefix.meta();
        let items = BTreeMap::from([("format".to_string(), FORMAT.to_string())]);
        match self
            .nomad
            .put_variable_cas(&self.namespace, &meta, &items, 0)
            .await
        {
            // A conflict: it exists already, which is all that matters.
            Ok(_) => {
                self.initialized = true;
                true
            }
            Err(error) => {
                tracing::warn!(%error, "cluster state: cannot mark the records complete");
                false
            }
        }
    }

    /// Make the cluster's record of `app` equal its local state.
    async fn copy(&mut self, app: &str) -> Copied {
        if self.leadership.is_cancelled() {
            return Copied::NotLeader;
        }
        let state = match self.store.app_state(app).await {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(%error, %app, "cluster state: cannot read the local state");
                return Copied::Retry;
            }
        };
        let path = match self.prefix.app_path(app) {
            Ok(path) => path,
            Err(error) => {
                tracing::error!(%error, "cluster state: not kept");
                return Copied::Done;
            }
        };
        let items = if state.is_empty() {
            None
        } else {
            match encode(app, &state) {
                Ok(items) => {
                    self.too_large.remove(app);
                    Some(items)
                }
                Err(error) => {
                    // Loud, once per time it grows too large: the page shows it on the app.
                    tracing::error!(%error, "cluster state: not kept");
                    if self.too_large.insert(app.to_string()) {
                        let _ = self
                            .store
                            .add_event(Some(app), "error", &error.to_string())
                            .await;
                    }
                    return Copied::Done;
                }
            }
        };
        for _ in 0..CONFLICT_ATTEMPTS {
            let current = self.known.get(app);
            match (&items, current) {
                (None, None) => return Copied::Done,
                (Some(_), Some(k)) if k.state == state => return Copied::Done,
                _ => {}
            }
            let cas = current.map_or(0, |k| k.modify_index);
            let written = match &items {
                Some(items) => {
                    self.nomad
                        .put_variable_cas(&self.namespace, &path, items, cas)
                        .await
                }
                None => {
                    self.nomad
                        .delete_variable_cas(&self.namespace, &path, cas)
                        .await
                }
            };
            match written {
                Ok(VariableWrite::Done { modify_index }) => {
                    match &items {
                        Some(_) => self.known.insert(
                            app.to_string(),
                            Known {
                                modify_index,
                                state,
                            },
                        ),
                        None => self.known.remove(app),
                    };
                    return Copied::Done;
                }
                Ok(VariableWrite::Conflict(now)) => {
                    tracing::warn!(
                        %app,
                        expected_index = cas,
                        found_index = now.as_ref().map_or(0, |v| v.modify_index),
                        "cluster state: another writer changed this app's record"
                    );
                    // Another writer may be a new leader: only a leader overwrites it.
                    if self.leadership.is_cancelled() {
                        return Copied::NotLeader;
                    }
                    match now {
                        Some(variable) => {
                            let state = decode(&path, &variable.items).unwrap_or_default();
                            self.known.insert(
                                app.to_string(),
                                Known {
                                    modify_index: variable.modify_index,
                                    state,
                                },
                            );
                        }
                        None => {
                            self.known.remove(app);
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, %app, "cluster state: copy failed; retrying");
                    return Copied::Retry;
                }
            }
        }
        Copied::Retry
    }
}

/// The HA takeover: restore the cluster's records into `store` (before anything is applied),
/// log what came back, then spawn the [`Mirror`] until `leadership` ends.
pub async fn take_over(
    store: &Store,
    nomad: &NomadClient,
    prefix: StatePrefix,
    leadership: CancellationToken,
) -> Result<JoinHandle<()>, ClusterStateError> {
    let restored = restore(store, nomad, &prefix).await?;
    let c = &restored.counts;
    if restored.authoritative {
        tracing::info!(
            prefix = prefix.as_str(),
            apps = c.apps,
            markers = c.markers,
            owned = c.owned,
            pins = c.pins,
            once_hooks = c.once_hooks,
            post_sync_due = c.post_sync_due,
            dropped = ?c.dropped_apps,
            "restored the leader's state from the cluster"
        );
    } else {
        tracing::info!(
            prefix = prefix.as_str(),
            "no state in the cluster yet: copying the local store there"
        );
    }
    let mirror = Mirror::new(store.clone(), nomad.clone(), prefix, restored, leadership);
    Ok(tokio::spawn(mirror.run()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::nomad::NomadConfig;
    use crate::store::app_state::{MarkerRow, OnceHookRow, OwnedRow, PinRow};

    /// An app of `jobs` Nomad jobs as a real sync records it: a marker and ownership per job
    /// (SHA-256 hex hashes, 40-hex revisions, 50-character job IDs), a pin and a once hook.
    fn large_app(jobs: usize) -> AppState {
        let revision = "0123456789abcdef0123456789abcdef01234567".to_string();
        let resource = |i: usize| format!("nomad_job/default/{:0>50}", format!("job-{i}"));
        AppState {
            markers: (0..jobs)
                .map(|i| MarkerRow {
                    resource: resource(i),
                    spec_hash: format!("{i:0>64x}"),
                    live_index: 1_000_000 + i as u64,
                    revision: revision.clone(),
                    applied_at: 1_764_500_000_000,
                })
                .collect(),
            owned: (0..jobs)
                .map(|i| OwnedRow {
                    resource: resource(i),
                    recorded_at: 1_764_500_000_000,
                })
                .collect(),
            pin: Some(PinRow {
                revision: revision.clone(),
                pinned_at: 1_764_500_000_000,
            }),
            once_hooks: vec![OnceHookRow {
                phase: "pre_sync".into(),
                job: "default/seed".into(),
                revision,
                ran_at: 1_764_500_000_000,
            }],
            post_sync_due: None,
        }
    }

    fn weight(state: &AppState) -> usize {
        let items = BTreeMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("state".to_string(), serde_json::to_string(state).unwrap()),
        ]);
        serde_json::to_vec(&items).unwrap().len()
    }

    #[test]
    fn app_names_map_to_variable_paths_and_back() {
        let prefix = StatePrefix::default();
        // Every valid app name is its own segment.
        assert_eq!(
            prefix.app_path("media-overseerr2").unwrap(),
            "drover/state/apps/media-overseerr2"
        );
        // Anything else is escaped reversibly, and never leaves Nomad's alphabet.
        for name in ["a/b", "x~y", "Ünï code", "..", "a.b"] {
            let path = prefix.app_path(name).unwrap();
            let segment = path.strip_prefix("drover/state/apps/").unwrap();
            assert!(
                segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_~".contains(&b)),
                "{path}"
            );
            assert_eq!(prefix.app_of(&path).as_deref(), Some(name));
        }
        assert_eq!(escape_app("a/b"), "a~2fb");
        assert_eq!(unescape_app("a~2"), None);
        assert_eq!(unescape_app("a.b"), None);
        assert_eq!(prefix.app_of("drover/state/meta"), None);
        // Longer than Nomad's 128 characters: refused by name, not sent.
        let long = "é".repeat(30);
        let error = prefix.app_path(&long).unwrap_err().to_string();
        assert!(error.contains("longer than Nomad's 128"), "{error}");
    }

    #[test]
    fn a_prefix_must_be_a_valid_variable_path_with_room_for_apps() {
        assert!(StatePrefix::new("drover/state").is_ok());
        assert!(StatePrefix::new("team-a/drover_state~1").is_ok());
        for bad in [
            "",
            "/drover",
            "drover/",
            "a//b",
            "drover state",
            "drover.state",
        ] {
            assert!(StatePrefix::new(bad).is_err(), "{bad:?}");
        }
        assert!(StatePrefix::new(&"p".repeat(60)).is_err());
    }

    #[test]
    fn cluster_state_in_drover_yaml_needs_ha_and_a_valid_prefix() {
        let load = |extra: &str| {
            let yaml = format!("repo: {{ url: /srv/repo }}\n{extra}");
            crate::config::FileSettings::parse(&yaml, "drover.yaml")
                .map_err(|e| e.to_string())
                .and_then(|file| {
                    crate::config::Settings::from_file_settings(file, |_| None)
                        .map_err(|e| e.to_string())
                })
        };
        let ha = "ha: { lock: nomad-variable }\n";
        assert_eq!(load(ha).unwrap().cluster_state, StatePrefix::default());
        let custom = load(&format!("{ha}cluster_state: {{ prefix: team-a/drover }}\n")).unwrap();
        assert_eq!(custom.cluster_state.as_str(), "team-a/drover");
        let alone = load("cluster_state: { prefix: x }\n").unwrap_err();
        assert!(alone.contains("cluster_state needs ha:"), "{alone}");
        let bad = load(&format!("{ha}cluster_state: {{ prefix: 'a b' }}\n")).unwrap_err();
        assert!(bad.contains("Nomad variable paths allow only"), "{bad}");
    }

    #[test]
    fn a_record_round_trips_and_another_format_is_refused() {
        let state = large_app(3);
        let items = encode("web", &state).unwrap();
        assert_eq!(decode("p", &items).unwrap(), state);
        let mut other = items.clone();
        other.insert("format".into(), "drover-app-state/9".into());
        let error = decode("p", &other).unwrap_err().to_string();
        assert!(error.contains("another drover version"), "{error}");
        let mut broken = items;
        broken.insert("state".into(), "{".into());
        assert!(decode("p", &broken).is_err());
    }

    #[test]
    fn a_record_over_nomads_size_limit_is_refused_with_its_size_not_truncated() {
        // Measured: about 400 bytes per job (marker + ownership, JSON inside a JSON string), so
        // some 155 jobs fit in one app's record.
        let per_job = (weight(&large_app(101)) - weight(&large_app(1))) / 100;
        assert!((350..450).contains(&per_job), "{per_job} bytes per job");
        assert!(encode("big", &large_app(150)).is_ok());
        let state = large_app(170);
        match encode("big", &state) {
            Err(ClusterStateError::TooLarge { app, bytes, limit }) => {
                assert_eq!((app.as_str(), limit), ("big", MAX_RECORD_BYTES));
                assert_eq!(bytes, weight(&state));
            }
            other => panic!("not refused: {other:?}"),
        }
    }

    async fn devstack_client() -> (drover_devstack::Devstack, NomadClient) {
        let devstack = drover_devstack::Devstack::start(drover_devstack::DevstackConfig::default())
            .await
            .unwrap();
        let nomad = NomadClient::new(NomadConfig {
            address: devstack.nomad_url(),
            max_retries: 0,
            ..NomadConfig::default()
        })
        .unwrap();
        (devstack, nomad)
    }

    #[tokio::test]
    async fn a_cas_conflict_is_reread_and_overwritten_by_the_leader_and_left_alone_after_step_down()
    {
        let (devstack, nomad) = devstack_client().await;
        let store = Store::open_in_memory().unwrap();
        let prefix = StatePrefix::default();
        let path = prefix.app_path("web").unwrap();
        let restored = restore(&store, &nomad, &prefix).await.unwrap();
        assert!(!restored.authoritative, "an empty cluster is not the truth");
        let leadership = CancellationToken::new();
        let mut mirror = Mirror::new(
            store.clone(),
            nomad.clone(),
            prefix.clone(),
            restored,
            leadership.clone(),
        );
        store.pin("web", "r1").await.unwrap();
        assert_eq!(mirror.copy("web").await, Copied::Done);
        let first = nomad
            .read_variable("default", &path)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            decode(&path, &first.items).unwrap().pin.unwrap().revision,
            "r1"
        );

        // Another writer changes the record behind the mirror's back (a plain PUT, no CAS).
        let other = encode("web", &large_app(1)).unwrap();
        let theirs = match nomad
            .put_variable_cas("default", &path, &other, first.modify_index)
            .await
            .unwrap()
        {
            VariableWrite::Done { modify_index } => modify_index,
            conflict => panic!("{conflict:?}"),
        };
        // Still the leader: the 409 is logged, the record re-read, and ours written over it.
        store.pin("web", "r2").await.unwrap();
        assert_eq!(mirror.copy("web").await, Copied::Done);
        let now = nomad
            .read_variable("default", &path)
            .await
            .unwrap()
            .unwrap();
        assert!(now.modify_index > theirs);
        assert_eq!(
            decode(&path, &now.items).unwrap(),
            store.app_state("web").await.unwrap()
        );

        // After a step-down nothing is written, even over a conflict.
        let again = nomad
            .put_variable_cas("default", &path, &other, now.modify_index)
            .await
            .unwrap();
        assert!(matches!(again, VariableWrite::Done { .. }));
        leadership.cancel();
        store.pin("web", "r3").await.unwrap();
        assert_eq!(mirror.copy("web").await, Copied::NotLeader);
        let kept = nomad
            .read_variable("default", &path)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.items, other);
        devstack.shutdown().await;
    }

    #[tokio::test]
    async fn the_mirror_copies_local_state_up_marks_it_complete_and_deletes_an_emptied_app() {
        let (devstack, nomad) = devstack_client().await;
        let store = Store::open_in_memory().unwrap();
        let prefix = StatePrefix::new("ha/state").unwrap();
        // State from before HA: the first leader copies it up.
        store.pin("web", "r1").await.unwrap();
        store
            .record_once_hook("db", "pre_sync", "default/seed", "r1")
            .await
            .unwrap();
        let restored = restore(&store, &nomad, &prefix).await.unwrap();
        let leadership = CancellationToken::new();
        let task = tokio::spawn(
            Mirror::new(
                store.clone(),
                nomad.clone(),
                prefix.clone(),
                restored,
                leadership.clone(),
            )
            .run(),
        );
        let meta = prefix.meta();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while nomad
            .read_variable("default", &meta)
            .await
            .unwrap()
            .is_none()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never marked complete"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Complete means every app was copied before.
        for app in ["web", "db"] {
            let path = prefix.app_path(app).unwrap();
            let record = nomad
                .read_variable("default", &path)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                decode(&path, &record.items).unwrap(),
                store.app_state(app).await.unwrap()
            );
        }
        // The app's last row goes: so does its variable.
        store.unpin("web").await.unwrap();
        let web = prefix.app_path("web").unwrap();
        while nomad
            .read_variable("default", &web)
            .await
            .unwrap()
            .is_some()
        {
            assert!(tokio::time::Instant::now() < deadline, "never deleted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        leadership.cancel();
        task.await.unwrap();

        // A fresh store restored from it has the same rows; "web" left nothing behind.
        let fresh = Store::open_in_memory().unwrap();
        fresh.pin("web", "stale").await.unwrap();
        let restored = restore(&fresh, &nomad, &prefix).await.unwrap();
        assert!(restored.authoritative);
        assert_eq!(restored.counts.dropped_apps, ["web"]);
        assert_eq!(fresh.pinned("web").await.unwrap(), None);
        assert_eq!(
            fresh.app_state("db").await.unwrap(),
            store.app_state("db").await.unwrap()
        );
        devstack.shutdown().await;
    }
}
