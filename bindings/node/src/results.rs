//! What calls resolve to: the library's result types as plain JavaScript objects with camelCase
//! keys. Metadata stays as it was stored (its keys untouched).

use capibara_core::chat::{self as core_chat, ChatResponse, FinishReason, StreamEvent};
use capibara_core::vector::Metadata;
use capibara_rag::ingest::IngestFailure as CoreIngestFailure;
use capibara_rag::retrieval::EscalationReason;
use capibara_server::rag as core_rag;
use napi_derive::napi;
use serde::Serialize;

/// A count as a JavaScript number.
fn count(n: impl TryInto<u32>) -> u32 {
    n.try_into().unwrap_or(u32::MAX)
}

/// The wire name of a library enum (`guided`, `mini`, …), as the HTTP API writes it.
fn wire_name(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// A call the model asked for.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// Identifier to answer the call with a `tool` message.
    pub id: String,
    /// Function name.
    pub name: String,
    /// Arguments as JSON text, exactly as the model produced them.
    pub arguments: String,
}

impl From<core_chat::ToolCall> for ToolCall {
    fn from(call: core_chat::ToolCall) -> Self {
        Self { id: call.id, name: call.name, arguments: call.arguments }
    }
}

/// Token accounting for one answer.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// Prompt plus completion tokens.
    pub total_tokens: u32,
}

impl From<core_chat::Usage> for Usage {
    fn from(usage: core_chat::Usage) -> Self {
        Self {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens(),
        }
    }
}

/// A whole answer.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct ChatAnswer {
    /// The model that answered.
    pub model: String,
    /// The backend that answered (its id).
    pub backend: String,
    /// The visible answer.
    pub content: String,
    /// The model's reasoning, if it produced any.
    pub reasoning: Option<String>,
    /// Tool calls the model asked for.
    pub tool_calls: Vec<ToolCall>,
    /// Token accounting, when the backend reported it.
    pub usage: Option<Usage>,
    /// Why generation stopped (`stop`, `length`, `tool_calls`, `content_filter`, `cancelled`, …).
    pub finish_reason: String,
}

impl From<ChatResponse> for ChatAnswer {
    fn from(response: ChatResponse) -> Self {
        Self {
            model: response.model,
            backend: response.backend,
            content: response.content,
            reasoning: response.reasoning,
            tool_calls: response.tool_calls.into_iter().map(ToolCall::from).collect(),
            usage: response.usage.map(Usage::from),
            finish_reason: response.finish_reason.as_str().to_owned(),
        }
    }
}

/// One event of a streamed answer: any number of `content`, `reasoning`, `tool_call` and `usage`
/// events, then one `done`.
#[napi(discriminant = "type", discriminant_case = "snake_case", object_from_js = false)]
#[derive(Debug, Clone, PartialEq)]
// Each variant's doc names its field; field docs would be written inside the TypeScript union.
#[allow(missing_docs)]
pub enum ChatEvent {
    /// A piece of the visible answer (`delta`).
    Content { delta: String },
    /// A piece of the model's reasoning (`delta`), never part of the answer.
    Reasoning { delta: String },
    /// A complete tool call (`call`).
    ToolCall { call: ToolCall },
    /// Token accounting (`usage`), usually just before `done`.
    Usage { usage: Usage },
    /// The answer is complete; `finishReason` says why generation stopped.
    Done { finish_reason: String },
}

impl From<StreamEvent> for ChatEvent {
    fn from(event: StreamEvent) -> Self {
        match event {
            StreamEvent::Content { delta } => Self::Content { delta },
            StreamEvent::Reasoning { delta } => Self::Reasoning { delta },
            StreamEvent::ToolCall { call } => Self::ToolCall { call: call.into() },
            StreamEvent::Usage { usage } => Self::Usage { usage: usage.into() },
            StreamEvent::Done { finish_reason } => Self::Done { finish_reason: finish_name(&finish_reason) },
        }
    }
}

fn finish_name(reason: &FinishReason) -> String {
    reason.as_str().to_owned()
}

/// One retrieved chunk, numbered as a RAG answer cites it.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Position (1-based); a RAG answer cites sources by this number.
    pub n: u32,
    /// The chunk's id.
    pub id: String,
    /// The chunk's text.
    pub text: String,
    /// The score of the mode's ranking; higher is better.
    pub score: f64,
    /// The BM25 score, when the lexical side found it.
    pub lexical_score: Option<f64>,
    /// The inner product with the query, when the dense side found it.
    pub dense_score: Option<f64>,
    /// The document's source (file or origin).
    pub source: Option<String>,
    /// The document's title.
    pub title: Option<String>,
    /// Every metadata field of the chunk.
    #[napi(ts_type = "Record<string, unknown>")]
    pub metadata: Metadata,
}

impl From<core_rag::Source> for Source {
    fn from(source: core_rag::Source) -> Self {
        Self {
            n: count(source.n),
            id: source.id,
            text: source.text,
            score: f64::from(source.score),
            lexical_score: source.lexical_score.map(f64::from),
            dense_score: source.dense_score.map(f64::from),
            source: source.source,
            title: source.title,
            metadata: source.metadata,
        }
    }
}

/// Why guided retrieval escalated from mini to full.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    /// `few_results`, `budget_exceeded`, `no_lexical_match`, `weak_evidence`, `long_query` or
    /// `deep_keyword`.
    pub signal: String,
    /// `few_results`: hits found.
    pub found: Option<u32>,
    /// `weak_evidence`: the best dense similarity among mini's hits.
    pub best_dense_score: Option<f64>,
    /// `long_query`: its word count.
    pub words: Option<u32>,
    /// `deep_keyword`: the keyword found.
    pub keyword: Option<String>,
}

impl From<EscalationReason> for Escalation {
    fn from(reason: EscalationReason) -> Self {
        let signal = match serde_json::to_value(&reason) {
            Ok(serde_json::Value::Object(fields)) => {
                fields.get("signal").and_then(|s| s.as_str()).unwrap_or_default().to_owned()
            }
            _ => String::new(),
        };
        let mut escalation = Self { signal, found: None, best_dense_score: None, words: None, keyword: None };
        match reason {
            EscalationReason::FewResults { found } => escalation.found = Some(count(found)),
            EscalationReason::WeakEvidence { best_dense_score } => {
                escalation.best_dense_score = best_dense_score.map(f64::from);
            }
            EscalationReason::LongQuery { words } => escalation.words = Some(count(words)),
            EscalationReason::DeepKeyword { keyword } => escalation.keyword = Some(keyword),
            EscalationReason::BudgetExceeded | EscalationReason::NoLexicalMatch => {}
        }
        escalation
    }
}

/// How a retrieval went.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalInfo {
    /// The mode asked for.
    #[napi(ts_type = "'mini' | 'full' | 'guided' | 'lexical' | 'dense' | 'hybrid'")]
    pub mode: String,
    /// For mini, full and guided: the depth that answered.
    #[napi(ts_type = "'mini' | 'full'")]
    pub depth: Option<String>,
    /// A budget ran out: the best results found in time.
    pub partial: bool,
    /// Served from the result cache.
    pub cached: bool,
    /// Why guided search escalated.
    pub escalation: Vec<Escalation>,
    /// Wall time in milliseconds.
    pub took_ms: f64,
}

impl From<core_rag::RetrievalInfo> for RetrievalInfo {
    fn from(info: core_rag::RetrievalInfo) -> Self {
        Self {
            mode: wire_name(&info.mode),
            depth: info.depth.as_ref().map(wire_name),
            partial: info.partial,
            cached: info.cached,
            escalation: info.escalation.into_iter().map(Escalation::from).collect(),
            took_ms: info.took_ms,
        }
    }
}

/// A search's answer: the query as searched, the numbered results and how retrieval went (the
/// fields of `RetrievalInfo`, at the top level as the HTTP API returns them).
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResults {
    /// The query, trimmed.
    pub query: String,
    /// How many results there are.
    pub total_results: u32,
    /// Best first.
    pub results: Vec<Source>,
    /// The mode asked for.
    #[napi(ts_type = "'mini' | 'full' | 'guided' | 'lexical' | 'dense' | 'hybrid'")]
    pub mode: String,
    /// For mini, full and guided: the depth that answered.
    #[napi(ts_type = "'mini' | 'full'")]
    pub depth: Option<String>,
    /// A budget ran out: the best results found in time.
    pub partial: bool,
    /// Served from the result cache.
    pub cached: bool,
    /// Why guided search escalated.
    pub escalation: Vec<Escalation>,
    /// Wall time in milliseconds.
    pub took_ms: f64,
}

impl From<core_rag::SearchResults> for SearchResults {
    fn from(found: core_rag::SearchResults) -> Self {
        let retrieval = RetrievalInfo::from(found.retrieval);
        Self {
            query: found.query,
            total_results: count(found.total_results),
            results: found.results.into_iter().map(Source::from).collect(),
            mode: retrieval.mode,
            depth: retrieval.depth,
            partial: retrieval.partial,
            cached: retrieval.cached,
            escalation: retrieval.escalation,
            took_ms: retrieval.took_ms,
        }
    }
}

/// A RAG answer: the model's answer with exactly the sources it was given.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone, PartialEq)]
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
    /// The conversation the turn was stored in (a UUID).
    pub conversation_id: String,
    /// Token accounting, when reported.
    pub usage: Option<Usage>,
    /// Wall time in milliseconds.
    pub processing_time_ms: f64,
    /// When the answer was complete (RFC 3339).
    pub timestamp: String,
}

impl From<core_rag::RagAnswer> for RagAnswer {
    fn from(answer: core_rag::RagAnswer) -> Self {
        Self {
            query: answer.query,
            answer: answer.answer,
            sources: answer.sources.into_iter().map(Source::from).collect(),
            retrieval: answer.retrieval.into(),
            model: answer.model,
            conversation_id: answer.conversation_id.to_string(),
            usage: answer.usage.map(Usage::from),
            #[allow(clippy::cast_precision_loss)] // milliseconds stay far below 2^53
            processing_time_ms: answer.processing_time_ms as f64,
            timestamp: answer.timestamp,
        }
    }
}

/// A file an ingestion could not read.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct IngestFailure {
    /// The file.
    pub source: String,
    /// The error's code (`invalid_input`, `too_large`, `not_found`, …).
    pub code: String,
    /// What went wrong.
    pub error: String,
}

impl From<CoreIngestFailure> for IngestFailure {
    fn from(failure: CoreIngestFailure) -> Self {
        Self { source: failure.source, code: failure.code.to_owned(), error: failure.error }
    }
}

/// What an ingestion did.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct IngestSummary {
    /// Files read.
    pub files: u32,
    /// Documents found.
    pub documents: u32,
    /// Documents skipped because this version was already indexed.
    pub unchanged_documents: u32,
    /// Chunks embedded and indexed.
    pub chunks_indexed: u32,
    /// Chunks of earlier versions removed.
    pub chunks_removed: u32,
    /// Files that failed, with the reason.
    pub failures: Vec<IngestFailure>,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl From<core_rag::IngestSummary> for IngestSummary {
    fn from(summary: core_rag::IngestSummary) -> Self {
        Self {
            files: count(summary.files),
            documents: count(summary.documents),
            unchanged_documents: count(summary.unchanged_documents),
            chunks_indexed: count(summary.chunks_indexed),
            chunks_removed: count(summary.chunks_removed),
            failures: summary.failures.into_iter().map(IngestFailure::from).collect(),
            seconds: summary.seconds,
        }
    }
}

/// What the retrieval collection holds.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrievalStats {
    /// The collection searched.
    pub collection: String,
    /// Documents in the ledger.
    pub documents: u32,
    /// Documents fully indexed.
    pub indexed_documents: u32,
    /// Chunks in the ledger.
    pub chunks: u32,
    /// Vectors in the store.
    pub vectors: u32,
    /// The embedding model's id.
    pub embedding_model: String,
}

impl From<core_rag::RetrievalStats> for RetrievalStats {
    fn from(stats: core_rag::RetrievalStats) -> Self {
        Self {
            collection: stats.collection,
            documents: count(stats.documents),
            indexed_documents: count(stats.indexed_documents),
            chunks: count(stats.chunks),
            vectors: count(stats.vectors),
            embedding_model: stats.embedding_model,
        }
    }
}
