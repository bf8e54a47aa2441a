//! [`ExactStore`]: collections held in memory, optionally persisted to a directory, searched
//! exhaustively.

use std::path::Path;

use async_trait::async_trait;
use capibara_core::Result;
use capibara_core::vector::{ScoredRecord, VectorQuery, VectorRecord, VectorStore};

use super::collection::Collection;
use super::store::Store;
#[cfg(test)]
use super::{BLOCKING_SCAN_ROWS, MAX_BATCH, MAX_DIMENSION, MAX_METADATA_BYTES, MAX_QUERIES, MAX_TEXT_BYTES};
#[cfg(test)]
use capibara_core::Error;

/// How a persisted [`ExactStore`] manages its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactStoreOptions {
    /// A collection is compacted (rewritten as a new snapshot, with an empty write-ahead log) once
    /// its log is larger than both its snapshot and this many bytes. Default 64 MiB.
    pub compaction_min_wal_bytes: u64,
}

impl Default for ExactStoreOptions {
    fn default() -> Self {
        Self { compaction_min_wal_bytes: 64 << 20 }
    }
}

/// The embedded exact vector store: every search compares the query with every (matching)
/// record, scoring by inner product (FAISS `IndexFlatIP`); ties go to the earlier-inserted record.
///
/// [`ExactStore::in_memory`] keeps nothing on disk; [`ExactStore::open`] keeps each collection in
/// a subdirectory of a data directory (see the [module docs](super) for the layout) and returns
/// from a write only once it is durable. Cloning is cheap and shares the collections.
///
/// `get` answers in the order of the ids asked for, each id once. Filters must name metadata keys that at least one record of the collection carries, so that a
/// misspelt field is an error instead of an empty result (an empty collection answers every valid
/// query with no hits).
#[derive(Clone)]
pub struct ExactStore {
    store: Store<Collection>,
}

impl std::fmt::Debug for ExactStore {
    // The collections' contents (every vector) are left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactStore")
            .field("path", &self.store.path())
            .field("collections", &self.store.collections().unwrap_or_default())
            .finish_non_exhaustive()
    }
}

impl ExactStore {
    /// A store that keeps nothing on disk.
    pub fn in_memory() -> Self {
        Self { store: Store::in_memory(ExactStoreOptions::default()) }
    }

    /// Opens (creating it if missing) the data directory `dir` and loads every collection in it,
    /// with the default options. Blocking: it reads every snapshot.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, ExactStoreOptions::default())
    }

    /// [`ExactStore::open`] with `options`.
    ///
    /// Fails with [`Error::Unavailable`](capibara_core::Error::Unavailable) when another process
    /// (or store) has the directory open, and with [`Error::Internal`](capibara_core::Error::Internal)
    /// when a snapshot or a log header is damaged; a torn or corrupt tail of a log is cut off with a
    /// warning instead (those writes never returned success, or the disk lost them).
    pub fn open_with(dir: impl AsRef<Path>, options: ExactStoreOptions) -> Result<Self> {
        Ok(Self { store: Store::open(dir.as_ref(), options)? })
    }

    /// The data directory, for a persisted store.
    pub fn path(&self) -> Option<&Path> {
        self.store.path()
    }

    /// The names of the collections, sorted.
    pub fn collections(&self) -> Result<Vec<String>> {
        self.store.collections()
    }

    /// Compacts a persisted collection now (new snapshot, empty log); nothing for an in-memory one.
    pub async fn compact(&self, collection: &str) -> Result<()> {
        self.store.compact(collection).await
    }
}

#[async_trait]
impl VectorStore for ExactStore {
    async fn ensure_collection(&self, collection: &str, dimension: usize) -> Result<()> {
        self.store.ensure_collection(collection, dimension).await
    }
    async fn upsert(&self, collection: &str, records: Vec<VectorRecord>) -> Result<()> {
        self.store.upsert(collection, records).await
    }
    async fn search(&self, collection: &str, query: &VectorQuery) -> Result<Vec<ScoredRecord>> {
        self.store.search(collection, query).await
    }
    async fn search_many(&self, collection: &str, queries: &[VectorQuery]) -> Result<Vec<Vec<ScoredRecord>>> {
        self.store.search_many(collection, queries).await
    }
    async fn get(&self, collection: &str, ids: &[String]) -> Result<Vec<VectorRecord>> {
        self.store.get(collection, ids).await
    }
    async fn delete(&self, collection: &str, ids: &[String]) -> Result<u64> {
        self.store.delete(collection, ids).await
    }
    async fn count(&self, collection: &str) -> Result<u64> {
        self.store.count(collection).await
    }
}

#[cfg(test)]
#[path = "exact_tests.rs"]
mod tests;
