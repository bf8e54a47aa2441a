//! [`LlamaCppBackend`]: llama.cpp server's native `/completion`, streamed as SSE.

mod request;
mod stream;

use std::sync::Arc;

use async_trait::async_trait;
use capibara_core::Result;
use capibara_core::chat::ChatRequest;
use capibara_core::config::LlamaCppConfig;
use capibara_core::llm::{BackendHealth, Capabilities, ChatStream, HealthStatus, LlmBackend, ModelInfo};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use tokio::time::Instant;

use crate::transport::{self, Transport, health_report};
use crate::wire::openai::ModelList;

/// A llama.cpp server, native `/completion` API.
///
/// The conversation is rendered into one prompt with the configured
/// [`PromptFormat`](capibara_core::config::PromptFormat) (see [`crate::prompt`]), and the raw
/// text that comes back always goes through the [`ReasoningSplitter`](crate::reasoning::ReasoningSplitter),
/// so Harmony channels and `<think>` blocks arrive as reasoning and tool-call markup as tool calls.
/// Tool definitions are not sent: the endpoint has no place for them.
#[derive(Debug)]
pub struct LlamaCppBackend {
    id: String,
    backend: Arc<str>,
    config: LlamaCppConfig,
    transport: Transport,
    completion_url: String,
    health_url: String,
    models_url: String,
    headers: HeaderMap,
}

impl LlamaCppBackend {
    /// A backend for `config`.
    pub fn new(config: LlamaCppConfig) -> Result<Self> {
        let base = config.base_url.trim_end_matches('/').to_owned();
        let id = config.id.clone().unwrap_or_else(|| format!("llamacpp@{base}"));
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        Ok(Self {
            backend: Arc::from(id.as_str()),
            transport: Transport::new(&id, config.timeouts, config.retry)?,
            id,
            completion_url: format!("{base}/completion"),
            health_url: format!("{base}/health"),
            models_url: format!("{base}/v1/models"),
            config,
            headers,
        })
    }
}

#[async_trait]
impl LlmBackend for LlamaCppBackend {
    fn id(&self) -> &str {
        &self.id
    }

    fn default_model(&self) -> &str {
        &self.config.model
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            streaming: true,
            reasoning: true,
            tools: false,
            max_context_tokens: self.config.context_window,
        }
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream> {
        request.validate()?;
        // llama.cpp serves the one model it loaded; the name is only reported.
        let model = request.model.clone().unwrap_or_else(|| self.config.model.clone());
        let body = transport::json_body(&request::build(&request, self.config.prompt_format))?;
        let events = self
            .transport
            .open(&self.completion_url, &self.headers, body, &model, || stream::decoder(self.backend.clone()))
            .await?;
        Ok(ChatStream::new(model, self.id.clone(), events))
    }

    async fn models(&self) -> Result<Vec<ModelInfo>> {
        let list: ModelList = self.transport.get_json(&self.models_url, &HeaderMap::new()).await?;
        Ok(list
            .data
            .into_iter()
            .map(|model| ModelInfo {
                context_length: Some(self.config.context_window),
                details: serde_json::to_value(&model).ok(),
                id: model.id,
                backend: self.id.clone(),
            })
            .collect())
    }

    /// `Ok` when `GET /health` answers 200; `Down` otherwise, with llama.cpp's reason (503
    /// "Loading model" while the model loads).
    async fn health(&self) -> BackendHealth {
        let started = Instant::now();
        let verdict =
            match self.transport.get_json::<serde_json::Value>(&self.health_url, &HeaderMap::new()).await {
                Ok(_) => (HealthStatus::Ok, None),
                Err(error) => (HealthStatus::Down, Some(error.to_string())),
            };
        health_report(&self.id, &self.config.base_url, &self.config.model, started, verdict)
    }
}
