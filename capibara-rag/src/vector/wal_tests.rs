//! The log's framing: round trips, big upserts cut into entries, torn and corrupt tails,
//! generations, and malformed payloads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use capibara_core::vector::Metadata;

use super::*;

fn record(id: &str, x: f32, text_len: usize) -> VectorRecord {
    VectorRecord { id: id.into(), vector: vec![x, -x], text: "t".repeat(text_len), metadata: Metadata::new() }
}

/// A log at `dir/wal` holding `ops`; the offsets where each entry ends.
fn write_log(dir: &Path, ops: &[Op]) -> (std::path::PathBuf, Vec<u64>) {
    let path = dir.join("wal");
    let mut file = create(&path, 3).unwrap();
    let mut ends = Vec::new();
    let mut end = HEADER_LEN;
    for op in ops {
        for entry in encode(op) {
            end = append(&mut file, end, &[entry]).unwrap();
            ends.push(end);
        }
    }
    (path, ends)
}

fn ops() -> Vec<Op> {
    vec![
        Op::Upsert(vec![record("a", 1.0, 3), record("b", 2.0, 0)]),
        Op::Delete(vec!["a".into(), "zzz".into()]),
        Op::Upsert(vec![record("c", 3.0, 1)]),
    ]
}

fn replayed(path: &Path) -> (Collection, Replay) {
    let mut collection = Collection::new(2);
    let replay = replay(path, 3, &mut collection).unwrap();
    (collection, replay)
}

#[test]
fn entries_replay_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ends) = write_log(dir.path(), &ops());
    let (collection, replay) = replayed(&path);
    assert_eq!(collection.ids(), &["b", "c"]);
    assert_eq!(collection.get("b").unwrap(), record("b", 2.0, 0));
    let Replay::Applied { valid_len, file_len, entries } = replay else { panic!("stale") };
    assert_eq!((valid_len, file_len, entries), (ends[2], ends[2], 3));
}

#[test]
fn big_upserts_are_cut_into_whole_records() {
    let records: Vec<VectorRecord> = (0..40).map(|i| record(&format!("r{i}"), i as f32, 1 << 20)).collect();
    let entries = encode(&Op::Upsert(records.clone()));
    assert!(entries.len() >= 2, "{} entries", entries.len());
    assert!(entries.iter().all(|entry| entry.len() < TARGET_ENTRY_BYTES + (2 << 20)));
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_log(dir.path(), &[Op::Upsert(records.clone())]);
    let (collection, _) = replayed(&path);
    assert_eq!(collection.len(), 40);
    assert_eq!(collection.get("r39").unwrap(), records[39]);
}

#[test]
fn a_torn_last_entry_is_dropped_wherever_it_was_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ends) = write_log(dir.path(), &ops());
    let full = std::fs::read(&path).unwrap();
    for cut in ends[1] + 1..ends[2] {
        std::fs::write(&path, &full[..cut as usize]).unwrap();
        let (collection, replay) = replayed(&path);
        assert_eq!(collection.ids(), &["b"], "cut at {cut}");
        let Replay::Applied { valid_len, file_len, entries } = replay else { panic!("stale") };
        assert_eq!((valid_len, file_len, entries), (ends[1], cut, 2));
    }
}

#[test]
fn a_corrupt_byte_stops_replay_at_its_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ends) = write_log(dir.path(), &ops());
    let full = std::fs::read(&path).unwrap();
    // Every byte of the second entry, its length and checksum included.
    for at in ends[0]..ends[1] {
        let mut bytes = full.clone();
        bytes[at as usize] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let (collection, replay) = replayed(&path);
        assert_eq!(collection.ids(), &["a", "b"], "byte {at}: only the first entry is applied");
        let Replay::Applied { valid_len, entries, .. } = replay else { panic!("stale") };
        assert_eq!((valid_len, entries), (ends[0], 1));
    }
}

#[test]
fn generations_and_headers_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_log(dir.path(), &ops());
    let mut collection = Collection::new(2);
    assert!(matches!(replay(&path, 4, &mut collection).unwrap(), Replay::Stale));
    assert_eq!(collection.len(), 0, "a stale log is not applied");
    let newer = replay(&path, 2, &mut collection).unwrap_err();
    assert!(newer.to_string().contains("newer"), "{newer}");

    let mut bytes = std::fs::read(&path).unwrap();
    bytes[13] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let corrupt = replay(&path, 3, &mut collection).unwrap_err();
    assert!(corrupt.to_string().contains("corrupt header"), "{corrupt}");
    std::fs::write(&path, &bytes[..10]).unwrap();
    assert!(replay(&path, 3, &mut collection).is_err());
}

#[test]
fn malformed_payloads_are_refused() {
    let good = encode(&Op::Delete(vec!["a".into()])).remove(0);
    let payload = &good[FRAME_LEN..];
    assert_eq!(decode(payload, 2), Some(Op::Delete(vec!["a".into()])));
    let mut unknown = payload.to_vec();
    unknown[0] = 9;
    assert_eq!(decode(&unknown, 2), None);
    let mut trailing = payload.to_vec();
    trailing.push(0);
    assert_eq!(decode(&trailing, 2), None);
    let mut huge_count = payload.to_vec();
    huge_count[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(decode(&huge_count, 2), None);
    let upsert = encode(&Op::Upsert(vec![record("a", 1.0, 0)])).remove(0);
    assert!(decode(&upsert[FRAME_LEN..], 2).is_some());
    assert_eq!(decode(&upsert[FRAME_LEN..], 3), None, "a vector of another dimension does not fit");
}
