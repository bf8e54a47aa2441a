//! The embedded exact vector store: upsert a few records, search with a filter, reopen from disk.
//!
//! `cargo run -p capibara-rag --example exact_store [-- <data dir>]` (default: a temporary
//! directory). Needs no service and no model: the vectors are written by hand.

use capibara_core::vector::{Filter, VectorQuery, VectorRecord, VectorStore};
use capibara_rag::vector::ExactStore;
use serde_json::json;

/// A unit vector along `direction` (the store scores by inner product).
fn unit(direction: [f32; 3]) -> Vec<f32> {
    let norm = direction.iter().map(|v| v * v).sum::<f32>().sqrt();
    direction.iter().map(|v| v / norm).collect()
}

fn record(id: &str, direction: [f32; 3], text: &str, lang: &str, year: u32) -> VectorRecord {
    VectorRecord {
        id: id.into(),
        vector: unit(direction),
        text: text.into(),
        metadata: json!({ "lang": lang, "year": year }).as_object().cloned().unwrap_or_default(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temp = tempfile::tempdir()?;
    let dir = std::env::args().nth(1).map_or_else(|| temp.path().to_owned(), Into::into);

    let store = ExactStore::open(&dir)?;
    store.ensure_collection("docs", 3).await?;
    store
        .upsert(
            "docs",
            vec![
                record(
                    "capibara",
                    [1.0, 0.1, 0.0],
                    "El capibara es el roedor más grande del mundo.",
                    "es",
                    2021,
                ),
                record("capybara", [0.9, 0.2, 0.1], "The capybara is the largest living rodent.", "en", 2022),
                record(
                    "rust",
                    [0.0, 1.0, 0.2],
                    "Rust es un lenguaje de programación de sistemas.",
                    "es",
                    2015,
                ),
                record("tokio", [0.1, 0.9, 0.4], "Tokio es un runtime asíncrono para Rust.", "es", 2024),
            ],
        )
        .await?;

    let question = unit([1.0, 0.15, 0.05]);
    let spanish_since_2020 = Filter::And(vec![
        Filter::Eq { field: "lang".into(), value: json!("es") },
        Filter::Range { field: "year".into(), gte: Some(2020.0), lte: None },
    ]);
    let query = VectorQuery { vector: question.clone(), k: 2, filter: Some(spanish_since_2020) };
    println!("Spanish records since 2020, closest first:");
    for hit in store.search("docs", &query).await? {
        println!("  {:.3}  {:<9} {}", hit.score, hit.record.id, hit.record.text);
    }

    // Every write above was fsynced before it returned: a new store on the directory sees it all.
    drop(store);
    let reopened = ExactStore::open(&dir)?;
    let all = VectorQuery { vector: question, k: 10, filter: None };
    println!("reopened {}: {} records", dir.display(), reopened.count("docs").await?);
    for hit in reopened.search("docs", &all).await? {
        println!("  {:.3}  {}", hit.score, hit.record.id);
    }
    Ok(())
}
