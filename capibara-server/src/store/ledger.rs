//! [`SqlLedger`]: retrieval's record of ingested documents and chunks, in the conversation
//! database (tables `rag_documents`, `rag_chunks`, `rag_stale_chunks`).
//!
//! Each [`IngestLedger`] call is one transaction, so after a crash a document is either as it was
//! or pending with its complete chunk list; [`Ingestor::recover`](capibara_rag::ingest::Ingestor::recover)
//! finishes it at the next start.

use async_trait::async_trait;
use capibara_core::vector::Metadata;
use capibara_core::{Error, Result};
use capibara_rag::ingest::{ChunkRecord, DocumentRecord, IngestLedger, PendingDocument};
use chrono::Utc;
use sqlx::any::AnyRow;

use super::SqlStore;
use super::columns::{from_bigint, timestamp, to_bigint};
use super::read::Columns;

const SELECT_HASH: &str =
    "SELECT content_hash FROM rag_documents WHERE collection = $1 AND doc_id = $2 AND indexed = 1";

const UPSERT_DOCUMENT: &str = "INSERT INTO rag_documents \
     (collection, doc_id, source, title, content_hash, metadata, indexed, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, 0, $7) \
     ON CONFLICT (collection, doc_id) DO UPDATE SET source = $3, title = $4, content_hash = $5, \
     metadata = $6, indexed = 0, updated_at = $7";

const SELECT_CHUNK_IDS: &str = "SELECT id FROM rag_chunks WHERE collection = $1 AND doc_id = $2";

const SELECT_STALE_IDS: &str =
    "SELECT id FROM rag_stale_chunks WHERE collection = $1 AND doc_id = $2 ORDER BY id";

const INSERT_STALE: &str = "INSERT INTO rag_stale_chunks (collection, id, doc_id) VALUES ($1, $2, $3) \
     ON CONFLICT (collection, id) DO NOTHING";

const DELETE_STALE: &str = "DELETE FROM rag_stale_chunks WHERE collection = $1 AND id = $2";

const DELETE_CHUNKS: &str = "DELETE FROM rag_chunks WHERE collection = $1 AND doc_id = $2";

const INSERT_CHUNK: &str = "INSERT INTO rag_chunks (collection, id, doc_id, position, text, metadata) \
     VALUES ($1, $2, $3, $4, $5, $6)";

const COMPLETE: &str =
    "UPDATE rag_documents SET indexed = 1, updated_at = $3 WHERE collection = $1 AND doc_id = $2";

const FORGET_STALE: &str = "DELETE FROM rag_stale_chunks WHERE collection = $1 AND doc_id = $2";

const SELECT_PENDING: &str = "SELECT doc_id, source, title, content_hash, metadata FROM rag_documents \
     WHERE collection = $1 AND indexed = 0 ORDER BY doc_id";

const SELECT_CHUNKS_OF: &str = "SELECT id, doc_id, position, text, metadata FROM rag_chunks \
     WHERE collection = $1 AND doc_id = $2 ORDER BY position";

const SELECT_INDEXED_CHUNKS: &str = "SELECT c.id, c.doc_id, c.position, c.text, c.metadata FROM rag_chunks c \
     JOIN rag_documents d ON d.collection = c.collection AND d.doc_id = c.doc_id \
     WHERE c.collection = $1 AND d.indexed = 1 ORDER BY c.doc_id, c.position";

const COUNT_DOCUMENTS: &str =
    "SELECT COUNT(*), COUNT(CASE WHEN indexed = 1 THEN 1 END) FROM rag_documents WHERE collection = $1";

const COUNT_CHUNKS: &str = "SELECT COUNT(*) FROM rag_chunks WHERE collection = $1";

/// The ingestion ledger of one collection, in the same SQLite or PostgreSQL database as the
/// conversations. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqlLedger {
    store: SqlStore,
    collection: String,
}

/// What a ledger holds (`/api/v1/rag/stats`, `capibara ingest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LedgerCounts {
    /// Documents recorded.
    pub documents: u64,
    /// Of which fully indexed.
    pub indexed_documents: u64,
    /// Chunks recorded.
    pub chunks: u64,
}

impl SqlStore {
    /// The ingestion ledger of `collection` in this database.
    pub fn ledger(&self, collection: impl Into<String>) -> SqlLedger {
        SqlLedger { store: self.clone(), collection: collection.into() }
    }
}

impl SqlLedger {
    /// The collection this ledger records.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// How many documents and chunks are recorded.
    pub async fn counts(&self) -> Result<LedgerCounts> {
        let store = &self.store;
        let (documents, indexed): (i64, i64) = sqlx::query_as(COUNT_DOCUMENTS)
            .bind(&self.collection)
            .fetch_one(&store.pool)
            .await
            .map_err(|e| store.errors.map("counting ingested documents", &e))?;
        let chunks: i64 = sqlx::query_scalar(COUNT_CHUNKS)
            .bind(&self.collection)
            .fetch_one(&store.pool)
            .await
            .map_err(|e| store.errors.map("counting ingested chunks", &e))?;
        Ok(LedgerCounts {
            documents: from_bigint(documents, "documents")?,
            indexed_documents: from_bigint(indexed, "indexed documents")?,
            chunks: from_bigint(chunks, "chunks")?,
        })
    }

    async fn chunks_of(&self, doc_id: &str) -> Result<Vec<ChunkRecord>> {
        let rows = sqlx::query(SELECT_CHUNKS_OF)
            .bind(&self.collection)
            .bind(doc_id)
            .fetch_all(&self.store.pool)
            .await
            .map_err(|e| self.store.errors.map("reading chunks", &e))?;
        rows.iter().map(chunk_from_row).collect()
    }

    async fn ids(&self, sql: &str, doc_id: &str, what: &str) -> Result<Vec<String>> {
        sqlx::query_scalar(sql)
            .bind(&self.collection)
            .bind(doc_id)
            .fetch_all(&self.store.pool)
            .await
            .map_err(|e| self.store.errors.map(what, &e))
    }
}

#[async_trait]
impl IngestLedger for SqlLedger {
    async fn is_indexed(&self, doc_id: &str, content_hash: &str) -> Result<bool> {
        let stored: Option<String> = sqlx::query_scalar(SELECT_HASH)
            .bind(&self.collection)
            .bind(doc_id)
            .fetch_optional(&self.store.pool)
            .await
            .map_err(|e| self.store.errors.map("reading an ingested document", &e))?;
        Ok(stored.as_deref() == Some(content_hash))
    }

    async fn begin(&self, document: &DocumentRecord, chunks: &[ChunkRecord]) -> Result<Vec<String>> {
        let store = &self.store;
        let metadata = json_text(&document.metadata)?;
        let rows: Vec<(String, i64, String)> = chunks
            .iter()
            .map(|c| {
                Ok((c.id.clone(), to_bigint(c.index as u64, "chunk position")?, json_text(&c.metadata)?))
            })
            .collect::<Result<_>>()?;
        let (collection, doc_id) = (&self.collection, &document.doc_id);
        let map = |action: &'static str| move |e: sqlx::Error| store.errors.map(action, &e);
        let _writer = match &store.writer {
            Some(writer) => Some(writer.lock().await),
            None => None,
        };
        let mut tx = store.pool.begin().await.map_err(map("starting an ingestion transaction"))?;
        sqlx::query(UPSERT_DOCUMENT)
            .bind(collection)
            .bind(doc_id)
            .bind(&document.source)
            .bind(&document.title)
            .bind(&document.content_hash)
            .bind(&metadata)
            .bind(timestamp(Utc::now()))
            .execute(&mut *tx)
            .await
            .map_err(map("recording a document"))?;
        let old: Vec<String> = sqlx::query_scalar(SELECT_CHUNK_IDS)
            .bind(collection)
            .bind(doc_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map("reading a document's chunks"))?;
        for id in &old {
            sqlx::query(INSERT_STALE)
                .bind(collection)
                .bind(id)
                .bind(doc_id)
                .execute(&mut *tx)
                .await
                .map_err(map("remembering a stale chunk"))?;
        }
        sqlx::query(DELETE_CHUNKS)
            .bind(collection)
            .bind(doc_id)
            .execute(&mut *tx)
            .await
            .map_err(map("replacing a document's chunks"))?;
        for (chunk, (id, position, chunk_metadata)) in chunks.iter().zip(&rows) {
            sqlx::query(DELETE_STALE)
                .bind(collection)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map("keeping a chunk"))?;
            sqlx::query(INSERT_CHUNK)
                .bind(collection)
                .bind(id)
                .bind(doc_id)
                .bind(*position)
                .bind(&chunk.text)
                .bind(chunk_metadata)
                .execute(&mut *tx)
                .await
                .map_err(map("recording a chunk"))?;
        }
        let stale: Vec<String> = sqlx::query_scalar(SELECT_STALE_IDS)
            .bind(collection)
            .bind(doc_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map("reading stale chunks"))?;
        tx.commit().await.map_err(map("committing a document"))?;
        Ok(stale)
    }

    async fn complete(&self, doc_id: &str) -> Result<()> {
        let store = &self.store;
        let _writer = match &store.writer {
            Some(writer) => Some(writer.lock().await),
            None => None,
        };
        let mut tx = store.pool.begin().await.map_err(|e| store.errors.map("starting a transaction", &e))?;
        for sql in [COMPLETE, FORGET_STALE] {
            let mut query = sqlx::query(sql).bind(&self.collection).bind(doc_id);
            if sql == COMPLETE {
                query = query.bind(timestamp(Utc::now()));
            }
            query.execute(&mut *tx).await.map_err(|e| store.errors.map("marking a document indexed", &e))?;
        }
        tx.commit().await.map_err(|e| store.errors.map("committing a document", &e))
    }

    async fn pending(&self) -> Result<Vec<PendingDocument>> {
        let rows = sqlx::query(SELECT_PENDING)
            .bind(&self.collection)
            .fetch_all(&self.store.pool)
            .await
            .map_err(|e| self.store.errors.map("reading pending documents", &e))?;
        let mut pending = Vec::with_capacity(rows.len());
        for row in &rows {
            let columns = Columns { row, table: "rag_documents" };
            let document = DocumentRecord {
                doc_id: columns.get("doc_id")?,
                source: columns.get("source")?,
                title: columns.get("title")?,
                content_hash: columns.get("content_hash")?,
                metadata: parse_metadata(&columns.get::<String>("metadata")?)?,
            };
            let chunks = self.chunks_of(&document.doc_id).await?;
            let stale = self.ids(SELECT_STALE_IDS, &document.doc_id, "reading stale chunks").await?;
            pending.push(PendingDocument { document, chunks, stale });
        }
        Ok(pending)
    }

    async fn indexed_chunks(&self) -> Result<Vec<ChunkRecord>> {
        let rows = sqlx::query(SELECT_INDEXED_CHUNKS)
            .bind(&self.collection)
            .fetch_all(&self.store.pool)
            .await
            .map_err(|e| self.store.errors.map("reading indexed chunks", &e))?;
        rows.iter().map(chunk_from_row).collect()
    }
}

fn chunk_from_row(row: &AnyRow) -> Result<ChunkRecord> {
    let columns = Columns { row, table: "rag_chunks" };
    Ok(ChunkRecord {
        id: columns.get("id")?,
        doc_id: columns.get("doc_id")?,
        index: usize::try_from(from_bigint(columns.get("position")?, "position")?)
            .map_err(|_| Error::internal("a chunk position does not fit in memory"))?,
        text: columns.get("text")?,
        metadata: parse_metadata(&columns.get::<String>("metadata")?)?,
    })
}

fn json_text(metadata: &Metadata) -> Result<String> {
    serde_json::to_string(metadata).map_err(|e| Error::internal(format!("metadata is not serialisable: {e}")))
}

fn parse_metadata(text: &str) -> Result<Metadata> {
    serde_json::from_str(text)
        .map_err(|e| Error::internal(format!("stored metadata is not a JSON object: {e}")))
}
