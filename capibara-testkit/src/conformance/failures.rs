//! Scenarios about failures: retries by status, the first-token and idle timeouts, an upstream that
//! is not there, and a caller that goes away.

use std::time::{Duration, Instant};

use capibara_core::chat::StreamEvent;

use super::events::{EVENT_LIMIT, next_item, question, read_all, start, stream_whole, words_reply};
use super::{Subject, Tuning};
use crate::upstream::{Beat, FakeReply, Protocol, closed_port_url};

/// How long to keep watching for requests a backend should not send any more.
const SETTLE: Duration = Duration::from_millis(300);

/// 429 then success succeeds after one retry; 503 beyond the retries fails retryable after exactly
/// `max_retries + 1` requests; 400 fails at once, not retryable.
pub async fn retries_follow_the_status(subject: &Subject) {
    let rig = subject.rig(Tuning::default()).await;
    rig.fake.push(FakeReply::status(429, "Rate limit reached, slow down"));
    rig.fake.push(words_reply(&["Hola ", "otra ", "vez"], (5, 3), "stop"));
    let transcript = stream_whole(rig.backend.as_ref(), question(), "429 then success").await;
    assert!(transcript.error.is_none(), "429 then success: {:?}", transcript.error);
    assert_eq!(transcript.contents().concat(), "Hola otra vez");
    assert_eq!(rig.fake.requests().len(), 2, "429 then success: one retry expected");

    let rig = subject.rig(Tuning::default()).await;
    let attempts = rig.tuning.max_retries as usize + 1;
    for _ in 0..attempts + 2 {
        rig.fake.push(FakeReply::status(503, "the model is overloaded"));
    }
    match rig.backend.chat_stream(question()).await {
        Ok(stream) => panic!("503 on every attempt: expected an error, got a stream from {}", stream.backend),
        Err(error) => assert!(error.is_retryable(), "503 must stay retryable for the caller, got {error}"),
    }
    tokio::time::sleep(SETTLE).await;
    assert_eq!(
        rig.fake.requests().len(),
        attempts,
        "503 on every attempt: max_retries + 1 requests expected"
    );

    let rig = subject.rig(Tuning::default()).await;
    rig.fake.push(FakeReply::status(400, "temperature must be at most 2"));
    rig.fake.push(words_reply(&["no ", "debería"], (5, 2), "stop"));
    match rig.backend.chat_stream(question()).await {
        Ok(stream) => panic!("400: expected an error, got a stream from {}", stream.backend),
        Err(error) => assert!(!error.is_retryable(), "400 must not be retryable, got {error}"),
    }
    tokio::time::sleep(SETTLE).await;
    assert_eq!(rig.fake.requests().len(), 1, "400 must not be retried");
}

/// Nothing before the first-token timeout: a `timeout` error in about that time.
pub async fn first_token_timeout_is_a_timeout(subject: &Subject) {
    let tuning =
        Tuning { first_token_timeout: Duration::from_millis(500), max_retries: 0, ..Tuning::default() };
    let rig = subject.rig(tuning).await;
    rig.fake.push(FakeReply::Stream(vec![
        Beat::Delay(Duration::from_secs(4)),
        Beat::Content("tarde".into()),
        Beat::Finish("stop".into()),
    ]));
    let started = Instant::now();
    let result = tokio::time::timeout(EVENT_LIMIT, rig.backend.chat_stream(question())).await;
    let waited = started.elapsed();
    let error = match result {
        Err(_) => panic!("chat_stream did not return within {EVENT_LIMIT:?}"),
        Ok(Ok(stream)) => panic!("expected a first-token timeout, got a stream from {}", stream.backend),
        Ok(Err(error)) => error,
    };
    assert_eq!(error.code(), "timeout", "expected a timeout, got {error}");
    assert!(waited >= Duration::from_millis(450), "timed out after {waited:?}, before the 500 ms timeout");
    assert!(
        waited < Duration::from_millis(1500),
        "timed out after {waited:?}, long after the 500 ms timeout"
    );
}

/// Silence longer than the idle timeout mid-stream: the content before it, then a `timeout` error.
pub async fn idle_timeout_is_a_timeout(subject: &Subject) {
    let tuning = Tuning { idle_timeout: Duration::from_millis(600), ..Tuning::default() };
    let rig = subject.rig(tuning).await;
    rig.fake.push(FakeReply::Stream(vec![
        Beat::Content("Hola ".into()),
        Beat::Delay(Duration::from_secs(4)),
        Beat::Content("tarde".into()),
        Beat::Finish("stop".into()),
    ]));
    let mut stream = start(rig.backend.as_ref(), question(), "a stalled stream").await;
    let first = next_item(&mut stream, EVENT_LIMIT).await;
    assert!(
        matches!(&first, Some(Ok(StreamEvent::Content { delta })) if delta == "Hola "),
        "expected the first word, got {first:?}"
    );
    let silent_since = Instant::now();
    let rest = read_all(&mut stream).await;
    let waited = silent_since.elapsed();
    let error = rest.expect_error("a stalled stream");
    assert_eq!(error.code(), "timeout", "expected an idle timeout, got {error}");
    assert!(rest.contents().is_empty(), "nothing may arrive after the stall: {:?}", rest.events);
    assert!(waited < Duration::from_millis(2000), "the idle timeout of 600 ms fired after {waited:?}");
}

/// Nothing listening at the base URL: an `unavailable` error.
pub async fn connection_refused_is_unavailable(subject: &Subject) {
    let mut base_url = closed_port_url().await;
    if subject.protocol == Protocol::OpenAi {
        base_url.push_str("/v1");
    }
    let backend = (subject.make)(&base_url, &Tuning::default());
    match tokio::time::timeout(EVENT_LIMIT, backend.chat_stream(question())).await {
        Err(_) => panic!("chat_stream against a closed port did not return within {EVENT_LIMIT:?}"),
        Ok(Ok(stream)) => panic!("a closed port produced a stream from {}", stream.backend),
        Ok(Err(error)) => assert_eq!(error.code(), "unavailable", "expected unavailable, got {error}"),
    }
}

/// Dropping the stream midway cancels the upstream request: the fake sees its stream abandoned.
pub async fn dropping_the_stream_cancels_the_upstream(subject: &Subject) {
    let rig = subject.rig(Tuning::default()).await;
    let mut beats = vec![Beat::Content("uno ".into()), Beat::Content("dos ".into())];
    for _ in 0..50 {
        beats.push(Beat::Delay(Duration::from_millis(100)));
        beats.push(Beat::Content("más ".into()));
    }
    beats.push(Beat::Finish("stop".into()));
    rig.fake.push(FakeReply::Stream(beats));
    let mut stream = start(rig.backend.as_ref(), question(), "a long answer").await;
    let first = next_item(&mut stream, EVENT_LIMIT).await;
    assert!(matches!(first, Some(Ok(_))), "expected a first event, got {first:?}");
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(3);
    while rig.fake.abandoned_streams() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rig.fake.abandoned_streams(), 1, "dropping the stream must close the upstream request");
}
