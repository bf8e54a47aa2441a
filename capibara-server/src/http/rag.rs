//! Retrieval routes: `POST /api/v1/rag/search`, `POST /api/v1/rag/ingest` (JSON documents or
//! multipart files), `GET /api/v1/rag/stats`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use capibara_core::Error;
use capibara_core::vector::Filter;
use capibara_rag::ingest::Silent;
use serde::Deserialize;

use super::chat::{read_json_body, read_json_body_within};
use super::error::ApiError;
use super::ingest_upload;
use crate::app::Capibara;
use crate::rag::{DocumentInput, IngestSummary, RagMode, SearchOptions, checked_query};

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

/// `POST /api/v1/rag/search`.
pub(crate) async fn search_route(State(app): State<Capibara>, request: Request) -> Response {
    respond(search_answer(&app, request).await)
}

async fn search_answer(app: &Capibara, request: Request) -> Result<Response, ApiError> {
    let body = read_json_body(app, request).await?;
    let body: SearchBody = super::json::parse(&body)?;
    let query = checked_query(body.query)?;
    let options = SearchOptions { mode: body.mode, k: body.k, filter: body.filter };
    Ok(Json(app.search(&query, &options).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestBody {
    documents: Vec<DocumentInput>,
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
        let summary = IngestSummary::from(report);
        if let Some(error) = summary.nothing_read() {
            return Err(error.into());
        }
        summary
    } else {
        let limit = ingest_upload::json_limit(app, &rag);
        let body = read_json_body_within(request, limit).await?;
        let body: IngestBody = super::json::parse(&body)?;
        app.ingest_documents(body.documents).await?
    };
    Ok(Json(report).into_response())
}

/// `GET /api/v1/rag/stats`.
pub(crate) async fn stats_route(State(app): State<Capibara>) -> Response {
    respond(stats(&app).await)
}

async fn stats(app: &Capibara) -> Result<Response, ApiError> {
    Ok(Json(app.retrieval_stats().await?).into_response())
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}
