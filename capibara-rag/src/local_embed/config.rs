//! The BERT hyper-parameters read from a model's `config.json`, and the checks that it is a model
//! this forward pass computes correctly.

use std::path::Path;

use capibara_core::{Error, Result};
use serde::Deserialize;

/// What the forward pass needs from `config.json` (Hugging Face `BertConfig` field names).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct BertConfig {
    /// Declared model classes, e.g. `["BertModel"]`.
    #[serde(default)]
    pub(crate) architectures: Vec<String>,
    /// `bert` for the models this module runs.
    #[serde(default)]
    pub(crate) model_type: Option<String>,
    pub(crate) vocab_size: usize,
    pub(crate) hidden_size: usize,
    pub(crate) num_hidden_layers: usize,
    pub(crate) num_attention_heads: usize,
    pub(crate) intermediate_size: usize,
    pub(crate) hidden_act: String,
    pub(crate) max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    pub(crate) type_vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    pub(crate) layer_norm_eps: f64,
    #[serde(default)]
    pub(crate) position_embedding_type: Option<String>,
}

fn default_type_vocab_size() -> usize {
    2
}

fn default_layer_norm_eps() -> f64 {
    1e-12
}

impl BertConfig {
    /// Reads and checks `config.json`.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| super::io_error(path, &e))?;
        let config: Self = serde_json::from_str(&text)
            .map_err(|e| Error::invalid(format!("{}: not a BERT config.json: {e}", path.display())))?;
        config.validate().map_err(|e| e.context(&path.display().to_string()))?;
        Ok(config)
    }

    /// Refuses configurations this forward pass would compute wrongly.
    pub(crate) fn validate(&self) -> Result<()> {
        let is_bert_type = self.model_type.as_deref().is_none_or(|t| t == "bert");
        let is_bert_class =
            self.architectures.is_empty() || self.architectures.iter().any(|a| a.starts_with("Bert"));
        if !is_bert_type || !is_bert_class {
            return Err(Error::invalid(format!(
                "unsupported architecture (model_type {:?}, architectures {:?}); only BERT encoders are supported",
                self.model_type.as_deref().unwrap_or("unset"),
                self.architectures
            )));
        }
        if self.hidden_act != "gelu" {
            return Err(Error::invalid(format!(
                "unsupported hidden_act {:?}; only \"gelu\" (erf) is",
                self.hidden_act
            )));
        }
        if let Some(kind) = self.position_embedding_type.as_deref().filter(|k| *k != "absolute") {
            return Err(Error::invalid(format!(
                "unsupported position_embedding_type {kind:?}; only \"absolute\" is"
            )));
        }
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(Error::invalid(format!("{name} is 0")));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(Error::invalid(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            )));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err(Error::invalid(format!(
                "layer_norm_eps {} is not a positive number",
                self.layer_norm_eps
            )));
        }
        Ok(())
    }

    /// Width of one attention head.
    pub(crate) fn head_size(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const MINILM: &str = r#"{"architectures":["BertModel"],"hidden_act":"gelu","hidden_size":384,
        "intermediate_size":1536,"layer_norm_eps":1e-12,"max_position_embeddings":512,"model_type":"bert",
        "num_attention_heads":12,"num_hidden_layers":6,"position_embedding_type":"absolute",
        "type_vocab_size":2,"vocab_size":30522}"#;

    fn with(change: &str, value: serde_json::Value) -> BertConfig {
        let mut json: serde_json::Value = serde_json::from_str(MINILM).unwrap();
        json[change] = value;
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn accepts_minilm_and_refuses_other_architectures() {
        let config: BertConfig = serde_json::from_str(MINILM).unwrap();
        config.validate().unwrap();
        assert_eq!(config.head_size(), 32);

        let cases = [
            ("model_type", serde_json::json!("llama")),
            ("architectures", serde_json::json!(["LlamaForCausalLM"])),
            ("hidden_act", serde_json::json!("relu")),
            ("position_embedding_type", serde_json::json!("relative_key")),
            ("num_attention_heads", serde_json::json!(7)),
            ("num_hidden_layers", serde_json::json!(0)),
        ];
        for (field, value) in cases {
            let error = with(field, value.clone()).validate().unwrap_err();
            assert_eq!(error.code(), "invalid_input", "{field} = {value}: {error}");
        }
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = BertConfig::load(&dir.path().join("config.json")).unwrap_err();
        assert!(matches!(missing, Error::NotFound(ref m) if m.contains("config.json")), "{missing}");

        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"model_type":"gpt2"}"#).unwrap();
        let wrong = BertConfig::load(&path).unwrap_err();
        assert!(matches!(wrong, Error::InvalidInput(ref m) if m.contains("config.json")), "{wrong}");

        std::fs::write(&path, MINILM.replace("\"bert\"", "\"t5\"")).unwrap();
        let wrong = BertConfig::load(&path).unwrap_err();
        assert!(wrong.to_string().contains("unsupported architecture"), "{wrong}");
    }
}
