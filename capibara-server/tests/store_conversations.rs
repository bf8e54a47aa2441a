#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! What `SqlStore` promises about conversations, checked on a SQLite file and on the real
//! PostgreSQL server: the same scenario functions run on both engines.

use capibara_core::chat::{FinishReason, Role, Usage};
use capibara_core::store::{AppendRequest, Attachment, ConversationStore, NewMessage};
use capibara_server::store::{DatabaseEngine, SqlStore};
use capibara_testkit::postgres::TestDatabase;
use chrono::{SubsecRound, TimeZone, Utc};
use uuid::Uuid;

/// A store on a fresh database of one engine.
struct Fixture {
    store: SqlStore,
    _dir: Option<tempfile::TempDir>,
    database: Option<TestDatabase>,
}

impl Fixture {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("data/capibara.db").display());
        let store = SqlStore::connect(&url, 8).await.unwrap();
        assert_eq!(store.backend(), DatabaseEngine::Sqlite);
        Self { store, _dir: Some(dir), database: None }
    }

    async fn postgres() -> Self {
        let database = TestDatabase::create().await;
        let store = SqlStore::connect(database.url(), 8).await.unwrap();
        assert_eq!(store.backend(), DatabaseEngine::Postgres);
        Self { store, _dir: None, database: Some(database) }
    }

    async fn finish(self) {
        self.store.close().await;
        if let Some(database) = self.database {
            database.drop_database().await;
        }
    }
}

/// Runs each scenario as two tests, `sqlite::<name>` and `postgres::<name>`.
macro_rules! on_both_engines {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let fixture = super::Fixture::sqlite().await;
                super::$scenario(&fixture.store).await;
                fixture.finish().await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let fixture = super::Fixture::postgres().await;
                super::$scenario(&fixture.store).await;
                fixture.finish().await;
            })*
        }
    };
}

on_both_engines!(
    conversations_are_created_appended_to_and_read,
    unknown_conversations_are_not_found,
    recent_messages_are_the_newest_oldest_first,
    reasoning_is_stored_apart_from_content,
    answer_details_round_trip,
    attachments_round_trip_in_order,
    dedupe_keys_store_retried_messages_once,
    a_role_less_message_stores_nothing,
    a_failing_insert_mid_batch_stores_nothing,
);

fn append(id: Uuid, create: bool, messages: Vec<NewMessage>) -> AppendRequest {
    AppendRequest { conversation_id: id, create_if_missing: create, user_email: None, title: None, messages }
}

fn keyed(role: Role, content: &str, key: &str) -> NewMessage {
    NewMessage { dedupe_key: Some(key.to_owned()), ..NewMessage::new(role, content) }
}

async fn contents(store: &SqlStore, id: Uuid) -> Vec<(u64, String)> {
    store.recent_messages(id, usize::MAX).await.unwrap().into_iter().map(|m| (m.seq, m.content)).collect()
}

async fn conversations_are_created_appended_to_and_read(store: &SqlStore) {
    let id = Uuid::now_v7();
    let outcome = store
        .append(AppendRequest {
            conversation_id: id,
            create_if_missing: true,
            user_email: Some("ana@example.com".into()),
            title: Some("¿Qué es un carpincho?".into()),
            messages: vec![
                NewMessage::new(Role::User, "¿Qué es un carpincho?"),
                NewMessage::new(Role::Assistant, "Es el roedor más grande del mundo."),
            ],
        })
        .await
        .unwrap();
    assert!(outcome.created);
    assert_eq!((outcome.conversation_id, outcome.inserted.len(), outcome.duplicates), (id, 2, 0));

    let conversation = store.conversation(id).await.unwrap();
    assert_eq!(conversation.user_email.as_deref(), Some("ana@example.com"));
    assert_eq!(conversation.title.as_deref(), Some("¿Qué es un carpincho?"));
    assert_eq!(conversation.message_count, 2);
    let messages = store.recent_messages(id, 10).await.unwrap();
    assert_eq!(messages.iter().map(|m| m.id).collect::<Vec<_>>(), outcome.inserted);
    assert_eq!(
        messages.iter().map(|m| (m.seq, m.role)).collect::<Vec<_>>(),
        [(1, Role::User), (2, Role::Assistant)]
    );
    assert!(messages.iter().all(|m| m.conversation_id == id && !m.partial && m.reasoning.is_none()));

    let more =
        store.append(append(id, false, vec![NewMessage::new(Role::User, "¿Y qué come?")])).await.unwrap();
    assert!(!more.created);
    let after = store.conversation(id).await.unwrap();
    assert_eq!(after.message_count, 3);
    assert_eq!(after.created_at, conversation.created_at);
    assert!(after.updated_at >= conversation.updated_at);
    assert_eq!(contents(store, id).await.last().unwrap(), &(3, "¿Y qué come?".to_owned()));

    // The same owner keeps one user; anonymous conversations have none.
    let second = Uuid::now_v7();
    let mut request = append(second, true, vec![NewMessage::new(Role::User, "Hola otra vez")]);
    request.user_email = Some("ana@example.com".into());
    store.append(request).await.unwrap();
    assert_eq!(store.conversation(second).await.unwrap().user_email.as_deref(), Some("ana@example.com"));
    let anonymous = Uuid::now_v7();
    store.append(append(anonymous, true, vec![NewMessage::new(Role::User, "Hola")])).await.unwrap();
    let anonymous = store.conversation(anonymous).await.unwrap();
    assert_eq!((anonymous.user_email, anonymous.title), (None, None));
    assert_eq!(store.count_conversations().await.unwrap(), 3);
    store.ping().await.unwrap();
}

async fn unknown_conversations_are_not_found(store: &SqlStore) {
    let unknown = Uuid::now_v7();
    assert_eq!(store.conversation(unknown).await.unwrap_err().code(), "not_found");
    assert_eq!(store.recent_messages(unknown, 5).await.unwrap_err().code(), "not_found");
    let error =
        store.append(append(unknown, false, vec![NewMessage::new(Role::User, "¿Hay alguien?")])).await;
    assert_eq!(error.unwrap_err().code(), "not_found");
    assert_eq!(store.count_conversations().await.unwrap(), 0);
    assert!(store.attachments(Uuid::now_v7()).await.unwrap().is_empty());
}

async fn recent_messages_are_the_newest_oldest_first(store: &SqlStore) {
    let id = Uuid::now_v7();
    let batch = |range: std::ops::Range<u32>| {
        range.map(|i| NewMessage::new(Role::User, format!("mensaje {i}"))).collect()
    };
    store.append(append(id, true, batch(1..4))).await.unwrap();
    store.append(append(id, false, batch(4..8))).await.unwrap();
    store.append(append(id, false, batch(8..11))).await.unwrap();

    let newest = store.recent_messages(id, 4).await.unwrap();
    assert_eq!(newest.iter().map(|m| m.seq).collect::<Vec<_>>(), [7, 8, 9, 10]);
    assert_eq!(newest[0].content, "mensaje 7");
    let all = contents(store, id).await;
    assert_eq!(all.len(), 10);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, (seq, content))| *seq == i as u64 + 1 && *content == format!("mensaje {seq}"))
    );
    assert_eq!(store.recent_messages(id, 100).await.unwrap().len(), 10);
    assert!(store.recent_messages(id, 0).await.unwrap().is_empty());
}

async fn reasoning_is_stored_apart_from_content(store: &SqlStore) {
    let id = Uuid::now_v7();
    let answer = NewMessage {
        reasoning: Some("El usuario pide 2 + 2. Sumo: 4.".into()),
        ..NewMessage::new(Role::Assistant, "2 + 2 = 4")
    };
    store
        .append(append(id, true, vec![NewMessage::new(Role::User, "¿Cuánto es 2 + 2?"), answer]))
        .await
        .unwrap();
    let messages = store.recent_messages(id, 2).await.unwrap();
    assert_eq!(messages[0].reasoning, None);
    assert_eq!(messages[1].content, "2 + 2 = 4");
    assert_eq!(messages[1].reasoning.as_deref(), Some("El usuario pide 2 + 2. Sumo: 4."));
}

async fn answer_details_round_trip(store: &SqlStore) {
    let id = Uuid::now_v7();
    let written_at =
        Utc.with_ymd_and_hms(2025, 3, 9, 23, 59, 58).unwrap() + chrono::Duration::microseconds(123_456);
    let cut = NewMessage {
        model: Some("gpt-oss:20b".into()),
        usage: Some(Usage { prompt_tokens: 1_234, completion_tokens: 56 }),
        latency_ms: Some(8_765),
        finish_reason: Some(FinishReason::Cancelled),
        partial: true,
        created_at: Some(written_at),
        ..NewMessage::new(Role::Assistant, "La respuesta se cortó a la mit")
    };
    let unusual = NewMessage {
        finish_reason: Some(FinishReason::Other("recitation".into())),
        ..NewMessage::new(Role::Assistant, "Otra respuesta")
    };
    let before = Utc::now().trunc_subsecs(6);
    store.append(append(id, true, vec![cut, unusual])).await.unwrap();
    let after = Utc::now();

    let messages = store.recent_messages(id, 2).await.unwrap();
    let cut = &messages[0];
    assert_eq!(cut.model.as_deref(), Some("gpt-oss:20b"));
    assert_eq!(cut.usage, Some(Usage { prompt_tokens: 1_234, completion_tokens: 56 }));
    assert_eq!(cut.latency_ms, Some(8_765));
    assert_eq!(cut.finish_reason, Some(FinishReason::Cancelled));
    assert!(cut.partial);
    assert_eq!(cut.created_at, written_at);

    let unusual = &messages[1];
    assert_eq!(unusual.finish_reason, Some(FinishReason::Other("recitation".into())));
    assert_eq!(
        (unusual.model.as_deref(), unusual.usage, unusual.latency_ms, unusual.partial),
        (None, None, None, false)
    );
    assert!(
        unusual.created_at >= before && unusual.created_at <= after,
        "{} not in [{before}, {after}]",
        unusual.created_at
    );
}

async fn attachments_round_trip_in_order(store: &SqlStore) {
    let id = Uuid::now_v7();
    let file = |name: &str, content_type: Option<&str>, size: u64| Attachment {
        id: Uuid::now_v7(),
        original_name: name.into(),
        stored_path: format!("uploads/{}-{name}", Uuid::now_v7()),
        size_bytes: size,
        content_type: content_type.map(str::to_owned),
        sha256: format!("{:064x}", size),
    };
    let files = vec![
        file("notas.txt", Some("text/plain"), 12),
        file("foto.png", None, 4_000_000_000),
        file("a.md", None, 0),
    ];
    let question =
        NewMessage { attachments: files.clone(), ..NewMessage::new(Role::User, "Resume estos archivos") };
    let outcome = store
        .append(append(id, true, vec![question, NewMessage::new(Role::Assistant, "Resumen…")]))
        .await
        .unwrap();
    assert_eq!(store.attachments(outcome.inserted[0]).await.unwrap(), files);
    assert!(store.attachments(outcome.inserted[1]).await.unwrap().is_empty());
}

async fn dedupe_keys_store_retried_messages_once(store: &SqlStore) {
    let id = Uuid::now_v7();
    let exchange = || {
        vec![keyed(Role::User, "Hola", "save:1:user"), keyed(Role::Assistant, "¡Hola!", "save:1:assistant")]
    };
    let first = store.append(append(id, true, exchange())).await.unwrap();
    assert_eq!((first.created, first.inserted.len(), first.duplicates), (true, 2, 0));
    let retried = store.append(append(id, true, exchange())).await.unwrap();
    assert_eq!((retried.created, retried.inserted.len(), retried.duplicates), (false, 0, 2));
    assert_eq!(store.conversation(id).await.unwrap().message_count, 2);

    // A key repeated within one batch is stored once, and positions stay contiguous.
    let batch = vec![
        keyed(Role::User, "¿Y mañana?", "save:2:user"),
        keyed(Role::User, "¿Y mañana? (reenviado)", "save:2:user"),
        keyed(Role::Assistant, "Mañana lloverá.", "save:1:assistant"),
        NewMessage::new(Role::Assistant, "Mañana lloverá."),
    ];
    let outcome = store.append(append(id, false, batch)).await.unwrap();
    assert_eq!((outcome.inserted.len(), outcome.duplicates), (2, 2));
    assert_eq!(
        contents(store, id).await,
        [
            (1, "Hola".to_owned()),
            (2, "¡Hola!".into()),
            (3, "¿Y mañana?".into()),
            (4, "Mañana lloverá.".into())
        ]
    );

    // A new conversation whose every message is already stored is not created at all.
    let copy = Uuid::now_v7();
    let mut request = append(copy, true, exchange());
    request.user_email = Some("copia@example.com".into());
    let outcome = store.append(request).await.unwrap();
    assert_eq!((outcome.created, outcome.inserted.len(), outcome.duplicates), (false, 0, 2));
    assert_eq!(store.conversation(copy).await.unwrap_err().code(), "not_found");
    let empty = store.append(append(copy, true, Vec::new())).await.unwrap();
    assert!(!empty.created);
    assert_eq!(store.count_conversations().await.unwrap(), 1);
}

async fn a_role_less_message_stores_nothing(store: &SqlStore) {
    let id = Uuid::now_v7();
    let batch = vec![
        keyed(Role::User, "primero", "role-less:1"),
        NewMessage { content: "sin autor".into(), ..NewMessage::default() },
        NewMessage::new(Role::Assistant, "tercero"),
    ];
    let mut request = append(id, true, batch.clone());
    request.user_email = Some("nadie@example.com".into());
    let error = store.append(request).await.unwrap_err();
    assert_eq!(error.code(), "invalid_input", "{error}");
    assert_eq!(store.conversation(id).await.unwrap_err().code(), "not_found");
    assert_eq!(store.count_conversations().await.unwrap(), 0);

    // Nor does it add anything to an existing conversation.
    store.append(append(id, true, vec![NewMessage::new(Role::User, "hola")])).await.unwrap();
    assert_eq!(store.append(append(id, false, batch)).await.unwrap_err().code(), "invalid_input");
    assert_eq!(contents(store, id).await, [(1, "hola".to_owned())]);
    // The first message's key was never stored.
    let retry =
        store.append(append(id, false, vec![keyed(Role::User, "primero", "role-less:1")])).await.unwrap();
    assert_eq!(retry.inserted.len(), 1);
}

async fn a_failing_insert_mid_batch_stores_nothing(store: &SqlStore) {
    let id = Uuid::now_v7();
    let attachment = Attachment {
        id: Uuid::now_v7(),
        original_name: "informe.pdf".into(),
        stored_path: "uploads/informe.pdf".into(),
        size_bytes: 10,
        content_type: Some("application/pdf".into()),
        sha256: "00".repeat(32),
    };
    // The second message reuses the first one's attachment id: the database refuses it after the
    // conversation, the user, the first message and its attachment were written.
    let first =
        NewMessage { attachments: vec![attachment.clone()], ..keyed(Role::User, "adjunto", "mid-batch:1") };
    let second =
        NewMessage { attachments: vec![attachment], ..NewMessage::new(Role::User, "el mismo adjunto") };
    let mut request = append(id, true, vec![first.clone(), second]);
    request.user_email = Some("eva@example.com".into());
    let error = store.append(request).await.unwrap_err();
    assert_eq!(error.code(), "internal", "{error}");
    assert!(error.to_string().contains("attachment"), "{error}");

    assert_eq!(store.conversation(id).await.unwrap_err().code(), "not_found");
    assert_eq!(store.count_conversations().await.unwrap(), 0);
    // Everything was rolled back: the same first message (same key, same attachment id) now stores.
    let outcome = store.append(append(id, true, vec![first])).await.unwrap();
    assert_eq!((outcome.created, outcome.inserted.len()), (true, 1));
    assert_eq!(store.attachments(outcome.inserted[0]).await.unwrap().len(), 1);
}
