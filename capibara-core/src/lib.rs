//! # capibara-core
//!
//! The vocabulary every Capibara crate speaks: domain types, the component traits, the one error
//! type, configuration types, and the pipelines written only against traits.
//!
//! ```
//! use std::sync::Arc;
//! use capibara_core::chat::{ChatRequest, Message};
//! use capibara_core::llm::LlmBackend;
//!
//! async fn ask(llm: Arc<dyn LlmBackend>) -> capibara_core::Result<String> {
//!     let answer = llm.chat(ChatRequest::new(vec![Message::user("¿Qué es Rust?")])).await?;
//!     Ok(answer.content) // reasoning, if any, is in `answer.reasoning`, never in `content`
//! }
//! ```
//!
//! ## Modules
//! - [`chat`]: messages, requests, sampling options, typed stream events, answers.
//! - [`llm`]: the [`LlmBackend`](llm::LlmBackend) trait and [`ChatStream`](llm::ChatStream).
//! - [`turn`]: the conversational turn pipeline ([`ChatTurn`](turn::ChatTurn)): history, context budget,
//!   streaming, storing the exchange.
//! - [`store`]: the [`ConversationStore`](store::ConversationStore) trait.
//! - [`embed`], [`vector`], [`graph`], [`tts`], [`consensus`], [`cache`], [`sandbox`]: the other
//!   component traits, implemented by `capibara-rag`, `capibara-tts` and `capibara-server`.
//! - [`models`]: the catalog of pinned local models and the store that fetches and verifies them.
//! - [`config`]: configuration types (`capibara.toml`).
//! - [`error`]: [`Error`] and [`Result`].
//! - `testing` (feature `test-utils`): in-memory implementations for tests.

#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cache;
pub mod chat;
pub mod config;
pub mod consensus;
pub mod embed;
pub mod error;
pub mod graph;
pub mod llm;
pub mod models;
pub mod sandbox;
pub mod store;
#[cfg(feature = "test-utils")]
pub mod testing;
pub mod tts;
pub mod turn;
pub mod vector;

pub use error::{Error, Result};
