//! The [`Cache`] a configuration names: in process ([`MemoryCache`]) or Redis ([`RedisCache`]).
//!
//! Callers treat cache failures as misses (a cache that is down slows answers, it does not fail
//! them), so every Redis call is bounded by a short timeout and reports [`Error::Unavailable`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use capibara_core::cache::{Cache, MemoryCache};
use capibara_core::config::CacheConfig;
use capibara_core::{Error, Result};
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long one Redis command may take before it counts as a miss.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(250);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A cache in a Redis server, shared by every process that points at it. Reconnects by itself
/// after the server comes back.
#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
    address: String,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache").field("address", &self.address).finish_non_exhaustive()
    }
}

impl RedisCache {
    /// Connects to `url` (`redis://host:port/db`, `rediss://` for TLS); fails with
    /// [`Error::Unavailable`] naming the server when it cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|e| Error::invalid(format!("redis url: {e}")))?;
        let address = client.get_connection_info().addr().to_string();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1);
        let connection =
            tokio::time::timeout(CONNECT_TIMEOUT * 2, ConnectionManager::new_with_config(client, config))
                .await
                .map_err(|_| {
                    Error::unavailable(format!(
                        "redis at {address} did not answer within {CONNECT_TIMEOUT:?}"
                    ))
                })?
                .map_err(|e| Error::unavailable(format!("redis at {address}: {e}")))?;
        Ok(Self { connection, address })
    }

    async fn bounded<T>(&self, what: &str, call: impl Future<Output = redis::RedisResult<T>>) -> Result<T> {
        match tokio::time::timeout(COMMAND_TIMEOUT, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(Error::unavailable(format!("redis at {}: {what}: {e}", self.address))),
            Err(_) => Err(Error::unavailable(format!(
                "redis at {}: {what} took longer than {COMMAND_TIMEOUT:?}",
                self.address
            ))),
        }
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let mut connection = self.connection.clone();
        let value: Option<Vec<u8>> = self.bounded("GET", connection.get(key)).await?;
        Ok(value.map(Bytes::from))
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()> {
        // Redis refuses a zero expiry; a TTL under a millisecond means "do not keep it".
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        if millis == 0 {
            return self.delete(key).await;
        }
        let mut connection = self.connection.clone();
        self.bounded("SET", connection.pset_ex::<_, _, ()>(key, value.as_ref(), millis)).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let mut connection = self.connection.clone();
        self.bounded("DEL", connection.del::<_, ()>(key)).await
    }
}

/// The cache `config` names.
pub async fn from_config(config: &CacheConfig) -> Result<Arc<dyn Cache>> {
    Ok(match config {
        CacheConfig::Memory { capacity } => Arc::new(MemoryCache::new(*capacity)),
        CacheConfig::Redis { url } => Arc::new(RedisCache::connect(url).await?),
    })
}
