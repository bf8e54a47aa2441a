//! BM25 scores against hand-computed values, ranking order, filters, updates, limits and storage.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::lexical::analysis::{AnalyzerConfig, Language};

/// Whitespace-like analysis: no stop words, no stemming, so terms are the words themselves.
fn plain() -> Analyzer {
    Analyzer::new(Language::None)
}

/// The textbook constants, which the hand-computed scores below use.
const TEXTBOOK: Bm25Params = Bm25Params { k1: 1.5, b: 0.75 };

fn small_index() -> Bm25Index {
    let mut index = Bm25Index::with_params(plain(), TEXTBOOK).unwrap();
    index.add("d1", "a b").unwrap();
    index.add("d2", "a a c").unwrap();
    index.add("d3", "c d e f").unwrap();
    index
}

fn ids(hits: &[Bm25Hit]) -> Vec<&str> {
    hits.iter().map(|hit| hit.id.as_str()).collect()
}

fn assert_close(actual: f32, expected: f64) {
    assert!((f64::from(actual) - expected).abs() < 1e-5, "{actual} != {expected}");
}

#[test]
fn scores_match_the_formula_computed_by_hand() {
    // N = 3, average length 3, k1 = 1.5, b = 0.75.
    // idf(df=1) = ln(1 + 2.5/1.5); idf(df=2) = ln(1 + 1.5/2.5).
    let index = small_index();
    let hits = index.search("b", 10).unwrap();
    assert_eq!(ids(&hits), ["d1"]);
    assert_close(hits[0].score, 1.153_916_768);

    let hits = index.search("a c", 10).unwrap();
    assert_eq!(ids(&hits), ["d2", "d1", "d3"]);
    assert_close(hits[0].score, 0.671_433_756 + 0.470_003_629);
    assert_close(hits[1].score, 0.552_945_446);
    assert_close(hits[2].score, 0.408_698_808);

    // A repeated query term counts once per occurrence.
    let twice = index.search("b b", 10).unwrap();
    assert_close(twice[0].score, 2.0 * 1.153_916_768);
    assert_eq!(index.len(), 3);
    assert!((index.avg_doc_len() - 3.0).abs() < 1e-12);
    assert_eq!(index.vocabulary_len(), 6);
    assert_eq!(Bm25Index::new(plain()).params(), Bm25Params { k1: 0.9, b: 0.4 });
}

#[test]
fn params_change_the_scores_and_are_validated() {
    let mut index = Bm25Index::with_params(plain(), Bm25Params { k1: 0.0, b: 0.0 }).unwrap();
    index.add("short", "x").unwrap();
    index.add("long", "x x x y y y").unwrap();
    // k1 = 0: a term counts once whatever its frequency and the length; equal scores, id order.
    let hits = index.search("x", 10).unwrap();
    assert_eq!(ids(&hits), ["long", "short"]);
    assert_eq!(hits[0].score, hits[1].score);
    assert_eq!(index.params(), Bm25Params { k1: 0.0, b: 0.0 });

    for params in [
        Bm25Params { k1: -0.1, b: 0.75 },
        Bm25Params { k1: f32::NAN, b: 0.75 },
        Bm25Params { k1: f32::INFINITY, b: 0.75 },
        Bm25Params { k1: 1.2, b: 1.5 },
        Bm25Params { k1: 1.2, b: -0.5 },
    ] {
        let error = Bm25Index::with_params(plain(), params).unwrap_err();
        assert!(matches!(error, Error::InvalidInput(_)), "{params:?}: {error:?}");
    }
}

#[test]
fn equal_scores_are_ordered_by_id() {
    let mut index = Bm25Index::new(plain());
    for id in ["c", "a", "d", "b"] {
        index.add(id, "same words here").unwrap();
    }
    index.add("e", "other").unwrap();
    assert_eq!(ids(&index.search("words", 10).unwrap()), ["a", "b", "c", "d"]);
    assert_eq!(ids(&index.search("words", 2).unwrap()), ["a", "b"]);
}

/// A deterministic pseudo-random corpus over a small vocabulary.
fn random_corpus(docs: usize) -> Vec<(String, String)> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..docs)
        .map(|n| {
            let len = 1 + next() % 30;
            let words: Vec<String> = (0..len).map(|_| format!("w{}", next() % 40)).collect();
            (format!("doc{n:04}"), words.join(" "))
        })
        .collect()
}

/// Every matching document, scored by the index, fully sorted.
fn full_ranking(index: &Bm25Index, query: &str) -> Vec<Bm25Hit> {
    let mut all = index.search(query, MAX_K).unwrap();
    all.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    all
}

#[test]
fn top_k_equals_the_head_of_the_full_ranking() {
    let mut index = Bm25Index::new(plain());
    for (id, text) in random_corpus(500) {
        index.add(id, &text).unwrap();
    }
    for query in ["w1", "w2 w3", "w5 w5 w17 w39", "w0 w1 w2 w3 w4 w5 w6 w7"] {
        let full = full_ranking(&index, query);
        assert!(full.len() > 20, "{query}");
        for k in [1, 3, 10, 20] {
            assert_eq!(index.search(query, k).unwrap(), full[..k], "{query} k={k}");
        }
        for pair in full.windows(2) {
            assert!(
                pair[0].score > pair[1].score || (pair[0].score == pair[1].score && pair[0].id < pair[1].id)
            );
        }
    }
}

#[test]
fn the_filter_applies_before_top_k() {
    let mut index = Bm25Index::new(plain());
    for (id, text) in random_corpus(300) {
        index.add(id, &text).unwrap();
    }
    let odd = |id: &str| id.ends_with(['1', '3', '5', '7', '9']);
    let expected: Vec<Bm25Hit> =
        full_ranking(&index, "w7 w8").into_iter().filter(|hit| odd(&hit.id)).collect();
    assert!(expected.len() >= 10);
    let hits = index.search_filtered("w7 w8", 10, odd).unwrap();
    assert_eq!(hits, expected[..10]);
    assert!(index.search_filtered("w7", 10, |_| false).unwrap().is_empty());
}

#[test]
fn re_adding_replaces_and_removing_updates_the_statistics() {
    let mut index = small_index();
    let before = index.search("a b c", 10).unwrap();
    index.add("d1", "a b").unwrap();
    assert_eq!(index.search("a b c", 10).unwrap(), before);
    index.add("d1", "z z").unwrap();
    assert_eq!(index.len(), 3);
    assert!(index.search("b", 10).unwrap().is_empty());
    assert_eq!(ids(&index.search("z", 10).unwrap()), ["d1"]);

    assert!(index.remove("d1"));
    assert!(!index.remove("d1"));
    assert!(!index.contains("d1"));
    assert_eq!(index.len(), 2);
    assert!(index.search("z", 10).unwrap().is_empty());
    assert_eq!(index.vocabulary_len(), 5);

    // The same as an index that never held d1.
    let mut fresh = Bm25Index::with_params(plain(), TEXTBOOK).unwrap();
    fresh.add("d2", "a a c").unwrap();
    fresh.add("d3", "c d e f").unwrap();
    assert_eq!(index.search("a c f", 10).unwrap(), fresh.search("a c f", 10).unwrap());
    assert!((index.avg_doc_len() - fresh.avg_doc_len()).abs() < 1e-12);

    // Freed slots and terms are reused.
    index.add("d4", "a q").unwrap();
    fresh.add("d4", "a q").unwrap();
    assert_eq!(index.search("a q", 10).unwrap(), fresh.search("a q", 10).unwrap());
    let mut all: Vec<&str> = index.ids().collect();
    all.sort_unstable();
    assert_eq!(all, ["d2", "d3", "d4"]);

    for id in ["d2", "d3", "d4"] {
        assert!(index.remove(id));
    }
    assert!(index.is_empty());
    assert_eq!(index.vocabulary_len(), 0);
    assert_eq!(index.avg_doc_len(), 0.0);
    assert!(index.search("a", 10).unwrap().is_empty());
}

#[test]
fn churn_keeps_postings_sorted_and_results_equal_to_a_fresh_build() {
    let corpus = random_corpus(200);
    let mut index = Bm25Index::new(plain());
    for (id, text) in &corpus {
        index.add(id.clone(), text).unwrap();
    }
    // Remove every third document, then re-add half of those with other texts.
    let mut fresh = Bm25Index::new(plain());
    for (n, (id, text)) in corpus.iter().enumerate() {
        if n % 3 == 0 {
            index.remove(id);
            if n % 2 == 0 {
                let text = format!("{text} w99 w98");
                index.add(id.clone(), &text).unwrap();
                fresh.add(id.clone(), &text).unwrap();
            }
        } else {
            fresh.add(id.clone(), text).unwrap();
        }
    }
    assert_eq!(index.len(), fresh.len());
    for query in ["w1 w2", "w99", "w3 w98 w30"] {
        let (a, b) = (index.search(query, 50).unwrap(), fresh.search(query, 50).unwrap());
        assert_eq!(ids(&a), ids(&b), "{query}");
        for (x, y) in a.iter().zip(&b) {
            assert!((x.score - y.score).abs() < 1e-5);
        }
    }
}

#[test]
fn bad_requests_are_invalid_input_with_a_reason() {
    let mut index = Bm25Index::new(Analyzer::new(Language::Spanish));
    index.add("a", "El capibara vive en Sudamérica").unwrap();
    let message = |error: Error| match error {
        Error::InvalidInput(message) => message,
        other => panic!("not InvalidInput: {other:?}"),
    };
    assert!(message(index.search("capibara", 0).unwrap_err()).contains("between 1 and 1000"));
    assert!(message(index.search("capibara", MAX_K + 1).unwrap_err()).contains("1001"));
    assert!(index.search("capibara", MAX_K).is_ok());
    assert!(message(index.search("", 5).unwrap_err()).contains("empty"));
    assert!(message(index.search(" \t\n", 5).unwrap_err()).contains("empty"));
    assert!(message(index.search("¿de la que?", 5).unwrap_err()).contains("no indexable terms"));
    assert!(message(index.add("", "texto").unwrap_err()).contains("id is empty"));
    // Unknown words are not an error: no document matches.
    assert!(index.search("ornitorrinco", 5).unwrap().is_empty());
    // Neither is an empty index.
    assert!(Bm25Index::new(plain()).search("a", 5).unwrap().is_empty());
    // A document without terms is kept but never found.
    index.add("blank", "¡de la!").unwrap();
    assert_eq!(index.len(), 2);
    assert_eq!(ids(&index.search("capibara", 5).unwrap()), ["a"]);
}

#[test]
fn a_serialised_index_reads_back_to_the_same_results() {
    let mut index = Bm25Index::with_params(
        Analyzer::from_config(AnalyzerConfig {
            stop_words: false,
            ..AnalyzerConfig::for_language(Language::English)
        }),
        Bm25Params { k1: 1.2, b: 0.5 },
    )
    .unwrap();
    for (id, text) in random_corpus(100) {
        index.add(id, &text).unwrap();
    }
    index.remove("doc0007");
    index.remove("doc0050");
    let json = serde_json::to_string(&index).unwrap();
    let back: Bm25Index = serde_json::from_str(&json).unwrap();
    // The written form depends only on what was added, not on hashing.
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    assert_eq!(back.len(), index.len());
    assert_eq!(back.vocabulary_len(), index.vocabulary_len());
    assert_eq!(back.params(), index.params());
    assert_eq!(back.analyzer(), index.analyzer());
    for query in ["w1", "w2 w3 w4", "w10 w20 w30"] {
        assert_eq!(back.search(query, 30).unwrap(), index.search(query, 30).unwrap());
    }
}

#[test]
fn an_inconsistent_snapshot_is_refused() {
    let base = serde_json::json!({"analyzer": {}, "params": {"k1": 1.5, "b": 0.75}, "terms": ["x"]});
    let with_docs = |documents: serde_json::Value| {
        let mut value = base.clone();
        value["documents"] = documents;
        serde_json::from_value::<Bm25Index>(value)
    };
    assert!(with_docs(serde_json::json!([{"id": "a", "terms": [[0, 2]]}])).is_ok());
    for (documents, expected) in [
        (serde_json::json!([{"id": "a", "terms": [[1, 1]]}]), "refers to term 1"),
        (serde_json::json!([{"id": "a", "terms": [[0, 0]]}]), "zero or repeated"),
        (serde_json::json!([{"id": "a", "terms": [[0, 1], [0, 1]]}]), "zero or repeated"),
        (serde_json::json!([{"id": "a", "terms": []}, {"id": "a", "terms": []}]), "appears twice"),
        (serde_json::json!([{"id": "", "terms": []}]), "empty id"),
    ] {
        let error = with_docs(documents).unwrap_err().to_string();
        assert!(error.contains(expected), "{error}");
    }
    let mut bad_params = base.clone();
    bad_params["params"]["b"] = serde_json::json!(2.0);
    bad_params["documents"] = serde_json::json!([]);
    assert!(serde_json::from_value::<Bm25Index>(bad_params).unwrap_err().to_string().contains("b must be"));
}
