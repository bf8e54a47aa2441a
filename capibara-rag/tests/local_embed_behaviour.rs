//! The local embedder's contract beyond the numbers: bad inputs and bad model files are clear
//! errors, concurrent callers get the same vectors as sequential ones, take turns fairly, and a
//! dropped call does not keep the embedder busy.

#![cfg(feature = "local-embed")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capibara_core::Error;
use capibara_core::embed::Embedder;
use capibara_rag::local_embed::{LocalEmbedder, LocalEmbedderOptions, MAX_TEXT_BYTES, MAX_TEXTS_PER_CALL};
use common::{embedder, fixture, max_diff, model_dir, texts};

#[tokio::test]
async fn bad_inputs_are_refused_with_their_index_or_limit() {
    let embedder = embedder(32, 1);
    let error = embedder.embed(&texts(["uno", "dos", "tres", "   \t\n", "cinco"])).await.unwrap_err();
    assert_eq!(error, Error::InvalidInput("input[3] is empty".into()));
    let error = embedder.embed(&texts([""])).await.unwrap_err();
    assert_eq!(error, Error::InvalidInput("input[0] is empty".into()));

    let many = vec!["hola".to_owned(); MAX_TEXTS_PER_CALL + 1];
    let error = embedder.embed(&many).await.unwrap_err();
    assert!(matches!(&error, Error::TooLarge(m) if m.contains("2049") && m.contains("2048")), "{error:?}");

    let huge = vec!["ok".to_owned(), "ñ".repeat(MAX_TEXT_BYTES / 2 + 1)];
    let error = embedder.embed(&huge).await.unwrap_err();
    assert!(
        matches!(&error, Error::TooLarge(m) if m.contains("input[1]") && m.contains("1000000")),
        "{error:?}"
    );

    assert!(embedder.embed(&[]).await.unwrap().is_empty());
    // The embedder still works after refusing.
    assert_eq!(embedder.embed(&texts(["¿Sigues ahí? 🦫"])).await.unwrap()[0].len(), 384);
}

#[tokio::test]
async fn the_largest_accepted_call_works() {
    let embedder = embedder(32, 2);
    let mut many = vec!["¿Dónde está la estación?".to_owned(); MAX_TEXTS_PER_CALL - 1];
    many.push("palabra ".repeat(MAX_TEXT_BYTES / 8));
    let vectors = embedder.embed(&many).await.unwrap();
    assert_eq!(vectors.len(), MAX_TEXTS_PER_CALL);
    assert!(max_diff(&vectors[0], &vectors[MAX_TEXTS_PER_CALL - 2]) == 0.0);
}

/// A copy of the model directory (hard links or copies) to break one file at a time.
fn model_copy() -> tempfile::TempDir {
    let source = model_dir();
    let dir = tempfile::tempdir().unwrap();
    for name in ["config.json", "tokenizer.json", "model.safetensors"] {
        let (from, to) = (source.join(name), dir.path().join(name));
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).unwrap();
        }
    }
    dir
}

fn load_error(dir: &Path) -> Error {
    LocalEmbedder::load(LocalEmbedderOptions::new(dir)).unwrap_err()
}

fn replace(dir: &Path, name: &str, contents: &[u8]) {
    let path = dir.join(name);
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, contents).unwrap();
}

#[test]
fn missing_and_broken_model_files_are_named() {
    let missing = load_error(Path::new("/nonexistent/capibara-model"));
    assert!(
        matches!(&missing, Error::NotFound(m) if m.contains("/nonexistent/capibara-model/config.json")),
        "{missing:?}"
    );

    for name in ["config.json", "tokenizer.json", "model.safetensors"] {
        let dir = model_copy();
        std::fs::remove_file(dir.path().join(name)).unwrap();
        let error = load_error(dir.path());
        assert!(matches!(&error, Error::NotFound(m) if m.contains(name)), "{name}: {error:?}");
    }

    let dir = model_copy();
    replace(dir.path(), "model.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{\"broken\": tru");
    let error = load_error(dir.path());
    assert!(matches!(&error, Error::InvalidInput(m) if m.contains("model.safetensors")), "{error:?}");

    let dir = model_copy();
    let weights = std::fs::read(dir.path().join("model.safetensors")).unwrap();
    replace(dir.path(), "model.safetensors", &weights[..weights.len() / 2]);
    let error = load_error(dir.path());
    assert!(
        matches!(&error, Error::InvalidInput(m) if m.contains("model.safetensors")),
        "truncated: {error:?}"
    );

    let dir = model_copy();
    let config = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    replace(dir.path(), "config.json", config.replace("\"bert\"", "\"llama\"").as_bytes());
    let error = load_error(dir.path());
    assert!(
        matches!(&error, Error::InvalidInput(m) if m.contains("config.json") && m.contains("unsupported architecture")),
        "{error:?}"
    );

    let dir = model_copy();
    replace(dir.path(), "tokenizer.json", b"{\"not\": \"a tokenizer\"}");
    let error = load_error(dir.path());
    assert!(matches!(&error, Error::InvalidInput(m) if m.contains("tokenizer.json")), "{error:?}");
}

#[test]
fn options_are_validated_and_max_seq_len_is_clamped() {
    let mut options = LocalEmbedderOptions::new(model_dir());
    options.threads = 0;
    assert!(matches!(LocalEmbedder::load(options), Err(Error::InvalidInput(m)) if m.contains("threads")));

    let mut options = LocalEmbedderOptions::new(model_dir());
    options.max_seq_len = 100_000;
    options.model_id = "minilm".into();
    let embedder = LocalEmbedder::load(options).unwrap();
    assert_eq!(embedder.max_seq_len(), 512, "clamped to max_position_embeddings");
    assert_eq!(embedder.model_id(), "minilm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_give_the_sequential_vectors() {
    let fixture = fixture();
    let embedder = Arc::new(embedder(8, 2));
    let sequential = embedder.embed(&fixture.sentences).await.unwrap();

    let calls: Vec<Vec<usize>> =
        (0..24).map(|c| (0..200).filter(|i| (i * 7 + c) % 24 < 3).collect()).collect();
    let handles: Vec<_> = calls
        .iter()
        .map(|indices| {
            let embedder = Arc::clone(&embedder);
            let texts: Vec<String> = indices.iter().map(|&i| fixture.sentences[i].clone()).collect();
            tokio::spawn(async move { embedder.embed(&texts).await })
        })
        .collect();
    for (indices, handle) in calls.iter().zip(handles) {
        let vectors = handle.await.unwrap().unwrap();
        assert_eq!(vectors.len(), indices.len());
        for (vector, &i) in vectors.iter().zip(indices) {
            assert!(max_diff(vector, &sequential[i]) <= 1e-6, "sentence {i} differs when concurrent");
        }
    }
    assert_eq!(embedder.pending_requests(), 0);
}

/// 512 texts of 256 tokens (after truncation): 16 batches, many seconds of work.
fn big_request() -> Vec<String> {
    (0..512).map(|i| format!("{i} la capibara come hierba junto al río. ").repeat(40)).collect()
}

async fn wait_for(embedder: &LocalEmbedder, pending: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while embedder.pending_requests() != pending {
        assert!(
            Instant::now() < deadline,
            "pending_requests stayed {} (waiting for {pending})",
            embedder.pending_requests()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_call_does_not_wait_for_a_large_one() {
    let embedder = Arc::new(embedder(32, 1));
    let big = {
        let embedder = Arc::clone(&embedder);
        tokio::spawn(async move { embedder.embed(&big_request()).await })
    };
    wait_for(&embedder, 1).await;
    let small = embedder.embed(&texts(["¿Qué hora es?"])).await.unwrap();
    assert_eq!(small.len(), 1);
    assert!(!big.is_finished(), "the small call was answered while the large one still runs");
    big.abort();
    wait_for(&embedder, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_call_stops_using_the_embedder() {
    let embedder = embedder(32, 1);
    let abandoned = tokio::time::timeout(Duration::from_millis(300), embedder.embed(&big_request())).await;
    assert!(abandoned.is_err(), "the large call cannot finish in 300 ms");
    // The request is dropped at the next batch boundary, long before its 64 batches would end.
    wait_for(&embedder, 0).await;
    let started = Instant::now();
    let vectors = embedder.embed(&texts(["hola", "adiós"])).await.unwrap();
    assert_eq!(vectors.len(), 2);
    assert!(started.elapsed() < Duration::from_secs(5), "the embedder is not busy with the dropped call");
}
