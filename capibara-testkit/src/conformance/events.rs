//! Reading a backend's answer the way its callers do, with limits so a hung backend fails a scenario
//! instead of hanging the suite.

use std::time::Duration;

use capibara_core::chat::{ChatRequest, Message, StreamEvent};
use capibara_core::llm::ChatStream;
use capibara_core::{Error, Result};
use futures::StreamExt as _;

use crate::upstream::{Beat, FakeReply};

/// The system and user texts of [`question`], checked to reach the upstream.
pub(super) const SYSTEM_TEXT: &str = "Responde siempre en castellano.";
/// See [`SYSTEM_TEXT`].
pub(super) const USER_TEXT: &str = "Dime la capital de Peru.";

/// Longest wait for one event before the scenario fails as hung.
pub(super) const EVENT_LIMIT: Duration = Duration::from_secs(15);

/// A short conversation.
pub(super) fn question() -> ChatRequest {
    ChatRequest::new(vec![Message::system(SYSTEM_TEXT), Message::user(USER_TEXT)])
}

/// A script streaming `words` as content beats, then usage and `Finish(reason)`.
pub(super) fn words_reply(words: &[&str], usage: (u32, u32), reason: &str) -> FakeReply {
    let mut beats: Vec<Beat> = words.iter().map(|word| Beat::Content((*word).to_owned())).collect();
    beats.push(Beat::Usage { prompt_tokens: usage.0, completion_tokens: usage.1 });
    beats.push(Beat::Finish(reason.to_owned()));
    FakeReply::Stream(beats)
}

/// The next item of the stream; `None` when it ended. Panics when nothing arrives within `limit`.
pub(super) async fn next_item(stream: &mut ChatStream, limit: Duration) -> Option<Result<StreamEvent>> {
    match tokio::time::timeout(limit, stream.next()).await {
        Ok(item) => item,
        Err(_) => panic!("no event and no end of stream within {limit:?}"),
    }
}

/// Everything a stream yields until it ends or fails.
#[derive(Debug, Default)]
pub(super) struct Transcript {
    /// Events in arrival order.
    pub(super) events: Vec<StreamEvent>,
    /// The error that ended the stream, if one did.
    pub(super) error: Option<Error>,
}

impl Transcript {
    /// Content deltas, in order.
    pub(super) fn contents(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|event| match event {
                StreamEvent::Content { delta } => Some(delta.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Reasoning deltas, concatenated.
    pub(super) fn reasoning(&self) -> String {
        self.events
            .iter()
            .filter_map(|event| match event {
                StreamEvent::Reasoning { delta } => Some(delta.as_str()),
                _ => None,
            })
            .collect()
    }

    /// How many `Done` events arrived.
    pub(super) fn dones(&self) -> usize {
        self.events.iter().filter(|event| matches!(event, StreamEvent::Done { .. })).count()
    }

    /// The error that ended the stream; panics naming what arrived when it ended without one.
    pub(super) fn expect_error(&self, what: &str) -> &Error {
        match &self.error {
            Some(error) => error,
            None => panic!("{what}: the stream ended without an error; events: {:?}", self.events),
        }
    }
}

/// Reads the stream to its end (after an error, keeps reading briefly to catch events that should not
/// follow it).
pub(super) async fn read_all(stream: &mut ChatStream) -> Transcript {
    let mut transcript = Transcript::default();
    while let Some(item) = next_item(stream, EVENT_LIMIT).await {
        match item {
            Ok(event) => transcript.events.push(event),
            Err(error) => {
                transcript.error = Some(error);
                break;
            }
        }
    }
    if transcript.error.is_some() {
        // Nothing may follow an error; a stream that stays open after one is also fine.
        while let Ok(Some(item)) = tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
            if let Ok(event) = item {
                transcript.events.push(event);
            }
        }
    }
    transcript
}

/// Starts an answer; panics naming the scenario step when the backend refuses it.
pub(super) async fn start(
    backend: &dyn capibara_core::llm::LlmBackend,
    request: ChatRequest,
    what: &str,
) -> ChatStream {
    match tokio::time::timeout(EVENT_LIMIT, backend.chat_stream(request)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => panic!("{what}: chat_stream failed: {error} (code {})", error.code()),
        Err(_) => panic!("{what}: chat_stream did not return within {EVENT_LIMIT:?}"),
    }
}

/// Starts an answer and reads it whole.
pub(super) async fn stream_whole(
    backend: &dyn capibara_core::llm::LlmBackend,
    request: ChatRequest,
    what: &str,
) -> Transcript {
    let mut stream = start(backend, request, what).await;
    read_all(&mut stream).await
}
