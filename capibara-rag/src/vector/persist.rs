//! One collection on disk: a directory holding its `snapshot` and its write-ahead log `wal`.
//!
//! - A write is appended to the log and fsynced before it is applied in memory and before the
//!   call returns; if appending fails the log is cut back and the call fails with nothing applied.
//! - When the log outgrows the snapshot (and a floor), the collection is compacted: a new snapshot
//!   of generation g+1 replaces the old one, then an empty log of g+1 replaces the old log. A
//!   crash between the two leaves a log of g, which the next open recognises as already folded in.
//! - Opening loads the snapshot, replays the log's valid entries and cuts a torn or corrupt tail
//!   (with a warning), so a record is either whole or absent. Leftover temporary files of an
//!   interrupted replacement are removed.

use std::fs::File;
use std::path::{Path, PathBuf};

use capibara_core::vector::VectorRecord;
use capibara_core::{Error, Result};

use super::collection::Collection;
use super::snapshot;
use super::wal::{self, AppendError, Apply, Op};

const SNAPSHOT: &str = "snapshot";
const WAL: &str = "wal";
const TEMP_SUFFIX: &str = "tmp";

/// An I/O failure on `path`, as an internal error naming the operation.
pub(crate) fn io_error(doing: &str, path: &Path, error: &std::io::Error) -> Error {
    Error::internal(format!("vector store: {doing} {}: {error}", path.display()))
}

/// Fsyncs a directory, so that entries created or renamed in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error("syncing", dir, &e))?;
    // Elsewhere directories cannot be opened as files; renames are as durable as the platform makes them.
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Replaces `path` with what `write` writes: into `path.tmp`, fsynced, renamed over `path`, the
/// directory fsynced. Returns the new file's size.
pub(crate) fn replace_file(path: &Path, write: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<u64> {
    let temp = path.with_extension(TEMP_SUFFIX);
    let mut file = File::create(&temp).map_err(|e| io_error("creating", &temp, &e))?;
    write(&mut file).and_then(|()| file.sync_all()).map_err(|e| io_error("writing", &temp, &e))?;
    let len = file.metadata().map_err(|e| io_error("reading", &temp, &e))?.len();
    drop(file);
    std::fs::rename(&temp, path).map_err(|e| io_error("renaming", &temp, &e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(len)
}

/// The files of one persisted collection, open for appending.
#[derive(Debug)]
pub(crate) struct Durable {
    dir: PathBuf,
    wal: File,
    wal_len: u64,
    generation: u64,
    snapshot_len: u64,
    /// Set when the log's end is unknown (a failed append could not be rolled back, or a
    /// compaction replaced the snapshot but not the log): writes are refused until reopening.
    broken: Option<String>,
}

impl Durable {
    /// Creates the directory of a new, empty collection of `dimension`.
    pub(crate) fn create(dir: &Path, dimension: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("creating", dir, &e))?;
        let snapshot_len = snapshot::write(&dir.join(SNAPSHOT), &Collection::new(dimension), 0)?;
        let wal = wal::create(&dir.join(WAL), 0)?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        Ok(Self {
            dir: dir.to_owned(),
            wal,
            wal_len: wal::HEADER_LEN,
            generation: 0,
            snapshot_len,
            broken: None,
        })
    }

    /// Opens the collection in `dir`; `None` when it has no snapshot (its creation never finished).
    #[cfg(test)]
    pub(crate) fn open(dir: &Path) -> Result<Option<(Collection, Self)>> {
        Self::open_into(dir, |collection, _| Ok(collection))
    }

    /// Opens the collection in `dir` as [`Durable::open`] does, turning the snapshot's records into
    /// a `T` with `load(records, generation)` before the log is replayed into it (so an index over
    /// the records follows the replayed writes too).
    pub(crate) fn open_into<T: Apply>(
        dir: &Path,
        load: impl FnOnce(Collection, u64) -> Result<T>,
    ) -> Result<Option<(T, Self)>> {
        for leftover in [SNAPSHOT, WAL].map(|name| dir.join(name).with_extension(TEMP_SUFFIX)) {
            if leftover.exists() {
                tracing::info!(path = %leftover.display(), "vector store: removing an interrupted file replacement");
                std::fs::remove_file(&leftover).map_err(|e| io_error("removing", &leftover, &e))?;
            }
        }
        let snapshot_path = dir.join(SNAPSHOT);
        if !snapshot_path.exists() {
            return Ok(None);
        }
        let snapshot::Snapshot { collection, generation, len: snapshot_len } =
            snapshot::read(&snapshot_path)?;
        let mut collection = load(collection, generation)?;
        let wal_path = dir.join(WAL);
        let replay =
            if wal_path.exists() { Some(wal::replay(&wal_path, generation, &mut collection)?) } else { None };
        let wal_len = match replay {
            Some(wal::Replay::Applied { valid_len, file_len, entries }) => {
                if valid_len < file_len {
                    tracing::warn!(
                        path = %wal_path.display(),
                        kept_entries = entries,
                        dropped_bytes = file_len - valid_len,
                        "vector store: the write-ahead log ends in a torn or corrupt entry; cutting it there"
                    );
                    wal::truncate(&wal_path, valid_len)?;
                }
                valid_len
            }
            Some(wal::Replay::Stale) | None => {
                // The snapshot already holds this log's writes (or there is no log): start a new one.
                wal::create(&wal_path, generation)?;
                wal::HEADER_LEN
            }
        };
        let wal = File::options()
            .read(true)
            .write(true)
            .open(&wal_path)
            .map_err(|e| io_error("opening", &wal_path, &e))?;
        Ok(Some((
            collection,
            Self { dir: dir.to_owned(), wal, wal_len, generation, snapshot_len, broken: None },
        )))
    }

    /// The collection's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The generation of the current snapshot.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Logs an upsert of (validated, deduplicated) `records`, durably.
    pub(crate) fn log_upsert(&mut self, records: Vec<VectorRecord>) -> Result<Op> {
        let op = Op::Upsert(records);
        self.log(&op)?;
        Ok(op)
    }

    /// Logs a delete of `ids`, durably.
    pub(crate) fn log_delete(&mut self, ids: Vec<String>) -> Result<Op> {
        let op = Op::Delete(ids);
        self.log(&op)?;
        Ok(op)
    }

    fn log(&mut self, op: &Op) -> Result<()> {
        if let Some(reason) = &self.broken {
            return Err(Error::internal(format!(
                "vector store: writes to {} are refused until the store is reopened: {reason}",
                self.dir.display()
            )));
        }
        let path = self.dir.join(WAL);
        match wal::append(&mut self.wal, self.wal_len, &wal::encode(op)) {
            Ok(end) => {
                self.wal_len = end;
                Ok(())
            }
            Err(AppendError::RolledBack(error)) => Err(io_error("appending to", &path, &error)),
            Err(AppendError::Unrecoverable(error)) => {
                self.broken = Some(format!("appending failed ({error}) and the log could not be cut back"));
                Err(io_error("appending to", &path, &error))
            }
        }
    }

    /// Whether the log has outgrown the snapshot and `min_bytes`.
    pub(crate) fn should_compact(&self, min_bytes: u64) -> bool {
        self.broken.is_none()
            && self.wal_len > wal::HEADER_LEN
            && self.wal_len > self.snapshot_len.max(min_bytes)
    }

    /// Writes `collection` (which holds every logged write) as the new snapshot and starts an
    /// empty log.
    pub(crate) fn compact(&mut self, collection: &Collection) -> Result<()> {
        let generation = self.generation + 1;
        self.snapshot_len = snapshot::write(&self.dir.join(SNAPSHOT), collection, generation)?;
        // From here the old log is stale: until a log of the new generation exists, appending
        // to the old one would write entries the next open ignores.
        self.generation = generation;
        match wal::create(&self.dir.join(WAL), generation) {
            Ok(file) => {
                self.wal = file;
                self.wal_len = wal::HEADER_LEN;
                Ok(())
            }
            Err(error) => {
                self.broken = Some(format!("a new write-ahead log could not be started: {error}"));
                Err(error)
            }
        }
    }
}

#[cfg(test)]
#[path = "persist_tests.rs"]
mod tests;
