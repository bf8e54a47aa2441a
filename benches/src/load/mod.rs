//! The load client: keep-alive HTTP/1.1 connections running streamed chat completions, one cell at a
//! time, timing each stream from the request to its first token and to its end.
//!
//! - [`connection`]: where a target lives and one reusable connection to it;
//! - [`sse`]: reading the event stream incrementally and classifying its chunks;
//! - [`stream`]: one timed stream and what can go wrong with it;
//! - [`cell`]: `n` streams at concurrency `c` with a time cap.

pub mod cell;
pub mod connection;
pub mod sse;
pub mod stream;

pub use cell::{CellPlan, CellRun, run_cell};
pub use connection::Endpoint;
pub use stream::{StreamFailure, StreamRecord};
