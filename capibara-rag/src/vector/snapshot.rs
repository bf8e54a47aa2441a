//! The snapshot of one collection: every record at the time of the last compaction.
//!
//! ```text
//! header   "CAPIVSNP" · version u32 · dimension u32 · count u64 · next_seq u64 · generation u64
//! vectors  count × dimension × f32, row by slot (the in-memory matrix as is)
//! seqs     count × u64
//! records  count × (id · text · metadata JSON), each length-prefixed (u32)
//! trailer  crc32 of everything before it
//! ```
//!
//! All little-endian. A snapshot is written to a temporary file, fsynced and renamed over the old
//! one, so a reader sees the old snapshot or the new one, never a part; the checksum catches
//! damage at rest, which refuses the store rather than serving wrong vectors.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use capibara_core::vector::MAX_ID_BYTES;
use capibara_core::{Error, Result};

use super::codec::{self, Cursor};
use super::collection::{Collection, Parts};
use super::persist::{io_error, replace_file};
use super::{MAX_DIMENSION, MAX_METADATA_BYTES, MAX_TEXT_BYTES};

const MAGIC: &[u8; 8] = b"CAPIVSNP";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 40;
/// Floats converted per write or read of the vector section.
const CHUNK_FLOATS: usize = 1 << 16;

/// A snapshot read back.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// The records.
    pub(crate) collection: Collection,
    /// The generation of the log that continues it.
    pub(crate) generation: u64,
    /// The file's size.
    pub(crate) len: u64,
}

/// A writer that checksums what goes through it.
struct Checksummed<W> {
    inner: W,
    hasher: crc32fast::Hasher,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that checksums what comes through it.
struct Verified<R> {
    inner: R,
    hasher: crc32fast::Hasher,
}

impl<R: Read> Read for Verified<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        Ok(read)
    }
}

/// Writes `collection` as the snapshot at `path` (crash-safely, see the module docs); its size.
pub(crate) fn write(path: &Path, collection: &Collection, generation: u64) -> Result<u64> {
    replace_file(path, |file| {
        let mut out =
            Checksummed { inner: BufWriter::with_capacity(1 << 20, file), hasher: crc32fast::Hasher::new() };
        let mut buf = Vec::with_capacity(CHUNK_FLOATS * 4);
        buf.extend_from_slice(MAGIC);
        codec::put_u32(&mut buf, VERSION);
        codec::put_u32(&mut buf, collection.dimension() as u32);
        codec::put_u64(&mut buf, collection.len() as u64);
        codec::put_u64(&mut buf, collection.next_seq());
        codec::put_u64(&mut buf, generation);
        out.write_all(&buf)?;
        for chunk in collection.matrix().chunks(CHUNK_FLOATS) {
            buf.clear();
            codec::put_f32s(&mut buf, chunk);
            out.write_all(&buf)?;
        }
        buf.clear();
        collection.seqs().iter().for_each(|seq| codec::put_u64(&mut buf, *seq));
        out.write_all(&buf)?;
        for ((id, text), metadata) in
            collection.ids().iter().zip(collection.texts()).zip(collection.metadata())
        {
            buf.clear();
            codec::put_record_fields(&mut buf, id, text, metadata);
            out.write_all(&buf)?;
        }
        let crc = out.hasher.finalize();
        out.inner.write_all(&crc.to_le_bytes())?;
        out.inner.flush()
    })
}

/// Reads the snapshot at `path`.
pub(crate) fn read(path: &Path) -> Result<Snapshot> {
    let file = File::open(path).map_err(|e| io_error("opening", path, &e))?;
    let len = file.metadata().map_err(|e| io_error("reading", path, &e))?.len();
    let corrupt = |what: &str| Error::internal(format!("the snapshot {} is corrupt: {what}", path.display()));
    let mut input =
        Verified { inner: BufReader::with_capacity(1 << 20, file), hasher: crc32fast::Hasher::new() };
    let mut fill = |buf: &mut Vec<u8>, n: usize, what: &str| {
        buf.resize(n, 0);
        input.read_exact(buf).map_err(|_| corrupt(what))
    };

    let mut buf = Vec::new();
    fill(&mut buf, HEADER_LEN, "the header is cut short")?;
    let mut header = Cursor::new(&buf);
    if header.take(8) != Some(MAGIC.as_slice()) {
        return Err(corrupt("it does not start with the snapshot magic"));
    }
    let version = header.u32().unwrap_or_default();
    if version != VERSION {
        return Err(Error::internal(format!(
            "the snapshot {} has format version {version}; this Capibara reads version {VERSION}",
            path.display()
        )));
    }
    let (dimension, count, next_seq, generation) = (
        header.u32().unwrap_or_default() as usize,
        header.u64().unwrap_or_default(),
        header.u64().unwrap_or_default(),
        header.u64().unwrap_or_default(),
    );
    // Refuse sizes the file cannot hold before allocating for them.
    let least = (dimension as u64 * 4 + 8 + 12).checked_mul(count).and_then(|body| body.checked_add(44));
    if !(1..=MAX_DIMENSION).contains(&dimension) || least.is_none_or(|least| least > len) {
        return Err(corrupt("its header does not fit its size"));
    }
    let count = count as usize;

    let mut parts = Parts { dimension, next_seq, ..Parts::default() };
    super::memory::reserve(&mut parts.vectors, count * dimension);
    let mut remaining = count * dimension;
    while remaining > 0 {
        let floats = remaining.min(CHUNK_FLOATS);
        fill(&mut buf, floats * 4, "the vectors are cut short")?;
        Cursor::new(&buf).f32s(floats, &mut parts.vectors).ok_or_else(|| corrupt("vectors"))?;
        remaining -= floats;
    }
    fill(&mut buf, count * 8, "the sequence numbers are cut short")?;
    let mut seqs = Cursor::new(&buf);
    parts.seqs = (0..count).map(|_| seqs.u64()).collect::<Option<_>>().ok_or_else(|| corrupt("seqs"))?;
    parts.ids.reserve_exact(count);
    parts.texts.reserve_exact(count);
    parts.metadata.reserve_exact(count);
    let mut length = [0u8; 4];
    for _ in 0..count {
        buf.clear();
        for max in [MAX_ID_BYTES, MAX_TEXT_BYTES, MAX_METADATA_BYTES] {
            input.read_exact(&mut length).map_err(|_| corrupt("the records are cut short"))?;
            let n = u32::from_le_bytes(length) as usize;
            if n > max {
                return Err(corrupt("a record field is longer than its limit"));
            }
            buf.extend_from_slice(&length);
            let start = buf.len();
            buf.resize(start + n, 0);
            input.read_exact(&mut buf[start..]).map_err(|_| corrupt("the records are cut short"))?;
        }
        let (id, text, metadata) =
            Cursor::new(&buf).record_fields().ok_or_else(|| corrupt("a record is malformed"))?;
        parts.ids.push(id);
        parts.texts.push(text);
        parts.metadata.push(metadata);
    }
    let computed = input.hasher.clone().finalize();
    let mut trailer = [0u8; 4];
    input.inner.read_exact(&mut trailer).map_err(|_| corrupt("the checksum is missing"))?;
    if u32::from_le_bytes(trailer) != computed {
        return Err(corrupt("the checksum does not match"));
    }
    if input.inner.read(&mut trailer).map_err(|e| io_error("reading", path, &e))? != 0 {
        return Err(corrupt("bytes follow the checksum"));
    }
    let collection = Collection::from_parts(parts).ok_or_else(|| corrupt("ids repeat or parts disagree"))?;
    Ok(Snapshot { collection, generation, len })
}
