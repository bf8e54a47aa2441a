//! [`HnswStore`]: the vector store conformance suite (in memory, behind an `Arc`, persisted and
//! reopened; with the default exact scan of small collections and with every search forced
//! through the graph), and what is particular to an approximate index: recall against
//! [`ExactStore`] on 20,000 clustered vectors, filtered searches that still return `k`, replaced
//! and deleted records never returned, and the same answers after reopening.
//!
//! Needs the `test-utils` and `hnsw` features (`required-features` in Cargo.toml): run with
//! `cargo nextest run -p capibara-rag --all-features`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;

use capibara_core::vector::{Filter, ScoredRecord, VectorQuery, VectorRecord, VectorStore};
use capibara_rag::vector::{ExactStore, HnswStore, HnswStoreOptions, conformance};
use clustered::{Clusters, record};
use serde_json::json;

mod clustered;

/// Every search goes through the graph (no exact scan of small collections or rare matches), and
/// `ef` is above every collection of the suite, so the graph's answer is exact.
fn graph_only() -> HnswStoreOptions {
    HnswStoreOptions {
        exact_below_rows: 0,
        filter_exact_rows: 0,
        filter_scan_factor: 0.0,
        ef_search: 1_000,
        ..HnswStoreOptions::default()
    }
}

#[tokio::test]
async fn in_memory_store_conforms() {
    conformance::run_conformance(&HnswStore::in_memory()).await;
}

#[tokio::test]
async fn store_behind_an_arc_conforms() {
    let store: std::sync::Arc<dyn VectorStore> = std::sync::Arc::new(HnswStore::in_memory());
    conformance::run_conformance(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_searching_only_the_graph_conforms() {
    conformance::run_conformance(&HnswStore::in_memory_with(graph_only()).unwrap()).await;
}

/// Everything the suite left behind, as a reopened store must answer it again.
async fn answers(store: &HnswStore) -> Vec<(String, u64, Vec<ScoredRecord>)> {
    conformance::leftover_answers(store, store.collections().unwrap()).await
}

async fn persisted_store_conforms_and_reopens(options: HnswStoreOptions) {
    let dir = tempfile::tempdir().unwrap();
    let store = HnswStore::open_with(dir.path(), options.clone()).unwrap();
    conformance::run_conformance(&store).await;
    let before = answers(&store).await;
    assert!(
        before
            .iter()
            .any(|(name, count, hits)| name == "conformance_ranking" && *count == 300 && hits.len() == 300)
    );
    drop(store);
    let reopened = HnswStore::open_with(dir.path(), options).unwrap();
    assert_eq!(answers(&reopened).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_store_conforms_and_reopens_with_the_same_answers() {
    persisted_store_conforms_and_reopens(HnswStoreOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_graphs_saved_after_every_write_conform_and_reload() {
    // Compaction after every write saves every collection's graph each time; reopening loads them.
    let options = HnswStoreOptions { compaction_min_wal_bytes: 0, ..graph_only() };
    persisted_store_conforms_and_reopens(options).await;
}

#[test]
fn options_out_of_range_are_refused() {
    for options in [
        HnswStoreOptions { m: 1, ..HnswStoreOptions::default() },
        HnswStoreOptions { m: 256, ..HnswStoreOptions::default() },
        HnswStoreOptions { ef_search: 0, ..HnswStoreOptions::default() },
        HnswStoreOptions { rebuild_removed_share: 0.0, ..HnswStoreOptions::default() },
        HnswStoreOptions { filter_scan_factor: -1.0, ..HnswStoreOptions::default() },
    ] {
        let error = HnswStore::in_memory_with(options.clone()).unwrap_err();
        assert_eq!(error.code(), "invalid_input", "{options:?}: {error}");
    }
}

const N: usize = 20_000;
const D: usize = 384;

/// The same 20,000 clustered records in both stores.
async fn both_stores(hnsw: &HnswStore, exact: &ExactStore, clusters: &mut Clusters) {
    hnsw.ensure_collection("docs", D).await.unwrap();
    exact.ensure_collection("docs", D).await.unwrap();
    let records: Vec<VectorRecord> = (0..N)
        .map(|i| {
            let (vector, cluster) = clusters.point();
            record(i, vector, cluster)
        })
        .collect();
    for batch in records.chunks(5_000) {
        hnsw.upsert("docs", batch.to_vec()).await.unwrap();
        exact.upsert("docs", batch.to_vec()).await.unwrap();
    }
}

fn ids(hits: &[ScoredRecord]) -> Vec<&str> {
    hits.iter().map(|hit| hit.record.id.as_str()).collect()
}

fn overlap(found: &[ScoredRecord], truth: &[ScoredRecord]) -> usize {
    let truth: HashSet<&str> = ids(truth).into_iter().collect();
    ids(found).into_iter().filter(|id| truth.contains(id)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_at_10_on_clustered_vectors_and_filtered_searches_return_k() {
    let hnsw = HnswStore::in_memory();
    let exact = ExactStore::in_memory();
    let mut clusters = Clusters::new(200, D, 7);
    both_stores(&hnsw, &exact, &mut clusters).await;

    let queries: Vec<VectorQuery> =
        (0..200).map(|_| VectorQuery { vector: clusters.point().0, k: 10, filter: None }).collect();
    let (mut found, mut wanted) = (0, 0);
    for (query, hits) in queries.iter().zip(hnsw.search_many("docs", &queries).await.unwrap()) {
        let truth = exact.search("docs", query).await.unwrap();
        assert_eq!(hits.len(), 10);
        for hit in &hits {
            let dot: f32 = hit.record.vector.iter().zip(&query.vector).map(|(a, b)| a * b).sum();
            assert!((hit.score - dot).abs() < 1e-4, "the score is the true inner product");
        }
        found += overlap(&hits, &truth);
        wanted += truth.len();
    }
    let recall = found as f64 / wanted as f64;
    println!("recall@10 {recall:.4} on {N} × {D} clustered vectors");
    assert!(recall >= 0.95, "recall@10 {recall:.4} with the default options");

    // Filters: two thirds of the collection (searched in the graph with a predicate), a third
    // (6,667 records, scanned: 6,667² < 3,300 × 20,000), one cluster (about 100 records), a
    // cluster far from the query, and 100 records by number (all scanned exactly).
    let far_cluster = (0..200)
        .min_by(|a, b| {
            let dot = |c: usize| -> f32 {
                clusters.centres[c].iter().zip(&queries[0].vector).map(|(x, y)| x * y).sum()
            };
            dot(*a).total_cmp(&dot(*b))
        })
        .unwrap();
    let field = |r: &VectorRecord, name: &str| r.metadata[name].as_u64().unwrap();
    type Check = (Filter, Box<dyn Fn(&VectorRecord) -> bool>, f64);
    let filters: Vec<Check> = vec![
        (
            Filter::Not(Box::new(Filter::Eq { field: "third".into(), value: json!(0) })),
            Box::new(move |r| field(r, "third") != 0),
            0.9,
        ),
        (
            Filter::Eq { field: "third".into(), value: json!(1) },
            Box::new(move |r| field(r, "third") == 1),
            1.0,
        ),
        (
            Filter::Eq { field: "cluster".into(), value: json!(3) },
            Box::new(move |r| field(r, "cluster") == 3),
            1.0,
        ),
        (
            Filter::Eq { field: "cluster".into(), value: json!(far_cluster) },
            Box::new(move |r| field(r, "cluster") == far_cluster as u64),
            1.0,
        ),
        (
            Filter::Not(Box::new(Filter::Range { field: "i".into(), gte: Some(100.0), lte: None })),
            Box::new(move |r| field(r, "i") < 100),
            1.0,
        ),
    ];
    for (filter, matches, min_recall) in filters {
        let (mut found, mut wanted) = (0, 0);
        for query in &queries[..50] {
            let query = VectorQuery { filter: Some(filter.clone()), k: 20, ..query.clone() };
            let hits = hnsw.search("docs", &query).await.unwrap();
            let truth = exact.search("docs", &query).await.unwrap();
            assert_eq!(truth.len(), 20);
            assert_eq!(hits.len(), 20, "{filter:?}: never fewer than k when k match");
            assert!(hits.iter().all(|hit| matches(&hit.record)), "{filter:?}: a hit does not match");
            found += overlap(&hits, &truth);
            wanted += truth.len();
        }
        let recall = found as f64 / wanted as f64;
        println!("recall@20 {recall:.4} filtered by {filter:?}");
        assert!(recall >= min_recall, "{filter:?}: recall@20 {recall:.4}");
    }
}

/// Recall of `found` against `truth`, query by query.
fn recall_of(found: &[Vec<ScoredRecord>], truth: &[Vec<ScoredRecord>]) -> f64 {
    let hits: usize = found.iter().zip(truth).map(|(found, truth)| overlap(found, truth)).sum();
    hits as f64 / truth.iter().map(Vec::len).sum::<usize>().max(1) as f64
}

/// Upserts into both stores.
async fn upsert_both(hnsw: &HnswStore, exact: &ExactStore, records: Vec<VectorRecord>) {
    hnsw.upsert("docs", records.clone()).await.unwrap();
    exact.upsert("docs", records).await.unwrap();
}

/// Deletes from both stores.
async fn delete_both(hnsw: &HnswStore, exact: &ExactStore, ids: &[String]) {
    let deleted = hnsw.delete("docs", ids).await.unwrap();
    assert_eq!(exact.delete("docs", ids).await.unwrap(), deleted);
}

/// 3,000 records (a graph with the default options), then a share deleted and replaced.
async fn churned(
    hnsw: &HnswStore,
    exact: &ExactStore,
    clusters: &mut Clusters,
    rounds: usize,
) -> HashSet<String> {
    let d = clusters.dimension;
    hnsw.ensure_collection("docs", d).await.unwrap();
    exact.ensure_collection("docs", d).await.unwrap();
    let mut point = |i: usize| {
        let (vector, cluster) = clusters.point();
        record(i, vector, cluster)
    };
    upsert_both(hnsw, exact, (0..3_000).map(&mut point).collect()).await;
    let mut gone = HashSet::new();
    for round in 0..rounds {
        // Replace 150 records with vectors of other clusters, delete 60, add 50 new ones.
        let replaced = (0..150).map(|j| point((round * 397 + j * 19) % 3_000)).collect();
        upsert_both(hnsw, exact, replaced).await;
        let deleted: Vec<String> =
            (0..60).map(|j| format!("r{}", (round * 211 + j * 41 + 7) % 3_000)).collect();
        delete_both(hnsw, exact, &deleted).await;
        gone.extend(deleted);
        let added: Vec<VectorRecord> = (0..50).map(|j| point(3_000 + round * 50 + j)).collect();
        upsert_both(hnsw, exact, added).await;
    }
    assert_eq!(hnsw.count("docs").await.unwrap(), exact.count("docs").await.unwrap());
    // Deleted then upserted again (by a later replacement round) is live again.
    let live = exact.get("docs", &gone.iter().cloned().collect::<Vec<_>>()).await.unwrap();
    for record in &live {
        gone.remove(&record.id);
    }
    gone
}

async fn searches(store: &dyn VectorStore, queries: &[VectorQuery]) -> Vec<Vec<ScoredRecord>> {
    store.search_many("docs", queries).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_and_deleted_records_are_never_returned() {
    let (hnsw, exact) = (HnswStore::in_memory(), ExactStore::in_memory());
    let mut clusters = Clusters::new(60, 64, 11);
    // Ten rounds replace 1,500 of 3,000 records: the graph is rebuilt on the way.
    let deleted = churned(&hnsw, &exact, &mut clusters, 10).await;
    let queries: Vec<VectorQuery> =
        (0..100).map(|_| VectorQuery { vector: clusters.point().0, k: 10, filter: None }).collect();
    let found = searches(&hnsw, &queries).await;
    let truth = searches(&exact, &queries).await;
    for (hits, query) in found.iter().zip(&queries) {
        assert_eq!(hits.len(), 10);
        let distinct: HashSet<&str> = ids(hits).into_iter().collect();
        assert_eq!(distinct.len(), 10, "a record is returned twice: {:?}", ids(hits));
        for hit in hits {
            assert!(!deleted.contains(&hit.record.id), "deleted {} returned", hit.record.id);
            let current = exact.get("docs", std::slice::from_ref(&hit.record.id)).await.unwrap();
            assert_eq!(current, vec![hit.record.clone()], "the hit is the current record");
            let dot: f32 = hit.record.vector.iter().zip(&query.vector).map(|(a, b)| a * b).sum();
            assert!((hit.score - dot).abs() < 1e-4, "the score is the current vector's");
        }
    }
    let recall = recall_of(&found, &truth);
    assert!(recall >= 0.95, "recall@10 after churn {recall:.4}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_gives_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (hnsw, exact) = (HnswStore::open(dir.path()).unwrap(), ExactStore::in_memory());
    let mut clusters = Clusters::new(60, 64, 13);
    churned(&hnsw, &exact, &mut clusters, 3).await;
    let queries: Vec<VectorQuery> =
        (0..60).map(|_| VectorQuery { vector: clusters.point().0, k: 10, filter: None }).collect();
    let before = searches(&hnsw, &queries).await;

    // Compacted: the graph is saved beside the snapshot and loaded as it is.
    hnsw.compact("docs").await.unwrap();
    assert!(dir.path().join("docs").join("graph").exists());
    assert_eq!(searches(&hnsw, &queries).await, before);
    drop(hnsw);
    let hnsw = HnswStore::open(dir.path()).unwrap();
    assert_eq!(searches(&hnsw, &queries).await, before, "the same graph after reopening");

    // Writes since the snapshot are replayed into the loaded graph.
    let more: Vec<VectorRecord> = (0..200)
        .map(|j| {
            let (vector, cluster) = clusters.point();
            record(10_000 + j, vector, cluster)
        })
        .collect();
    upsert_both(&hnsw, &exact, more).await;
    delete_both(&hnsw, &exact, &["r5".to_owned(), "r6".to_owned(), "r10005".to_owned()]).await;
    drop(hnsw);
    let hnsw = HnswStore::open(dir.path()).unwrap();
    assert_eq!(hnsw.count("docs").await.unwrap(), exact.count("docs").await.unwrap());
    let truth = searches(&exact, &queries).await;
    let recall = recall_of(&searches(&hnsw, &queries).await, &truth);
    assert!(recall >= 0.95, "recall@10 after replaying the log {recall:.4}");

    // A damaged graph file is set aside and the graph rebuilt from the records.
    hnsw.compact("docs").await.unwrap();
    drop(hnsw);
    let graph = dir.path().join("docs").join("graph");
    let mut bytes = std::fs::read(&graph).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&graph, bytes).unwrap();
    let hnsw = HnswStore::open(dir.path()).unwrap();
    let recall = recall_of(&searches(&hnsw, &queries).await, &truth);
    assert!(recall >= 0.95, "recall@10 with a rebuilt graph {recall:.4}");
}
