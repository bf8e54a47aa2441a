//! The [`Cache`] trait: bytes with a time to live.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;

/// A key-value cache whose entries expire.
#[async_trait]
pub trait Cache: Send + Sync {
    /// The value, if present and not expired.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;
    /// Stores a value for `ttl`.
    async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()>;
    /// Removes a value.
    async fn delete(&self, key: &str) -> Result<()>;
}
