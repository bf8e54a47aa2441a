//! The Redis cache against a real `redis-server` started for this test on its own port: values
//! round-trip and expire, and a server that goes away turns into quick `Unavailable` errors,
//! never a hang; the cache recovers when the server is back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use capibara_core::cache::Cache;
use capibara_core::config::CacheConfig;
use capibara_server::cache::{RedisCache, from_config};

/// A private `redis-server`, killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("this test needs redis-server on PATH (Debian package redis-server): {e}")
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }

    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self::start_on(port)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn values_round_trip_expire_and_delete() {
    let server = RedisServer::start();
    let cache = from_config(&CacheConfig::Redis { url: server.url() }).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap(), None);
    cache.set("k", Bytes::from_static(b"\x00binary\xff"), Duration::from_secs(60)).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap(), Some(Bytes::from_static(b"\x00binary\xff")));
    cache.set("short", Bytes::from_static(b"x"), Duration::from_millis(150)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cache.get("short").await.unwrap(), None, "expired by Redis");
    cache.delete("k").await.unwrap();
    assert_eq!(cache.get("k").await.unwrap(), None);
    cache.set("zero", Bytes::from_static(b"x"), Duration::ZERO).await.unwrap();
    assert_eq!(cache.get("zero").await.unwrap(), None);
}

#[tokio::test]
async fn a_server_that_goes_away_gives_quick_unavailable_errors_and_recovery() {
    let server = RedisServer::start();
    let port = server.port;
    let cache = RedisCache::connect(&server.url()).await.unwrap();
    cache.set("k", Bytes::from_static(b"v"), Duration::from_secs(60)).await.unwrap();
    drop(server);

    let started = Instant::now();
    let error = cache.get("k").await.unwrap_err();
    assert_eq!(error.code(), "unavailable", "{error}");
    assert!(error.to_string().contains(&format!("127.0.0.1:{port}")), "{error}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());

    let _back = RedisServer::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match cache.set("k", Bytes::from_static(b"again"), Duration::from_secs(60)).await {
            Ok(()) => break,
            Err(error) => assert!(Instant::now() < deadline, "no recovery: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(cache.get("k").await.unwrap(), Some(Bytes::from_static(b"again")));
}

#[tokio::test]
async fn an_unreachable_or_malformed_url_fails_clearly() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let error = RedisCache::connect(&format!("redis://127.0.0.1:{port}/0")).await.unwrap_err();
    assert_eq!(error.code(), "unavailable", "{error}");
    let error = RedisCache::connect("not a url").await.unwrap_err();
    assert_eq!(error.code(), "invalid_input", "{error}");
    let memory = from_config(&CacheConfig::Memory { capacity: 2 }).await.unwrap();
    memory.set("a", Bytes::from_static(b"1"), Duration::from_secs(1)).await.unwrap();
    assert!(memory.get("a").await.unwrap().is_some());
}
