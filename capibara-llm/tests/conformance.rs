//! Every backend passes the streaming conformance suite against the fake upstream of its protocol.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use capibara_core::config::{OllamaEndpoint, PromptFormat};
use capibara_testkit::conformance::{self, Subject};
use capibara_testkit::upstream::{Protocol, ReasoningStyle};

#[tokio::test]
async fn openai_backend_with_both_reasoning_fields_and_markup() {
    conformance::run(&Subject {
        name: "openai".into(),
        protocol: Protocol::OpenAi,
        make: Arc::new(common::openai),
        reasoning_styles: vec![
            ReasoningStyle::ReasoningContent,
            ReasoningStyle::Reasoning,
            ReasoningStyle::Harmony,
            ReasoningStyle::ThinkTags,
        ],
    })
    .await;
}

#[tokio::test]
async fn ollama_backend_on_api_chat() {
    conformance::run(&Subject {
        name: "ollama /api/chat".into(),
        protocol: Protocol::Ollama,
        make: Arc::new(|url, tuning| common::ollama(url, tuning, OllamaEndpoint::Chat)),
        reasoning_styles: vec![ReasoningStyle::Thinking, ReasoningStyle::ThinkTags],
    })
    .await;
}

#[tokio::test]
async fn ollama_backend_on_api_generate() {
    conformance::run(&Subject {
        name: "ollama /api/generate".into(),
        protocol: Protocol::Ollama,
        make: Arc::new(|url, tuning| common::ollama(url, tuning, OllamaEndpoint::Generate)),
        reasoning_styles: vec![ReasoningStyle::Thinking, ReasoningStyle::Harmony],
    })
    .await;
}

#[tokio::test]
async fn llamacpp_backend_with_harmony_and_think_tags() {
    conformance::run(&Subject {
        name: "llama.cpp harmony".into(),
        protocol: Protocol::LlamaCpp,
        make: Arc::new(|url, tuning| common::llamacpp(url, tuning, PromptFormat::Harmony)),
        reasoning_styles: vec![ReasoningStyle::Harmony, ReasoningStyle::ThinkTags],
    })
    .await;
}

#[tokio::test]
async fn llamacpp_backend_with_the_transcript_prompt() {
    conformance::run(&Subject {
        name: "llama.cpp transcript".into(),
        protocol: Protocol::LlamaCpp,
        make: Arc::new(|url, tuning| common::llamacpp(url, tuning, PromptFormat::Transcript)),
        reasoning_styles: vec![ReasoningStyle::ThinkTags],
    })
    .await;
}
