//! [`FaissStore`]: the vector store conformance suite on both FAISS indexes (`IndexFlatIP`,
//! `IndexHNSWFlat`), in memory and persisted and reopened (the HNSW graph saved after every write
//! and loaded); recall of the HNSW graph against [`ExactStore`] on clustered vectors, filtered
//! searches that still return `k`, the flat index answering as `ExactStore` does, and bad input.
//!
//! Needs the `test-utils` and `faiss` features (`required-features` in Cargo.toml): run with
//! `cargo nextest run -p capibara-rag --all-features`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;

use capibara_core::Error;
use capibara_core::vector::{Filter, ScoredRecord, VectorQuery, VectorRecord, VectorStore};
use capibara_rag::vector::{ExactStore, FaissHnsw, FaissIndex, FaissStore, FaissStoreOptions, conformance};
use clustered::{Clusters, record};
use serde_json::json;

mod clustered;

/// Every search goes through the graph (no exact scan of small collections or rare matches), and
/// `ef` is above every collection of the suite, so the graph's answer is exact.
fn graph_only() -> FaissStoreOptions {
    FaissStoreOptions {
        exact_below_rows: 0,
        filter_exact_rows: 0,
        filter_scan_factor: 0.0,
        ..FaissStoreOptions::new(FaissIndex::Hnsw(FaissHnsw { ef_search: 1_000, ..FaissHnsw::default() }))
    }
}

#[tokio::test]
async fn in_memory_flat_store_conforms() {
    conformance::run_conformance(&FaissStore::in_memory(FaissIndex::Flat).unwrap()).await;
}

#[tokio::test]
async fn in_memory_hnsw_store_conforms() {
    conformance::run_conformance(&FaissStore::in_memory(FaissIndex::hnsw()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hnsw_store_searching_only_the_graph_conforms() {
    conformance::run_conformance(&FaissStore::in_memory_with(graph_only()).unwrap()).await;
}

#[tokio::test]
async fn store_behind_an_arc_conforms() {
    let store: std::sync::Arc<dyn VectorStore> =
        std::sync::Arc::new(FaissStore::in_memory(FaissIndex::Flat).unwrap());
    conformance::run_conformance(&store).await;
}

/// Everything the suite left behind, as a reopened store must answer it again.
async fn answers(store: &FaissStore) -> Vec<(String, u64, Vec<ScoredRecord>)> {
    conformance::leftover_answers(store, store.collections().unwrap()).await
}

/// Runs the suite on a persisted store, reopens it and compares; the data directory for a look.
async fn persisted_store_conforms_and_reopens(options: FaissStoreOptions) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = FaissStore::open_with(dir.path(), options.clone()).unwrap();
    conformance::run_conformance(&store).await;
    let before = answers(&store).await;
    assert!(
        before
            .iter()
            .any(|(name, count, hits)| name == "conformance_ranking" && *count == 300 && hits.len() == 300)
    );
    drop(store);
    let reopened = FaissStore::open_with(dir.path(), options).unwrap();
    assert_eq!(answers(&reopened).await, before);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_flat_store_conforms_and_reopens_with_the_same_answers() {
    persisted_store_conforms_and_reopens(FaissStoreOptions::new(FaissIndex::Flat)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_hnsw_store_conforms_and_reopens_with_the_same_answers() {
    persisted_store_conforms_and_reopens(FaissStoreOptions::new(FaissIndex::hnsw())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_graphs_saved_after_every_write_conform_and_reload() {
    // Compaction after every write saves every collection's graph each time; reopening loads them.
    let options = FaissStoreOptions { compaction_min_wal_bytes: 0, ..graph_only() };
    let dir = persisted_store_conforms_and_reopens(options).await;
    let saved = dir.path().join("conformance_ranking");
    assert!(saved.join("faiss-hnsw").exists() && saved.join("faiss-hnsw-map").exists());
}

#[test]
fn options_out_of_range_are_refused() {
    let hnsw = |params: FaissHnsw| FaissStoreOptions::new(FaissIndex::Hnsw(params));
    for options in [
        hnsw(FaissHnsw { m: 1, ..FaissHnsw::default() }),
        hnsw(FaissHnsw { m: 256, ..FaissHnsw::default() }),
        hnsw(FaissHnsw { ef_search: 0, ..FaissHnsw::default() }),
        hnsw(FaissHnsw { ef_construction: 0, ..FaissHnsw::default() }),
        FaissStoreOptions { rebuild_removed_share: 0.0, ..FaissStoreOptions::new(FaissIndex::Flat) },
        FaissStoreOptions { filter_scan_factor: f64::NAN, ..FaissStoreOptions::new(FaissIndex::Flat) },
    ] {
        let error = FaissStore::in_memory_with(options.clone()).unwrap_err();
        assert_eq!(error.code(), "invalid_input", "{options:?}: {error}");
    }
}

const N: usize = 20_000;
const D: usize = 128;

/// The same `N` clustered records in every store.
async fn fill(stores: &[&dyn VectorStore], clusters: &mut Clusters) {
    for store in stores {
        store.ensure_collection("docs", D).await.unwrap();
    }
    let records: Vec<VectorRecord> = (0..N)
        .map(|i| {
            let (vector, cluster) = clusters.point();
            record(i, vector, cluster)
        })
        .collect();
    for batch in records.chunks(5_000) {
        for store in stores {
            store.upsert("docs", batch.to_vec()).await.unwrap();
        }
    }
}

fn ids(hits: &[ScoredRecord]) -> Vec<&str> {
    hits.iter().map(|hit| hit.record.id.as_str()).collect()
}

fn overlap(found: &[ScoredRecord], truth: &[ScoredRecord]) -> usize {
    let truth: HashSet<&str> = ids(truth).into_iter().collect();
    ids(found).into_iter().filter(|id| truth.contains(id)).count()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hnsw_recall_at_10_on_clustered_vectors_and_filtered_searches_return_k() {
    let hnsw = FaissStore::in_memory(FaissIndex::hnsw()).unwrap();
    let flat = FaissStore::in_memory(FaissIndex::Flat).unwrap();
    let exact = ExactStore::in_memory();
    let mut clusters = Clusters::new(200, D, 7);
    fill(&[&hnsw as &dyn VectorStore, &flat, &exact], &mut clusters).await;

    let queries: Vec<VectorQuery> =
        (0..200).map(|_| VectorQuery { vector: clusters.point().0, k: 10, filter: None }).collect();
    let truth = exact.search_many("docs", &queries).await.unwrap();
    let (mut found, mut wanted) = (0, 0);
    for ((query, hits), truth) in
        queries.iter().zip(hnsw.search_many("docs", &queries).await.unwrap()).zip(&truth)
    {
        assert_eq!(hits.len(), 10);
        for hit in &hits {
            assert!((hit.score - dot(&hit.record.vector, &query.vector)).abs() < 1e-4, "true inner product");
        }
        found += overlap(&hits, truth);
        wanted += truth.len();
    }
    let recall = found as f64 / wanted as f64;
    println!("FAISS HNSW recall@10 {recall:.4} on {N} × {D} clustered vectors");
    assert!(recall >= 0.95, "recall@10 {recall:.4} with the default options");

    // The flat index answers as the exact store does, one by one and in a batch.
    let flat_many = flat.search_many("docs", &queries).await.unwrap();
    for ((query, batched), truth) in queries.iter().zip(&flat_many).zip(&truth) {
        assert_eq!(ids(batched), ids(truth));
        assert_eq!(ids(&flat.search("docs", query).await.unwrap()), ids(truth));
    }

    // Filters: two thirds (searched in the graph with a selector), a third (scanned: 6,667² <
    // 3,300 × 20,000), one cluster (about 100 records), and 5 records for k = 20.
    let field = |r: &VectorRecord, name: &str| r.metadata[name].as_u64().unwrap();
    type Check = (Filter, Box<dyn Fn(&VectorRecord) -> bool>, usize);
    let filters: Vec<Check> = vec![
        (
            Filter::Not(Box::new(Filter::Eq { field: "third".into(), value: json!(0) })),
            Box::new(move |r| field(r, "third") != 0),
            20,
        ),
        (
            Filter::Eq { field: "third".into(), value: json!(1) },
            Box::new(move |r| field(r, "third") == 1),
            20,
        ),
        (
            Filter::Eq { field: "cluster".into(), value: json!(3) },
            Box::new(move |r| field(r, "cluster") == 3),
            20,
        ),
        (
            Filter::Range { field: "i".into(), gte: Some(100.0), lte: Some(104.0) },
            Box::new(move |r| (100..=104).contains(&field(r, "i"))),
            5,
        ),
    ];
    for (filter, matches, expected) in filters {
        let (mut found, mut wanted) = (0, 0);
        for query in &queries[..50] {
            let query = VectorQuery { filter: Some(filter.clone()), k: 20, ..query.clone() };
            let truth = exact.search("docs", &query).await.unwrap();
            assert_eq!(truth.len(), expected);
            for store in [&hnsw, &flat] {
                let hits = store.search("docs", &query).await.unwrap();
                assert_eq!(hits.len(), expected, "{filter:?}: never fewer than min(k, matches)");
                assert!(hits.iter().all(|hit| matches(&hit.record)), "{filter:?}: a hit does not match");
            }
            assert_eq!(ids(&flat.search("docs", &query).await.unwrap()), ids(&truth));
            found += overlap(&hnsw.search("docs", &query).await.unwrap(), &truth);
            wanted += truth.len();
        }
        let recall = found as f64 / wanted as f64;
        println!("FAISS HNSW recall@20 {recall:.4} filtered by {filter:?}");
        assert!(recall >= 0.9, "{filter:?}: recall@20 {recall:.4}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_and_deleted_records_are_never_returned_and_reopening_loads_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let options = FaissStoreOptions::new(FaissIndex::hnsw());
    let hnsw = FaissStore::open_with(dir.path(), options.clone()).unwrap();
    let exact = ExactStore::in_memory();
    let mut clusters = Clusters::new(60, D, 11);
    fill(&[&hnsw as &dyn VectorStore, &exact], &mut clusters).await;
    // Replace 500 records with points of other clusters, delete 300.
    let replaced: Vec<VectorRecord> = (0..500).map(|j| record(j * 37 % N, clusters.point().0, 0)).collect();
    let deleted: Vec<String> = (0..300).map(|j| format!("r{}", (j * 53 + 11) % N)).collect();
    for store in [&hnsw as &dyn VectorStore, &exact] {
        store.upsert("docs", replaced.clone()).await.unwrap();
        store.delete("docs", &deleted).await.unwrap();
    }
    let gone: HashSet<String> = deleted.into_iter().collect();
    let queries: Vec<VectorQuery> =
        (0..100).map(|_| VectorQuery { vector: clusters.point().0, k: 10, filter: None }).collect();
    let truth = exact.search_many("docs", &queries).await.unwrap();
    let recall = |found: &[Vec<ScoredRecord>]| {
        let hits: usize = found.iter().zip(&truth).map(|(found, truth)| overlap(found, truth)).sum();
        hits as f64 / (truth.len() * 10) as f64
    };
    let before = hnsw.search_many("docs", &queries).await.unwrap();
    for hits in &before {
        assert_eq!(hits.len(), 10);
        for hit in hits {
            assert!(!gone.contains(&hit.record.id), "deleted {} returned", hit.record.id);
            let current = exact.get("docs", std::slice::from_ref(&hit.record.id)).await.unwrap();
            assert_eq!(current, vec![hit.record.clone()], "the hit is the current record");
        }
    }
    assert!(recall(&before) >= 0.95, "recall@10 after writes {:.4}", recall(&before));

    // Compacted: the graph is saved and reopening loads it as it was.
    hnsw.compact("docs").await.unwrap();
    drop(hnsw);
    let reopened = FaissStore::open_with(dir.path(), options.clone()).unwrap();
    assert_eq!(
        reopened.search_many("docs", &queries).await.unwrap(),
        before,
        "the same graph after reopening"
    );

    // Writes since the snapshot are replayed into the loaded graph.
    let more: Vec<VectorRecord> = (0..200).map(|j| record(N + j, clusters.point().0, 0)).collect();
    reopened.upsert("docs", more.clone()).await.unwrap();
    exact.upsert("docs", more).await.unwrap();
    drop(reopened);
    let reopened = FaissStore::open_with(dir.path(), options).unwrap();
    assert_eq!(reopened.count("docs").await.unwrap(), exact.count("docs").await.unwrap());
    let truth = exact.search_many("docs", &queries).await.unwrap();
    let found = reopened.search_many("docs", &queries).await.unwrap();
    let hits: usize = found.iter().zip(&truth).map(|(found, truth)| overlap(found, truth)).sum();
    assert!(hits as f64 / 1_000.0 >= 0.95, "recall@10 after replaying the log {hits}/1000");
}

fn expect_invalid<T: std::fmt::Debug>(result: capibara_core::Result<T>, what: &str) -> String {
    match result {
        Err(Error::InvalidInput(message)) => message,
        other => panic!("{what}: expected an invalid-input error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_are_invalid_input_on_both_indexes() {
    // 3,000 records: the HNSW collection has a graph, so the checks hold on FAISS's paths too.
    let mut clusters = Clusters::new(20, 16, 5);
    let records: Vec<VectorRecord> = (0..3_000)
        .map(|i| {
            let (vector, cluster) = clusters.point();
            record(i, vector, cluster)
        })
        .collect();
    for index in [FaissIndex::Flat, FaissIndex::hnsw()] {
        let store = FaissStore::in_memory(index.clone()).unwrap();
        store.ensure_collection("docs", 16).await.unwrap();
        store.upsert("docs", records.clone()).await.unwrap();
        let vector = clusters.point().0;
        let query = |vector: Vec<f32>, k: usize, filter: Option<Filter>| VectorQuery { vector, k, filter };
        let unknown = Some(Filter::Eq { field: "lang".into(), value: json!("es") });
        for (bad, what, says) in [
            (query(vector.clone(), 0, None), "k = 0", "k must be between 1 and 1000"),
            (query(vector.clone(), 10_000, None), "k = 10000", "k must be between 1 and 1000"),
            (
                query(vector[..15].to_vec(), 5, None),
                "wrong dimension",
                "has 15 dimensions, the collection expects 16",
            ),
            (query(vector.clone(), 5, unknown), "unknown field", "unknown filter field 'lang'"),
        ] {
            let message = expect_invalid(store.search("docs", &bad).await, what);
            assert!(message.contains(says), "{index:?} {what}: {message}");
            expect_invalid(store.search_many("docs", &[query(vector.clone(), 1, None), bad]).await, what);
        }
        let unknown = query(vector.clone(), 5, Some(Filter::Eq { field: "lang".into(), value: json!("es") }));
        let message = expect_invalid(store.search("docs", &unknown).await, "unknown field");
        assert!(message.contains("'lang'") && message.contains("cluster"), "{message}");
        expect_invalid(store.upsert("docs", vec![record(1, vec![0.5; 8], 0)]).await, "record dimension");
        // The largest k is fine, and returns every record it can.
        let all = store.search("docs", &query(vector, 1_000, None)).await.unwrap();
        assert_eq!(all.len(), 1_000, "{index:?}");
    }
}
