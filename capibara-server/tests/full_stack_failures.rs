#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Upstream failures through the whole stack (real backend, fake upstream on a socket, SQLite store):
//! each is an HTTP error or an error frame, with the right status, and storage stays exact.

mod support;

use std::time::Duration;

use capibara_server::Capibara;
use capibara_testkit::upstream::{Beat, FakeReply, FakeUpstream, Protocol, closed_port_url};
use serde_json::{Value, json};
use support::{TestServer, client, sse_data};

async fn server(base_url: &str, kind: &str, dir: &tempfile::TempDir) -> TestServer {
    let mut config = capibara_server::settings::from_toml(&format!(
        r#"[[llm.backends]]
kind = "{kind}"
base_url = "{base_url}"
model = "fake-model"
timeouts = {{ first_token = "1s", idle = "1s", total = "5s" }}
retry = {{ max_retries = 1, initial_backoff = "10ms" }}
"#
    ))
    .unwrap();
    config.storage.data_dir = dir.path().to_path_buf();
    TestServer::start(Capibara::build(config).await.unwrap()).await
}

async fn stored_conversations(server: &TestServer) -> u64 {
    server.app.store().count_conversations().await.unwrap()
}

#[tokio::test]
async fn an_unreachable_upstream_is_503_on_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&format!("{}/v1", closed_port_url().await), "openai", &dir).await;
    for (path, body) in [
        ("/api/chat", json!({"message": "hola"})),
        ("/api/chat/stream", json!({"message": "hola"})),
        (
            "/v1/chat/completions",
            json!({"model": "capibara", "messages": [{"role": "user", "content": "hola"}], "stream": true}),
        ),
        ("/api/generate", json!({"model": "capibara", "prompt": "hola"})),
    ] {
        let response = client().post(server.at(path)).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 503, "{path}");
        let body: Value = response.json().await.unwrap();
        let message = if path.starts_with("/v1") { &body["error"]["message"] } else { &body["error"] };
        assert!(message.as_str().unwrap().contains("cannot connect"), "{path}: {body}");
    }
    assert_eq!(stored_conversations(&server).await, 0);
}

#[tokio::test]
async fn an_upstream_that_stays_silent_is_504() {
    let upstream = FakeUpstream::start(Protocol::OpenAi).await;
    upstream.set_default(FakeReply::Stream(vec![
        Beat::Delay(Duration::from_secs(3)),
        Beat::Content("tarde".into()),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let server = server(&upstream.base_url(), "openai", &dir).await;
    let response =
        client().post(server.at("/api/chat")).json(&json!({"message": "hola"})).send().await.unwrap();
    assert_eq!(response.status(), 504);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "timeout");
    assert_eq!(stored_conversations(&server).await, 0);
}

#[tokio::test]
async fn upstream_errors_are_502_and_rate_limits_429() {
    let upstream = FakeUpstream::start(Protocol::Ollama).await;
    upstream.set_default(FakeReply::status(400, r#"{"error":"invalid option"}"#));
    let dir = tempfile::tempdir().unwrap();
    let server = server(&upstream.base_url(), "ollama", &dir).await;
    let response =
        client().post(server.at("/api/chat")).json(&json!({"message": "hola"})).send().await.unwrap();
    assert_eq!(response.status(), 502);
    assert!(response.text().await.unwrap().contains("invalid option"));

    upstream.set_default(FakeReply::Status {
        status: 429,
        body: r#"{"error":"busy"}"#.into(),
        retry_after_secs: Some(7),
    });
    let response =
        client().post(server.at("/api/chat")).json(&json!({"message": "hola"})).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(stored_conversations(&server).await, 0);
}

#[tokio::test]
async fn an_upstream_cut_mid_stream_ends_every_stream_with_an_error_and_keeps_the_partial_answer_once() {
    let upstream = FakeUpstream::start(Protocol::LlamaCpp).await;
    let cut = FakeReply::Stream(vec![
        Beat::Content("Empiezo ".into()),
        Beat::Content("a contar".into()),
        Beat::Disconnect,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let server = server(&upstream.base_url(), "llamacpp", &dir).await;

    upstream.push(cut.clone());
    let response = client()
        .post(server.at("/api/chat/stream"))
        .json(&json!({"message": "cuéntame"}))
        .send()
        .await
        .unwrap();
    let frames = sse_data(&response.text().await.unwrap());
    let content: String = frames.iter().filter_map(|f| f["content"].as_str()).collect();
    assert_eq!(content, "Empiezo a contar");
    let last = frames.last().unwrap();
    assert_eq!((last["done"].as_bool(), last["code"].as_str()), (Some(true), Some("upstream_error")));
    let id = last["conversation_id"].as_str().unwrap();
    let stored: Value = client()
        .get(server.at(&format!("/api/conversations/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let messages = stored["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["content"], "Empiezo a contar");
    assert_eq!(messages[1]["partial"], true);

    // The whole-answer route reports the cut as 502 (the partial answer is still stored).
    upstream.push(cut.clone());
    let response =
        client().post(server.at("/api/chat")).json(&json!({"message": "otra vez"})).send().await.unwrap();
    assert_eq!(response.status(), 502);

    // The OpenAI route ends its stream with an OpenAI error frame and no [DONE].
    upstream.push(cut);
    let body = client()
        .post(server.at("/v1/chat/completions"))
        .json(
            &json!({"model": "capibara", "stream": true, "messages": [{"role": "user", "content": "hola"}]}),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!body.contains("[DONE]"), "{body}");
    let frames = sse_data(&body);
    assert_eq!(frames.last().unwrap()["error"]["type"], "server_error");
    assert_eq!(stored_conversations(&server).await, 2, "the stateless OpenAI route stores nothing");
}

#[tokio::test]
async fn openai_and_ollama_routes_refuse_bad_input_in_their_own_shapes() {
    let upstream = FakeUpstream::start(Protocol::OpenAi).await;
    let dir = tempfile::tempdir().unwrap();
    let server = server(&upstream.base_url(), "openai", &dir).await;
    let cases = [
        ("/v1/chat/completions", "{not json", 400),
        ("/v1/chat/completions", r#"{"model":"m","messages":[]}"#, 400),
        (
            "/v1/chat/completions",
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":7}"#,
            400,
        ),
        ("/v1/chat/completions", r#"{"model":"m","messages":[{"role":"wizard","content":"hi"}]}"#, 400),
        ("/v1/chat/completions", r#"{"messages":[{"role":"user","content":"hi"}]}"#, 400),
        ("/api/chat", r#"{"model":"m","messages":[{"role":"user","content":""}]}"#, 400),
        ("/api/chat", r#"{"model":"m","messages":"hola"}"#, 400),
        ("/api/generate", r#"{"model":"m","prompt":""}"#, 400),
        ("/api/generate", r#"{"model":"m","prompt":"hola","options":{"temperature":"hot"}}"#, 400),
    ];
    for (path, body, status) in cases {
        let response = client()
            .post(server.at(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{path} {body}");
        let error: Value = response.json().await.unwrap();
        if path.starts_with("/v1") {
            assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
        } else {
            assert!(error["error"].is_string(), "{error}");
        }
    }
    assert!(upstream.requests().is_empty(), "nothing invalid reached the upstream");
    let response = client().post(server.at("/v1/chat/completions")).body("{}").send().await.unwrap();
    assert_eq!(response.status(), 415);
}
