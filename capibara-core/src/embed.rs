//! The [`Embedder`] trait: text to unit vectors.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, Result};

/// Most texts one [`Embedder::embed`] call accepts.
pub const MAX_EMBED_INPUTS: usize = 2048;
/// Longest text, in bytes, an embedder accepts (models read only their first few hundred tokens).
pub const MAX_EMBED_TEXT_BYTES: usize = 1_000_000;

/// The input checks every embedder applies: at least one text, at most [`MAX_EMBED_INPUTS`],
/// none empty or whitespace-only, none longer than [`MAX_EMBED_TEXT_BYTES`].
pub fn validate_inputs(texts: &[String]) -> Result<()> {
    if texts.is_empty() {
        return Err(Error::invalid("input must hold at least one text"));
    }
    if texts.len() > MAX_EMBED_INPUTS {
        return Err(Error::TooLarge(format!(
            "input holds {} texts; at most {MAX_EMBED_INPUTS} per request",
            texts.len()
        )));
    }
    for (index, text) in texts.iter().enumerate() {
        if text.trim().is_empty() {
            return Err(Error::invalid(format!("input[{index}] is empty")));
        }
        if text.len() > MAX_EMBED_TEXT_BYTES {
            return Err(Error::TooLarge(format!(
                "input[{index}] has {} bytes; at most {MAX_EMBED_TEXT_BYTES}",
                text.len()
            )));
        }
    }
    Ok(())
}

/// Turns texts into unit-length vectors of a fixed dimension.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// Identifier of the model (e.g. `sentence-transformers/all-MiniLM-L6-v2`).
    fn model_id(&self) -> &str;

    /// Length of every vector this embedder returns.
    fn dimension(&self) -> usize;

    /// Embeds a batch; the output has one L2-normalised vector per input, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
}

#[async_trait]
impl<T: Embedder + ?Sized> Embedder for Arc<T> {
    fn model_id(&self) -> &str {
        (**self).model_id()
    }
    fn dimension(&self) -> usize {
        (**self).dimension()
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        (**self).embed(texts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_checked_with_the_offending_index() {
        validate_inputs(&["hola".to_owned()]).unwrap();
        assert!(validate_inputs(&[]).unwrap_err().to_string().contains("at least one"));
        let err = validate_inputs(&["a".to_owned(), " \n".to_owned()]).unwrap_err();
        assert_eq!(err.code(), "invalid_input");
        assert!(err.to_string().contains("input[1] is empty"), "{err}");
        let err = validate_inputs(&["x".repeat(MAX_EMBED_TEXT_BYTES + 1)]).unwrap_err();
        assert!(matches!(err, Error::TooLarge(_)), "{err:?}");
        assert!(matches!(
            validate_inputs(&vec!["a".to_owned(); MAX_EMBED_INPUTS + 1]),
            Err(Error::TooLarge(_))
        ));
    }
}
