//! Backend behaviour beyond the conformance suite, against the fake upstreams: error mapping,
//! `Retry-After`, the total deadline, tool calls, rendered prompts, pooled connections.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use capibara_core::chat::{ChatRequest, FinishReason, Message, StreamEvent, ToolCall, ToolSpec};
use capibara_core::config::{OllamaEndpoint, PromptFormat};
use capibara_core::llm::{HealthStatus, LlmBackend};
use capibara_testkit::conformance::Tuning;
use capibara_testkit::upstream::{Beat, FakeReply, FakeUpstream, Protocol, ReasoningStyle};
use common::{drain, question};
use serde_json::json;

fn no_retries() -> Tuning {
    Tuning { max_retries: 0, ..Tuning::default() }
}

#[tokio::test]
async fn statuses_map_to_error_kinds() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    let backend = common::openai(&fake.base_url(), &no_retries());
    let cases = [
        (FakeReply::status(404, "The model `fake-model` does not exist"), "not_found"),
        (
            FakeReply::status(400, "This model's maximum context length is 8192 tokens, you asked for 9000"),
            "context_too_long",
        ),
        (FakeReply::status(400, "temperature must be at most 2"), "upstream_error"),
        (
            FakeReply::Status { status: 429, body: "slow down".into(), retry_after_secs: Some(7) },
            "rate_limited",
        ),
        (FakeReply::status(500, "boom"), "upstream_error"),
    ];
    for (reply, code) in cases {
        fake.push(reply.clone());
        let error = backend.chat_stream(question()).await.unwrap_err();
        assert_eq!(error.code(), code, "{reply:?} gave {error}");
        assert!(error.to_string().contains(backend.id()), "errors name the backend: {error}");
    }
    fake.push(FakeReply::Status { status: 429, body: "slow down".into(), retry_after_secs: Some(7) });
    let error = backend.chat_stream(question()).await.unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn ollama_and_llamacpp_map_their_own_error_bodies() {
    let ollama = FakeUpstream::start(Protocol::Ollama).await;
    let backend = common::ollama(&ollama.base_url(), &no_retries(), OllamaEndpoint::Chat);
    ollama.push(FakeReply::status(404, "model \"gpt-oss:20b\" not found, try pulling it first"));
    let error = backend.chat_stream(question()).await.unwrap_err();
    assert_eq!(error.code(), "not_found");
    assert!(error.to_string().contains("try pulling it first"), "{error}");

    let llama = FakeUpstream::start(Protocol::LlamaCpp).await;
    let backend = common::llamacpp(&llama.base_url(), &no_retries(), PromptFormat::Chatml);
    llama.push(FakeReply::status(400, "the request exceeds the available context size, try increasing it"));
    let error = backend.chat_stream(question()).await.unwrap_err();
    assert_eq!(error.code(), "context_too_long", "{error}");
}

#[tokio::test]
async fn connection_refused_names_backend_and_url() {
    let url = capibara_testkit::upstream::closed_port_url().await;
    let backend = common::llamacpp(&url, &no_retries(), PromptFormat::Chatml);
    let error = backend.chat_stream(question()).await.unwrap_err();
    assert_eq!(error.code(), "unavailable");
    let text = error.to_string();
    assert!(text.contains(backend.id()) && text.contains(&format!("{url}/completion")), "{text}");
}

#[tokio::test]
async fn retry_after_is_waited_for() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    let backend = common::openai(&fake.base_url(), &Tuning::default());
    fake.push(FakeReply::Status { status: 429, body: "slow down".into(), retry_after_secs: Some(1) });
    let started = Instant::now();
    let answer = backend.chat(question()).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(answer.content, "Hola, soy un modelo de prueba.");
    assert_eq!(fake.requests().len(), 2);
    assert!(waited >= Duration::from_secs(1), "Retry-After: 1 was not respected ({waited:?})");
    assert!(waited < Duration::from_millis(1800), "waited {waited:?}");
}

#[tokio::test]
async fn retry_after_is_capped_at_max_backoff() {
    let fake = FakeUpstream::start(Protocol::Ollama).await;
    let mut config = common::ollama_config(&fake.base_url(), &Tuning::default(), OllamaEndpoint::Chat);
    config.retry.max_backoff = Duration::from_millis(200);
    let backend = capibara_llm::OllamaBackend::new(config).unwrap();
    fake.push(FakeReply::Status { status: 503, body: "loading".into(), retry_after_secs: Some(30) });
    let started = Instant::now();
    backend.chat(question()).await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(2), "waited {waited:?}");
}

#[tokio::test]
async fn the_total_deadline_ends_a_long_answer() {
    let fake = FakeUpstream::start(Protocol::LlamaCpp).await;
    let tuning = Tuning {
        total_timeout: Duration::from_millis(800),
        first_token_timeout: Duration::from_millis(500),
        ..Tuning::default()
    };
    let backend = common::llamacpp(&fake.base_url(), &tuning, PromptFormat::Chatml);
    let mut beats = Vec::new();
    for _ in 0..20 {
        beats.push(Beat::Content("sí ".into()));
        beats.push(Beat::Delay(Duration::from_millis(100)));
    }
    beats.push(Beat::Finish("stop".into()));
    fake.push(FakeReply::Stream(beats));
    let started = Instant::now();
    let (events, error) = drain(backend.chat_stream(question()).await.unwrap()).await;
    let error = error.expect("the deadline must end the stream");
    assert_eq!(error.code(), "timeout");
    assert!(error.to_string().contains("total timeout of 800ms"), "{error}");
    assert!(!events.is_empty() && events.len() < 20, "{} events", events.len());
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn a_finished_answer_is_read_to_its_end() {
    for protocol in [Protocol::OpenAi, Protocol::Ollama, Protocol::LlamaCpp] {
        let fake = FakeUpstream::start(protocol).await;
        let backend: std::sync::Arc<dyn LlmBackend> = match protocol {
            Protocol::OpenAi => common::openai(&fake.base_url(), &Tuning::default()),
            Protocol::Ollama => common::ollama(&fake.base_url(), &Tuning::default(), OllamaEndpoint::Chat),
            Protocol::LlamaCpp => {
                common::llamacpp(&fake.base_url(), &Tuning::default(), PromptFormat::Chatml)
            }
        };
        for _ in 0..3 {
            let answer = backend.chat(question()).await.unwrap();
            assert_eq!(answer.content, "Hola, soy un modelo de prueba.");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(fake.abandoned_streams(), 0, "{protocol:?}: complete answers must not cut the connection");
    }
}

fn tool_request() -> ChatRequest {
    let mut request = question();
    request.tools = vec![ToolSpec {
        name: "clima".into(),
        description: Some("El tiempo en una ciudad".into()),
        parameters: json!({"type": "object", "properties": {"ciudad": {"type": "string"}}}),
    }];
    request
}

fn tool_reply() -> FakeReply {
    FakeReply::Stream(vec![
        Beat::Reasoning("Necesito el clima. ".into()),
        Beat::ToolCall {
            id: "call_abc".into(),
            name: "clima".into(),
            arguments: r#"{"ciudad":"Lima"}"#.into(),
        },
        Beat::Usage { prompt_tokens: 30, completion_tokens: 12 },
        Beat::Finish("tool_calls".into()),
    ])
}

fn calls(events: &[StreamEvent]) -> Vec<ToolCall> {
    events
        .iter()
        .filter_map(|event| match event {
            StreamEvent::ToolCall { call } => Some(call.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn openai_tool_call_pieces_are_accumulated_into_one_call() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    let backend = common::openai(&fake.base_url(), &Tuning::default());
    fake.push(tool_reply());
    let (events, error) = drain(backend.chat_stream(tool_request()).await.unwrap()).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        calls(&events),
        vec![ToolCall {
            id: "call_abc".into(),
            name: "clima".into(),
            arguments: r#"{"ciudad":"Lima"}"#.into()
        }]
    );
    assert_eq!(events.last(), Some(&StreamEvent::done(FinishReason::ToolCalls)));
    let body = &fake.requests()[0].body;
    assert_eq!(body["tools"][0]["function"]["name"], json!("clima"));
    assert_eq!(body["stream_options"]["include_usage"], json!(true));
}

#[tokio::test]
async fn ollama_chat_tool_calls_arrive_whole() {
    let fake = FakeUpstream::start(Protocol::Ollama).await;
    let backend = common::ollama(&fake.base_url(), &Tuning::default(), OllamaEndpoint::Chat);
    fake.push(tool_reply());
    let answer = backend.chat(tool_request()).await.unwrap();
    assert_eq!(answer.tool_calls.len(), 1, "{answer:?}");
    assert_eq!(answer.tool_calls[0].name, "clima");
    let arguments: serde_json::Value = serde_json::from_str(&answer.tool_calls[0].arguments).unwrap();
    assert_eq!(arguments, json!({"ciudad": "Lima"}));
    assert_eq!(answer.reasoning.as_deref(), Some("Necesito el clima. "));
    assert!(answer.content.is_empty(), "{answer:?}");
}

#[tokio::test]
async fn tool_call_markup_in_raw_text_becomes_a_tool_call() {
    for style in [ReasoningStyle::Harmony, ReasoningStyle::ThinkTags] {
        let fake = FakeUpstream::start(Protocol::LlamaCpp).await;
        fake.set_reasoning_style(style);
        let backend = common::llamacpp(&fake.base_url(), &Tuning::default(), PromptFormat::Harmony);
        fake.push(tool_reply());
        let answer = backend.chat(question()).await.unwrap();
        assert_eq!(answer.tool_calls.len(), 1, "{style:?}: {answer:?}");
        assert_eq!(answer.tool_calls[0].name, "clima", "{style:?}");
        let arguments: serde_json::Value = serde_json::from_str(&answer.tool_calls[0].arguments).unwrap();
        assert_eq!(arguments, json!({"ciudad": "Lima"}), "{style:?}");
        assert!(answer.content.is_empty(), "{style:?}: markup leaked into the answer: {:?}", answer.content);
        assert_eq!(answer.reasoning.as_deref(), Some("Necesito el clima. "), "{style:?}");
    }
}

fn conversation() -> ChatRequest {
    ChatRequest::new(vec![
        Message::system("Eres Capibara6, un asistente en español."),
        Message::user("Hola"),
        Message::assistant("¡Hola! ¿En qué te ayudo?"),
        Message::user("¿Qué es Rust?"),
    ])
}

const TRANSCRIPT: &str = "Eres Capibara6, un asistente en español.\n\nUsuario: Hola\n\nCapibara6: ¡Hola! ¿En qué te ayudo?\n\nUsuario: ¿Qué es Rust?\n\nCapibara6:";

#[tokio::test]
async fn llamacpp_sends_the_transcript_prompt_with_speaker_stops_only() {
    let fake = FakeUpstream::start(Protocol::LlamaCpp).await;
    let backend = common::llamacpp(&fake.base_url(), &Tuning::default(), PromptFormat::Transcript);
    backend.chat(conversation()).await.unwrap();
    let body = &fake.requests()[0].body;
    assert_eq!(body["prompt"], json!(TRANSCRIPT));
    assert_eq!(body["stop"], json!(["Usuario:", "Capibara6:"]));
    assert_eq!(body["stream"], json!(true));
    assert_eq!(fake.requests()[0].path, "/completion");

    let backend = common::llamacpp(&fake.base_url(), &Tuning::default(), PromptFormat::Chatml);
    backend.chat(conversation()).await.unwrap();
    let body = &fake.requests()[1].body;
    assert!(body["prompt"].as_str().unwrap().ends_with("<|im_start|>assistant\n"));
    assert!(
        !body["stop"].as_array().unwrap().contains(&json!("Usuario:")),
        "speaker stops are the transcript's only"
    );
}

#[tokio::test]
async fn ollama_generate_renders_a_conversation_and_keeps_a_single_prompt_as_is() {
    let fake = FakeUpstream::start(Protocol::Ollama).await;
    let mut config = common::ollama_config(&fake.base_url(), &Tuning::default(), OllamaEndpoint::Generate);
    config.think = Some(json!("high"));
    config.keep_alive = Some("15m".into());
    config.context_window = 32768;
    let backend = capibara_llm::OllamaBackend::new(config).unwrap();
    backend.chat(conversation()).await.unwrap();
    backend.chat(question()).await.unwrap();
    let requests = fake.requests();
    assert_eq!(requests[0].path, "/api/generate");
    let body = &requests[0].body;
    assert_eq!(body["system"], json!("Eres Capibara6, un asistente en español."));
    assert_eq!(body["prompt"], json!(TRANSCRIPT.split_once("\n\n").unwrap().1));
    assert_eq!(body["options"]["stop"], json!(["Usuario:", "Capibara6:"]));
    assert_eq!(body["options"]["num_ctx"], json!(32768));
    assert_eq!(body["think"], json!("high"));
    assert_eq!(body["keep_alive"], json!("15m"));
    let body = &requests[1].body;
    assert_eq!(body["prompt"], json!("¿Qué es un capibara?"));
    assert_eq!(body["options"].get("stop"), None);
}

#[tokio::test]
async fn ollama_health_is_degraded_when_the_model_is_not_pulled() {
    let fake = FakeUpstream::start(Protocol::Ollama).await;
    let mut config = common::ollama_config(&fake.base_url(), &Tuning::default(), OllamaEndpoint::Chat);
    config.model = "qwen3:8b".into();
    let health = capibara_llm::OllamaBackend::new(config).unwrap().health().await;
    assert_eq!(health.status, HealthStatus::Degraded, "{health:?}");
    assert!(health.detail.unwrap().contains("ollama pull qwen3:8b"));
}

#[tokio::test]
async fn llamacpp_health_is_down_while_loading_with_the_reason() {
    let fake = FakeUpstream::start(Protocol::LlamaCpp).await;
    let backend = common::llamacpp(&fake.base_url(), &Tuning::default(), PromptFormat::Harmony);
    assert_eq!(backend.health().await.status, HealthStatus::Ok);
    fake.set_healthy(false);
    let health = backend.health().await;
    assert_eq!(health.status, HealthStatus::Down);
    assert!(health.detail.unwrap().contains("Loading model"));
}
