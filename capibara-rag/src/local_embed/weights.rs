//! BERT weights as plain `f32` buffers laid out for the forward pass: linear weights transposed to
//! `inputs × outputs` (row-major, what the matrix product reads fastest) and the query, key and value
//! projections fused into one `hidden × 3·hidden` matrix, so each layer starts with a single product.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use capibara_core::{Error, Result};

use super::config::BertConfig;

/// A dense layer `y = x·W + b` with `W` stored `inputs × outputs`.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    pub(crate) weight: Vec<f32>,
    pub(crate) bias: Vec<f32>,
    pub(crate) inputs: usize,
    pub(crate) outputs: usize,
}

/// Layer normalisation's scale and shift.
#[derive(Debug, Clone)]
pub(crate) struct Norm {
    pub(crate) gamma: Vec<f32>,
    pub(crate) beta: Vec<f32>,
}

/// One transformer layer.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    /// Query, key and value side by side: outputs `[0, h)`, `[h, 2h)`, `[2h, 3h)`.
    pub(crate) qkv: Linear,
    pub(crate) attention_output: Linear,
    pub(crate) attention_norm: Norm,
    pub(crate) intermediate: Linear,
    pub(crate) output: Linear,
    pub(crate) output_norm: Norm,
}

/// Every weight the encoder uses (the pooler is not: sentence embeddings mean-pool the last layer).
#[derive(Debug, Clone)]
pub(crate) struct BertWeights {
    /// `vocab_size × hidden`.
    pub(crate) word_embeddings: Vec<f32>,
    /// `max_position_embeddings × hidden`.
    pub(crate) position_embeddings: Vec<f32>,
    /// Row 0 of the token-type table: single-sentence inputs are all type 0.
    pub(crate) token_type_embedding: Vec<f32>,
    pub(crate) embedding_norm: Norm,
    pub(crate) layers: Vec<Layer>,
}

impl BertWeights {
    /// Reads `model.safetensors` (any float dtype; converted to f32).
    pub(crate) fn load(path: &Path, config: &BertConfig) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::NotFound(format!("{}: no such file", path.display())));
        }
        let tensors = candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| {
            Error::invalid(format!("{}: not a readable safetensors file: {e}", path.display()))
        })?;
        Self::from_tensors(&tensors, config).map_err(|e| e.context(&path.display().to_string()))
    }

    /// Takes the weights out of named tensors (Hugging Face names, with or without a `bert.` prefix).
    pub(crate) fn from_tensors(tensors: &HashMap<String, Tensor>, config: &BertConfig) -> Result<Self> {
        let prefix = ["", "bert."]
            .into_iter()
            .find(|p| tensors.contains_key(&format!("{p}embeddings.word_embeddings.weight")))
            .ok_or_else(|| {
                Error::invalid("no BERT weights in the file (embeddings.word_embeddings.weight is missing)")
            })?;
        let source = Source { tensors, prefix };
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let token_types =
            source.matrix("embeddings.token_type_embeddings.weight", config.type_vocab_size, h)?;
        let layers = (0..config.num_hidden_layers)
            .map(|n| {
                let at = |name: &str| format!("encoder.layer.{n}.{name}");
                Ok(Layer {
                    qkv: source.fused_linear(
                        &[
                            &at("attention.self.query"),
                            &at("attention.self.key"),
                            &at("attention.self.value"),
                        ],
                        h,
                        h,
                    )?,
                    attention_output: source.linear(&at("attention.output.dense"), h, h)?,
                    attention_norm: source.norm(&at("attention.output.LayerNorm"), h)?,
                    intermediate: source.linear(&at("intermediate.dense"), h, i)?,
                    output: source.linear(&at("output.dense"), i, h)?,
                    output_norm: source.norm(&at("output.LayerNorm"), h)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            word_embeddings: source.matrix("embeddings.word_embeddings.weight", config.vocab_size, h)?,
            position_embeddings: source.matrix(
                "embeddings.position_embeddings.weight",
                config.max_position_embeddings,
                h,
            )?,
            token_type_embedding: token_types[..h].to_vec(),
            embedding_norm: source.norm("embeddings.LayerNorm", h)?,
            layers,
        })
    }
}

/// Named tensors and the prefix their names carry.
struct Source<'a> {
    tensors: &'a HashMap<String, Tensor>,
    prefix: &'a str,
}

impl Source<'_> {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let full = format!("{}{name}", self.prefix);
        let tensor =
            self.tensors.get(&full).ok_or_else(|| Error::invalid(format!("tensor {full} is missing")))?;
        if tensor.dims() != shape {
            return Err(Error::invalid(format!(
                "tensor {full} has shape {:?}, expected {shape:?}",
                tensor.dims()
            )));
        }
        tensor.to_dtype(DType::F32).map_err(|e| Error::invalid(format!("tensor {full}: {e}")))
    }

    fn values(tensor: &Tensor) -> Result<Vec<f32>> {
        tensor
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| Error::internal(format!("reading a weight tensor: {e}")))
    }

    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Vec<f32>> {
        Self::values(&self.tensor(name, &[rows, cols])?)
    }

    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        Self::values(&self.tensor(name, &[len])?)
    }

    fn norm(&self, name: &str, width: usize) -> Result<Norm> {
        Ok(Norm {
            gamma: self.vector(&format!("{name}.weight"), width)?,
            beta: self.vector(&format!("{name}.bias"), width)?,
        })
    }

    fn linear(&self, name: &str, inputs: usize, outputs: usize) -> Result<Linear> {
        self.fused_linear(&[name], inputs, outputs)
    }

    /// Linear layers reading the same input, their outputs side by side (PyTorch stores `W` as
    /// `outputs × inputs`; stacking along outputs then transposing gives `inputs × Σ outputs`).
    fn fused_linear(&self, names: &[&str], inputs: usize, outputs: usize) -> Result<Linear> {
        let mut weights = Vec::with_capacity(names.len());
        let mut bias = Vec::with_capacity(names.len() * outputs);
        for name in names {
            weights.push(self.tensor(&format!("{name}.weight"), &[outputs, inputs])?);
            bias.extend(self.vector(&format!("{name}.bias"), outputs)?);
        }
        let stacked = Tensor::cat(&weights, 0)
            .and_then(|w| w.t())
            .and_then(|w| w.contiguous())
            .map_err(|e| Error::internal(format!("transposing {}: {e}", names.join(", "))))?;
        Ok(Linear { weight: Self::values(&stacked)?, bias, inputs, outputs: outputs * names.len() })
    }
}
