//! The BERT encoder's forward pass over packed sequences, and sentence pooling.
//!
//! Sequences are not padded: their tokens are laid end to end (`T` rows in all), every dense layer is
//! one matrix product over all `T` rows, and attention runs per sequence and head over that
//! sequence's own tokens. The result for each token is the one a padded batch with an attention mask
//! gives (masked positions get exactly zero weight there), without computing the padding.

use capibara_core::{Error, Result};

use super::config::BertConfig;
use super::kernels;
use super::weights::{BertWeights, Linear};
use crate::kernels::{MatRef, matmul};

/// A loaded encoder.
#[derive(Debug, Clone)]
pub(crate) struct Bert {
    config: BertConfig,
    weights: BertWeights,
}

/// Buffers one thread reuses from batch to batch (they grow to the largest batch seen).
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    hidden: Vec<f32>,
    projected: Vec<f32>,
    qkv: Vec<f32>,
    context: Vec<f32>,
    intermediate: Vec<f32>,
    scores: Vec<f32>,
}

impl Bert {
    /// Pairs a checked configuration with its weights.
    pub(crate) fn new(config: BertConfig, weights: BertWeights) -> Self {
        Self { config, weights }
    }

    /// Width of the hidden states (and of the sentence vectors).
    pub(crate) fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    /// The last layer's hidden states of every token, sequences packed end to end (`T × hidden`).
    pub(crate) fn encode<'s>(&self, sequences: &[&[u32]], scratch: &'s mut Scratch) -> Result<&'s [f32]> {
        let h = self.config.hidden_size;
        let tokens = self.embed_tokens(sequences, &mut scratch.hidden)?;
        for layer in &self.weights.layers {
            linear(&mut scratch.qkv, &scratch.hidden, tokens, &layer.qkv)?;
            self.attention(sequences, scratch)?;
            linear(&mut scratch.projected, &scratch.context, tokens, &layer.attention_output)?;
            self.residual_norm(&mut scratch.projected, &scratch.hidden, &layer.attention_norm);
            std::mem::swap(&mut scratch.hidden, &mut scratch.projected);

            linear(&mut scratch.intermediate, &scratch.hidden, tokens, &layer.intermediate)?;
            kernels::gelu(&mut scratch.intermediate);
            linear(&mut scratch.projected, &scratch.intermediate, tokens, &layer.output)?;
            self.residual_norm(&mut scratch.projected, &scratch.hidden, &layer.output_norm);
            std::mem::swap(&mut scratch.hidden, &mut scratch.projected);
        }
        Ok(&scratch.hidden[..tokens * h])
    }

    /// Sentence embeddings: the mean of each sequence's last hidden states, scaled to unit length
    /// (sentence-transformers' `Pooling(mean)` + `Normalize`).
    pub(crate) fn embed(&self, sequences: &[&[u32]], scratch: &mut Scratch) -> Result<Vec<Vec<f32>>> {
        let h = self.config.hidden_size;
        let hidden = self.encode(sequences, scratch)?;
        let mut rows = hidden.chunks_exact(h);
        let mut out = Vec::with_capacity(sequences.len());
        for sequence in sequences {
            let mut mean = vec![0.0f32; h];
            for row in rows.by_ref().take(sequence.len()) {
                kernels::add_assign(&mut mean, row);
            }
            let count = sequence.len() as f32;
            mean.iter_mut().for_each(|v| *v /= count);
            let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            mean.iter_mut().for_each(|v| *v /= norm);
            out.push(mean);
        }
        Ok(out)
    }

    /// Word + token type (0) + position embeddings, layer-normalised, into `hidden`; returns `T`.
    fn embed_tokens(&self, sequences: &[&[u32]], hidden: &mut Vec<f32>) -> Result<usize> {
        let (h, config, weights) = (self.config.hidden_size, &self.config, &self.weights);
        let tokens: usize = sequences.iter().map(|s| s.len()).sum();
        hidden.clear();
        hidden.reserve(tokens * h);
        for sequence in sequences {
            if sequence.is_empty() || sequence.len() > config.max_position_embeddings {
                return Err(Error::internal(format!(
                    "a sequence of {} tokens does not fit 1..={} positions",
                    sequence.len(),
                    config.max_position_embeddings
                )));
            }
            for (position, &id) in sequence.iter().enumerate() {
                let id = id as usize;
                if id >= config.vocab_size {
                    return Err(Error::internal(format!(
                        "token id {id} is outside the vocabulary ({})",
                        config.vocab_size
                    )));
                }
                let word = &weights.word_embeddings[id * h..(id + 1) * h];
                let place = &weights.position_embeddings[position * h..(position + 1) * h];
                // Same order of additions as the reference: (word + token type) + position.
                hidden.extend(
                    word.iter().zip(&weights.token_type_embedding).zip(place).map(|((w, t), p)| (w + t) + p),
                );
            }
        }
        let norm = &weights.embedding_norm;
        kernels::layer_norm_rows(hidden, &norm.gamma, &norm.beta, config.layer_norm_eps as f32);
        Ok(tokens)
    }

    /// Multi-head self-attention of each sequence over its own tokens, from `qkv` into `context`.
    fn attention(&self, sequences: &[&[u32]], scratch: &mut Scratch) -> Result<()> {
        let h = self.config.hidden_size;
        let (heads, d) = (self.config.num_attention_heads, self.config.head_size());
        let width = 3 * h;
        let scale = 1.0 / (d as f32).sqrt();
        let tokens: usize = sequences.iter().map(|s| s.len()).sum();
        scratch.context.resize(tokens * h, 0.0);
        let mut start = 0;
        for sequence in sequences {
            let n = sequence.len();
            scratch.scores.resize(n * n, 0.0);
            let rows = &scratch.qkv[start * width..(start + n) * width];
            for head in 0..heads {
                let query = MatRef::rows(&rows[head * d..], n, d, width);
                let key_t = MatRef::transposed(&rows[h + head * d..], n, d, width);
                let value = MatRef::rows(&rows[2 * h + head * d..], n, d, width);
                matmul(&mut scratch.scores, n, false, query, key_t, scale)?;
                kernels::softmax_rows(&mut scratch.scores, n);
                let probabilities = MatRef::rows(&scratch.scores, n, n, n);
                let out = &mut scratch.context[start * h + head * d..(start + n) * h];
                matmul(out, h, false, probabilities, value, 1.0)?;
            }
            start += n;
        }
        Ok(())
    }

    /// `x ← LayerNorm(x + residual)`.
    fn residual_norm(&self, x: &mut [f32], residual: &[f32], norm: &super::weights::Norm) {
        kernels::add_assign(x, residual);
        kernels::layer_norm_rows(x, &norm.gamma, &norm.beta, self.config.layer_norm_eps as f32);
    }
}

/// `out = input·W + b` for `rows` rows.
fn linear(out: &mut Vec<f32>, input: &[f32], rows: usize, layer: &Linear) -> Result<()> {
    out.clear();
    for _ in 0..rows {
        out.extend_from_slice(&layer.bias);
    }
    matmul(
        out,
        layer.outputs,
        true,
        MatRef::rows(input, rows, layer.inputs, layer.inputs),
        MatRef::rows(&layer.weight, layer.inputs, layer.outputs, layer.outputs),
        1.0,
    )
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;
