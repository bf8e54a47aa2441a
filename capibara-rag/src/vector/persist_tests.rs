//! A persisted collection across reopenings: writes survive, torn and corrupt log tails are cut,
//! interrupted replacements and compactions leave a consistent state, damaged snapshots refuse.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;

use super::*;

fn record(id: &str, x: f32) -> VectorRecord {
    let metadata = json!({ "x": x }).as_object().cloned().unwrap();
    VectorRecord { id: id.into(), vector: vec![x, 1.0, -x], text: format!("text {id}"), metadata }
}

/// Logs and applies `op` as the store does.
fn write(durable: &mut Durable, collection: &mut Collection, op: Op) {
    let op = match op {
        Op::Upsert(records) => durable.log_upsert(records).unwrap(),
        Op::Delete(ids) => durable.log_delete(ids).unwrap(),
    };
    op.apply(collection);
}

fn reopen(dir: &Path) -> (Collection, Durable) {
    Durable::open(dir).unwrap().expect("the collection exists")
}

/// A collection in `dir` with records a, b, c and b deleted (three log entries).
fn populated(dir: &Path) -> Collection {
    let mut durable = Durable::create(dir, 3).unwrap();
    let mut collection = Collection::new(3);
    write(&mut durable, &mut collection, Op::Upsert(vec![record("a", 1.0), record("b", 2.0)]));
    write(&mut durable, &mut collection, Op::Delete(vec!["b".into()]));
    write(&mut durable, &mut collection, Op::Upsert(vec![record("c", 3.0)]));
    collection
}

#[test]
fn writes_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docs");
    let expected = populated(&path);
    let (collection, mut durable) = reopen(&path);
    assert_eq!(collection, expected);
    let mut collection = collection;
    write(&mut durable, &mut collection, Op::Upsert(vec![record("d", 4.0)]));
    drop(durable);
    assert_eq!(reopen(&path).0, collection);
    assert!(Durable::open(&dir.path().join("nothing")).unwrap().is_none());
}

#[test]
fn a_truncated_last_entry_is_cut_and_writing_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docs");
    populated(&path);
    let wal_path = path.join(WAL);
    let len = std::fs::metadata(&wal_path).unwrap().len();
    // Cut the last entry (the upsert of c) in its middle.
    let file = File::options().write(true).open(&wal_path).unwrap();
    file.set_len(len - 20).unwrap();
    drop(file);
    let (mut collection, mut durable) = reopen(&path);
    assert_eq!(collection.ids(), &["a"]);
    assert!(std::fs::metadata(&wal_path).unwrap().len() < len - 20, "the torn tail was cut off");
    write(&mut durable, &mut collection, Op::Upsert(vec![record("e", 5.0)]));
    drop(durable);
    let (reopened, _) = reopen(&path);
    assert_eq!(reopened.ids(), &["a", "e"], "entries appended after the cut replay");
    assert_eq!(reopened.get("e").unwrap(), record("e", 5.0));
}

#[test]
fn a_corrupt_byte_mid_entry_drops_that_entry_and_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docs");
    populated(&path);
    let wal_path = path.join(WAL);
    let mut bytes = std::fs::read(&wal_path).unwrap();
    // The first entry (a and b) starts after the header; damage a byte of b's vector inside it.
    let first_entry_end =
        wal::HEADER_LEN as usize + 8 + u32::from_le_bytes(bytes[24..28].try_into().unwrap()) as usize;
    bytes[first_entry_end - 30] ^= 0xff;
    std::fs::write(&wal_path, &bytes).unwrap();
    let (collection, _) = reopen(&path);
    assert_eq!(collection.len(), 0, "nothing after the damaged entry is trusted");
    assert_eq!(std::fs::metadata(&wal_path).unwrap().len(), wal::HEADER_LEN);
}

#[test]
fn leftover_temporary_files_are_ignored_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docs");
    let expected = populated(&path);
    std::fs::write(path.join("snapshot.tmp"), b"CAPIVSNP half a snapshot").unwrap();
    std::fs::write(path.join("wal.tmp"), b"junk").unwrap();
    assert_eq!(reopen(&path).0, expected);
    assert!(!path.join("snapshot.tmp").exists() && !path.join("wal.tmp").exists());
}

#[test]
fn compaction_folds_the_log_into_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docs");
    let expected = populated(&path);
    let (collection, mut durable) = reopen(&path);
    assert!(durable.should_compact(0));
    assert!(!durable.should_compact(1 << 30));
    durable.compact(&collection).unwrap();
    assert!(!durable.should_compact(0), "an empty log needs no compaction");
    assert_eq!(std::fs::metadata(path.join(WAL)).unwrap().len(), wal::HEADER_LEN);
    drop(durable);
    let (reopened, _) = reopen(&path);
    assert_eq!(reopened, expected);
}

#[test]
fn a_compaction_stopped_before_the_new_log_does_not_replay_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docs");
    let expected = populated(&path);
    // The new snapshot (generation 1) is in place; the old log (generation 0) is still there.
    snapshot::write(&path.join(SNAPSHOT), &expected, 1).unwrap();
    let (collection, mut durable) = reopen(&path);
    assert_eq!(collection, expected, "the old log's writes are not applied twice");
    assert_eq!(std::fs::metadata(path.join(WAL)).unwrap().len(), wal::HEADER_LEN, "a fresh log was started");
    let mut collection = collection;
    write(&mut durable, &mut collection, Op::Delete(vec!["a".into()]));
    drop(durable);
    assert_eq!(reopen(&path).0, collection);
}

#[test]
fn a_damaged_snapshot_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docs");
    let mut collection = Collection::new(3);
    (0..50).for_each(|i| collection.upsert(record(&format!("r{i}"), i as f32)));
    std::fs::create_dir_all(&path).unwrap();
    snapshot::write(&path.join(SNAPSHOT), &collection, 0).unwrap();
    let good = std::fs::read(path.join(SNAPSHOT)).unwrap();
    assert_eq!(snapshot::read(&path.join(SNAPSHOT)).unwrap().collection, collection);
    for at in [0, 13, 50, good.len() / 2, good.len() - 10, good.len() - 1] {
        let mut bytes = good.clone();
        bytes[at] ^= 0x01;
        std::fs::write(path.join(SNAPSHOT), &bytes).unwrap();
        let error = Durable::open(&path).unwrap_err();
        assert_eq!(error.code(), "internal", "byte {at}: {error}");
    }
    std::fs::write(path.join(SNAPSHOT), &good[..good.len() - 3]).unwrap();
    assert!(Durable::open(&path).is_err(), "a cut snapshot refuses too");
}
