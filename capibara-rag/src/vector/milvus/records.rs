//! [`VectorRecord`]s to Milvus columns and back, and the checks a record passes before it is sent.

use capibara_core::vector::{Metadata, ScoredRecord, VectorRecord};
use capibara_core::{Error, Result};
use milvus::v2::prelude::{FieldData, Ids, QueryResults, SingleResult};
use serde_json::Value;

use super::expr::{ID_FIELD, METADATA_FIELD};
use super::schema::{MAX_TEXT_BYTES, TEXT_FIELD, TIMESTAMP_FIELD, VECTOR_FIELD};
use crate::vector::MAX_METADATA_BYTES;

/// The fields every read asks for besides the id.
pub(super) const OUTPUT_FIELDS: [&str; 4] = [ID_FIELD, TEXT_FIELD, METADATA_FIELD, VECTOR_FIELD];

/// Checks `record` against the collection's `dimension` and Milvus' limits; returns about how
/// many bytes it takes on the wire.
pub(super) fn check(record: &VectorRecord, dimension: usize) -> Result<usize> {
    record.validate(dimension)?;
    if record.text.len() > MAX_TEXT_BYTES {
        return Err(Error::TooLarge(format!(
            "record {:?}: text has {} bytes, Milvus stores at most {MAX_TEXT_BYTES}",
            record.id,
            record.text.len()
        )));
    }
    let metadata = serde_json::to_vec(&record.metadata)?.len();
    if metadata > MAX_METADATA_BYTES {
        return Err(Error::TooLarge(format!(
            "record {:?}: metadata has {metadata} bytes as JSON, the limit is {MAX_METADATA_BYTES} (64 KiB)",
            record.id
        )));
    }
    Ok(size(record, metadata))
}

/// About how many bytes `record` takes on the wire, its metadata taking `metadata` as JSON.
fn size(record: &VectorRecord, metadata: usize) -> usize {
    record.id.len() + record.text.len() + metadata + 4 * record.vector.len() + 32
}

/// The size on the wire of the largest of `records`.
pub(super) fn largest<'a>(records: impl IntoIterator<Item = &'a VectorRecord>) -> usize {
    let json = |record: &VectorRecord| serde_json::to_vec(&record.metadata).map_or(0, |m| m.len());
    records.into_iter().map(|record| size(record, json(record))).max().unwrap_or(0)
}

/// The records as the collection's columns, all stamped with `now_ms`.
pub(super) fn columns(records: Vec<VectorRecord>, now_ms: i64) -> Vec<FieldData> {
    let n = records.len();
    let (mut ids, mut texts, mut metadata, mut vectors) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for record in records {
        ids.push(record.id);
        texts.push(record.text);
        metadata.push(Value::Object(record.metadata));
        vectors.push(record.vector);
    }
    vec![
        FieldData::VarChar { name: ID_FIELD.to_owned(), values: ids },
        FieldData::VarChar { name: TEXT_FIELD.to_owned(), values: texts },
        FieldData::Json { name: METADATA_FIELD.to_owned(), values: metadata },
        FieldData::Int64 { name: TIMESTAMP_FIELD.to_owned(), values: vec![now_ms; n] },
        FieldData::FloatVector { name: VECTOR_FIELD.to_owned(), values: vectors },
    ]
}

/// The output columns of one answer, borrowed.
struct Columns<'a> {
    texts: &'a [String],
    metadata: &'a [Value],
    vectors: &'a [Vec<f32>],
}

fn malformed(what: &str) -> Error {
    Error::upstream(502, format!("Milvus answered without {what}"))
}

impl<'a> Columns<'a> {
    fn find(field: impl Fn(&str) -> Option<&'a FieldData>, rows: usize) -> Result<Self> {
        let texts = match field(TEXT_FIELD) {
            Some(FieldData::VarChar { values, .. }) => values.as_slice(),
            _ => return Err(malformed("the text column")),
        };
        let metadata = match field(METADATA_FIELD) {
            Some(FieldData::Json { values, .. }) => values.as_slice(),
            _ => return Err(malformed("the metadata column")),
        };
        let vectors = match field(VECTOR_FIELD) {
            Some(FieldData::FloatVector { values, .. }) => values.as_slice(),
            _ => return Err(malformed("the vector column")),
        };
        if texts.len() != rows || metadata.len() != rows || vectors.len() != rows {
            return Err(malformed("one value per row in every column"));
        }
        Ok(Self { texts, metadata, vectors })
    }

    fn record(&self, row: usize, id: &str) -> VectorRecord {
        let metadata = match &self.metadata[row] {
            Value::Object(map) => map.clone(),
            // Written by another tool: keep the value rather than drop it.
            Value::Null => Metadata::new(),
            other => Metadata::from_iter([("value".to_owned(), other.clone())]),
        };
        VectorRecord {
            id: id.to_owned(),
            vector: self.vectors[row].clone(),
            text: self.texts[row].clone(),
            metadata,
        }
    }
}

/// The records of a query answer, in the server's order.
pub(super) fn from_query(results: &QueryResults) -> Result<Vec<VectorRecord>> {
    let ids = match results.get_output_field(ID_FIELD) {
        Some(FieldData::VarChar { values, .. }) => values,
        // An empty answer may come without columns.
        _ if results.get_row_count() == 0 => return Ok(Vec::new()),
        _ => return Err(malformed("the id column")),
    };
    let columns = Columns::find(|name| results.get_output_field(name), ids.len())?;
    Ok(ids.iter().enumerate().map(|(row, id)| columns.record(row, id)).collect())
}

/// The ids of a search answer's hits, best first.
pub(super) fn hit_ids(result: &SingleResult) -> Result<&[String]> {
    match result.get_ids() {
        // An empty answer may come with an empty list of integer ids.
        _ if result.get_scores().is_empty() => Ok(&[]),
        Ids::VarChar(ids) if ids.len() == result.get_scores().len() => Ok(ids),
        _ => Err(malformed("one string id per score")),
    }
}

/// The hits of one query of a search answer, best first. The record columns are read directly
/// (`SingleResult::rows` needs the primary field name that Milvus 2.3 leaves out of answers).
pub(super) fn from_search(result: &SingleResult) -> Result<Vec<ScoredRecord>> {
    let ids = hit_ids(result)?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let columns = Columns::find(|name| result.get_output_field(name), ids.len())?;
    Ok(ids
        .iter()
        .zip(result.get_scores())
        .enumerate()
        .map(|(row, (id, score))| ScoredRecord { record: columns.record(row, id), score: *score })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn record(id: &str, text: String) -> VectorRecord {
        VectorRecord { id: id.into(), vector: vec![1.0, 0.0], text, metadata: Metadata::new() }
    }

    #[test]
    fn texts_beyond_a_varchar_are_too_large() {
        assert!(check(&record("a", "x".repeat(MAX_TEXT_BYTES)), 2).is_ok());
        let error = check(&record("a", "x".repeat(MAX_TEXT_BYTES + 1)), 2).unwrap_err();
        assert_eq!(error.code(), "too_large");
        assert_eq!(check(&record("a", String::new()), 3).unwrap_err().code(), "invalid_input");
    }

    #[test]
    fn query_answers_become_records() {
        let rows = columns(vec![record("a", "uno".into()), record("b", "dos".into())], 7);
        let results = QueryResults::new().output_fields(rows);
        let records = from_query(&results).unwrap();
        assert_eq!(records, vec![record("a", "uno".into()), record("b", "dos".into())]);
        let without_vectors = QueryResults::new().output_fields(
            columns(vec![record("a", String::new())], 7)
                .into_iter()
                .filter(|c| c.name() != VECTOR_FIELD)
                .collect(),
        );
        assert_eq!(from_query(&without_vectors).unwrap_err().code(), "upstream_error");
        assert!(from_query(&QueryResults::new()).unwrap().is_empty(), "no rows, no columns");
    }
}
