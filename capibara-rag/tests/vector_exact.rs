//! The vector store conformance suite on [`ExactStore`], in memory and persisted (with default
//! and with aggressive compaction), and the persisted store's answers across reopening.
//!
//! Needs the `test-utils` feature (`required-features` in Cargo.toml): run with
//! `cargo nextest run -p capibara-rag --all-features`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use capibara_core::vector::{ScoredRecord, VectorStore};
use capibara_rag::vector::{ExactStore, ExactStoreOptions, conformance};

#[tokio::test]
async fn in_memory_store_conforms() {
    conformance::run_conformance(&ExactStore::in_memory()).await;
}

#[tokio::test]
async fn store_behind_an_arc_conforms() {
    let store: std::sync::Arc<dyn VectorStore> = std::sync::Arc::new(ExactStore::in_memory());
    conformance::run_conformance(&store).await;
}

/// Everything the suite left behind, as a reopened store must answer it again.
async fn answers(store: &ExactStore) -> Vec<(String, u64, Vec<ScoredRecord>)> {
    conformance::leftover_answers(store, store.collections().unwrap()).await
}

async fn persisted_store_conforms_and_reopens(options: ExactStoreOptions) {
    let dir = tempfile::tempdir().unwrap();
    let store = ExactStore::open_with(dir.path(), options.clone()).unwrap();
    conformance::run_conformance(&store).await;
    let before = answers(&store).await;
    assert!(
        before
            .iter()
            .any(|(name, count, hits)| name == "conformance_ranking" && *count == 300 && hits.len() == 300)
    );
    drop(store);
    let reopened = ExactStore::open_with(dir.path(), options).unwrap();
    assert_eq!(answers(&reopened).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_store_conforms_and_reopens_with_the_same_answers() {
    persisted_store_conforms_and_reopens(ExactStoreOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_store_compacting_after_every_write_conforms() {
    persisted_store_conforms_and_reopens(ExactStoreOptions { compaction_min_wal_bytes: 0 }).await;
}
