//! # capibara-rag
//!
//! Retrieval for Capibara: implementations of the retrieval traits of `capibara-core` (some still to
//! come, as noted):
//!
//! - [`Embedder`]: all-MiniLM-L6-v2 run locally with candle (384-d) (remote OpenAI-compatible
//!   servers are reached through `capibara_llm::embeddings::OpenAiEmbedder`);
//! - [`VectorStore`]: an embedded exact index (inner product, persisted); HNSW (usearch) for
//!   large collections and FAISS (flat or HNSW) behind features; Milvus (to come);
//! - [`GraphStore`]: an in-process graph persisted in SQLite, and Nebula Graph (to come);
//! - chunking and ingestion of txt, md, html, json/jsonl and pdf; lexical BM25 with Spanish and English
//!   analysis; dense and hybrid retrieval (mini, full and guided); the context tools (contexts, query
//!   analysis, calculator, fact verification; to come).
//!
//! ## Modules
//! - [`ingest`]: files (txt, md, html, json/jsonl, BEIR folders, pdf) to documents, and documents to
//!   token-budgeted, overlapping [`Chunk`](ingest::Chunk)s with content-hash ids.
//! - [`lexical`]: [`Analyzer`](lexical::Analyzer) (Spanish and English analysis: Snowball stop
//!   words and stemming, accent folding) and [`Bm25Index`](lexical::Bm25Index), Okapi BM25 with
//!   top-k search and pre-filters.
//! - [`retrieval`]: hybrid fusion of lexical and dense rankings ([`Fusion`](retrieval::Fusion)),
//!   [`HybridIndex`](retrieval::HybridIndex) and the mini/full/guided [`Retriever`](retrieval::Retriever).
//! - [`eval`]: BEIR-layout evaluation sets, nDCG@k / recall@k / MRR@k, latency summaries, and
//!   BM25, dense and hybrid retrieval compared on one set ([`RankedRuns`](eval::RankedRuns)).
//! - [`vector`]: [`ExactStore`](vector::ExactStore), the embedded exact vector store (inner
//!   product, FAISS `IndexFlatIP` semantics), in memory or persisted crash-safely to a directory;
//!   `vector::HnswStore` (feature `hnsw`), the same with an HNSW graph (usearch) for large
//!   collections; `vector::FaissStore` (feature `faiss`), the same with a FAISS index
//!   (`IndexFlatIP` or `IndexHNSWFlat`); `vector::conformance` (feature `test-utils`), the
//!   behaviour every `VectorStore` must show.
//! - [`local_embed`] (feature `local-embed`): [`LocalEmbedder`](local_embed::LocalEmbedder), the
//!   embedded all-MiniLM-L6-v2 embedder.
//!
//! The traits implemented here are in `capibara-core`.

// `unsafe` is allowed only in the numeric kernels, each module saying why: `kernels` (the checked
// `gemm` call), `local_embed::kernels`, `vector::kernels` and `vector::batch` (SIMD code picked at
// run time), `vector::memory` (huge pages for the vector matrix) and `vector::faiss::ffi` (the FAISS
// calls the `faiss` crate does not offer safely).
#![deny(unsafe_code)]

pub use capibara_core::embed::Embedder;
pub use capibara_core::graph::GraphStore;
pub use capibara_core::vector::VectorStore;

pub mod eval;
pub mod ingest;
mod kernels;
pub mod lexical;
#[cfg(feature = "local-embed")]
pub mod local_embed;
pub mod retrieval;
pub mod vector;
