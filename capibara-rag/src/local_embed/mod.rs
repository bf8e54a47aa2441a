//! The embedded embedder: all-MiniLM-L6-v2 (or another BERT encoder in the same layout) run in this
//! process. Feature `local-embed`.
//!
//! ```no_run
//! use capibara_core::embed::Embedder;
//! use capibara_core::models::{ModelStore, NoProgress, MINILM_L6_V2};
//! use capibara_rag::local_embed::{LocalEmbedder, LocalEmbedderOptions};
//!
//! # async fn demo() -> capibara_core::Result<()> {
//! let model = ModelStore::from_env().ensure(&MINILM_L6_V2, &mut NoProgress)?;
//! let embedder = LocalEmbedder::load(LocalEmbedderOptions::new(&model.dir))?;
//! let vectors = embedder.embed(&["¿Dónde está la biblioteca?".to_owned()]).await?;
//! assert_eq!(vectors[0].len(), 384);
//! # Ok(()) }
//! ```
//!
//! ## How it computes
//! - `tokenize`: the model's `tokenizer.json`, truncating at `max_seq_len` tokens (256) instead of
//!   the 128 the file asks for, without padding;
//! - `forward`: the encoder over sequences packed end to end (no padding is computed), on the
//!   weights of `weights`, the crate's shared matrix product (the `gemm` crate with its AVX-512
//!   kernels) and the kernels of `kernels` (vectorised erf-GELU, softmax and layer norm); its tests
//!   check it against candle's `BertModel`;
//! - `worker`: the embedder's threads and how requests share them.
//!
//! ## Threads, and what is process-wide
//! [`LocalEmbedderOptions::threads`] is the number of threads that compute: one scheduler thread per
//! embedder plus `threads − 1` helpers that each take a share of every batch's sentences (balanced
//! by cost). Nothing else runs the model, so the option is exact: `threads = 1` computes on one core.
//!
//! candle itself is used only to read the safetensors file, not to compute. Its CPU thread pools
//! are process-wide and sized once, from environment variables read at their first use:
//! candle 0.11's matrix products use rayon's pool with `RAYON_NUM_THREADS` threads (default: the
//! physical cores), and its element-wise and quantized kernels a spin-waiting barrier pool of
//! `CANDLE_NUM_THREADS` threads (default: `RAYON_NUM_THREADS`). Other candle models in the process
//! (the local LLM) still follow those variables; this embedder neither reads nor changes them.
//! The `gemm` crate's tuning thresholds are process-wide too; they are left at their defaults.

mod config;
mod embedder;
mod forward;
mod kernels;
mod options;
mod tokenize;
mod weights;
mod worker;

pub use embedder::LocalEmbedder;
pub use options::LocalEmbedderOptions;

/// Most texts accepted in one `embed` call.
pub const MAX_TEXTS_PER_CALL: usize = 2048;

/// Largest text accepted, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 1_000_000;

/// Maps an I/O error on a model file to NotFound (missing) or InvalidInput (unreadable), naming it.
fn io_error(path: &std::path::Path, error: &std::io::Error) -> capibara_core::Error {
    match error.kind() {
        std::io::ErrorKind::NotFound => {
            capibara_core::Error::NotFound(format!("{}: no such file", path.display()))
        }
        _ => capibara_core::Error::invalid(format!("{}: cannot be read: {error}", path.display())),
    }
}
