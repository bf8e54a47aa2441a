//! Ingestion: files to [`Document`]s, documents to [`Chunk`]s ready to embed.
//!
//! ```
//! use capibara_rag::ingest::{ChunkOptions, Chunker, Document};
//!
//! # fn demo() -> capibara_core::Result<()> {
//! let doc = Document::new(
//!     "notas/capibara.txt",
//!     "capibara",
//!     "¿Qué es la capibara? Un roedor enorme.\n\nVive cerca del agua y come hierba.",
//! );
//! let chunker = Chunker::new(ChunkOptions { max_tokens: 32, overlap_tokens: 12 })?;
//! let chunks = chunker.chunk(&doc);
//! assert_eq!(chunks.len(), 2);
//! // The second chunk starts with the last sentence of the first: the overlap.
//! assert_eq!(chunks[1].text, "Un roedor enorme.\n\nVive cerca del agua y come hierba.");
//! assert_eq!(chunks[0].id, chunker.chunk(&doc)[0].id);
//! # Ok(()) }
//! # demo().unwrap();
//! ```
//!
//! Files come in through [`load_paths`], or [`discover`] then [`load_file`] one file at a time to
//! report progress:
//!
//! ```no_run
//! use capibara_rag::ingest::{ChunkOptions, Chunker, LoadOptions, discover, load_file};
//!
//! # fn demo() -> capibara_core::Result<()> {
//! let files = discover(&["docs".into()])?;
//! let chunker = Chunker::new(ChunkOptions::default())?;
//! for (done, file) in files.iter().enumerate() {
//!     let chunks = chunker.chunk_all(&load_file(file, &LoadOptions::default())?);
//!     println!("{}/{} {}: {} chunks", done + 1, files.len(), file.relative, chunks.len());
//! }
//! # Ok(()) }
//! ```
//!
//! - [`document`]: [`Document`] and the supported [`Format`]s (`.txt`, `.md`, `.html`, `.json`,
//!   `.jsonl`, `.pdf`);
//! - [`load`]: [`discover`], [`load_file`], [`load_paths`] with [`LoadOptions`] (size limit,
//!   binary detection, BEIR folders);
//! - [`chunk`]: [`Chunker`] and [`ChunkOptions`] — paragraphs, then sentences, then words, packed to
//!   a token budget with overlap;
//! - [`tokens`]: the [`TokenCounter`] trait and [`ApproxTokenCounter`], the default estimate;
//! - [`segment`]: paragraph, sentence (Spanish-aware) and word boundaries;
//! - [`ids`]: content-hash ids of documents and chunks, so re-ingesting is idempotent;
//! - [`ledger`]: [`IngestLedger`], the record of documents and chunks the index can be rebuilt
//!   from, and [`MemoryLedger`];
//! - [`pipeline`]: [`Ingestor`] — files to chunks to the ledger and a
//!   [`HybridIndex`](crate::retrieval::HybridIndex), idempotent, recoverable after a crash.
//!
//! Markdown, HTML, JSON and PDF are read by private modules, one per format.

pub mod chunk;
pub mod document;
mod html;
pub mod ids;
mod json;
pub mod ledger;
pub mod load;
mod markdown;
mod normalize;
mod pdf;
pub mod pipeline;
pub mod segment;
pub mod tokens;

pub use chunk::{Chunk, ChunkOptions, Chunker, DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP_TOKENS, MIN_MAX_TOKENS};
pub use document::{Document, Format};
pub use ledger::{ChunkRecord, DocumentRecord, IngestLedger, MemoryLedger, PendingDocument};
pub use load::{
    BEIR_CORPUS, DEFAULT_MAX_FILE_BYTES, LoadOptions, SourceFile, discover, load_file, load_paths,
};
pub use pipeline::{
    IngestEvent, IngestFailure, IngestProgress, IngestReport, Ingestor, RecoveryReport, Silent,
};
pub use tokens::{ApproxTokenCounter, TokenCounter};
