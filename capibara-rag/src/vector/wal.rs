//! The write-ahead log of one collection: the upserts and deletes since its snapshot.
//!
//! ```text
//! header  "CAPIVWAL" · version u32 · generation u64 · crc32 of the previous 20 bytes
//! entry   length u32 · crc32 of (length bytes ‖ payload) · payload
//! payload 1 · count u32 · count × (id · vector (dimension × f32) · text · metadata JSON)   upsert
//!         2 · count u32 · count × id                                                      delete
//! ```
//!
//! All integers little-endian, strings length-prefixed (u32). An entry is applied whole or not at
//! all. The generation ties the log to one snapshot: a log whose generation is older than the
//! snapshot's was already folded into it (compaction stopped before replacing the log) and is
//! dropped. Replay stops at the first torn or corrupt entry and cuts the file there.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use capibara_core::vector::{MAX_ID_BYTES, VectorRecord};
use capibara_core::{Error, Result};

use super::codec::{self, Cursor};
use super::collection::Collection;
use super::persist::{io_error, replace_file};

const MAGIC: &[u8; 8] = b"CAPIVWAL";
const VERSION: u32 = 1;
/// Bytes of the header.
pub(crate) const HEADER_LEN: u64 = 24;
/// Bytes before each entry's payload.
const FRAME_LEN: usize = 8;
/// The payload size an upsert is cut into several entries at (each record stays whole).
const TARGET_ENTRY_BYTES: usize = 16 << 20;
/// No valid entry is larger: one record is at most a few MiB, entries are cut at 16 MiB.
const MAX_ENTRY_BYTES: usize = 256 << 20;

const UPSERT: u8 = 1;
const DELETE: u8 = 2;

/// One logged operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// Insert or replace these records.
    Upsert(Vec<VectorRecord>),
    /// Delete these ids.
    Delete(Vec<String>),
}

impl Op {
    /// Applies the operation; how many deleted ids existed.
    pub(crate) fn apply(self, target: &mut impl Apply) -> u64 {
        match self {
            Self::Upsert(records) => {
                target.upsert(records);
                0
            }
            Self::Delete(ids) => target.delete(&ids),
        }
    }
}

/// What logged writes apply to: a bare [`Collection`], or a collection with an index over it
/// (which must follow every write, replayed ones included).
pub(crate) trait Apply {
    /// The vector length of every record.
    fn dimension(&self) -> usize;
    /// Inserts or replaces (validated, deduplicated) records.
    fn upsert(&mut self, records: Vec<VectorRecord>);
    /// Deletes records by id; how many existed.
    fn delete(&mut self, ids: &[String]) -> u64;
}

impl Apply for Collection {
    fn dimension(&self) -> usize {
        Collection::dimension(self)
    }

    fn upsert(&mut self, records: Vec<VectorRecord>) {
        records.into_iter().for_each(|record| Collection::upsert(self, record));
    }

    fn delete(&mut self, ids: &[String]) -> u64 {
        ids.iter().filter(|id| Collection::delete(self, id)).count() as u64
    }
}

/// The header of a log of `generation`.
fn header(generation: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_LEN as usize);
    bytes.extend_from_slice(MAGIC);
    codec::put_u32(&mut bytes, VERSION);
    codec::put_u64(&mut bytes, generation);
    let crc = crc32fast::hash(&bytes);
    codec::put_u32(&mut bytes, crc);
    bytes
}

/// Writes an empty log of `generation` at `path` (through a fsynced temporary file renamed over
/// it) and opens it for appending.
pub(crate) fn create(path: &Path, generation: u64) -> Result<File> {
    replace_file(path, |file| file.write_all(&header(generation)))?;
    File::options().read(true).write(true).open(path).map_err(|e| io_error("opening", path, &e))
}

/// The framed entries of `op`: one for a delete, as many as needed for an upsert so that none
/// grows far past 16 MiB.
pub(crate) fn encode(op: &Op) -> Vec<Vec<u8>> {
    let mut entries = Vec::new();
    match op {
        Op::Upsert(records) => {
            let mut start = 0;
            while start < records.len() {
                let mut body = Vec::new();
                let mut end = start;
                while end < records.len() && (end == start || body.len() < TARGET_ENTRY_BYTES) {
                    codec::put_record(&mut body, &records[end]);
                    end += 1;
                }
                entries.push(frame(UPSERT, (end - start) as u32, &body));
                start = end;
            }
        }
        Op::Delete(ids) => {
            let mut body = Vec::new();
            ids.iter().for_each(|id| codec::put_bytes(&mut body, id.as_bytes()));
            entries.push(frame(DELETE, ids.len() as u32, &body));
        }
    }
    entries
}

fn frame(kind: u8, count: u32, body: &[u8]) -> Vec<u8> {
    let payload_len = 1 + 4 + body.len();
    let mut entry = Vec::with_capacity(FRAME_LEN + payload_len);
    codec::put_u32(&mut entry, payload_len as u32);
    codec::put_u32(&mut entry, 0);
    entry.push(kind);
    codec::put_u32(&mut entry, count);
    entry.extend_from_slice(body);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&entry[..4]);
    hasher.update(&entry[FRAME_LEN..]);
    entry[4..8].copy_from_slice(&hasher.finalize().to_le_bytes());
    entry
}

fn decode(payload: &[u8], dimension: usize) -> Option<Op> {
    let mut cursor = Cursor::new(payload);
    let kind = cursor.u8()?;
    let count = cursor.u32()? as usize;
    // Each item takes at least 4 bytes: a count larger than the payload is corrupt.
    if count > payload.len() / 4 {
        return None;
    }
    let op = match kind {
        UPSERT => Op::Upsert((0..count).map(|_| cursor.record(dimension)).collect::<Option<_>>()?),
        DELETE => Op::Delete((0..count).map(|_| cursor.string(MAX_ID_BYTES)).collect::<Option<_>>()?),
        _ => return None,
    };
    cursor.is_empty().then_some(op)
}

/// What [`replay`] found.
#[derive(Debug)]
pub(crate) enum Replay {
    /// The log belongs to the snapshot; its valid entries were applied. `valid_len` is where the
    /// last valid entry ends (the file may go on with a torn or corrupt tail).
    Applied {
        /// End of the last valid entry.
        valid_len: u64,
        /// The file's length.
        file_len: u64,
        /// Entries applied.
        entries: usize,
    },
    /// The log is older than the snapshot (already folded into it).
    Stale,
}

/// Applies the entries of the log at `path` to `collection`, whose snapshot is of `generation`.
pub(crate) fn replay(path: &Path, generation: u64, collection: &mut impl Apply) -> Result<Replay> {
    let file = File::open(path).map_err(|e| io_error("opening", path, &e))?;
    let file_len = file.metadata().map_err(|e| io_error("reading", path, &e))?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let corrupt_header = || {
        Error::internal(format!(
            "the write-ahead log {} has a corrupt header; move it away to open the store without the \
             writes made since the last snapshot",
            path.display()
        ))
    };
    let mut head = [0u8; HEADER_LEN as usize];
    reader.read_exact(&mut head).map_err(|_| corrupt_header())?;
    let mut cursor = Cursor::new(&head);
    let valid = cursor.take(8) == Some(MAGIC.as_slice())
        && cursor.u32() == Some(VERSION)
        && crc32fast::hash(&head[..20]).to_le_bytes() == head[20..];
    let log_generation = cursor.u64().filter(|_| valid).ok_or_else(corrupt_header)?;
    if log_generation < generation {
        return Ok(Replay::Stale);
    }
    if log_generation > generation {
        return Err(Error::internal(format!(
            "the write-ahead log {} is of generation {log_generation}, newer than its snapshot's {generation}",
            path.display()
        )));
    }

    let mut valid_len = HEADER_LEN;
    let mut entries = 0;
    let mut payload = Vec::new();
    loop {
        let mut frame = [0u8; FRAME_LEN];
        if reader.read_exact(&mut frame).is_err() {
            break;
        }
        let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        if len > MAX_ENTRY_BYTES || valid_len + (FRAME_LEN + len) as u64 > file_len {
            break;
        }
        payload.resize(len, 0);
        if reader.read_exact(&mut payload).is_err() {
            break;
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&frame[..4]);
        hasher.update(&payload);
        if hasher.finalize() != crc {
            break;
        }
        let Some(op) = decode(&payload, collection.dimension()) else {
            break;
        };
        op.apply(collection);
        entries += 1;
        valid_len += (FRAME_LEN + len) as u64;
    }
    Ok(Replay::Applied { valid_len, file_len, entries })
}

/// Cuts the log at `path` to `len` bytes and makes that durable.
pub(crate) fn truncate(path: &Path, len: u64) -> Result<()> {
    let file = File::options().write(true).open(path).map_err(|e| io_error("opening", path, &e))?;
    file.set_len(len).and_then(|()| file.sync_all()).map_err(|e| io_error("truncating", path, &e))
}

/// Why [`append`] failed.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// Writing failed; the file was cut back to where it was, so the log is as before.
    RolledBack(std::io::Error),
    /// Writing failed and so did cutting the file back: the log may end in a partial entry.
    Unrecoverable(std::io::Error),
}

/// Appends framed `entries` at `offset` and fsyncs; returns the new length.
pub(crate) fn append(file: &mut File, offset: u64, entries: &[Vec<u8>]) -> Result<u64, AppendError> {
    let mut write = || {
        file.seek(SeekFrom::Start(offset))?;
        let mut end = offset;
        for entry in entries {
            file.write_all(entry)?;
            end += entry.len() as u64;
        }
        file.sync_data()?;
        Ok(end)
    };
    write().map_err(|error| match file.set_len(offset).and_then(|()| file.sync_data()) {
        Ok(()) => AppendError::RolledBack(error),
        Err(_) => AppendError::Unrecoverable(error),
    })
}

#[cfg(test)]
#[path = "wal_tests.rs"]
mod tests;
