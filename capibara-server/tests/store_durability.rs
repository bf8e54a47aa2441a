#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `SqlStore` keeps what it was given: across a restart, under a thousand concurrent writers, and
//! when the database is damaged, unreachable or newer than the code (an error, never a fresh start).
//! Scenarios run on a SQLite file and on the real PostgreSQL server.

use std::collections::HashSet;
use std::sync::Arc;

use capibara_core::chat::Role;
use capibara_core::store::{AppendRequest, Attachment, ConversationStore, NewMessage};
use capibara_server::store::SqlStore;
use capibara_testkit::postgres::TestDatabase;
use futures::StreamExt;
use sqlx::Connection;
use uuid::Uuid;

/// A fresh database of one engine, by URL: scenarios connect (and reconnect) themselves.
struct Fixture {
    url: String,
    dir: Option<tempfile::TempDir>,
    database: Option<TestDatabase>,
}

impl Fixture {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("nested/data/capibara.db").display());
        Self { url, dir: Some(dir), database: None }
    }

    async fn postgres() -> Self {
        let database = TestDatabase::create().await;
        Self { url: database.url().to_owned(), dir: None, database: Some(database) }
    }

    async fn finish(self) {
        if let Some(database) = self.database {
            database.drop_database().await;
        }
        drop(self.dir);
    }
}

/// Runs each scenario as two tests, `sqlite::<name>` and `postgres::<name>`.
macro_rules! on_both_engines {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let fixture = super::Fixture::sqlite();
                super::$scenario(&fixture.url).await;
                fixture.finish().await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let fixture = super::Fixture::postgres().await;
                super::$scenario(&fixture.url).await;
                fixture.finish().await;
            })*
        }
    };
}

on_both_engines!(
    history_survives_a_restart,
    a_thousand_concurrent_new_conversations_are_all_stored,
    concurrent_appends_to_one_conversation_get_contiguous_positions,
    a_database_from_a_newer_version_is_refused_and_kept,
    a_closed_store_is_unavailable,
);

fn exchange(question: &str, answer: &str) -> Vec<NewMessage> {
    vec![NewMessage::new(Role::User, question), NewMessage::new(Role::Assistant, answer)]
}

fn new_conversation(id: Uuid, messages: Vec<NewMessage>) -> AppendRequest {
    AppendRequest { conversation_id: id, create_if_missing: true, user_email: None, title: None, messages }
}

async fn history_survives_a_restart(url: &str) {
    let store = SqlStore::connect(url, 4).await.unwrap();
    let id = Uuid::now_v7();
    let attachment = Attachment {
        id: Uuid::now_v7(),
        original_name: "menú.txt".into(),
        stored_path: "uploads/menu.txt".into(),
        size_bytes: 42,
        content_type: Some("text/plain".into()),
        sha256: "ab".repeat(32),
    };
    let mut messages = exchange("¿Qué hay de comer?", "Arepas.");
    messages[0].attachments.push(attachment.clone());
    messages[1].reasoning = Some("Leo el menú adjunto.".into());
    messages[1].dedupe_key = Some("restart:answer".into());
    let mut request = new_conversation(id, messages);
    request.user_email = Some("luis@example.com".into());
    request.title = Some("Comida".into());
    let stored = store.append(request).await.unwrap();
    let conversation = store.conversation(id).await.unwrap();
    let history = store.recent_messages(id, 10).await.unwrap();
    store.close().await;

    let store = SqlStore::connect(url, 4).await.unwrap();
    assert_eq!(store.conversation(id).await.unwrap(), conversation);
    assert_eq!(store.recent_messages(id, 10).await.unwrap(), history);
    assert_eq!(store.attachments(stored.inserted[0]).await.unwrap(), [attachment]);
    assert_eq!(store.count_conversations().await.unwrap(), 1);
    // Positions and dedupe keys carry on where they were.
    let mut more = exchange("¿Y de postre?", "Quesillo.");
    more[0].dedupe_key = Some("restart:answer".into());
    let outcome =
        store.append(AppendRequest { create_if_missing: false, ..new_conversation(id, more) }).await.unwrap();
    assert_eq!((outcome.inserted.len(), outcome.duplicates), (1, 1));
    assert_eq!(store.recent_messages(id, 1).await.unwrap()[0].seq, 3);
    store.close().await;
}

async fn a_thousand_concurrent_new_conversations_are_all_stored(url: &str) {
    const CONVERSATIONS: usize = 1000;
    let store = Arc::new(SqlStore::connect(url, 16).await.unwrap());
    let tasks: Vec<_> = (0..CONVERSATIONS)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let id = Uuid::now_v7();
                let request =
                    new_conversation(id, exchange(&format!("pregunta {i}"), &format!("respuesta {i}")));
                let outcome = store.append(request).await.unwrap();
                assert!(outcome.created && outcome.inserted.len() == 2, "{outcome:?}");
                (i, id)
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    assert_eq!(ids.iter().map(|(_, id)| *id).collect::<HashSet<_>>().len(), CONVERSATIONS);
    assert_eq!(store.count_conversations().await.unwrap(), CONVERSATIONS as u64);
    let messages: usize = futures::stream::iter(ids)
        .map(|(i, id)| {
            let store = Arc::clone(&store);
            async move {
                let messages = store.recent_messages(id, 10).await.unwrap();
                let texts: Vec<_> = messages.iter().map(|m| (m.seq, m.content.as_str())).collect();
                assert_eq!(
                    texts,
                    [(1, format!("pregunta {i}").as_str()), (2, format!("respuesta {i}").as_str())]
                );
                messages.len()
            }
        })
        .buffer_unordered(32)
        .fold(0, |total, n| async move { total + n })
        .await;
    assert_eq!(messages, 2 * CONVERSATIONS);
    store.close().await;
}

async fn concurrent_appends_to_one_conversation_get_contiguous_positions(url: &str) {
    const WRITERS: usize = 200;
    let store = Arc::new(SqlStore::connect(url, 16).await.unwrap());
    let id = Uuid::now_v7();
    // Every writer may create the conversation; exactly one does.
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .append(new_conversation(id, exchange(&format!("q{i}"), &format!("a{i}"))))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        let outcome = task.await.unwrap();
        assert_eq!(outcome.inserted.len(), 2);
        created += usize::from(outcome.created);
    }
    assert_eq!(created, 1);
    assert_eq!(store.conversation(id).await.unwrap().message_count, 2 * WRITERS as u64);
    let messages = store.recent_messages(id, usize::MAX).await.unwrap();
    let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=2 * WRITERS as u64).collect::<Vec<_>>());
    // Each append's two messages are adjacent: batches never interleave.
    for pair in messages.chunks(2) {
        let writer = pair[0].content.strip_prefix('q').unwrap();
        assert_eq!(pair[1].content, format!("a{writer}"));
    }
    let writers: HashSet<&str> = messages.iter().map(|m| &m.content[1..]).collect();
    assert_eq!(writers.len(), WRITERS);
    store.close().await;
}

async fn a_database_from_a_newer_version_is_refused_and_kept(url: &str) {
    let store = SqlStore::connect(url, 2).await.unwrap();
    let id = Uuid::now_v7();
    store.append(new_conversation(id, exchange("¿Sigues ahí?", "Sí."))).await.unwrap();
    store.close().await;
    record_unknown_migration(url).await;

    let error = SqlStore::connect(url, 2).await.unwrap_err();
    assert_eq!(error.code(), "internal", "{error}");
    assert!(error.to_string().contains("migrat"), "{error}");
    // Nothing was reset: with the unknown migration forgotten, the conversation is still there.
    forget_unknown_migration(url).await;
    let store = SqlStore::connect(url, 2).await.unwrap();
    assert_eq!(store.recent_messages(id, 10).await.unwrap().len(), 2);
    store.close().await;
}

const UNKNOWN_MIGRATION: i64 = 99_991_231_000_000;

async fn record_unknown_migration(url: &str) {
    if url.starts_with("sqlite:") {
        let mut connection = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES ($1, 'from a newer Capibara', TRUE, X'00', 0)")
            .bind(UNKNOWN_MIGRATION)
            .execute(&mut connection)
            .await
            .unwrap();
    } else {
        let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES ($1, 'from a newer Capibara', TRUE, '\\x00'::bytea, 0)")
            .bind(UNKNOWN_MIGRATION)
            .execute(&mut connection)
            .await
            .unwrap();
    }
}

async fn forget_unknown_migration(url: &str) {
    let statement = "DELETE FROM _sqlx_migrations WHERE version = $1";
    if url.starts_with("sqlite:") {
        let mut connection = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(statement).bind(UNKNOWN_MIGRATION).execute(&mut connection).await.unwrap();
    } else {
        let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(statement).bind(UNKNOWN_MIGRATION).execute(&mut connection).await.unwrap();
    }
}

async fn a_closed_store_is_unavailable(url: &str) {
    let store = SqlStore::connect(url, 2).await.unwrap();
    store.ping().await.unwrap();
    store.close().await;
    assert_eq!(store.ping().await.unwrap_err().code(), "unavailable");
    assert_eq!(store.count_conversations().await.unwrap_err().code(), "unavailable");
}

#[tokio::test]
async fn a_corrupt_sqlite_file_is_an_error_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capibara.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();

    let error = SqlStore::connect(&format!("sqlite://{}?mode=rwc", path.display()), 4).await.unwrap_err();
    assert_eq!(error.code(), "internal", "{error}");
    let message = error.to_string();
    assert!(message.contains("SQLite") && message.contains("not a database"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "the file was changed");
    let mut left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    left.sort();
    assert_eq!(left, ["capibara.db"]);
}

#[tokio::test]
async fn urls_that_cannot_hold_history_are_refused() {
    for url in
        ["sqlite::memory:", "sqlite://shared?mode=memory&cache=shared", "mysql://root@127.0.0.1/capibara"]
    {
        let error = SqlStore::connect(url, 2).await.unwrap_err();
        assert_eq!(error.code(), "invalid_input", "{url}: {error}");
    }
}

#[tokio::test]
async fn an_unknown_postgres_database_is_unavailable_without_showing_the_password() {
    let database = TestDatabase::create().await;
    let (scheme_and_user, rest) = database.url().split_once('@').unwrap();
    let missing = rest.replace(database.name(), "capibara_missing_database");
    let url = format!("{scheme_and_user}:s3cr3t-pass@{missing}");
    let error = SqlStore::connect(&url, 2).await.unwrap_err();
    let message = error.to_string();
    assert_eq!(error.code(), "unavailable", "{message}");
    assert!(message.contains("PostgreSQL") && message.contains("capibara_missing_database"), "{message}");
    assert!(!message.contains("s3cr3t-pass"), "{message}");
    database.drop_database().await;
}

#[tokio::test]
async fn an_unreachable_postgres_server_is_unavailable() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://capibara:s3cr3t-pass@127.0.0.1:{port}/capibara");
    let error = SqlStore::connect(&url, 2).await.unwrap_err();
    let message = error.to_string();
    assert_eq!(error.code(), "unavailable", "{message}");
    assert!(message.contains("PostgreSQL") && !message.contains("s3cr3t-pass"), "{message}");
}

#[tokio::test]
async fn test_databases_are_dropped() {
    let database = TestDatabase::create().await;
    let url = database.url().to_owned();
    let store = SqlStore::connect(&url, 2).await.unwrap();
    // Dropping works even with the store's connections still open.
    database.drop_database().await;
    let error = sqlx::PgConnection::connect(&url).await.unwrap_err();
    assert!(error.to_string().contains("does not exist"), "{error}");
    drop(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_database_going_out_of_scope_is_dropped_too() {
    let database = TestDatabase::create().await;
    let url = database.url().to_owned();
    drop(database);
    let error = sqlx::PgConnection::connect(&url).await.unwrap_err();
    assert!(error.to_string().contains("does not exist"), "{error}");
}
