#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The official `openai` and `ollama` Python clients, unchanged, against Capibara backed by each kind of
//! upstream (OpenAI-compatible, Ollama native, llama.cpp native) — fakes speaking the real wire formats.

mod support;

use std::path::Path;

use capibara_testkit::upstream::{Beat, FakeReply, FakeUpstream, Protocol};
use serde_json::Value;
use support::{TestServer, backend_for};

const ANSWER: [&str; 4] = ["¡Hola! ", "Soy ", "Capibara, ", "tu asistente."];
const REASONING: &str = "The user greets me in Spanish; answer briefly.";

/// An upstream whose every answer reasons first, then streams `ANSWER` one piece per frame.
async fn upstream(protocol: Protocol) -> FakeUpstream {
    let upstream = FakeUpstream::start(protocol).await;
    let mut beats = vec![Beat::Reasoning(REASONING.to_owned())];
    beats.extend(ANSWER.iter().map(|piece| Beat::Content((*piece).to_owned())));
    beats.push(Beat::Usage { prompt_tokens: 21, completion_tokens: 9 });
    beats.push(Beat::Finish("stop".to_owned()));
    upstream.set_default(FakeReply::Stream(beats));
    upstream
}

async fn run_client(protocol: Protocol, script: &'static str) -> (Value, FakeUpstream) {
    let upstream = upstream(protocol).await;
    let dir = tempfile::tempdir().unwrap();
    let (server, _store) = TestServer::with_backend(Some(backend_for(&upstream)), dir.path()).await;
    let url = server.url.clone();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(script);
    // The client blocks; the server keeps serving on the runtime's other threads.
    let output = tokio::task::spawn_blocking(move || {
        capibara_testkit::python::run_script(env!("CARGO_TARGET_TMPDIR"), &script, &[&url])
    })
    .await
    .unwrap();
    (serde_json::from_str(&output).unwrap_or_else(|e| panic!("bad output {output:?}: {e}")), upstream)
}

fn assert_openai_client(seen: &Value) {
    let pieces: Vec<&str> = seen["pieces"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(pieces, ANSWER, "streamed piece by piece, in order");
    assert_eq!(seen["reasoning"], REASONING);
    assert!(pieces.iter().all(|p| !p.contains("greets")), "reasoning leaked into content");
    assert_eq!(seen["finish_reason"], "stop");
    assert_eq!(seen["usage"]["completion_tokens"], 9);
    assert_eq!(seen["usage"]["prompt_tokens"], 21);
    assert_eq!(seen["whole_content"], ANSWER.concat());
    assert_eq!(seen["whole_reasoning"], REASONING);
    assert_eq!(seen["whole_finish"], "stop");
    assert_eq!(seen["errors"]["empty_messages"], 400);
    assert!(!seen["models"].as_array().unwrap().is_empty());
}

fn assert_ollama_client(seen: &Value) {
    let pieces: Vec<&str> = seen["pieces"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(pieces, ANSWER, "streamed piece by piece, in order");
    assert_eq!(seen["thinking"], REASONING);
    assert_eq!(seen["final"]["done_reason"], "stop");
    assert_eq!(seen["final"]["eval_count"], 9);
    assert!(seen["final"]["total_duration"].as_u64().unwrap() > 0);
    assert_eq!(seen["whole_content"], ANSWER.concat());
    assert!(seen["whole_thinking"].is_null(), "thinking only when asked");
    assert_eq!(seen["generated"].as_array().unwrap().len(), ANSWER.len());
    assert_eq!(seen["errors"]["empty_message"], 400);
    assert!(!seen["models"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_client_streams_through_an_openai_compatible_upstream() {
    let (seen, upstream) = run_client(Protocol::OpenAi, "openai_client.py").await;
    assert_openai_client(&seen);
    // Sampling options reached the upstream; no blank-line stop was added.
    let request = &upstream.requests()[0].body;
    assert_eq!(request["max_tokens"], 64);
    assert_eq!(request["temperature"], 0.5);
    assert!(!request.to_string().contains(r#""\n\n""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_client_streams_through_an_ollama_upstream() {
    let (seen, upstream) = run_client(Protocol::Ollama, "openai_client.py").await;
    assert_openai_client(&seen);
    assert_eq!(upstream.requests()[0].body["options"]["num_predict"], 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_client_streams_through_a_llamacpp_upstream() {
    let (seen, upstream) = run_client(Protocol::LlamaCpp, "openai_client.py").await;
    assert_openai_client(&seen);
    assert_eq!(upstream.requests()[0].body["n_predict"], 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_client_streams_through_an_openai_compatible_upstream() {
    let (seen, _upstream) = run_client(Protocol::OpenAi, "ollama_client.py").await;
    assert_ollama_client(&seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_client_streams_through_an_ollama_upstream() {
    let (seen, upstream) = run_client(Protocol::Ollama, "ollama_client.py").await;
    assert_ollama_client(&seen);
    assert_eq!(upstream.requests()[0].body["options"]["temperature"], 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_client_streams_through_a_llamacpp_upstream() {
    let (seen, _upstream) = run_client(Protocol::LlamaCpp, "ollama_client.py").await;
    assert_ollama_client(&seen);
}
