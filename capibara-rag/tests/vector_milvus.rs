//! [`MilvusStore`] against a real Milvus 2.3.5 standalone server: the vector store conformance
//! suite (exact and HNSW indexes), what pymilvus reads of and writes to the same collections,
//! awkward ids and filter values through the expression escaping, answers over the client's
//! message limit, an unreachable or vanishing server, and bad input.
//!
//! The server is `http://127.0.0.1:19530` (`CAPIBARA_TEST_MILVUS_URL` names another);
//! `scripts/ensure-milvus` starts one once per run (`make test` calls it through
//! `scripts/ensure-services`). When none answers, every test here fails saying so: none skips.
//! Each test works in collections named `capibara_test_<unix seconds>_<pid>_…` and drops them;
//! those of crashed runs are dropped once they are an hour old.
//!
//! Needs the `milvus` and `test-utils` features (`required-features` in Cargo.toml).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use capibara_core::Error;
use capibara_core::vector::{Filter, Metadata, VectorQuery, VectorRecord, VectorStore};
use capibara_rag::vector::{MilvusConfig, MilvusIndex, MilvusStore, conformance};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const URL_VARIABLE: &str = "CAPIBARA_TEST_MILVUS_URL";
const PREFIX: &str = "capibara_test_";

fn url() -> String {
    std::env::var(URL_VARIABLE).unwrap_or_else(|_| capibara_rag::vector::MILVUS_DEFAULT_URL.to_owned())
}

fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A store on the test server; panics naming what is missing when it does not answer.
async fn connect(config: MilvusConfig) -> MilvusStore {
    let url = config.url.clone();
    MilvusStore::connect(config).await.unwrap_or_else(|error| {
        panic!(
            "these tests need a Milvus server at {url} ({URL_VARIABLE} names another), and it does not \
             answer: {error}. Start one with scripts/ensure-milvus (make test does)."
        )
    })
}

/// The collections of one test: a unique prefix, dropped by [`Scope::drop_all`].
struct Scope {
    store: MilvusStore,
    prefix: String,
}

impl Scope {
    async fn new(test: &str, config: MilvusConfig) -> Self {
        let store = connect(config).await;
        drop_leftovers(&store).await;
        let prefix = format!("{PREFIX}{}_{}_{test}", unix_seconds(), std::process::id());
        Self { store, prefix }
    }

    fn name(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.prefix)
    }

    async fn drop_all(self) {
        for name in self.store.collections().await.unwrap() {
            if name.starts_with(&self.prefix) {
                self.store.drop_collection(&name).await.unwrap();
            }
        }
    }
}

/// Drops test collections more than an hour old (left by runs that crashed).
async fn drop_leftovers(store: &MilvusStore) {
    let now = unix_seconds();
    for name in store.collections().await.unwrap() {
        let created = name.strip_prefix(PREFIX).and_then(|rest| rest.split('_').next()?.parse::<u64>().ok());
        if created.is_some_and(|created| now.saturating_sub(created) > 3600) {
            let _ = store.drop_collection(&name).await;
        }
    }
}

fn exact() -> MilvusConfig {
    MilvusConfig { index: MilvusIndex::Flat, ..MilvusConfig::at(url()) }
}

fn metadata(value: Value) -> Metadata {
    let Value::Object(map) = value else { panic!("metadata is an object") };
    map
}

fn record(id: &str, vector: Vec<f32>, text: &str, meta: Value) -> VectorRecord {
    VectorRecord { id: id.into(), vector, text: text.into(), metadata: metadata(meta) }
}

fn ids(hits: &[capibara_core::vector::ScoredRecord]) -> Vec<&str> {
    hits.iter().map(|hit| hit.record.id.as_str()).collect()
}

fn expect_invalid<T: std::fmt::Debug>(result: capibara_core::Result<T>, what: &str) -> String {
    match result {
        Err(Error::InvalidInput(message)) => message,
        other => panic!("{what}: expected invalid input, got {other:?}"),
    }
}

async fn conformance_and_a_second_client(test: &str, config: MilvusConfig) {
    let scope = Scope::new(test, config.clone()).await;
    let started = Instant::now();
    conformance::run_conformance_with_prefix(&scope.store, &scope.prefix).await;
    eprintln!("conformance suite ({test}) took {:.1} s", started.elapsed().as_secs_f64());

    // Another client (as another process would be) sees the same records and rankings.
    let mine: Vec<String> = scope
        .store
        .collections()
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with(&scope.prefix))
        .collect();
    assert_eq!(mine.len(), 12, "every check but the missing collection's made one: {mine:?}");
    let other = connect(config).await;
    let counts = conformance::leftover_answers(&scope.store, mine.clone()).await;
    assert_eq!(conformance::leftover_answers(&other, mine).await, counts);
    let ranking = scope.name("ranking");
    let query = VectorQuery { vector: vec![0.5; 16], k: 300, filter: None };
    let (a, b) =
        (scope.store.search(&ranking, &query).await.unwrap(), other.search(&ranking, &query).await.unwrap());
    assert_eq!(a.len(), 300);
    assert_eq!(ids(&a), ids(&b));
    scope.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conforms_with_an_exact_index() {
    conformance_and_a_second_client("flat", exact()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conforms_with_the_default_hnsw_index() {
    conformance_and_a_second_client("hnsw", MilvusConfig::at(url())).await;
}

/// The venv Python with pymilvus that `scripts/ensure-milvus` installs.
fn python() -> String {
    if let Ok(python) = std::env::var("CAPIBARA_TEST_MILVUS_PYTHON") {
        return python;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/ensure-milvus");
    let output =
        Command::new(script).arg("python").output().unwrap_or_else(|e| panic!("running {script}: {e}"));
    assert!(output.status.success(), "{script} python: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymilvus_reads_and_writes_the_same_collections() {
    let scope = Scope::new("interop", MilvusConfig::at(url())).await;
    let (docs, foreign) = (scope.name("docs"), scope.name("foreign"));
    scope.store.ensure_collection(&docs, 4).await.unwrap();
    let written = vec![
        record(
            "doc-1#0",
            vec![0.25, -1.5, 3.0e-7, 1.0],
            "¿Dónde está la biblioteca? 🦫",
            json!({"lang": "es", "page": 3, "tags": ["a"]}),
        ),
        record("doc \"2\"", vec![1.0, 0.0, 0.0, 0.0], "", json!({})),
        record("doc-3", vec![0.0, 1.0, 0.0, 0.0], "tres", json!({"lang": "en", "score": 0.75})),
    ];
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    scope.store.upsert(&docs, written.clone()).await.unwrap();
    let query = vec![1.0f32, 0.5, 0.0, 0.25];
    let ours =
        scope.store.search(&docs, &VectorQuery { vector: query.clone(), k: 3, filter: None }).await.unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/milvus_interop.py");
    let all_ids: Vec<&str> = written.iter().map(|r| r.id.as_str()).collect();
    let output = Command::new(python())
        .args([script, &url(), &docs, &foreign])
        .arg(serde_json::to_string(&all_ids).unwrap())
        .arg(serde_json::to_string(&query).unwrap())
        .output()
        .unwrap();
    assert!(output.status.success(), "{script}: {}", String::from_utf8_lossy(&output.stderr));
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();

    // Same ids, texts, metadata and vectors; the write time is stamped in milliseconds.
    let mut rows: Vec<Value> = seen["rows"].as_array().unwrap().clone();
    rows.sort_by_key(|row| row["id"].as_str().unwrap().to_owned());
    let mut expected = written.clone();
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(rows.len(), expected.len());
    for (row, record) in rows.iter().zip(&expected) {
        assert_eq!(row["id"], json!(record.id));
        assert_eq!(row["text"], json!(record.text));
        assert_eq!(row["metadata"], Value::Object(record.metadata.clone()));
        let vector: Vec<f32> = serde_json::from_value(row["vector"].clone()).unwrap();
        assert_eq!(vector, record.vector);
        let stamped = row["timestamp"].as_i64().unwrap();
        assert!((before..before + 60_000).contains(&stamped), "timestamp {stamped} vs {before}");
    }
    // pymilvus ranks and scores like this store.
    let theirs: Vec<(String, f32)> = seen["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| (hit["id"].as_str().unwrap().to_owned(), hit["score"].as_f64().unwrap() as f32))
        .collect();
    assert_eq!(theirs.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ids(&ours));
    for ((_, score), hit) in theirs.iter().zip(&ours) {
        assert!((score - hit.score).abs() < 1e-5, "{score} vs {}", hit.score);
    }

    // What pymilvus wrote is a record here too, filterable by its metadata.
    let other = connect(MilvusConfig {
        consistency: capibara_rag::vector::MilvusConsistency::Strong,
        ..MilvusConfig::at(url())
    })
    .await;
    let theirs = other.get(&docs, &["from-pymilvus".to_owned()]).await.unwrap();
    assert_eq!(
        theirs,
        vec![record(
            "from-pymilvus",
            vec![0.5; 4],
            "escrito por pymilvus",
            json!({"lang": "es", "source": "pymilvus"})
        )]
    );
    let filter = Some(Filter::Eq { field: "source".into(), value: json!("pymilvus") });
    let hits = other.search(&docs, &VectorQuery { vector: query.clone(), k: 10, filter }).await.unwrap();
    assert_eq!(ids(&hits), vec!["from-pymilvus"]);

    // A collection laid out otherwise (the original deployment's `embedding` field, L2) is refused.
    for result in [other.ensure_collection(&foreign, 4).await, other.count(&foreign).await.map(drop)] {
        let message = expect_invalid(result, "foreign collection");
        assert!(message.contains("vector"), "{message}");
    }
    scope.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awkward_ids_and_filter_values_stay_literal() {
    let scope = Scope::new("awkward", exact()).await;
    let docs = scope.name("docs");
    scope.store.ensure_collection(&docs, 2).await.unwrap();
    let awkward = [
        "x\" or id != \"",
        "back\\slash\\",
        "quote'single",
        "línea\nnueva\ttab\r",
        "ñandú 🦫",
        "nul\u{0}byte",
        "]) or true or ([",
        "\\u0041",
    ];
    let records: Vec<VectorRecord> = awkward
        .iter()
        .enumerate()
        .map(|(i, id)| record(id, vec![1.0, i as f32], id, json!({ "name": id, "i": i })))
        .chain([record("plain", vec![0.0, 1.0], "plain", json!({"name": "plain", "i": -1}))])
        .collect();
    scope.store.upsert(&docs, records.clone()).await.unwrap();
    let all: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    assert_eq!(scope.store.get(&docs, &all).await.unwrap(), records, "get answers in the order asked");
    for id in awkward {
        let got = scope.store.get(&docs, &[id.to_owned()]).await.unwrap();
        assert_eq!(ids_of(&got), vec![id]);
        // A value is compared as the literal it is, never read as expression syntax.
        let filter = Some(Filter::Eq { field: "name".into(), value: json!(id) });
        let hits =
            scope.store.search(&docs, &VectorQuery { vector: vec![1.0, 0.0], k: 20, filter }).await.unwrap();
        assert_eq!(ids(&hits), vec![id], "filter on {id:?}");
        let not = Some(Filter::Not(Box::new(Filter::Eq { field: "name".into(), value: json!(id) })));
        let hits = scope
            .store
            .search(&docs, &VectorQuery { vector: vec![1.0, 0.0], k: 20, filter: not })
            .await
            .unwrap();
        assert_eq!(hits.len(), records.len() - 1, "not {id:?}");
    }
    let injected =
        Some(Filter::In { field: "name".into(), values: vec![json!("x\" or id != \""), json!("nobody")] });
    let hits = scope
        .store
        .search(&docs, &VectorQuery { vector: vec![1.0, 0.0], k: 20, filter: injected })
        .await
        .unwrap();
    assert_eq!(ids(&hits), vec!["x\" or id != \""]);
    let gone = vec![awkward[0].to_owned(), awkward[5].to_owned(), "never".to_owned()];
    assert_eq!(scope.store.delete(&docs, &gone).await.unwrap(), 2);
    assert_eq!(scope.store.count(&docs).await.unwrap(), records.len() as u64 - 2);
    scope.drop_all().await;
}

fn ids_of(records: &[VectorRecord]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_over_the_message_limit_arrive_in_pieces() {
    let scope = Scope::new("large", exact()).await;
    let docs = scope.name("docs");
    scope.store.ensure_collection(&docs, 8).await.unwrap();
    // 120 records of 60 KB: about 7 MB, above the client's 4 MiB answer limit.
    let records: Vec<VectorRecord> = (0..120)
        .map(|i| {
            let text = format!("{i:03}{}", "texto largo ".repeat(5_000));
            record(
                &format!("big-{i}"),
                (0..8).map(|j| ((i * 8 + j) % 17) as f32 - 8.0).collect(),
                &text,
                json!({"i": i}),
            )
        })
        .collect();
    scope.store.upsert(&docs, records.clone()).await.unwrap();
    let all: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    let query = VectorQuery { vector: vec![1.0; 8], k: 120, filter: None };
    // The writer knows its records' size and asks in pieces from the start; a new client learns
    // it from the first refused answer (a search, then a get), then asks again in pieces.
    let reader = connect(exact()).await;
    for store in [&scope.store, &reader, &reader] {
        let hits = store.search(&docs, &query).await.unwrap();
        assert_eq!(hits.len(), 120);
        for hit in &hits {
            let stored = &records[hit.record.id[4..].parse::<usize>().unwrap()];
            assert_eq!(&hit.record, stored);
            let exact: f32 = stored.vector.iter().sum();
            assert!((hit.score - exact).abs() < 1e-3, "{} vs {exact}", hit.score);
        }
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score - 1e-4));
        let many = store.search_many(&docs, &[query.clone(), query.clone()]).await.unwrap();
        assert_eq!(many, vec![hits.clone(), hits]);
        assert_eq!(store.get(&docs, &all).await.unwrap(), records);
    }
    scope.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid() {
    let scope = Scope::new("invalid", exact()).await;
    let docs = scope.name("docs");
    scope.store.ensure_collection(&docs, 3).await.unwrap();
    scope
        .store
        .upsert(&docs, vec![record("a", vec![1.0, 0.0, 0.0], "a", json!({"lang": "es"}))])
        .await
        .unwrap();
    let query = |vector: Vec<f32>, k: usize, filter: Option<Filter>| VectorQuery { vector, k, filter };
    let eq = |field: &str, value: Value| Some(Filter::Eq { field: field.into(), value });
    for (q, what) in [
        (query(vec![1.0, 0.0, 0.0], 0, None), "k = 0"),
        (query(vec![1.0, 0.0, 0.0], 10_000, None), "k = 10000"),
        (query(vec![1.0, 0.0], 1, None), "wrong dimension"),
        (query(vec![1.0, 0.0, 0.0], 1, eq("lnag", json!("es"))), "unknown filter field"),
        (
            query(vec![1.0, 0.0, 0.0], 1, eq("lang\"] == \"es\" or id != \"", json!("es"))),
            "injection in a field name",
        ),
        (query(vec![1.0, 0.0, 0.0], 1, eq("lang", json!(u64::MAX))), "integer Milvus cannot compare"),
    ] {
        let message = expect_invalid(scope.store.search(&docs, &q).await, what);
        eprintln!("{what}: {message}");
    }
    let message = expect_invalid(
        scope.store.search(&docs, &query(vec![1.0, 0.0, 0.0], 1, eq("lnag", json!(1)))).await,
        "",
    );
    assert!(message.contains("lnag") && message.contains(&docs), "{message}");
    // An injection attempt in a value is a value: it matches no record here, and changes nothing.
    let injected = eq("lang", json!("x\" or id != \""));
    assert!(scope.store.search(&docs, &query(vec![1.0, 0.0, 0.0], 5, injected)).await.unwrap().is_empty());
    // A field unknown to a new collection is no error while the collection is empty.
    let empty = scope.name("empty");
    scope.store.ensure_collection(&empty, 3).await.unwrap();
    assert!(
        scope
            .store
            .search(&empty, &query(vec![1.0, 0.0, 0.0], 1, eq("lnag", json!(1))))
            .await
            .unwrap()
            .is_empty()
    );
    // Texts longer than a Milvus VarChar are refused before anything is written.
    let long = record("long", vec![1.0, 0.0, 0.0], &"x".repeat(65_536), json!({}));
    assert!(matches!(scope.store.upsert(&docs, vec![long]).await, Err(Error::TooLarge(_))));
    assert_eq!(scope.store.count(&docs).await.unwrap(), 1);
    scope.drop_all().await;
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_at_once() {
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let started = Instant::now();
    let error = MilvusStore::connect(MilvusConfig::at(format!("http://127.0.0.1:{port}"))).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error.code(), "unavailable", "{error}");
    assert!(error.is_retryable());
    let message = error.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")) && message.contains("refused"), "{message}");
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
}

/// Forwards connections from a local port to the server until the returned handle is aborted
/// (which also cuts the connections already forwarded).
async fn forwarder(target: String) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut links = tokio::task::JoinSet::new();
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else { return };
            let target = target.clone();
            links.spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(&target).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                let _ = inbound.shutdown().await;
            });
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_away_is_unavailable() {
    let scope = Scope::new("away", exact()).await;
    let docs = scope.name("docs");
    scope.store.ensure_collection(&docs, 2).await.unwrap();
    let target = url().trim_start_matches("http://").trim_end_matches('/').to_owned();
    let (port, link) = forwarder(target).await;
    let timeout = Duration::from_secs(5);
    let config = MilvusConfig { timeout, ..MilvusConfig::at(format!("http://127.0.0.1:{port}")) };
    let store = connect(config).await;
    assert_eq!(store.count(&docs).await.unwrap(), 0);
    link.abort();
    let _ = link.await;
    let started = Instant::now();
    let error = store.count(&docs).await.unwrap_err();
    assert_eq!(error.code(), "unavailable", "{error}");
    assert!(started.elapsed() < timeout, "took {:?}", started.elapsed());
    assert!(error.to_string().contains("Milvus count"), "{error}");
    scope.drop_all().await;
}
