//! A writer killed with SIGKILL at arbitrary points (mid-append, mid-compaction) leaves a store
//! that reopens to exactly the state after some prefix of its writes, at least every write that
//! had returned: each record whole with its right vector, text and metadata, or absent.
//!
//! The test re-runs its own binary as the writer (`crash_writer_child`, which does nothing unless
//! `CAPIBARA_VECTOR_CRASH_DIR` is set), reads its acknowledgements from stdout, and kills it.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use capibara_core::vector::{VectorRecord, VectorStore};
use capibara_rag::vector::{ExactStore, ExactStoreOptions};
use serde_json::json;

const DIR_ENV: &str = "CAPIBARA_VECTOR_CRASH_DIR";
const COLLECTION: &str = "crash";
const DIMENSION: usize = 48;
const IDS: u64 = 400;
/// Small, so that compactions happen often and some kills land in one.
const COMPACTION_BYTES: u64 = 96 << 10;

/// The `step`-th write of the deterministic sequence.
enum Op {
    Upsert(Vec<VectorRecord>),
    Delete(Vec<String>),
}

fn record(id: u64, version: u64) -> VectorRecord {
    let vector = (0..DIMENSION as u64)
        .map(|j| ((id * 131 + version * 31 + j * 7) % 997) as f32 / 997.0 - 0.5)
        .collect();
    VectorRecord {
        id: format!("id{id}"),
        vector,
        text: format!("registro {id} versión {version} {}", "ñ".repeat((id % 50) as usize)),
        metadata: json!({ "version": version, "id": id }).as_object().cloned().unwrap(),
    }
}

fn op(step: u64) -> Op {
    if step % 4 == 3 {
        Op::Delete((0..3).map(|i| format!("id{}", (step * 13 + i * 101) % IDS)).collect())
    } else {
        // Batches of 1 to 24 records, some of them big enough to span many pages.
        let size = 1 + (step * 7) % 24;
        Op::Upsert((0..size).map(|i| record((step * 17 + i * 3) % IDS, step)).collect())
    }
}

#[test]
fn crash_writer_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else { return };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let options = ExactStoreOptions { compaction_min_wal_bytes: COMPACTION_BYTES };
        let store = ExactStore::open_with(&dir, options).unwrap();
        store.ensure_collection(COLLECTION, DIMENSION).await.unwrap();
        println!("ready");
        for step in 0.. {
            match op(step) {
                Op::Upsert(records) => store.upsert(COLLECTION, records).await.unwrap(),
                Op::Delete(ids) => drop(store.delete(COLLECTION, &ids).await.unwrap()),
            }
            println!("ack {step}");
        }
    });
}

/// The records after the first `steps` writes.
struct Model(BTreeMap<String, VectorRecord>);

impl Model {
    fn apply(&mut self, step: u64) {
        match op(step) {
            Op::Upsert(records) => records.into_iter().for_each(|r| drop(self.0.insert(r.id.clone(), r))),
            Op::Delete(ids) => ids.iter().for_each(|id| drop(self.0.remove(id))),
        }
    }
}

async fn stored(store: &ExactStore) -> BTreeMap<String, VectorRecord> {
    let ids: Vec<String> = (0..IDS).map(|id| format!("id{id}")).collect();
    store.get(COLLECTION, &ids).await.unwrap().into_iter().map(|r| (r.id.clone(), r)).collect()
}

/// Runs the writer until it has acknowledged `acks` writes, kills it, and checks what is on disk.
async fn kill_after(acks: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_writer_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acknowledged = 0;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while acknowledged < acks {
        let Some(line) = lines.next() else { panic!("the writer exited after {acknowledged} writes") };
        if line.unwrap().starts_with("ack ") {
            acknowledged += 1;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let store = ExactStore::open(dir.path()).unwrap();
    let on_disk = stored(&store).await;
    assert_eq!(store.count(COLLECTION).await.unwrap(), on_disk.len() as u64, "count matches the records");
    let mut model = Model(BTreeMap::new());
    (0..acknowledged).for_each(|step| model.apply(step));
    // The writer may have finished (or be mid-way through) writes we had not read yet.
    let mut step = acknowledged;
    while model.0 != on_disk {
        assert!(
            step < acknowledged + 100_000,
            "after {acks} acknowledged writes the store matches no prefix of them"
        );
        model.apply(step);
        step += 1;
    }
    // And the store takes writes again.
    store.upsert(COLLECTION, vec![record(IDS + 1, 0)]).await.unwrap();
    drop(store);
    assert_eq!(
        ExactStore::open(dir.path()).unwrap().count(COLLECTION).await.unwrap(),
        on_disk.len() as u64 + 1
    );
}

#[tokio::test]
async fn killed_writers_leave_whole_records() {
    for acks in [1, 37, 160, 420] {
        kill_after(acks).await;
    }
}
