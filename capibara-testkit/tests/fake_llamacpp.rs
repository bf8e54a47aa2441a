//! The llama.cpp fake writes `/completion` exactly as llama.cpp server does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use capibara_testkit::upstream::{Beat, FakeReply, FakeUpstream, Protocol, ReasoningStyle};
use serde_json::{Value, json};
use support::{data, get, post, sse_frames};

fn completion_request(stream: bool) -> Value {
    json!({ "prompt": "<|start|>user<|message|>Hola<|end|><|start|>assistant", "n_predict": 32, "stream": stream })
}

fn completion_url(fake: &FakeUpstream) -> String {
    format!("{}/completion", fake.url())
}

fn script() -> FakeReply {
    FakeReply::Stream(vec![
        Beat::Reasoning("Pienso".into()),
        Beat::Content("Hola ".into()),
        Beat::Content("mundo".into()),
        Beat::Usage { prompt_tokens: 21, completion_tokens: 5 },
        Beat::Finish("stop".into()),
    ])
}

#[tokio::test]
async fn streams_content_chunks_with_harmony_markup_and_a_final_chunk() {
    let fake = FakeUpstream::start(Protocol::LlamaCpp).await;
    assert_eq!(fake.base_url(), fake.url());
    fake.push(script());
    let response = post(&completion_url(&fake), &completion_request(true)).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let frames = sse_frames(response).await;
    let chunks: Vec<Value> = frames.iter().map(|frame| data(frame)).collect();
    let (last, partial) = chunks.split_last().unwrap();
    for chunk in partial {
        assert_eq!(chunk.as_object().unwrap().len(), 3, "{chunk}");
        assert_eq!(chunk["stop"], false);
        assert_eq!(chunk["index"], 0);
    }
    let pieces: Vec<&str> = partial.iter().map(|chunk| chunk["content"].as_str().unwrap()).collect();
    assert_eq!(
        pieces,
        [
            "<|channel|>",
            "analysis",
            "<|message|>",
            "Pienso",
            "<|end|>",
            "<|start|>",
            "assistant",
            "<|channel|>",
            "final",
            "<|message|>",
            "Hola ",
            "mundo"
        ]
    );
    assert_eq!(last["content"], "");
    assert_eq!(last["stop"], true);
    assert_eq!(last["stop_type"], "eos");
    assert_eq!(last["tokens_predicted"], 5);
    assert_eq!(last["tokens_evaluated"], 21);
    assert_eq!(last["truncated"], false);
    assert_eq!(last["model"], "fake-model");
    assert_eq!(last["timings"]["predicted_n"], 5);
    assert_eq!(last["timings"]["prompt_n"], 21);
    assert!(last["timings"]["predicted_ms"].is_f64());
}

#[tokio::test]
async fn think_tags_and_stop_types() {
    let fake = FakeUpstream::start(Protocol::LlamaCpp).await;
    fake.set_reasoning_style(ReasoningStyle::ThinkTags);
    fake.push(FakeReply::Stream(vec![
        Beat::Reasoning("Pienso".into()),
        Beat::Content("Hola".into()),
        Beat::Finish("length".into()),
    ]));
    let frames = sse_frames(post(&completion_url(&fake), &completion_request(true)).await).await;
    let chunks: Vec<Value> = frames.iter().map(|frame| data(frame)).collect();
    let text: String = chunks.iter().map(|chunk| chunk["content"].as_str().unwrap()).collect();
    assert_eq!(text, "<think>Pienso</think>Hola");
    assert_eq!(chunks.last().unwrap()["stop_type"], "limit");
    assert_eq!(
        chunks.last().unwrap()["tokens_predicted"],
        1,
        "one content beat without usage counts one token"
    );
}

#[tokio::test]
async fn non_streaming_completion_is_one_object() {
    let fake = FakeUpstream::start(Protocol::LlamaCpp).await;
    fake.push(script());
    let response = post(&completion_url(&fake), &completion_request(false)).await;
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["content"],
        "<|channel|>analysis<|message|>Pienso<|end|><|start|>assistant<|channel|>final<|message|>Hola mundo"
    );
    assert_eq!(body["stop"], true);
    assert_eq!(body["stop_type"], "eos");
    assert_eq!(body["tokens_predicted"], 5);
}

#[tokio::test]
async fn error_frames_and_status_documents() {
    let fake = FakeUpstream::start(Protocol::LlamaCpp).await;
    fake.push(FakeReply::Stream(vec![
        Beat::Content("a".into()),
        Beat::KeepAlive,
        Beat::Error("slot failed".into()),
    ]));
    fake.push(FakeReply::status(400, "the request exceeds the available context size"));
    let frames = sse_frames(post(&completion_url(&fake), &completion_request(true)).await).await;
    assert_eq!(frames[1], ": keep-alive");
    assert_eq!(
        data(&frames[2]),
        json!({ "error": { "code": 500, "message": "slot failed", "type": "server_error" } })
    );
    let response = post(&completion_url(&fake), &completion_request(true)).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "error": { "code": 400, "message": "the request exceeds the available context size",
                           "type": "invalid_request_error" } })
    );
}

#[tokio::test]
async fn health_models_and_props_answer_until_loading() {
    let fake = FakeUpstream::start(Protocol::LlamaCpp).await;
    let health = get(&format!("{}/health", fake.url())).await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<Value>().await.unwrap(), json!({ "status": "ok" }));
    let models: Value = get(&format!("{}/v1/models", fake.url())).await.json().await.unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "fake-model");
    let props: Value = get(&format!("{}/props", fake.url())).await.json().await.unwrap();
    assert!(props["default_generation_settings"]["n_ctx"].is_u64());

    let mut request = completion_request(false);
    request["model"] = json!("gpt-oss-20b");
    post(&completion_url(&fake), &request).await.text().await.unwrap();
    let models: Value = get(&format!("{}/v1/models", fake.url())).await.json().await.unwrap();
    assert_eq!(models["data"][0]["id"], "gpt-oss-20b");

    fake.set_healthy(false);
    let loading =
        json!({ "error": { "code": 503, "message": "Loading model", "type": "unavailable_error" } });
    for path in ["/health", "/v1/models", "/props"] {
        let response = get(&format!("{}{path}", fake.url())).await;
        assert_eq!(response.status(), 503, "{path}");
        assert_eq!(response.json::<Value>().await.unwrap(), loading);
    }
}
