//! A weight matrix of the model and the ways a product with it runs.
//!
//! - Q8_0 matrices are unpacked into a [`Q8Matrix`] and multiplied by this crate's kernels
//!   (`q8`); other GGUF types go through candle's `QMatMul`.
//! - Prompt chunks (several rows): an f32 copy, transposed, multiplied with `gemm`, when the
//!   layers fit `LocalLlmOptions::dense_prefill_bytes`; the quantized kernels otherwise.
//!
//! Single rows (decoding) always read the compact matrix, which reads the least memory per token.
//!
//! Candle's repacked VNNI kernels are not used: they quantize the activations in blocks of 256
//! with one scale (GGML's `Q8_K`), which moves logits by about one unit against Q8_0 activations
//! and the dense products, enough to change greedy answers.

use std::sync::Arc;

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{D, Device, Module, Tensor};
use capibara_core::{Error, Result};

use super::q8::{self, Product, Q8Matrix, Q8Vector};

#[derive(Debug)]
enum Kernel {
    Q8(Q8Matrix),
    Candle(QMatMul),
}

#[derive(Debug)]
pub(crate) struct Linear {
    kernel: Kernel,
    rows: usize,
    /// The f32 matrix, transposed, for prompt chunks.
    dense: Option<Tensor>,
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(model_error)`
pub(crate) fn model_error(error: candle_core::Error) -> Error {
    Error::internal(format!("local model: {error}"))
}

impl Linear {
    pub(crate) fn new(weights: QTensor, dense_prefill: bool) -> Result<Self> {
        Self::shared(Arc::new(weights), dense_prefill)
    }

    pub(crate) fn shared(weights: Arc<QTensor>, dense_prefill: bool) -> Result<Self> {
        let (rows, _) = weights.shape().dims2().map_err(model_error)?;
        let dense = if dense_prefill {
            Some(weights.dequantize(&Device::Cpu).and_then(|w| w.t()).map_err(model_error)?)
        } else {
            None
        };
        let kernel = match Q8Matrix::from_qtensor(&weights)? {
            Some(matrix) => Kernel::Q8(matrix),
            None => Kernel::Candle(QMatMul::from_arc(weights).map_err(model_error)?),
        };
        Ok(Self { kernel, rows, dense })
    }

    /// Output width.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// `x · Wᵀ` for `x` of shape `… × k`.
    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let k = x.dim(D::Minus1)?;
        let rows = x.elem_count() / k;
        if rows > 1
            && let Some(dense) = &self.dense
        {
            return x.broadcast_matmul(dense);
        }
        match &self.kernel {
            Kernel::Candle(matmul) => matmul.forward(x),
            Kernel::Q8(matrix) => {
                let mut shape = x.dims().to_vec();
                if let Some(last) = shape.last_mut() {
                    *last = self.rows;
                }
                let input = x.flatten_all()?.to_vec1::<f32>()?;
                let mut out = vec![0.0; rows * self.rows];
                let mut quantized = Q8Vector::default();
                for (x, out) in input.chunks_exact(k).zip(out.chunks_exact_mut(self.rows)) {
                    quantized.quantize(x);
                    q8::multiply(&mut [Product { matrix, out }], &quantized)
                        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
                }
                Tensor::from_vec(out, shape, &Device::Cpu)
            }
        }
    }
}

/// `out_i = W_i · x` for every pair, `x` given as floats and, once quantized, as Q8_0: the Q8_0
/// matrices share one trip through the thread pool, the others go through candle one by one.
pub(crate) fn project(
    products: &mut [(&Linear, &mut [f32])],
    x: &[f32],
    quantized: &mut Q8Vector,
) -> Result<()> {
    let mut fast = Vec::with_capacity(products.len());
    let mut quantize = true;
    for (linear, out) in products.iter_mut() {
        match &linear.kernel {
            Kernel::Q8(matrix) => {
                if std::mem::take(&mut quantize) {
                    quantized.quantize(x);
                }
                fast.push(Product { matrix, out });
            }
            Kernel::Candle(matmul) => {
                let values = Tensor::from_slice(x, (1, x.len()), &Device::Cpu)
                    .and_then(|x| matmul.forward(&x))
                    .and_then(|y| y.flatten_all())
                    .and_then(|y| y.to_vec1::<f32>())
                    .map_err(model_error)?;
                if values.len() != out.len() {
                    return Err(Error::internal("matrix product of an unexpected width"));
                }
                out.copy_from_slice(&values);
            }
        }
    }
    if fast.is_empty() { Ok(()) } else { q8::multiply(&mut fast, quantized) }
}
