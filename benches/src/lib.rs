//! # capibara-benches
//!
//! Capibara's benchmarks with their side-by-side peers. The gateway-overhead benchmark measures what
//! `capibara serve` adds to a streamed chat completion compared with talking to the model server
//! directly, and compares that with the LiteLLM proxy in the same run:
//!
//! ```text
//! benches/gateway/run            # or: make bench
//! ```
//!
//! The load client can also be pointed at any OpenAI-compatible server:
//!
//! ```text
//! capibara-gateway-load --url http://127.0.0.1:5001 --delay-ms 5 --concurrency 50 --streams 1000
//! ```
//!
//! ## Modules
//! - [`load`]: the load client (keep-alive HTTP/1.1 connections, incremental SSE reading, cells);
//! - [`stats`]: percentiles and the numbers of one cell;
//! - [`cpu`]: CPU time of a process tree from `/proc`;
//! - [`service`]: server processes in their own process groups;
//! - [`targets`]: the upstream, Capibara and LiteLLM, and how each is started;
//! - [`gateway`]: the matrix run against every target;
//! - [`environment`] and [`report`]: what the run was measured on, and the Markdown report.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cpu;
#[cfg(feature = "local-embed")]
pub mod embed;
pub mod environment;
pub mod gateway;
#[cfg(feature = "local-llm")]
pub mod llm;
pub mod load;
pub mod report;
pub mod service;
pub mod stats;
pub mod targets;
