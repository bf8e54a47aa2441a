//! # capibara-llm
//!
//! [`LlmBackend`](capibara_core::llm::LlmBackend) implementations for the model servers Capibara
//! talks to — any OpenAI-compatible server, Ollama, and llama.cpp's native server — with true
//! token-by-token streaming, per-phase timeouts, retries before the first token, and fallback from
//! one backend to the next. Model reasoning (GPT-OSS Harmony channels, `reasoning_content`,
//! `thinking`, `<think>` blocks) always arrives as [`StreamEvent::Reasoning`], never as answer text.
//!
//! ```no_run
//! use capibara_core::chat::{ChatRequest, Message, StreamEvent};
//! use capibara_core::config::LlmConfig;
//! use futures::StreamExt;
//!
//! # async fn demo() -> capibara_core::Result<()> {
//! let config: LlmConfig = serde_json::from_str(
//!     r#"{"backends": [
//!         {"kind": "ollama", "model": "gpt-oss:20b"},
//!         {"kind": "llamacpp", "base_url": "http://127.0.0.1:8080", "prompt_format": "harmony"}
//!     ]}"#,
//! )?;
//! let llm = capibara_llm::build_chain(&config)?
//!     .ok_or_else(|| capibara_core::Error::unavailable("no chat backend configured"))?;
//! let mut answer = llm.chat_stream(ChatRequest::new(vec![Message::user("¿Qué es Rust?")])).await?;
//! println!("answered by {}", answer.backend);
//! while let Some(event) = answer.next().await {
//!     match event? {
//!         StreamEvent::Content { delta } => print!("{delta}"),
//!         StreamEvent::Reasoning { .. } => {} // kept apart, never shown as the answer
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## Modules
//! - [`openai`], [`ollama`], [`llamacpp`]: one backend per server family, each with the same inner
//!   shape (`request.rs` builds the body, `stream.rs` decodes the stream).
//! - [`embeddings`]: [`OpenAiEmbedder`](embeddings::OpenAiEmbedder), embeddings from any
//!   OpenAI-compatible `/v1/embeddings` server (TEI, vLLM, Ollama).
//! - [`fallback`]: [`FallbackChain`], several backends tried in order.
//! - [`build_backend`] and [`build_chain`]: backends from `capibara.toml`'s `llm` section.
//! - [`wire`]: the wire formats (SSE and NDJSON framing; OpenAI, Ollama and llama.cpp types), shared
//!   with the HTTP server, which serves the OpenAI and Ollama protocols itself.
//! - [`reasoning`]: the streaming splitter that lifts reasoning and tool calls out of raw model markup.
//! - [`prompt`]: rendering a conversation into one prompt (transcript, ChatML, Gemma, Llama 3, Harmony).
//!
//! ## Timeouts, retries and errors
//! Every backend has a connect timeout (on its connection pool), a first-token timeout (request sent
//! → first event), an idle timeout (between events) and a total deadline. Failures before the first
//! event that may pass — connection refused, 429, 5xx, the first-token timeout — are retried with
//! exponential backoff and jitter (honouring `Retry-After`, capped at `max_backoff`).
//! [`LlmBackend::chat_stream`](capibara_core::llm::LlmBackend::chat_stream) returns only once the
//! first event is in hand, so everything before it can be retried or handed to the next backend;
//! the stream then yields events as they arrive, and dropping it closes the upstream connection.
//! Upstream failures map to [`capibara_core::Error`] in one place: unreachable → `Unavailable`,
//! timeouts → `Timeout`, 429 → `RateLimited`, 404 → `NotFound`, a 400 about the context length →
//! `ContextTooLong`, other statuses → `Upstream`, and broken streams (cut short, error frames,
//! malformed frames) → `Upstream` with status 502.
//!
//! [`StreamEvent::Reasoning`]: capibara_core::chat::StreamEvent::Reasoning

// `unsafe` is allowed in one module only: the Q8_0 SIMD kernels of the local model (`local::q8`).
#![deny(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod build;
pub mod embeddings;
pub mod fallback;
pub mod llamacpp;
#[cfg(feature = "local-llm")]
pub mod local;
pub mod ollama;
pub mod openai;
pub mod prompt;
pub mod reasoning;
pub mod wire;

mod transport;

pub use build::{build_backend, build_chain};
pub use fallback::FallbackChain;
pub use llamacpp::LlamaCppBackend;
#[cfg(feature = "local-llm")]
pub use local::LocalLlm;
pub use ollama::OllamaBackend;
pub use openai::OpenAiBackend;
