//! Ranking metrics over relevance judgements, as BEIR and `trec_eval` define them.
//!
//! A ranked list is a query's retrieved document ids, best first. A repeated id is ignored after
//! its first appearance (it neither scores nor takes a rank). A judgement's grade is its gain;
//! grades ≤ 0 mean "not relevant".
//!
//! - nDCG@k: `DCG@k / IDCG@k` with `DCG@k = Σ_{i=1..k} gain_i / log2(i + 1)`; the ideal ranking
//!   sorts all of the query's judged grades, best first (`trec_eval`'s `ndcg_cut`, linear gains).
//! - recall@k: relevant documents in the top `k` over all relevant documents of the query.
//! - MRR@k: `1 / rank` of the first relevant document within the top `k`, 0 when there is none.
//!   Pass `k = usize::MAX` for the reciprocal rank over everything retrieved.
//!
//! A query with judgements but no relevant document scores 0 on every metric.

use std::collections::{BTreeMap, HashMap, HashSet};

use capibara_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// One query's judgements: document id → grade.
pub type Judgements = HashMap<String, i32>;

/// A run: query id → retrieved document ids, best first.
pub type Run = HashMap<String, Vec<String>>;

/// Relevance judgements of a set of queries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Qrels {
    by_query: BTreeMap<String, Judgements>,
}

impl Qrels {
    /// No judgements.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `query` judges `doc` with `grade`; returns the grade it replaces, if any.
    pub fn insert(&mut self, query: impl Into<String>, doc: impl Into<String>, grade: i32) -> Option<i32> {
        self.by_query.entry(query.into()).or_default().insert(doc.into(), grade)
    }

    /// The judgements of `query`.
    pub fn get(&self, query: &str) -> Option<&Judgements> {
        self.by_query.get(query)
    }

    /// Number of judged queries.
    pub fn len(&self) -> usize {
        self.by_query.len()
    }

    /// Whether no query is judged.
    pub fn is_empty(&self) -> bool {
        self.by_query.is_empty()
    }

    /// The judged query ids, in order.
    pub fn query_ids(&self) -> impl Iterator<Item = &str> {
        self.by_query.keys().map(String::as_str)
    }

    /// Each judged query with its judgements, in query id order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Judgements)> {
        self.by_query.iter().map(|(query, judgements)| (query.as_str(), judgements))
    }
}

/// Mean retrieval quality of a run at one cutoff.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetrievalQuality {
    /// The cutoff.
    pub k: usize,
    /// Number of queries averaged: every judged query (absent from the run = nothing retrieved).
    pub queries: usize,
    /// Mean nDCG@k.
    pub ndcg: f64,
    /// Mean recall@k.
    pub recall: f64,
    /// Mean reciprocal rank within the top `k` (MRR@k).
    pub mrr: f64,
}

/// Averages nDCG@k, recall@k and MRR@k of `run` over every query in `qrels`.
///
/// Fails with [`Error::InvalidInput`] when `k` is 0 or `qrels` is empty. Queries of the run
/// without judgements are ignored.
pub fn evaluate(qrels: &Qrels, run: &Run, k: usize) -> Result<RetrievalQuality> {
    if k == 0 {
        return Err(Error::invalid("evaluation cutoff k must be at least 1"));
    }
    if qrels.is_empty() {
        return Err(Error::invalid("no judged queries to evaluate"));
    }
    let (mut ndcg, mut recall, mut mrr) = (0.0, 0.0, 0.0);
    for (query, judgements) in qrels.iter() {
        let ranked = run.get(query).map_or(&[][..], Vec::as_slice);
        ndcg += ndcg_at_k(ranked, judgements, k);
        recall += recall_at_k(ranked, judgements, k);
        mrr += reciprocal_rank_at_k(ranked, judgements, k);
    }
    let n = qrels.len() as f64;
    Ok(RetrievalQuality { k, queries: qrels.len(), ndcg: ndcg / n, recall: recall / n, mrr: mrr / n })
}

/// nDCG@k of one ranked list (see the module docs).
pub fn ndcg_at_k<S: AsRef<str>>(ranked: &[S], judgements: &Judgements, k: usize) -> f64 {
    let dcg: f64 = top_k(ranked, k)
        .enumerate()
        .map(|(index, id)| gain(judgements.get(id).copied()) / discount(index))
        .sum();
    let mut ideal: Vec<f64> =
        judgements.values().map(|&grade| gain(Some(grade))).filter(|&g| g > 0.0).collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal.iter().take(k).enumerate().map(|(index, g)| g / discount(index)).sum();
    if idcg > 0.0 { dcg / idcg } else { 0.0 }
}

/// recall@k of one ranked list (see the module docs).
pub fn recall_at_k<S: AsRef<str>>(ranked: &[S], judgements: &Judgements, k: usize) -> f64 {
    let relevant = judgements.values().filter(|&&grade| grade > 0).count();
    if relevant == 0 {
        return 0.0;
    }
    let found = top_k(ranked, k).filter(|id| is_relevant(judgements, id)).count();
    found as f64 / relevant as f64
}

/// Reciprocal rank of the first relevant document within the top `k` (see the module docs).
pub fn reciprocal_rank_at_k<S: AsRef<str>>(ranked: &[S], judgements: &Judgements, k: usize) -> f64 {
    top_k(ranked, k).position(|id| is_relevant(judgements, id)).map_or(0.0, |index| 1.0 / (index + 1) as f64)
}

/// The first `k` distinct ids of `ranked`.
fn top_k<S: AsRef<str>>(ranked: &[S], k: usize) -> impl Iterator<Item = &str> {
    let mut seen = HashSet::new();
    ranked.iter().map(AsRef::as_ref).filter(move |id| seen.insert(*id)).take(k)
}

fn is_relevant(judgements: &Judgements, id: &str) -> bool {
    judgements.get(id).is_some_and(|&grade| grade > 0)
}

fn gain(grade: Option<i32>) -> f64 {
    f64::from(grade.unwrap_or(0).max(0))
}

/// `log2(rank + 1)` for the 0-based `index` (rank = index + 1).
fn discount(index: usize) -> f64 {
    ((index + 2) as f64).log2()
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
