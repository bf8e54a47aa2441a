//! Loading the configuration: `capibara.toml` (every key optional) overridden by `CAPIBARA_…` variables.
//!
//! Nested keys use a double underscore: `CAPIBARA_SERVER__PORT=8080`,
//! `CAPIBARA_STORAGE__DATABASE_URL=postgres://…`,
//! `CAPIBARA_LLM__BACKENDS='[{kind="ollama", base_url="http://127.0.0.1:11434"}]'`.

use std::path::Path;

use capibara_core::config::Config;
use capibara_core::{Error, Result};
use figment::Figment;
use figment::providers::{Env, Format, Json, Serialized, Toml};

/// Environment variable prefix for configuration overrides.
pub const ENV_PREFIX: &str = "CAPIBARA_";

/// Top-level sections that environment variables may override; other `CAPIBARA_*` variables
/// (e.g. `CAPIBARA_HOME`, `CAPIBARA_CONFIG`) are not configuration keys.
const SECTIONS: [&str; 8] = ["mode", "server", "llm", "chat", "storage", "uploads", "models", "embeddings"];

/// Reads the configuration from an optional TOML file and the environment, then validates it.
///
/// A file that is named but missing is an error (a typo must not silently fall back to defaults).
pub fn load(file: Option<&Path>) -> Result<Config> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(Error::invalid(format!("config file {} does not exist", path.display())));
        }
        figment = figment.merge(Toml::file(path));
    }
    extract_with_env(figment)
}

/// Reads the configuration from a JSON-shaped value laid out as `capibara.toml` (a Python dict,
/// a JavaScript object), overridden by the environment like a file, then validates it.
pub fn from_value(value: &serde_json::Value) -> Result<Config> {
    if !value.is_object() {
        return Err(Error::invalid("configuration: expected a table of sections (a dict or an object)"));
    }
    // Read as JSON text, so errors name the key, not a source location of this crate.
    let figment =
        Figment::from(Serialized::defaults(Config::default())).merge(Json::string(&value.to_string()));
    extract_with_env(figment)
}

fn extract_with_env(figment: Figment) -> Result<Config> {
    // The filter sees split keys in their original case (`LLM.BACKENDS`).
    let figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__").filter(|key| {
        let section = key.as_str().split('.').next().unwrap_or_default();
        SECTIONS.iter().any(|s| s.eq_ignore_ascii_case(section))
    }));
    let config: Config = figment
        .extract()
        .map_err(|e| Error::invalid(format!("configuration: {}", e.to_string().replace('\n', "; "))))?;
    config.validate()?;
    Ok(config)
}

/// Reads a configuration from TOML text (no environment), then validates it.
pub fn from_toml(text: &str) -> Result<Config> {
    let config: Config = Figment::from(Serialized::defaults(Config::default()))
        .merge(Toml::string(text))
        .extract()
        .map_err(|e| Error::invalid(format!("configuration: {e}")))?;
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use capibara_core::config::BackendConfig;

    #[test]
    fn the_embedding_kind_can_change_in_any_layer() {
        let config =
            from_toml("[embeddings]\nkind = \"openai\"\nbase_url = \"http://h:8080/v1\"\nmodel = \"bge-m3\"")
                .unwrap();
        assert!(matches!(config.embeddings, capibara_core::config::EmbeddingsConfig::Openai(_)));
        let config = from_toml("[embeddings]\nkind = \"none\"").unwrap();
        assert_eq!(config.embeddings, capibara_core::config::EmbeddingsConfig::None);
        let config = from_toml("[embeddings]\nthreads = 2").unwrap_err();
        assert!(config.to_string().contains("kind"), "{config}");
        let config =
            from_toml("[embeddings]\nkind = \"local\"\nthreads = 2\n[models]\nauto_pull = false").unwrap();
        assert!(
            matches!(config.embeddings, capibara_core::config::EmbeddingsConfig::Local(ref l) if l.threads == 2)
        );
        assert!(!config.models.auto_pull);
    }

    #[test]
    fn values_are_read_like_files() {
        let value = serde_json::json!({"server": {"port": 6001}, "embeddings": {"kind": "none"}});
        let config = from_value(&value).unwrap();
        assert_eq!(config.server.port, 6001);
        assert_eq!(config.embeddings, capibara_core::config::EmbeddingsConfig::None);
        let error = from_value(&serde_json::json!({"server": {"port": "many"}})).unwrap_err();
        assert!(error.to_string().contains("port"), "{error}");
        assert!(!error.to_string().contains(".rs"), "no source locations in errors: {error}");
        assert!(from_value(&serde_json::json!([1, 2])).is_err());
    }

    #[test]
    fn empty_text_gives_embedded_defaults() {
        let config = from_toml("").unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn backends_and_durations_read_from_toml() {
        let config = from_toml(
            r#"
            [server]
            port = 8080
            [[llm.backends]]
            kind = "ollama"
            base_url = "http://10.0.0.2:11434"
            timeouts = { first_token = "30s" }
            [[llm.backends]]
            kind = "openai"
            base_url = "http://10.0.0.3:8000/v1"
            model = "openai/gpt-oss-20b"
            "#,
        )
        .unwrap();
        assert_eq!(config.server.port, 8080);
        assert_eq!(config.llm.backends.len(), 2);
        let BackendConfig::Ollama(ollama) = &config.llm.backends[0] else { panic!("not ollama") };
        assert_eq!(ollama.model, "gpt-oss:20b");
        assert_eq!(ollama.timeouts.first_token.as_secs(), 30);
    }

    #[test]
    fn unknown_keys_and_invalid_values_are_errors() {
        assert!(from_toml("[server]\nprot = 1").unwrap_err().to_string().contains("prot"));
        assert!(from_toml("[server.cors]\nallowed_origins = [\"*\"]\nallow_credentials = true").is_err());
    }

    #[test]
    fn a_missing_file_is_an_error() {
        assert!(load(Some(Path::new("/nonexistent/capibara.toml"))).is_err());
    }
}
