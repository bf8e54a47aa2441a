//! The fallback chain over real backends and fake upstreams.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use capibara_core::chat::StreamEvent;
use capibara_core::config::{OllamaEndpoint, PromptFormat};
use capibara_core::llm::{HealthStatus, LlmBackend};
use capibara_llm::FallbackChain;
use capibara_testkit::conformance::Tuning;
use capibara_testkit::upstream::{Beat, FakeReply, FakeUpstream, Protocol, closed_port_url};
use common::{drain, question};

fn tuning() -> Tuning {
    Tuning { max_retries: 0, ..Tuning::default() }
}

fn chain(backends: Vec<Arc<dyn LlmBackend>>) -> FallbackChain {
    FallbackChain::new(backends).unwrap()
}

#[tokio::test]
async fn a_backend_that_is_down_hands_over_to_the_next() {
    let down = common::openai(&format!("{}/v1", closed_port_url().await), &tuning());
    let fake = FakeUpstream::start(Protocol::Ollama).await;
    let up = common::ollama(&fake.base_url(), &tuning(), OllamaEndpoint::Chat);
    let chain = chain(vec![down.clone(), up.clone()]);
    let stream = chain.chat_stream(question()).await.unwrap();
    assert_eq!(stream.backend, up.id(), "the stream says which backend answered");
    let (events, error) = drain(stream).await;
    assert!(error.is_none());
    assert!(matches!(events.last(), Some(StreamEvent::Done { .. })));
}

#[tokio::test]
async fn overload_and_unknown_models_hand_over_but_long_prompts_do_not() {
    let first = FakeUpstream::start(Protocol::OpenAi).await;
    let second = FakeUpstream::start(Protocol::LlamaCpp).await;
    let chain = chain(vec![
        common::openai(&first.base_url(), &tuning()),
        common::llamacpp(&second.base_url(), &tuning(), PromptFormat::Harmony),
    ]);
    first.push(FakeReply::status(503, "overloaded"));
    first.push(FakeReply::status(404, "The model `fake-model` does not exist"));
    first.push(FakeReply::status(400, "This model's maximum context length is 8192 tokens"));
    assert_eq!(chain.chat(question()).await.unwrap().backend, chain.backends()[1].id());
    assert_eq!(chain.chat(question()).await.unwrap().backend, chain.backends()[1].id());
    let error = chain.chat(question()).await.unwrap_err();
    assert_eq!(error.code(), "context_too_long");
    assert_eq!(second.requests().len(), 2, "a prompt too long must not be sent elsewhere");
}

#[tokio::test]
async fn a_failure_mid_stream_reaches_the_caller_without_switching() {
    let first = FakeUpstream::start(Protocol::OpenAi).await;
    let second = FakeUpstream::start(Protocol::Ollama).await;
    let chain = chain(vec![
        common::openai(&first.base_url(), &tuning()),
        common::ollama(&second.base_url(), &tuning(), OllamaEndpoint::Chat),
    ]);
    first.push(FakeReply::Stream(vec![
        Beat::Content("Hola ".into()),
        Beat::Error("el modelo se quedó sin memoria".into()),
    ]));
    let stream = chain.chat_stream(question()).await.unwrap();
    assert_eq!(stream.backend, chain.backends()[0].id());
    let (events, error) = drain(stream).await;
    assert_eq!(events, vec![StreamEvent::content("Hola ")]);
    let error = error.expect("the error frame must reach the caller");
    assert!(error.to_string().contains("se quedó sin memoria"), "{error}");
    assert!(second.requests().is_empty(), "no switch once streaming");
}

#[tokio::test]
async fn health_and_models_of_the_chain() {
    let first = FakeUpstream::start(Protocol::OpenAi).await;
    let second = FakeUpstream::start(Protocol::LlamaCpp).await;
    let chain = chain(vec![
        common::openai(&first.base_url(), &tuning()),
        common::llamacpp(&second.base_url(), &tuning(), PromptFormat::Harmony),
    ]);
    assert_eq!(chain.health().await.status, HealthStatus::Ok);
    assert_eq!(chain.models().await.unwrap().len(), 2);
    second.set_healthy(false);
    let health = chain.health().await;
    assert_eq!(health.status, HealthStatus::Degraded);
    assert!(health.detail.unwrap().contains(chain.backends()[1].id()));
    assert_eq!(chain.models().await.unwrap().len(), 1, "models of the backends that answer");
    first.set_healthy(false);
    assert_eq!(chain.health().await.status, HealthStatus::Down);
    assert!(chain.models().await.is_err());
}

#[tokio::test]
async fn build_chain_from_configuration() {
    let first = FakeUpstream::start(Protocol::Ollama).await;
    let second = FakeUpstream::start(Protocol::LlamaCpp).await;
    let config: capibara_core::config::LlmConfig = serde_json::from_value(serde_json::json!({
        "backends": [
            {"kind": "ollama", "base_url": first.base_url(), "retry": {"max_retries": 0}},
            {"kind": "llamacpp", "id": "respaldo", "base_url": second.base_url(), "prompt_format": "harmony"},
        ]
    }))
    .unwrap();
    let llm = capibara_llm::build_chain(&config).unwrap().unwrap();
    first.push(FakeReply::status(500, "crashed"));
    let answer = llm.chat(question()).await.unwrap();
    assert_eq!(answer.backend, "respaldo");
    assert_eq!(answer.content, "Hola, soy un modelo de prueba.");
}
