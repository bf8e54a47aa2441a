//! [`LocalLlmOptions`]: which GGUF file to run and how much of the machine to give it.

use std::path::PathBuf;

use capibara_core::chat::MAX_TOKENS_LIMIT;
use capibara_core::{Error, Result};

/// Longest context window used, whatever the GGUF declares (a generation's KV cache is sized
/// for its prompt and answer, at most this many positions).
pub const MAX_CONTEXT_WINDOW: u32 = 8192;

/// How to run a local GGUF model; build with [`LocalLlmOptions::new`] and adjust the fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalLlmOptions {
    /// The GGUF file (llama architecture).
    pub model_path: PathBuf,
    /// Model name reported in answers and listings; defaults to the GGUF's `general.name`, else
    /// the file stem.
    pub model_name: Option<String>,
    /// CPU threads one generation uses. Default 1: candle's pool spin-waits, so two threads on a
    /// machine whose other core is busy run several times slower than one. Candle sizes its pools
    /// once per process from the environment: see [`crate::local::threads`].
    pub threads: usize,
    /// Generations running at once, each on its own OS thread with its own KV cache (weights are
    /// shared). Default: available cores / `threads`, at least 1.
    pub max_concurrent: usize,
    /// Requests allowed to wait for a free generation slot; beyond it new requests get
    /// [`Error::RateLimited`] with a `retry_after`. Default 64.
    pub max_queue: usize,
    /// Context window in tokens (prompt + answer); default the GGUF's `<arch>.context_length`,
    /// capped at [`MAX_CONTEXT_WINDOW`].
    pub context_window: Option<u32>,
    /// Answer length when a request sets no `max_tokens`. Default 512.
    pub default_max_tokens: u32,
    /// A Jinja chat template used instead of the GGUF's `tokenizer.chat_template`.
    pub chat_template: Option<String>,
    /// Largest f32 copy of the layer matrices kept for prompt processing, in bytes; 0 turns it
    /// off. Quantized matrices multiply a prompt one row at a time, several times slower than a
    /// float matrix product; with the copy, prompts run through `gemm` instead (decoding still
    /// reads the compact quantized matrices).
    /// Costs 4 bytes per parameter: 425 MB for SmolLM2-135M. Default [`DEFAULT_DENSE_PREFILL_BYTES`].
    pub dense_prefill_bytes: u64,
}

/// Default budget of [`LocalLlmOptions::dense_prefill_bytes`]: 1 GiB, enough for models up to
/// about 250M parameters.
pub const DEFAULT_DENSE_PREFILL_BYTES: u64 = 1 << 30;

impl LocalLlmOptions {
    /// Defaults for the model at `model_path`: one thread per generation, one generation per
    /// available core, 64 waiting requests, 512-token answers, the file's own context window
    /// and chat template.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            model_name: None,
            threads: 1,
            max_concurrent: default_concurrency(1),
            max_queue: 64,
            context_window: None,
            default_max_tokens: 512,
            chat_template: None,
            dense_prefill_bytes: DEFAULT_DENSE_PREFILL_BYTES,
        }
    }

    /// Sets `threads` and the matching default `max_concurrent` (available cores / threads).
    #[must_use]
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self.max_concurrent = default_concurrency(threads);
        self
    }

    /// Checks every field is usable.
    pub fn validate(&self) -> Result<()> {
        if self.model_path.as_os_str().is_empty() {
            return Err(Error::invalid("local model: model_path must not be empty"));
        }
        if self.model_name.as_deref().is_some_and(|name| name.trim().is_empty()) {
            return Err(Error::invalid("local model: model_name must not be empty when given"));
        }
        if self.threads == 0 {
            return Err(Error::invalid("local model: threads must be at least 1"));
        }
        if self.max_concurrent == 0 {
            return Err(Error::invalid("local model: max_concurrent must be at least 1"));
        }
        if let Some(window) = self.context_window
            && !(16..=MAX_CONTEXT_WINDOW).contains(&window)
        {
            return Err(Error::invalid(format!(
                "local model: context_window must be between 16 and {MAX_CONTEXT_WINDOW}, got {window}"
            )));
        }
        if self.default_max_tokens == 0 || self.default_max_tokens > MAX_TOKENS_LIMIT {
            return Err(Error::invalid(format!(
                "local model: default_max_tokens must be between 1 and {MAX_TOKENS_LIMIT}"
            )));
        }
        if self.chat_template.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(Error::invalid("local model: chat_template must not be empty when given"));
        }
        Ok(())
    }
}

/// Available cores divided by the threads each generation uses, at least 1.
pub fn default_concurrency(threads: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    (cores / threads.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_follow_the_threads() {
        let options = LocalLlmOptions::new("/m.gguf");
        assert_eq!(options.threads, 1);
        assert!(options.max_concurrent >= 1);
        options.validate().unwrap();
        let two = LocalLlmOptions::new("/m.gguf").with_threads(2);
        assert_eq!(two.max_concurrent, default_concurrency(2));
    }

    #[test]
    fn unusable_values_are_rejected() {
        let mut options = LocalLlmOptions::new("/m.gguf");
        options.threads = 0;
        assert!(options.validate().is_err());
        let mut options = LocalLlmOptions::new("/m.gguf");
        options.context_window = Some(1_000_000);
        assert!(options.validate().is_err());
        let mut options = LocalLlmOptions::new("/m.gguf");
        options.chat_template = Some("  ".into());
        assert!(options.validate().is_err());
        let mut options = LocalLlmOptions::new("/m.gguf");
        options.max_concurrent = 0;
        assert!(options.validate().is_err());
    }
}
