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

/// The embedded default [`Cache`]: in process, bounded by entry count, least recently used
/// entries evicted first, expired entries never returned (and dropped when met or evicted).
///
/// ```
/// # async fn demo() -> capibara_core::Result<()> {
/// use std::time::Duration;
/// use capibara_core::cache::{Cache, MemoryCache};
///
/// let cache = MemoryCache::new(1_000);
/// cache.set("q:capibara", "hits".into(), Duration::from_secs(300)).await?;
/// assert_eq!(cache.get("q:capibara").await?.as_deref(), Some(&b"hits"[..]));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MemoryCache {
    capacity: usize,
    state: std::sync::Mutex<LruState>,
}

#[derive(Debug, Default)]
struct LruState {
    entries: std::collections::HashMap<String, CacheEntry>,
    /// Use ticks to keys, oldest first.
    order: std::collections::BTreeMap<u64, String>,
    tick: u64,
}

#[derive(Debug)]
struct CacheEntry {
    value: Bytes,
    expires: tokio::time::Instant,
    used: u64,
}

impl LruState {
    fn touch(&mut self, key: &str) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(entry) = self.entries.get_mut(key) {
            self.order.remove(&entry.used);
            entry.used = tick;
            self.order.insert(tick, key.to_owned());
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(entry) = self.entries.remove(key) {
            self.order.remove(&entry.used);
        }
    }
}

impl MemoryCache {
    /// A cache holding at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), state: std::sync::Mutex::new(LruState::default()) }
    }

    /// Number of entries held, expired ones included until they are met or evicted.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruState> {
        // A panic while holding the lock leaves consistent maps (every step is a single
        // insert or remove), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let mut state = self.lock();
        let now = tokio::time::Instant::now();
        match state.entries.get(key) {
            None => Ok(None),
            Some(entry) if entry.expires <= now => {
                state.remove(key);
                Ok(None)
            }
            Some(entry) => {
                let value = entry.value.clone();
                state.touch(key);
                Ok(Some(value))
            }
        }
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()> {
        let mut state = self.lock();
        let expires = tokio::time::Instant::now() + ttl;
        state.remove(key);
        while state.entries.len() >= self.capacity {
            let Some((_, oldest)) = state.order.pop_first() else { break };
            state.entries.remove(&oldest);
        }
        state.entries.insert(key.to_owned(), CacheEntry { value, expires, used: 0 });
        state.touch(key);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.lock().remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_their_ttl() {
        let cache = MemoryCache::new(10);
        cache.set("a", Bytes::from_static(b"1"), Duration::from_secs(300)).await.unwrap();
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(cache.get("a").await.unwrap(), Some(Bytes::from_static(b"1")));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(cache.get("a").await.unwrap(), None);
        assert!(cache.is_empty(), "an expired entry is dropped when met");
    }

    #[tokio::test]
    async fn the_least_recently_used_entry_goes_first() {
        let cache = MemoryCache::new(2);
        let ttl = Duration::from_secs(60);
        cache.set("a", Bytes::from_static(b"1"), ttl).await.unwrap();
        cache.set("b", Bytes::from_static(b"2"), ttl).await.unwrap();
        cache.get("a").await.unwrap();
        cache.set("c", Bytes::from_static(b"3"), ttl).await.unwrap();
        assert_eq!(cache.len(), 2);
        assert!(cache.get("b").await.unwrap().is_none(), "b was least recently used");
        assert!(cache.get("a").await.unwrap().is_some());
        assert!(cache.get("c").await.unwrap().is_some());
        // Replacing a key does not evict another one.
        cache.set("c", Bytes::from_static(b"4"), ttl).await.unwrap();
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("c").await.unwrap(), Some(Bytes::from_static(b"4")));
        cache.delete("c").await.unwrap();
        assert!(cache.get("c").await.unwrap().is_none());
    }
}
