//! Retrieval routes: `POST /api/v1/rag/search`, `POST /api/v1/rag/ingest` (JSON documents or
//! multipart files), `GET /api/v1/rag/stats`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use capibara_core::Error;
use capibara_core::vector::{Filter, Metadata};
use capibara_rag::ingest::{Document, IngestFailure, IngestReport, Silent, ids::record_document_id};
use capibara_rag::retrieval::{EscalationReason, RagDepth, SearchHit};
use serde::{Deserialize, Serialize};

use super::chat::{read_json_body, read_json_body_within};
use super::error::ApiError;
use super::ingest_upload;
use crate::app::Capibara;
use crate::rag::{RagMode, RagSearch};

/// Longest query accepted, in characters.
pub(crate) const MAX_QUERY_CHARS: usize = 4_000;

/// Most documents in one JSON ingestion request.
const MAX_DOCUMENTS_PER_REQUEST: usize = 10_000;

/// `POST /api/v1/rag/search` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    query: Option<String>,
    #[serde(default)]
    mode: RagMode,
    #[serde(default, alias = "top_k", alias = "n_results")]
    k: Option<usize>,
    #[serde(default)]
    filter: Option<Filter>,
}

/// One result, as the routes return it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SourceOut {
    /// Position (1-based); a RAG answer cites sources by this number.
    pub(crate) n: usize,
    pub(crate) id: String,
    pub(crate) text: String,
    pub(crate) score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lexical_score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dense_score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) title: Option<String>,
    pub(crate) metadata: Metadata,
}

impl SourceOut {
    pub(crate) fn from_hits(hits: Vec<SearchHit>) -> Vec<Self> {
        hits.into_iter()
            .enumerate()
            .map(|(i, hit)| {
                let text_field =
                    |name: &str| hit.metadata.get(name).and_then(|v| v.as_str()).map(str::to_owned);
                Self {
                    n: i + 1,
                    source: text_field("source"),
                    title: text_field("title"),
                    id: hit.id,
                    text: hit.text,
                    score: hit.score,
                    lexical_score: hit.lexical_score,
                    dense_score: hit.dense_score,
                    metadata: hit.metadata,
                }
            })
            .collect()
    }
}

/// How a retrieval went, without its hits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RetrievalInfo {
    pub(crate) mode: RagMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) depth: Option<RagDepth>,
    pub(crate) partial: bool,
    pub(crate) cached: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) escalation: Vec<EscalationReason>,
    pub(crate) took_ms: f64,
}

impl RetrievalInfo {
    pub(crate) fn split(search: RagSearch) -> (Self, Vec<SearchHit>) {
        let info = Self {
            mode: search.mode,
            depth: search.depth,
            partial: search.partial,
            cached: search.cached,
            escalation: search.escalation,
            took_ms: search.took_ms,
        };
        (info, search.hits)
    }
}

#[derive(Debug, Serialize)]
struct SearchAnswer {
    query: String,
    total_results: usize,
    results: Vec<SourceOut>,
    #[serde(flatten)]
    retrieval: RetrievalInfo,
}

/// Checks a query: present, not blank, at most [`MAX_QUERY_CHARS`].
pub(crate) fn checked_query(query: Option<String>) -> Result<String, Error> {
    let query = query.unwrap_or_default();
    let trimmed = query.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid("query is required and must not be empty"));
    }
    let chars = trimmed.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(Error::TooLarge(format!("query has {chars} characters; the limit is {MAX_QUERY_CHARS}")));
    }
    Ok(trimmed.to_owned())
}

/// Runs a search within the request timeout.
pub(crate) async fn search(
    app: &Capibara,
    query: &str,
    mode: RagMode,
    k: Option<usize>,
    filter: Option<&Filter>,
) -> Result<RagSearch, Error> {
    let rag = app.rag()?;
    let timeout = app.config().server.request_timeout;
    tokio::time::timeout(timeout, rag.search(query, mode, k, filter, timeout))
        .await
        .map_err(|_| Error::Timeout(format!("the search took longer than {timeout:?}")))?
}

/// `POST /api/v1/rag/search`.
pub(crate) async fn search_route(State(app): State<Capibara>, request: Request) -> Response {
    respond(search_answer(&app, request).await)
}

async fn search_answer(app: &Capibara, request: Request) -> Result<Response, ApiError> {
    let body = read_json_body(app, request).await?;
    let body: SearchBody = super::json::parse(&body)?;
    let query = checked_query(body.query)?;
    let found = search(app, &query, body.mode, body.k, body.filter.as_ref()).await?;
    let (retrieval, hits) = RetrievalInfo::split(found);
    let results = SourceOut::from_hits(hits);
    Ok(Json(SearchAnswer { query, total_results: results.len(), results, retrieval }).into_response())
}

/// A document sent as JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentBody {
    /// Stable id; derived from `source` and the text when missing.
    #[serde(default)]
    id: Option<String>,
    text: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestBody {
    documents: Vec<DocumentBody>,
}

/// `POST /api/v1/rag/ingest`: `{"documents": [...]}` as JSON, or files as `multipart/form-data`.
pub(crate) async fn ingest_route(State(app): State<Capibara>, request: Request) -> Response {
    respond(ingest_answer(&app, request).await)
}

async fn ingest_answer(app: &Capibara, request: Request) -> Result<Response, ApiError> {
    let rag = app.rag()?.clone();
    let report = if super::chat::is_multipart(request.headers()) {
        let batch = ingest_upload::receive(&rag, request).await?;
        // A task of its own: a client that hangs up does not cut an ingestion short.
        let dir = batch.dir().to_owned();
        let running = Arc::clone(&rag);
        let outcome = tokio::spawn(async move { running.ingest_uploads(dir, &mut Silent).await }).await;
        batch.remove().await;
        let report = outcome.map_err(|e| Error::internal(format!("the ingestion task failed: {e}")))??;
        if report.files == 0
            && let Some(failure) = report.failures.first()
        {
            return Err(failure_error(failure).into());
        }
        report
    } else {
        let limit = ingest_upload::json_limit(app, &rag);
        let body = read_json_body_within(request, limit).await?;
        let body: IngestBody = super::json::parse(&body)?;
        let documents = documents(body)?;
        tokio::spawn(async move { rag.ingest_documents(documents, &mut Silent).await })
            .await
            .map_err(|e| Error::internal(format!("the ingestion task failed: {e}")))??
    };
    Ok(Json(IngestAnswer::from(report)).into_response())
}

fn documents(body: IngestBody) -> Result<Vec<Document>, Error> {
    if body.documents.is_empty() {
        return Err(Error::invalid("documents must hold at least one document"));
    }
    if body.documents.len() > MAX_DOCUMENTS_PER_REQUEST {
        return Err(Error::TooLarge(format!(
            "{} documents in one request; the limit is {MAX_DOCUMENTS_PER_REQUEST}",
            body.documents.len()
        )));
    }
    body.documents
        .into_iter()
        .enumerate()
        .map(|(i, doc)| {
            if doc.text.trim().is_empty() {
                return Err(Error::invalid(format!("documents[{i}].text must not be empty")));
            }
            if doc.id.as_deref().is_some_and(|id| id.trim().is_empty() || id.len() > 512) {
                return Err(Error::invalid(format!("documents[{i}].id must be 1 to 512 bytes")));
            }
            let source = doc.source.unwrap_or_else(|| "api".to_owned());
            let id = doc.id.unwrap_or_else(|| record_document_id(&source, &doc.text));
            let mut document = Document::new(source, id, doc.text);
            document.title = doc.title;
            document.metadata = doc.metadata;
            Ok(document)
        })
        .collect()
}

/// What an ingestion did, as the route returns it.
#[derive(Debug, Serialize)]
struct IngestAnswer {
    files: usize,
    documents: usize,
    unchanged_documents: usize,
    chunks_indexed: usize,
    chunks_removed: usize,
    failures: Vec<IngestFailure>,
    seconds: f64,
}

impl From<IngestReport> for IngestAnswer {
    fn from(report: IngestReport) -> Self {
        Self {
            files: report.files,
            documents: report.documents,
            unchanged_documents: report.unchanged_documents,
            chunks_indexed: report.chunks_indexed,
            chunks_removed: report.chunks_removed,
            failures: report.failures,
            seconds: report.seconds,
        }
    }
}

/// The error a failed file stands for.
fn failure_error(failure: &IngestFailure) -> Error {
    let message = failure.error.clone();
    match failure.code {
        "too_large" => Error::TooLarge(message),
        "not_found" => Error::NotFound(message),
        "invalid_input" => Error::InvalidInput(message),
        _ => Error::Internal(message),
    }
}

/// `GET /api/v1/rag/stats`.
pub(crate) async fn stats_route(State(app): State<Capibara>) -> Response {
    respond(stats(&app).await)
}

#[derive(Debug, Serialize)]
struct Stats {
    collection: String,
    documents: u64,
    indexed_documents: u64,
    chunks: u64,
    vectors: u64,
    embedding_model: String,
}

async fn stats(app: &Capibara) -> Result<Response, ApiError> {
    let rag = app.rag()?;
    let counts = rag.counts().await?;
    let index = rag.index();
    let vectors = rag.vector_store().count(index.collection()).await?;
    Ok(Json(Stats {
        collection: index.collection().to_owned(),
        documents: counts.documents,
        indexed_documents: counts.indexed_documents,
        chunks: counts.chunks,
        vectors,
        embedding_model: index.embedder().model_id().to_owned(),
    })
    .into_response())
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}
