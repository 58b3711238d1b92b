//! A revision with its apps loaded, and the revisions apps are pinned to (rollback).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Loaded, LoadedApp, ResourceId};
use crate::source::Revision;

/// A revision and the apps loaded from it.
#[derive(Debug, Clone)]
pub struct DesiredRevision {
    /// The commit.
    pub revision: Arc<Revision>,
    /// Its apps (each valid or with its errors).
    pub loaded: Arc<Loaded>,
}

impl DesiredRevision {
    /// Load every app of a revision.
    pub fn load(revision: Arc<Revision>) -> DesiredRevision {
        Self::load_with_owners(revision, &BTreeMap::new())
    }

    /// Load every app of a revision; a resource two apps declare stays with the app drover
    /// created it for (see [`super::load_with_owners`]).
    pub fn load_with_owners(
        revision: Arc<Revision>,
        recorded_owners: &BTreeMap<ResourceId, String>,
    ) -> DesiredRevision {
        Self::load_after(revision, recorded_owners, None)
    }

    /// [`Self::load_with_owners`], reloading only the app folders that changed since `previous`
    /// (see [`super::load_after`]).
    pub fn load_after(
        revision: Arc<Revision>,
        recorded_owners: &BTreeMap<ResourceId, String>,
        previous: Option<&DesiredRevision>,
    ) -> DesiredRevision {
        let loaded = Arc::new(super::load_after(
            &revision,
            recorded_owners,
            previous.map(|p| (p.revision.as_ref(), p.loaded.as_ref())),
        ));
        DesiredRevision { revision, loaded }
    }

    /// One app.
    pub fn app(&self, name: &str) -> Option<&LoadedApp> {
        self.loaded.app(name)
    }
}

/// Resolves pinned revisions (rollback): a commit ID → its tree.
pub type RevisionReader = Arc<dyn Fn(&str) -> Option<Arc<Revision>> + Send + Sync>;

/// The revision an app is pinned to, loaded once and kept while the pin stays.
#[derive(Debug, Default)]
pub struct PinnedRevisions {
    last: Option<DesiredRevision>,
}

impl PinnedRevisions {
    /// The revision `pin` (a commit ID or its prefix) names: the one loaded last if it matches,
    /// else read with `reader` off the async runtime and loaded. `None` if it cannot be read.
    pub async fn load(&mut self, reader: &RevisionReader, pin: &str) -> Option<DesiredRevision> {
        if let Some(last) = &self.last
            && last.revision.id.starts_with(pin)
        {
            return Some(last.clone());
        }
        let (reader, wanted) = (reader.clone(), pin.to_string());
        let revision = tokio::task::spawn_blocking(move || reader(&wanted))
            .await
            .ok()
            .flatten()?;
        let loaded = DesiredRevision::load(revision);
        self.last = Some(loaded.clone());
        Some(loaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_pinned_revision_is_read_once_while_the_pin_stays() {
        let reads = Arc::new(AtomicUsize::new(0));
        let counter = reads.clone();
        let reader: RevisionReader = Arc::new(move |id: &str| {
            counter.fetch_add(1, Ordering::SeqCst);
            (id.len() >= 4 && "abcdef12".starts_with(id))
                .then(|| Arc::new(Revision::from_files("abcdef12", BTreeMap::new())))
        });
        let mut pinned = PinnedRevisions::default();
        let first = pinned.load(&reader, "abcd").await.expect("readable");
        assert_eq!(first.revision.id, "abcdef12");
        let again = pinned.load(&reader, "abcdef").await.expect("cached");
        assert_eq!(again.revision.id, "abcdef12");
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        assert!(pinned.load(&reader, "9999").await.is_none());
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }
}
