//! # capibara-llm
//!
//! [`LlmBackend`](capibara_core::llm::LlmBackend) implementations for upstream model servers.

#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod prompt;
pub mod reasoning;
pub mod wire;
