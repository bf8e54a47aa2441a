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

/// A document an ingestion left unfinished: what recovery must write and remove.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDocument {
    /// The document as recorded.
    pub document: DocumentRecord,
    /// Its chunks, to be (re)written to the index.
    pub chunks: Vec<ChunkRecord>,
    /// Ids of an earlier version's chunks the new version lacks, to be removed from the index.
    pub stale: Vec<String>,
}

/// Where ingestion records documents and chunks (a relational store in the server).
///
/// Implementations keep each call atomic: after a crash a document is either as it was before
/// [`begin`](Self::begin) or pending with its full chunk list and stale ids.
#[async_trait]
pub trait IngestLedger: Send + Sync {
    /// Whether this version (`content_hash`) of the document is already fully indexed.
    async fn is_indexed(&self, doc_id: &str, content_hash: &str) -> Result<bool>;
    /// Records `document` as pending with exactly `chunks` (replacing an earlier version) in one
    /// transaction, remembering the ids of the earlier version's chunks that the new one lacks
    /// (added to any still remembered from an unfinished earlier attempt); returns those ids.
    async fn begin(&self, document: &DocumentRecord, chunks: &[ChunkRecord]) -> Result<Vec<String>>;
    /// Marks the document indexed and forgets its stale ids.
    async fn complete(&self, doc_id: &str) -> Result<()>;
    /// The documents left pending, with their chunks and stale ids.
    async fn pending(&self) -> Result<Vec<PendingDocument>>;
    /// Every chunk of every indexed document.
    async fn indexed_chunks(&self) -> Result<Vec<ChunkRecord>>;
}

#[derive(Debug, Default)]
struct Ledger {
    documents: BTreeMap<String, (DocumentRecord, bool)>,
    chunks: BTreeMap<String, Vec<ChunkRecord>>,
    stale: BTreeMap<String, Vec<String>>,
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
        let kept: std::collections::HashSet<&str> = chunks.iter().map(|c| c.id.as_str()).collect();
        let mut stale: Vec<String> = state.stale.get(&document.doc_id).cloned().unwrap_or_default();
        for old in state.chunks.get(&document.doc_id).into_iter().flatten() {
            if !stale.contains(&old.id) {
                stale.push(old.id.clone());
            }
        }
        stale.retain(|id| !kept.contains(id.as_str()));
        state.documents.insert(document.doc_id.clone(), (document.clone(), false));
        state.chunks.insert(document.doc_id.clone(), chunks.to_vec());
        state.stale.insert(document.doc_id.clone(), stale.clone());
        Ok(stale)
    }

    async fn complete(&self, doc_id: &str) -> Result<()> {
        let mut state = self.lock();
        if let Some((_, indexed)) = state.documents.get_mut(doc_id) {
            *indexed = true;
        }
        state.stale.remove(doc_id);
        Ok(())
    }

    async fn pending(&self) -> Result<Vec<PendingDocument>> {
        let state = self.lock();
        Ok(state
            .documents
            .values()
            .filter(|(_, indexed)| !indexed)
            .map(|(document, _)| PendingDocument {
                document: document.clone(),
                chunks: state.chunks.get(&document.doc_id).cloned().unwrap_or_default(),
                stale: state.stale.get(&document.doc_id).cloned().unwrap_or_default(),
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
