//! # capibara-testkit
//!
//! Test doubles shared by every Capibara crate's tests (dev-only, never published):
//!
//! - [`upstream`]: scripted fake LLM servers on real sockets speaking the OpenAI, Ollama and llama.cpp
//!   wire formats, with slow tokens, disconnects, error statuses, malformed lines and reasoning fields;
//! - [`conformance`]: the streaming conformance suite every `LlmBackend` must pass;
//! - [`postgres`]: throwaway databases on the real PostgreSQL server;
//! - [`python`]: a virtual environment with the official `openai` and `ollama` Python clients.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic, missing_docs)]

pub mod conformance;
pub mod postgres;
pub mod python;
pub mod upstream;
