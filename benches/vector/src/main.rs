//! HNSW candidates for `HnswStore`, side by side on the same data: `hnsw_rs` (pure Rust) and
//! `usearch` (C++ through cxx).
//!
//! The data imitates sentence embeddings rather than iid noise (on which every HNSW has near-zero
//! recall): `clusters` centres drawn uniformly on the unit sphere, each point a centre plus
//! Gaussian noise of norm about `noise`, normalised. Queries are drawn the same way. The truth is
//! the exact top 10 by inner product; recall@10 is the share of it each index finds.
//!
//! Measured per library: graph build time (`--threads` threads), then for each `ef` the
//! single-thread QPS of one-query-at-a-time search and recall@10; and the time to save the graph
//! to a file and load it back (the alternative to rebuilding it on open).
//!
//! `benches/vector/run [--n 100000] [--d 384] …` (see `Args::parse`).

use std::time::Instant;

use hnsw_rs::prelude::{Distance, Hnsw};
use rayon::prelude::*;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use capibara_vector_ann_compare::{Rng, centres, clustered};

const K: usize = 10;
const M: usize = 16;
const EF_CONSTRUCTION: usize = 200;
const EFS: [usize; 6] = [16, 32, 64, 96, 128, 256];

struct Args {
    n: usize,
    d: usize,
    clusters: usize,
    noise: f32,
    queries: usize,
    threads: usize,
    only: Option<String>,
}

impl Args {
    fn parse() -> Self {
        let mut args =
            Self { n: 100_000, d: 384, clusters: 1000, noise: 0.75, queries: 1000, threads: 2, only: None };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let value = it.next().unwrap_or_default();
            match flag.as_str() {
                "--n" => args.n = value.parse().unwrap_or(args.n),
                "--d" => args.d = value.parse().unwrap_or(args.d),
                "--clusters" => args.clusters = value.parse().unwrap_or(args.clusters),
                "--noise" => args.noise = value.parse().unwrap_or(args.noise),
                "--queries" => args.queries = value.parse().unwrap_or(args.queries),
                "--threads" => args.threads = value.parse().unwrap_or(args.threads),
                "--only" => args.only = Some(value),
                other => eprintln!("ignoring unknown flag {other}"),
            }
        }
        args
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the features were just detected.
        return unsafe { dot_avx2(a, b) };
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    // SAFETY: every load is within `n` of both slices.
    unsafe {
        while i + 16 <= n {
            acc0 =
                _mm256_fmadd_ps(_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_loadu_ps(b.as_ptr().add(i)), acc0);
            acc1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(a.as_ptr().add(i + 8)),
                _mm256_loadu_ps(b.as_ptr().add(i + 8)),
                acc1,
            );
            i += 16;
        }
        let mut lanes = [0.0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), _mm256_add_ps(acc0, acc1));
        lanes.iter().sum::<f32>() + a[i..n].iter().zip(&b[i..n]).map(|(x, y)| x * y).sum::<f32>()
    }
}

/// `1 − a·b` with a SIMD dot product, without `anndists::DistDot`'s assertion that the result is
/// not negative (rounding makes it slightly negative for equal unit vectors).
#[derive(Clone, Copy, Default)]
struct OneMinusDot;

impl Distance<f32> for OneMinusDot {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        1.0 - dot(a, b)
    }
}

fn exact_top_k(data: &[f32], d: usize, query: &[f32]) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> =
        data.chunks(d).enumerate().map(|(i, row)| (dot(row, query), i)).collect();
    scored.select_nth_unstable_by(K, |a, b| b.0.total_cmp(&a.0));
    scored.truncate(K);
    scored.iter().map(|(_, i)| *i).collect()
}

fn recall(found: &[usize], truth: &[usize]) -> f64 {
    found.iter().filter(|id| truth.contains(id)).count() as f64 / K as f64
}

/// Runs `search` for every query at one `ef`; QPS and mean recall@10.
fn measure(
    queries: &[f32],
    d: usize,
    truth: &[Vec<usize>],
    search: impl Fn(&[f32]) -> Vec<usize>,
) -> (f64, f64) {
    // One warm-up pass over a tenth of the queries.
    queries.chunks(d).take(truth.len() / 10).for_each(|q| drop(search(q)));
    let started = Instant::now();
    let results: Vec<Vec<usize>> = queries.chunks(d).map(&search).collect();
    let seconds = started.elapsed().as_secs_f64();
    let recall = results.iter().zip(truth).map(|(found, truth)| recall(found, truth)).sum::<f64>()
        / truth.len() as f64;
    (truth.len() as f64 / seconds, recall)
}

fn report(name: &str, build: f64, rows: &[(usize, f64, f64)], save: f64, load: f64, bytes: u64) {
    println!(
        "\n## {name}\nbuild {build:.1} s; save {save:.2} s, load {load:.2} s ({:.0} MB)",
        bytes as f64 / 1e6
    );
    println!("| ef | QPS (1 thread) | recall@10 |\n|---|---|---|");
    for (ef, qps, recall) in rows {
        println!("| {ef} | {qps:.0} | {recall:.4} |");
    }
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

fn run_hnsw_rs(args: &Args, data: &[f32], queries: &[f32], truth: &[Vec<usize>]) {
    let d = args.d;
    let started = Instant::now();
    let hnsw: Hnsw<'static, f32, OneMinusDot> = Hnsw::new(M, args.n, 16, EF_CONSTRUCTION, OneMinusDot);
    let rows: Vec<(&[f32], usize)> = data.chunks(d).enumerate().map(|(i, row)| (row, i)).collect();
    hnsw.parallel_insert_slice(&rows);
    let build = started.elapsed().as_secs_f64();
    let mut results = Vec::new();
    for ef in EFS {
        let (qps, r) = measure(queries, d, truth, |q| hnsw.search(q, K, ef).iter().map(|n| n.d_id).collect());
        results.push((ef, qps, r));
    }
    let dir = tempdir("hnsw_rs");
    let started = Instant::now();
    let _ = hnsw_rs::api::AnnT::file_dump(&hnsw, &dir, "graph");
    let save = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let io = hnsw_rs::hnswio::HnswIo::new(&dir, "graph");
    let loaded: Result<Hnsw<'_, f32, OneMinusDot>, _> = io.load_hnsw_with_dist(OneMinusDot);
    let load = started.elapsed().as_secs_f64();
    drop(loaded);
    report("hnsw_rs 0.3.5", build, &results, save, load, dir_size(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}

fn run_usearch(args: &Args, data: &[f32], queries: &[f32], truth: &[Vec<usize>]) {
    let d = args.d;
    let options = IndexOptions {
        dimensions: d,
        metric: MetricKind::IP,
        quantization: ScalarKind::F32,
        connectivity: M,
        expansion_add: EF_CONSTRUCTION,
        expansion_search: 64,
        multi: false,
    };
    let started = Instant::now();
    let Ok(index) = Index::new(&options) else { return eprintln!("usearch: index creation failed") };
    if index.reserve_capacity_and_threads(args.n, args.threads).is_err() {
        return eprintln!("usearch: reserve failed");
    }
    data.par_chunks(d).enumerate().for_each(|(i, row)| {
        if let Err(error) = index.add(i as u64, row) {
            eprintln!("usearch add: {error}");
        }
    });
    let build = started.elapsed().as_secs_f64();
    let mut results = Vec::new();
    for ef in EFS {
        index.change_expansion_search(ef);
        let (qps, r) = measure(queries, d, truth, |q| {
            index.search(q, K).map(|m| m.keys.iter().map(|k| *k as usize).collect()).unwrap_or_default()
        });
        results.push((ef, qps, r));
    }
    let dir = tempdir("usearch");
    let path = dir.join("graph.usearch");
    let path_str = path.to_string_lossy().into_owned();
    let started = Instant::now();
    let _ = index.save(&path_str);
    let save = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let loaded = Index::new(&options).and_then(|fresh| fresh.load(&path_str).map(|()| fresh));
    let load = started.elapsed().as_secs_f64();
    if loaded.is_err() {
        eprintln!("usearch: load failed");
    }
    report(&format!("usearch {}", usearch::version()), build, &results, save, load, dir_size(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    filtered_usearch(&index, data, d, queries, truth.len());
}

/// Filtered search at a few selectivities (every `stride`-th row matches), ef 64: usearch's
/// predicate search against an exact scan of the matching rows only, for where `HnswStore`
/// switches from one to the other.
fn filtered_usearch(index: &Index, data: &[f32], d: usize, queries: &[f32], count: usize) {
    index.change_expansion_search(64);
    let queries: Vec<&[f32]> = queries.chunks(d).take(count.min(300)).collect();
    println!("\n### usearch filtered search, ef 64, k = {K} ({} queries)", queries.len());
    println!(
        "| matching share | matching rows | graph QPS | recall@10 | exact scan of matches QPS |\n|---|---|---|---|---|"
    );
    for stride in [100usize, 33, 10, 5, 3, 2] {
        let matching: Vec<usize> = (0..data.len() / d).filter(|i| i % stride == 0).collect();
        let scan = |q: &[f32]| -> Vec<usize> {
            let mut scored: Vec<(f32, usize)> =
                matching.iter().map(|i| (dot(&data[i * d..(i + 1) * d], q), *i)).collect();
            let k = K.min(scored.len());
            scored.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
            scored.truncate(k);
            scored.iter().map(|(_, i)| *i).collect()
        };
        let started = Instant::now();
        let truth: Vec<Vec<usize>> = queries.iter().map(|q| scan(q)).collect();
        let scan_qps = queries.len() as f64 / started.elapsed().as_secs_f64();
        let started = Instant::now();
        let found: Vec<Vec<usize>> = queries
            .iter()
            .map(|q| {
                index
                    .filtered_search(q, K, |key| (key as usize).is_multiple_of(stride))
                    .map(|m| m.keys.iter().map(|k| *k as usize).collect())
                    .unwrap_or_default()
            })
            .collect();
        let graph_qps = queries.len() as f64 / started.elapsed().as_secs_f64();
        let recall = found.iter().zip(&truth).map(|(f, t)| recall(f, t)).sum::<f64>() / truth.len() as f64;
        println!("| 1/{stride} | {} | {graph_qps:.0} | {recall:.4} | {scan_qps:.0} |", matching.len());
    }
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("capibara-ann-{name}-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

fn main() {
    let args = Args::parse();
    rayon::ThreadPoolBuilder::new().num_threads(args.threads).build_global().ok();
    let d = args.d;
    let mut rng = Rng(42);
    let centres = centres(&mut rng, args.clusters, d);
    let data = clustered(&mut rng, &centres, d, args.noise, args.n);
    let queries = clustered(&mut rng, &centres, d, args.noise, args.queries);
    let started = Instant::now();
    let truth: Vec<Vec<usize>> = queries.par_chunks(d).map(|q| exact_top_k(&data, d, q)).collect();
    let exact_qps = args.queries as f64 / started.elapsed().as_secs_f64() / args.threads as f64;
    println!(
        "# {} × {} clustered unit vectors ({} centres, noise {}), {} queries, k = {K}, M = {M}, \
         ef_construction = {EF_CONSTRUCTION}, build on {} threads",
        args.n, d, args.clusters, args.noise, args.queries, args.threads
    );
    let within: f32 = {
        let (a, b) = (&data[..d], &queries[..d]);
        dot(a, b)
    };
    println!(
        "exact scan (plain AVX2 loop): about {exact_qps:.0} QPS per thread; sample inner product {within:.3}"
    );
    if args.only.as_deref() != Some("usearch") {
        run_hnsw_rs(&args, &data, &queries, &truth);
    }
    if args.only.as_deref() != Some("hnsw_rs") {
        run_usearch(&args, &data, &queries, &truth);
    }
}
