//! The `capibara-fake-upstream` benchmark binary: started as a process, read over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use capibara_testkit::upstream::{Beat, FakeReply, FakeUpstream, Protocol};
use serde_json::{Value, json};
use support::{data, get, post, sse_frames, timed_chunks};

/// The running binary; killed on drop.
struct Upstream {
    child: Child,
    url: String,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on a free port and waits for its `listening on` line.
fn start(extra: &[&str]) -> Upstream {
    let mut child = Command::new(env!("CARGO_BIN_EXE_capibara-fake-upstream"))
        .args(["--port", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start capibara-fake-upstream");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url =
        line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    Upstream { url: url.to_owned(), child }
}

fn chat(model: &str, stream: bool, usage: bool) -> Value {
    let mut body =
        json!({ "model": model, "messages": [{ "role": "user", "content": "Hola" }], "stream": stream });
    if usage {
        body["stream_options"] = json!({ "include_usage": true });
    }
    body
}

fn contents(frames: &[String]) -> Vec<String> {
    frames
        .iter()
        .filter(|frame| frame.starts_with("data: {"))
        .filter_map(|frame| data(frame)["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn the_model_name_sets_tokens_and_pace() {
    let upstream = start(&[]);
    let url = format!("{}/v1/chat/completions", upstream.url);
    let started = Instant::now();
    let (chunks, error) = timed_chunks(post(&url, &chat("bench-8x25ms", true, true)).await, started).await;
    assert!(error.is_none(), "{error:?}");
    let first = chunks.first().unwrap().0;
    let last = chunks.last().unwrap().0;
    assert!(
        last >= first + Duration::from_millis(7 * 25 - 10),
        "8 chunks 25 ms apart took {:?}",
        last - first
    );
    let text: String = chunks.into_iter().map(|(_, text)| text).collect();
    let frames: Vec<String> = text.trim_end_matches("\n\n").split("\n\n").map(str::to_owned).collect();
    assert_eq!(contents(&frames).len(), 8);
    assert_eq!(frames.len(), 8 + 3, "tokens, finish, usage, [DONE]: {frames:#?}");
    assert_eq!(data(&frames[0])["choices"][0]["delta"]["role"], "assistant");
    assert!(data(&frames[1])["choices"][0]["delta"].get("role").is_none());
    assert_eq!(data(&frames[8])["choices"][0]["finish_reason"], "stop");
    assert_eq!(data(&frames[9])["usage"]["completion_tokens"], 8);
    assert_eq!(data(&frames[0])["model"], "bench-8x25ms");
    assert_eq!(frames[10], "data: [DONE]");
}

#[tokio::test]
async fn command_line_defaults_apply_to_other_models() {
    let upstream = start(&["--tokens", "5", "--threads", "2"]);
    let url = format!("{}/v1/chat/completions", upstream.url);
    let frames = sse_frames(post(&url, &chat("gpt-oss:20b", true, false)).await).await;
    assert_eq!(contents(&frames).len(), 5);
    assert!(frames.iter().all(|frame| !frame.contains("\"usage\"")), "no usage unless asked: {frames:#?}");
    assert_eq!(frames.last().unwrap(), "data: [DONE]");

    let whole: Value = post(&url, &chat("gpt-oss:20b", false, false)).await.json().await.unwrap();
    assert_eq!(whole["object"], "chat.completion");
    assert_eq!(whole["choices"][0]["message"]["content"], contents(&frames).concat());
    assert_eq!(whole["usage"]["completion_tokens"], 5);

    let models: Value = get(&format!("{}/v1/models", upstream.url)).await.json().await.unwrap();
    assert_eq!(models["data"][0]["id"], "bench-5x0ms");
    assert_eq!(get(&format!("{}/health", upstream.url)).await.status(), 200);
    assert_eq!(get(&format!("{}/v1/nothing", upstream.url)).await.status(), 404);
}

/// Every frame with the parts that differ by answer (id, time, model, prompt size) blanked.
fn normalised(frames: &[String]) -> Vec<Value> {
    frames
        .iter()
        .map(|frame| {
            if !frame.starts_with("data: {") {
                return json!(frame);
            }
            let mut chunk = data(frame);
            for field in ["id", "created", "model"] {
                chunk[field] = json!("·");
            }
            if chunk["usage"].is_object() {
                chunk["usage"]["prompt_tokens"] = json!("·");
                chunk["usage"]["total_tokens"] = json!("·");
            }
            chunk
        })
        .collect()
}

#[tokio::test]
async fn streams_exactly_like_the_openai_fake() {
    let upstream = start(&[]);
    let from_binary = sse_frames(
        post(&format!("{}/v1/chat/completions", upstream.url), &chat("bench-3x0ms", true, true)).await,
    )
    .await;
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    let words = contents(&from_binary);
    let mut beats: Vec<Beat> = words.iter().map(|word| Beat::Content(word.clone())).collect();
    beats.push(Beat::Usage { prompt_tokens: 1, completion_tokens: 3 });
    beats.push(Beat::Finish("stop".into()));
    fake.push(FakeReply::Stream(beats));
    let from_fake =
        sse_frames(post(&format!("{}/chat/completions", fake.base_url()), &chat("m", true, true)).await)
            .await;
    assert_eq!(normalised(&from_binary), normalised(&from_fake));
}
