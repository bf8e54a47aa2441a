//! [`FaissStore`]: the embedded vector store with a FAISS index (`IndexFlatIP` or
//! `IndexHNSWFlat`) over the same records, files and rules as [`ExactStore`](super::ExactStore)
//! (feature `faiss`).
//!
//! Inside: `engine` (the collection with its index, and how a query is answered), `flat` (the
//! `IndexFlatIP` mirroring the collection's rows), `hnsw` (the `IndexHNSWFlat` and its node ↔
//! slot maps), `file` (the HNSW graph saved beside the snapshot), `ffi` (the FAISS calls the
//! `faiss` crate does not offer safely).

mod engine;
mod ffi;
mod file;
mod flat;
mod hnsw;

use std::path::Path;

use async_trait::async_trait;
use capibara_core::vector::{ScoredRecord, VectorQuery, VectorRecord, VectorStore};
use capibara_core::{Error, Result};

use super::store::{Store, StoreOptions};
use engine::FaissCollection;

/// The FAISS index a [`FaissStore`] keeps for each collection; both rank by inner product.
#[derive(Debug, Clone, PartialEq)]
pub enum FaissIndex {
    /// `IndexFlatIP`: exact search, every row compared with the query.
    Flat,
    /// `IndexHNSWFlat` with the inner-product metric: approximate search in an HNSW graph.
    Hnsw(FaissHnsw),
}

impl FaissIndex {
    /// `IndexHNSWFlat` with the default parameters ([`FaissHnsw::default`]).
    pub fn hnsw() -> Self {
        Self::Hnsw(FaissHnsw::default())
    }
}

/// The parameters of an `IndexHNSWFlat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaissHnsw {
    /// Links per node (HNSW `M`), 2 to 255. Default 16.
    pub m: usize,
    /// Candidates weighed when a node is linked in (`efConstruction`). Default 200.
    pub ef_construction: usize,
    /// Candidates kept while searching (`efSearch`); FAISS keeps at least `k`. Default 64.
    pub ef_search: usize,
}

impl Default for FaissHnsw {
    fn default() -> Self {
        Self { m: 16, ef_construction: 200, ef_search: 64 }
    }
}

/// How a [`FaissStore`] indexes, searches and persists its collections.
#[derive(Debug, Clone, PartialEq)]
pub struct FaissStoreOptions {
    /// The index of every collection.
    pub index: FaissIndex,
    /// `Hnsw`: collections with fewer records than this are scanned exactly and have no graph.
    /// Default 2,000.
    pub exact_below_rows: usize,
    /// `Hnsw`: a filtered search scans the matching records exactly when fewer than this many
    /// match. Default 5,000.
    pub filter_exact_rows: usize,
    /// `Hnsw`: a filtered search also scans the `m` matching records of a collection of `n`
    /// exactly when `m² < filter_scan_factor × n` (where the scan costs less than a filtered
    /// graph search), as `HnswStoreOptions` does. Default 3,300.
    pub filter_scan_factor: f64,
    /// `Hnsw`: the graph is rebuilt once the records replaced or deleted since it was built exceed
    /// this share of its nodes. Default 0.2.
    pub rebuild_removed_share: f64,
    /// As [`ExactStoreOptions::compaction_min_wal_bytes`](super::ExactStoreOptions): compaction
    /// once the log is larger than both its snapshot and this many bytes. Default 64 MiB.
    pub compaction_min_wal_bytes: u64,
}

impl FaissStoreOptions {
    /// The default options with `index`.
    pub fn new(index: FaissIndex) -> Self {
        Self {
            index,
            exact_below_rows: 2_000,
            filter_exact_rows: 5_000,
            filter_scan_factor: 3_300.0,
            rebuild_removed_share: 0.2,
            compaction_min_wal_bytes: 64 << 20,
        }
    }

    fn validate(&self) -> Result<()> {
        if let FaissIndex::Hnsw(params) = &self.index {
            if !(2..=255).contains(&params.m) {
                return Err(Error::invalid(format!(
                    "FAISS HNSW m must be between 2 and 255, got {}",
                    params.m
                )));
            }
            if params.ef_construction == 0 || params.ef_search == 0 {
                return Err(Error::invalid("FAISS HNSW ef_construction and ef_search must be at least 1"));
            }
        }
        if self.filter_scan_factor.is_nan() || self.filter_scan_factor < 0.0 {
            return Err(Error::invalid("FAISS filter_scan_factor must be at least 0"));
        }
        if self.rebuild_removed_share.is_nan() || self.rebuild_removed_share <= 0.0 {
            return Err(Error::invalid("FAISS rebuild_removed_share must be above 0"));
        }
        Ok(())
    }
}

impl StoreOptions for FaissStoreOptions {
    fn compaction_min_wal_bytes(&self) -> u64 {
        self.compaction_min_wal_bytes
    }
}

/// The embedded vector store with a FAISS index: `IndexFlatIP` (exact) or `IndexHNSWFlat`
/// (approximate), inner-product scores (higher is better, the true inner product of the stored
/// vector and the query).
///
/// It behaves as [`ExactStore`](super::ExactStore) does — the same validation, limits, unknown
/// filter fields refused, replacement by id, `get` order, on-disk layout of records and crash
/// safety — with FAISS doing the vector search. Filters apply before top-k: a search returns
/// `min(k, matching records)` hits, never fewer. With `Hnsw` a large collection's top `k` is
/// approximate, and small collections and rare filter matches are scanned exactly, as
/// `HnswStore` (feature `hnsw`) does.
///
/// ```
/// use capibara_core::vector::{VectorQuery, VectorRecord, VectorStore};
/// use capibara_rag::vector::{FaissIndex, FaissStore};
///
/// # async fn demo() -> capibara_core::Result<()> {
/// let dir = tempfile::tempdir().map_err(|e| capibara_core::Error::internal(e.to_string()))?;
/// let store = FaissStore::open(dir.path(), FaissIndex::Flat)?;
/// store.ensure_collection("docs", 2).await?;
/// let record = |id: &str, vector: Vec<f32>| VectorRecord {
///     id: id.into(),
///     vector,
///     text: String::new(),
///     metadata: Default::default(),
/// };
/// store.upsert("docs", vec![record("a", vec![1.0, 0.0]), record("b", vec![0.6, 0.8])]).await?;
/// let hits = store.search("docs", &VectorQuery { vector: vec![0.0, 1.0], k: 1, filter: None }).await?;
/// assert_eq!(hits[0].record.id, "b");
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
///
/// # How a query is answered
/// FAISS proposes rows and the exact kernels score them again, so scores are true inner products
/// and ties among them go to the earlier-inserted record, as in `ExactStore` (which rows FAISS
/// proposes when several tie for the k-th place is FAISS's choice).
/// - `Flat`: an unfiltered query is searched in the `IndexFlatIP` (`search_many` sends its
///   unfiltered queries in one call, a matrix product in FAISS); a filtered query scans the
///   matching records exactly (FAISS's flat search with a selector visits every row anyway).
/// - `Hnsw`: a filter is evaluated over every record first; few matches are scanned exactly, many
///   are searched in the graph with a bitmap `IDSelector` of their nodes; when the graph proposes
///   fewer than `k` while at least `k` match, it is asked for more, then the matches are scanned.
///
/// # Threads
/// FAISS runs its batch searches and graph builds on OpenMP threads and its matrix products on
/// OpenBLAS threads. On a small machine where searches already run in parallel, set
/// `OMP_NUM_THREADS=1` and `OPENBLAS_NUM_THREADS=1` in the environment (read once, at start).
///
/// # Persistence and memory
/// Records live in the snapshot and write-ahead log of `ExactStore` (the source of truth, the
/// same files and crash safety). FAISS keeps its own copy of the vectors, so an index roughly
/// doubles a collection's vector memory. A `Flat` index is rebuilt from the records when a
/// collection is opened: it is a copy of the vectors (0.23 s to reopen 100,000 × 384 against
/// 0.10 s for the snapshot alone), cheaper than writing and reading another 153.6 MB file. An HNSW
/// graph is saved beside the snapshot at each compaction and loaded on open when it matches the
/// snapshot (0.31 s in all for 100,000 × 384, where building it took 260 s on 2 cores), the log
/// written since then replayed into it; a missing, stale or damaged graph (or one built with other
/// `m` / `ef_construction`) is rebuilt from the records. Measured by `benches/vector/run-exact`
/// (`benches/results/vector-exact-2026-11-24.md`), which also compares the graph's QPS and recall
/// with `HnswStore`'s.
#[derive(Clone)]
pub struct FaissStore {
    store: Store<FaissCollection>,
}

impl std::fmt::Debug for FaissStore {
    // The collections' contents are left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaissStore")
            .field("path", &self.store.path())
            .field("collections", &self.store.collections().unwrap_or_default())
            .finish_non_exhaustive()
    }
}

impl FaissStore {
    /// A store that keeps nothing on disk, with `index` and the default options (invalid input
    /// when the index parameters are out of range).
    pub fn in_memory(index: FaissIndex) -> Result<Self> {
        Self::in_memory_with(FaissStoreOptions::new(index))
    }

    /// A store that keeps nothing on disk, with `options`.
    pub fn in_memory_with(options: FaissStoreOptions) -> Result<Self> {
        options.validate()?;
        Ok(Self { store: Store::in_memory(options) })
    }

    /// Opens (creating it if missing) the data directory `dir` with `index` and the default
    /// options, loading every collection and building or loading its index. Blocking.
    pub fn open(dir: impl AsRef<Path>, index: FaissIndex) -> Result<Self> {
        Self::open_with(dir, FaissStoreOptions::new(index))
    }

    /// [`FaissStore::open`] with `options`; fails as
    /// [`ExactStore::open_with`](super::ExactStore::open_with) does.
    pub fn open_with(dir: impl AsRef<Path>, options: FaissStoreOptions) -> Result<Self> {
        options.validate()?;
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

    /// Compacts a persisted collection now: a new snapshot, an empty log, and an HNSW graph saved
    /// beside them. Nothing for an in-memory store.
    pub async fn compact(&self, collection: &str) -> Result<()> {
        self.store.compact(collection).await
    }
}

#[async_trait]
impl VectorStore for FaissStore {
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
