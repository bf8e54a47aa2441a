#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The conversational turn, end to end over the in-memory backend and store.

use std::sync::Arc;
use std::time::Duration;

use capibara_core::Error;
use capibara_core::chat::{FinishReason, Role, StreamEvent};
use capibara_core::config::ChatConfig;
use capibara_core::store::ConversationStore;
use capibara_core::testing::{InMemoryConversationStore, Reply, ScriptedBackend, Step};
use capibara_core::turn::{ChatTurn, ContextSource, TurnEvent, TurnInput, TurnSettings};
use futures::StreamExt;

fn setup(backend: ScriptedBackend) -> (ChatTurn, Arc<ScriptedBackend>, InMemoryConversationStore) {
    let backend = Arc::new(backend);
    let store = InMemoryConversationStore::new();
    let turns =
        ChatTurn::new(backend.clone(), Arc::new(store.clone()), TurnSettings::from(&ChatConfig::default()));
    (turns, backend, store)
}

fn input(message: &str) -> TurnInput {
    TurnInput { message: message.into(), ..TurnInput::default() }
}

#[tokio::test]
async fn a_new_conversation_is_stored_when_the_answer_ends() {
    let (turns, backend, store) = setup(ScriptedBackend::replying("Hola, ¿en qué te ayudo?"));
    let summary = turns.complete(input("Hola")).await.unwrap();
    assert_eq!(summary.content, "Hola, ¿en qué te ayudo?");
    assert_eq!(summary.finish_reason, FinishReason::Stop);
    let messages = store.recent_messages(summary.conversation_id, 10).await.unwrap();
    assert_eq!(messages.iter().map(|m| m.role).collect::<Vec<_>>(), [Role::User, Role::Assistant]);
    assert_eq!(messages[1].content, summary.content);
    assert_eq!(messages[1].model.as_deref(), Some("scripted-model"));
    assert!(!messages[1].partial);
    // The system prompt leads the request and the user message ends it.
    let request = &backend.requests()[0];
    assert_eq!(request.messages[0].role, Role::System);
    assert_eq!(request.messages.last().unwrap().content, "Hola");
}

#[tokio::test]
async fn sources_go_to_the_model_numbered_and_the_store_keeps_the_question() {
    let (turns, backend, store) = setup(ScriptedBackend::replying("Es un roedor [1]."));
    let sources = vec![
        ContextSource { label: "capibara.md".into(), text: "El capibara es el roedor más grande.".into() },
        ContextSource { label: "llama.md".into(), text: "La llama vive en los Andes.".into() },
    ];
    let stream = turns.stream(TurnInput { sources, ..input("¿Qué es un capibara?") }).await.unwrap();
    assert_eq!(stream.sources_used, 2);
    let summary = stream.finish().await.unwrap();
    let sent = backend.requests()[0].messages.last().unwrap().content.clone();
    assert!(sent.contains("[1] capibara.md\nEl capibara es el roedor más grande."), "{sent}");
    assert!(sent.contains("[2] llama.md") && sent.ends_with("Pregunta: ¿Qué es un capibara?"), "{sent}");
    let stored = store.recent_messages(summary.conversation_id, 10).await.unwrap();
    assert_eq!(stored[0].content, "¿Qué es un capibara?");
}

#[tokio::test]
async fn sources_that_do_not_fit_the_model_are_left_out() {
    // 1,000 tokens of context: half is reserved for the answer, and no source of ~1,300 tokens fits.
    let (turns, backend, _) = setup(ScriptedBackend::replying("No lo sé.").with_context(1_000));
    let small = ContextSource { label: "a".into(), text: "El capibara nada.".into() };
    let huge = ContextSource { label: "b".into(), text: "palabra ".repeat(500) };
    let input = TurnInput { sources: vec![small, huge], ..input("¿Nada el capibara?") };
    let stream = turns.stream(TurnInput { options: max_tokens(200), ..input }).await.unwrap();
    assert_eq!(stream.sources_used, 1);
    stream.finish().await.unwrap();
    let sent = backend.requests()[0].messages.last().unwrap().content.clone();
    assert!(sent.contains("[1] a") && !sent.contains("[2]"), "{sent}");
}

fn max_tokens(tokens: u32) -> capibara_core::chat::SamplingOptions {
    capibara_core::chat::SamplingOptions { max_tokens: Some(tokens), ..Default::default() }
}

#[tokio::test]
async fn history_is_sent_on_the_next_turn() {
    let (turns, backend, _store) = setup(ScriptedBackend::replying("respuesta"));
    let first = turns.complete(input("primera pregunta")).await.unwrap();
    let second = turns
        .complete(TurnInput { conversation_id: Some(first.conversation_id), ..input("segunda pregunta") })
        .await
        .unwrap();
    assert_eq!(second.conversation_id, first.conversation_id);
    let contents: Vec<_> = backend.requests()[1].messages.iter().map(|m| m.content.clone()).collect();
    assert_eq!(&contents[1..], ["primera pregunta", "respuesta", "segunda pregunta"]);
}

#[tokio::test]
async fn an_unknown_conversation_is_not_found_and_the_model_is_not_called() {
    let (turns, backend, _store) = setup(ScriptedBackend::replying("x"));
    let error = turns
        .complete(TurnInput { conversation_id: Some(uuid::Uuid::now_v7()), ..input("hola") })
        .await
        .unwrap_err();
    assert_eq!(error.code(), "not_found");
    assert!(backend.requests().is_empty());
}

#[tokio::test]
async fn bad_input_is_refused_before_calling_the_model() {
    let (turns, backend, _store) = setup(ScriptedBackend::replying("x"));
    assert_eq!(turns.complete(input("  \n ")).await.unwrap_err().code(), "invalid_input");
    assert_eq!(turns.complete(input(&"a".repeat(100_001))).await.unwrap_err().code(), "too_large");
    let bad_email = TurnInput { user_email: Some("no-at-sign".into()), ..input("hola") };
    assert_eq!(turns.complete(bad_email).await.unwrap_err().code(), "invalid_input");
    assert!(backend.requests().is_empty());
}

#[tokio::test]
async fn a_failure_before_the_first_token_stores_nothing() {
    let backend = ScriptedBackend::replying("x");
    backend.push(Reply::Refuse(Error::unavailable("upstream down")));
    let (turns, _, store) = setup(backend);
    assert_eq!(turns.complete(input("hola")).await.unwrap_err().code(), "unavailable");
    assert_eq!(store.count_conversations().await.unwrap(), 0);
}

#[tokio::test]
async fn an_answer_cut_mid_stream_is_stored_as_partial_and_reported() {
    let backend = ScriptedBackend::replying("x");
    backend.push(Reply::Stream(vec![
        Step::Event(StreamEvent::content("Media ")),
        Step::Event(StreamEvent::content("respuesta")),
        Step::Fail(Error::upstream(502, "stream cut")),
    ]));
    let (turns, _, store) = setup(backend);
    let mut stream = turns.stream(input("hola")).await.unwrap();
    let conversation = stream.conversation_id;
    let mut seen = String::new();
    let mut failure = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(TurnEvent::Delta(StreamEvent::Content { delta })) => seen.push_str(&delta),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(error) => failure = Some(error),
        }
    }
    assert_eq!(seen, "Media respuesta");
    assert_eq!(failure.unwrap().code(), "upstream_error");
    let messages = store.recent_messages(conversation, 10).await.unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].content, "Media respuesta");
    assert!(messages[1].partial);
}

#[tokio::test]
async fn a_reader_that_goes_away_cancels_the_answer_and_keeps_what_was_said() {
    let backend = ScriptedBackend::replying("x");
    backend.push(Reply::Stream(vec![
        Step::Event(StreamEvent::content("Empiezo")),
        Step::Sleep(Duration::from_secs(30)),
        Step::Event(StreamEvent::content(" y nunca acabo")),
        Step::Event(StreamEvent::done(FinishReason::Stop)),
    ]));
    let (turns, _, store) = setup(backend);
    let mut stream = turns.stream(input("hola")).await.unwrap();
    let conversation = stream.conversation_id;
    assert!(matches!(stream.next().await, Some(Ok(TurnEvent::Delta(_)))));
    drop(stream);
    let stored =
        wait_for(|| async { store.recent_messages(conversation, 10).await.ok().filter(|m| m.len() == 2) })
            .await;
    assert_eq!(stored[1].content, "Empiezo");
    assert!(stored[1].partial);
    assert_eq!(stored[1].finish_reason, Some(FinishReason::Cancelled));
}

#[tokio::test]
async fn reasoning_is_kept_apart_from_the_answer() {
    let backend = ScriptedBackend::replying("x");
    backend.push(Reply::Stream(vec![
        Step::Event(StreamEvent::reasoning("The user greets; respond in Spanish.")),
        Step::Event(StreamEvent::content("¡Hola!")),
        Step::Event(StreamEvent::done(FinishReason::Stop)),
    ]));
    let (turns, _, store) = setup(backend);
    let summary = turns.complete(input("hola")).await.unwrap();
    assert_eq!(summary.content, "¡Hola!");
    let stored = store.recent_messages(summary.conversation_id, 10).await.unwrap();
    assert_eq!(stored[1].content, "¡Hola!");
    assert_eq!(stored[1].reasoning.as_deref(), Some("The user greets; respond in Spanish."));
}

#[tokio::test]
async fn the_same_idempotency_key_stores_the_exchange_once() {
    let (turns, _, store) = setup(ScriptedBackend::replying("respuesta"));
    let first =
        turns.complete(TurnInput { idempotency_key: Some("k1".into()), ..input("hola") }).await.unwrap();
    let again = TurnInput {
        conversation_id: Some(first.conversation_id),
        idempotency_key: Some("k1".into()),
        ..input("hola")
    };
    turns.complete(again).await.unwrap();
    assert_eq!(store.recent_messages(first.conversation_id, 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn history_is_trimmed_to_the_context_window() {
    let (turns, backend, _) = setup(ScriptedBackend::replying(&"palabra ".repeat(50)).with_context(1200));
    let mut conversation = None;
    for i in 0..12 {
        let input = TurnInput {
            conversation_id: conversation,
            options: capibara_core::chat::SamplingOptions { max_tokens: Some(200), ..Default::default() },
            ..input(&format!("pregunta número {i} {}", "relleno ".repeat(20)))
        };
        conversation = Some(turns.complete(input).await.unwrap().conversation_id);
    }
    let last = backend.requests().pop().unwrap();
    // Everything would need well over 1,000 tokens; only the newest turns were kept.
    assert!(last.messages.len() < 24, "{} messages sent", last.messages.len());
    assert!(last.messages.last().unwrap().content.starts_with("pregunta número 11"));
    assert_eq!(last.messages[1].role, Role::User);
}

async fn wait_for<T, F, Fut>(mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(value) = probe().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 2 s");
}
