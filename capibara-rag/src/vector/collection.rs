//! One collection in memory, column by column: every vector in one contiguous `n × d` matrix (so a
//! scan streams memory; grown in huge pages by `memory`), and the ids, texts, metadata and
//! insertion sequence numbers in parallel vectors indexed by slot. Deleting moves the last slot
//! into the hole (swap-remove), so slots are dense but not in insertion order; the sequence
//! numbers keep that order for tie-breaking.

use std::collections::{BTreeMap, HashMap};

use capibara_core::vector::{Metadata, VectorRecord};

/// The records of one collection. Callers validate records before [`Collection::upsert`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Collection {
    dimension: usize,
    /// Row `slot` is `vectors[slot * dimension..][..dimension]`.
    vectors: Vec<f32>,
    ids: Vec<String>,
    texts: Vec<String>,
    metadata: Vec<Metadata>,
    /// When each slot's id was first inserted; smaller wins ties.
    seqs: Vec<u64>,
    slots: HashMap<String, usize>,
    /// How many records carry each metadata key (keys with no record are removed).
    fields: BTreeMap<String, usize>,
    next_seq: u64,
}

/// The parts of a collection as the snapshot file stores them.
#[derive(Debug, Default)]
pub(crate) struct Parts {
    pub(crate) dimension: usize,
    pub(crate) vectors: Vec<f32>,
    pub(crate) ids: Vec<String>,
    pub(crate) texts: Vec<String>,
    pub(crate) metadata: Vec<Metadata>,
    pub(crate) seqs: Vec<u64>,
    pub(crate) next_seq: u64,
}

impl Collection {
    /// An empty collection of `dimension`-long vectors.
    pub(crate) fn new(dimension: usize) -> Self {
        Self {
            dimension,
            vectors: Vec::new(),
            ids: Vec::new(),
            texts: Vec::new(),
            metadata: Vec::new(),
            seqs: Vec::new(),
            slots: HashMap::new(),
            fields: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// Rebuilds a collection from stored parts; `None` when the parts disagree in length, or
    /// repeat an id or a sequence number at or past `next_seq`.
    pub(crate) fn from_parts(parts: Parts) -> Option<Self> {
        let n = parts.ids.len();
        let consistent = parts.vectors.len() == n.checked_mul(parts.dimension)?
            && parts.texts.len() == n
            && parts.metadata.len() == n
            && parts.seqs.len() == n
            && parts.seqs.iter().all(|seq| *seq < parts.next_seq);
        if !consistent {
            return None;
        }
        let mut collection = Self {
            dimension: parts.dimension,
            vectors: parts.vectors,
            ids: parts.ids,
            texts: parts.texts,
            metadata: parts.metadata,
            seqs: parts.seqs,
            slots: HashMap::with_capacity(n),
            fields: BTreeMap::new(),
            next_seq: parts.next_seq,
        };
        for (slot, id) in collection.ids.iter().enumerate() {
            if collection.slots.insert(id.clone(), slot).is_some() {
                return None;
            }
        }
        for metadata in &collection.metadata {
            count_fields(&mut collection.fields, metadata, true);
        }
        Some(collection)
    }

    /// The vector length of every record.
    pub(crate) fn dimension(&self) -> usize {
        self.dimension
    }

    /// Number of records.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// The `n × d` matrix of every vector, row by slot.
    pub(crate) fn matrix(&self) -> &[f32] {
        &self.vectors
    }

    /// The vector in `slot`.
    pub(crate) fn row(&self, slot: usize) -> &[f32] {
        &self.vectors[slot * self.dimension..(slot + 1) * self.dimension]
    }

    /// Sequence numbers by slot (insertion order of each id).
    pub(crate) fn seqs(&self) -> &[u64] {
        &self.seqs
    }

    /// Metadata by slot.
    pub(crate) fn metadata(&self) -> &[Metadata] {
        &self.metadata
    }

    /// Ids by slot.
    pub(crate) fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Texts by slot.
    pub(crate) fn texts(&self) -> &[String] {
        &self.texts
    }

    /// The sequence number the next new id gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Metadata keys that at least one record carries, sorted.
    pub(crate) fn fields(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// Whether at least one record carries metadata key `field`.
    pub(crate) fn has_field(&self, field: &str) -> bool {
        self.fields.contains_key(field)
    }

    /// The record in `slot`, copied out.
    pub(crate) fn record(&self, slot: usize) -> VectorRecord {
        VectorRecord {
            id: self.ids[slot].clone(),
            vector: self.row(slot).to_vec(),
            text: self.texts[slot].clone(),
            metadata: self.metadata[slot].clone(),
        }
    }

    /// The slot of the record with `id`.
    #[cfg_attr(not(any(feature = "hnsw", feature = "faiss")), allow(dead_code))]
    pub(crate) fn slot(&self, id: &str) -> Option<usize> {
        self.slots.get(id).copied()
    }

    /// Whether a record has `id`.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.slots.contains_key(id)
    }

    /// The record with `id`, copied out.
    pub(crate) fn get(&self, id: &str) -> Option<VectorRecord> {
        self.slots.get(id).map(|slot| self.record(*slot))
    }

    /// Inserts the record, or replaces the one with its id in place (keeping its slot and its
    /// place in insertion order). The vector must have [`Collection::dimension`] values.
    pub(crate) fn upsert(&mut self, record: VectorRecord) {
        debug_assert_eq!(record.vector.len(), self.dimension);
        count_fields(&mut self.fields, &record.metadata, true);
        if let Some(&slot) = self.slots.get(&record.id) {
            count_fields(&mut self.fields, &self.metadata[slot], false);
            self.vectors[slot * self.dimension..(slot + 1) * self.dimension].copy_from_slice(&record.vector);
            self.texts[slot] = record.text;
            self.metadata[slot] = record.metadata;
            return;
        }
        self.slots.insert(record.id.clone(), self.ids.len());
        super::memory::reserve(&mut self.vectors, self.dimension);
        self.vectors.extend_from_slice(&record.vector);
        self.ids.push(record.id);
        self.texts.push(record.text);
        self.metadata.push(record.metadata);
        self.seqs.push(self.next_seq);
        self.next_seq += 1;
    }

    /// Deletes the record with `id`; whether it existed.
    pub(crate) fn delete(&mut self, id: &str) -> bool {
        let Some(slot) = self.slots.remove(id) else {
            return false;
        };
        let last = self.ids.len() - 1;
        count_fields(&mut self.fields, &self.metadata[slot], false);
        if slot != last {
            let d = self.dimension;
            self.vectors.copy_within(last * d..(last + 1) * d, slot * d);
            self.slots.insert(self.ids[last].clone(), slot);
        }
        self.vectors.truncate(last * self.dimension);
        self.ids.swap_remove(slot);
        self.texts.swap_remove(slot);
        self.metadata.swap_remove(slot);
        self.seqs.swap_remove(slot);
        true
    }
}

/// Adds (or removes) one to the count of every key of `metadata`, dropping keys that reach zero.
fn count_fields(fields: &mut BTreeMap<String, usize>, metadata: &Metadata, add: bool) {
    for key in metadata.keys() {
        if add {
            *fields.entry(key.clone()).or_default() += 1;
        } else if let Some(count) = fields.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                fields.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use serde_json::json;

    use super::*;

    fn record(id: &str, x: f32, metadata: serde_json::Value) -> VectorRecord {
        let serde_json::Value::Object(metadata) = metadata else { panic!("metadata is an object") };
        VectorRecord { id: id.into(), vector: vec![x, x + 0.5], text: format!("text {id}"), metadata }
    }

    #[test]
    fn upsert_appends_and_replaces_in_place() {
        let mut collection = Collection::new(2);
        collection.upsert(record("a", 1.0, json!({"lang": "es"})));
        collection.upsert(record("b", 2.0, json!({"lang": "en", "year": 2020})));
        collection.upsert(record("a", 3.0, json!({"year": 2021})));
        assert_eq!(collection.len(), 2);
        assert_eq!(collection.matrix(), &[3.0, 3.5, 2.0, 2.5]);
        assert_eq!(collection.get("a").unwrap(), record("a", 3.0, json!({"year": 2021})));
        assert_eq!(collection.seqs(), &[0, 1], "a replaced keeps its place in insertion order");
        assert_eq!(collection.fields().collect::<Vec<_>>(), vec!["lang", "year"]);
        assert!(collection.has_field("lang") && collection.has_field("year"));
    }

    #[test]
    fn delete_swaps_the_last_record_into_the_hole() {
        let mut collection = Collection::new(2);
        for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
            collection.upsert(record(id, i as f32, json!({ "k": i, *id: true })));
        }
        assert!(collection.delete("b"));
        assert!(!collection.delete("b"));
        assert_eq!(collection.ids(), &["a", "d", "c"]);
        assert_eq!(collection.row(1), &[3.0, 3.5]);
        assert_eq!(collection.seqs(), &[0, 3, 2]);
        assert_eq!(collection.get("d").unwrap(), record("d", 3.0, json!({"k": 3, "d": true})));
        assert!(!collection.has_field("b"), "no record carries 'b' any more");
        assert!(collection.has_field("k"));
        for id in ["a", "c", "d"] {
            assert!(collection.delete(id));
        }
        assert_eq!(collection.len(), 0);
        assert!(collection.matrix().is_empty());
        assert_eq!(collection.fields().count(), 0);
        collection.upsert(record("e", 9.0, json!({})));
        assert_eq!(collection.seqs(), &[4], "sequence numbers are never reused");
    }

    #[test]
    fn parts_round_trip_and_inconsistent_parts_are_refused() {
        let mut collection = Collection::new(2);
        collection.upsert(record("a", 1.0, json!({"x": 1})));
        collection.upsert(record("b", 2.0, json!({})));
        collection.delete("a");
        let parts = |c: &Collection| Parts {
            dimension: c.dimension(),
            vectors: c.matrix().to_vec(),
            ids: c.ids().to_vec(),
            texts: c.texts().to_vec(),
            metadata: c.metadata().to_vec(),
            seqs: c.seqs().to_vec(),
            next_seq: c.next_seq(),
        };
        assert_eq!(Collection::from_parts(parts(&collection)).unwrap(), collection);

        let mut repeated = parts(&collection);
        repeated.ids.push("b".into());
        repeated.texts.push(String::new());
        repeated.metadata.push(Metadata::new());
        repeated.seqs.push(0);
        repeated.vectors.extend([0.0, 0.0]);
        assert!(Collection::from_parts(repeated).is_none());
        let mut short = parts(&collection);
        short.vectors.pop();
        assert!(Collection::from_parts(short).is_none());
        let mut future_seq = parts(&collection);
        future_seq.seqs[0] = future_seq.next_seq;
        assert!(Collection::from_parts(future_seq).is_none());
    }
}
