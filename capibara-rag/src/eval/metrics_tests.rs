//! Metrics against values computed by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn judgements(pairs: &[(&str, i32)]) -> Judgements {
    pairs.iter().map(|&(id, grade)| (id.to_owned(), grade)).collect()
}

fn close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}");
}

#[test]
fn graded_ndcg_recall_and_mrr_at_cutoffs() {
    let judged = judgements(&[("d1", 3), ("d2", 2), ("d3", 0), ("d4", 1)]);
    let ranked = ["d3", "d1", "d5", "d4", "d2"];
    // DCG@3 = 0/log2(2) + 3/log2(3) + 0/log2(4); IDCG@3 = 3/log2(2) + 2/log2(3) + 1/log2(4).
    close(ndcg_at_k(&ranked, &judged, 3), (3.0 / 3f64.log2()) / (3.0 + 2.0 / 3f64.log2() + 0.5));
    close(ndcg_at_k(&ranked, &judged, 3), 0.397_489_522_291_688);
    // DCG@5 adds 1/log2(5) + 2/log2(6); IDCG@5 = IDCG@3 (three relevant documents).
    close(ndcg_at_k(&ranked, &judged, 5), 0.650_412_182_176_104);
    close(ndcg_at_k(&ranked, &judged, 100), 0.650_412_182_176_104);
    close(recall_at_k(&ranked, &judged, 3), 1.0 / 3.0);
    close(recall_at_k(&ranked, &judged, 5), 1.0);
    close(reciprocal_rank_at_k(&ranked, &judged, 1), 0.0);
    close(reciprocal_rank_at_k(&ranked, &judged, 3), 0.5);
    close(reciprocal_rank_at_k(&ranked, &judged, usize::MAX), 0.5);
}

#[test]
fn binary_judgements_and_edge_cases() {
    let judged = judgements(&[("a", 1)]);
    close(ndcg_at_k(&["x", "a"], &judged, 10), 1.0 / 3f64.log2());
    close(ndcg_at_k(&["a", "x"], &judged, 10), 1.0);
    close(ndcg_at_k(&["x", "a"], &judged, 1), 0.0);
    let nothing: [&str; 0] = [];
    close(ndcg_at_k(&nothing, &judged, 10), 0.0);
    close(recall_at_k(&nothing, &judged, 10), 0.0);
    close(reciprocal_rank_at_k(&nothing, &judged, 10), 0.0);
    // Judged but nothing relevant (grades ≤ 0): every metric is 0.
    let none_relevant = judgements(&[("a", 0), ("b", -1)]);
    close(ndcg_at_k(&["a", "b"], &none_relevant, 10), 0.0);
    close(recall_at_k(&["a", "b"], &none_relevant, 10), 0.0);
    close(reciprocal_rank_at_k(&["a", "b"], &none_relevant, 10), 0.0);
}

#[test]
fn repeated_ids_count_once_and_take_no_rank() {
    let judged = judgements(&[("a", 1), ("b", 1)]);
    close(ndcg_at_k(&["a", "a", "b"], &judged, 2), 1.0);
    close(recall_at_k(&["a", "a", "a"], &judged, 3), 0.5);
    close(reciprocal_rank_at_k(&["x", "x", "b"], &judged, 2), 0.5);
}

#[test]
fn evaluate_averages_over_every_judged_query() {
    let mut qrels = Qrels::new();
    qrels.insert("q1", "a", 1);
    qrels.insert("q2", "b", 1);
    qrels.insert("q2", "c", 1);
    qrels.insert("q3", "z", 0);
    assert_eq!(qrels.insert("q3", "z", 0), Some(0));
    assert_eq!(qrels.len(), 3);
    assert_eq!(qrels.query_ids().collect::<Vec<_>>(), ["q1", "q2", "q3"]);

    let mut run = Run::new();
    run.insert("q1".into(), vec!["a".into()]);
    run.insert("q2".into(), vec!["c".into(), "x".into(), "b".into()]);
    run.insert("q-unjudged".into(), vec!["a".into()]);
    // q3 is judged but absent from the run: it counts, with zeros.
    let quality = evaluate(&qrels, &run, 2).unwrap();
    assert_eq!((quality.k, quality.queries), (2, 3));
    // q2: DCG@2 = 1, IDCG@2 = 1 + 1/log2(3).
    close(quality.ndcg, (1.0 + 1.0 / (1.0 + 1.0 / 3f64.log2())) / 3.0);
    close(quality.ndcg, 0.537_715_730_921_820);
    close(quality.recall, (1.0 + 0.5) / 3.0);
    close(quality.mrr, 2.0 / 3.0);

    assert!(matches!(evaluate(&qrels, &run, 0), Err(Error::InvalidInput(_))));
    assert!(matches!(evaluate(&Qrels::new(), &run, 10), Err(Error::InvalidInput(_))));
}
