use std::time::Duration;

use capibara_core::vector::VectorStore;

use super::*;
use crate::ingest::chunk::ChunkOptions;
use crate::ingest::ledger::MemoryLedger;
use crate::retrieval::test_support::{HashingEmbedder, open_index};
use crate::retrieval::{SearchMode, SearchRequest};
use crate::vector::ExactStore;

async fn index(store: Arc<dyn VectorStore>) -> Arc<HybridIndex> {
    Arc::new(open_index(Arc::new(HashingEmbedder { delay: Duration::ZERO }), store).await)
}

fn ingestor(index: Arc<HybridIndex>, ledger: Arc<MemoryLedger>) -> Ingestor {
    let chunker = Chunker::new(ChunkOptions { max_tokens: 32, overlap_tokens: 4 }).unwrap();
    Ingestor::new(index, ledger, chunker, LoadOptions::default())
}

async fn found(index: &HybridIndex, query: &str) -> Vec<String> {
    let request = SearchRequest { query: query.into(), k: 10, filter: None, mode: SearchMode::Hybrid };
    index.search(&request, None).await.unwrap().hits.into_iter().map(|hit| hit.text).collect()
}

fn document(id: &str, text: &str) -> Document {
    Document::new(format!("{id}.txt"), id, text)
}

#[tokio::test]
async fn documents_become_searchable_and_unchanged_ones_are_skipped() {
    let ledger = Arc::new(MemoryLedger::new());
    let index = index(Arc::new(ExactStore::in_memory())).await;
    let ingestor = ingestor(index.clone(), ledger.clone());
    let docs = vec![
        document(
            "capibara",
            "El capibara es el roedor más grande del mundo.\n\nVive cerca de ríos y lagunas.",
        ),
        document("llama", "La llama vive en los Andes."),
    ];
    let report = ingestor.ingest_documents(docs.clone(), &mut Silent).await.unwrap();
    assert_eq!((report.documents, report.unchanged_documents), (2, 0));
    assert!(report.chunks_indexed >= 2);
    assert!(found(&index, "roedor grande").await[0].contains("capibara"));

    let again = ingestor.ingest_documents(docs, &mut Silent).await.unwrap();
    assert_eq!((again.unchanged_documents, again.chunks_indexed), (2, 0), "re-ingesting is idempotent");
    assert_eq!(ledger.indexed_chunks().await.unwrap().len(), report.chunks_indexed);
    assert_eq!(index.len(), report.chunks_indexed);
}

#[tokio::test]
async fn an_edited_document_replaces_its_old_chunks() {
    let ledger = Arc::new(MemoryLedger::new());
    let index = index(Arc::new(ExactStore::in_memory())).await;
    let ingestor = ingestor(index.clone(), ledger.clone());
    ingestor
        .ingest_documents(vec![document("d", "Los flamencos viven en lagunas andinas.")], &mut Silent)
        .await
        .unwrap();
    let report = ingestor
        .ingest_documents(vec![document("d", "El volcán Teide está en Tenerife.")], &mut Silent)
        .await
        .unwrap();
    assert_eq!(report.chunks_removed, 1);
    assert!(found(&index, "flamencos lagunas").await.iter().all(|text| !text.contains("flamencos")));
    assert!(found(&index, "Teide").await[0].contains("Teide"));
    assert_eq!(index.len(), 1);
}

#[tokio::test]
async fn recovery_finishes_pending_documents_and_reloads_the_lexical_side() {
    let ledger = Arc::new(MemoryLedger::new());
    let store: Arc<dyn VectorStore> = Arc::new(ExactStore::in_memory());
    let first = ingestor(index(store.clone()).await, ledger.clone());
    first.ingest_documents(vec![document("a", "El capibara nada muy bien.")], &mut Silent).await.unwrap();
    // An ingestion that stopped after recording a document, before indexing it.
    let interrupted = document("b", "La llama come hierba en los Andes.");
    let chunks = Chunker::new(ChunkOptions::default()).unwrap().chunk(&interrupted);
    ledger
        .begin(&document_record(&interrupted), &chunks.iter().map(chunk_record).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(ledger.pending().await.unwrap().len(), 1);

    // A new process: fresh lexical side over the same vector store and ledger.
    let index = index(store).await;
    let restarted = ingestor(index.clone(), ledger.clone());
    assert_eq!(restarted.recover().await.unwrap().finished_documents, 1);
    assert!(ledger.pending().await.unwrap().is_empty());
    assert_eq!(index.len(), 2, "both documents' chunks are on the lexical side");
    assert!(found(&index, "llama hierba").await[0].contains("llama"));
    assert!(found(&index, "capibara").await[0].contains("capibara"));
}

#[tokio::test]
async fn recovery_removes_the_stale_chunks_of_an_interrupted_edit() {
    let ledger = Arc::new(MemoryLedger::new());
    let store: Arc<dyn VectorStore> = Arc::new(ExactStore::in_memory());
    let first = ingestor(index(store.clone()).await, ledger.clone());
    first
        .ingest_documents(vec![document("d", "Las lagunas andinas tienen flamencos.")], &mut Silent)
        .await
        .unwrap();
    let old_ids: Vec<String> = ledger.indexed_chunks().await.unwrap().into_iter().map(|c| c.id).collect();
    // An edit recorded in the ledger, then a crash before the old vectors were removed.
    let edited = document("d", "El volcán Teide está en Tenerife.");
    let chunks = Chunker::new(ChunkOptions::default()).unwrap().chunk(&edited);
    let stale = ledger
        .begin(&document_record(&edited), &chunks.iter().map(chunk_record).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(stale, old_ids);
    assert_eq!(ledger.pending().await.unwrap()[0].stale, old_ids, "the ledger remembers what to remove");

    let index = index(store.clone()).await;
    let report = ingestor(index.clone(), ledger.clone()).recover().await.unwrap();
    assert_eq!((report.finished_documents, report.stale_removed), (1, old_ids.len() as u64));
    assert!(store.get(index.collection(), &old_ids).await.unwrap().is_empty());
    assert_eq!(store.count(index.collection()).await.unwrap(), chunks.len() as u64);
    assert!(found(&index, "flamencos").await.iter().all(|text| !text.contains("flamencos")));
}

#[tokio::test]
async fn recovery_embeds_again_what_an_empty_vector_store_lacks() {
    let ledger = Arc::new(MemoryLedger::new());
    let first = ingestor(index(Arc::new(ExactStore::in_memory())).await, ledger.clone());
    let docs = vec![document("a", "El capibara nada muy bien."), document("b", "La llama come hierba.")];
    let ingested = first.ingest_documents(docs, &mut Silent).await.unwrap().chunks_indexed;

    // The same ledger over a new, empty store (the configuration switched stores).
    let store: Arc<dyn VectorStore> = Arc::new(ExactStore::in_memory());
    let index = index(store.clone()).await;
    let report = ingestor(index.clone(), ledger).recover().await.unwrap();
    assert_eq!((report.vectors_restored, report.chunks_loaded), (ingested, ingested));
    assert_eq!(store.count(index.collection()).await.unwrap(), ingested as u64);
    let dense = SearchRequest { query: "llama hierba".into(), k: 1, filter: None, mode: SearchMode::Dense };
    assert!(index.search(&dense, None).await.unwrap().hits[0].text.contains("llama"));
}

#[tokio::test]
async fn unreadable_files_are_reported_and_the_rest_is_ingested() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bueno.txt"), "El capibara es un roedor sudamericano.").unwrap();
    std::fs::write(dir.path().join("roto.txt"), [0u8, 159, 146, 150, 0, 1, 2]).unwrap();
    let index = index(Arc::new(ExactStore::in_memory())).await;
    let ingestor = ingestor(index.clone(), Arc::new(MemoryLedger::new()));
    let mut events = Vec::new();
    struct Collect<'a>(&'a mut Vec<IngestEvent>);
    impl IngestProgress for Collect<'_> {
        fn event(&mut self, event: IngestEvent) {
            self.0.push(event);
        }
    }
    let report = ingestor.ingest_paths(&[dir.path().to_owned()], &mut Collect(&mut events)).await.unwrap();
    assert_eq!(report.files, 1);
    assert_eq!(report.failures.len(), 1);
    assert!(report.failures[0].source.ends_with("roto.txt"), "{report:?}");
    assert_eq!(report.failures[0].code, "invalid_input");
    assert!(matches!(events[0], IngestEvent::Discovered { files: 2, .. }), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, IngestEvent::Indexed { chunks: 1 })), "{events:?}");
    assert!(found(&index, "roedor").await[0].contains("capibara"));
}
