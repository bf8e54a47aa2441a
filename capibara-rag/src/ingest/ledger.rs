//! The record of what was ingested: documents and their chunks, the source of truth the vector
//! index can be rebuilt from.
//!
//! A document is written to the ledger as *pending* with all of its chunks before anything is
//! embedded, and marked *indexed* once every chunk is in the index. After a crash, the pending
//! documents are exactly the ones whose index entries may be incomplete; finishing them
//! ([`Ingestor::recover`](super::Ingestor::recover)) brings the index and the ledger back into
//! agreement before anything is served.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use capibara_core::Result;
use capibara_core::vector::Metadata;
use serde::{Deserialize, Serialize};

/// One ingested document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentRecord {
    /// The document id.
    pub doc_id: String,
    /// Where it came from.
    pub source: String,
    /// Its title, when it has one.
    pub title: Option<String>,
    /// SHA-256 (hex) of its title, text and metadata: an unchanged document is not ingested again.
    pub content_hash: String,
    /// Its metadata.
    pub metadata: Metadata,
}

/// One chunk of a document, as indexed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkRecord {
    /// The chunk's content-hash id.
    pub id: String,
    /// Its document.
    pub doc_id: String,
    /// Its position in the document.
    pub index: usize,
    /// Its text.
    pub text: String,
    /// Its metadata (the document's plus source, title, chunk index).
    pub metadata: Metadata,
}

/// Where ingestion records documents and chunks (a relational store in the server).
#[async_trait]
pub trait IngestLedger: Send + Sync {
    /// Whether this version (`content_hash`) of the document is already fully indexed.
    async fn is_indexed(&self, doc_id: &str, content_hash: &str) -> Result<bool>;
    /// Records `document` as pending with exactly `chunks` (replacing an earlier version) in one
    /// transaction; returns the ids of the earlier version's chunks that the new one lacks.
    async fn begin(&self, document: &DocumentRecord, chunks: &[ChunkRecord]) -> Result<Vec<String>>;
    /// Marks the document indexed.
    async fn complete(&self, doc_id: &str) -> Result<()>;
    /// The documents left pending, with their chunks.
    async fn pending(&self) -> Result<Vec<(DocumentRecord, Vec<ChunkRecord>)>>;
    /// Every chunk of every indexed document.
    async fn indexed_chunks(&self) -> Result<Vec<ChunkRecord>>;
}

#[derive(Debug, Default)]
struct Ledger {
    documents: BTreeMap<String, (DocumentRecord, bool)>,
    chunks: BTreeMap<String, Vec<ChunkRecord>>,
}

/// An [`IngestLedger`] in memory, for programs without a database and for tests.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    state: Mutex<Ledger>,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        // Each operation is a complete update, so a poisoned lock still holds consistent data.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl IngestLedger for MemoryLedger {
    async fn is_indexed(&self, doc_id: &str, content_hash: &str) -> Result<bool> {
        Ok(self
            .lock()
            .documents
            .get(doc_id)
            .is_some_and(|(document, indexed)| *indexed && document.content_hash == content_hash))
    }

    async fn begin(&self, document: &DocumentRecord, chunks: &[ChunkRecord]) -> Result<Vec<String>> {
        let mut state = self.lock();
        let stale = state
            .chunks
            .get(&document.doc_id)
            .map(|old| {
                old.iter()
                    .filter(|c| !chunks.iter().any(|new| new.id == c.id))
                    .map(|c| c.id.clone())
                    .collect()
            })
            .unwrap_or_default();
        state.documents.insert(document.doc_id.clone(), (document.clone(), false));
        state.chunks.insert(document.doc_id.clone(), chunks.to_vec());
        Ok(stale)
    }

    async fn complete(&self, doc_id: &str) -> Result<()> {
        if let Some((_, indexed)) = self.lock().documents.get_mut(doc_id) {
            *indexed = true;
        }
        Ok(())
    }

    async fn pending(&self) -> Result<Vec<(DocumentRecord, Vec<ChunkRecord>)>> {
        let state = self.lock();
        Ok(state
            .documents
            .values()
            .filter(|(_, indexed)| !indexed)
            .map(|(document, _)| {
                (document.clone(), state.chunks.get(&document.doc_id).cloned().unwrap_or_default())
            })
            .collect())
    }

    async fn indexed_chunks(&self) -> Result<Vec<ChunkRecord>> {
        let state = self.lock();
        Ok(state
            .documents
            .values()
            .filter(|(_, indexed)| *indexed)
            .flat_map(|(document, _)| state.chunks.get(&document.doc_id).cloned().unwrap_or_default())
            .collect())
    }
}
