//! Exact search of `ExactStore` against FAISS `IndexFlatIP` on the same data in the same run, the
//! machine's memory-bandwidth bound for one query, and the store-level HNSW numbers (`HnswStore`,
//! and `FaissStore` with `IndexHNSWFlat`) against `ExactStore`.
//!
//! `benches/vector/run-exact` runs it three times (`--part exact --threads 1`, `--part exact
//! --threads 2`, `--part hnsw`) with `OMP_NUM_THREADS` and `OPENBLAS_NUM_THREADS` set to the thread
//! count (FAISS reads them once, at start) and writes the report. Each part prints markdown.
//!
//! - `exact`: `--queries` single queries and `--batches` batches of `--batch` queries (k = 10),
//!   `ExactStore` through the `VectorStore` trait, FAISS called directly through the `faiss`
//!   crate. The two alternate in `--rounds` rounds (each round measures both, in turns), and the
//!   median round is reported, so load from elsewhere on the machine falls on both. With
//!   `--threads 2`: two callers at once for single queries (FAISS answers one query on one
//!   thread), FAISS's own threads for a batch (OpenMP and OpenBLAS) against two `search_many`
//!   calls at once for `ExactStore`. The bandwidth bound: a streaming sum over a buffer of the
//!   collection's size (n × d × 4 bytes), best of 5, on as many threads, in 4 KiB and in 2 MiB
//!   pages (the better counts); bound QPS = bandwidth ÷
//!   bytes scanned per query.
//! - `hnsw`: `HnswStore` (defaults, M = 16, ef_construction = 200) built, compacted and reopened
//!   with each `ef_search`; single-query QPS on one thread and recall@10 against `ExactStore`;
//!   the same for `FaissStore` with `IndexHNSWFlat`, with its build, save and load times.

use std::sync::Arc;
use std::time::Instant;

use capibara_core::vector::{VectorQuery, VectorRecord, VectorStore};
use capibara_rag::vector::{
    ExactStore, FaissHnsw, FaissIndex, FaissStore, FaissStoreOptions, HnswStore, HnswStoreOptions,
};
use capibara_vector_ann_compare::{Rng, centres, clustered};
use faiss::{ConcurrentIndex, FlatIndex, Index};

const K: usize = 10;

struct Args {
    part: String,
    n: usize,
    d: usize,
    clusters: usize,
    noise: f32,
    queries: usize,
    batch: usize,
    batches: usize,
    rounds: usize,
    threads: usize,
    efs: Vec<usize>,
}

impl Args {
    fn parse() -> Self {
        let mut args = Self {
            part: "exact".into(),
            n: 100_000,
            d: 384,
            clusters: 1_000,
            noise: 1.2,
            queries: 1_000,
            batch: 100,
            batches: 40,
            rounds: 5,
            threads: 1,
            efs: vec![16, 20, 24, 32, 48, 64],
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let value = it.next().unwrap_or_default();
            match flag.as_str() {
                "--part" => args.part = value,
                "--n" => args.n = value.parse().unwrap_or(args.n),
                "--d" => args.d = value.parse().unwrap_or(args.d),
                "--clusters" => args.clusters = value.parse().unwrap_or(args.clusters),
                "--noise" => args.noise = value.parse().unwrap_or(args.noise),
                "--queries" => args.queries = value.parse().unwrap_or(args.queries),
                "--batch" => args.batch = value.parse().unwrap_or(args.batch),
                "--batches" => args.batches = value.parse().unwrap_or(args.batches),
                "--rounds" => args.rounds = value.parse().unwrap_or(args.rounds),
                "--threads" => args.threads = value.parse().unwrap_or(args.threads),
                "--efs" => args.efs = value.split(',').filter_map(|ef| ef.parse().ok()).collect(),
                other => eprintln!("ignoring unknown flag {other}"),
            }
        }
        args
    }
}

/// The collection and the queries, the same for every part (seed 42, as `benches/vector/run`).
struct Data {
    vectors: Vec<f32>,
    queries: Vec<Vec<f32>>,
}

fn data(args: &Args, count: usize) -> Data {
    let mut rng = Rng(42);
    let centres = centres(&mut rng, args.clusters, args.d);
    let vectors = clustered(&mut rng, &centres, args.d, args.noise, args.n);
    let queries = clustered(&mut rng, &centres, args.d, args.noise, count);
    Data { vectors, queries: queries.chunks(args.d).map(<[f32]>::to_vec).collect() }
}

fn records(data: &Data, d: usize) -> impl Iterator<Item = Vec<VectorRecord>> + '_ {
    data.vectors.chunks(10_000 * d).enumerate().map(move |(chunk, rows)| {
        rows.chunks(d)
            .enumerate()
            .map(|(i, row)| VectorRecord {
                id: format!("r{}", chunk * 10_000 + i),
                vector: row.to_vec(),
                text: String::new(),
                metadata: Default::default(),
            })
            .collect()
    })
}

async fn fill(store: &dyn VectorStore, data: &Data, d: usize) {
    store.ensure_collection("docs", d).await.expect("collection");
    for batch in records(data, d) {
        store.upsert("docs", batch).await.expect("upsert");
    }
}

fn query(vector: &[f32]) -> VectorQuery {
    VectorQuery { vector: vector.to_vec(), k: K, filter: None }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

unsafe extern "C" {
    fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32;
}

/// Linux's `MADV_HUGEPAGE`.
const MADV_HUGEPAGE: i32 = 14;

/// The best of 5 streaming sums over `bytes` bytes on `threads` threads, in bytes per second; in
/// 2 MiB pages (advised `MADV_HUGEPAGE` before the first write) when `huge`, else 4 KiB pages.
fn bandwidth(bytes: usize, threads: usize, huge: bool) -> f64 {
    // 16 independent lanes per accumulator group: the compiler vectorises without reassociating.
    fn sum(values: &[f32]) -> f32 {
        let mut lanes = [[0.0f32; 16]; 4];
        for chunk in values.chunks_exact(64) {
            for (group, part) in lanes.iter_mut().zip(chunk.chunks_exact(16)) {
                for (lane, value) in group.iter_mut().zip(part) {
                    *lane += value;
                }
            }
        }
        lanes.iter().flatten().sum()
    }
    const PAGE: usize = 2 << 20;
    let floats = bytes / 4;
    let mut backing: Vec<f32> = Vec::with_capacity(floats + PAGE / 4);
    let start = backing.as_mut_ptr() as usize;
    let offset = (start.next_multiple_of(PAGE) - start) / 4;
    if huge {
        // SAFETY: the range lies inside the allocation; advice only changes the page size.
        unsafe { madvise(start.next_multiple_of(PAGE) as *mut _, floats * 4 / PAGE * PAGE, MADV_HUGEPAGE) };
    }
    backing.extend((0..offset + floats).map(|i| (i % 7) as f32));
    let buffer = &backing[offset..];
    let mut best = 0.0f64;
    let mut check = 0.0f32;
    for _ in 0..5 {
        let started = Instant::now();
        let per = buffer.len().div_ceil(threads);
        check += std::thread::scope(|scope| {
            let parts: Vec<_> = buffer.chunks(per).map(|part| scope.spawn(move || sum(part))).collect();
            parts.into_iter().map(|part| part.join().unwrap_or(0.0)).sum::<f32>()
        });
        best = best.max(buffer.len() as f64 * 4.0 / started.elapsed().as_secs_f64());
    }
    std::hint::black_box(check);
    best
}

/// Runs `work` over `items` split between `threads` OS threads; items per second.
fn throughput<T: Sync>(items: &[T], threads: usize, work: impl Fn(&T) + Sync) -> f64 {
    let started = Instant::now();
    let per = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for part in items.chunks(per) {
            let work = &work;
            scope.spawn(move || part.iter().for_each(work));
        }
    });
    items.len() as f64 / started.elapsed().as_secs_f64()
}

fn faiss_search(index: &FlatIndex, queries: &[f32]) -> Vec<i64> {
    let result = ConcurrentIndex::search(index, queries, K).expect("FAISS search");
    result.labels.iter().map(|label| label.get().map_or(-1, |l| l as i64)).collect()
}

fn part_exact(args: &Args) {
    let d = args.d;
    let data = data(args, args.queries.max(args.batch * args.batches));
    let bytes = args.n * d * 4;
    let small_pages = bandwidth(bytes, args.threads, false);
    let huge_pages = bandwidth(bytes, args.threads, true);
    let bw = small_pages.max(huge_pages);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .max_blocking_threads(args.threads)
        .enable_all()
        .build()
        .expect("runtime");
    let store = Arc::new(ExactStore::in_memory());
    runtime.block_on(fill(store.as_ref(), &data, d));
    let mut index = FlatIndex::new_ip(d as u32).expect("FAISS index");
    index.add(&data.vectors).expect("FAISS add");

    // The two agree on the top 10 (ties aside): both are exact.
    let check: Vec<VectorQuery> = data.queries[..50].iter().map(|q| query(q)).collect();
    let ours = runtime.block_on(store.search_many("docs", &check)).expect("search_many");
    let stacked: Vec<f32> = data.queries[..50].concat();
    let theirs = faiss_search(&index, &stacked);
    let agree = ours
        .iter()
        .zip(theirs.chunks(K))
        .map(|(hits, labels)| {
            hits.iter()
                .filter(|hit| labels.contains(&hit.record.id[1..].parse::<i64>().unwrap_or(-2)))
                .count()
        })
        .sum::<usize>() as f64
        / (50 * K) as f64;

    let singles: Vec<VectorQuery> = data.queries[..args.queries].iter().map(|q| query(q)).collect();
    let batches: Vec<Vec<VectorQuery>> = data.queries[..args.batch * args.batches]
        .chunks(args.batch)
        .map(|batch| batch.iter().map(|q| query(q)).collect())
        .collect();
    let stacked_batches: Vec<Vec<f32>> =
        batches.iter().map(|batch| batch.iter().flat_map(|q| q.vector.clone()).collect()).collect();
    let per_round = |len: usize| len.div_ceil(args.rounds);

    let (mut ours_single, mut faiss_single, mut ours_batch, mut faiss_batch) =
        (vec![], vec![], vec![], vec![]);
    for round in 0..args.rounds {
        let singles = singles.chunks(per_round(singles.len())).nth(round).unwrap_or(&[]);
        let batches = batches.chunks(per_round(batches.len())).nth(round).unwrap_or(&[]);
        let stacked = stacked_batches.chunks(per_round(stacked_batches.len())).nth(round).unwrap_or(&[]);
        ours_single.push(throughput(singles, args.threads, |q| {
            runtime.block_on(store.search("docs", q)).expect("search");
        }));
        faiss_single.push(throughput(singles, args.threads, |q| {
            std::hint::black_box(faiss_search(&index, &q.vector));
        }));
        ours_batch.push(
            throughput(batches, args.threads, |batch| {
                runtime.block_on(store.search_many("docs", batch)).expect("search_many");
            }) * args.batch as f64,
        );
        // FAISS spreads one batch over its own threads (OpenMP, OpenBLAS).
        faiss_batch.push(
            throughput(stacked, 1, |batch| {
                std::hint::black_box(faiss_search(&index, batch));
            }) * args.batch as f64,
        );
    }
    let rounds = format!(
        "ExactStore single {}; FAISS single {}; ExactStore batch {}; FAISS batch {}",
        listed(&ours_single),
        listed(&faiss_single),
        listed(&ours_batch),
        listed(&faiss_batch)
    );
    let (os, fs, ob, fb) =
        (median(ours_single), median(faiss_single), median(ours_batch), median(faiss_batch));
    let bound = bw / bytes as f64;
    let t = args.threads;
    println!("### {t} thread{}", if t == 1 { "" } else { "s" });
    println!();
    println!(
        "Read bandwidth (streaming sum over {:.1} MB, {t} thread{}, best of 5): {:.1} GB/s in 4 KiB pages, {:.1} GB/s \
         in 2 MiB pages; the better, **{:.1} GB/s**, bounds one query at **{:.1} QPS** ({:.1} MB scanned per query; \
         with {t} thread{} at once, {:.1} QPS in all). Top-10 agreement ExactStore vs FAISS: {agree:.3}.",
        bytes as f64 / 1e6,
        if t == 1 { "" } else { "s" },
        small_pages / 1e9,
        huge_pages / 1e9,
        bw / 1e9,
        bound / t as f64,
        bytes as f64 / 1e6,
        if t == 1 { "" } else { "s" },
        bound,
    );
    println!();
    println!(
        "| search ({t} thread{}) | ExactStore QPS | FAISS IndexFlatIP QPS | ExactStore / FAISS |",
        if t == 1 { "" } else { "s" }
    );
    println!("|---|---|---|---|");
    println!("| single query, k = {K} | {os:.1} | {fs:.1} | {:.2}× |", os / fs);
    println!("| batches of {}, k = {K} | {ob:.0} | {fb:.0} | {:.2}× |", args.batch, ob / fb);
    println!();
    println!(
        "Single query against the bandwidth bound: ExactStore {:.2}× the bound (the bound is {:.2}× its QPS), \
         FAISS {:.2}× the bound. QPS per round (the median is reported): {rounds}.",
        os / bound,
        bound / os,
        fs / bound,
    );
    println!();
}

fn listed(values: &[f64]) -> String {
    values.iter().map(|v| format!("{v:.0}")).collect::<Vec<_>>().join(" / ")
}

/// QPS of one-at-a-time searches on one thread, and recall@10 against `truth` (record ids).
async fn measure(store: &dyn VectorStore, queries: &[VectorQuery], truth: &[Vec<String>]) -> (f64, f64) {
    for q in queries.iter().take(50) {
        store.search("docs", q).await.expect("search");
    }
    let started = Instant::now();
    let mut found = 0usize;
    for (q, truth) in queries.iter().zip(truth) {
        let hits = store.search("docs", q).await.expect("search");
        found += hits.iter().filter(|hit| truth.contains(&hit.record.id)).count();
    }
    let qps = queries.len() as f64 / started.elapsed().as_secs_f64();
    (qps, found as f64 / (truth.len() * K) as f64)
}

fn part_hnsw(args: &Args) {
    let d = args.d;
    let data = data(args, args.queries);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let queries: Vec<VectorQuery> = data.queries.iter().map(|q| query(q)).collect();
    let exact = ExactStore::in_memory();
    runtime.block_on(fill(&exact, &data, d));
    let truth: Vec<Vec<String>> = runtime
        .block_on(exact.search_many("docs", &queries))
        .expect("truth")
        .into_iter()
        .map(|hits| hits.into_iter().map(|hit| hit.record.id).collect())
        .collect();
    let exact_sample = &queries[..queries.len().min(300)];
    let (exact_qps, _) = runtime.block_on(measure(&exact, exact_sample, &truth));

    let dir = std::env::temp_dir().join(format!("capibara-vector-exact-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut rows = Vec::new();

    // HnswStore: build, save, then reopen with each ef.
    let started = Instant::now();
    let store = HnswStore::open(dir.join("usearch")).expect("open");
    runtime.block_on(fill(&store, &data, d));
    let build = started.elapsed().as_secs_f64();
    let started = Instant::now();
    runtime.block_on(store.compact("docs")).expect("compact");
    let save = started.elapsed().as_secs_f64();
    drop(store);
    let mut load = 0.0;
    for ef in &args.efs {
        let started = Instant::now();
        let options = HnswStoreOptions { ef_search: *ef, ..HnswStoreOptions::default() };
        let store = HnswStore::open_with(dir.join("usearch"), options).expect("reopen");
        load = started.elapsed().as_secs_f64();
        let (qps, recall) = runtime.block_on(measure(&store, &queries, &truth));
        rows.push(("HnswStore (usearch)", *ef, qps, recall));
    }
    let usearch_times = (build, save, load);

    // FaissStore with IndexHNSWFlat: the same.
    let started = Instant::now();
    let store = FaissStore::open(dir.join("faiss"), FaissIndex::hnsw()).expect("open");
    runtime.block_on(fill(&store, &data, d));
    let build = started.elapsed().as_secs_f64();
    let started = Instant::now();
    runtime.block_on(store.compact("docs")).expect("compact");
    let save = started.elapsed().as_secs_f64();
    drop(store);
    for ef in &args.efs {
        let started = Instant::now();
        let index = FaissIndex::Hnsw(FaissHnsw { ef_search: *ef, ..FaissHnsw::default() });
        let store = FaissStore::open_with(dir.join("faiss"), FaissStoreOptions::new(index)).expect("reopen");
        load = started.elapsed().as_secs_f64();
        let (qps, recall) = runtime.block_on(measure(&store, &queries, &truth));
        rows.push(("FaissStore (IndexHNSWFlat)", *ef, qps, recall));
    }
    let faiss_times = (build, save, load);

    // FaissStore with IndexFlatIP keeps no index file: it copies the records into FAISS on open.
    let started = Instant::now();
    let store = FaissStore::open(dir.join("flat"), FaissIndex::Flat).expect("open");
    runtime.block_on(fill(&store, &data, d));
    let build = started.elapsed().as_secs_f64();
    let started = Instant::now();
    runtime.block_on(store.compact("docs")).expect("compact");
    let save = started.elapsed().as_secs_f64();
    drop(store);
    let started = Instant::now();
    let store = FaissStore::open(dir.join("flat"), FaissIndex::Flat).expect("reopen");
    let flat_times = (build, save, started.elapsed().as_secs_f64());
    drop(store);
    let started = Instant::now();
    let store = ExactStore::open(dir.join("flat")).expect("reopen");
    let exact_open = started.elapsed().as_secs_f64();
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "ExactStore single query, 1 thread, same run: **{exact_qps:.1} QPS** ({} queries).",
        exact_sample.len()
    );
    println!();
    println!("| store | ef_search | QPS (1 thread) | recall@10 | × ExactStore |");
    println!("|---|---|---|---|---|");
    for (store, ef, qps, recall) in &rows {
        println!("| {store} | {ef} | {qps:.0} | {recall:.4} | {:.1}× |", qps / exact_qps);
    }
    println!();
    for store in ["HnswStore (usearch)", "FaissStore (IndexHNSWFlat)"] {
        let best =
            rows.iter().filter(|row| row.0 == store && row.3 >= 0.95).max_by(|a, b| a.2.total_cmp(&b.2));
        match best {
            Some((_, ef, qps, recall)) => println!(
                "- {store}: best QPS at recall@10 ≥ 0.95 is **{qps:.0}** (ef_search {ef}, recall {recall:.4}): \
                 **{:.1}× ExactStore**.",
                qps / exact_qps
            ),
            None => println!("- {store}: no ef_search reached recall@10 ≥ 0.95."),
        }
    }
    println!();
    println!(
        "| store | build (upserts of 10,000, graph included) | compaction (graph saved) | reopen (snapshot + graph loaded) |"
    );
    println!("|---|---|---|---|");
    for (store, (build, save, load)) in [
        ("HnswStore (usearch)", usearch_times),
        ("FaissStore (IndexHNSWFlat)", faiss_times),
        ("FaissStore (IndexFlatIP, rebuilt on open)", flat_times),
    ] {
        println!("| {store} | {build:.1} s | {save:.2} s | {load:.2} s |");
    }
    println!();
    println!("ExactStore opening the same snapshot (no index): {exact_open:.2} s.");
    println!();
}

fn main() {
    let args = Args::parse();
    match args.part.as_str() {
        "exact" => part_exact(&args),
        "hnsw" => part_hnsw(&args),
        other => eprintln!("unknown part {other}: exact or hnsw"),
    }
}
