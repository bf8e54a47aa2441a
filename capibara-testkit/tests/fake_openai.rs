//! The OpenAI fake writes `/v1/chat/completions` exactly as vLLM and OpenAI do.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use capibara_testkit::upstream::{Beat, FakeReply, FakeUpstream, Protocol, ReasoningStyle};
use serde_json::{Value, json};
use support::{data, get, post, sse_frames};

fn chat_url(fake: &FakeUpstream) -> String {
    format!("{}/chat/completions", fake.base_url())
}

fn streaming_request() -> Value {
    json!({
        "model": "gpt-oss:20b",
        "messages": [{ "role": "user", "content": "Hola" }],
        "stream": true,
        "stream_options": { "include_usage": true },
    })
}

/// A chunk as the fake must write it, with the id and creation time of the answer.
fn chunk(head: &Value, choice: &Value) -> Value {
    json!({ "id": head["id"], "object": "chat.completion.chunk", "created": head["created"],
            "model": "gpt-oss:20b", "choices": [choice] })
}

#[tokio::test]
async fn streams_role_content_finish_usage_and_done() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    assert_eq!(fake.base_url(), format!("{}/v1", fake.url()));
    fake.push(FakeReply::Stream(vec![
        Beat::Content("Hola ".into()),
        Beat::Content("mundo".into()),
        Beat::Usage { prompt_tokens: 7, completion_tokens: 2 },
        Beat::Finish("stop".into()),
    ]));
    let response = post(&chat_url(&fake), &streaming_request()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let frames = sse_frames(response).await;
    assert_eq!(frames.len(), 5, "{frames:#?}");
    let head = data(&frames[0]);
    assert!(head["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(head["created"].as_u64().unwrap() > 1_700_000_000);
    let choice = |delta: Value, finish: Value| json!({ "index": 0, "delta": delta, "finish_reason": finish });
    assert_eq!(head, chunk(&head, &choice(json!({ "role": "assistant", "content": "Hola " }), Value::Null)));
    assert_eq!(data(&frames[1]), chunk(&head, &choice(json!({ "content": "mundo" }), Value::Null)));
    assert_eq!(data(&frames[2]), chunk(&head, &choice(json!({}), json!("stop"))));
    // Usage comes after the finish chunk, with no choices, as OpenAI and vLLM send it.
    let usage = data(&frames[3]);
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"], json!({ "prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9 }));
    assert_eq!(usage["id"], head["id"]);
    assert_eq!(frames[4], "data: [DONE]");
}

#[tokio::test]
async fn usage_is_only_sent_when_asked_for() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    let mut request = streaming_request();
    request.as_object_mut().unwrap().remove("stream_options");
    let frames = sse_frames(post(&chat_url(&fake), &request).await).await;
    assert!(frames.iter().all(|frame| !frame.contains("\"usage\"")), "{frames:#?}");
    assert_eq!(frames.last().unwrap(), "data: [DONE]");
}

#[tokio::test]
async fn reasoning_goes_to_the_configured_field() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    let script =
        vec![Beat::Reasoning("Pienso".into()), Beat::Content("Digo".into()), Beat::Finish("stop".into())];
    for (style, field) in
        [(ReasoningStyle::ReasoningContent, "reasoning_content"), (ReasoningStyle::Reasoning, "reasoning")]
    {
        fake.set_reasoning_style(style);
        fake.push(FakeReply::Stream(script.clone()));
        let frames = sse_frames(post(&chat_url(&fake), &streaming_request()).await).await;
        assert_eq!(data(&frames[0])["choices"][0]["delta"], json!({ "role": "assistant", field: "Pienso" }));
        assert_eq!(data(&frames[1])["choices"][0]["delta"], json!({ "content": "Digo" }));
    }
}

#[tokio::test]
async fn harmony_markup_arrives_inside_content_token_by_token() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    fake.set_reasoning_style(ReasoningStyle::Harmony);
    fake.push(FakeReply::Stream(vec![
        Beat::Reasoning("Pienso".into()),
        Beat::Content("Digo".into()),
        Beat::Finish("stop".into()),
    ]));
    let frames = sse_frames(post(&chat_url(&fake), &streaming_request()).await).await;
    let pieces: Vec<String> = frames
        .iter()
        .filter(|frame| frame.starts_with("data: {"))
        .filter_map(|frame| data(frame)["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
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
            "Digo"
        ]
    );
}

#[tokio::test]
async fn tool_call_arguments_are_split_over_two_chunks() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    fake.push(FakeReply::Stream(vec![
        Beat::ToolCall {
            id: "call_1".into(),
            name: "buscar".into(),
            arguments: r#"{"q":"capibaras"}"#.into(),
        },
        Beat::Finish("tool_calls".into()),
    ]));
    let frames = sse_frames(post(&chat_url(&fake), &streaming_request()).await).await;
    let first = &data(&frames[0])["choices"][0]["delta"];
    assert_eq!(first["role"], "assistant");
    let first_call = &first["tool_calls"][0];
    assert_eq!(first_call["index"], 0);
    assert_eq!(first_call["id"], "call_1");
    assert_eq!(first_call["type"], "function");
    assert_eq!(first_call["function"]["name"], "buscar");
    let second_call = &data(&frames[1])["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(second_call["index"], 0);
    assert!(second_call.get("id").is_none());
    let arguments = format!(
        "{}{}",
        first_call["function"]["arguments"].as_str().unwrap(),
        second_call["function"]["arguments"].as_str().unwrap()
    );
    assert_eq!(arguments, r#"{"q":"capibaras"}"#);
    assert!(!first_call["function"]["arguments"].as_str().unwrap().is_empty());
    assert_eq!(data(&frames[2])["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn keep_alive_malformed_and_error_frames() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    fake.push(FakeReply::Stream(vec![
        Beat::KeepAlive,
        Beat::Malformed("{\"choices\":[".into()),
        Beat::Error("se acabó la memoria".into()),
    ]));
    let frames = sse_frames(post(&chat_url(&fake), &streaming_request()).await).await;
    assert_eq!(frames[0], ": keep-alive");
    assert_eq!(frames[1], "data: {\"choices\":[");
    assert_eq!(
        data(&frames[2]),
        json!({ "error": { "message": "se acabó la memoria", "type": "server_error" } })
    );
    assert_eq!(frames.len(), 3);
}

#[tokio::test]
async fn non_streaming_requests_get_one_chat_completion() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    fake.push(FakeReply::Stream(vec![
        Beat::Reasoning("Pienso ".into()),
        Beat::Content("Hola ".into()),
        Beat::Content("mundo".into()),
        Beat::ToolCall { id: "call_9".into(), name: "hora".into(), arguments: "{}".into() },
        Beat::Usage { prompt_tokens: 3, completion_tokens: 4 },
        Beat::Finish("length".into()),
    ]));
    let request = json!({ "model": "m", "messages": [{ "role": "user", "content": "Hola" }] });
    let response = post(&chat_url(&fake), &request).await;
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "m");
    assert_eq!(
        body["choices"][0]["message"],
        json!({ "role": "assistant", "content": "Hola mundo", "reasoning_content": "Pienso ",
                "tool_calls": [{ "id": "call_9", "type": "function",
                                 "function": { "name": "hora", "arguments": "{}" } }] })
    );
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"], json!({ "prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7 }));
}

#[tokio::test]
async fn status_replies_use_openai_error_documents() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    fake.push(FakeReply::Status {
        status: 429,
        body: "Rate limit reached".into(),
        retry_after_secs: Some(3),
    });
    fake.push(FakeReply::status(400, "bad temperature"));
    let response = post(&chat_url(&fake), &streaming_request()).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "error": { "message": "Rate limit reached", "type": "requests", "param": null,
                           "code": "rate_limit_exceeded" } })
    );
    let response = post(&chat_url(&fake), &streaming_request()).await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("retry-after").is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["message"], "bad temperature");
}

#[tokio::test]
async fn models_report_the_last_requested_model_and_health() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    let models_url = format!("{}/models", fake.base_url());
    let body: Value = get(&models_url).await.json().await.unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["id"], "fake-model");
    assert_eq!(body["data"][0]["object"], "model");
    assert_eq!(body["data"][0]["owned_by"], "fake");
    post(&chat_url(&fake), &streaming_request()).await.text().await.unwrap();
    let body: Value = get(&models_url).await.json().await.unwrap();
    assert_eq!(body["data"][0]["id"], "gpt-oss:20b");
    fake.set_healthy(false);
    assert_eq!(get(&models_url).await.status(), 503);
    fake.set_healthy(true);
    assert_eq!(get(&models_url).await.status(), 200);
    assert_eq!(get(&format!("{}/api/tags", fake.url())).await.status(), 404);
}
