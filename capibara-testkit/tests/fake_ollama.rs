//! The Ollama fake writes `/api/chat` and `/api/generate` NDJSON exactly as Ollama does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use capibara_testkit::upstream::{Beat, FakeReply, FakeUpstream, Protocol, ReasoningStyle};
use serde_json::{Value, json};
use support::{get, ndjson_lines, post};

fn chat_request() -> Value {
    json!({ "model": "qwen3:8b", "messages": [{ "role": "user", "content": "Hola" }] })
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("line {line:?} is not JSON: {e}"))
}

fn script() -> FakeReply {
    FakeReply::Stream(vec![
        Beat::Reasoning("Pienso".into()),
        Beat::Content("Hola ".into()),
        Beat::Content("mundo".into()),
        Beat::Usage { prompt_tokens: 11, completion_tokens: 2 },
        Beat::Finish("stop".into()),
    ])
}

/// The fields every final line carries, with nanosecond durations.
fn assert_final_totals(last: &Value, prompt: u64, completion: u64) {
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["prompt_eval_count"], prompt);
    assert_eq!(last["eval_count"], completion);
    for field in ["total_duration", "load_duration", "prompt_eval_duration", "eval_duration"] {
        assert!(last[field].is_u64(), "{field} must be an integer count of nanoseconds: {last}");
    }
    assert!(last["total_duration"].as_u64().unwrap() >= last["load_duration"].as_u64().unwrap());
}

#[tokio::test]
async fn chat_streams_ndjson_lines_with_thinking_and_a_final_line() {
    let fake = FakeUpstream::start(Protocol::Ollama).await;
    assert_eq!(fake.base_url(), fake.url());
    fake.push(script());
    let response = post(&format!("{}/api/chat", fake.url()), &chat_request()).await;
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let lines = ndjson_lines(response).await;
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let lines: Vec<Value> = lines.iter().map(|line| parse(line)).collect();
    for line in &lines {
        assert_eq!(line["model"], "qwen3:8b");
        assert!(chrono::DateTime::parse_from_rfc3339(line["created_at"].as_str().unwrap()).is_ok());
    }
    let without_time = |line: &Value| {
        let mut line = line.clone();
        line.as_object_mut().unwrap().remove("created_at");
        line
    };
    assert_eq!(
        without_time(&lines[0]),
        json!({ "model": "qwen3:8b", "message": { "role": "assistant", "content": "", "thinking": "Pienso" },
                "done": false })
    );
    assert_eq!(
        without_time(&lines[1]),
        json!({ "model": "qwen3:8b", "message": { "role": "assistant", "content": "Hola " }, "done": false })
    );
    assert_eq!(lines[2]["message"]["content"], "mundo");
    assert_eq!(lines[3]["message"], json!({ "role": "assistant", "content": "" }));
    assert_final_totals(&lines[3], 11, 2);
}

#[tokio::test]
async fn generate_streams_response_and_thinking_at_top_level() {
    let fake = FakeUpstream::start(Protocol::Ollama).await;
    fake.push(script());
    let request = json!({ "model": "gpt-oss:20b", "prompt": "Hola" });
    let lines = ndjson_lines(post(&format!("{}/api/generate", fake.url()), &request).await).await;
    let lines: Vec<Value> = lines.iter().map(|line| parse(line)).collect();
    assert_eq!(lines[0]["thinking"], "Pienso");
    assert_eq!(lines[0]["response"], "");
    assert_eq!(lines[1]["response"], "Hola ");
    assert!(lines[1].get("thinking").is_none());
    assert!(lines[1].get("message").is_none());
    let last = lines.last().unwrap();
    assert_eq!(last["response"], "");
    assert!(last["context"].is_array());
    assert_final_totals(last, 11, 2);
}

#[tokio::test]
async fn stream_false_gets_one_object() {
    let fake = FakeUpstream::start(Protocol::Ollama).await;
    fake.push(script());
    fake.push(FakeReply::Stream(vec![
        Beat::ToolCall { id: "c1".into(), name: "hora".into(), arguments: r#"{"zona":"Lima"}"#.into() },
        Beat::Finish("stop".into()),
    ]));
    let mut request = chat_request();
    request["stream"] = json!(false);
    let response = post(&format!("{}/api/chat", fake.url()), &request).await;
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["message"],
        json!({ "role": "assistant", "content": "Hola mundo", "thinking": "Pienso" })
    );
    assert_final_totals(&body, 11, 2);
    let body: Value = post(&format!("{}/api/chat", fake.url()), &request).await.json().await.unwrap();
    // Ollama sends tool arguments as an object, not as JSON text.
    assert_eq!(
        body["message"]["tool_calls"],
        json!([{ "function": { "name": "hora", "arguments": { "zona": "Lima" } } }])
    );
}

#[tokio::test]
async fn markup_styles_put_reasoning_inside_the_text() {
    let fake = FakeUpstream::start(Protocol::Ollama).await;
    fake.set_reasoning_style(ReasoningStyle::ThinkTags);
    fake.push(script());
    let lines = ndjson_lines(post(&format!("{}/api/chat", fake.url()), &chat_request()).await).await;
    let text: String =
        lines.iter().map(|line| parse(line)["message"]["content"].as_str().unwrap().to_owned()).collect();
    assert_eq!(text, "<think>Pienso</think>Hola mundo");
    assert!(lines.iter().all(|line| parse(line)["message"].get("thinking").is_none()));
}

#[tokio::test]
async fn keep_alive_malformed_and_error_lines() {
    let fake = FakeUpstream::start(Protocol::Ollama).await;
    fake.push(FakeReply::Stream(vec![
        Beat::Content("a".into()),
        Beat::KeepAlive,
        Beat::Malformed("{\"model\":".into()),
        Beat::Error("model runner has unexpectedly stopped".into()),
    ]));
    let text = post(&format!("{}/api/chat", fake.url()), &chat_request()).await.text().await.unwrap();
    let lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(lines[1], "");
    assert_eq!(lines[2], "{\"model\":");
    assert_eq!(parse(lines[3]), json!({ "error": "model runner has unexpectedly stopped" }));
    assert_eq!(lines[4], "");
    assert_eq!(lines.len(), 5);
}

#[tokio::test]
async fn status_replies_use_ollama_error_documents() {
    let fake = FakeUpstream::start(Protocol::Ollama).await;
    fake.push(FakeReply::status(404, "model \"qwen3:8b\" not found, try pulling it first"));
    let response = post(&format!("{}/api/chat", fake.url()), &chat_request()).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "error": "model \"qwen3:8b\" not found, try pulling it first" }));
}

#[tokio::test]
async fn tags_version_and_root_answer_until_unhealthy() {
    let fake = FakeUpstream::start(Protocol::Ollama).await;
    let tags: Value = get(&format!("{}/api/tags", fake.url())).await.json().await.unwrap();
    let model = &tags["models"][0];
    assert_eq!(model["name"], "gpt-oss:20b");
    assert_eq!(model["model"], "gpt-oss:20b");
    assert_eq!(model["digest"].as_str().unwrap().len(), 64);
    assert!(model["size"].is_u64());
    assert!(model["modified_at"].is_string());
    assert_eq!(model["details"]["format"], "gguf");
    let version: Value = get(&format!("{}/api/version", fake.url())).await.json().await.unwrap();
    assert!(version["version"].is_string());
    assert_eq!(get(&format!("{}/", fake.url())).await.text().await.unwrap(), "Ollama is running");

    ndjson_lines(post(&format!("{}/api/chat", fake.url()), &chat_request()).await).await;
    let tags: Value = get(&format!("{}/api/tags", fake.url())).await.json().await.unwrap();
    assert_eq!(tags["models"][0]["name"], "qwen3:8b");

    fake.set_healthy(false);
    for path in ["/api/tags", "/api/version", "/"] {
        let response = get(&format!("{}{path}", fake.url())).await;
        assert_eq!(response.status(), 503, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string());
    }
}
