//! The Milvus vector store: 10,000 clustered 384-d vectors written to a Milvus server, searched
//! with and without a filter, checked against the exact in-process store, and timed at each
//! consistency level.
//!
//! `scripts/ensure-milvus && cargo run --release -p capibara-rag --features milvus --example milvus_store
//! [-- <url>]` (default `http://127.0.0.1:19530`). Works in the collection `capibara_example`, which
//! it drops at the start and the end.

use std::time::{Duration, Instant};

use capibara_core::vector::{Filter, VectorQuery, VectorRecord, VectorStore};
use capibara_rag::vector::{ExactStore, MilvusConfig, MilvusConsistency, MilvusStore};
use serde_json::json;

const COLLECTION: &str = "capibara_example";
const RECORDS: usize = 10_000;
const DIMENSION: usize = 384;
#[path = "support/clustered.rs"]
mod clustered;

fn record(i: usize) -> VectorRecord {
    clustered::record(i, DIMENSION)
}

/// Runs `n` searches of `query` one after the other; the mean latency and searches per second.
async fn timed(
    store: &MilvusStore,
    query: &VectorQuery,
    n: usize,
) -> Result<(Duration, f64), capibara_core::Error> {
    let started = Instant::now();
    for _ in 0..n {
        store.search(COLLECTION, query).await?;
    }
    let elapsed = started.elapsed();
    Ok((elapsed / n as u32, n as f64 / elapsed.as_secs_f64()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1).unwrap_or_else(|| capibara_rag::vector::MILVUS_DEFAULT_URL.to_owned());
    let started = Instant::now();
    let store = MilvusStore::connect(MilvusConfig::at(&url)).await?;
    println!("connected to {url} in {} ms (index {:?})", started.elapsed().as_millis(), store.config().index);
    store.drop_collection(COLLECTION).await?;
    store.ensure_collection(COLLECTION, DIMENSION).await?;
    let exact = ExactStore::in_memory();
    exact.ensure_collection(COLLECTION, DIMENSION).await?;

    let started = Instant::now();
    for start in (0..RECORDS).step_by(1_000) {
        let batch: Vec<VectorRecord> = (start..start + 1_000).map(record).collect();
        store.upsert(COLLECTION, batch.clone()).await?;
        exact.upsert(COLLECTION, batch).await?;
    }
    println!("{RECORDS} records upserted in {:.2} s", started.elapsed().as_secs_f64());

    // The first read after a write waits until the server has applied it (read-your-writes).
    let question = VectorQuery { vector: clustered::embedding(42, 999_999, DIMENSION), k: 10, filter: None };
    let started = Instant::now();
    println!(
        "count {} (first read after the writes: {} ms)",
        store.count(COLLECTION).await?,
        started.elapsed().as_millis()
    );
    let hits = store.search(COLLECTION, &question).await?;
    let truth = exact.search(COLLECTION, &question).await?;
    let agree = hits.iter().filter(|hit| truth.iter().any(|t| t.record.id == hit.record.id)).count();
    println!("closest 3 of 10 (the exact store agrees on {agree} of 10):");
    for hit in hits.iter().take(3) {
        println!("  {:.3}  {:<10} {}", hit.score, hit.record.id, hit.record.text);
    }

    let (latency, qps) = timed(&store, &question, 200).await?;
    println!(
        "search k=10: {:.2} ms each, {qps:.0} searches/s (one client, one at a time)",
        latency.as_secs_f64() * 1e3
    );
    let english = VectorQuery {
        filter: Some(Filter::Eq { field: "lang".into(), value: json!("en") }),
        ..question.clone()
    };
    let (latency, qps) = timed(&store, &english, 200).await?;
    println!("filtered search (lang = en): {:.2} ms each, {qps:.0} searches/s", latency.as_secs_f64() * 1e3);
    let batch: Vec<VectorQuery> = (0..100)
        .map(|i| VectorQuery {
            vector: clustered::embedding(i, 5_000 + i as u64, DIMENSION),
            ..question.clone()
        })
        .collect();
    let started = Instant::now();
    store.search_many(COLLECTION, &batch).await?;
    println!("search_many of 100 queries: {:.0} queries/s", 100.0 / started.elapsed().as_secs_f64());

    for consistency in [MilvusConsistency::Bounded, MilvusConsistency::Strong] {
        let reader = MilvusStore::connect(MilvusConfig { consistency, ..MilvusConfig::at(&url) }).await?;
        let (latency, qps) = timed(&reader, &question, 20).await?;
        println!(
            "another client at {consistency:?} consistency: {:.2} ms each, {qps:.0} searches/s",
            latency.as_secs_f64() * 1e3
        );
    }
    store.drop_collection(COLLECTION).await?;
    Ok(())
}
