//! Retrieval over the lexical and dense indexes: hybrid fusion of their rankings.
//!
//! - [`fusion`]: [`Fusion`] — weighted reciprocal rank fusion or a weighted combination of
//!   normalised scores, chosen by configuration.
//! - [`hybrid`]: [`HybridIndex`] — one collection searched by BM25, by embeddings or both, with
//!   pre-filters and a time budget.
//! - [`rag`]: [`Retriever`] — the mini and full retrieval depths with budgets and a result cache,
//!   and guided escalation from one to the other.

pub mod fusion;
pub mod hybrid;
pub mod rag;
#[cfg(test)]
pub(crate) mod test_support;

pub use fusion::{Fuse, Fusion, FusionWeights, Ranked};
pub use hybrid::{HybridIndex, IndexedText, SearchHit, SearchMode, SearchOutcome, SearchRequest};
pub use rag::{EscalationReason, RagDepth, RagSettings, Retrieval, Retriever};
