//! Measuring retrieval: BEIR-layout evaluation sets, ranking metrics and latency summaries.
//!
//! ```no_run
//! use capibara_rag::eval::{self, BeirDataset, Run};
//! use capibara_rag::lexical::{Analyzer, Bm25Index, Language};
//!
//! # fn demo() -> capibara_core::Result<()> {
//! let set = BeirDataset::load("data/xquad_es")?;
//! let mut index = Bm25Index::new(Analyzer::new(Language::Spanish));
//! for doc in &set.corpus {
//!     index.add(doc.id.clone(), &doc.indexed_text())?;
//! }
//! let mut run = Run::new();
//! for query in set.judged_queries() {
//!     let hits = index.search(&query.text, 10)?;
//!     run.insert(query.id.clone(), hits.into_iter().map(|hit| hit.id).collect());
//! }
//! let quality = eval::evaluate(&set.qrels, &run, 10)?;
//! println!("nDCG@10 {:.3}  recall@10 {:.3}  MRR@10 {:.3}", quality.ndcg, quality.recall, quality.mrr);
//! # Ok(()) }
//! ```
//!
//! - [`beir`]: [`BeirDataset`] — `corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv`;
//! - [`metrics`]: nDCG@k, recall@k and MRR@k per query and averaged ([`evaluate`]);
//! - [`compare`]: [`RankedRuns`] — BM25, dense and hybrid retrieval of one set, side by side;
//! - [`latency`]: [`LatencySummary`] — p50/p90/p99/max of measured durations.

pub mod beir;
pub mod compare;
pub mod latency;
pub mod metrics;

pub use beir::{BeirDataset, BeirDocument, BeirQuery};
pub use compare::{CANDIDATES, MethodReport, RankedRuns};
pub use latency::LatencySummary;
pub use metrics::{
    Judgements, Qrels, RetrievalQuality, Run, evaluate, ndcg_at_k, recall_at_k, reciprocal_rank_at_k,
};
