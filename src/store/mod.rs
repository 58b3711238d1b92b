//! SQLite history store: sync history, last-applied markers, ownership, pins, events.
//!
//! TEMPORARY SIGNATURE STUB in main (the source-store helper's branch replaces this file).
#![allow(missing_docs, clippy::unused_async, dead_code)]

use std::path::Path;
use std::time::SystemTime;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Other(String),
}

#[derive(Debug, Clone)]
pub struct SyncRecord {
    pub id: i64,
    pub app: String,
    pub revision: String,
    pub started_at: SystemTime,
    pub finished_at: Option<SystemTime>,
    pub result: Option<String>,
    pub message: Option<String>,
    pub changes: Vec<String>,
    pub trigger: String,
}

#[derive(Debug, Clone)]
pub struct Marker {
    pub app: String,
    pub resource: String,
    pub spec_hash: String,
    pub live_index: u64,
    pub revision: String,
    pub applied_at: SystemTime,
}

#[derive(Debug, Clone)]
pub struct EventRecord {
    pub id: i64,
    pub app: Option<String>,
    pub at: SystemTime,
    pub level: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Store;

impl Store {
    pub fn open(_path: &Path) -> Result<Store, StoreError> {
        Ok(Store)
    }
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Ok(Store)
    }
    pub async fn begin_sync(
        &self,
        _app: &str,
        _revision: &str,
        _trigger: &str,
    ) -> Result<i64, StoreError> {
        Ok(0)
    }
    pub async fn finish_sync(
        &self,
        _id: i64,
        _result: &str,
        _message: Option<&str>,
        _changes: &[String],
    ) -> Result<(), StoreError> {
        Ok(())
    }
    pub async fn unfinished_syncs(&self) -> Result<Vec<SyncRecord>, StoreError> {
        Ok(vec![])
    }
    pub async fn history(&self, _app: &str, _limit: usize) -> Result<Vec<SyncRecord>, StoreError> {
        Ok(vec![])
    }
    pub async fn last_sync(&self, _app: &str) -> Result<Option<SyncRecord>, StoreError> {
        Ok(None)
    }
    pub async fn set_marker(&self, _marker: &Marker) -> Result<(), StoreError> {
        Ok(())
    }
    pub async fn markers(&self, _app: &str) -> Result<Vec<Marker>, StoreError> {
        Ok(vec![])
    }
    pub async fn all_markers(&self) -> Result<Vec<Marker>, StoreError> {
        Ok(vec![])
    }
    pub async fn delete_marker(&self, _app: &str, _resource: &str) -> Result<(), StoreError> {
        Ok(())
    }
    pub async fn record_owned(&self, _app: &str, _resource: &str) -> Result<(), StoreError> {
        Ok(())
    }
    pub async fn owned(&self, _app: &str) -> Result<Vec<String>, StoreError> {
        Ok(vec![])
    }
    pub async fn owner_of(&self, _resource: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    pub async fn forget_owned(&self, _app: &str, _resource: &str) -> Result<(), StoreError> {
        Ok(())
    }
    pub async fn known_apps(&self) -> Result<Vec<String>, StoreError> {
        Ok(vec![])
    }
    pub async fn pin(&self, _app: &str, _revision: &str) -> Result<(), StoreError> {
        Ok(())
    }
    pub async fn unpin(&self, _app: &str) -> Result<bool, StoreError> {
        Ok(false)
    }
    pub async fn pinned(&self, _app: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    pub async fn add_event(
        &self,
        _app: Option<&str>,
        _level: &str,
        _message: &str,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    pub async fn events(
        &self,
        _app: Option<&str>,
        _limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        Ok(vec![])
    }
}
