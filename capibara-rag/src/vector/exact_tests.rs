//! The store's own rules beyond the conformance suite: limits, duplicate ids, tie-breaking,
//! large scans off the async workers, known fields, the directory lock, automatic compaction.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use capibara_core::vector::Filter;
use serde_json::json;

use super::*;
use crate::vector::wal;

fn record(id: &str, vector: Vec<f32>, metadata: serde_json::Value) -> VectorRecord {
    let serde_json::Value::Object(metadata) = metadata else { panic!("metadata is an object") };
    VectorRecord { id: id.into(), vector, text: format!("t{id}"), metadata }
}

fn query(vector: Vec<f32>, k: usize) -> VectorQuery {
    VectorQuery { vector, k, filter: None }
}

fn ids(hits: &[ScoredRecord]) -> Vec<&str> {
    hits.iter().map(|hit| hit.record.id.as_str()).collect()
}

#[tokio::test]
async fn limits_are_clear_errors() {
    let store = ExactStore::in_memory();
    for dimension in [0, MAX_DIMENSION + 1] {
        let error = store.ensure_collection("c", dimension).await.unwrap_err();
        assert_eq!(error.code(), "invalid_input", "{error}");
    }
    store.ensure_collection("c", MAX_DIMENSION).await.unwrap();
    store.ensure_collection("small", 2).await.unwrap();

    let batch: Vec<_> = (0..=MAX_BATCH).map(|i| record(&i.to_string(), vec![1.0, 0.0], json!({}))).collect();
    let error = store.upsert("small", batch).await.unwrap_err();
    assert!(matches!(&error, Error::TooLarge(m) if m.contains("10000")), "{error}");

    let mut long_text = record("a", vec![1.0, 0.0], json!({}));
    long_text.text = "x".repeat(MAX_TEXT_BYTES + 1);
    assert!(matches!(store.upsert("small", vec![long_text.clone()]).await, Err(Error::TooLarge(_))));
    long_text.text.pop();
    store.upsert("small", vec![long_text]).await.unwrap();

    let big = record("b", vec![1.0, 0.0], json!({ "blob": "y".repeat(MAX_METADATA_BYTES) }));
    assert!(matches!(store.upsert("small", vec![big]).await, Err(Error::TooLarge(_))));

    let many_ids: Vec<String> = (0..=MAX_BATCH).map(|i| i.to_string()).collect();
    assert!(matches!(store.get("small", &many_ids).await, Err(Error::TooLarge(_))));
    assert!(matches!(store.delete("small", &many_ids).await, Err(Error::TooLarge(_))));
    let queries = vec![query(vec![1.0, 0.0], 1); MAX_QUERIES + 1];
    assert!(matches!(store.search_many("small", &queries).await, Err(Error::TooLarge(_))));
    assert_eq!(store.count("small").await.unwrap(), 1);
}

#[tokio::test]
async fn errors_name_the_collection_and_the_dimensions() {
    let store = ExactStore::in_memory();
    store.ensure_collection("docs", 3).await.unwrap();
    let error = store.search("docs", &query(vec![1.0, 0.0], 1)).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid input: collection 'docs': vector has 2 dimensions, the collection expects 3"
    );
    let error = store.ensure_collection("docs", 4).await.unwrap_err();
    assert_eq!(error.to_string(), "invalid input: collection 'docs' exists with dimension 3, not 4");
    assert_eq!(store.count("nope").await.unwrap_err().to_string(), "not found: collection 'nope'");
    assert_eq!(store.count("no pe").await.unwrap_err().code(), "invalid_input");
    assert_eq!(store.collections().unwrap(), vec!["docs"]);
    assert_eq!(format!("{store:?}"), r#"ExactStore { path: None, collections: ["docs"], .. }"#);
}

#[tokio::test]
async fn duplicate_ids_in_one_batch_the_last_wins() {
    let store = ExactStore::in_memory();
    store.ensure_collection("c", 2).await.unwrap();
    let batch = vec![
        record("a", vec![1.0, 0.0], json!({"v": 1})),
        record("b", vec![0.0, 1.0], json!({})),
        record("a", vec![2.0, 0.0], json!({"v": 2})),
    ];
    store.upsert("c", batch).await.unwrap();
    assert_eq!(store.count("c").await.unwrap(), 2);
    let got = store.get("c", &["a".into(), "b".into(), "a".into()]).await.unwrap();
    assert_eq!(got.len(), 2, "each id once, in the order asked");
    assert_eq!(got[0], record("a", vec![2.0, 0.0], json!({"v": 2})));
}

#[tokio::test]
async fn equal_scores_go_to_the_earlier_insertion() {
    let store = ExactStore::in_memory();
    store.ensure_collection("c", 2).await.unwrap();
    let same: Vec<_> =
        ["e", "d", "c", "b", "a"].iter().map(|id| record(id, vec![1.0, 1.0], json!({}))).collect();
    store.upsert("c", same).await.unwrap();
    let hits = store.search("c", &query(vec![1.0, 0.0], 3)).await.unwrap();
    assert_eq!(ids(&hits), vec!["e", "d", "c"]);
    // Deleting moves the last record into the hole; insertion order still decides.
    store.delete("c", &["d".into()]).await.unwrap();
    let hits = store.search("c", &query(vec![1.0, 0.0], 3)).await.unwrap();
    assert_eq!(ids(&hits), vec!["e", "c", "b"]);
    // Replacing a record keeps its place.
    store.upsert("c", vec![record("e", vec![1.0, 1.0], json!({"new": true}))]).await.unwrap();
    let hits = store.search("c", &query(vec![1.0, 0.0], 1)).await.unwrap();
    assert_eq!(ids(&hits), vec!["e"]);
}

#[tokio::test]
async fn large_collections_are_scanned_off_the_async_workers() {
    let store = ExactStore::in_memory();
    let (n, d) = (BLOCKING_SCAN_ROWS + 1_000, 8);
    store.ensure_collection("big", d).await.unwrap();
    let vector =
        |i: usize| (0..d).map(|j| ((i * 31 + j * 17) % 101) as f32 / 101.0 - 0.5).collect::<Vec<f32>>();
    for chunk in (0..n).collect::<Vec<_>>().chunks(MAX_BATCH) {
        let batch = chunk.iter().map(|i| record(&format!("r{i}"), vector(*i), json!({ "i": i }))).collect();
        store.upsert("big", batch).await.unwrap();
    }
    let q = vector(12_345);
    let hits = store.search("big", &query(q.clone(), 5)).await.unwrap();
    let mut exact: Vec<(f32, usize)> =
        (0..n).map(|i| (vector(i).iter().zip(&q).map(|(a, b)| a * b).sum::<f32>(), i)).collect();
    exact.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    assert!((hits[0].score - exact[0].0).abs() < 1e-5);
    let filtered = VectorQuery {
        vector: q.clone(),
        k: 3,
        filter: Some(Filter::Range { field: "i".into(), gte: Some(20_500.0), lte: None }),
    };
    let hits = store.search("big", &filtered).await.unwrap();
    assert_eq!(hits.len(), 3);
    assert!(hits.iter().all(|hit| hit.record.metadata["i"].as_u64().unwrap() >= 20_500));
    let many = store.search_many("big", &[query(q.clone(), 2), filtered]).await.unwrap();
    assert_eq!(ids(&many[1]), ids(&hits));
}

#[tokio::test]
async fn fields_are_known_while_a_record_carries_them() {
    let store = ExactStore::in_memory();
    store.ensure_collection("c", 1).await.unwrap();
    let by_tag = VectorQuery {
        vector: vec![1.0],
        k: 1,
        filter: Some(Filter::Eq { field: "tag".into(), value: json!("x") }),
    };
    assert!(
        store.search("c", &by_tag).await.unwrap().is_empty(),
        "an empty collection answers any valid filter"
    );
    store
        .upsert(
            "c",
            vec![record("a", vec![1.0], json!({"tag": "x"})), record("b", vec![1.0], json!({"n": 1}))],
        )
        .await
        .unwrap();
    assert_eq!(store.search("c", &by_tag).await.unwrap().len(), 1);
    store.upsert("c", vec![record("a", vec![1.0], json!({}))]).await.unwrap();
    let error = store.search("c", &by_tag).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid input: collection 'c': unknown filter field 'tag' in collection 'c' (known: n)"
    );
}

#[tokio::test]
async fn a_data_directory_is_opened_by_one_store_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = ExactStore::open(dir.path()).unwrap();
    assert_eq!(store.path(), Some(dir.path()));
    let error = ExactStore::open(dir.path()).unwrap_err();
    assert_eq!(error.code(), "unavailable", "{error}");
    drop(store);
    ExactStore::open(dir.path()).unwrap();
}

#[tokio::test]
async fn the_log_is_compacted_as_it_grows_and_reopening_gives_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let options = ExactStoreOptions { compaction_min_wal_bytes: 4096 };
    let store = ExactStore::open_with(dir.path(), options.clone()).unwrap();
    store.ensure_collection("docs", 4).await.unwrap();
    for round in 0..30 {
        let batch = (0..10)
            .map(|i| {
                record(
                    &format!("r{}", (round * 7 + i) % 120),
                    vec![round as f32, i as f32, 1.0, -1.0],
                    json!({ "round": round }),
                )
            })
            .collect();
        store.upsert("docs", batch).await.unwrap();
        store.delete("docs", &[format!("r{}", round * 3)]).await.unwrap();
    }
    let wal_len = std::fs::metadata(dir.path().join("docs").join("wal")).unwrap().len();
    let snapshot_len = std::fs::metadata(dir.path().join("docs").join("snapshot")).unwrap().len();
    assert!(
        wal_len <= snapshot_len.max(4096) + 1024,
        "compaction keeps the log small: {wal_len} vs {snapshot_len}"
    );
    let q = query(vec![1.0, 0.5, 0.0, 0.0], 20);
    let before = store.search("docs", &q).await.unwrap();
    let count = store.count("docs").await.unwrap();
    drop(store);
    let store = ExactStore::open_with(dir.path(), options).unwrap();
    assert_eq!(store.count("docs").await.unwrap(), count);
    assert_eq!(store.search("docs", &q).await.unwrap(), before);
    store.compact("docs").await.unwrap();
    assert_eq!(std::fs::metadata(dir.path().join("docs").join("wal")).unwrap().len(), wal::HEADER_LEN);
}

#[test]
fn works_without_a_tokio_runtime() {
    let dir = tempfile::tempdir().unwrap();
    futures::executor::block_on(async {
        let store = ExactStore::open(dir.path()).unwrap();
        store.ensure_collection("c", 2).await.unwrap();
        store.upsert("c", vec![record("a", vec![1.0, 0.0], json!({}))]).await.unwrap();
        assert_eq!(store.delete("c", &["a".into()]).await.unwrap(), 1);
        assert_eq!(store.count("c").await.unwrap(), 0);
    });
}

#[tokio::test]
async fn directories_that_are_not_collections_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("lost+found")).unwrap();
    std::fs::create_dir_all(dir.path().join("half_created")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hola").unwrap();
    let store = ExactStore::open(dir.path()).unwrap();
    assert!(store.collections().unwrap().is_empty());
    store.ensure_collection("half_created", 3).await.unwrap();
    drop(store);
    assert_eq!(ExactStore::open(dir.path()).unwrap().collections().unwrap(), vec!["half_created"]);
}
