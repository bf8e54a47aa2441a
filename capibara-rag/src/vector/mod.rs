//! Vector stores: [`ExactStore`], the embedded exact index (FAISS `IndexFlatIP` semantics: the
//! score is the inner product, higher is better, every record is compared), `HnswStore`
//! (feature `hnsw`), the same store with an HNSW graph for large collections, `FaissStore`
//! (feature `faiss`), the same store with a FAISS index (`IndexFlatIP` or `IndexHNSWFlat`), and
//! `MilvusStore` (feature `milvus`), a client of a Milvus server with the same answers.
//!
//! ```
//! use capibara_core::vector::{Filter, VectorQuery, VectorRecord, VectorStore};
//! use capibara_rag::vector::ExactStore;
//! use serde_json::json;
//!
//! # async fn demo() -> capibara_core::Result<()> {
//! let dir = tempfile::tempdir().map_err(|e| capibara_core::Error::internal(e.to_string()))?;
//! let store = ExactStore::open(dir.path())?;
//! store.ensure_collection("docs", 2).await?;
//! let record = |id: &str, vector: Vec<f32>, lang: &str| VectorRecord {
//!     id: id.into(),
//!     vector,
//!     text: format!("text of {id}"),
//!     metadata: json!({ "lang": lang }).as_object().cloned().unwrap_or_default(),
//! };
//! store.upsert("docs", vec![record("a", vec![1.0, 0.0], "es"), record("b", vec![0.6, 0.8], "en")]).await?;
//! let query = VectorQuery {
//!     vector: vec![1.0, 0.0],
//!     k: 5,
//!     filter: Some(Filter::Eq { field: "lang".into(), value: json!("en") }),
//! };
//! let hits = store.search("docs", &query).await?;
//! assert_eq!(hits[0].record.id, "b");
//! drop(store);
//! assert_eq!(ExactStore::open(dir.path())?.count("docs").await?, 2);
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! ## How it is built
//! - `collection`, `memory`: a collection in memory, column by column (one contiguous `n × d`
//!   matrix, in transparent huge pages on Linux);
//! - `filter`: [`Filter`](capibara_core::vector::Filter) evaluated against metadata, and the
//!   refusal of fields no record has;
//! - `kernels`, `topk`, `search`, `batch`: SIMD dot products (AVX-512, AVX2+FMA or portable, picked
//!   at run time), bounded top-k selection, and batched search (on AVX-512 a kernel fusing the
//!   product with the top-k selection, elsewhere one matrix product per row tile);
//! - `persist`, `snapshot`, `wal`, `codec`: crash-safe persistence, a checksummed snapshot plus a
//!   write-ahead log of checksummed entries fsynced before each write returns;
//! - `store`: what every embedded store shares, generic over the in-memory form of a collection:
//!   collections by name, limits, the directory lock, durable writes, and where work runs (scans
//!   of more than [`BLOCKING_SCAN_ROWS`] rows, and every persisted write, on tokio's blocking
//!   threads);
//! - `exact`: [`ExactStore`], the store over bare collections;
//! - `hnsw` (feature `hnsw`): `HnswStore`, the store over collections with a usearch HNSW graph
//!   (`graph`), its search strategy (`engine`) and the graph file saved beside the snapshot
//!   (`file`); the module docs hold the measurements behind the library and the defaults;
//! - `milvus` (feature `milvus`): `MilvusStore` and `MilvusConfig`; its module docs hold the
//!   mapping of records to Milvus fields, of filters to expressions, and the consistency rules;
//! - `faiss` (feature `faiss`): `FaissStore`, the store over collections with a FAISS index, flat
//!   or HNSW (`engine`, `flat`, `hnsw`, `file`, and `ffi` for the calls the `faiss` crate does not
//!   offer safely);
//! - `conformance` (feature `test-utils`): the behaviour every `VectorStore` must show.
//!
//! ## Limits
//! Per call: at most [`MAX_BATCH`] records to upsert (or ids to get or delete) and
//! [`MAX_QUERIES`] queries in `search_many`; per record: text up to [`MAX_TEXT_BYTES`] and
//! metadata up to [`MAX_METADATA_BYTES`] as JSON; dimensions `1..=`[`MAX_DIMENSION`]. The
//! limits every store shares (k, ids, names, filters) are in [`capibara_core::vector`].

#[cfg(target_arch = "x86_64")]
mod batch;
mod codec;
mod collection;
#[cfg(feature = "test-utils")]
pub mod conformance;
mod exact;
#[cfg(feature = "faiss")]
mod faiss;
pub(crate) mod filter;
#[cfg(feature = "hnsw")]
mod hnsw;
mod kernels;
mod memory;
#[cfg(feature = "milvus")]
pub mod milvus;
mod persist;
mod search;
mod snapshot;
mod store;
mod topk;
mod wal;

#[cfg(feature = "milvus")]
pub use self::milvus::{
    DEFAULT_URL as MILVUS_DEFAULT_URL, MilvusConfig, MilvusConsistency, MilvusIndex, MilvusMetric,
    MilvusStore,
};
pub use exact::{ExactStore, ExactStoreOptions};
#[cfg(feature = "faiss")]
pub use faiss::{FaissHnsw, FaissIndex, FaissStore, FaissStoreOptions};
#[cfg(feature = "hnsw")]
pub use hnsw::{HnswStore, HnswStoreOptions};

/// The most records one `upsert` call takes, and ids one `get` or `delete` call takes.
pub const MAX_BATCH: usize = 10_000;

/// The most queries one `search_many` call takes.
pub const MAX_QUERIES: usize = 10_000;

/// The longest record text, in bytes of UTF-8 (1 MiB).
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// The largest record metadata, in bytes of JSON (64 KiB).
pub const MAX_METADATA_BYTES: usize = 64 << 10;

/// The largest vector dimension.
pub const MAX_DIMENSION: usize = 8192;

/// Searches that score more rows than this (rows × queries for `search_many`) run on tokio's
/// blocking threads instead of the calling task's worker thread.
pub const BLOCKING_SCAN_ROWS: usize = 20_000;
