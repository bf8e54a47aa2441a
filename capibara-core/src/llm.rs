//! The [`LlmBackend`] trait: one model server (or a chain of them) that answers chats.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures::stream::{BoxStream, Stream, StreamExt};
use serde::{Deserialize, Serialize};

use crate::chat::{AnswerBuilder, ChatRequest, ChatResponse, StreamEvent};
use crate::error::Result;

/// What a backend can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Answers arrive token by token.
    pub streaming: bool,
    /// The backend reports model reasoning separately from the answer.
    pub reasoning: bool,
    /// The backend accepts tool definitions and returns tool calls.
    pub tools: bool,
    /// Context window of the configured model, in tokens.
    pub max_context_tokens: u32,
}

/// A model a backend can serve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Model identifier as the backend names it (e.g. `gpt-oss:20b`).
    pub id: String,
    /// Id of the backend that serves it.
    pub backend: String,
    /// Context window, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u32>,
    /// The upstream's own description of the model, verbatim, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// Whether a backend answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Reachable and answering.
    Ok,
    /// Answering, but not fully (e.g. one of several upstreams is down).
    Degraded,
    /// Not answering.
    Down,
}

/// Result of a health probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendHealth {
    /// Backend id.
    pub backend: String,
    /// Verdict.
    pub status: HealthStatus,
    /// Where the backend lives (base URL, or a path for local models).
    pub location: String,
    /// The configured model.
    pub model: String,
    /// How long the probe took.
    pub latency_ms: u64,
    /// What went wrong, when something did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A streamed answer: which model and backend produce it, and its events.
///
/// A `ChatStream` is returned only once the backend has produced its first event, so failures
/// before the first token (connection refused, 429, 503, first-token timeout) surface as the
/// error of [`LlmBackend::chat_stream`] and can be retried or handed to the next backend.
pub struct ChatStream {
    /// The model that answers.
    pub model: String,
    /// Id of the backend that answers.
    pub backend: String,
    events: BoxStream<'static, Result<StreamEvent>>,
}

impl ChatStream {
    /// Wraps an event stream.
    pub fn new(
        model: impl Into<String>,
        backend: impl Into<String>,
        events: impl Stream<Item = Result<StreamEvent>> + Send + 'static,
    ) -> Self {
        Self { model: model.into(), backend: backend.into(), events: events.boxed() }
    }

    /// Replaces the events, keeping model and backend (for adapters that transform events).
    pub fn map_events(
        self,
        f: impl FnOnce(BoxStream<'static, Result<StreamEvent>>) -> BoxStream<'static, Result<StreamEvent>>,
    ) -> Self {
        Self { model: self.model, backend: self.backend, events: f(self.events) }
    }

    /// Reads the stream to its end and folds it into one answer.
    pub async fn collect_response(mut self) -> Result<ChatResponse> {
        let mut builder = AnswerBuilder::default();
        while let Some(event) = self.events.next().await {
            let event = event?;
            builder.push(&event);
            if matches!(event, StreamEvent::Done { .. }) {
                break;
            }
        }
        builder.finish(self.model, self.backend)
    }
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStream").field("model", &self.model).field("backend", &self.backend).finish()
    }
}

impl Stream for ChatStream {
    type Item = Result<StreamEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_next_unpin(cx)
    }
}

/// A model server that answers chats, whole or streamed.
#[async_trait]
pub trait LlmBackend: Send + Sync {
    /// Stable id used in logs, health reports and answers (e.g. `ollama@http://host:11434`).
    fn id(&self) -> &str;

    /// The model used when a request names none.
    fn default_model(&self) -> &str;

    /// What the backend can do.
    fn capabilities(&self) -> Capabilities;

    /// Starts an answer and returns once its first event is available (see [`ChatStream`]).
    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream>;

    /// Produces a whole answer (by default, by collecting the stream).
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        self.chat_stream(request).await?.collect_response().await
    }

    /// Models the backend can serve.
    async fn models(&self) -> Result<Vec<ModelInfo>>;

    /// Probes the backend.
    async fn health(&self) -> BackendHealth;
}

/// Forwards every [`LlmBackend`] method through a smart pointer, so `Arc<dyn LlmBackend>` and
/// `Box<dyn LlmBackend>` compose wherever a backend is expected.
macro_rules! forward_llm_backend {
    ($($pointer:ident),*) => {$(
        #[async_trait]
        impl<T: LlmBackend + ?Sized> LlmBackend for $pointer<T> {
            fn id(&self) -> &str {
                (**self).id()
            }
            fn default_model(&self) -> &str {
                (**self).default_model()
            }
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream> {
                (**self).chat_stream(request).await
            }
            async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
                (**self).chat(request).await
            }
            async fn models(&self) -> Result<Vec<ModelInfo>> {
                (**self).models().await
            }
            async fn health(&self) -> BackendHealth {
                (**self).health().await
            }
        }
    )*};
}

forward_llm_backend!(Arc, Box);
