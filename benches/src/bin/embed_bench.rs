//! `capibara-embed-bench`: sentences per second of Capibara's `LocalEmbedder` and of
//! sentence-transformers on the same sentences, at each thread count, in one run; prints the report
//! and writes it to `<results-dir>/embed-<YYYY-MM-DD>.md`. `benches/embed/run` builds it and prepares
//! the Python side.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use capibara_benches::embed::{self, Measurement, RunInfo};
use capibara_core::embed::Embedder;
use capibara_core::models::{MINILM_L6_V2, ModelStore, NoProgress};
use capibara_rag::local_embed::{LocalEmbedder, LocalEmbedderOptions};
use clap::Parser;
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(about = "Embedding throughput: Capibara (candle) vs sentence-transformers")]
struct Args {
    /// Directory with corpus.jsonl and queries.jsonl.
    #[arg(long, default_value = "../shared/data/xquad_es")]
    data: PathBuf,
    /// all-MiniLM-L6-v2 directory (default: installed through the model store).
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// Python of the sentence-transformers virtual environment.
    #[arg(long)]
    python: PathBuf,
    /// benches/embed/st_bench.py.
    #[arg(long)]
    script: PathBuf,
    /// Where the report goes.
    #[arg(long, default_value = "benches/results")]
    results_dir: PathBuf,
    /// The Capibara checkout (for the revision in the report).
    #[arg(long, default_value = ".")]
    repository: PathBuf,
    /// Sentences measured.
    #[arg(long, default_value_t = 1000)]
    sentences: usize,
    /// Sentences per batch, both sides.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Thread counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Timed repetitions per cell (after one warm-up).
    #[arg(long, default_value_t = 5)]
    repetitions: usize,
}

/// What `st_bench.py` prints.
#[derive(Debug, Deserialize)]
struct PythonSide {
    sentences_per_second: Vec<f64>,
    threads: usize,
    tokens_total: usize,
    tokens_max: usize,
    vectors: Vec<Vec<f32>>,
    versions: serde_json::Map<String, serde_json::Value>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let started = chrono::Utc::now();
    let model_dir = match &args.model_dir {
        Some(dir) => dir.clone(),
        None => ModelStore::from_env().ensure(&MINILM_L6_V2, &mut NoProgress)?.dir,
    };
    let sentences = embed::load_sentences(&args.data, args.sentences)?;
    let sentences_file =
        std::env::temp_dir().join(format!("capibara-embed-bench-{}.json", std::process::id()));
    std::fs::write(&sentences_file, serde_json::to_vec(&sentences)?)?;

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut measurements = Vec::new();
    let mut python: Option<PythonSide> = None;
    let mut max_abs_diff = 0.0f32;
    for &threads in &args.threads {
        let mut options = LocalEmbedderOptions::new(&model_dir);
        options.batch_size = args.batch_size;
        options.threads = threads;
        let embedder = LocalEmbedder::load(options)?;
        let ours = runtime.block_on(embedder.embed(&sentences))?; // warm-up
        let mut rates = Vec::new();
        for _ in 0..args.repetitions {
            let start = Instant::now();
            runtime.block_on(embedder.embed(&sentences))?;
            rates.push(sentences.len() as f64 / start.elapsed().as_secs_f64());
        }
        drop(embedder);
        eprintln!("Capibara (candle), {threads} thread(s): {:.1} sentences/s", embed::median(&rates));
        measurements.push(Measurement { engine: "Capibara (candle)".into(), threads, rates });

        let side = run_python(&args, &model_dir, &sentences_file, threads, sentences.len())?;
        for (a, b) in ours.iter().zip(&side.vectors) {
            for (x, y) in a.iter().zip(b) {
                max_abs_diff = max_abs_diff.max((x - y).abs());
            }
        }
        eprintln!(
            "sentence-transformers, {threads} thread(s): {:.1} sentences/s",
            embed::median(&side.sentences_per_second)
        );
        measurements.push(Measurement {
            engine: "sentence-transformers".into(),
            threads: side.threads,
            rates: side.sentences_per_second.clone(),
        });
        python = Some(side);
    }
    let _ = std::fs::remove_file(&sentences_file);
    let Some(python) = python else { bail!("no thread counts given") };

    let (cpu, kernel, revision) = embed::machine(&args.repository);
    let info = RunInfo {
        started: started.format("%Y-%m-%d %H:%M UTC").to_string(),
        cpu,
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        kernel,
        revision,
        python_versions: python
            .versions
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("?").to_owned()))
            .collect(),
        sentences: sentences.len(),
        data_dir: args.data.display().to_string(),
        tokens_total: python.tokens_total,
        tokens_max: python.tokens_max,
        batch_size: args.batch_size,
        repetitions: args.repetitions,
        max_abs_diff,
    };
    let text = embed::report(&info, &measurements);
    println!("{text}");
    std::fs::create_dir_all(&args.results_dir)?;
    let path = args.results_dir.join(format!("embed-{}.md", started.format("%Y-%m-%d")));
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// Runs `st_bench.py` for one thread count and reads its JSON.
fn run_python(
    args: &Args,
    model_dir: &std::path::Path,
    sentences_file: &std::path::Path,
    threads: usize,
    compare: usize,
) -> Result<PythonSide> {
    let output = Command::new(&args.python)
        .arg(&args.script)
        .arg(model_dir)
        .arg(sentences_file)
        .args([threads, args.batch_size, args.repetitions, compare].map(|v| v.to_string()))
        .env("TOKENIZERS_PARALLELISM", "false")
        .output()
        .with_context(|| format!("starting {}", args.python.display()))?;
    if !output.status.success() {
        bail!("st_bench.py failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr));
    }
    serde_json::from_slice(&output.stdout).context("reading st_bench.py's output")
}
