//! Text to token ids with the model's `tokenizer.json`, truncated the way sentence-transformers does.

use std::path::Path;

use capibara_core::{Error, Result};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// The model's tokenizer with truncation at `max_seq_len` tokens (special tokens included) and no padding.
///
/// The `tokenizer.json` shipped with the model truncates and pads every text to 128 tokens, while
/// sentence-transformers runs all-MiniLM-L6-v2 with `max_seq_length` 256; both settings are
/// replaced here. Padding is switched off because the forward pass packs sequences without it.
#[derive(Debug, Clone)]
pub(crate) struct SentenceTokenizer {
    inner: Tokenizer,
}

impl SentenceTokenizer {
    /// Loads `tokenizer.json` and sets truncation to `max_seq_len` tokens.
    pub(crate) fn load(path: &Path, max_seq_len: usize) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::NotFound(format!("{}: no such file", path.display())));
        }
        let mut inner = Tokenizer::from_file(path)
            .map_err(|e| Error::invalid(format!("{}: not a usable tokenizer.json: {e}", path.display())))?;
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_seq_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| {
                Error::invalid(format!("{}: cannot truncate to {max_seq_len}: {e}", path.display()))
            })?;
        inner.with_padding(None);
        Ok(Self { inner })
    }

    /// Token ids of one text, with `[CLS]` and `[SEP]`, at most `max_seq_len` of them.
    pub(crate) fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding =
            self.inner.encode_fast(text, true).map_err(|e| Error::internal(format!("tokenizing: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }
}
