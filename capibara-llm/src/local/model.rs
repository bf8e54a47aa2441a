//! The llama forward pass over quantized GGUF weights.
//!
//! Candle's own `quantized_llama` grows its KV cache with a concatenation per token and copies
//! K and V once per query head (`repeat_kv`), so each decoded token moves the whole cache several
//! times. Here the weights are loaded once into [`Weights`] (shared by every generation thread)
//! and each generation owns a [`Session`]: a KV cache allocated once for the answer's length and
//! written in place. Prompt chunks run on candle's ops, with grouped-query attention that folds
//! the query heads of one KV head into the rows of a single matrix product instead of copying K
//! and V; single tokens (decoding) run on plain buffers (`decode`).

use std::io::{Read, Seek};
use std::sync::Arc;

use candle_core::quantized::QTensor;
use candle_core::quantized::gguf_file::Content;
use candle_core::{Device, Tensor};
use capibara_core::{Error, Result};

use super::decode::{self, Scratch};
use super::gguf::value_u32;
use super::linear::{Linear, model_error};

/// Hyper-parameters read from the GGUF metadata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Config {
    pub(crate) layers: usize,
    pub(crate) embedding: usize,
    pub(crate) heads: usize,
    pub(crate) kv_heads: usize,
    pub(crate) head_dim: usize,
    pub(crate) rms_eps: f32,
    pub(crate) rope_base: f32,
}

/// Parameters of the layers' matrices (`blk.*` tensors of two dimensions).
fn layer_parameters(content: &Content) -> u64 {
    content
        .tensor_infos
        .iter()
        .filter(|(name, info)| name.starts_with("blk.") && info.shape.rank() == 2)
        .map(|(_, info)| info.shape.elem_count() as u64)
        .sum()
}

#[derive(Debug)]
pub(crate) struct Layer {
    pub(crate) attention_norm: Vec<f32>,
    pub(crate) wq: Linear,
    pub(crate) wk: Linear,
    pub(crate) wv: Linear,
    pub(crate) wo: Linear,
    pub(crate) ffn_norm: Vec<f32>,
    pub(crate) gate: Linear,
    pub(crate) up: Linear,
    pub(crate) down: Linear,
}

/// The weights of one model, loaded once and shared.
#[derive(Debug)]
pub(crate) struct Weights {
    pub(crate) config: Config,
    embeddings: Arc<QTensor>,
    pub(crate) layers: Vec<Layer>,
    pub(crate) norm: Vec<f32>,
    pub(crate) output: Linear,
    /// Rotary tables, `positions × head_dim / 2`, row-major.
    cos: Vec<f32>,
    sin: Vec<f32>,
    positions: usize,
}

impl Weights {
    /// Reads every tensor of a llama GGUF; `positions` is the longest context to prepare for;
    /// the layer matrices get f32 copies for prompts when they fit in `dense_prefill_bytes`.
    pub(crate) fn load<R: Read + Seek>(
        content: &Content,
        reader: &mut R,
        positions: usize,
        dense_prefill_bytes: u64,
    ) -> Result<Self> {
        let device = Device::Cpu;
        let number = |key: &str| {
            content
                .metadata
                .get(key)
                .and_then(value_u32)
                .map(|v| v as usize)
                .ok_or_else(|| Error::invalid(format!("metadata `{key}` is missing")))
        };
        let float = |key: &str, default: f32| {
            content.metadata.get(key).and_then(|v| v.to_f32().ok()).unwrap_or(default)
        };
        let heads = number("llama.attention.head_count")?;
        let embedding = number("llama.embedding_length")?;
        let config = Config {
            layers: number("llama.block_count")?,
            embedding,
            heads,
            kv_heads: number("llama.attention.head_count_kv").unwrap_or(heads),
            head_dim: embedding / heads.max(1),
            rms_eps: float("llama.attention.layer_norm_rms_epsilon", 1e-5),
            rope_base: float("llama.rope.freq_base", 10_000.0),
        };
        if heads == 0 || config.kv_heads == 0 || heads % config.kv_heads != 0 || embedding % heads != 0 {
            return Err(Error::invalid(format!("unsupported attention shape: {config:?}")));
        }
        if let Ok(rope) = number("llama.rope.dimension_count")
            && rope != config.head_dim
        {
            return Err(Error::invalid(format!(
                "partial rotary embeddings ({rope} of {} dimensions) are not supported",
                config.head_dim
            )));
        }
        let mut tensor = |name: &str| {
            content.tensor(reader, name, &device).map_err(|e| Error::invalid(format!("tensor `{name}`: {e}")))
        };
        let vector = |t: QTensor| {
            t.dequantize(&Device::Cpu).and_then(|t| t.flatten_all()?.to_vec1::<f32>()).map_err(model_error)
        };
        let dense_prefill = layer_parameters(content) * 4 <= dense_prefill_bytes;
        let matrix = |weights| Linear::new(weights, dense_prefill);
        let embeddings = Arc::new(tensor("token_embd.weight")?);
        let norm = vector(tensor("output_norm.weight")?)?;
        // Many small models tie the output head to the embedding matrix. Only the last position
        // reaches the head, so it never needs the dense copy.
        let output = match tensor("output.weight") {
            Ok(output) => Linear::new(output, false)?,
            Err(_) => Linear::shared(embeddings.clone(), false)?,
        };
        let rope_factors = tensor("rope_freqs.weight").ok().map(vector).transpose()?;
        let mut layers = Vec::with_capacity(config.layers);
        for index in 0..config.layers {
            let mut weight = |part: &str| tensor(&format!("blk.{index}.{part}.weight"));
            layers.push(Layer {
                attention_norm: vector(weight("attn_norm")?)?,
                wq: matrix(weight("attn_q")?)?,
                wk: matrix(weight("attn_k")?)?,
                wv: matrix(weight("attn_v")?)?,
                wo: matrix(weight("attn_output")?)?,
                ffn_norm: vector(weight("ffn_norm")?)?,
                gate: matrix(weight("ffn_gate")?)?,
                up: matrix(weight("ffn_up")?)?,
                down: matrix(weight("ffn_down")?)?,
            });
        }
        let (cos, sin) = rotary_tables(&config, positions, rope_factors.as_deref());
        Ok(Self { config, embeddings, layers, norm, output, cos, sin, positions })
    }

    /// The embedding of `token`, into `out`.
    pub(crate) fn embed(&self, token: u32, out: &mut [f32]) -> Result<()> {
        let row = Tensor::new(&[token], &Device::Cpu)
            .and_then(|ids| self.embeddings.embedding(&ids))
            .and_then(|row| row.flatten_all()?.to_vec1::<f32>())
            .map_err(model_error)?;
        if row.len() != out.len() {
            return Err(Error::internal("embedding of an unexpected width"));
        }
        out.copy_from_slice(&row);
        Ok(())
    }

    /// The rotary `cos` and `sin` rows of `position`.
    pub(crate) fn rotary(&self, position: usize) -> (&[f32], &[f32]) {
        let half = self.config.head_dim / 2;
        let range = position * half..(position + 1) * half;
        (&self.cos[range.clone()], &self.sin[range])
    }

    /// The rotary tables of `length` positions from `start`, as `length × head_dim / 2` tensors.
    fn rotary_tensors(&self, start: usize, length: usize) -> candle_core::Result<(Tensor, Tensor)> {
        let half = self.config.head_dim / 2;
        let range = start * half..(start + length) * half;
        Ok((
            Tensor::from_slice(&self.cos[range.clone()], (length, half), &Device::Cpu)?,
            Tensor::from_slice(&self.sin[range], (length, half), &Device::Cpu)?,
        ))
    }
}

/// `cos` and `sin` of every position's angle, interleaved-pair (GGML "normal") convention.
fn rotary_tables(config: &Config, positions: usize, factors: Option<&[f32]>) -> (Vec<f32>, Vec<f32>) {
    let half = config.head_dim / 2;
    let mut inverse: Vec<f32> =
        (0..half).map(|i| 1.0 / config.rope_base.powf((2 * i) as f32 / config.head_dim as f32)).collect();
    if let Some(factors) = factors {
        for (frequency, factor) in inverse.iter_mut().zip(factors) {
            *frequency /= factor;
        }
    }
    let mut cos = Vec::with_capacity(positions * half);
    let mut sin = Vec::with_capacity(positions * half);
    for position in 0..positions {
        for frequency in &inverse {
            let angle = position as f32 * frequency;
            cos.push(angle.cos());
            sin.push(angle.sin());
        }
    }
    (cos, sin)
}

/// One layer's cached keys and values, each `kv_heads × capacity × head_dim`.
#[derive(Debug)]
pub(crate) struct KvCache {
    keys: Vec<f32>,
    values: Vec<f32>,
    capacity: usize,
    head_dim: usize,
}

impl KvCache {
    fn new(kv_heads: usize, capacity: usize, head_dim: usize) -> Self {
        let size = kv_heads * capacity * head_dim;
        Self { keys: vec![0.0; size], values: vec![0.0; size], capacity, head_dim }
    }

    pub(crate) fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// Stores `length` positions from `start`, `keys` and `values` laid out
    /// `kv_heads × length × head_dim`.
    pub(crate) fn store(&mut self, start: usize, keys: &[f32], values: &[f32]) {
        let width = keys.len() / (self.keys.len() / (self.capacity * self.head_dim));
        let stride = self.capacity * self.head_dim;
        for (head, (keys, values)) in keys.chunks_exact(width).zip(values.chunks_exact(width)).enumerate() {
            let at = head * stride + start * self.head_dim;
            self.keys[at..at + width].copy_from_slice(keys);
            self.values[at..at + width].copy_from_slice(values);
        }
    }

    /// The first `positions` keys and values of KV head `head`, `positions × head_dim` each.
    pub(crate) fn head(&self, head: usize, positions: usize) -> (&[f32], &[f32]) {
        let at = head * self.capacity * self.head_dim;
        let range = at..at + positions * self.head_dim;
        (&self.keys[range.clone()], &self.values[range])
    }

    /// The first `positions` of every head as `1 × kv_heads × positions × head_dim` tensors.
    fn tensors(&self, positions: usize) -> candle_core::Result<(Tensor, Tensor)> {
        let heads = self.keys.len() / (self.capacity * self.head_dim);
        let mut keys = Vec::with_capacity(heads * positions * self.head_dim);
        let mut values = Vec::with_capacity(heads * positions * self.head_dim);
        for head in 0..heads {
            let (k, v) = self.head(head, positions);
            keys.extend_from_slice(k);
            values.extend_from_slice(v);
        }
        let shape = (1, heads, positions, self.head_dim);
        Ok((Tensor::from_vec(keys, shape, &Device::Cpu)?, Tensor::from_vec(values, shape, &Device::Cpu)?))
    }
}

/// One generation's state: the KV cache and how much of it is filled.
#[derive(Debug)]
pub(crate) struct Session {
    weights: Arc<Weights>,
    cache: Vec<KvCache>,
    capacity: usize,
    filled: usize,
    scratch: Scratch,
}

impl Session {
    /// A session that can hold `capacity` positions (prompt and answer).
    pub(crate) fn new(weights: Arc<Weights>, capacity: usize) -> Result<Self> {
        let c = weights.config;
        if capacity > weights.positions {
            return Err(Error::ContextTooLong(format!(
                "{capacity} positions, the model was prepared for {}",
                weights.positions
            )));
        }
        let cache = (0..c.layers).map(|_| KvCache::new(c.kv_heads, capacity, c.head_dim)).collect();
        Ok(Self { weights, cache, capacity, filled: 0, scratch: Scratch::default() })
    }

    /// Runs `tokens` after what the session holds and returns the logits of the last one.
    pub(crate) fn forward(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        if tokens.is_empty() || self.filled + tokens.len() > self.capacity {
            return Err(Error::internal(format!(
                "KV cache: {} + {} positions, capacity {}",
                self.filled,
                tokens.len(),
                self.capacity
            )));
        }
        let logits = match tokens {
            [token] => decode::step(&self.weights, &mut self.cache, self.filled, *token, &mut self.scratch)?,
            _ => self.prefill(tokens).map_err(model_error)?,
        };
        self.filled += tokens.len();
        Ok(logits)
    }

    /// Several new positions at once, through candle's ops.
    fn prefill(&mut self, tokens: &[u32]) -> candle_core::Result<Vec<f32>> {
        let weights = self.weights.clone();
        let c = weights.config;
        let length = tokens.len();
        let start = self.filled;
        let total = start + length;
        let ids = Tensor::new(tokens, &Device::Cpu)?;
        let mut x = weights.embeddings.embedding(&ids)?.unsqueeze(0)?;
        let (cos, sin) = weights.rotary_tensors(start, length)?;
        let mask = (length > 1).then(|| causal_mask(start, length)).transpose()?;
        let scale = 1.0 / (c.head_dim as f64).sqrt();
        let group = c.heads / c.kv_heads;
        let heads = |linear: &Linear, h: &Tensor, count: usize| {
            linear.forward(h)?.reshape((1, length, count, c.head_dim))?.transpose(1, 2)?.contiguous()
        };
        let norm = |x: &Tensor, weight: &[f32]| {
            candle_nn::ops::rms_norm(x, &Tensor::from_slice(weight, weight.len(), &Device::Cpu)?, c.rms_eps)
        };
        for (layer, cache) in weights.layers.iter().zip(&mut self.cache) {
            let h = norm(&x, &layer.attention_norm)?;
            let q = heads(&layer.wq, &h, c.heads)?;
            let k = heads(&layer.wk, &h, c.kv_heads)?;
            let v = heads(&layer.wv, &h, c.kv_heads)?;
            let q = (candle_nn::rotary_emb::rope_i(&q, &cos, &sin)? * scale)?;
            let k = candle_nn::rotary_emb::rope_i(&k, &cos, &sin)?;
            cache.store(start, &k.flatten_all()?.to_vec1::<f32>()?, &v.flatten_all()?.to_vec1::<f32>()?);
            let (keys, values) = cache.tensors(total)?;
            // The `group` query heads sharing a KV head become rows of one product with it.
            let q = q.reshape((1, c.kv_heads, group * length, c.head_dim))?;
            let mut scores = q.matmul(&keys.t()?)?;
            if let Some(mask) = &mask {
                scores = scores
                    .reshape((1, c.kv_heads, group, length, total))?
                    .broadcast_add(mask)?
                    .reshape((1, c.kv_heads, group * length, total))?;
            }
            let attention = candle_nn::ops::softmax_last_dim(&scores)?.matmul(&values)?;
            let attention = attention
                .reshape((1, c.heads, length, c.head_dim))?
                .transpose(1, 2)?
                .reshape((1, length, c.embedding))?;
            x = (x + layer.wo.forward(&attention)?)?;
            let h = norm(&x, &layer.ffn_norm)?;
            let mlp = (layer.gate.forward(&h)?.silu()? * layer.up.forward(&h)?)?;
            x = (x + layer.down.forward(&mlp)?)?;
        }
        let last = x.narrow(1, length - 1, 1)?;
        let last = norm(&last, &weights.norm)?;
        weights.output.forward(&last)?.flatten_all()?.to_vec1::<f32>()
    }
}

/// Additive mask for `length` new positions after `start` cached ones: a query may see every
/// cached position and the new ones up to itself.
fn causal_mask(start: usize, length: usize) -> candle_core::Result<Tensor> {
    let total = start + length;
    let mask: Vec<f32> = (0..length)
        .flat_map(|i| (0..total).map(move |j| if j <= start + i { 0.0 } else { f32::NEG_INFINITY }))
        .collect();
    Tensor::from_vec(mask, (length, total), &Device::Cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_sees_the_cache_and_the_past() {
        let mask = causal_mask(2, 2).unwrap().to_vec2::<f32>().unwrap();
        let inf = f32::NEG_INFINITY;
        assert_eq!(mask, vec![vec![0.0, 0.0, 0.0, inf], vec![0.0, 0.0, 0.0, 0.0]]);
    }
}
