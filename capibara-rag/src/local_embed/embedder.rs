//! [`LocalEmbedder`]: the [`Embedder`] that runs the model in this process.

use std::path::Path;

use async_trait::async_trait;
use capibara_core::embed::Embedder;
use capibara_core::{Error, Result};

use super::config::BertConfig;
use super::forward::Bert;
use super::options::LocalEmbedderOptions;
use super::tokenize::SentenceTokenizer;
use super::weights::BertWeights;
use super::worker::{Engine, Worker};
use super::{MAX_TEXT_BYTES, MAX_TEXTS_PER_CALL};

/// A BERT sentence embedder (all-MiniLM-L6-v2 by default) computed on this machine's CPU.
///
/// Each text becomes the mean of its last-layer token states, scaled to unit length — the
/// sentence-transformers pipeline, matching its vectors to about 1e-6.
///
/// Inputs:
/// - an empty or whitespace-only text is refused ([`Error::InvalidInput`] naming its index);
/// - a text longer than [`max_seq_len`](Self::max_seq_len) tokens (special tokens included) is
///   truncated to its first tokens, exactly as sentence-transformers does — the rest of the text does
///   not affect its vector;
/// - more than [`MAX_TEXTS_PER_CALL`] texts, or a text over [`MAX_TEXT_BYTES`] bytes, is
///   [`Error::TooLarge`];
/// - texts are `String`s, so they are valid UTF-8 by construction: the HTTP face rejects bodies
///   that are not valid UTF-8 before they get here.
///
/// The computation runs on the embedder's own threads, never on the async runtime's: `embed`
/// queues the request and awaits its answer. Concurrent requests take turns one batch at a time;
/// dropping an `embed` future abandons its request at the next batch boundary.
#[derive(Debug)]
pub struct LocalEmbedder {
    model_id: String,
    dimension: usize,
    max_seq_len: usize,
    threads: usize,
    worker: Worker,
}

impl LocalEmbedder {
    /// Loads `config.json`, `model.safetensors` and `tokenizer.json` from `options.model_dir` and
    /// starts the embedder's threads. Blocking (reads ~90 MB): from async code call it inside
    /// `spawn_blocking`.
    ///
    /// Errors: [`Error::InvalidInput`] for invalid options, a model that is not a BERT encoder, or
    /// an unreadable or corrupt file; [`Error::NotFound`] for a missing file. Both name the path.
    pub fn load(options: LocalEmbedderOptions) -> Result<Self> {
        options.validate()?;
        let dir = options.model_dir.as_path();
        let config = BertConfig::load(&dir.join("config.json"))?;
        let max_seq_len = options.max_seq_len.min(config.max_position_embeddings);
        let tokenizer = SentenceTokenizer::load(&dir.join("tokenizer.json"), max_seq_len)?;
        let weights = BertWeights::load(&dir.join("model.safetensors"), &config)?;
        let bert = Bert::new(config, weights);
        let dimension = bert.hidden_size();
        let engine = Engine { bert, tokenizer, batch_size: options.batch_size, threads: options.threads };
        tracing::debug!(
            model = %options.model_id,
            dir = %dir.display(),
            max_seq_len,
            threads = options.threads,
            "local embedder loaded"
        );
        Ok(Self {
            model_id: options.model_id,
            dimension,
            max_seq_len,
            threads: options.threads,
            worker: Worker::start(engine)?,
        })
    }

    /// Loads with the default options for the model in `model_dir`.
    pub fn from_dir(model_dir: &Path) -> Result<Self> {
        Self::load(LocalEmbedderOptions::new(model_dir))
    }

    /// The longest input in tokens after clamping to the model's position table.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// The number of compute threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Requests queued or being computed (for metrics; abandoned ones count until dropped).
    pub fn pending_requests(&self) -> usize {
        self.worker.pending()
    }
}

/// Refuses inputs the model must not see; see [`LocalEmbedder`]'s documentation.
pub(crate) fn check_inputs(texts: &[String]) -> Result<()> {
    if texts.len() > MAX_TEXTS_PER_CALL {
        return Err(Error::TooLarge(format!(
            "{} texts in one call; the limit is {MAX_TEXTS_PER_CALL}",
            texts.len()
        )));
    }
    for (i, text) in texts.iter().enumerate() {
        if text.len() > MAX_TEXT_BYTES {
            return Err(Error::TooLarge(format!(
                "input[{i}] is {} bytes; the limit is {MAX_TEXT_BYTES} bytes",
                text.len()
            )));
        }
        if text.trim().is_empty() {
            return Err(Error::invalid(format!("input[{i}] is empty")));
        }
    }
    Ok(())
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        check_inputs(texts)?;
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let answer = self.worker.submit(texts.to_vec())?;
        answer.await.map_err(|_| Error::unavailable("the embedding thread stopped before answering"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_checked_with_their_index_and_limits() {
        let ok = vec!["hola".to_owned(), "¿qué tal? 🦫".to_owned()];
        assert!(check_inputs(&ok).is_ok());
        assert!(check_inputs(&[]).is_ok());

        let blank = vec!["a".to_owned(), "b".to_owned(), "c".to_owned(), " \n\t ".to_owned()];
        assert_eq!(check_inputs(&blank), Err(Error::invalid("input[3] is empty")));
        assert_eq!(check_inputs(&[String::new()]), Err(Error::invalid("input[0] is empty")));

        let many = vec!["x".to_owned(); MAX_TEXTS_PER_CALL + 1];
        assert!(matches!(check_inputs(&many), Err(Error::TooLarge(m)) if m.contains("2048")));
        assert!(check_inputs(&many[1..]).is_ok());

        let huge = vec!["ok".to_owned(), "a".repeat(MAX_TEXT_BYTES + 1)];
        assert!(
            matches!(check_inputs(&huge), Err(Error::TooLarge(m)) if m.contains("input[1]") && m.contains("1000000"))
        );
        assert!(check_inputs(&["a".repeat(MAX_TEXT_BYTES)]).is_ok());
    }
}
