#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Saving conversations (v2 and legacy v1), status routes, errors, request ids and CORS over a real socket.

mod support;

use std::sync::Arc;

use capibara_core::store::ConversationStore;
use capibara_core::testing::ScriptedBackend;
use serde_json::{Value, json};
use support::{TestServer, client};

async fn server() -> (TestServer, capibara_core::testing::InMemoryConversationStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (server, store) =
        TestServer::with_backend(Some(Arc::new(ScriptedBackend::replying("ok"))), dir.path()).await;
    (server, store, dir)
}

#[tokio::test]
async fn v2_saves_store_one_exchange_and_idempotency_keys_prevent_doubles() {
    let (server, store, _dir) = server().await;
    let save = |key: Option<&'static str>| {
        let mut request = client()
            .post(server.at("/api/save-conversation"))
            .json(&json!({"message": "hola", "response": "¡hola!", "email": "ana@example.com"}));
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send()
    };
    let first: Value = save(Some("save-1")).await.unwrap().json().await.unwrap();
    assert_eq!(first["success"], true);
    assert_eq!(first["message"], "Conversación guardada");
    assert_eq!(first["saved"], 2);
    let again: Value = save(Some("save-1")).await.unwrap().json().await.unwrap();
    assert_eq!(again["saved"], 0);
    assert_eq!(again["duplicates"], 2);
    assert_eq!(store.count_conversations().await.unwrap(), 1);
    let id = first["conversation_id"].as_str().unwrap().parse().unwrap();
    let conversation = store.conversation(id).await.unwrap();
    assert_eq!(conversation.user_email.as_deref(), Some("ana@example.com"));
}

#[tokio::test]
async fn v2_saves_with_missing_fields_get_the_original_error() {
    let (server, store, _dir) = server().await;
    for body in
        [json!({"message": "hola"}), json!({"response": "x"}), json!({"message": "", "response": "x"})]
    {
        let response = client().post(server.at("/api/save-conversation")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "Mensaje y respuesta requeridos");
    }
    let response = client()
        .post(server.at("/api/save-conversation"))
        .json(&json!({"message": "a", "response": "b", "email": "not-an-email"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(store.count_conversations().await.unwrap(), 0);
}

#[tokio::test]
async fn legacy_v1_saves_are_accepted_and_resending_the_history_stores_nothing_twice() {
    let (server, store, _dir) = server().await;
    let mut history = vec![json!({"message": "primera", "timestamp": "2025-10-09T10:00:00.000001"})];
    let mut ids = Vec::new();
    for n in 0..5 {
        let body = json!({"email": "anonymous@capibara6.com", "conversations": history.clone()});
        let response: Value = client()
            .post(server.at("/api/save-conversation"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(response["success"], true);
        assert_eq!(response["saved"], 1, "round {n} should store only the new entry");
        ids.push(response["conversation_id"].as_str().unwrap().to_owned());
        history
            .push(json!({"message": format!("mensaje {n}"), "timestamp": format!("2025-10-09T10:0{n}:30Z")}));
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "one conversation per e-mail");
    let id = ids[0].parse().unwrap();
    let messages = store.recent_messages(id, 100).await.unwrap();
    assert_eq!(messages.len(), 5);
    assert_eq!(messages[0].content, "primera");
}

#[tokio::test]
async fn health_and_models_keep_the_original_fields() {
    let (server, _store, _dir) = server().await;
    let health: Value = client().get(server.at("/api/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["ollama_status"], "ok");
    assert_eq!(health["ollama_model"], "scripted-model");
    assert_eq!(health["database"], "ok");
    assert!(health["timestamp"].is_string());
    let models: Value = client().get(server.at("/api/models")).send().await.unwrap().json().await.unwrap();
    assert_eq!(models["current_model"], "scripted-model");
    assert_eq!(models["models"][0]["name"], "scripted-model");
    let live: Value = client().get(server.at("/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(live["status"], "healthy");
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_error_envelope() {
    let (server, _store, _dir) = server().await;
    let response = client().get(server.at("/api/nope")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
    let response = client().get(server.at("/api/chat")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let response = client()
        .get(server.at(&format!("/api/conversations/{}", uuid::Uuid::now_v7())))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = client().get(server.at("/api/conversations/not-a-uuid")).send().await.unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated_and_appear_in_errors() {
    let (server, _store, _dir) = server().await;
    let response =
        client().get(server.at("/api/nope")).header("x-request-id", "trace-42").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-42");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], "trace-42");
    let response = client()
        .get(server.at("/api/nope"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let generated = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 32);
}

#[tokio::test]
async fn cors_allows_configured_origins_only_and_never_wildcards_credentials() {
    let (server, _store, _dir) = server().await;
    let preflight = |origin: &'static str| {
        client()
            .request(reqwest::Method::OPTIONS, server.at("/api/chat"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,x-requested-with")
            .send()
    };
    let allowed = preflight("http://localhost:8000").await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], "http://localhost:8000");
    assert!(allowed.headers().get("access-control-allow-credentials").is_none());
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(refused.headers().get("access-control-allow-origin").is_none());
}
