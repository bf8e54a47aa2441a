//! RAG answers: retrieve for the question, give the model the sources that fit its budget,
//! return the answer with those sources and their scores. Used by chat requests with `use_rag`
//! and by `POST /api/v1/query`.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use capibara_core::Error;
use capibara_core::chat::{SamplingOptions, Usage};
use capibara_core::turn::{ContextSource, TurnInput};
use capibara_core::vector::Filter;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::chat::read_json_body;
use super::chat_input::{idempotency_key, parse_conversation_id};
use super::error::ApiError;
use super::rag::{RetrievalInfo, SourceOut, checked_query, search};
use crate::app::Capibara;
use crate::rag::RagMode;

/// How a chat request asks for retrieval.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RagRequest {
    pub(crate) mode: RagMode,
    pub(crate) filter: Option<Filter>,
}

/// Retrieved sources for one question.
#[derive(Debug, Clone)]
pub(crate) struct RagContext {
    /// What the model is given, best first.
    pub(crate) sources: Vec<ContextSource>,
    /// The same sources as returned to the client.
    hits: Vec<SourceOut>,
    /// How retrieval went.
    pub(crate) retrieval: RetrievalInfo,
}

impl RagContext {
    /// Retrieves for `question`.
    pub(crate) async fn retrieve(
        app: &Capibara,
        question: &str,
        request: &RagRequest,
    ) -> Result<Self, Error> {
        let query = checked_query(Some(question.to_owned()))?;
        let found = search(app, &query, request.mode, None, request.filter.as_ref()).await?;
        let (retrieval, hits) = RetrievalInfo::split(found);
        let hits = SourceOut::from_hits(hits);
        let sources = hits
            .iter()
            .map(|hit| ContextSource {
                label: hit.title.clone().or_else(|| hit.source.clone()).unwrap_or_default(),
                text: hit.text.clone(),
            })
            .collect();
        Ok(Self { sources, hits, retrieval })
    }

    /// The sources the model was given (the first `used`), numbered as in its prompt.
    pub(crate) fn used(&self, used: usize) -> Vec<SourceOut> {
        self.hits.iter().take(used).cloned().collect()
    }
}

/// `POST /api/v1/query` body: the original `{query, context, options}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    query: Option<String>,
    /// Accepted for compatibility; free-form caller context is not sent to the model.
    #[serde(default)]
    #[allow(dead_code)]
    context: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    options: QueryOptions,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct QueryOptions {
    mode: RagMode,
    filter: Option<Filter>,
    model: Option<String>,
    max_tokens: Option<u32>,
    temperature: Option<f32>,
    conversation_id: Option<String>,
    email: Option<String>,
}

#[derive(Debug, Serialize)]
struct QueryAnswer {
    query: String,
    answer: String,
    sources: Vec<SourceOut>,
    retrieval: RetrievalInfo,
    model: String,
    conversation_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    processing_time_ms: u64,
    timestamp: String,
}

/// `POST /api/v1/query`.
pub(crate) async fn query_route(State(app): State<Capibara>, request: Request) -> Response {
    query_answer(&app, request).await.unwrap_or_else(IntoResponse::into_response)
}

async fn query_answer(app: &Capibara, request: Request) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let headers: HeaderMap = request.headers().clone();
    let body = read_json_body(app, request).await?;
    let body: QueryBody = super::json::parse(&body)?;
    let query = checked_query(body.query)?;
    let options = body.options;
    let turns = app.turns()?;
    let rag = RagRequest { mode: options.mode, filter: options.filter };
    let context = RagContext::retrieve(app, &query, &rag).await?;
    let input = TurnInput {
        conversation_id: options.conversation_id.as_deref().map(parse_conversation_id).transpose()?,
        user_email: options.email.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty()),
        message: query.clone(),
        model: options.model.filter(|m| !m.trim().is_empty()),
        options: SamplingOptions {
            max_tokens: options.max_tokens,
            temperature: options.temperature,
            ..SamplingOptions::default()
        },
        idempotency_key: idempotency_key(&headers)?,
        sources: context.sources.clone(),
        ..TurnInput::default()
    };
    let timeout = app.config().server.request_timeout;
    let stream = turns.stream(input).await?;
    let used = stream.sources_used;
    let summary = tokio::time::timeout(timeout, stream.finish())
        .await
        .map_err(|_| Error::Timeout(format!("the answer took longer than {timeout:?}")))??;
    Ok(Json(QueryAnswer {
        query,
        answer: summary.content,
        sources: context.used(used),
        retrieval: context.retrieval,
        model: summary.model,
        conversation_id: summary.conversation_id,
        usage: summary.usage,
        processing_time_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })
    .into_response())
}
