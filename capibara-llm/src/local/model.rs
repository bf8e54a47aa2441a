//! The llama forward pass over quantized GGUF weights, written against candle's ops.
//!
//! Candle's own `quantized_llama` grows its KV cache with a concatenation per token and copies
//! K and V once per query head (`repeat_kv`), so each decoded token moves the whole cache several
//! times. Here the weights are loaded once into [`Weights`] (shared by every generation thread)
//! and each generation owns a [`Session`]: a KV cache allocated once for the answer's length and
//! written in place, and grouped-query attention that folds the query heads of one KV head into
//! the rows of a single matrix product instead of copying K and V. Weight matrices whose input
//! width keeps them off candle's fast int8 kernels are padded (see [`Linear`]).

use std::io::{Read, Seek};
use std::sync::Arc;

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{D, DType, Device, Module, Tensor};
use capibara_core::{Error, Result};

use super::gguf::value_u32;

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

/// Block width candle's repacked int8 kernels need along the input dimension (`QK_K`).
const REPACKED_BLOCK: usize = 256;

/// A weight matrix. Candle runs Q8_0 products with several rows (prompt chunks) through repacked
/// VNNI kernels, several times faster than its generic dot products, but only when the input width
/// is a multiple of 256; small models (SmolLM2: 576) miss that. On CPUs with VNNI such a matrix
/// gets a second copy with zero columns up to the next multiple, used for prompt chunks with the
/// inputs padded with zeros (the products are the same); single rows (decoding) stay on the
/// compact matrix, which reads less memory per token.
#[derive(Debug)]
struct Linear {
    matmul: QMatMul,
    /// The zero-padded copy and its input width, when there is one.
    wide: Option<(QMatMul, usize)>,
    /// Without VNNI: the f32 matrix, transposed, for prompt chunks (see
    /// `LocalLlmOptions::dense_prefill_bytes`).
    dense: Option<Tensor>,
}

impl Linear {
    fn new(weights: QTensor, dense_prefill: bool) -> Result<Self> {
        Self::shared(Arc::new(weights), dense_prefill)
    }

    fn shared(weights: Arc<QTensor>, dense_prefill: bool) -> Result<Self> {
        let (_, k) = weights.shape().dims2().map_err(model_error)?;
        let padded = k.next_multiple_of(REPACKED_BLOCK);
        let wide = if padded != k && weights.dtype() == GgmlDType::Q8_0 && int8_dot_products() {
            // Q8_0 blocks re-quantize to themselves, so only the zero columns are new.
            let wide = weights
                .dequantize(&Device::Cpu)
                .and_then(|w| w.pad_with_zeros(1, 0, padded - k))
                .and_then(|w| QTensor::quantize(&w, GgmlDType::Q8_0))
                .and_then(QMatMul::from_qtensor)
                .map_err(model_error)?;
            Some((wide, padded))
        } else {
            None
        };
        let dense = if dense_prefill && wide.is_none() {
            Some(weights.dequantize(&Device::Cpu).and_then(|w| w.t()).map_err(model_error)?)
        } else {
            None
        };
        Ok(Self { matmul: QMatMul::from_arc(weights).map_err(model_error)?, wide, dense })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (rows, k) = (x.elem_count() / x.dim(D::Minus1)?, x.dim(D::Minus1)?);
        match &self.wide {
            Some((wide, width)) if rows > 1 => wide.forward(&x.pad_with_zeros(D::Minus1, 0, width - k)?),
            _ => match &self.dense {
                Some(dense) if rows > 1 => x.broadcast_matmul(dense),
                _ => self.matmul.forward(x),
            },
        }
    }
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

/// Whether the CPU has the VNNI int8 dot products candle's repacked Q8_0 kernels use.
fn int8_dot_products() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        (std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vnni"))
            || std::arch::is_x86_feature_detected!("avxvnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[derive(Debug)]
struct Layer {
    attention_norm: Tensor,
    wq: Linear,
    wk: Linear,
    wv: Linear,
    wo: Linear,
    ffn_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// The weights of one model, loaded once and shared.
#[derive(Debug)]
pub(crate) struct Weights {
    config: Config,
    embeddings: Arc<QTensor>,
    layers: Vec<Layer>,
    norm: Tensor,
    output: Linear,
    /// Rotary tables, `positions × head_dim / 2`.
    cos: Tensor,
    sin: Tensor,
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(model_error)`
fn model_error(error: candle_core::Error) -> Error {
    Error::internal(format!("local model: {error}"))
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
        let vector = |t: QTensor| t.dequantize(&Device::Cpu).map_err(model_error);
        let dense_prefill = !int8_dot_products() && layer_parameters(content) * 4 <= dense_prefill_bytes;
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
        let (cos, sin) = rotary_tables(&config, positions, rope_factors.as_ref())?;
        Ok(Self { config, embeddings, layers, norm, output, cos, sin })
    }
}

/// `cos` and `sin` of every position's angle, interleaved-pair (GGML "normal") convention.
fn rotary_tables(config: &Config, positions: usize, factors: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
    let half = config.head_dim / 2;
    let mut inverse: Vec<f32> =
        (0..half).map(|i| 1.0 / config.rope_base.powf((2 * i) as f32 / config.head_dim as f32)).collect();
    if let Some(factors) = factors {
        let factors = factors.to_vec1::<f32>().map_err(model_error)?;
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
    let table =
        |values: Vec<f32>| Tensor::from_vec(values, (positions, half), &Device::Cpu).map_err(model_error);
    Ok((table(cos)?, table(sin)?))
}

/// One generation's state: the KV cache and how much of it is filled.
#[derive(Debug)]
pub(crate) struct Session {
    weights: Arc<Weights>,
    /// Per layer, K and V of shape `1 × kv_heads × capacity × head_dim`.
    cache: Vec<(Tensor, Tensor)>,
    capacity: usize,
    filled: usize,
}

impl Session {
    /// A session that can hold `capacity` positions (prompt and answer).
    pub(crate) fn new(weights: Arc<Weights>, capacity: usize) -> Result<Self> {
        let c = weights.config;
        let positions = weights.cos.dim(0).map_err(model_error)?;
        if capacity > positions {
            return Err(Error::ContextTooLong(format!(
                "{capacity} positions, the model was prepared for {positions}"
            )));
        }
        let shape = (1, c.kv_heads, capacity, c.head_dim);
        let cache = (0..c.layers)
            .map(|_| {
                Ok((
                    Tensor::zeros(shape, DType::F32, &Device::Cpu)?,
                    Tensor::zeros(shape, DType::F32, &Device::Cpu)?,
                ))
            })
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(model_error)?;
        Ok(Self { weights, cache, capacity, filled: 0 })
    }

    /// Runs `tokens` after what the session holds and returns the logits of the last one.
    pub(crate) fn forward(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        if self.filled + tokens.len() > self.capacity {
            return Err(Error::internal(format!(
                "KV cache full: {} + {} positions > {}",
                self.filled,
                tokens.len(),
                self.capacity
            )));
        }
        let logits = self.run(tokens).map_err(model_error)?;
        self.filled += tokens.len();
        Ok(logits)
    }

    fn run(&mut self, tokens: &[u32]) -> candle_core::Result<Vec<f32>> {
        let weights = self.weights.clone();
        let c = weights.config;
        let length = tokens.len();
        let start = self.filled;
        let total = start + length;
        let ids = Tensor::new(tokens, &Device::Cpu)?;
        let mut x = weights.embeddings.embedding(&ids)?.unsqueeze(0)?;
        let cos = weights.cos.narrow(0, start, length)?;
        let sin = weights.sin.narrow(0, start, length)?;
        let mask = (length > 1).then(|| causal_mask(start, length)).transpose()?;
        let scale = 1.0 / (c.head_dim as f64).sqrt();
        let group = c.heads / c.kv_heads;
        for (layer, (k_cache, v_cache)) in weights.layers.iter().zip(&self.cache) {
            let h = candle_nn::ops::rms_norm(&x, &layer.attention_norm, c.rms_eps)?;
            let q = layer
                .wq
                .forward(&h)?
                .reshape((1, length, c.heads, c.head_dim))?
                .transpose(1, 2)?
                .contiguous()?;
            let k = layer
                .wk
                .forward(&h)?
                .reshape((1, length, c.kv_heads, c.head_dim))?
                .transpose(1, 2)?
                .contiguous()?;
            let v = layer
                .wv
                .forward(&h)?
                .reshape((1, length, c.kv_heads, c.head_dim))?
                .transpose(1, 2)?
                .contiguous()?;
            let q = (candle_nn::rotary_emb::rope_i(&q, &cos, &sin)? * scale)?;
            let k = candle_nn::rotary_emb::rope_i(&k, &cos, &sin)?;
            k_cache.slice_set(&k, 2, start)?;
            v_cache.slice_set(&v, 2, start)?;
            let keys = k_cache.narrow(2, 0, total)?;
            let values = v_cache.narrow(2, 0, total)?;
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
            let h = candle_nn::ops::rms_norm(&x, &layer.ffn_norm, c.rms_eps)?;
            let mlp = (layer.gate.forward(&h)?.silu()? * layer.up.forward(&h)?)?;
            x = (x + layer.down.forward(&mlp)?)?;
        }
        let last = x.narrow(1, length - 1, 1)?;
        let last = candle_nn::ops::rms_norm(&last, &weights.norm, c.rms_eps)?;
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
