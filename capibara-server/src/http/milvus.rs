//! The Milvus half of the Capibara6 "bridge": `POST /api/v1/milvus/search`,
//! `POST /api/v1/milvus/insert` and `GET /api/v1/milvus/collection/{name}`, served by whichever
//! vector store is configured (Milvus itself when `[retrieval.store] kind = "milvus"`).
//!
//! Bodies are checked field by field. `filter` is a structured [`Filter`]; Milvus boolean
//! expressions are refused rather than passed through, so a request can never widen a query.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use capibara_core::Error;
use capibara_core::vector::{Filter, MAX_K, Metadata, VectorQuery, VectorRecord, validate_collection_name};
use serde::{Deserialize, Serialize};

use super::chat::read_json_body;
use super::error::ApiError;
use crate::app::Capibara;

/// Most rows in one insert.
const MAX_INSERT_ROWS: usize = 10_000;

/// Fields a search may return.
const OUTPUT_FIELDS: [&str; 4] = ["id", "text", "metadata", "vector"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    collection_name: Option<String>,
    vector: Vec<f32>,
    #[serde(default = "default_top_k")]
    top_k: usize,
    /// IVF probe count; accepted for compatibility, the store's own search settings apply.
    #[serde(default)]
    #[allow(dead_code)]
    nprobe: Option<u32>,
    #[serde(default)]
    offset: usize,
    #[serde(default)]
    output_fields: Option<Vec<String>>,
    #[serde(default)]
    filter: Option<serde_json::Value>,
}

fn default_top_k() -> usize {
    10
}

#[derive(Debug, Serialize)]
struct SearchHitOut {
    id: String,
    score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vector: Option<Vec<f32>>,
}

#[derive(Debug, Serialize)]
struct SearchAnswer {
    collection_name: String,
    results: Vec<SearchHitOut>,
    took_ms: f64,
}

/// The collection a body names, or the configured one.
fn collection(app: &Capibara, name: Option<String>) -> Result<String, Error> {
    let name = name.unwrap_or_else(|| app.config().retrieval.collection.clone());
    validate_collection_name(&name)?;
    Ok(name)
}

fn structured_filter(filter: Option<serde_json::Value>) -> Result<Option<Filter>, Error> {
    match filter {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(expression)) if expression.trim().is_empty() => Ok(None),
        Some(serde_json::Value::String(_)) => Err(Error::invalid(
            "filter expressions are not accepted; send a structured filter such as \
             {\"eq\": {\"field\": \"category\", \"value\": \"ciencia\"}}",
        )),
        Some(value) => {
            let filter: Filter =
                serde_json::from_value(value).map_err(|e| Error::invalid(format!("filter: {e}")))?;
            filter.validate()?;
            Ok(Some(filter))
        }
    }
}

fn output_fields(fields: Option<Vec<String>>) -> Result<Vec<String>, Error> {
    let fields = fields.unwrap_or_else(|| vec!["id".into(), "text".into(), "metadata".into()]);
    if let Some(unknown) = fields.iter().find(|f| !OUTPUT_FIELDS.contains(&f.as_str())) {
        return Err(Error::invalid(format!(
            "output_fields: unknown field {unknown:?}; known: {}",
            OUTPUT_FIELDS.join(", ")
        )));
    }
    Ok(fields)
}

/// `POST /api/v1/milvus/search`.
pub(crate) async fn search_route(State(app): State<Capibara>, request: Request) -> Response {
    search(&app, request).await.unwrap_or_else(IntoResponse::into_response)
}

async fn search(app: &Capibara, request: Request) -> Result<Response, ApiError> {
    let started = Instant::now();
    let body: SearchBody = super::json::parse(&read_json_body(app, request).await?)?;
    let collection = collection(app, body.collection_name)?;
    let filter = structured_filter(body.filter)?;
    let fields = output_fields(body.output_fields)?;
    let k =
        body.top_k.checked_add(body.offset).filter(|k| body.top_k > 0 && *k <= MAX_K).ok_or_else(|| {
            Error::invalid(format!("top_k must be at least 1 and top_k + offset at most {MAX_K}"))
        })?;
    let store = app.rag()?.vector_store().clone();
    let query = VectorQuery { vector: body.vector, k, filter };
    let hits = bounded(app, store.search(&collection, &query)).await?;
    let has = |name: &str| fields.iter().any(|f| f == name);
    let results = hits
        .into_iter()
        .skip(body.offset)
        .map(|hit| SearchHitOut {
            score: hit.score,
            vector: has("vector").then_some(hit.record.vector),
            text: has("text").then_some(hit.record.text),
            metadata: has("metadata").then_some(hit.record.metadata),
            id: hit.record.id,
        })
        .collect();
    let took_ms = started.elapsed().as_secs_f64() * 1_000.0;
    Ok(Json(SearchAnswer { collection_name: collection, results, took_ms }).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InsertBody {
    collection_name: Option<String>,
    data: Vec<InsertRow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InsertRow {
    #[serde(default)]
    id: Option<String>,
    vector: Vec<f32>,
    #[serde(default)]
    text: String,
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Debug, Serialize)]
struct InsertAnswer {
    collection_name: String,
    insert_count: usize,
    ids: Vec<String>,
}

/// `POST /api/v1/milvus/insert`: rows upserted by id (a missing id gets a new one); the
/// collection is created with the rows' dimension when it does not exist.
pub(crate) async fn insert_route(State(app): State<Capibara>, request: Request) -> Response {
    insert(&app, request).await.unwrap_or_else(IntoResponse::into_response)
}

async fn insert(app: &Capibara, request: Request) -> Result<Response, ApiError> {
    let body: InsertBody = super::json::parse(&read_json_body(app, request).await?)?;
    let collection = collection(app, body.collection_name)?;
    if body.data.is_empty() {
        return Err(Error::invalid("data must hold at least one row").into());
    }
    if body.data.len() > MAX_INSERT_ROWS {
        return Err(
            Error::TooLarge(format!("{} rows; the limit is {MAX_INSERT_ROWS}", body.data.len())).into()
        );
    }
    let dimension = body.data[0].vector.len();
    if let Some((i, row)) = body.data.iter().enumerate().find(|(_, row)| row.vector.len() != dimension) {
        return Err(Error::invalid(format!(
            "data[{i}].vector has {} dimensions; data[0] has {dimension}",
            row.vector.len()
        ))
        .into());
    }
    let records: Vec<VectorRecord> = body
        .data
        .into_iter()
        .map(|row| VectorRecord {
            id: row.id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            vector: row.vector,
            text: row.text,
            metadata: row.metadata,
        })
        .collect();
    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    let store = app.rag()?.vector_store().clone();
    bounded(app, store.ensure_collection(&collection, dimension)).await?;
    bounded(app, store.upsert(&collection, records)).await?;
    Ok(Json(InsertAnswer { collection_name: collection, insert_count: ids.len(), ids }).into_response())
}

#[derive(Debug, Serialize)]
struct CollectionAnswer {
    collection_name: String,
    row_count: u64,
}

/// `GET /api/v1/milvus/collection/{name}`.
pub(crate) async fn collection_route(State(app): State<Capibara>, Path(name): Path<String>) -> Response {
    describe(&app, name).await.unwrap_or_else(IntoResponse::into_response)
}

async fn describe(app: &Capibara, name: String) -> Result<Response, ApiError> {
    validate_collection_name(&name)?;
    let store = app.rag()?.vector_store().clone();
    let row_count = bounded(app, store.count(&name)).await?;
    Ok(Json(CollectionAnswer { collection_name: name, row_count }).into_response())
}

/// Runs a store call within the request timeout.
async fn bounded<T>(
    app: &Capibara,
    call: impl std::future::Future<Output = capibara_core::Result<T>>,
) -> Result<T, Error> {
    let timeout = app.config().server.request_timeout;
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| Error::Timeout(format!("the vector store did not answer within {timeout:?}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expressions_are_refused_and_structured_filters_checked() {
        assert!(structured_filter(None).unwrap().is_none());
        assert!(structured_filter(Some(json!(""))).unwrap().is_none());
        let expression = structured_filter(Some(json!("id != \"\" or 1 == 1"))).unwrap_err();
        assert!(expression.to_string().contains("not accepted"), "{expression}");
        let filter =
            structured_filter(Some(json!({"eq": {"field": "category", "value": "ciencia"}}))).unwrap();
        assert_eq!(filter, Some(Filter::Eq { field: "category".into(), value: json!("ciencia") }));
        assert!(structured_filter(Some(json!({"eq": {"field": "a b", "value": 1}}))).is_err());
        assert!(structured_filter(Some(json!({"like": "x%"}))).is_err());
    }

    #[test]
    fn output_fields_are_known_names() {
        assert_eq!(output_fields(None).unwrap(), ["id", "text", "metadata"]);
        assert!(output_fields(Some(vec!["embedding; drop".into()])).is_err());
    }
}
