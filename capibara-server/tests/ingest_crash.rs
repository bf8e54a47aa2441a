#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `capibara ingest` killed with SIGKILL at several points, then restarted: the vector index and
//! the relational ledger agree (every ledger chunk has its vector, no pending document is left),
//! and finishing the ingestion gives the same state as one uninterrupted run.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use capibara_core::vector::VectorStore;
use capibara_rag::ingest::IngestLedger;
use capibara_server::Capibara;
use capibara_server::store::SqlStore;

const FILES: usize = 120;

/// A corpus large enough that ingesting it takes a few seconds.
fn corpus(dir: &Path) {
    for i in 0..FILES {
        let paragraphs: Vec<String> = (0..6)
            .map(|p| {
                format!(
                    "Documento {i}, sección {p}. El capibara número {i} vive junto al río {p} y come hierba \
                     fresca cada mañana. Los investigadores midieron {} ejemplares en la laguna {}.",
                    i * 7 + p,
                    (i + p) % 13
                )
            })
            .collect();
        std::fs::write(dir.join(format!("doc{i:03}.txt")), paragraphs.join("\n\n")).unwrap();
    }
}

fn ingest_command(data: &Path, corpus: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_capibara"));
    command
        .args(["ingest", "--quiet", "--json"])
        .arg(corpus)
        .env("CAPIBARA_STORAGE__DATA_DIR", data)
        .env("CANDLE_NUM_THREADS", "1")
        .env("RAYON_NUM_THREADS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Bytes the vector store has written so far (its write-ahead logs and snapshots).
fn vector_bytes(data: &Path) -> u64 {
    fn walk(dir: &Path) -> u64 {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .flatten()
                .map(
                    |e| if e.path().is_dir() { walk(&e.path()) } else { e.metadata().map_or(0, |m| m.len()) },
                )
                .sum()
        })
    }
    walk(&data.join("vectors"))
}

/// Starts an ingestion and kills it once the store has grown by `bytes` (or the run ends).
fn ingest_and_kill_after(data: &Path, corpus: &Path, bytes: u64) -> bool {
    let before = vector_bytes(data);
    let mut child = ingest_command(data, corpus).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if vector_bytes(data) >= before + bytes {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return true;
        }
        assert!(Instant::now() < deadline, "ingestion made no progress in 300 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Opens the data dir as the server does (recovery included) and checks ledger and index agree.
async fn reopen_and_check(data: &Path) -> (usize, u64) {
    let mut config = capibara_server::settings::from_toml("").unwrap();
    config.storage.data_dir = data.to_path_buf();
    let app = Capibara::build_without_chat(config.clone()).await.unwrap();
    let rag = app.rag().unwrap();
    let collection = rag.index().collection().to_owned();
    let database = SqlStore::connect(&config.storage.effective_database_url(), 2).await.unwrap();
    let ledger = database.ledger(collection.clone());
    assert!(ledger.pending().await.unwrap().is_empty(), "recovery finished every pending document");
    let chunks = ledger.indexed_chunks().await.unwrap();
    let ids: Vec<String> = chunks.iter().map(|c| c.id.clone()).collect();
    let store = rag.vector_store();
    let stored: BTreeSet<String> =
        store.get(&collection, &ids).await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(stored.len(), ids.len(), "every ledger chunk has its vector");
    let vectors = store.count(&collection).await.unwrap();
    assert_eq!(vectors, ids.len() as u64, "the index holds nothing the ledger does not know");
    assert_eq!(rag.index().len(), ids.len(), "the lexical side holds exactly the ledger's chunks");
    database.close().await;
    (ids.len(), vectors)
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_ingestion_leaves_index_and_ledger_in_agreement() {
    let work = tempfile::tempdir().unwrap();
    let (data, docs) = (work.path().join("data"), work.path().join("docs"));
    std::fs::create_dir_all(&docs).unwrap();
    corpus(&docs);

    let mut kills = 0;
    for grow in [20_000u64, 150_000, 400_000] {
        if ingest_and_kill_after(&data, &docs, grow) {
            kills += 1;
            reopen_and_check(&data).await;
        }
    }
    assert!(kills >= 2, "the ingestion ended before it could be killed twice; make the corpus larger");

    let finished = ingest_command(&data, &docs).output().unwrap();
    assert!(finished.status.success(), "{}", String::from_utf8_lossy(&finished.stderr));
    let (chunks, vectors) = reopen_and_check(&data).await;

    // The same corpus ingested without interruption gives the same chunks.
    let clean = work.path().join("clean");
    let output = ingest_command(&clean, &docs).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["files"], FILES);
    assert_eq!((chunks, vectors), reopen_and_check(&clean).await);
}
