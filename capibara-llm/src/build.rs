//! Backends from configuration.

use std::sync::Arc;

use capibara_core::config::{BackendConfig, LlmConfig, LocalLlmConfig};
use capibara_core::llm::LlmBackend;
use capibara_core::{Error, Result};

use crate::fallback::FallbackChain;
use crate::llamacpp::LlamaCppBackend;
use crate::ollama::OllamaBackend;
use crate::openai::OpenAiBackend;

/// The backend one `llm.backends` entry describes, with its own connection pool.
pub fn build_backend(config: &BackendConfig) -> Result<Arc<dyn LlmBackend>> {
    Ok(match config {
        BackendConfig::Openai(config) => Arc::new(OpenAiBackend::new(config.clone())?),
        BackendConfig::Ollama(config) => Arc::new(OllamaBackend::new(config.clone())?),
        BackendConfig::Llamacpp(config) => Arc::new(LlamaCppBackend::new(config.clone())?),
        BackendConfig::Local(config) => local_backend(config)?,
    })
}

/// A local GGUF model; the composition root resolves a missing `path` to the default model first.
#[cfg(feature = "local-llm")]
fn local_backend(config: &LocalLlmConfig) -> Result<Arc<dyn LlmBackend>> {
    let path = config.path.as_ref().ok_or_else(|| {
        Error::invalid(
            "a local backend needs `path` (a GGUF file); `capibara serve` fills in the default model",
        )
    })?;
    let mut options = crate::local::LocalLlmOptions::new(path);
    options.model_name.clone_from(&config.model);
    if let Some(threads) = config.threads {
        options.threads = threads;
        options.max_concurrent = crate::local::options::default_concurrency(threads);
    }
    if let Some(max_concurrent) = config.max_concurrent {
        options.max_concurrent = max_concurrent;
    }
    if let Some(max_queue) = config.max_queue {
        options.max_queue = max_queue;
    }
    options.context_window = config.context_window;
    if let Some(max_tokens) = config.max_tokens {
        options.default_max_tokens = max_tokens;
    }
    options.chat_template.clone_from(&config.chat_template);
    if let Some(megabytes) = config.dense_prefill_mb {
        options.dense_prefill_bytes = megabytes.saturating_mul(1 << 20);
    }
    Ok(Arc::new(crate::local::LocalLlm::load(options)?))
}

#[cfg(not(feature = "local-llm"))]
fn local_backend(_config: &LocalLlmConfig) -> Result<Arc<dyn LlmBackend>> {
    Err(Error::invalid(
        "this build has no local-model support: rebuild with `--features local-llm` (or `make run`), \
         or configure a model server (kind = \"openai\", \"ollama\" or \"llamacpp\")",
    ))
}

/// The chat backend `llm` describes: `None` when no backend is configured, the backend itself
/// when there is one, and a [`FallbackChain`] over them, in order, when there are several.
pub fn build_chain(config: &LlmConfig) -> Result<Option<Arc<dyn LlmBackend>>> {
    let mut backends = config.backends.iter().map(build_backend).collect::<Result<Vec<_>>>()?;
    Ok(match backends.len() {
        0 => None,
        1 => backends.pop(),
        _ => Some(Arc::new(FallbackChain::new(backends)?)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> LlmConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn none_one_or_a_chain() {
        assert!(build_chain(&LlmConfig::default()).unwrap().is_none());
        let one = build_chain(&config(r#"{"backends":[{"kind":"ollama"}]}"#)).unwrap().unwrap();
        assert_eq!(one.id(), "ollama@http://127.0.0.1:11434");
        let chain = build_chain(&config(
            r#"{"backends":[{"kind":"openai","id":"vllm","base_url":"http://h:8000/v1","model":"gpt-oss-20b"},
                            {"kind":"llamacpp","base_url":"http://h:8080/"}]}"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(chain.id(), "chain(vllm, llamacpp@http://h:8080)");
        assert_eq!(chain.default_model(), "gpt-oss-20b");
    }

    #[test]
    fn a_missing_api_key_variable_is_a_configuration_error() {
        let Err(error) = build_chain(&config(
            r#"{"backends":[{"kind":"openai","base_url":"http://h/v1","model":"m","api_key_env":"CAPIBARA_TEST_SURELY_UNSET_KEY"}]}"#,
        )) else {
            panic!("a missing key variable must be refused");
        };
        assert_eq!(error.code(), "invalid_input");
        assert!(error.to_string().contains("CAPIBARA_TEST_SURELY_UNSET_KEY"));
    }
}
