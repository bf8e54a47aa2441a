//! Scenarios about the events of an answer: order, true streaming, reasoning, usage, the final event,
//! keep-alives, and how broken streams end.

use std::time::{Duration, Instant};

use capibara_core::chat::{FinishReason, StreamEvent, Usage};

use super::events::{EVENT_LIMIT, next_item, question, read_all, start, stream_whole, words_reply};
use super::{Subject, Tuning};
use crate::upstream::{Beat, FakeReply};

const WORDS: [&str; 5] = ["Los ", "capibaras ", "son ", "roedores ", "sociables."];

/// Content arrives token by token, in order, one event per beat; the whole answer equals the script.
pub async fn content_arrives_token_by_token(subject: &Subject) {
    let rig = subject.rig(Tuning::default()).await;
    rig.fake.push(words_reply(&WORDS, (12, 5), "stop"));
    let transcript = stream_whole(rig.backend.as_ref(), question(), "streaming five words").await;
    assert!(transcript.error.is_none(), "the answer failed: {:?}", transcript.error);
    assert_eq!(transcript.contents(), WORDS, "expected one Content event per content beat, in order");
    assert!(
        transcript.reasoning().is_empty(),
        "a plain answer produced reasoning: {:?}",
        transcript.reasoning()
    );

    rig.fake.push(words_reply(&WORDS, (12, 5), "stop"));
    let answer = match rig.backend.chat(question()).await {
        Ok(answer) => answer,
        Err(error) => panic!("chat failed: {error}"),
    };
    assert_eq!(answer.content, WORDS.concat(), "chat() must return the whole answer");
    assert_eq!(answer.finish_reason, FinishReason::Stop);
}

/// The first event is handed over as soon as the upstream writes it, not after the whole answer.
pub async fn first_event_is_not_held_back(subject: &Subject) {
    let rig = subject.rig(Tuning::default()).await;
    rig.fake.push(FakeReply::Stream(vec![
        Beat::Content("Primero ".into()),
        Beat::Delay(Duration::from_millis(800)),
        Beat::Content("segundo ".into()),
        Beat::Content("tercero.".into()),
        Beat::Usage { prompt_tokens: 8, completion_tokens: 3 },
        Beat::Finish("stop".into()),
    ]));
    let started = Instant::now();
    let mut stream = start(rig.backend.as_ref(), question(), "a slow second token").await;
    let first = next_item(&mut stream, EVENT_LIMIT).await;
    let waited = started.elapsed();
    assert!(
        matches!(&first, Some(Ok(StreamEvent::Content { delta })) if delta == "Primero "),
        "the first event must be the first content beat, got {first:?}"
    );
    assert!(waited < Duration::from_millis(400), "the first event took {waited:?}: the answer is buffered");
    let rest = read_all(&mut stream).await;
    assert!(started.elapsed() >= Duration::from_millis(700), "the scripted delay was skipped");
    assert_eq!(rest.contents(), ["segundo ", "tercero."]);
    assert_eq!(rest.dones(), 1, "events after the first: {:?}", rest.events);
}

/// Reasoning arrives only as `Reasoning` events (never inside `Content`), before the answer, in every
/// style the backend declares; the answer after it is intact, streamed and whole.
pub async fn reasoning_is_kept_apart(subject: &Subject) {
    let reasoning = ["El usuario ", "pregunta por ", "roedores."];
    let answer = ["Los capibaras ", "son ", "roedores."];
    let script = || {
        let mut beats: Vec<Beat> = reasoning.iter().map(|text| Beat::Reasoning((*text).to_owned())).collect();
        beats.extend(answer.iter().map(|text| Beat::Content((*text).to_owned())));
        beats.push(Beat::Usage { prompt_tokens: 20, completion_tokens: 9 });
        beats.push(Beat::Finish("stop".into()));
        FakeReply::Stream(beats)
    };
    for style in subject.styles() {
        let rig = subject.rig(Tuning::default()).await;
        rig.fake.set_reasoning_style(style);
        rig.fake.push(script());
        let transcript =
            stream_whole(rig.backend.as_ref(), question(), &format!("reasoning as {style:?}")).await;
        assert!(transcript.error.is_none(), "{style:?}: the answer failed: {:?}", transcript.error);
        assert_eq!(
            transcript.contents().concat(),
            answer.concat(),
            "{style:?}: content must carry only the answer"
        );
        assert_eq!(
            transcript.reasoning(),
            reasoning.concat(),
            "{style:?}: reasoning must arrive as Reasoning events"
        );
        let first_content =
            transcript.events.iter().position(|event| matches!(event, StreamEvent::Content { .. }));
        let last_reasoning =
            transcript.events.iter().rposition(|event| matches!(event, StreamEvent::Reasoning { .. }));
        assert!(
            last_reasoning < first_content,
            "{style:?}: reasoning must precede the answer: {:?}",
            transcript.events
        );

        rig.fake.push(script());
        let whole = match rig.backend.chat(question()).await {
            Ok(whole) => whole,
            Err(error) => panic!("{style:?}: chat failed: {error}"),
        };
        assert_eq!(whole.content, answer.concat(), "{style:?}: chat() content must carry only the answer");
        assert_eq!(
            whole.reasoning.as_deref(),
            Some(reasoning.concat().as_str()),
            "{style:?}: chat() reasoning"
        );
    }
}

/// Usage is reported; `Done` is the last event, exactly once; `length` maps to `FinishReason::Length`.
pub async fn usage_and_done_close_the_stream(subject: &Subject) {
    let rig = subject.rig(Tuning::default()).await;
    rig.fake.push(words_reply(&["Hola ", "mundo"], (21, 2), "stop"));
    let transcript = stream_whole(rig.backend.as_ref(), question(), "an answer with usage").await;
    assert!(transcript.error.is_none(), "the answer failed: {:?}", transcript.error);
    let usage = transcript.events.iter().rev().find_map(|event| match event {
        StreamEvent::Usage { usage } => Some(*usage),
        _ => None,
    });
    assert_eq!(usage, Some(Usage { prompt_tokens: 21, completion_tokens: 2 }), "usage must be reported");
    assert_eq!(transcript.dones(), 1, "exactly one Done: {:?}", transcript.events);
    assert_eq!(
        transcript.events.last(),
        Some(&StreamEvent::done(FinishReason::Stop)),
        "Done(Stop) must be the last event before the stream ends"
    );

    rig.fake.push(words_reply(&["Hola ", "mun"], (21, 2), "length"));
    let transcript = stream_whole(rig.backend.as_ref(), question(), "an answer cut by max_tokens").await;
    assert_eq!(
        transcript.events.last(),
        Some(&StreamEvent::done(FinishReason::Length)),
        "{:?}",
        transcript.events
    );
}

/// Keep-alive comments and blank lines produce no events and break nothing.
pub async fn keep_alives_are_ignored(subject: &Subject) {
    let rig = subject.rig(Tuning::default()).await;
    rig.fake.push(FakeReply::Stream(vec![
        Beat::KeepAlive,
        Beat::Content("Hola ".into()),
        Beat::KeepAlive,
        Beat::KeepAlive,
        Beat::Content("mundo".into()),
        Beat::KeepAlive,
        Beat::Usage { prompt_tokens: 5, completion_tokens: 2 },
        Beat::Finish("stop".into()),
    ]));
    let transcript = stream_whole(rig.backend.as_ref(), question(), "keep-alives between tokens").await;
    assert!(transcript.error.is_none(), "keep-alives broke the answer: {:?}", transcript.error);
    assert_eq!(transcript.contents(), ["Hola ", "mundo"], "keep-alives must not become content");
    assert_eq!(transcript.events.last(), Some(&StreamEvent::done(FinishReason::Stop)));
}

/// Checks a stream broken by `breaker` after two words: the words arrive, then an error, never `Done`.
async fn broken_after_two_words(subject: &Subject, breaker: Beat, what: &str) -> capibara_core::Error {
    let rig = subject.rig(Tuning::default()).await;
    rig.fake.push(FakeReply::Stream(vec![
        Beat::Content("Hola ".into()),
        Beat::Content("a ".into()),
        breaker,
        Beat::Content("nunca".into()),
        Beat::Finish("stop".into()),
    ]));
    let transcript = stream_whole(rig.backend.as_ref(), question(), what).await;
    assert_eq!(transcript.contents(), ["Hola ", "a "], "{what}: the content before the break must arrive");
    assert_eq!(
        transcript.dones(),
        0,
        "{what}: a broken answer must not end with Done: {:?}",
        transcript.events
    );
    transcript.expect_error(what).clone()
}

/// An error frame mid-stream: the content before it arrives, then an error, no `Done`.
pub async fn error_frame_ends_the_stream_with_an_error(subject: &Subject) {
    broken_after_two_words(subject, Beat::Error("el modelo se quedó sin memoria".into()), "an error frame")
        .await;
}

/// A connection cut mid-stream: the content before it arrives, then an error, no `Done`.
pub async fn disconnect_ends_the_stream_with_an_error(subject: &Subject) {
    broken_after_two_words(subject, Beat::Disconnect, "a cut connection").await;
}

/// A frame that is not valid JSON ends the stream with an `upstream_error`.
pub async fn malformed_frame_is_an_upstream_error(subject: &Subject) {
    let error =
        broken_after_two_words(subject, Beat::Malformed("{\"content\": \"cort".into()), "a malformed frame")
            .await;
    assert_eq!(error.code(), "upstream_error", "a malformed frame must be an upstream error, got {error}");
}
