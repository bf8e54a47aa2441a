//! How a [`LocalEmbedder`](super::LocalEmbedder) is set up.

use std::path::PathBuf;

use capibara_core::{Error, Result};

/// Options of a [`LocalEmbedder`](super::LocalEmbedder). Build with [`LocalEmbedderOptions::new`] and
/// change the public fields; [`LocalEmbedder::load`](super::LocalEmbedder::load) validates them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEmbedderOptions {
    /// Directory holding `config.json`, `model.safetensors` and `tokenizer.json`.
    pub model_dir: PathBuf,
    /// The id reported by [`Embedder::model_id`](capibara_core::embed::Embedder::model_id).
    pub model_id: String,
    /// Longest input in tokens (special tokens included); longer texts are truncated. Clamped to the
    /// model's `max_position_embeddings` when loading.
    pub max_seq_len: usize,
    /// Texts per forward pass. Within one call, texts are sorted by token count before batching.
    pub batch_size: usize,
    /// Compute threads of this embedder (see the module docs for what they are and what is shared).
    pub threads: usize,
}

impl LocalEmbedderOptions {
    /// sentence-transformers' id of the default model.
    pub const DEFAULT_MODEL_ID: &'static str = "sentence-transformers/all-MiniLM-L6-v2";
    /// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2.
    pub const DEFAULT_MAX_SEQ_LEN: usize = 256;
    /// Default texts per forward pass.
    pub const DEFAULT_BATCH_SIZE: usize = 32;
    /// Default compute threads: one, so the embedder never competes with itself for a busy core.
    pub const DEFAULT_THREADS: usize = 1;
    /// Most compute threads accepted.
    pub const MAX_THREADS: usize = 256;

    /// The defaults for the model in `model_dir`.
    pub fn new(model_dir: impl Into<PathBuf>) -> Self {
        Self {
            model_dir: model_dir.into(),
            model_id: Self::DEFAULT_MODEL_ID.to_owned(),
            max_seq_len: Self::DEFAULT_MAX_SEQ_LEN,
            batch_size: Self::DEFAULT_BATCH_SIZE,
            threads: Self::DEFAULT_THREADS,
        }
    }

    /// Checks every field; the error names the first one out of range.
    pub fn validate(&self) -> Result<()> {
        if self.model_id.trim().is_empty() {
            return Err(Error::invalid("model_id is empty"));
        }
        if self.max_seq_len < 2 {
            return Err(Error::invalid(format!(
                "max_seq_len is {}; it must leave room for [CLS] and [SEP] (at least 2)",
                self.max_seq_len
            )));
        }
        if !(1..=super::MAX_TEXTS_PER_CALL).contains(&self.batch_size) {
            return Err(Error::invalid(format!(
                "batch_size is {}; it must be between 1 and {}",
                self.batch_size,
                super::MAX_TEXTS_PER_CALL
            )));
        }
        if !(1..=Self::MAX_THREADS).contains(&self.threads) {
            return Err(Error::invalid(format!(
                "threads is {}; it must be between 1 and {}",
                self.threads,
                Self::MAX_THREADS
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        let options = LocalEmbedderOptions::new("/models/minilm");
        assert_eq!(options.model_id, "sentence-transformers/all-MiniLM-L6-v2");
        assert_eq!((options.max_seq_len, options.batch_size, options.threads), (256, 32, 1));
        assert!(options.validate().is_ok());

        type Change = fn(&mut LocalEmbedderOptions);
        let cases: [(&str, Change); 6] = [
            ("model_id", |o| o.model_id = " ".into()),
            ("max_seq_len", |o| o.max_seq_len = 1),
            ("batch_size", |o| o.batch_size = 0),
            ("batch_size", |o| o.batch_size = 4096),
            ("threads", |o| o.threads = 0),
            ("threads", |o| o.threads = 1000),
        ];
        for (field, change) in cases {
            let mut options = LocalEmbedderOptions::new("/models/minilm");
            change(&mut options);
            let error = options.validate().err();
            assert!(
                matches!(&error, Some(capibara_core::Error::InvalidInput(m)) if m.starts_with(field)),
                "{field}: {error:?}"
            );
        }
    }
}
