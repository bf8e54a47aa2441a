//! The conformance suite can fail: a small OpenAI backend written here passes the streaming scenarios
//! when sound, and the matching scenario panics when it is given a classic bug.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use capibara_core::chat::{ChatRequest, FinishReason, StreamEvent, Usage};
use capibara_core::llm::{BackendHealth, Capabilities, ChatStream, HealthStatus, LlmBackend, ModelInfo};
use capibara_core::{Error, Result};
use capibara_testkit::conformance::{self, Subject, Tuning};
use capibara_testkit::upstream::{Protocol, ReasoningStyle};
use futures::stream::{self, BoxStream, StreamExt};
use futures::{Future, FutureExt};
use serde_json::{Value, json};

/// A bug the small backend can be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    /// None: streams events as they arrive and keeps reasoning apart.
    Sound,
    /// Reads the whole answer before returning the stream.
    BuffersTheAnswer,
    /// Reports reasoning deltas as content.
    LeaksReasoning,
}

/// An OpenAI `/v1/chat/completions` client just big enough for the streaming scenarios.
struct SmallOpenAi {
    base_url: String,
    flaw: Flaw,
    http: reqwest::Client,
}

/// Parsing state of one SSE answer.
struct Reader {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    buffer: Vec<u8>,
    ready: VecDeque<Result<StreamEvent>>,
    finish: Option<FinishReason>,
    ended: bool,
    flaw: Flaw,
}

impl Reader {
    fn frame(&mut self, frame: &str) {
        let Some(data) = frame.lines().find_map(|line| line.strip_prefix("data: ")) else { return };
        if data == "[DONE]" {
            let reason = self.finish.take().unwrap_or(FinishReason::Stop);
            self.ready.push_back(Ok(StreamEvent::done(reason)));
            self.ended = true;
            return;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            self.ready.push_back(Err(Error::upstream(502, format!("malformed frame: {data}"))));
            self.ended = true;
            return;
        };
        if let Some(error) = chunk.get("error") {
            self.ready.push_back(Err(Error::upstream(502, error.to_string())));
            self.ended = true;
            return;
        }
        if let Some(usage) = chunk.get("usage").filter(|usage| usage.is_object()) {
            let count = |field: &str| usage[field].as_u64().unwrap_or(0) as u32;
            let usage = Usage {
                prompt_tokens: count("prompt_tokens"),
                completion_tokens: count("completion_tokens"),
            };
            self.ready.push_back(Ok(StreamEvent::Usage { usage }));
        }
        let Some(choice) = chunk["choices"].get(0) else { return };
        let delta = &choice["delta"];
        for field in ["reasoning_content", "reasoning"] {
            if let Some(text) = delta[field].as_str() {
                let event = if self.flaw == Flaw::LeaksReasoning {
                    StreamEvent::content(text)
                } else {
                    StreamEvent::reasoning(text)
                };
                self.ready.push_back(Ok(event));
            }
        }
        if let Some(text) = delta["content"].as_str() {
            self.ready.push_back(Ok(StreamEvent::content(text)));
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish = Some(FinishReason::from_wire(reason));
        }
    }

    async fn next(&mut self) -> Option<Result<StreamEvent>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            if self.ended {
                return None;
            }
            match self.body.next().await {
                Some(Ok(bytes)) => self.buffer.extend_from_slice(&bytes),
                Some(Err(error)) => {
                    self.ended = true;
                    return Some(Err(Error::upstream(502, format!("the stream broke: {error}"))));
                }
                None => {
                    self.ended = true;
                    return Some(Err(Error::upstream(502, "the stream ended without [DONE]")));
                }
            }
            while let Some(end) = self.buffer.windows(2).position(|pair| pair == b"\n\n") {
                let frame = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
                self.buffer.drain(..end + 2);
                self.frame(&frame);
            }
        }
    }
}

#[async_trait]
impl LlmBackend for SmallOpenAi {
    fn id(&self) -> &str {
        "small-openai"
    }

    fn default_model(&self) -> &str {
        "fake-model"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { streaming: true, reasoning: true, tools: false, max_context_tokens: 8192 }
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let messages: Vec<Value> = request
            .messages
            .iter()
            .map(|m| json!({ "role": m.role.as_str(), "content": m.content }))
            .collect();
        let body = json!({ "model": "fake-model", "messages": messages, "stream": true,
                           "stream_options": { "include_usage": true } });
        let response = self
            .http
            .post(format!("{}/chat/completions", self.base_url))
            .json(&body)
            .send()
            .await
            .map_err(|error| Error::unavailable(error.to_string()))?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            return Err(Error::upstream(status, response.text().await.unwrap_or_default()));
        }
        let mut reader = Reader {
            body: response.bytes_stream().boxed(),
            buffer: Vec::new(),
            ready: VecDeque::new(),
            finish: None,
            ended: false,
            flaw: self.flaw,
        };
        let mut head = Vec::new();
        loop {
            let event = reader.next().await.ok_or_else(|| Error::upstream(502, "empty answer"))??;
            head.push(Ok(event));
            if self.flaw != Flaw::BuffersTheAnswer || reader.ended {
                break;
            }
        }
        let rest =
            stream::unfold(
                reader,
                |mut reader| async move { reader.next().await.map(|event| (event, reader)) },
            );
        Ok(ChatStream::new("fake-model", "small-openai", stream::iter(head).chain(rest)))
    }

    async fn models(&self) -> Result<Vec<ModelInfo>> {
        let response = self.http.get(format!("{}/models", self.base_url)).send().await;
        let list: Value =
            response.map_err(|e| Error::unavailable(e.to_string()))?.json().await.unwrap_or_default();
        let ids = list["data"].as_array().cloned().unwrap_or_default();
        Ok(ids
            .iter()
            .filter_map(|model| model["id"].as_str())
            .map(|id| ModelInfo {
                id: id.to_owned(),
                backend: "small-openai".into(),
                context_length: None,
                details: None,
            })
            .collect())
    }

    async fn health(&self) -> BackendHealth {
        let started = Instant::now();
        let response = self.http.get(format!("{}/models", self.base_url)).send().await;
        let status = match response {
            Ok(response) if response.status().is_success() => HealthStatus::Ok,
            _ => HealthStatus::Down,
        };
        BackendHealth {
            backend: "small-openai".into(),
            status,
            location: self.base_url.clone(),
            model: "fake-model".into(),
            latency_ms: started.elapsed().as_millis() as u64,
            detail: None,
        }
    }
}

fn subject(flaw: Flaw) -> Subject {
    Subject {
        name: format!("small-openai ({flaw:?})"),
        protocol: Protocol::OpenAi,
        make: Arc::new(move |base_url: &str, _tuning: &Tuning| -> Arc<dyn LlmBackend> {
            Arc::new(SmallOpenAi { base_url: base_url.to_owned(), flaw, http: reqwest::Client::new() })
        }),
        reasoning_styles: vec![ReasoningStyle::ReasoningContent, ReasoningStyle::Reasoning],
    }
}

/// The panic message of a scenario, or `None` when it passed.
async fn failure_of(scenario: impl Future<Output = ()>) -> Option<String> {
    let panic = AssertUnwindSafe(scenario).catch_unwind().await.err()?;
    Some(
        panic
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| format!("{:?}", panic.downcast_ref::<&str>())),
    )
}

#[tokio::test]
async fn a_sound_backend_passes_the_streaming_scenarios() {
    let sound = subject(Flaw::Sound);
    assert_eq!(failure_of(conformance::content_arrives_token_by_token(&sound)).await, None);
    assert_eq!(failure_of(conformance::first_event_is_not_held_back(&sound)).await, None);
    assert_eq!(failure_of(conformance::reasoning_is_kept_apart(&sound)).await, None);
    assert_eq!(failure_of(conformance::usage_and_done_close_the_stream(&sound)).await, None);
    assert_eq!(failure_of(conformance::keep_alives_are_ignored(&sound)).await, None);
    assert_eq!(failure_of(conformance::error_frame_ends_the_stream_with_an_error(&sound)).await, None);
    assert_eq!(failure_of(conformance::disconnect_ends_the_stream_with_an_error(&sound)).await, None);
    assert_eq!(failure_of(conformance::malformed_frame_is_an_upstream_error(&sound)).await, None);
    assert_eq!(failure_of(conformance::dropping_the_stream_cancels_the_upstream(&sound)).await, None);
    assert_eq!(failure_of(conformance::models_and_health_follow_the_upstream(&sound)).await, None);
}

#[tokio::test]
async fn buffering_the_answer_fails_the_true_streaming_scenario() {
    let buffering = subject(Flaw::BuffersTheAnswer);
    let failure = failure_of(conformance::first_event_is_not_held_back(&buffering)).await;
    let message = failure.expect("a backend that buffers the answer must fail");
    assert!(message.contains("buffered"), "{message}");
    // The answer itself is right, so the ordering scenario still passes.
    assert_eq!(failure_of(conformance::content_arrives_token_by_token(&buffering)).await, None);
}

#[tokio::test]
async fn leaking_reasoning_into_content_fails_the_reasoning_scenario() {
    let leaking = subject(Flaw::LeaksReasoning);
    let message = failure_of(conformance::reasoning_is_kept_apart(&leaking)).await.expect("a leak must fail");
    assert!(message.contains("content must carry only the answer"), "{message}");
}

#[tokio::test]
async fn run_names_every_failed_scenario() {
    let message = failure_of(conformance::run(&subject(Flaw::LeaksReasoning))).await.expect("run must fail");
    assert!(message.contains("small-openai (LeaksReasoning)"), "{message}");
    assert!(message.contains("- reasoning_is_kept_apart:"), "{message}");
    // The small backend has no timeouts or retries, so those scenarios fail too; the sound parts pass.
    assert!(message.contains("- first_token_timeout_is_a_timeout:"), "{message}");
    assert!(!message.contains("- content_arrives_token_by_token:"), "{message}");
    assert!(!message.contains("- keep_alives_are_ignored:"), "{message}");
}
