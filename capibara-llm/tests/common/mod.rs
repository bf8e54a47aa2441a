//! Backends built against the fake upstreams, shared by the integration tests.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use capibara_core::config::{
    LlamaCppConfig, OllamaConfig, OllamaEndpoint, OpenAiConfig, PromptFormat, RetryConfig, TimeoutConfig,
};
use capibara_core::llm::LlmBackend;
use capibara_llm::{LlamaCppBackend, OllamaBackend, OpenAiBackend};
use capibara_testkit::conformance::Tuning;
use capibara_testkit::upstream::Protocol;

/// The backend timeouts for a conformance tuning (connect: 2 s).
pub fn timeouts(tuning: &Tuning) -> TimeoutConfig {
    TimeoutConfig {
        connect: Duration::from_secs(2),
        first_token: tuning.first_token_timeout,
        idle: tuning.idle_timeout,
        total: tuning.total_timeout,
    }
}

/// The backend retries for a conformance tuning (backoff capped at 2 s).
pub fn retry(tuning: &Tuning) -> RetryConfig {
    RetryConfig {
        max_retries: tuning.max_retries,
        initial_backoff: tuning.initial_backoff,
        max_backoff: Duration::from_secs(2).max(tuning.initial_backoff),
    }
}

/// An OpenAI backend configuration for the fake at `base_url`.
pub fn openai_config(base_url: &str, tuning: &Tuning) -> OpenAiConfig {
    OpenAiConfig {
        id: None,
        base_url: base_url.to_owned(),
        model: Protocol::OpenAi.default_model().to_owned(),
        api_key_env: None,
        headers: BTreeMap::new(),
        context_window: 8192,
        stream_usage: true,
        timeouts: timeouts(tuning),
        retry: retry(tuning),
    }
}

/// An Ollama backend configuration for the fake at `base_url`.
pub fn ollama_config(base_url: &str, tuning: &Tuning, endpoint: OllamaEndpoint) -> OllamaConfig {
    OllamaConfig {
        id: None,
        base_url: base_url.to_owned(),
        model: Protocol::Ollama.default_model().to_owned(),
        endpoint,
        think: None,
        keep_alive: None,
        context_window: 8192,
        timeouts: timeouts(tuning),
        retry: retry(tuning),
    }
}

/// A llama.cpp backend configuration for the fake at `base_url`.
pub fn llamacpp_config(base_url: &str, tuning: &Tuning, prompt_format: PromptFormat) -> LlamaCppConfig {
    LlamaCppConfig {
        id: None,
        base_url: base_url.to_owned(),
        model: Protocol::LlamaCpp.default_model().to_owned(),
        prompt_format,
        context_window: 8192,
        timeouts: timeouts(tuning),
        retry: retry(tuning),
    }
}

/// An OpenAI backend for the fake at `base_url`.
pub fn openai(base_url: &str, tuning: &Tuning) -> Arc<dyn LlmBackend> {
    Arc::new(OpenAiBackend::new(openai_config(base_url, tuning)).unwrap())
}

/// An Ollama backend for the fake at `base_url`.
pub fn ollama(base_url: &str, tuning: &Tuning, endpoint: OllamaEndpoint) -> Arc<dyn LlmBackend> {
    Arc::new(OllamaBackend::new(ollama_config(base_url, tuning, endpoint)).unwrap())
}

/// A llama.cpp backend for the fake at `base_url`.
pub fn llamacpp(base_url: &str, tuning: &Tuning, prompt_format: PromptFormat) -> Arc<dyn LlmBackend> {
    Arc::new(LlamaCppBackend::new(llamacpp_config(base_url, tuning, prompt_format)).unwrap())
}

/// Everything a stream yields until it ends: the events, and the error that ended it, if any.
pub async fn drain(
    mut stream: capibara_core::llm::ChatStream,
) -> (Vec<capibara_core::chat::StreamEvent>, Option<capibara_core::Error>) {
    use futures::StreamExt as _;
    let mut events = Vec::new();
    while let Some(item) = tokio::time::timeout(Duration::from_secs(15), stream.next()).await.unwrap() {
        match item {
            Ok(event) => events.push(event),
            Err(error) => return (events, Some(error)),
        }
    }
    (events, None)
}

/// A short conversation.
pub fn question() -> capibara_core::chat::ChatRequest {
    use capibara_core::chat::{ChatRequest, Message};
    ChatRequest::new(vec![Message::system("Responde en castellano."), Message::user("¿Qué es un capibara?")])
}
