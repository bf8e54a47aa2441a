//! [`OllamaBackend`]: Ollama's native `/api/chat` or `/api/generate`, streamed as NDJSON.

mod request;
mod stream;

use std::sync::Arc;

use async_trait::async_trait;
use capibara_core::Result;
use capibara_core::chat::ChatRequest;
use capibara_core::config::{OllamaConfig, OllamaEndpoint};
use capibara_core::llm::{BackendHealth, Capabilities, ChatStream, HealthStatus, LlmBackend, ModelInfo};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use tokio::time::Instant;

use crate::transport::{self, Transport, health_report};
use crate::wire::ollama::TagsResponse;

/// An Ollama server, native API.
///
/// `think` and `keep_alive` from the configuration are passed through, and the configured context
/// window is sent as `num_ctx` (Ollama's own default is much smaller). With `/api/generate`, tool
/// definitions are not sent (the endpoint has none), but tool calls the model writes as markup are
/// still recognised.
#[derive(Debug)]
pub struct OllamaBackend {
    id: String,
    backend: Arc<str>,
    config: OllamaConfig,
    transport: Transport,
    chat_url: String,
    tags_url: String,
    headers: HeaderMap,
}

impl OllamaBackend {
    /// A backend for `config`.
    pub fn new(config: OllamaConfig) -> Result<Self> {
        let base = config.base_url.trim_end_matches('/').to_owned();
        let id = config.id.clone().unwrap_or_else(|| format!("ollama@{base}"));
        let path = match config.endpoint {
            OllamaEndpoint::Chat => "/api/chat",
            OllamaEndpoint::Generate => "/api/generate",
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(Self {
            backend: Arc::from(id.as_str()),
            transport: Transport::new(&id, config.timeouts, config.retry)?,
            id,
            chat_url: format!("{base}{path}"),
            tags_url: format!("{base}/api/tags"),
            config,
            headers,
        })
    }

    async fn tags(&self) -> Result<TagsResponse> {
        self.transport.get_json(&self.tags_url, &HeaderMap::new()).await
    }

    /// Whether a pulled tag is the configured model (`llama3` means `llama3:latest`).
    fn is_configured(&self, tag: &str) -> bool {
        let model = self.config.model.as_str();
        tag == model || (!model.contains(':') && tag.strip_suffix(":latest") == Some(model))
    }
}

#[async_trait]
impl LlmBackend for OllamaBackend {
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
            tools: self.config.endpoint == OllamaEndpoint::Chat,
            max_context_tokens: self.config.context_window,
        }
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream> {
        request.validate()?;
        let model = request.model.clone().unwrap_or_else(|| self.config.model.clone());
        let body = match self.config.endpoint {
            OllamaEndpoint::Chat => transport::json_body(&request::chat(&request, &model, &self.config))?,
            OllamaEndpoint::Generate => {
                transport::json_body(&request::generate(&request, &model, &self.config))?
            }
        };
        let endpoint = self.config.endpoint;
        let events = self
            .transport
            .open(&self.chat_url, &self.headers, body, &model, || {
                stream::decoder(self.backend.clone(), endpoint)
            })
            .await?;
        Ok(ChatStream::new(model, self.id.clone(), events))
    }

    async fn models(&self) -> Result<Vec<ModelInfo>> {
        Ok(self
            .tags()
            .await?
            .models
            .into_iter()
            .map(|entry| ModelInfo {
                context_length: self.is_configured(&entry.name).then_some(self.config.context_window),
                details: serde_json::to_value(&entry).ok(),
                id: entry.name,
                backend: self.id.clone(),
            })
            .collect())
    }

    /// `Ok` when `GET /api/tags` lists the configured model, `Degraded` when Ollama answers but the
    /// model is not pulled, `Down` when it does not answer.
    async fn health(&self) -> BackendHealth {
        let started = Instant::now();
        let verdict = match self.tags().await {
            Ok(tags) if tags.models.iter().any(|entry| self.is_configured(&entry.name)) => {
                (HealthStatus::Ok, None)
            }
            Ok(_) => {
                let model = &self.config.model;
                (
                    HealthStatus::Degraded,
                    Some(format!("model `{model}` is not pulled (run `ollama pull {model}`)")),
                )
            }
            Err(error) => (HealthStatus::Down, Some(error.to_string())),
        };
        health_report(&self.id, &self.config.base_url, &self.config.model, started, verdict)
    }
}
