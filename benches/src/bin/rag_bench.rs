//! `capibara-rag-bench`: (c) mini RAG end to end over a 100,000-chunk collection — query
//! embedding with the local all-MiniLM-L6-v2 plus hybrid search (BM25 + exact vectors) within the
//! mini budget, cache off — and (d) ingestion throughput (chunks/s) of the `Ingestor` with the
//! same local embedder into a persisted `ExactStore`, next to the embedder alone on the same chunks.
//! `benches/rag/run` builds and runs it.
//!
//! The 100,000 chunks are made of real Spanish sentences (2 to 4 drawn from `xquad_r_es`), so BM25
//! sees real vocabulary and document lengths; each chunk's vector is the normalised mean of its
//! sentences' real embeddings plus a little noise (embedding 100,000 chunks with the model would
//! take about 20 minutes on 2 cores and measure nothing more). Queries are the set's real questions,
//! embedded by the model on every search.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use capibara_core::cache::MemoryCache;
use capibara_core::config::RagSettings;
use capibara_core::embed::Embedder;
use capibara_core::models::{MINILM_L6_V2, ModelStore, NoProgress};
use capibara_core::vector::{VectorRecord, VectorStore};
use capibara_rag::ingest::{ChunkOptions, Chunker, Ingestor, LoadOptions, MemoryLedger, Silent};
use capibara_rag::lexical::Analyzer;
use capibara_rag::local_embed::{LocalEmbedder, LocalEmbedderOptions};
use capibara_rag::retrieval::{Fusion, HybridIndex, IndexedText, Retriever};
use capibara_rag::vector::ExactStore;
use clap::Parser;
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(about = "Mini RAG end-to-end latency over 100k chunks, and ingestion throughput")]
struct Args {
    /// A BEIR folder whose sentences build the chunks and whose questions are the queries.
    #[arg(long, default_value = "../shared/data/xquad_r_es")]
    data: PathBuf,
    /// Folders ingested for the throughput measurement.
    #[arg(long, value_delimiter = ',', default_value = "../shared/data/xquad_es,../shared/data/xquad_r_es")]
    ingest: Vec<PathBuf>,
    /// Chunks in the search collection.
    #[arg(long, default_value_t = 100_000)]
    chunks: usize,
    /// Queries timed (after 50 warm-up queries).
    #[arg(long, default_value_t = 1_000)]
    queries: usize,
    /// Embedder threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

#[derive(Deserialize)]
struct Line {
    text: String,
}

fn texts(path: &std::path::Path) -> Result<Vec<String>> {
    let content = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    content
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Ok(serde_json::from_str::<Line>(l)?.text))
        .collect()
}

/// splitmix64: the same collection on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> Result<()> {
    let args = Args::parse();
    let model_dir = ModelStore::from_env().ensure(&MINILM_L6_V2, &mut NoProgress)?.dir;
    let mut options = LocalEmbedderOptions::new(&model_dir);
    options.threads = args.threads;
    let embedder: Arc<dyn Embedder> = Arc::new(LocalEmbedder::load(options)?);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(run(&args, embedder))
}

async fn run(args: &Args, embedder: Arc<dyn Embedder>) -> Result<()> {
    println!("# Retrieval: mini RAG end to end, and ingestion throughput\n");
    println!(
        "CPU: {}, {} cores; embedder threads {}; collection {} chunks; {} queries.\n",
        capibara_benches::embed::machine(std::path::Path::new(".")).0,
        std::thread::available_parallelism().map_or(1, usize::from),
        args.threads,
        args.chunks,
        args.queries
    );
    ingestion(args, &embedder).await?;
    mini_rag(args, &embedder).await
}

/// (d): the `Ingestor` over real files, and the embedder alone on the same chunk texts.
async fn ingestion(args: &Args, embedder: &Arc<dyn Embedder>) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn VectorStore> = Arc::new(ExactStore::open(dir.path())?);
    let index = Arc::new(
        HybridIndex::open(Arc::clone(embedder), store, "ingest", Analyzer::default(), Fusion::default())
            .await?,
    );
    let ledger = Arc::new(MemoryLedger::new());
    let ingestor = Ingestor::new(
        Arc::clone(&index),
        ledger.clone(),
        Chunker::new(ChunkOptions::default())?,
        LoadOptions::default(),
    );
    let report = ingestor.ingest_paths(&args.ingest, &mut Silent).await?;
    let rate = report.chunks_indexed as f64 / report.seconds;
    let chunk_texts: Vec<String> = capibara_rag::ingest::IngestLedger::indexed_chunks(ledger.as_ref())
        .await?
        .into_iter()
        .map(|c| c.text)
        .collect();
    let started = Instant::now();
    embedder.embed(&chunk_texts).await?;
    let embed_rate = chunk_texts.len() as f64 / started.elapsed().as_secs_f64();
    println!("## (d) Ingestion throughput\n");
    println!("| what | chunks | seconds | chunks/s |\n|---|---:|---:|---:|");
    println!(
        "| `Ingestor`: load, chunk, embed, persisted `ExactStore` (fsynced WAL), BM25, ledger | {} | {:.1} | {:.1} |",
        report.chunks_indexed, report.seconds, rate
    );
    println!(
        "| the embedder alone on the same chunk texts | {} | {:.1} | {:.1} |",
        chunk_texts.len(),
        chunk_texts.len() as f64 / embed_rate,
        embed_rate
    );
    println!("\nIngestion runs at {:.0} % of the embedder's own rate.\n", rate / embed_rate * 100.0);
    Ok(())
}

/// (c): mini RAG (query embedding + hybrid search) over `args.chunks` chunks, cache off.
async fn mini_rag(args: &Args, embedder: &Arc<dyn Embedder>) -> Result<()> {
    let sentences = texts(&args.data.join("corpus.jsonl"))?;
    let questions = texts(&args.data.join("queries.jsonl"))?;
    let started = Instant::now();
    let sentence_vectors = embedder.embed(&sentences).await?;
    let embed_seconds = started.elapsed().as_secs_f64();

    let store: Arc<dyn VectorStore> = Arc::new(ExactStore::in_memory());
    let dimension = embedder.dimension();
    let index = Arc::new(
        HybridIndex::open(
            Arc::clone(embedder),
            Arc::clone(&store),
            "mini",
            Analyzer::default(),
            Fusion::default(),
        )
        .await?,
    );
    let mut rng = Rng(0x5eed);
    let build = Instant::now();
    let mut lexical = Vec::with_capacity(args.chunks);
    for start in (0..args.chunks).step_by(10_000) {
        let mut records = Vec::with_capacity(10_000);
        for i in start..(start + 10_000).min(args.chunks) {
            let parts = 2 + rng.below(3);
            let mut text = String::new();
            let mut vector = vec![0.0f32; dimension];
            for _ in 0..parts {
                let s = rng.below(sentences.len());
                text.push_str(&sentences[s]);
                text.push(' ');
                vector.iter_mut().zip(&sentence_vectors[s]).for_each(|(v, x)| *v += x);
            }
            vector.iter_mut().for_each(|v| *v += 0.02 * rng.unit());
            let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
            vector.iter_mut().for_each(|v| *v /= norm);
            let id = format!("c{i:06}");
            let metadata = serde_json::Map::new();
            lexical.push(IndexedText { id: id.clone(), text: text.clone(), metadata: metadata.clone() });
            records.push(VectorRecord { id, vector, text, metadata });
        }
        store.upsert("mini", records).await?;
    }
    index.load_lexical(lexical)?;
    let build_seconds = build.elapsed().as_secs_f64();

    let mut settings = RagSettings::default();
    settings.mini.cache_ttl_secs = 0; // every query does the whole work
    let budget = Duration::from_millis(settings.mini.budget_ms);
    let retriever = Retriever::new(Arc::clone(&index), Arc::new(MemoryCache::new(1_000)), settings)?;
    for question in questions.iter().take(50) {
        retriever.mini(question, None).await?;
    }
    let mut latencies = Vec::with_capacity(args.queries);
    let mut partial = 0;
    let mut hits = 0;
    for question in questions.iter().cycle().skip(50).take(args.queries) {
        let started = Instant::now();
        let found = retriever.mini(question, None).await?;
        latencies.push(started.elapsed().as_secs_f64() * 1_000.0);
        partial += usize::from(found.partial);
        hits += found.hits.len();
    }
    latencies.sort_by(f64::total_cmp);
    println!("## (c) Mini RAG end to end over {} chunks\n", args.chunks);
    println!(
        "Collection built in {build_seconds:.1} s ({} sentences embedded by the model in {embed_seconds:.1} s). \
         Each query: embedding by all-MiniLM-L6-v2 + BM25 over {} chunks + exact inner-product search over {} × {} \
         vectors + weighted fusion, top 5, budget {} ms, cache off.\n",
        sentences.len(),
        args.chunks,
        args.chunks,
        dimension,
        budget.as_millis()
    );
    println!("| queries | p50 ms | p95 ms | p99 ms | max ms | partial (budget hit) | hits per query |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.1} |",
        latencies.len(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 95.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or_default(),
        partial,
        hits as f64 / latencies.len() as f64
    );
    println!("\nTarget: p99 < 50 ms.");
    Ok(())
}
