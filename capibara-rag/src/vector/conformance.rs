//! The behaviour every [`VectorStore`] must show, as one reusable suite (feature `test-utils`).
//!
//! ```no_run
//! # async fn demo() {
//! use capibara_rag::vector::{ExactStore, conformance};
//! conformance::run_conformance(&ExactStore::in_memory()).await;
//! # }
//! ```
//!
//! Each check takes the store and the name of a collection it creates and fills; run them on
//! collections that do not exist yet ([`run_conformance_with_prefix`] picks the names). A failed
//! check panics with what differed, like an assertion. Scores are compared with a tolerance of
//! 1e-4 (relative), and ranking against a brute-force computation in `f64`, allowing for near
//! ties, so stores that sum in another order (SIMD, GPUs, Milvus) pass.

// Test support: failures are reported by panicking, as assertions do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use capibara_core::Error;
use capibara_core::vector::{Filter, MAX_K, Metadata, ScoredRecord, VectorQuery, VectorRecord, VectorStore};
use serde_json::{Value, json};

/// Runs every check on collections named `conformance_*`.
pub async fn run_conformance(store: &dyn VectorStore) {
    run_conformance_with_prefix(store, "conformance").await;
}

/// Runs every check on collections named `{prefix}_*` (`prefix` must make valid collection names).
pub async fn run_conformance_with_prefix(store: &dyn VectorStore, prefix: &str) {
    let name = |check: &str| format!("{prefix}_{check}");
    ensure_collection_is_idempotent(store, &name("ensure")).await;
    upsert_and_get_round_trip(store, &name("round_trip")).await;
    upsert_replaces_by_id(store, &name("replace")).await;
    delete_returns_how_many_existed(store, &name("delete")).await;
    count_follows_writes(store, &name("count")).await;
    search_ranks_by_inner_product(store, &name("ranking")).await;
    filter_applies_before_top_k(store, &name("rare")).await;
    every_filter_variant(store, &name("filters")).await;
    unknown_filter_field_is_an_error(store, &name("unknown_field")).await;
    invalid_input_is_rejected(store, &name("invalid")).await;
    missing_collection_is_not_found(store, &name("missing")).await;
    search_many_equals_repeated_search(store, &name("many")).await;
    empty_collection_search_returns_empty(store, &name("empty")).await;
}

/// What the suite left behind in `collections` (a store's collection names after
/// [`run_conformance`]): each collection's count and, for the suite's ranking and filter
/// collections, every record ranked against a fixed query. A reopened persisted store must give
/// the same answers.
pub async fn leftover_answers(
    store: &dyn VectorStore,
    collections: Vec<String>,
) -> Vec<(String, u64, Vec<ScoredRecord>)> {
    let mut answers = Vec::new();
    for name in collections {
        let count = store.count(&name).await.unwrap_or_else(|e| panic!("count of {name}: {e}"));
        let dimension = match name.as_str() {
            "conformance_ranking" => 16,
            "conformance_filters" => 4,
            _ => 0,
        };
        let hits = if dimension == 0 {
            Vec::new()
        } else {
            let query = VectorQuery { vector: vec![0.5; dimension], k: MAX_K, filter: None };
            store.search(&name, &query).await.unwrap_or_else(|e| panic!("search of {name}: {e}"))
        };
        answers.push((name, count, hits));
    }
    answers
}

/// A deterministic generator (splitmix64), so failures reproduce.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn value(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// A vector of `d` values whose length also varies (0.5 to 2), so that inner product and
    /// cosine rank differently.
    fn vector(&mut self, d: usize) -> Vec<f32> {
        let scale = 1.25 + 0.75 * self.value();
        (0..d).map(|_| self.value() * scale).collect()
    }
}

fn object(value: Value) -> Metadata {
    match value {
        Value::Object(map) => map,
        _ => Metadata::new(),
    }
}

fn record(id: &str, vector: Vec<f32>, metadata: Value) -> VectorRecord {
    VectorRecord { id: id.into(), vector, text: format!("texto de {id}"), metadata: object(metadata) }
}

fn query(vector: Vec<f32>, k: usize, filter: Option<Filter>) -> VectorQuery {
    VectorQuery { vector, k, filter }
}

fn eq(field: &str, value: Value) -> Filter {
    Filter::Eq { field: field.into(), value }
}

fn ids(hits: &[ScoredRecord]) -> Vec<&str> {
    hits.iter().map(|hit| hit.record.id.as_str()).collect()
}

/// A record's metadata value (`null` when missing).
fn field(record: &VectorRecord, name: &str) -> Value {
    record.metadata.get(name).cloned().unwrap_or(Value::Null)
}

/// A record's `year` (NaN when missing).
fn year(record: &VectorRecord) -> f64 {
    field(record, "year").as_f64().unwrap_or(f64::NAN)
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
}

fn close(actual: f32, expected: f64) -> bool {
    (f64::from(actual) - expected).abs() <= 1e-4 * expected.abs().max(1.0)
}

fn expect_invalid<T: std::fmt::Debug>(result: capibara_core::Result<T>, what: &str) -> String {
    match result {
        Err(Error::InvalidInput(message)) => message,
        other => panic!("{what}: expected an invalid-input error, got {other:?}"),
    }
}

/// Checks `hits` are the best `k` of `records` passing `keep` for `query`, best first, with
/// scores equal to the inner products (up to rounding and near ties).
fn assert_exact_top_k(
    hits: &[ScoredRecord],
    records: &[VectorRecord],
    query: &VectorQuery,
    keep: impl Fn(&VectorRecord) -> bool,
) {
    let mut expected: Vec<(f64, &VectorRecord)> =
        records.iter().filter(|r| keep(r)).map(|r| (dot(&r.vector, &query.vector), r)).collect();
    expected.sort_by(|a, b| b.0.total_cmp(&a.0));
    let want = query.k.min(expected.len());
    assert_eq!(hits.len(), want, "expected {want} hits, got {:?}", ids(hits));
    let tolerance = |score: f64| 1e-4 * score.abs().max(1.0);
    for (i, hit) in hits.iter().enumerate() {
        let Some((exact, stored)) = expected.iter().find(|(_, r)| r.id == hit.record.id) else {
            panic!("hit {:?} is not among the matching records", hit.record.id);
        };
        assert!(close(hit.score, *exact), "score of {:?}: {} vs exact {exact}", hit.record.id, hit.score);
        assert_eq!(&hit.record, *stored, "the hit carries the stored record");
        // Near ties may swap places; anything else must be in order and within the true top k.
        assert!(
            *exact >= expected[want - 1].0 - tolerance(*exact),
            "{:?} is not in the top {want}",
            hit.record.id
        );
        if i > 0 {
            assert!(
                hit.score <= hits[i - 1].score + tolerance(*exact) as f32,
                "hits are not best first: {:?}",
                ids(hits)
            );
        }
    }
    let mut distinct = ids(hits);
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), hits.len(), "a record is returned twice");
}

/// `ensure_collection` twice with one dimension succeeds; with another it is invalid input.
pub async fn ensure_collection_is_idempotent(store: &dyn VectorStore, collection: &str) {
    store.ensure_collection(collection, 4).await.unwrap();
    store.upsert(collection, vec![record("a", vec![1.0, 0.0, 0.0, 0.0], json!({}))]).await.unwrap();
    store.ensure_collection(collection, 4).await.unwrap();
    assert_eq!(store.count(collection).await.unwrap(), 1, "ensuring again keeps the records");
    let message = expect_invalid(store.ensure_collection(collection, 5).await, "another dimension");
    assert!(message.contains('4') && message.contains('5'), "{message}");
}

/// What is upserted comes back from `get` unchanged; missing ids are left out.
pub async fn upsert_and_get_round_trip(store: &dyn VectorStore, collection: &str) {
    store.ensure_collection(collection, 3).await.unwrap();
    let records = vec![
        VectorRecord {
            id: "doc-1#0".into(),
            vector: vec![0.25, -1.5, 3.0e-7],
            text: "¿Dónde está la biblioteca? — ñandú 🦫".into(),
            metadata: object(
                json!({"lang": "es", "page": 3, "score": 0.75, "ok": true, "tags": ["a", "b"], "source": {"kind": "pdf"}}),
            ),
        },
        VectorRecord {
            id: "doc-2".into(),
            vector: vec![1.0, 2.0, 3.0],
            text: String::new(),
            metadata: Metadata::new(),
        },
    ];
    store.upsert(collection, records.clone()).await.unwrap();
    let asked = vec!["doc-2".to_owned(), "missing".to_owned(), "doc-1#0".to_owned()];
    let mut got = store.get(collection, &asked).await.unwrap();
    got.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(got, records);
    assert!(store.get(collection, &["missing".to_owned()]).await.unwrap().is_empty());
}

/// Upserting an existing id replaces the whole record.
pub async fn upsert_replaces_by_id(store: &dyn VectorStore, collection: &str) {
    store.ensure_collection(collection, 2).await.unwrap();
    store
        .upsert(
            collection,
            vec![record("a", vec![1.0, 0.0], json!({"v": 1})), record("b", vec![0.0, 1.0], json!({}))],
        )
        .await
        .unwrap();
    let replacement = VectorRecord {
        id: "a".into(),
        vector: vec![0.0, -2.0],
        text: "new".into(),
        metadata: object(json!({"v": 2})),
    };
    store.upsert(collection, vec![replacement.clone()]).await.unwrap();
    assert_eq!(store.count(collection).await.unwrap(), 2);
    assert_eq!(store.get(collection, &["a".to_owned()]).await.unwrap(), vec![replacement]);
    let hits = store.search(collection, &query(vec![0.0, -1.0], 2, None)).await.unwrap();
    assert_eq!(ids(&hits), vec!["a", "b"]);
    assert!(close(hits[0].score, 2.0), "the new vector is searched, score {}", hits[0].score);
    let old = store.search(collection, &query(vec![1.0, 0.0], 2, Some(eq("v", json!(1))))).await.unwrap();
    assert!(old.is_empty(), "the old metadata is gone");
}

/// `delete` returns how many of the ids existed, and they are gone.
pub async fn delete_returns_how_many_existed(store: &dyn VectorStore, collection: &str) {
    store.ensure_collection(collection, 2).await.unwrap();
    let records: Vec<_> = ["a", "b", "c"].iter().map(|id| record(id, vec![1.0, 1.0], json!({}))).collect();
    store.upsert(collection, records).await.unwrap();
    let ids_of = |ids: &[&str]| ids.iter().map(|id| (*id).to_owned()).collect::<Vec<_>>();
    assert_eq!(store.delete(collection, &ids_of(&["a", "x", "b"])).await.unwrap(), 2);
    assert_eq!(store.delete(collection, &ids_of(&["a"])).await.unwrap(), 0);
    assert_eq!(store.delete(collection, &[]).await.unwrap(), 0);
    assert_eq!(store.count(collection).await.unwrap(), 1);
    assert!(store.get(collection, &ids_of(&["a", "b"])).await.unwrap().is_empty());
    let hits = store.search(collection, &query(vec![1.0, 0.0], 5, None)).await.unwrap();
    assert_eq!(ids(&hits), vec!["c"]);
}

/// `count` follows inserts, replacements and deletes.
pub async fn count_follows_writes(store: &dyn VectorStore, collection: &str) {
    store.ensure_collection(collection, 2).await.unwrap();
    assert_eq!(store.count(collection).await.unwrap(), 0);
    let batch = |range: std::ops::Range<usize>| {
        range.map(|i| record(&format!("r{i}"), vec![i as f32, 1.0], json!({}))).collect()
    };
    store.upsert(collection, batch(0..10)).await.unwrap();
    assert_eq!(store.count(collection).await.unwrap(), 10);
    store.upsert(collection, batch(7..15)).await.unwrap();
    assert_eq!(store.count(collection).await.unwrap(), 15);
    let gone: Vec<String> = (0..15).step_by(2).map(|i| format!("r{i}")).collect();
    assert_eq!(store.delete(collection, &gone).await.unwrap(), 8);
    assert_eq!(store.count(collection).await.unwrap(), 7);
}

/// Search returns the exact top k by inner product (not cosine), best first.
pub async fn search_ranks_by_inner_product(store: &dyn VectorStore, collection: &str) {
    let d = 16;
    let mut rng = Rng(1);
    store.ensure_collection(collection, d).await.unwrap();
    let records: Vec<VectorRecord> =
        (0..300).map(|i| record(&format!("r{i}"), rng.vector(d), json!({"i": i}))).collect();
    store.upsert(collection, records.clone()).await.unwrap();
    for k in [1, 10, 300, MAX_K] {
        let q = query(rng.vector(d), k, None);
        let hits = store.search(collection, &q).await.unwrap();
        assert_exact_top_k(&hits, &records, &q, |_| true);
    }
}

/// Filters apply before top-k: a rare match is found even when every other record scores higher.
pub async fn filter_applies_before_top_k(store: &dyn VectorStore, collection: &str) {
    let d = 8;
    store.ensure_collection(collection, d).await.unwrap();
    let mut rng = Rng(2);
    let target = vec![1.0; d];
    let records: Vec<VectorRecord> = (0..500)
        .map(|i| {
            let rare = i % 167 == 5;
            // The rare records point away from the query: they are the worst by score.
            let vector = if rare {
                target.iter().map(|v| -v - rng.value().abs()).collect()
            } else {
                rng.vector(d).iter().map(|v| v.abs() + 0.1).collect()
            };
            record(&format!("r{i}"), vector, json!({ "rare": rare }))
        })
        .collect();
    store.upsert(collection, records.clone()).await.unwrap();
    let rare = |r: &VectorRecord| r.metadata.get("rare") == Some(&json!(true));
    for k in [2, 3, 10] {
        let q = query(target.clone(), k, Some(eq("rare", json!(true))));
        let hits = store.search(collection, &q).await.unwrap();
        assert_exact_top_k(&hits, &records, &q, rare);
    }
}

/// Each filter variant selects what the documented semantics say.
pub async fn every_filter_variant(store: &dyn VectorStore, collection: &str) {
    let d = 4;
    store.ensure_collection(collection, d).await.unwrap();
    let mut rng = Rng(3);
    let langs = ["es", "en", "fr"];
    let records: Vec<VectorRecord> = (0..60)
        .map(|i| {
            let mut metadata =
                json!({"lang": langs[i % 3], "year": 2000 + i, "weight": i as f64 / 4.0, "even": i % 2 == 0});
            if i % 5 == 0 {
                metadata["extra"] = json!("yes");
            }
            record(&format!("r{i}"), rng.vector(d), metadata)
        })
        .collect();
    store.upsert(collection, records.clone()).await.unwrap();
    let range =
        |name: &str, gte: Option<f64>, lte: Option<f64>| Filter::Range { field: name.into(), gte, lte };
    let not = |filter: Filter| Filter::Not(Box::new(filter));
    type Check = (Filter, Box<dyn Fn(&VectorRecord) -> bool>);
    let cases: Vec<Check> = vec![
        (eq("lang", json!("es")), Box::new(|r| field(r, "lang") == json!("es"))),
        (eq("year", json!(2010)), Box::new(|r| year(r) == 2010.0)),
        (eq("year", json!(2010.0)), Box::new(|r| year(r) == 2010.0)),
        (eq("weight", json!(2.5)), Box::new(|r| field(r, "weight") == json!(2.5))),
        (eq("even", json!(false)), Box::new(|r| field(r, "even") == json!(false))),
        (eq("lang", json!(1)), Box::new(|_| false)),
        (
            Filter::In { field: "lang".into(), values: vec![json!("en"), json!("fr"), json!("de")] },
            Box::new(|r| field(r, "lang") != json!("es")),
        ),
        (
            Filter::In { field: "year".into(), values: vec![json!(2001), json!(2003.0), json!(1999)] },
            Box::new(|r| [2001.0, 2003.0].contains(&year(r))),
        ),
        (range("year", Some(2050.0), None), Box::new(|r| year(r) >= 2050.0)),
        (range("year", None, Some(2004.0)), Box::new(|r| year(r) <= 2004.0)),
        (
            range("weight", Some(2.5), Some(5.0)),
            Box::new(|r| (2.5..=5.0).contains(&field(r, "weight").as_f64().unwrap_or(-1.0))),
        ),
        (range("lang", Some(0.0), None), Box::new(|_| false)),
        (
            Filter::And(vec![eq("lang", json!("es")), eq("even", json!(true))]),
            Box::new(|r| field(r, "lang") == json!("es") && field(r, "even") == json!(true)),
        ),
        (
            Filter::Or(vec![eq("lang", json!("fr")), range("year", Some(2055.0), None)]),
            Box::new(|r| field(r, "lang") == json!("fr") || year(r) >= 2055.0),
        ),
        (not(eq("lang", json!("es"))), Box::new(|r| field(r, "lang") != json!("es"))),
        (not(eq("extra", json!("yes"))), Box::new(|r| field(r, "extra") != json!("yes"))),
        (
            Filter::And(vec![
                not(Filter::Or(vec![eq("lang", json!("en")), eq("even", json!(true))])),
                range("year", Some(2010.0), Some(2040.0)),
            ]),
            Box::new(|r| {
                !(field(r, "lang") == json!("en") || field(r, "even") == json!(true))
                    && (2010.0..=2040.0).contains(&year(r))
            }),
        ),
    ];
    for (filter, expected) in cases {
        let q = query(rng.vector(d), 60, Some(filter.clone()));
        let hits = store.search(collection, &q).await.unwrap_or_else(|e| panic!("{filter:?}: {e}"));
        let wanted = records.iter().filter(|r| expected(r)).count();
        assert_eq!(hits.len(), wanted, "{filter:?} returned {:?}", ids(&hits));
        assert_exact_top_k(&hits, &records, &q, |r| expected(r));
    }
}

/// A filter naming a field no record has is invalid input naming the field.
pub async fn unknown_filter_field_is_an_error(store: &dyn VectorStore, collection: &str) {
    store.ensure_collection(collection, 2).await.unwrap();
    store.upsert(collection, vec![record("a", vec![1.0, 0.0], json!({"lang": "es"}))]).await.unwrap();
    for filter in [
        eq("lnag", json!("es")),
        Filter::Not(Box::new(eq("lnag", json!("es")))),
        Filter::And(vec![eq("lang", json!("es")), eq("lnag", json!(1))]),
    ] {
        let result = store.search(collection, &query(vec![1.0, 0.0], 1, Some(filter))).await;
        let message = expect_invalid(result, "unknown filter field");
        assert!(message.contains("lnag"), "{message}");
    }
}

/// Bad queries and records are invalid input: k out of range, wrong dimension, non-finite values,
/// malformed filters.
pub async fn invalid_input_is_rejected(store: &dyn VectorStore, collection: &str) {
    store.ensure_collection(collection, 3).await.unwrap();
    store.upsert(collection, vec![record("a", vec![1.0, 0.0, 0.0], json!({"n": 1}))]).await.unwrap();
    let v = vec![1.0, 0.0, 0.0];
    for (q, what) in [
        (query(v.clone(), 0, None), "k = 0"),
        (query(v.clone(), 10_000, None), "k = 10000"),
        (query(vec![1.0, 0.0], 1, None), "wrong dimension"),
        (query(vec![1.0, f32::NAN, 0.0], 1, None), "NaN"),
        (query(vec![1.0, f32::INFINITY, 0.0], 1, None), "infinity"),
        (
            query(v.clone(), 1, Some(Filter::Range { field: "n".into(), gte: None, lte: None })),
            "range without bounds",
        ),
        (query(v.clone(), 1, Some(Filter::And(vec![]))), "empty and"),
    ] {
        expect_invalid(store.search(collection, &q).await, what);
        expect_invalid(store.search_many(collection, &[query(v.clone(), 1, None), q]).await, what);
    }
    let wrong =
        expect_invalid(store.search(collection, &query(vec![1.0, 0.0], 1, None)).await, "wrong dimension");
    assert!(wrong.contains('2') && wrong.contains('3'), "{wrong}");
    expect_invalid(
        store.upsert(collection, vec![record("b", vec![1.0, 0.0], json!({}))]).await,
        "record dimension",
    );
    expect_invalid(
        store.upsert(collection, vec![record("b", vec![1.0, f32::NAN, 0.0], json!({}))]).await,
        "NaN record",
    );
    expect_invalid(store.upsert(collection, vec![record("", v.clone(), json!({}))]).await, "empty id");
    expect_invalid(store.ensure_collection("no-dashes", 3).await, "collection name");
    assert_eq!(store.count(collection).await.unwrap(), 1, "rejected batches write nothing");
}

/// Every operation on a collection that does not exist is not-found.
pub async fn missing_collection_is_not_found(store: &dyn VectorStore, collection: &str) {
    let is_not_found = |result: Result<(), Error>, what: &str| {
        assert!(matches!(result, Err(Error::NotFound(_))), "{what}: expected not found, got {result:?}");
    };
    let q = query(vec![1.0], 1, None);
    is_not_found(store.search(collection, &q).await.map(drop), "search");
    is_not_found(store.search_many(collection, std::slice::from_ref(&q)).await.map(drop), "search_many");
    is_not_found(store.upsert(collection, vec![record("a", vec![1.0], json!({}))]).await, "upsert");
    is_not_found(store.get(collection, &["a".to_owned()]).await.map(drop), "get");
    is_not_found(store.delete(collection, &["a".to_owned()]).await.map(drop), "delete");
    is_not_found(store.count(collection).await.map(drop), "count");
}

/// `search_many` answers like one `search` per query, in order, filtered or not.
pub async fn search_many_equals_repeated_search(store: &dyn VectorStore, collection: &str) {
    let d = 12;
    store.ensure_collection(collection, d).await.unwrap();
    let mut rng = Rng(4);
    let records: Vec<VectorRecord> =
        (0..200).map(|i| record(&format!("r{i}"), rng.vector(d), json!({"g": i % 7}))).collect();
    store.upsert(collection, records).await.unwrap();
    let queries: Vec<VectorQuery> = (0..12)
        .map(|i| {
            let filter = (i % 4 == 1).then(|| eq("g", json!(i % 7)));
            query(rng.vector(d), 1 + i * 3, filter)
        })
        .collect();
    let batched = store.search_many(collection, &queries).await.unwrap();
    assert_eq!(batched.len(), queries.len());
    for (q, hits) in queries.iter().zip(&batched) {
        let single = store.search(collection, q).await.unwrap();
        assert_eq!(ids(hits), ids(&single), "query with k {}", q.k);
        for (a, b) in hits.iter().zip(&single) {
            assert!(close(a.score, f64::from(b.score)), "{} vs {}", a.score, b.score);
        }
    }
    assert!(store.search_many(collection, &[]).await.unwrap().is_empty());
}

/// An empty collection answers searches with no hits (not an error), and its count is zero.
pub async fn empty_collection_search_returns_empty(store: &dyn VectorStore, collection: &str) {
    store.ensure_collection(collection, 3).await.unwrap();
    let q = query(vec![1.0, 0.0, 0.0], 10, None);
    assert!(store.search(collection, &q).await.unwrap().is_empty());
    assert_eq!(store.search_many(collection, &[q.clone(), q]).await.unwrap(), vec![vec![], vec![]]);
    assert_eq!(store.count(collection).await.unwrap(), 0);
    assert!(store.get(collection, &["a".to_owned()]).await.unwrap().is_empty());
    assert_eq!(store.delete(collection, &["a".to_owned()]).await.unwrap(), 0);
}
