//! `OpenAiEmbedder` against a fake OpenAI-compatible embeddings server on a real socket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use capibara_core::Error;
use capibara_core::config::{RemoteEmbeddingsConfig, TimeoutConfig};
use capibara_core::embed::Embedder;
use capibara_llm::embeddings::OpenAiEmbedder;
use capibara_testkit::upstream::{FakeReply, FakeUpstream, Protocol, closed_port_url, fake_embedding};

fn config(base_url: &str) -> RemoteEmbeddingsConfig {
    serde_json::from_value(serde_json::json!({"base_url": base_url, "model": "bge-m3", "batch_size": 2}))
        .unwrap()
}

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|t| (*t).to_owned()).collect()
}

#[tokio::test]
async fn batches_reorders_and_normalises() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    fake.set_embedding_dimension(16);
    let embedder = OpenAiEmbedder::connect(config(&fake.base_url())).await.unwrap();
    assert_eq!(embedder.dimension(), 16, "learned from the probe");
    assert_eq!(embedder.model_id(), "bge-m3");

    let inputs = texts(&["uno", "dos", "tres", "cuatro", "cinco"]);
    let vectors = embedder.embed(&inputs).await.unwrap();
    assert_eq!(vectors.len(), 5);
    for (text, vector) in inputs.iter().zip(&vectors) {
        let expected = fake_embedding(text, 16);
        let diff = vector.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(diff < 1e-6, "{text}: the fake answers scaled and reversed; we must undo both");
    }
    let requests = fake.requests();
    assert_eq!(requests.len(), 1 + 3, "probe + ceil(5 / batch_size 2)");
    assert_eq!(requests[1].path, "/v1/embeddings");
    assert_eq!(requests[1].body["input"], serde_json::json!(["uno", "dos"]));
    assert_eq!(requests[1].body["model"], "bge-m3");
}

#[tokio::test]
async fn a_wrong_dimension_is_refused_not_passed_on() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    let mut config = config(&fake.base_url());
    config.dimension = Some(384);
    let embedder = OpenAiEmbedder::connect(config).await.unwrap();
    assert!(fake.requests().is_empty(), "a configured dimension needs no probe");
    let err = embedder.embed(&texts(&["hola"])).await.unwrap_err();
    assert!(matches!(err, Error::Upstream { status: 502, .. }), "{err:?}");
    assert!(err.to_string().contains("8-dimensional vector where 384"), "{err}");
}

#[tokio::test]
async fn transient_failures_are_retried_and_others_reported() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    let mut config = config(&fake.base_url());
    config.dimension = Some(8);
    let embedder = OpenAiEmbedder::connect(config).await.unwrap();

    fake.push(FakeReply::status(503, "loading"));
    embedder.embed(&texts(&["hola"])).await.unwrap();
    assert_eq!(fake.requests().len(), 2, "one 503, one retry");

    fake.push(FakeReply::status(400, "input too long for this model"));
    let err = embedder.embed(&texts(&["hola"])).await.unwrap_err();
    assert!(err.to_string().contains("input too long"), "{err}");
    assert_eq!(fake.requests().len(), 3, "a 400 is not retried");
}

#[tokio::test]
async fn bad_input_never_reaches_the_server() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    let mut config = config(&fake.base_url());
    config.dimension = Some(8);
    let embedder = OpenAiEmbedder::connect(config).await.unwrap();
    let err = embedder.embed(&texts(&["ok", "   "])).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)) && err.to_string().contains("input[1] is empty"), "{err}");
    assert!(matches!(embedder.embed(&[]).await, Err(Error::InvalidInput(_))));
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_quickly() {
    let mut config = config(&format!("{}/v1", closed_port_url().await));
    config.timeouts = TimeoutConfig { connect: Duration::from_secs(1), ..TimeoutConfig::default() };
    let started = std::time::Instant::now();
    let err = OpenAiEmbedder::connect(config).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn the_api_key_comes_from_the_named_variable() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    let mut config = config(&fake.base_url());
    config.api_key_env = Some("PATH".to_owned()); // always set; its value stands in for a key
    OpenAiEmbedder::connect(config.clone()).await.unwrap();
    let sent = fake.requests()[0].header("authorization").unwrap().to_owned();
    assert_eq!(sent, format!("Bearer {}", std::env::var("PATH").unwrap().trim()));

    config.api_key_env = Some("CAPIBARA_TEST_SURELY_UNSET_KEY".to_owned());
    let err = OpenAiEmbedder::connect(config).await.unwrap_err();
    assert!(err.to_string().contains("CAPIBARA_TEST_SURELY_UNSET_KEY"), "{err}");
}
