//! The little-endian binary encoding shared by the snapshot and the WAL: fixed-width integers,
//! `f32` runs, and length-prefixed byte strings (u32 length, then the bytes).

use capibara_core::vector::{Metadata, VectorRecord};

use super::{MAX_METADATA_BYTES, MAX_TEXT_BYTES};
use capibara_core::vector::MAX_ID_BYTES;

/// Appends `value`.
pub(crate) fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// Appends `value`.
pub(crate) fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// Appends every value of `values`.
pub(crate) fn put_f32s(out: &mut Vec<u8>, values: &[f32]) {
    out.reserve(values.len() * 4);
    for value in values {
        out.extend_from_slice(&value.to_le_bytes());
    }
}

/// Appends `bytes` with its length (callers keep it under 4 GiB: the record limits do).
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len() as u32);
    out.extend_from_slice(bytes);
}

/// Appends a record's id, text and metadata (as JSON), without its vector.
pub(crate) fn put_record_fields(out: &mut Vec<u8>, id: &str, text: &str, metadata: &Metadata) {
    put_bytes(out, id.as_bytes());
    put_bytes(out, text.as_bytes());
    // A JSON map of JSON values always serialises.
    let json = serde_json::to_vec(metadata).unwrap_or_default();
    put_bytes(out, &json);
}

/// Appends a whole record: id, vector, text, metadata.
pub(crate) fn put_record(out: &mut Vec<u8>, record: &VectorRecord) {
    put_bytes(out, record.id.as_bytes());
    put_f32s(out, &record.vector);
    put_bytes(out, record.text.as_bytes());
    let json = serde_json::to_vec(&record.metadata).unwrap_or_default();
    put_bytes(out, &json);
}

/// Reads values back from a byte slice; every read is `None` past the end or on malformed data.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Whether every byte was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.bytes.split_at_checked(n)?;
        self.bytes = rest;
        Some(head)
    }

    /// The next byte.
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// The next u32.
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }

    /// The next u64.
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_le_bytes)
    }

    /// The next `n` f32 values, appended to `out`.
    pub(crate) fn f32s(&mut self, n: usize, out: &mut Vec<f32>) -> Option<()> {
        let bytes = self.take(n.checked_mul(4)?)?;
        out.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
        Some(())
    }

    /// The next length-prefixed byte string, refused if longer than `max`.
    pub(crate) fn bytes(&mut self, max: usize) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        if len > max {
            return None;
        }
        self.take(len)
    }

    /// The next length-prefixed UTF-8 string, refused if longer than `max` bytes.
    pub(crate) fn string(&mut self, max: usize) -> Option<String> {
        std::str::from_utf8(self.bytes(max)?).ok().map(str::to_owned)
    }

    /// The id, text and metadata [`put_record_fields`] wrote.
    pub(crate) fn record_fields(&mut self) -> Option<(String, String, Metadata)> {
        let id = self.string(MAX_ID_BYTES)?;
        let text = self.string(MAX_TEXT_BYTES)?;
        let metadata = serde_json::from_slice(self.bytes(MAX_METADATA_BYTES)?).ok()?;
        Some((id, text, metadata))
    }

    /// A record [`put_record`] wrote, with a `dimension`-long vector.
    pub(crate) fn record(&mut self, dimension: usize) -> Option<VectorRecord> {
        let id = self.string(MAX_ID_BYTES)?;
        let mut vector = Vec::with_capacity(dimension);
        self.f32s(dimension, &mut vector)?;
        let text = self.string(MAX_TEXT_BYTES)?;
        let metadata = serde_json::from_slice(self.bytes(MAX_METADATA_BYTES)?).ok()?;
        Some(VectorRecord { id, vector, text, metadata })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn records_round_trip_and_truncations_are_refused() {
        let record = VectorRecord {
            id: "doc-ñ".into(),
            vector: vec![1.5, -0.25, f32::MIN_POSITIVE],
            text: "¿Dónde?".into(),
            metadata: json!({"lang": "es", "n": [1, 2]}).as_object().cloned().unwrap(),
        };
        let mut bytes = Vec::new();
        put_record(&mut bytes, &record);
        put_u64(&mut bytes, 7);
        let mut cursor = Cursor::new(&bytes);
        assert_eq!(cursor.record(3).unwrap(), record);
        assert_eq!(cursor.u64(), Some(7));
        assert!(cursor.is_empty());
        for cut in 0..bytes.len() - 8 {
            assert!(Cursor::new(&bytes[..cut]).record(3).is_none(), "cut at {cut}");
        }
    }

    #[test]
    fn lengths_past_the_limits_are_refused() {
        let mut bytes = Vec::new();
        put_bytes(&mut bytes, &[b'x'; MAX_ID_BYTES + 1]);
        assert!(Cursor::new(&bytes).string(MAX_ID_BYTES).is_none());
        assert!(Cursor::new(&[0xff, 0xff, 0xff, 0xff]).bytes(usize::MAX).is_none());
    }
}
