//! Lexical retrieval: Spanish and English text analysis and an Okapi BM25 index.
//!
//! ```
//! use capibara_rag::lexical::{Analyzer, Bm25Index, Language};
//!
//! # fn demo() -> capibara_core::Result<()> {
//! let mut index = Bm25Index::new(Analyzer::new(Language::Spanish));
//! index.add("p1", "Los Panthers cedieron solo 308 puntos en defensa.")?;
//! index.add("p2", "Peyton Manning se convirtió en el primer mariscal de campo.")?;
//! let hits = index.search("¿Cuántos puntos cedieron los Panthers?", 10)?;
//! assert_eq!(hits[0].id, "p1");
//! let only_p2 = index.search_filtered("Panthers Manning", 10, |id| id == "p2")?;
//! assert_eq!(only_p2.len(), 1);
//! # Ok(()) }
//! # demo().unwrap();
//! ```
//!
//! - [`analysis`]: [`Analyzer`] — lowercasing, tokenising, Snowball stop words and stemming,
//!   accent folding;
//! - [`bm25`]: [`Bm25Index`] — documents added and removed by id, top-k search with a pre-filter,
//!   serialisable.

pub mod analysis;
pub mod bm25;
mod stopwords;

pub use analysis::{AccentFolding, Analyzer, AnalyzerConfig, Language};
pub use bm25::{Bm25Hit, Bm25Index, Bm25Params, MAX_K};
