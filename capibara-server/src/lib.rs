//! # capibara-server
//!
//! The composition root and the HTTP server of Capibara, plus the `capibara` binary.
//!
//! ```no_run
//! # async fn run() -> capibara_core::Result<()> {
//! use capibara_server::{Capibara, serve, settings};
//!
//! let config = settings::from_toml(r#"
//!     [[llm.backends]]
//!     kind = "ollama"
//!     base_url = "http://127.0.0.1:11434"
//! "#)?;
//! let app = Capibara::build(config).await?;          // database migrated, backends built
//! let listener = serve::bind(&app).await?;             // 127.0.0.1:5001 by default
//! serve::serve_until(app, listener, serve::shutdown_signal()).await
//! # }
//! ```
//!
//! ## Modules
//! - [`app`]: [`Capibara`], every component built from one configuration.
//! - [`chat_feed`]: a streamed answer read one event at a time (the bindings' iterators).
//! - [`cache`]: the configured [`Cache`](capibara_core::cache::Cache) — in process or Redis.
//! - [`evaluation`]: `capibara eval` — BM25, dense and hybrid retrieval measured on a BEIR folder.
//! - [`ingest_progress`]: `capibara ingest`'s progress bar.
//! - [`local_models`]: embedded defaults — the local models a configuration needs, installed on
//!   first use.
//! - [`operations`]: what every face offers — chat, embed, search, ask, ingest — with its checks
//!   and timeouts, as methods of [`Capibara`].
//! - [`rag`]: retrieval as served — the configured vector store, the ingestion ledger, search
//!   modes and ingestion.
//! - [`settings`]: loading `capibara.toml` and `CAPIBARA_…` overrides.
//! - [`http`]: the router — Capibara6 routes (`/api/chat`, `/api/chat/stream`, `/api/health`,
//!   `/api/models`, `/api/save-conversation`), OpenAI-compatible (`/v1/chat/completions`, `/v1/models`),
//!   Ollama-compatible (`/api/chat`, `/api/generate`, `/api/tags`), one error envelope.
//! - [`store`]: conversations in SQLite (default) or PostgreSQL.
//! - [`uploads`]: files attached to chat messages.
//! - [`serve`]: binding, serving, graceful shutdown.
//! - [`telemetry`]: logging to stderr, as text or JSON lines.

#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod app;
pub mod cache;
pub mod chat_feed;
pub mod evaluation;
pub mod http;
pub mod ingest_progress;
pub mod local_models;
pub mod operations;
pub mod rag;
pub mod serve;
pub mod settings;
pub mod store;
pub mod telemetry;
pub mod uploads;

pub use app::Capibara;
