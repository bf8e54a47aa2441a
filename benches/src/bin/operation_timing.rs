//! `capibara-operation-timing`: the library's own time per call of the operations the bindings
//! benchmark measures (`embed` of one short text, `search` with k = 10), called directly on a
//! `Capibara` built from the same configuration. Every face (Python, Node, HTTP) adds its
//! overhead to this floor. Prints one JSON object of median microseconds.
//!
//! ```text
//! capibara-operation-timing --config capibara.toml --calls 2000 --text "hola" --query "¿…?"
//! ```

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use capibara_server::Capibara;
use capibara_server::rag::{RagMode, SearchOptions};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Median microseconds per call of embed and search, in process")]
struct Args {
    /// The capibara.toml the bindings and the server use.
    #[arg(long)]
    config: PathBuf,
    /// Calls per operation (after as many warm-up calls as a tenth of them).
    #[arg(long, default_value_t = 2000)]
    calls: usize,
    /// The text embedded.
    #[arg(long)]
    text: String,
    /// The query searched.
    #[arg(long)]
    query: String,
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}

async fn time<F, T>(calls: usize, mut call: impl FnMut() -> F) -> Result<f64>
where
    F: std::future::Future<Output = capibara_core::Result<T>>,
{
    for _ in 0..calls / 10 {
        call().await?;
    }
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        call().await?;
        samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    Ok(median(samples))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let config = capibara_server::settings::load(Some(&args.config))?;
    let app = Capibara::build(config).await.context("building Capibara")?;
    let texts = vec![args.text.clone()];
    let embed = time(args.calls, || app.embed(&texts)).await?;
    let mut report = serde_json::json!({ "embed_us": embed });
    for mode in [RagMode::Lexical, RagMode::Hybrid] {
        let options = SearchOptions { mode, k: Some(10), filter: None };
        let took = time(args.calls, || app.search(&args.query, &options)).await?;
        let name = serde_json::to_value(mode)?;
        report[format!("search_{}_us", name.as_str().unwrap_or("?"))] = took.into();
    }
    println!("{report}");
    Ok(())
}
