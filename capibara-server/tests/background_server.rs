#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `serve::Background`: the server the bindings start in process serves every route until
//! stopped, then refuses connections.

use std::sync::Arc;
use std::time::Duration;

use capibara_core::config::Config;
use capibara_core::testing::InMemoryConversationStore;
use capibara_server::Capibara;
use capibara_server::serve::Background;

#[tokio::test(flavor = "multi_thread")]
async fn a_background_server_serves_until_stopped() {
    let app = Capibara::with_components(Config::default(), None, Arc::new(InMemoryConversationStore::new()));
    let server = Background::start(app, "127.0.0.1", 0).await.unwrap();
    assert!(server.is_running());
    assert_ne!(server.address().port(), 0);
    let health = reqwest::get(format!("{}/health", server.url())).await.unwrap();
    assert_eq!(health.status(), 200);
    server.stop();
    tokio::time::timeout(Duration::from_secs(10), server.stopped()).await.expect("the server stops");
    assert!(!server.is_running());
    assert!(reqwest::get(format!("{}/health", server.url())).await.is_err(), "nothing listens any more");
    server.stop(); // stopping twice is harmless
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_port_is_unavailable_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let app = Capibara::with_components(Config::default(), None, Arc::new(InMemoryConversationStore::new()));
    let error = Background::start(app, "127.0.0.1", port).await.unwrap_err();
    assert!(matches!(error, capibara_core::Error::Unavailable(_)), "{error}");
    assert!(error.to_string().contains(&port.to_string()), "{error}");
}
