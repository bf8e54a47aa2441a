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
const TOPICS: usize = 100;

/// A deterministic pseudo-random value in [-1, 1) (splitmix64).
fn noise(seed: u64) -> f32 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

/// A unit vector near the centre of `topic`.
fn embedding(topic: usize, seed: u64) -> Vec<f32> {
    let v: Vec<f32> = (0..DIMENSION)
        .map(|j| noise((topic * DIMENSION + j) as u64) + 0.9 * noise(seed * 7919 + j as u64 + 1_000_000))
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

fn record(i: usize) -> VectorRecord {
    let topic = i % TOPICS;
    VectorRecord {
        id: format!("doc-{i}"),
        vector: embedding(topic, i as u64),
        text: format!("documento {i} sobre el tema {topic}"),
        metadata: json!({ "topic": topic, "lang": if (i / TOPICS).is_multiple_of(4) { "en" } else { "es" } })
            .as_object()
            .cloned()
            .unwrap_or_default(),
    }
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

    let question = VectorQuery { vector: embedding(42, 999_999), k: 5, filter: None };
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
