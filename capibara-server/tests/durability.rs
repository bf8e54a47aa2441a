#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Durability of conversations through the whole server, on SQLite and on the real PostgreSQL:
//! concurrent chats each store exactly one conversation, and history survives a restart.

mod support;

use std::collections::HashSet;

use capibara_core::config::Config;
use capibara_server::Capibara;
use capibara_testkit::postgres::TestDatabase;
use capibara_testkit::upstream::{FakeReply, FakeUpstream, Protocol};
use futures::StreamExt;
use serde_json::{Value, json};
use support::{TestServer, client};

/// A config using the fake upstream and the given database.
fn config(upstream: &FakeUpstream, database_url: &str, data_dir: &std::path::Path) -> Config {
    let mut config = capibara_server::settings::from_toml(&format!(
        r#"[[llm.backends]]
kind = "openai"
base_url = "{}"
model = "fake-model"
"#,
        upstream.base_url()
    ))
    .unwrap();
    config.storage.data_dir = data_dir.to_path_buf();
    config.storage.database_url = Some(database_url.to_owned());
    config
}

async fn concurrent_chats_are_all_stored(database_url: &str) {
    const CHATS: usize = 1000;
    let upstream = FakeUpstream::start(Protocol::OpenAi).await;
    upstream.set_default(FakeReply::text("Respuesta guardada."));
    let dir = tempfile::tempdir().unwrap();
    let app = Capibara::build(config(&upstream, database_url, dir.path())).await.unwrap();
    let server = TestServer::start(app).await;
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let url = server.at("/api/chat");
    let answers: Vec<Value> = futures::stream::iter(0..CHATS)
        .map(|i| {
            let http = http.clone();
            let url = url.clone();
            async move {
                let response =
                    http.post(&url).json(&json!({"message": format!("pregunta {i}")})).send().await.unwrap();
                assert_eq!(response.status(), 200, "chat {i}");
                response.json::<Value>().await.unwrap()
            }
        })
        .buffer_unordered(CHATS)
        .collect()
        .await;
    let ids: HashSet<String> =
        answers.iter().map(|a| a["conversation_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), CHATS, "every chat got its own conversation");
    assert_eq!(server.app.store().count_conversations().await.unwrap(), CHATS as u64);
    // Every one is readable, with both messages.
    let readable = futures::stream::iter(ids)
        .map(|id| {
            let http = http.clone();
            let url = server.at(&format!("/api/conversations/{id}"));
            async move { http.get(&url).send().await.unwrap().json::<Value>().await.unwrap() }
        })
        .buffer_unordered(64)
        .filter(|c| std::future::ready(c["messages"].as_array().is_some_and(|m| m.len() == 2)))
        .count()
        .await;
    assert_eq!(readable, CHATS);
    server.stop().await;
}

async fn history_survives_a_restart(database_url: &str) {
    let upstream = FakeUpstream::start(Protocol::OpenAi).await;
    upstream.set_default(FakeReply::text("Me llamo Capibara."));
    let dir = tempfile::tempdir().unwrap();

    let server =
        TestServer::start(Capibara::build(config(&upstream, database_url, dir.path())).await.unwrap()).await;
    let first: Value = client()
        .post(server.at("/api/chat"))
        .json(&json!({"message": "¿Cómo te llamas?", "email": "ana@example.com"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conversation = first["conversation_id"].as_str().unwrap().to_owned();
    server.stop().await;

    // A new process-equivalent: fresh pools, fresh app, same database.
    let server =
        TestServer::start(Capibara::build(config(&upstream, database_url, dir.path())).await.unwrap()).await;
    let second = client()
        .post(server.at("/api/chat"))
        .json(&json!({"message": "¿Qué te pregunté antes?", "conversation_id": conversation}))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 200);
    let requests = upstream.requests();
    let sent = &requests.last().unwrap().body["messages"];
    let contents: Vec<&str> =
        sent.as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(&contents[1..], ["¿Cómo te llamas?", "Me llamo Capibara.", "¿Qué te pregunté antes?"]);
    let stored: Value = client()
        .get(server.at(&format!("/api/conversations/{conversation}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored["messages"].as_array().unwrap().len(), 4);
    assert_eq!(stored["user_email"], "ana@example.com");
    server.stop().await;
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}?mode=rwc", dir.path().join("capibara.db").display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_chats_leave_a_thousand_conversations_on_sqlite() {
    let db = tempfile::tempdir().unwrap();
    concurrent_chats_are_all_stored(&sqlite_url(&db)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_chats_leave_a_thousand_conversations_on_postgres() {
    let db = TestDatabase::create().await;
    concurrent_chats_are_all_stored(db.url()).await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_survives_a_restart_on_sqlite() {
    let db = tempfile::tempdir().unwrap();
    history_survives_a_restart(&sqlite_url(&db)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_survives_a_restart_on_postgres() {
    let db = TestDatabase::create().await;
    history_survives_a_restart(db.url()).await;
    db.drop_database().await;
}
