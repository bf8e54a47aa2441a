//! Configuration types. Every key is optional; with no file at all everything is embedded.
//!
//! Loading (file + `CAPIBARA_…` environment overrides) lives in the composition root
//! (`capibara-server`); this module only defines the data and checks it.

mod llm;
mod models;
mod retrieval;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use llm::{
    BackendConfig, LlamaCppConfig, LlmConfig, LocalLlmConfig, OllamaConfig, OllamaEndpoint, OpenAiConfig,
    PromptFormat, RetryConfig, TimeoutConfig,
};
pub use models::{EmbeddingsConfig, LocalEmbeddingsConfig, ModelsConfig, RemoteEmbeddingsConfig};
pub use retrieval::{
    CacheConfig, EscalationSettings, FaissIndexKind, FullRagSettings, Fusion, FusionWeights, IngestSettings,
    Language, MiniRagSettings, RagSettings, RetrievalConfig, VectorStoreConfig,
};

use crate::error::{Error, Result};

/// The whole configuration (`capibara.toml`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `development` (default) or `production` (refuses to start without required secrets).
    pub mode: Mode,
    /// HTTP server.
    pub server: ServerConfig,
    /// Chat models.
    pub llm: LlmConfig,
    /// Conversation defaults.
    pub chat: ChatConfig,
    /// Where data lives.
    pub storage: StorageConfig,
    /// File uploads.
    pub uploads: UploadConfig,
    /// Local model files.
    pub models: ModelsConfig,
    /// The embedding model. Left out when serialized at its default, so layered configuration
    /// (defaults, then a file, then the environment) can switch `kind` without the default's keys.
    #[serde(skip_serializing_if = "EmbeddingsConfig::is_default")]
    pub embeddings: EmbeddingsConfig,
    /// Retrieval: vector store, fusion, mini/full depths, cache.
    pub retrieval: RetrievalConfig,
}

impl Config {
    /// Checks values that serde cannot (ranges, combinations, URLs).
    pub fn validate(&self) -> Result<()> {
        self.server.validate()?;
        self.llm.validate()?;
        self.chat.validate()?;
        self.uploads.validate()?;
        self.embeddings.validate()?;
        self.retrieval.validate()?;
        self.storage.validate()
    }
}

/// Deployment mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Friendly defaults for a laptop.
    #[default]
    Development,
    /// Strict: secrets must be configured.
    Production,
}

/// HTTP server settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind; loopback by default.
    pub bind: IpAddr,
    /// Port; 5001 like the original chat service.
    pub port: u16,
    /// Cross-origin access for browser frontends.
    pub cors: CorsConfig,
    /// Largest JSON body accepted.
    pub max_json_bytes: usize,
    /// Longest a non-streaming request may take end to end.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Requests handled at once; more wait in line (back-pressure, not errors).
    pub max_concurrent_requests: usize,
    /// How long shutdown waits for open streams.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 5001,
            cors: CorsConfig::default(),
            max_json_bytes: 4 * 1024 * 1024,
            request_timeout: Duration::from_secs(600),
            max_concurrent_requests: 4096,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl ServerConfig {
    fn validate(&self) -> Result<()> {
        if self.max_json_bytes < 1024 {
            return Err(Error::invalid("server.max_json_bytes must be at least 1024"));
        }
        if self.max_concurrent_requests == 0 {
            return Err(Error::invalid("server.max_concurrent_requests must be at least 1"));
        }
        if self.request_timeout.is_zero() {
            return Err(Error::invalid("server.request_timeout must be positive"));
        }
        self.cors.validate()
    }
}

/// Which browser origins may call the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Exact origins (`http://localhost:8000`), or `["*"]` for any origin without credentials.
    pub allowed_origins: Vec<String>,
    /// Allow cookies and `Authorization` from those origins; never combined with `*`.
    pub allow_credentials: bool,
    /// How long browsers may cache a preflight answer.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
}

impl Default for CorsConfig {
    fn default() -> Self {
        // The origins the original frontends are served from during local development.
        let origins = [
            "http://localhost:8000",
            "http://127.0.0.1:8000",
            "http://localhost:5500",
            "http://127.0.0.1:5500",
        ];
        Self {
            allowed_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            allow_credentials: false,
            max_age: Duration::from_secs(600),
        }
    }
}

impl CorsConfig {
    fn validate(&self) -> Result<()> {
        let wildcard = self.allowed_origins.iter().any(|o| o == "*");
        if wildcard && self.allow_credentials {
            return Err(Error::invalid(
                "server.cors: a wildcard origin cannot be combined with allow_credentials = true; list the origins",
            ));
        }
        if wildcard && self.allowed_origins.len() > 1 {
            return Err(Error::invalid("server.cors: `*` must be the only origin when used"));
        }
        for origin in self.allowed_origins.iter().filter(|o| *o != "*") {
            let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.ends_with('/')
                && !origin.contains(char::is_whitespace);
            if !valid {
                return Err(Error::invalid(format!(
                    "server.cors: `{origin}` is not an origin (scheme://host[:port], no trailing slash)"
                )));
            }
        }
        Ok(())
    }
}

/// Defaults for conversations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// System prompt; the built-in Spanish Capibara prompt when unset.
    pub system_prompt: Option<String>,
    /// `max_tokens` when a request gives none.
    pub default_max_tokens: u32,
    /// Temperature when a request gives none.
    pub default_temperature: f32,
    /// Most stored messages loaded as history before trimming to the context budget.
    pub history_messages: usize,
    /// Longest user message accepted, in characters.
    pub max_message_chars: usize,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            system_prompt: None,
            default_max_tokens: 1024,
            default_temperature: 0.7,
            history_messages: 100,
            max_message_chars: 100_000,
        }
    }
}

impl ChatConfig {
    fn validate(&self) -> Result<()> {
        if self.default_max_tokens == 0 {
            return Err(Error::invalid("chat.default_max_tokens must be at least 1"));
        }
        if !(0.0..=2.0).contains(&self.default_temperature) {
            return Err(Error::invalid("chat.default_temperature must be between 0 and 2"));
        }
        if self.max_message_chars == 0 {
            return Err(Error::invalid("chat.max_message_chars must be at least 1"));
        }
        Ok(())
    }
}

/// Where data lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory for the SQLite database and uploaded files.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; a SQLite file in `data_dir` when unset.
    pub database_url: Option<String>,
    /// Connections in the database pool.
    pub max_connections: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self { data_dir: PathBuf::from("capibara-data"), database_url: None, max_connections: 16 }
    }
}

impl StorageConfig {
    fn validate(&self) -> Result<()> {
        if let Some(url) = &self.database_url
            && !["sqlite:", "postgres://", "postgresql://"].iter().any(|p| url.starts_with(p))
        {
            return Err(Error::invalid(
                "storage.database_url must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        if let Some(url) = &self.database_url
            && (url.contains(":memory:") || url.contains("mode=memory"))
        {
            return Err(Error::invalid(
                "storage.database_url: an in-memory SQLite database would lose every conversation; use a file",
            ));
        }
        if self.max_connections == 0 {
            return Err(Error::invalid("storage.max_connections must be at least 1"));
        }
        Ok(())
    }

    /// The database URL in effect with any password replaced by `***`, for logs and messages.
    pub fn effective_database_url_redacted(&self) -> String {
        redact_password(&self.effective_database_url())
    }

    /// The database URL in effect: the configured one, or a SQLite file in the data dir.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("capibara.db").display()),
        }
    }
}

/// Replaces the password of a `scheme://user:password@host` URL with `***`.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// File uploads on `/api/chat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadConfig {
    /// Largest file accepted, in bytes.
    pub max_file_bytes: usize,
    /// Most files per request.
    pub max_files: usize,
    /// Extensions accepted (lowercase, no dot); anything else is rejected with a clear error.
    pub allowed_extensions: BTreeSet<String>,
    /// Extensions whose text is given to the model.
    pub text_extensions: BTreeSet<String>,
    /// Most characters of each text file given to the model (the rest is cut, and the model told).
    pub max_text_chars: usize,
}

impl Default for UploadConfig {
    fn default() -> Self {
        let set = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
        Self {
            max_file_bytes: 10 * 1024 * 1024,
            max_files: 10,
            allowed_extensions: set(&[
                "png", "jpg", "jpeg", "gif", "pdf", "doc", "docx", "txt", "csv", "xlsx", "xls", "pptx",
                "ppt", "zip", "rar", "md", "json",
            ]),
            text_extensions: set(&["txt", "md", "csv", "json"]),
            max_text_chars: 20_000,
        }
    }
}

impl UploadConfig {
    fn validate(&self) -> Result<()> {
        if self.max_file_bytes == 0 || self.max_files == 0 {
            return Err(Error::invalid("uploads.max_file_bytes and uploads.max_files must be at least 1"));
        }
        if let Some(ext) = self.text_extensions.iter().find(|e| !self.allowed_extensions.contains(*e)) {
            return Err(Error::invalid(format!(
                "uploads.text_extensions: `{ext}` is not in allowed_extensions"
            )));
        }
        Ok(())
    }

    /// Largest multipart body: every file at its limit plus room for the form fields.
    pub fn max_request_bytes(&self) -> usize {
        self.max_file_bytes.saturating_mul(self.max_files).saturating_add(1024 * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_local() {
        let config = Config::default();
        config.validate().unwrap();
        assert!(config.server.bind.is_loopback());
        assert_eq!(config.server.port, 5001);
        assert!(config.llm.backends.is_empty());
    }

    #[test]
    fn wildcard_cors_with_credentials_is_refused() {
        let mut config = Config::default();
        config.server.cors.allowed_origins = vec!["*".into()];
        config.validate().unwrap();
        config.server.cors.allow_credentials = true;
        assert!(config.validate().unwrap_err().to_string().contains("wildcard"));
    }

    #[test]
    fn malformed_origins_are_refused() {
        let mut config = Config::default();
        config.server.cors.allowed_origins = vec!["http://localhost:8000/".into()];
        assert!(config.validate().is_err());
    }

    #[test]
    fn in_memory_databases_are_refused() {
        let mut config = Config::default();
        config.storage.database_url = Some("sqlite::memory:".into());
        assert!(config.validate().unwrap_err().to_string().contains("in-memory"));
        config.storage.database_url = Some("sqlite://x.db?mode=memory".into());
        assert!(config.validate().is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_password("postgres://u:secret@db:5432/x"), "postgres://u:***@db:5432/x");
        assert_eq!(redact_password("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact_password("sqlite://data/c.db"), "sqlite://data/c.db");
    }

    #[test]
    fn database_url_defaults_to_sqlite_in_data_dir() {
        let storage = StorageConfig { data_dir: "/tmp/x".into(), ..StorageConfig::default() };
        assert_eq!(storage.effective_database_url(), "sqlite:///tmp/x/capibara.db?mode=rwc");
    }
}
