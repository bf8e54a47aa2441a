//! The local embedder reproduces sentence-transformers' all-MiniLM-L6-v2 vectors (the fixture made
//! by `fixtures/make_embedding_fixture.py`) to 1e-5 per component, whatever the batching.

#![cfg(feature = "local-embed")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use capibara_core::embed::Embedder;
use common::{embedder, fixture, max_diff, norm};

const TOLERANCE: f32 = 1e-5;

/// Checks `vectors` against the fixture rows `indices`, in that order.
fn assert_matches(vectors: &[Vec<f32>], indices: &[usize], what: &str) {
    let fixture = fixture();
    assert_eq!(vectors.len(), indices.len(), "{what}: one vector per input");
    for (vector, &i) in vectors.iter().zip(indices) {
        assert_eq!(vector.len(), 384, "{what}: dimension");
        let diff = max_diff(vector, &fixture.embeddings[i]);
        assert!(
            diff <= TOLERANCE,
            "{what}: sentence {i} ({} tokens) differs by {diff}: {:?}",
            fixture.token_counts[i],
            fixture.sentences[i].chars().take(60).collect::<String>()
        );
        assert!((norm(vector) - 1.0).abs() < 1e-5, "{what}: sentence {i} is not unit length");
    }
}

#[tokio::test]
async fn matches_sentence_transformers_in_one_call() {
    let fixture = fixture();
    assert_eq!(fixture.model_id, "sentence-transformers/all-MiniLM-L6-v2");
    assert!(fixture.token_counts.iter().filter(|&&n| n > 256).count() >= 5, "the fixture covers truncation");
    let embedder = embedder(32, 1);
    assert_eq!(embedder.dimension(), 384);
    assert_eq!(embedder.model_id(), fixture.model_id);
    assert_eq!(embedder.max_seq_len(), fixture.max_seq_length);
    let vectors = embedder.embed(&fixture.sentences).await.unwrap();
    let all: Vec<usize> = (0..fixture.sentences.len()).collect();
    assert_matches(&vectors, &all, "batch 32, 1 thread");
}

#[tokio::test]
async fn batching_and_threads_do_not_change_results() {
    let fixture = fixture();
    let all: Vec<usize> = (0..fixture.sentences.len()).collect();
    for (batch_size, threads) in [(1, 1), (7, 2), (200, 2)] {
        let embedder = embedder(batch_size, threads);
        let vectors = embedder.embed(&fixture.sentences).await.unwrap();
        assert_matches(&vectors, &all, &format!("batch {batch_size}, {threads} threads"));
    }
}

#[tokio::test]
async fn order_is_preserved_across_calls_of_mixed_sizes() {
    let fixture = fixture();
    let embedder = embedder(16, 2);
    // A fixed shuffle (multiplication by a unit modulo 200) cut into calls of 1 to 61 texts.
    let order: Vec<usize> = (0..200).map(|i| (i * 77 + 13) % 200).collect();
    let mut start = 0;
    for size in [1, 2, 61, 3, 40, 29, 64].iter().cycle() {
        if start >= order.len() {
            break;
        }
        let part = &order[start..(start + size).min(order.len())];
        let texts: Vec<String> = part.iter().map(|&i| fixture.sentences[i].clone()).collect();
        let vectors = embedder.embed(&texts).await.unwrap();
        assert_matches(&vectors, part, &format!("call of {} shuffled texts", part.len()));
        start += size;
    }
}

#[tokio::test]
async fn a_very_long_text_is_truncated_like_its_first_tokens() {
    let embedder = embedder(32, 1);
    let long = "La capibara come hierba junto al río. ".repeat(2700);
    assert!(long.chars().count() >= 100_000);
    let head: String = long.chars().take(2_000).collect();
    let vectors = embedder.embed(&[long, head]).await.unwrap();
    assert!(max_diff(&vectors[0], &vectors[1]) < 1e-6, "only the first 256 tokens count");
}
