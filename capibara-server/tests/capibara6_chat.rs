#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The Capibara6 chat contract over a real socket: `/api/chat` (JSON and multipart) and `/api/chat/stream`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use capibara_core::Error;
use capibara_core::chat::{FinishReason, StreamEvent};
use capibara_core::store::ConversationStore;
use capibara_core::testing::{Reply, ScriptedBackend, Step};
use serde_json::{Value, json};
use support::{TestServer, client, sse_data};

async fn server_with(
    backend: ScriptedBackend,
) -> (TestServer, Arc<ScriptedBackend>, capibara_core::testing::InMemoryConversationStore, tempfile::TempDir)
{
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(backend);
    let (server, store) = TestServer::with_backend(Some(backend.clone()), dir.path()).await;
    (server, backend, store, dir)
}

#[tokio::test]
async fn json_chat_answers_in_the_original_shape_and_continues_the_conversation() {
    let (server, backend, store, _dir) =
        server_with(ScriptedBackend::replying("Rust es un lenguaje de sistemas.")).await;
    let response = client()
        .post(server.at("/api/chat"))
        .json(&json!({"message": "¿Qué es Rust?", "max_tokens": 200, "temperature": 0.8}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["response"], "Rust es un lenguaje de sistemas.");
    assert_eq!(body["model"], "scripted-model");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    let conversation = body["conversation_id"].as_str().unwrap().to_owned();
    let request = &backend.requests()[0];
    assert_eq!(request.options.max_tokens, Some(200));
    assert_eq!(request.options.temperature, Some(0.8));

    let body: Value = client()
        .post(server.at("/api/chat"))
        .json(&json!({"message": "¿Y Go?", "conversation_id": conversation}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["conversation_id"], conversation.as_str());
    let sent: Vec<String> = backend.requests()[1].messages.iter().map(|m| m.content.clone()).collect();
    assert_eq!(&sent[1..], ["¿Qué es Rust?", "Rust es un lenguaje de sistemas.", "¿Y Go?"]);
    let id = conversation.parse().unwrap();
    assert_eq!(store.recent_messages(id, 10).await.unwrap().len(), 4);

    // Readable back over HTTP.
    let stored: Value = client()
        .get(server.at(&format!("/api/conversations/{conversation}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored["messages"].as_array().unwrap().len(), 4);
    assert_eq!(stored["messages"][3]["content"], "Rust es un lenguaje de sistemas.");
}

#[tokio::test]
async fn the_stream_sends_content_frames_then_a_done_frame() {
    let backend = ScriptedBackend::replying("x");
    backend.push(Reply::Stream(vec![
        Step::Event(StreamEvent::reasoning("secret chain of thought")),
        Step::Event(StreamEvent::content("Hola")),
        Step::Event(StreamEvent::content(" mundo")),
        Step::Event(StreamEvent::done(FinishReason::Stop)),
    ]));
    let (server, _backend, _store, _dir) = server_with(backend).await;
    let response =
        client().post(server.at("/api/chat/stream")).json(&json!({"message": "hola"})).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let body = response.text().await.unwrap();
    assert!(!body.contains("secret chain"), "reasoning leaked into the stream: {body}");
    let frames = sse_data(&body);
    assert_eq!(frames[0], json!({"content": "Hola", "done": false}));
    assert_eq!(frames[1], json!({"content": " mundo", "done": false}));
    let last = frames.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["content"], "");
    assert_eq!(last["full_response"], "Hola mundo");
    assert!(last["conversation_id"].is_string());
}

#[tokio::test]
async fn reasoning_frames_only_when_asked_and_never_as_content() {
    let backend = ScriptedBackend::replying("x");
    backend.push(Reply::Stream(vec![
        Step::Event(StreamEvent::reasoning("pensando")),
        Step::Event(StreamEvent::content("Hola")),
        Step::Event(StreamEvent::done(FinishReason::Stop)),
    ]));
    let (server, _backend, _store, _dir) = server_with(backend).await;
    let body = client()
        .post(server.at("/api/chat/stream"))
        .json(&json!({"message": "hola", "include_reasoning": true}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let frames = sse_data(&body);
    assert_eq!(frames[0], json!({"content": "", "reasoning": "pensando", "done": false}));
    assert_eq!(frames.last().unwrap()["full_response"], "Hola");
}

#[tokio::test]
async fn an_answer_cut_mid_stream_ends_with_an_error_frame_and_is_stored_once_as_partial() {
    let backend = ScriptedBackend::replying("x");
    backend.push(Reply::Stream(vec![
        Step::Event(StreamEvent::content("Media ")),
        Step::Fail(Error::upstream(502, "upstream closed the stream before it finished")),
    ]));
    let (server, _backend, store, _dir) = server_with(backend).await;
    let body = client()
        .post(server.at("/api/chat/stream"))
        .json(&json!({"message": "hola"}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let frames = sse_data(&body);
    assert_eq!(frames[0]["content"], "Media ");
    let last = frames.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["code"], "upstream_error");
    assert!(last["error"].as_str().unwrap().contains("closed the stream"));
    let id = last["conversation_id"].as_str().unwrap().parse().unwrap();
    let stored = store.recent_messages(id, 10).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored[1].partial);
    assert_eq!(store.count_conversations().await.unwrap(), 1);
}

#[tokio::test]
async fn upstream_down_is_an_http_error_and_nothing_is_stored() {
    let backend = ScriptedBackend::replying("x");
    backend.push(Reply::Refuse(Error::unavailable("cannot reach ollama@http://127.0.0.1:9")));
    backend.push(Reply::Refuse(Error::unavailable("cannot reach ollama@http://127.0.0.1:9")));
    let (server, _backend, store, _dir) = server_with(backend).await;
    for path in ["/api/chat", "/api/chat/stream"] {
        let response = client().post(server.at(path)).json(&json!({"message": "hola"})).send().await.unwrap();
        assert_eq!(response.status(), 503, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "unavailable");
        assert!(body["error"].as_str().unwrap().contains("cannot reach"));
        assert!(body["request_id"].is_string());
    }
    assert_eq!(store.count_conversations().await.unwrap(), 0);
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let (server, backend, store, _dir) = server_with(ScriptedBackend::replying("x")).await;
    let post = |body: reqwest::Body, content_type: &'static str| {
        client().post(server.at("/api/chat")).header("content-type", content_type).body(body).send()
    };
    let cases: Vec<(reqwest::Body, &str, u16, &str)> = vec![
        (r#"{"message": ""}"#.into(), "application/json", 400, "Mensaje requerido"),
        (r#"{"max_tokens": 10}"#.into(), "application/json", 400, "Mensaje requerido"),
        (r#"{"message": "hola""#.into(), "application/json", 400, "invalid JSON"),
        (r#"{"message": "hola", "temperature": "hot"}"#.into(), "application/json", 400, "temperature"),
        (r#"{"message": "hola", "temperature": 9}"#.into(), "application/json", 400, "temperature"),
        (r#"{"message": "hola", "max_tokens": 0}"#.into(), "application/json", 400, "max_tokens"),
        ("message=hola".into(), "text/plain", 415, "application/json"),
        (
            r#"{"message": "hola", "conversation_id": "abc"}"#.into(),
            "application/json",
            400,
            "not a valid id",
        ),
        (
            format!(r#"{{"message": "hola", "conversation_id": "{}"}}"#, uuid::Uuid::now_v7()).into(),
            "application/json",
            404,
            "not found",
        ),
        (
            format!(r#"{{"message": "{}"}}"#, "a".repeat(5 * 1024 * 1024)).into(),
            "application/json",
            413,
            "larger",
        ),
    ];
    for (body, content_type, status, needle) in cases {
        let response = post(body, content_type).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "expected {status} for `{needle}`");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], status);
        let message = body["error"].as_str().unwrap();
        assert!(message.contains(needle), "`{message}` should mention `{needle}`");
    }
    assert!(backend.requests().is_empty());
    assert_eq!(store.count_conversations().await.unwrap(), 0);
}

#[tokio::test]
async fn without_a_backend_chat_is_503_naming_how_to_configure_one() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _store) = TestServer::with_backend(None, dir.path()).await;
    let response =
        client().post(server.at("/api/chat")).json(&json!({"message": "hola"})).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("[[llm.backends]]"));
    let health: Value = client().get(server.at("/api/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["ollama_status"], "error");
}

#[tokio::test]
async fn text_attachments_reach_the_model_and_are_stored_safely() {
    let (server, backend, store, dir) = server_with(ScriptedBackend::replying("Leído.")).await;
    let form = reqwest::multipart::Form::new()
        .text("message", "Resume el archivo")
        .text("max_tokens", "100")
        .part(
            "files",
            reqwest::multipart::Part::bytes("precio,cantidad\n3,4\n".as_bytes()).file_name("../../datos.csv"),
        )
        .part("files", reqwest::multipart::Part::bytes(vec![0u8, 1, 2, 3]).file_name("foto.PNG"));
    let response = client().post(server.at("/api/chat")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let files = body["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["name"], "../../datos.csv");
    assert_eq!(files[0]["size"], 20);
    let stored_path = files[0]["path"].as_str().unwrap();
    assert!(
        stored_path.starts_with("uploads/")
            && stored_path.ends_with("-datos.csv")
            && !stored_path.contains("..")
    );
    assert_eq!(std::fs::read_to_string(dir.path().join(stored_path)).unwrap(), "precio,cantidad\n3,4\n");
    let requests = backend.requests();
    let prompt = &requests[0].messages.last().unwrap().content;
    assert!(prompt.contains("precio,cantidad"), "{prompt}");
    assert!(prompt.contains("foto.PNG"), "{prompt}");
    assert_eq!(backend.requests()[0].options.max_tokens, Some(100));
    let id = body["conversation_id"].as_str().unwrap().parse().unwrap();
    let user = &store.recent_messages(id, 10).await.unwrap()[0];
    assert_eq!(store.attachments(user.id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn oversized_and_forbidden_uploads_are_refused_and_leave_nothing_behind() {
    let (server, backend, store, dir) = server_with(ScriptedBackend::replying("x")).await;
    let twenty_mb = vec![b'a'; 20 * 1024 * 1024];
    let form = reqwest::multipart::Form::new()
        .text("message", "mira")
        .part("files", reqwest::multipart::Part::bytes(b"ok".to_vec()).file_name("small.txt"))
        .part("files", reqwest::multipart::Part::bytes(twenty_mb).file_name("big.txt"));
    let response = client().post(server.at("/api/chat")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("10 MB"), "{body}");

    let form = reqwest::multipart::Form::new()
        .text("message", "mira")
        .part("files", reqwest::multipart::Part::bytes(b"MZ".to_vec()).file_name("setup.exe"));
    let response = client().post(server.at("/api/chat")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains(".exe"));

    assert!(backend.requests().is_empty());
    assert_eq!(store.count_conversations().await.unwrap(), 0);
    let leftovers: Vec<_> = walk(dir.path());
    assert!(leftovers.is_empty(), "files left behind: {leftovers:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_leaves_a_partial_answer() {
    let backend = ScriptedBackend::replying("x");
    backend.push(Reply::Stream(vec![
        Step::Event(StreamEvent::content("Empiezo")),
        Step::Sleep(Duration::from_secs(60)),
        Step::Event(StreamEvent::done(FinishReason::Stop)),
    ]));
    let (server, _backend, store, _dir) = server_with(backend).await;
    let mut response =
        client().post(server.at("/api/chat/stream")).json(&json!({"message": "hola"})).send().await.unwrap();
    let id = response.headers()["x-conversation-id"].to_str().unwrap().parse().unwrap();
    let first = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("Empiezo"));
    drop(response);
    for _ in 0..200 {
        if store.count_conversations().await.unwrap() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(store.count_conversations().await.unwrap(), 1);
    let stored = store.recent_messages(id, 10).await.unwrap();
    assert_eq!(stored[1].content, "Empiezo");
    assert!(stored[1].partial);
}
