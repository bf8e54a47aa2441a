//! The [`VectorStore`] trait: collections of vectors with metadata, searched with pre-filters.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;

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

/// A structured metadata filter; stores translate it, never pass raw expressions through.
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
}
