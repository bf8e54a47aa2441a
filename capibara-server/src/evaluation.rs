//! `capibara eval --dataset DIR`: BM25, dense and hybrid retrieval quality and latency on a
//! BEIR-layout folder, with the embedding model the configuration names.
//!
//! The dense side indexes the corpus into an in-memory exact store, so the numbers measure the
//! embedder and the fusion, not a particular vector engine, and nothing is written anywhere.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use capibara_core::config::Config;
use capibara_core::embed::Embedder;
use capibara_core::{Error, Result};
use capibara_rag::eval::{BeirDataset, MethodReport, RankedRuns};
use capibara_rag::lexical::{Analyzer, Bm25Params, Language};
use capibara_rag::retrieval::{Fusion, FusionWeights};
use capibara_rag::vector::ExactStore;
use serde::Serialize;

use crate::app::embedder_for;

/// What `capibara eval` measures.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Language of the lexical analysis.
    pub language: Language,
    /// BM25 constants.
    pub bm25: Bm25Params,
    /// The fusion of the hybrid method.
    pub fusion: Fusion,
    /// Also score the weighted and RRF fusions at dense weights 0.0, 0.1, …, 1.0.
    pub sweep: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            language: Language::Spanish,
            bm25: Bm25Params::default(),
            fusion: Fusion::default(),
            sweep: false,
        }
    }
}

/// One fusion setting of a sweep and its nDCG@10.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    /// `weighted` or `rrf`.
    pub method: &'static str,
    /// Weight of the dense side (the lexical side gets `1 - dense_weight`).
    pub dense_weight: f32,
    /// nDCG@10 of the fused ranking.
    pub ndcg_at_10: f64,
}

/// The result of one evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// The dataset folder.
    pub dataset: String,
    /// The embedding model.
    pub embedder: String,
    /// Documents indexed.
    pub documents: usize,
    /// Judged queries run.
    pub queries: usize,
    /// Seconds to index the corpus for BM25.
    pub lexical_index_seconds: f64,
    /// Seconds to embed and store the corpus.
    pub dense_index_seconds: f64,
    /// The fusion the hybrid row used.
    pub fusion: Fusion,
    /// BM25, dense and hybrid, in that order.
    pub methods: Vec<MethodReport>,
    /// The fusion sweep, when asked for.
    pub sweep: Vec<SweepPoint>,
}

/// Evaluates `dataset` with the embedder `config` names (installing default model files when
/// `models.auto_pull` allows it). Chat models are not loaded.
pub async fn evaluate(config: Config, dataset: &Path, options: &EvalOptions) -> Result<EvalReport> {
    options.fusion.validate()?;
    let set = {
        let dataset = dataset.to_owned();
        tokio::task::spawn_blocking(move || BeirDataset::load(&dataset))
            .await
            .map_err(|e| Error::internal(format!("reading the dataset failed: {e}")))??
    };
    let embedder: Arc<dyn Embedder> = embedder_for(config).await?.ok_or_else(|| {
        Error::unavailable(
            "no embedding model: configure [embeddings] (local or openai) to evaluate dense retrieval",
        )
    })?;
    let store = ExactStore::in_memory();
    let runs = RankedRuns::collect(
        &set,
        Analyzer::new(options.language),
        options.bm25,
        embedder.as_ref(),
        &store,
        "evaluation",
    )
    .await?;
    let methods = vec![runs.lexical()?, runs.dense()?, runs.hybrid(&options.fusion)?];
    let mut sweep = Vec::new();
    if options.sweep {
        for tenth in 0..=10u8 {
            let dense = f32::from(tenth) / 10.0;
            let weights = FusionWeights { lexical: 1.0 - dense, dense };
            for (method, fusion) in
                [("weighted", Fusion::Weighted { weights }), ("rrf", Fusion::Rrf { k: 60.0, weights })]
            {
                let ndcg_at_10 = runs.hybrid(&fusion)?.at_10.ndcg;
                sweep.push(SweepPoint { method, dense_weight: dense, ndcg_at_10 });
            }
        }
    }
    Ok(EvalReport {
        dataset: dataset.display().to_string(),
        embedder: embedder.model_id().to_owned(),
        documents: runs.documents,
        queries: runs.queries(),
        lexical_index_seconds: runs.lexical_index_time.as_secs_f64(),
        dense_index_seconds: runs.dense_index_time.as_secs_f64(),
        fusion: options.fusion,
        methods,
        sweep,
    })
}

impl std::fmt::Display for EvalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "dataset {} ({} documents, {} judged queries)",
            self.dataset, self.documents, self.queries
        )?;
        writeln!(
            f,
            "embedder {}; indexing: BM25 {:.2} s, dense {:.2} s; hybrid fusion {}",
            self.embedder,
            self.lexical_index_seconds,
            self.dense_index_seconds,
            describe(&self.fusion)
        )?;
        for method in &self.methods {
            writeln!(f, "{method}")?;
        }
        if !self.sweep.is_empty() {
            let mut line = String::from("sweep (nDCG@10 by dense weight):");
            for point in &self.sweep {
                let _ = write!(
                    line,
                    "\n  {:<8} {:.1}: {:.4}",
                    point.method, point.dense_weight, point.ndcg_at_10
                );
            }
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

fn describe(fusion: &Fusion) -> String {
    match fusion {
        Fusion::Rrf { k, weights } => {
            format!("rrf (k {k}, lexical {}, dense {})", weights.lexical, weights.dense)
        }
        Fusion::Weighted { weights } => {
            format!("weighted (lexical {}, dense {})", weights.lexical, weights.dense)
        }
    }
}
