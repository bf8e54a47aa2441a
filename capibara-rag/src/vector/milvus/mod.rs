//! [`MilvusStore`] (feature `milvus`): the [`VectorStore`](capibara_core::vector::VectorStore) on a
//! Milvus 2.3+ server, the scale-out counterpart of the embedded stores, with the same answers.
//!
//! ```no_run
//! use capibara_core::vector::{Filter, VectorQuery, VectorRecord, VectorStore};
//! use capibara_rag::vector::{MilvusConfig, MilvusStore};
//! use serde_json::json;
//!
//! # async fn demo() -> capibara_core::Result<()> {
//! let store = MilvusStore::connect(MilvusConfig::at("http://127.0.0.1:19530")).await?;
//! store.ensure_collection("capibara6_vectors", 2).await?;
//! let metadata = json!({ "lang": "es" }).as_object().cloned().unwrap_or_default();
//! let record = VectorRecord { id: "a".into(), vector: vec![1.0, 0.0], text: "hola".into(), metadata };
//! store.upsert("capibara6_vectors", vec![record]).await?;
//! let filter = Some(Filter::Eq { field: "lang".into(), value: json!("es") });
//! let hits = store.search("capibara6_vectors", &VectorQuery { vector: vec![1.0, 0.0], k: 5, filter }).await?;
//! assert_eq!(hits[0].record.id, "a");
//! # Ok(()) }
//! ```
//!
//! ## Records in Milvus
//! One collection per Capibara collection (the server's default is `capibara6_vectors`), with the
//! fields `id` (VarChar(512) primary key), `text` (VarChar(65535)), `metadata` (JSON: the record's
//! metadata object as it is), `timestamp` (Int64, when the record was last written, in
//! milliseconds since the Unix epoch; not part of [`VectorRecord`](capibara_core::vector::VectorRecord))
//! and `vector` (FloatVector of the collection's dimension). [`MilvusConfig::index`] is built on
//! `vector` with the inner-product metric, so scores are inner products, higher is better, as in
//! every store. Any Milvus client sees the same rows; a collection that lacks these fields, or is
//! indexed with another metric, is refused rather than misread. Texts are limited to 65,535 bytes
//! (Milvus' VarChar limit; the embedded stores take 1 MiB) and metadata to 64 KiB of JSON.
//!
//! ## Filters
//! Filters become Milvus boolean expressions over `metadata["field"]`, applied by the server
//! before top-k (see `expr` for the translation and the escaping that keeps values out of the
//! expression's syntax). A filter that names a field no record carries is invalid input, as in
//! the embedded stores. Which fields exist is learnt rather than stored: the keys of every
//! record this store writes are remembered per collection, and a field not yet known is looked up
//! once on the server with `exists metadata["field"]` (and remembered when found). So the check
//! is right for records written by any client, costs one small query the first time a field is
//! filtered on, and never forgets: after every record carrying a field is deleted, a filter on it
//! matches nothing instead of being refused until the store is reconnected.
//!
//! ## Consistency
//! Reads use [`MilvusConfig::consistency`] (default bounded staleness) for what other clients
//! wrote, and always see this store's own writes: once this store has written to a collection,
//! its reads of that collection carry the timestamp of the last write (Milvus' session
//! consistency), so the server waits only until it has applied that write — usually one time
//! tick after the write, and not at all for the reads that follow. Strong consistency would make
//! every read wait for the next tick (about 3 reads per second).
//!
//! ## Calls
//! Every call to the server runs under [`MilvusConfig::timeout`] ([`Error::Timeout`] past it),
//! and opening a collection waits at most [`MilvusConfig::ready_timeout`] for its index and load;
//! a server that cannot be reached is [`Error::Unavailable`] with the transport's cause, a missing
//! collection [`Error::NotFound`]. `delete` counts the ids that existed by asking for them first
//! (Milvus reports only how many ids were sent), so with concurrent writers the count is as of
//! that read. Upserts of more than 8 MiB are sent in several requests, and a failure part way
//! leaves the earlier requests written. The client refuses answers over 4 MiB, so reads are sized
//! from the largest record seen in each collection (written or read): a get asks for as many ids
//! at a time as fit, and a search whose hits may not fit asks for ids and scores first and then
//! fetches the records. An answer refused all the same is asked again in pieces, and teaches the
//! store a larger record size.
//!
//! ## Milvus and SDK quirks handled here
//! - Get and delete by id send literal `id in ["a", "b"]` expressions: the SDK's id selections
//!   are filter templates that Milvus 2.3 does not parse.
//! - Search hits are read column by column: Milvus 2.3 answers leave out the primary field name
//!   that the SDK's row view needs.
//! - Indexes are created without waiting and polled with `describe_index`: waiting inside
//!   `create_index` uses a timestamp RPC that lighter servers (milvus-lite) lack.
//!
//! [`Error::Timeout`]: capibara_core::Error::Timeout
//! [`Error::Unavailable`]: capibara_core::Error::Unavailable
//! [`Error::NotFound`]: capibara_core::Error::NotFound

mod config;
mod errors;
mod expr;
mod read;
mod records;
mod schema;
mod store;

pub use config::{DEFAULT_URL, MilvusConfig, MilvusConsistency, MilvusIndex, MilvusMetric};
pub use store::MilvusStore;
