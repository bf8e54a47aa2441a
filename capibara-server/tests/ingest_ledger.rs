#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `SqlLedger`, retrieval's record of ingested documents and chunks, on a SQLite file and on the
//! real PostgreSQL server: the same scenarios on both engines, then a whole ingestion into a
//! persisted vector store recovered from the ledger.

use std::sync::Arc;

use async_trait::async_trait;
use capibara_core::embed::Embedder;
use capibara_core::vector::{Metadata, VectorStore};
use capibara_rag::ingest::{
    ChunkOptions, ChunkRecord, Chunker, Document, DocumentRecord, IngestLedger, Ingestor, LoadOptions, Silent,
};
use capibara_rag::lexical::Analyzer;
use capibara_rag::retrieval::{Fusion, HybridIndex};
use capibara_rag::vector::ExactStore;
use capibara_server::store::{SqlLedger, SqlStore};
use capibara_testkit::postgres::TestDatabase;
use serde_json::json;

struct Fixture {
    store: SqlStore,
    _dir: tempfile::TempDir,
    database: Option<TestDatabase>,
}

impl Fixture {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("capibara.db").display());
        Self { store: SqlStore::connect(&url, 4).await.unwrap(), _dir: dir, database: None }
    }

    async fn postgres() -> Self {
        let database = TestDatabase::create().await;
        let store = SqlStore::connect(database.url(), 4).await.unwrap();
        Self { store, _dir: tempfile::tempdir().unwrap(), database: Some(database) }
    }

    async fn finish(self) {
        self.store.close().await;
        if let Some(database) = self.database {
            database.drop_database().await;
        }
    }
}

fn metadata(value: serde_json::Value) -> Metadata {
    serde_json::from_value(value).unwrap()
}

fn document(doc_id: &str, hash: &str) -> DocumentRecord {
    DocumentRecord {
        doc_id: doc_id.into(),
        source: format!("{doc_id}.md"),
        title: Some("Título".into()),
        content_hash: hash.into(),
        metadata: metadata(json!({"tema": "animales", "año": 2024})),
    }
}

fn chunk(doc_id: &str, id: &str, index: usize) -> ChunkRecord {
    ChunkRecord {
        id: id.into(),
        doc_id: doc_id.into(),
        index,
        text: format!("texto de {id} con acentos: ñandú"),
        metadata: metadata(json!({"chunk_index": index})),
    }
}

async fn pending_documents_stale_chunks_and_completion(ledger: &SqlLedger) {
    let first = [chunk("d", "c1", 0), chunk("d", "c2", 1)];
    assert!(ledger.begin(&document("d", "h1"), &first).await.unwrap().is_empty());
    assert!(!ledger.is_indexed("d", "h1").await.unwrap(), "pending is not indexed");
    let pending = ledger.pending().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].document, document("d", "h1"));
    assert_eq!(pending[0].chunks, first);
    ledger.complete("d").await.unwrap();
    assert!(ledger.is_indexed("d", "h1").await.unwrap());
    assert!(!ledger.is_indexed("d", "h2").await.unwrap(), "another version is not indexed");
    assert_eq!(ledger.indexed_chunks().await.unwrap(), first);

    // An edit keeps c2, drops c1, adds c3; interrupted, then edited again before recovery.
    let edit = [chunk("d", "c2", 0), chunk("d", "c3", 1)];
    assert_eq!(ledger.begin(&document("d", "h2"), &edit).await.unwrap(), ["c1"]);
    assert!(ledger.indexed_chunks().await.unwrap().is_empty(), "a pending document's chunks are not served");
    let again = [chunk("d", "c4", 0)];
    let mut stale = ledger.begin(&document("d", "h3"), &again).await.unwrap();
    stale.sort();
    assert_eq!(stale, ["c1", "c2", "c3"], "stale ids accumulate until the document is complete");
    assert_eq!(ledger.pending().await.unwrap()[0].stale, stale);
    ledger.complete("d").await.unwrap();
    assert!(ledger.pending().await.unwrap().is_empty());
    assert_eq!(ledger.indexed_chunks().await.unwrap(), again);
    let counts = ledger.counts().await.unwrap();
    assert_eq!((counts.documents, counts.indexed_documents, counts.chunks), (1, 1, 1));
}

async fn collections_are_kept_apart(store: &SqlStore) {
    let (a, b) = (store.ledger("uno"), store.ledger("dos"));
    a.begin(&document("d", "h"), &[chunk("d", "x", 0)]).await.unwrap();
    a.complete("d").await.unwrap();
    assert!(b.indexed_chunks().await.unwrap().is_empty());
    assert!(!b.is_indexed("d", "h").await.unwrap());
    b.begin(&document("d", "h"), &[chunk("d", "x", 0)]).await.unwrap();
    assert_eq!(a.indexed_chunks().await.unwrap().len(), 1);
    assert_eq!(b.pending().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_ledger_on_sqlite() {
    let fixture = Fixture::sqlite().await;
    pending_documents_stale_chunks_and_completion(&fixture.store.ledger("docs")).await;
    collections_are_kept_apart(&fixture.store).await;
    fixture.finish().await;
}

#[tokio::test]
async fn the_ledger_on_postgres() {
    let fixture = Fixture::postgres().await;
    pending_documents_stale_chunks_and_completion(&fixture.store.ledger("docs")).await;
    collections_are_kept_apart(&fixture.store).await;
    fixture.finish().await;
}

/// Letter counts: enough for ranking in these tests, and no model to load.
struct LetterEmbedder;

#[async_trait]
impl Embedder for LetterEmbedder {
    fn model_id(&self) -> &str {
        "letters-26"
    }
    fn dimension(&self) -> usize {
        26
    }
    async fn embed(&self, texts: &[String]) -> capibara_core::Result<Vec<Vec<f32>>> {
        Ok(texts
            .iter()
            .map(|text| {
                let mut v = [0.0f32; 26];
                for b in text.to_ascii_lowercase().bytes().filter(u8::is_ascii_lowercase) {
                    v[usize::from(b - b'a')] += 1.0;
                }
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                v.iter().map(|x| x / norm).collect()
            })
            .collect())
    }
}

async fn ingestor(ledger: SqlLedger, vectors: &std::path::Path) -> (Ingestor, Arc<HybridIndex>) {
    let store: Arc<dyn VectorStore> = Arc::new(ExactStore::open(vectors).unwrap());
    let index = Arc::new(
        HybridIndex::open(Arc::new(LetterEmbedder), store, "docs", Analyzer::default(), Fusion::default())
            .await
            .unwrap(),
    );
    let chunker = Chunker::new(ChunkOptions { max_tokens: 32, overlap_tokens: 4 }).unwrap();
    (Ingestor::new(Arc::clone(&index), Arc::new(ledger), chunker, LoadOptions::default()), index)
}

async fn ingestion_is_recovered_from_the_ledger(store: &SqlStore, vectors: &std::path::Path) {
    let docs = vec![
        Document::new("a.txt", "a", "El capibara es un roedor. Nada en los ríos de Sudamérica."),
        Document::new("b.txt", "b", "El Teide es un volcán de Tenerife."),
    ];
    let (first, _) = ingestor(store.ledger("docs"), vectors).await;
    let report = first.ingest_documents(docs.clone(), &mut Silent).await.unwrap();
    drop(first);
    // A second process: recovery fills the lexical side from the ledger, nothing is re-embedded.
    let (second, index) = ingestor(store.ledger("docs"), vectors).await;
    let recovered = second.recover().await.unwrap();
    assert_eq!(recovered.chunks_loaded, report.chunks_indexed);
    assert_eq!((recovered.finished_documents, recovered.vectors_restored), (0, 0));
    assert_eq!(index.len(), report.chunks_indexed);
    let again = second.ingest_documents(docs, &mut Silent).await.unwrap();
    assert_eq!(again.unchanged_documents, 2);
}

#[tokio::test]
async fn ingestion_recovers_from_the_ledger_on_sqlite() {
    let fixture = Fixture::sqlite().await;
    let vectors = tempfile::tempdir().unwrap();
    ingestion_is_recovered_from_the_ledger(&fixture.store, vectors.path()).await;
    fixture.finish().await;
}

#[tokio::test]
async fn ingestion_recovers_from_the_ledger_on_postgres() {
    let fixture = Fixture::postgres().await;
    let vectors = tempfile::tempdir().unwrap();
    ingestion_is_recovered_from_the_ledger(&fixture.store, vectors.path()).await;
    fixture.finish().await;
}
