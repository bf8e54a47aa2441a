//! [`HnswStore`]: the embedded vector store for large collections, an HNSW graph (usearch) over
//! the same records, files and rules as [`ExactStore`](super::ExactStore) (feature `hnsw`).
//!
//! The measurements behind the library, the defaults and the persistence are on [`HnswStore`].
//! Inside: `graph` (usearch and the node ↔ slot maps), `engine` (the collection with its graph,
//! and how a query is answered), `file` (the graph saved beside the snapshot).

mod engine;
mod file;
mod graph;

use std::path::Path;

use async_trait::async_trait;
use capibara_core::vector::{ScoredRecord, VectorQuery, VectorRecord, VectorStore};
use capibara_core::{Error, Result};

use super::store::{Store, StoreOptions};
use engine::Indexed;

/// How an [`HnswStore`] builds and searches its graphs, and manages its files.
#[derive(Debug, Clone, PartialEq)]
pub struct HnswStoreOptions {
    /// Links per node in the graph (HNSW `M`, usearch connectivity), 2 to 255. Default 16.
    pub m: usize,
    /// Candidates weighed when a node is linked in (`ef_construction`). Default 200.
    pub ef_construction: usize,
    /// Candidates kept while searching (`ef`); a search for `k` keeps at least `k`. Default 64.
    pub ef_search: usize,
    /// Collections with fewer records than this are scanned exactly and have no graph (building
    /// one costs more than it saves). Default 2,000.
    pub exact_below_rows: usize,
    /// A filtered search scans the matching records exactly when fewer than this many match,
    /// instead of searching the graph. Default 5,000.
    pub filter_exact_rows: usize,
    /// A filtered search also scans the `m` matching records of a collection of `n` exactly when
    /// `m² < filter_scan_factor × n`. usearch's filtered search slows down as the matching share
    /// falls (≈ its unfiltered time ÷ share) while a scan costs ≈ `m` rows, so this is where the
    /// two cost the same. Default 3,300, measured on 100,000 × 384 (`benches/vector/run`): 20,000
    /// matches are scanned at 556 QPS against 459 in the graph, 33,000 at 331 against 763 (break
    /// even near 18,000); at 3 % the graph also falls to recall 0.93. 0 leaves only
    /// `filter_exact_rows`.
    pub filter_scan_factor: f64,
    /// The graph is rebuilt once the records replaced or deleted since it was built exceed this
    /// share of its nodes. Default 0.2.
    pub rebuild_removed_share: f64,
    /// As [`ExactStoreOptions::compaction_min_wal_bytes`](super::ExactStoreOptions): compaction
    /// once the log is larger than both its snapshot and this many bytes. Default 64 MiB.
    pub compaction_min_wal_bytes: u64,
}

impl Default for HnswStoreOptions {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
            exact_below_rows: 2_000,
            filter_exact_rows: 5_000,
            filter_scan_factor: 3_300.0,
            rebuild_removed_share: 0.2,
            compaction_min_wal_bytes: 64 << 20,
        }
    }
}

impl StoreOptions for HnswStoreOptions {
    fn compaction_min_wal_bytes(&self) -> u64 {
        self.compaction_min_wal_bytes
    }
}

impl HnswStoreOptions {
    fn validate(&self) -> Result<()> {
        if !(2..=255).contains(&self.m) {
            return Err(Error::invalid(format!("HNSW m must be between 2 and 255, got {}", self.m)));
        }
        if self.ef_construction == 0 || self.ef_search == 0 {
            return Err(Error::invalid("HNSW ef_construction and ef_search must be at least 1"));
        }
        if self.filter_scan_factor.is_nan() || self.filter_scan_factor < 0.0 {
            return Err(Error::invalid("HNSW filter_scan_factor must be at least 0"));
        }
        if self.rebuild_removed_share.is_nan() || self.rebuild_removed_share <= 0.0 {
            return Err(Error::invalid("HNSW rebuild_removed_share must be above 0"));
        }
        Ok(())
    }
}

/// The embedded vector store for large collections: inner-product scores (higher is better,
/// the true inner product of the stored vector and the query), approximate top-k from an HNSW
/// graph, exact answers for small collections and rare filter matches.
///
/// It behaves as [`ExactStore`](super::ExactStore) does — the same validation, limits, unknown
/// filter fields refused, replacement by id, `get` order, on-disk layout of records and crash
/// safety — except that a large collection's top `k` is approximate (recall@10 above 0.99 on
/// clustered embeddings with the defaults). Filters apply before top-k: a search returns
/// `min(k, matching records)` hits, never fewer.
///
/// The graph follows every write in memory (replaced and deleted records' nodes are removed and
/// skipped; the graph is rebuilt when they pass [`HnswStoreOptions::rebuild_removed_share`]) and
/// is saved at each compaction. Writes and large searches run on tokio's blocking threads.
///
/// ```
/// use capibara_core::vector::{VectorQuery, VectorRecord, VectorStore};
/// use capibara_rag::vector::HnswStore;
///
/// # async fn demo() -> capibara_core::Result<()> {
/// let dir = tempfile::tempdir().map_err(|e| capibara_core::Error::internal(e.to_string()))?;
/// let store = HnswStore::open(dir.path())?;
/// store.ensure_collection("docs", 2).await?;
/// // More records than `exact_below_rows` (2,000): searches go through the graph.
/// let records = (0..5_000).map(|i| {
///     let angle = i as f32 / 1_000.0;
///     let vector = vec![angle.cos(), angle.sin()];
///     VectorRecord { id: format!("r{i}"), vector, text: String::new(), metadata: Default::default() }
/// });
/// store.upsert("docs", records.collect()).await?;
/// let hits = store.search("docs", &VectorQuery { vector: vec![1.0, 0.0], k: 3, filter: None }).await?;
/// assert_eq!(hits[0].record.id, "r0");
/// store.compact("docs").await?; // saves the graph: reopening loads it
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
///
/// # How a query is answered
/// - a collection of fewer than [`HnswStoreOptions::exact_below_rows`] records is scanned exactly,
///   as `ExactStore` does (it has no graph);
/// - a filter is evaluated over every record first; when few match (fewer than
///   [`HnswStoreOptions::filter_exact_rows`], or at most `k`, or few enough that scanning them
///   costs less than a filtered graph search: [`HnswStoreOptions::filter_scan_factor`]) those
///   records are scanned exactly, otherwise the graph is searched with the matching records as a
///   predicate;
/// - the graph proposes candidates, which are scored exactly and ranked as `ExactStore` ranks;
///   when it proposes fewer than `k` while at least `k` match, it is asked for four times as many
///   (up to three times), and as a last resort the matching records are scanned.
///
/// # Why usearch
/// Chosen over the pure-Rust `hnsw_rs` by measurement (`benches/vector/run`, report in
/// `benches/results/vector-ann-2026-11-24.md`): 100,000 clustered unit vectors of 384 floats
/// (1,000 centres, noise 1.2), 1,000 queries, k = 10, M = 16, ef_construction = 200, graphs built
/// on 2 threads and searched one query at a time on 1 thread, recall against the exact top 10:
///
/// | ef | hnsw_rs 0.3.5 QPS / recall@10 | usearch 2.26 QPS / recall@10 |
/// |---|---|---|
/// | 16 | 2,427 / 0.959 | 5,095 / 0.919 |
/// | 32 | 1,620 / 0.998 | 3,485 / 0.995 |
/// | 64 | 985 / 1.000 | 2,210 / 1.000 |
/// | 128 | 506 / 1.000 | 1,151 / 1.000 |
/// | build | 149 s | 67 s |
/// | graph save / load | 0.45 / 1.15 s | 0.11 / 0.12 s |
///
/// At recall@10 ≥ 0.95 usearch answers 1.44× more queries per second (3,485 at ef 32 against
/// 2,427 at ef 16), 2.1–2.3× more at equal `ef`; it builds 2.2× faster and removes nodes and
/// filters during the search natively. The default `ef_search` of 64 leaves room for harder data
/// than the benchmark's (recall 1.000 there, 2,210 QPS, against about 60 for an exact scan).
///
/// # Persistence
/// Records live in the snapshot and write-ahead log of `ExactStore` (the source of truth, the
/// same files and crash safety). The graph is saved beside the snapshot at each compaction,
/// tagged with the snapshot's generation, and loaded on open when it matches: 0.12 s for the
/// graph of 100,000 × 384 against 67 s to build it. Writes logged since that snapshot are then
/// replayed into the loaded graph. A missing, stale or damaged graph file (or one built with other
/// `m` / `ef_construction`) is ignored and the graph built from the records. Memory: usearch keeps
/// its own copy of the vectors, so a graph roughly doubles a collection's vector memory.
#[derive(Clone)]
pub struct HnswStore {
    store: Store<Indexed>,
}

impl std::fmt::Debug for HnswStore {
    // The collections' contents are left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswStore")
            .field("path", &self.store.path())
            .field("collections", &self.store.collections().unwrap_or_default())
            .finish_non_exhaustive()
    }
}

impl HnswStore {
    /// A store that keeps nothing on disk, with the default options.
    pub fn in_memory() -> Self {
        Self { store: Store::in_memory(HnswStoreOptions::default()) }
    }

    /// A store that keeps nothing on disk, with `options` (invalid input when they are out of
    /// range).
    pub fn in_memory_with(options: HnswStoreOptions) -> Result<Self> {
        options.validate()?;
        Ok(Self { store: Store::in_memory(options) })
    }

    /// Opens (creating it if missing) the data directory `dir` with the default options, loading
    /// every collection and its graph (or building the graph). Blocking.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, HnswStoreOptions::default())
    }

    /// [`HnswStore::open`] with `options`; fails as
    /// [`ExactStore::open_with`](super::ExactStore::open_with) does.
    pub fn open_with(dir: impl AsRef<Path>, options: HnswStoreOptions) -> Result<Self> {
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

    /// Compacts a persisted collection now: a new snapshot, an empty log, and the graph saved
    /// beside them (so that reopening loads exactly this graph). Nothing for an in-memory store.
    pub async fn compact(&self, collection: &str) -> Result<()> {
        self.store.compact(collection).await
    }
}

#[async_trait]
impl VectorStore for HnswStore {
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
