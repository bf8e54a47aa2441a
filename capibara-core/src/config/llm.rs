//! Chat backend configuration: an ordered list of upstream model servers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Chat models: tried in order, the next one taking over when one fails before its first token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Backends, in fallback order.
    pub backends: Vec<BackendConfig>,
    /// When `backends` is empty, serve the local default model (SmolLM2-135M-Instruct) if this build
    /// has local-model support; `false` leaves chat unconfigured instead.
    pub local_default: bool,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self { backends: Vec::new(), local_default: true }
    }
}

impl LlmConfig {
    /// Checks every backend (URLs, models, timeouts, retries) and that ids are unique.
    pub fn validate(&self) -> Result<()> {
        let mut ids = std::collections::BTreeSet::new();
        for (index, backend) in self.backends.iter().enumerate() {
            backend.validate().map_err(|e| e.context(&format!("llm.backends[{index}]")))?;
            if let Some(id) = backend.explicit_id()
                && !ids.insert(id.to_owned())
            {
                return Err(Error::invalid(format!("llm.backends: id `{id}` is used twice")));
            }
        }
        Ok(())
    }
}

/// One upstream model server, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum BackendConfig {
    /// Any OpenAI-compatible `/v1/chat/completions` server (vLLM, llama.cpp server, Ollama `/v1`, OpenAI).
    Openai(OpenAiConfig),
    /// Ollama's native `/api/chat` or `/api/generate`.
    Ollama(OllamaConfig),
    /// llama.cpp server's native `/completion`.
    Llamacpp(LlamaCppConfig),
    /// A GGUF model run in-process (candle); needs the `local-llm` feature.
    Local(LocalLlmConfig),
}

impl BackendConfig {
    fn validate(&self) -> Result<()> {
        let (base_url, model, timeouts, retry) = match self {
            Self::Openai(c) => (&c.base_url, &c.model, &c.timeouts, &c.retry),
            Self::Ollama(c) => (&c.base_url, &c.model, &c.timeouts, &c.retry),
            Self::Llamacpp(c) => (&c.base_url, &c.model, &c.timeouts, &c.retry),
            Self::Local(c) => return c.validate(),
        };
        validate_base_url(base_url)?;
        if model.trim().is_empty() {
            return Err(Error::invalid("model must not be empty"));
        }
        timeouts.validate()?;
        retry.validate()
    }

    fn explicit_id(&self) -> Option<&str> {
        match self {
            Self::Openai(c) => c.id.as_deref(),
            Self::Ollama(c) => c.id.as_deref(),
            Self::Llamacpp(c) => c.id.as_deref(),
            Self::Local(_) => None,
        }
    }
}

pub(super) fn validate_base_url(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| Error::invalid(format!("base_url `{url}` must start with http:// or https://")))?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
        return Err(Error::invalid(format!("base_url `{url}` has no host")));
    }
    Ok(())
}

/// An OpenAI-compatible server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// Id in logs and health reports; `openai@<base_url>` when unset.
    #[serde(default)]
    pub id: Option<String>,
    /// Base URL including `/v1` (e.g. `http://localhost:8000/v1`).
    pub base_url: String,
    /// Model name sent upstream.
    pub model: String,
    /// Name of the environment variable holding the API key (keys never live in the file).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Context window of the model, in tokens.
    #[serde(default = "default_context_window")]
    pub context_window: u32,
    /// Ask for a usage chunk at the end of streams (`stream_options.include_usage`).
    #[serde(default = "yes")]
    pub stream_usage: bool,
    /// Timeouts.
    #[serde(default)]
    pub timeouts: TimeoutConfig,
    /// Retries before the first token.
    #[serde(default)]
    pub retry: RetryConfig,
}

/// Which Ollama endpoint to call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OllamaEndpoint {
    /// `/api/chat` with structured messages (default).
    #[default]
    Chat,
    /// `/api/generate` with a rendered prompt.
    Generate,
}

/// An Ollama server, native API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OllamaConfig {
    /// Id in logs and health reports; `ollama@<base_url>` when unset.
    #[serde(default)]
    pub id: Option<String>,
    /// Base URL (e.g. `http://localhost:11434`).
    #[serde(default = "default_ollama_url")]
    pub base_url: String,
    /// Model tag; `gpt-oss:20b` by default.
    #[serde(default = "default_ollama_model")]
    pub model: String,
    /// `/api/chat` or `/api/generate`.
    #[serde(default)]
    pub endpoint: OllamaEndpoint,
    /// Ask reasoning models to think (`true`/`false`, or `low`/`medium`/`high` for GPT-OSS); unset leaves
    /// the model's default.
    #[serde(default)]
    pub think: Option<serde_json::Value>,
    /// How long Ollama keeps the model loaded (e.g. `5m`).
    #[serde(default)]
    pub keep_alive: Option<String>,
    /// Context window of the model, in tokens (sent as `num_ctx`).
    #[serde(default = "default_context_window")]
    pub context_window: u32,
    /// Timeouts.
    #[serde(default)]
    pub timeouts: TimeoutConfig,
    /// Retries before the first token.
    #[serde(default)]
    pub retry: RetryConfig,
}

/// How a conversation is rendered into one prompt for completion-style endpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptFormat {
    /// The original Capibara6 transcript: `system`, then `Usuario: …` / `Capibara6: …` turns.
    #[default]
    Transcript,
    /// ChatML (`<|im_start|>role … <|im_end|>`), used by Qwen, SmolLM and many others.
    Chatml,
    /// Gemma (`<start_of_turn>user … <end_of_turn>`).
    Gemma,
    /// Llama 3 (`<|start_header_id|>role<|end_header_id|>`).
    Llama3,
    /// OpenAI Harmony, used by GPT-OSS (`<|start|>role<|message|>…<|end|>`).
    Harmony,
}

/// A llama.cpp server, native `/completion` API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaCppConfig {
    /// Id in logs and health reports; `llamacpp@<base_url>` when unset.
    #[serde(default)]
    pub id: Option<String>,
    /// Base URL (e.g. `http://localhost:8080`).
    pub base_url: String,
    /// Name reported for the model (llama.cpp serves whatever it loaded).
    #[serde(default = "default_llamacpp_model")]
    pub model: String,
    /// How to render the conversation into the prompt.
    #[serde(default)]
    pub prompt_format: PromptFormat,
    /// Context window of the model, in tokens.
    #[serde(default = "default_context_window")]
    pub context_window: u32,
    /// Timeouts.
    #[serde(default)]
    pub timeouts: TimeoutConfig,
    /// Retries before the first token.
    #[serde(default)]
    pub retry: RetryConfig,
}

/// A GGUF chat model run in-process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalLlmConfig {
    /// A llama-architecture GGUF file; unset means the default model from the model store
    /// (SmolLM2-135M-Instruct, fetched by `capibara models pull`).
    pub path: Option<PathBuf>,
    /// Name reported for the model; from the GGUF metadata when unset.
    pub model: Option<String>,
    /// CPU threads per generation; 1 when unset (candle's pool spin-waits, so more threads only
    /// help on an otherwise idle machine).
    pub threads: Option<usize>,
    /// Generations running at once; the number of cores divided by `threads` when unset.
    pub max_concurrent: Option<usize>,
    /// Requests waiting for a free slot before new ones are refused as rate limited.
    pub max_queue: Option<usize>,
    /// Context window in tokens; from the GGUF metadata (capped at 8192) when unset.
    pub context_window: Option<u32>,
    /// `max_tokens` when a request names none.
    pub max_tokens: Option<u32>,
    /// A Jinja chat template replacing the one in the GGUF.
    pub chat_template: Option<String>,
    /// Megabytes of f32 copies of the layer matrices kept to process prompts ~4× faster on CPUs
    /// without int8 dot products (VNNI); 0 turns them off; 1024 when unset.
    pub dense_prefill_mb: Option<u64>,
}

impl LocalLlmConfig {
    fn validate(&self) -> Result<()> {
        if self.path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(Error::invalid("path must not be empty (leave it out for the default model)"));
        }
        let positive = [("threads", self.threads), ("max_concurrent", self.max_concurrent)];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == Some(0)) {
            return Err(Error::invalid(format!("{name} must be at least 1")));
        }
        if self.threads.is_some_and(|t| t > 256) {
            return Err(Error::invalid("threads must be at most 256"));
        }
        if self.context_window.is_some_and(|c| c < 256) {
            return Err(Error::invalid("context_window must be at least 256 tokens"));
        }
        if self.max_tokens == Some(0) {
            return Err(Error::invalid("max_tokens must be at least 1"));
        }
        Ok(())
    }
}

/// How long to wait for an upstream, per phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutConfig {
    /// TCP (and TLS) connection.
    #[serde(with = "humantime_serde")]
    pub connect: Duration,
    /// From sending the request to the first event (includes model loading and prompt processing).
    #[serde(with = "humantime_serde")]
    pub first_token: Duration,
    /// Longest silence between two events once streaming.
    #[serde(with = "humantime_serde")]
    pub idle: Duration,
    /// The whole answer.
    #[serde(with = "humantime_serde")]
    pub total: Duration,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            first_token: Duration::from_secs(120),
            idle: Duration::from_secs(60),
            total: Duration::from_secs(600),
        }
    }
}

impl TimeoutConfig {
    pub(super) fn validate(&self) -> Result<()> {
        if [self.connect, self.first_token, self.idle, self.total].iter().any(Duration::is_zero) {
            return Err(Error::invalid("timeouts must be positive"));
        }
        if self.first_token > self.total {
            return Err(Error::invalid("timeouts.first_token must not exceed timeouts.total"));
        }
        Ok(())
    }
}

/// Retries of failures that happen before the first token (connection refused, 429, 5xx, timeouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts after the first one.
    pub max_retries: u32,
    /// Wait before the first retry; doubles each time, with jitter.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Longest wait between attempts (also caps an upstream's `Retry-After`).
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryConfig {
    fn validate(&self) -> Result<()> {
        if self.max_retries > 10 {
            return Err(Error::invalid("retry.max_retries must be at most 10"));
        }
        if self.initial_backoff > self.max_backoff {
            return Err(Error::invalid("retry.initial_backoff must not exceed retry.max_backoff"));
        }
        Ok(())
    }
}

fn default_context_window() -> u32 {
    8192
}
fn default_ollama_url() -> String {
    "http://127.0.0.1:11434".to_owned()
}
fn default_ollama_model() -> String {
    "gpt-oss:20b".to_owned()
}
fn default_llamacpp_model() -> String {
    "llama.cpp".to_owned()
}
fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> serde_json::Result<LlmConfig> {
        // The config is format-agnostic; JSON keeps this crate free of a TOML dependency.
        serde_json::from_str(toml_text)
    }

    #[test]
    fn ollama_defaults_to_gpt_oss_tag() {
        let config = parse(r#"{"backends":[{"kind":"ollama"}]}"#).unwrap();
        let BackendConfig::Ollama(ollama) = &config.backends[0] else { unreachable!() };
        assert_eq!(ollama.model, "gpt-oss:20b");
        assert_eq!(ollama.endpoint, OllamaEndpoint::Chat);
        config.validate().unwrap();
    }

    #[test]
    fn local_backends_check_their_numbers() {
        let config = parse(r#"{"backends":[{"kind":"local"}]}"#).unwrap();
        assert!(matches!(&config.backends[0], BackendConfig::Local(c) if c.path.is_none()));
        config.validate().unwrap();
        assert!(LlmConfig::default().local_default);
        for bad in
            [r#"{"threads":0}"#, r#"{"max_concurrent":0}"#, r#"{"context_window":10}"#, r#"{"path":""}"#]
        {
            let mut value: serde_json::Value = serde_json::from_str(bad).unwrap();
            value["kind"] = "local".into();
            let config = parse(&format!(r#"{{"backends":[{value}]}}"#)).unwrap();
            assert!(config.validate().is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        let error =
            parse(r#"{"backends":[{"kind":"openai","base_url":"http://x/v1","model":"m","tmeout":1}]}"#);
        assert!(error.is_err());
    }

    #[test]
    fn bad_urls_and_duplicate_ids_are_refused() {
        let config = parse(r#"{"backends":[{"kind":"llamacpp","base_url":"localhost:8080"}]}"#).unwrap();
        assert!(config.validate().unwrap_err().to_string().contains("http://"));
        let config = parse(
            r#"{"backends":[{"kind":"ollama","id":"a"},{"kind":"llamacpp","id":"a","base_url":"http://h:1"}]}"#,
        )
        .unwrap();
        assert!(config.validate().unwrap_err().to_string().contains("used twice"));
    }

    #[test]
    fn durations_read_as_human_text() {
        let config = parse(
            r#"{"backends":[{"kind":"ollama","timeouts":{"first_token":"3s"},"retry":{"initial_backoff":"10ms"}}]}"#,
        )
        .unwrap();
        let BackendConfig::Ollama(ollama) = &config.backends[0] else { unreachable!() };
        assert_eq!(ollama.timeouts.first_token, Duration::from_secs(3));
        assert_eq!(ollama.timeouts.idle, TimeoutConfig::default().idle);
        assert_eq!(ollama.retry.initial_backoff, Duration::from_millis(10));
    }
}
