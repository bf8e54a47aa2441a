//! BM25, dense and hybrid retrieval measured side by side on one evaluation set.
//!
//! [`RankedRuns::collect`] indexes the corpus both ways (a [`Bm25Index`] and a collection of the
//! given [`VectorStore`], filled through the given [`Embedder`]), then runs every judged query
//! once per side, timing each search the way a user would see it (the dense side includes
//! embedding the query). The rankings are kept, so any number of [`Fusion`] settings can be
//! scored afterwards without searching again ([`RankedRuns::hybrid`]); that is how fusion weights
//! are chosen on one set and only reported on another.

use std::time::{Duration, Instant};

use capibara_core::embed::Embedder;
use capibara_core::vector::{VectorQuery, VectorRecord, VectorStore};
use capibara_core::{Error, Result};
use serde::Serialize;

use super::beir::BeirDataset;
use super::latency::LatencySummary;
use super::metrics::{Qrels, RetrievalQuality, Run, evaluate};
use crate::lexical::{Analyzer, Bm25Index, Bm25Params};
use crate::retrieval::{Fuse, Fusion, Ranked};

/// How deep each side searches; recall@100 needs at least 100.
pub const CANDIDATES: usize = 100;
/// Texts per embedding call while indexing the corpus.
const EMBED_BATCH: usize = 64;
/// Records per upsert while indexing the corpus.
const UPSERT_BATCH: usize = 1_000;

/// One judged query's two rankings (best first, [`CANDIDATES`] deep) and how long each took.
#[derive(Debug, Clone)]
struct QueryRankings {
    query: String,
    lexical: Vec<Ranked>,
    dense: Vec<Ranked>,
    lexical_time: Duration,
    dense_time: Duration,
}

/// The rankings of every judged query of a set by both methods, ready to be scored.
#[derive(Debug, Clone)]
pub struct RankedRuns {
    qrels: Qrels,
    queries: Vec<QueryRankings>,
    /// Time to analyse and index the corpus for BM25.
    pub lexical_index_time: Duration,
    /// Time to embed and store the corpus.
    pub dense_index_time: Duration,
    /// Documents indexed.
    pub documents: usize,
}

/// The quality and latency of one method on one set.
#[derive(Debug, Clone, Serialize)]
pub struct MethodReport {
    /// `bm25`, `dense` or `hybrid`.
    pub method: &'static str,
    /// nDCG@10, recall@10 and MRR@10.
    pub at_10: RetrievalQuality,
    /// recall@100.
    pub recall_at_100: f64,
    /// Per-query search latency (the hybrid latency is both searches plus fusion).
    pub latency: LatencySummary,
}

impl RankedRuns {
    /// Indexes `set` both ways and runs every judged query on both sides.
    ///
    /// The dense side writes the corpus into `collection` of `store` (created with the
    /// embedder's dimension; an existing collection of another dimension is an error).
    pub async fn collect(
        set: &BeirDataset,
        analyzer: Analyzer,
        bm25: Bm25Params,
        embedder: &dyn Embedder,
        store: &dyn VectorStore,
        collection: &str,
    ) -> Result<Self> {
        if set.corpus.is_empty() {
            return Err(Error::invalid("the evaluation set has no documents"));
        }
        let started = Instant::now();
        let mut index = Bm25Index::with_params(analyzer, bm25)?;
        for doc in &set.corpus {
            index.add(doc.id.clone(), &doc.indexed_text())?;
        }
        let lexical_index_time = started.elapsed();

        let started = Instant::now();
        store.ensure_collection(collection, embedder.dimension()).await?;
        let mut records = Vec::with_capacity(UPSERT_BATCH);
        for docs in set.corpus.chunks(EMBED_BATCH) {
            let texts: Vec<String> = docs.iter().map(|doc| doc.indexed_text()).collect();
            let vectors = embedder.embed(&texts).await?;
            for ((doc, text), vector) in docs.iter().zip(texts).zip(vectors) {
                records.push(VectorRecord {
                    id: doc.id.clone(),
                    vector,
                    text,
                    metadata: doc.metadata.clone(),
                });
            }
            if records.len() >= UPSERT_BATCH {
                store.upsert(collection, std::mem::take(&mut records)).await?;
            }
        }
        if !records.is_empty() {
            store.upsert(collection, records).await?;
        }
        let dense_index_time = started.elapsed();

        let mut queries = Vec::new();
        for query in set.judged_queries() {
            let started = Instant::now();
            let lexical = index
                .search(&query.text, CANDIDATES)?
                .into_iter()
                .map(|hit| Ranked::new(hit.id, hit.score))
                .collect();
            let lexical_time = started.elapsed();

            let started = Instant::now();
            let vector = embedder.embed(std::slice::from_ref(&query.text)).await?.pop().ok_or_else(|| {
                Error::internal(format!("the embedder returned no vector for query {}", query.id))
            })?;
            let hits = store.search(collection, &VectorQuery { vector, k: CANDIDATES, filter: None }).await?;
            let dense = hits.into_iter().map(|hit| Ranked::new(hit.record.id, hit.score)).collect();
            let dense_time = started.elapsed();
            queries.push(QueryRankings { query: query.id.clone(), lexical, dense, lexical_time, dense_time });
        }
        Ok(Self {
            qrels: set.qrels.clone(),
            queries,
            lexical_index_time,
            dense_index_time,
            documents: set.corpus.len(),
        })
    }

    /// Number of judged queries run.
    pub fn queries(&self) -> usize {
        self.queries.len()
    }

    /// BM25 alone.
    pub fn lexical(&self) -> Result<MethodReport> {
        self.report("bm25", |q| (q.lexical.clone(), q.lexical_time))
    }

    /// Dense retrieval alone.
    pub fn dense(&self) -> Result<MethodReport> {
        self.report("dense", |q| (q.dense.clone(), q.dense_time))
    }

    /// Both sides fused with `fusion`; fails when its parameters are invalid.
    pub fn hybrid(&self, fusion: &Fusion) -> Result<MethodReport> {
        fusion.validate()?;
        self.report("hybrid", |q| {
            let started = Instant::now();
            let fused = fusion.fuse(&q.lexical, &q.dense, CANDIDATES);
            (fused, q.lexical_time + q.dense_time + started.elapsed())
        })
    }

    fn report(
        &self,
        method: &'static str,
        rank: impl Fn(&QueryRankings) -> (Vec<Ranked>, Duration),
    ) -> Result<MethodReport> {
        let mut run = Run::new();
        let mut latencies = Vec::with_capacity(self.queries.len());
        for query in &self.queries {
            let (ranked, took) = rank(query);
            latencies.push(took);
            run.insert(query.query.clone(), ranked.into_iter().map(|hit| hit.id).collect());
        }
        let latency = LatencySummary::from_durations(&latencies)
            .ok_or_else(|| Error::invalid("the evaluation set has no judged queries"))?;
        Ok(MethodReport {
            method,
            at_10: evaluate(&self.qrels, &run, 10)?,
            recall_at_100: evaluate(&self.qrels, &run, CANDIDATES)?.recall,
            latency,
        })
    }
}

impl std::fmt::Display for MethodReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let latency = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
        write!(
            f,
            "{:<7} nDCG@10 {:.4}  recall@10 {:.4}  recall@100 {:.4}  MRR@10 {:.4}  latency p50 {} p99 {} max {}",
            self.method,
            self.at_10.ndcg,
            self.at_10.recall,
            self.recall_at_100,
            self.at_10.mrr,
            latency(self.latency.p50),
            latency(self.latency.p99),
            latency(self.latency.max),
        )
    }
}
