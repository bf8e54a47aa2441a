//! The collection schema [`MilvusStore`](super::MilvusStore) creates and expects, and making a
//! collection searchable: its vector index built, the collection loaded.
//!
//! | field | Milvus type | holds |
//! |---|---|---|
//! | `id` | VarChar(512), primary key | [`VectorRecord::id`](capibara_core::vector::VectorRecord) |
//! | `text` | VarChar(65535) | `VectorRecord::text` |
//! | `metadata` | JSON | `VectorRecord::metadata` (the object, as it is) |
//! | `timestamp` | Int64 | when the record was last written, milliseconds since the Unix epoch |
//! | `vector` | FloatVector(dimension) | `VectorRecord::vector` |

use std::time::{Duration, Instant};

use capibara_core::vector::MAX_ID_BYTES;
use capibara_core::{Error, Result};
use milvus::v2::prelude::*;

use super::errors::timed;
use super::expr::{ID_FIELD, METADATA_FIELD};
use super::{MilvusConfig, MilvusIndex};

/// The record text field.
pub(super) const TEXT_FIELD: &str = "text";
/// The write time field (ms since the Unix epoch).
pub(super) const TIMESTAMP_FIELD: &str = "timestamp";
/// The vector field.
pub(super) const VECTOR_FIELD: &str = "vector";

/// The longest text Milvus stores in a VarChar field, in bytes.
pub(super) const MAX_TEXT_BYTES: usize = 65_535;

/// How often index and load progress is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Milvus' error code for a field without an index.
const INDEX_NOT_FOUND: i32 = 700;

/// The schema of a new collection of `dimension`-long vectors.
pub(super) fn schema(dimension: usize) -> CollectionSchema {
    let varchar = |name: &str, max_length: usize| {
        FieldSchema::new().name(name).data_type(DataType::VarChar).max_length(max_length as u32)
    };
    CollectionSchema::new()
        .description("Capibara vector records: id, text, metadata (JSON), timestamp (ms), vector")
        .enable_dynamic_field(false)
        .add_field(varchar(ID_FIELD, MAX_ID_BYTES).primary_key(true).auto_id(false))
        .add_field(varchar(TEXT_FIELD, MAX_TEXT_BYTES))
        .add_field(FieldSchema::new().name(METADATA_FIELD).data_type(DataType::Json))
        .add_field(FieldSchema::new().name(TIMESTAMP_FIELD).data_type(DataType::Int64))
        .add_field(
            FieldSchema::new()
                .name(VECTOR_FIELD)
                .data_type(DataType::FloatVector)
                .dimension(dimension as u32),
        )
}

/// The vector dimension of an existing collection, after checking it has the fields this store
/// reads and writes (a collection made by other tools may not).
pub(super) fn dimension_of(description: &CollectionDesc, name: &str) -> Result<usize> {
    let fields = description.get_schema().get_fields();
    let field = |wanted: &str| fields.iter().find(|f| f.get_name() == wanted);
    let wrong = |what: &str| {
        Error::invalid(format!(
            "collection '{name}' was not made by this store: {what} (expected id VarChar primary key, \
             text VarChar, metadata JSON, timestamp Int64, vector FloatVector)"
        ))
    };
    let expected = [
        (ID_FIELD, DataType::VarChar),
        (TEXT_FIELD, DataType::VarChar),
        (METADATA_FIELD, DataType::Json),
        (TIMESTAMP_FIELD, DataType::Int64),
        (VECTOR_FIELD, DataType::FloatVector),
    ];
    for (wanted, data_type) in expected {
        match field(wanted) {
            Some(f) if f.get_data_type() == data_type => {}
            Some(f) => return Err(wrong(&format!("field '{wanted}' is {:?}", f.get_data_type()))),
            None => return Err(wrong(&format!("it has no field '{wanted}'"))),
        }
    }
    if !field(ID_FIELD).is_some_and(FieldSchema::is_primary_key) {
        return Err(wrong("'id' is not its primary key"));
    }
    Ok(field(VECTOR_FIELD).map_or(0, |f| f.get_dimension() as usize))
}

/// Creates the collection (without index).
pub(super) async fn create(client: &ClientV2, timeout: Duration, name: &str, dimension: usize) -> Result<()> {
    let request = CreateCollectionRequest::builder().collection_name(name).schema(schema(dimension)).build();
    let request = request.map_err(|e| Error::internal(format!("Milvus create_collection request: {e}")))?;
    timed(timeout, "create_collection", client.create_collection(request)).await
}

/// The vector index of the collection, if it has one.
async fn vector_index(client: &ClientV2, timeout: Duration, name: &str) -> Result<Option<IndexDesc>> {
    let request = DescribeIndexRequest::builder().collection_name(name).field_name(VECTOR_FIELD).build();
    let request = request.map_err(|e| Error::internal(format!("Milvus describe_index request: {e}")))?;
    match tokio::time::timeout(timeout, Box::pin(client.describe_index(request))).await {
        Ok(Ok(response)) => {
            Ok(response.indexes().iter().find(|i| i.get_field_name() == VECTOR_FIELD).cloned())
        }
        Ok(Err(milvus::v2::error::Error::Server(e)))
            if e.code() == INDEX_NOT_FOUND || e.reason().contains("index not found") =>
        {
            Ok(None)
        }
        Ok(Err(error)) => Err(super::errors::map(error).context("Milvus describe_index")),
        Err(_) => Err(Error::Timeout(format!("Milvus describe_index took longer than {timeout:?}"))),
    }
}

/// Makes the collection searchable: builds the configured index on the vector field unless it
/// has one, and loads it, waiting at most `config.ready_timeout` for each. Returns the index
/// searches must be parameterised for — the one the collection already had, when it had one (a
/// collection indexed with another metric than inner product is refused, as its scores would
/// rank backwards).
///
/// The index is created without waiting and then polled with `describe_index`, which every
/// server answers (waiting inside `create_index` needs an RPC some servers lack).
pub(super) async fn make_searchable(
    client: &ClientV2,
    config: &MilvusConfig,
    name: &str,
) -> Result<MilvusIndex> {
    let timeout = config.timeout;
    let existing = match vector_index(client, timeout, name).await? {
        Some(existing) => existing,
        None => {
            let request = CreateIndexRequest::builder()
                .collection_name(name)
                .index_params(vec![config.index.param(VECTOR_FIELD)])
                .sync(false)
                .build()
                .map_err(|e| Error::internal(format!("Milvus create_index request: {e}")))?;
            timed(timeout, "create_index", client.create_index(request)).await?;
            wait_for_index(client, config, name).await?
        }
    };
    if existing.get_metric_type() != MetricType::Ip {
        return Err(Error::invalid(format!(
            "collection '{name}' is indexed with the {:?} metric; this store scores by inner product (IP)",
            existing.get_metric_type()
        )));
    }
    let request = LoadCollectionRequest::builder()
        .collection_name(name)
        .sync(true)
        .timeout_ms(config.ready_timeout.as_millis() as i64)
        .build()
        .map_err(|e| Error::internal(format!("Milvus load_collection request: {e}")))?;
    timed(config.ready_timeout, "load_collection", client.load_collection(request)).await?;
    Ok(search_index(existing.get_index_type(), config.index))
}

/// Polls until the vector index is built (at once for an empty collection).
async fn wait_for_index(client: &ClientV2, config: &MilvusConfig, name: &str) -> Result<IndexDesc> {
    let started = Instant::now();
    loop {
        if let Some(index) = vector_index(client, config.timeout, name).await? {
            match index.get_state() {
                IndexStateCode::Finished => return Ok(index),
                IndexStateCode::Failed => {
                    return Err(Error::upstream(
                        500,
                        format!("Milvus failed to index '{name}': {}", index.get_failure_reason()),
                    ));
                }
                _ => {}
            }
        }
        if started.elapsed() > config.ready_timeout {
            return Err(Error::Timeout(format!(
                "Milvus did not index '{name}' within {:?}",
                config.ready_timeout
            )));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The search parameters' source for a collection indexed with `actual`: the configured index
/// when it is of that type, else that type's defaults.
fn search_index(actual: IndexType, configured: MilvusIndex) -> MilvusIndex {
    let ivf = matches!(actual, IndexType::IvfFlat | IndexType::IvfSq8 | IndexType::IvfPq);
    match configured {
        MilvusIndex::Hnsw { .. } if actual == IndexType::Hnsw => configured,
        MilvusIndex::IvfFlat { .. } if ivf => configured,
        _ if actual == IndexType::Hnsw => MilvusIndex::default(),
        _ if ivf => MilvusIndex::IvfFlat { nlist: 1024, nprobe: 16 },
        _ => MilvusIndex::Flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_follow_the_index_the_collection_has() {
        let hnsw = MilvusIndex::Hnsw { m: 8, ef_construction: 64, ef: 128 };
        assert_eq!(search_index(IndexType::Hnsw, hnsw), hnsw);
        assert_eq!(search_index(IndexType::Hnsw, MilvusIndex::Flat), MilvusIndex::default());
        assert_eq!(search_index(IndexType::Flat, hnsw), MilvusIndex::Flat);
        assert!(matches!(search_index(IndexType::IvfFlat, hnsw), MilvusIndex::IvfFlat { nprobe: 16, .. }));
    }
}
