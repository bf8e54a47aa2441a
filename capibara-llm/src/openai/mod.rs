//! [`OpenAiBackend`]: any OpenAI-compatible `/v1/chat/completions` server (vLLM, llama.cpp server,
//! Ollama `/v1`, OpenAI itself).

mod request;
mod stream;

use std::sync::Arc;

use async_trait::async_trait;
use capibara_core::chat::ChatRequest;
use capibara_core::config::OpenAiConfig;
use capibara_core::llm::{BackendHealth, Capabilities, ChatStream, HealthStatus, LlmBackend, ModelInfo};
use capibara_core::{Error, Result};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tokio::time::Instant;

use crate::transport::{self, Transport, health_report};
use crate::wire::openai::ModelList;

/// An OpenAI-compatible server, streamed over SSE.
///
/// The API key is read once, at construction, from the environment variable the configuration
/// names (`api_key_env`) and sent as `Authorization: Bearer …`; configured extra headers go with
/// every request.
#[derive(Debug)]
pub struct OpenAiBackend {
    id: String,
    backend: Arc<str>,
    config: OpenAiConfig,
    transport: Transport,
    chat_url: String,
    models_url: String,
    /// Authorization and extra headers (model listing and health).
    headers: HeaderMap,
    /// `headers` plus the JSON body and SSE answer types (chat).
    stream_headers: HeaderMap,
}

impl OpenAiBackend {
    /// A backend for `config`; fails when a named API key variable is unset or a header is invalid.
    pub fn new(config: OpenAiConfig) -> Result<Self> {
        let base = config.base_url.trim_end_matches('/').to_owned();
        let id = config.id.clone().unwrap_or_else(|| format!("openai@{base}"));
        let mut headers = HeaderMap::new();
        if let Some(variable) = &config.api_key_env {
            headers.insert(AUTHORIZATION, transport::bearer_from_env(&id, variable)?);
        }
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::invalid(format!("{id}: `{name}` is not a valid header name")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| Error::invalid(format!("{id}: the value of header `{name}` is not valid")))?;
            headers.insert(name, value);
        }
        let mut stream_headers = headers.clone();
        stream_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        stream_headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        let transport = Transport::new(&id, config.timeouts, config.retry)?;
        Ok(Self {
            backend: Arc::from(id.as_str()),
            id,
            chat_url: format!("{base}/chat/completions"),
            models_url: format!("{base}/models"),
            config,
            transport,
            headers,
            stream_headers,
        })
    }

    async fn list(&self) -> Result<ModelList> {
        self.transport.get_json(&self.models_url, &self.headers).await
    }
}

#[async_trait]
impl LlmBackend for OpenAiBackend {
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
            tools: true,
            max_context_tokens: self.config.context_window,
        }
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream> {
        request.validate()?;
        let model = request.model.clone().unwrap_or_else(|| self.config.model.clone());
        let body = transport::json_body(&request::build(&request, &model, self.config.stream_usage))?;
        let events = self
            .transport
            .open(&self.chat_url, &self.stream_headers, body, &model, || {
                stream::decoder(self.backend.clone())
            })
            .await?;
        Ok(ChatStream::new(model, self.id.clone(), events))
    }

    async fn models(&self) -> Result<Vec<ModelInfo>> {
        let list = self.list().await?;
        Ok(list
            .data
            .into_iter()
            .map(|model| {
                let context_length = model
                    .max_model_len
                    .or_else(|| (model.id == self.config.model).then_some(self.config.context_window));
                let details = serde_json::to_value(&model).ok();
                ModelInfo { id: model.id, backend: self.id.clone(), context_length, details }
            })
            .collect())
    }

    /// `Ok` when `GET {base}/models` answers and lists the configured model (or lists nothing),
    /// `Degraded` when it answers without it, `Down` otherwise.
    async fn health(&self) -> BackendHealth {
        let started = Instant::now();
        let verdict = match self.list().await {
            Ok(list) if list.data.is_empty() || list.data.iter().any(|m| m.id == self.config.model) => {
                (HealthStatus::Ok, None)
            }
            Ok(list) => {
                let served: Vec<&str> = list.data.iter().map(|m| m.id.as_str()).collect();
                let detail =
                    format!("model `{}` is not served (served: {})", self.config.model, served.join(", "));
                (HealthStatus::Degraded, Some(detail))
            }
            Err(error) => (HealthStatus::Down, Some(error.to_string())),
        };
        health_report(&self.id, &self.config.base_url, &self.config.model, started, verdict)
    }
}
