//! The OpenAI backend sends the API key from the configured environment variable and the extra
//! headers. (Its own test binary: it sets an environment variable.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use capibara_core::llm::LlmBackend;
use capibara_llm::OpenAiBackend;
use capibara_testkit::conformance::Tuning;
use capibara_testkit::upstream::{FakeUpstream, Protocol};

#[tokio::test]
async fn api_key_and_extra_headers_are_sent() {
    // SAFETY: this binary's only test sets the variable before any thread reads the environment.
    unsafe { std::env::set_var("CAPIBARA_LLM_TEST_API_KEY", "sk-prueba-123") };
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    let mut config = common::openai_config(&fake.base_url(), &Tuning::default());
    config.api_key_env = Some("CAPIBARA_LLM_TEST_API_KEY".into());
    config.headers.insert("X-Capibara-Tenant".into(), "demo".into());
    let backend = OpenAiBackend::new(config).unwrap();
    backend.chat(common::question()).await.unwrap();
    backend.models().await.unwrap();
    let request = &fake.requests()[0];
    assert_eq!(request.header("authorization"), Some("Bearer sk-prueba-123"));
    assert_eq!(request.header("x-capibara-tenant"), Some("demo"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert!(!format!("{backend:?}").contains("sk-prueba-123"), "the key must not show in debug output");
}
