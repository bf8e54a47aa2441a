//! The native addon of the `capibara` Node package: the composition `capibara serve` builds, in
//! process, with Promises for calls and async iterators for streamed answers.
//!
//! ```js
//! const { Capibara } = require('capibara')
//! const cap = await Capibara.open({ llm: { backends: [{ kind: 'openai', base_url: 'http://127.0.0.1:8000/v1' }] } })
//! const answer = await cap.chat('¿Qué es un capibara?', { maxTokens: 64 })
//! for await (const event of cap.streamChat('Cuéntame un cuento')) {
//!   if (event.type === 'content') process.stdout.write(event.delta)
//! }
//! cap.close()
//! ```
//!
//! Arguments are read into the library's types, the library runs the operation, results come back
//! as typed objects; no operation is implemented here.
//!
//! ## Modules
//! - [`client`]: the `Capibara` class — one method per library operation.
//! - [`stream`]: `ChatEvents`, a streamed answer read with `for await`.
//! - [`server`]: `Server`, the HTTP server started by `serve()`.
//! - [`inputs`]: the option objects callers pass, read into the library's types.
//! - [`results`]: the objects calls resolve to.
//! - [`errors`]: library errors as JavaScript `Error`s with a `code` (the one place they map).
//! - [`convert`]: JavaScript values to JSON-shaped values, with the path of anything refused.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod client;
pub mod convert;
pub mod errors;
pub mod inputs;
pub mod results;
pub mod server;
pub mod stream;
