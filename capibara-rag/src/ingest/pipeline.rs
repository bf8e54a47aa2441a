//! [`Ingestor`]: files → documents → chunks → the ledger and the [`HybridIndex`], idempotent and
//! recoverable after a crash (see [`ledger`](super::ledger)).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use capibara_core::Result;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::chunk::{Chunk, Chunker};
use super::document::Document;
use super::ledger::{ChunkRecord, DocumentRecord, IngestLedger};
use super::load::{LoadOptions, discover, load_file};
use crate::retrieval::{HybridIndex, IndexedText};

/// Chunks gathered before one round of embedding: several small documents share a batch.
const CHUNKS_PER_ROUND: usize = 256;

/// Ids looked up in the vector store at once when checking it against the ledger.
const LOOKUP_BATCH: usize = 512;

/// What [`Ingestor::recover`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecoveryReport {
    /// Interrupted documents finished.
    pub finished_documents: usize,
    /// Stale chunks of replaced documents removed from the vector store.
    pub stale_removed: u64,
    /// Chunks the vector store lacked, embedded again from the ledger.
    pub vectors_restored: usize,
    /// Chunks loaded into the lexical side.
    pub chunks_loaded: usize,
}

/// What happened during ingestion, reported as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestEvent {
    /// Files found and their total size.
    Discovered {
        /// Number of files.
        files: usize,
        /// Their total size in bytes.
        bytes: u64,
    },
    /// A file was read (its documents are queued).
    FileLoaded {
        /// The file.
        source: String,
        /// Its size in bytes.
        bytes: u64,
    },
    /// A file could not be read; ingestion goes on with the others.
    FileFailed {
        /// The file.
        source: String,
        /// Why.
        error: String,
    },
    /// Chunks were embedded and indexed.
    Indexed {
        /// Chunks in this round.
        chunks: usize,
    },
}

/// Receives [`IngestEvent`]s (a progress bar, a log).
pub trait IngestProgress: Send {
    /// Called for each event.
    fn event(&mut self, event: IngestEvent);
}

/// Ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl IngestProgress for Silent {
    fn event(&mut self, _: IngestEvent) {}
}

/// A file that could not be ingested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestFailure {
    /// The file.
    pub source: String,
    /// The error's code (`invalid_input`, `too_large`, `not_found`, …).
    pub code: &'static str,
    /// What went wrong.
    pub error: String,
}

/// The outcome of an ingestion.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IngestReport {
    /// Files read.
    pub files: usize,
    /// Documents found.
    pub documents: usize,
    /// Documents skipped because this version was already indexed.
    pub unchanged_documents: usize,
    /// Chunks embedded and indexed.
    pub chunks_indexed: usize,
    /// Chunks of earlier versions removed.
    pub chunks_removed: usize,
    /// Files that failed, with the reason.
    pub failures: Vec<IngestFailure>,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Ingests into one [`HybridIndex`], recording everything in an [`IngestLedger`].
pub struct Ingestor {
    index: Arc<HybridIndex>,
    ledger: Arc<dyn IngestLedger>,
    chunker: Chunker,
    load: LoadOptions,
}

impl std::fmt::Debug for Ingestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingestor")
            .field("index", &self.index)
            .field("chunker", &self.chunker)
            .finish_non_exhaustive()
    }
}

impl Ingestor {
    /// An ingestor chunking with `chunker` and loading files within `load`'s limits.
    pub fn new(
        index: Arc<HybridIndex>,
        ledger: Arc<dyn IngestLedger>,
        chunker: Chunker,
        load: LoadOptions,
    ) -> Self {
        Self { index, ledger, chunker, load }
    }

    /// Brings the index back into agreement with the ledger; call once at start, before serving
    /// searches.
    ///
    /// Documents an interrupted ingestion left pending are finished: their stale chunks removed,
    /// their chunks re-embedded and written again (writes are idempotent). Then the vector store
    /// is checked against the ledger: when it holds fewer vectors than the ledger has indexed
    /// chunks (a new or emptied store, a store switched by configuration), the missing ones are
    /// embedded again from the ledger's text. Finally the lexical side is filled from the ledger.
    pub async fn recover(&self) -> Result<RecoveryReport> {
        let mut report = RecoveryReport::default();
        for pending in self.ledger.pending().await? {
            let doc_id = &pending.document.doc_id;
            tracing::warn!(%doc_id, chunks = pending.chunks.len(), "finishing an interrupted ingestion");
            if !pending.stale.is_empty() {
                report.stale_removed += self.index.remove(&pending.stale).await?;
            }
            self.index.add(pending.chunks.iter().map(indexed_text).collect()).await?;
            self.ledger.complete(doc_id).await?;
            report.finished_documents += 1;
        }
        let chunks = self.ledger.indexed_chunks().await?;
        let stored = self.index.store().count(self.index.collection()).await?;
        if stored < chunks.len() as u64 {
            let missing = self.missing_vectors(&chunks).await?;
            tracing::warn!(
                missing = missing.len(),
                "the vector store lacks ledger chunks; embedding them again"
            );
            report.vectors_restored = missing.len();
            for batch in missing.chunks(CHUNKS_PER_ROUND) {
                self.index.add(batch.iter().map(|&i| indexed_text(&chunks[i])).collect()).await?;
            }
        } else if stored > chunks.len() as u64 {
            tracing::warn!(
                stored,
                ledger = chunks.len(),
                "the vector store holds vectors the ledger does not know; they are found by dense search only"
            );
        }
        report.chunks_loaded = self.index.load_lexical(chunks.iter().map(indexed_text))?;
        Ok(report)
    }

    /// Positions in `chunks` of those without a vector in the store.
    async fn missing_vectors(&self, chunks: &[ChunkRecord]) -> Result<Vec<usize>> {
        let mut missing = Vec::new();
        for (batch_number, batch) in chunks.chunks(LOOKUP_BATCH).enumerate() {
            let ids: Vec<String> = batch.iter().map(|c| c.id.clone()).collect();
            let found: std::collections::HashSet<String> = self
                .index
                .store()
                .get(self.index.collection(), &ids)
                .await?
                .into_iter()
                .map(|r| r.id)
                .collect();
            missing.extend(
                batch
                    .iter()
                    .enumerate()
                    .filter(|(_, chunk)| !found.contains(&chunk.id))
                    .map(|(i, _)| batch_number * LOOKUP_BATCH + i),
            );
        }
        Ok(missing)
    }

    /// Ingests every supported file under `paths`. A file that cannot be read is reported in
    /// [`IngestReport::failures`] and the others go on; a failure of the index or the ledger
    /// stops ingestion with that error.
    pub async fn ingest_paths(
        &self,
        paths: &[PathBuf],
        progress: &mut dyn IngestProgress,
    ) -> Result<IngestReport> {
        self.ingest_paths_with(paths, &self.load, progress).await
    }

    /// As [`ingest_paths`](Self::ingest_paths), loading with `load` instead of the ingestor's
    /// own options.
    pub async fn ingest_paths_with(
        &self,
        paths: &[PathBuf],
        load: &LoadOptions,
        progress: &mut dyn IngestProgress,
    ) -> Result<IngestReport> {
        let started = Instant::now();
        let files = discover(paths)?;
        progress.event(IngestEvent::Discovered {
            files: files.len(),
            bytes: files.iter().map(|f| f.bytes).sum(),
        });
        let mut report = IngestReport::default();
        let mut round = Vec::new();
        for file in &files {
            let source =
                if load.relative_sources { file.relative.clone() } else { file.path.display().to_string() };
            let loaded = {
                let (file, options) = (file.clone(), load.clone());
                tokio::task::spawn_blocking(move || load_file(&file, &options)).await
            };
            match loaded {
                Ok(Ok(documents)) => {
                    report.files += 1;
                    progress.event(IngestEvent::FileLoaded { source, bytes: file.bytes });
                    round.extend(documents);
                }
                Ok(Err(error)) => {
                    progress
                        .event(IngestEvent::FileFailed { source: source.clone(), error: error.to_string() });
                    report.failures.push(IngestFailure {
                        source,
                        code: error.code(),
                        error: error.to_string(),
                    });
                }
                Err(error) => {
                    return Err(capibara_core::Error::internal(format!("loading {source}: {error}")));
                }
            }
            if round.len() >= 16 {
                self.ingest_round(std::mem::take(&mut round), &mut report, progress).await?;
            }
        }
        self.ingest_round(round, &mut report, progress).await?;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Ingests documents already in memory.
    pub async fn ingest_documents(
        &self,
        documents: Vec<Document>,
        progress: &mut dyn IngestProgress,
    ) -> Result<IngestReport> {
        let started = Instant::now();
        let mut report = IngestReport::default();
        self.ingest_round(documents, &mut report, progress).await?;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    async fn ingest_round(
        &self,
        documents: Vec<Document>,
        report: &mut IngestReport,
        progress: &mut dyn IngestProgress,
    ) -> Result<()> {
        let mut batch: Vec<(String, Vec<Chunk>)> = Vec::new();
        let mut batched_chunks = 0;
        for document in documents {
            report.documents += 1;
            let record = document_record(&document);
            if self.ledger.is_indexed(&record.doc_id, &record.content_hash).await? {
                report.unchanged_documents += 1;
                continue;
            }
            let chunks = self.chunker.chunk(&document);
            let records: Vec<ChunkRecord> = chunks.iter().map(chunk_record).collect();
            let stale = self.ledger.begin(&record, &records).await?;
            if !stale.is_empty() {
                report.chunks_removed += stale.len();
                self.index.remove(&stale).await?;
            }
            batched_chunks += chunks.len();
            batch.push((record.doc_id, chunks));
            if batched_chunks >= CHUNKS_PER_ROUND {
                self.index_batch(std::mem::take(&mut batch), report, progress).await?;
                batched_chunks = 0;
            }
        }
        self.index_batch(batch, report, progress).await
    }

    async fn index_batch(
        &self,
        batch: Vec<(String, Vec<Chunk>)>,
        report: &mut IngestReport,
        progress: &mut dyn IngestProgress,
    ) -> Result<()> {
        let texts: Vec<IndexedText> = batch
            .iter()
            .flat_map(|(_, chunks)| chunks.iter())
            .map(|chunk| IndexedText {
                id: chunk.id.clone(),
                text: chunk.text.clone(),
                metadata: chunk.metadata.clone(),
            })
            .collect();
        if !texts.is_empty() {
            let count = texts.len();
            self.index.add(texts).await?;
            report.chunks_indexed += count;
            progress.event(IngestEvent::Indexed { chunks: count });
        }
        for (doc_id, _) in &batch {
            self.ledger.complete(doc_id).await?;
        }
        Ok(())
    }
}

fn indexed_text(chunk: &ChunkRecord) -> IndexedText {
    IndexedText { id: chunk.id.clone(), text: chunk.text.clone(), metadata: chunk.metadata.clone() }
}

fn chunk_record(chunk: &Chunk) -> ChunkRecord {
    ChunkRecord {
        id: chunk.id.clone(),
        doc_id: chunk.doc_id.clone(),
        index: chunk.index,
        text: chunk.text.clone(),
        metadata: chunk.metadata.clone(),
    }
}

fn document_record(document: &Document) -> DocumentRecord {
    let mut hasher = Sha256::new();
    hasher.update(document.title.as_deref().unwrap_or_default().as_bytes());
    hasher.update([0]);
    hasher.update(document.text.as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::Value::Object(document.metadata.clone()).to_string().as_bytes());
    DocumentRecord {
        doc_id: document.doc_id.clone(),
        source: document.source.clone(),
        title: document.title.clone(),
        content_hash: hex::encode(hasher.finalize()),
        metadata: document.metadata.clone(),
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
