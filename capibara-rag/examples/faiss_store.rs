//! The FAISS vector store: 50,000 clustered vectors in an `IndexFlatIP` store and an
//! `IndexHNSWFlat` store, the graph's answer checked against the flat one, a filtered search, and
//! a reopening that loads the saved graph.
//!
//! `OMP_NUM_THREADS=1 cargo run --release -p capibara-rag --features faiss --example faiss_store
//! [-- <data dir>]` (default: a temporary directory). Needs no service and no model: the vectors
//! are synthetic, clustered like sentence embeddings.

use std::time::Instant;

use capibara_core::vector::{Filter, VectorQuery, VectorRecord, VectorStore};
use capibara_rag::vector::{FaissIndex, FaissStore};
use serde_json::json;

const RECORDS: usize = 50_000;
const DIMENSION: usize = 128;
#[path = "support/clustered.rs"]
mod clustered;

fn record(i: usize) -> VectorRecord {
    clustered::record(i, DIMENSION)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temp = tempfile::tempdir()?;
    let dir = std::env::args().nth(1).map_or_else(|| temp.path().to_owned(), Into::into);

    let graph = FaissStore::open(&dir, FaissIndex::hnsw())?;
    let flat = FaissStore::in_memory(FaissIndex::Flat)?;
    for store in [&graph, &flat] {
        store.ensure_collection("docs", DIMENSION).await?;
    }
    let started = Instant::now();
    for start in (0..RECORDS).step_by(10_000) {
        let batch: Vec<VectorRecord> = (start..start + 10_000).map(record).collect();
        graph.upsert("docs", batch.clone()).await?;
        flat.upsert("docs", batch).await?;
    }
    println!("{RECORDS} records upserted and indexed in {:.1} s", started.elapsed().as_secs_f64());

    let question = VectorQuery { vector: clustered::embedding(42, 999_999, DIMENSION), k: 5, filter: None };
    let started = Instant::now();
    let hits = graph.search("docs", &question).await?;
    println!("closest 5 in the HNSW graph ({} µs):", started.elapsed().as_micros());
    for hit in &hits {
        println!("  {:.3}  {:<10} {}", hit.score, hit.record.id, hit.record.text);
    }
    let started = Instant::now();
    let truth = flat.search("docs", &question).await?;
    let found = hits.iter().filter(|hit| truth.iter().any(|t| t.record.id == hit.record.id)).count();
    println!("the flat index ({} µs) agrees on {found} of 5", started.elapsed().as_micros());

    // Filters apply before top-k: English records only, still five hits.
    let english =
        VectorQuery { filter: Some(Filter::Eq { field: "lang".into(), value: json!("en") }), ..question };
    for hit in graph.search("docs", &english).await? {
        println!("  en  {:.3}  {}", hit.score, hit.record.id);
    }

    // Compaction saves the graph beside the snapshot; reopening loads it instead of rebuilding.
    graph.compact("docs").await?;
    drop(graph);
    let started = Instant::now();
    let reopened = FaissStore::open(&dir, FaissIndex::hnsw())?;
    println!(
        "reopened {} in {:.2} s: {} records",
        dir.display(),
        started.elapsed().as_secs_f64(),
        reopened.count("docs").await?
    );
    Ok(())
}
