//! Retrieval as the server runs it: the configured vector store, the ledger in the conversation
//! database, one [`HybridIndex`] over `[retrieval].collection`, mini/full/guided retrieval and
//! serialised ingestion.
//!
//! [`Rag::build`] brings the index into agreement with the ledger (finishing interrupted
//! ingestions, restoring vectors a store lacks) before it returns, so nothing half-written is ever
//! searched.

pub mod answer;
mod results;
mod vectors;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capibara_core::config::{Config, IngestSettings};
use capibara_core::embed::Embedder;
use capibara_core::vector::{Filter, MAX_K, VectorStore};
use capibara_core::{Error, Result};
use capibara_rag::ingest::{
    ChunkOptions, Chunker, Document, IngestProgress, IngestReport, Ingestor, LoadOptions, RecoveryReport,
};
use capibara_rag::lexical::Analyzer;
use capibara_rag::retrieval::{
    EscalationReason, HybridIndex, RagDepth, Retriever, SearchHit, SearchMode, SearchRequest,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::store::{LedgerCounts, SqlLedger, SqlStore};

pub use answer::{AskOptions, RagAnswer, RagContext, RagRequest, parse_conversation_id};
pub use results::{
    DocumentInput, IngestSummary, MAX_DOCUMENTS_PER_CALL, MAX_QUERY_CHARS, RetrievalInfo, RetrievalStats,
    SearchOptions, SearchResults, Source, checked_documents, checked_query,
};
pub use vectors::open as open_vector_store;

/// How a search is run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RagMode {
    /// Mini RAG: top 5 within 50 ms, cached.
    Mini,
    /// Full RAG: query expansion, top 10 within 200 ms.
    Full,
    /// Mini, escalating to full on measured signals.
    #[default]
    Guided,
    /// BM25 only.
    Lexical,
    /// Vectors only.
    Dense,
    /// BM25 and vectors fused, no budget but the request's.
    Hybrid,
}

/// A search's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RagSearch {
    /// The mode asked for.
    pub mode: RagMode,
    /// For mini, full and guided: the depth that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth: Option<RagDepth>,
    /// Best first.
    pub hits: Vec<SearchHit>,
    /// A budget ran out: the best results found in time.
    pub partial: bool,
    /// Served from the result cache.
    pub cached: bool,
    /// Why guided search escalated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub escalation: Vec<EscalationReason>,
    /// Wall time in milliseconds.
    pub took_ms: f64,
}

/// Retrieval over one collection, with its ledger.
pub struct Rag {
    retriever: Retriever,
    ingestor: Ingestor,
    ledger: SqlLedger,
    settings: IngestSettings,
    uploads_dir: PathBuf,
    /// One ingestion at a time: two ingestions of one document must not interleave.
    ingesting: Mutex<()>,
}

impl std::fmt::Debug for Rag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rag").field("collection", &self.ledger.collection()).finish_non_exhaustive()
    }
}

impl Rag {
    /// Opens the configured store and cache, builds the index over `[retrieval].collection` with
    /// `embedder`, and recovers it from the ledger in `database`.
    pub async fn build(config: &Config, embedder: Arc<dyn Embedder>, database: &SqlStore) -> Result<Self> {
        let retrieval = &config.retrieval;
        let store = vectors::open(&retrieval.store, &config.storage.data_dir).await?;
        let cache = crate::cache::from_config(&retrieval.cache).await?;
        Self::assemble(config, embedder, store, cache, database).await
    }

    /// As [`build`](Self::build), with a ready vector store and cache.
    pub async fn assemble(
        config: &Config,
        embedder: Arc<dyn Embedder>,
        store: Arc<dyn VectorStore>,
        cache: Arc<dyn capibara_core::cache::Cache>,
        database: &SqlStore,
    ) -> Result<Self> {
        let retrieval = &config.retrieval;
        let analyzer = Analyzer::new(retrieval.language);
        let index = Arc::new(
            HybridIndex::open(embedder, store, retrieval.collection.clone(), analyzer, retrieval.fusion)
                .await?,
        );
        let ledger = database.ledger(retrieval.collection.clone());
        let settings = retrieval.ingest.clone();
        let chunker = Chunker::new(ChunkOptions {
            max_tokens: settings.chunk_tokens,
            overlap_tokens: settings.overlap_tokens,
        })?;
        let load = LoadOptions { max_file_bytes: settings.max_file_bytes, relative_sources: false };
        let ingestor = Ingestor::new(Arc::clone(&index), Arc::new(ledger.clone()), chunker, load);
        let retriever = Retriever::new(index, cache, retrieval.rag.clone())?;
        let uploads_dir = config.storage.data_dir.join("ingest-uploads");
        // Uploads a stopped server left behind were never ingested; their senders got an error.
        if tokio::fs::try_exists(&uploads_dir).await.unwrap_or(false) {
            tokio::fs::remove_dir_all(&uploads_dir)
                .await
                .map_err(|e| Error::unavailable(format!("cannot clear {}: {e}", uploads_dir.display())))?;
        }
        let rag = Self { retriever, ingestor, ledger, settings, uploads_dir, ingesting: Mutex::new(()) };
        let recovered = rag.recover().await?;
        tracing::info!(
            collection = %retrieval.collection,
            chunks = recovered.chunks_loaded,
            finished = recovered.finished_documents,
            restored = recovered.vectors_restored,
            "retrieval ready"
        );
        Ok(rag)
    }

    async fn recover(&self) -> Result<RecoveryReport> {
        let _only = self.ingesting.lock().await;
        self.ingestor.recover().await
    }

    /// The retriever (mini, full, guided).
    pub fn retriever(&self) -> &Retriever {
        &self.retriever
    }

    /// The index.
    pub fn index(&self) -> &Arc<HybridIndex> {
        self.retriever.index()
    }

    /// The vector store.
    pub fn vector_store(&self) -> &Arc<dyn VectorStore> {
        self.index().store()
    }

    /// The ingestion limits in effect.
    pub fn ingest_settings(&self) -> &IngestSettings {
        &self.settings
    }

    /// Where uploaded files wait while they are ingested.
    pub fn uploads_dir(&self) -> &std::path::Path {
        &self.uploads_dir
    }

    /// What the ledger holds.
    pub async fn counts(&self) -> Result<LedgerCounts> {
        self.ledger.counts().await
    }

    /// Ingests files and directories (waits for any ingestion under way).
    pub async fn ingest_paths(
        &self,
        paths: &[PathBuf],
        progress: &mut dyn IngestProgress,
    ) -> Result<IngestReport> {
        let _only = self.ingesting.lock().await;
        self.ingestor.ingest_paths(paths, progress).await
    }

    /// Ingests uploaded files waiting in `dir`: documents are named by their path under it.
    pub async fn ingest_uploads(
        &self,
        dir: PathBuf,
        progress: &mut dyn IngestProgress,
    ) -> Result<IngestReport> {
        let load = LoadOptions { max_file_bytes: self.settings.max_file_bytes, relative_sources: true };
        let _only = self.ingesting.lock().await;
        self.ingestor.ingest_paths_with(&[dir], &load, progress).await
    }

    /// Ingests documents given in memory (waits for any ingestion under way).
    pub async fn ingest_documents(
        &self,
        documents: Vec<Document>,
        progress: &mut dyn IngestProgress,
    ) -> Result<IngestReport> {
        let _only = self.ingesting.lock().await;
        self.ingestor.ingest_documents(documents, progress).await
    }

    /// Searches the collection. `k` (1 to [`MAX_K`]) is the depth of lexical, dense and hybrid
    /// searches (default 10) and caps the mini/full/guided results, whose depth is configured.
    /// `budget` bounds lexical, dense and hybrid searches; mini and full have their own.
    pub async fn search(
        &self,
        query: &str,
        mode: RagMode,
        k: Option<usize>,
        filter: Option<&Filter>,
        budget: Duration,
    ) -> Result<RagSearch> {
        if let Some(k) = k
            && (k == 0 || k > MAX_K)
        {
            return Err(Error::invalid(format!("k must be 1..={MAX_K}, got {k}")));
        }
        let started = Instant::now();
        let plain = |mode| SearchRequest {
            query: query.to_owned(),
            k: k.unwrap_or(10),
            filter: filter.cloned(),
            mode,
        };
        let (retrieval, searched) = match mode {
            RagMode::Mini => (Some(self.retriever.mini(query, filter).await?), None),
            RagMode::Full => (Some(self.retriever.full(query, filter).await?), None),
            RagMode::Guided => (Some(self.retriever.guided(query, filter).await?), None),
            RagMode::Lexical => (None, Some(plain(SearchMode::Lexical))),
            RagMode::Dense => (None, Some(plain(SearchMode::Dense))),
            RagMode::Hybrid => (None, Some(plain(SearchMode::Hybrid))),
        };
        if let Some(mut retrieval) = retrieval {
            retrieval.hits.truncate(k.unwrap_or(usize::MAX));
            return Ok(RagSearch {
                mode,
                depth: Some(retrieval.depth),
                hits: retrieval.hits,
                partial: retrieval.partial,
                cached: retrieval.cached,
                escalation: retrieval.escalation,
                took_ms: elapsed_ms(started),
            });
        }
        let request = searched.ok_or_else(|| Error::internal("no search was chosen"))?;
        let outcome = self.index().search(&request, Some(budget)).await?;
        Ok(RagSearch {
            mode,
            depth: None,
            hits: outcome.hits,
            partial: outcome.partial,
            cached: false,
            escalation: Vec::new(),
            took_ms: elapsed_ms(started),
        })
    }
}

fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1_000.0
}
