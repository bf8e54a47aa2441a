//! BM25 retrieval quality on the Spanish XQuAD evaluation sets (BEIR layout).
//!
//! The sets are read from `$CAPIBARA_EVAL_DATA` (default: `shared/data` beside the workspace);
//! a missing folder fails the test, naming the path and the variable.
//!
//! `cargo test -p capibara-rag --test lexical_eval -- --nocapture` prints the numbers;
//! `-- --ignored --nocapture analysis_variants` prints the comparison of analysis choices.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use capibara_rag::eval::{self, BeirDataset, LatencySummary, RetrievalQuality, Run};
use capibara_rag::lexical::{AccentFolding, Analyzer, AnalyzerConfig, Bm25Index, Bm25Params, Language};

const DATA_ENV: &str = "CAPIBARA_EVAL_DATA";

fn data_root() -> PathBuf {
    match std::env::var_os(DATA_ENV) {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
    }
}

fn load(name: &str) -> BeirDataset {
    let dir = data_root().join(name);
    if !dir.is_dir() {
        panic!(
            "evaluation set {name} not found at {}: set {DATA_ENV} to the folder holding {name}/",
            dir.display()
        );
    }
    BeirDataset::load(&dir).unwrap_or_else(|error| panic!("reading {}: {error}", dir.display()))
}

struct Measured {
    at_10: RetrievalQuality,
    at_100: RetrievalQuality,
    latency: LatencySummary,
    build: Duration,
}

fn measure(set: &BeirDataset, config: AnalyzerConfig, params: Bm25Params) -> Measured {
    let started = Instant::now();
    let mut index = Bm25Index::with_params(Analyzer::from_config(config), params).unwrap();
    for doc in &set.corpus {
        index.add(doc.id.clone(), &doc.indexed_text()).unwrap();
    }
    let build = started.elapsed();
    assert_eq!(index.len(), set.corpus.len());

    let mut run = Run::new();
    let mut latencies = Vec::new();
    for query in set.judged_queries() {
        let started = Instant::now();
        let hits = index.search(&query.text, 100).unwrap();
        latencies.push(started.elapsed());
        run.insert(query.id.clone(), hits.into_iter().map(|hit| hit.id).collect());
    }
    Measured {
        at_10: eval::evaluate(&set.qrels, &run, 10).unwrap(),
        at_100: eval::evaluate(&set.qrels, &run, 100).unwrap(),
        latency: LatencySummary::from_durations(&latencies).unwrap(),
        build,
    }
}

fn report(name: &str, set: &BeirDataset, measured: &Measured) {
    let Measured { at_10, at_100, latency, build } = measured;
    println!(
        "{name}: {} docs, {} queries | nDCG@10 {:.4}  recall@10 {:.4}  MRR@10 {:.4}  recall@100 {:.4} | \
         build {build:?} | search {latency}",
        set.corpus.len(),
        at_10.queries,
        at_10.ndcg,
        at_10.recall,
        at_10.mrr,
        at_100.recall,
    );
}

fn check(name: &str, min_ndcg_10: f64) {
    let set = load(name);
    assert_eq!(set.qrels.len(), 1190, "{name}: judged queries");
    let measured = measure(&set, AnalyzerConfig::for_language(Language::Spanish), Bm25Params::default());
    report(name, &set, &measured);
    assert_eq!(measured.at_10.queries, 1190);
    assert!(
        measured.at_10.ndcg >= min_ndcg_10,
        "{name}: BM25 nDCG@10 {:.4} is below {min_ndcg_10}",
        measured.at_10.ndcg
    );
    assert!(measured.at_10.recall >= measured.at_10.ndcg && measured.at_100.recall >= measured.at_10.recall);
}

#[test]
fn bm25_spanish_on_xquad_es() {
    check("xquad_es", 0.95);
}

#[test]
fn bm25_spanish_on_xquad_r_es() {
    check("xquad_r_es", 0.81);
}

#[test]
#[ignore = "a measurement: prints nDCG@10 of each analysis choice and BM25 constants"]
fn analysis_variants() {
    let spanish = AnalyzerConfig::for_language(Language::Spanish);
    let variants = [
        ("stem, then fold (default)", spanish),
        ("fold, then stem", AnalyzerConfig { folding: AccentFolding::BeforeStemming, ..spanish }),
        ("stem, no folding", AnalyzerConfig { folding: AccentFolding::Off, ..spanish }),
        ("stem, then fold, stop words kept", AnalyzerConfig { stop_words: false, ..spanish }),
        ("no stemming, fold", AnalyzerConfig::for_language(Language::None)),
        (
            "no stemming, no folding",
            AnalyzerConfig { folding: AccentFolding::Off, ..AnalyzerConfig::for_language(Language::None) },
        ),
    ];
    let param_sets =
        [Bm25Params::default(), Bm25Params { k1: 1.5, b: 0.75 }, Bm25Params { k1: 1.2, b: 0.75 }];
    for name in ["xquad_es", "xquad_r_es"] {
        let set = load(name);
        for params in param_sets {
            for (label, config) in variants {
                let m = measure(&set, config, params);
                println!(
                    "{name:<10} k1={:<3} b={:<4} {label:<34} nDCG@10 {:.4}  recall@10 {:.4}  MRR@10 {:.4}",
                    params.k1, params.b, m.at_10.ndcg, m.at_10.recall, m.at_10.mrr
                );
            }
        }
        for k1 in [0.6, 0.9, 1.2, 1.5, 2.0] {
            for b in [0.2, 0.4, 0.6, 0.75, 0.9] {
                let m = measure(&set, spanish, Bm25Params { k1, b });
                println!("{name:<10} k1={k1:<3} b={b:<4} nDCG@10 {:.4}", m.at_10.ndcg);
            }
        }
    }
}
