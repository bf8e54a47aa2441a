//! `capibara-operation-timing`: the library's own time per call of the operations the bindings
//! benchmark measures (`embed` of one short text, `search` with k = 10), called directly on a
//! `Capibara` built from the same configuration. Every face (Python, Node, HTTP) adds its
//! overhead to this floor. Prints one JSON object of median microseconds.
//!
//! ```text
//! capibara-operation-timing --config capibara.toml --calls 2000 --text "hola" --query "¿…?"
//! ```
//!
//! With `--serve` it instead answers batches asked for on stdin, so a driver can alternate them
//! with its own calls: each line `<operation> <calls>` (operation `embed_us`,
//! `search_lexical_us` or `search_hybrid_us`) is answered with one line, the JSON list of the
//! batch's microseconds per call.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
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
    /// Answer batches asked for on stdin instead of timing everything once.
    #[arg(long)]
    serve: bool,
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Microseconds of each of `calls` calls.
async fn samples<F, T>(calls: usize, mut call: impl FnMut() -> F) -> Result<Vec<f64>>
where
    F: std::future::Future<Output = capibara_core::Result<T>>,
{
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        call().await?;
        samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    Ok(samples)
}

/// The operations timed, by the names the report uses.
struct Operations {
    app: Capibara,
    texts: Vec<String>,
    query: String,
}

impl Operations {
    async fn run(&self, operation: &str, calls: usize) -> Result<Vec<f64>> {
        let mode = match operation {
            "embed_us" => return samples(calls, || self.app.embed(&self.texts)).await,
            "search_lexical_us" => RagMode::Lexical,
            "search_hybrid_us" => RagMode::Hybrid,
            other => bail!("unknown operation {other:?}"),
        };
        let options = SearchOptions { mode, k: Some(10), filter: None };
        samples(calls, || self.app.search(&self.query, &options)).await
    }
}

const OPERATIONS: [&str; 3] = ["embed_us", "search_lexical_us", "search_hybrid_us"];

/// Answers `<operation> <calls>` lines until stdin closes. The wait for the next line blocks
/// this thread: nothing else is timed meanwhile.
async fn serve(operations: &Operations) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let (operation, calls) = line.trim().split_once(' ').context("expected `<operation> <calls>`")?;
        let taken = operations.run(operation, calls.parse().context("calls")?).await?;
        writeln!(stdout, "{}", serde_json::to_string(&taken)?)?;
        stdout.flush()?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let config = capibara_server::settings::load(Some(&args.config))?;
    let app = Capibara::build(config).await.context("building Capibara")?;
    let operations = Operations { app, texts: vec![args.text], query: args.query };
    if args.serve {
        return serve(&operations).await;
    }
    let mut report = serde_json::Map::new();
    for operation in OPERATIONS {
        operations.run(operation, args.calls / 10).await?;
        let taken = operations.run(operation, args.calls).await?;
        report.insert(operation.to_owned(), median(taken).into());
    }
    println!("{}", serde_json::Value::Object(report));
    Ok(())
}
