//! The [`VectorStore`] trait: collections of vectors with metadata, searched with pre-filters.
//!
//! The validation every store shares lives here too, so that every store rejects the same inputs
//! with the same messages: [`VectorQuery::validate`], [`VectorRecord::validate`],
//! [`Filter::validate`] and [`validate_collection_name`].

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The largest `k` a search accepts.
pub const MAX_K: usize = 1_000;

/// The longest record id, in bytes of UTF-8.
pub const MAX_ID_BYTES: usize = 512;

/// The longest collection name, in characters (Milvus' limit).
pub const MAX_COLLECTION_NAME_CHARS: usize = 255;

/// The longest filter field name, in bytes.
pub const MAX_FIELD_NAME_BYTES: usize = 255;

/// The deepest nesting of a [`Filter`]: a lone condition has depth 1, `And([condition])` depth 2.
pub const MAX_FILTER_DEPTH: usize = 16;

/// The most values an [`Filter::In`] may list.
pub const MAX_FILTER_VALUES: usize = 1_000;

/// Metadata attached to a record: a JSON object.
pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// One stored vector with its text and metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorRecord {
    /// Caller-chosen id; upserting the same id replaces the record.
    pub id: String,
    /// The vector (unit length for inner-product search).
    pub vector: Vec<f32>,
    /// The text the vector was computed from.
    pub text: String,
    /// Filterable metadata.
    #[serde(default)]
    pub metadata: Metadata,
}

impl VectorRecord {
    /// Checks what every store requires of a record: a non-empty id of at most [`MAX_ID_BYTES`]
    /// bytes and a vector of `dimension` finite values.
    pub fn validate(&self, dimension: usize) -> Result<()> {
        if self.id.is_empty() {
            return Err(Error::invalid("record id is empty"));
        }
        if self.id.len() > MAX_ID_BYTES {
            return Err(Error::invalid(format!(
                "record id has {} bytes, the limit is {MAX_ID_BYTES}",
                self.id.len()
            )));
        }
        check_vector(&self.vector, dimension).map_err(|error| error.context(&format!("record {:?}", self.id)))
    }
}

/// A vector of `dimension` finite values.
fn check_vector(vector: &[f32], dimension: usize) -> Result<()> {
    if vector.len() != dimension {
        return Err(Error::invalid(format!(
            "vector has {} dimensions, the collection expects {dimension}",
            vector.len()
        )));
    }
    if let Some(position) = vector.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid(format!("vector value {position} is not finite ({})", vector[position])));
    }
    Ok(())
}

/// Checks a collection name by Milvus' rules, so that a name valid for one store is valid for all:
/// a letter or underscore, then letters, digits and underscores, at most
/// [`MAX_COLLECTION_NAME_CHARS`] characters (ASCII only).
pub fn validate_collection_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(Error::invalid("collection name is empty"));
    };
    if name.len() > MAX_COLLECTION_NAME_CHARS {
        return Err(Error::invalid(format!(
            "collection name has {} characters, the limit is {MAX_COLLECTION_NAME_CHARS}",
            name.chars().count()
        )));
    }
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err(Error::invalid(format!(
            "collection name {name:?} must start with a letter or an underscore"
        )));
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '_')) {
        return Err(Error::invalid(format!(
            "collection name {name:?} may only hold letters, digits and underscores, not {bad:?}"
        )));
    }
    Ok(())
}

/// A structured metadata filter; stores translate it, never pass raw expressions through.
///
/// Semantics every store follows:
/// - `field` names a top-level metadata key, literally (a dot is part of the name, not a path);
/// - `Eq` and `In` compare scalars (strings, numbers, booleans); numbers compare by value
///   (`1` equals `1.0`); a record without the field, or with an array or object there, does not
///   match;
/// - `Range` matches numbers within the inclusive bounds;
/// - `Not` matches whatever its filter does not, records lacking the field included.
///
/// [`Filter::validate`] states what a well-formed filter is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// `field == value`.
    Eq {
        /// Metadata field.
        field: String,
        /// Value to match.
        value: serde_json::Value,
    },
    /// `field` is one of `values`.
    In {
        /// Metadata field.
        field: String,
        /// Accepted values.
        values: Vec<serde_json::Value>,
    },
    /// Numeric range, bounds inclusive.
    Range {
        /// Metadata field.
        field: String,
        /// Lower bound.
        #[serde(default)]
        gte: Option<f64>,
        /// Upper bound.
        #[serde(default)]
        lte: Option<f64>,
    },
    /// Every filter matches.
    And(Vec<Filter>),
    /// Any filter matches.
    Or(Vec<Filter>),
    /// The filter does not match.
    Not(Box<Filter>),
}

impl Filter {
    /// Checks the filter's shape: nesting at most [`MAX_FILTER_DEPTH`] deep; `And` and `Or` not
    /// empty; field names non-empty, at most [`MAX_FIELD_NAME_BYTES`] bytes of ASCII letters,
    /// digits, `_` and `.`; `Eq` and `In` values scalar (string, number or boolean); `In` with 1 to
    /// [`MAX_FILTER_VALUES`] values; `Range` with at least one bound, finite bounds and
    /// `gte <= lte`.
    pub fn validate(&self) -> Result<()> {
        self.validate_at(1)
    }

    fn validate_at(&self, depth: usize) -> Result<()> {
        if depth > MAX_FILTER_DEPTH {
            return Err(Error::invalid(format!("filter is nested deeper than {MAX_FILTER_DEPTH} levels")));
        }
        match self {
            Self::Eq { field, value } => {
                check_field(field)?;
                check_scalar(field, value)
            }
            Self::In { field, values } => {
                check_field(field)?;
                if values.is_empty() {
                    return Err(Error::invalid(format!("filter 'in' on '{field}' lists no values")));
                }
                if values.len() > MAX_FILTER_VALUES {
                    return Err(Error::invalid(format!(
                        "filter 'in' on '{field}' lists {} values, the limit is {MAX_FILTER_VALUES}",
                        values.len()
                    )));
                }
                values.iter().try_for_each(|value| check_scalar(field, value))
            }
            Self::Range { field, gte, lte } => {
                check_field(field)?;
                if gte.is_none() && lte.is_none() {
                    return Err(Error::invalid(format!("filter 'range' on '{field}' has no bound")));
                }
                if gte.iter().chain(lte).any(|bound| !bound.is_finite()) {
                    return Err(Error::invalid(format!(
                        "filter 'range' on '{field}' has a bound that is not finite"
                    )));
                }
                if let (Some(low), Some(high)) = (gte, lte)
                    && low > high
                {
                    return Err(Error::invalid(format!(
                        "filter 'range' on '{field}' has gte {low} above lte {high}"
                    )));
                }
                Ok(())
            }
            Self::And(filters) | Self::Or(filters) => {
                if filters.is_empty() {
                    let name = if matches!(self, Self::And(_)) { "and" } else { "or" };
                    return Err(Error::invalid(format!("filter '{name}' has no filters")));
                }
                filters.iter().try_for_each(|filter| filter.validate_at(depth + 1))
            }
            Self::Not(filter) => filter.validate_at(depth + 1),
        }
    }

    /// The distinct field names the filter mentions, in order of first mention.
    pub fn fields(&self) -> Vec<&str> {
        let mut fields = Vec::new();
        self.collect_fields(&mut fields);
        fields
    }

    fn collect_fields<'a>(&'a self, fields: &mut Vec<&'a str>) {
        match self {
            Self::Eq { field, .. } | Self::In { field, .. } | Self::Range { field, .. } => {
                if !fields.contains(&field.as_str()) {
                    fields.push(field);
                }
            }
            Self::And(filters) | Self::Or(filters) => {
                filters.iter().for_each(|filter| filter.collect_fields(fields));
            }
            Self::Not(filter) => filter.collect_fields(fields),
        }
    }
}

fn check_field(field: &str) -> Result<()> {
    if field.is_empty() {
        return Err(Error::invalid("filter field name is empty"));
    }
    if field.len() > MAX_FIELD_NAME_BYTES {
        return Err(Error::invalid(format!(
            "filter field name has {} bytes, the limit is {MAX_FIELD_NAME_BYTES}",
            field.len()
        )));
    }
    if let Some(bad) = field.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.')) {
        return Err(Error::invalid(format!(
            "filter field name {field:?} may only hold letters, digits, '_' and '.', not {bad:?}"
        )));
    }
    Ok(())
}

fn check_scalar(field: &str, value: &serde_json::Value) -> Result<()> {
    use serde_json::Value;
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(()),
        other => Err(Error::invalid(format!(
            "filter on '{field}' compares with {other}; only strings, numbers and booleans can be compared"
        ))),
    }
}

/// A nearest-neighbour query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorQuery {
    /// Query vector.
    pub vector: Vec<f32>,
    /// How many results.
    pub k: usize,
    /// Applied before top-k, never after.
    #[serde(default)]
    pub filter: Option<Filter>,
}

impl VectorQuery {
    /// Checks the query against a collection of `dimension`: `k` in `1..=`[`MAX_K`], a vector of
    /// `dimension` finite values, and a well-formed filter ([`Filter::validate`]).
    pub fn validate(&self, dimension: usize) -> Result<()> {
        if !(1..=MAX_K).contains(&self.k) {
            return Err(Error::invalid(format!("k must be between 1 and {MAX_K} (MAX_K), got {}", self.k)));
        }
        check_vector(&self.vector, dimension)?;
        if let Some(filter) = &self.filter {
            filter.validate()?;
        }
        Ok(())
    }
}

/// A search hit; higher scores are better in every store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredRecord {
    /// The record.
    pub record: VectorRecord,
    /// Similarity (inner product for unit vectors).
    pub score: f32,
}

/// Collections of vectors with metadata.
#[async_trait]
pub trait VectorStore: Send + Sync {
    /// Creates the collection if missing; errors if it exists with another dimension.
    async fn ensure_collection(&self, collection: &str, dimension: usize) -> Result<()>;
    /// Inserts or replaces records by id.
    async fn upsert(&self, collection: &str, records: Vec<VectorRecord>) -> Result<()>;
    /// The best `k` records passing the filter.
    async fn search(&self, collection: &str, query: &VectorQuery) -> Result<Vec<ScoredRecord>>;
    /// Records by id (missing ids are left out).
    async fn get(&self, collection: &str, ids: &[String]) -> Result<Vec<VectorRecord>>;
    /// Deletes records by id; returns how many existed.
    async fn delete(&self, collection: &str, ids: &[String]) -> Result<u64>;
    /// Number of records.
    async fn count(&self, collection: &str) -> Result<u64>;

    /// Several searches of one collection, answered in order. The default runs [`search`]
    /// once per query; stores that can share work across queries (one matrix product) override it.
    ///
    /// [`search`]: VectorStore::search
    async fn search_many(&self, collection: &str, queries: &[VectorQuery]) -> Result<Vec<Vec<ScoredRecord>>> {
        let mut results = Vec::with_capacity(queries.len());
        for query in queries {
            results.push(self.search(collection, query).await?);
        }
        Ok(results)
    }
}

#[async_trait]
impl<T: VectorStore + ?Sized> VectorStore for Arc<T> {
    async fn ensure_collection(&self, collection: &str, dimension: usize) -> Result<()> {
        (**self).ensure_collection(collection, dimension).await
    }
    async fn upsert(&self, collection: &str, records: Vec<VectorRecord>) -> Result<()> {
        (**self).upsert(collection, records).await
    }
    async fn search(&self, collection: &str, query: &VectorQuery) -> Result<Vec<ScoredRecord>> {
        (**self).search(collection, query).await
    }
    async fn get(&self, collection: &str, ids: &[String]) -> Result<Vec<VectorRecord>> {
        (**self).get(collection, ids).await
    }
    async fn delete(&self, collection: &str, ids: &[String]) -> Result<u64> {
        (**self).delete(collection, ids).await
    }
    async fn count(&self, collection: &str) -> Result<u64> {
        (**self).count(collection).await
    }
    async fn search_many(&self, collection: &str, queries: &[VectorQuery]) -> Result<Vec<Vec<ScoredRecord>>> {
        (**self).search_many(collection, queries).await
    }
}

#[cfg(test)]
#[path = "vector_tests.rs"]
mod tests;
