//! RAG answers: retrieve for the question, give the model the sources that fit its budget, return
//! the answer with those sources and their scores. Used by [`Capibara::ask`], by chat requests
//! with `use_rag` and by `POST /api/v1/query`.

use capibara_core::chat::{SamplingOptions, Usage};
use capibara_core::turn::{ContextSource, TurnInput};
use capibara_core::vector::Filter;
use capibara_core::{Error, Result};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::RagMode;
use super::results::{RetrievalInfo, SearchOptions, Source, checked_query};
use crate::app::Capibara;

/// How a chat asks for retrieval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RagRequest {
    /// How to retrieve.
    pub mode: RagMode,
    /// Metadata every source must match.
    pub filter: Option<Filter>,
}

/// Retrieved sources for one question.
#[derive(Debug, Clone)]
pub struct RagContext {
    /// What the model is given, best first.
    pub sources: Vec<ContextSource>,
    /// The same sources as returned to the caller.
    hits: Vec<Source>,
    /// How retrieval went.
    pub retrieval: RetrievalInfo,
}

impl RagContext {
    /// Retrieves for `question`.
    pub async fn retrieve(app: &Capibara, question: &str, request: &RagRequest) -> Result<Self> {
        let options = SearchOptions { mode: request.mode, k: None, filter: request.filter.clone() };
        let found = app.search(question, &options).await?;
        let sources = found
            .results
            .iter()
            .map(|hit| ContextSource {
                label: hit.title.clone().or_else(|| hit.source.clone()).unwrap_or_default(),
                text: hit.text.clone(),
            })
            .collect();
        Ok(Self { sources, hits: found.results, retrieval: found.retrieval })
    }

    /// The sources the model was given (the first `used`), numbered as in its prompt.
    pub fn used(&self, used: usize) -> Vec<Source> {
        self.hits.iter().take(used).cloned().collect()
    }
}

/// Options of a RAG answer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AskOptions {
    /// How to retrieve (guided by default).
    pub mode: RagMode,
    /// Metadata every source must match.
    pub filter: Option<Filter>,
    /// Model to ask; the configured one when unset.
    pub model: Option<String>,
    /// Most tokens to generate.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Conversation to continue (a UUID); a new one when unset.
    pub conversation_id: Option<String>,
    /// Who asks; anonymous when unset.
    pub email: Option<String>,
    /// Asking twice with the same key stores the turn once.
    #[serde(skip)]
    pub idempotency_key: Option<String>,
}

/// A RAG answer: the model's answer with exactly the sources it was given.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RagAnswer {
    /// The question, trimmed.
    pub query: String,
    /// The model's answer.
    pub answer: String,
    /// The sources the model saw, numbered as it may cite them.
    pub sources: Vec<Source>,
    /// How retrieval went.
    pub retrieval: RetrievalInfo,
    /// The model that answered.
    pub model: String,
    /// The conversation the turn was stored in.
    pub conversation_id: Uuid,
    /// Token accounting, when reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Wall time in milliseconds.
    pub processing_time_ms: u64,
    /// When the answer was complete (RFC 3339).
    pub timestamp: String,
}

/// Parses a conversation id, with a clear error for anything that is not a UUID.
pub fn parse_conversation_id(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text.trim())
        .map_err(|_| Error::invalid(format!("conversation_id `{text}` is not a valid id")))
}

/// Answers `question` from retrieved sources within the request timeout.
pub(crate) async fn ask(app: &Capibara, question: &str, options: AskOptions) -> Result<RagAnswer> {
    let started = std::time::Instant::now();
    let query = checked_query(Some(question.to_owned()))?;
    let conversation_id = options.conversation_id.as_deref().map(parse_conversation_id).transpose()?;
    let sampling = SamplingOptions {
        max_tokens: options.max_tokens,
        temperature: options.temperature,
        ..SamplingOptions::default()
    };
    sampling.validate()?;
    let turns = app.turns()?;
    let rag = RagRequest { mode: options.mode, filter: options.filter };
    let context = RagContext::retrieve(app, &query, &rag).await?;
    let input = TurnInput {
        conversation_id,
        user_email: options.email.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty()),
        message: query.clone(),
        model: options.model.filter(|m| !m.trim().is_empty()),
        options: sampling,
        idempotency_key: options.idempotency_key,
        sources: context.sources.clone(),
        ..TurnInput::default()
    };
    let timeout = app.config().server.request_timeout;
    let stream = turns.stream(input).await?;
    let used = stream.sources_used;
    let summary = tokio::time::timeout(timeout, stream.finish())
        .await
        .map_err(|_| Error::Timeout(format!("the answer took longer than {timeout:?}")))??;
    Ok(RagAnswer {
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
}
